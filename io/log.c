/* SPDX-License-Identifier: MIT */
/*
 * The durable log of one group (see log.h for the model). Layout of this file:
 *   helpers and state            segments, in-memory batches, durability queue
 *   completions                  reporting "durable up to io id" in order
 *   segments                     preparation (async), activation, purge
 *   batches                      arena, append, truncate, seal, write
 *   meta                         vote/meta slot writes
 *   recovery                     open
 *   reads                        cache and disk
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "lcr_assert.h"
#include "log_ids.h"
#include "log.h"
#include "log_format.h"
#include "meta.h"
#include "scan.h"

#define GET_CURSORS 8 /* readers of cached entries at once (see struct lcr_log) */

#define PREP_PAR       4	   /* zero writes in flight while preparing a segment */
#define ZERO_CHUNK     (1u << 20)  /* bytes per zero write */
#define PEND_MAX       4096	   /* durability queue entries */
#define PREWRITE_BELOW (64u << 10) /* mean write size under which segments are pre-written */

enum { SEG_PREPARING = 1, SEG_SPARE, SEG_ACTIVE, SEG_FULL };
enum { MB_OPEN = 1, MB_SEALED, MB_WRITING, MB_DONE };
enum { PEND_BATCH = 1, PEND_META };

/* A durable batch's place on disk (its live records only). */
struct loc {
	uint64_t first_index;
	uint32_t count;
	uint32_t bytes;
	uint64_t file_off;
};

struct seg {
	uint64_t no;
	int fd;
	uint64_t size;
	uint64_t write_off; /* where the next batch goes */
	uint32_t state;
	struct loc *locs; /* live batches, in log order */
	uint32_t n_locs, cap_locs;
	/* Preparation. */
	struct lcr_log *log;
	uint64_t prep_off;
	uint32_t prep_inflight;
	uint32_t prep_stage;
	int prep_err;
	bool prewrite;	  /* this segment gets zeros written before use */
	uint64_t batches; /* written into it, and their bytes: the write size */
	uint64_t batch_bytes;
	struct lcr_io_req prep[PREP_PAR];
	struct lcr_io_req prep_one;
};

/* A batch with its buffer in the arena: open, sealed, being written, or cached. */
struct mbatch {
	uint32_t state;
	uint64_t wid; /* unique id of this batch in this process */
	uint64_t first_index;
	uint32_t count;
	uint32_t bytes;	     /* record bytes */
	uint64_t aoff;	     /* arena offset of the header */
	struct lcr_io_id io; /* newest storage command it carries */
	bool has_io;
	struct seg *seg;
	uint64_t file_off;
	uint64_t batch_seq;
	uint64_t issued_ns; /* when its write went to the ring */
	struct lcr_log *log;
	struct lcr_io_req wreq, sreq;
};

struct pend {
	struct lcr_io_id io;
	uint8_t kind;
	bool done;
	bool partial; /* the command of `io` continues in the next entry: not reportable */
	uint64_t ref; /* batch wid, or meta write generation */
};

struct lcr_log {
	struct lcr_log_opts o;
	char *dir;
	int dir_fd;
	struct lcr_ring *ring;
	int err; /* sticky */
	bool err_reported;

	/* The accepted log: ids of live entries (what the core sees). */
	struct lcr_log_ids ids;

	/* Segments, oldest first; the last one is active. */
	struct seg **segs;
	uint32_t n_segs, cap_segs;
	struct seg *spare;
	int spare_err; /* preparing the spare failed: fatal once a batch needs it */
	bool spare_retried;
	uint64_t next_seg_no;
	uint64_t last_batch_seq;

	/* Arena of batch buffers, registered with the ring when possible. */
	uint8_t *arena;
	uint64_t arena_bytes;
	bool arena_fixed;
	struct mbatch *mb; /* ring of batches, oldest at mb_head */
	uint32_t mb_cap, mb_head, mb_n;
	uint64_t next_wid;
	bool writing;	    /* one batch write in flight */
	uint32_t mb_issued; /* batches from mb_head whose write was issued (in order) */
	uint32_t unwritten_batches;
	uint64_t unwritten; /* arena bytes of batches not yet durable (headers included) */

	/* Durability queue in io order. */
	struct pend *pend;
	uint32_t pend_head, pend_n;

	/* Meta slots. */
	int meta_fd;
	void *meta_buf;
	struct lcr_meta_state meta_st;
	uint64_t meta_seq;
	uint64_t meta_gen_next, meta_gen_inflight;
	bool meta_inflight, meta_dirty;
	struct lcr_io_req meta_w, meta_s;
	uint64_t purge_pending; /* unlink segments up to this index after the meta write */

	void *zero;    /* ZERO_CHUNK aligned zeros */
	void *scratch; /* for disk reads: batch_bytes_max + a block */
	uint64_t scratch_bytes;
	/*
	 * Disk reads (lcr_log_read) go through scratch: it holds bytes
	 * [rd_off, rd_off + rd_len) of segment rd_seg, read ahead over the
	 * batches that follow, so reading a range in order costs one pread
	 * per scratch-full, not one per entry. The cursor is in the batch at
	 * cur_off (its header verified): record cur_i at byte cur_pos, entries
	 * [cur_lo, cur_hi) readable. Dropped by whatever may rewrite or remove
	 * those bytes (truncate, purge).
	 */
	bool rd_valid;
	uint64_t rd_seg, rd_off, rd_len;
	/*
	 * Cursors into cached batches for lcr_log_get(): records have variable
	 * sizes, so finding record i means walking from one before it. Each
	 * reader in order (apply, the stream to each follower) keeps moving
	 * its own cursor; a reader that jumps starts another (round robin).
	 */
	struct get_cursor {
		uint64_t wid; /* the batch (0: unused) */
		uint32_t i;   /* record number in it ... */
		uint32_t off; /* ... and its offset after the batch header */
	} gc[GET_CURSORS];
	uint32_t gc_next;
	uint64_t cur_off, cur_first, cur_lo, cur_hi;
	uint32_t cur_i, cur_pos;
	void *hdr_buf; /* one block for segment headers */

