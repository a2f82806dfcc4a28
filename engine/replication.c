/* SPDX-License-Identifier: MIT */
/*
 * The leader: progress per peer, probing after a conflict, the pipelined
 * stream once matched, heartbeats, the lease clock and the commit rule
 * (openraft's replication_handler, progress/entry, proposer/leader.rs).
 *
 * Probing uses openraft's search: the next request starts at the midpoint of
 * [matching.next, searching_end) rounded to 8 entries, so a short gap is
 * retried from the last match at once. Once matching.next == searching_end
 * the peer is in pipeline mode: up to inflight_max requests of at most
 * max_payload_entries each go out without waiting for replies; acks are
 * cumulative and request ids order them.
 */
#include <string.h>

#include "core_int.h"

static uint64_t inflight(const struct lcr_progress *p)
{
	return p->next_inflight_id - 1 - p->acked_inflight_id;
}

/* Replication of a snapshot to this peer closes (openraft's cancel); `counted`
 * unless the peer turned out to hold it already. */
static void cancel_snapshot(struct lcr_core *c, struct lcr_progress *p, bool counted)
{
	if (!p->snapshot)
		return;
	p->snapshot = false;
	c->n_snap_cancelled += counted;
	struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_CANCEL_SNAPSHOT);
	cmd->cancel.target = c->nodes[p - c->leader.progress];
	cmd->cancel.stream_id = p->stream_id;
}

/*
 * How long a stream with requests in flight may go without an ack before the
 * core restarts it: the smoothed time between its acks plus four deviations
 * (RFC 6298's estimator, applied to ack gaps), at least a heartbeat interval
 * and at most the election timeout's minimum. A follower acks a request once
 * its entries are durable, so a follower whose writes take 50-100 ms (a busy
 * disk, its thread off the CPU) leaves that much between acks while its
 * stream moves; restarting it then sends again from the match everything it
 * received and has not yet written, which only slows it further. A stream that
 * truly stopped (its requests lost) is still restarted, a little later.
 */
static uint64_t stall_ns(const struct lcr_core *c, const struct lcr_progress *p)
{
	uint64_t floor = c->heartbeat_ns;
	uint64_t cap = c->cfg.election_timeout_min_ms * LCR_NS_PER_MS;
	uint64_t t = p->gap_ns + 4 * p->gap_var_ns;

	if (cap < floor)
		cap = floor;
	return t < floor ? floor : t > cap ? cap : t;
}

/* The stream moved: one sample of the time since it was last seen moving. */
static void gap_sample(struct lcr_core *c, struct lcr_progress *p)
{
	uint64_t r = c->now_ns > p->progress_ns ? c->now_ns - p->progress_ns : 0;

	if (p->gap_ns == 0 && p->gap_var_ns == 0) {
		p->gap_ns = r;
		p->gap_var_ns = r / 2;
		return;
	}
	uint64_t diff = p->gap_ns > r ? p->gap_ns - r : r - p->gap_ns;
	p->gap_var_ns = (3 * p->gap_var_ns + diff) / 4;
	p->gap_ns = (7 * p->gap_ns + r) / 8;
}

static void stream_restart(struct lcr_core *c, struct lcr_progress *p)
{
	cancel_snapshot(c, p, true);
	p->stream_id = ++c->next_stream_id;
	p->next_inflight_id = 1;
	p->acked_inflight_id = 0;
	p->sent_index = p->matching.index;
	p->probing = false;
	p->progress_ns = c->now_ns;
}

void lcr_leader_become(struct lcr_core *c)
{
	struct lcr_leader *l = &c->leader;
	struct lcr_log_id first = lcr_log_ids_last_run_first(&c->log);

	LCR_ASSERT(c->vote.committed && c->vote.lid.node == c->id);
	memset(l, 0, sizeof(*l));
	l->active = true;
	l->vote = c->vote;
	l->first_stream_id = c->next_stream_id + 1;
	/* A leader restored after a restart keeps its first entry as the noop. */
	if (c->log.n > 0 && lcr_leader_id_eq(first.lid, c->vote.lid))
		l->noop = first;
	else
		l->noop = (struct lcr_log_id){ c->vote.lid, c->log.last.index + 1 };
	for (uint32_t i = 0; i < c->n_nodes; i++)
		lcr_leader_progress_init(c, i);
	/* What is already durable under this very vote counts for ourselves. */
	if (lcr_vote_eq(c->flushed.vote, c->vote))
		l->progress[c->self_slot].matching = c->flushed.last;
	l->next_heartbeat_ns = c->now_ns + c->heartbeat_ns;
	l->since_ns = c->now_ns;
	c->transfer_in.active = false;

	if (l->noop.index > c->log.last.index) {
		/* A new leader commits its own blank entry first (Raft §5.4.2);
		 * the core owns that entry, it has no payload. */
		memset(&c->blank_entry, 0, sizeof(c->blank_entry));
		c->blank_entry.type = LCR_ENTRY_BLANK;
		lcr_leader_append(c, &c->blank_entry, 1);
	} else {
		lcr_leader_replicate(c);
	}
}

