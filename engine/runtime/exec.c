/* SPDX-License-Identifier: MIT */
/*
 * Executing the core's commands (runtime_int.h): storage commands go to the
 * log, sends to the transport through the network contract (net_host.h:
 * AppendEntries on the follower's stream, replies through respond), applies
 * to the state machine, read results and role changes to the application.
 * And what comes back: the transport's requests, replies and errors, the
 * log's completions.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runtime_int.h"

/* ---- transmit --------------------------------------------------------------- */

/*
 * A part of a request cut by the window shorter than this waits for more
 * room instead (unless it is all that is left of the request): a window
 * that frees a few datagrams at a time must not turn a catch-up into a
 * stream of small messages, each its own follower write and ack.
 */
#define APPEND_PART_MIN (256u << 10)

/*
 * The transport asks for the entries of an AppendEntries right before it
 * sends it (net_host.h, attach_max): from our log, the arena cache or the
 * disk, never blocking: an entry the arena no longer holds comes from the
 * log's asynchronous reads (lcr_log_fetch), and while its read is in flight
 * the request goes with the entries before it, or waits (-EAGAIN) when there
 * are none; net.c asks again once the ring's completion woke the loop. At
 * most `bytes_max` (the stream's window) and APPEND_BYTES_MAX (one message)
 * go: the core sizes its requests by entry count. The entries stay valid
 * until the next call here; the transport encodes them during its op.
 */
static int net_attach_max(void *ctx, struct lcr_msg *m, uint64_t bytes_max)
{
	struct lcr_group *g = ctx;
	struct lcore *lc = g->lc;
	uint32_t want = m->append_req.n_entries, n = want;
	uint64_t bytes = 0;
	int err = 0;
	bool cut = false; /* stopped by bytes_max */

	LCR_ASSERT(m->type == LCR_MSG_APPEND_REQ);
	LCR_ASSERT(m->append_req.entries == NULL); /* the core never attaches them */
	LCR_ASSERT(want > 0);
	/* The entries handed out last time were encoded then. */
	lcr_log_fetch_unpin(g->log);
	if (n > ENTS_MAX)
		n = ENTS_MAX;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t idx = m->append_req.prev.index + 1 + i;
		int rc = lcr_log_get(g->log, idx, &lc->ents[i]);
		if (rc != 0)
			rc = lcr_log_fetch(g->log, idx, &lc->ents[i]);
		if (rc < 0) {
			err = rc;
			n = i;
			break;
		}
		LCR_ASSERT(lc->ents[i].id.index == idx);
		uint64_t add = (uint64_t)lc->ents[i].len + APPEND_ENTRY_OVERHEAD;
		if (bytes + add > bytes_max) {
			cut = true;
			n = i;
			break;
		}
		/* One request must fit one message of the transport; the first
		 * always does (an entry is at most 1 MiB). */
		if (i > 0 && bytes + add > APPEND_BYTES_MAX) {
			n = i;
			break;
		}
		bytes += add;
	}
	if (n == 0) {
		if (err == 0 || err == -EAGAIN)
			return -EAGAIN; /* no room for the first, or it is being read */
		return err;
	}
	if (cut && n < want && bytes < APPEND_PART_MIN)
		return -EAGAIN;
	m->append_req.n_entries = n;
	m->append_req.entries = lc->ents;
	return 0;
}

/*
 * The same for a caller without a bound (net_host.h, attach): kept for
 * hosts of the contract that call it; the node's net.c uses attach_max.
 */
static void net_attach(void *ctx, struct lcr_msg *m)
{
	if (net_attach_max(ctx, m, UINT64_MAX) < 0) {
		m->append_req.n_entries = 0;
		m->append_req.entries = NULL;
	}
}

/* ---- executing the core's commands ------------------------------------------ */

static bool apply_some(struct lcr_group *g, struct lcr_log_id *upto);
static void reads_ready(struct lcr_group *g, uint64_t upto);
static void reads_failed(struct lcr_group *g, uint64_t first, uint64_t last, int err);

