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
 *     stats                 one JSON line of metrics per node
 *     snapshot              build a snapshot of the group now, on the leader
 *                           (or on --node, whatever its role); prints
 *                           "OK index I term T", the snapshot's last entry
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
 * cluster answered with an error.
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
		"                  [--expect-value] COMMAND\n"
		"  put KEY VALUE          store VALUE under KEY; prints OK\n"
		"  get KEY                print KEY's value (linearizable read)\n"
		"  cas KEY EXPECTED NEW   set KEY to NEW if its value is EXPECTED (\"\": absent;\n"
		"                         with --expect-value, \"\" is the empty value)\n"
		"  delete KEY             remove KEY; prints OK\n"
		"  stats                  metrics of every node (or of --node), one JSON line "
		"each\n"
		"  snapshot               build a snapshot of the group now on its leader (or on\n"
		"                         --node, whatever its role) and wait for it; prints\n"
		"                         \"OK index I term T\", the snapshot's last log entry\n"
		"exit status: 0 done, 1 not found or CAS failed, 2 usage, 3 no answer in time,\n"
		"4 the cluster answered with an error\n");
}

static int stats(struct lcr_kv_client *c, const struct lcr_app_config *cfg, uint32_t only,
		 uint64_t timeout_ms)
{
	int answered = 0;
	for (uint32_t i = 0; i < cfg->node.n_peers; i++) {
		uint32_t id = cfg->node.peers[i].id;
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

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "group", required_argument, NULL, 'g' },
		{ "node", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "expect-value", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct lcr_app_config cfg;
	struct lcr_kv_client *c;
	const char *path = NULL;
	unsigned long node = 0, group = 1, timeout_ms = 5000;
	bool verbose = false;
	uint8_t flags = 0;
	int opt;

	/* '+': stop at the first command word, so values may start with '-'
	 * after it ("put k -1"). */
	while ((opt = getopt_long(argc, argv, "+c:g:n:t:veh", longopts, NULL)) != -1) {
		char *end = NULL;
		unsigned long v = 0;
		if (optarg) {
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
	if (lcr_app_config_load(&cfg, path, 0, why, sizeof(why)) < 0 ||
	    lcr_kv_client_open(&c, &cfg, (uint32_t)group, why, sizeof(why)) < 0) {
		fprintf(stderr, "lcraft-cli: %s\n", why);
		return 2;
	}
	int rc = 0;
	lcr_kv_client_verbose(c, verbose);
	if (node && !lcr_kv_client_knows(c, (uint32_t)node)) {
		fprintf(stderr, "lcraft-cli: --node %lu is not in %s\n", node, path);
		rc = 2;
		goto out;
	}

	const char *cmd = argv[optind];
	int nargs = argc - optind - 1;
	char **args = argv + optind + 1;
	struct lcr_client_req r = { .client = lcr_kv_client_id(c), .id = lcr_kv_client_next_id(c) };
	if (strcmp(cmd, "stats") == 0 && nargs == 0) {
		rc = stats(c, &cfg, (uint32_t)node, timeout_ms);
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
