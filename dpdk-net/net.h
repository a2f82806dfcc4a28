/* SPDX-License-Identifier: MIT */
/*
 * The network contract: how the Raft groups of a node talk to their peers
 * (design.md, "Network contract"; docs/architecture.md, "Network contract").
 *
 * It mirrors openraft's RaftNetworkV2 one to one, in C. A transport is a table
 * of non-blocking operations on one target node of one group; none of them
 * returns a result. Every outcome comes back later, on the lcore that owns
 * the group, through the completion functions below (lcr_net_reply,
 * lcr_net_fail), and the node turns it into an event for the core. The table:
 *
 *   op               required  default when the transport leaves it NULL
 *   ---------------  --------  -----------------------------------------------
 *   append_entries   yes       -
 *   stream_append    no        sequential: one AppendEntries in flight per
 *                              target; the next goes out only after the reply
 *                              (or error) of the previous, on append_entries
 *   vote             yes       -
 *   pre_vote         no        a granting reply, VoteResponse(req.vote, no last
 *                              log id, granted), as if from the target; but
 *                              while the transport reports the target failing,
 *                              an error, never a grant
 *   full_snapshot    yes (*)   none: a SNAPSHOT_REQ fails at once with
 *                              UNREACHABLE "full_snapshot not implemented"
 *                              (with cancel_snapshot, openraft's `cancel`)
 *   transfer_leader  no        the error UNREACHABLE "transfer_leader not
 *                              implemented", reported for that target
 *   read_index       no        an answer as if from the target, result
 *                              LCR_READ_INDEX_UNSUPPORTED: the follower's
 *                              reads fail with -ENOTSUP (a follower cannot
 *                              serve reads without asking its leader)
 *   backoff          no        the core's backoff_ms doubled per backoff in a
 *                              row, 1 s cap: 200, 400, 800, 1000, 1000 ... ms
 *
 *   (*) Required of a node that may send snapshots (lcr_net_config.snapshots:
 *       its log may be purged, so a lagging follower can only catch up from
 *       a snapshot): opening refuses a transport without it, naming the op.
 *       openraft's own default (chunks sent as InstallSnapshot calls) needs
 *       an op that carries bytes, and none of the required ops does: an
 *       AppendEntries holds entries, which a transport may encode in any way
 *       of its own. So there is no default; a node whose log is never purged
 *       needs none (its followers catch up from the log).
 *
 * Errors mirror RPCError (enum lcr_net_err in types.h): TIMEOUT, UNREACHABLE
 * (back off before retrying), NETWORK (retry now), REMOTE; full_snapshot adds
 * CLOSED (replication closed on purpose). A replication error reaches the
 * core as LCR_EV_NET_ERROR and weighs as openraft's backoff rank: UNREACHABLE
 * and REMOTE back the target off at once, TIMEOUT and NETWORK after eleven in
 * a row; every error except CLOSED restarts the core's stream to it.
 *
 * RPC options (struct lcr_net_opts, openraft's RPCOption) go with every op:
 * a hard TTL, the soft TTL (3/4 of it) the transport should enforce, and the
 * snapshot chunk size. The TTLs are openraft's: AppendEntries and heartbeats
 * the heartbeat interval, votes, pre-votes, transfers and read index
 * requests the minimum election timeout. The node ends a unary call it is waiting for at the hard
 * TTL with TIMEOUT (and a late error for it is ignored); a reply that comes after that still
 * reaches the core, which matches replies by what they echo (stream and inflight ids, the vote
 * asked for) and drops stale ones.
 *
 * Streams. The core numbers its AppendEntries per target with a stream id
 * (a new one after every error, Conflict or leadership change) and an
 * inflight id within it. stream_append takes them one at a time, in order,
 * without waiting for replies; its results are the core's own append
 * responses, Ok(matched), Conflict(prev) and HigherVote(vote), delivered with
 * lcr_net_reply. The stream ends at its first error (lcr_net_fail with the
 * call of any request on it); the core then opens a new one.
 *
 * read_index (not in RaftNetworkV2: openraft leaves follower reads to an
 * application RPC) carries a follower's READ_INDEX_REQ to its leader; the
 * reply is the leader's READ_INDEX_RESP, by lcr_net_reply. The node keeps no
 * TTL for it and tells the core nothing of its errors: the core asks again
 * after a heartbeat interval without an answer and fails the reads at its
 * read timeout.
 *
 * The server side. A request from a peer (AppendEntries, vote, pre-vote,
 * TransferLeader, READ_INDEX_REQ) reaches the node through lcr_net_deliver(),
 * a snapshot through lcr_net_snapshot_begin() and the calls after it;
 * the core's replies to requests (APPEND_RESP, VOTE_RESP, READ_INDEX_RESP,
 * SNAPSHOT_RESP) go back through the transport's respond(), addressed to the requester. A reply
 * echoes what the requester needs to match it (stream id, inflight id and send sequence for
 * AppendEntries, the requested vote and the pre-vote flag for votes, the
 * read id for read index requests), so a
 * transport built on a request/response RPC system may match them there; the
 * core may also leave a request unanswered (a stale one), which the caller's
 * TTL covers.
 *
 * Rules for a transport:
 *   - Ops, completions and lcr_net_deliver run on the owning lcore only; an op
 *     never blocks. A transport fed by other threads hands messages over
 *     itself and delivers them from poll().
 *   - The request handed to an op (and the entries of an AppendEntries) is
 *     valid only during the call: encode or copy it there.
 *   - An op may report an error from inside itself (a target known to be
 *     down): the node holds it and acts on it after the op returns. Requests
 *     (lcr_net_deliver) must come from poll(), never from inside an op.
 *   - A transport may drop a request it has no room for, as a network drops
 *     a datagram: the TTL (unary calls) and the core's retries (streams)
 *     recover.
 *
 * Peers learned at run time. A transport learns the peers' addresses at open
 * (lcr_net_env.peers); node addresses also travel inside a group's
 * membership, so a node the config never named may have to be reached later.
 * Two optional ops, set_peer and forget_peer (both or neither), let the
 * runtime tell each lcore's transport where such a node listens and when it
 * left every membership. Without them the transport knows only env->peers,
 * and the runtime refuses a membership naming another address
 * (lcr_net_set_peer says -ENOTSUP, naming the transport). Addresses are text,
 * "HOST:PORT" or "[IPV6]:PORT": lcr_peer_addr_parse() and
 * lcr_peer_addr_format() below read and write them.
 *
 * A node gets its transport from a factory (struct lcr_net_factory, in
 * lcr_node_config.transport; NULL: the built-in UDP transport, udp.h), one
 * transport per lcore. net.c sits between the runtime and the transport: it
 * dispatches the core's messages to the ops, implements the defaults above,
 * enforces the TTLs and hands results to the runtime as events (net_host.h,
 * the runtime's side, not installed).
 */
