/* SPDX-License-Identifier: MIT */
/*
 * Votes and elections: the vote with its lease, Pre-Vote, RequestVote on both
 * sides, the election timer, and leader transfer (openraft's vote_handler,
 * engine_impl.rs handle_vote_req/resp, leader_handler::transfer_leader).
 */
#include <string.h>

#include "core_int.h"

void lcr_resample_election_timeout(struct lcr_core *c)
{
	uint64_t lo = c->cfg.election_timeout_min_ms * LCR_NS_PER_MS;
	uint64_t hi = c->cfg.election_timeout_max_ms * LCR_NS_PER_MS;

	c->election_timeout_ns = lo + lcr_core_random(c) % (hi - lo);
}

/* openraft utime.rs is_expired: now > last_update + lease + extra. */
bool lcr_vote_lease_expired(const struct lcr_core *c, uint64_t extra_ns)
{
	return c->now_ns > c->vote_utime_ns + c->vote_lease_ns + extra_ns;
}

/*
 * Server state follows from the vote and the membership (openraft
 * docs/data/vote.md): our own committed vote makes us leader, our own
 * uncommitted vote a candidate, anything else a follower or learner.
 */
void lcr_vote_refresh_state(struct lcr_core *c)
{
	bool voter = lcr_membership_is_voter(&c->membership, c->id);

	if (c->vote.committed && c->vote.lid.node == c->id && voter) {
		if (!c->leader.active || !lcr_leader_id_eq(c->leader.vote.lid, c->vote.lid)) {
			c->candidate.active = false;
			c->pre_candidate.active = false;
			lcr_leader_become(c);
		}
		return;
	}
	if (c->vote.lid.node == c->id && !c->vote.committed) {
		/* Leading: a candidate of our own; an old leadership is over. A
		 * candidate whose vote is no longer ours (we adopted a higher one
		 * naming us, left from an earlier round) has lost. */
		if (c->leader.active)
			lcr_leader_drop(c);
		if (c->candidate.active && !lcr_vote_eq(c->candidate.vote, c->vote))
			c->candidate.active = false;
		return;
	}
	if (c->leader.active)
		lcr_leader_drop(c);
	c->candidate.active = false;
	c->pre_candidate.active = false;
}

/* Set the vote (it only moves up) and persist it unless `persist` is false. */
static bool vote_set(struct lcr_core *c, struct lcr_vote v, bool persist)
{
	int cmp = lcr_vote_cmp(v, c->vote);
	uint64_t lease = v.committed ? c->leader_lease_ns : 0;

	if (cmp < 0)
		return false;
	if (cmp > 0) {
		c->vote = v;
		c->vote_utime_ns = c->now_ns;
		c->vote_lease_ns = lease;
		c->lease_enabled = true;
		/* A newer committed leader was elected: every older lease is over,
		 * so the promise starts afresh. An uncommitted vote (a candidate)
		 * leaves the promise we made to the current leader in force. */
		if (v.committed)
			c->promise_until_ns = c->now_ns + lease;
		if (persist)
			lcr_core_save_vote(c);
	} else {
		/* Same vote: only the lease is refreshed (utime.rs touch). */
		c->vote_utime_ns = c->now_ns;
		if (c->lease_enabled) {
			c->vote_lease_ns = lease;
			if (v.committed && c->now_ns + lease > c->promise_until_ns)
				c->promise_until_ns = c->now_ns + lease;
		}
	}
	lcr_vote_refresh_state(c);
	return true;
}

bool lcr_vote_update(struct lcr_core *c, struct lcr_vote v)
{
	return vote_set(c, v, true);
}

static void send_vote_reqs(struct lcr_core *c, struct lcr_vote v, bool pre_vote,
			   const struct lcr_candidate *cand)
{
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		uint32_t to = c->nodes[i];
		if (to == c->id || !lcr_membership_is_voter(&c->membership, to))
			continue;
		struct lcr_msg m;
		memset(&m, 0, sizeof(m));
		m.type = LCR_MSG_VOTE_REQ;
		m.to = to;
		m.vote_req.vote = v;
		m.vote_req.last_log_id = c->log.last;
		m.vote_req.leadership_transfer = cand && cand->transfer;
		if (cand && cand->transfer)
			m.vote_req.transfer_from = cand->transfer_from;
		m.vote_req.pre_vote = pre_vote;
		lcr_core_send(c, &m);
	}
}

struct grant_ctx {
	const struct lcr_core *c;
	const struct lcr_candidate *cand;
};

static bool granted_by(const void *ctx, uint32_t id)
{
	const struct grant_ctx *g = ctx;
	int s = lcr_core_slot(g->c, id);
	return s >= 0 && g->cand->granted[s];
}

