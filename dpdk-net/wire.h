/* SPDX-License-Identifier: MIT */
/*
 * The wire format: one format for the kernel-socket and DPDK transports, so
 * nodes of either kind interoperate on one network. Little-endian, fixed
 * offsets, no padding surprises; documented byte by byte in
 * docs/wire-protocol.md.
 *
 * Every datagram starts with a 56-byte header:
 *
 *   off size field
 *     0    4 magic 0x5752434c ("LCRW")
 *     4    1 version (1)
 *     5    1 type (enum lcr_wire_type)
 *     6    2 flags (enum lcr_wire_flag)
 *     8    8 cluster id
 *    16    4 group id
 *    20    4 from node
 *    24    4 to node
 *    28    4 payload length (bytes after the header)
 *    32    8 stream id (0: not on a stream)
 *    40    8 sequence number on the stream (0: not on a stream)
 *    48    2 fragment index (0-based)
 *    50    2 fragment count (1: not fragmented)
 *    52    4 CRC32C of the header (this field as 0) and the payload
 *
 * A message larger than one datagram (an AppendEntries with big entries) is
 * cut into fragments; each fragment is its own datagram with its own sequence
 * number on the stream, and the receiver reassembles them in order.
 *
 * Decoding never trusts its input: every length is checked against what is
 * there, every count against what fits, and anything malformed is refused
 * with the reason (enum lcr_wire_drop), which the transport counts.
 */
#ifndef LCR_WIRE_H
#define LCR_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

#define LCR_WIRE_MAGIC	 0x5752434cu
#define LCR_WIRE_VERSION 1
#define LCR_WIRE_HDR	 56
/* Largest datagram we ever build or accept (a jumbo frame's UDP payload). */
#define LCR_WIRE_DGRAM_MAX 9000
/* A client datagram: the largest UDP payload over IPv4. */
#define LCR_WIRE_CLIENT_DGRAM_MAX 65507
/* Largest message after reassembly: entries of up to 1 MiB plus headers. */
#define LCR_WIRE_MSG_MAX ((1u << 20) + 65536)

enum lcr_wire_type {
	LCR_WIRE_VOTE_REQ = 1,
	LCR_WIRE_VOTE_RESP = 2,
	LCR_WIRE_APPEND_REQ = 3, /* on a stream, may be fragmented */
	LCR_WIRE_APPEND_RESP = 4,
	LCR_WIRE_TRANSFER = 5,
	LCR_WIRE_STREAM_ACK = 6,       /* transport acknowledgement of stream datagrams */
	LCR_WIRE_READ_INDEX_REQ = 7,   /* a follower asks its leader for a read index */
	LCR_WIRE_READ_INDEX_RESP = 8,  /* the leader's answer */
	LCR_WIRE_SNAPSHOT_REQ = 9,     /* a snapshot transfer begins (on a stream) */
	LCR_WIRE_SNAPSHOT_RESP = 10,   /* the follower's core answers it (one datagram) */
	LCR_WIRE_SNAPSHOT_CHUNK = 11,  /* bytes of a snapshot (on a stream, fragmented) */
	LCR_WIRE_SNAPSHOT_ACK = 12,    /* the receiver's progress and credit (one datagram) */
	LCR_WIRE_SNAPSHOT_CANCEL = 13, /* the sender gave the transfer up (one datagram) */
	LCR_WIRE_CLIENT_REQ = 16,
	LCR_WIRE_CLIENT_RESP = 17,
};

enum lcr_wire_flag {
	LCR_WIRE_F_RETRANSMIT = 1u << 0, /* this datagram was sent before (RTT: Karn) */
};

/* Why a datagram was dropped; indexes the transport's drop counters. */
enum lcr_wire_drop {
	LCR_DROP_NONE = 0,
	LCR_DROP_SHORT,	       /* shorter than a header */
	LCR_DROP_MAGIC,	       /* not ours */
	LCR_DROP_VERSION,      /* a version we do not speak */
	LCR_DROP_CHECKSUM,     /* CRC32C mismatch */
	LCR_DROP_LENGTH,       /* payload length disagrees with the datagram */
	LCR_DROP_OVERSIZED,    /* larger than LCR_WIRE_DGRAM_MAX */
	LCR_DROP_CLUSTER,      /* another cluster's traffic */
	LCR_DROP_UNKNOWN_NODE, /* sender or receiver not in our cluster */
	LCR_DROP_NOT_FOR_US,   /* addressed to another node */
	LCR_DROP_UNKNOWN_GROUP,
	LCR_DROP_TYPE,		/* unknown message type */
	LCR_DROP_MALFORMED,	/* a payload that does not parse */
	LCR_DROP_FRAGMENT,	/* bad fragment numbering or size */
	LCR_DROP_STALE_STREAM,	/* a stream we already left behind */
	LCR_DROP_DUPLICATE,	/* a sequence number already delivered */
	LCR_DROP_WINDOW,	/* beyond the reorder window */
	LCR_DROP_NO_BUFFER,	/* no room to hold it */
	LCR_DROP_SENDER,	/* the source address is not the one configured for `from` */
	LCR_DROP_FUTURE_STREAM, /* a stream id ahead of our clock by more than the bound */
	LCR_DROP_SEQ_RANGE,	/* a sequence number at or above 2^62 */
	LCR_DROP_MAX
};

