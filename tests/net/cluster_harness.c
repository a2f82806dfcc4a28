/* SPDX-License-Identifier: MIT */
/* The cluster harness of tests/net: see cluster_harness.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster_harness.h"
#include "crc32c.h"

uint32_t ch_nodes(const struct ch_cluster *c)
{
	return c->n_nodes ? c->n_nodes : CH_NODES;
}

uint64_t ch_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int ch_init(struct ch_cluster *c, const char *name,
	    void (*configure)(struct lcr_node_config *nc, uint32_t id))
{
	const char *base = getenv("LCR_TEST_DIR") ? getenv("LCR_TEST_DIR") : "/var/tmp";

	memset(c, 0, sizeof(*c));
	c->configure = configure;
	snprintf(c->dir, sizeof(c->dir), "%s/%s-XXXXXX", base, name);
	if (!mkdtemp(c->dir)) {
		int err = errno;
		perror(c->dir);
		return -err;
	}
	return 0;
}

void ch_fini(struct ch_cluster *c)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", c->dir);
}

static void sm_apply(void *ctx, const struct lcr_entry *e, void *out, uint32_t *rlen)
{
	struct ch_sm *s = ctx;
	uint64_t h = atomic_load(&s->hash);
	/* The entry's CRC32C (the hardware's, several bytes a cycle) and its
	 * length and index, folded in FNV-1a's way: the same on every replica,
	 * and cheap enough that the state machine is not what a catch-up
	 * waits for. */
	uint64_t c = lcr_crc32c(0, e->data, e->len) | (uint64_t)e->len << 32;
	h = (h ^ c) * 1099511628211ull;
	h = (h ^ e->id.index) * 1099511628211ull;
	atomic_store(&s->hash, h);
	uint64_t count = atomic_fetch_add(&s->count, 1) + 1;
	memcpy(out, &count, 8);
	*rlen = 8;
}

static void sm_role(void *ctx, uint32_t role, uint32_t leader)
{
	struct ch_sm *s = ctx;
	atomic_store(&s->role, role);
	atomic_store(&s->leader, leader);
}

/* Snapshot hooks: the state is 16 bytes, (count, hash), frozen at open. */
struct ch_cursor {
	uint8_t state[16];
	uint32_t pos;
};

static void *sm_snapshot_open(void *ctx, int *err)
{
	struct ch_sm *s = ctx;
	struct ch_cursor *k = calloc(1, sizeof(*k));
	if (!k) {
		*err = -ENOMEM;
		return NULL;
	}
	uint64_t count = atomic_load(&s->count), hash = atomic_load(&s->hash);
	memcpy(k->state, &count, 8);
	memcpy(k->state + 8, &hash, 8);
	return k;
}

static long sm_snapshot_read(void *ctx, void *cursor, void *buf, size_t cap)
{
	struct ch_cursor *k = cursor;
	size_t n = sizeof(k->state) - k->pos;
	(void)ctx;
	if (n > cap)
		n = cap;
	memcpy(buf, k->state + k->pos, n);
	k->pos += (uint32_t)n;
	return (long)n;
}

static void sm_snapshot_close(void *ctx, void *cursor)
{
	(void)ctx;
	free(cursor);
}

static int sm_restore_begin(void *ctx, const struct lcr_snapshot_meta *meta)
{
	struct ch_sm *s = ctx;
	(void)meta;
	s->restore_got = 0;
	return 0;
}

static int sm_restore_chunk(void *ctx, const void *data, size_t len)
{
	struct ch_sm *s = ctx;
	if (s->restore_got + len > sizeof(s->restore))
		return -EINVAL;
	memcpy(s->restore + s->restore_got, data, len);
	s->restore_got += (uint32_t)len;
	return 0;
}

static int sm_restore_end(void *ctx)
{
	struct ch_sm *s = ctx;
	uint64_t count, hash;
	if (s->restore_got != sizeof(s->restore))
		return -EINVAL;
	memcpy(&count, s->restore, 8);
	memcpy(&hash, s->restore + 8, 8);
	atomic_store(&s->count, count);
	atomic_store(&s->hash, hash);
	return 0;
}

