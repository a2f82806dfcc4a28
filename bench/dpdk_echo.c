/* SPDX-License-Identifier: MIT */
/*
 * The bare round trip and packet rate of a DPDK port between two processes,
 * through the same backend the UDP transport uses (dpdk.c: Ethernet/IPv4/UDP
 * frames, ARP), with no Raft: the floor lcraft-bench's DPDK modes put their
 * figures next to (bench.h, lcr_bench_echo_*; mode_dpdk.c runs it between
 * replicas 1 and 2 of every run), and lcraft-dpdk-echo, the same on its own:
 *
 *   lcraft-dpdk-echo --eal ARGS --me IP:PORT --peer IP:PORT --serve SECONDS
 *   lcraft-dpdk-echo --eal ARGS --me IP:PORT --peer IP:PORT [--count N] [--size B]
 *                    [--rate-seconds S] [--json]
 *
 * The server echoes every datagram back to its sender until SECONDS pass. The
 * client sends one datagram at a time (`count` round trips, after ARP has
 * found the server), then, for `rate-seconds`, keeps a window of 64 in flight
 * for the packet rate. Prints p50/p99/max of the round trip and the rate, or
 * one JSON line with --json. Busy-polls (a round trip is a microsecond).
 * Exit 0; 1 when the peer does not answer; 2 on bad usage or setup errors.
 *
 * lcraft-dpdk-echo's main() is lcr_bench_echo_main(), renamed by meson for
 * that program only; lcraft-bench links this file for the functions.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "dpdk.h"

#define ECHO_BURST	  64
#define ECHO_WINDOW	  64			      /* datagrams in flight for the rate */
#define ECHO_TIMEOUT_NS	  (100ull * 1000 * 1000)      /* one round trip, at most */
#define ECHO_FIRST_NS	  (5ull * 1000 * 1000 * 1000) /* the first answer: ARP both ways */
#define ECHO_CTL_EVERY_NS (1000ull * 1000)	      /* a busy server looks at ctl_fd */
#define ECHO_NAP_MAX_NS	  (1000ull * 1000)	      /* a napping server's longest wait */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A command byte on ctl_fd, or 0 if none is there (-1: it closed). */
static int ctl_read(int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	char c;
	if (poll(&pf, 1, 0) <= 0)
		return 0;
	return read(fd, &c, 1) == 1 ? c : -1;
}

uint64_t lcr_bench_echo_serve(struct lcr_backend *be, uint32_t peer, double seconds, int ctl_fd,
			      uint64_t spin_ns)
{
	struct lcr_dgram in[ECHO_BURST], out[ECHO_BURST];
	uint64_t end = now_ns() + (uint64_t)(seconds * 1e9), echoed = 0;
	uint64_t last_work = now_ns(), last_ctl = last_work;
	bool nap = false;

	for (;;) {
		uint64_t t = now_ns();
		if (t >= end)
			break;
		if (ctl_fd >= 0 && t - last_ctl >= ECHO_CTL_EVERY_NS) {
			last_ctl = t;
			int c = ctl_read(ctl_fd);
			if (c == 'n')
				nap = true;
			else if (c != 0)
				break; /* 'q', or the other side went away */
		}
		int n = lcr_be_rx(be, in, ECHO_BURST);
		for (int i = 0; i < n; i++) {
			out[i] = in[i];
			if (!out[i].peer)
				out[i].peer = peer; /* an address it does not know: the peer */
		}
		/* The received buffers stay valid until the next rx: send now. */
		for (int done = 0; done < n;) {
			int k = lcr_be_tx(be, out + done, (uint32_t)(n - done));
			if (k <= 0)
				break; /* the port is full or gone: these are lost */
			done += k;
		}
		if (n > 0) {
			echoed += (uint64_t)n;
			last_work = t;
		} else if (nap && t - last_work >= spin_ns) {
			/* As an idle lcore of a node: nap (growing to 1 ms),
			 * woken early only by a command. */
			lcr_be_wait(be, ctl_fd, ECHO_NAP_MAX_NS);
			last_ctl = 0;
		}
	}
	return echoed;
}

uint64_t lcr_bench_echo_round_trip(struct lcr_backend *be, uint32_t peer, uint8_t *buf,
				   uint32_t size, uint64_t seq)
{
	struct lcr_dgram d = { .buf = buf, .len = size, .peer = peer }, in[ECHO_BURST];

	memcpy(buf, &seq, sizeof(seq));
	uint64_t t0 = now_ns();
	if (lcr_be_tx(be, &d, 1) != 1)
		return 0;
	while (now_ns() - t0 < ECHO_TIMEOUT_NS) {
		int n = lcr_be_rx(be, in, ECHO_BURST);
		for (int i = 0; i < n; i++) {
			uint64_t got;
			if (in[i].len == size && (memcpy(&got, in[i].buf, sizeof(got)), got == seq))
				return now_ns() - t0;
		}
	}
	return 0;
}

