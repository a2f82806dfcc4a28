/* SPDX-License-Identifier: MIT */
/*
 * The state one log shares between its files (not installed, not for the
 * runtime: log.h is the contract). Each file holds one concern:
 *   log.c          options, open and close, failure, the durability queue
 *                  (completions in io order), queries, stats
 *   log_seg.c      segment files: creation, preparation of the spare,
 *                  activation, the location tables, purge
 *   log_batch.c    the arena of batches: append, truncate, seal, write
 *   log_meta.c     vote and purge point: meta slot writes
 *   log_recover.c  open-time recovery: the meta file, then every segment
 *   log_read.c     reading entries back: from the arena, or from disk
 * Only the thread owning the ring may touch a log, so nothing here locks.
 */
#ifndef LCR_LOG_INT_H
#define LCR_LOG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hist.h"
#include "lcr_assert.h"
#include "log.h"
#include "log_format.h"
#include "log_ids.h"
#include "meta.h"
#include "ring.h"

#define GET_CURSORS 8 /* readers of cached entries at once (see struct lcr_log) */

#define PREP_PAR       4	    /* zero writes in flight while preparing a segment */
#define PREP_PACED     (256u << 10) /* bytes per zero write while the spare is ahead */
#define ZERO_CHUNK     (1u << 20)   /* bytes per zero write */
#define PEND_MAX       4096	    /* durability queue entries */
#define PREWRITE_BELOW (64u << 10)  /* mean write size under which segments are pre-written */
#define FETCH_BUFS     2	    /* asynchronous cold reads (lcr_log_fetch): buffers per log */
#define FETCH_OK       4 /* batches per fetch buffer whose verified records it remembers */

/*
 * Most segments one log may hold, whatever its options: 4 TiB of the default
 * 64 MiB segments; the array of them is 512 KiB. The bound of each log
 * (segs_max) is fixed at open, below this (see lcr_log_opts.segments_max).
 */
#define LCR_LOG_SEGMENTS_MAX 65536u

enum { SEG_PREPARING = 1, SEG_SPARE, SEG_ACTIVE, SEG_FULL };
enum { MB_OPEN = 1, MB_SEALED, MB_WRITING, MB_DONE };
enum { PEND_BATCH = 1, PEND_META };
/* A PEND_META ref for a purge point still waiting for batches: the meta
 * write that will carry it is not known yet (lcr_log_meta_release). */
#define PEND_REF_HELD UINT64_MAX

/* A durable batch's place on disk (its live records only). */
struct loc {
	uint64_t first_index;
	uint32_t count;
	uint32_t bytes;
	uint64_t file_off;
};

struct seg {
	uint64_t no;
	uint64_t nonce; /* in its header and in every batch written into it */
	int fd;
	uint64_t size;
	uint64_t write_off; /* where the next batch goes */
	uint32_t version;   /* LCR_SEG_VERSION, or LCR_SEG_VERSION_4K (recovered, never written) */
	uint32_t align;	    /* its batches start at multiples of it and are padded to it */
	uint32_t state;
	struct loc *locs; /* live batches, in log order */
	uint32_t n_locs, cap_locs;
	/* The highest index a durable batch in it holds, live or truncated away
	 * since (0 after a durable reset): a later batch may continue from any
	 * of them, so recovery needs the segment until the purge point passes it. */
	uint64_t top;
	/* Preparation. */
	struct lcr_log *log;
	uint64_t prep_off;
	uint32_t prep_inflight;
	uint32_t prep_stage;
	int prep_err;
	bool prewrite; /* this segment gets zeros written before use */
	bool recycled; /* a purged file made this segment: renamed from free_name */
	char free_name[32];
	char name[32];
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
	bool reset;		/* LCR_BATCH_RESET: the log restarts after `prev` */
	struct lcr_log_id prev; /* reset: the log id before first_index */
	struct seg *seg;
	uint64_t file_off;
	uint64_t batch_seq;
	uint64_t issued_ns; /* when its write went to the ring */
	struct lcr_log *log;
	bool completed; /* its write (and sync) completed; durable once every earlier one is */
	struct lcr_io_req wreq, sreq;
};

