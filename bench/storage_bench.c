/* SPDX-License-Identifier: MIT */
/*
 * lcraft-storage-bench: how fast the log (io/log.h) makes appends durable on
 * the filesystem of --dir, next to fio doing the same I/O with the same number
 * of flushes, in one run, lcraft and fio alternating so that drift (the host,
 * the disk cache, other tenants) hits both.
 *
 *   qd1        one 4 KiB entry, flush, wait until durable, repeat.
 *              fio floor: io_uring, iodepth 1, 4 KiB sequential writes, one
 *              flush per write, into a preallocated, pre-written file.
 *   group-4k   K 4 KiB entries per loop iteration (one append, one flush),
 *              appending on while the previous write is in flight.
 *              fio floor: bs = the bytes lcraft wrote per sync, one flush per write,
 *              into fresh files of the log's segment size, preallocated and
 *              pre-written only where the log pre-wrote its segments in that run:
 *              the blocks the log writes to are as new as fio's. The floor of
 *              the qd1 test (one pre-written file, overwritten again and again)
 *              is run too and shown as "hot": on a disk that writes fresh blocks
 *              more slowly than blocks it has written before, it is no floor
 *              for a log that only ever appends to new segments.
 *   group-64b  the same with 64-byte entries (target: 1,000,000 durable entries/s).
 *   qd1-64b    one 64-byte entry, flush, wait: the commit of one client, whose
 *              batch is one sector with 512-byte batch alignment (no fio floor).
 *   group-4k-purge  (only when named: --test group-4k-purge) group-4k while
 *              purging behind itself, as a log under regular snapshots does:
 *              every quarter segment's worth of entries, the entries up to one
 *              segment's worth below the durable index are purged, so the log
 *              holds two or three segments. Run with purged segments recycled
 *              (lcr_log_opts.recycle_max, the log's default) and without (0:
 *              deleted, every segment a new file), one after the other, the
 *              order reversed each round (--recycle-max names other values);
 *              no fio: the figure is the ratio. The device's own counters
 *              (/sys/dev/block/M:m/stat of --dir's filesystem: writes,
 *              flushes, discards, of every tenant) are taken around each run.
 *
 * --test takes one name or a list (qd1,group-4k-purge); "all" is the four
 * tests above group-4k-purge, the default.
 *
 * --block-bytes 4096,512 runs every test once per batch alignment
 * (lcr_log_opts.block_bytes; 0 is the log's default), in turn, --rounds times:
 * the alignments alternate, so that drift hits each alike.
 *
 * Targets judge the log's default io mode (lcr_log_opts_default: direct-dsync);
 * the other modes are measured beside it, against their own fio floors. Each
 * target is judged on the median over --rounds (default 3) of the figure of
 * each round's run (the ratio to the fio run right after it): a shared disk's
 * speed moves by 2x within minutes, and a single pair can straddle such a
 * change (group-4k measured 0.53 and then 1.02 and 0.91 within ten minutes).
 *
 * The fair fio configuration for each io mode pays the same flush:
 *   direct-dsync        fio --direct=1 --sync=dsync   (the write is the flush)
 *   direct-fdatasync    fio --direct=1 --fdatasync=1  (write, then fdatasync)
 *   buffered-fdatasync  fio --direct=0 --fdatasync=1
 *
 * Every lcraft run opens a fresh log in a fresh directory under --dir and
 * removes it; fio runs share one pre-written file in another fresh directory,
 * removed at the end. Warm-up 1 s, then --seconds of measurement. The timed
 * loops do not allocate: the histogram, entries and timestamps are static.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lcr_assert.h"
#include "log.h"
#include "log_format.h"
#include "ring.h"

#define WARMUP_NS	 1000000000ull
#define RING_DEPTH	 256
#define ISSUE_RING	 16384u /* io seqs that may be outstanding; power of two */
#define BATCH_MAX	 8192u	/* entries per loop iteration */
#define PAYLOAD_SLOTS	 256u	/* distinct payloads the entries cycle through */
#define ENTRY_4K	 4096u
#define ENTRY_SMALL	 64u
#define FIO_FILE_BYTES	 (256ull << 20)
#define FIO_OUT_MAX	 (4u << 20)
#define RESULTS_MAX	 256
#define ALIGNS_MAX	 4
#define RECYCLES_MAX	 4
#define VERIFY_SAMPLES	 256			 /* entries read back from disk after each run */
#define STUCK_NS	 (30ull * 1000000000ull) /* no durability progress: give up */
#define TARGET_QD1	 0.9
#define TARGET_GROUP_4K	 0.8
#define TARGET_SMALL_EPS 1000000.0

_Static_assert((ISSUE_RING & (ISSUE_RING - 1)) == 0, "ISSUE_RING is a power of two");

/* ---- options ------------------------------------------------------------------------ */

struct opts {
	const char *dir;
	double seconds;
	uint32_t modes; /* bit i: mode_defs[i] */
	uint32_t tests; /* bit i: test_names[i] */
	const char *fio;
	bool no_fio;
	bool json;
	uint32_t batch_4k;		  /* entries per iteration, group-4k */
	uint32_t batch_small;		  /* entries per iteration, group-64b */
	uint64_t window_bytes;		  /* group tests: appended but not yet durable, at most */
	bool no_prewrite;		  /* segments are not pre-written with zeros */
	uint32_t block_bytes[ALIGNS_MAX]; /* batch alignments to run, in turn (0: default) */
	uint32_t n_block_bytes;
	uint32_t rounds;		/* passes over the alignments */
	uint64_t segment_bytes;		/* of the logs and of fio's fresh files */
	uint32_t recycle[RECYCLES_MAX]; /* group-4k-purge: recycle_max values, in turn */
	uint32_t n_recycle;
};

/* The batch alignment of the runs now (lcr_log_opts.block_bytes). */
static uint32_t cur_block_bytes;
static uint32_t cur_round; /* 0 .. --rounds - 1 */

enum {
	OPT_DIR = 1,
	OPT_SECONDS,
	OPT_MODE,
	OPT_TEST,
	OPT_FIO,
	OPT_NO_FIO,
	OPT_JSON,
	OPT_BATCH,
	OPT_WINDOW,
	OPT_NO_PREWRITE,
	OPT_BLOCK_BYTES,
	OPT_ROUNDS,
	OPT_SEGMENT_MIB,
	OPT_RECYCLE_MAX,
	OPT_HELP
};

static const char *const test_names[] = { "qd1", "group-4k", "group-64b", "qd1-64b",
					  "group-4k-purge" };

#define N_TESTS	    5
#define TESTS_ALL   0xfu /* "all" and the default: group-4k-purge only when named */
#define TEST_PURGE  (1u << 4)
#define PURGE_EVERY 4 /* purges per segment's worth of entries */

/* One table drives the parser and --help. */
static const struct opt_def {
	const char *name;
	int has_arg;
	int id;
	const char *arg;
	const char *help;
} opt_defs[] = {
	{ "dir", 1, OPT_DIR, "DIR",
	  "filesystem to measure (required); runs use fresh subdirectories" },
	{ "seconds", 1, OPT_SECONDS, "S",
	  "measured seconds per run, after 1 s of warm-up (default 3)" },
	{ "mode", 1, OPT_MODE, "M",
	  "direct-dsync|direct-fdatasync|buffered-fdatasync|all (default all)" },
	{ "test", 1, OPT_TEST, "T[,T..]",
	  "qd1|group-4k|group-64b|qd1-64b|all (default all: these four), group-4k-purge" },
	{ "fio", 1, OPT_FIO, "PATH", "the fio binary (default: fio in PATH)" },
	{ "no-fio", 0, OPT_NO_FIO, NULL, "measure lcraft only (no floors, no ratios)" },
	{ "json", 0, OPT_JSON, NULL, "also print one JSON line per measurement" },
	{ "batch", 1, OPT_BATCH, "K4K[,K64]",
	  "entries per loop iteration in group-4k[,group-64b] (default 128,256)" },
	{ "window", 1, OPT_WINDOW, "MIB",
	  "group tests: record bytes appended but not yet durable, at most (default 4)" },
	{ "no-prewrite", 0, OPT_NO_PREWRITE, NULL,
	  "do not pre-write new segments with zeros (fallocate only)" },
	{ "block-bytes", 1, OPT_BLOCK_BYTES, "B[,B..]",
	  "batch alignments to run in turn: 0 (the log's default), 512..4096" },
	{ "rounds", 1, OPT_ROUNDS, "N",
	  "passes over the tests and batch alignments; targets judge the median (default 3)" },
	{ "segment-mib", 1, OPT_SEGMENT_MIB, "MIB",
	  "segment size of the logs and fio's fresh files (default: the log's, 64)" },
	{ "recycle-max", 1, OPT_RECYCLE_MAX, "N[,N..]",
	  "group-4k-purge: recycle_max values to run in turn (default: the log's, then 0)" },
	{ "help", 0, OPT_HELP, NULL, "this text" },
};

#define N_OPTS (sizeof(opt_defs) / sizeof(opt_defs[0]))

