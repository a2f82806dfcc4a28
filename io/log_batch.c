/* SPDX-License-Identifier: MIT */
/*
 * The write path: batches in the arena (a ring of buffers, registered with the
 * ring when possible, that doubles as the cache of recent entries), append and
 * truncate into the open batch, sealing, and up to writes_max batch writes in
 * flight, issued in log order at consecutive offsets and made durable in that
 * order whatever order they complete in (group commit: what arrives while
 * they are in flight goes out in the next one).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "log_int.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct mbatch *mb_newest(struct lcr_log *l)
{
	return l->mb_n ? lcr_log_mb_at(l, l->mb_n - 1) : NULL;
}

static struct mbatch *open_batch(struct lcr_log *l)
{
	struct mbatch *b = mb_newest(l);
	return b && b->state == MB_OPEN ? b : NULL;
}

/* Drop the oldest cached (durable) batch from the arena. */
static bool reclaim_one(struct lcr_log *l)
{
	if (l->mb_n == 0 || l->mb[l->mb_head].state != MB_DONE)
		return false;
	LCR_ASSERT(l->mb_issued > 0); /* a durable batch was issued */
	l->mb_head = (l->mb_head + 1) % l->mb_cap;
	l->mb_n--;
	l->mb_issued--;
	return true;
}

/*
 * Where a new batch of at least `need` bytes can start, contiguously, in the
 * arena; reclaims cached batches as needed. Returns false when the unwritten
 * batches fill it (backpressure).
 */
static bool arena_place(struct lcr_log *l, uint64_t need, uint64_t *at)
{
	for (;;) {
		struct mbatch *newest = mb_newest(l);
		if (l->mb_n == 0) {
			*at = 0;
			return need <= l->arena_bytes;
		}
		if (l->mb_n == l->mb_cap) {
			if (!reclaim_one(l))
				return false;
			continue;
		}
		uint64_t tail = lcr_log_mb_at(l, 0)->aoff;
		uint64_t next = newest->aoff + lcr_log_mb_span(newest);
		/* Used space is [tail, next), or [tail, end) and [0, next) once the
		 * newest batch has wrapped below the oldest. A wrapped arena whose
		 * newest batch ends at the oldest one's start is full, not empty. */
		bool wrapped = newest->aoff < tail;
		if (!wrapped) {
			if (l->arena_bytes - next >= need) {
				*at = next;
				return true;
			}
			if (tail >= need) {
				*at = 0;
				return true;
			}
		} else if (tail - next >= need) {
			*at = next;
			return true;
		}
		if (!reclaim_one(l))
			return false;
	}
}

/* Contiguous bytes the open batch can still grow by in the arena. */
static uint64_t arena_room(struct lcr_log *l, const struct mbatch *b, uint64_t want)
{
	uint64_t end = b->aoff + sizeof(struct lcr_batch_hdr) + b->bytes;

	for (;;) {
		uint64_t tail = lcr_log_mb_at(l, 0)->aoff;
		if (l->mb_n == 1 || b->aoff >= tail)
			return l->arena_bytes - end;
		/* Wrapped: grow into cached batches ahead, dropping them. */
		if (tail - end >= want || !reclaim_one(l))
			return tail - end;
	}
}

static struct mbatch *batch_new(struct lcr_log *l, uint64_t first_index, uint64_t need)
{
	uint64_t at;

	uint64_t span = lcr_align_up(sizeof(struct lcr_batch_hdr) + need, l->align);
	if (!arena_place(l, span, &at))
		return NULL;
	LCR_ASSERT(l->mb_n < l->mb_cap);
	LCR_ASSERT(at % l->align == 0);
	LCR_ASSERT(at + span <= l->arena_bytes);
	struct mbatch *b = &l->mb[(l->mb_head + l->mb_n) % l->mb_cap];
	l->mb_n++;
	memset(b, 0, offsetof(struct mbatch, wreq));
	b->state = MB_OPEN;
	b->wid = ++l->next_wid;
	b->first_index = first_index;
	b->aoff = at;
	b->log = l;
	l->unwritten += sizeof(struct lcr_batch_hdr);
	l->unwritten_batches++;
	return b;
}

