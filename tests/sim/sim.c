/* SPDX-License-Identifier: MIT */
/*
 * The simulated world: a cluster of lcraft cores, each with a simulated disk
 * (ordered writes, latency, slow periods, failed fsyncs, crashes that keep a
 * random prefix of unflushed writes and may tear the last one), a simulated
 * network (loss, duplication, delay and reordering, symmetric and one-way
 * partitions), per-node clocks (jumps, pauses), clients writing and reading
 * linearizably, and a nemesis that mixes all of it, now and then running one
 * of the seed's orchestrated scenarios (sim_scenario.c). Then everything heals
 * and the cluster must elect a leader and commit a new write within a bound.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

enum ev_kind {
	EV_TICK = 1,
	EV_DELIVER,
	EV_DISK,
	EV_CLIENT,
	EV_CLIENT_TIMEOUT,
	EV_NEMESIS,
	EV_RESTART,
	EV_NET_ERROR,
	EV_SNAP_BUILT,
	EV_PURGE, /* the purge trigger, up to `a` */
};

struct sim_msg {
	struct lcr_msg m;
	struct sim_entry *entries;
	bool forged; /* from the forger: must leave its receiver unchanged */
	/* SNAPSHOT_REQ: the snapshot's bytes, and the sender's incarnation (a
	 * transfer ends with its sender). */
	struct sim_snap snap;
	uint32_t inc;
};

struct sim_event {
	uint64_t at;
	uint64_t seq;
	uint32_t kind;
	uint32_t node;
	uint32_t inc;
	uint64_t a;
	struct sim_msg *msg;
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "lcraft-sim: out of memory\n");
		exit(2);
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "lcraft-sim: out of memory\n");
		exit(2);
	}
	return p;
}

/* ---- randomness ------------------------------------------------------------- */

static uint64_t rnd(struct sim_world *w)
{
	uint64_t s1 = w->rng[0];
	const uint64_t s0 = w->rng[1];
	w->rng[0] = s0;
	s1 ^= s1 << 23;
	w->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return w->rng[1] + s0;
}

static uint64_t rnd_below(struct sim_world *w, uint64_t n)
{
	return n ? rnd(w) % n : 0;
}

static bool chance(struct sim_world *w, uint32_t pct)
{
	return rnd_below(w, 100) < pct;
}

uint64_t sim_rnd_below(struct sim_world *w, uint64_t n)
{
	return rnd_below(w, n);
}

static uint64_t mix(uint64_t h, uint64_t x)
{
	h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 29);
}

uint64_t sim_entry_hash(const struct sim_entry *e)
{
	uint64_t h = mix(mix(mix(e->id.lid.term, e->id.lid.node), e->id.index), e->type);
	if (e->type == LCR_ENTRY_NORMAL)
		h = mix(mix(mix(mix(h, e->p.op), e->p.key), e->p.value), e->p.expect);
	if (e->type == LCR_ENTRY_MEMBERSHIP)
		for (uint32_t i = 0; i < e->len && i < sizeof(e->m); i++)
			h = mix(h, e->m[i]);
	return h;
}

/* ---- trace ------------------------------------------------------------------ */

void sim_trace(struct sim_world *w, uint32_t node, const char *fmt, ...)
{
	struct sim_trace *t = &w->trace[w->trace_n++ % SIM_TRACE];
	va_list ap;

	t->t = w->now;
	t->node = node;
	va_start(ap, fmt);
	vsnprintf(t->what, sizeof(t->what), fmt, ap);
	va_end(ap);
	if (w->debug)
		fprintf(stderr, "  %10.3f ms  n%u  %s\n", (double)t->t / 1e6, t->node, t->what);
}

static const char *msg_name(uint32_t type)
{
	static const char *names[] = { "?",	 "vote-req",	"vote-resp",
				       "append", "append-resp", "transfer",
				       "?",	 "read-index",	"read-index-resp" };
	return type <= 8 ? names[type] : "?";
}

static void debug_msg(struct sim_world *w, const struct lcr_msg *m, const char *what)
{
	if (!w->debug)
		return;
	switch (m->type) {
	case LCR_MSG_VOTE_REQ:
		sim_trace(w, m->to, "%s %s from %u: vote %llu-%u%s%s last %llu", what,
			  msg_name(m->type), m->from, (unsigned long long)m->vote_req.vote.lid.term,
			  m->vote_req.vote.lid.node, m->vote_req.pre_vote ? " pre" : "",
			  m->vote_req.leadership_transfer ? " transfer" : "",
			  (unsigned long long)m->vote_req.last_log_id.index);
		break;
	case LCR_MSG_VOTE_RESP:
		sim_trace(w, m->to, "%s %s from %u: vote %llu-%u%s granted %d%s", what,
			  msg_name(m->type), m->from,
			  (unsigned long long)m->vote_resp.vote.lid.term,
			  m->vote_resp.vote.lid.node, m->vote_resp.vote.committed ? "c" : "",
			  m->vote_resp.granted, m->vote_resp.pre_vote ? " pre" : "");
		break;
	case LCR_MSG_APPEND_REQ:
		sim_trace(w, m->to,
			  "%s %s from %u: vote %llu-%u prev %llu n %u commit %llu seq %llu", what,
			  msg_name(m->type), m->from,
			  (unsigned long long)m->append_req.vote.lid.term,
			  m->append_req.vote.lid.node, (unsigned long long)m->append_req.prev.index,
			  m->append_req.n_entries,
			  (unsigned long long)m->append_req.leader_commit.index,
			  (unsigned long long)m->append_req.send_seq);
		break;
	case LCR_MSG_APPEND_RESP:
		sim_trace(w, m->to, "%s %s from %u: result %u log %llu seq %llu", what,
			  msg_name(m->type), m->from, m->append_resp.result,
			  (unsigned long long)m->append_resp.log_id.index,
			  (unsigned long long)m->append_resp.send_seq);
		break;
	default:
		sim_trace(w, m->to, "%s %s from %u", what, msg_name(m->type), m->from);
	}
}

/* ---- event queue (binary heap on (at, seq)) ----------------------------------- */

static bool ev_before(const struct sim_event *a, const struct sim_event *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void push(struct sim_world *w, struct sim_event ev)
{
	if (w->heap_n == w->heap_cap) {
		w->heap_cap = w->heap_cap ? w->heap_cap * 2 : 1024;
		w->heap = xrealloc(w->heap, w->heap_cap * sizeof(*w->heap));
	}
	ev.seq = w->ev_seq++;
	size_t i = w->heap_n++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!ev_before(&ev, &w->heap[parent]))
			break;
		w->heap[i] = w->heap[parent];
		i = parent;
	}
	w->heap[i] = ev;
}

static struct sim_event pop(struct sim_world *w)
{
	struct sim_event top = w->heap[0];
	struct sim_event last = w->heap[--w->heap_n];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct sim_event *best = &last;
		if (l < w->heap_n && ev_before(&w->heap[l], best)) {
			m = l;
			best = &w->heap[l];
		}
		if (r < w->heap_n && ev_before(&w->heap[r], best))
			m = r;
		if (m == i)
			break;
		w->heap[i] = w->heap[m];
		i = m;
	}
	if (w->heap_n > 0)
		w->heap[i] = last;
	return top;
}

static void at(struct sim_world *w, uint64_t t, uint32_t kind, uint32_t node, uint64_t a)
{
	struct sim_event ev = { .at = t, .kind = kind, .node = node, .a = a };
	if (node >= 1 && node <= SIM_NODES_MAX)
		ev.inc = w->nodes[node - 1].incarnation;
	push(w, ev);
}

/* ---- logs ------------------------------------------------------------------- */

static void log_reserve(struct sim_log *l, uint64_t n)
{
	if (n <= l->cap)
		return;
	l->cap = l->cap ? l->cap * 2 : 256;
	if (l->cap < n)
		l->cap = n;
	l->e = xrealloc(l->e, l->cap * sizeof(*l->e));
}

static void log_push(struct sim_log *l, const struct sim_entry *e)
{
	if (e->id.index != l->n + 1) {
		fprintf(stderr, "lcraft-sim: internal: log push %llu after %llu\n",
			(unsigned long long)e->id.index, (unsigned long long)l->n);
		abort();
	}
	log_reserve(l, l->n + 1);
	l->e[l->n] = *e;
	l->e[l->n].prefix_hash = mix(l->n ? l->e[l->n - 1].prefix_hash : 0, sim_entry_hash(e));
	l->n++;
}

static void log_copy(struct sim_log *dst, const struct sim_log *src)
{
	log_reserve(dst, src->n);
	dst->n = src->n;
	if (src->n)
		memcpy(dst->e, src->e, src->n * sizeof(*src->e));
}

/*
 * The log after a snapshot that replaced it: nothing but the snapshot's last
 * entry, whose place (and everything before it, all gone) holds the ids and
 * prefix hashes the cluster committed there, so that the checks that look a
 * log up by index find what the snapshot stands for.
 */
static void log_reset(struct sim_world *w, struct sim_log *l, struct lcr_log_id last)
{
	log_reserve(l, last.index);
	for (uint64_t i = 1; i <= last.index; i++) {
		struct sim_entry *e = &l->e[i - 1];
		const struct sim_committed *c = i <= w->n_committed ? &w->committed[i - 1] : NULL;
		if (!c || c->id.index == 0) {
			sim_violation(w, "driver", "a snapshot covers %llu, never seen committed",
				      (unsigned long long)i);
			return;
		}
		memset(e, 0, sizeof(*e));
		e->id = c->id;
		e->type = LCR_ENTRY_BLANK;
		e->prefix_hash = c->prefix_hash;
	}
	l->n = last.index;
	if (!lcr_log_id_eq(l->e[last.index - 1].id, last))
		sim_violation(w, "snapshot-state",
			      "a snapshot ends at %llu-%u/%llu, committed there is another entry",
			      (unsigned long long)last.lid.term, last.lid.node,
			      (unsigned long long)last.index);
}

/* ---- nodes ------------------------------------------------------------------ */

uint64_t sim_node_time(const struct sim_world *w, const struct sim_node *n)
{
	return (uint64_t)((int64_t)w->now + n->clock_offset);
}

static struct sim_node *node(struct sim_world *w, uint32_t id)
{
	return &w->nodes[id - 1];
}

