/* Recovery after every kind of partial write (cut the torn tail) and after corruption (refuse,
 * naming file and offset). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "crc32c.h"
#include "io_harness.h"
#include "log_format.h"
#include "meta.h"
#include "scan.h"

static struct iot t;

/* Batches of segment 1 as found on disk: offset and span. */
struct found {
	uint64_t off[64];
	uint64_t span[64];
	int n;
};

/* The batch alignment segment `seg` says it has (its header). */
static uint32_t seg_align(uint64_t seg)
{
	char path[512], w[200];
	static uint8_t blk[LCR_BLOCK];
	struct lcr_seg_info si;
	iot_seg_path(&t, seg, path, sizeof(path));
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, blk, LCR_BLOCK, 0), LCR_BLOCK);
	close(fd);
	assert_int_equal(lcr_seg_check_header(blk, LCR_BLOCK, 0, seg, &si, w, sizeof(w)), 0);
	return si.align;
}

static void find_batches(uint64_t seg, struct found *f)
{
	char path[512];
	static uint8_t buf[LCR_BLOCK];
	uint32_t unit = seg_align(seg);
	iot_seg_path(&t, seg, path, sizeof(path));
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	f->n = 0;
	for (uint64_t off = LCR_BLOCK;; off += unit) {
		if (pread(fd, buf, unit, (off_t)off) != (ssize_t)unit)
			break;
		if (!lcr_batch_hdr_valid(buf, unit, 0, 0))
			continue;
		struct lcr_batch_hdr h;
		memcpy(&h, buf, sizeof(h));
		f->off[f->n] = off;
		f->span[f->n] = lcr_align_up(sizeof(h) + h.bytes, unit);
		f->n++;
		off += f->span[f->n - 1] - unit;
		if (f->n == 64)
			break;
	}
	close(fd);
}

static void poke(uint64_t seg, uint64_t off, const void *bytes, size_t n)
{
	char path[512];
	iot_seg_path(&t, seg, path, sizeof(path));
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
	fsync(fd);
	close(fd);
}

