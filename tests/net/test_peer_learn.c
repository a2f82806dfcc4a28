/* Peers learned at run time by the UDP transport (net.h set_peer, forget_peer), on loopback
 * sockets: a stranger's datagrams dropped until its address is set, then exchanged; dropped
 * again once forgotten; a changed address takes over; names, IPv6 on an IPv4 socket and a full
 * table refused; an IPv6 peer learned by a node bound to "::". With an argument, over DPDK:
 * "dpdk-memif" (memif cannot learn peers: -ENOTSUP), "dpdk-af-packet" (root: the same exchange
 * between a DPDK node on af_packet and socket nodes across a veth pair in a namespace of its
 * own). Exit 77: skipped, the reason on the last line. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "backend.h"
#include "net_host.h"
#include "net_test.h"
#include "udp.h"

#define GROUP	7
#define CLUSTER 91
#define MS	1000000ull
#define INST	6 /* transports open at once, at most */

/* One transport: node `id` at `port`, knowing `peers` at open. */
struct inst {
	uint32_t id;
	struct lcr_net *net;
	struct lcr_net_group *g;
	struct lcr_udp_config udp;
	struct lcr_net_factory f;
	struct lcr_peer_addr peers[4];
	uint32_t vote_reqs[8];	/* vote requests delivered, by sender */
	uint32_t vote_resps[8]; /* vote replies delivered, by sender */
};

static struct inst I[INST];
static uint16_t base_port;

/* Every vote request is answered at once (as the core would, without the core). */
static void h_deliver(void *group, const struct lcr_msg *m)
{
	struct inst *n = group;
	assert_true(m->from < 8);
	if (m->type == LCR_MSG_VOTE_RESP) {
		n->vote_resps[m->from]++;
		return;
	}
	assert_int_equal(m->type, LCR_MSG_VOTE_REQ);
	n->vote_reqs[m->from]++;
	struct lcr_msg r = { .type = LCR_MSG_VOTE_RESP, .from = n->id, .to = m->from };
	r.vote_resp.vote = m->vote_req.vote;
	r.vote_resp.req_vote = m->vote_req.vote;
	r.vote_resp.granted = true;
	lcr_net_send(n->g, &r, nt_now_ns());
}

static void h_failed(void *group, const struct lcr_net_call *c, uint32_t err, const char *why)
{
	(void)group, (void)c, (void)err, (void)why;
}

static void h_attach(void *group, struct lcr_msg *m)
{
	(void)group;
	m->append_req.n_entries = 0;
}

static const struct lcr_net_host host = {
	.deliver = h_deliver,
	.failed = h_failed,
	.attach = h_attach,
};

static struct lcr_peer_addr addr(uint32_t id, const char *host_, uint16_t port)
{
	struct lcr_peer_addr a = { .id = id, .port = port };
	snprintf(a.host, sizeof(a.host), "%s", host_);
	return a;
}

/*
 * Open slot `k` as node `id` bound to `bind` (or on DPDK with `dpdk`), knowing the `n`
 * addresses in `peers` (itself among them), its group's targets `targets`. Returns 0 or the
 * open's -errno with its sentence in `why`.
 */
static int try_open_inst(uint32_t k, uint32_t id, const char *bind, const struct lcr_udp_dpdk *dpdk,
			 const struct lcr_peer_addr *peers, uint32_t n, const uint32_t *targets,
			 uint32_t n_targets, char *why, size_t why_len)
{
	struct inst *x = &I[k];
	struct lcr_net_config c;

	assert_null(x->net);
	memset(x, 0, sizeof(*x));
	x->id = id;
	memcpy(x->peers, peers, n * sizeof(*peers));
	lcr_udp_config_default(&x->udp);
	x->udp.bind_host = bind;
	if (dpdk)
		x->udp.dpdk = *dpdk;
	lcr_udp_factory(&x->f, &x->udp);
	lcr_net_config_default(&c, id, 50, 150, 64, 200);
	struct lcr_net_env env = { .self = id,
				   .cluster = CLUSTER,
				   .lcore = 0,
				   .n_lcores = 1,
				   .n_peers = n,
				   .peers = x->peers };
	int rc = lcr_net_open(&x->net, &x->f, &env, &c, &host, why, why_len);
	if (rc < 0) {
		x->net = NULL;
		return rc;
	}
	rc = lcr_net_group_open(x->net, GROUP, x, targets, n_targets, &x->g, why, why_len);
	if (rc < 0)
		fail_msg("node %u: group: %s", id, why);
	return 0;
}

