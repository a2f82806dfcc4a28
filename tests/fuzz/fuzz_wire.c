/* Fuzz the wire codec: arbitrary bytes never crash it, and what decodes re-encodes identically. */
/*
 * Datagrams and payloads come from the network, so every decoder sees
 * arbitrary bytes here: as a whole datagram (lcr_wire_open, then the decoder
 * its type names), and directly, regardless of any header. Since the format
 * has exactly one encoding of each value (reserved bytes zero, booleans 0/1,
 * payloads consumed exactly), a successful decode must re-encode to the input
 * bytes, and those must decode to the same values; anything else is a
 * finding. Random bytes rarely carry a valid CRC, so one mode computes it for
 * them, and another builds valid messages from the input and then damages
 * them, which reaches deep into the decoders quickly.
 *
 * Built for libFuzzer with clang (LLVMFuzzerTestOneInput), and with
 * -DLCR_FUZZ_STANDALONE as a plain program that feeds N seeded random inputs,
 * so gcc builds and CI run it too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "wire.h"
#include "fuzz_input.h"

#define FUZZ_CLUSTER 0x0123456789abcdefull
#define ENTS_MAX     512
#define POOL_BYTES   ((1u << 17) + 1024)

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz_wire: check failed: %s (%s:%d)\n", #x, __FILE__,     \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static const uint32_t wire_types[] = {
	LCR_WIRE_VOTE_REQ,	  LCR_WIRE_VOTE_RESP,	 LCR_WIRE_APPEND_REQ,
	LCR_WIRE_APPEND_RESP,	  LCR_WIRE_TRANSFER,	 LCR_WIRE_STREAM_ACK,
	LCR_WIRE_CLIENT_REQ,	  LCR_WIRE_CLIENT_RESP,	 LCR_WIRE_READ_INDEX_REQ,
	LCR_WIRE_READ_INDEX_RESP, LCR_WIRE_SNAPSHOT_REQ, LCR_WIRE_SNAPSHOT_RESP,
	LCR_WIRE_SNAPSHOT_CHUNK,  LCR_WIRE_SNAPSHOT_ACK, LCR_WIRE_SNAPSHOT_CANCEL,
};
#define N_TYPES (sizeof(wire_types) / sizeof(wire_types[0]))

static struct lcr_entry ents1[ENTS_MAX], ents2[ENTS_MAX], built_ents[ENTS_MAX];
static uint8_t enc[LCR_WIRE_MSG_MAX];  /* re-encodings */
static uint8_t orig[LCR_WIRE_MSG_MAX]; /* encodings of built messages */
static uint8_t mut[LCR_WIRE_MSG_MAX];  /* damaged copies of them */
static uint8_t dgram[LCR_WIRE_DGRAM_MAX + 1], dgram2[LCR_WIRE_DGRAM_MAX];
static uint8_t pool[POOL_BYTES]; /* payload bytes of built messages */

/* ---- value comparison ------------------------------------------------------ */

static bool vote_eq(struct lcr_vote a, struct lcr_vote b)
{
	return a.lid.term == b.lid.term && a.lid.node == b.lid.node && a.committed == b.committed;
}

static bool lid_eq(struct lcr_log_id a, struct lcr_log_id b)
{
	return a.lid.term == b.lid.term && a.lid.node == b.lid.node && a.index == b.index;
}

static bool bytes_eq(const void *a, const void *b, size_t n)
{
	return n == 0 || memcmp(a, b, n) == 0;
}

static bool append_eq(const struct lcr_append_req *x, const struct lcr_append_req *y)
{
	if (!vote_eq(x->vote, y->vote) || !lid_eq(x->prev, y->prev) ||
	    !lid_eq(x->leader_commit, y->leader_commit))
		return false;
	if (x->stream_id != y->stream_id || x->inflight_id != y->inflight_id ||
	    x->send_ns != y->send_ns || x->send_seq != y->send_seq || x->n_entries != y->n_entries)
		return false;
	for (uint32_t i = 0; i < x->n_entries; i++) {
		const struct lcr_entry *a = &x->entries[i], *b = &y->entries[i];

		if (!lid_eq(a->id, b->id) || a->type != b->type || a->len != b->len ||
		    !bytes_eq(a->data, b->data, a->len))
			return false;
	}
	return true;
}