void lcr_leader_progress_init(struct lcr_core *c, uint32_t slot)
{
	struct lcr_progress *p = &c->leader.progress[slot];

	memset(p, 0, sizeof(*p));
	p->matching = lcr_log_id_none();
	p->searching_end = c->log.last.index + 1;
	stream_restart(c, p);
}

void lcr_leader_propose_membership(struct lcr_core *c, const struct lcr_membership *m)
{
	struct lcr_log_id id = { c->leader.vote.lid, c->log.last.index + 1 };
	size_t n = lcr_membership_encode(m, c->m_buf, sizeof(c->m_buf));

	LCR_ASSERT(n > 0);
	memset(&c->m_entry, 0, sizeof(c->m_entry));
	c->m_entry.type = LCR_ENTRY_MEMBERSHIP;
	c->m_entry.len = (uint32_t)n;
	c->m_entry.data = c->m_buf;
	/* Effective once appended: the node table includes the new nodes before
	 * the entry is replicated to them. */
	lcr_mship_appended(c, id, m);
	c->n_mship_changes++;
	lcr_leader_append(c, &c->m_entry, 1);
	LCR_ASSERT(lcr_log_id_eq(c->m_entry.id, id));
}

void lcr_leader_membership_progress(struct lcr_core *c)
{
	if (!c->leader.active)
		return;
	/* The joint config committed: on to the target alone. A leader that
	 * finds a committed joint config another leader left finishes it too:
	 * the joint entry names the target (its second config, its learners
	 * and the voters it retains as learners; lcr_mship_target). */
	if (c->m_target_pending && c->committed.index >= c->m_joint_index) {
		c->m_target_pending = false;
		lcr_leader_propose_membership(c, &c->m_target);
		return;
	}
	if (!c->m_target_pending && c->m_log_n == 0 && c->m_committed.m.n_configs == 2) {
		struct lcr_membership t;
		lcr_mship_target(&c->m_committed.m, &t);
		lcr_leader_propose_membership(c, &t);
		return;
	}
	/* A leader the committed membership no longer counts as a voter steps
	 * down (openraft's removed_leader_step_down): it keeps its leader id in
	 * memory, uncommitted, as CheckQuorum does, and stands no more. It hands
	 * over first, where it can: the voter that holds the most of its log
	 * is told to stand at once (a leader transfer), instead of the voters
	 * waiting out their lease and an election timeout. */
	if (c->m_log_n == 0 && c->m_committed.m.n_configs == 1 &&
	    !lcr_membership_is_voter(&c->m_committed.m, c->id)) {
		uint32_t to = 0;
		struct lcr_log_id best = lcr_log_id_none();
		for (uint32_t i = 0; i < c->n_nodes; i++) {
			const struct lcr_progress *p = &c->leader.progress[i];
			if (i == c->self_slot ||
			    !lcr_membership_is_voter(&c->membership, c->nodes[i]))
				continue;
			if (to == 0 || lcr_log_id_cmp(p->matching, best) > 0) {
				to = c->nodes[i];
				best = p->matching;
			}
		}
		if (to != 0 && c->leader.transfer_to == 0)
			lcr_trigger_transfer(c, to);
		c->vote.committed = false;
		c->vote_utime_ns = c->now_ns;
		c->vote_lease_ns = 0;
		lcr_vote_refresh_state(c);
	}
}

void lcr_leader_drop(struct lcr_core *c)
{
	if (!c->leader.active)
		return;
	for (uint32_t i = 0; i < c->n_nodes; i++)
		cancel_snapshot(c, &c->leader.progress[i], true);
	c->leader.active = false;
	c->purge_want = 0;
	c->m_target_pending = false;
	lcr_reads_fail_all(c, -LCR_ENOTLEADER);
}

