/* SPDX-License-Identifier: MIT */
/*
 * The durable log of one group: segment files, group commit on io_uring, the
 * vote/meta slots, recovery. It executes the core's storage commands and
 * reports "durable up to io id", in the core's io order.
 *
 * On disk (docs/storage-format.md has the bytes):
 *   <dir>/meta                 two vote/meta slots (meta.h)
 *   <dir>/seg-<n>.log          segments, preallocated and pre-written with zeros;
 *                              a 4 KiB header block, then batches
 *   <dir>/free-<n>.seg         purged segments kept for reuse (recycle_max)
 *
 * A batch is what one write puts on disk: a 64-byte header and records,
 * starting on a fresh unit of the segment's batch alignment (the device's
 * logical block size, often 512 bytes, under O_DIRECT; 4 KiB otherwise),
 * padded to it and never overwritten: no write covers a logical block that
 * holds an acknowledged byte. Each record carries its
 * length, index, leader id, type and a CRC32C. A batch replaces the log after
 * its first index - 1, so a truncation is simply a later batch that starts
 * lower (one with no records truncates only). Recovery replays batches in
 * order. Up to writes_max batch writes are in flight per log, at consecutive
 * offsets of one segment, reported durable only in order: a crash can leave
 * any of those unacknowledged batches torn or missing and a later one intact
 * after it (an orphan), which recovery erases before the log takes a write;
 * an invalid batch with more valid data after it than writes in flight can
 * leave is corruption, and the log refuses to open, naming the file and offset.
 *
 * Group commit: appends accumulate in the open batch; lcr_log_flush() (once
 * per loop iteration) seals it and, when fewer than writes_max writes are in
 * flight, writes it. A
 * batch buffer lives in a registered arena, which also serves as the cache of
 * recent entries for replication.
 *
 * Only the thread owning the ring may use a log.
 */
#ifndef LCR_LOG_H
#define LCR_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "ring.h"
#include "types.h"

/* enum lcr_durability and enum lcr_io_mode: types.h (the node config names them too). */

/* Completion: storage made `io` and everything before it durable (err 0), or failed. */
typedef void (*lcr_log_done_fn)(void *ctx, const struct lcr_io_id *io, int err);

/*
 * The largest batch by default: 4 MiB. Group commit makes a batch of what
 * arrived while the last write was in flight; a follower catching up
 * receives faster than one write at a time can take 1 MiB O_DSYNC writes
 * (263 MB/s against 501 MB/s at 4 MiB and 822 MB/s buffered, dd on this
 * machine's disk), so the larger batches are what lets it keep up. Small
 * entries at any client count make batches far below it.
 */
#define LCR_LOG_BATCH_DEFAULT (4u << 20)

struct lcr_log_opts {
	const char *dir; /* created if missing */
	uint32_t group;
	uint64_t segment_bytes;	  /* default 64 MiB */
	uint64_t arena_bytes;	  /* batch buffers and cache; default 32 MiB */
	uint32_t batch_bytes_max; /* 0 (default): LCR_LOG_BATCH_DEFAULT, at most segment/2 */
	uint32_t durability;	  /* enum lcr_durability; default FSYNC */
	uint32_t io_mode;	  /* enum lcr_io_mode; default DIRECT_DSYNC */
	uint32_t lock_wait_ms;	  /* wait for another process's lock; default 10000 */
	/* Write zeros over a new segment before use, so that O_DIRECT writes never
	 * convert unwritten extents (each conversion costs a journal commit at the
	 * flush). Costs writing every byte twice; measured in docs/benchmarks.md. */
	bool prewrite;
	/*
	 * Batch alignment of new segments in bytes: 512, 1024, 2048 or 4096,
	 * at least the device's logical block size under O_DIRECT. 0 (the
	 * default): that logical block size (statx's O_DIRECT offset alignment)
	 * under O_DIRECT, 4096 with buffered writes or where it is not known.
	 * 4096 keeps every write off the physical block of a 512e device that
	 * holds acknowledged data (docs/storage-format.md, "Batch alignment").
	 */
	uint32_t block_bytes;
	/*
	 * Most segment files the log may hold at once; 0 (the default): as many
	 * as the filesystem holds (its size / segment_bytes), or as many as
	 * recovery found if that is more, plus one; never more than 65,536
	 * (LCR_LOG_SEGMENTS_MAX). Fixed at open. A log that needs one more
	 * segment than this fails with -ENOSPC and says so; purge to stay below.
	 */
	uint32_t segments_max;
	/*
	 * Purged segment files kept for reuse, at most (renamed free-<n>.seg;
	 * removed at open): the next segment is one of them, with a new header
	 * and its name, instead of a new file that is fallocated (and
	 * pre-written): its blocks are overwritten, not written for the first
	 * time. Default 2 (LCR_LOG_RECYCLE_DEFAULT), at most
	 * LCR_LOG_RECYCLE_MAX; 0: purged segments are deleted and every segment
	 * is a new file. Measured in docs/benchmarks.md ("Recycling purged
	 * segments").
	 */
	uint32_t recycle_max;
	/*
	 * Batch writes in flight at most, each its own write (and fdatasync
	 * where the io mode needs one) at the next offset, in log order; a batch
	 * counts as durable once it and every batch before it completed. 0 (the
	 * default): LCR_LOG_WRITES_DEFAULT (2); at most LCR_LOG_WRITES_MAX (4,
	 * log_format.h); 1: one
	 * write at a time, group commit gathering what arrives during it. A
	 * deeper queue lets the disk take large O_DIRECT + O_DSYNC batches
	 * faster (a follower catching up); small batches rarely overlap. A new
	 * segment is started only with no write in flight. The bound also bounds
	 * what recovery accepts as a crash's leftovers (docs/storage-format.md,
	 * "Writes in flight"): keep it small.
	 */
	uint32_t writes_max;
	/* Everything the log allocates, all of it at open except a segment's
	 * table when the next one is prepared; zero (the default): malloc. */
	struct lcr_allocator alloc;
	lcr_log_done_fn done;
	void *ctx;
};

