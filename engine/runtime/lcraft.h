/* SPDX-License-Identifier: MIT */
/*
 * lcraft public API: run Raft groups on lcores, with durable storage on
 * io_uring and a UDP transport (on kernel sockets or DPDK ports), or a
 * transport of the application's own (lcr_node_config.transport).
 *
 * A node is one process with a node id. It runs `lcores` threads; each owns
 * the groups whose id modulo `lcores` is its index, and everything those
 * groups touch (ring, sockets, buffers, timers). An application gives each
 * group a state machine (lcr_sm_ops) and talks to a group from the group's
 * lcore: inside its callbacks, or in a task handed over with lcr_node_post()
 * from any other thread (a bounded ring per lcore).
 *
 * Everything with a callback completes on the group's lcore. Nothing blocks
 * an lcore except, in socket mode, sleeping while there is nothing to do.
 *
 * The sans-I/O core underneath (core.h) stays available for applications
 * that want to drive Raft with their own storage and network.
 *
 * Guide and example: docs/api.md, bench/example_embed.c.
 */
#ifndef LCRAFT_H
#define LCRAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "net.h"

#define LCRAFT_VERSION_MAJOR 0
#define LCRAFT_VERSION_MINOR 1
#define LCRAFT_VERSION_PATCH 0

struct lcr_node;
struct lcr_group;

/* Most lcores a node runs. */
#define LCR_LCORES_MAX 64

/*
 * The built-in UDP transport on DPDK ports instead of kernel sockets: the
 * same datagrams, in Ethernet/IPv4/UDP frames the node builds itself
 * (docs/architecture.md, "The DPDK path"). Nodes' addresses ([nodes]) must be
 * IPv4 literals. Needs a build with DPDK (lcr_node_open says when it has none).
 */
struct lcr_node_dpdk {
	bool enable;
	/* EAL arguments as a DPDK application takes them, blank-separated, e.g.
	 * "-l 0 --no-huge -m 256 --no-pci --no-shconf --vdev=net_memif0,...". */
	const char *eal;
	/* "node=port,...": the DPDK port (by name, e.g. net_memif0) that reaches a
	 * node; nodes not named: the first port. */
	const char *routes;
	/* "node=aa:bb:cc:dd:ee:ff,...": static Ethernet addresses; the others are
	 * learnt from the peers' frames and by ARP. */
	const char *neighbours;
	/*
	 * A directory: the node adds a memif port for every peer to the EAL
	 * arguments (net_memif<peer>, its socket <dir>/memif-<a>-<b>.sock for
	 * nodes a < b, a the server) and routes each peer to its own. One config
	 * file then serves every node of a cluster on one host.
	 */
	const char *memif_dir;
	uint32_t rx_desc; /* descriptors per queue; 0: 1024 */
	uint32_t tx_desc;
};

