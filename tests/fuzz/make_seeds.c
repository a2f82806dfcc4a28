/* Seed inputs of the fuzz targets: make_seeds DIR [recover|config|stream] (writes under DIR). */
/*
 * fuzz_config's seeds (DIR/fuzz_config/) are config files as lcraft-node
 * reads them, behind fuzz_config.c's mode byte; fuzz_stream's
 * (DIR/fuzz_stream/) are schedules in fuzz_stream.c's format: options,
 * message lengths, then datagrams (in order, reordered, a takeback, forged).
 *
 * fuzz_recover's are made by writing real logs (DIR/<name>). Each seed is an input in
 * fuzz_recover.c's format: a mode byte, the group, then a meta image (compact: two 128-byte slot
 * prefixes) and a segment image cut to its used part, or the segment as chunks (the used bytes of
 * each batch) to keep seeds to a few KiB. Needs io_uring; run it by hand when the formats change:
 *   ninja -C build tests/fuzz/make_seeds && build/tests/fuzz/make_seeds tests/fuzz/corpus
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "log_format.h"
#include "meta.h"
#include "ring.h"
#include "scan.h"

#define GROUP 7

/* fuzz_recover.c's mode bits. */
#define MODE_META	  0x01u
#define MODE_META_COMPACT 0x02u
#define MODE_SEG_HEADER	  0x04u
#define MODE_SEG_CHUNKS	  0x08u
#define MODE_SEG_NO(n)	  ((uint32_t)((n)-1) << 5)

struct gen {
	struct lcr_ring ring;
	struct lcr_log *log;
	struct lcr_log_opts o;
	char dir[256];
	uint64_t seq;
	uint64_t durable;
	int err;
};

static void die(const char *what, int rc)
{
	fprintf(stderr, "make_seeds: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

static void on_done(void *ctx, const struct lcr_io_id *io, int err)
{
	struct gen *g = ctx;
	if (err)
		g->err = err;
	else
		g->durable = io->seq;
}

static void gen_open(struct gen *g)
{
	char why[256];
	int rc = lcr_log_open(&g->log, &g->ring, &g->o, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "make_seeds: open: %s\n", why);
		exit(1);
	}
	g->seq = g->durable = 0;
}

static void gen_init(struct gen *g)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->dir, sizeof(g->dir), "/var/tmp/lcraft-seeds-XXXXXX");
	if (!mkdtemp(g->dir))
		die("mkdtemp", errno);
	int rc = lcr_ring_init(&g->ring, 64);
	if (rc < 0)
		die("io_uring", rc);
	lcr_log_opts_default(&g->o, g->dir);
	g->o.group = GROUP;
	g->o.segment_bytes = 4u << 20;
	g->o.block_bytes = 4096; /* the seeds step through batches by 4 KiB */
	g->o.arena_bytes = 16u << 20;
	g->o.batch_bytes_max = 64u << 10;
	g->o.done = on_done;
	g->o.ctx = g;
	gen_open(g);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void gen_fini(struct gen *g)
{
	lcr_log_close(g->log);
	lcr_ring_exit(&g->ring);
	nftw(g->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct lcr_io_id next_io(struct gen *g)
{
	struct lcr_io_id io = { ++g->seq, { { 0, 0 }, false }, lcr_log_last(g->log) };
	return io;
}

/* n entries after the last, `len` bytes each, then everything made durable. */
static void append(struct gen *g, uint32_t n, uint64_t term, uint32_t node, uint32_t len)
{
	static uint8_t buf[4096];
	struct lcr_entry e[64];
	uint64_t first = lcr_log_last(g->log).index + 1;

	for (uint32_t i = 0; i < n; i++) {
		e[i].id = (struct lcr_log_id){ { term, node }, first + i };
		e[i].type = LCR_ENTRY_NORMAL;
		e[i].len = len;
		memset(buf, (int)(first + i), len);
		e[i].data = buf;
	}
	struct lcr_io_id io = next_io(g);
	int rc = lcr_log_append(g->log, e, n, &io);
	if (rc < 0)
		die("append", rc);
}

static void truncate_after(struct gen *g, uint64_t after)
{
	struct lcr_io_id io = next_io(g);
	int rc = lcr_log_truncate(g->log, after, &io);
	if (rc < 0)
		die("truncate", rc);
}

static void vote(struct gen *g, uint64_t term, uint32_t node, bool committed)
{
	struct lcr_vote v = { { term, node }, committed };
	struct lcr_io_id io = next_io(g);
	int rc = lcr_log_save_vote(g->log, v, &io);
	if (rc < 0)
		die("vote", rc);
}

static void sync_all(struct gen *g)
{
	lcr_log_flush(g->log);
	while (!g->err && g->durable < g->seq) {
		lcr_ring_submit(&g->ring);
		lcr_ring_wait(&g->ring, 10 * 1000 * 1000);
		lcr_log_flush(g->log);
	}
	if (g->err)
		die("sync", g->err);
}

static uint8_t *read_file(struct gen *g, const char *name, size_t *len)
{
	char path[512];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", g->dir, name);
	int fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &sb) < 0)
		die(path, errno);
	uint8_t *buf = malloc((size_t)sb.st_size);
	if (!buf || pread(fd, buf, (size_t)sb.st_size, 0) != sb.st_size)
		die(path, errno ? errno : EIO);
	close(fd);
	*len = (size_t)sb.st_size;
	return buf;
}

