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
	uint64_t span = lcr_log_span(lc->bytes, s->align);
	LCR_ASSERT(span <= l->scratch_bytes); /* batch_for, and scratch_fit at open */
	if (!l->rd_valid || l->rd_seg != s->no || lc->file_off < l->rd_off ||
	    lc->file_off + span > l->rd_off + l->rd_len) {
		/* Read this batch and what follows it in the segment, up to the
		 * end of its last written batch (never a write in flight). */
		const struct loc *end = &s->locs[s->n_locs - 1];
		uint64_t stop = end->file_off + lcr_log_span(end->bytes, s->align);
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
		l->rd_len = (uint64_t)n / s->align * s->align;
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

/* ---- asynchronous cold reads (lcr_log_fetch) --------------------------------------- */

int lcr_log_fetch_init(struct lcr_log *l)
{
	/* One batch must fit, with its header and padding: scratch's size. */
	l->fetch_bytes = l->scratch_bytes;
	for (uint32_t i = 0; i < FETCH_BUFS; i++) {
		struct fetch_buf *f = &l->fetch[i];
		f->log = l;
		f->buf = lcr_log_zalloc_blocks(l, l->fetch_bytes);
		if (!f->buf)
			return -ENOMEM;
	}
	return 0;
}

void lcr_log_fetch_free(struct lcr_log *l)
{
	for (uint32_t i = 0; i < FETCH_BUFS; i++) {
		LCR_ASSERT(!lcr_io_busy(&l->fetch[i].req));
		lcr_log_free_blocks(l, l->fetch[i].buf);
		l->fetch[i].buf = NULL;
	}
}

bool lcr_log_fetch_busy(const struct lcr_log *l)
{
	for (uint32_t i = 0; i < FETCH_BUFS; i++)
		if (l->fetch[i].reading || lcr_io_busy(&l->fetch[i].req))
			return true;
	return false;
}

void lcr_log_fetch_unpin(struct lcr_log *l)
{
	LCR_ASSERT(l != NULL);
	for (uint32_t i = 0; i < FETCH_BUFS; i++)
		l->fetch[i].pinned = false;
}

static void fetch_done(struct lcr_io_req *req, int res)
{
	struct fetch_buf *f = req->ctx;
	struct lcr_log *l = f->log;

	LCR_ASSERT(f->reading);
	f->reading = false;
	f->used = ++l->fetch_clock;
	if (res < 0 || (uint64_t)res < LCR_BATCH_ALIGN_MIN) {
		f->err = res < 0 ? res : -EIO;
		f->len = 0;
		l->st.fetch_errors++;
		return;
	}
	/* Whole units only: a batch is checked against its span below. */
	f->len = (uint64_t)res / LCR_BATCH_ALIGN_MIN * LCR_BATCH_ALIGN_MIN;
	l->st.fetch_bytes += (uint64_t)res;
}

/* Whether `f` holds (or is reading) the span of batch `lc` of segment `s`. */
static bool fetch_covers(const struct fetch_buf *f, const struct seg *s, const struct loc *lc,
			 uint64_t span)
{
	return f->seg == s->no && lc->file_off >= f->off && lc->file_off + span <= f->off + f->len;
}

/*
 * Start reading the batch `lc` of `s` and those after it into `f`: up to
 * the end of the segment's last durable batch (never a write in flight),
 * at most fetch_bytes.
 */
static void fetch_start(struct lcr_log *l, struct fetch_buf *f, const struct seg *s,
			const struct loc *lc, uint64_t span)
{
	const struct loc *end = &s->locs[s->n_locs - 1];
	uint64_t stop = end->file_off + lcr_log_span(end->bytes, s->align);
	uint64_t want = stop > lc->file_off ? stop - lc->file_off : span;

	if (want > l->fetch_bytes)
		want = l->fetch_bytes / LCR_BLOCK * LCR_BLOCK;
	if (want < span)
		want = span;
	LCR_ASSERT(want <= l->fetch_bytes);
	LCR_ASSERT(!f->reading && !f->pinned && !lcr_io_busy(&f->req));
	/* The first index after the last whole batch it will hold: where the
	 * read ahead starts. */
	f->next = 0;
	for (const struct loc *x = lc; x < s->locs + s->n_locs; x++) {
		uint64_t xs = lcr_log_span(x->bytes, s->align);
		if (x->file_off + xs > lc->file_off + want)
			break;
		f->next = x->first_index + x->count;
	}
	f->ahead = false;
	f->seg = s->no;
	f->off = lc->file_off;
	f->len = want;
	f->err = 0;
	f->cur_off = UINT64_MAX;
	memset(f->ok, 0, sizeof(f->ok));
	f->reading = true;
	lcr_io_prep(&f->req, LCR_IO_READ, s->fd, f->buf, want, lc->file_off, fetch_done, f);
	lcr_ring_queue(l->ring, &f->req);
	l->st.fetch_reads++;
}

/* A buffer a read may go into: idle, not pinned, the least recently used. */
static struct fetch_buf *fetch_victim(struct lcr_log *l)
{
	struct fetch_buf *v = NULL;

	for (uint32_t i = 0; i < FETCH_BUFS; i++) {
		struct fetch_buf *f = &l->fetch[i];
		if (f->reading || f->pinned || lcr_io_busy(&f->req))
			continue;
		if (!v || f->used < v->used)
			v = f;
	}
	return v;
}

/* The count of `f`'s batch at file offset `off` whose records were checked (a slot, taken if new).
 */
static uint32_t *fetch_ok(struct fetch_buf *f, uint64_t off)
{
	for (uint32_t i = 0; i < FETCH_OK; i++)
		if (f->ok[i].off == off)
			return &f->ok[i].n;
	uint32_t i = f->ok_next++ % FETCH_OK;
	f->ok[i].off = off;
	f->ok[i].n = 0;
	return &f->ok[i].n;
}

/*
 * Entry `index` of batch `lc`, whose bytes `f` holds: verified as
 * lcr_log_read does, each record's checksum once per fill (fetch_ok).
 */
static int fetch_entry(struct lcr_log *l, struct fetch_buf *f, const struct seg *s,
		       const struct loc *lc, uint64_t span, uint64_t index, struct lcr_entry *out)
{
	const uint8_t *hb = f->buf + (lc->file_off - f->off);

	if (f->cur_off != lc->file_off) {
		struct lcr_batch_hdr h;
		if (!lcr_batch_hdr_valid(hb, span, 0, l->o.group))
			return -EBADMSG;
		memcpy(&h, hb, sizeof(h));
		if (h.seg_nonce != s->nonce || h.bytes != lc->bytes ||
		    lc->first_index < h.first_index ||
		    lc->first_index + lc->count > h.first_index + h.count)
			return -EBADMSG;
		f->cur_off = lc->file_off;
		f->cur_first = h.first_index;
		f->cur_i = 0;
		f->cur_pos = 0;
	}
	uint32_t want = (uint32_t)(index - f->cur_first);
	if (f->cur_i > want) {
		f->cur_i = 0;
		f->cur_pos = 0;
	}
	uint32_t *ok = fetch_ok(f, lc->file_off);
	const uint8_t *base = hb + sizeof(struct lcr_batch_hdr);
	for (;;) {
		int sz;
		if (f->cur_i < *ok) {
			/* Checked before: its length is the one that was checked. */
			struct lcr_rec_hdr r;
			memcpy(&r, base + f->cur_pos, sizeof(r));
			sz = (int)lcr_rec_size(r.len);
		} else {
			sz = lcr_rec_check(base + f->cur_pos, lc->bytes - f->cur_pos,
					   f->cur_first + f->cur_i);
			if (sz < 0) {
				f->cur_off = UINT64_MAX;
				return -EBADMSG;
			}
			/* Every record before the cursor was checked in this
			 * fill (a walk starts at the first or at the cursor),
			 * so the prefix grows to this one. */
			*ok = f->cur_i + 1;
			l->st.fetch_checks++;
		}
		if (f->cur_i == want)
			break;
		f->cur_pos += (uint32_t)sz;
		f->cur_i++;
	}
	fill_entry(out, base + f->cur_pos);
	return 0;
}

/*
 * Read ahead, once per fill: the batch after the last one `f` holds, into
 * the other buffer, unless one holds or reads it already.
 */
static void fetch_ahead(struct lcr_log *l, struct fetch_buf *f)
{
	const struct seg *s;

	f->ahead = true;
	if (f->next == 0 || f->next > l->ids.last.index)
		return;
	const struct loc *lc = find_loc(l, f->next, &s);
	if (!lc)
		return;
	uint64_t span = lcr_log_span(lc->bytes, s->align);
	for (uint32_t i = 0; i < FETCH_BUFS; i++)
		if (fetch_covers(&l->fetch[i], s, lc, span) && !l->fetch[i].err)
			return;
	struct fetch_buf *v = fetch_victim(l);
	if (v && v != f)
		fetch_start(l, v, s, lc, span);
}

int lcr_log_fetch(struct lcr_log *l, uint64_t index, struct lcr_entry *out)
{
	const struct seg *s;
	LCR_ASSERT(l != NULL);
	LCR_ASSERT(out != NULL);

	if (index <= l->ids.purged.index || index > l->ids.last.index)
		return -ENOENT;
	const struct loc *lc = find_loc(l, index, &s);
	if (!lc)
		return -ENOENT;
	LCR_ASSERT(lc->first_index <= index && index < lc->first_index + lc->count);
	uint64_t span = lcr_log_span(lc->bytes, s->align);
	LCR_ASSERT(span <= l->fetch_bytes); /* fetch_init sized them after recovery */
	for (uint32_t i = 0; i < FETCH_BUFS; i++) {
		struct fetch_buf *f = &l->fetch[i];
		if (!fetch_covers(f, s, lc, span))
			continue;
		if (f->reading) {
			l->st.fetch_waits++;
			return -EAGAIN;
		}
		if (f->err) {
			int err = f->err;
			f->err = 0;
			f->seg = 0;
			return err;
		}
		int rc = fetch_entry(l, f, s, lc, span, index, out);
		if (rc < 0)
			return rc;
		f->pinned = true;
		f->used = ++l->fetch_clock;
		l->st.fetch_hits++;
		if (!f->ahead)
			fetch_ahead(l, f);
		return 0;
	}
	struct fetch_buf *v = fetch_victim(l);
	if (v)
		fetch_start(l, v, s, lc, span);
	l->st.fetch_waits++;
	return -EAGAIN;
}
