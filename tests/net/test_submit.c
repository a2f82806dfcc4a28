/* SPDX-License-Identifier: MIT */
/*
 * Requests from any thread (lcraft.h, lcr_submit and completion queues) on a
 * three-node cluster on loopback: proposals and reads submitted from the
 * test's own thread come back on the queue, every one, with their log ids in
 * order and no allocation per request; a proposal with a 50 ms deadline on a
 * leader that lost both followers is answered -LCR_ETIMEDOUT by then, and the
 * one without a deadline -LCR_ENOTLEADER when the leader steps down for want
 * of a quorum (CheckQuorum), within two election timeouts; a cancelled one
 * comes back -ECANCELED at once. lcr_group_wait from the test's thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_harness.h"

#define N_PROPOSALS 3000
#define DEPTH	    64

static struct ch_cluster cl;
static uint16_t base_port;
static _Atomic uint64_t allocs; /* lcraft's own allocations, every node */

static void *count_alloc(void *ctx, size_t size)
{
	(void)ctx;
	atomic_fetch_add(&allocs, 1);
	return malloc(size);
}

static void count_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

/* UDP on loopback; every allocation counted. */
static void configure(struct lcr_node_config *c, uint32_t id)
{
	(void)id;
	ch_loopback(c, base_port);
	c->alloc.alloc = count_alloc;
	c->alloc.free = count_free;
}