static int count_batch(void *ctx, const struct lcr_scan_batch *b, char *why, size_t why_len)
{
	(void)ctx;
	(void)b;
	(void)why;
	(void)why_len;
	return 0;
}

/* Segment `no` cut after its last batch. */
static uint8_t *read_segment(struct gen *g, uint64_t no, size_t *len)
{
	char name[64], why[256];
	struct lcr_scan_result res;

	snprintf(name, sizeof(name), "seg-%016llx.log", (unsigned long long)no);
	uint8_t *img = read_file(g, name, len);
	struct lcr_seg_info si;
	if (lcr_seg_check_header(img, *len, GROUP, no, &si, why, sizeof(why)) < 0 ||
	    lcr_seg_scan(img, *len, GROUP, &si, count_batch, NULL, &res, why, sizeof(why)) < 0) {
		fprintf(stderr, "make_seeds: %s: %s\n", name, why);
		exit(1);
	}
	*len = res.end;
	return img;
}

struct seed {
	uint8_t buf[1 << 20];
	size_t len;
};

static void put(struct seed *s, const void *p, size_t n)
{
	if (s->len + n > sizeof(s->buf))
		die("seed too large", E2BIG);
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static void put_meta(struct seed *s, struct gen *g)
{
	size_t len;
	uint8_t *m = read_file(g, LCR_META_FILE, &len);
	if (len != 2 * LCR_META_SLOT)
		die("meta size", EINVAL);
	put(s, m, 128);
	put(s, m + LCR_META_SLOT, 128);
	free(m);
}

/* Each batch's used bytes as a chunk (a u16 length, then the bytes). */
static void put_chunks(struct seed *s, const uint8_t *img, size_t len)
{
	for (size_t off = LCR_BLOCK; off < len;) {
		struct lcr_batch_hdr h;
		memcpy(&h, img + off, sizeof(h));
		size_t used = sizeof(h) + h.bytes;
		if (used > 0xffff)
			die("batch too large for a chunk", E2BIG);
		uint8_t n[2] = { (uint8_t)used, (uint8_t)(used >> 8) };
		put(s, n, 2);
		put(s, img + off, used);
		off += lcr_align_up(used, LCR_BLOCK);
	}
}

static void save(const char *dir, const char *name, const struct seed *s)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f) != 0)
		die(path, errno);
	printf("%s: %zu bytes\n", path, s->len);
}

/* ---- fuzz_config and fuzz_stream ------------------------------------------------ */

static void save_bytes(const char *dir, const char *sub, const char *name, const void *p, size_t n)
{
	static struct seed s;
	char d[512];

	snprintf(d, sizeof(d), "%s/%s", dir, sub);
	mkdir(d, 0755);
	if (n > sizeof(s.buf))
		die("seed too large", E2BIG);
	memcpy(s.buf, p, n);
	s.len = n;
	save(d, name, &s);
}