static bool msg_eq(const struct lcr_msg *a, const struct lcr_msg *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case LCR_MSG_VOTE_REQ:
		return vote_eq(a->vote_req.vote, b->vote_req.vote) &&
		       lid_eq(a->vote_req.last_log_id, b->vote_req.last_log_id) &&
		       vote_eq(a->vote_req.transfer_from, b->vote_req.transfer_from) &&
		       a->vote_req.leadership_transfer == b->vote_req.leadership_transfer &&
		       a->vote_req.pre_vote == b->vote_req.pre_vote;
	case LCR_MSG_VOTE_RESP:
		return vote_eq(a->vote_resp.vote, b->vote_resp.vote) &&
		       vote_eq(a->vote_resp.req_vote, b->vote_resp.req_vote) &&
		       lid_eq(a->vote_resp.last_log_id, b->vote_resp.last_log_id) &&
		       a->vote_resp.granted == b->vote_resp.granted &&
		       a->vote_resp.pre_vote == b->vote_resp.pre_vote;
	case LCR_MSG_APPEND_REQ:
		return append_eq(&a->append_req, &b->append_req);
	case LCR_MSG_APPEND_RESP:
		return a->append_resp.result == b->append_resp.result &&
		       vote_eq(a->append_resp.vote, b->append_resp.vote) &&
		       lid_eq(a->append_resp.log_id, b->append_resp.log_id) &&
		       a->append_resp.stream_id == b->append_resp.stream_id &&
		       a->append_resp.inflight_id == b->append_resp.inflight_id &&
		       a->append_resp.send_ns == b->append_resp.send_ns &&
		       a->append_resp.send_seq == b->append_resp.send_seq;
	case LCR_MSG_TRANSFER_LEADER:
		return vote_eq(a->transfer.from_leader, b->transfer.from_leader) &&
		       a->transfer.to == b->transfer.to &&
		       lid_eq(a->transfer.last_log_id, b->transfer.last_log_id);
	case LCR_MSG_READ_INDEX_REQ:
		return vote_eq(a->read_index_req.vote, b->read_index_req.vote) &&
		       a->read_index_req.read_id == b->read_index_req.read_id;
	case LCR_MSG_READ_INDEX_RESP:
		return a->read_index_resp.result == b->read_index_resp.result &&
		       vote_eq(a->read_index_resp.vote, b->read_index_resp.vote) &&
		       a->read_index_resp.read_id == b->read_index_resp.read_id &&
		       lid_eq(a->read_index_resp.read_log_id, b->read_index_resp.read_log_id);
	case LCR_MSG_SNAPSHOT_RESP:
		return vote_eq(a->snapshot_resp.vote, b->snapshot_resp.vote) &&
		       lid_eq(a->snapshot_resp.last, b->snapshot_resp.last) &&
		       a->snapshot_resp.stream_id == b->snapshot_resp.stream_id &&
		       a->snapshot_resp.inflight_id == b->snapshot_resp.inflight_id &&
		       a->snapshot_resp.send_ns == b->snapshot_resp.send_ns &&
		       a->snapshot_resp.send_seq == b->snapshot_resp.send_seq;
	default:
		return false;
	}
}

static bool snap_begin_eq(const struct lcr_wire_snap_begin *a, const struct lcr_wire_snap_begin *b)
{
	const struct lcr_snapshot_req *x = &a->req, *y = &b->req;

	return vote_eq(x->vote, y->vote) && lid_eq(x->meta.last, y->meta.last) &&
	       x->meta.id == y->meta.id && x->stream_id == y->stream_id &&
	       x->inflight_id == y->inflight_id && x->send_ns == y->send_ns &&
	       x->send_seq == y->send_seq && x->size == y->size && x->data == y->data &&
	       a->xfer == b->xfer && a->chunk_max == b->chunk_max;
}

static bool snap_chunk_eq(const struct lcr_wire_snap_chunk *a, const struct lcr_wire_snap_chunk *b)
{
	return a->xfer == b->xfer && a->offset == b->offset && a->len == b->len &&
	       a->crc == b->crc && a->flags == b->flags && a->total_crc == b->total_crc &&
	       bytes_eq(a->data, b->data, a->len);
}

