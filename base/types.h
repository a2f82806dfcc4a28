/* SPDX-License-Identifier: MIT */
/*
 * lcraft's shared types, the lowest layer every part of the library uses:
 * leader ids, votes, log ids, entries and the messages the sans-I/O core
 * exchanges with its peers; the I/O identity storage reports; the network
 * error kinds; the allocation hook; the storage options.
 *
 * These mirror openraft's data types (openraft-reference.md §4) in the
 * "advanced" leader-id mode: a leader id is (term, node) and is totally
 * ordered, so several leaders may exist in one term, each with its own id.
 *
 * Conventions:
 *   - node id 0 means "no node";
 *   - log indexes start at 1; the log id {0, 0, 0} means "no log" (openraft's
 *     `None`), so it compares below every real log id;
 *   - times are nanoseconds of a monotonic clock, passed in by the caller.
 */
#ifndef LCR_TYPES_H
#define LCR_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Symbols of the public API; everything else in the library is hidden. */
#define LCR_API __attribute__((visibility("default")))

/*
 * Terms and indexes at or above this are never legitimate (a cluster doing a
 * billion elections a second would need 146 years to reach it); messages
 * carrying them are dropped, so that term + 1 and index + 1 never wrap.
 */
#define LCR_NUMBER_MAX (1ull << 62)

/*
 * How far above its own term a replica takes a message's term. Terms grow by
 * one per election round, so a legitimate peer is ahead only by the rounds
 * held while this replica was away: 2^32 rounds at one per 150 ms take 20
 * years. A message further ahead is dropped and counted (a forgery, or a
 * bug), so no single message can push a term toward LCR_NUMBER_MAX, where
 * no replica could stand for election any more.
 */
#define LCR_TERM_JUMP_MAX (1ull << 32)

/* Largest number of nodes (voters and learners) one group may have. */
#define LCR_NODES_MAX 16
/* A joint membership holds at most two configs (old and new). */
#define LCR_CONFIGS_MAX 2

/* A member's address as a membership carries it: text, 1 to
 * LCR_NODE_ADDR_MAX - 1 bytes, printable, NUL-terminated here. */
#define LCR_NODE_ADDR_MAX 64
struct lcr_node_addr {
	uint32_t id;
	char addr[LCR_NODE_ADDR_MAX];
};

/* Membership: a list of voter configs (joint when two) plus learners. */
struct lcr_membership {
	uint32_t n_configs;
	struct {
		uint32_t n;
		uint32_t ids[LCR_NODES_MAX];
	} configs[LCR_CONFIGS_MAX];
	uint32_t n_learners;
	uint32_t learners[LCR_NODES_MAX];
	/* Where members not in every node's config can be reached (openraft's
	 * Node, the membership's node data): at most one per member, kept
	 * through joint configs for the nodes that stay. Opaque to the core;
	 * the UDP transports read "HOST:PORT" (an IPv6 host in brackets). */
	uint32_t n_addrs;
	struct lcr_node_addr addrs[LCR_NODES_MAX];
	/* A joint config only: voters of the old config (configs[0]) that the
	 * change keeps as learners of the target (change_membership's retain).
	 * They vote until the change ends; whichever leader finishes it makes
	 * them learners, so the joint entry alone names the target exactly. */
	uint32_t n_retained;
	uint32_t retained[LCR_NODES_MAX];
};

struct lcr_leader_id {
	uint64_t term;
	uint32_t node; /* 0: no leader/candidate yet */
};

/*
 * Vote = {leader id, committed}. An uncommitted vote belongs to a candidate
 * (or records whom this node voted for); a committed vote belongs to a leader
 * that a quorum granted.
 */
struct lcr_vote {
	struct lcr_leader_id lid;
	bool committed;
};

/* LogId = {leader id of the entry's proposer, index}. */
struct lcr_log_id {
	struct lcr_leader_id lid;
	uint64_t index;
};

enum lcr_entry_type {
	LCR_ENTRY_BLANK = 1,	  /* a new leader's no-op */
	LCR_ENTRY_NORMAL = 2,	  /* application payload */
	LCR_ENTRY_MEMBERSHIP = 3, /* a membership change (lcr_membership_encode's payload) */
};

/*
 * Largest payload of one entry, in bytes. Storage refuses a longer one (and a
 * record longer than this on disk is corruption), so the core drops a peer's
 * message carrying one and refuses such a proposal; the wire format carries
 * no more (docs/wire-protocol.md).
 */
