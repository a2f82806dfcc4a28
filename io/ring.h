/* SPDX-License-Identifier: MIT */
/*
 * One io_uring per lcore, shared by that lcore's groups.
 *
 * A request (struct lcr_io_req) is embedded in its owner and handed to the
 * ring; its `done` callback runs exactly once, from lcr_ring_reap() or
 * lcr_ring_wait(), with the op's final result: the byte count for reads and
 * writes, 0 for syncs, or a negative errno. Short writes and -EAGAIN are
 * resubmitted here and never reach the owner; a write linked to a sync is
 * resubmitted together with it. Submission never blocks: when the SQ is full
 * requests wait in an overflow queue and go out after the next reap.
 *
 * Only the owning thread may touch a ring.
 */
#ifndef LCR_RING_H
#define LCR_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LCR_RING_BUFS 64 /* registered buffers one ring holds (lcr_ring_buffer_add) */

enum lcr_io_op {
	LCR_IO_READ = 1,
	LCR_IO_WRITE = 2,
	LCR_IO_FSYNC = 3,     /* fsync */
	LCR_IO_FDATASYNC = 4, /* fdatasync */
	LCR_IO_FALLOCATE = 5, /* mode 0, `off`, `len` */
	LCR_IO_NOP = 6,
	LCR_IO_RENAMEAT = 7, /* fd: directory, buf: old name, arg: new name */
	LCR_IO_UNLINKAT = 8, /* fd: directory, buf: name */
};

struct lcr_io_req;
typedef void (*lcr_io_done_fn)(struct lcr_io_req *req, int res);

struct lcr_io_req {
	lcr_io_done_fn done; /* called once with the final result */
	void *ctx;	     /* the owner's */
	int fd;
	uint8_t op;   /* enum lcr_io_op */
	uint8_t gen;  /* tags CQEs: stale ones (after a resubmission) are ignored */
	uint8_t sqes; /* SQEs of this request not yet completed, stale ones too */
	bool in_flight;
	bool inject_cancel; /* fault injection: report this sync as cancelled */
	int16_t buf_index;  /* registered buffer, or -1 */
	bool dsync;	    /* WRITE: durable when complete (RWF_DSYNC), as under O_DSYNC */
	void *buf;
	const void *arg; /* RENAMEAT: the new name */
	uint64_t len;
	uint64_t off;
	uint64_t done_bytes;	      /* of a write or read, across resubmissions */
	struct lcr_io_req *linked;    /* a sync that must follow this write (IOSQE_IO_LINK) */
	struct lcr_io_req *link_head; /* on a linked sync: the write it follows */
	struct lcr_io_req *next;      /* overflow queue */
};

/*
 * Fault injection, applied to completions as they are reaped: tests make a
 * real ring fail like a sick disk. Counters are 1-based: fail_fsync_nth = 3
 * fails the third sync. All zero: no faults.
 */
struct lcr_ring_faults {
	uint32_t fail_fsync_nth;    /* that sync returns -EIO */
	uint32_t fail_write_nth;    /* that write returns write_errno */
	int write_errno;	    /* e.g. -EIO, -ENOSPC */
	uint32_t short_write_every; /* every k-th write reports half its bytes */
	uint32_t eagain_every;	    /* every k-th write reports -EAGAIN */
	/* Every k-th write queued is held back from the kernel (one at a
	 * time) until hold_reaps more reaps completed something, or nothing
	 * else is in flight: later writes overtake it, their completions come
	 * first, and a process killed meanwhile leaves a hole before them on
	 * disk (tests/crash). Unlike the faults above, applied at queueing. */
	uint32_t hold_write_every;
	uint32_t hold_reaps;
	uint32_t n_fsync;	 /* syncs seen so far */
	uint32_t n_write;	 /* writes seen so far */
	uint32_t n_queued;	 /* writes queued so far (hold_write_every) */
	struct lcr_io_req *held; /* the write held back, or NULL */
	uint32_t held_for;	 /* reaps it has waited */
};

