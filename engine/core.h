/* SPDX-License-Identifier: MIT */
/*
 * The sans-I/O Raft core: one deterministic state machine per group replica.
 *
 * Events go in (messages, ticks with the time passed in, I/O completions,
 * proposals, reads, triggers); commands come out (persist, send, apply,
 * answer reads). The core never makes a syscall, never reads a clock, never
 * allocates after lcr_core_new(), and draws randomness from a PRNG seeded by
 * its config. That is what lets tests/sim run whole clusters deterministically.
 *
 * Semantics follow openraft's Engine (openraft-reference.md §2): a follower
 * acknowledges only what is durable, the leader appends to its own log in
 * parallel with replication, commit = quorum of flushed, votes are persisted
 * before any reply that depends on them.
 *
 * Threading: a core belongs to one lcore (one thread). Nothing here locks.
 *
 * Command lifetime: every call that takes `now_ns` first clears the command
 * outbox, then appends to it; the caller drains it with lcr_core_commands()
 * before the next call. Commands may point into the event that caused them
 * (entries of a received message or of a proposal): the caller must consume
 * them while that memory is still valid.
 */
#ifndef LCR_CORE_H
#define LCR_CORE_H

#include "types.h"

/* Errors returned by the core, as negative values. Above the errno range. */
enum lcr_err {
	LCR_ENOTLEADER = 2001, /* not the leader: ask lcr_core_status().leader */
	LCR_ENOLEASE = 2002,   /* leader without a valid quorum lease (CheckQuorum) */
	LCR_ETRANSFER = 2003,  /* leadership is being transferred */
	LCR_EFULL = 2004,      /* a bounded queue is full: retry later */
	LCR_ESTOPPED = 2005,   /* the replica stopped after a fatal I/O error */
	LCR_ETIMEDOUT = 2006,  /* a read, or a request with a deadline, did not complete in time */
	LCR_EBACKLOG = 2007,   /* the log's unwritten entries fill its buffer: the disk is
				  behind the proposals; retry once some are durable */
};

/* Human-readable name for 0, a negative errno or a negative lcr_err. */
LCR_API const char *lcr_strerror(int err);

struct lcr_core_config {
	uint32_t id; /* this node, never 0 */
	/* Election timeout, sampled from [min, max) after each election. */
	uint64_t election_timeout_min_ms;
	uint64_t election_timeout_max_ms;
	uint64_t heartbeat_interval_ms;
	/* Entries per AppendEntries request (openraft's max_payload_entries). */
	uint32_t max_payload_entries;
	/* Pipelined AppendEntries requests in flight per follower. */
	uint32_t inflight_max;
	/* Responses waiting for a flush; overflow drops the oldest (counted). */
	uint32_t respond_max;
	/* Linearizable reads waiting; overflow rejects the read with LCR_EFULL. */
	uint32_t reads_max;
	/*
	 * Runs of entries by one leader the log may hold (memory fixed at start:
	 * 24 bytes each). A peer's append that would need more is dropped; a
	 * replica whose log is full of runs does not stand for election.
	 */
	uint32_t leader_runs_max;
	/* Base of the replication backoff on UNREACHABLE: b, 2b, 4b, ... cap 1 s. */
	uint64_t backoff_ms;
	/*
	 * A transport's own backoff (openraft's RaftNetworkV2::backoff()): the
	 * interval, in ns, before retrying `target` after the step-th backoff in
	 * a row (step 0, 1, 2 ...; a success starts again at 0). NULL: backoff_ms
	 * doubled per step, 1 s cap (lcr_backoff_default_ns). The node runtime
	 * sets it from its transport; it must be a pure function of its
	 * arguments (the simulation replays the core) and must not call the core.
	 */
	uint64_t (*backoff_ns)(void *ctx, uint32_t target, uint32_t step);
	void *backoff_ctx;
	/* How long a read may wait for its quorum ack and apply; 0: leader lease. */
	uint64_t read_timeout_ms;
	bool enable_pre_vote;
	bool enable_heartbeat;
	bool enable_elect;
	/*
	 * Keep leadership across a restart when the persisted vote is our own
	 * committed one. Off by default, unlike openraft: a leader appends in
	 * parallel with replication, so entries it sent before a crash may be
	 * missing from its own disk, and a restored leader would assign the same
	 * log ids to different entries (see docs/architecture.md).
	 */
	bool enable_leader_restore;
	/* Tolerate a follower whose log went backwards (wiped disk). */
	bool allow_log_reversion;
	/* Membership entries: proposed by lcr_core_change_membership and taken
	 * from peers. Off by default: the owner must then load membership
	 * entries at start-up (lcr_core_load_membership); with it off they are
	 * refused as malformed. */
	bool enable_membership_changes;
	/*
	 * Snapshot policy (openraft's SnapshotPolicy): build one once the state
	 * machine has applied this many entries past the last snapshot (or past
	 * the last build that failed); 0: Never (only the manual trigger).
	 */
	uint64_t snapshot_logs_since_last;
	/* After a snapshot, purge the log up to this many entries before its
	 * last one (openraft's max_in_snapshot_log_to_keep)... */
	uint64_t max_in_snapshot_log_to_keep;
	/* ... but only in steps of at least this many entries (purge_batch_size). */
	uint64_t purge_batch_size;
	/* A snapshot sent to a follower without an answer after this long is
	 * given up (cancelled) and the follower's stream restarted. */
	uint64_t snapshot_timeout_ms;
	/* Initial membership (bootstrap), the same on every node: the log's
	 * before its first membership entry. It must name `id`, except with
	 * enable_membership_changes, where a node it leaves out joins later by
	 * a change and until then is in no config (role learner). */
	struct lcr_membership membership;
	uint64_t seed;		    /* PRNG seed for election timeouts */
	struct lcr_allocator alloc; /* NULL alloc: malloc/free */
};

