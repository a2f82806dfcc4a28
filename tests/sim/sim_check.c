/* SPDX-License-Identifier: MIT */
/*
 * Invariants, checked after every step of the simulation (openraft's turmoil
 * invariants, openraft-reference.md §5, plus the durability ones):
 *
 *   election-safety       a leader's id names the node that holds it
 *   log-matching          one log id always carries the same entry and prefix
 *   leader-completeness   a new leader holds everything earlier leaders committed
 *   committed-immutable   an index once committed never changes its log id
 *   committed-on-quorum   a leader's commit point is durable on a voter quorum
 *   state-machine-safety  equal applied index implies equal state machine
 *   monotonic             vote, commit and apply never go back (per incarnation)
 *   vote-durability       a granted vote survives a crash
 *   ordering              purged <= applied <= committed <= last
 *   lease-exclusivity     two leaders never both hold a valid lease
 *   forgery-ignored       a forged message (a stranger's, or a term past
 *                         LCR_TERM_JUMP_MAX) changes nothing and is counted
 *   no-allocation         a core allocates nothing after lcr_core_new
 *   linearizable          the client history is linearizable (at the end)
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* ---- log id -> prefix hash ----------------------------------------------------- */

struct sim_idmap {
	struct {
		struct lcr_log_id id;
		uint64_t prefix_hash;
		bool used;
	} * slot;
	size_t cap, n;
};

static uint64_t id_hash(struct lcr_log_id id)
{
	uint64_t h = id.lid.term * 0x9e3779b97f4a7c15ull ^ id.lid.node * 0xc2b2ae3d27d4eb4full ^
		     id.index * 0x165667b19e3779f9ull;
	return h ^ (h >> 29);
}

static void idmap_grow(struct sim_idmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 4096;
	struct sim_idmap old = *m;

	m->slot = calloc(cap, sizeof(*m->slot));
	if (!m->slot)
		abort();
	m->cap = cap;
	m->n = 0;
	for (size_t i = 0; i < old.cap; i++) {
		if (!old.slot[i].used)
			continue;
		size_t j = id_hash(old.slot[i].id) & (cap - 1);
		while (m->slot[j].used)
			j = (j + 1) & (cap - 1);
		m->slot[j] = old.slot[i];
		m->n++;
	}
	free(old.slot);
}

/* Returns the stored prefix hash for id, inserting `h` if absent. */
static uint64_t idmap_get_or_put(struct sim_idmap *m, struct lcr_log_id id, uint64_t h)
{
	if (m->n * 2 >= m->cap)
		idmap_grow(m);
	size_t j = id_hash(id) & (m->cap - 1);
	while (m->slot[j].used) {
		if (lcr_log_id_eq(m->slot[j].id, id))
			return m->slot[j].prefix_hash;
		j = (j + 1) & (m->cap - 1);
	}
	m->slot[j].used = true;
	m->slot[j].id = id;
	m->slot[j].prefix_hash = h;
	m->n++;
	return h;
}

void sim_check_free(struct sim_world *w)
{
	if (w->ids) {
		free(w->ids->slot);
		free(w->ids);
	}
	if (w->leaders) {
		free(w->leaders->slot);
		free(w->leaders);
	}
	free(w->committed);
}

/* ---- reporting -------------------------------------------------------------------- */

void sim_violation(struct sim_world *w, const char *invariant, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->violated)
		return;
	w->violated = true;
	n = snprintf(w->violation, sizeof(w->violation), "%s: ", invariant);
	va_start(ap, fmt);
	vsnprintf(w->violation + n, sizeof(w->violation) - (size_t)n, fmt, ap);
	va_end(ap);
	sim_trace(w, 0, "VIOLATION %s", invariant);
}

static const char *lid_str(char *buf, struct lcr_leader_id lid)
{
	snprintf(buf, 32, "%llu-%u", (unsigned long long)lid.term, lid.node);
	return buf;
}

static const char *id_str(char *buf, struct lcr_log_id id)
{
	snprintf(buf, 48, "%llu-%u.%llu", (unsigned long long)id.lid.term, id.lid.node,
		 (unsigned long long)id.index);
	return buf;
}

/* ---- committed index record -------------------------------------------------------- */

