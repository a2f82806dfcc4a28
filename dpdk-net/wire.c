/* SPDX-License-Identifier: MIT */
/*
 * The wire codec (see wire.h and docs/wire-protocol.md).
 *
 * Every integer is written and read one byte at a time, least significant
 * first, so the format is the same on any host and no struct layout or
 * alignment ever reaches the wire. Decoders walk the input with a cursor that
 * refuses to read past the end; each one also insists that the payload is
 * consumed exactly and that every reserved byte is zero, so a datagram has
 * exactly one valid encoding: decode and encode again gives the same bytes,
 * which the fuzz target checks.
 */
#include <assert.h>
#include <string.h>

#include "wire.h"
#include "lcr_assert.h"
#include "crc32c.h"

/* The wire's message types double as the core's, so decoding is a copy. */
static_assert((int)LCR_WIRE_VOTE_REQ == (int)LCR_MSG_VOTE_REQ, "vote req type");
static_assert((int)LCR_WIRE_VOTE_RESP == (int)LCR_MSG_VOTE_RESP, "vote resp type");
static_assert((int)LCR_WIRE_APPEND_REQ == (int)LCR_MSG_APPEND_REQ, "append req type");
static_assert((int)LCR_WIRE_APPEND_RESP == (int)LCR_MSG_APPEND_RESP, "append resp type");
static_assert((int)LCR_WIRE_TRANSFER == (int)LCR_MSG_TRANSFER_LEADER, "transfer type");
static_assert((int)LCR_WIRE_READ_INDEX_REQ == (int)LCR_MSG_READ_INDEX_REQ, "read index type");
static_assert((int)LCR_WIRE_READ_INDEX_RESP == (int)LCR_MSG_READ_INDEX_RESP, "read index resp");
static_assert((int)LCR_WIRE_SNAPSHOT_REQ == (int)LCR_MSG_SNAPSHOT_REQ, "snapshot req type");
static_assert((int)LCR_WIRE_SNAPSHOT_RESP == (int)LCR_MSG_SNAPSHOT_RESP, "snapshot resp type");

/* Offsets of the header fields (wire.h). */
#define OFF_MAGIC      0
#define OFF_VERSION    4
#define OFF_TYPE       5
#define OFF_FLAGS      6
#define OFF_CLUSTER    8
#define OFF_GROUP      16
#define OFF_FROM       20
#define OFF_TO	       24
#define OFF_LEN	       28
#define OFF_STREAM     32
#define OFF_SEQ	       40
#define OFF_FRAG_INDEX 48
#define OFF_FRAG_COUNT 50
#define OFF_CRC	       52
static_assert(OFF_CRC + 4 == LCR_WIRE_HDR, "header size");

/* Payload sizes; the layouts are tabulated in docs/wire-protocol.md. */
#define VOTE_BYTES	      16 /* term u64, node u32, committed u8, 3 zero */
#define LOG_ID_BYTES	      24 /* term u64, node u32, 4 zero, index u64 */
#define VOTE_REQ_BYTES	      64
#define VOTE_RESP_BYTES	      64
#define APPEND_FIXED_BYTES    104
#define ENTRY_HDR_BYTES	      28 /* term u64, node u32, type u16, flags u16, index u64, len u32 */
#define APPEND_RESP_BYTES     80
#define TRANSFER_BYTES	      48
#define READ_INDEX_REQ_BYTES  24 /* vote, read id u64 */
#define READ_INDEX_RESP_BYTES 56 /* result u32, 4 zero, vote, read id u64, log id */
#define ACK_BYTES	      32
#define SNAP_BEGIN_BYTES                                                                           \
	104 /* vote, log id, meta id, 4 stream u64s, size, xfer, chunk_max, 4 zero */
#define SNAP_RESP_BYTES	  72 /* vote, log id, 4 stream u64s */
#define SNAP_ACK_BYTES	  32 /* xfer, written, credit u64, status u32, 4 zero */
#define SNAP_CANCEL_BYTES 8  /* xfer */
#define CLIENT_REQ_FIXED  32
#define CLIENT_RESP_FIXED 24
static_assert(VOTE_REQ_BYTES == 2 * VOTE_BYTES + LOG_ID_BYTES + 8, "vote req layout");
static_assert(VOTE_RESP_BYTES == 2 * VOTE_BYTES + LOG_ID_BYTES + 8, "vote resp layout");
static_assert(APPEND_FIXED_BYTES == VOTE_BYTES + 2 * LOG_ID_BYTES + 4 * 8 + 8, "append layout");
static_assert(APPEND_RESP_BYTES == 8 + VOTE_BYTES + LOG_ID_BYTES + 4 * 8, "append resp layout");
static_assert(TRANSFER_BYTES == VOTE_BYTES + 8 + LOG_ID_BYTES, "transfer layout");
static_assert(READ_INDEX_REQ_BYTES == VOTE_BYTES + 8, "read index req layout");
static_assert(READ_INDEX_RESP_BYTES == 8 + VOTE_BYTES + 8 + LOG_ID_BYTES, "read index resp layout");
static_assert(SNAP_BEGIN_BYTES == VOTE_BYTES + LOG_ID_BYTES + 7 * 8 + 8, "snapshot req layout");
static_assert(SNAP_RESP_BYTES == VOTE_BYTES + LOG_ID_BYTES + 4 * 8, "snapshot resp layout");
static_assert(LCR_WIRE_SNAP_CHUNK_HDR + LCR_WIRE_SNAP_CHUNK_MAX <= LCR_WIRE_MSG_MAX,
	      "a largest chunk fits in a message");

/*
 * One entry's payload is at most 1 MiB: LCR_WIRE_MSG_MAX leaves 64 KiB above
 * that for the fixed part and entry headers, so a single entry of the largest
 * size still travels in one message.
 */
#define ENTRY_DATA_MAX (1u << 20)
static_assert(APPEND_FIXED_BYTES + ENTRY_HDR_BYTES + ENTRY_DATA_MAX <= LCR_WIRE_MSG_MAX,
	      "a largest entry fits in a message");
/* A STATS answer (metrics as JSON) may fill a whole message. */
#define STATS_VALUE_MAX (LCR_WIRE_MSG_MAX - CLIENT_RESP_FIXED)
/* The largest PUT or CAS does not fit in one datagram: it is fragmented. */
static_assert(CLIENT_REQ_FIXED + LCR_CLIENT_KEY_MAX + 2 * LCR_CLIENT_VALUE_MAX <= LCR_WIRE_MSG_MAX,
	      "a largest client request fits in a message");

/* ---- little-endian bytes --------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/*
 * The writer is used only after the encoder has checked that the whole
 * message fits, so it needs no bound of its own; the encoders assert at the
 * end that they wrote exactly the size they computed.
 */
