/* SPDX-License-Identifier: MIT */
/*
 * The nodes a group has seen hold Raft state, recorded durably
 * (runtime_int.h, struct lcr_rt_held; docs/storage-format.md, "The held
 * file"). A node whose disk was wiped must not come back under its old id
 * with an empty vote and log; lcraft-node asks the cluster before it opens
 * a group with no state (bench/rejoin.h), and this record is what the others
 * answer with: it outlives the volatile evidence (a leader's matched index,
 * who leads now).
 *
 * Evidence is only what a node that never held state cannot produce:
 *   - a granted vote (not a pre-vote) from X: X saved its vote first;
 *   - an OK AppendEntries answer from X with a matching index above 0, or a
 *     snapshot answer with its last index above 0: X holds entries durably;
 *   - an AppendEntries or a snapshot from X: X leads, so it saved its vote
 *     for itself;
 *   - this node itself, once its storage flushed anything (a vote, entries).
 * The lcore notes an id in memory (a scan of at most LCR_RT_HELD_MAX ids, a
 * one-id cache in front for the stream of one leader's appends); a new one
 * is handed, under the node's held_mu (taken only then: once per node per
 * group lifetime), to the node's writer thread, which replaces the file
 * (tmp, fsync, rename, fsync of the directory). The lcore never waits on the
 * disk; a write that fails is said on stderr and tried again with the next id.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "file.h"
#include "runtime_int.h"

#define HELD_MAGIC	"lcrheld1"
#define HELD_HEAD_BYTES 16
#define HELD_BYTES_MAX	(HELD_HEAD_BYTES + 4 * LCR_RT_HELD_MAX + 4)

static_assert(sizeof(HELD_MAGIC) - 1 == 8, "the magic is 8 bytes");

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The file's bytes for `ids` (ascending): its length. */
static size_t encode(uint8_t *buf, uint32_t group, const uint32_t *ids, uint32_t n)
{
	LCR_ASSERT(n >= 1 && n <= LCR_RT_HELD_MAX);
	memcpy(buf, HELD_MAGIC, 8);
	put32(buf + 8, group);
	put32(buf + 12, n);
	for (uint32_t i = 0; i < n; i++)
		put32(buf + HELD_HEAD_BYTES + 4 * i, ids[i]);
	size_t len = HELD_HEAD_BYTES + 4 * (size_t)n;
	put32(buf + len, lcr_crc32c(0, buf, len));
	return len + 4;
}

/* ---- reading, when the group opens --------------------------------------------- */

/* Why the file's bytes are not a held record of `group`, or NULL. */
static const char *decode(const uint8_t *buf, size_t len, uint32_t group, uint32_t *ids,
			  uint32_t *n)
{
	if (len < HELD_HEAD_BYTES + 8 || len > HELD_BYTES_MAX)
		return "its size is not that of a held record (20 to 276 bytes)";
	if (memcmp(buf, HELD_MAGIC, 8) != 0)
		return "it does not start with the magic \"lcrheld1\"";
	uint32_t count = get32(buf + 12);
	if (count < 1 || count > LCR_RT_HELD_MAX || len != HELD_HEAD_BYTES + 4 * (size_t)count + 4)
		return "its count does not match its size (truncated or torn)";
	if (get32(buf + len - 4) != lcr_crc32c(0, buf, len - 4))
		return "its checksum does not match (damaged)";
	if (get32(buf + 8) != group)
		return "it is another group's";
	for (uint32_t i = 0; i < count; i++) {
		ids[i] = get32(buf + HELD_HEAD_BYTES + 4 * i);
		if (ids[i] == 0 || (i > 0 && ids[i] <= ids[i - 1]))
			return "its node ids are not distinct, ascending and above 0";
	}
	*n = count;
	return NULL;
}

int lcr_rt_held_load(struct lcr_group *g, char *why, size_t why_len)
{
	struct lcr_rt_held *h = &g->held;
	uint8_t buf[HELD_BYTES_MAX + 1];
	char path[4200];
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", g->snap.dir, LCR_RT_HELD_FILE);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0; /* nothing seen yet: written at the first id */
	if (fd < 0) {
		int rc = -errno;
		snprintf(why, why_len, "group %u: %s: %s", g->id, path, strerror(-rc));
		return rc;
	}
	ssize_t got = lcr_read_upto(fd, buf, sizeof(buf));
	close(fd);
	int rc = got < 0 ? (int)got : 0;
	len = got < 0 ? 0 : (size_t)got;
	if (rc < 0) {
		snprintf(why, why_len, "group %u: %s: %s", g->id, path, strerror(-rc));
		return rc;
	}
	const char *bad = decode(buf, len, g->id, h->ids, &h->n);
	if (bad) {
		/* Written whole by a rename, so never torn by a crash: damage. */
		snprintf(why, why_len,
			 "group %u: %s: %s: refusing to open the group. The file lists the "
			 "nodes seen holding state (docs/storage-format.md, \"The held file\"); "
			 "removing it loses that record",
			 g->id, path, bad);
		h->n = 0;
		return -EBADMSG;
	}
	return 0;
}

/* ---- noting, on the group's lcore ---------------------------------------------- */

