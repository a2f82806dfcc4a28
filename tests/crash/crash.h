/* SPDX-License-Identifier: MIT */
/*
 * Shared by the crash test's driver (crash_test.c) and writer (crash_writer.c):
 * the record stream, the expectation file, entry payloads and the model of a log.
 *
 * The writer tells the driver, on its stdout, every storage command before it
 * can reach the disk (an intent) and every io id the log reports durable (an
 * ack). After a SIGKILL the driver writes an expectation file: the log as the
 * previous writer found it (the base), the commands announced since, and how
 * many of them were acknowledged. The next writer recovers with lcr_log_open
 * and must find the log as it stood after some command at or beyond the
 * acknowledged one, with a prefix of the following append at most: storage
 * reports "durable up to io id" in io order, so nothing acknowledged may be
 * missing, and nothing may appear that was never asked for.
 *
 * Installs (CRASH_INSTALL) are done as the runtime does them (snap_xfer.c):
 * the snapshot file is made durable first, then lcr_log_install cuts the log
 * in io order. So the newest snapshot may be ahead of the log: the snapshot
 * of any install at or after the log's state. The next writer then finishes
 * the install as the group's open does (group.c, log_install: the log
 * restarts empty after the snapshot), and reports that the log is the
 * snapshot's (CRASH_LOG_SNAP) instead of a command.
 */
#ifndef LCR_CRASH_H
#define LCR_CRASH_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "types.h"

#define CRASH_EXPECT_MAGIC 0x5445435048535243ull /* "CRSHPCET" */

enum crash_rec_kind {
	CRASH_APPEND = 1,   /* seq, a = first index, b = count, term, node */
	CRASH_TRUNCATE = 2, /* seq, a = after */
	CRASH_VOTE = 3,	    /* seq, term, node, a = committed */
	CRASH_ACK = 4,	    /* seq: every command up to it is durable */
	CRASH_READY = 5,    /* recovery verified: a = log match (or CRASH_LOG_SNAP),
			       b = last index, seq = vote match, term = runs */
	CRASH_INSTALL = 6,  /* seq, a = last index, term, node = its leader,
			       b = snapshot id << 1 | keep_log */
	CRASH_SNAP = 7,	    /* just before READY: seq = the snapshot match, a = 1 if
			       the writer finished its install, b = the purge lag
			       (see crash_writer.c) */
};

/* READY's log match when the log is the newest snapshot's: empty after it. */
#define CRASH_LOG_SNAP UINT64_MAX
/*
 * The purge lag: an install that keeps the log has its purge point in the
 * meta file, written once the batches before it are durable, while later
 * batches go on being written. So a crash may find the log of command k with
 * the purge points of the installs that keep the log from command j on
 * (j <= k, not below the acknowledged ones) not yet written: the log holds
 * more entries below, nothing else differs. CRASH_LAG_NONE: no lag.
 */
#define CRASH_LAG_NONE UINT64_MAX

/* One record on the writer's stdout; also a command in the expectation file. */
struct crash_rec {
	uint32_t kind; /* enum crash_rec_kind */
	uint32_t node;
	uint64_t seq;
	uint64_t a;
	uint64_t b;
	uint64_t term;
};

/* The expectation file: this header, `n_runs` runs of the base, `n_cmds` commands. */
struct crash_expect {
	uint64_t magic;
	uint64_t salt;	    /* payload salt of this test run */
	uint64_t seed;	    /* the writer's own choices */
	uint64_t base_last; /* last index of the base log */
	uint64_t n_runs;
	uint64_t n_cmds;
	uint64_t acked_cmds; /* commands [0, acked_cmds) are acknowledged */
	uint64_t old_last;   /* an earlier writer recovered and checked up to here */
	uint64_t term_next;  /* lowest term the writer may use */
	uint64_t vote_term;  /* the base vote */
	uint32_t vote_node;
	uint32_t vote_committed;
	struct lcr_log_id purged; /* the base's purge point */
	struct lcr_log_id snap;	  /* the base's newest snapshot (index 0: none) ... */
	uint64_t snap_id;	  /* ... and its id */
};

/* A run of entries written by one leader, from `first` to the next run. */
struct crash_run {
	uint64_t first;
	uint64_t term;
	uint32_t node;
	uint32_t reserved;
};

