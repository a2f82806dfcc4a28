/* SPDX-License-Identifier: MIT */
/*
 * Embedding lcraft in an application (docs/api.md walks through it).
 *
 * A replicated counter: each committed entry adds its 8-byte value to the
 * counter. The application's own thread (main) hands work to the group's
 * lcore with lcr_node_post(); the lcore proposes, and the completion, which
 * runs on the lcore, hands the result back through an atomic.
 *
 *   example_embed DATA_DIR [ID PEERS...]
 *
 * With only DATA_DIR it runs a one-node cluster on 127.0.0.1:7901 (useful to
 * try the API; a one-node cluster has no fault tolerance). With ID and PEERS
 * ("1=127.0.0.1:7901 2=127.0.0.1:7902 3=127.0.0.1:7903") it is node ID of that
 * cluster: start all of them, and the leader's process does the work.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lcraft/lcraft.h>

/* ---- the state machine: runs on the group's lcore only ---------------------- */

struct counter {
	uint64_t total; /* only the lcore writes it */
	_Atomic uint64_t published;
	_Atomic uint32_t role;
};

static void counter_apply(void *sm, const struct lcr_entry *e, void *out, uint32_t *out_len)
{
	struct counter *c = sm;
	uint64_t add = 0;

	if (e->len == sizeof(add))
		memcpy(&add, e->data, sizeof(add));
	c->total += add;
	atomic_store(&c->published, c->total);
	/* The result goes to the proposer's completion: the total after this entry. */
	memcpy(out, &c->total, sizeof(c->total));
	*out_len = sizeof(c->total);
}

static void counter_role(void *sm, uint32_t role, uint32_t leader)
{
	struct counter *c = sm;
	(void)leader;
	atomic_store(&c->role, role);
}

/* ---- work handed to the lcore ---------------------------------------------------- */

struct add_task {
	struct lcr_group *group;
	uint64_t amount;
	_Atomic int done; /* 0 pending, 1 ok, -1 failed */
	int err;
	uint64_t total;
};

static void added(void *ctx, int err, uint32_t leader, const void *result, uint32_t len)
{
	struct add_task *t = ctx;
	(void)leader;
	t->err = err;
	if (err == 0 && len == sizeof(t->total))
		memcpy(&t->total, result, sizeof(t->total));
	atomic_store(&t->done, err == 0 ? 1 : -1);
}

/* Runs on the lcore: propose; `added` runs later, once the entry is applied. */
static void add_on_lcore(struct lcr_node *n, void *arg)
{
	struct add_task *t = arg;
	(void)n;
	int rc = lcr_propose(t->group, &t->amount, sizeof(t->amount), added, t);
	if (rc < 0) {
		t->err = rc;
		atomic_store(&t->done, -1);
	}
}

/* ---- the application ------------------------------------------------------------- */

static void *run_node(void *arg)
{
	int rc = lcr_node_run(arg);
	if (rc < 0)
		fprintf(stderr, "example: lcr_node_run: %s\n", strerror(-rc));
	return NULL;
}

static int parse_peer(const char *s, struct lcr_peer_addr *p)
{
	unsigned id, port;
	char host[64];
	if (sscanf(s, "%u=%63[^:]:%u", &id, host, &port) != 3 || id == 0 || port == 0 ||
	    port > 65535)
		return -1;
	p->id = id;
	snprintf(p->host, sizeof(p->host), "%s", host);
	p->port = (uint16_t)port;
	return 0;
}

int main(int argc, char **argv)
{
	struct lcr_node_config cfg;
	struct lcr_node *node;
	struct lcr_group *group;
	static struct counter counter;
	char why[256];

	if (argc < 2 || argc == 3) {
		fprintf(stderr, "usage: example_embed DATA_DIR [ID PEERS...]\n");
		return 2;
	}
	lcr_node_config_default(&cfg);
	cfg.cluster = 99;
	cfg.data_dir = argv[1];
	cfg.bind_host = "127.0.0.1";
	if (argc == 2) {
		cfg.id = 1;
		cfg.n_peers = 1;
		cfg.peers[0] = (struct lcr_peer_addr){ .id = 1, .host = "127.0.0.1", .port = 7901 };
	} else {
		cfg.id = (uint32_t)atoi(argv[2]);
		for (int i = 3; i < argc && cfg.n_peers < LCR_PEERS_MAX; i++)
			if (parse_peer(argv[i], &cfg.peers[cfg.n_peers++]) < 0) {
				fprintf(stderr, "example: %s: expected ID=HOST:PORT\n", argv[i]);
				return 2;
			}
	}

	/* Open the node (storage directory, sockets), then its group. */
	if (lcr_node_open(&node, &cfg, why, sizeof(why)) < 0) {
		fprintf(stderr, "example: %s\n", why);
		return 1;
	}
	struct lcr_sm_ops ops = { .apply = counter_apply, .role = counter_role };
	if (lcr_group_open(node, 1, &ops, &counter, &group, why, sizeof(why)) < 0) {
		fprintf(stderr, "example: %s\n", why);
		lcr_node_close(node);
		return 1;
	}

	/* The lcores run on their own threads; this thread stays the application's. */
	pthread_t lcores;
	pthread_create(&lcores, NULL, run_node, node);

	/* Wait until this node leads (a follower would get -LCR_ENOTLEADER). */
	for (int i = 0; i < 500 && atomic_load(&counter.role) != LCR_ROLE_LEADER; i++)
		usleep(10000);
	int status = 0;
	if (atomic_load(&counter.role) == LCR_ROLE_LEADER) {
		for (uint64_t amount = 1; amount <= 10; amount++) {
			struct add_task t = { .group = group, .amount = amount };
			for (int tries = 0; tries < 100; tries++) {
				atomic_store(&t.done, 0);
				while (lcr_node_post(node, lcr_group_lcore(node, 1), add_on_lcore,
						     &t) == -LCR_EFULL)
					usleep(100);
				while (atomic_load(&t.done) == 0)
					usleep(100);
				/* A leader fresh from its election has no quorum lease
				 * until a follower acknowledges it: try again shortly. */
				if (t.err != -LCR_ENOLEASE)
					break;
				usleep(10000);
			}
			if (atomic_load(&t.done) < 0) {
				fprintf(stderr, "example: add %llu: %s\n",
					(unsigned long long)amount, lcr_strerror(t.err));
				status = 1;
				break;
			}
			printf("added %llu: total %llu\n", (unsigned long long)amount,
			       (unsigned long long)t.total);
		}
	} else {
		printf("node %u follows; the counter is %llu\n", cfg.id,
		       (unsigned long long)atomic_load(&counter.published));
		sleep(2);
	}

	/* Stop the lcores (also async-signal-safe), then free everything. */
	lcr_node_stop(node);
	pthread_join(lcores, NULL);
	lcr_node_close(node);
	return status;
}
