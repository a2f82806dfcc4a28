/* Crash test writer: recover a log, check it against what was acknowledged, append until killed. */
/*
 *   crash_writer DIR EXPECT
 *
 * DIR holds the log; EXPECT is the driver's expectation file (crash.h), or
 * "-" for a fresh log. The writer
 *   1. opens the log (lcr_log_open: the real recovery path);
 *   2. checks it: the log must be the base with the announced commands applied
 *      up to some command at or after the acknowledged ones (and a prefix of
 *      the next append at most), every entry with its leader, and a sample of
 *      entries read back from disk with their payload, length and type; the
 *      vote must be one the commands set, at or after the acknowledged one;
 *   3. says READY and which command the log matched;
 *   4. appends as fast as it can (1..64 entries per command, payloads of
 *      1..4096 bytes, a blank entry first under each leader), sometimes
 *      truncating the unacknowledged tail and going on under a higher term,
 *      sometimes saving a higher vote. Every command is announced on stdout
 *      before it can reach the disk, every io id the log reports durable
 *      after it did. The batch limit, the io mode and the batch alignment
 *      (512 or 4096 bytes, so that 512-byte batches share 4 KiB blocks
 *      with acknowledged ones) change from run to run.
 * Exit codes: 1 verification failed (what differed on stderr), 2 recovery
 * failed, 3 the log failed or refused a command, 4 usage or setup.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crash.h"
#include "log.h"
#include "log_format.h"
#include "ring.h"

#define BATCH_MAX    64		  /* entries per append command */
#define INFLIGHT_MAX 256	  /* commands announced but not yet durable */
#define SPACE_MIN    (8ull << 20) /* arena bytes that must be free to add more */
#define READ_NEWEST  128	  /* newest entries read back after recovery */
#define READ_NEW     96		  /* sampled from entries no earlier writer recovered */
#define READ_OLD     16		  /* sampled from the others */
#define OUT_MAX	     1024	  /* records buffered for stdout */

struct writer {
	struct lcr_ring ring;
	struct lcr_log *log;
	struct crash_expect ex;
	struct crash_model base;
	struct crash_rec *cmds;
	uint64_t rng;

	/* The log as commanded. */
	uint64_t last;
	uint64_t term;
	uint32_t node;
	uint64_t run_first; /* first index of the current term's run; 0: not started */
	struct lcr_vote vote;

	/* Durability. */
	uint64_t seq;	     /* io seqs handed out */
	uint64_t acked_seq;  /* newest io seq reported durable */
	uint64_t acked_last; /* last index after that command: never truncated */
	int err;

	char dir[PATH_MAX]; /* the log directory, resolved */
	uint64_t pinned_segments;

	struct crash_rec out[OUT_MAX];
	uint32_t n_out;
};

static uint64_t rnd(struct writer *w)
{
	w->rng = crash_mix(w->rng);
	return w->rng;
}

__attribute__((noreturn, format(printf, 2, 3))) static void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "crash_writer: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(code);
}