static struct sim_committed *committed_at(struct sim_world *w, uint64_t index)
{
	if (index > w->cap_committed) {
		uint64_t cap = w->cap_committed ? w->cap_committed : 1024;
		while (cap < index)
			cap *= 2;
		w->committed = realloc(w->committed, cap * sizeof(*w->committed));
		if (!w->committed)
			abort();
		memset(w->committed + w->cap_committed, 0,
		       (cap - w->cap_committed) * sizeof(*w->committed));
		w->cap_committed = cap;
	}
	if (index > w->n_committed)
		w->n_committed = index;
	return &w->committed[index - 1];
}

static bool has_entry(const struct sim_log *l, struct lcr_log_id id, uint64_t prefix_hash)
{
	if (id.index == 0 || id.index > l->n)
		return false;
	const struct sim_entry *e = &l->e[id.index - 1];
	return lcr_log_id_eq(e->id, id) && e->prefix_hash == prefix_hash;
}

/* A node's commit point moved from `from` to `to`: record or compare each index. */
static void check_committed(struct sim_world *w, struct sim_node *n, uint64_t from, uint64_t to)
{
	char a[48], b[48];

	for (uint64_t i = from + 1; i <= to && !w->violated; i++) {
		const struct sim_entry *e = &n->mem.e[i - 1];
		struct sim_committed *c = committed_at(w, i);
		if (c->id.index == 0) {
			c->id = e->id;
			c->prefix_hash = e->prefix_hash;
			c->committer = n->st.vote.lid;
			/* Every current leader above the committer must hold it. */
			for (uint32_t k = 0; k < w->par.nodes; k++) {
				struct sim_node *o = &w->nodes[k];
				if (!o->up || o->role != LCR_ROLE_LEADER || o == n ||
				    lcr_leader_id_cmp(o->st.vote.lid, c->committer) <= 0)
					continue;
				if (!has_entry(&o->mem, c->id, c->prefix_hash))
					sim_violation(w, "leader-completeness",
						      "leader %u (%s) lacks %s committed by %s",
						      o->id, lid_str(a, o->st.vote.lid),
						      id_str(b, c->id),
						      lid_str(a + 24, c->committer));
			}
			continue;
		}
		if (!lcr_log_id_eq(c->id, e->id) || c->prefix_hash != e->prefix_hash)
			sim_violation(w, "committed-immutable",
				      "node %u committed %s at index %llu, earlier committed %s",
				      n->id, id_str(a, e->id), (unsigned long long)i,
				      id_str(b, c->id));
	}
}

static void check_commit_quorum(struct sim_world *w, struct sim_node *n)
{
	struct lcr_log_id cid = n->st.committed;
	const struct sim_entry *e = &n->mem.e[cid.index - 1];
	uint32_t durable = 0;
	char a[48];

	for (uint32_t k = 0; k < w->par.nodes; k++)
		durable += has_entry(&w->nodes[k].disk.log, cid, e->prefix_hash);
	if (durable < w->par.nodes / 2 + 1)
		sim_violation(w, "committed-on-quorum",
			      "leader %u committed %s but only %u of %u voters hold it durably",
			      n->id, id_str(a, cid), durable, w->par.nodes);
}

static void check_new_leader(struct sim_world *w, struct sim_node *n)
{
	struct lcr_leader_id lid = n->st.vote.lid;
	char a[48], b[48];

	if (lid.node != n->id || !n->st.vote.committed) {
		sim_violation(w, "election-safety", "node %u leads with vote %s%s", n->id,
			      lid_str(a, lid), n->st.vote.committed ? "" : " (uncommitted)");
		return;
	}
	if (lcr_leader_id_cmp(n->disk.vote.lid, lid) < 0) {
		sim_violation(w, "vote-durability",
			      "node %u leads as %s before its vote is on disk", n->id,
			      lid_str(a, lid));
		return;
	}
	/* One leadership per leader id, ever: a second one would assign the same
	 * log ids to different entries. */
	if (!w->leaders) {
		w->leaders = calloc(1, sizeof(*w->leaders));
		if (!w->leaders)
			abort();
	}
	struct lcr_log_id key = { lid, 0 };
	uint64_t tag = ((uint64_t)n->incarnation << 32) | (n->st.elections & 0xffffffffu);
	if (idmap_get_or_put(w->leaders, key, tag + 1) != tag + 1) {
		sim_violation(w, "election-safety", "leader id %s established twice (node %u)",
			      lid_str(a, lid), n->id);
		return;
	}
	for (uint64_t i = 1; i <= w->n_committed && !w->violated; i++) {
		const struct sim_committed *c = &w->committed[i - 1];
		if (c->id.index == 0 || lcr_leader_id_cmp(c->committer, lid) >= 0)
			continue;
		if (!has_entry(&n->mem, c->id, c->prefix_hash))
			sim_violation(w, "leader-completeness",
				      "new leader %u (%s) lacks %s committed by %s", n->id,
				      lid_str(a, lid), id_str(b, c->id),
				      lid_str(a + 24, c->committer));
	}
}