#define LCR_ENTRY_MAX (1u << 20)

/*
 * One log entry as it crosses the core's boundary. The core never owns the
 * payload: `data` points into the caller's buffer (a proposal or a received
 * message) and stays valid only for the duration of the step that carries it.
 */
struct lcr_entry {
	struct lcr_log_id id;
	uint32_t type; /* enum lcr_entry_type */
	uint32_t len;  /* payload bytes */
	const void *data;
};

static inline int lcr_leader_id_cmp(struct lcr_leader_id a, struct lcr_leader_id b)
{
	if (a.term != b.term)
		return a.term < b.term ? -1 : 1;
	if (a.node != b.node)
		return a.node < b.node ? -1 : 1;
	return 0;
}

static inline bool lcr_leader_id_eq(struct lcr_leader_id a, struct lcr_leader_id b)
{
	return a.term == b.term && a.node == b.node;
}

/* Votes order by leader id, then a committed vote above an uncommitted one. */
static inline int lcr_vote_cmp(struct lcr_vote a, struct lcr_vote b)
{
	int c = lcr_leader_id_cmp(a.lid, b.lid);
	if (c != 0)
		return c;
	if (a.committed != b.committed)
		return a.committed ? 1 : -1;
	return 0;
}

static inline bool lcr_vote_eq(struct lcr_vote a, struct lcr_vote b)
{
	return lcr_vote_cmp(a, b) == 0;
}

/* Log ids order by leader id, then by index (openraft's derived Ord). */
static inline int lcr_log_id_cmp(struct lcr_log_id a, struct lcr_log_id b)
{
	int c = lcr_leader_id_cmp(a.lid, b.lid);
	if (c != 0)
		return c;
	if (a.index != b.index)
		return a.index < b.index ? -1 : 1;
	return 0;
}

static inline bool lcr_log_id_eq(struct lcr_log_id a, struct lcr_log_id b)
{
	return lcr_log_id_cmp(a, b) == 0;
}

static inline bool lcr_log_id_is_none(struct lcr_log_id a)
{
	return a.index == 0;
}

static inline struct lcr_log_id lcr_log_id_none(void)
{
	struct lcr_log_id none = { { 0, 0 }, 0 };
	return none;
}

/*
 * An I/O identity. Every storage command of the core carries one with a fresh
 * `seq` (strictly increasing per replica). `vote` and `last` describe the
 * durable state once this command and every earlier one are on stable
 * storage; storage reports completions by echoing the io id of the newest
 * command made durable.
 */
struct lcr_io_id {
	uint64_t seq;
	struct lcr_vote vote;
	struct lcr_log_id last;
};

/* Network errors, mirroring openraft's RPCError (openraft-reference.md §1). */
enum lcr_net_err {
	LCR_NET_TIMEOUT = 1,
	LCR_NET_UNREACHABLE = 2, /* back off before retrying */
	LCR_NET_NETWORK = 3,	 /* retry now */
	LCR_NET_REMOTE = 4,
	LCR_NET_CLOSED = 5,
};

/*
 * The configured backoff (openraft's Config::backoff): base_ms for the first
 * backoff, doubled for each one in a row, capped at 1 s. With the default
 * 200 ms: 200, 400, 800, 1000, 1000 ... ms.
 */
static inline uint64_t lcr_backoff_default_ns(uint64_t base_ms, uint32_t step)
{
	const uint64_t cap = 1000ull * 1000 * 1000;
	uint64_t d = base_ms * 1000 * 1000;
	for (uint32_t i = 0; i < step && d < cap; i++)
		d *= 2;
	return d > cap ? cap : d;
}

/* How acknowledged writes are made durable (the node's `durability`). */
enum lcr_durability {
	LCR_DURABILITY_FSYNC = 1, /* acknowledged = on stable storage (default) */
	LCR_DURABILITY_NONE = 2,  /* acknowledged = written; UNSAFE, benchmarks only */
};

/* How a log batch becomes durable; chosen by measurement (docs/benchmarks.md). */
enum lcr_io_mode {
	LCR_IO_DIRECT_DSYNC = 1,       /* O_DIRECT|O_DSYNC: one write (default) */
	LCR_IO_DIRECT_FDATASYNC = 2,   /* O_DIRECT write + linked fdatasync */
	LCR_IO_BUFFERED_FDATASYNC = 3, /* page cache write + linked fdatasync */
};

