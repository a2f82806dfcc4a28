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
 *   5. installs snapshots now and then (two writers in three; one of them
 *      often): as the runtime does (snap_xfer.c), the snapshot file first,
 *      durably (lcr_snap_commit in <DIR>-snap), then lcr_log_install in io
 *      order, announced before the snapshot is begun. Its last log id lies
 *      in the log (kept: purged up to it), beyond its end, inside it under a
 *      newer leader, or at its purge point (the log restarts after it); a
 *      snapshot is always newer than the one before, as in Raft. Installs the
 *      log must refuse (below the purge point; keeping a log id it lacks)
 *      are tried too and must change nothing.
 * At open, as the group's open does (group.c), temporary snapshot files go,
 * the newest snapshot is read, and when the log lacks its last entry (a
 * crash between the snapshot and the log's cut) the install is finished:
 * the log restarts after it. The snapshot must be the one of a command at
 * or after the log's, never older than an acknowledged install; a log that
 * matches no command may only be the snapshot's, finished by a writer
 * killed during its recovery, and only when that install was not
 * acknowledged.
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
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "crc32c.h"
#include "log.h"
#include "log_format.h"
#include "ring.h"
#include "snap.h"

#define BATCH_MAX    64		  /* entries per append command */
#define INFLIGHT_MAX 256	  /* commands announced but not yet durable */
#define SPACE_MIN    (8ull << 20) /* arena bytes that must be free to add more */
#define READ_NEWEST  128	  /* newest entries read back after recovery */
#define READ_NEW     96		  /* sampled from entries no earlier writer recovered */
#define READ_OLD     16		  /* sampled from the others */
#define OUT_MAX	     1024	  /* records buffered for stdout */
#define SNAP_TMP     "crash-install.tmp"
#define FINISH_MS    30000 /* the open's install may take: group.c's LOG_INSTALL_WAIT_NS */

struct writer {
	struct lcr_ring ring;
	struct lcr_log *log;
	struct crash_expect ex;
	struct crash_model base;
	struct crash_rec *cmds;
	struct crash_model matched; /* the state the recovered log matched */
	uint64_t rng;
	uint32_t group;

	/* The log as commanded. */
	uint64_t last;
	uint64_t term;
	uint32_t node;
	uint64_t run_first; /* first index of the current term's run; 0: not started */
	struct lcr_vote vote;
	struct lcr_log_id purged; /* as commanded */
	struct lcr_log_id snap;	  /* the newest snapshot ... */
	uint64_t snap_id;	  /* ... and its id */
	uint32_t install_pm;	  /* installs per 1,000 commands */

	/* The snapshot being written, and the open's install. */
	struct lcr_snap_writer sw;
	bool snap_done;
	int snap_err;
	bool finishing;
	bool finish_done;

	/* Durability. */
	uint64_t seq;	     /* io seqs handed out */
	uint64_t acked_seq;  /* newest io seq reported durable */
	uint64_t acked_last; /* last index after that command: never truncated */
	int err;

	char dir[PATH_MAX]; /* the log directory, resolved */
	char snap_dir[PATH_MAX + 8];
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

static void pin_new_files(struct writer *w);

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
	if (w->finishing) {
		/* The open's install: the log's own, not a command of the driver's. */
		w->finish_done = true;
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
	w->base.purged = w->ex.purged;
	w->base.snap = w->ex.snap;
	w->base.snap_id = w->ex.snap_id;
	w->cmds = calloc(w->ex.n_cmds + 1, sizeof(*w->cmds));
	if (!w->cmds || fread(w->cmds, sizeof(*w->cmds), w->ex.n_cmds, f) != w->ex.n_cmds)
		die(4, "%s: short", path);
	fclose(f);
}

/* The recovered log as runs after its purge point, from the log's own index. */
static void recovered_model(struct writer *w, struct crash_model *r)
{
	struct lcr_log_id last = lcr_log_last(w->log), id;
	struct lcr_log_recovery rs;

	lcr_log_recovered(w->log, &rs);
	r->n = 0;
	r->purged = rs.purged;
	if (lcr_log_first_index(w->log) != rs.purged.index + 1 || last.index < rs.purged.index)
		die(1, "recovered log starts at %llu and ends at %llu, purged up to %llu",
		    (unsigned long long)lcr_log_first_index(w->log), (unsigned long long)last.index,
		    (unsigned long long)rs.purged.index);
	if (!lcr_log_id_at(w->log, rs.purged.index, &id) || !lcr_log_id_eq(id, rs.purged))
		die(1, "recovered log has no id at its purge point %llu",
		    (unsigned long long)rs.purged.index);
	for (uint64_t i = rs.purged.index + 1; i <= last.index; i++) {
		if (!lcr_log_id_at(w->log, i, &id) || id.index != i)
			die(1, "recovered log has no id for index %llu (last %llu)",
			    (unsigned long long)i, (unsigned long long)last.index);
		const struct crash_run *p = r->n ? &r->runs[r->n - 1] : NULL;
		if (!p || p->term != id.lid.term || p->node != id.lid.node)
			if (crash_model_push(r, i, id.lid.term, id.lid.node))
				die(4, "out of memory");
	}
	r->last = last.index;
	r->vote = rs.vote;
}

static void print_model(const char *what, const struct crash_model *m)
{
	fprintf(stderr,
		"  %s: purged %llu/%u@%llu, last %llu, snapshot %llu/%u@%llu (id %llx), vote "
		"%llu/%u%s, %u runs:",
		what, (unsigned long long)m->purged.lid.term, m->purged.lid.node,
		(unsigned long long)m->purged.index, (unsigned long long)m->last,
		(unsigned long long)m->snap.lid.term, m->snap.lid.node,
		(unsigned long long)m->snap.index, (unsigned long long)m->snap_id,
		(unsigned long long)m->vote.lid.term, m->vote.lid.node,
		m->vote.committed ? " committed" : "", m->n);
	uint32_t from = m->n > 8 ? m->n - 8 : 0;
	if (from)
		fprintf(stderr, " ...");
	for (uint32_t i = from; i < m->n; i++)
		fprintf(stderr, " %llu:%llu/%u", (unsigned long long)m->runs[i].first,
			(unsigned long long)m->runs[i].term, m->runs[i].node);
	fprintf(stderr, "\n");
}

/* The commands not acknowledged, up to 64: what a crash may have cut. */
static void print_cmds(const struct writer *w)
{
	static const char *kinds[] = {
		"?", "append", "truncate", "vote", "ack", "ready", "install"
	};
	uint64_t k = w->ex.acked_cmds, end = k + 64 < w->ex.n_cmds ? k + 64 : w->ex.n_cmds;

	for (; k < end; k++) {
		const struct crash_rec *c = &w->cmds[k];
		fprintf(stderr, "  command %llu: %s a %llu b %llu term %llu node %u\n",
			(unsigned long long)k, kinds[c->kind <= CRASH_INSTALL ? c->kind : 0],
			(unsigned long long)c->a, (unsigned long long)c->b,
			(unsigned long long)c->term, c->node);
	}
}

static bool snap_eq(const struct crash_model *m, const struct crash_model *r)
{
	return lcr_log_id_eq(m->snap, r->snap) && m->snap_id == r->snap_id;
}

/* The log is the snapshot's: empty after its last log id. */
static bool log_is_snap(const struct crash_model *r)
{
	return r->snap.index > 0 && lcr_log_id_eq(r->purged, r->snap) && r->last == r->snap.index;
}

#define LAG_MAX 64 /* installs keeping the log among the unacknowledged commands */

/* One state the log may be in: the commands with purge points lagging from `lag` on. */
struct cand {
	struct crash_model m;
	uint64_t lag;
};

/* The log equals `m` after its commands, or after a prefix of the append `c`. */
static bool log_match(struct writer *w, const struct crash_model *m, const struct crash_rec *c,
		      const struct crash_model *r)
{
	static struct crash_model part;

	if (crash_model_log_eq(m, r)) {
		if (crash_model_copy(&w->matched, m))
			die(4, "out of memory");
		return true;
	}
	if (!c || c->kind != CRASH_APPEND || r->last < c->a || r->last >= c->a + c->b - 1)
		return false;
	if (crash_model_copy(&part, m) || crash_model_apply(&part, c, r->last - c->a + 1))
		die(4, "bad command at %llu", (unsigned long long)c->a);
	if (!crash_model_log_eq(&part, r))
		return false;
	if (crash_model_copy(&w->matched, &part))
		die(4, "out of memory");
	return true;
}

/*
 * Find the first state, at or after the acknowledged commands, that the
 * recovered log equals: *log_k commands applied (the log possibly ending
 * inside command *log_k, an append) with the purge points of installs from
 * *lag on not yet written (CRASH_LAG_NONE: none lags; crash.h), *vote_k for
 * the vote, *snap_k (at or after *log_k) for the newest snapshot. A log that
 * equals none may be the snapshot's (finished by a writer killed in its
 * recovery) when that snapshot's install was not acknowledged: *log_k is
 * then CRASH_LOG_SNAP. The matched state goes to w->matched. False if none.
 */
static bool match_states(struct writer *w, const struct crash_model *r, uint64_t *log_k,
			 uint64_t *lag, uint64_t *vote_k, uint64_t *snap_k)
{
	static struct cand cands[LAG_MAX];
	struct crash_model cur = { 0 };
	bool log_ok = false, vote_ok = false, snap_ok = false, alt_ok = false;
	uint64_t alt_k = 0;
	uint32_t n_cands = 0;

	if (crash_model_copy(&cur, &w->base))
		die(4, "out of memory");
	for (uint64_t k = 0;; k++) {
		const struct crash_rec *c = k < w->ex.n_cmds ? &w->cmds[k] : NULL;
		if (k >= w->ex.acked_cmds) {
			if (!log_ok && log_match(w, &cur, c, r)) {
				log_ok = true;
				*log_k = k;
				*lag = CRASH_LAG_NONE;
			}
			for (uint32_t i = 0; i < n_cands && !log_ok; i++) {
				if (log_match(w, &cands[i].m, c, r)) {
					log_ok = true;
					*log_k = k;
					*lag = cands[i].lag;
				}
			}
			if (!vote_ok && lcr_vote_eq(cur.vote, r->vote)) {
				vote_ok = true;
				*vote_k = k;
			}
			if (log_ok && !snap_ok && snap_eq(&cur, r)) {
				snap_ok = true;
				*snap_k = k;
			}
			/* Right after an install that was not acknowledged. */
			if (!alt_ok && k > w->ex.acked_cmds &&
			    w->cmds[k - 1].kind == CRASH_INSTALL && snap_eq(&cur, r) &&
			    log_is_snap(r) && r->n == 0) {
				alt_ok = true;
				alt_k = k;
			}
		}
		if (!c || (log_ok && vote_ok && snap_ok))
			break;
		if (k >= w->ex.acked_cmds && c->kind == CRASH_INSTALL && (c->b & 1)) {
			/* Its purge point may lag: a state without it and those after. */
			if (n_cands == LAG_MAX)
				die(4, "more than %u installs keeping the log unacknowledged",
				    LAG_MAX);
			if (crash_model_copy(&cands[n_cands].m, &cur))
				die(4, "out of memory");
			cands[n_cands++].lag = k;
		}
		if (crash_model_apply(&cur, c, UINT64_MAX))
			die(4, "command %llu does not apply", (unsigned long long)k);
		for (uint32_t i = 0; i < n_cands; i++)
			if (crash_model_apply_lag(&cands[i].m, c, UINT64_MAX, true))
				die(4, "command %llu does not apply with purge points lagging",
				    (unsigned long long)k);
	}
	if (!log_ok && alt_ok) {
		log_ok = snap_ok = true;
		*log_k = CRASH_LOG_SNAP;
		*lag = CRASH_LAG_NONE;
		*snap_k = alt_k;
		w->matched.n = 0;
		w->matched.last = r->last;
		w->matched.purged = r->purged;
	}
	if (!log_ok || !vote_ok || !snap_ok) {
		fprintf(stderr,
			"crash_writer: the recovered %s matches no state at or after the "
			"acknowledged command %llu of %llu\n",
			!log_ok	   ? "log"
			: !vote_ok ? "vote"
				   : "snapshot (at or after the log's)",
			(unsigned long long)w->ex.acked_cmds, (unsigned long long)w->ex.n_cmds);
		struct crash_model acked = { 0 };
		if (crash_model_copy(&acked, &w->base))
			die(4, "out of memory");
		for (uint64_t k = 0; k < w->ex.acked_cmds; k++)
			crash_model_apply(&acked, &w->cmds[k], UINT64_MAX);
		print_model("acknowledged", &acked);
		print_model("final announced", &cur);
		print_model("recovered", r);
		crash_model_free(&acked);
		print_cmds(w);
	}
	crash_model_free(&cur);
	for (uint32_t i = 0; i < n_cands; i++)
		crash_model_free(&cands[i].m);
	return log_ok && vote_ok && snap_ok;
}

/* Entry `index` read back from disk: its leader (of the matched state), type, length, bytes. */
static void check_entry(struct writer *w, uint64_t index)
{
	static uint8_t got[LCR_ENTRY_MAX], want[4096];
	const struct crash_run *run = crash_model_run(&w->matched, index);
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

/* The newest snapshot, checked as the group's open reads it (meta into r). */
static void read_snapshot(struct writer *w, struct crash_model *r)
{
	struct lcr_snap_reader rd;
	char why[512];
	static uint8_t buf[64 << 10];

	int rc = lcr_snap_remove_leftovers(w->snap_dir);
	if (rc < 0)
		die(2, "%s: removing leftovers: %s", w->snap_dir, strerror(-rc));
	rc = lcr_snap_open(&rd, &w->ring, w->snap_dir, w->group, (struct lcr_allocator){ 0 }, why,
			   sizeof(why));
	if (rc < 0)
		die(1, "the newest snapshot cannot be opened: %s", why);
	r->snap = lcr_log_id_none();
	r->snap_id = 0;
	if (rc == 0)
		return;
	r->snap = rd.meta.last;
	r->snap_id = rd.meta.id;
	uint64_t size = crash_snap_size(w->ex.salt, rd.meta.id);
	uint32_t crc = 0;
	for (uint64_t off = 0; off < size; off += sizeof(buf)) {
		uint32_t n = size - off < sizeof(buf) ? (uint32_t)(size - off) : sizeof(buf);
		crash_snap_fill(w->ex.salt, rd.meta.id, off, buf, n);
		crc = lcr_crc32c(crc, buf, n);
	}
	if (rd.meta.size != size || rd.meta.data_crc != crc)
		die(1,
		    "snapshot %llu/%u@%llu (id %llx) holds %llu bytes of CRC %08x, not %llu of "
		    "%08x",
		    (unsigned long long)r->snap.lid.term, r->snap.lid.node,
		    (unsigned long long)r->snap.index, (unsigned long long)r->snap_id,
		    (unsigned long long)rd.meta.size, rd.meta.data_crc, (unsigned long long)size,
		    crc);
	lcr_snap_reader_close(&rd);
}

/*
 * What the group's open does (group.c, log_check and log_install): a log
 * purged past the newest snapshot is refused; one that lacks the snapshot's
 * last entry (and does not end at it) is restarted after it, durably. True
 * if it was.
 */
static bool finish_install(struct writer *w, struct crash_model *r)
{
	struct lcr_log_id at;

	if (r->snap.index == 0)
		return false;
	if (r->purged.index > r->snap.index)
		die(1, "the log is purged up to %llu, past its newest snapshot at %llu",
		    (unsigned long long)r->purged.index, (unsigned long long)r->snap.index);
	if (lcr_log_id_at(w->log, r->snap.index, &at) && lcr_log_id_eq(at, r->snap))
		return false;
	if (lcr_log_id_eq(r->purged, r->snap) && r->last <= r->snap.index)
		return false;
	struct lcr_io_id io = { .seq = 0, .last = r->snap };
	w->finishing = true;
	w->finish_done = false;
	int rc = lcr_log_install(w->log, r->snap, false, &io);
	if (rc < 0)
		die(2, "finishing the install at %llu: %s", (unsigned long long)r->snap.index,
		    strerror(-rc));
	time_t until = time(NULL) + FINISH_MS / 1000;
	while (!w->finish_done || lcr_log_busy(w->log)) {
		lcr_log_flush(w->log);
		pin_new_files(w); /* the reset starts a segment */
		lcr_ring_wait(&w->ring, 1000 * 1000);
		if (w->err)
			die(3, "the log failed during the open's install: %s", strerror(-w->err));
		if (time(NULL) > until)
			die(3, "the open's install is not durable after %u ms", FINISH_MS);
	}
	w->finishing = false;
	struct crash_model f = { 0 };
	recovered_model(w, &f);
	if (!lcr_log_id_eq(f.purged, r->snap) || f.last != r->snap.index || f.n != 0)
		die(1, "after the open's install the log is purged up to %llu and ends at %llu",
		    (unsigned long long)f.purged.index, (unsigned long long)f.last);
	r->n = 0;
	r->purged = f.purged;
	r->last = f.last;
	crash_model_free(&f);
	return true;
}

/* Step 2 of the header comment; fills the SNAP and READY records. */
static void verify(struct writer *w, struct crash_rec *snap, struct crash_rec *ready)
{
	struct crash_model r = { 0 };
	uint64_t log_k = 0, lag = CRASH_LAG_NONE, vote_k = 0, snap_k = 0;

	recovered_model(w, &r);
	read_snapshot(w, &r);
	if (!match_states(w, &r, &log_k, &lag, &vote_k, &snap_k))
		exit(1);
	/* Every entry has the right leader (above). Read back the newest
	 * entries, where a crash cuts, and samples of those no earlier writer
	 * read back and of the rest: each read costs a whole batch. */
	uint64_t lo = r.purged.index + 1;
	uint64_t old = w->ex.old_last < r.last ? w->ex.old_last : r.last;
	if (old < r.purged.index)
		old = r.purged.index;
	uint64_t from = r.last > READ_NEWEST ? r.last - READ_NEWEST + 1 : 1;
	for (uint64_t i = from > lo ? from : lo; i <= r.last; i++)
		check_entry(w, i);
	for (int i = 0; i < READ_NEW && r.last > old; i++)
		check_entry(w, old + 1 + rnd(w) % (r.last - old));
	for (int i = 0; i < READ_OLD && old >= lo; i++)
		check_entry(w, lo + rnd(w) % (old - lo + 1));
	bool finished = finish_install(w, &r);
	if (finished) {
		/* Only a snapshot the log has not caught up with: its install
		 * was not acknowledged, and no command after it is durable. */
		if (log_k != CRASH_LOG_SNAP && snap_k <= log_k)
			die(1, "the log (command %llu) lacks the snapshot of command %llu",
			    (unsigned long long)log_k, (unsigned long long)snap_k);
		log_k = CRASH_LOG_SNAP;
		lag = CRASH_LAG_NONE;
	}
	*snap = (struct crash_rec){ .kind = CRASH_SNAP, .seq = snap_k, .a = finished, .b = lag };
	*ready = (struct crash_rec){
		.kind = CRASH_READY, .seq = vote_k, .a = log_k, .b = r.last, .term = r.n
	};
	w->last = r.last;
	w->acked_last = r.last; /* recovered, hence durable */
	w->purged = r.purged;
	w->snap = r.snap;
	w->snap_id = r.snap_id;
	w->term = w->ex.term_next;
	if (r.n && r.runs[r.n - 1].term >= w->term)
		w->term = r.runs[r.n - 1].term + 1;
	if (r.snap.lid.term >= w->term)
		w->term = r.snap.lid.term + 1;
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

/* Where a truncation may cut: not into what is acknowledged, nor below the purge point. */
static uint64_t truncate_floor(const struct writer *w)
{
	return w->acked_last > w->purged.index ? w->acked_last : w->purged.index;
}

/* Cut the unacknowledged tail somewhere; a new leader's entries follow. */
static void cmd_truncate(struct writer *w)
{
	uint64_t floor = truncate_floor(w);
	uint64_t after = floor + rnd(w) % (w->last - floor);
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

/* Run the ring until `flag` is set: the log goes on writing meanwhile. */
static void pump_until(struct writer *w, const bool *flag, const char *what)
{
	while (!*flag) {
		lcr_log_flush(w->log);
		pin_new_files(w);
		lcr_ring_wait(&w->ring, 1000 * 1000);
		if (w->err)
			die(3, "the log failed during %s: %s", what, strerror(-w->err));
		out_flush(w); /* acknowledgements, after the log reported them */
	}
}

static void on_snap_done(void *ctx, int err)
{
	struct writer *w = ctx;

	w->snap_done = true;
	w->snap_err = err;
}

/* The snapshot of an install, durable in the snapshot folder (lcr_snap_commit). */
static void snap_write(struct writer *w, struct lcr_log_id last, uint64_t id)
{
	static uint8_t buf[64 << 10];
	uint64_t size = crash_snap_size(w->ex.salt, id);

	int rc = lcr_snap_begin(&w->sw, &w->ring, w->snap_dir, SNAP_TMP, w->group,
				(struct lcr_allocator){ 0 });
	if (rc < 0)
		die(3, "snapshot in %s: %s", w->snap_dir, strerror(-rc));
	for (uint64_t off = 0; off < size;) {
		uint32_t n = size - off < sizeof(buf) ? (uint32_t)(size - off) : sizeof(buf);
		crash_snap_fill(w->ex.salt, id, off, buf, n);
		while ((rc = lcr_snap_write(&w->sw, buf, n)) == -EAGAIN) {
			lcr_log_flush(w->log);
			pin_new_files(w);
			lcr_ring_wait(&w->ring, 1000 * 1000);
			out_flush(w);
		}
		if (rc < 0)
			die(3, "writing the snapshot: %s", strerror(-rc));
		off += n;
	}
	struct lcr_snapshot_meta meta = { last, id };
	w->snap_done = false;
	rc = lcr_snap_commit(&w->sw, &meta, on_snap_done, w);
	if (rc < 0)
		die(3, "committing the snapshot: %s", strerror(-rc));
	pump_until(w, &w->snap_done, "the snapshot's commit");
	if (w->snap_err)
		die(3, "committing the snapshot: %s", strerror(-w->snap_err));
	lcr_snap_writer_free(&w->sw);
}

/* Installs the log must refuse, leaving it as it was (no io id taken). */
static void install_refused(struct writer *w)
{
	struct lcr_io_id io = { w->seq + 1, w->vote, { { w->term, w->node }, w->last } };
	struct lcr_log_id at = { { w->term, w->node }, w->last + 1 + rnd(w) % 8 };

	/* Keeping a log it does not hold (beyond its end). */
	int rc = lcr_log_install(w->log, at, true, &io);
	if (rc != -EINVAL)
		die(3, "install keeping the log at %llu beyond its end %llu: %d, not -EINVAL",
		    (unsigned long long)at.index, (unsigned long long)w->last, rc);
	if (w->purged.index == 0)
		return;
	/* A snapshot older than the purge point. */
	at = w->purged;
	at.index -= 1 + rnd(w) % w->purged.index;
	rc = lcr_log_install(w->log, at, false, &io);
	if (rc != -EINVAL)
		die(3, "install at %llu below the purge point %llu: %d, not -EINVAL",
		    (unsigned long long)at.index, (unsigned long long)w->purged.index, rc);
}

/*
 * A snapshot received from a leader, installed. Its last log id is newer
 * than the newest snapshot's (Raft installs only a snapshot past its commit);
 * which one, by how the log holds it:
 *   kept    an entry of the log, maybe not yet durable: purged up to it;
 *   beyond  past the log's end: the log restarts after it;
 *   inside  in the log under a newer leader than the entry there: restarts;
 *   purge   at the purge point under a newer leader: restarts empty.
 * Announced, then the snapshot file, then the log's cut (snap_xfer.c's order).
 */
static void cmd_install(struct writer *w)
{
	uint64_t span = w->last - w->purged.index, v = rnd(w) % 8;
	struct lcr_log_id at;
	bool keep = false;

	if (rnd(w) % 4 == 0)
		install_refused(w);
	/* The writer's term is above every snapshot's (verify, below). */
	if (w->term <= w->snap.lid.term)
		die(4, "term %llu is not above the snapshot's %llu", (unsigned long long)w->term,
		    (unsigned long long)w->snap.lid.term);
	if (v < 3 && span > 0) {
		uint64_t index = w->purged.index + 1 + rnd(w) % span;
		if (!lcr_log_id_at(w->log, index, &at) || at.index != index)
			die(3, "the log has no id at %llu (purged %llu, last %llu)",
			    (unsigned long long)index, (unsigned long long)w->purged.index,
			    (unsigned long long)w->last);
		keep = lcr_log_id_cmp(at, w->snap) > 0;
	}
	if (!keep) {
		uint64_t t = w->snap.lid.term + 1 + rnd(w) % (w->term - w->snap.lid.term);
		at.lid = (struct lcr_leader_id){ t, 1 + (uint32_t)(rnd(w) % 7) };
		if (v < 5 || span == 0) {
			at.lid.term = w->term + rnd(w) % 2;
			at.index = w->last + 1 + rnd(w) % 300;
		} else if (v < 7) {
			at.index = w->purged.index + rnd(w) % (span + 1);
		} else {
			at.index = w->purged.index;
		}
	}
	uint64_t id = (rnd(w) >> 16) | 1;
	struct crash_rec r = { .kind = CRASH_INSTALL,
			       .node = at.lid.node,
			       .seq = w->seq + 1,
			       .a = at.index,
			       .b = id << 1 | keep,
			       .term = at.lid.term };
	out_rec(w, &r);
	out_flush(w); /* before the snapshot's file can reach the disk */
	snap_write(w, at, id);
	if (keep) {
		if (at.index > w->purged.index)
			w->purged = at;
	} else {
		w->purged = at;
		w->last = at.index;
	}
	w->snap = at;
	w->snap_id = id;
	struct lcr_io_id io = next_io(w);
	int rc = lcr_log_install(w->log, at, keep, &io);
	if (rc < 0)
		die(3, "install at %llu/%u@%llu%s: %s", (unsigned long long)at.lid.term,
		    at.lid.node, (unsigned long long)at.index, keep ? " keeping the log" : "",
		    strerror(-rc));
	if (at.lid.term >= w->term)
		w->term = at.lid.term;
	new_term(w); /* the next leader's entries follow */
}

/* A few commands, announced (stdout) before anything of them can be submitted. */
static void issue(struct writer *w)
{
	uint32_t n = 1 + (uint32_t)(rnd(w) % 4);

	for (uint32_t i = 0; i < n; i++) {
		uint64_t r = rnd(w) % 1000;
		if (r >= 1000 - w->install_pm) {
			cmd_install(w);
		} else if (r < 30 && w->last > truncate_floor(w)) {
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
	/* No installs, a few, or often enough that most kills land in one. */
	static const uint32_t install_pm[] = { 0, 4, 40 };
	w.install_pm = install_pm[rnd(&w) % 3];
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
	/* Batch writes in flight: one at a time, or two or three, whose
	 * completions may come in any order and a kill may leave a later one
	 * on disk past an earlier one that is not (recovery erases it). */
	o.writes_max = 1 + (uint32_t)(rnd(&w) % 3);
	/* Two writers in three hold a write back from the kernel now and then
	 * while later ones go on: their completions come first, and a kill
	 * then leaves a hole with batches written after it (the ring's
	 * hold_write_every), which a SIGKILL alone hardly ever does. */
	static struct lcr_ring_faults faults;
	if (rnd(&w) % 3 != 0) {
		faults.hold_write_every = 2 + (uint32_t)(rnd(&w) % 4);
		faults.hold_reaps = 2 + (uint32_t)(rnd(&w) % 10);
		w.ring.faults = &faults;
	}
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
	snprintf(w.snap_dir, sizeof(w.snap_dir), "%s-snap", w.dir);
	w.group = o.group;
	pin_files(&w);
	struct lcr_log_stats st;
	lcr_log_stats(w.log, &st);
	w.pinned_segments = st.segments_created;

	struct crash_rec snap, ready;
	verify(&w, &snap, &ready);
	out_rec(&w, &snap);
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