struct wr {
	uint8_t *p;
	size_t off;
};

static void wr_u(struct wr *w, uint64_t v, unsigned bytes)
{
	put_le(w->p + w->off, v, bytes);
	w->off += bytes;
}

static void wr_zero(struct wr *w, unsigned bytes)
{
	memset(w->p + w->off, 0, bytes);
	w->off += bytes;
}

static void wr_bytes(struct wr *w, const void *src, size_t n)
{
	if (n)
		memcpy(w->p + w->off, src, n);
	w->off += n;
}

static void wr_vote(struct wr *w, struct lcr_vote v)
{
	wr_u(w, v.lid.term, 8);
	wr_u(w, v.lid.node, 4);
	wr_u(w, v.committed ? 1 : 0, 1);
	wr_zero(w, 3);
}

static void wr_log_id(struct wr *w, struct lcr_log_id id)
{
	wr_u(w, id.lid.term, 8);
	wr_u(w, id.lid.node, 4);
	wr_zero(w, 4);
	wr_u(w, id.index, 8);
}

/*
 * The reader never trusts the input: a read beyond the end, a non-zero
 * reserved byte or a boolean other than 0/1 marks the whole decode bad, and
 * reads after that return zeros. Decoders check `bad` and the exact length
 * once at the end, which keeps each of them a straight list of fields.
 */
struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool bad;
};

static bool rd_has(struct rd *r, size_t n)
{
	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return false;
	}
	return true;
}

static uint64_t rd_u(struct rd *r, unsigned bytes)
{
	uint64_t v;

	if (!rd_has(r, bytes))
		return 0;
	v = get_le(r->p + r->off, bytes);
	r->off += bytes;
	return v;
}

static void rd_zero(struct rd *r, unsigned bytes)
{
	if (!rd_has(r, bytes))
		return;
	for (unsigned i = 0; i < bytes; i++)
		if (r->p[r->off + i] != 0)
			r->bad = true;
	r->off += bytes;
}

static bool rd_bool(struct rd *r)
{
	uint64_t v = rd_u(r, 1);

	if (v > 1)
		r->bad = true;
	return v == 1;
}

/* A pointer to the next `n` bytes (valid only if the decode succeeds). */
static const uint8_t *rd_bytes(struct rd *r, size_t n)
{
	const uint8_t *at;

	if (!rd_has(r, n))
		return NULL;
	at = r->p + r->off;
	r->off += n;
	return at;
}

static struct lcr_vote rd_vote(struct rd *r)
{
	struct lcr_vote v;

	v.lid.term = rd_u(r, 8);
	v.lid.node = (uint32_t)rd_u(r, 4);
	v.committed = rd_bool(r);
	rd_zero(r, 3);
	return v;
}

static struct lcr_log_id rd_log_id(struct rd *r)
{
	struct lcr_log_id id;

	id.lid.term = rd_u(r, 8);
	id.lid.node = (uint32_t)rd_u(r, 4);
	rd_zero(r, 4);
	id.index = rd_u(r, 8);
	return id;
}

/* The decode succeeded: nothing was bad and every byte was consumed. */
static uint32_t rd_done(const struct rd *r)
{
	return !r->bad && r->off == r->len ? LCR_DROP_NONE : LCR_DROP_MALFORMED;
}

/* ---- drop reasons ---------------------------------------------------------- */

static const char *const drop_names[LCR_DROP_MAX] = {
	[LCR_DROP_NONE] = "none",
	[LCR_DROP_SHORT] = "short",
	[LCR_DROP_MAGIC] = "magic",
	[LCR_DROP_VERSION] = "version",
	[LCR_DROP_CHECKSUM] = "checksum",
	[LCR_DROP_LENGTH] = "length",
	[LCR_DROP_OVERSIZED] = "oversized",
	[LCR_DROP_CLUSTER] = "cluster",
	[LCR_DROP_UNKNOWN_NODE] = "unknown_node",
	[LCR_DROP_NOT_FOR_US] = "not_for_us",
	[LCR_DROP_UNKNOWN_GROUP] = "unknown_group",
	[LCR_DROP_TYPE] = "type",
	[LCR_DROP_MALFORMED] = "malformed",
	[LCR_DROP_FRAGMENT] = "fragment",
	[LCR_DROP_STALE_STREAM] = "stale_stream",
	[LCR_DROP_DUPLICATE] = "duplicate",
	[LCR_DROP_WINDOW] = "window",
	[LCR_DROP_NO_BUFFER] = "no_buffer",
	[LCR_DROP_SENDER] = "sender_address",
	[LCR_DROP_FUTURE_STREAM] = "future_stream",
	[LCR_DROP_SEQ_RANGE] = "seq_range",
};
static_assert(LCR_DROP_SEQ_RANGE + 1 == LCR_DROP_MAX, "a name for every drop reason");

const char *lcr_wire_drop_name(uint32_t reason)
{
	if (reason >= LCR_DROP_MAX || !drop_names[reason])
		return "unknown";
	return drop_names[reason];
}

/* ---- header ---------------------------------------------------------------- */

static bool type_known(uint32_t type)
{
	switch (type) {
	case LCR_WIRE_VOTE_REQ:
	case LCR_WIRE_VOTE_RESP:
	case LCR_WIRE_APPEND_REQ:
	case LCR_WIRE_APPEND_RESP:
	case LCR_WIRE_TRANSFER:
	case LCR_WIRE_STREAM_ACK:
	case LCR_WIRE_READ_INDEX_REQ:
	case LCR_WIRE_READ_INDEX_RESP:
	case LCR_WIRE_SNAPSHOT_REQ:
	case LCR_WIRE_SNAPSHOT_RESP:
	case LCR_WIRE_SNAPSHOT_CHUNK:
	case LCR_WIRE_SNAPSHOT_ACK:
	case LCR_WIRE_SNAPSHOT_CANCEL:
	case LCR_WIRE_CLIENT_REQ:
	case LCR_WIRE_CLIENT_RESP:
		return true;
	default:
		return false;
	}
}

#define FLAGS_KNOWN ((uint16_t)LCR_WIRE_F_RETRANSMIT)

/*
 * The checksum covers the header with its CRC field read as zero, then the
 * payload; computing it in three pieces avoids copying the header.
 */
static uint32_t dgram_crc(const uint8_t *p, size_t payload_len)
{
	static const uint8_t zero[4];
	uint32_t crc;

	crc = lcr_crc32c(0, p, OFF_CRC);
	crc = lcr_crc32c(crc, zero, sizeof(zero));
	return lcr_crc32c(crc, p + LCR_WIRE_HDR, payload_len);
}

