/* SPDX-License-Identifier: MIT */
/*
 * lcraft-bench --mode engine: the cores alone. `replicas` lcr_core instances
 * run on the caller's thread, exchange messages through bounded in-memory
 * queues and keep their logs in preallocated in-memory rings whose "flush"
 * completes at once. What is left is the engine's own cost per entry, the
 * number comparable with openraft's framework benchmark (no network, no
 * disk).
 *
 * One loop iteration: read the clock, run due timers, hand every proposal
 * that is ready to the leader in one lcr_core_propose() call, then pump until
 * the cluster is quiet: deliver queued messages, complete the flushes each
 * replica's storage commands asked for (one per replica and pass: group
 * commit), report what was applied. Nothing allocates after setup.
 *
 * The log of a replica is a ring of `struct lcr_entry` slots whose `data`
 * points at the slot's own payload buffer. The leader's proposals are
 * written straight into its ring (lcr_core_propose() assigns their ids in
 * place), and an AppendEntries request on the in-memory "wire" points at
 * the sender's slots; the receiver copies them into its own ring when its
 * core tells it to append. A ring slot is reused only when every replica
 * has applied what it held, so replication never reads a reused slot in
 * steady state; a request whose slots were reused anyway (a lagging peer
 * after a leader change) is dropped at delivery, like a lost datagram, and
 * the core retransmits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "core.h"
#include "lcr_assert.h"

#define ENG_REPLICAS_MAX 5
/* Messages waiting per replica; a full queue drops (the core retries). */
#define ENG_QUEUE_MAX 8192
/*
 * Entries proposed per loop iteration, at most (but always one operation):
 * what one iteration touches in all replicas (about 100 bytes per entry and
 * replica) then stays in a 2 MiB L2. With 4,096 clients of 16 entries,
 * proposing all 65,536 at once ran at 11 M entries/s, in bursts of 4,096 at
 * about 18 M, as a runtime's receive burst would.
 */
#define ENG_PROPOSE_MAX 4096u
/* Timers are milliseconds apart: looking for due ones every 10 us is enough. */
#define ENG_TIMER_CHECK_NS 10000ull
/* A leader must be there within this long after the start. */
#define ENG_ELECTION_MAX_NS (5ull * 1000 * 1000 * 1000)
/* After the window, replicas must agree within this long. */
#define ENG_SETTLE_MAX_NS (5ull * 1000 * 1000 * 1000)

/* A message on the in-memory wire. */
struct eng_qmsg {
	struct lcr_msg m;
	/* APPEND_REQ with entries: the sender's log id of the last one when it
	 * was sent, to detect reused ring slots at delivery. */
	struct lcr_log_id last;
};

struct eng_queue {
	struct eng_qmsg *e;
	uint32_t head, len;
};

struct eng_replica {
	struct lcr_core *core;
	uint32_t id; /* node id: index + 1 */
	/* The log: slot i holds the entry with index i modulo the ring size. */
	struct lcr_entry *log;
	uint8_t *payload;
	uint64_t last;	  /* index of the last entry in the ring (as the core sees it) */
	uint64_t applied; /* index applied by the counting state machine */
	struct lcr_log_id applied_id;
	bool applied_dirty;	   /* LCR_EV_APPLIED not yet stepped */
	bool flush_pending;	   /* storage commands not yet reported durable */
	struct lcr_io_id flush_io; /* the newest of them */
	uint64_t flushed_index;	   /* last index reported durable */
	uint64_t hash;		   /* running hash of applied (log id, payload) */
	uint64_t applies;	   /* entries applied */
	uint32_t role;
	struct eng_queue q; /* inbound */
};

/* An operation in flight: `batch` entries ending at `last`. */
struct eng_op {
	uint64_t start_ns; /* proposal (closed loop) or intended (open loop) time */
	struct lcr_log_id last;
	uint32_t client;
};

struct eng {
	const struct lcr_bench_opts *o;
	struct lcr_bench_result *r;
	uint32_t n;
	struct eng_replica rep[ENG_REPLICAS_MAX];
	uint64_t cap, mask; /* ring slots, a power of two */
	uint32_t stride;    /* payload bytes per slot */
	uint64_t floor;	    /* min applied over replicas: slots at or below are free */
	int leader;	    /* replica index, -1 while there is none */
	uint64_t start_ns;
	uint64_t now_ns;

	/* Operations in flight, in proposal order (so in log order). */
	struct eng_op *ops;
	uint32_t ops_head, ops_len, ops_max;
	/* Closed loop: clients ready to propose again. */
	uint32_t *ready;
	uint32_t ready_head, ready_len;
	/* Open loop: the intended time of the next operation. */
	uint64_t next_due_ns, period_ns;
	uint64_t entry_seq; /* makes every payload distinct */

	struct lcr_entry *scratch; /* an AppendEntries that wraps around the ring */
	uint32_t scratch_max;	   /* max_payload_entries */
	bool in_window, load;
	bool elected; /* the first leader was there */