static struct inst *open_inst(uint32_t k, uint32_t id, const char *bind,
			      const struct lcr_peer_addr *peers, uint32_t n,
			      const uint32_t *targets, uint32_t n_targets)
{
	char why[256] = "";
	if (try_open_inst(k, id, bind, NULL, peers, n, targets, n_targets, why, sizeof(why)) < 0)
		fail_msg("node %u: %s", id, why);
	return &I[k];
}

static void close_all(void)
{
	for (uint32_t k = 0; k < INST; k++) {
		lcr_net_close(I[k].net);
		I[k].net = NULL;
	}
}

static void run_for(uint64_t ns)
{
	uint64_t end = nt_now_ns() + ns;
	while (nt_now_ns() < end) {
		uint64_t t = nt_now_ns();
		for (uint32_t k = 0; k < INST; k++) {
			if (!I[k].net)
				continue;
			lcr_net_poll(I[k].net, t);
			lcr_net_tick(I[k].net, t);
			lcr_net_flush(I[k].net, t);
		}
		usleep(200);
	}
}

/* Run until `*count` grew past `from`, at most `limit_ns`; true if it did. */
static bool run_within(const uint32_t *count, uint32_t from, uint64_t limit_ns)
{
	uint64_t end = nt_now_ns() + limit_ns;
	while (nt_now_ns() < end) {
		run_for(MS);
		if (*count > from)
			return true;
	}
	return false;
}

/* What must arrive arrives within 2 s; what must not, not within 300 ms on loopback. */
static bool run_until_more(const uint32_t *count, uint32_t from)
{
	return run_within(count, from, 2000 * MS);
}

static bool arrives_soon(const uint32_t *count, uint32_t from)
{
	return run_within(count, from, 300 * MS);
}

/* A vote request from x to node `to`. */
static void vote(struct inst *x, uint32_t to, uint64_t term)
{
	struct lcr_msg m = { .type = LCR_MSG_VOTE_REQ, .from = x->id, .to = to };
	m.vote_req.vote = (struct lcr_vote){ { term, x->id }, false };
	lcr_net_send(x->g, &m, nt_now_ns());
}

static uint64_t metric(const struct inst *x, const char *key)
{
	return nt_metric(x->net, key);
}

/* Datagrams dropped because their source address is not their sender's. */
static uint64_t strangers(const struct inst *x)
{
	return metric(x, "sender_address");
}

/*
 * Node 1 knows nodes 1 and 2 from its config; node 3 (slot 1) knows 1 and itself. Node 1's
 * group has node 3 as a target already (a member whose address is not known yet).
 */
