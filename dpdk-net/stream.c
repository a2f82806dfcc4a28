/* SPDX-License-Identifier: MIT */
/* Pipelined streams over datagrams (see stream.h). */
#include <errno.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "lcr_assert.h"
#include "put.h"
#include "stream.h"
#include "types.h"

/* How long fresh acks below what was acknowledged before must keep coming,
 * with no other ack between, before the receiver counts as restarted (an
 * old ack of its stream's first moments can arrive late, even twice). */
#define STX_REGRESSED_NS (200ull * 1000 * 1000)

/* Per ack, the loss rules queue at most this many retransmissions. */
#define STX_LOSS_BURST 64u

void lcr_stream_opts_default(struct lcr_stream_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->window = 1024;
	o->dgram_max = 1472;
	o->rto_init_ns = 50ull * 1000 * 1000;
	o->rto_min_ns = 2ull * 1000 * 1000;
	/* Well under an election timeout (150 ms at least): a follower that
	 * comes back after a while away (restarted) is reached by the next
	 * retransmission before it times out and stands with a stale log. A
	 * peer that stays away costs one datagram per 100 ms. */
	o->rto_max_ns = 100ull * 1000 * 1000;
	o->tries_max = 8;
}

/* Milliseconds since 2020-01-01 by the wall clock: the top 40 bits of stream ids. */
static uint64_t stream_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	return ms > 1577836800000ull ? ms - 1577836800000ull : 0;
}

uint64_t lcr_stream_id_max(void)
{
	return ((stream_ms() + LCR_STREAM_AHEAD_MS) << 24) | 0xffffffull;
}

uint64_t lcr_stream_new_id(void)
{
	/* Shared by the lcores of the process: monotonic under a CAS. */
	static _Atomic uint64_t last;

	/* Later streams of this sender, even after a restart, get larger ids. */
	uint64_t id = stream_ms() << 24, prev = atomic_load_explicit(&last, memory_order_relaxed);
	for (;;) {
		uint64_t want = id > prev ? id : prev + 1;
		if (atomic_compare_exchange_weak_explicit(&last, &prev, want, memory_order_relaxed,
							  memory_order_relaxed))
			return want;
	}
}

static uint32_t frag_payload(const struct lcr_stream_opts *o)
{
	return o->dgram_max - LCR_WIRE_HDR;
}

/* Options both sides take: a window of at least 16, datagrams that carry at
 * least 64 payload bytes (frag_payload cannot wrap) and fit the wire. */
static bool opts_ok(const struct lcr_stream_opts *o)
{
	return o->window >= 16 && o->dgram_max >= LCR_WIRE_HDR + 64 &&
	       o->dgram_max <= LCR_WIRE_DGRAM_MAX;
}

/* ---- sender ----------------------------------------------------------------- */

int lcr_stx_init(struct lcr_stx *s, const struct lcr_stream_opts *o, uint64_t cluster,
		 uint32_t group, uint32_t self, uint32_t peer)
{
	memset(s, 0, sizeof(*s));
	if (!opts_ok(o))
		return -EINVAL;
	s->o = *o;
	s->cluster = cluster;
	s->group = group;
	s->self = self;
	s->peer = peer;
	s->slots = lcr_allocator_zalloc(&o->alloc, o->window * sizeof(*s->slots));
	s->mem = lcr_allocator_alloc(&o->alloc, (size_t)o->window * o->dgram_max);
	s->txq = lcr_allocator_zalloc(&o->alloc, o->window * sizeof(*s->txq));
	if (!s->slots || !s->mem || !s->txq) {
		lcr_stx_free(s);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < o->window; i++)
		s->slots[i].data = s->mem + (size_t)i * o->dgram_max;
	lcr_stx_reset(s);
	return 0;
}

void lcr_stx_free(struct lcr_stx *s)
{
	lcr_allocator_free(&s->o.alloc, s->slots);
	lcr_allocator_free(&s->o.alloc, s->mem);
	lcr_allocator_free(&s->o.alloc, s->txq);
	s->slots = NULL;
	s->mem = NULL;
	s->txq = NULL;
}