/* A storage command of the core, to the group's log. */
static int log_exec(struct lcr_log *l, const struct lcr_cmd *cmd)
{
	switch (cmd->type) {
	case LCR_CMD_SAVE_VOTE:
		return lcr_log_save_vote(l, cmd->save_vote.vote, &cmd->save_vote.io);
	case LCR_CMD_APPEND:
		return lcr_log_append(l, cmd->append.entries, cmd->append.n, &cmd->append.io);
	case LCR_CMD_TRUNCATE:
		return lcr_log_truncate(l, cmd->truncate.after.index, &cmd->truncate.io);
	default:
		LCR_ASSERT(!"not a storage command");
		return -EINVAL;
	}
}

void lcr_rt_run_cmds(struct lcr_group *g)
{
	uint32_t n;
	const struct lcr_cmd *cmds = lcr_core_commands(g->core, &n);
	bool applied = false, mship = false;
	struct lcr_log_id applied_to = { { 0, 0 }, 0 };
	int fail = 0;

	LCR_ASSERT(cmds != NULL || n == 0);
	g->busy++;
	for (uint32_t i = 0; i < n; i++) {
		const struct lcr_cmd *c = &cmds[i];
		switch (c->type) {
		case LCR_CMD_SAVE_VOTE:
		case LCR_CMD_APPEND:
		case LCR_CMD_TRUNCATE: {
			/* The effective membership follows the log's newest. */
			if (c->type == LCR_CMD_TRUNCATE)
				mship = true;
			else if (c->type == LCR_CMD_APPEND)
				for (uint32_t k = 0; k < c->append.n && !mship; k++)
					mship = c->append.entries[k].type == LCR_ENTRY_MEMBERSHIP;
			int rc = fail ? 0 : log_exec(g->log, c);
			if (rc < 0 && !fail)
				fail = rc;
			break;
		}
		case LCR_CMD_SEND:
			if (c->send.type == LCR_MSG_APPEND_RESP &&
			    c->send.append_resp.result == LCR_APPEND_OK)
				lcr_rt_trace_acked(g->trace, c->send.append_resp.log_id.index,
						   g->lc->now);
			lcr_net_send(g->ng, &c->send, g->lc->now);
			break;
		case LCR_CMD_APPLY:
			/* Ranges come in order, each right after the last. */
			LCR_ASSERT(c->apply.first.index < c->apply.last.index);
			LCR_ASSERT(c->apply.first.index >= g->apply_to.index ||
				   g->apply_to.index <= g->applied_id.index);
			if (g->apply_to.index <= g->applied_id.index)
				g->applied_id = c->apply.first;
			g->apply_to = c->apply.last;
			lcr_rt_trace_committed(g->trace, c->apply.last.index, g->lc->now);
			applied = apply_some(g, &applied_to);
			break;
		case LCR_CMD_BUILD_SNAPSHOT:
			lcr_rt_snap_build(g);
			break;
		case LCR_CMD_PURGE:
			lcr_rt_snap_purge(g, c->purge.upto);
			break;
		case LCR_CMD_INSTALL_SNAPSHOT: {
			/* A storage command: in io order with the log's (snap_xfer.c). */
			int rc = fail ? 0 : lcr_rt_snap_install(g, c);
			if (rc < 0 && !fail)
				fail = rc;
			mship = true;
			/* The state machine holds everything up to meta.last:
			 * the core hears it as an apply. */
			if (rc == 0 && !fail) {
				applied = true;
				applied_to = c->install.meta.last;
			}
			break;
		}
		case LCR_CMD_CANCEL_SNAPSHOT:
			lcr_rt_snap_cancel(g, c);
			break;
		case LCR_CMD_READS_READY:
			reads_ready(g, c->reads_ready.read_id);
			break;
		case LCR_CMD_READS_FAILED:
			reads_failed(g, c->reads_failed.first, c->reads_failed.last,
				     c->reads_failed.err);
			break;
		case LCR_CMD_ROLE: {
			bool was_leader = g->role == LCR_ROLE_LEADER;
			g->role = c->role.role;
			g->leader = c->role.leader;
			lcr_rt_trace_role(g->trace);
			/* AppendEntries still waiting were that leadership's. */
			if (g->role != LCR_ROLE_LEADER)
				lcr_net_cancel(g->ng);
			/* Stopped for good (a storage error): nothing waiting will
			 * be applied here. */
			if (g->role == LCR_ROLE_STOPPED)
				lcr_rt_answer_waits(g, -LCR_ESTOPPED, 0);
			/* A leadership that ended (a newer leader, or no quorum
			 * heard from for a lease) answers what it proposed: those
			 * entries may still commit under the next leader, but no
			 * proposer waits on an outcome this replica cannot give. */
			else if (was_leader && g->role != LCR_ROLE_LEADER)
				lcr_rt_answer_waits(g, -LCR_ENOTLEADER, g->leader);
			if (g->ops.role)
				g->ops.role(g->sm, g->role, g->leader);
			lcr_rt_publish(g);
			break;
		}
		default:
			LCR_ASSERT(!"unknown core command");
		}
	}
	LCR_ASSERT(g->busy > 0);
	g->busy--;
	g->next_timer = lcr_core_next_timer(g->core);
	/* Its members' addresses go to the transport from the loop
	 * (lcr_rt_mship_progress): this may run inside the transport's poll. */
	g->mship_dirty |= mship;
	/* Events that follow from these commands; each step runs its own. */
	if (fail) {
		fprintf(stderr,
			"lcraft: group %u: storage refused a command: %s; the replica stops\n",
			g->id, lcr_strerror(fail));
		struct lcr_event ev = { .type = LCR_EV_IO_FAILED, .io_error = fail };
		lcr_rt_step(g, &ev);
		return;
	}
	if (applied) {
		struct lcr_event ev = { .type = LCR_EV_APPLIED, .applied = applied_to };
		lcr_rt_step(g, &ev);
	}
}