	/* Counted in the window only, except where said. */
	uint64_t ops_done, errors;
	uint64_t fsyncs, entries_flushed, datagrams;
	uint64_t leader_changes; /* at any time after the first election */
	uint64_t dropped_full, dropped_reused, room_waits;
};

static uint64_t eng_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the counting state machine ------------------------------------------------ */

static inline uint64_t eng_mix(uint64_t h)
{
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ull;
	h ^= h >> 32;
	return h;
}

/*
 * A running hash of what a replica applied: every replica must end with the
 * same one. Within a 32-byte block each word gets its own odd multiplier
 * (four independent products), blocks are chained Horner-style, so a change
 * in any word or a swap of any two shows; one mix per entry chains the
 * entries in order.
 */
static uint64_t eng_hash_entry(uint64_t h, const struct lcr_entry *e)
{
	const uint8_t *p = e->data;
	uint64_t s = e->id.index * 0x9e3779b97f4a7c15ull + e->id.lid.term * 0xbf58476d1ce4e5b9ull +
		     ((uint64_t)e->id.lid.node << 32 | e->len);
	uint32_t i = 0, len = e->len;

	for (; i + 32 <= len; i += 32) {
		uint64_t w[4];
		memcpy(w, p + i, sizeof(w));
		s = s * 0xd6e8feb86659fd93ull + w[0] * 0x9e3779b97f4a7c15ull +
		    w[1] * 0xbf58476d1ce4e5b9ull + w[2] * 0x94d049bb133111ebull +
		    w[3] * 0xff51afd7ed558ccdull;
	}
	for (; i < len; i++)
		s = s * 0xc4ceb9fe1a85ec53ull + p[i];
	return eng_mix(h ^ s);
}

/* ---- operations ------------------------------------------------------------------ */

static void eng_op_done(struct eng *e, const struct eng_op *op, uint64_t now_ns, bool ok)
{
	if (e->in_window) {
		if (ok) {
			e->ops_done++;
			lcr_hist_add(&e->r->lat, now_ns > op->start_ns ? now_ns - op->start_ns : 0);
		} else {
			e->errors++;
		}
	}
	if (e->o->rate <= 0) {
		uint32_t t = (e->ready_head + e->ready_len) % e->o->clients;
		e->ready[t] = op->client;
		e->ready_len++;
	}
}

/* Every operation in flight fails: leadership moved. */
static void eng_ops_fail_all(struct eng *e)
{
	while (e->ops_len > 0) {
		struct eng_op op = e->ops[e->ops_head];
		e->ops_head = (e->ops_head + 1) % e->ops_max;
		e->ops_len--;
		eng_op_done(e, &op, e->now_ns, false);
	}
}

static void eng_floor_update(struct eng *e)
{
	uint64_t f = UINT64_MAX;
	for (uint32_t i = 0; i < e->n; i++)
		if (e->rep[i].applied < f)
			f = e->rep[i].applied;
	e->floor = f;
}

/* ---- executing a core's commands ------------------------------------------------- */

static void eng_enqueue(struct eng *e, struct eng_replica *from, const struct lcr_msg *m)
{
	LCR_ASSERT(m->to >= 1 && m->to <= e->n && m->to != from->id);
	struct eng_queue *q = &e->rep[m->to - 1].q;
	if (lcr_unlikely(q->len == ENG_QUEUE_MAX)) {
		e->dropped_full++; /* as a lost datagram: the core retries */
		return;
	}
	struct eng_qmsg *qm = &q->e[(q->head + q->len) % ENG_QUEUE_MAX];
	q->len++;
	qm->m = *m;
	if (m->type == LCR_MSG_APPEND_REQ && m->append_req.n_entries > 0) {
		uint64_t last = m->append_req.prev.index + m->append_req.n_entries;
		LCR_ASSERT(last <= from->last);
		qm->last = from->log[last & e->mask].id;
		LCR_ASSERT(qm->last.index == last);
	}
}

static void eng_append(struct eng *e, struct eng_replica *r, const struct lcr_entry *ents,
		       uint32_t n)
{
	uint64_t first = ents[0].id.index;

	LCR_ASSERT(first >= 1 && first <= r->last + 1);
	/* The leader's proposals were written into its ring in place. */
	if (ents != &r->log[first & e->mask]) {
		for (uint32_t i = 0; i < n; i++) {
			const struct lcr_entry *s = &ents[i];
			struct lcr_entry *d = &r->log[s->id.index & e->mask];
			/* Reuse a slot only if every replica applied what it held (or
			 * it is a leftover of a truncation). */
			LCR_ASSERT(d->id.index <= e->floor || d->id.index >= s->id.index);
			LCR_ASSERT(s->len <= e->stride);
			d->id = s->id;
			d->type = s->type;
			d->len = s->len;
			if (s->len) /* a blank entry has no payload (data NULL) */
				memcpy((void *)d->data, s->data, s->len);
		}
	}
	r->last = ents[n - 1].id.index;
}