size_t lcr_wire_seal(void *buf, const struct lcr_wire_hdr *h)
{
	uint8_t *p = buf;

	/* Building a datagram we would refuse is a bug in the caller. */
	LCR_ASSERT(h->len <= LCR_WIRE_DGRAM_MAX - LCR_WIRE_HDR ||
		   ((h->type == LCR_WIRE_CLIENT_REQ || h->type == LCR_WIRE_CLIENT_RESP) &&
		    h->len <= LCR_WIRE_CLIENT_DGRAM_MAX - LCR_WIRE_HDR));
	LCR_ASSERT(h->frag_count >= 1);
	LCR_ASSERT(h->frag_index < h->frag_count);
	LCR_ASSERT((h->stream == 0) == (h->seq == 0));

	put_le(p + OFF_MAGIC, LCR_WIRE_MAGIC, 4);
	p[OFF_VERSION] = LCR_WIRE_VERSION;
	p[OFF_TYPE] = h->type;
	put_le(p + OFF_FLAGS, h->flags, 2);
	put_le(p + OFF_CLUSTER, h->cluster, 8);
	put_le(p + OFF_GROUP, h->group, 4);
	put_le(p + OFF_FROM, h->from, 4);
	put_le(p + OFF_TO, h->to, 4);
	put_le(p + OFF_LEN, h->len, 4);
	put_le(p + OFF_STREAM, h->stream, 8);
	put_le(p + OFF_SEQ, h->seq, 8);
	put_le(p + OFF_FRAG_INDEX, h->frag_index, 2);
	put_le(p + OFF_FRAG_COUNT, h->frag_count, 2);
	put_le(p + OFF_CRC, dgram_crc(p, h->len), 4);
	return LCR_WIRE_HDR + (size_t)h->len;
}

/*
 * Checks that need the header's fields, once the checksum says they are the
 * sender's. A fragmented message must be on a stream (its fragments are put
 * back together by sequence number) and no fragment may be empty, else a
 * sender could announce 65535 fragments that carry nothing. AppendEntries
 * always travels on a stream and a stream acknowledgement never does: an ack
 * that needed acknowledging would never end.
 */
static uint32_t hdr_check(const struct lcr_wire_hdr *h)
{
	if (!type_known(h->type))
		return LCR_DROP_TYPE;
	if (h->flags & ~FLAGS_KNOWN)
		return LCR_DROP_MALFORMED;
	if (h->frag_count == 0 || h->frag_index >= h->frag_count)
		return LCR_DROP_FRAGMENT;
	if ((h->stream == 0) != (h->seq == 0))
		return LCR_DROP_MALFORMED;
	if (h->frag_count > 1 && (h->stream == 0 || h->len == 0))
		return LCR_DROP_FRAGMENT;
	if (h->type == LCR_WIRE_APPEND_REQ && h->stream == 0)
		return LCR_DROP_MALFORMED;
	if (h->type == LCR_WIRE_STREAM_ACK && (h->stream != 0 || h->frag_count != 1))
		return LCR_DROP_MALFORMED;
	/* Read index requests and answers are single datagrams, like votes;
	 * unlike votes, which predate the rule, they are refused elsewhere. */
	if ((h->type == LCR_WIRE_READ_INDEX_REQ || h->type == LCR_WIRE_READ_INDEX_RESP) &&
	    (h->stream != 0 || h->frag_count != 1))
		return LCR_DROP_MALFORMED;
	/* A snapshot's opening and its chunks travel on the leader's stream, in
	 * order; the answers and a cancel are single datagrams. */
	if ((h->type == LCR_WIRE_SNAPSHOT_REQ || h->type == LCR_WIRE_SNAPSHOT_CHUNK) &&
	    h->stream == 0)
		return LCR_DROP_MALFORMED;
	if ((h->type == LCR_WIRE_SNAPSHOT_RESP || h->type == LCR_WIRE_SNAPSHOT_ACK ||
	     h->type == LCR_WIRE_SNAPSHOT_CANCEL) &&
	    (h->stream != 0 || h->frag_count != 1))
		return LCR_DROP_MALFORMED;
	return LCR_DROP_NONE;
}

static uint32_t open_max(const void *buf, size_t len, size_t max, uint64_t cluster,
			 struct lcr_wire_hdr *h)
{
	const uint8_t *p = buf;

	if (len < LCR_WIRE_HDR)
		return LCR_DROP_SHORT;
	if (len > max)
		return LCR_DROP_OVERSIZED;
	if (get_le(p + OFF_MAGIC, 4) != LCR_WIRE_MAGIC)
		return LCR_DROP_MAGIC;
	if (p[OFF_VERSION] != LCR_WIRE_VERSION)
		return LCR_DROP_VERSION;
	if (get_le(p + OFF_LEN, 4) != len - LCR_WIRE_HDR)
		return LCR_DROP_LENGTH;
	if (get_le(p + OFF_CRC, 4) != dgram_crc(p, len - LCR_WIRE_HDR))
		return LCR_DROP_CHECKSUM;

	/* From here on the fields are what the sender wrote; fill them in
	 * even if a later check fails, so the caller can say who sent it. */
	h->type = p[OFF_TYPE];
	h->flags = (uint16_t)get_le(p + OFF_FLAGS, 2);
	h->cluster = get_le(p + OFF_CLUSTER, 8);
	h->group = (uint32_t)get_le(p + OFF_GROUP, 4);
	h->from = (uint32_t)get_le(p + OFF_FROM, 4);
	h->to = (uint32_t)get_le(p + OFF_TO, 4);
	h->len = (uint32_t)(len - LCR_WIRE_HDR);
	h->stream = get_le(p + OFF_STREAM, 8);
	h->seq = get_le(p + OFF_SEQ, 8);
	h->frag_index = (uint16_t)get_le(p + OFF_FRAG_INDEX, 2);
	h->frag_count = (uint16_t)get_le(p + OFF_FRAG_COUNT, 2);

	if (h->cluster != cluster)
		return LCR_DROP_CLUSTER;
	return hdr_check(h);
}

uint32_t lcr_wire_open(const void *buf, size_t len, uint64_t cluster, struct lcr_wire_hdr *h)
{
	return open_max(buf, len, LCR_WIRE_DGRAM_MAX, cluster, h);
}

uint32_t lcr_wire_open_client(const void *buf, size_t len, uint64_t cluster, struct lcr_wire_hdr *h)
{
	uint32_t why = open_max(buf, len, LCR_WIRE_CLIENT_DGRAM_MAX, cluster, h);
	if (why != LCR_DROP_NONE)
		return why;
	if (h->type != LCR_WIRE_CLIENT_REQ && h->type != LCR_WIRE_CLIENT_RESP)
		return LCR_DROP_TYPE;
	if (h->stream != 0 || h->frag_count != 1)
		return LCR_DROP_MALFORMED;
	return LCR_DROP_NONE;
}

