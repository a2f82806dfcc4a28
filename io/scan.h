/* SPDX-License-Identifier: MIT */
/*
 * Scanning a segment image during recovery: pure functions over bytes, so the
 * fuzz target (tests/fuzz/fuzz_recover.c) can feed them anything.
 *
 * lcr_seg_scan() walks the batches of one segment. It checks what a batch
 * proves on its own, in two kinds. A checksum that fails (header or record),
 * or a batch that runs past the end of the file, means the batch was not
 * (all) written: damaged. Intact bytes with values this build never writes
 * mean corruption, refused with the offset and the reason: another format
 * version, a sequence number, index or term at or above LCR_NUMBER_MAX,
 * indexes that do not follow, leaders going down within the batch, an unknown
 * type, a flag or reserved byte that is not zero (in a batch header or a
 * record), lengths that do not add up. Each intact batch goes to
 * `accept`, which checks it against the log so far (sequence numbers
 * increase, no gap before first_index, leaders never go down) and applies
 * it; an intact batch it refuses is corruption. The first damaged batch ends
 * the valid data; the scan then decides between a torn tail and corruption.
 * Valid batch headers of this segment after that point are orphans: batches
 * written while the damaged (or missing) one was still in flight (up to
 * LCR_LOG_WRITES_MAX writes are). At most LCR_LOG_WRITES_MAX - 1 of them,
 * in increasing sequence order, are reported (orphans, their sequence
 * numbers, where the last ends) and cut with the torn tail; recovery checks
 * their sequence numbers against the log's (docs/storage-format.md, "Writes
 * in flight"). More is corruption: data once complete, now damaged.
 *
 * Recycled segments: each segment header carries a random nonce and each
 * batch the nonce of the segment it was written into. A valid batch header
 * with another nonce was written in the file's earlier life (a recycled
 * segment keeps its old bytes): to the scan it is the same as zeros, the end
 * of this segment's data, and it never counts as "a valid batch follows".
 * In a segment whose header says LCR_SEG_RECYCLED, so is any block without
 * a batch's magic where the next batch would start (the middle of an old
 * batch); only a block with the magic there is a torn batch.
 *
 * Batches start at multiples of the segment's batch alignment (its header:
 * 4 KiB in a version 2 segment, 512 to 4096 bytes in version 3), and every
 * step of the scan (the next batch, zeros, "a valid batch follows", the torn
 * length) goes by that unit. A batch must carry its segment's version.
 *
 * Nothing here asserts on the bytes: the fuzz target feeds it anything.
 */
#ifndef LCR_SCAN_H
#define LCR_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log_format.h"

/* What a valid segment header says about the batches that follow it. */
struct lcr_seg_info {
	uint64_t nonce;
	uint32_t version; /* LCR_SEG_VERSION or LCR_SEG_VERSION_4K */
	uint32_t align;	  /* batch alignment in bytes: a power of two, 512 to 4096 */
};

struct lcr_scan_batch {
	const struct lcr_batch_hdr *hdr;
	const uint8_t *records; /* hdr->bytes bytes of records */
	uint64_t file_off;
};

/* Return 0 to accept and apply the batch, or -EBADMSG with the reason in
 * `why` (may be left empty): an intact batch that does not continue the log
 * is corruption (the scan fails, naming the batch and its offset). */
typedef int (*lcr_scan_accept_fn)(void *ctx, const struct lcr_scan_batch *b, char *why,
				  size_t why_len);

enum lcr_scan_end {
	LCR_SCAN_CLEAN = 1, /* the valid data ends at zeros (or the segment end) */
	LCR_SCAN_TORN = 2,  /* it ends at a damaged last batch: cut it */
};

struct lcr_scan_result {
	uint64_t end;	   /* offset after the last valid batch */
	uint32_t how;	   /* enum lcr_scan_end */
	uint64_t torn_len; /* TORN: bytes from `end` that are not zero */
	uint64_t batches;
	uint64_t records;
	/* Valid batches of this segment after the end (TORN, torn_len covers them). */
	uint32_t orphans;
	uint64_t orphan_seq_min, orphan_seq_max; /* their sequence numbers */
	uint64_t orphan_end;			 /* offset after the last one */
};

/*
 * Validate a segment header block of a file of `len` bytes: magic, version
 * (2 or 3; another one is named: "format version N, this build reads 2 and
 * 3"), CRC, flags, batch alignment (version 3: a power of two, 512 to 4096;
 * version 2: zero), reserved bytes and the rest of the block zero (the
 * offset named), group, number, and a size that holds the file and is at
 * most LCR_SEGMENT_BYTES_MAX. Returns 0 with what the header says in *info,
 * or -EBADMSG (why set).
 */
int lcr_seg_check_header(const void *img, size_t len, uint32_t group, uint64_t seg_no,
			 struct lcr_seg_info *info, char *why, size_t why_len);

/*
 * Scan the batches of one segment image (header block included) of `len`
 * bytes, whose header says `info`. Returns 0 with `res` filled, or
 * -EBADMSG with `why` naming the offset of the damage.
 */
int lcr_seg_scan(const void *img, size_t len, uint32_t group, const struct lcr_seg_info *info,
		 lcr_scan_accept_fn accept, void *ctx, struct lcr_scan_result *res, char *why,
		 size_t why_len);

/*
 * Whether the segment's first batch (at offset 4096) is an intact batch of
 * this segment with LCR_BATCH_RESET: the log restarts there, and every older
 * segment is dead (recovery starts at the newest such segment).
 */
bool lcr_seg_reset_first(const void *img, size_t len, uint32_t group,
			 const struct lcr_seg_info *info);

/* True when a valid batch header (magic, a version this build reads, group,
 * CRC) starts at img+off. */
bool lcr_batch_hdr_valid(const void *img, size_t len, uint64_t off, uint32_t group);

/* Check one record at p (within `avail` bytes): its CRC and its values, as
 * the scan does. Returns its size or -EBADMSG. */
int lcr_rec_check(const uint8_t *p, size_t avail, uint64_t index);

#endif /* LCR_SCAN_H */
