/* The wire codec: round trips, byte layouts, and every reason a datagram or payload is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "wire.h"

#define CLUSTER	   0x0123456789abcdefull
#define ENTRY_MAX  (1u << 20) /* largest entry payload (docs/wire-protocol.md) */
#define ENTS_MAX   64
#define STATS_MAX  (LCR_WIRE_MSG_MAX - 24)
#define WIRE_TYPES 15

static const uint32_t wire_types[WIRE_TYPES] = {
	LCR_WIRE_VOTE_REQ,	  LCR_WIRE_VOTE_RESP,	 LCR_WIRE_APPEND_REQ,
	LCR_WIRE_APPEND_RESP,	  LCR_WIRE_TRANSFER,	 LCR_WIRE_STREAM_ACK,
	LCR_WIRE_CLIENT_REQ,	  LCR_WIRE_CLIENT_RESP,	 LCR_WIRE_READ_INDEX_REQ,
	LCR_WIRE_READ_INDEX_RESP, LCR_WIRE_SNAPSHOT_REQ, LCR_WIRE_SNAPSHOT_RESP,
	LCR_WIRE_SNAPSHOT_CHUNK,  LCR_WIRE_SNAPSHOT_ACK, LCR_WIRE_SNAPSHOT_CANCEL,
};

static struct lcr_entry ents[ENTS_MAX];

/* ---- helpers ---------------------------------------------------------------- */

static struct lcr_vote vote(uint64_t term, uint32_t node, bool committed)
{
	struct lcr_vote v = { { term, node }, committed };
	return v;
}

static struct lcr_log_id lid(uint64_t term, uint32_t node, uint64_t index)
{
	struct lcr_log_id id = { { term, node }, index };
	return id;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 31 + (i >> 8));
}

/* Decode a payload of any type with the decoder that type has. */
static uint32_t decode_any(uint32_t type, const uint8_t *p, size_t len)
{
	struct lcr_msg m;
	struct lcr_wire_ack a;
	struct lcr_client_req rq;
	struct lcr_client_resp rs;
	struct lcr_wire_snap_begin sb;
	struct lcr_wire_snap_chunk sc;
	struct lcr_wire_snap_ack sa;
	struct lcr_wire_snap_cancel sx;

	memset(&m, 0, sizeof(m));
	switch (type) {
	case LCR_WIRE_SNAPSHOT_REQ:
		return lcr_wire_decode_snap_begin(p, len, &sb);
	case LCR_WIRE_SNAPSHOT_CHUNK:
		return lcr_wire_decode_snap_chunk(p, len, &sc);
	case LCR_WIRE_SNAPSHOT_ACK:
		return lcr_wire_decode_snap_ack(p, len, &sa);
	case LCR_WIRE_SNAPSHOT_CANCEL:
		return lcr_wire_decode_snap_cancel(p, len, &sx);
	case LCR_WIRE_STREAM_ACK:
		return lcr_wire_decode_ack(p, len, &a);
	case LCR_WIRE_CLIENT_REQ:
		return lcr_wire_decode_client_req(p, len, &rq);
	case LCR_WIRE_CLIENT_RESP:
		return lcr_wire_decode_client_resp(p, len, &rs);
	default:
		return lcr_wire_decode_msg(p, len, type, &m, ents, ENTS_MAX);
	}
}

static void assert_vote_eq(struct lcr_vote a, struct lcr_vote b)
{
	assert_int_equal(a.lid.term, b.lid.term);
	assert_int_equal(a.lid.node, b.lid.node);
	assert_int_equal(a.committed, b.committed);
}

static void assert_lid_eq(struct lcr_log_id a, struct lcr_log_id b)
{
	assert_int_equal(a.lid.term, b.lid.term);
	assert_int_equal(a.lid.node, b.lid.node);
	assert_int_equal(a.index, b.index);
}

static void assert_msg_eq(const struct lcr_msg *a, const struct lcr_msg *b)
{
	assert_int_equal(a->type, b->type);
	switch (a->type) {
	case LCR_MSG_VOTE_REQ:
		assert_vote_eq(a->vote_req.vote, b->vote_req.vote);
		assert_lid_eq(a->vote_req.last_log_id, b->vote_req.last_log_id);
		assert_vote_eq(a->vote_req.transfer_from, b->vote_req.transfer_from);
		assert_int_equal(a->vote_req.leadership_transfer, b->vote_req.leadership_transfer);
		assert_int_equal(a->vote_req.pre_vote, b->vote_req.pre_vote);
		break;
	case LCR_MSG_VOTE_RESP:
		assert_vote_eq(a->vote_resp.vote, b->vote_resp.vote);
		assert_vote_eq(a->vote_resp.req_vote, b->vote_resp.req_vote);
		assert_lid_eq(a->vote_resp.last_log_id, b->vote_resp.last_log_id);
		assert_int_equal(a->vote_resp.granted, b->vote_resp.granted);
		assert_int_equal(a->vote_resp.pre_vote, b->vote_resp.pre_vote);
		break;
	case LCR_MSG_APPEND_REQ: {
		const struct lcr_append_req *x = &a->append_req, *y = &b->append_req;

		assert_vote_eq(x->vote, y->vote);
		assert_lid_eq(x->prev, y->prev);
		assert_lid_eq(x->leader_commit, y->leader_commit);
		assert_int_equal(x->stream_id, y->stream_id);
		assert_int_equal(x->inflight_id, y->inflight_id);
		assert_int_equal(x->send_ns, y->send_ns);
		assert_int_equal(x->send_seq, y->send_seq);
		assert_int_equal(x->n_entries, y->n_entries);
		for (uint32_t i = 0; i < x->n_entries; i++) {
			assert_lid_eq(x->entries[i].id, y->entries[i].id);
			assert_int_equal(x->entries[i].type, y->entries[i].type);
			assert_int_equal(x->entries[i].len, y->entries[i].len);
			if (x->entries[i].len)
				assert_memory_equal(x->entries[i].data, y->entries[i].data,
						    x->entries[i].len);
		}
		break;
	}
	case LCR_MSG_APPEND_RESP: {
		const struct lcr_append_resp *x = &a->append_resp, *y = &b->append_resp;

		assert_int_equal(x->result, y->result);
		assert_vote_eq(x->vote, y->vote);
		assert_lid_eq(x->log_id, y->log_id);
		assert_int_equal(x->stream_id, y->stream_id);
		assert_int_equal(x->inflight_id, y->inflight_id);
		assert_int_equal(x->send_ns, y->send_ns);
		assert_int_equal(x->send_seq, y->send_seq);
		break;
	}
	case LCR_MSG_TRANSFER_LEADER:
		assert_vote_eq(a->transfer.from_leader, b->transfer.from_leader);
		assert_int_equal(a->transfer.to, b->transfer.to);
		assert_lid_eq(a->transfer.last_log_id, b->transfer.last_log_id);
		break;
	case LCR_MSG_READ_INDEX_REQ:
		assert_vote_eq(a->read_index_req.vote, b->read_index_req.vote);
		assert_int_equal(a->read_index_req.read_id, b->read_index_req.read_id);
		break;
	case LCR_MSG_READ_INDEX_RESP:
		assert_int_equal(a->read_index_resp.result, b->read_index_resp.result);
		assert_vote_eq(a->read_index_resp.vote, b->read_index_resp.vote);
		assert_int_equal(a->read_index_resp.read_id, b->read_index_resp.read_id);
		assert_lid_eq(a->read_index_resp.read_log_id, b->read_index_resp.read_log_id);
		break;
	case LCR_MSG_SNAPSHOT_RESP: {
		const struct lcr_snapshot_resp *x = &a->snapshot_resp, *y = &b->snapshot_resp;
		assert_vote_eq(x->vote, y->vote);
		assert_lid_eq(x->last, y->last);
		assert_int_equal(x->stream_id, y->stream_id);
		assert_int_equal(x->inflight_id, y->inflight_id);
		assert_int_equal(x->send_ns, y->send_ns);
		assert_int_equal(x->send_seq, y->send_seq);
		break;
	}
	default:
		fail_msg("unexpected type %u", a->type);
	}
}

/* Encode, check the size, decode, compare; returns the encoded length. */
static size_t roundtrip_msg(const struct lcr_msg *m, uint8_t *buf, size_t cap)
{
	struct lcr_msg got;
	size_t n = lcr_wire_encode_msg(buf, cap, m);

	assert_true(n > 0);
	if (m->type == LCR_MSG_APPEND_REQ)
		assert_int_equal(n, lcr_wire_append_size(&m->append_req));
	/* One byte less room and the encoder refuses rather than truncates. */
	assert_int_equal(lcr_wire_encode_msg(buf, n - 1, m), 0);
	assert_int_equal(lcr_wire_encode_msg(buf, cap, m), n);

	memset(&got, 0, sizeof(got));
	got.from = 7;
	got.to = 9;
	assert_int_equal(lcr_wire_decode_msg(buf, n, m->type, &got, ents, ENTS_MAX), LCR_DROP_NONE);
	assert_int_equal(got.from, 7); /* from/to belong to the caller */
	assert_int_equal(got.to, 9);
	assert_msg_eq(m, &got);
	return n;
}

static struct lcr_msg sample_vote_req(void)
{
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_VOTE_REQ;
	m.vote_req.vote = vote(5, 2, false);
	m.vote_req.last_log_id = lid(4, 1, 77);
	m.vote_req.transfer_from = vote(4, 1, true);
	m.vote_req.leadership_transfer = true;
	m.vote_req.pre_vote = false;
	return m;
}

static struct lcr_msg sample_vote_resp(void)
{
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_VOTE_RESP;
	m.vote_resp.vote = vote(6, 3, true);
	m.vote_resp.req_vote = vote(6, 3, false);
	m.vote_resp.last_log_id = lid(5, 1, 1000);
	m.vote_resp.granted = true;
	m.vote_resp.pre_vote = true;
	return m;
}

static uint8_t ent_data[3][64];

/* An AppendEntries with `n` (up to 3) small entries. */
static struct lcr_msg sample_append(uint32_t n)
{
	static struct lcr_entry e[3];
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_APPEND_REQ;
	m.append_req.vote = vote(9, 1, true);
	m.append_req.prev = lid(8, 2, 41);
	m.append_req.leader_commit = lid(8, 2, 40);
	m.append_req.stream_id = 0x1111;
	m.append_req.inflight_id = 3;
	m.append_req.send_ns = 123456789;
	m.append_req.send_seq = 17;
	for (uint32_t i = 0; i < n; i++) {
		fill(ent_data[i], sizeof(ent_data[i]), i);
		e[i].id = lid(9, 1, 42 + i);
		e[i].type = i == 0 ? LCR_ENTRY_BLANK : LCR_ENTRY_NORMAL;
		e[i].len = i == 0 ? 0 : 10 * i + 3;
		e[i].data = ent_data[i];
	}
	m.append_req.n_entries = n;
	m.append_req.entries = n ? e : NULL;
	return m;
}

static struct lcr_msg sample_append_resp(void)
{
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_APPEND_RESP;
	m.append_resp.result = LCR_APPEND_CONFLICT;
	m.append_resp.vote = vote(9, 1, true);
	m.append_resp.log_id = lid(8, 2, 41);
	m.append_resp.stream_id = 0x1111;
	m.append_resp.inflight_id = 3;
	m.append_resp.send_ns = 123456789;
	m.append_resp.send_seq = 17;
	return m;
}

static struct lcr_msg sample_transfer(void)
{
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_TRANSFER_LEADER;
	m.transfer.from_leader = vote(12, 3, true);
	m.transfer.to = 2;
	m.transfer.last_log_id = lid(12, 3, 500);
	return m;
}

static struct lcr_msg sample_read_index_req(void)
{
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_READ_INDEX_REQ;
	m.read_index_req.vote = vote(12, 3, true);
	m.read_index_req.read_id = 0x0102030405060708ull;
	return m;
}

static struct lcr_msg sample_read_index_resp(void)
{
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_READ_INDEX_RESP;
	m.read_index_resp.result = LCR_READ_INDEX_OK;
	m.read_index_resp.vote = vote(12, 3, true);
	m.read_index_resp.read_id = 0x0102030405060708ull;
	m.read_index_resp.read_log_id = lid(12, 3, 500);
	return m;
}

static const uint8_t key_bytes[] = "user:42";
static const uint8_t value_bytes[] = "hello, world";
static const uint8_t expect_bytes[] = "hello";

/* A valid payload of each wire type, written into buf; returns its length. */
static struct lcr_wire_snap_begin sample_snap_begin(void)
{
	struct lcr_wire_snap_begin b;

	memset(&b, 0, sizeof(b));
	b.req.vote = vote(7, 2, true);
	b.req.meta.last = lid(6, 3, 1234);
	b.req.meta.id = 0xabcdef;
	b.req.stream_id = 0x5555;
	b.req.inflight_id = 12;
	b.req.send_ns = 999;
	b.req.send_seq = 31;
	b.req.size = (5ull << 30) + 3;
	b.xfer = 0x77;
	b.chunk_max = 65536;
	return b;
}