void lcr_rt_step(struct lcr_group *g, struct lcr_event *ev)
{
	LCR_ASSERT(ev != NULL);
	ev->now_ns = g->lc->now;
	lcr_rt_held_event(g, ev);
	lcr_core_step(g->core, ev);
	lcr_rt_run_cmds(g);
}

static struct pending *wait_head(struct lcr_group *g)
{
	return g->wait_len ? &g->wait[g->wait_head] : NULL;
}

static void wait_pop(struct lcr_group *g)
{
	LCR_ASSERT(g->wait_len > 0);
	g->wait_head = (g->wait_head + 1) % PENDING_MAX;
	g->wait_len--;
}

/* Every proposal waiting for its apply gets `err` (the replica stopped). */
void lcr_rt_answer_waits(struct lcr_group *g, int err, uint32_t leader)
{
	g->busy++;
	while (g->wait_len) {
		struct pending w = g->wait[g->wait_head];
		wait_pop(g);
		w.done(w.ctx, err, leader, NULL, 0);
	}
	g->busy--;
}

/*
 * Apply committed entries, at most APPLY_BUDGET in one go so that a long
 * backlog (a restart replays the whole log) never holds the loop past a
 * heartbeat: the rest follows in the next iterations (lcr_rt_apply_pending). True
 * if it applied any; *upto is then the last one applied.
 */
