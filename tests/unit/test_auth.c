/* SPDX-License-Identifier: MIT */
/*
 * Authenticated datagrams (dpdk-net/auth.c), for both algorithms: the
 * documented test vector (docs/wire-protocol.md, "Authentication"), round
 * trips, every single flipped bit of a datagram and of its trailer refused,
 * short and cut datagrams, old boots, replayed counters and the edges of the
 * replay window (against a model, in random orders), forged boots bounded to
 * one derivation each and no memory, wrong key, cluster, channel or
 * algorithm, eviction of the least recently heard sender, a boot reused in
 * one process refused; thousands of senders found through the index and
 * evicted as a least-recently-heard model says; a context sealed by four
 * threads at once; a tag bound to a value not sent; key files. With --bench: ns per datagram,
 * sealed and opened, at 64, 1,472 and 8,972 bytes, and other MACs of libsodium beside them;
 * a 96-byte request opened at a client port holding 1 to 8,192 clients, each from the next.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "auth.h"

#define CLUSTER 0x0102030405060708ull

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Senders never used before in this process: a context per test, each with its own boots. */
static uint64_t sender_seq = 1000;

static uint64_t fresh_sender(void)
{
	return ++sender_seq;
}

static struct lcr_auth_key key_of(uint32_t alg, uint8_t fill)
{
	struct lcr_auth_key k = { .alg = alg, .cluster = CLUSTER };
	for (int i = 0; i < LCR_AUTH_KEY_BYTES; i++)
		k.key[i] = (uint8_t)(fill + i);
	return k;
}

/* The algorithm a test runs with (its prestate); aes256gcm skips without AES-NI. */
static uint32_t alg_of(void **state)
{
	uint32_t alg = (uint32_t)(uintptr_t)*state;
	char why[256];
	int rc = lcr_auth_usable(alg, why, sizeof(why));
	if (rc == -ENOTSUP) {
		print_message("skipped: %s\n", why);
		skip();
	}
	assert_int_equal(rc, 0);
	return alg;
}

/* A datagram of `len` random bytes sealed by t into buf (room for the trailer). */
static size_t sealed(struct lcr_auth_tx *t, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)next();
	return lcr_auth_seal(t, buf, len);
}

static struct lcr_auth_rx *rx_new(const struct lcr_auth_key *k, uint32_t channel, uint32_t max)
{
	static struct lcr_auth_rx rx[4];
	static uint32_t n;
	struct lcr_auth_rx *r = &rx[n++ % 4];
	assert_int_equal(lcr_auth_rx_init(r, k, channel, max, NULL), 0);
	return r;
}

/* The vector of docs/wire-protocol.md, computed there with Python's cryptography package:
 * key 00 01 .. 1f, cluster 0x0102030405060708, sender 2, boot 3, channel 1, "datagram". */
static void test_auth_vector(void **state)
{
	uint32_t alg = alg_of(state);
	static const char *want[LCR_AUTH_ALG_MAX] = {
		[LCR_AUTH_AES256GCM] = "675d7251a70ef7276dd98b386994f5d9",
		[LCR_AUTH_CHACHA20POLY1305] = "75145997a72e92fa02ffb5849f3dddc1",
	};
	static const uint8_t head[16] = { 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0 };
	struct lcr_auth_key k = { .alg = alg, .cluster = CLUSTER };
	struct lcr_auth_tx t;
	uint8_t buf[8 + LCR_AUTH_TRAILER] = "datagram";
	char hex[2 * LCR_AUTH_TAG_BYTES + 1];

	for (int i = 0; i < LCR_AUTH_KEY_BYTES; i++)
		k.key[i] = (uint8_t)i;
	assert_int_equal(lcr_auth_tx_init(&t, &k, 2, 3, 1), 0);
	size_t len = lcr_auth_seal(&t, buf, 8);
	assert_int_equal(len, 8 + LCR_AUTH_TRAILER);
	assert_memory_equal(buf + 8, head, 16);
	for (int i = 0; i < LCR_AUTH_TAG_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", buf[24 + i]);
	print_message("%s: tag %s\n", lcr_auth_alg_name(alg), hex);
	assert_string_equal(hex, want[alg]);
	struct lcr_auth_rx *r = rx_new(&k, 1, 4);
	assert_int_equal(lcr_auth_open(r, 2, buf, len), LCR_AUTH_OK);
	lcr_auth_tx_wipe(&t);
	lcr_auth_rx_free(r);
}

static void test_auth_round_trip(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 7);
	struct lcr_auth_tx t;
	uint64_t s = fresh_sender();
	static uint8_t buf[9000 + LCR_AUTH_TRAILER];

	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 1, 0), 0);
	struct lcr_auth_rx *r = rx_new(&k, 0, 8);
	static const size_t lens[] = { 0, 1, 15, 16, 17, 56, 64, 1440, 1472, 8968 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = sealed(&t, buf, lens[i]);
		assert_int_equal(len, lens[i] + LCR_AUTH_TRAILER);
		assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_OK);
	}
	assert_int_equal(r->st.accepted, 10);
	assert_int_equal(r->st.derivations, 1);
	assert_int_equal(t.counter, 10);
	/* The same bytes sealed twice are two datagrams (a retransmission). */
	uint8_t a[64 + LCR_AUTH_TRAILER], b[64 + LCR_AUTH_TRAILER];
	memset(a, 5, 64);
	memset(b, 5, 64);
	lcr_auth_seal(&t, a, 64);
	lcr_auth_seal(&t, b, 64);
	assert_memory_not_equal(a + 64, b + 64, LCR_AUTH_TRAILER);
	assert_int_equal(lcr_auth_open(r, s, b, sizeof(b)), LCR_AUTH_OK);
	assert_int_equal(lcr_auth_open(r, s, a, sizeof(a)), LCR_AUTH_OK);
	lcr_auth_tx_wipe(&t);
	lcr_auth_rx_free(r);
}

