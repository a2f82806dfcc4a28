/* SPDX-License-Identifier: MIT */
/* Snapshot files: chunked writes and reads on io_uring (see snap.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "crc32c.h"
#include "lcr_assert.h"
#include "log_format.h"
#include "snap.h"
#include "types.h"

#define SNAP_MAGIC 0x5052434cu /* "LCRP" */

struct snap_hdr {
	uint32_t magic;
	uint32_t crc; /* CRC32C of bytes [8, 64) */
	uint16_t version;
	uint16_t flags;
	uint32_t group;
	uint64_t last_term;
	uint32_t last_node;
	uint32_t data_crc;
	uint64_t last_index;
	uint64_t size;	 /* data bytes; the chunk CRC table follows the padded data */
	uint32_t chunks; /* entries in the table */
	uint32_t table_crc;
	uint64_t id; /* lcr_snapshot_meta.id (version 3) */
	/* Version 4: the membership at the last entry (opaque here); version 5
	 * made room for 2,048 bytes (256 before). */
	uint32_t membership_len;
	uint8_t membership[LCR_SNAP_MEMBERSHIP_MAX];
	uint32_t reserved; /* zero */
};

/* The header's checksum covers bytes [8, 2120): every field after it, the
 * unused part of `membership` as the zeros it must be. */
_Static_assert(offsetof(struct snap_hdr, id) == 56, "snapshot header layout");
_Static_assert(offsetof(struct snap_hdr, membership_len) == 64, "snapshot header layout");
_Static_assert(offsetof(struct snap_hdr, membership) == 68, "snapshot header layout");
_Static_assert(sizeof(struct snap_hdr) == 2120, "snapshot header layout");
_Static_assert(sizeof(struct snap_hdr) <= LCR_BLOCK, "the header fits its block");

/* Zeroed whole blocks, block aligned (O_DIRECT), from `a`. */
static void *blocks(const struct lcr_allocator *a, size_t n)
{
	return lcr_allocator_aligned(a, lcr_align_up(n, LCR_BLOCK), LCR_BLOCK);
}

/* O_DIRECT where the filesystem has it, buffered otherwise (tmpfs). */
static int open_data(int dir_fd, const char *name, int flags, bool *direct)
{
	int fd = openat(dir_fd, name, flags | O_DIRECT | O_CLOEXEC, 0644);
	*direct = fd >= 0;
	if (fd < 0 && errno == EINVAL)
		fd = openat(dir_fd, name, flags | O_CLOEXEC, 0644);
	return fd;
}

/* ---- writing ------------------------------------------------------------------------- */

static void commit_step(struct lcr_snap_writer *w);

static void writer_fail(struct lcr_snap_writer *w, int err)
{
	if (!w->err)
		w->err = err;
}

static void data_written(struct lcr_io_req *req, int res)
{
	struct lcr_snap_writer *w = req->ctx;
	uint32_t i = req == &w->wreq[0] ? 0 : 1;

	w->busy[i] = false;
	if (res < 0)
		writer_fail(w, res);
	if (w->stage == 1)
		commit_step(w);
}

