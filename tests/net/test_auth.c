/* SPDX-License-Identifier: MIT */
/*
 * Authenticated datagrams in the UDP transport (dpdk-net/udp.c with auth.c) on loopback
 * sockets, nodes 1 and 2 talking through a relay that sees, keeps, changes and sends again what
 * they say (a stranger on the path who can spoof their addresses): votes and AppendEntries
 * flow, every datagram within the budget of the mtu; a captured vote, vote reply and
 * AppendEntries sent again are dropped as `replayed`, a changed bit as `bad_mac`; a datagram of
 * a node's earlier start as `old_boot` once it restarted (and a start reusing a boot is refused);
 * a node with another key, and one without a key, get nothing through either way. Then the cost:
 * ns of CPU per datagram with and without a key, 16 KiB AppendEntries over GSO/GRO sockets, for
 * both algorithms (LCR_AUTH_BENCH_MB: how much, default 32).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "net_host.h"
#include "net_test.h"
#include "udp.h"
#include "wire.h"

#define GROUP	7
#define CLUSTER 93
#define MS	1000000ull
#define INST	6
#define ENTRY	4000 /* bytes per entry of the AppendEntries through the relay */

static const uint8_t KEY[LCR_AUTH_KEY_BYTES] = "lcraft test cluster key, 32 byte";
static const uint8_t EVIL[LCR_AUTH_KEY_BYTES] = "not the cluster key, but 32 byte";

struct inst {
	uint32_t id;
	struct lcr_net *net;
	struct lcr_net_group *g;
	struct lcr_udp_config udp;
	struct lcr_net_factory f;
	struct lcr_peer_addr peers[4];
	uint32_t vote_reqs[8];	  /* vote requests delivered, by sender */
	uint32_t vote_resps[8];	  /* vote replies delivered, by sender */
	uint32_t appends[8];	  /* AppendEntries delivered, by sender */
	uint64_t append_bytes[8]; /* their entries' bytes */
	uint32_t entry_len;	  /* bytes of each entry it attaches */
};

static struct inst I[INST];
static uint16_t base_port;
static uint32_t ALG; /* aes256gcm where the CPU has AES-NI, else chacha20poly1305 */
static uint8_t entry_data[64 << 10];

static struct inst *inst_of(void *group)
{
	return group;
}