/* Every bit of a datagram, its boot, its counter and its tag, flipped one at a time. */
static void test_auth_every_bit_flip_refused(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 9);
	struct lcr_auth_tx t;
	uint64_t s = fresh_sender();
	uint8_t buf[120 + LCR_AUTH_TRAILER], keep[sizeof(buf)];
	uint32_t why[LCR_AUTH_DROP_MAX] = { 0 };

	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 1000, 0), 0);
	struct lcr_auth_rx *r = rx_new(&k, 0, 8);
	size_t len = sealed(&t, buf, 120);
	assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_OK);
	for (size_t bit = 0; bit < 8 * len; bit++) {
		len = sealed(&t, buf, 120);
		memcpy(keep, buf, len);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		uint32_t rc = lcr_auth_open(r, s, buf, len);
		if (rc == LCR_AUTH_OK)
			fail_msg("bit %zu flipped: accepted", bit);
		why[rc]++;
		/* Boot flips below 1000 are old; every other is a bad tag. */
		size_t byte = bit / 8;
		if (byte >= 120 && byte < 128)
			assert_int_equal(rc, (keep[byte] >> (bit % 8)) & 1 ? LCR_AUTH_OLD_BOOT
									   : LCR_AUTH_BAD_MAC);
		else
			assert_int_equal(rc, LCR_AUTH_BAD_MAC);
		/* Nothing changed: the datagram as sent still goes through. */
		assert_int_equal(lcr_auth_open(r, s, keep, len), LCR_AUTH_OK);
	}
	print_message("%zu flips: %u bad_mac, %u old_boot; %llu derivations\n", 8 * len,
		      why[LCR_AUTH_BAD_MAC], why[LCR_AUTH_OLD_BOOT],
		      (unsigned long long)r->st.derivations);
	assert_int_equal(r->st.boot_switches, 0);
	assert_int_equal(r->n_peers, 1);
	lcr_auth_tx_wipe(&t);
	lcr_auth_rx_free(r);
}

static void test_auth_short_and_cut(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 11);
	struct lcr_auth_tx t;
	uint64_t s = fresh_sender();
	uint8_t buf[200 + LCR_AUTH_TRAILER + 8];

	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 5, 0), 0);
	struct lcr_auth_rx *r = rx_new(&k, 0, 8);
	size_t len = sealed(&t, buf, 200);
	for (size_t n = 0; n < LCR_AUTH_TRAILER; n++)
		assert_int_equal(lcr_auth_open(r, s, buf, n), LCR_AUTH_SHORT);
	/* Cut anywhere (or lengthened): what is read as the trailer is not. */
	for (size_t n = LCR_AUTH_TRAILER; n < len; n++)
		assert_int_not_equal(lcr_auth_open(r, s, buf, n), LCR_AUTH_OK);
	buf[len] = 0;
	assert_int_not_equal(lcr_auth_open(r, s, buf, len + 1), LCR_AUTH_OK);
	assert_int_equal(r->st.accepted, 0);
	assert_int_equal(r->n_peers, 0);
	assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_OK);
	assert_int_equal(r->st.drops[LCR_AUTH_SHORT], LCR_AUTH_TRAILER);
	lcr_auth_tx_wipe(&t);
	lcr_auth_rx_free(r);
}

/* A sender's boots: a newer one takes over, an older one is refused before its tag is read. */
static void test_auth_old_boot(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 13);
	struct lcr_auth_tx b4, b5, b6;
	uint64_t s = fresh_sender();
	uint8_t d4[80], d5[80], d5b[80], d6[80];

	assert_int_equal(lcr_auth_tx_init(&b4, &k, s, 4, 0), 0);
	assert_int_equal(lcr_auth_tx_init(&b5, &k, s, 5, 0), 0);
	assert_int_equal(lcr_auth_tx_init(&b6, &k, s, 6, 0), 0);
	struct lcr_auth_rx *r = rx_new(&k, 0, 8);
	size_t l4 = sealed(&b4, d4, 40), l5 = sealed(&b5, d5, 40), l5b = sealed(&b5, d5b, 40);
	size_t l6 = sealed(&b6, d6, 40);
	assert_int_equal(lcr_auth_open(r, s, d5, l5), LCR_AUTH_OK);
	uint64_t der = r->st.derivations;
	assert_int_equal(lcr_auth_open(r, s, d4, l4), LCR_AUTH_OLD_BOOT);
	assert_int_equal(r->st.derivations, der); /* refused before any work */
	assert_int_equal(lcr_auth_open(r, s, d6, l6), LCR_AUTH_OK);
	assert_int_equal(r->st.boot_switches, 1);
	/* A datagram of boot 5 sealed before the switch, never seen: refused now. */
	assert_int_equal(lcr_auth_open(r, s, d5b, l5b), LCR_AUTH_OLD_BOOT);
	assert_int_equal(lcr_auth_open(r, s, d4, l4), LCR_AUTH_OLD_BOOT);
	assert_int_equal(r->st.drops[LCR_AUTH_OLD_BOOT], 3);
	/* Boot 6's counters start at 1, like boot 5's did: no clash. */
	assert_int_equal(b6.counter, 1);
	l6 = sealed(&b6, d6, 40);
	assert_int_equal(lcr_auth_open(r, s, d6, l6), LCR_AUTH_OK);
	lcr_auth_tx_wipe(&b4);
	lcr_auth_tx_wipe(&b5);
	lcr_auth_tx_wipe(&b6);
	lcr_auth_rx_free(r);
}