static int table_push(struct lcr_snap_writer *w)
{
	if (w->n_table == w->cap_table) {
		uint32_t cap = w->cap_table ? w->cap_table * 2 : 256;
		uint32_t *t = lcr_allocator_zalloc(&w->alloc, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		if (w->n_table)
			memcpy(t, w->table, w->n_table * sizeof(*t));
		lcr_allocator_free(&w->alloc, w->table);
		w->table = t;
		w->cap_table = cap;
	}
	w->table[w->n_table++] = w->chunk_crc;
	w->chunk_crc = 0;
	return 0;
}

static void submit_buf(struct lcr_snap_writer *w, uint32_t i, uint32_t len)
{
	w->busy[i] = true;
	lcr_io_prep(&w->wreq[i], LCR_IO_WRITE, w->fd, w->buf[i], len, w->off, data_written, w);
	lcr_ring_queue(w->ring, &w->wreq[i]);
	w->off += len;
}

/* A temporary name: "x.tmp", no slash, short enough for w->tmp. */
static bool tmp_name_ok(const char *tmp)
{
	size_t n = strnlen(tmp, LCR_SNAP_TMP_MAX);
	return n > 4 && n < LCR_SNAP_TMP_MAX && !strchr(tmp, '/') &&
	       strcmp(tmp + n - 4, ".tmp") == 0;
}

int lcr_snap_begin(struct lcr_snap_writer *w, struct lcr_ring *ring, const char *dir,
		   const char *tmp, uint32_t group, struct lcr_allocator alloc)
{
	memset(w, 0, sizeof(*w));
	w->alloc = alloc;
	w->ring = ring;
	w->group = group;
	w->fd = -1;
	w->dir_fd = -1;
	if (!tmp_name_ok(tmp))
		return -EINVAL;
	snprintf(w->tmp, sizeof(w->tmp), "%s", tmp);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dir_fd < 0)
		return -errno;
	/* The name is this writer's alone: what it holds is a leftover. */
	w->fd = open_data(w->dir_fd, w->tmp, O_RDWR | O_CREAT | O_TRUNC, &w->direct);
	w->buf[0] = blocks(&w->alloc, LCR_SNAP_CHUNK);
	w->buf[1] = blocks(&w->alloc, LCR_SNAP_CHUNK);
	w->hdr = blocks(&w->alloc, LCR_BLOCK);
	if (w->fd < 0 || !w->buf[0] || !w->buf[1] || !w->hdr) {
		int err = w->fd < 0 ? -errno : -ENOMEM;
		lcr_snap_writer_free(w);
		return err;
	}
	w->off = LCR_BLOCK; /* data after the header block */
	return 0;
}

int lcr_snap_write(struct lcr_snap_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t taken = 0;

	if (w->err)
		return w->err;
	if (w->stage != 0)
		return -EINVAL;
	while (taken < len) {
		if (w->busy[w->cur])
			break;
		size_t n = LCR_SNAP_CHUNK - w->fill;
		if (n > len - taken)
			n = len - taken;
		memcpy(w->buf[w->cur] + w->fill, p + taken, n);
		w->crc = lcr_crc32c(w->crc, p + taken, n);
		w->chunk_crc = lcr_crc32c(w->chunk_crc, p + taken, n);
		w->fill += (uint32_t)n;
		w->size += n;
		taken += n;
		if (w->fill == LCR_SNAP_CHUNK) {
			if (table_push(w) < 0)
				return -ENOMEM;
			submit_buf(w, w->cur, LCR_SNAP_CHUNK);
			w->cur ^= 1;
			w->fill = 0;
		}
	}
	return taken == 0 && len > 0 ? -EAGAIN : (int)taken;
}

static void commit_done(struct lcr_io_req *req, int res)
{
	struct lcr_snap_writer *w = req->ctx;
	if (res < 0)
		writer_fail(w, res);
	commit_step(w);
}

/* Remove every snapshot older than the one just committed. */
static void remove_older(struct lcr_snap_writer *w)
{
	int dfd = dup(w->dir_fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "snap-", 5) != 0 || strcmp(de->d_name, w->name) == 0)
			continue;
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".snap") != 0)
			continue;
		/* Names sort like log ids: older ones sort lower. */
		if (strcmp(de->d_name, w->name) < 0)
			unlinkat(w->dir_fd, de->d_name, 0);
	}
	closedir(d);
}

/*
 * The commit: remaining data, then the header, fsync, rename into place,
 * fsync the directory. Each step starts when the previous one completed.
 */