static void h_deliver(void *group, const struct lcr_msg *m)
{
	struct inst *n = inst_of(group);
	assert_true(m->from < 8);
	switch (m->type) {
	case LCR_MSG_VOTE_RESP:
		n->vote_resps[m->from]++;
		return;
	case LCR_MSG_APPEND_RESP:
		return;
	case LCR_MSG_APPEND_REQ: {
		n->appends[m->from]++;
		for (uint32_t i = 0; i < m->append_req.n_entries; i++) {
			const struct lcr_entry *e = &m->append_req.entries[i];
			assert_int_equal(memcmp(e->data, entry_data, e->len), 0);
			n->append_bytes[m->from] += e->len;
		}
		nt_answer_append(n->g, n->id, m);
		return;
	}
	default:
		break;
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

/* Entries of entry_len bytes, all of entry_data's first bytes. */
static void h_attach(void *group, struct lcr_msg *m)
{
	static struct lcr_entry ents[64];
	struct inst *n = inst_of(group);
	nt_attach(m, ents, 64, n->entry_len, entry_data);
}

static const struct lcr_net_host host = {
	.deliver = h_deliver,
	.failed = h_failed,
	.attach = h_attach,
};

static struct lcr_peer_addr addr(uint32_t id, uint16_t port)
{
	struct lcr_peer_addr a = { .id = id, .port = port };
	snprintf(a.host, sizeof(a.host), "127.0.0.1");
	return a;
}

/*
 * Open slot `k` as node `id` knowing `peers` (itself among them), with `key` (NULL: none) and
 * `boot`, its group's targets `targets`. Returns 0 or the open's -errno, its sentence in why.
 */
static int try_open(uint32_t k, uint32_t id, const struct lcr_peer_addr *peers, uint32_t n,
		    const uint32_t *targets, uint32_t n_targets, const uint8_t *key, uint32_t alg,
		    uint64_t boot, uint32_t mtu, char *why, size_t why_len)
{
	struct inst *x = &I[k];
	struct lcr_net_config c;

	assert_null(x->net);
	memset(x, 0, sizeof(*x));
	x->id = id;
	x->entry_len = ENTRY;
	memcpy(x->peers, peers, n * sizeof(*peers));
	lcr_udp_config_default(&x->udp);
	x->udp.bind_host = "127.0.0.1";
	x->udp.mtu = mtu;
	x->udp.auth_key = key;
	x->udp.auth_alg = alg;
	x->udp.auth_boot = boot;
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

static struct inst *open_inst(uint32_t k, uint32_t id, const struct lcr_peer_addr *peers,
			      uint32_t n, const uint32_t *targets, uint32_t n_targets,
			      const uint8_t *key, uint64_t boot)
{
	char why[512] = "";
	if (try_open(k, id, peers, n, targets, n_targets, key, ALG, boot, 1500, why, sizeof(why)) <
	    0)
		fail_msg("node %u: %s", id, why);
	return &I[k];
}

static void close_inst(struct inst *x)
{
	lcr_net_close(x->net);
	x->net = NULL;
}

/* ---- the relay: the path between nodes 1 and 2 ----------------------------------- */

#define KEPT 2048

struct kept {
	uint8_t buf[2048];
	uint32_t len;
	int dir; /* 0: from node 1 to node 2, 1: back */
};

/*
 * Node 1 knows node 2 at the relay's port a, node 2 knows node 1 at its port b: what comes
 * in on one goes out of the other to the real node, so each sees its peer's configured
 * address. It keeps the last KEPT datagrams, may flip a bit of or drop the next one.
 */
static struct {
	int fd[2];	   /* [0] at a (node 2 for node 1), [1] at b (node 1 for node 2) */
	uint16_t port[2];  /* a, b */
	uint16_t to[2];	   /* node 2's real port, node 1's */
	struct kept *kept; /* KEPT, a ring */
	uint32_t n_kept;
	uint32_t len_max; /* the longest datagram seen */
	bool flip[2];	  /* change a bit of the next datagram in this direction */
	uint32_t drop[2]; /* drop this many of the next datagrams in this direction */
	uint64_t seen[2];
} R;

static int udp_socket(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		fail_msg("bind 127.0.0.1:%u: %s", port, strerror(errno));
	return fd;
}

static void relay_open(uint16_t a, uint16_t b, uint16_t node2, uint16_t node1)
{
	memset(&R, 0, sizeof(R));
	R.fd[0] = udp_socket(a);
	R.fd[1] = udp_socket(b);
	R.port[0] = a;
	R.port[1] = b;
	R.to[0] = node2;
	R.to[1] = node1;
	if (!R.kept)
		R.kept = calloc(KEPT, sizeof(*R.kept));
	assert_non_null(R.kept);
}

static void relay_close(void)
{
	close(R.fd[0]);
	close(R.fd[1]);
	free(R.kept);
	R.kept = NULL;
}

/* Send `len` bytes in direction `dir` (out of the other socket, to the real node). */
static void relay_send(int dir, const uint8_t *buf, uint32_t len)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(R.to[dir]) };
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ssize_t n = sendto(R.fd[1 - dir], buf, len, 0, (struct sockaddr *)&to, sizeof(to));
	assert_int_equal(n, (ssize_t)len);
}

static void relay_pump(void)
{
	for (int dir = 0; dir < 2; dir++) {
		uint8_t buf[65536];
		ssize_t n;
		while ((n = recv(R.fd[dir], buf, sizeof(buf), 0)) > 0) {
			R.seen[dir]++;
			if ((uint32_t)n > R.len_max)
				R.len_max = (uint32_t)n;
			if ((size_t)n <= sizeof(R.kept[0].buf)) {
				struct kept *k = &R.kept[R.n_kept++ % KEPT];
				memcpy(k->buf, buf, (size_t)n);
				k->len = (uint32_t)n;
				k->dir = dir;
			}
			if (R.drop[dir]) {
				R.drop[dir]--;
				continue;
			}
			if (R.flip[dir]) {
				R.flip[dir] = false;
				buf[n / 2] ^= 0x10;
			}
			relay_send(dir, buf, (uint32_t)n);
		}
	}
}

/* The last kept datagram of wire type `type` in direction `dir`, or NULL. */
static const struct kept *relay_last(int dir, uint8_t type)
{
	for (uint32_t i = 0; i < KEPT && i < R.n_kept; i++) {
		const struct kept *k = &R.kept[(R.n_kept - 1 - i) % KEPT];
		if (k->dir == dir && k->len > 5 && k->buf[5] == type)
			return k;
	}
	return NULL;
}

/* ---- running ------------------------------------------------------------------------ */

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
		if (R.kept)
			relay_pump();
		usleep(100);
	}
}

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