static bool snap_ack_eq(const struct lcr_wire_snap_ack *a, const struct lcr_wire_snap_ack *b)
{
	return a->xfer == b->xfer && a->written == b->written && a->credit == b->credit &&
	       a->status == b->status;
}

static bool ack_eq(const struct lcr_wire_ack *a, const struct lcr_wire_ack *b)
{
	return a->stream == b->stream && a->cum == b->cum && a->sack == b->sack &&
	       a->window == b->window;
}

static bool req_eq(const struct lcr_client_req *a, const struct lcr_client_req *b)
{
	return a->client == b->client && a->id == b->id && a->op == b->op && a->flags == b->flags &&
	       a->key_len == b->key_len && a->value_len == b->value_len &&
	       a->expect_len == b->expect_len && bytes_eq(a->key, b->key, a->key_len) &&
	       bytes_eq(a->value, b->value, a->value_len) &&
	       bytes_eq(a->expect, b->expect, a->expect_len);
}

static bool resp_eq(const struct lcr_client_resp *a, const struct lcr_client_resp *b)
{
	return a->id == b->id && a->status == b->status && a->op == b->op &&
	       a->leader == b->leader && a->value_len == b->value_len &&
	       bytes_eq(a->value, b->value, a->value_len);
}

/* ---- the round-trip property ----------------------------------------------- */

/* A re-encoding must be the input itself. */
static void check_same_bytes(size_t n, const uint8_t *p, size_t len)
{
	CHECK(n == len);
	CHECK(bytes_eq(enc, p, len));
}

/*
 * Decode `p` as a payload of `type`. If it decodes, encode it again, check
 * the bytes are the input's, decode those and check the values agree.
 * Returns whether it decoded.
 */
