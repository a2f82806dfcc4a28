/* SPDX-License-Identifier: MIT */
/*
 * A small in-memory cluster for unit tests of the core: logs in arrays,
 * messages in a FIFO, storage that flushes when told to. Everything is
 * preallocated so that the allocation test can count the core alone.
 */
#ifndef LCR_TEST_HARNESS_H
#define LCR_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"

#define TH_NODES    5
#define TH_LOG_MAX  200000
#define TH_MSGS_MAX 65536
#define TH_PAYLOAD  64
#define MS	    1000000ull

struct th_entry {
	struct lcr_log_id id;
	uint32_t type;
	uint32_t len;
	uint8_t data[TH_PAYLOAD];
};

struct th_node {
	uint32_t id;
	bool up;
	struct lcr_core *core;
	struct th_entry *log; /* log[0] is index 1 */
	uint64_t n;
	struct lcr_vote vote;	  /* as written by SAVE_VOTE */
	struct lcr_io_id io_last; /* newest io handed to storage */
	bool io_pending;
	struct lcr_log_id applied;
	uint64_t reads_ready;	    /* highest read id READS_READY covered */
	uint64_t reads_failed_last; /* last read id failed */
	int reads_failed_err;
	uint32_t role;
	uint32_t leader;
	bool auto_flush;
};

struct th_msg {
	struct lcr_msg m;
	uint32_t sender; /* node index, entries are read from its log at delivery */
	bool dropped;
};

struct th_cluster {
	uint32_t n;
	struct th_node nodes[TH_NODES];
	uint64_t now;
	struct th_msg *q;
	uint32_t q_head, q_len;
	bool cut[TH_NODES + 1][TH_NODES + 1]; /* cut[a][b]: a -> b dropped */
	/* cut_appends[a][b]: AppendEntries a -> b dropped, other messages pass. */
	bool cut_appends[TH_NODES + 1][TH_NODES + 1];
	uint64_t sent[16];	   /* messages sent, by type */
	struct lcr_entry *scratch; /* entries handed to a delivery */
	uint64_t delivered;
};

/* Fill a config for node `id` of a cluster of voters 1..n. */
void th_config(struct lcr_core_config *cfg, uint32_t id, uint32_t n);
/* Create a cluster of n voters with default configs (tweak before th_start). */
void th_init(struct th_cluster *cl, uint32_t n, void (*tweak)(struct lcr_core_config *cfg));
void th_free(struct th_cluster *cl);
/* Run one node's pending commands: storage, sends, apply. */
void th_process(struct th_cluster *cl, struct th_node *nd);
/* Make all I/O of a node durable now. */
void th_flush(struct th_cluster *cl, struct th_node *nd);
/* Deliver queued messages (and flush where auto_flush) until quiet or max steps. */
uint64_t th_run(struct th_cluster *cl, uint64_t max_steps);
/* Advance time by `ns` in ticks of 1 ms, running the cluster in between. */
void th_advance(struct th_cluster *cl, uint64_t ns);
/* Elect node `id` by triggering an election and running to quiet. */
void th_elect(struct th_cluster *cl, uint32_t id);
/* Step one event into a node and process its commands. */
int th_step(struct th_cluster *cl, struct th_node *nd, struct lcr_event *ev);
/* Propose n entries with payload byte `fill` on node id. */
int th_propose(struct th_cluster *cl, uint32_t id, uint32_t n, uint8_t fill);
struct th_node *th_node(struct th_cluster *cl, uint32_t id);
struct lcr_core_status th_status(struct th_cluster *cl, uint32_t id);

#endif