struct sim_node *sim_node(struct sim_world *w, uint32_t id)
{
	return node(w, id);
}

static void *sim_core_alloc(void *ctx, size_t size)
{
	(*(uint64_t *)ctx)++;
	return xmalloc(size);
}

static void sim_core_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static void fill_config(struct sim_world *w, struct lcr_core_config *cfg, uint32_t id)
{
	lcr_core_config_default(cfg, id);
	cfg->membership.n_configs = 1;
	cfg->membership.configs[0].n = w->par.voters;
	for (uint32_t i = 0; i < w->par.voters; i++)
		cfg->membership.configs[0].ids[i] = i + 1;
	/* A node outside the first voters knows them, and is in no config
	 * until the membership it is added to reaches it (the runtime's
	 * lcr_rt_mship_initial): every node starts from the same membership. */
	/* Only where membership changes: a replica then takes requests from
	 * nodes it does not know yet (the transport keeps strangers out). */
	cfg->enable_membership_changes = w->par.churn;
	cfg->enable_pre_vote = w->par.pre_vote;
	cfg->seed = w->seed * 1000003u + id * 7919u + node(w, id)->incarnation;
	/* Vary the replication shape so probing, pipelining and batching all run. */
	cfg->max_payload_entries = (uint32_t)(1 + (w->seed % 7 == 0 ? 2 : w->seed % 64));
	/* Small payloads in a quarter of the seeds: a new leader's no-op then
	 * travels apart from the older entries before it, and those can be
	 * acknowledged (and wrongly counted) without it. */
	if (w->seed % 4 == 1)
		cfg->max_payload_entries = 1 + (uint32_t)(w->seed / 4 % 2);
	cfg->inflight_max = (uint32_t)(1 + (w->seed / 7) % 16);
	/* Small queues overflow under faults; some seeds keep the defaults. */
	if (w->par.small_queues) {
		cfg->respond_max = 8 + (uint32_t)(w->seed % 57);
		cfg->reads_max = 1 + (uint32_t)(w->seed % 64);
	}
	/* A run table full of leader changes stops elections until a purge
	 * frees runs: small tables only sometimes. */
	if (w->seed % 10 == 3)
		cfg->leader_runs_max = 64 + (uint32_t)(w->seed % 64);
	/* Snapshots every few dozen entries (a tenth of the seeds only when the
	 * nemesis asks), purges that keep a few entries or none. */
	cfg->snapshot_logs_since_last = w->seed % 10 == 7 ? 0 : 10 + w->seed / 3 % 60;
	cfg->max_in_snapshot_log_to_keep = w->seed / 5 % 3 == 0 ? 0 : w->seed / 11 % 40;
	cfg->purge_batch_size = 1 + w->seed / 13 % 8;
	cfg->snapshot_timeout_ms = 1000;
	/* Every core allocates through this hook: after creation it must not. */
	cfg->alloc.alloc = sim_core_alloc;
	cfg->alloc.free = sim_core_free;
	cfg->alloc.ctx = &node(w, id)->core_allocs;
}

static void process(struct sim_world *w, struct sim_node *n);

static void schedule_tick(struct sim_world *w, struct sim_node *n)
{
	if (!n->up || n->st.next_timer_ns == UINT64_MAX)
		return;
	int64_t t = (int64_t)n->st.next_timer_ns - n->clock_offset;
	uint64_t when = t < (int64_t)w->now ? w->now : (uint64_t)t;
	when += rnd_below(w, 50 * US);
	if (n->tick_at != 0 && n->tick_at <= when)
		return;
	n->tick_at = when;
	at(w, when, EV_TICK, n->id, 0);
}

static void node_start(struct sim_world *w, struct sim_node *n)
{
	struct lcr_core_config cfg;
	struct lcr_core_restore rs = { .vote = n->disk.vote };
	int err;

	/* The runtime's recovery: a snapshot whose last entry the log lacks (a
	 * follower's commit runs ahead of its own flushes, so it may build one
	 * past its durable log) replaces the log. */
	struct lcr_log_id slast = n->disk.snap.meta.last;
	if (slast.index > 0 && (slast.index > n->disk.log.n ||
				!lcr_log_id_eq(n->disk.log.e[slast.index - 1].id, slast))) {
		log_reset(w, &n->disk.log, slast);
		n->disk.purged = slast;
	}
	rs.purged = n->disk.purged;
	rs.snapshot = n->disk.snap.meta;
	if (n->disk.snap.meta.last.index > 0)
		rs.membership = n->disk.snap.membership;
	fill_config(w, &cfg, n->id);
	n->initial_membership = cfg.membership;
	n->core_allocs = 0;
	if ((err = lcr_core_new(&n->core, &cfg, &rs)) < 0) {
		fprintf(stderr, "lcraft-sim: core: %s\n", lcr_strerror(err));
		exit(2);
	}
	n->core_allocs_at_start = n->core_allocs;
	lcr_core_plant_bugs(n->core, w->bugs);
	for (uint64_t i = n->disk.purged.index; i < n->disk.log.n; i++) {
		const struct sim_entry *e = &n->disk.log.e[i];
		struct lcr_membership ms;
		if (lcr_core_load_log_id(n->core, e->id) < 0)
			sim_violation(w, "recovery", "node %u: log id at %llu does not load", n->id,
				      (unsigned long long)(i + 1));
		/* What the runtime does at open: membership entries too. */
		if (e->type == LCR_ENTRY_MEMBERSHIP &&
		    (lcr_membership_decode(e->m, e->len, &ms) < 0 ||
		     lcr_core_load_membership(n->core, e->id, &ms) < 0))
			sim_violation(w, "recovery",
				      "node %u: membership entry at %llu does not load", n->id,
				      (unsigned long long)(i + 1));
	}
	log_copy(&n->mem, &n->disk.log);
	n->mem_purged = n->disk.purged;
	/* The state machine starts from the newest snapshot. */
	n->snap = n->disk.snap;
	memcpy(n->kv, n->snap.kv, sizeof(n->kv));
	n->sm_hash = n->snap.sm_hash;
	n->applied = n->snap.meta.last;
	n->build_seq = 0;
	memset(n->snap_cancel, 0, sizeof(n->snap_cancel));
	n->n_writes = 0;
	n->n_reads = 0;
	n->up = true;
	n->tick_at = 0;
	n->st_valid = false;
	n->role = 0;
	sim_check_restart(w, n);
	if ((err = lcr_core_start(n->core, sim_node_time(w, n))) < 0)
		sim_violation(w, "recovery", "node %u does not start: %s", n->id,
			      lcr_strerror(err));
	process(w, n);
	/* A scenario choosing who elects when keeps a restarted node's timer off. */
	if (w->scen.no_elect)
		sim_set_elect(w, n, false);
}

void sim_node_restart(struct sim_world *w, struct sim_node *n)
{
	if (!n->up) {
		sim_trace(w, n->id, "restart");
		node_start(w, n);
	}
}

static void disk_crash(struct sim_world *w, struct sim_node *n);
static void node_crash(struct sim_world *w, struct sim_node *n, uint64_t restart_after);

void sim_node_crash(struct sim_world *w, struct sim_node *n, uint64_t restart_after)
{
	node_crash(w, n, restart_after);
}

static void node_crash(struct sim_world *w, struct sim_node *n, uint64_t restart_after)
{
	if (!n->up)
		return;
	sim_trace(w, n->id, "crash (restart in %llu ms)", (unsigned long long)(restart_after / MS));
	w->crashes++;
	n->up = false;
	n->incarnation++;
	lcr_core_free(n->core);
	n->core = NULL;
	disk_crash(w, n);
	n->mem.n = 0;
	n->paused_until = 0;
	at(w, w->now + restart_after, EV_RESTART, n->id, 0);
}

/* ---- disk ------------------------------------------------------------------- */

static uint64_t disk_latency(struct sim_world *w, struct sim_disk *d)
{
	uint64_t l = 100 * US + rnd_below(w, 1400 * US);
	if (w->now < d->slow_until)
		l *= 10 + rnd_below(w, 40);
	return l;
}

static void disk_schedule(struct sim_world *w, struct sim_node *n)
{
	struct sim_disk *d = &n->disk;
	uint64_t start = d->busy_until > w->now ? d->busy_until : w->now;
	d->busy_until = start + disk_latency(w, d);
	at(w, d->busy_until, EV_DISK, n->id, 0);
}

static void disk_submit(struct sim_world *w, struct sim_node *n, const struct sim_op *op)
{
	struct sim_disk *d = &n->disk;

	if (d->n_pending == d->cap_pending) {
		d->cap_pending = d->cap_pending ? d->cap_pending * 2 : 64;
		d->pending = xrealloc(d->pending, d->cap_pending * sizeof(*d->pending));
	}
	d->pending[d->n_pending++] = *op;
	if (d->n_pending == 1)
		disk_schedule(w, n);
}

/* Make one op durable: `upto` entries of an append (all of them normally). */
static void disk_apply(struct sim_world *w, struct sim_disk *d, const struct sim_op *op,
		       uint32_t upto)
{
	switch (op->kind) {
	case SIM_DISK_VOTE:
		d->vote = op->vote;
		break;
	case SIM_DISK_TRUNCATE:
		if (d->log.n > op->after)
			d->log.n = op->after;
		break;
	case SIM_DISK_INSTALL:
		if (op->snap.meta.last.index > d->snap.meta.last.index)
			d->snap = op->snap;
		if (!op->keep)
			log_reset(w, &d->log, op->snap.meta.last);
		if (op->snap.meta.last.index > d->purged.index)
			d->purged = op->snap.meta.last;
		break;
	case SIM_DISK_APPEND:
		for (uint32_t i = 0; i < upto; i++) {
			if (op->entries[i].id.index != d->log.n + 1)
				abort(); /* the core appends only after its last entry */
			log_push(&d->log, &op->entries[i]);
		}
		break;
	}
}

static void disk_pop(struct sim_disk *d)
{
	free(d->pending[0].entries);
	memmove(d->pending, d->pending + 1, (d->n_pending - 1) * sizeof(*d->pending));
	d->n_pending--;
}

/*
 * A crash keeps the durable state plus any prefix of the writes still in
 * flight (the page cache may have written them back), and may tear the last
 * of those: recovery's checksums then keep a prefix of its entries.
 */
