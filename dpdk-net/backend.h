/* SPDX-License-Identifier: MIT */
/*
 * A datagram backend: moves whole datagrams between this lcore and peer
 * nodes. The kernel-socket backend (sock.c), the DPDK backend (dpdk.c) and the
 * fault-injecting decorator (faulty.c) implement it; the stream layer and the
 * runtime use only this interface.
 *
 * Bursts: rx_burst hands out up to `max` received datagrams whose buffers
 * belong to the backend and stay valid until the next rx_burst; tx_burst
 * queues datagrams for sending (copying them, or sending at once) and returns
 * how many it took. Neither blocks. wait() may block the thread until a
 * datagram arrives, `fd` (another event source, e.g. io_uring's eventfd)
 * becomes readable, or the timeout passes; a busy-polling backend returns at
 * once.
 *
 * A peer is a node id; the backend maps node ids to addresses. Datagrams from
 * addresses it does not know are still handed up (the wire header names the
 * sender, and the caller checks and counts it); `from_addr_known` says
 * whether the source address matched the node the header claims.
 *
 * Only the owning lcore may use a backend.
 */
#ifndef LCR_BACKEND_H
#define LCR_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

struct lcr_dgram {
	uint8_t *buf;
	uint32_t len;
	uint32_t peer; /* tx: destination node; rx: node whose address sent it, or 0 */
};

struct lcr_backend_stats {
	uint64_t rx_dgrams, rx_bytes;
	uint64_t tx_dgrams, tx_bytes;
	uint64_t tx_errors; /* send failures (counted, the datagram is lost) */
	uint64_t rx_errors;
	uint64_t rx_truncated; /* larger than the receive buffer */
	uint64_t wakeups;      /* times wait() slept */
	uint64_t gso_sends;    /* sends that carried several datagrams (UDP_SEGMENT) */
	uint64_t gso_off;      /* the kernel refused one: segmentation turned off */
	uint64_t rx_coalesced; /* receives that held several datagrams (UDP_GRO) */
};

/*
 * A peer learned at run time (set_peer): where node `node` listens for this
 * lcore. Only what the backend needs; the transport fills it from its
 * config.
 */
struct lcr_be_peer {
	uint32_t node;
	const char *host;   /* a numeric address: IPv4, or IPv6 (sockets only) */
	uint16_t port;	    /* its port for this lcore */
	const char *route;  /* DPDK: the port that reaches it (NULL or "": the first) */
	const uint8_t *mac; /* DPDK: its Ethernet address, static; NULL: ARP finds it */
};

struct lcr_backend;

struct lcr_backend_ops {
	/* Received datagrams, at most `max`. Returns the count or -errno. */
	int (*rx_burst)(struct lcr_backend *be, struct lcr_dgram *d, uint32_t max);
	/* Send `n` datagrams. Returns how many were taken (the rest: try later). */
	int (*tx_burst)(struct lcr_backend *be, const struct lcr_dgram *d, uint32_t n);
	/* Sleep until input, `fd` readable (-1: none) or `timeout_ns`. */
	int (*wait)(struct lcr_backend *be, int fd, uint64_t timeout_ns);
	void (*stats)(const struct lcr_backend *be, struct lcr_backend_stats *st);
	/* The backend's own counters as JSON members ("a":1,...); NULL: none. */
	int (*metrics_json)(const struct lcr_backend *be, char *buf, size_t len);
	void (*close)(struct lcr_backend *be);
	/*
	 * Optional, with forget_peer (NULL: the peers are those it opened with).
	 * Learn where p->node listens, or move it there: from the return on,
	 * datagrams to it go there and datagrams from there carry its id. An
	 * address another node had is taken from it (that node is then unknown
	 * until it gets one again). Numeric addresses only: it never calls the
	 * resolver. Between bursts, on the owning lcore. Returns 0, or -errno
	 * with a sentence (-EINVAL: an address it cannot use, -ENOSPC: its table
	 * of peers is full), and then nothing changed.
	 */
	int (*set_peer)(struct lcr_backend *be, const struct lcr_be_peer *p, char *why,
			size_t why_len);
	/* Forget `node` (0 also when it is unknown): datagrams from its address
	 * come up with peer 0, datagrams to it are lost (tx_errors). */
	int (*forget_peer)(struct lcr_backend *be, uint32_t node);
};