static struct lcr_msg sample_snap_resp(void)
{
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_SNAPSHOT_RESP;
	m.snapshot_resp.vote = vote(7, 2, true);
	m.snapshot_resp.last = lid(6, 3, 1234);
	m.snapshot_resp.stream_id = 0x5555;
	m.snapshot_resp.inflight_id = 12;
	m.snapshot_resp.send_ns = 999;
	m.snapshot_resp.send_seq = 31;
	return m;
}

static const uint8_t chunk_bytes[] = "some bytes of a snapshot";

static struct lcr_wire_snap_chunk sample_snap_chunk(void)
{
	struct lcr_wire_snap_chunk c = { .xfer = 0x77,
					 .offset = 1u << 20,
					 .len = sizeof(chunk_bytes),
					 .crc = lcr_crc32c(0, chunk_bytes, sizeof(chunk_bytes)),
					 .flags = LCR_WIRE_SNAP_LAST,
					 .total_crc = 0x12345678,
					 .data = chunk_bytes };
	return c;
}

static size_t sample_payload(uint32_t type, uint8_t *buf, size_t cap)
{
	struct lcr_msg m;

	switch (type) {
	case LCR_WIRE_VOTE_REQ:
		m = sample_vote_req();
		break;
	case LCR_WIRE_VOTE_RESP:
		m = sample_vote_resp();
		break;
	case LCR_WIRE_APPEND_REQ:
		m = sample_append(3);
		break;
	case LCR_WIRE_APPEND_RESP:
		m = sample_append_resp();
		break;
	case LCR_WIRE_TRANSFER:
		m = sample_transfer();
		break;
	case LCR_WIRE_READ_INDEX_REQ:
		m = sample_read_index_req();
		break;
	case LCR_WIRE_READ_INDEX_RESP:
		m = sample_read_index_resp();
		break;
	case LCR_WIRE_STREAM_ACK: {
		struct lcr_wire_ack a = { 0x2222, 1000, 0x8000000000000005ull, 256 };
		return lcr_wire_encode_ack(buf, cap, &a);
	}
	case LCR_WIRE_SNAPSHOT_REQ: {
		struct lcr_wire_snap_begin b = sample_snap_begin();
		return lcr_wire_encode_snap_begin(buf, cap, &b);
	}
	case LCR_WIRE_SNAPSHOT_RESP:
		m = sample_snap_resp();
		break;
	case LCR_WIRE_SNAPSHOT_CHUNK: {
		struct lcr_wire_snap_chunk c = sample_snap_chunk();
		return lcr_wire_encode_snap_chunk(buf, cap, &c);
	}
	case LCR_WIRE_SNAPSHOT_ACK: {
		struct lcr_wire_snap_ack a = { 0x77, 4096, 4096 + (4u << 20), LCR_SNAP_ST_OK };
		return lcr_wire_encode_snap_ack(buf, cap, &a);
	}
	case LCR_WIRE_SNAPSHOT_CANCEL: {
		struct lcr_wire_snap_cancel c = { 0x77 };
		return lcr_wire_encode_snap_cancel(buf, cap, &c);
	}
	case LCR_WIRE_CLIENT_REQ: {
		struct lcr_client_req r = { 0xc1, 5,	     LCR_CLIENT_CAS, 7,		  12,
					    5,	  key_bytes, value_bytes,    expect_bytes };
		return lcr_wire_encode_client_req(buf, cap, &r);
	}
	default: {
		struct lcr_client_resp r = {
			5, LCR_CLIENT_CAS_FAILED, LCR_CLIENT_CAS, 2, 12, value_bytes
		};
		return lcr_wire_encode_client_resp(buf, cap, &r);
	}
	}
	return lcr_wire_encode_msg(buf, cap, &m);
}

static struct lcr_wire_hdr hdr(uint8_t type, uint32_t len)
{
	struct lcr_wire_hdr h;

	memset(&h, 0, sizeof(h));
	h.type = type;
	h.cluster = CLUSTER;
	h.group = 1;
	h.from = 2;
	h.to = 3;
	h.len = len;
	h.frag_count = 1;
	if (type == LCR_WIRE_APPEND_REQ || type == LCR_WIRE_SNAPSHOT_REQ ||
	    type == LCR_WIRE_SNAPSHOT_CHUNK) {
		h.stream = 0x1111;
		h.seq = 1;
	}
	return h;
}