static void send_append(struct lcr_core *c, uint32_t slot, struct lcr_log_id prev, uint32_t n,
			uint64_t inflight_id)
{
	struct lcr_progress *p = &c->leader.progress[slot];
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_APPEND_REQ;
	m.to = c->nodes[slot];
	m.append_req.vote = c->leader.vote;
	m.append_req.prev = prev;
	m.append_req.leader_commit = c->committed;
	m.append_req.stream_id = p->stream_id;
	m.append_req.inflight_id = inflight_id;
	m.append_req.send_ns = c->now_ns;
	m.append_req.send_seq = ++c->leader.send_seq;
	m.append_req.n_entries = n;
	lcr_core_send(c, &m);
}

/*
 * The entries this peer needs are purged: send the snapshot (openraft's
 * Inflight::Snapshot), as one request of the stream, and wait for its answer.
 */
static void send_snapshot(struct lcr_core *c, uint32_t slot)
{
	struct lcr_progress *p = &c->leader.progress[slot];
	struct lcr_msg m;

	LCR_ASSERT(c->snapshot.last.index >= c->log.purged.index);
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_SNAPSHOT_REQ;
	m.to = c->nodes[slot];
	m.snapshot_req.vote = c->leader.vote;
	m.snapshot_req.meta = c->snapshot;
	m.snapshot_req.membership = &c->snap_m;
	m.snapshot_req.stream_id = p->stream_id;
	m.snapshot_req.inflight_id = p->next_inflight_id++;
	m.snapshot_req.send_ns = c->now_ns;
	m.snapshot_req.send_seq = ++c->leader.send_seq;
	p->snapshot = true;
	p->snapshot_ns = c->now_ns;
	p->sent_index = c->snapshot.last.index;
	p->probing = false;
	c->n_snap_sent++;
	lcr_core_send(c, &m);
}

static struct lcr_log_id log_id_at(const struct lcr_core *c, uint64_t index)
{
	struct lcr_log_id id;
	LCR_ASSERT(lcr_log_ids_get(&c->log, index, &id));
	return id;
}

static void next_send(struct lcr_core *c, uint32_t slot)
{
	struct lcr_progress *p = &c->leader.progress[slot];
	uint64_t last = c->log.last.index;
	uint64_t max = c->cfg.max_payload_entries;

	if (c->now_ns < p->backoff_until_ns || p->snapshot)
		return;
	/* Where the peer's log may still match ours is purged. */
	if (p->searching_end <= c->log.purged.index ||
	    (p->matching.index + 1 == p->searching_end && p->sent_index < c->log.purged.index)) {
		if (inflight(p) == 0)
			send_snapshot(c, slot);
		return;
	}
	if (p->matching.index + 1 < p->searching_end) {
		/* Probing: one request at a time, binary search for the match. */
		if (inflight(p) > 0)
			return;
		uint64_t mnext = p->matching.index + 1;
		uint64_t start = mnext + (p->searching_end - mnext) / 16 * 8;
		if (start < c->log.purged.index + 1)
			start = c->log.purged.index + 1;
		uint64_t end = start + max < last + 1 ? start + max : last + 1;
		if (start >= end) { /* everything after the purge point: nothing to probe */
			send_snapshot(c, slot);
			return;
		}
		send_append(c, slot, log_id_at(c, start - 1), (uint32_t)(end - start),
			    p->next_inflight_id++);
		p->progress_ns = c->now_ns; /* nothing was in flight */
		p->inflight_from = start - 1;
		p->sent_index = end - 1;
		p->probing = true;
		return;
	}
	if (p->sent_index < p->matching.index)
		p->sent_index = p->matching.index;
	while (inflight(p) < c->cfg.inflight_max && p->sent_index < last) {
		uint64_t n = last - p->sent_index < max ? last - p->sent_index : max;
		if (inflight(p) == 0) {
			p->inflight_from = p->sent_index;
			/* An idle stream cannot have stalled: its clock starts now. */
			p->progress_ns = c->now_ns;
		}
		send_append(c, slot, log_id_at(c, p->sent_index), (uint32_t)n,
			    p->next_inflight_id++);
		p->sent_index += n;
	}
}

void lcr_leader_replicate(struct lcr_core *c)
{
	for (uint32_t i = 0; i < c->n_nodes; i++)
		if (i != c->self_slot)
			next_send(c, i);
}

