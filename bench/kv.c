/* SPDX-License-Identifier: MIT */
/* The replicated key-value state machine (kv.h). */
#include "kv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Open addressing with linear probing; tombstones keep probe chains intact. */
struct slot {
	uint64_t hash; /* 0: empty, 1: deleted */
	uint8_t *key;  /* key, then value, one allocation */
	uint32_t key_len, value_len;
};

struct session {
	uint64_t client; /* 0: empty */
	uint64_t last_id;
	uint8_t status;
	uint64_t used; /* apply counter at its last request, for eviction */
};

#define SESSIONS 8192 /* clients remembered; the least recently active goes */

struct lcr_kv {
	struct slot *slots;
	uint64_t cap, used; /* used counts tombstones too */
	struct session *sessions;
	struct lcr_kv_stats st;
};

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

struct lcr_kv *lcr_kv_new(void)
{
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

void lcr_kv_free(struct lcr_kv *kv)
{
	if (!kv)
		return;
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
	uint8_t *mem = malloc((size_t)key_len + value_len + 1);
	if (!mem)
		return false;
	memcpy(mem, key, key_len);
	if (value_len)
		memcpy(mem + key_len, value, value_len);
	if (s) {
		kv->st.bytes -= s->key_len + s->value_len;
		free(s->key);
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
	return true;
}

static bool del(struct lcr_kv *kv, const uint8_t *key, uint32_t key_len)
{
	struct slot *s = find(kv, hash_bytes(key, key_len), key, key_len);
	if (!s)
		return false;
	kv->st.bytes -= s->key_len + s->value_len;
	kv->st.keys--;
	free(s->key);
	s->key = NULL;
	s->hash = 1;
	return true;
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

/* A request's flags become its command's unchanged. */
static_assert(LCR_KV_EXPECT_VALUE == LCR_CLIENT_F_EXPECT_VALUE, "one EXPECT_VALUE bit");
static_assert(LCR_KV_FLAGS_KNOWN == LCR_CLIENT_F_KNOWN, "the same known flags");

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
