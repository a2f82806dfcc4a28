/* Snapshot transfer over the UDP transport on loopback: chunks, credit, loss and reordering,
 * damaged chunks, cancel and silent senders, and the transfer rate against the disk's. */
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

#include "crc32c.h"
#include "net_host.h"
#include "stream.h"
#include "udp.h"
#include "wire.h"

#define GROUP	5
#define CLUSTER 77
#define NODES	3 /* 1 sends, 2 receives, 3 is a hand-made sender (forged streams) */
#define S	1000000000ull
#define MS	1000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

/* ---- one node: its transport and a host that keeps snapshots in memory ------- */

struct node {
	uint32_t id;
	struct lcr_net *net;
	struct lcr_net_group *g;
	struct lcr_udp_config udp;
	struct lcr_net_factory f;
	/* sending */
	const uint8_t *src;
	uint64_t src_size, src_off;
	uint32_t pull_max; /* bytes one pull hands out at most (a source reading ahead) */
	uint32_t opened, closed;
	struct lcr_msg resp; /* the SNAPSHOT_RESP that came back */
	uint32_t resps, fails, fail_err;
	/* receiving */
	uint8_t *rx;
	uint64_t rx_size, rx_got;
	struct lcr_msg rx_req;
	uint32_t write_calls, write_stall; /* every write_stall-th write takes nothing */
	uint32_t begun, ended, aborted;
	bool rx_on;
};

static struct node N[NODES + 1];
static struct lcr_peer_addr peers[NODES];
static uint16_t base_port;

static void h_deliver(void *group, const struct lcr_msg *m)
{
	struct node *n = group;
	if (m->type == LCR_MSG_SNAPSHOT_RESP) {
		n->resp = *m;
		n->resps++;
	}
}

static void h_failed(void *group, const struct lcr_net_call *c, uint32_t err, const char *why)
{
	struct node *n = group;
	(void)why;
	if (c->op == LCR_NET_OP_SNAPSHOT) {
		n->fails++;
		n->fail_err = err;
	}
}

static void h_attach(void *group, struct lcr_msg *m)
{
	(void)group;
	m->append_req.n_entries = 0;
}

static long src_pull(void *src, const void **data, size_t max)
{
	struct node *n = src;
	size_t k = max;
	if (k > n->pull_max)
		k = n->pull_max;
	if (k > n->src_size - n->src_off)
		k = n->src_size - n->src_off;
	*data = n->src + n->src_off;
	n->src_off += k;
	return (long)k;
}

static int h_snap_open(void *group, const struct lcr_msg *m, struct lcr_net_snapshot *snap)
{
	struct node *n = group;
	(void)m;
	n->opened++;
	n->src_off = 0;
	snap->size = n->src_size;
	snap->pull = src_pull;
	snap->src = n;
	return 0;
}

static void h_snap_close(void *group, struct lcr_net_snapshot *snap)
{
	struct node *n = group;
	(void)snap;
	n->closed++;
}

static int h_snap_begin(void *group, const struct lcr_msg *req, uint64_t size, uint64_t *handle)
{
	struct node *n = group;
	assert_false(n->rx_on);
	free(n->rx);
	n->rx = malloc(size ? size : 1);
	assert_non_null(n->rx);
	n->rx_size = size;
	n->rx_got = 0;
	n->rx_req = *req;
	n->rx_on = true;
	n->begun++;
	*handle = n->begun;
	return 0;
}

static long h_snap_write(void *group, uint64_t handle, const void *data, size_t len)
{
	struct node *n = group;
	assert_true(n->rx_on);
	assert_int_equal(handle, n->begun);
	n->write_calls++;
	if (n->write_stall && n->write_calls % n->write_stall == 0)
		return 0; /* the disk is busy: the transport holds the bytes */
	assert_true(n->rx_got + len <= n->rx_size);
	memcpy(n->rx + n->rx_got, data, len);
	n->rx_got += len;
	return (long)len;
}

