/* SPDX-License-Identifier: MIT */
/*
 * Pipelined streams over datagrams: how AppendEntries travels from a leader
 * to a follower (design.md, "Pipelined stream_append over UDP").
 *
 * A stream is one direction of one (group, leader, follower) pair. The sender
 * numbers datagrams (fragments of messages) 1, 2, 3 ... and keeps each until
 * it is acknowledged, within a bounded window; it does not wait for replies
 * before sending more. The receiver holds datagrams that arrive early in a
 * bounded reorder window, drops duplicates and datagrams of older streams,
 * reassembles fragments, hands whole messages up strictly in order, and
 * acknowledges cumulatively plus a 64-bit selective-ack bitmap. The sender
 * retransmits the gaps the bitmap shows and, on an RTT-derived timeout
 * (RFC 6298, with Karn's rule), the oldest unacknowledged datagram; after too
 * many tries the peer is declared unreachable and the stream is reset.
 *
 * Raft log matching still guards correctness: whatever the stream does, a
 * wrong prev_log_id gets a Conflict and a rewind. The stream only makes the
 * common case (loss, reordering, duplication on the path) cheap.
 *
 * Stream ids grow over time (milliseconds since 2020 << 24, plus a counter),
 * so a receiver tells a newer stream (the sender reset or restarted) from a
 * late datagram of an older one. A receiver takes up a newer stream only if
 * its id is at most LCR_STREAM_AHEAD_MS ahead of the receiver's own clock:
 * one datagram with a far-future id would otherwise make every genuine
 * datagram after it "stale". Sequence numbers stay below 2^62. A newer stream
 * that went quiet gives way to an older one that keeps arriving (a forged id
 * within the bound, or a sender whose clock went back).
 *
 * A message is handed up at most once, whatever the order of streams: the
 * receiver remembers where it left each of the last LCR_STREAM_LEFT_MAX
 * streams it took up, and refuses (as stale) any stream it took up before and
 * no longer remembers; those are all at or below one id (`forgot`), so a
 * stream above it that it does not remember is one it never took up. A sender
 * whose stream is refused hears no acks, reports its peer unreachable after
 * tries_max transmissions and starts a new stream, with a larger id.
 *
 * No allocation after init; only the owning lcore may use a stream.
 */
#ifndef LCR_STREAM_H
#define LCR_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct lcr_stream_opts {
	uint32_t window;      /* datagrams in flight (sender) and held (receiver); default 1024,
			       * enough for a 1 MiB entry in 1500-byte datagrams */
	uint32_t dgram_max;   /* bytes per datagram, header included; default 1472 (1500 MTU) */
	uint64_t rto_init_ns; /* before any RTT sample; default 50 ms */
	uint64_t rto_min_ns;  /* default 2 ms */
	uint64_t rto_max_ns;  /* default 100 ms: under an election timeout */
	uint32_t tries_max;   /* transmissions of one datagram before "unreachable"; default 8 */
	struct lcr_allocator alloc; /* the windows and buffers; NULL alloc: malloc */
};

void lcr_stream_opts_default(struct lcr_stream_opts *o);

/* Datagrams of one older stream, with none of the current between, that take
 * the receiver back to it (lcr_srx_on_dgram). */
#define LCR_STREAM_OLDER_TAKEOVER 32

/* Streams left behind whose place a receiver remembers (it may take them up again). */
#define LCR_STREAM_LEFT_MAX 8

/* How far ahead of the receiver's clock a new stream's id may be (clock skew). */
#define LCR_STREAM_AHEAD_MS (10ull * 60 * 1000)

/* A new stream id, larger than every one this process made before. */
uint64_t lcr_stream_new_id(void);

/* The largest stream id a receiver takes up now (LCR_STREAM_AHEAD_MS). */
uint64_t lcr_stream_id_max(void);

/* ---- sender ----------------------------------------------------------------- */

struct lcr_stx_slot {
	uint64_t seq;
	uint64_t sent_ns; /* last transmission */
	uint32_t len;	  /* datagram bytes */
	uint8_t tries;
	bool sacked;
	bool queued;   /* waiting in the retransmit queue */
	uint8_t *data; /* dgram_max bytes */
};

struct lcr_stx_stats {
	uint64_t msgs, dgrams, retransmits, fast_retransmits, timeouts, unreachable;
	uint64_t dropped_full;	/* messages refused: the window was full */
	uint64_t peer_restarts; /* new streams because the receiver's acks went back */
	uint64_t probes;	/* overdue datagrams sent again early (lcr_stx_probe) */
	uint64_t hellos;	/* a restarted receiver's hellos acted on (lcr_stx_hello) */
	uint64_t srtt_ns, rto_ns;
};