struct lcr_node_config {
	uint32_t id;	      /* this node */
	uint64_t cluster;     /* datagrams of other clusters are dropped */
	uint32_t lcores;      /* threads, each with its groups; default 1 */
	const char *data_dir; /* <data_dir>/group-<g>/ per group; made with its parents */
	/* Local address to bind; NULL (the default): this node's own address in
	 * `peers`, so its datagrams leave from the address its peers expect
	 * (they drop datagrams from any other). "0.0.0.0" binds every address,
	 * and the kernel then picks the source by route. */
	const char *bind_host;
	/* Every node the groups may reach, this node included: the voters, and
	 * nodes that are or may become members later. */
	uint32_t n_peers;
	struct lcr_peer_addr peers[LCR_PEERS_MAX];
	bool busy_poll; /* lcores never sleep (dedicate a core each) */
	/*
	 * Socket mode: after doing work, keep polling this long before sleeping
	 * (a sleeping vCPU may take tens of microseconds to wake). 0: sleep at
	 * once when idle.
	 */
	uint32_t idle_spin_us;
	/* The same while the lcore's storage writes are in flight (their
	 * completion is near): at most this long after the last work. */
	uint32_t io_spin_us;
	/*
	 * How the two above are used. false (the default): adaptively, as
	 * bounds: an lcore learns how long its idle gaps and its writes take
	 * (running medians) and polls only while what it waits for is due,
	 * and not at all when that is usually later than the bound allows (it
	 * would poll the whole bound and sleep anyway), so the CPU it burns
	 * follows the load. true: always the whole time.
	 */
	bool spin_fixed;
	uint32_t mtu;		/* datagram payload budget: default 1500 */
	uint32_t durability;	/* enum lcr_durability (types.h); default fsync */
	uint32_t io_mode;	/* enum lcr_io_mode (types.h); default direct-dsync */
	uint64_t segment_bytes; /* default 64 MiB */
	/* Faults injected on send (tests): ppm rates, delay, seed; 0: none. */
	uint32_t fault_loss_ppm, fault_dup_ppm, fault_reorder_ppm;
	uint64_t fault_delay_ns, fault_jitter_ns, fault_seed;
	struct lcr_node_dpdk dpdk; /* the UDP transport's DPDK path (enable: on) */
	/*
	 * CPU cores to pin the lcores to (pthread_setaffinity_np): lcore i runs
	 * on cores[i]; lcore 0 is the thread that calls lcr_node_run(), pinned
	 * there too. n_cores 0: not pinned; else n_cores == lcores.
	 */
	uint32_t n_cores;
	uint16_t cores[LCR_LCORES_MAX];
	/*
	 * Raft options. The id is filled in; so is the first membership of
	 * every group unless core.membership names one (n_configs 1): its
	 * voters and learners must be among `peers` (a peer it leaves out is a
	 * spare, added later with lcr_group_change_membership), and the same
	 * on every node. n_configs 0: every peer a voter. Membership changes
	 * are always on.
	 */
	struct lcr_core_config core;
	struct lcr_allocator alloc; /* everything the node allocates; NULL alloc: malloc */
	/*
	 * How the groups talk to their peers: a factory the node calls once per
	 * lcore for a transport that implements the network contract (net.h,
	 * openraft's RaftNetworkV2: append_entries and vote required, the rest
	 * with defaults), e.g. over the application's own RPC system. It must
	 * outlive the node. NULL: the built-in UDP transport on kernel sockets
	 * (bind_host, the peers' ports, mtu and the fault_* options apply to it
	 * alone).
	 */
	const struct lcr_net_factory *transport;
	/*
	 * Authenticated datagrams on the built-in UDP transport
	 * (docs/wire-protocol.md, "Authentication"): NULL (the default), none.
	 * Else LCR_NODE_AUTH_KEY_BYTES bytes, the cluster key every member
	 * holds, read during lcr_node_open() only (the caller may wipe it
	 * then); auth_alg 1 (aes256gcm, which needs AES-NI: the open refuses
	 * without, with a sentence) or 2 (chacha20poly1305), the same on every
	 * member; auth_boot >= 1, larger than in any earlier start of this node
	 * (persist it first: a boot used twice repeats nonces under one key).
	 */
	const uint8_t *auth_key;
	uint32_t auth_alg;
	uint64_t auth_boot;
};

#define LCR_NODE_AUTH_KEY_BYTES 32

/* Defaults: openraft's Raft options, fsync durability, one lcore. */
LCR_API void lcr_node_config_default(struct lcr_node_config *cfg);

/*
 * Create a node: check the config, open storage of no group yet, bind the
 * sockets. Returns 0 or -errno with a sentence in `why` naming what failed.
 */
LCR_API int lcr_node_open(struct lcr_node **out, const struct lcr_node_config *cfg, char *why,
			  size_t why_len);

/* The application's state machine of one group. Called on the group's lcore. */
struct lcr_sm_ops {
	/*
	 * Apply one committed entry that an application proposed (type
	 * LCR_ENTRY_NORMAL: blank and membership entries are not passed, so
	 * indexes may skip), in log order, exactly once per incarnation
	 * (after a restart the state machine is restored from the newest
	 * snapshot and the log after it is applied again; without the
	 * snapshot hooks, the whole log). `result` and
	 * `result_len` (at most 8 KiB, in `out`) go to the proposer's callback
	 * when this node proposed the entry.
	 */
	void (*apply)(void *sm, const struct lcr_entry *e, void *out, uint32_t *result_len);
	/* Role or leader changed (optional). */
	void (*role)(void *sm, uint32_t role, uint32_t leader);