static int h_snap_end(void *group, uint64_t handle)
{
	struct node *n = group;
	assert_true(n->rx_on);
	assert_int_equal(handle, n->begun);
	assert_int_equal(n->rx_got, n->rx_size);
	n->rx_on = false;
	n->ended++;
	/* The core installs it and answers (here at once). */
	struct lcr_msg r = { .type = LCR_MSG_SNAPSHOT_RESP, .from = n->id, .to = n->rx_req.from };
	const struct lcr_snapshot_req *q = &n->rx_req.snapshot_req;
	r.snapshot_resp.vote = q->vote;
	r.snapshot_resp.last = q->meta.last;
	r.snapshot_resp.stream_id = q->stream_id;
	r.snapshot_resp.inflight_id = q->inflight_id;
	r.snapshot_resp.send_ns = q->send_ns;
	r.snapshot_resp.send_seq = q->send_seq;
	lcr_net_send(n->g, &r, now_ns());
	return 0;
}

static void h_snap_abort(void *group, uint64_t handle)
{
	struct node *n = group;
	assert_true(n->rx_on);
	assert_int_equal(handle, n->begun);
	n->rx_on = false;
	n->aborted++;
}

static const struct lcr_net_host host = {
	.deliver = h_deliver,
	.failed = h_failed,
	.attach = h_attach,
	.snap_open = h_snap_open,
	.snap_close = h_snap_close,
	.snap_begin = h_snap_begin,
	.snap_write = h_snap_write,
	.snap_end = h_snap_end,
	.snap_abort = h_snap_abort,
};

static void open_node(uint32_t id, const struct lcr_udp_config *uc)
{
	struct node *n = &N[id];
	struct lcr_net_config c;
	char why[256] = "";
	uint32_t targets[NODES - 1], nt = 0;

	memset(n, 0, sizeof(*n));
	n->id = id;
	n->pull_max = 1u << 20;
	n->udp = *uc;
	lcr_udp_factory(&n->f, &n->udp);
	lcr_net_config_default(&c, id, 50, 150, 64, 200);
	c.snapshots = true;
	struct lcr_net_env env = { .self = id,
				   .cluster = CLUSTER,
				   .lcore = 0,
				   .n_lcores = 1,
				   .n_peers = NODES,
				   .peers = peers };
	int rc = lcr_net_open(&n->net, &n->f, &env, &c, &host, why, sizeof(why));
	if (rc < 0)
		fail_msg("node %u: %s", id, why);
	for (uint32_t k = 1; k <= NODES; k++)
		if (k != id)
			targets[nt++] = k;
	rc = lcr_net_group_open(n->net, GROUP, n, targets, nt, &n->g, why, sizeof(why));
	if (rc < 0)
		fail_msg("group: %s", why);
}

static void close_node(uint32_t id)
{
	lcr_net_close(N[id].net);
	free(N[id].rx);
	N[id].net = NULL;
	N[id].rx = NULL;
}

static void run_once(void)
{
	uint64_t t = now_ns();
	for (uint32_t i = 1; i <= 2; i++) {
		if (!N[i].net)
			continue;
		lcr_net_poll(N[i].net, t);
		lcr_net_tick(N[i].net, t);
		lcr_net_flush(N[i].net, t);
	}
}

/* Run both nodes until `done` or `limit_ns` passed; true if done. */
static bool run_until(bool (*done)(void), uint64_t limit_ns)
{
	uint64_t end = now_ns() + limit_ns;
	while (now_ns() < end) {
		run_once();
		if (done())
			return true;
	}
	return false;
}

static struct lcr_msg snapshot_req(uint64_t stream)
{
	struct lcr_msg m = { .type = LCR_MSG_SNAPSHOT_REQ, .from = 1, .to = 2 };
	m.snapshot_req.vote = (struct lcr_vote){ { 3, 1 }, true };
	m.snapshot_req.meta.last = (struct lcr_log_id){ { 3, 1 }, 1000 };
	m.snapshot_req.meta.id = 42;
	m.snapshot_req.stream_id = stream;
	m.snapshot_req.inflight_id = 1;
	m.snapshot_req.send_seq = 9;
	return m;
}