/*
 * A buffer of asynchronous cold reads (lcr_log_fetch): one io_uring read of
 * whole batches of one segment, from the batch that holds the entry asked
 * for up to the end of the last durable batch (or the buffer's size). Its
 * bytes stay until the next read into it: batches are never overwritten in
 * place, so what it holds is checked against the location tables (segment
 * number, offset) and the batch header and record checksums each time an
 * entry is taken from it.
 */
struct fetch_buf {
	struct lcr_log *log;
	uint8_t *buf;	   /* fetch_bytes, block aligned (O_DIRECT) */
	uint64_t seg;	   /* the segment its bytes come from (0: none) */
	uint64_t off, len; /* file bytes [off, off + len) it holds, or reads */
	bool reading;	   /* a read is in flight into it */
	bool pinned;	   /* entries were handed out of it since lcr_log_fetch_unpin */
	int err;	   /* the last read failed: reported once, then forgotten */
	uint64_t used;	   /* when it last served or filled (fetch_clock): the least recent goes */
	uint64_t next;	   /* the first index after the last whole batch it holds */
	bool ahead;	   /* the read ahead after it was tried */
	/* The batch last walked in it, for reading in order without starting over. */
	uint64_t cur_off, cur_first;
	uint32_t cur_i, cur_pos;
	/*
	 * Batches (file offsets; 0: none) whose first n records were checked
	 * (their CRCs) since this fill: a walk that starts over (a request
	 * retried when the window had no room, a message that spans two
	 * batches) steps over them by length instead of checksumming them
	 * again. Walks start at a batch's first record or at the cursor, so
	 * what was checked is always a prefix. Forgotten when the buffer is
	 * read into again.
	 */
	struct {
		uint64_t off;
		uint32_t n;
	} ok[FETCH_OK];
	uint32_t ok_next; /* the slot the next new batch takes (round robin) */
	struct lcr_io_req req;
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
	/* Indexes of the membership records recovery replayed, ascending
	 * (lcr_log_memberships); mship_over: more than LCR_LOG_MSHIP_MAX. */
	uint64_t mship[LCR_LOG_MSHIP_MAX];
	uint32_t n_mship;
	bool mship_over;

	/* Segments, oldest first; the last one is active. The array is allocated
	 * at open for segs_max segments and never grows. */
	struct seg **segs;
	uint32_t n_segs, segs_max;
	struct seg *spare;
	/* Purged segment files kept (as free-<n>.seg) to become the next
	 * segments: a new header and a rename instead of creating and
	 * pre-writing a file; at most o.recycle_max of them. Removed at open. */
	struct seg *free_segs[LCR_LOG_RECYCLE_MAX];
	uint32_t n_free;
	int spare_err; /* preparing the spare failed: fatal once a batch needs it */
	bool spare_retried;
	uint64_t next_seg_no;
	uint64_t last_batch_seq;
	uint64_t span_found; /* the largest batch recovery found, header and padding included */
	/* The batch alignment of the segments this log makes (lcr_log_align_pick):
	 * the device's logical block size under O_DIRECT, 4 KiB otherwise. */
	uint32_t align;

	/* Arena of batch buffers, registered with the ring when possible. */
	uint8_t *arena;
	uint64_t arena_bytes;
	bool arena_fixed; /* registered with the ring, in slot arena_slot */
	int arena_slot;
	struct mbatch *mb; /* ring of batches, oldest at mb_head */
	uint32_t mb_cap, mb_head, mb_n;
	uint64_t next_wid;
	/* Batches issued and not yet durable (MB_WRITING), at most o.writes_max:
	 * the newest `writing` of the mb_issued batches from mb_head. */
	uint32_t writing;
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
	uint64_t purge_pending; /* unlink segments up to this index after the meta write ... */
	uint64_t purge_gen;	/* ... of this generation (the first to carry the purge point) */
	/* A purge point waits for the batches issued before it (lcr_log_meta_release). */
	uint64_t purge_wait_wid;      /* until this batch is durable (0: none waits) ... */
	struct lcr_log_id purge_held; /* ... this purge point */

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