/* Fill `cfg` with openraft's defaults (150/300 ms, 50 ms, 300 entries...). */
LCR_API void lcr_core_config_default(struct lcr_core_config *cfg, uint32_t id);

/*
 * Check relationships between options: returns 0, or -EINVAL with a sentence
 * naming the bad option in `why` (at least 160 bytes).
 */
LCR_API int lcr_core_config_validate(const struct lcr_core_config *cfg, char *why, size_t why_len);

/* Durable state handed to a replica at start-up. */
struct lcr_core_restore {
	struct lcr_vote vote;
	struct lcr_log_id committed; /* persisted commit hint, or none */
	struct lcr_log_id purged;    /* last purged log id, or none */
	/* The newest durable snapshot (none: no snapshot), whose state the
	 * state machine holds at start: applied and committed start at
	 * snapshot.last. purged must not be past it, and the log must hold
	 * snapshot.last (or end at the purge point, when purged == snapshot.last). */
	struct lcr_snapshot_meta snapshot;
	/* The membership at snapshot.last (n_configs 0: the config's). */
	struct lcr_membership membership;
};

enum lcr_cmd_type {
	LCR_CMD_SAVE_VOTE = 1,	  /* persist `vote` */
	LCR_CMD_APPEND = 2,	  /* persist entries[0..n) after the current last entry */
	LCR_CMD_TRUNCATE = 3,	  /* delete every entry with index > after.index */
	LCR_CMD_SEND = 4,	  /* send `msg`; see below for APPEND_REQ */
	LCR_CMD_APPLY = 5,	  /* apply committed entries (first..last] */
	LCR_CMD_READS_READY = 6,  /* reads with id <= `read_id` may now be served */
	LCR_CMD_READS_FAILED = 7, /* reads with ids [first, last] failed with `err` */
	LCR_CMD_ROLE = 8,	  /* the replica's role or leader changed */
	/* Snapshot the state machine as it is now (it has applied at least
	 * up to the core's applied index); report with LCR_EV_SNAPSHOT_BUILT,
	 * once the snapshot is durable, or with the error. One at a time. */
	LCR_CMD_BUILD_SNAPSHOT = 9,
	/* Delete log entries up to and including `upto` (all covered by a
	 * durable snapshot and durable in the log). Needs no completion: a
	 * crash before it is recorded only leaves more log. */
	LCR_CMD_PURGE = 10,
	/* A storage command, in io order: install the snapshot the transport
	 * received (`data`, from the LCR_MSG_SNAPSHOT_REQ) as the newest one,
	 * replace the state machine with it, and cut the log: with `keep_log`
	 * (the log holds meta.last) purge up to meta.last and keep what follows;
	 * without, drop every entry and go on after meta.last. Durable before
	 * any later storage command. */
	LCR_CMD_INSTALL_SNAPSHOT = 11,
	/* Stop sending the snapshot of stream `stream_id` to `target`
	 * (openraft's cancel of full_snapshot: replication to it closed). */
	LCR_CMD_CANCEL_SNAPSHOT = 12,
};

enum lcr_role {
	LCR_ROLE_FOLLOWER = 1,
	LCR_ROLE_CANDIDATE = 2,
	LCR_ROLE_LEADER = 3,
	LCR_ROLE_LEARNER = 4,
	LCR_ROLE_STOPPED = 5, /* fatal I/O error: the replica does nothing more */
};

