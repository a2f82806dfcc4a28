/* SPDX-License-Identifier: MIT */
/*
 * The runtime's side of the network contract (net.h): how the owner of the
 * groups opens the transport of an lcore through net.c, sends the core's
 * messages, runs the transport in its loop and gets results back. Internal:
 * applications implement net.h, the node runtime uses this.
 */
#ifndef LCR_NET_HOST_H
#define LCR_NET_HOST_H

#include "net.h"

/*
 * What the owner of the groups does with results; `group` is the pointer it
 * gave lcr_net_group_open(). Each may step the core, which may send again
 * (lcr_net_send) from inside.
 */
struct lcr_net_host {
	/* A message for the core (LCR_EV_MSG): a request or a reply. */
	void (*deliver)(void *group, const struct lcr_msg *m);
	/* A call failed. AppendEntries: tell the core (LCR_EV_NET_ERROR). */
	void (*failed)(void *group, const struct lcr_net_call *call, uint32_t err, const char *why);
	/*
	 * Attach the entries of an AppendEntries the core sent without them
	 * (n_entries after prev, from the log): set m->append_req.entries, and
	 * lower n_entries if fewer are at hand or fit one message. Called
	 * right before the op; the entries need to live only during it. When
	 * it attached some but fewer than asked, net.c sends the rest as
	 * further requests (0: it gives up on this one; the core resends).
	 */
	void (*attach)(void *group, struct lcr_msg *m);
	/*
	 * Optional; used instead of attach when set. The same, bounded and
	 * without blocking: attach entries whose encoding (each with its
	 * header, the request's own part not counted) stays within
	 * `bytes_max`. Returns 0 with n_entries >= 1 (fewer than asked when
	 * the bound, one message, or an entry still being read from disk
	 * stops it), -EAGAIN when no entry can go now (the first does not fit,
	 * or is being read: net.c asks again in a later loop iteration), or
	 * another -errno (the entry cannot be had: net.c drops the request and
	 * the core's stream restarts).
	 */
	int (*attach_max)(void *group, struct lcr_msg *m, uint64_t bytes_max);
	/* Optional: `peer` (re)started (lcr_net_peer_started): a leader
	 * heartbeats now. */
	void (*peer_started)(void *group, uint32_t peer);

	/* ---- snapshots (may be NULL in a node that sends and takes none) ---- */
	/*
	 * The source of a SNAPSHOT_REQ the core sent: the newest durable
	 * snapshot, if its meta.last is the request's (m->snapshot_req.meta).
	 * Fill snap->size, pull and src (snap->req is set). 0, or -errno
	 * (-ENOENT: none matches; the call fails and the core tries again).
	 */
	int (*snap_open)(void *group, const struct lcr_msg *m, struct lcr_net_snapshot *snap);
	/* The send ended (answered, failed, cancelled): release the source. */
	void (*snap_close)(void *group, struct lcr_net_snapshot *snap);
	/* Receiving: lcr_net_snapshot_begin/_write/_end/_abort (net.h), with the
	 * group checked and the sender a peer of it. snap_end takes the handle
	 * over: the host makes the bytes durable, then steps its core with the
	 * request (`data` the handle, `size` the bytes), itself. */
	int (*snap_begin)(void *group, const struct lcr_msg *req, uint64_t size, uint64_t *handle);
	long (*snap_write)(void *group, uint64_t handle, const void *data, size_t len);
	int (*snap_end)(void *group, uint64_t handle);
	void (*snap_abort)(void *group, uint64_t handle);
};

struct lcr_net_config {
	uint32_t self;
	uint32_t groups_max;	       /* groups this lcore may open */
	uint32_t queue_max;	       /* sequential stream_append: requests waiting per target */
	uint32_t events_max;	       /* results held for the loop (errors inside ops, defaults) */
	uint64_t append_ttl_ns;	       /* hard TTL of AppendEntries (heartbeat interval) */
	uint64_t vote_ttl_ns;	       /* votes, pre-votes, transfers (election timeout min) */
	uint64_t snapshot_ttl_ns;      /* full_snapshot (openraft install_snapshot_timeout) */
	uint64_t snapshot_chunk_bytes; /* openraft snapshot_max_chunk_size */
	uint64_t backoff_ms;	       /* the core's backoff base */
	/* The node may send snapshots (its log is purged): the transport must
	 * have full_snapshot, and the host its snap_* callbacks. */
	bool snapshots;
	struct lcr_allocator alloc; /* NULL alloc: malloc */
};

