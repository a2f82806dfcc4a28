/* Fuzz the stream receiver: any order of datagrams delivers each message once, in order, whole. */
/*
 * The receiving side of a pipelined stream (dpdk-net/stream.c) sees whatever
 * the network does to the datagrams of its senders: loss, reordering,
 * duplication, late datagrams of streams it already left, and forgeries that
 * passed the header check. The input is a schedule of such datagrams,
 * checked against a model of the senders:
 *
 *   - Honest streams (a few ids that grow, as a sender's resets make them)
 *     carry numbered messages cut into fragments of consecutive sequence
 *     numbers, as lcr_stx_send() cuts them. Each message says which stream
 *     and number it is and carries a pattern over its whole length, so a
 *     delivered message is checked to be one the model sent, whole (every
 *     fragment, in order), and later than the last one delivered of its
 *     stream: never twice, never out of order.
 *   - Forged datagrams use other stream ids and arbitrary header fields.
 *     Their payloads are 8-byte records of their own fragment numbering, so
 *     a message gathered from them is checked to consist of fragments
 *     0..k-1 of one count k.
 *
 * Memory is bounded: every allocation happens in lcr_srx_init (a counting
 * allocator checks that none happens after), and the acknowledgement never
 * reports more than the window holds. At the end the receiver's current
 * stream, if honest, gets its remaining datagrams in order and must then
 * deliver its last message (liveness).
 *
 * Built for libFuzzer with clang (LLVMFuzzerTestOneInput), and with
 * -DLCR_FUZZ_STANDALONE as a plain program that feeds N seeded random inputs,
 * so gcc builds and CI run it too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "wire.h"
#include "fuzz_input.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz_stream: check failed: %s (%s:%d)\n", #x, __FILE__,   \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define STREAMS	     4	  /* honest streams */
#define MSGS_MAX     256  /* messages per honest stream */
#define DGRAMS_MAX   2048 /* datagrams per honest stream */
#define MSG_HDR	     12	  /* magic, stream, type, number (u32), length (u32) */
#define MAGIC	     0xa5
#define FORGED_TAG   0x00 /* first byte of every forged payload */
#define FORGED_BYTES 8	  /* tag, frag_index, frag_count (u16 each), seq (u16), id byte */
#define STEPS_MAX    4096

/* An honest stream: its id and its messages cut into datagrams. */
struct model_stream {
	uint64_t id;
	uint32_t n_msgs;
	uint32_t msg_len[MSGS_MAX];
	uint64_t msg_first[MSGS_MAX]; /* seq of its first fragment */
	uint32_t n_dgrams;	      /* seqs 1..n_dgrams */
	uint32_t dg_msg[DGRAMS_MAX + 1];
	uint16_t dg_index[DGRAMS_MAX + 1], dg_count[DGRAMS_MAX + 1];
	int64_t last_delivered; /* message number, -1: none */
	uint32_t delivered;	/* messages delivered */
};

struct model {
	struct lcr_stream_opts o;
	uint32_t per; /* payload bytes per fragment */
	struct model_stream s[STREAMS];
	uint64_t forged_delivered;
	uint64_t forged_ids; /* new forged ids made so far */
	uint32_t in_deliver; /* the callback is not re-entered */
};

static struct model m;
static uint8_t payload[LCR_WIRE_DGRAM_MAX];
static long allocs, frees;
static bool after_init;
static bool trace; /* FUZZ_STREAM_TRACE set: every datagram and what became of it */

static void *count_alloc(void *ctx, size_t size)
{
	(void)ctx;
	CHECK(!after_init); /* nothing allocates after init */
	allocs++;
	return malloc(size);
}

static void count_free(void *ctx, void *p)
{
	(void)ctx;
	frees++;
	free(p);
}

/* The pattern byte at `off` of message `k` of stream `s`. */
static uint8_t pattern(uint32_t s, uint32_t k, uint32_t off)
{
	return (uint8_t)(off * 7 + k * 13 + s * 101 + (off >> 8));
}

static void msg_bytes(uint32_t s, uint32_t k, uint8_t type, uint32_t len, uint32_t off,
		      uint8_t *out, uint32_t n)
{
	uint8_t hdr[MSG_HDR] = { MAGIC,
				 (uint8_t)s,
				 type,
				 0,
				 (uint8_t)k,
				 (uint8_t)(k >> 8),
				 (uint8_t)(k >> 16),
				 (uint8_t)(k >> 24),
				 (uint8_t)len,
				 (uint8_t)(len >> 8),
				 (uint8_t)(len >> 16),
				 (uint8_t)(len >> 24) };

	for (uint32_t i = 0; i < n; i++) {
		uint32_t at = off + i;
		out[i] = at < MSG_HDR ? hdr[at] : pattern(s, k, at);
	}
}

