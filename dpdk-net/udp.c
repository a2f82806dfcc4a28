/* SPDX-License-Identifier: MIT */
/*
 * The built-in transport (net.h): UDP datagrams on the kernel-socket backend
 * (sock.c), optionally through the fault decorator (faulty.c), one socket per
 * lcore (a peer's lcore i listens on its port + i).
 *
 *   stream_append    native: the pipelined stream of stream.h, one per
 *                    (group, follower); a request is encoded once and cut into
 *                    datagrams that stay in the stream's window until acked
 *   append_entries   a single request on the same stream
 *   vote, pre_vote   one datagram (the pre_vote flag is in the request)
 *   transfer_leader  one datagram
 *   read_index       one datagram
 *   full_snapshot    SNAPSHOT_REQ, then SNAPSHOT_CHUNKs on the follower's
 *                    stream, paced by the receiver's credit (SNAPSHOT_ACK);
 *                    each chunk and the whole carry a CRC32C
 *   cancel_snapshot  a SNAPSHOT_CANCEL datagram; the stream starts over
 *   respond          one datagram
 *   backoff          none: the configured one
 *
 * Every reply and request arrives as datagrams in poll(); stream datagrams go
 * through the receiving side of the stream (reorder, dedup, reassembly),
 * which is acknowledged once per burst. A stream whose datagrams went
 * unanswered tries_max times reports UNREACHABLE for its target and starts
 * over; the core backs off.
 *
 * With a cluster key (auth_key) every datagram leaving gets the trailer of
 * auth.h as it is queued, so counters go out in the order taken, and every
 * datagram arriving is verified before anything else in it is read but the
 * header's `from` (whose session key checks it): then the header rules, the
 * source address, the stream. The streams' datagrams are cut for a budget 32
 * bytes smaller; each transmission of one is copied into a transmit slot
 * that holds its trailer (a retransmission is a new datagram, new counter).
 *
 * No allocation after the groups are open: the transmit queue, the datagram
 * buffers of single messages and the streams' windows are sized at start-up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <arpa/inet.h>

#include "put.h"
#include "alloc.h"
#include "auth.h"
#include "backend.h"
#include "crc32c.h"
#include "dpdk.h"
#include "lcr_assert.h"
#include "net.h"
#include "stream.h"
#include "udp.h"
#include "wire.h"

#define BURST 64
/* How long the ack of a short AppendEntries waits for the node's answer to
 * go with (send_acks), at least: under the sender's least retransmission
 * timeout (2 ms), above a durable write's usual time. */
#define ACK_HOLD_NS (500ull * 1000)
#define TXQ_MAX	    2048
#define GROUPS_MAX  256 /* per lcore */
#define ENTS_MAX    65536
/* Senders whose replay state a receiver keeps (auth.h): more than a socket
 * backend can address at once (LCR_SOCK_PEERS_MAX). */
#define AUTH_SENDERS_MAX (2 * LCR_SOCK_PEERS_MAX)
/* The header's `from` (wire.h): all a receiver reads before the tag. */
#define WIRE_FROM_OFF 20

/*
 * A snapshot going out on a link (full_snapshot): pulled from the node's
 * source one chunk at a time, only while the stream's window has room for a
 * whole chunk and the receiver's credit allows it, so nothing is ever
 * dropped for want of room: what does not fit waits in the source.
 */
struct snap_tx {
	bool on;
	bool begun;			     /* SNAPSHOT_REQ is on the stream */
	bool last_sent;			     /* the LAST chunk is on the stream */
	bool done;			     /* the receiver has every byte: wait for the answer */
	uint32_t fail_err;		     /* to report from tick (enum lcr_net_err), 0: none */
	struct lcr_net_call call;	     /* the node's call */
	const struct lcr_net_snapshot *snap; /* valid while `on` */
	uint64_t xfer;
	uint64_t sent;	   /* data bytes on the stream */
	uint64_t written;  /* the receiver took this many */
	uint64_t credit;   /* data below this offset may go */
	uint32_t crc;	   /* of the data sent so far */
	uint32_t chunk;	   /* data bytes per chunk */
	uint64_t heard_ns; /* the last sign of the receiver (or the start) */
};

/* One (group, peer): the client new_client() makes. */
struct link {
	uint32_t group;
	uint32_t node;
	struct lcr_stx tx;	 /* our AppendEntries to it, when we lead */
	struct lcr_srx rx;	 /* its AppendEntries to us, when it leads */
	struct lcr_vote tx_vote; /* the leadership that uses tx */
	uint64_t core_stream;	 /* the core's stream id on it (for errors) */
	uint64_t stream_drops;	 /* requests the window had no room for */
	uint64_t core_restarts;	 /* the core's stream began anew: our window emptied */
	struct snap_tx snap;	 /* our snapshot to it */
	uint64_t unknown_xfer;	 /* a chunk of a transfer we do not hold: tell the sender */
	bool hello_due;		 /* tell it we started (LCR_WIRE_STREAM_HELLO) */
	uint64_t hello_boot;	 /* the boot id of its last hello we acted on */
	bool reply_acks;	 /* its last hello said it takes acks in APPEND_RESP headers */
	bool rx_append;		 /* the last message its stream brought was an AppendEntries */
	uint64_t ack_by_ns;	 /* the held ack of rx goes out by then (0: none held) */
};

/*
 * A snapshot coming in (from the leader of a group): its bytes go to the
 * node in order; what the node cannot take yet waits in `buf`, which the
 * credit granted to the sender never lets overflow.
 */
struct snap_rx {
	bool on;
	bool complete; /* every byte arrived and the whole CRC matched */
	bool ack_due;
	uint32_t group, from;
	uint64_t xfer;
	uint64_t handle; /* the node's */
	struct lcr_vote vote;
	uint64_t size;
	uint64_t recv;	  /* data bytes arrived, in order */
	uint64_t written; /* taken by the node */
	uint64_t acked;	  /* `written` in the last ack */
	uint32_t crc;	  /* of the data arrived */
	uint8_t *buf;	  /* LCR_UDP_SNAP_BUF bytes, a ring */
	uint32_t head, len;
	uint64_t heard_ns; /* the last chunk */
	uint64_t ack_ns;   /* the last ack */
};

struct snap_stats {
	uint64_t sent, received, cancelled, failed;
	uint64_t bytes_sent, bytes_received, chunks_sent, chunks_received;
	uint64_t bad_crc, timeouts, busy, stale_chunks, protocol, superseded;
	uint64_t window_waits, credit_waits;
};

struct udp_group {
	uint32_t id;
	uint32_t n_links;
	struct link *links[LCR_PEERS_MAX];
};

struct txslot {
	uint8_t *buf;
	uint32_t len;
	uint32_t peer;
};

struct udp {
	struct lcr_transport base;
	struct lcr_net *net;
	struct lcr_allocator alloc;
	uint32_t self;
	uint64_t cluster;
	struct lcr_stream_opts sopts;
	struct lcr_backend *be;
	struct udp_group groups[GROUPS_MAX];
	uint32_t n_groups;
	struct lcr_dgram rx[BURST];
	struct txslot tx[TXQ_MAX];
	uint8_t *txmem;		  /* buffers of single datagrams, TXQ_MAX of slot_bytes */
	uint32_t tx_head, tx_len; /* ring of tx */
	uint8_t *msgbuf;	  /* one encoded AppendEntries */
	uint64_t append_fixed;	  /* bytes of an AppendEntries without entries */
	struct lcr_entry *ents;	  /* entries of one received message */
	uint64_t now;
	uint64_t drops[LCR_DROP_MAX];
	uint64_t tx_full;
	/* Acks: STREAM_ACKs sent (hellos not counted), acks sent in the header
	 * of an answer instead, and acks taken from answers' headers. */
	uint64_t acks_sent, acks_in_answers, acks_from_answers;
	uint64_t boot;	     /* random, this transport's start: its hellos carry it */
	bool hellos_due;     /* a link has hello_due */
	struct snap_rx *srx; /* snapshot receives, n_srx */
	uint32_t n_srx;
	uint64_t snap_size_max;
	uint64_t snap_idle_ns;
	struct snap_stats ss;
	const struct lcr_udp_config *cfg; /* the factory's (it outlives the transport) */
	uint32_t lcore;			  /* the lcore it serves: peers' ports are + lcore */
	uint32_t headers;		  /* IP and UDP header bytes its datagrams leave room for */
	/* Authenticated datagrams (auth_key set): a trailer on each, bytes. */
	bool auth;
	uint32_t trailer;    /* LCR_AUTH_TRAILER with a key, else 0 */
	uint32_t slot_bytes; /* a datagram on the wire at most: sopts.dgram_max + trailer */
	struct lcr_auth_tx atx;
	struct lcr_auth_rx arx;
	char eal[4096]; /* DPDK: the EAL arguments with generated memif ports */
};

static struct udp_group *group_of(struct udp *u, uint32_t id)
{
	for (uint32_t i = 0; i < u->n_groups; i++)
		if (u->groups[i].id == id)
			return &u->groups[i];
	return NULL;
}

static struct link *link_of(struct udp_group *g, uint32_t node)
{
	for (uint32_t i = 0; i < g->n_links; i++)
		if (g->links[i]->node == node)
			return g->links[i];
	return NULL;
}

/* ---- transmit --------------------------------------------------------------- */

/*
 * Queue `len` bytes at buf for `peer`. With a key, buf is the transmit slot
 * tx_slot() gave (it holds the trailer) and the datagram is sealed here.
 */
static void tx_push(struct udp *u, uint8_t *buf, uint32_t len, uint32_t peer)
{
	uint32_t i = (u->tx_head + u->tx_len) % TXQ_MAX;
	struct txslot *t = &u->tx[i];
	if (u->auth) {
		LCR_ASSERT(buf == u->txmem + (size_t)i * u->slot_bytes);
		LCR_ASSERT(len + u->trailer <= u->slot_bytes);
		len = (uint32_t)lcr_auth_seal(&u->atx, buf, len);
	}
	t->buf = buf;
	t->len = len;
	t->peer = peer;
	u->tx_len++;
}

/* A buffer for one datagram of our own, or NULL when the queue is full. */
static uint8_t *tx_slot(struct udp *u)
{
	if (u->tx_len == TXQ_MAX) {
		u->tx_full++;
		return NULL;
	}
	uint32_t i = (u->tx_head + u->tx_len) % TXQ_MAX;
	return u->txmem + (size_t)i * u->slot_bytes;
}

