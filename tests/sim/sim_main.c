/* SPDX-License-Identifier: MIT */
/*
 * lcraft-sim: runs seeds of the deterministic simulation and reports.
 *
 *   lcraft-sim --seeds N --steps M      seeds 1..N, M fault-phase steps each
 *   lcraft-sim --seed S [--trace]       replay one seed
 *   lcraft-sim --bug NAME --seeds N     plant a bug; succeed once a check bites
 *
 * The last line is always `seeds=N steps=M violations=V`.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

static const struct {
	const char *name;
	uint32_t bit;
	const char *what;
} bugs[] = {
	{ "commit-without-quorum", LCR_BUG_COMMIT_WITHOUT_QUORUM,
	  "the leader commits with one acknowledgement fewer than a majority" },
	{ "ack-before-flush", LCR_BUG_ACK_BEFORE_FLUSH,
	  "followers acknowledge entries before they are durable" },
	{ "vote-not-persisted", LCR_BUG_VOTE_NOT_PERSISTED,
	  "a granted vote is answered at once and never written" },
	{ "grant-stale-log", LCR_BUG_GRANT_STALE_LOG,
	  "votes are granted to candidates with an older log" },
	{ "lease-ignored", LCR_BUG_LEASE_IGNORED,
	  "followers vote and time out while the leader's lease holds" },
	{ "vote-before-durable", LCR_BUG_VOTE_BEFORE_DURABLE,
	  "a candidate asks for votes and leads before its own vote is on disk" },
	{ "far-term-accepted", LCR_BUG_FAR_TERM_ACCEPTED,
	  "a message whose term is past LCR_TERM_JUMP_MAX above ours is taken in" },
};

static uint64_t cur_seed, cur_steps;
static const char *cur_bug;

static void on_abort(int sig)
{
	(void)sig;
	fprintf(stderr,
		"lcraft-sim: seed %llu aborted on a failed assertion (above)\n"
		"replay: lcraft-sim --seed %llu --steps %llu%s%s\n",
		(unsigned long long)cur_seed, (unsigned long long)cur_seed,
		(unsigned long long)cur_steps, cur_bug ? " --bug " : "", cur_bug ? cur_bug : "");
	signal(SIGABRT, SIG_DFL);
	abort();
}

static void usage(FILE *f)
{
	fprintf(f, "usage: lcraft-sim [--seeds N] [--first S] [--seed S] [--steps M]\n"
		   "                  [--bug NAME] [--trace] [--verbose] [--debug]\n"
		   "  --debug with --seed prints every message and event as it happens\n"
		   "planted bugs:\n");
	for (size_t i = 0; i < sizeof(bugs) / sizeof(bugs[0]); i++)
		fprintf(f, "  %-22s %s\n", bugs[i].name, bugs[i].what);
}

static void print_trace(const struct sim_world *w, uint32_t last)
{
	uint32_t n = w->trace_n < SIM_TRACE ? w->trace_n : SIM_TRACE;
	if (last < n)
		n = last;
	for (uint32_t i = w->trace_n - n; i < w->trace_n; i++) {
		const struct sim_trace *t = &w->trace[i % SIM_TRACE];
		fprintf(stderr, "  %10.3f ms  n%u  %s\n", (double)t->t / 1e6, t->node, t->what);
	}
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s == '\0' || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t seeds = 100, first = 1, steps = 5000, one = 0;
	bool single = false, trace = false, verbose = false, debug = false;
	uint32_t bug = 0;
	const char *bug_name = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--trace")) {
			trace = true;
		} else if (!strcmp(a, "--debug")) {
			debug = true;
		} else if (!strcmp(a, "--verbose")) {
			verbose = true;
		} else if (v && !strcmp(a, "--seeds") && !parse_u64(v, &seeds)) {
			i++;
		} else if (v && !strcmp(a, "--first") && !parse_u64(v, &first)) {
			i++;
		} else if (v && !strcmp(a, "--steps") && !parse_u64(v, &steps)) {
			i++;
		} else if (v && !strcmp(a, "--seed") && !parse_u64(v, &one)) {
			single = true;
			i++;
		} else if (v && !strcmp(a, "--bug")) {
			for (size_t k = 0; k < sizeof(bugs) / sizeof(bugs[0]); k++)
				if (!strcmp(v, bugs[k].name)) {
					bug = bugs[k].bit;
					bug_name = bugs[k].name;
				}
			if (!bug) {
				fprintf(stderr, "lcraft-sim: unknown bug '%s'\n", v);
				usage(stderr);
				return 2;
			}
			i++;
		} else {
			fprintf(stderr, "lcraft-sim: bad argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (single) {
		first = one;
		seeds = 1;
	}
	signal(SIGABRT, on_abort);
	cur_bug = bug_name;
	cur_steps = steps;

	static struct sim_world w;
	uint64_t violations = 0, total_steps = 0, writes = 0, reads = 0, elections = 0, crashes = 0,
		 ran = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t s = first; s < first + seeds; s++) {
		cur_seed = s;
		int rc = sim_run_seed(&w, s, steps, bug, debug && single);
		ran++;
		total_steps += w.steps;
		writes += w.writes_ok;
		reads += w.reads_ok;
		elections += w.elections;
		crashes += w.crashes;
		if (verbose || (single && trace))
			fprintf(stderr,
				"seed %llu: %u nodes%s%s%s, steps %llu, writes %llu, reads %llu, "
				"leaders %llu, crashes %llu, pending %llu\n",
				(unsigned long long)s, w.par.nodes,
				w.par.pre_vote ? ", pre-vote" : "",
				w.par.lease_reads ? ", lease reads" : "",
				w.par.clock_skew ? ", clock skew" : "", (unsigned long long)w.steps,
				(unsigned long long)w.writes_ok, (unsigned long long)w.reads_ok,
				(unsigned long long)w.elections, (unsigned long long)w.crashes,
				(unsigned long long)w.ops_pending);
		if (single && trace && !rc)
			print_trace(&w, SIM_TRACE);
		if (rc) {
			violations++;
			fprintf(stderr, "VIOLATION seed %llu: %s\n", (unsigned long long)s,
				w.violation);
			fprintf(stderr, "last events:\n");
			print_trace(&w, trace ? SIM_TRACE : 24);
			fprintf(stderr, "replay: lcraft-sim --seed %llu --steps %llu%s%s --trace\n",
				(unsigned long long)s, (unsigned long long)steps,
				bug_name ? " --bug " : "", bug_name ? bug_name : "");
		}
		sim_world_free(&w);
		if (bug && violations)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr,
		"ran %llu seeds (%llu steps) in %.1f s: %llu writes and %llu reads acknowledged, "
		"%llu leaders elected, %llu crashes\n",
		(unsigned long long)ran, (unsigned long long)total_steps, secs,
		(unsigned long long)writes, (unsigned long long)reads,
		(unsigned long long)elections, (unsigned long long)crashes);
	if (bug) {
		if (violations)
			printf("planted bug '%s' detected at seed %llu\n", bug_name,
			       (unsigned long long)cur_seed);
		else
			printf("planted bug '%s' NOT detected in %llu seeds\n", bug_name,
			       (unsigned long long)ran);
	}
	printf("seeds=%llu steps=%llu violations=%llu\n", (unsigned long long)ran,
	       (unsigned long long)steps, (unsigned long long)violations);
	if (bug)
		return violations ? 0 : 1;
	return violations ? 1 : 0;
}
