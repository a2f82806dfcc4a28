/* libFuzzer target: any bytes as segment and meta images to recovery: an error or a prefix. */
/*
 * One input is
 *   byte 0    mode: bit 0 a meta image follows, bit 1 in compact form (two
 *             128-byte slot prefixes, zero padded to 4 KiB slots; otherwise
 *             up to 8 KiB as is), bit 2 make the segment header block here
 *             (valid, for `group` and the segment number), bit 3 the segment
 *             comes as chunks (a little-endian u16 length, then the bytes),
 *             each placed on the next 4 KiB block, bit 4 fix every checksum
 *             before scanning, bits 5-7 the segment number - 1
 *   byte 1    group
 *   then      the meta image (mode bit 0), then the segment image.
 * Fixing checksums lets mutations of indexes, leaders, sequence numbers and
 * counts reach the checks behind the CRCs.
 *
 * The meta image goes to lcr_meta_recover(); its purge point, if any, starts
 * the model. The segment image goes to lcr_seg_check_header() and
 * lcr_seg_scan() (with the header's nonce, 0 for an invalid header), whose
 * accept callback applies batches (a reset batch included) to a struct
 * lcr_log_ids with the rules of recovery (io/log_recover.c, recover_accept): batch
 * sequence numbers increase, no gap, leaders never go down; anything else is
 * refused, never asserted. Either the scan fails with a reason, or what it
 * accepted is a prefix of the image that the result describes exactly.
 * Anything else traps.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log_ids.h"
#include "crc32c.h"
#include "log_format.h"
#include "meta.h"
#include "scan.h"

#define MODE_META	  0x01u
#define MODE_META_COMPACT 0x02u
#define MODE_SEG_HEADER	  0x04u
#define MODE_SEG_CHUNKS	  0x08u
#define MODE_FIX_CRC	  0x10u
#define META_COMPACT	  128u
#define META_MAGIC	  0x4d52434cu /* io/meta.c: "LCRM" */
#define META_DISK_BYTES	  88u	      /* io/meta.c: struct meta_disk, crc over [8, 88) */
#define IMAGE_MAX	  (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

struct model {
	struct lcr_log_ids ids;
	uint32_t align; /* the segment's batch alignment (4096 without a valid header) */
	uint64_t last_batch_seq;
	uint64_t batches;
	uint64_t records;
	uint64_t end; /* offset after the last accepted batch */
	const uint8_t *img;
	size_t len;
};

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void *xalloc(void *ctx, size_t n)
{
	(void)ctx;
	return malloc(n);
}

