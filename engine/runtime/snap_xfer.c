/* SPDX-License-Identifier: MIT */
/*
 * The runtime's side of snapshot transfer (runtime_int.h; the network
 * contract's full_snapshot, net.h, and the core's SNAPSHOT_REQ,
 * LCR_CMD_INSTALL_SNAPSHOT and LCR_CMD_CANCEL_SNAPSHOT; openraft-reference.md,
 * "Snapshot", and the Raft thesis §5.1 "InstallSnapshot").
 *
 * Sending: the transport asks the host for the source of a SNAPSHOT_REQ the
 * core sent (snap_open): the group's newest durable snapshot, if its last
 * log id and its id are the request's. Its bytes are pulled a piece at a
 * time from a reader that reads a 1 MiB chunk through the lcore's ring; while
 * a read is in flight a pull finds nothing and the transport asks again
 * later. A source released while its read is in flight is closed in the next
 * iteration (lcr_rt_xfer_progress), never from the read's completion. A
 * build may run meanwhile: it writes under its own temporary name
 * (LCR_RT_SNAP_BUILD_TMP), and a reader removes nothing.
 *
 * Receiving: the bytes go to a snapshot writer in <group>/recv (a folder of
 * its own, under LCR_RT_SNAP_RECV_TMP). At the end the writer commits there
 * (header, fsync, rename, fsync of the folder); once that is durable, the
 * next iteration steps the core with the SNAPSHOT_REQ (`data` the handle).
 * The core either emits INSTALL_SNAPSHOT naming the handle in that step, and
 * lcr_rt_snap_install() moves the file into the group's folder, or it refused
 * (not newer than its commit, an older vote), and the file is removed.
 *
 * Why that order: the group's folder only ever holds a snapshot the core
 * accepted, so a snapshot that a crash left half-received or refused is never
 * opened at restart. The install renames the file into the group's folder
 * before the log is cut (lcr_log_install, in io order): a crash between the
 * two finds the newest snapshot beside the old log. With keep_log the log
 * holds the snapshot's last entry and the group opens as after a build;
 * without, the log lacks it and the group's open finishes the install (it
 * resets the log after the snapshot, group.c). The reverse order (log first)
 * would leave a log purged past the newest snapshot, which the open refuses.
 * Both happen inside the INSTALL_SNAPSHOT command, so the cut is queued before
 * any later storage command of the core. The state machine is restored after
 * that, a chunk per loop iteration from the file now in the group's folder
 * (a crash meanwhile restores it at open); no entry is applied until the
 * restore ends, and only then does the core hear the install as an apply.
 *
 * Only the group's lcore calls these.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime_int.h"

/* ---- sending ------------------------------------------------------------------- */

static void src_close(struct lcr_rt_snap_src *s)
{
	LCR_ASSERT(s->open);
	LCR_ASSERT(!s->reading);
	lcr_snap_reader_close(&s->r);
	s->open = false;
	s->closing = false;
	s->err = 0;
	s->pos = 0;
}

static void src_read_done(void *ctx, int err)
{
	struct lcr_rt_snap_src *s = ctx;

	LCR_ASSERT(s->reading);
	s->reading = false;
	s->pos = 0;
	if (err < 0)
		s->err = err;
}

/* Start reading the next chunk into r.buf (the last one was handed out). */
static int src_read(struct lcr_rt_snap_src *s)
{
	LCR_ASSERT(!s->reading);
	s->reading = true;
	int rc = lcr_snap_read_next(&s->r, src_read_done, s);
	if (rc < 0) {
		s->reading = false;
		s->err = rc;
	}
	return rc;
}

/* The file `f` is the snapshot `want` names: its last log id and its id. */
static bool names(const struct lcr_snap_meta *f, const struct lcr_snapshot_meta *want)
{
	return lcr_log_id_eq(f->last, want->last) && f->id == want->id;
}

