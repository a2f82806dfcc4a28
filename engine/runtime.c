/* SPDX-License-Identifier: MIT */
/*
 * The runtime: lcores running Raft groups to completion (design.md, "Data
 * flow through one lcore"). Each iteration of an lcore:
 *
 *   transport receive (UDP: rx burst -> check -> stream layer) ->
 *       core.step(message) -> commands; acks for the streams that got data
 *   tasks posted from other threads, the application's poll hook
 *   timers -> core.step(tick); the transport's timers (retransmissions)
 *   proposals gathered this iteration -> one core.propose
 *   storage: flush (group commit), submit, reap -> core.step(flushed)
 *   transport transmit (UDP: tx burst)
 *   nothing happened: sleep until a datagram, a completion or a timer
 *
 * The core's commands are executed here: storage commands go to the log,
 * sends to the transport through the network contract (dpdk-net/net.h:
 * AppendEntries on the follower's stream, replies through respond),
 * applies to the state machine, read results and role changes to the
 * application. The transport is the node config's factory, or the built-in
 * UDP one (dpdk-net/udp.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../dpdk-net/net.h"
#include "../io/log.h"
#include "../io/ring.h"
#include "lcr_assert.h"
#include "lcraft.h"

#define GROUPS_MAX     256  /* per lcore */
#define POST_MAX       1024 /* tasks waiting per lcore */
#define PROPOSE_MAX    4096 /* proposals gathered per group per iteration */
#define PROPOSE_BYTES  (8u << 20)
#define PENDING_MAX    65536 /* proposals waiting for apply, per group */
#define READS_WAIT_MAX 4096
#define RESULT_MAX     8192
#define COLD_BYTES     (4u << 20) /* entries read from disk for one AppendEntries */
#define APPLY_BUDGET   4096	  /* entries applied per group per loop iteration */
/* Entries of one AppendEntries, bytes: the UDP wire takes 1 MiB + 64 KiB per
 * message (LCR_WIRE_MSG_MAX), of which at most 32 bytes per entry go to its
 * header and less than 1 KiB to the request's own fields. */
#define APPEND_BYTES_MAX      (1u << 20)
#define APPEND_ENTRY_OVERHEAD 32
#define DEFERRED_MAX	      1024 /* API calls made from callbacks, waiting per group */

/* ---- small helpers ---------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- structures ------------------------------------------------------------- */

struct pending {
	struct lcr_log_id id;
	uint64_t at_ns;
	lcr_propose_fn done;
	void *ctx;
};

struct deferred {
	bool is_read;
	uint32_t policy; /* lcr_read */
	lcr_read_fn done;
	void *ctx;
	struct lcr_event ev; /* lcr_group_event */
};

struct waiting_read {
	uint64_t read_id;
	lcr_read_fn done;
	void *ctx;
};

struct lcore;

struct lcr_group {
	uint32_t id;
	struct lcr_node *node;
	struct lcore *lc;
	struct lcr_core *core;
	struct lcr_log *log;
	struct lcr_sm_ops ops;
	void *sm;
	struct lcr_net_group *ng; /* its peers in the transport */
	/* Proposals of this iteration. */
	struct lcr_entry *pe;
	struct pending *pp;
	uint32_t pn;
	uint8_t *pbuf;
	uint32_t pbytes;
	/* Proposals waiting for apply, in index order. */
	struct pending *wait;
	uint32_t wait_head, wait_len;
	/* Reads waiting. */
	struct waiting_read *reads;
	uint32_t reads_head, reads_len;
	/* Storage completions, stepped after the reap. */
	struct lcr_io_id flushed;
	bool flush_new;
	int io_err;
	uint64_t next_timer;
	/* Applying: done through applied_id, committed through apply_to. */
	struct lcr_log_id applied_id, apply_to;
	bool apply_broken; /* a committed entry could not be read: never apply again */
	/*
	 * Callbacks run while the runtime walks the core's commands (or applies):
	 * a call into the core from one of them (lcr_read, lcr_group_event) would
	 * overwrite that list under the walk. Such calls wait here, in order,
	 * for the next loop iteration.
	 */
	uint32_t busy;
	struct deferred *deferred;
	uint32_t def_head, def_len;
	uint32_t role, leader;
	uint8_t result[RESULT_MAX];
	/* Metrics. */
	uint64_t proposed, applied, cancelled, refused, net_errors;
	uint64_t flushes, flush_started_ns;
	struct lcr_hist commit_lat;
};

struct post {
	_Atomic uint64_t seq;
	lcr_task_fn fn;
	void *arg;
};

struct lcore {
	uint32_t index;
	struct lcr_node *node;
	pthread_t thread;
	struct lcr_ring ring;
	int efd;
	int epfd;	     /* efd and the application's fd, for sleeping */
	struct lcr_net *net; /* the transport of this lcore */
	struct lcr_group *groups[GROUPS_MAX];
	uint32_t n_groups;
	struct lcr_entry *ents; /* entries attached to one AppendEntries */
	uint32_t ents_max;
	uint8_t *cold; /* entries read from disk */
	struct post *posts;
	_Atomic uint64_t post_enq, post_deq;
	lcr_poll_fn poll;
	int poll_fd;
	void *poll_ctx;
	uint64_t now;
	uint64_t iterations, sleeps;
	uint64_t last_work; /* when an iteration last did anything */
	int err;
	/* Sleeping, as posters see it: they wake a sleeping lcore (efd). */
	_Atomic bool sleeping;
	_Atomic bool looping; /* its loop runs, on thread `self` */
	pthread_t self;
	/*
	 * Metrics asked for from another thread: the lcore renders its part
	 * into `m_out` itself (under m_mu), so nothing is read while it changes.
	 */
	pthread_mutex_t m_mu;
	pthread_cond_t m_cv;
	_Atomic bool m_want;
	char *m_out; /* one request at a time: others wait until it is NULL */
	size_t m_len;
	int *m_res; /* where the requester wants the result */
};

struct lcr_node {
	struct lcr_node_config cfg;
	char *data_dir;
	uint32_t n_lcores;
	struct lcore *lcores;
	_Atomic bool stop;
};

void lcr_node_config_default(struct lcr_node_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->lcores = 1;
	cfg->bind_host = "0.0.0.0";
	cfg->mtu = 1500;
	cfg->durability = LCR_DURABILITY_FSYNC;
	cfg->io_mode = LCR_IO_DIRECT_DSYNC;
	cfg->segment_bytes = 64ull << 20;
	lcr_core_config_default(&cfg->core, 1);
}

static struct lcore *lcore_of(struct lcr_node *n, uint32_t group)
{
	return &n->lcores[group % n->n_lcores];
}

uint32_t lcr_group_lcore(const struct lcr_node *n, uint32_t group)
{
	return group % n->n_lcores;
}

