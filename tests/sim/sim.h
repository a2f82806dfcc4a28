/* SPDX-License-Identifier: MIT */
/*
 * lcraft-sim: whole clusters of Raft cores in one process over a simulated
 * network, disk and clock, all driven by one seed.
 *
 *   sim.c          the world: event queue, nodes, disks, network, clients, nemesis
 *   sim_scenario.c nemesis scenarios: orchestrated fault sequences with a goal
 *   sim_check.c    invariants checked after every step, and the history check
 *   sim_main.c     command line, seeds loop, reporting
 *
 * Everything random comes from the seed's PRNG; nothing depends on pointers,
 * wall-clock time or hash-table order, so `--seed S` replays a run exactly.
 */
#ifndef LCR_SIM_H
#define LCR_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bugs.h"
#include "core.h"
#include "linz.h"

/* Simulated time is in nanoseconds. */
#define MS 1000000ull
#define US 1000ull

#define SIM_NODES_MAX	7
#define SIM_KEYS	3
#define SIM_CLIENTS_MAX 8
#define SIM_TRACE	48
/* Steps a seed may take to recover after healing; past it the seed hangs. */
#define SIM_LIVE_STEPS_MAX 2000000
/* The leader lease of the simulated cores: election_timeout_max_ms (300). */
#define SIM_LEASE_NS (300 * 1000000ull)
/* CheckQuorum: a leader that heard from no quorum for a lease and an
 * election timeout (election_timeout_min_ms, 150) steps down. */
#define SIM_STEP_DOWN_NS (SIM_LEASE_NS + 150 * 1000000ull)

/* What clients write: a put or a compare-and-set on one key. */
struct sim_payload {
	uint32_t op; /* SIM_OP_PUT, SIM_OP_CAS */
	uint32_t client;
	uint64_t key;
	uint64_t value;
	uint64_t expect;
	uint64_t op_id;
};

enum { SIM_OP_PUT = 1, SIM_OP_CAS = 2 };

/* A log entry as the simulated storage keeps it. */
struct sim_entry {
	struct lcr_log_id id;
	uint32_t type;
	uint32_t len;
	uint64_t prefix_hash; /* hash of this entry and every one before it */
	union {
		struct sim_payload p;		     /* normal entries */
		uint8_t m[LCR_MEMBERSHIP_BYTES_MAX]; /* membership entries: the payload */
	};
};

/* A snapshot: the state machine after applying everything up to meta.last. */
struct sim_snap {
	struct lcr_snapshot_meta meta; /* meta.last.index 0: none */
	struct lcr_membership membership;
	uint64_t kv[SIM_KEYS];
	uint64_t sm_hash;
};

struct sim_log {
	struct sim_entry *e; /* e[0] is index 1 */
	uint64_t n;
	uint64_t cap;
};

/* A storage command waiting to become durable. */
struct sim_op {
	uint32_t kind; /* SIM_DISK_VOTE, SIM_DISK_APPEND, SIM_DISK_TRUNCATE */
	struct lcr_io_id io;
	struct lcr_vote vote;
	uint64_t after;
	struct sim_entry *entries;
	uint32_t n;
	struct sim_snap snap; /* INSTALL: the snapshot */
	bool keep;	      /* INSTALL: the log after it stays */
};

enum { SIM_DISK_VOTE = 1, SIM_DISK_APPEND = 2, SIM_DISK_TRUNCATE = 3, SIM_DISK_INSTALL = 4 };

struct sim_disk {
	struct lcr_vote vote; /* durable */
	struct sim_log log;   /* durable; entries up to `purged` are gone */
	struct lcr_log_id purged;
	struct sim_snap snap;	/* the newest durable snapshot */
	struct sim_op *pending; /* handed to the disk, not yet durable, in order */
	uint32_t n_pending;
	uint32_t cap_pending;
	uint64_t busy_until; /* the disk works on one op at a time */
	uint64_t slow_until; /* a slow period: latencies x10..x50 */
	bool fail_next;	     /* the next op's fsync fails */
};

/* A follower's read index request as a leader received it. */
#define SIM_PEER_READS 8
/* Changes through a joint config remembered for membership-target. */
#define SIM_MC_ASKED 16
struct sim_peer_read {
	uint64_t read_id;
	struct lcr_leader_id lid;
	uint64_t need;
};