static void disk_crash(struct sim_world *w, struct sim_node *n)
{
	struct sim_disk *d = &n->disk;
	uint32_t keep = (uint32_t)rnd_below(w, d->n_pending + 1);

	for (uint32_t i = 0; i < keep; i++)
		disk_apply(w, d, &d->pending[i], d->pending[i].n);
	if (keep < d->n_pending && d->pending[keep].kind == SIM_DISK_APPEND && chance(w, 50))
		disk_apply(w, d, &d->pending[keep], (uint32_t)rnd_below(w, d->pending[keep].n + 1));
	while (d->n_pending)
		disk_pop(d);
	d->busy_until = w->now;
	d->fail_next = false;
}

static void on_disk(struct sim_world *w, struct sim_node *n, const struct sim_event *ev)
{
	struct sim_disk *d = &n->disk;

	if (ev->inc != n->incarnation || !n->up || d->n_pending == 0)
		return;
	if (d->fail_next) {
		/* fsync failed: the replica must stop; its process exits and the
		 * restart finds whatever reached the disk. */
		d->fail_next = false;
		sim_trace(w, n->id, "fsync fails at io %llu",
			  (unsigned long long)d->pending[0].io.seq);
		struct lcr_event fe = { .type = LCR_EV_IO_FAILED,
					.now_ns = sim_node_time(w, n),
					.io_error = -EIO };
		lcr_core_step(n->core, &fe);
		process(w, n);
		node_crash(w, n, 20 * MS + rnd_below(w, 300 * MS));
		return;
	}
	struct sim_op op = d->pending[0];
	disk_apply(w, d, &op, op.n);
	disk_pop(d);
	if (d->n_pending)
		disk_schedule(w, n);
	struct lcr_event fe = { .type = LCR_EV_IO_FLUSHED,
				.now_ns = sim_node_time(w, n),
				.io = op.io };
	lcr_core_step(n->core, &fe);
	process(w, n);
}

/* ---- network ---------------------------------------------------------------- */

static void net_send(struct sim_world *w, struct sim_msg *sm)
{
	uint32_t from = sm->m.from, to = sm->m.to;
	int copies = 1;

	if (to < 1 || to > w->par.nodes || w->blocked[from - 1][to - 1] || chance(w, w->loss_pct) ||
	    sim_scenario_drops(w, &sm->m, sm->entries)) {
		debug_msg(w, &sm->m, "lost");
		/* Sometimes the transport notices and tells the sender (never of a
		 * heartbeat: net.c keeps those failures from the core). */
		if (((sm->m.type == LCR_MSG_APPEND_REQ &&
		      (sm->m.append_req.n_entries > 0 || sm->m.append_req.inflight_id > 0)) ||
		     sm->m.type == LCR_MSG_SNAPSHOT_REQ) &&
		    w->blocked[from - 1][to - 1] && chance(w, 30)) {
			struct sim_event ev = { .at = w->now + 1 * MS + rnd_below(w, 50 * MS),
						.kind = EV_NET_ERROR,
						.node = from,
						.inc = w->nodes[from - 1].incarnation,
						.a = 1 + rnd_below(w, 5), /* every RPCError kind */
						.msg = sm };
			push(w, ev);
			return;
		}
		free(sm->entries);
		free(sm);
		return;
	}
	if (sim_scenario_holds(w, &sm->m)) {
		debug_msg(w, &sm->m, "held");
		free(sm->entries);
		free(sm);
		return;
	}
	if (chance(w, w->dup_pct))
		copies = 2;
	/* A snapshot's answer is duplicated now and then, the copy arriving
	 * seconds later: after its leader lost leadership, and maybe won it again
	 * (an answer to an older leadership must count for nothing). */
	bool late_copy = sm->m.type == LCR_MSG_SNAPSHOT_RESP && chance(w, 40);
	if (late_copy)
		copies = 2;
	for (int i = 0; i < copies; i++) {
		struct sim_msg *m = sm;
		if (i == 1) {
			m = xmalloc(sizeof(*m));
			*m = *sm;
			m->entries = NULL;
			uint32_t ne =
				sm->m.type == LCR_MSG_APPEND_REQ ? sm->m.append_req.n_entries : 0;
			if (ne) {
				m->entries = xmalloc(ne * sizeof(*m->entries));
				memcpy(m->entries, sm->entries, ne * sizeof(*m->entries));
			}
		}
		uint64_t delay = w->delay_min + rnd_below(w, w->delay_jitter + 1);
		/* Now and then a message arrives very late: after elections and
		 * leadership changes it was not part of. */
		if (w->late_pct && chance(w, w->late_pct))
			delay += 50 * MS + rnd_below(w, 600 * MS);
		/* A snapshot takes a while to move: leaders change meanwhile. */
		if (sm->m.type == LCR_MSG_SNAPSHOT_REQ)
			delay += 2 * MS + rnd_below(w, 60 * MS);
		/* ... and its answer may reach a leadership that ended and the next
		 * one of the same node: it must count for neither. */
		if (sm->m.type == LCR_MSG_SNAPSHOT_RESP && chance(w, 25))
			delay += 300 * MS + rnd_below(w, 900 * MS);
		if (late_copy && i == 1)
			delay += 1000 * MS + rnd_below(w, 4000 * MS);
		/* A few arrive later still: past two elections (each at least an
		 * election timeout after a lease, 450 ms and more). */
		if (w->late_pct && chance(w, 1))
			delay += 900 * MS + rnd_below(w, 1500 * MS);
		/* Leadership transfers arrive late more often: after the leadership
		 * they came from is over (a waiver only its leader may give). The
		 * stale-transfer scenario delays them itself. */
		if ((sm->m.type == LCR_MSG_TRANSFER_LEADER ||
		     (sm->m.type == LCR_MSG_VOTE_REQ && sm->m.vote_req.leadership_transfer)) &&
		    chance(w, 25) && w->scen.kind != SIM_SCEN_STALE_TRANSFER)
			delay += 300 * MS + rnd_below(w, 900 * MS);
		struct sim_event ev = {
			.at = w->now + delay, .kind = EV_DELIVER, .node = to, .msg = m
		};
		push(w, ev);
	}
}

static void on_deliver(struct sim_world *w, struct sim_event *ev)
{
	struct sim_msg *sm = ev->msg;
	struct sim_node *n = node(w, sm->m.to);
	struct lcr_entry ents[512];
	struct lcr_entry *e = ents;
	uint32_t ne = 0;

	if (!n->up) {
		free(sm->entries);
		free(sm);
		return;
	}
	if (w->now < n->paused_until) {
		ev->at = n->paused_until;
		push(w, *ev);
		return;
	}
	if (sm->m.type == LCR_MSG_APPEND_REQ) {
		ne = sm->m.append_req.n_entries;
		if (ne > 512)
			e = xmalloc(ne * sizeof(*e));
		for (uint32_t i = 0; i < ne; i++) {
			e[i].id = sm->entries[i].id;
			e[i].type = sm->entries[i].type;
			e[i].len = sm->entries[i].len;
			e[i].data = &sm->entries[i].p;
		}
		sm->m.append_req.entries = e;
	}
	if (sm->m.type == LCR_MSG_SNAPSHOT_REQ && !sm->forged) {
		/* A transfer ends with its sender's process or its cancel. */
		struct sim_node *from = node(w, sm->m.from);
		if (from->incarnation != sm->inc ||
		    from->snap_cancel[sm->m.to - 1] == sm->m.snapshot_req.stream_id) {
			debug_msg(w, &sm->m, "cancelled");
			free(sm->entries);
			free(sm);
			return;
		}
		n->rx = sm->snap;
		sm->m.snapshot_req.data = ++n->rx_handle;
		sm->m.snapshot_req.size = sizeof(sm->snap);
		sm->m.snapshot_req.membership = &sm->snap.membership;
	}
	debug_msg(w, &sm->m, sm->forged ? "recv forged" : "recv");
	if (!sm->forged)
		sim_check_received(w, n, &sm->m);
	struct lcr_core_status before;
	bool stale = false;
	if (sm->forged || sm->m.type == LCR_MSG_APPEND_RESP ||
	    sm->m.type == LCR_MSG_SNAPSHOT_RESP) {
		lcr_core_status(n->core, &before);
		stale = !sm->forged && sim_response_stale(&before, &sm->m);
	}
	struct lcr_event le = { .type = LCR_EV_MSG, .now_ns = sim_node_time(w, n), .msg = &sm->m };
	lcr_core_step(n->core, &le);
	if (sm->forged)
		sim_check_forged(w, n, &before, &sm->m);
	else if (stale)
		sim_check_stale_response(w, n, &before, &sm->m);
	process(w, n);
	if (e != ents)
		free(e);
	free(sm->entries);
	free(sm);
}

/* ---- clients and the state machine -------------------------------------------- */

static struct lcr_linz_op *hist_add(struct sim_world *w)
{
	if (w->n_hist == w->cap_hist) {
		w->cap_hist = w->cap_hist ? w->cap_hist * 2 : 1024;
		w->hist = xrealloc(w->hist, w->cap_hist * sizeof(*w->hist));
	}
	struct lcr_linz_op *op = &w->hist[w->n_hist++];
	memset(op, 0, sizeof(*op));
	return op;
}

static void client_next(struct sim_world *w, struct sim_client *cl)
{
	cl->busy = false;
	cl->op_seq = 0;
	at(w, w->now + w->par.op_gap_ns / 2 + rnd_below(w, w->par.op_gap_ns), EV_CLIENT, 0, cl->id);
}

/* The client's current operation finished at a node. */
static void client_done(struct sim_world *w, uint32_t client, uint64_t op_seq)
{
	struct sim_client *cl = &w->clients[client];
	if (cl->busy && cl->op_seq == op_seq)
		client_next(w, cl);
}

static void wait_add(struct sim_wait **arr, uint32_t *n, uint32_t *cap, struct sim_wait wt)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		*arr = xrealloc(*arr, *cap * sizeof(**arr));
	}
	(*arr)[(*n)++] = wt;
}