#define BANK	 6000
#define BANK_LEN 24

static uint8_t bank[BANK + 1][BANK_LEN + LCR_AUTH_TRAILER];

/* Datagrams of one sender with counters 1..BANK, bank[c]. */
static void fill_bank(struct lcr_auth_tx *t)
{
	for (uint64_t c = 1; c <= BANK; c++) {
		sealed(t, bank[c], BANK_LEN);
		assert_int_equal(t->counter, c);
	}
}

static uint32_t open_c(struct lcr_auth_rx *r, uint64_t s, uint64_t c)
{
	return lcr_auth_open(r, s, bank[c], sizeof(bank[c]));
}

/* Replays and the window's edges: LCR_AUTH_WINDOW counters below the highest. */
static void test_auth_replay_window_edges(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 15);
	struct lcr_auth_tx t;
	uint64_t s = fresh_sender();
	const uint64_t W = LCR_AUTH_WINDOW;

	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 1, 0), 0);
	fill_bank(&t);
	struct lcr_auth_rx *r = rx_new(&k, 0, 8);
	assert_int_equal(open_c(r, s, 1), LCR_AUTH_OK);
	assert_int_equal(open_c(r, s, 1), LCR_AUTH_REPLAYED);
	assert_int_equal(open_c(r, s, 2000), LCR_AUTH_OK);
	/* The oldest counter the window holds, and the one just past it. */
	assert_int_equal(open_c(r, s, 2000 - (W - 1)), LCR_AUTH_OK);
	assert_int_equal(open_c(r, s, 2000 - (W - 1)), LCR_AUTH_REPLAYED);
	assert_int_equal(open_c(r, s, 2000 - W), LCR_AUTH_REPLAYED);
	assert_int_equal(open_c(r, s, 2), LCR_AUTH_REPLAYED);
	/* Late but inside: once. */
	assert_int_equal(open_c(r, s, 1999), LCR_AUTH_OK);
	assert_int_equal(open_c(r, s, 1999), LCR_AUTH_REPLAYED);
	assert_int_equal(open_c(r, s, 2000), LCR_AUTH_REPLAYED);
	/* One ahead, then a jump of more than the whole ring: every bit fresh. */
	assert_int_equal(open_c(r, s, 2001), LCR_AUTH_OK);
	assert_int_equal(open_c(r, s, 2001 + W + 200), LCR_AUTH_OK);
	assert_int_equal(open_c(r, s, 2001 + 200 + 1), LCR_AUTH_OK);
	assert_int_equal(open_c(r, s, 2001 + 200), LCR_AUTH_REPLAYED);
	assert_int_equal(open_c(r, s, 2001), LCR_AUTH_REPLAYED);
	/* A jump of exactly one word, and of one counter within the same word. */
	uint64_t top = 2001 + W + 200;
	assert_int_equal(open_c(r, s, top + 64), LCR_AUTH_OK);
	assert_int_equal(open_c(r, s, top + 65), LCR_AUTH_OK);
	assert_int_equal(open_c(r, s, top + 65 - (W - 1)), LCR_AUTH_OK);
	assert_int_equal(open_c(r, s, top + 65 - W), LCR_AUTH_REPLAYED);
	assert_int_equal(open_c(r, s, top), LCR_AUTH_REPLAYED);
	/* After a jump past the ring, every counter of the window is fresh,
	 * whatever the words held before. */
	uint64_t far = top + 65 + W + 300;
	assert_int_equal(open_c(r, s, far), LCR_AUTH_OK);
	for (uint64_t c = far - (W - 1); c < far; c++)
		assert_int_equal(open_c(r, s, c), LCR_AUTH_OK);
	for (uint64_t c = far - (W - 1); c <= far; c++)
		assert_int_equal(open_c(r, s, c), LCR_AUTH_REPLAYED);
	assert_int_equal(r->st.drops[LCR_AUTH_BAD_MAC], 0);
	lcr_auth_tx_wipe(&t);
	lcr_auth_rx_free(r);
}

