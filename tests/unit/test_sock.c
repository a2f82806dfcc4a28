/* The kernel-socket backend on loopback: bursts, sender ids, truncation, wait, errors, IPv6. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"

#define WAIT_NS 1000000000ull

struct pair {
	struct lcr_backend *a; /* node 1 */
	struct lcr_backend *b; /* node 2 */
	uint16_t pa, pb;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void add_peer(struct lcr_sock_opts *o, uint32_t node, const char *host, uint16_t port)
{
	struct lcr_sock_peer *p = &o->peers[o->n_peers++];

	p->node = node;
	snprintf(p->host, sizeof(p->host), "%s", host);
	p->port = port;
}

/* A port nobody listens on at the moment: bind port 0, read it back, close. */
static uint16_t free_port(int family)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = socket(family, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	assert_int_equal(
		bind(fd, (struct sockaddr *)&ss,
		     family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)),
		0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	close(fd);
	return ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
				       : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/*
 * Two backends that name each other, on ports tried from a per-process
 * starting point until both bind (another test run may hold some).
 */
static int open_pair_on(struct pair *p, const char *ha, const char *hb, const char *peer_a,
			const char *peer_b, bool busy, uint32_t burst)
{
	uint16_t base = (uint16_t)(20000 + (getpid() * 37) % 30000);
	char why[256];
	int rc = -EADDRINUSE;

	for (unsigned t = 0; t < 200 && rc == -EADDRINUSE; t++) {
		struct lcr_sock_opts oa, ob;

		p->pa = (uint16_t)(base + 2 * t);
		p->pb = (uint16_t)(p->pa + 1);
		lcr_sock_opts_default(&oa);
		lcr_sock_opts_default(&ob);
		oa.bind_host = ha;
		oa.bind_port = p->pa;
		oa.busy_poll = ob.busy_poll = busy;
		oa.burst = ob.burst = burst;
		ob.bind_host = hb;
		ob.bind_port = p->pb;
		add_peer(&oa, 2, peer_b, p->pb);
		add_peer(&ob, 1, peer_a, p->pa);
		rc = lcr_sock_open(&p->a, &oa, why, sizeof(why));
		if (rc < 0)
			continue;
		rc = lcr_sock_open(&p->b, &ob, why, sizeof(why));
		if (rc < 0)
			p->a->ops->close(p->a);
	}
	if (rc < 0 && rc != -EADDRNOTAVAIL && rc != -EAFNOSUPPORT)
		print_error("open pair: %s\n", why);
	return rc;
}

static void open_pair(struct pair *p, bool busy, uint32_t burst)
{
	assert_int_equal(
		open_pair_on(p, "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", busy, burst),
		0);
}

static void close_pair(struct pair *p)
{
	p->a->ops->close(p->a);
	p->b->ops->close(p->b);
}

struct got {
	uint32_t peer;
	uint32_t len;
	uint8_t data[1600];
};

/* Receive n datagrams (copied out: the backend's buffers last one call), or fail after 2 s. */
static void recv_n(struct lcr_backend *be, struct got *g, uint32_t n)
{
	struct lcr_dgram d[64];
	uint64_t end = now_ns() + 2 * WAIT_NS;
	uint32_t have = 0;

	while (have < n) {
		int k = lcr_be_rx(be, d, 64);

		assert_true(k >= 0);
		for (int i = 0; i < k; i++) {
			assert_true(have < n);
			g[have].peer = d[i].peer;
			g[have].len = d[i].len;
			assert_true(d[i].len <= sizeof(g[have].data));
			memcpy(g[have].data, d[i].buf, d[i].len);
			have++;
		}
		if (k == 0) {
			if (now_ns() > end)
				fail_msg("received %u of %u datagrams", have, n);
			lcr_be_wait(be, -1, 10000000);
		}
	}
}

static void fill(uint8_t *buf, uint32_t len, uint32_t tag)
{
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(tag * 31 + i);
}

static void send_and_check(struct lcr_backend *from, struct lcr_backend *to, uint32_t to_node,
			   uint32_t from_node, uint32_t n)
{
	static uint8_t bufs[200][1500];
	static struct got g[200];
	struct lcr_dgram d[200];

	assert_true(n <= 200);
	for (uint32_t i = 0; i < n; i++) {
		d[i].buf = bufs[i];
		d[i].len = 1 + (i * 97) % 1500;
		d[i].peer = to_node;
		fill(bufs[i], d[i].len, i);
	}
	assert_int_equal(lcr_be_tx(from, d, n), n);
	recv_n(to, g, n);
	/* Loopback keeps order. */
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(g[i].peer, from_node);
		assert_int_equal(g[i].len, d[i].len);
		assert_memory_equal(g[i].data, bufs[i], d[i].len);
	}
}