/* A sealed datagram carrying a sample payload of `type`; returns its length. */
static size_t sample_dgram(uint32_t type, uint8_t *buf)
{
	size_t n = sample_payload(type, buf + LCR_WIRE_HDR, LCR_WIRE_DGRAM_MAX - LCR_WIRE_HDR);
	struct lcr_wire_hdr h = hdr((uint8_t)type, (uint32_t)n);

	assert_true(n > 0);
	return lcr_wire_seal(buf, &h);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute a datagram's CRC after the test edited its header. */
static void reseal(uint8_t *buf, size_t len)
{
	put32(buf + 52, 0);
	put32(buf + 52, lcr_crc32c_sw(0, buf, len));
}

/* ---- names and layouts ------------------------------------------------------- */

static void test_drop_names(void **state)
{
	(void)state;
	for (uint32_t i = 0; i < LCR_DROP_MAX; i++) {
		const char *n = lcr_wire_drop_name(i);

		assert_non_null(n);
		assert_string_not_equal(n, "unknown");
		for (uint32_t j = 0; j < i; j++)
			assert_string_not_equal(n, lcr_wire_drop_name(j));
	}
	assert_string_equal(lcr_wire_drop_name(LCR_DROP_CHECKSUM), "checksum");
	assert_string_equal(lcr_wire_drop_name(LCR_DROP_CLUSTER), "cluster");
	assert_string_equal(lcr_wire_drop_name(LCR_DROP_NO_BUFFER), "no_buffer");
	assert_string_equal(lcr_wire_drop_name(LCR_DROP_MAX), "unknown");
	assert_string_equal(lcr_wire_drop_name(UINT32_MAX), "unknown");
}

/* The CRC is the standard CRC32C: the check value of "123456789". */
static void test_crc32c_check_value(void **state)
{
	(void)state;
	assert_int_equal(lcr_crc32c(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(lcr_crc32c_sw(0, "123456789", 9), 0xe3069283u);
}

static void test_header_layout_little_endian(void **state)
{
	static const uint8_t want[LCR_WIRE_HDR + 3] = {
		0x4c, 0x43, 0x52, 0x57,				/* magic "LCRW" */
		0x01,						/* version */
		0x03,						/* type: append req */
		0x01, 0x00,					/* flags: retransmit */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* cluster */
		0x14, 0x13, 0x12, 0x11,				/* group */
		0x24, 0x23, 0x22, 0x21,				/* from */
		0x34, 0x33, 0x32, 0x31,				/* to */
		0x03, 0x00, 0x00, 0x00,				/* payload length */
		0x48, 0x47, 0x46, 0x45, 0x44, 0x43, 0x42, 0x41, /* stream */
		0x58, 0x57, 0x56, 0x55, 0x54, 0x53, 0x52, 0x51, /* seq */
		0x01, 0x02,					/* fragment index */
		0x02, 0x03,					/* fragment count */
		0x00, 0x00, 0x00, 0x00,				/* CRC, filled in below */
		'a',  'b',  'c',
	};
	struct lcr_wire_hdr h = {
		.type = LCR_WIRE_APPEND_REQ,
		.flags = LCR_WIRE_F_RETRANSMIT,
		.cluster = 0x0102030405060708ull,
		.group = 0x11121314,
		.from = 0x21222324,
		.to = 0x31323334,
		.len = 3,
		.stream = 0x4142434445464748ull,
		.seq = 0x5152535455565758ull,
		.frag_index = 0x0201,
		.frag_count = 0x0302,
	};
	uint8_t buf[LCR_WIRE_HDR + 3], exp[sizeof(want)];
	struct lcr_wire_hdr got;
	uint32_t crc;

	(void)state;
	memcpy(buf + LCR_WIRE_HDR, "abc", 3);
	assert_int_equal(lcr_wire_seal(buf, &h), sizeof(buf));
	/* CRC32C of the header with a zero CRC field, then the payload. */
	memcpy(exp, want, sizeof(want));
	crc = lcr_crc32c_sw(0, exp, sizeof(exp));
	put32(exp + 52, crc);
	assert_memory_equal(buf, exp, sizeof(exp));
	/* Pinned (checked with an independent CRC32C in Python), so that a
	 * change of format cannot pass unnoticed. */
	assert_int_equal(crc, 0x61131539u);

	memset(&got, 0, sizeof(got));
	assert_int_equal(lcr_wire_open(buf, sizeof(buf), h.cluster, &got), LCR_DROP_NONE);
	assert_int_equal(got.type, h.type);
	assert_int_equal(got.flags, h.flags);
	assert_int_equal(got.cluster, h.cluster);
	assert_int_equal(got.group, h.group);
	assert_int_equal(got.from, h.from);
	assert_int_equal(got.to, h.to);
	assert_int_equal(got.len, h.len);
	assert_int_equal(got.stream, h.stream);
	assert_int_equal(got.seq, h.seq);
	assert_int_equal(got.frag_index, h.frag_index);
	assert_int_equal(got.frag_count, h.frag_count);
}

static void test_vote_req_layout_little_endian(void **state)
{
	static const uint8_t want[64] = {
		/* vote: term, node, committed, 3 zero */
		0x08,
		0x07,
		0x06,
		0x05,
		0x04,
		0x03,
		0x02,
		0x01,
		0x04,
		0x03,
		0x02,
		0x01,
		0x01,
		0,
		0,
		0,
		/* last log id: term, node, 4 zero, index */
		0x05,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0x02,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0x10,
		0x20,
		0,
		0,
		0,
		0,
		0,
		0,
		/* transfer_from: term, node, committed, 3 zero */
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0x00,
		0,
		0,
		0,
		/* leadership_transfer, pre_vote, 6 zero */
		0x00,
		0x01,
		0,
		0,
		0,
		0,
		0,
		0,
	};
	struct lcr_msg m;
	uint8_t buf[128];

	(void)state;
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_VOTE_REQ;
	m.vote_req.vote = vote(0x0102030405060708ull, 0x01020304, true);
	m.vote_req.last_log_id = lid(5, 2, 0x2010);
	m.vote_req.transfer_from = vote(UINT64_MAX, UINT32_MAX, false);
	m.vote_req.pre_vote = true;
	assert_int_equal(lcr_wire_encode_msg(buf, sizeof(buf), &m), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	roundtrip_msg(&m, buf, sizeof(buf));
}

static void test_append_layout_little_endian(void **state)
{
	static const uint8_t want[104 + 28 + 3] = {
		/* vote */
		0x09,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0x01,
		0,
		0,
		0,
		0x01,
		0,
		0,
		0,
		/* prev */
		0x08,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0x02,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0x29,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		/* leader_commit */
		0x08,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0x02,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0x28,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		/* stream_id, inflight_id, send_ns, send_seq */
		0x11,
		0x11,
		0,
		0,
		0,
		0,
		0,
		0,
		0x03,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0x15,
		0xcd,
		0x5b,
		0x07,
		0,
		0,
		0,
		0,
		0x11,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		/* n_entries, 4 zero */
		0x01,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		/* entry: term, node, type, flags, index, len, data */
		0x09,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0x01,
		0,
		0,
		0,
		0x02,
		0x00,
		0x00,
		0x00,
		0x2a,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0x03,
		0,
		0,
		0,
		'x',
		'y',
		'z',
	};
	static const struct lcr_entry e = { { { 9, 1 }, 42 }, LCR_ENTRY_NORMAL, 3, "xyz" };
	struct lcr_msg m = sample_append(0);
	uint8_t buf[256];

	(void)state;
	m.append_req.n_entries = 1;
	m.append_req.entries = &e;
	assert_int_equal(lcr_wire_append_size(&m.append_req), sizeof(want));
	assert_int_equal(lcr_wire_encode_msg(buf, sizeof(buf), &m), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	roundtrip_msg(&m, buf, sizeof(buf));
}

static void test_client_req_layout_little_endian(void **state)
{
	static const uint8_t want[32 + 5] = {
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* client */
		0x0d, 0x0c, 0x0b, 0x0a, 0,    0,    0,	  0,	/* request id */
		0x03,						/* op: cas */
		0x01,						/* flags: EXPECT_VALUE */
		0,    0,					/* zero */
		0x02, 0,    0,	  0,				/* key length */
		0x03, 0,    0,	  0,				/* value length */
		0,    0,    0,	  0,				/* expect length: the empty value */
		'k',  'y',  'n',  'e',	'w',
	};
	struct lcr_client_req r = { .client = 0x0102030405060708ull,
				    .id = 0x0a0b0c0d,
				    .op = LCR_CLIENT_CAS,
				    .key_len = 2,
				    .value_len = 3,
				    .key = (const uint8_t *)"ky",
				    .value = (const uint8_t *)"new",
				    .flags = LCR_CLIENT_F_EXPECT_VALUE };
	struct lcr_client_req got;
	uint8_t buf[64];

	(void)state;
	assert_int_equal(lcr_wire_encode_client_req(buf, sizeof(buf), &r), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(lcr_wire_decode_client_req(buf, sizeof(want), &got), LCR_DROP_NONE);
	assert_int_equal(got.flags, LCR_CLIENT_F_EXPECT_VALUE);
	assert_int_equal(got.expect_len, 0);
	assert_ptr_equal(got.key, buf + 32); /* points into the input */
	assert_ptr_equal(got.value, buf + 34);
}

static void test_client_resp_layout_little_endian(void **state)
{
	static const uint8_t want[24 + 2] = {
		0x0d, 0x0c, 0x0b, 0x0a, 0, 0, 0, 0, /* id */
		0x03,				    /* status: not leader */
		0x01,				    /* op: put */
		0,    0,			    /* zero */
		0x02, 0x01, 0,	  0,		    /* leader */
		0x02, 0,    0,	  0,		    /* value length */
		0,    0,    0,	  0,		    /* zero */
		'o',  'k',
	};
	struct lcr_client_resp r = { 0x0a0b0c0d, LCR_CLIENT_NOT_LEADER, LCR_CLIENT_PUT, 0x0102,
				     2,		 (const uint8_t *)"ok" };
	struct lcr_client_resp got;
	uint8_t buf[64];

	(void)state;
	assert_int_equal(lcr_wire_encode_client_resp(buf, sizeof(buf), &r), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(lcr_wire_decode_client_resp(buf, sizeof(want), &got), LCR_DROP_NONE);
	assert_int_equal(got.leader, 0x0102);
	assert_int_equal(got.op, LCR_CLIENT_PUT);
	assert_ptr_equal(got.value, buf + 24); /* points into the input */
}

/* ---- round trips ------------------------------------------------------------- */

static void test_roundtrip_votes(void **state)
{
	uint8_t buf[128];

	(void)state;
	for (int bits = 0; bits < 64; bits++) {
		struct lcr_msg m = sample_vote_req();

		m.vote_req.vote.committed = bits & 1;
		m.vote_req.transfer_from.committed = (bits >> 1) & 1;
		m.vote_req.leadership_transfer = (bits >> 2) & 1;
		m.vote_req.pre_vote = (bits >> 3) & 1;
		if (bits & 16) {
			m.vote_req.vote = vote(UINT64_MAX, UINT32_MAX, bits & 1);
			m.vote_req.last_log_id = lid(UINT64_MAX, UINT32_MAX, UINT64_MAX);
		}
		assert_int_equal(roundtrip_msg(&m, buf, sizeof(buf)), 64);

		m = sample_vote_resp();
		m.vote_resp.vote.committed = bits & 1;
		m.vote_resp.req_vote.committed = (bits >> 1) & 1;
		m.vote_resp.granted = (bits >> 2) & 1;
		m.vote_resp.pre_vote = (bits >> 3) & 1;
		if (bits & 32)
			m.vote_resp.last_log_id = lid(UINT64_MAX, UINT32_MAX, UINT64_MAX);
		assert_int_equal(roundtrip_msg(&m, buf, sizeof(buf)), 64);
	}
}

static void test_roundtrip_append_small(void **state)
{
	uint8_t buf[1024];

	(void)state;
	for (uint32_t n = 0; n <= 3; n++) {
		struct lcr_msg m = sample_append(n);

		roundtrip_msg(&m, buf, sizeof(buf));
	}
	/* Largest numbers everywhere. */
	struct lcr_msg m = sample_append(2);
	m.append_req.vote = vote(UINT64_MAX, UINT32_MAX, true);
	m.append_req.prev = lid(UINT64_MAX, UINT32_MAX, UINT64_MAX);
	m.append_req.leader_commit = lid(UINT64_MAX, UINT32_MAX, UINT64_MAX);
	m.append_req.stream_id = UINT64_MAX;
	m.append_req.inflight_id = UINT64_MAX;
	m.append_req.send_ns = UINT64_MAX;
	m.append_req.send_seq = UINT64_MAX;
	roundtrip_msg(&m, buf, sizeof(buf));
}

/* Many entries of varied sizes, one of them the largest allowed (1 MiB). */
static void test_roundtrip_append_many(void **state)
{
	static const uint32_t sizes[] = { 0, 1, 7, 28, 100, 1000, 4096, 8999, 9000, 20000, 1 };
	uint32_t n = sizeof(sizes) / sizeof(sizes[0]);
	uint8_t *data = malloc(ENTRY_MAX);
	uint8_t *buf = malloc(LCR_WIRE_MSG_MAX);
	struct lcr_entry e[ENTS_MAX];
	struct lcr_msg m = sample_append(0);
	size_t at = 0;

	(void)state;
	assert_non_null(data);
	assert_non_null(buf);
	fill(data, ENTRY_MAX, 99);
	for (uint32_t i = 0; i < ENTS_MAX; i++) {
		e[i].id = lid(9, 1, 42 + i);
		e[i].type = LCR_ENTRY_BLANK + i % 3;
		e[i].len = i < n ? sizes[i] : i;
		e[i].data = data + at;
		at = (at + e[i].len) % 4096;
	}
	m.append_req.entries = e;
	m.append_req.n_entries = ENTS_MAX;
	roundtrip_msg(&m, buf, LCR_WIRE_MSG_MAX);

	/* One entry of exactly 1 MiB, alone and with small ones. */
	e[0].len = ENTRY_MAX;
	e[0].data = data;
	m.append_req.n_entries = 1;
	assert_int_equal(roundtrip_msg(&m, buf, LCR_WIRE_MSG_MAX), 104 + 28 + ENTRY_MAX);
	m.append_req.n_entries = ENTS_MAX;
	roundtrip_msg(&m, buf, LCR_WIRE_MSG_MAX);
	free(data);
	free(buf);
}

static void test_roundtrip_append_resp_transfer(void **state)
{
	uint8_t buf[128];

	(void)state;
	for (uint32_t r = LCR_APPEND_OK; r <= LCR_APPEND_HIGHER_VOTE; r++) {
		struct lcr_msg m = sample_append_resp();

		m.append_resp.result = r;
		assert_int_equal(roundtrip_msg(&m, buf, sizeof(buf)), 80);
		m.append_resp.vote = vote(UINT64_MAX, UINT32_MAX, true);
		m.append_resp.log_id = lid(UINT64_MAX, UINT32_MAX, UINT64_MAX);
		m.append_resp.stream_id = UINT64_MAX;
		m.append_resp.inflight_id = UINT64_MAX;
		m.append_resp.send_ns = UINT64_MAX;
		m.append_resp.send_seq = UINT64_MAX;
		roundtrip_msg(&m, buf, sizeof(buf));
	}
	struct lcr_msg m = sample_transfer();
	assert_int_equal(roundtrip_msg(&m, buf, sizeof(buf)), 48);
	m.transfer.from_leader = vote(UINT64_MAX, UINT32_MAX, false);
	m.transfer.to = UINT32_MAX;
	m.transfer.last_log_id = lid(UINT64_MAX, UINT32_MAX, UINT64_MAX);
	roundtrip_msg(&m, buf, sizeof(buf));
}

/* READ_INDEX_REQ and READ_INDEX_RESP: byte layout, round trips, every check. */
static void test_read_index_layout_and_checks(void **state)
{
	static const uint8_t want_req[24] = {
		12, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, /* vote */
		8,  7, 6, 5, 4, 3, 2, 1,			 /* read id */
	};
	uint8_t buf[128], dg[LCR_WIRE_DGRAM_MAX];
	struct lcr_wire_hdr h;

	(void)state;
	struct lcr_msg m = sample_read_index_req();
	assert_int_equal(lcr_wire_encode_msg(buf, sizeof(buf), &m), 24);
	assert_memory_equal(buf, want_req, 24);
	assert_int_equal(roundtrip_msg(&m, buf, sizeof(buf)), 24);
	m.read_index_req.vote = vote(UINT64_MAX, UINT32_MAX, false);
	m.read_index_req.read_id = UINT64_MAX;
	roundtrip_msg(&m, buf, sizeof(buf));

	m = sample_read_index_resp();
	assert_int_equal(lcr_wire_encode_msg(buf, sizeof(buf), &m), 56);
	assert_int_equal(buf[0], LCR_READ_INDEX_OK);
	assert_int_equal(buf[8], 12);	 /* vote term */
	assert_int_equal(buf[24], 8);	 /* read id, least significant byte first */
	assert_int_equal(buf[32], 12);	 /* read log id: term */
	assert_int_equal(buf[48], 0xf4); /* ... index 500 */
	assert_int_equal(buf[49], 0x01);
	for (uint32_t r = LCR_READ_INDEX_OK; r <= LCR_READ_INDEX_FULL; r++) {
		m = sample_read_index_resp();
		m.read_index_resp.result = r;
		if (r != LCR_READ_INDEX_OK)
			m.read_index_resp.read_log_id = lid(0, 0, 0);
		assert_int_equal(roundtrip_msg(&m, buf, sizeof(buf)), 56);
	}
	/* UNSUPPORTED is net.c's own answer, never on the wire; an error
	 * answer names no read index. */
	m = sample_read_index_resp();
	m.read_index_resp.result = LCR_READ_INDEX_UNSUPPORTED;
	assert_int_equal(lcr_wire_encode_msg(buf, sizeof(buf), &m), 0);
	size_t n = sample_payload(LCR_WIRE_READ_INDEX_RESP, buf, sizeof(buf));
	static const uint32_t results[] = { 0, 6, 7, 0x101, UINT32_MAX };
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		put32(buf, results[i]);
		assert_int_equal(decode_any(LCR_WIRE_READ_INDEX_RESP, buf, n), LCR_DROP_MALFORMED);
	}
	put32(buf, LCR_READ_INDEX_NOT_LEADER); /* with the sample's log id */
	assert_int_equal(decode_any(LCR_WIRE_READ_INDEX_RESP, buf, n), LCR_DROP_MALFORMED);
	memset(buf + 32, 0, 24);
	assert_int_equal(decode_any(LCR_WIRE_READ_INDEX_RESP, buf, n), LCR_DROP_NONE);
	/* Wrong lengths. */
	n = sample_payload(LCR_WIRE_READ_INDEX_REQ, buf, sizeof(buf));
	assert_int_equal(decode_any(LCR_WIRE_READ_INDEX_REQ, buf, n - 1), LCR_DROP_MALFORMED);
	buf[n] = 0;
	assert_int_equal(decode_any(LCR_WIRE_READ_INDEX_REQ, buf, n + 1), LCR_DROP_MALFORMED);
	/* Single datagrams only: never on a stream, never fragmented. */
	for (uint32_t t = LCR_WIRE_READ_INDEX_REQ; t <= LCR_WIRE_READ_INDEX_RESP; t++) {
		size_t len = sample_dgram(t, dg);
		assert_int_equal(lcr_wire_open(dg, len, CLUSTER, &h), LCR_DROP_NONE);
		dg[32] = 1; /* stream 1, seq 1 */
		dg[40] = 1;
		reseal(dg, len);
		assert_int_equal(lcr_wire_open(dg, len, CLUSTER, &h), LCR_DROP_MALFORMED);
	}
}

static uint32_t open_with(uint8_t type, uint64_t stream, uint64_t seq, uint16_t index,
			  uint16_t count, uint32_t len);

/* The snapshot transfer's messages: each field back as written, the layout's
 * fixed sizes, and everything the decoder refuses refused by the encoder too. */
static void test_roundtrip_snapshot(void **state)
{
	uint8_t buf[256];
	(void)state;

	struct lcr_wire_snap_begin b = sample_snap_begin(), b2;
	size_t n = lcr_wire_encode_snap_begin(buf, sizeof(buf), &b);
	assert_int_equal(n, 104);
	assert_int_equal(lcr_wire_decode_snap_begin(buf, n, &b2), LCR_DROP_NONE);
	/* Field by field: the log id's padding is not part of the message. */
	assert_true(lcr_log_id_eq(b.req.meta.last, b2.req.meta.last));
	assert_int_equal(b2.req.meta.id, b.req.meta.id);
	assert_vote_eq(b.req.vote, b2.req.vote);
	assert_int_equal(b2.req.size, b.req.size);
	assert_int_equal(b2.req.stream_id, 0x5555);
	assert_int_equal(b2.req.inflight_id, 12);
	assert_int_equal(b2.req.send_ns, 999);
	assert_int_equal(b2.req.send_seq, 31);
	assert_int_equal(b2.req.data, 0);
	assert_int_equal(b2.xfer, 0x77);
	assert_int_equal(b2.chunk_max, 65536);
	assert_int_equal(lcr_wire_decode_snap_begin(buf, n - 1, &b2), LCR_DROP_MALFORMED);
	buf[100] = 1; /* the reserved bytes */
	assert_int_equal(lcr_wire_decode_snap_begin(buf, n, &b2), LCR_DROP_MALFORMED);
	struct lcr_wire_snap_begin bad = b;
	bad.xfer = 0;
	assert_int_equal(lcr_wire_encode_snap_begin(buf, sizeof(buf), &bad), 0);
	bad = b;
	bad.chunk_max = LCR_WIRE_SNAP_CHUNK_MAX + 1;
	assert_int_equal(lcr_wire_encode_snap_begin(buf, sizeof(buf), &bad), 0);
	bad = b;
	bad.req.size = LCR_WIRE_SNAP_SIZE_MAX + 1;
	assert_int_equal(lcr_wire_encode_snap_begin(buf, sizeof(buf), &bad), 0);
	bad = b;
	bad.req.data = 5; /* a handle of the sender's node means nothing here */
	assert_int_equal(lcr_wire_encode_snap_begin(buf, sizeof(buf), &bad), 0);

	struct lcr_msg m = sample_snap_resp();
	assert_int_equal(roundtrip_msg(&m, buf, sizeof(buf)), 72);

	struct lcr_wire_snap_chunk c = sample_snap_chunk(), c2;
	n = lcr_wire_encode_snap_chunk(buf, sizeof(buf), &c);
	assert_int_equal(n, LCR_WIRE_SNAP_CHUNK_HDR + sizeof(chunk_bytes));
	assert_int_equal(lcr_wire_decode_snap_chunk(buf, n, &c2), LCR_DROP_NONE);
	assert_int_equal(c2.xfer, c.xfer);
	assert_int_equal(c2.offset, c.offset);
	assert_int_equal(c2.len, c.len);
	assert_int_equal(c2.crc, c.crc);
	assert_int_equal(c2.flags, c.flags);
	assert_int_equal(c2.total_crc, c.total_crc);
	assert_memory_equal(c2.data, chunk_bytes, sizeof(chunk_bytes));
	assert_ptr_equal(c2.data, buf + LCR_WIRE_SNAP_CHUNK_HDR);
	assert_int_equal(lcr_wire_decode_snap_chunk(buf, n - 1, &c2), LCR_DROP_MALFORMED);
	assert_int_equal(lcr_wire_decode_snap_chunk(buf, n + 1, &c2), LCR_DROP_MALFORMED);
	struct lcr_wire_snap_chunk cb = c;
	cb.flags = 0; /* a total CRC only on the last chunk */
	assert_int_equal(lcr_wire_encode_snap_chunk(buf, sizeof(buf), &cb), 0);
	cb = c;
	cb.flags = 2;
	assert_int_equal(lcr_wire_encode_snap_chunk(buf, sizeof(buf), &cb), 0);
	cb = c;
	cb.offset = LCR_WIRE_SNAP_SIZE_MAX - 1; /* ends past the largest snapshot */
	assert_int_equal(lcr_wire_encode_snap_chunk(buf, sizeof(buf), &cb), 0);

	struct lcr_wire_snap_ack a = { 0x77, 10, 20, LCR_SNAP_ST_DONE }, a2;
	n = lcr_wire_encode_snap_ack(buf, sizeof(buf), &a);
	assert_int_equal(n, 32);
	assert_int_equal(lcr_wire_decode_snap_ack(buf, n, &a2), LCR_DROP_NONE);
	assert_int_equal(a2.xfer, a.xfer);
	assert_int_equal(a2.written, a.written);
	assert_int_equal(a2.credit, a.credit);
	assert_int_equal(a2.status, a.status);
	struct lcr_wire_snap_ack ab = a;
	ab.written = 30; /* more taken than granted */
	assert_int_equal(lcr_wire_encode_snap_ack(buf, sizeof(buf), &ab), 0);
	ab = a;
	ab.status = LCR_SNAP_ST_MAX;
	assert_int_equal(lcr_wire_encode_snap_ack(buf, sizeof(buf), &ab), 0);

	struct lcr_wire_snap_cancel x = { 0x77 }, x2;
	n = lcr_wire_encode_snap_cancel(buf, sizeof(buf), &x);
	assert_int_equal(n, 8);
	assert_int_equal(lcr_wire_decode_snap_cancel(buf, n, &x2), LCR_DROP_NONE);
	assert_int_equal(x2.xfer, 0x77);
	x.xfer = 0;
	assert_int_equal(lcr_wire_encode_snap_cancel(buf, sizeof(buf), &x), 0);

	/* The opening and the chunks only on a stream; the rest never on one. */
	assert_int_equal(open_with(LCR_WIRE_SNAPSHOT_CHUNK, 0, 0, 0, 1, 40), LCR_DROP_MALFORMED);
	assert_int_equal(open_with(LCR_WIRE_SNAPSHOT_REQ, 0, 0, 0, 1, 104), LCR_DROP_MALFORMED);
	assert_int_equal(open_with(LCR_WIRE_SNAPSHOT_ACK, 5, 1, 0, 1, 32), LCR_DROP_MALFORMED);
	assert_int_equal(open_with(LCR_WIRE_SNAPSHOT_RESP, 5, 1, 0, 1, 72), LCR_DROP_MALFORMED);
	assert_int_equal(open_with(LCR_WIRE_SNAPSHOT_CANCEL, 5, 1, 0, 1, 8), LCR_DROP_MALFORMED);
	assert_int_equal(open_with(LCR_WIRE_SNAPSHOT_CHUNK, 5, 1, 0, 2, 40), LCR_DROP_NONE);
}

static void test_roundtrip_ack(void **state)
{
	static const struct lcr_wire_ack acks[] = {
		{ 1, 0, 0, 0 },
		{ 0x2222, 1000, 0x8000000000000005ull, 256, LCR_WIRE_ACK_FRESH },
		{ UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT32_MAX },
		/* A hello that offers acks in answers' headers. */
		{ LCR_WIRE_STREAM_HELLO, 7, 0x1234, 1024,
		  LCR_WIRE_ACK_FRESH | LCR_WIRE_ACK_REPLY_ACKS },
	};
	uint8_t buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(acks) / sizeof(acks[0]); i++) {
		struct lcr_wire_ack got;

		assert_int_equal(lcr_wire_encode_ack(buf, sizeof(buf), &acks[i]), 32);
		assert_int_equal(lcr_wire_encode_ack(buf, 31, &acks[i]), 0);
		assert_int_equal(lcr_wire_decode_ack(buf, 32, &got), LCR_DROP_NONE);
		assert_int_equal(got.stream, acks[i].stream);
		assert_int_equal(got.cum, acks[i].cum);
		assert_int_equal(got.sack, acks[i].sack);
		assert_int_equal(got.window, acks[i].window);
		assert_int_equal(got.flags, acks[i].flags);
	}
	/* REPLY_ACKS only in a hello; bits above it never. */
	struct lcr_wire_ack bad = { 0x2222, 5, 0, 64, LCR_WIRE_ACK_REPLY_ACKS }, got;
	assert_int_equal(lcr_wire_encode_ack(buf, sizeof(buf), &bad), 32);
	assert_int_equal(lcr_wire_decode_ack(buf, 32, &got), LCR_DROP_MALFORMED);
	bad.stream = LCR_WIRE_STREAM_HELLO;
	bad.flags = 0x04;
	assert_int_equal(lcr_wire_encode_ack(buf, sizeof(buf), &bad), 32);
	assert_int_equal(lcr_wire_decode_ack(buf, 32, &got), LCR_DROP_MALFORMED);
}

static void check_client_req(const struct lcr_client_req *r, uint8_t *buf, size_t cap)
{
	struct lcr_client_req got;
	size_t n = lcr_wire_encode_client_req(buf, cap, r);

	assert_int_equal(n, 32 + r->key_len + r->value_len + r->expect_len);
	assert_int_equal(lcr_wire_encode_client_req(buf, n - 1, r), 0);
	assert_int_equal(lcr_wire_decode_client_req(buf, n, &got), LCR_DROP_NONE);
	assert_int_equal(got.client, r->client);
	assert_int_equal(got.id, r->id);
	assert_int_equal(got.op, r->op);
	assert_int_equal(got.flags, r->flags);
	assert_int_equal(got.key_len, r->key_len);
	assert_int_equal(got.value_len, r->value_len);
	assert_int_equal(got.expect_len, r->expect_len);
	if (r->key_len)
		assert_memory_equal(got.key, r->key, r->key_len);
	if (r->value_len)
		assert_memory_equal(got.value, r->value, r->value_len);
	if (r->expect_len)
		assert_memory_equal(got.expect, r->expect, r->expect_len);
}

static void test_roundtrip_client_req(void **state)
{
	static uint8_t key[LCR_CLIENT_KEY_MAX], val[LCR_CLIENT_VALUE_MAX],
		exp[LCR_CLIENT_VALUE_MAX];
	static uint8_t buf[32 + LCR_CLIENT_KEY_MAX + 2 * LCR_CLIENT_VALUE_MAX];
	struct lcr_client_req r = { UINT64_MAX, UINT64_MAX, 0, 0, 0, 0, key, val, exp };

	(void)state;
	fill(key, sizeof(key), 1);
	fill(val, sizeof(val), 2);
	fill(exp, sizeof(exp), 3);
	for (uint8_t op = LCR_CLIENT_PUT; op <= LCR_CLIENT_SNAPSHOT; op++) {
		bool keyless = op == LCR_CLIENT_STATS || op == LCR_CLIENT_SNAPSHOT;
		r.op = op;
		r.key_len = keyless ? 0 : LCR_CLIENT_KEY_MAX;
		r.value_len =
			op == LCR_CLIENT_PUT || op == LCR_CLIENT_CAS ? LCR_CLIENT_VALUE_MAX : 0;
		r.expect_len = op == LCR_CLIENT_CAS ? LCR_CLIENT_VALUE_MAX : 0;
		check_client_req(&r, buf, sizeof(buf));
		/* Small and empty fields too. */
		r.key_len = keyless ? 0 : 1;
		r.value_len = op == LCR_CLIENT_PUT || op == LCR_CLIENT_CAS ? 2 : 0;
		r.expect_len = op == LCR_CLIENT_CAS ? 3 : 0;
		check_client_req(&r, buf, sizeof(buf));
	}
	/* CAS with EXPECT_VALUE: an expected value, the empty one included. */
	r.op = LCR_CLIENT_CAS;
	r.flags = LCR_CLIENT_F_EXPECT_VALUE;
	r.key_len = LCR_CLIENT_KEY_MAX;
	r.value_len = r.expect_len = LCR_CLIENT_VALUE_MAX;
	check_client_req(&r, buf, sizeof(buf));
	r.expect_len = 0;
	check_client_req(&r, buf, sizeof(buf));
	r.value_len = 0;
	check_client_req(&r, buf, sizeof(buf));
	/* SNAPSHOT on the receiving node, whatever its role. */
	r.op = LCR_CLIENT_SNAPSHOT;
	r.flags = LCR_CLIENT_F_THIS_NODE;
	r.key_len = 0;
	check_client_req(&r, buf, sizeof(buf));
}

/* SNAPSHOT (op 6) byte by byte, as docs/wire-protocol.md lays it out, and its answer. */
static void test_client_snapshot_layout(void **state)
{
	static const uint8_t want[] = {
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* client id */
		0x02, 0,    0,	  0,	0,    0,    0,	  0,	/* request id */
		0x06,						/* op: SNAPSHOT */
		0x02,						/* flags: THIS_NODE */
		0,    0,					/* reserved */
		0,    0,    0,	  0,	0,    0,    0,	  0,
		0,    0,    0,	  0, /* key, value, expect: 0 */
	};
	struct lcr_client_req r = { .client = 0x0102030405060708ull,
				    .id = 2,
				    .op = LCR_CLIENT_SNAPSHOT,
				    .flags = LCR_CLIENT_F_THIS_NODE };
	struct lcr_client_req got;
	uint8_t buf[64];

	(void)state;
	assert_int_equal(lcr_wire_encode_client_req(buf, sizeof(buf), &r), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(lcr_wire_decode_client_req(buf, sizeof(want), &got), LCR_DROP_NONE);
	assert_int_equal(got.op, LCR_CLIENT_SNAPSHOT);
	assert_int_equal(got.flags, LCR_CLIENT_F_THIS_NODE);
	/* A key, a value or an expected value is refused both ways. */
	static const uint8_t k[1] = "k";
	for (int f = 0; f < 3; f++) {
		struct lcr_client_req bad = r;
		uint32_t *len = f == 0 ? &bad.key_len : f == 1 ? &bad.value_len : &bad.expect_len;
		bad.key = bad.value = bad.expect = k;
		*len = 1;
		assert_int_equal(lcr_wire_encode_client_req(buf, sizeof(buf), &bad), 0);
		memcpy(buf, want, sizeof(want));
		buf[20 + 4 * f] = 1;
		buf[sizeof(want)] = 'k';
		assert_int_equal(lcr_wire_decode_client_req(buf, sizeof(want) + 1, &got),
				 LCR_DROP_MALFORMED);
	}
	/* The answer: the snapshot's last log id, index then term. */
	uint8_t id[LCR_CLIENT_SNAPSHOT_RESULT] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 3 };
	struct lcr_client_resp rs = { 2, LCR_CLIENT_OK, LCR_CLIENT_SNAPSHOT, 0, sizeof(id), id };
	struct lcr_client_resp rgot;
	assert_int_equal(lcr_wire_encode_client_resp(buf, sizeof(buf), &rs), 24 + sizeof(id));
	assert_int_equal(buf[9], LCR_CLIENT_SNAPSHOT);
	assert_int_equal(lcr_wire_decode_client_resp(buf, 24 + sizeof(id), &rgot), LCR_DROP_NONE);
	assert_int_equal(rgot.op, LCR_CLIENT_SNAPSHOT);
	assert_memory_equal(rgot.value, id, sizeof(id));
	/* Only STATS may answer more than a value's worth. */
	static uint8_t big[LCR_CLIENT_VALUE_MAX + 1];
	static uint8_t out[LCR_CLIENT_VALUE_MAX + 64];
	rs.value = big;
	rs.value_len = sizeof(big);
	assert_int_equal(lcr_wire_encode_client_resp(out, sizeof(out), &rs), 0);
}

/*
 * The membership ops (docs/wire-protocol.md, "The membership ops"):
 * CHANGE_MEMBERSHIP's target byte by byte, its bounds and layout, the CAS
 * log id; TRANSFER_LEADER's node id; MEMBERS without fields; the statuses
 * that answer them and no other op.
 */
static void test_client_membership(void **state)
{
	static const uint8_t want_target[] = {
		2,   0,	  0,   0,   1,	 0,   0,   0,	1,   0,	  0,   0,   0,	 0,
		0,   0,				      /* voters, learners, addrs, 0 */
		2,   0,	  0,   0,   3,	 0,   0,   0, /* voters 2, 3 */
		4,   0,	  0,   0,		      /* learner 4 */
		4,   0,	  0,   0,   14,	 0,   0,   0, /* node 4's address: 14 bytes */
		'1', '2', '7', '.', '0', '.', '0', '.', '1', ':', '7', '4', '0', '1',
	};
	struct lcr_client_target t = { .n_voters = 2,
				       .voters = { 2, 3 },
				       .n_learners = 1,
				       .learners = { 4 },
				       .n_addrs = 1,
				       .addrs = { { 4, "127.0.0.1:7401" } } };
	struct lcr_client_target got;
	uint8_t v[LCR_CLIENT_TARGET_BYTES_MAX + 8], buf[64 + LCR_CLIENT_TARGET_BYTES_MAX + 24];

	(void)state;
	assert_int_equal(lcr_wire_encode_client_target(v, sizeof(v), &t), sizeof(want_target));
	assert_memory_equal(v, want_target, sizeof(want_target));
	assert_int_equal(lcr_wire_encode_client_target(v, sizeof(want_target) - 1, &t), 0);
	assert_int_equal(lcr_wire_decode_client_target(v, sizeof(want_target), &got),
			 LCR_DROP_NONE);
	assert_int_equal(got.n_voters, 2);
	assert_int_equal(got.voters[1], 3);
	assert_int_equal(got.learners[0], 4);
	assert_string_equal(got.addrs[0].addr, "127.0.0.1:7401");
	/* Every cut is refused, and a byte more. */
	for (size_t n = 0; n < sizeof(want_target); n++)
		assert_int_equal(lcr_wire_decode_client_target(v, n, &got), LCR_DROP_MALFORMED);
	v[sizeof(want_target)] = 0;
	assert_int_equal(lcr_wire_decode_client_target(v, sizeof(want_target) + 1, &got),
			 LCR_DROP_MALFORMED);
	/* Counts over 16, a reserved byte, an empty, a 64-byte or a blank address. */
	for (int field = 0; field < 3; field++) {
		memcpy(v, want_target, sizeof(want_target));
		v[4 * field] = LCR_NODES_MAX + 1;
		assert_int_equal(lcr_wire_decode_client_target(v, sizeof(want_target), &got),
				 LCR_DROP_MALFORMED);
	}
	memcpy(v, want_target, sizeof(want_target));
	v[13] = 1;
	assert_int_equal(lcr_wire_decode_client_target(v, sizeof(want_target), &got),
			 LCR_DROP_MALFORMED);
	memcpy(v, want_target, sizeof(want_target));
	v[sizeof(want_target) - 5] = ' ';
	assert_int_equal(lcr_wire_decode_client_target(v, sizeof(want_target), &got),
			 LCR_DROP_MALFORMED);
	t.addrs[0].addr[0] = '\0';
	assert_int_equal(lcr_wire_encode_client_target(v, sizeof(v), &t), 0);
	memset(t.addrs[0].addr, 'a', LCR_CLIENT_ADDR_MAX);
	assert_int_equal(lcr_wire_encode_client_target(v, sizeof(v), &t), 0);
	t.addrs[0].addr[LCR_CLIENT_ADDR_MAX - 1] = '\0'; /* 63 bytes: the longest */
	assert_int_equal(lcr_wire_encode_client_target(v, sizeof(v), &t), 16 + 12 + 8 + 63);
	/* No voter is a layout the node judges (NO_VOTERS), not the codec. */
	struct lcr_client_target none = { 0 };
	assert_int_equal(lcr_wire_encode_client_target(v, sizeof(v), &none), 16);
	assert_int_equal(lcr_wire_decode_client_target(v, 16, &got), LCR_DROP_NONE);

	/* The request: the target as value, the CAS log id as expect (24 or 0 bytes). */
	struct lcr_log_id id = { { 3, 1 }, 42 }, id_got;
	uint8_t e[LCR_CLIENT_LOG_ID_BYTES];
	lcr_wire_encode_client_log_id(e, &id);
	assert_int_equal(lcr_wire_decode_client_log_id(e, sizeof(e), &id_got), LCR_DROP_NONE);
	assert_true(lcr_log_id_eq(id, id_got));
	memcpy(v, want_target, sizeof(want_target));
	struct lcr_client_req r = { .client = 1,
				    .id = 2,
				    .op = LCR_CLIENT_CHANGE_MEMBERSHIP,
				    .value = v,
				    .value_len = sizeof(want_target),
				    .expect = e,
				    .expect_len = sizeof(e) };
	struct lcr_client_req rgot;
	size_t n = lcr_wire_encode_client_req(buf, sizeof(buf), &r);
	assert_int_equal(n, 32 + sizeof(want_target) + sizeof(e));
	assert_int_equal(lcr_wire_decode_client_req(buf, n, &rgot), LCR_DROP_NONE);
	r.expect_len = 0;
	assert_int_equal(lcr_wire_encode_client_req(buf, sizeof(buf), &r),
			 32 + sizeof(want_target));
	r.expect_len = 8; /* neither empty nor a log id */
	assert_int_equal(lcr_wire_encode_client_req(buf, sizeof(buf), &r), 0);
	r.expect_len = sizeof(e);
	e[12] = 1; /* the log id's reserved bytes */
	assert_int_equal(lcr_wire_encode_client_req(buf, sizeof(buf), &r), 0);
	e[12] = 0;
	r.value_len = 15; /* shorter than a target */
	assert_int_equal(lcr_wire_encode_client_req(buf, sizeof(buf), &r), 0);
	r.value_len = sizeof(want_target);
	n = lcr_wire_encode_client_req(buf, sizeof(buf), &r);
	buf[32 + 4] = 2; /* two learners: the bytes no longer add up */
	assert_int_equal(lcr_wire_decode_client_req(buf, n, &rgot), LCR_DROP_MALFORMED);

	/* TRANSFER_LEADER: four bytes, not 0; MEMBERS: nothing, THIS_NODE allowed. */
	uint8_t node[4] = { 2, 0, 0, 0 };
	struct lcr_client_req x = { .op = LCR_CLIENT_TRANSFER_LEADER,
				    .value = node,
				    .value_len = 4 };
	n = lcr_wire_encode_client_req(buf, sizeof(buf), &x);
	assert_int_equal(n, 36);
	assert_int_equal(lcr_wire_decode_client_req(buf, n, &rgot), LCR_DROP_NONE);
	buf[32] = 0;
	assert_int_equal(lcr_wire_decode_client_req(buf, n, &rgot), LCR_DROP_MALFORMED);
	x.value_len = 3;
	assert_int_equal(lcr_wire_encode_client_req(buf, sizeof(buf), &x), 0);
	x.value_len = 4;
	x.expect = node;
	x.expect_len = 4; /* no expect */
	assert_int_equal(lcr_wire_encode_client_req(buf, sizeof(buf), &x), 0);
	struct lcr_client_req mb = { .op = LCR_CLIENT_MEMBERS, .flags = LCR_CLIENT_F_THIS_NODE };
	assert_int_equal(lcr_wire_encode_client_req(buf, sizeof(buf), &mb), 32);
	mb.value = node;
	mb.value_len = 4;
	assert_int_equal(lcr_wire_encode_client_req(buf, sizeof(buf), &mb), 0);

	/* Statuses 6..11 answer the ops that may get them, and no other op. */
	for (int st = 0; st < 256; st++)
		for (int op = LCR_CLIENT_PUT; op <= LCR_CLIENT_OP_MAX; op++) {
			struct lcr_client_resp rs = { 9, (uint8_t)st, (uint8_t)op, 0, 0, NULL };
			bool change = op == LCR_CLIENT_CHANGE_MEMBERSHIP,
			     transfer = op == LCR_CLIENT_TRANSFER_LEADER;
			bool ok = st <= LCR_CLIENT_ERROR ||
				  ((st == LCR_CLIENT_BUSY || st == LCR_CLIENT_UNKNOWN_NODE ||
				    st == LCR_CLIENT_TIMEOUT) &&
				   (change || transfer)) ||
				  ((st == LCR_CLIENT_INVALID || st == LCR_CLIENT_NO_VOTERS) &&
				   change) ||
				  (st == LCR_CLIENT_TRANSFER_FAILED && transfer);
			assert_int_equal(lcr_wire_encode_client_resp(buf, sizeof(buf), &rs) > 0,
					 ok);
		}
}

static void check_client_resp(const struct lcr_client_resp *r, uint8_t *buf, size_t cap)
{
	struct lcr_client_resp got;
	size_t n = lcr_wire_encode_client_resp(buf, cap, r);

	assert_int_equal(n, 24 + r->value_len);
	assert_int_equal(lcr_wire_encode_client_resp(buf, n - 1, r), 0);
	assert_int_equal(lcr_wire_decode_client_resp(buf, n, &got), LCR_DROP_NONE);
	assert_int_equal(got.id, r->id);
	assert_int_equal(got.status, r->status);
	assert_int_equal(got.op, r->op);
	assert_int_equal(got.leader, r->leader);
	assert_int_equal(got.value_len, r->value_len);
	if (r->value_len)
		assert_memory_equal(got.value, r->value, r->value_len);
}

static void test_roundtrip_client_resp(void **state)
{
	uint8_t *val = malloc(STATS_MAX);
	uint8_t *buf = malloc(LCR_WIRE_MSG_MAX);
	struct lcr_client_resp r = { UINT64_MAX, 0, 0, UINT32_MAX, 0, val };

	(void)state;
	assert_non_null(val);
	assert_non_null(buf);
	fill(val, STATS_MAX, 4);
	for (uint8_t st = LCR_CLIENT_OK; st <= LCR_CLIENT_ERROR; st++) {
		for (uint8_t op = LCR_CLIENT_PUT; op <= LCR_CLIENT_SNAPSHOT; op++) {
			r.status = st;
			r.op = op;
			r.value_len = LCR_CLIENT_VALUE_MAX;
			check_client_resp(&r, buf, LCR_WIRE_MSG_MAX);
			r.value_len = 0;
			check_client_resp(&r, buf, LCR_WIRE_MSG_MAX);
		}
	}
	/* Metrics may fill a whole message. */
	r.status = LCR_CLIENT_OK;
	r.op = LCR_CLIENT_STATS;
	r.value_len = STATS_MAX;
	check_client_resp(&r, buf, LCR_WIRE_MSG_MAX);
	free(val);
	free(buf);
}

/* Every sample datagram opens and decodes; the header comes back whole. */
static void test_roundtrip_datagrams(void **state)
{
	uint8_t buf[LCR_WIRE_DGRAM_MAX];

	(void)state;
	for (int i = 0; i < WIRE_TYPES; i++) {
		size_t n = sample_dgram(wire_types[i], buf);
		struct lcr_wire_hdr h;

		assert_int_equal(lcr_wire_open(buf, n, CLUSTER, &h), LCR_DROP_NONE);
		assert_int_equal(h.type, wire_types[i]);
		assert_int_equal(h.len, n - LCR_WIRE_HDR);
		assert_int_equal(h.group, 1);
		assert_int_equal(h.from, 2);
		assert_int_equal(h.to, 3);
		assert_int_equal(decode_any(h.type, buf + LCR_WIRE_HDR, h.len), LCR_DROP_NONE);
	}
	/* The largest datagram. */
	struct lcr_wire_hdr h = hdr(LCR_WIRE_CLIENT_RESP, LCR_WIRE_DGRAM_MAX - LCR_WIRE_HDR);
	struct lcr_wire_hdr got;
	memset(buf + LCR_WIRE_HDR, 0xa5, h.len);
	assert_int_equal(lcr_wire_seal(buf, &h), LCR_WIRE_DGRAM_MAX);
	assert_int_equal(lcr_wire_open(buf, LCR_WIRE_DGRAM_MAX, CLUSTER, &got), LCR_DROP_NONE);
}

/* The client port takes larger datagrams, but only client messages off streams. */
static void test_open_client(void **state)
{
	static uint8_t buf[LCR_WIRE_CLIENT_DGRAM_MAX + 1];
	struct lcr_wire_hdr got;

	(void)state;
	struct lcr_wire_hdr h = hdr(LCR_WIRE_CLIENT_RESP, LCR_WIRE_CLIENT_DGRAM_MAX - LCR_WIRE_HDR);
	memset(buf + LCR_WIRE_HDR, 0x5a, h.len);
	assert_int_equal(lcr_wire_seal(buf, &h), LCR_WIRE_CLIENT_DGRAM_MAX);
	assert_int_equal(lcr_wire_open_client(buf, LCR_WIRE_CLIENT_DGRAM_MAX, CLUSTER, &got),
			 LCR_DROP_NONE);
	/* Too big for the Raft port, and one byte more is too big for either. */
	assert_int_equal(lcr_wire_open(buf, LCR_WIRE_CLIENT_DGRAM_MAX, CLUSTER, &got),
			 LCR_DROP_OVERSIZED);
	assert_int_equal(lcr_wire_open_client(buf, LCR_WIRE_CLIENT_DGRAM_MAX + 1, CLUSTER, &got),
			 LCR_DROP_OVERSIZED);
	/* Raft traffic is refused on the client port. */
	for (int i = 0; i < WIRE_TYPES; i++) {
		size_t n = sample_dgram(wire_types[i], buf);
		uint32_t want = wire_types[i] == LCR_WIRE_CLIENT_REQ ||
						wire_types[i] == LCR_WIRE_CLIENT_RESP
					? LCR_DROP_NONE
					: LCR_DROP_TYPE;
		assert_int_equal(lcr_wire_open_client(buf, n, CLUSTER, &got), want);
	}
	/* A wrong cluster is still a wrong cluster. */
	h = hdr(LCR_WIRE_CLIENT_REQ, 40);
	memset(buf + LCR_WIRE_HDR, 0, 40);
	size_t n = lcr_wire_seal(buf, &h);
	assert_int_equal(lcr_wire_open_client(buf, n, CLUSTER + 1, &got), LCR_DROP_CLUSTER);
}

/* ---- encoders refuse what decoders would ------------------------------------- */

static void test_encode_refuses(void **state)
{
	uint8_t *buf = malloc(2 * LCR_WIRE_MSG_MAX);
	uint8_t *data = calloc(1, ENTRY_MAX + 1);
	struct lcr_entry e[2] = { { { { 1, 1 }, 1 }, LCR_ENTRY_NORMAL, ENTRY_MAX + 1, data },
				  { { { 1, 1 }, 2 }, LCR_ENTRY_NORMAL, ENTRY_MAX, data } };
	struct lcr_msg m = sample_append(0);

	(void)state;
	assert_non_null(buf);
	assert_non_null(data);
	m.append_req.entries = e;
	m.append_req.n_entries = 1;
	assert_int_equal(lcr_wire_encode_msg(buf, 2 * LCR_WIRE_MSG_MAX, &m), 0);
	/* Two 1 MiB entries: each is fine, together over LCR_WIRE_MSG_MAX. */
	e[0].len = ENTRY_MAX;
	m.append_req.n_entries = 2;
	assert_int_equal(lcr_wire_encode_msg(buf, 2 * LCR_WIRE_MSG_MAX, &m), 0);
	e[0].len = 1;
	for (uint32_t t = 0; t < 6; t += 4) { /* entry types 0 and 4 */
		e[0].type = t;
		assert_int_equal(lcr_wire_encode_msg(buf, 2 * LCR_WIRE_MSG_MAX, &m), 0);
	}

	m = sample_append_resp();
	m.append_resp.result = 0;
	assert_int_equal(lcr_wire_encode_msg(buf, 128, &m), 0);
	m.append_resp.result = 4;
	assert_int_equal(lcr_wire_encode_msg(buf, 128, &m), 0);
	m.type = 6;
	assert_int_equal(lcr_wire_encode_msg(buf, 128, &m), 0);
	m.type = 0;
	assert_int_equal(lcr_wire_encode_msg(buf, 128, &m), 0);

	struct lcr_wire_ack a = { 0, 1, 0, 1 };
	assert_int_equal(lcr_wire_encode_ack(buf, 64, &a), 0);

	struct lcr_client_req rq = { 1, 1, LCR_CLIENT_GET, 1, 1, 0, data, data, data };
	assert_int_equal(lcr_wire_encode_client_req(buf, 64, &rq), 0); /* GET with a value */
	rq.op = LCR_CLIENT_PUT;
	rq.expect_len = 1;
	assert_int_equal(lcr_wire_encode_client_req(buf, 64, &rq), 0); /* PUT with expect */
	rq.op = LCR_CLIENT_STATS;
	rq.value_len = rq.expect_len = 0;
	assert_int_equal(lcr_wire_encode_client_req(buf, 64, &rq), 0); /* STATS with a key */
	rq.op = LCR_CLIENT_PUT;
	rq.key_len = LCR_CLIENT_KEY_MAX + 1;
	assert_int_equal(lcr_wire_encode_client_req(buf, 65536, &rq), 0);
	rq.key_len = 1;
	rq.value_len = LCR_CLIENT_VALUE_MAX + 1;
	assert_int_equal(lcr_wire_encode_client_req(buf, 65536, &rq), 0);
	rq.value_len = 1;
	rq.op = 0;
	assert_int_equal(lcr_wire_encode_client_req(buf, 64, &rq), 0);
	rq.op = LCR_CLIENT_OP_MAX + 1;
	assert_int_equal(lcr_wire_encode_client_req(buf, 64, &rq), 0);
	rq.op = LCR_CLIENT_SNAPSHOT; /* with a key and a value */
	assert_int_equal(lcr_wire_encode_client_req(buf, 64, &rq), 0);

	struct lcr_client_resp rs = {
		1, LCR_CLIENT_OK, LCR_CLIENT_GET, 0, LCR_CLIENT_VALUE_MAX + 1, data
	};
	assert_int_equal(lcr_wire_encode_client_resp(buf, 65536, &rs), 0);
	rs.op = LCR_CLIENT_STATS;
	assert_true(lcr_wire_encode_client_resp(buf, 65536, &rs) > 0);
	rs.status = LCR_CLIENT_ERROR; /* an error message is an ordinary value */
	assert_int_equal(lcr_wire_encode_client_resp(buf, 65536, &rs), 0);
	rs.value_len = 0;
	rs.status = 6;
	assert_int_equal(lcr_wire_encode_client_resp(buf, 64, &rs), 0);
	rs.status = 0;
	rs.op = 0;
	assert_int_equal(lcr_wire_encode_client_resp(buf, 64, &rs), 0);
	rs.op = LCR_CLIENT_OP_MAX + 1;
	assert_int_equal(lcr_wire_encode_client_resp(buf, 64, &rs), 0);
	free(buf);
	free(data);
}

/* ---- lcr_wire_open: every header drop ---------------------------------------- */

static void test_open_drops(void **state)
{
	uint8_t buf[LCR_WIRE_DGRAM_MAX + 16];
	uint8_t ok[LCR_WIRE_DGRAM_MAX];
	struct lcr_wire_hdr h, got;
	size_t n;

	(void)state;
	memset(buf, 0, sizeof(buf));
	n = sample_dgram(LCR_WIRE_VOTE_REQ, ok);
	memcpy(buf, ok, n);
	assert_int_equal(lcr_wire_open(buf, n, CLUSTER, &got), LCR_DROP_NONE);

	/* Short: anything under a header, including nothing. */
	assert_int_equal(lcr_wire_open(buf, 0, CLUSTER, &got), LCR_DROP_SHORT);
	assert_int_equal(lcr_wire_open(buf, LCR_WIRE_HDR - 1, CLUSTER, &got), LCR_DROP_SHORT);

	/* Oversized, even if the header agrees. */
	h = hdr(LCR_WIRE_CLIENT_RESP, 0);
	lcr_wire_seal(buf, &h);
	put32(buf + 28, LCR_WIRE_DGRAM_MAX + 1 - LCR_WIRE_HDR);
	reseal(buf, LCR_WIRE_DGRAM_MAX + 1);
	assert_int_equal(lcr_wire_open(buf, LCR_WIRE_DGRAM_MAX + 1, CLUSTER, &got),
			 LCR_DROP_OVERSIZED);

	/* Magic, version. */
	memcpy(buf, ok, n);
	buf[0] ^= 1;
	reseal(buf, n);
	assert_int_equal(lcr_wire_open(buf, n, CLUSTER, &got), LCR_DROP_MAGIC);
	for (int v = 0; v < 256; v++) {
		if (v == LCR_WIRE_VERSION)
			continue;
		memcpy(buf, ok, n);
		buf[4] = (uint8_t)v;
		reseal(buf, n);
		assert_int_equal(lcr_wire_open(buf, n, CLUSTER, &got), LCR_DROP_VERSION);
	}

	/* Length: the header's and the datagram's disagree either way. */
	memcpy(buf, ok, n);
	buf[n] = 0;
	assert_int_equal(lcr_wire_open(buf, n - 1, CLUSTER, &got), LCR_DROP_LENGTH);
	assert_int_equal(lcr_wire_open(buf, n + 1, CLUSTER, &got), LCR_DROP_LENGTH);
	put32(buf + 28, UINT32_MAX);
	reseal(buf, n);
	assert_int_equal(lcr_wire_open(buf, n, CLUSTER, &got), LCR_DROP_LENGTH);

	/* Checksum: a payload byte or the CRC itself. */
	memcpy(buf, ok, n);
	buf[n - 1] ^= 0x80;
	assert_int_equal(lcr_wire_open(buf, n, CLUSTER, &got), LCR_DROP_CHECKSUM);
	memcpy(buf, ok, n);
	buf[53] ^= 1;
	assert_int_equal(lcr_wire_open(buf, n, CLUSTER, &got), LCR_DROP_CHECKSUM);

	/* Cluster: another cluster's valid datagram; the header is filled in. */
	memset(&got, 0, sizeof(got));
	assert_int_equal(lcr_wire_open(ok, n, CLUSTER + 1, &got), LCR_DROP_CLUSTER);
	assert_int_equal(got.cluster, CLUSTER);
	assert_int_equal(got.from, 2);

	/* Type: unknown types. */
	static const uint8_t bad_types[] = { 0, 14, 15, 18, 255 };
	for (size_t i = 0; i < sizeof(bad_types); i++) {
		memcpy(buf, ok, n);
		buf[5] = bad_types[i];
		reseal(buf, n);
		assert_int_equal(lcr_wire_open(buf, n, CLUSTER, &got), LCR_DROP_TYPE);
	}

	/* Flags we do not know. */
	memcpy(buf, ok, n);
	buf[6] |= 2;
	reseal(buf, n);
	assert_int_equal(lcr_wire_open(buf, n, CLUSTER, &got), LCR_DROP_MALFORMED);
	memcpy(buf, ok, n);
	buf[7] = 0x80;
	reseal(buf, n);
	assert_int_equal(lcr_wire_open(buf, n, CLUSTER, &got), LCR_DROP_MALFORMED);
}

/* Seal bytes with the given header fields, bypassing lcr_wire_seal's asserts. */
static uint32_t open_with(uint8_t type, uint64_t stream, uint64_t seq, uint16_t index,
			  uint16_t count, uint32_t len)
{
	static uint8_t buf[LCR_WIRE_DGRAM_MAX];
	struct lcr_wire_hdr h = hdr(type, len), got;

	h.stream = h.seq = 1;
	memset(buf + LCR_WIRE_HDR, 0, len);
	lcr_wire_seal(buf, &h);
	for (int i = 0; i < 8; i++) {
		buf[32 + i] = (uint8_t)(stream >> (8 * i));
		buf[40 + i] = (uint8_t)(seq >> (8 * i));
	}
	buf[48] = (uint8_t)index;
	buf[49] = (uint8_t)(index >> 8);
	buf[50] = (uint8_t)count;
	buf[51] = (uint8_t)(count >> 8);
	reseal(buf, LCR_WIRE_HDR + len);
	return lcr_wire_open(buf, LCR_WIRE_HDR + len, CLUSTER, &got);
}

static void test_open_fragments_and_streams(void **state)
{
	(void)state;
	/* Numbering: count >= 1, index < count. */
	assert_int_equal(open_with(LCR_WIRE_APPEND_REQ, 5, 9, 0, 1, 10), LCR_DROP_NONE);
	assert_int_equal(open_with(LCR_WIRE_APPEND_REQ, 5, 9, 0, 3, 10), LCR_DROP_NONE);
	assert_int_equal(open_with(LCR_WIRE_APPEND_REQ, 5, 9, 2, 3, 10), LCR_DROP_NONE);
	assert_int_equal(open_with(LCR_WIRE_APPEND_REQ, 5, 9, 65534, 65535, 1), LCR_DROP_NONE);
	assert_int_equal(open_with(LCR_WIRE_APPEND_REQ, 5, 9, 0, 0, 10), LCR_DROP_FRAGMENT);
	assert_int_equal(open_with(LCR_WIRE_APPEND_REQ, 5, 9, 3, 3, 10), LCR_DROP_FRAGMENT);
	assert_int_equal(open_with(LCR_WIRE_APPEND_REQ, 5, 9, 1, 1, 10), LCR_DROP_FRAGMENT);
	assert_int_equal(open_with(LCR_WIRE_APPEND_REQ, 5, 9, 65535, 65535, 10), LCR_DROP_FRAGMENT);
	/* A fragment carries something; an unfragmented message may be empty. */
	assert_int_equal(open_with(LCR_WIRE_APPEND_REQ, 5, 9, 1, 3, 0), LCR_DROP_FRAGMENT);
	assert_int_equal(open_with(LCR_WIRE_CLIENT_RESP, 0, 0, 0, 1, 0), LCR_DROP_NONE);
	/* A fragmented message is on a stream. */
	assert_int_equal(open_with(LCR_WIRE_CLIENT_RESP, 0, 0, 0, 2, 10), LCR_DROP_FRAGMENT);
	assert_int_equal(open_with(LCR_WIRE_CLIENT_RESP, 4, 1, 0, 2, 10), LCR_DROP_NONE);
	/* stream == 0 exactly when seq == 0. */
	assert_int_equal(open_with(LCR_WIRE_VOTE_REQ, 0, 0, 0, 1, 64), LCR_DROP_NONE);
	assert_int_equal(open_with(LCR_WIRE_VOTE_REQ, 5, 1, 0, 1, 64), LCR_DROP_NONE);
	assert_int_equal(open_with(LCR_WIRE_VOTE_REQ, 0, 1, 0, 1, 64), LCR_DROP_MALFORMED);
	assert_int_equal(open_with(LCR_WIRE_VOTE_REQ, 5, 0, 0, 1, 64), LCR_DROP_MALFORMED);
	/* AppendEntries always on a stream, stream acks never. */
	assert_int_equal(open_with(LCR_WIRE_APPEND_REQ, 0, 0, 0, 1, 104), LCR_DROP_MALFORMED);
	assert_int_equal(open_with(LCR_WIRE_STREAM_ACK, 0, 0, 0, 1, 32), LCR_DROP_NONE);
	assert_int_equal(open_with(LCR_WIRE_STREAM_ACK, 3, 3, 0, 1, 32), LCR_DROP_MALFORMED);
}

/* Flip every bit of a valid datagram, one at a time: each one is refused. */
static void test_open_refuses_every_bit_flip(void **state)
{
	static const uint32_t types[] = { LCR_WIRE_VOTE_REQ, LCR_WIRE_APPEND_REQ,
					  LCR_WIRE_CLIENT_RESP };
	uint8_t buf[LCR_WIRE_DGRAM_MAX];
	struct lcr_wire_hdr got;

	(void)state;
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		size_t n = sample_dgram(types[t], buf);
		uint32_t flips = 0;

		for (size_t bit = 0; bit < n * 8; bit++) {
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_not_equal(lcr_wire_open(buf, n, CLUSTER, &got), LCR_DROP_NONE);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			flips++;
		}
		assert_int_equal(flips, n * 8);
		assert_int_equal(lcr_wire_open(buf, n, CLUSTER, &got), LCR_DROP_NONE);
	}
}

/* ---- payloads: truncation, lies, reserved bytes, booleans, enums -------------- */

static void test_truncated_at_every_offset(void **state)
{
	uint8_t buf[LCR_WIRE_DGRAM_MAX];

	(void)state;
	for (int i = 0; i < WIRE_TYPES; i++) {
		uint32_t type = wire_types[i];
		size_t n = sample_payload(type, buf, sizeof(buf));
		uint8_t *copy;

		assert_true(n > 0);
		assert_int_equal(decode_any(type, buf, n), LCR_DROP_NONE);
		/* Each prefix in a buffer of its own size, so ASan sees any overread. */
		for (size_t k = 0; k < n; k++) {
			copy = malloc(k ? k : 1);
			memcpy(copy, buf, k);
			assert_int_equal(decode_any(type, copy, k), LCR_DROP_MALFORMED);
			free(copy);
		}
		/* A trailing byte is refused too: a payload is consumed exactly. */
		buf[n] = 0;
		assert_int_equal(decode_any(type, buf, n + 1), LCR_DROP_MALFORMED);
	}

	/* Truncated datagrams are refused by the header checks. */
	for (int i = 0; i < WIRE_TYPES; i++) {
		size_t n = sample_dgram(wire_types[i], buf);
		struct lcr_wire_hdr got;

		for (size_t k = 0; k < n; k++)
			assert_int_not_equal(lcr_wire_open(buf, k, CLUSTER, &got), LCR_DROP_NONE);
	}
}

static void test_entry_count_lies(void **state)
{
	struct lcr_msg m = sample_append(3), got;
	uint8_t buf[1024], bad[1024];
	size_t n = lcr_wire_encode_msg(buf, sizeof(buf), &m);
	static const uint32_t lies[] = { 0, 1, 2, 4, 5, 1000, 0x10000, UINT32_MAX };

	(void)state;
	assert_true(n > 0);
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		memcpy(bad, buf, n);
		put32(bad + 96, lies[i]);
		memset(&got, 0, sizeof(got));
		assert_int_equal(
			lcr_wire_decode_msg(bad, n, LCR_WIRE_APPEND_REQ, &got, ents, ENTS_MAX),
			LCR_DROP_MALFORMED);
	}
	/* More entries than the caller has room for, although they are there. */
	assert_int_equal(lcr_wire_decode_msg(buf, n, LCR_WIRE_APPEND_REQ, &got, ents, 3),
			 LCR_DROP_NONE);
	assert_int_equal(lcr_wire_decode_msg(buf, n, LCR_WIRE_APPEND_REQ, &got, ents, 2),
			 LCR_DROP_MALFORMED);
	assert_int_equal(lcr_wire_decode_msg(buf, n, LCR_WIRE_APPEND_REQ, &got, NULL, 0),
			 LCR_DROP_MALFORMED);
	/* A count that fits the bytes but not the caller never touches `ents`. */
	m = sample_append(0);
	n = lcr_wire_encode_msg(buf, sizeof(buf), &m);
	assert_int_equal(lcr_wire_decode_msg(buf, n, LCR_WIRE_APPEND_REQ, &got, NULL, 0),
			 LCR_DROP_NONE);
	assert_int_equal(got.append_req.n_entries, 0);
	assert_null(got.append_req.entries);
}

static void test_entry_length_lies(void **state)
{
	struct lcr_msg m = sample_append(3), got;
	uint8_t buf[1024], bad[1024];
	size_t n = lcr_wire_encode_msg(buf, sizeof(buf), &m);
	/* Entry 2 (the last) has 23 bytes; its length field is at the end less 27. */
	size_t len_at = n - 23 - 4;
	static const uint32_t lies[] = { 0, 22, 24, 1000, ENTRY_MAX, ENTRY_MAX + 1, UINT32_MAX };

	(void)state;
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		memcpy(bad, buf, n);
		put32(bad + len_at, lies[i]);
		assert_int_equal(
			lcr_wire_decode_msg(bad, n, LCR_WIRE_APPEND_REQ, &got, ents, ENTS_MAX),
			LCR_DROP_MALFORMED);
	}

	/* An entry over 1 MiB is refused even when all its bytes are there. */
	size_t big = 104 + 28 + ENTRY_MAX + 1;
	uint8_t *p = calloc(1, big);
	assert_non_null(p);
	m = sample_append(0);
	assert_int_equal(lcr_wire_encode_msg(p, big, &m), 104);
	put32(p + 96, 1);
	p[104 + 12] = LCR_ENTRY_NORMAL;
	put32(p + 104 + 24, ENTRY_MAX + 1);
	assert_int_equal(lcr_wire_decode_msg(p, big, LCR_WIRE_APPEND_REQ, &got, ents, ENTS_MAX),
			 LCR_DROP_MALFORMED);
	put32(p + 104 + 24, ENTRY_MAX);
	assert_int_equal(lcr_wire_decode_msg(p, big - 1, LCR_WIRE_APPEND_REQ, &got, ents, ENTS_MAX),
			 LCR_DROP_NONE);
	assert_int_equal(got.append_req.entries[0].len, ENTRY_MAX);
	assert_ptr_equal(got.append_req.entries[0].data, p + 132);
	free(p);
}

struct field_set {
	uint32_t type;
	const uint16_t *at;
	size_t n;
};

#define SET(t, a)                                                                                  \
	{                                                                                          \
		t, a, sizeof(a) / sizeof(a[0])                                                     \
	}

/* Reserved (must-be-zero) bytes of each sample payload. */
static const uint16_t rz_vote_req[] = { 13, 14, 15, 28, 29, 30, 31, 53,
					54, 55, 58, 59, 60, 61, 62, 63 };
static const uint16_t rz_vote_resp[] = { 13, 14, 15, 29, 30, 31, 44, 45,
					 46, 47, 58, 59, 60, 61, 62, 63 };
/* Fixed part, then the flags of entries 0, 1 and 2 (at 104, 132 and 173) at +14. */
static const uint16_t rz_append[] = { 13,  14,	15,  28,  29,  30,  31,	 52,  53,  54, 55,
				      100, 101, 102, 103, 118, 119, 146, 147, 187, 188 };
static const uint16_t rz_append_resp[] = { 4, 5, 6, 7, 21, 22, 23, 36, 37, 38, 39 };
static const uint16_t rz_transfer[] = { 13, 14, 15, 20, 21, 22, 23, 36, 37, 38, 39 };
static const uint16_t rz_ack[] = { 29, 30, 31 };
/* Byte 17 of a client request is its flags (test_client_req_flags). */
static const uint16_t rz_client_req[] = { 18, 19 };
static const uint16_t rz_client_resp[] = { 10, 11, 20, 21, 22, 23 };

/* Boolean bytes (0 or 1 only). */
static const uint16_t b_vote_req[] = { 12, 52, 56, 57 };
static const uint16_t b_vote_resp[] = { 12, 28, 56, 57 };
static const uint16_t b_append[] = { 12 };
static const uint16_t b_append_resp[] = { 20 };
static const uint16_t b_transfer[] = { 12 };
static const uint16_t rz_ri_req[] = { 13, 14, 15 };
static const uint16_t b_ri_req[] = { 12 };
static const uint16_t rz_ri_resp[] = { 4, 5, 6, 7, 21, 22, 23, 44, 45, 46, 47 };
static const uint16_t b_ri_resp[] = { 20 };

/* The ack's flags byte: FRESH is known, any other bit is malformed. */
static void test_ack_flags(void **state)
{
	struct lcr_wire_ack a = { 9, 5, 0, 64, LCR_WIRE_ACK_FRESH }, got;
	uint8_t buf[64];
	(void)state;
	assert_int_equal(lcr_wire_encode_ack(buf, sizeof(buf), &a), 32);
	assert_int_equal(lcr_wire_decode_ack(buf, 32, &got), LCR_DROP_NONE);
	assert_int_equal(got.flags, LCR_WIRE_ACK_FRESH);
	for (int bit = 1; bit < 8; bit++) {
		buf[28] = (uint8_t)(LCR_WIRE_ACK_FRESH | (1u << bit));
		assert_int_equal(lcr_wire_decode_ack(buf, 32, &got), LCR_DROP_MALFORMED);
	}
}

static void test_reserved_bytes_nonzero(void **state)
{
	static const struct field_set sets[] = {
		SET(LCR_WIRE_VOTE_REQ, rz_vote_req),	 SET(LCR_WIRE_VOTE_RESP, rz_vote_resp),
		SET(LCR_WIRE_APPEND_REQ, rz_append),	 SET(LCR_WIRE_APPEND_RESP, rz_append_resp),
		SET(LCR_WIRE_TRANSFER, rz_transfer),	 SET(LCR_WIRE_STREAM_ACK, rz_ack),
		SET(LCR_WIRE_CLIENT_REQ, rz_client_req), SET(LCR_WIRE_CLIENT_RESP, rz_client_resp),
		SET(LCR_WIRE_READ_INDEX_REQ, rz_ri_req), SET(LCR_WIRE_READ_INDEX_RESP, rz_ri_resp),
	};
	uint8_t buf[1024];

	(void)state;
	for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
		size_t n = sample_payload(sets[s].type, buf, sizeof(buf));

		for (size_t i = 0; i < sets[s].n; i++) {
			uint16_t at = sets[s].at[i];

			assert_true(at < n);
			assert_int_equal(buf[at], 0);
			for (int bit = 0; bit < 8; bit++) {
				buf[at] = (uint8_t)(1u << bit);
				assert_int_equal(decode_any(sets[s].type, buf, n),
						 LCR_DROP_MALFORMED);
			}
			buf[at] = 0;
		}
		assert_int_equal(decode_any(sets[s].type, buf, n), LCR_DROP_NONE);
	}
}

static void test_bad_booleans(void **state)
{
	static const struct field_set sets[] = {
		SET(LCR_WIRE_VOTE_REQ, b_vote_req),	  SET(LCR_WIRE_VOTE_RESP, b_vote_resp),
		SET(LCR_WIRE_APPEND_REQ, b_append),	  SET(LCR_WIRE_APPEND_RESP, b_append_resp),
		SET(LCR_WIRE_TRANSFER, b_transfer),	  SET(LCR_WIRE_READ_INDEX_REQ, b_ri_req),
		SET(LCR_WIRE_READ_INDEX_RESP, b_ri_resp),
	};
	uint8_t buf[1024];

	(void)state;
	for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
		size_t n = sample_payload(sets[s].type, buf, sizeof(buf));

		for (size_t i = 0; i < sets[s].n; i++) {
			uint16_t at = sets[s].at[i];
			uint8_t was = buf[at];

			assert_true(was <= 1);
			for (int v = 0; v < 256; v++) {
				buf[at] = (uint8_t)v;
				assert_int_equal(decode_any(sets[s].type, buf, n),
						 v <= 1 ? LCR_DROP_NONE : LCR_DROP_MALFORMED);
			}
			buf[at] = was;
		}
	}
}

