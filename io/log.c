/* SPDX-License-Identifier: MIT */
/*
 * The durable log of one group (see log.h for the model): options, open and
 * close, the sticky failure, the durability queue that reports "durable up to
 * io id" in io order, queries and stats. The other concerns have files of
 * their own (log_int.h lists them).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_int.h"

_Static_assert(LCR_LOG_RECYCLE_DEFAULT <= LCR_LOG_RECYCLE_MAX, "the default is allowed");
_Static_assert(LCR_LOG_WRITES_DEFAULT >= 1 && LCR_LOG_WRITES_DEFAULT <= LCR_LOG_WRITES_MAX,
	       "the default is allowed");

void lcr_log_opts_default(struct lcr_log_opts *o, const char *dir)
{
	memset(o, 0, sizeof(*o));
	o->dir = dir;
	o->segment_bytes = 64ull << 20;
	o->arena_bytes = 32ull << 20;
	o->batch_bytes_max = 0; /* LCR_LOG_BATCH_DEFAULT, or half a small segment */
	o->durability = LCR_DURABILITY_FSYNC;
	o->io_mode = LCR_IO_DIRECT_DSYNC;
	o->lock_wait_ms = 10000;
	o->prewrite = true;
	o->recycle_max = LCR_LOG_RECYCLE_DEFAULT;
	o->writes_max = 0; /* LCR_LOG_WRITES_DEFAULT */
}

/*
 * O_DIRECT, except in the buffered io mode and under durability none: nothing
 * waits for the device there, so a write to the page cache (microseconds) is
 * what "written" means, as docs/operations.md says of `none`.
 */
static bool direct(const struct lcr_log *l)
{
	return l->o.io_mode != LCR_IO_BUFFERED_FDATASYNC && l->o.durability != LCR_DURABILITY_NONE;
}

static int open_flags(const struct lcr_log *l)
{
	int f = O_RDWR | O_CLOEXEC;
	if (direct(l))
		f |= O_DIRECT;
	/* No O_DSYNC: the writes that must be durable by themselves say so
	 * (lcr_log_write_dsync); every other write is followed by an fsync. */
	return f;
}

/*
 * Open a file of the log. Filesystems without O_DIRECT (tmpfs) refuse it with
 * EINVAL: the log then switches to buffered writes with fdatasync, loudly.
 */
int lcr_log_open_file(struct lcr_log *l, const char *name, int extra)
{
	int fd = openat(l->dir_fd, name, open_flags(l) | extra, 0644);
	if (fd < 0 && errno == EINVAL && direct(l)) {
		fprintf(stderr,
			"lcraft: %s does not support O_DIRECT; using buffered writes + "
			"fdatasync\n",
			l->dir);
		l->o.io_mode = LCR_IO_BUFFERED_FDATASYNC;
		fd = openat(l->dir_fd, name, open_flags(l) | extra, 0644);
	}
	return fd;
}

/*
 * Take an exclusive lock on a file of the log, waiting up to lock_wait_ms. Two live
 * processes must never share a log; and after a SIGKILL, io_uring requests
 * of the dead process may still be writing for tens of milliseconds. They
 * hold the file open, so its lock is only free once they are done.
 */
int lcr_log_lock_file(struct lcr_log *l, int fd, const char *name, char *why, size_t why_len)
{
	for (uint32_t i = 0; i <= l->o.lock_wait_ms / 10; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			snprintf(why, why_len, "%s/%s: lock: %s", l->dir, name, strerror(errno));
			return -errno;
		}
		usleep(10000);
	}
	snprintf(why, why_len, "%s/%s is in use by another process", l->dir, name);
	return -EBUSY;
}

/* ---- failure and completions ------------------------------------------------------ */

void lcr_log_fail(struct lcr_log *l, int err)
{
	if (l->err)
		return;
	l->err = err < 0 ? err : -EIO;
	if (l->o.done && !l->err_reported) {
		l->err_reported = true;
		l->o.done(l->o.ctx, NULL, l->err);
	}
}

