/* SPDX-License-Identifier: MIT */
/*
 * A commit's timeline, stage by stage (runtime_int.h, struct lcr_trace). The
 * runtime stamps each batch of proposals as it passes the points of the commit
 * path, with the time of the loop iteration that saw it, and adds each stage's
 * duration to its histogram:
 *
 *   leader    proposal_queue    lcr_propose() took it -> the core proposed it
 *             leader_durable    proposed -> durable in the leader's log
 *             replication_rtt   AppendEntries out -> its ack in (per ack)
 *             commit            proposed -> committed (a quorum has it)
 *             apply             committed -> applied and answered
 *   follower  follower_one_way  the leader's send -> delivered here (only
 *                               when both share this host's clock)
 *             follower_durable  delivered -> durable in this log
 *             follower_ack      durable -> the ack goes out
 *
 * Batches are followed by their last index: a point is passed by every batch
 * whose last index the watermark (durable, committed, acked, applied) reached.
 * A batch is followed until it passed them all (a leader may commit before its
 * own write is durable: two followers are a quorum of three). At most
 * TRACE_MAX batches are followed at once; more are not sampled.
 */
#include <string.h>

#include "runtime_int.h"

static const char *const stage_names[LCR_STAGE_N] = {
	[LCR_STAGE_QUEUE] = "proposal_queue",
	[LCR_STAGE_LEADER_DURABLE] = "leader_durable",
	[LCR_STAGE_RTT] = "replication_rtt",
	[LCR_STAGE_COMMIT] = "commit",
	[LCR_STAGE_APPLY] = "apply",
	[LCR_STAGE_ONE_WAY] = "follower_one_way",
	[LCR_STAGE_FOLLOWER_DURABLE] = "follower_durable",
	[LCR_STAGE_FOLLOWER_ACK] = "follower_ack",
};

const char *lcr_rt_stage_name(uint32_t s)
{
	return s < LCR_STAGE_N ? stage_names[s] : "unknown";
}

static struct lcr_trace_batch *at(struct lcr_trace_ring *r, uint64_t seq)
{
	return &r->b[seq % TRACE_MAX];
}

static struct lcr_trace_batch *push(struct lcr_trace_ring *r, uint64_t last, uint64_t t)
{
	if (r->tail - r->head == TRACE_MAX)
		return NULL; /* full: this batch is not followed */
	struct lcr_trace_batch *b = at(r, r->tail++);
	memset(b, 0, sizeof(*b));
	b->last = last;
	b->t0 = t;
	return b;
}

/* Drop the oldest batches that every point has passed. */
static void retire(struct lcr_trace_ring *r)
{
	while (r->head < r->durable && r->head < r->applied)
		r->head++;
}

static void clear(struct lcr_trace_ring *r)
{
	r->head = r->durable = r->committed = r->applied = r->tail;
}

static void add(struct lcr_trace *t, uint32_t stage, uint64_t from, uint64_t to)
{
	if (to >= from)
		lcr_hist_add(&t->h[stage], to - from);
}

void lcr_rt_trace_proposed(struct lcr_trace *t, const struct pending *p, uint32_t n, uint64_t last,
			   uint64_t now)
{
	for (uint32_t i = 0; i < n; i++)
		add(t, LCR_STAGE_QUEUE, p[i].at_ns, now);
	push(&t->lead, last, now);
}

void lcr_rt_trace_durable(struct lcr_trace *t, uint64_t index, uint64_t now)
{
	struct lcr_trace_ring *r = &t->lead;
	for (; r->durable < r->tail && at(r, r->durable)->last <= index; r->durable++)
		add(t, LCR_STAGE_LEADER_DURABLE, at(r, r->durable)->t0, now);
	retire(r);
	r = &t->follow;
	for (; r->durable < r->tail && at(r, r->durable)->last <= index; r->durable++) {
		at(r, r->durable)->t1 = now;
		add(t, LCR_STAGE_FOLLOWER_DURABLE, at(r, r->durable)->t0, now);
	}
}

void lcr_rt_trace_committed(struct lcr_trace *t, uint64_t index, uint64_t now)
{
	struct lcr_trace_ring *r = &t->lead;
	for (; r->committed < r->tail && at(r, r->committed)->last <= index; r->committed++) {
		at(r, r->committed)->t1 = now;
		add(t, LCR_STAGE_COMMIT, at(r, r->committed)->t0, now);
	}
}

void lcr_rt_trace_applied(struct lcr_trace *t, uint64_t index, uint64_t now)
{
	struct lcr_trace_ring *r = &t->lead;
	for (; r->applied < r->committed && at(r, r->applied)->last <= index; r->applied++)
		add(t, LCR_STAGE_APPLY, at(r, r->applied)->t1, now);
	retire(r);
}

void lcr_rt_trace_received(struct lcr_trace *t, const struct lcr_append_req *a, uint64_t now)
{
	/* The sender's clock: comparable only when it is ours (one host). */
	if (a->send_ns <= now && now - a->send_ns < TRACE_ONE_WAY_MAX_NS)
		add(t, LCR_STAGE_ONE_WAY, a->send_ns, now);
	if (a->n_entries > 0)
		push(&t->follow, a->prev.index + a->n_entries, now);
}

void lcr_rt_trace_acked(struct lcr_trace *t, uint64_t index, uint64_t now)
{
	struct lcr_trace_ring *r = &t->follow;
	/* An ack covers only what is durable here. */
	for (; r->applied < r->durable && at(r, r->applied)->last <= index; r->applied++)
		add(t, LCR_STAGE_FOLLOWER_ACK, at(r, r->applied)->t1, now);
	retire(r);
}

void lcr_rt_trace_ack_in(struct lcr_trace *t, const struct lcr_append_resp *a, uint64_t now)
{
	if (a->result == LCR_APPEND_OK && a->inflight_id != 0)
		add(t, LCR_STAGE_RTT, a->send_ns, now);
}

void lcr_rt_trace_role(struct lcr_trace *t)
{
	clear(&t->lead);
	clear(&t->follow);
}
