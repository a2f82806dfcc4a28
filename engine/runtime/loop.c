/* SPDX-License-Identifier: MIT */
/*
 * The lcore loop (design.md, "Data flow through one lcore"). Each iteration:
 *
 *   transport receive (UDP: rx burst -> check -> stream layer) ->
 *       core.step(message) -> commands; acks for the streams that got data
 *   tasks posted from other threads, the application's poll hook
 *   timers -> core.step(tick); the transport's timers (retransmissions)
 *   proposals gathered this iteration -> one core.propose
 *   a snapshot being built: its next piece (at most one chunk), or its report
 *   storage: flush (group commit), submit, reap -> core.step(flushed)
 *   transport transmit (UDP: tx burst)
 *   nothing happened: spin a while, then sleep until a datagram, a
 *   completion, a posted task or a timer
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "runtime_int.h"

static __thread struct lcore *this_lcore;

struct lcore *lcr_rt_this_lcore(void)
{
	return this_lcore;
}

/* ---- timers --------------------------------------------------------------------- */

/*
 * A replica whose term reached the limit cannot stand for election (the core
 * counts each refusal): say so once, with what to do. Only a bug gets there
 * (peers' terms are bounded, engine/core.c), so this is loud.
 */
static void term_check(struct lcr_group *g)
{
	if (g->term_exhausted_said)
		return;
	struct lcr_core_status st;
	lcr_core_status(g->core, &st);
	if (st.term_exhausted == 0)
		return;
	g->term_exhausted_said = true;
	fprintf(stderr,
		"lcraft: group %u: term %llu is at its limit (2^62 - 1): this replica will not "
		"stand for election; it still follows a leader. Its vote is corrupt or was "
		"pushed there by a bug: replace this replica's data\n",
		g->id, (unsigned long long)st.vote.lid.term);
}

static bool timers(struct lcore *lc)
{
	bool work = false;

	for (uint32_t i = 0; i < lc->n_groups; i++) {
		struct lcr_group *g = lc->groups[i];
		if (lc->now >= g->next_timer) {
			struct lcr_event ev = { .type = LCR_EV_TICK };
			lcr_rt_step(g, &ev);
			if (g->role != LCR_ROLE_LEADER)
				term_check(g);
			work = true;
		}
	}
	/* Calls past their TTL and the transport's own timers (a stream that
	 * got no answer for a long time ends with UNREACHABLE). */
	work |= lcr_net_tick(lc->net, lc->now);
	work |= lcr_rt_deadlines(lc);
	return work;
}

static uint64_t next_deadline(struct lcore *lc)
{
	uint64_t t = lcr_net_next_timer(lc->net);
	uint64_t d = lcr_rt_deadline_next(lc);
	if (d < t)
		t = d;

	for (uint32_t i = 0; i < lc->n_groups; i++) {
		struct lcr_group *g = lc->groups[i];
		if (g->next_timer < t)
			t = g->next_timer;
	}
	return t;
}

/* ---- polling before sleeping ------------------------------------------------------ */

/*
 * A sleeping vCPU can take tens of microseconds to wake, so an lcore may poll
 * a while before it sleeps: after work (idle_spin_us) and while its writes are
 * in flight (io_spin_us). Adaptive (the default), each is a bound: the lcore
 * follows the median of its idle gaps that ended in work and of how long its
 * writes stay in flight, polls until 1.5x the median, and not at all when the
 * median is past the bound: then what it waits for usually comes after the
 * bound, and polling would only burn it before sleeping anyway. A median, not
 * a mean: one long sleep must not switch polling off for the next hundred
 * short gaps.
 */
#define SAMPLE_MAX_NS 10000000ull /* 10 ms: longer gaps count as this */

/* A running median: a step of 1/8 toward each sample (frugal streaming). */
static void median_add(uint64_t *m, uint64_t v)
{
	if (v > SAMPLE_MAX_NS)
		v = SAMPLE_MAX_NS;
	if (*m == 0)
		*m = v;
	else if (v > *m)
		*m += (*m >> 3) + 1;
	else if (v < *m)
		*m -= *m >> 3;
}