#ifndef LCR_NET_H
#define LCR_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

struct lcr_net;
struct lcr_net_group;

/*
 * A snapshot to send: full_snapshot's `snapshot` (openraft's Snapshot, which
 * carries a reader of the data). The node fills it; the bytes come from a
 * file read asynchronously (io_uring), so the transport pulls them when it
 * has room for more, and a pull may find none ready yet.
 */
struct lcr_net_snapshot {
	struct lcr_msg req; /* the core's LCR_MSG_SNAPSHOT_REQ (data and size 0) */
	uint64_t size;	    /* data bytes */
	/*
	 * The next bytes, at most `max`, from where the last pull stopped:
	 * returns their number with *data pointing at them (valid until the
	 * next pull), 0 when none are ready yet (ask again in a later loop
	 * iteration), or -errno (the source failed: fail the call). Never
	 * called past `size`.
	 */
	long (*pull)(void *src, const void **data, size_t max);
	void *src;
};

enum lcr_net_op {
	LCR_NET_OP_APPEND = 1,	      /* append_entries: unary AppendEntries */
	LCR_NET_OP_STREAM_APPEND = 2, /* stream_append: one request of the stream */
	LCR_NET_OP_VOTE = 3,
	LCR_NET_OP_PRE_VOTE = 4,
	LCR_NET_OP_SNAPSHOT = 5,   /* full_snapshot */
	LCR_NET_OP_TRANSFER = 6,   /* transfer_leader */
	LCR_NET_OP_READ_INDEX = 7, /* read_index: a follower's READ_INDEX_REQ */
	LCR_NET_OP_MAX
};