/* A client operation in flight at a node. */
struct sim_wait {
	uint32_t client;
	uint64_t op_seq;
	struct lcr_log_id id; /* writes: the entry's log id */
	uint64_t read_id;     /* reads */
	size_t hist;	      /* its record in the history */
	/* Reads: the leadership that took it, and the newest AppendEntries that
	 * leadership had sent before it (a ReadIndex needs acks of later ones). */
	struct lcr_leader_id lid;
	uint64_t need_seq;
	bool lease;
	/* A follower's read (ReadIndex through its leader), and the highest
	 * index any replica had committed when it was taken. */
	bool via_leader;
	uint64_t commit_floor;
};

struct sim_node {
	uint32_t id;
	bool up;
	uint32_t incarnation;
	struct lcr_core *core;
	struct sim_log mem;	      /* what this node's storage would serve (volatile) */
	struct lcr_log_id mem_purged; /* entries up to here are gone from it */
	struct sim_snap snap;	      /* newest snapshot: durable, or installed */
	struct lcr_membership initial_membership; /* its core's config's */
	struct sim_snap building;		  /* the build under way (BUILD_SNAPSHOT) */
	uint64_t build_seq;			  /* names the build under way, 0: none */
	struct sim_snap rx;			  /* the snapshot delivered last ... */
	uint64_t rx_handle;			  /* ... and its handle */
	uint64_t snap_cancel[SIM_NODES_MAX];	  /* cancelled snapshot stream, by target */
	struct sim_disk disk;
	int64_t clock_offset; /* node clock = sim time + offset */
	uint64_t tick_at;     /* sim time of the scheduled tick, 0: none */
	uint64_t paused_until;

	/* State machine. */
	uint64_t kv[SIM_KEYS];
	uint64_t sm_hash;
	struct lcr_log_id applied;

	/* Client operations waiting here. */
	struct sim_wait *writes;
	uint32_t n_writes, cap_writes;
	struct sim_wait *reads;
	uint32_t n_reads, cap_reads;

	/* For the checks: last status seen in this incarnation. */
	struct lcr_core_status st;
	bool st_valid;
	uint32_t role;
	struct lcr_vote max_granted;   /* highest vote this node ever granted */
	struct lcr_leader_id max_said; /* highest vote this node ever stated */
	struct lcr_log_id last_ack;    /* its newest Ok ack ... */
	struct lcr_leader_id ack_lid;  /* ... and the leadership it went to */
	/* As leader: the newest send_seq it sent, under sent_lid. */
	struct lcr_leader_id sent_lid;
	uint64_t sent_seq;
	/* As follower: the newest send_seq it acked to each node, under ack_to_lid. */
	struct lcr_leader_id ack_to_lid[SIM_NODES_MAX];
	uint64_t ack_to_seq[SIM_NODES_MAX];
	/* The lease its acks lent: no vote for another leadership before
	 * promise_end (on the leader's clock, as its lease), unless that leader
	 * waived it (for waived_for; a waived leadership's acks lend no more). */
	struct lcr_leader_id promise_lid;
	uint64_t promise_end;
	struct lcr_leader_id waived_for;
	struct lcr_leader_id waived_lid;
	/* As leader: when its leadership began (its clock) and, per node, the
	 * newest send time (its clock) of an AppendEntries acknowledged to it. */
	uint64_t lead_since;
	uint64_t heard_ns[SIM_NODES_MAX];
	/* As leader: the recent read index requests from each node, with the
	 * newest send_seq sent before each came (the lowest, for copies). */
	struct sim_peer_read peer_reads[SIM_NODES_MAX][SIM_PEER_READS];
	uint32_t peer_reads_next[SIM_NODES_MAX];
	uint64_t core_allocs;	       /* allocations through the core's hook */
	uint64_t core_allocs_at_start; /* ... when lcr_core_new returned */
	uint64_t stop_count;
};

struct sim_client {
	uint32_t id;
	uint32_t target; /* node it talks to */
	bool busy;
	uint64_t op_seq; /* current operation, 0: none */
	size_t hist;	 /* index of its history record */
	uint64_t deadline;
	uint64_t next_value;
	uint32_t pinned; /* a scenario keeps it on this node (0: free) */
	bool reads_only; /* ... and has it only read */
};

struct sim_trace {
	uint64_t t;
	uint32_t node;
	char what[88];
};

/* Per-seed knobs, drawn from the seed. */
struct sim_params {
	uint32_t nodes;
	bool pre_vote;
	bool lease_reads;    /* clients use LeaseRead sometimes */
	bool follower_reads; /* clients send half their reads to any node */
	bool clock_skew;     /* per-node clock jumps (only without lease reads) */
	uint32_t clients;
	uint64_t op_gap_ns; /* mean gap between a client's operations */
	bool small_queues;  /* respond/read queues far below the defaults */
	uint64_t nemesis_gap_ns;
	uint32_t scenario; /* the nemesis scenario this seed runs now and then, 0: none */
	uint32_t voters;   /* voters at the start (ids 1..voters); `nodes` counts every node */
	bool churn;	   /* membership changes, with two more nodes */
};

