/* SPDX-License-Identifier: MIT */
/*
 * Membership: a list of voter configs (two during a joint change) and
 * learners. A decision needs a majority in every config (openraft's extended
 * joint consensus, openraft-reference.md §4), so quorum functions iterate
 * over configs from day one even while only one config is used.
 */
#include <errno.h>
#include <stdio.h>

#include "core_int.h"

static bool in_list(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

bool lcr_membership_is_voter(const struct lcr_membership *m, uint32_t id)
{
	for (uint32_t c = 0; c < m->n_configs; c++)
		if (in_list(m->configs[c].ids, m->configs[c].n, id))
			return true;
	return false;
}

bool lcr_membership_contains(const struct lcr_membership *m, uint32_t id)
{
	return lcr_membership_is_voter(m, id) || in_list(m->learners, m->n_learners, id);
}

uint32_t lcr_membership_nodes(const struct lcr_membership *m, uint32_t out[LCR_NODES_MAX])
{
	uint32_t n = 0;

	for (uint32_t c = 0; c < m->n_configs; c++)
		for (uint32_t i = 0; i < m->configs[c].n; i++)
			if (!in_list(out, n, m->configs[c].ids[i])) {
				LCR_ASSERT(n < LCR_NODES_MAX);
				out[n++] = m->configs[c].ids[i];
			}
	for (uint32_t i = 0; i < m->n_learners; i++)
		if (!in_list(out, n, m->learners[i])) {
			LCR_ASSERT(n < LCR_NODES_MAX);
			out[n++] = m->learners[i];
		}
	return n;
}

uint32_t lcr_membership_voter_count(const struct lcr_membership *m)
{
	uint32_t ids[LCR_NODES_MAX];
	uint32_t n = lcr_membership_nodes(m, ids), voters = 0;

	for (uint32_t i = 0; i < n; i++)
		voters += lcr_membership_is_voter(m, ids[i]);
	return voters;
}

int lcr_membership_validate(const struct lcr_membership *m, char *why, size_t why_len)
{
	uint32_t all[LCR_NODES_MAX * (LCR_CONFIGS_MAX + 1)];
	uint32_t n_all = 0;

	if (m->n_configs < 1 || m->n_configs > LCR_CONFIGS_MAX) {
		snprintf(why, why_len, "membership: %u configs (must be 1 or 2)", m->n_configs);
		return -EINVAL;
	}
	for (uint32_t c = 0; c < m->n_configs; c++) {
		uint32_t n = m->configs[c].n;
		if (n < 1 || n > LCR_NODES_MAX) {
			snprintf(why, why_len, "membership: config %u has %u voters (1..%d)", c, n,
				 LCR_NODES_MAX);
			return -EINVAL;
		}
		for (uint32_t i = 0; i < n; i++) {
			uint32_t id = m->configs[c].ids[i];
			if (id == 0) {
				snprintf(why, why_len, "membership: node id 0 is reserved");
				return -EINVAL;
			}
			if (in_list(m->configs[c].ids, i, id)) {
				snprintf(why, why_len,
					 "membership: node %u listed twice in config %u", id, c);
				return -EINVAL;
			}
			if (!in_list(all, n_all, id))
				all[n_all++] = id;
		}
	}
	if (m->n_learners > LCR_NODES_MAX) {
		snprintf(why, why_len, "membership: %u learners (at most %d)", m->n_learners,
			 LCR_NODES_MAX);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->n_learners; i++) {
		uint32_t id = m->learners[i];
		if (id == 0 || lcr_membership_is_voter(m, id) || in_list(m->learners, i, id)) {
			snprintf(why, why_len,
				 "membership: learner %u is 0, a voter, or listed twice", id);
			return -EINVAL;
		}
		all[n_all++] = id;
	}
	if (n_all > LCR_NODES_MAX) {
		snprintf(why, why_len, "membership: %u nodes in all (at most %d)", n_all,
			 LCR_NODES_MAX);
		return -EINVAL;
	}
	return 0;
}

/* Sort descending, small n: insertion sort. */
static void sort_desc(uint64_t *v, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		uint64_t x = v[i];
		uint32_t j = i;
		while (j > 0 && v[j - 1] < x) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

uint64_t lcr_membership_quorum_value(const struct lcr_membership *m,
				     uint64_t (*val)(const void *ctx, uint32_t id), const void *ctx,
				     bool one_short)
{
	uint64_t result = UINT64_MAX;

	LCR_ASSERT(m->n_configs >= 1);
	for (uint32_t c = 0; c < m->n_configs; c++) {
		uint64_t v[LCR_NODES_MAX];
		uint32_t n = m->configs[c].n;
		uint32_t majority = n / 2 + 1;

		for (uint32_t i = 0; i < n; i++)
			v[i] = val(ctx, m->configs[c].ids[i]);
		sort_desc(v, n);
		if (one_short && majority > 1)
			majority--;
		/* The majority-th largest value is held by a majority. */
		if (v[majority - 1] < result)
			result = v[majority - 1];
	}
	return result;
}

bool lcr_membership_quorum_granted(const struct lcr_membership *m,
				   bool (*has)(const void *ctx, uint32_t id), const void *ctx)
{
	for (uint32_t c = 0; c < m->n_configs; c++) {
		uint32_t n = m->configs[c].n, got = 0;
		for (uint32_t i = 0; i < n; i++)
			got += has(ctx, m->configs[c].ids[i]);
		if (got < n / 2 + 1)
			return false;
	}
	return true;
}
