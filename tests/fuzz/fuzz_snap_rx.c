/* Fuzz the snapshot receiver: whatever datagrams arrive, only a snapshot a sender sent ends. */
/*
 * The receiving side of a snapshot transfer, from the datagram to where the
 * node would write its file: the UDP transport (dpdk-net/udp.c: SNAPSHOT_REQ,
 * SNAPSHOT_CHUNK and SNAPSHOT_CANCEL, wire types 9, 11 and 13; the receive
 * slots, their LCR_UDP_SNAP_BUF buffers, credit and timeouts), the stream
 * receiver and the wire codec under it, the network contract (net.c) above
 * it, and a host that does with the bytes what the runtime's receive does
 * (engine/runtime/snap_xfer.c): the stream's header taken apart by
 * lcr_rt_mship_stream_parse once whole, its membership put into a snapshot
 * writer's header (lcr_snap_set_membership) and read back as the install
 * does (lcr_rt_mship_of_snap, lcr_rt_mship_same), the size checked. The data
 * stay in memory instead of going to a file: the disk is where this stops.
 *
 * The transport is the real one, opened through its factory. Only its
 * datagram backend is this file's: lcr_sock_open is defined here and sock.c
 * is not linked, so udp.c needs no seam. What the transport sends comes
 * back to the harness (stream acks to its senders, snapshot acks checked);
 * what the senders send goes onto a network the input controls.
 *
 * The input is a script (the first byte configures the transport: mtu,
 * receive slots, largest snapshot, idle timeout); then each op byte names
 * one of three links (group 1 from nodes 2 and 3, group 2 from node 2) and
 * an op:
 *
 *   BEGIN      the link's sender starts a transfer: size, chunk size, vote
 *              (older, equal or newer), and the stream's header (a valid
 *              membership, arbitrary membership bytes under a correct CRC,
 *              a damaged header, or none)
 *   CHUNKS     its next chunks, honest or damaged: a data byte flipped with
 *              the chunk's CRC kept or fixed, LAST early or missing, a wrong
 *              total CRC, a shifted offset, another transfer's id
 *   TRANSMIT, FLOW, DELIVER, DROP, SHUFFLE, CORRUPT
 *              the network: datagrams the senders' streams put out (new and
 *              retransmitted) wait in a pool, and are delivered in order,
 *              one at a time (a duplicate, a reordering, from a spoofed
 *              address), dropped, shuffled, or changed and resealed (a new
 *              header CRC: the attacker that CRCs do not stop)
 *   CANCEL, RESET, REOPEN
 *              a SNAPSHOT_CANCEL; the sender's stream starts over; the
 *              group's clients are dropped and made again
 *   TIME, ITERATE
 *              the clock moves (retransmissions, idle receives dropped);
 *              one loop iteration
 *   HOST       the node refuses the next begin, write or end, takes at
 *              most n bytes a write, or none for a while; the socket is full
 *   RAW_MSG, RAW_DGRAM, FORGE
 *              arbitrary bytes as a message on the link's stream, as a
 *              datagram (resealed or not), or a chunk with a correct CRC
 *              over data the sender never had
 *
 * Checked:
 *   - no crash, no leak (every allocation of the transport is given back
 *     when it closes) and nothing allocated while it runs;
 *   - the host sees one receive per group at a time, every write belongs to
 *     the open receive and stays within its size, the end comes with every
 *     byte and a stream header that parsed, and the membership the install
 *     reads back is the one parsed;
 *   - unless the input forged data for its group (RAW_*, FORGE), a
 *     snapshot that ends is byte for byte one that a sender sent: a CRC
 *     mismatch is never taken;
 *   - every datagram the transport sends is well formed; a DONE ack follows
 *     an end the node took; an honest run (no damage, no forgery, no refusal
 *     by the node, no long pauses) has no BAD_CRC, PROTOCOL or STORAGE
 *     verdict for a valid header, and its last transfer, once judged,
 *     ended;
 *   - at the end the network delivers everything: a receive that began
 *     (and was not cancelled, nor its group's clients dropped) never goes
 *     quiet (nothing reaches its node for longer than the idle timeout)
 *     without a verdict, DONE or a reason.
 *
 * Built for libFuzzer with clang (LLVMFuzzerTestOneInput), and with
 * -DLCR_FUZZ_STANDALONE as a plain program that runs N inputs: seed scripts
 * with a few random changes and random bytes, alternately; files named
 * instead of N are run as inputs (FUZZ_SNAP_TRACE=1 says what happened,
 * and when the transfers ended: snap-loss-recovery's time measures how
 * fast the stream recovers 255 datagrams lost at once); "--seeds DIR"
 * writes the seed corpus into DIR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "core.h"
#include "crc32c.h"
#include "net_host.h"
#include "runtime_int.h"
#include "stream.h"
#include "udp.h"
#include "wire.h"
#include "fuzz_input.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz_snap_rx: check failed: %s (%s:%d)\n", #x, __FILE__,  \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define CLUSTER	  0x5eedull
#define SELF	  1
#define LINKS	  3
#define GROUPS	  2
#define HDR	  LCR_RT_SNAP_STREAM_HDR
#define DATA_MAX  (256u << 10)	  /* honest data bytes of most transfers at most */
#define BIG_MAX	  (3u << 19)	  /* ... of a rare one (past a quarter of the receive buffer) */
#define RX_MAX	  (HDR + BIG_MAX) /* the host's bound (-EFBIG above) */
#define CHUNK_MAX 4096		  /* data bytes of an honest chunk */
#define HIST_MAX  48		  /* transfers one input begins */
#define POOL_MAX  256		  /* datagrams on the network */
#define DQ_MAX	  64		  /* datagrams for the transport's next bursts */
#define RAW_MAX	  2048		  /* bytes of a raw message */
#define STEPS_MAX 1500
#define MS	  1000000ull

static const uint32_t link_group[LINKS] = { 1, 1, 2 };
static const uint32_t link_node[LINKS] = { 2, 3, 2 };

enum op_kind {
	K_FLOW,
	K_CHUNKS,
	K_BEGIN,
	K_TRANSMIT,
	K_DELIVER,
	K_DROP,
	K_SHUFFLE,
	K_CORRUPT,
	K_CANCEL,
	K_RESET,
	K_TIME,
	K_HOST,
	K_RAW_MSG,
	K_RAW_DGRAM,
	K_FORGE,
	K_REOPEN,
	K_ITERATE,
	K_COUNT
};

/* CHUNKS' damage (the op's second byte >> 3). */
enum chunk_mode {
	CM_NONE = 0,
	CM_FLIP_KEEP = 20, /* a data byte flipped, the chunk's CRC as it was */
	CM_FLIP_FIX = 22,  /* ... the chunk's CRC over the flipped data, the total honest */
	CM_LAST_EARLY = 24,
	CM_NO_LAST = 25,
	CM_TOTAL_WRONG = 26,
	CM_OFFSET_SKEW = 27,
	CM_XFER_OTHER = 28,
	CM_HONEST_FROM = 29, /* 29..31 honest again */
};

/* BEGIN's stream header (its fourth parameter byte). */
enum hdr_kind {
	HK_VALID = 0,	     /* < 160: a membership made from the input */
	HK_ARBITRARY = 160,  /* < 200: any membership bytes, the header's CRC right */
	HK_FLIPPED = 200,    /* < 220: a valid one with a byte changed */
	HK_BAD_LENGTH = 220, /* < 236: length 0 or too long, CRC right */
	HK_ZERO = 236,	     /* no header at all */
};

/* ---- what the senders sent --------------------------------------------------- */

struct xfer {
	uint64_t id; /* the wire's xfer */
	uint32_t link;
	uint64_t size; /* stream bytes: header and data */
	bool hdr_valid;
	uint8_t hdr[HDR];
	/* what the receiver said of it (SNAPSHOT_ACK) */
	bool began, done, bad; /* began: an OK or DONE came */
	uint32_t bad_status;
	bool exempt; /* cancelled, or its group's clients dropped: may end without a word */
};

struct sender {
	struct lcr_stx tx;
	int cur;	/* the transfer it sends (history index), -1: none */
	uint64_t off;	/* its next chunk's offset */
	uint32_t crc;	/* CRC32C of what it sent of it */
	uint32_t chunk; /* data bytes per chunk */
	bool last_sent; /* it sent the chunk it thinks last */
	bool stx_on;	/* tx initialised */
};

struct pkt {
	uint32_t len;
	uint32_t peer; /* the node whose address sent it (the backend's rx peer) */
	uint32_t link;
	uint8_t buf[LCR_WIRE_DGRAM_MAX];
};

/* The node's side of one group's receive, as snap_xfer.c keeps it. */
struct hostg {
	uint32_t group;
	bool on;	   /* a receive is open */
	bool ended;	   /* ended; the core steps with it in the next iteration */
	bool failed;	   /* a write was refused: only an abort may follow */
	bool hdr_ok;	   /* the stream's header parsed */
	uint64_t heard_ns; /* the last begin, write, end or abort of the group's receives */
	uint64_t handle, size, got;
	struct lcr_msg req;
	struct lcr_membership m;
	struct lcr_snap_writer w; /* only its header (meta) is used */
	uint8_t buf[RX_MAX];
};