/* The io modes and the fio configuration that pays the same flush. */
static const struct mode_def {
	const char *name;
	uint32_t io_mode;
	const char *fio_name;
	int fio_direct;
	bool fio_dsync;
} mode_defs[] = {
	{ "direct-dsync", LCR_IO_DIRECT_DSYNC, "direct=1 sync=dsync", 1, true },
	{ "direct-fdatasync", LCR_IO_DIRECT_FDATASYNC, "direct=1 fdatasync=1", 1, false },
	{ "buffered-fdatasync", LCR_IO_BUFFERED_FDATASYNC, "direct=0 fdatasync=1", 0, false },
};

#define N_MODES 3

static void usage(FILE *f)
{
	fprintf(f, "usage: lcraft-storage-bench --dir DIR [options]\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		char left[40];
		snprintf(left, sizeof(left), "--%s%s%s", opt_defs[i].name,
			 opt_defs[i].arg ? " " : "", opt_defs[i].arg ? opt_defs[i].arg : "");
		fprintf(f, "  %-22s %s\n", left, opt_defs[i].help);
	}
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...);

static uint32_t parse_u32(const char *s, const char *what)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (end == s || (*end && *end != ',') || v == 0 || v > BATCH_MAX)
		die("--%s: '%s' is not a number in 1..%u", what, s, BATCH_MAX);
	return (uint32_t)v;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	struct option lo[N_OPTS + 1];

	memset(lo, 0, sizeof(lo));
	for (size_t i = 0; i < N_OPTS; i++) {
		lo[i].name = opt_defs[i].name;
		lo[i].has_arg = opt_defs[i].has_arg ? required_argument : no_argument;
		lo[i].val = opt_defs[i].id;
	}
	memset(o, 0, sizeof(*o));
	o->seconds = 3;
	o->modes = (1u << N_MODES) - 1;
	o->tests = TESTS_ALL;
	o->batch_4k = 128;
	o->batch_small = 256;
	o->window_bytes = 4ull << 20;
	o->n_block_bytes = 1;
	o->rounds = 3;
	struct lcr_log_opts defaults;
	lcr_log_opts_default(&defaults, ".");
	o->segment_bytes = defaults.segment_bytes;
	o->recycle[0] = defaults.recycle_max;
	o->recycle[1] = 0;
	o->n_recycle = 2;
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		char *end;
		switch (c) {
		case OPT_DIR:
			o->dir = optarg;
			break;
		case OPT_SECONDS:
			o->seconds = strtod(optarg, &end);
			if (end == optarg || *end || o->seconds < 0.1 || o->seconds > 3600)
				die("--seconds: '%s' is not a number in 0.1..3600", optarg);
			break;
		case OPT_MODE:
			if (strcmp(optarg, "all") == 0) {
				o->modes = (1u << N_MODES) - 1;
				break;
			}
			o->modes = 0;
			for (uint32_t i = 0; i < N_MODES; i++)
				if (strcmp(optarg, mode_defs[i].name) == 0)
					o->modes = 1u << i;
			if (!o->modes)
				die("--mode: unknown mode '%s'", optarg);
			break;
		case OPT_TEST:
			o->tests = 0;
			for (char *p = optarg;; p = end + 1) {
				size_t n = strcspn(p, ",");
				uint32_t bit = n == 3 && strncmp(p, "all", 3) == 0 ? TESTS_ALL : 0;
				for (uint32_t i = 0; i < N_TESTS; i++)
					if (strlen(test_names[i]) == n &&
					    strncmp(p, test_names[i], n) == 0)
						bit = 1u << i;
				if (!bit)
					die("--test: unknown test '%.*s'", (int)n, p);
				o->tests |= bit;
				end = p + n;
				if (!*end)
					break;
			}
			break;
		case OPT_FIO:
			o->fio = optarg;
			break;
		case OPT_NO_FIO:
			o->no_fio = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_BATCH:
			o->batch_4k = parse_u32(optarg, "batch");
			if (strchr(optarg, ','))
				o->batch_small = parse_u32(strchr(optarg, ',') + 1, "batch");
			break;
		case OPT_WINDOW: {
			unsigned long mib = strtoul(optarg, &end, 10);
			if (end == optarg || *end || mib < 1 || mib > 1024)
				die("--window: '%s' is not a number of MiB in 1..1024", optarg);
			o->window_bytes = (uint64_t)mib << 20;
			break;
		}
		case OPT_NO_PREWRITE:
			o->no_prewrite = true;
			break;
		case OPT_BLOCK_BYTES: {
			o->n_block_bytes = 0;
			for (char *p = optarg;; p = end + 1) {
				unsigned long v = strtoul(p, &end, 10);
				if (end == p || (*end && *end != ',') ||
				    o->n_block_bytes == ALIGNS_MAX ||
				    (v != 0 && (v < 512 || v > 4096 || (v & (v - 1)))))
					die("--block-bytes: '%s' is not a list of up to %u of 0, "
					    "512, "
					    "1024, 2048, 4096",
					    optarg, ALIGNS_MAX);
				for (uint32_t i = 0; i < o->n_block_bytes; i++)
					if (o->block_bytes[i] == v)
						die("--block-bytes: %lu twice in '%s': each "
						    "alignment once (--rounds repeats them)",
						    v, optarg);
				o->block_bytes[o->n_block_bytes++] = (uint32_t)v;
				if (!*end)
					break;
			}
			break;
		}
		case OPT_ROUNDS:
			o->rounds = (uint32_t)strtoul(optarg, &end, 10);
			if (end == optarg || *end || o->rounds < 1 || o->rounds > 16)
				die("--rounds: '%s' is not a number in 1..16", optarg);
			break;
		case OPT_SEGMENT_MIB: {
			unsigned long mib = strtoul(optarg, &end, 10);
			if (end == optarg || *end || mib < 4 || mib > 1024)
				die("--segment-mib: '%s' is not a number of MiB in 4..1024",
				    optarg);
			o->segment_bytes = (uint64_t)mib << 20;
			break;
		}
		case OPT_RECYCLE_MAX:
			o->n_recycle = 0;
			for (char *p = optarg;; p = end + 1) {
				unsigned long v = strtoul(p, &end, 10);
				if (end == p || (*end && *end != ',') ||
				    o->n_recycle == RECYCLES_MAX || v > LCR_LOG_RECYCLE_MAX)
					die("--recycle-max: '%s' is not a list of up to %u numbers "
					    "in "
					    "0..%u",
					    optarg, RECYCLES_MAX, LCR_LOG_RECYCLE_MAX);
				o->recycle[o->n_recycle++] = (uint32_t)v;
				if (!*end)
					break;
			}
			break;
		case OPT_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
	if (!o->dir) {
		usage(stderr);
		die("--dir is required");
	}
	if (o->fio && o->no_fio)
		die("--fio and --no-fio exclude each other");
	/* Results each pass makes at most (qd1: two fio-only floors besides). */
	uint32_t modes = (uint32_t)__builtin_popcount(o->modes), per = 0;
	for (uint32_t i = 0; i < N_TESTS; i++)
		if (o->tests & (1u << i))
			per += i == 0			 ? modes + 2
			       : (1u << i) == TEST_PURGE ? modes * o->n_recycle
							 : modes;
	if (per * o->n_block_bytes * o->rounds > RESULTS_MAX)
		die("%u runs asked for, at most %u: fewer --rounds, --block-bytes, --mode or "
		    "--test",
		    per * o->n_block_bytes * o->rounds, RESULTS_MAX);
}

/* ---- cleanup and errors ------------------------------------------------------------- */

/* Directories this process made and must remove, even when it stops on an error. */
static char cleanup_dirs[3][PATH_MAX];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void dir_remove(char *dir)
{
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	dir[0] = 0;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "lcraft-storage-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	for (int i = 0; i < 3; i++)
		dir_remove(cleanup_dirs[i]);
	exit(1);
}

static void dir_fresh(char *out, const char *base, const char *tag)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/lcraft-bench-%s-XXXXXX", base, tag);
	if (!mkdtemp(path))
		die("%s: cannot make a directory: %s", base, strerror(errno));
	snprintf(out, PATH_MAX, "%s", path);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- latency histogram -------------------------------------------------------------- */

/* Latencies: base/hist.h (log-linear, within 0.8 %, no allocation). */
static double hist_pct_us(const struct lcr_hist *h, double p)
{
	return (double)lcr_hist_pct(h, p) / 1e3;
}

/* ---- results ------------------------------------------------------------------------ */

/* Counters of /sys/block/<dev>/stat (Documentation/block/stat.rst). */
struct dev_stat {
	uint64_t writes;	/* requests completed */
	uint64_t write_sectors; /* of 512 bytes */
	uint64_t write_ticks;	/* ms */
	uint64_t discards;	/* requests completed */
	uint64_t discard_sectors;
	uint64_t flushes; /* requests completed */
};

/*
 * The counters of the block device that holds `dir` (a partition's own), or
 * false where sysfs does not say (no device, an old kernel without the
 * discard and flush fields).
 */