enum sim_scenario_kind {
	SIM_SCEN_MAJORITY = 1,	     /* a stable majority must commit while a minority is cut */
	SIM_SCEN_FIGURE8 = 2,	     /* Raft's Figure 8, elections in a chosen order */
	SIM_SCEN_LEADER_READS = 3,   /* the leader isolated while reads keep arriving at it */
	SIM_SCEN_STALE_TRANSFER = 4, /* a transfer vote request reaches voters of a newer leader */
	SIM_SCEN_KINDS = 4,
};

/* A scenario under way (sim_scenario.c). */
struct sim_scenario {
	uint32_t kind; /* enum sim_scenario_kind, 0: none */
	uint32_t phase;
	uint64_t started;
	uint64_t phase_at; /* when the current phase began */
	uint64_t retry_at; /* the next retry of the phase's action */
	uint32_t fault;	   /* stable majority: how the minority is cut */
	bool minority[SIM_NODES_MAX];
	uint64_t commit_base; /* the highest commit index when it began */
	uint32_t a, b;	      /* figure 8: the first leader and the one that overwrites */
	/* Figure 8 and stale transfer: AppendEntries from this node carrying
	 * an entry of a term above withhold_above are lost (a new leadership's
	 * entries). */
	uint32_t withhold_from;
	uint64_t withhold_above;
	uint64_t old_last; /* figure 8: the first leader's last entry */
	bool no_elect;	   /* nodes elect only when the scenario says */
	/* Stale transfer: the node the leader a hands over to (b, elected in
	 * the same term, ranks below it), and that node's transfer vote
	 * requests, held back to be delivered late. */
	uint32_t to;
	struct lcr_log_id a_last;
	struct lcr_msg held[SIM_NODES_MAX];
	bool held_for[SIM_NODES_MAX];
};

struct sim_event;

/* A committed index as first observed. */
struct sim_committed {
	struct lcr_log_id id;
	uint64_t prefix_hash;
	struct lcr_leader_id committer;
	uint64_t sm_hash; /* state machine hash after applying it, 0: not seen */
};

struct sim_world {
	uint64_t seed;
	uint32_t bugs;
	bool quiet;
	bool debug; /* print every event as it happens */
	uint64_t rng[2];
	struct sim_params par;
	uint64_t now;
	uint64_t ev_seq;
	uint64_t steps;

	struct sim_event *heap;
	size_t heap_n, heap_cap;

	struct sim_node nodes[SIM_NODES_MAX];
	struct sim_client clients[SIM_CLIENTS_MAX];

	/* Network faults. */
	bool blocked[SIM_NODES_MAX][SIM_NODES_MAX]; /* from -> to */
	uint32_t loss_pct, dup_pct, late_pct;
	uint64_t delay_min, delay_jitter;
	bool healed; /* liveness phase: no more faults */
	struct sim_scenario scen;
	uint64_t propose_serial; /* values of the scenarios' own writes */
	uint64_t scen_started[SIM_SCEN_KINDS + 1], scen_done[SIM_SCEN_KINDS + 1];

	/* History for the linearizability check. */
	struct lcr_linz_op *hist;
	size_t n_hist, cap_hist;

	/* Invariant bookkeeping. */
	struct sim_committed *committed;
	uint64_t n_committed, cap_committed;
	struct sim_idmap *ids;	   /* log id -> prefix hash */
	struct sim_idmap *leaders; /* leader ids ever established */
	struct sim_idmap *grants;  /* leader id -> bit mask of the nodes that granted it */
	uint64_t writes_ok, reads_ok, ops_pending, elections, crashes;
	uint64_t follower_reads_ok; /* of reads_ok: served by a follower */
	uint64_t snapshots, installs, purges, membership_changes;
	/* membership-target: the targets asked for, by their joint entry's
	 * log id (a ring), and the one the newest committed joint config
	 * must end in (the next membership entry committed). */
	struct {
		struct lcr_log_id joint;
		struct lcr_membership target;
	} mc_asked[SIM_MC_ASKED];
	uint32_t mc_asked_n;
	uint64_t mc_scanned; /* committed indices looked at, all below */
	/* membership-joint: the newest committed membership seen in order. */
	struct lcr_membership mc_last;
	bool mc_last_known;
	bool mc_want_set;
	uint64_t mc_want_joint; /* its joint entry's index */
	struct lcr_membership mc_want;
	/* Healings with no leader because every voter that could win held
	 * leader_runs_max runs (and no purge freed any): a capacity stall, not a fault. */
	uint64_t runs_stalls;

