/* SPDX-License-Identifier: MIT */
/*
 * The DPDK datagram backend (dpdk.h). Setup in DPDK's own order (l2fwd):
 * EAL, ports configured with one queue pair per lcore, mbuf pool, queues,
 * start; then each lcore's backend reads only its own queues and state.
 *
 * What several lcores share lives in `proc`, set up under its mutex at open
 * and read-only afterwards, except three things written while running: the
 * neighbour table (one atomic word per peer), the hand-off rings (DPDK's
 * multi-producer rings) and each lcore's `sleeping` flag with its eventfd
 * (the runtime's wake pattern: a flag and fences on both sides).
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <rte_devargs.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "put.h"
#include "alloc.h"
#include "dpdk.h"
#include "lcr_assert.h"

#define BURST	     64
#define PORTS_MAX    16
#define LCORES_MAX   64
#define HANDOFF_SIZE 1024		    /* datagrams waiting for another lcore (power of 2) */
#define ARP_RETRY_NS (100ull * 1000 * 1000) /* between ARP requests for one peer */
#define EAL_ARGS_MAX 128
#define MAC_KNOWN    (1ull << 48)
/* Neighbour entries: each lcore's peers, and room for every lcore to move
 * them all (set_peer) before the old entries are freed. */
#define NEIGH_MAX (2 * LCR_DPDK_PEERS_MAX)

static_assert(BURST <= HANDOFF_SIZE, "a burst fits a hand-off ring");

struct dport {
	uint16_t id;
	char name[RTE_ETH_NAME_MAX_LEN];
	uint8_t mac[6];
	bool rx_ip_csum, rx_udp_csum; /* the port checks these in hardware */
	bool tx_ip_csum, tx_udp_csum; /* ... and computes these */
	bool memif_client;	      /* connects only when it starts (links_check) */
};

/* What an lcore shows the others: whether it sleeps, and how to wake it. */
struct wake {
	_Atomic bool sleeping;
	int efd;
} __attribute__((aligned(LCR_CACHE_LINE)));

/* The process's DPDK: set up by the first open (under mu), shared by lcores. */
static struct {
	pthread_mutex_t mu;
	bool eal_up;
	char eal[4096];	    /* the arguments EAL came up with */
	uint32_t n_lcores;  /* queue pairs per port */
	uint32_t dgram_max; /* the pool's mbufs fit this */
	uint32_t opened;    /* backends open now */
	bool ports_up;
	uint16_t n_ports;
	struct dport ports[PORTS_MAX];
	struct rte_mempool *pool;
	struct rte_ring *handoff[LCORES_MAX];
	struct wake wake[LCORES_MAX];
	/*
	 * What we know of the neighbours' MACs, by IPv4 address and port: each
	 * lcore's peer points at its entry (peer.nb), so lcores share what any
	 * of them learns. An entry's key and users change under mu only (taken
	 * by an open or a set_peer, freed when no lcore's peer uses it any
	 * more); `mac`, MAC_KNOWN | 48-bit MAC or 0, is written by whichever
	 * lcore learns it.
	 */
	struct neigh {
		uint32_t ip;   /* host order */
		uint16_t port; /* index in ports */
		uint32_t users;
		_Atomic uint64_t mac;
	} nb[NEIGH_MAX];
	/*
	 * Restarting a port whose link is down (a memif client connects only
	 * when its port starts: after its server restarted, or when it started
	 * first). Lcore 0 closes the gate; every lcore stops touching the port
	 * and acknowledges the generation; then lcore 0 stops and starts it.
	 */
	_Atomic uint32_t gate_gen;	       /* generation of the last closing */
	_Atomic uint32_t gate_port;	       /* port index + 1 behind the gate, 0: none */
	_Atomic uint32_t gate_ack[LCORES_MAX]; /* the generation each lcore saw */
	uint64_t link_check_ns;		       /* lcore 0: when links were last looked at */
	uint64_t retry_at[PORTS_MAX];	       /* lcore 0: restart then; 0: the link is up */
	uint64_t retry_ns[PORTS_MAX];	       /* lcore 0: the wait before that, doubling */
	bool down_said[PORTS_MAX];	       /* lcore 0: "link down" printed, not yet "up" */
} proc = { .mu = PTHREAD_MUTEX_INITIALIZER };

#define LINK_CHECK_NS	  (10ull * 1000 * 1000)	 /* how often lcore 0 looks at the links */
#define TX_STALL_NS	  (1ull * 1000 * 1000)	 /* a port that takes nothing this long drops */
#define LINK_RETRY_MIN_NS (20ull * 1000 * 1000)	 /* down this long: restart the port ... */
#define LINK_RETRY_MAX_NS (200ull * 1000 * 1000) /* ... and again, the wait doubling to this */

struct peer {
	uint32_t node;
	uint32_t ip;
	uint16_t udp;  /* its port for our lcore */
	uint16_t port; /* index in proc.ports */
	uint32_t nb;   /* its neighbour entry, in proc.nb */
	uint64_t arp_sent_ns;
};

struct lcr_dpdk {
	struct lcr_backend be;
	struct lcr_dpdk_opts o;
	uint32_t lcore;
	uint16_t udp; /* our port for this lcore */
	uint32_t n_peers;
	struct peer peers[LCR_DPDK_PEERS_MAX];
	struct rte_mbuf *held[BURST]; /* handed up by the last rx_burst */
	uint32_t n_held;
	uint16_t ip_id;
	uint64_t nap_ns;
	bool registered; /* rte_thread_register() done on this thread */
	struct lcr_backend_stats st;
	uint64_t drops[LCR_DPDK_DROP_MAX];
	uint64_t arp_requests_sent, arp_replies_sent, arp_seen, tx_no_mbuf;
	uint64_t no_neighbour; /* datagrams broadcast: the peer's MAC was unknown */
	uint64_t handoffs_out, handoffs_in;
	uint64_t link_down;  /* datagrams for a port whose link was down or restarting */
	uint64_t tx_stalled; /* datagrams dropped: their port took nothing for TX_STALL_NS */
	uint64_t stall_since[PORTS_MAX]; /* a port has taken nothing since then; 0: it takes */
	uint64_t port_restarts;		 /* lcore 0: ports restarted after their link went down */
	uint64_t restart_max_ns;	 /* the longest of those restarts */
};

