/* SPDX-License-Identifier: MIT */
/*
 * Membership: a list of voter configs (two during a joint change) and
 * learners. A decision needs a majority in every config (openraft's extended
 * joint consensus, openraft-reference.md §4), so quorum functions iterate
 * over configs from day one even while only one config is used.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

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
	if (m->n_retained > LCR_NODES_MAX || (m->n_retained && m->n_configs != 2)) {
		snprintf(why, why_len,
			 "membership: %u retained voters (at most %d, and only in a joint config)",
			 m->n_retained, LCR_NODES_MAX);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->n_retained; i++) {
		uint32_t id = m->retained[i];
		if (!in_list(m->configs[0].ids, m->configs[0].n, id) ||
		    in_list(m->configs[1].ids, m->configs[1].n, id) ||
		    in_list(m->retained, i, id)) {
			snprintf(why, why_len,
				 "membership: retained voter %u is not a voter of the old config "
				 "only, or is listed twice",
				 id);
			return -EINVAL;
		}
	}
	if (m->n_addrs > LCR_NODES_MAX) {
		snprintf(why, why_len, "membership: %u node addresses (at most %d)", m->n_addrs,
			 LCR_NODES_MAX);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->n_addrs; i++) {
		const struct lcr_node_addr *a = &m->addrs[i];
		size_t len = strnlen(a->addr, LCR_NODE_ADDR_MAX);
		if (!lcr_membership_contains(m, a->id)) {
			snprintf(why, why_len, "membership: an address for node %u, not a member",
				 a->id);
			return -EINVAL;
		}
		for (uint32_t k = 0; k < i; k++)
			if (m->addrs[k].id == a->id) {
				snprintf(why, why_len, "membership: node %u has two addresses",
					 a->id);
				return -EINVAL;
			}
		if (len == 0 || len == LCR_NODE_ADDR_MAX) {
			snprintf(why, why_len,
				 "membership: node %u's address is empty or longer than %d bytes",
				 a->id, LCR_NODE_ADDR_MAX - 1);
			return -EINVAL;
		}
		for (size_t k = 0; k < len; k++)
			if (a->addr[k] <= ' ' || a->addr[k] > '~') {
				snprintf(why, why_len,
					 "membership: node %u's address holds a byte that is not "
					 "printable ASCII (0x%02x at %zu)",
					 a->id, (unsigned)(uint8_t)a->addr[k], k);
				return -EINVAL;
			}
	}
	return 0;
}

const char *lcr_membership_addr(const struct lcr_membership *m, uint32_t id)
{
	for (uint32_t i = 0; i < m->n_addrs && i < LCR_NODES_MAX; i++)
		if (m->addrs[i].id == id)
			return m->addrs[i].addr;
	return NULL;
}

void lcr_membership_keep_addrs(struct lcr_membership *m, const struct lcr_membership *from)
{
	uint32_t ids[LCR_NODES_MAX], n = lcr_membership_nodes(m, ids), k = 0;
	struct lcr_node_addr out[LCR_NODES_MAX];

	for (uint32_t i = 0; i < n; i++) {
		const char *a = lcr_membership_addr(m, ids[i]);
		if (!a && from)
			a = lcr_membership_addr(from, ids[i]);
		if (!a)
			continue;
		out[k].id = ids[i];
		snprintf(out[k].addr, sizeof(out[k].addr), "%s", a);
		k++;
	}
	memcpy(m->addrs, out, sizeof(out[0]) * k);
	memset(m->addrs + k, 0, sizeof(m->addrs[0]) * (LCR_NODES_MAX - k));
	m->n_addrs = k;
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

/* ---- a membership entry's payload ----------------------------------------------- */

/*
 * Little-endian u32s: n_configs, then per config its n and ids, then
 * n_learners and the learners' ids; then, only when there are addresses or
 * retained voters, n_addrs (0 only when retained voters follow) and each
 * address as its id, a length byte and the text; then, only when there are
 * retained voters, n_retained and their ids. No padding, nothing else
 * (docs/storage-format.md, "Records"). Each optional part is
 * absent when empty, so an encoding is canonical (lcr_membership_eq compares
 * encodings) and a membership without them encodes as it always did.
 */