/* ---- Raft messages --------------------------------------------------------- */

size_t lcr_wire_append_size(const struct lcr_append_req *a)
{
	size_t n = APPEND_FIXED_BYTES;

	for (uint32_t i = 0; i < a->n_entries; i++)
		n += ENTRY_HDR_BYTES + (size_t)a->entries[i].len;
	return n;
}

/* Whether an entry is one the decoder takes back; we never send any other. */
static bool entry_ok(const struct lcr_entry *e)
{
	return e->type >= LCR_ENTRY_BLANK && e->type <= LCR_ENTRY_MEMBERSHIP &&
	       e->len <= ENTRY_DATA_MAX;
}

static size_t encode_append_req(uint8_t *p, size_t cap, const struct lcr_append_req *a)
{
	struct wr w = { p, 0 };
	size_t size;

	if (a->n_entries)
		LCR_ASSERT(a->entries);
	for (uint32_t i = 0; i < a->n_entries; i++)
		if (!entry_ok(&a->entries[i]))
			return 0;
	size = lcr_wire_append_size(a);
	if (size > cap || size > LCR_WIRE_MSG_MAX)
		return 0;

	wr_vote(&w, a->vote);
	wr_log_id(&w, a->prev);
	wr_log_id(&w, a->leader_commit);
	wr_u(&w, a->stream_id, 8);
	wr_u(&w, a->inflight_id, 8);
	wr_u(&w, a->send_ns, 8);
	wr_u(&w, a->send_seq, 8);
	wr_u(&w, a->n_entries, 4);
	wr_zero(&w, 4);
	for (uint32_t i = 0; i < a->n_entries; i++) {
		const struct lcr_entry *e = &a->entries[i];

		wr_u(&w, e->id.lid.term, 8);
		wr_u(&w, e->id.lid.node, 4);
		wr_u(&w, e->type, 2);
		wr_zero(&w, 2);
		wr_u(&w, e->id.index, 8);
		wr_u(&w, e->len, 4);
		if (e->len)
			LCR_ASSERT(e->data);
		wr_bytes(&w, e->data, e->len);
	}
	LCR_ASSERT(w.off == size);
	return size;
}

size_t lcr_wire_encode_msg(void *payload, size_t cap, const struct lcr_msg *m)
{
	struct wr w = { payload, 0 };
	size_t size;

	switch (m->type) {
	case LCR_MSG_VOTE_REQ:
		size = VOTE_REQ_BYTES;
		break;
	case LCR_MSG_VOTE_RESP:
		size = VOTE_RESP_BYTES;
		break;
	case LCR_MSG_APPEND_REQ:
		return encode_append_req(payload, cap, &m->append_req);
	case LCR_MSG_APPEND_RESP:
		if (m->append_resp.result < LCR_APPEND_OK ||
		    m->append_resp.result > LCR_APPEND_HIGHER_VOTE)
			return 0;
		size = APPEND_RESP_BYTES;
		break;
	case LCR_MSG_TRANSFER_LEADER:
		size = TRANSFER_BYTES;
		break;
	case LCR_MSG_READ_INDEX_REQ:
		size = READ_INDEX_REQ_BYTES;
		break;
	case LCR_MSG_READ_INDEX_RESP:
		/* UNSUPPORTED is net.c's local answer, never sent. */
		if (m->read_index_resp.result < LCR_READ_INDEX_OK ||
		    m->read_index_resp.result > LCR_READ_INDEX_FULL)
			return 0;
		size = READ_INDEX_RESP_BYTES;
		break;
	case LCR_MSG_SNAPSHOT_RESP:
		size = SNAP_RESP_BYTES;
		break;
	default:
		/* A SNAPSHOT_REQ opens a transfer: lcr_wire_encode_snap_begin. */
		return 0;
	}
	if (size > cap)
		return 0;

	switch (m->type) {
	case LCR_MSG_VOTE_REQ: {
		const struct lcr_vote_req *v = &m->vote_req;

		wr_vote(&w, v->vote);
		wr_log_id(&w, v->last_log_id);
		wr_vote(&w, v->transfer_from);
		wr_u(&w, v->leadership_transfer ? 1 : 0, 1);
		wr_u(&w, v->pre_vote ? 1 : 0, 1);
		wr_zero(&w, 6);
		break;
	}
	case LCR_MSG_VOTE_RESP: {
		const struct lcr_vote_resp *v = &m->vote_resp;

		wr_vote(&w, v->vote);
		wr_vote(&w, v->req_vote);
		wr_log_id(&w, v->last_log_id);
		wr_u(&w, v->granted ? 1 : 0, 1);
		wr_u(&w, v->pre_vote ? 1 : 0, 1);
		wr_zero(&w, 6);
		break;
	}
	case LCR_MSG_APPEND_RESP: {
		const struct lcr_append_resp *a = &m->append_resp;

		wr_u(&w, a->result, 4);
		wr_zero(&w, 4);
		wr_vote(&w, a->vote);
		wr_log_id(&w, a->log_id);
		wr_u(&w, a->stream_id, 8);
		wr_u(&w, a->inflight_id, 8);
		wr_u(&w, a->send_ns, 8);
		wr_u(&w, a->send_seq, 8);
		break;
	}
	case LCR_MSG_READ_INDEX_REQ:
		wr_vote(&w, m->read_index_req.vote);
		wr_u(&w, m->read_index_req.read_id, 8);
		break;
	case LCR_MSG_READ_INDEX_RESP: {
		const struct lcr_read_index_resp *a = &m->read_index_resp;

		wr_u(&w, a->result, 4);
		wr_zero(&w, 4);
		wr_vote(&w, a->vote);
		wr_u(&w, a->read_id, 8);
		wr_log_id(&w, a->read_log_id);
		break;
	}
	case LCR_MSG_SNAPSHOT_RESP: {
		const struct lcr_snapshot_resp *a = &m->snapshot_resp;

		wr_vote(&w, a->vote);
		wr_log_id(&w, a->last);
		wr_u(&w, a->stream_id, 8);
		wr_u(&w, a->inflight_id, 8);
		wr_u(&w, a->send_ns, 8);
		wr_u(&w, a->send_seq, 8);
		break;
	}
	default: {
		const struct lcr_transfer_req *t = &m->transfer;

		wr_vote(&w, t->from_leader);
		wr_u(&w, t->to, 4);
		wr_zero(&w, 4);
		wr_log_id(&w, t->last_log_id);
		break;
	}
	}
	LCR_ASSERT(w.off == size);
	return size;
}

/*
 * The entry count is checked against the bytes left before the loop trusts
 * it: every entry takes at least its 28-byte header, so a count that cannot
 * fit is refused without touching `ents`.
 */