static void test_sock_bursts_both_ways(void **state)
{
	struct lcr_backend_stats sa, sb;
	struct pair p;

	(void)state;
	/* A burst of 16 per system call, so 100 datagrams take several. */
	open_pair(&p, false, 16);
	send_and_check(p.a, p.b, 2, 1, 100);
	send_and_check(p.b, p.a, 1, 2, 100);
	send_and_check(p.a, p.b, 2, 1, 7);
	p.a->ops->stats(p.a, &sa);
	p.b->ops->stats(p.b, &sb);
	assert_int_equal(sa.tx_dgrams, 107);
	assert_int_equal(sb.rx_dgrams, 107);
	assert_int_equal(sa.tx_bytes, sb.rx_bytes);
	assert_int_equal(sb.tx_dgrams, 100);
	assert_int_equal(sa.rx_dgrams, 100);
	assert_int_equal(sa.tx_errors + sa.rx_errors + sa.rx_truncated, 0);
	close_pair(&p);
}

static int raw_socket_to(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static void test_sock_unknown_sender_has_peer_zero(void **state)
{
	struct got g[1];
	struct pair p;
	int fd;

	(void)state;
	open_pair(&p, false, 64);
	fd = raw_socket_to(p.pa);
	assert_int_equal(send(fd, "stranger", 8, 0), 8);
	recv_n(p.a, g, 1);
	assert_int_equal(g[0].peer, 0);
	assert_int_equal(g[0].len, 8);
	assert_memory_equal(g[0].data, "stranger", 8);
	/* The known peer is still recognised after a stranger. */
	send_and_check(p.b, p.a, 1, 2, 3);
	close(fd);
	close_pair(&p);
}

static void test_sock_truncated_dropped_and_counted(void **state)
{
	struct lcr_backend_stats st;
	struct lcr_sock_opts o;
	struct lcr_backend *be;
	uint8_t big[200] = { 0 }, small[128] = { 1 };
	struct got g[2];
	char why[256];
	int fd;

	(void)state;
	lcr_sock_opts_default(&o);
	o.bind_host = "127.0.0.1";
	o.bind_port = free_port(AF_INET);
	o.dgram_max = 128;
	assert_int_equal(lcr_sock_open(&be, &o, why, sizeof(why)), 0);
	fd = raw_socket_to(o.bind_port);
	assert_int_equal(send(fd, big, sizeof(big), 0), sizeof(big));
	assert_int_equal(send(fd, small, 100, 0), 100);
	assert_int_equal(send(fd, small, 128, 0), 128); /* exactly fits */
	recv_n(be, g, 2);
	assert_int_equal(g[0].len, 100);
	assert_int_equal(g[1].len, 128);
	be->ops->stats(be, &st);
	assert_int_equal(st.rx_truncated, 1);
	assert_int_equal(st.rx_dgrams, 2);
	close(fd);
	be->ops->close(be);
}

static void test_sock_dead_and_unknown_peers_do_not_stall(void **state)
{
	static uint8_t buf[64];
	struct lcr_backend_stats st;
	struct lcr_sock_opts o;
	struct lcr_backend *a;
	struct got g[40];
	char why[256];
	struct pair p;

	(void)state;
	open_pair(&p, false, 64);
	/* A third backend: node 1's address is taken, so it speaks as an unknown sender. */
	lcr_sock_opts_default(&o);
	o.bind_host = "127.0.0.1";
	o.bind_port = free_port(AF_INET);
	add_peer(&o, 2, "127.0.0.1", p.pb);
	add_peer(&o, 3, "127.0.0.1", free_port(AF_INET)); /* nobody listens there */
	assert_int_equal(lcr_sock_open(&a, &o, why, sizeof(why)), 0);
	for (unsigned r = 0; r < 20; r++) {
		/* Node 9 is in no table; node 3 answers with ICMP port unreachable. */
		struct lcr_dgram d[5] = {
			{ buf, 64, 3 }, { buf, 64, 2 }, { buf, 64, 9 },
			{ buf, 64, 3 }, { buf, 64, 2 },
		};

		assert_int_equal(lcr_be_tx(a, d, 5), 5);
		usleep(200); /* let the ICMP errors come back between bursts */
	}
	recv_n(p.b, g, 40);
	for (unsigned i = 0; i < 40; i++)
		assert_int_equal(g[i].peer, 0);
	a->ops->stats(a, &st);
	/* The unknown node counts as a failure each time; what ICMP does is the kernel's business.
	 */
	assert_true(st.tx_errors >= 20);
	assert_int_equal(st.tx_dgrams + st.tx_errors, 100);
	a->ops->close(a);
	close_pair(&p);
}

struct delayed_send {
	uint16_t port;
	unsigned delay_ms;
	uint64_t sent_ns;
};

static void *send_later(void *arg)
{
	struct delayed_send *ds = arg;
	int fd = raw_socket_to(ds->port);

	usleep(ds->delay_ms * 1000);
	ds->sent_ns = now_ns();
	if (send(fd, "wake", 4, 0) != 4)
		ds->sent_ns = 0;
	close(fd);
	return NULL;
}

static void test_sock_wait_wakes_on_datagram(void **state)
{
	struct delayed_send ds;
	struct lcr_backend_stats st;
	struct lcr_dgram d[4];
	pthread_t th;
	uint64_t t0, t1;
	struct pair p;

	(void)state;
	open_pair(&p, false, 64);
	ds.port = p.pb;
	ds.delay_ms = 50;
	t0 = now_ns();
	assert_int_equal(pthread_create(&th, NULL, send_later, &ds), 0);
	assert_int_equal(lcr_be_wait(p.b, -1, 5 * WAIT_NS), 0);
	t1 = now_ns();
	pthread_join(th, NULL);
	assert_true(ds.sent_ns != 0);
	/* It slept until the datagram came, and woke within a few ms of it. */
	assert_true(t1 - t0 >= 45000000);
	assert_true(t1 >= ds.sent_ns);
	print_message("woke %.1f us after the send\n", (double)(t1 - ds.sent_ns) / 1000);
	assert_true(t1 - ds.sent_ns < 20000000);
	assert_int_equal(lcr_be_rx(p.b, d, 4), 1);
	p.b->ops->stats(p.b, &st);
	assert_int_equal(st.wakeups, 1);
	close_pair(&p);
}

static void test_sock_wait_times_out_and_sees_fd(void **state)
{
	uint64_t t0, dt, one = 1;
	struct pair p;
	int efd;

	(void)state;
	open_pair(&p, false, 64);
	t0 = now_ns();
	assert_int_equal(lcr_be_wait(p.a, -1, 50000000), 0);
	dt = now_ns() - t0;
	assert_true(dt >= 50000000);
	assert_true(dt < 1000000000);
	/* A timeout under a millisecond is slept, not rounded to zero or to a whole ms. */
	t0 = now_ns();
	assert_int_equal(lcr_be_wait(p.a, -1, 300000), 0);
	dt = now_ns() - t0;
	assert_true(dt >= 300000);
	/* Zero: do not sleep at all. */
	t0 = now_ns();
	assert_int_equal(lcr_be_wait(p.a, -1, 0), 0);
	assert_true(now_ns() - t0 < 1000000);
	/* The other event source wakes it too. */
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(efd >= 0);
	assert_int_equal(write(efd, &one, sizeof(one)), sizeof(one));
	t0 = now_ns();
	assert_int_equal(lcr_be_wait(p.a, efd, 5 * WAIT_NS), 0);
	assert_true(now_ns() - t0 < 100000000);
	close(efd);
	close_pair(&p);
}

static void test_sock_busy_poll_wait_returns_at_once(void **state)
{
	struct lcr_backend_stats st;
	struct pair p;
	uint64_t t0;

	(void)state;
	open_pair(&p, true, 64);
	t0 = now_ns();
	for (int i = 0; i < 1000; i++)
		assert_int_equal(lcr_be_wait(p.a, -1, WAIT_NS), 0);
	assert_true(now_ns() - t0 < 10000000);
	p.a->ops->stats(p.a, &st);
	assert_int_equal(st.wakeups, 0);
	/* It still moves datagrams, of course. */
	send_and_check(p.a, p.b, 2, 1, 10);
	close_pair(&p);
}

static void test_sock_open_errors_say_what(void **state)
{
	struct lcr_sock_opts o;
	struct lcr_backend *be;
	char why[256], want[128];
	struct pair p;

	(void)state;
	open_pair(&p, false, 64);
	/* The port is taken: the sentence names the address, the port and the reason. */
	lcr_sock_opts_default(&o);
	o.bind_host = "127.0.0.1";
	o.bind_port = p.pa;
	assert_int_equal(lcr_sock_open(&be, &o, why, sizeof(why)), -EADDRINUSE);
	assert_null(be);
	snprintf(want, sizeof(want), "bind 127.0.0.1:%u: Address already in use", p.pa);
	assert_string_equal(why, want);
	/* An address this machine does not have. */
	o.bind_host = "192.0.2.1";
	assert_int_equal(lcr_sock_open(&be, &o, why, sizeof(why)), -EADDRNOTAVAIL);
	snprintf(want, sizeof(want), "bind 192.0.2.1:%u: Cannot assign requested address", p.pa);
	assert_string_equal(why, want);
	/* Not an address at all. */
	o.bind_host = "300.1.2.3";
	assert_true(lcr_sock_open(&be, &o, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "300.1.2.3"));
	/* An IPv6 peer for an IPv4 socket. */
	o.bind_host = "127.0.0.1";
	o.bind_port = 0;
	add_peer(&o, 2, "::1", 7002);
	assert_int_equal(lcr_sock_open(&be, &o, why, sizeof(why)), -EAFNOSUPPORT);
	assert_non_null(strstr(why, "peer node 2 at [::1]:7002"));
	/* Node 0 is reserved for "unknown sender"; duplicates are refused. */
	o.peers[0].node = 0;
	snprintf(o.peers[0].host, sizeof(o.peers[0].host), "127.0.0.1");
	assert_int_equal(lcr_sock_open(&be, &o, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "reserved"));
	o.peers[0].node = 2;
	add_peer(&o, 2, "127.0.0.1", 7003);
	assert_int_equal(lcr_sock_open(&be, &o, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "twice"));
	/* A name is resolved once at open. */
	o.n_peers = 0;
	add_peer(&o, 2, "localhost", 7002);
	o.burst = 0;
	assert_int_equal(lcr_sock_open(&be, &o, why, sizeof(why)), -EINVAL);
	o.burst = 8;
	assert_int_equal(lcr_sock_open(&be, &o, why, sizeof(why)), 0);
	be->ops->close(be);
	close_pair(&p);
}

static void test_sock_ipv6_loopback(void **state)
{
	struct pair p;
	int rc;

	(void)state;
	rc = open_pair_on(&p, "::1", "::1", "::1", "::1", false, 64);
	if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
		print_message("skipped: no IPv6 loopback (::1) here\n");
		skip();
	}
	assert_int_equal(rc, 0);
	send_and_check(p.a, p.b, 2, 1, 50);
	send_and_check(p.b, p.a, 1, 2, 50);
	close_pair(&p);
}

