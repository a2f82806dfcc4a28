/* SPDX-License-Identifier: MIT */
/*
 * The built-in transport of the network contract (net.h): UDP datagrams on
 * kernel sockets, one socket per lcore (a node's lcore i listens on its
 * port + i), optionally through the fault decorator. udp.c says how each op
 * of the contract maps onto datagrams and streams.
 *
 * Its datagrams go through kernel sockets (sock.c) or DPDK ports (dpdk.c),
 * the same bytes either way. Its options are its own: the node runtime fills
 * them from its config (lcraft.h: bind_host, mtu, busy_poll, dpdk, fault_*);
 * the peers' addresses come with the factory's environment (lcr_net_env.peers),
 * and those of nodes a membership names later through set_peer (net.h):
 * numeric addresses only; an IPv6 one only on an lcore whose socket is bound
 * to an IPv6 address (its datagrams then leave room for IPv6 headers from
 * the start); over DPDK IPv4 only, and none with memif (-ENOTSUP).
 */
#ifndef LCR_UDP_H
#define LCR_UDP_H

#include "auth.h"
#include "net.h"

/* The DPDK path's options (dpdk.h); see lcraft.h's lcr_node_dpdk. */
struct lcr_udp_dpdk {
	bool enable;		/* DPDK ports instead of kernel sockets */
	const char *eal;	/* EAL arguments, blank-separated */
	const char *routes;	/* "node=port,...": the DPDK port that reaches a node */
	const char *neighbours; /* "node=aa:bb:cc:dd:ee:ff,...": static MACs */
	const char *memif_dir;	/* set: a memif port to every peer, sockets here */
	uint32_t rx_desc;	/* descriptors per queue (0: 1024) */
	uint32_t tx_desc;
};

struct lcr_udp_config {
	const char *bind_host; /* local address to bind; default "0.0.0.0" */
	uint32_t mtu;	       /* IP packet budget, bytes: 576..65535; default 1500 */
	bool busy_poll;	       /* never sleep in the kernel: poll the socket */
	/* Faults injected on send (tests): ppm rates, delay, seed; all 0: none. */
	uint32_t fault_loss_ppm;
	uint32_t fault_dup_ppm;
	uint32_t fault_reorder_ppm;
	uint64_t fault_delay_ns;
	uint64_t fault_jitter_ns;
	uint64_t fault_seed;
	struct lcr_udp_dpdk dpdk;
	/* Snapshots received (0: the default): the largest taken, in bytes
	 * (64 GiB); how long a transfer may stay silent before it is dropped,
	 * on either side (5000 ms); transfers received at once per lcore, each
	 * with a buffer of LCR_UDP_SNAP_BUF bytes allocated at open (2). */
	uint64_t snapshot_size_max;
	uint64_t snapshot_idle_ms;
	uint32_t snapshot_rx_max;
	/*
	 * Authenticated datagrams (auth.h; docs/wire-protocol.md,
	 * "Authentication"). auth_key NULL: none, the wire as without this
	 * option. Set: LCR_AUTH_KEY_BYTES bytes, the cluster key every member
	 * holds (read while opening only: the transport keeps what it derives,
	 * so the caller may wipe it once the node is open). Every datagram then
	 * carries a 32-byte trailer (the datagram budget shrinks by as much) and
	 * is verified before anything else in it is used.
	 */
	const uint8_t *auth_key;
	/* enum lcr_auth_alg, the same on every member: LCR_AUTH_AES256GCM
	 * (open refuses with a sentence on a CPU without AES-NI) or
	 * LCR_AUTH_CHACHA20POLY1305. */
	uint32_t auth_alg;
	/* This start of the node, >= 1, larger than in every start before (a
	 * counter persisted in the node's data dir): the session keys, and so
	 * the nonces, are new with every start, and peers refuse the datagrams
	 * of older starts (old_boot). Transports of one process with the same
	 * node, lcore and boot are refused at open (-EALREADY). */
	uint64_t auth_boot;
	/* Neither offer (in hellos) nor use acknowledgements in the header of
	 * APPEND_RESP (docs/wire-protocol.md, "Acknowledgements in answers"):
	 * the wire as nodes before them spoke it. Tests and interop checks. */
	bool no_reply_acks;
};

/* A receive's buffer: what the sender may send beyond what the node took. */
#define LCR_UDP_SNAP_BUF (4u << 20)
/* Data bytes per snapshot chunk at most (full_snapshot's option may ask less). */
#define LCR_UDP_SNAP_CHUNK (64u << 10)

void lcr_udp_config_default(struct lcr_udp_config *c);

/*
 * A factory for the UDP transport with `cfg`, which must outlive every
 * transport it opens. Opening checks the mtu and that this node is among
 * the environment's peers (-EINVAL with a sentence otherwise), and with an
 * auth_key the alg (-EINVAL, or -ENOTSUP: aes256gcm without AES-NI) and the
 * boot (-EINVAL: 0; -EALREADY: used already by this process).
 */
void lcr_udp_factory(struct lcr_net_factory *f, const struct lcr_udp_config *cfg);

#endif /* LCR_UDP_H */