struct knobs {
	int begin_err;	      /* the next begin fails so, 0: none */
	bool write_err;	      /* the next write fails */
	bool end_err;	      /* the next end fails */
	uint32_t write_cap;   /* bytes a write takes at most, 0: all */
	uint32_t write_stall; /* the next n writes take nothing */
	uint32_t tx_stall;    /* the next n tx bursts take nothing */
};

static struct {
	uint64_t now;
	struct lcr_net *net;
	struct lcr_net_group *g[GROUPS];
	struct lcr_udp_config uc;
	struct lcr_net_factory f;
	uint32_t dgram_max;
	uint64_t idle_ns;
	struct sender s[LINKS];
	struct xfer hist[HIST_MAX];
	uint32_t n_hist;
	int last_begun;
	uint32_t xfer_seq;
	uint64_t term[GROUPS];
	struct knobs k;
	uint64_t handles;
	uint32_t pool_len, dq_head, dq_len, dq_handed;
	bool be_open;
	bool forged[GROUPS]; /* arbitrary or forged data went to the group: structural checks only
			      */
	bool clean;	     /* no damage, no refusal by the node, no pause near the idle timeout */
	bool unpaused;	     /* no TIME op at all */
	bool in_loop;	     /* inside poll, tick, flush or send: nothing may allocate */
	long allocs, frees;
	uint64_t ends_ok[GROUPS], dones[GROUPS];
} F;

/* The network: datagrams in the order they were put on it (pointers into
 * pool_slots, so that taking one out moves no bytes). */
static struct pkt pool_slots[POOL_MAX];
static struct pkt *pool[POOL_MAX];
static struct pkt *pool_free[POOL_MAX];
static uint32_t n_free;
static struct pkt dq[DQ_MAX];
static struct hostg hg[GROUPS];
static uint8_t scratch[LCR_WIRE_MSG_MAX];
static bool trace;

#define TRACE(...)                                                                                 \
	do {                                                                                       \
		if (trace)                                                                         \
			fprintf(stderr, __VA_ARGS__);                                              \
	} while (0)

static void take_bytes(struct input *in, uint8_t *out, size_t n)
{
	size_t k = n < in->n ? n : in->n;
	memcpy(out, in->p, k);
	memset(out + k, 0, n - k);
	in->p += k;
	in->n -= k;
}

/* ---- the transport's memory ---------------------------------------------------- */

/*
 * The transport allocates some 20 MiB when it opens (its transmit queue,
 * windows, reassembly and receive buffers; their sizes follow the mtu):
 * fresh pages every run would cost more than the run. Blocks of CACHE_MIN
 * bytes or more are kept for the next run instead, poisoned for ASan while
 * they wait and, when given out again for a smaller size, poisoned past it,
 * so that a use after free or beyond the end is still caught.
 */
#define CACHE_MIN (64u << 10)
#define BLOCKS	  64

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct block {
	uint8_t *p;
	size_t size; /* allocated */
};

static struct block live[BLOCKS], kept[BLOCKS];
static uint32_t n_live, n_kept;

static void *count_alloc(void *ctx, size_t size)
{
	struct block b = { NULL, 0 };

	(void)ctx;
	CHECK(!F.in_loop); /* nothing allocates on the receive path */
	F.allocs++;
	if (size < CACHE_MIN || n_live == BLOCKS)
		return malloc(size);
	/* The smallest kept block that holds it, if not twice as large. */
	uint32_t best = n_kept;
	for (uint32_t i = 0; i < n_kept; i++)
		if (kept[i].size >= size && kept[i].size / 2 < size &&
		    (best == n_kept || kept[i].size < kept[best].size))
			best = i;
	if (best < n_kept) {
		b = kept[best];
		kept[best] = kept[--n_kept];
		UNPOISON(b.p, size);
	} else if (!(b.p = malloc(size))) {
		return NULL;
	} else {
		b.size = size;
	}
	live[n_live++] = b;
	return b.p;
}

static void count_free(void *ctx, void *p)
{
	(void)ctx;
	F.frees++;
	for (uint32_t i = 0; i < n_live; i++) {
		if (live[i].p != p)
			continue;
		struct block b = live[i];
		live[i] = live[--n_live];
		if (n_kept == BLOCKS) {
			/* Full: the largest kept one goes. */
			uint32_t big = 0;
			for (uint32_t k = 1; k < n_kept; k++)
				if (kept[k].size > kept[big].size)
					big = k;
			UNPOISON(kept[big].p, kept[big].size);
			free(kept[big].p);
			kept[big] = kept[--n_kept];
		}
		POISON(b.p, b.size);
		kept[n_kept++] = b;
		return;
	}
	free(p);
}

/* ---- the content of a transfer --------------------------------------------------- */

static uint8_t data_byte(uint64_t id, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ull ^ id * 0xc2b2ae3d27d4eb4full;
	return (uint8_t)(x >> 56 ^ x >> 29);
}

static void content(const struct xfer *x, uint64_t off, uint8_t *out, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t at = off + i;
		out[i] = at < HDR ? x->hdr[at] : data_byte(x->id, at);
	}
}

/* Whether `b` is, byte for byte, one of the transfers a sender began. */
static bool sent_by_a_sender(const uint8_t *b, uint64_t n)
{
	for (uint32_t k = 0; k < F.n_hist; k++) {
		const struct xfer *x = &F.hist[k];
		uint64_t h = n < HDR ? n : HDR, i;
		if (x->size != n || memcmp(b, x->hdr, h) != 0)
			continue;
		for (i = h; i < n && b[i] == data_byte(x->id, i); i++)
			;
		if (i == n)
			return true;
	}
	return false;
}

static struct xfer *xfer_of(uint64_t id)
{
	for (uint32_t k = 0; k < F.n_hist; k++)
		if (F.hist[k].id == id)
			return &F.hist[k];
	return NULL;
}

static int link_of(uint32_t group, uint32_t node)
{
	for (int i = 0; i < LINKS; i++)
		if (link_group[i] == group && link_node[i] == node)
			return i;
	return -1;
}

/* ---- the host: the runtime's receive, in memory ---------------------------------- */

static void h_deliver(void *group, const struct lcr_msg *m)
{
	(void)group;
	(void)m; /* a raw message's Raft request: the core is not here */
}

static void h_failed(void *group, const struct lcr_net_call *c, uint32_t err, const char *why)
{
	(void)group;
	(void)c;
	(void)err;
	(void)why;
}

static void h_attach(void *group, struct lcr_msg *m)
{
	(void)group;
	m->append_req.n_entries = 0;
}

static int h_snap_begin(void *group, const struct lcr_msg *req, uint64_t size, uint64_t *handle)
{
	struct hostg *h = group;

	CHECK(req->type == LCR_MSG_SNAPSHOT_REQ);
	CHECK(req->to == SELF);
	CHECK(link_of(h->group, req->from) >= 0);
	CHECK(req->snapshot_req.size == size);
	h->heard_ns = F.now;
	/* One receive per group: the transport gives the last one up first. */
	CHECK(!h->on || h->ended);
	if (h->on)
		return -EBUSY; /* the last one waits for its core step */
	if (F.k.begin_err) {
		int rc = F.k.begin_err;
		F.k.begin_err = 0;
		return rc;
	}
	if (size < HDR)
		return -EBADMSG; /* no room for the stream's header */
	if (size > RX_MAX)
		return -EFBIG;
	h->on = true;
	h->ended = h->failed = h->hdr_ok = false;
	h->handle = ++F.handles;
	h->size = size;
	h->got = 0;
	h->req = *req;
	memset(&h->w, 0, sizeof(h->w));
	*handle = h->handle;
	TRACE("  host: group %u begins %llu (%llu bytes from %u)\n", h->group,
	      (unsigned long long)h->handle, (unsigned long long)size, req->from);
	return 0;
}

/* A membership the stream's header gave: valid, and one the node can write again. */
static void check_membership(const struct lcr_membership *m, const uint8_t *bytes, uint32_t len)
{
	char why[160];
	uint8_t again[LCR_MEMBERSHIP_BYTES_MAX];
	struct lcr_membership back;

	CHECK(lcr_membership_validate(m, why, sizeof(why)) == 0);
	size_t n = lcr_membership_encode(m, again, sizeof(again));
	CHECK(n > 0 && n <= LCR_SNAP_MEMBERSHIP_MAX);
	CHECK(lcr_membership_decode(again, n, &back) == 0);
	CHECK(lcr_rt_mship_same(&back, m));
	CHECK(len <= LCR_SNAP_MEMBERSHIP_MAX);
	(void)bytes;
}

/* rx_hdr_write: the header is kept until whole, then taken apart. */
static long h_hdr_write(struct hostg *h, const uint8_t *data, size_t len)
{
	size_t n = HDR - h->got;
	const uint8_t *bytes;
	uint32_t blen;

	if (n > len)
		n = len;
	memcpy(h->buf + h->got, data, n);
	h->got += n;
	if (h->got < HDR)
		return (long)n;
	if (lcr_rt_mship_stream_parse(h->buf, &h->m, &bytes, &blen) < 0 ||
	    lcr_snap_set_membership(&h->w, bytes, blen) < 0) {
		h->failed = true;
		return -EBADMSG;
	}
	CHECK(bytes == h->buf + 12);
	check_membership(&h->m, bytes, blen);
	h->hdr_ok = true;
	return (long)n;
}