/*
 * A log as leader runs after its purge point, a vote and the newest snapshot.
 * The first run may start at or below the purge point (it keeps its first
 * index, where its blank entry was); runs wholly at or below it may stay.
 * crash_model_canon() gives the log as recovery would index it.
 */
struct crash_model {
	struct crash_run *runs;
	uint32_t n;
	uint32_t cap;
	uint64_t last;
	struct lcr_log_id purged;
	struct lcr_vote vote;
	struct lcr_log_id snap; /* index 0: no snapshot */
	uint64_t snap_id;
};

static inline uint64_t crash_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t crash_entry_key(uint64_t salt, uint64_t index, uint64_t term, uint32_t node)
{
	return crash_mix(salt ^ crash_mix(index ^ crash_mix(term ^ ((uint64_t)node << 40))));
}

/*
 * Payload length of an entry: 1..4096 bytes, mostly small. The first entry of
 * a run is its leader's blank entry (length 0).
 */
static inline uint32_t crash_entry_len(uint64_t key, bool run_first)
{
	if (run_first)
		return 0;
	uint32_t r = (uint32_t)(key % 100), x = (uint32_t)(key >> 32);
	if (r < 50)
		return 1 + x % 128;
	if (r < 90)
		return 1 + x % 1024;
	return 1 + x % 4096;
}

static inline void crash_entry_fill(uint64_t key, uint8_t *buf, uint32_t len)
{
	uint64_t x = key;
	for (uint32_t i = 0; i < len; i += 8) {
		x = crash_mix(x);
		uint32_t n = len - i < 8 ? len - i : 8;
		memcpy(buf + i, &x, n);
	}
}

static inline void crash_model_free(struct crash_model *m)
{
	free(m->runs);
	memset(m, 0, sizeof(*m));
}

static inline int crash_model_push(struct crash_model *m, uint64_t first, uint64_t term,
				   uint32_t node)
{
	if (m->n == m->cap) {
		uint32_t cap = m->cap ? m->cap * 2 : 64;
		struct crash_run *r = realloc(m->runs, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		m->runs = r;
		m->cap = cap;
	}
	m->runs[m->n++] = (struct crash_run){ first, term, node, 0 };
	return 0;
}

static inline int crash_model_copy(struct crash_model *dst, const struct crash_model *src)
{
	dst->n = 0;
	for (uint32_t i = 0; i < src->n; i++)
		if (crash_model_push(dst, src->runs[i].first, src->runs[i].term, src->runs[i].node))
			return -ENOMEM;
	dst->last = src->last;
	dst->purged = src->purged;
	dst->vote = src->vote;
	dst->snap = src->snap;
	dst->snap_id = src->snap_id;
	return 0;
}

/* The run holding `index` (at or above the first run's first index). */
static inline const struct crash_run *crash_model_run(const struct crash_model *m, uint64_t index)
{
	uint32_t lo = 0, hi = m->n;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (m->runs[mid].first <= index)
			lo = mid;
		else
			hi = mid;
	}
	return &m->runs[lo];
}

/* A snapshot's data: `size` bytes from its id (1 byte to 256 KiB). */
static inline uint64_t crash_snap_size(uint64_t salt, uint64_t id)
{
	uint64_t key = crash_mix(salt ^ crash_mix(id ^ 0x534e4150ull));
	return 1 + key % (256u << 10);
}

/* Bytes [off, off + len) of that data; `off` a multiple of 8. */
static inline void crash_snap_fill(uint64_t salt, uint64_t id, uint64_t off, uint8_t *buf,
				   uint32_t len)
{
	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t x = crash_mix(salt ^ crash_mix(id ^ ((off + i) << 8)));
		uint32_t n = len - i < 8 ? len - i : 8;
		memcpy(buf + i, &x, n);
	}
}