/*
 * The allocation hook: everything the library allocates (cores, logs,
 * transports, lcores) comes from it, at start-up. NULL alloc: malloc/free.
 * `alloc` need not zero nor align beyond malloc's guarantee.
 */
struct lcr_allocator {
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *ptr);
	void *ctx;
};

/* Memory from `a` (NULL alloc: malloc), not zeroed, or NULL. */
static inline void *lcr_allocator_alloc(const struct lcr_allocator *a, size_t size)
{
	return a->alloc ? a->alloc(a->ctx, size) : malloc(size);
}

/*
 * Zeroed memory from `a` (NULL alloc: calloc, which takes large blocks from
 * pages the kernel already zeroed instead of writing every byte), or NULL.
 */
static inline void *lcr_allocator_zalloc(const struct lcr_allocator *a, size_t size)
{
	if (!a->alloc)
		return calloc(1, size);
	void *p = a->alloc(a->ctx, size);
	if (p)
		memset(p, 0, size);
	return p;
}

/* Give back what lcr_allocator_zalloc(a, ...) returned; NULL is fine. */
static inline void lcr_allocator_free(const struct lcr_allocator *a, void *p)
{
	if (!p)
		return;
	if (a->free)
		a->free(a->ctx, p);
	else
		free(p);
}

/* ---------------------------------------------------------------------------
 * Messages between replicas of one group (transport-independent).
 * ------------------------------------------------------------------------- */

enum lcr_msg_type {
	LCR_MSG_VOTE_REQ = 1,
	LCR_MSG_VOTE_RESP = 2,
	LCR_MSG_APPEND_REQ = 3,
	LCR_MSG_APPEND_RESP = 4,
	LCR_MSG_TRANSFER_LEADER = 5,
	/* 6 is the wire's stream acknowledgement, never a core message. */
	LCR_MSG_READ_INDEX_REQ = 7,
	LCR_MSG_READ_INDEX_RESP = 8,
	LCR_MSG_SNAPSHOT_REQ = 9,
	LCR_MSG_SNAPSHOT_RESP = 10,
};

/*
 * VoteRequest {vote, last_log_id, leadership_transfer}, also used for
 * pre-vote. A transfer names the leader that handed over (`transfer_from`):
 * only a voter whose promise is to that very leader may ignore it.
 */
struct lcr_vote_req {
	struct lcr_vote vote;
	struct lcr_log_id last_log_id;
	struct lcr_vote transfer_from;
	bool leadership_transfer;
	bool pre_vote; /* a Pre-Vote: "would you grant?", nothing is persisted */
};

/* VoteResponse {vote, vote_granted, last_log_id}. */
struct lcr_vote_resp {
	struct lcr_vote vote;	  /* the responder's vote after handling the request */
	struct lcr_vote req_vote; /* the vote that was asked for (to drop stale replies) */
	struct lcr_log_id last_log_id;
	bool granted;
	bool pre_vote;
};

/*
 * AppendEntries on a replication stream. `stream_id` names the leader's
 * current stream to this follower (it changes on a rewind), `inflight_id` the
 * request within it (0 for a heartbeat). `send_ns` is the leader's clock at
 * send time, echoed back so that acknowledgements feed its lease clock.
 * `send_seq` numbers every request the leader sends, echoed too: a ReadIndex
 * read needs a quorum to acknowledge a request sent after the read arrived,
 * which times alone cannot tell apart within one clock reading.
 */
struct lcr_append_req {
	struct lcr_vote vote;
	struct lcr_log_id prev;
	struct lcr_log_id leader_commit;
	uint64_t stream_id;
	uint64_t inflight_id;
	uint64_t send_ns;
	uint64_t send_seq;
	uint32_t n_entries;
	const struct lcr_entry *entries; /* n_entries entries, indexes prev.index+1.. */
};

enum lcr_append_result {
	LCR_APPEND_OK = 1,	    /* Ok(matching): `log_id` is durable and matches */
	LCR_APPEND_CONFLICT = 2,    /* Conflict(prev): `log_id` is the request's prev */
	LCR_APPEND_HIGHER_VOTE = 3, /* HigherVote(vote): `vote` is the responder's vote */
};

struct lcr_append_resp {
	uint32_t result;      /* enum lcr_append_result */
	struct lcr_vote vote; /* HIGHER_VOTE: responder's vote; else the request's vote */
	struct lcr_log_id log_id;
	uint64_t stream_id;
	uint64_t inflight_id;
	uint64_t send_ns;  /* echoed from the request */
	uint64_t send_seq; /* echoed from the request */
};

