/* SPDX-License-Identifier: MIT */
/*
 * Internal state of the Raft core, shared by its source files:
 *   core.c        life cycle, event dispatch, outbox, I/O completions, timers
 *   membership.c  configs, voters, quorums
 *   election.c    votes, pre-votes, elections, leases, leader transfer
 *   replication.c the leader: progress per follower, pipelining, commit
 *   follower.c    AppendEntries on the receiving side
 *   read.c        linearizable reads (ReadIndex, LeaseRead, ReadIndex from followers)
 *   snapshot.c    snapshot policy, builds, purge, and installing a leader's snapshot
 * Nothing here is visible outside the engine.
 */
#ifndef LCR_CORE_INT_H
#define LCR_CORE_INT_H

#include "bugs.h"
#include "core.h"
#include "lcr_assert.h"
#include "log_ids.h"

#ifdef LCR_PLANTED_BUGS
#define LCR_BUG(c, b) (((c)->bugs & (b)) != 0)
#else
#define LCR_BUG(c, b) false
#endif

#define LCR_NS_PER_MS 1000000ull

/* ---- membership.c ------------------------------------------------------- */

/* Every node of the membership, voters first, self included, deduplicated. */
uint32_t lcr_membership_nodes(const struct lcr_membership *m, uint32_t out[LCR_NODES_MAX]);
/*
 * Quorum over per-node values: the greatest v such that, in every config, a
 * majority of voters have value >= v. `val(ctx, id)` gives a node's value.
 * `one_short` is the planted commit-without-quorum bug (a majority minus one).
 */
uint64_t lcr_membership_quorum_value(const struct lcr_membership *m,
				     uint64_t (*val)(const void *ctx, uint32_t id), const void *ctx,
				     bool one_short);
/* Membership state (openraft's MembershipState): entries above the commit
 * point, the committed one, and a few older committed ones for snapshots. */
#define LCR_MSHIP_LOG  2
#define LCR_MSHIP_HIST 4
struct lcr_mship {
	struct lcr_log_id id; /* the membership entry; none: the initial config */
	struct lcr_membership m;
};
bool lcr_membership_eq(const struct lcr_membership *a, const struct lcr_membership *b);
void lcr_mship_appended(struct lcr_core *c, struct lcr_log_id id, const struct lcr_membership *m);
void lcr_mship_truncated(struct lcr_core *c, uint64_t since);
void lcr_mship_committed(struct lcr_core *c);
/* Entries up to `upto` are committed (or about to be, in this very call). */
void lcr_mship_fold(struct lcr_core *c, uint64_t upto);
void lcr_mship_installed(struct lcr_core *c, struct lcr_log_id last,
			 const struct lcr_membership *m);
/* The membership in effect at `index` (NULL: too old to know). */
const struct lcr_membership *lcr_mship_at(const struct lcr_core *c, uint64_t index);
/* No change under way: nothing above the commit point, one config. */
bool lcr_mship_settled(const struct lcr_core *c);
void lcr_mship_joint(const struct lcr_membership *cur, const struct lcr_membership *target,
		     struct lcr_membership *out, bool *direct);
/* The target a joint config moves to, from the joint config alone: its
 * second config's voters, its learners and the voters it retains as
 * learners, with the addresses of those. Every leader that finishes the
 * change, the one that began it or a later one, proposes this. */
void lcr_mship_target(const struct lcr_membership *joint, struct lcr_membership *out);
/* True when the set bits (by node id, via `has`) form a quorum in every config. */
bool lcr_membership_quorum_granted(const struct lcr_membership *m,
				   bool (*has)(const void *ctx, uint32_t id), const void *ctx);
uint32_t lcr_membership_voter_count(const struct lcr_membership *m);

/* ---- the core ----------------------------------------------------------- */

/* Leader's view of one peer (openraft's ProgressEntry plus the pipeline). */
struct lcr_progress {
	struct lcr_log_id matching; /* durable and matching on the peer; none: unknown */
	uint64_t searching_end;	    /* binary search upper bound: next index < this */
	uint64_t stream_id;	    /* current stream; replies from others are stale */
	uint64_t sent_index;	    /* last index sent on the current stream */
	uint64_t next_inflight_id;  /* id of the next request on this stream (from 1) */
	uint64_t acked_inflight_id; /* highest request id acknowledged on it */
	uint64_t progress_ns;	    /* last ack, (re)start, or send with none in flight */
	uint64_t gap_ns;	    /* smoothed time between a stream's acks (stall timer) */
	uint64_t gap_var_ns;	    /* ... and its mean deviation */
	uint64_t clock_ns;	    /* newest send time the peer acknowledged (lease) */
	uint64_t acked_seq;	    /* newest send_seq the peer acknowledged (reads) */
	uint64_t backoff_until_ns;  /* no sends before this (UNREACHABLE backoff) */
	uint32_t backoff_rank;	    /* accumulated error rank (openraft backoff_rank) */
	uint32_t backoff_step;	    /* consecutive backoffs: 0, 1, 2, ... */
	bool probing;		    /* a probe request is outstanding */
	uint64_t inflight_from;	    /* prev index of the oldest request in flight */
	bool snapshot;		    /* a snapshot is in flight on the current stream */
	uint64_t snapshot_ns;	    /* ... sent then */
};