static bool arrives(const uint32_t *count, uint32_t from)
{
	return run_within(count, from, 2000 * MS);
}

static bool arrives_soon(const uint32_t *count, uint32_t from)
{
	return run_within(count, from, 300 * MS);
}

static void vote(struct inst *x, uint32_t to, uint64_t term)
{
	struct lcr_msg m = { .type = LCR_MSG_VOTE_REQ, .from = x->id, .to = to };
	m.vote_req.vote = (struct lcr_vote){ { term, x->id }, false };
	lcr_net_send(x->g, &m, nt_now_ns());
}

static void append(struct inst *x, uint32_t to, uint64_t prev, uint32_t n)
{
	nt_append(x->g, x->id, to, prev, n);
}

static uint64_t metric(const struct inst *x, const char *key)
{
	return nt_metric(x->net, key);
}

/* Nodes 1 and 2 (slots 0, 1) with the cluster key, through the relay. */
static void open_pair(uint64_t boot1, uint64_t boot2)
{
	const uint16_t p1 = base_port, p2 = base_port + 1, ra = base_port + 2, rb = base_port + 3;
	struct lcr_peer_addr c1[] = { addr(1, p1), addr(2, ra) };
	struct lcr_peer_addr c2[] = { addr(1, rb), addr(2, p2) };
	const uint32_t t1[] = { 2 }, t2[] = { 1 };
	relay_open(ra, rb, p2, p1);
	open_inst(0, 1, c1, 2, t1, 1, KEY, boot1);
	open_inst(1, 2, c2, 2, t2, 1, KEY, boot2);
}

static void close_all(void)
{
	for (uint32_t k = 0; k < INST; k++)
		if (I[k].net)
			close_inst(&I[k]);
	if (R.kept)
		relay_close();
}

/* After each test, passed or not: the next one binds the same ports. */
static int teardown(void **state)
{
	(void)state;
	close_all();
	return 0;
}

/* ---- the tests -------------------------------------------------------------------------- */

