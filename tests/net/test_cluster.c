/* SPDX-License-Identifier: MIT */
/*
 * Three nodes in one process on loopback, each on its own thread, through the
 * public API (lcraft.h): real sockets, real io_uring storage. A leader is
 * elected; proposals commit and are applied in the same order everywhere;
 * the leader stops, another takes over within two election timeouts; the old
 * one restarts from its disk and catches up; a follower that missed 1.2 MiB
 * catches up; reads chained from their callbacks run beside proposals;
 * nothing acknowledged is lost. The cluster comes from cluster_harness.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_harness.h"

static struct ch_cluster cl;
static uint16_t base_port;

/* UDP on loopback: node i listens on base_port + 10 (i - 1). */
static void on_loopback(struct lcr_node_config *c, uint32_t id)
{
	(void)id;
	ch_loopback(c, base_port);
}

/* Reads chained from their own callbacks (a closed-loop reader). */
struct chain {
	struct lcr_group *g;
	uint32_t want;
	_Atomic uint32_t done, failed;
};

static void read_again(void *ctx, int err, uint32_t leader)
{
	struct chain *c = ctx;
	(void)leader;
	if (err)
		atomic_fetch_add(&c->failed, 1);
	/* A trigger too: it makes the core send at once, from inside the walk. */
	struct lcr_event hb = { .type = LCR_EV_TRIGGER_HEARTBEAT };
	if (lcr_group_event(c->g, &hb) < 0)
		atomic_fetch_add(&c->failed, 1);
	if (atomic_fetch_add(&c->done, 1) + 1 < c->want &&
	    lcr_read(c->g, LCR_READ_INDEX, read_again, c) < 0)
		atomic_fetch_add(&c->failed, 1);
}

static void start_reads(struct lcr_node *n, void *arg)
{
	struct chain *c = arg;
	(void)n;
	for (int i = 0; i < 8; i++)
		if (lcr_read(c->g, LCR_READ_INDEX, read_again, c) < 0)
			atomic_fetch_add(&c->failed, 1);
}

/* The first number after `key` following `after` in metrics JSON (0: none). */
static uint64_t json_u64(const char *m, const char *after, const char *key)
{
	char pat[64];
	const char *p = strstr(m, after);
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = p ? strstr(p, pat) : NULL;
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* A stage's sample count in a group's "stages" (engine/runtime/trace.c). */
static uint64_t stage_count(const char *m, const char *stage)
{
	char after[64];
	const char *st = strstr(m, "\"stages\"");
	snprintf(after, sizeof(after), "\"%s\":{", stage);
	return st ? json_u64(st, after, "count") : 0;
}

static void test_cluster_elect_replicate_failover_catchup(void **state)
{
	struct ch_batch *b = calloc(1, sizeof(*b));
	(void)state;

	uint32_t l = ch_start_cluster(&cl);

	/* Each replica applies the leader's blank entry, then ours. */
	uint64_t took_ns = ch_commit(&cl, l, b, 0, 3000, 5000);
	print_message("3000 proposals committed in %.1f ms\n", (double)took_ns / 1e6);

	/* The leader goes; a new one within two election timeouts. */
	uint32_t l2 = ch_fail_leader(&cl, l);
	ch_commit(&cl, l2, b, 3000, 1000, 5000);

	/* The old leader restarts from its disk and catches up. */
	ch_start(&cl, l);
	ch_commit(&cl, l2, b, 4000, 10, 10000);

	/* A follower misses 150 entries of 8 KiB: 1.2 MiB, more than one message
	 * carries, so its AppendEntries go in parts. (Much more than the UDP
	 * stream's window, 1024 datagrams, can stall a loaded machine for long:
	 * a known limit, in the notes of issue 5.) */
	uint32_t f = l2 % CH_NODES + 1;
	ch_stop(&cl, f);
	ch_propose(&cl, l2, b, 5000, 150, 8192);
	assert_int_equal(atomic_load(&b->ok), 150);
	ch_start(&cl, f);
	uint64_t applied = ch_applied(&cl, l2);
	uint64_t t0 = ch_now_ns();
	ch_wait_converged(&cl, applied, 10000);
	print_message("follower %u caught up on 150 entries of 8 KiB in %.1f ms\n", f,
		      (double)(ch_now_ns() - t0) / 1e6);

	/* Readers whose callbacks read again while proposals commit: the reads'
	 * callbacks run in the middle of the core's commands (before an apply),
	 * and a read made there must not disturb them. */
	struct chain *rc = calloc(1, sizeof(*rc));
	rc->g = cl.rep[l2].group;
	rc->want = 4000;
	assert_int_equal(lcr_node_post(cl.rep[l2].node, 0, start_reads, rc), 0);
	ch_propose(&cl, l2, b, 6000, 3000, 0);
	assert_int_equal(atomic_load(&b->ok), 3000);
	for (int i = 0; i < 2000 && atomic_load(&rc->done) < rc->want + 7; i++)
		usleep(5000);
	print_message("%u chained reads (%u failed) beside 3000 proposals\n",
		      atomic_load(&rc->done), atomic_load(&rc->failed));
	assert_true(atomic_load(&rc->done) >= rc->want);
	assert_int_equal(atomic_load(&rc->failed), 0);
	ch_wait_converged(&cl, ch_applied(&cl, l2), 10000);
	free(rc);

	char *m = malloc(1 << 16);
	assert_true(lcr_node_metrics_json(cl.rep[l2].node, m, 1 << 16) > 0);
	print_message("%s\n", m);
	/* The leader's timeline saw its proposals (3000 at once: a few
	 * batches), their commits, its round trips. */
	assert_true(stage_count(m, "proposal_queue") >= 3000);
	assert_true(stage_count(m, "commit") > 0);
	assert_true(stage_count(m, "replication_rtt") > 0);
	/* A follower's: its writes and acks; its stream receiver handed the
	 * leader's messages up uncopied; the socket timed their wait. */
	uint32_t fo = l2 % CH_NODES + 1;
	assert_true(lcr_node_metrics_json(cl.rep[fo].node, m, 1 << 16) > 0);
	assert_true(stage_count(m, "follower_durable") > 0);
	assert_true(stage_count(m, "follower_ack") > 0);
	assert_true(json_u64(m, "\"stream_rx\"", "direct") > 0);
	assert_true(json_u64(m, "\"rx_delay\"", "count") > 0);
	free(m);
	ch_stop_all(&cl);
	free(b);
}

int main(void)
{
	if (ch_init(&cl, "lcraft-cluster", on_loopback) < 0)
		return 1;
	base_port = (uint16_t)(20000 + (getpid() % 2000) * 20);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_elect_replicate_failover_catchup),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	ch_fini(&cl);
	return rc;
}