static void *run_node(void *arg)
{
	struct ch_replica *r = arg;
	lcr_node_run(r->node);
	return NULL;
}

void ch_config(const struct ch_cluster *c, struct lcr_node_config *nc, uint32_t id, char *d,
	       size_t d_len)
{
	lcr_node_config_default(nc);
	nc->id = id;
	nc->cluster = 42;
	snprintf(d, d_len, "%s/n%u", c->dir, id);
	nc->data_dir = d;
	nc->n_peers = ch_nodes(c);
	nc->segment_bytes = 8u << 20;
	nc->core.election_timeout_min_ms = CH_ELECTION_MIN_MS;
	nc->core.election_timeout_max_ms = CH_ELECTION_MAX_MS;
	nc->core.heartbeat_interval_ms = CH_HEARTBEAT_MS;
	for (uint32_t i = 0; i < nc->n_peers; i++)
		nc->peers[i].id = i + 1;
	c->configure(nc, id);
}

void ch_start(struct ch_cluster *c, uint32_t id)
{
	ch_open(c, id);
	ch_run(c, id);
}

void ch_open(struct ch_cluster *c, uint32_t id)
{
	struct lcr_node_config nc;
	char why[256], d[300];
	struct ch_replica *r = &c->rep[id];

	assert_true(id >= 1 && id <= ch_nodes(c) && ch_nodes(c) <= CH_NODES_MAX);
	assert_null(r->node);
	assert_false(r->running);
	ch_config(c, &nc, id, d, sizeof(d));
	memset(&r->sm, 0, sizeof(r->sm));
	int rc = lcr_node_open(&r->node, &nc, why, sizeof(why));
	if (rc < 0)
		fail_msg("node %u: %s", id, why);
	struct lcr_sm_ops ops = { .apply = sm_apply, .role = sm_role };
	if (c->snapshots) {
		ops.snapshot_open = sm_snapshot_open;
		ops.snapshot_read = sm_snapshot_read;
		ops.snapshot_close = sm_snapshot_close;
		ops.restore_begin = sm_restore_begin;
		ops.restore_chunk = sm_restore_chunk;
		ops.restore_end = sm_restore_end;
	}
	rc = lcr_group_open(r->node, CH_GROUP, &ops, &r->sm, &r->group, why, sizeof(why));
	if (rc < 0)
		fail_msg("node %u group: %s", id, why);
}

void ch_run(struct ch_cluster *c, uint32_t id)
{
	struct ch_replica *r = &c->rep[id];

	assert_non_null(r->node);
	assert_false(r->running);
	assert_int_equal(pthread_create(&r->thread, NULL, run_node, r), 0);
	r->running = true;
}

void ch_stop(struct ch_cluster *c, uint32_t id)
{
	struct ch_replica *r = &c->rep[id];

	assert_true(id >= 1 && id <= ch_nodes(c));
	assert_true(r->running);
	lcr_node_stop(r->node);
	pthread_join(r->thread, NULL);
	lcr_node_close(r->node);
	r->node = NULL;
	r->running = false;
}

void ch_stop_all(struct ch_cluster *c)
{
	for (uint32_t i = 1; i <= ch_nodes(c); i++)
		if (c->rep[i].running)
			ch_stop(c, i);
}

uint64_t ch_applied(const struct ch_cluster *c, uint32_t id)
{
	return atomic_load(&c->rep[id].sm.count);
}

/* The leader all running replicas agree on, or 0. */
static uint32_t agreed_leader(const struct ch_cluster *c)
{
	const struct ch_replica *rep = c->rep;
	uint32_t l = 0;
	for (uint32_t i = 1; i <= ch_nodes(c); i++) {
		if (!rep[i].running)
			continue;
		uint32_t x = atomic_load(&rep[i].sm.leader);
		if (x == 0 || (l && x != l))
			return 0;
		l = x;
	}
	return l && rep[l].running && atomic_load(&rep[l].sm.role) == LCR_ROLE_LEADER ? l : 0;
}

