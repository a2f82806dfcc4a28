/* SPDX-License-Identifier: MIT */
/*
 * lcraft-cli: talk to an lcraft-node cluster's key-value store.
 *
 *   lcraft-cli --config FILE [--group G] [--node N] [--timeout MS]
 *              [--expect-value] COMMAND
 *     put KEY VALUE         prints OK
 *     get KEY               prints the value (linearizable read)
 *     cas KEY EXPECTED NEW  prints OK; EXPECTED "" means "KEY is absent",
 *                           or with --expect-value "KEY holds the empty value"
 *     delete KEY            prints OK
 *     stats                 one JSON line of metrics per node (the config's
 *                           and --peer's), with each group's applied index
 *                           and state digest
 *     snapshot              build a snapshot of the group now, on the leader
 *                           (or on --node, whatever its role); prints
 *                           "OK index I term T", the snapshot's last entry
 *     members               the group's membership as JSON (the leader's view,
 *                           or --node's own)
 *     add-learner ID HOST:PORT [--no-wait] [--lag N] [--catchup-ms MS]
 *     change-membership ID,ID,... [--retain]
 *     remove-node ID
 *     transfer-leader ID
 *
 * The membership commands are openraft's cluster-control tasks: each reads
 * the membership from the leader, sends the change with the membership's
 * log id (refused if another change got in first), waits until it
 * committed and prints the result; add-learner then waits (unless
 * --no-wait) until the learner is within --lag entries of the leader
 * (openraft's replication_lag_threshold, 5000).
 *
 * The nodes and their client ports come from the same file the nodes read.
 * A request goes to one node (--node, or one at random); a node that is not
 * the leader names the leader and the request follows it; a node that does
 * not answer within a round is skipped for the next one. The request keeps
 * its id across retries, so the cluster applies a write at most once even
 * when an answer is lost. Gives up after --timeout (default 5000 ms).
 *
 * Exit status: 0 done; 1 not found, or CAS failed (the current value is
 * printed on stderr); 2 bad usage or config; 3 no answer in time; 4 the
 * cluster answered with an error; the membership commands' refusals: 5
 * another change or transfer under way, 6 a node not a member or with no
 * address, 7 an invalid target, 8 no voters left, 9 the membership changed
 * since it was read, 10 not done within the leader's wait (it may still
 * be), 11 the leadership went to another node, 12 the learner did not catch
 * up within --catchup-ms.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "kv.h"
#include "wire.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lcraft-cli --config FILE [--group G] [--node N] [--timeout MS] [-v]\n"
		"                  [--expect-value] [--peer ID=HOST:PORT] [--key-file FILE]\n"
		"                  COMMAND\n"
		"  put KEY VALUE          store VALUE under KEY; prints OK\n"
		"  get KEY                print KEY's value (linearizable read)\n"
		"  cas KEY EXPECTED NEW   set KEY to NEW if its value is EXPECTED (\"\": absent;\n"
		"                         with --expect-value, \"\" is the empty value)\n"
		"  delete KEY             remove KEY; prints OK\n"
		"  stats                  metrics of every node (the config's and --peer's, or\n"
		"                         --node), one JSON line each; \"kv\" gives each\n"
		"                         group's applied_index and state digest\n"
		"  snapshot               build a snapshot of the group now on its leader (or on\n"
		"                         --node, whatever its role) and wait for it; prints\n"
		"                         \"OK index I term T\", the snapshot's last log entry\n"
		"membership (of group G; each waits until the change committed):\n"
		"  members                the membership as JSON: the leader's view (matched\n"
		"                         index and lag of each node), or --node's own\n"
		"  add-learner ID HOST:PORT [--no-wait] [--lag N] [--catchup-ms MS]\n"
		"                         add node ID (at HOST:PORT, its Raft address) as a\n"
		"                         learner, then wait until it is within N entries of\n"
		"                         the leader (default 5000; at most MS, default 60000)\n"
		"  change-membership ID,ID,... [--retain]\n"
		"                         make these nodes the voters; learners stay learners\n"
		"                         unless named; voters left out leave (with --retain\n"
		"                         they stay as learners)\n"
		"  remove-node ID         take node ID out of the voters and the learners\n"
		"  transfer-leader ID     hand the leadership to voter ID; waits until it leads\n"
		"--peer ID=HOST:PORT      a node the config does not list (started with --addr)\n"
		"--key-file FILE          the client key, instead of the config's [cluster]\n"
		"                         client_key_file (requests sealed, answers verified)\n"
		"--timeout MS             give up after MS (default 5000; membership commands\n"
		"                         15000)\n"
		"exit status: 0 done, 1 not found or CAS failed, 2 usage, 3 no answer in time,\n"
		"4 the cluster answered with an error; membership: 5 another change or\n"
		"transfer under way, 6 a node not a member or without an address, 7 invalid\n"
		"target, 8 no voters left, 9 the membership changed since it was read, 10 not\n"
		"done within the leader's wait (it may still be), 11 another node took the\n"
		"leadership, 12 the learner did not catch up in time\n");
}

/* STATS of every node the client knows (the config's, --peer's), or of `only`. */
static int stats(struct lcr_kv_client *c, uint32_t only, uint64_t timeout_ms)
{
	uint32_t ids[LCR_PEERS_MAX * 2];
	uint32_t n = lcr_kv_client_nodes(c, ids, LCR_PEERS_MAX * 2);
	int answered = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = ids[i];
		if (only && id != only)
			continue;
		struct lcr_client_req r = { .client = lcr_kv_client_id(c),
					    .id = lcr_kv_client_next_id(c),
					    .op = LCR_CLIENT_STATS };
		struct lcr_kv_answer a;
		uint64_t wait = timeout_ms < 1000 ? timeout_ms : 1000;
		if (lcr_kv_client_exchange(c, id, &r, wait, &a) < 0) {
			fprintf(stderr, "lcraft-cli: node %u: no answer\n", id);
			continue;
		}
		if (a.status == LCR_CLIENT_OK) {
			printf("%s\n", a.value);
			answered++;
		} else {
			fprintf(stderr, "lcraft-cli: node %u: %s\n", id, a.value);
		}
		free(a.value);
	}
	return answered ? 0 : 3;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * SNAPSHOT with THIS_NODE to node `node` alone: the node answers once its
 * build is done, however long that takes within the timeout, so one try
 * waits for all of it; RETRY (the build outlived the node's own wait) is
 * asked again, which waits for the same build.
 */
static int snapshot_on(struct lcr_kv_client *c, uint32_t node, const struct lcr_client_req *r,
		       uint64_t timeout_ms, struct lcr_kv_answer *a)
{
	uint64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		int rc = lcr_kv_client_exchange(c, node, r, deadline - now, a);
		if (rc < 0 && rc != -ETIMEDOUT)
			return rc;
		if (rc == 0 && a->status != LCR_CLIENT_RETRY)
			return 0;
		if (rc == 0)
			free(a->value);
		usleep(10000);
	}
}