static void commit_step(struct lcr_snap_writer *w)
{
	if (w->err && w->stage < 6) {
		if (w->busy[0] || w->busy[1] || w->req.in_flight)
			return;
		w->stage = 6;
		w->done(w->ctx, w->err);
		return;
	}
	switch (w->stage) {
	case 1: {
		if (w->busy[0] || w->busy[1])
			return;
		/* The chunk CRC table, after the data. */
		w->stage = 10;
		size_t tlen = lcr_align_up((size_t)w->n_table * 4 + 1, LCR_BLOCK);
		w->table_buf = blocks(&w->alloc, tlen);
		if (!w->table_buf) {
			writer_fail(w, -ENOMEM);
			commit_step(w);
			return;
		}
		if (w->n_table)
			memcpy(w->table_buf, w->table, (size_t)w->n_table * 4);
		lcr_io_prep(&w->req, LCR_IO_WRITE, w->fd, w->table_buf, tlen, w->off, commit_done,
			    w);
		lcr_ring_queue(w->ring, &w->req);
		return;
	}
	case 10:
		w->stage = 2;
		struct snap_hdr h;
		memset(&h, 0, sizeof(h));
		h.magic = SNAP_MAGIC;
		h.version = LCR_SNAP_FORMAT_VERSION;
		h.group = w->group;
		h.last_term = w->meta.last.lid.term;
		h.last_node = w->meta.last.lid.node;
		h.last_index = w->meta.last.index;
		h.size = w->size;
		h.data_crc = w->crc;
		h.chunks = w->n_table;
		h.table_crc = w->n_table ? lcr_crc32c(0, w->table, (size_t)w->n_table * 4) : 0;
		h.id = w->meta.id;
		h.membership_len = w->meta.membership_len;
		memcpy(h.membership, w->meta.membership, w->meta.membership_len);
		h.crc = lcr_crc32c(0, (const char *)&h + 8, sizeof(h) - 8);
		memset(w->hdr, 0, LCR_BLOCK);
		memcpy(w->hdr, &h, sizeof(h));
		lcr_io_prep(&w->req, LCR_IO_WRITE, w->fd, w->hdr, LCR_BLOCK, 0, commit_done, w);
		lcr_ring_queue(w->ring, &w->req);
		return;
	case 2:
		w->stage = 3;
		lcr_io_prep(&w->req, LCR_IO_FSYNC, w->fd, NULL, 0, 0, commit_done, w);
		lcr_ring_queue(w->ring, &w->req);
		return;
	case 3:
		w->stage = 4;
		lcr_io_prep(&w->req, LCR_IO_RENAMEAT, w->dir_fd, w->tmp, 0, 0, commit_done, w);
		w->req.arg = w->name;
		lcr_ring_queue(w->ring, &w->req);
		return;
	case 4:
		w->stage = 5;
		lcr_io_prep(&w->req, LCR_IO_FSYNC, w->dir_fd, NULL, 0, 0, commit_done, w);
		lcr_ring_queue(w->ring, &w->req);
		return;
	case 5:
		w->stage = 6;
		remove_older(w);
		w->done(w->ctx, 0);
		return;
	}
}

int lcr_snap_set_membership(struct lcr_snap_writer *w, const void *m, uint32_t len)
{
	if (len > LCR_SNAP_MEMBERSHIP_MAX || (len > 0 && !m) || w->stage != 0)
		return -EINVAL;
	memset(w->meta.membership, 0, sizeof(w->meta.membership));
	if (len > 0)
		memcpy(w->meta.membership, m, len);
	w->meta.membership_len = len;
	return 0;
}

int lcr_snap_commit(struct lcr_snap_writer *w, const struct lcr_snapshot_meta *meta,
		    lcr_snap_done_fn done, void *ctx)
{
	struct lcr_log_id last = meta->last;

	if (w->err)
		return w->err;
	if (w->stage != 0)
		return -EINVAL;
	w->meta.last = last;
	w->meta.id = meta->id;
	w->meta.size = w->size;
	w->meta.data_crc = w->crc;
	w->meta.group = w->group;
	w->done = done;
	w->ctx = ctx;
	snprintf(w->name, sizeof(w->name), "snap-%016llx-%08x-%016llx.snap",
		 (unsigned long long)last.lid.term, last.lid.node, (unsigned long long)last.index);
	w->stage = 1;
	if (w->fill > 0) {
		if (table_push(w) < 0)
			return -ENOMEM;
		uint32_t len = (uint32_t)lcr_align_up(w->fill, LCR_BLOCK);
		memset(w->buf[w->cur] + w->fill, 0, len - w->fill);
		if (w->busy[w->cur])
			return -EINVAL; /* cannot happen: a busy buffer is never filled */
		submit_buf(w, w->cur, len);
		w->fill = 0;
	}
	commit_step(w);
	return 0;
}

