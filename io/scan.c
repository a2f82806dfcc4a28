/* SPDX-License-Identifier: MIT */
/* Segment scanning for recovery (see scan.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "lcr_assert.h"
#include "scan.h"
#include "types.h"

/* What one batch is, judged on its own bytes. */
enum batch_is {
	BATCH_OK = 1,
	BATCH_DAMAGED, /* not (all) written: a checksum fails, or it runs past the file */
	BATCH_CORRUPT, /* intact, but nothing this build writes: why says what */
	BATCH_STALE,   /* intact, of another segment nonce: left from a recycled file's past */
};

static bool seg_version_read(uint32_t v)
{
	return v == LCR_SEG_VERSION || v == LCR_SEG_VERSION_4K;
}

int lcr_seg_check_header(const void *img, size_t len, uint32_t group, uint64_t seg_no,
			 struct lcr_seg_info *info, char *why, size_t why_len)
{
	struct lcr_seg_hdr h;

	LCR_ASSERT(img != NULL || len == 0);
	if (len < LCR_BLOCK) {
		snprintf(why, why_len, "segment is %zu bytes, shorter than its header block", len);
		return -EBADMSG;
	}
	memcpy(&h, img, sizeof(h));
	if (h.magic == LCR_SEG_MAGIC && !seg_version_read(h.version)) {
		snprintf(why, why_len,
			 "segment header: format version %u, this build reads %u and %u", h.version,
			 LCR_SEG_VERSION_4K, LCR_SEG_VERSION);
		return -EBADMSG;
	}
	if (h.magic != LCR_SEG_MAGIC ||
	    h.crc != lcr_crc32c(0, (const char *)img + 8, sizeof(h) - 8)) {
		snprintf(why, why_len, "segment header at offset 0 is invalid");
		return -EBADMSG;
	}
	/* Intact, so written so: this build writes no flags and zeros in the
	 * reserved words and the rest of the block, and a value it does not
	 * know is not one to guess at. */
	if (h.flags & ~LCR_SEG_RECYCLED) {
		snprintf(
			why, why_len,
			"segment header: flags 0x%04x at offset %zu, this build writes only 0x%04x",
			h.flags, offsetof(struct lcr_seg_hdr, flags), LCR_SEG_RECYCLED);
		return -EBADMSG;
	}
	/* Version 2 had eight reserved bytes where batch_align and reserved are. */
	bool v2 = h.version == LCR_SEG_VERSION_4K;
	if (h.reserved != 0 || (v2 && h.batch_align != 0)) {
		snprintf(why, why_len, "segment header: reserved bytes at offset %zu are not zero",
			 v2 ? offsetof(struct lcr_seg_hdr, batch_align)
			    : offsetof(struct lcr_seg_hdr, reserved));
		return -EBADMSG;
	}
	uint32_t align = v2 ? LCR_BLOCK : h.batch_align;
	if (align < LCR_BATCH_ALIGN_MIN || align > LCR_BATCH_ALIGN_MAX || (align & (align - 1))) {
		snprintf(why, why_len,
			 "segment header: batch alignment %u at offset %zu, not a power of two "
			 "from %u to %u",
			 align, offsetof(struct lcr_seg_hdr, batch_align), LCR_BATCH_ALIGN_MIN,
			 LCR_BATCH_ALIGN_MAX);
		return -EBADMSG;
	}
	for (size_t i = sizeof(h); i < LCR_BLOCK; i++)
		if (((const uint8_t *)img)[i] != 0) {
			snprintf(why, why_len,
				 "segment header block: byte at offset %zu is not zero", i);
			return -EBADMSG;
		}
	if (h.group != group || h.seg_no != seg_no) {
		snprintf(why, why_len,
			 "segment header says group %u segment %llu, expected %u/%llu", h.group,
			 (unsigned long long)h.seg_no, group, (unsigned long long)seg_no);
		return -EBADMSG;
	}
	/* Created at that size and never grown past it; the size bounds every
	 * table recovery builds for the segment. */
	if (h.segment_bytes % LCR_BLOCK || h.segment_bytes > LCR_SEGMENT_BYTES_MAX ||
	    len > h.segment_bytes) {
		snprintf(why, why_len,
			 "segment header says %llu bytes (a multiple of %u, at most %llu), but the "
			 "file is %zu bytes",
			 (unsigned long long)h.segment_bytes, LCR_BLOCK,
			 (unsigned long long)LCR_SEGMENT_BYTES_MAX, len);
		return -EBADMSG;
	}
	/* A segment is made whole (its header's size, a multiple of the
	 * block) and never cut; a file cut outside the log to another length
	 * is not one to guess at. A cut at a block boundary reads as a log
	 * that ends there (a torn or missing tail). */
	if (len % LCR_BLOCK) {
		snprintf(why, why_len,
			 "the file is %zu bytes, not a multiple of %u: cut short outside the log "
			 "(its header says %llu bytes)",
			 len, LCR_BLOCK, (unsigned long long)h.segment_bytes);
		return -EBADMSG;
	}
	info->nonce = h.nonce;
	info->version = h.version;
	info->align = align;
	return 0;
}

