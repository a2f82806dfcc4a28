/* SPDX-License-Identifier: MIT */
/*
 * Segment files of the log: naming, creation, the preparation of the spare
 * (asynchronous: fallocate, zeros, header, fsync of the file and of the
 * directory), activation when the active one is full, the location table of
 * each segment's durable batches, and the purge of whole segments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "log_int.h"

void lcr_log_seg_name(char *buf, size_t n, uint64_t no)
{
	snprintf(buf, n, "seg-%016llx.log", (unsigned long long)no);
}

void lcr_log_free_name(char *buf, size_t n, uint64_t no)
{
	snprintf(buf, n, "free-%016llx.seg", (unsigned long long)no);
}

bool lcr_log_is_free_name(const char *name)
{
	return strncmp(name, "free-", 5) == 0 && strlen(name) == 25 &&
	       strcmp(name + 21, ".seg") == 0;
}

void lcr_log_seg_free(struct seg *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	lcr_log_free(s->log, s->locs);
	lcr_log_free(s->log, s);
}

/*
 * A segment's nonce: random, so that no batch of a recycled file's earlier
 * life (nor one forged inside a payload) carries it by chance. Never 0.
 */
static uint64_t draw_nonce(uint64_t no)
{
	uint64_t x = 0;
	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
		    (no * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)getpid() << 32);
	}
	return x ? x : 1;
}

/*
 * The O_DIRECT file offset alignment of the log's files (statx
 * STATX_DIOALIGN of the meta file: the device's logical block size on ext4
 * and xfs; directories do not say), or 0 where the kernel or the
 * filesystem does not say.
 */
static uint32_t dio_offset_align(const struct lcr_log *l)
{
	struct statx sx;

	memset(&sx, 0, sizeof(sx));
	if (l->meta_fd < 0 || statx(l->meta_fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) < 0 ||
	    !(sx.stx_mask & STATX_DIOALIGN))
		return 0;
	return sx.stx_dio_offset_align;
}

int lcr_log_align_pick(struct lcr_log *l, char *why, size_t why_len)
{
	uint32_t want = l->o.block_bytes, dio = 0;
	bool direct =
		l->o.io_mode != LCR_IO_BUFFERED_FDATASYNC && l->o.durability != LCR_DURABILITY_NONE;

	if (direct)
		dio = dio_offset_align(l);
	if (want == 0) {
		/* Buffered writes go out as whole pages: 4 KiB keeps a write off
		 * the blocks of acknowledged batches there too. */
		want = direct && dio ? dio : LCR_BLOCK;
		if (want < LCR_BATCH_ALIGN_MIN)
			want = LCR_BATCH_ALIGN_MIN;
		if (want > LCR_BATCH_ALIGN_MAX)
			want = LCR_BATCH_ALIGN_MAX; /* O_DIRECT writes will fail and say so */
	}
	if (want < LCR_BATCH_ALIGN_MIN || want > LCR_BATCH_ALIGN_MAX || (want & (want - 1)) ||
	    (direct && dio > want)) {
		snprintf(why, why_len,
			 "%s: block_bytes %u: must be a power of two from %u to %u and at least "
			 "the O_DIRECT alignment of the device (%u)",
			 l->dir, l->o.block_bytes, LCR_BATCH_ALIGN_MIN, LCR_BATCH_ALIGN_MAX, dio);
		return -EINVAL;
	}
	l->align = want;
	return 0;
}

struct seg *lcr_log_seg_new(struct lcr_log *l, uint64_t no, int fd, uint64_t size, uint32_t align)
{
	LCR_ASSERT(align >= LCR_BATCH_ALIGN_MIN && align <= LCR_BATCH_ALIGN_MAX);
	LCR_ASSERT(size % LCR_BLOCK == 0 || size < LCR_BLOCK);
	struct seg *s = lcr_log_zalloc(l, sizeof(*s));
	if (!s)
		return NULL;
	s->no = no;
	s->nonce = draw_nonce(no);
	s->fd = fd;
	s->size = size;
	s->write_off = LCR_BLOCK;
	s->version = LCR_SEG_VERSION;
	s->align = align;
	s->log = l;
	/* At most one batch per unit: the table never grows on the write path
	 * (lcr_log_locs_fit shrinks it once the segment is full). */
	s->cap_locs = (uint32_t)(size / align);
	s->locs = lcr_log_zalloc(l, (size_t)s->cap_locs * sizeof(*s->locs));
	if (!s->locs) {
		lcr_log_free(l, s);
		return NULL;
	}
	return s;
}

