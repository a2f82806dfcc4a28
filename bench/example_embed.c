/* SPDX-License-Identifier: MIT */
/*
 * Embedding lcraft in an application (docs/api.md walks through it).
 *
 * A replicated counter: each committed entry adds its 8-byte value to the
 * counter. The application's own thread (main) submits proposals from where
 * it is (lcr_submit): lcraft hands each to the group's lcore, and the
 * completed request, with the state machine's result and the entry's log id,
 * comes back on a completion queue that main waits on.
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
		/* Requests come back on this queue; this thread waits on it. */
		struct lcr_cq *cq = NULL;
		int rc = lcr_cq_open(node, 16, &cq);
		if (rc < 0) {
			fprintf(stderr, "example: lcr_cq_open: %s\n", lcr_strerror(rc));
			status = 1;
		}
		for (uint64_t amount = 1; status == 0 && amount <= 10; amount++) {
			uint64_t total = 0;
			struct lcr_req req = {
				.op = LCR_REQ_PROPOSE,
				.group = 1,
				.data = &amount,
				.len = sizeof(amount),
				.timeout_ns =
					5000000000ull, /* answered within 5 s, whatever happens */
				.result = &total,
				.result_cap = sizeof(total),
			};
			struct lcr_req *done;
			for (int tries = 0; tries < 100; tries++) {
				while ((rc = lcr_submit(cq, &req)) == -LCR_EFULL)
					usleep(100);
				if (rc == 0 && lcr_cq_wait(cq, &done, 1, 0) == 1)
					rc = done->err;
				/* A leader fresh from its election has no quorum lease
				 * until a follower acknowledges it: try again shortly. */
				if (rc != -LCR_ENOLEASE)
					break;
				usleep(10000);
			}
			if (rc < 0) {
				fprintf(stderr, "example: add %llu: %s\n",
					(unsigned long long)amount, lcr_strerror(rc));
				status = 1;
				break;
			}
			printf("added %llu: total %llu (entry %llu of term %llu)\n",
			       (unsigned long long)amount, (unsigned long long)total,
			       (unsigned long long)req.log_id.index,
			       (unsigned long long)req.log_id.lid.term);
		}
		/* Stop the lcores, close the node (it answers what is still out),
		 * then the queue. */
		lcr_node_stop(node);
		pthread_join(lcores, NULL);
		lcr_node_close(node);
		if (cq)
			lcr_cq_close(cq);
		return status;
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