static bool check_payload(uint32_t type, const uint8_t *p, size_t len, uint32_t ents_max)
{
	switch (type) {
	case LCR_WIRE_STREAM_ACK: {
		struct lcr_wire_ack a, b;

		if (lcr_wire_decode_ack(p, len, &a) != LCR_DROP_NONE)
			return false;
		check_same_bytes(lcr_wire_encode_ack(enc, sizeof(enc), &a), p, len);
		CHECK(lcr_wire_decode_ack(enc, len, &b) == LCR_DROP_NONE);
		CHECK(ack_eq(&a, &b));
		return true;
	}
	case LCR_WIRE_CLIENT_REQ: {
		struct lcr_client_req a, b;

		if (lcr_wire_decode_client_req(p, len, &a) != LCR_DROP_NONE)
			return false;
		/* Only known flags: EXPECT_VALUE only with CAS, THIS_NODE only
		 * with SNAPSHOT. */
		CHECK((a.flags & ~LCR_CLIENT_F_KNOWN) == 0);
		CHECK(!(a.flags & LCR_CLIENT_F_EXPECT_VALUE) || a.op == LCR_CLIENT_CAS);
		CHECK(!(a.flags & LCR_CLIENT_F_THIS_NODE) || a.op == LCR_CLIENT_SNAPSHOT);
		check_same_bytes(lcr_wire_encode_client_req(enc, sizeof(enc), &a), p, len);
		CHECK(lcr_wire_decode_client_req(enc, len, &b) == LCR_DROP_NONE);
		CHECK(req_eq(&a, &b));
		return true;
	}
	case LCR_WIRE_SNAPSHOT_REQ: {
		struct lcr_wire_snap_begin a, b;

		if (lcr_wire_decode_snap_begin(p, len, &a) != LCR_DROP_NONE)
			return false;
		CHECK(a.xfer != 0 && a.req.size <= LCR_WIRE_SNAP_SIZE_MAX && a.req.data == 0);
		check_same_bytes(lcr_wire_encode_snap_begin(enc, sizeof(enc), &a), p, len);
		CHECK(lcr_wire_decode_snap_begin(enc, len, &b) == LCR_DROP_NONE);
		CHECK(snap_begin_eq(&a, &b));
		return true;
	}
	case LCR_WIRE_SNAPSHOT_CHUNK: {
		struct lcr_wire_snap_chunk a, b;

		if (lcr_wire_decode_snap_chunk(p, len, &a) != LCR_DROP_NONE)
			return false;
		CHECK(a.xfer != 0 && a.len <= LCR_WIRE_SNAP_CHUNK_MAX);
		CHECK(LCR_WIRE_SNAP_CHUNK_HDR + (size_t)a.len == len);
		check_same_bytes(lcr_wire_encode_snap_chunk(enc, sizeof(enc), &a), p, len);
		CHECK(lcr_wire_decode_snap_chunk(enc, len, &b) == LCR_DROP_NONE);
		CHECK(snap_chunk_eq(&a, &b));
		return true;
	}
	case LCR_WIRE_SNAPSHOT_ACK: {
		struct lcr_wire_snap_ack a, b;

		if (lcr_wire_decode_snap_ack(p, len, &a) != LCR_DROP_NONE)
			return false;
		CHECK(a.status >= LCR_SNAP_ST_OK && a.status < LCR_SNAP_ST_MAX);
		check_same_bytes(lcr_wire_encode_snap_ack(enc, sizeof(enc), &a), p, len);
		CHECK(lcr_wire_decode_snap_ack(enc, len, &b) == LCR_DROP_NONE);
		CHECK(snap_ack_eq(&a, &b));
		return true;
	}
	case LCR_WIRE_SNAPSHOT_CANCEL: {
		struct lcr_wire_snap_cancel a, b;

		if (lcr_wire_decode_snap_cancel(p, len, &a) != LCR_DROP_NONE)
			return false;
		check_same_bytes(lcr_wire_encode_snap_cancel(enc, sizeof(enc), &a), p, len);
		CHECK(lcr_wire_decode_snap_cancel(enc, len, &b) == LCR_DROP_NONE);
		CHECK(a.xfer == b.xfer);
		return true;
	}
	case LCR_WIRE_CLIENT_RESP: {
		struct lcr_client_resp a, b;

		if (lcr_wire_decode_client_resp(p, len, &a) != LCR_DROP_NONE)
			return false;
		check_same_bytes(lcr_wire_encode_client_resp(enc, sizeof(enc), &a), p, len);
		CHECK(lcr_wire_decode_client_resp(enc, len, &b) == LCR_DROP_NONE);
		CHECK(resp_eq(&a, &b));
		return true;
	}
	default: {
		struct lcr_msg a, b;

		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		if (lcr_wire_decode_msg(p, len, type, &a, ents1, ents_max) != LCR_DROP_NONE)
			return false;
		CHECK(a.type == type);
		if (type == LCR_WIRE_APPEND_REQ) {
			CHECK(a.append_req.n_entries <= ents_max);
			CHECK(lcr_wire_append_size(&a.append_req) == len);
		}
		check_same_bytes(lcr_wire_encode_msg(enc, sizeof(enc), &a), p, len);
		CHECK(lcr_wire_decode_msg(enc, len, type, &b, ents2, ents_max) == LCR_DROP_NONE);
		CHECK(msg_eq(&a, &b));
		return true;
	}
	}
}

/*
 * A datagram: if it opens, sealing its header over its payload again gives
 * the same bytes, and its payload goes to its type's decoder.
 */
static void check_dgram(const uint8_t *p, size_t len, uint64_t cluster, uint32_t ents_max)
{
	struct lcr_wire_hdr h;

	if (lcr_wire_open(p, len, cluster, &h) != LCR_DROP_NONE)
		return;
	CHECK(len >= LCR_WIRE_HDR && len <= LCR_WIRE_DGRAM_MAX);
	CHECK(h.len == len - LCR_WIRE_HDR);
	CHECK(h.cluster == cluster);
	CHECK(h.frag_count >= 1 && h.frag_index < h.frag_count);
	memcpy(dgram2 + LCR_WIRE_HDR, p + LCR_WIRE_HDR, h.len);
	CHECK(lcr_wire_seal(dgram2, &h) == len);
	CHECK(memcmp(dgram2, p, len) == 0);
	check_payload(h.type, p + LCR_WIRE_HDR, h.len, ents_max);
}

/* ---- building valid messages from the input -------------------------------- */