static void batch_seal(struct lcr_log *l)
{
	struct mbatch *b = open_batch(l);
	if (b)
		b->state = MB_SEALED;
}

/*
 * Batch b, the oldest not yet durable, completed and so did every batch
 * before it: it is durable. Its entries go to the location tables, the
 * purge point or reset that waited for it goes to the meta slots, and the
 * commands it carries are marked (reported by the caller).
 */
static void batch_durable(struct lcr_log *l, struct mbatch *b)
{
	LCR_ASSERT(l->writing > 0);
	LCR_ASSERT(b == lcr_log_mb_at(l, l->mb_issued - l->writing));
	LCR_ASSERT(b->state == MB_WRITING);
	LCR_ASSERT(b->completed);
	LCR_ASSERT(l->unwritten >= sizeof(struct lcr_batch_hdr) + b->bytes);
	LCR_ASSERT(l->unwritten_batches > 0);
	/* In order: the batch before it is durable already. */
	if (l->mb_issued - l->writing > 0)
		LCR_ASSERT(lcr_log_mb_at(l, l->mb_issued - l->writing - 1)->state == MB_DONE);
	b->state = MB_DONE;
	l->writing--;
	l->unwritten -= sizeof(struct lcr_batch_hdr) + b->bytes;
	l->unwritten_batches--;
	l->st.batches_written++;
	l->st.entries_written += b->count;
	l->st.bytes_written += lcr_log_mb_span(b);
	if (b->reset)
		lcr_log_locs_clear(l); /* every batch before it is dead */
	lcr_log_locs_apply(l, b->seg, b->first_index, b->count, b->bytes, b->file_off);
	if (b->reset)
		lcr_log_meta_reset_done(l, b->prev);
	lcr_log_meta_release(l, b->wid);
	lcr_log_pend_mark(l, PEND_BATCH, b->wid);
}

/* Whether a sealed batch waits to be issued (the next one after those issued). */
static bool sealed_waiting(struct lcr_log *l)
{
	return l->mb_issued < l->mb_n && lcr_log_mb_at(l, l->mb_issued)->state == MB_SEALED;
}

/*
 * The write of `b` (with its fdatasync) completed. Completions may come in
 * any order; a batch is durable only once it and every batch issued before
 * it completed, so only the oldest completed ones are made durable here, in
 * order, and a later batch that completed first waits for the earlier ones.
 * After a failure (l->err) nothing more is durable: a batch that completed
 * after an earlier one failed is on disk past a hole, and never reported.
 */
static void batch_completed(struct lcr_log *l, struct mbatch *b)
{
	LCR_ASSERT(b->state == MB_WRITING);
	LCR_ASSERT(!b->completed);
	b->completed = true;
	lcr_hist_add(&l->write_lat, mono_ns() - b->issued_ns);
	if (l->err)
		return;
	bool any = false;
	while (l->writing > 0) {
		struct mbatch *o = lcr_log_mb_at(l, l->mb_issued - l->writing);
		if (!o->completed)
			break;
		batch_durable(l, o);
		any = true;
	}
	if (!any)
		return;
	lcr_log_report(l);
	/* What accumulated while the writes were in flight goes out now. */
	if (!sealed_waiting(l))
		batch_seal(l);
	lcr_log_write_next(l);
	lcr_log_prep_kick(l); /* a paced spare preparation may go on */
}

static void batch_write_done(struct lcr_io_req *req, int res)
{
	struct mbatch *b = req->ctx;
	struct lcr_log *l = b->log;

	if (res < 0) {
		fprintf(stderr, "lcraft: writing batch %llu to %s failed: %s%s\n",
			(unsigned long long)b->batch_seq, l->dir, strerror(-res),
			res == -ENOSPC ? " (disk full)" : "");
		lcr_log_fail(l, res);
		return;
	}
	if (!lcr_log_needs_sync_op(l))
		batch_completed(l, b);
}

