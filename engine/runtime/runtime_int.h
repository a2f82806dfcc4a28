/* SPDX-License-Identifier: MIT */
/*
 * The node runtime's internal state, shared by its files (the runtime joins
 * the core, the log and the transport; design.md, "Data flow through one
 * lcore"):
 *   node.c     the node: config checks, lcores' resources, open, run, close
 *   group.c    a group's life cycle, and the API calls on a group (propose,
 *              read, events; calls from callbacks deferred)
 *   exec.c     executing the core's commands: storage, sends, applies, read
 *              results, roles; storage completions; the transport's results
 *   loop.c     the lcore loop: one iteration, timers, sleeping
 *   tasks.c    the cross-thread task ring (lcr_node_post) and waking
 *   metrics.c  metrics as JSON, each lcore rendering its own part
 *   trace.c    a commit's timeline: each stage's histogram
 *   submit.c   requests from any thread, answered on a completion queue
 *   snapshot.c building snapshots a bounded piece per iteration, purging,
 *              restoring the newest one when a group opens
 *   held.c     the nodes seen holding state, recorded durably off the lcore
 * Nothing here is visible outside the library.
 */
#ifndef LCR_RUNTIME_INT_H
#define LCR_RUNTIME_INT_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "alloc.h"
#include "hist.h"
#include "lcr_assert.h"
#include "lcraft.h"
#include "log.h"
#include "net_host.h"
#include "ring.h"
#include "snap.h"
#include "udp.h"

#define GROUPS_MAX     256	      /* per lcore */
#define LCORES_MAX     LCR_LCORES_MAX /* per node */
#define POST_MAX       1024	      /* tasks waiting per lcore */
#define PROPOSE_MAX    4096	      /* proposals gathered per group per iteration */
#define PROPOSE_BYTES  (8u << 20)
#define PROPOSAL_MAX   (1u << 20) /* bytes of one proposal */
#define PENDING_MAX    65536	  /* proposals waiting for apply, per group */
#define READS_WAIT_MAX 4096
#define RESULT_MAX     8192
#define COLD_BYTES     (4u << 20) /* entries read from disk for one AppendEntries */
#define APPLY_BUDGET   4096	  /* entries applied per group per loop iteration */
#define ENTS_MAX       65536	  /* entries attached to one AppendEntries */
/* Entries of one AppendEntries, bytes: the UDP wire takes 1 MiB + 64 KiB per
 * message (LCR_WIRE_MSG_MAX), of which at most 32 bytes per entry go to its
 * header and less than 1 KiB to the request's own fields. */
#define APPEND_BYTES_MAX      (1u << 20)
#define APPEND_ENTRY_OVERHEAD 32
#define DEFERRED_MAX	      1024 /* API calls made from callbacks, waiting per group */

static_assert(PROPOSAL_MAX <= APPEND_BYTES_MAX, "one proposal fits one AppendEntries");
static_assert(PROPOSAL_MAX <= PROPOSE_BYTES, "one proposal fits the iteration's buffer");

/* A proposal waiting for its apply. */
struct pending {
	struct lcr_log_id id; /* its log id, once the core took it */
	uint64_t at_ns;	      /* when lcr_propose() took it (commit latency) */
	lcr_propose_fn done;
	void *ctx;
};

/* ---- a commit's timeline (trace.c) ---- */

#define TRACE_MAX	     256 /* batches followed at once, per group and side */
#define TRACE_ONE_WAY_MAX_NS 1000000000ull

enum lcr_stage {
	LCR_STAGE_QUEUE,	    /* lcr_propose() took it -> the core proposed it */
	LCR_STAGE_LEADER_DURABLE,   /* proposed -> durable in the leader's log */
	LCR_STAGE_RTT,		    /* AppendEntries out -> its ack in */
	LCR_STAGE_COMMIT,	    /* proposed -> committed */
	LCR_STAGE_APPLY,	    /* committed -> applied and answered */
	LCR_STAGE_ONE_WAY,	    /* the leader's send -> delivered to a follower */
	LCR_STAGE_FOLLOWER_DURABLE, /* delivered -> durable in the follower's log */
	LCR_STAGE_FOLLOWER_ACK,	    /* durable -> the follower's ack goes out */
	LCR_STAGE_N
};

