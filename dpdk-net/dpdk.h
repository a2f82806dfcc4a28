/* SPDX-License-Identifier: MIT */
/*
 * The DPDK datagram backend (backend.h): the UDP transport's datagrams on
 * DPDK ports instead of kernel sockets, byte for byte the same on the wire
 * (frame.h puts Ethernet, IPv4 and UDP around them), so DPDK nodes and socket
 * nodes form one cluster.
 *
 * The process sets DPDK up once, when its first backend opens: EAL with the
 * configured arguments (passed through as a DPDK application takes them),
 * every port with one RX/TX queue pair per lcore, one mbuf pool sized from
 * the ports, queues and lcores, nothing allocated per datagram after that.
 * Lcore i of a node uses queue i of every port. A port reaches the nodes the
 * routes name (memif is point to point: one port per peer; a peer learned at
 * run time, set_peer, takes the port its route names, never memif); a datagram that
 * arrives on another lcore's queue (a port that hashes flows its own way) is
 * handed to its lcore through a ring. Ethernet addresses come from a static
 * table, from the frames of peers, or by ARP; the backend answers ARP for its
 * address, so kernel hosts on the link find it.
 *
 * Idle: without busy polling, wait() naps (poll on the lcore's fd for a
 * while, the while growing from nap_min to nap_max as nothing comes); the
 * PMDs this is built for (memif, af_packet, af_xdp in DPDK 22.11) have no RX
 * interrupts to sleep on.
 *
 * Built only where meson finds libdpdk; otherwise dpdk_absent.c says so.
 */
#ifndef LCR_DPDK_H
#define LCR_DPDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "frame.h"

#define LCR_DPDK_PEERS_MAX 64

/* Why the backend dropped a frame beyond lcr_frame_drop's reasons. */
enum lcr_dpdk_drop {
	LCR_DPDK_DROP_MULTI_SEGMENT = LCR_FRAME_DROP_MAX, /* a chained mbuf */
	LCR_DPDK_DROP_HW_CHECKSUM,			  /* the port found a bad checksum */
	LCR_DPDK_DROP_NO_PORT,				  /* a UDP port no lcore listens on */
	LCR_DPDK_DROP_HANDOFF_FULL,			  /* the owning lcore's ring was full */
	LCR_DPDK_DROP_MAX
};

struct lcr_dpdk_peer {
	uint32_t node;
	uint32_t ip;	   /* IPv4, host order */
	uint16_t port;	   /* its UDP port for lcore 0 (lcore i: port + i) */
	char eth_port[64]; /* the DPDK port that reaches it ("" : port 0) */
	bool has_mac;	   /* static neighbour entry */
	uint8_t mac[6];
};

struct lcr_dpdk_opts {
	const char *eal; /* EAL arguments, blank-separated (no quoting) */
	uint32_t lcore;	 /* this backend's lcore: queue `lcore` of every port */
	uint32_t n_lcores;
	uint32_t ip;	    /* this node's IPv4 address, host order */
	uint16_t port;	    /* this node's UDP port for lcore 0 */
	uint32_t dgram_max; /* UDP payload bytes at most */
	uint32_t n_peers;   /* every other node */
	struct lcr_dpdk_peer peers[LCR_DPDK_PEERS_MAX];
	uint32_t rx_desc, tx_desc;	 /* descriptors per queue; default 1024 */
	uint64_t nap_min_ns, nap_max_ns; /* idle naps; default 50 us .. 1 ms */
	bool busy_poll;
	struct lcr_allocator alloc;
};

void lcr_dpdk_opts_default(struct lcr_dpdk_opts *o);

/*
 * Open lcore o->lcore's backend; the first open of the process brings EAL
 * and the ports up (blocking setup). Every open of a process must name the
 * same EAL arguments and lcore count. Returns 0, or -errno with a sentence in
 * `why` (-ENOTSUP: built without DPDK).
 */
int lcr_dpdk_open(struct lcr_backend **out, const struct lcr_dpdk_opts *o, char *why,
		  unsigned why_len);

/*
 * EAL arguments `base` plus a memif port to every other node of `nodes`:
 * net_memif<peer>, its socket <dir>/memif-<a>-<b>.sock for nodes a < b (a
 * serves it, b connects), so one config makes a full mesh on one host. Writes
 * the string into `out`; returns its length, or -ENAMETOOLONG. Pure (no DPDK).
 */
int lcr_dpdk_memif_eal(char *out, size_t len, const char *base, const char *dir, uint32_t self,
		       const uint32_t *nodes, uint32_t n_nodes);

/*
 * DPDK telemetry (telemetry.c): command `cmd` ("/lcraft/...", letters,
 * digits, '_' and '/') answered with what fn(ctx, params, buf, len) writes
 * into buf: JSON, an object (shown as one dictionary of its leaves' paths:
 * "net/requests") or an array of non-negative integers. fn returns the bytes
 * written or -errno; it runs on DPDK's telemetry thread. A command stays
 * registered for the process's life: a later set points it elsewhere.
 * Returns 0 or -errno (-ENOTSUP: built without DPDK).
 */
typedef int (*lcr_dpdk_tel_fn)(void *ctx, const char *params, char *buf, size_t len);
int lcr_dpdk_telemetry_set(const char *cmd, const char *help, lcr_dpdk_tel_fn fn, void *ctx);
/* Every command set with `ctx` answers nothing from now on; waits for a
 * callback under way. */
void lcr_dpdk_telemetry_clear(void *ctx);

/* Name of a drop reason: lcr_frame_drop's, then lcr_dpdk_drop's. */
const char *lcr_dpdk_drop_name(uint32_t reason);

#endif /* LCR_DPDK_H */