void lcr_stx_reset(struct lcr_stx *s)
{
	s->stream = lcr_stream_new_id();
	s->next_seq = 1;
	s->next_tx = 1;
	s->acked = 0;
	s->peer_window = s->o.window;
	s->txq_head = 0;
	s->txq_len = 0;
	for (uint32_t i = 0; i < s->o.window; i++) {
		s->slots[i].seq = 0;
		s->slots[i].queued = false;
		s->slots[i].sacked = false;
	}
	s->rtt_valid = false;
	s->recover_until = 0;
	s->regressed_since_ns = 0;
	s->rto_ns = s->o.rto_init_ns;
}

uint32_t lcr_stx_in_flight(const struct lcr_stx *s)
{
	return (uint32_t)(s->next_seq - 1 - s->acked);
}

uint32_t lcr_stx_room(const struct lcr_stx *s)
{
	uint32_t used = lcr_stx_in_flight(s);

	LCR_ASSERT(used <= s->o.window);
	return (s->o.window - used) * frag_payload(&s->o);
}

static struct lcr_stx_slot *slot_of(struct lcr_stx *s, uint64_t seq)
{
	return &s->slots[seq % s->o.window];
}

static void queue_tx(struct lcr_stx *s, uint64_t seq)
{
	struct lcr_stx_slot *sl = slot_of(s, seq);
	if (sl->queued || sl->seq != seq || sl->tries == 0)
		return;
	LCR_ASSERT(s->txq_len < s->o.window);
	s->txq[(s->txq_head + s->txq_len) % s->o.window] = seq;
	s->txq_len++;
	sl->queued = true;
}

int lcr_stx_send(struct lcr_stx *s, uint8_t type, const void *payload, uint32_t len, uint64_t now)
{
	uint32_t per = frag_payload(&s->o);
	uint32_t count = len == 0 ? 1 : (len + per - 1) / per;
	(void)now;

	if (count > 0xffff || len > LCR_WIRE_MSG_MAX)
		return -EMSGSIZE;
	if (lcr_stx_in_flight(s) + count > s->o.window) {
		s->st.dropped_full++;
		return -ENOBUFS;
	}
	const uint8_t *p = payload;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t seq = s->next_seq++;
		struct lcr_stx_slot *sl = slot_of(s, seq);
		uint32_t n = i + 1 < count ? per : len - i * per;
		struct lcr_wire_hdr h = { .type = type,
					  .cluster = s->cluster,
					  .group = s->group,
					  .from = s->self,
					  .to = s->peer,
					  .len = n,
					  .stream = s->stream,
					  .seq = seq,
					  .frag_index = (uint16_t)i,
					  .frag_count = (uint16_t)count };
		if (n)
			memcpy(sl->data + LCR_WIRE_HDR, p + (size_t)i * per, n);
		sl->len = (uint32_t)lcr_wire_seal(sl->data, &h);
		sl->seq = seq;
		sl->tries = 0;
		sl->sacked = false;
		sl->queued = false;
		sl->sent_ns = 0;
	}
	s->st.msgs++;
	return 0;
}

bool lcr_stx_next(struct lcr_stx *s, uint64_t now, struct lcr_dgram_view *d)
{
	struct lcr_stx_slot *sl = NULL;

	/* Retransmissions first: a hole holds up everything behind it. */
	while (s->txq_len > 0) {
		uint64_t seq = s->txq[s->txq_head];
		s->txq_head = (s->txq_head + 1) % s->o.window;
		s->txq_len--;
		struct lcr_stx_slot *q = slot_of(s, seq);
		q->queued = false;
		if (q->seq == seq && seq > s->acked && !q->sacked) {
			sl = q;
			break;
		}
		/* acknowledged meanwhile */
	}
	if (sl) {
		/* Mark it, so the receiver's RTT is not mistaken (Karn). */
		struct lcr_wire_hdr h;
		if (lcr_wire_open(sl->data, sl->len, s->cluster, &h) == LCR_DROP_NONE &&
		    !(h.flags & LCR_WIRE_F_RETRANSMIT)) {
			h.flags |= LCR_WIRE_F_RETRANSMIT;
			lcr_wire_seal(sl->data, &h);
		}
		s->st.retransmits++;
	} else {
		/* New datagrams, in order, within what the receiver can hold. */
		if (s->next_tx >= s->next_seq || s->next_tx > s->acked + s->peer_window)
			return false;
		sl = slot_of(s, s->next_tx++);
	}
	sl->tries++;
	sl->sent_ns = now;
	s->st.dgrams++;
	d->buf = sl->data;
	d->len = sl->len;
	return true;
}