static void test_bad_enums(void **state)
{
	uint8_t buf[1024];
	size_t n;

	(void)state;
	/* AppendEntries result: 1..3 in a u32. */
	n = sample_payload(LCR_WIRE_APPEND_RESP, buf, sizeof(buf));
	static const uint32_t results[] = { 0, 4, 5, 0x101, 0x10000, UINT32_MAX };
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		put32(buf, results[i]);
		assert_int_equal(decode_any(LCR_WIRE_APPEND_RESP, buf, n), LCR_DROP_MALFORMED);
	}
	for (uint32_t r = 1; r <= 3; r++) {
		put32(buf, r);
		assert_int_equal(decode_any(LCR_WIRE_APPEND_RESP, buf, n), LCR_DROP_NONE);
	}

	/* Entry type: 1..3 in a u16 (entry 1 starts at 104 + 28). */
	n = sample_payload(LCR_WIRE_APPEND_REQ, buf, sizeof(buf));
	static const uint16_t etypes[] = { 0, 4, 0x102, 0xffff };
	for (size_t i = 0; i < sizeof(etypes) / sizeof(etypes[0]); i++) {
		buf[132 + 12] = (uint8_t)etypes[i];
		buf[132 + 13] = (uint8_t)(etypes[i] >> 8);
		assert_int_equal(decode_any(LCR_WIRE_APPEND_REQ, buf, n), LCR_DROP_MALFORMED);
	}

	/* Client op and status. */
	n = sample_payload(LCR_WIRE_CLIENT_REQ, buf, sizeof(buf));
	for (int op = 0; op < 256; op++) {
		buf[16] = (uint8_t)op;
		/* The sample is a CAS (key, value, expect): only CAS takes all three. */
		assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n),
				 op == LCR_CLIENT_CAS ? LCR_DROP_NONE : LCR_DROP_MALFORMED);
	}
	n = sample_payload(LCR_WIRE_CLIENT_RESP, buf, sizeof(buf));
	for (int st = 0; st < 256; st++) {
		buf[8] = (uint8_t)st;
		assert_int_equal(decode_any(LCR_WIRE_CLIENT_RESP, buf, n),
				 st <= LCR_CLIENT_ERROR ? LCR_DROP_NONE : LCR_DROP_MALFORMED);
	}
	buf[8] = LCR_CLIENT_OK;
	for (int op = 0; op < 256; op++) {
		buf[9] = (uint8_t)op;
		assert_int_equal(decode_any(LCR_WIRE_CLIENT_RESP, buf, n),
				 op >= LCR_CLIENT_PUT && op <= LCR_CLIENT_OP_MAX
					 ? LCR_DROP_NONE
					 : LCR_DROP_MALFORMED);
	}

	/* Only Raft messages go through lcr_wire_decode_msg. */
	struct lcr_msg m;
	n = sample_payload(LCR_WIRE_VOTE_REQ, buf, sizeof(buf));
	static const uint32_t others[] = {
		0, LCR_WIRE_STREAM_ACK, 7, LCR_WIRE_CLIENT_REQ, LCR_WIRE_CLIENT_RESP, UINT32_MAX
	};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		assert_int_equal(lcr_wire_decode_msg(buf, n, others[i], &m, ents, ENTS_MAX),
				 LCR_DROP_MALFORMED);

	/* A stream ack names a stream. */
	n = sample_payload(LCR_WIRE_STREAM_ACK, buf, sizeof(buf));
	memset(buf, 0, 8);
	assert_int_equal(decode_any(LCR_WIRE_STREAM_ACK, buf, n), LCR_DROP_MALFORMED);
}