static void test_sock_dual_stack_maps_ipv4_peers(void **state)
{
	struct pair p;
	int rc;

	(void)state;
	/* A bound to "::" reaches B on 127.0.0.1 and knows it by its v4-mapped address. */
	rc = open_pair_on(&p, "::", "127.0.0.1", "127.0.0.1", "127.0.0.1", false, 64);
	if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
		print_message("skipped: no IPv6 here\n");
		skip();
	}
	assert_int_equal(rc, 0);
	send_and_check(p.a, p.b, 2, 1, 20);
	send_and_check(p.b, p.a, 1, 2, 20);
	close_pair(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sock_bursts_both_ways),
		cmocka_unit_test(test_sock_unknown_sender_has_peer_zero),
		cmocka_unit_test(test_sock_truncated_dropped_and_counted),
		cmocka_unit_test(test_sock_dead_and_unknown_peers_do_not_stall),
		cmocka_unit_test(test_sock_wait_wakes_on_datagram),
		cmocka_unit_test(test_sock_wait_times_out_and_sees_fd),
		cmocka_unit_test(test_sock_busy_poll_wait_returns_at_once),
		cmocka_unit_test(test_sock_open_errors_say_what),
		cmocka_unit_test(test_sock_ipv6_loopback),
		cmocka_unit_test(test_sock_dual_stack_maps_ipv4_peers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