/*
 * Defaults for node `self` from the Raft options the node runs with: TTLs
 * from the heartbeat interval and the minimum election timeout, a sequential
 * queue of inflight_max + 2 requests, the backoff base.
 */
void lcr_net_config_default(struct lcr_net_config *c, uint32_t self, uint64_t heartbeat_ms,
			    uint64_t election_timeout_min_ms, uint32_t inflight_max,
			    uint64_t backoff_ms);

/*
 * Open the transport of one lcore through `f` and check its table. A
 * required op missing is refused: -EINVAL and a sentence naming it in `why`.
 * env->net is filled in here.
 */
int lcr_net_open(struct lcr_net **out, const struct lcr_net_factory *f,
		 const struct lcr_net_env *env, const struct lcr_net_config *cfg,
		 const struct lcr_net_host *host, char *why, size_t why_len);
void lcr_net_close(struct lcr_net *n);

/* The transport, for the tests and metrics. */
struct lcr_transport *lcr_net_transport(const struct lcr_net *n);

/* A group with its peers (every node but this one); setup only. */
int lcr_net_group_open(struct lcr_net *n, uint32_t group, void *host_group, const uint32_t *targets,
		       uint32_t n_targets, struct lcr_net_group **out, char *why, size_t why_len);
/*
 * Whether the group has a client for `target`; add one (a node a membership
 * names that the group did not start with). When the group already has
 * LCR_NODES_MAX, the slot of a node not in `keep` (the members) with nothing
 * in flight is taken. Returns 0, or -errno with a sentence (-ENOSPC: no slot
 * free; the new_client's error). On the lcore, outside the ops.
 */
bool lcr_net_group_has_target(const struct lcr_net_group *g, uint32_t target);
int lcr_net_group_add_target(struct lcr_net_group *g, uint32_t target, const uint32_t *keep,
			     uint32_t n_keep, char *why, size_t why_len);
void lcr_net_group_close(struct lcr_net_group *g);

/*
 * Send a message the core made (LCR_CMD_SEND) through the op for its type:
 * APPEND_REQ to stream_append (or the sequential default), VOTE_REQ to vote or
 * pre_vote, TRANSFER_LEADER to transfer_leader, READ_INDEX_REQ to read_index
 * (or its default), APPEND_RESP, VOTE_RESP and READ_INDEX_RESP to respond. Never calls the host
 * from inside: results come from the loop. `now_ns` is the time of the owner's loop iteration (TTLs
 * start there).
 */
void lcr_net_send(struct lcr_net_group *g, const struct lcr_msg *m, uint64_t now_ns);

/*
 * This replica stopped leading: drop the AppendEntries still waiting in the
 * sequential default (they were made by that leadership, and the log they
 * would be read from may change under a new leader), and stop the snapshots
 * it was sending.
 */
void lcr_net_cancel(struct lcr_net_group *g);

/*
 * LCR_CMD_CANCEL_SNAPSHOT: stop the snapshot going to `target` on the core's
 * stream `stream_id` (any stream: 0). Its source is released; nothing is
 * reported for it. lcr_net_cancel() does this for every target.
 */
void lcr_net_cancel_snapshot(struct lcr_net_group *g, uint32_t target, uint64_t stream_id);

/* The backoff before retrying `target` (the transport's, or the default). */
uint64_t lcr_net_backoff_ns(const struct lcr_net_group *g, uint32_t target, uint32_t step);
/* Whether the transport has its own backoff. */
bool lcr_net_has_backoff(const struct lcr_net *n);