/* A response held until storage has flushed what it depends on. */
struct lcr_pending_resp {
	uint64_t seq; /* release when flushed.seq >= seq */
	struct lcr_msg msg;
};

/* Whose read a queue slot holds (read.c). */
enum lcr_read_kind {
	LCR_READ_LOCAL = 1,	 /* the leader's own: quorum ack, then apply */
	LCR_READ_FOR_PEER = 2,	 /* the leader's, for a follower: quorum ack, then answer */
	LCR_READ_VIA_LEADER = 3, /* a follower's own: the leader's read index, then apply */
};

/* A linearizable read waiting for its quorum ack (or read index) and for apply. */
struct lcr_pending_read {
	uint64_t read_id;    /* ours; FOR_PEER: the follower's, echoed in the answer */
	uint64_t need_seq;   /* ReadIndex: a quorum must ack a send_seq above this */
	bool lease;	     /* LeaseRead: the lease was checked on arrival */
	uint64_t read_index; /* serve once applied >= this */
	uint64_t deadline_ns;
	uint8_t kind;		       /* enum lcr_read_kind */
	bool indexed;		       /* VIA_LEADER: the leader's read index arrived */
	int err;		       /* VIA_LEADER: the leader refused: fail with this */
	uint32_t peer;		       /* FOR_PEER: the follower that asked */
	struct lcr_log_id read_log_id; /* FOR_PEER: the read index as a log id */
};

struct lcr_candidate {
	bool active;
	struct lcr_vote vote;
	struct lcr_log_id last_log_id;
	uint64_t vote_seq; /* the SaveVote of this vote (self-grant needs it flushed) */
	uint64_t started_ns;
	bool granted[LCR_NODES_MAX]; /* by slot */
	bool transfer;
	struct lcr_vote transfer_from; /* transfer: the leader that handed over */
	bool reqs_sent;		       /* vote requests go out once our own vote is durable */
};

struct lcr_leader {
	bool active;
	struct lcr_vote vote; /* committed */
	struct lcr_log_id noop;
	uint32_t transfer_to;	  /* 0: none */
	uint64_t first_stream_id; /* streams below this belong to older leaderships */
	uint64_t next_heartbeat_ns;
	uint64_t since_ns; /* when this leadership began (CheckQuorum's grace) */
	uint64_t send_seq; /* numbers every AppendEntries sent (from 1) */
	struct lcr_progress progress[LCR_NODES_MAX]; /* by slot; self unused */
};

struct lcr_core {
	struct lcr_core_config cfg;
	uint32_t id;
	uint32_t self_slot;
	uint64_t leader_lease_ns;
	uint64_t smaller_log_timeout_ns;
	uint64_t election_timeout_ns; /* current random sample */
	/* A replica that may not stand (a full run table, a term at its limit)
	 * tries again only after this: its election deadline stays in the past
	 * otherwise, and every tick would be due at once. */
	uint64_t stand_retry_ns;
	uint64_t heartbeat_ns;
	uint64_t read_timeout_ns;

	/* Membership (the effective one) and the node table; slots index
	 * per-node arrays and always include this node. */
	struct lcr_membership membership;
	struct lcr_mship m_committed;
	struct lcr_mship m_log[LCR_MSHIP_LOG];
	uint32_t m_log_n;
	struct lcr_mship m_hist[LCR_MSHIP_HIST];
	uint32_t m_hist_n;
	/* Leader: the uniform config to propose once the joint one commits. */
	struct lcr_membership m_target;
	bool m_target_pending;
	uint64_t m_joint_index;
	uint8_t m_buf[LCR_MEMBERSHIP_BYTES_MAX]; /* the payload of our membership entry */
	struct lcr_entry m_entry;
	struct lcr_membership snap_m; /* the newest snapshot's membership */
	uint64_t n_mship_changes;
	uint32_t n_nodes;
	uint32_t nodes[LCR_NODES_MAX];