static void out_flush(struct writer *w)
{
	const char *p = (const char *)w->out;
	size_t left = w->n_out * sizeof(w->out[0]);
	while (left > 0) {
		ssize_t n = write(STDOUT_FILENO, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(4, "writing to the driver: %s", strerror(errno));
		p += n;
		left -= (size_t)n;
	}
	w->n_out = 0;
}

static void out_rec(struct writer *w, const struct crash_rec *r)
{
	if (w->n_out == OUT_MAX)
		out_flush(w);
	w->out[w->n_out++] = *r;
}

static void on_done(void *ctx, const struct lcr_io_id *io, int err)
{
	struct writer *w = ctx;

	if (err) {
		w->err = err;
		return;
	}
	/* Each io id once, in order: the core asserts the same (on_flushed). */
	if (io->seq == w->acked_seq)
		die(3, "the log reported io seq %llu durable twice", (unsigned long long)io->seq);
	if (io->seq < w->acked_seq || io->seq > w->seq)
		die(3, "the log reported io seq %llu durable after %llu (%llu handed out)",
		    (unsigned long long)io->seq, (unsigned long long)w->acked_seq,
		    (unsigned long long)w->seq);
	w->acked_seq = io->seq;
	w->acked_last = io->last.index;
	struct crash_rec r = { .kind = CRASH_ACK, .seq = io->seq };
	out_rec(w, &r);
}

/* ---- recovery check ------------------------------------------------------------------ */

static void read_expect(struct writer *w, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die(4, "%s: %s", path, strerror(errno));
	if (fread(&w->ex, sizeof(w->ex), 1, f) != 1 || w->ex.magic != CRASH_EXPECT_MAGIC)
		die(4, "%s: not an expectation file", path);
	for (uint64_t i = 0; i < w->ex.n_runs; i++) {
		struct crash_run r;
		if (fread(&r, sizeof(r), 1, f) != 1)
			die(4, "%s: short", path);
		if (crash_model_push(&w->base, r.first, r.term, r.node))
			die(4, "out of memory");
	}
	w->base.last = w->ex.base_last;
	w->base.vote.lid.term = w->ex.vote_term;
	w->base.vote.lid.node = w->ex.vote_node;
	w->base.vote.committed = w->ex.vote_committed != 0;
	w->cmds = calloc(w->ex.n_cmds + 1, sizeof(*w->cmds));
	if (!w->cmds || fread(w->cmds, sizeof(*w->cmds), w->ex.n_cmds, f) != w->ex.n_cmds)
		die(4, "%s: short", path);
	fclose(f);
}

/* The recovered log as runs, from the log's own index. */
static void recovered_model(struct writer *w, struct crash_model *r)
{
	struct lcr_log_id last = lcr_log_last(w->log), id;
	struct lcr_log_recovery rs;

	if (lcr_log_first_index(w->log) != 1)
		die(1, "recovered log starts at %llu; nothing was purged",
		    (unsigned long long)lcr_log_first_index(w->log));
	for (uint64_t i = 1; i <= last.index; i++) {
		if (!lcr_log_id_at(w->log, i, &id) || id.index != i)
			die(1, "recovered log has no id for index %llu (last %llu)",
			    (unsigned long long)i, (unsigned long long)last.index);
		const struct crash_run *p = r->n ? &r->runs[r->n - 1] : NULL;
		if (!p || p->term != id.lid.term || p->node != id.lid.node)
			if (crash_model_push(r, i, id.lid.term, id.lid.node))
				die(4, "out of memory");
	}
	r->last = last.index;
	lcr_log_recovered(w->log, &rs);
	r->vote = rs.vote;
}

static void print_model(const char *what, const struct crash_model *m)
{
	fprintf(stderr, "  %s: last %llu, vote %llu/%u%s, %u runs:", what,
		(unsigned long long)m->last, (unsigned long long)m->vote.lid.term, m->vote.lid.node,
		m->vote.committed ? " committed" : "", m->n);
	uint32_t from = m->n > 8 ? m->n - 8 : 0;
	if (from)
		fprintf(stderr, " ...");
	for (uint32_t i = from; i < m->n; i++)
		fprintf(stderr, " %llu:%llu/%u", (unsigned long long)m->runs[i].first,
			(unsigned long long)m->runs[i].term, m->runs[i].node);
	fprintf(stderr, "\n");
}

/*
 * Find the first state, at or after the acknowledged commands, that the
 * recovered log equals: *log_k commands applied (the log possibly ending
 * inside command *log_k, an append), *vote_k for the vote. False if none.
 */
static bool match_states(struct writer *w, const struct crash_model *r, uint64_t *log_k,
			 uint64_t *vote_k)
{
	struct crash_model cur = { 0 }, part = { 0 };
	bool log_ok = false, vote_ok = false;

	if (crash_model_copy(&cur, &w->base))
		die(4, "out of memory");
	for (uint64_t k = 0;; k++) {
		const struct crash_rec *c = k < w->ex.n_cmds ? &w->cmds[k] : NULL;
		if (k >= w->ex.acked_cmds) {
			if (!log_ok && crash_model_log_eq(&cur, r)) {
				log_ok = true;
				*log_k = k;
			}
			if (!log_ok && c && c->kind == CRASH_APPEND && r->last >= c->a &&
			    r->last < c->a + c->b - 1) {
				if (crash_model_copy(&part, &cur) ||
				    crash_model_apply(&part, c, r->last - c->a + 1))
					die(4, "bad command %llu", (unsigned long long)k);
				if (crash_model_log_eq(&part, r)) {
					log_ok = true;
					*log_k = k;
				}
			}
			if (!vote_ok && lcr_vote_eq(cur.vote, r->vote)) {
				vote_ok = true;
				*vote_k = k;
			}
		}
		if (!c || (log_ok && vote_ok))
			break;
		if (crash_model_apply(&cur, c, UINT64_MAX))
			die(4, "command %llu does not apply", (unsigned long long)k);
	}
	if (!log_ok || !vote_ok) {
		fprintf(stderr,
			"crash_writer: the recovered %s matches no state at or after the "
			"acknowledged command %llu of %llu\n",
			!log_ok ? "log" : "vote", (unsigned long long)w->ex.acked_cmds,
			(unsigned long long)w->ex.n_cmds);
		struct crash_model acked = { 0 };
		if (crash_model_copy(&acked, &w->base))
			die(4, "out of memory");
		for (uint64_t k = 0; k < w->ex.acked_cmds; k++)
			crash_model_apply(&acked, &w->cmds[k], UINT64_MAX);
		print_model("acknowledged", &acked);
		print_model("final announced", &cur);
		print_model("recovered", r);
		crash_model_free(&acked);
	}
	crash_model_free(&cur);
	crash_model_free(&part);
	return log_ok && vote_ok;
}

static void check_entry(struct writer *w, const struct crash_model *r, uint64_t index)
{
	static uint8_t got[LCR_ENTRY_MAX], want[4096];
	const struct crash_run *run = crash_model_run(r, index);
	struct lcr_entry e;

	int n = lcr_log_read(w->log, index, &e, got, sizeof(got));
	if (n < 0)
		die(1, "reading entry %llu back: %s", (unsigned long long)index, strerror(-n));
	uint64_t key = crash_entry_key(w->ex.salt, index, run->term, run->node);
	uint32_t len = crash_entry_len(key, index == run->first);
	uint32_t type = index == run->first ? LCR_ENTRY_BLANK : LCR_ENTRY_NORMAL;
	crash_entry_fill(key, want, len);
	if (e.id.index != index || e.id.lid.term != run->term || e.id.lid.node != run->node ||
	    e.type != type || e.len != len || memcmp(got, want, len) != 0)
		die(1,
		    "entry %llu read back as %llu/%u index %llu type %u len %u%s; expected "
		    "%llu/%u type %u len %u",
		    (unsigned long long)index, (unsigned long long)e.id.lid.term, e.id.lid.node,
		    (unsigned long long)e.id.index, e.type, e.len,
		    e.len == len && memcmp(got, want, len) ? " with other bytes" : "",
		    (unsigned long long)run->term, run->node, type, len);
}

/* Step 2 of the header comment; fills the READY record. */
static void verify(struct writer *w, struct crash_rec *ready)
{
	struct crash_model r = { 0 };
	uint64_t log_k = 0, vote_k = 0;

	recovered_model(w, &r);
	if (!match_states(w, &r, &log_k, &vote_k))
		exit(1);
	/* Every entry has the right leader (above). Read back the newest
	 * entries, where a crash cuts, and samples of those no earlier writer
	 * read back and of the rest: each read costs a whole batch. */
	uint64_t old = w->ex.old_last < r.last ? w->ex.old_last : r.last;
	for (uint64_t i = r.last > READ_NEWEST ? r.last - READ_NEWEST + 1 : 1; i <= r.last; i++)
		check_entry(w, &r, i);
	for (int i = 0; i < READ_NEW && r.last > old; i++)
		check_entry(w, &r, old + 1 + rnd(w) % (r.last - old));
	for (int i = 0; i < READ_OLD && old > 0; i++)
		check_entry(w, &r, 1 + rnd(w) % old);
	*ready = (struct crash_rec){
		.kind = CRASH_READY, .seq = vote_k, .a = log_k, .b = r.last, .term = r.n
	};
	w->last = r.last;
	w->acked_last = r.last; /* recovered, hence durable */
	w->term = w->ex.term_next;
	if (r.n && r.runs[r.n - 1].term >= w->term)
		w->term = r.runs[r.n - 1].term + 1;
	w->vote = r.vote;
	crash_model_free(&r);
}

/*
 * Lock every file of the log that this process has open. A flock belongs to
 * the open file, which io_uring requests in flight keep alive after the
 * process is killed: writes of a killed writer go on landing for tens of ms
 * after it was reaped. The driver waits for these locks before it starts the
 * next writer, so that no write of the dead one lands after the next one
 * recovered. Called before anything queued on a new file is submitted.
 */
static void pin_files(struct writer *w)
{
	size_t dlen = strlen(w->dir);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d)
		die(4, "/proc/self/fd: %s", strerror(errno));
	while ((de = readdir(d))) {
		char link[300], path[PATH_MAX];
		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		ssize_t n = readlink(link, path, sizeof(path) - 1);
		if (n <= 0)
			continue;
		path[n] = 0;
		const char *name = path + dlen + 1;
		if ((size_t)n <= dlen + 1 || strncmp(path, w->dir, dlen) != 0 ||
		    path[dlen] != '/' ||
		    (strncmp(name, "seg-", 4) != 0 && strcmp(name, "meta") != 0))
			continue;
		if (flock(atoi(de->d_name), LOCK_EX | LOCK_NB) < 0)
			fprintf(stderr,
				"crash_writer: %s is still locked: writes of a killed "
				"writer are in flight\n",
				path);
	}
	closedir(d);
}