static long h_snap_write(void *group, uint64_t handle, const void *data, size_t len)
{
	struct hostg *h = group;

	CHECK(h->on && !h->ended && !h->failed);
	CHECK(handle == h->handle);
	CHECK(len > 0);
	CHECK(h->got + len <= h->size); /* never more than the transfer announced */
	h->heard_ns = F.now;
	if (F.k.write_err) {
		F.k.write_err = false;
		h->failed = true;
		return -EIO;
	}
	if (F.k.write_stall) {
		F.k.write_stall--;
		return 0; /* both staging buffers in flight */
	}
	if (h->got < HDR)
		return h_hdr_write(h, data, len);
	size_t n = len;
	if (F.k.write_cap && n > F.k.write_cap)
		n = F.k.write_cap;
	memcpy(h->buf + h->got, data, n);
	h->got += n;
	return (long)n;
}

static int h_snap_end(void *group, uint64_t handle)
{
	struct hostg *h = group;
	struct lcr_membership file;

	CHECK(h->on && !h->ended && !h->failed);
	CHECK(handle == h->handle);
	CHECK(h->got == h->size); /* every byte, checked by the transport */
	h->heard_ns = F.now;
	CHECK(h->hdr_ok);
	/* The install reads the membership back from the file's header
	 * (rx_deliver asserts the same). */
	CHECK(lcr_rt_mship_of_snap(&h->w.meta, &file) == 0);
	CHECK(lcr_rt_mship_same(&file, &h->m));
	/* A CRC mismatch is never taken: the bytes are a sender's. */
	if (!F.forged[h->group - 1] && !sent_by_a_sender(h->buf, h->got)) {
		fprintf(stderr, "fuzz_snap_rx: group %u ended %llu bytes no sender sent\n",
			h->group, (unsigned long long)h->got);
		CHECK(!"a snapshot ended that no sender sent");
	}
	TRACE("  host: group %u ends %llu (%llu bytes)\n", h->group, (unsigned long long)handle,
	      (unsigned long long)h->got);
	if (F.k.end_err) {
		F.k.end_err = false;
		h->on = false;
		return -EIO;
	}
	F.ends_ok[h->group - 1]++;
	h->ended = true;
	return 0;
}

static void h_snap_abort(void *group, uint64_t handle)
{
	struct hostg *h = group;

	CHECK(h->on && !h->ended);
	CHECK(handle == h->handle);
	TRACE("  host: group %u aborts %llu\n", h->group, (unsigned long long)handle);
	h->heard_ns = F.now;
	h->on = false;
}

static const struct lcr_net_host host = {
	.deliver = h_deliver,
	.failed = h_failed,
	.attach = h_attach,
	.snap_begin = h_snap_begin,
	.snap_write = h_snap_write,
	.snap_end = h_snap_end,
	.snap_abort = h_snap_abort,
};

/* ---- the backend: the transport's datagrams to and from the harness --------------- */

static int be_rx(struct lcr_backend *be, struct lcr_dgram *d, uint32_t max)
{
	(void)be;
	/* What the last burst handed out is the backend's again. */
	F.dq_head = (F.dq_head + F.dq_handed) % DQ_MAX;
	F.dq_len -= F.dq_handed;
	F.dq_handed = 0;
	uint32_t n = F.dq_len < max ? F.dq_len : max;
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *p = &dq[(F.dq_head + i) % DQ_MAX];
		d[i].buf = p->buf;
		d[i].len = p->len;
		d[i].peer = p->peer;
	}
	F.dq_handed = n;
	return (int)n;
}

/* A SNAPSHOT_ACK from the transport. */
static void on_snap_ack(const struct lcr_wire_hdr *h, const uint8_t *p)
{
	struct lcr_wire_snap_ack a;

	CHECK(lcr_wire_decode_snap_ack(p, h->len, &a) == LCR_DROP_NONE);
	CHECK(a.written <= a.credit);
	if (a.status == LCR_SNAP_ST_DONE) {
		CHECK(h->group >= 1 && h->group <= GROUPS);
		F.dones[h->group - 1]++;
		CHECK(F.dones[h->group - 1] <= F.ends_ok[h->group - 1]);
	}
	struct xfer *x = xfer_of(a.xfer);
	TRACE("  ack: xfer %llx status %u written %llu credit %llu\n", (unsigned long long)a.xfer,
	      a.status, (unsigned long long)a.written, (unsigned long long)a.credit);
	if (!x || (int)x->link != link_of(h->group, h->to) || F.forged[h->group - 1])
		return;
	if (a.status == LCR_SNAP_ST_OK) {
		x->began = true;
		CHECK(a.written <= x->size);
	} else if (a.status == LCR_SNAP_ST_DONE) {
		/* (Without an OK first when it came whole in one burst.) */
		CHECK(a.written == x->size);
		x->began = x->done = true;
	} else if (!x->bad) {
		x->bad = true;
		x->bad_status = a.status;
	}
	if (F.clean && a.status != LCR_SNAP_ST_OK && a.status != LCR_SNAP_ST_DONE) {
		/* Nothing was damaged: no chunk can be out of place or wrong. */
		CHECK(a.status != LCR_SNAP_ST_BAD_CRC);
		CHECK(a.status != LCR_SNAP_ST_PROTOCOL);
		if (x->hdr_valid && x->size >= HDR && x->size <= RX_MAX)
			CHECK(a.status != LCR_SNAP_ST_STORAGE);
	}
}

/* Every datagram the transport sends: well formed, from us; acks go to the senders. */
static void on_sent(const struct lcr_dgram *d)
{
	struct lcr_wire_hdr h;

	CHECK(d->len <= F.dgram_max);
	CHECK(lcr_wire_open(d->buf, d->len, CLUSTER, &h) == LCR_DROP_NONE);
	CHECK(h.from == SELF);
	CHECK(h.to == d->peer);
	const uint8_t *p = d->buf + LCR_WIRE_HDR;
	int li = link_of(h.group, h.to);
	switch (h.type) {
	case LCR_WIRE_STREAM_ACK: {
		struct lcr_wire_ack a;
		CHECK(lcr_wire_decode_ack(p, h.len, &a) == LCR_DROP_NONE);
		CHECK(li >= 0);
		if (F.s[li].stx_on)
			lcr_stx_on_ack(&F.s[li].tx, &a, F.now);
		break;
	}
	case LCR_WIRE_SNAPSHOT_ACK:
		CHECK(li >= 0);
		on_snap_ack(&h, p);
		break;
	case LCR_WIRE_SNAPSHOT_RESP:
		break; /* the core's answer, sent by the host's step */
	default:
		CHECK(!"the receiver sent something else");
	}
}

static int be_tx(struct lcr_backend *be, const struct lcr_dgram *d, uint32_t n)
{
	(void)be;
	if (F.k.tx_stall) {
		F.k.tx_stall--;
		return 0;
	}
	for (uint32_t i = 0; i < n; i++)
		on_sent(&d[i]);
	return (int)n;
}

static int be_wait(struct lcr_backend *be, int fd, uint64_t timeout_ns)
{
	(void)be;
	(void)fd;
	(void)timeout_ns;
	return 0;
}

static void be_stats(const struct lcr_backend *be, struct lcr_backend_stats *st)
{
	(void)be;
	memset(st, 0, sizeof(*st));
}

static void be_close(struct lcr_backend *be)
{
	(void)be;
	CHECK(F.be_open);
	F.be_open = false;
}

static const struct lcr_backend_ops be_ops = {
	.rx_burst = be_rx,
	.tx_burst = be_tx,
	.wait = be_wait,
	.stats = be_stats,
	.close = be_close,
};

static struct lcr_backend the_be = { .ops = &be_ops };

/* The socket backend's place (sock.c is not linked): the harness's. */
void lcr_sock_opts_default(struct lcr_sock_opts *o)
{
	memset(o, 0, sizeof(*o));
}

int lcr_sock_open(struct lcr_backend **out, const struct lcr_sock_opts *o, char *why,
		  unsigned why_len)
{
	(void)o;
	(void)why;
	(void)why_len;
	CHECK(!F.be_open);
	F.be_open = true;
	*out = &the_be;
	return 0;
}

/* ---- the loop --------------------------------------------------------------------- */

/* The core's step with an ended receive (the next iteration, as the runtime's). */
static void host_steps(void)
{
	for (uint32_t gi = 0; gi < GROUPS; gi++) {
		struct hostg *h = &hg[gi];
		if (!h->on || !h->ended)
			continue;
		const struct lcr_snapshot_req *q = &h->req.snapshot_req;
		struct lcr_msg r = { .type = LCR_MSG_SNAPSHOT_RESP,
				     .from = SELF,
				     .to = h->req.from };
		r.snapshot_resp.vote = q->vote;
		r.snapshot_resp.last = q->meta.last;
		r.snapshot_resp.stream_id = q->stream_id;
		r.snapshot_resp.inflight_id = q->inflight_id;
		r.snapshot_resp.send_ns = q->send_ns;
		r.snapshot_resp.send_seq = q->send_seq;
		F.in_loop = true;
		lcr_net_send(F.g[gi], &r, F.now);
		F.in_loop = false;
		h->on = h->ended = false;
	}
}