static uint32_t tx_flush(struct udp *u)
{
	struct lcr_dgram d[BURST];
	uint32_t sent = 0;

	while (u->tx_len > 0) {
		uint32_t n = 0;
		while (n < BURST && n < u->tx_len) {
			struct txslot *t = &u->tx[(u->tx_head + n) % TXQ_MAX];
			d[n].buf = t->buf;
			d[n].len = t->len;
			d[n].peer = t->peer;
			n++;
		}
		int k = lcr_be_tx(u->be, d, n);
		if (k <= 0)
			break; /* the socket is full: try next iteration */
		u->tx_head = (u->tx_head + (uint32_t)k) % TXQ_MAX;
		u->tx_len -= (uint32_t)k;
		sent += (uint32_t)k;
	}
	return sent;
}

/* A message that is not on a stream: one datagram; stream and seq in its
 * header 0, or, in an APPEND_RESP, the ack of the peer's stream it carries. */
static void send_plain_ack(struct udp *u, uint32_t group, const struct lcr_msg *m, uint8_t type,
			   uint64_t stream, uint64_t cum)
{
	uint8_t *buf = tx_slot(u);
	if (!buf)
		return;
	size_t len = lcr_wire_encode_msg(buf + LCR_WIRE_HDR, u->sopts.dgram_max - LCR_WIRE_HDR, m);
	if (len == 0) {
		u->tx_full++;
		return;
	}
	struct lcr_wire_hdr h = { .type = type,
				  .cluster = u->cluster,
				  .group = group,
				  .from = m->from,
				  .to = m->to,
				  .len = (uint32_t)len,
				  .stream = stream,
				  .seq = cum,
				  .frag_count = 1 };
	tx_push(u, buf, (uint32_t)lcr_wire_seal(buf, &h), m->to);
}

static void send_plain(struct udp *u, uint32_t group, const struct lcr_msg *m, uint8_t type)
{
	send_plain_ack(u, group, m, type, 0, 0);
}

/* Datagrams of the streams that are due (new ones and retransmissions). */
static uint32_t stream_tx(struct udp *u)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < u->n_groups; i++) {
		struct udp_group *g = &u->groups[i];
		for (uint32_t k = 0; k < g->n_links; k++) {
			struct link *l = g->links[k];
			struct lcr_dgram_view v;
			while (u->tx_len < TXQ_MAX && lcr_stx_next(&l->tx, u->now, &v)) {
				uint8_t *buf = (uint8_t *)v.buf;
				if (u->auth) {
					/* The stream's copy has no room for a trailer,
					 * and every transmission takes a new counter. */
					buf = tx_slot(u);
					memcpy(buf, v.buf, v.len);
				}
				tx_push(u, buf, v.len, l->node);
				n++;
			}
		}
	}
	return n;
}

/* ---- the ops ---------------------------------------------------------------- */

/*
 * AppendEntries, entries attached by the node: encode once and put it on
 * the follower's stream, which keeps the datagrams until they are acked.
 */
static void udp_stream_append(struct lcr_transport *t, const struct lcr_net_call *call,
			      const struct lcr_msg *req, const struct lcr_net_opts *opt)
{
	struct udp *u = (struct udp *)t;
	struct link *l = call->client;
	(void)opt;

	/* A new leadership starts new transport streams. */
	if (!lcr_vote_eq(l->tx_vote, req->append_req.vote)) {
		lcr_stx_reset(&l->tx);
		l->tx_vote = req->append_req.vote;
	} else if (req->append_req.stream_id > l->core_stream && l->core_stream != 0 &&
		   !l->snap.on && lcr_stx_in_flight(&l->tx) > 0 &&
		   u->now - l->tx.heard_ns <= u->sopts.rto_max_ns) {
		/* The core restarted its stream from the last match (its stall
		 * timer, a conflict): what the window still holds of the old one
		 * is sent again on the new, and would only arrive twice. Only
		 * while the peer answers: a silent peer's unanswered datagrams
		 * must go on counting towards UNREACHABLE, which the core's
		 * restarts (every heartbeat) would otherwise never reach. */
		lcr_stx_reset(&l->tx);
		l->core_restarts++;
	}
	l->core_stream = req->append_req.stream_id;
	/* A heartbeat to a peer that is not answering also sends the oldest
	 * datagram it has not acknowledged again, now: when it comes back
	 * (restarted), it hears us within a heartbeat interval, not at the
	 * next timeout, which backs off to rto_max. */
	if (call->heartbeat)
		lcr_stx_probe(&l->tx, u->now);
	size_t len = lcr_wire_encode_msg(u->msgbuf, LCR_WIRE_MSG_MAX, req);
	if (len > 0 &&
	    lcr_stx_send(&l->tx, LCR_WIRE_APPEND_REQ, u->msgbuf, (uint32_t)len, u->now) == 0)
		return;
	/* No room (net.c asks udp_stream_room first, so only a heartbeat, or
	 * a request of a leadership that just began, gets here): a dropped
	 * heartbeat is only counted, the next one follows; a request ends its
	 * stream at once, so the core starts over now instead of after its
	 * stall timer. */
	l->stream_drops++;
	if (!call->heartbeat)
		lcr_net_fail(u->net, call, LCR_NET_NETWORK, "stream window full");
}

/* Bytes of AppendEntries the follower's stream takes now (net.h): what fits
 * the window's free datagrams, less the request's fixed part. */
static uint64_t udp_stream_room(const struct lcr_transport *t, void *client)
{
	const struct udp *u = (const struct udp *)t;
	const struct link *l = client;
	uint64_t room = lcr_stx_room(&l->tx);

	return room > u->append_fixed ? room - u->append_fixed : 0;
}

static void udp_vote(struct lcr_transport *t, const struct lcr_net_call *call,
		     const struct lcr_msg *req, const struct lcr_net_opts *opt)
{
	(void)opt;
	send_plain((struct udp *)t, call->group, req, LCR_WIRE_VOTE_REQ);
}

static void udp_transfer(struct lcr_transport *t, const struct lcr_net_call *call,
			 const struct lcr_msg *req, const struct lcr_net_opts *opt)
{
	(void)opt;
	send_plain((struct udp *)t, call->group, req, LCR_WIRE_TRANSFER);
}

static void udp_read_index(struct lcr_transport *t, const struct lcr_net_call *call,
			   const struct lcr_msg *req, const struct lcr_net_opts *opt)
{
	(void)opt;
	send_plain((struct udp *)t, call->group, req, LCR_WIRE_READ_INDEX_REQ);
}

static bool ack_now(struct udp *u, const struct udp_group *g, struct link *l);

/*
 * An answer to a peer whose ack we hold (send_acks) takes it along: in its
 * header, an APPEND_RESP to a peer that said it reads acks there; else a
 * STREAM_ACK just before it, in the same send.
 */
static void udp_respond(struct lcr_transport *t, uint32_t group, const struct lcr_msg *resp)
{
	struct udp *u = (struct udp *)t;
	uint8_t type = resp->type == LCR_MSG_APPEND_RESP       ? LCR_WIRE_APPEND_RESP
		       : resp->type == LCR_MSG_READ_INDEX_RESP ? LCR_WIRE_READ_INDEX_RESP
		       : resp->type == LCR_MSG_SNAPSHOT_RESP   ? LCR_WIRE_SNAPSHOT_RESP
							       : LCR_WIRE_VOTE_RESP;
	struct udp_group *g = group_of(u, group);
	struct link *l = g ? link_of(g, resp->to) : NULL;
	/* Held, or about to be (an answer made while the message is delivered). */
	bool may_wait = l && l->rx_append && lcr_srx_ack_may_wait(&l->rx);
	if (l && lcr_srx_ack_due(&l->rx) && (l->ack_by_ns || may_wait)) {
		if (type == LCR_WIRE_APPEND_RESP && l->reply_acks && !u->cfg->no_reply_acks &&
		    may_wait && tx_slot(u)) {
			struct lcr_wire_ack a;
			lcr_srx_make_ack(&l->rx, &a);
			l->ack_by_ns = 0;
			u->acks_in_answers++;
			send_plain_ack(u, group, resp, type, a.stream, a.cum);
			return;
		}
		ack_now(u, g, l);
	}
	send_plain(u, group, resp, type);
}

static void snap_tx_stop(struct udp *u, struct link *l);
static struct snap_rx *rx_of(struct udp *u, uint32_t group, uint32_t from);

