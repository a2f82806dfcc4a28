/* SPDX-License-Identifier: MIT */
/*
 * A follower restarted far behind (8 KiB entries, most of them no longer in
 * the leader's arena) catches up over UDP on loopback, with two CPU hogs
 * running, within 60 s; the rate is printed next to the disk's sequential
 * write rate measured in the same run (a file of the same size written and
 * fdatasync'ed in the same directory, the hogs running too). The ratio is a
 * measurement, not a pass mark, unless LCR_CATCHUP_MIN_RATIO asks for one
 * (docs/benchmarks.md: 0.3 at 100 MB, run ten times).
 *
 * What it guards: the core sizes AppendEntries by entry count, so a lagging
 * follower's pipeline holds far more bytes than the stream's window; the node
 * must hold what the window cannot take yet (never drop it and wait for the
 * stall timer), and read cold entries without blocking the lcore.
 *
 *   LCR_CATCHUP_MB   megabytes behind (default 32; 100 for the benchmark)
 *   LCR_CATCHUP_MIN_RATIO  fail below this ratio to the disk's rate (default: none)
 *   LCR_CATCHUP_HOGS busy threads beside the cluster (default 2)
 *   LCR_CATCHUP_METRICS  set: the follower's progress every 50 ms, and both
 *                    nodes' metrics at the end (stderr)
 *
 * Three replicas in one process (cluster_harness.h), each node on its own
 * thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
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

static void *hog(void *arg)
{
	volatile uint64_t x = 0;
	(void)arg;
	while (!atomic_load_explicit(&hogs_stop, memory_order_relaxed))
		x++;
	return NULL;
}

/* MB/s of writing `bytes` sequentially to a new file in `dir`, with one fdatasync. */
static double disk_rate(const char *dir, uint64_t bytes)
{
	char path[512];
	static char buf[1 << 20];

	memset(buf, 0x5a, sizeof(buf));
	snprintf(path, sizeof(path), "%s/disk-rate", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	uint64_t t0 = ch_now_ns();
	for (uint64_t off = 0; off < bytes;) {
		size_t n = bytes - off < sizeof(buf) ? (size_t)(bytes - off) : sizeof(buf);
		ssize_t k = write(fd, buf, n);
		assert_true(k > 0);
		off += (uint64_t)k;
	}
	assert_int_equal(fdatasync(fd), 0);
	uint64_t ns = ch_now_ns() - t0;
	close(fd);
	unlink(path);
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
		ch_propose(&cl, l, b, 100 + first, k, ENTRY_BYTES);
		assert_int_equal(atomic_load(&b->ok), k);
	}
	uint64_t want = ch_applied(&cl, l);

	atomic_store(&hogs_stop, false);
	for (uint32_t i = 0; i < n_hogs; i++)
		assert_int_equal(pthread_create(&hogs[i], NULL, hog, NULL), 0);
	double disk = disk_rate(cl.dir, bytes);

	/* From the restart (its open and recovery included) to the last entry applied. */
	uint64_t t0 = ch_now_ns(), tick = t0;
	ch_start(&cl, f);
	while (ch_applied(&cl, f) < want && ch_now_ns() - t0 < 60ull * 1000000000) {
		usleep(1000);
		if (metrics && ch_now_ns() - tick > 50000000) {
			tick = ch_now_ns();
			fprintf(stderr, "  %.0f ms: %llu applied\n", (double)(tick - t0) / 1e6,
				(unsigned long long)ch_applied(&cl, f));
		}
	}
	ch_wait_converged(&cl, want, 1000);
	double secs = (double)(ch_now_ns() - t0) / 1e9;
	double rate = (double)bytes / secs / 1e6;

	atomic_store(&hogs_stop, true);
	for (uint32_t i = 0; i < n_hogs; i++)
		pthread_join(hogs[i], NULL);
	if (metrics) {
		char *m = malloc(1 << 18);
		assert_true(lcr_node_metrics_json(cl.rep[l].node, m, 1 << 18) > 0);
		fprintf(stderr, "leader: %s\n", m);
		assert_true(lcr_node_metrics_json(cl.rep[f].node, m, 1 << 18) > 0);
		fprintf(stderr, "follower: %s\n", m);
		free(m);
	}
	print_message("catchup: %llu MB behind (%u entries of %u B), %u hogs: caught up in "
		      "%.2f s = %.0f MB/s; disk %.0f MB/s; ratio %.2f\n",
		      (unsigned long long)mb, n, ENTRY_BYTES, n_hogs, secs, rate, disk,
		      rate / disk);
	assert_true(ch_applied(&cl, f) >= want);
	if (min_ratio > 0)
		assert_true(rate >= min_ratio * disk);
	ch_stop_all(&cl);
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