/* Install: the snapshot becomes the newest; the log is purged up to it or restarts after it. */
static inline int crash_model_install(struct crash_model *m, const struct crash_rec *c)
{
	struct lcr_log_id at = { { c->term, c->node }, c->a };
	bool keep = c->b & 1;

	m->snap = at;
	m->snap_id = c->b >> 1;
	if (!keep) {
		m->n = 0;
		m->last = at.index;
		m->purged = at;
		return 0;
	}
	if (at.index <= m->purged.index)
		return 0; /* nothing to purge: a meta write only */
	if (at.index > m->last || m->n == 0)
		return -EINVAL;
	const struct crash_run *r = crash_model_run(m, at.index);
	if (r->term != at.lid.term || r->node != at.lid.node)
		return -EINVAL;
	/* Runs wholly at or below the purge point go, but the last one stays. */
	uint32_t drop = 0;
	while (drop + 1 < m->n && m->runs[drop + 1].first <= at.index + 1)
		drop++;
	memmove(m->runs, m->runs + drop, (m->n - drop) * sizeof(*m->runs));
	m->n -= drop;
	m->purged = at;
	return 0;
}

#define CRASH_LAGGED 0x100u /* crash_model_apply_lag: the install's purge point lags */

/*
 * Apply one command; an append of `count` entries may be cut to its first
 * `count_max`; with `lagged`, an install that keeps the log leaves the purge
 * point as it was (CRASH_LAG_NONE).
 */
static inline int crash_model_apply_lag(struct crash_model *m, const struct crash_rec *c,
					uint64_t count_max, bool lagged)
{
	switch (c->kind | (lagged && c->kind == CRASH_INSTALL ? CRASH_LAGGED : 0)) {
	case CRASH_APPEND: {
		uint64_t count = c->b < count_max ? c->b : count_max;
		if (c->a != m->last + 1)
			return -EINVAL;
		if (count == 0)
			return 0;
		struct crash_run *r = m->n ? &m->runs[m->n - 1] : NULL;
		if (!r || r->term != c->term || r->node != c->node)
			if (crash_model_push(m, c->a, c->term, c->node))
				return -ENOMEM;
		m->last = c->a + count - 1;
		return 0;
	}
	case CRASH_TRUNCATE:
		if (c->a > m->last || c->a < m->purged.index)
			return -EINVAL;
		while (m->n > 0 && m->runs[m->n - 1].first > c->a)
			m->n--;
		m->last = c->a;
		return 0;
	case CRASH_VOTE:
		m->vote.lid.term = c->term;
		m->vote.lid.node = c->node;
		m->vote.committed = c->a != 0;
		return 0;
	case CRASH_INSTALL:
		return crash_model_install(m, c);
	case CRASH_INSTALL | CRASH_LAGGED:
		if (!(c->b & 1))
			return crash_model_install(m, c);
		/* A purge point not yet written: only the snapshot is there. */
		m->snap = (struct lcr_log_id){ { c->term, c->node }, c->a };
		m->snap_id = c->b >> 1;
		return 0;
	default:
		return -EINVAL;
	}
}

static inline int crash_model_apply(struct crash_model *m, const struct crash_rec *c,
				    uint64_t count_max)
{
	return crash_model_apply_lag(m, c, count_max, false);
}

/*
 * The log as recovery indexes it: runs clipped to start after the purge point,
 * those wholly at or below it gone. `out` holds only runs, last and purged.
 */
static inline int crash_model_canon(const struct crash_model *m, struct crash_model *out)
{
	out->n = 0;
	for (uint32_t i = 0; i < m->n; i++) {
		uint64_t end = i + 1 < m->n ? m->runs[i + 1].first - 1 : m->last;
		uint64_t first = m->runs[i].first;
		if (end <= m->purged.index)
			continue;
		if (first <= m->purged.index)
			first = m->purged.index + 1;
		if (crash_model_push(out, first, m->runs[i].term, m->runs[i].node))
			return -ENOMEM;
	}
	out->last = m->last;
	out->purged = m->purged;
	return 0;
}

/* Same log (the votes and snapshots are compared apart: they live in other files). */
static inline bool crash_model_log_eq(const struct crash_model *a, const struct crash_model *b)
{
	struct crash_model ca = { 0 }, cb = { 0 };
	bool eq = false;

	if (a->last == b->last && lcr_log_id_eq(a->purged, b->purged) &&
	    crash_model_canon(a, &ca) == 0 && crash_model_canon(b, &cb) == 0)
		eq = ca.n == cb.n &&
		     (ca.n == 0 || memcmp(ca.runs, cb.runs, ca.n * sizeof(*ca.runs)) == 0);
	crash_model_free(&ca);
	crash_model_free(&cb);
	return eq;
}

#endif /* LCR_CRASH_H */