/* Until when to poll, from the medians and bounds; 0: sleep now. */
static uint64_t spin_until(const struct lcore *lc, const struct lcr_node_config *c)
{
	uint64_t idle = (uint64_t)c->idle_spin_us * 1000, io = (uint64_t)c->io_spin_us * 1000;
	uint64_t until = 0;

	if (c->spin_fixed) {
		uint64_t spin = lc->ring.in_flight && io > idle ? io : idle;
		return spin ? lc->last_work + spin : 0;
	}
	if (idle && lc->gap_med <= idle)
		until = lc->last_work + lc->gap_med + lc->gap_med / 2;
	if (io && lc->io_since && lc->io_med <= io) {
		uint64_t t = lc->io_since + lc->io_med + lc->io_med / 2;
		if (t > until)
			until = t;
	}
	return until;
}

/* After each iteration: learn from it. */
/* This thread's CPU time (ns): a syscall, so only while a snapshot is built or installed. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void spin_learn(struct lcore *lc, bool work)
{
	if (work) {
		if (lc->idle)
			median_add(&lc->gap_med, lc->now - lc->last_work);
		if (lc->spin_from) {
			/* It came while we polled: the poll paid. */
			lc->spun_ns += lc->now - lc->spin_from;
			lc->spin_hits++;
			lc->spin_from = 0;
		}
	}
	lc->idle = !work;
	if (lc->ring.in_flight && !lc->io_since)
		lc->io_since = lc->now;
	else if (!lc->ring.in_flight && lc->io_since) {
		median_add(&lc->io_med, lc->now - lc->io_since);
		lc->io_since = 0;
	}
}

/* ---- the loop ------------------------------------------------------------------- */

static bool iteration(struct lcore *lc)
{
	bool work = false;

	lc->now = lcr_rt_now_ns();
	lc->iterations++;
	work |= lcr_net_poll(lc->net, lc->now);
	work |= lcr_rt_run_posts(lc);
	if (lc->poll)
		work |= lc->poll(lc->node, lc->index, lc->poll_ctx, lc->now);
	work |= timers(lc);
	for (uint32_t i = 0; i < lc->n_groups; i++) {
		work |= lcr_rt_run_deferred(lc->groups[i]);
		work |= lcr_rt_propose_batch(lc->groups[i]);
		work |= lcr_rt_apply_pending(lc->groups[i]);
		work |= lcr_rt_snap_progress(lc->groups[i]);
		work |= lcr_rt_mship_progress(lc->groups[i]);
	}
	/* Our own write first, then the datagrams, with what the completions
	 * made (answers for flushed entries) among them. Sending first started
	 * the followers' writes a few microseconds earlier but the leader's own
	 * 20-30 us later (its submit waited behind the sends' delivery), and kept
	 * it busy after the sends while a woken follower could wait for its vCPU:
	 * one client, sleeping lcores, p50 9-30 us lower this way in 8 of 8
	 * alternating pairs (docs/benchmarks.md). */
	work |= lcr_rt_storage_progress(lc);
	work |= lcr_net_flush(lc->net, lc->now);
	if (atomic_load_explicit(&lc->m_want, memory_order_acquire))
		lcr_rt_metrics_render(lc);
	return work;
}