/* Random orders against a model: taken once exactly when above top - W, never twice. */
static void test_auth_replay_window_model(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 17);
	struct lcr_auth_tx t;
	uint64_t s = fresh_sender();
	static bool seen[BANK + 1];
	uint64_t taken = 0, refused = 0;

	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 1, 0), 0);
	fill_bank(&t);
	for (int round = 0; round < 4; round++) {
		struct lcr_auth_rx *r = rx_new(&k, 0, 8);
		memset(seen, 0, sizeof(seen));
		uint64_t top = 0;
		/* Mostly forward with reordering of up to `spread`, duplicates, old ones. */
		uint64_t spread = round == 0 ? 8 : round == 1 ? 900 : round == 2 ? 1100 : 3000;
		for (uint64_t base = 1; base < BANK - spread; base += 3) {
			uint64_t c = base + next() % spread;
			if (next() % 8 == 0)
				c = 1 + next() % base; /* an old one, or a replay */
			bool want = !seen[c] && (c > top || top - c < LCR_AUTH_WINDOW);
			uint32_t rc = open_c(r, s, c);
			if (rc != (want ? LCR_AUTH_OK : LCR_AUTH_REPLAYED))
				fail_msg("round %d: counter %llu, top %llu: %u", round,
					 (unsigned long long)c, (unsigned long long)top, rc);
			if (want) {
				seen[c] = true;
				top = c > top ? c : top;
				taken++;
			} else
				refused++;
		}
		lcr_auth_rx_free(r);
	}
	print_message("%llu taken, %llu refused as the model says\n", (unsigned long long)taken,
		      (unsigned long long)refused);
	assert_true(taken > 1000 && refused > 1000);
	lcr_auth_tx_wipe(&t);
}

/*
 * A stranger (another key) forges datagrams of a known sender: new boots
 * cost one derivation each, the same forged boot again none; none takes a
 * place or changes a sender; forged senders take no place.
 */
static void test_auth_forged_boots_bounded(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 19), evil = key_of(alg, 20);
	struct lcr_auth_tx t, f;
	uint64_t s = fresh_sender();
	uint8_t buf[100];

	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 50, 0), 0);
	struct lcr_auth_rx *r = rx_new(&k, 0, 4);
	size_t len = sealed(&t, buf, 60);
	assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_OK);
	uint64_t der = r->st.derivations;
	for (uint64_t b = 51; b < 51 + 500; b++) {
		assert_int_equal(lcr_auth_tx_init(&f, &evil, s, b, 0), 0);
		len = sealed(&f, buf, 60);
		assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_BAD_MAC);
		/* The same forged boot again: the candidate is cached. */
		len = sealed(&f, buf, 60);
		assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_BAD_MAC);
		lcr_auth_tx_wipe(&f);
	}
	assert_int_equal(r->st.derivations - der, 500);
	/* Random boots and tags, any sender: one derivation per datagram at most. */
	for (int i = 0; i < 500; i++) {
		sealed(&t, buf, 60);
		for (int j = 60; j < 92; j++)
			buf[j] = (uint8_t)next();
		uint64_t who = i % 2 ? s : 1 + next() % 100000;
		assert_int_not_equal(lcr_auth_open(r, who, buf, 92), LCR_AUTH_OK);
	}
	assert_true(r->st.derivations - der <= 1000);
	assert_int_equal(r->n_peers, 1);
	assert_int_equal(r->st.boot_switches, 0);
	assert_int_equal(r->peers[0].boot, 50);
	/* The sender goes on as before: its key, its window. */
	len = sealed(&t, buf, 60);
	der = r->st.derivations;
	assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_OK);
	assert_int_equal(r->st.derivations, der);
	print_message("%llu forged datagrams, %llu derivations, 1 sender\n",
		      (unsigned long long)r->st.drops[LCR_AUTH_BAD_MAC],
		      (unsigned long long)r->st.derivations);
	lcr_auth_tx_wipe(&t);
	lcr_auth_rx_free(r);
}

/* Another key, cluster, channel, algorithm or sender: refused. */
static void test_auth_wrong_context(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 21);
	struct lcr_auth_tx t;
	uint64_t s = fresh_sender();
	uint8_t buf[100];

	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 3, 2), 0);
	size_t len = sealed(&t, buf, 60);
	struct lcr_auth_key other = key_of(alg, 22);
	struct lcr_auth_rx *r = rx_new(&other, 2, 4);
	assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_BAD_MAC);
	lcr_auth_rx_free(r);
	other = k;
	other.cluster++;
	r = rx_new(&other, 2, 4);
	assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_BAD_MAC);
	lcr_auth_rx_free(r);
	r = rx_new(&k, 3, 4);
	assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_BAD_MAC);
	lcr_auth_rx_free(r);
	other = k;
	other.alg = alg == LCR_AUTH_AES256GCM ? LCR_AUTH_CHACHA20POLY1305 : LCR_AUTH_AES256GCM;
	char why[256];
	if (lcr_auth_usable(other.alg, why, sizeof(why)) == 0) {
		r = rx_new(&other, 2, 4);
		assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_BAD_MAC);
		lcr_auth_rx_free(r);
	}
	r = rx_new(&k, 2, 4);
	assert_int_equal(lcr_auth_open(r, s + 1, buf, len), LCR_AUTH_BAD_MAC);
	assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_OK);
	lcr_auth_rx_free(r);
	lcr_auth_tx_wipe(&t);
}