	/* Asynchronous cold reads (lcr_log_fetch), each buffer fetch_bytes. */
	struct fetch_buf fetch[FETCH_BUFS];
	uint64_t fetch_bytes;
	uint64_t fetch_clock;

	struct lcr_log_stats st;
	struct lcr_hist write_lat; /* batch write (+ fdatasync), issue to completion */
};

/* ---- helpers shared by the files ---------------------------------------------------- */

/* Zeroed memory from the log's allocator (lcr_log_opts.alloc), or NULL. */
static inline void *lcr_log_zalloc(const struct lcr_log *l, size_t n)
{
	return lcr_allocator_zalloc(&l->o.alloc, n);
}

static inline void lcr_log_free(const struct lcr_log *l, void *p)
{
	lcr_allocator_free(&l->o.alloc, p);
}

/* Zeroed whole blocks, block aligned (O_DIRECT buffers), from the log's allocator. */
static inline void *lcr_log_zalloc_blocks(const struct lcr_log *l, size_t n)
{
	return lcr_allocator_aligned(&l->o.alloc, lcr_align_up(n, LCR_BLOCK), LCR_BLOCK);
}

static inline void lcr_log_free_blocks(const struct lcr_log *l, void *p)
{
	lcr_allocator_free_aligned(&l->o.alloc, p);
}

/* Whether a batch or meta write needs its own fdatasync (no RWF_DSYNC). */
static inline bool lcr_log_needs_sync_op(const struct lcr_log *l)
{
	return l->o.durability == LCR_DURABILITY_FSYNC && l->o.io_mode != LCR_IO_DIRECT_DSYNC;
}

/*
 * Whether a batch or meta write is durable by itself (RWF_DSYNC): the files
 * are opened without O_DSYNC, so that the zeros written ahead into a spare
 * segment do not each pay a flush of the device's cache (its preparation
 * ends with one fsync); only the writes that must be durable ask for it.
 */
static inline bool lcr_log_write_dsync(const struct lcr_log *l)
{
	return l->o.durability == LCR_DURABILITY_FSYNC && l->o.io_mode == LCR_IO_DIRECT_DSYNC;
}

/* Batch i of the arena's ring, counted from the oldest. */
static inline struct mbatch *lcr_log_mb_at(const struct lcr_log *l, uint32_t i)
{
	LCR_ASSERT(i < l->mb_n);
	LCR_ASSERT(l->mb_n <= l->mb_cap);
	return &l->mb[(l->mb_head + i) % l->mb_cap];
}

/* Bytes a batch of `bytes` record bytes takes on disk: header and records, padded. */
static inline uint64_t lcr_log_span(uint32_t bytes, uint32_t align)
{
	return lcr_align_up(sizeof(struct lcr_batch_hdr) + (uint64_t)bytes, align);
}

/* Bytes a batch takes in the arena and on disk: padded to the log's batch alignment. */
static inline uint64_t lcr_log_mb_span(const struct mbatch *b)
{
	return lcr_log_span(b->bytes, b->log->align);
}

/* ---- log.c: files, failure, the durability queue ----------------------------------- */

/* Open a file of the log in its directory (falls back to buffered I/O without O_DIRECT). */
int lcr_log_open_file(struct lcr_log *l, const char *name, int extra);
/* Lock a file of the log, waiting up to lock_wait_ms; -EBUSY names the holder's file. */
int lcr_log_lock_file(struct lcr_log *l, int fd, const char *name, char *why, size_t why_len);
/* Stop the log for good with `err` (reported once through the completion). */
void lcr_log_fail(struct lcr_log *l, int err);
/* Queue the storage command `io`, durable when write `ref` of `kind` is; -ENOBUFS when full. */
int lcr_log_pend_push(struct lcr_log *l, const struct lcr_io_id *io, uint8_t kind, uint64_t ref);
/* Writes of `kind` up to `upto_ref` are durable. */
void lcr_log_pend_mark(struct lcr_log *l, uint8_t kind, uint64_t upto_ref);
/* Report the newest io id whose command and all earlier ones are durable. */
void lcr_log_report(struct lcr_log *l);