static void test_udp_learn_forget_and_move_peer(void **state)
{
	(void)state;
	const uint16_t p1 = base_port, p2 = base_port + 1, p3a = base_port + 2, p3b = base_port + 3;
	struct lcr_peer_addr c1[] = { addr(1, "127.0.0.1", p1), addr(2, "127.0.0.1", p2) };
	struct lcr_peer_addr c3a[] = { addr(1, "127.0.0.1", p1), addr(3, "127.0.0.1", p3a) };
	const uint32_t t1[] = { 2, 3 }, t3[] = { 1 };
	struct inst *n1 = open_inst(0, 1, "127.0.0.1", c1, 2, t1, 2);
	struct inst *n3 = open_inst(1, 3, "127.0.0.1", c3a, 2, t3, 1);
	char why[256] = "";
	uint64_t term = 1;

	/* A stranger: node 3's requests are dropped, counted, and node 1 cannot reach it. */
	uint64_t s0 = strangers(n1);
	vote(n3, 1, term++);
	assert_false(arrives_soon(&n1->vote_reqs[3], 0));
	assert_true(strangers(n1) > s0);
	uint64_t e0 = metric(n1, "tx_errors");
	vote(n1, 3, term++);
	run_for(100 * MS);
	assert_int_equal(n3->vote_reqs[1], 0);
	assert_true(metric(n1, "tx_errors") > e0);

	/* Learned: both ways. */
	struct lcr_peer_addr a3 = addr(3, "127.0.0.1", p3a);
	assert_int_equal(lcr_net_set_peer(n1->net, &a3, why, sizeof(why)), 0);
	s0 = strangers(n1);
	vote(n3, 1, term++);
	assert_true(run_until_more(&n1->vote_reqs[3], 0));
	assert_true(run_until_more(&n3->vote_resps[1], 0));
	vote(n1, 3, term++);
	assert_true(run_until_more(&n3->vote_reqs[1], 0));
	assert_true(run_until_more(&n1->vote_resps[3], 0));
	assert_int_equal(strangers(n1), s0);
	/* Setting the same address again changes nothing. */
	assert_int_equal(lcr_net_set_peer(n1->net, &a3, why, sizeof(why)), 0);
	uint32_t r = n1->vote_reqs[3];
	vote(n3, 1, term++);
	assert_true(run_until_more(&n1->vote_reqs[3], r));

	/* Forgotten: a stranger again, both ways; forgetting twice is no error. */
	assert_int_equal(lcr_net_forget_peer(n1->net, 3), 0);
	assert_int_equal(lcr_net_forget_peer(n1->net, 3), 0);
	s0 = strangers(n1);
	r = n1->vote_reqs[3];
	vote(n3, 1, term++);
	assert_false(arrives_soon(&n1->vote_reqs[3], r));
	assert_true(strangers(n1) > s0);
	uint32_t q = n3->vote_reqs[1];
	vote(n1, 3, term++);
	run_for(100 * MS);
	assert_int_equal(n3->vote_reqs[1], q);

	/* Node 3 replaced at a new address (slot 2): once node 1 has it, the old
	 * address is a stranger's and the new one speaks for node 3. */
	struct lcr_peer_addr c3b[] = { addr(1, "127.0.0.1", p1), addr(3, "127.0.0.1", p3b) };
	struct inst *m3 = open_inst(2, 3, "127.0.0.1", c3b, 2, t3, 1);
	assert_int_equal(lcr_net_set_peer(n1->net, &a3, why, sizeof(why)), 0);
	struct lcr_peer_addr b3 = addr(3, "127.0.0.1", p3b);
	assert_int_equal(lcr_net_set_peer(n1->net, &b3, why, sizeof(why)), 0);
	s0 = strangers(n1);
	r = n1->vote_reqs[3];
	vote(n3, 1, term++);
	assert_false(arrives_soon(&n1->vote_reqs[3], r));
	assert_true(strangers(n1) > s0);
	vote(m3, 1, term++);
	assert_true(run_until_more(&n1->vote_reqs[3], r));
	assert_true(run_until_more(&m3->vote_resps[1], 0));
	q = n3->vote_reqs[1];
	vote(n1, 3, term++);
	assert_true(run_until_more(&m3->vote_reqs[1], 0));
	assert_int_equal(n3->vote_reqs[1], q);

	/* Node 5 takes node 3's address (a new node where a replaced one was):
	 * that address now speaks for node 5, not for node 3. */
	struct lcr_peer_addr a5 = addr(5, "127.0.0.1", p3b);
	assert_int_equal(lcr_net_set_peer(n1->net, &a5, why, sizeof(why)), 0);
	s0 = strangers(n1);
	r = n1->vote_reqs[3];
	vote(m3, 1, term++);
	assert_false(arrives_soon(&n1->vote_reqs[3], r));
	assert_true(strangers(n1) > s0);
	close_all();
}

