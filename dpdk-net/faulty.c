/* SPDX-License-Identifier: MIT */
/*
 * The fault-injecting decorator (backend.h): wraps any backend and, on send,
 * drops, duplicates, delays and reorders datagrams and cuts one direction to
 * chosen peers, so that the stream layer and Raft above it meet every fault a
 * real network has, on loopback and reproducibly.
 *
 * Decisions come from a seeded PRNG (splitmix64) and always draw the same
 * number of values per datagram, so a seed and a sequence of calls give the
 * same decisions whatever their outcome. Delivery times of held datagrams
 * follow CLOCK_MONOTONIC, like the network they imitate.
 *
 * Held datagrams (delayed or reordered) are copied into slots allocated at
 * open, since the caller's buffers are not ours to keep; they go out from
 * whichever of rx_burst, tx_burst or wait runs once they are due.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lcr_assert.h"
#include "backend.h"
#include "wire.h"

/* Input datagrams decided per inner send; each may become two (duplicate). */
#define LCR_FAULTY_CHUNK   32
#define LCR_FAULTY_OUT_MAX (2 * LCR_FAULTY_CHUNK)
/* Peers that can be blocked at once: as many as a backend has peers. */
#define LCR_FAULTY_BLOCKED_MAX LCR_SOCK_PEERS_MAX
/* The largest datagram the transports build: held ones are copied into slots this big. */
#define LCR_FAULTY_SLOT_BYTES LCR_WIRE_DGRAM_MAX
#define LCR_FAULTY_HOLD_MAX   4096
/* A reordered datagram is overtaken by 1..SPAN later ones... */
#define LCR_FAULTY_REORDER_SPAN 8
/* ...unless that many do not come within this time, so a quiet link still delivers it. */
#define LCR_FAULTY_REORDER_WAIT_NS 1000000u

struct hold_slot {
	uint64_t due_ns; /* not sent before this time */
	uint64_t order;	 /* when it was held: equal due times go out first in, first out */
	uint64_t seq;	 /* order in which the datagram was accepted */
	uint32_t span;	 /* reordered: sent once seq + span was sent */
	uint32_t peer;
	uint32_t len;
};

/* What happens to one input datagram; copy 1 exists only when dup. */
struct decision {
	uint64_t rng_before; /* to take the decision back if the datagram is not taken */
	bool blocked;
	bool lost;
	bool dup;
	bool reorder;  /* copy 0 is held back behind later datagrams */
	bool dup_lost; /* copy 1 was refused by the inner backend */
	bool held[2];  /* copy goes to the hold queue */
	bool full[2];  /* copy should have been held but was sent at once */
	uint32_t span;
	uint64_t delay_ns[2];
};

struct lcr_faulty {
	struct lcr_backend be;
	struct lcr_backend *inner;
	struct lcr_faulty_opts o;
	uint64_t rng;
	uint64_t accepted_seq; /* datagrams accepted (sent or held), for reordering */
	uint64_t sent_seq_max; /* largest seq handed to the inner backend */
	uint64_t held_total;   /* datagrams ever held, to order equal due times */
	struct lcr_faulty_stats st;
	uint32_t n_blocked;
	uint32_t blocked[LCR_FAULTY_BLOCKED_MAX];
	/* The hold queue: hold_max slots, a free stack, a heap on due time, reorder list. */
	uint32_t hold_max;
	struct hold_slot *slot;
	uint8_t *bytes; /* hold_max slots of LCR_FAULTY_SLOT_BYTES */
	uint32_t *free_idx;
	uint32_t n_free;
	uint32_t *heap; /* delayed only, earliest due first */
	uint32_t n_heap;
	uint32_t *ro; /* reordered, in the order they were held */
	uint32_t n_ro;
	/* Scratch for one inner send. */
	struct lcr_dgram out[LCR_FAULTY_OUT_MAX];
	uint32_t out_src[LCR_FAULTY_OUT_MAX]; /* input index, or slot index on release */
	struct decision dec[LCR_FAULTY_CHUNK];
};

static const struct lcr_backend_ops faulty_ops;

static struct lcr_faulty *to_faulty(struct lcr_backend *be)
{
	LCR_ASSERT(be && be->ops == &faulty_ops);
	return (struct lcr_faulty *)be;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), without the bias of a modulo. */