static void batch_sync_done(struct lcr_io_req *req, int res)
{
	struct mbatch *b = req->ctx;
	struct lcr_log *l = b->log;

	if (res == -ECANCELED && l->err)
		return; /* the write failed and said so */
	if (res < 0) {
		/* A failed fsync is never retried: the kernel may have dropped the
		 * dirty pages, so a retry could "succeed" without the data. */
		fprintf(stderr, "lcraft: fdatasync of %s failed: %s; the replica stops\n", l->dir,
			strerror(-res));
		lcr_log_fail(l, res);
		return;
	}
	l->st.syncs++;
	batch_completed(l, b);
}

/*
 * Issue the write of sealed batch `b`, the next in log order, at the next
 * offset of its segment; false when it must wait (the spare is not ready,
 * or the batch starts a new segment while writes are in flight).
 */
static bool batch_issue(struct lcr_log *l, struct mbatch *b)
{
	uint64_t span = lcr_log_mb_span(b);
	/*
	 * A segment switch is a barrier: the batches in flight are always in
	 * one segment, so a crash leaves its leftovers (a missing or torn batch
	 * with later ones intact after it) at the end of one segment, where
	 * recovery erases them (docs/storage-format.md, "Writes in flight"),
	 * and a segment is full (its location table fitted) only once every
	 * batch in it is durable.
	 */
	if (l->writing > 0 && !lcr_log_seg_fits(l, span, b->reset))
		return false;
	/* A reset starts a segment: recovery finds it there and begins with it. */
	struct seg *s = lcr_log_seg_for(l, span, b->reset);
	if (!s) {
		l->st.stalls++;
		return false; /* prep_step calls us again once the spare is ready */
	}
	/* Every batch starts on a unit of its own: no write covers a byte of an
	 * acknowledged batch (segs_start keeps segments of another alignment or
	 * version from being written to). */
	LCR_ASSERT(s->state == SEG_ACTIVE);
	LCR_ASSERT(s->version == LCR_SEG_VERSION && s->align == l->align);
	LCR_ASSERT(s->write_off % s->align == 0 && s->write_off >= LCR_BLOCK);
	LCR_ASSERT(s->write_off + span <= s->size);
	if (b->reset)
		LCR_ASSERT(s->write_off == LCR_BLOCK);
	LCR_ASSERT(b->aoff % l->align == 0 && b->aoff + span <= l->arena_bytes);
	struct lcr_batch_hdr h;
	memset(&h, 0, sizeof(h));
	h.magic = LCR_BATCH_MAGIC;
	h.version = LCR_SEG_VERSION;
	h.group = l->o.group;
	h.batch_seq = ++l->last_batch_seq;
	h.first_index = b->first_index;
	h.count = b->count;
	h.bytes = b->bytes;
	h.seg_nonce = s->nonce;
	if (b->reset) {
		LCR_ASSERT(b->prev.index + 1 == b->first_index);
		h.flags = LCR_BATCH_RESET;
		h.prev_term = b->prev.lid.term;
		h.prev_node = b->prev.lid.node;
	}
	h.crc = lcr_crc32c(0, (const char *)&h + 8, sizeof(h) - 8);
	uint8_t *buf = l->arena + b->aoff;
	memcpy(buf, &h, sizeof(h));
	/* Zero the padding: what follows a batch on disk must not look like data. */
	uint64_t used = sizeof(h) + b->bytes;
	memset(buf + used, 0, span - used);

	b->batch_seq = h.batch_seq;
	b->seg = s;
	b->file_off = s->write_off;
	s->write_off += span;
	s->batches++;
	s->batch_bytes += span;
	b->state = MB_WRITING;
	b->issued_ns = mono_ns();
	l->writing++;
	LCR_ASSERT(l->writing <= l->o.writes_max);
	l->mb_issued++;
	lcr_io_prep(&b->wreq, LCR_IO_WRITE, s->fd, buf, span, b->file_off, batch_write_done, b);
	if (l->arena_fixed)
		b->wreq.buf_index = (int16_t)l->arena_slot;
	b->wreq.dsync = lcr_log_write_dsync(l);
	if (lcr_log_needs_sync_op(l)) {
		lcr_io_prep(&b->sreq, LCR_IO_FDATASYNC, s->fd, NULL, 0, 0, batch_sync_done, b);
		lcr_ring_queue_linked(l->ring, &b->wreq, &b->sreq);
	} else {
		lcr_ring_queue(l->ring, &b->wreq);
	}
	return true;
}