void lcr_snap_writer_free(struct lcr_snap_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->dir_fd >= 0 && w->tmp[0] && (w->stage != 6 || w->err))
		unlinkat(w->dir_fd, w->tmp, 0);
	if (w->dir_fd >= 0)
		close(w->dir_fd);
	lcr_allocator_free_aligned(&w->alloc, w->buf[0]);
	lcr_allocator_free_aligned(&w->alloc, w->buf[1]);
	lcr_allocator_free_aligned(&w->alloc, w->hdr);
	lcr_allocator_free(&w->alloc, w->table);
	lcr_allocator_free_aligned(&w->alloc, w->table_buf);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->dir_fd = -1;
}

/* ---- reading ------------------------------------------------------------------------- */

/* A snapshot file's name, snap-<term>-<node>-<index>.snap (as the writer makes
 * it, 52 characters), read into its last log id: whether it is one. */
static bool name_lid(const char *name, unsigned long long *term, unsigned int *node,
		     unsigned long long *index)
{
	int end = 0;
	return sscanf(name, "snap-%16llx-%8x-%16llx.snap%n", term, node, index, &end) == 3 &&
	       name[end] == 0 && strlen(name) == 52;
}

static int newest_name(int dir_fd, char *out, size_t n)
{
	int dfd = dup(dir_fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;
	bool found = false;

	LCR_ASSERT(n > 52);
	if (!d)
		return -errno;
	out[0] = 0;
	while ((de = readdir(d))) {
		unsigned long long t, i;
		unsigned int node;
		if (!name_lid(de->d_name, &t, &node, &i))
			continue;
		if (!found || strcmp(de->d_name, out) > 0) {
			memcpy(out, de->d_name, 53); /* name_lid: 52 characters */
			found = true;
		}
	}
	closedir(d);
	return found ? 1 : 0;
}

/*
 * Read and check the header of snapshot `name` (open as `fd`, `file_size`
 * bytes) into *h, using `blk` (one aligned block): 0, or -EBADMSG with why.
 * Every value is bounded before it is used; the version is looked at before
 * anything else (another version's checksum may cover other bytes).
 */
static int header_read(int fd, uint64_t file_size, uint8_t *blk, uint32_t group, struct snap_hdr *h,
		       const char *dir, const char *name, char *why, size_t why_len)
{
	if (pread(fd, blk, LCR_BLOCK, 0) != LCR_BLOCK) {
		snprintf(why, why_len, "%s/%s: snapshot shorter than its header", dir, name);
		return -EBADMSG;
	}
	memcpy(h, blk, sizeof(*h));
	if (h->magic == SNAP_MAGIC && h->version != LCR_SNAP_FORMAT_VERSION) {
		snprintf(why, why_len, "%s/%s: format version %u, this build reads %u", dir, name,
			 h->version, LCR_SNAP_FORMAT_VERSION);
		return -EBADMSG;
	}
	if (h->magic != SNAP_MAGIC || h->group != group ||
	    h->crc != lcr_crc32c(0, (const char *)blk + 8, sizeof(*h) - 8)) {
		snprintf(why, why_len, "%s/%s: damaged snapshot header", dir, name);
		return -EBADMSG;
	}
	if (h->membership_len > LCR_SNAP_MEMBERSHIP_MAX || h->reserved != 0) {
		snprintf(why, why_len, "%s/%s: membership of %u bytes (at most %d)", dir, name,
			 h->membership_len, LCR_SNAP_MEMBERSHIP_MAX);
		return -EBADMSG;
	}
	for (uint32_t i = h->membership_len; i < LCR_SNAP_MEMBERSHIP_MAX; i++)
		if (h->membership[i] != 0) {
			snprintf(why, why_len, "%s/%s: bytes after the membership are not zero",
				 dir, name);
			return -EBADMSG;
		}
	if (h->flags != 0) {
		snprintf(why, why_len, "%s/%s: flags 0x%04x, this build writes none", dir, name,
			 h->flags);
		return -EBADMSG;
	}
	if (h->last_term >= LCR_NUMBER_MAX || h->last_index >= LCR_NUMBER_MAX) {
		snprintf(why, why_len, "%s/%s: last log id %llu/%u/%llu out of range (>= 2^62)",
			 dir, name, (unsigned long long)h->last_term, h->last_node,
			 (unsigned long long)h->last_index);
		return -EBADMSG;
	}
	/* The name is how the newest is chosen: a header that says otherwise
	 * is not the file it names. */
	unsigned long long t = 0, i = 0;
	unsigned int node = 0;
	if (!name_lid(name, &t, &node, &i) || t != h->last_term || node != h->last_node ||
	    i != h->last_index) {
		snprintf(why, why_len,
			 "%s/%s: the header's last log id %llu/%u/%llu is not the one the "
			 "file's name gives (%llu/%u/%llu)",
			 dir, name, (unsigned long long)h->last_term, h->last_node,
			 (unsigned long long)h->last_index, t, node, i);
		return -EBADMSG;
	}
	uint64_t room = file_size - LCR_BLOCK; /* the header block was read */
	if (h->size > room || lcr_align_up(h->size, LCR_BLOCK) > room) {
		snprintf(why, why_len, "%s/%s: header says %llu bytes of data, the file holds %llu",
			 dir, name, (unsigned long long)h->size, (unsigned long long)room);
		return -EBADMSG;
	}
	return 0;
}

static void meta_of(struct lcr_snap_meta *m, const struct snap_hdr *h)
{
	m->last.lid.term = h->last_term;
	m->last.lid.node = h->last_node;
	m->last.index = h->last_index;
	m->id = h->id;
	m->size = h->size;
	m->data_crc = h->data_crc;
	m->group = h->group;
	m->membership_len = h->membership_len;
	memcpy(m->membership, h->membership, sizeof(m->membership));
}

/* Open the newest snapshot of `dir`: 1 with *fd and its name, 0, or -errno. */
static int newest_open(const char *dir, char *name, size_t name_len, int *fd, bool *direct,
		       char *why, size_t why_len)
{
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, why_len, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	int rc = newest_name(dir_fd, name, name_len);
	if (rc <= 0) {
		if (rc < 0)
			snprintf(why, why_len, "%s: %s", dir, strerror(-rc));
		close(dir_fd);
		return rc;
	}
	*fd = open_data(dir_fd, name, O_RDONLY, direct);
	rc = *fd < 0 ? -errno : 1;
	close(dir_fd);
	if (rc < 0)
		snprintf(why, why_len, "%s/%s: %s", dir, name, strerror(-rc));
	return rc;
}

int lcr_snap_newest(const char *dir, uint32_t group, struct lcr_snap_meta *meta, char *why,
		    size_t why_len)
{
	struct lcr_allocator heap = { 0 };
	char name[96];
	struct snap_hdr h;
	struct stat sb;
	bool direct;
	int fd = -1;

	memset(meta, 0, sizeof(*meta));
	int rc = newest_open(dir, name, sizeof(name), &fd, &direct, why, why_len);
	if (rc <= 0)
		return rc;
	uint8_t *blk = blocks(&heap, LCR_BLOCK);
	if (!blk)
		rc = -ENOMEM;
	else if (fstat(fd, &sb) < 0)
		rc = -errno;
	else
		rc = header_read(fd, (uint64_t)sb.st_size, blk, group, &h, dir, name, why, why_len);
	if (rc == 0) {
		meta_of(meta, &h);
		rc = 1;
	} else if (rc != -EBADMSG) {
		snprintf(why, why_len, "%s/%s: %s", dir, name, strerror(-rc));
	}
	lcr_allocator_free_aligned(&heap, blk);
	close(fd);
	return rc;
}

int lcr_snap_open(struct lcr_snap_reader *r, struct lcr_ring *ring, const char *dir, uint32_t group,
		  struct lcr_allocator alloc, char *why, size_t why_len)
{
	char name[96];
	struct snap_hdr h;
	struct stat sb;
	int rc;

	memset(r, 0, sizeof(*r));
	r->alloc = alloc;
	r->ring = ring;
	r->fd = -1;
	rc = newest_open(dir, name, sizeof(name), &r->fd, &r->direct, why, why_len);
	if (rc <= 0)
		return rc;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->buf = blocks(&r->alloc, LCR_SNAP_CHUNK);
	if (!r->buf || fstat(r->fd, &sb) < 0) {
		rc = !r->buf ? -ENOMEM : -errno;
		snprintf(why, why_len, "%s/%s: %s", dir, name, strerror(-rc));
		lcr_snap_reader_close(r);
		return rc;
	}
	rc = header_read(r->fd, (uint64_t)sb.st_size, r->buf, group, &h, dir, name, why, why_len);
	if (rc < 0) {
		lcr_snap_reader_close(r);
		return rc;
	}
	uint64_t chunks = (h.size + LCR_SNAP_CHUNK - 1) / LCR_SNAP_CHUNK;
	uint64_t toff = LCR_BLOCK + lcr_align_up(h.size, LCR_BLOCK);
	size_t tlen = lcr_align_up((size_t)chunks * 4 + 1, LCR_BLOCK);
	uint8_t *tb = h.chunks == chunks ? blocks(&r->alloc, tlen) : NULL;
	r->table = tb ? lcr_allocator_zalloc(&r->alloc, (size_t)chunks * 4 + 4) : NULL;
	if (!tb || !r->table || (uint64_t)sb.st_size < toff + tlen ||
	    pread(r->fd, tb, tlen, (off_t)toff) != (ssize_t)tlen ||
	    lcr_crc32c(0, tb, (size_t)chunks * 4) != h.table_crc) {
		lcr_allocator_free_aligned(&r->alloc, tb);
		snprintf(why, why_len, "%s/%s: damaged snapshot chunk table", dir, name);
		lcr_snap_reader_close(r);
		return -EBADMSG;
	}
	memcpy(r->table, tb, (size_t)chunks * 4);
	lcr_allocator_free_aligned(&r->alloc, tb);
	meta_of(&r->meta, &h);
	return 1;
}

int lcr_snap_remove_leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0 &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static void chunk_read(struct lcr_io_req *req, int res)
{
	struct lcr_snap_reader *r = req->ctx;
	uint64_t want =
		r->meta.size - r->next < LCR_SNAP_CHUNK ? r->meta.size - r->next : LCR_SNAP_CHUNK;
	if (res >= 0 && (uint64_t)res < want)
		res = -EBADMSG; /* the file ends early */
	if (res < 0) {
		r->err = res;
		r->done(r->ctx, res);
		return;
	}
	/* Verified after the read as it was computed before the write. */
	if (lcr_crc32c(0, r->buf, want) != r->table[r->next / LCR_SNAP_CHUNK]) {
		r->err = -EBADMSG;
		r->done(r->ctx, -EBADMSG);
		return;
	}
	r->got = (uint32_t)want;
	r->crc = lcr_crc32c(r->crc, r->buf, want);
	r->next += want;
	if (r->next == r->meta.size && r->crc != r->meta.data_crc) {
		r->err = -EBADMSG;
		r->done(r->ctx, -EBADMSG);
		return;
	}
	r->done(r->ctx, 0);
}

int lcr_snap_read_next(struct lcr_snap_reader *r, lcr_snap_done_fn done, void *ctx)
{
	if (r->err)
		return r->err;
	r->done = done;
	r->ctx = ctx;
	r->got = 0;
	if (r->next >= r->meta.size) {
		done(ctx, 0);
		return 0;
	}
	uint64_t want =
		r->meta.size - r->next < LCR_SNAP_CHUNK ? r->meta.size - r->next : LCR_SNAP_CHUNK;
	lcr_io_prep(&r->req, LCR_IO_READ, r->fd, r->buf, lcr_align_up(want, LCR_BLOCK),
		    LCR_BLOCK + r->next, chunk_read, r);
	lcr_ring_queue(r->ring, &r->req);
	return 0;
}

void lcr_snap_reader_close(struct lcr_snap_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	lcr_allocator_free_aligned(&r->alloc, r->buf);
	lcr_allocator_free(&r->alloc, r->table);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}