/* Hand the record to the writer (held_mu: rare, once per new id). */
static void publish(struct lcr_group *g)
{
	struct lcr_node *n = g->node;
	struct lcr_rt_held *h = &g->held;

	if (!n->held_running)
		return; /* the node closes: kept in memory only */
	pthread_mutex_lock(&n->held_mu);
	memcpy(h->pub, h->ids, sizeof(h->ids[0]) * h->n);
	h->pub_n = h->n;
	if (!h->queued) {
		h->queued = true;
		h->next = n->held_queue;
		n->held_queue = g;
	}
	pthread_cond_signal(&n->held_cv);
	pthread_mutex_unlock(&n->held_mu);
}

static void note(struct lcr_group *g, uint32_t id)
{
	struct lcr_rt_held *h = &g->held;
	uint32_t i;

	if (id == 0 || id == h->last)
		return;
	h->last = id;
	for (i = 0; i < h->n && h->ids[i] < id; i++)
		;
	if (i < h->n && h->ids[i] == id)
		return;
	if (h->n == LCR_RT_HELD_MAX) {
		if (!h->full_said)
			fprintf(stderr,
				"lcraft: group %u: node %u held state, but the held record is "
				"full (%d ids): it is not recorded\n",
				g->id, id, LCR_RT_HELD_MAX);
		h->full_said = true;
		return;
	}
	memmove(&h->ids[i + 1], &h->ids[i], sizeof(h->ids[0]) * (h->n - i));
	h->ids[i] = id;
	h->n++;
	publish(g);
}

void lcr_rt_held_event(struct lcr_group *g, const struct lcr_event *ev)
{
	if (ev->type == LCR_EV_IO_FLUSHED) {
		if (!g->held.self_noted) {
			g->held.self_noted = true;
			note(g, g->node->cfg.id);
		}
		return;
	}
	if (ev->type != LCR_EV_MSG)
		return;
	const struct lcr_msg *m = ev->msg;
	switch (m->type) {
	case LCR_MSG_VOTE_RESP:
		if (m->vote_resp.granted && !m->vote_resp.pre_vote)
			note(g, m->from);
		break;
	case LCR_MSG_APPEND_RESP:
		if (m->append_resp.result == LCR_APPEND_OK && m->append_resp.log_id.index > 0)
			note(g, m->from);
		break;
	case LCR_MSG_SNAPSHOT_RESP:
		if (m->snapshot_resp.last.index > 0)
			note(g, m->from);
		break;
	case LCR_MSG_APPEND_REQ:
	case LCR_MSG_SNAPSHOT_REQ:
		note(g, m->from);
		break;
	default:
		break;
	}
}

uint32_t lcr_group_held(const struct lcr_group *g, uint32_t *ids, uint32_t max)
{
	LCR_ASSERT(g != NULL);
	uint32_t n = g->held.n < max ? g->held.n : max;
	memcpy(ids, g->held.ids, sizeof(ids[0]) * n);
	return g->held.n;
}

/* ---- writing, on the node's writer thread -------------------------------------- */

static int write_file(const char *dir, const uint8_t *buf, size_t len)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", dir, LCR_RT_HELD_FILE);
	return lcr_file_replace(dir, path, buf, len, 0644);
}

static void *writer_main(void *arg)
{
	struct lcr_node *n = arg;
	uint8_t buf[HELD_BYTES_MAX];

	pthread_mutex_lock(&n->held_mu);
	for (;;) {
		while (!n->held_queue && !n->held_stop)
			pthread_cond_wait(&n->held_cv, &n->held_mu);
		struct lcr_group *g = n->held_queue;
		if (!g)
			break; /* stopping, and nothing left to write */
		n->held_queue = g->held.next;
		g->held.queued = false;
		uint32_t count = g->held.pub_n;
		size_t len = encode(buf, g->id, g->held.pub, count);
		pthread_mutex_unlock(&n->held_mu);
		int rc = write_file(g->snap.dir, buf, len);
		if (rc < 0)
			fprintf(stderr,
				"lcraft: group %u: %s/%s: cannot record the %u node(s) seen "
				"holding state: %s (tried again with the next one)\n",
				g->id, g->snap.dir, LCR_RT_HELD_FILE, count, strerror(-rc));
		pthread_mutex_lock(&n->held_mu);
	}
	pthread_mutex_unlock(&n->held_mu);
	return NULL;
}

int lcr_rt_held_start(struct lcr_node *n)
{
	pthread_mutex_init(&n->held_mu, NULL);
	pthread_cond_init(&n->held_cv, NULL);
	n->held_queue = NULL;
	n->held_stop = false;
	int rc = pthread_create(&n->held_thread, NULL, writer_main, n);
	if (rc != 0) {
		pthread_cond_destroy(&n->held_cv);
		pthread_mutex_destroy(&n->held_mu);
		return -rc;
	}
	n->held_running = true;
	return 0;
}

void lcr_rt_held_stop(struct lcr_node *n)
{
	if (!n->held_running)
		return;
	pthread_mutex_lock(&n->held_mu);
	n->held_stop = true;
	pthread_cond_signal(&n->held_cv);
	pthread_mutex_unlock(&n->held_mu);
	pthread_join(n->held_thread, NULL); /* every record handed over is written first */
	n->held_running = false;
	pthread_cond_destroy(&n->held_cv);
	pthread_mutex_destroy(&n->held_mu);
}