/* Write the sealed batches, oldest first, while fewer than writes_max are in flight. */
void lcr_log_write_next(struct lcr_log *l)
{
	while (!l->err && l->writing < l->o.writes_max && sealed_waiting(l))
		if (!batch_issue(l, lcr_log_mb_at(l, l->mb_issued)))
			return;
}

/*
 * Group commit: while writes_max writes are in flight (or a sealed batch
 * waits for its turn), appends keep accumulating in the open batch; when a
 * write completes (batch_completed) everything gathered goes out as the next
 * write. So one write covers whatever arrived while the others were in
 * flight. With room for another write, the open batch goes out at once.
 */
void lcr_log_flush(struct lcr_log *l)
{
	LCR_ASSERT(l != NULL);
	if (l->err)
		return;
	if (l->writing < l->o.writes_max && !sealed_waiting(l))
		batch_seal(l);
	lcr_log_write_next(l);
}

/* An open batch that can take `rec` more bytes, or NULL (-ENOBUFS). */
static struct mbatch *batch_for(struct lcr_log *l, uint64_t index, uint32_t rec)
{
	struct mbatch *b = open_batch(l);

	if (b) {
		uint64_t total = sizeof(struct lcr_batch_hdr) + b->bytes + rec;
		bool fits_max = total <= l->o.batch_bytes_max || b->count == 0;
		if (fits_max && arena_room(l, b, rec) >= rec &&
		    lcr_align_up(total, LCR_BLOCK) <= l->o.segment_bytes - LCR_BLOCK)
			return b;
		b->state = MB_SEALED;
		lcr_log_write_next(l);
	}
	return batch_new(l, index, rec);
}

/*
 * Whether n entries surely fit: arena room for their records, a header and
 * a block of padding per batch they may need, plus slack for a batch that
 * cannot wrap around the arena's end; room in the durability queue; and
 * slots in the ring of batches (batches of 512 bytes outnumber the arena's
 * 4 KiB blocks, which the ring has one slot for).
 */
static bool append_fits(const struct lcr_log *l, const struct lcr_entry *e, uint32_t n)
{
	uint64_t total = 0;
	for (uint32_t i = 0; i < n; i++)
		total += lcr_rec_size(e[i].len);
	uint64_t batches = total / (l->o.batch_bytes_max / 2) + 2;
	uint64_t need = total + batches * (sizeof(struct lcr_batch_hdr) + LCR_BLOCK) +
			2 * ((uint64_t)l->o.batch_bytes_max + LCR_ENTRY_MAX + LCR_BLOCK);
	/* Each batch not yet written may also pad up to a block. */
	need += (uint64_t)l->unwritten_batches * LCR_BLOCK;
	return l->unwritten + need <= l->arena_bytes && l->pend_n + batches + 1 <= PEND_MAX &&
	       l->unwritten_batches + batches + 1 <= l->mb_cap;
}