void sim_check_node(struct sim_world *w, struct sim_node *n)
{
	struct lcr_core_status st;
	char a[48], b[48];

	if (!n->up || w->violated)
		return;
	if (n->core_allocs != n->core_allocs_at_start) {
		sim_violation(w, "no-allocation", "node %u's core allocated %llu times after start",
			      n->id,
			      (unsigned long long)(n->core_allocs - n->core_allocs_at_start));
		return;
	}
	lcr_core_status(n->core, &st);
	if (st.role == LCR_ROLE_STOPPED) {
		n->role = st.role;
		return;
	}
	/* The driver's log mirrors the core's. */
	if (n->mem.n != st.last.index ||
	    (st.last.index && !lcr_log_id_eq(n->mem.e[st.last.index - 1].id, st.last))) {
		sim_violation(w, "driver", "node %u: core last %s, storage has %llu entries", n->id,
			      id_str(a, st.last), (unsigned long long)n->mem.n);
		return;
	}
	if (st.applied.index > st.committed.index || st.committed.index > st.last.index ||
	    st.purged.index > st.applied.index) {
		sim_violation(
			w, "ordering", "node %u: purged %llu applied %llu committed %llu last %llu",
			n->id, (unsigned long long)st.purged.index,
			(unsigned long long)st.applied.index,
			(unsigned long long)st.committed.index, (unsigned long long)st.last.index);
		return;
	}
	uint64_t prev_commit = 0;
	if (n->st_valid) {
		if (lcr_vote_cmp(st.vote, n->st.vote) < 0)
			sim_violation(w, "monotonic", "node %u vote went from %s to %s", n->id,
				      lid_str(a, n->st.vote.lid), lid_str(b, st.vote.lid));
		if (st.committed.index < n->st.committed.index)
			sim_violation(w, "monotonic", "node %u commit went from %llu to %llu",
				      n->id, (unsigned long long)n->st.committed.index,
				      (unsigned long long)st.committed.index);
		if (st.applied.index < n->st.applied.index)
			sim_violation(w, "monotonic", "node %u apply went from %llu to %llu", n->id,
				      (unsigned long long)n->st.applied.index,
				      (unsigned long long)st.applied.index);
		prev_commit = n->st.committed.index;
	}
	bool became_leader = st.role == LCR_ROLE_LEADER && n->role != LCR_ROLE_LEADER;
	n->st = st;
	n->st_valid = true;
	n->role = st.role;
	if (w->violated)
		return;
	if (became_leader)
		check_new_leader(w, n);
	if (st.committed.index > prev_commit && !w->violated) {
		check_committed(w, n, prev_commit, st.committed.index);
		if (st.role == LCR_ROLE_LEADER && !w->violated)
			check_commit_quorum(w, n);
	}
}

void sim_check_appended(struct sim_world *w, struct sim_node *n, uint64_t first, uint64_t last)
{
	char a[48];

	if (!w->ids) {
		w->ids = calloc(1, sizeof(*w->ids));
		if (!w->ids)
			abort();
	}
	for (uint64_t i = first; i <= last && !w->violated; i++) {
		const struct sim_entry *e = &n->mem.e[i - 1];
		if (idmap_get_or_put(w->ids, e->id, e->prefix_hash) != e->prefix_hash)
			sim_violation(
				w, "log-matching",
				"node %u holds %s with a different entry or prefix than another "
				"node",
				n->id, id_str(a, e->id));
	}
}