static void pin_new_files(struct writer *w)
{
	struct lcr_log_stats st;

	lcr_log_stats(w->log, &st);
	if (st.segments_created != w->pinned_segments) {
		pin_files(w);
		w->pinned_segments = st.segments_created;
	}
}

/* ---- writing ------------------------------------------------------------------------- */

static struct lcr_io_id next_io(struct writer *w)
{
	struct lcr_io_id io = { ++w->seq, w->vote, { { w->term, w->node }, w->last } };
	return io;
}

static void new_term(struct writer *w)
{
	w->term++;
	w->node = 1 + (uint32_t)(rnd(w) % 7);
	w->run_first = 0;
}

static void cmd_append(struct writer *w)
{
	static uint8_t bufs[BATCH_MAX][4096];
	struct lcr_entry e[BATCH_MAX];
	uint32_t n = 1 + (uint32_t)(rnd(w) % BATCH_MAX);

	if (!w->run_first)
		w->run_first = w->last + 1;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t index = w->last + 1 + i;
		uint64_t key = crash_entry_key(w->ex.salt, index, w->term, w->node);
		e[i].id = (struct lcr_log_id){ { w->term, w->node }, index };
		e[i].type = index == w->run_first ? LCR_ENTRY_BLANK : LCR_ENTRY_NORMAL;
		e[i].len = crash_entry_len(key, index == w->run_first);
		crash_entry_fill(key, bufs[i], e[i].len);
		e[i].data = bufs[i];
	}
	struct crash_rec r = { CRASH_APPEND, w->node, w->seq + 1, w->last + 1, n, w->term };
	out_rec(w, &r);
	w->last += n;
	struct lcr_io_id io = next_io(w);
	int rc = lcr_log_append(w->log, e, n, &io);
	if (rc < 0)
		die(3, "append of %u entries at %llu: %s", n, (unsigned long long)r.a,
		    strerror(-rc));
}

