/* SPDX-License-Identifier: MIT */
/*
 * Requests from any thread, completions on a queue (lcraft.h, "From any
 * thread"). lcr_submit() takes one of the queue's slots, posts the request to
 * its group's lcore (tasks.c), and the lcore proposes or reads there; the
 * answer fills the request and the request goes onto the queue's completion
 * ring, whose eventfd wakes the application.
 *
 * A slot, not the request, is what the lcore's callbacks hold: a request
 * answered early (its deadline passed) goes back to the application at once,
 * while its slot waits for the callback that the proposal or read still owes
 * (every one comes exactly once), and only then is free again. So the
 * application may reuse a request the moment it is completed, and nothing is
 * allocated per request: slots and rings are made by lcr_cq_open().
 *
 * Deadlines: each lcore keeps its timed slots in a list and looks at it when
 * the earliest deadline is due (lcr_rt_deadlines, every loop iteration).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "runtime_int.h"

struct lcr_cq_slot {
	struct lcr_cq *cq;
	struct lcr_req *req; /* NULL once answered (a deadline), until the callback */
	struct lcore *lc;
	struct lcr_group *g;
	uint64_t deadline; /* ns; 0: none */
	bool timed;	   /* on the lcore's list of timed slots */
	/* Bumped each time the slot is taken; lcr_cancel names the taking it
	 * means, so a cancel that comes late finds a newer one and does nothing. */
	_Atomic uint32_t gen, cancel_gen;
	struct lcr_cq_slot *prev, *next; /* the lcore's timed slots */
	uint32_t free_next;		 /* the free stack */
};

struct lcr_cq {
	struct lcr_node *node;	    /* not used by lcr_cq_close: the node may be gone */
	struct lcr_allocator alloc; /* the node's, copied */
	uint32_t depth;
	int efd;
	struct lcr_cq_slot *slots;
	/* Free slots: a stack under a spinlock (held for a few instructions). */
	atomic_flag lock;
	uint32_t free_top; /* index + 1; 0: none free */
	_Atomic uint32_t busy;
	/* Submitted and not reaped yet, at most depth: what the ring must hold. */
	_Atomic uint32_t out;
	/* Completed requests: a bounded MPMC ring of depth (Vyukov's) written
	 * by the lcores, read by the application's thread. */
	struct {
		_Atomic uint64_t seq;
		struct lcr_req *req;
	} * done;
	uint32_t ring; /* a power of two >= depth */
	_Alignas(LCR_CACHE_LINE) _Atomic uint64_t enq;
	_Alignas(LCR_CACHE_LINE) uint64_t deq;
	_Atomic bool signaled; /* the eventfd was written since the last reap emptied the ring */
};

/* ---- the queue ------------------------------------------------------------------ */

int lcr_cq_open(struct lcr_node *n, uint32_t depth, struct lcr_cq **out)
{
	if (!n || !out || depth == 0 || depth > LCR_CQ_DEPTH_MAX)
		return -EINVAL;
	struct lcr_cq *cq = lcr_allocator_aligned(&n->cfg.alloc, sizeof(*cq), LCR_CACHE_LINE);
	if (!cq)
		return -ENOMEM;
	cq->node = n;
	cq->alloc = n->cfg.alloc;
	cq->depth = depth;
	cq->ring = 1;
	while (cq->ring < depth)
		cq->ring <<= 1;
	cq->slots = lcr_allocator_zalloc(&cq->alloc, sizeof(*cq->slots) * depth);
	cq->done = lcr_allocator_zalloc(&cq->alloc, sizeof(*cq->done) * cq->ring);
	cq->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!cq->slots || !cq->done || cq->efd < 0) {
		int rc = cq->efd < 0 ? -errno : -ENOMEM;
		lcr_cq_close(cq);
		return rc;
	}
	atomic_flag_clear(&cq->lock);
	for (uint32_t i = 0; i < depth; i++) {
		cq->slots[i].cq = cq;
		cq->slots[i].free_next = cq->free_top;
		cq->free_top = i + 1;
	}
	for (uint32_t i = 0; i < cq->ring; i++)
		atomic_store_explicit(&cq->done[i].seq, i, memory_order_relaxed);
	*out = cq;
	return 0;
}