static int udp_new_client(struct lcr_transport *t, uint32_t group, uint32_t target, void **client,
			  char *why, size_t why_len)
{
	struct udp *u = (struct udp *)t;
	struct udp_group *g = group_of(u, group);
	int rc;

	if (!g) {
		if (u->n_groups == GROUPS_MAX) {
			snprintf(why, why_len, "udp: more than %d groups on one lcore", GROUPS_MAX);
			return -ENOSPC;
		}
		g = &u->groups[u->n_groups++];
		memset(g, 0, sizeof(*g));
		g->id = group;
	}
	if (g->n_links == LCR_PEERS_MAX || link_of(g, target)) {
		snprintf(why, why_len, "udp: group %u: node %u twice, or more than %d peers", group,
			 target, LCR_PEERS_MAX);
		return -EINVAL;
	}
	struct link *l = lcr_allocator_zalloc(&u->alloc, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->group = group;
	l->node = target;
	if ((rc = lcr_stx_init(&l->tx, &u->sopts, u->cluster, group, u->self, target)) < 0 ||
	    (rc = lcr_srx_init(&l->rx, &u->sopts)) < 0) {
		snprintf(why, why_len, "group %u: stream buffers: %s", group, strerror(-rc));
		lcr_stx_free(&l->tx);
		lcr_srx_free(&l->rx);
		lcr_allocator_free(&u->alloc, l);
		return rc;
	}
	/* A peer that led us before we started resends what we lack at once. */
	l->hello_due = true;
	u->hellos_due = true;
	g->links[g->n_links++] = l;
	*client = l;
	return 0;
}

static void udp_drop_client(struct lcr_transport *t, void *client)
{
	struct udp *u = (struct udp *)t;
	struct link *l = client;
	struct udp_group *g = group_of(u, l->group);

	LCR_ASSERT(g != NULL);
	for (uint32_t i = 0; i < g->n_links; i++)
		if (g->links[i] == l) {
			g->links[i] = g->links[--g->n_links];
			break;
		}
	if (g->n_links == 0)
		*g = u->groups[--u->n_groups];
	if (l->snap.on)
		snap_tx_stop(u, l);
	struct snap_rx *r = rx_of(u, l->group, l->node);
	if (r) {
		r->on = false;
		lcr_net_snapshot_abort(u->net, r->group, r->handle);
	}
	lcr_stx_free(&l->tx);
	lcr_srx_free(&l->rx);
	lcr_allocator_free(&u->alloc, l);
}

/* ---- snapshots: sending ------------------------------------------------------ */

/* A single datagram of the snapshot protocol (ack or cancel), or false when
 * the transmit queue is full (the caller tries again later). */
static bool snap_plain(struct udp *u, uint32_t group, uint32_t to, uint8_t type, const void *msg)
{
	uint8_t *buf = tx_slot(u);
	if (!buf)
		return false;
	size_t cap = u->sopts.dgram_max - LCR_WIRE_HDR;
	size_t len = type == LCR_WIRE_SNAPSHOT_ACK
			     ? lcr_wire_encode_snap_ack(buf + LCR_WIRE_HDR, cap, msg)
			     : lcr_wire_encode_snap_cancel(buf + LCR_WIRE_HDR, cap, msg);
	LCR_ASSERT(len > 0);
	struct lcr_wire_hdr h = { .type = type,
				  .cluster = u->cluster,
				  .group = group,
				  .from = u->self,
				  .to = to,
				  .len = (uint32_t)len,
				  .frag_count = 1 };
	tx_push(u, buf, (uint32_t)lcr_wire_seal(buf, &h), to);
	return true;
}

/* The send on `l` stops; the receiver is told (best effort: it also drops a
 * transfer that went silent). The node's call is the caller's business. */
static void snap_tx_stop(struct udp *u, struct link *l)
{
	struct snap_tx *x = &l->snap;
	struct lcr_wire_snap_cancel c = { .xfer = x->xfer };

	LCR_ASSERT(x->on);
	if (!x->done)
		snap_plain(u, l->group, l->node, LCR_WIRE_SNAPSHOT_CANCEL, &c);
	x->on = false;
	x->snap = NULL;
}

static void snap_tx_fail(struct udp *u, struct link *l, uint32_t err, const char *why)
{
	struct lcr_net_call c = l->snap.call;

	snap_tx_stop(u, l);
	u->ss.failed++;
	lcr_net_fail(u->net, &c, err, why);
}

static void udp_full_snapshot(struct lcr_transport *t, const struct lcr_net_call *call,
			      struct lcr_vote vote, const struct lcr_net_snapshot *snap,
			      const struct lcr_net_opts *opt)
{
	struct udp *u = (struct udp *)t;
	struct link *l = call->client;
	struct snap_tx *x = &l->snap;

	LCR_ASSERT(!x->on); /* net.c cancels the last one first */
	LCR_ASSERT(snap->req.type == LCR_MSG_SNAPSHOT_REQ);
	/* A new leadership starts new transport streams (as AppendEntries). */
	if (!lcr_vote_eq(l->tx_vote, vote)) {
		lcr_stx_reset(&l->tx);
		l->tx_vote = vote;
	}
	memset(x, 0, sizeof(*x));
	x->on = true;
	x->call = *call;
	x->snap = snap;
	x->xfer = lcr_stream_new_id();
	x->credit = LCR_UDP_SNAP_BUF / 4; /* what any receiver holds before it speaks */
	x->chunk = LCR_UDP_SNAP_CHUNK;
	if (opt->snapshot_chunk_bytes && opt->snapshot_chunk_bytes < x->chunk)
		x->chunk = (uint32_t)opt->snapshot_chunk_bytes;
	l->core_stream = snap->req.snapshot_req.stream_id;
	u->ss.sent++;
}

static void udp_cancel_snapshot(struct lcr_transport *t, const struct lcr_net_call *call)
{
	struct udp *u = (struct udp *)t;
	struct link *l = call->client;

	if (!l->snap.on || l->snap.call.id != call->id)
		return;
	snap_tx_stop(u, l);
	u->ss.cancelled++;
	/* What is still in the window is of no use to anyone now. */
	lcr_stx_reset(&l->tx);
}

/* Datagrams one message of `bytes` takes on the stream. */
static uint32_t frags_of(const struct udp *u, uint32_t bytes)
{
	uint32_t per = u->sopts.dgram_max - LCR_WIRE_HDR;
	return bytes == 0 ? 1 : (bytes + per - 1) / per;
}

/* Put the opening and then chunks on the stream while the window, the credit
 * and the source allow. */
static void snap_pump(struct udp *u, struct link *l)
{
	struct snap_tx *x = &l->snap;
	const struct lcr_net_snapshot *s = x->snap;
	uint32_t need = frags_of(u, LCR_WIRE_SNAP_CHUNK_HDR + x->chunk);

	if (!x->begun) {
		struct lcr_wire_snap_begin b = { .req = s->req.snapshot_req,
						 .xfer = x->xfer,
						 .chunk_max = x->chunk };
		b.req.size = s->size;
		size_t len = lcr_wire_encode_snap_begin(u->msgbuf, LCR_WIRE_MSG_MAX, &b);
		LCR_ASSERT(len > 0);
		if (lcr_stx_send(&l->tx, LCR_WIRE_SNAPSHOT_REQ, u->msgbuf, (uint32_t)len, u->now) <
		    0) {
			u->ss.window_waits++;
			return;
		}
		x->begun = true;
		x->heard_ns = u->now; /* the receiver's clock starts with the opening */
	}
	while (!x->last_sent) {
		if (lcr_stx_in_flight(&l->tx) + need > u->sopts.window) {
			u->ss.window_waits++;
			return;
		}
		uint64_t want = s->size - x->sent;
		if (want > x->chunk)
			want = x->chunk;
		if (x->sent + want > x->credit) {
			u->ss.credit_waits++;
			return;
		}
		const void *data = NULL;
		long n = 0;
		if (want > 0) {
			n = s->pull(s->src, &data, (size_t)want);
			if (n < 0) {
				x->fail_err = LCR_NET_NETWORK;
				return;
			}
			if (n == 0)
				return; /* the source reads ahead: next time */
			LCR_ASSERT((uint64_t)n <= want);
		}
		struct lcr_wire_snap_chunk c = { .xfer = x->xfer,
						 .offset = x->sent,
						 .len = (uint32_t)n,
						 .crc = lcr_crc32c(0, data, (size_t)n),
						 .data = data };
		x->crc = lcr_crc32c(x->crc, data, (size_t)n);
		if (x->sent + (uint64_t)n == s->size) {
			c.flags = LCR_WIRE_SNAP_LAST;
			c.total_crc = x->crc;
		}
		size_t len = lcr_wire_encode_snap_chunk(u->msgbuf, LCR_WIRE_MSG_MAX, &c);
		LCR_ASSERT(len > 0);
		int rc = lcr_stx_send(&l->tx, LCR_WIRE_SNAPSHOT_CHUNK, u->msgbuf, (uint32_t)len,
				      u->now);
		LCR_ASSERT(rc == 0); /* the room was checked */
		x->sent += (uint64_t)n;
		u->ss.chunks_sent++;
		u->ss.bytes_sent += (uint64_t)n;
		if (c.flags & LCR_WIRE_SNAP_LAST)
			x->last_sent = true;
	}
}

static void snap_on_ack(struct udp *u, struct link *l, const struct lcr_wire_snap_ack *a)
{
	struct snap_tx *x = &l->snap;

	if (!x->on || a->xfer != x->xfer) {
		u->ss.stale_chunks++;
		return;
	}
	x->heard_ns = u->now;
	/* Acks may come out of order: progress only goes forward, and never
	 * past what was sent. */
	if (a->written > x->written && a->written <= x->sent)
		x->written = a->written;
	if (a->credit > x->credit)
		x->credit = a->credit;
	switch (a->status) {
	case LCR_SNAP_ST_OK:
		break;
	case LCR_SNAP_ST_DONE:
		if (x->last_sent)
			x->done = true;
		break;
	case LCR_SNAP_ST_BUSY:
		u->ss.busy++;
		snap_tx_fail(u, l, LCR_NET_UNREACHABLE, "the receiver holds other snapshots");
		break;
	default:
		snap_tx_fail(u, l, LCR_NET_REMOTE, "the receiver gave the snapshot up");
		break;
	}
}

/* Timers of the sends: a failure found in flush, a silent receiver. */
static bool snap_tx_tick(struct udp *u, struct link *l)
{
	struct snap_tx *x = &l->snap;

	if (!x->on)
		return false;
	if (x->fail_err) {
		snap_tx_fail(u, l, x->fail_err, "reading the snapshot failed");
		return true;
	}
	/* Once every byte is in, the receiver installs it, which may take
	 * long: the core's snapshot timeout covers that part. */
	if (x->begun && !x->done && u->now - x->heard_ns > u->snap_idle_ns) {
		snap_tx_fail(u, l, LCR_NET_TIMEOUT, "the receiver of the snapshot went silent");
		return true;
	}
	return false;
}

/* ---- snapshots: receiving ------------------------------------------------------ */

static struct snap_rx *rx_of(struct udp *u, uint32_t group, uint32_t from)
{
	for (uint32_t i = 0; i < u->n_srx; i++)
		if (u->srx[i].on && u->srx[i].group == group && u->srx[i].from == from)
			return &u->srx[i];
	return NULL;
}

static void rx_ack(struct udp *u, uint32_t group, uint32_t to, uint64_t xfer, uint32_t status,
		   uint64_t written, uint64_t credit)
{
	struct lcr_wire_snap_ack a = {
		.xfer = xfer, .written = written, .credit = credit, .status = status
	};
	snap_plain(u, group, to, LCR_WIRE_SNAPSHOT_ACK, &a);
}

/* Give a receive up: the node removes its file; the sender hears why. */
static void rx_drop(struct udp *u, struct snap_rx *r, uint32_t status)
{
	LCR_ASSERT(r->on);
	r->on = false;
	lcr_net_snapshot_abort(u->net, r->group, r->handle);
	if (status)
		rx_ack(u, r->group, r->from, r->xfer, status, r->written, r->written);
	u->ss.failed++;
}

static void rx_begin(struct udp *u, uint32_t group, uint32_t from, const uint8_t *p, uint32_t len)
{
	struct lcr_wire_snap_begin b;

	if (lcr_wire_decode_snap_begin(p, len, &b) != LCR_DROP_NONE) {
		u->drops[LCR_DROP_MALFORMED]++;
		return;
	}
	/* One receive per group: a snapshot from a newer (or the same)
	 * leadership replaces a partial one; an older leadership's is refused. */
	struct snap_rx *r = NULL;
	for (uint32_t i = 0; i < u->n_srx; i++) {
		struct snap_rx *o = &u->srx[i];
		if (!o->on || o->group != group)
			continue;
		if (lcr_vote_cmp(b.req.vote, o->vote) < 0) {
			u->ss.superseded++;
			rx_ack(u, group, from, b.xfer, LCR_SNAP_ST_SUPERSEDED, 0, 0);
			return;
		}
		u->ss.superseded++;
		rx_drop(u, o, LCR_SNAP_ST_SUPERSEDED);
		r = o;
	}
	for (uint32_t i = 0; !r && i < u->n_srx; i++)
		if (!u->srx[i].on)
			r = &u->srx[i];
	if (!r) {
		u->ss.busy++;
		rx_ack(u, group, from, b.xfer, LCR_SNAP_ST_BUSY, 0, 0);
		return;
	}
	if (b.req.size > u->snap_size_max) {
		u->ss.failed++;
		rx_ack(u, group, from, b.xfer, LCR_SNAP_ST_TOO_BIG, 0, 0);
		return;
	}
	struct lcr_msg m = { .type = LCR_MSG_SNAPSHOT_REQ, .from = from, .to = u->self };
	m.snapshot_req = b.req;
	uint64_t handle = 0;
	int rc = lcr_net_snapshot_begin(u->net, group, &m, b.req.size, &handle);
	if (rc < 0) {
		u->ss.failed++;
		rx_ack(u, group, from, b.xfer,
		       rc == -EFBIG   ? LCR_SNAP_ST_TOO_BIG
		       : rc == -EBUSY ? LCR_SNAP_ST_BUSY
				      : LCR_SNAP_ST_STORAGE,
		       0, 0);
		return;
	}
	uint8_t *buf = r->buf;
	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->on = true;
	r->group = group;
	r->from = from;
	r->xfer = b.xfer;
	r->handle = handle;
	r->vote = b.req.vote;
	r->size = b.req.size;
	r->heard_ns = u->now;
	r->ack_due = true; /* the sender learns its full credit at once */
}

/* Hand what the buffer holds to the node, in order, as far as it takes it. */
static bool rx_drain(struct udp *u, struct snap_rx *r)
{
	bool any = false;

	while (r->len > 0) {
		uint32_t run = LCR_UDP_SNAP_BUF - r->head;
		if (run > r->len)
			run = r->len;
		long n = lcr_net_snapshot_write(u->net, r->group, r->handle, r->buf + r->head, run);
		if (n < 0) {
			rx_drop(u, r, LCR_SNAP_ST_STORAGE);
			return true;
		}
		if (n == 0)
			break;
		r->head = (r->head + (uint32_t)n) % LCR_UDP_SNAP_BUF;
		r->len -= (uint32_t)n;
		r->written += (uint64_t)n;
		any = true;
	}
	if (r->written - r->acked >= LCR_UDP_SNAP_BUF / 4)
		r->ack_due = true;
	if (r->complete && r->len == 0) {
		/* Every byte is with the node: it takes over (durable, then
		 * its core). The sender stops its clock and waits for the answer. */
		r->on = false;
		int rc = lcr_net_snapshot_end(u->net, r->group, r->handle);
		if (rc < 0) {
			u->ss.failed++;
			rx_ack(u, r->group, r->from, r->xfer, LCR_SNAP_ST_STORAGE, r->written,
			       r->written);
		} else {
			u->ss.received++;
			rx_ack(u, r->group, r->from, r->xfer, LCR_SNAP_ST_DONE, r->written,
			       r->written);
		}
		return true;
	}
	return any;
}

static void rx_chunk(struct udp *u, struct link *l, const uint8_t *p, uint32_t len)
{
	struct lcr_wire_snap_chunk c;

	if (lcr_wire_decode_snap_chunk(p, len, &c) != LCR_DROP_NONE) {
		u->drops[LCR_DROP_MALFORMED]++;
		return;
	}
	struct snap_rx *r = rx_of(u, l->group, l->node);
	if (!r || r->xfer != c.xfer || r->complete) {
		/* A transfer we dropped (or never had): the sender should stop. */
		u->ss.stale_chunks++;
		l->unknown_xfer = c.xfer;
		return;
	}
	r->heard_ns = u->now;
	if (c.offset != r->recv || c.len > r->size - r->recv ||
	    c.offset + c.len > r->written + LCR_UDP_SNAP_BUF) {
		u->ss.protocol++;
		rx_drop(u, r, LCR_SNAP_ST_PROTOCOL);
		return;
	}
	if (lcr_crc32c(0, c.data, c.len) != c.crc) {
		u->ss.bad_crc++;
		rx_drop(u, r, LCR_SNAP_ST_BAD_CRC);
		return;
	}
	r->crc = lcr_crc32c(r->crc, c.data, c.len);
	r->recv += c.len;
	u->ss.chunks_received++;
	u->ss.bytes_received += c.len;
	/* Straight to the node while nothing waits before it; the rest into
	 * the buffer (the credit leaves room for it). */
	const uint8_t *d = c.data;
	uint32_t left = c.len;
	if (r->len == 0 && left > 0) {
		long n = lcr_net_snapshot_write(u->net, r->group, r->handle, d, left);
		if (n < 0) {
			rx_drop(u, r, LCR_SNAP_ST_STORAGE);
			return;
		}
		d += n;
		left -= (uint32_t)n;
		r->written += (uint64_t)n;
	}
	LCR_ASSERT(r->len + left <= LCR_UDP_SNAP_BUF);
	for (uint32_t k = 0; k < left;) {
		uint32_t at = (r->head + r->len) % LCR_UDP_SNAP_BUF;
		uint32_t run = LCR_UDP_SNAP_BUF - at;
		if (run > left - k)
			run = left - k;
		memcpy(r->buf + at, d + k, run);
		r->len += run;
		k += run;
	}
	if (c.flags & LCR_WIRE_SNAP_LAST) {
		if (r->recv != r->size || r->crc != c.total_crc) {
			u->ss.bad_crc++;
			rx_drop(u, r, LCR_SNAP_ST_BAD_CRC);
			return;
		}
		r->complete = true;
	}
	if (r->written - r->acked >= LCR_UDP_SNAP_BUF / 4)
		r->ack_due = true;
	if (r->complete && r->len == 0)
		rx_drain(u, r);
}

static void rx_cancel(struct udp *u, uint32_t group, uint32_t from, const uint8_t *p, uint32_t len)
{
	struct lcr_wire_snap_cancel c;

	if (lcr_wire_decode_snap_cancel(p, len, &c) != LCR_DROP_NONE) {
		u->drops[LCR_DROP_MALFORMED]++;
		return;
	}
	struct snap_rx *r = rx_of(u, group, from);
	if (!r || r->xfer != c.xfer)
		return;
	u->ss.cancelled++;
	r->on = false;
	lcr_net_snapshot_abort(u->net, r->group, r->handle);
}

/* After a burst and in tick: drain, acknowledge, drop silent senders. */
static bool snap_rx_work(struct udp *u, bool timers)
{
	bool work = false;

	for (uint32_t i = 0; i < u->n_srx; i++) {
		struct snap_rx *r = &u->srx[i];
		if (!r->on)
			continue;
		work |= rx_drain(u, r);
		if (!r->on)
			continue;
		if (timers && u->now - r->heard_ns > u->snap_idle_ns) {
			u->ss.timeouts++;
			rx_drop(u, r, LCR_SNAP_ST_UNKNOWN);
			work = true;
			continue;
		}
		/* A slow disk must not look like a silent receiver. */
		if (timers && u->now - r->ack_ns > u->snap_idle_ns / 4)
			r->ack_due = true;
		if (r->ack_due && tx_slot(u)) {
			rx_ack(u, r->group, r->from, r->xfer, LCR_SNAP_ST_OK, r->written,
			       r->written + LCR_UDP_SNAP_BUF);
			r->ack_due = false;
			r->acked = r->written;
			r->ack_ns = u->now;
		}
	}
	return work;
}

/* ---- receiving ---------------------------------------------------------------- */

struct deliver_ctx {
	struct udp *u;
	struct link *l;
	uint32_t group, from;
};

/* Decode a whole message and hand it to the node: requests to the core,
 * replies as the results of our calls. */
static void deliver_msg(struct udp *u, uint32_t group, uint32_t from, uint8_t type,
			const uint8_t *p, uint32_t len)
{
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	if (lcr_wire_decode_msg(p, len, type, &m, u->ents, ENTS_MAX) != LCR_DROP_NONE) {
		u->drops[LCR_DROP_MALFORMED]++;
		return;
	}
	m.from = from;
	m.to = u->self;
	if (m.type == LCR_MSG_SNAPSHOT_RESP) {
		/* The answer ends our send (net.c releases its source). */
		struct udp_group *g = group_of(u, group);
		struct link *l = g ? link_of(g, from) : NULL;
		const struct lcr_snapshot_req *q =
			l && l->snap.on ? &l->snap.snap->req.snapshot_req : NULL;
		if (q && q->stream_id == m.snapshot_resp.stream_id &&
		    q->inflight_id == m.snapshot_resp.inflight_id &&
		    q->send_seq == m.snapshot_resp.send_seq) {
			l->snap.on = false;
			l->snap.snap = NULL;
		}
	}
	if (m.type == LCR_MSG_APPEND_RESP || m.type == LCR_MSG_VOTE_RESP ||
	    m.type == LCR_MSG_READ_INDEX_RESP || m.type == LCR_MSG_SNAPSHOT_RESP)
		lcr_net_reply(u->net, group, &m);
	else
		lcr_net_deliver(u->net, group, &m);
}

static void on_stream_msg(void *ctx, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct deliver_ctx *d = ctx;
	d->l->rx_append = type == LCR_WIRE_APPEND_REQ;
	if (type == LCR_WIRE_SNAPSHOT_REQ)
		rx_begin(d->u, d->group, d->from, p, len);
	else if (type == LCR_WIRE_SNAPSHOT_CHUNK)
		rx_chunk(d->u, d->l, p, len);
	else
		deliver_msg(d->u, d->group, d->from, type, p, len);
}

/*
 * With a key: the datagram's trailer, checked against the session key of the
 * node its header's `from` names (the only field read before), its boot and
 * its counter (auth.h). Returns the datagram's length without the trailer,
 * or 0 when it was dropped (counted).
 */
static uint32_t authenticate(struct udp *u, const struct lcr_dgram *d)
{
	if (d->len < LCR_WIRE_HDR + LCR_AUTH_TRAILER) {
		u->drops[LCR_DROP_SHORT]++;
		return 0;
	}
	const uint8_t *f = d->buf + WIRE_FROM_OFF;
	uint32_t from =
		(uint32_t)f[0] | (uint32_t)f[1] << 8 | (uint32_t)f[2] << 16 | (uint32_t)f[3] << 24;
	/* No node speaks as us, nor as node 0 (its datagrams could only be
	 * our own, reflected). */
	if (from == 0 || from == u->self) {
		u->drops[LCR_DROP_SENDER]++;
		return 0;
	}
	if (lcr_auth_open(&u->arx, from, d->buf, d->len) != LCR_AUTH_OK)
		return 0; /* counted in arx.st */
	return d->len - LCR_AUTH_TRAILER;
}

static void on_dgram(struct udp *u, const struct lcr_dgram *d)
{
	struct lcr_wire_hdr h;
	uint32_t len = d->len;

	if (u->auth && (len = authenticate(u, d)) == 0)
		return;
	uint32_t why = lcr_wire_open(d->buf, len, u->cluster, &h);

	if (why != LCR_DROP_NONE) {
		u->drops[why]++;
		return;
	}
	if (h.to != u->self) {
		u->drops[LCR_DROP_NOT_FOR_US]++;
		return;
	}
	/* The header names its sender; only that node's configured address may
	 * speak for it (the backend says whose address sent the datagram). */
	if (d->peer == 0 || d->peer != h.from) {
		u->drops[LCR_DROP_SENDER]++;
		return;
	}
	struct udp_group *g = group_of(u, h.group);
	if (!g) {
		u->drops[LCR_DROP_UNKNOWN_GROUP]++;
		return;
	}
	struct link *l = link_of(g, h.from);
	if (!l) {
		u->drops[LCR_DROP_UNKNOWN_NODE]++;
		return;
	}
	const uint8_t *payload = d->buf + LCR_WIRE_HDR;
	switch (h.type) {
	case LCR_WIRE_APPEND_REQ:
	case LCR_WIRE_SNAPSHOT_REQ:
	case LCR_WIRE_SNAPSHOT_CHUNK: {
		struct deliver_ctx dc = { u, l, h.group, h.from };
		uint32_t r = lcr_srx_on_dgram(&l->rx, &h, payload, on_stream_msg, &dc);
		if (r != LCR_DROP_NONE)
			u->drops[r]++;
		break;
	}
	case LCR_WIRE_STREAM_ACK: {
		struct lcr_wire_ack a;
		if (lcr_wire_decode_ack(payload, h.len, &a) != LCR_DROP_NONE) {
			u->drops[LCR_DROP_MALFORMED]++;
			break;
		}
		if (a.stream == LCR_WIRE_STREAM_HELLO) {
			/* Once per start of the peer: a copy of the hello that
			 * comes again later changes nothing. */
			if (a.sack != l->hello_boot) {
				l->hello_boot = a.sack;
				l->reply_acks = (a.flags & LCR_WIRE_ACK_REPLY_ACKS) != 0;
				lcr_stx_hello(&l->tx, a.cum, u->now);
				lcr_net_peer_started(u->net, h.group, h.from);
				/* Answered with ours, once per start of the peer:
				 * it may have started after we said hello. */
				l->hello_due = true;
				u->hellos_due = true;
			}
			break;
		}
		lcr_stx_on_ack(&l->tx, &a, u->now);
		break;
	}
	case LCR_WIRE_SNAPSHOT_ACK: {
		struct lcr_wire_snap_ack a;
		if (lcr_wire_decode_snap_ack(payload, h.len, &a) != LCR_DROP_NONE) {
			u->drops[LCR_DROP_MALFORMED]++;
			break;
		}
		snap_on_ack(u, l, &a);
		break;
	}
	case LCR_WIRE_SNAPSHOT_CANCEL:
		rx_cancel(u, h.group, h.from, payload, h.len);
		break;
	case LCR_WIRE_APPEND_RESP:
		/* An ack of our stream in its header (the sender read our
		 * hello): what a STREAM_ACK with that cum would say. */
		if (h.stream != 0 && !u->cfg->no_reply_acks) {
			struct lcr_wire_ack a = { .stream = h.stream,
						  .cum = h.seq,
						  .window = l->tx.peer_window };
			u->acks_from_answers++;
			lcr_stx_on_ack(&l->tx, &a, u->now);
		}
		deliver_msg(u, h.group, h.from, h.type, payload, h.len);
		break;
	case LCR_WIRE_VOTE_REQ:
	case LCR_WIRE_VOTE_RESP:
	case LCR_WIRE_TRANSFER:
	case LCR_WIRE_READ_INDEX_REQ:
	case LCR_WIRE_READ_INDEX_RESP:
	case LCR_WIRE_SNAPSHOT_RESP:
		deliver_msg(u, h.group, h.from, h.type, payload, h.len);
		break;
	default:
		u->drops[LCR_DROP_TYPE]++;
		break;
	}
}

/* A STREAM_ACK to link l of group g, into buf (a tx slot), queued. */
static void push_ack(struct udp *u, uint8_t *buf, const struct udp_group *g, const struct link *l,
		     const struct lcr_wire_ack *a)
{
	size_t len = lcr_wire_encode_ack(buf + LCR_WIRE_HDR, u->sopts.dgram_max - LCR_WIRE_HDR, a);
	struct lcr_wire_hdr h = { .type = LCR_WIRE_STREAM_ACK,
				  .cluster = u->cluster,
				  .group = g->id,
				  .from = u->self,
				  .to = l->node,
				  .len = (uint32_t)len,
				  .frag_count = 1 };
	tx_push(u, buf, (uint32_t)lcr_wire_seal(buf, &h), l->node);
}

/* Tell each peer we started (once per link, when it is made): a hello. */
static void send_hellos(struct udp *u)
{
	for (uint32_t i = 0; i < u->n_groups; i++) {
		struct udp_group *g = &u->groups[i];
		for (uint32_t k = 0; k < g->n_links; k++) {
			struct link *l = g->links[k];
			if (!l->hello_due)
				continue;
			uint8_t *buf = tx_slot(u);
			if (!buf)
				return; /* the rest at the next flush */
			/* cum: the stream of that peer we took up since we
			 * started (0: none), so that it does not start its
			 * stream over when we receive it already. */
			struct lcr_wire_ack a = { .stream = LCR_WIRE_STREAM_HELLO,
						  .cum = l->rx.stream,
						  .sack = u->boot,
						  .window = u->sopts.window,
						  .flags = LCR_WIRE_ACK_FRESH };
			if (!u->cfg->no_reply_acks)
				a.flags |= LCR_WIRE_ACK_REPLY_ACKS;
			push_ack(u, buf, g, l, &a);
			l->hello_due = false;
		}
	}
	u->hellos_due = false;
}

/* The ack of l's stream, now (false: no room in the transmit queue). */
static bool ack_now(struct udp *u, const struct udp_group *g, struct link *l)
{
	uint8_t *buf = tx_slot(u);
	if (!buf)
		return false;
	struct lcr_wire_ack a;
	lcr_srx_make_ack(&l->rx, &a);
	push_ack(u, buf, g, l, &a);
	l->ack_by_ns = 0;
	u->acks_sent++;
	return true;
}

/*
 * Acknowledge, once per burst, every stream that received data. The end of
 * a short AppendEntries is held: the node answers it (at once, or once its
 * entries are durable) and the ack goes with the answer (udp_respond), in
 * its header where the leader reads acks there: one datagram where there
 * were two. No timer is armed for a held ack (one per sleep cost a tenth of
 * the CPU at one client on a VM): the first tick at or after ACK_HOLD_NS
 * sends it, and the sender's retransmission, acked at once, is the bound.
 */
static void send_acks(struct udp *u)
{
	for (uint32_t i = 0; i < u->n_groups; i++) {
		struct udp_group *g = &u->groups[i];
		for (uint32_t k = 0; k < g->n_links; k++) {
			struct link *l = g->links[k];
			if (l->unknown_xfer && tx_slot(u)) {
				rx_ack(u, g->id, l->node, l->unknown_xfer, LCR_SNAP_ST_UNKNOWN, 0,
				       0);
				l->unknown_xfer = 0;
			}
			if (!lcr_srx_ack_due(&l->rx))
				continue;
			if (l->rx_append && lcr_srx_ack_may_wait(&l->rx)) {
				if (!l->ack_by_ns)
					l->ack_by_ns = u->now + ACK_HOLD_NS;
				continue;
			}
			if (!ack_now(u, g, l))
				return;
		}
	}
}

/* ---- the loop ------------------------------------------------------------------ */

static bool udp_poll(struct lcr_transport *t, uint64_t now_ns)
{
	struct udp *u = (struct udp *)t;

	u->now = now_ns;
	int n = lcr_be_rx(u->be, u->rx, BURST);
	for (int i = 0; i < n; i++)
		on_dgram(u, &u->rx[i]);
	if (n <= 0)
		return false;
	send_acks(u);
	snap_rx_work(u, false);
	return true;
}

static bool udp_tick(struct lcr_transport *t, uint64_t now_ns)
{
	struct udp *u = (struct udp *)t;
	bool work = false;

	u->now = now_ns;
	for (uint32_t i = 0; i < u->n_groups; i++) {
		struct udp_group *g = &u->groups[i];
		for (uint32_t k = 0; k < g->n_links; k++) {
			struct link *l = g->links[k];
			if (l->ack_by_ns && now_ns >= l->ack_by_ns) {
				/* No answer came to take the held ack along. */
				if (lcr_srx_ack_due(&l->rx))
					work |= ack_now(u, g, l);
				else
					l->ack_by_ns = 0;
			}
			work |= snap_tx_tick(u, l);
			if (lcr_stx_tick(&l->tx, now_ns) != LCR_STX_UNREACHABLE)
				continue;
			/* Nothing came back for a long time: the stream ends with
			 * UNREACHABLE (the core backs off) and starts over, and a
			 * snapshot on it with it. */
			lcr_stx_reset(&l->tx);
			if (l->snap.on)
				snap_tx_fail(u, l, LCR_NET_UNREACHABLE,
					     "no acknowledgement after tries_max transmissions");
			struct lcr_net_call c = { .op = LCR_NET_OP_STREAM_APPEND,
						  .group = g->id,
						  .target = l->node,
						  .client = l,
						  .stream_id = l->core_stream };
			lcr_net_fail(u->net, &c, LCR_NET_UNREACHABLE,
				     "no acknowledgement after tries_max transmissions");
			work = true;
		}
	}
	work |= snap_rx_work(u, true);
	return work;
}

static bool udp_flush(struct lcr_transport *t, uint64_t now_ns)
{
	struct udp *u = (struct udp *)t;

	u->now = now_ns;
	if (lcr_unlikely(u->hellos_due))
		send_hellos(u);
	for (uint32_t i = 0; i < u->n_groups; i++) {
		struct udp_group *g = &u->groups[i];
		for (uint32_t k = 0; k < g->n_links; k++) {
			struct snap_tx *x = &g->links[k]->snap;
			if (x->on && !x->last_sent && !x->fail_err)
				snap_pump(u, g->links[k]);
		}
	}
	stream_tx(u);
	return tx_flush(u) > 0;
}

static uint64_t udp_next_timer(const struct lcr_transport *t)
{
	const struct udp *u = (const struct udp *)t;
	uint64_t next = UINT64_MAX;

	if (u->tx_len > 0)
		return 0; /* the socket was full: try again at once */
	for (uint32_t i = 0; i < u->n_groups; i++) {
		const struct udp_group *g = &u->groups[i];
		for (uint32_t k = 0; k < g->n_links; k++) {
			const struct link *l = g->links[k];
			uint64_t s = lcr_stx_next_timer(&l->tx);
			if (l->snap.on && l->snap.fail_err)
				s = 0;
			else if (l->snap.on && l->snap.begun && !l->snap.done &&
				 l->snap.heard_ns + u->snap_idle_ns < s)
				s = l->snap.heard_ns + u->snap_idle_ns;
			if (s < next)
				next = s;
		}
	}
	for (uint32_t i = 0; i < u->n_srx; i++) {
		const struct snap_rx *r = &u->srx[i];
		if (!r->on)
			continue;
		/* A node that could not take bytes yet: its write completes
		 * through its own ring, which wakes the lcore; the ack clock. */
		uint64_t s = r->ack_ns + u->snap_idle_ns / 4;
		if (r->heard_ns + u->snap_idle_ns < s)
			s = r->heard_ns + u->snap_idle_ns;
		if (r->len > 0 || r->ack_due)
			s = 0;
		if (s < next)
			next = s;
	}
	return next;
}

static int udp_wait(struct lcr_transport *t, int fd, uint64_t timeout_ns)
{
	return lcr_be_wait(((struct udp *)t)->be, fd, timeout_ns);
}

/* ---- metrics and life cycle ------------------------------------------------------ */

static int udp_metrics_json(const struct lcr_transport *t, char *buf, size_t len)
{
	const struct udp *u = (const struct udp *)t;
	struct lcr_backend_stats bs;
	size_t o = 0;

	memset(&bs, 0, sizeof(bs));
	u->be->ops->stats(u->be, &bs);
	LCR_PUT("\"rx_dgrams\":%llu,\"tx_dgrams\":%llu,\"tx_errors\":%llu,\"tx_queue_full\":%llu,"
		"\"rx_errors\":%llu,\"acks_sent\":%llu,\"acks_in_answers\":%llu,"
		"\"acks_from_answers\":%llu,\"dropped\":{",
		(unsigned long long)bs.rx_dgrams, (unsigned long long)bs.tx_dgrams,
		(unsigned long long)bs.tx_errors, (unsigned long long)u->tx_full,
		(unsigned long long)bs.rx_errors, (unsigned long long)u->acks_sent,
		(unsigned long long)u->acks_in_answers, (unsigned long long)u->acks_from_answers);
	/* Cut by the kernel: larger than the receive buffer (the backend's count). */
	bool first = true;
	if (bs.rx_truncated) {
		LCR_PUT("\"truncated\":%llu", (unsigned long long)bs.rx_truncated);
		first = false;
	}
	for (uint32_t r = 1; r < LCR_DROP_MAX; r++) {
		if (!u->drops[r])
			continue;
		LCR_PUT("%s\"%s\":%llu", first ? "" : ",", lcr_wire_drop_name(r),
			(unsigned long long)u->drops[r]);
		first = false;
	}
	/* Refused by the authentication (auth.h): bad_mac, replayed, old_boot. */
	for (uint32_t r = 1; u->auth && r < LCR_AUTH_DROP_MAX; r++) {
		if (!u->arx.st.drops[r])
			continue;
		LCR_PUT("%s\"%s\":%llu", first ? "" : ",", lcr_auth_drop_name(r),
			(unsigned long long)u->arx.st.drops[r]);
		first = false;
	}
	LCR_PUT("},");
	if (u->auth) {
		const struct lcr_auth_rx_stats *as = &u->arx.st;
		LCR_PUT("\"auth\":{\"alg\":\"%s\",\"boot\":%llu,\"sealed\":%llu,"
			"\"verified\":%llu,\"derivations\":%llu,\"boot_switches\":%llu,"
			"\"senders\":%u,\"evicted\":%llu},",
			lcr_auth_alg_name(u->atx.alg), (unsigned long long)u->atx.boot,
			(unsigned long long)u->atx.counter, (unsigned long long)as->accepted,
			(unsigned long long)as->derivations, (unsigned long long)as->boot_switches,
			u->arx.n_peers, (unsigned long long)as->evicted);
	}
	/* The stream receivers of every link (its leader's AppendEntries to us),
	 * summed: how many messages came up uncopied, what was stashed. */
	struct lcr_srx_stats rx;
	memset(&rx, 0, sizeof(rx));
	for (uint32_t gi = 0; gi < u->n_groups; gi++)
		for (uint32_t li = 0; li < u->groups[gi].n_links; li++)
			lcr_srx_stats_add(&rx, &u->groups[gi].links[li]->rx.st);
	int sk = lcr_srx_stats_json(&rx, buf + o, len > o ? len - o : 0);
	if (sk < 0)
		return sk;
	o += (size_t)sk;
	const struct snap_stats *ss = &u->ss;
	LCR_PUT(",\"snapshot\":{\"sent\":%llu,\"received\":%llu,\"cancelled\":%llu,"
		"\"failed\":%llu,\"bytes_sent\":%llu,\"bytes_received\":%llu,"
		"\"chunks_sent\":%llu,\"chunks_received\":%llu,\"bad_crc\":%llu,"
		"\"timeouts\":%llu,\"busy\":%llu,\"stale_chunks\":%llu,\"protocol\":%llu,"
		"\"superseded\":%llu,\"window_waits\":%llu,\"credit_waits\":%llu}",
		(unsigned long long)ss->sent, (unsigned long long)ss->received,
		(unsigned long long)ss->cancelled, (unsigned long long)ss->failed,
		(unsigned long long)ss->bytes_sent, (unsigned long long)ss->bytes_received,
		(unsigned long long)ss->chunks_sent, (unsigned long long)ss->chunks_received,
		(unsigned long long)ss->bad_crc, (unsigned long long)ss->timeouts,
		(unsigned long long)ss->busy, (unsigned long long)ss->stale_chunks,
		(unsigned long long)ss->protocol, (unsigned long long)ss->superseded,
		(unsigned long long)ss->window_waits, (unsigned long long)ss->credit_waits);
	/* The backend's own (DPDK: frame drops, ARP, ports). */
	if (u->be->ops->metrics_json) {
		if (o < len)
			buf[o] = ',';
		int k = u->be->ops->metrics_json(u->be, buf + o + 1, len > o + 1 ? len - o - 1 : 0);
		if (k < 0)
			return k;
		if (k > 0)
			o += (size_t)k + 1;
	}
	return (int)o;
}

static int udp_client_metrics_json(const struct lcr_transport *t, void *client, char *buf,
				   size_t len)
{
	const struct link *l = client;
	size_t o = 0;
	(void)t;

	LCR_PUT("\"in_flight\":%u,\"dgrams\":%llu,\"retransmits\":%llu,\"fast_retransmits\":%llu,"
		"\"timeouts\":%llu,\"srtt_us\":%.1f,\"stream_drops\":%llu,\"core_restarts\":%llu,"
		"\"peer_restarts\":%llu,\"probes\":%llu,\"hellos\":%llu",
		lcr_stx_in_flight(&l->tx), (unsigned long long)l->tx.st.dgrams,
		(unsigned long long)l->tx.st.retransmits,
		(unsigned long long)l->tx.st.fast_retransmits,
		(unsigned long long)l->tx.st.timeouts, (double)l->tx.st.srtt_ns / 1000.0,
		(unsigned long long)l->stream_drops, (unsigned long long)l->core_restarts,
		(unsigned long long)l->tx.st.peer_restarts, (unsigned long long)l->tx.st.probes,
		(unsigned long long)l->tx.st.hellos);
	return (int)o;
}

/* ---- peers learned at run time ------------------------------------------------------ */

static int list_value(const char *list, uint32_t node, char *out, size_t out_len);
static int parse_mac(const char *s, uint8_t mac[6]);

/* AF_INET or AF_INET6 for a numeric address ("%zone" allowed after IPv6), 0 for anything
 * else (a name: resolving it could wait on DNS, which an lcore must not). */
static int numeric_family(const char *host)
{
	char buf[sizeof(((struct lcr_peer_addr *)0)->host)];
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return AF_INET;
	snprintf(buf, sizeof(buf), "%s", host);
	char *zone = strchr(buf, '%');
	if (zone)
		*zone = 0;
	return inet_pton(AF_INET6, buf, &a6) == 1 ? AF_INET6 : 0;
}

/* DPDK: the port that reaches bp->node (its route, into `route`) and its static MAC, if the
 * config names them, as open_dpdk reads them for the configured peers. */
static int dpdk_route(const struct lcr_udp_dpdk *d, struct lcr_be_peer *bp, char route[64],
		      uint8_t mac[6], char *why, size_t why_len)
{
	char text[32];

	if (list_value(d->routes, bp->node, route, 64) < 0) {
		snprintf(why, why_len, "dpdk: routes \"%.200s\": expected node=port,...",
			 d->routes);
		return -EINVAL;
	}
	bp->route = route;
	int rc = list_value(d->neighbours, bp->node, text, sizeof(text));
	if (rc < 0 || (rc > 0 && parse_mac(text, mac) < 0)) {
		snprintf(why, why_len,
			 "dpdk: neighbours \"%.200s\": expected node=aa:bb:cc:dd:ee:ff,...",
			 d->neighbours);
		return -EINVAL;
	}
	bp->mac = rc > 0 ? mac : NULL;
	return 0;
}

/*
 * set_peer (net.h): node p->id's lcore `u->lcore` listens on p->port + lcore.
 * Numeric addresses only. The datagrams of this lcore were sized at open:
 * an IPv6 peer needs room for 48 bytes of headers, which only an lcore on
 * an IPv6 socket leaves (udp_open); an IPv4 socket could not reach it
 * anyway. Over DPDK: IPv4, routed by the config's routes and neighbours,
 * the MAC found by ARP; with memif (a port per peer, made when EAL came up)
 * no new peer can be reached.
 */
static int udp_set_peer(struct lcr_transport *t, const struct lcr_peer_addr *p, char *why,
			size_t why_len)
{
	struct udp *u = (struct udp *)t;
	const struct lcr_udp_dpdk *d = &u->cfg->dpdk;
	char hp[LCR_PEER_ADDR_TEXT_MAX];

	LCR_ASSERT(p->id != 0 && p->id != u->self);
	lcr_peer_addr_format(p, hp, sizeof(hp));
	if (d->enable && d->memif_dir && d->memif_dir[0]) {
		snprintf(why, why_len,
			 "udp: node %u at %s cannot be learned at run time: DPDK memif has a port "
			 "per peer, made when EAL came up (memif_dir); list the node among the "
			 "configured peers, or route by IP (af_packet, af_xdp)",
			 p->id, hp);
		return -ENOTSUP;
	}
	if (!u->be->ops->set_peer) {
		snprintf(why, why_len,
			 "udp: node %u at %s: this backend keeps the peers it opened with", p->id,
			 hp);
		return -ENOTSUP;
	}
	if ((uint32_t)p->port + u->lcore > 65535) {
		snprintf(why, why_len,
			 "udp: node %u at %s: lcore %u would be at port %u, past 65535", p->id, hp,
			 u->lcore, (uint32_t)p->port + u->lcore);
		return -EINVAL;
	}
	int family = numeric_family(p->host);
	if (family == 0) {
		snprintf(why, why_len,
			 "udp: node %u at %s: \"%s\" is not an IPv4 or IPv6 address; a node "
			 "learned at run time needs an address, not a name (resolving one would "
			 "block the lcore)",
			 p->id, hp, p->host);
		return -EINVAL;
	}
	if (family == AF_INET6 && d->enable) {
		snprintf(why, why_len,
			 "udp: node %u at %s: the DPDK path takes IPv4 addresses only", p->id, hp);
		return -EINVAL;
	}
	if (family == AF_INET6 && u->headers < 48) {
		snprintf(why, why_len,
			 "udp: node %u at %s: an IPv6 peer, but this lcore was opened for IPv4 "
			 "(bound to %s): its datagrams leave no room for IPv6 headers; bind "
			 "the node to an IPv6 address (\"::\") to reach IPv6 peers",
			 p->id, hp, u->cfg->bind_host ? u->cfg->bind_host : "0.0.0.0");
		return -EINVAL;
	}
	struct lcr_be_peer bp = { .node = p->id,
				  .host = p->host,
				  .port = (uint16_t)(p->port + u->lcore) };
	char route[64] = "";
	uint8_t mac[6];
	int rc;
	if (d->enable && (rc = dpdk_route(d, &bp, route, mac, why, why_len)) < 0)
		return rc;
	return u->be->ops->set_peer(u->be, &bp, why, why_len);
}

/*
 * forget_peer (net.h): the backend forgets the address, so what comes from
 * it is a stranger's (LCR_DROP_SENDER) and what is still queued for the node
 * is lost there (the backend's tx_errors). Links left to it cope as with a
 * silent peer: their streams report UNREACHABLE after tries_max.
 */
static int udp_forget_peer(struct lcr_transport *t, uint32_t id)
{
	struct udp *u = (struct udp *)t;

	LCR_ASSERT(id != 0 && id != u->self);
	if (!u->be->ops->forget_peer)
		return -ENOTSUP;
	return u->be->ops->forget_peer(u->be, id);
}

static void udp_close(struct lcr_transport *t)
{
	struct udp *u = (struct udp *)t;

	/* Clients are dropped first (lcr_net_close); free any left over. A
	 * group whose first client failed to open has none. */
	while (u->n_groups > 0) {
		struct udp_group *g = &u->groups[u->n_groups - 1];
		if (g->n_links == 0) {
			u->n_groups--;
			continue;
		}
		udp_drop_client(t, g->links[g->n_links - 1]);
	}
	if (u->be)
		u->be->ops->close(u->be);
	for (uint32_t i = 0; u->srx && i < u->n_srx; i++)
		lcr_allocator_free(&u->alloc, u->srx[i].buf);
	lcr_allocator_free(&u->alloc, u->srx);
	lcr_allocator_free(&u->alloc, u->txmem);
	lcr_allocator_free(&u->alloc, u->msgbuf);
	lcr_allocator_free(&u->alloc, u->ents);
	/* The session keys (the cluster key's copy with them). */
	lcr_auth_tx_wipe(&u->atx);
	lcr_auth_rx_free(&u->arx);
	lcr_allocator_free_aligned(&u->alloc, u);
}

static const struct lcr_net_ops udp_ops = {
	.name = "udp",
	.new_client = udp_new_client,
	.drop_client = udp_drop_client,
	.set_peer = udp_set_peer,
	.forget_peer = udp_forget_peer,
	.append_entries = udp_stream_append,
	.stream_append = udp_stream_append,
	.stream_room = udp_stream_room,
	.vote = udp_vote,
	.pre_vote = udp_vote,
	.transfer_leader = udp_transfer,
	.read_index = udp_read_index,
	.full_snapshot = udp_full_snapshot,
	.cancel_snapshot = udp_cancel_snapshot,
	.respond = udp_respond,
	.poll = udp_poll,
	.tick = udp_tick,
	.flush = udp_flush,
	.next_timer = udp_next_timer,
	.wait = udp_wait,
	.metrics_json = udp_metrics_json,
	.client_metrics_json = udp_client_metrics_json,
	.close = udp_close,
};

void lcr_udp_config_default(struct lcr_udp_config *c)
{
	memset(c, 0, sizeof(*c));
	c->bind_host = "0.0.0.0";
	c->mtu = 1500;
}

static const struct lcr_peer_addr *peer_addr(const struct lcr_net_env *env, uint32_t id)
{
	for (uint32_t i = 0; i < env->n_peers; i++)
		if (env->peers[i].id == id)
			return &env->peers[i];
	return NULL;
}

/* The socket of this lcore, and the fault decorator around it if asked for. */
/* An IPv4 literal (DPDK resolves no names), host order. */
static int ipv4_of(const char *host, uint32_t node, uint32_t *ip, char *why, size_t why_len)
{
	struct in_addr a;
	if (inet_pton(AF_INET, host, &a) != 1) {
		snprintf(why, why_len,
			 "dpdk: node %u's address \"%s\" is not an IPv4 address (the DPDK path "
			 "takes IPv4 literals)",
			 node, host);
		return -EINVAL;
	}
	*ip = ntohl(a.s_addr);
	return 0;
}

/* Find "node=value" for `node` in a comma-separated list; copy the value. */
static int list_value(const char *list, uint32_t node, char *out, size_t out_len)
{
	for (const char *p = list; p && *p;) {
		char *end;
		unsigned long id = strtoul(p, &end, 10);
		if (end == p || *end != '=')
			return -EINVAL;
		const char *v = end + 1, *stop = strchr(v, ',');
		size_t n = stop ? (size_t)(stop - v) : strlen(v);
		if (id == node) {
			if (n >= out_len)
				return -EINVAL;
			memcpy(out, v, n);
			out[n] = 0;
			return 1;
		}
		p = stop ? stop + 1 : NULL;
	}
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned m[6];
	char tail;
	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (m[i] > 255)
			return -EINVAL;
		mac[i] = (uint8_t)m[i];
	}
	return 0;
}

