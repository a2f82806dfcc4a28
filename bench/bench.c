/* SPDX-License-Identifier: MIT */
/*
 * lcraft-bench: replication throughput and latency, printed so that it
 * compares line by line with the peer harnesses (../shared/peers/).
 *
 *   lcraft-bench [--mode engine|socket|dpdk-memif|dpdk-afxdp|dpdk-afpacket]
 *                [--replicas 3] [--groups 1] [--lcores 1] [--clients 1,16,256,4096]
 *                [--rate OPS_PER_S] [--size 64] [--batch 1] [--seconds 10]
 *                [--warmup 1] [--durability fsync|none] [--dir /var/tmp]
 *                [--out FILE.jsonl] [--busy-poll] [--spin-us 50] [--port-base P]
 *                [--eal ARGS] [--no-floor] [--quiet]
 *
 * One run per --clients value (a sweep). Progress goes to stderr once a
 * second; at the end stdout gets a table and one JSON line per run, which
 * --out also appends to a file. Before the runs it measures the floors on
 * this machine, in the same invocation: the durable append latency of the
 * data directory's filesystem (4 KiB O_DIRECT writes + fdatasync into a
 * preallocated, pre-written file) and the UDP round trip on loopback, with
 * the receivers sleeping (or polling, with --busy-poll) as the socket
 * transport does. The DPDK modes measure, in each run, the bare round trip
 * and packet rate between replicas 1 and 2 through the DPDK backend their
 * nodes then use (mode_dpdk.c). Exit status: 0 every run ok; 1 a run failed; 2 usage; 130
 * interrupted (SIGINT, SIGTERM: the run stops, its replicas and files go).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <jemalloc/jemalloc.h>

#include "auth.h"
#include "bench.h"
#include "version.h"

#define SWEEP_MAX     32
#define FLOOR_WRITES  500
#define FLOOR_RTTS    2000
#define FLOOR_FILE_MB 16
/* Every DPDK replica's EAL arguments before its ports: no hugepages, no PCI
 * devices, no shared config (several DPDK processes on one host), EAL quiet. */
#define DEFAULT_EAL "-l 0 --no-huge -m 256 --no-pci --no-shconf --log-level=3"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

volatile int lcr_bench_interrupted;

static void on_signal(int sig)
{
	(void)sig;
	lcr_bench_interrupted = 1;
}

/* ---- counting allocations: jemalloc's alloc hook ---------------------------------------- */

/*
 * jemalloc 5.x calls an installed hook on every allocation (the hook puts
 * every thread on its slow path, so thread caches do not hide any). The
 * types mirror jemalloc's internal hook.h; the mallctl name is its
 * documented experimental interface. Where it is missing, allocations are
 * "not counted" (-1), never guessed.
 */
typedef void (*hook_alloc_fn)(void *extra, int type, void *result, uintptr_t result_raw,
			      uintptr_t args_raw[3]);
typedef void (*hook_dalloc_fn)(void *extra, int type, void *address, uintptr_t args_raw[3]);
typedef void (*hook_expand_fn)(void *extra, int type, void *address, size_t old_usize,
			       size_t new_usize, uintptr_t result_raw, uintptr_t args_raw[4]);
struct je_hooks {
	hook_alloc_fn alloc_hook;
	hook_dalloc_fn dalloc_hook;
	hook_expand_fn expand_hook;
	void *extra;
};

static _Atomic int64_t allocs = -1;

static void count_alloc(void *extra, int type, void *result, uintptr_t result_raw,
			uintptr_t args_raw[3])
{
	(void)extra;
	(void)type;
	(void)result_raw;
	(void)args_raw;
	if (result)
		atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
}

int lcr_bench_allocs_install(void)
{
	static struct je_hooks hooks = { count_alloc, NULL, NULL, NULL };
	void *handle = NULL;
	size_t sz = sizeof(handle);

	if (mallctl("experimental.hooks.install", &handle, &sz, &hooks, sizeof(hooks)) != 0)
		return -ENOTSUP;
	atomic_store(&allocs, 0);
	return 0;
}

int64_t lcr_bench_allocs(void)
{
	return atomic_load_explicit(&allocs, memory_order_relaxed);
}

/* ---- the floors ------------------------------------------------------------------------ */

struct floors {
	bool measured;
	double append_p50_us, append_p99_us;
	/* The same with one writer per replica at once: the replicas of a
	 * socket-mode run share this machine's disk. */
	uint32_t shared_writers;
	double shared_p50_us, shared_p99_us;
	double rtt_p50_us, rtt_p99_us;		 /* receiver asleep: 1 ms between datagrams */
	double rtt_warm_p50_us, rtt_warm_p99_us; /* receiver just idle: 50 us between */
	const char *append_how; /* "O_DIRECT" or "buffered" (the filesystem refused O_DIRECT) */
	char fs[32];
};

static double pct_us(const struct lcr_hist *h, double p)
{
	return (double)lcr_hist_pct(h, p) / 1e3;
}

static const char *fs_name(const char *dir, char *buf, size_t len)
{
	struct statfs st;
	if (statfs(dir, &st) < 0)
		return "unknown";
	switch ((unsigned long)st.f_type) {
	case 0xEF53:
		return "ext4";
	case 0x58465342:
		return "xfs";
	case 0x9123683E:
		return "btrfs";
	case 0x01021994:
		return "tmpfs";
	case 0x794c7630:
		return "overlayfs";
	default:
		snprintf(buf, len, "0x%lx", (unsigned long)st.f_type);
		return buf;
	}
}

/* One writer of the append floor: its own preallocated, pre-written file. */
struct appender {
	const char *dir;
	struct lcr_hist h;
	const char *how;
	int err;
	char why[256];
};