/* More senders than places: the least recently heard goes, counted. */
static void test_auth_evicts_least_recent(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 23);
	struct lcr_auth_tx t[3];
	uint64_t s[3];
	uint8_t buf[100];

	for (int i = 0; i < 3; i++) {
		s[i] = fresh_sender();
		assert_int_equal(lcr_auth_tx_init(&t[i], &k, s[i], 1, 0), 0);
	}
	struct lcr_auth_rx *r = rx_new(&k, 0, 2);
	size_t len = sealed(&t[0], buf, 10);
	assert_int_equal(lcr_auth_open(r, s[0], buf, len), LCR_AUTH_OK);
	len = sealed(&t[1], buf, 10);
	assert_int_equal(lcr_auth_open(r, s[1], buf, len), LCR_AUTH_OK);
	len = sealed(&t[0], buf, 10);
	assert_int_equal(lcr_auth_open(r, s[0], buf, len), LCR_AUTH_OK);
	len = sealed(&t[2], buf, 10);
	assert_int_equal(lcr_auth_open(r, s[2], buf, len), LCR_AUTH_OK);
	assert_int_equal(r->st.evicted, 1);
	assert_int_equal(r->n_peers, 2);
	assert_true(r->peers[0].sender == s[0] || r->peers[1].sender == s[0]);
	assert_true(r->peers[0].sender == s[2] || r->peers[1].sender == s[2]);
	for (int i = 0; i < 3; i++)
		lcr_auth_tx_wipe(&t[i]);
	lcr_auth_rx_free(r);
}

/*
 * Many senders, few places (a client port's case): in a random order, each
 * sender's next datagram is taken, and its previous one again is refused as
 * replayed exactly while a least-recently-heard model still holds the sender
 * (then its window is found through the index); a sender the model dropped
 * is taken anew, one eviction each. Then 5,000 senders through 4,096 places,
 * every one of the last 4,096 still found.
 */
#define MANY 200
static void test_auth_many_senders(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 27);
	static struct lcr_auth_tx t[MANY];
	static uint8_t last[MANY][64];
	static size_t last_len[MANY];
	uint64_t s[MANY], model[16], evicted = 0;
	uint32_t n_model = 0;
	uint8_t buf[64];

	for (int i = 0; i < MANY; i++) {
		s[i] = fresh_sender();
		assert_int_equal(lcr_auth_tx_init(&t[i], &k, s[i], 1, 0), 0);
		last_len[i] = 0;
	}
	struct lcr_auth_rx *r = rx_new(&k, 0, 16);
	for (int step = 0; step < 20000; step++) {
		uint32_t i = (uint32_t)(next() % (step < 10000 ? 24 : MANY));
		uint32_t at = n_model;
		for (uint32_t m = 0; m < n_model; m++)
			if (model[m] == s[i])
				at = m;
		if (last_len[i])
			assert_int_equal(lcr_auth_open(r, s[i], last[i], last_len[i]),
					 at < n_model ? LCR_AUTH_REPLAYED : LCR_AUTH_OK);
		if (last_len[i] && at == n_model) {
			/* Forgotten, so the old datagram came through as a first: the
			 * model takes it as heard (and evicts as the receiver did). */
			if (n_model == 16) {
				memmove(model, model + 1, 15 * sizeof(model[0]));
				n_model--;
				evicted++;
			}
			model[n_model++] = s[i];
			at = n_model - 1;
		}
		last_len[i] = sealed(&t[i], last[i], 16);
		memcpy(buf, last[i], last_len[i]);
		assert_int_equal(lcr_auth_open(r, s[i], buf, last_len[i]), LCR_AUTH_OK);
		if (at < n_model) {
			memmove(model + at, model + at + 1, (n_model - at - 1) * sizeof(model[0]));
			n_model--;
		} else if (n_model == 16) {
			memmove(model, model + 1, 15 * sizeof(model[0]));
			n_model--;
			evicted++;
		}
		model[n_model++] = s[i];
		assert_int_equal(r->n_peers, n_model);
		assert_int_equal(r->st.evicted, evicted);
	}
	assert_true(evicted > 1000);
	lcr_auth_rx_free(r);
	for (int i = 0; i < MANY; i++)
		lcr_auth_tx_wipe(&t[i]);

	/* 5,000 senders, 4,096 places; the boot is the sender (one context each). */
	struct lcr_auth_tx one;
	uint64_t base = fresh_sender();
	sender_seq += 5000;
	r = rx_new(&k, 0, 4096);
	for (uint64_t i = 0; i < 5000; i++) {
		assert_int_equal(lcr_auth_tx_init(&one, &k, base + i, 1, 0), 0);
		size_t len = sealed(&one, buf, 16);
		assert_int_equal(lcr_auth_open(r, base + i, buf, len), LCR_AUTH_OK);
		/* The same datagram again: found, and refused. */
		assert_int_equal(lcr_auth_open(r, base + i, buf, len), LCR_AUTH_REPLAYED);
		lcr_auth_tx_wipe(&one);
	}
	assert_int_equal(r->n_peers, 4096);
	assert_int_equal(r->st.evicted, 5000 - 4096);
	for (uint64_t i = 5000 - 4096; i < 5000; i++) {
		struct lcr_auth_peer *p = NULL;
		for (uint32_t m = 0; m < r->n_peers && !p; m++)
			if (r->peers[m].sender == base + i)
				p = &r->peers[m];
		assert_non_null(p);
		assert_int_equal(p->top, 1);
	}
	lcr_auth_rx_free(r);
}