int lcr_log_pend_push(struct lcr_log *l, const struct lcr_io_id *io, uint8_t kind, uint64_t ref)
{
	LCR_ASSERT(kind == PEND_BATCH || kind == PEND_META);
	LCR_ASSERT(l->pend_n <= PEND_MAX);
	if (l->pend_n > 0) {
		struct pend *last = &l->pend[(l->pend_head + l->pend_n - 1) % PEND_MAX];
		/* Commands come in io order: reports are made in that order. */
		LCR_ASSERT(io->seq >= last->io.seq);
		/* Consecutive commands that ride the same write become one entry. */
		if (last->kind == kind && last->ref == ref && !last->done) {
			last->io = *io;
			return 0;
		}
	}
	if (l->pend_n == PEND_MAX)
		return -ENOBUFS;
	if (l->pend_n > 0) {
		/* One command split over two writes (an append that fills a batch):
		 * it is durable only when the last part is, so the earlier entry
		 * must not report it. */
		struct pend *last = &l->pend[(l->pend_head + l->pend_n - 1) % PEND_MAX];
		if (last->io.seq == io->seq)
			last->partial = true;
	}
	struct pend *p = &l->pend[(l->pend_head + l->pend_n) % PEND_MAX];
	p->io = *io;
	p->kind = kind;
	p->ref = ref;
	p->done = false;
	p->partial = false;
	l->pend_n++;
	return 0;
}

void lcr_log_pend_mark(struct lcr_log *l, uint8_t kind, uint64_t upto_ref)
{
	for (uint32_t i = 0; i < l->pend_n; i++) {
		struct pend *p = &l->pend[(l->pend_head + i) % PEND_MAX];
		if (p->kind == kind && p->ref <= upto_ref)
			p->done = true;
	}
}

/* Report the newest io id whose command and all earlier ones are durable. */
void lcr_log_report(struct lcr_log *l)
{
	struct lcr_io_id io;
	bool any = false;

	LCR_ASSERT(l->pend_n <= PEND_MAX);
	while (l->pend_n > 0 && l->pend[l->pend_head].done) {
		const struct pend *p = &l->pend[l->pend_head];
		if (any)
			LCR_ASSERT(p->io.seq >= io.seq);
		if (!p->partial) {
			io = p->io;
			any = true;
		}
		l->pend_head = (l->pend_head + 1) % PEND_MAX;
		l->pend_n--;
	}
	if (any && !l->err && l->o.done)
		l->o.done(l->o.ctx, &io, 0);
}

/* ---- open and close ---------------------------------------------------------------- */

static int check_opts(const struct lcr_log_opts *o, char *why, size_t why_len)
{
	if (!o->dir || !*o->dir) {
		snprintf(why, why_len, "log: no directory given");
		return -EINVAL;
	}
	if (o->segment_bytes % LCR_BLOCK || o->segment_bytes < 2 * LCR_ENTRY_MAX + 4 * LCR_BLOCK ||
	    o->segment_bytes > LCR_SEGMENT_BYTES_MAX) {
		snprintf(why, why_len,
			 "segment_bytes must be a multiple of 4096, at least %u and at most %llu",
			 2 * LCR_ENTRY_MAX + 4 * LCR_BLOCK,
			 (unsigned long long)LCR_SEGMENT_BYTES_MAX);
		return -EINVAL;
	}
	if (o->batch_bytes_max < 64 * 1024 || o->batch_bytes_max > o->segment_bytes / 2) {
		snprintf(why, why_len,
			 "batch_bytes_max must be between 64 KiB and segment_bytes/2");
		return -EINVAL;
	}
	if (o->arena_bytes % LCR_BLOCK ||
	    o->arena_bytes < 4ull * (o->batch_bytes_max + LCR_ENTRY_MAX + LCR_BLOCK)) {
		snprintf(
			why, why_len,
			"arena_bytes must be a multiple of 4096 and hold four batches and entries");
		return -EINVAL;
	}
	if (o->durability != LCR_DURABILITY_FSYNC && o->durability != LCR_DURABILITY_NONE) {
		snprintf(why, why_len, "durability must be fsync or none");
		return -EINVAL;
	}
	if (o->io_mode < LCR_IO_DIRECT_DSYNC || o->io_mode > LCR_IO_BUFFERED_FDATASYNC) {
		snprintf(why, why_len, "unknown io mode %u", o->io_mode);
		return -EINVAL;
	}
	if (o->segments_max == 1 || o->segments_max > LCR_LOG_SEGMENTS_MAX) {
		snprintf(why, why_len, "segments_max must be 0 (computed) or between 2 and %u",
			 LCR_LOG_SEGMENTS_MAX);
		return -EINVAL;
	}
	if (o->writes_max < 1 || o->writes_max > LCR_LOG_WRITES_MAX) {
		snprintf(why, why_len,
			 "writes_max must be 0 (the default, %u) or between 1 and %u (batch writes "
			 "in flight)",
			 LCR_LOG_WRITES_DEFAULT, LCR_LOG_WRITES_MAX);
		return -EINVAL;
	}
	if (o->recycle_max > LCR_LOG_RECYCLE_MAX) {
		snprintf(why, why_len,
			 "recycle_max must be at most %u (purged segments kept for reuse; 0: "
			 "none)",
			 LCR_LOG_RECYCLE_MAX);
		return -EINVAL;
	}
	return 0;
}