static const char *const dpdk_drop_names[] = {
	[LCR_DPDK_DROP_MULTI_SEGMENT - LCR_FRAME_DROP_MAX] = "multi_segment",
	[LCR_DPDK_DROP_HW_CHECKSUM - LCR_FRAME_DROP_MAX] = "hw_checksum",
	[LCR_DPDK_DROP_NO_PORT - LCR_FRAME_DROP_MAX] = "no_port",
	[LCR_DPDK_DROP_HANDOFF_FULL - LCR_FRAME_DROP_MAX] = "handoff_full",
};

const char *lcr_dpdk_drop_name(uint32_t reason)
{
	if (reason < LCR_FRAME_DROP_MAX)
		return lcr_frame_drop_name(reason);
	if (reason < LCR_DPDK_DROP_MAX)
		return dpdk_drop_names[reason - LCR_FRAME_DROP_MAX];
	return "unknown";
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mac_word(const uint8_t m[6])
{
	uint64_t w = 0;
	for (int i = 0; i < 6; i++)
		w = w << 8 | m[i];
	return w | MAC_KNOWN;
}

static void mac_bytes(uint64_t w, uint8_t m[6])
{
	for (int i = 5; i >= 0; i--, w >>= 8)
		m[i] = (uint8_t)w;
}

/* ---- process setup ---------------------------------------------------------------- */

/* EAL from a blank-separated string, the calling thread's CPU set kept. */
static int eal_up(const char *args, char *why, unsigned why_len)
{
	static char buf[4096];
	char *argv[EAL_ARGS_MAX + 1];
	int argc = 0;
	cpu_set_t cpus;

	if (strlen(args) >= sizeof(buf)) {
		snprintf(why, why_len, "dpdk: eal: the arguments are longer than %zu bytes",
			 sizeof(buf) - 1);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", args);
	argv[argc++] = (char *)"lcraft";
	for (char *save = NULL, *t = strtok_r(buf, " \t\n", &save); t;
	     t = strtok_r(NULL, " \t\n", &save)) {
		if (argc == EAL_ARGS_MAX) {
			snprintf(why, why_len, "dpdk: eal: more than %d arguments",
				 EAL_ARGS_MAX - 1);
			return -EINVAL;
		}
		argv[argc++] = t;
	}
	argv[argc] = NULL;
	/* EAL pins the thread that brings it up to its main lcore's core; the
	 * node pins its lcores itself ([node] cores), so that thread keeps its
	 * CPU set. */
	bool have = pthread_getaffinity_np(pthread_self(), sizeof(cpus), &cpus) == 0;
	int rc = rte_eal_init(argc, argv);
	if (have)
		pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	if (rc < 0) {
		snprintf(why, why_len, "dpdk: EAL did not come up with \"%.300s\": %s", args,
			 rte_strerror(rte_errno));
		return -(rte_errno ? rte_errno : EINVAL);
	}
	if (rc != argc - 1) {
		snprintf(why, why_len,
			 "dpdk: eal: \"%.300s\": arguments EAL does not take after "
			 "\"%s\"",
			 args, argv[rc + 1 < argc ? rc + 1 : argc - 1]);
		return -EINVAL;
	}
	return 0;
}

static int port_up(struct dport *p, const struct lcr_dpdk_opts *o, char *why, unsigned why_len)
{
	struct rte_eth_dev_info di;
	struct rte_eth_conf conf;
	int rc;

	if ((rc = rte_eth_dev_info_get(p->id, &di)) != 0 ||
	    (rc = rte_eth_dev_get_name_by_port(p->id, p->name)) != 0) {
		snprintf(why, why_len, "dpdk: port %u: no device info: %s", p->id,
			 rte_strerror(-rc));
		return rc;
	}
	if (di.max_rx_queues < o->n_lcores || di.max_tx_queues < o->n_lcores) {
		snprintf(why, why_len,
			 "dpdk: port %s (%s) has %u RX and %u TX queues; %u lcores need one "
			 "pair each",
			 p->name, di.driver_name, di.max_rx_queues, di.max_tx_queues, o->n_lcores);
		return -EINVAL;
	}
	uint32_t mtu = o->dgram_max + LCR_IP4_HDR + LCR_UDP_HDR;
	if (di.max_mtu && mtu > di.max_mtu) {
		snprintf(why, why_len, "dpdk: port %s (%s) carries an MTU of %u at most; mtu is %u",
			 p->name, di.driver_name, di.max_mtu, mtu);
		return -EINVAL;
	}
	memset(&conf, 0, sizeof(conf));
	p->rx_ip_csum = di.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
	p->rx_udp_csum = di.rx_offload_capa & RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	p->tx_ip_csum = di.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	p->tx_udp_csum = di.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	if (p->rx_ip_csum)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
	if (p->rx_udp_csum)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	if (p->tx_ip_csum)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	if (p->tx_udp_csum)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	if (mtu > RTE_ETHER_MTU)
		conf.rxmode.mtu = mtu;
	rc = rte_eth_dev_configure(p->id, (uint16_t)o->n_lcores, (uint16_t)o->n_lcores, &conf);
	if (rc < 0) {
		snprintf(why, why_len, "dpdk: port %s (%s): configure %u queue pairs: %s", p->name,
			 di.driver_name, o->n_lcores, rte_strerror(-rc));
		return rc;
	}
	uint16_t nrx = (uint16_t)o->rx_desc, ntx = (uint16_t)o->tx_desc;
	rte_eth_dev_adjust_nb_rx_tx_desc(p->id, &nrx, &ntx);
	int sock = rte_eth_dev_socket_id(p->id);
	for (uint16_t q = 0; q < o->n_lcores; q++) {
		if ((rc = rte_eth_rx_queue_setup(p->id, q, nrx, (unsigned)sock, NULL, proc.pool)) <
			    0 ||
		    (rc = rte_eth_tx_queue_setup(p->id, q, ntx, (unsigned)sock, NULL)) < 0) {
			snprintf(why, why_len, "dpdk: port %s: queue %u: %s", p->name, q,
				 rte_strerror(-rc));
			return rc;
		}
	}
	/* A port may not start while its peer is away (a memif client whose
	 * server is not up yet): its link stays down, and lcore 0 restarts it
	 * until it comes up (links_check). */
	if ((rc = rte_eth_dev_start(p->id)) < 0)
		fprintf(stderr,
			"lcraft: dpdk: port %s (%s) did not start (%s): trying again while its "
			"link is down\n",
			p->name, di.driver_name, rte_strerror(-rc));
	struct rte_ether_addr a;
	rte_eth_macaddr_get(p->id, &a);
	memcpy(p->mac, a.addr_bytes, 6);
	const struct rte_devargs *da = di.device ? rte_dev_devargs(di.device) : NULL;
	p->memif_client = strcmp(di.driver_name, "net_memif") == 0 &&
			  !(da && da->args && strstr(da->args, "role=server"));
	return 0;
}

/* The mbuf pool: every descriptor of every queue filled, plus what lcores
 * hold (a burst each way, the hand-off rings) and slack for the caches. */
static int pool_up(const struct lcr_dpdk_opts *o, char *why, unsigned why_len)
{
	uint32_t per_port = o->n_lcores * (o->rx_desc + o->tx_desc);
	uint32_t n = proc.n_ports * per_port + o->n_lcores * (2 * BURST + HANDOFF_SIZE) +
		     proc.n_ports * o->n_lcores * 512 + 1024;
	/* Room for a whole frame in one mbuf, and at least DPDK's default (2 KiB
	 * of data): drivers size their receive buffers by their own defaults
	 * (af_packet: 2,048-byte frames). */
	uint32_t room = RTE_PKTMBUF_HEADROOM + LCR_FRAME_HDR + o->dgram_max;
	if (room < RTE_MBUF_DEFAULT_BUF_SIZE)
		room = RTE_MBUF_DEFAULT_BUF_SIZE;

	if (room > UINT16_MAX) {
		snprintf(why, why_len, "dpdk: datagrams of %u bytes do not fit an mbuf",
			 o->dgram_max);
		return -EINVAL;
	}
	proc.pool = rte_pktmbuf_pool_create("lcraft", n, 256, 0, (uint16_t)room, rte_socket_id());
	if (!proc.pool) {
		snprintf(why, why_len,
			 "dpdk: a pool of %u mbufs of %u bytes (%u MiB): %s; give EAL more "
			 "memory (-m) or lower rx_desc/tx_desc",
			 n, room, (unsigned)((uint64_t)n * (room + 128) >> 20),
			 rte_strerror(rte_errno));
		return -ENOMEM;
	}
	proc.dgram_max = o->dgram_max;
	return 0;
}

static int handoff_up(const struct lcr_dpdk_opts *o, char *why, unsigned why_len)
{
	for (uint32_t i = 0; i < o->n_lcores; i++) {
		char name[RTE_RING_NAMESIZE];
		snprintf(name, sizeof(name), "lcraft-ho-%u", i);
		if (!proc.handoff[i])
			proc.handoff[i] =
				rte_ring_create(name, HANDOFF_SIZE, rte_socket_id(), RING_F_SC_DEQ);
		if (!proc.handoff[i]) {
			snprintf(why, why_len, "dpdk: hand-off ring of lcore %u: %s", i,
				 rte_strerror(rte_errno));
			return -ENOMEM;
		}
		if (proc.wake[i].efd <= 0)
			proc.wake[i].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (proc.wake[i].efd < 0) {
			snprintf(why, why_len, "dpdk: eventfd: %s", strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* Bring the process's DPDK up for `o`, or check that it is up for it. */
static int proc_up(const struct lcr_dpdk_opts *o, char *why, unsigned why_len)
{
	int rc;

	if (!proc.eal_up) {
		if ((rc = eal_up(o->eal, why, why_len)) < 0)
			return rc;
		proc.eal_up = true;
		snprintf(proc.eal, sizeof(proc.eal), "%s", o->eal);
	} else if (strcmp(proc.eal, o->eal) != 0) {
		snprintf(why, why_len,
			 "dpdk: EAL is up with \"%.200s\" in this process; it cannot come up "
			 "again with other arguments",
			 proc.eal);
		return -EINVAL;
	}
	if (proc.ports_up) {
		if (o->n_lcores != proc.n_lcores || o->dgram_max > proc.dgram_max) {
			snprintf(why, why_len,
				 "dpdk: the ports are set up for %u lcores and %u-byte datagrams",
				 proc.n_lcores, proc.dgram_max);
			return -EINVAL;
		}
		return 0;
	}
	if (o->n_lcores > LCORES_MAX) {
		snprintf(why, why_len, "dpdk: %u lcores, at most %d", o->n_lcores, LCORES_MAX);
		return -EINVAL;
	}
	uint16_t id;
	proc.n_ports = 0;
	RTE_ETH_FOREACH_DEV(id)
	{
		if (proc.n_ports == PORTS_MAX) {
			snprintf(why, why_len, "dpdk: more than %d ports", PORTS_MAX);
			return -EINVAL;
		}
		proc.ports[proc.n_ports++].id = id;
	}
	if (proc.n_ports == 0) {
		snprintf(why, why_len,
			 "dpdk: EAL found no port (\"%.200s\"): name one, e.g. "
			 "--vdev=net_memif0,... or --vdev=net_af_packet0,iface=...",
			 o->eal);
		return -ENODEV;
	}
	if (!proc.pool && (rc = pool_up(o, why, why_len)) < 0)
		return rc;
	if (o->dgram_max > proc.dgram_max) {
		snprintf(why, why_len, "dpdk: the pool holds %u-byte datagrams, not %u",
			 proc.dgram_max, o->dgram_max);
		return -EINVAL;
	}
	for (uint16_t i = 0; i < proc.n_ports; i++)
		if ((rc = port_up(&proc.ports[i], o, why, why_len)) < 0)
			return rc;
	if ((rc = handoff_up(o, why, why_len)) < 0)
		return rc;
	proc.n_lcores = o->n_lcores;
	proc.ports_up = true;
	return 0;
}

/* The last backend of the process closed: stop the ports (EAL stays up: it
 * cannot come up twice in a process). */
static void proc_down(void)
{
	for (uint16_t i = 0; i < proc.n_ports; i++)
		rte_eth_dev_stop(proc.ports[i].id);
	proc.ports_up = false;
}

/* Whether lcores may use port `p` now (it is not behind the gate). */
static bool port_open(uint16_t p)
{
	return atomic_load_explicit(&proc.gate_port, memory_order_acquire) != (uint32_t)p + 1;
}

/* ---- neighbours and ARP ----------------------------------------------------------- */

/* Under mu: the neighbour entry of (ip, port), taken if no lcore has it yet
 * (with `mac`, a static one, or unknown); -1 when the table is full. */
static int nb_take(uint32_t ip, uint16_t port, const uint8_t *mac)
{
	int free_i = -1;

	for (int i = 0; i < NEIGH_MAX; i++) {
		struct neigh *e = &proc.nb[i];
		if (e->users && e->ip == ip && e->port == port) {
			e->users++;
			return i;
		}
		if (!e->users && free_i < 0)
			free_i = i;
	}
	if (free_i < 0)
		return -1;
	struct neigh *e = &proc.nb[free_i];
	e->ip = ip;
	e->port = port;
	e->users = 1;
	atomic_store_explicit(&e->mac, mac ? mac_word(mac) : 0, memory_order_relaxed);
	return free_i;
}

/* Under mu: a peer no longer uses entry i. */
static void nb_put(uint32_t i)
{
	LCR_ASSERT(i < NEIGH_MAX);
	LCR_ASSERT(proc.nb[i].users > 0);
	if (--proc.nb[i].users == 0)
		atomic_store_explicit(&proc.nb[i].mac, 0, memory_order_relaxed);
}

/* A peer's MAC, seen in its frames: remember it (a peer may move). */
static void learn(const struct peer *p, const uint8_t mac[6])
{
	uint64_t w = mac_word(mac);
	LCR_ASSERT(p->nb < NEIGH_MAX);
	if (atomic_load_explicit(&proc.nb[p->nb].mac, memory_order_relaxed) != w)
		atomic_store_explicit(&proc.nb[p->nb].mac, w, memory_order_relaxed);
}

/* The peer an ARP frame on port `port` speaks for (nodes on one host may share
 * an address: then it is the one that port reaches), or -1. */
static int peer_by_arp(const struct lcr_dpdk *b, uint16_t port, uint32_t ip)
{
	for (uint32_t i = 0; i < b->n_peers; i++)
		if (b->peers[i].ip == ip && b->peers[i].port == port)
			return (int)i;
	return -1;
}

static void send_frame(struct lcr_dpdk *b, uint16_t port, const uint8_t *frame, uint32_t len)
{
	if (!port_open(port))
		return;
	struct rte_mbuf *m = rte_pktmbuf_alloc(proc.pool);
	if (!m) {
		b->tx_no_mbuf++;
		return;
	}
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
	LCR_ASSERT(p != NULL);
	memcpy(p, frame, len);
	if (rte_eth_tx_burst(proc.ports[port].id, (uint16_t)b->lcore, &m, 1) != 1)
		rte_pktmbuf_free(m);
}

static void arp_input(struct lcr_dpdk *b, uint16_t port, const struct lcr_frame *f)
{
	b->arp_seen++;
	int i = peer_by_arp(b, port, f->src_ip);
	if (i >= 0)
		learn(&b->peers[i], f->src_mac);
	if (f->arp_op == 1 && f->dst_ip == b->o.ip) {
		uint8_t reply[LCR_ARP_FRAME_LEN];
		lcr_frame_build_arp(reply, 2, proc.ports[port].mac, b->o.ip, f->src_mac, f->src_ip);
		send_frame(b, port, reply, sizeof(reply));
		b->arp_replies_sent++;
	}
}

static void arp_request(struct lcr_dpdk *b, struct peer *p, uint64_t now)
{
	if (p->arp_sent_ns && now - p->arp_sent_ns < ARP_RETRY_NS)
		return;
	p->arp_sent_ns = now;
	uint8_t req[LCR_ARP_FRAME_LEN];
	static const uint8_t zero[6];
	lcr_frame_build_arp(req, 1, proc.ports[p->port].mac, b->o.ip, zero, p->ip);
	send_frame(b, p->port, req, sizeof(req));
	b->arp_requests_sent++;
}

/* ---- receive ------------------------------------------------------------------------ */

/* ---- ports that lose their link -------------------------------------------------- */

/*
 * Every lcore, at the start of each burst: say which gate generation it has
 * seen. Having seen it, it touches no port behind the gate (port_open()
 * reads the port after the generation: lcore 0 writes them in the other
 * order).
 */
static void gate_ack(const struct lcr_dpdk *b)
{
	uint32_t gen = atomic_load_explicit(&proc.gate_gen, memory_order_acquire);
	atomic_store_explicit(&proc.gate_ack[b->lcore], gen, memory_order_release);
}

/*
 * Lcore 0: a memif client port whose link is down is restarted, after
 * LINK_RETRY_MIN_NS and then again with the wait doubling up to
 * LINK_RETRY_MAX_NS while it stays down: a memif client connects only when
 * its port starts, so one whose server came back, or was started first,
 * needs it; a failed attempt costs about 100 us (a server takes its client
 * back by itself, and restarting it would drop a client that just came;
 * other ports' links go down for reasons a restart does not mend). One at a
 * time: close the gate, wait until every lcore has seen it (they wake at
 * least every nap_max), stop and start the port, open the gate.
 */
static void links_check(struct lcr_dpdk *b, uint64_t now)
{
	uint32_t gp = atomic_load_explicit(&proc.gate_port, memory_order_acquire);
	if (gp) {
		uint32_t gen = atomic_load_explicit(&proc.gate_gen, memory_order_acquire);
		for (uint32_t i = 0; i < proc.n_lcores; i++)
			if (atomic_load_explicit(&proc.gate_ack[i], memory_order_acquire) != gen)
				return;
		uint16_t id = proc.ports[gp - 1].id;
		uint64_t t0 = mono_ns();
		rte_eth_dev_stop(id);
		int rc = rte_eth_dev_start(id);
		b->port_restarts++;
		uint64_t took = mono_ns() - t0;
		if (took > b->restart_max_ns)
			b->restart_max_ns = took;
		(void)rc; /* its peer is not back yet: the next try says */
		uint32_t p = gp - 1;
		proc.retry_ns[p] = proc.retry_ns[p] * 2 < LINK_RETRY_MAX_NS ? proc.retry_ns[p] * 2
									    : LINK_RETRY_MAX_NS;
		proc.retry_at[p] = mono_ns() + proc.retry_ns[p];
		atomic_store_explicit(&proc.gate_port, 0, memory_order_release);
		return;
	}
	if (now - proc.link_check_ns < LINK_CHECK_NS)
		return;
	proc.link_check_ns = now;
	/* Every peer's MAC asked for before it is needed (arp_request() paces
	 * itself per peer). */
	for (uint32_t i = 0; i < b->n_peers; i++)
		if (!(atomic_load_explicit(&proc.nb[b->peers[i].nb].mac, memory_order_relaxed) &
		      MAC_KNOWN))
			arp_request(b, &b->peers[i], now);
	for (uint16_t p = 0; p < proc.n_ports; p++) {
		struct rte_eth_link link;
		memset(&link, 0, sizeof(link));
		if (!proc.ports[p].memif_client ||
		    rte_eth_link_get_nowait(proc.ports[p].id, &link) != 0 ||
		    link.link_status == RTE_ETH_LINK_UP) {
			if (proc.down_said[p])
				fprintf(stderr, "lcraft: dpdk: port %s: link up\n",
					proc.ports[p].name);
			proc.down_said[p] = false;
			proc.retry_at[p] = 0;
			continue;
		}
		if (proc.retry_at[p] == 0) {
			/* A memif link still shaking hands is down too: say
			 * nothing unless it stays so past the first wait. */
			proc.retry_ns[p] = LINK_RETRY_MIN_NS;
			proc.retry_at[p] = now + LINK_RETRY_MIN_NS;
			continue;
		}
		if (now < proc.retry_at[p])
			continue;
		if (!proc.down_said[p]) {
			fprintf(stderr,
				"lcraft: dpdk: port %s: link down; restarting it until it "
				"connects\n",
				proc.ports[p].name);
			proc.down_said[p] = true;
		}
		atomic_store_explicit(&proc.gate_port, (uint32_t)p + 1, memory_order_seq_cst);
		atomic_fetch_add_explicit(&proc.gate_gen, 1, memory_order_seq_cst);
		gate_ack(b);
		return;
	}
}

static void registered(struct lcr_dpdk *b)
{
	/* A thread DPDK did not start gets an lcore id (per-lcore mempool
	 * caches); without one it still works, uncached. */
	if (!b->registered) {
		b->registered = true;
		if (rte_lcore_id() == LCORE_ID_ANY)
			(void)rte_thread_register();
	}
}

/* The peer whose address sent a datagram, or -1. */
static int peer_of(const struct lcr_dpdk *b, uint32_t ip, uint16_t port)
{
	for (uint32_t i = 0; i < b->n_peers; i++)
		if (b->peers[i].ip == ip && b->peers[i].udp == port)
			return (int)i;
	return -1;
}

static void drop(struct lcr_dpdk *b, struct rte_mbuf *m, uint32_t why)
{
	b->drops[why]++;
	rte_pktmbuf_free(m);
}

static void wake_lcore(uint32_t lc)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&proc.wake[lc].sleeping, memory_order_relaxed)) {
		uint64_t one = 1;
		ssize_t rc = write(proc.wake[lc].efd, &one, sizeof(one));
		(void)rc; /* a full counter is readable: it wakes anyway */
	}
}

/* One frame from queue `lcore` of port `port`: hand it up, over, or drop it. */
static void rx_frame(struct lcr_dpdk *b, uint16_t port, struct rte_mbuf *m, struct lcr_dgram *d,
		     uint32_t *n, uint32_t handoff[LCORES_MAX])
{
	struct lcr_frame f;
	const struct dport *p = &proc.ports[port];
	uint64_t fl = m->ol_flags;

	if (m->nb_segs != 1) {
		drop(b, m, LCR_DPDK_DROP_MULTI_SEGMENT);
		return;
	}
	if ((fl & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
	    (fl & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD) {
		drop(b, m, LCR_DPDK_DROP_HW_CHECKSUM);
		return;
	}
	bool ip_ok =
		p->rx_ip_csum && (fl & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
	bool udp_ok =
		p->rx_udp_csum && (fl & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD;
	const uint8_t *data = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t why = lcr_frame_parse(data, m->data_len, b->o.ip, ip_ok, udp_ok, &f);
	if (why != LCR_FRAME_OK) {
		drop(b, m, why);
		return;
	}
	if (f.arp) {
		arp_input(b, port, &f);
		rte_pktmbuf_free(m);
		return;
	}
	if (f.dst_port < b->o.port || f.dst_port >= b->o.port + proc.n_lcores) {
		drop(b, m, LCR_DPDK_DROP_NO_PORT);
		return;
	}
	uint32_t owner = f.dst_port - b->o.port;
	if (owner != b->lcore) {
		/* A port that spreads flows its own way: to the owning lcore. */
		if (rte_ring_mp_enqueue(proc.handoff[owner], m) != 0) {
			drop(b, m, LCR_DPDK_DROP_HANDOFF_FULL);
			return;
		}
		b->handoffs_out++;
		handoff[owner]++;
		return;
	}
	int from = peer_of(b, f.src_ip, f.src_port);
	if (from >= 0)
		learn(&b->peers[from], f.src_mac);
	d[*n].buf = (uint8_t *)data + f.payload;
	d[*n].len = f.payload_len;
	d[*n].peer = from >= 0 ? b->peers[from].node : 0;
	b->held[b->n_held++] = m;
	b->st.rx_dgrams++;
	b->st.rx_bytes += f.payload_len;
	(*n)++;
}

static int dpdk_rx_burst(struct lcr_backend *be, struct lcr_dgram *d, uint32_t max)
{
	struct lcr_dpdk *b = (struct lcr_dpdk *)be;
	struct rte_mbuf *m[BURST];
	uint32_t n = 0, handoff[LCORES_MAX] = { 0 };

	registered(b);
	rte_pktmbuf_free_bulk(b->held, b->n_held);
	b->n_held = 0;
	gate_ack(b);
	if (b->lcore == 0)
		links_check(b, mono_ns());
	if (max > BURST)
		max = BURST;
	/* Datagrams other lcores received for us first: they came earlier. */
	unsigned k = rte_ring_sc_dequeue_burst(proc.handoff[b->lcore], (void **)m, max, NULL);
	b->handoffs_in += k;
	for (unsigned i = 0; i < k; i++)
		rx_frame(b, 0, m[i], d, &n, handoff);
	for (uint16_t p = 0; p < proc.n_ports && n < max; p++) {
		if (!port_open(p))
			continue;
		uint16_t got = rte_eth_rx_burst(proc.ports[p].id, (uint16_t)b->lcore, m,
						(uint16_t)(max - n));
		for (uint16_t i = 0; i < got; i++)
			rx_frame(b, p, m[i], d, &n, handoff);
	}
	for (uint32_t i = 0; i < proc.n_lcores; i++)
		if (handoff[i])
			wake_lcore(i);
	if (n || k)
		b->nap_ns = b->o.nap_min_ns;
	LCR_ASSERT(n <= max && b->n_held == n);
	return (int)n;
}

/* ---- transmit ----------------------------------------------------------------------- */

static struct peer *peer_by_node(struct lcr_dpdk *b, uint32_t node)
{
	for (uint32_t i = 0; i < b->n_peers; i++)
		if (b->peers[i].node == node)
			return &b->peers[i];
	return NULL;
}

/*
 * The frame of one datagram in a fresh mbuf: 0, or -EAGAIN without an mbuf
 * (try later). While the peer's MAC is unknown the frame goes to the
 * Ethernet broadcast address and an ARP request asks for the MAC: dropping
 * it instead would cost a vote or an append a whole timeout (a follower
 * restarted with a new MAC, or one the others never sent to, is asked
 * exactly when a leader must be elected). The peers drop frames for
 * another IPv4 address.
 */
static int frame_of(struct lcr_dpdk *b, const struct lcr_dgram *d, struct peer *p, uint64_t now,
		    struct rte_mbuf **out)
{
	uint64_t w = atomic_load_explicit(&proc.nb[p->nb].mac, memory_order_relaxed);
	if (!(w & MAC_KNOWN)) {
		arp_request(b, p, now);
		b->no_neighbour++;
		w = 0xffffffffffffull; /* broadcast */
	}
	struct rte_mbuf *m = rte_pktmbuf_alloc(proc.pool);
	if (!m) {
		b->tx_no_mbuf++;
		return -EAGAIN;
	}
	const struct dport *port = &proc.ports[p->port];
	uint8_t *f = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(LCR_FRAME_HDR + d->len));
	LCR_ASSERT(f != NULL);
	struct lcr_frame_addr a = { .src_ip = b->o.ip,
				    .dst_ip = p->ip,
				    .src_port = b->udp,
				    .dst_port = p->udp,
				    .ip_id = b->ip_id++ };
	memcpy(a.src_mac, port->mac, 6);
	mac_bytes(w, a.dst_mac);
	memcpy(f + LCR_FRAME_HDR, d->buf, d->len);
	lcr_frame_build_udp(f, &a, d->len, port->tx_ip_csum, port->tx_udp_csum);
	if (port->tx_ip_csum || port->tx_udp_csum) {
		m->l2_len = LCR_ETH_HDR;
		m->l3_len = LCR_IP4_HDR;
		m->ol_flags |= RTE_MBUF_F_TX_IPV4;
		if (port->tx_ip_csum)
			m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
		if (port->tx_udp_csum)
			m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM;
	}
	*out = m;
	return 0;
}

/* Send what is batched for one port: how many it took (the rest are freed). */
/*
 * Send what is batched for one port: how many it took (the rest are freed).
 * A port whose link is down takes them all, as a network drops them: left
 * for later, they would hold up the datagrams to every other peer behind
 * them (a memif peer that died never takes another frame).
 */
static uint32_t tx_flush(struct lcr_dpdk *b, uint16_t port, struct rte_mbuf **m, uint32_t n,
			 uint64_t now)
{
	uint16_t sent =
		n ? rte_eth_tx_burst(proc.ports[port].id, (uint16_t)b->lcore, m, (uint16_t)n) : 0;
	if (sent > 0 || n == 0)
		b->stall_since[port] = 0;
	if (sent == n)
		return n;
	/* Not sent: not counted (what is tried again is counted then). */
	for (uint32_t i = sent; i < n; i++) {
		b->st.tx_dgrams--;
		b->st.tx_bytes -= rte_pktmbuf_pkt_len(m[i]) - LCR_FRAME_HDR;
	}
	rte_pktmbuf_free_bulk(m + sent, n - sent);
	struct rte_eth_link link;
	memset(&link, 0, sizeof(link));
	if (rte_eth_link_get_nowait(proc.ports[port].id, &link) == 0 &&
	    link.link_status == RTE_ETH_LINK_DOWN) {
		b->link_down += n - sent;
		return n;
	}
	/*
	 * Full. Its peer drains it (the rest later), unless the port has taken
	 * nothing for TX_STALL_NS: a peer that is not polling (a process not
	 * yet started on a memif whose link is up) would have the caller try
	 * the same datagrams again every iteration for as long as it lasts. It
	 * drops them then, as a network drops what a full queue cannot take;
	 * the streams send again.
	 */
	if (sent == 0) {
		if (b->stall_since[port] == 0)
			b->stall_since[port] = now ? now : 1;
		else if (now - b->stall_since[port] >= TX_STALL_NS) {
			b->tx_stalled += n;
			return n;
		}
	}
	return sent;
}

static int dpdk_tx_burst(struct lcr_backend *be, const struct lcr_dgram *d, uint32_t n)
{
	struct lcr_dpdk *b = (struct lcr_dpdk *)be;
	struct rte_mbuf *batch[BURST];
	uint32_t idx[BURST], nb = 0;
	uint16_t port = 0;
	uint64_t now = mono_ns();

	registered(b);
	for (uint32_t i = 0; i < n; i++) {
		struct peer *p = peer_by_node(b, d[i].peer);
		if (!p || d[i].len > b->o.dgram_max) {
			b->st.tx_errors++; /* a datagram nobody can carry: lost */
			continue;
		}
		if (!port_open(p->port)) {
			b->link_down++; /* its port restarts: lost, as on a link that is down */
			continue;
		}
		if (nb && (p->port != port || nb == BURST)) {
			uint32_t sent = tx_flush(b, port, batch, nb, now);
			if (sent < nb)
				return (int)idx[sent]; /* the port is full: the rest later */
			nb = 0;
		}
		struct rte_mbuf *m;
		int rc = frame_of(b, &d[i], p, now, &m);
		if (rc < 0) {
			/* No mbuf: send what is built, the rest later. */
			uint32_t sent = tx_flush(b, port, batch, nb, now);
			return (int)(sent < nb ? idx[sent] : i);
		}
		port = p->port;
		idx[nb] = i;
		batch[nb++] = m;
		b->st.tx_dgrams++;
		b->st.tx_bytes += d[i].len;
	}
	uint32_t sent = tx_flush(b, port, batch, nb, now);
	if (sent < nb)
		return (int)idx[sent];
	return (int)n;
}

/* ---- waiting, metrics, close ----------------------------------------------------- */

static int dpdk_wait(struct lcr_backend *be, int fd, uint64_t timeout_ns)
{
	struct lcr_dpdk *b = (struct lcr_dpdk *)be;
	struct wake *w = &proc.wake[b->lcore];

	if (b->o.busy_poll)
		return 0;
	uint64_t nap = b->nap_ns < timeout_ns ? b->nap_ns : timeout_ns;
	atomic_store_explicit(&w->sleeping, true, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (rte_ring_count(proc.handoff[b->lcore]) == 0) {
		struct pollfd pf[2] = { { .fd = w->efd, .events = POLLIN },
					{ .fd = fd, .events = POLLIN } };
		struct timespec ts = { (time_t)(nap / 1000000000ull), (long)(nap % 1000000000ull) };
		b->st.wakeups++;
		(void)ppoll(pf, fd >= 0 ? 2 : 1, &ts, NULL);
	}
	atomic_store_explicit(&w->sleeping, false, memory_order_relaxed);
	uint64_t x;
	ssize_t rc = read(w->efd, &x, sizeof(x));
	(void)rc; /* nothing to read (EAGAIN) is the common case */
	/* Nothing came for a while: nap longer, up to nap_max. */
	b->nap_ns = b->nap_ns * 2 < b->o.nap_max_ns ? b->nap_ns * 2 : b->o.nap_max_ns;
	return 0;
}

static void dpdk_stats(const struct lcr_backend *be, struct lcr_backend_stats *st)
{
	const struct lcr_dpdk *b = (const struct lcr_dpdk *)be;
	*st = b->st;
	for (uint32_t r = 1; r < LCR_DPDK_DROP_MAX; r++)
		st->rx_errors += b->drops[r];
}

static int dpdk_metrics_json(const struct lcr_backend *be, char *buf, size_t len)
{
	const struct lcr_dpdk *b = (const struct lcr_dpdk *)be;
	size_t o = 0;

	LCR_PUT("\"dpdk\":{\"arp_seen\":%llu,\"arp_requests_sent\":%llu,\"arp_replies_sent\":%llu,"
		"\"no_neighbour\":%llu,\"tx_no_mbuf\":%llu,\"handoffs_out\":%llu,\"handoffs_in\":%"
		"llu,"
		"\"naps\":%llu,\"link_down\":%llu,\"tx_stalled\":%llu,\"port_restarts\":%llu,"
		"\"restart_max_us\":%.0f,"
		"\"frame_drops\":{",
		(unsigned long long)b->arp_seen, (unsigned long long)b->arp_requests_sent,
		(unsigned long long)b->arp_replies_sent, (unsigned long long)b->no_neighbour,
		(unsigned long long)b->tx_no_mbuf, (unsigned long long)b->handoffs_out,
		(unsigned long long)b->handoffs_in, (unsigned long long)b->st.wakeups,
		(unsigned long long)b->link_down, (unsigned long long)b->tx_stalled,
		(unsigned long long)b->port_restarts, (double)b->restart_max_ns / 1e3);
	for (uint32_t r = 1, first = 1; r < LCR_DPDK_DROP_MAX; r++) {
		if (!b->drops[r])
			continue;
		LCR_PUT("%s\"%s\":%llu", first ? "" : ",", lcr_dpdk_drop_name(r),
			(unsigned long long)b->drops[r]);
		first = 0;
	}
	LCR_PUT("},\"ports\":[");
	for (uint16_t i = 0; i < proc.n_ports; i++) {
		struct rte_eth_stats es;
		memset(&es, 0, sizeof(es));
		rte_eth_stats_get(proc.ports[i].id, &es);
		LCR_PUT("%s{\"name\":\"%s\",\"ipackets\":%llu,\"opackets\":%llu,\"imissed\":%llu,"
			"\"ierrors\":%llu,\"oerrors\":%llu,\"rx_nombuf\":%llu}",
			i ? "," : "", proc.ports[i].name, (unsigned long long)es.ipackets,
			(unsigned long long)es.opackets, (unsigned long long)es.imissed,
			(unsigned long long)es.ierrors, (unsigned long long)es.oerrors,
			(unsigned long long)es.rx_nombuf);
	}
	LCR_PUT("]}");
	return (int)o;
}

static void dpdk_close(struct lcr_backend *be)
{
	struct lcr_dpdk *b = (struct lcr_dpdk *)be;

	if (!b)
		return;
	rte_pktmbuf_free_bulk(b->held, b->n_held);
	pthread_mutex_lock(&proc.mu);
	for (uint32_t i = 0; i < b->n_peers; i++)
		nb_put(b->peers[i].nb);
	LCR_ASSERT(proc.opened > 0);
	if (--proc.opened == 0)
		proc_down();
	pthread_mutex_unlock(&proc.mu);
	struct lcr_allocator a = b->o.alloc;
	lcr_allocator_free_aligned(&a, b);
}

static int port_by_name(const char *name, uint16_t *idx, char *why, unsigned why_len);

/* ---- peers learned at run time ------------------------------------------------- */

/*
 * Learn or move a peer (backend.h), between bursts on the owning lcore: an
 * IPv4 address, the port that reaches it (its route), its MAC static or
 * found by ARP. Its neighbour entry is shared with the other lcores, under
 * mu: only this call and open/close take the lock, never the data path.
 * Memif ports are made per peer when EAL comes up; the UDP transport refuses
 * learned peers there before asking.
 */
static int dpdk_set_peer(struct lcr_backend *be, const struct lcr_be_peer *bp, char *why,
			 size_t why_len)
{
	struct lcr_dpdk *b = (struct lcr_dpdk *)be;
	struct in_addr a;
	uint16_t port;
	int rc;

	LCR_ASSERT(bp && bp->host && bp->node != 0);
	if (inet_pton(AF_INET, bp->host, &a) != 1) {
		snprintf(why, why_len,
			 "dpdk: node %u's address \"%s\" is not an IPv4 address (the DPDK path "
			 "takes IPv4 literals)",
			 bp->node, bp->host);
		return -EINVAL;
	}
	uint32_t ip = ntohl(a.s_addr);
	pthread_mutex_lock(&proc.mu);
	if ((rc = port_by_name(bp->route ? bp->route : "", &port, why, (unsigned)why_len)) < 0)
		goto out;
	bool known = false, taken = false;
	for (uint32_t i = 0; i < b->n_peers; i++) {
		if (b->peers[i].node == bp->node)
			known = true;
		else if (b->peers[i].ip == ip && b->peers[i].udp == bp->port)
			taken = true;
	}
	bool full = !known && !taken && b->n_peers == LCR_DPDK_PEERS_MAX;
	int e = full ? -1 : nb_take(ip, port, bp->mac);
	if (e < 0) {
		snprintf(why, why_len, "dpdk: node %u: %s", bp->node,
			 full ? "this lcore knows " RTE_STR(LCR_DPDK_PEERS_MAX) " peers, its most"
			      : "the neighbour table is full (lcores disagree on the peers)");
		rc = -ENOSPC;
		goto out;
	}
	/* An address belongs to one node: another that had it loses it. */
	for (uint32_t i = 0; i < b->n_peers;) {
		struct peer *o = &b->peers[i];
		if (o->node != bp->node && o->ip == ip && o->udp == bp->port) {
			nb_put(o->nb);
			*o = b->peers[--b->n_peers];
		} else {
			i++;
		}
	}
	struct peer *p = NULL;
	for (uint32_t i = 0; i < b->n_peers && !p; i++)
		if (b->peers[i].node == bp->node)
			p = &b->peers[i];
	if (p)
		nb_put(p->nb);
	else
		p = &b->peers[b->n_peers++];
	LCR_ASSERT(b->n_peers <= LCR_DPDK_PEERS_MAX);
	memset(p, 0, sizeof(*p));
	p->node = bp->node;
	p->ip = ip;
	p->udp = bp->port;
	p->port = port;
	p->nb = (uint32_t)e;
out:
	pthread_mutex_unlock(&proc.mu);
	return rc;
}

static int dpdk_forget_peer(struct lcr_backend *be, uint32_t node)
{
	struct lcr_dpdk *b = (struct lcr_dpdk *)be;

	pthread_mutex_lock(&proc.mu);
	for (uint32_t i = 0; i < b->n_peers; i++) {
		if (b->peers[i].node == node) {
			nb_put(b->peers[i].nb);
			b->peers[i] = b->peers[--b->n_peers];
			break;
		}
	}
	pthread_mutex_unlock(&proc.mu);
	return 0;
}

static const struct lcr_backend_ops dpdk_ops = {
	.rx_burst = dpdk_rx_burst,
	.tx_burst = dpdk_tx_burst,
	.wait = dpdk_wait,
	.stats = dpdk_stats,
	.metrics_json = dpdk_metrics_json,
	.close = dpdk_close,
	.set_peer = dpdk_set_peer,
	.forget_peer = dpdk_forget_peer,
};

/* ---- open ------------------------------------------------------------------------ */

static int port_by_name(const char *name, uint16_t *idx, char *why, unsigned why_len)
{
	if (!name[0]) {
		*idx = 0;
		return 0;
	}
	for (uint16_t i = 0; i < proc.n_ports; i++)
		if (strcmp(proc.ports[i].name, name) == 0) {
			*idx = i;
			return 0;
		}
	snprintf(why, why_len, "dpdk: no port named %s (EAL has %u ports: %s%s%s...)", name,
		 proc.n_ports, proc.ports[0].name, proc.n_ports > 1 ? ", " : "",
		 proc.n_ports > 1 ? proc.ports[1].name : "");
	return -ENODEV;
}

static int check_opts(const struct lcr_dpdk_opts *o, char *why, unsigned why_len)
{
	if (!o->eal || !o->eal[0]) {
		snprintf(why, why_len, "dpdk: no EAL arguments ([dpdk] eal)");
		return -EINVAL;
	}
	if (o->n_lcores == 0 || o->lcore >= o->n_lcores || o->n_peers > LCR_DPDK_PEERS_MAX ||
	    (uint32_t)o->port + o->n_lcores > 65536 || o->rx_desc == 0 || o->tx_desc == 0 ||
	    o->nap_min_ns == 0 || o->nap_max_ns < o->nap_min_ns) {
		snprintf(why, why_len, "dpdk: bad options (lcore %u of %u, %u peers)", o->lcore,
			 o->n_lcores, o->n_peers);
		return -EINVAL;
	}
	if (o->dgram_max < 64 || o->dgram_max > 9000) {
		snprintf(why, why_len, "dpdk: datagrams of %u bytes (64..9000)", o->dgram_max);
		return -EINVAL;
	}
	return 0;
}

int lcr_dpdk_open(struct lcr_backend **out, const struct lcr_dpdk_opts *o, char *why,
		  unsigned why_len)
{
	int rc;

	LCR_ASSERT(out && o);
	*out = NULL;
	if ((rc = check_opts(o, why, why_len)) < 0)
		return rc;
	struct lcr_dpdk *b = lcr_allocator_aligned(&o->alloc, sizeof(*b), LCR_CACHE_LINE);
	if (!b) {
		snprintf(why, why_len, "dpdk: out of memory");
		return -ENOMEM;
	}
	b->be.ops = &dpdk_ops;
	b->o = *o;
	b->lcore = o->lcore;
	b->udp = (uint16_t)(o->port + o->lcore);
	b->nap_ns = o->nap_min_ns;
	pthread_mutex_lock(&proc.mu);
	rc = proc_up(o, why, why_len);
	for (uint32_t i = 0; rc == 0 && i < o->n_peers; i++) {
		const struct lcr_dpdk_peer *src = &o->peers[i];
		struct peer *p = &b->peers[b->n_peers];
		p->node = src->node;
		p->ip = src->ip;
		p->udp = (uint16_t)(src->port + o->lcore);
		if ((rc = port_by_name(src->eth_port, &p->port, why, why_len)) < 0)
			break;
		int e = nb_take(p->ip, p->port, src->has_mac ? src->mac : NULL);
		if (e < 0) {
			snprintf(
				why, why_len,
				"dpdk: the neighbour table is full (lcores disagree on the peers)");
			rc = -ENOSPC;
			break;
		}
		p->nb = (uint32_t)e;
		b->n_peers++;
	}
	if (rc == 0) {
		proc.opened++;
	} else {
		for (uint32_t i = 0; i < b->n_peers; i++)
			nb_put(b->peers[i].nb);
		if (proc.opened == 0 && proc.ports_up)
			proc_down();
	}
	pthread_mutex_unlock(&proc.mu);
	if (rc < 0) {
		lcr_allocator_free_aligned(&o->alloc, b);
		return rc;
	}
	*out = &b->be;
	return 0;
}