struct shared_arg {
	struct lcr_auth_tx *t;
	uint64_t *counters;
	uint32_t n;
};

static void *shared_sealer(void *arg)
{
	struct shared_arg *a = arg;
	uint8_t buf[64];

	for (uint32_t i = 0; i < a->n; i++) {
		memset(buf, (int)i, 16);
		size_t len = lcr_auth_seal_shared(a->t, buf, 16);
		assert_int_equal(len, 16 + LCR_AUTH_TRAILER);
		uint64_t c = 0;
		for (int b = 7; b >= 0; b--)
			c = (c << 8) | buf[16 + 8 + b];
		a->counters[i] = c;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Four threads seal with one context at once: every counter 1..n taken exactly once. */
static void test_auth_seal_shared(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 29);
	struct lcr_auth_tx t;
	enum { THREADS = 4, EACH = 5000 };
	static uint64_t counters[THREADS * EACH];
	struct shared_arg a[THREADS];
	pthread_t th[THREADS];

	assert_int_equal(lcr_auth_tx_init(&t, &k, fresh_sender(), 1, LCR_AUTH_CHANNEL_ANSWER), 0);
	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct shared_arg){ &t, counters + i * EACH, EACH };
		assert_int_equal(pthread_create(&th[i], NULL, shared_sealer, &a[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(lcr_auth_sealed(&t), THREADS * EACH);
	qsort(counters, THREADS * EACH, sizeof(counters[0]), cmp_u64);
	for (uint64_t i = 0; i < THREADS * EACH; i++)
		assert_int_equal(counters[i], i + 1);

	lcr_auth_tx_wipe(&t);
}

/* A bound datagram opens with its value, once; another value or none is bad_mac. */
static void test_auth_bound(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 31);
	struct lcr_auth_tx t;
	uint8_t buf[64], copy[64];
	uint64_t s = fresh_sender();

	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 5, LCR_AUTH_CHANNEL_ANSWER), 0);
	struct lcr_auth_rx *r = rx_new(&k, LCR_AUTH_CHANNEL_ANSWER, 4);
	size_t len = lcr_auth_seal_shared_bound(&t, memset(buf, 9, 30), 30, 42);
	memcpy(copy, buf, len);
	assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_BAD_MAC);
	assert_int_equal(lcr_auth_open_bound(r, s, buf, len, 43), LCR_AUTH_BAD_MAC);
	assert_memory_equal(buf, copy, len);
	assert_int_equal(lcr_auth_open_bound(r, s, buf, len, 42), LCR_AUTH_OK);
	assert_int_equal(lcr_auth_open_bound(r, s, buf, len, 42), LCR_AUTH_REPLAYED);
	assert_memory_equal(buf, copy, len);
	/* Unbound, it opens with lcr_auth_open only. */
	len = lcr_auth_seal_shared(&t, memset(buf, 9, 30), 30);
	assert_int_equal(lcr_auth_open_bound(r, s, buf, len, 0), LCR_AUTH_BAD_MAC);
	assert_int_equal(lcr_auth_open(r, s, buf, len), LCR_AUTH_OK);
	lcr_auth_rx_free(r);
	lcr_auth_tx_wipe(&t);
}