/* lcr_net_snapshot.pull: the next bytes of r.buf, or 0 while a read runs. */
static long src_pull(void *src, const void **data, size_t max)
{
	struct lcr_rt_snap_src *s = src;

	LCR_ASSERT(s->open && !s->closing);
	if (s->err)
		return s->err;
	/* The stream's header (the membership) goes before the file's data. */
	if (s->hdr_pos < LCR_RT_SNAP_STREAM_HDR) {
		size_t n = LCR_RT_SNAP_STREAM_HDR - s->hdr_pos;
		if (n > max)
			n = max;
		*data = s->hdr + s->hdr_pos;
		s->hdr_pos += (uint32_t)n;
		return (long)n;
	}
	if (s->reading)
		return 0;
	if (s->pos == s->r.got) {
		int rc = src_read(s);
		if (rc < 0)
			return rc;
		if (s->reading)
			return 0;
		if (s->err)
			return s->err;
		/* Read at once: only at the end, which is never pulled. */
		if (s->r.got == 0)
			return -EIO;
	}
	size_t n = s->r.got - s->pos;
	if (n > max)
		n = max;
	*data = s->r.buf + s->pos;
	s->pos += (uint32_t)n;
	return (long)n;
}

int lcr_rt_xfer_open(void *group, const struct lcr_msg *m, struct lcr_net_snapshot *snap)
{
	struct lcr_group *g = group;
	struct lcr_rt_snap_src *s = NULL;
	char why[512] = "";

	LCR_ASSERT(m->type == LCR_MSG_SNAPSHOT_REQ);
	/* The request names the newest snapshot, or it is stale: its header
	 * alone says (a build under way writes under its own temporary name,
	 * which nothing here touches). */
	struct lcr_snap_meta newest;
	int rc = lcr_snap_newest(g->snap.dir, g->id, &newest, why, sizeof(why));
	if (rc < 0)
		fprintf(stderr, "lcraft: group %u: cannot open a snapshot to send: %s\n", g->id,
			why);
	if (rc <= 0)
		return rc < 0 ? rc : -ENOENT;
	if (!names(&newest, &m->snapshot_req.meta)) {
		g->snap.send_stale++;
		return -ENOENT;
	}
	for (uint32_t i = 0; i < LCR_PEERS_MAX && !s; i++)
		if (!g->snap.src[i].open)
			s = &g->snap.src[i];
	if (!s) {
		/* Every slot holds a send, or one whose read is still in flight. */
		g->snap.send_busy++;
		return -EBUSY;
	}
	rc = lcr_snap_open(&s->r, &g->lc->ring, g->snap.dir, g->id, g->node->cfg.alloc, why,
			   sizeof(why));
	if (rc <= 0) {
		if (rc < 0)
			fprintf(stderr, "lcraft: group %u: cannot open a snapshot to send: %s\n",
				g->id, why[0] ? why : strerror(-rc));
		return rc < 0 ? rc : -ENOENT;
	}
	s->g = g;
	s->open = true;
	s->pos = 0;
	s->hdr_pos = 0;
	s->err = 0;
	/* A build may have committed a newer one since the look above. */
	if (!names(&s->r.meta, &m->snapshot_req.meta)) {
		src_close(s);
		g->snap.send_stale++;
		return -ENOENT;
	}
	/* Read ahead: the first chunk is on its way before the first pull. */
	if (s->r.meta.size > 0 && src_read(s) < 0) {
		src_close(s);
		return -EIO;
	}
	/* The membership at its last entry, from the file's header, travels in
	 * front of its data: the transport carries bytes, not memberships. */
	lcr_rt_mship_stream_hdr(&s->r.meta, s->hdr);
	snap->size = LCR_RT_SNAP_STREAM_HDR + s->r.meta.size;
	snap->pull = src_pull;
	snap->src = s;
	g->snap.sent_opened++;
	return 0;
}

