/* SPDX-License-Identifier: MIT */
/*
 * Three nodes in one process on loopback, each on its own thread, through the
 * public API (lcraft.h): real sockets, real io_uring storage. A leader is
 * elected; proposals commit and are applied in the same order everywhere;
 * the leader stops, another takes over within two election timeouts; the old
 * one restarts from its disk and catches up; nothing acknowledged is lost.
 *
 * The state machine folds every applied entry into a hash chain, so equal
 * (count, hash) on two replicas means they applied the same entries in the
 * same order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lcraft.h"

#define NODES		3
#define GROUP		1
#define ELECTION_MAX_MS 300

struct sm {
	_Atomic uint64_t count; /* entries applied */
	_Atomic uint64_t hash;
	_Atomic uint32_t role, leader;
	_Atomic uint64_t role_changed_ns;
};

struct replica {
	struct lcr_node *node;
	struct lcr_group *group;
	struct sm sm;
	pthread_t thread;
	bool running;
};

static struct replica rep[NODES + 1]; /* 1-based */
static char dir[256];
static uint16_t base_port;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sm_apply(void *ctx, const struct lcr_entry *e, void *out, uint32_t *rlen)
{
	struct sm *s = ctx;
	uint64_t h = atomic_load(&s->hash);
	for (uint32_t i = 0; i < e->len; i++)
		h = (h ^ ((const uint8_t *)e->data)[i]) * 1099511628211ull;
	h = (h ^ e->id.index) * 1099511628211ull;
	atomic_store(&s->hash, h);
	uint64_t c = atomic_fetch_add(&s->count, 1) + 1;
	memcpy(out, &c, 8);
	*rlen = 8;
}

static void sm_role(void *ctx, uint32_t role, uint32_t leader)
{
	struct sm *s = ctx;
	atomic_store(&s->role, role);
	atomic_store(&s->leader, leader);
	atomic_store(&s->role_changed_ns, now_ns());
}

static void *run_node(void *arg)
{
	struct replica *r = arg;
	lcr_node_run(r->node);
	return NULL;
}

static void start(uint32_t id)
{
	struct lcr_node_config c;
	char why[256], d[300];
	struct replica *r = &rep[id];

	lcr_node_config_default(&c);
	c.id = id;
	c.cluster = 42;
	snprintf(d, sizeof(d), "%s/n%u", dir, id);
	c.data_dir = d;
	c.bind_host = "127.0.0.1";
	c.n_peers = NODES;
	c.segment_bytes = 8u << 20;
	c.core.election_timeout_min_ms = 150;
	c.core.election_timeout_max_ms = ELECTION_MAX_MS;
	c.core.heartbeat_interval_ms = 50;
	for (uint32_t i = 0; i < NODES; i++) {
		c.peers[i].id = i + 1;
		snprintf(c.peers[i].host, sizeof(c.peers[i].host), "127.0.0.1");
		c.peers[i].port = (uint16_t)(base_port + 10 * i);
	}
	memset(&r->sm, 0, sizeof(r->sm));
	int rc = lcr_node_open(&r->node, &c, why, sizeof(why));
	if (rc < 0)
		fail_msg("node %u: %s", id, why);
	struct lcr_sm_ops ops = { .apply = sm_apply, .role = sm_role };
	rc = lcr_group_open(r->node, GROUP, &ops, &r->sm, &r->group, why, sizeof(why));
	if (rc < 0)
		fail_msg("node %u group: %s", id, why);
	assert_int_equal(pthread_create(&r->thread, NULL, run_node, r), 0);
	r->running = true;
}

static void stop(uint32_t id)
{
	struct replica *r = &rep[id];
	lcr_node_stop(r->node);
	pthread_join(r->thread, NULL);
	lcr_node_close(r->node);
	r->node = NULL;
	r->running = false;
}

/* The leader all running replicas agree on, or 0. */
static uint32_t agreed_leader(void)
{
	uint32_t l = 0;
	for (uint32_t i = 1; i <= NODES; i++) {
		if (!rep[i].running)
			continue;
		uint32_t x = atomic_load(&rep[i].sm.leader);
		if (x == 0 || (l && x != l))
			return 0;
		l = x;
	}
	return l && rep[l].running && atomic_load(&rep[l].sm.role) == LCR_ROLE_LEADER ? l : 0;
}