static size_t put32(uint8_t *b, size_t off, uint32_t v)
{
	b[off] = (uint8_t)v;
	b[off + 1] = (uint8_t)(v >> 8);
	b[off + 2] = (uint8_t)(v >> 16);
	b[off + 3] = (uint8_t)(v >> 24);
	return off + 4;
}

static uint32_t get32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

size_t lcr_membership_encode(const struct lcr_membership *m, void *buf, size_t cap)
{
	uint8_t *b = buf;
	size_t need = 4 + 4 * (size_t)m->n_learners + 4;

	for (uint32_t c = 0; c < m->n_configs && c < LCR_CONFIGS_MAX; c++)
		need += 4 + 4 * (size_t)m->configs[c].n;
	if (m->n_addrs > LCR_NODES_MAX || m->n_retained > LCR_NODES_MAX)
		return 0;
	/* The addresses follow only when there are any (or retained voters
	 * after them): a membership without them encodes as it always did. */
	bool addrs = m->n_addrs || m->n_retained;
	if (addrs)
		need += 4;
	for (uint32_t i = 0; i < m->n_addrs; i++)
		need += 5 + strnlen(m->addrs[i].addr, LCR_NODE_ADDR_MAX - 1);
	if (m->n_retained)
		need += 4 + 4 * (size_t)m->n_retained;
	if (m->n_configs > LCR_CONFIGS_MAX || need > cap)
		return 0;
	size_t off = put32(b, 0, m->n_configs);
	for (uint32_t c = 0; c < m->n_configs; c++) {
		off = put32(b, off, m->configs[c].n);
		for (uint32_t i = 0; i < m->configs[c].n; i++)
			off = put32(b, off, m->configs[c].ids[i]);
	}
	off = put32(b, off, m->n_learners);
	for (uint32_t i = 0; i < m->n_learners; i++)
		off = put32(b, off, m->learners[i]);
	if (addrs)
		off = put32(b, off, m->n_addrs);
	for (uint32_t i = 0; i < m->n_addrs; i++) {
		size_t len = strnlen(m->addrs[i].addr, LCR_NODE_ADDR_MAX - 1);
		off = put32(b, off, m->addrs[i].id);
		b[off++] = (uint8_t)len;
		memcpy(b + off, m->addrs[i].addr, len);
		off += len;
	}
	if (m->n_retained)
		off = put32(b, off, m->n_retained);
	for (uint32_t i = 0; i < m->n_retained; i++)
		off = put32(b, off, m->retained[i]);
	LCR_ASSERT(off == need);
	return off;
}