/* One iteration of the node's loop: every datagram waiting, timers, transmit. */
static void iterate(void)
{
	F.in_loop = true;
	lcr_net_poll(F.net, F.now);
	while (F.dq_len > F.dq_handed)
		lcr_net_poll(F.net, F.now);
	lcr_net_tick(F.net, F.now);
	lcr_net_flush(F.net, F.now);
	F.in_loop = false;
	host_steps();
}

static void deliver(const struct pkt *p, uint32_t peer)
{
	if (F.dq_len == DQ_MAX)
		iterate();
	if (F.dq_len == DQ_MAX) {
		F.in_loop = true;
		lcr_net_poll(F.net, F.now); /* hands the last burst back */
		F.in_loop = false;
	}
	CHECK(F.dq_len < DQ_MAX);
	struct pkt *q = &dq[(F.dq_head + F.dq_len) % DQ_MAX];
	memcpy(q->buf, p->buf, p->len);
	q->len = p->len;
	q->peer = peer;
	q->link = p->link;
	F.dq_len++;
}

static void pool_remove(uint32_t i)
{
	pool_free[n_free++] = pool[i];
	memmove(&pool[i], &pool[i + 1], sizeof(pool[0]) * (F.pool_len - i - 1));
	F.pool_len--;
}

static void pool_add(const uint8_t *buf, uint32_t len, uint32_t li)
{
	if (F.pool_len == POOL_MAX)
		pool_remove(0); /* the network loses its oldest */
	struct pkt *p = pool_free[--n_free];
	pool[F.pool_len++] = p;
	CHECK(len <= sizeof(p->buf));
	memcpy(p->buf, buf, len);
	p->len = len;
	p->link = li;
	p->peer = link_node[li];
}

/* What the link's stream has to put on the wire now (new and retransmitted). */
static void transmit(uint32_t li)
{
	struct lcr_dgram_view v;

	while (lcr_stx_next(&F.s[li].tx, F.now, &v))
		pool_add(v.buf, v.len, li);
}

/* Every datagram of the link (LINKS: of all) in the pool, in order. */
static void flow(uint32_t li)
{
	for (uint32_t k = 0; k < LINKS; k++)
		if (li == LINKS || li == k)
			transmit(k);
	for (uint32_t i = 0; i < F.pool_len;) {
		if (li != LINKS && pool[i]->link != li) {
			i++;
			continue;
		}
		deliver(pool[i], pool[i]->peer);
		pool_remove(i);
	}
	iterate();
}

static void stx_ticks(void)
{
	for (uint32_t li = 0; li < LINKS; li++) {
		if (lcr_stx_tick(&F.s[li].tx, F.now) != LCR_STX_UNREACHABLE)
			continue;
		lcr_stx_reset(&F.s[li].tx); /* as udp_tick does */
		F.clean = false;
	}
}

/* ---- the senders -------------------------------------------------------------------- */

static void make_membership(struct input *in, struct lcr_membership *m)
{
	uint8_t voters = (uint8_t)take(in, 1), learners = (uint8_t)take(in, 1);
	uint8_t joint = (uint8_t)take(in, 1);

	memset(m, 0, sizeof(*m));
	m->n_configs = joint & 1 ? 2 : 1;
	for (uint32_t c = 0; c < m->n_configs; c++) {
		uint8_t mask = c == 0 ? voters : (uint8_t)(joint >> 1);
		if (mask == 0)
			mask = 0x07;
		for (uint32_t id = 1; id <= 8; id++)
			if (mask & (1u << (id - 1)))
				m->configs[c].ids[m->configs[c].n++] = id;
	}
	for (uint32_t id = 1; id <= 8; id++)
		if ((learners & (1u << (id - 1))) && !lcr_membership_contains(m, id))
			m->learners[m->n_learners++] = id;
	/* Addresses for the members beyond the three configured peers. */
	for (uint32_t id = 4; id <= 8 && (joint & 0x80); id++)
		if (lcr_membership_contains(m, id)) {
			m->addrs[m->n_addrs].id = id;
			snprintf(m->addrs[m->n_addrs].addr, LCR_NODE_ADDR_MAX, "127.0.0.1:%u",
				 7000 + id);
			m->n_addrs++;
		}
}

static void make_header(struct input *in, struct xfer *x)
{
	uint8_t kind = (uint8_t)take(in, 1);
	struct lcr_snap_meta f;
	struct lcr_membership m;

	memset(&f, 0, sizeof(f));
	x->hdr_valid = false;
	if (kind >= HK_ZERO) {
		memset(x->hdr, 0, HDR);
		return;
	}
	if (kind >= HK_ARBITRARY && kind < HK_FLIPPED) {
		f.membership_len = (uint32_t)take(in, 2) % (LCR_SNAP_MEMBERSHIP_MAX + 1);
		take_bytes(in, f.membership, f.membership_len);
		lcr_rt_mship_stream_hdr(&f, x->hdr);
		return;
	}
	make_membership(in, &m);
	size_t n = lcr_membership_encode(&m, f.membership, sizeof(f.membership));
	CHECK(n > 0);
	f.membership_len = (uint32_t)n;
	lcr_rt_mship_stream_hdr(&f, x->hdr);
	if (kind < HK_ARBITRARY) {
		x->hdr_valid = true;
		return;
	}
	if (kind < HK_BAD_LENGTH) {
		uint32_t at = (uint32_t)take(in, 2) % HDR;
		x->hdr[at] ^= (uint8_t)(take(in, 1) | 1);
		return;
	}
	/* Length 0 or past the header, under a correct CRC. */
	uint32_t len = kind & 1 ? 0 : LCR_SNAP_MEMBERSHIP_MAX + 1 + (uint32_t)take(in, 1);
	memcpy(x->hdr + 8, &len, 4);
	uint32_t crc = lcr_crc32c(0, x->hdr + 8, HDR - 8);
	memcpy(x->hdr + 4, &crc, 4);
}

static void op_begin(struct input *in, uint32_t li)
{
	struct sender *s = &F.s[li];
	uint32_t gi = link_group[li] - 1;

	if (F.n_hist == HIST_MAX)
		return;
	struct xfer *x = &F.hist[F.n_hist];
	memset(x, 0, sizeof(*x));
	x->id = (uint64_t)(li + 1) << 40 | ++F.xfer_seq;
	x->link = li;
	uint8_t sc = (uint8_t)take(in, 1);
	uint64_t data = sc < 96	   ? take(in, 1)
			: sc < 208 ? take(in, 2) % 16384
			: sc < 240 ? take(in, 3) % (DATA_MAX + 1)
			: sc < 244 ? (1u << 20) + take(in, 3) % (BIG_MAX - (1u << 20) + 1)
				   : 0;
	x->size = sc < 244 ? HDR + data : take(in, 2) % HDR; /* no room for the header */
	uint32_t chunk = 1 + (uint32_t)take(in, 2) % CHUNK_MAX;
	if (chunk < x->size / 256 + 1)
		chunk = (uint32_t)(x->size / 256 + 1);
	if (chunk > CHUNK_MAX)
		chunk = CHUNK_MAX;
	/* Older, the same or a newer leadership than the group's last. */
	uint8_t d = (uint8_t)take(in, 1);
	uint64_t term = F.term[gi] + d % 4;
	term = term > 1 ? term - 1 : 1;
	if (term > F.term[gi])
		F.term[gi] = term;
	make_header(in, x);

	struct lcr_wire_snap_begin b;
	memset(&b, 0, sizeof(b));
	b.req.vote.lid.term = term;
	b.req.vote.lid.node = link_node[li];
	b.req.vote.committed = true;
	b.req.meta.last.lid = b.req.vote.lid;
	b.req.meta.last.index = 100 + F.n_hist;
	b.req.meta.id = F.n_hist + 1;
	b.req.stream_id = 1 + F.n_hist;
	b.req.inflight_id = F.n_hist;
	b.req.send_ns = F.now;
	b.req.send_seq = F.n_hist;
	b.req.size = x->size;
	b.xfer = x->id;
	b.chunk_max = chunk;
	size_t len = lcr_wire_encode_snap_begin(scratch, sizeof(scratch), &b);
	CHECK(len > 0);
	int rc = lcr_stx_send(&s->tx, LCR_WIRE_SNAPSHOT_REQ, scratch, (uint32_t)len, F.now);
	TRACE("begin: link %u xfer %llx size %llu chunk %u term %llu header %s%s\n", li,
	      (unsigned long long)x->id, (unsigned long long)x->size, chunk,
	      (unsigned long long)term, x->hdr_valid ? "valid" : "invalid",
	      rc < 0 ? " (window full: not sent)" : "");
	s->cur = (int)F.n_hist;
	s->off = 0;
	s->crc = 0;
	s->chunk = chunk;
	s->last_sent = false;
	F.last_begun = (int)F.n_hist;
	F.n_hist++;
}