/* The answer to SNAPSHOT: the snapshot's last log id (wire.h). */
static void print_snapshot(const struct lcr_kv_answer *a)
{
	uint64_t index = 0, term = 0;

	if (a->value_len != LCR_CLIENT_SNAPSHOT_RESULT) {
		printf("OK\n");
		return;
	}
	for (int i = 0; i < 8; i++) {
		index |= (uint64_t)a->value[i] << (8 * i);
		term |= (uint64_t)a->value[8 + i] << (8 * i);
	}
	printf("OK index %llu term %llu\n", (unsigned long long)index, (unsigned long long)term);
}

/* ---- membership ------------------------------------------------------------------ */

/* Exit statuses of the membership commands (usage above). */
enum {
	EXIT_BUSY = 5,
	EXIT_UNKNOWN_NODE = 6,
	EXIT_INVALID = 7,
	EXIT_NO_VOTERS = 8,
	EXIT_STALE = 9,
	EXIT_TIMEOUT = 10,
	EXIT_TRANSFER_FAILED = 11,
	EXIT_NOT_CAUGHT_UP = 12,
};

#define LAG_DEFAULT	   5000	 /* openraft's replication_lag_threshold */
#define CATCHUP_MS_DEFAULT 60000 /* add-learner's wait for the learner */
#define POLL_MS		   100

/* A refusal of a membership op: its message on stderr, its exit status. */
static int refusal(const struct lcr_kv_answer *a)
{
	const char *msg = a->value_len ? (const char *)a->value : "no message";

	fprintf(stderr, "lcraft-cli: node %u: %s\n", a->from, msg);
	switch (a->status) {
	case LCR_CLIENT_BUSY:
		return EXIT_BUSY;
	case LCR_CLIENT_UNKNOWN_NODE:
		return EXIT_UNKNOWN_NODE;
	case LCR_CLIENT_INVALID:
		return EXIT_INVALID;
	case LCR_CLIENT_NO_VOTERS:
		return EXIT_NO_VOTERS;
	case LCR_CLIENT_TIMEOUT:
		return EXIT_TIMEOUT;
	case LCR_CLIENT_TRANSFER_FAILED:
		return EXIT_TRANSFER_FAILED;
	default:
		return 4;
	}
}