/* A config file behind fuzz_config.c's mode byte: raw bytes, --id 1. */
static void config_seed(const char *dir, const char *name, const char *text)
{
	static char buf[8192];
	size_t n = strlen(text);

	if (n + 1 > sizeof(buf))
		die("config seed too large", E2BIG);
	buf[0] = 0x01; /* raw file; --id 1 + (mode >> 4) % 4 = 1 */
	memcpy(buf + 1, text, n);
	save_bytes(dir, "fuzz_config", name, buf, n + 1);
}

static void seeds_config(const char *dir)
{
	config_seed(dir, "config-local-3",
		    "; three nodes on loopback\n[cluster]\nid = 7\n[nodes]\n1 = 127.0.0.1:7101\n"
		    "2 = 127.0.0.1:7201\n3 = 127.0.0.1:7301\n[node]\n"
		    "data_dir = /var/tmp/lcraft/local-3/node-{id}\nlcores = 1\ngroups = 1\n"
		    "[raft]\nelection_timeout_min_ms = 150\nelection_timeout_max_ms = 300\n"
		    "heartbeat_interval_ms = 50\nread_policy = read_index\n[storage]\n"
		    "durability = fsync\nio_mode = direct-dsync\nsegment_mb = 64\n");
	config_seed(dir, "config-dpdk",
		    "[cluster]\nid = 9\n[nodes]\n1 = 10.0.0.1:7000\n2 = 10.0.0.2:7000\n"
		    "3 = 10.0.0.3:7000\n[node]\ndata_dir = /tmp/n{id}\nlcores = 2\n"
		    "cores = 2-3\ntransport = dpdk\nbusy_poll = on\n[raft]\n"
		    "election_timeout_min_ms = 150\nelection_timeout_max_ms = 300\n"
		    "heartbeat_interval_ms = 50\n[faults]\nloss_pct = 0.5\ndelay_us = 100\n"
		    "[dpdk]\neal = -l {id} --no-huge\n  --no-pci\nroutes = 1=net_memif0,\n"
		    "  2=net_memif1, 3 = net_memif2\nneighbours = 2=aa:bb:cc:dd:ee:02\n");
	/* Built mode: the valid file plus a few lines made of the input. */
	static const uint8_t built[] = { 0x10, 0x01, 0x41, 13, 6, 0x01, 0x00, 4, 0x03, 0x11, 0x5 };
	save_bytes(dir, "fuzz_config", "config-built", built, sizeof(built));
}

/* fuzz_stream.c's format: options, four streams' message lengths, then datagrams. */
struct sched {
	uint8_t b[4096];
	size_t n;
};

static void sb(struct sched *s, uint8_t v)
{
	if (s->n == sizeof(s->b))
		die("stream seed too large", E2BIG);
	s->b[s->n++] = v;
}

/* Window 16 + w, 64 payload bytes a fragment; each stream `msgs` messages of `sel` length. */
static void sched_begin(struct sched *s, uint8_t cfg, uint8_t w, uint8_t msgs, uint8_t sel)
{
	s->n = 0;
	sb(s, cfg);
	sb(s, w);
	for (int k = 0; k < 4; k++) {
		sb(s, (uint8_t)(msgs - 1));
		for (int i = 0; i < msgs; i++) {
			sb(s, sel);
			if (sel >= 160)
				sb(s, 40); /* 160 bytes: three fragments */
		}
	}
}