/* RFC 6298's RTO from the current estimates, clamped, not backed off. */
static uint64_t rto_estimate(const struct lcr_stx *s)
{
	uint64_t rto = s->rtt_valid ? s->srtt_ns + 4 * s->rttvar_ns : s->o.rto_init_ns;
	if (rto < s->o.rto_min_ns)
		rto = s->o.rto_min_ns;
	if (rto > s->o.rto_max_ns)
		rto = s->o.rto_max_ns;
	return rto;
}

static void rtt_sample(struct lcr_stx *s, uint64_t r)
{
	/* RFC 6298: SRTT, RTTVAR, RTO = SRTT + 4 RTTVAR, clamped. */
	if (!s->rtt_valid) {
		s->srtt_ns = r;
		s->rttvar_ns = r / 2;
		s->rtt_valid = true;
	} else {
		uint64_t diff = s->srtt_ns > r ? s->srtt_ns - r : r - s->srtt_ns;
		s->rttvar_ns = (3 * s->rttvar_ns + diff) / 4;
		s->srtt_ns = (7 * s->srtt_ns + r) / 8;
	}
	uint64_t rto = rto_estimate(s);
	s->rto_ns = rto;
	s->st.srtt_ns = s->srtt_ns;
	s->st.rto_ns = rto;
}

void lcr_stx_on_ack(struct lcr_stx *s, const struct lcr_wire_ack *a, uint64_t now)
{
	if (a->stream != s->stream || a->cum >= s->next_seq)
		return; /* another stream's, or acknowledging what we never sent */
	s->heard_ns = now;
	if (a->cum < s->acked) {
		/*
		 * Less than it acknowledged before: an old ack overtaken by a
		 * newer one (ignored), or, when the receiver says it has
		 * delivered nothing on this stream yet, a receiver that
		 * restarted and joined it early, waiting for datagrams its
		 * previous life acknowledged, which we no longer hold: it would
		 * wait for ever. Then a new stream, which it takes from its
		 * start (the messages lost with the old one are the Raft
		 * layer's to send again, as after any loss).
		 */
		if (!(a->flags & LCR_WIRE_ACK_FRESH))
			return;
		if (s->regressed_since_ns == 0) {
			s->regressed_since_ns = now ? now : 1;
		} else if (now - s->regressed_since_ns >= STX_REGRESSED_NS) {
			s->st.peer_restarts++;
			lcr_stx_reset(s);
		}
		return;
	}
	s->regressed_since_ns = 0;
	s->peer_window = a->window < 16 ? 16 : a->window > s->o.window ? s->o.window : a->window;
	uint64_t wait = s->rtt_valid ? s->srtt_ns : s->o.rto_min_ns;
	/* The latest transmission this ack shows delivered (RACK, RFC 8985):
	 * a datagram sent a while before it and still missing is lost. For a
	 * retransmitted one, its last try's time (its earlier try may be what
	 * arrived: at worst a few datagrams are sent again for nothing). */
	uint64_t rack = 0;
	bool sample = false;
	while (s->acked < a->cum) {
		struct lcr_stx_slot *sl = slot_of(s, ++s->acked);
		if (sl->seq != s->acked)
			continue;
		if (sl->tries == 1 && !sample) {
			rtt_sample(s, now - sl->sent_ns);
			sample = true;
		}
		if (sl->sent_ns > rack)
			rack = sl->sent_ns;
	}
	/* Selective acks: mark, and retransmit the holes below the highest one
	 * that have been out for about a round trip (a loss, not a reorder). */
	uint64_t highest = 0;
	for (uint32_t i = 0; i < 64; i++) {
		if (!(a->sack & (1ull << i)))
			continue;
		uint64_t seq = a->cum + 2 + i;
		if (seq >= s->next_seq)
			break;
		struct lcr_stx_slot *sl = slot_of(s, seq);
		if (sl->seq == seq && !sl->sacked) {
			sl->sacked = true;
			if (sl->sent_ns > rack)
				rack = sl->sent_ns;
		}
		highest = seq;
	}
	/*
	 * Lost: below the highest selective ack and out for a round trip; or,
	 * in the recovery after a timeout and within what the selective acks
	 * cover, sent a retransmission timeout (not backed off: the delay
	 * allowed) before the latest delivered transmission. When a timeout's
	 * retransmission comes back, the second rule resends the next 64 of a
	 * run the receiver dropped (a full socket buffer drops runs longer
	 * than the selective acks cover) each round trip, instead of one
	 * datagram per timeout. Beyond the selective acks, or outside a
	 * recovery, it would take datagrams still in flight for lost.
	 */
	bool recovering = s->acked < s->recover_until;
	uint64_t reo = rto_estimate(s);
	uint64_t end = recovering ? a->cum + 2 + 64 : highest + 1;
	if (end > s->next_tx)
		end = s->next_tx;
	if (highest + 1 > end)
		end = highest + 1;
	uint32_t fast = 0;
	for (uint64_t seq = s->acked + 1; seq < end && fast < STX_LOSS_BURST; seq++) {
		struct lcr_stx_slot *sl = slot_of(s, seq);
		if (sl->seq != seq || sl->sacked || sl->queued || sl->tries == 0)
			continue;
		if ((seq < highest && now >= sl->sent_ns + wait) ||
		    (recovering && sl->sent_ns + reo <= rack)) {
			queue_tx(s, seq);
			s->st.fast_retransmits++;
			fast++;
		}
	}
}