	/* Vote with its lease (openraft's Leased<Vote>). */
	struct lcr_vote vote;
	uint64_t vote_utime_ns;
	uint64_t vote_lease_ns;
	bool lease_enabled;
	/*
	 * Until this time we promised a leader not to vote for anyone else (not
	 * even ourselves): acknowledging its messages lends it our part of its
	 * lease. Only a newer committed leader (whose election proves the old
	 * lease over) or that leader's transfer waiver ends it early.
	 */
	uint64_t promise_until_ns;
	uint64_t vote_seq; /* io seq of the last SaveVote */

	/* Log state. */
	struct lcr_log_ids log;
	struct lcr_log_id committed;	/* local committed: safe to apply here */
	struct lcr_log_id apply_sent;	/* applied through LCR_CMD_APPLY already */
	struct lcr_log_id applied;	/* reported by the state machine */
	struct lcr_log_id flushed_last; /* last log id durable here */

	/* Storage I/O. */
	uint64_t io_seq;	  /* last seq handed out */
	struct lcr_io_id flushed; /* newest io id reported durable */

	uint32_t role; /* enum lcr_role, as last announced */
	uint32_t announced_leader;
	struct lcr_vote announced_vote;
	bool stopped;
	/* A voter refused us for a greater log: our next election waits
	 * smaller_log_timeout more, unless our log has reached that one since
	 * (greater_log). */
	bool seen_greater_log;
	bool started;

	struct lcr_log_id greater_log; /* the greatest log a refusal showed us */
	struct lcr_candidate candidate;
	struct lcr_candidate pre_candidate;
	struct lcr_leader leader;
	struct lcr_entry blank_entry; /* the new leader's no-op, referenced by APPEND */

	/* Leader transfer towards this node, waiting for our log to flush. */
	struct {
		bool active;
		struct lcr_log_id last_log_id;
		struct lcr_vote from_leader;
		uint64_t deadline_ns;
	} transfer_in;

	/* Snapshots (snapshot.c). */
	struct lcr_snapshot_meta snapshot; /* newest: durable, or being installed */
	struct lcr_log_id snap_tried;	   /* applied when the last build started */
	bool building;			   /* a BUILD_SNAPSHOT is out */
	uint64_t purge_want;		   /* a purge postponed for inflight requests */
	uint64_t n_snap_built, n_snap_failed, n_snap_sent, n_snap_cancelled;
	uint64_t n_snap_installed, n_snap_refused, n_purges;

	/* Responses waiting for a flush: a ring. */
	struct lcr_pending_resp *resp;
	uint32_t resp_head, resp_len, resp_max;

	/* Reads: a ring in arrival order. */
	struct lcr_pending_read *reads;
	uint32_t reads_head, reads_len, reads_max;
	uint64_t next_read_id;
	/*
	 * A follower's reads (VIA_LEADER) ask the leader they follow for its read
	 * index: one request at a time, covering every read not yet indexed, sent
	 * again after a heartbeat interval without an answer.
	 */
	struct {
		struct lcr_vote leader; /* the leadership the queued reads were asked of */
		uint64_t asked_id;	/* the newest read id a request covered */
		uint64_t asked_ns;	/* when the unanswered request left; 0: none */
	} via;

	/* Commands of the current call. */
	struct lcr_cmd *out;
	uint32_t out_n, out_max;

	uint64_t rng[2]; /* xorshift128+ */
	uint64_t now_ns; /* time of the current call */

	/* Counters. */
	uint64_t n_elections;
	uint64_t n_resp_dropped;
	uint64_t n_stale;
	uint64_t n_reversions;
	uint64_t n_dropped;
	uint64_t n_far_terms;	   /* messages with a term beyond LCR_TERM_JUMP_MAX */
	uint64_t n_term_exhausted; /* elections refused: the term is at its limit */
	uint64_t next_stream_id;
#ifdef LCR_PLANTED_BUGS
	uint32_t bugs; /* enum lcr_bug */
#endif
};

/* core.c */
/* The effective membership changed: rebuild the node table (progress and
 * grants follow their node ids). */
void lcr_core_nodes_changed(struct lcr_core *c);
struct lcr_cmd *lcr_core_emit(struct lcr_core *c, uint32_t type);
void lcr_core_send(struct lcr_core *c, const struct lcr_msg *m);
/* Queue a response until flushed.seq >= seq (sent at once if already so). */
void lcr_core_respond_when(struct lcr_core *c, uint64_t seq, const struct lcr_msg *m);
uint64_t lcr_core_next_seq(struct lcr_core *c);
struct lcr_io_id lcr_core_io_id(struct lcr_core *c);
int lcr_core_slot(const struct lcr_core *c, uint32_t id);
uint64_t lcr_core_random(struct lcr_core *c);
void lcr_core_announce_role(struct lcr_core *c);
void lcr_core_stop(struct lcr_core *c, int err);
/* Advance local committed to `index` (bounded by what is here) and apply. */
void lcr_core_commit_to(struct lcr_core *c, uint64_t index);
void lcr_core_save_vote(struct lcr_core *c);
void lcr_core_truncate(struct lcr_core *c, uint64_t since);