static void flip(uint64_t seg, uint64_t off)
{
	char path[512];
	uint8_t b;
	iot_seg_path(&t, seg, path, sizeof(path));
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

/* Three durable batches: 1..10 (small), 11..20 (small), 21..30 (three blocks). */
static void three_batches(void)
{
	assert_int_equal(iot_append(&t, 1, 10, 1, 1, 100), 0);
	assert_int_equal(iot_sync(&t), 0);
	assert_int_equal(iot_append(&t, 11, 10, 1, 1, 100), 0);
	assert_int_equal(iot_sync(&t), 0);
	assert_int_equal(iot_append(&t, 21, 10, 2, 1, 1000), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_close(&t);
}

IOT_FIXTURES(t, "recover")

static void expect_open_last(uint64_t last)
{
	int rc = iot_open(&t);
	if (rc < 0)
		fail_msg("open failed (%d): %s", rc, t.why);
	assert_int_equal(lcr_log_last(t.log).index, last);
	if (last >= 1)
		assert_int_equal(iot_check_disk(&t, 1, last < 20 ? last : 20, 1, 1), 0);
	/* The log keeps working after the cut, and the result survives. */
	assert_int_equal(iot_append(&t, last + 1, 5, 3, 2, 300), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_close(&t);
	assert_int_equal(iot_open(&t), 0);
	assert_int_equal(lcr_log_last(t.log).index, last + 5);
	assert_int_equal(iot_check_disk(&t, last + 1, last + 5, 3, 2), 0);
}

static void expect_open_fails(const char *needle)
{
	int rc = iot_open(&t);
	assert_int_equal(rc, -EBADMSG);
	print_message("refused: %s\n", t.why);
	assert_non_null(strstr(t.why, needle));
}

static void test_recover_last_batch_header_never_written(void **state)
{
	(void)state;
	struct found f;
	three_batches();
	find_batches(1, &f);
	assert_int_equal(f.n, 3);
	static uint8_t zero[LCR_BLOCK];
	poke(1, f.off[2], zero, LCR_BLOCK);
	expect_open_last(20);
}

static void test_recover_torn_header_of_last_batch(void **state)
{
	(void)state;
	struct found f;
	three_batches();
	find_batches(1, &f);
	flip(1, f.off[2] + 20);
	expect_open_last(20);
}

static void test_recover_torn_record_in_last_batch(void **state)
{
	(void)state;
	struct found f;
	three_batches();
	find_batches(1, &f);
	flip(1, f.off[2] + f.span[2] - LCR_BLOCK + 100); /* inside its last block */
	expect_open_last(20);
}

static void test_recover_last_batch_missing_a_middle_block(void **state)
{
	(void)state;
	struct found f;
	static uint8_t zero[LCR_BLOCK];
	three_batches();
	find_batches(1, &f);
	assert_true(f.span[2] >= 2 * LCR_BLOCK);
	poke(1, f.off[2] + LCR_BLOCK, zero, LCR_BLOCK);
	expect_open_last(20);
}

static void test_recover_garbage_after_last_batch(void **state)
{
	(void)state;
	struct found f;
	uint8_t junk[LCR_BLOCK];
	three_batches();
	find_batches(1, &f);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 31 + 7);
	uint64_t end = f.off[2] + f.span[2];
	poke(1, end, junk, sizeof(junk));
	expect_open_last(30);
}

/*
 * Six durable batches of ten entries each, 1..60, the third of three blocks
 * (sequence numbers 1..6): more than the writes in flight
 * (LCR_LOG_WRITES_MAX) can leave after any one of them.
 */
static void six_batches(void)
{
	for (uint64_t first = 1; first <= 51; first += 10) {
		assert_int_equal(iot_append(&t, first, 10, 1, 1, first == 21 ? 1000 : 100), 0);
		assert_int_equal(iot_sync(&t), 0);
	}
	iot_close(&t);
}

static void test_recover_damaged_middle_batch_is_corruption(void **state)
{
	(void)state;
	struct found f;
	six_batches();
	find_batches(1, &f);
	assert_int_equal(f.n, 6);
	flip(1, f.off[1] + 200);
	expect_open_fails("seg-0000000000000001.log");
	assert_non_null(strstr(t.why, "offset"));
}

static void test_recover_damaged_first_header_is_corruption(void **state)
{
	(void)state;
	struct found f;
	six_batches();
	find_batches(1, &f);
	flip(1, f.off[0] + 30);
	expect_open_fails("valid batch follows");
}

/*
 * Batches 2 to 4 missing and 5 and 6 intact: no more after the hole than
 * writes in flight leave, but sequence numbers 5 and 6 cannot have been in
 * flight with batch 2, the first after sequence 1: corruption.
 */
static void test_recover_orphans_beyond_writes_in_flight_are_corruption(void **state)
{
	(void)state;
	struct found f;
	static uint8_t zero[64 * LCR_BLOCK];
	six_batches();
	find_batches(1, &f);
	assert_int_equal(f.n, 6);
	assert_true(f.off[4] - f.off[1] <= sizeof(zero));
	poke(1, f.off[1], zero, f.off[4] - f.off[1]);
	expect_open_fails("more than writes in flight leave");
}

/* Whether any unit of segment 1 from `from` to `to` is not zero. */
static bool seg_bytes_zero(uint64_t from, uint64_t to)
{
	char path[512];
	static uint8_t buf[LCR_BLOCK];
	iot_seg_path(&t, 1, path, sizeof(path));
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	bool zero = true;
	for (uint64_t off = from; off < to && zero; off += sizeof(buf)) {
		size_t n = to - off < sizeof(buf) ? to - off : sizeof(buf);
		assert_int_equal(pread(fd, buf, n, (off_t)off), (ssize_t)n);
		for (size_t i = 0; i < n; i++)
			zero = zero && buf[i] == 0;
	}
	close(fd);
	return zero;
}

/*
 * A crash with two writes in flight: batch 2 (11..20) never reached the
 * disk, batch 3 (21..30) did, an orphan after the end of the log. Recovery
 * ends the log at 10 and erases the orphan. Then batch 2 is written again,
 * the same entries, so the same length, sequence number and segment nonce:
 * the orphan, had it stayed, would now follow it exactly (sequence 3, first
 * index 21) and the next recovery would take it as part of the log, entries
 * nobody acknowledged after the crash. It must find 1..20 and nothing more.
 */
static void test_recover_orphan_after_missing_batch_is_erased(void **state)
{
	(void)state;
	struct found f;
	static uint8_t zero[LCR_BLOCK];
	three_batches();
	find_batches(1, &f);
	assert_int_equal(f.n, 3);
	assert_true(f.span[1] <= sizeof(zero));
	poke(1, f.off[1], zero, f.span[1]);
	/* The spare segment the log prepared goes: the next batch is to land
	 * in segment 1, at the end of its log. */
	for (uint64_t seg = 2; seg <= 3; seg++) {
		char path[512];
		iot_seg_path(&t, seg, path, sizeof(path));
		unlink(path);
	}
	int rc = iot_open(&t);
	if (rc < 0)
		fail_msg("open failed (%d): %s", rc, t.why);
	assert_int_equal(lcr_log_last(t.log).index, 10);
	bool erased = seg_bytes_zero(f.off[1], f.off[2] + f.span[2]);
	uint64_t orphan_at = f.off[2];
	assert_int_equal(iot_append(&t, 11, 10, 1, 1, 100), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_close(&t);
	rc = iot_open(&t);
	if (rc < 0)
		fail_msg("open failed (%d): %s", rc, t.why);
	assert_int_equal(lcr_log_last(t.log).index, 20);
	assert_int_equal(iot_check_disk(&t, 1, 20, 1, 1), 0);
	iot_close(&t);
	find_batches(1, &f);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.off[1] + f.span[1], orphan_at); /* right before where it was */
	assert_true(erased);
}

/* The same with the batch before the orphan torn, not missing: both are cut. */
static void test_recover_orphan_after_torn_batch_is_erased(void **state)
{
	(void)state;
	struct found f;
	three_batches();
	find_batches(1, &f);
	flip(1, f.off[1] + 200);
	expect_open_last(10);
}

static void test_recover_damaged_segment_header(void **state)
{
	(void)state;
	three_batches();
	flip(1, 12);
	expect_open_fails("segment header");
}

/* The whole of a file, or it written back as it was (at that length). */
static uint8_t *file_take(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	off_t n = lseek(fd, 0, SEEK_END);
	assert_true(n > 0);
	uint8_t *b = malloc((size_t)n);
	assert_non_null(b);
	assert_int_equal(pread(fd, b, (size_t)n, 0), n);
	close(fd);
	*len = (size_t)n;
	return b;
}

static void file_restore(const char *path, const uint8_t *b, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, len, 0), (ssize_t)len);
	close(fd);
}

/* A segment cut short outside the log, to a length that is not a whole number
 * of blocks: refused, naming the file and its length (it used to reach an
 * assertion); at a block boundary: the log ends there. Each cut is made to the
 * segment as written. */