/* Small numbers most of the time, edge values sometimes. */
static uint64_t num(struct input *in)
{
	uint8_t k = (uint8_t)take(in, 1);

	if (k < 160)
		return k % 16;
	if (k < 230)
		return take(in, 4);
	if (k < 245)
		return take(in, 8);
	return UINT64_MAX - k % 4;
}

static struct lcr_vote vote(struct input *in)
{
	struct lcr_vote v = { { num(in), (uint32_t)num(in) }, take(in, 1) & 1 };
	return v;
}

static struct lcr_log_id lid(struct input *in)
{
	struct lcr_log_id id = { { num(in), (uint32_t)num(in) }, num(in) };
	return id;
}

/* A byte range of the pool: mostly short, sometimes up to 128 KiB. */
static const uint8_t *bytes(struct input *in, uint32_t max, uint32_t *len)
{
	uint32_t n = take(in, 1) < 230 ? (uint32_t)take(in, 1) : (uint32_t)take(in, 3);

	*len = n % (max + 1);
	return pool + take(in, 2) % 1024;
}

static void build_msg(struct input *in, uint32_t type, struct lcr_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	switch (type) {
	case LCR_WIRE_VOTE_REQ:
		m->vote_req.vote = vote(in);
		m->vote_req.last_log_id = lid(in);
		m->vote_req.transfer_from = vote(in);
		m->vote_req.leadership_transfer = take(in, 1) & 1;
		m->vote_req.pre_vote = take(in, 1) & 1;
		break;
	case LCR_WIRE_VOTE_RESP:
		m->vote_resp.vote = vote(in);
		m->vote_resp.req_vote = vote(in);
		m->vote_resp.last_log_id = lid(in);
		m->vote_resp.granted = take(in, 1) & 1;
		m->vote_resp.pre_vote = take(in, 1) & 1;
		break;
	case LCR_WIRE_APPEND_REQ: {
		struct lcr_append_req *a = &m->append_req;
		uint32_t n = (uint32_t)(take(in, 1) % 9);

		if (take(in, 1) == 0xff)
			n = (uint32_t)(take(in, 2) % ENTS_MAX);
		a->vote = vote(in);
		a->prev = lid(in);
		a->leader_commit = lid(in);
		a->stream_id = num(in);
		a->inflight_id = num(in);
		a->send_ns = num(in);
		a->send_seq = num(in);
		for (uint32_t i = 0; i < n; i++) {
			struct lcr_entry *e = &built_ents[i];

			e->id = lid(in);
			e->type = LCR_ENTRY_BLANK + (uint32_t)(take(in, 1) % 3);
			/* Large entries only while the message stays under its limit. */
			e->data = bytes(in, i < 8 ? (1u << 17) : 64, &e->len);
		}
		a->n_entries = n;
		a->entries = n ? built_ents : NULL;
		break;
	}
	case LCR_WIRE_APPEND_RESP:
		m->append_resp.result = LCR_APPEND_OK + (uint32_t)(take(in, 1) % 3);
		m->append_resp.vote = vote(in);
		m->append_resp.log_id = lid(in);
		m->append_resp.stream_id = num(in);
		m->append_resp.inflight_id = num(in);
		m->append_resp.send_ns = num(in);
		m->append_resp.send_seq = num(in);
		break;
	case LCR_WIRE_READ_INDEX_REQ:
		m->read_index_req.vote = vote(in);
		m->read_index_req.read_id = num(in);
		break;
	case LCR_WIRE_SNAPSHOT_RESP:
		m->snapshot_resp.vote = vote(in);
		m->snapshot_resp.last = lid(in);
		m->snapshot_resp.stream_id = num(in);
		m->snapshot_resp.inflight_id = num(in);
		m->snapshot_resp.send_ns = num(in);
		m->snapshot_resp.send_seq = num(in);
		break;
	case LCR_WIRE_READ_INDEX_RESP:
		m->read_index_resp.result = LCR_READ_INDEX_OK + (uint32_t)(take(in, 1) % 5);
		m->read_index_resp.vote = vote(in);
		m->read_index_resp.read_id = num(in);
		if (m->read_index_resp.result == LCR_READ_INDEX_OK)
			m->read_index_resp.read_log_id = lid(in);
		break;
	default:
		m->type = LCR_WIRE_TRANSFER;
		m->transfer.from_leader = vote(in);
		m->transfer.to = (uint32_t)num(in);
		m->transfer.last_log_id = lid(in);
		break;
	}
}

