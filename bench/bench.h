/* SPDX-License-Identifier: MIT */
/*
 * lcraft-bench: what its modes share. bench/bench.c parses the options,
 * measures the floors, prints progress, the table and the JSON lines; each
 * mode (bench/mode_engine.c, bench/mode_socket.c, bench/mode_dpdk.c) runs one
 * configuration and fills a struct lcr_bench_result.
 */
#ifndef LCR_BENCH_H
#define LCR_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hist.h"

enum lcr_bench_mode {
	LCR_BENCH_ENGINE = 1,	 /* the cores alone: one thread, in-memory network and log */
	LCR_BENCH_SOCKET,	 /* replicas as processes on loopback, kernel UDP, io_uring log */
	LCR_BENCH_DPDK_MEMIF,	 /* the same with the datagrams on DPDK memif ports (mode_dpdk.c) */
	LCR_BENCH_DPDK_AFXDP,	 /* DPDK af_xdp ports on veths and a bridge (root) */
	LCR_BENCH_DPDK_AFPACKET, /* DPDK af_packet ports on veths and a bridge (root) */
};

/* The modes whose replicas are processes (mode_socket.c runs them). */
static inline bool lcr_bench_mode_processes(enum lcr_bench_mode m)
{
	return m != LCR_BENCH_ENGINE;
}

/* One configuration: a run of lcraft-bench sweeps clients over several. */
struct lcr_bench_opts {
	enum lcr_bench_mode mode;
	uint32_t replicas;     /* 1, 3 or 5 */
	uint32_t groups;       /* Raft groups, each with its own clients */
	uint32_t lcores;       /* per replica; group g runs on lcore g % lcores */
	uint32_t clients;      /* closed loop: operations in flight (per group) */
	double rate;	       /* open loop: operations/s (all groups); 0: closed loop */
	uint32_t size;	       /* payload bytes per entry */
	uint32_t batch;	       /* entries per operation (one proposal of `batch` entries) */
	double seconds;	       /* measured window */
	double warmup;	       /* before it, not measured */
	bool fsync;	       /* durability fsync (true) or none */
	const char *dir;       /* socket: a fresh directory is made under it */
	uint16_t port_base;    /* socket, dpdk: replica i, lcore l uses port base + 10 * i + l */
	bool busy_poll;	       /* socket, dpdk: lcores poll instead of sleeping when idle */
	uint32_t spin_us;      /* socket, dpdk: lcores poll this long after work before sleeping */
	uint32_t io_spin_us;   /* socket: ... and this long while their disk writes are in flight */
	bool spin_fixed;       /* socket: the whole spin_us/io_spin_us, not adaptively */
	const char *eal;       /* dpdk: EAL arguments every replica starts with (no ports) */
	const char *memif_dir; /* dpdk-memif: the memif sockets' directory, one per invocation */
	const char
		*veth; /* dpdk-afpacket, -afxdp: the bridge's name; replica i's veth: <veth>v<i> */
	bool floor;    /* dpdk: measure the bare round trip in each run (not --no-floor) */
	bool quiet;    /* no progress lines */
	bool trace;    /* process modes: read each stage of a commit from the replicas */
	const char *key_file; /* process modes: the cluster key's file (--key); NULL: none */
	const char *argv0;    /* the program, for messages */
};

#define LCR_BENCH_STAGES 12

