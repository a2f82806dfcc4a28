/* SPDX-License-Identifier: MIT */
/* The replicated key-value state machine (kv.h). */
#include "kv.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* Open addressing with linear probing; tombstones keep probe chains intact. */
struct slot {
	uint64_t hash; /* 0: empty, 1: deleted */
	uint8_t *key; /* one allocation: key, value, key_len (u32 LE), the pair's term (pair_put) */
	uint32_t key_len, value_len;
};

struct session {
	uint64_t client; /* 0: empty */
	uint64_t last_id;
	uint8_t status;
	uint64_t used; /* apply counter at its last request, for eviction */
};

#define SESSIONS 8192 /* clients remembered; the least recently active goes */

struct kv_cursor;
struct kv_restore;

struct lcr_kv {
	struct slot *slots;
	uint64_t cap, used; /* used counts tombstones too */
	struct session *sessions;
	struct lcr_kv_stats st;
	/* A snapshot's cursor is open: key/value memory the table lets go of is
	 * kept here until it closes, so the cursor's view stays valid. */
	struct kv_cursor *cursor;
	uint8_t **graveyard;
	uint64_t n_grave, cap_grave;
	struct kv_restore *restore; /* between restore_begin and restore_end */
	uint64_t digest;	    /* the sum of the live pairs' terms (pair_put, kv.h) */
};

/* Memory a slot lets go of: freed now, or when the snapshot cursor closes. */
static void release(struct lcr_kv *kv, uint8_t *mem)
{
	if (!kv->cursor) {
		free(mem);
		return;
	}
	if (kv->n_grave == kv->cap_grave) {
		uint64_t ncap = kv->cap_grave ? kv->cap_grave * 2 : 1024;
		uint8_t **ng = realloc(kv->graveyard, ncap * sizeof(*ng));
		if (!ng) {
			fprintf(stderr, "lcraft-node: out of memory while a snapshot is built\n");
			abort();
		}
		kv->graveyard = ng;
		kv->cap_grave = ncap;
	}
	kv->graveyard[kv->n_grave++] = mem;
}