static void test_recover_segment_cut_to_odd_length_refused(void **state)
{
	(void)state;
	char path[512];
	struct found f;
	size_t len;
	three_batches();
	find_batches(1, &f);
	assert_int_equal(f.n, 3);
	iot_seg_path(&t, 1, path, sizeof(path));
	uint8_t *orig = file_take(path, &len);
	uint64_t sizes[] = { LCR_BLOCK + 32, f.off[2] + 100, f.off[2] + f.span[2] + 1 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		file_restore(path, orig, len);
		assert_int_equal(truncate(path, (off_t)sizes[i]), 0);
		assert_int_equal(iot_open(&t), -EBADMSG);
		char want[64];
		snprintf(want, sizeof(want), "file is %llu bytes, not a multiple of",
			 (unsigned long long)sizes[i]);
		if (!strstr(t.why, want) || !strstr(t.why, "seg-"))
			fail_msg("cut to %llu: %s", (unsigned long long)sizes[i], t.why);
	}
	/* At the first block boundary past the third batch: all three stay. */
	file_restore(path, orig, len);
	free(orig);
	assert_int_equal(truncate(path, (off_t)lcr_align_up(f.off[2] + f.span[2], LCR_BLOCK)), 0);
	expect_open_last(30);
}

static void fill_two_segments_from(uint64_t first)
{
	uint64_t n = 0;
	while (n < 2500) {
		assert_int_equal(iot_append(&t, first + n, 500, 1, 1, 3000), 0);
		n += 500;
		assert_int_equal(iot_sync(&t), 0);
	}
	iot_close(&t);
}

static void fill_two_segments(void)
{
	fill_two_segments_from(1);
}

/* How many files of the log's directory are segments (seg-*.log). */
static int count_segments(void)
{
	char path[512];
	iot_seg_path(&t, 1, path, sizeof(path));
	*strrchr(path, '/') = 0;
	DIR *d = opendir(path);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "seg-", 4) == 0)
			n++;
	closedir(d);
	return n;
}

/*
 * The spare segment prepared before a stop stays the spare after the next
 * open: the log goes on in the segment before it, and restarting does not
 * add a segment each time (a node in a restart loop filled its disk so).
 */