/* A batch being followed: its last index, when it started, a later point. */
struct lcr_trace_batch {
	uint64_t last, t0, t1;
};

/*
 * Batches in log order, counted by pushes: head <= durable, applied <= tail
 * and applied <= committed (the leader: applied; a follower: acked). A batch
 * leaves (head) once durable and applied (acked).
 */
struct lcr_trace_ring {
	uint64_t head, durable, committed, applied, tail;
	struct lcr_trace_batch b[TRACE_MAX];
};

struct lcr_trace {
	struct lcr_trace_ring lead, follow;
	struct lcr_hist h[LCR_STAGE_N];
};

struct pending;
const char *lcr_rt_stage_name(uint32_t s);
void lcr_rt_trace_proposed(struct lcr_trace *t, const struct pending *p, uint32_t n, uint64_t last,
			   uint64_t now);
void lcr_rt_trace_durable(struct lcr_trace *t, uint64_t index, uint64_t now);
void lcr_rt_trace_committed(struct lcr_trace *t, uint64_t index, uint64_t now);
void lcr_rt_trace_applied(struct lcr_trace *t, uint64_t index, uint64_t now);
void lcr_rt_trace_received(struct lcr_trace *t, const struct lcr_append_req *a, uint64_t now);
void lcr_rt_trace_acked(struct lcr_trace *t, uint64_t index, uint64_t now);
void lcr_rt_trace_ack_in(struct lcr_trace *t, const struct lcr_append_resp *a, uint64_t now);
void lcr_rt_trace_role(struct lcr_trace *t);

/* An API call made from a callback, run in the next loop iteration. */
struct deferred {
	bool is_read;
	uint32_t policy; /* lcr_read */
	lcr_read_fn done;
	void *ctx;
	struct lcr_event ev; /* lcr_group_event */
};

struct waiting_read {
	uint64_t read_id;
	lcr_read_fn done;
	void *ctx;
};

/* A change of membership asked for with lcr_group_change_membership(). */
enum lcr_rt_mc_state {
	LCR_RT_MC_NONE = 0,
	LCR_RT_MC_QUEUED = 1,  /* asked from a callback: the next iteration starts it */
	LCR_RT_MC_WAITING = 2, /* with the core: done once the target is committed */
};

struct lcr_rt_mchange {
	uint32_t state; /* enum lcr_rt_mc_state */
	struct lcr_membership target;
	struct lcr_vote vote;	 /* the leadership that proposed it */
	struct lcr_log_id first; /* its first entry (joint, or the target itself) */
	lcr_membership_fn done;
	void *ctx;
};

/* What a snapshot send puts in front of the file's data (membership.c):
 * magic, CRC32C, length, the membership as the file header holds it. */
#define LCR_RT_SNAP_STREAM_HDR (12 + LCR_SNAP_MEMBERSHIP_MAX)

/* The writers' temporary names (io/snap.h): a build's in the group's folder,
 * a receive's in <group>/recv. */
#define LCR_RT_SNAP_BUILD_TMP "build.tmp"
#define LCR_RT_SNAP_RECV_TMP  "recv.tmp"

/*
 * A snapshot being sent to one follower (snap_xfer.c): the transport pulls
 * its bytes from `r`, read a chunk at a time through the lcore's ring.
 */
struct lcr_rt_snap_src {
	struct lcr_group *g;
	bool open;	  /* `r` holds the file and its buffer */
	bool reading;	  /* a chunk read is in flight into r.buf */
	bool closing;	  /* the send ended: close once the read is back */
	int err;	  /* the reader's error: the next pull fails with it */
	uint32_t pos;	  /* bytes of r.buf handed to the transport */
	uint32_t hdr_pos; /* bytes of `hdr` handed to the transport (they go first) */
	uint8_t hdr[LCR_RT_SNAP_STREAM_HDR]; /* the stream's header */
	struct lcr_snap_reader r;
};

