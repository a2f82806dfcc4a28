/* SPDX-License-Identifier: MIT */
/*
 * Linearizable reads (openraft docs/protocol/read.md):
 *   read_log_id = max(committed, noop); serve once applied >= read_log_id and
 *   - ReadIndex: a quorum acknowledged a message sent after the read arrived
 *     (a heartbeat is broadcast for it), proving no newer leader had been
 *     elected; "after" is by the leader's send sequence, not by time;
 *   - LeaseRead: the quorum lease is valid now, else the read fails at once.
 *
 * A follower serves ReadIndex reads too (thesis §6.4, last paragraph; etcd's
 * ReadIndex from followers; openraft's follower read over an application
 * RPC): it asks the leader it follows for a read index (READ_INDEX_REQ), the
 * leader runs the ReadIndex above for it, without waiting for its own apply,
 * and answers with read_log_id once a quorum confirmed it (READ_INDEX_RESP);
 * the follower serves once its own applied index reaches it. Entries at or
 * below a committed index are the same in every log, so the follower's state
 * then holds every write the leader had committed when the request arrived,
 * which is after the read arrived at the follower. LeaseRead stays on the
 * leader: a follower has no lease of its own.
 *
 * Reads wait in one FIFO ring; a leader's reads (its own and those it holds
 * for followers) and a follower's reads never share it, since a change of
 * role fails every read queued. Conditions become true in arrival order, so
 * the head decides. Results go out as id ranges, O(1) commands.
 */
#include <errno.h>

#include "core_int.h"

static struct lcr_pending_read *push(struct lcr_core *c, uint8_t kind)
{
	LCR_ASSERT(c->reads_len < c->reads_max);
	struct lcr_pending_read *r = &c->reads[(c->reads_head + c->reads_len) % c->reads_max];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->deadline_ns = c->now_ns + c->read_timeout_ns;
	c->reads_len++;
	return r;
}

/* The leader's read index: its commit, but never below its own no-op. */
static struct lcr_log_id read_log_id(const struct lcr_core *c)
{
	return c->committed.index > c->leader.noop.index ? c->committed : c->leader.noop;
}

/* Whether this replica follows a leader it may ask for a read index. */
static bool follows_leader(const struct lcr_core *c)
{
	return !c->leader.active && !c->candidate.active && c->vote.committed &&
	       c->vote.lid.node != c->id && lcr_core_slot(c, c->vote.lid.node) >= 0;
}

/* Ask the leader for a read index covering every read queued so far. */
static void ask_leader(struct lcr_core *c)
{
	LCR_ASSERT(c->reads_len > 0);
	struct lcr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_READ_INDEX_REQ;
	m.to = c->vote.lid.node;
	m.read_index_req.vote = c->vote;
	m.read_index_req.read_id =
		c->reads[(c->reads_head + c->reads_len - 1) % c->reads_max].read_id;
	c->via.leader = c->vote;
	c->via.asked_id = m.read_index_req.read_id;
	c->via.asked_ns = c->now_ns;
	lcr_core_send(c, &m);
}

/*
 * A follower: ask when reads wait unindexed (they are the newest: answers
 * index every read up to the one they name) and no request is out, or the
 * one out went unanswered for a heartbeat interval (lost, or its answer was).
 */
static bool unindexed_waiting(const struct lcr_core *c)
{
	if (c->reads_len == 0 || !follows_leader(c))
		return false;
	const struct lcr_pending_read *last =
		&c->reads[(c->reads_head + c->reads_len - 1) % c->reads_max];
	return last->kind == LCR_READ_VIA_LEADER && !last->indexed && !last->err;
}

static void maybe_ask(struct lcr_core *c)
{
	if (!unindexed_waiting(c))
		return;
	if (c->via.asked_ns != 0 && c->now_ns < c->via.asked_ns + c->heartbeat_ns)
		return; /* one request at a time; its answer asks for the rest */
	ask_leader(c);
}

static int follower_read_start(struct lcr_core *c, uint32_t policy, uint64_t *read_id)
{
	if (policy == LCR_READ_LEASE || !follows_leader(c))
		return -LCR_ENOTLEADER;
	if (c->reads_len == c->reads_max)
		return -LCR_EFULL;
	if (c->reads_len > 0)
		LCR_ASSERT(c->reads[c->reads_head].kind == LCR_READ_VIA_LEADER);
	if (c->reads_len > 0 && !lcr_vote_eq(c->via.leader, c->vote))
		lcr_reads_fail_all(c, -LCR_ENOTLEADER);
	struct lcr_pending_read *r = push(c, LCR_READ_VIA_LEADER);
	r->read_id = c->next_read_id++;
	*read_id = r->read_id;
	if (c->reads_len == 1)
		c->via.asked_ns = 0; /* nothing waits on an earlier request */
	maybe_ask(c);
	return 0;
}