uint32_t lcr_group_id(const struct lcr_group *g)
{
	return g->id;
}

void lcr_group_status(const struct lcr_group *g, struct lcr_core_status *st)
{
	lcr_core_status(g->core, st);
}

/* ---- transmit --------------------------------------------------------------- */

/*
 * The transport asks for the entries of an AppendEntries right before it
 * sends it: from our log (the arena cache, or the disk for a lagging
 * follower). They stay valid until the next one; the transport encodes them
 * during its op.
 */
static void net_attach(void *ctx, struct lcr_msg *m)
{
	struct lcr_group *g = ctx;
	struct lcore *lc = g->lc;
	uint32_t n = m->append_req.n_entries, cold = 0;
	size_t bytes = 0;

	if (n > lc->ents_max)
		n = lc->ents_max;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t idx = m->append_req.prev.index + 1 + i;
		if (lcr_log_get(g->log, idx, &lc->ents[i]) != 0) {
			int rc = lcr_log_read(g->log, idx, &lc->ents[i], lc->cold + cold,
					      COLD_BYTES - cold);
			if (rc < 0) {
				/* Cannot fetch it now (or the cold buffer is full):
				 * send what we have; the follower acks less and the
				 * pipeline catches up from there. */
				n = i;
				break;
			}
			cold += (uint32_t)rc;
		}
		/* One request must fit one message of the transport: the core
		 * counts entries, not bytes (big entries, a long backlog). The
		 * first always goes: an entry is at most 1 MiB. */
		bytes += (size_t)lc->ents[i].len + APPEND_ENTRY_OVERHEAD;
		if (i > 0 && bytes > APPEND_BYTES_MAX) {
			n = i;
			break;
		}
	}
	m->append_req.n_entries = n;
	m->append_req.entries = lc->ents;
}

/* ---- executing the core's commands ------------------------------------------ */

static bool apply_some(struct lcr_group *g, struct lcr_log_id *upto);
static void metrics_render(struct lcore *lc);
static void wake(struct lcore *lc);
static void reads_ready(struct lcr_group *g, uint64_t upto);
static void answer_waits(struct lcr_group *g, int err);
static void reads_failed(struct lcr_group *g, uint64_t first, uint64_t last, int err);

static void step(struct lcr_group *g, struct lcr_event *ev);

static void run_cmds(struct lcr_group *g)
{
	uint32_t n;
	const struct lcr_cmd *cmds = lcr_core_commands(g->core, &n);
	bool applied = false;
	struct lcr_log_id applied_to = { { 0, 0 }, 0 };
	int fail = 0;

	g->busy++;
	for (uint32_t i = 0; i < n; i++) {
		const struct lcr_cmd *c = &cmds[i];
		switch (c->type) {
		case LCR_CMD_SAVE_VOTE:
		case LCR_CMD_APPEND:
		case LCR_CMD_TRUNCATE: {
			int rc = fail ? 0 : lcr_log_exec(g->log, c);
			if (rc < 0 && !fail)
				fail = rc;
			break;
		}
		case LCR_CMD_SEND:
			lcr_net_send(g->ng, &c->send, g->lc->now);
			break;
		case LCR_CMD_APPLY:
			/* Ranges come in order, each right after the last. */
			if (g->apply_to.index <= g->applied_id.index)
				g->applied_id = c->apply.first;
			g->apply_to = c->apply.last;
			applied = apply_some(g, &applied_to);
			break;
		case LCR_CMD_READS_READY:
			reads_ready(g, c->reads_ready.read_id);
			break;
		case LCR_CMD_READS_FAILED:
			reads_failed(g, c->reads_failed.first, c->reads_failed.last,
				     c->reads_failed.err);
			break;
		case LCR_CMD_ROLE:
			g->role = c->role.role;
			g->leader = c->role.leader;
			/* AppendEntries still waiting were that leadership's. */
			if (g->role != LCR_ROLE_LEADER)
				lcr_net_cancel(g->ng);
			/* Stopped for good (a storage error): nothing waiting will
			 * be applied here. */
			if (g->role == LCR_ROLE_STOPPED)
				answer_waits(g, -LCR_ESTOPPED);
			if (g->ops.role)
				g->ops.role(g->sm, g->role, g->leader);
			break;
		}
	}
	g->busy--;
	g->next_timer = lcr_core_next_timer(g->core);
	/* Events that follow from these commands; each step runs its own. */
	if (fail) {
		fprintf(stderr,
			"lcraft: group %u: storage refused a command: %s; the replica stops\n",
			g->id, lcr_strerror(fail));
		struct lcr_event ev = { .type = LCR_EV_IO_FAILED, .io_error = fail };
		step(g, &ev);
		return;
	}
	if (applied) {
		struct lcr_event ev = { .type = LCR_EV_APPLIED, .applied = applied_to };
		step(g, &ev);
	}
}

static void step(struct lcr_group *g, struct lcr_event *ev)
{
	ev->now_ns = g->lc->now;
	lcr_core_step(g->core, ev);
	run_cmds(g);
}

static struct pending *wait_head(struct lcr_group *g)
{
	return g->wait_len ? &g->wait[g->wait_head] : NULL;
}

static void wait_pop(struct lcr_group *g)
{
	g->wait_head = (g->wait_head + 1) % PENDING_MAX;
	g->wait_len--;
}

/* Every proposal waiting for its apply gets `err` (the replica stopped). */
static void answer_waits(struct lcr_group *g, int err)
{
	g->busy++;
	while (g->wait_len) {
		struct pending w = g->wait[g->wait_head];
		wait_pop(g);
		w.done(w.ctx, err, 0, NULL, 0);
	}
	g->busy--;
}

/*
 * Apply committed entries, at most APPLY_BUDGET in one go so that a long
 * backlog (a restart replays the whole log) never holds the loop past a
 * heartbeat: the rest follows in the next iterations (apply_pending). True
 * if it applied any; *upto is then the last one applied.
 */
static bool apply_some(struct lcr_group *g, struct lcr_log_id *upto)
{
	struct lcore *lc = g->lc;
	uint64_t first = g->applied_id.index + 1, last = g->apply_to.index;

	if (g->apply_broken)
		return false;
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
		g->applied++;
		/* Answer our own proposals: the same log id, or it was replaced. */
		struct pending *p;
		while ((p = wait_head(g)) && p->id.index <= idx) {
			struct pending w = *p;
			wait_pop(g);
			if (w.id.index == idx && lcr_log_id_eq(w.id, e.id)) {
				lcr_hist_add(&g->commit_lat, lc->now - w.at_ns);
				w.done(w.ctx, 0, 0, g->result, rlen);
			} else {
				g->cancelled++;
				w.done(w.ctx, -ECANCELED, g->leader, NULL, 0);
			}
		}
		g->applied_id = e.id;
	}
	*upto = g->applied_id;
	return upto->index >= first;
}

