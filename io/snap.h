/* SPDX-License-Identifier: MIT */
/*
 * Snapshot files of one group, written and read in chunks through io_uring.
 *
 * Writing (building a snapshot, or receiving one from a leader): chunks go
 * to <dir>/<tmp>, a temporary name of the writer's own, through two aligned
 * staging buffers; commit writes the header (last log id, the snapshot's id,
 * size, CRC32C of the data), fsyncs the file, renames it to
 * snap-<term>-<node>-<index>.snap and fsyncs the directory, then removes
 * older snapshots. A crash before the rename leaves only the temporary file,
 * which lcr_snap_remove_leftovers() removes when the group opens: a named
 * snapshot is always complete. Each writer of a folder has its own temporary
 * name, so a build and a receive run at once, and nothing but the writer
 * itself and that open ever removes one.
 *
 * Reading (restoring, or sending a snapshot to a follower): chunk by chunk,
 * never the whole file in memory, and nothing in the folder is removed. Each
 * 1 MiB chunk has its own CRC32C in a table after the data, so a damaged
 * chunk is caught before it is handed out.
 *
 * Only the thread owning the ring may use these.
 */
#ifndef LCR_SNAP_H
#define LCR_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"
#include "ring.h"

#define LCR_SNAP_CHUNK (1u << 20) /* staging buffer and default read size */
/* The snapshot file's format version (docs/storage-format.md, "Snapshots"):
 * 3 added the snapshot's id to the header, 4 the membership at its last
 * entry, 5 room for a membership with node addresses. Another version is
 * refused, naming both. */
#define LCR_SNAP_FORMAT_VERSION 5
/* Bytes of the membership the header holds, at most (an opaque payload
 * here: the runtime writes lcr_membership_encode's, at most 1,300 bytes). */
#define LCR_SNAP_MEMBERSHIP_MAX 2048
#define LCR_SNAP_TMP_MAX	32 /* bytes of a writer's temporary name, with its NUL */

struct lcr_snap_meta {
	struct lcr_log_id last; /* the last entry the snapshot covers */
	uint64_t id;		/* lcr_snapshot_meta.id: who built it, which build */
	uint64_t size;		/* data bytes */
	uint32_t data_crc;	/* CRC32C of the data */
	uint32_t group;
	uint32_t membership_len; /* bytes of `membership`, 0..LCR_SNAP_MEMBERSHIP_MAX */
	uint8_t membership[LCR_SNAP_MEMBERSHIP_MAX]; /* the membership at `last` */
};

/* Completion of a commit or a read: 0 or -errno (-EBADMSG: data corrupt). */
typedef void (*lcr_snap_done_fn)(void *ctx, int err);

struct lcr_snap_writer {
	struct lcr_allocator alloc; /* everything the writer allocates */
	struct lcr_ring *ring;
	int dir_fd;
	int fd;
	uint32_t group;
	bool direct;
	uint8_t *buf[2]; /* staging buffers, LCR_SNAP_CHUNK each */
	uint32_t fill;	 /* bytes in the current buffer */
	uint32_t cur;	 /* current buffer index */
	bool busy[2];	 /* buffer being written */
	uint64_t off;	 /* file offset of the current buffer's start */
	uint64_t size;
	uint32_t crc;
	uint32_t chunk_crc; /* of the chunk being filled */
	uint32_t *table;    /* CRC per chunk */
	uint32_t n_table, cap_table;
	uint8_t *table_buf; /* the table as written, block aligned */
	int err;
	uint32_t stage; /* commit state machine */
	struct lcr_snap_meta meta;
	char tmp[LCR_SNAP_TMP_MAX]; /* the writer's own temporary name */
	char name[96];
	uint8_t *hdr; /* one block */
	struct lcr_io_req wreq[2];
	struct lcr_io_req req;
	lcr_snap_done_fn done;
	void *ctx;
};

/*
 * Start a snapshot in `dir` (created if missing), written as `tmp` there
 * until its commit: a name ending in ".tmp" that no other live writer of
 * `dir` uses (a leftover of the same name from a crash is replaced). Buffers
 * come from `alloc` (zero: malloc). Returns 0 or -errno (-EINVAL: a bad
 * temporary name).
 */