/*
 * A snapshot being received from the leader (snap_xfer.c): written to its
 * own folder (<group>/recv), committed there, then handed to the core.
 */
struct lcr_rt_snap_rx {
	uint64_t handle;  /* the receive open; 0: none */
	uint64_t seq;	  /* handles given out */
	uint64_t size;	  /* bytes announced: the stream header and the data */
	uint64_t got;	  /* bytes taken: the header's, then those the writer took */
	bool writer_open; /* `w` holds a file and buffers */
	bool ended;	  /* every byte in: the commit runs */
	bool committed;	  /* the commit reported (err) */
	int err;
	uint64_t installed;		     /* the handle the core's INSTALL_SNAPSHOT named */
	struct lcr_msg req;		     /* the SNAPSHOT_REQ, stepped once durable */
	uint8_t hdr[LCR_RT_SNAP_STREAM_HDR]; /* the stream's header, as received */
	/* The membership at the snapshot's last entry, from the committed file's
	 * header: what the SNAPSHOT_REQ hands to the core. */
	struct lcr_membership membership;
	struct lcr_snap_writer w;
	char name[96]; /* the committed file's name in <group>/recv */
};

/*
 * A snapshot being installed (snap_xfer.c): the file is in the group's folder
 * and the log's cut issued; the state machine is restored from `r` a chunk per
 * loop iteration, with no apply until the end.
 */
struct lcr_rt_snap_inst {
	bool active;  /* restore_begin() was called, restore_end() not yet */
	bool reading; /* a chunk read is in flight into r.buf */
	bool ready;   /* r.buf holds r.got bytes for restore_chunk() (0: the end) */
	bool held;    /* apply_broken before the install (restored at its end) */
	bool tail;    /* ended in this iteration, which is still timed */
	int err;      /* the reader's error: the replica stops */
	struct lcr_snapshot_meta meta;
	struct lcr_membership membership; /* at meta.last: applied_m once restored */
	uint64_t t0;			  /* ns: the install began */
	uint64_t bytes;			  /* restored so far */
	uint64_t iter_max_ns;	  /* the longest loop iteration of its lcore during an install */
	uint64_t iter_cpu_max_ns; /* ... on the lcore's CPU (not counting preemption) */
	struct lcr_snap_reader r;
};

/*
 * A group's snapshots (snapshot.c): the one being built, a piece per loop
 * iteration, and what the metrics show.
 */
struct lcr_rt_snap {
	char *dir;	  /* the group's folder: snapshots live beside the log */
	bool building;	  /* LCR_CMD_BUILD_SNAPSHOT under way */
	bool committing;  /* every byte handed to the writer; its commit runs */
	bool eof;	  /* the state machine's cursor said 0 */
	bool report;	  /* the build ended: LCR_EV_SNAPSHOT_BUILT waits to be stepped */
	bool writer_open; /* `w` holds a file and buffers */
	int err;	  /* the build's error, or 0 */
	void *cursor;	  /* the state machine's frozen view */
	struct lcr_snapshot_meta meta;	  /* the one being built */
	struct lcr_membership membership; /* at meta.last, in the file's header */
	struct lcr_snap_writer w;
	uint8_t *buf; /* LCR_SNAP_CHUNK read from the cursor, with snapshot hooks */
	uint32_t len; /* bytes in buf */
	uint32_t off; /* of those, handed to the writer */
	uint64_t seq; /* builds numbered on this node: the low bits of meta.id */
	/* The state machine holds every entry up to here from a snapshot (the
	 * one restored at open, or one installed): apply_some() never reads the
	 * log at or below it. An install sets it, with applied_id and apply_to. */
	struct lcr_log_id floor;
	uint64_t started_ns;
	uint64_t bytes; /* of the build under way */
	/* Metrics. */
	uint64_t bytes_last, bytes_total; /* of builds that succeeded */
	uint64_t build_ns_last, build_ns_max;
	uint64_t iter_max_ns;	  /* the longest loop iteration of its lcore during a build */
	uint64_t iter_cpu_max_ns; /* ... on the lcore's CPU (not counting preemption) */
	uint64_t restored_bytes;  /* the snapshot restored at open */
	uint64_t purge_errors;
	/* The transfer (snap_xfer.c): sends, one per peer at most, and a receive. */
	struct lcr_rt_snap_src src[LCR_PEERS_MAX];
	struct lcr_rt_snap_rx rx;
	struct lcr_rt_snap_inst inst;
	uint64_t sent_opened, send_busy, received, installed, install_ns_last;
	uint64_t send_stale; /* requests that did not name the newest snapshot */
	uint64_t recv_bad;   /* received streams without a valid header (membership) */
};