static void log_free(struct lcr_log *l)
{
	struct lcr_allocator alloc = l->o.alloc; /* it lives in *l */

	for (uint32_t i = 0; i < l->n_segs; i++)
		lcr_log_seg_free(l->segs[i]);
	lcr_log_seg_free(l->spare);
	for (uint32_t i = 0; i < l->n_free; i++)
		lcr_log_seg_free(l->free_segs[i]);
	lcr_log_free(l, l->segs);
	if (l->meta_fd >= 0)
		close(l->meta_fd);
	if (l->dir_fd >= 0)
		close(l->dir_fd);
	lcr_log_ids_free(&l->ids);
	if (l->arena_fixed)
		lcr_ring_buffer_remove(l->ring, l->arena_slot);
	lcr_log_free_blocks(l, l->arena);
	lcr_log_free(l, l->mb);
	lcr_log_free(l, l->pend);
	lcr_log_free_blocks(l, l->zero);
	lcr_log_free_blocks(l, l->scratch);
	lcr_log_fetch_free(l);
	lcr_log_free_blocks(l, l->hdr_buf);
	lcr_log_free_blocks(l, l->meta_buf);
	lcr_log_free(l, l->dir);
	lcr_allocator_free(&alloc, l);
}

int lcr_log_open(struct lcr_log **out, struct lcr_ring *ring, const struct lcr_log_opts *o,
		 char *why, size_t why_len)
{
	LCR_ASSERT(out != NULL);
	LCR_ASSERT(ring != NULL);
	LCR_ASSERT(o != NULL);
	LCR_ASSERT(why != NULL && why_len > 0);
	struct lcr_log_opts eff = *o;
	if (eff.batch_bytes_max == 0)
		eff.batch_bytes_max = eff.segment_bytes / 2 < LCR_LOG_BATCH_DEFAULT
					      ? (uint32_t)(eff.segment_bytes / 2)
					      : LCR_LOG_BATCH_DEFAULT;
	if (eff.writes_max == 0)
		eff.writes_max = LCR_LOG_WRITES_DEFAULT;
	o = &eff;
	int rc = check_opts(o, why, why_len);
	if (rc < 0)
		return rc;
	struct lcr_log *l = lcr_allocator_zalloc(&o->alloc, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->o = *o;
	/* Zeros written ahead spare an O_DIRECT write with its flush the extent
	 * conversion; with durability none nothing is flushed or direct. */
	if (l->o.durability == LCR_DURABILITY_NONE)
		l->o.prewrite = false;
	l->ring = ring;
	l->meta_fd = -1;
	l->dir_fd = -1;
	size_t dir_len = strlen(o->dir) + 1;
	l->dir = lcr_log_zalloc(l, dir_len);
	if (l->dir)
		memcpy(l->dir, o->dir, dir_len);
	l->o.dir = l->dir; /* the caller's string need not outlive the open */
	l->arena_bytes = o->arena_bytes;
	l->mb_cap = (uint32_t)(o->arena_bytes / LCR_BLOCK);
	l->scratch_bytes = lcr_align_up(o->batch_bytes_max + LCR_ENTRY_MAX, LCR_BLOCK) + LCR_BLOCK;
	l->zero = lcr_log_zalloc_blocks(l, ZERO_CHUNK);
	l->hdr_buf = lcr_log_zalloc_blocks(l, LCR_BLOCK);
	l->meta_buf = lcr_log_zalloc_blocks(l, LCR_META_SLOT);
	l->scratch = lcr_log_zalloc_blocks(l, l->scratch_bytes);
	l->arena = lcr_log_zalloc_blocks(l, o->arena_bytes);
	l->mb = lcr_log_zalloc(l, l->mb_cap * sizeof(*l->mb));
	l->pend = lcr_log_zalloc(l, PEND_MAX * sizeof(*l->pend));
	if (!l->dir || !l->zero || !l->hdr_buf || !l->meta_buf || !l->scratch || !l->arena ||
	    !l->mb || !l->pend) {
		rc = -ENOMEM;
		goto fail;
	}
	if (mkdir(o->dir, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(why, why_len, "%s: %s", o->dir, strerror(errno));
		goto fail;
	}
	l->dir_fd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dir_fd < 0) {
		rc = -errno;
		snprintf(why, why_len, "%s: %s", o->dir, strerror(errno));
		goto fail;
	}
	if ((rc = lcr_log_recover(l, why, why_len)) < 0)
		goto fail;
	if ((rc = lcr_log_segs_start(l, why, why_len)) < 0)
		goto fail;
	if ((rc = lcr_log_fetch_init(l)) < 0)
		goto fail;
	if (o->durability == LCR_DURABILITY_NONE)
		fprintf(stderr,
			"lcraft: WARNING: %s: durability 'none': acknowledged writes are NOT "
			"on stable storage and a crash can lose them (benchmarks only)\n",
			o->dir);
	LCR_ASSERT(l->n_segs >= 1 && l->n_segs <= l->segs_max);
	LCR_ASSERT(l->segs[l->n_segs - 1]->state == SEG_ACTIVE);
	/* Registered, the arena's pages are pinned once, not at every batch
	 * write (an 800 KiB write pinned 200 pages: about 30 us of its submit).
	 * Without a free slot or the memlock limit for it, writes stay plain. */
	int slot = lcr_ring_buffer_add(ring, l->arena, l->arena_bytes);
	if (slot >= 0) {
		l->arena_fixed = true;
		l->arena_slot = slot;
	}
	lcr_log_spare_start(l);
	*out = l;
	return 0;
fail:
	log_free(l);
	return rc;
}

/* Any request of this log that the kernel may still complete. */
static bool reqs_busy(const struct lcr_log *l)
{
	if (lcr_io_busy(&l->meta_w) || lcr_io_busy(&l->meta_s) || lcr_log_fetch_busy(l))
		return true;
	for (uint32_t i = 0; i < l->mb_cap; i++)
		if (lcr_io_busy(&l->mb[i].wreq) || lcr_io_busy(&l->mb[i].sreq))
			return true;
	const struct seg *s = l->spare;
	if (s) {
		if (lcr_io_busy(&s->prep_one))
			return true;
		for (uint32_t i = 0; i < PREP_PAR; i++)
			if (lcr_io_busy(&s->prep[i]))
				return true;
	}
	return false;
}

void lcr_log_close(struct lcr_log *l)
{
	if (!l)
		return;
	/* Let writes in flight finish: their buffers and requests live here. */
	for (int i = 0; i < 100000; i++) {
		bool busy = l->writing > 0 || l->meta_inflight ||
			    (l->spare && l->spare->state == SEG_PREPARING);
		if (l->err && !l->ring->in_flight && !l->ring->ov_head)
			break;
		if (!busy && !l->ring->ov_head)
			break;
		lcr_ring_submit(l->ring);
		lcr_ring_wait(l->ring, 10 * 1000 * 1000);
	}
	/* Stale completions (of requests resent after a short write or EAGAIN)
	 * still name our requests: wait for them before freeing. */
	for (int i = 0; i < 100000 && reqs_busy(l); i++) {
		lcr_ring_submit(l->ring);
		lcr_ring_wait(l->ring, 10 * 1000 * 1000);
	}
	/* A spare that never finished preparing is removed; recovery would too. */
	if (l->spare && l->spare->state != SEG_SPARE) {
		char name[64];
		lcr_log_seg_name(name, sizeof(name), l->spare->no);
		unlinkat(l->dir_fd, name, 0);
		if (l->spare->recycled)
			unlinkat(l->dir_fd, l->spare->free_name, 0);
	}
	log_free(l);
}

/* ---- queries --------------------------------------------------------------------- */

void lcr_log_recovered(const struct lcr_log *l, struct lcr_log_recovery *out)
{
	out->vote = l->meta_st.vote;
	out->committed = l->meta_st.committed;
	out->purged = l->ids.purged;
}

struct lcr_log_id lcr_log_last(const struct lcr_log *l)
{
	return l->ids.last;
}

uint64_t lcr_log_first_index(const struct lcr_log *l)
{
	return l->ids.purged.index + 1;
}

bool lcr_log_id_at(const struct lcr_log *l, uint64_t index, struct lcr_log_id *out)
{
	return lcr_log_ids_get(&l->ids, index, out);
}

int lcr_log_memberships(const struct lcr_log *l, const uint64_t **idx, uint32_t *n)
{
	*idx = l->mship;
	*n = l->n_mship;
	return l->mship_over ? -E2BIG : 0;
}

int lcr_log_error(const struct lcr_log *l)
{
	return l->err;
}

const struct lcr_hist *lcr_log_write_latency(const struct lcr_log *l)
{
	return &l->write_lat;
}

void lcr_log_stats(const struct lcr_log *l, struct lcr_log_stats *st)
{
	*st = l->st;
}