/*
 * Peers learned at run time (net.h, set_peer and forget_peer). The runtime
 * calls these on every lcore, each with its own net, from the loop (never
 * from inside a host callback or an op): set when a membership names the
 * address of a node this lcore's transport does not know, or a new address
 * for one it does; forget when a node left every membership (drop its
 * clients first).
 *
 * lcr_net_set_peer checks `p`: -EINVAL with a sentence for node 0, this
 * node, an empty or unterminated host or port 0; -ENOTSUP with a sentence
 * naming the transport when it has no set_peer (it knows only the peers it
 * opened with: the runtime refuses a membership naming another address);
 * else the transport's answer (net.h). lcr_net_forget_peer: 0, -EINVAL for
 * node 0 or this node, -ENOTSUP without forget_peer, or the transport's.
 */
int lcr_net_set_peer(struct lcr_net *net, const struct lcr_peer_addr *p, char *why, size_t why_len);
int lcr_net_forget_peer(struct lcr_net *net, uint32_t id);
/* Whether the transport learns peers at run time (has set_peer and forget_peer). */
bool lcr_net_can_learn_peers(const struct lcr_net *n);

/* The loop: results held for it, then the transport's receive. */
bool lcr_net_poll(struct lcr_net *n, uint64_t now_ns);
/* TTLs of calls in flight, then the transport's timers. */
bool lcr_net_tick(struct lcr_net *n, uint64_t now_ns);
/* The transport's transmit. */
bool lcr_net_flush(struct lcr_net *n, uint64_t now_ns);
/* When poll, tick or flush next has work (0: now). */
uint64_t lcr_net_next_timer(const struct lcr_net *n);
/* Sleep until input, `fd` or the timeout. */
int lcr_net_wait(struct lcr_net *n, int fd, uint64_t timeout_ns);

struct lcr_net_stats {
	uint64_t calls[LCR_NET_OP_MAX];	     /* ops called on the transport */
	uint64_t defaults[LCR_NET_OP_MAX];   /* requests a default served instead */
	uint64_t errors[LCR_NET_CLOSED + 1]; /* calls ended with an error, by kind */
	uint64_t requests;		     /* delivered to the core */
	uint64_t replies;		     /* delivered to the core */
	uint64_t responds;		     /* replies sent for the core */
	uint64_t pre_vote_refused;	     /* default pre_vote: target failing, no grant */
	uint64_t ttl_expired;		     /* unary calls ended at their hard TTL */
	uint64_t late;			     /* completions of calls that had already ended */
	uint64_t seq_dropped;		     /* sequential default: superseded or cancelled */
	uint64_t seq_full;		     /* sequential default: queue full */
	uint64_t events_full;		     /* results lost: the hold queue was full */
	uint64_t dropped;		     /* inbound for an unknown group or sender, bad type */
	uint64_t append_splits;		     /* AppendEntries sent in parts (over ~1 MiB) */
	uint64_t heartbeat_errors;	     /* heartbeats that failed (not told to the host) */
	uint64_t snap_no_source;	     /* SNAPSHOT_REQs with no matching snapshot to send */
	uint64_t snap_replaced;		     /* SNAPSHOT_REQs that replaced one still being sent */
	uint64_t snap_cancelled;	     /* sends cancelled (the core, or a role change) */
	uint64_t snap_rx_begun;		     /* receives opened for the transport */
	uint64_t snap_rx_refused;	     /* ... refused (unknown group or sender, the host) */
	uint64_t append_queued;		     /* AppendEntries held until room and entries allow */
	uint64_t append_waits;		     /* ... times one waited (no room, a read in flight) */
	uint64_t append_unattached;	     /* ... dropped: its entries cannot be had */
	uint64_t peers_started;		     /* peers that said they (re)started */
};

void lcr_net_stats(const struct lcr_net *n, struct lcr_net_stats *st);
/* net.c's counters and the transport's, as JSON members. */
int lcr_net_metrics_json(const struct lcr_net *n, char *buf, size_t len);
/* The transport's metrics of one target, as JSON members (0 bytes if none). */
int lcr_net_client_metrics_json(const struct lcr_net_group *g, uint32_t target, char *buf,
				size_t len);

#endif /* LCR_NET_HOST_H */