/*
 * A command. For LCR_CMD_SEND of an APPEND_REQ, `msg.append_req.entries` is
 * NULL: the caller attaches the n_entries entries following `prev` from its
 * own log (they were handed to it earlier by LCR_CMD_APPEND).
 */
struct lcr_cmd {
	uint32_t type; /* enum lcr_cmd_type */
	union {
		struct {
			struct lcr_io_id io;
			struct lcr_vote vote;
		} save_vote;
		struct {
			struct lcr_io_id io;
			const struct lcr_entry *entries;
			uint32_t n;
		} append;
		struct {
			struct lcr_io_id io;
			struct lcr_log_id after;
		} truncate;
		struct lcr_msg send;
		struct {
			struct lcr_log_id first; /* the last applied entry (exclusive) */
			struct lcr_log_id last;	 /* apply up to and including */
		} apply;
		struct {
			uint64_t read_id;
		} reads_ready;
		struct {
			uint64_t first;
			uint64_t last;
			int err;
		} reads_failed;
		struct {
			uint32_t role;	 /* enum lcr_role */
			uint32_t leader; /* known leader, or 0 */
			struct lcr_vote vote;
		} role;
		struct {
			struct lcr_log_id upto;
		} purge;
		struct {
			struct lcr_io_id io;
			struct lcr_snapshot_meta meta;
			uint64_t data; /* the SNAPSHOT_REQ's handle to the received bytes */
			uint64_t size;
			bool keep_log;
		} install;
		struct {
			uint32_t target;
			uint64_t stream_id;
		} cancel;
	};
};

enum lcr_event_type {
	LCR_EV_TICK = 1,	  /* time passed: timers */
	LCR_EV_MSG = 2,		  /* a message from a peer */
	LCR_EV_IO_FLUSHED = 3,	  /* storage made `io` (and all before it) durable */
	LCR_EV_IO_FAILED = 4,	  /* storage failed; the replica stops */
	LCR_EV_APPLIED = 5,	  /* the state machine applied up to `applied` */
	LCR_EV_NET_ERROR = 6,	  /* replication to `target` failed with `err` */
	LCR_EV_TRIGGER_ELECT = 7, /* start an election now */
	LCR_EV_TRIGGER_HEARTBEAT = 8,
	LCR_EV_TRIGGER_TRANSFER = 9, /* leader: hand leadership to `transfer_to` */
	LCR_EV_SET_TOGGLE = 10,	     /* runtime toggles */
	/* LCR_CMD_BUILD_SNAPSHOT finished: `snapshot.meta` is durable, or `err`. */
	LCR_EV_SNAPSHOT_BUILT = 11,
	LCR_EV_TRIGGER_SNAPSHOT = 12, /* build a snapshot now (if none is being built) */
	LCR_EV_TRIGGER_PURGE = 13,    /* purge up to `purge_upto` (bounded by the snapshot) */
};

enum lcr_toggle {
	LCR_TOGGLE_HEARTBEAT = 1,
	LCR_TOGGLE_ELECT = 2,
	LCR_TOGGLE_PRE_VOTE = 3,
};

struct lcr_event {
	uint32_t type; /* enum lcr_event_type */
	uint64_t now_ns;
	union {
		const struct lcr_msg *msg;
		struct lcr_io_id io;
		int io_error; /* negative errno */
		struct lcr_log_id applied;
		struct {
			uint32_t target;
			uint64_t stream_id;
			uint32_t err; /* enum lcr_net_err */
		} net;
		struct {
			bool pre_vote; /* run a Pre-Vote round first */
		} elect;
		uint32_t transfer_to;
		struct {
			uint32_t toggle; /* enum lcr_toggle */
			bool on;
		} toggle;
		struct {
			struct lcr_snapshot_meta meta;
			int err; /* 0, or a negative errno: the build failed */
		} snapshot;
		uint64_t purge_upto;
	};
};

enum lcr_read_policy {
	LCR_READ_INDEX = 1, /* needs a quorum ack sent after the read arrived */
	LCR_READ_LEASE = 2, /* served under the leader lease; fails if stale */
};