static void eng_flush_later(struct eng_replica *r, struct lcr_io_id io)
{
	r->flush_pending = true;
	r->flush_io = io;
}

static void eng_apply(struct eng *e, struct eng_replica *r, struct lcr_log_id first,
		      struct lcr_log_id last)
{
	bool leader = e->leader >= 0 && r == &e->rep[e->leader];
	uint64_t h = r->hash, now_ns = leader && e->ops_len ? eng_clock() : 0;

	LCR_ASSERT(first.index == r->applied && last.index <= r->last);
	for (uint64_t x = first.index + 1; x <= last.index; x++) {
		const struct lcr_entry *s = &r->log[x & e->mask];
		LCR_ASSERT(s->id.index == x);
		h = eng_hash_entry(h, s);
		if (leader && e->ops_len && e->ops[e->ops_head].last.index == x) {
			struct eng_op op = e->ops[e->ops_head];
			e->ops_head = (e->ops_head + 1) % e->ops_max;
			e->ops_len--;
			/* Applied at its index is what we proposed, or another
			 * leader's entry replaced it. */
			eng_op_done(e, &op, now_ns, lcr_log_id_eq(s->id, op.last));
		}
	}
	r->hash = h;
	r->applies += last.index - first.index;
	r->applied = last.index;
	r->applied_id = last;
	r->applied_dirty = true;
	eng_floor_update(e);
}

static void eng_role(struct eng *e, struct eng_replica *r, uint32_t role)
{
	int idx = (int)(r - e->rep);

	r->role = role;
	if (role == LCR_ROLE_LEADER) {
		if (!e->elected) {
			e->elected = true;
			e->r->election_ms = (double)(e->now_ns - e->start_ns) / 1e6;
		} else if (e->leader != idx) {
			e->leader_changes++;
			eng_ops_fail_all(e);
		}
		e->leader = idx;
		e->r->leader = r->id;
	} else if (e->leader == idx) {
		/* The leader stepped down: nothing in flight can complete here. */
		e->leader_changes++;
		e->leader = -1;
		eng_ops_fail_all(e);
	}
}

/* Run the commands of the replica's last core call. */
static void eng_exec(struct eng *e, struct eng_replica *r)
{
	uint32_t nc;
	const struct lcr_cmd *cmds = lcr_core_commands(r->core, &nc);

	for (uint32_t i = 0; i < nc; i++) {
		const struct lcr_cmd *c = &cmds[i];
		switch (c->type) {
		case LCR_CMD_SEND:
			eng_enqueue(e, r, &c->send);
			break;
		case LCR_CMD_APPEND:
			eng_append(e, r, c->append.entries, c->append.n);
			eng_flush_later(r, c->append.io);
			break;
		case LCR_CMD_APPLY:
			eng_apply(e, r, c->apply.first, c->apply.last);
			break;
		case LCR_CMD_SAVE_VOTE:
			eng_flush_later(r, c->save_vote.io);
			break;
		case LCR_CMD_TRUNCATE:
			LCR_ASSERT(c->truncate.after.index >= r->applied);
			r->last = c->truncate.after.index;
			eng_flush_later(r, c->truncate.io);
			break;
		case LCR_CMD_ROLE:
			eng_role(e, r, c->role.role);
			break;
		default:
			break; /* no reads are issued */
		}
	}
}

/* ---- the loop ------------------------------------------------------------------- */

static void eng_step(struct eng *e, struct eng_replica *r, struct lcr_event *ev)
{
	ev->now_ns = e->now_ns;
	int rc = lcr_core_step(r->core, ev);
	LCR_ASSERT(rc == 0);
	eng_exec(e, r);
}

/* The entries of a queued AppendEntries, or NULL when their slots were reused. */
static const struct lcr_entry *eng_wire_entries(struct eng *e, const struct eng_qmsg *qm)
{
	const struct eng_replica *s = &e->rep[qm->m.from - 1];
	uint32_t n = qm->m.append_req.n_entries;
	uint64_t first = qm->m.append_req.prev.index + 1;
	uint64_t off = first & e->mask;

	if (qm->last.index > s->last || s->log[off].id.index != first ||
	    !lcr_log_id_eq(s->log[qm->last.index & e->mask].id, qm->last))
		return NULL;
	if (off + n <= e->cap)
		return &s->log[off];
	/* Wraps around the end of the ring: one contiguous copy. */
	LCR_ASSERT(n <= e->scratch_max);
	for (uint32_t i = 0; i < n; i++)
		e->scratch[i] = s->log[(first + i) & e->mask];
	return e->scratch;
}