/* Name of a drop reason, for metrics ("checksum", "cluster", ...). */
const char *lcr_wire_drop_name(uint32_t reason);

struct lcr_wire_hdr {
	uint8_t type;
	uint16_t flags;
	uint64_t cluster;
	uint32_t group;
	uint32_t from;
	uint32_t to;
	uint32_t len; /* payload bytes */
	uint64_t stream;
	uint64_t seq;
	uint16_t frag_index;
	uint16_t frag_count;
};

/*
 * Write a header and fill in the CRC over it and the `len` payload bytes
 * already at buf + LCR_WIRE_HDR. Returns the datagram length.
 */
size_t lcr_wire_seal(void *buf, const struct lcr_wire_hdr *h);

/*
 * Check a received datagram: size, magic, version, length, checksum and
 * cluster, then that the header is consistent (known type and flags, fragment
 * numbering, stream and sequence both zero or both not; the rules are in
 * docs/wire-protocol.md). Returns LCR_DROP_NONE with *h filled, or the drop
 * reason.
 */
uint32_t lcr_wire_open(const void *buf, size_t len, uint64_t cluster, struct lcr_wire_hdr *h);

/*
 * The same for the client port (lcraft-node's key-value service), which
 * always runs on kernel UDP: one datagram per request or response, up to
 * LCR_WIRE_CLIENT_DGRAM_MAX bytes (the kernel fragments it at the IP layer),
 * never on a stream. Only CLIENT_REQ and CLIENT_RESP pass.
 */
uint32_t lcr_wire_open_client(const void *buf, size_t len, uint64_t cluster,
			      struct lcr_wire_hdr *h);

/* ---- Raft messages ---------------------------------------------------------
 * Encoders write the payload of a message (after the header) and return its
 * length, or 0 if it does not fit in `cap` or holds something the decoder
 * would refuse (an entry over 1 MiB, an enum out of range). Decoders check
 * everything and return LCR_DROP_NONE or LCR_DROP_MALFORMED.
 *
 * AppendEntries payload: a fixed part, then n entries each of
 *   { term u64, node u32, type u16, flags u16 (0), index u64, len u32 } + len bytes.
 * Entry payload pointers in a decoded message point into the input buffer.
 */

/* Bytes an AppendEntries needs on the wire (before fragmentation). */
size_t lcr_wire_append_size(const struct lcr_append_req *a);

size_t lcr_wire_encode_msg(void *payload, size_t cap, const struct lcr_msg *m);

/*
 * Decode the payload of a message of type `type` into *m (from/to are set
 * by the caller from the header). For APPEND_REQ, entries are written into
 * `ents` (at most `ents_max`); m->append_req.entries points there.
 */
uint32_t lcr_wire_decode_msg(const void *payload, size_t len, uint32_t type, struct lcr_msg *m,
			     struct lcr_entry *ents, uint32_t ents_max);

/* ---- transport acknowledgements -------------------------------------------- */

/* Cumulative ack of a stream plus which of the next 64 sequence numbers arrived. */
struct lcr_wire_ack {
	uint64_t stream;
	uint64_t cum;	 /* every seq <= cum was received */
	uint64_t sack;	 /* bit i: seq cum + 2 + i was received */
	uint32_t window; /* datagrams the receiver can still hold */
	uint8_t flags;	 /* LCR_WIRE_ACK_* */
};

/* The receiver started this stream (it joined it, having restarted, or saw
 * it begin) and has delivered nothing on it yet: see docs/wire-protocol.md. */
#define LCR_WIRE_ACK_FRESH 0x01
/* In a hello only: the sender takes an acknowledgement from the header of an
 * APPEND_RESP (stream and seq: that stream's cum), so the peer may send its
 * ack of a short AppendEntries there instead of in a STREAM_ACK of its own. */
