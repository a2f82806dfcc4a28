/* SPDX-License-Identifier: MIT */
/*
 * Snapshots in the node runtime, on a one-node cluster through the public
 * API, with a state machine that has the six hooks:
 *
 *  - a small snapshot_logs_since_last builds snapshots and purges the log;
 *    after close and reopen the group restores the newest snapshot and
 *    replays only the entries after it (the applies are counted), and ends
 *    in the same state;
 *  - a damaged snapshot file makes the open fail, saying so;
 *  - a log that ends before the newest snapshot's last entry (a crash between
 *    an installed snapshot becoming durable and the log's reset) is reset at
 *    open to start after the snapshot, and the group opens from it;
 *  - a 100 MB state is built a piece per loop iteration: the longest
 *    iteration while it is built is printed (and bounded);
 *  - on three nodes, a follower that missed a purge installs the leader's
 *    100 MB snapshot, restored a chunk per loop iteration: the longest
 *    iteration while it installs is printed (and bounded), and the leader
 *    sends it while it builds its next snapshots.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lcraft.h"
#include "log.h"
#include "ring.h"

#define ENTRIES	   3000
#define AFTER	   300 /* proposed after the last snapshot */
#define ENTRY_SIZE 1024
#define BIG_BYTES  (100ull << 20)

/* The state: a hash chain over the applied entries, and a blob of fixed
 * bytes (the big test's bulk). The lcore writes it; the test reads it only
 * while the node does not run, or through the atomics. */
struct tsm {
	uint64_t hash, n;    /* the state */
	const uint8_t *blob; /* immutable bytes that are part of the state */
	uint64_t blob_len;
	_Atomic uint64_t applies; /* apply calls in this incarnation */
	_Atomic uint64_t applied_n;
	/* Restoring. */
	uint8_t hdr[24];
	uint64_t got;
	bool restored;
	int restore_err;
};

struct tcursor {
	uint8_t hdr[24]; /* hash, n, blob length: frozen at open */
	uint64_t pos, len;
	const uint8_t *blob;
};

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static void sm_apply(void *ctx, const struct lcr_entry *e, void *out, uint32_t *rlen)
{
	struct tsm *s = ctx;
	const uint8_t *p = e->data;
	(void)out;
	for (uint32_t i = 0; i < e->len; i++)
		s->hash = (s->hash ^ p[i]) * 1099511628211ull;
	s->n++;
	atomic_fetch_add(&s->applies, 1);
	atomic_store(&s->applied_n, s->n);
	*rlen = 0;
}

static void *sm_snapshot_open(void *ctx, int *err)
{
	struct tsm *s = ctx;
	struct tcursor *c = calloc(1, sizeof(*c));
	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	put64(c->hdr, s->hash);
	put64(c->hdr + 8, s->n);
	put64(c->hdr + 16, s->blob_len);
	c->blob = s->blob;
	c->len = 24 + s->blob_len;
	return c;
}

static long sm_snapshot_read(void *ctx, void *cursor, void *buf, size_t cap)
{
	struct tcursor *c = cursor;
	size_t o = 0;
	(void)ctx;
	while (o < cap && c->pos < c->len) {
		if (c->pos < 24) {
			((uint8_t *)buf)[o++] = c->hdr[c->pos++];
			continue;
		}
		uint64_t n = c->len - c->pos < cap - o ? c->len - c->pos : cap - o;
		memcpy((uint8_t *)buf + o, c->blob + (c->pos - 24), n);
		o += n;
		c->pos += n;
	}
	return (long)o;
}

static void sm_snapshot_close(void *ctx, void *cursor)
{
	(void)ctx;
	free(cursor);
}

static int sm_restore_begin(void *ctx, const struct lcr_snapshot_meta *meta)
{
	struct tsm *s = ctx;
	(void)meta;
	s->got = 0;
	return 0;
}

static int sm_restore_chunk(void *ctx, const void *data, size_t len)
{
	struct tsm *s = ctx;
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++, s->got++) {
		if (s->got < 24)
			s->hdr[s->got] = p[i];
		else if (s->got - 24 >= s->blob_len || p[i] != s->blob[s->got - 24])
			return -EBADMSG;
	}
	return 0;
}

static int sm_restore_end(void *ctx)
{
	struct tsm *s = ctx;
	if (s->got < 24 || get64(s->hdr + 16) != s->got - 24)
		return -EBADMSG;
	s->hash = get64(s->hdr);
	s->n = get64(s->hdr + 8);
	atomic_store(&s->applied_n, s->n);
	s->restored = true;
	return 0;
}

