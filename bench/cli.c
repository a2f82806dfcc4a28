/* SPDX-License-Identifier: MIT */
/*
 * lcraft-cli: talk to an lcraft-node cluster's key-value store.
 *
 *   lcraft-cli --config FILE [--group G] [--node N] [--timeout MS] COMMAND
 *     put KEY VALUE         prints OK
 *     get KEY               prints the value (linearizable read)
 *     cas KEY EXPECTED NEW  prints OK; EXPECTED "" means "KEY is absent"
 *     delete KEY            prints OK
 *     stats                 one JSON line of metrics per node
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
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "wire.h"

#define ROUND_MS 300 /* wait this long for one node before trying the next */

struct target {
	uint32_t id;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int family;
	bool resolved;
};

struct cli {
	struct lcr_app_config cfg;
	struct target nodes[LCR_PEERS_MAX];
	uint32_t n_nodes;
	int fd4, fd6;
	uint64_t client_id;
	uint64_t timeout_ms;
	uint32_t group;
	bool verbose;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int resolve(struct cli *c, struct target *t)
{
	const struct lcr_peer_addr *p = lcr_app_config_peer(&c->cfg, t->id);
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV }, *ai;
	char port[16];

	snprintf(port, sizeof(port), "%u", (unsigned)p->port + c->cfg.client_port_offset);
	int rc = getaddrinfo(p->host, port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "lcraft-cli: node %u: %s: %s\n", t->id, p->host, gai_strerror(rc));
		return -1;
	}
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	t->addr_len = ai->ai_addrlen;
	t->family = ai->ai_family;
	t->resolved = true;
	freeaddrinfo(ai);
	return 0;
}

static int sock_for(struct cli *c, int family)
{
	int *fd = family == AF_INET6 ? &c->fd6 : &c->fd4;
	if (*fd < 0) {
		*fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (*fd < 0) {
			fprintf(stderr, "lcraft-cli: socket: %s\n", strerror(errno));
			exit(2);
		}
	}
	return *fd;
}

static struct target *target_of(struct cli *c, uint32_t id)
{
	for (uint32_t i = 0; i < c->n_nodes; i++)
		if (c->nodes[i].id == id)
			return &c->nodes[i];
	return NULL;
}

struct answer {
	uint8_t status;
	uint32_t leader;
	uint32_t from;
	uint8_t *value; /* malloc'ed, NUL-terminated */
	uint32_t value_len;
};

/* Send `r` to `t` and wait up to `wait_ms` for its answer. 0, or -ETIMEDOUT. */
static int exchange(struct cli *c, struct target *t, const struct lcr_client_req *r,
		    uint64_t wait_ms, struct answer *a)
{
	static uint8_t buf[LCR_WIRE_CLIENT_DGRAM_MAX + 1];
	if (!t->resolved && resolve(c, t) < 0)
		return -EHOSTUNREACH;
	int fd = sock_for(c, t->family);
	size_t n = lcr_wire_encode_client_req(buf + LCR_WIRE_HDR, sizeof(buf) - LCR_WIRE_HDR, r);
	if (n == 0) {
		fprintf(stderr,
			"lcraft-cli: the request is too large (key <= %d bytes, values <= "
			"%d bytes)\n",
			LCR_CLIENT_KEY_MAX, LCR_CLIENT_VALUE_MAX);
		exit(2);
	}
	struct lcr_wire_hdr h = { .type = LCR_WIRE_CLIENT_REQ,
				  .cluster = c->cfg.node.cluster,
				  .group = c->group,
				  .len = (uint32_t)n,
				  .frag_count = 1 };
	size_t len = lcr_wire_seal(buf, &h);
	if (sendto(fd, buf, len, 0, (struct sockaddr *)&t->addr, t->addr_len) < 0) {
		if (c->verbose)
			fprintf(stderr, "lcraft-cli: send to node %u: %s\n", t->id,
				strerror(errno));
		return -errno;
	}
	uint64_t end = mono_ms() + wait_ms;
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= end)
			return -ETIMEDOUT;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, (int)(end - now)) <= 0)
			continue;
		ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (k < 0)
			continue; /* e.g. ECONNREFUSED: nobody listens there yet */
		struct lcr_wire_hdr rh;
		struct lcr_client_resp resp;
		if (lcr_wire_open_client(buf, (size_t)k, c->cfg.node.cluster, &rh) !=
			    LCR_DROP_NONE ||
		    rh.type != LCR_WIRE_CLIENT_RESP ||
		    lcr_wire_decode_client_resp(buf + LCR_WIRE_HDR, rh.len, &resp) !=
			    LCR_DROP_NONE ||
		    resp.id != r->id)
			continue; /* not ours, or an answer to an earlier try */
		a->status = resp.status;
		a->leader = resp.leader;
		a->from = rh.from;
		a->value_len = resp.value_len;
		a->value = malloc(resp.value_len + 1);
		if (!a->value)
			exit(4);
		if (resp.value_len)
			memcpy(a->value, resp.value, resp.value_len);
		a->value[resp.value_len] = 0;
		return 0;
	}
}

