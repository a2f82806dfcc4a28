/* Crash test: SIGKILL a log writer at random moments, restart it, and check what it recovers. */
/*
 *   crash_test [--cycles N] [--seed S] [--writer PATH] [--dir BASE] [--kill-ms MIN:MAX]
 *              [--max-segments N] [--keep] [--verbose] [--no-settle]
 *
 * Each cycle starts crash_writer (crash_writer.c) on the same log directory,
 * with an expectation file made from what earlier writers announced and had
 * acknowledged (crash.h). The writer recovers and checks the log, says READY,
 * and appends until it is killed with SIGKILL, MIN..MAX ms (default 5..80)
 * after READY; one cycle in ten kills it earlier, during its recovery. Any
 * recovery error or mismatch fails the test, naming the cycle and the seed.
 * Two writers in three install snapshots as they go (lcr_log_install with and
 * without the log, the snapshot file first, as the runtime does), one of
 * them often enough that most kills land while an install is not yet
 * durable; the summary counts those kills.
 * When the log reaches --max-segments segments (default 48, of 4 MiB) it
 * starts again in a fresh directory, so that recovery stays quick.
 *
 * A killed writer's io_uring writes still land for a while after it has been
 * reaped. Before each restart the driver waits for them (see settle());
 * --no-settle restarts at once, as a supervisor might, and counts the races.
 *
 * The log lives in a fresh directory under $LCR_TEST_DIR or /var/tmp, removed
 * at the end unless the test fails (or --keep). Exit 77: io_uring unavailable.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "ring.h"

#define EARLY_KILL_PCT	 10	     /* cycles killed during recovery */
#define READY_TIMEOUT_MS 60000	     /* a writer that never gets ready is hung */
#define ERR_MAX		 (64u << 10) /* writer stderr kept per cycle */

struct opts {
	uint64_t cycles;
	uint64_t seed;
	const char *writer;
	const char *base;
	uint32_t kill_min_ms;
	uint32_t kill_max_ms;
	uint32_t max_segments;
	bool keep;
	bool verbose;
	bool no_settle;
};

struct driver {
	struct opts o;
	char dir[PATH_MAX];
	char log_dir[PATH_MAX + 8];
	char snap_dir[PATH_MAX + 16]; /* the writer's snapshots: log_dir with "-snap" */
	char expect[PATH_MAX + 8];
	uint64_t rng;
	uint64_t cycle;

	/* The model: the log the last writer recovered, and what came after. */
	struct crash_model base;
	struct crash_rec *cmds;
	uint64_t n_cmds, cap_cmds;
	uint64_t acked_cmds;
	uint64_t old_last;
	uint64_t term_next;

	/* This cycle's writer. */
	pid_t pid;
	int out_fd, err_fd;
	uint8_t out_buf[sizeof(struct crash_rec)];
	uint32_t out_have;
	char err[ERR_MAX + 1];
	uint32_t err_len;
	bool ready;
	double ready_ms;
	uint64_t snap_k; /* CRASH_SNAP: the snapshot matched after this many commands */
	bool finished;	 /* ... and the writer finished its install */
	uint64_t lag;	 /* ... and purge points lag from this command on (crash.h) */
	bool have_snap;

	/* Totals. */
	uint64_t acked_entries;
	uint64_t acked_cmds_total;
	uint64_t torn_cuts;
	uint64_t orphans; /* intact batches after a torn one, erased (writes in flight) */
	uint64_t early_kills;
	uint64_t beyond_acked; /* recoveries that found unacknowledged commands durable */
	uint64_t partial;      /* ... ending inside an append */
	uint64_t epochs;
	uint64_t segments_max;
	double startup_ms_total;
	uint64_t startups;
	uint64_t late_io; /* restarts that found writes of the killed writer in flight */
	double settle_ms_max;
	uint64_t installs;	   /* announced */
	uint64_t installs_acked;   /* ... and acknowledged before the kill */
	uint64_t install_kills;	   /* kills while an announced install was unacknowledged */
	uint64_t install_durable;  /* ... after which the log had the install anyway */
	uint64_t install_finished; /* ... or the snapshot only: the next writer finished it */
	uint64_t install_lost;	   /* ... or neither: the snapshot's file was not committed */
	uint64_t pending_install;  /* the newest install: command index + 1 (0: none) */
	uint64_t purge_lags;	   /* recoveries that found purge points lagging (crash.h) */
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t rnd(struct driver *d)
{
	d->rng = crash_mix(d->rng);
	return d->rng;
}

static void fail(struct driver *d, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));