/* openraft's RPCOption. */
struct lcr_net_opts {
	uint64_t hard_ttl_ns;	       /* the node gives up on a unary call after this */
	uint64_t soft_ttl_ns;	       /* 3/4 of hard: the transport's own deadline */
	uint64_t snapshot_chunk_bytes; /* full_snapshot: bytes per chunk it sends */
};

/*
 * One operation in progress, handed to the op and back to lcr_net_fail().
 * The transport copies it if it answers later; it owns nothing.
 */
struct lcr_net_call {
	uint32_t op;	    /* enum lcr_net_op */
	uint32_t group;	    /* the Raft group */
	uint32_t target;    /* the node it goes to */
	void *client;	    /* what new_client() made for (group, target), or NULL */
	uint64_t stream_id; /* AppendEntries: the core's stream; else 0 */
	uint64_t id;	    /* unique among the calls of this lcore */
	/* AppendEntries that is a heartbeat (no entries, inflight id 0): its
	 * failure does not back replication off (openraft's heartbeats are
	 * workers of their own, apart from replication and its backoff). */
	bool heartbeat;
};

struct lcr_transport;
struct lcr_peer_addr;

/*
 * The table. Required: append_entries, vote, respond, poll. Everything else
 * may be NULL: the RaftNetworkV2 ops then get the defaults above, the others
 * do nothing.
 */
struct lcr_net_ops {
	const char *name; /* for messages and metrics ("udp") */

	/* ---- RaftNetworkFactory ------------------------------------------- */
	/*
	 * new_client(target): state for one target of one group, made when the
	 * group opens (setup, may allocate). Returns 0 or -errno with a sentence
	 * in `why`. NULL: every call carries client NULL.
	 */
	int (*new_client)(struct lcr_transport *t, uint32_t group, uint32_t target, void **client,
			  char *why, size_t why_len);
	void (*drop_client)(struct lcr_transport *t, void *client);

	/* ---- peers learned at run time (not in openraft: its network is the
	 * application's; optional, both or neither) ------------------------ */
	/*
	 * set_peer(p): node p->id listens at p->host, its lcore 0 on p->port
	 * (lcore i on p->port + i, as for env->peers): from the return on,
	 * sends to p->id go there, and datagrams from there are p->id's (the
	 * check that a sender is who it says). A node already known (from
	 * env->peers or an earlier call) moves: what comes from its old address
	 * is a stranger's from then on. An address belongs to one node: one
	 * that another node had is taken from it (a new node at the address of
	 * one it replaced), and that node is unreachable until it gets one again.
	 *
	 * Called on the owning lcore, from its loop, never from inside an op or
	 * from the transport's own poll/tick/flush; never for this node itself
	 * nor node 0; p->host is non-empty and terminated, p->port not 0 (net.c
	 * checks all of this). It must not block: p->host must be a numeric
	 * address, and a host name is refused (-EINVAL, the sentence says to
	 * give an address), for resolving it would wait on DNS on the lcore.
	 * It makes no client: clients come from new_client as before, and one
	 * may exist before its node's address is known (its sends are then lost
	 * and counted, as to a node that does not answer).
	 *
	 * Returns 0, or -errno with a sentence in `why`, and then nothing
	 * changed: -EINVAL (an address this transport cannot use: a name, a
	 * family it cannot reach or carry in its datagrams, a port past 65535
	 * for this lcore), -ENOSPC (its table of peers is full), -ENOTSUP (it
	 * cannot learn peers in the mode it runs in).
	 */
	int (*set_peer)(struct lcr_transport *t, const struct lcr_peer_addr *p, char *why,
			size_t why_len);
	/*
	 * forget_peer(id): node `id` is in no membership any more. From the
	 * return on, its datagrams are dropped as a stranger's (and counted so),
	 * and nothing more is sent to it: what was queued for it is dropped
	 * (counted as send errors). The same calling rules as set_peer. The
	 * runtime drops the node's clients first (drop_client); a transport
	 * copes with any left: their sends are lost as to a node that does not
	 * answer, and their calls end by the TTL or with UNREACHABLE. A node
	 * the transport does not know is 0: forgetting is idempotent. A later
	 * set_peer makes the node known again. Returns 0 or -errno.
	 */
	int (*forget_peer)(struct lcr_transport *t, uint32_t id);