static bool dev_stat_read(const char *dir, struct dev_stat *d)
{
	struct stat sb;
	char path[96];
	unsigned long long v[17];

	if (stat(dir, &sb) < 0)
		return false;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/stat", major(sb.st_dev),
		 minor(sb.st_dev));
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	int n = 0;
	while (n < 17 && fscanf(f, "%llu", &v[n]) == 1)
		n++;
	fclose(f);
	if (n < 17)
		return false;
	d->writes = v[4];
	d->write_sectors = v[6];
	d->write_ticks = v[7];
	d->discards = v[11];
	d->discard_sectors = v[13];
	d->flushes = v[15];
	return true;
}

static void dev_stat_sub(struct dev_stat *d, const struct dev_stat *before)
{
	d->writes -= before->writes;
	d->write_sectors -= before->write_sectors;
	d->write_ticks -= before->write_ticks;
	d->discards -= before->discards;
	d->discard_sectors -= before->discard_sectors;
	d->flushes -= before->flushes;
}

struct lat_us {
	double p50, p90, p99, p999, max, min, mean;
};

struct result {
	const char *test;
	const char *mode;     /* an io mode, or "fio" for a floor measured alone */
	uint32_t block_bytes; /* lcr_log_opts.block_bytes of the run (0: the default) */
	uint32_t entry_bytes;
	uint64_t entries;
	uint64_t bytes;		      /* payload */
	uint64_t disk_bytes;	      /* written by the batches, headers and padding included */
	uint64_t syncs;		      /* batch writes made durable (one flush each) */
	uint64_t segments;	      /* segments created */
	uint64_t segments_prewritten; /* ... of them pre-written with zeros */
	uint64_t early_acks; /* commands acknowledged before all their batches were durable */
	uint64_t verified;   /* entries read back from disk after the run */
	uint64_t verify_bad; /* ... that were missing or differed */
	double seconds;
	double ops_per_s;
	double mb_per_s;      /* payload, 10^6 bytes */
	double disk_mb_per_s; /* what the device was asked to write for the batches */
	double syncs_per_s;
	double entries_per_sync;
	double write_busy;    /* share of the time a batch write (+ flush) was in flight */
	double write_mean_us; /* one batch write (+ flush), issue to completion */
	bool is_default;      /* the log's default io mode: the one targets judge */
	bool has_lat;
	struct lat_us lat;
	bool has_fio;
	bool fio_fresh; /* the floor wrote fresh files (group tests), not the hot one */
	const char *fio_config;
	uint32_t fio_bs;
	double fio_ops_per_s;
	double fio_mb_per_s;
	double ratio;
	bool has_fio_hot; /* group tests: the hot file's figure beside the floor */
	double fio_hot_mb_per_s;
	double ratio_hot;
	bool has_target;
	bool met;
	bool has_wlat;
	struct lat_us wlat; /* one batch write (+ flush), issue to completion */
	uint32_t round;
	uint64_t stalls; /* a batch was ready and the next segment was not */
	/* group-4k-purge */
	bool purge;		    /* purged behind itself */
	int32_t recycle_max;	    /* lcr_log_opts.recycle_max of the run; -1: the default */
	bool prewrite;		    /* lcr_log_opts.prewrite of the run */
	uint64_t segments_recycled; /* new segments made of purged files */
	uint64_t segments_purged;   /* segments purged while measuring */
	uint64_t purge_keep;	    /* entries kept below the durable index */
	bool has_dev;
	struct dev_stat dev; /* the device's counters over the measured part (every tenant) */
};

static struct result results[RESULTS_MAX];
static uint32_t n_results;

static struct result *result_new(const char *test, const char *mode)
{
	LCR_ASSERT(n_results < RESULTS_MAX);
	struct result *r = &results[n_results++];
	memset(r, 0, sizeof(*r));
	r->test = test;
	r->mode = mode;
	r->block_bytes = cur_block_bytes;
	r->round = cur_round;
	r->recycle_max = -1;
	return r;
}

/* ---- fio ---------------------------------------------------------------------------- */

struct fio {
	char path[PATH_MAX];
	char version[64];
	char dir[PATH_MAX];
	char file[PATH_MAX + 16];
	bool ready; /* the file is laid out */
};

static char fio_out[FIO_OUT_MAX];

/* Resolve --fio or `fio` in PATH; fail loudly when it is not there. */
static void fio_find(const struct opts *o, struct fio *f)
{
	if (o->fio) {
		if (access(o->fio, X_OK) < 0)
			die("--fio %s: %s", o->fio, strerror(errno));
		snprintf(f->path, sizeof(f->path), "%s", o->fio);
		return;
	}
	const char *path = getenv("PATH");
	char buf[PATH_MAX];
	while (path && *path) {
		size_t n = strcspn(path, ":");
		snprintf(buf, sizeof(buf), "%.*s/fio", (int)n, path);
		if (n > 0 && access(buf, X_OK) == 0) {
			snprintf(f->path, sizeof(f->path), "%s", buf);
			return;
		}
		path += n + (path[n] == ':');
	}
	die("fio not found in PATH: install it (Debian: apt install fio), name it with "
	    "--fio PATH, or pass --no-fio to measure lcraft alone");
}