void lcr_cq_close(struct lcr_cq *cq)
{
	if (!cq)
		return;
	struct lcr_allocator a = cq->alloc;
	if (cq->efd >= 0)
		close(cq->efd);
	lcr_allocator_free(&a, cq->slots);
	lcr_allocator_free(&a, cq->done);
	lcr_allocator_free_aligned(&a, cq);
}

int lcr_cq_fd(const struct lcr_cq *cq)
{
	return cq->efd;
}

uint32_t lcr_cq_busy(const struct lcr_cq *cq)
{
	return atomic_load_explicit(&cq->busy, memory_order_relaxed);
}

static struct lcr_cq_slot *slot_take(struct lcr_cq *cq)
{
	struct lcr_cq_slot *s = NULL;
	while (atomic_flag_test_and_set_explicit(&cq->lock, memory_order_acquire))
		sched_yield();
	if (cq->free_top) {
		s = &cq->slots[cq->free_top - 1];
		cq->free_top = s->free_next;
		atomic_fetch_add_explicit(&s->gen, 1, memory_order_release);
	}
	atomic_flag_clear_explicit(&cq->lock, memory_order_release);
	if (s)
		atomic_fetch_add_explicit(&cq->busy, 1, memory_order_relaxed);
	return s;
}

static void slot_give(struct lcr_cq_slot *s)
{
	struct lcr_cq *cq = s->cq;
	s->req = NULL;
	while (atomic_flag_test_and_set_explicit(&cq->lock, memory_order_acquire))
		sched_yield();
	s->free_next = cq->free_top;
	cq->free_top = (uint32_t)(s - cq->slots) + 1;
	atomic_flag_clear_explicit(&cq->lock, memory_order_release);
	atomic_fetch_sub_explicit(&cq->busy, 1, memory_order_relaxed);
}

/* Hand a request back: onto the ring (never full: it holds depth, and at most
 * depth are out, `out`), and wake the application if the ring was empty when
 * it last looked. */
static void complete(struct lcr_cq *cq, struct lcr_req *r)
{
	uint64_t pos = atomic_fetch_add_explicit(&cq->enq, 1, memory_order_relaxed);
	typeof(&cq->done[0]) c = &cq->done[pos & (cq->ring - 1)];
	/* A slot of the ring is free once the reader moved past it; with at
	 * most depth requests out, it always is: wait only for its store. */
	while (atomic_load_explicit(&c->seq, memory_order_acquire) != pos)
		sched_yield();
	c->req = r;
	atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
	if (!atomic_exchange_explicit(&cq->signaled, true, memory_order_acq_rel)) {
		uint64_t one = 1;
		ssize_t rc = write(cq->efd, &one, sizeof(one));
		(void)rc; /* a full counter is readable anyway */
	}
}

uint32_t lcr_cq_reap(struct lcr_cq *cq, struct lcr_req **out, uint32_t max)
{
	uint32_t n = 0;
	for (int again = 0; again < 2 && n < max; again++) {
		while (n < max) {
			typeof(&cq->done[0]) c = &cq->done[cq->deq & (cq->ring - 1)];
			if (atomic_load_explicit(&c->seq, memory_order_acquire) != cq->deq + 1)
				break;
			out[n++] = c->req;
			atomic_store_explicit(&c->seq, cq->deq + cq->ring, memory_order_release);
			cq->deq++;
			atomic_fetch_sub_explicit(&cq->out, 1, memory_order_relaxed);
		}
		if (n == max || again)
			break;
		/* Empty: clear the eventfd and the flag, then look once more so that
		 * a completion between our look and the clear is not slept on. */
		uint64_t v;
		if (read(cq->efd, &v, sizeof(v)) < 0) {
			/* EAGAIN: it was not written */
		}
		/* An exchange (a read-modify-write), so that a writer whose exchange
		 * found it still true is ordered before us and our look again sees
		 * its request; a plain store would not promise that. */
		(void)atomic_exchange_explicit(&cq->signaled, false, memory_order_acq_rel);
		atomic_thread_fence(memory_order_seq_cst);
	}
	return n;
}