int lcr_read_start(struct lcr_core *c, uint32_t policy, uint64_t *read_id)
{
	if (!c->leader.active)
		return follower_read_start(c, policy, read_id);
	if (c->leader.transfer_to != 0)
		return -LCR_ETRANSFER;
	if (c->reads_len == c->reads_max)
		return -LCR_EFULL;
	uint64_t need_seq = 0;
	if (policy == LCR_READ_LEASE) {
		if (!lcr_leader_lease_valid(c))
			return -LCR_ENOLEASE;
	} else {
		need_seq = c->leader.send_seq;
		lcr_leader_heartbeat(c);
	}
	struct lcr_pending_read *r = push(c, LCR_READ_LOCAL);
	r->read_id = c->next_read_id++;
	r->need_seq = need_seq;
	r->lease = policy == LCR_READ_LEASE;
	r->read_index = read_log_id(c).index;
	*read_id = r->read_id;
	lcr_reads_progress(c);
	return 0;
}

/* ---- the leader's side of a follower's read ------------------------------------ */

static void answer(struct lcr_core *c, uint32_t to, uint64_t read_id, uint32_t result,
		   struct lcr_log_id rl)
{
	struct lcr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_READ_INDEX_RESP;
	m.to = to;
	m.read_index_resp.result = result;
	m.read_index_resp.vote = c->vote;
	m.read_index_resp.read_id = read_id;
	m.read_index_resp.read_log_id = result == LCR_READ_INDEX_OK ? rl : lcr_log_id_none();
	lcr_core_send(c, &m);
}

void lcr_on_read_index_req(struct lcr_core *c, const struct lcr_msg *m)
{
	const struct lcr_read_index_req *q = &m->read_index_req;
	struct lcr_log_id none = lcr_log_id_none();

	/* Only for the leadership the follower asked: a leader never confirms a
	 * read for a term it does not lead (the follower's vote names it). */
	if (!c->leader.active || !lcr_vote_eq(q->vote, c->leader.vote)) {
		answer(c, m->from, q->read_id, LCR_READ_INDEX_NOT_LEADER, none);
		return;
	}
	if (c->leader.transfer_to != 0) {
		answer(c, m->from, q->read_id, LCR_READ_INDEX_TRANSFER, none);
		return;
	}
	if (c->reads_len == c->reads_max) {
		answer(c, m->from, q->read_id, LCR_READ_INDEX_FULL, none);
		return;
	}
	/* The ReadIndex of lcr_read_start, confirmed by a heartbeat round sent
	 * after the request arrived; the follower waits for its own apply. */
	uint64_t need_seq = c->leader.send_seq;
	lcr_leader_heartbeat(c);
	struct lcr_pending_read *r = push(c, LCR_READ_FOR_PEER);
	r->read_id = q->read_id;
	r->need_seq = need_seq;
	r->peer = m->from;
	r->read_log_id = read_log_id(c);
	r->read_index = r->read_log_id.index;
	lcr_reads_progress(c);
}

/* ---- the follower's side ----------------------------------------------------------- */

static int result_err(uint32_t result)
{
	switch (result) {
	case LCR_READ_INDEX_TRANSFER:
		return -LCR_ETRANSFER;
	case LCR_READ_INDEX_TIMEOUT:
		return -LCR_ETIMEDOUT;
	case LCR_READ_INDEX_FULL:
		return -LCR_EFULL;
	case LCR_READ_INDEX_UNSUPPORTED:
		return -ENOTSUP;
	default:
		return -LCR_ENOTLEADER;
	}
}

void lcr_on_read_index_resp(struct lcr_core *c, const struct lcr_msg *m)
{
	const struct lcr_read_index_resp *a = &m->read_index_resp;

	/* An answer to a request this replica sent, from the leader it asked,
	 * for reads still queued; anything else is late or forged. */
	if (c->reads_len == 0 || c->reads[c->reads_head].kind != LCR_READ_VIA_LEADER ||
	    m->from != c->via.leader.lid.node || a->read_id > c->via.asked_id ||
	    a->result < LCR_READ_INDEX_OK || a->result > LCR_READ_INDEX_UNSUPPORTED) {
		c->n_stale++;
		return;
	}
	if (a->result == LCR_READ_INDEX_OK &&
	    (!lcr_vote_eq(a->vote, c->via.leader) || a->read_log_id.index >= LCR_NUMBER_MAX)) {
		c->n_stale++;
		return;
	}
	int err = a->result == LCR_READ_INDEX_OK ? 0 : result_err(a->result);
	for (uint32_t i = 0; i < c->reads_len; i++) {
		struct lcr_pending_read *r = &c->reads[(c->reads_head + i) % c->reads_max];
		if (r->read_id > a->read_id)
			break;
		if (r->indexed || r->err)
			continue;
		if (err) {
			r->err = err;
		} else {
			r->indexed = true;
			r->read_index = a->read_log_id.index;
		}
	}
	if (a->read_id == c->via.asked_id)
		c->via.asked_ns = 0;
	lcr_reads_progress(c);
}

