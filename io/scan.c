/* SPDX-License-Identifier: MIT */
/* Segment scanning for recovery (see scan.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "types.h"
#include "crc32c.h"
#include "scan.h"

int lcr_seg_check_header(const void *img, size_t len, uint32_t group, uint64_t seg_no, char *why,
			 size_t why_len)
{
	struct lcr_seg_hdr h;

	if (len < LCR_BLOCK) {
		snprintf(why, why_len, "segment is %zu bytes, shorter than its header block", len);
		return -EBADMSG;
	}
	memcpy(&h, img, sizeof(h));
	if (h.magic != LCR_SEG_MAGIC || h.version != LCR_FORMAT_VERSION ||
	    h.crc != lcr_crc32c(0, (const char *)img + 8, sizeof(h) - 8)) {
		snprintf(why, why_len, "segment header at offset 0 is invalid");
		return -EBADMSG;
	}
	if (h.group != group || h.seg_no != seg_no) {
		snprintf(why, why_len,
			 "segment header says group %u segment %llu, expected %u/%llu", h.group,
			 (unsigned long long)h.seg_no, group, (unsigned long long)seg_no);
		return -EBADMSG;
	}
	return 0;
}

bool lcr_batch_hdr_valid(const void *img, size_t len, uint64_t off, uint32_t group)
{
	struct lcr_batch_hdr h;

	if (off > len || len - off < sizeof(h))
		return false;
	memcpy(&h, (const char *)img + off, sizeof(h));
	return h.magic == LCR_BATCH_MAGIC && h.version == LCR_FORMAT_VERSION && h.group == group &&
	       h.crc == lcr_crc32c(0, (const char *)img + off + 8, sizeof(h) - 8);
}

int lcr_rec_check(const uint8_t *p, size_t avail, uint64_t index)
{
	struct lcr_rec_hdr r;

	if (avail < sizeof(r))
		return -EBADMSG;
	memcpy(&r, p, sizeof(r));
	if (r.len > LCR_ENTRY_MAX || lcr_rec_size(r.len) > avail || r.index != index)
		return -EBADMSG;
	if (r.type < LCR_ENTRY_BLANK || r.type > LCR_ENTRY_MEMBERSHIP || r.flags != 0)
		return -EBADMSG;
	uint32_t crc = lcr_crc32c(0, p + 4, sizeof(r) - 4);
	crc = lcr_crc32c(crc, p + sizeof(r), r.len);
	if (crc != r.crc)
		return -EBADMSG;
	return (int)lcr_rec_size(r.len);
}

/* Everything a batch proves on its own. */
static bool batch_intrinsic_ok(const uint8_t *img, size_t len, uint64_t off, uint32_t group,
			       struct lcr_batch_hdr *h)
{
	if (!lcr_batch_hdr_valid(img, len, off, group))
		return false;
	memcpy(h, img + off, sizeof(*h));
	if (h->first_index == 0 || h->bytes > len - off - sizeof(*h))
		return false;
	if ((uint64_t)h->count * sizeof(struct lcr_rec_hdr) > h->bytes)
		return false;
	const uint8_t *p = img + off + sizeof(*h);
	size_t left = h->bytes;
	struct lcr_leader_id prev = { 0, 0 };
	for (uint32_t i = 0; i < h->count; i++) {
		int sz = lcr_rec_check(p, left, h->first_index + i);
		if (sz < 0)
			return false;
		struct lcr_rec_hdr r;
		memcpy(&r, p, sizeof(r));
		struct lcr_leader_id lid = { r.term, r.node };
		if (i > 0 && lcr_leader_id_cmp(lid, prev) < 0)
			return false;
		prev = lid;
		p += sz;
		left -= (size_t)sz;
	}
	return left == 0;
}

static bool block_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int lcr_seg_scan(const void *image, size_t len, uint32_t group, lcr_scan_accept_fn accept,
		 void *ctx, struct lcr_scan_result *res, char *why, size_t why_len)
{
	const uint8_t *img = image;
	uint64_t off = LCR_BLOCK;
	struct lcr_batch_hdr h;

	memset(res, 0, sizeof(*res));
	len -= len % LCR_BLOCK; /* a partial last block holds no batch start */
	while (off < len) {
		if (!batch_intrinsic_ok(img, len, off, group, &h))
			break;
		struct lcr_scan_batch b = { (const struct lcr_batch_hdr *)(img + off),
					    img + off + sizeof(h), off };
		if (accept(ctx, &b) < 0) {
			/* Intact but out of place: not a torn write, so not ours to cut. */
			snprintf(
				why, why_len,
				"batch %llu at offset %llu is intact but does not continue the log "
				"(first index %llu)",
				(unsigned long long)h.batch_seq, (unsigned long long)off,
				(unsigned long long)h.first_index);
			return -EBADMSG;
		}
		res->batches++;
		res->records += h.count;
		off += lcr_align_up(sizeof(h) + h.bytes, LCR_BLOCK);
	}
	res->end = off < len ? off : len;
	if (off >= len) {
		res->how = LCR_SCAN_CLEAN;
		return 0;
	}
	/* The valid data ends at `off`. Anything that still looks like a batch
	 * further on was written after a batch we now find damaged. */
	for (uint64_t o = off + LCR_BLOCK; o < len; o += LCR_BLOCK)
		if (lcr_batch_hdr_valid(img, len, o, group)) {
			snprintf(why, why_len,
				 "damaged batch at offset %llu, but a valid batch follows at "
				 "offset %llu",
				 (unsigned long long)off, (unsigned long long)o);
			return -EBADMSG;
		}
	if (block_zero(img + off, LCR_BLOCK)) {
		res->how = LCR_SCAN_CLEAN;
		return 0;
	}
	/* A torn last batch: measure the garbage up to the next zero block. */
	res->how = LCR_SCAN_TORN;
	uint64_t o = off;
	while (o < len && !block_zero(img + o, LCR_BLOCK))
		o += LCR_BLOCK;
	res->torn_len = o - off;
	return 0;
}