int lcr_stx_tick(struct lcr_stx *s, uint64_t now)
{
	uint64_t seq = s->acked + 1;

	if (seq >= s->next_seq)
		return LCR_STX_OK;
	struct lcr_stx_slot *sl = slot_of(s, seq);
	if (sl->seq != seq || sl->tries == 0 || sl->queued || now < sl->sent_ns + s->rto_ns)
		return LCR_STX_OK;
	if (sl->tries >= s->o.tries_max) {
		s->st.unreachable++;
		return LCR_STX_UNREACHABLE;
	}
	/* The oldest one timed out: resend it, back off (RFC 6298 5.5); what
	 * was sent so far is in recovery (lcr_stx_on_ack). */
	s->st.timeouts++;
	s->recover_until = s->next_tx - 1;
	s->rto_ns = s->rto_ns * 2 > s->o.rto_max_ns ? s->o.rto_max_ns : s->rto_ns * 2;
	queue_tx(s, seq);
	return LCR_STX_OK;
}

bool lcr_stx_probe(struct lcr_stx *s, uint64_t now)
{
	uint64_t seq = s->acked + 1;

	if (seq >= s->next_tx)
		return false;
	struct lcr_stx_slot *sl = slot_of(s, seq);
	/* Not overdue by the estimate (not backed off), or already going
	 * again, or at its last try (the timer reports the peer). */
	if (sl->seq != seq || sl->tries == 0 || sl->queued || sl->sacked ||
	    now < sl->sent_ns + rto_estimate(s) || (uint32_t)sl->tries + 1 >= s->o.tries_max)
		return false;
	queue_tx(s, seq);
	s->st.probes++;
	return true;
}

void lcr_stx_hello(struct lcr_stx *s, uint64_t joined, uint64_t now)
{
	uint64_t seq = s->acked + 1;
	(void)now;

	if (joined == s->stream || seq >= s->next_tx)
		return; /* it receives this stream, or lacks nothing sent */
	s->st.hellos++;
	if (s->acked > 0) {
		s->st.peer_restarts++;
		lcr_stx_reset(s);
		return;
	}
	struct lcr_stx_slot *sl = slot_of(s, seq);
	if (sl->seq == seq && sl->tries > 0 && !sl->queued && !sl->sacked)
		queue_tx(s, seq);
}

uint64_t lcr_stx_next_timer(const struct lcr_stx *s)
{
	uint64_t seq = s->acked + 1;
	if (seq >= s->next_seq)
		return UINT64_MAX;
	const struct lcr_stx_slot *sl = &s->slots[seq % s->o.window];
	if (sl->tries == 0)
		return UINT64_MAX; /* not sent yet: the transmit queue drives it */
	return sl->sent_ns + s->rto_ns;
}

/* ---- receiver --------------------------------------------------------------- */

int lcr_srx_init(struct lcr_srx *r, const struct lcr_stream_opts *o)
{
	memset(r, 0, sizeof(*r));
	if (!opts_ok(o))
		return -EINVAL;
	r->o = *o;
	r->slots = lcr_allocator_zalloc(&o->alloc, o->window * sizeof(*r->slots));
	r->mem = lcr_allocator_alloc(&o->alloc, (size_t)o->window * o->dgram_max);
	r->msg = lcr_allocator_alloc(&o->alloc, LCR_WIRE_MSG_MAX);
	if (!r->slots || !r->mem || !r->msg) {
		lcr_srx_free(r);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < o->window; i++)
		r->slots[i].data = r->mem + (size_t)i * o->dgram_max;
	return 0;
}