void lcr_rt_xfer_close(void *group, struct lcr_net_snapshot *snap)
{
	struct lcr_group *g = group;
	struct lcr_rt_snap_src *s = snap->src;

	LCR_ASSERT(s != NULL);
	LCR_ASSERT(s >= g->snap.src && s < g->snap.src + LCR_PEERS_MAX);
	if (!s->open)
		return; /* freed already (the group closes) */
	if (s->reading)
		s->closing = true; /* r.buf is being read into: lcr_rt_xfer_progress */
	else
		src_close(s);
}

/* ---- receiving ---------------------------------------------------------------- */

static bool inst_progress(struct lcr_group *g);
static void inst_release(struct lcr_group *g);

/* <group>/recv: where received snapshots wait for the core. */
static void rx_dir(const struct lcr_group *g, char *buf, size_t len)
{
	snprintf(buf, len, "%s/recv", g->snap.dir);
}

static bool rx_writer_idle(const struct lcr_snap_writer *w)
{
	return !w->busy[0] && !w->busy[1] && !w->req.in_flight;
}

/* Remove the snapshot files in `dir` but `keep` (NULL: every one). */
static void remove_snaps(const char *dir, const char *keep)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (strncmp(de->d_name, "snap-", 5) != 0 || n < 6 ||
		    strcmp(de->d_name + n - 5, ".snap") != 0)
			continue;
		if (keep && strcmp(de->d_name, keep) == 0)
			continue;
		unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* Free the writer if nothing of it is in flight (else the next progress). */
static void rx_writer_release(struct lcr_rt_snap_rx *rx)
{
	if (rx->writer_open && rx_writer_idle(&rx->w)) {
		lcr_snap_writer_free(&rx->w); /* removes its file unless committed */
		rx->writer_open = false;
	}
}

/* The receive ends without an install: its bytes go. */
static void rx_drop(struct lcr_group *g)
{
	struct lcr_rt_snap_rx *rx = &g->snap.rx;
	char dir[4096];

	rx->handle = 0;
	rx->ended = rx->committed = false;
	rx_writer_release(rx);
	if (rx->name[0]) {
		rx_dir(g, dir, sizeof(dir));
		remove_snaps(dir, NULL);
		rx->name[0] = 0;
	}
}

int lcr_rt_xfer_begin(void *group, const struct lcr_msg *req, uint64_t size, uint64_t *handle)
{
	struct lcr_group *g = group;
	struct lcr_rt_snap_rx *rx = &g->snap.rx;
	char dir[4096];

	LCR_ASSERT(req->type == LCR_MSG_SNAPSHOT_REQ);
	/* One waits for its core step (the next iteration): the sender tries
	 * again when the transport answers BUSY. */
	if (rx->handle && rx->ended)
		return -EBUSY;
	/* A newer leadership's snapshot replaces a partial one. */
	if (rx->handle)
		rx_drop(g);
	if (rx->writer_open)
		return -EBUSY; /* the dropped one's writes are still in flight */
	if (size < LCR_RT_SNAP_STREAM_HDR) {
		g->snap.recv_bad++;
		return -EBADMSG; /* no room for the stream's header */
	}
	rx_dir(g, dir, sizeof(dir));
	/* Leftovers of a crash between a commit and the core's step. */
	remove_snaps(dir, NULL);
	int rc = lcr_snap_begin(&rx->w, &g->lc->ring, dir, LCR_RT_SNAP_RECV_TMP, g->id,
				g->node->cfg.alloc);
	if (rc < 0) {
		fprintf(stderr, "lcraft: group %u: cannot receive a snapshot in %s: %s\n", g->id,
			dir, strerror(-rc));
		return rc;
	}
	rx->writer_open = true;
	rx->handle = ++rx->seq;
	rx->size = size;
	rx->got = 0;
	rx->ended = rx->committed = false;
	rx->err = 0;
	rx->name[0] = 0;
	rx->req = *req;
	*handle = rx->handle;
	return 0;
}

/*
 * The stream's header, its first LCR_RT_SNAP_STREAM_HDR bytes: taken apart
 * once whole, its membership goes into the file's header at the commit.
 * Bytes taken, or -EBADMSG (the transfer fails; the sender tries again).
 */
