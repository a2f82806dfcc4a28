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
	CRASH_READY = 5,    /* recovery verified: a = log match, b = last index,
			       seq = vote match, term = runs (see crash_writer.c) */
};

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
};

/* A run of entries written by one leader, from `first` to the next run. */
struct crash_run {
	uint64_t first;
	uint64_t term;
	uint32_t node;
	uint32_t reserved;
};

/* A log as leader runs (no purge here: the log starts at index 1) and a vote. */
struct crash_model {
	struct crash_run *runs;
	uint32_t n;
	uint32_t cap;
	uint64_t last;
	struct lcr_vote vote;
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
	dst->vote = src->vote;
	return 0;
}

/* Apply one command; an append of `count` entries may be cut to its first `count_max`. */
static inline int crash_model_apply(struct crash_model *m, const struct crash_rec *c,
				    uint64_t count_max)
{
	switch (c->kind) {
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
		if (c->a > m->last)
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
	default:
		return -EINVAL;
	}
}

/* Same log (the votes are compared apart: they live in another file). */
static inline bool crash_model_log_eq(const struct crash_model *a, const struct crash_model *b)
{
	return a->last == b->last && a->n == b->n &&
	       (a->n == 0 || memcmp(a->runs, b->runs, a->n * sizeof(*a->runs)) == 0);
}

/* The run holding `index` (which must be in the log). */
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

#endif /* LCR_CRASH_H */
