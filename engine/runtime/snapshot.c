/* SPDX-License-Identifier: MIT */
/*
 * A group's snapshots in the runtime (runtime_int.h): building one when the
 * core asks (LCR_CMD_BUILD_SNAPSHOT), a bounded piece per loop iteration so
 * that a large state never holds the lcore past a heartbeat; purging the log
 * behind a durable snapshot (LCR_CMD_PURGE); and restoring the newest one
 * when a group opens.
 *
 * A build, as openraft's snapshot builder (openraft-reference.md, "Snapshot"):
 * the state machine freezes its state as applied so far and hands a cursor on
 * it (lcr_sm_ops.snapshot_open); apply() goes on meanwhile. Each iteration
 * reads up to LCR_SNAP_CHUNK bytes from the cursor and hands them to the
 * snapshot writer (io/snap.h), whose two staging buffers are written through
 * the lcore's ring; -EAGAIN (both in flight) waits for the next iteration.
 * At the end the writer commits (header, fsync, rename, fsync of the folder)
 * and only then does the core hear LCR_EV_SNAPSHOT_BUILT: it purges the log
 * only behind a snapshot that is durable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runtime_int.h"

/* meta.id: this node's id above the build's number (unique on the node). */
#define SNAP_SEQ_BITS 40
#define SNAP_SEQ_MASK ((1ull << SNAP_SEQ_BITS) - 1)

static bool writer_idle(const struct lcr_snap_writer *w)
{
	return !w->busy[0] && !w->busy[1] && !w->req.in_flight;
}

/* Release the cursor; the writer too once nothing of it is in flight. */
static void build_release(struct lcr_group *g)
{
	struct lcr_rt_snap *s = &g->snap;

	if (s->cursor) {
		g->ops.snapshot_close(g->sm, s->cursor);
		s->cursor = NULL;
	}
	if (s->writer_open && writer_idle(&s->w)) {
		lcr_snap_writer_free(&s->w);
		s->writer_open = false;
	}
}

/*
 * The build ended (err 0: durable): the next progress call releases the
 * cursor and the writer and reports (never from inside the writer's own
 * completion, which the ring is still running).
 */
static void build_end(struct lcr_group *g, int err)
{
	struct lcr_rt_snap *s = &g->snap;

	LCR_ASSERT(s->building);
	LCR_ASSERT(err <= 0);
	s->err = err;
	s->report = true;
}

static void build_committed(void *ctx, int err)
{
	struct lcr_group *g = ctx;

	LCR_ASSERT(g->snap.committing);
	if (err == 0)
		LCR_ASSERT(g->snap.w.meta.size == g->snap.bytes);
	build_end(g, err);
}

void lcr_rt_snap_build(struct lcr_group *g)
{
	struct lcr_rt_snap *s = &g->snap;
	struct lcore *lc = g->lc;
	int err = 0;

	/* The core asks for one at a time, and again only after the report. */
	LCR_ASSERT(!s->building);
	LCR_ASSERT(!s->report);
	s->building = true;
	lc->building++;
	s->committing = s->eof = false;
	s->err = 0;
	s->len = s->off = 0;
	s->bytes = 0;
	s->started_ns = lc->now;
	/* The state machine has applied every entry up to applied_id: its
	 * cursor freezes exactly that state. */
	s->meta.last = g->applied_id;
	s->membership = g->applied_m;
	s->meta.id = ((uint64_t)g->node->cfg.id << SNAP_SEQ_BITS) | (++s->seq & SNAP_SEQ_MASK);
	if (!g->ops.snapshot_open || !s->buf) {
		build_end(g, -ENOTSUP);
		return;
	}
	s->cursor = g->ops.snapshot_open(g->sm, &err);
	if (!s->cursor) {
		build_end(g, err < 0 ? err : -EIO);
		return;
	}
	err = lcr_snap_begin(&s->w, &lc->ring, s->dir, LCR_RT_SNAP_BUILD_TMP, g->id,
			     g->node->cfg.alloc);
	if (err < 0) {
		fprintf(stderr, "lcraft: group %u: cannot start a snapshot in %s: %s\n", g->id,
			s->dir, strerror(-err));
		build_end(g, err);
		return;
	}
	s->writer_open = true;
	/* The header carries the membership at meta.last (the core's
	 * lcr_mship_at, checked against it in build_report). */
	err = lcr_rt_mship_to_writer(&s->w, &s->membership);
	LCR_ASSERT(err == 0);
}