static uint8_t msg_type(uint32_t k)
{
	static const uint8_t types[] = { LCR_WIRE_APPEND_REQ, LCR_WIRE_SNAPSHOT_REQ,
					 LCR_WIRE_SNAPSHOT_CHUNK };
	return types[k % 3];
}

/* Cut the messages of one honest stream, their lengths from the input. */
static void build_stream(struct input *in, uint32_t s, uint64_t id)
{
	struct model_stream *ms = &m.s[s];
	uint32_t n = 1 + (uint32_t)take(in, 1) % 64;

	memset(ms, 0, sizeof(*ms));
	ms->id = id;
	ms->last_delivered = -1;
	for (uint32_t k = 0; k < n; k++) {
		uint8_t sel = (uint8_t)take(in, 1);
		uint32_t len = MSG_HDR + (sel < 160   ? sel % 32
					  : sel < 240 ? (uint32_t)take(in, 1) * 4
						      : (uint32_t)take(in, 2) % (8 * m.per));
		uint32_t count = (len + m.per - 1) / m.per;

		if (ms->n_dgrams + count > DGRAMS_MAX)
			break;
		ms->msg_len[k] = len;
		ms->msg_first[k] = ms->n_dgrams + 1;
		for (uint32_t i = 0; i < count; i++) {
			uint32_t seq = ++ms->n_dgrams;
			ms->dg_msg[seq] = k;
			ms->dg_index[seq] = (uint16_t)i;
			ms->dg_count[seq] = (uint16_t)count;
		}
		ms->n_msgs = k + 1;
	}
}