/* A client call failed (no final answer): its exit status. */
static int call_failed(int err, uint64_t timeout_ms)
{
	if (err == -ETIMEDOUT) {
		fprintf(stderr, "lcraft-cli: no answer from the cluster within %llu ms\n",
			(unsigned long long)timeout_ms);
		return 3;
	}
	fprintf(stderr, "lcraft-cli: %s\n", strerror(-err));
	return 4;
}

static uint64_t left_ms(uint64_t deadline)
{
	uint64_t now = now_ms();
	return deadline > now ? deadline - now : 0;
}

/*
 * MEMBERS of the leader (node 0), or of `node` itself (THIS_NODE), parsed
 * into *m and learned (addresses of nodes the config does not list); the
 * JSON stays in *a (free it). 0, or an exit status.
 */
static int read_members(struct lcr_kv_client *c, uint32_t node, uint64_t deadline,
			struct lcr_members *m, struct lcr_kv_answer *a)
{
	struct lcr_client_req r = { .client = lcr_kv_client_id(c),
				    .id = lcr_kv_client_next_id(c),
				    .op = LCR_CLIENT_MEMBERS,
				    .flags = node ? LCR_CLIENT_F_THIS_NODE : 0 };
	uint64_t wait = left_ms(deadline);
	int err = node ? lcr_kv_client_exchange(c, node, &r, wait, a)
		       : lcr_kv_client_call(c, &r, 0, wait, a);

	if (err < 0)
		return call_failed(err, wait);
	if (a->status != LCR_CLIENT_OK) {
		fprintf(stderr, "lcraft-cli: node %u: MEMBERS: %s\n", a->from,
			a->value_len ? (char *)a->value : "refused");
		free(a->value);
		return 4;
	}
	if (lcr_members_parse((char *)a->value, a->value_len, m) < 0) {
		fprintf(stderr, "lcraft-cli: node %u: a MEMBERS answer that does not parse: %s\n",
			a->from, (char *)a->value);
		free(a->value);
		return 4;
	}
	lcr_kv_client_learn(c, m);
	return 0;
}

static int members(struct lcr_kv_client *c, uint32_t node, uint64_t timeout_ms)
{
	struct lcr_members m;
	struct lcr_kv_answer a;
	int rc = read_members(c, node, now_ms() + timeout_ms, &m, &a);

	if (rc)
		return rc;
	printf("%s\n", (char *)a.value);
	free(a.value);
	return 0;
}