/* election.c */
bool lcr_vote_update(struct lcr_core *c, struct lcr_vote v);
void lcr_vote_refresh_state(struct lcr_core *c);
void lcr_elect(struct lcr_core *c, const struct lcr_vote *transfer_from);
void lcr_pre_elect(struct lcr_core *c);
void lcr_election_tick(struct lcr_core *c);
uint64_t lcr_election_deadline(const struct lcr_core *c);
bool lcr_vote_lease_expired(const struct lcr_core *c, uint64_t extra_ns);
void lcr_on_vote_req(struct lcr_core *c, const struct lcr_msg *m);
void lcr_on_vote_resp(struct lcr_core *c, const struct lcr_msg *m);
void lcr_on_transfer(struct lcr_core *c, const struct lcr_msg *m);
void lcr_transfer_check(struct lcr_core *c);
void lcr_candidate_progress(struct lcr_core *c);
void lcr_trigger_transfer(struct lcr_core *c, uint32_t to);
void lcr_resample_election_timeout(struct lcr_core *c);

/* replication.c */
void lcr_leader_become(struct lcr_core *c);
/* A node new to the leader's table: nothing known of it. */
void lcr_leader_progress_init(struct lcr_core *c, uint32_t slot);
/* Leader: propose a membership entry (the payload is the core's own). */
void lcr_leader_propose_membership(struct lcr_core *c, const struct lcr_membership *m);
/* Leader: after the commit point moved, finish a change or step down. */
void lcr_leader_membership_progress(struct lcr_core *c);
void lcr_leader_drop(struct lcr_core *c);
void lcr_leader_append(struct lcr_core *c, struct lcr_entry *entries, uint32_t n);
void lcr_leader_replicate(struct lcr_core *c);
void lcr_leader_heartbeat(struct lcr_core *c);
void lcr_leader_tick(struct lcr_core *c);
void lcr_leader_on_flush(struct lcr_core *c);
void lcr_on_append_resp(struct lcr_core *c, const struct lcr_msg *m);
void lcr_on_net_error(struct lcr_core *c, uint32_t target, uint64_t stream_id, uint32_t err);
bool lcr_leader_lease_valid(const struct lcr_core *c);
uint64_t lcr_leader_quorum_acked_ns(const struct lcr_core *c);
uint64_t lcr_leader_quorum_acked_seq(const struct lcr_core *c);
uint64_t lcr_leader_next_timer(const struct lcr_core *c);

/* follower.c */
void lcr_on_append_req(struct lcr_core *c, const struct lcr_msg *m);

/* snapshot.c */
void lcr_snapshot_maybe_build(struct lcr_core *c);
void lcr_snapshot_trigger(struct lcr_core *c);
void lcr_snapshot_built(struct lcr_core *c, const struct lcr_snapshot_meta *meta, int err);
/* Purge up to `upto` (0: as the policy says), bounded by the snapshot and
 * by what is durable; a leader postpones it while an inflight request needs
 * those entries. */
void lcr_purge(struct lcr_core *c, uint64_t upto, bool manual);
void lcr_purge_retry(struct lcr_core *c);
void lcr_on_snapshot_req(struct lcr_core *c, const struct lcr_msg *m);

/* replication.c, for snapshot.c */
void lcr_on_snapshot_resp(struct lcr_core *c, const struct lcr_msg *m);
/* Whether a follower's requests in flight still need entries up to `upto`. */
bool lcr_leader_needs(const struct lcr_core *c, uint64_t upto);

/* read.c */
int lcr_read_start(struct lcr_core *c, uint32_t policy, uint64_t *read_id);
void lcr_reads_progress(struct lcr_core *c);
void lcr_reads_fail_all(struct lcr_core *c, int err);
uint64_t lcr_reads_next_timer(const struct lcr_core *c);
/* A follower's reads fail once it no longer follows the leader it asked. */
void lcr_reads_check_leader(struct lcr_core *c);
void lcr_on_read_index_req(struct lcr_core *c, const struct lcr_msg *m);
void lcr_on_read_index_resp(struct lcr_core *c, const struct lcr_msg *m);

#endif /* LCR_CORE_INT_H */
