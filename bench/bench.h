/* SPDX-License-Identifier: MIT */
/*
 * lcraft-bench: what its modes share. bench/bench.c parses the options,
 * measures the floors, prints progress, the table and the JSON lines; each
 * mode (bench/mode_engine.c, bench/mode_socket.c) runs one configuration
 * and fills a struct lcr_bench_result.
 */
#ifndef LCR_BENCH_H
#define LCR_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

enum lcr_bench_mode {
	LCR_BENCH_ENGINE = 1, /* the cores alone: one thread, in-memory network and log */
	LCR_BENCH_SOCKET,     /* replicas as processes on loopback, kernel UDP, io_uring log */
	LCR_BENCH_DPDK_MEMIF, /* the DPDK transport (a later issue): flags reserved */
	LCR_BENCH_DPDK_AFXDP,
	LCR_BENCH_DPDK_AFPACKET,
};

/* One configuration: a run of lcraft-bench sweeps clients over several. */
struct lcr_bench_opts {
	enum lcr_bench_mode mode;
	uint32_t replicas;   /* 1, 3 or 5 */
	uint32_t groups;     /* Raft groups, each with its own clients */
	uint32_t lcores;     /* per replica; group g runs on lcore g % lcores */
	uint32_t clients;    /* closed loop: operations in flight (per group) */
	double rate;	     /* open loop: operations/s (all groups); 0: closed loop */
	uint32_t size;	     /* payload bytes per entry */
	uint32_t batch;	     /* entries per operation (one proposal of `batch` entries) */
	double seconds;	     /* measured window */
	double warmup;	     /* before it, not measured */
	bool fsync;	     /* durability fsync (true) or none */
	const char *dir;     /* socket: a fresh directory is made under it */
	uint16_t port_base;  /* socket: replica i, lcore l listens on base + 10 * i + l */
	bool busy_poll;	     /* socket: lcores poll instead of sleeping when idle */
	uint32_t spin_us;    /* socket: lcores poll this long after work before sleeping */
	uint32_t io_spin_us; /* socket: ... and this long while their disk writes are in flight */
	bool quiet;	     /* no progress lines */
	const char *argv0;   /* the program, for messages */
};

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
	int64_t datagrams;	 /* sent and received, all replicas */
	int64_t retransmits;
	int64_t allocs; /* heap allocations in the replica that hosts the clients */
	uint32_t leader;
	double election_ms; /* from the start until a leader was there */
	char note[256];	    /* anything the reader should know; empty if none */
};

/* Called about once a second during warmup and window: elapsed seconds since the
 * window began (negative during warmup), operations completed so far in it. */
typedef void (*lcr_bench_progress_fn)(void *ctx, double t, uint64_t ops, uint64_t errors);

/* Set by SIGINT/SIGTERM: a run stops early (-EINTR) and cleans up after itself. */
extern volatile int lcr_bench_interrupted;

/* Run one configuration. 0, or -errno with a sentence in `why`. */
int lcr_bench_engine(const struct lcr_bench_opts *o, struct lcr_bench_result *r,
		     lcr_bench_progress_fn progress, void *ctx, char *why, size_t why_len);
int lcr_bench_socket(const struct lcr_bench_opts *o, struct lcr_bench_result *r,
		     lcr_bench_progress_fn progress, void *ctx, char *why, size_t why_len);

/* The replica side of socket mode: `lcraft-bench --replica ...` (argv as given). */
int lcr_bench_replica_main(int argc, char **argv);

/* Heap allocations counted in this process so far (jemalloc's alloc hook),
 * or -1 if they cannot be counted here. */
int64_t lcr_bench_allocs(void);
int lcr_bench_allocs_install(void);

#endif /* LCR_BENCH_H */