/* A client request: fixed part with the given lengths, then zero bytes. */
static size_t client_req_raw(uint8_t *buf, uint8_t op, uint32_t k, uint32_t v, uint32_t e)
{
	size_t n = 32 + (size_t)k + v + e;

	memset(buf, 0, n);
	buf[16] = op;
	put32(buf + 20, k);
	put32(buf + 24, v);
	put32(buf + 28, e);
	return n;
}

static void test_client_lengths(void **state)
{
	static uint8_t buf[32 + 4 * LCR_CLIENT_VALUE_MAX];
	uint8_t *big = calloc(1, LCR_WIRE_MSG_MAX + 8);
	size_t n;

	(void)state;
	assert_non_null(big);
	n = client_req_raw(buf, LCR_CLIENT_CAS, LCR_CLIENT_KEY_MAX, LCR_CLIENT_VALUE_MAX,
			   LCR_CLIENT_VALUE_MAX);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n), LCR_DROP_NONE);
	n = client_req_raw(buf, LCR_CLIENT_CAS, LCR_CLIENT_KEY_MAX + 1, 0, 0);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n), LCR_DROP_MALFORMED);
	n = client_req_raw(buf, LCR_CLIENT_CAS, 1, LCR_CLIENT_VALUE_MAX + 1, 0);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n), LCR_DROP_MALFORMED);
	n = client_req_raw(buf, LCR_CLIENT_CAS, 1, 0, LCR_CLIENT_VALUE_MAX + 1);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n), LCR_DROP_MALFORMED);
	/* Lengths that promise more (or less) than is there. */
	n = client_req_raw(buf, LCR_CLIENT_PUT, 3, 5, 0);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n - 1), LCR_DROP_MALFORMED);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n + 1), LCR_DROP_MALFORMED);
	put32(buf + 20, UINT32_MAX);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n), LCR_DROP_MALFORMED);
	/* Fields an op does not use are empty. */
	n = client_req_raw(buf, LCR_CLIENT_GET, 3, 1, 0);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n), LCR_DROP_MALFORMED);
	n = client_req_raw(buf, LCR_CLIENT_DELETE, 3, 0, 1);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n), LCR_DROP_MALFORMED);
	n = client_req_raw(buf, LCR_CLIENT_PUT, 3, 1, 1);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n), LCR_DROP_MALFORMED);
	n = client_req_raw(buf, LCR_CLIENT_STATS, 1, 0, 0);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n), LCR_DROP_MALFORMED);
	n = client_req_raw(buf, LCR_CLIENT_STATS, 0, 0, 0);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_REQ, buf, n), LCR_DROP_NONE);

	/* Responses: VALUE_MAX, except an OK answer to STATS. */
	big[8] = LCR_CLIENT_OK;
	big[9] = LCR_CLIENT_GET;
	put32(big + 16, LCR_CLIENT_VALUE_MAX);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_RESP, big, 24 + LCR_CLIENT_VALUE_MAX),
			 LCR_DROP_NONE);
	put32(big + 16, LCR_CLIENT_VALUE_MAX + 1);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_RESP, big, 24 + LCR_CLIENT_VALUE_MAX + 1),
			 LCR_DROP_MALFORMED);
	big[9] = LCR_CLIENT_STATS;
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_RESP, big, 24 + LCR_CLIENT_VALUE_MAX + 1),
			 LCR_DROP_NONE);
	big[8] = LCR_CLIENT_ERROR;
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_RESP, big, 24 + LCR_CLIENT_VALUE_MAX + 1),
			 LCR_DROP_MALFORMED);
	big[8] = LCR_CLIENT_OK;
	put32(big + 16, STATS_MAX);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_RESP, big, LCR_WIRE_MSG_MAX), LCR_DROP_NONE);
	put32(big + 16, STATS_MAX + 1);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_RESP, big, LCR_WIRE_MSG_MAX + 1),
			 LCR_DROP_MALFORMED);
	put32(big + 16, UINT32_MAX);
	assert_int_equal(decode_any(LCR_WIRE_CLIENT_RESP, big, LCR_WIRE_MSG_MAX),
			 LCR_DROP_MALFORMED);
	free(big);
}

