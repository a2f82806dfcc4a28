/* SPDX-License-Identifier: MIT */
/*
 * lcraft-bench --mode dpdk-memif: socket mode's run (mode_socket.c: replicas
 * as processes, replica 1 leading and running the load on its lcores) with
 * the Raft datagrams on DPDK memif ports instead of kernel sockets. What is
 * DPDK's lives here: each replica's node config, and the bare floor every
 * run measures before its nodes open.
 *
 * --mode dpdk-afpacket and dpdk-afxdp are the same on kernel veths (root):
 * the bench makes a bridge and one veth pair per replica
 * (lcr_bench_veth_make), the replica's DPDK port an af_packet or af_xdp port
 * on its end (a queue pair per lcore), the other end in the bridge; replica
 * i is 198.18.0.i (RFC 2544's benchmark range), and the frames cross the
 * kernel: veth, bridge, veth, each way (af_xdp: in copy mode, the XDP
 * program on the veth handing frames to the socket).
 *
 * The floor: replicas 1 and 2 bring DPDK up through the backend their nodes
 * will use (lcr_dpdk_open), with exactly the EAL arguments the node makes
 * (lcr_dpdk_memif_eal: the base arguments plus a memif port to every peer),
 * the same lcores and datagram size, and echo 64-byte datagrams through it
 * (dpdk_echo.c), no Raft: back to back with both polling (the bare round
 * trip), 64 in flight (the packet rate), then, unless --busy-poll, 1 ms apart
 * with replica 2 napping as an idle lcore does (what a sleeping follower
 * costs). Then both close the backend (EAL stays up; the ports are set up
 * again when the node opens them) and the replicas open their nodes.
 * Replica 3 onwards waits meanwhile, DPDK not yet up.
 *
 * EAL comes up once per process with one set of arguments, and replica 1 is
 * this process for every run of a sweep: the memif sockets' directory (its
 * name is part of those arguments) is one per invocation (bench.c makes it),
 * not one per run. DPDK 22.11 puts memif sockets in the abstract namespace:
 * the directory only names them.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "dpdk.h"
#include "lcr_assert.h"
#include "lcraft.h"

#define FLOOR_SIZE	   64	 /* bytes per echoed datagram */
#define FLOOR_WARM	   1000	 /* round trips before the measured ones */
#define FLOOR_RTTS	   20000 /* measured, back to back */
#define FLOOR_NAP_RTTS	   300	 /* measured, 1 ms apart, replica 2 napping */
#define FLOOR_NAP_GAP_US   1000
#define FLOOR_RATE_S	   0.5
#define FLOOR_SERVE_MAX_S  60.0	       /* replica 2 stops serving by itself after this */
#define FLOOR_MTU	   1500	       /* the node's default mtu: its datagrams are 1500 - 28 */
#define FLOOR_PORT_SPACING 10	       /* mode_socket.c: replica i's port is base + 10 * (i - 1) */
#define VETH_NET	   0xc6120000u /* 198.18.0.0: replica i is 198.18.0.i */
#define REPLICAS_MAX	   5

bool lcr_bench_dpdk_built(void)
{
	return LCR_BENCH_DPDK; /* meson: 1 where it found libdpdk */
}

static bool veth_mode(const struct lcr_bench_opts *o)
{
	return o->mode == LCR_BENCH_DPDK_AFPACKET || o->mode == LCR_BENCH_DPDK_AFXDP;
}

/* Replica `id`'s IPv4 address, host order. */
static uint32_t replica_ip(const struct lcr_bench_opts *o, uint32_t id)
{
	return veth_mode(o) ? VETH_NET + id : INADDR_LOOPBACK; /* socket mode's: 127.0.0.1 */
}

/*
 * Replica `id`'s EAL arguments, exactly as its node brings EAL up: memif, the
 * base arguments and a memif port to every other replica (the node makes
 * them itself from memif_dir: lcr_dpdk_memif_eal); af_packet and af_xdp, the
 * base arguments and one port on its veth, a queue pair per lcore. NULL if
 * too long. The string lives as long as the process.
 */