static void test_submit_from_any_thread(void **state)
{
	(void)state;
	uint32_t l = ch_start_cluster(&cl);
	struct lcr_cq *cq;
	assert_int_equal(lcr_cq_open(cl.rep[l].node, DEPTH, &cq), 0);

	static struct lcr_req req[DEPTH];
	static char text[DEPTH][32];
	static uint64_t res[DEPTH];
	struct lcr_req *free_req[DEPTH], *done[DEPTH];
	uint32_t n_free = DEPTH, sent = 0, ok = 0;
	struct lcr_log_id last = { { 0, 0 }, 0 };
	uint64_t allocs0 = 0;
	for (uint32_t i = 0; i < DEPTH; i++)
		free_req[i] = &req[i];

	uint32_t retried = 0;
	bool counting = false;
	while (ok < N_PROPOSALS) {
		if (!counting && ok >= DEPTH) { /* the first round made what it needs */
			allocs0 = atomic_load(&allocs);
			counting = true;
		}
		while (sent < N_PROPOSALS && n_free > 0) {
			struct lcr_req *r = free_req[n_free - 1];
			uint32_t k = (uint32_t)(r - req);
			memset(r, 0, sizeof(*r));
			r->op = LCR_REQ_PROPOSE;
			r->group = CH_GROUP;
			r->len = (uint32_t)snprintf(text[k], sizeof(text[k]), "entry %u", sent);
			r->data = text[k];
			r->result = &res[k];
			r->result_cap = sizeof(res[k]);
			int rc = lcr_submit(cq, r);
			if (rc == -LCR_EFULL)
				break;
			assert_int_equal(rc, 0);
			n_free--;
			sent++;
		}
		int got = lcr_cq_wait(cq, done, DEPTH, 5000000000ull);
		assert_true(got > 0);
		for (int i = 0; i < got; i++) {
			struct lcr_req *r = done[i];
			free_req[n_free++] = r;
			if (r->err == -LCR_ENOLEASE) {
				/* A leader fresh from its election has no lease until a
				 * follower acknowledges it: that entry goes again. */
				retried++;
				sent--;
				continue;
			}
			if (r->err != 0) {
				print_message("request failed: %s\n", lcr_strerror(r->err));
				continue;
			}
			ok++;
			/* Completions of one group come in log order. */
			assert_true(lcr_log_id_cmp(r->log_id, last) > 0);
			last = r->log_id;
			assert_int_equal(r->result_len, 8);
		}
	}
	uint64_t per_req = atomic_load(&allocs) - allocs0;
	print_message("%u proposals from the test's thread, %u ok (%u sent again: no lease "
		      "yet), last at %llu; %llu allocations after the first %u\n",
		      N_PROPOSALS, ok, retried, (unsigned long long)last.index,
		      (unsigned long long)per_req, DEPTH);
	assert_int_equal(ok, N_PROPOSALS);
	assert_int_equal(lcr_cq_busy(cq), 0);
	/* Timers and retransmissions allocate nothing either: none at all. */
	assert_int_equal(per_req, 0);

	/* A read afterwards reflects at least the last write. */
	struct lcr_req rd = { .op = LCR_REQ_READ, .group = CH_GROUP, .policy = LCR_READ_INDEX };
	assert_int_equal(lcr_submit(cq, &rd), 0);
	assert_int_equal(lcr_cq_wait(cq, done, 1, 5000000000ull), 1);
	assert_ptr_equal(done[0], &rd);
	assert_int_equal(rd.err, 0);
	assert_true(lcr_log_id_cmp(rd.log_id, last) >= 0);

	/* Waiting from another thread: a follower applies what the leader did
	 * (its applied index reaches the last write's), knows the leader; the
	 * leader's role; a condition that never holds times out; no such group. */
	uint32_t f = l % CH_NODES + 1;
	assert_int_equal(lcr_group_wait(cl.rep[f].node, CH_GROUP, LCR_WAIT_APPLIED, last.index,
					5000000000ull),
			 0);
	assert_int_equal(lcr_group_wait(cl.rep[f].node, CH_GROUP, LCR_WAIT_LEADER, l, 0), 0);
	assert_int_equal(
		lcr_group_wait(cl.rep[l].node, CH_GROUP, LCR_WAIT_ROLE, LCR_ROLE_LEADER, 0), 0);
	uint64_t w0 = ch_now_ns();
	assert_int_equal(lcr_group_wait(cl.rep[f].node, CH_GROUP, LCR_WAIT_APPLIED,
					last.index + 1000000, 100000000ull),
			 -LCR_ETIMEDOUT);
	uint64_t waited = ch_now_ns() - w0;
	assert_true(waited >= 100000000ull && waited < 1000000000ull);
	assert_int_equal(lcr_group_wait(cl.rep[f].node, 77, LCR_WAIT_LEADER, 0, 0), -ENOENT);
	assert_int_equal(lcr_group_wait(cl.rep[f].node, CH_GROUP, 9, 0, 0), -EINVAL);

	/* Bad requests are refused at once. */
	struct lcr_req bad = { .op = 9, .group = CH_GROUP };
	assert_int_equal(lcr_submit(cq, &bad), -EINVAL);
	bad.op = LCR_REQ_PROPOSE; /* no data */
	assert_int_equal(lcr_submit(cq, &bad), -EINVAL);
	/* Requests back on the queue but not reaped still count against its
	 * depth: the queue never holds more than it can (a small one here). */
	struct lcr_cq *small;
	assert_int_equal(lcr_cq_open(cl.rep[l].node, 2, &small), 0);
	struct lcr_req two[3];
	for (int i = 0; i < 3; i++)
		two[i] = (struct lcr_req){ .op = LCR_REQ_READ,
					   .group = CH_GROUP,
					   .policy = LCR_READ_INDEX };
	assert_int_equal(lcr_submit(small, &two[0]), 0);
	assert_int_equal(lcr_submit(small, &two[1]), 0);
	for (int i = 0; i < 5000 && lcr_cq_busy(small) > 0; i++)
		usleep(1000); /* both answered: their slots are free, not reaped */
	assert_int_equal(lcr_cq_busy(small), 0);
	assert_int_equal(lcr_submit(small, &two[2]), -LCR_EFULL);
	assert_int_equal(lcr_cq_reap(small, done, 2), 2);
	assert_int_equal(lcr_submit(small, &two[2]), 0);
	assert_int_equal(lcr_cq_wait(small, done, 2, 5000000000ull), 1);
	assert_int_equal(two[2].err, 0);
	lcr_cq_close(small);

	/* A cancel that comes after its request is back does nothing, even to
	 * the same request submitted again at once (into the same slot). */
	struct lcr_req again = { .op = LCR_REQ_READ, .group = CH_GROUP, .policy = LCR_READ_INDEX };
	assert_int_equal(lcr_submit(cq, &again), 0);
	assert_int_equal(lcr_cq_wait(cq, done, 1, 5000000000ull), 1);
	assert_int_equal(again.err, 0);
	for (int round = 0; round < 50; round++) {
		assert_int_equal(lcr_cancel(cq, &again), 0);
		assert_int_equal(lcr_submit(cq, &again), 0);
		assert_int_equal(lcr_cq_wait(cq, done, 1, 5000000000ull), 1);
		assert_ptr_equal(done[0], &again);
		assert_int_equal(again.err, 0);
	}
	/* A deadline beyond what a clock counts is refused. */
	struct lcr_req far = { .op = LCR_REQ_READ,
			       .group = CH_GROUP,
			       .policy = LCR_READ_INDEX,
			       .timeout_ns = UINT64_MAX };
	assert_int_equal(lcr_submit(cq, &far), -EINVAL);

	/* A group the node does not have comes back -ENOENT. */
	struct lcr_req none = { .op = LCR_REQ_READ, .group = 77, .policy = LCR_READ_INDEX };
	assert_int_equal(lcr_submit(cq, &none), 0);
	assert_int_equal(lcr_cq_wait(cq, done, 1, 5000000000ull), 1);
	assert_int_equal(none.err, -ENOENT);

	ch_stop_all(&cl);
	lcr_cq_close(cq);
}

