/* SPDX-License-Identifier: MIT */
/* Authenticated datagrams (see auth.h; docs/wire-protocol.md, "Authentication"). */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "auth.h"
#include "lcr_assert.h"

static_assert(sizeof(crypto_aead_aes256gcm_state) <= LCR_AUTH_STATE_BYTES,
	      "the expanded AES-GCM key fits struct lcr_auth_mac");
static_assert(crypto_aead_aes256gcm_KEYBYTES == LCR_AUTH_KEY_BYTES, "AES-256 keys");
static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == LCR_AUTH_KEY_BYTES, "ChaCha keys");
static_assert(crypto_aead_aes256gcm_ABYTES == LCR_AUTH_TAG_BYTES, "16-byte tags");
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == LCR_AUTH_TAG_BYTES, "16-byte tags");
static_assert(crypto_aead_aes256gcm_NPUBBYTES == 12, "96-bit nonces");
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12, "96-bit nonces");
static_assert(LCR_AUTH_TRAILER == 16 + LCR_AUTH_TAG_BYTES, "boot, counter, tag");
static_assert(LCR_AUTH_WINDOW % 64 == 0, "whole words");

#define LABEL	  "lcraft-mac-v1"
#define LABEL_LEN 13

static const char *const alg_names[LCR_AUTH_ALG_MAX] = {
	[LCR_AUTH_NONE] = "none",
	[LCR_AUTH_AES256GCM] = "aes256gcm",
	[LCR_AUTH_CHACHA20POLY1305] = "chacha20poly1305",
};

static const char *const drop_names[LCR_AUTH_DROP_MAX] = {
	[LCR_AUTH_OK] = "none",		  [LCR_AUTH_SHORT] = "mac_short",
	[LCR_AUTH_OLD_BOOT] = "old_boot", [LCR_AUTH_BAD_MAC] = "bad_mac",
	[LCR_AUTH_REPLAYED] = "replayed",
};

const char *lcr_auth_alg_name(uint32_t alg)
{
	return alg < LCR_AUTH_ALG_MAX ? alg_names[alg] : "unknown";
}

int lcr_auth_alg_parse(const char *name, uint32_t *alg)
{
	for (uint32_t a = 0; a < LCR_AUTH_ALG_MAX; a++)
		if (name && strcmp(name, alg_names[a]) == 0) {
			*alg = a;
			return 0;
		}
	return -EINVAL;
}

const char *lcr_auth_drop_name(uint32_t reason)
{
	return reason < LCR_AUTH_DROP_MAX ? drop_names[reason] : "unknown";
}

int lcr_auth_usable(uint32_t alg, char *why, size_t why_len)
{
	if (sodium_init() < 0) {
		snprintf(why, why_len, "auth: libsodium failed to initialise");
		return -EIO;
	}
	if (alg != LCR_AUTH_AES256GCM && alg != LCR_AUTH_CHACHA20POLY1305) {
		snprintf(why, why_len,
			 "auth: unknown algorithm %u: expected aes256gcm or chacha20poly1305", alg);
		return -EINVAL;
	}
	if (alg == LCR_AUTH_AES256GCM && !crypto_aead_aes256gcm_is_available()) {
		snprintf(why, why_len,
			 "auth: aes256gcm needs a CPU with AES-NI and PCLMULQDQ, which this one "
			 "lacks; configure the whole cluster with alg = chacha20poly1305 instead "
			 "(every node must use the same)");
		return -ENOTSUP;
	}
	return 0;
}