static void *appender_main(void *arg)
{
	struct appender *ap = arg;
	char path[512];
	void *blk = NULL;

	snprintf(path, sizeof(path), "%s/lcraft-bench-floor-XXXXXX", ap->dir);
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0 || posix_memalign(&blk, 4096, 1 << 20) != 0) {
		ap->err = -EIO;
		snprintf(ap->why, sizeof(ap->why), "floor: cannot make a file under %s: %s",
			 ap->dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	memset(blk, 0, 1 << 20);
	/* Preallocate and pre-write, as the log does with its segments. */
	for (int i = 0; i < FLOOR_FILE_MB && !ap->err; i++)
		if (pwrite(fd, blk, 1 << 20, (off_t)i << 20) != 1 << 20) {
			ap->err = -EIO;
			snprintf(ap->why, sizeof(ap->why), "floor: writing %s: %s", ap->dir,
				 strerror(errno));
		}
	fsync(fd);
	int dfd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	ap->how = "O_DIRECT";
	if (dfd < 0) {
		dfd = dup(fd);
		ap->how = "buffered";
	}
	for (int i = 0; i < 50 + FLOOR_WRITES && !ap->err; i++) {
		off_t off = (off_t)(i % ((FLOOR_FILE_MB << 20) / 4096)) * 4096;
		memset(blk, i, 4096);
		uint64_t t = now_ns();
		if (pwrite(dfd, blk, 4096, off) != 4096 || fdatasync(dfd) != 0) {
			ap->err = -EIO;
			snprintf(ap->why, sizeof(ap->why), "floor: write+fdatasync in %s: %s",
				 ap->dir, strerror(errno));
		}
		if (i >= 50)
			lcr_hist_add(&ap->h, now_ns() - t);
	}
	close(dfd);
	unlink(path);
	close(fd);
	free(blk);
	return NULL;
}

/*
 * The durable append floor: 4 KiB write + fdatasync at queue depth 1, by
 * `writers` threads at once, each into its own file (as replicas on one
 * machine share its disk); the latencies of all of them.
 */
static int floor_append(const char *dir, uint32_t writers, double *p50, double *p99,
			const char **how, char *why, size_t why_len)
{
	struct appender *ap = calloc(writers, sizeof(*ap));
	pthread_t t[8];
	int rc = 0;

	if (!ap || writers > 8) {
		free(ap);
		snprintf(why, why_len, "floor: out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < writers; i++) {
		ap[i].dir = dir;
		if (pthread_create(&t[i], NULL, appender_main, &ap[i]) != 0) {
			ap[i].err = -EAGAIN;
			snprintf(ap[i].why, sizeof(ap[i].why), "floor: cannot start a writer");
			writers = i;
			break;
		}
	}
	for (uint32_t i = 0; i < writers; i++)
		pthread_join(t[i], NULL);
	for (uint32_t i = 0; i < writers && rc == 0; i++)
		if (ap[i].err) {
			rc = ap[i].err;
			snprintf(why, why_len, "%s", ap[i].why);
		}
	for (uint32_t i = 1; i < writers; i++)
		lcr_hist_merge(&ap[0].h, &ap[i].h);
	*p50 = pct_us(&ap[0].h, 0.5);
	*p99 = pct_us(&ap[0].h, 0.99);
	*how = ap[0].how ? ap[0].how : "?";
	free(ap);
	return rc;
}

struct echo {
	int fd;
	bool busy;
	_Atomic bool stop;
};

static void *echo_main(void *arg)
{
	struct echo *e = arg;
	char b[64];
	while (!atomic_load_explicit(&e->stop, memory_order_relaxed)) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(e->fd, b, sizeof(b), e->busy ? MSG_DONTWAIT : 0,
				     (struct sockaddr *)&from, &fl);
		if (n > 0)
			sendto(e->fd, b, (size_t)n, 0, (struct sockaddr *)&from, fl);
	}
	return NULL;
}

static int udp_bound(struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t l = sizeof(*a);
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)a, sizeof(*a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)a, &l) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct timeval tv = { 0, 200000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int floor_udp(bool busy, unsigned gap_us, double *p50, double *p99, char *why,
		     size_t why_len)
{
	struct sockaddr_in sa, ca;
	struct echo e = { .busy = busy };
	struct lcr_hist *h = calloc(1, sizeof(*h));
	pthread_t t;
	int rc = 0;

	e.fd = udp_bound(&sa);
	int fd = udp_bound(&ca);
	if (e.fd < 0 || fd < 0 || !h || pthread_create(&t, NULL, echo_main, &e) != 0) {
		snprintf(why, why_len, "floor: UDP sockets on loopback: %s", strerror(errno));
		free(h);
		return -EIO;
	}
	char b[64] = { 0 };
	for (int i = 0; i < 100 + FLOOR_RTTS; i++) {
		/* Between datagrams the receiver sleeps, as an idle socket lcore
		 * does; how deeply depends on how long (a halted vCPU takes tens
		 * of microseconds to wake). */
		if (!busy)
			usleep(gap_us);
		uint64_t t0 = now_ns();
		sendto(fd, b, sizeof(b), 0, (struct sockaddr *)&sa, sizeof(sa));
		ssize_t n;
		do
			n = recv(fd, b, sizeof(b), busy ? MSG_DONTWAIT : 0);
		while (busy && n < 0 && errno == EAGAIN && now_ns() - t0 < 200000000ull);
		if (n <= 0) {
			snprintf(why, why_len, "floor: no UDP echo on loopback");
			rc = -EIO;
			break;
		}
		if (i >= 100)
			lcr_hist_add(h, now_ns() - t0);
	}
	atomic_store(&e.stop, true);
	sendto(fd, b, 1, 0, (struct sockaddr *)&sa, sizeof(sa)); /* wake it */
	pthread_join(t, NULL);
	close(fd);
	close(e.fd);
	*p50 = pct_us(h, 0.5);
	*p99 = pct_us(h, 0.99);
	free(h);
	return rc;
}

/* ---- the memif sockets' directory ------------------------------------------------------ */

static char memif_dir[64];

static void memif_dir_remove(void)
{
	if (memif_dir[0])
		rmdir(memif_dir);
}

/*
 * One per invocation, not per run: it names the memif sockets in replica 1's
 * EAL arguments, and EAL comes up once in this process, for every run of the
 * sweep. Unique, so that concurrent invocations (and lcraft-node clusters)
 * never share a socket: DPDK 22.11 makes them in the abstract namespace,
 * named after this path, so the directory stays empty.
 */
static int memif_dir_make(struct lcr_bench_opts *o)
{
	snprintf(memif_dir, sizeof(memif_dir), "/tmp/lcraft-bench-memif-XXXXXX");
	if (!mkdtemp(memif_dir)) {
		fprintf(stderr, "lcraft-bench: cannot make %s: %s\n", memif_dir, strerror(errno));
		memif_dir[0] = 0;
		return -errno;
	}
	atexit(memif_dir_remove);
	o->memif_dir = memif_dir;
	return 0;
}

/* ---- options -------------------------------------------------------------------------- */

/* JSON "transport": what carries the Raft datagrams. */
static const char *transport_name(enum lcr_bench_mode m)
{
	switch (m) {
	case LCR_BENCH_ENGINE:
		return "memory";
	case LCR_BENCH_SOCKET:
		return "udp-socket";
	case LCR_BENCH_DPDK_MEMIF:
		return "udp-dpdk-memif";
	case LCR_BENCH_DPDK_AFXDP:
		return "udp-dpdk-afxdp";
	case LCR_BENCH_DPDK_AFPACKET:
		return "udp-dpdk-afpacket";
	}
	return "?";
}

static const char *mode_name(enum lcr_bench_mode m)
{
	switch (m) {
	case LCR_BENCH_ENGINE:
		return "engine";
	case LCR_BENCH_SOCKET:
		return "socket";
	case LCR_BENCH_DPDK_MEMIF:
		return "dpdk-memif";
	case LCR_BENCH_DPDK_AFXDP:
		return "dpdk-afxdp";
	case LCR_BENCH_DPDK_AFPACKET:
		return "dpdk-afpacket";
	}
	return "?";
}

/* Engine mode keeps its log in memory: "durable" there means "flushed at once". */
static const char *durability_name(const struct lcr_bench_opts *o)
{
	return o->mode == LCR_BENCH_ENGINE ? "mem" : o->fsync ? "fsync" : "none";
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lcraft-bench [--mode engine|socket|dpdk-memif|dpdk-afxdp|dpdk-afpacket]\n"
		"                    [--replicas 1|3|5] [--groups N] [--lcores N]\n"
		"                    [--clients 1,16,256,4096] [--rate OPS_PER_S] [--size 64]\n"
		"                    [--batch 1] [--seconds 10] [--warmup 1]\n"
		"                    [--durability fsync|none] [--dir /var/tmp] [--out "
		"FILE.jsonl]\n"
		"                    [--busy-poll] [--spin-us 50] [--io-spin-us 500]\n"
		"                    [--spin adaptive|fixed] [--port-base P] [--eal ARGS]\n"
		"                    [--no-floor] [--trace] [--quiet] [--key FILE]\n"
		"\n"
		"  --mode        socket (default): replicas as processes on loopback, kernel UDP,\n"
		"                durable io_uring logs; engine: the Raft cores alone on one\n"
		"                thread, in-memory messages and log; dpdk-memif: socket mode\n"
		"                with the datagrams on DPDK memif ports (a build with DPDK;\n"
		"                each run first measures the bare memif round trip between\n"
		"                replicas 1 and 2); dpdk-afpacket, dpdk-afxdp: the same on\n"
		"                DPDK af_packet or af_xdp ports, each on a veth whose peer is\n"
		"                in a bridge the bench makes and removes (root)\n"
		"  --replicas    replicas per group (default 3)\n"
		"  --groups      Raft groups, each with its own clients (default 1)\n"
		"  --lcores      lcores per replica; group g runs on lcore g %% lcores (default "
		"1)\n"
		"  --clients     operations in flight per group; a list is a sweep, one run each\n"
		"                (default 1,16,256,4096)\n"
		"  --rate        open loop: start operations at this rate (all groups), latency\n"
		"                from the intended start; --clients bounds those in flight\n"
		"  --size        payload bytes per entry (default 64)\n"
		"  --batch       entries per operation, proposed together (default 1)\n"
		"  --seconds     measured window per run (default 10)\n"
		"  --warmup      seconds before it, not measured (default 1)\n"
		"  --durability  fsync (default): acknowledged entries are on stable storage;\n"
		"                none: benchmarks of everything but the disk\n"
		"  --dir         where a fresh data directory is made (default /var/tmp)\n"
		"  --out         also append the JSON lines to this file\n"
		"  --busy-poll   lcores poll instead of sleeping when idle (one core each)\n"
		"  --spin-us     socket: after work, lcores poll this long before sleeping\n"
		"                (default 50; 0 sleeps at once)\n"
		"  --io-spin-us  socket: ... and this long while their disk writes are in\n"
		"                flight (default 500)\n"
		"  --spin        adaptive (default): those two are bounds, each lcore polls\n"
		"                only while what it waits for is due (running medians);\n"
		"                fixed: always the whole time\n"
		"  --eal         dpdk: EAL arguments of every replica, without ports (default\n"
		"                \"%s\"); the memif ports are added\n"
		"  --no-floor    skip measuring the floors (append, UDP, bare DPDK)\n"
		"  --trace       process modes: after each run, a commit's stages (leader and\n"
		"                follower, p50 and p99) next to the floors, the critical\n"
		"                path marked\n"
		"  --quiet       no progress lines\n"
		"  --key         process modes: the replicas' datagrams authenticated with the\n"
		"                cluster key in FILE (32 bytes, or 64 hexadecimal digits; mode\n"
		"                600), aes256gcm, as lcraft-node's [cluster] key_file\n"
		"Exit status: 0 every run ok, 1 a run failed, 2 usage, 130 interrupted.\n",
		DEFAULT_EAL);
}

