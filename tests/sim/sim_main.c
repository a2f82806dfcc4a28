/* SPDX-License-Identifier: MIT */
/*
 * lcraft-sim: runs seeds of the deterministic simulation and reports.
 *
 *   lcraft-sim --seeds N --steps M      seeds 1..N, M fault-phase steps each
 *   lcraft-sim --seed S [--trace]       replay one seed
 *   lcraft-sim --bug NAME --seeds N     plant a bug; succeed once a check bites
 *   lcraft-sim --first-violation ...    stop at the first violation, succeed on it
 *                                       (how tests/mutants/run looks for a kill)
 *
 * Every seed has a budget: its fault-phase steps, SIM_LIVE_STEPS_MAX steps to
 * recover after healing, and --budget-s seconds of wall time. A seed that
 * runs past it (a loop in the core, a livelock at one instant) is reported
 * as a `hang` violation with its replay command, like any other.
 *
 * The last line is always `seeds=N steps=M violations=V snapshots=N installs=N
 * purges=N`.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>
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
	{ "no-step-down", LCR_BUG_NO_STEP_DOWN,
	  "a leader that heard from no quorum for a lease and an election timeout leads on" },
	{ "follower-read-stale", LCR_BUG_FOLLOWER_READ_STALE,
	  "a follower serves a read once the leader answers, before applying its read index" },
	{ "snapshot-stale-install", LCR_BUG_SNAPSHOT_STALE_INSTALL,
	  "a follower installs a snapshot older than what it has committed" },
	{ "purge-inflight", LCR_BUG_PURGE_INFLIGHT,
	  "the leader purges entries that requests in flight to a follower still carry" },
	{ "joint-single-quorum", LCR_BUG_JOINT_SINGLE_QUORUM,
	  "under a joint config the leader commits on the new config's quorum alone" },
	{ "removed-still-votes", LCR_BUG_REMOVED_STILL_VOTES,
	  "a candidate counts the votes of the committed config, voters being removed included" },
	{ "addrs-dropped", LCR_BUG_ADDRS_DROPPED,
	  "a membership change drops the addresses of the nodes its target gives none for" },
	{ "retain-dropped", LCR_BUG_RETAIN_DROPPED,
	  "a joint entry omits the voters its target keeps as learners" },
};

static uint64_t cur_seed, cur_steps;
static const char *cur_bug;
static bool hang_is_success; /* --bug or --first-violation: a hang is the catch */
/* What the wall-time alarm writes, formatted before each seed: the handler
 * only calls write() and _exit(). */
static char hang_msg[512];
static size_t hang_len;

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

static void on_alarm(int sig)
{
	(void)sig;
	ssize_t rc = write(STDERR_FILENO, hang_msg, hang_len);
	(void)rc;
	_exit(hang_is_success ? 0 : 1);
}