/* TransferLeaderRequest {from_leader, to_node_id, last_log_id}. */
struct lcr_transfer_req {
	struct lcr_vote from_leader;
	uint32_t to;
	struct lcr_log_id last_log_id;
};

/*
 * A follower's linearizable read (ReadIndex from a follower, as etcd does):
 * "confirm your leadership and tell me your read index". `vote` is the
 * leadership the follower follows (its committed vote); a leader answers
 * only for itself. `read_id` is the follower's newest read when it sent the
 * request: every read of its own up to it arrived before the request left,
 * so one answer serves all of them.
 */
struct lcr_read_index_req {
	struct lcr_vote vote;
	uint64_t read_id;
};

enum lcr_read_index_result {
	LCR_READ_INDEX_OK = 1,		/* `read_log_id`: serve once applied >= it */
	LCR_READ_INDEX_NOT_LEADER = 2,	/* not the leadership the follower asked */
	LCR_READ_INDEX_TRANSFER = 3,	/* the leader is handing over */
	LCR_READ_INDEX_TIMEOUT = 4,	/* no quorum confirmed it within read_timeout */
	LCR_READ_INDEX_FULL = 5,	/* the leader holds reads_max reads already */
	LCR_READ_INDEX_UNSUPPORTED = 6, /* the transport cannot ask (net.c's default) */
};

struct lcr_read_index_resp {
	uint32_t result;	       /* enum lcr_read_index_result */
	struct lcr_vote vote;	       /* the responder's vote */
	uint64_t read_id;	       /* echoed from the request */
	struct lcr_log_id read_log_id; /* OK: max(committed, the leader's no-op); else none */
};

/*
 * A snapshot's meta (openraft's SnapshotMeta, less the membership, which the
 * snapshot's file carries and lcr_snapshot_req names beside it).
 * `last` is the last entry the snapshot covers: the state machine after
 * applying every entry up to it. `id` names one build (the builder's choice,
 * unique on that node); two snapshots with the same `last` hold the same state.
 */
struct lcr_snapshot_meta {
	struct lcr_log_id last;
	uint64_t id;
};

/*
 * A whole snapshot (openraft's full_snapshot, InstallSnapshot in one piece).
 * The leader's core sends it with `data` 0 and `size` 0: the runtime and the
 * transport move the bytes of the snapshot named by `meta` in chunks, and
 * the receiving side hands the request to its core only once every byte is
 * there and checked, with `data` its own handle to them (a temporary file)
 * and `size` their number. The core never reads the bytes; it echoes `data`
 * in LCR_CMD_INSTALL_SNAPSHOT. stream_id, inflight_id, send_ns and send_seq
 * are those of an AppendEntries on the follower's stream, echoed the same way.
 */
struct lcr_snapshot_req {
	struct lcr_vote vote;
	struct lcr_snapshot_meta meta;
	uint64_t stream_id;
	uint64_t inflight_id;
	uint64_t send_ns;
	uint64_t send_seq;
	uint64_t size;
	uint64_t data;
	/* The membership at meta.last, where the sender knows it (the snapshot
	 * file carries it); NULL: the receiver's own stays. Valid during the step. */
	const struct lcr_membership *membership;
};

/*
 * The answer (openraft's SnapshotResponse {vote}): `vote` above the
 * request's is HigherVote; otherwise the follower holds everything up to
 * `last` (the request's meta.last), durably: installed, or already
 * committed there. The stream fields are echoed from the request.
 */
struct lcr_snapshot_resp {
	struct lcr_vote vote;
	struct lcr_log_id last;
	uint64_t stream_id;
	uint64_t inflight_id;
	uint64_t send_ns;
	uint64_t send_seq;
};

struct lcr_msg {
	uint32_t type; /* enum lcr_msg_type */
	uint32_t from;
	uint32_t to;
	union {
		struct lcr_vote_req vote_req;
		struct lcr_vote_resp vote_resp;
		struct lcr_append_req append_req;
		struct lcr_append_resp append_resp;
		struct lcr_transfer_req transfer;
		struct lcr_read_index_req read_index_req;
		struct lcr_read_index_resp read_index_resp;
		struct lcr_snapshot_req snapshot_req;
		struct lcr_snapshot_resp snapshot_resp;
	};
};

#endif /* LCR_TYPES_H */