	/*
	 * Snapshots (optional, all six or none: without them the group builds
	 * none, and a follower that needs one cannot catch up once its leader
	 * purged the entries it lacks).
	 *
	 * Building: snapshot_open() freezes the state as applied so far (every
	 * entry up to the last apply call) and returns a cursor on that frozen
	 * view, or NULL with a negative errno in *err. The runtime then reads it
	 * with snapshot_read(), a bounded number of bytes per loop iteration,
	 * while apply() goes on: whatever apply() changes must not show through
	 * the cursor (copy on write, a copy, or a view another thread fills).
	 * snapshot_read() copies up to `cap` next bytes into `buf` and returns
	 * how many, 0 at the end, or a negative errno (the build fails).
	 * snapshot_close() releases the cursor, at the end or to abandon it.
	 *
	 * Restoring (at start from the newest snapshot on disk, or when the
	 * leader sends one): restore_begin() says the state is about to be
	 * replaced by the snapshot `meta`; restore_chunk() hands its bytes in
	 * order, possibly over several loop iterations, with no apply() in
	 * between; restore_end() ends it. A negative errno from any of them
	 * means the bytes are not a state this machine can hold: the replica
	 * stops (and at start, the group does not open, saying so).
	 */
	void *(*snapshot_open)(void *sm, int *err);
	long (*snapshot_read)(void *sm, void *cursor, void *buf, size_t cap);
	void (*snapshot_close)(void *sm, void *cursor);
	int (*restore_begin)(void *sm, const struct lcr_snapshot_meta *meta);
	int (*restore_chunk)(void *sm, const void *data, size_t len);
	int (*restore_end)(void *sm);
};

/* Create (or, after a restart, reopen) group `id` with its state machine. */
LCR_API int lcr_group_open(struct lcr_node *n, uint32_t id, const struct lcr_sm_ops *ops, void *sm,
			   struct lcr_group **out, char *why, size_t why_len);

/*
 * Propose `len` bytes (at most 1 MiB; copied). Proposals of one loop
 * iteration go to the core together, as one batch. Returns 0, and then
 * `done` runs exactly once on the group's lcore: err 0 with the state
 * machine's result once the entry is applied here; -LCR_ENOTLEADER (leader
 * in `leader`, 0 if unknown), -LCR_ENOLEASE or -LCR_ETRANSFER when the batch
 * is refused; -LCR_ENOTLEADER too when this leadership ends before the entry
 * is applied (a newer leader, or CheckQuorum: no quorum heard from for a
 * lease and an election timeout), and then the entry may still commit under the next leader: the
 * outcome is unknown; -ECANCELED if the entry was replaced by another
 * leader's (it never committed); -LCR_EBACKLOG when the log's unwritten
 * entries fill its write buffer (the disk is behind: retry once some are
 * durable; the group metrics' storage.buffer_free is the watermark);
 * -LCR_ESTOPPED if the replica stopped. Or returns
 * -LCR_EFULL (this loop iteration's batch is full: retry at once) / -EINVAL
 * at once, and `done` is not called. Call on the
 * group's lcore.
 */
typedef void (*lcr_propose_fn)(void *ctx, int err, uint32_t leader, const void *result,
			       uint32_t result_len);
LCR_API int lcr_propose(struct lcr_group *g, const void *data, uint32_t len, lcr_propose_fn done,
			void *ctx);

/*
 * Linearizable read: returns 0, and `done` runs once on the group's lcore
 * when the state machine may be read (err 0: read it right then) or with why
 * not; or returns a negative error at once (-LCR_ENOTLEADER, -LCR_ENOLEASE,
 * -LCR_EFULL ...) and `done` is not called. On the leader: LCR_READ_INDEX or
 * LCR_READ_LEASE. On a follower: LCR_READ_INDEX, through the leader's read
 * index (docs/api.md); LCR_READ_LEASE there is -LCR_ENOTLEADER.
 */
typedef void (*lcr_read_fn)(void *ctx, int err, uint32_t leader);
LCR_API int lcr_read(struct lcr_group *g, uint32_t policy, lcr_read_fn done, void *ctx);