static void fail(struct driver *d, const char *fmt, ...)
{
	va_list ap;

	if (d->pid > 0)
		kill(d->pid, SIGKILL);
	if (d->err_len)
		fprintf(stderr, "---- writer stderr (cycle %llu) ----\n%s----\n",
			(unsigned long long)d->cycle, d->err);
	printf("crash: FAILED in cycle %llu, seed %llu: ", (unsigned long long)d->cycle,
	       (unsigned long long)d->o.seed);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\ncrash: the log is kept in %s; replay the kill delays with --seed %llu\n",
	       d->log_dir, (unsigned long long)d->o.seed);
	fflush(stdout);
	exit(1);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_tree(const char *p)
{
	nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint32_t count_segments(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	uint32_t n = 0;

	if (!dp)
		return 0;
	while ((de = readdir(dp)))
		if (strncmp(de->d_name, "seg-", 4) == 0)
			n++;
	closedir(dp);
	return n;
}

/* A fresh log: when the old one has grown long enough, or at the start. */
static void new_epoch(struct driver *d)
{
	rm_tree(d->log_dir);
	rm_tree(d->snap_dir);
	crash_model_free(&d->base);
	d->n_cmds = 0;
	d->acked_cmds = 0;
	d->old_last = 0;
	d->epochs++;
}

static void write_expect(struct driver *d)
{
	struct crash_expect ex = {
		.magic = CRASH_EXPECT_MAGIC,
		.salt = d->o.seed,
		.seed = crash_mix(d->o.seed ^ (d->cycle << 32)),
		.base_last = d->base.last,
		.n_runs = d->base.n,
		.n_cmds = d->n_cmds,
		.acked_cmds = d->acked_cmds,
		.old_last = d->old_last,
		.term_next = d->term_next,
		.vote_term = d->base.vote.lid.term,
		.vote_node = d->base.vote.lid.node,
		.vote_committed = d->base.vote.committed,
		.purged = d->base.purged,
		.snap = d->base.snap,
		.snap_id = d->base.snap_id,
	};
	FILE *f = fopen(d->expect, "wb");
	if (!f || fwrite(&ex, sizeof(ex), 1, f) != 1 ||
	    (d->base.n && fwrite(d->base.runs, sizeof(*d->base.runs), d->base.n, f) != d->base.n) ||
	    (d->n_cmds && fwrite(d->cmds, sizeof(*d->cmds), d->n_cmds, f) != d->n_cmds) ||
	    fclose(f) != 0)
		fail(d, "writing %s: %s", d->expect, strerror(errno));
}

static void spawn(struct driver *d)
{
	int out[2], err[2];

	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		fail(d, "pipe: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		fail(d, "fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		execl(d->o.writer, d->o.writer, d->log_dir, d->expect, (char *)NULL);
		fprintf(stderr, "crash_test: exec %s: %s\n", d->o.writer, strerror(errno));
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	d->pid = pid;
	d->out_fd = out[0];
	d->err_fd = err[0];
	d->out_have = 0;
	d->err_len = 0;
	d->err[0] = 0;
	d->ready = false;
	d->have_snap = false;
}

/*
 * The log the writer found: the base with commands [0, log_k) and maybe part
 * of log_k, or (CRASH_LOG_SNAP) empty after the newest snapshot, the one of
 * commands [0, snap_k).
 */
static void on_ready(struct driver *d, const struct crash_rec *r)
{
	uint64_t log_k = r->a, vote_k = r->seq, last = r->b, snap_k = d->snap_k;
	struct crash_model m = { 0 };
	bool partial = false, is_snap = log_k == CRASH_LOG_SNAP;

	if (!d->have_snap || snap_k < d->acked_cmds || snap_k > d->n_cmds ||
	    (!is_snap && snap_k < log_k))
		fail(d,
		     "writer matched its snapshot after command %llu (log %llu) of %llu, %llu "
		     "acknowledged",
		     (unsigned long long)snap_k, (unsigned long long)log_k,
		     (unsigned long long)d->n_cmds, (unsigned long long)d->acked_cmds);
	if (is_snap)
		log_k = snap_k;
	if (log_k < d->acked_cmds || log_k > d->n_cmds || vote_k < d->acked_cmds ||
	    vote_k > d->n_cmds)
		fail(d, "writer matched command %llu/%llu of %llu, %llu acknowledged",
		     (unsigned long long)log_k, (unsigned long long)vote_k,
		     (unsigned long long)d->n_cmds, (unsigned long long)d->acked_cmds);
	if (crash_model_copy(&m, &d->base))
		fail(d, "out of memory");
	if (d->lag != CRASH_LAG_NONE && (is_snap || d->lag < d->acked_cmds || d->lag > log_k))
		fail(d,
		     "writer matched purge points lagging from command %llu (log %llu, %llu "
		     "acknowledged)",
		     (unsigned long long)d->lag, (unsigned long long)log_k,
		     (unsigned long long)d->acked_cmds);
	for (uint64_t k = 0; k < log_k; k++)
		if (crash_model_apply_lag(&m, &d->cmds[k], UINT64_MAX, k >= d->lag))
			fail(d, "command %llu does not apply", (unsigned long long)k);
	if (d->lag != CRASH_LAG_NONE)
		d->purge_lags++;
	for (uint64_t k = log_k; k < snap_k; k++)
		if (d->cmds[k].kind == CRASH_INSTALL) {
			m.snap = (struct lcr_log_id){ { d->cmds[k].term, d->cmds[k].node },
						      d->cmds[k].a };
			m.snap_id = d->cmds[k].b >> 1;
		}
	if (is_snap || d->finished) {
		/* The writer (or one killed before it) restarted the log after it. */
		if (m.snap.index == 0)
			fail(d, "writer finished an install without a snapshot");
		m.n = 0;
		m.purged = m.snap;
		m.last = m.snap.index;
	}
	if (m.last != last && !is_snap && !d->finished) {
		if (log_k == d->n_cmds || d->cmds[log_k].kind != CRASH_APPEND ||
		    crash_model_apply(&m, &d->cmds[log_k], last - d->cmds[log_k].a + 1) < 0)
			fail(d, "writer's match (command %llu, last %llu) does not apply",
			     (unsigned long long)log_k, (unsigned long long)last);
		partial = true;
	}
	struct crash_model canon = { 0 };
	if (crash_model_canon(&m, &canon))
		fail(d, "out of memory");
	if (m.last != last || canon.n != r->term)
		fail(d, "writer recovered last %llu in %llu runs, driver makes it %llu in %u",
		     (unsigned long long)last, (unsigned long long)r->term,
		     (unsigned long long)m.last, canon.n);
	crash_model_free(&canon);
	m.vote = d->base.vote;
	for (uint64_t k = 0; k < vote_k; k++)
		if (d->cmds[k].kind == CRASH_VOTE)
			crash_model_apply(&m, &d->cmds[k], 0);
	if (d->pending_install > d->acked_cmds) {
		/* Killed while an install was not acknowledged: what came of it. */
		d->install_kills++;
		if (is_snap || d->finished)
			d->install_finished++;
		else if (log_k >= d->pending_install)
			d->install_durable++;
		else if (snap_k < d->pending_install)
			d->install_lost++;
	}
	if (log_k > d->acked_cmds || partial)
		d->beyond_acked++;
	if (partial)
		d->partial++;
	crash_model_free(&d->base);
	d->base = m;
	d->n_cmds = 0;
	d->acked_cmds = 0;
	d->pending_install = 0;
	d->old_last = last;
	d->ready = true;
}

static void on_rec(struct driver *d, const struct crash_rec *r)
{
	if (r->kind == CRASH_SNAP) {
		if (d->ready || d->have_snap)
			fail(d, "CRASH_SNAP out of place");
		d->snap_k = r->seq;
		d->finished = r->a != 0;
		d->lag = r->b;
		d->have_snap = true;
		return;
	}
	if (r->kind == CRASH_READY) {
		if (d->ready)
			fail(d, "second READY");
		on_ready(d, r);
		return;
	}
	if (!d->ready)
		fail(d, "record %u before READY", r->kind);
	if (r->kind == CRASH_ACK) {
		if (r->seq <= d->acked_cmds || r->seq > d->n_cmds)
			fail(d, "ack of io %llu after %llu, %llu announced",
			     (unsigned long long)r->seq, (unsigned long long)d->acked_cmds,
			     (unsigned long long)d->n_cmds);
		d->acked_cmds = r->seq; /* io seq k is command k - 1 */
		return;
	}
	if (r->kind == CRASH_ACK || r->kind == CRASH_READY || r->kind < CRASH_APPEND ||
	    r->kind > CRASH_INSTALL || r->seq != d->n_cmds + 1)
		fail(d, "bad record kind %u seq %llu after %llu", r->kind,
		     (unsigned long long)r->seq, (unsigned long long)d->n_cmds);
	if (d->n_cmds == d->cap_cmds) {
		uint64_t cap = d->cap_cmds ? d->cap_cmds * 2 : 4096;
		struct crash_rec *c = realloc(d->cmds, cap * sizeof(*c));
		if (!c)
			fail(d, "out of memory");
		d->cmds = c;
		d->cap_cmds = cap;
	}
	d->cmds[d->n_cmds++] = *r;
	if ((r->kind == CRASH_APPEND || r->kind == CRASH_INSTALL) && r->term >= d->term_next)
		d->term_next = r->term + 1;
	if (r->kind == CRASH_INSTALL) {
		d->installs++;
		d->pending_install = d->n_cmds;
	}
}

/* Read what is there; false at EOF. */
static bool read_out(struct driver *d)
{
	uint8_t buf[64 * sizeof(struct crash_rec)];
	ssize_t n = read(d->out_fd, buf, sizeof(buf));

	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
		return false;
	for (ssize_t i = 0; i < n; i++) {
		d->out_buf[d->out_have++] = buf[i];
		if (d->out_have == sizeof(struct crash_rec)) {
			struct crash_rec r;
			memcpy(&r, d->out_buf, sizeof(r));
			d->out_have = 0;
			on_rec(d, &r);
		}
	}
	return true;
}

static bool read_err(struct driver *d)
{
	char buf[4096];
	ssize_t n = read(d->err_fd, buf, sizeof(buf));

	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
		return false;
	if (d->o.verbose)
		fwrite(buf, 1, (size_t)n, stderr);
	size_t k = (size_t)n < ERR_MAX - d->err_len ? (size_t)n : ERR_MAX - d->err_len;
	memcpy(d->err + d->err_len, buf, k);
	d->err_len += (uint32_t)k;
	d->err[d->err_len] = 0;
	return true;
}

/* Pump both pipes until `deadline` (ms, 0: none) or EOF on both. */
static void pump(struct driver *d, double deadline, bool *out_open, bool *err_open)
{
	while (*out_open || *err_open) {
		struct pollfd p[2] = { { *out_open ? d->out_fd : -1, POLLIN, 0 },
				       { *err_open ? d->err_fd : -1, POLLIN, 0 } };
		int timeout = -1;
		if (deadline > 0) {
			double left = deadline - now_ms();
			if (left <= 0)
				return;
			timeout = (int)left + 1;
		}
		int n = poll(p, 2, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail(d, "poll: %s", strerror(errno));
		if (p[0].revents)
			*out_open = read_out(d);
		if (p[1].revents)
			*err_open = read_err(d);
		if (!d->ready || deadline == 0)
			continue;
		return; /* READY may have moved the deadline */
	}
}

/*
 * Wait until no write of the killed writer is in flight: it locked its log
 * files (crash_writer.c, pin_files), and the locks go only when io_uring lets
 * go of the files. With --no-settle, only count the restarts that race.
 */
static void settle(struct driver *d)
{
	DIR *dp = opendir(d->log_dir);
	struct dirent *de;
	double t0 = now_ms();
	bool busy = false;

	if (!dp)
		return;
	while ((de = readdir(dp))) {
		if (strncmp(de->d_name, "seg-", 4) != 0 && strcmp(de->d_name, "meta") != 0)
			continue;
		int fd = openat(dirfd(dp), de->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK)
				fail(d, "flock %s: %s", de->d_name, strerror(errno));
			busy = true;
			if (d->o.no_settle)
				break;
			if (now_ms() - t0 > 30000)
				fail(d, "%s is still locked 30 s after the writer died",
				     de->d_name);
			usleep(200);
		}
		close(fd);
	}
	closedir(dp);
	if (busy)
		d->late_io++;
	if (now_ms() - t0 > d->settle_ms_max)
		d->settle_ms_max = now_ms() - t0;
}

/* Torn tails recovery cut; *orphans: batches after them it erased (writes in flight). */
static uint64_t count_torn(const char *s, uint64_t *orphans)
{
	uint64_t n = 0;
	while ((s = strstr(s, "cutting a torn batch"))) {
		const char *o = strstr(s, " bytes, ");
		unsigned k;
		if (o && sscanf(o, " bytes, %u later batches", &k) == 1)
			*orphans += k;
		n++;
		s++;
	}
	return n;
}

static void run_cycle(struct driver *d)
{
	bool out_open = true, err_open = true;
	bool early = rnd(d) % 100 < EARLY_KILL_PCT;
	uint32_t span = d->o.kill_max_ms - d->o.kill_min_ms + 1;
	double delay = d->o.kill_min_ms + (double)(rnd(d) % span);
	double t0 = now_ms(), deadline;

	if (count_segments(d->log_dir) >= d->o.max_segments)
		new_epoch(d);
	write_expect(d);
	spawn(d);
	if (early) {
		/* Somewhere in recovery: up to the mean time a recovery took so far. */
		double mean = d->startups ? d->startup_ms_total / d->startups : 10;
		deadline = t0 + (double)(rnd(d) % (uint64_t)(mean + 1));
		d->early_kills++;
	} else {
		deadline = t0 + READY_TIMEOUT_MS;
	}
	for (;;) {
		bool was_ready = d->ready;
		pump(d, deadline, &out_open, &err_open);
		if (!out_open && !err_open)
			break; /* it ended by itself */
		if (d->ready && !was_ready) {
			d->ready_ms = now_ms() - t0;
			d->startup_ms_total += d->ready_ms;
			d->startups++;
			if (!early)
				deadline = now_ms() + delay;
			continue;
		}
		if (now_ms() >= deadline)
			break;
	}
	if (!d->ready && !early && (out_open || err_open))
		fail(d, "the writer did not recover within %d ms", READY_TIMEOUT_MS);
	kill(d->pid, SIGKILL);
	pump(d, now_ms() + 30000, &out_open, &err_open);
	while (out_open || err_open)
		pump(d, now_ms() + 30000, &out_open, &err_open);
	int st;
	if (waitpid(d->pid, &st, 0) < 0)
		fail(d, "waitpid: %s", strerror(errno));
	d->pid = 0;
	close(d->out_fd);
	close(d->err_fd);
	settle(d);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
		if (WIFEXITED(st))
			fail(d,
			     "the writer exited with %d (1: verification, 2: recovery, 3: log "
			     "error, 4: setup)",
			     WEXITSTATUS(st));
		fail(d, "the writer died of signal %d", WTERMSIG(st));
	}
	d->torn_cuts += count_torn(d->err, &d->orphans);
	if (d->ready) {
		for (uint64_t k = 0; k < d->acked_cmds; k++) {
			if (d->cmds[k].kind == CRASH_APPEND)
				d->acked_entries += d->cmds[k].b;
			if (d->cmds[k].kind == CRASH_INSTALL)
				d->installs_acked++;
		}
		d->acked_cmds_total += d->acked_cmds;
	}
	uint32_t segs = count_segments(d->log_dir);
	if (segs > d->segments_max)
		d->segments_max = segs;
	if (d->o.verbose)
		printf("cycle %llu: %s, ready after %.1f ms, %llu commands (%llu acked), log last "
		       "%llu, %u segments\n",
		       (unsigned long long)d->cycle, early ? "early kill" : "killed", d->ready_ms,
		       (unsigned long long)d->n_cmds, (unsigned long long)d->acked_cmds,
		       (unsigned long long)d->base.last, segs);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: crash_test [--cycles N] [--seed S] [--writer PATH] [--dir BASE]\n"
		   "                  [--kill-ms MIN:MAX] [--max-segments N] [--keep] [--verbose]\n"
		   "                  [--no-settle]\n");
}