void *lcr_rt_lcore_main(void *arg)
{
	struct lcore *lc = arg;
	struct lcr_node *n = lc->node;

	/* Sleeping waits on the transport (its sockets) and on this set:
	 * storage completions and the application's own fd. */
	this_lcore = lc;
	/* Timeouts fire within 1 us of their time, not the default 50 us of
	 * slack: a DPDK lcore without receive interrupts naps on a timer, and
	 * timers are how every lcore wakes for its heartbeats and retransmits. */
	prctl(PR_SET_TIMERSLACK, 1000ul, 0, 0, 0);
	if (n->cfg.n_cores) {
		/* Pinned: the lcore's state stays in that core's caches. */
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(n->cfg.cores[lc->index], &set);
		int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
		if (rc != 0)
			fprintf(stderr, "lcraft: lcore %u: cannot pin to core %u: %s\n", lc->index,
				n->cfg.cores[lc->index], strerror(rc));
	}
	LCR_ASSERT(atomic_load(&lc->looping)); /* lcr_node_run() said so */
	/* The set (made at open) holds the ring's eventfd; the application's fd
	 * joins it here (set before lcr_node_run; a second run finds it there). */
	if (lc->poll_fd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = lc->poll_fd };
		if (epoll_ctl(lc->epfd, EPOLL_CTL_ADD, lc->poll_fd, &ev) < 0 && errno != EEXIST)
			fprintf(stderr,
				"lcraft: lcore %u: its poll fd %d cannot wake it (%s): it is "
				"polled every iteration, and sleeps wake on timers\n",
				lc->index, lc->poll_fd, strerror(errno));
	}

	while (!atomic_load_explicit(&n->stop, memory_order_relaxed)) {
		/* A build must never stall the loop: time its iterations, by the
		 * clock and on this thread's CPU (what preemption leaves out). */
		bool timed = lcr_unlikely(lc->building > 0);
		uint64_t cpu0 = timed ? thread_cpu_ns() : 0;
		bool work = iteration(lc);
		if (lcr_unlikely(timed || lc->building))
			lcr_rt_snap_iteration(lc, lcr_rt_now_ns() - lc->now,
					      timed ? thread_cpu_ns() - cpu0 : 0);
		spin_learn(lc, work);
		if (work) {
			lc->last_work = lc->now;
			continue;
		}
		if (n->cfg.busy_poll)
			continue;
		if (lc->now < spin_until(lc, &n->cfg)) {
			/* Poll on, but let a runnable thread have the CPU first:
			 * on a machine with fewer cores than busy threads the
			 * spinning must not starve the one with work. */
			if (!lc->spin_from)
				lc->spin_from = lc->now;
			sched_yield();
			continue;
		}
		if (lc->spin_from) {
			/* Polled for nothing: sleep after all. */
			lc->spun_ns += lc->now - lc->spin_from;
			lc->spin_misses++;
			lc->spin_from = 0;
		}
		/* Nothing to do: sleep until a datagram, a completion, the
		 * application's fd or the next timer (socket mode). */
		uint64_t dl = next_deadline(lc), t = lcr_rt_now_ns();
		uint64_t wait = dl > t ? dl - t : 0;
		if (wait > 100ull * 1000 * 1000)
			wait = 100ull * 1000 * 1000; /* notice lcr_node_stop() */
		if (wait == 0)
			continue; /* a timer is due, or the transport has datagrams queued */
		atomic_store_explicit(&lc->sleeping, true, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		/* The eventfd says "a completion or a task came": clear it, then
		 * look again, so that one arriving after the last look still
		 * wakes us and none that came before is slept on. */
		lcr_ring_eventfd_clear(&lc->ring);
		if (lcr_ring_ready(&lc->ring) || lcr_rt_posts_waiting(lc) ||
		    atomic_load_explicit(&lc->m_want, memory_order_relaxed) ||
		    atomic_load_explicit(&n->stop, memory_order_relaxed)) {
			atomic_store_explicit(&lc->sleeping, false, memory_order_relaxed);
			continue;
		}
		lc->sleeps++;
		lcr_net_wait(lc->net, lc->epfd, wait);
		atomic_store_explicit(&lc->sleeping, false, memory_order_relaxed);
	}
	/* Tasks posted before we noticed the stop still run here; later ones
	 * run in the next lcr_node_run() or in lcr_node_close(). */
	lcr_rt_run_posts(lc);
	/* Whoever still waits for our metrics stops waiting. */
	pthread_mutex_lock(&lc->m_mu);
	atomic_store(&lc->looping, false);
	pthread_cond_broadcast(&lc->m_cv);
	pthread_mutex_unlock(&lc->m_mu);
	this_lcore = NULL;
	return NULL;
}