/* Go on with a backlog apply_some() left. True if it did anything. */
static bool apply_pending(struct lcr_group *g)
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
	step(g, &ev);
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
	struct lcr_event ev = { .type = LCR_EV_MSG, .msg = m };
	step(ctx, &ev);
}

/*
 * A call failed. An AppendEntries error ends that stream: the core backs the
 * follower off (UNREACHABLE, REMOTE at once; TIMEOUT, NETWORK when they
 * pile up) and opens a new stream. The core has no use for the other
 * errors: a candidate waits for its next election timeout, a transfer for
 * the leader lease to run out (openraft logs them too).
 */
static void net_failed(void *ctx, const struct lcr_net_call *call, uint32_t err, const char *why)
{
	struct lcr_group *g = ctx;
	(void)why;

	g->net_errors++;
	if (call->op != LCR_NET_OP_APPEND && call->op != LCR_NET_OP_STREAM_APPEND)
		return;
	struct lcr_event ev = { .type = LCR_EV_NET_ERROR };
	ev.net.target = call->target;
	ev.net.stream_id = call->stream_id;
	ev.net.err = err;
	step(g, &ev);
}

static struct lcr_group *group_of(struct lcore *lc, uint32_t id)
{
	for (uint32_t i = 0; i < lc->n_groups; i++)
		if (lc->groups[i]->id == id)
			return lc->groups[i];
	return NULL;
}

/* ---- storage completions ------------------------------------------------------ */

static void on_log_done(void *ctx, const struct lcr_io_id *io, int err)
{
	struct lcr_group *g = ctx;
	if (err) {
		g->io_err = err;
		return;
	}
	g->flushed = *io;
	g->flush_new = true;
}

static bool storage_progress(struct lcore *lc)
{
	bool work = false;

	for (uint32_t i = 0; i < lc->n_groups; i++)
		lcr_log_flush(lc->groups[i]->log);
	lcr_ring_submit(&lc->ring);
	/* Clear the eventfd before reaping: a completion after the reap sets it
	 * again and wakes us; clearing after the reap could sleep past one. */
	lcr_ring_eventfd_clear(&lc->ring);
	if (lcr_ring_reap(&lc->ring))
		work = true;
	for (uint32_t i = 0; i < lc->n_groups; i++) {
		struct lcr_group *g = lc->groups[i];
		if (g->io_err) {
			int err = g->io_err;
			g->io_err = 0;
			struct lcr_event ev = { .type = LCR_EV_IO_FAILED, .io_error = err };
			step(g, &ev);
			work = true;
		}
		if (g->flush_new) {
			g->flush_new = false;
			g->flushes++;
			struct lcr_event ev = { .type = LCR_EV_IO_FLUSHED, .io = g->flushed };
			step(g, &ev);
			work = true;
		}
	}
	return work;
}

/* ---- proposals and reads -------------------------------------------------------- */

int lcr_propose(struct lcr_group *g, const void *data, uint32_t len, lcr_propose_fn done, void *ctx)
{
	if (len > (1u << 20) || !done)
		return -EINVAL;
	if (g->pn == PROPOSE_MAX || g->pbytes + len > PROPOSE_BYTES ||
	    g->wait_len + g->pn >= PENDING_MAX)
		return -LCR_EFULL;
	memcpy(g->pbuf + g->pbytes, data, len);
	struct lcr_entry *e = &g->pe[g->pn];
	memset(e, 0, sizeof(*e));
	e->type = LCR_ENTRY_NORMAL;
	e->len = len;
	e->data = g->pbuf + g->pbytes;
	g->pp[g->pn].done = done;
	g->pp[g->pn].ctx = ctx;
	g->pp[g->pn].at_ns = g->lc->now;
	g->pbytes += len;
	g->pn++;
	return 0;
}

/*
 * The first n proposals went to the core (or were refused): drop them, and
 * keep those their callbacks made meanwhile (lcr_propose appends after
 * them, so the batch the core was given stays intact while it runs).
 */
static void proposals_consumed(struct lcr_group *g, uint32_t n)
{
	uint32_t keep = g->pn - n;

	if (keep == 0) {
		g->pn = g->pbytes = 0;
		return;
	}
	size_t shift = (size_t)((const uint8_t *)g->pe[n].data - g->pbuf);
	memmove(g->pbuf, g->pbuf + shift, g->pbytes - shift);
	memmove(g->pe, g->pe + n, keep * sizeof(*g->pe));
	memmove(g->pp, g->pp + n, keep * sizeof(*g->pp));
	for (uint32_t i = 0; i < keep; i++)
		g->pe[i].data = (const uint8_t *)g->pe[i].data - shift;
	g->pn = keep;
	g->pbytes -= (uint32_t)shift;
}

/* Refuse the first n proposals with err. */
static void proposals_refuse(struct lcr_group *g, uint32_t n, int err, uint32_t leader)
{
	g->busy++;
	for (uint32_t i = 0; i < n; i++)
		g->pp[i].done(g->pp[i].ctx, err, leader, NULL, 0);
	g->busy--;
	g->refused += n;
	proposals_consumed(g, n);
}

/*
 * A proposal waits for its apply in index order. A new leadership after a
 * truncation can hand out indexes below proposals of an earlier one still
 * waiting (they may yet commit through another node, or be replaced): the
 * new one goes in its place, so each is answered when its index applies.
 */
static void wait_push(struct lcr_group *g, const struct pending *p)
{
	uint32_t pos = g->wait_len;

	while (pos > 0 && g->wait[(g->wait_head + pos - 1) % PENDING_MAX].id.index > p->id.index) {
		g->wait[(g->wait_head + pos) % PENDING_MAX] =
			g->wait[(g->wait_head + pos - 1) % PENDING_MAX];
		pos--;
	}
	g->wait[(g->wait_head + pos) % PENDING_MAX] = *p;
	g->wait_len++;
}

/* The proposals of this iteration go to the core together. */
static bool propose_batch(struct lcr_group *g)
{
	uint32_t n = g->pn;

	if (n == 0)
		return false;
	/* The log must be able to take them: refuse now rather than fail later. */
	if (lcr_log_space(g->log) < (uint64_t)g->pbytes + (uint64_t)n * 64 + (8u << 20)) {
		proposals_refuse(g, n, -LCR_EFULL, g->leader);
		return true;
	}
	int rc = lcr_core_propose(g->core, g->lc->now, g->pe, n);
	if (rc < 0) {
		struct lcr_core_status st;
		lcr_core_status(g->core, &st);
		proposals_refuse(g, n, rc, st.leader);
		return true;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct pending w = g->pp[i];
		w.id = g->pe[i].id;
		wait_push(g, &w);
	}
	g->proposed += n;
	run_cmds(g);
	proposals_consumed(g, n);
	return true;
}