/* Encode a valid message of `type` built from the input into orig. */
static size_t build(struct input *in, uint32_t type)
{
	size_t n;

	switch (type) {
	case LCR_WIRE_STREAM_ACK: {
		struct lcr_wire_ack a = { num(in) | 1, num(in), num(in), (uint32_t)num(in) }, b;

		n = lcr_wire_encode_ack(orig, sizeof(orig), &a);
		CHECK(n > 0);
		CHECK(lcr_wire_decode_ack(orig, n, &b) == LCR_DROP_NONE && ack_eq(&a, &b));
		return n;
	}
	case LCR_WIRE_CLIENT_REQ: {
		struct lcr_client_req r, b;

		memset(&r, 0, sizeof(r));
		r.client = num(in);
		r.id = num(in);
		r.op = (uint8_t)(LCR_CLIENT_PUT + take(in, 1) % 6);
		if (r.op != LCR_CLIENT_STATS && r.op != LCR_CLIENT_SNAPSHOT)
			r.key = bytes(in, LCR_CLIENT_KEY_MAX, &r.key_len);
		if (r.op == LCR_CLIENT_SNAPSHOT)
			r.flags = (uint8_t)(take(in, 1) & LCR_CLIENT_F_THIS_NODE);
		if (r.op == LCR_CLIENT_PUT || r.op == LCR_CLIENT_CAS)
			r.value = bytes(in, LCR_CLIENT_VALUE_MAX, &r.value_len);
		if (r.op == LCR_CLIENT_CAS) {
			r.expect = bytes(in, LCR_CLIENT_VALUE_MAX, &r.expect_len);
			r.flags = (uint8_t)(take(in, 1) & LCR_CLIENT_F_EXPECT_VALUE);
		}
		n = lcr_wire_encode_client_req(orig, sizeof(orig), &r);
		CHECK(n > 0);
		CHECK(lcr_wire_decode_client_req(orig, n, &b) == LCR_DROP_NONE && req_eq(&r, &b));
		return n;
	}
	case LCR_WIRE_SNAPSHOT_REQ: {
		struct lcr_wire_snap_begin a, b;

		memset(&a, 0, sizeof(a));
		a.req.vote = vote(in);
		a.req.meta.last = lid(in);
		a.req.meta.id = num(in);
		a.req.stream_id = num(in);
		a.req.inflight_id = num(in);
		a.req.send_ns = num(in);
		a.req.send_seq = num(in);
		a.req.size = num(in) % (LCR_WIRE_SNAP_SIZE_MAX + 1);
		a.xfer = num(in) | 1;
		a.chunk_max = 1 + (uint32_t)(num(in) % LCR_WIRE_SNAP_CHUNK_MAX);
		n = lcr_wire_encode_snap_begin(orig, sizeof(orig), &a);
		CHECK(n > 0);
		CHECK(lcr_wire_decode_snap_begin(orig, n, &b) == LCR_DROP_NONE &&
		      snap_begin_eq(&a, &b));
		return n;
	}
	case LCR_WIRE_SNAPSHOT_CHUNK: {
		struct lcr_wire_snap_chunk c, b;

		memset(&c, 0, sizeof(c));
		c.xfer = num(in) | 1;
		c.offset = num(in) % (LCR_WIRE_SNAP_SIZE_MAX - 64 * 1024);
		c.data = bytes(in, 64 * 1024, &c.len);
		c.crc = lcr_crc32c(0, c.data, c.len);
		c.flags = take(in, 1) & LCR_WIRE_SNAP_LAST;
		c.total_crc = c.flags ? (uint32_t)num(in) : 0;
		n = lcr_wire_encode_snap_chunk(orig, sizeof(orig), &c);
		CHECK(n > 0);
		CHECK(lcr_wire_decode_snap_chunk(orig, n, &b) == LCR_DROP_NONE &&
		      snap_chunk_eq(&c, &b));
		return n;
	}
	case LCR_WIRE_SNAPSHOT_ACK: {
		struct lcr_wire_snap_ack a, b;

		a.xfer = num(in) | 1;
		a.credit = num(in) % (LCR_WIRE_SNAP_SIZE_MAX + 1);
		a.written = num(in) % (a.credit + 1);
		a.status = LCR_SNAP_ST_OK + (uint32_t)(take(in, 1) % (LCR_SNAP_ST_MAX - 1));
		n = lcr_wire_encode_snap_ack(orig, sizeof(orig), &a);
		CHECK(n > 0);
		CHECK(lcr_wire_decode_snap_ack(orig, n, &b) == LCR_DROP_NONE &&
		      snap_ack_eq(&a, &b));
		return n;
	}
	case LCR_WIRE_SNAPSHOT_CANCEL: {
		struct lcr_wire_snap_cancel a = { num(in) | 1 }, b;

		n = lcr_wire_encode_snap_cancel(orig, sizeof(orig), &a);
		CHECK(n > 0);
		CHECK(lcr_wire_decode_snap_cancel(orig, n, &b) == LCR_DROP_NONE &&
		      a.xfer == b.xfer);
		return n;
	}
	case LCR_WIRE_CLIENT_RESP: {
		struct lcr_client_resp r, b;

		memset(&r, 0, sizeof(r));
		r.id = num(in);
		r.status = (uint8_t)(take(in, 1) % 6);
		r.op = (uint8_t)(LCR_CLIENT_PUT + take(in, 1) % 6);
		r.leader = (uint32_t)num(in);
		/* Only the answer to STATS may be longer than a value. */
		r.value = bytes(in,
				r.op == LCR_CLIENT_STATS && r.status == LCR_CLIENT_OK
					? (1u << 17)
					: LCR_CLIENT_VALUE_MAX,
				&r.value_len);
		n = lcr_wire_encode_client_resp(orig, sizeof(orig), &r);
		CHECK(n > 0);
		CHECK(lcr_wire_decode_client_resp(orig, n, &b) == LCR_DROP_NONE && resp_eq(&r, &b));
		return n;
	}
	default: {
		struct lcr_msg m, b;

		build_msg(in, type, &m);
		n = lcr_wire_encode_msg(orig, sizeof(orig), &m);
		CHECK(n > 0);
		memset(&b, 0, sizeof(b));
		CHECK(lcr_wire_decode_msg(orig, n, m.type, &b, ents2, ENTS_MAX) == LCR_DROP_NONE);
		CHECK(msg_eq(&m, &b));
		return n;
	}
	}
}