static uint8_t *pattern(uint64_t size, uint64_t seed)
{
	uint8_t *p = malloc(size ? size : 1);
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	assert_non_null(p);
	for (uint64_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	return p;
}

static bool answered(void)
{
	return N[1].resps > 0 || N[1].fails > 0;
}

static void default_udp(struct lcr_udp_config *uc)
{
	lcr_udp_config_default(uc);
	uc->bind_host = "127.0.0.1";
}

/* Send `size` bytes from 1 to 2 and check they arrive whole. */
static void transfer(const struct lcr_udp_config *uc, uint64_t size, uint32_t pull_max,
		     uint32_t write_stall)
{
	open_node(1, uc);
	open_node(2, uc);
	uint8_t *src = pattern(size, size);
	N[1].src = src;
	N[1].src_size = size;
	N[1].pull_max = pull_max;
	N[2].write_stall = write_stall;
	struct lcr_msg m = snapshot_req(11);
	lcr_net_send(N[1].g, &m, now_ns());
	assert_true(run_until(answered, 60 * S));
	if (N[1].fails) {
		char mj[16384];
		lcr_net_metrics_json(N[2].net, mj, sizeof(mj));
		printf("receiver: %s\n", mj);
		lcr_net_metrics_json(N[1].net, mj, sizeof(mj));
		printf("sender: %s\n", mj);
	}
	if (N[1].fails)
		fail_msg("size %llu: the send failed: %s", (unsigned long long)size,
			 lcr_net_err_name(N[1].fail_err));
	assert_int_equal(N[1].resps, 1);
	assert_int_equal(N[1].resp.snapshot_resp.stream_id, 11);
	assert_true(lcr_log_id_eq(N[1].resp.snapshot_resp.last, m.snapshot_req.meta.last));
	assert_int_equal(N[2].ended, 1);
	assert_int_equal(N[2].aborted, 0);
	assert_int_equal(N[2].rx_size, size);
	assert_memory_equal(N[2].rx, src, size);
	/* The request reached the receiver as the core sent it. */
	assert_int_equal(N[2].rx_req.snapshot_req.meta.id, 42);
	assert_int_equal(N[2].rx_req.snapshot_req.send_seq, 9);
	assert_int_equal(N[1].opened, 1);
	assert_int_equal(N[1].closed, 1);
	free(src);
	close_node(1);
	close_node(2);
}

static void test_snap_xfer_chunks_arrive_whole(void **state)
{
	struct lcr_udp_config uc;
	(void)state;
	default_udp(&uc);
	transfer(&uc, 0, 1u << 20, 0);		 /* empty: one LAST chunk */
	transfer(&uc, 1, 1u << 20, 0);		 /* one byte */
	transfer(&uc, (3u << 20) + 17, 1000, 0); /* a source handing out odd pieces */
	transfer(&uc, 16u << 20, 1u << 20, 0);
}

/* A node that takes its bytes slowly: the transport holds them, the credit
 * keeps the sender from overrunning the buffer, nothing is lost. */
static void test_snap_xfer_slow_disk_credit(void **state)
{
	struct lcr_udp_config uc;
	(void)state;
	default_udp(&uc);
	transfer(&uc, 12u << 20, 1u << 20, 2);
}

static void test_snap_xfer_loss_reorder_dup(void **state)
{
	struct lcr_udp_config uc;
	(void)state;
	default_udp(&uc);
	uc.fault_loss_ppm = 10000;
	uc.fault_reorder_ppm = 20000;
	uc.fault_dup_ppm = 10000;
	uc.fault_seed = 7;
	transfer(&uc, 6u << 20, 1u << 20, 0);
}

static bool half_way(void)
{
	return N[2].rx_got >= N[2].rx_size / 2 && N[2].rx_size > 0;
}

static bool rx_gone(void)
{
	return N[2].aborted > 0;
}

/* The leader cancels mid-way (LCR_CMD_CANCEL_SNAPSHOT, or it lost its
 * leadership): the source is released, the receiver drops what it holds. */
static void test_snap_xfer_cancel_mid_way_cleans_up(void **state)
{
	struct lcr_udp_config uc;
	(void)state;
	default_udp(&uc);
	open_node(1, &uc);
	open_node(2, &uc);
	uint64_t size = 32u << 20;
	uint8_t *src = pattern(size, 3);
	N[1].src = src;
	N[1].src_size = size;
	N[2].write_stall = 3; /* slow enough to catch it half way */
	struct lcr_msg m = snapshot_req(12);
	lcr_net_send(N[1].g, &m, now_ns());
	assert_true(run_until(half_way, 30 * S));
	lcr_net_cancel_snapshot(N[1].g, 2, 12);
	assert_int_equal(N[1].closed, 1);
	assert_true(run_until(rx_gone, 5 * S));
	assert_int_equal(N[2].ended, 0);
	assert_false(N[2].rx_on);
	/* Nothing is reported for a cancelled call, and nothing comes later. */
	run_until(answered, 200 * MS);
	assert_int_equal(N[1].fails, 0);
	assert_int_equal(N[1].resps, 0);
	/* A new send after the cancel goes through. */
	N[2].write_stall = 0;
	m = snapshot_req(13);
	lcr_net_send(N[1].g, &m, now_ns());
	assert_true(run_until(answered, 30 * S));
	assert_int_equal(N[1].resps, 1);
	assert_memory_equal(N[2].rx, src, size);
	free(src);
	close_node(1);
	close_node(2);
}

/* A role change cancels every send (lcr_net_cancel). */
static void test_snap_xfer_role_change_cancels(void **state)
{
	struct lcr_udp_config uc;
	(void)state;
	default_udp(&uc);
	open_node(1, &uc);
	open_node(2, &uc);
	uint64_t size = 32u << 20;
	uint8_t *src = pattern(size, 4);
	N[1].src = src;
	N[1].src_size = size;
	N[2].write_stall = 3;
	struct lcr_msg m = snapshot_req(14);
	lcr_net_send(N[1].g, &m, now_ns());
	assert_true(run_until(half_way, 30 * S));
	lcr_net_cancel(N[1].g);
	assert_int_equal(N[1].closed, 1);
	assert_true(run_until(rx_gone, 5 * S));
	free(src);
	close_node(1);
	close_node(2);
}

/* ---- a hand-made sender: node 3's address, its own stream ------------------------ */

struct forger {
	int fd;
	struct lcr_stx tx;
	struct sockaddr_in to;
};

static void forger_open(struct forger *f)
{
	struct lcr_stream_opts o;
	struct sockaddr_in a = { .sin_family = AF_INET };

	f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(f->fd >= 0);
	a.sin_port = htons((uint16_t)(base_port + 2));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	f->to = a;
	f->to.sin_port = htons((uint16_t)(base_port + 1));
	lcr_stream_opts_default(&o);
	assert_int_equal(lcr_stx_init(&f->tx, &o, CLUSTER, GROUP, 3, 2), 0);
}

static void forger_close(struct forger *f)
{
	lcr_stx_free(&f->tx);
	close(f->fd);
}

static void forger_send(struct forger *f, uint8_t type, const void *p, size_t len)
{
	struct lcr_dgram_view v;
	assert_int_equal(lcr_stx_send(&f->tx, type, p, (uint32_t)len, now_ns()), 0);
	while (lcr_stx_next(&f->tx, now_ns(), &v))
		sendto(f->fd, v.buf, v.len, 0, (struct sockaddr *)&f->to, sizeof(f->to));
}

/* The status of the last SNAPSHOT_ACK node 2 sent us, or 0. */
static uint32_t forger_status(struct forger *f)
{
	uint8_t buf[LCR_WIRE_DGRAM_MAX];
	uint32_t st = 0;
	ssize_t k;
	while ((k = recv(f->fd, buf, sizeof(buf), 0)) > 0) {
		struct lcr_wire_hdr h;
		struct lcr_wire_snap_ack a;
		if (lcr_wire_open(buf, (size_t)k, CLUSTER, &h) != LCR_DROP_NONE)
			continue;
		if (h.type == LCR_WIRE_STREAM_ACK) {
			struct lcr_wire_ack sa;
			if (lcr_wire_decode_ack(buf + LCR_WIRE_HDR, h.len, &sa) == LCR_DROP_NONE)
				lcr_stx_on_ack(&f->tx, &sa, now_ns());
		}
		if (h.type == LCR_WIRE_SNAPSHOT_ACK &&
		    lcr_wire_decode_snap_ack(buf + LCR_WIRE_HDR, h.len, &a) == LCR_DROP_NONE)
			st = a.status;
	}
	return st;
}

static void forger_begin(struct forger *f, uint64_t xfer, uint64_t size)
{
	uint8_t p[256];
	struct lcr_wire_snap_begin b = { .xfer = xfer, .chunk_max = 4096 };
	b.req.vote = (struct lcr_vote){ { 9, 3 }, true };
	b.req.meta.last = (struct lcr_log_id){ { 9, 3 }, 500 };
	b.req.size = size;
	size_t n = lcr_wire_encode_snap_begin(p, sizeof(p), &b);
	assert_true(n > 0);
	forger_send(f, LCR_WIRE_SNAPSHOT_REQ, p, n);
}

static void forger_chunk(struct forger *f, uint64_t xfer, uint64_t off, const uint8_t *d,
			 uint32_t len, uint32_t crc, bool last, uint32_t total)
{
	uint8_t p[LCR_WIRE_SNAP_CHUNK_HDR + 4096];
	struct lcr_wire_snap_chunk c = { .xfer = xfer,
					 .offset = off,
					 .len = len,
					 .crc = crc,
					 .flags = last ? LCR_WIRE_SNAP_LAST : 0,
					 .total_crc = last ? total : 0,
					 .data = d };
	size_t n = lcr_wire_encode_snap_chunk(p, sizeof(p), &c);
	assert_true(n > 0);
	forger_send(f, LCR_WIRE_SNAPSHOT_CHUNK, p, n);
}

/* Run node 2 until it said `status` to the forger. */
static bool forger_hears(struct forger *f, uint32_t status, uint64_t limit)
{
	uint64_t end = now_ns() + limit;
	while (now_ns() < end) {
		run_once();
		if (forger_status(f) == status)
			return true;
	}
	return false;
}

/* A chunk whose bytes do not match its CRC, then a whole whose CRC does not
 * match: each caught, counted, the receive dropped and the sender told. */
static void test_snap_xfer_damaged_chunks_detected(void **state)
{
	struct lcr_udp_config uc;
	struct forger f;
	uint8_t d[4096];
	(void)state;

	default_udp(&uc);
	open_node(2, &uc);
	forger_open(&f);
	memset(d, 0xab, sizeof(d));
	uint32_t crc = lcr_crc32c(0, d, sizeof(d));

	forger_begin(&f, 100, 2 * sizeof(d));
	assert_true(forger_hears(&f, LCR_SNAP_ST_OK, 2 * S));
	assert_int_equal(N[2].begun, 1);
	forger_chunk(&f, 100, 0, d, sizeof(d), crc ^ 1, false, 0);
	assert_true(forger_hears(&f, LCR_SNAP_ST_BAD_CRC, 2 * S));
	assert_int_equal(N[2].aborted, 1);

	forger_begin(&f, 101, 2 * sizeof(d));
	assert_true(forger_hears(&f, LCR_SNAP_ST_OK, 2 * S));
	forger_chunk(&f, 101, 0, d, sizeof(d), crc, false, 0);
	forger_chunk(&f, 101, sizeof(d), d, sizeof(d), crc, true, 12345);
	assert_true(forger_hears(&f, LCR_SNAP_ST_BAD_CRC, 2 * S));
	assert_int_equal(N[2].aborted, 2);
	assert_int_equal(N[2].ended, 0);

	/* Out of order (a chunk that skips ahead): a protocol error. */
	forger_begin(&f, 102, 2 * sizeof(d));
	assert_true(forger_hears(&f, LCR_SNAP_ST_OK, 2 * S));
	forger_chunk(&f, 102, sizeof(d), d, sizeof(d), crc, true, crc);
	assert_true(forger_hears(&f, LCR_SNAP_ST_PROTOCOL, 2 * S));
	assert_int_equal(N[2].aborted, 3);

	/* The whole right: it ends. */
	forger_begin(&f, 103, 2 * sizeof(d));
	assert_true(forger_hears(&f, LCR_SNAP_ST_OK, 2 * S));
	forger_chunk(&f, 103, 0, d, sizeof(d), crc, false, 0);
	forger_chunk(&f, 103, sizeof(d), d, sizeof(d), crc, true, lcr_crc32c(crc, d, sizeof(d)));
	assert_true(forger_hears(&f, LCR_SNAP_ST_DONE, 2 * S));
	assert_int_equal(N[2].ended, 1);

	char m[8192];
	assert_true(lcr_net_metrics_json(N[2].net, m, sizeof(m)) > 0);
	assert_non_null(strstr(m, "\"bad_crc\":2"));
	assert_non_null(strstr(m, "\"protocol\":1"));
	forger_close(&f);
	close_node(2);
}

/* Over the receiver's bound: refused before a byte is written. A sender that
 * goes silent: dropped after the idle timeout, its file removed. */
static void test_snap_xfer_too_big_and_silent_sender(void **state)
{
	struct lcr_udp_config uc;
	struct forger f;
	uint8_t d[4096];
	(void)state;

	default_udp(&uc);
	uc.snapshot_size_max = 1u << 20;
	uc.snapshot_idle_ms = 200;
	open_node(2, &uc);
	forger_open(&f);
	memset(d, 0x11, sizeof(d));

	forger_begin(&f, 200, (1u << 20) + 1);
	assert_true(forger_hears(&f, LCR_SNAP_ST_TOO_BIG, 2 * S));
	assert_int_equal(N[2].begun, 0);

	forger_begin(&f, 201, 1u << 20);
	assert_true(forger_hears(&f, LCR_SNAP_ST_OK, 2 * S));
	forger_chunk(&f, 201, 0, d, sizeof(d), lcr_crc32c(0, d, sizeof(d)), false, 0);
	uint64_t t0 = now_ns();
	assert_true(forger_hears(&f, LCR_SNAP_ST_UNKNOWN, 3 * S));
	uint64_t waited = now_ns() - t0;
	assert_int_equal(N[2].aborted, 1);
	assert_true(waited >= 150 * MS);
	forger_close(&f);
	close_node(2);
}

/* ---- the rate, against the disk's ------------------------------------------------ */

/* Sequential write of `size` bytes in 1 MiB writes, then fdatasync: MB/s. */
static double disk_rate(uint64_t size)
{
	const char *dir = getenv("LCR_TEST_DIR") ? getenv("LCR_TEST_DIR") : "/var/tmp";
	char path[512];
	snprintf(path, sizeof(path), "%s/lcr-snap-xfer-disk.%d", dir, (int)getpid());
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0)
		return 0;
	uint8_t *b = pattern(1u << 20, 1);
	uint64_t t0 = now_ns();
	for (uint64_t o = 0; o < size; o += 1u << 20)
		if (write(fd, b, 1u << 20) != 1 << 20)
			break;
	fdatasync(fd);
	uint64_t t = now_ns() - t0;
	close(fd);
	unlink(path);
	free(b);
	return (double)size / 1e6 / ((double)t / 1e9);
}

