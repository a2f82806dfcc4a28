/* SPDX-License-Identifier: MIT */
/*
 * The compact list of log ids: the first log id of each run of entries
 * written by one leader. Looking up the leader of an index is a binary search
 * over runs, appending within a run is O(1) and allocation-free.
 */
#include <errno.h>
#include <string.h>

#include "log_ids.h"

int lcr_log_ids_init(struct lcr_log_ids *l, struct lcr_allocator alloc, uint32_t cap,
		     struct lcr_log_id purged)
{
	LCR_ASSERT(cap > 0);
	memset(l, 0, sizeof(*l));
	l->alloc = alloc;
	l->keys = lcr_allocator_zalloc(&l->alloc, sizeof(*l->keys) * cap);
	if (!l->keys)
		return -ENOMEM;
	l->cap = cap;
	l->purged = purged;
	l->last = purged;
	return 0;
}

void lcr_log_ids_free(struct lcr_log_ids *l)
{
	lcr_allocator_free(&l->alloc, l->keys);
	l->keys = NULL;
}

/* Index of the run holding `index`: the last key with key.index <= index. */
static uint32_t run_of(const struct lcr_log_ids *l, uint64_t index)
{
	uint32_t lo = 0, hi = l->n; /* answer in [lo, hi) */

	LCR_ASSERT(l->n > 0);
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (l->keys[mid].index <= index)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

bool lcr_log_ids_get(const struct lcr_log_ids *l, uint64_t index, struct lcr_log_id *out)
{
	if (index == l->purged.index) {
		*out = l->purged;
		return true;
	}
	if (index < l->purged.index || index > l->last.index)
		return false;
	out->lid = l->keys[run_of(l, index)].lid;
	out->index = index;
	return true;
}

bool lcr_log_ids_has(const struct lcr_log_ids *l, struct lcr_log_id id)
{
	struct lcr_log_id here;

	/* Everything at or below the purge point was committed, hence matches. */
	if (id.index < l->purged.index)
		return true;
	if (!lcr_log_ids_get(l, id.index, &here))
		return false;
	return lcr_log_id_eq(here, id);
}

int lcr_log_ids_append_slow(struct lcr_log_ids *l, struct lcr_log_id id)
{
	LCR_ASSERT(id.index == l->last.index + 1);
	if (l->n == 0 || !lcr_leader_id_eq(l->keys[l->n - 1].lid, id.lid)) {
		/* A new run: its leader must not be older than the previous one. */
		if (l->n > 0)
			LCR_ASSERT(lcr_leader_id_cmp(l->keys[l->n - 1].lid, id.lid) < 0);
		if (l->n == l->cap) {
			if (l->fixed)
				return -ENOSPC;
			uint32_t cap = l->cap * 2;
			struct lcr_log_id *keys =
				lcr_allocator_zalloc(&l->alloc, sizeof(*keys) * cap);
			if (!keys)
				return -ENOMEM;
			memcpy(keys, l->keys, sizeof(*keys) * l->n);
			lcr_allocator_free(&l->alloc, l->keys);
			l->keys = keys;
			l->cap = cap;
		}
		l->keys[l->n++] = id;
	}
	l->last = id;
	return 0;
}

void lcr_log_ids_truncate(struct lcr_log_ids *l, uint64_t since)
{
	LCR_ASSERT(since > l->purged.index);
	if (since > l->last.index)
		return;
	while (l->n > 0 && l->keys[l->n - 1].index >= since)
		l->n--;
	if (since - 1 == l->purged.index) {
		l->last = l->purged;
		LCR_ASSERT(l->n == 0);
	} else {
		LCR_ASSERT(l->n > 0);
		l->last.lid = l->keys[l->n - 1].lid;
		l->last.index = since - 1;
	}
}

bool lcr_log_ids_can_start_run(const struct lcr_log_ids *l)
{
	return l->n < l->cap;
}

void lcr_log_ids_purge(struct lcr_log_ids *l, struct lcr_log_id upto)
{
	uint32_t keep;

	LCR_ASSERT(lcr_log_ids_has(l, upto));
	if (upto.index <= l->purged.index)
		return;
	/* Runs that end at or before `upto` go; the run holding upto+1 starts there. */
	keep = 0;
	while (keep + 1 < l->n && l->keys[keep + 1].index <= upto.index + 1)
		keep++;
	if (upto.index >= l->last.index) {
		l->n = 0;
		l->last = upto;
	} else {
		memmove(l->keys, l->keys + keep, sizeof(*l->keys) * (l->n - keep));
		l->n -= keep;
		if (l->keys[0].index <= upto.index)
			l->keys[0].index = upto.index + 1;
	}
	l->purged = upto;
}

void lcr_log_ids_reset(struct lcr_log_ids *l, struct lcr_log_id at)
{
	l->n = 0;
	l->purged = at;
	l->last = at;
}

struct lcr_log_id lcr_log_ids_last_run_first(const struct lcr_log_ids *l)
{
	if (l->n == 0)
		return lcr_log_id_none();
	return l->keys[l->n - 1];
}