static void seg_header(struct lcr_log *l, void *blk, const struct seg *s)
{
	struct lcr_seg_hdr h;

	memset(blk, 0, LCR_BLOCK);
	memset(&h, 0, sizeof(h));
	h.magic = LCR_SEG_MAGIC;
	h.group = l->o.group;
	h.seg_no = s->no;
	h.segment_bytes = l->o.segment_bytes;
	h.nonce = s->nonce;
	h.batch_align = s->align;
	h.flags = s->recycled ? LCR_SEG_RECYCLED : 0;
	LCR_ASSERT(s->version == LCR_SEG_VERSION);
	h.version = LCR_SEG_VERSION;
	h.crc = lcr_crc32c(0, (const char *)&h + 8, sizeof(h) - 8);
	memcpy(blk, &h, sizeof(h));
}

static int seg_create_file(struct lcr_log *l, uint64_t no, int *fd)
{
	char name[64];

	lcr_log_seg_name(name, sizeof(name), no);
	*fd = lcr_log_open_file(l, name, O_CREAT | O_EXCL);
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
	seg_header(l, l->hdr_buf, s);
	if (pwrite(s->fd, l->hdr_buf, LCR_BLOCK, 0) != LCR_BLOCK)
		return errno ? -errno : -EIO;
	if (fsync(s->fd) < 0 || fsync(l->dir_fd) < 0)
		return -errno;
	return 0;
}

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
	lcr_log_seg_name(name, sizeof(name), s->no);
	fprintf(stderr, "lcraft: preparing %s/%s failed: %s%s\n", l->dir, name,
		strerror(-s->prep_err), s->prep_err == -ENOSPC ? " (disk full)" : "");
	l->spare_err = s->prep_err;
	unlinkat(l->dir_fd, name, 0);
	if (s->recycled)
		unlinkat(l->dir_fd, s->free_name, 0);
	l->spare = NULL;
	l->next_seg_no = s->no;
	lcr_log_seg_free(s);
	lcr_log_write_next(l); /* a waiting batch now fails with the reason */
}

static void prep_done(struct lcr_io_req *req, int res)
{
	struct seg *s = req->ctx;
	struct lcr_log *l = s->log;

	if (req != &s->prep_one) {
		LCR_ASSERT(s->prep_inflight > 0);
		s->prep_inflight--;
	}
	if (res < 0 && !(res == -EOPNOTSUPP && req->op == LCR_IO_FALLOCATE))
		s->prep_err = s->prep_err ? s->prep_err : res;
	if (s->prep_err) {
		spare_give_up(l);
		return;
	}
	prep_step(s);
}

/*
 * Zero writes compete with the batch writes that commits wait for: 4 MiB of
 * them in flight put milliseconds in front of every commit while a spare is
 * prepared. So the preparation keeps to a schedule: the share of the spare
 * already zeroed should be at least 9/8 of the share of the active segment
 * already filled (all of it by the time that is 8/9 full). Ahead of it, one
 * PREP_PACED write at a time, and only while no batch write is in flight
 * (lcr_log_prep_kick starts the next when one completes); behind it, PREP_PAR
 * writes of ZERO_CHUNK, as fast as the disk goes, since the spare must be
 * ready when the active segment fills.
 */
static bool prep_behind(const struct lcr_log *l, const struct seg *s)
{
	const struct seg *a = l->n_segs ? l->segs[l->n_segs - 1] : NULL;
	if (!a || a->state != SEG_ACTIVE)
		return true;
	/* zeroed / spare size < min(1, 9/8 * filled / active size), in integers */
	unsigned __int128 zeroed = (unsigned __int128)s->prep_off * a->size * 8;
	unsigned __int128 fill = (unsigned __int128)a->write_off * 9;
	unsigned __int128 whole = (unsigned __int128)a->size * 8;
	return zeroed < (fill < whole ? fill : whole) * s->size;
}