/* ---- log_seg.c: segments ------------------------------------------------------------ */

void lcr_log_seg_name(char *buf, size_t n, uint64_t no);
/* The name of a purged segment file kept for recycling; true when `name` is one. */
void lcr_log_free_name(char *buf, size_t n, uint64_t no);
bool lcr_log_is_free_name(const char *name);
/*
 * Choose the log's batch alignment at open, once the io mode is settled
 * (lcr_log_opts.block_bytes, else the directory's O_DIRECT offset alignment).
 */
int lcr_log_align_pick(struct lcr_log *l, char *why, size_t why_len);
/* A segment of this build's version whose batches align to `align`. */
struct seg *lcr_log_seg_new(struct lcr_log *l, uint64_t no, int fd, uint64_t size, uint32_t align);
/* Shrink the location table of a segment no batch will be added to (kept if no memory). */
void lcr_log_locs_fit(struct lcr_log *l, struct seg *s);
void lcr_log_seg_free(struct seg *s);
/* Append a segment to the array (there is room: spare_start and recovery made sure). */
void lcr_log_segs_push(struct lcr_log *l, struct seg *s);
/* After recovery: make the first segment if there is none, mark the last one active. */
int lcr_log_segs_start(struct lcr_log *l, char *why, size_t why_len);
/* Start preparing the next segment in the background. */
void lcr_log_spare_start(struct lcr_log *l);
void lcr_log_prep_kick(struct lcr_log *l);
/*
 * The segment a batch of `len` bytes goes to, or NULL while the spare is not
 * ready. `fresh`: the batch must be the first of its segment (a reset).
 */
struct seg *lcr_log_seg_for(struct lcr_log *l, uint64_t len, bool fresh);
/* Whether lcr_log_seg_for would put such a batch into the active segment (no switch). */
bool lcr_log_seg_fits(const struct lcr_log *l, uint64_t len, bool fresh);
/* Record a durable batch in the location tables (a truncation included). */
void lcr_log_locs_apply(struct lcr_log *l, struct seg *s, uint64_t first, uint32_t count,
			uint32_t bytes, uint64_t off);
/* A durable reset: no batch before it holds a live entry any more. */
void lcr_log_locs_clear(struct lcr_log *l);
/* Remove the segments whose entries all have index <= upto (the purge point is durable). */
void lcr_log_segs_purge(struct lcr_log *l, uint64_t upto);

/* ---- log_batch.c: the write path ---------------------------------------------------- */

/* Write the sealed batches, oldest first, while fewer than writes_max are in flight. */
void lcr_log_write_next(struct lcr_log *l);
/* The newest batch not yet durable (open, sealed or being written), or 0. */
uint64_t lcr_log_wid_unwritten(const struct lcr_log *l);

/* ---- log_meta.c --------------------------------------------------------------------- */

/*
 * A reset batch is durable: record its `prev` as the purge point (when it is
 * newer) and remove the segments it made dead once that is durable too.
 */
void lcr_log_meta_reset_done(struct lcr_log *l, struct lcr_log_id prev);
/*
 * Batch `wid` is durable: a purge point that waited for it goes to the meta
 * slots now, and the installs that waited with it become durable with that
 * write.
 */
void lcr_log_meta_release(struct lcr_log *l, uint64_t wid);
/* The core's install with keep_log: purge up to `last` (in the log), durable in io order. */
int lcr_log_meta_purge(struct lcr_log *l, struct lcr_log_id last, const struct lcr_io_id *io);

/* ---- log_read.c --------------------------------------------------------------------- */

/* The fetch buffers, at open once recovery sized scratch (-ENOMEM), and their release. */
int lcr_log_fetch_init(struct lcr_log *l);
void lcr_log_fetch_free(struct lcr_log *l);
/* A fetch read the kernel may still complete (close waits for it). */
bool lcr_log_fetch_busy(const struct lcr_log *l);

/* ---- log_recover.c ------------------------------------------------------------------ */

/* Recover the meta file, then every segment in order. Blocking; `why` names the damage. */
int lcr_log_recover(struct lcr_log *l, char *why, size_t why_len);

#endif /* LCR_LOG_INT_H */