double lcr_bench_echo_rate(struct lcr_backend *be, uint32_t peer, uint8_t *buf, uint32_t size,
			   double seconds)
{
	struct lcr_dgram d[ECHO_WINDOW], in[ECHO_BURST];
	uint64_t got = 0, end = now_ns() + (uint64_t)(seconds * 1e9), t0 = now_ns();
	uint64_t heard = t0;   /* when an echo last came */
	uint32_t inflight = 0; /* sent, not yet echoed (nor given up on) */

	for (int i = 0; i < ECHO_WINDOW; i++)
		d[i] = (struct lcr_dgram){ .buf = buf, .len = size, .peer = peer };
	memset(buf, 0, sizeof(uint64_t)); /* seq 0: not a round-trip probe */
	while (now_ns() < end) {
		if (inflight < ECHO_WINDOW) {
			int k = lcr_be_tx(be, d, ECHO_WINDOW - inflight);
			if (k > 0)
				inflight += (uint32_t)k;
		}
		int n = lcr_be_rx(be, in, ECHO_BURST);
		for (int i = 0; i < n; i++) {
			uint64_t seq;
			/* Only this run's echoes: a late answer to a round-trip
			 * probe (seq > 0) is not one of them. */
			if (in[i].len != size || (memcpy(&seq, in[i].buf, sizeof(seq)), seq != 0))
				continue;
			got++;
			heard = now_ns();
			if (inflight)
				inflight--;
		}
		/* Nothing back for a round-trip timeout with the window full:
		 * what is out is lost, and must not stall the window for good. */
		if (inflight == ECHO_WINDOW && now_ns() - heard > ECHO_TIMEOUT_NS) {
			inflight = 0;
			heard = now_ns();
		}
	}
	return (double)got / ((double)(now_ns() - t0) / 1e9);
}

int lcr_bench_echo_first(struct lcr_backend *be, uint32_t peer, uint8_t *buf, uint32_t size)
{
	uint64_t first = now_ns();
	while (lcr_bench_echo_round_trip(be, peer, buf, size, 1) == 0)
		if (now_ns() - first > ECHO_FIRST_NS)
			return -ETIMEDOUT;
	return 0;
}

/* ---- lcraft-dpdk-echo -------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: lcraft-dpdk-echo --eal ARGS --me IP:PORT --peer IP:PORT "
			"(--serve SECONDS | [--count N] [--size B] [--rate-seconds S] [--json])\n");
	exit(2);
}

static void addr(const char *s, uint32_t *ip, uint16_t *port)
{
	char host[64];
	unsigned p;
	struct in_addr a;

	if (sscanf(s, "%63[^:]:%u", host, &p) != 2 || p == 0 || p > 65535 ||
	    inet_pton(AF_INET, host, &a) != 1) {
		fprintf(stderr, "lcraft-dpdk-echo: %s: expected IPv4:PORT\n", s);
		exit(2);
	}
	*ip = ntohl(a.s_addr);
	*port = (uint16_t)p;
}

int lcr_bench_echo_main(int argc, char **argv)
{
	const char *eal = NULL;
	uint32_t me_ip = 0, peer_ip = 0, size = 64;
	uint16_t me_port = 0, peer_port = 0;
	uint64_t count = 20000;
	double serve_s = -1, rate_s = 1;
	bool json = false;
	char why[512];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--json")) {
			json = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--eal"))
			eal = v;
		else if (!strcmp(a, "--me"))
			addr(v, &me_ip, &me_port);
		else if (!strcmp(a, "--peer"))
			addr(v, &peer_ip, &peer_port);
		else if (!strcmp(a, "--serve"))
			serve_s = atof(v);
		else if (!strcmp(a, "--count"))
			count = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--size"))
			size = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--rate-seconds"))
			rate_s = atof(v);
		else
			usage();
	}
	if (!eal || !me_ip || !peer_ip || size < 8 || size > 8972 || count == 0)
		usage();

	struct lcr_dpdk_opts o;
	lcr_dpdk_opts_default(&o);
	o.eal = eal;
	o.ip = me_ip;
	o.port = me_port;
	o.dgram_max = size > 1472 ? size : 1472;
	o.busy_poll = true;
	o.n_peers = 1;
	o.peers[0] = (struct lcr_dpdk_peer){ .node = 1, .ip = peer_ip, .port = peer_port };
	struct lcr_backend *be;
	int rc = lcr_dpdk_open(&be, &o, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "lcraft-dpdk-echo: %s\n", why);
		return 2;
	}
	if (serve_s >= 0) {
		uint64_t n = lcr_bench_echo_serve(be, 1, serve_s, -1, 0);
		fprintf(stderr, "lcraft-dpdk-echo: served %llu datagrams\n", (unsigned long long)n);
		be->ops->close(be);
		return 0;
	}

	static uint8_t buf[9000];
	static struct lcr_hist h;
	uint64_t lost = 0;
	if (lcr_bench_echo_first(be, 1, buf, size) < 0) {
		fprintf(stderr, "lcraft-dpdk-echo: no answer from the peer in 5 s\n");
		be->ops->close(be);
		return 1;
	}
	for (uint64_t i = 0; i < count; i++) {
		uint64_t t = lcr_bench_echo_round_trip(be, 1, buf, size, i + 2);
		if (t)
			lcr_hist_add(&h, t);
		else
			lost++;
	}
	double pps = rate_s > 0 ? lcr_bench_echo_rate(be, 1, buf, size, rate_s) : 0;
	be->ops->close(be);
	if (json)
		printf("{\"rtt_p50_us\":%.2f,\"rtt_p99_us\":%.2f,\"rtt_max_us\":%.2f,\"round_"
		       "trips\":%llu,"
		       "\"lost\":%llu,\"size\":%u,\"pps\":%.0f}\n",
		       lcr_hist_pct(&h, 0.5) / 1e3, lcr_hist_pct(&h, 0.99) / 1e3, h.max_ns / 1e3,
		       (unsigned long long)h.count, (unsigned long long)lost, size, pps);
	else
		printf("round trip (%u-byte datagrams, %llu): p50 %.2f us, p99 %.2f us, max %.2f "
		       "us, "
		       "lost %llu; rate with 64 in flight: %.2f M datagrams/s\n",
		       size, (unsigned long long)h.count, lcr_hist_pct(&h, 0.5) / 1e3,
		       lcr_hist_pct(&h, 0.99) / 1e3, h.max_ns / 1e3, (unsigned long long)lost,
		       pps / 1e6);
	return 0;
}
