/* SPDX-License-Identifier: MIT */
/*
 * A follower that missed what the leader purged catches up from a snapshot:
 * three replicas on UDP loopback with a snapshot every 200 entries and 20
 * kept; one follower stops, 2,000 entries commit, and when it comes back it
 * installs the leader's snapshot (snapshots_installed >= 1) and ends with the
 * same state (count, hash) as the leader. Restarted again right after that
 * install, it keeps up: 10 more entries commit and all three replicas reach
 * the same applied count and state.
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

#define POLICY	200
#define KEEP	20
#define ENTRIES 2000
#define BATCH	500

static struct ch_cluster cl;
static uint16_t base_port;

static void on_loopback(struct lcr_node_config *c, uint32_t id)
{
	(void)id;
	c->core.snapshot_logs_since_last = POLICY;
	c->core.max_in_snapshot_log_to_keep = KEEP;
	ch_loopback(c, base_port);
}

/* A number from replica `id`'s group metrics ("key":n). */
static double metric(uint32_t id, const char *key)
{
	static char buf[1 << 16];
	char pat[80];
	int rc = lcr_group_metrics_json(cl.rep[id].group, buf, sizeof(buf));
	assert_true(rc > 0);
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(buf, pat);
	if (!p)
		fail_msg("no %s in replica %u's metrics: %s", key, id, buf);
	return strtod(p + strlen(pat), NULL);
}

static void test_snapshot_install_lagging_follower_r3(void **state)
{
	struct ch_batch b;
	(void)state;

	assert_int_equal(ch_init(&cl, "lcraft-snap-install", on_loopback), 0);
	cl.snapshots = true;
	uint32_t leader = ch_start_cluster(&cl);
	ch_commit(&cl, leader, &b, 0, 10, 5000);
	uint32_t lag = leader % CH_NODES + 1;
	ch_stop(&cl, lag);
	for (uint32_t i = 0; i < ENTRIES; i += BATCH) {
		ch_propose(&cl, leader, &b, 10 + i, BATCH, 0);
		assert_int_equal(atomic_load(&b.ok), BATCH);
	}
	uint64_t want = ch_applied(&cl, leader);
	/* Builds and purges follow the applies a little later. */
	double purged = 0;
	for (int i = 0; i < 500 && (purged = metric(leader, "purged_index")) <= 10; i++)
		usleep(10000);
	printf("leader %u applied %llu, purged to %.0f, built %.0f snapshots\n", leader,
	       (unsigned long long)want, purged, metric(leader, "snapshots_built"));
	assert_true(purged > 10); /* what the follower misses is gone from the log */

	ch_start(&cl, lag);
	ch_wait_converged(&cl, want, 20000);
	double installed = metric(lag, "snapshots_installed");
	printf("follower %u caught up to %llu: snapshots_installed %.0f\n", lag,
	       (unsigned long long)want, installed);
	assert_true(installed >= 1);
	assert_int_equal(atomic_load(&cl.rep[lag].sm.hash), atomic_load(&cl.rep[leader].sm.hash));

	/* Restarted right after its install: it opens from the installed
	 * snapshot and the log cut after it, and keeps up. */
	ch_stop(&cl, lag);
	ch_start(&cl, lag);
	leader = ch_wait_leader(&cl, 5000);
	assert_true(leader != 0);
	ch_propose(&cl, leader, &b, 10 + ENTRIES, 10, 0);
	assert_int_equal(atomic_load(&b.ok), 10);
	want = ch_applied(&cl, leader);
	for (int i = 0; i < 300 && ch_applied(&cl, lag) < want; i++)
		usleep(10000);
	if (ch_applied(&cl, lag) < want) {
		static char dbg[1 << 16];
		for (uint32_t i = 1; i <= CH_NODES; i++) {
			lcr_group_metrics_json(cl.rep[i].group, dbg, sizeof(dbg));
			printf("DBG %u: %s\n", i, dbg);
		}
	}
	ch_wait_converged(&cl, want, 20000);
	printf("after a restart right after the install: follower %u at %llu like the others\n",
	       lag, (unsigned long long)ch_applied(&cl, lag));

	ch_stop_all(&cl);
	ch_fini(&cl);
}

int main(void)
{
	base_port = (uint16_t)(24000 + (getpid() % 1500) * 20);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_install_lagging_follower_r3),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