static const char *replica_eal(const struct lcr_bench_opts *o, uint32_t id)
{
	static char eal[REPLICAS_MAX + 1][4096];
	uint32_t nodes[REPLICAS_MAX];
	int n;

	LCR_ASSERT(id >= 1 && id <= o->replicas && o->replicas <= REPLICAS_MAX);
	for (uint32_t i = 0; i < o->replicas; i++)
		nodes[i] = i + 1;
	if (veth_mode(o))
		n = snprintf(eal[id], sizeof(eal[id]),
			     "%s --vdev=net_af_packet0,iface=%sv%u,qpairs=%u", o->eal, o->veth, id,
			     o->lcores);
	else
		n = lcr_dpdk_memif_eal(eal[id], sizeof(eal[id]), o->eal, o->memif_dir, id, nodes,
				       o->replicas);
	return n >= 0 && (size_t)n < sizeof(eal[id]) ? eal[id] : NULL;
}

void lcr_bench_dpdk_config(const struct lcr_bench_opts *o, uint32_t id, struct lcr_node_config *c)
{
	LCR_ASSERT(o->mode == LCR_BENCH_DPDK_MEMIF || veth_mode(o));
	c->dpdk.enable = true;
	if (!veth_mode(o)) {
		c->dpdk.eal = o->eal;
		c->dpdk.memif_dir = o->memif_dir;
		return;
	}
	/* One port, every peer through it (no routes); the node checks the
	 * arguments' length itself, so a NULL here is refused there. */
	c->dpdk.eal = replica_eal(o, id);
	for (uint32_t i = 0; i < c->n_peers; i++) {
		struct in_addr a = { htonl(replica_ip(o, c->peers[i].id)) };
		inet_ntop(AF_INET, &a, c->peers[i].host, sizeof(c->peers[i].host));
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Replica `id`'s backend as its node's UDP transport opens it on lcore 0
 * (udp.c, open_dpdk): the EAL arguments with the memif ports, every other
 * replica a peer reached through its own memif port, the node's lcores,
 * datagram size and descriptors.
 */
static int floor_open(const struct lcr_bench_opts *o, uint32_t id, struct lcr_backend **be,
		      char *why, size_t why_len)
{
	struct lcr_dpdk_opts d;

	lcr_dpdk_opts_default(&d);
	d.eal = replica_eal(o, id);
	if (!d.eal) {
		snprintf(why, why_len, "dpdk floor: replica %u's EAL arguments are too long", id);
		return -ENAMETOOLONG;
	}
	d.lcore = 0;
	d.n_lcores = o->lcores;
	d.ip = replica_ip(o, id);
	d.port = (uint16_t)(o->port_base + FLOOR_PORT_SPACING * (id - 1));
	d.dgram_max = FLOOR_MTU - 28;
	d.busy_poll = o->busy_poll;
	for (uint32_t p = 1; p <= o->replicas; p++) {
		if (p == id)
			continue;
		struct lcr_dpdk_peer *q = &d.peers[d.n_peers++];
		q->node = p;
		q->ip = replica_ip(o, p);
		q->port = (uint16_t)(o->port_base + FLOOR_PORT_SPACING * (p - 1));
		if (!veth_mode(o)) /* memif: a port per peer; af_packet: the one port */
			snprintf(q->eth_port, sizeof(q->eth_port), "net_memif%u", p);
	}
	return lcr_dpdk_open(be, &d, why, (unsigned)why_len);
}

static double pct_us(const struct lcr_hist *h, double p)
{
	return (double)lcr_hist_pct(h, p) / 1e3;
}

/* Replica 1's side, its backend open and replica 2 serving. */
static int floor_measure(const struct lcr_bench_opts *o, struct lcr_backend *be, int cmd2,
			 struct lcr_bench_dpdk_floor *f, char *why, size_t why_len)
{
	static uint8_t buf[FLOOR_SIZE];
	static struct lcr_hist h, hn;

	if (lcr_bench_echo_first(be, 2, buf, FLOOR_SIZE) < 0) {
		snprintf(why, why_len, "dpdk floor: replica 2 did not echo within 5 s (%s %s)",
			 veth_mode(o) ? "veths" : "memif directory",
			 veth_mode(o) ? o->veth : o->memif_dir);
		return -ETIMEDOUT;
	}
	memset(&h, 0, sizeof(h));
	memset(&hn, 0, sizeof(hn));
	for (uint64_t i = 0; i < FLOOR_WARM + FLOOR_RTTS; i++) {
		uint64_t t = lcr_bench_echo_round_trip(be, 2, buf, FLOOR_SIZE, i + 2);
		if (t == 0)
			f->lost++;
		else if (i >= FLOOR_WARM)
			lcr_hist_add(&h, t);
	}
	f->pps = lcr_bench_echo_rate(be, 2, buf, FLOOR_SIZE, FLOOR_RATE_S);
	if (!o->busy_poll) {
		if (write(cmd2, "n", 1) != 1)
			return -EIO;
		for (uint64_t i = 0; i < FLOOR_NAP_RTTS; i++) {
			usleep(FLOOR_NAP_GAP_US);
			uint64_t t = lcr_bench_echo_round_trip(be, 2, buf, FLOOR_SIZE,
							       FLOOR_WARM + FLOOR_RTTS + 2 + i);
			if (t == 0)
				f->lost++;
			else
				lcr_hist_add(&hn, t);
		}
		f->nap = hn.count > 0;
		f->rtt_nap_p50_us = pct_us(&hn, 0.5);
		f->rtt_nap_p99_us = pct_us(&hn, 0.99);
	}
	if (h.count == 0) {
		snprintf(why, why_len, "dpdk floor: every round trip to replica 2 was lost");
		return -EIO;
	}
	f->rtt_p50_us = pct_us(&h, 0.5);
	f->rtt_p99_us = pct_us(&h, 0.99);
	f->measured = true;
	return 0;
}

/* Replica 1's backend on lcore 0: opened by its first run, never closed. */
static struct lcr_backend *held;

int lcr_bench_dpdk_hold(const struct lcr_bench_opts *o, char *why, size_t why_len)
{
	return held ? 0 : floor_open(o, 1, &held, why, why_len);
}

int lcr_bench_dpdk_floor(const struct lcr_bench_opts *o, int cmd2, FILE *report2,
			 struct lcr_bench_result *r, char *why, size_t why_len)
{
	char line[600];
	int rc;

	LCR_ASSERT(o->replicas >= 2);
	memset(&r->dpdk, 0, sizeof(r->dpdk));
	/* Replica 1 serves the memif socket it shares with replica 2: up first,
	 * so that replica 2's client port connects when it starts. */
	if ((rc = lcr_bench_dpdk_hold(o, why, why_len)) < 0)
		return rc;
	if (write(cmd2, "e", 1) != 1) {
		snprintf(why, why_len, "dpdk floor: replica 2 is gone");
		return -EIO;
	}
	uint64_t t0 = now_ns();
	rc = floor_measure(o, held, cmd2, &r->dpdk, why, why_len);
	/* Replica 2 stops serving and answers once its backend is closed (or
	 * says why it never opened). */
	if (write(cmd2, "q", 1) != 1 || !fgets(line, sizeof(line), report2)) {
		if (rc == 0)
			snprintf(why, why_len, "dpdk floor: replica 2 stopped answering");
		return rc < 0 ? rc : -EIO;
	}
	line[strcspn(line, "\n")] = 0;
	if (strcmp(line, "ok") != 0) {
		snprintf(why, why_len, "replica 2: %s", line);
		return -EIO;
	}
	if (rc == 0 && !o->quiet)
		fprintf(stderr,
			"lcraft-bench: bare %s between replicas 1 and 2 (%.1f s): round trip "
			"p50 %.2f us p99 %.2f us, %.2f M datagrams/s%s\n",
			veth_mode(o) ? "af_packet" : "memif", (double)(now_ns() - t0) / 1e9,
			r->dpdk.rtt_p50_us, r->dpdk.rtt_p99_us, r->dpdk.pps / 1e6,
			r->dpdk.nap ? "" : " (no nap figure: busy poll)");
	return rc;
}

int lcr_bench_dpdk_floor_serve(const struct lcr_bench_opts *o, uint32_t id, int cmd, int report,
			       char *why, size_t why_len)
{
	for (;;) {
		char c;
		if (read(cmd, &c, 1) != 1 || c == 'q')
			return -ECANCELED; /* replica 1 gave up before the nodes */
		if (c == 'g')
			return 0;
		if (c != 'e')
			continue;
		struct lcr_backend *be;
		int rc = floor_open(o, id, &be, why, why_len);
		if (rc < 0) {
			dprintf(report, "%s\n", why);
			return rc;
		}
		lcr_bench_echo_serve(be, 1, FLOOR_SERVE_MAX_S, cmd, (uint64_t)o->spin_us * 1000);
		be->ops->close(be);
		if (dprintf(report, "ok\n") < 0)
			return -EIO;
	}
}

/* ---- the veths of dpdk-afpacket and dpdk-afxdp ---------------------------------------- */

static char veth_prefix[16];
static uint32_t veth_pairs;

static int sh(const char *cmd)
{
	int rc = system(cmd);
	return rc == 0 ? 0 : -EIO;
}

/* Never let the kernel answer or route what it sees on an interface. */
static void veth_quiet(const char *ifname)
{
	static const char *const knobs[] = { "ipv6/conf/%s/disable_ipv6", "ipv4/conf/%s/forwarding",
					     "ipv4/conf/%s/accept_redirects" };
	static const char *const values[] = { "1", "0", "0" };
	for (size_t k = 0; k < sizeof(knobs) / sizeof(knobs[0]); k++) {
		char path[128], knob[96];
		snprintf(knob, sizeof(knob), knobs[k], ifname);
		snprintf(path, sizeof(path), "/proc/sys/net/%s", knob);
		FILE *f = fopen(path, "w");
		if (f) {
			fputs(values[k], f);
			fclose(f);
		}
	}
}

void lcr_bench_veth_remove(void)
{
	char cmd[128];
	for (uint32_t i = 1; i <= veth_pairs; i++) {
		snprintf(cmd, sizeof(cmd), "ip link del %sv%u 2>/dev/null", veth_prefix, i);
		(void)sh(cmd);
	}
	if (veth_prefix[0]) {
		snprintf(cmd, sizeof(cmd), "ip link del %s 2>/dev/null", veth_prefix);
		(void)sh(cmd);
	}
	veth_pairs = 0;
	veth_prefix[0] = 0;
}

int lcr_bench_veth_make(struct lcr_bench_opts *o, char *why, size_t why_len)
{
	char cmd[512];

	if (geteuid() != 0) {
		snprintf(why, why_len,
			 "the veth modes make veth pairs and a bridge (and open raw or XDP "
			 "sockets): run as root");
		return -EPERM;
	}
	if (sh("ip -V >/dev/null 2>&1") < 0) {
		snprintf(why, why_len, "the veth modes need ip (iproute2) to make veths");
		return -ENOENT;
	}
	snprintf(veth_prefix, sizeof(veth_prefix), "lcb%u", (unsigned)getpid() % 10000000u);
	snprintf(cmd, sizeof(cmd), "ip link add %s type bridge", veth_prefix);
	if (sh(cmd) < 0) {
		snprintf(why, why_len, "cannot make the bridge %s (%s)", veth_prefix, cmd);
		veth_prefix[0] = 0;
		return -EIO;
	}
	veth_quiet(veth_prefix);
	snprintf(cmd, sizeof(cmd), "ip link set %s up", veth_prefix);
	if (sh(cmd) < 0) {
		snprintf(why, why_len, "cannot bring the bridge %s up (%s)", veth_prefix, cmd);
		lcr_bench_veth_remove();
		return -EIO;
	}
	for (uint32_t i = 1; i <= o->replicas; i++) {
		char a[24], b[24];
		snprintf(a, sizeof(a), "%sv%u", veth_prefix, i); /* the replica's, DPDK's */
		snprintf(b, sizeof(b), "%sp%u", veth_prefix, i); /* the bridge's */
		/* A queue pair per lcore on both ends (af_xdp binds to queues). */
		snprintf(cmd, sizeof(cmd),
			 "ip link add %s numtxqueues %u numrxqueues %u type veth peer name %s "
			 "numtxqueues %u numrxqueues %u",
			 a, o->lcores, o->lcores, b, o->lcores, o->lcores);
		if (sh(cmd) < 0) {
			snprintf(why, why_len, "cannot make the veth pair %s (%s)", a, cmd);
			lcr_bench_veth_remove();
			return -EIO;
		}
		veth_pairs = i;
		veth_quiet(a);
		veth_quiet(b);
		snprintf(cmd, sizeof(cmd),
			 "ip link set %s master %s && ip link set %s up && ip link set %s up", b,
			 veth_prefix, b, a);
		if (sh(cmd) < 0) {
			snprintf(why, why_len, "cannot join %s to the bridge %s (%s)", b,
				 veth_prefix, cmd);
			lcr_bench_veth_remove();
			return -EIO;
		}
	}
	o->veth = veth_prefix;
	return 0;
}