static uint32_t decode_append_req(struct rd *r, struct lcr_append_req *a, struct lcr_entry *ents,
				  uint32_t ents_max)
{
	uint32_t n;

	if (r->len > LCR_WIRE_MSG_MAX || r->len < APPEND_FIXED_BYTES)
		return LCR_DROP_MALFORMED;
	a->vote = rd_vote(r);
	a->prev = rd_log_id(r);
	a->leader_commit = rd_log_id(r);
	a->stream_id = rd_u(r, 8);
	a->inflight_id = rd_u(r, 8);
	a->send_ns = rd_u(r, 8);
	a->send_seq = rd_u(r, 8);
	n = (uint32_t)rd_u(r, 4);
	rd_zero(r, 4);
	if (r->bad)
		return LCR_DROP_MALFORMED;
	if (n > (r->len - r->off) / ENTRY_HDR_BYTES || n > ents_max)
		return LCR_DROP_MALFORMED;
	if (n)
		LCR_ASSERT(ents);

	for (uint32_t i = 0; i < n; i++) {
		struct lcr_entry *e = &ents[i];

		e->id.lid.term = rd_u(r, 8);
		e->id.lid.node = (uint32_t)rd_u(r, 4);
		e->type = (uint32_t)rd_u(r, 2);
		rd_zero(r, 2);
		e->id.index = rd_u(r, 8);
		e->len = (uint32_t)rd_u(r, 4);
		if (r->bad || !entry_ok(e))
			return LCR_DROP_MALFORMED;
		e->data = rd_bytes(r, e->len);
		if (r->bad)
			return LCR_DROP_MALFORMED;
	}
	a->n_entries = n;
	a->entries = n ? ents : NULL;
	return rd_done(r);
}

uint32_t lcr_wire_decode_msg(const void *payload, size_t len, uint32_t type, struct lcr_msg *m,
			     struct lcr_entry *ents, uint32_t ents_max)
{
	struct rd r = { payload, len, 0, false };
	uint32_t from = m->from, to = m->to;

	/* The caller may have set from/to already; everything else is ours. */
	memset(m, 0, sizeof(*m));
	m->from = from;
	m->to = to;
	m->type = type;

	switch (type) {
	case LCR_WIRE_VOTE_REQ: {
		struct lcr_vote_req *v = &m->vote_req;

		v->vote = rd_vote(&r);
		v->last_log_id = rd_log_id(&r);
		v->transfer_from = rd_vote(&r);
		v->leadership_transfer = rd_bool(&r);
		v->pre_vote = rd_bool(&r);
		rd_zero(&r, 6);
		return rd_done(&r);
	}
	case LCR_WIRE_VOTE_RESP: {
		struct lcr_vote_resp *v = &m->vote_resp;

		v->vote = rd_vote(&r);
		v->req_vote = rd_vote(&r);
		v->last_log_id = rd_log_id(&r);
		v->granted = rd_bool(&r);
		v->pre_vote = rd_bool(&r);
		rd_zero(&r, 6);
		return rd_done(&r);
	}
	case LCR_WIRE_APPEND_REQ:
		return decode_append_req(&r, &m->append_req, ents, ents_max);
	case LCR_WIRE_APPEND_RESP: {
		struct lcr_append_resp *a = &m->append_resp;

		a->result = (uint32_t)rd_u(&r, 4);
		rd_zero(&r, 4);
		a->vote = rd_vote(&r);
		a->log_id = rd_log_id(&r);
		a->stream_id = rd_u(&r, 8);
		a->inflight_id = rd_u(&r, 8);
		a->send_ns = rd_u(&r, 8);
		a->send_seq = rd_u(&r, 8);
		if (a->result < LCR_APPEND_OK || a->result > LCR_APPEND_HIGHER_VOTE)
			return LCR_DROP_MALFORMED;
		return rd_done(&r);
	}
	case LCR_WIRE_TRANSFER: {
		struct lcr_transfer_req *t = &m->transfer;

		t->from_leader = rd_vote(&r);
		t->to = (uint32_t)rd_u(&r, 4);
		rd_zero(&r, 4);
		t->last_log_id = rd_log_id(&r);
		return rd_done(&r);
	}
	case LCR_WIRE_READ_INDEX_REQ:
		m->read_index_req.vote = rd_vote(&r);
		m->read_index_req.read_id = rd_u(&r, 8);
		return rd_done(&r);
	case LCR_WIRE_READ_INDEX_RESP: {
		struct lcr_read_index_resp *a = &m->read_index_resp;

		a->result = (uint32_t)rd_u(&r, 4);
		rd_zero(&r, 4);
		a->vote = rd_vote(&r);
		a->read_id = rd_u(&r, 8);
		a->read_log_id = rd_log_id(&r);
		if (a->result < LCR_READ_INDEX_OK || a->result > LCR_READ_INDEX_FULL)
			return LCR_DROP_MALFORMED;
		/* Only an OK answer names a read index. */
		if (a->result != LCR_READ_INDEX_OK &&
		    !lcr_log_id_eq(a->read_log_id, lcr_log_id_none()))
			return LCR_DROP_MALFORMED;
		return rd_done(&r);
	}
	case LCR_WIRE_SNAPSHOT_RESP: {
		struct lcr_snapshot_resp *a = &m->snapshot_resp;

		a->vote = rd_vote(&r);
		a->last = rd_log_id(&r);
		a->stream_id = rd_u(&r, 8);
		a->inflight_id = rd_u(&r, 8);
		a->send_ns = rd_u(&r, 8);
		a->send_seq = rd_u(&r, 8);
		return rd_done(&r);
	}
	default:
		/* Not a Raft message (an ack, a snapshot's opening or chunk, client
		 * traffic): not ours. */
		return LCR_DROP_MALFORMED;
	}
}

/* ---- transport acknowledgements -------------------------------------------- */

size_t lcr_wire_encode_ack(void *payload, size_t cap, const struct lcr_wire_ack *a)
{
	struct wr w = { payload, 0 };

	/* Stream 0 means "not on a stream": there is nothing to acknowledge. */
	if (a->stream == 0 || cap < ACK_BYTES)
		return 0;
	wr_u(&w, a->stream, 8);
	wr_u(&w, a->cum, 8);
	wr_u(&w, a->sack, 8);
	wr_u(&w, a->window, 4);
	wr_u(&w, a->flags, 1);
	wr_zero(&w, 3);
	LCR_ASSERT(w.off == ACK_BYTES);
	return ACK_BYTES;
}