	struct lcr_log_stats st;
	struct lcr_hist write_lat; /* batch write (+ fdatasync), issue to completion */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void lcr_log_opts_default(struct lcr_log_opts *o, const char *dir)
{
	memset(o, 0, sizeof(*o));
	o->dir = dir;
	o->segment_bytes = 64ull << 20;
	o->arena_bytes = 32ull << 20;
	o->batch_bytes_max = 1u << 20;
	o->durability = LCR_DURABILITY_FSYNC;
	o->io_mode = LCR_IO_DIRECT_DSYNC;
	o->lock_wait_ms = 10000;
	o->prewrite = true;
}

static void *xalloc_aligned(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, LCR_BLOCK, lcr_align_up(n, LCR_BLOCK)))
		return NULL;
	memset(p, 0, lcr_align_up(n, LCR_BLOCK));
	return p;
}

static bool direct(const struct lcr_log *l)
{
	return l->o.io_mode != LCR_IO_BUFFERED_FDATASYNC;
}

static bool needs_sync_op(const struct lcr_log *l)
{
	return l->o.durability == LCR_DURABILITY_FSYNC && l->o.io_mode != LCR_IO_DIRECT_DSYNC;
}

static int open_flags(const struct lcr_log *l)
{
	int f = O_RDWR | O_CLOEXEC;
	if (direct(l))
		f |= O_DIRECT;
	if (l->o.durability == LCR_DURABILITY_FSYNC && l->o.io_mode == LCR_IO_DIRECT_DSYNC)
		f |= O_DSYNC;
	return f;
}

/*
 * Open a file of the log. Filesystems without O_DIRECT (tmpfs) refuse it with
 * EINVAL: the log then switches to buffered writes with fdatasync, loudly.
 */
static int open_file(struct lcr_log *l, const char *name, int extra)
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
static int lock_file(struct lcr_log *l, int fd, const char *name, char *why, size_t why_len)
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

/* ---- failure and completions ----------------------------------------------------- */

static void fail(struct lcr_log *l, int err)
{
	if (l->err)
		return;
	l->err = err < 0 ? err : -EIO;
	if (l->o.done && !l->err_reported) {
		l->err_reported = true;
		l->o.done(l->o.ctx, NULL, l->err);
	}
}

