/* SPDX-License-Identifier: MIT */
/*
 * Recovery at open (docs/storage-format.md, "Recovery"): the meta file first,
 * then every segment in number order, each scanned (scan.h) and its valid
 * batches replayed into the log ids and the location tables; a torn last
 * batch is cut and zeroed, anything else damaged is refused by file and
 * offset.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log_int.h"
#include "scan.h"

struct recover_ctx {
	struct lcr_log *l;
	struct seg *seg;
	int err; /* not the file's fault (no memory): reported as itself */
};

/*
 * A membership record at `index`: it replaces any found at or above it (a
 * later batch that starts lower replaced them); the runtime reads each one
 * back, so an index whose record a truncation removed is harmless.
 */
static void mship_found(struct lcr_log *l, uint64_t index)
{
	while (l->n_mship > 0 && l->mship[l->n_mship - 1] >= index)
		l->n_mship--;
	if (l->n_mship == LCR_LOG_MSHIP_MAX) {
		l->mship_over = true;
		return;
	}
	l->mship[l->n_mship++] = index;
}

/*
 * Apply one intact batch to the log recovered so far (scan.h checked what the
 * batch proves on its own). Everything here was read from disk: it is
 * checked and refused with a reason, never asserted, and checked before the
 * log-id index (which asserts its order) sees it.
 */
static int recover_accept(void *ctx, const struct lcr_scan_batch *b, char *why, size_t why_len)
{
	struct recover_ctx *rc = ctx;
	struct lcr_log *l = rc->l;
	const struct lcr_batch_hdr *h = b->hdr;
	uint64_t first = h->first_index;

	if (h->batch_seq <= l->last_batch_seq) {
		snprintf(why, why_len, "its sequence number is not above %llu, the one before",
			 (unsigned long long)l->last_batch_seq);
		return -EBADMSG;
	}
	if (h->flags & LCR_BATCH_RESET) {
		/* Everything before is gone; the log restarts after prev, unless
		 * the meta slots hold a newer purge point (a purge after it). */
		struct lcr_log_id prev = { { h->prev_term, h->prev_node }, first - 1 };
		if (prev.index >= l->ids.purged.index) {
			l->ids.n = 0;
			l->ids.purged = prev;
			l->ids.last = prev;
		} else if (l->ids.last.index > l->ids.purged.index) {
			lcr_log_ids_truncate(&l->ids, l->ids.purged.index + 1);
		}
		lcr_log_locs_clear(l);
	}
	/* A batch may replace the tail, never leave a gap. Entries at or below
	 * the purge point are committed and snapshotted: skip them. */
	if (first > l->ids.last.index + 1 && first > l->ids.purged.index + 1) {
		snprintf(why, why_len, "the log before it ends at index %llu: a gap",
			 (unsigned long long)l->ids.last.index);
		return -EBADMSG;
	}
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
		uint64_t at = b->file_off + (uint64_t)(p - (const uint8_t *)h);
		p += lcr_rec_size(r.len);
		if (i < skip)
			continue;
		struct lcr_log_id id = { { r.term, r.node }, r.index };
		if (id.index != l->ids.last.index + 1) {
			snprintf(why, why_len,
				 "record at offset %llu: index %llu does not follow %llu",
				 (unsigned long long)at, (unsigned long long)id.index,
				 (unsigned long long)l->ids.last.index);
			return -EBADMSG;
		}
		/* Leaders never go down along the log. Right above the purge
		 * point there is nothing to compare with: the purged id belongs
		 * to the final history, and an older batch replayed here may come
		 * from a leader before it. */
		if (l->ids.n > 0 && lcr_leader_id_cmp(id.lid, l->ids.last.lid) < 0) {
			snprintf(why, why_len,
				 "record at offset %llu (index %llu): leader %llu/%u is below "
				 "leader %llu/%u of the entry before",
				 (unsigned long long)at, (unsigned long long)id.index,
				 (unsigned long long)id.lid.term, id.lid.node,
				 (unsigned long long)l->ids.last.lid.term, l->ids.last.lid.node);
			return -EBADMSG;
		}
		int err = lcr_log_ids_append(&l->ids, id);
		if (err < 0) {
			rc->err = err;
			return err;
		}
		if (r.type == LCR_ENTRY_MEMBERSHIP)
			mship_found(l, id.index);
	}
	l->last_batch_seq = h->batch_seq;
	uint64_t span = lcr_log_span(h->bytes, rc->seg->align);
	if (span > l->span_found)
		l->span_found = span;
	lcr_log_locs_apply(l, rc->seg, first + skip, (uint32_t)(h->count - skip), h->bytes,
			   b->file_off);
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