struct lcr_ring_stats {
	uint64_t submitted;
	uint64_t completed;
	uint64_t resubmitted; /* short writes and -EAGAIN */
	uint64_t overflowed;  /* requests that waited for SQ space */
	uint64_t syncs;
	uint64_t sync_ns_total; /* not measured here; owners add their own */
	uint64_t writes;	/* write SQEs, resubmissions included */
	uint64_t dsync_writes;	/* ... of which durable by themselves (RWF_DSYNC) */
};

struct lcr_ring {
	struct io_uring ring;
	unsigned depth;
	unsigned in_flight;
	struct lcr_io_req *ov_head, *ov_tail; /* overflow queue */
	struct lcr_ring_faults *faults;	      /* NULL: none */
	struct lcr_ring_stats stats;
	bool buffers_registered;
	bool buf_table;	   /* a sparse table of LCR_RING_BUFS registered buffers exists */
	uint64_t buf_used; /* its slots in use, one bit each */
	int efd;	   /* eventfd registered with the ring, or -1 */
};

/* Create a ring with `depth` SQ entries. Returns 0 or -errno (e.g. -ENOSYS). */
int lcr_ring_init(struct lcr_ring *r, unsigned depth);
void lcr_ring_exit(struct lcr_ring *r);

/*
 * Register buffers for WRITE_FIXED/READ_FIXED. Returns 0 or -errno; -ENOMEM
 * usually means RLIMIT_MEMLOCK is too low, and callers then use plain I/O.
 */
int lcr_ring_register_buffers(struct lcr_ring *r, const struct iovec *iov, unsigned n);

/*
 * Register one buffer in a free slot of the ring's table (made sparse, for
 * LCR_RING_BUFS buffers, on first use), so that writes from it skip pinning
 * its pages on every request. Returns the slot, for lcr_io_req.buf_index, or
 * -errno: -ENOSPC when every slot is taken, -ENOMEM usually when
 * RLIMIT_MEMLOCK is too low; callers then use plain I/O. Not with
 * lcr_ring_register_buffers on the same ring.
 */
int lcr_ring_buffer_add(struct lcr_ring *r, void *buf, size_t len);

/* Free a slot of lcr_ring_buffer_add once no request of it can still complete. */
void lcr_ring_buffer_remove(struct lcr_ring *r, int slot);

/*
 * True while the kernel may still complete an SQE that names this request,
 * stale ones included: its memory must stay valid until then.
 */
static inline bool lcr_io_busy(const struct lcr_io_req *req)
{
	return req->in_flight || req->sqes > 0;
}

/* Prepare requests (the fields the op needs); then queue them. */
void lcr_io_prep(struct lcr_io_req *req, uint8_t op, int fd, void *buf, uint64_t len, uint64_t off,
		 lcr_io_done_fn done, void *ctx);

/* Queue one request. */
void lcr_ring_queue(struct lcr_ring *r, struct lcr_io_req *req);

/*
 * Queue a write followed by a sync that runs only if the write fully
 * succeeds (a linked pair). A short write is completed and the pair resent;
 * if the write fails, the sync reports -ECANCELED.
 */
void lcr_ring_queue_linked(struct lcr_ring *r, struct lcr_io_req *write, struct lcr_io_req *sync);

/*
 * An eventfd that becomes readable when completions arrive, for an lcore
 * that sleeps in poll() on its sockets too. Returns the fd or -errno; the
 * caller reads it to clear it (lcr_ring_eventfd_clear).
 */
int lcr_ring_eventfd(struct lcr_ring *r);
void lcr_ring_eventfd_clear(struct lcr_ring *r);

/* Completions are waiting to be reaped (read from the ring's memory, no syscall). */
static inline bool lcr_ring_ready(struct lcr_ring *r)
{
	return io_uring_cq_ready(&r->ring) > 0;
}

/* Submit queued SQEs (one syscall). Returns SQEs submitted or -errno. */
int lcr_ring_submit(struct lcr_ring *r);

/*
 * Run callbacks for every available completion, without blocking, then
 * submit whatever they queued. Returns the count.
 */
unsigned lcr_ring_reap(struct lcr_ring *r);

/*
 * Submit, then wait for at least one completion or `timeout_ns`, then reap.
 * For idle loops that may sleep (socket mode). Returns completions reaped.
 */
unsigned lcr_ring_wait(struct lcr_ring *r, uint64_t timeout_ns);

#endif /* LCR_RING_H */