/*
 * The asynchronous preparation of the spare segment: fallocate, zero writes
 * (paced, above), header block, fsync the file, fsync the directory.
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
	case 2: {
		bool behind = prep_behind(l, s);
		uint32_t par = behind ? PREP_PAR : l->writing > 0 ? 0 : 1;
		uint64_t chunk = behind ? ZERO_CHUNK : PREP_PACED;
		for (uint32_t i = 0;
		     i < PREP_PAR && s->prep_inflight < par && s->prep_off < s->size; i++) {
			if (s->prep[i].in_flight)
				continue;
			uint64_t n = s->size - s->prep_off < chunk ? s->size - s->prep_off : chunk;
			lcr_io_prep(&s->prep[i], LCR_IO_WRITE, s->fd, l->zero, n, s->prep_off,
				    prep_done, s);
			lcr_ring_queue(l->ring, &s->prep[i]);
			s->prep_inflight++;
			s->prep_off += n;
		}
		LCR_ASSERT(s->prep_inflight <= PREP_PAR);
		LCR_ASSERT(s->prep_off <= s->size);
		if (s->prep_inflight > 0 || s->prep_off < s->size)
			return;
		s->prep_stage = 3;
	}
		seg_header(l, l->hdr_buf, s);
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
		if (s->recycled) {
			/* Its new header is durable: now it may take the segment's name. */
			s->prep_stage = 7;
			lcr_io_prep(&s->prep_one, LCR_IO_RENAMEAT, l->dir_fd, s->free_name, 0, 0,
				    prep_done, s);
			s->prep_one.arg = s->name;
			lcr_ring_queue(l->ring, &s->prep_one);
			return;
		}
		/* fall through */
	case 7:
		/* The file's name must be durable before a batch in it is acknowledged. */
		s->prep_stage = 5;
		lcr_io_prep(&s->prep_one, LCR_IO_FSYNC, l->dir_fd, NULL, 0, 0, prep_done, s);
		lcr_ring_queue(l->ring, &s->prep_one);
		return;
	case 5:
		s->prep_stage = 6;
		s->state = SEG_SPARE;
		l->spare_retried = false;
		lcr_log_write_next(l); /* a batch may have been waiting for this segment */
		return;
	default:
		/* Stage 6 issues nothing, so no completion brings us here. */
		LCR_ASSERT(!"segment preparation past its last stage");
	}
}

/* A batch write completed: paced zero writes may go on. */
void lcr_log_prep_kick(struct lcr_log *l)
{
	struct seg *s = l->spare;
	if (s && !l->err && s->prep_stage == 2 && !s->prep_err)
		prep_step(s);
}

/*
 * The next segment made of a purged file: it is full size and written, so
 * no fallocate and no zeros; a new header (number, nonce) is written and
 * flushed, then it is renamed to the segment's name and the directory
 * flushed. Its old batches stay in it, and carry another nonce (scan.h).
 */
static void spare_recycle(struct lcr_log *l)
{
	struct seg *s = l->free_segs[--l->n_free];
	uint32_t cap = (uint32_t)(s->size / l->align);

	if (s->cap_locs < cap) {
		/* Its table was fitted to what it held (lcr_log_locs_fit). */
		struct loc *t = lcr_log_zalloc(l, (size_t)cap * sizeof(*t));
		if (!t) {
			l->free_segs[l->n_free++] = s;
			lcr_log_fail(l, -ENOMEM);
			return;
		}
		lcr_log_free(l, s->locs);
		s->locs = t;
		s->cap_locs = cap;
	}
	s->no = l->next_seg_no++;
	s->nonce = draw_nonce(s->no);
	s->write_off = LCR_BLOCK;
	s->version = LCR_SEG_VERSION;
	s->align = l->align;
	s->n_locs = 0;
	s->top = 0;
	s->state = SEG_PREPARING;
	s->prep_off = 0;
	s->prep_inflight = 0;
	s->prep_err = 0;
	s->prewrite = false;
	s->batches = 0;
	s->batch_bytes = 0;
	s->recycled = true;
	lcr_log_seg_name(s->name, sizeof(s->name), s->no);
	l->st.segments_recycled++;
	l->spare_err = 0;
	l->spare = s;
	s->prep_stage = 1; /* no fallocate */
	prep_step(s);
}