void lcr_leader_append(struct lcr_core *c, struct lcr_entry *entries, uint32_t n)
{
	LCR_ASSERT(c->leader.active && n > 0);
	for (uint32_t i = 0; i < n; i++) {
		entries[i].id.lid = c->leader.vote.lid;
		entries[i].id.index = c->log.last.index + 1;
		/* A leader's entries continue its own run, which lcr_elect made
		 * sure it had room to start. */
		LCR_ASSERT(lcr_log_ids_append(&c->log, entries[i].id) == 0);
	}
	lcr_core_next_seq(c);
	struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_APPEND);
	cmd->append.io = lcr_core_io_id(c);
	cmd->append.entries = entries;
	cmd->append.n = n;
	lcr_leader_replicate(c);
}

void lcr_leader_heartbeat(struct lcr_core *c)
{
	struct lcr_leader *l = &c->leader;

	l->next_heartbeat_ns = c->now_ns + c->heartbeat_ns;
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		struct lcr_progress *p = &l->progress[i];
		/* Also to a peer whose replication is backed off: heartbeats are
		 * openraft's own workers, apart from replication and its backoff.
		 * A follower that comes back (restarted) hears its leader at once,
		 * and its ack ends the backoff, instead of timing out meanwhile
		 * and standing with a stale log. */
		if (i == c->self_slot)
			continue;
		/* prev = matching, never committed: the peer is known to have it,
		 * so a heartbeat cannot raise a false conflict (openraft #1500). */
		send_append(c, i, p->matching, 0, 0);
	}
}

/* ---- commit ------------------------------------------------------------------- */

static uint64_t matching_of(const void *ctx, uint32_t id)
{
	const struct lcr_core *c = ctx;
	int s = lcr_core_slot(c, id);
	return s < 0 ? 0 : c->leader.progress[s].matching.index;
}

static void try_commit(struct lcr_core *c)
{
	bool bug = LCR_BUG(c, LCR_BUG_COMMIT_WITHOUT_QUORUM);
	const struct lcr_membership *m = &c->membership;
	struct lcr_membership one;
	if (LCR_BUG(c, LCR_BUG_JOINT_SINGLE_QUORUM) && m->n_configs == 2) {
		one = *m;
		one.n_configs = 1;
		one.configs[0] = m->configs[1];
		m = &one;
	}
	uint64_t q = lcr_membership_quorum_value(m, matching_of, c, bug);

	/* Only an entry of this leader's own term commits by counting (§5.4.2). */
	if (q < c->leader.noop.index || q <= c->committed.index)
		return;
	lcr_core_commit_to(c, q);
	lcr_leader_membership_progress(c);
	if (!c->leader.active)
		return;
	lcr_reads_progress(c);
}

void lcr_leader_on_flush(struct lcr_core *c)
{
	struct lcr_progress *self = &c->leader.progress[c->self_slot];

	if (!c->leader.active || !lcr_vote_eq(c->flushed.vote, c->leader.vote))
		return;
	if (lcr_log_id_cmp(c->flushed.last, self->matching) <= 0)
		return;
	self->matching = c->flushed.last;
	if (self->matching.index > c->committed.index) /* as in on_ok */
		try_commit(c);
}

/* ---- lease clock ---------------------------------------------------------------- */

static uint64_t clock_of(const void *ctx, uint32_t id)
{
	const struct lcr_core *c = ctx;
	int s = lcr_core_slot(c, id);
	if (s < 0)
		return 0;
	/* The leader acknowledges itself at any moment. */
	if ((uint32_t)s == c->self_slot)
		return c->now_ns;
	return c->leader.progress[s].clock_ns;
}

uint64_t lcr_leader_quorum_acked_ns(const struct lcr_core *c)
{
	return lcr_membership_quorum_value(&c->membership, clock_of, c, false);
}

static uint64_t seq_of(const void *ctx, uint32_t id)
{
	const struct lcr_core *c = ctx;
	int s = lcr_core_slot(c, id);
	if (s < 0)
		return 0;
	/* The leader acknowledges itself, including what it has yet to send. */
	if ((uint32_t)s == c->self_slot)
		return c->leader.send_seq + 1;
	return c->leader.progress[s].acked_seq;
}

uint64_t lcr_leader_quorum_acked_seq(const struct lcr_core *c)
{
	return lcr_membership_quorum_value(&c->membership, seq_of, c, false);
}