int lcr_snap_begin(struct lcr_snap_writer *w, struct lcr_ring *ring, const char *dir,
		   const char *tmp, uint32_t group, struct lcr_allocator alloc);

/*
 * Append data. Copies into a staging buffer; a full buffer is written while
 * the other fills. Returns 0, -EAGAIN when both buffers are busy (reap the
 * ring and retry), or the writer's error.
 */
int lcr_snap_write(struct lcr_snap_writer *w, const void *data, size_t len);

/*
 * The membership at the snapshot's last entry, `len` bytes (at most
 * LCR_SNAP_MEMBERSHIP_MAX) copied into the header that lcr_snap_commit()
 * writes; before the commit. Returns 0 or -EINVAL (too long, or committing).
 */
int lcr_snap_set_membership(struct lcr_snap_writer *w, const void *m, uint32_t len);

/*
 * Make the snapshot durable under its final name; `done` runs when it is
 * (or with the error). `meta` names it: meta->last is the last log id it
 * covers, meta->id goes into the header and comes back from lcr_snap_open.
 */
int lcr_snap_commit(struct lcr_snap_writer *w, const struct lcr_snapshot_meta *meta,
		    lcr_snap_done_fn done, void *ctx);

/* Free the writer (after commit completed, or to abandon it: its temporary
 * file is removed). */
void lcr_snap_writer_free(struct lcr_snap_writer *w);

struct lcr_snap_reader {
	struct lcr_allocator alloc; /* everything the reader allocates */
	struct lcr_ring *ring;
	int fd;
	bool direct;
	struct lcr_snap_meta meta;
	char name[96];	 /* the file's, in its folder */
	uint64_t next;	 /* next data offset to read */
	uint32_t crc;	 /* CRC of data read so far, in order */
	uint32_t *table; /* CRC per chunk */
	uint8_t *buf;	 /* LCR_SNAP_CHUNK, aligned */
	uint32_t got;	 /* bytes of the current chunk in buf */
	struct lcr_io_req req;
	lcr_snap_done_fn done;
	void *ctx;
	int err;
};

/*
 * Open the newest snapshot in `dir` (a missing folder holds none); buffers
 * come from `alloc` (zero: malloc). Removes nothing: a writer may be at work
 * in `dir` meanwhile. Returns 1 with the reader ready (header and chunk table
 * checked), 0 when there is no snapshot, or -errno (-EBADMSG: the newest
 * snapshot is damaged or of another format version; `why` names the file).
 */
int lcr_snap_open(struct lcr_snap_reader *r, struct lcr_ring *ring, const char *dir, uint32_t group,
		  struct lcr_allocator alloc, char *why, size_t why_len);

/*
 * Read the next chunk (up to LCR_SNAP_CHUNK bytes) into r->buf; `done` runs
 * with 0 and r->got set (0 at the end), or an error: -EBADMSG when the
 * chunk's CRC does not match (and then nothing of it is handed out).
 */
int lcr_snap_read_next(struct lcr_snap_reader *r, lcr_snap_done_fn done, void *ctx);

void lcr_snap_reader_close(struct lcr_snap_reader *r);

/*
 * The newest snapshot's meta in `dir`, from its header alone (checked as
 * lcr_snap_open checks it; neither its data nor its chunk table is read):
 * 1 and *meta, 0 when there is none, or -errno with `why` as lcr_snap_open.
 * Blocking (one 4 KiB read); any thread.
 */
int lcr_snap_newest(const char *dir, uint32_t group, struct lcr_snap_meta *meta, char *why,
		    size_t why_len);

/*
 * Remove the temporary files (*.tmp) that writers left in `dir` when their
 * process died: never acknowledged, so garbage. Only while no writer of
 * `dir` is live (a group's open). Returns how many it removed, or -errno.
 */
int lcr_snap_remove_leftovers(const char *dir);

#endif /* LCR_SNAP_H */