/*
 * Change the group's voters and learners (openraft's change_membership; the
 * core's lcr_core_change_membership, docs/api.md "Membership changes"):
 * `target` holds one config (its voters) and the learners. On the leader, one
 * change at a time: the same voters go as one entry; other voters go through
 * a joint config, then the target alone once that commits.
 *
 * A node this node's config does not list as a peer (lcr_node_config.peers)
 * needs its address in the target (lcr_membership.addrs, "HOST:PORT", an IPv6
 * host in brackets; numeric, for the lcore does not wait on DNS), unless the
 * current membership has one: the addresses travel in the membership entries,
 * so every member learns where the others listen, and they are kept for the
 * nodes that stay. A node that left every membership of an lcore is
 * forgotten there: its datagrams are a stranger's. The transport must learn
 * peers at run time (the built-in UDP transport does, except DPDK memif).
 *
 * Returns 0, and then `done` runs exactly once on the group's lcore: err 0
 * once the target is the committed membership here; -LCR_ENOTLEADER (leader
 * in `leader`, 0 if unknown) when this leadership ends first (a joint config
 * may be left in place: ask again on the new leader); -LCR_ESTOPPED when the
 * replica stops or the node closes; or, when called from a callback (the
 * call is then started in the next loop iteration), what the core refused
 * with. Or returns at once, with a sentence in `why` (may be NULL) and
 * without calling `done`: -EINVAL (no callback, more than one config, a
 * target lcr_membership_validate refuses, a node neither among the peers nor
 * with an address, an address that does not parse or the transport cannot
 * use, more than LCR_NODES_MAX nodes with the current ones), -ENOTSUP
 * (addresses, and a transport that knows only its config's peers), -EBUSY (a change is under
 * way), -LCR_ENOTLEADER, -LCR_ENOLEASE, -LCR_ETRANSFER. A leader the target
 * leaves out steps down once it commits (and `done` says 0). Call on the
 * group's lcore.
 */
typedef void (*lcr_membership_fn)(void *ctx, int err, uint32_t leader);
LCR_API int lcr_group_change_membership(struct lcr_group *g, const struct lcr_membership *target,
					char *why, size_t why_len, lcr_membership_fn done,
					void *ctx);

/*
 * The group's effective membership (the newest appended: every decision
 * follows it) in *effective, its entry in *id (none: the config's first
 * membership or a snapshot's), and in *committed whether it is committed (no
 * change under way); each may be NULL. Call on the group's lcore, or while
 * lcr_node_run() does not run.
 */
LCR_API void lcr_group_membership(const struct lcr_group *g, struct lcr_membership *effective,
				  struct lcr_log_id *id, bool *committed);

/* Triggers and toggles (lcr_event types LCR_EV_TRIGGER_* / LCR_EV_SET_TOGGLE);
 * `now_ns` is filled in here. Call on the group's lcore. */
LCR_API int lcr_group_event(struct lcr_group *g, const struct lcr_event *ev);

/* Metrics of one group as JSON (bytes written, or -ENOSPC). */
LCR_API int lcr_group_metrics_json(struct lcr_group *g, char *buf, size_t len);

LCR_API uint32_t lcr_group_id(const struct lcr_group *g);
LCR_API uint32_t lcr_group_lcore(const struct lcr_node *n, uint32_t group);
/* The core's state (role, leader, vote, log ids). Call on the group's lcore. */
LCR_API void lcr_group_status(const struct lcr_group *g, struct lcr_core_status *st);

/*
 * The node ids this group has seen hold Raft state, in ascending order: a
 * node that granted it a vote (not a pre-vote), acknowledged entries or a
 * snapshot (an index above 0), or sent it entries or a snapshot as leader,
 * and this node once its storage flushed anything. The group records them
 * durably in <data_dir>/group-N/held (docs/storage-format.md, "The held
 * file"), written off the lcore, so they survive restarts and leader
 * changes; lcraft-node's rejoin check asks for them (bench/rejoin.h). At
 * most LCR_HELD_MAX ids are kept. Copies at most `max` into `ids`; returns
 * how many the group holds. Call on the group's lcore, or while
 * lcr_node_run() does not run.
 */
#define LCR_HELD_MAX 64
LCR_API uint32_t lcr_group_held(const struct lcr_group *g, uint32_t *ids, uint32_t max);

/*
 * Run `fn(arg)` on lcore `lcore` soon; from any thread. Returns 0 or
 * -LCR_EFULL (the bounded ring of 1024 is full: try again), or -LCR_ESTOPPED
 * once lcr_node_close() has begun. A task accepted runs exactly once: on its
 * lcore while lcr_node_run() runs it (an lcore that stops first runs what was
 * posted before it noticed); posted while it does not run (before
 * lcr_node_run(), after it returned), at the next lcr_node_run(), or in
 * lcr_node_close() on the calling thread, before the groups close (what such
 * a task proposes is answered -LCR_ESTOPPED there).
 */
typedef void (*lcr_task_fn)(struct lcr_node *n, void *arg);
LCR_API int lcr_node_post(struct lcr_node *n, uint32_t lcore, lcr_task_fn fn, void *arg);