/* Deliver what was queued for `r` when this pass began; returns how many. */
static uint32_t eng_deliver(struct eng *e, struct eng_replica *r)
{
	uint32_t n = r->q.len;

	for (uint32_t k = 0; k < n; k++) {
		struct eng_qmsg *qm = &r->q.e[r->q.head];
		bool ok = true;
		if (qm->m.type == LCR_MSG_APPEND_REQ && qm->m.append_req.n_entries > 0) {
			qm->m.append_req.entries = eng_wire_entries(e, qm);
			ok = qm->m.append_req.entries != NULL;
		}
		if (ok) {
			struct lcr_event ev = { .type = LCR_EV_MSG, .msg = &qm->m };
			eng_step(e, r, &ev);
		} else {
			e->dropped_reused++;
		}
		/* Stepping only enqueues to other replicas: the slot stayed ours. */
		r->q.head = (r->q.head + 1) % ENG_QUEUE_MAX;
		r->q.len--;
	}
	if (e->in_window)
		e->datagrams += n;
	return n;
}

static bool eng_flush(struct eng *e, struct eng_replica *r)
{
	if (!r->flush_pending)
		return false;
	r->flush_pending = false;
	struct lcr_event ev = { .type = LCR_EV_IO_FLUSHED, .io = r->flush_io };
	if (e->in_window && e->leader >= 0 && r == &e->rep[e->leader]) {
		e->fsyncs++;
		if (r->flush_io.last.index > r->flushed_index)
			e->entries_flushed += r->flush_io.last.index - r->flushed_index;
	}
	r->flushed_index = r->flush_io.last.index;
	eng_step(e, r, &ev);
	return true;
}

static bool eng_report_applied(struct eng *e, struct eng_replica *r)
{
	if (!r->applied_dirty)
		return false;
	r->applied_dirty = false;
	struct lcr_event ev = { .type = LCR_EV_APPLIED, .applied = r->applied_id };
	eng_step(e, r, &ev);
	return true;
}

/* Until the cluster is quiet: messages, flushes, applied reports. */
static void eng_pump(struct eng *e)
{
	bool work;
	do {
		work = false;
		for (uint32_t i = 0; i < e->n; i++)
			work |= eng_deliver(e, &e->rep[i]) > 0;
		for (uint32_t i = 0; i < e->n; i++)
			work |= eng_flush(e, &e->rep[i]);
		for (uint32_t i = 0; i < e->n; i++)
			work |= eng_report_applied(e, &e->rep[i]);
	} while (work);
}

static void eng_timers(struct eng *e)
{
	for (uint32_t i = 0; i < e->n; i++) {
		struct eng_replica *r = &e->rep[i];
		if (lcr_core_next_timer(r->core) <= e->now_ns) {
			struct lcr_event ev = { .type = LCR_EV_TICK };
			eng_step(e, r, &ev);
		}
	}
}

/* Operations to start now: closed loop, every ready client; open loop, every
 * intended time that has passed, as far as `clients` allows. */
static uint32_t eng_ops_wanted(struct eng *e)
{
	if (e->o->rate <= 0)
		return e->ready_len;
	if (e->next_due_ns > e->now_ns)
		return 0;
	uint64_t due = (e->now_ns - e->next_due_ns) / e->period_ns + 1;
	uint32_t room = e->o->clients - e->ops_len;
	return due < room ? (uint32_t)due : room;
}

static void eng_propose_range(struct eng *e, struct eng_replica *l, uint64_t first, uint32_t n)
{
	int rc = lcr_core_propose(l->core, e->now_ns, &l->log[first & e->mask], n);
	if (rc < 0) {
		e->errors += e->in_window;
		return;
	}
	eng_exec(e, l);
}

/* Write up to `k` operations into the leader's ring and propose them together. */
static void eng_propose(struct eng *e)
{
	uint32_t k = eng_ops_wanted(e), batch = e->o->batch;

	if (k == 0 || e->leader < 0)
		return;
	if ((uint64_t)k * batch > ENG_PROPOSE_MAX)
		k = ENG_PROPOSE_MAX / batch > 0 ? ENG_PROPOSE_MAX / batch : 1;
	struct eng_replica *l = &e->rep[e->leader];
	/* Half of the ring is left for what replicas have not applied yet. */
	uint64_t used = l->last - e->floor, room = e->cap / 2;
	if (used + (uint64_t)k * batch > room) {
		e->room_waits++;
		k = used >= room ? 0 : (uint32_t)((room - used) / batch);
		if (k == 0)
			return;
	}
	uint64_t first = l->last + 1, n = (uint64_t)k * batch;
	for (uint64_t x = first; x < first + n; x++) {
		struct lcr_entry *s = &l->log[x & e->mask];
		uint64_t seq = ++e->entry_seq;
		LCR_ASSERT(s->id.index <= e->floor || s->id.index >= x);
		/* A request still on the wire that names this slot is dropped. */
		s->id.index = 0;
		s->type = LCR_ENTRY_NORMAL;
		s->len = e->o->size;
		if (lcr_likely(e->o->size >= 8))
			memcpy((void *)s->data, &seq, 8);
		else
			memcpy((void *)s->data, &seq, e->o->size);
	}
	/* One proposal for all of them, two where the ring wraps. */
	uint64_t off = first & e->mask;
	uint64_t n1 = off + n <= e->cap ? n : e->cap - off;
	eng_propose_range(e, l, first, (uint32_t)n1);
	if (n1 < n && l->last == first + n1 - 1)
		eng_propose_range(e, l, first + n1, (uint32_t)(n - n1));
	if (l->last != first + n - 1 || e->leader < 0 || &e->rep[e->leader] != l)
		return; /* refused: clients stay ready and try again */

	for (uint32_t j = 0; j < k; j++) {
		struct eng_op *op = &e->ops[(e->ops_head + e->ops_len) % e->ops_max];
		LCR_ASSERT(e->ops_len < e->ops_max);
		e->ops_len++;
		op->last = l->log[(first + (uint64_t)(j + 1) * batch - 1) & e->mask].id;
		if (e->o->rate > 0) {
			op->client = 0;
			op->start_ns = e->next_due_ns;
			e->next_due_ns += e->period_ns;
		} else {
			op->client = e->ready[e->ready_head];
			op->start_ns = e->now_ns;
			e->ready_head = (e->ready_head + 1) % e->o->clients;
			e->ready_len--;
		}
	}
}