static void seeds_stream(const char *dir)
{
	static struct sched s;

	/* Stream 0 in order, bursts of 8. */
	sched_begin(&s, 0x00, 16, 8, 10);
	for (int i = 0; i < 4; i++)
		sb(&s, 0x1c);
	save_bytes(dir, "fuzz_stream", "stream-in-order", s.b, s.n);

	/* Three-fragment messages, sent around the highest seq: late, early, twice. */
	sched_begin(&s, 0x00, 0, 8, 200);
	for (int i = 0; i < 24; i++) {
		sb(&s, 0x80);
		sb(&s, (uint8_t)(24 + (i * 7) % 9 - 3));
	}
	sb(&s, 0x1c);
	save_bytes(dir, "fuzz_stream", "stream-fragments-reordered", s.b, s.n);

	/* Stream 0, then 2 (newer), 32 of 0 (back to it), 1, 2 again: a
	 * receiver that forgot 2 would hand its first message up again. */
	sched_begin(&s, 0x00, 33, 40, 10);
	sb(&s, 0x00);
	sb(&s, 0x02);
	for (int i = 0; i < 4; i++)
		sb(&s, 0x1c);
	sb(&s, 0x01);
	sb(&s, 0x82);
	sb(&s, 24); /* stream 2's seq 1 again */
	save_bytes(dir, "fuzz_stream", "stream-takeback", s.b, s.n);

	/* Honest datagrams and forged ones beside them. */
	sched_begin(&s, 0x20, 0, 4, 10);
	for (int i = 0; i < 16; i++) {
		sb(&s, (uint8_t)(i & 3));
		sb(&s, 0xe0 | (uint8_t)(i & 3));
		sb(&s, (uint8_t)(i * 8 + 3)); /* beside an honest id */
		sb(&s, 0);
		sb(&s, (uint8_t)(i * 5));
		sb(&s, (uint8_t)(i % 5));
		sb(&s, (uint8_t)(i % 3));
	}
	save_bytes(dir, "fuzz_stream", "stream-forged", s.b, s.n);

	/* Forged fragment 0 of 3, then 1 of 2, on one stream: not a message
	 * of two (the counts differ). */
	sched_begin(&s, 0x20, 0, 1, 10);
	static const uint8_t frags[] = {
		0xe0, 0x0b, 0, 0x03, 0, 2, 0, 0xe0, 0x0b, 0, 0x03, 1, 1, 1
	};
	for (size_t i = 0; i < sizeof(frags); i++)
		sb(&s, frags[i]);
	save_bytes(dir, "fuzz_stream", "stream-frag-counts", s.b, s.n);
}

static void seed_begin(struct seed *s, uint32_t mode)
{
	s->len = 0;
	uint8_t b[2] = { (uint8_t)mode, GROUP };
	put(s, b, 2);
}