static const struct lcr_sm_ops ops = {
	.apply = sm_apply,
	.snapshot_open = sm_snapshot_open,
	.snapshot_read = sm_snapshot_read,
	.snapshot_close = sm_snapshot_close,
	.restore_begin = sm_restore_begin,
	.restore_chunk = sm_restore_chunk,
	.restore_end = sm_restore_end,
};

/* ---- a one-node cluster ---------------------------------------------------------- */

static char dir[256];
static uint16_t port;
static uint64_t keep_before; /* max_in_snapshot_log_to_keep */
static struct lcr_node *node;
static struct lcr_group *grp;
static pthread_t runner;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *run_node(void *arg)
{
	lcr_node_run(arg);
	return NULL;
}

static void config(struct lcr_node_config *c, uint64_t logs_since_last)
{
	lcr_node_config_default(c);
	c->id = 1;
	c->cluster = 11;
	c->data_dir = dir;
	c->bind_host = "127.0.0.1";
	c->segment_bytes = 4u << 20;
	c->n_peers = 1;
	c->peers[0].id = 1;
	snprintf(c->peers[0].host, sizeof(c->peers[0].host), "127.0.0.1");
	c->peers[0].port = port;
	c->core.snapshot_logs_since_last = logs_since_last;
	c->core.max_in_snapshot_log_to_keep = keep_before;
	c->core.purge_batch_size = 1;
}

/* Open the node and its group; 0, or the group's error with why. */
static int start(struct tsm *sm, uint64_t logs_since_last, char *why, size_t why_len)
{
	struct lcr_node_config c;
	config(&c, logs_since_last);
	if (lcr_node_open(&node, &c, why, why_len) < 0)
		fail_msg("node: %s", why);
	int rc = lcr_group_open(node, 1, &ops, sm, &grp, why, why_len);
	if (rc < 0) {
		printf("group open: %s\n", why);
		lcr_node_close(node);
		node = NULL;
		return rc;
	}
	assert_int_equal(pthread_create(&runner, NULL, run_node, node), 0);
	assert_int_equal(lcr_group_wait(node, 1, LCR_WAIT_ROLE, LCR_ROLE_LEADER, 3000000000ull), 0);
	return 0;
}

static void stop(void)
{
	lcr_node_stop(node);
	pthread_join(runner, NULL);
	lcr_node_close(node);
	node = NULL;
}

/* A number from group 1's metrics ("key":n), from this thread. */
static double metric(const char *key)
{
	static char buf[1 << 17];
	char pat[80];
	int rc = lcr_node_metrics_json(node, buf, sizeof(buf));
	assert_true(rc > 0);
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(buf, pat);
	if (!p)
		fail_msg("no %s in the metrics", key);
	return strtod(p + strlen(pat), NULL);
}

/* Proposals, posted to the lcore in rounds. */
static _Atomic uint32_t answered, failed;
static uint8_t payload[ENTRY_SIZE];

static void proposed(void *ctx, int err, uint32_t leader, const void *r, uint32_t rlen)
{
	(void)ctx, (void)leader, (void)r, (void)rlen;
	if (err)
		atomic_fetch_add(&failed, 1);
	atomic_fetch_add(&answered, 1);
}

static void propose_task(struct lcr_node *n, void *arg)
{
	uint32_t k = (uint32_t)(uintptr_t)arg;
	(void)n;
	for (uint32_t i = 0; i < k; i++) {
		payload[0] = (uint8_t)i;
		if (lcr_propose(grp, payload, sizeof(payload), proposed, NULL) < 0) {
			atomic_fetch_add(&failed, 1);
			atomic_fetch_add(&answered, 1);
		}
	}
}

static void propose_all(uint32_t n)
{
	atomic_store(&answered, 0);
	atomic_store(&failed, 0);
	for (uint32_t done = 0; done < n; done += 100) {
		while (lcr_node_post(node, 0, propose_task, (void *)(uintptr_t)100) < 0)
			usleep(1000);
		while (atomic_load(&answered) < done + 100)
			usleep(200);
	}
	assert_int_equal(atomic_load(&failed), 0);
}

