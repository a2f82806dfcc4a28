/* SPDX-License-Identifier: MIT */
/*
 * The node runtime across threads, on a one-node cluster with two lcores
 * (group 1 on lcore 1, group 2 on lcore 0), through the public API:
 *
 *  - a task posted to a sleeping lcore runs at once, not when its sleep ends;
 *  - metrics asked for from a thread that is no lcore come back whole, each
 *    lcore's part rendered by that lcore, also while proposals run;
 *  - lcr_node_close() answers every proposal still waiting, exactly once,
 *    with -LCR_ESTOPPED (or 0 for what was applied before the stop).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lcraft.h"

#define PROPOSALS 2000

static char dir[256];
static uint16_t port;
static struct lcr_node *node;
static struct lcr_group *grp[3]; /* 1-based */
static pthread_t runner;
static _Atomic uint64_t applied[3];

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static _Atomic uint32_t not_normal; /* entries apply saw that no one proposed */

static void sm_apply(void *ctx, const struct lcr_entry *e, void *out, uint32_t *rlen)
{
	(void)out;
	if (e->type != LCR_ENTRY_NORMAL) /* docs/api.md: blank entries are not passed */
		atomic_fetch_add(&not_normal, 1);
	atomic_fetch_add((_Atomic uint64_t *)ctx, 1);
	*rlen = 0;
}

static void *run_node(void *arg)
{
	lcr_node_run(arg);
	return NULL;
}