static int defer(struct lcr_group *g, const struct deferred *d)
{
	if (g->def_len == DEFERRED_MAX)
		return -LCR_EFULL;
	g->deferred[(g->def_head + g->def_len) % DEFERRED_MAX] = *d;
	g->def_len++;
	return 0;
}

int lcr_read(struct lcr_group *g, uint32_t policy, lcr_read_fn done, void *ctx)
{
	uint64_t id;

	if (!done)
		return -EINVAL;
	if (g->busy) {
		/* From a callback: next iteration (done then says how it went). */
		struct deferred d = { .is_read = true, .policy = policy, .done = done, .ctx = ctx };
		return defer(g, &d);
	}
	if (g->reads_len == READS_WAIT_MAX)
		return -LCR_EFULL;
	int rc = lcr_core_read(g->core, g->lc->now, policy, &id);
	if (rc < 0) {
		run_cmds(g);
		return rc;
	}
	struct waiting_read *r = &g->reads[(g->reads_head + g->reads_len) % READS_WAIT_MAX];
	r->read_id = id;
	r->done = done;
	r->ctx = ctx;
	g->reads_len++;
	run_cmds(g);
	return 0;
}

int lcr_group_event(struct lcr_group *g, const struct lcr_event *ev)
{
	struct lcr_event e = *ev;
	if (e.type == LCR_EV_MSG || e.type == LCR_EV_IO_FLUSHED || e.type == LCR_EV_IO_FAILED ||
	    e.type == LCR_EV_APPLIED)
		return -EINVAL; /* the runtime's own */
	if (g->busy) {
		struct deferred d = { .is_read = false, .ev = e };
		return defer(g, &d);
	}
	step(g, &e);
	return 0;
}

/* API calls that callbacks made during the last iteration, in order. */
static bool run_deferred(struct lcr_group *g)
{
	uint32_t n = g->def_len; /* not those they make now: next time */

	for (uint32_t i = 0; i < n; i++) {
		struct deferred d = g->deferred[g->def_head];
		g->def_head = (g->def_head + 1) % DEFERRED_MAX;
		g->def_len--;
		if (!d.is_read) {
			step(g, &d.ev);
			continue;
		}
		int rc = lcr_read(g, d.policy, d.done, d.ctx);
		if (rc < 0) {
			g->busy++;
			d.done(d.ctx, rc, g->leader);
			g->busy--;
		}
	}
	return n > 0;
}

/* ---- timers --------------------------------------------------------------------- */

static bool timers(struct lcore *lc)
{
	bool work = false;

	for (uint32_t i = 0; i < lc->n_groups; i++) {
		struct lcr_group *g = lc->groups[i];
		if (lc->now >= g->next_timer) {
			struct lcr_event ev = { .type = LCR_EV_TICK };
			step(g, &ev);
			work = true;
		}
	}
	/* Calls past their TTL and the transport's own timers (a stream that
	 * got no answer for a long time ends with UNREACHABLE). */
	work |= lcr_net_tick(lc->net, lc->now);
	return work;
}

static uint64_t next_deadline(struct lcore *lc)
{
	uint64_t t = lcr_net_next_timer(lc->net);

	for (uint32_t i = 0; i < lc->n_groups; i++) {
		struct lcr_group *g = lc->groups[i];
		if (g->next_timer < t)
			t = g->next_timer;
	}
	return t;
}

/* ---- posted tasks (a bounded MPMC ring, Vyukov's) -------------------------------- */

/*
 * Wake lcore `lc` if it sleeps (or is about to: it sets `sleeping`, then
 * looks for work once more, then sleeps; we publish the work, then look at
 * `sleeping`; the fences order both, so one of us sees the other).
 */
static void wake(struct lcore *lc)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&lc->sleeping, memory_order_relaxed) && lc->efd >= 0) {
		uint64_t one = 1;
		ssize_t rc = write(lc->efd, &one, sizeof(one));
		(void)rc; /* the counter is full: it is readable, so it wakes anyway */
	}
}

static bool posts_waiting(struct lcore *lc)
{
	uint64_t pos = atomic_load_explicit(&lc->post_deq, memory_order_relaxed);
	uint64_t seq = atomic_load_explicit(&lc->posts[pos % POST_MAX].seq, memory_order_acquire);
	return (int64_t)seq - (int64_t)(pos + 1) >= 0;
}

int lcr_node_post(struct lcr_node *n, uint32_t lcore, lcr_task_fn fn, void *arg)
{
	if (lcore >= n->n_lcores)
		return -EINVAL;
	struct lcore *lc = &n->lcores[lcore];
	uint64_t pos = atomic_load_explicit(&lc->post_enq, memory_order_relaxed);
	for (;;) {
		struct post *p = &lc->posts[pos % POST_MAX];
		uint64_t seq = atomic_load_explicit(&p->seq, memory_order_acquire);
		int64_t dif = (int64_t)seq - (int64_t)pos;
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&lc->post_enq, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed)) {
				p->fn = fn;
				p->arg = arg;
				atomic_store_explicit(&p->seq, pos + 1, memory_order_release);
				wake(lc);
				return 0;
			}
		} else if (dif < 0) {
			return -LCR_EFULL;
		} else {
			pos = atomic_load_explicit(&lc->post_enq, memory_order_relaxed);
		}
	}
}

static bool run_posts(struct lcore *lc)
{
	bool work = false;
	for (;;) {
		uint64_t pos = atomic_load_explicit(&lc->post_deq, memory_order_relaxed);
		struct post *p = &lc->posts[pos % POST_MAX];
		uint64_t seq = atomic_load_explicit(&p->seq, memory_order_acquire);
		if ((int64_t)seq - (int64_t)(pos + 1) < 0)
			return work;
		atomic_store_explicit(&lc->post_deq, pos + 1, memory_order_relaxed);
		lcr_task_fn fn = p->fn;
		void *arg = p->arg;
		atomic_store_explicit(&p->seq, pos + POST_MAX, memory_order_release);
		fn(lc->node, arg);
		work = true;
	}
}

/* ---- the loop ------------------------------------------------------------------- */