static inline void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* K_s of (sender, boot), ready to use in `m`. */
static void session_key(struct lcr_auth_mac *m, uint32_t alg, const uint8_t key[LCR_AUTH_KEY_BYTES],
			uint64_t cluster, uint64_t sender, uint64_t boot)
{
	uint8_t msg[LABEL_LEN + 24];
	uint8_t ks[LCR_AUTH_KEY_BYTES];

	memcpy(msg, LABEL, LABEL_LEN);
	put64(msg + LABEL_LEN, cluster);
	put64(msg + LABEL_LEN + 8, sender);
	put64(msg + LABEL_LEN + 16, boot);
	crypto_generichash_blake2b(ks, sizeof(ks), msg, sizeof(msg), key, LCR_AUTH_KEY_BYTES);
	if (alg == LCR_AUTH_AES256GCM)
		crypto_aead_aes256gcm_beforenm((crypto_aead_aes256gcm_state *)m->st, ks);
	else
		memcpy(m->st, ks, sizeof(ks));
	sodium_memzero(ks, sizeof(ks));
}

static void nonce_of(uint8_t n[12], uint64_t counter, uint32_t channel)
{
	put64(n, counter);
	n[8] = (uint8_t)channel;
	n[9] = (uint8_t)(channel >> 8);
	n[10] = (uint8_t)(channel >> 16);
	n[11] = (uint8_t)(channel >> 24);
}

/* ---- sending ------------------------------------------------------------------ */

/*
 * The last boot of each (alg, cluster, sender, channel) this process made a
 * sender context for: a second context with the same boot would start its
 * counters at 1 again under the same key.
 */
#define USED_MAX 256
static struct {
	uint64_t cluster, sender, boot;
	uint32_t alg, channel;
	uint64_t when;
} used[USED_MAX];
static uint32_t n_used;
static uint64_t used_clock;
static pthread_mutex_t used_mu = PTHREAD_MUTEX_INITIALIZER;

static int claim_boot(uint32_t alg, uint64_t cluster, uint64_t sender, uint64_t boot,
		      uint32_t channel)
{
	int rc = 0;
	uint32_t at = UINT32_MAX, oldest = 0;

	pthread_mutex_lock(&used_mu);
	for (uint32_t i = 0; i < n_used; i++) {
		if (used[i].alg == alg && used[i].cluster == cluster && used[i].sender == sender &&
		    used[i].channel == channel) {
			at = i;
			break;
		}
		if (used[i].when < used[oldest].when)
			oldest = i;
	}
	if (at != UINT32_MAX && used[at].boot >= boot)
		rc = -EALREADY;
	else {
		if (at == UINT32_MAX)
			at = n_used < USED_MAX ? n_used++ : oldest;
		used[at].alg = alg;
		used[at].cluster = cluster;
		used[at].sender = sender;
		used[at].channel = channel;
		used[at].boot = boot;
		used[at].when = ++used_clock;
	}
	pthread_mutex_unlock(&used_mu);
	return rc;
}

int lcr_auth_tx_init(struct lcr_auth_tx *t, const struct lcr_auth_key *k, uint64_t sender,
		     uint64_t boot, uint32_t channel)
{
	char why[256];
	int rc;

	memset(t, 0, sizeof(*t));
	if (lcr_auth_usable(k->alg, why, sizeof(why)) < 0 || boot == 0)
		return -EINVAL;
	if ((rc = claim_boot(k->alg, k->cluster, sender, boot, channel)) < 0)
		return rc;
	t->alg = k->alg;
	t->channel = channel;
	t->boot = boot;
	session_key(&t->mac, k->alg, k->key, k->cluster, sender, boot);
	return 0;
}

/* The tag over ad[0 .. ad_len) with `nonce`. */
static void tag_of(const struct lcr_auth_mac *m, uint32_t alg, uint8_t tag[LCR_AUTH_TAG_BYTES],
		   const uint8_t *ad, size_t ad_len, const uint8_t nonce[12])
{
	unsigned long long tag_len = 0;
	uint8_t none[1] = { 0 }; /* the empty ciphertext's place: never written */

	if (alg == LCR_AUTH_AES256GCM)
		crypto_aead_aes256gcm_encrypt_detached_afternm(
			none, tag, &tag_len, none, 0, ad, ad_len, NULL, nonce,
			(const crypto_aead_aes256gcm_state *)m->st);
	else
		crypto_aead_chacha20poly1305_ietf_encrypt_detached(none, tag, &tag_len, none, 0, ad,
								   ad_len, NULL, nonce, m->st);
	LCR_ASSERT(tag_len == LCR_AUTH_TAG_BYTES);
}