bool lcr_batch_hdr_valid(const void *img, size_t len, uint64_t off, uint32_t group)
{
	struct lcr_batch_hdr h;

	if (off > len || len - off < sizeof(h))
		return false;
	memcpy(&h, (const char *)img + off, sizeof(h));
	return h.magic == LCR_BATCH_MAGIC && seg_version_read(h.version) && h.group == group &&
	       h.crc == lcr_crc32c(0, (const char *)img + off + 8, sizeof(h) - 8);
}

/* The record's checksum holds (and its payload is within `avail`); its values unchecked. */
static bool rec_intact(const uint8_t *p, size_t avail)
{
	struct lcr_rec_hdr r;

	if (avail < sizeof(r))
		return false;
	memcpy(&r, p, sizeof(r));
	/* 64 bits: a length near 4 GiB must not wrap around the check. */
	if (sizeof(r) + lcr_align_up((uint64_t)r.len, 8) > avail)
		return false;
	uint32_t crc = lcr_crc32c(0, p + 4, sizeof(r) - 4);
	return lcr_crc32c(crc, p + sizeof(r), r.len) == r.crc;
}

/* What is wrong with an intact record's values, or NULL (then it is record `index`). */
static const char *rec_wrong(const struct lcr_rec_hdr *r, uint64_t index)
{
	if (r->len > LCR_ENTRY_MAX)
		return "payload longer than an entry may be";
	if (r->index != index)
		return "index does not follow the one before";
	if (r->term >= LCR_NUMBER_MAX)
		return "leader term out of range";
	if (r->type < LCR_ENTRY_BLANK || r->type > LCR_ENTRY_MEMBERSHIP)
		return "unknown entry type";
	if (r->flags != 0)
		return "unknown flags";
	return NULL;
}

int lcr_rec_check(const uint8_t *p, size_t avail, uint64_t index)
{
	struct lcr_rec_hdr r;

	if (!rec_intact(p, avail))
		return -EBADMSG;
	memcpy(&r, p, sizeof(r));
	if (rec_wrong(&r, index))
		return -EBADMSG;
	return (int)lcr_rec_size(r.len);
}

__attribute__((format(printf, 3, 4))) static enum batch_is corrupt(char *why, size_t why_len,
								   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return BATCH_CORRUPT;
}

/*
 * Everything a batch proves on its own. A checksum that fails means the
 * batch was not (all) written: damaged. Intact bytes with values this build
 * never writes (another version, numbers out of range, records out of order)
 * cannot come from a torn write: corrupt, with the reason in `why`.
 */