static void apply_entry(struct sim_world *w, struct sim_node *n, const struct sim_entry *e)
{
	bool ok = true;

	if (e->type == LCR_ENTRY_NORMAL) {
		const struct sim_payload *p = &e->p;
		if (p->key >= SIM_KEYS)
			abort();
		if (p->op == SIM_OP_PUT) {
			n->kv[p->key] = p->value;
		} else if (n->kv[p->key] == p->expect) {
			n->kv[p->key] = p->value;
		} else {
			ok = false;
		}
	}
	n->sm_hash = mix(n->sm_hash, sim_entry_hash(e));
	n->applied = e->id;
	sim_check_applied(w, n, e->id.index);

	/* Answer the clients whose writes this was, or whose writes it displaced. */
	for (uint32_t i = 0; i < n->n_writes;) {
		struct sim_wait *wt = &n->writes[i];
		if (wt->id.index != e->id.index) {
			i++;
			continue;
		}
		struct lcr_linz_op *h = &w->hist[wt->hist];
		if (lcr_log_id_eq(wt->id, e->id)) {
			h->complete_ns = w->now;
			if (h->kind == LCR_LINZ_CAS)
				h->cas_ok = ok;
			w->writes_ok++;
		} else {
			/* The proposer's own log replaced its entry: a leader never
			 * truncates its own entries while leading, so this one was
			 * replaced by a newer leader and can never commit. */
			h->kind = 0;
		}
		client_done(w, wt->client, wt->op_seq);
		n->writes[i] = n->writes[--n->n_writes];
	}
}

static void serve_reads(struct sim_world *w, struct sim_node *n, uint64_t first, uint64_t last,
			bool ok)
{
	for (uint32_t i = 0; i < n->n_reads;) {
		struct sim_wait *wt = &n->reads[i];
		if (wt->read_id < first || wt->read_id > last) {
			i++;
			continue;
		}
		struct lcr_linz_op *h = &w->hist[wt->hist];

		if (ok) {
			sim_check_read_served(w, n, wt);
			h->value = n->kv[h->key];
			h->complete_ns = w->now;
			w->reads_ok++;
			w->follower_reads_ok += wt->via_leader;
		} else {
			h->kind = 0;
		}
		client_done(w, wt->client, wt->op_seq);
		n->reads[i] = n->reads[--n->n_reads];
	}
}

/* ---- running core commands -------------------------------------------------------- */

static void do_append(struct sim_world *w, struct sim_node *n, const struct lcr_cmd *cmd)
{
	struct sim_op op = { .kind = SIM_DISK_APPEND, .io = cmd->append.io, .n = cmd->append.n };
	uint64_t first = n->mem.n + 1;

	op.entries = xmalloc(op.n * sizeof(*op.entries));
	for (uint32_t i = 0; i < op.n; i++) {
		const struct lcr_entry *le = &cmd->append.entries[i];
		struct sim_entry *e = &op.entries[i];
		memset(e, 0, sizeof(*e));
		e->id = le->id;
		e->type = le->type;
		e->len = le->len;
		if (le->type == LCR_ENTRY_NORMAL) {
			if (le->len != sizeof(e->p))
				abort();
			memcpy(&e->p, le->data, sizeof(e->p));
		} else if (le->type == LCR_ENTRY_MEMBERSHIP) {
			if (le->len > sizeof(e->m))
				abort();
			memcpy(e->m, le->data, le->len);
		}
		log_push(&n->mem, e);
		op.entries[i].prefix_hash = n->mem.e[n->mem.n - 1].prefix_hash;
	}
	sim_check_appended(w, n, first, n->mem.n);
	disk_submit(w, n, &op);
}

static void do_send(struct sim_world *w, struct sim_node *n, const struct lcr_msg *m)
{
	struct sim_msg *sm = xmalloc(sizeof(*sm));

	sm->m = *m;
	sm->entries = NULL;
	sm->forged = false;
	if (m->type == LCR_MSG_APPEND_REQ && m->append_req.n_entries) {
		uint32_t ne = m->append_req.n_entries;
		uint64_t first = m->append_req.prev.index + 1;
		if (first + ne - 1 > n->mem.n)
			sim_violation(w, "driver", "node %u asked to send %llu..%llu, has %llu",
				      n->id, (unsigned long long)first,
				      (unsigned long long)(first + ne - 1),
				      (unsigned long long)n->mem.n);
		if (first <= n->mem_purged.index)
			sim_violation(w, "purged-sent",
				      "node %u sends entries from %llu, purged up to %llu", n->id,
				      (unsigned long long)first,
				      (unsigned long long)n->mem_purged.index);
		sm->entries = xmalloc(ne * sizeof(*sm->entries));
		memcpy(sm->entries, &n->mem.e[first - 1], ne * sizeof(*sm->entries));
	}
	sm->inc = n->incarnation;
	memset(&sm->snap, 0, sizeof(sm->snap));
	if (m->type == LCR_MSG_SNAPSHOT_REQ) {
		if (!lcr_log_id_eq(n->snap.meta.last, m->snapshot_req.meta.last) ||
		    n->snap.meta.id != m->snapshot_req.meta.id)
			sim_violation(w, "driver", "node %u sends snapshot %llu, holds %llu", n->id,
				      (unsigned long long)m->snapshot_req.meta.last.index,
				      (unsigned long long)n->snap.meta.last.index);
		sm->snap = n->snap;
		if (m->snapshot_req.membership)
			sm->snap.membership = *m->snapshot_req.membership;
	}
	if (m->type == LCR_MSG_APPEND_REQ)
		sm->m.append_req.entries = NULL;
	if (m->type == LCR_MSG_VOTE_RESP && m->vote_resp.granted && !m->vote_resp.pre_vote &&
	    lcr_vote_cmp(m->vote_resp.vote, n->max_granted) > 0)
		n->max_granted = m->vote_resp.vote;
	/* A candidate asks for votes only on a vote it cannot lose in a crash. */
	if (m->type == LCR_MSG_VOTE_REQ && !m->vote_req.pre_vote &&
	    lcr_leader_id_cmp(n->disk.vote.lid, m->vote_req.vote.lid) < 0)
		sim_violation(w, "vote-durability",
			      "node %u asks for votes for term %llu before its vote is on disk",
			      n->id, (unsigned long long)m->vote_req.vote.lid.term);
	sim_check_sent(w, n, m);
	net_send(w, sm);
}

/* Snapshot the state machine; the snapshot is durable a little later. */
static void do_build(struct sim_world *w, struct sim_node *n)
{
	struct sim_snap *b = &n->building;

	memset(b, 0, sizeof(*b));
	b->meta.last = n->applied;
	b->meta.id = ((uint64_t)n->id << 40) | ++n->build_seq;
	memcpy(b->kv, n->kv, sizeof(b->kv));
	b->sm_hash = n->sm_hash;
	at(w, w->now + 1 * MS + rnd_below(w, 30 * MS), EV_SNAP_BUILT, n->id, n->build_seq);
}

static void on_snap_built(struct sim_world *w, struct sim_node *n, const struct sim_event *ev)
{
	if (!n->up || ev->inc != n->incarnation || ev->a != n->build_seq)
		return;
	if (w->now < n->paused_until) {
		struct sim_event later = *ev;
		later.at = n->paused_until;
		push(w, later);
		return;
	}
	struct sim_snap *b = &n->building;
	w->snapshots++;
	sim_trace(w, n->id, "snapshot built at %llu", (unsigned long long)b->meta.last.index);
	struct lcr_event ev2 = { .type = LCR_EV_SNAPSHOT_BUILT, .now_ns = sim_node_time(w, n) };
	ev2.snapshot.meta = b->meta;
	lcr_core_step(n->core, &ev2);
	/* The core names the membership at its last entry, as the runtime
	 * writes it into the file. */
	struct lcr_core_status st;
	lcr_core_status(n->core, &st);
	if (lcr_log_id_eq(st.snapshot.last, b->meta.last) && st.snapshot.id == b->meta.id) {
		b->membership = st.snapshot_membership;
		if (b->meta.last.index > n->disk.snap.meta.last.index)
			n->disk.snap = *b;
		if (b->meta.last.index > n->snap.meta.last.index)
			n->snap = *b;
	}
	process(w, n);
}

/*
 * Purge: only entries a durable snapshot of this node covers, all of them
 * committed; on a leader, none that a follower's requests in flight carry.
 */
static void do_purge(struct sim_world *w, struct sim_node *n, struct lcr_log_id upto)
{
	struct lcr_core_status st;

	if (upto.index > n->disk.snap.meta.last.index) {
		sim_violation(w, "purge-snapshot",
			      "node %u purges up to %llu, its durable snapshot ends at %llu", n->id,
			      (unsigned long long)upto.index,
			      (unsigned long long)n->disk.snap.meta.last.index);
		return;
	}
	if (upto.index > w->n_committed || !lcr_log_id_eq(w->committed[upto.index - 1].id, upto)) {
		sim_violation(w, "purge-snapshot", "node %u purges up to %llu, not committed there",
			      n->id, (unsigned long long)upto.index);
		return;
	}
	lcr_core_status(n->core, &st);
	for (uint32_t i = 0; i < st.n_nodes && st.role == LCR_ROLE_LEADER; i++) {
		if (st.nodes[i] == n->id || st.sending_snapshot[i])
			continue;
		if (st.inflight[i] > 0 && st.inflight_from[i] < upto.index) {
			sim_violation(w, "purge-inflight",
				      "leader %u purges up to %llu while its requests to %u carry "
				      "%llu..%llu",
				      n->id, (unsigned long long)upto.index, st.nodes[i],
				      (unsigned long long)st.inflight_from[i] + 1,
				      (unsigned long long)st.sent[i]);
			return;
		}
	}
	if (upto.index > n->disk.purged.index)
		n->disk.purged = upto;
	if (upto.index > n->mem_purged.index)
		n->mem_purged = upto;
	w->purges++;
}