struct lcr_stx {
	struct lcr_stream_opts o;
	uint64_t cluster;
	uint32_t group, self, peer;
	uint64_t stream;
	uint64_t next_seq; /* to assign */
	uint64_t next_tx;  /* first never transmitted; new datagrams go in order */
	uint64_t acked;	   /* cumulative: every seq <= acked was received */
	uint32_t peer_window;
	struct lcr_stx_slot *slots; /* window slots, seq % window */
	uint8_t *mem;
	uint64_t *txq; /* sequence numbers to retransmit, FIFO */
	uint32_t txq_head, txq_len;
	uint64_t srtt_ns, rttvar_ns, rto_ns;
	bool rtt_valid;
	uint64_t recover_until;	     /* after a timeout: what was sent then (lcr_stx_on_ack) */
	uint64_t regressed_since_ns; /* fresh acks below `acked` since then, none else */
	uint64_t heard_ns;	     /* the peer's last ack of our stream (kept by a reset) */
	struct lcr_stx_stats st;
};

int lcr_stx_init(struct lcr_stx *s, const struct lcr_stream_opts *o, uint64_t cluster,
		 uint32_t group, uint32_t self, uint32_t peer);
void lcr_stx_free(struct lcr_stx *s);

/* Forget everything in flight and start a new stream (new id, seq 1). */
void lcr_stx_reset(struct lcr_stx *s);

/*
 * Send one message (its payload, `len` bytes, of wire type `type`): cut into
 * fragments, numbered and queued for transmission. Returns 0, or -ENOBUFS
 * when the window cannot hold all its fragments (nothing queued: the Raft
 * layer will send it again), or -EMSGSIZE.
 */
int lcr_stx_send(struct lcr_stx *s, uint8_t type, const void *payload, uint32_t len, uint64_t now);

/* A datagram to transmit: bytes owned by the stream, valid until its next call. */
struct lcr_dgram_view {
	const uint8_t *buf;
	uint32_t len;
};

/* The next datagram to put on the wire (now), or false. */
bool lcr_stx_next(struct lcr_stx *s, uint64_t now, struct lcr_dgram_view *d);

/* An acknowledgement from the receiver. */
void lcr_stx_on_ack(struct lcr_stx *s, const struct lcr_wire_ack *a, uint64_t now);

enum { LCR_STX_OK = 0, LCR_STX_UNREACHABLE = 1 };

/* Timers: retransmit on timeout. LCR_STX_UNREACHABLE once the peer has not
 * answered tries_max transmissions; the caller reports it and resets. */
int lcr_stx_tick(struct lcr_stx *s, uint64_t now);

/*
 * The Raft layer has something for a peer that has not acknowledged the
 * oldest datagram in flight within a retransmission timeout (the timer's
 * doubling has it waiting, up to rto_max): send that datagram again now.
 * A peer that was away (restarted) then hears this stream as soon as the
 * caller has something for it (a heartbeat), not at the next backed-off
 * timeout. True if one was queued; it counts as a try, like the timer's.
 */
bool lcr_stx_probe(struct lcr_stx *s, uint64_t now);

/*
 * The peer's transport (re)started (its hello, LCR_WIRE_STREAM_HELLO) and has
 * taken up `joined` of our streams since (0: none). If that is this stream,
 * nothing: it is receiving it. Otherwise it holds nothing of this stream: if
 * it had acknowledged some of it (its previous life), a new stream (what the
 * FRESH rule of lcr_stx_on_ack comes to 200 ms later: it would wait for
 * datagrams we no longer hold); else the oldest datagram in flight goes
 * again now, so it hears us at once, not at the next timeout.
 */
void lcr_stx_hello(struct lcr_stx *s, uint64_t joined, uint64_t now);

/* When lcr_stx_tick next has work (UINT64_MAX: nothing in flight). */
uint64_t lcr_stx_next_timer(const struct lcr_stx *s);

/* Datagrams sent and not yet acknowledged. */
uint32_t lcr_stx_in_flight(const struct lcr_stx *s);

/*
 * Payload bytes of one message lcr_stx_send takes now: the window's free
 * datagrams times the payload each carries (0 when none is free).
 */
uint32_t lcr_stx_room(const struct lcr_stx *s);

/* ---- receiver --------------------------------------------------------------- */

struct lcr_srx_slot {
	bool present;
	uint32_t len; /* payload bytes */
	uint16_t frag_index, frag_count;
	uint8_t type;
	uint8_t *data; /* dgram_max bytes */
};

struct lcr_srx_stats {
	uint64_t dgrams, msgs, duplicates, stale, beyond_window, reordered, bad_fragments;
	uint64_t future;	 /* new streams refused: an id too far ahead */
	uint64_t seq_range;	 /* sequence numbers at or above 2^62 */
	uint64_t takebacks;	 /* back to an older stream: the newer went quiet */
	uint64_t forgotten;	 /* streams refused: taken up before, their place forgotten */
	uint64_t direct;	 /* messages handed up from the caller's buffer, uncopied */
	uint64_t stashed;	 /* datagrams copied into a slot: they came early */
	uint64_t stashed_bytes;	 /* ... their payload bytes */
	uint64_t gathered_bytes; /* bytes copied into the reassembly buffer (fragments) */
};