static bool wait_for(const char *key, double at_least, uint64_t ms)
{
	for (uint64_t t0 = now_ns(); now_ns() - t0 < ms * 1000000ull; usleep(5000))
		if (metric(key) >= at_least)
			return true;
	return false;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/lcraft-snapshot-XXXXXX",
		 getenv("LCR_TEST_DIR") ? getenv("LCR_TEST_DIR") : "/var/tmp");
	if (!mkdtemp(dir))
		fail_msg("mkdtemp %s: %s", dir, strerror(errno));
	port = (uint16_t)(20000 + ((getpid() + 7919) % 20000));
	keep_before = 0;
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	if (node)
		stop();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return 0;
}

/* The newest snapshot file of group 1, or "" */
static void snap_file(char *out, size_t len)
{
	char gdir[300];
	snprintf(gdir, sizeof(gdir), "%s/group-1", dir);
	DIR *d = opendir(gdir);
	struct dirent *de;
	out[0] = 0;
	while (d && (de = readdir(d)))
		if (strncmp(de->d_name, "snap-", 5) == 0 &&
		    (!out[0] || strcmp(de->d_name, strrchr(out, '/') + 1) > 0))
			snprintf(out, len, "%s/%s", gdir, de->d_name);
	if (d)
		closedir(d);
}

static void test_snapshot_purge_restart_replays_after_it(void **state)
{
	static struct tsm a, b;
	char why[512];
	(void)state;

	assert_int_equal(start(&a, 500, why, sizeof(why)), 0);
	propose_all(ENTRIES);
	assert_true(wait_for("snapshots_built", 2, 5000));
	assert_true(wait_for("purges", 1, 5000));
	/* Nothing more to build once the last proposals' snapshot is done. */
	assert_true(wait_for("applied_index", ENTRIES + 1, 5000));
	usleep(200000);
	/* Entries after the newest snapshot, fewer than the policy's step. */
	propose_all(AFTER);
	assert_true(wait_for("applied_index", ENTRIES + AFTER + 1, 5000));
	uint64_t snap_index = (uint64_t)metric("snapshot_index");
	uint64_t purged = (uint64_t)metric("purged_index");
	uint64_t last = (uint64_t)metric("applied_index");
	printf("built %.0f snapshots, newest at %llu, purged to %llu, applied %llu\n",
	       metric("snapshots_built"), (unsigned long long)snap_index,
	       (unsigned long long)purged, (unsigned long long)last);
	assert_true(snap_index >= 500 && snap_index <= last);
	assert_true(purged > 0 && purged <= snap_index);
	assert_int_equal(metric("snapshots_failed"), 0);
	stop();
	uint64_t hash = a.hash, n = a.n;

	/* Reopen: the state comes from the snapshot, the rest from the log. */
	assert_int_equal(start(&b, 500, why, sizeof(why)), 0);
	assert_true(b.restored);
	for (uint64_t t0 = now_ns();
	     atomic_load(&b.applied_n) < n && now_ns() - t0 < 5000000000ull;)
		usleep(1000);
	assert_int_equal(atomic_load(&b.applied_n), n);
	usleep(100000);
	stop();
	/* Every entry after the snapshot applied once, none at or below it
	 * (one leadership wrote them all: no blank entry among them). */
	printf("after reopen: %llu applies for %llu entries after the snapshot at %llu\n",
	       (unsigned long long)atomic_load(&b.applies), (unsigned long long)(last - snap_index),
	       (unsigned long long)snap_index);
	assert_int_equal(atomic_load(&b.applies), last - snap_index);
	/* Where the newest snapshot falls depends on when each build ran (at
	 * the state machine's applied index then): fewer than the policy's
	 * step after it, whatever the timing. */
	assert_true(last - snap_index < 500);
	assert_int_equal(b.n, n);
	assert_true(b.hash == hash);
}