#define LCR_LOG_RECYCLE_DEFAULT 2u /* lcr_log_opts.recycle_max */
#define LCR_LOG_RECYCLE_MAX	16u
#define LCR_LOG_WRITES_DEFAULT                                                                     \
	2u /* lcr_log_opts.writes_max; at most LCR_LOG_WRITES_MAX (log_format.h) */

void lcr_log_opts_default(struct lcr_log_opts *o, const char *dir);

struct lcr_log_stats {
	uint64_t batches_written;
	uint64_t entries_written;
	uint64_t bytes_written; /* of batches: headers, records, padding to the batch alignment */
	uint64_t syncs;
	uint64_t vote_writes;
	uint64_t cache_hits;
	uint64_t cache_misses;
	uint64_t disk_reads;   /* batches read back from disk (lcr_log_read) */
	uint64_t fetch_reads;  /* asynchronous reads started (lcr_log_fetch) */
	uint64_t fetch_bytes;  /* ... bytes they read */
	uint64_t fetch_hits;   /* entries taken from a fetch buffer */
	uint64_t fetch_waits;  /* entries asked for while their read was in flight */
	uint64_t fetch_errors; /* reads that failed */
	uint64_t fetch_checks; /* records whose checksum a fetch checked (each once per read) */
	uint64_t segments_created;
	uint64_t segments_prewritten; /* of those, pre-written with zeros (lcr_log_opts.prewrite) */
	uint64_t segments_purged;
	uint64_t segments_recycled; /* new segments made of purged files (not created) */
	uint64_t stalls;	    /* batch ready but the next segment was not */
};

struct lcr_log;

/*
 * Open (creating if needed) and recover. Blocks (setup, not the data path).
 * On failure returns -errno and a sentence in `why` naming the file and
 * offset for corruption (-EBADMSG). Only a directory without segments is
 * fresh: a meta file missing, empty or zeroed beside segments has lost the
 * vote and is refused; files of another format version are refused naming
 * both versions (docs/storage-format.md).
 */
int lcr_log_open(struct lcr_log **out, struct lcr_ring *ring, const struct lcr_log_opts *o,
		 char *why, size_t why_len);

/* Close: waits for writes in flight, then frees. */
void lcr_log_close(struct lcr_log *l);

/*
 * What recovery found: the durable vote, the commit hint and the last purged
 * log id; then the log ids lcr_log_first_index()..lcr_log_last(). The runtime
 * hands them to the core (lcr_core_restore, lcr_core_load_log_id).
 */
struct lcr_log_recovery {
	struct lcr_vote vote;
	struct lcr_log_id committed;
	struct lcr_log_id purged;
};
void lcr_log_recovered(const struct lcr_log *l, struct lcr_log_recovery *out);
struct lcr_log_id lcr_log_last(const struct lcr_log *l);
uint64_t lcr_log_first_index(const struct lcr_log *l);
bool lcr_log_id_at(const struct lcr_log *l, uint64_t index, struct lcr_log_id *out);
/*
 * Where recovery found membership records (type LCR_ENTRY_MEMBERSHIP), so
 * that the runtime reads back only those at open: *idx holds *n indexes,
 * ascending, a superset of the membership entries the log holds above its
 * purge point (an index may since hold another entry, or lie outside the
 * log: read each one and check its type). -E2BIG when recovery found more
 * than LCR_LOG_MSHIP_MAX: then read every entry. Not kept up after open.
 */