static void test_recover_spare_stays_spare_across_restarts(void **state)
{
	(void)state;
	assert_int_equal(iot_append(&t, 1, 10, 1, 1, 100), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_settle(&t);
	iot_close(&t);
	int segs = count_segments();
	assert_int_equal(segs, 2); /* the active one and its spare */
	for (uint64_t k = 0; k < 4; k++) {
		assert_int_equal(iot_open(&t), 0);
		assert_int_equal(iot_append(&t, 11 + 10 * k, 10, 1, 1, 100), 0);
		assert_int_equal(iot_sync(&t), 0);
		iot_settle(&t);
		iot_close(&t);
		assert_int_equal(count_segments(), segs);
	}
	assert_int_equal(iot_open(&t), 0);
	assert_int_equal(lcr_log_last(t.log).index, 50);
	assert_int_equal(iot_check_disk(&t, 1, 50, 1, 1), 0);
	/* The spare still takes over when the segment before it fills. */
	fill_two_segments_from(51);
	assert_int_equal(iot_open(&t), 0);
	assert_int_equal(iot_check_disk(&t, 1, 2550, 1, 1), 0);
}

static void test_recover_missing_middle_segment(void **state)
{
	(void)state;
	char path[512];
	fill_two_segments();
	iot_seg_path(&t, 1, path, sizeof(path));
	char p2[512];
	iot_seg_path(&t, 2, p2, sizeof(p2));
	assert_int_equal(unlink(p2), 0);
	expect_open_fails("missing");
}

static void test_recover_torn_segment_followed_by_data(void **state)
{
	(void)state;
	struct found f;
	fill_two_segments();
	/* Damage the last batch of segment 1: segment 2 was written after it. */
	find_batches(1, &f);
	assert_true(f.n >= 1);
	flip(1, f.off[f.n - 1] + 100);
	/* Refused either way: the next segment does not continue a cut log. */
	expect_open_fails("seg-0000000000000002.log");
}

static void test_recover_unfinished_spare_segment_removed(void **state)
{
	(void)state;
	char path[512];
	three_batches();
	/* A spare whose preparation was cut short: only zeros. */
	iot_seg_path(&t, 9, path, sizeof(path));
	(void)path;
	char p3[512];
	iot_seg_path(&t, 3, p3, sizeof(p3));
	unlink(p3);
	char p2[512];
	iot_seg_path(&t, 2, p2, sizeof(p2));
	int fd = open(p2, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	static uint8_t zero[LCR_BLOCK];
	assert_int_equal(write(fd, zero, sizeof(zero)), (ssize_t)sizeof(zero));
	close(fd);
	expect_open_last(30);
}

static void test_recover_meta_torn_newest_slot(void **state)
{
	(void)state;
	/* The new file holds seq 1 (slot 1); then: */
	assert_int_equal(iot_vote(&t, 3, 1, false), 0); /* seq 2 -> slot 0 */
	assert_int_equal(iot_sync(&t), 0);
	assert_int_equal(iot_vote(&t, 4, 2, false), 0); /* seq 3 -> slot 1 */
	assert_int_equal(iot_sync(&t), 0);
	iot_close(&t);
	char path[512];
	snprintf(path, sizeof(path), "%s/meta", t.dir);
	int fd = open(path, O_RDWR);
	uint8_t b = 0xff;
	assert_int_equal(pwrite(fd, &b, 1, LCR_META_SLOT + 40), 1); /* slot 1 torn */
	close(fd);
	assert_int_equal(iot_open(&t), 0);
	struct lcr_log_recovery rs;
	lcr_log_recovered(t.log, &rs);
	/* The torn slot was the newest and was never acknowledged. */
	assert_int_equal(rs.vote.lid.term, 3);
	iot_close(&t);
	fd = open(path, O_RDWR);
	assert_int_equal(pwrite(fd, &b, 1, 40), 1);
	close(fd);
	expect_open_fails("meta");
}

static void test_recover_meta_torn_creation(void **state)
{
	(void)state;
	/* Killed while the meta file was being created: one slot of zeros
	 * written, the other not. Nothing was ever saved in it: it opens (found
	 * by the crash test, cycle 152 of seed 23328235232). */
	iot_close(&t);
	char path[512];
	/* As it was then: the segments come after the meta file. */
	for (uint64_t no = 1; no < 8; no++) {
		iot_seg_path(&t, no, path, sizeof(path));
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/meta", t.dir);
	assert_int_equal(truncate(path, LCR_META_SLOT), 0);
	static uint8_t zero[LCR_META_SLOT];
	int fd = open(path, O_RDWR);
	assert_int_equal(pwrite(fd, zero, sizeof(zero), 0), (ssize_t)sizeof(zero));
	close(fd);
	assert_int_equal(iot_open(&t), 0);
	assert_int_equal(iot_vote(&t, 5, 1, false), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_close(&t);
	assert_int_equal(iot_open(&t), 0);
	struct lcr_log_recovery rs;
	lcr_log_recovered(t.log, &rs);
	assert_int_equal(rs.vote.lid.term, 5);
	/* Short beside segments (zeros or not): corruption, refused by name.
	 * Here the cut took the slot with the vote in it. */
	iot_close(&t);
	assert_int_equal(truncate(path, LCR_META_SLOT), 0);
	expect_open_fails("meta file is 4096 bytes");
}

/* ---- files of another format, values out of range, a lost vote ---------------------- */

static void meta_path(char *buf, size_t n)
{
	snprintf(buf, n, "%s/meta", t.dir);
}

/* Apply `fix` to every record of batch `k` of segment 1, then fix the record CRCs. */
static void patch_records(int k, void (*fix)(struct lcr_rec_hdr *r, uint32_t i))
{
	struct found f;
	static uint8_t buf[1 << 20];
	struct lcr_batch_hdr h;
	find_batches(1, &f);
	assert_true(k < f.n);
	char path[512];
	iot_seg_path(&t, 1, path, sizeof(path));
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_true(f.span[k] <= sizeof(buf));
	assert_int_equal(pread(fd, buf, f.span[k], (off_t)f.off[k]), (ssize_t)f.span[k]);
	memcpy(&h, buf, sizeof(h));
	uint8_t *p = buf + sizeof(h);
	for (uint32_t i = 0; i < h.count; i++) {
		struct lcr_rec_hdr r;
		memcpy(&r, p, sizeof(r));
		fix(&r, i);
		uint32_t crc = lcr_crc32c(0, (const uint8_t *)&r + 4, sizeof(r) - 4);
		r.crc = lcr_crc32c(crc, p + sizeof(r), r.len);
		memcpy(p, &r, sizeof(r));
		p += lcr_rec_size(r.len);
	}
	assert_int_equal(pwrite(fd, buf, f.span[k], (off_t)f.off[k]), (ssize_t)f.span[k]);
	close(fd);
}

/* Set the version field (offset 8) of a header of `n` bytes at `off`, fixing its CRC. */
static void set_version(const char *path, uint64_t off, size_t n, uint16_t version)
{
	uint8_t h[128];
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0 && n <= sizeof(h));
	assert_int_equal(pread(fd, h, n, (off_t)off), (ssize_t)n);
	memcpy(h + 8, &version, sizeof(version));
	uint32_t crc = lcr_crc32c(0, h + 8, n - 8);
	memcpy(h + 4, &crc, sizeof(crc));
	assert_int_equal(pwrite(fd, h, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void test_recover_meta_zeroed_beside_segments_refused(void **state)
{
	(void)state;
	char path[512];
	static uint8_t zero[2 * LCR_META_SLOT];
	assert_int_equal(iot_vote(&t, 7, 2, false), 0);
	three_batches();
	meta_path(path, sizeof(path));
	int fd = open(path, O_WRONLY);
	assert_int_equal(pwrite(fd, zero, sizeof(zero), 0), (ssize_t)sizeof(zero));
	close(fd);
	expect_open_fails(path);
	assert_non_null(strstr(t.why, "all zeros"));
	assert_non_null(strstr(t.why, "vote"));
}

static void test_recover_meta_emptied_beside_segments_refused(void **state)
{
	(void)state;
	char path[512];
	assert_int_equal(iot_vote(&t, 7, 2, false), 0);
	three_batches();
	meta_path(path, sizeof(path));
	assert_int_equal(truncate(path, 0), 0);
	expect_open_fails(path);
	assert_non_null(strstr(t.why, "empty (0 bytes)"));
	/* Gone altogether: refused too, and not created empty. */
	assert_int_equal(unlink(path), 0);
	expect_open_fails(path);
	assert_non_null(strstr(t.why, "missing"));
	assert_int_equal(access(path, F_OK), -1);
}

static void test_recover_meta_emptied_without_segments_is_fresh(void **state)
{
	(void)state;
	char path[512];
	static uint8_t zero[2 * LCR_META_SLOT], got[2 * LCR_META_SLOT];
	iot_close(&t);
	for (uint64_t no = 1; no < 8; no++) {
		iot_seg_path(&t, no, path, sizeof(path));
		unlink(path);
	}
	meta_path(path, sizeof(path));
	for (int round = 0; round < 2; round++) {
		/* Zeroed, then emptied: with no segment beside it, nothing was lost. */
		if (round == 0) {
			int fd = open(path, O_WRONLY);
			assert_int_equal(pwrite(fd, zero, sizeof(zero), 0), (ssize_t)sizeof(zero));
			close(fd);
		} else {
			assert_int_equal(truncate(path, 0), 0);
		}
		assert_int_equal(iot_open(&t), 0);
		struct lcr_log_recovery rs;
		lcr_log_recovered(t.log, &rs);
		assert_int_equal(rs.vote.lid.term, 0);
		assert_int_equal(lcr_log_last(t.log).index, 0);
		iot_close(&t);
		/* Before its first segment, the log wrote a valid slot: zeros found
		 * later beside segments can only mean a lost vote. */
		int fd = open(path, O_RDONLY);
		assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
		close(fd);
		assert_memory_not_equal(got, zero, sizeof(got));
		for (uint64_t no = 1; no < 8; no++) {
			char sp[512];
			iot_seg_path(&t, no, sp, sizeof(sp));
			unlink(sp);
		}
	}
}

static void test_recover_segment_of_another_version_named(void **state)
{
	(void)state;
	char path[512];
	three_batches();
	iot_seg_path(&t, 1, path, sizeof(path));
	set_version(path, 0, sizeof(struct lcr_seg_hdr), 4);
	expect_open_fails("seg-0000000000000001.log");
	assert_non_null(strstr(t.why, "format version 4, this build reads 2 and 3"));
}

static void test_recover_batch_of_another_version_named(void **state)
{
	(void)state;
	char path[512];
	struct found f;
	three_batches();
	find_batches(1, &f);
	iot_seg_path(&t, 1, path, sizeof(path));
	/* The last batch: not cut as if torn, refused. */
	set_version(path, f.off[2], sizeof(struct lcr_batch_hdr), 4);
	expect_open_fails("seg-0000000000000001.log");
	assert_non_null(strstr(t.why, "format version 4, this build reads 2 and 3"));
	/* Version 2 is read, but not inside a segment of version 3. */
	set_version(path, f.off[2], sizeof(struct lcr_batch_hdr), 2);
	expect_open_fails("seg-0000000000000001.log");
	assert_non_null(strstr(t.why, "format version 2 in a segment of version 3"));
}

static void test_recover_meta_of_another_version_named(void **state)
{
	(void)state;
	char path[512];
	assert_int_equal(iot_vote(&t, 7, 2, false), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_close(&t);
	meta_path(path, sizeof(path));
	/* Every slot that holds something speaks version 2. */
	uint8_t slot[LCR_META_SLOT];
	for (int i = 0; i < 2; i++) {
		int fd = open(path, O_RDONLY);
		assert_int_equal(pread(fd, slot, sizeof(slot), i * LCR_META_SLOT), LCR_META_SLOT);
		close(fd);
		if (slot[0] != 0)
			set_version(path, (uint64_t)i * LCR_META_SLOT, 88, 2);
	}
	expect_open_fails(path);
	assert_non_null(strstr(t.why, "format version 2, this build reads 1"));
}

static void term_at_max(struct lcr_rec_hdr *r, uint32_t i)
{
	(void)i;
	r->term = LCR_NUMBER_MAX;
}

static void test_recover_record_term_out_of_range_refused(void **state)
{
	(void)state;
	three_batches();
	/* Every record of the last batch: intact, leaders in order, term 2^62. */
	patch_records(2, term_at_max);
	expect_open_fails("seg-0000000000000001.log");
	assert_non_null(strstr(t.why, "out of range"));
	assert_non_null(strstr(t.why, "offset"));
}

static void test_recover_meta_term_out_of_range_refused(void **state)
{
	(void)state;
	char path[512];
	static uint8_t two[2 * LCR_META_SLOT];
	struct lcr_meta_state st;
	uint64_t seq;
	char w[200];
	assert_int_equal(iot_vote(&t, 7, 2, false), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_close(&t);
	meta_path(path, sizeof(path));
	int fd = open(path, O_RDWR);
	assert_int_equal(pread(fd, two, sizeof(two), 0), (ssize_t)sizeof(two));
	assert_int_equal(lcr_meta_recover(two, sizeof(two), 0, &st, &seq, w, sizeof(w)), 0);
	assert_int_equal(st.vote.lid.term, 7);
	/* The next write, intact, with a vote term of 2^62. */
	st.vote.lid.term = LCR_NUMBER_MAX;
	seq++;
	lcr_meta_encode(two + (seq & 1) * LCR_META_SLOT, 0, seq, &st);
	assert_int_equal(pwrite(fd, two, sizeof(two), 0), (ssize_t)sizeof(two));
	close(fd);
	expect_open_fails(path);
	assert_non_null(strstr(t.why, "out of range"));
}

static void leader_down_at_end(struct lcr_rec_hdr *r, uint32_t i)
{
	if (i == 9)
		r->term = 1; /* the batch's other records are term 2 */
}

static void index_skips_at_end(struct lcr_rec_hdr *r, uint32_t i)
{
	if (i == 9)
		r->index++;
}

static void term_up(struct lcr_rec_hdr *r, uint32_t i)
{
	(void)i;
	r->term = 3;
}

static void test_recover_leader_going_back_is_corruption(void **state)
{
	(void)state;
	three_batches();
	/* Within the last batch: intact, so not a torn write to cut. */
	patch_records(2, leader_down_at_end);
	expect_open_fails("seg-0000000000000001.log");
	assert_non_null(strstr(t.why, "leader"));
	assert_non_null(strstr(t.why, "offset"));
	/* Across batches: the second now ends at term 3, the third starts at 2. */
	iot_fini(&t);
	iot_init(&t, "recover");
	assert_int_equal(iot_open(&t), 0);
	three_batches();
	patch_records(1, term_up);
	expect_open_fails("seg-0000000000000001.log");
	assert_non_null(strstr(t.why, "leader"));
	assert_non_null(strstr(t.why, "offset"));
}

static void test_recover_index_not_following_is_corruption(void **state)
{
	(void)state;
	three_batches();
	patch_records(2, index_skips_at_end);
	expect_open_fails("seg-0000000000000001.log");
	assert_non_null(strstr(t.why, "index"));
	assert_non_null(strstr(t.why, "offset"));
}

/* Overwrite `len` bytes at byte `at` of the header of `n` bytes at `off`, fixing its CRC. */
static void patch_hdr(const char *path, uint64_t off, size_t n, size_t at, const void *bytes,
		      size_t len)
{
	uint8_t h[128];
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0 && n <= sizeof(h) && at + len <= n && at >= 8);
	assert_int_equal(pread(fd, h, n, (off_t)off), (ssize_t)n);
	memcpy(h + at, bytes, len);
	uint32_t crc = lcr_crc32c(0, h + 8, n - 8);
	memcpy(h + 4, &crc, sizeof(crc));
	assert_int_equal(pwrite(fd, h, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void read_at(const char *path, uint64_t off, void *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void write_at(const char *path, uint64_t off, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
}

/* Fields this build writes as zeros, by byte offset in their header and size. */
struct zero_field {
	size_t at;
	size_t len;
	const char *says; /* what the refusal names */
};

/* A flag or reserved byte written as this build never does: refused, by offset. */
static void expect_fields_refused(const char *path, uint64_t off, size_t n,
				  const struct zero_field *z, size_t nz, const char *names)
{
	static const uint8_t ones[8] = { 1, 0, 0, 0, 0, 0, 0, 0x80 };
	uint8_t saved[128];
	char at[64];

	read_at(path, off, saved, n);
	for (size_t i = 0; i < nz; i++) {
		patch_hdr(path, off, n, z[i].at, ones + 8 - z[i].len, z[i].len);
		expect_open_fails(names);
		assert_non_null(strstr(t.why, z[i].says));
		snprintf(at, sizeof(at), "offset %llu", (unsigned long long)(off + z[i].at));
		assert_non_null(strstr(t.why, at));
		write_at(path, off, saved, n);
	}
}

static void test_recover_segment_flags_or_reserved_refused(void **state)
{
	(void)state;
	static const struct zero_field z[] = { { 10, 2, "flags" },
					       { 40, 4, "batch alignment" },
					       { 44, 4, "reserved" } };
	static uint8_t saved[LCR_BLOCK];
	const uint8_t one = 1;
	char path[512];
	three_batches();
	iot_seg_path(&t, 1, path, sizeof(path));
	expect_fields_refused(path, 0, sizeof(struct lcr_seg_hdr), z, 3,
			      "seg-0000000000000001.log");
	/* The rest of the header block is zero too (outside the CRC). */
	read_at(path, 0, saved, sizeof(saved));
	write_at(path, 2000, &one, 1);
	expect_open_fails("seg-0000000000000001.log");
	assert_non_null(strstr(t.why, "offset 2000"));
	write_at(path, 0, saved, sizeof(saved));
	expect_open_last(30);
}

static void test_recover_batch_flags_or_reserved_refused(void **state)
{
	(void)state;
	/* Bytes 40..47 are the segment's nonce: checked in
	 * test_recover_recycled_segment_never_replayed. */
	static const struct zero_field z[] = { { 10, 2, "flags" },
					       { 48, 8, "previous log id" },
					       { 56, 4, "previous log id" },
					       { 60, 4, "reserved" } };
	struct found f;
	char path[512];
	three_batches();
	find_batches(1, &f);
	assert_int_equal(f.n, 3);
	iot_seg_path(&t, 1, path, sizeof(path));
	/* A middle batch, and the last one: intact, so not cut as torn. */
	for (int k = 1; k < 3; k++)
		expect_fields_refused(path, f.off[k], sizeof(struct lcr_batch_hdr), z, 4,
				      "seg-0000000000000001.log");
	expect_open_last(30);
}

static void test_recover_meta_flags_or_reserved_refused(void **state)
{
	(void)state;
	static const struct zero_field z[] = { { 10, 2, "flags" },
					       { 52, 4, "reserved" },
					       { 76, 4, "reserved" } };
	static uint8_t two[2 * LCR_META_SLOT];
	struct lcr_meta_state st;
	uint64_t seq;
	char path[512], w[200];
	const uint8_t one = 1;
	assert_int_equal(iot_vote(&t, 7, 2, false), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_close(&t);
	meta_path(path, sizeof(path));
	read_at(path, 0, two, sizeof(two));
	assert_int_equal(lcr_meta_recover(two, sizeof(two), 0, &st, &seq, w, sizeof(w)), 0);
	uint64_t newest = (seq & 1) * LCR_META_SLOT;
	expect_fields_refused(path, newest, 88, z, 3, path);
	/* Past the fields the slot is zeros (outside the CRC): not a torn write,
	 * which leaves zeros there whichever sectors it reached. Taking the
	 * other slot would bring back an older vote. */
	write_at(path, newest + 200, &one, 1);
	expect_open_fails(path);
	char at[64];
	snprintf(at, sizeof(at), "offset %llu", (unsigned long long)(newest + 200));
	assert_non_null(strstr(t.why, at));
	write_at(path, 0, two, sizeof(two));
	assert_int_equal(iot_open(&t), 0);
	struct lcr_log_recovery rs;
	lcr_log_recovered(t.log, &rs);
	assert_int_equal(rs.vote.lid.term, 7);
}

/*
 * An intact slot of another group (a meta file from another group's folder)
 * is refused, whichever slot holds it: not a torn write of ours, and taking
 * the other slot would bring back an older vote (it was taken for damaged).
 */
static void test_recover_meta_slot_of_another_group_refused(void **state)
{
	(void)state;
	static uint8_t two[2 * LCR_META_SLOT];
	const uint32_t other = 2;
	char path[512];
	assert_int_equal(iot_vote(&t, 7, 2, false), 0);
	assert_int_equal(iot_sync(&t), 0);
	assert_int_equal(iot_vote(&t, 8, 3, false), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_close(&t);
	meta_path(path, sizeof(path));
	read_at(path, 0, two, sizeof(two));
	for (uint64_t off = 0; off < 2 * LCR_META_SLOT; off += LCR_META_SLOT) {
		patch_hdr(path, off, 88, 12, &other, sizeof(other));
		expect_open_fails(path);
		assert_non_null(strstr(t.why, "a slot of group 2, this is group 0"));
		char at[64];
		snprintf(at, sizeof(at), "meta slot at offset %llu", (unsigned long long)off);
		assert_non_null(strstr(t.why, at));
		write_at(path, 0, two, sizeof(two));
	}
	assert_int_equal(iot_open(&t), 0);
	struct lcr_log_recovery rs;
	lcr_log_recovered(t.log, &rs);
	assert_int_equal(rs.vote.lid.term, 8);
}

/*
 * The meta file's creation cut short by a file size limit: the write stops
 * at 4,096 of 8,192 bytes. The error is the limit's (EFBIG, named with the
 * file and how much was written), not whatever errno an earlier call left;
 * once the limit is lifted the cut-short file is created anew.
 */
static void test_recover_meta_creation_short_write(void **state)
{
	(void)state;
	char path[512];
	struct rlimit was, small;
	iot_close(&t);
	for (uint64_t no = 1; no < 8; no++) {
		iot_seg_path(&t, no, path, sizeof(path));
		unlink(path);
	}
	meta_path(path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
	small = was;
	small.rlim_cur = LCR_META_SLOT;
	void (*sig)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	int rc = iot_open(&t);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
	signal(SIGXFSZ, sig);
	print_message("refused: %s\n", t.why);
	assert_int_equal(rc, -EFBIG);
	assert_non_null(strstr(t.why, path));
	assert_non_null(strstr(t.why, strerror(EFBIG)));
	assert_non_null(strstr(t.why, "4096 of 8192 bytes written"));
	assert_int_equal(iot_open(&t), 0);
	struct lcr_log_recovery rs;
	lcr_log_recovered(t.log, &rs);
	assert_int_equal(rs.vote.lid.term, 0);
}

static void test_meta_slot_codec(void **state)
{
	(void)state;
	static uint8_t two[2 * LCR_META_SLOT];
	struct lcr_meta_state st, got;
	uint64_t seq;
	char why[200];
	memset(&st, 0, sizeof(st));
	st.vote.lid.term = 7;
	st.vote.lid.node = 3;
	st.vote.committed = true;
	st.purged.index = 99;
	memset(two, 0, sizeof(two));
	assert_int_equal(lcr_meta_recover(two, sizeof(two), 5, &got, &seq, why, sizeof(why)), 0);
	assert_int_equal(seq, 0); /* fresh */
	lcr_meta_encode(two + LCR_META_SLOT, 5, 1, &st);
	assert_int_equal(lcr_meta_recover(two, sizeof(two), 5, &got, &seq, why, sizeof(why)), 0);
	assert_int_equal(seq, 1);
	assert_int_equal(got.vote.lid.term, 7);
	assert_true(got.vote.committed);
	assert_int_equal(got.purged.index, 99);
	/* Wrong group: a file from another group is not ours, and not a torn
	 * write of ours either: refused, not read as fresh. */
	assert_int_equal(lcr_meta_recover(two, sizeof(two), 6, &got, &seq, why, sizeof(why)),
			 -EBADMSG);
	assert_non_null(strstr(why, "a slot of group 5, this is group 6"));
	/* A slot in the wrong place. */
	memcpy(two, two + LCR_META_SLOT, LCR_META_SLOT);
	memset(two + LCR_META_SLOT, 0, LCR_META_SLOT);
	assert_int_equal(lcr_meta_recover(two, sizeof(two), 5, &got, &seq, why, sizeof(why)),
			 -EBADMSG);
	/* Wrong size. */
	assert_int_equal(lcr_meta_recover(two, 100, 5, &got, &seq, why, sizeof(why)), -EBADMSG);
}

/* Reopen the fresh log with batches aligned to `bytes`; false where the device refuses it. */
static bool reopen_aligned(uint32_t bytes)
{
	char path[512];
	iot_close(&t);
	/* Segment 1 and the spare after it hold nothing: the next open makes
	 * segment 1 anew, with this alignment. */
	for (uint64_t no = 1; no <= 2; no++) {
		iot_seg_path(&t, no, path, sizeof(path));
		unlink(path);
	}
	t.opts.block_bytes = bytes;
	int rc = iot_open(&t);
	if (rc < 0)
		print_message("skipped: block_bytes %u: %s\n", bytes, t.why);
	return rc == 0;
}

/* Set segment `seg` and its batches back to format version 2, which is all that differs. */
static void to_version_2(uint64_t seg)
{
	static const uint8_t zero4[4];
	char path[512];
	struct found f;
	find_batches(seg, &f);
	iot_seg_path(&t, seg, path, sizeof(path));
	patch_hdr(path, 0, sizeof(struct lcr_seg_hdr), 40, zero4, 4); /* batch_align */
	set_version(path, 0, sizeof(struct lcr_seg_hdr), 2);
	for (int k = 0; k < f.n; k++)
		set_version(path, f.off[k], sizeof(struct lcr_batch_hdr), 2);
}

/*
 * A log written before batch_align (version 2, 4 KiB batches) opens whole;
 * the next batch starts a segment of version 3 and the batch alignment of
 * this device, and both read back after a reopen.
 */
static void test_recover_version_2_log_opens(void **state)
{
	(void)state;
	assert_true(reopen_aligned(4096));
	three_batches();
	assert_int_equal(seg_align(1), 4096);
	to_version_2(1);
	t.opts.block_bytes = 0;
	int rc = iot_open(&t);
	if (rc < 0)
		fail_msg("open failed (%d): %s", rc, t.why);
	assert_int_equal(lcr_log_last(t.log).index, 30);
	assert_int_equal(iot_check_disk(&t, 1, 20, 1, 1), 0);
	assert_int_equal(iot_check_disk(&t, 21, 30, 2, 1), 0);
	assert_int_equal(iot_append(&t, 31, 5, 3, 2, 300), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_close(&t);
	assert_int_equal(iot_open(&t), 0);
	assert_int_equal(lcr_log_last(t.log).index, 35);
	assert_int_equal(iot_check_disk(&t, 1, 20, 1, 1), 0);
	assert_int_equal(iot_check_disk(&t, 21, 30, 2, 1), 0);
	assert_int_equal(iot_check_disk(&t, 31, 35, 3, 2), 0);
	/* Segment 1 took no batch of version 3; a newer segment took it, first. */
	struct found f;
	find_batches(1, &f);
	assert_int_equal(f.n, 3);
	int with = 0;
	for (uint64_t no = 2; no <= 4; no++) {
		char path[512];
		iot_seg_path(&t, no, path, sizeof(path));
		if (access(path, F_OK) != 0)
			continue;
		find_batches(no, &f);
		if (f.n == 0)
			continue;
		assert_int_equal(f.n, 1);
		assert_int_equal(f.off[0], LCR_BLOCK);
		with++;
	}
	assert_int_equal(with, 1);
}

/*
 * 512-byte batches: three small ones share the first 4 KiB block after the
 * header. A torn last write (its middle sector never arrived) is cut; the
 * two acknowledged batches in the same block are untouched, since no write
 * covered their sectors.
 */
static void test_recover_torn_512_tail_beside_acked_batches(void **state)
{
	(void)state;
	struct found f;
	static uint8_t zero[512];
	if (!reopen_aligned(512))
		return;
	/* 1..5 and 6..10 take two sectors each, 11..20 three. */
	for (uint64_t first = 1; first <= 11; first += 5) {
		assert_int_equal(iot_append(&t, first, first < 11 ? 5 : 10, 1, 1, 100), 0);
		assert_int_equal(iot_sync(&t), 0);
	}
	iot_close(&t);
	find_batches(1, &f);
	assert_int_equal(f.n, 3);
	assert_true(f.off[2] + f.span[2] <= 2 * LCR_BLOCK);
	assert_true(f.off[2] % LCR_BLOCK != 0 && f.span[2] >= 3 * 512);
	poke(1, f.off[2] + 512, zero, sizeof(zero));
	expect_open_last(10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_recover_last_batch_header_never_written, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_version_2_log_opens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_torn_512_tail_beside_acked_batches,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_torn_header_of_last_batch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_torn_record_in_last_batch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_last_batch_missing_a_middle_block,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_garbage_after_last_batch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_damaged_middle_batch_is_corruption,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_damaged_first_header_is_corruption,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_recover_orphans_beyond_writes_in_flight_are_corruption, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_recover_orphan_after_missing_batch_is_erased,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_orphan_after_torn_batch_is_erased,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_damaged_segment_header, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_segment_cut_to_odd_length_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_meta_slot_of_another_group_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_spare_stays_spare_across_restarts,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_missing_middle_segment, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_torn_segment_followed_by_data, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_unfinished_spare_segment_removed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_meta_torn_newest_slot, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_meta_torn_creation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_meta_zeroed_beside_segments_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_meta_emptied_beside_segments_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_meta_emptied_without_segments_is_fresh,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_segment_of_another_version_named,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_batch_of_another_version_named, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_meta_of_another_version_named, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_record_term_out_of_range_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_meta_term_out_of_range_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_leader_going_back_is_corruption, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_index_not_following_is_corruption,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_segment_flags_or_reserved_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_batch_flags_or_reserved_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_meta_flags_or_reserved_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_meta_creation_short_write, setup,
						teardown),
		cmocka_unit_test(test_meta_slot_codec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