	/* ---- RaftNetworkV2, one target per call ---------------------------- */
	/* Send one AppendEntries (LCR_MSG_APPEND_REQ); the reply is its
	 * APPEND_RESP, by lcr_net_reply(). */
	void (*append_entries)(struct lcr_transport *t, const struct lcr_net_call *call,
			       const struct lcr_msg *req, const struct lcr_net_opts *opt);
	/* Put the next request on the target's stream (call->stream_id) and
	 * return at once: requests are pipelined, replies come in any number
	 * later, an error ends the stream. */
	void (*stream_append)(struct lcr_transport *t, const struct lcr_net_call *call,
			      const struct lcr_msg *req, const struct lcr_net_opts *opt);
	/*
	 * Optional, with stream_append: the bytes of AppendEntries (its
	 * encoding, lcr_wire_append_size) the stream of `client` takes now
	 * without dropping any. The node then hands it requests only as they
	 * fit (cutting them after an entry), and holds the rest, at most the
	 * core's inflight_max + 2 requests per target, until the window frees;
	 * NULL: every request goes at once, and one the transport has no room
	 * for is the transport's to drop or report.
	 */
	uint64_t (*stream_room)(const struct lcr_transport *t, void *client);
	/* LCR_MSG_VOTE_REQ; the reply is its VOTE_RESP. */
	void (*vote)(struct lcr_transport *t, const struct lcr_net_call *call,
		     const struct lcr_msg *req, const struct lcr_net_opts *opt);
	/* The same with req->vote_req.pre_vote set: the target only says whether
	 * it would grant, and persists nothing. */
	void (*pre_vote)(struct lcr_transport *t, const struct lcr_net_call *call,
			 const struct lcr_msg *req, const struct lcr_net_opts *opt);
	/*
	 * Send a whole snapshot under `vote` (= snap->req.snapshot_req.vote) and
	 * return at once. The receiving side hands the bytes to its node
	 * (lcr_net_snapshot_begin/_write/_end below) and its core answers with a
	 * SNAPSHOT_RESP, which comes back through the receiver's respond() and
	 * ends the call here by lcr_net_reply(); an error ends it by
	 * lcr_net_fail(). `snap` stays valid until the call ends (or is
	 * cancelled); the transport does not use it after reporting the end.
	 * The node keeps no TTL for it: the core gives a snapshot up after its
	 * snapshot_timeout_ms and cancels it. One at a time per client.
	 */
	void (*full_snapshot)(struct lcr_transport *t, const struct lcr_net_call *call,
			      struct lcr_vote vote, const struct lcr_net_snapshot *snap,
			      const struct lcr_net_opts *opt);
	/* Stop the full_snapshot of `call` now (openraft's `cancel`: replication
	 * closed). The transport tells the receiver if it can (the receiver drops
	 * a silent transfer after a timeout anyway) and never touches the
	 * snapshot again; no result is reported for the call. */
	void (*cancel_snapshot)(struct lcr_transport *t, const struct lcr_net_call *call);
	/* LCR_MSG_TRANSFER_LEADER. Success carries nothing: only errors come
	 * back (lcr_net_fail). */
	void (*transfer_leader)(struct lcr_transport *t, const struct lcr_net_call *call,
				const struct lcr_msg *req, const struct lcr_net_opts *opt);
	/* LCR_MSG_READ_INDEX_REQ to the leader; the reply is its READ_INDEX_RESP,
	 * by lcr_net_reply(). Errors (lcr_net_fail) are counted only. */
	void (*read_index)(struct lcr_transport *t, const struct lcr_net_call *call,
			   const struct lcr_msg *req, const struct lcr_net_opts *opt);
	/* The interval, in ns, before retrying this client's target after the
	 * step-th backoff in a row (0, 1, 2 ...): openraft's Backoff iterator
	 * as a function. Called on the lcore; must not call back into the node. */
	uint64_t (*backoff)(struct lcr_transport *t, void *client, uint32_t step);

	/* ---- the server side ---------------------------------------------- */
	/* Send a reply the core made (APPEND_RESP, VOTE_RESP, READ_INDEX_RESP or
	 * SNAPSHOT_RESP) to resp->to. */
	void (*respond)(struct lcr_transport *t, uint32_t group, const struct lcr_msg *resp);