static void test_auth_flows_replays_refused(void **state)
{
	(void)state;
	open_pair(10, 20);
	struct inst *n1 = &I[0], *n2 = &I[1];

	/* Votes both ways, through the relay. */
	vote(n1, 2, 1);
	assert_true(arrives(&n2->vote_reqs[1], 0));
	assert_true(arrives(&n1->vote_resps[2], 0));
	vote(n2, 1, 2);
	assert_true(arrives(&n1->vote_reqs[2], 0));
	assert_true(arrives(&n2->vote_resps[1], 0));

	/* A vote request kept and sent again, three times: nothing reaches node 2's core. */
	const struct kept *k = relay_last(0, LCR_WIRE_VOTE_REQ);
	assert_non_null(k);
	uint32_t v = n2->vote_reqs[1];
	for (int i = 0; i < 3; i++)
		relay_send(0, k->buf, k->len);
	assert_false(arrives_soon(&n2->vote_reqs[1], v));
	assert_int_equal(metric(n2, "replayed"), 3);
	/* Its reply, sent again to node 1. */
	k = relay_last(1, LCR_WIRE_VOTE_RESP);
	assert_non_null(k);
	v = n1->vote_resps[2];
	relay_send(1, k->buf, k->len);
	assert_false(arrives_soon(&n1->vote_resps[2], v));
	assert_int_equal(metric(n1, "replayed"), 1);

	/* AppendEntries of 3 x 4000 bytes: fragments on the stream, each within 1500 - 28. */
	append(n1, 2, 0, 3);
	assert_true(arrives(&n2->appends[1], 0));
	assert_int_equal(n2->append_bytes[1], 3 * ENTRY);
	print_message("longest datagram on the path: %u bytes (mtu 1500: at most 1472)\n",
		      R.len_max);
	assert_true(R.len_max <= 1472);
	assert_true(R.len_max > 1400);
	/* Every fragment of it sent again: all refused, nothing delivered twice. */
	uint32_t frags = 0, a = n2->appends[1];
	for (uint32_t i = 0; i < KEPT && i < R.n_kept; i++) {
		const struct kept *x = &R.kept[i];
		if (x->dir == 0 && x->buf[5] == LCR_WIRE_APPEND_REQ) {
			relay_send(0, x->buf, x->len);
			frags++;
		}
	}
	assert_true(frags >= 9);
	assert_false(arrives_soon(&n2->appends[1], a));
	assert_int_equal(metric(n2, "replayed"), 3 + frags);
	assert_int_equal(metric(n2, "duplicate"), 0); /* the stream never saw them */

	/* A changed bit: bad_mac, and the vote is lost (votes are not retransmitted). */
	R.flip[0] = true;
	v = n2->vote_reqs[1];
	vote(n1, 2, 3);
	assert_false(arrives_soon(&n2->vote_reqs[1], v));
	assert_int_equal(metric(n2, "bad_mac"), 1);
	assert_int_equal(metric(n2, "checksum"), 0); /* the tag is checked before the CRC */
	vote(n1, 2, 4);
	assert_true(arrives(&n2->vote_reqs[1], v));

	/* Lost fragments are sent again with new counters: the stream still delivers. */
	R.drop[0] = 2;
	append(n1, 2, 3, 3);
	assert_true(arrives(&n2->appends[1], a));
	assert_int_equal(n2->append_bytes[1], 6 * ENTRY);
	assert_int_equal(R.drop[0], 0); /* both were lost, and sent again */

	print_message("node 2: sealed %llu, verified %llu, replayed %llu, bad_mac %llu\n",
		      (unsigned long long)metric(n2, "sealed"),
		      (unsigned long long)metric(n2, "verified"),
		      (unsigned long long)metric(n2, "replayed"),
		      (unsigned long long)metric(n2, "bad_mac"));
	assert_int_equal(metric(n2, "derivations"), 1);
	assert_int_equal(metric(n2, "old_boot"), 0);
	close_all();
}

/* Node 1 restarts with a larger boot: node 2 follows it, and refuses its earlier start. */
static void test_auth_old_boot_after_restart(void **state)
{
	(void)state;
	open_pair(30, 40);
	struct inst *n1 = &I[0], *n2 = &I[1];
	char why[512] = "";

	vote(n1, 2, 1);
	assert_true(arrives(&n2->vote_reqs[1], 0));
	assert_true(arrives(&n1->vote_resps[2], 0));
	struct kept old = *relay_last(0, LCR_WIRE_VOTE_REQ);

	/* The same start again: refused, its counters would begin at 1 under the same key. */
	struct lcr_peer_addr c1[] = { addr(1, base_port), addr(2, (uint16_t)(base_port + 2)) };
	const uint32_t t1[] = { 2 };
	close_inst(n1);
	int rc = try_open(0, 1, c1, 2, t1, 1, KEY, ALG, 30, 1500, why, sizeof(why));
	print_message("boot 30 again: %s\n", why);
	assert_int_equal(rc, -EALREADY);
	assert_non_null(strstr(why, "boot 30"));
	n1 = open_inst(0, 1, c1, 2, t1, 1, KEY, 31);

	vote(n1, 2, 2);
	assert_true(arrives(&n2->vote_reqs[1], 1));
	assert_true(arrives(&n1->vote_resps[2], 0));
	assert_int_equal(metric(n2, "boot_switches"), 1);
	uint32_t v = n2->vote_reqs[1];
	relay_send(0, old.buf, old.len);
	assert_false(arrives_soon(&n2->vote_reqs[1], v));
	assert_int_equal(metric(n2, "old_boot"), 1);
	/* Boot 0 means no boot: refused with a sentence. */
	close_inst(n1);
	assert_int_equal(try_open(0, 1, c1, 2, t1, 1, KEY, ALG, 0, 1500, why, sizeof(why)),
			 -EINVAL);
	print_message("boot 0: %s\n", why);
	assert_int_equal(try_open(0, 1, c1, 2, t1, 1, KEY, 99, 32, 1500, why, sizeof(why)),
			 -EINVAL);
	print_message("alg 99: %s\n", why);
	close_all();
}