static bool iteration(struct lcore *lc)
{
	bool work = false;

	lc->now = now_ns();
	lc->iterations++;
	work |= lcr_net_poll(lc->net, lc->now);
	work |= run_posts(lc);
	if (lc->poll)
		work |= lc->poll(lc->node, lc->index, lc->poll_ctx, lc->now);
	work |= timers(lc);
	for (uint32_t i = 0; i < lc->n_groups; i++) {
		work |= run_deferred(lc->groups[i]);
		work |= propose_batch(lc->groups[i]);
		work |= apply_pending(lc->groups[i]);
	}
	/* Datagrams first: the followers' disk writes are the long pole of a
	 * commit, so they should start before we spend time on our own submit;
	 * then what the completions made (acks of flushed entries) goes out. */
	work |= lcr_net_flush(lc->net, lc->now);
	work |= storage_progress(lc);
	work |= lcr_net_flush(lc->net, lc->now);
	if (atomic_load_explicit(&lc->m_want, memory_order_acquire))
		metrics_render(lc);
	return work;
}

static void *lcore_main(void *arg)
{
	struct lcore *lc = arg;
	struct lcr_node *n = lc->node;

	/* Sleeping waits on the transport (its sockets) and on this set:
	 * storage completions and the application's own fd. */
	lc->self = pthread_self();
	atomic_store(&lc->looping, true);
	lc->epfd = epoll_create1(EPOLL_CLOEXEC);
	int fds[2] = { lc->efd, lc->poll_fd };
	for (int i = 0; i < 2 && lc->epfd >= 0; i++) {
		if (fds[i] < 0)
			continue;
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
		epoll_ctl(lc->epfd, EPOLL_CTL_ADD, fds[i], &ev);
	}

	while (!atomic_load_explicit(&n->stop, memory_order_relaxed)) {
		if (iteration(lc)) {
			lc->last_work = lc->now;
			continue;
		}
		if (n->cfg.busy_poll)
			continue;
		/* While our own disk writes are in flight their completion is
		 * near: waiting for it awake saves a wake-up on the commit path. */
		uint64_t spin = (uint64_t)n->cfg.idle_spin_us * 1000;
		if (lc->ring.in_flight && n->cfg.io_spin_us > n->cfg.idle_spin_us)
			spin = (uint64_t)n->cfg.io_spin_us * 1000;
		if (lc->now - lc->last_work < spin) {
			/* Poll on, but let a runnable thread have the CPU first:
			 * on a machine with fewer cores than busy threads the
			 * spinning must not starve the one with work. */
			sched_yield();
			continue;
		}
		/* Nothing to do: sleep until a datagram, a completion, the
		 * application's fd or the next timer (socket mode). */
		uint64_t dl = next_deadline(lc), t = now_ns();
		uint64_t wait = dl > t ? dl - t : 0;
		if (wait > 100ull * 1000 * 1000)
			wait = 100ull * 1000 * 1000; /* notice lcr_node_stop() */
		if (wait == 0)
			continue; /* a timer is due, or the transport has datagrams queued */
		atomic_store_explicit(&lc->sleeping, true, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		if (posts_waiting(lc) || atomic_load_explicit(&lc->m_want, memory_order_relaxed) ||
		    atomic_load_explicit(&n->stop, memory_order_relaxed)) {
			atomic_store_explicit(&lc->sleeping, false, memory_order_relaxed);
			continue;
		}
		lc->sleeps++;
		lcr_net_wait(lc->net, lc->epfd, wait);
		atomic_store_explicit(&lc->sleeping, false, memory_order_relaxed);
	}
	/* Whoever still waits for our metrics stops waiting. */
	pthread_mutex_lock(&lc->m_mu);
	atomic_store(&lc->looping, false);
	pthread_cond_broadcast(&lc->m_cv);
	pthread_mutex_unlock(&lc->m_mu);
	if (lc->epfd >= 0)
		close(lc->epfd);
	lc->epfd = -1;
	return NULL;
}

/* ---- node and groups ------------------------------------------------------------ */

static void *node_alloc(struct lcr_node *n, size_t size)
{
	void *p = n->cfg.alloc.alloc ? n->cfg.alloc.alloc(n->cfg.alloc.ctx, size) : malloc(size);
	if (p)
		memset(p, 0, size);
	return p;
}

static void node_free(struct lcr_node *n, void *p)
{
	if (!p)
		return;
	if (n->cfg.alloc.free)
		n->cfg.alloc.free(n->cfg.alloc.ctx, p);
	else
		free(p);
}

static const struct lcr_peer_addr *peer_addr(const struct lcr_node_config *c, uint32_t id)
{
	for (uint32_t i = 0; i < c->n_peers; i++)
		if (c->peers[i].id == id)
			return &c->peers[i];
	return NULL;
}

static int check_config(const struct lcr_node_config *c, char *why, size_t len)
{
	if (c->id == 0 || !peer_addr(c, c->id)) {
		snprintf(why, len, "node id %u is not among the %u peers", c->id, c->n_peers);
		return -EINVAL;
	}
	if (c->lcores < 1 || c->lcores > 64) {
		snprintf(why, len, "lcores (%u) must be in 1..64", c->lcores);
		return -EINVAL;
	}
	if (!c->data_dir || !*c->data_dir) {
		snprintf(why, len, "data_dir is required");
		return -EINVAL;
	}
	if (c->n_peers < 1 || c->n_peers > LCR_PEERS_MAX) {
		snprintf(why, len, "%u peers (1..%d)", c->n_peers, LCR_PEERS_MAX);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < c->n_peers; i++) {
		if (c->peers[i].id == 0) {
			snprintf(why, len, "peer %u has id 0 (reserved)", i + 1);
			return -EINVAL;
		}
		for (uint32_t k = 0; k < i; k++)
			if (c->peers[k].id == c->peers[i].id) {
				snprintf(why, len, "node %u is listed twice", c->peers[i].id);
				return -EINVAL;
			}
		if ((uint32_t)c->peers[i].port + c->lcores > 65536) {
			snprintf(why, len, "node %u: port %u + %u lcores is past 65535",
				 c->peers[i].id, c->peers[i].port, c->lcores);
			return -EINVAL;
		}
	}
	return 0;
}

static const struct lcr_net_host net_host = {
	.deliver = net_deliver,
	.failed = net_failed,
	.attach = net_attach,
};

static int lcore_open(struct lcr_node *n, uint32_t index, char *why, size_t why_len)
{
	struct lcore *lc = &n->lcores[index];
	const struct lcr_node_config *c = &n->cfg;
	int rc;

	lc->index = index;
	lc->node = n;
	pthread_mutex_init(&lc->m_mu, NULL);
	pthread_cond_init(&lc->m_cv, NULL);
	lc->poll_fd = -1;
	lc->efd = -1;
	lc->epfd = -1;
	lc->ents_max = 65536;
	lc->ents = node_alloc(n, sizeof(*lc->ents) * lc->ents_max);
	lc->cold = node_alloc(n, COLD_BYTES);
	lc->posts = node_alloc(n, sizeof(*lc->posts) * POST_MAX);
	if (!lc->ents || !lc->cold || !lc->posts) {
		snprintf(why, why_len, "lcore %u: out of memory", index);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < POST_MAX; i++)
		atomic_store(&lc->posts[i].seq, i);
	if ((rc = lcr_ring_init(&lc->ring, 512)) < 0) {
		snprintf(why, why_len, "lcore %u: io_uring: %s", index, strerror(-rc));
		return rc;
	}
	lc->efd = lcr_ring_eventfd(&lc->ring);

	/* The transport of this lcore: the application's, or UDP. */
	struct lcr_net_env env = { .self = c->id,
				   .cluster = c->cluster,
				   .lcore = index,
				   .n_lcores = n->n_lcores,
				   .node = c,
				   .alloc = { c->alloc.alloc, c->alloc.free, c->alloc.ctx } };
	struct lcr_net_config nc;
	lcr_net_config_default(&nc, &c->core);
	nc.self = c->id;
	nc.groups_max = GROUPS_MAX;
	nc.alloc = env.alloc;
	const struct lcr_net_factory *f = c->transport ? c->transport : lcr_net_udp_factory();
	return lcr_net_open(&lc->net, f, &env, &nc, &net_host, why, why_len);
}

/* Create `dir` and its missing parents (mkdir -p). */
static int mkdir_p(const char *dir, char *why, size_t why_len)
{
	char path[4096];
	if (!dir || !*dir || strlen(dir) >= sizeof(path)) {
		snprintf(why, why_len, "data_dir: %s", dir && *dir ? "too long" : "empty");
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != 0)
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			snprintf(why, why_len, "data_dir: cannot create %.3000s: %s", path,
				 strerror(errno));
			return -errno;
		}
		*p = c;
		if (c == 0)
			return 0;
	}
}

