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
 *   said-durable          every vote/term and log position a message states is on
 *                         the sender's disk before it leaves, and survives a crash
 *   leader-elected        a leader's term was granted to it by a voter quorum
 *   match-durable         a leader's recorded match for a follower is in that
 *                         follower's durable log
 *   stale-response        an AppendEntries response to an earlier leadership
 *                         changes nothing at its receiver
 *   vote-grant            a granted vote names the requested vote as the voter's
 *   lease-promise         a follower that acknowledged a leader's message sent at
 *                         t grants no vote to another leadership before t + lease,
 *                         unless that leader waived it (leadership transfer)
 *   read-leadership       a read is served only by the leadership that took it,
 *                         a ReadIndex after a quorum acked a later message, a
 *                         LeaseRead only under a valid lease
 *   follower-read-fresh   a follower serves a read (ReadIndex through its
 *                         leader) only once it has applied every index any
 *                         replica knew committed when the read was taken
 *   ordering              purged <= applied <= committed <= last
 *   lease-exclusivity     two leaders never both hold a valid lease
 *   lease-backed          a leader's lease ends no later than the promises a
 *                         quorum of followers keep for it (on its clock)
 *   step-down             a leader that heard from no quorum for a lease and an
 *                         election timeout steps down at its next tick, and its
 *                         timer is set for that moment (CheckQuorum)
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