	struct sim_trace trace[SIM_TRACE];
	uint32_t trace_n;

	/* The first violation stops the seed. */
	bool violated;
	char violation[512];
};

/* sim.c */
int sim_run_seed(struct sim_world *w, uint64_t seed, uint64_t steps, uint32_t bugs, bool debug);
void sim_world_free(struct sim_world *w);
/* The address the simulation gives node `id` in memberships (opaque to the
 * core: anything printable). */
static inline void sim_node_addr(uint32_t id, char out[LCR_NODE_ADDR_MAX])
{
	snprintf(out, LCR_NODE_ADDR_MAX, "10.0.0.%u:%u", id, 7000 + id);
}
/* For the scenarios. */
uint64_t sim_rnd_below(struct sim_world *w, uint64_t n);
struct sim_node *sim_node(struct sim_world *w, uint32_t id);
uint32_t sim_find_leader(struct sim_world *w);
void sim_node_crash(struct sim_world *w, struct sim_node *n, uint64_t restart_after);
void sim_node_restart(struct sim_world *w, struct sim_node *n);
void sim_step_event(struct sim_world *w, struct sim_node *n, struct lcr_event *ev);
void sim_set_elect(struct sim_world *w, struct sim_node *n, bool on);
/* Put a copy of a message (one without entries) on the network now. */
void sim_deliver(struct sim_world *w, const struct lcr_msg *m);
/* Propose a put at `n` as a client whose outcome stays unknown. */
void sim_propose(struct sim_world *w, struct sim_node *n);
/* End every fault but partitions: loss, slow disks, pauses, down nodes, toggles. */
void sim_calm(struct sim_world *w);
void sim_schedule_nemesis(struct sim_world *w);

/* sim_scenario.c */
void sim_scenario_start(struct sim_world *w, uint32_t kind);
void sim_scenario_step(struct sim_world *w);
void sim_scenario_end(struct sim_world *w, bool done);
/* Whether the network loses this message on the scenario's orders. */
bool sim_scenario_drops(const struct sim_world *w, const struct lcr_msg *m,
			const struct sim_entry *entries);
/* Whether the scenario holds this message back (it keeps a copy to deliver later). */
bool sim_scenario_holds(struct sim_world *w, const struct lcr_msg *m);
const char *sim_scenario_name(uint32_t kind);
void sim_trace(struct sim_world *w, uint32_t node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t sim_entry_hash(const struct sim_entry *e);
uint64_t sim_node_time(const struct sim_world *w, const struct sim_node *n);

/* sim_check.c */
void sim_violation(struct sim_world *w, const char *invariant, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void sim_check_node(struct sim_world *w, struct sim_node *n);
void sim_check_leases(struct sim_world *w);
void sim_check_appended(struct sim_world *w, struct sim_node *n, uint64_t first, uint64_t last);
void sim_check_applied(struct sim_world *w, struct sim_node *n, uint64_t index);
void sim_check_restart(struct sim_world *w, struct sim_node *n);
void sim_check_history(struct sim_world *w);
void sim_check_free(struct sim_world *w);
void sim_check_forged(struct sim_world *w, struct sim_node *n, const struct lcr_core_status *before,
		      const struct lcr_msg *m);
/* Every message a node sends, before it leaves. */
void sim_check_sent(struct sim_world *w, struct sim_node *n, const struct lcr_msg *m);
/* An AppendEntries response from an earlier leadership changed nothing. */
void sim_check_stale_response(struct sim_world *w, struct sim_node *n,
			      const struct lcr_core_status *before, const struct lcr_msg *m);
bool sim_response_stale(const struct lcr_core_status *st, const struct lcr_msg *m);
/* A message reaches a node (before its core sees it): lease waivers, acks heard. */
void sim_check_received(struct sim_world *w, struct sim_node *n, const struct lcr_msg *m);
/* A node's tick ran: a leader past its CheckQuorum deadline has stepped down. */
void sim_check_step_down(struct sim_world *w, struct sim_node *n);
/* A read was taken (`need_seq` filled in) and, later, served. */
void sim_check_read_taken(struct sim_world *w, struct sim_node *n, struct sim_wait *wt);
void sim_check_read_served(struct sim_world *w, struct sim_node *n, const struct sim_wait *wt);
/* The checks and scenarios, one line each, for --help. */
void sim_describe_checks(FILE *f);

#endif /* LCR_SIM_H */