#define LCR_WIRE_ACK_REPLY_ACKS 0x02

/*
 * A STREAM_ACK of this stream id is a hello: the receiver's transport has
 * just started (no sender's stream has this id: ids carry the clock), `sack`
 * names that start (a random boot id), `cum` is the stream of the sender it
 * has taken up since (0: none) and FRESH is set. The sender sends what that
 * peer lacks at once (lcr_stx_hello).
 */
#define LCR_WIRE_STREAM_HELLO 1ull

size_t lcr_wire_encode_ack(void *payload, size_t cap, const struct lcr_wire_ack *a);
uint32_t lcr_wire_decode_ack(const void *payload, size_t len, struct lcr_wire_ack *a);

/* ---- snapshot transfer (docs/wire-protocol.md, "Snapshot transfer") ---------
 * A transfer is named by the sender's `xfer` id. SNAPSHOT_REQ opens it (the
 * core's request, the data's size, the largest chunk), SNAPSHOT_CHUNKs carry
 * the bytes in order, each with its own CRC32C, the last one with the CRC32C
 * of all of them. The receiver grants credit (SNAPSHOT_ACK: bytes it took,
 * the offset the sender may send up to) and says why it gave up; the sender
 * says it gave up with SNAPSHOT_CANCEL. SNAPSHOT_RESP is the core's answer,
 * a Raft message like APPEND_RESP (lcr_wire_encode_msg).
 */

/* Largest data bytes of one chunk on the wire (a message holds it whole). */
#define LCR_WIRE_SNAP_CHUNK_MAX (1u << 20)
/* Largest snapshot the wire can describe (2^48 bytes, 256 TiB); a receiver
 * bounds it further by its own configuration. */
#define LCR_WIRE_SNAP_SIZE_MAX (1ull << 48)

struct lcr_wire_snap_begin {
	struct lcr_snapshot_req req; /* `data` is 0 on the wire; `size` the data bytes */
	uint64_t xfer;		     /* the sender's id of this transfer, never 0 */
	uint32_t chunk_max;	     /* no chunk carries more data bytes than this */
};

#define LCR_WIRE_SNAP_LAST 0x1u /* the last chunk: total_crc is set */

struct lcr_wire_snap_chunk {
	uint64_t xfer;
	uint64_t offset;     /* of the first data byte in the snapshot */
	uint32_t len;	     /* data bytes */
	uint32_t crc;	     /* CRC32C of the data bytes */
	uint32_t flags;	     /* LCR_WIRE_SNAP_LAST */
	uint32_t total_crc;  /* LAST: CRC32C of the whole snapshot; else 0 */
	const uint8_t *data; /* decoded: points into the input */
};

enum lcr_wire_snap_status {
	LCR_SNAP_ST_OK = 1,	    /* receiving: `written` and `credit` are current */
	LCR_SNAP_ST_DONE = 2,	    /* every byte checked and handed to the node */
	LCR_SNAP_ST_BUSY = 3,	    /* no room for another transfer now: try later */
	LCR_SNAP_ST_BAD_CRC = 4,    /* a chunk's or the whole snapshot's CRC did not match */
	LCR_SNAP_ST_TOO_BIG = 5,    /* larger than the receiver takes */
	LCR_SNAP_ST_STORAGE = 6,    /* the receiver's node could not store it */
	LCR_SNAP_ST_SUPERSEDED = 7, /* a newer transfer replaced it */
	LCR_SNAP_ST_UNKNOWN = 8,    /* no such transfer (timed out, or never began) */
	LCR_SNAP_ST_PROTOCOL = 9,   /* a chunk out of order or past the credit */
	LCR_SNAP_ST_MAX
};

struct lcr_wire_snap_ack {
	uint64_t xfer;
	uint64_t written; /* bytes the receiver took, from offset 0 */
	uint64_t credit;  /* the sender may send data below this offset */
	uint32_t status;  /* enum lcr_wire_snap_status */
};

struct lcr_wire_snap_cancel {
	uint64_t xfer;
};