static void test_snapshot_damaged_refused(void **state)
{
	static struct tsm a, b;
	char why[512], file[600];
	(void)state;

	assert_int_equal(start(&a, 200, why, sizeof(why)), 0);
	propose_all(600);
	assert_true(wait_for("snapshots_built", 1, 5000));
	stop();
	snap_file(file, sizeof(file));
	assert_true(file[0] != 0);
	/* One byte of the data (after the 4 KiB header block). */
	int fd = open(file, O_RDWR);
	assert_true(fd >= 0);
	uint8_t x;
	assert_int_equal(pread(fd, &x, 1, 4096 + 10), 1);
	x ^= 0x5a;
	assert_int_equal(pwrite(fd, &x, 1, 4096 + 10), 1);
	close(fd);
	int rc = start(&b, 200, why, sizeof(why));
	printf("open with a damaged snapshot: %d: %s\n", rc, why);
	assert_true(rc < 0);
	assert_non_null(strstr(why, "snapshot"));
	assert_non_null(strstr(why, "damaged"));
	/* And a damaged header names the file. */
	fd = open(file, O_RDWR);
	assert_int_equal(pwrite(fd, "garbage!", 8, 0), 8);
	close(fd);
	rc = start(&b, 200, why, sizeof(why));
	printf("open with a damaged header: %d: %s\n", rc, why);
	assert_true(rc < 0);
	assert_non_null(strstr(why, strrchr(file, '/') + 1));
}

/* The manual trigger, on the group's lcore. */
static void trigger_task(struct lcr_node *n, void *arg)
{
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_SNAPSHOT };
	(void)n, (void)arg;
	assert_int_equal(lcr_group_event(grp, &ev), 0);
}

static void test_snapshot_100mb_never_stalls_the_loop(void **state)
{
	static struct tsm a;
	char why[512];
	(void)state;

	uint8_t *blob = malloc(BIG_BYTES);
	assert_non_null(blob);
	for (uint64_t i = 0; i < BIG_BYTES; i++)
		blob[i] = (uint8_t)(i * 2654435761u >> 24);
	a.blob = blob;
	a.blob_len = BIG_BYTES;
	assert_int_equal(start(&a, 0, why, sizeof(why)), 0);
	propose_all(100);
	uint64_t t0 = now_ns();
	assert_int_equal(lcr_node_post(node, 0, trigger_task, NULL), 0);
	assert_true(wait_for("snapshots_built", 1, 30000));
	double wall_ms = (double)(now_ns() - t0) / 1e6;
	double iter_us = metric("build_iteration_max_us");
	double cpu_us = metric("build_iteration_cpu_max_us");
	printf("100 MB snapshot: built in %.1f ms (%.1f ms wall), %.0f bytes, longest loop "
	       "iteration while building %.1f us (on its CPU %.1f us)\n",
	       metric("build_ms_last"), wall_ms, metric("bytes_last"), iter_us, cpu_us);
	assert_true(metric("bytes_last") >= (double)BIG_BYTES);
	/* One 1 MiB piece per iteration: milliseconds, not the whole build. The
	 * lcore's own CPU time, which other work on the machine (a loaded CI
	 * machine preempted an iteration for 422 ms once) does not stretch. */
	assert_true(cpu_us > 0.0);
	assert_true(cpu_us < 50000.0);
	stop();
	free(blob);
}

static bool cut_done;

static void cut_log_done(void *ctx, const struct lcr_io_id *io, int err)
{
	(void)ctx, (void)io;
	assert_int_equal(err, 0);
	cut_done = true;
}

/* Drop group 1's entries after `after` with the log's own truncate, the node closed. */
static void cut_log(uint64_t after)
{
	char gdir[300], why[512];
	struct lcr_ring ring;
	struct lcr_log_opts o;
	struct lcr_log *l;
	struct lcr_io_id io = { .seq = 1 };

	snprintf(gdir, sizeof(gdir), "%s/group-1", dir);
	assert_int_equal(lcr_ring_init(&ring, 64), 0);
	lcr_log_opts_default(&o, gdir);
	o.group = 1;
	o.segment_bytes = 4u << 20;
	o.done = cut_log_done;
	if (lcr_log_open(&l, &ring, &o, why, sizeof(why)) < 0)
		fail_msg("log: %s", why);
	assert_true(lcr_log_last(l).index > after);
	cut_done = false;
	assert_int_equal(lcr_log_truncate(l, after, &io), 0);
	for (uint64_t t0 = now_ns(); !cut_done || lcr_log_busy(l);) {
		assert_true(now_ns() - t0 < 5000000000ull);
		lcr_log_flush(l);
		lcr_ring_wait(&ring, 10000000);
	}
	assert_int_equal(lcr_log_last(l).index, after);
	lcr_log_close(l);
	lcr_ring_exit(&ring);
}

