/* SPDX-License-Identifier: MIT */
/*
 * The meta slots of the log (meta.h): the vote and the purge point, one write
 * in flight, a newer state superseding the one waiting; a purge removes its
 * segments once its point is durable.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log_int.h"

static void meta_write(struct lcr_log *l);

static void meta_written(struct lcr_log *l)
{
	LCR_ASSERT(l->meta_inflight);
	LCR_ASSERT(l->meta_gen_inflight < l->meta_gen_next);
	l->meta_inflight = false;
	l->st.vote_writes++;
	lcr_log_pend_mark(l, PEND_META, l->meta_gen_inflight);
	lcr_log_report(l);
	if (l->purge_pending && l->meta_gen_inflight >= l->purge_gen) {
		/* The purge point is durable (this write, or a later one, carried
		 * it): the segments wholly before it can go. */
		uint64_t upto = l->purge_pending;
		l->purge_pending = 0;
		lcr_log_segs_purge(l, upto);
		if (l->err)
			return;
	}
	if (l->meta_dirty)
		meta_write(l);
}

static void meta_write_done(struct lcr_io_req *req, int res)
{
	struct lcr_log *l = req->ctx;
	if (res < 0) {
		fprintf(stderr, "lcraft: writing %s/meta failed: %s%s\n", l->dir, strerror(-res),
			res == -ENOSPC ? " (disk full)" : "");
		lcr_log_fail(l, res);
		return;
	}
	if (!lcr_log_needs_sync_op(l))
		meta_written(l);
}

static void meta_sync_done(struct lcr_io_req *req, int res)
{
	struct lcr_log *l = req->ctx;
	if (res == -ECANCELED && l->err)
		return;
	if (res < 0) {
		fprintf(stderr, "lcraft: fdatasync of %s/meta failed: %s; the replica stops\n",
			l->dir, strerror(-res));
		lcr_log_fail(l, res);
		return;
	}
	meta_written(l);
}

/* One meta write in flight; a newer state waits and supersedes older ones. */
static void meta_write(struct lcr_log *l)
{
	if (l->meta_inflight || !l->meta_dirty || l->err)
		return;
	l->meta_dirty = false;
	l->meta_inflight = true;
	l->meta_gen_inflight = l->meta_gen_next++;
	l->meta_seq++;
	lcr_meta_encode(l->meta_buf, l->o.group, l->meta_seq, &l->meta_st);
	uint64_t off = (l->meta_seq & 1) * LCR_META_SLOT;
	lcr_io_prep(&l->meta_w, LCR_IO_WRITE, l->meta_fd, l->meta_buf, LCR_META_SLOT, off,
		    meta_write_done, l);
	l->meta_w.dsync = lcr_log_write_dsync(l);
	if (lcr_log_needs_sync_op(l)) {
		lcr_io_prep(&l->meta_s, LCR_IO_FDATASYNC, l->meta_fd, NULL, 0, 0, meta_sync_done,
			    l);
		lcr_ring_queue_linked(l->ring, &l->meta_w, &l->meta_s);
	} else {
		lcr_ring_queue(l->ring, &l->meta_w);
	}
}

int lcr_log_save_vote(struct lcr_log *l, struct lcr_vote v, const struct lcr_io_id *io)
{
	LCR_ASSERT(l != NULL);
	LCR_ASSERT(io != NULL);
	LCR_ASSERT(v.lid.term < LCR_NUMBER_MAX); /* the core drops anything above */
	if (l->err)
		return l->err;
	if (lcr_log_pend_push(l, io, PEND_META, l->meta_gen_next) < 0)
		return -ENOBUFS;
	l->meta_st.vote = v;
	l->meta_dirty = true;
	meta_write(l);
	return 0;
}

/* Write the purge point `id` (newer than the one there), then remove what it covers. */
static void purge_point(struct lcr_log *l, struct lcr_log_id id)
{
	LCR_ASSERT(id.index > l->meta_st.purged.index);
	l->meta_st.purged = id;
	l->meta_dirty = true;
	l->purge_pending = id.index;
	l->purge_gen = l->meta_gen_next; /* the next write carries it */
	meta_write(l);
}