/* What a replica shows to its owner, the metrics and the simulation's checks. */
struct lcr_core_status {
	uint32_t id;
	uint32_t role;	 /* enum lcr_role */
	uint32_t leader; /* known leader or 0 */
	struct lcr_vote vote;
	struct lcr_log_id last;	     /* last accepted log id (in memory) */
	struct lcr_log_id flushed;   /* last log id known durable here */
	struct lcr_log_id committed; /* safe to apply here */
	struct lcr_log_id applied;
	struct lcr_log_id purged;
	struct lcr_snapshot_meta snapshot; /* the newest snapshot (durable or being installed) */
	struct lcr_membership membership;  /* effective: the newest appended */
	struct lcr_membership snapshot_membership; /* at snapshot.last */
	struct lcr_log_id membership_id; /* its entry (none: the config's or a snapshot's) */
	bool membership_committed;	 /* effective == committed: no change under way */
	uint64_t membership_changes;	 /* membership entries this replica proposed */
	bool building;			 /* a snapshot is being built */
	struct lcr_log_id noop;		 /* leader: its blank entry */
	uint64_t lease_until_ns;	 /* leader: quorum lease end, 0 if none */
	/* Leader: the newest send time a quorum acknowledged (openraft's
	 * last_quorum_acked), ns on the core's clock; 0 if none yet. */
	uint64_t quorum_acked_ns;
	bool transferring; /* leader: a transfer is under way */
	/* Leader: per node matching log id (index into `nodes`). */
	uint32_t n_nodes;
	uint32_t nodes[LCR_NODES_MAX];
	struct lcr_log_id matching[LCR_NODES_MAX];
	/* Leader: requests in flight to each node, and the entries they carry:
	 * (inflight_from, sent]. */
	uint32_t inflight[LCR_NODES_MAX];
	uint64_t inflight_from[LCR_NODES_MAX];
	uint64_t sent[LCR_NODES_MAX];
	bool sending_snapshot[LCR_NODES_MAX]; /* leader: a snapshot is in flight to it */
	/* Counters. */
	uint64_t snapshots_built;     /* builds reported done */
	uint64_t snapshots_failed;    /* builds reported failed */
	uint64_t snapshots_sent;      /* SNAPSHOT_REQs sent */
	uint64_t snapshots_cancelled; /* of those, cancelled */
	uint64_t snapshots_installed; /* installs started here */
	uint64_t snapshots_refused;   /* received, not newer than the commit: answered only */
	uint64_t purges;	      /* LCR_CMD_PURGE emitted */
	uint64_t elections;
	uint64_t responses_dropped; /* respond queue overflow */
	uint64_t stale_msgs;	    /* replies from closed streams or old votes */
	uint64_t reversions;	    /* conflicts below a follower's matching */
	uint64_t dropped_msgs;	    /* malformed or impossible messages */
	uint64_t far_terms;	    /* messages whose term is past LCR_TERM_JUMP_MAX above ours */
	/* Elections this replica refused to stand in: its term is LCR_NUMBER_MAX - 1,
	 * and a new one would be out of range (only reachable by a bug: peers'
	 * terms are bounded by LCR_TERM_JUMP_MAX). */
	uint64_t term_exhausted;
	uint64_t next_timer_ns; /* the earliest time a tick has work to do */
	/* The log holds leader_runs_max runs of entries (one per leadership that
	 * wrote): this replica cannot lead, so cannot stand, until entries are
	 * purged. */
	bool runs_full;
};

struct lcr_core;

/*
 * Create a replica from its config and durable state into *out. The log is
 * then loaded with lcr_core_load_log_id() (in index order, after
 * `restore->purged`) and the replica started with lcr_core_start(). Returns
 * 0, -EINVAL on a bad config (lcr_core_config_validate says why) or on
 * durable state out of range (a term or index at or above LCR_NUMBER_MAX),
 * or -ENOMEM.
 */
LCR_API int lcr_core_new(struct lcr_core **out, const struct lcr_core_config *cfg,
			 const struct lcr_core_restore *restore);
LCR_API void lcr_core_free(struct lcr_core *c);

/* Load the id of the next durable log entry (start-up only): -EINVAL if it
 * does not follow, goes back to an older leader, or is out of range. */
LCR_API int lcr_core_load_log_id(struct lcr_core *c, struct lcr_log_id id);

/* Start: arm timers, restore leadership if configured. Emits commands. */
LCR_API int lcr_core_start(struct lcr_core *c, uint64_t now_ns);

/* Feed one event. Returns 0, or a negative error (LCR_ESTOPPED, -EINVAL). */
LCR_API int lcr_core_step(struct lcr_core *c, const struct lcr_event *ev);

/*
 * Propose `n` entries (type and payload filled in by the caller). On success
 * their log ids are written into entries[i].id and one LCR_CMD_APPEND points at
 * `entries`. Fails with -LCR_ENOTLEADER, -LCR_ENOLEASE or -LCR_ETRANSFER, or
 * -EINVAL for an entry storage would not take: a type other than
 * LCR_ENTRY_BLANK or LCR_ENTRY_NORMAL, a payload above LCR_ENTRY_MAX bytes,
 * or a payload without data.
 */