/* Cut the unacknowledged tail somewhere; a new leader's entries follow. */
static void cmd_truncate(struct writer *w)
{
	uint64_t after = w->acked_last + rnd(w) % (w->last - w->acked_last);
	struct crash_rec r = { .kind = CRASH_TRUNCATE, .seq = w->seq + 1, .a = after };

	out_rec(w, &r);
	w->last = after;
	new_term(w);
	struct lcr_io_id io = next_io(w);
	int rc = lcr_log_truncate(w->log, after, &io);
	if (rc < 0)
		die(3, "truncate after %llu: %s", (unsigned long long)after, strerror(-rc));
}

static void cmd_vote(struct writer *w)
{
	struct lcr_vote v = { { w->vote.lid.term + 1 + rnd(w) % 2, 1 + (uint32_t)(rnd(w) % 7) },
			      rnd(w) % 2 == 0 };
	struct crash_rec r = { CRASH_VOTE, v.lid.node, w->seq + 1, v.committed, 0, v.lid.term };

	out_rec(w, &r);
	w->vote = v;
	struct lcr_io_id io = next_io(w);
	int rc = lcr_log_save_vote(w->log, v, &io);
	if (rc < 0)
		die(3, "save vote: %s", strerror(-rc));
}

/* A few commands, announced (stdout) before anything of them can be submitted. */
static void issue(struct writer *w)
{
	uint32_t n = 1 + (uint32_t)(rnd(w) % 4);

	for (uint32_t i = 0; i < n; i++) {
		uint64_t r = rnd(w) % 1000;
		if (r < 30 && w->last > w->acked_last) {
			cmd_truncate(w);
		} else if (r < 50) {
			cmd_vote(w);
		} else {
			if (r < 60)
				new_term(w); /* a new leader appends after the old entries */
			cmd_append(w);
		}
	}
	out_flush(w);
}