static bool quorum_granted(const struct lcr_core *c, const struct lcr_candidate *cand)
{
	struct grant_ctx g = { c, cand };
	const struct lcr_membership *m = &c->membership;
	if (LCR_BUG(c, LCR_BUG_REMOVED_STILL_VOTES))
		m = &c->m_committed.m;
	return lcr_membership_quorum_granted(m, granted_by, &g);
}

static void new_candidate(struct lcr_core *c, struct lcr_candidate *cand, struct lcr_vote v,
			  const struct lcr_vote *transfer_from)
{
	memset(cand, 0, sizeof(*cand));
	cand->active = true;
	cand->vote = v;
	cand->last_log_id = c->log.last;
	cand->started_ns = c->now_ns;
	if (transfer_from) {
		cand->transfer = true;
		cand->transfer_from = *transfer_from;
	}
}

static bool lease_blocks(const struct lcr_core *c, const struct lcr_vote *transfer_from);

/*
 * A term at LCR_NUMBER_MAX - 1 has no successor in range: standing would make
 * a vote every peer drops. Refuse, counted (the runtime reports it), rather
 * than wrap. Peers bound each other's terms (LCR_TERM_JUMP_MAX), so only a
 * bug gets here.
 */
/* This replica may not stand now: try again after an election timeout. */
static void stand_later(struct lcr_core *c)
{
	lcr_resample_election_timeout(c);
	c->stand_retry_ns = c->now_ns + c->election_timeout_ns;
}

static bool term_exhausted(struct lcr_core *c)
{
	if (c->vote.lid.term + 1 < LCR_NUMBER_MAX)
		return false;
	c->n_term_exhausted++;
	stand_later(c);
	return true;
}

/*
 * Stand for election: a new uncommitted vote for ourselves, persisted. The
 * vote requests wait until that vote is durable (lcr_candidate_progress): a
 * candidate that crashed with requests out but its vote lost could later run
 * again for the very same leader id, and two leaderships with one id would
 * hand out the same log ids for different entries.
 */
void lcr_elect(struct lcr_core *c, const struct lcr_vote *transfer_from)
{
	c->pre_candidate.active = false;
	if (c->leader.active || !lcr_membership_is_voter(&c->membership, c->id))
		return;
	/* A leader starts a run of entries; without room it could not lead. */
	if (!lcr_log_ids_can_start_run(&c->log)) {
		c->n_dropped++;
		stand_later(c);
		return;
	}
	if (term_exhausted(c))
		return;
	lcr_resample_election_timeout(c);
	struct lcr_vote v = { { c->vote.lid.term + 1, c->id }, false };
	new_candidate(c, &c->candidate, v, transfer_from);
	LCR_ASSERT(lcr_vote_update(c, v));
	c->candidate.vote_seq = c->vote_seq;
	c->n_elections++;
	c->seen_greater_log = false;
	lcr_candidate_progress(c);
}

void lcr_pre_elect(struct lcr_core *c)
{
	if (c->leader.active || !lcr_membership_is_voter(&c->membership, c->id))
		return;
	if (term_exhausted(c))
		return;
	lcr_resample_election_timeout(c);
	struct lcr_vote v = { { c->vote.lid.term + 1, c->id }, false };
	new_candidate(c, &c->pre_candidate, v, false);
	c->pre_candidate.granted[c->self_slot] = true;
	if (quorum_granted(c, &c->pre_candidate)) {
		lcr_elect(c, NULL);
		return;
	}
	send_vote_reqs(c, v, true, NULL);
}

static void establish(struct lcr_core *c)
{
	struct lcr_vote v = c->candidate.vote;

	/* Our vote is durable (requests went out only then) and still ours. */
	bool durable =
		c->flushed.seq >= c->candidate.vote_seq || LCR_BUG(c, LCR_BUG_VOTE_BEFORE_DURABLE);
	if (!lcr_vote_eq(v, c->vote) || !durable) {
		c->candidate.active = false;
		return;
	}
	c->candidate.active = false;
	c->pre_candidate.active = false;
	v.committed = true;
	LCR_ASSERT(lcr_vote_update(c, v)); /* persists and makes us leader */
}

/*
 * The candidate counts its own vote once that vote is on disk, and only when
 * it could vote for anyone: a node still inside the lease it lent a leader
 * must not vote for itself either, or that leader's lease reads could go
 * stale. The timer never fires inside the lease, a triggered election may
 * (openraft's elect() does not check this).
 */
void lcr_candidate_progress(struct lcr_core *c)
{
	struct lcr_candidate *cand = &c->candidate;

	bool durable = c->flushed.seq >= cand->vote_seq;

	if (!cand->active || (!durable && !LCR_BUG(c, LCR_BUG_VOTE_BEFORE_DURABLE)))
		return;
	if (!cand->reqs_sent) {
		cand->reqs_sent = true;
		send_vote_reqs(c, cand->vote, false, cand);
	}
	/* The transfer target's promise to the old leader was waived by it. */
	if (!cand->granted[c->self_slot] && durable && !lease_blocks(c, NULL))
		cand->granted[c->self_slot] = true;
	if (cand->granted[c->self_slot] && quorum_granted(c, cand))
		establish(c);
}