static uint32_t wait_leader(uint64_t timeout_ms)
{
	uint64_t end = now_ns() + timeout_ms * 1000000ull;
	while (now_ns() < end) {
		uint32_t l = agreed_leader();
		if (l)
			return l;
		usleep(1000);
	}
	return 0;
}

/* Proposals, posted to the leader's lcore. */
struct batch {
	struct lcr_group *g;
	uint32_t first, n;
	uint32_t size; /* bytes per entry; 0: a short text */
	_Atomic uint32_t ok, failed, not_leader;
	_Atomic uint32_t answered;
	_Atomic uint64_t last_result;
	_Atomic int first_err;
};

static void proposed(void *ctx, int err, uint32_t leader, const void *res, uint32_t len)
{
	struct batch *b = ctx;
	(void)leader;
	if (err == 0) {
		uint64_t c = 0;
		assert_int_equal(len, 8);
		memcpy(&c, res, 8);
		atomic_store(&b->last_result, c);
		atomic_fetch_add(&b->ok, 1);
	} else if (err == -LCR_ENOTLEADER) {
		atomic_fetch_add(&b->not_leader, 1);
	} else {
		int zero = 0;
		atomic_compare_exchange_strong(&b->first_err, &zero, err);
		atomic_fetch_add(&b->failed, 1);
	}
	atomic_fetch_add(&b->answered, 1);
}

static void propose_task(struct lcr_node *n, void *arg)
{
	struct batch *b = arg;
	(void)n;
	static char big[64 << 10];
	for (uint32_t i = 0; i < b->n; i++) {
		char buf[64];
		int len = snprintf(buf, sizeof(buf), "entry-%u", b->first + i);
		const char *data = buf;
		if (b->size) {
			memset(big, (int)(b->first + i), b->size);
			memcpy(big, buf, (size_t)len);
			data = big;
			len = (int)b->size;
		}
		int rc = lcr_propose(b->g, data, (uint32_t)len, proposed, b);
		if (rc < 0) {
			int zero = 0;
			atomic_compare_exchange_strong(&b->first_err, &zero, rc);
			atomic_fetch_add(&b->failed, 1);
			atomic_fetch_add(&b->answered, 1);
		}
	}
}

/*
 * Propose n entries on the leader and wait for every answer. A leader fresh
 * from its election has no quorum lease until a follower acks its first
 * append (CheckQuorum, as openraft): -LCR_ENOLEASE then, and we try again.
 */
static void propose_sized(uint32_t leader, struct batch *b, uint32_t first, uint32_t n,
			  uint32_t size)
{
	for (int attempt = 0;; attempt++) {
		memset(b, 0, sizeof(*b));
		b->size = size;
		b->g = rep[leader].group;
		b->first = first;
		b->n = n;
		assert_int_equal(lcr_node_post(rep[leader].node, 0, propose_task, b), 0);
		uint64_t end = now_ns() + 20000ull * 1000000;
		while (atomic_load(&b->answered) < n && now_ns() < end)
			usleep(1000);
		assert_int_equal(atomic_load(&b->answered), n);
		if (atomic_load(&b->ok) == 0 && atomic_load(&b->first_err) == -LCR_ENOLEASE &&
		    attempt < 100) {
			usleep(5000);
			continue;
		}
		break;
	}
	if (atomic_load(&b->ok) != n)
		print_message("on %u: %u ok, %u not leader, %u failed (first error %d)\n", leader,
			      atomic_load(&b->ok), atomic_load(&b->not_leader),
			      atomic_load(&b->failed), atomic_load(&b->first_err));
}