static void test_udp_set_peer_refusals(void **state)
{
	(void)state;
	struct lcr_peer_addr c1[] = { addr(1, "127.0.0.1", base_port),
				      addr(2, "127.0.0.1", (uint16_t)(base_port + 1)) };
	const uint32_t t1[] = { 2 };
	struct inst *n1 = open_inst(0, 1, "127.0.0.1", c1, 2, t1, 1);
	char why[512] = "";
	struct lcr_peer_addr a;

	/* A name would need DNS on the lcore. */
	a = addr(3, "localhost", 7001);
	assert_int_equal(lcr_net_set_peer(n1->net, &a, why, sizeof(why)), -EINVAL);
	print_message("name: %s\n", why);
	assert_non_null(strstr(why, "not an IPv4 or IPv6 address"));
	/* IPv6 on an lcore whose socket is IPv4 and whose datagrams are sized for it. */
	a = addr(3, "::1", 7001);
	assert_int_equal(lcr_net_set_peer(n1->net, &a, why, sizeof(why)), -EINVAL);
	print_message("ipv6: %s\n", why);
	assert_non_null(strstr(why, "IPv6"));
	/* Checked by net.c for every transport. */
	a = addr(1, "127.0.0.1", 7001);
	assert_int_equal(lcr_net_set_peer(n1->net, &a, why, sizeof(why)), -EINVAL);
	a = addr(0, "127.0.0.1", 7001);
	assert_int_equal(lcr_net_set_peer(n1->net, &a, why, sizeof(why)), -EINVAL);
	a = addr(3, "127.0.0.1", 0);
	assert_int_equal(lcr_net_set_peer(n1->net, &a, why, sizeof(why)), -EINVAL);
	a = addr(3, "", 7001);
	assert_int_equal(lcr_net_set_peer(n1->net, &a, why, sizeof(why)), -EINVAL);
	assert_int_equal(lcr_net_forget_peer(n1->net, 1), -EINVAL);
	assert_int_equal(lcr_net_forget_peer(n1->net, 0), -EINVAL);
	assert_true(lcr_net_can_learn_peers(n1->net));

	/* The table is bounded: node 2 is in it, the rest fit, then a clear error. */
	uint32_t ok = 0;
	int rc = 0;
	for (uint32_t id = 10; id < 10 + 2 * LCR_SOCK_PEERS_MAX; id++) {
		a = addr(id, "127.0.0.1", (uint16_t)(40000 + id));
		rc = lcr_net_set_peer(n1->net, &a, why, sizeof(why));
		if (rc < 0)
			break;
		ok++;
	}
	print_message("full: %s\n", why);
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(ok, LCR_SOCK_PEERS_MAX - 1);
	assert_non_null(strstr(why, "most"));
	/* Moving a known node needs no room; forgetting one makes room. */
	a = addr(10, "127.0.0.1", 39999);
	assert_int_equal(lcr_net_set_peer(n1->net, &a, why, sizeof(why)), 0);
	assert_int_equal(lcr_net_forget_peer(n1->net, 11), 0);
	a = addr(500, "127.0.0.1", 39998);
	assert_int_equal(lcr_net_set_peer(n1->net, &a, why, sizeof(why)), 0);
	close_all();
}