/*
 * Entries up to `id` are gone from the log ids now; the purge point goes to
 * the meta slots once every batch issued before it is durable (until then
 * it waits in purge_held: lcr_log_meta_release). Written earlier, a crash
 * could pair it with a log that lacks what those batches say: entries up to
 * it not yet written (recovery would find the log empty after it, though
 * the entries after it were asked for before), a truncation lost (entries
 * of an older leader would follow the purge point of a newer one), or a
 * reset lost (entries of the old log above it). The meta file and the
 * segments are written apart: only this order keeps what a crash leaves to
 * the state after some command.
 */
static void purge_to(struct lcr_log *l, struct lcr_log_id id)
{
	uint64_t wid = lcr_log_wid_unwritten(l);

	l->rd_valid = false;
	lcr_log_ids_purge(&l->ids, id);
	if (wid == 0) {
		LCR_ASSERT(l->purge_wait_wid == 0); /* released when its batch was */
		purge_point(l, id);
		return;
	}
	if (id.index > l->purge_held.index)
		l->purge_held = id;
	if (wid > l->purge_wait_wid)
		l->purge_wait_wid = wid;
}

void lcr_log_meta_release(struct lcr_log *l, uint64_t wid)
{
	struct lcr_log_id to = l->purge_held;

	if (l->purge_wait_wid == 0 || wid < l->purge_wait_wid)
		return;
	l->purge_wait_wid = 0;
	l->purge_held = lcr_log_id_none();
	/* The write that carries the purge point (or a newer one, a reset's,
	 * that superseded it) makes the installs that waited durable. */
	uint64_t gen = l->meta_gen_next;
	for (uint32_t i = 0; i < l->pend_n; i++) {
		struct pend *p = &l->pend[(l->pend_head + i) % PEND_MAX];
		if (p->kind == PEND_META && p->ref == PEND_REF_HELD)
			p->ref = gen;
	}
	if (to.index > l->meta_st.purged.index) {
		purge_point(l, to);
		return;
	}
	l->meta_dirty = true;
	meta_write(l);
}

void lcr_log_meta_reset_done(struct lcr_log *l, struct lcr_log_id prev)
{
	struct lcr_log_id to = l->meta_st.purged;

	if (prev.index > to.index)
		to = prev;
	/* Written even when not newer: its completion removes the segments
	 * before the reset, which nothing holds any more. */
	if (to.index > l->meta_st.purged.index) {
		purge_point(l, to);
		return;
	}
	l->meta_dirty = true;
	l->purge_pending = l->meta_st.purged.index;
	l->purge_gen = l->meta_gen_next;
	meta_write(l);
}

int lcr_log_meta_purge(struct lcr_log *l, struct lcr_log_id last, const struct lcr_io_id *io)
{
	if (l->pend_n == PEND_MAX)
		return -ENOBUFS;
	if (last.index > l->ids.purged.index) {
		if (last.index > l->ids.last.index || !lcr_log_ids_has(&l->ids, last))
			return -EINVAL; /* keep_log, but the log does not hold `last` */
		purge_to(l, last);
	}
	if (l->purge_wait_wid) {
		/* Durable with the meta write that carries the purge point
		 * (this one or one before it still waiting for its batches). */
		LCR_ASSERT(lcr_log_pend_push(l, io, PEND_META, PEND_REF_HELD) == 0);
		return 0;
	}
	/* Durable once the meta write after every earlier command is. */
	LCR_ASSERT(lcr_log_pend_push(l, io, PEND_META, l->meta_gen_next) == 0);
	l->meta_dirty = true;
	meta_write(l);
	return 0;
}

int lcr_log_purge(struct lcr_log *l, uint64_t upto)
{
	struct lcr_log_id id;

	if (l->err)
		return l->err;
	if (upto <= l->ids.purged.index)
		return 0;
	if (!lcr_log_ids_get(&l->ids, upto, &id))
		return -EINVAL;
	LCR_ASSERT(id.index == upto);
	purge_to(l, id);
	return 0;
}