void lcr_srx_free(struct lcr_srx *r)
{
	lcr_allocator_free(&r->o.alloc, r->slots);
	lcr_allocator_free(&r->o.alloc, r->mem);
	lcr_allocator_free(&r->o.alloc, r->msg);
	r->slots = NULL;
	r->mem = NULL;
	r->msg = NULL;
}

/* Whether the receiver left `stream`, and where (taken out of `left`). */
static bool left_take(struct lcr_srx *r, uint64_t stream, uint64_t *delivered)
{
	for (uint32_t i = 0; i < r->n_left; i++) {
		if (r->left[i].stream != stream)
			continue;
		*delivered = r->left[i].delivered;
		r->left[i] = r->left[--r->n_left];
		return true;
	}
	return false;
}

/* Remember where we leave `stream`; when full, forget the smallest id (the
 * oldest, as senders make them), which `forgot` then covers. */
static void left_put(struct lcr_srx *r, uint64_t stream, uint64_t delivered)
{
	if (r->n_left == LCR_STREAM_LEFT_MAX) {
		uint32_t min = 0;
		for (uint32_t i = 1; i < r->n_left; i++)
			if (r->left[i].stream < r->left[min].stream)
				min = i;
		if (r->left[min].stream > r->forgot)
			r->forgot = r->left[min].stream;
		r->left[min] = r->left[--r->n_left];
	}
	LCR_ASSERT(r->n_left < LCR_STREAM_LEFT_MAX);
	r->left[r->n_left].stream = stream;
	r->left[r->n_left].delivered = delivered;
	r->n_left++;
}

/*
 * Take up `stream` (newer than ours, or an older one taking back) whose
 * datagram `first_seq` came first. One we left begins where we left it; one
 * we never took up begins at 1 when we see it from near its start, or where
 * we come in (we restarted, it did not). One we took up before and forgot
 * is refused: where it stands we no longer know, and starting it over could
 * hand a message up twice. Returns whether it was taken up.
 */
static bool srx_take_up(struct lcr_srx *r, uint64_t stream, uint64_t first_seq)
{
	uint64_t delivered;

	LCR_ASSERT(stream != r->stream);
	if (!left_take(r, stream, &delivered)) {
		if (stream <= r->forgot) {
			r->st.forgotten++;
			return false;
		}
		delivered = first_seq <= r->o.window ? 0 : first_seq - 1;
	}
	if (r->stream != 0)
		left_put(r, r->stream, r->delivered);
	r->stream = stream;
	r->delivered = delivered;
	for (uint32_t i = 0; i < r->o.window; i++)
		r->slots[i].present = false;
	r->msg_len = 0;
	r->msg_frags = 0;
	r->start = r->delivered; /* "fresh" until something is delivered past it */
	r->older = 0;
	r->older_seen = 0;
	return true;
}

/*
 * One in-order datagram into the message being reassembled, from wherever it
 * is: the caller's receive buffer (`stashed` false) or a slot. A whole
 * message in one datagram is handed up from there, uncopied; a fragment is
 * gathered into `msg`, which a message of several needs to be contiguous.
 */
static void srx_take(struct lcr_srx *r, uint8_t type, uint16_t frag_index, uint16_t frag_count,
		     const uint8_t *data, uint32_t len, bool stashed, lcr_srx_deliver_fn deliver,
		     void *ctx)
{
	if (frag_index != r->msg_frags ||
	    (r->msg_frags > 0 && (type != r->msg_type || frag_count != r->msg_count)) ||
	    r->msg_len + len > LCR_WIRE_MSG_MAX) {
		/* Numbering that does not follow, or a count other than its
		 * fragment 0's: drop what was gathered. A message that starts
		 * here can still be taken. */
		r->st.bad_fragments++;
		r->msg_len = 0;
		r->msg_frags = 0;
		if (frag_index != 0)
			return;
	}
	if (frag_count == 1) {
		/* frag_index is 0 (< frag_count): nothing is partly gathered. */
		LCR_ASSERT(r->msg_frags == 0);
		LCR_ASSERT(r->msg_len == 0);
		r->st.msgs++;
		if (!stashed)
			r->st.direct++;
		deliver(ctx, type, data, len);
		return;
	}
	if (r->msg_frags == 0) {
		r->msg_type = type;
		r->msg_count = frag_count;
	}
	memcpy(r->msg + r->msg_len, data, len);
	r->st.gathered_bytes += len;
	r->msg_len += len;
	r->msg_frags++;
	if (r->msg_frags == frag_count) {
		r->st.msgs++;
		deliver(ctx, r->msg_type, r->msg, r->msg_len);
		r->msg_len = 0;
		r->msg_frags = 0;
	}
}