static uint64_t hash_bytes(const void *p, uint32_t n)
{
	/* FNV-1a, then a final mix; 0 and 1 are reserved markers. */
	const uint8_t *b = p;
	uint64_t h = 1469598103934665603ull;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h < 2 ? h + 2 : h;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

/* The digest's key (kv.h): its 16 ASCII bytes, no terminator. */
static const uint8_t digest_key[crypto_shorthash_KEYBYTES] = "lcraft-kv-digest";
static_assert(sizeof("lcraft-kv-digest") == crypto_shorthash_KEYBYTES + 1, "a 16-byte key");

/* A slot's memory: the pair, the key's length, then the pair's term. */
#define PAIR_EXTRA (4 + 8)

/*
 * Lay a pair out in `mem` (key_len + value_len + PAIR_EXTRA bytes) and
 * return its term of the digest: SipHash-2-4 (libsodium's crypto_shorthash)
 * of key || value || key_len (u32 LE), its 8 bytes read little-endian. The
 * message is hashed where it lies, in one pass; the term is kept after it, so
 * a delete or an overwrite takes the old pair out without hashing it again.
 */
static uint64_t pair_put(uint8_t *mem, const uint8_t *key, uint32_t key_len, const uint8_t *value,
			 uint32_t value_len)
{
	uint8_t out[crypto_shorthash_BYTES];
	size_t n = (size_t)key_len + value_len;

	memcpy(mem, key, key_len);
	if (value_len)
		memcpy(mem + key_len, value, value_len);
	wr32(mem + n, key_len);
	crypto_shorthash(out, mem, n + 4, digest_key);
	uint64_t h = 0;
	for (int i = crypto_shorthash_BYTES - 1; i >= 0; i--)
		h = h << 8 | out[i];
	memcpy(mem + n + 4, &h, 8);
	return h;
}

/* The term of a live slot's pair, kept by pair_put(). */
static uint64_t pair_term(const struct slot *s)
{
	uint64_t h;
	memcpy(&h, s->key + s->key_len + s->value_len + 4, 8);
	return h;
}

struct lcr_kv *lcr_kv_new(void)
{
	/* The digest's SipHash needs none of sodium_init()'s set-up, but
	 * libsodium asks for the call before any other (it may be repeated). */
	if (sodium_init() < 0)
		return NULL;
	struct lcr_kv *kv = calloc(1, sizeof(*kv));
	if (!kv)
		return NULL;
	kv->cap = 1024;
	kv->slots = calloc(kv->cap, sizeof(*kv->slots));
	kv->sessions = calloc(SESSIONS, sizeof(*kv->sessions));
	if (!kv->slots || !kv->sessions) {
		lcr_kv_free(kv);
		return NULL;
	}
	return kv;
}

static void kv_snap_free(struct lcr_kv *kv);

void lcr_kv_free(struct lcr_kv *kv)
{
	if (!kv)
		return;
	kv_snap_free(kv);
	for (uint64_t i = 0; kv->slots && i < kv->cap; i++)
		if (kv->slots[i].hash > 1)
			free(kv->slots[i].key);
	free(kv->slots);
	free(kv->sessions);
	free(kv);
}

static struct slot *find(const struct lcr_kv *kv, uint64_t h, const void *key, uint32_t key_len)
{
	for (uint64_t i = h & (kv->cap - 1);; i = (i + 1) & (kv->cap - 1)) {
		struct slot *s = &kv->slots[i];
		if (s->hash == 0)
			return NULL;
		if (s->hash == h && s->key_len == key_len && memcmp(s->key, key, key_len) == 0)
			return s;
	}
}

static bool grow(struct lcr_kv *kv)
{
	uint64_t ncap = kv->st.keys * 4 > kv->cap ? kv->cap * 2 : kv->cap; /* else: rehash */
	struct slot *ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return false;
	for (uint64_t i = 0; i < kv->cap; i++) {
		struct slot *s = &kv->slots[i];
		if (s->hash < 2)
			continue;
		uint64_t k = s->hash & (ncap - 1);
		while (ns[k].hash)
			k = (k + 1) & (ncap - 1);
		ns[k] = *s;
	}
	free(kv->slots);
	kv->slots = ns;
	kv->cap = ncap;
	kv->used = kv->st.keys;
	return true;
}

bool lcr_kv_get(const struct lcr_kv *kv, const void *key, uint32_t key_len, const uint8_t **value,
		uint32_t *value_len)
{
	struct slot *s = find(kv, hash_bytes(key, key_len), key, key_len);
	if (!s)
		return false;
	*value = s->key + s->key_len;
	*value_len = s->value_len;
	return true;
}

/* Set key to value. False only when memory runs out (the replica must stop:
 * it could no longer hold the same state as the others). */
static bool put(struct lcr_kv *kv, const uint8_t *key, uint32_t key_len, const uint8_t *value,
		uint32_t value_len)
{
	uint64_t h = hash_bytes(key, key_len);
	struct slot *s = find(kv, h, key, key_len);
	uint8_t *mem = malloc((size_t)key_len + value_len + PAIR_EXTRA);
	if (!mem)
		return false;
	uint64_t term = pair_put(mem, key, key_len, value, value_len);
	if (s) {
		kv->st.bytes -= s->key_len + s->value_len;
		kv->digest -= pair_term(s);
		release(kv, s->key);
	} else {
		if ((kv->used + 1) * 4 > kv->cap * 3 && !grow(kv)) {
			free(mem);
			return false;
		}
		uint64_t i = h & (kv->cap - 1);
		while (kv->slots[i].hash > 1)
			i = (i + 1) & (kv->cap - 1);
		s = &kv->slots[i];
		if (s->hash == 0)
			kv->used++;
		kv->st.keys++;
	}
	s->hash = h;
	s->key = mem;
	s->key_len = key_len;
	s->value_len = value_len;
	kv->st.bytes += key_len + value_len;
	kv->digest += term;
	return true;
}

static bool del(struct lcr_kv *kv, const uint8_t *key, uint32_t key_len)
{
	struct slot *s = find(kv, hash_bytes(key, key_len), key, key_len);
	if (!s)
		return false;
	kv->st.bytes -= s->key_len + s->value_len;
	kv->st.keys--;
	kv->digest -= pair_term(s);
	release(kv, s->key);
	s->key = NULL;
	s->hash = 1;
	return true;
}

/* A write's flags become its command's unchanged (THIS_NODE goes with
 * SNAPSHOT, never a write). */
static_assert(LCR_KV_EXPECT_VALUE == LCR_CLIENT_F_EXPECT_VALUE, "one EXPECT_VALUE bit");
static_assert(LCR_KV_FLAGS_KNOWN == (LCR_CLIENT_F_KNOWN & ~LCR_CLIENT_F_THIS_NODE),
	      "the same known flags for writes");

size_t lcr_kv_encode(void *buf, size_t cap, const struct lcr_client_req *r)
{
	uint8_t *p = buf;
	uint32_t vl = r->value_len, el = r->expect_len;
	uint8_t flags = r->flags;

	if (r->op != LCR_CLIENT_PUT && r->op != LCR_CLIENT_CAS && r->op != LCR_CLIENT_DELETE)
		return 0;
	if ((flags & ~LCR_KV_FLAGS_KNOWN) || (flags && r->op != LCR_CLIENT_CAS))
		return 0;
	if (r->key_len == 0 || r->key_len > LCR_CLIENT_KEY_MAX || vl > LCR_CLIENT_VALUE_MAX ||
	    el > LCR_CLIENT_VALUE_MAX)
		return 0;
	if (r->op == LCR_CLIENT_DELETE)
		vl = 0;
	if (r->op != LCR_CLIENT_CAS)
		el = 0;
	size_t n = LCR_KV_CMD_HDR + (size_t)r->key_len + vl + el;
	if (n > cap)
		return 0;
	memset(p, 0, LCR_KV_CMD_HDR);
	p[0] = r->op;
	p[1] = flags;
	wr32(p + 4, r->key_len);
	wr32(p + 8, vl);
	wr32(p + 12, el);
	wr64(p + 16, r->client);
	wr64(p + 24, r->id);
	memcpy(p + LCR_KV_CMD_HDR, r->key, r->key_len);
	if (vl)
		memcpy(p + LCR_KV_CMD_HDR + r->key_len, r->value, vl);
	if (el)
		memcpy(p + LCR_KV_CMD_HDR + r->key_len + vl, r->expect, el);
	return n;
}

static struct session *session_of(struct lcr_kv *kv, uint64_t client)
{
	/* A small set-associative table: 8 ways per client hash; the least
	 * recently used way is replaced. Deterministic, so every replica
	 * forgets the same clients. */
	uint64_t h = hash_bytes(&client, 8);
	struct session *set = &kv->sessions[(h % (SESSIONS / 8)) * 8], *victim = &set[0];
	for (int i = 0; i < 8; i++) {
		if (set[i].client == client)
			return &set[i];
		if (set[i].used < victim->used)
			victim = &set[i];
	}
	if (victim->client == 0)
		kv->st.sessions++;
	memset(victim, 0, sizeof(*victim));
	victim->client = client;
	return victim;
}

/* A result that is ERROR, with why (enum lcr_kv_error). */
static void result_error(uint8_t *out, uint32_t *out_len, uint8_t why)
{
	out[0] = LCR_CLIENT_ERROR;
	out[1] = why;
	*out_len = 2;
}

/* Whether CAS finds what it expects: see kv.h for the meaning of the flag. */
static bool cas_matches(const struct lcr_kv *kv, const uint8_t *key, uint32_t kl,
			const uint8_t *expect, uint32_t el, uint8_t flags, bool *found)
{
	const uint8_t *cur;
	uint32_t cl;

	*found = lcr_kv_get(kv, key, kl, &cur, &cl);
	if (el == 0 && !(flags & LCR_KV_EXPECT_VALUE))
		return !*found;
	return *found && cl == el && memcmp(cur, expect, el) == 0;
}

void lcr_kv_apply(void *ctx, const struct lcr_entry *e, void *out, uint32_t *out_len)
{
	struct lcr_kv *kv = ctx;
	const uint8_t *p = e->data;
	uint8_t *res = out, status = LCR_CLIENT_ERROR;

	kv->st.applied++;
	*out_len = 1;
	if (e->len < LCR_KV_CMD_HDR) {
		kv->st.malformed++;
		result_error(res, out_len, LCR_KV_ERR_MALFORMED);
		return;
	}
	uint8_t op = p[0], flags = p[1];
	uint32_t kl = rd32(p + 4), vl = rd32(p + 8), el = rd32(p + 12);
	uint64_t client = rd64(p + 16), id = rd64(p + 24);
	if (kl == 0 || kl > LCR_CLIENT_KEY_MAX || vl > LCR_CLIENT_VALUE_MAX ||
	    el > LCR_CLIENT_VALUE_MAX || (uint64_t)LCR_KV_CMD_HDR + kl + vl + el != e->len ||
	    (op != LCR_CLIENT_PUT && op != LCR_CLIENT_CAS && op != LCR_CLIENT_DELETE) ||
	    (flags & ~LCR_KV_FLAGS_KNOWN) || (flags && op != LCR_CLIENT_CAS)) {
		kv->st.malformed++;
		result_error(res, out_len, LCR_KV_ERR_MALFORMED);
		return;
	}
	const uint8_t *key = p + LCR_KV_CMD_HDR, *value = key + kl, *expect = value + vl;

	/* At most once per request: a retry of the latest one gets its outcome;
	 * an older one than that is stale (the client moved on) and is not
	 * applied: whether an earlier copy of it was is no longer known. */
	struct session *s = client ? session_of(kv, client) : NULL;
	if (s && s->last_id != 0 && id <= s->last_id) {
		s->used = kv->st.applied;
		if (id == s->last_id) {
			kv->st.duplicates++;
			res[0] = s->status;
			return;
		}
		kv->st.stale++;
		result_error(res, out_len, LCR_KV_ERR_STALE);
		wr64(res + 2, s->last_id);
		*out_len = LCR_KV_RESULT_MAX;
		return;
	}
	bool ok = true, found;
	switch (op) {
	case LCR_CLIENT_PUT:
		ok = put(kv, key, kl, value, vl);
		status = LCR_CLIENT_OK;
		kv->st.puts++;
		break;
	case LCR_CLIENT_DELETE:
		status = del(kv, key, kl) ? LCR_CLIENT_OK : LCR_CLIENT_NOT_FOUND;
		kv->st.deletes++;
		break;
	default: /* LCR_CLIENT_CAS */
		if (cas_matches(kv, key, kl, expect, el, flags, &found)) {
			ok = put(kv, key, kl, value, vl);
			status = LCR_CLIENT_OK;
			kv->st.cas_ok++;
		} else {
			status = found ? LCR_CLIENT_CAS_FAILED : LCR_CLIENT_NOT_FOUND;
			kv->st.cas_failed++;
		}
		break;
	}
	if (!ok) {
		/* Out of memory: going on would leave this replica's map
		 * different from the others'. Stop loudly instead. */
		fprintf(stderr, "lcraft-node: out of memory applying entry %llu; stopping\n",
			(unsigned long long)e->id.index);
		abort();
	}
	if (s) {
		s->last_id = id;
		s->status = status;
		s->used = kv->st.applied;
	}
	res[0] = status;
}

void lcr_kv_stats(const struct lcr_kv *kv, struct lcr_kv_stats *st)
{
	*st = kv->st;
}

bool lcr_kv_digest(const struct lcr_kv *kv, uint64_t *digest)
{
	*digest = kv->digest;
	return kv->restore == NULL;
}

/* ---- snapshots (lcr_sm_ops' six hooks) ------------------------------------------ */

/*
 * A snapshot of the store, little-endian:
 *   header   magic "lcrkv001" (8 bytes), then the 11 counters of lcr_kv_stats
 *            in their order (8 bytes each: the sessions' eviction reads
 *            `applied`, so they are state too)
 *   sessions SESSIONS of 32 bytes: client, last request id, status, used
 *   keys     `keys` records: key length (4), value length (4), key, value
 */
#define SNAP_MAGIC    0x313030766b72636cull /* "lcrkv001" */
#define SNAP_COUNTERS 11
#define SNAP_HDR      (8 + 8 * SNAP_COUNTERS)
#define SNAP_SESSION  32
#define SNAP_REC_HDR  8

struct kv_rec {
	const uint8_t *mem; /* key, then value */
	uint32_t key_len, value_len;
};

/* The frozen view: header and sessions copied, the live keys' memory kept. */
struct kv_cursor {
	uint8_t *head; /* header and sessions, serialized at open */
	size_t head_len;
	struct kv_rec *recs;
	uint64_t n_recs;
	uint64_t next; /* the record to emit after the current one */
	size_t pos;    /* bytes of the current piece emitted */
	uint8_t rec_hdr[SNAP_REC_HDR];
	const uint8_t *piece[2]; /* what is left to emit: two pieces */
	size_t piece_len[2];
};

static void counters_put(uint8_t *p, const struct lcr_kv_stats *st)
{
	const uint64_t v[SNAP_COUNTERS] = { st->keys,	st->bytes,	st->applied, st->puts,
					    st->cas_ok, st->cas_failed, st->deletes, st->duplicates,
					    st->stale,	st->malformed,	st->sessions };
	for (int i = 0; i < SNAP_COUNTERS; i++)
		wr64(p + 8 * i, v[i]);
}

static void counters_get(const uint8_t *p, struct lcr_kv_stats *st)
{
	uint64_t *v[SNAP_COUNTERS] = { &st->keys,   &st->bytes,	     &st->applied, &st->puts,
				       &st->cas_ok, &st->cas_failed, &st->deletes, &st->duplicates,
				       &st->stale,  &st->malformed,  &st->sessions };
	for (int i = 0; i < SNAP_COUNTERS; i++)
		*v[i] = rd64(p + 8 * i);
}

static void cursor_free(struct kv_cursor *c)
{
	if (!c)
		return;
	free(c->head);
	free(c->recs);
	free(c);
}

void *lcr_kv_snapshot_open(void *ctx, int *err)
{
	struct lcr_kv *kv = ctx;
	struct kv_cursor *c = calloc(1, sizeof(*c));

	assert(!kv->cursor); /* the runtime builds one at a time */
	if (c) {
		c->head_len = SNAP_HDR + (size_t)SESSIONS * SNAP_SESSION;
		c->head = malloc(c->head_len);
		c->recs = malloc((kv->st.keys ? kv->st.keys : 1) * sizeof(*c->recs));
	}
	if (!c || !c->head || !c->recs) {
		cursor_free(c);
		*err = -ENOMEM;
		return NULL;
	}
	wr64(c->head, SNAP_MAGIC);
	counters_put(c->head + 8, &kv->st);
	for (uint32_t i = 0; i < SESSIONS; i++) {
		uint8_t *p = c->head + SNAP_HDR + (size_t)i * SNAP_SESSION;
		const struct session *se = &kv->sessions[i];
		wr64(p, se->client);
		wr64(p + 8, se->last_id);
		wr64(p + 16, se->status);
		wr64(p + 24, se->used);
	}
	/* The live keys: their memory stays as it is until the cursor closes
	 * (release() keeps what the table lets go of meanwhile). */
	for (uint64_t i = 0; i < kv->cap; i++) {
		const struct slot *sl = &kv->slots[i];
		if (sl->hash < 2)
			continue;
		c->recs[c->n_recs++] = (struct kv_rec){ sl->key, sl->key_len, sl->value_len };
	}
	assert(c->n_recs == kv->st.keys);
	c->piece[0] = c->head;
	c->piece_len[0] = c->head_len;
	kv->cursor = c;
	return c;
}

/* The next record's two pieces (its header, then key and value). */
static bool cursor_next(struct kv_cursor *c)
{
	if (c->next == c->n_recs)
		return false;
	const struct kv_rec *r = &c->recs[c->next++];
	wr32(c->rec_hdr, r->key_len);
	wr32(c->rec_hdr + 4, r->value_len);
	c->piece[0] = c->rec_hdr;
	c->piece_len[0] = SNAP_REC_HDR;
	c->piece[1] = r->mem;
	c->piece_len[1] = (size_t)r->key_len + r->value_len;
	return true;
}

long lcr_kv_snapshot_read(void *ctx, void *cursor, void *buf, size_t cap)
{
	struct kv_cursor *c = cursor;
	uint8_t *out = buf;
	size_t o = 0;

	(void)ctx;
	while (o < cap) {
		if (c->piece_len[0] == 0) {
			c->piece[0] = c->piece[1];
			c->piece_len[0] = c->piece_len[1];
			c->piece_len[1] = 0;
			if (c->piece_len[0] == 0 && !cursor_next(c))
				break;
			continue;
		}
		size_t n = c->piece_len[0] < cap - o ? c->piece_len[0] : cap - o;
		memcpy(out + o, c->piece[0], n);
		c->piece[0] += n;
		c->piece_len[0] -= n;
		o += n;
	}
	return (long)o;
}

void lcr_kv_snapshot_close(void *ctx, void *cursor)
{
	struct lcr_kv *kv = ctx;

	assert(kv->cursor == cursor);
	cursor_free(cursor);
	kv->cursor = NULL;
	for (uint64_t i = 0; i < kv->n_grave; i++)
		free(kv->graveyard[i]);
	kv->n_grave = 0;
}

/* Restoring: the bytes come in pieces of any size; each field is gathered. */
enum { R_HDR, R_SESSION, R_REC_HDR, R_REC, R_DONE };

struct kv_restore {
	int phase;
	uint8_t stage[SNAP_HDR]; /* the header, a session or a record's header */
	uint8_t *dst;		 /* where the field being gathered goes */
	size_t have, need;
	uint32_t session;
	uint64_t keys_left;
	uint32_t key_len, value_len;
	struct lcr_kv_stats st; /* from the header */
};

/* Empty the store (a restore begins): a snapshot cursor open keeps its view. */
static void table_clear(struct lcr_kv *kv)
{
	for (uint64_t i = 0; i < kv->cap; i++)
		if (kv->slots[i].hash > 1)
			release(kv, kv->slots[i].key);
	memset(kv->slots, 0, kv->cap * sizeof(*kv->slots));
	memset(kv->sessions, 0, SESSIONS * sizeof(*kv->sessions));
	kv->used = 0;
	memset(&kv->st, 0, sizeof(kv->st));
	kv->digest = 0;
}

/* A restore given up, or ended mid-record: the record's buffer goes too. */
static void restore_free(struct kv_restore *r)
{
	if (r && r->phase == R_REC)
		free(r->dst);
	free(r);
}

int lcr_kv_restore_begin(void *ctx, const struct lcr_snapshot_meta *meta)
{
	struct lcr_kv *kv = ctx;

	/* A build's cursor may be open (the runtime installs a leader's
	 * snapshot while one of its own is being written): it keeps reading
	 * the state it froze, whose memory table_clear() leaves to it. */
	(void)meta;
	restore_free(kv->restore);
	kv->restore = calloc(1, sizeof(*kv->restore));
	if (!kv->restore)
		return -ENOMEM;
	table_clear(kv);
	kv->restore->phase = R_HDR;
	kv->restore->dst = kv->restore->stage;
	kv->restore->need = SNAP_HDR;
	return 0;
}

static void gather(struct kv_restore *r, uint8_t *dst, size_t need)
{
	r->dst = dst;
	r->have = 0;
	r->need = need;
}

/* A field is complete: use it, and say what comes next. */
static int restore_field(struct lcr_kv *kv, struct kv_restore *r)
{
	switch (r->phase) {
	case R_HDR:
		if (rd64(r->stage) != SNAP_MAGIC)
			return -EBADMSG;
		counters_get(r->stage + 8, &r->st);
		r->keys_left = r->st.keys;
		r->phase = R_SESSION;
		gather(r, r->stage, SNAP_SESSION);
		return 0;
	case R_SESSION: {
		struct session *se = &kv->sessions[r->session++];
		se->client = rd64(r->stage);
		se->last_id = rd64(r->stage + 8);
		se->status = (uint8_t)rd64(r->stage + 16);
		se->used = rd64(r->stage + 24);
		if (r->session < SESSIONS) {
			gather(r, r->stage, SNAP_SESSION);
			return 0;
		}
		break;
	}
	case R_REC_HDR:
		r->key_len = rd32(r->stage);
		r->value_len = rd32(r->stage + 4);
		if (r->key_len == 0 || r->key_len > LCR_CLIENT_KEY_MAX ||
		    r->value_len > LCR_CLIENT_VALUE_MAX)
			return -EBADMSG;
		r->phase = R_REC;
		gather(r, malloc((size_t)r->key_len + r->value_len + 1),
		       (size_t)r->key_len + r->value_len);
		return r->dst ? 0 : -ENOMEM;
	case R_REC: {
		uint8_t *mem = r->dst;
		bool ok = put(kv, mem, r->key_len, mem + r->key_len, r->value_len);
		free(mem);
		r->dst = NULL;
		if (!ok)
			return -ENOMEM;
		r->keys_left--;
		break;
	}
	default:
		return -EBADMSG; /* bytes after the end */
	}
	if (r->keys_left == 0) {
		r->phase = R_DONE;
		gather(r, r->stage, 1);
		return 0;
	}
	r->phase = R_REC_HDR;
	gather(r, r->stage, SNAP_REC_HDR);
	return 0;
}

int lcr_kv_restore_chunk(void *ctx, const void *data, size_t len)
{
	struct lcr_kv *kv = ctx;
	struct kv_restore *r = kv->restore;
	const uint8_t *p = data;

	if (!r)
		return -EINVAL;
	while (len > 0) {
		if (r->phase == R_DONE)
			return -EBADMSG;
		size_t n = r->need - r->have < len ? r->need - r->have : len;
		memcpy(r->dst + r->have, p, n);
		r->have += n;
		p += n;
		len -= n;
		if (r->have == r->need) {
			int rc = restore_field(kv, r);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int lcr_kv_restore_end(void *ctx)
{
	struct lcr_kv *kv = ctx;
	struct kv_restore *r = kv->restore;

	if (!r)
		return -EINVAL;
	kv->restore = NULL;
	bool complete = r->phase == R_DONE;
	/* The counters are the snapshot's, and put() must have rebuilt the
	 * same keys and bytes. */
	bool same = complete && kv->st.keys == r->st.keys && kv->st.bytes == r->st.bytes;
	if (same)
		kv->st = r->st;
	restore_free(r);
	return same ? 0 : -EBADMSG;
}

static void kv_snap_free(struct lcr_kv *kv)
{
	if (kv->cursor)
		lcr_kv_snapshot_close(kv, kv->cursor);
	free(kv->graveyard);
	restore_free(kv->restore);
}

const struct lcr_sm_ops lcr_kv_ops = {
	.apply = lcr_kv_apply,
	.snapshot_open = lcr_kv_snapshot_open,
	.snapshot_read = lcr_kv_snapshot_read,
	.snapshot_close = lcr_kv_snapshot_close,
	.restore_begin = lcr_kv_restore_begin,
	.restore_chunk = lcr_kv_restore_chunk,
	.restore_end = lcr_kv_restore_end,
};
