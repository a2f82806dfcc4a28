/* SPDX-License-Identifier: MIT */
/*
 * Reading entries back: from the arena's cached batches (lcr_log_get, with a
 * cursor per reader), or from disk through the scratch buffer, read ahead and
 * verified again after the read (lcr_log_read).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log_int.h"
#include "scan.h"

static void fill_entry(struct lcr_entry *out, const uint8_t *rec)
{
	struct lcr_rec_hdr r;

	memcpy(&r, rec, sizeof(r));
	out->id.lid.term = r.term;
	out->id.lid.node = r.node;
	out->id.index = r.index;
	out->type = r.type;
	out->len = r.len;
	out->data = rec + sizeof(r);
}

int lcr_log_get(struct lcr_log *l, uint64_t index, struct lcr_entry *out)
{
	LCR_ASSERT(l != NULL);
	LCR_ASSERT(out != NULL);
	if (index <= l->ids.purged.index || index > l->ids.last.index)
		return -ENOENT;
	for (uint32_t k = l->mb_n; k-- > 0;) {
		struct mbatch *b = lcr_log_mb_at(l, k);
		if (index < b->first_index)
			continue;
		if (index >= b->first_index + b->count)
			break; /* the newest batch at or below it lacks it: ask the disk */
		uint32_t want = (uint32_t)(index - b->first_index);
		int best = -1;
		for (int c = 0; c < GET_CURSORS; c++)
			if (l->gc[c].wid == b->wid && l->gc[c].i <= want &&
			    (best < 0 || l->gc[c].i > l->gc[best].i))
				best = c;
		uint32_t i = best >= 0 ? l->gc[best].i : 0, off = best >= 0 ? l->gc[best].off : 0;
		const uint8_t *base = l->arena + b->aoff + sizeof(struct lcr_batch_hdr);
		/* Records in the arena are ours: a bad one is a bug, not damage. */
		while (i < want) {
			struct lcr_rec_hdr r;
			LCR_ASSERT(off + sizeof(r) <= b->bytes);
			memcpy(&r, base + off, sizeof(r));
			LCR_ASSERT(r.index == b->first_index + i);
			off += lcr_rec_size(r.len);
			i++;
		}
		LCR_ASSERT(off + sizeof(struct lcr_rec_hdr) <= b->bytes);
		int slot = best >= 0 && want - l->gc[best].i <= 1
				   ? best
				   : (int)(l->gc_next++ % GET_CURSORS);
		l->gc[slot].wid = b->wid;
		l->gc[slot].i = i;
		l->gc[slot].off = off;
		fill_entry(out, base + off);
		l->st.cache_hits++;
		return 0;
	}
	l->st.cache_misses++;
	return -ENOENT;
}

static const struct loc *find_loc(const struct lcr_log *l, uint64_t index, const struct seg **sp)
{
	for (uint32_t k = l->n_segs; k-- > 0;) {
		const struct seg *s = l->segs[k];
		if (s->n_locs == 0 || index < s->locs[0].first_index)
			continue;
		uint32_t lo = 0, hi = s->n_locs;
		while (hi - lo > 1) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (s->locs[mid].first_index <= index)
				lo = mid;
			else
				hi = mid;
		}
		const struct loc *lc = &s->locs[lo];
		if (index < lc->first_index + lc->count) {
			*sp = s;
			return lc;
		}
		return NULL;
	}
	return NULL;
}

int lcr_log_read(struct lcr_log *l, uint64_t index, struct lcr_entry *out, void *buf, size_t len)
{
	const struct seg *s;
	LCR_ASSERT(l != NULL);
	LCR_ASSERT(out != NULL);
	LCR_ASSERT(buf != NULL || len == 0);
	const struct loc *lc = find_loc(l, index, &s);

	if (!lc)
		return -ENOENT;
	LCR_ASSERT(lc->first_index <= index && index < lc->first_index + lc->count);
	uint64_t span = lcr_align_up(sizeof(struct lcr_batch_hdr) + lc->bytes, LCR_BLOCK);
	LCR_ASSERT(span <= l->scratch_bytes); /* batch_for, and scratch_fit at open */
	if (!l->rd_valid || l->rd_seg != s->no || lc->file_off < l->rd_off ||
	    lc->file_off + span > l->rd_off + l->rd_len) {
		/* Read this batch and what follows it in the segment, up to the
		 * end of its last written batch (never a write in flight). */
		const struct loc *end = &s->locs[s->n_locs - 1];
		uint64_t stop = end->file_off +
				lcr_align_up(sizeof(struct lcr_batch_hdr) + end->bytes, LCR_BLOCK);
		uint64_t want = stop > lc->file_off ? stop - lc->file_off : span;
		if (want > l->scratch_bytes)
			want = l->scratch_bytes / LCR_BLOCK * LCR_BLOCK;
		if (want < span)
			want = span;
		LCR_ASSERT(want <= l->scratch_bytes);
		l->rd_valid = false;
		ssize_t n = pread(s->fd, l->scratch, want, (off_t)lc->file_off);
		if (n < (ssize_t)span)
			return n < 0 ? -errno : -EIO;
		l->rd_valid = true;
		l->rd_seg = s->no;
		l->rd_off = lc->file_off;
		l->rd_len = (uint64_t)n / LCR_BLOCK * LCR_BLOCK;
		l->cur_off = UINT64_MAX;
		l->st.disk_reads++;
	}
	LCR_ASSERT(lc->file_off >= l->rd_off && lc->file_off + span <= l->rd_off + l->rd_len);
	const uint8_t *hb = (const uint8_t *)l->scratch + (lc->file_off - l->rd_off);
	if (l->cur_off != lc->file_off) {
		/* Verify after the read what was verified before the write. */
		struct lcr_batch_hdr h;
		if (!lcr_batch_hdr_valid(hb, span, 0, l->o.group))
			return -EBADMSG;
		memcpy(&h, hb, sizeof(h));
		if (h.seg_nonce != s->nonce)
			return -EBADMSG;
		/* A truncation may have cut the batch short and a purge its head:
		 * what is left of it (lc) is all that may be read. */
		if (h.bytes != lc->bytes || lc->first_index < h.first_index ||
		    lc->first_index + lc->count > h.first_index + h.count)
			return -EBADMSG;
		l->cur_off = lc->file_off;
		l->cur_first = h.first_index;
		l->cur_lo = lc->first_index;
		l->cur_hi = lc->first_index + lc->count;
		l->cur_i = 0;
		l->cur_pos = 0;
	}
	if (index < l->cur_lo || index >= l->cur_hi)
		return -EBADMSG;
	/* Walk from the cursor when it is not past the entry, else from the
	 * start, verifying each record's checksum on the way. */
	uint32_t want = (uint32_t)(index - l->cur_first);
	if (l->cur_i > want) {
		l->cur_i = 0;
		l->cur_pos = 0;
	}
	const uint8_t *base = hb + sizeof(struct lcr_batch_hdr);
	for (;;) {
		int sz = lcr_rec_check(base + l->cur_pos, lc->bytes - l->cur_pos,
				       l->cur_first + l->cur_i);
		if (sz < 0) {
			l->cur_off = UINT64_MAX;
			return -EBADMSG;
		}
		if (l->cur_i == want)
			break;
		l->cur_pos += (uint32_t)sz;
		l->cur_i++;
	}
	fill_entry(out, base + l->cur_pos);
	if (out->len > len)
		return -ENOSPC;
	memcpy(buf, out->data, out->len);
	out->data = buf;
	return (int)out->len;
}