/* Whether `tag` is the tag over ad[0 .. ad_len) (libsodium compares in constant time). */
static bool tag_ok(const struct lcr_auth_mac *m, uint32_t alg, const uint8_t *tag,
		   const uint8_t *ad, size_t ad_len, const uint8_t nonce[12])
{
	uint8_t none[1] = { 0 };

	if (alg == LCR_AUTH_AES256GCM)
		return crypto_aead_aes256gcm_decrypt_detached_afternm(
			       none, NULL, none, 0, tag, ad, ad_len, nonce,
			       (const crypto_aead_aes256gcm_state *)m->st) == 0;
	return crypto_aead_chacha20poly1305_ietf_decrypt_detached(none, NULL, none, 0, tag, ad,
								  ad_len, nonce, m->st) == 0;
}

size_t lcr_auth_seal(struct lcr_auth_tx *t, uint8_t *buf, size_t len)
{
	uint8_t nonce[12];

	LCR_ASSERT(t->boot != 0);
	/* 2^64 datagrams: never, but a wrapped counter would repeat a nonce. */
	LCR_ASSERT(t->counter < UINT64_MAX);
	t->counter++;
	put64(buf + len, t->boot);
	put64(buf + len + 8, t->counter);
	nonce_of(nonce, t->counter, t->channel);
	tag_of(&t->mac, t->alg, buf + len + 16, buf, len + 16, nonce);
	return len + LCR_AUTH_TRAILER;
}

void lcr_auth_tx_wipe(struct lcr_auth_tx *t)
{
	sodium_memzero(t, sizeof(*t));
}

void lcr_auth_wipe(void *p, size_t len)
{
	sodium_memzero(p, len);
}

/* ---- receiving ------------------------------------------------------------------ */

int lcr_auth_rx_init(struct lcr_auth_rx *r, const struct lcr_auth_key *k, uint32_t channel,
		     uint32_t senders_max, const struct lcr_allocator *alloc)
{
	char why[256];

	memset(r, 0, sizeof(*r));
	if (lcr_auth_usable(k->alg, why, sizeof(why)) < 0 || senders_max == 0)
		return -EINVAL;
	if (alloc)
		r->alloc = *alloc;
	r->peers =
		lcr_allocator_aligned(&r->alloc, sizeof(*r->peers) * senders_max, LCR_CACHE_LINE);
	if (!r->peers)
		return -ENOMEM;
	r->alg = k->alg;
	r->channel = channel;
	r->cluster = k->cluster;
	r->peers_max = senders_max;
	memcpy(r->key, k->key, LCR_AUTH_KEY_BYTES);
	return 0;
}

void lcr_auth_rx_free(struct lcr_auth_rx *r)
{
	if (r->peers) {
		sodium_memzero(r->peers, sizeof(*r->peers) * r->peers_max);
		lcr_allocator_free_aligned(&r->alloc, r->peers);
	}
	sodium_memzero(r, sizeof(*r));
}

static struct lcr_auth_peer *peer_of(struct lcr_auth_rx *r, uint64_t sender)
{
	for (uint32_t i = 0; i < r->n_peers; i++)
		if (r->peers[i].sender == sender)
			return &r->peers[i];
	return NULL;
}

/* A place for a sender just verified: a free one, or the least recently heard. */
static struct lcr_auth_peer *peer_new(struct lcr_auth_rx *r, uint64_t sender)
{
	struct lcr_auth_peer *p;

	if (r->n_peers < r->peers_max)
		p = &r->peers[r->n_peers++];
	else {
		p = &r->peers[0];
		for (uint32_t i = 1; i < r->n_peers; i++)
			if (r->peers[i].used < p->used)
				p = &r->peers[i];
		r->st.evicted++;
	}
	sodium_memzero(p, sizeof(*p));
	p->sender = sender;
	return p;
}