/* Install the snapshot the last SNAPSHOT_REQ delivered. */
static void do_install(struct sim_world *w, struct sim_node *n, const struct lcr_cmd *cmd)
{
	struct sim_snap s = n->rx;
	struct lcr_log_id last = cmd->install.meta.last;

	if (cmd->install.data != n->rx_handle || n->rx_handle == 0 ||
	    !lcr_log_id_eq(s.meta.last, last)) {
		sim_violation(w, "driver", "node %u installs a snapshot it was not handed", n->id);
		return;
	}
	/* The state it holds is the one every node reached at that entry. */
	const struct sim_committed *c =
		last.index <= w->n_committed ? &w->committed[last.index - 1] : NULL;
	if (!c || !lcr_log_id_eq(c->id, last) || (c->sm_hash && c->sm_hash != s.sm_hash)) {
		sim_violation(
			w, "snapshot-state",
			"node %u installs a snapshot at %llu unlike the committed state there",
			n->id, (unsigned long long)last.index);
		return;
	}
	sim_trace(w, n->id, "install snapshot at %llu%s", (unsigned long long)last.index,
		  cmd->install.keep_log ? " (log kept)" : "");
	memcpy(n->kv, s.kv, sizeof(n->kv));
	n->sm_hash = s.sm_hash;
	n->applied = last;
	if (last.index > n->snap.meta.last.index)
		n->snap = s;
	if (!cmd->install.keep_log)
		log_reset(w, &n->mem, last);
	if (last.index > n->mem_purged.index)
		n->mem_purged = last;
	struct sim_op op;
	memset(&op, 0, sizeof(op));
	op.kind = SIM_DISK_INSTALL;
	op.io = cmd->install.io;
	op.snap = s;
	op.keep = cmd->install.keep_log;
	disk_submit(w, n, &op);
	w->installs++;
	/* An operator's purge while the install is on its way to disk. */
	if (chance(w, 30))
		at(w, w->now + rnd_below(w, 300 * US), EV_PURGE, n->id, last.index);
}

static const char *role_name(uint32_t r)
{
	static const char *names[] = {
		"?", "follower", "candidate", "leader", "learner", "stopped"
	};
	return r <= 5 ? names[r] : "?";
}

/* Run the commands of the node's last core call, then check the invariants. */
static void process(struct sim_world *w, struct sim_node *n)
{
	uint32_t nc;
	const struct lcr_cmd *cmds = lcr_core_commands(n->core, &nc);
	bool applied = false;

	for (uint32_t i = 0; i < nc && !w->violated; i++) {
		const struct lcr_cmd *cmd = &cmds[i];
		struct sim_op op;
		switch (cmd->type) {
		case LCR_CMD_SAVE_VOTE:
			memset(&op, 0, sizeof(op));
			op.kind = SIM_DISK_VOTE;
			op.io = cmd->save_vote.io;
			op.vote = cmd->save_vote.vote;
			disk_submit(w, n, &op);
			break;
		case LCR_CMD_APPEND:
			do_append(w, n, cmd);
			break;
		case LCR_CMD_TRUNCATE:
			memset(&op, 0, sizeof(op));
			op.kind = SIM_DISK_TRUNCATE;
			op.io = cmd->truncate.io;
			op.after = cmd->truncate.after.index;
			if (n->mem.n > op.after)
				n->mem.n = op.after;
			disk_submit(w, n, &op);
			break;
		case LCR_CMD_SEND:
			do_send(w, n, &cmd->send);
			break;
		case LCR_CMD_APPLY:
			for (uint64_t x = cmd->apply.first.index + 1; x <= cmd->apply.last.index;
			     x++)
				apply_entry(w, n, &n->mem.e[x - 1]);
			applied = true;
			break;
		case LCR_CMD_READS_READY:
			serve_reads(w, n, 0, cmd->reads_ready.read_id, true);
			break;
		case LCR_CMD_READS_FAILED:
			serve_reads(w, n, cmd->reads_failed.first, cmd->reads_failed.last, false);
			break;
		case LCR_CMD_BUILD_SNAPSHOT:
			do_build(w, n);
			break;
		case LCR_CMD_PURGE:
			do_purge(w, n, cmd->purge.upto);
			break;
		case LCR_CMD_INSTALL_SNAPSHOT:
			do_install(w, n, cmd);
			applied = true;
			break;
		case LCR_CMD_CANCEL_SNAPSHOT:
			if (cmd->cancel.target >= 1 && cmd->cancel.target <= SIM_NODES_MAX)
				n->snap_cancel[cmd->cancel.target - 1] = cmd->cancel.stream_id;
			break;
		case LCR_CMD_ROLE:
			sim_trace(w, n->id, "%s, leader %u, vote %llu-%u%s",
				  role_name(cmd->role.role), cmd->role.leader,
				  (unsigned long long)cmd->role.vote.lid.term,
				  cmd->role.vote.lid.node, cmd->role.vote.committed ? "c" : "");
			if (cmd->role.role == LCR_ROLE_LEADER)
				w->elections++;
			break;
		}
	}
	sim_check_node(w, n);
	if (applied && n->up && !w->violated) {
		struct lcr_event ev = { .type = LCR_EV_APPLIED,
					.now_ns = sim_node_time(w, n),
					.applied = n->applied };
		lcr_core_step(n->core, &ev);
		process(w, n);
		return;
	}
	schedule_tick(w, n);
}

/* ---- client operations ------------------------------------------------------------- */

static void client_retarget(struct sim_world *w, struct sim_client *cl, uint32_t hint)
{
	if (cl->pinned)
		cl->target = cl->pinned;
	else
		cl->target = hint ? hint : (uint32_t)(1 + rnd_below(w, w->par.nodes));
}

static void on_client(struct sim_world *w, uint32_t id)
{
	struct sim_client *cl = &w->clients[id];
	struct sim_node *n = node(w, cl->target);
	struct lcr_core_status st;
	uint64_t key = rnd_below(w, SIM_KEYS);
	uint32_t r = (uint32_t)rnd_below(w, 100);
	/* The APPEND command points at these until process() has run. */
	struct sim_payload p;
	struct lcr_entry e;
	int rc;

	if (cl->busy)
		return;
	if (!n->up || w->now < n->paused_until) {
		/* Connection refused or no answer: nothing was invoked. */
		client_retarget(w, cl, 0);
		at(w, w->now + 1 * MS, EV_CLIENT, 0, id);
		return;
	}
	uint64_t t = sim_node_time(w, n);
	cl->op_seq++;
	if (r < 45 && !cl->reads_only) {
		memset(&p, 0, sizeof(p));
		p.op = r < 35 ? SIM_OP_PUT : SIM_OP_CAS;
		p.client = id;
		p.key = key;
		p.value = ((uint64_t)(id + 1) << 40) | ++cl->next_value;
		p.op_id = cl->op_seq;
		if (p.op == SIM_OP_CAS) {
			/* Expect what this node last applied: often right, sometimes not. */
			p.expect = n->kv[key];
		}
		memset(&e, 0, sizeof(e));
		e.type = LCR_ENTRY_NORMAL;
		e.len = sizeof(p);
		e.data = &p;
		rc = lcr_core_propose(n->core, t, &e, 1);
		if (rc == 0) {
			struct lcr_linz_op *h = hist_add(w);
			h->kind = p.op == SIM_OP_PUT ? LCR_LINZ_WRITE : LCR_LINZ_CAS;
			h->client = id;
			h->key = key;
			h->value = p.value;
			h->expect = p.expect;
			h->invoke_ns = w->now;
			h->complete_ns = LCR_LINZ_PENDING;
			cl->hist = w->n_hist - 1;
			struct sim_wait wt = { .client = id,
					       .op_seq = cl->op_seq,
					       .id = e.id,
					       .hist = w->n_hist - 1 };
			wait_add(&n->writes, &n->n_writes, &n->cap_writes, wt);
		}
	} else {
		uint32_t policy =
			w->par.lease_reads && chance(w, 50) ? LCR_READ_LEASE : LCR_READ_INDEX;
		uint64_t read_id;
		/* Half the ReadIndex reads of these seeds go to any node: a
		 * follower asks its leader for the read index. */
		if (w->par.follower_reads && policy == LCR_READ_INDEX && !cl->pinned &&
		    chance(w, 50)) {
			struct sim_node *f = node(w, (uint32_t)(1 + rnd_below(w, w->par.nodes)));
			if (f->up && w->now >= f->paused_until) {
				n = f;
				t = sim_node_time(w, n);
			}
		}
		uint64_t need_seq = n->sent_seq;
		lcr_core_status(n->core, &st);
		bool via_leader = st.role != LCR_ROLE_LEADER;
		if (!lcr_leader_id_eq(n->sent_lid, st.vote.lid))
			need_seq = 0;
		rc = lcr_core_read(n->core, t, policy, &read_id);
		if (rc == 0) {
			struct lcr_linz_op *h = hist_add(w);
			h->kind = LCR_LINZ_READ;
			h->client = id;
			h->key = key;
			h->invoke_ns = w->now;
			h->complete_ns = LCR_LINZ_PENDING;
			cl->hist = w->n_hist - 1;
			struct sim_wait wt = { .client = id,
					       .op_seq = cl->op_seq,
					       .read_id = read_id,
					       .hist = w->n_hist - 1,
					       .need_seq = need_seq,
					       .lease = policy == LCR_READ_LEASE,
					       .via_leader = via_leader,
					       .commit_floor = w->n_committed };
			sim_check_read_taken(w, n, &wt);
			wait_add(&n->reads, &n->n_reads, &n->cap_reads, wt);
		}
	}
	if (rc != 0) {
		lcr_core_status(n->core, &st);
		client_retarget(w, cl, rc == -LCR_ENOTLEADER ? st.leader : 0);
		process(w, n);
		at(w, w->now + 1 * MS + rnd_below(w, 2 * MS), EV_CLIENT, 0, id);
		return;
	}
	cl->busy = true;
	at(w, w->now + 1000 * MS, EV_CLIENT_TIMEOUT, 0, ((uint64_t)cl->op_seq << 8) | id);
	process(w, n);
}

static void on_client_timeout(struct sim_world *w, uint64_t a)
{
	struct sim_client *cl = &w->clients[a & 0xff];
	uint64_t op_seq = a >> 8;

	if (!cl->busy || cl->op_seq != op_seq)
		return;
	/* The outcome stays unknown (a pending write may still commit). */
	w->ops_pending++;
	if (w->hist[cl->hist].kind == LCR_LINZ_READ)
		w->hist[cl->hist].kind = 0;
	client_retarget(w, cl, 0);
	client_next(w, cl);
}

/* ---- nemesis -------------------------------------------------------------------------- */

static uint32_t find_leader(struct sim_world *w)
{
	for (uint32_t i = 0; i < w->par.nodes; i++)
		if (w->nodes[i].up && w->nodes[i].role == LCR_ROLE_LEADER)
			return i + 1;
	return 0;
}