static void parse(int argc, char **argv, struct opts *o)
{
	o->cycles = 200;
	o->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	o->base = getenv("LCR_TEST_DIR") ? getenv("LCR_TEST_DIR") : "/var/tmp";
	o->kill_min_ms = 5;
	o->kill_max_ms = 80;
	o->max_segments = 48;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--keep")) {
			o->keep = true;
		} else if (!strcmp(a, "--verbose")) {
			o->verbose = true;
		} else if (!strcmp(a, "--no-settle")) {
			o->no_settle = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!v) {
			usage(stderr);
			exit(2);
		} else if (!strcmp(a, "--cycles")) {
			o->cycles = strtoull(v, NULL, 0), i++;
		} else if (!strcmp(a, "--seed")) {
			o->seed = strtoull(v, NULL, 0), i++;
		} else if (!strcmp(a, "--writer")) {
			o->writer = v, i++;
		} else if (!strcmp(a, "--dir")) {
			o->base = v, i++;
		} else if (!strcmp(a, "--max-segments")) {
			o->max_segments = (uint32_t)strtoul(v, NULL, 0), i++;
		} else if (!strcmp(a, "--kill-ms") &&
			   sscanf(v, "%u:%u", &o->kill_min_ms, &o->kill_max_ms) == 2 &&
			   o->kill_min_ms <= o->kill_max_ms) {
			i++;
		} else {
			usage(stderr);
			exit(2);
		}
	}
}