bool lcr_leader_lease_valid(const struct lcr_core *c)
{
	uint64_t acked;

	if (!c->leader.active)
		return false;
	acked = lcr_leader_quorum_acked_ns(c);
	return acked > 0 && c->now_ns < acked + c->leader_lease_ns;
}

/* ---- responses ----------------------------------------------------------------- */

/*
 * A peer's answer to this leadership (an Ok, or a snapshot's) says it holds
 * `id` durably and heard a request sent at send_ns with send_seq: the lease
 * clock and the read sequence move. False (counted) for a log id we do not
 * hold: a peer cannot match what we do not have.
 */
static bool ack_heard(struct lcr_core *c, struct lcr_progress *p, struct lcr_log_id id,
		      uint64_t send_ns, uint64_t send_seq)
{
	if (id.index > c->log.last.index || !lcr_log_ids_has(&c->log, id)) {
		c->n_stale++;
		return false;
	}
	if (send_ns > p->clock_ns && send_ns <= c->now_ns)
		p->clock_ns = send_ns;
	if (send_seq > p->acked_seq && send_seq <= c->leader.send_seq)
		p->acked_seq = send_seq;
	return true;
}

/*
 * The peer holds `id` durably. An answer from an older stream of this
 * leadership still proves that, so it counts for matching and commit; only
 * inflight accounting is per stream.
 */
static void match_to(struct lcr_core *c, struct lcr_progress *p, struct lcr_log_id id)
{
	if (lcr_log_id_cmp(id, p->matching) <= 0)
		return;
	p->matching = id;
	if (p->searching_end < p->matching.index + 1)
		p->searching_end = p->matching.index + 1;
	/* Raising one value to v moves the quorum value to at most v: a match
	 * at or below the commit point cannot commit more, and the quorum scan
	 * is skipped (the 2nd ack of every entry with 3 nodes). */
	if (p->matching.index > c->committed.index)
		try_commit(c);
}

static void stream_moved(struct lcr_core *c, struct lcr_progress *p, uint64_t inflight_id)
{
	p->acked_inflight_id = inflight_id;
	p->progress_ns = c->now_ns;
	p->backoff_rank = 0;
	p->backoff_step = 0;
	p->backoff_until_ns = 0;
}

/* What an ack makes possible: reads, a postponed purge, more to send. */
static void after_ack(struct lcr_core *c, uint32_t slot)
{
	lcr_reads_progress(c);
	lcr_purge_retry(c);
	next_send(c, slot);
}

static void on_ok(struct lcr_core *c, uint32_t slot, const struct lcr_append_resp *r)
{
	struct lcr_progress *p = &c->leader.progress[slot];

	if (!ack_heard(c, p, r->log_id, r->send_ns, r->send_seq))
		return;
	if (r->stream_id == p->stream_id) {
		/* Only an ack of a request (not a heartbeat's) shows the stream
		 * moving; a stalled stream must still be noticed and restarted. */
		if (r->inflight_id > p->acked_inflight_id && r->inflight_id < p->next_inflight_id) {
			/* A sample for the stall timer (a snapshot's answer,
			 * as long as its transfer, is none). */
			gap_sample(c, p);
			stream_moved(c, p, r->inflight_id);
			/* The next request in flight goes on from what this one carried. */
			if (r->log_id.index > p->inflight_from)
				p->inflight_from = r->log_id.index;
		}
		p->backoff_rank = 0;
		p->backoff_step = 0;
		p->backoff_until_ns = 0;
		if (inflight(p) == 0)
			p->probing = false;
	}
	match_to(c, p, r->log_id);
	/* The snapshot in flight is there (its answer was lost, or is late):
	 * replication goes on from it. */
	if (p->snapshot && p->matching.index >= p->sent_index) {
		cancel_snapshot(c, p, false);
		p->acked_inflight_id = p->next_inflight_id - 1;
		p->progress_ns = c->now_ns;
	}
	after_ack(c, slot);
}

static void on_conflict(struct lcr_core *c, uint32_t slot, const struct lcr_append_resp *r)
{
	struct lcr_progress *p = &c->leader.progress[slot];
	struct lcr_log_id conflict = r->log_id;

	if (r->stream_id != p->stream_id) {
		c->n_stale++;
		return;
	}
	if (!lcr_log_id_is_none(p->matching) && conflict.index <= p->matching.index) {
		/* The peer lost entries it had acknowledged as durable. */
		c->n_reversions++;
		if (!c->cfg.allow_log_reversion)
			return;
		p->matching = lcr_log_id_none();
	}
	if (conflict.index < p->searching_end)
		p->searching_end = conflict.index;
	if (p->searching_end < p->matching.index + 1)
		p->searching_end = p->matching.index + 1;
	stream_restart(c, p);
	next_send(c, slot);
}