uint32_t lcr_wire_decode_ack(const void *payload, size_t len, struct lcr_wire_ack *a)
{
	struct rd r = { payload, len, 0, false };

	a->stream = rd_u(&r, 8);
	a->cum = rd_u(&r, 8);
	a->sack = rd_u(&r, 8);
	a->window = (uint32_t)rd_u(&r, 4);
	a->flags = (uint8_t)rd_u(&r, 1);
	rd_zero(&r, 3);
	if (a->stream == 0 || (a->flags & ~(LCR_WIRE_ACK_FRESH | LCR_WIRE_ACK_REPLY_ACKS)) ||
	    ((a->flags & LCR_WIRE_ACK_REPLY_ACKS) && a->stream != LCR_WIRE_STREAM_HELLO))
		return LCR_DROP_MALFORMED;
	return rd_done(&r);
}

/* ---- snapshot transfer ----------------------------------------------------- */

size_t lcr_wire_encode_snap_begin(void *payload, size_t cap, const struct lcr_wire_snap_begin *b)
{
	struct wr w = { payload, 0 };
	const struct lcr_snapshot_req *q = &b->req;

	if (cap < SNAP_BEGIN_BYTES || b->xfer == 0 || q->data != 0 ||
	    q->size > LCR_WIRE_SNAP_SIZE_MAX || b->chunk_max == 0 ||
	    b->chunk_max > LCR_WIRE_SNAP_CHUNK_MAX)
		return 0;
	wr_vote(&w, q->vote);
	wr_log_id(&w, q->meta.last);
	wr_u(&w, q->meta.id, 8);
	wr_u(&w, q->stream_id, 8);
	wr_u(&w, q->inflight_id, 8);
	wr_u(&w, q->send_ns, 8);
	wr_u(&w, q->send_seq, 8);
	wr_u(&w, q->size, 8);
	wr_u(&w, b->xfer, 8);
	wr_u(&w, b->chunk_max, 4);
	wr_zero(&w, 4);
	LCR_ASSERT(w.off == SNAP_BEGIN_BYTES);
	return SNAP_BEGIN_BYTES;
}

uint32_t lcr_wire_decode_snap_begin(const void *payload, size_t len, struct lcr_wire_snap_begin *b)
{
	struct rd r = { payload, len, 0, false };
	struct lcr_snapshot_req *q = &b->req;

	memset(b, 0, sizeof(*b));
	q->vote = rd_vote(&r);
	q->meta.last = rd_log_id(&r);
	q->meta.id = rd_u(&r, 8);
	q->stream_id = rd_u(&r, 8);
	q->inflight_id = rd_u(&r, 8);
	q->send_ns = rd_u(&r, 8);
	q->send_seq = rd_u(&r, 8);
	q->size = rd_u(&r, 8);
	b->xfer = rd_u(&r, 8);
	b->chunk_max = (uint32_t)rd_u(&r, 4);
	rd_zero(&r, 4);
	if (b->xfer == 0 || q->size > LCR_WIRE_SNAP_SIZE_MAX || b->chunk_max == 0 ||
	    b->chunk_max > LCR_WIRE_SNAP_CHUNK_MAX)
		return LCR_DROP_MALFORMED;
	return rd_done(&r);
}

/* A chunk lies inside the largest snapshot; only the last names a total CRC. */
static bool snap_chunk_ok(const struct lcr_wire_snap_chunk *c)
{
	if (c->xfer == 0 || c->len > LCR_WIRE_SNAP_CHUNK_MAX ||
	    c->offset > LCR_WIRE_SNAP_SIZE_MAX || c->len > LCR_WIRE_SNAP_SIZE_MAX - c->offset)
		return false;
	if (c->flags & ~LCR_WIRE_SNAP_LAST)
		return false;
	return (c->flags & LCR_WIRE_SNAP_LAST) || c->total_crc == 0;
}

size_t lcr_wire_encode_snap_chunk(void *payload, size_t cap, const struct lcr_wire_snap_chunk *c)
{
	struct wr w = { payload, 0 };
	size_t size = LCR_WIRE_SNAP_CHUNK_HDR + (size_t)c->len;

	if (!snap_chunk_ok(c) || size > cap)
		return 0;
	if (c->len)
		LCR_ASSERT(c->data);
	wr_u(&w, c->xfer, 8);
	wr_u(&w, c->offset, 8);
	wr_u(&w, c->len, 4);
	wr_u(&w, c->crc, 4);
	wr_u(&w, c->flags, 4);
	wr_u(&w, c->total_crc, 4);
	wr_bytes(&w, c->data, c->len);
	LCR_ASSERT(w.off == size);
	return size;
}

uint32_t lcr_wire_decode_snap_chunk(const void *payload, size_t len, struct lcr_wire_snap_chunk *c)
{
	struct rd r = { payload, len, 0, false };

	c->xfer = rd_u(&r, 8);
	c->offset = rd_u(&r, 8);
	c->len = (uint32_t)rd_u(&r, 4);
	c->crc = (uint32_t)rd_u(&r, 4);
	c->flags = (uint32_t)rd_u(&r, 4);
	c->total_crc = (uint32_t)rd_u(&r, 4);
	if (r.bad || !snap_chunk_ok(c))
		return LCR_DROP_MALFORMED;
	c->data = rd_bytes(&r, c->len);
	return rd_done(&r);
}

size_t lcr_wire_encode_snap_ack(void *payload, size_t cap, const struct lcr_wire_snap_ack *a)
{
	struct wr w = { payload, 0 };

	if (cap < SNAP_ACK_BYTES || a->xfer == 0 || a->status < LCR_SNAP_ST_OK ||
	    a->status >= LCR_SNAP_ST_MAX || a->written > a->credit ||
	    a->credit > LCR_WIRE_SNAP_SIZE_MAX)
		return 0;
	wr_u(&w, a->xfer, 8);
	wr_u(&w, a->written, 8);
	wr_u(&w, a->credit, 8);
	wr_u(&w, a->status, 4);
	wr_zero(&w, 4);
	LCR_ASSERT(w.off == SNAP_ACK_BYTES);
	return SNAP_ACK_BYTES;
}

uint32_t lcr_wire_decode_snap_ack(const void *payload, size_t len, struct lcr_wire_snap_ack *a)
{
	struct rd r = { payload, len, 0, false };

	a->xfer = rd_u(&r, 8);
	a->written = rd_u(&r, 8);
	a->credit = rd_u(&r, 8);
	a->status = (uint32_t)rd_u(&r, 4);
	rd_zero(&r, 4);
	if (a->xfer == 0 || a->status < LCR_SNAP_ST_OK || a->status >= LCR_SNAP_ST_MAX ||
	    a->written > a->credit || a->credit > LCR_WIRE_SNAP_SIZE_MAX)
		return LCR_DROP_MALFORMED;
	return rd_done(&r);
}