static long rx_hdr_write(struct lcr_group *g, const void *data, size_t len)
{
	struct lcr_rt_snap_rx *rx = &g->snap.rx;
	size_t n = LCR_RT_SNAP_STREAM_HDR - rx->got;
	const uint8_t *bytes;
	uint32_t blen;

	if (n > len)
		n = len;
	memcpy(rx->hdr + rx->got, data, n);
	rx->got += n;
	if (rx->got < LCR_RT_SNAP_STREAM_HDR)
		return (long)n;
	if (lcr_rt_mship_stream_parse(rx->hdr, &rx->membership, &bytes, &blen) < 0 ||
	    lcr_snap_set_membership(&rx->w, bytes, blen) < 0) {
		g->snap.recv_bad++;
		return -EBADMSG;
	}
	return (long)n;
}

long lcr_rt_xfer_write(void *group, uint64_t handle, const void *data, size_t len)
{
	struct lcr_group *g = group;
	struct lcr_rt_snap_rx *rx = &g->snap.rx;

	if (handle == 0 || handle != rx->handle || rx->ended)
		return -ENOENT;
	LCR_ASSERT(rx->writer_open);
	if (rx->got + len > rx->size)
		return -EFBIG;
	if (rx->got < LCR_RT_SNAP_STREAM_HDR)
		return rx_hdr_write(g, data, len);
	if (len > LCR_SNAP_CHUNK)
		len = LCR_SNAP_CHUNK; /* lcr_snap_write returns an int */
	int rc = lcr_snap_write(&rx->w, data, len);
	if (rc == -EAGAIN)
		return 0; /* both staging buffers in flight: offered again later */
	if (rc < 0)
		return rc;
	rx->got += (uint64_t)rc;
	return rc;
}

static void rx_committed(void *ctx, int err)
{
	struct lcr_group *g = ctx;

	LCR_ASSERT(g->snap.rx.ended);
	g->snap.rx.committed = true;
	g->snap.rx.err = err;
}

int lcr_rt_xfer_end(void *group, uint64_t handle)
{
	struct lcr_group *g = group;
	struct lcr_rt_snap_rx *rx = &g->snap.rx;

	if (handle == 0 || handle != rx->handle || rx->ended)
		return -ENOENT;
	if (rx->got != rx->size) {
		rx_drop(g);
		return -EIO;
	}
	rx->ended = true;
	int rc = lcr_snap_commit(&rx->w, &rx->req.snapshot_req.meta, rx_committed, g);
	if (rc < 0) {
		rx_drop(g);
		return rc;
	}
	return 0;
}

void lcr_rt_xfer_abort(void *group, uint64_t handle)
{
	struct lcr_group *g = group;

	if (handle != 0 && handle == g->snap.rx.handle)
		rx_drop(g);
}

/* The received snapshot is durable in <group>/recv: the core judges it. */
static void rx_deliver(struct lcr_group *g)
{
	struct lcr_rt_snap_rx *rx = &g->snap.rx;
	struct lcr_msg m = rx->req;
	uint64_t handle = rx->handle;

	snprintf(rx->name, sizeof(rx->name), "%s", rx->w.name);
	/* The core hears the membership the committed file's header holds
	 * (paired with the one parsed from the stream). */
	struct lcr_membership m_file;
	int rc = lcr_rt_mship_of_snap(&rx->w.meta, &m_file);
	LCR_ASSERT(rc == 0);
	LCR_ASSERT(lcr_rt_mship_same(&m_file, &rx->membership));
	rx->membership = m_file;
	uint64_t data_size = rx->w.meta.size;
	LCR_ASSERT(data_size + LCR_RT_SNAP_STREAM_HDR == rx->size);
	lcr_snap_writer_free(&rx->w); /* committed: the file stays */
	rx->writer_open = false;
	g->snap.received++;
	m.snapshot_req.data = handle;
	m.snapshot_req.size = data_size;
	m.snapshot_req.membership = &rx->membership;
	rx->installed = 0;
	struct lcr_event ev = { .type = LCR_EV_MSG, .msg = &m };
	lcr_rt_step(g, &ev);
	/* Installed: the file moved to the group's folder. Refused: it goes. */
	if (rx->installed != handle)
		rx_drop(g);
	rx->handle = 0;
	rx->ended = rx->committed = false;
	rx->name[0] = 0;
}