size_t lcr_wire_encode_snap_begin(void *payload, size_t cap, const struct lcr_wire_snap_begin *b);
uint32_t lcr_wire_decode_snap_begin(const void *payload, size_t len, struct lcr_wire_snap_begin *b);
/* The chunk's fixed part is LCR_WIRE_SNAP_CHUNK_HDR bytes, then `len` data bytes. */
#define LCR_WIRE_SNAP_CHUNK_HDR 32
size_t lcr_wire_encode_snap_chunk(void *payload, size_t cap, const struct lcr_wire_snap_chunk *c);
uint32_t lcr_wire_decode_snap_chunk(const void *payload, size_t len, struct lcr_wire_snap_chunk *c);
size_t lcr_wire_encode_snap_ack(void *payload, size_t cap, const struct lcr_wire_snap_ack *a);
uint32_t lcr_wire_decode_snap_ack(const void *payload, size_t len, struct lcr_wire_snap_ack *a);
size_t lcr_wire_encode_snap_cancel(void *payload, size_t cap, const struct lcr_wire_snap_cancel *c);
uint32_t lcr_wire_decode_snap_cancel(const void *payload, size_t len,
				     struct lcr_wire_snap_cancel *c);

/* ---- client protocol (lcraft-node's key-value service) --------------------- */

enum lcr_client_op {
	LCR_CLIENT_PUT = 1,
	LCR_CLIENT_GET = 2, /* linearizable read */
	LCR_CLIENT_CAS = 3,
	LCR_CLIENT_DELETE = 4,
	LCR_CLIENT_STATS = 5,	 /* metrics as JSON */
	LCR_CLIENT_SNAPSHOT = 6, /* build a snapshot of the group now */
	/* The group's membership as JSON: voters, learners, addresses, and on
	 * the leader each node's matched index and lag. */
	LCR_CLIENT_MEMBERS = 7,
	/* Leader: change the voters and learners to a target (value: struct
	 * lcr_client_target's encoding; expect: the membership's log id the
	 * client saw, 24 bytes, or empty); answered once it committed. */
	LCR_CLIENT_CHANGE_MEMBERSHIP = 8,
	/* Leader: hand leadership to a voter (value: its id, 4 bytes);
	 * answered once the leader changed, or the transfer failed. */
	LCR_CLIENT_TRANSFER_LEADER = 9,
	LCR_CLIENT_OP_MAX = LCR_CLIENT_TRANSFER_LEADER,
};

enum lcr_client_status {
	LCR_CLIENT_OK = 0,
	LCR_CLIENT_NOT_FOUND = 1,
	LCR_CLIENT_CAS_FAILED = 2, /* value = the current value */
	LCR_CLIENT_NOT_LEADER = 3, /* leader = the node to ask, 0 if unknown */
	LCR_CLIENT_RETRY = 4,	   /* no quorum lease, transfer, queue full: try again */
	LCR_CLIENT_ERROR = 5,	   /* value = a message */
	/*
	 * Refusals of CHANGE_MEMBERSHIP and TRANSFER_LEADER (those two ops
	 * only; value = a message): nothing changed, except after TIMEOUT.
	 */
	LCR_CLIENT_BUSY = 6,	     /* another membership change or transfer is under way */
	LCR_CLIENT_UNKNOWN_NODE = 7, /* a node named is not a member, or has no address */
	LCR_CLIENT_INVALID = 8,	     /* CHANGE_MEMBERSHIP: the target is not a membership */
	LCR_CLIENT_NO_VOTERS = 9,    /* CHANGE_MEMBERSHIP: the target has no voter */
	LCR_CLIENT_TIMEOUT = 10,     /* not done within the node's wait: it may still be */
	/* TRANSFER_LEADER: the leadership went to another node (leader = it). */
	LCR_CLIENT_TRANSFER_FAILED = 11,
	LCR_CLIENT_STATUS_MAX = LCR_CLIENT_TRANSFER_FAILED,
};

/*
 * CLIENT_REQ flags (payload byte 17). A bit has a meaning with certain ops
 * only; the codec refuses an unknown bit and a known one with another op, so
 * a request has one encoding and one meaning.
 */
enum lcr_client_flag {
	/* CAS only: the key must hold exactly `expect`, even when it is empty
	 * (without it an empty `expect` means "the key is absent"). */
	LCR_CLIENT_F_EXPECT_VALUE = 1u << 0,
	/* SNAPSHOT: the receiving node builds its own snapshot whatever its
	 * role (without it only the leader does; others answer NOT_LEADER).
	 * MEMBERS: the receiving node answers with its own view, whatever its
	 * role (without it only the leader answers). */
	LCR_CLIENT_F_THIS_NODE = 1u << 1,
	LCR_CLIENT_F_KNOWN = LCR_CLIENT_F_EXPECT_VALUE | LCR_CLIENT_F_THIS_NODE,
};

/* The OK answer to SNAPSHOT: the snapshot's last log id, index then term,
 * 8 bytes each, little-endian. */