/* The sender's next chunk, damaged as `mode` says. False: none sent. */
static bool send_chunk(struct sender *s, uint8_t mode, uint32_t pos, uint8_t flip)
{
	static uint8_t data[CHUNK_MAX];

	if (s->cur < 0 || s->last_sent)
		return false;
	const struct xfer *x = &F.hist[s->cur];
	if (s->off > x->size) {
		s->last_sent = true; /* a forged chunk went past the end: nothing left */
		return false;
	}
	uint64_t left = x->size - s->off;
	uint32_t len = left < s->chunk ? (uint32_t)left : s->chunk;
	content(x, s->off, data, len);
	uint32_t crc = lcr_crc32c(0, data, len);
	uint32_t total = lcr_crc32c(s->crc, data, len);
	bool last = s->off + len == x->size;
	struct lcr_wire_snap_chunk c = { .xfer = x->id,
					 .offset = s->off,
					 .len = len,
					 .crc = crc,
					 .flags = last ? LCR_WIRE_SNAP_LAST : 0,
					 .total_crc = last ? total : 0,
					 .data = data };
	flip |= 1;
	switch (mode) {
	case CM_FLIP_KEEP:
	case CM_FLIP_KEEP + 1:
		if (len)
			data[pos % len] ^= flip;
		break;
	case CM_FLIP_FIX:
	case CM_FLIP_FIX + 1:
		if (len)
			data[pos % len] ^= flip;
		c.crc = lcr_crc32c(0, data, len);
		break;
	case CM_LAST_EARLY:
		c.flags = LCR_WIRE_SNAP_LAST;
		c.total_crc = total;
		break;
	case CM_NO_LAST:
		c.flags = 0;
		c.total_crc = 0;
		break;
	case CM_TOTAL_WRONG:
		if (last)
			c.total_crc ^= flip;
		break;
	case CM_OFFSET_SKEW:
		c.offset = s->off > 0 && (flip & 2) ? s->off - 1 : s->off + 1;
		break;
	case CM_XFER_OTHER:
		c.xfer = F.hist[pos % F.n_hist].id;
		break;
	default:
		break;
	}
	size_t n = lcr_wire_encode_snap_chunk(scratch, sizeof(scratch), &c);
	CHECK(n > 0);
	if (lcr_stx_send(&s->tx, LCR_WIRE_SNAPSHOT_CHUNK, scratch, (uint32_t)n, F.now) < 0)
		return false; /* the window is full: later */
	TRACE("chunk: xfer %llx offset %llu len %u%s mode %u\n", (unsigned long long)x->id,
	      (unsigned long long)s->off, len, last ? " last" : "", mode);
	s->off += len;
	s->crc = total;
	s->last_sent = last;
	return true;
}

static void op_chunks(struct input *in, uint32_t li)
{
	uint8_t b = (uint8_t)take(in, 1);
	uint8_t mode = b >> 3;

	if (mode != CM_NONE && mode < CM_HONEST_FROM && mode >= CM_FLIP_KEEP) {
		uint32_t pos = (uint32_t)take(in, 2);
		uint8_t flip = (uint8_t)take(in, 1);
		F.clean = false;
		if (!send_chunk(&F.s[li], mode, pos, flip))
			return;
	}
	for (uint32_t i = 0; i <= (b & 7u); i++)
		if (!send_chunk(&F.s[li], CM_NONE, 0, 0))
			break;
}

static void op_cancel(struct input *in, uint32_t li)
{
	uint8_t which = (uint8_t)take(in, 1);
	struct sender *s = &F.s[li];
	struct lcr_wire_snap_cancel c = { .xfer = 0 };
	uint8_t buf[LCR_WIRE_HDR + 64];

	if (F.n_hist == 0)
		return;
	struct xfer *x =
		s->cur >= 0 && !(which & 1) ? &F.hist[s->cur] : &F.hist[(which >> 1) % F.n_hist];
	c.xfer = x->id;
	x->exempt = true;
	size_t len =
		lcr_wire_encode_snap_cancel(buf + LCR_WIRE_HDR, sizeof(buf) - LCR_WIRE_HDR, &c);
	CHECK(len > 0);
	struct lcr_wire_hdr h = { .type = LCR_WIRE_SNAPSHOT_CANCEL,
				  .cluster = CLUSTER,
				  .group = link_group[li],
				  .from = link_node[li],
				  .to = SELF,
				  .len = (uint32_t)len,
				  .frag_count = 1 };
	pool_add(buf, (uint32_t)lcr_wire_seal(buf, &h), li);
	F.clean = false;
}

/* Put a changed datagram's header back together and seal it again, if it can be. */
static void reseal(struct pkt *p)
{
	const uint8_t *b = p->buf;
	struct lcr_wire_hdr h;

	if (p->len < LCR_WIRE_HDR)
		return;
	memset(&h, 0, sizeof(h));
	h.type = b[5];
	h.flags = (uint16_t)(b[6] | b[7] << 8);
	memcpy(&h.cluster, b + 8, 8);
	memcpy(&h.group, b + 16, 4);
	memcpy(&h.from, b + 20, 4);
	memcpy(&h.to, b + 24, 4);
	memcpy(&h.len, b + 28, 4);
	memcpy(&h.stream, b + 32, 8);
	memcpy(&h.seq, b + 40, 8);
	memcpy(&h.frag_index, b + 48, 2);
	memcpy(&h.frag_count, b + 50, 2);
	/* What lcr_wire_seal refuses to build goes out with its old CRC. */
	if (h.len > LCR_WIRE_DGRAM_MAX - LCR_WIRE_HDR || h.frag_count == 0 ||
	    h.frag_index >= h.frag_count || (h.stream == 0) != (h.seq == 0))
		return;
	lcr_wire_seal(p->buf, &h);
}

static void op_corrupt(struct input *in)
{
	uint32_t i = (uint32_t)take(in, 1), at = (uint32_t)take(in, 2);
	uint8_t flip = (uint8_t)take(in, 1) | 1, how = (uint8_t)take(in, 1);

	F.clean = false;
	if (F.pool_len == 0)
		return;
	struct pkt *p = pool[i % F.pool_len];
	if (p->len == 0)
		return;
	/* Mostly the payload (the snapshot's messages), sometimes the header. */
	if (how & 2 && p->len > LCR_WIRE_HDR)
		at = LCR_WIRE_HDR + at % (p->len - LCR_WIRE_HDR);
	else
		at %= p->len;
	p->buf[at] ^= flip;
	if (how & 1)
		reseal(p);
}

/* Forged or arbitrary data go to `group` (0: either): its snapshots are not a sender's. */
static void taint(uint32_t group)
{
	for (uint32_t gi = 0; gi < GROUPS; gi++)
		if (group == 0 || group == gi + 1)
			F.forged[gi] = true;
	F.clean = false;
}

static void op_raw_msg(struct input *in, uint32_t li)
{
	static const uint8_t types[8] = { LCR_WIRE_SNAPSHOT_REQ,   LCR_WIRE_SNAPSHOT_REQ,
					  LCR_WIRE_SNAPSHOT_REQ,   LCR_WIRE_SNAPSHOT_CHUNK,
					  LCR_WIRE_SNAPSHOT_CHUNK, LCR_WIRE_SNAPSHOT_CHUNK,
					  LCR_WIRE_APPEND_REQ,	   0 };
	uint8_t t = (uint8_t)take(in, 1);
	uint8_t type = types[t % 8] ? types[t % 8] : (uint8_t)(t >> 3);
	uint32_t len = (uint32_t)take(in, 2) % (RAW_MAX + 1);

	take_bytes(in, scratch, len);
	taint(link_group[li]);
	lcr_stx_send(&F.s[li].tx, type, scratch, len, F.now);
}

static void op_raw_dgram(struct input *in, uint32_t li)
{
	static struct pkt p;
	uint8_t mode = (uint8_t)take(in, 1);
	uint32_t len = (uint32_t)take(in, 2) % (LCR_WIRE_DGRAM_MAX + 1);

	take_bytes(in, p.buf, len);
	p.len = len;
	/* Resealed with the link's addresses it reaches the link's group only;
	 * anything else may name either (its CRC may be right). */
	taint((mode & 3) == 3 && len >= LCR_WIRE_HDR ? link_group[li] : 0);
	if ((mode & 1) && len >= LCR_WIRE_HDR) {
		/* As the link would address it, with the input's type and numbering. */
		uint32_t plen = len - LCR_WIRE_HDR, group = link_group[li], from = link_node[li],
			 to = SELF;
		p.buf[0] = 0x4c; /* magic, version */
		p.buf[1] = 0x43;
		p.buf[2] = 0x52;
		p.buf[3] = 0x57;
		p.buf[4] = LCR_WIRE_VERSION;
		if (mode & 2) {
			uint64_t cluster = CLUSTER;
			memcpy(p.buf + 8, &cluster, 8);
			memcpy(p.buf + 16, &group, 4);
			memcpy(p.buf + 20, &from, 4);
			memcpy(p.buf + 24, &to, 4);
		}
		if (mode & 4)
			memcpy(p.buf + 28, &plen, 4);
		if (mode & 8 && F.s[li].stx_on)
			memcpy(p.buf + 32, &F.s[li].tx.stream, 8);
		reseal(&p);
	}
	pool_add(p.buf, p.len, li);
}