int lcr_node_open(struct lcr_node **out, const struct lcr_node_config *cfg, char *why,
		  size_t why_len)
{
	int rc = check_config(cfg, why, why_len);
	if (rc < 0)
		return rc;
	struct lcr_node *n = cfg->alloc.alloc ? cfg->alloc.alloc(cfg->alloc.ctx, sizeof(*n))
					      : malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	memset(n, 0, sizeof(*n));
	n->cfg = *cfg;
	n->n_lcores = cfg->lcores;
	n->data_dir = strdup(cfg->data_dir);
	n->cfg.data_dir = n->data_dir;
	rc = mkdir_p(cfg->data_dir, why, why_len);
	if (rc < 0)
		goto fail;
	n->lcores = node_alloc(n, sizeof(*n->lcores) * n->n_lcores);
	if (!n->lcores) {
		rc = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < n->n_lcores; i++)
		if ((rc = lcore_open(n, i, why, why_len)) < 0)
			goto fail;
	*out = n;
	return 0;
fail:
	lcr_node_close(n);
	return rc;
}

/* The core's backoff hook: the transport's intervals for this group. */
static uint64_t group_backoff_ns(void *ctx, uint32_t target, uint32_t step)
{
	struct lcr_group *g = ctx;
	return lcr_net_backoff_ns(g->ng, target, step);
}

/* Close what a group opened (its log first: writes in flight finish) and
 * free it; for a group half-opened too. */
static void group_free(struct lcr_node *n, struct lcr_group *g)
{
	if (g->log)
		lcr_log_close(g->log);
	lcr_core_free(g->core);
	if (g->ng)
		lcr_net_group_close(g->ng);
	node_free(n, g->pe);
	node_free(n, g->pp);
	node_free(n, g->pbuf);
	node_free(n, g->wait);
	node_free(n, g->reads);
	node_free(n, g->deferred);
	node_free(n, g);
}

int lcr_group_open(struct lcr_node *n, uint32_t id, const struct lcr_sm_ops *ops, void *sm,
		   struct lcr_group **out, char *why, size_t why_len)
{
	struct lcore *lc = lcore_of(n, id);
	const struct lcr_node_config *c = &n->cfg;
	char dir[4096];
	int rc;