size_t lcr_wire_encode_snap_cancel(void *payload, size_t cap, const struct lcr_wire_snap_cancel *c)
{
	struct wr w = { payload, 0 };

	if (cap < SNAP_CANCEL_BYTES || c->xfer == 0)
		return 0;
	wr_u(&w, c->xfer, 8);
	return SNAP_CANCEL_BYTES;
}

uint32_t lcr_wire_decode_snap_cancel(const void *payload, size_t len,
				     struct lcr_wire_snap_cancel *c)
{
	struct rd r = { payload, len, 0, false };

	c->xfer = rd_u(&r, 8);
	if (c->xfer == 0)
		return LCR_DROP_MALFORMED;
	return rd_done(&r);
}

/* ---- client protocol ------------------------------------------------------- */

static_assert(LCR_CLIENT_TARGET_BYTES_MAX <= LCR_CLIENT_VALUE_MAX, "a target fits a value");
static_assert(LCR_CLIENT_LOG_ID_BYTES == LOG_ID_BYTES, "CAS of a membership: a log id");
static_assert(LCR_CLIENT_ADDR_MAX == LCR_NODE_ADDR_MAX, "an address as a membership holds it");

/* An address as a membership op carries it: 1..63 bytes, 0x21..0x7e each. */
static bool client_addr_ok(const uint8_t *p, size_t len)
{
	if (len < 1 || len >= LCR_CLIENT_ADDR_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x21 || p[i] > 0x7e)
			return false;
	return true;
}

size_t lcr_wire_encode_client_target(void *out, size_t cap, const struct lcr_client_target *t)
{
	struct wr w = { out, 0 };
	size_t size = LCR_CLIENT_TARGET_FIXED;

	if (t->n_voters > LCR_NODES_MAX || t->n_learners > LCR_NODES_MAX ||
	    t->n_addrs > LCR_NODES_MAX)
		return 0;
	size += 4 * ((size_t)t->n_voters + t->n_learners);
	for (uint32_t i = 0; i < t->n_addrs; i++) {
		size_t len = strnlen(t->addrs[i].addr, LCR_CLIENT_ADDR_MAX);
		if (!client_addr_ok((const uint8_t *)t->addrs[i].addr, len))
			return 0;
		size += 8 + len;
	}
	if (size > cap)
		return 0;
	wr_u(&w, t->n_voters, 4);
	wr_u(&w, t->n_learners, 4);
	wr_u(&w, t->n_addrs, 4);
	wr_zero(&w, 4);
	for (uint32_t i = 0; i < t->n_voters; i++)
		wr_u(&w, t->voters[i], 4);
	for (uint32_t i = 0; i < t->n_learners; i++)
		wr_u(&w, t->learners[i], 4);
	for (uint32_t i = 0; i < t->n_addrs; i++) {
		size_t len = strlen(t->addrs[i].addr);
		wr_u(&w, t->addrs[i].id, 4);
		wr_u(&w, len, 4);
		wr_bytes(&w, t->addrs[i].addr, len);
	}
	LCR_ASSERT(w.off == size);
	return size;
}

/* Counts are bounded before they are used to take bytes. */
uint32_t lcr_wire_decode_client_target(const void *in, size_t len, struct lcr_client_target *t)
{
	struct rd r = { in, len, 0, false };

	memset(t, 0, sizeof(*t));
	t->n_voters = (uint32_t)rd_u(&r, 4);
	t->n_learners = (uint32_t)rd_u(&r, 4);
	t->n_addrs = (uint32_t)rd_u(&r, 4);
	rd_zero(&r, 4);
	if (r.bad || t->n_voters > LCR_NODES_MAX || t->n_learners > LCR_NODES_MAX ||
	    t->n_addrs > LCR_NODES_MAX)
		return LCR_DROP_MALFORMED;
	for (uint32_t i = 0; i < t->n_voters; i++)
		t->voters[i] = (uint32_t)rd_u(&r, 4);
	for (uint32_t i = 0; i < t->n_learners; i++)
		t->learners[i] = (uint32_t)rd_u(&r, 4);
	for (uint32_t i = 0; i < t->n_addrs && !r.bad; i++) {
		t->addrs[i].id = (uint32_t)rd_u(&r, 4);
		uint64_t n = rd_u(&r, 4);
		if (n < 1 || n >= LCR_CLIENT_ADDR_MAX)
			return LCR_DROP_MALFORMED;
		const uint8_t *text = rd_bytes(&r, (size_t)n);
		if (!text || !client_addr_ok(text, (size_t)n))
			return LCR_DROP_MALFORMED;
		memcpy(t->addrs[i].addr, text, (size_t)n);
		t->addrs[i].addr[n] = '\0';
	}
	return rd_done(&r);
}

void lcr_wire_encode_client_log_id(void *out, const struct lcr_log_id *id)
{
	struct wr w = { out, 0 };

	wr_log_id(&w, *id);
	LCR_ASSERT(w.off == LCR_CLIENT_LOG_ID_BYTES);
}

uint32_t lcr_wire_decode_client_log_id(const void *in, size_t len, struct lcr_log_id *id)
{
	struct rd r = { in, len, 0, false };

	*id = rd_log_id(&r);
	return rd_done(&r);
}

/*
 * Which fields an operation carries (docs/wire-protocol.md, the table of
 * ops): a key with PUT, GET, CAS and DELETE; a value with PUT, CAS,
 * CHANGE_MEMBERSHIP and TRANSFER_LEADER; an expected value with CAS and
 * CHANGE_MEMBERSHIP; the EXPECT_VALUE flag with CAS, THIS_NODE with SNAPSHOT
 * and MEMBERS. A field or flag an operation does not use must be empty, so
 * that one request has one meaning; an unknown flag bit is refused rather
 * than ignored, so that a node never misreads a later client.
 */
static bool client_has_key(uint8_t op)
{
	return op >= LCR_CLIENT_PUT && op <= LCR_CLIENT_DELETE;
}

static bool client_has_value(uint8_t op)
{
	return op == LCR_CLIENT_PUT || op == LCR_CLIENT_CAS || op == LCR_CLIENT_CHANGE_MEMBERSHIP ||
	       op == LCR_CLIENT_TRANSFER_LEADER;
}

static bool client_has_expect(uint8_t op)
{
	return op == LCR_CLIENT_CAS || op == LCR_CLIENT_CHANGE_MEMBERSHIP;
}