/*
 * ---- From any thread: requests and a completion queue ----
 *
 * lcr_submit() hands a proposal or a read to its group's lcore from any
 * thread; the answer fills the request, which then comes back on the
 * completion queue it was submitted to, in completion order. The application
 * owns each request: it stays untouched (and `data` readable) from
 * lcr_submit() until lcr_cq_reap() hands it back, and may be reused at once
 * after. Nothing is allocated per request.
 */
enum lcr_req_op {
	LCR_REQ_PROPOSE = 1, /* lcr_propose: `data`, `len` */
	LCR_REQ_READ = 2,    /* lcr_read: `policy` */
};

struct lcr_req {
	/* Set by the application. */
	uint32_t op;	  /* enum lcr_req_op */
	uint32_t group;	  /* the group's id */
	const void *data; /* LCR_REQ_PROPOSE: the entry (1 byte to 1 MiB) */
	uint32_t len;
	uint32_t policy;     /* LCR_REQ_READ: LCR_READ_INDEX or LCR_READ_LEASE */
	uint64_t timeout_ns; /* 0: none; else answered -LCR_ETIMEDOUT once passed
				(at most LCR_REQ_TIMEOUT_MAX) */
	void *result;	     /* LCR_REQ_PROPOSE: where the state machine's result goes */
	uint32_t result_cap; /* its size; a longer result is cut (result_len says) */
	void *user;	     /* the application's own */
	/* Set by lcraft when the request comes back. */
	int err;		  /* 0, or what lcr_propose/lcr_read would say; -LCR_ETIMEDOUT */
	uint32_t leader;	  /* with -LCR_ENOTLEADER: the leader if known, else 0 */
	uint32_t result_len;	  /* the whole result's length */
	struct lcr_log_id log_id; /* PROPOSE: the entry's; READ: what the state machine
				     had applied when the read was served; else 0 */
	uint64_t submitted_ns;	  /* lcraft's: CLOCK_MONOTONIC at lcr_submit() */
	void *slot;		  /* lcraft's: its slot on the queue (lcr_cancel) */
	uint32_t slot_gen;	  /* lcraft's: which taking of that slot */
};

/* The longest deadline a request may have (2^62 ns, 146 years); more: -EINVAL. */
#define LCR_REQ_TIMEOUT_MAX (1ull << 62)

/* Requests out at once on a queue, at most. */
#define LCR_CQ_DEPTH_MAX (1u << 20)

struct lcr_cq;

/*
 * A completion queue for up to `depth` requests out at once, read by one
 * thread. Open it after lcr_node_open(); close it after lcr_node_close() (which
 * answers what is still out, -LCR_ESTOPPED) and after reaping everything.
 */
LCR_API int lcr_cq_open(struct lcr_node *n, uint32_t depth, struct lcr_cq **out);
LCR_API void lcr_cq_close(struct lcr_cq *cq);

/*
 * Submit `r` from any thread: 0, or at once -EINVAL (a bad request),
 * -LCR_EFULL (`depth` requests are out, counting those back on the queue but
 * not reaped yet; or the lcore's task ring is full: reap, then retry) or -LCR_ESTOPPED (the node is
 * closing). After 0 the request comes back exactly once. A request answered -LCR_ETIMEDOUT may
 * still commit later (its entry may have been appended): as openraft says of
 * a client write whose wait timed out, the outcome is then unknown. A
 * request whose deadline passed still holds its slot of `depth` until the
 * proposal or read behind it ends.
 */
LCR_API int lcr_submit(struct lcr_cq *cq, struct lcr_req *r);

/* Up to `max` completed requests, without waiting: how many. The queue's thread. */
LCR_API uint32_t lcr_cq_reap(struct lcr_cq *cq, struct lcr_req **out, uint32_t max);

/* The same, waiting up to `timeout_ns` (0: forever) for at least one: how
 * many (0: the time passed), or -errno. */
LCR_API int lcr_cq_wait(struct lcr_cq *cq, struct lcr_req **out, uint32_t max, uint64_t timeout_ns);

/* An eventfd, readable when completions may wait: for the application's own
 * epoll; lcr_cq_reap() then, until it returns 0 (that clears it). */
LCR_API int lcr_cq_fd(const struct lcr_cq *cq);

/* Slots in use: requests out, and those answered early whose proposal or read
 * has not ended yet (backpressure the application can watch). */
LCR_API uint32_t lcr_cq_busy(const struct lcr_cq *cq);

