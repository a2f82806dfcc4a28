/* SPDX-License-Identifier: MIT */
/* Storage test helpers (see io_harness.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io_harness.h"

static void on_done(void *ctx, const struct lcr_io_id *io, int err)
{
	struct iot *t = ctx;
	if (err) {
		if (!t->err)
			t->err = err;
		return;
	}
	if (io->seq <= t->durable_seq) {
		fprintf(stderr, "io harness: durable seq went from %llu to %llu\n",
			(unsigned long long)t->durable_seq, (unsigned long long)io->seq);
		abort();
	}
	t->durable_seq = io->seq;
	t->durable = *io;
}

void iot_init(struct iot *t, const char *name)
{
	const char *base = getenv("LCR_TEST_DIR");
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "%s/lcraft-%s-XXXXXX", base ? base : "/var/tmp", name);
	if (!mkdtemp(t->dir)) {
		perror("mkdtemp");
		abort();
	}
	if (lcr_ring_init(&t->ring, 256) < 0) {
		fprintf(stderr, "io harness: io_uring unavailable\n");
		abort();
	}
	lcr_log_opts_default(&t->opts, t->dir);
	t->opts.segment_bytes = 4u << 20;
	t->opts.arena_bytes = 16u << 20;
	t->opts.batch_bytes_max = 256u << 10;
	t->opts.done = on_done;
	t->opts.ctx = t;
}

int iot_open(struct iot *t)
{
	t->why[0] = 0;
	t->err = 0;
	t->durable_seq = 0;
	t->seq = 0;
	return lcr_log_open(&t->log, &t->ring, &t->opts, t->why, sizeof(t->why));
}

void iot_close(struct iot *t)
{
	lcr_log_close(t->log);
	t->log = NULL;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void iot_fini(struct iot *t)
{
	if (t->log)
		iot_close(t);
	lcr_ring_exit(&t->ring);
	nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void iot_payload(uint64_t index, uint8_t *buf, uint32_t len)
{
	uint64_t x = index * 0x9e3779b97f4a7c15ull;
	for (uint32_t i = 0; i < len; i++) {
		x ^= x >> 13;
		x *= 0xff51afd7ed558ccdull;
		buf[i] = (uint8_t)(x >> 56);
	}
}

static struct lcr_io_id next_io(struct iot *t)
{
	struct lcr_io_id io = { ++t->seq, { { 0, 0 }, false }, lcr_log_last(t->log) };
	return io;
}

int iot_append(struct iot *t, uint64_t first, uint32_t n, uint64_t term, uint32_t node,
	       uint32_t len)
{
	static uint8_t bufs[64][4096];
	struct lcr_entry e[64];
	while (n > 0) {
		uint32_t k = n < 64 ? n : 64;
		for (uint32_t i = 0; i < k; i++) {
			e[i].id.lid.term = term;
			e[i].id.lid.node = node;
			e[i].id.index = first + i;
			e[i].type = LCR_ENTRY_NORMAL;
			e[i].len = len;
			iot_payload(first + i, bufs[i], len);
			e[i].data = bufs[i];
		}
		struct lcr_io_id io = next_io(t);
		int rc = lcr_log_append(t->log, e, k, &io);
		if (rc < 0) {
			t->seq--;
			return rc;
		}
		first += k;
		n -= k;
	}
	return 0;
}

int iot_truncate(struct iot *t, uint64_t after)
{
	struct lcr_io_id io = next_io(t);
	int rc = lcr_log_truncate(t->log, after, &io);
	if (rc < 0)
		t->seq--;
	return rc;
}

int iot_vote(struct iot *t, uint64_t term, uint32_t node, bool committed)
{
	struct lcr_vote v = { { term, node }, committed };
	struct lcr_io_id io = next_io(t);
	int rc = lcr_log_save_vote(t->log, v, &io);
	if (rc < 0)
		t->seq--;
	return rc;
}

int iot_sync(struct iot *t)
{
	lcr_log_flush(t->log);
	for (int i = 0; i < 200000 && !t->err && t->durable_seq < t->seq; i++) {
		lcr_ring_submit(&t->ring);
		lcr_ring_wait(&t->ring, 10 * 1000 * 1000);
		lcr_log_flush(t->log);
	}
	if (t->err)
		return t->err;
	return t->durable_seq == t->seq ? 0 : -ETIMEDOUT;
}

void iot_settle(struct iot *t)
{
	for (int i = 0; i < 100000 && (t->ring.in_flight || t->ring.ov_head); i++) {
		lcr_ring_submit(&t->ring);
		lcr_ring_wait(&t->ring, 10 * 1000 * 1000);
	}
	lcr_ring_submit(&t->ring);
	for (int i = 0; i < 100000 && (t->ring.in_flight || t->ring.ov_head); i++)
		lcr_ring_wait(&t->ring, 10 * 1000 * 1000);
}

int iot_check_disk(struct iot *t, uint64_t first, uint64_t last, uint64_t term, uint32_t node)
{
	static uint8_t want[1 << 20], got[1 << 20];
	for (uint64_t i = first; i <= last; i++) {
		struct lcr_entry e;
		int n = lcr_log_read(t->log, i, &e, got, sizeof(got));
		if (n < 0) {
			fprintf(stderr, "read %llu: %d\n", (unsigned long long)i, n);
			return n;
		}
		iot_payload(i, want, e.len);
		if (e.id.index != i || e.id.lid.term != term || e.id.lid.node != node ||
		    memcmp(want, got, e.len) != 0) {
			fprintf(stderr, "entry %llu differs\n", (unsigned long long)i);
			return -EBADMSG;
		}
	}
	return 0;
}

void iot_seg_path(struct iot *t, uint64_t no, char *buf, size_t n)
{
	snprintf(buf, n, "%s/seg-%016llx.log", t->dir, (unsigned long long)no);
}

static void *count_alloc(void *ctx, size_t size)
{
	struct iot_counter *c = ctx;
	void *p = malloc(size);
	if (p) {
		c->live++;
		c->calls++;
	}
	return p;
}

static void count_free(void *ctx, void *p)
{
	struct iot_counter *c = ctx;
	c->live--;
	free(p);
}

struct lcr_allocator iot_counting(struct iot_counter *c)
{
	struct lcr_allocator a = { count_alloc, count_free, c };
	memset(c, 0, sizeof(*c));
	return a;
}
