/* SPDX-License-Identifier: MIT */
/*
 * A follower restarted far behind (8 KiB entries, most of them no longer in
 * the leader's arena) catches up over UDP on loopback, with two CPU hogs
 * running, within 60 s; the rate is printed next to the disk's sequential
 * write rate measured in the same run (a file of the same size written and
 * fdatasync'ed in the same directory, the hogs running too). The ratio is a
 * measurement, not a pass mark, unless LCR_CATCHUP_MIN_RATIO asks for one
 * (docs/benchmarks.md: 0.3 at 100 MB, run ten times). A second rate, of
 * the same file written O_DIRECT | O_DSYNC 1 MiB at a time as the log
 * writes, is printed with its own ratio; the pass mark stays on the first.
 *
 * What it guards: the core sizes AppendEntries by entry count, so a lagging
 * follower's pipeline holds far more bytes than the stream's window; the node
 * must hold what the window cannot take yet (never drop it and wait for the
 * stall timer), and read cold entries without blocking the lcore.
 *
 *   LCR_CATCHUP_MB   megabytes behind (default 32; 100 for the benchmark)
 *   LCR_CATCHUP_MIN_RATIO  fail below this ratio to the disk's rate (default: none)
 *   LCR_CATCHUP_HOGS busy threads beside the cluster (default 2)
 *   LCR_CATCHUP_METRICS  set: the follower's progress every 10 ms, both
 *                    nodes' metrics at the end, and each thread's time on a
 *                    CPU, runnable and asleep during the catch-up (stderr;
 *                    threads are named leader, follower, other and hog)
 *
 * Three replicas in one process (cluster_harness.h), each node on its own
 * thread.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_harness.h"

#define ENTRY_BYTES 8192
#define BATCH	    100 /* entries per ch_propose */
#define HOGS_MAX    8

static struct ch_cluster cl;
static uint16_t base_port;
static _Atomic bool hogs_stop;

static void on_loopback(struct lcr_node_config *c, uint32_t id)
{
	(void)id;
	ch_loopback(c, base_port);
}

static uint64_t env_u64(const char *name, uint64_t dflt, uint64_t max)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return dflt;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || v > max) {
		fprintf(stderr, "%s=%s: not a whole number up to %llu\n", name, s,
			(unsigned long long)max);
		exit(1);
	}
	return v;
}

/* Thread names for perf and top: leader, follower (catching up), other. */
static void name_threads(uint32_t l, uint32_t f)
{
	for (uint32_t i = 1; i <= CH_NODES; i++)
		pthread_setname_np(cl.rep[i].thread, i == l   ? "leader"
						     : i == f ? "follower"
							      : "other");
}

/*
 * Where each thread's time went during the catch-up (LCR_CATCHUP_METRICS):
 * /proc/self/task/TID/schedstat gives the time on a CPU and the time
 * runnable but waiting for one; the rest of the wall time it slept (its
 * loop waiting for datagrams, completions or a timer).
 */
#define SCHED_MAX 16
struct sched_snap {
	uint32_t n;
	long tid[SCHED_MAX];
	char comm[SCHED_MAX][16];
	uint64_t run_ns[SCHED_MAX], wait_ns[SCHED_MAX], slices[SCHED_MAX];
};

static bool read_line(const char *path, char *line, size_t len)
{
	FILE *f = fopen(path, "r");
	bool ok = f && fgets(line, (int)len, f);
	if (f)
		fclose(f);
	return ok;
}

static void sched_read(struct sched_snap *s)
{
	char path[96], line[128];

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "/proc/%d/task", (int)getpid());
	DIR *d = opendir(path);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d)) && s->n < SCHED_MAX;) {
		uint32_t i = s->n;
		unsigned long long r, w, k;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/comm", (int)getpid(), e->d_name);
		if (!read_line(path, s->comm[i], sizeof(s->comm[i])))
			continue;
		s->comm[i][strcspn(s->comm[i], "\n")] = 0;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", (int)getpid(),
			 e->d_name);
		if (!read_line(path, line, sizeof(line)) ||
		    sscanf(line, "%llu %llu %llu", &r, &w, &k) != 3)
			continue;
		s->tid[i] = atol(e->d_name);
		s->run_ns[i] = r;
		s->wait_ns[i] = w;
		s->slices[i] = k;
		s->n++;
	}
	closedir(d);
}