int lcr_membership_decode(const void *buf, size_t len, struct lcr_membership *m)
{
	const uint8_t *b = buf;
	size_t off = 0;
	char why[160];

	memset(m, 0, sizeof(*m));
	if (!buf || len < 4)
		return -EINVAL;
	m->n_configs = get32(b);
	off = 4;
	if (m->n_configs < 1 || m->n_configs > LCR_CONFIGS_MAX)
		return -EINVAL;
	for (uint32_t c = 0; c < m->n_configs; c++) {
		if (len - off < 4)
			return -EINVAL;
		m->configs[c].n = get32(b + off);
		off += 4;
		if (m->configs[c].n > LCR_NODES_MAX || len - off < 4 * (size_t)m->configs[c].n)
			return -EINVAL;
		for (uint32_t i = 0; i < m->configs[c].n; i++, off += 4)
			m->configs[c].ids[i] = get32(b + off);
	}
	if (len - off < 4)
		return -EINVAL;
	m->n_learners = get32(b + off);
	off += 4;
	if (m->n_learners > LCR_NODES_MAX || len - off < 4 * (size_t)m->n_learners)
		return -EINVAL;
	for (uint32_t i = 0; i < m->n_learners; i++, off += 4)
		m->learners[i] = get32(b + off);
	if (off < len) {
		if (len - off < 4)
			return -EINVAL;
		m->n_addrs = get32(b + off);
		off += 4;
		/* Present only when there are any, or retained voters follow
		 * (encode): an empty list with nothing after it is refused. */
		if (m->n_addrs > LCR_NODES_MAX || (m->n_addrs == 0 && off == len))
			return -EINVAL;
		for (uint32_t i = 0; i < m->n_addrs; i++) {
			if (len - off < 5)
				return -EINVAL;
			m->addrs[i].id = get32(b + off);
			uint32_t n = b[off + 4];
			off += 5;
			if (n < 1 || n >= LCR_NODE_ADDR_MAX || len - off < n)
				return -EINVAL;
			for (uint32_t k = 0; k < n; k++)
				if (b[off + k] <= ' ' || b[off + k] > '~')
					return -EINVAL; /* a NUL would hide what follows */
			memcpy(m->addrs[i].addr, b + off, n);
			off += n;
		}
	}
	if (off < len) {
		if (len - off < 4)
			return -EINVAL;
		m->n_retained = get32(b + off);
		off += 4;
		/* Present only when there are any (encode). */
		if (m->n_retained < 1 || m->n_retained > LCR_NODES_MAX ||
		    len - off != 4 * (size_t)m->n_retained)
			return -EINVAL;
		for (uint32_t i = 0; i < m->n_retained; i++, off += 4)
			m->retained[i] = get32(b + off);
	}
	return lcr_membership_validate(m, why, sizeof(why));
}

bool lcr_membership_eq(const struct lcr_membership *a, const struct lcr_membership *b)
{
	uint8_t x[LCR_MEMBERSHIP_BYTES_MAX], y[LCR_MEMBERSHIP_BYTES_MAX];
	size_t nx = lcr_membership_encode(a, x, sizeof(x)),
	       ny = lcr_membership_encode(b, y, sizeof(y));

	return nx == ny && memcmp(x, y, nx) == 0;
}

/* Same voters (as sets) in two single configs. */
static bool same_voters(const struct lcr_membership *a, const struct lcr_membership *b)
{
	if (a->configs[0].n != b->configs[0].n)
		return false;
	for (uint32_t i = 0; i < a->configs[0].n; i++)
		if (!in_list(b->configs[0].ids, b->configs[0].n, a->configs[0].ids[i]))
			return false;
	return true;
}

/* ---- the core's membership state ------------------------------------------------ */

/*
 * openraft's MembershipState: the committed membership (the newest one at or
 * below the commit point: a membership entry, the snapshot's, or the initial
 * config) and the entries above the commit point, in log order; the newest of
 * all is effective (c->membership), from the moment it is appended, and a
 * truncation reverts it.
 */
static void effective_changed(struct lcr_core *c)
{
	const struct lcr_membership *m =
		c->m_log_n ? &c->m_log[c->m_log_n - 1].m : &c->m_committed.m;

	if (lcr_membership_eq(m, &c->membership))
		return;
	c->membership = *m;
	lcr_core_nodes_changed(c);
}

/*
 * Only the newest membership entry of a log can be uncommitted: a leader
 * proposes one only when every membership entry in its log is committed (one
 * change at a time; the target after a joint config once that commits), and
 * by Log Matching a log that holds an entry holds its proposer's log before
 * it. So every older one folds into the committed membership, and a replica
 * restarted with a stale commit point, or far behind, never holds more than
 * one above it.
 */
void lcr_mship_appended(struct lcr_core *c, struct lcr_log_id id, const struct lcr_membership *m)
{
	LCR_ASSERT(c->m_log_n == 0 || c->m_log[c->m_log_n - 1].id.index < id.index);
	lcr_mship_fold(c, id.index - 1);
	LCR_ASSERT(c->m_log_n < LCR_MSHIP_LOG);
	c->m_log[c->m_log_n].id = id;
	c->m_log[c->m_log_n].m = *m;
	c->m_log_n++;
	effective_changed(c);
}

void lcr_mship_truncated(struct lcr_core *c, uint64_t since)
{
	while (c->m_log_n > 0 && c->m_log[c->m_log_n - 1].id.index >= since)
		c->m_log_n--;
	effective_changed(c);
}