static bool client_req_ok(const struct lcr_client_req *r)
{
	if (r->op < LCR_CLIENT_PUT || r->op > LCR_CLIENT_OP_MAX)
		return false;
	if (r->flags & ~LCR_CLIENT_F_KNOWN)
		return false;
	if ((r->flags & LCR_CLIENT_F_EXPECT_VALUE) && r->op != LCR_CLIENT_CAS)
		return false;
	if ((r->flags & LCR_CLIENT_F_THIS_NODE) && r->op != LCR_CLIENT_SNAPSHOT &&
	    r->op != LCR_CLIENT_MEMBERS)
		return false;
	if (r->key_len > LCR_CLIENT_KEY_MAX || r->value_len > LCR_CLIENT_VALUE_MAX ||
	    r->expect_len > LCR_CLIENT_VALUE_MAX)
		return false;
	if (r->value_len && !client_has_value(r->op))
		return false;
	if (r->expect_len && !client_has_expect(r->op))
		return false;
	if (r->key_len && !client_has_key(r->op))
		return false;
	return true;
}

/*
 * The membership ops' value and expect (docs/wire-protocol.md, rule 13):
 * CHANGE_MEMBERSHIP's value a target, its expect empty or a log id;
 * TRANSFER_LEADER's value a node id other than 0.
 */
static bool client_layout_ok(const struct lcr_client_req *r)
{
	struct lcr_client_target t;
	struct lcr_log_id id;

	if (r->op == LCR_CLIENT_CHANGE_MEMBERSHIP)
		return lcr_wire_decode_client_target(r->value, r->value_len, &t) == LCR_DROP_NONE &&
		       (r->expect_len == 0 ||
			lcr_wire_decode_client_log_id(r->expect, r->expect_len, &id) ==
				LCR_DROP_NONE);
	if (r->op == LCR_CLIENT_TRANSFER_LEADER)
		return r->value_len == LCR_CLIENT_NODE_ID_BYTES && get_le(r->value, 4) != 0;
	return true;
}

size_t lcr_wire_encode_client_req(void *payload, size_t cap, const struct lcr_client_req *r)
{
	struct wr w = { payload, 0 };
	size_t size;

	if (!client_req_ok(r) || !client_layout_ok(r))
		return 0;
	size = CLIENT_REQ_FIXED + (size_t)r->key_len + r->value_len + r->expect_len;
	if (size > cap)
		return 0;
	wr_u(&w, r->client, 8);
	wr_u(&w, r->id, 8);
	wr_u(&w, r->op, 1);
	wr_u(&w, r->flags, 1);
	wr_zero(&w, 2);
	wr_u(&w, r->key_len, 4);
	wr_u(&w, r->value_len, 4);
	wr_u(&w, r->expect_len, 4);
	wr_bytes(&w, r->key, r->key_len);
	wr_bytes(&w, r->value, r->value_len);
	wr_bytes(&w, r->expect, r->expect_len);
	LCR_ASSERT(w.off == size);
	return size;
}

uint32_t lcr_wire_decode_client_req(const void *payload, size_t len, struct lcr_client_req *r)
{
	struct rd rd = { payload, len, 0, false };

	r->client = rd_u(&rd, 8);
	r->id = rd_u(&rd, 8);
	r->op = (uint8_t)rd_u(&rd, 1);
	r->flags = (uint8_t)rd_u(&rd, 1);
	rd_zero(&rd, 2);
	r->key_len = (uint32_t)rd_u(&rd, 4);
	r->value_len = (uint32_t)rd_u(&rd, 4);
	r->expect_len = (uint32_t)rd_u(&rd, 4);
	/* Lengths are bounded before they are used to take bytes. */
	if (rd.bad || !client_req_ok(r))
		return LCR_DROP_MALFORMED;
	r->key = rd_bytes(&rd, r->key_len);
	r->value = rd_bytes(&rd, r->value_len);
	r->expect = rd_bytes(&rd, r->expect_len);
	if (rd_done(&rd) != LCR_DROP_NONE || !client_layout_ok(r))
		return LCR_DROP_MALFORMED;
	return LCR_DROP_NONE;
}

/*
 * A value is at most LCR_CLIENT_VALUE_MAX, except the answer to STATS: the
 * metrics as JSON may fill a whole message (LCR_WIRE_MSG_MAX with the fixed
 * part). A NOT_LEADER answer names the leader; other answers may too, as a
 * hint. The statuses from BUSY up answer the membership ops that may get
 * them, and no other op.
 */
static bool client_status_ok(uint8_t status, uint8_t op)
{
	bool change = op == LCR_CLIENT_CHANGE_MEMBERSHIP,
	     transfer = op == LCR_CLIENT_TRANSFER_LEADER;

	switch (status) {
	case LCR_CLIENT_BUSY:
	case LCR_CLIENT_UNKNOWN_NODE:
	case LCR_CLIENT_TIMEOUT:
		return change || transfer;
	case LCR_CLIENT_INVALID:
	case LCR_CLIENT_NO_VOTERS:
		return change;
	case LCR_CLIENT_TRANSFER_FAILED:
		return transfer;
	default:
		return status <= LCR_CLIENT_ERROR;
	}
}

static bool client_resp_ok(const struct lcr_client_resp *r)
{
	uint32_t value_max = LCR_CLIENT_VALUE_MAX;

	if (r->op < LCR_CLIENT_PUT || r->op > LCR_CLIENT_OP_MAX)
		return false;
	if (!client_status_ok(r->status, r->op))
		return false;
	if (r->op == LCR_CLIENT_STATS && r->status == LCR_CLIENT_OK)
		value_max = STATS_VALUE_MAX;
	return r->value_len <= value_max;
}

size_t lcr_wire_encode_client_resp(void *payload, size_t cap, const struct lcr_client_resp *r)
{
	struct wr w = { payload, 0 };
	size_t size;

	if (!client_resp_ok(r))
		return 0;
	size = CLIENT_RESP_FIXED + (size_t)r->value_len;
	if (size > cap)
		return 0;
	wr_u(&w, r->id, 8);
	wr_u(&w, r->status, 1);
	wr_u(&w, r->op, 1);
	wr_zero(&w, 2);
	wr_u(&w, r->leader, 4);
	wr_u(&w, r->value_len, 4);
	wr_zero(&w, 4);
	wr_bytes(&w, r->value, r->value_len);
	LCR_ASSERT(w.off == size);
	return size;
}

uint32_t lcr_wire_decode_client_resp(const void *payload, size_t len, struct lcr_client_resp *r)
{
	struct rd rd = { payload, len, 0, false };

	r->id = rd_u(&rd, 8);
	r->status = (uint8_t)rd_u(&rd, 1);
	r->op = (uint8_t)rd_u(&rd, 1);
	rd_zero(&rd, 2);
	r->leader = (uint32_t)rd_u(&rd, 4);
	r->value_len = (uint32_t)rd_u(&rd, 4);
	rd_zero(&rd, 4);
	if (rd.bad || !client_resp_ok(r))
		return LCR_DROP_MALFORMED;
	r->value = rd_bytes(&rd, r->value_len);
	return rd_done(&rd);
}