int lcr_cq_wait(struct lcr_cq *cq, struct lcr_req **out, uint32_t max, uint64_t timeout_ns)
{
	uint64_t start = lcr_rt_now_ns();
	if (timeout_ns > UINT64_MAX - start)
		timeout_ns = 0; /* longer than a clock can count: forever */
	uint64_t end = timeout_ns ? start + timeout_ns : 0;
	for (;;) {
		uint32_t n = lcr_cq_reap(cq, out, max);
		if (n > 0)
			return (int)n;
		uint64_t now = lcr_rt_now_ns();
		if (timeout_ns && now >= end)
			return 0;
		struct pollfd p = { .fd = cq->efd, .events = POLLIN };
		struct timespec ts, *tp = NULL;
		if (timeout_ns) {
			ts.tv_sec = (time_t)((end - now) / 1000000000ull);
			ts.tv_nsec = (long)((end - now) % 1000000000ull);
			tp = &ts;
		}
		if (ppoll(&p, 1, tp, NULL) < 0 && errno != EINTR)
			return -errno;
	}
}

/* ---- deadlines, on the lcore -------------------------------------------------- */

static void timed_unlink(struct lcr_cq_slot *s)
{
	struct lcore *lc = s->lc;
	s->timed = false;
	if (s->prev)
		s->prev->next = s->next;
	else if (lc->timed == s)
		lc->timed = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->deadline = 0;
}

/* The slot's request gets its answer (if it still waits for one). */
static void answer(struct lcr_cq_slot *s, int err, uint32_t leader)
{
	struct lcr_req *r = s->req;
	if (s->timed)
		timed_unlink(s);
	if (!r)
		return; /* answered already: its deadline passed */
	s->req = NULL;
	r->err = err;
	r->leader = leader;
	complete(s->cq, r);
}

/* The callback owed came: the answer, if still due, and the slot back, in
 * that order reversed, so that a request comes back with its slot free. */
static void finish(struct lcr_cq_slot *s, int err, uint32_t leader)
{
	struct lcr_cq *cq = s->cq;
	struct lcr_req *r = s->req;
	if (s->timed)
		timed_unlink(s);
	slot_give(s);
	if (r) {
		r->err = err;
		r->leader = leader;
		complete(cq, r);
	}
}

bool lcr_rt_deadlines(struct lcore *lc)
{
	if (!lc->timed || lc->now < lc->timed_next)
		return false;
	bool work = false;
	uint64_t next = UINT64_MAX;
	for (struct lcr_cq_slot *s = lc->timed, *nx; s; s = nx) {
		nx = s->next;
		if (lc->now >= s->deadline) {
			/* Answered now; the slot waits for the callback still owed. */
			answer(s, -LCR_ETIMEDOUT, 0);
			work = true;
		} else if (s->deadline < next)
			next = s->deadline;
	}
	lc->timed_next = next;
	return work;
}

uint64_t lcr_rt_deadline_next(const struct lcore *lc)
{
	return lc->timed ? lc->timed_next : UINT64_MAX;
}

/* ---- the callbacks, on the lcore ------------------------------------------------ */

static void propose_done(void *ctx, int err, uint32_t leader, const void *result, uint32_t len)
{
	struct lcr_cq_slot *s = ctx;
	struct lcr_req *r = s->req;
	if (r) {
		r->log_id = err ? (struct lcr_log_id){ { 0, 0 }, 0 } : s->g->answer_id;
		r->result_len = len;
		if (len && r->result && r->result_cap)
			memcpy(r->result, result, len < r->result_cap ? len : r->result_cap);
	}
	finish(s, err, leader);
}

static void read_done(void *ctx, int err, uint32_t leader)
{
	struct lcr_cq_slot *s = ctx;
	struct lcr_req *r = s->req;
	if (r) {
		r->log_id = (struct lcr_log_id){ { 0, 0 }, 0 };
		if (err == 0)
			r->log_id = s->g->applied_id; /* what the state machine holds now */
	}
	finish(s, err, leader);
}

