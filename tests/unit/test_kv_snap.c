/* SPDX-License-Identifier: MIT */
/* The key-value store's snapshot hooks: a frozen view while applies go on, read and restored in
 * pieces of any size; its digest, kept as it changes, the same after a restore. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "kv.h"

static uint64_t applied_index;

/* Apply a request from client 7 and return its status. */
static uint8_t kv_do(struct lcr_kv *kv, struct lcr_client_req *r)
{
	uint8_t cmd[LCR_KV_CMD_HDR + 128], out[LCR_KV_RESULT_MAX];
	r->client = 7;
	size_t n = lcr_kv_encode(cmd, sizeof(cmd), r);
	assert_true(n > 0);
	struct lcr_entry e = { .type = LCR_ENTRY_NORMAL, .len = (uint32_t)n, .data = cmd };
	e.id.index = ++applied_index;
	uint32_t len = 0;
	lcr_kv_apply(kv, &e, out, &len);
	return out[0];
}

/* Apply a put (or a delete with value NULL) from client 7, request `id`. */
static void kv_put(struct lcr_kv *kv, uint64_t id, const char *key, const char *value)
{
	struct lcr_client_req r = {
		.id = id,
		.op = value ? LCR_CLIENT_PUT : LCR_CLIENT_DELETE,
		.key_len = (uint32_t)strlen(key),
		.value_len = value ? (uint32_t)strlen(value) : 0,
		.key = (const uint8_t *)key,
		.value = (const uint8_t *)value,
	};
	assert_int_equal(kv_do(kv, &r), LCR_CLIENT_OK);
}

/* CAS key from `expect` (NULL: absent) to `value`; its status. */
static uint8_t kv_cas(struct lcr_kv *kv, uint64_t id, const char *key, const char *expect,
		      const char *value)
{
	struct lcr_client_req r = {
		.id = id,
		.op = LCR_CLIENT_CAS,
		.flags = expect ? LCR_KV_EXPECT_VALUE : 0,
		.key_len = (uint32_t)strlen(key),
		.value_len = (uint32_t)strlen(value),
		.expect_len = expect ? (uint32_t)strlen(expect) : 0,
		.key = (const uint8_t *)key,
		.value = (const uint8_t *)value,
		.expect = (const uint8_t *)expect,
	};
	return kv_do(kv, &r);
}

static uint64_t digest_of(const struct lcr_kv *kv)
{
	uint64_t d;
	assert_true(lcr_kv_digest(kv, &d));
	return d;
}

/* One pair's term, from the definition in kv.h alone (not kv.c's code). */
static uint64_t pair_term(const char *key, const char *value)
{
	static const uint8_t k[crypto_shorthash_KEYBYTES] = { 'l', 'c', 'r', 'a', 'f', 't',
							      '-', 'k', 'v', '-', 'd', 'i',
							      'g', 'e', 's', 't' };
	uint8_t msg[256], out[crypto_shorthash_BYTES];
	size_t kl = strlen(key), vl = strlen(value);
	memcpy(msg, key, kl);
	memcpy(msg + kl, value, vl);
	for (int i = 0; i < 4; i++)
		msg[kl + vl + (size_t)i] = (uint8_t)(kl >> (8 * i));
	crypto_shorthash(out, msg, kl + vl + 4, k);
	uint64_t h = 0;
	for (int i = 7; i >= 0; i--)
		h = h << 8 | out[i];
	return h;
}

static bool has(const struct lcr_kv *kv, const char *key, const char *value)
{
	const uint8_t *v;
	uint32_t vl;
	if (!lcr_kv_get(kv, key, (uint32_t)strlen(key), &v, &vl))
		return value == NULL;
	return value && vl == strlen(value) && memcmp(v, value, vl) == 0;
}

/* The whole snapshot, read with the given piece sizes in turn. */
static uint8_t *read_all(struct lcr_kv *kv, void *cur, const size_t *caps, size_t n_caps,
			 size_t *len)
{
	size_t cap = 1 << 20, o = 0;
	uint8_t *buf = malloc(cap);
	for (size_t i = 0;; i++) {
		size_t want = caps[i % n_caps];
		if (o + want > cap)
			buf = realloc(buf, cap *= 2);
		long got = lcr_kv_snapshot_read(kv, cur, buf + o, want);
		assert_true(got >= 0 && (size_t)got <= want);
		if (got == 0)
			break;
		o += (size_t)got;
	}
	*len = o;
	return buf;
}