LCR_API int lcr_core_propose(struct lcr_core *c, uint64_t now_ns, struct lcr_entry *entries,
			     uint32_t n);

/*
 * Start a linearizable read. On success *read_id identifies it; a later
 * LCR_CMD_READS_READY (read_id covered) says the state machine may be read, or
 * LCR_CMD_READS_FAILED says why not. Read ids increase by one per read, from
 * a start drawn at creation.
 *
 * On the leader: ReadIndex or LeaseRead. On a follower (or learner) that
 * follows a leader: LCR_READ_INDEX only, served once the leader confirmed a
 * read index and this replica applied up to it (read.c); the read fails with
 * -LCR_ENOTLEADER when this replica stops following that leadership, with
 * -LCR_ETIMEDOUT after read_timeout_ms, with the leader's refusal
 * (-LCR_ENOTLEADER, -LCR_ETRANSFER, -LCR_EFULL, -LCR_ETIMEDOUT), or with
 * -ENOTSUP when the transport cannot ask the leader. Refused at once with
 * -LCR_ENOTLEADER: LCR_READ_LEASE on a follower, or no leader known.
 */
LCR_API int lcr_core_read(struct lcr_core *c, uint64_t now_ns, uint32_t policy, uint64_t *read_id);

/* The commands produced by the last call; valid until the next call. */
LCR_API const struct lcr_cmd *lcr_core_commands(const struct lcr_core *c, uint32_t *n);

LCR_API void lcr_core_status(const struct lcr_core *c, struct lcr_core_status *st);

/* The earliest time (ns) a tick has work to do; cheap, for the runtime's timers. */
LCR_API uint64_t lcr_core_next_timer(const struct lcr_core *c);

/*
 * Change the voters and learners (openraft's change_membership): `target`
 * holds one config. On the leader, with no change under way: when the voters
 * stay the same it is proposed as is, else as a joint config (the current
 * voters and the target's), and the target itself once that commits;
 * decisions need a quorum in every config of the effective membership (the
 * newest appended). A leader that is not a voter of the committed target steps
 * down. Returns 0 (the entry's log id in *id), -LCR_ENOTLEADER, -LCR_ENOLEASE,
 * -LCR_ETRANSFER, -EBUSY (a change is under way), or -EINVAL (a target that
 * lcr_membership_validate refuses, more than one config, or more than
 * LCR_NODES_MAX nodes with the current ones).
 */
LCR_API int lcr_core_change_membership(struct lcr_core *c, uint64_t now_ns,
				       const struct lcr_membership *target, struct lcr_log_id *id);

/* The effective membership's entry index (0: the config's or a snapshot's)
 * and whether it is committed (no change under way): O(1), for the hot path. */
LCR_API uint64_t lcr_core_membership_index(const struct lcr_core *c, bool *committed);

/* Load a membership entry found in the log at start-up, after its log id. */
LCR_API int lcr_core_load_membership(struct lcr_core *c, struct lcr_log_id id,
				     const struct lcr_membership *m);

/* Membership helpers (engine/membership.c). */
LCR_API bool lcr_membership_is_voter(const struct lcr_membership *m, uint32_t id);
LCR_API bool lcr_membership_contains(const struct lcr_membership *m, uint32_t id);
LCR_API int lcr_membership_validate(const struct lcr_membership *m, char *why, size_t why_len);
/* Node `id`'s address in `m`, or NULL. */
LCR_API const char *lcr_membership_addr(const struct lcr_membership *m, uint32_t id);
/* Keep in `m` one address for each of its nodes: its own, else the one in
 * `from` (may be NULL); addresses of nodes `m` does not hold are dropped. */
LCR_API void lcr_membership_keep_addrs(struct lcr_membership *m, const struct lcr_membership *from);
/* A membership entry's payload (docs/storage-format.md): bytes written, 0 if
 * `cap` is short; and back (-EINVAL: malformed or invalid). */
#define LCR_MEMBERSHIP_BYTES_MAX                                                                   \
	(4 + LCR_CONFIGS_MAX * (4 + 4 * LCR_NODES_MAX) + 4 + 4 * LCR_NODES_MAX + 4 +               \
	 LCR_NODES_MAX * (5 + LCR_NODE_ADDR_MAX - 1))
LCR_API size_t lcr_membership_encode(const struct lcr_membership *m, void *buf, size_t cap);
LCR_API int lcr_membership_decode(const void *buf, size_t len, struct lcr_membership *m);

#endif /* LCR_CORE_H */