/* The node threads and hogs that ran through the whole interval. */
static void sched_print(const struct sched_snap *a, const struct sched_snap *b, double secs)
{
	fprintf(stderr, "  thread     on-cpu ms  runnable ms  asleep ms  slices\n");
	for (uint32_t i = 0; i < b->n; i++) {
		uint32_t k = 0;
		while (k < a->n && a->tid[k] != b->tid[i])
			k++;
		if (k == a->n || strcmp(b->comm[i], "test_catchup") == 0)
			continue;
		double run = (double)(b->run_ns[i] - a->run_ns[k]) / 1e6;
		double wait = (double)(b->wait_ns[i] - a->wait_ns[k]) / 1e6;
		fprintf(stderr, "  %-9s %10.1f %12.1f %10.1f %7llu\n", b->comm[i], run, wait,
			secs * 1e3 - run - wait, (unsigned long long)(b->slices[i] - a->slices[k]));
	}
}

static void *hog(void *arg)
{
	volatile uint64_t x = 0;
	(void)arg;
	while (!atomic_load_explicit(&hogs_stop, memory_order_relaxed))
		x++;
	return NULL;
}

/*
 * MB/s of writing `bytes` sequentially to a new file in `dir`, 1 MiB at a
 * time: buffered with one fdatasync at the end (the target's floor), or
 * `direct`: O_DIRECT | O_DSYNC into a file fallocated first, as the log
 * writes its batches (at most 4 MiB each, one in flight).
 */
static double disk_rate(const char *dir, uint64_t bytes, bool direct)
{
	char path[512];
	void *buf = NULL;

	assert_int_equal(posix_memalign(&buf, 4096, 1 << 20), 0);
	assert_non_null(buf);
	memset(buf, 0x5a, 1 << 20);
	snprintf(path, sizeof(path), "%s/disk-rate", dir);
	int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (direct ? O_DIRECT | O_DSYNC : 0);
	int fd = open(path, flags, 0644);
	assert_true(fd >= 0);
	if (direct)
		assert_int_equal(fallocate(fd, 0, 0, (off_t)bytes + (1 << 20)), 0);
	uint64_t t0 = ch_now_ns();
	for (uint64_t off = 0; off < bytes;) {
		size_t n = bytes - off < (1 << 20) ? (size_t)(bytes - off) : (1 << 20);
		if (direct)
			n = (n + 4095) & ~(size_t)4095;
		ssize_t k = write(fd, buf, n);
		assert_true(k > 0);
		off += (uint64_t)k;
	}
	assert_int_equal(fdatasync(fd), 0);
	uint64_t ns = ch_now_ns() - t0;
	close(fd);
	unlink(path);
	free(buf);
	return (double)bytes / ((double)ns / 1e9) / 1e6;
}