/* The request on its group's lcore. */
static void submit_task(struct lcr_node *n, void *arg)
{
	struct lcr_cq_slot *s = arg;
	struct lcr_req *r = s->req;
	struct lcore *lc = lcr_rt_this_lcore();
	(void)n;

	LCR_ASSERT(r != NULL); /* a cancel names its taking and cannot come first */

	/* An lcore that does not run (the node closes): its thread is ours. */
	if (!lc)
		lc = &s->cq->node->lcores[lcr_group_lcore(s->cq->node, r->group)];
	s->lc = lc;
	struct lcr_group *g = lcr_rt_group_of(lc, r->group);
	s->g = g;
	if (!g) {
		finish(s, -ENOENT, 0);
		return;
	}
	if (r->timeout_ns) {
		s->deadline = r->submitted_ns + r->timeout_ns; /* bounded: no wrap */
		s->timed = true;
		s->prev = NULL;
		s->next = lc->timed;
		if (lc->timed)
			lc->timed->prev = s;
		lc->timed = s;
		if (s->deadline < lc->timed_next || !s->next)
			lc->timed_next = s->deadline;
	}
	int rc = r->op == LCR_REQ_PROPOSE ? lcr_propose(g, r->data, r->len, propose_done, s)
					  : lcr_read(g, r->policy, read_done, s);
	if (rc < 0)
		finish(s, rc, 0);
}

int lcr_submit(struct lcr_cq *cq, struct lcr_req *r)
{
	struct lcr_node *n = cq->node;
	if (!r || (r->op != LCR_REQ_PROPOSE && r->op != LCR_REQ_READ) ||
	    r->timeout_ns > LCR_REQ_TIMEOUT_MAX ||
	    (r->op == LCR_REQ_PROPOSE && (!r->data || r->len == 0)) ||
	    (r->op == LCR_REQ_READ && r->policy != LCR_READ_INDEX && r->policy != LCR_READ_LEASE))
		return -EINVAL;
	/* At most depth out (submitted, not reaped): the completion ring never
	 * overflows, whatever the application reaps when. */
	if (atomic_fetch_add_explicit(&cq->out, 1, memory_order_relaxed) >= cq->depth) {
		atomic_fetch_sub_explicit(&cq->out, 1, memory_order_relaxed);
		return -LCR_EFULL;
	}
	struct lcr_cq_slot *s = slot_take(cq);
	if (!s) {
		atomic_fetch_sub_explicit(&cq->out, 1, memory_order_relaxed);
		return -LCR_EFULL;
	}
	r->err = 0;
	r->leader = 0;
	r->result_len = 0;
	r->log_id = (struct lcr_log_id){ { 0, 0 }, 0 };
	r->submitted_ns = lcr_rt_now_ns();
	s->req = r;
	r->slot = s;
	r->slot_gen = atomic_load_explicit(&s->gen, memory_order_relaxed);
	s->deadline = 0;
	s->timed = false;
	s->prev = s->next = NULL;
	int rc = lcr_node_post(n, lcr_group_lcore(n, r->group), submit_task, s);
	if (rc < 0) {
		s->req = NULL;
		slot_give(s);
		atomic_fetch_sub_explicit(&cq->out, 1, memory_order_relaxed);
	}
	return rc;
}

/* ---- cancel ------------------------------------------------------------------- */

static void cancel_task(struct lcr_node *n, void *arg)
{
	struct lcr_cq_slot *s = arg;
	(void)n;
	/* Still the taking the cancel named (the slot was not given back and
	 * taken again since: then it serves another request, maybe on another
	 * lcore, and is not ours to touch), and not answered yet: answer it now.
	 * The proposal or read behind it goes on, holding the slot until it
	 * ends. */
	if (atomic_load_explicit(&s->gen, memory_order_acquire) !=
	    atomic_load_explicit(&s->cancel_gen, memory_order_relaxed))
		return;
	if (s->req)
		answer(s, -ECANCELED, 0);
}