/* EAL arguments with a memif port to every peer (lcr_dpdk_memif_eal). */
static int memif_eal(struct udp *u, const struct lcr_udp_dpdk *d, const struct lcr_net_env *env,
		     char *why, size_t why_len)
{
	uint32_t nodes[LCR_PEERS_MAX];
	for (uint32_t i = 0; i < env->n_peers; i++)
		nodes[i] = env->peers[i].id;
	if (lcr_dpdk_memif_eal(u->eal, sizeof(u->eal), d->eal, d->memif_dir, env->self, nodes,
			       env->n_peers) < 0) {
		snprintf(why, why_len,
			 "dpdk: the EAL arguments with the memif ports are longer than %zu bytes",
			 sizeof(u->eal) - 1);
		return -EINVAL;
	}
	return 0;
}

/* The DPDK backend of this lcore: addresses from the environment, the
 * routes and static neighbours from the config. */
static int open_dpdk(struct udp *u, const struct lcr_udp_config *c, const struct lcr_net_env *env,
		     char *why, size_t why_len)
{
	const struct lcr_udp_dpdk *d = &c->dpdk;
	struct lcr_dpdk_opts o;
	int rc;

	lcr_dpdk_opts_default(&o);
	const struct lcr_peer_addr *me = peer_addr(env, env->self);
	if ((rc = ipv4_of(me->host, me->id, &o.ip, why, why_len)) < 0)
		return rc;
	o.eal = d->eal;
	if (d->memif_dir && d->memif_dir[0]) {
		if ((rc = memif_eal(u, d, env, why, why_len)) < 0)
			return rc;
		o.eal = u->eal;
	}
	o.lcore = env->lcore;
	o.n_lcores = env->n_lcores;
	o.port = me->port;
	o.dgram_max = u->slot_bytes;
	o.busy_poll = c->busy_poll;
	o.alloc = u->alloc;
	if (d->rx_desc)
		o.rx_desc = d->rx_desc;
	if (d->tx_desc)
		o.tx_desc = d->tx_desc;
	for (uint32_t i = 0; i < env->n_peers; i++) {
		const struct lcr_peer_addr *pa = &env->peers[i];
		if (pa->id == env->self)
			continue;
		if (o.n_peers == LCR_DPDK_PEERS_MAX) {
			snprintf(why, why_len, "dpdk: more than %d peers", LCR_DPDK_PEERS_MAX);
			return -EINVAL;
		}
		struct lcr_dpdk_peer *p = &o.peers[o.n_peers++];
		p->node = pa->id;
		p->port = pa->port;
		if ((rc = ipv4_of(pa->host, pa->id, &p->ip, why, why_len)) < 0)
			return rc;
		if (d->memif_dir && d->memif_dir[0])
			snprintf(p->eth_port, sizeof(p->eth_port), "net_memif%u", pa->id);
		else if (list_value(d->routes, pa->id, p->eth_port, sizeof(p->eth_port)) < 0) {
			snprintf(why, why_len, "dpdk: routes \"%.200s\": expected node=port,...",
				 d->routes);
			return -EINVAL;
		}
		char mac[32];
		rc = list_value(d->neighbours, pa->id, mac, sizeof(mac));
		if (rc < 0 || (rc > 0 && parse_mac(mac, p->mac) < 0)) {
			snprintf(why, why_len,
				 "dpdk: neighbours \"%.200s\": expected node=aa:bb:cc:dd:ee:ff,...",
				 d->neighbours);
			return -EINVAL;
		}
		p->has_mac = rc > 0;
	}
	return lcr_dpdk_open(&u->be, &o, why, (unsigned)why_len);
}