int lcr_log_append(struct lcr_log *l, const struct lcr_entry *e, uint32_t n,
		   const struct lcr_io_id *io)
{
	LCR_ASSERT(l != NULL);
	LCR_ASSERT(io != NULL);
	LCR_ASSERT(n == 0 || e != NULL);
	if (l->err)
		return l->err;
	for (uint32_t i = 0; i < n; i++) {
		if (e[i].len > LCR_ENTRY_MAX || e[i].id.index != l->ids.last.index + 1 + i)
			return -EINVAL;
		/* The core drops anything above; recovery would refuse it. */
		LCR_ASSERT(e[i].id.index < LCR_NUMBER_MAX && e[i].id.lid.term < LCR_NUMBER_MAX);
		LCR_ASSERT(e[i].type >= LCR_ENTRY_BLANK && e[i].type <= LCR_ENTRY_MEMBERSHIP);
	}
	/* All or nothing: once the first entry is in, the rest must follow. */
	if (!append_fits(l, e, n))
		return -ENOBUFS;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t rec = lcr_rec_size(e[i].len);
		struct mbatch *b = batch_for(l, e[i].id.index, rec);
		/* append_fits made room for every batch and queue entry. */
		LCR_ASSERT(b != NULL);
		LCR_ASSERT(b->state == MB_OPEN);
		LCR_ASSERT(b->first_index + b->count == e[i].id.index);
		LCR_ASSERT(b->aoff + sizeof(struct lcr_batch_hdr) + b->bytes + rec <=
			   l->arena_bytes);
		LCR_ASSERT(lcr_log_pend_push(l, io, PEND_BATCH, b->wid) == 0);
		int rc = lcr_log_ids_append(&l->ids, e[i].id);
		if (rc < 0) {
			/* No memory for a new leader's run: a half-done command
			 * must not go on as if whole. */
			lcr_log_fail(l, rc);
			return rc;
		}
		uint8_t *p = l->arena + b->aoff + sizeof(struct lcr_batch_hdr) + b->bytes;
		struct lcr_rec_hdr r;
		memset(&r, 0, sizeof(r));
		r.len = e[i].len;
		r.index = e[i].id.index;
		r.term = e[i].id.lid.term;
		r.node = e[i].id.lid.node;
		r.type = (uint16_t)e[i].type;
		if (e[i].len > 0)
			memcpy(p + sizeof(r), e[i].data, e[i].len);
		memset(p + sizeof(r) + e[i].len, 0, rec - sizeof(r) - e[i].len);
		r.crc = lcr_crc32c(lcr_crc32c(0, (const char *)&r + 4, sizeof(r) - 4),
				   p + sizeof(r), e[i].len);
		memcpy(p, &r, sizeof(r));
		b->bytes += rec;
		b->count++;
		b->io = *io;
		b->has_io = true;
		l->unwritten += rec;
	}
	return 0;
}

int lcr_log_truncate(struct lcr_log *l, uint64_t after, const struct lcr_io_id *io)
{
	LCR_ASSERT(l != NULL);
	LCR_ASSERT(io != NULL);
	if (l->err)
		return l->err;
	if (after < l->ids.purged.index || after > l->ids.last.index)
		return -EINVAL;
	l->rd_valid = false;
	struct mbatch *b = open_batch(l);
	if (b && after + 1 < b->first_index) {
		/* Everything in the open batch goes; it now only truncates. */
		l->unwritten -= b->bytes;
		b->count = 0;
		b->bytes = 0;
		b->first_index = after + 1;
		memset(l->gc, 0, sizeof(l->gc));
	} else if (b && after + 1 < b->first_index + b->count) {
		uint32_t keep = (uint32_t)(after + 1 - b->first_index), off = 0;
		const uint8_t *p = l->arena + b->aoff + sizeof(struct lcr_batch_hdr);
		for (uint32_t i = 0; i < keep; i++) {
			struct lcr_rec_hdr r;
			memcpy(&r, p + off, sizeof(r));
			LCR_ASSERT(r.index == b->first_index + i);
			off += lcr_rec_size(r.len);
			LCR_ASSERT(off <= b->bytes);
		}
		l->unwritten -= b->bytes - off;
		b->count = keep;
		b->bytes = off;
		memset(l->gc, 0, sizeof(l->gc));
	} else {
		/* A batch that says: the log ends at `after`. */
		if (b)
			b->state = MB_SEALED;
		b = batch_new(l, after + 1, 0);
		if (!b) {
			lcr_log_fail(l, -ENOBUFS);
			return -ENOBUFS;
		}
	}
	if (lcr_log_pend_push(l, io, PEND_BATCH, b->wid) < 0) {
		lcr_log_fail(l, -ENOBUFS);
		return -ENOBUFS;
	}
	if (after < l->ids.last.index)
		lcr_log_ids_truncate(&l->ids, after + 1);
	b->io = *io;
	b->has_io = true;
	return 0;
}