	if (lc->n_groups == GROUPS_MAX) {
		snprintf(why, why_len, "lcore %u already runs %d groups", lc->index, GROUPS_MAX);
		return -ENOSPC;
	}
	if (group_of(lc, id)) {
		snprintf(why, why_len, "group %u is already open", id);
		return -EEXIST;
	}
	struct lcr_group *g = node_alloc(n, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->id = id;
	g->node = n;
	g->lc = lc;
	g->ops = *ops;
	g->sm = sm;
	g->pe = node_alloc(n, sizeof(*g->pe) * PROPOSE_MAX);
	g->pp = node_alloc(n, sizeof(*g->pp) * PROPOSE_MAX);
	g->pbuf = node_alloc(n, PROPOSE_BYTES);
	g->wait = node_alloc(n, sizeof(*g->wait) * PENDING_MAX);
	g->reads = node_alloc(n, sizeof(*g->reads) * READS_WAIT_MAX);
	g->deferred = node_alloc(n, sizeof(*g->deferred) * DEFERRED_MAX);
	if (!g->pe || !g->pp || !g->pbuf || !g->wait || !g->reads || !g->deferred) {
		rc = -ENOMEM;
		goto fail;
	}
	snprintf(dir, sizeof(dir), "%s/group-%u", c->data_dir, id);
	struct lcr_log_opts lo;
	lcr_log_opts_default(&lo, dir);
	lo.group = id;
	lo.durability = c->durability;
	lo.io_mode = c->io_mode;
	lo.segment_bytes = c->segment_bytes;
	lo.done = on_log_done;
	lo.ctx = g;
	if ((rc = lcr_log_open(&g->log, &lc->ring, &lo, why, why_len)) < 0)
		goto fail;
	/* Its peers in the transport: every node but this one. */
	uint32_t targets[LCR_PEERS_MAX], n_targets = 0;
	for (uint32_t i = 0; i < c->n_peers; i++)
		if (c->peers[i].id != c->id)
			targets[n_targets++] = c->peers[i].id;
	if ((rc = lcr_net_group_open(lc->net, id, g, targets, n_targets, &g->ng, why, why_len)) < 0)
		goto fail;

	/* The core: Raft options from the config, voters = the peers. */
	struct lcr_core_config cc = c->core;
	cc.id = c->id;
	cc.membership.n_configs = 1;
	cc.membership.configs[0].n = c->n_peers;
	for (uint32_t i = 0; i < c->n_peers; i++)
		cc.membership.configs[0].ids[i] = c->peers[i].id;
	cc.membership.n_learners = 0;
	cc.seed = c->core.seed ^ ((uint64_t)c->id << 20) ^ id ^ now_ns();
	/* A transport with its own backoff sets the intervals (RaftNetworkV2). */
	if (lcr_net_has_backoff(lc->net)) {
		cc.backoff_ns = group_backoff_ns;
		cc.backoff_ctx = g;
	}
	if (lcr_core_config_validate(&cc, why, why_len) < 0) {
		rc = -EINVAL;
		goto fail;
	}
	struct lcr_core_restore rs;
	lcr_log_restore(g->log, &rs);
	g->core = lcr_core_new(&cc, &rs, &rc);
	if (!g->core) {
		snprintf(why, why_len, "group %u: %s", id, lcr_strerror(rc));
		goto fail;
	}
	struct lcr_log_id last = lcr_log_last(g->log);
	for (uint64_t i = lcr_log_first_index(g->log); i <= last.index; i++) {
		struct lcr_log_id lid;
		if (!lcr_log_id_at(g->log, i, &lid) ||
		    (rc = lcr_core_load_log_id(g->core, lid)) < 0) {
			snprintf(why, why_len, "group %u: the log at index %llu does not load (%s)",
				 id, (unsigned long long)i,
				 rc == -ENOSPC ? "more leader changes than "
						 "leader_runs_max"
					       : "inconsistent");
			rc = rc < 0 ? rc : -EINVAL;
			goto fail;
		}
	}
	lc->groups[lc->n_groups++] = g;
	lc->now = now_ns();
	lcr_core_start(g->core, lc->now);
	run_cmds(g);
	*out = g;
	return 0;
fail:
	group_free(n, g);
	return rc;
}

int lcr_node_set_poll(struct lcr_node *n, uint32_t lcore, lcr_poll_fn poll, int fd, void *ctx)
{
	if (lcore >= n->n_lcores)
		return -EINVAL;
	n->lcores[lcore].poll = poll;
	n->lcores[lcore].poll_ctx = ctx;
	n->lcores[lcore].poll_fd = fd;
	return 0;
}

int lcr_node_run(struct lcr_node *n)
{
	for (uint32_t i = 1; i < n->n_lcores; i++)
		if (pthread_create(&n->lcores[i].thread, NULL, lcore_main, &n->lcores[i]) != 0) {
			atomic_store(&n->stop, true);
			for (uint32_t k = 1; k < i; k++)
				pthread_join(n->lcores[k].thread, NULL);
			return -EAGAIN;
		}
	lcore_main(&n->lcores[0]);
	for (uint32_t i = 1; i < n->n_lcores; i++)
		pthread_join(n->lcores[i].thread, NULL);
	return 0;
}

void lcr_node_stop(struct lcr_node *n)
{
	atomic_store(&n->stop, true);
	/* Sleeping lcores notice at once (write() is async-signal-safe). */
	for (uint32_t i = 0; i < n->n_lcores; i++)
		wake(&n->lcores[i]);
}

static void group_close(struct lcr_node *n, struct lcr_group *g)
{
	/* Whoever waits hears that the replica stopped (documented in lcraft.h:
	 * these callbacks run here, on the thread closing the node). */
	g->busy++; /* calls from these callbacks are deferred, and dropped with the group */
	for (uint32_t i = 0; i < g->pn; i++)
		g->pp[i].done(g->pp[i].ctx, -LCR_ESTOPPED, 0, NULL, 0);
	g->pn = 0;
	answer_waits(g, -LCR_ESTOPPED);
	while (g->def_len) {
		struct deferred d = g->deferred[g->def_head];
		g->def_head = (g->def_head + 1) % DEFERRED_MAX;
		g->def_len--;
		if (d.is_read)
			d.done(d.ctx, -LCR_ESTOPPED, 0);
	}
	while (g->reads_len) {
		struct waiting_read r = g->reads[g->reads_head];
		g->reads_head = (g->reads_head + 1) % READS_WAIT_MAX;
		g->reads_len--;
		r.done(r.ctx, -LCR_ESTOPPED, 0);
	}
	group_free(n, g);
}

void lcr_node_close(struct lcr_node *n)
{
	if (!n)
		return;
	for (uint32_t i = 0; n->lcores && i < n->n_lcores; i++) {
		struct lcore *lc = &n->lcores[i];
		/* Writes in flight finish before their buffers go. */
		for (uint32_t k = 0; k < lc->n_groups; k++)
			group_close(n, lc->groups[k]);
		lcr_net_close(lc->net);
		if (lc->ring.depth)
			lcr_ring_exit(&lc->ring);
		node_free(n, lc->ents);
		node_free(n, lc->cold);
		node_free(n, lc->posts);
		if (lc->node) {
			pthread_mutex_destroy(&lc->m_mu);
			pthread_cond_destroy(&lc->m_cv);
		}
	}
	node_free(n, n->lcores);
	free(n->data_dir);
	struct lcr_node_alloc a = n->cfg.alloc;
	if (a.free)
		a.free(a.ctx, n);
	else
		free(n);
}

/* ---- metrics ---------------------------------------------------------------------- */

static const char *role_name(uint32_t r)
{
	static const char *names[] = { "none",	 "follower", "candidate",
				       "leader", "learner",  "stopped" };
	return r <= 5 ? names[r] : "unknown";
}

#define PUT(...)                                                                                   \
	do {                                                                                       \
		int k_ = snprintf(buf + o, len > o ? len - o : 0, __VA_ARGS__);                    \
		if (k_ < 0)                                                                        \
			return -EINVAL;                                                            \
		o += (size_t)k_;                                                                   \
	} while (0)

static int hist_json(char *buf, size_t len, const char *name, const struct lcr_hist *h)
{
	size_t o = 0;
	PUT("\"%s\":{\"count\":%llu,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
	    "\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f}",
	    name, (unsigned long long)h->count, (double)lcr_hist_pct(h, 0.5) / 1000.0,
	    (double)lcr_hist_pct(h, 0.9) / 1000.0, (double)lcr_hist_pct(h, 0.99) / 1000.0,
	    (double)lcr_hist_pct(h, 0.999) / 1000.0, (double)h->max_ns / 1000.0,
	    h->count ? (double)h->sum_ns / (double)h->count / 1000.0 : 0.0);
	return (int)o;
}

int lcr_group_metrics_json(struct lcr_group *g, char *buf, size_t len)
{
	struct lcr_core_status st;
	struct lcr_log_stats ls;
	size_t o = 0;

	lcr_core_status(g->core, &st);
	lcr_log_stats(g->log, &ls);
	PUT("{\"group\":%u,\"role\":\"%s\",\"term\":%llu,\"leader\":%u,"
	    "\"last\":%llu,\"committed\":%llu,\"applied\":%llu,\"flushed\":%llu,",
	    g->id, role_name(st.role), (unsigned long long)st.vote.lid.term, st.leader,
	    (unsigned long long)st.last.index, (unsigned long long)st.committed.index,
	    (unsigned long long)st.applied.index, (unsigned long long)st.flushed.index);
	PUT("\"replication\":{");
	for (uint32_t i = 0, first = 1; st.role == LCR_ROLE_LEADER && i < st.n_nodes; i++) {
		if (st.nodes[i] == st.id)
			continue;
		PUT("%s\"%u\":{\"matching\":%llu", first ? "" : ",", st.nodes[i],
		    (unsigned long long)st.matching[i].index);
		/* The transport's view of the follower (UDP: its stream). */
		int k = lcr_net_client_metrics_json(g->ng, st.nodes[i], buf + o + 1,
						    len > o + 1 ? len - o - 1 : 0);
		if (k < 0)
			return k;
		if (k > 0) {
			if (o < len)
				buf[o] = ',';
			o += (size_t)k + 1;
		}
		PUT("}");
		first = 0;
	}
	PUT("},\"proposed\":%llu,\"applied_entries\":%llu,\"cancelled\":%llu,\"refused\":%llu,"
	    "\"elections\":%llu,\"dropped_msgs\":%llu,\"stale_msgs\":%llu,\"net_errors\":%llu,",
	    (unsigned long long)g->proposed, (unsigned long long)g->applied,
	    (unsigned long long)g->cancelled, (unsigned long long)g->refused,
	    (unsigned long long)st.elections, (unsigned long long)st.dropped_msgs,
	    (unsigned long long)st.stale_msgs, (unsigned long long)g->net_errors);
	PUT("\"storage\":{\"batches\":%llu,\"entries\":%llu,\"bytes\":%llu,\"syncs\":%llu,"
	    "\"vote_writes\":%llu,\"cache_hits\":%llu,\"cache_misses\":%llu,\"disk_reads\":%llu,"
	    "\"segments\":%llu,\"flushes_reported\":%llu,",
	    (unsigned long long)ls.batches_written, (unsigned long long)ls.entries_written,
	    (unsigned long long)ls.bytes_written, (unsigned long long)ls.syncs,
	    (unsigned long long)ls.vote_writes, (unsigned long long)ls.cache_hits,
	    (unsigned long long)ls.cache_misses, (unsigned long long)ls.disk_reads,
	    (unsigned long long)ls.segments_created, (unsigned long long)g->flushes);
	/* Each batch's write, and its fdatasync with durability fsync. */
	int k = hist_json(buf + o, len > o ? len - o : 0, "write_latency",
			  lcr_log_write_latency(g->log));
	if (k < 0)
		return k;
	o += (size_t)k;
	PUT("},");
	k = hist_json(buf + o, len > o ? len - o : 0, "commit_latency", &g->commit_lat);
	if (k < 0)
		return k;
	o += (size_t)k;
	PUT("}");
	return o < len ? (int)o : -ENOSPC;
}

/* One lcore's part: its loop, its transport, its groups. On that lcore. */
static int lcore_metrics_json(struct lcore *lc, char *buf, size_t len)
{
	size_t o = 0;

	PUT("{\"lcore\":%u,\"iterations\":%llu,\"sleeps\":%llu,", lc->index,
	    (unsigned long long)lc->iterations, (unsigned long long)lc->sleeps);
	/* The transport: net.c's counters and its own (UDP: datagrams, drops). */
	int w = lcr_net_metrics_json(lc->net, buf + o, len > o ? len - o : 0);
	if (w < 0)
		return w;
	o += (size_t)w;
	PUT(",\"groups\":[");
	for (uint32_t k = 0; k < lc->n_groups; k++) {
		if (k)
			PUT(",");
		w = lcr_group_metrics_json(lc->groups[k], buf + o, len > o ? len - o : 0);
		if (w < 0)
			return w;
		o += (size_t)w;
	}
	PUT("]}");
	return o < len ? (int)o : -ENOSPC;
}

/* Asked for by another thread (lcr_node_metrics_json): render into its buffer. */
static void metrics_render(struct lcore *lc)
{
	pthread_mutex_lock(&lc->m_mu);
	if (lc->m_out) {
		*lc->m_res = lcore_metrics_json(lc, lc->m_out, lc->m_len);
		lc->m_out = NULL;
		lc->m_res = NULL;
		pthread_cond_broadcast(&lc->m_cv);
	}
	atomic_store_explicit(&lc->m_want, false, memory_order_relaxed);
	pthread_mutex_unlock(&lc->m_mu);
}

/*
 * Another lcore's part, rendered by that lcore while we wait (at most 1 s):
 * its counters and its groups' state change only on its own thread.
 */
static int lcore_metrics_remote(struct lcore *lc, char *buf, size_t len)
{
	struct timespec dl;
	int rc = 0, res = INT_MIN;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 1;
	pthread_mutex_lock(&lc->m_mu);
	/* Another thread's request first (its buffer, its result). */
	while (lc->m_out && atomic_load(&lc->looping) && rc == 0)
		rc = pthread_cond_timedwait(&lc->m_cv, &lc->m_mu, &dl);
	if (lc->m_out || !atomic_load(&lc->looping)) {
		pthread_mutex_unlock(&lc->m_mu);
		return atomic_load(&lc->looping) ? -ETIMEDOUT : -LCR_ESTOPPED;
	}
	lc->m_out = buf;
	lc->m_len = len;
	lc->m_res = &res;
	atomic_store_explicit(&lc->m_want, true, memory_order_release);
	wake(lc);
	while (res == INT_MIN && atomic_load(&lc->looping) && rc == 0)
		rc = pthread_cond_timedwait(&lc->m_cv, &lc->m_mu, &dl);
	if (res == INT_MIN) {
		/* It did not answer (stopped, or stuck): never write there later. */
		if (lc->m_res == &res) {
			lc->m_out = NULL;
			lc->m_res = NULL;
			pthread_cond_broadcast(&lc->m_cv);
		}
		res = atomic_load(&lc->looping) ? -ETIMEDOUT : -LCR_ESTOPPED;
	}
	pthread_mutex_unlock(&lc->m_mu);
	return res;
}

int lcr_node_metrics_json(struct lcr_node *n, char *buf, size_t len)
{
	size_t o = 0;

	PUT("{\"node\":%u,\"lcores\":[", n->cfg.id);
	for (uint32_t i = 0; i < n->n_lcores; i++) {
		struct lcore *lc = &n->lcores[i];
		bool mine = !atomic_load(&lc->looping) || pthread_equal(lc->self, pthread_self());
		if (i)
			PUT(",");
		int w = mine ? lcore_metrics_json(lc, buf + o, len > o ? len - o : 0)
			     : lcore_metrics_remote(lc, buf + o, len > o ? len - o : 0);
		if (w < 0)
			return w;
		o += (size_t)w;
	}
	PUT("]}");
	return o < len ? (int)o : -ENOSPC;
}