void lcr_on_append_resp(struct lcr_core *c, const struct lcr_msg *m)
{
	const struct lcr_append_resp *r = &m->append_resp;

	if (r->result == LCR_APPEND_HIGHER_VOTE) {
		/*
		 * Only a reply to this leadership says anything about it. A stale
		 * one (to a request we sent as an earlier leader) must not move
		 * our vote: we may hold a lease for the current leader.
		 */
		struct lcr_vote v = r->vote;
		v.committed = false;
		if (c->leader.active && r->stream_id >= c->leader.first_stream_id &&
		    r->stream_id <= c->next_stream_id && lcr_vote_cmp(v, c->vote) > 0)
			lcr_vote_update(c, v); /* steps down */
		else
			c->n_stale++;
		return;
	}
	if (!c->leader.active || !lcr_vote_eq(r->vote, c->leader.vote)) {
		c->n_stale++;
		return;
	}
	int s = lcr_core_slot(c, m->from);
	if (r->result == LCR_APPEND_OK)
		on_ok(c, (uint32_t)s, r);
	else if (r->result == LCR_APPEND_CONFLICT)
		on_conflict(c, (uint32_t)s, r);
	else
		c->n_stale++;
}

void lcr_on_net_error(struct lcr_core *c, uint32_t target, uint64_t stream_id, uint32_t err)
{
	int s = lcr_core_slot(c, target);

	if (!c->leader.active || s < 0 || (uint32_t)s == c->self_slot)
		return;
	struct lcr_progress *p = &c->leader.progress[s];
	bool unreachable = err == LCR_NET_UNREACHABLE || err == LCR_NET_REMOTE;
	/* An error of an older stream of this leadership says nothing of the
	 * current one, but for a peer that cannot be reached: that is the
	 * peer's, whatever the stream (the stall timer may have moved on before
	 * the transport gave up), and its requests in flight go nowhere. */
	if (stream_id != p->stream_id &&
	    !(unreachable && stream_id >= c->leader.first_stream_id && stream_id < p->stream_id))
		return;
	/* openraft backoff_rank: Unreachable and Remote weigh 100, others 2;
	 * above 20 the peer is backed off: b, 2b, 4b ... capped at 1 s, or the
	 * transport's own intervals when it has them. */
	p->backoff_rank += unreachable ? 100 : 2;
	if (p->backoff_rank > 20) {
		uint64_t d =
			c->cfg.backoff_ns
				? c->cfg.backoff_ns(c->cfg.backoff_ctx, target, p->backoff_step)
				: lcr_backoff_default_ns(c->cfg.backoff_ms, p->backoff_step);
		p->backoff_until_ns = c->now_ns + d;
		p->backoff_step++;
		p->backoff_rank = 0;
	}
	p->snapshot = false; /* the call failed: nothing left to cancel */
	if (err != LCR_NET_CLOSED)
		stream_restart(c, p);
	next_send(c, (uint32_t)s);
}

/* ---- timers -------------------------------------------------------------------- */

/*
 * CheckQuorum with a step-down (Raft thesis §6.2): a leader that has heard
 * from no quorum for a lease and an election timeout since it began stops
 * leading. Refusing writes alone (openraft) is not enough: a leader that can send but hears
 * nothing (a one-way partition) goes on sending heartbeats that hold every
 * follower's election timer back, while it can commit nothing, for as long
 * as the fault lasts. It keeps its vote's leader id and drops the vote's
 * committed flag in memory, as a restart does, so it answers peers as a
 * follower and stands again only when its election timer fires.
 */
static uint64_t check_quorum_deadline(const struct lcr_core *c)
{
	uint64_t heard = lcr_leader_quorum_acked_ns(c);

	if (heard < c->leader.since_ns)
		heard = c->leader.since_ns;
	/* First the lease runs out and writes are refused (openraft); an
	 * election timeout later the leader gives up (thesis §6.2). */
	return heard + c->leader_lease_ns + c->cfg.election_timeout_min_ms * LCR_NS_PER_MS;
}