/* Take the stashed datagrams that the last one put in order. */
static void srx_drain(struct lcr_srx *r, lcr_srx_deliver_fn deliver, void *ctx)
{
	for (;;) {
		struct lcr_srx_slot *sl = &r->slots[(r->delivered + 1) % r->o.window];
		if (!sl->present)
			break;
		/* Its bytes stay put until a later datagram is stashed here,
		 * which cannot happen while it is being handed up. */
		sl->present = false;
		r->delivered++;
		srx_take(r, sl->type, sl->frag_index, sl->frag_count, sl->data, sl->len, true,
			 deliver, ctx);
	}
}

uint32_t lcr_srx_on_dgram(struct lcr_srx *r, const struct lcr_wire_hdr *h, const uint8_t *payload,
			  lcr_srx_deliver_fn deliver, void *ctx)
{
	LCR_ASSERT(!r->delivering); /* not from inside a deliver callback */
	r->st.dgrams++;
	r->ack_due = true;
	if (h->stream == 0 || h->seq == 0 || h->len > r->o.dgram_max - LCR_WIRE_HDR ||
	    h->frag_count == 0 || h->frag_index >= h->frag_count) {
		r->ack_now = true;
		return LCR_DROP_FRAGMENT;
	}
	if (h->seq >= LCR_NUMBER_MAX) {
		r->st.seq_range++;
		r->ack_due = false;
		return LCR_DROP_SEQ_RANGE;
	}
	if (h->stream < r->stream) {
		/* The current stream went quiet while one older id keeps coming
		 * (OLDER_TAKEOVER datagrams of it, none of the current between): the
		 * current one was a dead end (a forged datagram with a newer id, or
		 * a sender whose clock went back), the older one is live: go back
		 * to it. A genuine newer stream keeps sending, and leftovers of the
		 * stream it replaced stop within a round trip. */
		if (h->stream == r->older && ++r->older_seen >= LCR_STREAM_OLDER_TAKEOVER &&
		    srx_take_up(r, h->stream, h->seq)) {
			r->st.takebacks++;
		} else {
			if (h->stream != r->older || r->older_seen >= LCR_STREAM_OLDER_TAKEOVER) {
				r->older = h->stream;
				r->older_seen = 1;
			}
			r->st.stale++;
			r->ack_due = false; /* nothing to say about a stream we left */
			return LCR_DROP_STALE_STREAM;
		}
	}
	if (h->stream == r->stream)
		r->older_seen = 0;
	else if (h->stream > r->stream) {
		/* Taking it up makes every older id stale: only an id our clock
		 * could have made (the clock is read only on this rare path). */
		if (h->stream > lcr_stream_id_max()) {
			r->st.future++;
			r->ack_due = false;
			return LCR_DROP_FUTURE_STREAM;
		}
		if (!srx_take_up(r, h->stream, h->seq)) {
			r->st.stale++;
			r->ack_due = false;
			return LCR_DROP_STALE_STREAM;
		}
		r->ack_now = true;
	}
	if (h->seq <= r->delivered) {
		r->st.duplicates++;
		r->ack_now = true; /* our last ack may have been lost */
		return LCR_DROP_DUPLICATE;
	}
	if (h->seq > r->delivered + r->o.window) {
		r->st.beyond_window++;
		r->ack_now = true;
		return LCR_DROP_WINDOW;
	}
	struct lcr_srx_slot *sl = &r->slots[h->seq % r->o.window];
	if (sl->present) {
		r->st.duplicates++;
		r->ack_now = true;
		return LCR_DROP_DUPLICATE;
	}
	/* A retransmission means the sender's timer ran out: it waits for
	 * this ack, whether or not the datagram ends a message. */
	if (h->flags & LCR_WIRE_F_RETRANSMIT)
		r->ack_now = true;
	r->delivering = true;
	if (h->seq == r->delivered + 1) {
		/* The next one: taken from the caller's buffer, then whatever
		 * waited behind it. */
		uint64_t from = r->delivered;
		r->delivered++;
		srx_take(r, h->type, h->frag_index, h->frag_count, payload, h->len, false, deliver,
			 ctx);
		srx_drain(r, deliver, ctx);
		r->unacked += (uint32_t)(r->delivered - from);
	} else {
		/* Early: the caller's buffer is reused once we return, so the
		 * datagram waits in its slot for the gap to fill. */
		r->ack_now = true; /* the sack shows the gap */
		r->st.reordered++;
		r->st.stashed++;
		r->st.stashed_bytes += h->len;
		sl->present = true;
		sl->len = h->len;
		sl->type = h->type;
		sl->frag_index = h->frag_index;
		sl->frag_count = h->frag_count;
		memcpy(sl->data, payload, h->len);
	}
	r->delivering = false;
	return LCR_DROP_NONE;
}