/* What one configuration measured, over the window only. */
struct lcr_bench_result {
	double window_s;
	uint64_t ops;	     /* operations completed in the window */
	uint64_t entries;    /* entries committed and applied by them (ops * batch) */
	uint64_t errors;     /* operations that failed (refused, cancelled ...) */
	struct lcr_hist lat; /* per operation: intended start to completion, ns */
	/* CPU of every replica process (or the one thread in engine mode). */
	double user_s, sys_s;
	/* Leader side, in the window; -1 where the mode has none. */
	int64_t fsyncs;
	int64_t entries_flushed; /* entries made durable by those fsyncs */
	int64_t log_bytes;	 /* bytes of batches the leader's log wrote (headers, padding) */
	int64_t datagrams;	 /* sent and received, all replicas */
	int64_t retransmits;
	int64_t allocs; /* heap allocations in the replica that hosts the clients */
	uint32_t leader;
	double election_ms; /* from the start until a leader was there */
	int64_t leader_tx;  /* datagrams replica 1 (the leader) sent; 0: not counted */
	/* DPDK modes: the bare round trip between replicas 1 and 2 measured in
	 * this run, before their nodes opened (mode_dpdk.c). */
	struct lcr_bench_dpdk_floor {
		bool measured;
		double rtt_p50_us, rtt_p99_us;	       /* both sides polling, back to back */
		bool nap;			       /* the napping figures were measured */
		double rtt_nap_p50_us, rtt_nap_p99_us; /* replica 2 napping, 1 ms apart */
		double pps;			       /* echoed datagrams/s, 64 in flight */
		uint64_t lost;
	} dpdk;
	/* --trace: a commit's stages (engine/runtime/trace.c), from replica 1
	 * (the leader) and replica 2 (a follower), since their nodes opened. */
	struct lcr_bench_trace {
		bool have;
		struct lcr_bench_stage {
			uint64_t count;
			double p50_us, p99_us, p999_us, max_us;
		} st[LCR_BENCH_STAGES];
	} trace;
	char note[256]; /* anything the reader should know; empty if none */
};

/* The stages --trace reads, in lcr_bench_stage_keys order (mode_socket.c). */
enum {
	LCR_BT_QUEUE,		 /* leader: proposal_queue */
	LCR_BT_LEADER_DURABLE,	 /* leader: leader_durable */
	LCR_BT_RTT,		 /* leader: replication_rtt */
	LCR_BT_COMMIT,		 /* leader: commit */
	LCR_BT_APPLY,		 /* leader: apply */
	LCR_BT_ONE_WAY,		 /* follower: follower_one_way */
	LCR_BT_FOLLOWER_DURABLE, /* follower: follower_durable */
	LCR_BT_FOLLOWER_ACK,	 /* follower: follower_ack */
	LCR_BT_RX_LEADER,	 /* leader: rx_delay (its socket) */
	LCR_BT_RX_FOLLOWER,	 /* follower: rx_delay */
	LCR_BT_WRITE_LEADER,	 /* leader: write_latency (the log's write, its flush) */
	LCR_BT_WRITE_FOLLOWER,	 /* follower: write_latency */
};

/* Called about once a second during warmup and window: elapsed seconds since the
 * window began (negative during warmup), operations completed so far in it. */
typedef void (*lcr_bench_progress_fn)(void *ctx, double t, uint64_t ops, uint64_t errors);

/* Set by SIGINT/SIGTERM: a run stops early (-EINTR) and cleans up after itself. */
extern volatile int lcr_bench_interrupted;

/* Run one configuration. 0, or -errno with a sentence in `why`. */
int lcr_bench_engine(const struct lcr_bench_opts *o, struct lcr_bench_result *r,
		     lcr_bench_progress_fn progress, void *ctx, char *why, size_t why_len);
/* Socket and DPDK modes alike: the replicas are processes (mode_socket.c). */
int lcr_bench_socket(const struct lcr_bench_opts *o, struct lcr_bench_result *r,
		     lcr_bench_progress_fn progress, void *ctx, char *why, size_t why_len);

/*
 * The replica side of the process modes: replicas 2..R are this program
 * again (`lcraft-bench --replica KEY=VALUE ...`, from mode_socket.c), a fresh
 * process each run, so that none inherits replica 1's DPDK. argv after
 * "--replica". Returns the exit status.
 */
int lcr_bench_replica_main(int argc, char **argv);

/* ---- the DPDK modes (mode_dpdk.c) ------------------------------------------------------- */

struct lcr_node_config;