/* Step the report; the core may ask for the next build from here on. */
static void build_report(struct lcr_group *g)
{
	struct lcr_rt_snap *s = &g->snap;
	struct lcr_event ev = { .type = LCR_EV_SNAPSHOT_BUILT };

	s->report = false;
	s->building = false;
	LCR_ASSERT(g->lc->building > 0);
	g->lc->building--;
	if (s->err == 0) {
		uint64_t ns = g->lc->now - s->started_ns;
		s->bytes_last = s->bytes;
		s->bytes_total += s->bytes;
		s->build_ns_last = ns;
		if (ns > s->build_ns_max)
			s->build_ns_max = ns;
	} else if (s->err != -ENOTSUP) {
		fprintf(stderr, "lcraft: group %u: snapshot at %llu in %s failed: %s\n", g->id,
			(unsigned long long)s->meta.last.index, s->dir, lcr_strerror(s->err));
	}
	ev.snapshot.meta = s->meta;
	ev.snapshot.err = s->err;
	lcr_rt_step(g, &ev);
	if (s->err != 0)
		return;
	/* Paired with the header written: the core took the snapshot with the
	 * membership it knows at meta.last, which must be the one applied. */
	struct lcr_core_status st;
	lcr_core_status(g->core, &st);
	if (lcr_log_id_eq(st.snapshot.last, s->meta.last) && st.snapshot.id == s->meta.id)
		LCR_ASSERT(lcr_rt_mship_same(&st.snapshot_membership, &s->membership));
}

/* Read the next piece from the cursor: up to LCR_SNAP_CHUNK bytes. */
static int build_fill(struct lcr_group *g)
{
	struct lcr_rt_snap *s = &g->snap;

	LCR_ASSERT(s->off == s->len);
	s->len = s->off = 0;
	while (s->len < LCR_SNAP_CHUNK) {
		long n = g->ops.snapshot_read(g->sm, s->cursor, s->buf + s->len,
					      LCR_SNAP_CHUNK - s->len);
		if (n < 0)
			return (int)n;
		LCR_ASSERT((unsigned long)n <= LCR_SNAP_CHUNK - s->len);
		if (n == 0) {
			s->eof = true;
			break;
		}
		s->len += (uint32_t)n;
	}
	s->bytes += s->len;
	return 0;
}

/* The build's next piece, or its report. True if it did anything. */
static bool build_progress(struct lcr_group *g)
{
	struct lcr_rt_snap *s = &g->snap;
	int rc;

	if (lcr_unlikely(s->report)) {
		/* A failed writer is freed once its last write came back. */
		if (s->writer_open && !writer_idle(&s->w))
			return false;
		build_release(g);
		build_report(g);
		return true;
	}
	if (!s->building || s->committing)
		return false;
	if (s->off == s->len && !s->eof) {
		if ((rc = build_fill(g)) < 0) {
			build_end(g, rc);
			return true;
		}
	}
	if (s->off < s->len) {
		rc = lcr_snap_write(&s->w, s->buf + s->off, s->len - s->off);
		if (rc == -EAGAIN)
			return false; /* both buffers in flight: their completion wakes us */
		if (rc < 0) {
			build_end(g, rc);
			return true;
		}
		s->off += (uint32_t)rc;
		LCR_ASSERT(s->off <= s->len);
	}
	if (s->eof && s->off == s->len) {
		/* Every byte is with the writer: make it durable, then report. */
		s->committing = true;
		rc = lcr_snap_commit(&s->w, &s->meta, build_committed, g);
		if (rc < 0)
			build_end(g, rc);
	}
	return true;
}

