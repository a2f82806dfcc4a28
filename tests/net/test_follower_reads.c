/* SPDX-License-Identifier: MIT */
/*
 * Linearizable reads served by followers (ReadIndex from followers) on a
 * three-node cluster on loopback: after writes on the leader, a read
 * submitted to a follower comes back with a log id at or past the last
 * write's, and the follower's state machine holds every write; LeaseRead on
 * a follower is refused. Then a measurement: reads per second with the reads
 * spread over every node against the same number sent to the leader alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_harness.h"

#define N_WRITES   500
#define DEPTH	   32		       /* requests out per completion queue */
#define MEASURE_NS (1000ull * 1000000) /* each measurement runs this long */

static struct ch_cluster cl;
static uint16_t base_port;

static void configure(struct lcr_node_config *c, uint32_t id)
{
	(void)id;
	ch_loopback(c, base_port);
}

/* One request on `cq`, waited for; returns its error. */
static int one(struct lcr_cq *cq, struct lcr_req *r)
{
	struct lcr_req *done;
	assert_int_equal(lcr_submit(cq, r), 0);
	assert_int_equal(lcr_cq_wait(cq, &done, 1, 5000000000ull), 1);
	assert_ptr_equal(done, r);
	return r->err;
}

/* N_WRITES proposals on the leader; returns the last one's log id. */
static struct lcr_log_id write_all(struct lcr_cq *cq)
{
	static struct lcr_req req[DEPTH];
	static char text[DEPTH][32];
	struct lcr_req *free_req[DEPTH], *done[DEPTH];
	uint32_t n_free = DEPTH, sent = 0, ok = 0;
	struct lcr_log_id last = { { 0, 0 }, 0 };

	for (uint32_t i = 0; i < DEPTH; i++)
		free_req[i] = &req[i];
	while (ok < N_WRITES) {
		while (sent < N_WRITES && n_free > 0) {
			struct lcr_req *r = free_req[--n_free];
			uint32_t k = (uint32_t)(r - req);
			memset(r, 0, sizeof(*r));
			r->op = LCR_REQ_PROPOSE;
			r->group = CH_GROUP;
			r->len = (uint32_t)snprintf(text[k], sizeof(text[k]), "write %u", sent);
			r->data = text[k];
			assert_int_equal(lcr_submit(cq, r), 0);
			sent++;
		}
		int got = lcr_cq_wait(cq, done, DEPTH, 5000000000ull);
		assert_true(got > 0);
		for (int i = 0; i < got; i++) {
			free_req[n_free++] = done[i];
			if (done[i]->err == -LCR_ENOLEASE) { /* a fresh leader: again */
				sent--;
				continue;
			}
			assert_int_equal(done[i]->err, 0);
			ok++;
			if (lcr_log_id_cmp(done[i]->log_id, last) > 0)
				last = done[i]->log_id;
		}
	}
	return last;
}

static void test_follower_read_sees_the_writes(void **state)
{
	(void)state;
	uint32_t l = ch_start_cluster(&cl);
	uint32_t f = l % CH_NODES + 1;
	struct lcr_cq *cq, *fcq;
	assert_int_equal(lcr_cq_open(cl.rep[l].node, DEPTH, &cq), 0);
	assert_int_equal(lcr_cq_open(cl.rep[f].node, DEPTH, &fcq), 0);

	struct lcr_log_id last = write_all(cq);
	uint64_t written = ch_applied(&cl, l);
	assert_true(written >= N_WRITES);

	/* Right after the writes: the follower asks the leader, waits until it
	 * applied the leader's read index, and serves. */
	struct lcr_req rd = { .op = LCR_REQ_READ, .group = CH_GROUP, .policy = LCR_READ_INDEX };
	assert_int_equal(one(fcq, &rd), 0);
	print_message("follower %u read at %llu-%u:%llu after the last write at %llu-%u:%llu; "
		      "it applied %llu entries, the leader %llu\n",
		      f, (unsigned long long)rd.log_id.lid.term, rd.log_id.lid.node,
		      (unsigned long long)rd.log_id.index, (unsigned long long)last.lid.term,
		      last.lid.node, (unsigned long long)last.index,
		      (unsigned long long)ch_applied(&cl, f), (unsigned long long)written);
	assert_true(lcr_log_id_cmp(rd.log_id, last) >= 0);
	assert_true(ch_applied(&cl, f) >= written);

	/* The other follower too, through lcr_read's path in the runtime. */
	uint32_t f2 = f % CH_NODES + 1;
	if (f2 == l)
		f2 = f2 % CH_NODES + 1;
	struct lcr_cq *f2cq;
	assert_int_equal(lcr_cq_open(cl.rep[f2].node, DEPTH, &f2cq), 0);
	struct lcr_req rd2 = { .op = LCR_REQ_READ, .group = CH_GROUP, .policy = LCR_READ_INDEX };
	assert_int_equal(one(f2cq, &rd2), 0);
	assert_true(lcr_log_id_cmp(rd2.log_id, last) >= 0);
	assert_true(ch_applied(&cl, f2) >= written);

	/* A follower has no lease of its own. */
	struct lcr_req lease = { .op = LCR_REQ_READ, .group = CH_GROUP, .policy = LCR_READ_LEASE };
	assert_int_equal(one(fcq, &lease), -LCR_ENOTLEADER);

	ch_stop_all(&cl);
	lcr_cq_close(cq);
	lcr_cq_close(fcq);
	lcr_cq_close(f2cq);
}