uint32_t ch_wait_leader(const struct ch_cluster *c, uint64_t timeout_ms)
{
	uint64_t end = ch_now_ns() + timeout_ms * 1000000ull;
	while (ch_now_ns() < end) {
		uint32_t l = agreed_leader(c);
		if (l)
			return l;
		usleep(1000);
	}
	return 0;
}

uint32_t ch_start_cluster(struct ch_cluster *c)
{
	for (uint32_t i = 1; i <= CH_NODES; i++)
		ch_start(c, i);
	uint32_t l = ch_wait_leader(c, 5000);
	assert_true(l != 0);
	print_message("leader %u\n", l);
	return l;
}

uint32_t ch_fail_leader(struct ch_cluster *c, uint32_t l)
{
	uint64_t stopped = ch_now_ns();
	ch_stop(c, l);
	uint32_t l2 = ch_wait_leader(c, 4000);
	uint64_t took_ms = (ch_now_ns() - stopped) / 1000000;
	assert_true(l2 != 0 && l2 != l);
	print_message("new leader %u after %llu ms\n", l2, (unsigned long long)took_ms);
	assert_true(took_ms < 2 * CH_ELECTION_MAX_MS + 100);
	return l2;
}

/* Runs on the leader's lcore: answers come to `proposed` there too. */
static void proposed(void *ctx, int err, uint32_t leader, const void *res, uint32_t len)
{
	struct ch_batch *b = ctx;
	(void)leader;
	if (err == 0) {
		uint64_t count = 0;
		assert_int_equal(len, 8);
		memcpy(&count, res, 8);
		atomic_store(&b->last_result, count);
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
	struct ch_batch *b = arg;
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

void ch_propose(struct ch_cluster *c, uint32_t leader, struct ch_batch *b, uint32_t first,
		uint32_t n, uint32_t size)
{
	assert_true(size <= 64 << 10);
	for (int attempt = 0;; attempt++) {
		memset(b, 0, sizeof(*b));
		b->size = size;
		b->g = c->rep[leader].group;
		b->first = first;
		b->n = n;
		assert_int_equal(lcr_node_post(c->rep[leader].node, 0, propose_task, b), 0);
		uint64_t end = ch_now_ns() + 20000ull * 1000000;
		while (atomic_load(&b->answered) < n && ch_now_ns() < end)
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

void ch_wait_converged(const struct ch_cluster *c, uint64_t count, uint64_t timeout_ms)
{
	const struct ch_replica *rep = c->rep;
	uint64_t end = ch_now_ns() + timeout_ms * 1000000ull;
	for (;;) {
		bool same = true, first = true;
		uint64_t h = 0;
		for (uint32_t i = 1; i <= ch_nodes(c); i++) {
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
		if (ch_now_ns() > end) {
			for (uint32_t i = 1; i <= ch_nodes(c); i++)
				print_message("replica %u: applied %llu (want %llu)\n", i,
					      (unsigned long long)atomic_load(&rep[i].sm.count),
					      (unsigned long long)count);
			fail_msg("replicas did not converge");
		}
		usleep(2000);
	}
}

uint64_t ch_commit(struct ch_cluster *c, uint32_t leader, struct ch_batch *b, uint32_t first,
		   uint32_t n, uint64_t converge_ms)
{
	uint64_t t0 = ch_now_ns();
	ch_propose(c, leader, b, first, n, 0);
	uint64_t took_ns = ch_now_ns() - t0;
	assert_int_equal(atomic_load(&b->ok), n);
	ch_wait_converged(c, ch_applied(c, leader), converge_ms);
	return took_ns;
}

void ch_loopback(struct lcr_node_config *c, uint16_t base_port)
{
	c->bind_host = "127.0.0.1";
	for (uint32_t i = 0; i < c->n_peers; i++) {
		snprintf(c->peers[i].host, sizeof(c->peers[i].host), "127.0.0.1");
		c->peers[i].port = (uint16_t)(base_port + 10 * i);
	}
}