bool lcr_rt_snap_progress(struct lcr_group *g)
{
	bool xfer = lcr_rt_xfer_progress(g);
	bool build = build_progress(g);
	return xfer || build;
}

void lcr_rt_snap_iteration(struct lcore *lc, uint64_t ns, uint64_t cpu_ns)
{
	for (uint32_t i = 0; i < lc->n_groups; i++) {
		struct lcr_rt_snap *s = &lc->groups[i]->snap;
		if (s->building && ns > s->iter_max_ns)
			s->iter_max_ns = ns;
		if (s->building && cpu_ns > s->iter_cpu_max_ns)
			s->iter_cpu_max_ns = cpu_ns;
		if ((s->inst.active || s->inst.tail) && ns > s->inst.iter_max_ns)
			s->inst.iter_max_ns = ns;
		if ((s->inst.active || s->inst.tail) && cpu_ns > s->inst.iter_cpu_max_ns)
			s->inst.iter_cpu_max_ns = cpu_ns;
		if (s->inst.tail) {
			/* The install's last iteration: no longer timed after it. */
			s->inst.tail = false;
			LCR_ASSERT(lc->building > 0);
			lc->building--;
		}
	}
}

void lcr_rt_snap_purge(struct lcr_group *g, struct lcr_log_id upto)
{
	/* The core purges only behind a durable snapshot. */
	LCR_ASSERT(upto.index > 0);
	int rc = lcr_log_purge(g->log, upto.index);
	if (rc < 0) {
		/* Not fatal: the log keeps more than it needs, and the next
		 * purge tries again. */
		g->snap.purge_errors++;
		fprintf(stderr, "lcraft: group %u: purge up to %llu failed: %s\n", g->id,
			(unsigned long long)upto.index, strerror(-rc));
	}
}

/* ---- restoring at open ---------------------------------------------------------- */

struct restore_wait {
	bool done;
	int err;
};

static void restore_read(void *ctx, int err)
{
	struct restore_wait *rw = ctx;
	rw->done = true;
	rw->err = err;
}

/* Feed the snapshot's bytes to the state machine, chunk by chunk. */
static int restore_feed(struct lcr_group *g, struct lcr_snap_reader *r, char *why, size_t why_len)
{
	for (;;) {
		struct restore_wait rw = { false, 0 };
		int rc = lcr_snap_read_next(r, restore_read, &rw);
		while (rc == 0 && !rw.done)
			lcr_ring_wait(&g->lc->ring, 100000000ull);
		if (rc == 0)
			rc = rw.err;
		if (rc < 0) {
			snprintf(why, why_len,
				 "group %u: the snapshot %s/%s (last index %llu) is damaged in "
				 "its data at byte %llu of %llu (the 1 MiB chunk from there): %s",
				 g->id, g->snap.dir, r->name,
				 (unsigned long long)r->meta.last.index,
				 (unsigned long long)r->next, (unsigned long long)r->meta.size,
				 rc == -EBADMSG ? "checksum mismatch" : strerror(-rc));
			return rc;
		}
		if (r->got == 0)
			return 0;
		if ((rc = g->ops.restore_chunk(g->sm, r->buf, r->got)) < 0) {
			snprintf(why, why_len,
				 "group %u: the state machine refused the snapshot at %llu (byte "
				 "%llu): %s",
				 g->id, (unsigned long long)r->meta.last.index,
				 (unsigned long long)r->next, strerror(-rc));
			return rc;
		}
		g->snap.restored_bytes += r->got;
	}
}

int lcr_rt_snap_restore(struct lcr_group *g, struct lcr_snapshot_meta *meta,
			struct lcr_membership *m, char *why, size_t why_len)
{
	struct lcr_rt_snap *s = &g->snap;
	char rx[4096];

