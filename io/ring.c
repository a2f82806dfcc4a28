/* SPDX-License-Identifier: MIT */
/* The per-lcore io_uring (see ring.h). */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lcr_assert.h"
#include "ring.h"

int lcr_ring_init(struct lcr_ring *r, unsigned depth)
{
	memset(r, 0, sizeof(*r));
	r->depth = depth;
	r->efd = -1;
	return io_uring_queue_init(depth, &r->ring, 0);
}

void lcr_ring_exit(struct lcr_ring *r)
{
	io_uring_queue_exit(&r->ring);
	if (r->efd >= 0)
		close(r->efd);
	r->efd = -1;
}

int lcr_ring_eventfd(struct lcr_ring *r)
{
	if (r->efd >= 0)
		return r->efd;
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = io_uring_register_eventfd(&r->ring, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	r->efd = fd;
	return fd;
}

void lcr_ring_eventfd_clear(struct lcr_ring *r)
{
	uint64_t v;
	if (r->efd >= 0 && read(r->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing was pending */
	}
}

int lcr_ring_register_buffers(struct lcr_ring *r, const struct iovec *iov, unsigned n)
{
	int rc = io_uring_register_buffers(&r->ring, iov, n);
	if (rc == 0)
		r->buffers_registered = true;
	return rc;
}

int lcr_ring_buffer_add(struct lcr_ring *r, void *buf, size_t len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	__u64 tag = 0;

	LCR_ASSERT(buf != NULL && len > 0);
	LCR_ASSERT(!r->buffers_registered);
	if (!r->buf_table) {
		int rc = io_uring_register_buffers_sparse(&r->ring, LCR_RING_BUFS);
		if (rc < 0)
			return rc;
		r->buf_table = true;
	}
	if (r->buf_used == UINT64_MAX)
		return -ENOSPC;
	_Static_assert(LCR_RING_BUFS == 64, "one bit of buf_used per slot");
	int slot = __builtin_ctzll(~r->buf_used);
	int rc = io_uring_register_buffers_update_tag(&r->ring, (unsigned)slot, &iov, &tag, 1);
	if (rc < 0)
		return rc;
	r->buf_used |= 1ull << slot;
	return slot;
}

void lcr_ring_buffer_remove(struct lcr_ring *r, int slot)
{
	struct iovec iov = { .iov_base = NULL, .iov_len = 0 };
	__u64 tag = 0;

	LCR_ASSERT(slot >= 0 && slot < LCR_RING_BUFS);
	LCR_ASSERT(r->buf_used & (1ull << slot));
	/* The kernel keeps the pages pinned until requests using them are done. */
	io_uring_register_buffers_update_tag(&r->ring, (unsigned)slot, &iov, &tag, 1);
	r->buf_used &= ~(1ull << slot);
}

void lcr_io_prep(struct lcr_io_req *req, uint8_t op, int fd, void *buf, uint64_t len, uint64_t off,
		 lcr_io_done_fn done, void *ctx)
{
	uint8_t gen = req->gen, sqes = req->sqes;

	memset(req, 0, sizeof(*req));
	req->gen = gen + 1; /* a stale CQE of an earlier use must not match */
	req->sqes = sqes;   /* ... and it may still be out */
	req->op = op;
	req->fd = fd;
	req->buf = buf;
	req->len = len;
	req->off = off;
	req->done = done;
	req->ctx = ctx;
	req->buf_index = -1;
}

/* user_data carries the request and its generation in the low 3 bits. */
static uint64_t tag(struct lcr_io_req *req)
{
	return (uint64_t)(uintptr_t)req | (req->gen & 7u);
}

static void fill_sqe(struct lcr_ring *r, struct io_uring_sqe *sqe, struct lcr_io_req *req,
		     bool link)
{
	uint64_t off = req->off + req->done_bytes;
	char *buf = (char *)req->buf + req->done_bytes;
	unsigned len = (unsigned)(req->len - req->done_bytes);

	switch (req->op) {
	case LCR_IO_READ:
		if (req->buf_index >= 0)
			io_uring_prep_read_fixed(sqe, req->fd, buf, len, off, req->buf_index);
		else
			io_uring_prep_read(sqe, req->fd, buf, len, off);
		break;
	case LCR_IO_WRITE:
		if (req->buf_index >= 0)
			io_uring_prep_write_fixed(sqe, req->fd, buf, len, off, req->buf_index);
		else
			io_uring_prep_write(sqe, req->fd, buf, len, off);
		if (req->dsync)
			sqe->rw_flags = RWF_DSYNC;
		r->stats.writes++;
		r->stats.dsync_writes += req->dsync;
		break;
	case LCR_IO_FSYNC:
		io_uring_prep_fsync(sqe, req->fd, 0);
		break;
	case LCR_IO_FDATASYNC:
		io_uring_prep_fsync(sqe, req->fd, IORING_FSYNC_DATASYNC);
		break;
	case LCR_IO_FALLOCATE:
		io_uring_prep_fallocate(sqe, req->fd, 0, (off_t)req->off, (off_t)req->len);
		break;
	case LCR_IO_RENAMEAT:
		io_uring_prep_renameat(sqe, req->fd, req->buf, req->fd, req->arg, 0);
		break;
	case LCR_IO_UNLINKAT:
		io_uring_prep_unlinkat(sqe, req->fd, req->buf, 0);
		break;
	default:
		io_uring_prep_nop(sqe);
		break;
	}
	if (link)
		sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(sqe, tag(req));
	req->sqes++;
}

static void overflow_push(struct lcr_ring *r, struct lcr_io_req *req)
{
	req->next = NULL;
	if (r->ov_tail)
		r->ov_tail->next = req;
	else
		r->ov_head = req;
	r->ov_tail = req;
	r->stats.overflowed++;
}

/* Put a request (and its linked sync) into the SQ, or into the overflow queue. */
static void place(struct lcr_ring *r, struct lcr_io_req *req)
{
	unsigned need = req->linked ? 2 : 1;

	req->in_flight = true;
	if (req->linked)
		req->linked->in_flight = true;
	if (r->ov_head || io_uring_sq_space_left(&r->ring) < need) {
		overflow_push(r, req);
		return;
	}
	fill_sqe(r, io_uring_get_sqe(&r->ring), req, req->linked != NULL);
	r->in_flight++;
	r->stats.submitted++;
	if (req->linked) {
		fill_sqe(r, io_uring_get_sqe(&r->ring), req->linked, false);
		r->in_flight++;
		r->stats.submitted++;
	}
}

/* A new write to hold back (lcr_ring_faults.hold_write_every): held_step() places it. */
static bool hold(struct lcr_ring *r, struct lcr_io_req *req)
{
	struct lcr_ring_faults *f = r->faults;

	if (!f || !f->hold_write_every || req->op != LCR_IO_WRITE || f->held ||
	    ++f->n_queued % f->hold_write_every != 0)
		return false;
	req->in_flight = true;
	if (req->linked)
		req->linked->in_flight = true;
	f->held = req;
	f->held_for = 0;
	return true;
}

/* The write held back goes to the kernel now. */
static void release_held(struct lcr_ring *r)
{
	struct lcr_io_req *req = r->faults->held;

	r->faults->held = NULL;
	place(r, req);
}

/* Whether the held write has waited long enough (or would wait for nothing). */
static void held_step(struct lcr_ring *r, unsigned completed)
{
	struct lcr_ring_faults *f = r->faults;

	if (!f || !f->held)
		return;
	if (completed > 0)
		f->held_for++;
	if (f->held_for >= f->hold_reaps || r->in_flight == 0)
		release_held(r);
}

void lcr_ring_queue(struct lcr_ring *r, struct lcr_io_req *req)
{
	LCR_ASSERT(!req->in_flight);
	req->linked = NULL;
	req->link_head = NULL;
	if (!hold(r, req))
		place(r, req);
}

void lcr_ring_queue_linked(struct lcr_ring *r, struct lcr_io_req *write, struct lcr_io_req *sync)
{
	LCR_ASSERT(!write->in_flight && !sync->in_flight);
	LCR_ASSERT(write->op == LCR_IO_WRITE);
	write->linked = sync;
	write->link_head = NULL;
	sync->linked = NULL;
	sync->link_head = write;
	if (!hold(r, write))
		place(r, write);
}

int lcr_ring_submit(struct lcr_ring *r)
{
	int rc;
	do {
		rc = io_uring_submit(&r->ring);
	} while (rc == -EINTR);
	return rc;
}

/* Resend a write (from where it got to) together with its linked sync. */
static void resubmit(struct lcr_ring *r, struct lcr_io_req *req)
{
	r->stats.resubmitted++;
	req->gen++;
	if (req->linked) {
		/* The kernel cancels the old linked sync (or already ran it);
		 * the new generation makes its CQE stale. */
		req->linked->gen++;
	}
	place(r, req);
}

static int inject(struct lcr_ring *r, struct lcr_io_req *req, int res)
{
	struct lcr_ring_faults *f = r->faults;

	if (req->op == LCR_IO_WRITE && res > 0) {
		f->n_write++;
		if (f->fail_write_nth && f->n_write == f->fail_write_nth) {
			if (req->linked)
				req->linked->inject_cancel = true;
			return f->write_errno ? f->write_errno : -EIO;
		}
		if (f->eagain_every && f->n_write % f->eagain_every == 0)
			return -EAGAIN;
		if (f->short_write_every && f->n_write % f->short_write_every == 0 && res >= 8192)
			return (res / 2) & ~4095;
	}
	if ((req->op == LCR_IO_FSYNC || req->op == LCR_IO_FDATASYNC) && res == 0) {
		f->n_fsync++;
		if (req->inject_cancel)
			return -ECANCELED;
		if (f->fail_fsync_nth && f->n_fsync == f->fail_fsync_nth)
			return -EIO;
	}
	return res;
}

static void complete(struct lcr_ring *r, struct lcr_io_req *req, int res)
{
	req->in_flight = false;
	req->inject_cancel = false;
	r->stats.completed++;
	req->done(req, res);
}

static void handle_cqe(struct lcr_ring *r, struct io_uring_cqe *cqe)
{
	struct lcr_io_req *req = (struct lcr_io_req *)(uintptr_t)(cqe->user_data & ~7ull);
	int res = cqe->res;

	r->in_flight--;
	req->sqes--;
	if ((cqe->user_data & 7u) != (req->gen & 7u))
		return; /* a CQE from before a resubmission */
	if (r->faults)
		res = inject(r, req, res);
	if (req->op == LCR_IO_WRITE || req->op == LCR_IO_READ) {
		if (res == -EAGAIN || res == -EINTR) {
			resubmit(r, req);
			return;
		}
		if (res >= 0) {
			req->done_bytes += (uint64_t)res;
			bool eof = res == 0 && req->op == LCR_IO_READ;
			if (req->done_bytes < req->len && !eof && res > 0) {
				resubmit(r, req); /* short: send the rest */
				return;
			}
			if (req->done_bytes < req->len && req->op == LCR_IO_WRITE) {
				/* A write that makes no progress cannot succeed. */
				if (req->linked)
					req->linked->gen++; /* we report its cancel below */
				struct lcr_io_req *sync = req->linked;
				complete(r, req, -EIO);
				if (sync)
					complete(r, sync, -ECANCELED);
				return;
			}
			res = (int)req->done_bytes;
		} else if (req->linked) {
			/* The kernel cancels the linked sync; its CQE reports it. */
		}
	}
	complete(r, req, res);
}

unsigned lcr_ring_reap(struct lcr_ring *r)
{
	struct io_uring_cqe *cqes[64];
	unsigned total = 0;

	for (;;) {
		unsigned n = io_uring_peek_batch_cqe(&r->ring, cqes, 64);
		if (n == 0)
			break;
		for (unsigned i = 0; i < n; i++)
			handle_cqe(r, cqes[i]);
		io_uring_cq_advance(&r->ring, n);
		total += n;
	}
	held_step(r, total);
	/* Room in the SQ again: move waiting requests in, in order. */
	while (r->ov_head) {
		struct lcr_io_req *req = r->ov_head;
		unsigned need = req->linked ? 2 : 1;
		if (io_uring_sq_space_left(&r->ring) < need)
			break;
		r->ov_head = req->next;
		if (!r->ov_head)
			r->ov_tail = NULL;
		fill_sqe(r, io_uring_get_sqe(&r->ring), req, req->linked != NULL);
		r->in_flight++;
		r->stats.submitted++;
		if (req->linked) {
			fill_sqe(r, io_uring_get_sqe(&r->ring), req->linked, false);
			r->in_flight++;
			r->stats.submitted++;
		}
	}
	/* What the callbacks queued (the next batch write of a log, above all)
	 * goes to the kernel now, not at the owner's next submit: the disk must
	 * not wait for the rest of a loop iteration. Errors leave the SQEs queued
	 * for that next submit. */
	if (total > 0 && io_uring_sq_ready(&r->ring) > 0)
		lcr_ring_submit(r);
	return total;
}

unsigned lcr_ring_wait(struct lcr_ring *r, uint64_t timeout_ns)
{
	struct __kernel_timespec ts = { .tv_sec = (long long)(timeout_ns / 1000000000ull),
					.tv_nsec = (long long)(timeout_ns % 1000000000ull) };
	struct io_uring_cqe *cqe;

	held_step(r, 0);
	if (r->in_flight == 0 && !r->ov_head && io_uring_sq_ready(&r->ring) == 0)
		return 0;
	int rc = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
	(void)rc; /* -ETIME and -EINTR just mean: nothing yet */
	return lcr_ring_reap(r);
}