/* Run fio with `argv`, its JSON into fio_out. Returns the bytes read. */
static size_t fio_exec(const struct fio *f, char **argv)
{
	int p[2];

	fflush(stdout);
	if (pipe(p) < 0)
		die("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execv(f->path, argv);
		fprintf(stderr, "lcraft-storage-bench: exec %s: %s\n", f->path, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	size_t n = 0;
	for (;;) {
		ssize_t k = read(p[0], fio_out + n, FIO_OUT_MAX - 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
		if (n == FIO_OUT_MAX - 1)
			die("fio printed more than %u bytes", FIO_OUT_MAX);
	}
	close(p[0]);
	fio_out[n] = 0;
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("fio (%s) failed with status %d; its messages are above", f->path,
		    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return n;
}

static void fio_version(struct fio *f)
{
	char *argv[] = { f->path, "--version", NULL };
	fio_exec(f, argv);
	snprintf(f->version, sizeof(f->version), "%.*s", (int)strcspn(fio_out, "\n"), fio_out);
}

/* The number after "key" : in s, or false. A tiny reader for fio's own JSON. */
static bool json_num(const char *s, const char *key, double *out)
{
	char pat[64];

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	const char *p = strstr(s, pat);
	if (!p)
		return false;
	p += strlen(pat);
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (*p++ != ':')
		return false;
	char *end;
	*out = strtod(p, &end);
	return end != p;
}

/* Lay out the file fio overwrites, as the log pre-writes its segments. */
static void fio_prepare(const struct opts *o, struct fio *f)
{
	static uint8_t chunk[1 << 20] __attribute__((aligned(4096)));

	dir_fresh(f->dir, o->dir, "fio");
	snprintf(cleanup_dirs[1], PATH_MAX, "%s", f->dir);
	snprintf(f->file, sizeof(f->file), "%s/fio.dat", f->dir);
	int fd = open(f->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		die("%s: %s", f->file, strerror(errno));
	if (fallocate(fd, 0, 0, (off_t)FIO_FILE_BYTES) < 0 && errno != EOPNOTSUPP)
		die("%s: fallocate: %s", f->file, strerror(errno));
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 131 + 7);
	for (uint64_t off = 0; off < FIO_FILE_BYTES; off += sizeof(chunk))
		if (pwrite(fd, chunk, sizeof(chunk), (off_t)off) != (ssize_t)sizeof(chunk))
			die("%s: writing: %s", f->file, strerror(errno));
	if (fsync(fd) < 0)
		die("%s: fsync: %s", f->file, strerror(errno));
	close(fd);
	f->ready = true;
}

/*
 * One fio job: io_uring, iodepth 1, sequential writes of `bs`, each followed
 * by the flush of mode `m`, 1 s of ramp, then --seconds measured; `where`
 * names the files and how they are laid out. Returns ops/s and MB/s.
 */
static void fio_job(const struct opts *o, const struct fio *f, const struct mode_def *m,
		    uint32_t bs, char *const *where, size_t n_where, double *ops, double *mb)
{
	char a_bs[32], a_direct[16], a_runtime[32];
	char *argv[32];
	size_t n = 0;

	LCR_ASSERT(bs > 0 && bs % LCR_BLOCK == 0);
	LCR_ASSERT(n_where <= 16);
	snprintf(a_bs, sizeof(a_bs), "--bs=%u", bs);
	snprintf(a_direct, sizeof(a_direct), "--direct=%d", m->fio_direct);
	snprintf(a_runtime, sizeof(a_runtime), "--runtime=%.3f", o->seconds);
	argv[n++] = (char *)f->path;
	argv[n++] = "--name=lcraft-floor";
	argv[n++] = "--ioengine=io_uring";
	argv[n++] = "--iodepth=1";
	argv[n++] = "--rw=write";
	argv[n++] = a_bs;
	argv[n++] = a_direct;
	argv[n++] = m->fio_dsync ? "--sync=dsync" : "--fdatasync=1";
	for (size_t i = 0; i < n_where; i++)
		argv[n++] = where[i];
	argv[n++] = a_runtime;
	argv[n++] = "--ramp_time=1";
	argv[n++] = "--output-format=json";
	argv[n] = NULL;
	fio_exec(f, argv);
	const char *jobs = strstr(fio_out, "\"jobs\"");
	const char *w = jobs ? strstr(jobs, "\"write\" : {") : NULL;
	double err = 0, bw;
	if (!w || !json_num(jobs, "error", &err) || !json_num(w, "iops", ops) ||
	    !json_num(w, "bw_bytes", &bw))
		die("cannot read fio's JSON output (fio %s): %.200s", f->version, fio_out);
	if (err != 0)
		die("fio reported error %d", (int)err);
	*mb = bw / 1e6;
}

/*
 * The hot floor: fio overwrites one pre-written file (laid out once per
 * bench) again and again. Fills the fio fields of `r`.
 */
static void fio_run(const struct opts *o, struct fio *f, const struct mode_def *m, uint32_t bs,
		    struct result *r)
{
	char a_file[PATH_MAX + 32], a_size[48];

	if (!f->ready)
		fio_prepare(o, f);
	uint64_t size = FIO_FILE_BYTES / bs * bs;
	if (size == 0)
		die("fio block size %u exceeds the file (%llu bytes)", bs,
		    (unsigned long long)FIO_FILE_BYTES);
	snprintf(a_file, sizeof(a_file), "--filename=%s", f->file);
	snprintf(a_size, sizeof(a_size), "--size=%llu", (unsigned long long)size);
	char *where[] = { a_file, a_size, "--overwrite=1", "--time_based" };
	fprintf(stderr, "  fio    %-10s %-20s bs=%u, one pre-written file\n", r->test, m->fio_name,
		bs);
	fio_job(o, f, m, bs, where, 4, &r->fio_ops_per_s, &r->fio_mb_per_s);
	r->has_fio = true;
	r->fio_config = m->fio_name;
	r->fio_bs = bs;
}

/*
 * The floor of the group tests: fio writes fresh files of the log's segment
 * size, one after the other, as the log fills fresh segments: preallocated,
 * and pre-written with zeros only where the log pre-wrote most of the
 * segments of run `r`. Enough files for 1.5 x the log's rate over ramp and
 * measurement (fio stops early if it runs out, after its ramp), at most half
 * the free space. The files are removed afterwards.
 */
static void fio_run_fresh(const struct opts *o, struct fio *f, const struct mode_def *m,
			  uint32_t bs, struct result *r)
{
	struct statvfs sv;
	char dir[PATH_MAX], a_dir[PATH_MAX + 32], a_n[32], a_fsize[48];

	uint64_t seg = o->segment_bytes;
	double want = r->disk_mb_per_s * 1e6 * (o->seconds + 1) * 1.5;
	uint64_t n = (uint64_t)(want / (double)seg) + 2;
	if (statvfs(o->dir, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize / 2 / seg < n)
		n = (uint64_t)sv.f_bavail * sv.f_frsize / 2 / seg;
	if (n < 1)
		die("%s: no room for one fresh %llu-byte file for fio", o->dir,
		    (unsigned long long)seg);
	bool prewritten = r->segments_prewritten * 2 > r->segments;
	dir_fresh(dir, o->dir, "fio-fresh");
	snprintf(cleanup_dirs[2], PATH_MAX, "%s", dir);
	snprintf(a_dir, sizeof(a_dir), "--directory=%s", dir);
	snprintf(a_n, sizeof(a_n), "--nrfiles=%llu", (unsigned long long)n);
	snprintf(a_fsize, sizeof(a_fsize), "--filesize=%llu", (unsigned long long)seg);
	char *where[] = { a_dir,
			  a_n,
			  a_fsize,
			  "--file_service_type=sequential",
			  "--fallocate=native",
			  prewritten ? "--overwrite=1" : "--overwrite=0" };
	fprintf(stderr, "  fio    %-10s %-20s bs=%u, %llu fresh files%s\n", r->test, m->fio_name,
		bs, (unsigned long long)n, prewritten ? ", pre-written" : "");
	fio_job(o, f, m, bs, where, 6, &r->fio_ops_per_s, &r->fio_mb_per_s);
	dir_remove(cleanup_dirs[2]);
	r->has_fio = true;
	r->fio_fresh = true;
	r->fio_config = m->fio_name;
	r->fio_bs = bs;
}

/* ---- driving the log ------------------------------------------------------------------ */

struct bench {
	struct lcr_ring ring;
	struct lcr_log *log;
	char dir[PATH_MAX];
	uint64_t seq;	      /* io seqs handed out */
	uint64_t durable_seq; /* newest io seq reported durable */
	uint64_t durable_at_ns;
	uint64_t window_bytes; /* see step_group */
	int err;
	uint64_t early_acks;	  /* the same seq reported twice: a split command acked early */
	bool recording;		  /* latencies go into hist */
	uint64_t record_from_seq; /* ... for seqs from this one on */
	uint64_t purge_keep; /* group-4k-purge: entries kept below the durable index; 0: none */
	uint64_t purged;     /* ... the purge point so far */
	uint64_t issue_ns[ISSUE_RING];	 /* when seq s was appended, at [s % ISSUE_RING] */
	uint64_t issue_last[ISSUE_RING]; /* the last index once seq s was appended */
	struct lcr_hist hist;
	struct lcr_entry e[BATCH_MAX];
};

static struct bench bench;
static uint8_t payloads[PAYLOAD_SLOTS][ENTRY_4K];

static void bench_log_done(void *ctx, const struct lcr_io_id *io, int err)
{
	struct bench *b = ctx;

	if (err) {
		if (!b->err)
			b->err = err;
		return;
	}
	LCR_ASSERT(io->seq <= b->seq);
	if (io->seq == b->durable_seq) {
		/* The log acknowledged this command before, when only the first of
		 * the batches it was split into was durable: counted and shown. */
		b->early_acks++;
		return;
	}
	if (io->seq < b->durable_seq)
		die("the log reported io seq %llu durable after %llu", (unsigned long long)io->seq,
		    (unsigned long long)b->durable_seq);
	uint64_t now = now_ns();
	if (b->recording)
		for (uint64_t s = b->durable_seq + 1; s <= io->seq; s++)
			if (s >= b->record_from_seq)
				lcr_hist_add(&b->hist, now - b->issue_ns[s % ISSUE_RING]);
	b->durable_seq = io->seq;
	b->durable_at_ns = now;
}

static uint64_t durable_entries(const struct bench *b)
{
	return b->durable_seq ? b->issue_last[b->durable_seq % ISSUE_RING] : 0;
}

static void bench_open(struct bench *b, const struct opts *o, const struct mode_def *m,
		       const struct result *r)
{
	struct lcr_log_opts lo;
	char why[512] = "";

	dir_fresh(b->dir, o->dir, "log");
	snprintf(cleanup_dirs[0], PATH_MAX, "%s", b->dir);
	int rc = lcr_ring_init(&b->ring, RING_DEPTH);
	if (rc < 0)
		die("io_uring: %s", strerror(-rc));
	lcr_log_opts_default(&lo, b->dir);
	lo.io_mode = m->io_mode;
	lo.prewrite = !o->no_prewrite;
	lo.block_bytes = cur_block_bytes;
	lo.segment_bytes = o->segment_bytes;
	if (r->recycle_max >= 0)
		lo.recycle_max = (uint32_t)r->recycle_max;
	lo.done = bench_log_done;
	lo.ctx = b;
	rc = lcr_log_open(&b->log, &b->ring, &lo, why, sizeof(why));
	if (rc < 0)
		die("opening the log in %s: %s (%s)", b->dir, strerror(-rc), why);
	b->seq = b->durable_seq = 0;
	b->durable_at_ns = now_ns();
	b->window_bytes = o->window_bytes;
	b->err = 0;
	b->early_acks = 0;
	b->recording = false;
	b->purge_keep = 0;
	b->purged = 0;
	memset(&b->hist, 0, sizeof(b->hist));
}

static void bench_close(struct bench *b)
{
	lcr_log_close(b->log);
	b->log = NULL;
	lcr_ring_exit(&b->ring);
	dir_remove(cleanup_dirs[0]);
}

static void check_progress(struct bench *b)
{
	if (b->err)
		die("the log failed: %s", strerror(-b->err));
	if (b->durable_seq < b->seq && now_ns() - b->durable_at_ns > STUCK_NS)
		die("no durability progress for %llu s (seq %llu, durable %llu)",
		    (unsigned long long)(STUCK_NS / 1000000000ull), (unsigned long long)b->seq,
		    (unsigned long long)b->durable_seq);
}

/* Flush and wait until every append so far is durable. */
static void bench_drain(struct bench *b)
{
	lcr_log_flush(b->log);
	while (b->durable_seq < b->seq) {
		lcr_ring_wait(&b->ring, 100 * 1000 * 1000);
		lcr_log_flush(b->log);
		check_progress(b);
	}
}

/* Entries [first, first + n) pointing at the payload slots. */
static void entries_fill(struct bench *b, uint64_t first, uint32_t n, uint32_t len)
{
	for (uint32_t i = 0; i < n; i++) {
		b->e[i].id.lid.term = 1;
		b->e[i].id.lid.node = 1;
		b->e[i].id.index = first + i;
		b->e[i].type = LCR_ENTRY_NORMAL;
		b->e[i].len = len;
		b->e[i].data = payloads[(first + i) % PAYLOAD_SLOTS];
	}
}

/*
 * Append up to n entries under one new io seq. Returns 0, or -ENOBUFS when
 * the arena is full; `*took` says how many went in (the seq covers them).
 */
static int bench_append(struct bench *b, uint32_t n, uint32_t len, uint32_t *took)
{
	uint64_t before = lcr_log_last(b->log).index;
	struct lcr_io_id io;

	LCR_ASSERT(b->seq + 1 - b->durable_seq < ISSUE_RING);
	entries_fill(b, before + 1, n, len);
	memset(&io, 0, sizeof(io));
	io.seq = ++b->seq;
	io.last = b->e[n - 1].id;
	b->issue_ns[io.seq % ISSUE_RING] = now_ns();
	int rc = lcr_log_append(b->log, b->e, n, &io);
	uint64_t after = lcr_log_last(b->log).index;
	if (rc < 0 && rc != -ENOBUFS)
		die("append: %s", strerror(-rc));
	if (rc == 0 && after != before + n)
		die("append of %u entries took %llu", n, (unsigned long long)(after - before));
	if (after == before)
		b->seq--; /* nothing carries this seq */
	b->issue_last[io.seq % ISSUE_RING] = after;
	*took = (uint32_t)(after - before);
	return rc;
}

/*
 * Append k entries; when the arena is full, wait for a write to finish and
 * append the rest (under a new seq) without flushing in between: a flush of
 * what fits would seal a small batch, and every batch costs a sync.
 */
static void append_all(struct bench *b, uint32_t k, uint32_t len)
{
	for (uint32_t done = 0; done < k;) {
		uint32_t took;
		int rc = bench_append(b, k - done, len, &took);
		done += took;
		if (rc == -ENOBUFS) {
			lcr_ring_wait(&b->ring, 100 * 1000 * 1000);
			check_progress(b);
		}
	}
}

/* qd1: one entry, flush, wait until it is durable. */
static void step_qd1(struct bench *b, uint32_t k, uint32_t len)
{
	(void)k;
	append_all(b, 1, len);
	lcr_log_flush(b->log);
	while (b->durable_seq < b->seq) {
		lcr_ring_wait(&b->ring, 100 * 1000 * 1000);
		check_progress(b);
	}
}

/*
 * Group commit: k entries and a flush per iteration, never waiting for the
 * write in flight, but keeping at most the window (--window) of record bytes
 * appended and not yet durable, so that latency is the log's and not the
 * depth of an unbounded queue.
 */
static void step_group(struct bench *b, uint32_t k, uint32_t len)
{
	uint64_t rec = lcr_rec_size(len);

	while ((lcr_log_last(b->log).index - durable_entries(b) + k) * rec > b->window_bytes &&
	       durable_entries(b) < lcr_log_last(b->log).index) {
		lcr_log_flush(b->log);
		lcr_ring_wait(&b->ring, 100 * 1000 * 1000);
		check_progress(b);
	}
	append_all(b, k, len);
	lcr_log_flush(b->log);
	lcr_ring_submit(&b->ring);
	lcr_ring_reap(&b->ring);
	check_progress(b);
}

/*
 * group-4k-purge: group commit, and every purge_keep / PURGE_EVERY entries
 * made durable, purge up to purge_keep entries (one segment's worth of
 * records) below the durable index, as a log whose snapshots follow its
 * commits closely does. The log removes (or keeps for reuse) the segments
 * wholly below that once the purge point is durable.
 */
static void step_group_purge(struct bench *b, uint32_t k, uint32_t len)
{
	LCR_ASSERT(b->purge_keep > 0);
	step_group(b, k, len);
	uint64_t durable = durable_entries(b);
	if (durable < b->purged + b->purge_keep + b->purge_keep / PURGE_EVERY)
		return;
	uint64_t upto = durable - b->purge_keep;
	int rc = lcr_log_purge(b->log, upto);
	if (rc < 0)
		die("purge up to %llu: %s", (unsigned long long)upto, strerror(-rc));
	b->purged = upto;
}

/*
 * Read a sample of the entries back from disk, checksums verified by the
 * log: a log that acknowledges what it did not write must not get a number.
 */
static void bench_verify(struct bench *b, uint32_t len, struct result *r)
{
	static uint8_t got[ENTRY_4K];
	uint64_t first = lcr_log_first_index(b->log); /* above what was purged */
	uint64_t last = lcr_log_last(b->log).index;
	uint64_t step = (last - first + 1) / VERIFY_SAMPLES + 1;

	for (uint64_t i = first; i <= last; i = i + step > last && i < last ? last : i + step) {
		struct lcr_entry e;
		int n = lcr_log_read(b->log, i, &e, got, sizeof(got));
		r->verified++;
		if (n != (int)len || e.id.index != i ||
		    memcmp(got, payloads[i % PAYLOAD_SLOTS], len))
			r->verify_bad++;
	}
	if (r->verify_bad)
		fprintf(stderr,
			"lcraft-storage-bench: %s/%s: %llu of %llu entries read back from disk are "
			"missing or wrong: the log is corrupt, its numbers do not count\n",
			r->test, r->mode, (unsigned long long)r->verify_bad,
			(unsigned long long)r->verified);
}

typedef void (*step_fn)(struct bench *b, uint32_t k, uint32_t len);

static void bench_measure(const struct opts *o, const struct mode_def *m, step_fn step, uint32_t k,
			  uint32_t len, struct result *r)
{
	struct bench *b = &bench;
	struct lcr_log_stats st0, st1;
	static struct lcr_hist wl0, wd; /* the write latencies before, and while measuring */
	char rec[32] = "";

	if (r->recycle_max >= 0)
		snprintf(rec, sizeof(rec), " recycle_max=%d", r->recycle_max);
	fprintf(stderr, "  lcraft %-10s %-20s k=%u len=%u block_bytes=%u%s\n", r->test, m->name, k,
		len, cur_block_bytes, rec);
	bench_open(b, o, m, r);
	if (r->purge)
		b->purge_keep = o->segment_bytes / lcr_rec_size(len);
	uint64_t t = now_ns(), end = t + WARMUP_NS;
	while (t < end) {
		step(b, k, len);
		t = now_ns();
	}
	lcr_log_stats(b->log, &st0);
	const struct lcr_hist *wl = lcr_log_write_latency(b->log);
	uint64_t wsum0 = wl->sum_ns, wn0 = wl->count;
	memcpy(&wl0, wl, sizeof(wl0));
	struct dev_stat dev0;
	bool has_dev0 = dev_stat_read(o->dir, &dev0);
	uint64_t entries0 = durable_entries(b);
	uint64_t early0 = b->early_acks;
	b->record_from_seq = b->seq + 1;
	b->recording = true;
	uint64_t t0 = now_ns();
	end = t0 + (uint64_t)(o->seconds * 1e9);
	for (t = t0; t < end; t = now_ns())
		step(b, k, len);
	b->recording = false;
	uint64_t t1 = now_ns();
	r->has_dev = has_dev0 && dev_stat_read(o->dir, &r->dev);
	if (r->has_dev)
		dev_stat_sub(&r->dev, &dev0);
	uint64_t entries1 = durable_entries(b);
	uint64_t early1 = b->early_acks;
	lcr_log_stats(b->log, &st1);
	uint64_t wsum = wl->sum_ns - wsum0, wn = wl->count - wn0;
	for (uint32_t i = 0; i < LCR_HIST_BUCKETS; i++)
		wd.b[i] = wl->b[i] - wl0.b[i];
	wd.count = wn;
	wd.sum_ns = wsum;
	wd.min_ns = 0; /* of the measured part: not kept; the percentiles need no clamp */
	wd.max_ns = wl->max_ns;
	bench_drain(b);
	bench_verify(b, len, r);
	bench_close(b);

	r->entry_bytes = len;
	r->seconds = (double)(t1 - t0) / 1e9;
	r->entries = entries1 - entries0;
	r->bytes = r->entries * len;
	r->disk_bytes = st1.bytes_written - st0.bytes_written;
	r->syncs = st1.batches_written - st0.batches_written;
	r->segments = st1.segments_created - st0.segments_created;
	r->segments_prewritten = st1.segments_prewritten - st0.segments_prewritten;
	r->segments_recycled = st1.segments_recycled - st0.segments_recycled;
	r->segments_purged = st1.segments_purged - st0.segments_purged;
	r->stalls = st1.stalls - st0.stalls;
	r->purge_keep = b->purge_keep;
	r->prewrite = !o->no_prewrite;
	r->write_busy = (double)wsum / (double)(t1 - t0);
	r->write_mean_us = wn ? (double)wsum / (double)wn / 1e3 : 0;
	r->early_acks = early1 - early0;
	r->ops_per_s = (double)r->entries / r->seconds;
	r->mb_per_s = (double)r->bytes / r->seconds / 1e6;
	r->disk_mb_per_s = (double)r->disk_bytes / r->seconds / 1e6;
	r->syncs_per_s = (double)r->syncs / r->seconds;
	r->entries_per_sync = r->syncs ? (double)r->entries / (double)r->syncs : 0;
	const struct lcr_hist *h = &b->hist;
	if (h->count) {
		r->has_lat = true;
		r->lat.p50 = hist_pct_us(h, 0.50);
		r->lat.p90 = hist_pct_us(h, 0.90);
		r->lat.p99 = hist_pct_us(h, 0.99);
		r->lat.p999 = hist_pct_us(h, 0.999);
		r->lat.max = (double)h->max_ns / 1e3;
		r->lat.min = (double)h->min_ns / 1e3;
		r->lat.mean = (double)h->sum_ns / (double)h->count / 1e3;
	}
	if (wd.count) {
		r->has_wlat = true;
		r->wlat.p50 = hist_pct_us(&wd, 0.50);
		r->wlat.p90 = hist_pct_us(&wd, 0.90);
		r->wlat.p99 = hist_pct_us(&wd, 0.99);
		r->wlat.p999 = hist_pct_us(&wd, 0.999);
		r->wlat.max = (double)wd.max_ns / 1e3; /* since open: an upper bound */
		r->wlat.mean = (double)wd.sum_ns / (double)wd.count / 1e3;
	}
}

/* ---- the tests ------------------------------------------------------------------------ */

/* Whether mode m is the log's default io mode, the one targets judge. */
static bool mode_default(const struct mode_def *m)
{
	struct lcr_log_opts lo;

	lcr_log_opts_default(&lo, ".");
	return m->io_mode == lo.io_mode;
}

static void test_qd1(const struct opts *o, struct fio *f)
{
	bool fio_done[N_MODES] = { false };

	for (uint32_t i = 0; i < N_MODES; i++) {
		if (!(o->modes & (1u << i)))
			continue;
		struct result *r = result_new("qd1", mode_defs[i].name);
		bench_measure(o, &mode_defs[i], step_qd1, 1, ENTRY_4K, r);
		r->is_default = mode_default(&mode_defs[i]);
		if (!o->no_fio) {
			fio_run(o, f, &mode_defs[i], ENTRY_4K, r);
			fio_done[i] = true;
			r->ratio = r->ops_per_s / r->fio_ops_per_s;
			r->has_target = r->is_default;
			r->met = r->ratio >= TARGET_QD1;
		}
	}
	/* The floor (fdatasync) and the dsync comparison are always reported. */
	for (uint32_t i = 0; i < 2 && !o->no_fio; i++) {
		if (fio_done[i])
			continue;
		struct result *r = result_new("qd1", "fio");
		fio_run(o, f, &mode_defs[i], ENTRY_4K, r);
	}
}

/* qd1 with 64-byte entries: one client's commit, no floor. */
static void test_qd1_small(const struct opts *o)
{
	for (uint32_t i = 0; i < N_MODES; i++) {
		if (!(o->modes & (1u << i)))
			continue;
		struct result *r = result_new("qd1-64b", mode_defs[i].name);
		bench_measure(o, &mode_defs[i], step_qd1, 1, ENTRY_SMALL, r);
		r->is_default = mode_default(&mode_defs[i]);
	}
}

/* fio's block: the bytes lcraft wrote per sync, in whole blocks. */
static uint32_t bs_per_sync(const struct result *r)
{
	uint64_t bs = r->syncs ? r->disk_bytes / r->syncs : LCR_BLOCK;
	bs = lcr_align_up(bs, LCR_BLOCK);
	return (uint32_t)(bs ? bs : LCR_BLOCK);
}

static void test_group(const struct opts *o, struct fio *f, const char *test, uint32_t k,
		       uint32_t len)
{
	for (uint32_t i = 0; i < N_MODES; i++) {
		if (!(o->modes & (1u << i)))
			continue;
		struct result *r = result_new(test, mode_defs[i].name);
		bench_measure(o, &mode_defs[i], step_group, k, len, r);
		r->is_default = mode_default(&mode_defs[i]);
		if (!o->no_fio && r->syncs > 0) {
			/* The hot file first: its figure is kept beside the floor's. */
			fio_run(o, f, &mode_defs[i], bs_per_sync(r), r);
			r->has_fio_hot = true;
			r->fio_hot_mb_per_s = r->fio_mb_per_s;
			r->ratio_hot = r->mb_per_s / r->fio_hot_mb_per_s;
			fio_run_fresh(o, f, &mode_defs[i], bs_per_sync(r), r);
			r->ratio = r->mb_per_s / r->fio_mb_per_s;
		}
		if (len == ENTRY_SMALL) {
			r->has_target = r->is_default;
			r->met = r->ops_per_s >= TARGET_SMALL_EPS;
		} else if (r->has_fio) {
			r->has_target = r->is_default;
			r->met = r->ratio >= TARGET_GROUP_4K;
		}
	}
}

/*
 * group-4k-purge: the group-4k workload purging behind itself, with purged
 * segments recycled (the log's default recycle_max) and deleted (0), or the
 * values of --recycle-max, in turn; the order is reversed every other round
 * so that drift favours none.
 */
static void test_group_purge(const struct opts *o, uint32_t k)
{
	for (uint32_t i = 0; i < N_MODES; i++) {
		if (!(o->modes & (1u << i)))
			continue;
		for (uint32_t j = 0; j < o->n_recycle; j++) {
			uint32_t at = cur_round % 2 == 0 ? j : o->n_recycle - 1 - j;
			struct result *r = result_new(test_names[4], mode_defs[i].name);
			r->purge = true;
			r->recycle_max = (int32_t)o->recycle[at];
			bench_measure(o, &mode_defs[i], step_group_purge, k, ENTRY_4K, r);
			r->is_default = mode_default(&mode_defs[i]);
		}
	}
}

/* ---- output ------------------------------------------------------------------------- */

static const char *target_text(const struct result *r, char *buf, size_t n)
{
	if (r->verify_bad) {
		snprintf(buf, n, "CORRUPT");
		return buf;
	}
	if (!r->has_target)
		return "-";
	if (strcmp(r->test, "qd1") == 0)
		snprintf(buf, n, "%s>=%.1f", r->met ? "ok " : "LOW", TARGET_QD1);
	else if (r->entry_bytes == ENTRY_SMALL)
		snprintf(buf, n, "%s>=1M/s", r->met ? "ok " : "LOW");
	else
		snprintf(buf, n, "%s>=%.1f", r->met ? "ok " : "LOW", TARGET_GROUP_4K);
	return buf;
}

static const char *default_mode_name(void)
{
	for (uint32_t i = 0; i < N_MODES; i++)
		if (mode_default(&mode_defs[i]))
			return mode_defs[i].name;
	return "?";
}

static void print_table(const struct opts *o, const struct fio *f)
{
	char tgt[32];

	printf("\nlcraft storage bench: %s, %.1f s per run after 1 s warm-up, %s\n", o->dir,
	       o->seconds, o->no_fio ? "no fio" : f->version);
	printf("group tests: %u (4 KiB) / %u (64 B) entries per append+flush, at most %llu MiB "
	       "appended and not yet durable\n",
	       o->batch_4k, o->batch_small, (unsigned long long)(o->window_bytes >> 20));
	printf("MB = 10^6 bytes; MB/s is payload, disk MB/s counts batch headers and padding; "
	       "latency in us from append to durable\n\n");
	printf("%-9s %-18s %11s %8s %8s %8s %8s %8s %8s %8s %8s %9s | %-20s %-5s %7s %9s %8s %6s "
	       "%9s | %8s %6s\n",
	       "test", "mode", "entries/s", "MB/s", "disk", "ent/sync", "KiB/sync", "syncs/s",
	       "p50", "p99", "p999", "max", "fio config", "files", "fio bs", "fio ops/s",
	       "fio MB/s", "ratio", "target", "hot MB/s", "ratio");
	for (uint32_t i = 0; i < n_results; i++) {
		const struct result *r = &results[i];
		if (r->purge)
			continue; /* print_purge */
		if (strcmp(r->mode, "fio") == 0) {
			printf("%-9s %-18s %11s %8s %8s %8s %8s %8s %8s %8s %8s %9s | %-20s %-5s "
			       "%7u %9.0f %8.1f %6s %9s |\n",
			       r->test, "(fio only)", "", "", "", "", "", "", "", "", "", "",
			       r->fio_config, "hot", r->fio_bs, r->fio_ops_per_s, r->fio_mb_per_s,
			       "-", "-");
			continue;
		}
		printf("%-9s %-18s %11.0f %8.1f %8.1f %8.1f %8.1f %8.0f %8.1f %8.1f %8.1f %9.1f",
		       r->test, r->mode, r->ops_per_s, r->mb_per_s, r->disk_mb_per_s,
		       r->entries_per_sync,
		       r->syncs ? (double)r->disk_bytes / (double)r->syncs / 1024 : 0,
		       r->syncs_per_s, r->lat.p50, r->lat.p99, r->lat.p999, r->lat.max);
		if (r->has_fio)
			printf(" | %-20s %-5s %7u %9.0f %8.1f %6.2f %9s |", r->fio_config,
			       r->fio_fresh ? "fresh" : "hot", r->fio_bs, r->fio_ops_per_s,
			       r->fio_mb_per_s, r->ratio, target_text(r, tgt, sizeof(tgt)));
		else
			printf(" | %-20s %-5s %7s %9s %8s %6s %9s |", "-", "-", "-", "-", "-", "-",
			       target_text(r, tgt, sizeof(tgt)));
		if (r->has_fio_hot)
			printf(" %8.1f %6.2f\n", r->fio_hot_mb_per_s, r->ratio_hot);
		else
			printf(" %8s %6s\n", "-", "-");
	}
	/* The mode that wins each test. */
	printf("\n");
	for (uint32_t t = 0; t < N_TESTS; t++) {
		const struct result *best = NULL;
		for (uint32_t i = 0; i < n_results; i++) {
			const struct result *r = &results[i];
			if (strcmp(r->test, test_names[t]) || strcmp(r->mode, "fio") == 0 ||
			    r->purge)
				continue;
			if (!best || r->ops_per_s > best->ops_per_s)
				best = r;
		}
		if (best)
			printf("best mode for %-9s: %s (%.0f entries/s, p99 %.1f us)\n",
			       test_names[t], best->mode, best->ops_per_s, best->lat.p99);
	}
	printf("\ntargets judge the log's default io mode, %s (lcr_log_opts_default): the one\n"
	       "a node runs unless configured otherwise. The other modes are measured beside it,\n"
	       "each against fio paying the same flush, with no target ('-').\n",
	       default_mode_name());
	printf("files: the fio floor overwrites one pre-written file ('hot'), or writes fresh\n"
	       "preallocated files of the segment size ('fresh', the group tests: the blocks the\n"
	       "log writes to are new too); 'hot MB/s' and the last ratio compare the group tests\n"
	       "with the hot file.\n\n");
	printf("per run: segments created while measuring (pre-written with zeros); the share of\n"
	       "the time a batch write was in flight and its mean (write + flush); commands\n"
	       "acknowledged before the second batch they were split into was durable; entries\n"
	       "read back from disk afterwards:\n");
	for (uint32_t i = 0; i < n_results; i++) {
		const struct result *r = &results[i];
		if (strcmp(r->mode, "fio") == 0 || r->purge)
			continue;
		printf("  %-9s %-18s block_bytes %u: %.0f disk bytes per entry, segments %llu "
		       "(%llu), "
		       "write busy %.2f, %.0f us, early acks %llu, read back %llu: %s\n",
		       r->test, r->mode, r->block_bytes,
		       r->entries ? (double)r->disk_bytes / (double)r->entries : 0.0,
		       (unsigned long long)r->segments, (unsigned long long)r->segments_prewritten,
		       r->write_busy, r->write_mean_us, (unsigned long long)r->early_acks,
		       (unsigned long long)r->verified, r->verify_bad ? "BAD" : "ok");
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/*
 * The targets, judged on the median over the rounds: a shared disk's speed
 * moves by 2x within minutes, and one lcraft run beside one fio run can land
 * on either side of such a change; each round measures lcraft and then its fio
 * floor back to back, and the median of their ratios is the figure to trust.
 * as_json: the JSON lines only (after the runs' own), else the text.
 */
static void print_targets(const struct opts *o, bool as_json)
{
	bool header = false;

	for (uint32_t a = 0; a < o->n_block_bytes; a++)
		for (uint32_t t = 0; t < 3; t++) { /* qd1, group-4k, group-64b: the targets */
			double v[RESULTS_MAX];
			uint32_t n = 0;
			const char *mode = NULL;
			bool small = t == 2;
			for (uint32_t i = 0; i < n_results; i++) {
				const struct result *r = &results[i];
				if (!r->has_target || r->purge || strcmp(r->test, test_names[t]) ||
				    r->block_bytes != o->block_bytes[a])
					continue;
				v[n++] = small ? r->ops_per_s : r->ratio;
				mode = r->mode;
			}
			if (!n)
				continue;
			qsort(v, n, sizeof(v[0]), cmp_double);
			double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
			double target = small	 ? TARGET_SMALL_EPS
					: t == 0 ? TARGET_QD1
						 : TARGET_GROUP_4K;
			bool met = med >= target;
			if (as_json) {
				printf("{\"summary\":\"target\",\"test\":\"%s\",\"mode\":\"%s\","
				       "\"block_bytes\":%u,\"rounds\":%u,\"figure\":\"%s\","
				       "\"median\":%.4f,\"min\":%.4f,\"max\":%.4f,\"target\":%.1f,"
				       "\"target_met\":%s}\n",
				       test_names[t], mode, o->block_bytes[a], n,
				       small ? "entries_per_s" : "ratio", med, v[0], v[n - 1],
				       target, met ? "true" : "false");
				continue;
			}
			if (!header) {
				printf("\ntargets (%s), the median over the rounds "
				       "[lowest-highest]; "
				       "a ratio's round is lcraft, then its fio floor right "
				       "after:\n",
				       mode);
				header = true;
			}
			if (small)
				printf("  %-9s block_bytes %-4u %5.2f M entries/s [%.2f-%.2f] "
				       "over %u round%s, target >= 1 M/s: %s\n",
				       test_names[t], o->block_bytes[a], med / 1e6, v[0] / 1e6,
				       v[n - 1] / 1e6, n, n == 1 ? "" : "s", met ? "ok" : "LOW");
			else
				printf("  %-9s block_bytes %-4u ratio %5.2f [%.2f-%.2f] over %u "
				       "round%s, target >= %.1f: %s\n",
				       test_names[t], o->block_bytes[a], med, v[0], v[n - 1], n,
				       n == 1 ? "" : "s", target, met ? "ok" : "LOW");
		}
}

/* The MB/s of all rounds of group-4k-purge in one mode with one recycle_max. */
static double purge_mb_per_s(const char *mode, int32_t recycle, uint32_t *n)
{
	double bytes = 0, seconds = 0;

	*n = 0;
	for (uint32_t i = 0; i < n_results; i++) {
		const struct result *r = &results[i];
		if (!r->purge || r->recycle_max != recycle || strcmp(r->mode, mode))
			continue;
		bytes += (double)r->bytes;
		seconds += r->seconds;
		(*n)++;
	}
	return seconds > 0 ? bytes / seconds / 1e6 : 0;
}

/* The run of group-4k-purge in the round, mode and batch alignment of `a` with `recycle`. */
static const struct result *purge_peer(const struct result *a, int32_t recycle)
{
	for (uint32_t j = 0; j < n_results; j++) {
		const struct result *z = &results[j];
		if (z->purge && z->recycle_max == recycle && z->round == a->round &&
		    z->block_bytes == a->block_bytes && !strcmp(z->mode, a->mode))
			return z;
	}
	return NULL;
}

static void print_purge(const struct opts *o)
{
	bool any = false;

	for (uint32_t i = 0; i < n_results; i++)
		any |= results[i].purge;
	if (!any)
		return;
	printf("\ngroup-4k-purge: group-4k (%u entries of 4 KiB per append+flush, at most %llu "
	       "MiB not yet durable)\npurging behind itself: every 1/%u of a segment's worth of "
	       "entries, up to a segment's worth\nbelow the durable index. Segments %llu MiB. "
	       "recyc: lcr_log_opts.recycle_max (purged segments\nkept for reuse; 0: deleted). "
	       "prewrite: lcr_log_opts.prewrite (on: a new segment is pre-written\nwhile the mean "
	       "write is under 64 KiB). Latency in us: commit = append to durable, write = one\n"
	       "batch write (+ flush). dev: the device's counters over the run, every tenant's "
	       "I/O: "
	       "MB written,\nwrite requests and flushes per second, MB discarded.\n\n",
	       o->batch_4k, (unsigned long long)(o->window_bytes >> 20), PURGE_EVERY,
	       (unsigned long long)(o->segment_bytes >> 20));
	printf("%-18s %5s %5s %8s %9s %7s %6s %6s %6s %6s %6s %6s %6s | %7s %8s %6s %5s %6s %4s | "
	       "%7s %7s %7s %7s\n",
	       "mode", "round", "recyc", "prewrite", "entries/s", "MB/s", "c p50", "c p99",
	       "c p999", "w p50", "w p99", "w p999", "w mean", "created", "recycled", "purged",
	       "prewr", "stalls", "read", "dev MB", "wr/s", "flush/s", "disc MB");
	for (uint32_t i = 0; i < n_results; i++) {
		const struct result *r = &results[i];
		if (!r->purge)
			continue;
		printf("%-18s %5u %5d %8s %9.0f %7.1f %6.0f %6.0f %6.0f %6.0f %6.0f %6.0f %6.0f | "
		       "%7llu %8llu %6llu %5llu %6llu %4s |",
		       r->mode, r->round + 1, r->recycle_max, r->prewrite ? "on" : "off",
		       r->ops_per_s, r->mb_per_s, r->lat.p50, r->lat.p99, r->lat.p999, r->wlat.p50,
		       r->wlat.p99, r->wlat.p999, r->wlat.mean, (unsigned long long)r->segments,
		       (unsigned long long)r->segments_recycled,
		       (unsigned long long)r->segments_purged,
		       (unsigned long long)r->segments_prewritten, (unsigned long long)r->stalls,
		       r->verify_bad ? "BAD" : "ok");
		if (r->has_dev)
			printf(" %7.0f %7.0f %7.0f %7.0f\n",
			       (double)r->dev.write_sectors * 512 / 1e6,
			       (double)r->dev.writes / r->seconds,
			       (double)r->dev.flushes / r->seconds,
			       (double)r->dev.discard_sectors * 512 / 1e6);
		else
			printf(" %7s %7s %7s %7s\n", "-", "-", "-", "-");
	}
	/* Against recycle_max 0: each round's ratio, then all rounds together. */
	printf("\nMB/s against recycle_max 0 (deleted), each round, then all rounds' bytes over "
	       "their seconds:\n");
	for (uint32_t m = 0; m < N_MODES; m++) {
		for (uint32_t v = 0; v < o->n_recycle; v++) {
			int32_t rec = (int32_t)o->recycle[v];
			uint32_t n_on, n_off;
			double mb_on = purge_mb_per_s(mode_defs[m].name, rec, &n_on);
			double mb_off = purge_mb_per_s(mode_defs[m].name, 0, &n_off);
			if (rec == 0 || !n_on || !n_off)
				continue;
			printf("  %-18s recycle_max %d / 0, rounds:", mode_defs[m].name, rec);
			for (uint32_t i = 0; i < n_results; i++) {
				const struct result *a = &results[i];
				const struct result *z = purge_peer(a, 0);
				if (a->purge && a->recycle_max == rec &&
				    !strcmp(a->mode, mode_defs[m].name) && z && z->mb_per_s > 0)
					printf(" %.2f", a->mb_per_s / z->mb_per_s);
			}
			printf("; all: %.1f / %.1f MB/s = %.2f\n", mb_on, mb_off, mb_on / mb_off);
		}
	}
}

static void print_json(const struct result *r)
{
	printf("{\"test\":\"%s\",\"mode\":\"%s\",\"block_bytes\":%u,\"disk_bytes_per_entry\":%.1f,"
	       "\"entry_bytes\":%u,\"entries\":%llu,"
	       "\"bytes\":%llu,\"disk_bytes\":%llu,\"syncs\":%llu,\"segments\":%llu,"
	       "\"early_acks\":%llu,\"verified\":%llu,\"verify_bad\":%llu,\"seconds\":%.6f,"
	       "\"ops_per_s\":%.1f,\"mb_per_s\":%.3f,\"disk_mb_per_s\":%.3f,"
	       "\"segments_prewritten\":%llu,\"write_busy\":%.4f,\"write_mean_us\":%.2f,"
	       "\"default_mode\":%s,",
	       r->test, r->mode, r->block_bytes,
	       r->entries ? (double)r->disk_bytes / (double)r->entries : 0.0, r->entry_bytes,
	       (unsigned long long)r->entries, (unsigned long long)r->bytes,
	       (unsigned long long)r->disk_bytes, (unsigned long long)r->syncs,
	       (unsigned long long)r->segments, (unsigned long long)r->early_acks,
	       (unsigned long long)r->verified, (unsigned long long)r->verify_bad, r->seconds,
	       r->ops_per_s, r->mb_per_s, r->disk_mb_per_s,
	       (unsigned long long)r->segments_prewritten, r->write_busy, r->write_mean_us,
	       r->is_default ? "true" : "false");
	printf("\"round\":%u,\"stalls\":%llu,", r->round + 1, (unsigned long long)r->stalls);
	if (r->purge)
		printf("\"recycle_max\":%d,\"prewrite\":%s,\"segments_recycled\":%llu,"
		       "\"segments_purged\":%llu,\"purge_keep\":%llu,",
		       r->recycle_max, r->prewrite ? "true" : "false",
		       (unsigned long long)r->segments_recycled,
		       (unsigned long long)r->segments_purged, (unsigned long long)r->purge_keep);
	if (r->has_dev)
		printf("\"dev\":{\"writes\":%llu,\"write_bytes\":%llu,\"write_ms\":%llu,"
		       "\"flushes\":%llu,\"discards\":%llu,\"discard_bytes\":%llu},",
		       (unsigned long long)r->dev.writes,
		       (unsigned long long)r->dev.write_sectors * 512,
		       (unsigned long long)r->dev.write_ticks, (unsigned long long)r->dev.flushes,
		       (unsigned long long)r->dev.discards,
		       (unsigned long long)r->dev.discard_sectors * 512);
	if (r->has_wlat)
		printf("\"write_lat_us\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p999\":%.2f,"
		       "\"mean\":%.2f},",
		       r->wlat.p50, r->wlat.p90, r->wlat.p99, r->wlat.p999, r->wlat.mean);
	if (r->has_lat)
		printf("\"lat_us\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p999\":%.2f,"
		       "\"max\":%.2f,\"min\":%.2f,\"mean\":%.2f},",
		       r->lat.p50, r->lat.p90, r->lat.p99, r->lat.p999, r->lat.max, r->lat.min,
		       r->lat.mean);
	else
		printf("\"lat_us\":null,");
	printf("\"syncs_per_s\":%.1f,\"entries_per_sync\":%.2f,", r->syncs_per_s,
	       r->entries_per_sync);
	if (r->has_fio)
		printf("\"fio_config\":\"%s\",\"fio_files\":\"%s\",\"fio_bs\":%u,"
		       "\"fio_ops_per_s\":%.1f,\"fio_mb_per_s\":%.3f,",
		       r->fio_config, r->fio_fresh ? "fresh" : "hot", r->fio_bs, r->fio_ops_per_s,
		       r->fio_mb_per_s);
	else
		printf("\"fio_config\":null,\"fio_bs\":null,\"fio_ops_per_s\":null,"
		       "\"fio_mb_per_s\":null,");
	if (r->has_fio_hot)
		printf("\"fio_hot_mb_per_s\":%.3f,\"ratio_hot\":%.4f,", r->fio_hot_mb_per_s,
		       r->ratio_hot);
	if (r->has_fio && strcmp(r->mode, "fio"))
		printf("\"ratio\":%.4f", r->ratio);
	else
		printf("\"ratio\":null");
	if (r->has_target)
		printf(",\"target_met\":%s}\n", r->met ? "true" : "false");
	else
		printf(",\"target_met\":null}\n");
}

/* ---- main --------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct opts o;
	static struct fio f;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_opts(argc, argv, &o);
	struct stat sb;
	if (stat(o.dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
		die("--dir %s: not a directory", o.dir);
	if (!o.no_fio) {
		fio_find(&o, &f);
		fio_version(&f);
		fprintf(stderr, "lcraft-storage-bench: using %s (%s)\n", f.path, f.version);
	}
	for (uint32_t i = 0; i < PAYLOAD_SLOTS; i++)
		for (uint32_t j = 0; j < ENTRY_4K; j++)
			payloads[i][j] = (uint8_t)((i * 2654435761u + j * 40503u) >> 7);

	for (uint32_t round = 0; round < o.rounds; round++)
		for (uint32_t a = 0; a < o.n_block_bytes; a++) {
			cur_round = round;
			cur_block_bytes = o.block_bytes[a];
			if (o.tests & 1)
				test_qd1(&o, &f);
			if (o.tests & 2)
				test_group(&o, &f, test_names[1], o.batch_4k, ENTRY_4K);
			if (o.tests & 4)
				test_group(&o, &f, test_names[2], o.batch_small, ENTRY_SMALL);
			if (o.tests & 8)
				test_qd1_small(&o);
			if (o.tests & TEST_PURGE)
				test_group_purge(&o, o.batch_4k);
		}

	if (o.tests & TESTS_ALL) {
		print_table(&o, &f);
		print_targets(&o, false);
	}
	print_purge(&o);
	if (o.json) {
		printf("\n");
		for (uint32_t i = 0; i < n_results; i++)
			print_json(&results[i]);
		if (o.tests & TESTS_ALL)
			print_targets(&o, true);
	}
	dir_remove(cleanup_dirs[1]);
	dir_remove(cleanup_dirs[2]);
	for (uint32_t i = 0; i < n_results; i++)
		if (results[i].verify_bad) {
			fprintf(stderr,
				"lcraft-storage-bench: the log wrote corrupt data (see above)\n");
			return 3;
		}
	return 0;
}