/*
 * The replay window (RFC 6479's, as IPsec and WireGuard): `top` is the
 * highest counter taken, a bit per counter in a ring of LCR_AUTH_WORDS
 * words. A counter more than LCR_AUTH_WINDOW - 1 below `top` is refused
 * whether or not it came (the ring has one word beyond the window, so every
 * counter within it has its own bit). Counter 0 is never sent.
 */
static bool window_fresh(const struct lcr_auth_peer *p, uint64_t c)
{
	if (c == 0)
		return false;
	if (c > p->top)
		return true;
	if (p->top - c >= LCR_AUTH_WINDOW)
		return false;
	return !(p->seen[(c / 64) % LCR_AUTH_WORDS] & (1ull << (c % 64)));
}

static void window_take(struct lcr_auth_peer *p, uint64_t c)
{
	if (c > p->top) {
		/* The words between the old top's and the new one's start empty. */
		uint64_t from = p->top / 64, to = c / 64;
		uint64_t n = to - from < LCR_AUTH_WORDS ? to - from : LCR_AUTH_WORDS;
		for (uint64_t i = 1; i <= n; i++)
			p->seen[(from + i) % LCR_AUTH_WORDS] = 0;
		p->top = c;
	}
	p->seen[(c / 64) % LCR_AUTH_WORDS] |= 1ull << (c % 64);
}

static uint32_t refuse(struct lcr_auth_rx *r, uint32_t why)
{
	r->st.drops[why]++;
	return why;
}

uint32_t lcr_auth_open(struct lcr_auth_rx *r, uint64_t sender, const uint8_t *buf, size_t len)
{
	if (len < LCR_AUTH_TRAILER)
		return refuse(r, LCR_AUTH_SHORT);
	size_t ad_len = len - LCR_AUTH_TAG_BYTES;
	uint64_t boot = get64(buf + len - LCR_AUTH_TRAILER);
	uint64_t counter = get64(buf + len - LCR_AUTH_TRAILER + 8);
	struct lcr_auth_peer *p = peer_of(r, sender);

	if (p && boot < p->boot)
		return refuse(r, LCR_AUTH_OLD_BOOT);
	/* The current boot's key, else the candidate's, derived if it is not
	 * this (sender, boot): one derivation per new boot tried, however many
	 * are forged, and the candidate is all the memory they get. */
	const struct lcr_auth_mac *m;
	if (p && boot == p->boot)
		m = &p->mac;
	else {
		if (!r->cand_valid || r->cand_sender != sender || r->cand_boot != boot) {
			session_key(&r->cand, r->alg, r->key, r->cluster, sender, boot);
			r->cand_valid = true;
			r->cand_sender = sender;
			r->cand_boot = boot;
			r->st.derivations++;
		}
		m = &r->cand;
	}
	uint8_t nonce[12];
	nonce_of(nonce, counter, r->channel);
	if (!tag_ok(m, r->alg, buf + ad_len, buf, ad_len, nonce))
		return refuse(r, LCR_AUTH_BAD_MAC);
	/* Genuine: a newer boot (or a sender heard for the first time) takes
	 * over with an empty window; the old boot's datagrams are refused from
	 * now on. */
	if (!p || boot > p->boot) {
		if (p)
			r->st.boot_switches++;
		else
			p = peer_new(r, sender);
		sodium_memzero(p->seen, sizeof(p->seen));
		p->top = 0;
		p->boot = boot;
		memcpy(&p->mac, &r->cand, sizeof(p->mac));
		sodium_memzero(&r->cand, sizeof(r->cand));
		r->cand_valid = false;
	}
	if (!window_fresh(p, counter))
		return refuse(r, LCR_AUTH_REPLAYED);
	window_take(p, counter);
	p->used = ++r->tick;
	r->st.accepted++;
	return LCR_AUTH_OK;
}
