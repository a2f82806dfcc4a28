/* SPDX-License-Identifier: MIT */
/* Asynchronous cold reads (lcr_log_fetch): in order with read ahead, across segments, checked. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io_harness.h"

static struct iot t;
IOT_FIXTURES(t, "log-fetch")

static void reopen(void)
{
	iot_close(&t);
	int rc = iot_open(&t);
	if (rc < 0)
		fail_msg("reopen: %d %s", rc, t.why);
}

/* Flip byte `off` of segment 1 on disk (synced): a checksum that must fail. */
static void damage(off_t off)
{
	char path[300];
	uint8_t x;

	iot_seg_path(&t, 1, path, sizeof(path));
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &x, 1, off), 1);
	x = (uint8_t)~x;
	assert_int_equal(pwrite(fd, &x, 1, off), 1);
	assert_int_equal(fsync(fd), 0);
	close(fd);
}

/* Fetch `index`, running the ring while its read is in flight; counts the waits. */
static int fetch_wait(uint64_t index, struct lcr_entry *e, uint32_t *waits)
{
	for (int i = 0; i < 1000; i++) {
		int rc = lcr_log_fetch(t.log, index, e);
		if (rc != -EAGAIN)
			return rc;
		(*waits)++;
		lcr_ring_submit(&t.ring);
		lcr_ring_wait(&t.ring, 100ull * 1000 * 1000);
	}
	return -ETIMEDOUT;
}

/* 2,000 entries of 4,000 bytes in 100 batches over two segments, read back in order
 * from disk after a reopen (nothing cached): every one right, each byte read
 * once, in reads of whole buffers. */
static void test_log_fetch_in_order_across_segments(void **state)
{
	static uint8_t want[4000];
	struct lcr_log_stats st;
	uint32_t waits = 0;
	(void)state;

	for (uint64_t first = 1; first <= 2000; first += 20) {
		assert_int_equal(iot_append(&t, first, 20, 1, 1, 4000), 0);
		assert_int_equal(iot_sync(&t), 0);
	}
	reopen();
	for (uint64_t i = 1; i <= 2000; i++) {
		struct lcr_entry e;
		assert_int_equal(fetch_wait(i, &e, &waits), 0);
		assert_int_equal(e.id.index, i);
		assert_int_equal(e.len, 4000);
		iot_payload(i, want, e.len);
		if (memcmp(e.data, want, e.len) != 0)
			fail_msg("entry %llu differs", (unsigned long long)i);
		if (i % 16 == 0)
			lcr_log_fetch_unpin(t.log);
	}
	lcr_log_stats(t.log, &st);
	print_message("fetch: %llu reads, %llu MB, %u waits\n", (unsigned long long)st.fetch_reads,
		      (unsigned long long)(st.fetch_bytes >> 20), waits);
	assert_true(st.fetch_reads >= 8);
	assert_true(st.fetch_hits >= 2000);
	/* Each batch read once: about 2 MiB a read, 8 MB in two segments. */
	assert_true(st.fetch_reads <= 10);
	/* Past the end, and below the start. */
	struct lcr_entry e;
	assert_int_equal(lcr_log_fetch(t.log, 2001, &e), -ENOENT);
	assert_int_equal(lcr_log_fetch(t.log, 0, &e), -ENOENT);
}

/* What a truncation cut is gone from the buffers too; a damaged record is refused. */
static void test_log_fetch_truncated_and_damaged(void **state)
{
	uint32_t waits = 0;
	struct lcr_entry e;
	(void)state;

	assert_int_equal(iot_append(&t, 1, 50, 1, 1, 1000), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	assert_int_equal(fetch_wait(40, &e, &waits), 0);
	assert_int_equal(iot_truncate(&t, 30), 0);
	assert_int_equal(iot_sync(&t), 0);
	lcr_log_fetch_unpin(t.log);
	assert_int_equal(fetch_wait(40, &e, &waits), -ENOENT);
	assert_int_equal(fetch_wait(30, &e, &waits), 0);
	assert_int_equal(e.id.index, 30);

	/* A byte of entry 1's payload changed on disk (after the block
	 * header and the batch header): its checksum fails. */
	reopen();
	damage(4096 + 64 + 200);
	assert_int_equal(fetch_wait(1, &e, &waits), -EBADMSG);
}

/*
 * A request retried from its first entry (the stream's window had no room
 * for all of it, so the entries are asked for again later) checks each
 * record's checksum once per read, not once per retry: 500 entries asked
 * for as 1, then 1-2, then 1-3, ... cost 500 checks (125,250 if every walk
 * checked again). A damaged record past the checked ones is still refused.
 */
static void test_log_fetch_retried_checks_once(void **state)
{
	struct lcr_log_stats st;
	uint32_t waits = 0;
	struct lcr_entry e;
	(void)state;

	assert_int_equal(iot_append(&t, 1, 500, 1, 1, 512), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	for (uint64_t k = 1; k <= 500; k++) {
		for (uint64_t i = 1; i <= k; i++) {
			assert_int_equal(fetch_wait(i, &e, &waits), 0);
			assert_int_equal(e.id.index, i);
		}
		lcr_log_fetch_unpin(t.log);
	}
	lcr_log_stats(t.log, &st);
	print_message("fetch: %llu checks for 125,250 entries taken\n",
		      (unsigned long long)st.fetch_checks);
	assert_int_equal(st.fetch_checks, 500);

	/* Entry 400's payload damaged on disk after the open (recovery
	 * checks every record it opens): refused once reached, past 399
	 * records checked and stepped over. */
	reopen();
	char path[300];
	iot_seg_path(&t, 1, path, sizeof(path));
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	static uint8_t want[512], blk[1 << 20];
	iot_payload(400, want, sizeof(want));
	ssize_t n = pread(fd, blk, sizeof(blk), 0);
	close(fd);
	assert_true(n > 0);
	uint8_t *hit = memmem(blk, (size_t)n, want, sizeof(want));
	assert_non_null(hit);
	damage((off_t)(hit - blk) + 100);
	for (uint64_t i = 1; i < 400; i++)
		assert_int_equal(fetch_wait(i, &e, &waits), 0);
	lcr_log_fetch_unpin(t.log);
	assert_int_equal(fetch_wait(1, &e, &waits), 0);
	assert_int_equal(fetch_wait(400, &e, &waits), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_log_fetch_in_order_across_segments, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_fetch_truncated_and_damaged, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_fetch_retried_checks_once, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