static void propose_on(uint32_t leader, struct batch *b, uint32_t first, uint32_t n)
{
	propose_sized(leader, b, first, n, 0);
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

/* Every running replica applied `count` entries, with the same hash. */
static void wait_converged(uint64_t count, uint64_t timeout_ms)
{
	uint64_t end = now_ns() + timeout_ms * 1000000ull;
	for (;;) {
		bool same = true;
		uint64_t h = 0;
		bool first = true;
		for (uint32_t i = 1; i <= NODES; i++) {
			if (!rep[i].running)
				continue;
			if (atomic_load(&rep[i].sm.count) != count) {
				same = false;
				break;
			}
			uint64_t x = atomic_load(&rep[i].sm.hash);
			if (!first && x != h)
				fail_msg("replica %u applied different entries", i);
			h = x;
			first = false;
		}
		if (same)
			return;
		if (now_ns() > end) {
			for (uint32_t i = 1; i <= NODES; i++)
				print_message("replica %u: applied %llu (want %llu)\n", i,
					      (unsigned long long)atomic_load(&rep[i].sm.count),
					      (unsigned long long)count);
			fail_msg("replicas did not converge");
		}
		usleep(2000);
	}
}

static void test_cluster_elect_replicate_failover_catchup(void **state)
{
	struct batch *b = calloc(1, sizeof(*b));
	(void)state;

	for (uint32_t i = 1; i <= NODES; i++)
		start(i);
	uint32_t l = wait_leader(5000);
	assert_true(l != 0);
	print_message("leader %u\n", l);

	/* Each replica applies the leader's blank entry, then ours. */
	uint64_t t0 = now_ns();
	propose_on(l, b, 0, 3000);
	uint64_t t1 = now_ns();
	assert_int_equal(atomic_load(&b->ok), 3000);
	print_message("3000 proposals committed in %.1f ms\n", (double)(t1 - t0) / 1e6);
	uint64_t applied = atomic_load(&rep[l].sm.count);
	wait_converged(applied, 5000);

	/* The leader goes; a new one within two election timeouts. */
	uint64_t stopped = now_ns();
	stop(l);
	uint32_t l2 = wait_leader(4000);
	uint64_t took_ms = (now_ns() - stopped) / 1000000;
	assert_true(l2 != 0 && l2 != l);
	print_message("new leader %u after %llu ms\n", l2, (unsigned long long)took_ms);
	assert_true(took_ms < 2 * ELECTION_MAX_MS + 100);

	propose_on(l2, b, 3000, 1000);
	assert_int_equal(atomic_load(&b->ok), 1000);
	applied = atomic_load(&rep[l2].sm.count);
	wait_converged(applied, 5000);

	/* The old leader restarts from its disk and catches up. */
	start(l);
	propose_on(l2, b, 4000, 10);
	assert_int_equal(atomic_load(&b->ok), 10);
	applied = atomic_load(&rep[l2].sm.count);
	wait_converged(applied, 10000);

	/* A follower misses 150 entries of 8 KiB: 1.2 MiB, more than one message
	 * carries, so its AppendEntries go in parts. (Much more than the UDP
	 * stream's window, 1024 datagrams, can stall a loaded machine for long:
	 * a known limit, in the notes of issue 5.) */
	uint32_t f = l2 % NODES + 1;
	stop(f);
	propose_sized(l2, b, 5000, 150, 8192);
	assert_int_equal(atomic_load(&b->ok), 150);
	start(f);
	applied = atomic_load(&rep[l2].sm.count);
	t0 = now_ns();
	wait_converged(applied, 10000);
	print_message("follower %u caught up on 150 entries of 8 KiB in %.1f ms\n", f,
		      (double)(now_ns() - t0) / 1e6);

	/* Readers whose callbacks read again while proposals commit: the reads'
	 * callbacks run in the middle of the core's commands (before an apply),
	 * and a read made there must not disturb them. */
	struct chain *rc = calloc(1, sizeof(*rc));
	rc->g = rep[l2].group;
	rc->want = 4000;
	assert_int_equal(lcr_node_post(rep[l2].node, 0, start_reads, rc), 0);
	propose_on(l2, b, 6000, 3000);
	assert_int_equal(atomic_load(&b->ok), 3000);
	for (int i = 0; i < 2000 && atomic_load(&rc->done) < rc->want + 7; i++)
		usleep(5000);
	print_message("%u chained reads (%u failed) beside 3000 proposals\n",
		      atomic_load(&rc->done), atomic_load(&rc->failed));
	assert_true(atomic_load(&rc->done) >= rc->want);
	assert_int_equal(atomic_load(&rc->failed), 0);
	applied = atomic_load(&rep[l2].sm.count);
	wait_converged(applied, 10000);
	free(rc);

	char *m = malloc(1 << 16);
	assert_true(lcr_node_metrics_json(rep[l2].node, m, 1 << 16) > 0);
	print_message("%s\n", m);
	free(m);
	for (uint32_t i = 1; i <= NODES; i++)
		if (rep[i].running)
			stop(i);
	free(b);
}

int main(void)
{
	const char *base = getenv("LCR_TEST_DIR") ? getenv("LCR_TEST_DIR") : "/var/tmp";
	snprintf(dir, sizeof(dir), "%s/lcraft-cluster-XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror(dir);
		return 1;
	}
	base_port = (uint16_t)(20000 + (getpid() % 2000) * 20);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_elect_replicate_failover_catchup),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return rc;
}