static int setup(void **state)
{
	struct lcr_node_config c;
	char why[256];
	(void)state;

	snprintf(dir, sizeof(dir), "%s/lcraft-runtime-XXXXXX",
		 getenv("LCR_TEST_DIR") ? getenv("LCR_TEST_DIR") : "/var/tmp");
	if (!mkdtemp(dir))
		fail_msg("mkdtemp %s: %s", dir, strerror(errno));
	port = (uint16_t)(20000 + (getpid() % 20000));
	lcr_node_config_default(&c);
	c.id = 1;
	c.cluster = 9;
	c.data_dir = dir;
	c.bind_host = "127.0.0.1";
	c.lcores = 2;
	c.segment_bytes = 8u << 20;
	c.n_peers = 1;
	c.peers[0].id = 1;
	snprintf(c.peers[0].host, sizeof(c.peers[0].host), "127.0.0.1");
	c.peers[0].port = port;
	if (lcr_node_open(&node, &c, why, sizeof(why)) < 0)
		fail_msg("node: %s", why);
	for (uint32_t g = 1; g <= 2; g++) {
		struct lcr_sm_ops ops = { .apply = sm_apply };
		if (lcr_group_open(node, g, &ops, &applied[g], &grp[g], why, sizeof(why)) < 0)
			fail_msg("group %u: %s", g, why);
	}
	assert_int_equal(lcr_group_lcore(node, 1), 1);
	assert_int_equal(lcr_group_lcore(node, 2), 0);
	assert_int_equal(pthread_create(&runner, NULL, run_node, node), 0);
	/* A one-node cluster elects itself. */
	for (int i = 0; i < 300; i++) {
		struct lcr_core_status s1, s2;
		lcr_group_status(grp[1], &s1);
		lcr_group_status(grp[2], &s2);
		if (s1.role == LCR_ROLE_LEADER && s2.role == LCR_ROLE_LEADER)
			return 0;
		usleep(10000);
	}
	fail_msg("no leader within 3 s");
	return -1;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	if (node) {
		lcr_node_stop(node);
		pthread_join(runner, NULL);
		lcr_node_close(node);
		node = NULL;
	}
	assert_int_equal(atomic_load(&not_normal), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return 0;
}

/* ---- posted tasks wake a sleeping lcore ----------------------------------------- */

struct ping {
	uint64_t sent_ns;
	_Atomic uint64_t ran_ns;
};

static void ping_task(struct lcr_node *n, void *arg)
{
	struct ping *p = arg;
	(void)n;
	atomic_store(&p->ran_ns, now_ns());
}

static void test_runtime_post_wakes_a_sleeping_lcore(void **state)
{
	(void)state;
	uint64_t worst = 0;

	/* Idle lcores sleep up to 100 ms at a time (one-node groups send no
	 * heartbeats); each task comes after 60 ms of quiet. */
	for (int i = 0; i < 10; i++) {
		usleep(60000);
		struct ping p = { .sent_ns = now_ns() };
		assert_int_equal(lcr_node_post(node, (uint32_t)(i % 2), ping_task, &p), 0);
		while (atomic_load(&p.ran_ns) == 0)
			usleep(100);
		uint64_t d = atomic_load(&p.ran_ns) - p.sent_ns;
		if (d > worst)
			worst = d;
	}
	printf("slowest of 10 posted tasks to a sleeping lcore: %.0f us\n", (double)worst / 1e3);
	/* Without the wake-up it is up to the rest of a 100 ms sleep. */
	assert_true(worst < 20ull * 1000 * 1000);
}

/* ---- metrics from another thread -------------------------------------------------- */

struct batch {
	struct lcr_group *g;
	uint32_t n;
	_Atomic uint32_t ok, stopped, other;
};

static void proposed(void *ctx, int err, uint32_t leader, const void *res, uint32_t len)
{
	struct batch *b = ctx;
	(void)leader;
	(void)res;
	(void)len;
	if (err == 0)
		atomic_fetch_add(&b->ok, 1);
	else if (err == -LCR_ESTOPPED)
		atomic_fetch_add(&b->stopped, 1);
	else
		atomic_fetch_add(&b->other, 1);
}

static void propose_task(struct lcr_node *n, void *arg)
{
	struct batch *b = arg;
	uint8_t data[64] = { 1 };
	(void)n;
	for (uint32_t i = 0; i < b->n; i++)
		if (lcr_propose(b->g, data, sizeof(data), proposed, b) < 0)
			atomic_fetch_add(&b->other, 1);
}

/*
 * A task that posts itself again at once, forever (a busy application, or a
 * bug): the lcore must still receive, run timers and commit. The ring is
 * drained only up to what was posted when the drain began.
 */
static _Atomic bool repost_on;
static _Atomic uint64_t reposts;

static void repost_task(struct lcr_node *n, void *arg)
{
	atomic_fetch_add(&reposts, 1);
	if (atomic_load(&repost_on))
		(void)lcr_node_post(n, 0, repost_task, arg);
}

static void test_runtime_reposting_task_does_not_starve_the_loop(void **state)
{
	(void)state;
	struct batch b = { .g = grp[2], .n = PROPOSALS }; /* group 2 runs on lcore 0 */

	atomic_store(&repost_on, true);
	atomic_store(&reposts, 0);
	assert_int_equal(lcr_node_post(node, 0, repost_task, NULL), 0);
	assert_int_equal(lcr_node_post(node, 0, propose_task, &b), 0);
	for (int i = 0; i < 500 && atomic_load(&b.ok) < PROPOSALS; i++)
		usleep(10000);
	/* Counted while the task still re-posts itself. */
	uint32_t ok = atomic_load(&b.ok);
	uint64_t r = atomic_load(&reposts);
	atomic_store(&repost_on, false);
	usleep(20000); /* the last re-post runs and stops */
	printf("%u proposals applied beside %llu re-posts of one task\n", ok,
	       (unsigned long long)r);
	assert_int_equal(ok, PROPOSALS);
	assert_true(r > 1000); /* the task ran all along */
}

static void test_runtime_metrics_from_another_thread(void **state)
{
	(void)state;
	static char buf[1 << 20];
	struct batch b1 = { .g = grp[1], .n = PROPOSALS }, b2 = { .g = grp[2], .n = PROPOSALS };

	for (int round = 0; round < 20; round++) {
		if (round == 5) {
			assert_int_equal(lcr_node_post(node, 1, propose_task, &b1), 0);
			assert_int_equal(lcr_node_post(node, 0, propose_task, &b2), 0);
		}
		int n = lcr_node_metrics_json(node, buf, sizeof(buf));
		assert_true(n > 0);
		assert_int_equal(strlen(buf), (size_t)n);
		assert_non_null(strstr(buf, "{\"lcore\":0,"));
		assert_non_null(strstr(buf, "{\"lcore\":1,"));
		assert_non_null(strstr(buf, "{\"group\":1,"));
		assert_non_null(strstr(buf, "{\"group\":2,"));
		assert_non_null(strstr(buf, "\"write_latency\":{\"count\":"));
		assert_int_equal(buf[n - 1], '}');
		usleep(5000);
	}
	for (int i = 0;
	     i < 500 && (atomic_load(&b1.ok) < PROPOSALS || atomic_load(&b2.ok) < PROPOSALS); i++)
		usleep(10000);
	assert_int_equal(atomic_load(&b1.ok), PROPOSALS);
	assert_int_equal(atomic_load(&b2.ok), PROPOSALS);
	printf("metrics: %zu bytes; %u + %u proposals applied\n", strlen(buf), atomic_load(&b1.ok),
	       atomic_load(&b2.ok));
	/* Too small a buffer is said so, not cut. */
	assert_int_equal(lcr_node_metrics_json(node, buf, 100), -ENOSPC);
}

/* ---- calling the API from callbacks ------------------------------------------------- */

/*
 * A read's callback issues the next read (a closed-loop reader), for both
 * policies, while a proposer proposes from its own callbacks: the runtime
 * must not re-enter the core while it walks the core's commands (that lost
 * applies), nor recurse without bound (lease reads complete at once).
 */
struct chain {
	struct lcr_group *g;
	uint32_t policy, want;
	_Atomic uint32_t done, failed;
};

static void read_again(void *ctx, int err, uint32_t leader)
{
	struct chain *c = ctx;
	(void)leader;
	if (err)
		atomic_fetch_add(&c->failed, 1);
	if (atomic_fetch_add(&c->done, 1) + 1 < c->want &&
	    lcr_read(c->g, c->policy, read_again, c) < 0)
		atomic_fetch_add(&c->failed, 1);
}

struct pchain {
	struct lcr_group *g;
	uint32_t want;
	uint32_t sent;
	_Atomic uint32_t ok, failed;
};

static void propose_again(void *ctx, int err, uint32_t leader, const void *res, uint32_t len)
{
	struct pchain *p = ctx;
	uint8_t data[32] = { 7 };
	(void)leader;
	(void)res;
	(void)len;
	if (err)
		atomic_fetch_add(&p->failed, 1);
	else
		atomic_fetch_add(&p->ok, 1);
	if (p->sent < p->want) {
		p->sent++;
		if (lcr_propose(p->g, data, sizeof(data), propose_again, p) < 0)
			atomic_fetch_add(&p->failed, 1);
	}
}

static void start_chains(struct lcr_node *n, void *arg)
{
	void **a = arg;
	struct chain *ri = a[0], *rl = a[1];
	struct pchain *pc = a[2];
	uint8_t data[32] = { 7 };
	(void)n;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(lcr_read(ri->g, ri->policy, read_again, ri), 0);
		assert_int_equal(lcr_read(rl->g, rl->policy, read_again, rl), 0);
		pc->sent++;
		assert_int_equal(lcr_propose(pc->g, data, sizeof(data), propose_again, pc), 0);
	}
}