/* One request to the cluster: follow the leader, retry, until answered or out of time. */
static int request(struct cli *c, struct lcr_client_req *r, uint32_t first, struct answer *a)
{
	uint64_t deadline = mono_ms() + c->timeout_ms;
	uint32_t at = 0;
	struct target *t = NULL;
	uint64_t backoff = 10;

	if (first)
		t = target_of(c, first);
	if (!t) {
		uint64_t rnd = c->client_id;
		at = (uint32_t)(rnd % c->n_nodes);
		t = &c->nodes[at];
	}
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		uint64_t wait = deadline - now < ROUND_MS ? deadline - now : ROUND_MS;
		int rc = exchange(c, t, r, wait, a);
		if (rc == 0 && a->status == LCR_CLIENT_NOT_LEADER) {
			struct target *l = a->leader ? target_of(c, a->leader) : NULL;
			if (c->verbose)
				fprintf(stderr,
					"lcraft-cli: node %u is not the leader (leader: %u)\n",
					t->id, a->leader);
			free(a->value);
			if (l && l != t) {
				t = l;
				continue;
			}
			rc = -EAGAIN; /* no leader known yet: wait, try another */
		} else if (rc == 0 && a->status == LCR_CLIENT_RETRY) {
			if (c->verbose)
				fprintf(stderr, "lcraft-cli: node %u says retry\n", t->id);
			free(a->value);
			usleep((useconds_t)(backoff * 1000));
			backoff = backoff * 2 > 200 ? 200 : backoff * 2;
			continue;
		} else if (rc == 0) {
			return 0;
		}
		if (c->verbose && rc == -ETIMEDOUT)
			fprintf(stderr, "lcraft-cli: no answer from node %u\n", t->id);
		if (rc == -EAGAIN) {
			usleep((useconds_t)(backoff * 1000));
			backoff = backoff * 2 > 200 ? 200 : backoff * 2;
		}
		at = (uint32_t)((t - c->nodes + 1) % c->n_nodes);
		t = &c->nodes[at];
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lcraft-cli --config FILE [--group G] [--node N] [--timeout MS] [-v] "
		"COMMAND\n"
		"  put KEY VALUE          store VALUE under KEY; prints OK\n"
		"  get KEY                print KEY's value (linearizable read)\n"
		"  cas KEY EXPECTED NEW   set KEY to NEW if its value is EXPECTED (\"\": absent)\n"
		"  delete KEY             remove KEY; prints OK\n"
		"  stats                  metrics of every node (or of --node), one JSON line "
		"each\n"
		"exit status: 0 done, 1 not found or CAS failed, 2 usage, 3 no answer in time,\n"
		"4 the cluster answered with an error\n");
}

static int stats(struct cli *c, uint32_t only)
{
	int answered = 0;
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		struct target *t = &c->nodes[i];
		if (only && t->id != only)
			continue;
		struct lcr_client_req r = { .client = c->client_id,
					    .id = i + 1,
					    .op = LCR_CLIENT_STATS };
		struct answer a;
		uint64_t wait = c->timeout_ms < 1000 ? c->timeout_ms : 1000;
		if (exchange(c, t, &r, wait, &a) < 0) {
			fprintf(stderr, "lcraft-cli: node %u: no answer\n", t->id);
			continue;
		}
		if (a.status == LCR_CLIENT_OK) {
			printf("%s\n", a.value);
			answered++;
		} else {
			fprintf(stderr, "lcraft-cli: node %u: %s\n", t->id, a.value);
		}
		free(a.value);
	}
	return answered ? 0 : 3;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "group", required_argument, NULL, 'g' },
		{ "node", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct cli c;
	const char *path = NULL;
	unsigned long node = 0;
	int opt;

	c.fd4 = c.fd6 = -1;
	c.timeout_ms = 5000;
	c.group = 1;
	/* '+': stop at the first command word, so values may start with '-'
	 * after it ("put k -1"). */
	while ((opt = getopt_long(argc, argv, "+c:g:n:t:vh", longopts, NULL)) != -1) {
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
			c.group = (uint32_t)v;
			break;
		case 'n':
			node = v;
			break;
		case 't':
			c.timeout_ms = v;
			break;
		case 'v':
			c.verbose = true;
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
	if (lcr_app_config_load(&c.cfg, path, 0, why, sizeof(why)) < 0) {
		fprintf(stderr, "lcraft-cli: %s\n", why);
		return 2;
	}
	for (uint32_t i = 0; i < c.cfg.node.n_peers; i++)
		c.nodes[c.n_nodes++].id = c.cfg.node.peers[i].id;
	if (node && !target_of(&c, (uint32_t)node)) {
		fprintf(stderr, "lcraft-cli: --node %lu is not in %s\n", node, path);
		return 2;
	}
	if (getrandom(&c.client_id, sizeof(c.client_id), 0) != sizeof(c.client_id) ||
	    c.client_id == 0)
		c.client_id = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();

	const char *cmd = argv[optind];
	int nargs = argc - optind - 1;
	char **args = argv + optind + 1;
	struct lcr_client_req r = { .client = c.client_id, .id = 1 };
	if (strcmp(cmd, "stats") == 0 && nargs == 0)
		return stats(&c, (uint32_t)node);
	if (strcmp(cmd, "put") == 0 && nargs == 2) {
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
		return 2;
	}
	r.key = (const uint8_t *)args[0];
	r.key_len = (uint32_t)strlen(args[0]);
	if (r.key_len == 0 || r.key_len > LCR_CLIENT_KEY_MAX ||
	    r.value_len > LCR_CLIENT_VALUE_MAX || r.expect_len > LCR_CLIENT_VALUE_MAX) {
		fprintf(stderr, "lcraft-cli: keys are 1..%d bytes, values at most %d bytes\n",
			LCR_CLIENT_KEY_MAX, LCR_CLIENT_VALUE_MAX);
		return 2;
	}

	struct answer a;
	if (request(&c, &r, (uint32_t)node, &a) < 0) {
		fprintf(stderr, "lcraft-cli: no answer from the cluster within %llu ms\n",
			(unsigned long long)c.timeout_ms);
		return 3;
	}
	int rc = 0;
	switch (a.status) {
	case LCR_CLIENT_OK:
		if (r.op == LCR_CLIENT_GET) {
			fwrite(a.value, 1, a.value_len, stdout);
			fputc('\n', stdout);
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
	return rc;
}