struct lcore;

/*
 * The nodes group has seen hold Raft state (held.c): `ids` is the lcore's,
 * the rest is handed to the node's writer thread under lcr_node.held_mu.
 */
#define LCR_RT_HELD_MAX	 LCR_HELD_MAX
#define LCR_RT_HELD_FILE "held"
struct lcr_rt_held {
	uint32_t ids[LCR_RT_HELD_MAX]; /* ascending */
	uint32_t n;
	uint32_t last;	 /* the id noted last: the common case costs one compare */
	bool self_noted; /* this node's storage flushed something */
	bool full_said;
	/* Under held_mu: the copy to write, and the writer's queue. */
	uint32_t pub[LCR_RT_HELD_MAX];
	uint32_t pub_n;
	bool queued;
	struct lcr_group *next;
};

struct lcr_group {
	uint32_t id;
	struct lcr_node *node;
	struct lcore *lc;
	struct lcr_core *core;
	struct lcr_log *log;
	struct lcr_sm_ops ops;
	void *sm;
	struct lcr_net_group *ng; /* its peers in the transport */
	/* Proposals of this iteration. */
	struct lcr_entry *pe; /* PROPOSE_MAX */
	struct pending *pp;   /* PROPOSE_MAX */
	uint32_t pn;
	uint8_t *pbuf; /* PROPOSE_BYTES */
	uint32_t pbytes;
	/* Proposals waiting for apply, in index order: a ring of PENDING_MAX. */
	struct pending *wait;
	uint32_t wait_head, wait_len;
	/* Reads waiting: a ring of READS_WAIT_MAX. */
	struct waiting_read *reads;
	uint32_t reads_head, reads_len;
	/* Storage completions, stepped after the reap. */
	struct lcr_io_id flushed;
	bool flush_new;
	int io_err;
	uint64_t next_timer; /* ns: the core's next timer */
	/* Applying: done through applied_id, committed through apply_to. */
	struct lcr_log_id applied_id, apply_to;
	/* The membership at applied_id: a snapshot's, or the newest membership
	 * entry applied (what a build writes into its file's header). */
	struct lcr_membership applied_m;
	struct lcr_rt_mchange mc;
	bool mship_dirty; /* the effective membership may have changed: learn it */
	uint64_t mship_changed, mship_failed; /* changes asked for here: done, failed */
	/* No apply: a committed entry could not be read (never apply again), or
	 * a snapshot is being installed (snap_xfer.c clears it at the end). */
	bool apply_broken;
	struct lcr_rt_snap snap;
	/*
	 * Callbacks run while the runtime walks the core's commands (or applies):
	 * a call into the core from one of them (lcr_read, lcr_group_event) would
	 * overwrite that list under the walk. Such calls wait here, in order,
	 * for the next loop iteration (a ring of DEFERRED_MAX).
	 */
	uint32_t busy;
	struct deferred *deferred;
	uint32_t def_head, def_len;
	uint32_t role, leader;
	bool term_exhausted_said; /* the warning went out (loop.c) */
	uint8_t result[RESULT_MAX];
	/* Metrics. */
	uint64_t proposed, applied, cancelled, refused, net_errors;
	uint64_t backlogged; /* proposals refused -LCR_EBACKLOG */
	uint64_t flushes;
	struct lcr_hist commit_lat;
	struct lcr_trace *trace;
	/* While a proposal's callback runs: the log id of its entry (submit.c). */
	struct lcr_log_id answer_id;
	/* What other threads may read (lcr_group_wait): written by the lcore. */
	_Atomic uint64_t pub_applied;
	_Atomic uint32_t pub_role, pub_leader;
	/* The committed membership's entry index + 1, 0 while a change is under way. */
	_Atomic uint64_t pub_mship;
	struct lcr_rt_held held;
};