static void eng_iteration(struct eng *e, uint64_t *next_timers_ns)
{
	e->now_ns = eng_clock();
	if (e->now_ns >= *next_timers_ns) {
		*next_timers_ns = e->now_ns + ENG_TIMER_CHECK_NS;
		eng_timers(e);
	}
	if (e->load)
		eng_propose(e);
	eng_pump(e);
}

/* ---- setup ---------------------------------------------------------------------- */

static int eng_check(const struct lcr_bench_opts *o, char *why, size_t why_len)
{
	if (o->replicas != 1 && o->replicas != 3 && o->replicas != 5) {
		snprintf(why, why_len, "engine mode runs 1, 3 or 5 replicas, not %u", o->replicas);
		return -EINVAL;
	}
	if (o->groups > 64) {
		snprintf(why, why_len, "engine mode runs 1..64 groups, not %u", o->groups);
		return -EINVAL;
	}
	if (o->clients == 0 || o->batch == 0 || o->clients > (1u << 20) || o->batch > (1u << 16) ||
	    (uint64_t)o->clients * o->batch > (1u << 24)) {
		snprintf(why, why_len,
			 "engine mode needs 1..1048576 clients, a batch of 1..65536 and at most "
			 "16,777,216 entries in flight (clients %u, batch %u)",
			 o->clients, o->batch);
		return -EINVAL;
	}
	if (o->size > (1u << 20)) {
		snprintf(why, why_len, "engine mode takes entries up to 1 MiB, not %u bytes",
			 o->size);
		return -EINVAL;
	}
	return 0;
}

static void eng_free(struct eng *e)
{
	for (uint32_t i = 0; i < ENG_REPLICAS_MAX; i++) {
		struct eng_replica *r = &e->rep[i];
		lcr_core_free(r->core);
		free(r->log);
		free(r->payload);
		free(r->q.e);
	}
	free(e->ops);
	free(e->ready);
	free(e->scratch);
	memset(e, 0, sizeof(*e)); /* freed twice is freed once */
}

static int eng_setup(struct eng *e, char *why, size_t why_len)
{
	const struct lcr_bench_opts *o = e->o;
	uint64_t inflight = (uint64_t)o->clients * o->batch;

	/*
	 * Ring size: four times what the clients can have in flight, so that
	 * half of it (the room proposals may use) covers the entries in flight
	 * plus those followers have yet to apply; at least 8,192 slots.
	 */
	e->cap = 8192;
	while (e->cap < 4 * inflight)
		e->cap *= 2;
	e->mask = e->cap - 1;
	e->stride = (o->size + 7) / 8 * 8;
	e->n = o->replicas;
	e->leader = -1;
	e->ops_max = o->clients;
	e->ops = calloc(e->ops_max, sizeof(*e->ops));
	e->ready = calloc(o->clients, sizeof(*e->ready));
	if (!e->ops || !e->ready)
		goto err_nomem;

	for (uint32_t i = 0; i < e->n; i++) {
		struct eng_replica *r = &e->rep[i];
		struct lcr_core_config cfg;
		struct lcr_core_restore rs;
		int err;

		r->id = i + 1;
		r->log = calloc(e->cap, sizeof(*r->log));
		r->payload = malloc(e->cap * e->stride + 8);
		r->q.e = calloc(ENG_QUEUE_MAX, sizeof(*r->q.e));
		if (!r->log || !r->payload || !r->q.e)
			goto err_nomem;
		/* The same filler everywhere; proposals write a distinct header. */
		for (uint64_t b = 0; b < e->cap * e->stride + 8; b++)
			r->payload[b] = (uint8_t)(b * 131 + 7);
		for (uint64_t s = 0; s < e->cap; s++)
			r->log[s].data = r->payload + s * e->stride;

		lcr_core_config_default(&cfg, r->id);
		cfg.membership.n_configs = 1;
		cfg.membership.configs[0].n = e->n;
		for (uint32_t j = 0; j < e->n; j++)
			cfg.membership.configs[0].ids[j] = j + 1;
		cfg.seed = 0x5eed + i;
		e->scratch_max = cfg.max_payload_entries;
		memset(&rs, 0, sizeof(rs));
		if ((err = lcr_core_new(&r->core, &cfg, &rs)) < 0) {
			snprintf(why, why_len, "creating replica %u: %s", r->id, lcr_strerror(err));
			eng_free(e);
			return err;
		}
	}
	e->scratch = calloc(e->scratch_max, sizeof(*e->scratch));
	if (!e->scratch)
		goto err_nomem;
	return 0;

err_nomem:
	snprintf(why, why_len, "engine mode: out of memory for %llu ring slots of %u bytes",
		 (unsigned long long)e->cap, e->stride);
	eng_free(e);
	return -ENOMEM;
}