static void test_runtime_api_from_callbacks(void **state)
{
	(void)state;
	struct chain ri = { .g = grp[1], .policy = LCR_READ_INDEX, .want = 3000 };
	struct chain rl = { .g = grp[1], .policy = LCR_READ_LEASE, .want = 20000 };
	struct pchain pc = { .g = grp[1], .want = 3000 };
	void *arg[3] = { &ri, &rl, &pc };
	uint64_t before = atomic_load(&applied[1]);

	assert_int_equal(lcr_node_post(node, 1, start_chains, arg), 0);
	for (int i = 0; i < 1000; i++) {
		if (atomic_load(&ri.done) >= ri.want && atomic_load(&rl.done) >= rl.want &&
		    atomic_load(&pc.ok) + atomic_load(&pc.failed) >= pc.want)
			break;
		usleep(10000);
	}
	printf("reads: %u read-index, %u lease (%u + %u failed); proposals %u ok, %u failed; "
	       "applied %llu\n",
	       atomic_load(&ri.done), atomic_load(&rl.done), atomic_load(&ri.failed),
	       atomic_load(&rl.failed), atomic_load(&pc.ok), atomic_load(&pc.failed),
	       (unsigned long long)(atomic_load(&applied[1]) - before));
	assert_true(atomic_load(&ri.done) >= ri.want);
	assert_true(atomic_load(&rl.done) >= rl.want);
	assert_int_equal(atomic_load(&ri.failed) + atomic_load(&rl.failed), 0);
	assert_int_equal(atomic_load(&pc.failed), 0);
	assert_int_equal(atomic_load(&pc.ok), pc.want);
	/* Every proposal applied exactly once (and nothing skipped). */
	assert_int_equal(atomic_load(&applied[1]) - before, pc.want);
}

/* Two threads asking for metrics at once each get their own, whole. */
struct asker {
	_Atomic uint32_t bad;
	uint32_t n;
};