static void hist_push(struct lcr_core *c, const struct lcr_mship *e)
{
	if (c->m_hist_n == LCR_MSHIP_HIST) {
		memmove(c->m_hist, c->m_hist + 1, sizeof(c->m_hist[0]) * (LCR_MSHIP_HIST - 1));
		c->m_hist_n--;
	}
	c->m_hist[c->m_hist_n++] = *e;
}

void lcr_mship_committed(struct lcr_core *c)
{
	lcr_mship_fold(c, c->committed.index);
}

void lcr_mship_fold(struct lcr_core *c, uint64_t upto)
{
	uint32_t k = 0;

	while (k < c->m_log_n && c->m_log[k].id.index <= upto) {
		hist_push(c, &c->m_committed);
		c->m_committed = c->m_log[k];
		k++;
	}
	if (k == 0)
		return;
	memmove(c->m_log, c->m_log + k, sizeof(c->m_log[0]) * (c->m_log_n - k));
	c->m_log_n -= k;
}

void lcr_mship_installed(struct lcr_core *c, struct lcr_log_id last, const struct lcr_membership *m)
{
	/* Entries the snapshot covers are committed now. */
	lcr_mship_committed(c);
	if (m) {
		hist_push(c, &c->m_committed);
		c->m_committed.id = last;
		c->m_committed.m = *m;
	}
	effective_changed(c);
}

const struct lcr_membership *lcr_mship_at(const struct lcr_core *c, uint64_t index)
{
	for (uint32_t k = c->m_log_n; k-- > 0;)
		if (c->m_log[k].id.index <= index)
			return &c->m_log[k].m;
	if (c->m_committed.id.index <= index)
		return &c->m_committed.m;
	for (uint32_t k = c->m_hist_n; k-- > 0;)
		if (c->m_hist[k].id.index <= index)
			return &c->m_hist[k].m;
	return NULL;
}

bool lcr_mship_settled(const struct lcr_core *c)
{
	return c->m_log_n == 0 && c->membership.n_configs == 1;
}

/* The joint config that moves `cur` (one config) to `target` (one config). */
void lcr_mship_joint(const struct lcr_membership *cur, const struct lcr_membership *target,
		     struct lcr_membership *out, bool *direct)
{
	*out = *target;
	*direct = same_voters(cur, target);
	if (*direct)
		return;
	out->n_configs = 2;
	out->configs[0] = cur->configs[0];
	out->configs[1] = target->configs[0];
	/* A voter now that becomes a learner is a voter until the change ends,
	 * and the entry says it stays (retained), so that any leader finishes
	 * the change to this target (lcr_mship_target). */
	out->n_learners = 0;
	out->n_retained = 0;
	for (uint32_t i = 0; i < target->n_learners; i++) {
		uint32_t id = target->learners[i];
		if (lcr_membership_is_voter(out, id))
			out->retained[out->n_retained++] = id;
		else
			out->learners[out->n_learners++] = id;
	}
}

void lcr_mship_target(const struct lcr_membership *joint, struct lcr_membership *out)
{
	LCR_ASSERT(joint->n_configs == 2);
	LCR_ASSERT(joint->n_learners + joint->n_retained <= LCR_NODES_MAX);
	*out = *joint;
	out->n_configs = 1;
	out->configs[0] = joint->configs[1];
	memset(&out->configs[1], 0, sizeof(out->configs[1]));
	for (uint32_t i = 0; i < joint->n_retained; i++)
		out->learners[out->n_learners++] = joint->retained[i];
	out->n_retained = 0;
	memset(out->retained, 0, sizeof(out->retained));
	lcr_membership_keep_addrs(out, NULL); /* not those of the nodes that leave */
}

uint64_t lcr_core_membership_index(const struct lcr_core *c, bool *committed)
{
	if (committed)
		*committed = c->m_log_n == 0;
	return c->m_log_n ? c->m_log[c->m_log_n - 1].id.index : c->m_committed.id.index;
}
