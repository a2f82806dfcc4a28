/* SPDX-License-Identifier: MIT */
/*
 * Linearizability checker for register histories, see linz.h.
 *
 * Per key:
 *  1. Reject reads (and successful CAS expectations) of values no operation
 *     wrote: that needs no search and gives the clearest message.
 *  2. Drop operations that cannot matter: reads with unknown outcome, and
 *     unknown-outcome writes/CASes whose value nobody can observe and that
 *     cannot explain a failed CAS either (see keep_observed()).
 *  3. Search (Wing & Gong, Lowe): the call and return events of the remaining
 *     operations form a doubly linked list in time order. Walking it from the
 *     head, every call met before the first return belongs to a "minimal"
 *     operation, one that may be linearized next. Linearizing an operation
 *     lifts its events out of the list and restarts the walk; meeting a return
 *     means its operation had to go next and could not, so we backtrack.
 *     States (set of linearized operations, register value) that were already
 *     explored are skipped; that memo is what keeps the search polynomial on
 *     ordinary histories.
 *
 * Three reductions keep the memo small when clients overlap a lot:
 *  - an op that never changes the value (a read, a failed CAS) and could go
 *    next with the right answer is taken at once, without trying orders
 *    around it: if any linearization exists, so does one with it moved first;
 *  - every value no op ever tests (a write nobody reads) is stored as one
 *    "unobserved" value, so orders of such writes collapse into one state;
 *  - pending writes/CASes kept only because they might explain a failed CAS
 *    ("hiders") are taken only right where a failed CAS needs one, and
 *    interchangeable ones only in invoke order (see push_hider()).
 * Each is justified next to its code; the unit tests cross-check the result
 * against a brute-force search.
 *
 * A state is hashed with Zobrist keys (one random word per op, xor-ed in and
 * out as ops are linearized and undone) and stored in full for comparison.
 * The set of linearized operations is stored as a window of a bitset: every
 * completed operation below the first unlinearized one is linearized, and
 * none far above it can be (it would have to start before that one ended), so
 * only a few words around the frontier differ between states. Operations with
 * unknown outcome live in their own bitset since they can stay unlinearized
 * for ever and would otherwise stretch the window over the whole history.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linz.h"

#define NONE UINT32_MAX

/* Keeps every per-key index in 32 bits, with room for two events per op. */
#define LINZ_OPS_MAX (1u << 30)

/* Sort record, ordered by (a, b). Ops: (key, invoke, input index); events: see struct srch. */
struct srec {
	uint64_t a;
	uint64_t b;
	uint32_t c;
};

/* The operations of one key, as handed to the per-key check. */
struct key_in {
	const struct lcr_linz_op *ops;
	const struct srec *g; /* (key, invoke, index): completed ones first, then pending */
	uint32_t ng;
	uint32_t nc;
	uint64_t key;
};

/* Operation kept for the search. */
struct kop {
	uint64_t value; /* READ: value seen; else value written, canonical if unobserved */
	uint64_t expect;
	uint64_t z;	 /* Zobrist key for "this op is linearized" */
	uint32_t idx;	 /* index into the input */
	uint32_t bit;	 /* bit in the completed or the pending set */
	uint32_t ret_ev; /* its return event; NONE when pending */
	uint32_t kind;
	bool cas_ok;
	bool pending;
	bool keeps_value; /* a read or a failed CAS: never changes the value */
	bool hider;	  /* KEEP_HIDE: has no events, see push_hider() */
};

struct bits {
	uint64_t *w;
	size_t nw;
	size_t lo; /* first word that is not all ones */
	size_t hi; /* one past the last non-zero word */
};

/* Hash set of explored states; encodings live in one growing arena. */
struct memo {
	uint64_t *hash;
	uint64_t *off; /* 1 + arena offset of the encoding; 0: free slot */
	size_t cap;
	size_t used;
	uint64_t *arena;
	size_t alen;
	size_t acap;
};

struct frame {
	uint32_t op;
	uint32_t ev;  /* its call event; for a hider, the first return when taken */
	uint32_t alt; /* for a hider: which alternative of push_hider() it was */
	bool forced;  /* taken without alternatives: backtrack past it */
	uint64_t val;
};

struct srch {
	const struct lcr_linz_op *ops;
	struct kop *kop;
	uint32_t nk;
	uint32_t nc;
	struct srec *ev; /* (time, return << 32 | kop): calls first at equal times */
	uint32_t nev;
	uint32_t *next; /* nev + 2 entries: nev is the head, nev + 1 the tail */
	uint32_t *prev;
	struct bits cb; /* linearized completed ops */
	struct bits pb; /* linearized pending ops */
	uint32_t *hw;	/* hider writes, in invoke order */
	uint32_t nhw;
	uint32_t hw_used; /* hw[0..hw_used) are linearized */
	uint32_t *hc;	  /* hider CASes, in invoke order */
	uint32_t nhc;
	struct memo memo;
	struct frame *stack;
	uint32_t depth;
	uint32_t remaining; /* completed ops not linearized yet */
	uint64_t val;
	uint64_t zh;
	uint64_t states;
	uint64_t limit;
	uint64_t *enc; /* scratch encoding of the current state */
	bool has_unobs;
	uint64_t unobs; /* the value standing for all values no op tests */
	/* Deepest dead end, for the explanation. */
	bool have_dead;
	uint32_t dead_depth;
	uint32_t dead_op;
	uint32_t dead_last;
	uint64_t dead_val;
};