int main(int argc, char **argv)
{
	static struct seed s;
	struct gen g;
	size_t len;
	uint8_t *img;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: make_seeds DIR [recover|config|stream]\n");
		return 2;
	}
	mkdir(argv[1], 0755);
	if (argc == 2 || strcmp(argv[2], "config") == 0)
		seeds_config(argv[1]);
	if (argc == 2 || strcmp(argv[2], "stream") == 0)
		seeds_stream(argv[1]);
	if (argc == 3 && strcmp(argv[2], "recover") != 0)
		return 0;

	/* Two batches as the segment has them, header block included. */
	gen_init(&g);
	append(&g, 8, 1, 1, 24);
	sync_all(&g);
	append(&g, 5, 1, 1, 100);
	sync_all(&g);
	img = read_segment(&g, 1, &len);
	seed_begin(&s, MODE_SEG_NO(1));
	put(&s, img, len);
	save(argv[1], "seg-raw", &s);
	/* The same with its last batch torn: a block of it overwritten. */
	memset(s.buf + 2 + len - LCR_BLOCK + 100, 0xee, 64);
	save(argv[1], "seg-raw-torn", &s);
	free(img);
	gen_fini(&g);

	/* A new leader truncates and appends; votes on the way. */
	gen_init(&g);
	vote(&g, 1, 1, false);
	vote(&g, 1, 1, true);
	append(&g, 20, 1, 1, 16);
	sync_all(&g);
	append(&g, 10, 1, 1, 16);
	sync_all(&g);
	vote(&g, 2, 3, true);
	truncate_after(&g, 24);
	append(&g, 4, 2, 3, 40);
	sync_all(&g);
	truncate_after(&g, 26); /* a truncation alone */
	sync_all(&g);
	append(&g, 3, 2, 3, 8);
	sync_all(&g);
	img = read_segment(&g, 1, &len);
	seed_begin(&s, MODE_META | MODE_META_COMPACT | MODE_SEG_HEADER | MODE_SEG_CHUNKS |
			       MODE_SEG_NO(1));
	put_meta(&s, &g);
	put_chunks(&s, img, len);
	save(argv[1], "truncate-chunks", &s);
	free(img);

	/* Purged past the truncation point while the replaced batch is still
	 * there: io/log.c refuses to recover this log. */
	lcr_log_purge(g.log, 25);
	vote(&g, 2, 3, true); /* durable after the purge point */
	sync_all(&g);
	img = read_segment(&g, 1, &len);
	seed_begin(&s, MODE_META | MODE_META_COMPACT | MODE_SEG_HEADER | MODE_SEG_CHUNKS |
			       MODE_SEG_NO(1));
	put_meta(&s, &g);
	put_chunks(&s, img, len);
	save(argv[1], "purge-truncated-chunks", &s);
	free(img);
	gen_fini(&g);

	/* The same leader replaces its own tail, then a purge past the
	 * replacement point: io/log.c asserts recovering this log. */
	gen_init(&g);
	append(&g, 20, 1, 1, 12);
	sync_all(&g);
	truncate_after(&g, 10);
	append(&g, 5, 1, 1, 20);
	sync_all(&g);
	lcr_log_purge(g.log, 12);
	vote(&g, 1, 1, true);
	sync_all(&g);
	img = read_segment(&g, 1, &len);
	seed_begin(&s, MODE_META | MODE_META_COMPACT | MODE_SEG_HEADER | MODE_SEG_CHUNKS |
			       MODE_SEG_NO(1));
	put_meta(&s, &g);
	put_chunks(&s, img, len);
	save(argv[1], "purge-replaced-chunks", &s);
	free(img);
	gen_fini(&g);

	/* Purged inside the first batch. */
	gen_init(&g);
	append(&g, 20, 3, 2, 12);
	sync_all(&g);
	append(&g, 10, 3, 2, 12);
	sync_all(&g);
	lcr_log_purge(g.log, 10);
	vote(&g, 3, 2, true);
	sync_all(&g);
	img = read_segment(&g, 1, &len);
	seed_begin(&s, MODE_META | MODE_META_COMPACT | MODE_SEG_HEADER | MODE_SEG_CHUNKS |
			       MODE_SEG_NO(1));
	put_meta(&s, &g);
	put_chunks(&s, img, len);
	save(argv[1], "purge-chunks", &s);
	free(img);
	gen_fini(&g);

	/* Segment 2 of a log that rolled over and was purged up to its small
	 * batches at the end (the rest cut away), the meta file as it is. */
	gen_init(&g);
	for (int i = 0; i < 80; i++) {
		append(&g, 16, 1, 2, 4000);
		sync_all(&g);
	}
	uint64_t upto = lcr_log_last(g.log).index;
	for (int i = 0; i < 3; i++) {
		append(&g, 2, 2, 1, 10);
		sync_all(&g);
	}
	lcr_log_purge(g.log, upto);
	vote(&g, 2, 1, true);
	sync_all(&g);
	img = read_segment(&g, 2, &len);
	size_t from = len;
	for (size_t off = LCR_BLOCK; off < len;) {
		struct lcr_batch_hdr h;
		memcpy(&h, img + off, sizeof(h));
		if (h.first_index == upto + 1 && from == len)
			from = off;
		off += lcr_align_up(sizeof(h) + h.bytes, LCR_BLOCK);
	}
	memmove(img + LCR_BLOCK, img + from, len - from);
	seed_begin(&s, MODE_META | MODE_SEG_HEADER | MODE_SEG_CHUNKS | MODE_SEG_NO(2));
	size_t mlen;
	uint8_t *meta = read_file(&g, LCR_META_FILE, &mlen);
	put(&s, meta, mlen);
	free(meta);
	put_chunks(&s, img, LCR_BLOCK + len - from);
	save(argv[1], "seg2-purged", &s);
	free(img);
	gen_fini(&g);
	return 0;
}