static void *ask_metrics(void *arg)
{
	struct asker *a = arg;
	static _Thread_local char buf[1 << 16];
	for (uint32_t i = 0; i < a->n; i++) {
		memset(buf, 'x', sizeof(buf));
		int n = lcr_node_metrics_json(node, buf, sizeof(buf));
		if (n <= 0 || strlen(buf) != (size_t)n || buf[n - 1] != '}' ||
		    !strstr(buf, "{\"lcore\":1,"))
			atomic_fetch_add(&a->bad, 1);
	}
	return NULL;
}

static void test_runtime_metrics_asked_concurrently(void **state)
{
	(void)state;
	struct asker a = { .n = 300 };
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, ask_metrics, &a), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&a.bad), 0);
}

/* ---- close answers what waits ------------------------------------------------------ */

static void propose_and_stop(struct lcr_node *n, void *arg)
{
	propose_task(n, arg);
	lcr_node_stop(n); /* the loop ends before the log's flush completes */
}

static void test_runtime_close_answers_waiting_proposals(void **state)
{
	(void)state;
	struct batch b = { .g = grp[1], .n = PROPOSALS };

	assert_int_equal(lcr_node_post(node, 1, propose_and_stop, &b), 0);
	pthread_join(runner, NULL);
	uint32_t before = atomic_load(&b.ok) + atomic_load(&b.stopped);
	lcr_node_close(node);
	node = NULL;
	printf("%u applied before the stop, %u answered -LCR_ESTOPPED by close (%u before "
	       "it)\n",
	       atomic_load(&b.ok), atomic_load(&b.stopped), before);
	assert_int_equal(atomic_load(&b.other), 0);
	assert_int_equal(atomic_load(&b.ok) + atomic_load(&b.stopped), PROPOSALS);
}

/*
 * Posts around a shutdown: from another thread, tasks go to lcore 1 while
 * the node stops, and after lcr_node_run() returned; each task accepted runs
 * exactly once by the time lcr_node_close() returns (those still in the
 * rings run in the close), and a task that posts from within the close is
 * refused with -LCR_ESTOPPED. A task neither run nor refused fails the count
 * (and leaks under ASan).
 */
struct poster {
	_Atomic uint32_t accepted, ran, other;
	_Atomic bool quit;
	_Atomic int repost_rc; /* what a post from within the close returned */
};

static void count_task(struct lcr_node *n, void *arg)
{
	struct poster *p = arg;
	(void)n;
	atomic_fetch_add(&p->ran, 1);
}

static void close_repost_task(struct lcr_node *n, void *arg)
{
	struct poster *p = arg;
	atomic_store(&p->repost_rc, lcr_node_post(n, 0, count_task, p));
}

static void *post_loop(void *arg)
{
	struct poster *p = arg;
	while (!atomic_load(&p->quit)) {
		int rc = lcr_node_post(node, 1, count_task, p);
		if (rc == 0)
			atomic_fetch_add(&p->accepted, 1);
		else if (rc == -LCR_EFULL)
			sched_yield();
		else
			atomic_fetch_add(&p->other, 1);
	}
	return NULL;
}

static void test_runtime_posts_around_shutdown_run_once(void **state)
{
	(void)state;
	struct poster p = { .repost_rc = 1 };
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, post_loop, &p), 0);
	usleep(20000);
	lcr_node_stop(node); /* tasks keep coming while the lcores stop */
	pthread_join(runner, NULL);
	usleep(20000); /* ... and after lcr_node_run() returned */
	atomic_store(&p.quit, true);
	pthread_join(t, NULL);
	/* Lcore 1's ring may be full by now; lcore 0's is empty. */
	assert_int_equal(lcr_node_post(node, 0, close_repost_task, &p), 0);
	uint32_t before_close = atomic_load(&p.ran);
	lcr_node_close(node);
	node = NULL;
	printf("%u tasks accepted: %u ran on the lcores, %u in the close\n",
	       atomic_load(&p.accepted), before_close, atomic_load(&p.ran) - before_close);
	assert_int_equal(atomic_load(&p.other), 0);
	assert_true(atomic_load(&p.accepted) > 0);
	assert_int_equal(atomic_load(&p.ran), atomic_load(&p.accepted));
	assert_true(atomic_load(&p.ran) > before_close); /* some ran only in the close */
	assert_int_equal(atomic_load(&p.repost_rc), -LCR_ESTOPPED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_runtime_post_wakes_a_sleeping_lcore, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_runtime_reposting_task_does_not_starve_the_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_metrics_from_another_thread, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_runtime_api_from_callbacks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_metrics_asked_concurrently, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_runtime_close_answers_waiting_proposals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_runtime_posts_around_shutdown_run_once, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