static void test_snapshot_log_behind_it_reset_at_open(void **state)
{
	static struct tsm a, b, c;
	char why[512];
	(void)state;

	keep_before = 1u << 20; /* nothing purged: the log keeps the snapshot's entries */
	assert_int_equal(start(&a, 0, why, sizeof(why)), 0);
	propose_all(200);
	assert_true(wait_for("applied_index", 201, 5000));
	assert_int_equal(lcr_node_post(node, 0, trigger_task, NULL), 0);
	assert_true(wait_for("snapshots_built", 1, 5000));
	uint64_t snap_index = (uint64_t)metric("snapshot_index");
	assert_int_equal(snap_index, (uint64_t)metric("applied_index"));
	assert_int_equal(metric("purged_index"), 0);
	stop();
	uint64_t hash = a.hash, n = a.n;

	/* The snapshot is durable; the log lost its last 50 entries. */
	cut_log(snap_index - 50);
	int rc = start(&b, 0, why, sizeof(why));
	if (rc < 0)
		fail_msg("open with the log behind the snapshot: %s", why);
	assert_true(b.restored);
	assert_int_equal(b.n, n);
	assert_true(b.hash == hash);
	assert_true(wait_for("applied_index", (double)snap_index, 5000));
	printf("log cut to %llu below the snapshot at %llu: opened at applied %.0f, purged %.0f\n",
	       (unsigned long long)(snap_index - 50), (unsigned long long)snap_index,
	       metric("applied_index"), metric("purged_index"));
	assert_int_equal((uint64_t)metric("snapshot_index"), snap_index);
	assert_int_equal((uint64_t)metric("purged_index"), snap_index);
	/* The group goes on from there, and the reset log reopens as it is. */
	propose_all(100);
	for (uint64_t t0 = now_ns();
	     atomic_load(&b.applied_n) < n + 100 && now_ns() - t0 < 5000000000ull;)
		usleep(1000);
	assert_int_equal(atomic_load(&b.applied_n), n + 100);
	stop();
	assert_int_equal(start(&c, 0, why, sizeof(why)), 0);
	for (uint64_t t0 = now_ns();
	     atomic_load(&c.applied_n) < n + 100 && now_ns() - t0 < 5000000000ull;)
		usleep(1000);
	assert_int_equal(atomic_load(&c.applied_n), n + 100);
	assert_true(c.hash == b.hash);
	stop();
}

/* ---- three nodes: a 100 MB install ---------------------------------------------- */

#define N3 3

static struct lcr_node *nodes[N3 + 1];
static struct lcr_group *grps[N3 + 1];
static pthread_t runners[N3 + 1];
static char dirs[N3 + 1][300];

static void start3(uint32_t id, struct tsm *sm)
{
	struct lcr_node_config c;
	char why[512];

	config(&c, 0);
	c.id = id;
	snprintf(dirs[id], sizeof(dirs[id]), "%s/n%u", dir, id);
	c.data_dir = dirs[id];
	c.n_peers = N3;
	for (uint32_t i = 0; i < N3; i++) {
		c.peers[i].id = i + 1;
		snprintf(c.peers[i].host, sizeof(c.peers[i].host), "127.0.0.1");
		c.peers[i].port = (uint16_t)(port + i);
	}
	if (lcr_node_open(&nodes[id], &c, why, sizeof(why)) < 0)
		fail_msg("node %u: %s", id, why);
	if (lcr_group_open(nodes[id], 1, &ops, sm, &grps[id], why, sizeof(why)) < 0)
		fail_msg("node %u's group: %s", id, why);
	assert_int_equal(pthread_create(&runners[id], NULL, run_node, nodes[id]), 0);
}

static void stop3(uint32_t id)
{
	lcr_node_stop(nodes[id]);
	pthread_join(runners[id], NULL);
	lcr_node_close(nodes[id]);
	nodes[id] = NULL;
}

/* Node `id`'s group metric `key`. */
static double metric3(uint32_t id, const char *key)
{
	struct lcr_node *keep = node;
	node = nodes[id];
	double v = metric(key);
	node = keep;
	return v;
}

static void purge_task(struct lcr_node *n, void *arg)
{
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_PURGE };
	(void)n;
	ev.purge_upto = (uint64_t)(uintptr_t)arg;
	assert_int_equal(lcr_group_event(grp, &ev), 0);
}

/* One entry, then a snapshot of it (on the leader's lcore). */
static void build_more_task(struct lcr_node *n, void *arg)
{
	(void)arg;
	propose_task(n, (void *)(uintptr_t)1);
	trigger_task(n, NULL);
}