/*
 * The flags byte (17): EXPECT_VALUE with CAS, THIS_NODE with SNAPSHOT,
 * nothing else. Both directions refuse every other value, for every op, so a
 * request has one encoding.
 */
static void test_client_req_flags(void **state)
{
	static const uint8_t key[3] = "key";
	uint8_t buf[64];
	struct lcr_client_req r, got;

	(void)state;
	/* CHANGE_MEMBERSHIP and TRANSFER_LEADER carry a value: test_client_membership. */
	for (uint8_t op = LCR_CLIENT_PUT; op <= LCR_CLIENT_MEMBERS; op++) {
		for (int v = 0; v < 256; v++) {
			memset(&r, 0, sizeof(r));
			r.op = op;
			r.key = key;
			r.key_len = op >= LCR_CLIENT_STATS ? 0 : sizeof(key);
			r.flags = (uint8_t)v;
			bool ok = v == 0 ||
				  (v == LCR_CLIENT_F_EXPECT_VALUE && op == LCR_CLIENT_CAS) ||
				  (v == LCR_CLIENT_F_THIS_NODE &&
				   (op == LCR_CLIENT_SNAPSHOT || op == LCR_CLIENT_MEMBERS));
			size_t n = lcr_wire_encode_client_req(buf, sizeof(buf), &r);
			assert_int_equal(n, ok ? 32 + r.key_len : 0);
			/* The decoder, on the bytes the encoder would write. */
			r.flags = 0;
			n = lcr_wire_encode_client_req(buf, sizeof(buf), &r);
			assert_true(n > 0);
			buf[17] = (uint8_t)v;
			assert_int_equal(lcr_wire_decode_client_req(buf, n, &got),
					 ok ? LCR_DROP_NONE : LCR_DROP_MALFORMED);
			if (ok)
				assert_int_equal(got.flags, v);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_drop_names),
		cmocka_unit_test(test_open_client),
		cmocka_unit_test(test_crc32c_check_value),
		cmocka_unit_test(test_header_layout_little_endian),
		cmocka_unit_test(test_vote_req_layout_little_endian),
		cmocka_unit_test(test_append_layout_little_endian),
		cmocka_unit_test(test_client_req_layout_little_endian),
		cmocka_unit_test(test_client_resp_layout_little_endian),
		cmocka_unit_test(test_roundtrip_votes),
		cmocka_unit_test(test_roundtrip_append_small),
		cmocka_unit_test(test_roundtrip_append_many),
		cmocka_unit_test(test_roundtrip_append_resp_transfer),
		cmocka_unit_test(test_roundtrip_ack),
		cmocka_unit_test(test_roundtrip_snapshot),
		cmocka_unit_test(test_read_index_layout_and_checks),
		cmocka_unit_test(test_ack_flags),
		cmocka_unit_test(test_roundtrip_client_req),
		cmocka_unit_test(test_roundtrip_client_resp),
		cmocka_unit_test(test_client_snapshot_layout),
		cmocka_unit_test(test_client_membership),
		cmocka_unit_test(test_roundtrip_datagrams),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_open_drops),
		cmocka_unit_test(test_open_fragments_and_streams),
		cmocka_unit_test(test_open_refuses_every_bit_flip),
		cmocka_unit_test(test_truncated_at_every_offset),
		cmocka_unit_test(test_entry_count_lies),
		cmocka_unit_test(test_entry_length_lies),
		cmocka_unit_test(test_reserved_bytes_nonzero),
		cmocka_unit_test(test_bad_booleans),
		cmocka_unit_test(test_bad_enums),
		cmocka_unit_test(test_client_lengths),
		cmocka_unit_test(test_client_req_flags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