/* Start the cores and elect replica 1 at once instead of waiting for a timer. */
static int eng_elect(struct eng *e, char *why, size_t why_len)
{
	uint64_t next_timers = 0;

	e->start_ns = e->now_ns = eng_clock();
	for (uint32_t i = 0; i < e->n; i++) {
		LCR_ASSERT(lcr_core_start(e->rep[i].core, e->now_ns) == 0);
		eng_exec(e, &e->rep[i]);
	}
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_ELECT, .elect.pre_vote = false };
	eng_step(e, &e->rep[0], &ev);
	/* Ready when the leader applied its blank entry: a quorum acknowledged
	 * it, so its lease is valid and proposals are accepted. */
	while (e->leader < 0 || e->rep[e->leader].applied == 0) {
		eng_iteration(e, &next_timers);
		if (e->now_ns - e->start_ns > ENG_ELECTION_MAX_NS) {
			snprintf(why, why_len, "no leader within %llu ms",
				 (unsigned long long)(ENG_ELECTION_MAX_NS / 1000000));
			return -ETIMEDOUT;
		}
	}
	return 0;
}

static double eng_tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* After the window: stop the load, let every replica apply everything, then
 * check they applied the same entries. */
static int eng_settle(struct eng *e, char *why, size_t why_len)
{
	uint64_t next_timers = 0, t0 = eng_clock();

	e->load = false;
	for (;;) {
		eng_iteration(e, &next_timers);
		if (e->leader < 0)
			continue;
		struct eng_replica *l = &e->rep[e->leader];
		bool same = l->applied == l->last;
		for (uint32_t i = 0; i < e->n; i++)
			same = same && e->rep[i].applied == l->last;
		if (same)
			break;
		if (e->now_ns - t0 > ENG_SETTLE_MAX_NS) {
			snprintf(why, why_len,
				 "replicas did not apply the whole log within %llu ms after the "
				 "window (leader applied %llu of %llu)",
				 (unsigned long long)(ENG_SETTLE_MAX_NS / 1000000),
				 (unsigned long long)l->applied, (unsigned long long)l->last);
			return -ETIMEDOUT;
		}
		/* Followers learn the commit point from the next request. */
		struct lcr_event ev = { .type = LCR_EV_TRIGGER_HEARTBEAT };
		eng_step(e, l, &ev);
	}
	for (uint32_t i = 0; i < e->n; i++) {
		/* Same entries applied in the same order everywhere (Raft's state
		 * machine safety): a broken engine must not report a number. */
		LCR_ASSERT(e->rep[i].applied == e->rep[0].applied);
		LCR_ASSERT(e->rep[i].hash == e->rep[0].hash);
	}
	return 0;
}

/*
 * Several groups (--groups G --lcores L): L threads, each pinned to a core of
 * its own and running the groups g with g % L == its index, each group its
 * own replicas, rings and clients, as a node's lcores would. The threads set
 * up and elect apart, start the load together and measure the same window;
 * their results add up. One group on one lcore is the same loop on the
 * caller's thread.
 */
/* The lcores start their load together, once every one is ready. */
struct eng_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t arrived, expected;
};