static void test_submit_deadline_on_a_cut_off_leader(void **state)
{
	(void)state;
	uint32_t l = ch_start_cluster(&cl);
	struct lcr_cq *cq;
	assert_int_equal(lcr_cq_open(cl.rep[l].node, 4, &cq), 0);
	for (uint32_t i = 1; i <= CH_NODES; i++)
		if (i != l)
			ch_stop(&cl, i);

	/* With a 50 ms deadline: answered by then, whatever the cluster does. */
	struct lcr_req timed = { .op = LCR_REQ_PROPOSE,
				 .group = CH_GROUP,
				 .data = "late",
				 .len = 4,
				 .timeout_ns = 50000000 };
	/* Without one: it waits for the quorum that will not come. */
	struct lcr_req open_ended = {
		.op = LCR_REQ_PROPOSE, .group = CH_GROUP, .data = "never", .len = 5
	};
	/* And one the application gives up on. */
	struct lcr_req dropped = {
		.op = LCR_REQ_PROPOSE, .group = CH_GROUP, .data = "drop", .len = 4
	};
	assert_int_equal(lcr_submit(cq, &open_ended), 0);
	assert_int_equal(lcr_submit(cq, &dropped), 0);
	struct lcr_req *done[4];
	uint64_t c0 = ch_now_ns();
	assert_int_equal(lcr_cancel(cq, &dropped), 0);
	assert_int_equal(lcr_cq_wait(cq, done, 4, 2000000000ull), 1);
	print_message("the cancelled proposal came back after %.1f ms: %s\n",
		      (double)(ch_now_ns() - c0) / 1e6, lcr_strerror(dropped.err));
	assert_ptr_equal(done[0], &dropped);
	assert_int_equal(dropped.err, -ECANCELED);
	assert_int_equal(lcr_cancel(cq, &dropped), 0); /* back already: nothing happens */
	struct lcr_req never = { .op = LCR_REQ_READ };
	assert_int_equal(lcr_cancel(cq, &never), -EINVAL);
	uint64_t t0 = ch_now_ns();
	assert_int_equal(lcr_submit(cq, &timed), 0);
	int got = lcr_cq_wait(cq, done, 4, 2000000000ull);
	uint64_t took = ch_now_ns() - t0;
	print_message("the 50 ms proposal came back after %.1f ms: %s\n", (double)took / 1e6,
		      lcr_strerror(timed.err));
	assert_int_equal(got, 1);
	assert_ptr_equal(done[0], &timed);
	assert_int_equal(timed.err, -LCR_ETIMEDOUT);
	assert_true(took >= 50000000ull && took < 150000000ull);
	/* Their slots stay taken until the proposals behind them end. */
	assert_int_equal(lcr_cq_busy(cq), 3);

	/* The one without a deadline: the leader hears from no quorum for a
	 * lease, steps down (CheckQuorum) and answers it, within two election
	 * timeouts of losing its followers. */
	got = lcr_cq_wait(cq, done, 4, 2000000000ull);
	uint64_t down = ch_now_ns() - t0;
	print_message("the open-ended proposal came back after %.1f ms: %s\n", (double)down / 1e6,
		      lcr_strerror(open_ended.err));
	assert_int_equal(got, 1);
	assert_ptr_equal(done[0], &open_ended);
	assert_int_equal(open_ended.err, -LCR_ENOTLEADER);
	assert_true(down < 2ull * CH_ELECTION_MAX_MS * 1000000ull);
	/* The timed-out one's slot comes free when its proposal ends (the
	 * step-down ended both): on the lcore, just after. */
	for (int i = 0; i < 1000 && lcr_cq_busy(cq) > 0; i++)
		usleep(1000);
	assert_int_equal(lcr_cq_busy(cq), 0);

	/* The node closes with nothing out. */
	ch_stop(&cl, l);
	assert_int_equal(lcr_cq_reap(cq, done, 4), 0);
	lcr_cq_close(cq);
}

int main(void)
{
	if (ch_init(&cl, "lcraft-submit", configure) < 0)
		return 1;
	base_port = (uint16_t)(22000 + (getpid() % 2000) * 20);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_submit_from_any_thread),
		cmocka_unit_test(test_submit_deadline_on_a_cut_off_leader),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	ch_fini(&cl);
	return rc;
}