/* An IPv6 socket test needs ::1 (a kernel with IPv6 on loopback). */
static bool have_ipv6_loopback(void)
{
	int fd = socket(AF_INET6, SOCK_DGRAM, 0);
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Node 1 bound to "::" with IPv4 peers learns node 4 at ::1: its datagrams left room for
 * IPv6 headers from the start, so the exchange works. */
static void test_udp_ipv6_peer_on_ipv6_socket(void **state)
{
	(void)state;
	if (!have_ipv6_loopback()) {
		print_message("skipped: no IPv6 on loopback (::1 cannot be bound)\n");
		skip();
	}
	const uint16_t p1 = base_port, p4 = (uint16_t)(base_port + 4);
	struct lcr_peer_addr c1[] = { addr(1, "127.0.0.1", p1),
				      addr(2, "127.0.0.1", (uint16_t)(base_port + 1)) };
	struct lcr_peer_addr c4[] = { addr(1, "::1", p1), addr(4, "::1", p4) };
	const uint32_t t1[] = { 2, 4 }, t4[] = { 1 };
	struct inst *n1 = open_inst(0, 1, "::", c1, 2, t1, 2);
	struct inst *n4 = open_inst(1, 4, "::1", c4, 2, t4, 1);
	char why[256] = "";

	vote(n4, 1, 1);
	assert_false(arrives_soon(&n1->vote_reqs[4], 0));
	struct lcr_peer_addr a4 = addr(4, "::1", p4);
	if (lcr_net_set_peer(n1->net, &a4, why, sizeof(why)) < 0)
		fail_msg("set_peer: %s", why);
	vote(n4, 1, 2);
	assert_true(run_until_more(&n1->vote_reqs[4], 0));
	assert_true(run_until_more(&n4->vote_resps[1], 0));
	vote(n1, 4, 3);
	assert_true(run_until_more(&n4->vote_reqs[1], 0));
	assert_true(run_until_more(&n1->vote_resps[4], 0));
	close_all();
}

/* ---- over DPDK ------------------------------------------------------------------- */

#define EAL_BASE "-l 0 --no-huge -m 256 --no-pci --no-shconf --log-level=3"

static char skip_reason[512]; /* set: the DPDK test was skipped, and why */

/* An open that failed for want of DPDK in this build skips; any other failure fails. */
static bool open_or_skip(int rc, const char *why)
{
	if (rc == -ENOTSUP && strstr(why, "no DPDK")) {
		snprintf(skip_reason, sizeof(skip_reason), "skipped: %s", why);
		return false;
	}
	if (rc < 0)
		fail_msg("DPDK node: %s", why);
	return true;
}

/* memif makes a port per peer when EAL comes up: no peer can be learned later. */
static void test_dpdk_memif_cannot_learn(void **state)
{
	(void)state;
	static char dir[] = "/tmp/lcr-peer-memif-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct lcr_udp_dpdk d = { .enable = true, .eal = EAL_BASE, .memif_dir = dir };
	struct lcr_peer_addr c1[] = { addr(1, "127.0.0.1", base_port),
				      addr(2, "127.0.0.1", (uint16_t)(base_port + 1)) };
	const uint32_t t1[] = { 2 };
	char why[512] = "";

	int rc = try_open_inst(0, 1, NULL, &d, c1, 2, t1, 1, why, sizeof(why));
	if (!open_or_skip(rc, why))
		return;
	struct lcr_peer_addr a = addr(3, "127.0.0.1", (uint16_t)(base_port + 2));
	assert_int_equal(lcr_net_set_peer(I[0].net, &a, why, sizeof(why)), -ENOTSUP);
	print_message("memif: %s\n", why);
	assert_non_null(strstr(why, "memif"));
	assert_non_null(strstr(why, "node 3"));
	/* A configured peer cannot move either; forgetting one is allowed. */
	a = addr(2, "127.0.0.1", (uint16_t)(base_port + 5));
	assert_int_equal(lcr_net_set_peer(I[0].net, &a, why, sizeof(why)), -ENOTSUP);
	assert_int_equal(lcr_net_forget_peer(I[0].net, 2), 0);
	close_all();
	char path[600];
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		print_message("could not remove %s\n", dir);
}

#define VETH_DPDK "lcrpA" /* DPDK's end (af_packet), no address */
#define VETH_HOST "lcrpB" /* the kernel's end: the socket nodes' addresses */
#define IP_DPDK	  "10.77.0.1"
#define IP_HOST	  "10.77.0.2"
#define IP_HOST2  "10.77.0.3"

/* A network namespace of this process's own, a veth pair in it; false (skip) if not root. */
static bool veth_up(void)
{
	if (geteuid() != 0) {
		snprintf(skip_reason, sizeof(skip_reason),
			 "skipped: needs root (a network namespace and a veth pair for af_packet)");
		return false;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		snprintf(skip_reason, sizeof(skip_reason),
			 "skipped: no network namespace of our own (unshare: %s)", strerror(errno));
		return false;
	}
	if (system("ip link set lo up && ip link add " VETH_DPDK " type veth peer name " VETH_HOST
		   " && ip link set " VETH_DPDK " up && ip addr add " IP_HOST "/24 dev " VETH_HOST
		   " && ip addr add " IP_HOST2 "/24 dev " VETH_HOST " && ip link set " VETH_HOST
		   " up") != 0) {
		snprintf(skip_reason, sizeof(skip_reason),
			 "skipped: could not make a veth pair with ip(8) in the new namespace");
		return false;
	}
	/* A kernel socket on a veth leaves the UDP checksum to the "hardware", and af_packet
	 * hands the frame up unfinished: with tx checksumming off the kernel finishes it. */
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct ethtool_value ev = { .cmd = ETHTOOL_STXCSUM, .data = 0 };
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", VETH_HOST);
	ifr.ifr_data = (void *)&ev;
	if (fd < 0 || ioctl(fd, SIOCETHTOOL, &ifr) < 0)
		fail_msg("%s: cannot turn tx checksumming off: %s", VETH_HOST, strerror(errno));
	close(fd);
	return true;
}

/*
 * Node 1 on DPDK (af_packet on one end of a veth) knows node 2 only; node 3 is a kernel
 * socket behind the other end. The same story as on loopback: a stranger, learned (ARP finds
 * its MAC), forgotten, moved to a new port, then to another IPv4 address; IPv6, names and
 * a route to a port EAL does not have refused.
 */
static void test_dpdk_af_packet_learn_forget_and_move(void **state)
{
	(void)state;
	if (!veth_up())
		return;
	const uint16_t p = base_port;
	struct lcr_udp_dpdk d = { .enable = true,
				  .eal = EAL_BASE " --vdev=net_af_packet0,iface=" VETH_DPDK,
				  .routes = "9=net_nowhere" };
	struct lcr_peer_addr c1[] = { addr(1, IP_DPDK, p), addr(2, IP_HOST, (uint16_t)(p + 1)) };
	struct lcr_peer_addr c3[] = { addr(1, IP_DPDK, p), addr(3, IP_HOST, (uint16_t)(p + 2)) };
	struct lcr_peer_addr c3b[] = { addr(1, IP_DPDK, p), addr(3, IP_HOST, (uint16_t)(p + 3)) };
	struct lcr_peer_addr c3c[] = { addr(1, IP_DPDK, p), addr(3, IP_HOST2, (uint16_t)(p + 4)) };
	const uint32_t t1[] = { 2, 3 }, t3[] = { 1 };
	char why[512] = "";
	uint64_t term = 1;

	int rc = try_open_inst(0, 1, NULL, &d, c1, 2, t1, 2, why, sizeof(why));
	if (!open_or_skip(rc, why))
		return;
	struct inst *n1 = &I[0];
	struct inst *n3 = open_inst(1, 3, IP_HOST, c3, 2, t3, 1);

	uint64_t s0 = strangers(n1);
	vote(n3, 1, term++);
	assert_false(arrives_soon(&n1->vote_reqs[3], 0));
	assert_true(strangers(n1) > s0);

	struct lcr_peer_addr a3 = addr(3, IP_HOST, (uint16_t)(p + 2));
	if (lcr_net_set_peer(n1->net, &a3, why, sizeof(why)) < 0)
		fail_msg("set_peer: %s", why);
	vote(n3, 1, term++);
	assert_true(run_until_more(&n1->vote_reqs[3], 0));
	assert_true(run_until_more(&n3->vote_resps[1], 0));
	vote(n1, 3, term++);
	assert_true(run_until_more(&n3->vote_reqs[1], 0));
	assert_true(run_until_more(&n1->vote_resps[3], 0));

	assert_int_equal(lcr_net_forget_peer(n1->net, 3), 0);
	s0 = strangers(n1);
	uint32_t r = n1->vote_reqs[3];
	vote(n3, 1, term++);
	assert_false(arrives_soon(&n1->vote_reqs[3], r));
	assert_true(strangers(n1) > s0);

	/* Moved to another port of the same host, then to another address (a neighbour
	 * entry of its own, its MAC found by ARP). */
	struct inst *m3 = open_inst(2, 3, IP_HOST, c3b, 2, t3, 1);
	struct lcr_peer_addr b3 = addr(3, IP_HOST, (uint16_t)(p + 3));
	assert_int_equal(lcr_net_set_peer(n1->net, &b3, why, sizeof(why)), 0);
	r = n1->vote_reqs[3];
	vote(m3, 1, term++);
	assert_true(run_until_more(&n1->vote_reqs[3], r));
	assert_true(run_until_more(&m3->vote_resps[1], 0));
	struct inst *o3 = open_inst(3, 3, IP_HOST2, c3c, 2, t3, 1);
	struct lcr_peer_addr c3addr = addr(3, IP_HOST2, (uint16_t)(p + 4));
	assert_int_equal(lcr_net_set_peer(n1->net, &c3addr, why, sizeof(why)), 0);
	s0 = strangers(n1);
	r = n1->vote_reqs[3];
	vote(m3, 1, term++);
	assert_false(arrives_soon(&n1->vote_reqs[3], r));
	assert_true(strangers(n1) > s0);
	vote(o3, 1, term++);
	assert_true(run_until_more(&n1->vote_reqs[3], r));
	assert_true(run_until_more(&o3->vote_resps[1], 0));
	vote(n1, 3, term++);
	assert_true(run_until_more(&o3->vote_reqs[1], 0));

	/* Refused: IPv6 (the DPDK path is IPv4), a name, a route to no port. */
	struct lcr_peer_addr a = addr(4, "::1", 7001);
	assert_int_equal(lcr_net_set_peer(n1->net, &a, why, sizeof(why)), -EINVAL);
	print_message("ipv6: %s\n", why);
	assert_non_null(strstr(why, "IPv4"));
	a = addr(4, "localhost", 7001);
	assert_int_equal(lcr_net_set_peer(n1->net, &a, why, sizeof(why)), -EINVAL);
	a = addr(9, "10.77.0.9", 7001);
	assert_int_equal(lcr_net_set_peer(n1->net, &a, why, sizeof(why)), -ENODEV);
	print_message("route: %s\n", why);
	assert_non_null(strstr(why, "net_nowhere"));
	close_all();
}

int main(int argc, char **argv)
{
	base_port = (uint16_t)(21000 + (getpid() % 4000) * 8);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_udp_learn_forget_and_move_peer),
		cmocka_unit_test(test_udp_set_peer_refusals),
		cmocka_unit_test(test_udp_ipv6_peer_on_ipv6_socket),
	};
	const struct CMUnitTest memif[] = {
		cmocka_unit_test(test_dpdk_memif_cannot_learn),
	};
	const struct CMUnitTest af_packet[] = {
		cmocka_unit_test(test_dpdk_af_packet_learn_forget_and_move),
	};
	int rc;

	/* EAL comes up once per process: one DPDK test per run. */
	if (argc < 2)
		return cmocka_run_group_tests(tests, NULL, NULL);
	if (strcmp(argv[1], "dpdk-memif") == 0)
		rc = cmocka_run_group_tests(memif, NULL, NULL);
	else if (strcmp(argv[1], "dpdk-af-packet") == 0)
		rc = cmocka_run_group_tests(af_packet, NULL, NULL);
	else {
		fprintf(stderr, "usage: %s [dpdk-memif | dpdk-af-packet]\n", argv[0]);
		return 2;
	}
	if (rc == 0 && skip_reason[0]) {
		printf("%s\n", skip_reason);
		return 77;
	}
	return rc;
}