	/* ---- the lcore loop (not in RaftNetworkV2: how a transport runs) --- */
	/* Receive: hand requests to lcr_net_deliver(), replies to
	 * lcr_net_reply(), errors to lcr_net_fail(). True if anything came. */
	bool (*poll)(struct lcr_transport *t, uint64_t now_ns);
	/* Timers (retransmissions, the transport's own timeouts). */
	bool (*tick)(struct lcr_transport *t, uint64_t now_ns);
	/* Transmit what the ops queued in this loop iteration. True if it sent. */
	bool (*flush)(struct lcr_transport *t, uint64_t now_ns);
	/* When tick() or flush() next has work: 0 now, UINT64_MAX never. */
	uint64_t (*next_timer)(const struct lcr_transport *t);
	/*
	 * Sleep until input, `fd` readable or `timeout_ns`. NULL: the lcore
	 * sleeps on `fd` alone, so a transport that gets its input from other
	 * threads or sockets must supply it.
	 */
	int (*wait)(struct lcr_transport *t, int fd, uint64_t timeout_ns);
	/* Metrics as JSON members ("a":1,"b":2), lcore-wide and per client. */
	int (*metrics_json)(const struct lcr_transport *t, char *buf, size_t len);
	int (*client_metrics_json)(const struct lcr_transport *t, void *client, char *buf,
				   size_t len);
	/* Free everything (after every client was dropped). */
	void (*close)(struct lcr_transport *t);
};

/* A transport: embed it first in your own state, as with lcr_backend. */
struct lcr_transport {
	const struct lcr_net_ops *ops;
};

/* Most nodes a cluster lists (voters and learners), as the core's LCR_NODES_MAX. */
#define LCR_PEERS_MAX LCR_NODES_MAX

/* Where a node listens: its lcore i on `port` + i (the UDP transports). */
struct lcr_peer_addr {
	uint32_t id;
	char host[64]; /* an IPv4 or IPv6 address (no brackets), or a host name */
	uint16_t port;
};

/*
 * The longest address as text, its NUL included: "[" host "]:" and five
 * digits of port, host at most sizeof(lcr_peer_addr.host) - 1 bytes.
 */
#define LCR_PEER_ADDR_TEXT_MAX (1 + 63 + 2 + 5 + 1)

/*
 * Read node `id`'s address from `text`: "HOST:PORT" (an IPv4 address or a
 * host name: letters, digits, '.', '-', '_') or "[IPV6]:PORT" (an IPv6
 * address in brackets, a "%zone" after it allowed), the port 1..65535 in
 * decimal digits, nothing around it. An IPv6 address must be in brackets.
 * Reads at most LCR_PEER_ADDR_TEXT_MAX bytes of `text` (a longer one is
 * refused) and does not resolve names. Returns 0 with *out filled (host
 * without brackets), or -EINVAL with a sentence in `why` saying what is
 * wrong with the text (*out is then untouched). Any thread.
 */
LCR_API int lcr_peer_addr_parse(const char *text, uint32_t id, struct lcr_peer_addr *out, char *why,
				size_t why_len);
/*
 * Write `p`'s address as lcr_peer_addr_parse() reads it: "HOST:PORT", an
 * IPv6 host (one with a ':') in brackets. Returns the length written
 * (without the NUL), or -ENOSPC when `len` bytes do not hold it (the text is
 * then cut, NUL-terminated if len > 0); LCR_PEER_ADDR_TEXT_MAX bytes always
 * do for a host that fits lcr_peer_addr.host.
 */
LCR_API int lcr_peer_addr_format(const struct lcr_peer_addr *p, char *buf, size_t len);

/* What a factory gets to open the transport of one lcore. */
struct lcr_net_env {
	struct lcr_net *net;		   /* where its completions and requests go */
	uint32_t self;			   /* this node */
	uint64_t cluster;		   /* cluster id */
	uint32_t lcore;			   /* the lcore it serves: groups with id % n_lcores */
	uint32_t n_lcores;		   /* the same group runs on the same lcore everywhere */
	uint32_t n_peers;		   /* every node of the cluster, this one included */
	const struct lcr_peer_addr *peers; /* their addresses (valid while the node lives) */
	struct lcr_allocator alloc;	   /* the node's allocator; NULL alloc: malloc */
};