static bool has_id(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* The newest config's voters of m. */
static const uint32_t *voters_of(const struct lcr_members *m, uint32_t *n)
{
	*n = m->configs[m->n_configs - 1].n;
	return m->configs[m->n_configs - 1].ids;
}

/* Whether m is the target, as sets, in a single config. */
static bool members_are(const struct lcr_members *m, const struct lcr_client_target *t)
{
	if (m->n_configs != 1 || m->configs[0].n != t->n_voters || m->n_learners != t->n_learners)
		return false;
	for (uint32_t i = 0; i < t->n_voters; i++)
		if (!has_id(m->configs[0].ids, m->configs[0].n, t->voters[i]))
			return false;
	for (uint32_t i = 0; i < t->n_learners; i++)
		if (!has_id(m->learners, m->n_learners, t->learners[i]))
			return false;
	return true;
}

static void print_ids(FILE *f, const uint32_t *ids, uint32_t n)
{
	if (n == 0)
		fputs("none", f);
	for (uint32_t i = 0; i < n; i++)
		fprintf(f, "%s%u", i ? "," : "", ids[i]);
}

static void print_membership(FILE *f, const struct lcr_members *m)
{
	uint32_t nv;
	const uint32_t *v = voters_of(m, &nv);

	fprintf(f, "group %u: voters ", m->group);
	print_ids(f, v, nv);
	if (m->joint) {
		fputs(" (joint with ", f);
		print_ids(f, m->configs[0].ids, m->configs[0].n);
		fputs(")", f);
	}
	fputs("; learners ", f);
	print_ids(f, m->learners, m->n_learners);
	fprintf(f, "; membership at index %llu%s; leader %u", (unsigned long long)m->log_id.index,
		m->committed ? "" : " (not committed)", m->leader);
}

/*
 * Until the leader's membership is the target and committed (a change the
 * leader took, then lost the leadership in, is finished by the next one).
 * 0, EXIT_STALE if another membership committed, or an exit status.
 */
static int await_target(struct lcr_kv_client *c, const struct lcr_client_target *t,
			uint64_t deadline, struct lcr_members *m)
{
	for (;;) {
		struct lcr_kv_answer a;
		int rc = read_members(c, 0, deadline, m, &a);
		if (rc)
			return rc;
		free(a.value);
		if (m->committed)
			return members_are(m, t) ? 0 : EXIT_STALE;
		if (left_ms(deadline) == 0) {
			fprintf(stderr, "lcraft-cli: the membership is not committed within the "
					"timeout (it may still be)\n");
			return 3;
		}
		usleep(POLL_MS * 1000);
	}
}

/*
 * CHANGE_MEMBERSHIP to `t`, compared with the membership `seen` (its log
 * id), waited for until it committed; prints the membership then. 0 or an
 * exit status.
 */
static int change(struct lcr_kv_client *c, const struct lcr_members *seen,
		  const struct lcr_client_target *t, uint64_t deadline)
{
	uint8_t value[LCR_CLIENT_TARGET_BYTES_MAX], expect[LCR_CLIENT_LOG_ID_BYTES];
	size_t n = lcr_wire_encode_client_target(value, sizeof(value), t);
	struct lcr_kv_answer a;
	struct lcr_members now;
	int rc;

	if (n == 0) {
		fprintf(stderr,
			"lcraft-cli: the target does not encode (more than %d nodes, or "
			"an address over %d bytes)\n",
			LCR_NODES_MAX, LCR_CLIENT_ADDR_MAX - 1);
		return EXIT_INVALID;
	}
	lcr_wire_encode_client_log_id(expect, &seen->log_id);
	struct lcr_client_req r = { .client = lcr_kv_client_id(c),
				    .id = lcr_kv_client_next_id(c),
				    .op = LCR_CLIENT_CHANGE_MEMBERSHIP,
				    .value = value,
				    .value_len = (uint32_t)n,
				    .expect = expect,
				    .expect_len = sizeof(expect) };
	uint64_t wait = left_ms(deadline);
	int err = lcr_kv_client_call(c, &r, seen->leader, wait, &a);
	if (err < 0)
		return call_failed(err, wait);
	switch (a.status) {
	case LCR_CLIENT_OK:
		free(a.value);
		rc = await_target(c, t, deadline, &now);
		if (rc == EXIT_STALE)
			rc = 0; /* done, and another change came after it */
		break;
	case LCR_CLIENT_CAS_FAILED:
		/* Another membership than the one read: this change's own, taken
		 * by a leader that lost its leadership (the resend went to the
		 * next), or someone else's. */
		if (lcr_members_parse((char *)a.value, a.value_len, &now) < 0)
			rc = EXIT_STALE;
		else if (!now.committed) /* a joint config a new leader finishes, maybe */
			rc = await_target(c, t, deadline, &now);
		else
			rc = members_are(&now, t) ? 0 : EXIT_STALE;
		free(a.value);
		break;
	default:
		rc = refusal(&a);
		free(a.value);
		return rc;
	}
	if (rc == EXIT_STALE) {
		fprintf(stderr, "lcraft-cli: the membership changed since it was read; now: ");
		print_membership(stderr, &now);
		fprintf(stderr, "\nread it again (members) and decide anew\n");
		return rc;
	}
	if (rc == 0) {
		printf("OK: ");
		print_membership(stdout, &now);
		printf("\n");
	}
	return rc;
}

/* A node id argument: 1..4294967295. */
static bool parse_id(const char *s, uint32_t *id)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > UINT32_MAX || s[0] == '-' || s[0] == '+')
		return false;
	*id = (uint32_t)v;
	return true;
}

/* The options after a membership command's words: --no-wait, --lag N, --catchup-ms MS,
 * --retain (the ones `allowed` names). -1 on a bad one (said on stderr). */
struct mopts {
	bool no_wait, retain;
	uint64_t lag, catchup_ms;
};

static int parse_mopts(char **args, int nargs, int first, const char *allowed, struct mopts *o)
{
	for (int i = first; i < nargs; i++) {
		const char *a = args[i];
		bool takes = strcmp(a, "--lag") == 0 || strcmp(a, "--catchup-ms") == 0;
		const char *at = strstr(allowed, a);
		size_t len = strlen(a);
		if (!at || a[0] != '-' || a[1] != '-' || (at[len] != ' ' && at[len] != '\0')) {
			fprintf(stderr, "lcraft-cli: %s: not an option of this command (%s)\n", a,
				allowed);
			return -1;
		}
		if (takes) {
			char *end;
			errno = 0;
			unsigned long long v = i + 1 < nargs ? strtoull(args[i + 1], &end, 10) : 0;
			if (i + 1 >= nargs || errno || *end || args[i + 1][0] == '-' ||
			    (v == 0 && strcmp(a, "--catchup-ms") == 0)) {
				fprintf(stderr, "lcraft-cli: %s needs a number%s\n", a,
					strcmp(a, "--lag") == 0 ? "" : " above 0");
				return -1;
			}
			if (strcmp(a, "--lag") == 0)
				o->lag = v;
			else
				o->catchup_ms = v;
			i++;
		} else if (strcmp(a, "--no-wait") == 0) {
			o->no_wait = true;
		} else if (strcmp(a, "--retain") == 0) {
			o->retain = true;
		}
	}
	return 0;
}