static void test_kv_snapshot_frozen_and_restored(void **state)
{
	(void)state;
	struct lcr_kv *kv = lcr_kv_new(), *copy = lcr_kv_new();
	char key[32], value[32];
	uint64_t id = 0;

	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(value, sizeof(value), "v%d", i * 3);
		kv_put(kv, ++id, key, value);
	}
	kv_put(kv, ++id, "k17", NULL);
	int err = 0;
	void *cur = lcr_kv_snapshot_open(kv, &err);
	assert_non_null(cur);
	/* Applies after the freeze: replaced, deleted and new keys. */
	kv_put(kv, ++id, "k1", "changed");
	kv_put(kv, ++id, "k2", NULL);
	kv_put(kv, ++id, "new", "x");
	const size_t caps[] = { 1, 7, 4096, 3, 100000 };
	size_t len;
	uint8_t *snap = read_all(kv, cur, caps, 5, &len);
	lcr_kv_snapshot_close(kv, cur);

	struct lcr_snapshot_meta meta = { .last = { { 1, 1 }, applied_index } };
	assert_int_equal(lcr_kv_restore_begin(copy, &meta), 0);
	for (size_t o = 0, k = 0; o < len; k++) {
		size_t n = caps[k % 5] < len - o ? caps[k % 5] : len - o;
		assert_int_equal(lcr_kv_restore_chunk(copy, snap + o, n), 0);
		o += n;
	}
	assert_int_equal(lcr_kv_restore_end(copy), 0);
	struct lcr_kv_stats a, b;
	lcr_kv_stats(copy, &b);
	assert_int_equal(b.keys, 4999);
	assert_true(has(copy, "k1", "v3"));
	assert_true(has(copy, "k2", "v6"));
	assert_true(has(copy, "k17", NULL));
	assert_true(has(copy, "new", NULL));
	assert_true(has(copy, "k4999", "v14997"));
	/* The counters are the frozen state's (sessions evict by `applied`). */
	lcr_kv_stats(kv, &a);
	assert_int_equal(b.applied, a.applied - 3);

	/* A damaged snapshot is refused. */
	struct lcr_kv *bad = lcr_kv_new();
	snap[len / 2] ^= 0xff;
	snap[0] ^= 0xff;
	assert_int_equal(lcr_kv_restore_begin(bad, &meta), 0);
	int rc = lcr_kv_restore_chunk(bad, snap, len);
	if (rc == 0)
		rc = lcr_kv_restore_end(bad);
	assert_int_equal(rc, -EBADMSG);
	/* A short one too. */
	snap[0] ^= 0xff;
	snap[len / 2] ^= 0xff;
	assert_int_equal(lcr_kv_restore_begin(bad, &meta), 0);
	assert_int_equal(lcr_kv_restore_chunk(bad, snap, len - 5), 0);
	assert_int_equal(lcr_kv_restore_end(bad), -EBADMSG);
	free(snap);
	lcr_kv_free(bad);
	lcr_kv_free(kv);
	lcr_kv_free(copy);
}

/*
 * The digest follows every change: after overwrites, deletes and CASes it is
 * the definition's sum over what the store holds, and that of a store built
 * afresh with the same pairs in another order; a snapshot restored (taken
 * while writes go on) has the digest of the frozen state, and applying the
 * same later entries to the restored copy brings it to the original's.
 */