/*
 * The wait added for a greater log seen: openraft's smaller_log_timeout, so
 * that the voter holding that log times out first and wins. Once our own log
 * has reached it (we caught up from a leader since), there is no better
 * candidate to make room for, and waiting longer only delays the next
 * failover (openraft keeps the flag until the timer fires, which it never
 * does under a live leader: a failover a while later then took 1.1 s). Only
 * when an election starts: safety does not depend on it.
 */
static uint64_t greater_log_wait(const struct lcr_core *c)
{
	if (!c->seen_greater_log || lcr_log_id_cmp(c->log.last, c->greater_log) >= 0)
		return 0;
	return c->smaller_log_timeout_ns;
}

uint64_t lcr_election_deadline(const struct lcr_core *c)
{
	if (!c->cfg.enable_elect || !lcr_membership_is_voter(&c->membership, c->id))
		return UINT64_MAX;
	uint64_t timeout = c->election_timeout_ns + greater_log_wait(c);
	uint64_t lease = LCR_BUG(c, LCR_BUG_LEASE_IGNORED) ? 0 : c->vote_lease_ns;
	uint64_t t = c->vote_utime_ns + lease + timeout + 1;
	if (c->cfg.enable_pre_vote && c->pre_candidate.active &&
	    c->pre_candidate.started_ns + timeout > t)
		t = c->pre_candidate.started_ns + timeout;
	if (c->stand_retry_ns > t)
		t = c->stand_retry_ns;
	return t;
}

void lcr_election_tick(struct lcr_core *c)
{
	if (!c->cfg.enable_elect || !lcr_membership_is_voter(&c->membership, c->id))
		return;
	if (lcr_membership_voter_count(&c->membership) == 1) {
		if (!c->candidate.active)
			lcr_elect(c, NULL);
		return;
	}
	uint64_t timeout = c->election_timeout_ns + greater_log_wait(c);
	bool expired = LCR_BUG(c, LCR_BUG_LEASE_IGNORED) ? c->now_ns > c->vote_utime_ns + timeout
							 : lcr_vote_lease_expired(c, timeout);
	if (!expired || c->now_ns < c->stand_retry_ns)
		return;
	bool pre_vote = c->cfg.enable_pre_vote;
	/* A Pre-Vote does not touch the vote's time: do not re-issue one every
	 * tick while a round is still in flight. */
	if (pre_vote && c->pre_candidate.active &&
	    c->now_ns < c->pre_candidate.started_ns + timeout)
		return;
	c->seen_greater_log = false;
	if (pre_vote)
		lcr_pre_elect(c);
	else
		lcr_elect(c, NULL);
}

static void reply_vote(struct lcr_core *c, const struct lcr_msg *req, bool granted, bool now)
{
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_VOTE_RESP;
	m.to = req->from;
	m.vote_resp.vote = c->vote;
	m.vote_resp.req_vote = req->vote_req.vote;
	m.vote_resp.last_log_id = c->log.last;
	m.vote_resp.granted = granted;
	m.vote_resp.pre_vote = req->vote_req.pre_vote;
	if (now)
		lcr_core_send(c, &m);
	else
		lcr_core_respond_when(c, c->vote_seq, &m); /* after the vote is durable */
}

/*
 * Is a promise we made to a leader in the way of granting this vote? A
 * leadership transfer lifts it only when it comes from the very leader we
 * promised (our vote is still that leader's): its TransferLeader message may
 * simply not have reached us yet. A transfer from anyone else does not.
 */
static bool lease_blocks(const struct lcr_core *c, const struct lcr_vote *transfer_from)
{
	if (LCR_BUG(c, LCR_BUG_LEASE_IGNORED))
		return false;
	if (transfer_from && transfer_from->committed && lcr_vote_eq(*transfer_from, c->vote))
		return false;
	return c->now_ns <= c->promise_until_ns;
}

/* Is the candidate's log at least as up to date as ours (Raft §5.4.1)? */
static bool log_ok(const struct lcr_core *c, struct lcr_log_id cand_last)
{
	if (LCR_BUG(c, LCR_BUG_GRANT_STALE_LOG))
		return true;
	return lcr_log_id_cmp(cand_last, c->log.last) >= 0;
}