/*
 * Build a valid message, check it decodes and survives a datagram, then
 * damage it: overwrite bytes, sometimes cut or extend it, and decode again.
 */
static void structured(struct input *in, uint32_t ents_max)
{
	uint32_t type = wire_types[take(in, 1) % N_TYPES];
	size_t n = build(in, type), len = n;

	CHECK(check_payload(type, orig, n, ENTS_MAX));

	if (n <= LCR_WIRE_DGRAM_MAX - LCR_WIRE_HDR) {
		struct lcr_wire_hdr h = { (uint8_t)type,
					  0,
					  FUZZ_CLUSTER,
					  (uint32_t)num(in),
					  (uint32_t)num(in),
					  (uint32_t)num(in),
					  (uint32_t)n,
					  0,
					  0,
					  0,
					  1 };

		bool single = type == LCR_WIRE_STREAM_ACK || type == LCR_WIRE_READ_INDEX_REQ ||
			      type == LCR_WIRE_READ_INDEX_RESP || type == LCR_WIRE_SNAPSHOT_RESP ||
			      type == LCR_WIRE_SNAPSHOT_ACK || type == LCR_WIRE_SNAPSHOT_CANCEL;
		if (type == LCR_WIRE_APPEND_REQ || (!single && take(in, 1) & 1)) {
			h.stream = num(in) | 1;
			h.seq = num(in) | 1;
			h.flags = take(in, 1) & LCR_WIRE_F_RETRANSMIT;
		}
		memcpy(dgram + LCR_WIRE_HDR, orig, n);
		CHECK(lcr_wire_seal(dgram, &h) == LCR_WIRE_HDR + n);
		check_dgram(dgram, LCR_WIRE_HDR + n, FUZZ_CLUSTER, ENTS_MAX);
	}

	memcpy(mut, orig, n);
	for (unsigned k = (unsigned)take(in, 1) % 8; k > 0; k--) {
		size_t at = (size_t)take(in, 3) % n;

		mut[at] = (uint8_t)take(in, 1);
	}
	switch (take(in, 1) % 8) {
	case 0:
		len = (size_t)take(in, 3) % (n + 1);
		break;
	case 1:
		len = n + 1 + take(in, 1) % 32;
		if (len > sizeof(mut))
			len = sizeof(mut);
		memset(mut + n, (int)take(in, 1), len - n);
		break;
	}
	check_payload(type, mut, len, ents_max);
}

