/* SPDX-License-Identifier: MIT */
/*
 * On-disk formats of the log segments, shared by the log, its recovery and the
 * fuzz target. Little-endian, fixed sizes, documented in
 * docs/storage-format.md. Every struct is checked by a static assert.
 */
#ifndef LCR_LOG_FORMAT_H
#define LCR_LOG_FORMAT_H

#include <stdint.h>

#include "types.h" /* LCR_ENTRY_MAX, the largest payload of one record */

#define LCR_BLOCK	4096u
#define LCR_SEG_MAGIC	0x5352434cu /* "LCRS" */
#define LCR_BATCH_MAGIC 0x4252434cu /* "LCRB" */

/*
 * Segments and their batches: version 3 is written, version 2 still read.
 * A version 2 segment aligns its batches to 4 KiB; a version 3 segment to
 * the power of two in its header (batch_align, 512 to 4096: the device's
 * logical block size, see docs/storage-format.md, "Batch alignment"). A
 * batch carries the version of the segment it is in.
 */
#define LCR_SEG_VERSION	    3
#define LCR_SEG_VERSION_4K  2
#define LCR_BATCH_ALIGN_MIN 512u
#define LCR_BATCH_ALIGN_MAX LCR_BLOCK

/*
 * Batch writes one log keeps in flight at most (lcr_log_opts.writes_max):
 * it bounds what a crash can leave after the end of the log, so recovery
 * knows how many intact batches after a damaged one are the leftovers of
 * writes in flight (orphans, erased) and how many are corruption
 * (docs/storage-format.md, "Writes in flight").
 */
#define LCR_LOG_WRITES_MAX 4u

/* Segment header flags. */
#define LCR_SEG_RECYCLED 0x0001u /* made of a purged file: bytes of its earlier life follow */

/* Batch header flags. */
#define LCR_BATCH_RESET 0x0001u /* the log restarts after prev (see struct lcr_batch_hdr) */

/* First bytes of a segment's header block (the rest of the block is zero). */
struct lcr_seg_hdr {
	uint32_t magic;
	uint32_t crc; /* CRC32C of bytes [8, 48) */
	uint16_t version;
	uint16_t flags;
	uint32_t group;
	uint64_t seg_no;	/* matches the file name */
	uint64_t segment_bytes; /* the file's preallocated size */
	/* Random, drawn each time the file is (re)made a segment: every batch
	 * written into it carries it, so batches left from a recycled file's
	 * earlier life are told apart from its own. */
	uint64_t nonce;
	/* Version 3: batches start at multiples of it and are padded to it (a
	 * power of two, 512 to 4096). Version 2: zero, and batches are 4 KiB
	 * aligned. */
	uint32_t batch_align;
	uint32_t reserved;
};

/* A batch header; a batch starts at a multiple of its segment's batch_align. */
struct lcr_batch_hdr {
	uint32_t magic;
	uint32_t crc; /* CRC32C of bytes [8, 64) */
	uint16_t version;
	uint16_t flags;
	uint32_t group;
	uint64_t batch_seq;   /* strictly increasing within a log */
	uint64_t first_index; /* the log after first_index - 1 is replaced by this batch */
	uint32_t count;	      /* records that follow */
	uint32_t bytes;	      /* record bytes that follow the header */
	uint64_t seg_nonce;   /* the nonce of the segment it was written into */
	/*
	 * With LCR_BATCH_RESET: the log id before first_index (prev_term,
	 * prev_node, index first_index - 1). The batch then replaces the whole
	 * log: every entry before it is gone, the log restarts empty after that
	 * id (a snapshot installed without the log) and its records follow.
	 * Such a batch is always the first of its segment. Zero otherwise.
	 */
	uint64_t prev_term;
	uint32_t prev_node;
	uint32_t reserved;
};

/* A record: this header, then `len` payload bytes, padded to 8 bytes. */
struct lcr_rec_hdr {
	uint32_t crc; /* CRC32C of bytes [4, 32) and the payload */
	uint32_t len;
	uint64_t index;
	uint64_t term;
	uint32_t node;
	uint16_t type;
	uint16_t flags;
};

_Static_assert(sizeof(struct lcr_seg_hdr) == 48, "segment header layout");
_Static_assert(sizeof(struct lcr_batch_hdr) == 64, "batch header layout");
_Static_assert(sizeof(struct lcr_rec_hdr) == 32, "record header layout");
_Static_assert(LCR_BATCH_ALIGN_MIN >= sizeof(struct lcr_batch_hdr), "a batch header fits a unit");
_Static_assert(LCR_BLOCK % LCR_BATCH_ALIGN_MAX == 0, "segment sizes are whole units");

static inline uint64_t lcr_align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static inline uint32_t lcr_rec_size(uint32_t len)
{
	return (uint32_t)(sizeof(struct lcr_rec_hdr) + lcr_align_up(len, 8));
}

/* Largest segment file (segment_bytes); bounds the tables recovery builds for one. */
#define LCR_SEGMENT_BYTES_MAX (4ull << 30)

#endif /* LCR_LOG_FORMAT_H */