static bool apply_some(struct lcr_group *g, struct lcr_log_id *upto)
{
	struct lcore *lc = g->lc;
	uint64_t first = g->applied_id.index + 1, last = g->apply_to.index;

	if (g->apply_broken)
		return false;
	LCR_ASSERT(first <= last + 1);
	/* What a snapshot holds is never applied again from the log (which may
	 * have been purged there). */
	LCR_ASSERT(first > g->snap.floor.index);
	if (last >= first + APPLY_BUDGET)
		last = first + APPLY_BUDGET - 1;
	for (uint64_t idx = first; idx <= last; idx++) {
		struct lcr_entry e;
		if (lcr_log_get(g->log, idx, &e) < 0 &&
		    lcr_log_read(g->log, idx, &e, lc->cold, COLD_BYTES) < 0) {
			/* A committed entry we cannot read: the replica cannot go on. */
			fprintf(stderr, "lcraft: group %u: cannot read committed entry %llu\n",
				g->id, (unsigned long long)idx);
			g->io_err = -EIO;
			g->apply_broken = true; /* skipping it would apply the rest wrongly */
			break;
		}
		uint32_t rlen = 0;
		if (e.type == LCR_ENTRY_NORMAL && g->ops.apply)
			g->ops.apply(g->sm, &e, g->result, &rlen);
		else if (lcr_unlikely(e.type == LCR_ENTRY_MEMBERSHIP))
			lcr_rt_mship_applied(g, &e); /* not the state machine's */
		g->applied++;
		/* Answer our own proposals: the same log id, or it was replaced. */
		struct pending *p;
		while ((p = wait_head(g)) && p->id.index <= idx) {
			struct pending w = *p;
			wait_pop(g);
			if (w.id.index == idx && lcr_log_id_eq(w.id, e.id)) {
				lcr_hist_add(&g->commit_lat, lc->now - w.at_ns);
				g->answer_id = e.id;
				w.done(w.ctx, 0, 0, g->result, rlen);
			} else {
				g->cancelled++;
				w.done(w.ctx, -ECANCELED, g->leader, NULL, 0);
			}
		}
		g->applied_id = e.id;
	}
	lcr_rt_trace_applied(g->trace, g->applied_id.index, lc->now);
	if (g->applied_id.index >= first)
		lcr_rt_publish(g);
	*upto = g->applied_id;
	return upto->index >= first;
}

/* Go on with a backlog apply_some() left. True if it did anything. */
bool lcr_rt_apply_pending(struct lcr_group *g)
{
	struct lcr_log_id upto;

	if (g->apply_to.index <= g->applied_id.index)
		return false;
	g->busy++;
	bool any = apply_some(g, &upto);
	g->busy--;
	if (!any)
		return false;
	struct lcr_event ev = { .type = LCR_EV_APPLIED, .applied = upto };
	lcr_rt_step(g, &ev);
	return true;
}

static void reads_ready(struct lcr_group *g, uint64_t upto)
{
	while (g->reads_len && g->reads[g->reads_head].read_id <= upto) {
		struct waiting_read r = g->reads[g->reads_head];
		g->reads_head = (g->reads_head + 1) % READS_WAIT_MAX;
		g->reads_len--;
		r.done(r.ctx, 0, 0);
	}
}

static void reads_failed(struct lcr_group *g, uint64_t first, uint64_t last, int err)
{
	while (g->reads_len && g->reads[g->reads_head].read_id <= last) {
		struct waiting_read r = g->reads[g->reads_head];
		g->reads_head = (g->reads_head + 1) % READS_WAIT_MAX;
		g->reads_len--;
		if (r.read_id >= first)
			r.done(r.ctx, err, g->leader);
	}
}

/* ---- receiving ---------------------------------------------------------------- */

/* A request from a peer or a reply to one of our calls, from the transport. */
static void net_deliver(void *ctx, const struct lcr_msg *m)
{
	struct lcr_group *g = ctx;
	struct lcr_event ev = { .type = LCR_EV_MSG, .msg = m };

	if (m->type == LCR_MSG_APPEND_REQ)
		lcr_rt_trace_received(g->trace, &m->append_req, g->lc->now);
	else if (m->type == LCR_MSG_APPEND_RESP)
		lcr_rt_trace_ack_in(g->trace, &m->append_resp, g->lc->now);
	lcr_rt_step(g, &ev);
}