/* Arm the wall-time budget of one seed (0: none). */
static void arm_budget(uint64_t seed, uint64_t steps, uint64_t budget_s, const char *bug,
		       uint64_t ran)
{
	struct itimerval it = { { 0, 0 }, { (time_t)budget_s, 0 } };
	int n = snprintf(hang_msg, sizeof(hang_msg),
			 "VIOLATION seed %llu: hang: the seed ran past its wall-time budget of "
			 "%llu s\nreplay: lcraft-sim --seed %llu --steps %llu%s%s --trace\n"
			 "seeds=%llu steps=%llu violations=1\n",
			 (unsigned long long)seed, (unsigned long long)budget_s,
			 (unsigned long long)seed, (unsigned long long)steps, bug ? " --bug " : "",
			 bug ? bug : "", (unsigned long long)(ran + 1), (unsigned long long)steps);
	hang_len = n > 0 && (size_t)n < sizeof(hang_msg) ? (size_t)n : 0;
	setitimer(ITIMER_REAL, &it, NULL);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: lcraft-sim [--seeds N] [--first S] [--seed S] [--steps M]\n"
		   "                  [--bug NAME] [--trace] [--verbose] [--debug]\n"
		   "                  [--first-violation] [--budget-s S]\n"
		   "  --debug with --seed prints every message and event as it happens\n"
		   "  --first-violation stops at the first violation and exits 0 on it\n"
		   "  --budget-s: wall-time budget per seed (default 60); past it, or past\n"
		   "    its step budget, a seed is reported as a hang\n");
	sim_describe_checks(f);
	fprintf(f, "planted bugs:\n");
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
	uint64_t seeds = 100, first = 1, steps = 5000, one = 0, budget_s = 60;
	bool single = false, trace = false, verbose = false, debug = false, stop_first = false;
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
		} else if (!strcmp(a, "--first-violation")) {
			stop_first = true;
		} else if (v && !strcmp(a, "--budget-s") && !parse_u64(v, &budget_s)) {
			i++;
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
	signal(SIGALRM, on_alarm);
	hang_is_success = bug || stop_first;
	cur_bug = bug_name;
	cur_steps = steps;

	static struct sim_world w;
	uint64_t violations = 0, total_steps = 0, writes = 0, reads = 0, follower_reads = 0,
		 runs_stalls = 0, elections = 0, crashes = 0, ran = 0, snapshots = 0, installs = 0,
		 purges = 0, mchanges = 0;
	uint64_t scen_seeds[SIM_SCEN_KINDS + 1] = { 0 }, scen_started[SIM_SCEN_KINDS + 1] = { 0 },
					     scen_done[SIM_SCEN_KINDS + 1] = { 0 },
					     scen_seeds_done[SIM_SCEN_KINDS + 1] = { 0 };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t s = first; s < first + seeds; s++) {
		cur_seed = s;
		if (budget_s)
			arm_budget(s, steps, budget_s, bug_name, ran);
		int rc = sim_run_seed(&w, s, steps, bug, debug && single);
		ran++;
		total_steps += w.steps;
		writes += w.writes_ok;
		reads += w.reads_ok;
		follower_reads += w.follower_reads_ok;
		runs_stalls += w.runs_stalls;
		elections += w.elections;
		crashes += w.crashes;
		snapshots += w.snapshots;
		installs += w.installs;
		purges += w.purges;
		mchanges += w.membership_changes;
		for (uint32_t k = 1; k <= SIM_SCEN_KINDS; k++) {
			scen_seeds[k] += w.par.scenario == k;
			scen_started[k] += w.scen_started[k];
			scen_done[k] += w.scen_done[k];
			scen_seeds_done[k] += w.scen_done[k] > 0;
		}
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
		if ((bug || stop_first) && violations)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr,
		"ran %llu seeds (%llu steps) in %.1f s: %llu writes and %llu reads acknowledged "
		"(%llu by followers), %llu leaders elected, %llu crashes\n",
		(unsigned long long)ran, (unsigned long long)total_steps, secs,
		(unsigned long long)writes, (unsigned long long)reads,
		(unsigned long long)follower_reads, (unsigned long long)elections,
		(unsigned long long)crashes);
	/* How often each scenario ran to its end in the seeds that picked it. */
	fprintf(stderr, "scenarios (done in seeds that picked it; done/started):");
	for (uint32_t k = 1; k <= SIM_SCEN_KINDS; k++)
		fprintf(stderr, " %s %llu/%llu seeds (%llu/%llu)", sim_scenario_name(k),
			(unsigned long long)scen_seeds_done[k], (unsigned long long)scen_seeds[k],
			(unsigned long long)scen_done[k], (unsigned long long)scen_started[k]);
	fprintf(stderr, "\n");
	if (runs_stalls)
		fprintf(stderr,
			"%llu seeds ended with no leader possible: every voter that could win "
			"held leader_runs_max runs and may not lead before a purge (a capacity "
			"limit, not a violation)\n",
			(unsigned long long)runs_stalls);
	if (bug) {
		if (violations)
			printf("planted bug '%s' detected at seed %llu\n", bug_name,
			       (unsigned long long)cur_seed);
		else
			printf("planted bug '%s' NOT detected in %llu seeds\n", bug_name,
			       (unsigned long long)ran);
	}
	printf("seeds=%llu steps=%llu violations=%llu snapshots=%llu installs=%llu purges=%llu "
	       "membership_changes=%llu\n",
	       (unsigned long long)ran, (unsigned long long)steps, (unsigned long long)violations,
	       (unsigned long long)snapshots, (unsigned long long)installs,
	       (unsigned long long)purges, (unsigned long long)mchanges);
	if (bug || stop_first)
		return violations ? 0 : 1;
	return violations ? 1 : 0;
}