/* Until learner `id` is within o->lag entries of the leader (its matched index known). */
static int await_caught_up(struct lcr_kv_client *c, uint32_t id, const struct mopts *o)
{
	uint64_t deadline = now_ms() + o->catchup_ms;

	for (;;) {
		struct lcr_members m;
		struct lcr_kv_answer a;
		int rc = read_members(c, 0, deadline + 1000, &m, &a);
		if (rc)
			return rc;
		free(a.value);
		const struct lcr_members_node *n = lcr_members_find(&m, id);
		if (!n) {
			fprintf(stderr, "lcraft-cli: node %u is no longer a member of group %u\n",
				id, m.group);
			return EXIT_STALE;
		}
		if (n->progress && n->matched > 0 && n->lag <= o->lag) {
			printf("OK: node %u caught up: matched index %llu, %llu entries behind the "
			       "leader (threshold %llu)\n",
			       id, (unsigned long long)n->matched, (unsigned long long)n->lag,
			       (unsigned long long)o->lag);
			return 0;
		}
		if (left_ms(deadline) == 0) {
			fprintf(stderr,
				"lcraft-cli: node %u did not catch up within %llu ms: %s matched "
				"index %llu, %llu entries behind (threshold %llu); it stays a "
				"learner and goes on catching up\n",
				id, (unsigned long long)o->catchup_ms,
				n->progress ? "" : "no progress known,",
				(unsigned long long)n->matched, (unsigned long long)n->lag,
				(unsigned long long)o->lag);
			return EXIT_NOT_CAUGHT_UP;
		}
		usleep(POLL_MS * 1000);
	}
}

static int add_learner(struct lcr_kv_client *c, char **args, int nargs, uint64_t timeout_ms)
{
	struct mopts o = { .lag = LAG_DEFAULT, .catchup_ms = CATCHUP_MS_DEFAULT };
	struct lcr_client_target t = { 0 };
	struct lcr_members m;
	struct lcr_kv_answer a;
	uint32_t id, nv;
	int rc;

	if (nargs < 2 || !parse_id(args[0], &id)) {
		fprintf(stderr, "lcraft-cli: add-learner ID HOST:PORT: ID is a node id, "
				"1..4294967295\n");
		return 2;
	}
	if (strlen(args[1]) >= LCR_CLIENT_ADDR_MAX || lcr_kv_client_add_node(c, id, args[1]) < 0) {
		fprintf(stderr,
			"lcraft-cli: add-learner %u %s: the address is HOST:PORT, the node's Raft "
			"port (an IPv6 host in brackets: [::1]:7401), at most %d bytes\n",
			id, args[1], LCR_CLIENT_ADDR_MAX - 1);
		return 2;
	}
	if (parse_mopts(args, nargs, 2, "--no-wait --lag --catchup-ms", &o) < 0)
		return 2;
	uint64_t deadline = now_ms() + timeout_ms;
	if ((rc = read_members(c, 0, deadline, &m, &a)))
		return rc;
	free(a.value);
	const uint32_t *v = voters_of(&m, &nv);
	if (has_id(v, nv, id)) {
		printf("OK: node %u is a voter of group %u already: nothing to do\n", id, m.group);
		return 0;
	}
	const struct lcr_members_node *known = lcr_members_find(&m, id);
	if (known && known->addr[0] && strcmp(known->addr, args[1]) != 0) {
		fprintf(stderr, "lcraft-cli: node %u is a learner at %s already, not at %s\n", id,
			known->addr, args[1]);
		return EXIT_INVALID;
	}
	if (!has_id(m.learners, m.n_learners, id)) {
		t.n_voters = nv;
		memcpy(t.voters, v, nv * sizeof(*v));
		t.n_learners = m.n_learners;
		memcpy(t.learners, m.learners, m.n_learners * sizeof(*m.learners));
		if (t.n_learners == LCR_NODES_MAX) {
			fprintf(stderr, "lcraft-cli: group %u has %d learners: no room\n", m.group,
				LCR_NODES_MAX);
			return EXIT_INVALID;
		}
		t.learners[t.n_learners++] = id;
		t.n_addrs = 1;
		t.addrs[0].id = id;
		snprintf(t.addrs[0].addr, sizeof(t.addrs[0].addr), "%s", args[1]);
		if ((rc = change(c, &m, &t, deadline)))
			return rc;
	} else {
		printf("OK: node %u is a learner of group %u already\n", id, m.group);
	}
	return o.no_wait ? 0 : await_caught_up(c, id, &o);
}