static uint64_t uniform(uint64_t r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

static bool chance(uint64_t r, uint32_t ppm)
{
	return uniform(r, 1000000) < ppm;
}

static bool is_blocked(const struct lcr_faulty *f, uint32_t peer)
{
	for (uint32_t i = 0; i < f->n_blocked; i++)
		if (f->blocked[i] == peer)
			return true;
	return false;
}

/* ---- the hold queue --------------------------------------------------------- */

/*
 * Earliest due first; on a tie (a burst held with the same delay and no
 * jitter) the one held first, or a plain delay would reorder datagrams.
 */
static bool heap_less(const struct lcr_faulty *f, uint32_t a, uint32_t b)
{
	const struct hold_slot *x = &f->slot[f->heap[a]], *y = &f->slot[f->heap[b]];

	return x->due_ns < y->due_ns || (x->due_ns == y->due_ns && x->order < y->order);
}

static void heap_swap(struct lcr_faulty *f, uint32_t a, uint32_t b)
{
	uint32_t t = f->heap[a];

	f->heap[a] = f->heap[b];
	f->heap[b] = t;
}

static void heap_push(struct lcr_faulty *f, uint32_t idx)
{
	uint32_t i = f->n_heap++;

	LCR_ASSERT(f->n_heap <= f->hold_max);
	f->heap[i] = idx;
	while (i > 0 && heap_less(f, i, (i - 1) / 2)) {
		heap_swap(f, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static uint32_t heap_pop(struct lcr_faulty *f)
{
	uint32_t top = f->heap[0], i = 0;

	LCR_ASSERT(f->n_heap > 0);
	f->heap[0] = f->heap[--f->n_heap];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < f->n_heap && heap_less(f, l, m))
			m = l;
		if (r < f->n_heap && heap_less(f, r, m))
			m = r;
		if (m == i)
			break;
		heap_swap(f, i, m);
		i = m;
	}
	return top;
}

static uint8_t *slot_bytes(const struct lcr_faulty *f, uint32_t idx)
{
	return f->bytes + (size_t)idx * LCR_FAULTY_SLOT_BYTES;
}

static void slot_free(struct lcr_faulty *f, uint32_t idx)
{
	LCR_ASSERT(f->n_free < f->hold_max);
	f->free_idx[f->n_free++] = idx;
}

static bool ro_ready(const struct lcr_faulty *f, const struct hold_slot *h, uint64_t now)
{
	if (now >= add_sat(h->due_ns, LCR_FAULTY_REORDER_WAIT_NS))
		return true;
	return now >= h->due_ns && f->sent_seq_max >= h->seq + h->span;
}

/* Hand slots out_src[0..m) to the inner backend; returns how many it took. */
static uint32_t send_slots(struct lcr_faulty *f, uint32_t m)
{
	int k;

	for (uint32_t i = 0; i < m; i++) {
		const struct hold_slot *h = &f->slot[f->out_src[i]];

		f->out[i].buf = slot_bytes(f, f->out_src[i]);
		f->out[i].len = h->len;
		f->out[i].peer = h->peer;
	}
	k = lcr_be_tx(f->inner, f->out, m);
	if (k < 0)
		k = 0;
	LCR_ASSERT((uint32_t)k <= m);
	for (int i = 0; i < k; i++) {
		const struct hold_slot *h = &f->slot[f->out_src[i]];

		if (h->seq > f->sent_seq_max)
			f->sent_seq_max = h->seq;
		slot_free(f, f->out_src[i]);
	}
	return (uint32_t)k;
}

/* Send the delayed datagrams that are due; false if the inner backend refused some. */
static bool release_delayed(struct lcr_faulty *f, uint64_t now)
{
	while (f->n_heap > 0 && f->slot[f->heap[0]].due_ns <= now) {
		uint32_t m = 0, k;

		while (m < LCR_FAULTY_OUT_MAX && f->n_heap > 0 && f->slot[f->heap[0]].due_ns <= now)
			f->out_src[m++] = heap_pop(f);
		k = send_slots(f, m);
		for (uint32_t i = k; i < m; i++)
			heap_push(f, f->out_src[i]);
		if (k < m)
			return false;
	}
	return true;
}

static void release_reordered(struct lcr_faulty *f, uint64_t now)
{
	bool more = true;

	while (more && f->n_ro > 0) {
		uint32_t m = 0, k, keep = 0;

		for (uint32_t i = 0; i < f->n_ro && m < LCR_FAULTY_OUT_MAX; i++)
			if (ro_ready(f, &f->slot[f->ro[i]], now))
				f->out_src[m++] = f->ro[i];
		if (m == 0)
			return;
		more = m == LCR_FAULTY_OUT_MAX;
		k = send_slots(f, m);
		if (k < m)
			more = false;
		/* Take the k sent ones off the list, keeping the others in order. */
		for (uint32_t i = 0, j = 0; i < f->n_ro; i++) {
			if (j < k && f->ro[i] == f->out_src[j])
				j++;
			else
				f->ro[keep++] = f->ro[i];
		}
		f->n_ro = keep;
	}
}

static void release(struct lcr_faulty *f, uint64_t now)
{
	/* Delayed first: they may be the later datagrams a reordered one waits behind. */
	if (f->n_heap > 0 && !release_delayed(f, now))
		return;
	if (f->n_ro > 0)
		release_reordered(f, now);
}

static uint64_t next_due(const struct lcr_faulty *f)
{
	uint64_t next = UINT64_MAX;

	if (f->n_heap > 0)
		next = f->slot[f->heap[0]].due_ns;
	for (uint32_t i = 0; i < f->n_ro; i++) {
		const struct hold_slot *h = &f->slot[f->ro[i]];
		uint64_t t = f->sent_seq_max >= h->seq + h->span
				     ? h->due_ns
				     : add_sat(h->due_ns, LCR_FAULTY_REORDER_WAIT_NS);

		if (t < next)
			next = t;
	}
	return next;
}

/* ---- send ------------------------------------------------------------------- */

static void decide(struct lcr_faulty *f, uint32_t peer, struct decision *dc)
{
	uint64_t r[6];

	memset(dc, 0, sizeof(*dc));
	dc->rng_before = f->rng;
	for (unsigned i = 0; i < 6; i++)
		r[i] = rng_next(&f->rng);
	dc->blocked = is_blocked(f, peer);
	dc->lost = chance(r[0], f->o.loss_ppm);
	dc->dup = chance(r[1], f->o.dup_ppm);
	dc->reorder = chance(r[2], f->o.reorder_ppm);
	dc->span = 1 + (uint32_t)uniform(r[3], LCR_FAULTY_REORDER_SPAN);
	for (unsigned c = 0; c < 2; c++) {
		uint64_t j = f->o.jitter_ns == UINT64_MAX ? r[4 + c]
							  : uniform(r[4 + c], f->o.jitter_ns + 1);

		dc->delay_ns[c] = add_sat(f->o.delay_ns, j);
	}
}

static void hold(struct lcr_faulty *f, const struct lcr_dgram *d, const struct decision *dc,
		 unsigned c, uint64_t now)
{
	uint32_t idx;
	struct hold_slot *h;

	LCR_ASSERT(f->n_free > 0);
	idx = f->free_idx[--f->n_free];
	h = &f->slot[idx];
	h->due_ns = add_sat(now, dc->delay_ns[c]);
	h->order = f->held_total++;
	h->seq = f->accepted_seq;
	h->span = dc->span;
	h->peer = d->peer;
	h->len = d->len;
	memcpy(slot_bytes(f, idx), d->buf, d->len);
	if (dc->delay_ns[c] > 0)
		f->st.delayed++;
	if (c == 0 && dc->reorder) {
		LCR_ASSERT(f->n_ro < f->hold_max);
		f->ro[f->n_ro++] = idx;
		f->st.reordered++;
	} else {
		heap_push(f, idx);
	}
}

/* Make a taken datagram's decision happen: count it, hold what is held. */
static void commit(struct lcr_faulty *f, const struct lcr_dgram *d, const struct decision *dc,
		   uint64_t now)
{
	unsigned copies = dc->dup && !dc->dup_lost ? 2 : 1;
	bool sent = false;

	if (dc->blocked) {
		f->st.partitioned++;
		return;
	}
	if (dc->lost) {
		f->st.dropped++;
		return;
	}
	f->accepted_seq++;
	if (copies == 2)
		f->st.duplicated++;
	for (unsigned c = 0; c < copies; c++) {
		if (dc->full[c])
			f->st.hold_full++;
		if (dc->held[c])
			hold(f, d, dc, c, now);
		else
			sent = true;
	}
	if (sent && f->accepted_seq > f->sent_seq_max)
		f->sent_seq_max = f->accepted_seq;
}

/* Plan copy c of input j: held (a slot is reserved from *avail) or sent now. */
static void plan_copy(struct lcr_faulty *f, const struct lcr_dgram *d, uint32_t j, unsigned c,
		      uint32_t *avail, uint32_t *m)
{
	struct decision *dc = &f->dec[j];
	bool want = dc->delay_ns[c] > 0 || (c == 0 && dc->reorder);

	if (want && (*avail == 0 || d->len > LCR_FAULTY_SLOT_BYTES)) {
		dc->full[c] = true;
		want = false;
	}
	dc->held[c] = want;
	if (want) {
		(*avail)--;
		return;
	}
	f->out[*m] = *d;
	f->out_src[*m] = j;
	(*m)++;
}

/* Decide, send and commit up to one chunk; returns how many inputs were taken. */
static uint32_t tx_chunk(struct lcr_faulty *f, const struct lcr_dgram *d, uint32_t n, uint64_t now)
{
	uint32_t avail = f->n_free, m = 0, k, cut = n;
	int rc;

	LCR_ASSERT(n <= LCR_FAULTY_CHUNK);
	for (uint32_t j = 0; j < n; j++) {
		struct decision *dc = &f->dec[j];

		decide(f, d[j].peer, dc);
		if (dc->blocked || dc->lost)
			continue;
		plan_copy(f, &d[j], j, 0, &avail, &m);
		if (dc->dup)
			plan_copy(f, &d[j], j, 1, &avail, &m);
	}
	rc = m > 0 ? lcr_be_tx(f->inner, f->out, m) : 0;
	k = rc > 0 ? (uint32_t)rc : 0;
	LCR_ASSERT(k <= m);
	if (k < m) {
		/*
		 * The inner backend is full. An input whose first copy went out is
		 * taken (a refused duplicate is simply lost); the rest are handed
		 * back to the caller, and their decisions taken back so that the
		 * retry draws the same ones.
		 */
		uint32_t j = f->out_src[k];

		cut = j;
		if (k > 0 && f->out_src[k - 1] == j) {
			f->dec[j].dup_lost = true;
			cut = j + 1;
		}
	}
	for (uint32_t j = 0; j < cut; j++)
		commit(f, &d[j], &f->dec[j], now);
	if (cut < n)
		f->rng = f->dec[cut].rng_before;
	return cut;
}

static int faulty_tx_burst(struct lcr_backend *be, const struct lcr_dgram *d, uint32_t n)
{
	struct lcr_faulty *f = to_faulty(be);
	uint64_t now = now_ns();
	uint32_t taken = 0;

	release(f, now);
	while (taken < n) {
		uint32_t chunk = n - taken < LCR_FAULTY_CHUNK ? n - taken : LCR_FAULTY_CHUNK;
		uint32_t cut = tx_chunk(f, d + taken, chunk, now);

		taken += cut;
		if (cut < chunk)
			break;
	}
	/* Reordered datagrams that the ones just sent have overtaken go now. */
	release(f, now);
	return (int)taken;
}

/* ---- receive, wait, the rest ------------------------------------------------ */

static int faulty_rx_burst(struct lcr_backend *be, struct lcr_dgram *d, uint32_t max)
{
	struct lcr_faulty *f = to_faulty(be);

	if (f->n_heap > 0 || f->n_ro > 0)
		release(f, now_ns());
	return lcr_be_rx(f->inner, d, max);
}

static int faulty_wait(struct lcr_backend *be, int fd, uint64_t timeout_ns)
{
	struct lcr_faulty *f = to_faulty(be);
	uint64_t now, next;
	int rc;

	if (f->n_heap == 0 && f->n_ro == 0)
		return lcr_be_wait(f->inner, fd, timeout_ns);
	now = now_ns();
	release(f, now);
	/* Never sleep past the next held datagram's time. */
	next = next_due(f);
	if (next != UINT64_MAX) {
		uint64_t left = next > now ? next - now : 0;

		if (left < timeout_ns)
			timeout_ns = left;
	}
	rc = lcr_be_wait(f->inner, fd, timeout_ns);
	if (f->n_heap > 0 || f->n_ro > 0)
		release(f, now_ns());
	return rc;
}

static void faulty_stats(const struct lcr_backend *be, struct lcr_backend_stats *st)
{
	const struct lcr_faulty *f = (const struct lcr_faulty *)be;

	f->inner->ops->stats(f->inner, st);
}

static int faulty_metrics_json(const struct lcr_backend *be, char *buf, size_t len)
{
	const struct lcr_faulty *f = (const struct lcr_faulty *)be;

	if (!f->inner->ops->metrics_json)
		return 0;
	return f->inner->ops->metrics_json(f->inner, buf, len);
}

static void faulty_close(struct lcr_backend *be)
{
	struct lcr_faulty *f = (struct lcr_faulty *)be;

	if (!f)
		return;
	/* Whatever is still held is lost, as it would be in a network that goes away. */
	if (f->inner)
		f->inner->ops->close(f->inner);
	struct lcr_allocator a = f->o.alloc;
	lcr_allocator_free(&a, f->slot);
	lcr_allocator_free(&a, f->bytes);
	lcr_allocator_free(&a, f->free_idx);
	lcr_allocator_free(&a, f->heap);
	lcr_allocator_free(&a, f->ro);
	lcr_allocator_free(&a, f);
}

/* Peers learned at run time are the inner backend's business. Datagrams
 * held for a peer forgotten since go to the inner backend when due, which
 * counts them lost. */
static int faulty_set_peer(struct lcr_backend *be, const struct lcr_be_peer *p, char *why,
			   size_t why_len)
{
	struct lcr_faulty *f = to_faulty(be);

	if (!f->inner->ops->set_peer) {
		if (why && why_len)
			snprintf(why, why_len,
				 "peer node %u: the backend under the fault decorator "
				 "keeps the peers it opened with",
				 p->node);
		return -ENOTSUP;
	}
	return f->inner->ops->set_peer(f->inner, p, why, why_len);
}

static int faulty_forget_peer(struct lcr_backend *be, uint32_t node)
{
	struct lcr_faulty *f = to_faulty(be);

	if (!f->inner->ops->forget_peer)
		return -ENOTSUP;
	return f->inner->ops->forget_peer(f->inner, node);
}

static const struct lcr_backend_ops faulty_ops = {
	.rx_burst = faulty_rx_burst,
	.tx_burst = faulty_tx_burst,
	.wait = faulty_wait,
	.stats = faulty_stats,
	.metrics_json = faulty_metrics_json,
	.close = faulty_close,
	.set_peer = faulty_set_peer,
	.forget_peer = faulty_forget_peer,
};

static bool opts_valid(const struct lcr_faulty_opts *o)
{
	return o->loss_ppm <= 1000000 && o->dup_ppm <= 1000000 && o->reorder_ppm <= 1000000;
}

int lcr_faulty_open(struct lcr_backend **out, struct lcr_backend *inner,
		    const struct lcr_faulty_opts *o)
{
	struct lcr_faulty *f;
	uint32_t n;

	LCR_ASSERT(out);
	LCR_ASSERT(inner);
	LCR_ASSERT(o);
	*out = NULL;
	if (!opts_valid(o))
		return -EINVAL;
	n = o->hold_max ? o->hold_max : LCR_FAULTY_HOLD_MAX;
	const struct lcr_allocator *a = &o->alloc;
	f = lcr_allocator_zalloc(a, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->be.ops = &faulty_ops;
	f->o = *o;
	f->o.hold_max = n;
	f->hold_max = n;
	f->rng = o->seed;
	/* The slot bytes are only touched when used, so an idle queue costs address space only. */
	f->slot = lcr_allocator_zalloc(a, n * sizeof(*f->slot));
	f->bytes = lcr_allocator_alloc(a, (size_t)n * LCR_FAULTY_SLOT_BYTES);
	f->free_idx = lcr_allocator_zalloc(a, n * sizeof(*f->free_idx));
	f->heap = lcr_allocator_zalloc(a, n * sizeof(*f->heap));
	f->ro = lcr_allocator_zalloc(a, n * sizeof(*f->ro));
	if (!f->slot || !f->bytes || !f->free_idx || !f->heap || !f->ro) {
		faulty_close(&f->be); /* inner is not ours until we succeed */
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		f->free_idx[i] = n - 1 - i;
	f->n_free = n;
	f->inner = inner;
	*out = &f->be;
	return 0;
}

void lcr_faulty_block(struct lcr_backend *be, uint32_t peer, bool blocked)
{
	struct lcr_faulty *f = to_faulty(be);

	for (uint32_t i = 0; i < f->n_blocked; i++) {
		if (f->blocked[i] != peer)
			continue;
		if (!blocked)
			f->blocked[i] = f->blocked[--f->n_blocked];
		return;
	}
	if (!blocked)
		return;
	LCR_ASSERT(f->n_blocked < LCR_FAULTY_BLOCKED_MAX);
	f->blocked[f->n_blocked++] = peer;
}

void lcr_faulty_set(struct lcr_backend *be, const struct lcr_faulty_opts *o)
{
	struct lcr_faulty *f = to_faulty(be);

	LCR_ASSERT(opts_valid(o));
	/* A new seed starts a new sequence; the hold queue keeps the size it was opened with. */
	if (o->seed != f->o.seed)
		f->rng = o->seed;
	f->o = *o;
	f->o.hold_max = f->hold_max;
}

void lcr_faulty_stats(const struct lcr_backend *be, struct lcr_faulty_stats *st)
{
	LCR_ASSERT(be && be->ops == &faulty_ops);
	*st = ((const struct lcr_faulty *)be)->st;
}