static enum batch_is batch_intrinsic(const uint8_t *img, size_t len, uint64_t off, uint32_t group,
				     const struct lcr_seg_info *si, struct lcr_batch_hdr *h,
				     char *why, size_t why_len)
{
	memcpy(h, img + off, sizeof(*h));
	if (h->magic == LCR_BATCH_MAGIC && !seg_version_read(h->version))
		return corrupt(
			why, why_len,
			"batch at offset %llu: format version %u, this build reads %u and %u",
			(unsigned long long)off, h->version, LCR_SEG_VERSION_4K, LCR_SEG_VERSION);
	if (!lcr_batch_hdr_valid(img, len, off, group))
		return BATCH_DAMAGED;
	/* Written into this file before it was recycled: not this segment's. */
	if (h->seg_nonce != si->nonce)
		return BATCH_STALE;
	/* Intact and of this segment: written by a build of its version. */
	if (h->version != si->version)
		return corrupt(why, why_len,
			       "batch at offset %llu: format version %u in a segment of version %u",
			       (unsigned long long)off, h->version, si->version);
	if (h->flags & ~LCR_BATCH_RESET)
		return corrupt(
			why, why_len,
			"batch at offset %llu: flags 0x%04x at offset %llu, this build writes "
			"only 0x%04x",
			(unsigned long long)off, h->flags,
			(unsigned long long)(off + offsetof(struct lcr_batch_hdr, flags)),
			LCR_BATCH_RESET);
	if (h->reserved != 0)
		return corrupt(
			why, why_len,
			"batch at offset %llu: reserved bytes at offset %llu are not zero",
			(unsigned long long)off,
			(unsigned long long)(off + offsetof(struct lcr_batch_hdr, reserved)));
	if (!(h->flags & LCR_BATCH_RESET) && (h->prev_term != 0 || h->prev_node != 0))
		return corrupt(
			why, why_len,
			"batch at offset %llu: a previous log id at offset %llu without "
			"the reset flag",
			(unsigned long long)off,
			(unsigned long long)(off + (h->prev_term ? offsetof(struct lcr_batch_hdr,
									    prev_term)
								 : offsetof(struct lcr_batch_hdr,
									    prev_node))));
	if (h->prev_term >= LCR_NUMBER_MAX)
		return corrupt(why, why_len,
			       "batch at offset %llu: reset to term %llu, out of range",
			       (unsigned long long)off, (unsigned long long)h->prev_term);
	if (h->bytes > len - off - sizeof(*h))
		return BATCH_DAMAGED; /* the file ends inside it */
	if (h->batch_seq == 0 || h->batch_seq >= LCR_NUMBER_MAX || h->first_index == 0 ||
	    h->first_index >= LCR_NUMBER_MAX || h->count >= LCR_NUMBER_MAX - h->first_index)
		return corrupt(why, why_len,
			       "batch at offset %llu: sequence %llu, first index %llu or count %u "
			       "out of range",
			       (unsigned long long)off, (unsigned long long)h->batch_seq,
			       (unsigned long long)h->first_index, h->count);
	if ((uint64_t)h->count * sizeof(struct lcr_rec_hdr) > h->bytes)
		return corrupt(why, why_len,
			       "batch at offset %llu: %u records cannot fit in %u bytes",
			       (unsigned long long)off, h->count, h->bytes);
	const uint8_t *p = img + off + sizeof(*h);
	size_t left = h->bytes;
	struct lcr_leader_id prev = { 0, 0 };
	for (uint32_t i = 0; i < h->count; i++) {
		struct lcr_rec_hdr r;
		uint64_t at = (uint64_t)(p - img);
		if (!rec_intact(p, left))
			return BATCH_DAMAGED;
		memcpy(&r, p, sizeof(r));
		const char *wrong = rec_wrong(&r, h->first_index + i);
		if (wrong)
			return corrupt(why, why_len,
				       "record at offset %llu (index %llu, term %llu): %s",
				       (unsigned long long)at, (unsigned long long)r.index,
				       (unsigned long long)r.term, wrong);
		struct lcr_leader_id lid = { r.term, r.node };
		if (i > 0 && lcr_leader_id_cmp(lid, prev) < 0)
			return corrupt(
				why, why_len,
				"record at offset %llu (index %llu): leader %llu/%u is below "
				"leader %llu/%u of the entry before",
				(unsigned long long)at, (unsigned long long)r.index,
				(unsigned long long)lid.term, lid.node,
				(unsigned long long)prev.term, prev.node);
		prev = lid;
		p += lcr_rec_size(r.len);
		left -= lcr_rec_size(r.len);
	}
	if (left != 0)
		return corrupt(why, why_len,
			       "batch at offset %llu: %zu bytes after its last record",
			       (unsigned long long)off, left);
	return BATCH_OK;
}

static bool unit_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A valid batch header of this segment (its nonce) at img+off. */
static bool batch_ours(const uint8_t *img, size_t len, uint64_t off, uint32_t group, uint64_t nonce)
{
	struct lcr_batch_hdr h;

	if (!lcr_batch_hdr_valid(img, len, off, group))
		return false;
	memcpy(&h, img + off, sizeof(h));
	return h.seg_nonce == nonce;
}

/* A valid batch header left from the file's earlier life at img+off. */
static bool batch_stale(const uint8_t *img, size_t len, uint64_t off, uint32_t group,
			uint64_t nonce)
{
	return lcr_batch_hdr_valid(img, len, off, group) &&
	       !batch_ours(img, len, off, group, nonce);
}

bool lcr_seg_reset_first(const void *image, size_t len, uint32_t group,
			 const struct lcr_seg_info *info)
{
	struct lcr_batch_hdr h;
	char w[192];

	len -= len % LCR_BLOCK;
	if (len < LCR_BLOCK + info->align)
		return false;
	return batch_intrinsic(image, len, LCR_BLOCK, group, info, &h, w, sizeof(w)) == BATCH_OK &&
	       (h.flags & LCR_BATCH_RESET);
}