static void bench(uint64_t size, uint32_t mtu)
{
	struct lcr_udp_config uc;
	default_udp(&uc);
	uc.mtu = mtu;
	open_node(1, &uc);
	open_node(2, &uc);
	uint8_t *src = pattern(size, 9);
	N[1].src = src;
	N[1].src_size = size;
	struct lcr_msg m = snapshot_req(21);
	uint64_t t0 = now_ns();
	lcr_net_send(N[1].g, &m, t0);
	bool ok = run_until(answered, 120 * S);
	uint64_t t = now_ns() - t0;
	double net = (double)size / 1e6 / ((double)t / 1e9);
	double disk = disk_rate(size);
	printf("snapshot %llu MiB, mtu %u: %s, %.0f MB/s over loopback; disk sequential write + "
	       "fdatasync of the same size %.0f MB/s; ratio %.2f\n",
	       (unsigned long long)(size >> 20), mtu, ok && N[1].resps ? "whole" : "FAILED", net,
	       disk, disk > 0 ? net / disk : 0);
	free(src);
	close_node(1);
	close_node(2);
}

int main(int argc, char **argv)
{
	base_port = (uint16_t)(30000 + (getpid() % 8000) * 4);
	for (uint32_t i = 0; i < NODES; i++) {
		peers[i].id = i + 1;
		snprintf(peers[i].host, sizeof(peers[i].host), "127.0.0.1");
		peers[i].port = (uint16_t)(base_port + i);
	}
	if (argc >= 2 && strcmp(argv[1], "bench") == 0) {
		uint64_t mb = argc >= 3 ? strtoull(argv[2], NULL, 10) : 256;
		uint32_t mtu = argc >= 4 ? (uint32_t)strtoul(argv[3], NULL, 10) : 1500;
		bench(mb << 20, mtu);
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snap_xfer_chunks_arrive_whole),
		cmocka_unit_test(test_snap_xfer_slow_disk_credit),
		cmocka_unit_test(test_snap_xfer_loss_reorder_dup),
		cmocka_unit_test(test_snap_xfer_cancel_mid_way_cleans_up),
		cmocka_unit_test(test_snap_xfer_role_change_cancels),
		cmocka_unit_test(test_snap_xfer_damaged_chunks_detected),
		cmocka_unit_test(test_snap_xfer_too_big_and_silent_sender),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