/* A chunk with a correct CRC over data the sender never had (a forger that knows CRC32C). */
static void op_forge(struct input *in, uint32_t li)
{
	static uint8_t data[CHUNK_MAX];
	struct sender *s = &F.s[li];
	uint32_t len = (uint32_t)take(in, 2) % (CHUNK_MAX + 1);
	uint8_t flags = (uint8_t)take(in, 1);

	take_bytes(in, data, len);
	taint(link_group[li]);
	if (s->cur < 0)
		return;
	uint32_t total = lcr_crc32c(s->crc, data, len);
	struct lcr_wire_snap_chunk c = { .xfer = F.hist[s->cur].id,
					 .offset = s->off,
					 .len = len,
					 .crc = lcr_crc32c(0, data, len),
					 .flags = flags & 1 ? LCR_WIRE_SNAP_LAST : 0,
					 .total_crc = flags & 1 ? total : 0,
					 .data = data };
	size_t n = lcr_wire_encode_snap_chunk(scratch, sizeof(scratch), &c);
	if (n == 0 ||
	    lcr_stx_send(&s->tx, LCR_WIRE_SNAPSHOT_CHUNK, scratch, (uint32_t)n, F.now) < 0)
		return;
	s->off += len;
	s->crc = total;
}

static void group_open(uint32_t gi)
{
	uint32_t targets[LINKS], n = 0;
	char why[256] = "";

	for (uint32_t li = 0; li < LINKS; li++)
		if (link_group[li] == gi + 1)
			targets[n++] = link_node[li];
	int rc = lcr_net_group_open(F.net, gi + 1, &hg[gi], targets, n, &F.g[gi], why, sizeof(why));
	if (rc < 0)
		fprintf(stderr, "fuzz_snap_rx: group %u: %s\n", gi + 1, why);
	CHECK(rc == 0);
}

/* The group's clients dropped and made again: a receive under way is aborted, untold. */
static void op_reopen(uint32_t li)
{
	uint32_t gi = link_group[li] - 1;

	for (uint32_t k = 0; k < F.n_hist; k++)
		if (link_group[F.hist[k].link] == gi + 1)
			F.hist[k].exempt = true;
	F.clean = false;
	lcr_net_group_close(F.g[gi]);
	CHECK(!hg[gi].on || hg[gi].ended);
	group_open(gi);
}

static void op_host(struct input *in)
{
	static const int errs[4] = { -EBUSY, -EFBIG, -EIO, -ENOENT };
	uint8_t k = (uint8_t)take(in, 1), v = (uint8_t)take(in, 1);

	switch (k % 6) {
	case 0:
		F.k.begin_err = errs[v % 4];
		F.clean = false;
		break;
	case 1:
		F.k.write_cap = v;
		break;
	case 2:
		F.k.write_stall = v % 16;
		break;
	case 3:
		F.k.write_err = true;
		F.clean = false;
		break;
	case 4:
		F.k.end_err = true;
		F.clean = false;
		break;
	default:
		F.k.tx_stall = v % 4;
		break;
	}
}

static void op_time(struct input *in)
{
	uint32_t v = (uint32_t)take(in, 2);
	uint64_t ms = v & 0x8000 ? (v & 0x7fff) % 20000 : (v & 63);

	F.now += ms * MS;
	F.unpaused = false;
	if (ms * MS >= F.idle_ns / 4)
		F.clean = false;
	stx_ticks();
	iterate();
}

static void step(struct input *in)
{
	uint8_t op = (uint8_t)take(in, 1);
	uint32_t li = (op & 3) % LINKS;
	uint32_t kind = (uint32_t)(op >> 2) % K_COUNT;

	switch (kind) {
	case K_FLOW:
		flow((op & 3) == 3 ? LINKS : li);
		break;
	case K_CHUNKS:
		op_chunks(in, li);
		break;
	case K_BEGIN:
		op_begin(in, li);
		break;
	case K_TRANSMIT:
		transmit(li);
		break;
	case K_DELIVER: {
		uint8_t i = (uint8_t)take(in, 1), how = (uint8_t)take(in, 1);
		if (F.pool_len == 0)
			break;
		struct pkt *p = pool[i % F.pool_len];
		/* From another node's address now and then (the header's `from` must match). */
		deliver(p, how % 8 == 7 ? link_node[(p->link + 1) % LINKS] : p->peer);
		if (how & 8)
			iterate();
		break;
	}
	case K_DROP:
		if (F.pool_len)
			pool_remove((uint32_t)take(in, 1) % F.pool_len);
		break;
	case K_SHUFFLE: {
		/* The link's datagrams in the pool, from the r-th on, then the first r. */
		uint32_t idx[POOL_MAX], n = 0, r = (uint32_t)take(in, 1);
		for (uint32_t i = 0; i < F.pool_len; i++)
			if (pool[i]->link == li)
				idx[n++] = i;
		for (uint32_t k = 0; k < n; k++)
			deliver(pool[idx[(k + r) % n]], pool[idx[(k + r) % n]]->peer);
		for (uint32_t k = n; k-- > 0;)
			pool_remove(idx[k]);
		iterate();
		break;
	}
	case K_CORRUPT:
		op_corrupt(in);
		break;
	case K_CANCEL:
		op_cancel(in, li);
		break;
	case K_RESET:
		lcr_stx_reset(&F.s[li].tx);
		F.clean = false;
		break;
	case K_TIME:
		op_time(in);
		break;
	case K_HOST:
		op_host(in);
		break;
	case K_RAW_MSG:
		op_raw_msg(in, li);
		break;
	case K_RAW_DGRAM:
		op_raw_dgram(in, li);
		break;
	case K_FORGE:
		op_forge(in, li);
		break;
	case K_REOPEN:
		op_reopen(li);
		break;
	default:
		iterate();
		break;
	}
}

/* Whether a transfer the receiver took up still owes its verdict. */
static bool owes(const struct xfer *x)
{
	return x->began && !x->done && !x->bad && !x->exempt && !F.forged[link_group[x->link] - 1];
}

/* Whether the senders or the receiver still have something to do. */
static bool busy(void)
{
	for (uint32_t li = 0; li < LINKS; li++)
		if (lcr_stx_in_flight(&F.s[li].tx) > 0 || (F.s[li].cur >= 0 && !F.s[li].last_sent))
			return true;
	for (uint32_t k = 0; k < F.n_hist; k++)
		if (owes(&F.hist[k]))
			return true;
	return false;
}

/* The clock to the next timer of the senders or the transport (1 to 100 ms on). */
static void advance(void)
{
	uint64_t next = lcr_net_next_timer(F.net);

	for (uint32_t li = 0; li < LINKS; li++) {
		uint64_t t = lcr_stx_next_timer(&F.s[li].tx);
		if (t < next)
			next = t;
	}
	uint64_t step = next > F.now ? next - F.now : MS;
	F.now += step < MS ? MS : step > 100 * MS ? 100 * MS : step;
	stx_ticks();
}

/*
 * The network delivers everything, in order, the senders finish what they
 * send, the node refuses nothing. A receive that began must not go quiet
 * without a verdict: when its group's node has seen nothing of it (no write,
 * no end, no abort) for longer than the idle timeout, the transport has
 * dropped it and said why. Otherwise it goes on until every transfer has
 * its verdict, or for a minute past the idle timeout (a slow recovery is
 * not a failure; a receive that stopped is).
 */
static void finish(void)
{
	memset(&F.k, 0, sizeof(F.k));
	bool all_forged = F.forged[0] && F.forged[1];
	uint64_t end = F.now + (all_forged ? 1000 * MS : 2 * F.idle_ns + 60000 * MS);

	for (uint32_t r = 0; r < 20000 && F.now < end && busy(); r++) {
		for (uint32_t li = 0; li < LINKS; li++)
			while (send_chunk(&F.s[li], CM_NONE, 0, 0)) {
				transmit(li);
				if (F.pool_len >= POOL_MAX / 2)
					flow(LINKS); /* nothing lost on the way */
			}
		flow(LINKS);
		advance();
		for (uint32_t k = 0; k < F.n_hist; k++) {
			const struct xfer *x = &F.hist[k];
			uint64_t quiet = F.now - hg[link_group[x->link] - 1].heard_ns;
			if (!owes(x) || quiet <= F.idle_ns + 300 * MS)
				continue;
			fprintf(stderr,
				"fuzz_snap_rx: transfer %llx (link %u, %llu bytes) began, its node "
				"heard nothing of it for %llu ms, and no verdict came\n",
				(unsigned long long)x->id, x->link, (unsigned long long)x->size,
				(unsigned long long)(quiet / MS));
			CHECK(!"a receive went quiet without a verdict");
		}
	}
	if (trace) {
		static char m[16384];
		if (lcr_net_metrics_json(F.net, m, sizeof(m)) > 0)
			fprintf(stderr, "finish at %llu ms: %s\n", (unsigned long long)(F.now / MS),
				m);
		for (uint32_t li = 0; li < LINKS; li++)
			fprintf(stderr,
				"finish: link %u: in flight %u, next seq %llu, acked %llu, "
				"retransmits %llu, timeouts %llu, unreachable %llu\n",
				li, lcr_stx_in_flight(&F.s[li].tx),
				(unsigned long long)F.s[li].tx.next_seq,
				(unsigned long long)F.s[li].tx.acked,
				(unsigned long long)F.s[li].tx.st.retransmits,
				(unsigned long long)F.s[li].tx.st.timeouts,
				(unsigned long long)F.s[li].tx.st.unreachable);
	}
	/* An honest run without pauses: the last transfer, once taken up and
	 * given its verdict, ended (or a later begin of another sender,
	 * delivered after it, replaced it). */
	if (F.clean && F.unpaused && F.last_begun >= 0) {
		const struct xfer *x = &F.hist[F.last_begun];
		bool judged = x->began && x->hdr_valid && x->size >= HDR && !owes(x);
		if (judged && !x->done && x->bad_status != LCR_SNAP_ST_SUPERSEDED)
			fprintf(stderr, "fuzz_snap_rx: the last transfer %llx did not end (%u)\n",
				(unsigned long long)x->id, x->bad_status);
		if (judged)
			CHECK(x->done || x->bad_status == LCR_SNAP_ST_SUPERSEDED);
	}
}