/* Node 3 holds another key, node 4 none: nothing of theirs gets in, nothing of node 1's to them. */
static void test_auth_wrong_key_and_no_key(void **state)
{
	(void)state;
	const uint16_t p1 = base_port, p3 = base_port + 4, p4 = base_port + 5;
	struct lcr_peer_addr c1[] = { addr(1, p1), addr(3, p3), addr(4, p4) };
	struct lcr_peer_addr c3[] = { addr(1, p1), addr(3, p3) };
	struct lcr_peer_addr c4[] = { addr(1, p1), addr(4, p4) };
	const uint32_t t1[] = { 3, 4 }, t3[] = { 1 }, t4[] = { 1 };
	struct inst *n1 = open_inst(0, 1, c1, 3, t1, 2, KEY, 50);
	struct inst *n3 = open_inst(1, 3, c3, 2, t3, 1, EVIL, 60);
	struct inst *n4 = open_inst(2, 4, c4, 2, t4, 1, NULL, 0);

	vote(n3, 1, 1);
	append(n3, 1, 0, 2);
	assert_false(arrives_soon(&n1->vote_reqs[3], 0));
	assert_int_equal(n1->appends[3], 0);
	assert_true(metric(n1, "bad_mac") >= 2);
	vote(n1, 3, 2);
	assert_false(arrives_soon(&n3->vote_reqs[1], 0));
	assert_true(metric(n3, "bad_mac") >= 1);
	uint64_t in1 = metric(n1, "bad_mac") + metric(n1, "old_boot");
	vote(n4, 1, 3);
	append(n4, 1, 0, 2);
	assert_false(arrives_soon(&n1->vote_reqs[4], 0));
	assert_int_equal(n1->appends[4], 0);
	assert_true(metric(n1, "bad_mac") + metric(n1, "old_boot") >= in1 + 2);
	vote(n1, 4, 4);
	assert_false(arrives_soon(&n4->vote_reqs[1], 0));
	/* A keyless node reads a trailer as bytes beyond the header's length. */
	assert_true(metric(n4, "length") >= 1);
	/* Between themselves, nodes without a key talk as before. */
	close_inst(n3);
	struct lcr_peer_addr c3b[] = { addr(3, p3), addr(4, p4) };
	struct lcr_peer_addr c4b[] = { addr(3, p3), addr(4, p4) };
	close_inst(n4);
	const uint32_t to4[] = { 4 }, to3[] = { 3 };
	n3 = open_inst(1, 3, c3b, 2, to4, 1, NULL, 0);
	n4 = open_inst(2, 4, c4b, 2, to3, 1, NULL, 0);
	vote(n3, 4, 5);
	assert_true(arrives(&n4->vote_reqs[3], 0));
	assert_true(arrives(&n3->vote_resps[4], 0));
	close_all();
}

/* ---- the cost ------------------------------------------------------------------------ */

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * `mb` MiB of AppendEntries (one 16 KiB entry each, 32 in flight) from node 1 to node 2
 * directly (GSO and GRO on loopback), with `key` or none: ns of CPU per datagram, both
 * ends together, and MB/s.
 */