static int pend_push(struct lcr_log *l, const struct lcr_io_id *io, uint8_t kind, uint64_t ref)
{
	if (l->pend_n > 0) {
		struct pend *last = &l->pend[(l->pend_head + l->pend_n - 1) % PEND_MAX];
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

static void pend_mark(struct lcr_log *l, uint8_t kind, uint64_t upto_ref)
{
	for (uint32_t i = 0; i < l->pend_n; i++) {
		struct pend *p = &l->pend[(l->pend_head + i) % PEND_MAX];
		if (p->kind == kind && p->ref <= upto_ref)
			p->done = true;
	}
}

/* Report the newest io id whose command and all earlier ones are durable. */
static void report(struct lcr_log *l)
{
	struct lcr_io_id io;
	bool any = false;

	while (l->pend_n > 0 && l->pend[l->pend_head].done) {
		const struct pend *p = &l->pend[l->pend_head];
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

/* ---- segments -------------------------------------------------------------------- */

static void seg_name(char *buf, size_t n, uint64_t no)
{
	snprintf(buf, n, "seg-%016llx.log", (unsigned long long)no);
}

static void seg_free(struct seg *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->locs);
	free(s);
}

static struct seg *seg_new(struct lcr_log *l, uint64_t no, int fd, uint64_t size)
{
	struct seg *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->no = no;
	s->fd = fd;
	s->size = size;
	s->write_off = LCR_BLOCK;
	s->log = l;
	/* At most one batch per block: the table never grows on the write path. */
	s->cap_locs = (uint32_t)(size / LCR_BLOCK);
	s->locs = calloc(s->cap_locs, sizeof(*s->locs));
	if (!s->locs) {
		free(s);
		return NULL;
	}
	return s;
}

static void seg_header(struct lcr_log *l, void *blk, uint64_t no)
{
	struct lcr_seg_hdr h;

	memset(blk, 0, LCR_BLOCK);
	memset(&h, 0, sizeof(h));
	h.magic = LCR_SEG_MAGIC;
	h.version = LCR_FORMAT_VERSION;
	h.group = l->o.group;
	h.seg_no = no;
	h.segment_bytes = l->o.segment_bytes;
	h.crc = lcr_crc32c(0, (const char *)&h + 8, sizeof(h) - 8);
	memcpy(blk, &h, sizeof(h));
}

static int seg_create_file(struct lcr_log *l, uint64_t no, int *fd)
{
	char name[64];

	seg_name(name, sizeof(name), no);
	*fd = open_file(l, name, O_CREAT | O_EXCL);
	if (*fd < 0)
		return -errno;
	flock(*fd, LOCK_EX | LOCK_NB); /* ours alone: nobody else can know it yet */
	return 0;
}

/* Blocking preparation, used at open when there is no segment to write to. */
static int seg_prepare_sync(struct lcr_log *l, struct seg *s)
{
	int rc = fallocate(s->fd, 0, 0, (off_t)s->size);
	if (rc < 0 && errno != EOPNOTSUPP)
		return -errno;
	for (uint64_t off = LCR_BLOCK; l->o.prewrite && off < s->size; off += ZERO_CHUNK) {
		uint64_t n = s->size - off < ZERO_CHUNK ? s->size - off : ZERO_CHUNK;
		if (pwrite(s->fd, l->zero, n, (off_t)off) != (ssize_t)n)
			return errno ? -errno : -EIO;
	}
	seg_header(l, l->hdr_buf, s->no);
	if (pwrite(s->fd, l->hdr_buf, LCR_BLOCK, 0) != LCR_BLOCK)
		return errno ? -errno : -EIO;
	if (fsync(s->fd) < 0 || fsync(l->dir_fd) < 0)
		return -errno;
	return 0;
}

static void write_next(struct lcr_log *l);
static struct seg *active(struct lcr_log *l);
static void prep_step(struct seg *s);

/*
 * Give up a spare whose preparation failed, once none of its requests can
 * still complete. The log goes on in the active segment; it fails only if a
 * batch needs the next segment before space comes back (seg_for).
 */
static void spare_give_up(struct lcr_log *l)
{
	struct seg *s = l->spare;
	char name[64];

	if (!s || !s->prep_err || s->prep_inflight > 0 || lcr_io_busy(&s->prep_one))
		return;
	for (uint32_t i = 0; i < PREP_PAR; i++)
		if (lcr_io_busy(&s->prep[i]))
			return;
	seg_name(name, sizeof(name), s->no);
	fprintf(stderr, "lcraft: preparing %s/%s failed: %s%s\n", l->dir, name,
		strerror(-s->prep_err), s->prep_err == -ENOSPC ? " (disk full)" : "");
	l->spare_err = s->prep_err;
	unlinkat(l->dir_fd, name, 0);
	l->spare = NULL;
	l->next_seg_no = s->no;
	seg_free(s);
	write_next(l); /* a waiting batch now fails with the reason */
}

static void prep_done(struct lcr_io_req *req, int res)
{
	struct seg *s = req->ctx;
	struct lcr_log *l = s->log;

	if (req != &s->prep_one)
		s->prep_inflight--;
	if (res < 0 && !(res == -EOPNOTSUPP && req->op == LCR_IO_FALLOCATE))
		s->prep_err = s->prep_err ? s->prep_err : res;
	if (s->prep_err) {
		spare_give_up(l);
		return;
	}
	prep_step(s);
}

/*
 * The asynchronous preparation of the spare segment: fallocate, zero writes
 * (PREP_PAR in flight), header block, fsync the file, fsync the directory.
 * Pre-written zeros spare later O_DIRECT writes the unwritten-extent
 * conversion that otherwise costs every fdatasync a journal commit.
 */
static void prep_step(struct seg *s)
{
	struct lcr_log *l = s->log;

	if (l->err)
		return;
	switch (s->prep_stage) {
	case 0:
		s->prep_stage = 1;
		lcr_io_prep(&s->prep_one, LCR_IO_FALLOCATE, s->fd, NULL, s->size, 0, prep_done, s);
		lcr_ring_queue(l->ring, &s->prep_one);
		return;
	case 1:
		s->prep_off = s->prewrite ? LCR_BLOCK : s->size;
		s->prep_stage = 2;
		/* fall through */
	case 2:
		for (uint32_t i = 0; i < PREP_PAR && s->prep_off < s->size; i++) {
			if (s->prep[i].in_flight)
				continue;
			uint64_t n = s->size - s->prep_off < ZERO_CHUNK ? s->size - s->prep_off
									: ZERO_CHUNK;
			lcr_io_prep(&s->prep[i], LCR_IO_WRITE, s->fd, l->zero, n, s->prep_off,
				    prep_done, s);
			lcr_ring_queue(l->ring, &s->prep[i]);
			s->prep_inflight++;
			s->prep_off += n;
		}
		if (s->prep_inflight > 0 || s->prep_off < s->size)
			return;
		s->prep_stage = 3;
		seg_header(l, l->hdr_buf, s->no);
		lcr_io_prep(&s->prep_one, LCR_IO_WRITE, s->fd, l->hdr_buf, LCR_BLOCK, 0, prep_done,
			    s);
		lcr_ring_queue(l->ring, &s->prep_one);
		return;
	case 3:
		s->prep_stage = 4;
		lcr_io_prep(&s->prep_one, LCR_IO_FSYNC, s->fd, NULL, 0, 0, prep_done, s);
		lcr_ring_queue(l->ring, &s->prep_one);
		return;
	case 4:
		/* The file's name must be durable before a batch in it is acknowledged. */
		s->prep_stage = 5;
		lcr_io_prep(&s->prep_one, LCR_IO_FSYNC, l->dir_fd, NULL, 0, 0, prep_done, s);
		lcr_ring_queue(l->ring, &s->prep_one);
		return;
	case 5:
		s->prep_stage = 6;
		s->state = SEG_SPARE;
		l->spare_retried = false;
		write_next(l); /* a batch may have been waiting for this segment */
		return;
	}
}

static void spare_start(struct lcr_log *l)
{
	int fd, rc;

	if (l->spare || l->err)
		return;
	rc = seg_create_file(l, l->next_seg_no, &fd);
	if (rc < 0) {
		fprintf(stderr, "lcraft: creating segment %llu in %s failed: %s\n",
			(unsigned long long)l->next_seg_no, l->dir, strerror(-rc));
		l->spare_err = rc;
		return;
	}
	struct seg *s = seg_new(l, l->next_seg_no, fd, l->o.segment_bytes);
	if (!s) {
		close(fd);
		fail(l, -ENOMEM);
		return;
	}
	l->next_seg_no++;
	l->st.segments_created++;
	l->spare_err = 0;
	s->state = SEG_PREPARING;
	/*
	 * Zeros make small O_DIRECT writes cheap (no unwritten extent to convert
	 * at each flush: qd1 appends measured 0.93x fio with them, 0.65x without)
	 * but cost writing every byte twice, which large batches do not need
	 * (group commit of 4 KiB entries: 0.58x fio with, 0.86x without). So the
	 * next segment is pre-written only while writes are small.
	 */
	struct seg *a = active(l);
	if (a && a->batches == 0 && l->n_segs >= 2)
		a = l->segs[l->n_segs - 2]; /* just switched: the one that filled */
	s->prewrite = l->o.prewrite &&
		      (!a || a->batches == 0 || a->batch_bytes / a->batches < PREWRITE_BELOW);
	l->spare = s;
	prep_step(s);
}

static int segs_push(struct lcr_log *l, struct seg *s)
{
	if (l->n_segs == l->cap_segs) {
		uint32_t cap = l->cap_segs ? l->cap_segs * 2 : 8;
		struct seg **n = realloc(l->segs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->segs = n;
		l->cap_segs = cap;
	}
	l->segs[l->n_segs++] = s;
	return 0;
}

static struct seg *active(struct lcr_log *l)
{
	return l->n_segs ? l->segs[l->n_segs - 1] : NULL;
}

/* Make room for `len` bytes: the active segment, or the spare once it is ready. */
static struct seg *seg_for(struct lcr_log *l, uint64_t len)
{
	struct seg *a = active(l);

	if (a && a->write_off + len <= a->size)
		return a;
	spare_give_up(l); /* a failed spare whose last request has since completed */
	if (!l->spare && l->spare_err) {
		/* Space may have come back since: one more try, then give up. */
		if (!l->spare_retried) {
			l->spare_retried = true;
			spare_start(l);
			if (l->spare)
				return NULL;
		}
		fprintf(stderr,
			"lcraft: %s: segment %llu is full and no new one could be made: %s\n",
			l->dir, (unsigned long long)(a ? a->no : 0), strerror(-l->spare_err));
		fail(l, l->spare_err);
		return NULL;
	}
	if (!l->spare) {
		spare_start(l);
		return NULL;
	}
	if (l->spare->state != SEG_SPARE)
		return NULL;
	if (len > l->spare->size - LCR_BLOCK)
		return NULL; /* cannot happen: batches are bounded below segment size */
	if (a)
		a->state = SEG_FULL;
	l->spare->state = SEG_ACTIVE;
	if (segs_push(l, l->spare) < 0) {
		fail(l, -ENOMEM);
		return NULL;
	}
	l->spare = NULL;
	spare_start(l); /* prepare the next one while this one fills */
	return active(l);
}

/* Record a durable batch in the on-disk location tables (truncation included). */
static void locs_apply(struct lcr_log *l, struct seg *s, uint64_t first, uint32_t count,
		       uint32_t bytes, uint64_t off)
{
	/* Entries >= first are replaced: trim from the newest backwards. */
	for (int32_t k = (int32_t)l->n_segs - 1; k >= 0; k--) {
		struct seg *g = l->segs[k];
		while (g->n_locs > 0) {
			struct loc *lc = &g->locs[g->n_locs - 1];
			if (lc->first_index >= first) {
				g->n_locs--;
				continue;
			}
			if (lc->first_index + lc->count > first)
				lc->count = (uint32_t)(first - lc->first_index); /* bytes: still the
										    whole batch */
			goto trimmed;
		}
	}
trimmed:
	if (count == 0)
		return;
	LCR_ASSERT(s->n_locs < s->cap_locs);
	struct loc *lc = &s->locs[s->n_locs++];
	lc->first_index = first;
	lc->count = count;
	lc->bytes = bytes;
	lc->file_off = off;
}

/* ---- batches and the arena ------------------------------------------------------- */

static struct mbatch *mb_at(struct lcr_log *l, uint32_t i)
{
	return &l->mb[(l->mb_head + i) % l->mb_cap];
}

static struct mbatch *mb_newest(struct lcr_log *l)
{
	return l->mb_n ? mb_at(l, l->mb_n - 1) : NULL;
}

static struct mbatch *open_batch(struct lcr_log *l)
{
	struct mbatch *b = mb_newest(l);
	return b && b->state == MB_OPEN ? b : NULL;
}

static uint64_t mb_span(const struct mbatch *b)
{
	return lcr_align_up(sizeof(struct lcr_batch_hdr) + b->bytes, LCR_BLOCK);
}

/* Drop the oldest cached (durable) batch from the arena. */
static bool reclaim_one(struct lcr_log *l)
{
	if (l->mb_n == 0 || l->mb[l->mb_head].state != MB_DONE)
		return false;
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
		uint64_t tail = mb_at(l, 0)->aoff;
		uint64_t next = newest->aoff + mb_span(newest);
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
		uint64_t tail = mb_at(l, 0)->aoff;
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

	if (!arena_place(l, lcr_align_up(sizeof(struct lcr_batch_hdr) + need, LCR_BLOCK), &at))
		return NULL;
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

static void batch_written(struct lcr_log *l, struct mbatch *b)
{
	b->state = MB_DONE;
	l->writing = false;
	lcr_hist_add(&l->write_lat, mono_ns() - b->issued_ns);
	l->unwritten -= sizeof(struct lcr_batch_hdr) + b->bytes;
	l->unwritten_batches--;
	l->st.batches_written++;
	l->st.entries_written += b->count;
	l->st.bytes_written += mb_span(b);
	locs_apply(l, b->seg, b->first_index, b->count, b->bytes, b->file_off);
	pend_mark(l, PEND_BATCH, b->wid);
	report(l);
	/* What accumulated while this write was in flight goes out now. */
	if (!(l->mb_issued < l->mb_n && mb_at(l, l->mb_issued)->state == MB_SEALED))
		batch_seal(l);
	write_next(l);
}

static void batch_write_done(struct lcr_io_req *req, int res)
{
	struct mbatch *b = req->ctx;
	struct lcr_log *l = b->log;

	if (res < 0) {
		fprintf(stderr, "lcraft: writing batch %llu to %s failed: %s%s\n",
			(unsigned long long)b->batch_seq, l->dir, strerror(-res),
			res == -ENOSPC ? " (disk full)" : "");
		fail(l, res);
		return;
	}
	if (!needs_sync_op(l))
		batch_written(l, b);
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
		fail(l, res);
		return;
	}
	l->st.syncs++;
	batch_written(l, b);
}

/* Write the oldest sealed batch when nothing is in flight. */
static void write_next(struct lcr_log *l)
{
	struct mbatch *b = NULL;

	if (l->writing || l->err)
		return;
	/* Batches are written in order: the next one is right after those issued. */
	if (l->mb_issued < l->mb_n && mb_at(l, l->mb_issued)->state == MB_SEALED)
		b = mb_at(l, l->mb_issued);
	if (!b)
		return;
	uint64_t span = mb_span(b);
	struct seg *s = seg_for(l, span);
	if (!s) {
		l->st.stalls++;
		return; /* prep_step calls us again once the spare is ready */
	}
	struct lcr_batch_hdr h;
	memset(&h, 0, sizeof(h));
	h.magic = LCR_BATCH_MAGIC;
	h.version = LCR_FORMAT_VERSION;
	h.group = l->o.group;
	h.batch_seq = ++l->last_batch_seq;
	h.first_index = b->first_index;
	h.count = b->count;
	h.bytes = b->bytes;
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
	l->writing = true;
	l->mb_issued++;
	lcr_io_prep(&b->wreq, LCR_IO_WRITE, s->fd, buf, span, b->file_off, batch_write_done, b);
	if (l->arena_fixed)
		b->wreq.buf_index = 0;
	if (needs_sync_op(l)) {
		lcr_io_prep(&b->sreq, LCR_IO_FDATASYNC, s->fd, NULL, 0, 0, batch_sync_done, b);
		lcr_ring_queue_linked(l->ring, &b->wreq, &b->sreq);
	} else {
		lcr_ring_queue(l->ring, &b->wreq);
	}
}

/*
 * Group commit: while a write is in flight, appends keep accumulating in the
 * open batch; when it completes (batch_written) everything gathered goes out
 * as the next write. So one flush covers whatever arrived during the last.
 */
void lcr_log_flush(struct lcr_log *l)
{
	if (l->err)
		return;
	if (!l->writing)
		batch_seal(l);
	write_next(l);
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
		write_next(l);
	}
	return batch_new(l, index, rec);
}

/*
 * Whether n entries surely fit: arena room for their records, a header and
 * a block of padding per batch they may need, plus slack for a batch that
 * cannot wrap around the arena's end; and room in the durability queue.
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
	return l->unwritten + need <= l->arena_bytes && l->pend_n + batches + 1 <= PEND_MAX;
}

int lcr_log_append(struct lcr_log *l, const struct lcr_entry *e, uint32_t n,
		   const struct lcr_io_id *io)
{
	if (l->err)
		return l->err;
	for (uint32_t i = 0; i < n; i++)
		if (e[i].len > LCR_ENTRY_MAX || e[i].id.index != l->ids.last.index + 1 + i)
			return -EINVAL;
	/* All or nothing: once the first entry is in, the rest must follow. */
	if (!append_fits(l, e, n))
		return -ENOBUFS;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t rec = lcr_rec_size(e[i].len);
		struct mbatch *b = batch_for(l, e[i].id.index, rec);
		if (!b || pend_push(l, io, PEND_BATCH, b->wid) < 0 ||
		    lcr_log_ids_append(&l->ids, e[i].id) < 0) {
			/* Cannot happen after append_fits; if it does, a half-done
			 * command must not go on as if whole. */
			fail(l, -ENOBUFS);
			return -ENOBUFS;
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
			off += lcr_rec_size(r.len);
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
			fail(l, -ENOBUFS);
			return -ENOBUFS;
		}
	}
	if (pend_push(l, io, PEND_BATCH, b->wid) < 0) {
		fail(l, -ENOBUFS);
		return -ENOBUFS;
	}
	if (after < l->ids.last.index)
		lcr_log_ids_truncate(&l->ids, after + 1);
	b->io = *io;
	b->has_io = true;
	return 0;
}

/* ---- meta --------------------------------------------------------------------------- */

static void meta_write(struct lcr_log *l);

static void meta_written(struct lcr_log *l)
{
	l->meta_inflight = false;
	l->st.vote_writes++;
	pend_mark(l, PEND_META, l->meta_gen_inflight);
	report(l);
	if (l->purge_pending) {
		/* The purge point is durable: the segments wholly before it can go. */
		uint64_t upto = l->purge_pending;
		l->purge_pending = 0;
		while (l->n_segs > 1) {
			struct seg *s = l->segs[0];
			uint64_t last = 0;
			if (s->n_locs)
				last = s->locs[s->n_locs - 1].first_index +
				       s->locs[s->n_locs - 1].count - 1;
			if (last > upto)
				break;
			char name[64];
			seg_name(name, sizeof(name), s->no);
			if (unlinkat(l->dir_fd, name, 0) < 0) {
				fail(l, -errno);
				return;
			}
			seg_free(s);
			memmove(l->segs, l->segs + 1, (l->n_segs - 1) * sizeof(*l->segs));
			l->n_segs--;
			l->st.segments_purged++;
		}
		if (fsync(l->dir_fd) < 0)
			fail(l, -errno);
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
		fail(l, res);
		return;
	}
	if (!needs_sync_op(l))
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
		fail(l, res);
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
	if (needs_sync_op(l)) {
		lcr_io_prep(&l->meta_s, LCR_IO_FDATASYNC, l->meta_fd, NULL, 0, 0, meta_sync_done,
			    l);
		lcr_ring_queue_linked(l->ring, &l->meta_w, &l->meta_s);
	} else {
		lcr_ring_queue(l->ring, &l->meta_w);
	}
}

int lcr_log_save_vote(struct lcr_log *l, struct lcr_vote v, const struct lcr_io_id *io)
{
	if (l->err)
		return l->err;
	if (pend_push(l, io, PEND_META, l->meta_gen_next) < 0)
		return -ENOBUFS;
	l->meta_st.vote = v;
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
	l->rd_valid = false;
	lcr_log_ids_purge(&l->ids, id);
	l->meta_st.purged = id;
	l->meta_dirty = true;
	l->purge_pending = upto;
	meta_write(l);
	return 0;
}

/* ---- recovery ---------------------------------------------------------------------- */

struct recover_ctx {
	struct lcr_log *l;
	struct seg *seg;
};

static int recover_accept(void *ctx, const struct lcr_scan_batch *b)
{
	struct recover_ctx *rc = ctx;
	struct lcr_log *l = rc->l;
	const struct lcr_batch_hdr *h = b->hdr;
	uint64_t first = h->first_index;

	if (h->batch_seq <= l->last_batch_seq)
		return -EBADMSG;
	/* A batch may replace the tail, never leave a gap. Entries at or below
	 * the purge point are committed and snapshotted: skip them. */
	if (first > l->ids.last.index + 1 && first > l->ids.purged.index + 1)
		return -EBADMSG;
	const uint8_t *p = b->records;
	uint64_t skip = 0;
	if (first <= l->ids.purged.index) {
		/* Its records up to the purge point are gone; it still replaces
		 * whatever an older batch put above the purge point. */
		skip = l->ids.purged.index + 1 - first;
		if (skip > h->count)
			skip = h->count;
		if (l->ids.last.index > l->ids.purged.index)
			lcr_log_ids_truncate(&l->ids, l->ids.purged.index + 1);
	} else if (first <= l->ids.last.index) {
		lcr_log_ids_truncate(&l->ids, first);
	}
	for (uint32_t i = 0; i < h->count; i++) {
		struct lcr_rec_hdr r;
		memcpy(&r, p, sizeof(r));
		p += lcr_rec_size(r.len);
		if (i < skip)
			continue;
		struct lcr_log_id id = { { r.term, r.node }, r.index };
		/* Leaders never go down along the log (checked here, not asserted:
		 * a crafted file with valid checksums must not stop us). Right
		 * above the purge point there is nothing to compare with: the
		 * purged id belongs to the final history, and an older batch
		 * replayed here may come from a leader before it. */
		if (l->ids.n > 0 && lcr_leader_id_cmp(id.lid, l->ids.last.lid) < 0)
			return -EBADMSG;
		if (lcr_log_ids_append(&l->ids, id) < 0)
			return -ENOMEM;
	}
	l->last_batch_seq = h->batch_seq;
	locs_apply(l, rc->seg, first + skip, (uint32_t)(h->count - skip), h->bytes, b->file_off);
	return 0;
}

static int parse_seg_name(const char *name, uint64_t *no)
{
	unsigned long long v;
	int n = 0;

	if (strlen(name) != 24 || sscanf(name, "seg-%16llx.log%n", &v, &n) != 1 || n != 24)
		return -1;
	*no = v;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool file_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Whether the log's directory holds any segment file (or cannot be read). */
static bool dir_has_segments(struct lcr_log *l)
{
	int dfd = dup(l->dir_fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;
	uint64_t no;
	bool found = false;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return true;
	}
	rewinddir(d);
	while (!found && (de = readdir(d)))
		found = parse_seg_name(de->d_name, &no) == 0;
	closedir(d);
	return found;
}

static int recover_meta(struct lcr_log *l, char *why, size_t why_len)
{
	struct stat sb;
	char w[200];

	l->meta_fd = open_file(l, LCR_META_FILE, O_CREAT);
	if (l->meta_fd < 0 || fstat(l->meta_fd, &sb) < 0) {
		snprintf(why, why_len, "%s/%s: %s", l->dir, LCR_META_FILE, strerror(errno));
		return -errno;
	}
	int rc0 = lock_file(l, l->meta_fd, LCR_META_FILE, why, why_len);
	if (rc0 < 0)
		return rc0;
	if (sb.st_size > 0 && sb.st_size < 2 * LCR_META_SLOT) {
		/* Shorter than its two slots: a process killed while it created
		 * the file (below) leaves zeros only and had made no segment yet
		 * (they come after the meta file), so no vote was ever saved in
		 * it: create it again. Anything else is corruption, which
		 * lcr_meta_recover names. */
		uint8_t *part = xalloc_aligned(2 * LCR_META_SLOT); /* O_DIRECT reads */
		if (!part)
			return -ENOMEM;
		ssize_t k = pread(l->meta_fd, part, 2 * LCR_META_SLOT, 0);
		if (k == sb.st_size && file_zero(part, (size_t)k) && !dir_has_segments(l))
			sb.st_size = 0;
		free(part);
	}
	if (sb.st_size == 0) {
		memset(l->meta_buf, 0, LCR_META_SLOT);
		for (int i = 0; i < 2; i++)
			if (pwrite(l->meta_fd, l->meta_buf, LCR_META_SLOT, i * LCR_META_SLOT) !=
			    LCR_META_SLOT) {
				snprintf(why, why_len, "%s/%s: %s", l->dir, LCR_META_FILE,
					 strerror(errno));
				return errno ? -errno : -EIO;
			}
		if (fsync(l->meta_fd) < 0 || fsync(l->dir_fd) < 0)
			return -errno;
		sb.st_size = 2 * LCR_META_SLOT;
	}
	uint8_t *buf = xalloc_aligned(2 * LCR_META_SLOT);
	if (!buf)
		return -ENOMEM;
	ssize_t n = 0;
	if (sb.st_size == 2 * LCR_META_SLOT)
		n = pread(l->meta_fd, buf, 2 * LCR_META_SLOT, 0);
	else
		n = sb.st_size; /* wrong size: let recover say so */
	int rc = n < 0 ? -errno
		       : lcr_meta_recover(buf, (size_t)n, l->o.group, &l->meta_st, &l->meta_seq, w,
					  sizeof(w));
	free(buf);
	if (rc < 0)
		snprintf(why, why_len, "%s/%s: %s", l->dir, LCR_META_FILE,
			 rc == -EBADMSG ? w : strerror(-rc));
	return rc;
}

/* Recover one segment file; `*torn_in` names the first segment cut short. */
static int recover_seg(struct lcr_log *l, uint64_t no, bool last, struct seg **torn_in, char *why,
		       size_t why_len)
{
	char name[64], w[256];
	struct stat sb;
	int rc = 0;

	seg_name(name, sizeof(name), no);
	int fd = open_file(l, name, 0);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(why, why_len, "%s/%s: %s", l->dir, name, strerror(errno));
		return -errno;
	}
	if ((rc = lock_file(l, fd, name, why, why_len)) < 0) {
		close(fd);
		return rc;
	}
	size_t size = (size_t)sb.st_size;
	uint8_t *img = NULL;
	if (size > 0) {
		img = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (img == MAP_FAILED) {
			snprintf(why, why_len, "%s/%s: mmap: %s", l->dir, name, strerror(errno));
			close(fd);
			return -errno;
		}
	}
	if (!img || lcr_seg_check_header(img, size, l->o.group, no, w, sizeof(w)) < 0) {
		/* A segment still being prepared when we stopped: all zeros. */
		if (last && (!img || file_zero(img, size))) {
			if (img)
				munmap(img, size);
			close(fd);
			unlinkat(l->dir_fd, name, 0);
			return 0;
		}
		snprintf(why, why_len, "%s/%s: %s", l->dir, name,
			 img ? w : "empty file that is not the last segment");
		rc = -EBADMSG;
		goto out;
	}
	struct seg *s = seg_new(l, no, fd, size);
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	fd = -1;
	if ((rc = segs_push(l, s)) < 0) {
		seg_free(s);
		goto out;
	}
	struct recover_ctx ctx = { l, s };
	struct lcr_scan_result res;
	uint64_t seq_before = l->last_batch_seq;
	rc = lcr_seg_scan(img, size, l->o.group, recover_accept, &ctx, &res, w, sizeof(w));
	if (rc < 0) {
		snprintf(why, why_len, "%s/%s: %s", l->dir, name, w);
		goto out;
	}
	if (*torn_in && l->last_batch_seq != seq_before) {
		snprintf(why, why_len,
			 "%s: a damaged batch ends segment %llu, but %s holds batches written "
			 "after it",
			 l->dir, (unsigned long long)(*torn_in)->no, name);
		rc = -EBADMSG;
		goto out;
	}
	s->write_off = res.end;
	if (res.how == LCR_SCAN_TORN) {
		/* The last write never completed, so nothing in it was acknowledged:
		 * cut it, and zero it so that it cannot be read as data later. */
		fprintf(stderr, "lcraft: %s/%s: cutting a torn batch at offset %llu (%llu bytes)\n",
			l->dir, name, (unsigned long long)res.end,
			(unsigned long long)res.torn_len);
		for (uint64_t off = 0; off < res.torn_len; off += ZERO_CHUNK) {
			uint64_t n =
				res.torn_len - off < ZERO_CHUNK ? res.torn_len - off : ZERO_CHUNK;
			if (pwrite(s->fd, l->zero, n, (off_t)(res.end + off)) != (ssize_t)n) {
				rc = errno ? -errno : -EIO;
				snprintf(why, why_len, "%s/%s: zeroing the torn tail: %s", l->dir,
					 name, strerror(-rc));
				goto out;
			}
		}
		if (fdatasync(s->fd) < 0) {
			rc = -errno;
			goto out;
		}
		if (!*torn_in)
			*torn_in = s;
	}
out:
	if (img)
		munmap(img, size);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int recover_segments(struct lcr_log *l, char *why, size_t why_len)
{
	uint64_t *nos = NULL;
	size_t n = 0, cap = 0;
	struct seg *torn = NULL;
	int rc = 0;

	int dfd = dup(l->dir_fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		snprintf(why, why_len, "%s: %s", l->dir, strerror(errno));
		return -errno;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		uint64_t no;
		if (parse_seg_name(de->d_name, &no) < 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			uint64_t *nn = realloc(nos, cap * sizeof(*nos));
			if (!nn) {
				rc = -ENOMEM;
				goto out;
			}
			nos = nn;
		}
		nos[n++] = no;
	}
	if (n > 1)
		qsort(nos, n, sizeof(*nos), cmp_u64);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (i > 0 && nos[i] != nos[i - 1] + 1) {
			snprintf(why, why_len, "%s: segment %llu is missing", l->dir,
				 (unsigned long long)(nos[i - 1] + 1));
			rc = -EBADMSG;
			break;
		}
		rc = recover_seg(l, nos[i], i + 1 == n, &torn, why, why_len);
	}
	/* An unfinished spare that recovery removed gives its number back. */
	if (l->n_segs)
		l->next_seg_no = l->segs[l->n_segs - 1]->no + 1;
out:
	closedir(d);
	free(nos);
	return rc;
}

static int check_opts(const struct lcr_log_opts *o, char *why, size_t why_len)
{
	if (!o->dir || !*o->dir) {
		snprintf(why, why_len, "log: no directory given");
		return -EINVAL;
	}
	if (o->segment_bytes % LCR_BLOCK || o->segment_bytes < 2 * LCR_ENTRY_MAX + 4 * LCR_BLOCK) {
		snprintf(why, why_len, "segment_bytes must be a multiple of 4096 and at least %u",
			 2 * LCR_ENTRY_MAX + 4 * LCR_BLOCK);
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
	return 0;
}

static void log_free(struct lcr_log *l)
{
	for (uint32_t i = 0; i < l->n_segs; i++)
		seg_free(l->segs[i]);
	seg_free(l->spare);
	free(l->segs);
	if (l->meta_fd >= 0)
		close(l->meta_fd);
	if (l->dir_fd >= 0)
		close(l->dir_fd);
	lcr_log_ids_free(&l->ids);
	free(l->arena);
	free(l->mb);
	free(l->pend);
	free(l->zero);
	free(l->scratch);
	free(l->hdr_buf);
	free(l->meta_buf);
	free(l->dir);
	free(l);
}

static void *std_alloc(void *ctx, size_t n)
{
	(void)ctx;
	return malloc(n);
}

static void std_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

int lcr_log_open(struct lcr_log **out, struct lcr_ring *ring, const struct lcr_log_opts *o,
		 char *why, size_t why_len)
{
	int rc = check_opts(o, why, why_len);
	if (rc < 0)
		return rc;
	struct lcr_log *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->o = *o;
	l->ring = ring;
	l->meta_fd = -1;
	l->dir = strdup(o->dir);
	l->arena_bytes = o->arena_bytes;
	l->mb_cap = (uint32_t)(o->arena_bytes / LCR_BLOCK);
	l->scratch_bytes = lcr_align_up(o->batch_bytes_max + LCR_ENTRY_MAX, LCR_BLOCK) + LCR_BLOCK;
	l->zero = xalloc_aligned(ZERO_CHUNK);
	l->hdr_buf = xalloc_aligned(LCR_BLOCK);
	l->meta_buf = xalloc_aligned(LCR_META_SLOT);
	l->scratch = xalloc_aligned(l->scratch_bytes);
	l->arena = xalloc_aligned(o->arena_bytes);
	l->mb = calloc(l->mb_cap, sizeof(*l->mb));
	l->pend = calloc(PEND_MAX, sizeof(*l->pend));
	struct lcr_allocator a = { std_alloc, std_free, NULL };
	l->dir_fd = -1;
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
	if ((rc = recover_meta(l, why, why_len)) < 0)
		goto fail;
	if ((rc = lcr_log_ids_init(&l->ids, a, 64, l->meta_st.purged)) < 0)
		goto fail;
	l->next_seg_no = 1;
	if ((rc = recover_segments(l, why, why_len)) < 0)
		goto fail;
	if (l->n_segs == 0) {
		int fd;
		if ((rc = seg_create_file(l, l->next_seg_no, &fd)) < 0) {
			snprintf(why, why_len, "%s: creating the first segment: %s", o->dir,
				 strerror(-rc));
			goto fail;
		}
		struct seg *s = seg_new(l, l->next_seg_no++, fd, o->segment_bytes);
		if (!s) {
			close(fd);
			rc = -ENOMEM;
			goto fail;
		}
		if ((rc = segs_push(l, s)) < 0) {
			seg_free(s);
			goto fail;
		}
		if ((rc = seg_prepare_sync(l, s)) < 0) {
			snprintf(why, why_len, "%s: preparing the first segment: %s%s", o->dir,
				 strerror(-rc), rc == -ENOSPC ? " (disk full)" : "");
			goto fail;
		}
		l->st.segments_created++;
	}
	for (uint32_t i = 0; i < l->n_segs; i++)
		l->segs[i]->state = i + 1 == l->n_segs ? SEG_ACTIVE : SEG_FULL;
	if (o->durability == LCR_DURABILITY_NONE)
		fprintf(stderr,
			"lcraft: WARNING: %s: durability 'none': acknowledged writes are NOT "
			"on stable storage and a crash can lose them (benchmarks only)\n",
			o->dir);
	spare_start(l);
	*out = l;
	return 0;
fail:
	log_free(l);
	return rc;
}

/* Any request of this log that the kernel may still complete. */
static bool reqs_busy(const struct lcr_log *l)
{
	if (lcr_io_busy(&l->meta_w) || lcr_io_busy(&l->meta_s))
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
		bool busy = l->writing || l->meta_inflight ||
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
		seg_name(name, sizeof(name), l->spare->no);
		unlinkat(l->dir_fd, name, 0);
	}
	log_free(l);
}

/* ---- queries and reads --------------------------------------------------------------- */

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
	if (index <= l->ids.purged.index || index > l->ids.last.index)
		return -ENOENT;
	for (uint32_t k = l->mb_n; k-- > 0;) {
		struct mbatch *b = mb_at(l, k);
		if (index < b->first_index)
			continue;
		if (index >= b->first_index + b->count)
			break; /* truncated here, and not in a newer batch: on disk only? no: gone
				*/
		uint32_t want = (uint32_t)(index - b->first_index);
		int best = -1;
		for (int c = 0; c < GET_CURSORS; c++)
			if (l->gc[c].wid == b->wid && l->gc[c].i <= want &&
			    (best < 0 || l->gc[c].i > l->gc[best].i))
				best = c;
		uint32_t i = best >= 0 ? l->gc[best].i : 0, off = best >= 0 ? l->gc[best].off : 0;
		const uint8_t *base = l->arena + b->aoff + sizeof(struct lcr_batch_hdr);
		while (i < want) {
			struct lcr_rec_hdr r;
			memcpy(&r, base + off, sizeof(r));
			off += lcr_rec_size(r.len);
			i++;
		}
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
	const struct loc *lc = find_loc(l, index, &s);

	if (!lc)
		return -ENOENT;
	uint64_t span = lcr_align_up(sizeof(struct lcr_batch_hdr) + lc->bytes, LCR_BLOCK);
	if (span > l->scratch_bytes)
		return -EBADMSG;
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
	const uint8_t *hb = (const uint8_t *)l->scratch + (lc->file_off - l->rd_off);
	if (l->cur_off != lc->file_off) {
		/* Verify after the read what was verified before the write. */
		struct lcr_batch_hdr h;
		if (!lcr_batch_hdr_valid(hb, span, 0, l->o.group))
			return -EBADMSG;
		memcpy(&h, hb, sizeof(h));
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

uint64_t lcr_log_space(const struct lcr_log *l)
{
	uint64_t unwritten = 0;
	for (uint32_t i = 0; i < l->mb_n; i++) {
		const struct mbatch *b = &l->mb[(l->mb_head + i) % l->mb_cap];
		if (b->state != MB_DONE)
			unwritten += mb_span(b);
	}
	return unwritten >= l->arena_bytes ? 0 : l->arena_bytes - unwritten;
}

bool lcr_log_busy(const struct lcr_log *l)
{
	if (l->writing || l->meta_inflight)
		return true;
	for (uint32_t i = 0; i < l->mb_n; i++)
		if (l->mb[(l->mb_head + i) % l->mb_cap].state == MB_SEALED)
			return true;
	return false;
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