/* A slot of the task ring (Vyukov's bounded MPMC queue). */
struct post {
	_Atomic uint64_t seq;
	lcr_task_fn fn;
	void *arg;
};

/*
 * One lcore: a thread and everything its groups touch. Its own thread reads
 * and writes the first part every iteration; what other threads write (the
 * task ring's producer index, metric requests) and what they read while it
 * runs (whether it sleeps) sits on cache lines of its own, and the struct is
 * cache-line aligned, so lcores never share a line.
 */
/* A node address this lcore's transport was told (membership.c). */
#define LCR_RT_LEARNED_MAX (2 * LCR_NODES_MAX)
struct lcr_rt_learned {
	uint32_t id;
	int err; /* what the transport said (0: it took it) */
	char addr[LCR_NODE_ADDR_MAX];
	char why[200]; /* err's sentence */
};

struct lcore {
	uint32_t index;
	struct lcr_node *node;
	pthread_t thread;
	struct lcr_ring ring;
	int efd;	     /* the ring's eventfd: completions and wake-ups */
	int epfd;	     /* efd and the application's fd, for sleeping */
	struct lcr_net *net; /* the transport of this lcore */
	struct lcr_group *groups[GROUPS_MAX];
	uint32_t n_groups;
	struct lcr_entry *ents; /* entries attached to one AppendEntries (ENTS_MAX) */
	uint8_t *cold;		/* entries read from disk (COLD_BYTES) */
	struct post *posts;	/* the task ring (POST_MAX) */
	_Atomic uint64_t post_deq;
	lcr_poll_fn poll;
	int poll_fd;
	void *poll_ctx;
	uint64_t now; /* ns: the time of this iteration */
	uint64_t iterations, sleeps;
	uint32_t building;  /* groups building or installing a snapshot: iterations are timed */
	uint64_t last_work; /* ns: when an iteration last did anything */
	/* Adaptive polling (loop.c): running medians, ns, and what it cost. */
	bool idle;	   /* the last iteration did nothing */
	uint64_t gap_med;  /* idle gaps that ended in work */
	uint64_t io_since; /* when writes went in flight; 0: none in flight */
	uint64_t io_med;   /* from then until none was in flight */
	uint64_t spun_ns, spin_hits, spin_misses;
	/* Requests from lcr_submit() with a deadline (submit.c), and the earliest. */
	struct lcr_cq_slot *timed;
	uint64_t timed_next;
	uint64_t spin_from; /* when this polling stretch began; 0: not polling */

	/* Node addresses learned from memberships (membership.c). */
	struct lcr_rt_learned learned[LCR_RT_LEARNED_MAX];
	uint32_t n_learned;
	uint64_t learned_n, forgotten_n, learn_failed;
	char learn_why[200]; /* the last refusal's sentence */

	/* Written by posting threads. */
	_Alignas(LCR_CACHE_LINE) _Atomic uint64_t post_enq;