int lcr_seg_scan(const void *image, size_t len, uint32_t group, const struct lcr_seg_info *info,
		 lcr_scan_accept_fn accept, void *ctx, struct lcr_scan_result *res, char *why,
		 size_t why_len)
{
	const uint8_t *img = image;
	uint64_t off = LCR_BLOCK, nonce = info->nonce;
	uint32_t unit = info->align;
	struct lcr_batch_hdr h;
	char w[192];

	LCR_ASSERT(img != NULL || len == 0);
	LCR_ASSERT(accept != NULL && res != NULL && why != NULL);
	/* lcr_seg_check_header said so. */
	LCR_ASSERT(unit >= LCR_BATCH_ALIGN_MIN && unit <= LCR_BATCH_ALIGN_MAX);
	LCR_ASSERT((unit & (unit - 1)) == 0);
	memset(res, 0, sizeof(*res));
	len -= len % LCR_BLOCK; /* a partial last block holds no batch start */
	while (off < len) {
		w[0] = 0;
		enum batch_is is = batch_intrinsic(img, len, off, group, info, &h, w, sizeof(w));
		if (is == BATCH_CORRUPT) {
			snprintf(why, why_len, "%s", w);
			return -EBADMSG;
		}
		if (is == BATCH_DAMAGED || is == BATCH_STALE)
			break;
		struct lcr_scan_batch b = { (const struct lcr_batch_hdr *)(img + off),
					    img + off + sizeof(h), off };
		if (accept(ctx, &b, w, sizeof(w)) < 0) {
			/* Intact but out of place: not a torn write, so not ours to cut. */
			snprintf(
				why, why_len,
				"batch %llu at offset %llu is intact but does not continue the log "
				"(first index %llu)%s%s",
				(unsigned long long)h.batch_seq, (unsigned long long)off,
				(unsigned long long)h.first_index, w[0] ? ": " : "", w);
			return -EBADMSG;
		}
		res->batches++;
		res->records += h.count;
		off += lcr_align_up(sizeof(h) + h.bytes, unit);
	}
	res->end = off < len ? off : len;
	if (off >= len) {
		res->how = LCR_SCAN_CLEAN;
		return 0;
	}
	/*
	 * The valid data ends at `off`. A batch of this segment further on was
	 * written after the one we find damaged or missing here: with several
	 * writes in flight (lcr_log_opts.writes_max) a crash may leave a few
	 * of them intact after it, orphans, which recovery erases. Anything
	 * more than writes in flight can leave is corruption: more than
	 * LCR_LOG_WRITES_MAX - 1 orphans, or orphans out of order (their
	 * sequence numbers are checked against the log by recovery).
	 */
	uint64_t seq_prev = 0;
	for (uint64_t o = off + unit; o < len;) {
		if (!batch_ours(img, len, o, group, nonce)) {
			o += unit;
			continue;
		}
		memcpy(&h, img + o, sizeof(h));
		if (res->orphans == LCR_LOG_WRITES_MAX - 1 || h.batch_seq <= seq_prev) {
			snprintf(why, why_len,
				 "damaged batch at offset %llu, but a valid batch follows at "
				 "offset %llu (more than writes in flight leave)",
				 (unsigned long long)off, (unsigned long long)o);
			return -EBADMSG;
		}
		if (res->orphans == 0)
			res->orphan_seq_min = h.batch_seq;
		res->orphan_seq_max = seq_prev = h.batch_seq;
		res->orphans++;
		uint64_t span = lcr_align_up(sizeof(h) + (uint64_t)h.bytes, unit);
		res->orphan_end = len - o < span ? len : o + span;
		o = res->orphan_end;
	}
	/*
	 * Zeros, or what a recycled file held before: nothing was written here.
	 * In a recycled segment any unit without a batch's magic is taken as
	 * its earlier life (a torn write whose first sector never arrived left
	 * that sector as it was); a unit with the magic is a torn batch.
	 */
	struct lcr_seg_hdr sh;
	memcpy(&sh, img, sizeof(sh));
	uint32_t magic;
	memcpy(&magic, img + off, sizeof(magic));
	bool earlier = (sh.flags & LCR_SEG_RECYCLED) && magic != LCR_BATCH_MAGIC;
	if (unit_zero(img + off, unit) || batch_stale(img, len, off, group, nonce) || earlier) {
		res->how = LCR_SCAN_CLEAN;
	} else {
		/* A torn last batch: measure the garbage up to the next zero unit
		 * (or the next batch left from a recycled file's past). */
		res->how = LCR_SCAN_TORN;
		uint64_t o = off;
		while (o < len && !unit_zero(img + o, unit) &&
		       (o == off || !batch_stale(img, len, o, group, nonce)))
			o += unit;
		res->torn_len = o - off;
	}
	/* Orphans are cut with the torn batch: everything up to the last one. */
	if (res->orphans > 0) {
		res->how = LCR_SCAN_TORN;
		if (res->orphan_end - off > res->torn_len)
			res->torn_len = res->orphan_end - off;
	}
	return 0;
}