/*
 * No leader can come: every up voter whose log is as long as the longest
 * (only those can gather the votes) has a full run table (lcr_core_status
 * runs_full: it may not lead until entries are purged).
 */
static bool runs_exhausted(struct sim_world *w)
{
	struct lcr_log_id best = { { 0, 0 }, 0 };
	struct lcr_core_status st;
	bool any = false;
	for (uint32_t i = 0; i < w->par.nodes; i++) {
		if (!w->nodes[i].up)
			continue;
		lcr_core_status(w->nodes[i].core, &st);
		if (lcr_log_id_cmp(st.last, best) > 0)
			best = st.last;
	}
	for (uint32_t i = 0; i < w->par.nodes; i++) {
		if (!w->nodes[i].up)
			continue;
		lcr_core_status(w->nodes[i].core, &st);
		if (lcr_log_id_cmp(st.last, best) != 0)
			continue;
		if (!st.runs_full)
			return false;
		any = true;
	}
	return any;
}

static void heal_network(struct sim_world *w)
{
	memset(w->blocked, 0, sizeof(w->blocked));
}

static void isolate(struct sim_world *w, uint32_t id)
{
	for (uint32_t i = 0; i < w->par.nodes; i++) {
		if (i + 1 == id)
			continue;
		w->blocked[id - 1][i] = true;
		w->blocked[i][id - 1] = true;
	}
}

static void step_node_event(struct sim_world *w, struct sim_node *n, struct lcr_event *ev)
{
	ev->now_ns = sim_node_time(w, n);
	lcr_core_step(n->core, ev);
	process(w, n);
}

uint32_t sim_find_leader(struct sim_world *w)
{
	return find_leader(w);
}

void sim_step_event(struct sim_world *w, struct sim_node *n, struct lcr_event *ev)
{
	if (n->up)
		step_node_event(w, n, ev);
}

void sim_set_elect(struct sim_world *w, struct sim_node *n, bool on)
{
	struct lcr_event ev = { .type = LCR_EV_SET_TOGGLE };
	ev.toggle.toggle = LCR_TOGGLE_ELECT;
	ev.toggle.on = on;
	sim_step_event(w, n, &ev);
}

void sim_deliver(struct sim_world *w, const struct lcr_msg *m)
{
	struct sim_msg *sm;

	if (m->type == LCR_MSG_APPEND_REQ && m->append_req.n_entries)
		abort(); /* the copy would need the entries too */
	sm = xmalloc(sizeof(*sm));
	sm->m = *m;
	sm->entries = NULL;
	sm->forged = false;
	struct sim_event ev = { .at = w->now + w->delay_min + rnd_below(w, w->delay_jitter + 1),
				.kind = EV_DELIVER,
				.node = m->to,
				.msg = sm };
	push(w, ev);
}

void sim_propose(struct sim_world *w, struct sim_node *n)
{
	struct sim_payload p;
	struct lcr_entry e;

	if (!n->up)
		return;
	memset(&p, 0, sizeof(p));
	p.op = SIM_OP_PUT;
	p.client = SIM_CLIENTS_MAX;
	p.key = rnd_below(w, SIM_KEYS);
	p.value = ((uint64_t)(SIM_CLIENTS_MAX + 1) << 40) | ++w->propose_serial;
	memset(&e, 0, sizeof(e));
	e.type = LCR_ENTRY_NORMAL;
	e.len = sizeof(p);
	e.data = &p;
	if (lcr_core_propose(n->core, sim_node_time(w, n), &e, 1) == 0) {
		/* Its outcome stays unknown: it may commit or be overwritten. */
		struct lcr_linz_op *h = hist_add(w);
		h->kind = LCR_LINZ_WRITE;
		h->client = SIM_CLIENTS_MAX;
		h->key = p.key;
		h->value = p.value;
		h->invoke_ns = w->now;
		h->complete_ns = LCR_LINZ_PENDING;
	}
	process(w, n);
}

/*
 * A forger on the network sends well-formed messages no genuine peer could:
 * from a node outside the cluster (with a plausible term), or from a member
 * but with a term past LCR_TERM_JUMP_MAX above the receiver's (up to
 * 2^62 - 1), carrying entries, acks far ahead, stream ids at 2^64 - 1, read
 * index requests for leaderships no one holds and read indexes granted far
 * ahead.
 * The transport keeps strangers out by address; the core must refuse the
 * rest. Each must leave its receiver as it was (sim_check_forged).
 */
static void forge(struct sim_world *w, struct sim_node *v)
{
	struct lcr_core_status st;
	struct sim_msg *sm = xmalloc(sizeof(*sm));

	memset(sm, 0, sizeof(*sm));
	lcr_core_status(v->core, &st);
	sm->forged = true;
	/* Strangers only where replicas take no requests from unknown nodes
	 * (membership changes off): elsewhere the transport keeps them out. */
	bool stranger = chance(w, 40) && !w->par.churn;
	uint32_t from = stranger ? w->par.nodes + 1 + (uint32_t)rnd_below(w, 50)
				 : 1 + (uint32_t)rnd_below(w, w->par.nodes);
	if (from == v->id)
		from = v->id % w->par.nodes + 1;
	uint64_t term = st.vote.lid.term + 1 + rnd_below(w, 3);
	if (!stranger)
		term = chance(w, 30) ? LCR_NUMBER_MAX - 1
				     : st.vote.lid.term + LCR_TERM_JUMP_MAX + 1 +
					       rnd_below(w, 1ull << 40);
	struct lcr_vote vote = { { term, from }, true };
	struct lcr_log_id far = { { term, from }, st.last.index + 1 + rnd_below(w, 1000) };
	struct lcr_msg *m = &sm->m;
	m->from = from;
	m->to = v->id;
	switch (rnd_below(w, 7)) {
	case 5: /* a read index asked of us, for a leadership no one holds */
		m->type = LCR_MSG_READ_INDEX_REQ;
		m->read_index_req.vote = vote;
		m->read_index_req.read_id = rnd_below(w, 2) ? UINT64_MAX : rnd_below(w, 1000);
		break;
	case 6: /* a read index granted far ahead: a read served too early */
		m->type = LCR_MSG_READ_INDEX_RESP;
		m->read_index_resp.result = LCR_READ_INDEX_OK;
		m->read_index_resp.vote = vote;
		m->read_index_resp.read_id = rnd_below(w, 1000);
		m->read_index_resp.read_log_id = far;
		break;
	case 0:
		m->type = LCR_MSG_VOTE_REQ;
		m->vote_req.vote = (struct lcr_vote){ vote.lid, false };
		m->vote_req.last_log_id = far;
		m->vote_req.pre_vote = chance(w, 30);
		m->vote_req.leadership_transfer = chance(w, 30);
		m->vote_req.transfer_from = st.vote;
		break;
	case 1: { /* a "leader" with entries: a client's put */
		uint32_t ne = 1 + (uint32_t)rnd_below(w, 3);
		m->type = LCR_MSG_APPEND_REQ;
		m->append_req.vote = vote;
		m->append_req.prev = st.last;
		m->append_req.leader_commit = far;
		m->append_req.stream_id = UINT64_MAX;
		m->append_req.inflight_id = UINT64_MAX;
		m->append_req.n_entries = ne;
		sm->entries = xmalloc(ne * sizeof(*sm->entries));
		memset(sm->entries, 0, ne * sizeof(*sm->entries));
		for (uint32_t i = 0; i < ne; i++) {
			struct sim_entry *e = &sm->entries[i];
			e->id = (struct lcr_log_id){ vote.lid, st.last.index + 1 + i };
			e->type = LCR_ENTRY_NORMAL;
			e->len = sizeof(e->p);
			e->p.op = SIM_OP_PUT;
			e->p.key = rnd_below(w, 4);
			e->p.value = 0xf0f0f0f0f0f0ull + i;
		}
		break;
	}
	case 2: /* an ack for everything, far ahead */
		m->type = LCR_MSG_APPEND_RESP;
		m->append_resp.result = 1 + (uint32_t)rnd_below(w, 3);
		m->append_resp.vote = vote;
		m->append_resp.log_id = far;
		m->append_resp.stream_id = UINT64_MAX - rnd_below(w, 2);
		m->append_resp.inflight_id = UINT64_MAX;
		m->append_resp.send_seq = UINT64_MAX;
		break;
	case 3:
		m->type = LCR_MSG_VOTE_RESP;
		m->vote_resp.vote = vote;
		m->vote_resp.req_vote = st.vote;
		m->vote_resp.last_log_id = far;
		m->vote_resp.granted = true;
		break;
	default:
		m->type = LCR_MSG_TRANSFER_LEADER;
		m->transfer.from_leader = vote;
		m->transfer.to = v->id;
		m->transfer.last_log_id = far;
		break;
	}
	sim_trace(w, v->id, "forged %u from %s %u, term %llu", m->type,
		  stranger ? "stranger" : "member", from, (unsigned long long)term);
	struct sim_event ev = {
		.at = w->now + rnd_below(w, 2 * MS), .kind = EV_DELIVER, .node = v->id, .msg = sm
	};
	push(w, ev);
}

/*
 * A membership change at the leader: add a learner, promote one, demote or
 * remove a voter, or replace one voter by another node, keeping 3 voters at
 * least. The core refuses while a change is under way.
 */