/*
 * A call failed. An AppendEntries error ends that stream: the core backs the
 * follower off (UNREACHABLE, REMOTE at once; TIMEOUT, NETWORK when they
 * pile up) and opens a new stream. A snapshot's error ends that snapshot on
 * its stream: the core sends it again after the backoff. The core has no use
 * for the other errors: a candidate waits for its next election timeout, a
 * transfer for the leader lease to run out (openraft logs them too).
 */
static void net_failed(void *ctx, const struct lcr_net_call *call, uint32_t err, const char *why)
{
	struct lcr_group *g = ctx;
	(void)why;

	g->net_errors++;
	if (call->op != LCR_NET_OP_APPEND && call->op != LCR_NET_OP_STREAM_APPEND &&
	    call->op != LCR_NET_OP_SNAPSHOT)
		return;
	LCR_ASSERT(!call->heartbeat); /* net.c keeps those */
	struct lcr_event ev = { .type = LCR_EV_NET_ERROR };
	ev.net.target = call->target;
	ev.net.stream_id = call->stream_id;
	ev.net.err = err;
	lcr_rt_step(g, &ev);
}

/*
 * A peer (re)started (its transport said hello): a leader heartbeats now, so
 * that a follower that restarted hears it at once, not at the next interval.
 */
static void net_peer_started(void *ctx, uint32_t peer)
{
	struct lcr_group *g = ctx;
	(void)peer;

	if (g->role != LCR_ROLE_LEADER)
		return;
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_HEARTBEAT };
	lcr_rt_step(g, &ev);
}

const struct lcr_net_host lcr_rt_net_host = {
	.deliver = net_deliver,
	.failed = net_failed,
	.peer_started = net_peer_started,
	.attach = net_attach,
	.attach_max = net_attach_max,
	.snap_open = lcr_rt_xfer_open,
	.snap_close = lcr_rt_xfer_close,
	.snap_begin = lcr_rt_xfer_begin,
	.snap_write = lcr_rt_xfer_write,
	.snap_end = lcr_rt_xfer_end,
	.snap_abort = lcr_rt_xfer_abort,
};

/* ---- storage completions ------------------------------------------------------ */

void lcr_rt_log_done(void *ctx, const struct lcr_io_id *io, int err)
{
	struct lcr_group *g = ctx;
	if (err) {
		g->io_err = err;
		return;
	}
	g->flushed = *io;
	g->flush_new = true;
}

bool lcr_rt_storage_progress(struct lcore *lc)
{
	bool work = false;

	for (uint32_t i = 0; i < lc->n_groups; i++)
		lcr_log_flush(lc->groups[i]->log);
	lcr_ring_submit(&lc->ring);
	/* The completion queue is read from memory; its eventfd, which wakes a
	 * sleeping lcore, is cleared only before a sleep (loop.c). */
	if (lcr_ring_reap(&lc->ring))
		work = true;
	for (uint32_t i = 0; i < lc->n_groups; i++) {
		struct lcr_group *g = lc->groups[i];
		if (g->io_err) {
			int err = g->io_err;
			g->io_err = 0;
			/* The log said what failed, and where; this says what follows. */
			fprintf(stderr,
				"lcraft: group %u: its log failed (%s); the replica stops "
				"(restart the node once the cause is fixed: it recovers "
				"from its data)\n",
				g->id, lcr_strerror(err));
			struct lcr_event ev = { .type = LCR_EV_IO_FAILED, .io_error = err };
			lcr_rt_step(g, &ev);
			work = true;
		}
		if (g->flush_new) {
			g->flush_new = false;
			g->flushes++;
			lcr_rt_trace_durable(g->trace, g->flushed.last.index, lc->now);
			struct lcr_event ev = { .type = LCR_EV_IO_FLUSHED, .io = g->flushed };
			lcr_rt_step(g, &ev);
			work = true;
		}
	}
	return work;
}