static void xfree(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

/* ---- the model of recovery ------------------------------------------------------------- */

static int accept(void *ctx, const struct lcr_scan_batch *b, char *why, size_t why_len)
{
	struct model *m = ctx;
	struct lcr_batch_hdr h;

	(void)why; /* the scanner's own reason is enough for the model */
	(void)why_len;

	/* What the scanner promises about the batch it hands over. */
	CHECK((const uint8_t *)b->hdr == m->img + b->file_off);
	CHECK(b->file_off % m->align == 0 && b->file_off >= LCR_BLOCK);
	CHECK(b->file_off + sizeof(h) <= m->len);
	memcpy(&h, b->hdr, sizeof(h));
	CHECK(b->records == m->img + b->file_off + sizeof(h));
	CHECK(h.bytes <= m->len - b->file_off - sizeof(h));
	CHECK(h.first_index > 0);
	CHECK(b->file_off >= m->end);

	if (h.batch_seq <= m->last_batch_seq)
		return -EBADMSG;
	if (h.flags & LCR_BATCH_RESET) {
		/* The log restarts after prev, or after a newer purge point. */
		CHECK(h.prev_term < LCR_NUMBER_MAX);
		struct lcr_log_id prev = { { h.prev_term, h.prev_node }, h.first_index - 1 };
		if (prev.index >= m->ids.purged.index) {
			m->ids.n = 0;
			m->ids.purged = prev;
			m->ids.last = prev;
		} else if (m->ids.last.index > m->ids.purged.index) {
			lcr_log_ids_truncate(&m->ids, m->ids.purged.index + 1);
		}
	} else {
		CHECK(h.prev_term == 0 && h.prev_node == 0);
	}
	uint64_t first = h.first_index, purged = m->ids.purged.index;
	if (first > m->ids.last.index + 1 && first > purged + 1)
		return -EBADMSG;
	/* Entries at or below the purge point are committed: skip them. */
	uint64_t skip = 0;
	if (first <= purged) {
		skip = purged + 1 - first;
		if (skip > h.count)
			skip = h.count;
	} else if (first <= m->ids.last.index) {
		lcr_log_ids_truncate(&m->ids, first);
	}
	const uint8_t *p = b->records;
	size_t left = h.bytes;
	for (uint32_t i = 0; i < h.count; i++) {
		struct lcr_rec_hdr r;
		int sz = lcr_rec_check(p, left, first + i);
		CHECK(sz > 0); /* every record was checked by the scanner */
		memcpy(&r, p, sizeof(r));
		p += sz;
		left -= (size_t)sz;
		if (i < skip)
			continue;
		struct lcr_log_id id = { { r.term, r.node }, r.index };
		if (lcr_leader_id_cmp(id.lid, m->ids.last.lid) < 0)
			return -EBADMSG;
		/* lcr_log_ids_append() asserts that the index follows, so it is
		 * checked first (as io/log_recover.c does). A batch that starts
		 * at or below the purge point while entries above it are in the
		 * log (written before a later truncation): recovery truncates
		 * them first, the model simply refuses it. */
		if (id.index != m->ids.last.index + 1)
			return -EBADMSG;
		if (lcr_log_ids_append(&m->ids, id) < 0)
			return -ENOMEM;
	}
	CHECK(left == 0);
	m->last_batch_seq = h.batch_seq;
	m->batches++;
	m->records += h.count;
	m->end = b->file_off + lcr_align_up(sizeof(h) + h.bytes, m->align);
	return 0;
}

/* ---- building the images ------------------------------------------------------------- */

static void fix_meta(uint8_t *buf, size_t len)
{
	for (size_t off = 0; off + LCR_META_SLOT <= len; off += LCR_META_SLOT)
		if (rd32(buf + off) == META_MAGIC)
			wr32(buf + off + 4, lcr_crc32c(0, buf + off + 8, META_DISK_BYTES - 8));
}

static void fix_segment(uint8_t *img, size_t len)
{
	if (len >= sizeof(struct lcr_seg_hdr))
		wr32(img + 4, lcr_crc32c(0, img + 8, sizeof(struct lcr_seg_hdr) - 8));
	for (size_t off = LCR_BLOCK; off + sizeof(struct lcr_batch_hdr) <= len; off += LCR_BLOCK) {
		struct lcr_batch_hdr h;
		memcpy(&h, img + off, sizeof(h));
		if (h.magic != LCR_BATCH_MAGIC)
			continue;
		uint8_t *p = img + off + sizeof(h);
		size_t left = len - off - sizeof(h);
		if (h.bytes < left)
			left = h.bytes;
		for (uint32_t i = 0; i < h.count && left >= sizeof(struct lcr_rec_hdr); i++) {
			struct lcr_rec_hdr r;
			memcpy(&r, p, sizeof(r));
			if (r.len > LCR_ENTRY_MAX || lcr_rec_size(r.len) > left)
				break;
			uint32_t crc = lcr_crc32c(0, p + 4, sizeof(r) - 4);
			wr32(p, lcr_crc32c(crc, p + sizeof(r), r.len));
			p += lcr_rec_size(r.len);
			left -= lcr_rec_size(r.len);
		}
		wr32(img + off + 4, lcr_crc32c(0, img + off + 8, sizeof(h) - 8));
	}
}

/*
 * A valid header block; its nonce is the one of the batch at offset 4096 if
 * the image has one there (the seeds' batches, cut from real segments), so
 * that their batches are the segment's own and not left from a recycling.
 */
static void seg_header(uint8_t *blk, size_t len, uint32_t group, uint64_t seg_no)
{
	struct lcr_seg_hdr h;
	struct lcr_batch_hdr b;

	memset(&h, 0, sizeof(h));
	if (len >= LCR_BLOCK + sizeof(b)) {
		memcpy(&b, blk + LCR_BLOCK, sizeof(b));
		if (b.magic == LCR_BATCH_MAGIC)
			h.nonce = b.seg_nonce;
	}
	h.magic = LCR_SEG_MAGIC;
	h.version = LCR_SEG_VERSION_4K; /* the seeds' batches: 4 KiB apart */
	h.group = group;
	h.seg_no = seg_no;
	h.segment_bytes = 4u << 20;
	h.crc = lcr_crc32c(0, (const char *)&h + 8, sizeof(h) - 8);
	memcpy(blk, &h, sizeof(h));
}

/* The next chunk of a chunked segment (its length, then its bytes); false at the end. */
static bool next_chunk(const uint8_t *d, size_t n, size_t *i, const uint8_t **p, size_t *c)
{
	if (*i + 2 > n)
		return false;
	size_t want = d[*i] | (size_t)d[*i + 1] << 8;
	*i += 2;
	*c = want < n - *i ? want : n - *i;
	*p = d + *i;
	*i += *c;
	return true;
}

/* The segment image, in a buffer of exactly its size (so that ASan sees overreads). */
static uint8_t *make_segment(const uint8_t *d, size_t n, uint32_t mode, uint32_t group,
			     uint64_t seg_no, size_t *len)
{
	size_t hdr = mode & MODE_SEG_HEADER ? LCR_BLOCK : 0, body = n, i, c;
	const uint8_t *p;
	uint8_t *img;

	if (mode & MODE_SEG_CHUNKS) {
		/* After the header block; each chunk takes whole blocks, at least one. */
		hdr = LCR_BLOCK;
		body = 0;
		for (i = 0; body <= IMAGE_MAX && next_chunk(d, n, &i, &p, &c);)
			body += c ? lcr_align_up(c, LCR_BLOCK) : LCR_BLOCK;
	}
	/* With a header it is a segment as the log makes it: whole blocks
	 * (recovery refuses any other length before it scans). */
	if (mode & MODE_SEG_HEADER)
		body = lcr_align_up(body, LCR_BLOCK);
	if (hdr + body > IMAGE_MAX || hdr + body == 0)
		return NULL;
	*len = hdr + body;
	img = calloc(1, *len);
	if (!img)
		return NULL;
	if (mode & MODE_SEG_CHUNKS) {
		size_t at = LCR_BLOCK;
		for (i = 0; next_chunk(d, n, &i, &p, &c);) {
			memcpy(img + at, p, c);
			at += c ? lcr_align_up(c, LCR_BLOCK) : LCR_BLOCK;
		}
	} else {
		memcpy(img + hdr, d, n);
	}
	if (mode & MODE_SEG_HEADER)
		seg_header(img, *len, group, seg_no);
	if (mode & MODE_FIX_CRC)
		fix_segment(img, *len);
	return img;
}

/* ---- the checks ----------------------------------------------------------------------- */

/* Returns the purge point to start the log from (none when the meta fails). */
static struct lcr_log_id check_meta(const uint8_t **d, size_t *n, uint32_t mode, uint32_t group)
{
	struct lcr_meta_state st, slot;
	uint64_t seq = 0, slot_seq = 0;
	uint8_t *buf;
	size_t len;
	char why[256];

	if (mode & MODE_META_COMPACT) {
		len = 2 * LCR_META_SLOT;
		buf = calloc(1, len);
		CHECK(buf != NULL);
		for (int i = 0; i < 2; i++) {
			size_t k = *n < META_COMPACT ? *n : META_COMPACT;
			memcpy(buf + i * LCR_META_SLOT, *d, k);
			*d += k;
			*n -= k;
		}
	} else {
		len = *n < 2 * LCR_META_SLOT ? *n : 2 * LCR_META_SLOT;
		buf = malloc(len ? len : 1);
		CHECK(buf != NULL);
		memcpy(buf, *d, len);
		*d += len;
		*n -= len;
	}
	if (mode & MODE_FIX_CRC)
		fix_meta(buf, len);
	why[0] = 0;
	int rc = lcr_meta_recover(buf, len, group, &st, &seq, why, sizeof(why));
	struct lcr_log_id purged = lcr_log_id_none();
	if (rc < 0) {
		CHECK(rc == -EBADMSG && why[0] != 0);
	} else {
		CHECK(rc == 0);
		CHECK(len == 0 || len == 2 * LCR_META_SLOT);
		if (seq == 0) {
			static const struct lcr_meta_state zero;
			CHECK(memcmp(&st, &zero, sizeof(st)) == 0);
		} else {
			/* The chosen slot is where its sequence number says, and decodes
			 * to what recovery returned. */
			CHECK(lcr_meta_decode(buf + (seq & 1) * LCR_META_SLOT, group, &slot_seq,
					      &slot) == 1);
			CHECK(slot_seq == seq);
			CHECK(lcr_vote_eq(slot.vote, st.vote));
			CHECK(lcr_log_id_eq(slot.purged, st.purged));
			CHECK(lcr_log_id_eq(slot.committed, st.committed));
			purged = st.purged;
		}
	}
	free(buf);
	return purged;
}

static void check_segment(const uint8_t *d, size_t n, uint32_t mode, uint32_t group,
			  uint64_t seg_no, struct lcr_log_id purged)
{
	struct lcr_allocator a = { xalloc, xfree, NULL };
	struct lcr_scan_result res;
	struct model m;
	size_t len = 0;
	char why[256];

	uint8_t *img = make_segment(d, n, mode, group, seg_no, &len);
	if (!img)
		return;
	why[0] = 0;
	struct lcr_seg_info si = { 0, LCR_SEG_VERSION_4K, LCR_BLOCK };
	int rc = lcr_seg_check_header(img, len, group, seg_no, &si, why, sizeof(why));
	CHECK(rc == 0 || (rc == -EBADMSG && why[0] != 0));
	if (mode & MODE_SEG_HEADER)
		CHECK(rc == 0);

	/* Recovery scans only segments with a valid header; the scanner must
	 * cope with any bytes all the same. */
	memset(&m, 0, sizeof(m));
	m.img = img;
	m.len = len;
	m.align = si.align;
	CHECK(lcr_log_ids_init(&m.ids, a, 4, purged) == 0);
	why[0] = 0;
	rc = lcr_seg_scan(img, len, group, &si, accept, &m, &res, why, sizeof(why));
	/* Whether the first batch starts the log anew agrees with the scan. */
	if (lcr_seg_reset_first(img, len, group, &si)) {
		struct lcr_batch_hdr f;
		memcpy(&f, img + LCR_BLOCK, sizeof(f));
		CHECK(f.flags & LCR_BATCH_RESET);
		CHECK(f.seg_nonce == si.nonce);
	}
	size_t blocks = len - len % LCR_BLOCK;
	if (rc < 0) {
		CHECK(rc == -EBADMSG && why[0] != 0);
	} else {
		CHECK(rc == 0);
		CHECK(res.batches == m.batches && res.records == m.records);
		CHECK(res.end == (m.batches ? m.end : (blocks < LCR_BLOCK ? blocks : LCR_BLOCK)));
		CHECK(res.end <= blocks && res.end % m.align == 0);
		CHECK(res.how == LCR_SCAN_CLEAN || res.how == LCR_SCAN_TORN);
		if (res.how == LCR_SCAN_TORN)
			CHECK(res.torn_len > 0 && res.torn_len % m.align == 0 &&
			      res.end + res.torn_len <= blocks);
		else
			CHECK(res.torn_len == 0);
		/* The model's log is consistent: lookups agree with its ends. */
		struct lcr_log_id id;
		CHECK(m.ids.last.index >= m.ids.purged.index);
		if (m.ids.last.index > m.ids.purged.index) {
			CHECK(lcr_log_ids_get(&m.ids, m.ids.last.index, &id));
			CHECK(lcr_log_id_eq(id, m.ids.last));
			CHECK(lcr_log_ids_get(&m.ids, m.ids.purged.index + 1, &id));
			CHECK(lcr_leader_id_cmp(id.lid, m.ids.last.lid) <= 0);
		}
		CHECK(!lcr_log_ids_get(&m.ids, m.ids.last.index + 1, &id));
	}
	lcr_log_ids_free(&m.ids);
	free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint32_t mode = data[0], group = data[1];
	uint64_t seg_no = 1 + (mode >> 5);
	const uint8_t *d = data + 2;
	size_t n = size - 2;

	struct lcr_log_id purged = lcr_log_id_none();
	if (mode & MODE_META)
		purged = check_meta(&d, &n, mode, group);
	check_segment(d, n, mode, group, seg_no, purged);
	return 0;
}