static void change_membership(struct sim_world *w, struct sim_node *l)
{
	struct lcr_core_status st;
	struct lcr_membership t;
	struct lcr_log_id id;
	uint32_t outside[SIM_NODES_MAX], n_out = 0;

	lcr_core_status(l->core, &st);
	if (st.role != LCR_ROLE_LEADER || st.membership.n_configs != 1)
		return;
	t = st.membership;
	for (uint32_t i = 1; i <= w->par.nodes; i++)
		if (!lcr_membership_contains(&t, i))
			outside[n_out++] = i;
	uint32_t nv = t.configs[0].n, kind = (uint32_t)rnd_below(w, 5), added = 0;
	/* Node addresses: a client names the new node's and sometimes all
	 * the others' too; the core keeps those of the nodes that stay. */
	bool all_addrs = chance(w, 50);
	if (!all_addrs)
		t.n_addrs = 0;
	if (kind == 0 && n_out) { /* a new learner */
		added = outside[rnd_below(w, n_out)];
		t.learners[t.n_learners++] = added;
	} else if (kind == 1 && t.n_learners) { /* a learner becomes a voter */
		uint32_t k = (uint32_t)rnd_below(w, t.n_learners);
		t.configs[0].ids[t.configs[0].n++] = t.learners[k];
		t.learners[k] = t.learners[--t.n_learners];
	} else if (kind == 2 && nv > 3) { /* a voter goes (the leader too, sometimes) */
		uint32_t k = (uint32_t)rnd_below(w, nv);
		uint32_t gone = t.configs[0].ids[k];
		t.configs[0].ids[k] = t.configs[0].ids[--t.configs[0].n];
		if (chance(w, 50))
			t.learners[t.n_learners++] = gone; /* demoted, not removed */
	} else if (kind == 3 && (n_out || t.n_learners)) { /* one voter for another */
		uint32_t k = (uint32_t)rnd_below(w, nv);
		uint32_t in;
		if (t.n_learners && (n_out == 0 || chance(w, 50))) {
			uint32_t j = (uint32_t)rnd_below(w, t.n_learners);
			in = t.learners[j];
			t.learners[j] = t.learners[--t.n_learners];
		} else {
			in = added = outside[rnd_below(w, n_out)];
		}
		t.configs[0].ids[k] = in;
	} else if (kind == 4 && t.n_learners) { /* a learner goes */
		uint32_t k = (uint32_t)rnd_below(w, t.n_learners);
		t.learners[k] = t.learners[--t.n_learners];
	} else {
		return;
	}
	lcr_membership_keep_addrs(&t, NULL); /* none for nodes that leave */
	if (added) {
		t.addrs[t.n_addrs].id = added;
		sim_node_addr(added, t.addrs[t.n_addrs].addr);
		t.n_addrs++;
	}
	int rc = lcr_core_change_membership(l->core, sim_node_time(w, l), &t, &id);
	sim_trace(w, l->id, "change membership (kind %u): %d", kind, rc);
	if (rc == 0)
		w->membership_changes++;
	/* Through a joint config: whichever leader finishes it must end in `t`
	 * (membership-target). */
	lcr_core_status(l->core, &st);
	if (rc == 0 && st.membership.n_configs == 2) {
		uint32_t k = w->mc_asked_n++ % SIM_MC_ASKED;
		w->mc_asked[k].joint = id;
		w->mc_asked[k].target = t;
	}
	process(w, l);
}

static void nemesis(struct sim_world *w)
{
	uint32_t N = w->par.nodes;
	uint32_t victim = (uint32_t)(1 + rnd_below(w, N));
	uint32_t leader = find_leader(w);
	struct sim_node *v = node(w, victim);

	/* A seed's scenario runs first thing, and again now and then. */
	if (w->par.scenario && w->scen_started[w->par.scenario] == 0) {
		sim_scenario_start(w, w->par.scenario);
		if (w->scen.kind)
			return;
	}
	/* Churn seeds change their membership often: one change at a time, so
	 * most of these find one under way and are refused. */
	if (w->par.churn && leader && chance(w, 40))
		change_membership(w, node(w, leader));
	switch (rnd_below(w, 23)) {
	case 0: { /* a random minority cut off, both ways */
		heal_network(w);
		uint32_t k = 1 + (uint32_t)rnd_below(w, N / 2);
		bool minority[SIM_NODES_MAX] = { false };
		for (uint32_t i = 0; i < k; i++)
			minority[rnd_below(w, N)] = true;
		for (uint32_t a = 0; a < N; a++)
			for (uint32_t b = 0; b < N; b++)
				if (minority[a] != minority[b])
					w->blocked[a][b] = true;
		sim_trace(w, 0, "partition: minority of %u", k);
		break;
	}
	case 1:
		heal_network(w);
		if (leader) {
			isolate(w, leader);
			sim_trace(w, leader, "leader isolated");
		}
		break;
	case 2: { /* one-way loss between random pairs */
		uint32_t a = (uint32_t)rnd_below(w, N), b = (uint32_t)rnd_below(w, N);
		if (leader && chance(w, 50))
			a = leader - 1;
		if (a != b) {
			w->blocked[a][b] = true;
			sim_trace(w, 0, "one-way block %u -> %u", a + 1, b + 1);
		}
		break;
	}
	case 3:
		heal_network(w);
		sim_trace(w, 0, "network healed");
		break;
	case 4:
	case 5:
		if (leader && chance(w, 50))
			v = node(w, leader);
		node_crash(w, v, 5 * MS + rnd_below(w, 800 * MS));
		break;
	case 6:
		w->loss_pct = chance(w, 30) ? 0 : (uint32_t)rnd_below(w, 31);
		w->dup_pct = (uint32_t)rnd_below(w, 11);
		w->late_pct = chance(w, 50) ? 0 : (uint32_t)rnd_below(w, 4);
		w->delay_jitter = rnd_below(w, 5 * MS);
		sim_trace(w, 0, "loss %u%% dup %u%% jitter %llu us", w->loss_pct, w->dup_pct,
			  (unsigned long long)(w->delay_jitter / US));
		break;
	case 7:
		v->disk.slow_until = w->now + 50 * MS + rnd_below(w, 500 * MS);
		sim_trace(w, v->id, "slow disk");
		break;
	case 8:
		if (v->up) {
			v->disk.fail_next = true;
			sim_trace(w, v->id, "next fsync will fail");
		}
		break;
	case 9: {
		/* Clocks jump forward: all together (a host stall), or one alone
		 * when this seed's clients do not rely on leases. */
		uint64_t j = rnd_below(w, 1000 * MS);
		if (w->par.clock_skew && chance(w, 50)) {
			v->clock_offset += (int64_t)j;
			sim_trace(w, v->id, "clock jumps %llu ms", (unsigned long long)(j / MS));
		} else {
			for (uint32_t i = 0; i < N; i++)
				w->nodes[i].clock_offset += (int64_t)j;
			sim_trace(w, 0, "all clocks jump %llu ms", (unsigned long long)(j / MS));
		}
		for (uint32_t i = 0; i < N; i++)
			if (w->nodes[i].up) {
				w->nodes[i].tick_at = 0;
				schedule_tick(w, &w->nodes[i]);
			}
		break;
	}
	case 10:
		if (v->up) {
			v->paused_until = w->now + 10 * MS + rnd_below(w, 800 * MS);
			sim_trace(w, v->id, "paused");
		}
		break;
	case 11:
		if (leader) {
			struct lcr_event ev = { .type = LCR_EV_TRIGGER_TRANSFER,
						.transfer_to = victim };
			sim_trace(w, leader, "transfer leadership to %u", victim);
			step_node_event(w, node(w, leader), &ev);
		}
		break;
	case 12:
		if (v->up && w->now >= v->paused_until) {
			struct lcr_event ev = { .type = LCR_EV_TRIGGER_ELECT };
			ev.elect.pre_vote = chance(w, 50);
			sim_trace(w, v->id, "trigger elect");
			step_node_event(w, v, &ev);
		}
		break;
	case 13:
		if (leader) {
			struct lcr_event ev = { .type = LCR_EV_TRIGGER_HEARTBEAT };
			step_node_event(w, node(w, leader), &ev);
		}
		break;
	case 15:
		if (v->up)
			for (uint64_t k = 1 + rnd_below(w, 4); k > 0; k--)
				forge(w, v);
		break;
	case 16:
	case 17:
		if (w->par.scenario) {
			sim_scenario_start(w, w->par.scenario);
			if (w->scen.kind)
				return; /* the nemesis resumes when the scenario ends */
		}
		break;
	case 18: /* a snapshot, now */
		if (v->up && w->now >= v->paused_until) {
			struct lcr_event ev = { .type = LCR_EV_TRIGGER_SNAPSHOT };
			sim_trace(w, v->id, "trigger snapshot");
			step_node_event(w, v, &ev);
		}
		break;
	case 19: /* purge everything the snapshot covers */
		if (v->up && w->now >= v->paused_until) {
			struct lcr_event ev = { .type = LCR_EV_TRIGGER_PURGE };
			/* Sometimes past the snapshot: the core must bound it. */
			ev.purge_upto = v->st.snapshot.last.index;
			if (chance(w, 30))
				ev.purge_upto += rnd_below(w, 50);
			sim_trace(w, v->id, "trigger purge");
			step_node_event(w, v, &ev);
		}
		break;
	case 21:
	case 22:
		if (w->par.churn && leader)
			change_membership(w, node(w, leader));
		break;
	case 20: /* a follower down long enough to need a snapshot */
		if (v->id != leader) {
			node_crash(w, v, 1000 * MS + rnd_below(w, 2500 * MS));
		}
		break;
	case 14:
		/* Runtime toggles: heartbeats or elections off (or back on). */
		if (v->up && w->now >= v->paused_until) {
			struct lcr_event ev = { .type = LCR_EV_SET_TOGGLE };
			ev.toggle.toggle = chance(w, 50) ? LCR_TOGGLE_HEARTBEAT : LCR_TOGGLE_ELECT;
			ev.toggle.on = chance(w, 40);
			sim_trace(w, v->id, "%s %s",
				  ev.toggle.toggle == LCR_TOGGLE_HEARTBEAT ? "heartbeat" : "elect",
				  ev.toggle.on ? "on" : "off");
			step_node_event(w, v, &ev);
		}
		break;
	}
	sim_schedule_nemesis(w);
}

void sim_schedule_nemesis(struct sim_world *w)
{
	at(w, w->now + w->par.nemesis_gap_ns / 2 + rnd_below(w, w->par.nemesis_gap_ns), EV_NEMESIS,
	   0, 0);
}

void sim_calm(struct sim_world *w)
{
	w->loss_pct = 0;
	w->dup_pct = 0;
	w->late_pct = 0;
	for (uint32_t i = 0; i < w->par.nodes; i++) {
		struct sim_node *n = &w->nodes[i];
		n->disk.slow_until = 0;
		n->disk.fail_next = false;
		n->paused_until = 0;
		if (!n->up) {
			sim_node_restart(w, n);
			continue;
		}
		struct lcr_event ev = { .type = LCR_EV_SET_TOGGLE };
		ev.toggle.toggle = LCR_TOGGLE_HEARTBEAT;
		ev.toggle.on = true;
		step_node_event(w, n, &ev);
		sim_set_elect(w, n, !w->scen.no_elect);
	}
}

