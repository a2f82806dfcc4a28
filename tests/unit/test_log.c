/* The log store: append, truncate, vote, segments, purge, cache, and reopening after each. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io_harness.h"
#include "log_format.h"
#include "scan.h"

static struct iot t;

IOT_FIXTURES(t, "log")

static void reopen(void)
{
	iot_close(&t);
	int rc = iot_open(&t);
	if (rc < 0)
		fail_msg("reopen: %d %s", rc, t.why);
}

static void test_log_append_survives_reopen(void **state)
{
	(void)state;
	assert_int_equal(iot_append(&t, 1, 1000, 1, 1, 100), 0);
	assert_int_equal(iot_sync(&t), 0);
	assert_int_equal(iot_check_disk(&t, 1, 1000, 1, 1), 0);
	reopen();
	assert_int_equal(lcr_log_last(t.log).index, 1000);
	struct lcr_log_id id;
	assert_true(lcr_log_id_at(t.log, 500, &id));
	assert_int_equal(id.lid.term, 1);
	assert_int_equal(iot_check_disk(&t, 1, 1000, 1, 1), 0);
	/* Appending continues where it stopped. */
	assert_int_equal(iot_append(&t, 1001, 10, 1, 1, 100), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	assert_int_equal(lcr_log_last(t.log).index, 1010);
}

static void test_log_durable_reported_in_io_order(void **state)
{
	(void)state;
	/* vote, append, vote, append: each report covers everything before it. */
	assert_int_equal(iot_vote(&t, 1, 2, false), 0);
	assert_int_equal(iot_append(&t, 1, 5, 1, 2, 10), 0);
	assert_int_equal(iot_vote(&t, 1, 2, true), 0);
	assert_int_equal(iot_append(&t, 6, 5, 1, 2, 10), 0);
	assert_int_equal(iot_sync(&t), 0);
	assert_int_equal(t.durable_seq, 4);
	reopen();
	struct lcr_log_recovery rs;
	lcr_log_recovered(t.log, &rs);
	assert_int_equal(rs.vote.lid.term, 1);
	assert_int_equal(rs.vote.lid.node, 2);
	assert_true(rs.vote.committed);
	assert_int_equal(lcr_log_last(t.log).index, 10);
}

/*
 * Two batch writes in flight (writes_max 2, the default), the first held
 * back from the kernel (the ring's hold_write_every) so that the second
 * completes first: nothing is reported durable until the first completes
 * too, then both are, in order.
 */
static void test_log_later_write_done_first_waits_for_earlier(void **state)
{
	(void)state;
	static struct lcr_ring_faults f;
	struct lcr_log_stats st;
	iot_settle(&t); /* the spare is ready: no write of its own comes between */
	memset(&f, 0, sizeof(f));
	f.hold_write_every = 1; /* the first write queued from now on */
	f.hold_reaps = 1000;	/* until nothing else is in flight */
	t.ring.faults = &f;
	assert_int_equal(iot_append(&t, 1, 10, 1, 1, 100), 0);
	lcr_log_flush(t.log);
	assert_non_null(f.held); /* batch 1 */
	assert_int_equal(iot_append(&t, 11, 10, 1, 1, 100), 0);
	lcr_log_flush(t.log); /* batch 2 goes out beside it */
	const struct lcr_hist *lat = lcr_log_write_latency(t.log);
	while (lat->count == 0 && t.err == 0)
		lcr_ring_wait(&t.ring, 100 * 1000 * 1000);
	/* Batch 2 completed; batch 1 is only now on its way. */
	assert_int_equal(lat->count, 1);
	assert_int_equal(t.durable_seq, 0);
	lcr_log_stats(t.log, &st);
	assert_int_equal(st.batches_written, 0);
	assert_int_equal(iot_sync(&t), 0);
	t.ring.faults = NULL;
	assert_int_equal(t.durable_seq, 2);
	lcr_log_stats(t.log, &st);
	assert_int_equal(st.batches_written, 2);
	assert_int_equal(iot_check_disk(&t, 1, 20, 1, 1), 0);
}