void lcr_on_vote_req(struct lcr_core *c, const struct lcr_msg *m)
{
	const struct lcr_vote_req *req = &m->vote_req;

	/* The candidate named in the vote must be the sender. */
	if (req->vote.lid.node != m->from || req->vote.committed) {
		c->n_stale++;
		return;
	}
	if (req->pre_vote) {
		/* Would we grant? Nothing changes and nothing is persisted. */
		bool granted = !lease_blocks(c, NULL) && log_ok(c, req->last_log_id) &&
			       lcr_vote_cmp(req->vote, c->vote) >= 0;
		reply_vote(c, m, granted, true);
		return;
	}
	const struct lcr_vote *from = req->leadership_transfer ? &req->transfer_from : NULL;
	if (lease_blocks(c, from) || !log_ok(c, req->last_log_id)) {
		reply_vote(c, m, false, false);
		return;
	}
	if (LCR_BUG(c, LCR_BUG_VOTE_NOT_PERSISTED)) {
		bool granted = vote_set(c, req->vote, false);
		reply_vote(c, m, granted, true);
		return;
	}
	bool granted = lcr_vote_update(c, req->vote);
	reply_vote(c, m, granted, false);
}

void lcr_on_vote_resp(struct lcr_core *c, const struct lcr_msg *m)
{
	const struct lcr_vote_resp *r = &m->vote_resp;
	int s = lcr_core_slot(c, m->from);
	struct lcr_candidate *cand = r->pre_vote ? &c->pre_candidate : &c->candidate;

	if (!cand->active || !lcr_vote_eq(r->req_vote, cand->vote)) {
		c->n_stale++;
		return;
	}
	if (r->granted && (r->pre_vote || lcr_vote_eq(r->vote, cand->vote))) {
		cand->granted[s] = true;
		if (!quorum_granted(c, cand))
			return;
		if (r->pre_vote)
			lcr_elect(c, NULL);
		else if (cand->granted[c->self_slot] || LCR_BUG(c, LCR_BUG_VOTE_BEFORE_DURABLE))
			establish(c);
		return;
	}
	if (lcr_log_id_cmp(r->last_log_id, c->log.last) > 0) {
		if (!c->seen_greater_log || lcr_log_id_cmp(r->last_log_id, c->greater_log) > 0)
			c->greater_log = r->last_log_id;
		c->seen_greater_log = true;
	}
	/*
	 * Adopt a higher vote, but never in committed form: a node whose state
	 * went back must not make itself leader from an echo of its own old vote
	 * (openraft #1385).
	 */
	struct lcr_vote v = r->vote;
	v.committed = false;
	if (lcr_vote_cmp(v, c->vote) > 0)
		lcr_vote_update(c, v);
}

/* ---- leader transfer -------------------------------------------------------- */

static void disable_lease(struct lcr_core *c)
{
	c->vote_lease_ns = 0;
	c->lease_enabled = false;
	c->promise_until_ns = 0;
}

void lcr_trigger_transfer(struct lcr_core *c, uint32_t to)
{
	if (!c->leader.active || to == c->id || !lcr_membership_is_voter(&c->membership, to))
		return;
	c->leader.transfer_to = to;
	disable_lease(c);
	/* A leader handing over serves no reads: its lease is given up. */
	lcr_reads_fail_all(c, -LCR_ETRANSFER);
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		uint32_t id = c->nodes[i];
		if (id == c->id || !lcr_membership_is_voter(&c->membership, id))
			continue;
		struct lcr_msg m;
		memset(&m, 0, sizeof(m));
		m.type = LCR_MSG_TRANSFER_LEADER;
		m.to = id;
		m.transfer.from_leader = c->vote;
		m.transfer.to = to;
		m.transfer.last_log_id = c->log.last;
		lcr_core_send(c, &m);
	}
}

void lcr_on_transfer(struct lcr_core *c, const struct lcr_msg *m)
{
	const struct lcr_transfer_req *t = &m->transfer;

	if (!lcr_vote_eq(t->from_leader, c->vote) || m->from != t->from_leader.lid.node) {
		c->n_stale++; /* VoteChanged: the sender is no longer our leader */
		return;
	}
	disable_lease(c);
	if (t->to != c->id)
		return;
	c->transfer_in.active = true;
	c->transfer_in.last_log_id = t->last_log_id;
	c->transfer_in.from_leader = t->from_leader;
	c->transfer_in.deadline_ns = c->now_ns + c->cfg.election_timeout_min_ms * LCR_NS_PER_MS;
	lcr_transfer_check(c);
}

/* The transfer target elects once the old leader's log is durable here. */
void lcr_transfer_check(struct lcr_core *c)
{
	if (!c->transfer_in.active)
		return;
	if (!lcr_vote_eq(c->vote, c->transfer_in.from_leader) ||
	    c->now_ns > c->transfer_in.deadline_ns) {
		c->transfer_in.active = false;
		return;
	}
	if (lcr_log_id_cmp(c->flushed_last, c->transfer_in.last_log_id) >= 0) {
		struct lcr_vote from = c->transfer_in.from_leader;
		c->transfer_in.active = false;
		lcr_elect(c, &from);
	}
}