bool lcr_srx_ack_due(const struct lcr_srx *r)
{
	uint32_t every = r->o.window / 4 < 256 ? r->o.window / 4 : 256;

	if (!r->ack_due || r->stream == 0)
		return false;
	return r->ack_now || r->msg_frags == 0 || r->unacked >= every;
}

bool lcr_srx_ack_may_wait(const struct lcr_srx *r)
{
	return r->ack_due && r->stream != 0 && !r->ack_now && r->msg_frags == 0 &&
	       r->unacked <= LCR_SRX_HOLD_MAX && r->delivered > r->start;
}

void lcr_srx_make_ack(struct lcr_srx *r, struct lcr_wire_ack *a)
{
	memset(a, 0, sizeof(*a));
	a->stream = r->stream;
	a->cum = r->delivered;
	if (r->delivered == r->start)
		a->flags |= LCR_WIRE_ACK_FRESH;
	for (uint32_t i = 0; i < 64 && i + 2 <= r->o.window; i++) {
		uint64_t seq = r->delivered + 2 + i;
		if (r->slots[seq % r->o.window].present)
			a->sack |= 1ull << i;
	}
	/* Slots are indexed by sequence number: every seq up to cum + window
	 * has a place, whatever is held out of order. */
	a->window = r->o.window;
	r->ack_due = false;
	r->ack_now = false;
	r->unacked = 0;
}

void lcr_srx_stats_add(struct lcr_srx_stats *to, const struct lcr_srx_stats *from)
{
	to->dgrams += from->dgrams;
	to->msgs += from->msgs;
	to->duplicates += from->duplicates;
	to->stale += from->stale;
	to->beyond_window += from->beyond_window;
	to->reordered += from->reordered;
	to->bad_fragments += from->bad_fragments;
	to->future += from->future;
	to->seq_range += from->seq_range;
	to->takebacks += from->takebacks;
	to->forgotten += from->forgotten;
	to->direct += from->direct;
	to->stashed += from->stashed;
	to->stashed_bytes += from->stashed_bytes;
	to->gathered_bytes += from->gathered_bytes;
}

int lcr_srx_stats_json(const struct lcr_srx_stats *st, char *buf, size_t len)
{
	size_t o = 0;

	LCR_PUT("\"stream_rx\":{\"dgrams\":%llu,\"msgs\":%llu,\"direct\":%llu,\"stashed\":%llu,"
		"\"stashed_bytes\":%llu,\"gathered_bytes\":%llu,\"reordered\":%llu,"
		"\"duplicates\":%llu,\"stale\":%llu,\"beyond_window\":%llu,\"bad_fragments\":%llu,"
		"\"future\":%llu,\"seq_range\":%llu,\"takebacks\":%llu,\"forgotten\":%llu}",
		(unsigned long long)st->dgrams, (unsigned long long)st->msgs,
		(unsigned long long)st->direct, (unsigned long long)st->stashed,
		(unsigned long long)st->stashed_bytes, (unsigned long long)st->gathered_bytes,
		(unsigned long long)st->reordered, (unsigned long long)st->duplicates,
		(unsigned long long)st->stale, (unsigned long long)st->beyond_window,
		(unsigned long long)st->bad_fragments, (unsigned long long)st->future,
		(unsigned long long)st->seq_range, (unsigned long long)st->takebacks,
		(unsigned long long)st->forgotten);
	return (int)o;
}