/*
 * Makes transports (openraft's RaftNetworkFactory, one level up: one
 * transport per lcore, then one client per target). open() returns 0 or
 * -errno with a sentence in `why`.
 */
struct lcr_net_factory {
	const char *name;
	int (*open)(void *ctx, const struct lcr_net_env *env, struct lcr_transport **out, char *why,
		    size_t why_len);
	void *ctx;
};

/* ---- called by the transport, on the owning lcore --------------------------- */

/*
 * A request from a peer (APPEND_REQ, VOTE_REQ with or without pre_vote,
 * TRANSFER_LEADER, READ_INDEX_REQ), with m->from the peer and m->to this node. The message
 * and its entries need to live only during the call: the core consumes them
 * before it returns. Anything else (unknown group or sender, a reply type) is
 * dropped and counted. Call from poll(), never from inside an op.
 */
LCR_API void lcr_net_deliver(struct lcr_net *n, uint32_t group, const struct lcr_msg *m);

/*
 * Receiving a snapshot (the server side of full_snapshot; openraft's
 * begin_receiving_snapshot, then install_full_snapshot). The transport opens
 * a receive when a peer's snapshot begins, writes its bytes in order as they
 * arrive and ends it once every byte is in and checked; the node keeps them
 * in a temporary file and, at the end, hands the SNAPSHOT_REQ to its core
 * with `data` naming that file. A transport holds at most one receive per
 * (group, sender) and aborts the ones it gives up (a cancel, a silent
 * sender, a newer snapshot, bad data): the node then removes the file.
 * All from poll() or tick(), on the owning lcore.
 *
 * begin: `req` is the SNAPSHOT_REQ (from the peer, to this node), `size` its
 * data bytes. Returns 0 with *handle set, or -errno (-EFBIG: over the node's
 * bound, -ENOENT: unknown group or sender, -EBUSY: no room for a receive).
 */
LCR_API int lcr_net_snapshot_begin(struct lcr_net *n, uint32_t group, const struct lcr_msg *req,
				   uint64_t size, uint64_t *handle);
/*
 * The next `len` bytes. Returns how many the node took (0 to len: its
 * buffers are busy writing; offer the rest again later), or -errno (the
 * receive failed; abort it).
 */
LCR_API long lcr_net_snapshot_write(struct lcr_net *n, uint32_t group, uint64_t handle,
				    const void *data, size_t len);
/*
 * Every byte was written and the whole snapshot's checksum matched. The
 * node takes it from here (makes it durable, gives its core the request):
 * the handle is the node's. 0, or -errno (the node dropped it).
 */
LCR_API int lcr_net_snapshot_end(struct lcr_net *n, uint32_t group, uint64_t handle);
/* Give a receive up: the node removes what it wrote. */
LCR_API void lcr_net_snapshot_abort(struct lcr_net *n, uint32_t group, uint64_t handle);

/*
 * `peer` of `group` has just (re)started (the transport heard so, e.g. the
 * UDP transport's hello): a leader sends it a heartbeat now rather than at
 * its next interval, so a follower that restarted is reached at once.
 * Optional for a transport; call from poll(), never from inside an op.
 */
LCR_API void lcr_net_peer_started(struct lcr_net *n, uint32_t group, uint32_t peer);

/*
 * A reply to one of our calls (APPEND_RESP for append_entries and
 * stream_append, VOTE_RESP for vote and pre_vote, READ_INDEX_RESP for
 * read_index, SNAPSHOT_RESP for full_snapshot), from m->from. It also says
 * the target is reachable again.
 */
LCR_API void lcr_net_reply(struct lcr_net *n, uint32_t group, const struct lcr_msg *m);

/*
 * `call` failed with `err` (enum lcr_net_err); `why` (may be NULL) says how,
 * for the logs. For an AppendEntries this ends its stream. An error for a
 * call that already ended (a late one, after the TTL) is ignored.
 */
LCR_API void lcr_net_fail(struct lcr_net *n, const struct lcr_net_call *call, uint32_t err,
			  const char *why);

LCR_API const char *lcr_net_err_name(uint32_t err);
LCR_API const char *lcr_net_op_name(uint32_t op);

#endif /* LCR_NET_H */