/* "2,3,4" (or "" for none) into ids. */
static bool parse_id_list(const char *s, uint32_t *ids, uint32_t *n)
{
	char buf[512];

	*n = 0;
	if (strlen(s) >= sizeof(buf))
		return false;
	snprintf(buf, sizeof(buf), "%s", s);
	if (!buf[0])
		return true;
	for (char *tok = buf, *next; tok; tok = next) {
		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		uint32_t id;
		if (*n == LCR_NODES_MAX || !parse_id(tok, &id) || has_id(ids, *n, id))
			return false;
		ids[(*n)++] = id;
	}
	return true;
}

static int change_membership(struct lcr_kv_client *c, char **args, int nargs, uint64_t timeout_ms)
{
	struct mopts o = { 0 };
	struct lcr_client_target t = { 0 };
	struct lcr_members m;
	struct lcr_kv_answer a;
	uint32_t nv;
	int rc;

	if (nargs < 1 || !parse_id_list(args[0], t.voters, &t.n_voters)) {
		fprintf(stderr,
			"lcraft-cli: change-membership ID,ID,...: node ids 1..4294967295, "
			"each once, at most %d, separated by commas\n",
			LCR_NODES_MAX);
		return 2;
	}
	if (parse_mopts(args, nargs, 1, "--retain", &o) < 0)
		return 2;
	uint64_t deadline = now_ms() + timeout_ms;
	if ((rc = read_members(c, 0, deadline, &m, &a)))
		return rc;
	free(a.value);
	/* Learners stay learners unless they become voters (openraft's
	 * ReplaceAllVoters); with --retain, voters left out become learners. */
	for (uint32_t i = 0; i < m.n_learners; i++)
		if (!has_id(t.voters, t.n_voters, m.learners[i]) && t.n_learners < LCR_NODES_MAX)
			t.learners[t.n_learners++] = m.learners[i];
	const uint32_t *v = voters_of(&m, &nv);
	for (uint32_t i = 0; o.retain && i < nv; i++)
		if (!has_id(t.voters, t.n_voters, v[i]) && t.n_learners < LCR_NODES_MAX)
			t.learners[t.n_learners++] = v[i];
	return change(c, &m, &t, deadline);
}

static int remove_node(struct lcr_kv_client *c, char **args, int nargs, uint64_t timeout_ms)
{
	struct lcr_client_target t = { 0 };
	struct lcr_members m;
	struct lcr_kv_answer a;
	uint32_t id, nv;
	int rc;

	if (nargs != 1 || !parse_id(args[0], &id)) {
		fprintf(stderr, "lcraft-cli: remove-node ID: a node id, 1..4294967295\n");
		return 2;
	}
	uint64_t deadline = now_ms() + timeout_ms;
	if ((rc = read_members(c, 0, deadline, &m, &a)))
		return rc;
	free(a.value);
	const uint32_t *v = voters_of(&m, &nv);
	if (!has_id(v, nv, id) && !has_id(m.learners, m.n_learners, id)) {
		fprintf(stderr, "lcraft-cli: node %u is not a member of group %u (", id, m.group);
		print_membership(stderr, &m);
		fprintf(stderr, ")\n");
		return EXIT_UNKNOWN_NODE;
	}
	for (uint32_t i = 0; i < nv; i++)
		if (v[i] != id)
			t.voters[t.n_voters++] = v[i];
	for (uint32_t i = 0; i < m.n_learners; i++)
		if (m.learners[i] != id)
			t.learners[t.n_learners++] = m.learners[i];
	return change(c, &m, &t, deadline);
}