static void heal_all(struct sim_world *w)
{
	if (w->scen.kind)
		sim_scenario_end(w, false);
	w->healed = true;
	heal_network(w);
	w->loss_pct = 0;
	w->dup_pct = 0;
	w->late_pct = 0;
	w->delay_jitter = 200 * US;
	for (uint32_t i = 0; i < w->par.nodes; i++) {
		struct sim_node *n = &w->nodes[i];
		n->disk.slow_until = 0;
		n->disk.fail_next = false;
		n->paused_until = 0;
		if (!n->up) {
			at(w, w->now, EV_RESTART, n->id, 0);
			continue;
		}
		for (uint32_t t = LCR_TOGGLE_HEARTBEAT; t <= LCR_TOGGLE_ELECT; t++) {
			struct lcr_event ev = { .type = LCR_EV_SET_TOGGLE };
			ev.toggle.toggle = t;
			ev.toggle.on = true;
			step_node_event(w, n, &ev);
		}
	}
	sim_trace(w, 0, "heal everything");
}

/* ---- the run --------------------------------------------------------------------------- */

static void dispatch(struct sim_world *w, struct sim_event *ev)
{
	struct sim_node *n = ev->node >= 1 && ev->node <= SIM_NODES_MAX ? node(w, ev->node) : NULL;

	switch (ev->kind) {
	case EV_TICK:
		if (!n->up || ev->inc != n->incarnation || ev->at != n->tick_at)
			return;
		if (w->now < n->paused_until) {
			n->tick_at = n->paused_until;
			at(w, n->paused_until, EV_TICK, n->id, 0);
			return;
		}
		n->tick_at = 0;
		struct lcr_event te = { .type = LCR_EV_TICK, .now_ns = sim_node_time(w, n) };
		lcr_core_step(n->core, &te);
		process(w, n);
		sim_check_step_down(w, n);
		break;
	case EV_DELIVER:
		on_deliver(w, ev);
		break;
	case EV_DISK:
		if (w->now < n->paused_until && ev->inc == n->incarnation) {
			ev->at = n->paused_until;
			push(w, *ev);
			return;
		}
		on_disk(w, n, ev);
		break;
	case EV_CLIENT:
		on_client(w, (uint32_t)ev->a);
		break;
	case EV_CLIENT_TIMEOUT:
		on_client_timeout(w, ev->a);
		break;
	case EV_NEMESIS:
		if (!w->healed && !w->scen.kind)
			nemesis(w);
		break;
	case EV_NET_ERROR:
		if (n->up && ev->inc == n->incarnation && w->now >= n->paused_until) {
			struct lcr_event ne = { .type = LCR_EV_NET_ERROR };
			ne.net.target = ev->msg->m.to;
			ne.net.stream_id = ev->msg->m.type == LCR_MSG_SNAPSHOT_REQ
						   ? ev->msg->m.snapshot_req.stream_id
						   : ev->msg->m.append_req.stream_id;
			ne.net.err = (uint32_t)ev->a;
			step_node_event(w, n, &ne);
		}
		free(ev->msg->entries);
		free(ev->msg);
		break;
	case EV_SNAP_BUILT:
		on_snap_built(w, n, ev);
		break;
	case EV_PURGE:
		if (n->up && ev->inc == n->incarnation && w->now >= n->paused_until) {
			struct lcr_event pe = { .type = LCR_EV_TRIGGER_PURGE, .purge_upto = ev->a };
			step_node_event(w, n, &pe);
		}
		break;
	case EV_RESTART:
		if (!n->up) {
			sim_trace(w, n->id, "restart");
			node_start(w, n);
		}
		break;
	}
}

static void draw_params(struct sim_world *w)
{
	struct sim_params *p = &w->par;

	p->nodes = chance(w, 50) ? 3 : 5;
	p->pre_vote = chance(w, 50);
	p->lease_reads = chance(w, 60);
	p->clock_skew = !p->lease_reads && chance(w, 60);
	p->clients = 2 + (uint32_t)rnd_below(w, 4);
	p->op_gap_ns = 1 * MS + rnd_below(w, 15 * MS);
	p->nemesis_gap_ns = 40 * MS + rnd_below(w, 300 * MS);
	p->small_queues = chance(w, 70);
	/* Most seeds run one of the orchestrated scenarios now and then. */
	p->scenario = chance(w, 40) ? 0 : 1 + (uint32_t)rnd_below(w, SIM_SCEN_KINDS);
	/* From the seed, not its PRNG: the other seeds draw what they drew. */
	p->follower_reads = w->seed % 5 >= 3;
	/* Membership churn in half the seeds without a scenario (the scenarios
	 * count on a fixed set of voters): two more nodes, outside the
	 * membership at first, that changes add, promote, demote and remove. */
	p->voters = p->nodes;
	p->churn = p->scenario == 0 && w->seed % 2 == 0;
	if (p->churn)
		p->nodes += 2;
}

void sim_world_free(struct sim_world *w)
{
	while (w->heap_n) {
		struct sim_event ev = pop(w);
		if (ev.kind == EV_DELIVER || ev.kind == EV_NET_ERROR) {
			free(ev.msg->entries);
			free(ev.msg);
		}
	}
	free(w->heap);
	for (uint32_t i = 0; i < SIM_NODES_MAX; i++) {
		struct sim_node *n = &w->nodes[i];
		lcr_core_free(n->core);
		free(n->mem.e);
		free(n->disk.log.e);
		while (n->disk.n_pending)
			disk_pop(&n->disk);
		free(n->disk.pending);
		free(n->writes);
		free(n->reads);
	}
	free(w->hist);
	sim_check_free(w);
	memset(w, 0, sizeof(*w));
}

int sim_run_seed(struct sim_world *w, uint64_t seed, uint64_t steps, uint32_t bugs, bool debug)
{
	memset(w, 0, sizeof(*w));
	w->seed = seed;
	w->bugs = bugs;
	w->debug = debug;
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
	w->rng[0] = mix(x, 1);
	w->rng[1] = mix(x, 2);
	draw_params(w);
	w->delay_min = 20 * US;
	w->delay_jitter = 300 * US;
	w->now = 1 * MS;

	for (uint32_t i = 0; i < w->par.nodes; i++) {
		struct sim_node *n = &w->nodes[i];
		n->id = i + 1;
		n->clock_offset = (int64_t)(1000 * MS + rnd_below(w, 100000 * MS));
		node_start(w, n);
	}
	for (uint32_t c = 0; c < w->par.clients; c++) {
		w->clients[c].id = c;
		client_retarget(w, &w->clients[c], 0);
		at(w, w->now + rnd_below(w, 10 * MS), EV_CLIENT, 0, c);
	}
	at(w, w->now + 300 * MS, EV_NEMESIS, 0, 0);

	/* Fault phase: `steps` events. */
	while (w->steps < steps && w->heap_n && !w->violated) {
		struct sim_event ev = pop(w);
		w->now = ev.at;
		w->steps++;
		dispatch(w, &ev);
		if (!w->violated && w->scen.kind)
			sim_scenario_step(w);
		if (!w->violated)
			sim_check_leases(w);
	}
	if (w->violated)
		return 1;

	/* Liveness phase: heal, then a leader and a new committed write, in bound. */
	heal_all(w);
	uint64_t heal_at = w->now, deadline = w->now + 10000 * MS;
	uint64_t ok_before = 0;
	for (size_t i = 0; i < w->n_hist; i++)
		ok_before += w->hist[i].complete_ns != LCR_LINZ_PENDING;
	bool live = false;
	uint64_t live_steps = 0;
	while (w->heap_n && !w->violated && w->now < deadline && live_steps < SIM_LIVE_STEPS_MAX) {
		struct sim_event ev = pop(w);
		w->now = ev.at;
		live_steps++;
		dispatch(w, &ev);
		if (w->violated)
			break;
		sim_check_leases(w);
		for (size_t i = w->n_hist; i-- > 0;) {
			const struct lcr_linz_op *h = &w->hist[i];
			if (h->invoke_ns < heal_at)
				break;
			if (h->kind != LCR_LINZ_READ && h->kind != 0 &&
			    h->complete_ns != LCR_LINZ_PENDING && find_leader(w)) {
				live = true;
				break;
			}
		}
		if (live)
			break;
	}
	(void)ok_before;
	w->steps += live_steps;
	if (!w->violated && !live && live_steps >= SIM_LIVE_STEPS_MAX)
		sim_violation(w, "hang",
			      "%u steps after healing without reaching the 10 s bound (at %.3f s)",
			      SIM_LIVE_STEPS_MAX, (double)(w->now - heal_at) / 1e9);
	if (!w->violated && !live && runs_exhausted(w)) {
		/* Not a fault of the protocol: every voter that could win holds
		 * leader_runs_max runs (a small table, seed % 10 == 3, in a long
		 * run) and may not lead until entries are purged. Counted. */
		w->runs_stalls++;
		live = true;
	}
	for (uint32_t i = 0; !w->violated && !live && i < w->par.nodes && getenv("SIM_DUMP"); i++) {
		struct lcr_core_status st;
		if (!w->nodes[i].up) {
			fprintf(stderr, "DUMP n%u down\n", i + 1);
			continue;
		}
		lcr_core_status(w->nodes[i].core, &st);
		fprintf(stderr, "DUMP n%u role %u vote %llu-%u%s last %llu commit %llu cfgs %u [",
			i + 1, st.role, (unsigned long long)st.vote.lid.term, st.vote.lid.node,
			st.vote.committed ? "c" : "", (unsigned long long)st.last.index,
			(unsigned long long)st.committed.index, st.membership.n_configs);
		for (uint32_t c = 0; c < st.membership.n_configs; c++) {
			for (uint32_t k = 0; k < st.membership.configs[c].n; k++)
				fprintf(stderr, "%u ", st.membership.configs[c].ids[k]);
			fprintf(stderr, "| ");
		}
		fprintf(stderr, "] learners %u\n", st.membership.n_learners);
	}
	if (!w->violated && !live)
		sim_violation(w, "liveness",
			      "no leader committed a new write within 10 s of healing (leader: %u)",
			      find_leader(w));
	if (!w->violated)
		sim_check_history(w);
	return w->violated ? 1 : 0;
}