/* A delivered message of an honest stream: one the model sent, whole, in order. */
static void check_honest(const struct lcr_srx *r, uint8_t type, const uint8_t *p, uint32_t len)
{
	CHECK(len >= MSG_HDR);
	uint32_t s = p[1];
	CHECK(s < STREAMS);
	struct model_stream *ms = &m.s[s];
	uint32_t k =
		(uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
	CHECK(k < ms->n_msgs);
	CHECK(ms->id == r->stream); /* only the current stream's */
	CHECK(type == msg_type(k) && p[2] == type);
	CHECK(len == ms->msg_len[k]); /* every fragment, none twice */
	static uint8_t want[LCR_WIRE_MSG_MAX];
	msg_bytes(s, k, type, len, 0, want, len);
	CHECK(memcmp(want, p, len) == 0); /* in their order */
	if ((int64_t)k <= ms->last_delivered)
		fprintf(stderr,
			"fuzz_stream: stream %u (id %llu): message %u delivered after %lld\n", s,
			(unsigned long long)ms->id, k, (long long)ms->last_delivered);
	CHECK((int64_t)k > ms->last_delivered); /* never twice, never out of order */
	ms->last_delivered = k;
	ms->delivered++;
}

/* A message gathered from forged datagrams: fragments 0..k-1, each of count k. */
static void check_forged(const uint8_t *p, uint32_t len)
{
	CHECK(len % FORGED_BYTES == 0);
	uint32_t k = len / FORGED_BYTES;
	CHECK(k >= 1);
	for (uint32_t i = 0; i < k; i++) {
		const uint8_t *f = p + (size_t)i * FORGED_BYTES;
		uint32_t idx = f[1] | (uint32_t)f[2] << 8, cnt = f[3] | (uint32_t)f[4] << 8;

		CHECK(f[0] == FORGED_TAG);
		CHECK(idx == i);
		if (cnt != k)
			fprintf(stderr,
				"fuzz_stream: a message of %u forged fragments has fragment %u of "
				"%u at place %u\n",
				k, idx, cnt, i);
		CHECK(cnt == k);
	}
	m.forged_delivered++;
}

static void on_msg(void *ctx, uint8_t type, const uint8_t *p, uint32_t len)
{
	const struct lcr_srx *r = ctx;

	CHECK(m.in_deliver == 0);
	m.in_deliver++;
	CHECK(len <= LCR_WIRE_MSG_MAX);
	if (len > 0 && p[0] == MAGIC)
		check_honest(r, type, p, len);
	else if (len > 0)
		check_forged(p, len);
	m.in_deliver--;
}

/* The receiver's state after every datagram: acks within the window. */
static void check_receiver(struct lcr_srx *r)
{
	struct lcr_wire_ack a;

	CHECK(r->msg_len <= LCR_WIRE_MSG_MAX);
	CHECK(r->delivered < LCR_NUMBER_MAX);
	if (!lcr_srx_ack_due(r))
		return;
	lcr_srx_make_ack(r, &a);
	CHECK(a.stream == r->stream);
	CHECK(a.cum == r->delivered);
	CHECK(a.window == r->o.window);
	/* The next one is never held: it would have been taken. */
	CHECK(!r->slots[(r->delivered + 1) % r->o.window].present);
	CHECK(!lcr_srx_ack_due(r));
}

static uint32_t send_honest(struct lcr_srx *r, uint32_t s, uint64_t seq, bool retransmit)
{
	struct model_stream *ms = &m.s[s];
	uint32_t k = ms->dg_msg[seq];
	uint16_t idx = ms->dg_index[seq];
	uint32_t off = idx * m.per;
	uint32_t n = ms->msg_len[k] - off < m.per ? ms->msg_len[k] - off : m.per;
	struct lcr_wire_hdr h = { .type = msg_type(k),
				  .flags = retransmit ? LCR_WIRE_F_RETRANSMIT : 0,
				  .len = n,
				  .stream = ms->id,
				  .seq = seq,
				  .frag_index = idx,
				  .frag_count = ms->dg_count[seq] };

	msg_bytes(s, k, h.type, ms->msg_len[k], off, payload, n);
	uint32_t why = lcr_srx_on_dgram(r, &h, payload, on_msg, r);
	if (trace)
		fprintf(stderr,
			"stream %u seq %llu (message %u, fragment %u of %u): %u, now on %llu at "
			"%llu\n",
			s, (unsigned long long)seq, k, idx, h.frag_count, why,
			(unsigned long long)r->stream, (unsigned long long)r->delivered);
	return why;
}

/* A forged datagram: an id no honest stream has, any numbering. */
static void send_forged(struct lcr_srx *r, struct input *in)
{
	uint8_t sel = (uint8_t)take(in, 1);
	struct lcr_wire_hdr h = { .type = msg_type((uint32_t)take(in, 1)) };

	switch (sel % 8) {
	case 0:
		h.stream = take(in, 8);
		break;
	case 1:
		h.stream = lcr_stream_id_max() + (sel >> 3) % 3 - 1;
		break;
	case 2:
		/* 0 and small ids, or a new id above every honest one each time
		 * (a forger walking up: the receiver forgets honest streams). */
		h.stream = sel & 0x08 ? sel >> 4 : ((uint64_t)(STREAMS + 1) << 24) + ++m.forged_ids;
		break;
	default:
		/* Just beside an honest one, so above, below or between them. */
		h.stream =
			m.s[(sel >> 3) % STREAMS].id + (sel & 0x80 ? 1 : -1) * (1 + (sel >> 5) % 2);
		break;
	}
	for (uint32_t s = 0; s < STREAMS; s++)
		if (h.stream == m.s[s].id)
			h.stream++;
	uint8_t kind = (uint8_t)take(in, 1);
	h.seq = kind < 200   ? 1 + take(in, 1) % 80
		: kind < 240 ? take(in, 8)
			     : LCR_NUMBER_MAX - 1 + kind % 3;
	h.frag_count = (uint16_t)(kind & 1 ? 1 + take(in, 1) % 4 : take(in, 2));
	h.frag_index = (uint16_t)(kind & 2 ? take(in, 1) % 4 : take(in, 2));
	h.len = FORGED_BYTES;
	if ((kind & 0x1c) == 0x1c)
		h.len = m.per + 1 + (uint32_t)take(in, 1) % 2; /* over the fragment size */
	memset(payload, 0xff, h.len);
	payload[0] = FORGED_TAG;
	payload[1] = (uint8_t)h.frag_index;
	payload[2] = (uint8_t)(h.frag_index >> 8);
	payload[3] = (uint8_t)h.frag_count;
	payload[4] = (uint8_t)(h.frag_count >> 8);
	payload[5] = (uint8_t)h.seq;
	payload[6] = (uint8_t)(h.seq >> 8);
	payload[7] = (uint8_t)h.stream;
	uint32_t why = lcr_srx_on_dgram(r, &h, payload, on_msg, r);
	if (h.len > m.per || h.stream == 0 || h.seq == 0 || h.frag_count == 0 ||
	    h.frag_index >= h.frag_count)
		CHECK(why == LCR_DROP_FRAGMENT);
	else if (h.seq >= LCR_NUMBER_MAX)
		CHECK(why == LCR_DROP_SEQ_RANGE);
}

/* Which honest stream the receiver is on, or -1. */
static int current(const struct lcr_srx *r)
{
	for (int s = 0; s < STREAMS; s++)
		if (r->stream == m.s[s].id)
			return s;
	return -1;
}

/* The current honest stream's remaining datagrams in order: its last message arrives. */
static void finish(struct lcr_srx *r)
{
	int s = current(r);

	if (s < 0)
		return;
	struct model_stream *ms = &m.s[s];
	uint32_t last = ms->n_msgs - 1;
	uint64_t from = r->delivered + 1;
	if (ms->n_msgs == 0 || ms->msg_first[last] < from)
		return; /* the last one was delivered, lost or cut already */
	for (uint64_t seq = from; seq <= ms->n_dgrams; seq++)
		send_honest(r, (uint32_t)s, seq, true);
	CHECK(r->stream == ms->id);
	CHECK(ms->last_delivered == (int64_t)last);
}

static void run(struct input *in)
{
	struct lcr_srx r;
	uint8_t cfg = (uint8_t)take(in, 1);
	uint64_t high[STREAMS] = { 0 }; /* highest seq sent of each honest stream */

	lcr_stream_opts_default(&m.o);
	m.o.window = cfg & 0x80 ? 1024 : 16 + (uint32_t)take(in, 1) % 112;
	m.o.dgram_max = LCR_WIRE_HDR + 64 + (cfg & 0x40 ? (uint32_t)take(in, 2) % 1500 : 0);
	m.o.alloc.alloc = count_alloc;
	m.o.alloc.free = count_free;
	m.o.alloc.ctx = NULL;
	m.per = m.o.dgram_max - LCR_WIRE_HDR;
	m.forged_delivered = 0;
	m.forged_ids = 0;
	bool forge = cfg & 0x20;
	for (uint32_t s = 0; s < STREAMS; s++)
		build_stream(in, s, ((uint64_t)(s + 1) << 24) + s);

	allocs = frees = 0;
	after_init = false;
	CHECK(lcr_srx_init(&r, &m.o) == 0);
	after_init = true;

	for (uint32_t step = 0; step < STEPS_MAX && in->n > 0; step++) {
		uint8_t op = (uint8_t)take(in, 1);
		uint32_t s = op & 3;
		struct model_stream *ms = &m.s[s];

		if (forge && (op & 0xe0) == 0xe0) {
			send_forged(&r, in);
		} else if (op & 0x80) {
			/* Around the highest sent: a duplicate, a late or an early one. */
			int64_t d = (int64_t)(take(in, 1) % 48) - 24;
			int64_t seq = (int64_t)high[s] + d;

			if (seq < 1)
				seq = 1;
			if (seq > (int64_t)ms->n_dgrams)
				seq = ms->n_dgrams;
			if (seq >= 1) {
				send_honest(&r, s, (uint64_t)seq, true);
				if ((uint64_t)seq > high[s])
					high[s] = (uint64_t)seq;
			}
		} else {
			/* The next ones in order (op >> 2 % 8 of them, a burst). */
			for (uint32_t i = 0; i <= ((op >> 2) & 7) && high[s] < ms->n_dgrams; i++)
				send_honest(&r, s, ++high[s], false);
		}
		check_receiver(&r);
	}
	finish(&r);
	check_receiver(&r);
	lcr_srx_free(&r);
	CHECK(allocs == frees);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };

	trace = getenv("FUZZ_STREAM_TRACE") != NULL;
	run(&in);
	return 0;
}

#ifdef LCR_FUZZ_STANDALONE
int main(int argc, char **argv)
{
	unsigned long runs = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
	static uint8_t buf[4096];
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (unsigned long n_run = 0; n_run < runs; n_run++) {
		size_t n = fuzz_random_input(&x, buf, sizeof(buf));
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("fuzz_stream: %lu random schedules, every message delivered once, whole, in order\n",
	       runs);
	return 0;
}
#endif