static void test_snapshot_install_100mb_in_steps_r3(void **state)
{
	static struct tsm sm[N3 + 1];
	(void)state;

	uint8_t *blob = malloc(BIG_BYTES);
	assert_non_null(blob);
	for (uint64_t i = 0; i < BIG_BYTES; i++)
		blob[i] = (uint8_t)(i * 2654435761u >> 24);
	for (uint32_t i = 1; i <= N3; i++) {
		sm[i].blob = blob;
		sm[i].blob_len = BIG_BYTES;
	}
	keep_before = 1u << 20; /* purged only when the test says */
	start3(1, &sm[1]);
	start3(2, &sm[2]);
	uint32_t l = 0;
	for (uint64_t t0 = now_ns(); !l && now_ns() - t0 < 5000000000ull;)
		for (uint32_t i = 1; i <= 2 && !l; i++)
			if (lcr_group_wait(nodes[i], 1, LCR_WAIT_ROLE, LCR_ROLE_LEADER,
					   50000000ull) == 0)
				l = i;
	assert_true(l != 0);
	node = nodes[l];
	grp = grps[l];
	/* A fresh leader has no lease until its follower acks (CheckQuorum). */
	assert_int_equal(lcr_group_wait(nodes[3 - l], 1, LCR_WAIT_APPLIED, 1, 5000000000ull), 0);
	usleep(100000);
	propose_all(100);
	assert_int_equal(lcr_node_post(node, 0, trigger_task, NULL), 0);
	assert_true(wait_for("snapshots_built", 1, 30000));
	uint64_t snap_index = (uint64_t)metric("snapshot_index");
	assert_int_equal(lcr_node_post(node, 0, purge_task, (void *)(uintptr_t)snap_index), 0);
	assert_true(wait_for("purged_index", (double)snap_index, 5000));

	/* Node 3 has nothing: only the snapshot brings it up. While it is sent,
	 * the leader builds more (a build no longer holds off a send). */
	start3(3, &sm[3]);
	double built0 = metric("snapshots_built");
	uint64_t t0 = now_ns();
	while (metric3(3, "snapshots_installed") < 1 || metric3(3, "installing") != 0) {
		assert_true(now_ns() - t0 < 60000000000ull);
		if (metric("building") == 0 && metric("snapshots_built") < built0 + 3)
			assert_int_equal(lcr_node_post(node, 0, build_more_task, NULL), 0);
		usleep(20000);
	}
	double ms = (double)(now_ns() - t0) / 1e6;
	/* The leader may still apply what a build task proposed: wait until
	 * both have applied the same, read together. */
	uint64_t n = atomic_load(&sm[l].applied_n);
	for (uint64_t t1 = now_ns();
	     (atomic_load(&sm[3].applied_n) != n || n != atomic_load(&sm[l].applied_n)) &&
	     now_ns() - t1 < 10000000000ull;
	     n = atomic_load(&sm[l].applied_n))
		usleep(1000);
	double iter_us = metric3(3, "install_iteration_max_us");
	double cpu_us = metric3(3, "install_iteration_cpu_max_us");
	printf("100 MB install on node 3: %.0f ms from its start, the restore %.1f ms, longest "
	       "loop iteration while installing %.1f us (on its CPU %.1f us); the leader built "
	       "%.0f snapshots meanwhile, sends opened %.0f, busy %.0f, stale %.0f\n",
	       ms, metric3(3, "install_ms_last"), iter_us, cpu_us,
	       metric("snapshots_built") - built0, metric("sends_opened"), metric("send_busy"),
	       metric("send_stale"));
	assert_true(metric("snapshots_built") > built0);
	assert_int_equal(metric("send_busy"), 0);
	assert_true(sm[3].restored || atomic_load(&sm[3].applied_n) == n);
	assert_int_equal(atomic_load(&sm[3].applied_n), n);
	/* A chunk per iteration: milliseconds, not the whole restore (on the
	 * lcore's CPU, as above). */
	assert_true(cpu_us > 0.0);
	assert_true(cpu_us < 50000.0);
	for (uint32_t i = 1; i <= N3; i++)
		stop3(i);
	assert_true(sm[3].hash == sm[l].hash);
	node = NULL;
	free(blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_snapshot_purge_restart_replays_after_it, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_damaged_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_log_behind_it_reset_at_open, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_100mb_never_stalls_the_loop, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_install_100mb_in_steps_r3, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