/* The writer next to this program, unless --writer says otherwise. */
static const char *writer_path(const char *given)
{
	static char p[PATH_MAX];

	if (given)
		return given;
	ssize_t n = readlink("/proc/self/exe", p, sizeof(p) - 32);
	if (n <= 0)
		return "crash_writer";
	p[n] = 0;
	char *slash = strrchr(p, '/');
	strcpy(slash ? slash + 1 : p, "crash_writer");
	return p;
}

int main(int argc, char **argv)
{
	static struct driver d;
	struct lcr_ring ring;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	parse(argc, argv, &d.o);
	d.o.writer = writer_path(d.o.writer);
	int rc = lcr_ring_init(&ring, 8);
	if (rc < 0) {
		printf("SKIP: io_uring unavailable: %s\n", strerror(-rc));
		return 77;
	}
	lcr_ring_exit(&ring);
	if (access(d.o.writer, X_OK) < 0) {
		printf("crash: writer %s: %s\n", d.o.writer, strerror(errno));
		return 1;
	}
	snprintf(d.dir, sizeof(d.dir), "%s/lcraft-crash-XXXXXX", d.o.base);
	if (!mkdtemp(d.dir)) {
		printf("crash: mkdtemp %s: %s\n", d.dir, strerror(errno));
		return 1;
	}
	snprintf(d.log_dir, sizeof(d.log_dir), "%s/log", d.dir);
	snprintf(d.snap_dir, sizeof(d.snap_dir), "%s-snap", d.log_dir);
	snprintf(d.expect, sizeof(d.expect), "%s/expect", d.dir);
	d.rng = d.o.seed;
	d.term_next = 1;
	printf("crash: %llu cycles, seed %llu, kills %u..%u ms after recovery, in %s\n",
	       (unsigned long long)d.o.cycles, (unsigned long long)d.o.seed, d.o.kill_min_ms,
	       d.o.kill_max_ms, d.dir);

	double t0 = now_ms();
	new_epoch(&d);
	for (d.cycle = 1; d.cycle <= d.o.cycles; d.cycle++) {
		run_cycle(&d);
		if (!d.o.verbose && d.cycle % 25 == 0)
			printf("crash: %llu cycles, %llu entries acknowledged, %.1f s\n",
			       (unsigned long long)d.cycle, (unsigned long long)d.acked_entries,
			       (now_ms() - t0) / 1e3);
	}
	/* One more recovery checks what the last writer left. */
	d.cycle = d.o.cycles + 1;
	bool out_open = true, err_open = true;
	write_expect(&d);
	spawn(&d);
	while (!d.ready && (out_open || err_open))
		pump(&d, now_ms() + READY_TIMEOUT_MS, &out_open, &err_open);
	if (!d.ready)
		fail(&d, "the final recovery did not get ready");
	kill(d.pid, SIGKILL);
	while (out_open || err_open)
		pump(&d, now_ms() + 30000, &out_open, &err_open);
	waitpid(d.pid, NULL, 0);
	d.pid = 0;
	settle(&d);
	d.torn_cuts += count_torn(d.err, &d.orphans);

	double wall = (now_ms() - t0) / 1e3;
	printf("crash: %llu cycles in %.1f s: %llu entries in %llu commands acknowledged, "
	       "recovery %.1f ms on average, %llu torn tails cut (%llu later batches of writes in "
	       "flight erased with them), %llu kills during recovery, "
	       "%llu recoveries found unacknowledged commands durable (%llu inside an append), "
	       "%llu logs, up to %llu segments, %llu restarts found writes of the killed "
	       "writer in flight (waited up to %.1f ms)\n",
	       (unsigned long long)d.o.cycles, wall, (unsigned long long)d.acked_entries,
	       (unsigned long long)d.acked_cmds_total,
	       d.startups ? d.startup_ms_total / d.startups : 0.0, (unsigned long long)d.torn_cuts,
	       (unsigned long long)d.orphans, (unsigned long long)d.early_kills,
	       (unsigned long long)d.beyond_acked, (unsigned long long)d.partial,
	       (unsigned long long)d.epochs, (unsigned long long)d.segments_max,
	       (unsigned long long)d.late_io, d.settle_ms_max);
	printf("crash: %llu installs announced, %llu acknowledged; %llu kills during an install: "
	       "then the log had it in %llu, the snapshot only (finished at open) in %llu, "
	       "neither in %llu, the snapshot's file but the old log (kept) in %llu; %llu "
	       "recoveries found purge points not yet written\n",
	       (unsigned long long)d.installs, (unsigned long long)d.installs_acked,
	       (unsigned long long)d.install_kills, (unsigned long long)d.install_durable,
	       (unsigned long long)d.install_finished, (unsigned long long)d.install_lost,
	       (unsigned long long)(d.install_kills - d.install_durable - d.install_finished -
				    d.install_lost),
	       (unsigned long long)d.purge_lags);
	if (!d.o.keep)
		rm_tree(d.dir);
	else
		printf("crash: kept %s\n", d.dir);
	printf("crash: PASS seed %llu\n", (unsigned long long)d.o.seed);
	return 0;
}