bool lcr_rt_xfer_progress(struct lcr_group *g)
{
	struct lcr_rt_snap *sn = &g->snap;
	struct lcr_rt_snap_rx *rx = &sn->rx;
	bool work = false;

	for (uint32_t i = 0; i < LCR_PEERS_MAX; i++) {
		struct lcr_rt_snap_src *s = &sn->src[i];
		if (lcr_unlikely(s->open && s->closing && !s->reading)) {
			src_close(s);
			work = true;
		}
	}
	work |= inst_progress(g);
	/* A received snapshot waits while another is restored: its install
	 * would replace a state not yet whole. */
	if (rx->handle && rx->ended && rx->committed && rx_writer_idle(&rx->w) &&
	    !sn->inst.active) {
		if (rx->err) {
			fprintf(stderr,
				"lcraft: group %u: a received snapshot at %llu failed: %s\n", g->id,
				(unsigned long long)rx->req.snapshot_req.meta.last.index,
				strerror(-rx->err));
			rx_drop(g);
		} else {
			rx_deliver(g);
		}
		work = true;
	} else if (!rx->handle && rx->writer_open && rx_writer_idle(&rx->w)) {
		rx_writer_release(rx);
		work = true;
	}
	return work;
}

void lcr_rt_xfer_free(struct lcr_group *g)
{
	struct lcr_rt_snap *sn = &g->snap;
	struct lcr_rt_snap_rx *rx = &sn->rx;

	for (uint32_t i = 0; i < LCR_PEERS_MAX; i++) {
		struct lcr_rt_snap_src *s = &sn->src[i];
		while (s->reading)
			lcr_ring_wait(&g->lc->ring, 100000000ull);
		if (s->open)
			src_close(s);
	}
	while (rx->writer_open && !rx_writer_idle(&rx->w))
		lcr_ring_wait(&g->lc->ring, 100000000ull);
	/* An install cut short: the group closes (its open restores the
	 * snapshot again). */
	while (sn->inst.reading)
		lcr_ring_wait(&g->lc->ring, 100000000ull);
	if (sn->inst.active)
		inst_release(g);
	if (sn->inst.tail) {
		LCR_ASSERT(g->lc->building > 0);
		g->lc->building--;
		sn->inst.tail = false;
	}
	/* A received snapshot the core never judged is dropped. */
	if (rx->handle || rx->writer_open)
		rx_drop(g);
}

void lcr_rt_xfer_remove_received(struct lcr_group *g)
{
	char dir[4096];

	rx_dir(g, dir, sizeof(dir));
	remove_snaps(dir, NULL);
}

/* ---- installing ---------------------------------------------------------------- */

/* fsync a folder by name (a rename in it is durable after this). */
static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* A chunk read for the install came back: the next progress call restores it. */
static void inst_read_done(void *ctx, int err)
{
	struct lcr_rt_snap_inst *in = ctx;

	LCR_ASSERT(in->reading);
	in->reading = false;
	in->ready = true;
	in->err = err;
}

static int inst_read(struct lcr_rt_snap_inst *in)
{
	LCR_ASSERT(in->active);
	LCR_ASSERT(!in->reading);
	in->ready = false;
	in->reading = true;
	int rc = lcr_snap_read_next(&in->r, inst_read_done, in);
	if (rc < 0)
		in->reading = false;
	return rc;
}