	/* Written by the lcore, read by posters: they wake a sleeping lcore. */
	_Alignas(LCR_CACHE_LINE) _Atomic bool sleeping;
	/* Its thread owns its state: set by lcr_node_run() before the thread
	 * starts, cleared by the thread when its loop ends (metrics.c reads
	 * another lcore's state only while this is false). */
	_Atomic bool looping;

	/*
	 * Metrics asked for from another thread: the lcore renders its part
	 * into `m_out` itself (under m_mu), so nothing is read while it changes.
	 */
	_Alignas(LCR_CACHE_LINE) _Atomic bool m_want;
	pthread_mutex_t m_mu;
	pthread_cond_t m_cv;
	char *m_out; /* one request at a time: others wait until it is NULL */
	size_t m_len;
	uint32_t m_part; /* which part: LCR_RT_M_* or a group id */
	int *m_res;	 /* where the requester wants the result */
} __attribute__((aligned(LCR_CACHE_LINE)));

struct lcr_node {
	struct lcr_node_config cfg;
	char *data_dir;
	uint32_t n_lcores;
	struct lcore *lcores; /* n_lcores, cache-line aligned */
	/* The built-in UDP transport's options and factory (cfg.transport NULL). */
	struct lcr_udp_config udp;
	struct lcr_net_factory udp_factory;
	_Atomic bool stop;
	/* lcr_node_close() began: posts are refused from here on. Posters count
	 * themselves in `posting` while they look and enqueue, so the close waits
	 * for them before it runs what is left (tasks.c). */
	_Atomic bool closing;
	_Atomic uint32_t posting;
	/* Threads in lcr_group_wait(): the lcores wake them on a change. */
	pthread_mutex_t wait_mu;
	pthread_cond_t wait_cv;
	_Atomic uint32_t waiters;
	/* The held records' writer (held.c): groups queued, under held_mu. */
	pthread_t held_thread;
	pthread_mutex_t held_mu;
	pthread_cond_t held_cv;
	struct lcr_group *held_queue;
	bool held_stop, held_running;
};

static inline uint64_t lcr_rt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* metrics.c: which part of an lcore's metrics (else a group id: that group's) */
#define LCR_RT_M_ALL   0u		/* the lcore with its groups (lcr_node_metrics_json) */
#define LCR_RT_M_LCORE UINT32_MAX	/* the lcore, its groups only counted */
#define LCR_RT_M_IDS   (UINT32_MAX - 1) /* its groups' ids: a JSON array */
/*
 * Part `part` of lcore `lcore`'s metrics as JSON, rendered by that lcore
 * while it runs (from any thread; as lcr_node_metrics_json). Bytes written,
 * -ENOSPC, -ENOENT (no such group on that lcore), -ETIMEDOUT, -LCR_ESTOPPED.
 */
int lcr_rt_metrics_part(struct lcr_node *n, uint32_t lcore, uint32_t part, char *buf, size_t len);
/* The node's metrics as DPDK telemetry commands (/lcraft/node, /lcraft/lcore,
 * /lcraft/group, /lcraft/groups) while it runs; close waits for one under way. */
int lcr_rt_telemetry_open(struct lcr_node *n);
void lcr_rt_telemetry_close(struct lcr_node *n);

/* node.c */
void *lcr_rt_zalloc(struct lcr_node *n, size_t size);
void lcr_rt_free(struct lcr_node *n, void *p);

/* held.c: the group's record from its file (none: empty); -errno with a
 * sentence naming the file. On the opening thread, before the core starts. */
int lcr_rt_held_load(struct lcr_group *g, char *why, size_t why_len);
/* What event `ev` says of who held state (lcr_rt_step, on the group's lcore). */
void lcr_rt_held_event(struct lcr_group *g, const struct lcr_event *ev);
/* The writer thread: started at the node's open, stopped (every record handed
 * over written) before its groups close. */
int lcr_rt_held_start(struct lcr_node *n);
void lcr_rt_held_stop(struct lcr_node *n);