void lcr_log_spare_start(struct lcr_log *l)
{
	int fd, rc;

	if (l->spare || l->err)
		return;
	if (l->n_free > 0 && l->n_segs < l->segs_max) {
		spare_recycle(l);
		return;
	}
	if (l->n_segs >= l->segs_max) {
		/* The spare would be one segment too many: fail when it is needed. */
		fprintf(stderr,
			"lcraft: %s: the log holds %u segments, its maximum (segments_max); "
			"purge entries to make room\n",
			l->dir, l->n_segs);
		l->spare_err = -ENOSPC;
		return;
	}
	rc = seg_create_file(l, l->next_seg_no, &fd);
	if (rc < 0) {
		fprintf(stderr, "lcraft: creating segment %llu in %s failed: %s\n",
			(unsigned long long)l->next_seg_no, l->dir, strerror(-rc));
		l->spare_err = rc;
		return;
	}
	struct seg *s = lcr_log_seg_new(l, l->next_seg_no, fd, l->o.segment_bytes, l->align);
	if (!s) {
		close(fd);
		lcr_log_fail(l, -ENOMEM);
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
	if (s->prewrite)
		l->st.segments_prewritten++;
	l->spare = s;
	prep_step(s);
}

void lcr_log_segs_push(struct lcr_log *l, struct seg *s)
{
	LCR_ASSERT(l->n_segs < l->segs_max);
	l->segs[l->n_segs++] = s;
}

static struct seg *active(struct lcr_log *l)
{
	return l->n_segs ? l->segs[l->n_segs - 1] : NULL;
}

bool lcr_log_seg_fits(const struct lcr_log *l, uint64_t len, bool fresh)
{
	const struct seg *a = l->n_segs ? l->segs[l->n_segs - 1] : NULL;
	return a && a->write_off + len <= a->size && !(fresh && a->write_off > LCR_BLOCK);
}

/* Make room for `len` bytes: the active segment, or the spare once it is ready. */
struct seg *lcr_log_seg_for(struct lcr_log *l, uint64_t len, bool fresh)
{
	struct seg *a = active(l);

	if (lcr_log_seg_fits(l, len, fresh))
		return a;
	spare_give_up(l); /* a failed spare whose last request has since completed */
	if (!l->spare && l->spare_err) {
		/* Space may have come back since: one more try, then give up. */
		if (!l->spare_retried) {
			l->spare_retried = true;
			lcr_log_spare_start(l);
			if (l->spare)
				return NULL;
		}
		fprintf(stderr,
			"lcraft: %s: segment %llu is full and no new one could be made: %s\n",
			l->dir, (unsigned long long)(a ? a->no : 0), strerror(-l->spare_err));
		lcr_log_fail(l, l->spare_err);
		return NULL;
	}
	if (!l->spare) {
		lcr_log_spare_start(l);
		return NULL;
	}
	if (l->spare->state != SEG_SPARE)
		return NULL;
	/* batch_for keeps every batch a block smaller than a segment. */
	LCR_ASSERT(len <= l->spare->size - LCR_BLOCK);
	LCR_ASSERT(l->spare->write_off == LCR_BLOCK);
	if (a) {
		a->state = SEG_FULL;
		lcr_log_locs_fit(l, a);
	}
	l->spare->state = SEG_ACTIVE;
	lcr_log_segs_push(l, l->spare);
	l->spare = NULL;
	lcr_log_spare_start(l); /* prepare the next one while this one fills */
	return active(l);
}

/* Record a durable batch in the on-disk location tables (truncation included). */
void lcr_log_locs_apply(struct lcr_log *l, struct seg *s, uint64_t first, uint32_t count,
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
	if (first + count - 1 > s->top)
		s->top = first + count - 1;
	/* Batches sit on units of their segment, in log and file order. */
	LCR_ASSERT(off % s->align == 0 && off >= LCR_BLOCK);
	LCR_ASSERT(off + lcr_log_span(bytes, s->align) <= s->size);
	LCR_ASSERT(s->n_locs < s->cap_locs);
	if (s->n_locs > 0) {
		LCR_ASSERT(s->locs[s->n_locs - 1].file_off < off);
		LCR_ASSERT(s->locs[s->n_locs - 1].first_index < first);
	}
	struct loc *lc = &s->locs[s->n_locs++];
	lc->first_index = first;
	lc->count = count;
	lc->bytes = bytes;
	lc->file_off = off;
}

void lcr_log_locs_fit(struct lcr_log *l, struct seg *s)
{
	uint32_t cap = s->n_locs ? s->n_locs : 1;
	if (cap >= s->cap_locs)
		return;
	struct loc *t = lcr_log_zalloc(l, (size_t)cap * sizeof(*t));
	if (!t)
		return; /* the big table serves as well */
	memcpy(t, s->locs, (size_t)s->n_locs * sizeof(*t));
	lcr_log_free(l, s->locs);
	s->locs = t;
	s->cap_locs = cap;
}

void lcr_log_locs_clear(struct lcr_log *l)
{
	for (uint32_t k = 0; k < l->n_segs; k++) {
		l->segs[k]->n_locs = 0;
		l->segs[k]->top = 0; /* recovery starts at the reset: nothing here is read */
	}
}

int lcr_log_segs_start(struct lcr_log *l, char *why, size_t why_len)
{
	int rc;

	if (l->n_segs == 0) {
		int fd;
		if ((rc = seg_create_file(l, l->next_seg_no, &fd)) < 0) {
			snprintf(why, why_len, "%s: creating the first segment: %s", l->dir,
				 strerror(-rc));
			return rc;
		}
		struct seg *s =
			lcr_log_seg_new(l, l->next_seg_no++, fd, l->o.segment_bytes, l->align);
		if (!s) {
			close(fd);
			return -ENOMEM;
		}
		lcr_log_segs_push(l, s);
		if ((rc = seg_prepare_sync(l, s)) < 0) {
			snprintf(why, why_len, "%s: preparing the first segment: %s%s", l->dir,
				 strerror(-rc), rc == -ENOSPC ? " (disk full)" : "");
			return rc;
		}
		l->st.segments_created++;
		if (l->o.prewrite)
			l->st.segments_prewritten++;
	}
	/* A last segment with nothing written in it is the spare prepared
	 * before the stop: it stays the spare, and the log goes on in the
	 * segment before it. Taking it for the active one would leave the
	 * rest of that segment unused and make a new spare at every start:
	 * a node restarted in a loop would fill its disk with empty segments. */
	if (l->n_segs >= 2) {
		struct seg *z = l->segs[l->n_segs - 1], *p = l->segs[l->n_segs - 2];
		if (z->write_off == LCR_BLOCK && z->n_locs == 0 && z->top == 0 &&
		    z->version == LCR_SEG_VERSION && z->align == l->align &&
		    z->size == l->o.segment_bytes && p->version == LCR_SEG_VERSION &&
		    p->align == l->align) {
			l->n_segs--;
			z->state = SEG_SPARE;
			z->prep_stage = 6; /* prepared: nothing more to write */
			l->spare = z;
		}
	}
	for (uint32_t i = 0; i < l->n_segs; i++) {
		l->segs[i]->state = i + 1 == l->n_segs ? SEG_ACTIVE : SEG_FULL;
		if (i + 1 < l->n_segs)
			lcr_log_locs_fit(l, l->segs[i]); /* nothing is added to it */
	}
	/* A segment holds batches of one version and one alignment: a last
	 * segment written otherwise (an older build, another device or
	 * block_bytes) takes no more, and the next batch starts a new one. */
	struct seg *a = active(l);
	if (a->version != LCR_SEG_VERSION || a->align != l->align)
		a->write_off = a->size;
	return 0;
}

void lcr_log_segs_purge(struct lcr_log *l, uint64_t upto)
{
	LCR_ASSERT(upto <= l->ids.purged.index); /* the purge point came first */
	while (l->n_segs > 1) {
		struct seg *s = l->segs[0];
		uint64_t last = s->top;
		if (s->n_locs)
			LCR_ASSERT(s->locs[s->n_locs - 1].first_index +
					   s->locs[s->n_locs - 1].count - 1 <=
				   last);
		/* Not only its live entries: a batch of the next segment may start
		 * after entries of this one that a later batch truncated away, and
		 * recovery replays that batch before the truncation. Removed while
		 * those entries are above the purge point, this segment would leave
		 * a gap there, and the log would not open. */
		if (last > upto)
			break;
		char name[64];
		lcr_log_seg_name(name, sizeof(name), s->no);
		if (l->n_free < l->o.recycle_max && s->size == l->o.segment_bytes) {
			/* Kept for a next segment, under a name recovery never reads. */
			lcr_log_free_name(s->free_name, sizeof(s->free_name), s->no);
			if (renameat(l->dir_fd, name, l->dir_fd, s->free_name) < 0) {
				lcr_log_fail(l, -errno);
				return;
			}
			l->free_segs[l->n_free++] = s;
		} else {
			if (unlinkat(l->dir_fd, name, 0) < 0) {
				lcr_log_fail(l, -errno);
				return;
			}
			lcr_log_seg_free(s);
		}
		memmove(l->segs, l->segs + 1, (l->n_segs - 1) * sizeof(*l->segs));
		l->n_segs--;
		l->st.segments_purged++;
	}
	if (fsync(l->dir_fd) < 0)
		lcr_log_fail(l, -errno);
}