/* Write `len` bytes to a fresh file of mode `mode`; its path. */
static const char *key_file(const void *bytes, size_t len, mode_t mode)
{
	static char path[64];
	static int n;
	snprintf(path, sizeof(path), "/tmp/lcr-test-auth-key-%d-%d", (int)getpid(), n++);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

/* Key files: raw and hexadecimal (with or without a newline); everything else refused. */
static void test_auth_key_load(void **state)
{
	uint8_t raw[LCR_AUTH_KEY_BYTES], key[LCR_AUTH_KEY_BYTES], zero[LCR_AUTH_KEY_BYTES] = { 0 };
	char hex[2 * LCR_AUTH_KEY_BYTES + 2], why[300];
	const char *p;
	(void)state;

	for (int i = 0; i < LCR_AUTH_KEY_BYTES; i++) {
		raw[i] = (uint8_t)(0xa0 + i);
		snprintf(hex + 2 * i, 3, i % 2 ? "%02X" : "%02x", raw[i]);
	}
	hex[64] = '\n';
	hex[65] = 0;
	struct {
		const void *b;
		size_t len;
		mode_t mode;
		int rc;
		const char *says;
	} cases[] = {
		{ raw, 32, 0600, 0, NULL },
		{ raw, 32, 0400, 0, NULL },
		{ hex, 64, 0600, 0, NULL },
		{ hex, 65, 0600, 0, NULL },
		{ hex, 63, 0600, -EINVAL, "63 bytes: a key file holds exactly 32 bytes, or 64" },
		{ raw, 31, 0600, -EINVAL, "31 bytes" },
		{ "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg", 64, 0600,
		  -EINVAL, "byte 63 (0x67) is no hexadecimal digit" },
		{ "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n\n", 66, 0600,
		  -EINVAL, "at least 66 bytes" },
		{ zero, 32, 0600, -EINVAL, "every byte of the key is 0" },
		{ raw, 32, 0640, -EPERM, "mode 0640 lets its group read or write it" },
		{ raw, 32, 0604, -EPERM, "lets others read" },
		{ raw, 32, 0666, -EPERM, "its group and others" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = key_file(cases[i].b, cases[i].len, cases[i].mode);
		memset(key, 0, sizeof(key));
		int rc = lcr_auth_key_load(p, key, why, sizeof(why));
		if (rc != cases[i].rc || (cases[i].says && !strstr(why, cases[i].says)) ||
		    (cases[i].rc == 0 && memcmp(key, raw, sizeof(raw))) ||
		    (cases[i].rc < 0 && !strstr(why, p)))
			fail_msg("case %zu: rc %d, want %d: %s", i, rc, cases[i].rc, rc ? why : "");
		unlink(p);
	}
	assert_int_equal(lcr_auth_key_load("/nonexistent/key", key, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "/nonexistent/key: No such file"));
	assert_int_equal(lcr_auth_key_load("/tmp", key, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "not a regular file"));
}

/* A second context with the same (cluster, sender, channel) and a boot not larger: refused. */
static void test_auth_boot_reuse_refused(void **state)
{
	uint32_t alg = alg_of(state);
	struct lcr_auth_key k = key_of(alg, 25);
	struct lcr_auth_tx t;
	uint64_t s = fresh_sender();

	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 0, 0), -EINVAL);
	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 7, 0), 0);
	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 7, 0), -EALREADY);
	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 6, 0), -EALREADY);
	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 7, 1), 0);
	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 8, 0), 0);
	struct lcr_auth_key k2 = k;
	k2.cluster++;
	assert_int_equal(lcr_auth_tx_init(&t, &k2, s, 7, 0), 0);
	lcr_auth_tx_wipe(&t);
	k.alg = 77;
	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 100, 0), -EINVAL);
	uint32_t a = 0;
	assert_int_equal(lcr_auth_alg_parse("chacha20poly1305", &a), 0);
	assert_int_equal(a, LCR_AUTH_CHACHA20POLY1305);
	assert_int_equal(lcr_auth_alg_parse("aes256gcm", &a), 0);
	assert_int_equal(a, LCR_AUTH_AES256GCM);
	assert_int_equal(lcr_auth_alg_parse("aes", &a), -EINVAL);
	assert_string_equal(lcr_auth_drop_name(LCR_AUTH_REPLAYED), "replayed");
	assert_string_equal(lcr_auth_drop_name(99), "unknown");
}

/* ---- the cost -------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * ns per datagram of `len` bytes, sealing and opening (a fresh counter each): the fastest
 * batch of 64, which a busy machine disturbs least, and the mean.
 */
struct cost {
	double seal_min, open_min, seal_mean, open_mean;
};

static struct cost cost(uint32_t alg, size_t len, uint32_t n)
{
	static uint8_t bufs[64][9000 + LCR_AUTH_TRAILER];
	struct lcr_auth_key k = key_of(alg, 31);
	struct lcr_auth_tx t;
	uint64_t s = fresh_sender();
	uint64_t ts = 0, to = 0, ms = UINT64_MAX, mo = UINT64_MAX;
	uint32_t done = 0;

	assert_int_equal(lcr_auth_tx_init(&t, &k, s, 1, 0), 0);
	struct lcr_auth_rx *r = rx_new(&k, 0, 8);
	for (int i = 0; i < 64; i++)
		memset(bufs[i], i, len);
	for (; done < n; done += 64) {
		uint64_t a = now_ns();
		for (int j = 0; j < 64; j++)
			lcr_auth_seal(&t, bufs[j], len);
		uint64_t b = now_ns();
		for (int j = 0; j < 64; j++)
			if (lcr_auth_open(r, s, bufs[j], len + LCR_AUTH_TRAILER) != LCR_AUTH_OK)
				fail_msg("open failed");
		uint64_t c = now_ns();
		ts += b - a;
		to += c - b;
		ms = b - a < ms ? b - a : ms;
		mo = c - b < mo ? c - b : mo;
	}
	lcr_auth_tx_wipe(&t);
	lcr_auth_rx_free(r);
	return (struct cost){ (double)ms / 64, (double)mo / 64, (double)ts / done,
			      (double)to / done };
}

/* Other MACs of libsodium for comparison: ns per call over `len` bytes, as cost(). */
static double other_mac(int which, size_t len, uint32_t n, double *mean)
{
	static uint8_t buf[9000], out[64], key[64];
	uint64_t total = 0, best = UINT64_MAX;
	uint32_t done = 0;

	for (; done < n; done += 64) {
		uint64_t t0 = now_ns();
		for (int i = 0; i < 64; i++) {
			buf[0] = (uint8_t)i;
			if (which == 0)
				crypto_auth_hmacsha512256(out, buf, len, key);
			else if (which == 1)
				crypto_generichash_blake2b(out, 16, buf, len, key, 32);
			else
				crypto_shorthash_siphashx24(out, buf, len, key);
		}
		uint64_t d = now_ns() - t0;
		total += d;
		best = d < best ? d : best;
	}
	*mean = (double)total / done;
	return (double)best / 64;
}

static const size_t bench_lens[] = { 64, 1472, 8972 };

/*
 * ns per request opened at a client port that holds `senders` clients, each
 * request from the next client in turn (so each lookup finds another
 * sender's state): 96-byte datagrams, sealed beforehand, 32 rounds.
 */