#define LCR_LOG_MSHIP_MAX 64
int lcr_log_memberships(const struct lcr_log *l, const uint64_t **idx, uint32_t *n);

/*
 * The storage commands (the core's SAVE_VOTE, APPEND, TRUNCATE). Each returns
 * 0 or -errno (-ENOBUFS: arena full, try after completions; -EIO etc: the
 * log has failed and stays failed). `io` is echoed by the completion.
 * Commands come in io order: an io seq never below the previous command's
 * (the core's order; asserted).
 */
int lcr_log_save_vote(struct lcr_log *l, struct lcr_vote v, const struct lcr_io_id *io);
int lcr_log_append(struct lcr_log *l, const struct lcr_entry *e, uint32_t n,
		   const struct lcr_io_id *io);
int lcr_log_truncate(struct lcr_log *l, uint64_t after, const struct lcr_io_id *io);

/*
 * The core's INSTALL_SNAPSHOT, once the runtime made the received snapshot
 * durable as the newest one (snap.h); a storage command like the three above,
 * durable in io order. With `keep_log` the log holds `last` (entries up to it
 * may still be in flight): entries up to last.index are purged, what follows
 * stays; -EINVAL when the log does not hold it. Without: every entry goes and
 * the log restarts empty after `last` (purged = last = `last`; the next
 * append is last.index + 1), written as a reset batch that starts a segment;
 * -EINVAL when `last` is below the purge point. After a crash the log is
 * either the old one or the new one (lcr_log_recovered's purged: `last`).
 */
int lcr_log_install(struct lcr_log *l, struct lcr_log_id last, bool keep_log,
		    const struct lcr_io_id *io);

/* End of a loop iteration: seal the open batch and write what can be written. */
void lcr_log_flush(struct lcr_log *l);

/*
 * Remove whole segments whose entries all have index <= upto, after
 * recording the purge point in the meta slots. Synchronous (unlink).
 */
int lcr_log_purge(struct lcr_log *l, uint64_t upto);

/*
 * An entry from the cache of recent batches: 0 with `out->data` pointing into
 * the arena (valid until the next append or flush), or -ENOENT when it is
 * only on disk (then use lcr_log_read).
 */
int lcr_log_get(struct lcr_log *l, uint64_t index, struct lcr_entry *out);

/*
 * Read one entry from disk, verifying its checksum (blocking pread; for cold
 * reads and tests). `buf` must hold the payload; returns payload length or
 * -errno (-EBADMSG on a checksum mismatch, naming nothing: the log is
 * corrupt and the caller must stop).
 */
int lcr_log_read(struct lcr_log *l, uint64_t index, struct lcr_entry *out, void *buf, size_t len);

/*
 * An entry from disk without blocking, for the leader's AppendEntries to a
 * lagging follower (what lcr_log_get no longer holds). The log keeps two
 * buffers, each filled by one io_uring read of whole batches: the batch
 * that holds `index` and the ones after it in its segment, up to the
 * buffer's size (about batch_bytes_max + LCR_ENTRY_MAX). Returns
 *   0        out->data points into a buffer, valid until lcr_log_fetch_unpin()
 *            and then until a read into that buffer starts: taking an
 *            entry also starts reading what follows it into the other
 *            buffer, so a reader going in order rarely waits;
 *   -EAGAIN  its read is in flight (or was started now, or both buffers are
 *            taken by entries handed out since the unpin): ask again after
 *            the ring's completions (they wake a sleeping lcore);
 *   -ENOENT  the log does not hold it (purged, beyond the last durable batch);
 *   -EBADMSG its bytes fail their checksum (the log is corrupt);
 *   -errno   the read failed (reported once: asking again reads again).
 * Checked after the read as lcr_log_read is. Only the ring's thread.
 */
int lcr_log_fetch(struct lcr_log *l, uint64_t index, struct lcr_entry *out);

/* The entries lcr_log_fetch handed out are no longer used: their buffers may be read into. */
void lcr_log_fetch_unpin(struct lcr_log *l);

/* Bytes the arena can still take before appends fail with -ENOBUFS. */
uint64_t lcr_log_space(const struct lcr_log *l);
bool lcr_log_busy(const struct lcr_log *l); /* writes in flight or pending */
int lcr_log_error(const struct lcr_log *l); /* the sticky error, or 0 */
/* Latency of each batch write, with its fdatasync under durability fsync. */
const struct lcr_hist *lcr_log_write_latency(const struct lcr_log *l);
void lcr_log_stats(const struct lcr_log *l, struct lcr_log_stats *st);

#endif /* LCR_LOG_H */