static int open_backend(struct udp *u, const struct lcr_udp_config *c,
			const struct lcr_net_env *env, char *why, size_t why_len)
{
	struct lcr_sock_opts so;
	int rc;

	if (c->dpdk.enable) {
		if ((rc = open_dpdk(u, c, env, why, why_len)) < 0)
			return rc;
		goto faults;
	}
	lcr_sock_opts_default(&so);
	const struct lcr_peer_addr *me = peer_addr(env, env->self);
	so.bind_host = c->bind_host ? c->bind_host : "0.0.0.0";
	so.bind_port = (uint16_t)(me->port + env->lcore);
	so.busy_poll = c->busy_poll;
	so.dgram_max = LCR_WIRE_DGRAM_MAX;
	so.rcvbuf = 8u << 20;
	so.sndbuf = 8u << 20;
	so.alloc = u->alloc;
	for (uint32_t i = 0; i < env->n_peers && so.n_peers < LCR_SOCK_PEERS_MAX; i++) {
		const struct lcr_peer_addr *pa = &env->peers[i];
		if (pa->id == env->self)
			continue;
		struct lcr_sock_peer *p = &so.peers[so.n_peers++];
		p->node = pa->id;
		snprintf(p->host, sizeof(p->host), "%s", pa->host);
		p->port = (uint16_t)(pa->port + env->lcore);
	}
	if ((rc = lcr_sock_open(&u->be, &so, why, (unsigned)why_len)) < 0)
		return rc;
faults:
	if (!c->fault_loss_ppm && !c->fault_dup_ppm && !c->fault_reorder_ppm &&
	    !c->fault_delay_ns && !c->fault_jitter_ns)
		return 0;
	struct lcr_faulty_opts fo;
	memset(&fo, 0, sizeof(fo));
	fo.seed = c->fault_seed + env->lcore;
	fo.loss_ppm = c->fault_loss_ppm;
	fo.dup_ppm = c->fault_dup_ppm;
	fo.reorder_ppm = c->fault_reorder_ppm;
	fo.delay_ns = c->fault_delay_ns;
	fo.jitter_ns = c->fault_jitter_ns;
	fo.hold_max = 4096;
	fo.alloc = u->alloc;
	struct lcr_backend *f;
	if ((rc = lcr_faulty_open(&f, u->be, &fo)) < 0) {
		snprintf(why, why_len, "fault injection: %s", strerror(-rc));
		return rc;
	}
	u->be = f;
	fprintf(stderr,
		"lcraft: lcore %u: injecting faults on send (loss %u ppm, dup %u ppm, "
		"reorder %u ppm, delay %llu us)\n",
		env->lcore, fo.loss_ppm, fo.dup_ppm, fo.reorder_ppm,
		(unsigned long long)(fo.delay_ns / 1000));
	return 0;
}

