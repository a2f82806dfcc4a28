/* SPDX-License-Identifier: MIT */
/* The key-value store's snapshot hooks: a frozen view while applies go on, read and restored in
 * pieces of any size. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv.h"

static uint64_t applied_index;

/* Apply a put (or a delete with value NULL) from client 7, request `id`. */
static void kv_put(struct lcr_kv *kv, uint64_t id, const char *key, const char *value)
{
	uint8_t cmd[LCR_KV_CMD_HDR + 64], out[LCR_KV_RESULT_MAX];
	struct lcr_client_req r = {
		.client = 7,
		.id = id,
		.op = value ? LCR_CLIENT_PUT : LCR_CLIENT_DELETE,
		.key_len = (uint32_t)strlen(key),
		.value_len = value ? (uint32_t)strlen(value) : 0,
		.key = (const uint8_t *)key,
		.value = (const uint8_t *)value,
	};
	size_t n = lcr_kv_encode(cmd, sizeof(cmd), &r);
	assert_true(n > 0);
	struct lcr_entry e = { .type = LCR_ENTRY_NORMAL, .len = (uint32_t)n, .data = cmd };
	e.id.index = ++applied_index;
	uint32_t len = 0;
	lcr_kv_apply(kv, &e, out, &len);
	assert_int_equal(out[0], LCR_CLIENT_OK);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_snapshot_frozen_and_restored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