enum { SEARCH_FAIL, SEARCH_OK, SEARCH_GAVE_UP };

/* ---- small helpers ---- */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static size_t pow2_at_least(size_t n)
{
	size_t c = 16;

	while (c < n)
		c *= 2;
	return c;
}

static bool srec_le(const struct srec *x, const struct srec *y)
{
	return x->a < y->a || (x->a == y->a && x->b <= y->b);
}

static void isort(struct srec *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct srec x = a[i];
		size_t j = i;

		for (; j > 0 && !srec_le(&a[j - 1], &x); j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

/* Merges a[0..mid) and a[mid..n), both sorted, through tmp (mid entries). */
static void merge(struct srec *a, struct srec *tmp, size_t mid, size_t n)
{
	size_t i = 0, j = mid, k = 0;

	memcpy(tmp, a, mid * sizeof(*a));
	while (i < mid && j < n)
		a[k++] = srec_le(&tmp[i], &a[j]) ? tmp[i++] : a[j++];
	while (i < mid)
		a[k++] = tmp[i++];
}

/*
 * Stable bottom-up merge sort. Histories arrive nearly in time order, so
 * merges of runs that are already in order are skipped: close to linear then,
 * and several times faster than qsort's indirect compares either way.
 */
static void msort(struct srec *a, struct srec *tmp, size_t n)
{
	const size_t run = 16;

	for (size_t i = 0; i < n; i += run)
		isort(a + i, n - i < run ? n - i : run);
	for (size_t w = run; w < n; w *= 2) {
		for (size_t lo = 0; lo + w < n; lo += 2 * w) {
			size_t len = n - lo < 2 * w ? n - lo : 2 * w;

			if (!srec_le(&a[lo + w - 1], &a[lo + w]))
				merge(a + lo, tmp, w, len);
		}
	}
}

struct sbuf {
	char *p;
	size_t len;
	size_t pos;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (b->pos + 1 >= b->len)
		return;
	va_start(ap, fmt);
	r = vsnprintf(b->p + b->pos, b->len - b->pos, fmt, ap);
	va_end(ap);
	if (r > 0)
		b->pos += (size_t)r < b->len - b->pos ? (size_t)r : b->len - b->pos - 1;
}

static bool is_pending(const struct lcr_linz_op *o)
{
	return o->complete_ns == LCR_LINZ_PENDING;
}

/* "#12 c3 CAS(4->7 ok) [100,250]": enough to find the op in a trace. */
static void sb_op(struct sbuf *b, const struct lcr_linz_op *ops, uint32_t i)
{
	const struct lcr_linz_op *o = &ops[i];
	const char *outcome = o->cas_ok ? "ok" : "fail";

	sb_printf(b, "#%u c%u ", i, o->client);
	if (o->kind == LCR_LINZ_WRITE)
		sb_printf(b, "W(%llu)", (unsigned long long)o->value);
	else if (o->kind == LCR_LINZ_READ)
		sb_printf(b, "R()=%llu", (unsigned long long)o->value);
	else
		sb_printf(b, "CAS(%llu->%llu %s)", (unsigned long long)o->expect,
			  (unsigned long long)o->value, is_pending(o) ? "?" : outcome);
	sb_printf(b, " [%llu,", (unsigned long long)o->invoke_ns);
	if (is_pending(o))
		sb_printf(b, "?]");
	else
		sb_printf(b, "%llu]", (unsigned long long)o->complete_ns);
}

/* ---- value set: which values are written, observed, expected by failed CASes ---- */

enum { V_USED = 1, V_WRITTEN = 2, V_OBS = 4, V_FAILEXP = 8 };

struct vset {
	uint64_t *v;
	uint8_t *f;
	size_t mask;
};

/* Sized for every value and expectation of ng ops at under 50% load: no growth. */
static int vset_init(struct vset *vs, uint32_t ng)
{
	size_t cap = pow2_at_least(4 * (size_t)ng + 4);

	vs->v = malloc(cap * sizeof(*vs->v));
	vs->f = calloc(cap, 1);
	vs->mask = cap - 1;
	return vs->v && vs->f ? 0 : -ENOMEM;
}

static void vset_free(struct vset *vs)
{
	free(vs->v);
	free(vs->f);
}

/* Flags of v, inserting it (with no flags but V_USED) if new. */
static uint8_t *vset_at(struct vset *vs, uint64_t v)
{
	size_t i = mix(v) & vs->mask;

	while ((vs->f[i] & V_USED) && vs->v[i] != v)
		i = (i + 1) & vs->mask;
	if (!(vs->f[i] & V_USED)) {
		vs->v[i] = v;
		vs->f[i] = V_USED;
	}
	return &vs->f[i];
}

/* A CAS that surely or possibly (pending) set its value. */
static bool may_write(const struct lcr_linz_op *o)
{
	return o->kind == LCR_LINZ_WRITE ||
	       (o->kind == LCR_LINZ_CAS && (o->cas_ok || is_pending(o)));
}

static bool is_failed_cas(const struct lcr_linz_op *o)
{
	return o->kind == LCR_LINZ_CAS && !o->cas_ok && !is_pending(o);
}

/* Flags every value; returns the latest completion of a failed CAS (0: none). */
static uint64_t scan_values(const struct key_in *ki, struct vset *vs)
{
	uint64_t fail_end = 0;

	/* The initial value. */
	*vset_at(vs, 0) |= V_WRITTEN;
	for (uint32_t i = 0; i < ki->ng; i++) {
		const struct lcr_linz_op *o = &ki->ops[ki->g[i].c];

		if (may_write(o))
			*vset_at(vs, o->value) |= V_WRITTEN;
		if (is_pending(o))
			continue;
		if (o->kind == LCR_LINZ_READ)
			*vset_at(vs, o->value) |= V_OBS;
		else if (o->kind == LCR_LINZ_CAS && o->cas_ok)
			*vset_at(vs, o->expect) |= V_OBS;
		if (is_failed_cas(o)) {
			*vset_at(vs, o->expect) |= V_FAILEXP;
			/* +1 so that a failure completing at time 0 still counts. */
			if (o->complete_ns + 1 > fail_end)
				fail_end = o->complete_ns + 1;
		}
	}
	return fail_end;
}

/* First completed op that observed a value nobody wrote, or NONE. */
static uint32_t find_unwritten(const struct key_in *ki, struct vset *vs)
{
	for (uint32_t i = 0; i < ki->nc; i++) {
		const struct lcr_linz_op *o = &ki->ops[ki->g[i].c];

		if (o->kind == LCR_LINZ_READ && !(*vset_at(vs, o->value) & V_WRITTEN))
			return i;
		if (o->kind == LCR_LINZ_CAS && o->cas_ok && !(*vset_at(vs, o->expect) & V_WRITTEN))
			return i;
	}
	return NONE;
}

enum { KEEP_NO, KEEP_YES, KEEP_HIDE };

/*
 * Decide which pending ops the search needs. Taking a pending write out of a
 * linearization only changes what the ops after it see; that is harmless
 * unless one of them could observe its value: a read of that value, a
 * successful CAS expecting it (including a pending CAS we keep, hence the
 * fixed point), or a failed CAS, whose failure the write may explain by
 * hiding the value it expected. A failed CAS that completed before the write
 * started cannot see it. Every op kept must keep the writers it observes.
 */
static void keep_observed(const struct key_in *ki, struct vset *vs, uint64_t fail_end,
			  uint8_t *keep)
{
	bool changed = true;

	memset(keep, KEEP_NO, ki->ng - ki->nc);
	while (changed) {
		changed = false;
		for (uint32_t i = ki->nc; i < ki->ng; i++) {
			const struct lcr_linz_op *o = &ki->ops[ki->g[i].c];

			if (keep[i - ki->nc] != KEEP_NO || o->kind == LCR_LINZ_READ)
				continue;
			if (!(*vset_at(vs, o->value) & V_OBS) && o->invoke_ns >= fail_end)
				continue;
			keep[i - ki->nc] = KEEP_YES;
			if (o->kind == LCR_LINZ_CAS)
				*vset_at(vs, o->expect) |= V_OBS;
			changed = true;
		}
	}
}

/*
 * Pending writes and CASes kept only for failed CASes write a value that no
 * kept op tests for equality: their only use is to hide the current value
 * from a failed CAS. KEEP_HIDE marks them for the search, which takes them
 * only where that can help (see push_hider()) and keeps them out of the event
 * list, where the many that are never needed would slow every step.
 */
static void prune(const struct key_in *ki, struct vset *vs, uint64_t fail_end, uint8_t *keep)
{
	keep_observed(ki, vs, fail_end, keep);
	for (uint32_t i = ki->nc; i < ki->ng; i++) {
		const struct lcr_linz_op *o = &ki->ops[ki->g[i].c];

		if (keep[i - ki->nc] == KEEP_YES && !(*vset_at(vs, o->value) & (V_OBS | V_FAILEXP)))
			keep[i - ki->nc] = KEEP_HIDE;
	}
}

/* ---- bitset with a canonical window ---- */

static int bits_init(struct bits *b, uint32_t nbits)
{
	b->nw = (nbits + 63) / 64;
	b->w = calloc(b->nw + 1, sizeof(*b->w));
	b->lo = 0;
	b->hi = 0;
	return b->w ? 0 : -ENOMEM;
}

static void bits_set(struct bits *b, uint32_t i)
{
	size_t k = i / 64;

	b->w[k] |= 1ULL << (i % 64);
	if (k >= b->hi)
		b->hi = k + 1;
	while (b->lo < b->nw && b->w[b->lo] == ~0ULL)
		b->lo++;
}

static void bits_clear(struct bits *b, uint32_t i)
{
	size_t k = i / 64;

	b->w[k] &= ~(1ULL << (i % 64));
	if (k < b->lo)
		b->lo = k;
	while (b->hi > 0 && b->w[b->hi - 1] == 0)
		b->hi--;
}

/* lo and hi are canonical, so equal sets give equal encodings. */
static size_t bits_enc(const struct bits *b, uint64_t *out)
{
	size_t n = b->hi > b->lo ? b->hi - b->lo : 0;

	out[0] = (uint64_t)b->lo << 32 | n;
	memcpy(out + 1, b->w + b->lo, n * sizeof(*out));
	return n + 1;
}

/* ---- memo ---- */

static size_t encode(const struct srch *s, uint64_t *out)
{
	size_t len = 2;

	out[1] = s->val;
	len += bits_enc(&s->cb, out + len);
	len += bits_enc(&s->pb, out + len);
	out[0] = len;
	return len;
}

static int memo_grow(struct memo *m)
{
	size_t cap = m->cap * 2;
	uint64_t *hash = malloc(cap * sizeof(*hash));
	uint64_t *off = calloc(cap, sizeof(*off));

	if (!hash || !off) {
		free(hash);
		free(off);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j = m->hash[i] & (cap - 1);

		if (!m->off[i])
			continue;
		while (off[j])
			j = (j + 1) & (cap - 1);
		hash[j] = m->hash[i];
		off[j] = m->off[i];
	}
	free(m->hash);
	free(m->off);
	m->hash = hash;
	m->off = off;
	m->cap = cap;
	return 0;
}

static int arena_push(struct memo *m, const uint64_t *enc, size_t len)
{
	if (m->alen + len > m->acap) {
		size_t acap = m->acap * 2 > m->alen + len ? m->acap * 2 : m->alen + len;
		uint64_t *a = realloc(m->arena, acap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		m->arena = a;
		m->acap = acap;
	}
	memcpy(m->arena + m->alen, enc, len * sizeof(*enc));
	m->alen += len;
	return 0;
}

/* Adds the current state: 1 if it is new, 0 if explored before, -ENOMEM. */
static int memo_add(struct srch *s)
{
	struct memo *m = &s->memo;
	uint64_t h = mix(s->zh ^ mix(s->val ^ 0x9e3779b97f4a7c15ULL));
	size_t i, len = 0;

	if (2 * (m->used + 1) > m->cap && memo_grow(m))
		return -ENOMEM;
	for (i = h & (m->cap - 1); m->off[i]; i = (i + 1) & (m->cap - 1)) {
		const uint64_t *e = m->arena + m->off[i] - 1;

		if (m->hash[i] != h)
			continue;
		if (!len)
			len = encode(s, s->enc);
		if (e[0] == len && !memcmp(e, s->enc, len * sizeof(*e)))
			return 0;
	}
	if (!len)
		len = encode(s, s->enc);
	if (arena_push(m, s->enc, len))
		return -ENOMEM;
	m->hash[i] = h;
	m->off[i] = m->alen - len + 1;
	m->used++;
	return 1;
}

/* ---- search structures ---- */

static void srch_free(struct srch *s)
{
	free(s->kop);
	free(s->ev);
	free(s->next);
	free(s->prev);
	free(s->cb.w);
	free(s->pb.w);
	free(s->memo.hash);
	free(s->memo.off);
	free(s->memo.arena);
	free(s->stack);
	free(s->enc);
	free(s->hw);
	free(s->hc);
}

static void fill_kop(struct kop *k, const struct lcr_linz_op *o, uint32_t idx, uint32_t bit)
{
	k->value = o->value;
	k->expect = o->expect;
	k->idx = idx;
	k->bit = bit;
	k->ret_ev = NONE;
	k->hider = false;
	k->kind = o->kind;
	k->cas_ok = o->cas_ok;
	k->pending = is_pending(o);
	k->keeps_value = o->kind == LCR_LINZ_READ || is_failed_cas(o);
}

/* Writes of values that no op tests all write the first such value instead. */
static void canon_value(struct srch *s, struct kop *k, struct vset *vs)
{
	if (k->keeps_value || (*vset_at(vs, k->value) & (V_OBS | V_FAILEXP)))
		return;
	if (!s->has_unobs) {
		s->has_unobs = true;
		s->unobs = k->value;
	}
	k->value = s->unobs;
}

/* Completed ops first, then the kept pending ones; all in invoke order. */
static void build_kops(struct srch *s, const struct key_in *ki, const uint8_t *keep,
		       struct vset *vs)
{
	uint32_t np = 0;

	for (uint32_t i = 0; i < ki->ng; i++) {
		uint32_t idx = ki->g[i].c;
		uint8_t k = i < ki->nc ? KEEP_YES : keep[i - ki->nc];
		struct kop *kop = &s->kop[s->nk];

		if (k == KEEP_NO)
			continue;
		fill_kop(kop, &ki->ops[idx], idx, i < ki->nc ? i : np++);
		canon_value(s, kop, vs);
		kop->z = mix((uint64_t)s->nk * 0x9e3779b97f4a7c15ULL + 1);
		if (k == KEEP_HIDE) {
			kop->hider = true;
			if (kop->kind == LCR_LINZ_WRITE)
				s->hw[s->nhw++] = s->nk;
			else
				s->hc[s->nhc++] = s->nk;
		}
		s->nk++;
	}
}

static uint32_t ev_op(const struct srch *s, uint32_t e)
{
	return (uint32_t)s->ev[e].b;
}

static bool ev_is_call(const struct srch *s, uint32_t e)
{
	return e < s->nev && !(s->ev[e].b >> 32);
}

/*
 * Calls of completed ops, calls of pending ones and returns: three runs, the
 * first two already in order, the last nearly so; sort it, then merge.
 */
static void build_events(struct srch *s, struct srec *tmp)
{
	uint32_t n = 0, calls_c = 0, calls;

	for (uint32_t i = 0; i < s->nk; i++) {
		if (!s->kop[i].hider)
			s->ev[n++] = (struct srec){ .a = s->ops[s->kop[i].idx].invoke_ns, .b = i };
		if (i + 1 == s->nc)
			calls_c = n;
	}
	calls = n;
	for (uint32_t i = 0; i < s->nc; i++)
		s->ev[n++] = (struct srec){ .a = s->ops[s->kop[i].idx].complete_ns,
					    .b = 1ULL << 32 | i };
	s->nev = n;
	msort(s->ev + calls, tmp, n - calls);
	merge(s->ev, tmp, calls_c, calls);
	merge(s->ev, tmp, calls, n);
	for (uint32_t e = 0; e < n; e++) {
		if (!ev_is_call(s, e))
			s->kop[ev_op(s, e)].ret_ev = e;
	}
	/* The list starts as the sorted array between a head (n) and a tail (n + 1). */
	for (uint32_t e = 0; e < n; e++) {
		s->prev[e] = e ? e - 1 : n;
		s->next[e] = e + 1 < n ? e + 1 : n + 1;
	}
	s->next[n] = n ? 0 : n + 1;
	s->prev[n] = NONE;
	s->next[n + 1] = NONE;
	s->prev[n + 1] = n ? n - 1 : n;
}

static int srch_alloc(struct srch *s, uint32_t nc, uint32_t np)
{
	size_t nk = (size_t)nc + np, nev = 2 * (size_t)nc + np;

	s->kop = malloc(nk * sizeof(*s->kop) + 1);
	s->ev = malloc(nev * sizeof(*s->ev) + 1);
	s->next = malloc((nev + 2) * sizeof(*s->next));
	s->prev = malloc((nev + 2) * sizeof(*s->prev));
	s->stack = malloc(nk * sizeof(*s->stack) + 1);
	s->hw = malloc(np * sizeof(*s->hw) + 1);
	s->hc = malloc(np * sizeof(*s->hc) + 1);
	/* Ordinary histories explore a little more than one state per op. */
	s->memo.cap = pow2_at_least(4 * nk);
	s->memo.acap = 8 * nk;
	s->memo.arena = malloc(s->memo.acap * sizeof(*s->memo.arena));
	s->memo.hash = malloc(s->memo.cap * sizeof(*s->memo.hash));
	s->memo.off = calloc(s->memo.cap, sizeof(*s->memo.off));
	if (!s->kop || !s->ev || !s->next || !s->prev || !s->stack || !s->hw || !s->hc ||
	    !s->memo.hash || !s->memo.off || !s->memo.arena || bits_init(&s->cb, nc) ||
	    bits_init(&s->pb, np))
		return -ENOMEM;
	s->enc = malloc((s->cb.nw + s->pb.nw + 4) * sizeof(*s->enc));
	return s->enc ? 0 : -ENOMEM;
}

/* tmp: scratch for sorting, at least one entry per op of the key. */
static int srch_init(struct srch *s, const struct key_in *ki, const uint8_t *keep, struct vset *vs,
		     struct srec *tmp)
{
	uint32_t np = 0;
	int r;

	memset(s, 0, sizeof(*s));
	for (uint32_t i = ki->nc; i < ki->ng; i++)
		np += keep[i - ki->nc] != KEEP_NO;
	s->ops = ki->ops;
	s->nc = ki->nc;
	r = srch_alloc(s, ki->nc, np);
	if (r)
		return r;
	build_kops(s, ki, keep, vs);
	build_events(s, tmp);
	return 0;
}

/* ---- the search proper ---- */

static struct bits *set_of(struct srch *s, const struct kop *k)
{
	return k->pending ? &s->pb : &s->cb;
}

/* Can k go next from value cur; if so, the value after it. */
static bool step(const struct kop *k, uint64_t cur, uint64_t *nv)
{
	*nv = cur;
	switch (k->kind) {
	case LCR_LINZ_WRITE:
		*nv = k->value;
		return true;
	case LCR_LINZ_READ:
		return cur == k->value;
	default:
		/* A pending CAS that failed had no effect: same as never linearizing it. */
		if (!k->cas_ok && !k->pending)
			return cur != k->expect;
		*nv = k->value;
		return cur == k->expect;
	}
}

static void unlink_ev(struct srch *s, uint32_t e)
{
	s->next[s->prev[e]] = s->next[e];
	s->prev[s->next[e]] = s->prev[e];
}

static void relink_ev(struct srch *s, uint32_t e)
{
	s->next[s->prev[e]] = e;
	s->prev[s->next[e]] = e;
}

static void toggle(struct srch *s, const struct kop *k, bool on)
{
	if (on)
		bits_set(set_of(s, k), k->bit);
	else
		bits_clear(set_of(s, k), k->bit);
	s->zh ^= k->z;
}

/*
 * Linearizes op, which step() allows; e and alt are as in struct frame.
 * Returns 1 if done, 0 if that state was explored before, or -ENOMEM.
 */
static int push_op(struct srch *s, uint32_t op, uint32_t e, uint32_t alt, uint64_t nv, bool forced)
{
	const struct kop *k = &s->kop[op];
	uint64_t old = s->val;
	int r;

	toggle(s, k, true);
	s->val = nv;
	r = memo_add(s);
	if (r <= 0) {
		toggle(s, k, false);
		s->val = old;
		return r;
	}
	s->states++;
	s->stack[s->depth++] =
		(struct frame){ .op = op, .ev = e, .alt = alt, .forced = forced, .val = old };
	s->remaining -= !k->pending;
	s->hw_used += k->hider && k->kind == LCR_LINZ_WRITE;
	if (!k->hider)
		unlink_ev(s, e);
	if (k->ret_ev != NONE)
		unlink_ev(s, k->ret_ev);
	return 1;
}

/* Undoes the last linearization; returns its frame. */
static struct frame pop_op(struct srch *s)
{
	struct frame f = s->stack[--s->depth];
	const struct kop *k = &s->kop[f.op];

	if (k->ret_ev != NONE)
		relink_ev(s, k->ret_ev);
	if (!k->hider)
		relink_ev(s, f.ev);
	toggle(s, k, false);
	s->val = f.val;
	s->remaining += !k->pending;
	s->hw_used -= k->hider && k->kind == LCR_LINZ_WRITE;
	return f;
}

/* Takes a minimal op that keeps the value and fits it: 1 done, 0 none, -ESRCH dead, -ENOMEM. */
static int push_forced(struct srch *s)
{
	uint64_t nv;

	for (uint32_t e = s->next[s->nev]; ev_is_call(s, e); e = s->next[e]) {
		const struct kop *k = &s->kop[ev_op(s, e)];

		if (k->keeps_value && step(k, s->val, &nv)) {
			int r = push_op(s, ev_op(s, e), e, 0, nv, true);

			return r ? r : -ESRCH;
		}
	}
	return 0;
}

static void note_dead_end(struct srch *s, uint32_t e)
{
	if (s->have_dead && s->depth <= s->dead_depth)
		return;
	s->have_dead = true;
	s->dead_depth = s->depth;
	s->dead_op = e < s->nev ? ev_op(s, e) : NONE;
	s->dead_last = s->depth ? s->stack[s->depth - 1].op : NONE;
	s->dead_val = s->val;
}

/*
 * The current state has no linearization: undo up to the last choice that
 * has alternatives left. Returns the event to try next (*alt: the hider
 * alternative to start from), or NONE when there is none.
 */
static uint32_t backtrack(struct srch *s, uint32_t *alt)
{
	while (s->depth) {
		struct frame f = pop_op(s);

		*alt = 0;
		if (f.forced)
			continue;
		if (!s->kop[f.op].hider)
			return s->next[f.ev];
		*alt = f.alt + 1;
		return f.ev;
	}
	return NONE;
}

static bool bits_test(const struct bits *b, uint32_t i)
{
	return b->w[i / 64] >> (i % 64) & 1;
}

/* Could a failed CAS expecting the current value go next? */
static bool cas_would_fail(const struct srch *s)
{
	for (uint32_t e = s->next[s->nev]; ev_is_call(s, e); e = s->next[e]) {
		const struct kop *k = &s->kop[ev_op(s, e)];

		if (k->keeps_value && k->kind == LCR_LINZ_CAS && k->expect == s->val)
			return true;
	}
	return false;
}

/* Was hider op sent by the time of event e (the first return)? */
static bool hider_sent(const struct srch *s, uint32_t op, uint32_t e)
{
	return e < s->nev && s->ops[s->kop[op].idx].invoke_ns <= s->ev[e].a;
}

/*
 * Takes a hider (alternative alt or a later one) where e is the first return:
 * 1 if one was taken, 0 if none fits, -ENOMEM.
 *
 * A hider only matters by hiding the current value from a failed CAS that
 * expects it, and can be moved right before that CAS, so it is only taken
 * when such a CAS could go next. Hider writes are interchangeable, and so are
 * hider CASes expecting the same value: any linearization can use them in
 * invoke order instead (an op sent earlier fits wherever a later one does).
 * So the only alternatives are the next hider write (0) and the next hider
 * CAS expecting the current value (1).
 */
static int push_hider(struct srch *s, uint32_t e, uint32_t alt)
{
	uint32_t op = s->hw_used < s->nhw ? s->hw[s->hw_used] : NONE;
	int r;

	if (!cas_would_fail(s))
		return 0;
	if (alt == 0 && op != NONE && hider_sent(s, op, e)) {
		r = push_op(s, op, e, 0, s->kop[op].value, false);
		if (r)
			return r;
	}
	for (uint32_t j = 0; alt <= 1 && j < s->nhc && hider_sent(s, s->hc[j], e); j++) {
		const struct kop *k = &s->kop[s->hc[j]];

		if (k->expect == s->val && !bits_test(&s->pb, k->bit))
			return push_op(s, s->hc[j], e, 1, k->value, false);
	}
	return 0;
}

/*
 * Tries the choices from call event e on, then the hiders from alternative
 * alt on; 1 when one was taken, 0 at a dead end, -ENOMEM.
 */
static int try_from(struct srch *s, uint32_t e, uint32_t alt)
{
	uint64_t nv;
	int r;

	for (; ev_is_call(s, e); e = s->next[e]) {
		const struct kop *k = &s->kop[ev_op(s, e)];

		if (!step(k, s->val, &nv))
			continue;
		r = push_op(s, ev_op(s, e), e, 0, nv, false);
		if (r)
			return r;
	}
	r = push_hider(s, e, alt);
	if (r)
		return r;
	/* The op of this return had to go next: every choice before it failed. */
	note_dead_end(s, e);
	return 0;
}

static int search(struct srch *s)
{
	uint32_t e = s->next[s->nev], alt = 0;
	bool fresh = true; /* a new state: e is the head */
	int r;

	s->remaining = s->nc;
	while (s->remaining) {
		if (s->states > s->limit)
			return SEARCH_GAVE_UP;
		r = fresh ? push_forced(s) : 0;
		if (!r)
			r = try_from(s, e, alt);
		if (r == -ENOMEM)
			return r;
		fresh = r == 1;
		if (fresh) {
			e = s->next[s->nev];
			alt = 0;
			continue;
		}
		e = backtrack(s, &alt);
		if (e == NONE)
			return SEARCH_FAIL;
	}
	return SEARCH_OK;
}

/* ---- per key (res->key names it, so why does not repeat it) ---- */

static void explain_dead_end(const struct srch *s, struct sbuf *b)
{
	sb_printf(b, "not linearizable: best order placed %u of %u ops (%u completed)",
		  s->dead_depth, s->nk, s->nc);
	if (s->dead_op != NONE) {
		sb_printf(b, "; then ");
		sb_op(b, s->ops, s->kop[s->dead_op].idx);
		sb_printf(b, " had to go next but the value was %llu",
			  (unsigned long long)s->dead_val);
		if (s->has_unobs && s->dead_val == s->unobs)
			sb_printf(b, " (or another value never read)");
	}
	if (s->dead_last != NONE) {
		sb_printf(b, " after ");
		sb_op(b, s->ops, s->kop[s->dead_last].idx);
	}
}

static int search_key(const struct key_in *ki, const uint8_t *keep, struct vset *vs,
		      struct srec *tmp, uint64_t limit, struct lcr_linz_result *res)
{
	struct sbuf b = { .p = res->why, .len = sizeof(res->why) };
	struct srch s;
	int r = srch_init(&s, ki, keep, vs, tmp);

	s.limit = limit;
	if (!r)
		r = search(&s);
	res->states += s.states;
	if (r == SEARCH_FAIL)
		explain_dead_end(&s, &b);
	else if (r == SEARCH_GAVE_UP)
		sb_printf(&b, "gave up after %llu states (limit %llu), %u ops searched",
			  (unsigned long long)s.states, (unsigned long long)limit, s.nk);
	srch_free(&s);
	return r;
}

/* Checks one key: a SEARCH_* verdict (res->why set unless SEARCH_OK), or -ENOMEM. */
static int check_key(const struct key_in *ki, struct srec *tmp, uint64_t limit,
		     struct lcr_linz_result *res)
{
	struct sbuf b = { .p = res->why, .len = sizeof(res->why) };
	struct vset vs;
	uint8_t *keep = malloc(ki->ng - ki->nc + 1);
	uint64_t fail_end;
	uint32_t bad;
	int r = vset_init(&vs, ki->ng);

	if (!keep || r) {
		r = -ENOMEM;
		goto out;
	}
	r = SEARCH_FAIL;
	fail_end = scan_values(ki, &vs);
	bad = find_unwritten(ki, &vs);
	if (bad != NONE) {
		sb_op(&b, ki->ops, ki->g[bad].c);
		sb_printf(&b, " observed a value that no op ever wrote");
		goto out;
	}
	prune(ki, &vs, fail_end, keep);
	r = search_key(ki, keep, &vs, tmp, limit, res);
out:
	free(keep);
	vset_free(&vs);
	return r;
}

/* ---- entry point ---- */

static bool op_valid(const struct lcr_linz_op *o)
{
	if (o->kind < LCR_LINZ_WRITE || o->kind > LCR_LINZ_CAS)
		return false;
	return o->complete_ns >= o->invoke_ns;
}

/* Key -> slot map, to group ops by key in linear time. */
struct kmap {
	uint64_t *key;
	uint32_t *pos; /* per slot: op counts, then where the next completed/pending op goes */
	bool *used;
	size_t mask;
};

static int kmap_init(struct kmap *m, size_t n)
{
	size_t cap = pow2_at_least(2 * n);

	m->key = malloc(cap * sizeof(*m->key));
	m->pos = calloc(2 * cap, sizeof(*m->pos));
	m->used = calloc(cap, sizeof(*m->used));
	m->mask = cap - 1;
	return m->key && m->pos && m->used ? 0 : -ENOMEM;
}

static void kmap_free(struct kmap *m)
{
	free(m->key);
	free(m->pos);
	free(m->used);
}

static size_t kmap_slot(struct kmap *m, uint64_t key)
{
	size_t i = mix(key) & m->mask;

	while (m->used[i] && m->key[i] != key)
		i = (i + 1) & m->mask;
	m->used[i] = true;
	m->key[i] = key;
	return i;
}

/* Turns the per-slot counts into start positions, keys in ascending order. */
static int kmap_place(struct kmap *m)
{
	size_t nk = 0, at = 0;
	struct srec *k = malloc(2 * (m->mask + 1) * sizeof(*k));

	if (!k)
		return -ENOMEM;
	for (size_t i = 0; i <= m->mask; i++) {
		if (m->used[i])
			k[nk++] = (struct srec){ .a = m->key[i], .c = (uint32_t)i };
	}
	msort(k, k + nk, nk);
	for (size_t j = 0; j < nk; j++) {
		uint32_t *pos = &m->pos[2 * k[j].c];
		uint32_t nc = pos[0], np = pos[1];

		pos[0] = (uint32_t)at;
		pos[1] = (uint32_t)(at + nc);
		at += nc + np;
	}
	free(k);
	return 0;
}

/*
 * Sorts the ops by (key, completed before pending, invoke time, input index)
 * into g. Histories come nearly in time order and have few keys, so sort by
 * time (close to linear) and then distribute by key, rather than sort by key.
 */
static int sort_ops(const struct lcr_linz_op *ops, size_t n, struct srec *g, struct srec *tmp)
{
	struct kmap m;
	int r = kmap_init(&m, n);

	for (size_t i = 0; !r && i < n; i++)
		m.pos[2 * kmap_slot(&m, ops[i].key) + is_pending(&ops[i])]++;
	if (!r)
		r = kmap_place(&m);
	for (size_t i = 0; !r && i < n; i++)
		tmp[i] = (struct srec){ .a = ops[i].invoke_ns, .b = i };
	if (!r)
		msort(tmp, g, n);
	for (size_t j = 0; !r && j < n; j++) {
		const struct lcr_linz_op *o = &ops[tmp[j].b];
		uint32_t *pos = &m.pos[2 * kmap_slot(&m, o->key) + is_pending(o)];

		g[(*pos)++] =
			(struct srec){ .a = o->key, .b = o->invoke_ns, .c = (uint32_t)tmp[j].b };
	}
	kmap_free(&m);
	return r;
}

/*
 * Keys in ascending order. A definite failure ends the check; a give-up is
 * remembered (the first one is reported) while later keys may still fail.
 * tmp: 2n entries of scratch.
 */
static int check_all(const struct lcr_linz_op *ops, const struct srec *g, size_t n,
		     struct srec *tmp, uint64_t limit, struct lcr_linz_result *res)
{
	struct lcr_linz_result one;

	for (size_t b = 0, e; b < n; b = e) {
		struct key_in ki = { .ops = ops, .g = g + b, .key = g[b].a };
		int verdict;

		for (e = b; e < n && g[e].a == ki.key; e++)
			ki.nc += !is_pending(&ops[g[e].c]);
		ki.ng = (uint32_t)(e - b);
		memset(&one, 0, sizeof(one));
		verdict = check_key(&ki, tmp, limit, &one);
		res->states += one.states;
		if (verdict < 0)
			return verdict;
		if (verdict == SEARCH_OK || (verdict == SEARCH_GAVE_UP && res->gave_up))
			continue;
		res->ok = false;
		res->gave_up = verdict == SEARCH_GAVE_UP;
		res->key = ki.key;
		memcpy(res->why, one.why, sizeof(res->why));
		if (verdict == SEARCH_FAIL)
			return 0;
	}
	return 0;
}

int lcr_linz_check(const struct lcr_linz_op *ops, size_t n, uint64_t state_limit,
		   struct lcr_linz_result *res)
{
	struct srec *g, *tmp;
	int r = -ENOMEM;

	if (!res || (!ops && n) || n > LINZ_OPS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!op_valid(&ops[i]))
			return -EINVAL;
	}
	memset(res, 0, sizeof(*res));
	res->ok = true;
	if (!n)
		return 0;
	g = malloc(n * sizeof(*g));
	tmp = malloc(2 * n * sizeof(*tmp));
	if (g && tmp)
		r = sort_ops(ops, n, g, tmp);
	if (!r)
		r = check_all(ops, g, n, tmp, state_limit ? state_limit : UINT64_MAX, res);
	free(g);
	free(tmp);
	return r;
}