/* Reads for MEASURE_NS through the three queues, DEPTH out on each; reads/s. */
static double measure(struct lcr_cq *q[3])
{
	static struct lcr_req req[3][DEPTH];
	struct lcr_req *done[DEPTH];
	uint64_t ok = 0, failed = 0;

	for (int k = 0; k < 3; k++)
		for (int i = 0; i < DEPTH; i++) {
			req[k][i] = (struct lcr_req){ .op = LCR_REQ_READ,
						      .group = CH_GROUP,
						      .policy = LCR_READ_INDEX };
			assert_int_equal(lcr_submit(q[k], &req[k][i]), 0);
		}
	uint64_t t0 = ch_now_ns(), end = t0 + MEASURE_NS;
	bool stop = false;
	while (!stop || lcr_cq_busy(q[0]) + lcr_cq_busy(q[1]) + lcr_cq_busy(q[2]) > 0) {
		if (ch_now_ns() >= end)
			stop = true;
		for (int k = 0; k < 3; k++) {
			uint32_t got = lcr_cq_reap(q[k], done, DEPTH);
			for (uint32_t i = 0; i < got; i++) {
				if (done[i]->err == 0)
					ok++;
				else
					failed++;
				if (!stop)
					assert_int_equal(lcr_submit(q[k], done[i]), 0);
			}
		}
	}
	double secs = (double)(ch_now_ns() - t0) / 1e9;
	assert_int_equal(failed, 0);
	return (double)ok / secs;
}

static void test_reads_per_second_followers_vs_leader(void **state)
{
	(void)state;
	uint32_t l = ch_start_cluster(&cl);
	struct lcr_cq *on_leader[3], *spread[3];
	for (int k = 0; k < 3; k++) {
		assert_int_equal(lcr_cq_open(cl.rep[l].node, DEPTH, &on_leader[k]), 0);
		assert_int_equal(lcr_cq_open(cl.rep[k + 1].node, DEPTH, &spread[k]), 0);
	}
	write_all(on_leader[0]);
	double leader_only = measure(on_leader);
	double everywhere = measure(spread);
	print_message("ReadIndex reads/s, %d out per queue, 3 queues, one test thread: "
		      "leader only %.0f, spread over the leader and both followers %.0f "
		      "(%.2fx)\n",
		      DEPTH, leader_only, everywhere, everywhere / leader_only);
	assert_true(leader_only > 0 && everywhere > 0);
	ch_stop_all(&cl);
	for (int k = 0; k < 3; k++) {
		lcr_cq_close(on_leader[k]);
		lcr_cq_close(spread[k]);
	}
}

int main(void)
{
	if (ch_init(&cl, "lcraft-follower-reads", configure) < 0)
		return 1;
	base_port = (uint16_t)(42000 + (getpid() % 1000) * 20);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_follower_read_sees_the_writes),
		cmocka_unit_test(test_reads_per_second_followers_vs_leader),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	ch_fini(&cl);
	return rc;
}