/*
 * Raw bytes as a datagram with a correct CRC (and, unless the input says
 * otherwise, the right magic, version and length), so that the checks
 * behind the checksum see arbitrary header fields.
 */
static void fixed_up(const uint8_t *p, size_t len, uint8_t sel, uint32_t ents_max)
{
	uint64_t cluster = FUZZ_CLUSTER;

	if (len > sizeof(dgram))
		len = sizeof(dgram);
	memcpy(dgram, p, len);
	if (len >= LCR_WIRE_HDR) {
		uint32_t crc;

		if (!(sel & 0x10)) {
			dgram[0] = 0x4c;
			dgram[1] = 0x43;
			dgram[2] = 0x52;
			dgram[3] = 0x57;
			dgram[4] = LCR_WIRE_VERSION;
		}
		if (!(sel & 0x20)) {
			uint32_t plen = (uint32_t)(len - LCR_WIRE_HDR);

			for (int i = 0; i < 4; i++)
				dgram[28 + i] = (uint8_t)(plen >> (8 * i));
		}
		if (sel & 0x08) {
			/* Plausible fields, so random bytes also get past the
			 * type and flags checks to the fragment and stream ones. */
			dgram[5] = (uint8_t)wire_types[dgram[5] % N_TYPES];
			dgram[6] &= LCR_WIRE_F_RETRANSMIT;
			dgram[7] = 0;
			dgram[48] &= 3;
			dgram[49] = 0;
			dgram[50] &= 3;
			dgram[51] = 0;
			if (dgram[33] & 1)
				memset(dgram + 32, 0, 16);
		}
		memset(dgram + 52, 0, 4);
		crc = lcr_crc32c(0, dgram, len);
		for (int i = 0; i < 4; i++)
			dgram[52 + i] = (uint8_t)(crc >> (8 * i));
		if (!(sel & 0x40)) {
			cluster = 0;
			for (int i = 7; i >= 0; i--)
				cluster = cluster << 8 | dgram[8 + i];
		}
	}
	check_dgram(dgram, len, cluster, ents_max);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sel;
	uint32_t ents_max;
	const uint8_t *p;
	size_t n;

	if (size == 0)
		return 0;
	if (pool[1] == 0)
		for (size_t i = 0; i < sizeof(pool); i++)
			pool[i] = (uint8_t)(i * 131 + (i >> 9) + 1);
	sel = data[0];
	p = data + 1;
	n = size - 1;
	/* Mostly room for every entry; sometimes too little, to hit the limit. */
	ents_max = sel & 0x80 ? (sel >> 2) & 7 : ENTS_MAX;

	/* Every decoder, whatever a header would have said. */
	for (size_t t = 0; t < N_TYPES; t++)
		check_payload(wire_types[t], p, n, ents_max);
	check_payload(data[0], p, n, ents_max);

	switch (sel & 3) {
	case 0:
		check_dgram(p, n, FUZZ_CLUSTER, ents_max);
		break;
	case 1:
		fixed_up(p, n, sel, ents_max);
		break;
	default: {
		struct input in = { p, n };

		structured(&in, ents_max);
		break;
	}
	}
	return 0;
}

#ifdef LCR_FUZZ_STANDALONE
int main(int argc, char **argv)
{
	unsigned long runs = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
	static uint8_t buf[12000];
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (unsigned long r = 0; r < runs; r++) {
		size_t n = fuzz_random_input(&x, buf, (r % 4 == 0 ? sizeof(buf) - 1 : 600));
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("fuzz_wire: %lu random inputs, every decode round-tripped\n", runs);
	return 0;
}
#endif