/*
 * LCR_CMD_INSTALL_SNAPSHOT, a storage command in io order. What must not wait
 * happens here: the received file is renamed into the group's folder (one
 * rename and one fsync of the folder), restore_begin() is called, the first
 * chunk read is queued, and the log's cut (lcr_log_install) is issued, so
 * every later storage command of the core is queued behind it. The state
 * machine is then restored a chunk per loop iteration (inst_progress),
 * through the lcore's ring; until restore_end() no entry is applied (applies
 * wait in apply_to, held by apply_broken) and the core hears of the install
 * as an apply only at the end (LCR_EV_APPLIED at meta.last). Returns 1 (the
 * restore runs on: exec.c steps nothing for it), or -errno: the replica
 * stops.
 */
int lcr_rt_snap_install(struct lcr_group *g, const struct lcr_cmd *c)
{
	struct lcr_rt_snap_rx *rx = &g->snap.rx;
	struct lcr_rt_snap_inst *in = &g->snap.inst;
	const struct lcr_snapshot_meta *meta = &c->install.meta;
	char dir[4096], from[4096 + 100], to[4096 + 100], why[768] = "";
	int rc;

	LCR_ASSERT(c->type == LCR_CMD_INSTALL_SNAPSHOT);
	/* rx_deliver() steps no snapshot while one is restored. */
	LCR_ASSERT(!in->active);
	/* The core installs only the request stepped in rx_deliver(). */
	if (c->install.data == 0 || c->install.data != rx->handle || !rx->committed ||
	    !rx->name[0]) {
		fprintf(stderr, "lcraft: group %u: the core installs snapshot %llu, not received\n",
			g->id, (unsigned long long)c->install.data);
		return -EINVAL;
	}
	LCR_ASSERT(lcr_log_id_eq(meta->last, rx->req.snapshot_req.meta.last));
	LCR_ASSERT(meta->last.index > g->applied_id.index);
	if (!g->ops.restore_begin) {
		fprintf(stderr, "lcraft: group %u: a snapshot to install, and no hooks\n", g->id);
		return -ENOTSUP;
	}
	in->t0 = lcr_rt_now_ns();
	/* The file first, durably: a crash from here on finds it beside the
	 * old log, and the group's open finishes the install. */
	rx_dir(g, dir, sizeof(dir));
	snprintf(from, sizeof(from), "%s/%s", dir, rx->name);
	snprintf(to, sizeof(to), "%s/%s", g->snap.dir, rx->name);
	rc = 0;
	if (rename(from, to) < 0 || (rc = sync_dir(g->snap.dir)) < 0) {
		rc = rc < 0 ? rc : -errno;
		fprintf(stderr, "lcraft: group %u: cannot move the received snapshot into %s: %s\n",
			g->id, g->snap.dir, strerror(-rc));
		return rc;
	}
	/* Older snapshots go (as after a build's commit); a build under way
	 * keeps its temporary file. */
	remove_snaps(g->snap.dir, rx->name);
	rx->installed = rx->handle;
	rx->name[0] = 0;
	rc = lcr_snap_open(&in->r, &g->lc->ring, g->snap.dir, g->id, g->node->cfg.alloc, why,
			   sizeof(why));
	if (rc <= 0 || !lcr_log_id_eq(in->r.meta.last, meta->last) || in->r.meta.id != meta->id) {
		fprintf(stderr, "lcraft: group %u: cannot read the installed snapshot: %s\n", g->id,
			rc < 0 ? why : "it is not the newest");
		if (rc > 0)
			lcr_snap_reader_close(&in->r);
		return rc < 0 ? rc : -ENOENT;
	}
	if (lcr_rt_mship_of_snap(&in->r.meta, &in->membership) < 0) {
		fprintf(stderr,
			"lcraft: group %u: the installed snapshot's membership is damaged\n",
			g->id);
		lcr_snap_reader_close(&in->r);
		return -EBADMSG;
	}
	if ((rc = g->ops.restore_begin(g->sm, meta)) < 0) {
		fprintf(stderr,
			"lcraft: group %u: the state machine refused the snapshot at %llu: %s\n",
			g->id, (unsigned long long)meta->last.index, strerror(-rc));
		lcr_snap_reader_close(&in->r);
		return rc;
	}
	/* From here the state machine is being replaced: no apply until its
	 * end. Committed entries after meta.last gather in apply_to. */
	in->active = true;
	in->meta = *meta;
	in->bytes = 0;
	in->err = 0;
	in->held = g->apply_broken;
	g->apply_broken = true;
	g->snap.floor = meta->last;
	g->apply_to = meta->last;
	g->lc->building++; /* its iterations are timed */
	if ((rc = inst_read(in)) < 0)
		in->err = rc; /* the next progress stops the replica */
	rc = lcr_log_install(g->log, meta->last, c->install.keep_log, &c->install.io);
	if (rc < 0) {
		fprintf(stderr,
			"lcraft: group %u: the log refused the snapshot's cut at %llu: %s\n", g->id,
			(unsigned long long)meta->last.index, strerror(-rc));
		return rc;
	}
	return 1;
}