/*
 * With a key: this lcore's sender context (channel: the lcore; lcore i of a
 * node talks to lcore i of its peers only, so the receiver knows it) and its
 * receiver context. Last in the open, so that a failed open leaves its boot
 * unused.
 */
static int auth_open(struct udp *u, const struct lcr_udp_config *c, const struct lcr_net_env *env,
		     char *why, size_t why_len)
{
	struct lcr_auth_key k = { .alg = c->auth_alg, .cluster = env->cluster };
	int rc;

	memcpy(k.key, c->auth_key, LCR_AUTH_KEY_BYTES);
	rc = lcr_auth_tx_init(&u->atx, &k, env->self, c->auth_boot, env->lcore);
	if (rc == -EALREADY)
		snprintf(why, why_len,
			 "auth: node %u, lcore %u: boot %llu (or a later one) was used already by "
			 "this process: its counters would start again under the same key; every "
			 "start of a node needs a larger boot",
			 env->self, env->lcore, (unsigned long long)c->auth_boot);
	else if (rc < 0)
		snprintf(why, why_len, "auth: the sender's session key: %s", strerror(-rc));
	else if ((rc = lcr_auth_rx_init(&u->arx, &k, env->lcore, AUTH_SENDERS_MAX, &u->alloc)) < 0)
		snprintf(why, why_len, "auth: lcore %u: the senders' state: %s", env->lcore,
			 strerror(-rc));
	lcr_auth_wipe(&k, sizeof(k));
	u->auth = rc == 0;
	return rc;
}