struct lcr_backend {
	const struct lcr_backend_ops *ops;
};

static inline int lcr_be_rx(struct lcr_backend *be, struct lcr_dgram *d, uint32_t max)
{
	return be->ops->rx_burst(be, d, max);
}

static inline int lcr_be_tx(struct lcr_backend *be, const struct lcr_dgram *d, uint32_t n)
{
	return be->ops->tx_burst(be, d, n);
}

static inline int lcr_be_wait(struct lcr_backend *be, int fd, uint64_t timeout_ns)
{
	return be->ops->wait(be, fd, timeout_ns);
}

/* ---- the kernel-socket backend (sock.c) ------------------------------------ */

/* Peers a socket backend knows at once: those it opened with and those it learned. */
#define LCR_SOCK_PEERS_MAX 64

struct lcr_sock_peer {
	uint32_t node;
	char host[64]; /* IPv4 or IPv6 literal, or a name resolved once at open */
	uint16_t port; /* that node's port for this lcore */
};

struct lcr_sock_opts {
	const char *bind_host; /* address to bind ("0.0.0.0", "::", "127.0.0.1") */
	uint16_t bind_port;
	uint32_t n_peers;
	struct lcr_sock_peer peers[LCR_SOCK_PEERS_MAX];
	uint32_t burst;	    /* datagrams per recvmmsg/sendmmsg (default 64) */
	uint32_t dgram_max; /* receive buffer per datagram (default 9000) */
	bool busy_poll;	    /* never sleep in wait() */
	bool offload;	    /* UDP_SEGMENT and UDP_GRO where the kernel has them (default on) */
	uint32_t rcvbuf, sndbuf;    /* SO_RCVBUF/SO_SNDBUF bytes, 0: leave */
	struct lcr_allocator alloc; /* its buffers; NULL alloc: malloc */
};

void lcr_sock_opts_default(struct lcr_sock_opts *o);

/* Open the socket backend. Returns 0 or -errno with a sentence in `why`. */
int lcr_sock_open(struct lcr_backend **out, const struct lcr_sock_opts *o, char *why,
		  unsigned why_len);

/* ---- the fault-injecting decorator (faulty.c) ------------------------------ */

struct lcr_faulty_opts {
	uint64_t seed;
	uint32_t loss_ppm;	    /* dropped, per million datagrams */
	uint32_t dup_ppm;	    /* sent twice */
	uint32_t reorder_ppm;	    /* held back and sent after later ones */
	uint64_t delay_ns;	    /* added to every datagram */
	uint64_t jitter_ns;	    /* plus uniform 0..jitter */
	uint32_t hold_max;	    /* datagrams held for delay/reorder (default 4096) */
	struct lcr_allocator alloc; /* its queues; NULL alloc: malloc */
};

struct lcr_faulty_stats {
	uint64_t dropped, duplicated, reordered, delayed, partitioned;
	uint64_t hold_full; /* meant to be held but sent at once: hold queue full, or too large */
};

/*
 * Wrap `inner` (which the decorator then owns). Faults apply on send; a
 * partition blocks one direction to a peer (lcr_faulty_block). Time is read
 * from CLOCK_MONOTONIC; randomness from the seed only.
 */
int lcr_faulty_open(struct lcr_backend **out, struct lcr_backend *inner,
		    const struct lcr_faulty_opts *o);
void lcr_faulty_block(struct lcr_backend *be, uint32_t peer, bool blocked);
void lcr_faulty_set(struct lcr_backend *be, const struct lcr_faulty_opts *o);
void lcr_faulty_stats(const struct lcr_backend *be, struct lcr_faulty_stats *st);

#endif /* LCR_BACKEND_H */