/* The install ends: its reader goes once no read of it is in flight. */
static void inst_release(struct lcr_group *g)
{
	struct lcr_rt_snap_inst *in = &g->snap.inst;

	LCR_ASSERT(in->active);
	LCR_ASSERT(!in->reading);
	lcr_snap_reader_close(&in->r);
	in->active = false;
	in->ready = false;
	in->tail = true; /* this iteration is timed too (lcr_rt_snap_iteration) */
}

/* The restore failed: the state machine holds no state the core knows of. */
static void inst_fail(struct lcr_group *g, int err, const char *what)
{
	struct lcr_rt_snap_inst *in = &g->snap.inst;

	fprintf(stderr,
		"lcraft: group %u: installing the snapshot at %llu failed near byte %llu: "
		"%s: %s; the replica stops\n",
		g->id, (unsigned long long)in->meta.last.index, (unsigned long long)in->r.next,
		what, err == -EBADMSG ? "checksum mismatch" : strerror(-err));
	inst_release(g);
	/* apply_broken stays: nothing is applied onto a partial state. */
	struct lcr_event ev = { .type = LCR_EV_IO_FAILED, .io_error = err };
	lcr_rt_step(g, &ev);
}

/* The state machine holds meta.last: applies go on, the core hears it. */
static void inst_done(struct lcr_group *g)
{
	struct lcr_rt_snap_inst *in = &g->snap.inst;
	struct lcr_log_id last = in->meta.last;

	inst_release(g);
	g->apply_broken = in->held;
	g->applied_id = last;
	g->applied_m = in->membership;
	LCR_ASSERT(g->apply_to.index >= last.index);
	lcr_rt_publish(g);
	g->snap.installed++;
	g->snap.install_ns_last = lcr_rt_now_ns() - in->t0;
	struct lcr_event ev = { .type = LCR_EV_APPLIED, .applied = last };
	lcr_rt_step(g, &ev);
}

/* One chunk of an install's restore per call (loop iteration). */
static bool inst_progress(struct lcr_group *g)
{
	struct lcr_rt_snap_inst *in = &g->snap.inst;
	int rc;

	if (!in->active || in->reading)
		return false;
	if (in->err) {
		inst_fail(g, in->err, "reading it");
		return true;
	}
	LCR_ASSERT(in->ready);
	if (in->r.got == 0) {
		if ((rc = g->ops.restore_end(g->sm)) < 0)
			inst_fail(g, rc, "the state machine refused it");
		else
			inst_done(g);
		return true;
	}
	if ((rc = g->ops.restore_chunk(g->sm, in->r.buf, in->r.got)) < 0) {
		inst_fail(g, rc, "the state machine refused it");
		return true;
	}
	in->bytes += in->r.got;
	if ((rc = inst_read(in)) < 0)
		in->err = rc;
	return true;
}

void lcr_rt_snap_cancel(struct lcr_group *g, const struct lcr_cmd *c)
{
	LCR_ASSERT(c->type == LCR_CMD_CANCEL_SNAPSHOT);
	lcr_net_cancel_snapshot(g->ng, c->cancel.target, c->cancel.stream_id);
}