static void run(struct input *in)
{
	static const uint32_t idle_ms[4] = { 100, 300, 1000, 5000 };
	static const struct lcr_peer_addr peers[3] = { { 1, "127.0.0.1", 7001 },
						       { 2, "127.0.0.1", 7002 },
						       { 3, "127.0.0.1", 7003 } };
	struct lcr_allocator alloc = { .alloc = count_alloc, .free = count_free, .ctx = NULL };
	struct lcr_net_config nc;
	char why[256] = "";

	memset(&F, 0, sizeof(F));
	for (n_free = 0; n_free < POOL_MAX; n_free++)
		pool_free[n_free] = &pool_slots[n_free];
	for (uint32_t gi = 0; gi < GROUPS; gi++) {
		hg[gi].group = gi + 1;
		hg[gi].on = hg[gi].ended = false;
		hg[gi].heard_ns = 0;
	}
	F.now = 1000 * MS;
	F.last_begun = -1;
	F.clean = F.unpaused = true;

	uint8_t cfg = (uint8_t)take(in, 1);
	lcr_udp_config_default(&F.uc);
	F.uc.mtu = 576 + (cfg & 15) * 61; /* 576..1491 */
	F.uc.snapshot_rx_max = 1 + (cfg >> 4 & 1);
	F.uc.snapshot_size_max = cfg & 0x20 ? HDR + 4096 : 0;
	F.uc.snapshot_idle_ms = idle_ms[cfg >> 6];
	F.dgram_max = F.uc.mtu - 28;
	F.idle_ns = F.uc.snapshot_idle_ms * MS;
	lcr_udp_factory(&F.f, &F.uc);
	lcr_net_config_default(&nc, SELF, 50, 150, 64, 200);
	nc.groups_max = GROUPS;
	nc.alloc = alloc;
	struct lcr_net_env env = { .self = SELF,
				   .cluster = CLUSTER,
				   .lcore = 0,
				   .n_lcores = 1,
				   .n_peers = 3,
				   .peers = peers,
				   .alloc = alloc };
	int rc = lcr_net_open(&F.net, &F.f, &env, &nc, &host, why, sizeof(why));
	if (rc < 0)
		fprintf(stderr, "fuzz_snap_rx: open: %s\n", why);
	CHECK(rc == 0);
	for (uint32_t gi = 0; gi < GROUPS; gi++)
		group_open(gi);
	for (uint32_t li = 0; li < LINKS; li++) {
		struct lcr_stream_opts so;
		lcr_stream_opts_default(&so);
		so.dgram_max = F.dgram_max;
		so.window = 512;
		so.alloc = alloc;
		CHECK(lcr_stx_init(&F.s[li].tx, &so, CLUSTER, link_group[li], link_node[li],
				   SELF) == 0);
		F.s[li].stx_on = true;
		F.s[li].cur = -1;
	}

	for (uint32_t n = 0; n < STEPS_MAX && in->n > 0; n++)
		step(in);
	finish();

	lcr_net_close(F.net);
	for (uint32_t gi = 0; gi < GROUPS; gi++)
		CHECK(!hg[gi].on || hg[gi].ended); /* every receive ended or was aborted */
	for (uint32_t li = 0; li < LINKS; li++)
		lcr_stx_free(&F.s[li].tx);
	CHECK(!F.be_open);
	CHECK(F.allocs == F.frees);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };

	trace = getenv("FUZZ_SNAP_TRACE") != NULL;
	run(&in);
	return 0;
}

/* ---- seed scripts ------------------------------------------------------------------ */

#ifdef LCR_FUZZ_STANDALONE
struct script {
	uint8_t b[65536];
	size_t n;
};

static void sb(struct script *s, uint32_t v)
{
	CHECK(s->n < sizeof(s->b));
	s->b[s->n++] = (uint8_t)v;
}

static void sb2(struct script *s, uint32_t v)
{
	sb(s, v >> 8);
	sb(s, v & 0xff);
}

static void op(struct script *s, uint32_t kind, uint32_t li)
{
	sb(s, kind << 2 | li);
}

/* BEGIN with `data` bytes (< 16384), chunks of `chunk` (<= 4096), a valid header. */
static void s_begin(struct script *s, uint32_t li, uint32_t data, uint32_t chunk, uint32_t dterm)
{
	op(s, K_BEGIN, li);
	sb(s, 100); /* data: two bytes, % 16384 */
	sb2(s, data);
	sb2(s, chunk - 1);
	sb(s, dterm);
	sb(s, HK_VALID);
	sb(s, 0x07); /* voters 1, 2, 3 */
	sb(s, 0x08); /* learner 4 */
	sb(s, 0x80); /* one config, with addresses */
}

static void s_chunks(struct script *s, uint32_t li, uint32_t count, uint32_t mode)
{
	op(s, K_CHUNKS, li);
	sb(s, mode << 3 | (count - 1));
	if (mode != CM_NONE && mode < CM_HONEST_FROM && mode >= CM_FLIP_KEEP) {
		sb2(s, 17);
		sb(s, 0x40);
	}
}

/* A whole transfer's chunks, `per` at a time, each batch delivered in order. */
static void s_send_all(struct script *s, uint32_t li, uint32_t data, uint32_t chunk, uint32_t per)
{
	uint32_t chunks = (HDR + data + chunk - 1) / chunk;
	for (uint32_t k = 0; k < chunks; k += per) {
		s_chunks(s, li, per, CM_NONE);
		op(s, K_FLOW, li);
	}
}

static void save(const char *dir, const char *name, const struct script *s)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(s->b, 1, s->n, f) == s->n);
	CHECK(fclose(f) == 0);
}

#define N_SEEDS 14