	/* No writer is live yet: what writers left is garbage (never renamed,
	 * so never acknowledged), and so is a received snapshot the core never
	 * judged. */
	snprintf(rx, sizeof(rx), "%s/recv", s->dir);
	lcr_snap_remove_leftovers(s->dir);
	lcr_snap_remove_leftovers(rx);
	lcr_rt_xfer_remove_received(g);
	int rc = lcr_rt_snap_restore_from(g, s->dir, meta, m, why, why_len);
	if (rc < 0)
		return rc;
	/* Our own builds go on numbering after the restored one, so that an id
	 * names one snapshot of this node across restarts. */
	if (meta->id >> SNAP_SEQ_BITS == g->node->cfg.id && (meta->id & SNAP_SEQ_MASK) > s->seq)
		s->seq = meta->id & SNAP_SEQ_MASK;
	return 0;
}

int lcr_rt_snap_restore_from(struct lcr_group *g, const char *dir, struct lcr_snapshot_meta *meta,
			     struct lcr_membership *m, char *why, size_t why_len)
{
	struct lcr_snap_reader r;
	char err[512] = "";
	int rc;

	memset(meta, 0, sizeof(*meta));
	memset(m, 0, sizeof(*m));
	rc = lcr_snap_open(&r, &g->lc->ring, dir, g->id, g->node->cfg.alloc, err, sizeof(err));
	if (rc < 0) {
		snprintf(why, why_len, "group %u: cannot open its newest snapshot: %s", g->id,
			 err[0] ? err : strerror(-rc));
		return rc;
	}
	if (rc == 0)
		return 0;
	if (!g->ops.restore_begin) {
		snprintf(why, why_len,
			 "group %u: %s holds a snapshot (at %llu) but the state machine has no "
			 "snapshot hooks to restore it",
			 g->id, dir, (unsigned long long)r.meta.last.index);
		lcr_snap_reader_close(&r);
		return -ENOTSUP;
	}
	/* The membership at its last entry: the core starts from it. */
	if (lcr_rt_mship_of_snap(&r.meta, m) < 0) {
		snprintf(why, why_len,
			 "group %u: the snapshot in %s at %llu holds a membership (%u bytes) that "
			 "does not decode",
			 g->id, dir, (unsigned long long)r.meta.last.index, r.meta.membership_len);
		lcr_snap_reader_close(&r);
		return -EBADMSG;
	}
	meta->last = r.meta.last;
	meta->id = r.meta.id;
	if ((rc = g->ops.restore_begin(g->sm, meta)) < 0) {
		snprintf(why, why_len,
			 "group %u: the state machine refused the snapshot at %llu: %s", g->id,
			 (unsigned long long)meta->last.index, strerror(-rc));
		lcr_snap_reader_close(&r);
		return rc;
	}
	rc = restore_feed(g, &r, why, why_len);
	lcr_snap_reader_close(&r);
	if (rc < 0)
		return rc;
	if ((rc = g->ops.restore_end(g->sm)) < 0) {
		snprintf(why, why_len,
			 "group %u: the state machine refused the snapshot at %llu: %s", g->id,
			 (unsigned long long)meta->last.index, strerror(-rc));
		return rc;
	}
	return 1;
}

void lcr_rt_snap_close(struct lcr_group *g)
{
	struct lcr_rt_snap *s = &g->snap;

	lcr_rt_xfer_free(g);
	if (s->cursor) {
		g->ops.snapshot_close(g->sm, s->cursor);
		s->cursor = NULL;
	}
	/* Writes in flight point into the writer's buffers: wait for them. */
	while (s->writer_open && !writer_idle(&s->w))
		lcr_ring_wait(&g->lc->ring, 100000000ull);
	if (s->writer_open) {
		lcr_snap_writer_free(&s->w);
		s->writer_open = false;
	}
	if (s->building) {
		LCR_ASSERT(g->lc->building > 0);
		g->lc->building--;
		s->building = false;
	}
}