static void test_kv_digest_follows_changes_and_restore(void **state)
{
	(void)state;
	struct lcr_kv *kv = lcr_kv_new(), *fresh = lcr_kv_new(), *copy = lcr_kv_new();
	char key[32], value[32];
	uint64_t id = 0, fid = 0;

	assert_int_equal(digest_of(kv), 0);
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(value, sizeof(value), "v%d", i);
		kv_put(kv, ++id, key, value);
	}
	/* Overwrites (one to an empty value), deletes, CASes that do and do not apply. */
	for (int i = 0; i < 2000; i += 3) {
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(value, sizeof(value), "w%d", i);
		kv_put(kv, ++id, key, i % 2 ? value : "");
	}
	for (int i = 1; i < 2000; i += 7) {
		snprintf(key, sizeof(key), "k%d", i);
		kv_put(kv, ++id, key, NULL);
	}
	assert_int_equal(kv_cas(kv, ++id, "k2", "v2", "cas2"), LCR_CLIENT_OK);
	assert_int_equal(kv_cas(kv, ++id, "k4", "nope", "x"), LCR_CLIENT_CAS_FAILED);
	assert_int_equal(kv_cas(kv, ++id, "new", NULL, "n"), LCR_CLIENT_OK);
	assert_int_equal(kv_cas(kv, ++id, "k1", NULL, "back"), LCR_CLIENT_OK); /* was deleted */

	/* The definition, pair by pair, and a store written in the opposite order. */
	uint64_t sum = 0;
	for (int i = 1999; i >= -2; i--) {
		const char *k = key;
		if (i >= 0)
			snprintf(key, sizeof(key), "k%d", i);
		else
			k = i == -1 ? "new" : "k1";
		const uint8_t *v;
		uint32_t vl;
		if (i == 1 || !lcr_kv_get(kv, k, (uint32_t)strlen(k), &v, &vl))
			continue;
		snprintf(value, sizeof(value), "%.*s", (int)vl, (const char *)v);
		sum += pair_term(k, value);
		kv_put(fresh, ++fid, k, value);
	}
	struct lcr_kv_stats a, b;
	lcr_kv_stats(kv, &a);
	lcr_kv_stats(fresh, &b);
	assert_int_equal(a.keys, b.keys);
	assert_int_equal(digest_of(kv), sum);
	assert_int_equal(digest_of(fresh), sum);
	/* One value changed is seen; changed back, the digest is as before. */
	kv_put(fresh, ++fid, "k5", "v5!");
	assert_int_not_equal(digest_of(fresh), sum);
	kv_put(fresh, ++fid, "k5", "v5");
	assert_int_equal(digest_of(fresh), sum);
	/* The key's length is hashed: moving a byte from key to value changes it. */
	assert_int_not_equal(pair_term("ab", "c"), pair_term("a", "bc"));
	/* The example of docs/wire-protocol.md ("The STATS answer"). */
	struct lcr_kv *one = lcr_kv_new();
	kv_put(one, 1, "ab", "c");
	assert_int_equal(digest_of(one), 0xc102a6c9b4d432a4ull);
	lcr_kv_free(one);

	/* Snapshot while writes go on: the restored copy has the frozen digest. */
	int err = 0;
	void *cur = lcr_kv_snapshot_open(kv, &err);
	assert_non_null(cur);
	uint64_t frozen = digest_of(kv);
	kv_put(kv, ++id, "k3", "after");
	kv_put(kv, ++id, "k6", NULL);
	kv_put(kv, ++id, "later", "x");
	const size_t caps[] = { 5, 4096, 1 };
	size_t len;
	uint8_t *snap = read_all(kv, cur, caps, 3, &len);
	lcr_kv_snapshot_close(kv, cur);
	struct lcr_snapshot_meta meta = { .last = { { 1, 1 }, applied_index } };
	assert_int_equal(lcr_kv_restore_begin(copy, &meta), 0);
	uint64_t d;
	assert_false(lcr_kv_digest(copy, &d)); /* mid-restore: no digest */
	assert_int_equal(lcr_kv_restore_chunk(copy, snap, len / 2), 0);
	assert_false(lcr_kv_digest(copy, &d));
	assert_int_equal(lcr_kv_restore_chunk(copy, snap + len / 2, len - len / 2), 0);
	assert_int_equal(lcr_kv_restore_end(copy), 0);
	assert_int_equal(digest_of(copy), frozen);
	assert_int_equal(digest_of(copy), sum);
	/* The same entries after it: the same digest as the original. */
	kv_put(copy, ++id, "k3", "after");
	kv_put(copy, ++id, "k6", NULL);
	kv_put(copy, ++id, "later", "x");
	assert_int_equal(digest_of(copy), digest_of(kv));
	assert_int_not_equal(digest_of(copy), frozen);
	/* Restoring over a store that held something else replaces its digest. */
	assert_int_equal(lcr_kv_restore_begin(fresh, &meta), 0);
	assert_int_equal(lcr_kv_restore_chunk(fresh, snap, len), 0);
	assert_int_equal(lcr_kv_restore_end(fresh), 0);
	assert_int_equal(digest_of(fresh), frozen);

	/* A restore while a cursor of the same store is open (a leader's
	 * snapshot installed during a build): the cursor reads what it froze. */
	cur = lcr_kv_snapshot_open(copy, &err);
	assert_non_null(cur);
	assert_int_equal(lcr_kv_restore_begin(copy, &meta), 0);
	assert_int_equal(lcr_kv_restore_chunk(copy, snap, len), 0);
	assert_int_equal(lcr_kv_restore_end(copy), 0);
	assert_int_equal(digest_of(copy), frozen);
	size_t len2;
	uint8_t *snap2 = read_all(copy, cur, caps, 3, &len2);
	lcr_kv_snapshot_close(copy, cur);
	assert_int_equal(lcr_kv_restore_begin(fresh, &meta), 0);
	assert_int_equal(lcr_kv_restore_chunk(fresh, snap2, len2), 0);
	assert_int_equal(lcr_kv_restore_end(fresh), 0);
	assert_int_equal(digest_of(fresh), digest_of(kv)); /* the state before the restore */
	free(snap2);
	free(snap);
	lcr_kv_free(kv);
	lcr_kv_free(fresh);
	lcr_kv_free(copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_snapshot_frozen_and_restored),
		cmocka_unit_test(test_kv_digest_follows_changes_and_restore),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
