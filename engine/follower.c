/* SPDX-License-Identifier: MIT */
/*
 * AppendEntries on the receiving side (openraft engine_impl.rs
 * handle_append_entries and following_handler):
 *   1. the leader's vote must be >= ours, else HigherVote(ours);
 *   2. prev must be in our log, else truncate at prev and Conflict(prev);
 *   3. skip entries we already have, truncate at the first mismatch only,
 *      append the rest;
 *   4. reply Ok(max(prev, last entry)) once entries and vote are durable;
 *   5. commit min(leader_commit, what this request proved matches).
 */
#include <string.h>

#include "core_int.h"

static void reply(struct lcr_core *c, const struct lcr_msg *req, uint32_t result,
		  struct lcr_vote vote, struct lcr_log_id log_id, uint64_t when_seq, bool now)
{
	const struct lcr_append_req *a = &req->append_req;
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_APPEND_RESP;
	m.to = req->from;
	m.append_resp.result = result;
	m.append_resp.vote = vote;
	m.append_resp.log_id = log_id;
	m.append_resp.stream_id = a->stream_id;
	m.append_resp.inflight_id = a->inflight_id;
	m.append_resp.send_ns = a->send_ns;
	m.append_resp.send_seq = a->send_seq;
	if (now)
		lcr_core_send(c, &m);
	else
		lcr_core_respond_when(c, when_seq, &m);
}

/* Entries must be consecutive after prev and never from a newer leader. */
static bool well_formed(const struct lcr_append_req *a)
{
	struct lcr_log_id before = a->prev;

	if (!a->vote.committed)
		return false;
	for (uint32_t i = 0; i < a->n_entries; i++) {
		struct lcr_log_id id = a->entries[i].id;
		if (id.index != a->prev.index + 1 + i)
			return false;
		if (lcr_leader_id_cmp(id.lid, a->vote.lid) > 0)
			return false;
		if (lcr_leader_id_cmp(id.lid, before.lid) < 0)
			return false;
		before = id;
	}
	return lcr_leader_id_cmp(a->prev.lid, a->vote.lid) <= 0;
}

/*
 * A genuine leader never conflicts with an entry we know committed: every
 * later leader holds all committed entries (Raft §5.4). A message that would
 * make us truncate one is forged or corrupt: count it and drop it.
 */
static bool truncatable(struct lcr_core *c, uint64_t since)
{
	if (since > c->committed.index)
		return true;
	c->n_dropped++;
	return false;
}

/* Whether appending entries[i..] fits the fixed run table (after any truncation). */
static bool room_for(struct lcr_core *c, const struct lcr_append_req *a, uint32_t i)
{
	uint64_t first = a->entries[i].id.index;
	uint32_t have = c->log.n, runs = 0;
	bool has_prev = false;
	struct lcr_leader_id prev = { 0, 0 };

	/*
	 * The common case in O(1) rather than a pass over the entries: no
	 * truncation, and the entries continue the last run (well_formed()
	 * made their leaders non-decreasing, so first == last means one run).
	 */
	if (first == c->log.last.index + 1 && c->log.n > 0 &&
	    lcr_leader_id_eq(a->entries[i].id.lid, c->log.keys[c->log.n - 1].lid) &&
	    lcr_leader_id_eq(a->entries[a->n_entries - 1].id.lid, c->log.keys[c->log.n - 1].lid))
		return true;
	if (first <= c->log.last.index) {
		/* Runs that survive a truncation at `first`. */
		have = 0;
		while (have < c->log.n && c->log.keys[have].index < first)
			have++;
	}
	if (have > 0) {
		struct lcr_log_id before;
		LCR_ASSERT(lcr_log_ids_get(&c->log, first - 1, &before));
		prev = before.lid;
		has_prev = true;
	}
	for (uint32_t j = i; j < a->n_entries; j++) {
		if (!has_prev || !lcr_leader_id_eq(a->entries[j].id.lid, prev))
			runs++;
		prev = a->entries[j].id.lid;
		has_prev = true;
	}
	if (have + runs <= c->log.cap)
		return true;
	c->n_dropped++; /* the log is full of leader changes: a purge would free it */
	return false;
}

void lcr_on_append_req(struct lcr_core *c, const struct lcr_msg *m)
{
	const struct lcr_append_req *a = &m->append_req;

	if (m->from != a->vote.lid.node || (a->n_entries > 0 && !a->entries) || !well_formed(a)) {
		c->n_dropped++;
		return;
	}
	if (lcr_vote_cmp(a->vote, c->vote) < 0) {
		reply(c, m, LCR_APPEND_HIGHER_VOTE, c->vote, lcr_log_id_none(), c->vote_seq, false);
		return;
	}
	LCR_ASSERT(lcr_vote_update(c, a->vote));

	if (!lcr_log_ids_has(&c->log, a->prev)) {
		struct lcr_log_id here;
		if (lcr_log_ids_get(&c->log, a->prev.index, &here)) {
			if (!truncatable(c, a->prev.index))
				return;
			lcr_core_truncate(c, a->prev.index);
		}
		reply(c, m, LCR_APPEND_CONFLICT, a->vote, a->prev, 0, true);
		return;
	}

	uint32_t i = 0;
	for (; i < a->n_entries; i++) {
		struct lcr_log_id id = a->entries[i].id;
		if (id.index > c->log.last.index)
			break;
		if (lcr_log_ids_has(&c->log, id))
			continue;
		/* The first mismatch: everything from here on is replaced. */
		if (!truncatable(c, id.index))
			return;
		if (!room_for(c, a, i))
			return;
		lcr_core_truncate(c, id.index);
		break;
	}
	if (i < a->n_entries) {
		if (!room_for(c, a, i))
			return;
		for (uint32_t j = i; j < a->n_entries; j++) {
			const struct lcr_entry *e = &a->entries[j];
			LCR_ASSERT(lcr_log_ids_append(&c->log, e->id) == 0);
			/* Effective once appended (the door decoded it already). */
			if (e->type == LCR_ENTRY_MEMBERSHIP) {
				struct lcr_membership ms;
				LCR_ASSERT(lcr_membership_decode(e->data, e->len, &ms) == 0);
				lcr_mship_appended(c, e->id, &ms);
			}
		}
		lcr_core_next_seq(c);
		struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_APPEND);
		cmd->append.io = lcr_core_io_id(c);
		cmd->append.entries = &a->entries[i];
		cmd->append.n = a->n_entries - i;
	}

	struct lcr_log_id accepted = a->n_entries ? a->entries[a->n_entries - 1].id : a->prev;
	/* What this replica purged is committed, and a snapshot here holds it:
	 * it matches the leader's log as far as that. Saying so lets a leader
	 * whose snapshot's answer was lost (a datagram, a restart) learn from
	 * the next heartbeat that this replica installed it. */
	if (accepted.index < c->log.purged.index)
		accepted = c->log.purged;
	/* Acknowledge only what is durable: the vote and every entry up to
	 * `accepted` were handed to storage by io seq <= c->io_seq. */
	bool now = LCR_BUG(c, LCR_BUG_ACK_BEFORE_FLUSH);
	reply(c, m, LCR_APPEND_OK, a->vote, accepted, c->io_seq, now);

	/* Entries up to `accepted` are the leader's; so is its commit point. */
	uint64_t commit =
		a->leader_commit.index < accepted.index ? a->leader_commit.index : accepted.index;
	lcr_core_commit_to(c, commit);
}