/*
 * Cancel request `r` of queue `cq`, from any thread: if it is still out when
 * its lcore gets to it, it comes back -ECANCELED (its entry, if appended, may
 * still commit: the outcome is unknown, as with a deadline); if it came back
 * already, nothing happens (if it was submitted again meanwhile, that one may
 * be cancelled). 0, -EINVAL (never submitted to `cq`), -LCR_EFULL (the lcore's
 * task ring is full: retry) or -LCR_ESTOPPED.
 */
LCR_API int lcr_cancel(struct lcr_cq *cq, struct lcr_req *r);

/* Conditions lcr_group_wait() waits for. */
enum lcr_wait_what {
	LCR_WAIT_APPLIED = 1, /* the state machine applied index `value` or later */
	LCR_WAIT_LEADER = 2,  /* a leader is known (`value` 0), or it is node `value` */
	LCR_WAIT_ROLE = 3,    /* this replica's role is `value` (enum lcr_role) */
	/* No membership change is under way here and the membership in effect
	 * is the one of the entry at index `value` or a later one (0: any). */
	LCR_WAIT_MEMBERSHIP = 4,
};

/*
 * Wait until `what` holds for group `group` of this node, as openraft's
 * Raft::wait(): from any thread but that group's lcore (-EDEADLK), at most
 * `timeout_ns`. 0 once it holds; -LCR_ETIMEDOUT; -ENOENT (no such group, or
 * it was opened after lcr_node_run()); -LCR_ESTOPPED (the node is closing);
 * -EINVAL. It may be called while lcr_node_close() runs (it returns
 * -LCR_ESTOPPED), never after it returned. The lcores wake waiters on every
 * change of the applied index (a membership commits with its entry applied),
 * role or leader while anyone waits (a lock and a broadcast each), and pay
 * nothing else.
 */
LCR_API int lcr_group_wait(struct lcr_node *n, uint32_t group, uint32_t what, uint64_t value,
			   uint64_t timeout_ns);

/*
 * Application I/O on an lcore: `poll` runs every loop iteration on lcore
 * `lcore` (return true if it did work), and `fd` (if >= 0) wakes a sleeping
 * lcore when readable. Set before lcr_node_run().
 */
typedef bool (*lcr_poll_fn)(struct lcr_node *n, uint32_t lcore, void *ctx, uint64_t now_ns);
LCR_API int lcr_node_set_poll(struct lcr_node *n, uint32_t lcore, lcr_poll_fn poll, int fd,
			      void *ctx);

/* Run every lcore (lcore 0 on the calling thread) until lcr_node_stop(). */
LCR_API int lcr_node_run(struct lcr_node *n);
/* Ask the lcores to stop; async-signal-safe. */
LCR_API void lcr_node_stop(struct lcr_node *n);
/*
 * Close storage and sockets, free everything; after lcr_node_run() returned
 * (or instead of it). Proposals and reads still waiting get their callback
 * with -LCR_ESTOPPED, here, on the calling thread.
 */
LCR_API void lcr_node_close(struct lcr_node *n);

/*
 * Node-wide metrics as JSON: per lcore its loop and transport counters, per
 * group role, indexes, replication progress, storage with the write (+fsync)
 * latency histogram, and the commit latency histogram. From any thread: each
 * running lcore renders its own part (the caller waits, at most 1 s per
 * lcore: -ETIMEDOUT). Bytes written, or -ENOSPC.
 */
LCR_API int lcr_node_metrics_json(struct lcr_node *n, char *buf, size_t len);

/*
 * Lcore `lcore`'s metrics in Prometheus's text exposition format (0.0.4):
 * its loop and transport counters (labels node, lcore) and, for each of its
 * groups (labels node, group), role, term, leader, the log's indexes, each
 * follower's matched index and lag (on the leader; label peer), elections,
 * drops by reason, proposals, storage, snapshots and purges, and the commit
 * and log write latencies as histograms (seconds; cumulative since the group
 * opened, exact at every bucket bound). Every family comes with its HELP and
 * TYPE lines even when it has no sample, in the same order on every lcore,
 * so a page for the whole node is the lcores' texts merged family by family
 * (each family's block starts at its "# HELP" line: keep one lcore's HELP and
 * TYPE lines, and the samples of all). Call on that lcore (a task from
 * lcr_node_post()), or while lcr_node_run() does not run: -EPERM otherwise.
 * Bytes written, or -ENOSPC (about 10 KiB per lcore and 6 KiB per group,
 * plus 200 bytes per follower of a leader, are enough), -EINVAL.
 */
LCR_API int lcr_node_metrics_prom(struct lcr_node *n, uint32_t lcore, char *buf, size_t len);

#endif /* LCRAFT_H */