static double senders_cost(uint32_t alg, uint32_t senders)
{
	enum { ROUNDS = 32, LEN = 96 - LCR_AUTH_TRAILER };
	struct lcr_auth_key k = key_of(alg, 33);
	struct lcr_auth_tx t;
	uint8_t *d = malloc((size_t)senders * ROUNDS * 96);
	struct lcr_auth_rx r;
	uint64_t base = fresh_sender();
	struct timespec a, b;

	sender_seq += senders;
	for (uint32_t i = 0; i < senders; i++) {
		if (lcr_auth_tx_init(&t, &k, base + i, 1, LCR_AUTH_CHANNEL_CLIENT) < 0)
			abort();
		for (uint32_t j = 0; j < ROUNDS; j++)
			sealed(&t, d + ((size_t)j * senders + i) * 96, LEN);
		lcr_auth_tx_wipe(&t);
	}
	if (lcr_auth_rx_init(&r, &k, LCR_AUTH_CHANNEL_CLIENT, 8192, NULL) < 0)
		abort();
	for (uint32_t i = 0; i < senders; i++) /* each sender's first: its key derived */
		if (lcr_auth_open(&r, base + i, d + (size_t)i * 96, 96) != LCR_AUTH_OK)
			abort();
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (uint32_t j = 1; j < ROUNDS; j++)
		for (uint32_t i = 0; i < senders; i++)
			if (lcr_auth_open(&r, base + i, d + ((size_t)j * senders + i) * 96, 96) !=
			    LCR_AUTH_OK)
				abort();
	clock_gettime(CLOCK_MONOTONIC, &b);
	lcr_auth_rx_free(&r);
	free(d);
	return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) /
	       ((double)(ROUNDS - 1) * senders);
}

static void bench_print(uint32_t n)
{
	printf("ns per datagram: fastest batch of 64 (mean of %u)\n", n);
	for (uint32_t alg = 1; alg < LCR_AUTH_ALG_MAX; alg++) {
		char why[256];
		if (lcr_auth_usable(alg, why, sizeof(why)) < 0) {
			printf("%s: %s\n", lcr_auth_alg_name(alg), why);
			continue;
		}
		for (size_t i = 0; i < 3; i++) {
			struct cost c = cost(alg, bench_lens[i], n);
			printf("%-17s %5zu B: seal %6.0f (%6.0f), open %6.0f (%6.0f)\n",
			       lcr_auth_alg_name(alg), bench_lens[i], c.seal_min, c.seal_mean,
			       c.open_min, c.open_mean);
		}
	}
	static const char *names[] = { "hmac-sha512/256", "blake2b-128 keyed", "siphash-x24" };
	for (int w = 0; w < 3; w++)
		for (size_t i = 0; i < 3; i++) {
			double mean, best = other_mac(w, bench_lens[i], n, &mean);
			printf("%-17s %5zu B: tag  %6.0f (%6.0f)   (for comparison)\n", names[w],
			       bench_lens[i], best, mean);
		}
	for (uint32_t alg = 1; alg < LCR_AUTH_ALG_MAX; alg++) {
		char why[256];
		if (lcr_auth_usable(alg, why, sizeof(why)) < 0)
			continue;
		static const uint32_t clients[] = { 1, 64, 4096, 8192 };
		for (size_t i = 0; i < 4; i++)
			printf("%-17s   96 B: open %6.0f   (a client port: %u client%s in turn, "
			       "places for 8,192)\n",
			       lcr_auth_alg_name(alg), senders_cost(alg, clients[i]), clients[i],
			       clients[i] > 1 ? "s" : "");
	}
}

/* A short measurement in the test run itself, printed: what a datagram costs each way. */
static void test_auth_cost(void **state)
{
	uint32_t alg = alg_of(state);
	for (size_t i = 0; i < 3; i++) {
		struct cost c = cost(alg, bench_lens[i], 20000);
		print_message("%s %zu B: seal %.0f ns, open %.0f ns (fastest batch; means %.0f, "
			      "%.0f)\n",
			      lcr_auth_alg_name(alg), bench_lens[i], c.seal_min, c.open_min,
			      c.seal_mean, c.open_mean);
	}
}

#define BOTH(f)                                                                                    \
	cmocka_unit_test_prestate(f, (void *)(uintptr_t)LCR_AUTH_AES256GCM),                       \
		cmocka_unit_test_prestate(f, (void *)(uintptr_t)LCR_AUTH_CHACHA20POLY1305)

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
		if (sodium_init() < 0)
			return 1;
		bench_print(argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 400000);
		return 0;
	}
	const struct CMUnitTest tests[] = {
		BOTH(test_auth_vector),
		BOTH(test_auth_round_trip),
		BOTH(test_auth_every_bit_flip_refused),
		BOTH(test_auth_short_and_cut),
		BOTH(test_auth_old_boot),
		BOTH(test_auth_replay_window_edges),
		BOTH(test_auth_replay_window_model),
		BOTH(test_auth_forged_boots_bounded),
		BOTH(test_auth_wrong_context),
		BOTH(test_auth_evicts_least_recent),
		BOTH(test_auth_boot_reuse_refused),
		BOTH(test_auth_many_senders),
		BOTH(test_auth_seal_shared),
		BOTH(test_auth_bound),
		cmocka_unit_test(test_auth_key_load),
		BOTH(test_auth_cost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