/* group.c */
struct lcr_group *lcr_rt_group_of(struct lcore *lc, uint32_t id);
/* Answer everything the group still holds with -LCR_ESTOPPED, then free it. */
void lcr_rt_group_close(struct lcr_node *n, struct lcr_group *g);
/* The iteration's proposals go to the core as one batch. True if any. */
bool lcr_rt_propose_batch(struct lcr_group *g);
/* API calls callbacks made during the last iteration, in order. */
bool lcr_rt_run_deferred(struct lcr_group *g);

/* exec.c */
extern const struct lcr_net_host lcr_rt_net_host;
/* Feed `ev` to the group's core (its time set here) and run its commands. */
void lcr_rt_step(struct lcr_group *g, struct lcr_event *ev);
/* Run the commands of the core's last call. */
void lcr_rt_run_cmds(struct lcr_group *g);
/* Go on with a backlog of committed entries (APPLY_BUDGET at a time). */
bool lcr_rt_apply_pending(struct lcr_group *g);
/* Every proposal waiting for its apply gets `err`. */
void lcr_rt_answer_waits(struct lcr_group *g, int err, uint32_t leader);
/* The log's completion callback (lcr_log_opts.done). */
void lcr_rt_log_done(void *ctx, const struct lcr_io_id *io, int err);
/* Flush the groups' logs, submit, reap, and step the completions. */
bool lcr_rt_storage_progress(struct lcore *lc);

/* loop.c */
void *lcr_rt_lcore_main(void *arg);
/* The lcore whose loop runs on the calling thread, or NULL. */
struct lcore *lcr_rt_this_lcore(void);

/* tasks.c */
/* Wake lcore `lc` if it sleeps or is about to. From any thread. */
void lcr_rt_wake(struct lcore *lc);
bool lcr_rt_posts_waiting(struct lcore *lc);
bool lcr_rt_run_posts(struct lcore *lc);
void lcr_rt_drain_posts(struct lcr_node *n);
/* Requests whose deadline passed get -LCR_ETIMEDOUT (submit.c); when next. */
bool lcr_rt_deadlines(struct lcore *lc);
uint64_t lcr_rt_deadline_next(const struct lcore *lc);
/* A group's applied index, role or leader changed: publish, wake waiters. */
void lcr_rt_publish(struct lcr_group *g);

/* metrics.c */
/* Render the part another thread asked for (on the lcore). */
void lcr_rt_metrics_render(struct lcore *lc);

/* snapshot.c */
/* LCR_CMD_BUILD_SNAPSHOT: open the state machine's cursor at applied_id and
 * start the file; the bytes follow in lcr_rt_snap_progress(). */
void lcr_rt_snap_build(struct lcr_group *g);
/* LCR_CMD_PURGE: drop the log up to `upto` (covered by a durable snapshot). */
void lcr_rt_snap_purge(struct lcr_group *g, struct lcr_log_id upto);
/* Once per loop iteration: the next piece of a build, or its report. True if
 * it did anything. */
bool lcr_rt_snap_progress(struct lcr_group *g);
/* After an iteration that took `ns`, while lc->building. */
void lcr_rt_snap_iteration(struct lcore *lc, uint64_t ns, uint64_t cpu_ns);
/*
 * At open (blocking): restore the state machine from the newest snapshot in
 * g->snap.dir into *meta (none: zeroed). 0, or -errno with why.
 */
int lcr_rt_snap_restore(struct lcr_group *g, struct lcr_snapshot_meta *meta,
			struct lcr_membership *m, char *why, size_t why_len);
/* The same from the newest snapshot in `dir`, with the membership at its last
 * entry in *m (n_configs 0: none). 1 if it restored one, 0 if `dir` holds
 * none, or -errno with why. */
int lcr_rt_snap_restore_from(struct lcr_group *g, const char *dir, struct lcr_snapshot_meta *meta,
			     struct lcr_membership *m, char *why, size_t why_len);
/* At close: abandon a build (waits for its writes), free what the group holds. */
void lcr_rt_snap_close(struct lcr_group *g);

