/* SPDX-License-Identifier: MIT */
/*
 * lcraft-dpdk-echo: the bare round trip and packet rate of a DPDK port between
 * two processes, through the same backend the UDP transport uses (dpdk.c:
 * Ethernet/IPv4/UDP frames, ARP), with no Raft: the floor lcraft-bench's DPDK
 * modes put their figures next to, and a check that two DPDK processes reach
 * each other.
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
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dpdk.h"
#include "hist.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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

static int serve(struct lcr_backend *be, double seconds)
{
	struct lcr_dgram in[64], out[64];
	uint64_t end = now_ns() + (uint64_t)(seconds * 1e9), echoed = 0;

	while (now_ns() < end) {
		int n = lcr_be_rx(be, in, 64);
		for (int i = 0; i < n; i++) {
			out[i] = in[i];
			out[i].peer = 1;
		}
		/* The received buffers stay valid until the next rx: send now. */
		for (int done = 0; done < n;) {
			int k = lcr_be_tx(be, out + done, (uint32_t)(n - done));
			if (k <= 0)
				break; /* the port is full or gone: these are lost */
			done += k;
		}
		echoed += (uint64_t)(n > 0 ? n : 0);
	}
	fprintf(stderr, "lcraft-dpdk-echo: served %llu datagrams\n", (unsigned long long)echoed);
	return 0;
}

/* One datagram there and back: its round trip in ns, or 0 after 100 ms. */
static uint64_t round_trip(struct lcr_backend *be, uint8_t *buf, uint32_t size, uint64_t seq)
{
	struct lcr_dgram d = { .buf = buf, .len = size, .peer = 1 }, in[64];

	memcpy(buf, &seq, sizeof(seq));
	uint64_t t0 = now_ns();
	if (lcr_be_tx(be, &d, 1) != 1)
		return 0;
	while (now_ns() - t0 < 100ull * 1000 * 1000) {
		int n = lcr_be_rx(be, in, 64);
		for (int i = 0; i < n; i++) {
			uint64_t got;
			if (in[i].len == size && (memcpy(&got, in[i].buf, sizeof(got)), got == seq))
				return now_ns() - t0;
		}
	}
	return 0;
}

/* Datagrams per second with `window` in flight for `seconds`. */
static double rate(struct lcr_backend *be, uint8_t *buf, uint32_t size, double seconds)
{
	struct lcr_dgram d[64], in[64];
	uint64_t sent = 0, got = 0, end = now_ns() + (uint64_t)(seconds * 1e9), t0 = now_ns();
	const uint64_t window = 64;

	for (int i = 0; i < 64; i++)
		d[i] = (struct lcr_dgram){ .buf = buf, .len = size, .peer = 1 };
	memset(buf, 0, sizeof(uint64_t)); /* seq 0: not a round-trip probe */
	while (now_ns() < end) {
		uint64_t room = window - (sent - got);
		if (room > 0) {
			int k = lcr_be_tx(be, d, (uint32_t)room);
			if (k > 0)
				sent += (uint64_t)k;
		}
		int n = lcr_be_rx(be, in, 64);
		if (n > 0)
			got += (uint64_t)n;
		/* A lost datagram must not stall the window for good. */
		if (sent - got == window && n == 0)
			got = sent - window / 2;
	}
	return (double)got / ((double)(now_ns() - t0) / 1e9);
}

int main(int argc, char **argv)
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
		rc = serve(be, serve_s);
		be->ops->close(be);
		return rc;
	}

	static uint8_t buf[9000];
	static struct lcr_hist h;
	uint64_t lost = 0, first = now_ns();
	/* The first answers wait for ARP, both ways: up to 5 s. */
	while (round_trip(be, buf, size, 1) == 0)
		if (now_ns() - first > 5ull * 1000 * 1000 * 1000) {
			fprintf(stderr, "lcraft-dpdk-echo: no answer from the peer in 5 s\n");
			be->ops->close(be);
			return 1;
		}
	for (uint64_t i = 0; i < count; i++) {
		uint64_t t = round_trip(be, buf, size, i + 2);
		if (t)
			lcr_hist_add(&h, t);
		else
			lost++;
	}
	double pps = rate_s > 0 ? rate(be, buf, size, rate_s) : 0;
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