void lcr_reads_check_leader(struct lcr_core *c)
{
	if (c->reads_len == 0 || c->reads[c->reads_head].kind != LCR_READ_VIA_LEADER)
		return;
	if (follows_leader(c) && lcr_vote_eq(c->vote, c->via.leader))
		return;
	/* A new leader, an election, or leadership of our own: the reads were
	 * asked of a leadership this replica no longer follows. */
	lcr_reads_fail_all(c, -LCR_ENOTLEADER);
}

/* ---- results --------------------------------------------------------------------------- */

static void emit_ready(struct lcr_core *c, uint64_t upto)
{
	struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_READS_READY);
	cmd->reads_ready.read_id = upto;
}

static void emit_failed(struct lcr_core *c, uint64_t first, uint64_t last, int err)
{
	struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_READS_FAILED);
	cmd->reads_failed.first = first;
	cmd->reads_failed.last = last;
	cmd->reads_failed.err = err;
}

static uint32_t peer_result(int err)
{
	switch (err) {
	case -LCR_ETRANSFER:
		return LCR_READ_INDEX_TRANSFER;
	case -LCR_ETIMEDOUT:
		return LCR_READ_INDEX_TIMEOUT;
	default:
		return LCR_READ_INDEX_NOT_LEADER;
	}
}

/* Whether the read at the head may be served (or answered, for a peer). */
static bool head_ready(const struct lcr_core *c, const struct lcr_pending_read *r, uint64_t acked)
{
	switch (r->kind) {
	case LCR_READ_FOR_PEER:
		return c->leader.active && acked > r->need_seq;
	case LCR_READ_VIA_LEADER:
		return r->indexed && (c->applied.index >= r->read_index ||
				      LCR_BUG(c, LCR_BUG_FOLLOWER_READ_STALE));
	default:
		return (r->lease || acked > r->need_seq) && c->applied.index >= r->read_index;
	}
}

void lcr_reads_progress(struct lcr_core *c)
{
	uint64_t acked, ready = 0, fail_first = 0, fail_last = 0;
	int fail_err = 0;

	if (c->reads_len == 0)
		return;
	acked = c->leader.active ? lcr_leader_quorum_acked_seq(c) : 0;
	while (c->reads_len > 0) {
		struct lcr_pending_read *r = &c->reads[c->reads_head];
		bool ok = !r->err && head_ready(c, r, acked);
		int err = r->err;
		if (!ok && !err && c->now_ns > r->deadline_ns)
			err = -LCR_ETIMEDOUT;
		if (r->kind == LCR_READ_FOR_PEER) {
			if (!ok && !err)
				break;
			answer(c, r->peer, r->read_id, ok ? LCR_READ_INDEX_OK : peer_result(err),
			       r->read_log_id);
		} else if (ok) {
			if (fail_first) {
				emit_failed(c, fail_first, fail_last, fail_err);
				fail_first = 0;
			}
			ready = r->read_id;
		} else if (err) {
			if (ready) {
				emit_ready(c, ready);
				ready = 0;
			}
			if (fail_first && err != fail_err) {
				emit_failed(c, fail_first, fail_last, fail_err);
				fail_first = 0;
			}
			if (!fail_first)
				fail_first = r->read_id;
			fail_last = r->read_id;
			fail_err = err;
		} else {
			break;
		}
		c->reads_head = (c->reads_head + 1) % c->reads_max;
		c->reads_len--;
	}
	if (ready)
		emit_ready(c, ready);
	if (fail_first)
		emit_failed(c, fail_first, fail_last, fail_err);
	maybe_ask(c);
}

void lcr_reads_fail_all(struct lcr_core *c, int err)
{
	uint64_t first = 0, last = 0;

	/* Our own reads hold consecutive ids; a follower's read held for it is
	 * answered (not after a fatal error: the follower's timeout covers it). */
	for (uint32_t i = 0; i < c->reads_len; i++) {
		const struct lcr_pending_read *r = &c->reads[(c->reads_head + i) % c->reads_max];
		if (r->kind == LCR_READ_FOR_PEER) {
			if (err != -LCR_ESTOPPED)
				answer(c, r->peer, r->read_id, peer_result(err), r->read_log_id);
			continue;
		}
		if (!first)
			first = r->read_id;
		LCR_ASSERT(!last || r->read_id == last + 1);
		last = r->read_id;
	}
	if (first)
		emit_failed(c, first, last, err);
	c->reads_head = 0;
	c->reads_len = 0;
	c->via.asked_ns = 0;
}

uint64_t lcr_reads_next_timer(const struct lcr_core *c)
{
	if (c->reads_len == 0)
		return 0;
	uint64_t t = c->reads[c->reads_head].deadline_ns + 1;
	/* A follower's request unanswered for a heartbeat interval goes again,
	 * while reads still wait for an index (a timer in the past otherwise). */
	if (unindexed_waiting(c) && c->via.asked_ns != 0 && c->via.asked_ns + c->heartbeat_ns < t)
		t = c->via.asked_ns + c->heartbeat_ns;
	return t;
}
