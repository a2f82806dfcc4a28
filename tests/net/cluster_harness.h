/* SPDX-License-Identifier: MIT */
/*
 * Three replicas of one group in one process, each node on its own thread,
 * through the public API (lcraft.h) with real io_uring storage: start and stop
 * a replica, wait for a leader all running replicas agree on, propose batches
 * on the leader's lcore, wait until every running replica applied the same
 * entries. Shared by test_cluster (UDP on loopback) and
 * test_cluster_own_transport (an in-memory transport); what differs between
 * them, the transport part of the node config, each test sets in its
 * `configure` hook.
 *
 * The state machine folds every applied entry into a hash chain, so equal
 * (count, hash) on two replicas means they applied the same entries in the
 * same order. Every function here runs on the test's thread and fails the
 * test (cmocka) when the cluster does not do what it must.
 */
#ifndef LCR_TEST_CLUSTER_HARNESS_H
#define LCR_TEST_CLUSTER_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lcraft.h"

#define CH_NODES	   3 /* replicas, unless ch_cluster.n_nodes says more */
#define CH_NODES_MAX	   5
#define CH_GROUP	   1
#define CH_ELECTION_MIN_MS 150
#define CH_ELECTION_MAX_MS 300
#define CH_HEARTBEAT_MS	   50

/* Written by the node's lcore (apply, role), read by the test's thread. */
struct ch_sm {
	_Atomic uint64_t count;	 /* entries applied */
	_Atomic uint64_t hash;	 /* FNV-1a over every applied entry and its index */
	_Atomic uint32_t role;	 /* LCR_ROLE_* */
	_Atomic uint32_t leader; /* node id, 0: none known */
	uint8_t restore[16];	 /* a snapshot being restored (the lcore's) */
	uint32_t restore_got;
};

struct ch_replica {
	struct lcr_node *node;
	struct lcr_group *group;
	struct ch_sm sm;
	pthread_t thread; /* runs lcr_node_run */
	bool running;
};

struct ch_cluster {
	char dir[256]; /* replica i keeps its data in dir/n<i> */
	/* Sets the transport part of replica `id`'s config (bind host, the peers'
	 * hosts and ports, lcr_node_config.transport, ...), after the common part. */
	void (*configure)(struct lcr_node_config *c, uint32_t id);
	/* The state machine has the six snapshot hooks: its state, (count,
	 * hash), is the snapshot (set before ch_start). */
	bool snapshots;
	/* Replicas (and peers in every node's config), 0: CH_NODES; at most
	 * CH_NODES_MAX (set before ch_start). */
	uint32_t n_nodes;
	struct ch_replica rep[CH_NODES_MAX + 1]; /* 1-based */
};

/* The replicas of `c`: n_nodes, or CH_NODES. */
uint32_t ch_nodes(const struct ch_cluster *c);

/* One batch of proposals, posted to the leader's lcore and answered there. */
struct ch_batch {
	struct lcr_group *g;
	uint32_t first; /* the first entry's number, in its text */
	uint32_t n;	/* entries */
	uint32_t size;	/* bytes per entry; 0: a short text */
	_Atomic uint32_t ok, failed, not_leader;
	_Atomic uint32_t answered;
	_Atomic uint64_t last_result; /* the applied count the last ok returned */
	_Atomic int first_err;
};

uint64_t ch_now_ns(void);

/*
 * Makes a fresh data folder `name`-XXXXXX under $LCR_TEST_DIR (default
 * /var/tmp) and remembers `configure`. Returns 0, or -errno after printing why.
 */
int ch_init(struct ch_cluster *c, const char *name,
	    void (*configure)(struct lcr_node_config *nc, uint32_t id));

/* The transport part for UDP on loopback: node i listens on base_port + 10 (i - 1)
 * (for each of c->n_peers). */
void ch_loopback(struct lcr_node_config *c, uint16_t base_port);

/* Removes the data folder (every replica stopped). */
void ch_fini(struct ch_cluster *c);

/*
 * Fills `nc` for replica `id`: cluster 42, data in `d` (dir/n<id>, `d` must
 * outlive the open), ch_nodes(c) peers (voters unless configure sets
 * core.membership), 8 MiB segments, elections in
 * CH_ELECTION_MIN_MS..CH_ELECTION_MAX_MS, heartbeats every CH_HEARTBEAT_MS;
 * then the test's configure hook.
 */
void ch_config(const struct ch_cluster *c, struct lcr_node_config *nc, uint32_t id, char *d,
	       size_t d_len);

/* Opens replica `id` (not running) with its group and runs it on a thread of its own. */
void ch_start(struct ch_cluster *c, uint32_t id);

/* ch_start in two steps: open replica `id` with its group (not running: its
 * state may be read on the test's thread), then run it. */
void ch_open(struct ch_cluster *c, uint32_t id);
void ch_run(struct ch_cluster *c, uint32_t id);

/* Stops replica `id` (running), joins its thread and closes it; its disk stays. */
void ch_stop(struct ch_cluster *c, uint32_t id);

/* Stops every replica still running. */
void ch_stop_all(struct ch_cluster *c);

/* Entries replica `id` has applied. */
uint64_t ch_applied(const struct ch_cluster *c, uint32_t id);

/* Waits up to `timeout_ms` for a leader all running replicas agree on; 0 if none. */
uint32_t ch_wait_leader(const struct ch_cluster *c, uint64_t timeout_ms);

/* Starts replicas 1..CH_NODES (any others are the test's to start) and waits up
 * to 5 s for their leader; fails without one. */
uint32_t ch_start_cluster(struct ch_cluster *c);

/*
 * Stops the leader `l` and waits for another, which must come within two
 * election timeouts (plus 100 ms of slack). Returns the new leader.
 */
uint32_t ch_fail_leader(struct ch_cluster *c, uint32_t l);

/*
 * Proposes entries first..first+n-1 of `size` bytes (0: a short text) on
 * `leader` and waits up to 20 s for every answer. A leader fresh from its
 * election has no quorum lease until a follower acks its first append
 * (CheckQuorum, as openraft): -LCR_ENOLEASE then, and the batch is tried
 * again. Counts what came back in `b`; the caller asserts on b->ok.
 */
void ch_propose(struct ch_cluster *c, uint32_t leader, struct ch_batch *b, uint32_t first,
		uint32_t n, uint32_t size);

/* Every running replica applied `count` entries, with the same hash, within `timeout_ms`. */
void ch_wait_converged(const struct ch_cluster *c, uint64_t count, uint64_t timeout_ms);

/*
 * ch_propose of n short entries, all of which must commit, then
 * ch_wait_converged on what `leader` has applied. Returns the nanoseconds the
 * proposals took to be answered.
 */
uint64_t ch_commit(struct ch_cluster *c, uint32_t leader, struct ch_batch *b, uint32_t first,
		   uint32_t n, uint64_t converge_ms);

#endif