int lcr_cancel(struct lcr_cq *cq, struct lcr_req *r)
{
	struct lcr_cq_slot *s = r ? r->slot : NULL;
	if (!s || s < cq->slots || s >= cq->slots + cq->depth)
		return -EINVAL;
	atomic_store_explicit(&s->cancel_gen, r->slot_gen, memory_order_relaxed);
	/* The request's own lcore, where its slot is touched. */
	return lcr_node_post(cq->node, lcr_group_lcore(cq->node, r->group), cancel_task, s);
}

/* ---- waiting for a condition ------------------------------------------------------ */

void lcr_rt_publish(struct lcr_group *g)
{
	struct lcr_node *n = g->node;
	atomic_store_explicit(&g->pub_applied, g->applied_id.index, memory_order_release);
	atomic_store_explicit(&g->pub_role, g->role, memory_order_release);
	atomic_store_explicit(&g->pub_leader, g->leader, memory_order_release);
	bool committed;
	uint64_t mi = lcr_core_membership_index(g->core, &committed);
	atomic_store_explicit(&g->pub_mship, committed ? mi + 1 : 0, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&n->waiters, memory_order_relaxed) == 0)
		return;
	pthread_mutex_lock(&n->wait_mu);
	pthread_cond_broadcast(&n->wait_cv);
	pthread_mutex_unlock(&n->wait_mu);
}

static struct lcr_group *group_find(struct lcr_node *n, uint32_t id)
{
	struct lcore *lc = &n->lcores[lcr_group_lcore(n, id)];
	for (uint32_t i = 0; i < lc->n_groups; i++)
		if (lc->groups[i]->id == id)
			return lc->groups[i];
	return NULL;
}

static bool holds(struct lcr_group *g, uint32_t what, uint64_t value)
{
	switch (what) {
	case LCR_WAIT_APPLIED:
		return atomic_load_explicit(&g->pub_applied, memory_order_acquire) >= value;
	case LCR_WAIT_LEADER: {
		uint32_t l = atomic_load_explicit(&g->pub_leader, memory_order_acquire);
		return value ? l == value : l != 0;
	}
	case LCR_WAIT_MEMBERSHIP: {
		uint64_t m = atomic_load_explicit(&g->pub_mship, memory_order_acquire);
		return m != 0 && m - 1 >= value;
	}
	default: /* LCR_WAIT_ROLE */
		return atomic_load_explicit(&g->pub_role, memory_order_acquire) == value;
	}
}

int lcr_group_wait(struct lcr_node *n, uint32_t group, uint32_t what, uint64_t value,
		   uint64_t timeout_ns)
{
	if (!n || (what != LCR_WAIT_APPLIED && what != LCR_WAIT_LEADER && what != LCR_WAIT_ROLE &&
		   what != LCR_WAIT_MEMBERSHIP))
		return -EINVAL;
	/* Counted in before anything of the node is read: a close waits for us,
	 * or we see it closing and leave (both seq_cst). */
	atomic_fetch_add(&n->waiters, 1);
	struct lcr_group *g = atomic_load(&n->closing) ? NULL : group_find(n, group);
	int early = atomic_load(&n->closing)	   ? -LCR_ESTOPPED
		    : !g			   ? -ENOENT
		    : lcr_rt_this_lcore() == g->lc ? -EDEADLK /* it would wait for itself */
						   : 0;
	if (early) {
		atomic_fetch_sub(&n->waiters, 1);
		return early;
	}
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)(timeout_ns / 1000000000ull);
	end.tv_nsec += (long)(timeout_ns % 1000000000ull);
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	int rc = 0;
	pthread_mutex_lock(&n->wait_mu);
	while (!holds(g, what, value)) {
		if (atomic_load(&n->closing)) {
			rc = -LCR_ESTOPPED;
			break;
		}
		if (pthread_cond_timedwait(&n->wait_cv, &n->wait_mu, &end) == ETIMEDOUT) {
			rc = holds(g, what, value) ? 0 : -LCR_ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&n->wait_mu);
	atomic_fetch_sub(&n->waiters, 1);
	return rc;
}