static int transfer_leader(struct lcr_kv_client *c, char **args, int nargs, uint64_t timeout_ms)
{
	uint8_t value[LCR_CLIENT_NODE_ID_BYTES];
	struct lcr_kv_answer a;
	uint32_t id;

	if (nargs != 1 || !parse_id(args[0], &id)) {
		fprintf(stderr, "lcraft-cli: transfer-leader ID: a node id, 1..4294967295\n");
		return 2;
	}
	for (int i = 0; i < 4; i++)
		value[i] = (uint8_t)(id >> (8 * i));
	struct lcr_client_req r = { .client = lcr_kv_client_id(c),
				    .id = lcr_kv_client_next_id(c),
				    .op = LCR_CLIENT_TRANSFER_LEADER,
				    .value = value,
				    .value_len = sizeof(value) };
	int err = lcr_kv_client_call(c, &r, 0, timeout_ms, &a);
	if (err < 0)
		return call_failed(err, timeout_ms);
	int rc = 0;
	if (a.status == LCR_CLIENT_OK)
		printf("OK: node %u leads\n", a.leader ? a.leader : id);
	else
		rc = refusal(&a);
	free(a.value);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "group", required_argument, NULL, 'g' },
		{ "node", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "expect-value", no_argument, NULL, 'e' },
		{ "peer", required_argument, NULL, 'p' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct lcr_app_config cfg;
	struct lcr_kv_client *c;
	const char *path = NULL, *key_file = NULL;
	unsigned long node = 0, group = 1, timeout_ms = 5000;
	bool verbose = false, timeout_set = false;
	const char *peers[LCR_PEERS_MAX];
	int n_peers = 0;
	uint8_t flags = 0;
	int opt;

	/* '+': stop at the first command word, so values may start with '-'
	 * after it ("put k -1"). */
	while ((opt = getopt_long(argc, argv, "+c:g:n:t:veh", longopts, NULL)) != -1) {
		char *end = NULL;
		unsigned long v = 0;
		if (optarg && opt != 'p' && opt != 'k') {
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (opt != 'c' && (errno || *end || v == 0 || v > UINT32_MAX)) {
				fprintf(stderr, "lcraft-cli: --%s %s: expected a positive number\n",
					opt == 'g'   ? "group"
					: opt == 'n' ? "node"
						     : "timeout",
					optarg);
				return 2;
			}
		}
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'g':
			group = v;
			break;
		case 'n':
			node = v;
			break;
		case 't':
			timeout_ms = v;
			timeout_set = true;
			break;
		case 'p':
			if (n_peers == LCR_PEERS_MAX) {
				fprintf(stderr, "lcraft-cli: at most %d --peer\n", LCR_PEERS_MAX);
				return 2;
			}
			peers[n_peers++] = optarg;
			break;
		case 'k':
			key_file = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'e':
			flags |= LCR_CLIENT_F_EXPECT_VALUE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || optind >= argc) {
		usage(stderr);
		return 2;
	}
	char why[512];
	if (lcr_app_config_load_client(&cfg, path, key_file, why, sizeof(why)) < 0 ||
	    lcr_kv_client_open(&c, &cfg, (uint32_t)group, why, sizeof(why)) < 0) {
		lcr_app_config_wipe_keys(&cfg);
		fprintf(stderr, "lcraft-cli: %s\n", why);
		return 2;
	}
	lcr_app_config_wipe_keys(&cfg); /* the client derived what it needs */
	int rc = 0;
	lcr_kv_client_verbose(c, verbose);
	for (int i = 0; i < n_peers; i++) {
		char *eq = strchr(peers[i], '=');
		uint32_t pid;
		if (eq)
			*eq = '\0';
		if (!eq || !parse_id(peers[i], &pid) ||
		    lcr_kv_client_add_node(c, pid, eq + 1) < 0) {
			fprintf(stderr,
				"lcraft-cli: --peer %s%s%s: expected ID=HOST:PORT (the node's "
				"Raft address)\n",
				peers[i], eq ? "=" : "", eq ? eq + 1 : "");
			rc = 2;
			goto out;
		}
	}
	if (node && !lcr_kv_client_knows(c, (uint32_t)node)) {
		fprintf(stderr, "lcraft-cli: --node %lu is not in %s (nor a --peer)\n", node, path);
		rc = 2;
		goto out;
	}

	const char *cmd = argv[optind];
	int nargs = argc - optind - 1;
	char **args = argv + optind + 1;
	/* The membership commands wait for a commit (and add-learner for the
	 * learner, on its own clock): a longer default. */
	uint64_t mtimeout = timeout_set ? timeout_ms : 15000;
	if ((flags || node) &&
	    (strcmp(cmd, "add-learner") == 0 || strcmp(cmd, "change-membership") == 0 ||
	     strcmp(cmd, "remove-node") == 0 || strcmp(cmd, "transfer-leader") == 0)) {
		fprintf(stderr, "lcraft-cli: %s goes to the leader: no --node, no --expect-value\n",
			cmd);
		rc = 2;
		goto out;
	}
	if (strcmp(cmd, "members") == 0 && nargs == 0 && !flags) {
		rc = members(c, (uint32_t)node, mtimeout);
		goto out;
	}
	if (strcmp(cmd, "add-learner") == 0) {
		rc = add_learner(c, args, nargs, mtimeout);
		goto out;
	}
	if (strcmp(cmd, "change-membership") == 0) {
		rc = change_membership(c, args, nargs, mtimeout);
		goto out;
	}
	if (strcmp(cmd, "remove-node") == 0) {
		rc = remove_node(c, args, nargs, mtimeout);
		goto out;
	}
	if (strcmp(cmd, "transfer-leader") == 0) {
		rc = transfer_leader(c, args, nargs, mtimeout);
		goto out;
	}
	struct lcr_client_req r = { .client = lcr_kv_client_id(c), .id = lcr_kv_client_next_id(c) };
	if (strcmp(cmd, "stats") == 0 && nargs == 0) {
		rc = stats(c, (uint32_t)node, timeout_ms);
		goto out;
	}
	if (strcmp(cmd, "snapshot") == 0 && nargs == 0) {
		r.op = LCR_CLIENT_SNAPSHOT;
	} else if (strcmp(cmd, "put") == 0 && nargs == 2) {
		r.op = LCR_CLIENT_PUT;
		r.value = (const uint8_t *)args[1];
		r.value_len = (uint32_t)strlen(args[1]);
	} else if (strcmp(cmd, "get") == 0 && nargs == 1) {
		r.op = LCR_CLIENT_GET;
	} else if (strcmp(cmd, "cas") == 0 && nargs == 3) {
		r.op = LCR_CLIENT_CAS;
		r.expect = (const uint8_t *)args[1];
		r.expect_len = (uint32_t)strlen(args[1]);
		r.value = (const uint8_t *)args[2];
		r.value_len = (uint32_t)strlen(args[2]);
	} else if (strcmp(cmd, "delete") == 0 && nargs == 1) {
		r.op = LCR_CLIENT_DELETE;
	} else {
		fprintf(stderr, "lcraft-cli: %s: unknown command or wrong number of arguments\n",
			cmd);
		usage(stderr);
		rc = 2;
		goto out;
	}
	if (flags && r.op != LCR_CLIENT_CAS) {
		fprintf(stderr, "lcraft-cli: --expect-value goes with cas only\n");
		rc = 2;
		goto out;
	}
	if (r.op != LCR_CLIENT_SNAPSHOT) {
		r.key = (const uint8_t *)args[0];
		r.key_len = (uint32_t)strlen(args[0]);
	}
	if ((r.op != LCR_CLIENT_SNAPSHOT && r.key_len == 0) || r.key_len > LCR_CLIENT_KEY_MAX ||
	    r.value_len > LCR_CLIENT_VALUE_MAX || r.expect_len > LCR_CLIENT_VALUE_MAX) {
		fprintf(stderr, "lcraft-cli: keys are 1..%d bytes, values at most %d bytes\n",
			LCR_CLIENT_KEY_MAX, LCR_CLIENT_VALUE_MAX);
		rc = 2;
		goto out;
	}

	struct lcr_kv_answer a;
	r.flags = flags;
	int err;
	if (r.op == LCR_CLIENT_SNAPSHOT && node) {
		r.flags = LCR_CLIENT_F_THIS_NODE;
		err = snapshot_on(c, (uint32_t)node, &r, timeout_ms, &a);
	} else {
		err = lcr_kv_client_call(c, &r, (uint32_t)node, timeout_ms, &a);
	}
	if (err == -ETIMEDOUT) {
		fprintf(stderr, "lcraft-cli: no answer from the cluster within %lu ms\n",
			timeout_ms);
		rc = 3;
		goto out;
	} else if (err < 0) {
		fprintf(stderr, "lcraft-cli: %s\n", strerror(-err));
		rc = 4;
		goto out;
	}
	switch (a.status) {
	case LCR_CLIENT_OK:
		if (r.op == LCR_CLIENT_GET) {
			fwrite(a.value, 1, a.value_len, stdout);
			fputc('\n', stdout);
		} else if (r.op == LCR_CLIENT_SNAPSHOT) {
			print_snapshot(&a);
		} else {
			printf("OK\n");
		}
		break;
	case LCR_CLIENT_NOT_FOUND:
		fprintf(stderr, "lcraft-cli: %s: not found\n", args[0]);
		rc = 1;
		break;
	case LCR_CLIENT_CAS_FAILED:
		fprintf(stderr,
			"lcraft-cli: %s: the value is not the expected one; it is: ", args[0]);
		fwrite(a.value, 1, a.value_len, stderr);
		fputc('\n', stderr);
		rc = 1;
		break;
	default:
		fprintf(stderr, "lcraft-cli: node %u: %s\n", a.from,
			a.value_len ? (char *)a.value : "error");
		rc = 4;
		break;
	}
	free(a.value);
out:
	lcr_kv_client_close(c);
	return rc;
}