static int parse_uint(const char *s, const char *name, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "lcraft-bench: --%s %s: expected a whole number in %llu..%llu\n",
			name, s, (unsigned long long)lo, (unsigned long long)hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_double(const char *s, const char *name, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "lcraft-bench: --%s %s: expected a number in %g..%g\n", name, s, lo,
			hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* ---- progress, table, JSON ----------------------------------------------------------- */

struct progress_ctx {
	const struct lcr_bench_opts *o;
	uint64_t last_ops;
	double last_t;
};

static void on_progress(void *ctx, double t, uint64_t ops, uint64_t errors)
{
	struct progress_ctx *p = ctx;
	double dt = t - p->last_t;
	double rate = dt > 0 ? (double)(ops - p->last_ops) / dt : 0;
	fprintf(stderr, "lcraft-bench: %s clients=%u %s %5.1f s: %12.0f ops/s, %llu done%s\n",
		mode_name(p->o->mode), p->o->clients, t < 0 ? "warmup" : "window", t, rate,
		(unsigned long long)ops, errors ? ", with errors" : "");
	p->last_ops = ops;
	p->last_t = t;
}

struct run {
	struct lcr_bench_opts o;
	struct lcr_bench_result r;
	int rc;
	char why[256];
};

static double per_s(const struct run *u, double v)
{
	return u->r.window_s > 0 ? v / u->r.window_s : 0;
}

/* Entries each datagram of the leader carried to a follower, on average
 * (heartbeats and votes count as datagrams too); 0 where unknown. */
static double entries_per_dgram(const struct run *u)
{
	if (!lcr_bench_mode_processes(u->o.mode) || u->r.leader_tx <= 0 || u->o.replicas < 2)
		return 0;
	return (double)u->r.entries * (u->o.replicas - 1) / (double)u->r.leader_tx;
}

/* A JSON string, escaped. */
static void jstr(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Where and from what a run came: so lines from different builds, hosts or
 * repeats can be told apart. */
struct provenance {
	char started[32]; /* UTC, ISO 8601 */
	char cpu[128];
	char kernel[128];
	long cpus;
};

static void provenance_fill(struct provenance *p)
{
	time_t t = time(NULL);
	struct tm tm;
	struct utsname u;

	gmtime_r(&t, &tm);
	strftime(p->started, sizeof(p->started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	p->cpus = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(p->kernel, sizeof(p->kernel), "%s", uname(&u) == 0 ? u.release : "unknown");
	snprintf(p->cpu, sizeof(p->cpu), "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	while (f && fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');
		if (!strncmp(line, "model name", 10) && c) {
			c += 2;
			c[strcspn(c, "\n")] = 0;
			snprintf(p->cpu, sizeof(p->cpu), "%s", c);
			break;
		}
	}
	if (f)
		fclose(f);
}

static struct provenance prov;

/* A JSON number, or null where the mode has no such thing. */
static void jnum(FILE *f, const char *name, bool have, double v, const char *fmt)
{
	fprintf(f, ",\"%s\":", name);
	if (have)
		fprintf(f, fmt, v);
	else
		fputs("null", f);
}

static void json_line(FILE *f, const struct run *u, const struct floors *fl, const char *fs)
{
	const struct lcr_bench_opts *o = &u->o;
	const struct lcr_bench_result *r = &u->r;
	const struct lcr_hist *h = &r->lat;
	double cpu = r->user_s + r->sys_s;

	fprintf(f,
		"{\"engine\":\"lcraft\",\"mode\":\"%s\",\"transport\":\"%s\",\"replicas\":%u,"
		"\"nodes\":%u,\"groups\":%u,\"lcores\":%u,\"topology\":\"%s\",\"fs\":\"%s\","
		"\"durability\":\"%s\",\"clients\":%u,\"rate\":%.0f,\"size\":%u,\"batch\":%u,"
		"\"seconds\":%g,\"warmup_s\":%g,\"idle_spin_us\":%u,\"io_spin_us\":%u,\"spin\":\"%"
		"s\","
		"\"window_s\":%.4f,\"ops\":%llu,"
		"\"committed\":%llu,"
		"\"ops_per_s\":%.1f,\"entries_per_s\":%.1f,\"mb_per_s\":%.3f",
		mode_name(o->mode), transport_name(o->mode), o->replicas, o->replicas, o->groups,
		o->lcores, o->mode == LCR_BENCH_ENGINE ? "one-thread" : "processes",
		o->mode == LCR_BENCH_ENGINE ? "memory" : fs, durability_name(o), o->clients,
		o->rate, o->size, o->batch, o->seconds, o->warmup,
		lcr_bench_mode_processes(o->mode) && !o->busy_poll ? o->spin_us : 0,
		lcr_bench_mode_processes(o->mode) && !o->busy_poll ? o->io_spin_us : 0,
		o->spin_fixed ? "fixed" : "adaptive", r->window_s, (unsigned long long)r->ops,
		(unsigned long long)r->entries, per_s(u, (double)r->ops),
		per_s(u, (double)r->entries), per_s(u, (double)r->entries * o->size) / 1e6);
	fprintf(f,
		",\"lat_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,"
		"\"min\":%.1f,\"mean\":%.1f}",
		pct_us(h, 0.5), pct_us(h, 0.9), pct_us(h, 0.99), pct_us(h, 0.999),
		(double)h->max_ns / 1e3, (double)h->min_ns / 1e3,
		h->count ? (double)h->sum_ns / (double)h->count / 1e3 : 0.0);
	static const double q[] = { 0,	 0.05, 0.1,  0.2,  0.3,	  0.4,	 0.5,	 0.6, 0.7,
				    0.8, 0.9,  0.95, 0.99, 0.995, 0.999, 0.9999, 1 };
	fputs(",\"lat_cdf_us\":[", f);
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		fprintf(f, "%s[%g,%.1f]", i ? "," : "", q[i],
			q[i] == 0   ? (double)h->min_ns / 1e3
			: q[i] == 1 ? (double)h->max_ns / 1e3
				    : pct_us(h, q[i]));
	fprintf(f, "],\"cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f,\"cores\":%.3f}", r->user_s, r->sys_s,
		r->window_s > 0 ? cpu / r->window_s : 0);
	jnum(f, "fsyncs_per_s", r->fsyncs >= 0 && o->fsync, per_s(u, (double)r->fsyncs), "%.1f");
	jnum(f, "entries_per_fsync", r->fsyncs > 0 && r->entries_flushed >= 0 && o->fsync,
	     r->fsyncs > 0 ? (double)r->entries_flushed / (double)r->fsyncs : 0, "%.2f");
	/* Log bytes written per entry written, from the leader's log stats:
	 * what the batch alignment costs (docs/storage-format.md). */
	jnum(f, "log_bytes_per_entry",
	     o->mode != LCR_BENCH_ENGINE && r->log_bytes > 0 && r->entries_flushed > 0,
	     r->entries_flushed > 0 ? (double)r->log_bytes / (double)r->entries_flushed : 0,
	     "%.1f");
	jnum(f, "datagrams_per_s", r->datagrams >= 0 && o->mode != LCR_BENCH_ENGINE,
	     per_s(u, (double)r->datagrams), "%.1f");
	jnum(f, "messages_per_s", r->datagrams >= 0, per_s(u, (double)r->datagrams), "%.1f");
	jnum(f, "retransmits", r->retransmits >= 0, (double)r->retransmits, "%.0f");
	jnum(f, "allocs_per_entry", r->allocs >= 0 && r->entries > 0,
	     r->entries ? (double)r->allocs / (double)r->entries : 0, "%.4f");
	jnum(f, "entries_per_datagram", entries_per_dgram(u) > 0, entries_per_dgram(u), "%.2f");
	/* The DPDK modes' bare floor, this run's own, and the ratios to it. */
	const struct lcr_bench_dpdk_floor *d = &r->dpdk;
	double p50 = pct_us(h, 0.5);
	jnum(f, "floor_dpdk_rtt_p50_us", d->measured, d->rtt_p50_us, "%.2f");
	jnum(f, "floor_dpdk_rtt_p99_us", d->measured, d->rtt_p99_us, "%.2f");
	jnum(f, "floor_dpdk_rtt_nap_p50_us", d->measured && d->nap, d->rtt_nap_p50_us, "%.2f");
	jnum(f, "floor_dpdk_rtt_nap_p99_us", d->measured && d->nap, d->rtt_nap_p99_us, "%.2f");
	jnum(f, "floor_dpdk_pps", d->measured, d->pps, "%.0f");
	jnum(f, "ratio_p50_to_dpdk_rtt", d->measured && d->rtt_p50_us > 0 && h->count,
	     d->rtt_p50_us > 0 ? p50 / d->rtt_p50_us : 0, "%.2f");
	jnum(f, "ratio_p50_to_append",
	     fl->measured && o->fsync && fl->append_p50_us > 0 && h->count,
	     fl->append_p50_us > 0 ? p50 / fl->append_p50_us : 0, "%.3f");
	if (fl->measured)
		fprintf(f,
			",\"floor\":{\"append_us\":{\"p50\":%.1f,\"p99\":%.1f,\"how\":\"%s\"},"
			"\"append_shared_us\":{\"p50\":%.1f,\"p99\":%.1f,\"writers\":%u},"
			"\"udp_rtt_us\":{\"p50\":%.1f,\"p99\":%.1f},"
			"\"udp_rtt_idle_us\":{\"p50\":%.1f,\"p99\":%.1f},\"udp_wait\":\"%s\"}",
			fl->append_p50_us, fl->append_p99_us, fl->append_how, fl->shared_p50_us,
			fl->shared_p99_us, fl->shared_writers, fl->rtt_p50_us, fl->rtt_p99_us,
			fl->rtt_warm_p50_us, fl->rtt_warm_p99_us, o->busy_poll ? "poll" : "sleep");
	else
		fputs(",\"floor\":null", f);
	fprintf(f, ",\"auth\":\"%s\"", o->key_file ? "aes256gcm" : "off");
	fprintf(f, ",\"leader_id\":%u,\"election_ms\":%.1f,\"errors\":%llu,\"ok\":%s", r->leader,
		r->election_ms, (unsigned long long)r->errors,
		u->rc == 0 && r->errors == 0 && r->ops > 0 ? "true" : "false");
	fprintf(f, ",\"in_flight\":%u,\"started\":\"%s\",\"commit\":", o->clients * o->groups,
		prov.started);
	jstr(f, LCR_BENCH_COMMIT);
	fputs(",\"buildtype\":", f);
	jstr(f, LCR_BENCH_BUILDTYPE);
	fprintf(f, ",\"host\":{\"cpus\":%ld,\"cpu\":", prov.cpus);
	jstr(f, prov.cpu);
	fputs(",\"kernel\":", f);
	jstr(f, prov.kernel);
	fputc('}', f);
	if (u->rc < 0) {
		fputs(",\"error\":", f);
		jstr(f, u->why);
	}
	if (r->trace.have) {
		static const char *const names[LCR_BENCH_STAGES] = {
			[LCR_BT_QUEUE] = "proposal_queue",
			[LCR_BT_LEADER_DURABLE] = "leader_durable",
			[LCR_BT_RTT] = "replication_rtt",
			[LCR_BT_COMMIT] = "commit",
			[LCR_BT_APPLY] = "apply",
			[LCR_BT_ONE_WAY] = "follower_one_way",
			[LCR_BT_FOLLOWER_DURABLE] = "follower_durable",
			[LCR_BT_FOLLOWER_ACK] = "follower_ack",
			[LCR_BT_RX_LEADER] = "leader_rx_delay",
			[LCR_BT_RX_FOLLOWER] = "follower_rx_delay",
			[LCR_BT_WRITE_LEADER] = "leader_write",
			[LCR_BT_WRITE_FOLLOWER] = "follower_write",
		};
		fputs(",\"stages_us\":{", f);
		for (uint32_t i = 0; i < LCR_BENCH_STAGES; i++)
			fprintf(f,
				"%s\"%s\":{\"count\":%llu,\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
				"\"max\":%.1f}",
				i ? "," : "", names[i], (unsigned long long)r->trace.st[i].count,
				r->trace.st[i].p50_us, r->trace.st[i].p99_us,
				r->trace.st[i].p999_us, r->trace.st[i].max_us);
		fputc('}', f);
	}
	if (r->note[0]) {
		fputs(",\"note\":", f);
		jstr(f, r->note);
	}
	fputs("}\n", f);
}

/* The DPDK modes: each run's bare floor beside its figures. */
static const char *floor_name(enum lcr_bench_mode m)
{
	return m == LCR_BENCH_DPDK_AFPACKET ? "DPDK af_packet (veth, bridge, veth)"
	       : m == LCR_BENCH_DPDK_AFXDP  ? "DPDK af_xdp (veth, bridge, veth)"
					    : "DPDK memif";
}

static void table_dpdk(const struct run *runs, size_t n, const struct floors *fl)
{
	bool any = false;
	for (size_t i = 0; i < n; i++)
		any |= runs[i].rc == 0 && runs[i].r.dpdk.measured;
	if (!any)
		return;
	printf("\nbare %s between replicas 1 and 2, no Raft, measured in each run before its "
	       "nodes opened\n(64-byte datagrams; rtt: both polling; nap: replica 2 napping as "
	       "an idle lcore, 1 ms apart)\n",
	       floor_name(runs[0].o.mode));
	printf("%-5s %7s %9s %9s %9s %9s %9s %9s %9s %8s %10s\n", "dur", "clients", "rtt p50",
	       "rtt p99", "nap p50", "Mdgram/s", "p50 us", "p50/rtt", "p50/app", "ent/dg",
	       "dgrams/s");
	for (size_t i = 0; i < n; i++) {
		const struct run *u = &runs[i];
		const struct lcr_bench_dpdk_floor *d = &u->r.dpdk;
		if (u->rc < 0 || !d->measured)
			continue;
		double p50 = pct_us(&u->r.lat, 0.5);
		char nap[16] = "-", app[16] = "-";
		if (d->nap)
			snprintf(nap, sizeof(nap), "%.1f", d->rtt_nap_p50_us);
		if (fl->measured && u->o.fsync && fl->append_p50_us > 0)
			snprintf(app, sizeof(app), "%.2f", p50 / fl->append_p50_us);
		printf("%-5s %7u %9.2f %9.2f %9s %9.2f %9.1f %9.1f %9s %8.2f %10.0f\n",
		       durability_name(&u->o), u->o.clients, d->rtt_p50_us, d->rtt_p99_us, nap,
		       d->pps / 1e6, p50, d->rtt_p50_us > 0 ? p50 / d->rtt_p50_us : 0, app,
		       entries_per_dgram(u), per_s(u, (double)u->r.datagrams));
	}
}

static void table(const struct run *runs, size_t n, const struct floors *fl)
{
	printf("\n%-13s %3s %5s %7s %5s %5s %12s %12s %8s %9s %9s %9s %6s %8s %7s\n", "mode", "rep",
	       "dur", "clients", "size", "batch", "ops/s", "entries/s", "MB/s", "p50 us", "p99 us",
	       "p99.9 us", "cores", "fsync/s", "ent/fs");
	for (size_t i = 0; i < n; i++) {
		const struct run *u = &runs[i];
		const struct lcr_bench_result *r = &u->r;
		if (u->rc < 0) {
			printf("%-13s %3u %5s %7u  failed: %s\n", mode_name(u->o.mode),
			       u->o.replicas, durability_name(&u->o), u->o.clients, u->why);
			continue;
		}
		char fs_s[16] = "-", ef[16] = "-";
		if (r->fsyncs >= 0 && u->o.fsync) {
			snprintf(fs_s, sizeof(fs_s), "%.0f", per_s(u, (double)r->fsyncs));
			if (r->fsyncs > 0)
				snprintf(ef, sizeof(ef), "%.1f",
					 (double)r->entries_flushed / (double)r->fsyncs);
		}
		printf("%-13s %3u %5s %7u %5u %5u %12.0f %12.0f %8.2f %9.1f %9.1f %9.1f %6.2f %8s "
		       "%7s\n",
		       mode_name(u->o.mode), u->o.replicas, durability_name(&u->o), u->o.clients,
		       u->o.size, u->o.batch, per_s(u, (double)r->ops),
		       per_s(u, (double)r->entries), per_s(u, (double)r->entries * u->o.size) / 1e6,
		       pct_us(&r->lat, 0.5), pct_us(&r->lat, 0.99), pct_us(&r->lat, 0.999),
		       r->window_s > 0 ? (r->user_s + r->sys_s) / r->window_s : 0, fs_s, ef);
	}
	if (fl->measured) {
		printf("\nfloors (this machine, this run): durable 4 KiB append (%s + fdatasync, "
		       "queue depth 1) p50 %.1f us, p99 %.1f us alone; p50 %.1f us, p99 %.1f us "
		       "with %u writers at once (the replicas share this disk)\n"
		       "  UDP round trip on loopback (receiver %s) p50 %.1f us, p99 %.1f us (p50 "
		       "%.1f us when it idled only 50 us)\n",
		       fl->append_how, fl->append_p50_us, fl->append_p99_us, fl->shared_p50_us,
		       fl->shared_p99_us, fl->shared_writers,
		       runs[0].o.busy_poll ? "polling" : "asleep 1 ms", fl->rtt_p50_us,
		       fl->rtt_p99_us, fl->rtt_warm_p50_us);
		for (size_t i = 0; i < n; i++) {
			const struct run *u = &runs[i];
			if (u->rc < 0 || u->o.mode != LCR_BENCH_SOCKET || !u->o.fsync)
				continue;
			double lone = fl->append_p50_us + fl->rtt_p50_us;
			double shared = fl->shared_p50_us + fl->rtt_p50_us;
			printf("  clients %-5u p50 = %.2f x (append + UDP = %.0f us), %.2f x "
			       "(shared "
			       "append + UDP = %.0f us); p99 = %.2f x append p99, %.2f x shared\n",
			       u->o.clients, pct_us(&u->r.lat, 0.5) / lone, lone,
			       pct_us(&u->r.lat, 0.5) / shared, shared,
			       pct_us(&u->r.lat, 0.99) / fl->append_p99_us,
			       pct_us(&u->r.lat, 0.99) / fl->shared_p99_us);
		}
	}
}

/*
 * --trace: one run's commit, stage by stage (engine/runtime/trace.c), as the
 * leader (replica 1) and a follower (replica 2) saw it, with the floors. The
 * proposal starts the leader's own write and the round trips to the followers
 * at once; a majority commits (of three: the later of the leader's write and
 * the faster round trip, or both followers' round trips). The longer of the
 * leader's write and the round trip at p50 is marked the critical path (*),
 * then commit -> apply -> answer.
 */
static void table_trace(const struct run *u, const struct floors *fl)
{
	const struct lcr_bench_trace *t = &u->r.trace;
	const struct lcr_bench_stage *st = t->st;
	static const struct {
		uint32_t i;
		const char *what;
		int crit; /* 1: the leader's write, 2: the round trip, 3: always */
	} rows[] = {
		{ LCR_BT_QUEUE, "leader    lcr_propose -> the core proposes (queue)", 3 },
		{ LCR_BT_LEADER_DURABLE, "leader    proposed -> durable in its log", 1 },
		{ LCR_BT_WRITE_LEADER, "            the log's write + flush (io_uring)", 0 },
		{ LCR_BT_RTT, "leader    AppendEntries out -> ack in (round trip)", 2 },
		{ LCR_BT_ONE_WAY, "  follower  leader's send -> delivered (one way)", 0 },
		{ LCR_BT_RX_FOLLOWER, "              waiting in its socket (wake-up)", 0 },
		{ LCR_BT_FOLLOWER_DURABLE, "  follower  delivered -> durable", 0 },
		{ LCR_BT_WRITE_FOLLOWER, "              the log's write + flush", 0 },
		{ LCR_BT_FOLLOWER_ACK, "  follower  durable -> ack out", 0 },
		{ LCR_BT_RX_LEADER, "  leader    acks waiting in its socket (wake-up)", 0 },
		{ LCR_BT_COMMIT, "leader    proposed -> committed (quorum)", 3 },
		{ LCR_BT_APPLY, "leader    committed -> applied and answered", 3 },
	};

	if (!u->o.trace || u->rc < 0)
		return;
	printf("\ncommit timeline: %s, %u clients, durability %s (since the replicas opened, "
	       "warm-up included)\n",
	       mode_name(u->o.mode), u->o.clients, durability_name(&u->o));
	if (!t->have) {
		printf("  no stages: this mode reports none\n");
		return;
	}
	int crit = st[LCR_BT_LEADER_DURABLE].p50_us >= st[LCR_BT_RTT].p50_us ? 1 : 2;
	printf("  %-54s %10s %9s %9s %9s %9s\n", "stage", "count", "p50 us", "p99 us", "p99.9 us",
	       "max us");
	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		const struct lcr_bench_stage *s = &st[rows[k].i];
		bool on = rows[k].crit == 3 || rows[k].crit == crit;
		if (s->count == 0) {
			/* Not measured here (rx_delay: kernel sockets only). */
			printf("%s %-54s %10s %9s %9s %9s %9s\n", on ? "*" : " ", rows[k].what, "-",
			       "-", "-", "-", "-");
			continue;
		}
		printf("%s %-54s %10llu %9.1f %9.1f %9.1f %9.1f\n", on ? "*" : " ", rows[k].what,
		       (unsigned long long)s->count, s->p50_us, s->p99_us, s->p999_us, s->max_us);
	}
	printf("  %-54s %10llu %9.1f %9.1f %9.1f %9.1f\n",
	       "client    measured end to end (the window)", (unsigned long long)u->r.ops,
	       pct_us(&u->r.lat, 0.5), pct_us(&u->r.lat, 0.99), pct_us(&u->r.lat, 0.999),
	       (double)u->r.lat.max_ns / 1e3);
	/* The round trip less the follower's own part: the wire both ways. */
	double wire = st[LCR_BT_RTT].p50_us - st[LCR_BT_FOLLOWER_DURABLE].p50_us -
		      st[LCR_BT_FOLLOWER_ACK].p50_us;
	printf("  round trip p50 less the follower's work p50: %.1f us on the wire both ways, "
	       "wake-ups included\n",
	       wire);
	if (fl->measured)
		printf("  floors: durable 4 KiB append p50 %.1f us alone, %.1f us with %u writers; "
		       "UDP round trip p50 %.1f us to an idle receiver, %.1f us to a sleeping "
		       "one\n",
		       fl->append_p50_us, fl->shared_p50_us, fl->shared_writers,
		       fl->rtt_warm_p50_us, fl->rtt_p50_us);
	printf("  * the critical path: the longer of the leader's write and the round trip "
	       "(%s here), then commit and apply\n",
	       crit == 1 ? "the leader's write" : "the round trip");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "groups", required_argument, NULL, 'g' },
		{ "lcores", required_argument, NULL, 'l' },
		{ "clients", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'R' },
		{ "size", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "durability", required_argument, NULL, 'd' },
		{ "dir", required_argument, NULL, 'D' },
		{ "out", required_argument, NULL, 'o' },
		{ "busy-poll", no_argument, NULL, 'B' },
		{ "spin-us", required_argument, NULL, 'p' },
		{ "io-spin-us", required_argument, NULL, 'i' },
		{ "spin", required_argument, NULL, 'x' },
		{ "port-base", required_argument, NULL, 'P' },
		{ "eal", required_argument, NULL, 'E' },
		{ "no-floor", no_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "trace", no_argument, NULL, 'T' },
		{ "key", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct lcr_bench_opts o = {
		.mode = LCR_BENCH_SOCKET,
		.replicas = 3,
		.groups = 1,
		.lcores = 1,
		.size = 64,
		.batch = 1,
		.seconds = 10,
		.warmup = 1,
		.fsync = true,
		.dir = "/var/tmp",
		.spin_us = 50,
		.io_spin_us = 500,
		.eal = DEFAULT_EAL,
		.floor = true,
		.argv0 = argv[0],
	};
	uint32_t sweep[SWEEP_MAX] = { 1, 16, 256, 4096 };
	size_t n_sweep = 4;
	const char *out = NULL;
	bool no_floor = false;
	uint64_t v;
	int opt;

	/* Replicas 2..R of a run: this program again (mode_socket.c). */
	if (argc > 1 && !strcmp(argv[1], "--replica"))
		return lcr_bench_replica_main(argc - 2, argv + 2);
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (!strcmp(optarg, "engine"))
				o.mode = LCR_BENCH_ENGINE;
			else if (!strcmp(optarg, "socket"))
				o.mode = LCR_BENCH_SOCKET;
			else if (!strcmp(optarg, "dpdk-memif"))
				o.mode = LCR_BENCH_DPDK_MEMIF;
			else if (!strcmp(optarg, "dpdk-afxdp"))
				o.mode = LCR_BENCH_DPDK_AFXDP;
			else if (!strcmp(optarg, "dpdk-afpacket"))
				o.mode = LCR_BENCH_DPDK_AFPACKET;
			else {
				fprintf(stderr,
					"lcraft-bench: --mode %s: expected engine, socket, "
					"dpdk-memif, dpdk-afxdp or dpdk-afpacket\n",
					optarg);
				return 2;
			}
			break;
		case 'r':
			if (parse_uint(optarg, "replicas", 1, 5, &v) < 0)
				return 2;
			if (v != 1 && v != 3 && v != 5) {
				fprintf(stderr, "lcraft-bench: --replicas %s: 1, 3 or 5\n", optarg);
				return 2;
			}
			o.replicas = (uint32_t)v;
			break;
		case 'g':
			if (parse_uint(optarg, "groups", 1, 64, &v) < 0)
				return 2;
			o.groups = (uint32_t)v;
			break;
		case 'l':
			if (parse_uint(optarg, "lcores", 1, 64, &v) < 0)
				return 2;
			o.lcores = (uint32_t)v;
			break;
		case 'c': {
			n_sweep = 0;
			char *save = NULL, *list = strdup(optarg);
			for (char *t = strtok_r(list, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				if (n_sweep == SWEEP_MAX ||
				    parse_uint(t, "clients", 1, 65536, &v) < 0) {
					if (n_sweep == SWEEP_MAX)
						fprintf(stderr,
							"lcraft-bench: --clients: at most %d "
							"values\n",
							SWEEP_MAX);
					free(list);
					return 2;
				}
				sweep[n_sweep++] = (uint32_t)v;
			}
			free(list);
			if (n_sweep == 0) {
				fprintf(stderr, "lcraft-bench: --clients: no value\n");
				return 2;
			}
			break;
		}
		case 'R':
			if (parse_double(optarg, "rate", 0, 1e9, &o.rate) < 0)
				return 2;
			break;
		case 's':
			if (parse_uint(optarg, "size", 0, 1 << 20, &v) < 0)
				return 2;
			o.size = (uint32_t)v;
			break;
		case 'b':
			if (parse_uint(optarg, "batch", 1, 1024, &v) < 0)
				return 2;
			o.batch = (uint32_t)v;
			break;
		case 'S':
			if (parse_double(optarg, "seconds", 0.1, 86400, &o.seconds) < 0)
				return 2;
			break;
		case 'w':
			if (parse_double(optarg, "warmup", 0, 3600, &o.warmup) < 0)
				return 2;
			break;
		case 'd':
			if (!strcmp(optarg, "fsync"))
				o.fsync = true;
			else if (!strcmp(optarg, "none"))
				o.fsync = false;
			else {
				fprintf(stderr, "lcraft-bench: --durability %s: fsync or none\n",
					optarg);
				return 2;
			}
			break;
		case 'D':
			o.dir = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'B':
			o.busy_poll = true;
			break;
		case 'p':
			if (parse_uint(optarg, "spin-us", 0, 100000, &v) < 0)
				return 2;
			o.spin_us = (uint32_t)v;
			break;
		case 'i':
			if (parse_uint(optarg, "io-spin-us", 0, 100000, &v) < 0)
				return 2;
			o.io_spin_us = (uint32_t)v;
			break;
		case 'P':
			if (parse_uint(optarg, "port-base", 1024, 65000, &v) < 0)
				return 2;
			o.port_base = (uint16_t)v;
			break;
		case 'E':
			o.eal = optarg;
			break;
		case 'F':
			no_floor = true;
			o.floor = false;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'T':
			o.trace = true;
			break;
		case 'K':
			o.key_file = optarg;
			break;
		case 'x':
			if (strcmp(optarg, "adaptive") && strcmp(optarg, "fixed")) {
				fprintf(stderr, "lcraft-bench: --spin %s: adaptive or fixed\n",
					optarg);
				return 2;
			}
			o.spin_fixed = !strcmp(optarg, "fixed");
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "lcraft-bench: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (o.mode >= LCR_BENCH_DPDK_MEMIF && !lcr_bench_dpdk_built()) {
		fprintf(stderr,
			"lcraft-bench: --mode %s: this build has no DPDK (meson found no libdpdk, "
			"or was given -Ddpdk=disabled: install libdpdk-dev and run meson setup "
			"again)\n",
			mode_name(o.mode));
		return 2;
	}
	if (o.mode != LCR_BENCH_SOCKET && o.mode != LCR_BENCH_ENGINE && o.replicas < 3) {
		fprintf(stderr,
			"lcraft-bench: --mode %s --replicas 1: the bare floor is measured between "
			"replicas 1 and 2, and one replica sends no datagram: 3 or 5\n",
			mode_name(o.mode));
		return 2;
	}
	if ((o.mode == LCR_BENCH_DPDK_AFPACKET || o.mode == LCR_BENCH_DPDK_AFXDP) &&
	    geteuid() != 0) {
		fprintf(stderr,
			"lcraft-bench: --mode %s makes veth pairs and a bridge, and opens %s "
			"sockets on them: run it as root (--mode dpdk-memif needs no root)\n",
			mode_name(o.mode), o.mode == LCR_BENCH_DPDK_AFXDP ? "XDP" : "raw");
		return 2;
	}
	if (lcr_bench_mode_processes(o.mode) && o.busy_poll && o.replicas * o.lcores > 2) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		if ((long)(o.replicas * o.lcores) > cores)
			fprintf(stderr,
				"lcraft-bench: warning: --busy-poll with %u polling lcores on %ld "
				"cores: they will fight for the CPU\n",
				o.replicas * o.lcores, cores);
	}
	if (o.key_file) {
		uint8_t key[LCR_AUTH_KEY_BYTES];
		char kwhy[400];
		if (o.mode == LCR_BENCH_ENGINE) {
			fprintf(stderr, "lcraft-bench: --key: the engine mode sends no datagram; "
					"--mode socket authenticates the replicas' datagrams\n");
			return 2;
		}
		/* Read once here so that a bad file stops the run before any replica. */
		int krc = lcr_auth_key_load(o.key_file, key, kwhy, sizeof(kwhy));
		lcr_auth_wipe(key, sizeof(key));
		if (krc < 0) {
			fprintf(stderr, "lcraft-bench: --key: %s\n", kwhy);
			return 2;
		}
	}
	if (o.port_base == 0)
		o.port_base = (uint16_t)(21000 + (getpid() % 400) * 100);
	if (o.mode == LCR_BENCH_DPDK_MEMIF && memif_dir_make(&o) < 0)
		return 1;
	if (o.mode == LCR_BENCH_DPDK_AFPACKET || o.mode == LCR_BENCH_DPDK_AFXDP) {
		char vwhy[300];
		if (lcr_bench_veth_make(&o, vwhy, sizeof(vwhy)) < 0) {
			fprintf(stderr, "lcraft-bench: %s\n", vwhy);
			return 1;
		}
		atexit(lcr_bench_veth_remove);
	}
	if (!o.fsync && lcr_bench_mode_processes(o.mode))
		fprintf(stderr, "lcraft-bench: durability none: acknowledged entries are NOT on "
				"stable storage in these runs\n");
	if (lcr_bench_allocs_install() < 0)
		fprintf(stderr, "lcraft-bench: note: jemalloc's allocation hook is not available: "
				"allocations per entry are not counted\n");

	struct floors fl = { 0 };
	char why[512], fsbuf[32];
	const char *fs = fs_name(o.dir, fsbuf, sizeof(fsbuf));
	if (!no_floor && lcr_bench_mode_processes(o.mode)) {
		fl.shared_writers = o.replicas;
		if (floor_append(o.dir, 1, &fl.append_p50_us, &fl.append_p99_us, &fl.append_how,
				 why, sizeof(why)) < 0 ||
		    floor_append(o.dir, o.replicas, &fl.shared_p50_us, &fl.shared_p99_us,
				 &fl.append_how, why, sizeof(why)) < 0 ||
		    floor_udp(o.busy_poll, 1000, &fl.rtt_p50_us, &fl.rtt_p99_us, why, sizeof(why)) <
			    0 ||
		    floor_udp(o.busy_poll, 50, &fl.rtt_warm_p50_us, &fl.rtt_warm_p99_us, why,
			      sizeof(why)) < 0) {
			fprintf(stderr, "lcraft-bench: %s\n", why);
			return 1;
		}
		fl.measured = true;
		if (!o.quiet)
			fprintf(stderr,
				"lcraft-bench: floors: append (%s, %s) p50 %.1f us p99 %.1f us; "
				"UDP RTT p50 %.1f us p99 %.1f us\n",
				fl.append_how, fs, fl.append_p50_us, fl.append_p99_us,
				fl.rtt_p50_us, fl.rtt_p99_us);
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A replica that died shows as an error on its pipe, not as our death. */
	signal(SIGPIPE, SIG_IGN);
	provenance_fill(&prov);
	struct run *runs = calloc(n_sweep, sizeof(*runs));
	int status = 0;
	if (!runs)
		return 1;
	size_t done = 0;
	for (size_t i = 0; i < n_sweep && !lcr_bench_interrupted; i++) {
		struct run *u = &runs[i];
		done = i + 1;
		u->o = o;
		u->o.clients = sweep[i];
		struct progress_ctx pc = { .o = &u->o, .last_t = -u->o.warmup };
		lcr_bench_progress_fn pf = o.quiet ? NULL : on_progress;
		if (o.mode == LCR_BENCH_ENGINE)
			u->rc = lcr_bench_engine(&u->o, &u->r, pf, &pc, u->why, sizeof(u->why));
		else
			u->rc = lcr_bench_socket(&u->o, &u->r, pf, &pc, u->why, sizeof(u->why));
		if (u->rc < 0 || u->r.errors || u->r.ops == 0) {
			status = 1;
			if (u->rc < 0)
				fprintf(stderr, "lcraft-bench: clients=%u: %s\n", u->o.clients,
					u->why);
		}
		/* Each run's line as soon as it is done, in the file. */
		if (out) {
			FILE *f = fopen(out, "a");
			if (!f) {
				fprintf(stderr, "lcraft-bench: --out %s: %s\n", out,
					strerror(errno));
				return 1;
			}
			json_line(f, u, &fl, fs);
			fclose(f);
		}
	}
	table(runs, done, &fl);
	table_dpdk(runs, done, &fl);
	for (size_t i = 0; i < done; i++)
		table_trace(&runs[i], &fl);
	printf("\n");
	for (size_t i = 0; i < done; i++)
		json_line(stdout, &runs[i], &fl, fs);
	free(runs);
	if (lcr_bench_interrupted) {
		fprintf(stderr, "lcraft-bench: interrupted after %zu of %zu runs\n", done, n_sweep);
		return 130;
	}
	return status;
}