/*
 * Write all `n` bytes at `off`. A short write is resubmitted for the rest,
 * which then either completes or fails with the cause (a full disk, a file
 * size limit): errno after a short write is left over from an earlier call.
 * Returns 0 or -errno (-EIO for a write that makes no progress and says
 * nothing), with the bytes written in *done.
 */
static int pwrite_all(int fd, const void *buf, size_t n, off_t off, size_t *done)
{
	*done = 0;
	while (*done < n) {
		ssize_t w = pwrite(fd, (const char *)buf + *done, n - *done, off + (off_t)*done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		*done += (size_t)w;
	}
	return 0;
}

/*
 * A new meta file: slot 0 zeros, slot 1 a valid empty state (seq 1), made
 * durable with its name before the first segment exists. So while segments
 * exist the file holds a valid slot, and one without (emptied, zeroed) beside
 * them can only mean the vote was lost.
 */
static int meta_create(struct lcr_log *l, char *why, size_t why_len)
{
	struct lcr_meta_state empty;
	uint8_t *buf = l->scratch; /* block aligned for O_DIRECT */

	memset(&empty, 0, sizeof(empty));
	memset(buf, 0, 2 * LCR_META_SLOT);
	lcr_meta_encode(buf + LCR_META_SLOT, l->o.group, 1, &empty);
	size_t done;
	int err = pwrite_all(l->meta_fd, buf, 2 * LCR_META_SLOT, 0, &done);
	if (err < 0) {
		snprintf(why, why_len, "%s/%s: %s (%zu of %d bytes written)", l->dir, LCR_META_FILE,
			 strerror(-err), done, 2 * LCR_META_SLOT);
		return err;
	}
	if (fsync(l->meta_fd) < 0 || fsync(l->dir_fd) < 0) {
		err = -errno;
		snprintf(why, why_len, "%s/%s: fsync: %s", l->dir, LCR_META_FILE, strerror(-err));
		return err;
	}
	l->meta_st = empty;
	l->meta_seq = 1;
	return 0;
}

/* Refuse a meta file that lost the vote: segments exist, so one was written. */
static int meta_lost(struct lcr_log *l, const char *how, char *why, size_t why_len)
{
	snprintf(why, why_len, "%s/%s: %s but segments exist: the vote is lost; refusing to start",
		 l->dir, LCR_META_FILE, how);
	return -EBADMSG;
}

/*
 * The vote and the purge point. Only a directory without segments is fresh
 * (docs/storage-format.md, "Fresh, lost, refused"): there a missing, empty,
 * all-zero or cut-short meta file is (re)created; beside segments each of
 * those is refused, naming the file.
 */
static int recover_meta(struct lcr_log *l, char *why, size_t why_len)
{
	struct stat sb;
	char w[256];
	int rc;

	l->meta_fd = lcr_log_open_file(l, LCR_META_FILE, 0);
	if (l->meta_fd < 0 && errno == ENOENT) {
		if (dir_has_segments(l))
			return meta_lost(l, "missing", why, why_len);
		l->meta_fd = lcr_log_open_file(l, LCR_META_FILE, O_CREAT);
	}
	if (l->meta_fd < 0 || fstat(l->meta_fd, &sb) < 0) {
		rc = -errno;
		snprintf(why, why_len, "%s/%s: %s", l->dir, LCR_META_FILE, strerror(-rc));
		return rc;
	}
	if ((rc = lcr_log_lock_file(l, l->meta_fd, LCR_META_FILE, why, why_len)) < 0)
		return rc;
	bool segs = dir_has_segments(l); /* under the lock: nobody makes one now */
	uint8_t *buf = l->scratch;	 /* block aligned for O_DIRECT reads */
	memset(buf, 0, 2 * LCR_META_SLOT);
	ssize_t n = sb.st_size;
	if (sb.st_size > 0 && sb.st_size <= 2 * LCR_META_SLOT) {
		n = pread(l->meta_fd, buf, 2 * LCR_META_SLOT, 0);
		if (n < 0) {
			rc = -errno;
			snprintf(why, why_len, "%s/%s: %s", l->dir, LCR_META_FILE, strerror(-rc));
			return rc;
		}
	}
	if (n == 0)
		return segs ? meta_lost(l, "empty (0 bytes)", why, why_len)
			    : meta_create(l, why, why_len);
	if (n < 2 * LCR_META_SLOT && !segs &&
	    file_zero(buf, (size_t)(n < LCR_META_SLOT ? n : LCR_META_SLOT))) {
		/* Cut short with its first slot zeros and no segment beside it:
		 * a process killed while it created the file (meta_create), which
		 * comes before any segment, so nothing was ever saved in it. */
		return meta_create(l, why, why_len);
	}
	/* A short file otherwise, or a long one: lcr_meta_recover names the size. */
	rc = lcr_meta_recover(buf, (size_t)n, l->o.group, &l->meta_st, &l->meta_seq, w, sizeof(w));
	if (rc < 0) {
		snprintf(why, why_len, "%s/%s: %s", l->dir, LCR_META_FILE, w);
		return rc;
	}
	if (l->meta_seq == 0) {
		/* No valid slot: all zeros, or a damaged one beside zeros. */
		if (segs)
			return meta_lost(l,
					 file_zero(buf, 2 * LCR_META_SLOT)
						 ? "all zeros"
						 : "no valid slot (one damaged, the other zeros)",
					 why, why_len);
		return meta_create(l, why, why_len);
	}
	return 0;
}

/*
 * Orphans (scan.h): intact batches after the first damaged or missing one,
 * written while it was in flight. Batches go out with consecutive sequence
 * numbers, at most LCR_LOG_WRITES_MAX in flight, all in one segment (a
 * segment switch waits for every write): if the last batch found intact has
 * sequence s, the first one missing had s + 1, and the ones in flight with
 * it at most s + LCR_LOG_WRITES_MAX. Anything else after the end is data
 * that was once complete: corruption. Where no batch was found before them
 * (the segments before were purged), only their count and order can be
 * checked (the scan did).
 *
 * Orphans are then zeroed with the torn tail (recover_seg) and that is made
 * durable before the log takes a write: new batches are written over their
 * place at the same offsets, with the same segment nonce and the same
 * sequence numbers, so an orphan left there could continue the log later
 * (a new batch of the same length in front of it would make it look like
 * the next one). Erased, nothing of it can.
 */
static int orphans_check(const struct lcr_log *l, const struct lcr_scan_result *res, char *w,
			 size_t w_len)
{
	uint64_t last = l->last_batch_seq;

	if (res->orphans == 0 || last == 0)
		return 0;
	if (res->orphan_seq_min < last + 2 || res->orphan_seq_max > last + LCR_LOG_WRITES_MAX) {
		snprintf(w, w_len,
			 "damaged batch at offset %llu, but valid batches follow (sequence %llu to "
			 "%llu after %llu): more than writes in flight leave",
			 (unsigned long long)res->end, (unsigned long long)res->orphan_seq_min,
			 (unsigned long long)res->orphan_seq_max, (unsigned long long)last);
		return -EBADMSG;
	}
	return 0;
}

/* Recover one segment file; `*torn_in` names the first segment cut short. */
static int recover_seg(struct lcr_log *l, uint64_t no, bool last, struct seg **torn_in, char *why,
		       size_t why_len)
{
	char name[64], w[256];
	struct stat sb;
	int rc = 0;

	lcr_log_seg_name(name, sizeof(name), no);
	int fd = lcr_log_open_file(l, name, 0);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(why, why_len, "%s/%s: %s", l->dir, name, strerror(errno));
		return -errno;
	}
	if ((rc = lcr_log_lock_file(l, fd, name, why, why_len)) < 0) {
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
	struct lcr_seg_info si = { 0, 0, 0 };
	if (!img || lcr_seg_check_header(img, size, l->o.group, no, &si, w, sizeof(w)) < 0) {
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
	struct seg *s = lcr_log_seg_new(l, no, fd, size, si.align);
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	fd = -1;
	s->nonce = si.nonce;
	s->version = si.version;
	lcr_log_segs_push(l, s);
	struct recover_ctx ctx = { l, s, 0 };
	struct lcr_scan_result res;
	uint64_t seq_before = l->last_batch_seq;
	rc = lcr_seg_scan(img, size, l->o.group, &si, recover_accept, &ctx, &res, w, sizeof(w));
	if (ctx.err) {
		rc = ctx.err;
		snprintf(why, why_len, "%s/%s: %s", l->dir, name, strerror(-rc));
		goto out;
	}
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
	if ((rc = orphans_check(l, &res, w, sizeof(w))) < 0) {
		snprintf(why, why_len, "%s/%s: %s", l->dir, name, w);
		goto out;
	}
	s->write_off = res.end;
	if (res.how == LCR_SCAN_TORN) {
		/* The last writes never completed, so nothing in them was
		 * acknowledged: cut them, and zero them (orphans included) so
		 * that they cannot be read as data later. */
		fprintf(stderr,
			"lcraft: %s/%s: cutting a torn batch at offset %llu (%llu bytes, %u "
			"later batches of writes in flight)\n",
			l->dir, name, (unsigned long long)res.end, (unsigned long long)res.torn_len,
			res.orphans);
		for (uint64_t off = 0; off < res.torn_len; off += ZERO_CHUNK) {
			uint64_t n =
				res.torn_len - off < ZERO_CHUNK ? res.torn_len - off : ZERO_CHUNK;
			size_t done;
			rc = pwrite_all(s->fd, l->zero, n, (off_t)(res.end + off), &done);
			if (rc < 0) {
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

/*
 * The numbers of the segment files in the directory, at most
 * LCR_LOG_SEGMENTS_MAX of them (more is refused), sorted.
 */
static int list_segments(struct lcr_log *l, uint64_t *nos, uint32_t *n, char *why, size_t why_len)
{
	int dfd = dup(l->dir_fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;
	uint64_t no;

	if (!d) {
		int err = errno;
		snprintf(why, why_len, "%s: %s", l->dir, strerror(err));
		if (dfd >= 0)
			close(dfd);
		return -err;
	}
	*n = 0;
	rewinddir(d); /* the descriptor's offset is shared with every dup of it */
	while ((de = readdir(d))) {
		if (lcr_log_is_free_name(de->d_name)) {
			/* A purged file kept for recycling: nothing in it is read. */
			unlinkat(l->dir_fd, de->d_name, 0);
			continue;
		}
		if (parse_seg_name(de->d_name, &no) < 0)
			continue;
		if (no == 0 || no >= LCR_NUMBER_MAX) {
			/* Numbered from 1, and the next one must not wrap. */
			snprintf(why, why_len, "%s/%s: segment number out of range", l->dir,
				 de->d_name);
			closedir(d);
			return -EBADMSG;
		}
		if (*n == LCR_LOG_SEGMENTS_MAX) {
			snprintf(why, why_len,
				 "%s: more than %u segment files, the most a log holds", l->dir,
				 LCR_LOG_SEGMENTS_MAX);
			closedir(d);
			return -EFBIG;
		}
		nos[(*n)++] = no;
	}
	closedir(d);
	if (*n > 1)
		qsort(nos, *n, sizeof(*nos), cmp_u64);
	return 0;
}

/*
 * The most segments this log may hold (see lcr_log_opts.segments_max), and
 * its array: `found` segments are there already.
 */
static int segs_alloc(struct lcr_log *l, uint32_t found, char *why, size_t why_len)
{
	uint64_t max = l->o.segments_max;

	if (max == 0) {
		/* As many as the filesystem holds; more if they are already there
		 * (segment_bytes was raised), and one more to grow into. */
		struct statvfs fs;
		uint64_t fs_bytes, fit = LCR_LOG_SEGMENTS_MAX;
		if (fstatvfs(l->dir_fd, &fs) == 0 && fs.f_blocks > 0 &&
		    !__builtin_mul_overflow((uint64_t)fs.f_blocks, (uint64_t)fs.f_frsize,
					    &fs_bytes))
			fit = fs_bytes / l->o.segment_bytes;
		max = (fit > found ? fit : found) + 1;
		if (max > LCR_LOG_SEGMENTS_MAX)
			max = LCR_LOG_SEGMENTS_MAX;
	}
	if (found > max) {
		snprintf(why, why_len, "%s: %u segment files, more than segments_max (%llu)",
			 l->dir, found, (unsigned long long)max);
		return -EFBIG;
	}
	l->segs_max = (uint32_t)max;
	l->segs = lcr_log_zalloc(l, l->segs_max * sizeof(*l->segs));
	return l->segs ? 0 : -ENOMEM;
}

/* Whether segment `no` begins with an intact reset batch (lcr_seg_reset_first). */
static bool starts_with_reset(struct lcr_log *l, uint64_t no)
{
	char name[64], w[256];
	struct stat sb;
	struct lcr_seg_info si;
	bool yes = false;

	lcr_log_seg_name(name, sizeof(name), no);
	int fd = openat(l->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &sb) == 0 && sb.st_size > LCR_BLOCK) {
		size_t size = (size_t)sb.st_size;
		uint8_t *img = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (img != MAP_FAILED) {
			yes = lcr_seg_check_header(img, size, l->o.group, no, &si, w, sizeof(w)) ==
				      0 &&
			      lcr_seg_reset_first(img, size, l->o.group, &si);
			munmap(img, size);
		}
	}
	close(fd);
	return yes;
}

/*
 * Where replay starts: at the newest segment whose first batch is an intact
 * reset (the log was replaced there; docs/storage-format.md, "Reset"), else
 * at the first. The segments before it are dead: removed once recovery
 * succeeded, whatever they hold (a crash may have left any of them).
 */
static uint32_t replay_start(struct lcr_log *l, const uint64_t *nos, uint32_t n)
{
	for (uint32_t i = n; i-- > 1;)
		if (starts_with_reset(l, nos[i]))
			return i;
	return 0;
}

static int remove_dead(struct lcr_log *l, const uint64_t *nos, uint32_t start, char *why,
		       size_t why_len)
{
	char name[64];

	if (start == 0)
		return 0;
	fprintf(stderr, "lcraft: %s: the log was reset in segment %llu: removing %u before it\n",
		l->dir, (unsigned long long)nos[start], start);
	for (uint32_t i = 0; i < start; i++) {
		lcr_log_seg_name(name, sizeof(name), nos[i]);
		if (unlinkat(l->dir_fd, name, 0) < 0 && errno != ENOENT) {
			int err = errno;
			snprintf(why, why_len, "%s/%s: %s", l->dir, name, strerror(err));
			return -err;
		}
	}
	if (fsync(l->dir_fd) < 0) {
		int err = errno;
		snprintf(why, why_len, "%s: fsync: %s", l->dir, strerror(err));
		return -err;
	}
	return 0;
}

static int recover_segments(struct lcr_log *l, char *why, size_t why_len)
{
	struct seg *torn = NULL;
	uint32_t n = 0, start = 0;
	int rc;

	uint64_t *nos = lcr_log_zalloc(l, LCR_LOG_SEGMENTS_MAX * sizeof(*nos)); /* open only */
	if (!nos)
		return -ENOMEM;
	if ((rc = list_segments(l, nos, &n, why, why_len)) < 0)
		goto out;
	start = replay_start(l, nos, n);
	if ((rc = segs_alloc(l, n - start, why, why_len)) < 0)
		goto out;
	for (uint32_t i = start; i < n && rc == 0; i++) {
		if (i > start && nos[i] != nos[i - 1] + 1) {
			snprintf(why, why_len, "%s: segment %llu is missing", l->dir,
				 (unsigned long long)(nos[i - 1] + 1));
			rc = -EBADMSG;
			break;
		}
		rc = recover_seg(l, nos[i], i + 1 == n, &torn, why, why_len);
	}
	if (rc == 0)
		rc = remove_dead(l, nos, start, why, why_len);
	/* An unfinished spare that recovery removed gives its number back. */
	if (l->n_segs)
		l->next_seg_no = l->segs[l->n_segs - 1]->no + 1;
out:
	lcr_log_free(l, nos);
	return rc;
}

/*
 * Disk reads go through scratch, which holds one batch this log writes
 * (batch_bytes_max and an entry). A batch written under a larger
 * batch_bytes_max is bounded by its segment: scratch grows to hold it, here
 * at open, so that a read never meets a batch it cannot hold.
 */
static int scratch_fit(struct lcr_log *l, char *why, size_t why_len)
{
	if (l->span_found <= l->scratch_bytes)
		return 0;
	void *bigger = lcr_log_zalloc_blocks(l, l->span_found);
	if (!bigger) {
		snprintf(why, why_len, "%s: no memory to read back a batch of %llu bytes", l->dir,
			 (unsigned long long)l->span_found);
		return -ENOMEM;
	}
	lcr_log_free_blocks(l, l->scratch);
	l->scratch = bigger;
	l->scratch_bytes = l->span_found;
	return 0;
}

int lcr_log_recover(struct lcr_log *l, char *why, size_t why_len)
{
	int rc;

	if ((rc = recover_meta(l, why, why_len)) < 0)
		return rc;
	/* After the meta file: opening it settled whether O_DIRECT works here. */
	if ((rc = lcr_log_align_pick(l, why, why_len)) < 0)
		return rc;
	if ((rc = lcr_log_ids_init(&l->ids, l->o.alloc, 64, l->meta_st.purged)) < 0)
		return rc;
	l->next_seg_no = 1;
	if ((rc = recover_segments(l, why, why_len)) < 0)
		return rc;
	/* A reset replayed may be newer than the meta slots' purge point (a
	 * crash before it was written there): later meta writes carry it. */
	if (l->ids.purged.index > l->meta_st.purged.index)
		l->meta_st.purged = l->ids.purged;
	return scratch_fit(l, why, why_len);
}