static void eng_gate_wait(struct eng_gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->arrived++;
	pthread_cond_broadcast(&g->cv);
	while (g->arrived < g->expected)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

struct eng_lcore {
	const struct lcr_bench_opts *o; /* this lcore's: rate divided among the groups */
	struct lcr_bench_opts own;
	uint32_t index;
	uint32_t n_engs;
	struct eng *engs[64];
	int cpu; /* pinned there; -1: not pinned */
	struct lcr_bench_result r;
	struct eng_gate *ready;
	_Atomic uint64_t ops_published; /* its ops in the window, as of its last second */
	struct eng_lcore *all;		/* thread 0 reports progress for every lcore */
	uint32_t n_all;
	lcr_bench_progress_fn progress;
	void *ctx;
	int rc;
	char why[256];
	pthread_t thread;
};

static void eng_lcore_run(struct eng_lcore *l)
{
	const struct lcr_bench_opts *o = l->o;
	struct rusage ru0, ru1;
	int64_t allocs0 = -1;
	uint64_t next_timers[64] = { 0 };
	bool setup_ok = true;

	if (l->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(l->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
			l->cpu = -1;
	}
	for (uint32_t k = 0; k < l->n_engs && setup_ok; k++) {
		struct eng *e = l->engs[k];
		e->o = o;
		e->r = &l->r;
		l->rc = eng_setup(e, l->why, sizeof(l->why));
		if (l->rc < 0) {
			l->n_engs = k; /* eng_setup freed its own */
			setup_ok = false;
			break;
		}
		l->rc = eng_elect(e, l->why, sizeof(l->why));
		if (l->rc < 0) {
			l->n_engs = k + 1;
			setup_ok = false;
		}
	}
	/* Every lcore waits for the others, ready or not: none starts alone. */
	eng_gate_wait(l->ready);
	for (uint32_t i = 0; i < l->n_all; i++)
		if (l->all[i].rc < 0)
			return;

	uint64_t t_warm = eng_clock();
	uint64_t t_win = t_warm + (uint64_t)(o->warmup * 1e9);
	uint64_t t_end = t_win + (uint64_t)(o->seconds * 1e9);
	uint64_t next_progress = t_warm + 1000000000ull;
	bool in_window = false;

	for (uint32_t k = 0; k < l->n_engs; k++) {
		struct eng *e = l->engs[k];
		e->load = true;
		if (o->rate > 0) {
			e->period_ns = (uint64_t)(1e9 / o->rate);
			if (e->period_ns == 0)
				e->period_ns = 1;
			e->next_due_ns = t_warm;
		} else {
			for (uint32_t c = 0; c < o->clients; c++)
				e->ready[c] = c;
			e->ready_len = o->clients;
		}
	}
	uint64_t now = t_warm;
	for (;;) {
		for (uint32_t k = 0; k < l->n_engs; k++)
			eng_iteration(l->engs[k], &next_timers[k]);
		now = l->engs[l->n_engs - 1]->now_ns;
		if (!in_window && now >= t_win) {
			in_window = true;
			t_win = now;
			for (uint32_t k = 0; k < l->n_engs; k++)
				l->engs[k]->in_window = true;
			getrusage(RUSAGE_THREAD, &ru0);
			allocs0 = lcr_bench_allocs();
		}
		if (now >= t_end && in_window)
			break;
		if (now >= next_progress) {
			next_progress += 1000000000ull;
			uint64_t ops = 0, errors = 0;
			for (uint32_t k = 0; k < l->n_engs; k++) {
				ops += l->engs[k]->ops_done;
				errors += l->engs[k]->errors;
			}
			atomic_store_explicit(&l->ops_published, ops, memory_order_relaxed);
			if (l->index == 0 && l->progress && !o->quiet) {
				for (uint32_t i = 1; i < l->n_all; i++)
					ops += atomic_load_explicit(&l->all[i].ops_published,
								    memory_order_relaxed);
				l->progress(l->ctx, (double)((int64_t)now - (int64_t)t_win) / 1e9,
					    ops, errors);
			}
		}
		if (lcr_bench_interrupted)
			break;
	}
	getrusage(RUSAGE_THREAD, &ru1);
	int64_t allocs1 = lcr_bench_allocs();
	struct lcr_bench_result *r = &l->r;
	r->window_s = (double)(now - t_win) / 1e9;
	r->user_s = eng_tv_s(ru1.ru_utime) - eng_tv_s(ru0.ru_utime);
	r->sys_s = eng_tv_s(ru1.ru_stime) - eng_tv_s(ru0.ru_stime);
	r->allocs = allocs0 < 0 || allocs1 < 0 ? -1 : allocs1 - allocs0;
	uint64_t changes = 0, full = 0, reused = 0, waits = 0;
	for (uint32_t k = 0; k < l->n_engs; k++) {
		struct eng *e = l->engs[k];
		e->in_window = false;
		r->ops += e->ops_done;
		r->entries += e->ops_done * o->batch;
		r->errors += e->errors + e->leader_changes;
		r->fsyncs += (int64_t)e->fsyncs;
		r->entries_flushed += (int64_t)e->entries_flushed;
		r->datagrams += (int64_t)e->datagrams;
		changes += e->leader_changes;
		full += e->dropped_full;
		reused += e->dropped_reused;
		waits += e->room_waits;
	}
	if (lcr_bench_interrupted) {
		l->rc = -EINTR;
		snprintf(l->why, sizeof(l->why), "interrupted");
		return;
	}
	for (uint32_t k = 0; k < l->n_engs; k++) {
		l->rc = eng_settle(l->engs[k], l->why, sizeof(l->why));
		if (l->rc < 0)
			return;
	}
	if (changes || full || reused || waits)
		snprintf(r->note, sizeof(r->note),
			 "leader changes %llu, messages dropped (queue full %llu, slots reused "
			 "%llu), proposals held back for ring room %llu",
			 (unsigned long long)changes, (unsigned long long)full,
			 (unsigned long long)reused, (unsigned long long)waits);
}

static void *eng_lcore_main(void *arg)
{
	eng_lcore_run(arg);
	return NULL;
}

/* The cores this process may run on, in order: cpus[0..n). */
static uint32_t eng_cpus(int *cpus, uint32_t max)
{
	cpu_set_t set;
	uint32_t n = 0;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	return n;
}

int lcr_bench_engine(const struct lcr_bench_opts *o, struct lcr_bench_result *r,
		     lcr_bench_progress_fn progress, void *ctx, char *why, size_t why_len)
{
	int cpus[CPU_SETSIZE];
	uint32_t n_cpus = eng_cpus(cpus, CPU_SETSIZE);
	int rc;

	memset(r, 0, sizeof(*r));
	rc = eng_check(o, why, why_len);
	if (rc < 0)
		return rc;
	uint32_t L = o->lcores;
	if (L > o->groups) {
		snprintf(why, why_len,
			 "engine mode: --lcores %u with --groups %u leaves lcores without a group",
			 L, o->groups);
		return -EINVAL;
	}
	if (L > 1 && L > n_cpus) {
		snprintf(why, why_len,
			 "engine mode runs each lcore as a busy thread on a core of its own: "
			 "--lcores "
			 "%u needs %u cores, and this process may use %u",
			 L, L, n_cpus);
		return -EINVAL;
	}
	struct eng_lcore *ls = calloc(L, sizeof(*ls));
	struct eng *engs = calloc(o->groups, sizeof(*engs));
	struct eng_gate ready = { .mu = PTHREAD_MUTEX_INITIALIZER,
				  .cv = PTHREAD_COND_INITIALIZER,
				  .expected = L };
	if (!ls || !engs) {
		free(ls);
		free(engs);
		snprintf(why, why_len, "engine mode: out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < L; i++) {
		struct eng_lcore *l = &ls[i];
		l->own = *o;
		l->own.rate = o->rate / o->groups; /* --rate is over all groups */
		l->o = &l->own;
		l->index = i;
		l->cpu = L > 1 ? cpus[i] : -1;
		l->ready = &ready;
		l->all = ls;
		l->n_all = L;
		l->progress = progress;
		l->ctx = ctx;
		for (uint32_t g = i; g < o->groups; g += L)
			l->engs[l->n_engs++] = &engs[g];
	}
	/* Lcore 0 on this thread (pinned for the run, then as it was). */
	cpu_set_t was;
	bool pinned = L > 1 && sched_getaffinity(0, sizeof(was), &was) == 0;
	uint32_t started = 1;
	while (started < L &&
	       pthread_create(&ls[started].thread, NULL, eng_lcore_main, &ls[started]) == 0)
		started++;
	if (started < L) {
		/* The lcores started wait for none that is not: they see the
		 * failure and stop. */
		pthread_mutex_lock(&ready.mu);
		for (uint32_t i = started; i < L; i++) {
			ls[i].rc = -EAGAIN;
			snprintf(ls[i].why, sizeof(ls[i].why),
				 "engine mode: cannot start lcore %u's thread", i);
		}
		ready.expected = started;
		pthread_cond_broadcast(&ready.cv);
		pthread_mutex_unlock(&ready.mu);
	}
	eng_lcore_run(&ls[0]);
	for (uint32_t i = 1; i < started; i++)
		pthread_join(ls[i].thread, NULL);
	if (pinned)
		sched_setaffinity(0, sizeof(was), &was);

	rc = 0;
	for (uint32_t i = 0; i < L; i++) {
		struct eng_lcore *l = &ls[i];
		if (l->rc < 0 && rc == 0) {
			rc = l->rc;
			snprintf(why, why_len, "%s", l->why);
		}
		struct lcr_bench_result *x = &l->r;
		if (i == 0) {
			*r = *x;
			continue;
		}
		r->window_s = r->window_s > x->window_s ? r->window_s : x->window_s;
		r->ops += x->ops;
		r->entries += x->entries;
		r->errors += x->errors;
		lcr_hist_merge(&r->lat, &x->lat);
		r->user_s += x->user_s;
		r->sys_s += x->sys_s;
		r->fsyncs += x->fsyncs;
		r->entries_flushed += x->entries_flushed;
		r->datagrams += x->datagrams;
		if (!r->note[0])
			memcpy(r->note, x->note, sizeof(r->note));
	}
	r->retransmits = 0;
	/* Allocations are the process's: lcore 0's window saw every lcore's. */
	for (uint32_t g = 0; g < o->groups; g++)
		eng_free(&engs[g]);
	free(engs);
	free(ls);
	return rc;
}