int main(int argc, char **argv)
{
	static struct writer w;
	struct lcr_log_opts o;
	char why[512];

	if (argc != 3)
		die(4, "usage: crash_writer DIR EXPECT|-");
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(argv[2], "-") != 0) {
		read_expect(&w, argv[2]);
	} else {
		w.ex.magic = CRASH_EXPECT_MAGIC;
		w.ex.term_next = 1;
		w.ex.seed = (uint64_t)getpid();
	}
	w.rng = w.ex.seed;
	w.node = 1 + (uint32_t)(rnd(&w) % 7);
	int rc = lcr_ring_init(&w.ring, 256);
	if (rc < 0)
		die(4, "io_uring: %s", strerror(-rc));
	/* Small segments, so that they roll over; batch limits and io modes
	 * change from one writer to the next (the files do not record them). */
	static const uint32_t batch_max[] = { 64u << 10, 256u << 10, 1u << 20 };
	lcr_log_opts_default(&o, argv[1]);
	o.segment_bytes = 4u << 20;
	o.arena_bytes = 16u << 20;
	o.batch_bytes_max = batch_max[rnd(&w) % 3];
	o.io_mode = LCR_IO_DIRECT_DSYNC + (uint32_t)(rnd(&w) % 3);
	/* Batch alignment: the device's (512 bytes on most disks) twice as
	 * often as 4096, which starts a new segment when the last one was
	 * written otherwise (so do 512 after 4096). Refused where the device
	 * needs more than 512 under O_DIRECT: then the device's. */
	static const uint32_t block_bytes[] = { 0, 512, 4096 };
	o.block_bytes = block_bytes[rnd(&w) % 3];
	o.done = on_done;
	o.ctx = &w;
	rc = lcr_log_open(&w.log, &w.ring, &o, why, sizeof(why));
	if (rc == -EINVAL && o.block_bytes == 512) {
		o.block_bytes = 0;
		rc = lcr_log_open(&w.log, &w.ring, &o, why, sizeof(why));
	}
	if (rc < 0)
		die(2, "recovery failed: %s: %s", strerror(-rc), why);
	if (!realpath(argv[1], w.dir))
		die(4, "%s: %s", argv[1], strerror(errno));
	pin_files(&w);
	struct lcr_log_stats st;
	lcr_log_stats(w.log, &st);
	w.pinned_segments = st.segments_created;

	struct crash_rec ready;
	verify(&w, &ready);
	out_rec(&w, &ready);
	out_flush(&w);

	for (;;) {
		bool room = w.seq - w.acked_seq < INFLIGHT_MAX && lcr_log_space(w.log) >= SPACE_MIN;
		if (room)
			issue(&w);
		lcr_log_flush(w.log);
		pin_new_files(&w);
		if (room) {
			lcr_ring_submit(&w.ring);
			lcr_ring_reap(&w.ring);
		} else {
			lcr_ring_wait(&w.ring, 1000 * 1000);
		}
		if (w.err)
			die(3, "the log failed: %s", strerror(-w.err));
		out_flush(&w); /* acknowledgements, after the log reported them */
	}
}