/*
 * Install without the log: every entry goes, and the log restarts empty after
 * `last`. A reset batch says so on disk; it is the first batch of a fresh
 * segment, so that recovery can begin at it and the segments before it can
 * go whole. The open batch takes the reset when it is one already (two
 * installs in one iteration); else it is sealed as it is (what it holds is
 * dead, and it still carries earlier commands). Appends that follow join the
 * reset batch: one write says "restart after last, then these".
 */
static int install_reset(struct lcr_log *l, struct lcr_log_id last, const struct lcr_io_id *io)
{
	if (last.index < l->ids.purged.index)
		return -EINVAL; /* a snapshot older than what was purged */
	if (l->pend_n == PEND_MAX)
		return -ENOBUFS;
	struct mbatch *b = open_batch(l);
	if (b && b->reset) {
		l->unwritten -= b->bytes;
		b->count = 0;
		b->bytes = 0;
	} else {
		if (b)
			b->state = MB_SEALED;
		b = batch_new(l, last.index + 1, 0);
		if (!b)
			return -ENOBUFS;
		b->reset = true;
	}
	b->first_index = last.index + 1;
	b->prev = last;
	LCR_ASSERT(lcr_log_pend_push(l, io, PEND_BATCH, b->wid) == 0);
	b->io = *io;
	b->has_io = true;
	/* The log ids restart after `last` (what lcr_log_ids_reset does; the
	 * io module keeps to the ids' exported calls and fields). */
	l->ids.n = 0;
	l->ids.purged = last;
	l->ids.last = last;
	l->rd_valid = false;
	memset(l->gc, 0, sizeof(l->gc));
	lcr_log_write_next(l); /* the sealed batch before it, if any */
	return 0;
}

int lcr_log_install(struct lcr_log *l, struct lcr_log_id last, bool keep_log,
		    const struct lcr_io_id *io)
{
	LCR_ASSERT(l != NULL);
	LCR_ASSERT(io != NULL);
	/* The core drops anything above; recovery would refuse it. */
	LCR_ASSERT(last.index < LCR_NUMBER_MAX && last.lid.term < LCR_NUMBER_MAX);
	if (l->err)
		return l->err;
	if (keep_log)
		return lcr_log_meta_purge(l, last, io);
	return install_reset(l, last, io);
}

uint64_t lcr_log_wid_unwritten(const struct lcr_log *l)
{
	/* Batches become durable in order: if the newest is, every one is. */
	if (l->mb_n == 0)
		return 0;
	const struct mbatch *b = lcr_log_mb_at(l, l->mb_n - 1);
	return b->state == MB_DONE ? 0 : b->wid;
}

uint64_t lcr_log_space(const struct lcr_log *l)
{
	uint64_t unwritten = 0;
	/* Batches become durable in order, so the ones not yet durable are the
	 * newest few: walk back from the newest to the first durable one (not
	 * over the whole cache, once per proposal batch). */
	for (uint32_t i = l->mb_n; i > 0; i--) {
		const struct mbatch *b = &l->mb[(l->mb_head + i - 1) % l->mb_cap];
		if (b->state == MB_DONE)
			break;
		unwritten += lcr_log_mb_span(b);
	}
	return unwritten >= l->arena_bytes ? 0 : l->arena_bytes - unwritten;
}

bool lcr_log_busy(const struct lcr_log *l)
{
	if (l->writing > 0 || l->meta_inflight)
		return true;
	for (uint32_t i = 0; i < l->mb_n; i++)
		if (l->mb[(l->mb_head + i) % l->mb_cap].state == MB_SEALED)
			return true;
	return false;
}
