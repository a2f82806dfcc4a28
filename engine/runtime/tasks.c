/* SPDX-License-Identifier: MIT */
/*
 * The cross-thread task ring: lcr_node_post() hands a task to an lcore from
 * any thread, through a bounded MPMC ring per lcore (Vyukov's), and wakes it
 * if it sleeps.
 *
 * Every task accepted runs exactly once: on its lcore while the loop runs; an
 * lcore that stops runs what was posted before it noticed; what comes after
 * runs when the loop runs again, or in lcr_node_close() on the closing thread,
 * which first refuses new posts (-LCR_ESTOPPED) and waits for the posters
 * already under way.
 */
#include <sched.h>
#define _GNU_SOURCE
#include <unistd.h>

#include "runtime_int.h"

/* ---- posted tasks (a bounded MPMC ring, Vyukov's) -------------------------------- */

/*
 * Wake lcore `lc` if it sleeps (or is about to: it sets `sleeping`, then
 * looks for work once more, then sleeps; we publish the work, then look at
 * `sleeping`; the fences order both, so one of us sees the other).
 */
void lcr_rt_wake(struct lcore *lc)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&lc->sleeping, memory_order_relaxed) && lc->efd >= 0) {
		uint64_t one = 1;
		ssize_t rc = write(lc->efd, &one, sizeof(one));
		(void)rc; /* the counter is full: it is readable, so it wakes anyway */
	}
}

bool lcr_rt_posts_waiting(struct lcore *lc)
{
	uint64_t pos = atomic_load_explicit(&lc->post_deq, memory_order_relaxed);
	uint64_t seq = atomic_load_explicit(&lc->posts[pos % POST_MAX].seq, memory_order_acquire);
	return (int64_t)seq - (int64_t)(pos + 1) >= 0;
}

static int post(struct lcore *lc, lcr_task_fn fn, void *arg);

int lcr_node_post(struct lcr_node *n, uint32_t lcore, lcr_task_fn fn, void *arg)
{
	LCR_ASSERT(n != NULL);
	if (lcore >= n->n_lcores || !fn)
		return -EINVAL;
	/* Counted in before looking at `closing` (both seq_cst), so the close
	 * either sees us and waits, or we see it and refuse. */
	atomic_fetch_add(&n->posting, 1);
	int rc = atomic_load(&n->closing) ? -LCR_ESTOPPED : post(&n->lcores[lcore], fn, arg);
	atomic_fetch_sub(&n->posting, 1);
	return rc;
}

static int post(struct lcore *lc, lcr_task_fn fn, void *arg)
{
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
				lcr_rt_wake(lc);
				return 0;
			}
		} else if (dif < 0) {
			return -LCR_EFULL;
		} else {
			pos = atomic_load_explicit(&lc->post_enq, memory_order_relaxed);
		}
	}
}

bool lcr_rt_run_posts(struct lcore *lc)
{
	bool work = false;
	/* Only what was posted before we started: a task that posts again, or
	 * posters faster than the tasks run, must not keep the loop from its
	 * receives and timers. */
	uint64_t end = atomic_load_explicit(&lc->post_enq, memory_order_relaxed);
	for (;;) {
		uint64_t pos = atomic_load_explicit(&lc->post_deq, memory_order_relaxed);
		if ((int64_t)(pos - end) >= 0)
			return work;
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

/* lcr_node_close(): no post from here on; run what was accepted, here. */
void lcr_rt_drain_posts(struct lcr_node *n)
{
	atomic_store(&n->closing, true);
	while (atomic_load(&n->posting) > 0)
		sched_yield();
	/* A task that posts again is refused now, so this ends. */
	for (uint32_t i = 0; n->lcores && i < n->n_lcores; i++)
		while (lcr_rt_run_posts(&n->lcores[i]))
			;
}