/* membership.c */
/* The first membership from the config (every peer a voter, or
 * cfg.core.membership; this node a learner where it leaves it out): 0, or
 * -EINVAL with why. */
int lcr_rt_mship_initial(const struct lcr_node_config *c, struct lcr_membership *m, char *why,
			 size_t why_len);
/* A snapshot file's membership (its header): 0, or -EBADMSG. */
int lcr_rt_mship_of_snap(const struct lcr_snap_meta *f, struct lcr_membership *m);
/* Into the header a writer commits. */
int lcr_rt_mship_to_writer(struct lcr_snap_writer *w, const struct lcr_membership *m);
/* The snapshot stream's header for file `f` (LCR_RT_SNAP_STREAM_HDR bytes), and
 * back: 0 with the membership and its bytes (pointing into `h`), or -EBADMSG. */
void lcr_rt_mship_stream_hdr(const struct lcr_snap_meta *f, uint8_t *out);
int lcr_rt_mship_stream_parse(const uint8_t *h, struct lcr_membership *m, const uint8_t **bytes,
			      uint32_t *len);
/* At open, after the log ids: the log's membership entries into the core. */
int lcr_rt_mship_load(struct lcr_group *g, char *why, size_t why_len);
/* The apply path met membership entry `e`: applied_m follows it. */
void lcr_rt_mship_applied(struct lcr_group *g, const struct lcr_entry *e);
bool lcr_rt_mship_same(const struct lcr_membership *a, const struct lcr_membership *b);
/* Once per loop iteration: start a queued change, answer a finished one. */
bool lcr_rt_mship_progress(struct lcr_group *g);
/* At close: a change waiting is answered -LCR_ESTOPPED. */
void lcr_rt_mship_close(struct lcr_group *g);
/* `m` as a JSON object (voters, voters_old when joint, learners). */
int lcr_rt_mship_json(const struct lcr_membership *m, char *buf, size_t len);
/* The group's effective membership may have changed: make its members
 * reachable (their addresses to the transport, a client each) and forget
 * learned nodes no group of the lcore has any more. */
void lcr_rt_mship_learn(struct lcr_group *g);

/* snap_xfer.c (the snapshot transfer): LCR_CMD_INSTALL_SNAPSHOT, a storage
 * command (1: the state machine's restore goes on over the next iterations,
 * and LCR_EV_APPLIED at meta.last follows its end; -errno: the replica
 * stops), and LCR_CMD_CANCEL_SNAPSHOT. */
int lcr_rt_snap_install(struct lcr_group *g, const struct lcr_cmd *c);
void lcr_rt_snap_cancel(struct lcr_group *g, const struct lcr_cmd *c);
/* The host's snap_* callbacks (net_host.h), for lcr_rt_net_host. */
int lcr_rt_xfer_open(void *group, const struct lcr_msg *m, struct lcr_net_snapshot *snap);
void lcr_rt_xfer_close(void *group, struct lcr_net_snapshot *snap);
int lcr_rt_xfer_begin(void *group, const struct lcr_msg *req, uint64_t size, uint64_t *handle);
long lcr_rt_xfer_write(void *group, uint64_t handle, const void *data, size_t len);
int lcr_rt_xfer_end(void *group, uint64_t handle);
void lcr_rt_xfer_abort(void *group, uint64_t handle);
/* Once per loop iteration (from lcr_rt_snap_progress): the next chunk of an
 * install's restore; a received snapshot made durable goes to the core (not
 * while an install restores); sources and writers released while their I/O
 * was in flight are freed. True if it did anything. */
bool lcr_rt_xfer_progress(struct lcr_group *g);
/* At close: wait for the transfer's I/O and free what it holds. */
void lcr_rt_xfer_free(struct lcr_group *g);
/* At open: remove received snapshots the core never judged (<group>/recv). */
void lcr_rt_xfer_remove_received(struct lcr_group *g);

#endif /* LCR_RUNTIME_INT_H */