static bool check_quorum(struct lcr_core *c)
{
	if (c->now_ns < check_quorum_deadline(c) || LCR_BUG(c, LCR_BUG_NO_STEP_DOWN))
		return true;
	c->vote.committed = false;
	c->vote_utime_ns = c->now_ns;
	c->vote_lease_ns = 0;
	lcr_vote_refresh_state(c); /* drops the leadership, fails its reads */
	return false;
}

void lcr_leader_tick(struct lcr_core *c)
{
	struct lcr_leader *l = &c->leader;

	if (!check_quorum(c))
		return;

	if (c->cfg.enable_heartbeat && l->transfer_to == 0 && c->now_ns >= l->next_heartbeat_ns)
		lcr_leader_heartbeat(c);
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		struct lcr_progress *p = &l->progress[i];
		if (i == c->self_slot)
			continue;
		/* A stream that stopped moving is restarted from the last match:
		 * the stream layer retransmits, this is the core's last resort. */
		if (p->snapshot) {
			if (c->now_ns >=
			    p->snapshot_ns + c->cfg.snapshot_timeout_ms * LCR_NS_PER_MS)
				stream_restart(c, p); /* cancels it */
		} else if (inflight(p) > 0 && c->now_ns >= p->progress_ns + stall_ns(c, p)) {
			/* Gaps longer than the timer are never sampled: back it
			 * off (RFC 6298 5.5), to twice what ran out. */
			uint64_t t = stall_ns(c, p);
			p->gap_ns = t;
			p->gap_var_ns = t / 4;
			stream_restart(c, p);
		}
		next_send(c, i);
	}
}

uint64_t lcr_leader_next_timer(const struct lcr_core *c)
{
	const struct lcr_leader *l = &c->leader;
	uint64_t t = UINT64_MAX;

	if (c->cfg.enable_heartbeat && l->transfer_to == 0)
		t = l->next_heartbeat_ns;
	if (check_quorum_deadline(c) < t)
		t = check_quorum_deadline(c);
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		const struct lcr_progress *p = &l->progress[i];
		if (i == c->self_slot)
			continue;
		if (p->snapshot) {
			uint64_t d = p->snapshot_ns + c->cfg.snapshot_timeout_ms * LCR_NS_PER_MS;
			if (d < t)
				t = d;
		} else if (inflight(p) > 0 && p->progress_ns + stall_ns(c, p) < t) {
			t = p->progress_ns + stall_ns(c, p);
		}
		if (p->backoff_until_ns > c->now_ns && p->backoff_until_ns < t)
			t = p->backoff_until_ns;
	}
	return t;
}

/* ---- snapshots ----------------------------------------------------------------- */

bool lcr_leader_needs(const struct lcr_core *c, uint64_t upto)
{
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		const struct lcr_progress *p = &c->leader.progress[i];
		if (i == c->self_slot || p->snapshot || inflight(p) == 0)
			continue;
		/* Its requests in flight carry (inflight_from, sent_index]. */
		if (p->inflight_from < upto)
			return true;
	}
	return false;
}

/*
 * The answer to a snapshot: the peer holds everything up to `last` durably
 * (installed, or committed there already). Like an Ok, it counts for
 * matching and the lease even from an older stream of this leadership.
 */
void lcr_on_snapshot_resp(struct lcr_core *c, const struct lcr_msg *m)
{
	const struct lcr_snapshot_resp *r = &m->snapshot_resp;
	struct lcr_vote v = r->vote;

	v.committed = false;
	if (lcr_vote_cmp(v, c->vote) > 0) {
		/* HigherVote, if it answers this leadership (see lcr_on_append_resp). */
		if (c->leader.active && r->stream_id >= c->leader.first_stream_id &&
		    r->stream_id <= c->next_stream_id)
			lcr_vote_update(c, v);
		else
			c->n_stale++;
		return;
	}
	if (!c->leader.active || !lcr_vote_eq(r->vote, c->leader.vote)) {
		c->n_stale++;
		return;
	}
	uint32_t slot = (uint32_t)lcr_core_slot(c, m->from);
	struct lcr_progress *p = &c->leader.progress[slot];
	if (!ack_heard(c, p, r->last, r->send_ns, r->send_seq))
		return;
	if (r->stream_id == p->stream_id && p->snapshot && r->inflight_id < p->next_inflight_id &&
	    r->inflight_id > p->acked_inflight_id) {
		p->snapshot = false;
		stream_moved(c, p, r->inflight_id);
	}
	match_to(c, p, r->last);
	after_ack(c, slot);
}