/* Seed `i`: its script into *s, its name returned. */
static const char *seed(uint32_t i, struct script *s)
{
	s->n = 0;
	switch (i) {
	case 0: /* one transfer, in order */
		sb(s, 0x0f | 0x40);
		s_begin(s, 0, 3000, 1000, 1);
		op(s, K_FLOW, 0);
		s_send_all(s, 0, 3000, 1000, 2);
		op(s, K_ITERATE, 0);
		return "snap-in-order";
	case 1: /* two groups at once; node 3 then replaces node 2's in group 1 */
		sb(s, 0x10 | 0x40 | 0x05);
		s_begin(s, 0, 5000, 900, 1);
		s_begin(s, 2, 2500, 700, 1);
		op(s, K_FLOW, 3);
		s_chunks(s, 0, 3, CM_NONE);
		s_chunks(s, 2, 3, CM_NONE);
		op(s, K_FLOW, 3);
		s_begin(s, 1, 1200, 600, 2);
		op(s, K_FLOW, 3);
		s_send_all(s, 1, 1200, 600, 2);
		s_send_all(s, 2, 2500, 700, 3);
		op(s, K_FLOW, 3);
		return "snap-two-senders";
	case 2: /* reordered, duplicated and lost datagrams, retransmitted */
		sb(s, 0x80 | 0x03);
		s_begin(s, 0, 6000, 1500, 1);
		op(s, K_FLOW, 0);
		s_chunks(s, 0, 6, CM_NONE);
		op(s, K_TRANSMIT, 0);
		op(s, K_DROP, 0);
		sb(s, 2);
		op(s, K_DELIVER, 0);
		sb(s, 3);
		sb(s, 0);
		op(s, K_DELIVER, 0);
		sb(s, 3);
		sb(s, 8);
		op(s, K_SHUFFLE, 0);
		sb(s, 2);
		op(s, K_TIME, 0);
		sb2(s, 40);
		op(s, K_FLOW, 0);
		return "snap-reordered";
	case 3: /* a data byte flipped under the chunk's old CRC */
		sb(s, 0x40);
		s_begin(s, 0, 3000, 1000, 1);
		op(s, K_FLOW, 0);
		s_chunks(s, 0, 1, CM_NONE);
		s_chunks(s, 0, 1, CM_FLIP_KEEP);
		op(s, K_FLOW, 0);
		s_send_all(s, 0, 3000, 1000, 2);
		return "snap-bad-chunk-crc";
	case 4: /* a data byte flipped, the chunk's CRC made to match: the total catches it */
		sb(s, 0x40);
		s_begin(s, 0, 3000, 1000, 1);
		op(s, K_FLOW, 0);
		s_chunks(s, 0, 3, CM_NONE); /* the stream's header */
		op(s, K_FLOW, 0);
		s_chunks(s, 0, 1, CM_FLIP_FIX);
		op(s, K_FLOW, 0);
		s_send_all(s, 0, 3000, 1000, 2);
		return "snap-bad-total-crc";
	case 5: /* cancelled, then a silent sender times out */
		sb(s, 0x00);
		s_begin(s, 0, 2000, 1000, 1);
		op(s, K_FLOW, 0);
		s_chunks(s, 0, 1, CM_NONE);
		op(s, K_CANCEL, 0);
		sb(s, 0);
		op(s, K_FLOW, 0);
		s_begin(s, 2, 2000, 1000, 1);
		op(s, K_FLOW, 2);
		op(s, K_TIME, 0);
		sb2(s, 0x8000 | 400);
		return "snap-cancel-timeout";
	case 6: /* a slow disk: small writes, stalls, a full socket */
		sb(s, 0x40 | 0x0a);
		op(s, K_HOST, 0);
		sb(s, 1);
		sb(s, 100);
		op(s, K_HOST, 0);
		sb(s, 2);
		sb(s, 9);
		op(s, K_HOST, 0);
		sb(s, 5);
		sb(s, 2);
		s_begin(s, 0, 12000, 4096, 1);
		op(s, K_FLOW, 0);
		s_send_all(s, 0, 12000, 4096, 1);
		return "snap-slow-host";
	case 7: /* stream headers: damaged, arbitrary membership bytes, none */
		sb(s, 0x40);
		s_begin(s, 0, 100, 800, 1);
		s->b[s->n - 4] = HK_FLIPPED;
		sb2(s, 9);
		sb(s, 4);
		op(s, K_FLOW, 0);
		s_send_all(s, 0, 100, 800, 4);
		op(s, K_BEGIN, 2);
		sb(s, 10); /* one byte of data */
		sb(s, 0);
		sb2(s, 999);
		sb(s, 1);
		sb(s, HK_ARBITRARY);
		sb2(s, 20); /* one config of nodes 5 and 6, no learners */
		for (uint32_t k = 0; k < 20; k++)
			sb(s, k == 0 ? 1 : k == 4 ? 2 : k == 8 ? 5 : k == 12 ? 6 : 0);
		op(s, K_FLOW, 2);
		s_send_all(s, 2, 1, 1000, 3);
		return "snap-headers";
	case 8: /* a datagram changed on the way and its header CRC fixed */
		sb(s, 0x40);
		s_begin(s, 0, 4000, 1000, 1);
		op(s, K_FLOW, 0);
		s_chunks(s, 0, 3, CM_NONE);
		op(s, K_TRANSMIT, 0);
		op(s, K_CORRUPT, 0);
		sb(s, 1);
		sb2(s, 300);
		sb(s, 0x10);
		sb(s, 3);
		op(s, K_FLOW, 0);
		s_send_all(s, 0, 4000, 1000, 2);
		return "snap-resealed";
	case 9: /* raw bytes as messages and datagrams; a forged chunk */
		sb(s, 0x40);
		s_begin(s, 0, 500, 1000, 1);
		op(s, K_FLOW, 0);
		op(s, K_RAW_MSG, 0);
		sb(s, 3);
		sb2(s, 40);
		for (uint32_t k = 0; k < 40; k++)
			sb(s, k < 8 ? 0x11 : k);
		op(s, K_RAW_DGRAM, 0);
		sb(s, 15);
		sb2(s, 80);
		for (uint32_t k = 0; k < 80; k++)
			sb(s, k == 5 ? LCR_WIRE_SNAPSHOT_CANCEL : k == 50 ? 1 : 0);
		op(s, K_FORGE, 0);
		sb2(s, 64);
		sb(s, 0);
		for (uint32_t k = 0; k < 64; k++)
			sb(s, 0xaa);
		op(s, K_FLOW, 0);
		s_send_all(s, 0, 500, 1000, 2);
		return "snap-raw";
	case 10: /* the group's clients dropped under a receive; the node refuses */
		sb(s, 0x40 | 0x10);
		s_begin(s, 0, 3000, 1000, 1);
		op(s, K_FLOW, 0);
		s_chunks(s, 0, 2, CM_NONE);
		op(s, K_FLOW, 0);
		op(s, K_REOPEN, 0);
		s_send_all(s, 0, 3000, 1000, 2);
		op(s, K_HOST, 0);
		sb(s, 4);
		sb(s, 0);
		s_begin(s, 1, 200, 1000, 2);
		op(s, K_FLOW, 1);
		s_send_all(s, 1, 200, 1000, 4);
		return "snap-reopen-refused";
	case 12: /* over a quarter of the receive buffer, the node slow to take it */
		sb(s, 0x40 | 0x0f);
		op(s, K_HOST, 0);
		sb(s, 1);
		sb(s, 200);
		op(s, K_BEGIN, 0);
		sb(s, 240); /* 1 MiB and three bytes more */
		sb(s, 0x01);
		sb2(s, 0x0000);
		sb2(s, 4095);
		sb(s, 1);
		sb(s, HK_VALID);
		sb(s, 0x07);
		sb(s, 0x00);
		sb(s, 0x00);
		op(s, K_FLOW, 0);
		for (uint32_t k = 0; k < 40; k++) {
			s_chunks(s, 0, 8, CM_NONE);
			op(s, K_FLOW, 0);
		}
		return "snap-big";
	case 13: /* 513 datagrams put on the network at once: it keeps the last 256 */
		sb(s, 0x80 | 0x03);
		op(s, K_BEGIN, 0);
		sb(s, 228); /* 225,280 bytes of data */
		sb(s, 0x17);
		sb2(s, 0x7005);
		sb2(s, 0x8308); /* chunks of 889: two datagrams each at this mtu */
		sb(s, 1);
		sb(s, HK_VALID);
		sb(s, 0x07);
		sb(s, 0x00);
		sb(s, 0x00);
		for (uint32_t k = 0; k < 40; k++) {
			s_chunks(s, 0, 8, CM_NONE);
			op(s, K_TRANSMIT, 0);
		}
		op(s, K_FLOW, 0);
		return "snap-loss-recovery";
	default: /* a larger transfer, in chunks of 4 KiB */
		sb(s, 0x40 | 0x0f);
		op(s, K_BEGIN, 2);
		sb(s, 230); /* three bytes of size */
		sb(s, 0x03);
		sb2(s, 0x0000);
		sb2(s, 4095);
		sb(s, 1);
		sb(s, HK_VALID);
		sb(s, 0x03);
		sb(s, 0x00);
		sb(s, 0x00);
		op(s, K_FLOW, 2);
		for (uint32_t k = 0; k < 60; k++) {
			s_chunks(s, 2, 8, CM_NONE);
			op(s, K_FLOW, 2);
		}
		return "snap-large";
	}
}

static int write_seeds(const char *dir)
{
	struct script s;
	char name[128];

	for (uint32_t i = 0; i < N_SEEDS; i++) {
		const char *n = seed(i, &s);
		save(dir, n, &s);
		/* Cut short: the transfer stops halfway (the finish completes it). */
		if (i == 0 || i == 2 || i == 6) {
			struct script t = s;
			t.n = s.n / 2;
			snprintf(name, sizeof(name), "%s-truncated", n);
			save(dir, name, &t);
		}
	}
	printf("fuzz_snap_rx: %u seeds and 3 truncated ones in %s\n", N_SEEDS, dir);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--seeds") == 0)
		return write_seeds(argv[2]);
	if (argc > 1 && (argv[1][0] < '0' || argv[1][0] > '9')) {
		static struct script r;
		return fuzz_replay("fuzz_snap_rx", argc - 1, argv + 1, LLVMFuzzerTestOneInput, r.b,
				   sizeof(r.b));
	}
	unsigned long runs = argc > 1 ? strtoul(argv[1], NULL, 10) : 200;
	static struct script s;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (unsigned long n_run = 0; n_run < runs; n_run++) {
		if (n_run % 2 == 0) {
			/* A seed with a few bytes changed, maybe cut. */
			seed((uint32_t)(fuzz_next(&x) % N_SEEDS), &s);
			fuzz_mutate(&x, s.b, &s.n);
		} else {
			s.n = fuzz_random_input(&x, s.b, 2048);
		}
		LLVMFuzzerTestOneInput(s.b, s.n);
	}
	printf("fuzz_snap_rx: %lu runs (seed scripts changed, random bytes); no snapshot ended "
	       "that a sender did not send\n",
	       runs);
	return 0;
}
#endif