static int udp_open(void *ctx, const struct lcr_net_env *env, struct lcr_transport **out, char *why,
		    size_t why_len)
{
	const struct lcr_udp_config *c = ctx;
	int rc;

	LCR_ASSERT(c != NULL);

	if (c->mtu < 576 || c->mtu > LCR_WIRE_DGRAM_MAX + 28) {
		snprintf(why, why_len, "mtu (%u) must be in 576..%u", c->mtu,
			 LCR_WIRE_DGRAM_MAX + 28);
		return -EINVAL;
	}
	if (!peer_addr(env, env->self)) {
		snprintf(why, why_len, "node id %u is not among the %u peers", env->self,
			 env->n_peers);
		return -EINVAL;
	}
	if (c->auth_key && (rc = lcr_auth_usable(c->auth_alg, why, why_len)) < 0)
		return rc;
	if (c->auth_key && c->auth_boot == 0) {
		snprintf(why, why_len,
			 "auth: a key needs the node's boot (auth_boot >= 1, larger with every "
			 "start)");
		return -EINVAL;
	}
	/* Cache-line aligned: the lcore's loop reads it every iteration. */
	struct udp *u = lcr_allocator_aligned(&env->alloc, sizeof(*u), LCR_CACHE_LINE);
	if (!u)
		return -ENOMEM;
	u->base.ops = &udp_ops;
	u->net = env->net;
	u->alloc = env->alloc;
	u->self = env->self;
	u->cluster = env->cluster;
	u->hellos_due = false;
	/* Names this start in our hellos: any value new with each start will
	 * do (not a secret), never 0. */
	if (getrandom(&u->boot, sizeof(u->boot), GRND_NONBLOCK) != (ssize_t)sizeof(u->boot)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		u->boot = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
			  (uint64_t)(uintptr_t)u;
	}
	u->boot |= 1;
	lcr_stream_opts_default(&u->sopts);
	/* The IP and UDP headers: 28 bytes over IPv4, 48 over IPv6 (any peer
	 * with an IPv6 address makes the whole lcore use the smaller size). A
	 * socket bound to an IPv6 address may learn IPv6 peers at run time
	 * (set_peer), so it leaves room for their headers from the start: a
	 * datagram's size is fixed when its stream is made. An IPv4 socket
	 * cannot reach IPv6 peers; udp_set_peer refuses them. */
	uint32_t headers = 28;
	for (uint32_t i = 0; i < env->n_peers; i++)
		if (strchr(env->peers[i].host, ':'))
			headers = 48;
	if (!c->dpdk.enable && c->bind_host && strchr(c->bind_host, ':'))
		headers = 48;
	u->cfg = c;
	u->lcore = env->lcore;
	u->headers = headers;
	/* With a key every datagram carries a trailer: what the streams, the
	 * single messages and the snapshot chunks are cut for is that much
	 * smaller; a transmit slot (and a DPDK mbuf) holds the whole. */
	u->trailer = c->auth_key ? LCR_AUTH_TRAILER : 0;
	u->sopts.dgram_max = c->mtu - headers - u->trailer;
	u->slot_bytes = u->sopts.dgram_max + u->trailer;
	/* A 1 MiB entry must fit one stream window. */
	uint32_t per = u->sopts.dgram_max - LCR_WIRE_HDR;
	uint32_t need = (LCR_WIRE_MSG_MAX + per - 1) / per + 16;
	if (u->sopts.window < need)
		u->sopts.window = need;
	u->txmem = lcr_allocator_zalloc(&u->alloc, (size_t)TXQ_MAX * u->slot_bytes);
	u->msgbuf = lcr_allocator_zalloc(&u->alloc, LCR_WIRE_MSG_MAX);
	struct lcr_append_req none = { .n_entries = 0 };
	u->append_fixed = lcr_wire_append_size(&none);
	u->ents = lcr_allocator_zalloc(&u->alloc, sizeof(*u->ents) * ENTS_MAX);
	u->snap_size_max = c->snapshot_size_max ? c->snapshot_size_max : 64ull << 30;
	u->snap_idle_ns = (c->snapshot_idle_ms ? c->snapshot_idle_ms : 5000) * 1000000ull;
	if (u->snap_size_max > LCR_WIRE_SNAP_SIZE_MAX)
		u->snap_size_max = LCR_WIRE_SNAP_SIZE_MAX;
	u->n_srx = c->snapshot_rx_max ? c->snapshot_rx_max : 2;
	u->srx = lcr_allocator_zalloc(&u->alloc, sizeof(*u->srx) * u->n_srx);
	for (uint32_t i = 0; u->srx && i < u->n_srx; i++)
		if (!(u->srx[i].buf = lcr_allocator_alloc(&u->alloc, LCR_UDP_SNAP_BUF)))
			u->txmem = NULL; /* reported below; close frees what there is */
	if (!u->txmem || !u->msgbuf || !u->ents || !u->srx) {
		snprintf(why, why_len, "lcore %u: out of memory", env->lcore);
		rc = -ENOMEM;
		goto err_close;
	}
	if ((rc = open_backend(u, c, env, why, why_len)) < 0)
		goto err_close;
	if (c->auth_key && (rc = auth_open(u, c, env, why, why_len)) < 0)
		goto err_close;
	*out = &u->base;
	return 0;
err_close:
	udp_close(&u->base);
	return rc;
}

void lcr_udp_factory(struct lcr_net_factory *f, const struct lcr_udp_config *cfg)
{
	f->name = "udp";
	f->open = udp_open;
	f->ctx = (void *)cfg;
}