void sim_check_applied(struct sim_world *w, struct sim_node *n, uint64_t index)
{
	struct sim_committed *c = committed_at(w, index);
	const struct sim_entry *e = &n->mem.e[index - 1];
	char a[48], b[48];

	if (c->id.index == 0) {
		struct lcr_core_status st;
		lcr_core_status(n->core, &st);
		c->id = e->id;
		c->prefix_hash = e->prefix_hash;
		c->committer = st.vote.lid;
	} else if (!lcr_log_id_eq(c->id, e->id) || c->prefix_hash != e->prefix_hash) {
		sim_violation(w, "state-machine-safety",
			      "node %u applied %s at %llu, committed is %s", n->id,
			      id_str(a, e->id), (unsigned long long)index, id_str(b, c->id));
		return;
	}
	if (c->sm_hash == 0)
		c->sm_hash = n->sm_hash;
	else if (c->sm_hash != n->sm_hash)
		sim_violation(w, "state-machine-safety",
			      "node %u state after applying %llu differs from another node's",
			      n->id, (unsigned long long)index);
}

void sim_check_restart(struct sim_world *w, struct sim_node *n)
{
	char a[48], b[48];

	if (lcr_vote_cmp(n->disk.vote, n->max_granted) < 0)
		sim_violation(w, "vote-durability",
			      "node %u restarts with vote %s but had granted %s", n->id,
			      lid_str(a, n->disk.vote.lid), lid_str(b, n->max_granted.lid));
}

/*
 * Leases are what make LeaseRead safe: at no moment may two leaders both
 * believe they hold one. Skipped in seeds whose clocks jump independently:
 * a lease assumes clocks that advance at the same rate.
 */
void sim_check_leases(struct sim_world *w)
{
	uint32_t holder = 0;

	if (w->par.clock_skew)
		return;
	for (uint32_t k = 0; k < w->par.nodes; k++) {
		struct sim_node *n = &w->nodes[k];
		if (!n->up || !n->st_valid || n->role != LCR_ROLE_LEADER || n->st.transferring ||
		    n->st.lease_until_ns == 0)
			continue;
		int64_t end = (int64_t)n->st.lease_until_ns - n->clock_offset;
		if (end <= (int64_t)w->now)
			continue;
		if (holder) {
			sim_violation(w, "lease-exclusivity",
				      "leaders %u and %u both hold a valid lease", holder, n->id);
			return;
		}
		holder = n->id;
	}
}

void sim_check_history(struct sim_world *w)
{
	struct lcr_linz_op *ops = malloc((w->n_hist + 1) * sizeof(*ops));
	struct lcr_linz_result res;
	size_t n = 0;

	if (!ops)
		abort();
	for (size_t i = 0; i < w->n_hist; i++)
		if (w->hist[i].kind != 0)
			ops[n++] = w->hist[i];
	int rc = lcr_linz_check(ops, n, 2000000, &res);
	free(ops);
	if (rc < 0) {
		sim_violation(w, "linearizable", "checker failed: %d", rc);
		return;
	}
	if (res.gave_up) {
		sim_violation(w, "linearizable", "checker gave up on key %llu after %llu states",
			      (unsigned long long)res.key, (unsigned long long)res.states);
		return;
	}
	if (!res.ok)
		sim_violation(w, "linearizable", "key %llu: %s", (unsigned long long)res.key,
			      res.why);
}

/* ---- forgeries ------------------------------------------------------------------ */

/*
 * The forger's messages (sim.c, forge) come from outside the cluster or carry
 * a term no peer could have reached: the receiver must refuse them at the
 * door. Its vote stays, it emits no command (no vote saved, no entry
 * appended, no reply), and the refusal is counted.
 */
void sim_check_forged(struct sim_world *w, struct sim_node *n, const struct lcr_core_status *before,
		      const struct lcr_msg *m)
{
	struct lcr_core_status after;
	uint32_t ncmd;

	lcr_core_status(n->core, &after);
	lcr_core_commands(n->core, &ncmd);
	if (!lcr_vote_eq(before->vote, after.vote))
		sim_violation(w, "forgery-ignored",
			      "node %u: a forged message (type %u from %u) moved its vote from "
			      "term %llu to %llu",
			      n->id, m->type, m->from, (unsigned long long)before->vote.lid.term,
			      (unsigned long long)after.vote.lid.term);
	else if (ncmd != 0)
		sim_violation(w, "forgery-ignored",
			      "node %u: a forged message (type %u from %u) made %u commands", n->id,
			      m->type, m->from, ncmd);
	else if (after.stale_msgs + after.far_terms + after.dropped_msgs ==
		 before->stale_msgs + before->far_terms + before->dropped_msgs)
		sim_violation(w, "forgery-ignored",
			      "node %u: a forged message (type %u from %u) was not counted", n->id,
			      m->type, m->from);
}