/* A stream the receiver left, and where: every seq <= delivered was handed up. */
struct lcr_srx_left {
	uint64_t stream;
	uint64_t delivered;
};

struct lcr_srx {
	struct lcr_stream_opts o;
	uint64_t stream;	    /* 0: none yet */
	uint64_t delivered;	    /* every seq <= delivered was handed up (or skipped) */
	uint64_t start;		    /* `delivered` when this stream was taken up */
	struct lcr_srx_slot *slots; /* seq % window */
	uint8_t *mem;
	uint8_t *msg; /* reassembly, LCR_WIRE_MSG_MAX bytes */
	uint32_t msg_len;
	uint16_t msg_frags; /* fragments gathered of the current message */
	uint64_t older;	    /* an older stream id still arriving, and how often */
	uint32_t older_seen;
	struct lcr_srx_left left[LCR_STREAM_LEFT_MAX]; /* streams left, in no order */
	uint32_t n_left;
	uint64_t forgot;    /* every stream taken up before and not in `left` is <= this */
	uint16_t msg_count; /* fragments of the current message (its fragment 0's count) */
	uint8_t msg_type;
	bool ack_due;
	bool ack_now;	  /* a gap, a duplicate or a new stream: ack at once */
	uint32_t unacked; /* datagrams taken in order since the last ack */
	bool delivering;  /* inside lcr_srx_on_dgram, handing messages up */
	struct lcr_srx_stats st;
};

/* Allocate the windows. -EINVAL for options lcr_stx_init refuses too, -ENOMEM. */
int lcr_srx_init(struct lcr_srx *r, const struct lcr_stream_opts *o);
void lcr_srx_free(struct lcr_srx *r);

/*
 * A whole message, in order: its type and payload. The payload is valid only
 * during the call and may be the very bytes the caller passed to
 * lcr_srx_on_dgram: whatever needs them later (the log) copies them before
 * returning. The callback must not call lcr_srx_on_dgram on the same receiver.
 */
typedef void (*lcr_srx_deliver_fn)(void *ctx, uint8_t type, const uint8_t *payload, uint32_t len);

/*
 * A stream datagram arrived (header already checked by lcr_wire_open; its
 * `h->len` payload bytes at `payload`, which must stay valid and unchanged
 * until this returns). Delivers every message that became complete and in
 * order. Returns LCR_DROP_NONE or why the datagram was dropped (an ack is
 * due either way: a duplicate often means our last ack was lost).
 *
 * Copies: the next datagram in order that is a whole message is handed up
 * from `payload` itself (st.direct); the next in order that is a fragment is
 * copied once, into the reassembly buffer (st.gathered_bytes); one that came
 * early is copied into its slot (st.stashed), since the caller reuses its
 * buffer, and is taken from there, like the others, once the gap fills.
 */
uint32_t lcr_srx_on_dgram(struct lcr_srx *r, const struct lcr_wire_hdr *h, const uint8_t *payload,
			  lcr_srx_deliver_fn deliver, void *ctx);

/*
 * The receiver's counters as one JSON member, "stream_rx":{...}, for a
 * transport's metrics of a link. Returns the bytes it needed (more than
 * `len`: cut) or -EINVAL.
 */
int lcr_srx_stats_json(const struct lcr_srx_stats *st, char *buf, size_t len);
/* Add `from`'s counters to `to` (a transport sums its links'). */
void lcr_srx_stats_add(struct lcr_srx_stats *to, const struct lcr_srx_stats *from);

/*
 * Whether an ack should be sent, and the ack to send (clears ack_due). In the
 * middle of a message of several fragments an ack waits until a quarter of
 * the window (at most 256 datagrams) was taken since the last one: the
 * sender sent the whole message at once (it fits the window), so the rest
 * is on its way and ends it, and a follower taking a catch-up in 1 MiB
 * messages acks a few times per message instead of once per receive burst
 * (each ack wakes the sender). A gap, a duplicate or a new stream is acked
 * at once, as is the end of every message.
 */
bool lcr_srx_ack_due(const struct lcr_srx *r);
/*
 * Whether the ack that is due may wait a little: it is due only because a
 * message ended, at most LCR_SRX_HOLD_MAX datagrams were taken since the last
 * ack, all in order, and there is no gap, duplicate, retransmission or new
 * stream to report (those are acked at once). The transport lets such an ack
 * go with the node's answer to the message.
 */
#define LCR_SRX_HOLD_MAX 4
bool lcr_srx_ack_may_wait(const struct lcr_srx *r);
void lcr_srx_make_ack(struct lcr_srx *r, struct lcr_wire_ack *a);

#endif /* LCR_STREAM_H */