#define LCR_CLIENT_SNAPSHOT_RESULT 16

#define LCR_CLIENT_KEY_MAX   1024
#define LCR_CLIENT_VALUE_MAX 8192

/*
 * CHANGE_MEMBERSHIP's value (docs/wire-protocol.md, "The membership ops"):
 * the target's voters and learners, and the addresses of nodes the cluster
 * does not know yet ("HOST:PORT", an IPv6 host in brackets). The codec
 * checks the layout and the bounds (at most LCR_NODES_MAX of each, an
 * address 1..LCR_CLIENT_ADDR_MAX - 1 printable bytes); what the ids mean
 * (none 0, none twice, a voter no learner, at least one voter) is the
 * node's to judge, which answers each refusal with its own status.
 */
#define LCR_CLIENT_ADDR_MAX	64 /* an address's text and its terminator */
#define LCR_CLIENT_TARGET_FIXED 16
#define LCR_CLIENT_TARGET_BYTES_MAX                                                                \
	(LCR_CLIENT_TARGET_FIXED + 2 * 4 * LCR_NODES_MAX +                                         \
	 LCR_NODES_MAX * (8 + LCR_CLIENT_ADDR_MAX - 1))
/* CHANGE_MEMBERSHIP's expect, when not empty: a log id (term, node, 4 zero, index). */
#define LCR_CLIENT_LOG_ID_BYTES 24
/* TRANSFER_LEADER's value: the node id. */
#define LCR_CLIENT_NODE_ID_BYTES 4

struct lcr_client_addr {
	uint32_t id;
	char addr[LCR_CLIENT_ADDR_MAX]; /* NUL-terminated */
};

struct lcr_client_target {
	uint32_t n_voters;
	uint32_t voters[LCR_NODES_MAX];
	uint32_t n_learners;
	uint32_t learners[LCR_NODES_MAX];
	uint32_t n_addrs;
	struct lcr_client_addr addrs[LCR_NODES_MAX];
};

/* Encode a target into `out` (bytes written, 0 if it does not fit or breaks a bound). */
size_t lcr_wire_encode_client_target(void *out, size_t cap, const struct lcr_client_target *t);
/* Decode CHANGE_MEMBERSHIP's value: LCR_DROP_NONE or LCR_DROP_MALFORMED. */
uint32_t lcr_wire_decode_client_target(const void *in, size_t len, struct lcr_client_target *t);
/* CHANGE_MEMBERSHIP's expect: a log id (24 bytes). */
void lcr_wire_encode_client_log_id(void *out, const struct lcr_log_id *id);
uint32_t lcr_wire_decode_client_log_id(const void *in, size_t len, struct lcr_log_id *id);

struct lcr_client_req {
	uint64_t client; /* the client's random id */
	uint64_t id;	 /* request id, echoed */
	uint8_t op;
	uint32_t key_len;
	uint32_t value_len;
	uint32_t expect_len; /* CAS */
	const uint8_t *key;
	const uint8_t *value;
	const uint8_t *expect;
	/* enum lcr_client_flag; 0 unless a CAS. Last, so that initialisers
	 * written before it existed still mean what they meant. */
	uint8_t flags;
};

struct lcr_client_resp {
	uint64_t id;
	uint8_t status;
	uint8_t op; /* the request's op, echoed: only a STATS answer may exceed VALUE_MAX */
	uint32_t leader;
	uint32_t value_len;
	const uint8_t *value;
};

/*
 * CLIENT_REQ payload (docs/wire-protocol.md, "Client protocol"): the decoder
 * checks the rules of that section's table rows 6 to 13 (length, op, flags,
 * reserved bytes, field lengths, unused fields, exact size, the layout of
 * the membership ops' value and expect) and returns
 * LCR_DROP_NONE or LCR_DROP_MALFORMED without saying which rule failed (a
 * server that counts drops by rule checks the bytes first, as lcraft-node
 * does). The encoder returns 0 for what the decoder would refuse. Key, value
 * and expect of a decoded request point into the input buffer.
 */
size_t lcr_wire_encode_client_req(void *payload, size_t cap, const struct lcr_client_req *r);
uint32_t lcr_wire_decode_client_req(const void *payload, size_t len, struct lcr_client_req *r);
size_t lcr_wire_encode_client_resp(void *payload, size_t cap, const struct lcr_client_resp *r);
uint32_t lcr_wire_decode_client_resp(const void *payload, size_t len, struct lcr_client_resp *r);

#endif /* LCR_WIRE_H */