/* The value stored for id, inserted as 0 if absent. */
static uint64_t *idmap_ref(struct sim_idmap **mp, struct lcr_log_id id)
{
	if (!*mp) {
		*mp = calloc(1, sizeof(**mp));
		if (!*mp)
			abort();
	}
	struct sim_idmap *m = *mp;
	if (m->n * 2 >= m->cap)
		idmap_grow(m);
	size_t j = id_hash(id) & (m->cap - 1);
	while (m->slot[j].used) {
		if (lcr_log_id_eq(m->slot[j].id, id))
			return &m->slot[j].prefix_hash;
		j = (j + 1) & (m->cap - 1);
	}
	m->slot[j].used = true;
	m->slot[j].id = id;
	m->slot[j].prefix_hash = 0;
	m->n++;
	return &m->slot[j].prefix_hash;
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
	if (w->grants) {
		free(w->grants->slot);
		free(w->grants);
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

/* The same configs and learners, in order (as encoded). */
static bool lcr_membership_eq_sim(const struct lcr_membership *a, const struct lcr_membership *b)
{
	uint8_t x[LCR_MEMBERSHIP_BYTES_MAX], y[LCR_MEMBERSHIP_BYTES_MAX];
	size_t nx = lcr_membership_encode(a, x, sizeof(x)),
	       ny = lcr_membership_encode(b, y, sizeof(y));
	return nx == ny && memcmp(x, y, nx) == 0;
}

/* Whether the nodes in `mask` (bit id - 1) hold a majority in every config of m. */
static bool quorum_mask(const struct lcr_membership *m, uint64_t mask)
{
	for (uint32_t c = 0; c < m->n_configs; c++) {
		uint32_t got = 0;
		for (uint32_t i = 0; i < m->configs[c].n; i++) {
			uint32_t id = m->configs[c].ids[i];
			got += id >= 1 && id <= 64 && (mask >> (id - 1) & 1);
		}
		if (got < m->configs[c].n / 2 + 1)
			return false;
	}
	return true;
}

/* The greatest v that a majority of every config of m holds (val[id - 1]). */
static uint64_t quorum_value(const struct lcr_membership *m, const uint64_t *val)
{
	uint64_t result = UINT64_MAX;

	for (uint32_t c = 0; c < m->n_configs; c++) {
		uint64_t v[LCR_NODES_MAX];
		uint32_t n = m->configs[c].n;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t id = m->configs[c].ids[i];
			v[i] = id >= 1 && id <= SIM_NODES_MAX ? val[id - 1] : 0;
		}
		for (uint32_t i = 1; i < n; i++) /* descending */
			for (uint32_t j = i; j > 0 && v[j - 1] < v[j]; j--) {
				uint64_t t = v[j];
				v[j] = v[j - 1];
				v[j - 1] = t;
			}
		if (v[n / 2] < result)
			result = v[n / 2];
	}
	return result;
}

static bool same_ids(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb)
{
	if (na != nb)
		return false;
	for (uint32_t i = 0; i < na; i++) {
		uint32_t k = 0;
		while (k < nb && b[k] != a[i])
			k++;
		if (k == nb)
			return false;
	}
	return true;
}

/*
 * A membership entry committed for the first time at `index`. A joint one
 * the simulation asked for names the target its change must end in; the next
 * membership entry committed is that end (one change at a time, and a leader
 * finishes a committed joint config before any other), proposed by the
 * leader that began it or by a later one. Its voters and learners must be
 * the target's, as sets (the core may order learners and fill in addresses).
 */
static void check_membership_target(struct sim_world *w, const struct sim_entry *e)
{
	struct lcr_membership m;

	if (e->type != LCR_ENTRY_MEMBERSHIP || lcr_membership_decode(e->m, e->len, &m) < 0)
		return;
	if (m.n_configs == 2) {
		w->mc_want_set = false;
		for (uint32_t k = 0; k < SIM_MC_ASKED && k < w->mc_asked_n; k++)
			if (lcr_log_id_eq(w->mc_asked[k].joint, e->id)) {
				w->mc_want = w->mc_asked[k].target;
				w->mc_want_joint = e->id.index;
				w->mc_want_set = true;
			}
		return;
	}
	if (!w->mc_want_set || w->mc_want_joint >= e->id.index)
		return;
	w->mc_want_set = false;
	const struct lcr_membership *t = &w->mc_want;
	if (!same_ids(m.configs[0].ids, m.configs[0].n, t->configs[0].ids, t->configs[0].n) ||
	    !same_ids(m.learners, m.n_learners, t->learners, t->n_learners)) {
		char a[48];
		sim_violation(w, "membership-target",
			      "the change whose joint entry is at %llu ended at %s in %u voters "
			      "and %u learners, not the %u voters and %u learners asked for",
			      (unsigned long long)w->mc_want_joint, id_str(a, e->id),
			      m.configs[0].n, m.n_learners, t->configs[0].n, t->n_learners);
	}
}

/*
 * The committed membership entries in log order, each against the one before
 * it (the first membership, before the first entry): voters change only
 * through a joint config of the old voters and the new (thesis §4.3), which
 * the next entry ends in its second config.
 */
static void check_membership_joint(struct sim_world *w, const struct sim_entry *e)
{
	const struct lcr_membership *p = &w->mc_last;
	struct lcr_membership m;
	bool ok;

	if (e->type != LCR_ENTRY_MEMBERSHIP || lcr_membership_decode(e->m, e->len, &m) < 0)
		return;
	if (m.n_configs == 2)
		ok = p->n_configs == 1 &&
		     same_ids(m.configs[0].ids, m.configs[0].n, p->configs[0].ids, p->configs[0].n);
	else
		ok = same_ids(m.configs[0].ids, m.configs[0].n, p->configs[p->n_configs - 1].ids,
			      p->configs[p->n_configs - 1].n);
	if (w->mc_last_known && !ok) {
		char a[48];
		sim_violation(w, "membership-joint",
			      "the membership entry %s (%u configs, %u voters) does not follow "
			      "from the one before (%u configs, %u voters in its last)",
			      id_str(a, e->id), m.n_configs, m.configs[m.n_configs - 1].n,
			      p->n_configs, p->configs[p->n_configs - 1].n);
	}
	w->mc_last = m;
	w->mc_last_known = true;
}

/* A node's commit point moved from `from` to `to`: record or compare each index. */
static void check_committed(struct sim_world *w, struct sim_node *n, uint64_t from, uint64_t to)
{
	char a[48], b[48];

	/* Each committed index once, in order (a commit point that jumped
	 * past the ones seen, by a snapshot, loses track of the change). */
	if (w->mc_scanned == 0 && from == 0) {
		w->mc_last = n->initial_membership;
		w->mc_last_known = true;
	}
	if (w->mc_scanned < from) {
		w->mc_want_set = false;
		w->mc_last_known = false;
	}
	for (uint64_t i = (w->mc_scanned > from ? w->mc_scanned : from) + 1;
	     i <= to && !w->violated; i++) {
		check_membership_joint(w, &n->mem.e[i - 1]);
		check_membership_target(w, &n->mem.e[i - 1]);
	}
	if (w->mc_scanned < to)
		w->mc_scanned = to;
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

	uint64_t mask = 0;
	for (uint32_t k = 0; k < w->par.nodes; k++)
		if (has_entry(&w->nodes[k].disk.log, cid, e->prefix_hash)) {
			durable++;
			mask |= 1ull << k;
		}
	/* A majority of every config of the leader's membership (both of a
	 * joint one). */
	if (!quorum_mask(&n->st.membership, mask))
		sim_violation(w, "committed-on-quorum",
			      "leader %u committed %s but only nodes %#llx (%u) hold it durably, "
			      "not a majority of each of its %u config(s)",
			      n->id, id_str(a, cid), (unsigned long long)mask, durable,
			      n->st.membership.n_configs);
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
	/* Its term was granted by a quorum: the grants sent for this leader id,
	 * and its own vote (on its disk, checked above). */
	uint64_t granted = *idmap_ref(&w->grants, key) | (1ull << (n->id - 1));
	if (!quorum_mask(&n->st.membership, granted)) {
		sim_violation(w, "leader-elected",
			      "node %u leads as %s with grants from %u nodes (mask %#llx), not a "
			      "majority of each of its %u config(s)",
			      n->id, lid_str(a, lid), (uint32_t)__builtin_popcountll(granted),
			      (unsigned long long)granted, n->st.membership.n_configs);
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

/*
 * What a leader records as a follower's match, the follower told it was
 * durable: it must be in that follower's log on disk, as long as the follower
 * has not moved on to a newer leadership (which may have truncated it).
 */
static void check_matches(struct sim_world *w, struct sim_node *n)
{
	char a[48], b[48];

	for (uint32_t i = 0; i < n->st.n_nodes; i++) {
		struct lcr_log_id m = n->st.matching[i];
		uint32_t id = n->st.nodes[i];
		if (id == n->id || m.index == 0 || id < 1 || id > w->par.nodes)
			continue;
		const struct sim_node *p = &w->nodes[id - 1];
		if (lcr_leader_id_cmp(p->disk.vote.lid, n->st.vote.lid) > 0)
			continue;
		if (m.index > p->disk.log.n || !lcr_log_id_eq(p->disk.log.e[m.index - 1].id, m))
			sim_violation(w, "match-durable",
				      "leader %u (%s) records %s as node %u's match, but its disk "
				      "log %s",
				      n->id, lid_str(a, n->st.vote.lid), id_str(b, m), id,
				      m.index > p->disk.log.n ? "is shorter" : "differs there");
	}
}

/*
 * CheckQuorum (thesis §6.2): when a leader must have stepped down, from what
 * the simulator saw reach it. The acks it heard, each counted from its
 * request's send time on the leader's clock, as the core counts them; the
 * quorum-th newest (itself: now) or the start of its leadership, whichever
 * is later, plus a lease and the minimum election timeout. The core may
 * have counted fewer acks (a confused one it ignores), never more: its
 * deadline is at or before this one.
 */
static uint64_t step_down_at(const struct sim_world *w, const struct sim_node *n)
{
	uint64_t v[SIM_NODES_MAX] = { 0 };

	for (uint32_t i = 0; i < w->par.nodes; i++)
		v[i] = w->nodes[i].id == n->id ? UINT64_MAX : n->heard_ns[i];
	uint64_t heard = quorum_value(&n->st.membership, v);
	if (heard < n->lead_since)
		heard = n->lead_since;
	return heard + SIM_STEP_DOWN_NS;
}

void sim_check_step_down(struct sim_world *w, struct sim_node *n)
{
	char a[48];

	if (w->violated || !n->up || !n->st_valid || n->role != LCR_ROLE_LEADER)
		return;
	uint64_t now = sim_node_time(w, n), at = step_down_at(w, n);
	if (now >= at)
		sim_violation(w, "step-down",
			      "leader %u (%s) still leads at a tick %.3f ms after it should have "
			      "stepped down (no quorum heard for %.3f ms)",
			      n->id, lid_str(a, n->st.vote.lid), (double)(now - at) / 1e6,
			      (double)(now - at + SIM_STEP_DOWN_NS) / 1e6);
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
	/* The effective membership is the newest in the log (openraft: it takes
	 * effect when appended, and reverts when truncated); below the purge
	 * point, the snapshot's; without either, the one the node started with. */
	{
		struct lcr_membership want;
		bool found = false;
		for (uint64_t i = n->mem.n; i > n->mem_purged.index && !found; i--) {
			const struct sim_entry *e = &n->mem.e[i - 1];
			if (e->type == LCR_ENTRY_MEMBERSHIP)
				found = lcr_membership_decode(e->m, e->len, &want) == 0;
		}
		if (!found && n->snap.meta.last.index > 0)
			want = n->snap.membership, found = true;
		if (!found)
			want = n->initial_membership;
		if (!lcr_membership_eq_sim(&want, &st.membership)) {
			sim_violation(
				w, "membership-effective",
				"node %u's effective membership (%u configs, %u+%u voters) is "
				"not the newest in its log",
				n->id, st.membership.n_configs, st.membership.configs[0].n,
				st.membership.n_configs > 1 ? st.membership.configs[1].n : 0);
			return;
		}
	}
	/* Node addresses: every node that joined after the start has its own
	 * (given when it was added, kept by every change after), and none
	 * has another's. */
	{
		for (uint32_t id = 1; id <= w->par.nodes; id++) {
			if (!lcr_membership_contains(&st.membership, id))
				continue;
			const char *ad = lcr_membership_addr(&st.membership, id);
			char want[LCR_NODE_ADDR_MAX];
			sim_node_addr(id, want);
			/* Voter or learner: a node the first membership leaves
			 * out is a member only once a change added it, with its
			 * address (a node that joins is in no config until then,
			 * so its snapshots never name it either). */
			if ((!ad && !lcr_membership_contains(&n->initial_membership, id)) ||
			    (ad && strcmp(ad, want) != 0)) {
				sim_violation(
					w, "membership-addrs",
					"node %u's membership (entry %s) has %s%s for node %u",
					n->id, id_str(a, st.membership_id),
					ad ? "the address " : "no address", ad ? ad : "", id);
				return;
			}
		}
	}
	/* openraft's log pointers: purged <= snapshot <= committed, applied <=
	 * committed <= last (while a snapshot installs, applied trails it). */
	if (st.applied.index > st.committed.index || st.committed.index > st.last.index ||
	    st.purged.index > st.snapshot.last.index ||
	    st.snapshot.last.index > st.committed.index) {
		sim_violation(w, "ordering",
			      "node %u: purged %llu snapshot %llu applied %llu committed %llu "
			      "last %llu",
			      n->id, (unsigned long long)st.purged.index,
			      (unsigned long long)st.snapshot.last.index,
			      (unsigned long long)st.applied.index,
			      (unsigned long long)st.committed.index,
			      (unsigned long long)st.last.index);
		return;
	}
	uint64_t prev_commit = 0;
	if (n->st_valid) {
		/* The one way back: a leader that heard no quorum for a lease
		 * steps down, its own vote uncommitted in memory (same id). */
		bool stepped_down = n->st.role == LCR_ROLE_LEADER && st.role != LCR_ROLE_LEADER &&
				    lcr_leader_id_eq(st.vote.lid, n->st.vote.lid) &&
				    st.vote.lid.node == n->id && !st.vote.committed;
		if (lcr_vote_cmp(st.vote, n->st.vote) < 0 && !stepped_down)
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
	/* A newer committed leader adopted: the lease lent to older ones is over
	 * (its election proved it), and this one has been lent nothing yet. */
	if (st.vote.committed && lcr_leader_id_cmp(st.vote.lid, n->promise_lid) > 0) {
		n->promise_lid = st.vote.lid;
		n->promise_end = 0;
		n->waived_for = (struct lcr_leader_id){ 0, 0 };
	}
	n->st = st;
	n->st_valid = true;
	n->role = st.role;
	if (became_leader) {
		n->lead_since = sim_node_time(w, n);
		memset(n->heard_ns, 0, sizeof(n->heard_ns));
	}
	if (w->violated)
		return;
	if (became_leader)
		check_new_leader(w, n);
	if (st.role == LCR_ROLE_LEADER && !w->violated)
		check_matches(w, n);
	/* The leader asks to be woken by its CheckQuorum deadline at the latest. */
	if (st.role == LCR_ROLE_LEADER && !w->violated && st.next_timer_ns > step_down_at(w, n))
		sim_violation(w, "step-down",
			      "leader %u (%s) sets its timer %.3f ms past its CheckQuorum deadline",
			      n->id, lid_str(a, st.vote.lid),
			      (double)(st.next_timer_ns - step_down_at(w, n)) / 1e6);
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
	else if (lcr_leader_id_cmp(n->disk.vote.lid, n->max_said) < 0)
		sim_violation(w, "said-durable", "node %u restarts with vote %s but had stated %s",
			      n->id, lid_str(a, n->disk.vote.lid), lid_str(b, n->max_said));
	else if (lcr_leader_id_eq(n->disk.vote.lid, n->ack_lid) && n->last_ack.index > 0 &&
		 (n->last_ack.index > n->disk.log.n ||
		  !lcr_log_id_eq(n->disk.log.e[n->last_ack.index - 1].id, n->last_ack)))
		sim_violation(w, "said-durable",
			      "node %u restarts without %s, which it acknowledged to %s", n->id,
			      id_str(a, n->last_ack), lid_str(b, n->ack_lid));
}

/* ---- what messages say ----------------------------------------------------------- */

/*
 * The vote (term and leader) a message states as its sender's own, if any.
 * A Pre-Vote reply states nothing durable (openraft: it persists nothing and
 * answers at once); a Conflict names the request's vote only to match the
 * reply to its leadership and claims no log position (openraft answers it
 * with no I/O condition).
 */
static bool stated_vote(const struct lcr_msg *m, struct lcr_leader_id *lid)
{
	switch (m->type) {
	case LCR_MSG_VOTE_REQ:
		*lid = m->vote_req.vote.lid;
		return !m->vote_req.pre_vote;
	case LCR_MSG_VOTE_RESP:
		*lid = m->vote_resp.vote.lid;
		return !m->vote_resp.pre_vote;
	case LCR_MSG_APPEND_REQ:
		*lid = m->append_req.vote.lid;
		return true;
	case LCR_MSG_APPEND_RESP:
		*lid = m->append_resp.vote.lid;
		return m->append_resp.result != LCR_APPEND_CONFLICT;
	case LCR_MSG_TRANSFER_LEADER:
		*lid = m->transfer.from_leader.lid;
		return true;
	case LCR_MSG_SNAPSHOT_RESP:
		*lid = m->snapshot_resp.vote.lid;
		return true;
	default:
		return false;
	}
}

void sim_check_sent(struct sim_world *w, struct sim_node *n, const struct lcr_msg *m)
{
	struct lcr_leader_id lid;
	char a[48], b[48];

	if (stated_vote(m, &lid)) {
		if (lcr_leader_id_cmp(n->disk.vote.lid, lid) < 0) {
			sim_violation(w, "said-durable",
				      "node %u sends a %u message stating vote %s while its disk "
				      "holds %s",
				      n->id, m->type, lid_str(a, lid),
				      lid_str(b, n->disk.vote.lid));
			return;
		}
		if (lcr_leader_id_cmp(lid, n->max_said) > 0)
			n->max_said = lid;
	}
	if (m->type == LCR_MSG_VOTE_RESP && m->vote_resp.granted && !m->vote_resp.pre_vote) {
		const struct lcr_vote_resp *r = &m->vote_resp;
		struct lcr_log_id key = { r->vote.lid, 0 };
		if (!lcr_vote_eq(r->vote, r->req_vote)) {
			sim_violation(w, "vote-grant", "node %u grants %s while its vote is %s",
				      n->id, lid_str(a, r->req_vote.lid), lid_str(b, r->vote.lid));
			return;
		}
		uint32_t pl = n->promise_lid.node;
		uint64_t pl_now = pl >= 1 && pl <= w->par.nodes
					  ? sim_node_time(w, &w->nodes[pl - 1])
					  : UINT64_MAX;
		if (!w->par.clock_skew && pl_now < n->promise_end &&
		    !lcr_leader_id_eq(r->req_vote.lid, n->promise_lid) &&
		    !lcr_leader_id_eq(r->req_vote.lid, n->waived_for)) {
			sim_violation(w, "lease-promise",
				      "node %u grants %s %.3f ms before the lease it lent %s ends",
				      n->id, lid_str(a, r->req_vote.lid),
				      (double)(n->promise_end - pl_now) / 1e6,
				      lid_str(b, n->promise_lid));
			return;
		}
		*idmap_ref(&w->grants, key) |= 1ull << (n->id - 1);
	}
	if (m->type == LCR_MSG_APPEND_REQ || m->type == LCR_MSG_SNAPSHOT_REQ) {
		struct lcr_leader_id slid = m->type == LCR_MSG_APPEND_REQ
						    ? m->append_req.vote.lid
						    : m->snapshot_req.vote.lid;
		uint64_t seq = m->type == LCR_MSG_APPEND_REQ ? m->append_req.send_seq
							     : m->snapshot_req.send_seq;
		if (!lcr_leader_id_eq(n->sent_lid, slid)) {
			n->sent_lid = slid;
			n->sent_seq = 0;
		}
		if (seq > n->sent_seq)
			n->sent_seq = seq;
	}
	/* A read index granted to a follower: a quorum acked something the
	 * leader sent after the request came. */
	const struct sim_peer_read *grant = NULL;
	for (uint32_t k = 0;
	     m->type == LCR_MSG_READ_INDEX_RESP && m->read_index_resp.result == LCR_READ_INDEX_OK &&
	     m->to >= 1 && m->to <= w->par.nodes && k < SIM_PEER_READS;
	     k++) {
		const struct sim_peer_read *pr = &n->peer_reads[m->to - 1][k];
		if (pr->read_id == m->read_index_resp.read_id &&
		    lcr_leader_id_eq(pr->lid, m->read_index_resp.vote.lid))
			grant = pr;
	}
	if (grant) {
		struct lcr_leader_id rl = grant->lid;
		uint64_t need = grant->need;
		uint32_t acked = 1;
		uint64_t mask = 1ull << (n->id - 1);
		struct lcr_core_status now;
		for (uint32_t k = 0; k < w->par.nodes; k++) {
			const struct sim_node *f = &w->nodes[k];
			if (f != n && lcr_leader_id_eq(f->ack_to_lid[n->id - 1], rl) &&
			    f->ack_to_seq[n->id - 1] > need) {
				acked++;
				mask |= 1ull << k;
			}
		}
		lcr_core_status(n->core, &now);
		if (!quorum_mask(&now.membership, mask)) {
			sim_violation(w, "read-leadership",
				      "leader %u (%s) grants node %u a read index with %u nodes "
				      "acking a message sent after the request (seq > %llu), not a "
				      "majority of each config",
				      n->id, lid_str(a, rl), m->to, acked,
				      (unsigned long long)need);
			return;
		}
	}
	/* An ack says: durable up to this log id, under this vote. A snapshot's
	 * answer to the leadership it names is one too (a HigherVote answer names
	 * another). */
	struct lcr_log_id id;
	uint64_t send_ns, send_seq;
	if (m->type == LCR_MSG_APPEND_RESP && m->append_resp.result == LCR_APPEND_OK) {
		id = m->append_resp.log_id;
		send_ns = m->append_resp.send_ns;
		send_seq = m->append_resp.send_seq;
	} else if (m->type == LCR_MSG_SNAPSHOT_RESP && m->snapshot_resp.vote.committed &&
		   m->snapshot_resp.vote.lid.node == m->to) {
		id = m->snapshot_resp.last;
		send_ns = m->snapshot_resp.send_ns;
		send_seq = m->snapshot_resp.send_seq;
	} else {
		return;
	}
	if (id.index > 0 &&
	    (id.index > n->disk.log.n || !lcr_log_id_eq(n->disk.log.e[id.index - 1].id, id))) {
		sim_violation(w, "said-durable",
			      "node %u acknowledges %s to node %u before it is on its disk", n->id,
			      id_str(a, id), m->to);
		return;
	}
	n->last_ack = id;
	n->ack_lid = lid;
	/* The leader's lease counts this ack from the request's send time, on
	 * its clock; the follower keeps its promise that long. */
	uint64_t end = send_ns + SIM_LEASE_NS;
	if (lcr_leader_id_eq(lid, n->waived_lid))
		end = 0;
	if (lcr_leader_id_cmp(lid, n->promise_lid) > 0) {
		n->promise_lid = lid;
		n->promise_end = end;
		n->waived_for = (struct lcr_leader_id){ 0, 0 };
	} else if (lcr_leader_id_eq(lid, n->promise_lid) && end > n->promise_end) {
		n->promise_end = end;
	}
	uint32_t to = m->to - 1;
	if (to < SIM_NODES_MAX) {
		if (!lcr_leader_id_eq(n->ack_to_lid[to], lid)) {
			n->ack_to_lid[to] = lid;
			n->ack_to_seq[to] = 0;
		}
		if (send_seq > n->ack_to_seq[to])
			n->ack_to_seq[to] = send_seq;
	}
}

void sim_check_received(struct sim_world *w, struct sim_node *n, const struct lcr_msg *m)
{
	if (!n->st_valid)
		return;
	/* A follower's read index request reaching a leader: its answer needs a
	 * quorum to ack something sent after this (thesis §6.4). */
	if (m->type == LCR_MSG_READ_INDEX_REQ && n->role == LCR_ROLE_LEADER && m->from >= 1 &&
	    m->from <= w->par.nodes) {
		struct sim_peer_read *pr = n->peer_reads[m->from - 1];
		uint64_t need = lcr_leader_id_eq(n->sent_lid, n->st.vote.lid) ? n->sent_seq : 0;
		uint32_t k = 0;
		/* The same request again (a duplicate, or the follower asking
		 * again): an answer may be the first copy's. */
		while (k < SIM_PEER_READS && !(pr[k].read_id == m->read_index_req.read_id &&
					       lcr_leader_id_eq(pr[k].lid, n->st.vote.lid)))
			k++;
		if (k < SIM_PEER_READS) {
			if (need < pr[k].need)
				pr[k].need = need;
		} else {
			uint32_t slot = n->peer_reads_next[m->from - 1]++ % SIM_PEER_READS;
			pr[slot].read_id = m->read_index_req.read_id;
			pr[slot].lid = n->st.vote.lid;
			pr[slot].need = need;
		}
	}
	/* An ack reaching the leadership it names: the leader heard its sender. */
	if (m->type == LCR_MSG_APPEND_RESP && m->append_resp.result == LCR_APPEND_OK &&
	    n->role == LCR_ROLE_LEADER && lcr_vote_eq(m->append_resp.vote, n->st.vote) &&
	    m->from >= 1 && m->from <= w->par.nodes &&
	    m->append_resp.send_ns <= sim_node_time(w, n) &&
	    m->append_resp.send_ns > n->heard_ns[m->from - 1])
		n->heard_ns[m->from - 1] = m->append_resp.send_ns;
	if (m->type == LCR_MSG_SNAPSHOT_RESP && n->role == LCR_ROLE_LEADER &&
	    lcr_vote_eq(m->snapshot_resp.vote, n->st.vote) && m->from >= 1 &&
	    m->from <= w->par.nodes && m->snapshot_resp.send_ns <= sim_node_time(w, n) &&
	    m->snapshot_resp.send_ns > n->heard_ns[m->from - 1])
		n->heard_ns[m->from - 1] = m->snapshot_resp.send_ns;
	/* The leader the node follows may waive the lease it was lent (for good,
	 * by TransferLeader; for one candidate, by its transfer vote request). */
	if (m->type == LCR_MSG_TRANSFER_LEADER && m->transfer.from_leader.committed &&
	    m->from == m->transfer.from_leader.lid.node &&
	    lcr_vote_eq(m->transfer.from_leader, n->st.vote)) {
		n->waived_lid = m->transfer.from_leader.lid;
		if (lcr_leader_id_eq(n->promise_lid, n->waived_lid))
			n->promise_end = 0;
	}
	if (m->type == LCR_MSG_VOTE_REQ && m->vote_req.leadership_transfer &&
	    m->vote_req.transfer_from.committed &&
	    lcr_vote_eq(m->vote_req.transfer_from, n->st.vote))
		n->waived_for = m->vote_req.vote.lid;
}

/* ---- the leader's bookkeeping ------------------------------------------------------ */

bool sim_response_stale(const struct lcr_core_status *st, const struct lcr_msg *m)
{
	if (m->type == LCR_MSG_SNAPSHOT_RESP) {
		/* An answer naming a vote above ours may be a HigherVote. */
		struct lcr_vote v = m->snapshot_resp.vote;
		v.committed = false;
		if (lcr_vote_cmp(v, st->vote) > 0)
			return false;
		return st->role != LCR_ROLE_LEADER || !lcr_vote_eq(st->vote, m->snapshot_resp.vote);
	}
	if (m->type != LCR_MSG_APPEND_RESP || m->append_resp.result == LCR_APPEND_HIGHER_VOTE)
		return false;
	return st->role != LCR_ROLE_LEADER || !lcr_vote_eq(st->vote, m->append_resp.vote);
}

void sim_check_stale_response(struct sim_world *w, struct sim_node *n,
			      const struct lcr_core_status *before, const struct lcr_msg *m)
{
	struct lcr_core_status after;
	uint32_t ncmd;
	char a[48];

	lcr_core_status(n->core, &after);
	lcr_core_commands(n->core, &ncmd);
	bool same = lcr_vote_eq(before->vote, after.vote) && before->role == after.role &&
		    lcr_log_id_eq(before->committed, after.committed) && ncmd == 0;
	/* Nor does it lend the leader any lease (it may run out meanwhile). */
	if (before->lease_until_ns && after.lease_until_ns &&
	    before->lease_until_ns != after.lease_until_ns)
		same = false;
	for (uint32_t i = 0; i < after.n_nodes && same; i++)
		same = lcr_log_id_eq(before->matching[i], after.matching[i]);
	if (!same)
		sim_violation(w, "stale-response",
			      "node %u (vote %s, role %u) changed on a%s response from %u "
			      "to leadership %s",
			      n->id, lid_str(a, before->vote.lid), before->role,
			      m->type == LCR_MSG_SNAPSHOT_RESP ? " snapshot" : "n append", m->from,
			      lid_str(a + 24, m->type == LCR_MSG_SNAPSHOT_RESP
						      ? m->snapshot_resp.vote.lid
						      : m->append_resp.vote.lid));
}

void sim_check_read_taken(struct sim_world *w, struct sim_node *n, struct sim_wait *wt)
{
	struct lcr_core_status st;

	lcr_core_status(n->core, &st);
	wt->lid = st.vote.lid;
	if (wt->via_leader) {
		if (wt->lease || st.role == LCR_ROLE_LEADER || st.role == LCR_ROLE_CANDIDATE ||
		    !st.vote.committed)
			sim_violation(w, "read-leadership",
				      "node %u takes a follower read as role %u%s", n->id, st.role,
				      wt->lease ? " with a lease" : "");
		return;
	}
	if (st.role != LCR_ROLE_LEADER) {
		sim_violation(w, "read-leadership", "node %u takes a read as %u, not as leader",
			      n->id, st.role);
		return;
	}
	if (wt->lease && st.lease_until_ns <= sim_node_time(w, n))
		sim_violation(w, "read-leadership", "node %u takes a LeaseRead without a lease",
			      n->id);
}

void sim_check_read_served(struct sim_world *w, struct sim_node *n, const struct sim_wait *wt)
{
	struct lcr_core_status st;
	char a[48], b[48];

	lcr_core_status(n->core, &st);
	if (wt->via_leader) {
		/* The leader's read index covers every index committed anywhere
		 * when the request reached it, which was after the read came. */
		if (n->applied.index < wt->commit_floor)
			sim_violation(w, "follower-read-fresh",
				      "follower %u serves a read at applied index %llu; index %llu "
				      "was committed when it took the read",
				      n->id, (unsigned long long)n->applied.index,
				      (unsigned long long)wt->commit_floor);
		return;
	}
	if (st.role != LCR_ROLE_LEADER || !lcr_leader_id_eq(st.vote.lid, wt->lid)) {
		sim_violation(w, "read-leadership",
			      "node %u serves a read taken as leader %s while it is %s (role %u)",
			      n->id, lid_str(a, wt->lid), lid_str(b, st.vote.lid), st.role);
		return;
	}
	if (wt->lease)
		return;
	uint32_t acked = 1;
	uint64_t mask = 1ull << (n->id - 1);
	for (uint32_t k = 0; k < w->par.nodes; k++) {
		const struct sim_node *f = &w->nodes[k];
		if (f != n && lcr_leader_id_eq(f->ack_to_lid[n->id - 1], wt->lid) &&
		    f->ack_to_seq[n->id - 1] > wt->need_seq) {
			acked++;
			mask |= 1ull << k;
		}
	}
	if (!quorum_mask(&st.membership, mask))
		sim_violation(w, "read-leadership",
			      "leader %u (%s) serves a ReadIndex read with %u nodes acking "
			      "a message sent after it (seq > %llu), not a majority of each config",
			      n->id, lid_str(a, wt->lid), acked, (unsigned long long)wt->need_seq);
}

/*
 * Leases are what make LeaseRead safe: at no moment may two leaders both
 * believe they hold one. Skipped in seeds whose clocks jump independently:
 * a lease assumes clocks that advance at the same rate.
 */
/* The quorum-th largest promise (self: unbounded) covers the leader's lease. */
static bool lease_backed(struct sim_world *w, const struct sim_node *n)
{
	uint64_t v[SIM_NODES_MAX] = { 0 };

	for (uint32_t i = 0; i < w->par.nodes; i++) {
		const struct sim_node *f = &w->nodes[i];
		if (f == n)
			v[i] = UINT64_MAX;
		else
			v[i] = lcr_leader_id_eq(f->promise_lid, n->st.vote.lid) ? f->promise_end
										: 0;
	}
	uint64_t backed = quorum_value(&n->st.membership, v);
	if (n->st.lease_until_ns <= backed)
		return true;
	sim_violation(w, "lease-backed",
		      "leader %u's lease ends %.3f ms after the promises of a quorum do", n->id,
		      (double)(n->st.lease_until_ns - backed) / 1e6);
	return false;
}

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
		if (!lease_backed(w, n))
			return;
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

/* ---- --help ------------------------------------------------------------------------ */

void sim_describe_checks(FILE *f)
{
	static const char *const checks[][2] = {
		{ "election-safety", "one node per leader id, one leadership per id ever" },
		{ "leader-elected", "a leader's term was granted by a quorum of voters" },
		{ "log-matching", "one log id always carries the same entry and prefix" },
		{ "leader-completeness", "every leader holds all entries committed before it" },
		{ "committed-immutable", "an index once committed never changes its log id" },
		{ "committed-on-quorum", "a leader's commit point is durable on a quorum" },
		{ "state-machine-safety", "equal applied index, equal state machine" },
		{ "monotonic", "vote, commit and apply never go back" },
		{ "vote-durability", "a vote is on disk before it is asked for or granted" },
		{ "said-durable", "every vote and log position a message states is on disk "
				  "first, and survives a crash" },
		{ "match-durable", "a leader's recorded match is in the follower's durable log" },
		{ "stale-response", "a response to an earlier leadership changes nothing" },
		{ "vote-grant", "a granted vote names the requested vote as the voter's own" },
		{ "lease-promise", "no vote for another leadership within the lease an ack "
				   "lent (transfers waive it)" },
		{ "read-leadership", "reads served only by the leadership that took them, "
				     "after a later quorum ack or under a lease" },
		{ "follower-read-fresh", "a follower serves a read only once it applied every "
					 "index committed anywhere when it took the read" },
		{ "lease-exclusivity", "two leaders never both hold a valid lease" },
		{ "lease-backed", "a leader's lease ends within a quorum of followers' promises" },
		{ "step-down", "a leader that heard no quorum for a lease and an election "
			       "timeout steps down at its next tick, which is due by then" },
		{ "ordering", "purged <= applied <= committed <= last" },
		{ "forgery-ignored", "a forged message changes nothing and is counted" },
		{ "membership-joint", "voters change only through a joint config of the old and "
				      "the new voters, which the next entry ends" },
		{ "membership-target", "a change through a joint config ends in the voters and "
				       "learners asked for, whichever leader finishes it" },
		{ "no-allocation", "a core allocates nothing after its creation" },
		{ "linearizable", "the client history is linearizable (end of seed)" },
		{ "liveness", "after healing, a leader commits a new write within 10 s" },
		{ "liveness-majority", "scenario majority: the connected majority commits "
				       "within its bound while the fault persists" },
		{ "hang", "a seed stays within its step and wall-time budget" },
	};
	static const char *const scenarios[][2] = {
		{ "majority", "a minority cut off, deaf or mute (sometimes with the leader) "
			      "for seconds; the rest must elect and commit in bound" },
		{ "figure8", "a leader replicates to a minority and crashes; elections in a "
			     "chosen order; the new leader's own entries are lost" },
		{ "leader-reads", "the leader isolated while pinned clients keep reading "
				  "at it and others write at the new leader" },
		{ "stale-transfer", "a transfer vote request, held back, reaches voters that "
				    "keep a lease for a newer leader of the same term" },
	};
	fprintf(f, "invariants (checked after every step unless noted):\n");
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
		fprintf(f, "  %-22s %s\n", checks[i][0], checks[i][1]);
	fprintf(f, "nemesis scenarios (a seed picks at most one and runs it now and then):\n");
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		fprintf(f, "  %-22s %s\n", scenarios[i][0], scenarios[i][1]);
}