static void test_catchup_follower_far_behind_with_hogs(void **state)
{
	uint64_t mb = env_u64("LCR_CATCHUP_MB", 32, 4096);
	double min_ratio =
		getenv("LCR_CATCHUP_MIN_RATIO") ? atof(getenv("LCR_CATCHUP_MIN_RATIO")) : 0;
	uint32_t n_hogs = (uint32_t)env_u64("LCR_CATCHUP_HOGS", 2, HOGS_MAX);
	bool metrics = getenv("LCR_CATCHUP_METRICS") != NULL;
	uint32_t n = (uint32_t)(mb * 1000 * 1000 / ENTRY_BYTES);
	uint64_t bytes = (uint64_t)n * ENTRY_BYTES;
	struct ch_batch *b = calloc(1, sizeof(*b));
	pthread_t hogs[HOGS_MAX];
	(void)state;

	uint32_t l = ch_start_cluster(&cl);
	uint32_t f = l % CH_NODES + 1;
	ch_commit(&cl, l, b, 0, 10, 5000);
	ch_stop(&cl, f);
	for (uint32_t first = 0; first < n; first += BATCH) {
		uint32_t k = n - first < BATCH ? n - first : BATCH;
		/* On a loaded machine the two replicas left may change leaders
		 * (a heartbeat later than an election timeout): the batch goes
		 * again to the new one, which can only be the other replica. */
		for (int tries = 0;; tries++) {
			ch_propose(&cl, l, b, 100 + first, k, ENTRY_BYTES);
			if (atomic_load(&b->ok) == k)
				break;
			assert_true(tries < 10);
			l = ch_wait_leader(&cl, 5000);
			assert_true(l != 0 && l != f);
		}
	}
	uint64_t want = ch_applied(&cl, l);

	atomic_store(&hogs_stop, false);
	for (uint32_t i = 0; i < n_hogs; i++) {
		assert_int_equal(pthread_create(&hogs[i], NULL, hog, NULL), 0);
		pthread_setname_np(hogs[i], "hog");
	}
	double disk = disk_rate(cl.dir, bytes, false);
	double disk_direct = disk_rate(cl.dir, bytes, true);

	/* From the restart (its open and recovery included) to the last entry applied. */
	uint64_t t0 = ch_now_ns(), tick = t0;
	ch_open(&cl, f);
	uint64_t t_open = ch_now_ns();
	ch_run(&cl, f);
	name_threads(l, f);
	if (metrics)
		fprintf(stderr, "  the follower's open: %.1f ms\n", (double)(t_open - t0) / 1e6);
	struct sched_snap *sched = calloc(2, sizeof(*sched));
	uint64_t ts = ch_now_ns();
	if (metrics)
		sched_read(&sched[0]);
	while (ch_applied(&cl, f) < want && ch_now_ns() - t0 < 60ull * 1000000000) {
		usleep(1000);
		if (metrics && ch_now_ns() - tick > 10000000) {
			tick = ch_now_ns();
			fprintf(stderr, "  %.0f ms: %llu applied\n", (double)(tick - t0) / 1e6,
				(unsigned long long)ch_applied(&cl, f));
		}
	}
	ch_wait_converged(&cl, want, 1000);
	uint64_t t1 = ch_now_ns();
	double secs = (double)(t1 - t0) / 1e9;
	if (metrics)
		sched_read(&sched[1]);
	double rate = (double)bytes / secs / 1e6;

	atomic_store(&hogs_stop, true);
	for (uint32_t i = 0; i < n_hogs; i++)
		pthread_join(hogs[i], NULL);
	if (metrics) {
		/* CLOCK_MONOTONIC, as `perf record -k mono` stamps its samples:
		 * `perf report --time START,END` shows the catch-up alone. */
		fprintf(stderr, "catch-up from %.6f to %.6f s (CLOCK_MONOTONIC)\n",
			(double)t0 / 1e9, (double)t1 / 1e9);
		fprintf(stderr, "threads from the follower's start (%.0f ms after the restart):\n",
			(double)(ts - t0) / 1e6);
		sched_print(&sched[0], &sched[1], (double)(t1 - ts) / 1e9);
		char *m = malloc(1 << 18);
		assert_true(lcr_node_metrics_json(cl.rep[l].node, m, 1 << 18) > 0);
		fprintf(stderr, "leader: %s\n", m);
		assert_true(lcr_node_metrics_json(cl.rep[f].node, m, 1 << 18) > 0);
		fprintf(stderr, "follower: %s\n", m);
		free(m);
	}
	print_message("catchup: %llu MB behind (%u entries of %u B), %u hogs: caught up in "
		      "%.2f s = %.0f MB/s; disk %.0f MB/s; ratio %.2f (disk O_DIRECT|O_DSYNC "
		      "%.0f MB/s: ratio %.2f)\n",
		      (unsigned long long)mb, n, ENTRY_BYTES, n_hogs, secs, rate, disk, rate / disk,
		      disk_direct, rate / disk_direct);
	assert_true(ch_applied(&cl, f) >= want);
	/* The restarted follower's transport said hello, and the leader's heard
	 * it (then heartbeats at once: the catch-up starts within a round trip
	 * of the follower's start, not at the next heartbeat). */
	char *lm = malloc(1 << 18);
	assert_true(lcr_node_metrics_json(cl.rep[l].node, lm, 1 << 18) > 0);
	const char *ps = strstr(lm, "\"peers_started\":");
	assert_non_null(ps);
	assert_true(strtoull(ps + strlen("\"peers_started\":"), NULL, 10) >= 1);
	free(lm);
	if (min_ratio > 0)
		assert_true(rate >= min_ratio * disk);
	ch_stop_all(&cl);
	free(sched);
	free(b);
}

int main(void)
{
	if (ch_init(&cl, "lcraft-catchup", on_loopback) < 0)
		return 1;
	base_port = (uint16_t)(24000 + (getpid() % 2000) * 20);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catchup_follower_far_behind_with_hogs),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	ch_fini(&cl);
	return rc;
}