/* Whether this build has the DPDK backend (meson found libdpdk). */
bool lcr_bench_dpdk_built(void);

/*
 * dpdk-afpacket and -afxdp, once per invocation (root): a bridge lcb<pid> and, per
 * replica i, a veth pair lcb<pid>v<i> (its DPDK port's) and lcb<pid>p<i> (in
 * the bridge), IPv6 and forwarding off, up; sets o->veth. 0, or -errno with
 * a sentence in `why` (-EPERM: not root). remove: deletes what make made.
 */
int lcr_bench_veth_make(struct lcr_bench_opts *o, char *why, size_t why_len);
void lcr_bench_veth_remove(void);

/* The transport part of replica `id`'s node config in a DPDK mode. */
void lcr_bench_dpdk_config(const struct lcr_bench_opts *o, uint32_t id, struct lcr_node_config *c);

/*
 * Replica 1, before its node opens in every run: open its DPDK backend on
 * lcore 0, with the EAL arguments, lcores and datagram size its node will
 * use, if no earlier run did, and keep it open to the end of the process (its
 * ports, the memif servers of the others, never stop: mode_dpdk.c says why).
 */
int lcr_bench_dpdk_hold(const struct lcr_bench_opts *o, char *why, size_t why_len);

/*
 * Replica 1, before any node opens: the bare round trip and packet rate to
 * replica 2 through that backend (lcr_bench_dpdk_hold, opened here if not
 * yet).
 * Replica 2 serves it (lcr_bench_dpdk_floor_serve), told by one byte on
 * `cmd2` ('e' serve, 'n' nap from now on, 'q' stop) and answering one line
 * on `report2` once its backend is closed. Fills r->dpdk. 0, or -errno with a
 * sentence in `why`.
 */
int lcr_bench_dpdk_floor(const struct lcr_bench_opts *o, int cmd2, FILE *report2,
			 struct lcr_bench_result *r, char *why, size_t why_len);

/* Replica `id` (2..R), before its node opens: obey `cmd` until 'g' (open the
 * node) or its end. 0, or -errno with a sentence in `why`. */
int lcr_bench_dpdk_floor_serve(const struct lcr_bench_opts *o, uint32_t id, int cmd, int report,
			       char *why, size_t why_len);

/*
 * The echo of the bare floor (dpdk_echo.c), on any backend: the peer is a
 * node id of that backend.
 *
 * serve: echo every datagram to its sender for `seconds`, or until a byte
 * other than 'n' arrives on `ctl_fd` (-1: none); after 'n' it naps as an idle
 * node lcore does, once `spin_ns` passed without a datagram. Returns the
 * datagrams echoed.
 * round_trip: one datagram of `size` bytes (>= 8) there and back, its round
 * trip in ns, or 0 after 100 ms. first: round trips until one comes back
 * (ARP, links coming up), 0 or -ETIMEDOUT after 5 s. rate: datagrams echoed
 * per second with 64 in flight for `seconds`.
 */
struct lcr_backend;
uint64_t lcr_bench_echo_serve(struct lcr_backend *be, uint32_t peer, double seconds, int ctl_fd,
			      uint64_t spin_ns);
uint64_t lcr_bench_echo_round_trip(struct lcr_backend *be, uint32_t peer, uint8_t *buf,
				   uint32_t size, uint64_t seq);
int lcr_bench_echo_first(struct lcr_backend *be, uint32_t peer, uint8_t *buf, uint32_t size);
double lcr_bench_echo_rate(struct lcr_backend *be, uint32_t peer, uint8_t *buf, uint32_t size,
			   double seconds);
/* lcraft-dpdk-echo's main (meson renames it to main() in that program). */
int lcr_bench_echo_main(int argc, char **argv);

/* Heap allocations counted in this process so far (jemalloc's alloc hook),
 * or -1 if they cannot be counted here. */
int64_t lcr_bench_allocs(void);
int lcr_bench_allocs_install(void);

#endif /* LCR_BENCH_H */