static void cost_run(const uint8_t *key, uint32_t alg, uint64_t boot, uint32_t mb, double *ns,
		     double *mbs)
{
	const uint16_t p1 = base_port, p2 = base_port + 1;
	struct lcr_peer_addr c[] = { addr(1, p1), addr(2, p2) };
	const uint32_t t1[] = { 2 }, t2[] = { 1 };
	char why[512];
	if (try_open(0, 1, c, 2, t1, 1, key, alg, boot, 1500, why, sizeof(why)) < 0 ||
	    try_open(1, 2, c, 2, t2, 1, key, alg, boot, 1500, why, sizeof(why)) < 0)
		fail_msg("%s", why);
	struct inst *n1 = &I[0], *n2 = &I[1];
	n1->entry_len = 16 << 10;
	uint32_t total = (uint32_t)((uint64_t)mb << 20) / n1->entry_len, sent = 0;
	uint64_t d0 = metric(n1, "tx_dgrams"), t0 = nt_now_ns(), c0 = cpu_ns();
	uint64_t deadline = t0 + 60000 * MS;
	while (n2->appends[1] < total && nt_now_ns() < deadline) {
		while (sent < total && sent - n2->appends[1] < 32) {
			append(n1, 2, sent, 1);
			sent++;
		}
		uint64_t t = nt_now_ns();
		for (int k = 0; k < 2; k++) {
			lcr_net_flush(I[k].net, t);
			lcr_net_poll(I[k].net, t);
			lcr_net_tick(I[k].net, t);
			lcr_net_flush(I[k].net, t);
		}
	}
	uint64_t cpu = cpu_ns() - c0, wall = nt_now_ns() - t0;
	uint64_t dgrams = metric(n1, "tx_dgrams") - d0;
	assert_int_equal(n2->appends[1], total);
	/* Nothing lost to the authentication, GRO's segments included. */
	if (key) {
		assert_true(metric(n2, "verified") >= dgrams);
		assert_int_equal(metric(n2, "bad_mac"), 0);
		assert_int_equal(metric(n2, "replayed"), 0);
	}
	*ns = (double)cpu / (double)dgrams;
	*mbs = (double)n2->append_bytes[1] / ((double)wall / 1e9) / 1e6;
	close_all();
}

/* Rounds of the three (no key, then each algorithm), the best of each kept: a busy machine
 * slows some runs, seldom all. */
static void test_auth_cost(void **state)
{
	(void)state;
	const char *e = getenv("LCR_AUTH_BENCH_MB");
	uint32_t mb = e ? (uint32_t)strtoul(e, NULL, 10) : 32;
	double best_ns[LCR_AUTH_ALG_MAX], best_mbs[LCR_AUTH_ALG_MAX];
	static uint64_t boot = 100;
	char why[256];

	for (uint32_t alg = 0; alg < LCR_AUTH_ALG_MAX; alg++) {
		best_ns[alg] = 1e18;
		best_mbs[alg] = 0;
	}
	for (int round = 0; round < 3; round++)
		for (uint32_t alg = 0; alg < LCR_AUTH_ALG_MAX; alg++) {
			double ns, mbs;
			if (alg && lcr_auth_usable(alg, why, sizeof(why)) < 0)
				continue;
			cost_run(alg ? KEY : NULL, alg, ++boot, mb, &ns, &mbs);
			best_ns[alg] = ns < best_ns[alg] ? ns : best_ns[alg];
			best_mbs[alg] = mbs > best_mbs[alg] ? mbs : best_mbs[alg];
		}
	print_message("%u MiB of 16 KiB AppendEntries, mtu 1500, best of 3 runs:\n", mb);
	for (uint32_t alg = 0; alg < LCR_AUTH_ALG_MAX; alg++) {
		if (alg && lcr_auth_usable(alg, why, sizeof(why)) < 0) {
			print_message("%s: %s\n", lcr_auth_alg_name(alg), why);
			continue;
		}
		print_message("%-17s %6.0f ns of CPU per datagram (both ends), %5.0f MB/s; "
			      "+%.0f ns\n",
			      alg ? lcr_auth_alg_name(alg) : "no key", best_ns[alg], best_mbs[alg],
			      best_ns[alg] - best_ns[0]);
	}
}

int main(void)
{
	base_port = (uint16_t)(23000 + (getpid() % 4000) * 8);
	for (size_t i = 0; i < sizeof(entry_data); i++)
		entry_data[i] = (uint8_t)(i * 7 + 3);
	char why[256];
	ALG = lcr_auth_usable(LCR_AUTH_AES256GCM, why, sizeof(why)) == 0
		      ? LCR_AUTH_AES256GCM
		      : LCR_AUTH_CHACHA20POLY1305;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_auth_flows_replays_refused, teardown),
		cmocka_unit_test_teardown(test_auth_old_boot_after_restart, teardown),
		cmocka_unit_test_teardown(test_auth_wrong_key_and_no_key, teardown),
		cmocka_unit_test_teardown(test_auth_cost, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