static void test_log_truncate_and_replace_survive_reopen(void **state)
{
	(void)state;
	assert_int_equal(iot_append(&t, 1, 100, 1, 1, 50), 0);
	assert_int_equal(iot_sync(&t), 0);
	/* A new leader replaces 61.. with its own entries. */
	assert_int_equal(iot_truncate(&t, 60), 0);
	assert_int_equal(iot_append(&t, 61, 10, 2, 3, 50), 0);
	assert_int_equal(iot_sync(&t), 0);
	assert_int_equal(lcr_log_last(t.log).index, 70);
	reopen();
	assert_int_equal(lcr_log_last(t.log).index, 70);
	assert_int_equal(iot_check_disk(&t, 1, 60, 1, 1), 0);
	assert_int_equal(iot_check_disk(&t, 61, 70, 2, 3), 0);
	/* A truncation alone (a Conflict) also survives. */
	assert_int_equal(iot_truncate(&t, 30), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	assert_int_equal(lcr_log_last(t.log).index, 30);
	struct lcr_entry e;
	uint8_t buf[64];
	assert_int_equal(lcr_log_read(t.log, 31, &e, buf, sizeof(buf)), -ENOENT);
}

static void test_log_truncate_inside_open_batch(void **state)
{
	(void)state;
	assert_int_equal(iot_append(&t, 1, 20, 1, 1, 8), 0);
	/* Not flushed: the batch is still open when it is cut. */
	assert_int_equal(iot_truncate(&t, 12), 0);
	assert_int_equal(iot_append(&t, 13, 3, 2, 2, 8), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	assert_int_equal(lcr_log_last(t.log).index, 15);
	assert_int_equal(iot_check_disk(&t, 1, 12, 1, 1), 0);
	assert_int_equal(iot_check_disk(&t, 13, 15, 2, 2), 0);
}

static void test_log_cache_serves_recent_entries(void **state)
{
	(void)state;
	uint8_t want[100];
	struct lcr_entry e;
	assert_int_equal(iot_append(&t, 1, 50, 1, 1, 100), 0);
	/* Readable for replication before it is durable. */
	assert_int_equal(lcr_log_get(t.log, 7, &e), 0);
	iot_payload(7, want, 100);
	assert_memory_equal(e.data, want, 100);
	assert_int_equal(iot_sync(&t), 0);
	assert_int_equal(lcr_log_get(t.log, 50, &e), 0);
	assert_int_equal(e.id.index, 50);
	assert_int_equal(lcr_log_get(t.log, 51, &e), -ENOENT);
	reopen(); /* the cache is gone, the disk has it */
	assert_int_equal(lcr_log_get(t.log, 7, &e), -ENOENT);
	assert_int_equal(iot_check_disk(&t, 7, 7, 1, 1), 0);
}

static void test_log_disk_reads_ahead_in_order(void **state)
{
	(void)state;
	/* 400 batches of 5 entries; after a reopen, reading them all in order
	 * must cost a few preads (read-ahead over the batches), not one each. */
	for (uint64_t b = 0; b < 400; b++) {
		assert_int_equal(iot_append(&t, b * 5 + 1, 5, 1, 1, 100), 0);
		assert_int_equal(iot_sync(&t), 0);
	}
	reopen();
	struct lcr_log_stats st0, st1;
	lcr_log_stats(t.log, &st0);
	assert_int_equal(iot_check_disk(&t, 1, 2000, 1, 1), 0);
	lcr_log_stats(t.log, &st1);
	assert_true(st1.disk_reads - st0.disk_reads <= 10);
	/* Backwards and at random: each still right. */
	for (int64_t i = 2000; i >= 1; i -= 37)
		assert_int_equal(iot_check_disk(&t, (uint64_t)i, (uint64_t)i, 1, 1), 0);
	/* A rewritten tail is read as rewritten, not from what was read ahead. */
	assert_int_equal(iot_truncate(&t, 1500), 0);
	assert_int_equal(iot_append(&t, 1501, 20, 2, 2, 100), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	assert_int_equal(iot_check_disk(&t, 1490, 1500, 1, 1), 0);
	assert_int_equal(iot_check_disk(&t, 1501, 1520, 2, 2), 0);
	assert_int_equal(iot_check_disk(&t, 1, 1500, 1, 1), 0);
}

static void test_log_cache_interleaved_readers(void **state)
{
	(void)state;
	/* Apply and two followers' streams read the same batch at different
	 * places, interleaved, forwards and with jumps back: every read right. */
	static uint8_t data[100][300];
	uint8_t want[300];
	struct lcr_entry e, batch[100];
	for (uint64_t first = 1; first <= 3000; first += 100) {
		for (uint32_t k = 0; k < 100; k++) {
			uint64_t i = first + k;
			batch[k] = (struct lcr_entry){
				{ { 1, 1 }, i }, LCR_ENTRY_NORMAL, (uint32_t)(i % 300), data[k]
			};
			iot_payload(i, data[k], (uint32_t)(i % 300));
		}
		struct lcr_io_id io = { ++t.seq, { { 0, 0 }, false }, lcr_log_last(t.log) };
		assert_int_equal(lcr_log_append(t.log, batch, 100, &io), 0);
	}
	uint64_t pos[3] = { 1, 700, 1500 };
	for (int step = 0; step < 4000; step++) {
		int r = step % 3;
		uint64_t i = pos[r];
		assert_int_equal(lcr_log_get(t.log, i, &e), 0);
		assert_int_equal(e.id.index, i);
		uint32_t len = (uint32_t)(i % 300);
		assert_int_equal(e.len, len);
		iot_payload(i, want, len);
		assert_memory_equal(e.data, want, len);
		pos[r] = step % 97 == 0 ? 1 + (i * 7919) % 3000 : i % 3000 + 1;
	}
	assert_int_equal(iot_sync(&t), 0);
}

static void test_log_segments_roll_and_purge(void **state)
{
	(void)state;
	/* 4 MiB segments, 3000-byte entries: several segments. */
	uint64_t n = 0;
	for (int round = 0; round < 10; round++) {
		assert_int_equal(iot_append(&t, n + 1, 1000, 1, 1, 3000), 0);
		n += 1000;
		assert_int_equal(iot_sync(&t), 0);
	}
	struct lcr_log_stats st;
	lcr_log_stats(t.log, &st);
	assert_true(st.segments_created >= 8);
	/* The default mode: every batch write is durable by itself (RWF_DSYNC);
	 * the zeros and headers of the segments prepared are not (each
	 * preparation ends with an fsync instead). */
	assert_int_equal(t.opts.io_mode, LCR_IO_DIRECT_DSYNC);
	assert_true(t.ring.stats.dsync_writes >= st.syncs);
	assert_true(t.ring.stats.writes - t.ring.stats.dsync_writes >= st.segments_created);
	reopen();
	assert_int_equal(lcr_log_last(t.log).index, n);
	assert_int_equal(iot_check_disk(&t, 1, n, 1, 1), 0);
	/* Purge the first half: whole segments go, the rest stays readable. */
	assert_int_equal(lcr_log_purge(t.log, 5000), 0);
	assert_int_equal(iot_vote(&t, 1, 1, false), 0); /* a write after the purge */
	assert_int_equal(iot_sync(&t), 0);
	lcr_log_stats(t.log, &st);
	assert_true(st.segments_purged >= 3);
	reopen();
	assert_int_equal(lcr_log_first_index(t.log), 5001);
	assert_int_equal(lcr_log_last(t.log).index, n);
	assert_int_equal(iot_check_disk(&t, 5001, n, 1, 1), 0);
}

static void test_log_large_entries(void **state)
{
	(void)state;
	/* Entries up to 1 MiB, each alone in a batch beyond batch_bytes_max. */
	static uint8_t big[1 << 20];
	struct lcr_entry e = { { { 1, 1 }, 1 }, LCR_ENTRY_NORMAL, sizeof(big), big };
	iot_payload(1, big, sizeof(big));
	struct lcr_io_id io = { ++t.seq, { { 0, 0 }, false }, lcr_log_last(t.log) };
	assert_int_equal(lcr_log_append(t.log, &e, 1, &io), 0);
	assert_int_equal(iot_append(&t, 2, 3, 1, 1, 10), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	assert_int_equal(lcr_log_last(t.log).index, 4);
	assert_int_equal(iot_check_disk(&t, 1, 4, 1, 1), 0);
}

static void test_log_rejects_gaps(void **state)
{
	(void)state;
	assert_int_equal(iot_append(&t, 1, 3, 1, 1, 10), 0);
	assert_int_equal(iot_append(&t, 5, 1, 1, 1, 10), -EINVAL);
	assert_int_equal(iot_truncate(&t, 9), -EINVAL);
}

static void test_log_bad_options_named(void **state)
{
	(void)state;
	struct lcr_log *l;
	char why[256];
	struct lcr_log_opts o = t.opts;
	o.segment_bytes = 12345;
	assert_int_equal(lcr_log_open(&l, &t.ring, &o, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "segment_bytes"));
	o = t.opts;
	o.dir = "/proc/definitely/not/here";
	assert_true(lcr_log_open(&l, &t.ring, &o, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "/proc/definitely/not/here"));
}

static void test_log_durability_none_still_writes(void **state)
{
	(void)state;
	iot_close(&t);
	t.opts.durability = LCR_DURABILITY_NONE;
	assert_int_equal(iot_open(&t), 0);
	assert_int_equal(iot_append(&t, 1, 100, 1, 1, 10), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	assert_int_equal(lcr_log_last(t.log).index, 100);
}

static void test_log_io_modes_agree(void **state)
{
	(void)state;
	for (uint32_t mode = LCR_IO_DIRECT_DSYNC; mode <= LCR_IO_BUFFERED_FDATASYNC; mode++) {
		iot_fini(&t);
		iot_init(&t, "mode");
		t.opts.io_mode = mode;
		assert_int_equal(iot_open(&t), 0);
		assert_int_equal(iot_append(&t, 1, 300, 1, 1, 200), 0);
		assert_int_equal(iot_sync(&t), 0);
		/* Durable by the write itself in direct-dsync only; the other
		 * modes link an fdatasync to each. */
		if (mode == LCR_IO_DIRECT_DSYNC)
			assert_true(t.ring.stats.dsync_writes >= 1);
		else
			assert_int_equal(t.ring.stats.dsync_writes, 0);
		reopen();
		assert_int_equal(lcr_log_last(t.log).index, 300);
		assert_int_equal(iot_check_disk(&t, 1, 300, 1, 1), 0);
	}
}

static uint64_t written_at_report;

static void note_written(void *ctx, const struct lcr_io_id *io, int err)
{
	struct lcr_log_stats st;
	(void)io;
	(void)err;
	lcr_log_stats(t.log, &st);
	written_at_report = st.entries_written;
	t.durable_seq = io ? io->seq : t.durable_seq;
	(void)ctx;
}

static void test_log_split_append_reported_only_when_whole(void **state)
{
	(void)state;
	/* One command whose entries fill two batches (256 KiB each here): it
	 * is durable only when the second batch is. */
	static uint8_t big[2][600 << 10];
	struct lcr_entry e[2] = {
		{ { { 1, 1 }, 1 }, LCR_ENTRY_NORMAL, sizeof(big[0]), big[0] },
		{ { { 1, 1 }, 2 }, LCR_ENTRY_NORMAL, sizeof(big[1]), big[1] },
	};
	iot_payload(1, big[0], sizeof(big[0]));
	iot_payload(2, big[1], sizeof(big[1]));
	iot_close(&t);
	t.opts.done = note_written;
	assert_int_equal(iot_open(&t), 0);
	struct lcr_io_id io = { ++t.seq, { { 0, 0 }, false }, lcr_log_last(t.log) };
	assert_int_equal(lcr_log_append(t.log, e, 2, &io), 0);
	assert_int_equal(iot_sync(&t), 0);
	assert_int_equal(written_at_report, 2);
	reopen();
	assert_int_equal(lcr_log_last(t.log).index, 2);
	assert_int_equal(iot_check_disk(&t, 1, 2, 1, 1), 0);
}

static void test_log_purge_above_a_truncation_reopens(void **state)
{
	(void)state;
	/* A new leader replaced 51..100 with 51..60; the purge point (55) lies
	 * in the replacement. Replaying the old batch must not trip over it. */
	assert_int_equal(iot_append(&t, 1, 100, 1, 1, 40), 0);
	assert_int_equal(iot_sync(&t), 0);
	assert_int_equal(iot_truncate(&t, 50), 0);
	assert_int_equal(iot_append(&t, 51, 10, 2, 2, 40), 0);
	assert_int_equal(iot_sync(&t), 0);
	assert_int_equal(lcr_log_purge(t.log, 55), 0);
	assert_int_equal(iot_vote(&t, 2, 2, true), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	assert_int_equal(lcr_log_first_index(t.log), 56);
	assert_int_equal(lcr_log_last(t.log).index, 60);
	assert_int_equal(iot_check_disk(&t, 56, 60, 2, 2), 0);
	/* The same leader replacing its own tail, then a purge inside it. */
	iot_fini(&t);
	iot_init(&t, "log");
	assert_int_equal(iot_open(&t), 0);
	assert_int_equal(iot_append(&t, 1, 20, 1, 1, 40), 0);
	assert_int_equal(iot_truncate(&t, 10), 0);
	assert_int_equal(iot_append(&t, 11, 5, 1, 1, 40), 0);
	assert_int_equal(iot_sync(&t), 0);
	assert_int_equal(lcr_log_purge(t.log, 12), 0);
	assert_int_equal(iot_vote(&t, 1, 1, true), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	assert_int_equal(lcr_log_first_index(t.log), 13);
	assert_int_equal(lcr_log_last(t.log).index, 15);
}

static void test_log_second_process_refused(void **state)
{
	(void)state;
	struct lcr_log *other;
	char why[256];
	struct lcr_ring ring2;
	assert_int_equal(lcr_ring_init(&ring2, 16), 0);
	/* Another open of the same directory (as a second process would) waits
	 * for the lock, then refuses by name. Same process: flock on a new
	 * open file description conflicts too. */
	struct lcr_log_opts o = t.opts;
	o.lock_wait_ms = 100;
	int rc = lcr_log_open(&other, &ring2, &o, why, sizeof(why));
	assert_int_equal(rc, -EBUSY);
	assert_non_null(strstr(why, "in use"));
	lcr_ring_exit(&ring2);
}

static void test_log_backpressure_never_overwrites_unwritten(void **state)
{
	(void)state;
	/* A small arena and a producer that outruns the disk: appends must be
	 * refused (-ENOBUFS) until writes complete, never placed over batches
	 * that are not written yet, nor over cached ones still being read. */
	iot_close(&t);
	t.opts.arena_bytes = 6u << 20;
	assert_int_equal(iot_open(&t), 0);
	uint64_t next = 1, refused = 0;
	/* 60,000 entries, and on until the disk fell behind at least once (a
	 * slow producer, under a sanitizer, may not outrun a fast disk soon). */
	while (next <= 60000 || (refused == 0 && next <= 1000000)) {
		int rc = iot_append(&t, next, 200, 1, 1, 200);
		next = lcr_log_last(t.log).index + 1; /* appended in parts of 64 */
		if (rc == -ENOBUFS) {
			refused++;
			lcr_ring_submit(&t.ring);
			lcr_ring_wait(&t.ring, 10 * 1000 * 1000);
			continue;
		}
		assert_int_equal(rc, 0);
		lcr_log_flush(t.log);
		lcr_ring_submit(&t.ring);
		lcr_ring_reap(&t.ring);
	}
	assert_int_equal(iot_sync(&t), 0);
	assert_true(refused > 0); /* the disk really was behind */
	/* Everything still cached is right... */
	uint8_t want[200];
	for (uint64_t i = 1; i < next; i++) {
		struct lcr_entry e;
		if (lcr_log_get(t.log, i, &e) < 0)
			continue;
		iot_payload(i, want, 200);
		assert_int_equal(e.id.index, i);
		assert_memory_equal(e.data, want, 200);
	}
	/* ...and so is the disk, after reopening. */
	reopen();
	assert_int_equal(lcr_log_last(t.log).index, next - 1);
	for (uint64_t i = 1; i < next; i += 997)
		assert_int_equal(iot_check_disk(&t, i, i, 1, 1), 0);
	assert_int_equal(iot_check_disk(&t, next - 1, next - 1, 1, 1), 0);
}

static void test_log_segments_max_bounds_the_segments(void **state)
{
	(void)state;
	/* At most two segments: the log fills them, then fails with -ENOSPC
	 * instead of growing; everything acknowledged stays. */
	iot_fini(&t);
	iot_init(&t, "log");
	t.opts.segments_max = 2;
	assert_int_equal(iot_open(&t), 0);
	uint64_t n = 0;
	int rc = 0;
	for (int round = 0; round < 20 && rc == 0; round++) {
		rc = iot_append(&t, n + 1, 500, 1, 1, 3000);
		if (rc == 0)
			rc = iot_sync(&t);
		if (rc == 0)
			n += 500;
	}
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(lcr_log_error(t.log), -ENOSPC);
	assert_true(n >= 2000); /* two segments' worth, nearly */
	/* With the computed bound it opens, with what was acknowledged. */
	iot_close(&t);
	t.opts.segments_max = 0;
	assert_int_equal(iot_open(&t), 0);
	assert_true(lcr_log_last(t.log).index >= n);
	assert_int_equal(iot_check_disk(&t, 1, n, 1, 1), 0);
	n = lcr_log_last(t.log).index;
	for (int round = 0; round < 6; round++) {
		assert_int_equal(iot_append(&t, n + 1, 500, 1, 1, 3000), 0);
		assert_int_equal(iot_sync(&t), 0);
		n += 500;
	}
	/* More segments than the bound asks for: refused by name at open. */
	iot_close(&t);
	t.opts.segments_max = 2;
	assert_int_equal(iot_open(&t), -EFBIG);
	print_message("refused: %s\n", t.why);
	assert_non_null(strstr(t.why, "segments_max"));
}

static void test_log_allocates_through_its_hook(void **state)
{
	(void)state;
	struct iot_counter c;
	iot_close(&t);
	t.opts.alloc = iot_counting(&c);
	assert_int_equal(iot_open(&t), 0);
	assert_int_equal(iot_append(&t, 1, 3000, 1, 1, 3000), 0); /* new segments too */
	assert_int_equal(iot_sync(&t), 0);
	assert_true(c.live > 0);
	iot_close(&t);
	assert_int_equal(c.live, 0);
	/* A failed open gives back what it took. */
	t.opts.dir = "/proc/definitely/not/here";
	assert_true(iot_open(&t) < 0);
	assert_true(c.calls > 0);
	assert_int_equal(c.live, 0);
	t.opts.dir = t.dir;
	t.opts.alloc = (struct lcr_allocator){ 0 };
	assert_int_equal(iot_open(&t), 0);
}

static void test_log_reads_batches_larger_than_its_own(void **state)
{
	(void)state;
	/* Written with 2 MiB batches, reopened with 64 KiB ones: every batch on
	 * disk must still be readable (the read buffer grows at open). */
	iot_close(&t);
	t.opts.batch_bytes_max = 2u << 20;
	assert_int_equal(iot_open(&t), 0);
	assert_int_equal(iot_append(&t, 1, 600, 1, 1, 3000), 0); /* one batch of ~1.8 MiB */
	assert_int_equal(iot_sync(&t), 0);
	iot_close(&t);
	t.opts.batch_bytes_max = 64u << 10;
	assert_int_equal(iot_open(&t), 0);
	assert_int_equal(lcr_log_last(t.log).index, 600);
	assert_int_equal(iot_check_disk(&t, 1, 600, 1, 1), 0);
}

static int install(struct lcr_log_id last, bool keep_log)
{
	struct lcr_io_id io = { ++t.seq, { { 0, 0 }, false }, lcr_log_last(t.log) };
	int rc = lcr_log_install(t.log, last, keep_log, &io);
	if (rc < 0)
		t.seq--;
	return rc;
}

static void expect_log(uint64_t first, struct lcr_log_id last)
{
	struct lcr_log_recovery rs;
	assert_int_equal(lcr_log_first_index(t.log), first);
	assert_true(lcr_log_id_eq(lcr_log_last(t.log), last));
	lcr_log_recovered(t.log, &rs);
	assert_int_equal(rs.purged.index, first - 1);
}

static void test_log_install_with_log_purges_in_order(void **state)
{
	(void)state;
	struct lcr_log_id at60 = { { 1, 1 }, 60 }, last100 = { { 1, 1 }, 100 };
	/* Entries up to 60 still in the open batch: the install comes after. */
	assert_int_equal(iot_append(&t, 1, 100, 1, 1, 40), 0);
	assert_int_equal(install((struct lcr_log_id){ { 2, 1 }, 60 }, true), -EINVAL);
	assert_int_equal(install(at60, true), 0);
	assert_int_equal(iot_sync(&t), 0);
	expect_log(61, last100);
	reopen();
	expect_log(61, last100);
	struct lcr_log_recovery rs;
	lcr_log_recovered(t.log, &rs);
	assert_true(lcr_log_id_eq(rs.purged, at60));
	assert_int_equal(iot_check_disk(&t, 61, 100, 1, 1), 0);
	/* At or below the purge point: nothing to do, still reported. */
	assert_int_equal(install(at60, true), 0);
	assert_int_equal(iot_sync(&t), 0);
}

static void test_log_install_without_log_restarts_after_last(void **state)
{
	(void)state;
	struct lcr_log_id snap = { { 5, 2 }, 300 };
	assert_int_equal(iot_append(&t, 1, 100, 1, 1, 40), 0);
	assert_int_equal(iot_sync(&t), 0);
	/* Entries in flight when it comes: they go too. */
	assert_int_equal(iot_append(&t, 101, 20, 1, 1, 40), 0);
	assert_int_equal(install(snap, false), 0);
	expect_log(301, snap);
	assert_int_equal(iot_append(&t, 301, 10, 5, 2, 40), 0);
	assert_int_equal(iot_sync(&t), 0);
	expect_log(301, (struct lcr_log_id){ { 5, 2 }, 310 });
	struct lcr_entry e;
	uint8_t buf[64];
	assert_int_equal(lcr_log_read(t.log, 50, &e, buf, sizeof(buf)), -ENOENT);
	reopen();
	expect_log(301, (struct lcr_log_id){ { 5, 2 }, 310 });
	struct lcr_log_recovery rs;
	lcr_log_recovered(t.log, &rs);
	assert_true(lcr_log_id_eq(rs.purged, snap));
	assert_int_equal(iot_check_disk(&t, 301, 310, 5, 2), 0);
	/* Truncate and append after it, across reopens. */
	assert_int_equal(iot_truncate(&t, 299), -EINVAL);
	assert_int_equal(iot_truncate(&t, 305), 0);
	assert_int_equal(iot_append(&t, 306, 5, 6, 1, 40), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	expect_log(301, (struct lcr_log_id){ { 6, 1 }, 310 });
	assert_int_equal(iot_check_disk(&t, 301, 305, 5, 2), 0);
	assert_int_equal(iot_check_disk(&t, 306, 310, 6, 1), 0);
	/* Everything back to the snapshot: an empty log after it. */
	assert_int_equal(iot_truncate(&t, 300), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	expect_log(301, snap);
	/* A second install, then appends in the same batch as the reset. */
	struct lcr_log_id snap2 = { { 7, 3 }, 1000 };
	assert_int_equal(install((struct lcr_log_id){ { 7, 3 }, 200 }, false), -EINVAL);
	assert_int_equal(install(snap2, false), 0);
	assert_int_equal(iot_append(&t, 1001, 3, 7, 3, 40), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	expect_log(1001, (struct lcr_log_id){ { 7, 3 }, 1003 });
	assert_int_equal(iot_check_disk(&t, 1001, 1003, 7, 3), 0);
}

/* A copy of a file of the log (at most 4 MiB: one test segment), to put back later. */
struct saved {
	char name[64];
	uint8_t *bytes;
	size_t len;
};

static void save_file(struct saved *f, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", t.dir, name);
	snprintf(f->name, sizeof(f->name), "%s", name);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	f->len = (size_t)sb.st_size;
	f->bytes = malloc(f->len);
	assert_non_null(f->bytes);
	assert_int_equal(pread(fd, f->bytes, f->len, 0), (ssize_t)f->len);
	close(fd);
}

static void restore_file(struct saved *f)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", t.dir, f->name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, f->bytes, f->len, 0), (ssize_t)f->len);
	close(fd);
	free(f->bytes);
	f->bytes = NULL;
}

static bool seg_exists(uint64_t no)
{
	char path[512];
	iot_seg_path(&t, no, path, sizeof(path));
	return access(path, F_OK) == 0;
}

static void test_log_install_reset_crash_points_recover_whole(void **state)
{
	(void)state;
	/* Several segments of the old log (4 MiB each). */
	assert_int_equal(iot_append(&t, 1, 4000, 1, 1, 3000), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen(); /* the spare is gone: the segments are exactly the log's */
	uint64_t n_old = 0;
	while (seg_exists(n_old + 1))
		n_old++;
	assert_true(n_old >= 3);
	struct saved old[16] = { 0 }, meta_old;
	assert_true(n_old <= 16);
	for (uint64_t i = 0; i < n_old; i++) {
		char name[64];
		snprintf(name, sizeof(name), "seg-%016llx.log", (unsigned long long)(i + 1));
		save_file(&old[i], name);
	}
	save_file(&meta_old, "meta");
	struct lcr_log_id snap = { { 3, 1 }, 2500 };
	assert_int_equal(install(snap, false), 0);
	assert_int_equal(iot_append(&t, 2501, 5, 3, 1, 100), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_settle(&t);
	/* The segments before the reset are gone, once the meta slots hold it.
	 * (The reset went to the first segment without a batch: an old spare
	 * that recovery kept, or a new one.) */
	uint64_t first_live = 1;
	while (!seg_exists(first_live))
		first_live++;
	assert_true(first_live >= 4 && first_live <= n_old + 1);
	n_old = first_live - 1;
	struct lcr_log_stats st;
	lcr_log_stats(t.log, &st);
	assert_int_equal(st.segments_purged, n_old);
	iot_close(&t);
	struct saved meta_new;
	save_file(&meta_new, "meta");

	/* Crash after the reset batch, before the meta write: the old meta
	 * slots and every old segment. */
	restore_file(&meta_old);
	for (uint64_t i = 0; i < n_old; i++) {
		char name[64];
		snprintf(name, sizeof(name), "seg-%016llx.log", (unsigned long long)(i + 1));
		restore_file(&old[i]);
		save_file(&old[i], name); /* a copy for the next case */
	}
	if (iot_open(&t) < 0)
		fail_msg("open: %s", t.why);
	expect_log(2501, (struct lcr_log_id){ { 3, 1 }, 2505 });
	assert_int_equal(iot_check_disk(&t, 2501, 2505, 3, 1), 0);
	for (uint64_t i = 1; i <= n_old; i++)
		assert_false(seg_exists(i)); /* recovery removed the dead ones */
	iot_close(&t);

	/* Crash in the middle of removing them: the new meta slots, and old
	 * segments from the second on (whose first index leaves a gap after
	 * the purge point). */
	restore_file(&meta_new);
	for (uint64_t i = 1; i < n_old; i++)
		restore_file(&old[i]);
	free(old[0].bytes);
	for (uint64_t i = n_old; i < 16 && old[i].bytes; i++)
		free(old[i].bytes);
	assert_int_equal(iot_open(&t), 0);
	expect_log(2501, (struct lcr_log_id){ { 3, 1 }, 2505 });
	assert_int_equal(iot_check_disk(&t, 2501, 2505, 3, 1), 0);
	struct lcr_log_recovery rs;
	lcr_log_recovered(t.log, &rs);
	assert_true(lcr_log_id_eq(rs.purged, snap));
	assert_int_equal(iot_append(&t, 2506, 5, 4, 1, 100), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	expect_log(2501, (struct lcr_log_id){ { 4, 1 }, 2510 });
	free(meta_old.bytes);
	free(meta_new.bytes);
}

static void test_log_install_reset_torn_gives_old_log(void **state)
{
	(void)state;
	assert_int_equal(iot_append(&t, 1, 100, 1, 1, 40), 0);
	assert_int_equal(iot_sync(&t), 0);
	reopen();
	struct saved seg1, meta;
	save_file(&seg1, "seg-0000000000000001.log");
	save_file(&meta, "meta");
	assert_int_equal(install((struct lcr_log_id){ { 3, 1 }, 500 }, false), 0);
	assert_int_equal(iot_append(&t, 501, 5, 3, 1, 100), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_settle(&t);
	iot_close(&t);
	/* The reset's write torn (its header damaged), the old segment and
	 * meta slots still there: the old log. */
	restore_file(&seg1);
	restore_file(&meta);
	char path[512];
	iot_seg_path(&t, 2, path, sizeof(path));
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b = 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, LCR_BLOCK + 20), 1);
	close(fd);
	assert_int_equal(iot_open(&t), 0);
	expect_log(1, (struct lcr_log_id){ { 1, 1 }, 100 });
	assert_int_equal(iot_check_disk(&t, 1, 100, 1, 1), 0);
}

/* Batches in segment `no` written into it (its nonce) and left from before (another). */
static void count_batches(uint64_t no, uint32_t *ours, uint32_t *stale)
{
	static uint8_t blk[LCR_BLOCK];
	struct lcr_seg_hdr sh;
	char path[512];
	iot_seg_path(&t, no, path, sizeof(path));
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &sh, sizeof(sh), 0), (ssize_t)sizeof(sh));
	*ours = *stale = 0;
	for (off_t off = LCR_BLOCK; pread(fd, blk, LCR_BLOCK, off) == LCR_BLOCK; off += LCR_BLOCK) {
		struct lcr_batch_hdr h;
		memcpy(&h, blk, sizeof(h));
		if (!lcr_batch_hdr_valid(blk, LCR_BLOCK, 0, 0))
			continue;
		if (h.seg_nonce == sh.nonce)
			(*ours)++;
		else
			(*stale)++;
	}
	close(fd);
}

static void test_log_purged_segments_recycled_never_replayed(void **state)
{
	(void)state;
	/* Six segments of 3000-byte entries; purging most keeps two files. */
	uint64_t n = 0;
	for (int round = 0; round < 8; round++) {
		assert_int_equal(iot_append(&t, n + 1, 1000, 1, 1, 3000), 0);
		assert_int_equal(iot_sync(&t), 0);
		n += 1000;
	}
	assert_int_equal(lcr_log_purge(t.log, 6000), 0);
	assert_int_equal(iot_vote(&t, 1, 1, false), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_settle(&t);
	struct lcr_log_stats st;
	lcr_log_stats(t.log, &st);
	assert_true(st.segments_purged >= 3);
	/* Batches in small writes (100 entries each), into recycled files: each
	 * full of valid batches of its earlier life. */
	uint64_t recycled_seg = 0;
	for (int round = 0; round < 40 && !recycled_seg; round++) {
		assert_int_equal(iot_append(&t, n + 1, 100, 2, 1, 3000), 0);
		assert_int_equal(iot_sync(&t), 0);
		n += 100;
		lcr_log_stats(t.log, &st);
		if (st.segments_recycled == 0)
			continue;
		/* The newest segment with batches of ours and of its past. */
		for (uint64_t no = 1; no < 64; no++) {
			char path[512];
			iot_seg_path(&t, no, path, sizeof(path));
			if (access(path, F_OK) != 0)
				continue;
			uint32_t ours, stale;
			count_batches(no, &ours, &stale);
			if (ours > 0 && stale > 0)
				recycled_seg = no;
		}
	}
	assert_true(recycled_seg > 0);
	assert_true(st.segments_recycled >= 1);
	print_message("segment %llu: recycled, written part-way; reopening\n",
		      (unsigned long long)recycled_seg);
	/* Stopped part-way through the recycled segment: exactly what was written. */
	uint64_t first = lcr_log_first_index(t.log);
	reopen();
	assert_int_equal(lcr_log_first_index(t.log), first);
	assert_int_equal(lcr_log_last(t.log).index, n);
	assert_int_equal(iot_check_disk(&t, first, 8000, 1, 1), 0);
	assert_int_equal(iot_check_disk(&t, 8001, n, 2, 1), 0);
	/* A torn last write there: cut, and the stale batches after it stay
	 * stale (the log ends at the batch before). */
	struct lcr_log_id before = lcr_log_last(t.log);
	assert_int_equal(iot_append(&t, n + 1, 3, 3, 1, 3000), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_close(&t);
	uint32_t ours, stale;
	uint64_t last_seg = recycled_seg;
	for (uint64_t no = recycled_seg; no < recycled_seg + 8; no++) {
		char path[512];
		iot_seg_path(&t, no, path, sizeof(path));
		if (access(path, F_OK) == 0) {
			count_batches(no, &ours, &stale);
			if (ours > 0)
				last_seg = no;
		}
	}
	struct {
		uint64_t off;
	} f = { 0 };
	{
		static uint8_t blk[LCR_BLOCK];
		struct lcr_seg_hdr sh;
		char path[512];
		iot_seg_path(&t, last_seg, path, sizeof(path));
		int fd = open(path, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &sh, sizeof(sh), 0), (ssize_t)sizeof(sh));
		/* Batches start at multiples of the segment's alignment. */
		for (off_t off = LCR_BLOCK; pread(fd, blk, LCR_BLOCK, off) > 0;
		     off += sh.batch_align) {
			struct lcr_batch_hdr h;
			memcpy(&h, blk, sizeof(h));
			if (lcr_batch_hdr_valid(blk, LCR_BLOCK, 0, 0) && h.seg_nonce == sh.nonce)
				f.off = (uint64_t)off;
		}
		uint8_t b = 0x77;
		assert_int_equal(pwrite(fd, &b, 1, (off_t)f.off + 100), 1); /* a record torn */
		close(fd);
	}
	assert_int_equal(iot_open(&t), 0);
	assert_true(lcr_log_id_eq(lcr_log_last(t.log), before));
	assert_int_equal(iot_check_disk(&t, 8001, before.index, 2, 1), 0);
	/* Writing on, through more segments: each recycled one ends where its
	 * own batches end, and the next one follows it. */
	n = before.index;
	for (int round = 0; round < 30; round++) {
		assert_int_equal(iot_append(&t, n + 1, 100, 4, 1, 3000), 0);
		assert_int_equal(iot_sync(&t), 0);
		n += 100;
	}
	assert_int_equal(lcr_log_purge(t.log, n - 500), 0);
	for (int round = 0; round < 60; round++) {
		assert_int_equal(iot_append(&t, n + 1, 100, 4, 1, 3000), 0);
		assert_int_equal(iot_sync(&t), 0);
		n += 100;
	}
	lcr_log_stats(t.log, &st);
	assert_true(st.segments_recycled >= 2);
	reopen();
	assert_int_equal(lcr_log_last(t.log).index, n);
	assert_int_equal(iot_check_disk(&t, lcr_log_first_index(t.log), n, 4, 1), 0);
}

/* Files in the log's directory whose names start with `prefix`. */
static uint32_t count_files(const char *prefix)
{
	DIR *d = opendir(t.dir);
	struct dirent *de;
	uint32_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

/*
 * Six segments written, five purged, six more written, with recycle_max
 * `keep`: the purged files kept are min(purged, keep) and the next segments
 * are made of them; with 0 every purged file is deleted and every segment
 * is a new file.
 */
static void purge_and_write_on(uint32_t keep)
{
	struct lcr_log_stats st0, st1;
	uint64_t n = 0;

	iot_close(&t);
	t.opts.recycle_max = keep;
	assert_int_equal(iot_open(&t), 0);
	for (int round = 0; round < 8; round++) {
		assert_int_equal(iot_append(&t, n + 1, 1000, 1, 1, 3000), 0);
		assert_int_equal(iot_sync(&t), 0);
		n += 1000;
	}
	assert_int_equal(lcr_log_purge(t.log, 6000), 0);
	assert_int_equal(iot_vote(&t, 1, 1, false), 0); /* the purge point's write */
	assert_int_equal(iot_sync(&t), 0);
	iot_settle(&t);
	lcr_log_stats(t.log, &st0);
	assert_true(st0.segments_purged >= 3);
	assert_int_equal(st0.segments_recycled, 0);
	uint64_t kept = st0.segments_purged < keep ? st0.segments_purged : keep;
	assert_int_equal(count_files("free-"), kept);
	/* Six more segments' worth: each segment switch takes a kept file
	 * while there is one, else creates a new one. */
	for (int round = 0; round < 8; round++) {
		assert_int_equal(iot_append(&t, n + 1, 1000, 1, 1, 3000), 0);
		assert_int_equal(iot_sync(&t), 0);
		n += 1000;
		assert_true(count_files("free-") <= keep);
	}
	iot_settle(&t);
	lcr_log_stats(t.log, &st1);
	assert_int_equal(st1.segments_recycled, kept);
	assert_true(st1.segments_created - st0.segments_created + kept >= 4);
	/* What the log holds reads back, and reopens without the kept files. */
	reopen();
	assert_int_equal(count_files("free-"), 0);
	assert_int_equal(lcr_log_last(t.log).index, n);
	assert_int_equal(iot_check_disk(&t, lcr_log_first_index(t.log), n, 1, 1), 0);
}

static void test_log_recycle_off_deletes_purged_segments(void **state)
{
	(void)state;
	purge_and_write_on(0);
}

static void test_log_recycle_keeps_at_most_recycle_max(void **state)
{
	(void)state;
	purge_and_write_on(1);
}

static void test_log_recycle_keeps_more_when_asked(void **state)
{
	(void)state;
	purge_and_write_on(3);
}

static void test_log_recycle_max_bounded(void **state)
{
	(void)state;
	struct lcr_log *l;
	char why[256];
	struct lcr_log_opts o = t.opts;
	lcr_log_opts_default(&o, t.dir);
	assert_int_equal(o.recycle_max, LCR_LOG_RECYCLE_DEFAULT);
	o = t.opts;
	o.recycle_max = LCR_LOG_RECYCLE_MAX + 1;
	assert_int_equal(lcr_log_open(&l, &t.ring, &o, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "recycle_max"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_log_append_survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_durable_reported_in_io_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_later_write_done_first_waits_for_earlier,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_truncate_and_replace_survive_reopen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_truncate_inside_open_batch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_cache_serves_recent_entries, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_disk_reads_ahead_in_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_cache_interleaved_readers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_segments_roll_and_purge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_large_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_rejects_gaps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_bad_options_named, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_durability_none_still_writes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_io_modes_agree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_split_append_reported_only_when_whole,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_purge_above_a_truncation_reopens, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_second_process_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_backpressure_never_overwrites_unwritten,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_segments_max_bounds_the_segments, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_allocates_through_its_hook, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_reads_batches_larger_than_its_own, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_install_with_log_purges_in_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_install_without_log_restarts_after_last,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_install_reset_crash_points_recover_whole,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_install_reset_torn_gives_old_log, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_purged_segments_recycled_never_replayed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_recycle_off_deletes_purged_segments, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_recycle_keeps_at_most_recycle_max, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_recycle_keeps_more_when_asked, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_recycle_max_bounded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
