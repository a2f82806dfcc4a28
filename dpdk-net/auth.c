/* SPDX-License-Identifier: MIT */
/* Authenticated datagrams (see auth.h; docs/wire-protocol.md, "Authentication"). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* No peer (the recency list's ends). */
#define NONE UINT32_MAX
/* Senders a receiver may keep: its index stays below 2^25 slots. */
#define SENDERS_MAX (1u << 24)

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

/* ---- key files -------------------------------------------------------------------- */

static int hex_value(uint8_t ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The key from the `n` bytes a key file holds (lcr_auth_key_load's rules). */
static int key_parse(const char *path, const uint8_t *buf, size_t n,
		     uint8_t key[LCR_AUTH_KEY_BYTES], char *why, size_t why_len)
{
	const size_t hex = 2 * LCR_AUTH_KEY_BYTES;
	uint8_t any = 0;

	if (n == LCR_AUTH_KEY_BYTES) {
		memcpy(key, buf, LCR_AUTH_KEY_BYTES);
	} else if (n == hex || (n == hex + 1 && buf[hex] == '\n')) {
		for (size_t i = 0; i < hex; i++)
			if (hex_value(buf[i]) < 0) {
				snprintf(why, why_len,
					 "%s: %zu bytes, but byte %zu (0x%02x) is no hexadecimal "
					 "digit: a key file holds exactly %d bytes, or %zu "
					 "hexadecimal digits and a newline",
					 path, n, i, buf[i], LCR_AUTH_KEY_BYTES, hex);
				return -EINVAL;
			}
		for (size_t i = 0; i < LCR_AUTH_KEY_BYTES; i++)
			key[i] = (uint8_t)(hex_value(buf[2 * i]) << 4 | hex_value(buf[2 * i + 1]));
	} else {
		snprintf(why, why_len,
			 "%s: %s%zu bytes: a key file holds exactly %d bytes, or %zu hexadecimal "
			 "digits and a newline (make one with: head -c %d /dev/urandom > FILE; "
			 "chmod 600 FILE)",
			 path, n > hex + 1 ? "at least " : "", n, LCR_AUTH_KEY_BYTES, hex,
			 LCR_AUTH_KEY_BYTES);
		return -EINVAL;
	}
	for (size_t i = 0; i < LCR_AUTH_KEY_BYTES; i++)
		any |= key[i];
	if (!any) {
		sodium_memzero(key, LCR_AUTH_KEY_BYTES);
		snprintf(why, why_len,
			 "%s: every byte of the key is 0: not a secret (make one with: head -c %d "
			 "/dev/urandom > FILE)",
			 path, LCR_AUTH_KEY_BYTES);
		return -EINVAL;
	}
	return 0;
}

int lcr_auth_key_load(const char *path, uint8_t key[LCR_AUTH_KEY_BYTES], char *why, size_t why_len)
{
	/* A hex key and its newline, and one byte more to tell a longer file. */
	uint8_t buf[2 * LCR_AUTH_KEY_BYTES + 2];
	struct stat st;
	size_t n = 0;
	int rc = 0;

	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, why_len, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(why, why_len, "%s: %s", path, strerror(-rc));
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(why, why_len, "%s: not a regular file", path);
		rc = -EINVAL;
	} else if (st.st_mode & 077) {
		snprintf(why, why_len,
			 "%s: mode %04o lets %s read or write it: a key belongs in a file only "
			 "its owner can read (chmod 600 %s)",
			 path, (unsigned)(st.st_mode & 07777),
			 (st.st_mode & 070) && (st.st_mode & 07) ? "its group and others"
			 : (st.st_mode & 070)			 ? "its group"
								 : "others",
			 path);
		rc = -EPERM;
	}
	while (rc == 0 && n < sizeof(buf)) {
		ssize_t k = read(fd, buf + n, sizeof(buf) - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = -errno;
			snprintf(why, why_len, "%s: %s", path, strerror(-rc));
		}
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (rc == 0)
		rc = key_parse(path, buf, n, key, why, why_len);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

/* ---- the session key -------------------------------------------------------------- */

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

/*
 * The trailer with `counter`, taken by the caller for this datagram alone;
 * with `bound`, the tag is also over it, written for the while where the
 * tag goes.
 */
static size_t seal_at(const struct lcr_auth_tx *t, uint8_t *buf, size_t len, uint64_t counter,
		      const uint64_t *bound)
{
	uint8_t nonce[12], tag[LCR_AUTH_TAG_BYTES];
	size_t ad_len = len + 16;

	LCR_ASSERT(t->boot != 0);
	/* 2^64 datagrams: never, but a wrapped counter would repeat a nonce. */
	LCR_ASSERT(counter != 0);
	put64(buf + len, t->boot);
	put64(buf + len + 8, counter);
	if (bound) {
		put64(buf + len + 16, *bound);
		ad_len += 8;
	}
	nonce_of(nonce, counter, t->channel);
	tag_of(&t->mac, t->alg, tag, buf, ad_len, nonce);
	memcpy(buf + len + 16, tag, sizeof(tag));
	return len + LCR_AUTH_TRAILER;
}

size_t lcr_auth_seal(struct lcr_auth_tx *t, uint8_t *buf, size_t len)
{
	return seal_at(t, buf, len, ++t->counter, NULL);
}

size_t lcr_auth_seal_shared(struct lcr_auth_tx *t, uint8_t *buf, size_t len)
{
	return seal_at(t, buf, len, __atomic_add_fetch(&t->counter, 1, __ATOMIC_RELAXED), NULL);
}

size_t lcr_auth_seal_shared_bound(struct lcr_auth_tx *t, uint8_t *buf, size_t len, uint64_t bound)
{
	return seal_at(t, buf, len, __atomic_add_fetch(&t->counter, 1, __ATOMIC_RELAXED), &bound);
}

uint64_t lcr_auth_sealed(const struct lcr_auth_tx *t)
{
	return __atomic_load_n(&t->counter, __ATOMIC_RELAXED);
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
	if (lcr_auth_usable(k->alg, why, sizeof(why)) < 0 || senders_max == 0 ||
	    senders_max > SENDERS_MAX)
		return -EINVAL;
	if (alloc)
		r->alloc = *alloc;
	uint32_t slots = 2;
	while (slots < 2 * senders_max)
		slots *= 2;
	r->peers =
		lcr_allocator_aligned(&r->alloc, sizeof(*r->peers) * senders_max, LCR_CACHE_LINE);
	r->index = lcr_allocator_aligned(&r->alloc, sizeof(*r->index) * slots, LCR_CACHE_LINE);
	if (!r->peers || !r->index) {
		if (r->peers)
			lcr_allocator_free_aligned(&r->alloc, r->peers);
		if (r->index)
			lcr_allocator_free_aligned(&r->alloc, r->index);
		memset(r, 0, sizeof(*r));
		return -ENOMEM;
	}
	memset(r->index, 0, sizeof(*r->index) * slots);
	r->index_mask = slots - 1;
	randombytes_buf(&r->seed, sizeof(r->seed));
	r->newest = r->oldest = NONE;
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
	if (r->index)
		lcr_allocator_free_aligned(&r->alloc, r->index);
	sodium_memzero(r, sizeof(*r));
}

/* ---- the senders: an index by sender, a recency list ------------------------------- */

/* The home slot of a sender: SplitMix64's finaliser of the sender and the seed. */
static uint32_t home_of(const struct lcr_auth_rx *r, uint64_t sender)
{
	uint64_t x = sender ^ r->seed;

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (uint32_t)x & r->index_mask;
}

/* The slot that holds peer `pi`, whose sender is `sender`. */
static uint32_t slot_of(const struct lcr_auth_rx *r, uint64_t sender, uint32_t pi)
{
	for (uint32_t i = home_of(r, sender);; i = (i + 1) & r->index_mask) {
		LCR_ASSERT(r->index[i] != 0); /* the table holds every peer */
		if (r->index[i] == pi + 1)
			return i;
	}
}

static struct lcr_auth_peer *peer_of(struct lcr_auth_rx *r, uint64_t sender)
{
	/* At most half the slots are taken, so an empty one ends every probe. */
	for (uint32_t i = home_of(r, sender); r->index[i]; i = (i + 1) & r->index_mask) {
		struct lcr_auth_peer *p = &r->peers[r->index[i] - 1];
		if (p->sender == sender)
			return p;
	}
	return NULL;
}

static void index_add(struct lcr_auth_rx *r, uint64_t sender, uint32_t pi)
{
	uint32_t i = home_of(r, sender);

	while (r->index[i])
		i = (i + 1) & r->index_mask;
	r->index[i] = pi + 1;
}

/* Take slot `i` out, moving later entries of its run back (linear probing's deletion). */
static void index_remove(struct lcr_auth_rx *r, uint32_t i)
{
	for (uint32_t k = i;;) {
		r->index[i] = 0;
		for (;;) {
			k = (k + 1) & r->index_mask;
			if (!r->index[k])
				return;
			uint32_t h = home_of(r, r->peers[r->index[k] - 1].sender);
			/* It stays where it is if its home is cyclically in (i, k]. */
			bool stays = i <= k ? (i < h && h <= k) : (i < h || h <= k);
			if (!stays)
				break;
		}
		r->index[i] = r->index[k];
		i = k;
	}
}

static void list_unlink(struct lcr_auth_rx *r, struct lcr_auth_peer *p)
{
	if (p->newer != NONE)
		r->peers[p->newer].older = p->older;
	else
		r->newest = p->older;
	if (p->older != NONE)
		r->peers[p->older].newer = p->newer;
	else
		r->oldest = p->newer;
	p->newer = p->older = NONE;
}

static void list_push_newest(struct lcr_auth_rx *r, struct lcr_auth_peer *p)
{
	uint32_t pi = (uint32_t)(p - r->peers);

	p->older = r->newest;
	p->newer = NONE;
	if (r->newest != NONE)
		r->peers[r->newest].newer = pi;
	else
		r->oldest = pi;
	r->newest = pi;
}

/* A place for a sender just verified: a free one, or the least recently heard's. */
static struct lcr_auth_peer *peer_new(struct lcr_auth_rx *r, uint64_t sender)
{
	struct lcr_auth_peer *p;

	if (r->n_peers < r->peers_max) {
		p = &r->peers[r->n_peers++];
	} else {
		uint32_t old = r->oldest;
		LCR_ASSERT(old != NONE);
		p = &r->peers[old];
		list_unlink(r, p);
		index_remove(r, slot_of(r, p->sender, old));
		r->st.evicted++;
	}
	uint32_t pi = (uint32_t)(p - r->peers);
	sodium_memzero(p, sizeof(*p));
	p->sender = sender;
	p->newer = p->older = NONE;
	index_add(r, sender, pi);
	list_push_newest(r, p);
	return p;
}

/* p was just heard: the newest. */
static void peer_touch(struct lcr_auth_rx *r, struct lcr_auth_peer *p)
{
	if (r->newest == (uint32_t)(p - r->peers))
		return;
	list_unlink(r, p);
	list_push_newest(r, p);
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

/*
 * lcr_auth_open's steps, the tag `tag` over ad[0 .. ad_len): the datagram,
 * boot and counter (len - 16 bytes), and a bound value after them if any.
 */
static uint32_t open_with(struct lcr_auth_rx *r, uint64_t sender, const uint8_t *buf, size_t len,
			  const uint8_t *tag, size_t ad_len)
{
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
	if (!tag_ok(m, r->alg, tag, buf, ad_len, nonce))
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
	peer_touch(r, p);
	r->st.accepted++;
	return LCR_AUTH_OK;
}

uint32_t lcr_auth_open(struct lcr_auth_rx *r, uint64_t sender, const uint8_t *buf, size_t len)
{
	if (len < LCR_AUTH_TRAILER)
		return refuse(r, LCR_AUTH_SHORT);
	return open_with(r, sender, buf, len, buf + len - LCR_AUTH_TAG_BYTES,
			 len - LCR_AUTH_TAG_BYTES);
}

uint32_t lcr_auth_open_bound(struct lcr_auth_rx *r, uint64_t sender, uint8_t *buf, size_t len,
			     uint64_t bound)
{
	uint8_t tag[LCR_AUTH_TAG_BYTES];

	if (len < LCR_AUTH_TRAILER)
		return refuse(r, LCR_AUTH_SHORT);
	/* The bound value where the tag was: datagram, boot, counter, bound in a row. */
	memcpy(tag, buf + len - LCR_AUTH_TAG_BYTES, sizeof(tag));
	put64(buf + len - LCR_AUTH_TAG_BYTES, bound);
	uint32_t why = open_with(r, sender, buf, len, tag, len - LCR_AUTH_TAG_BYTES + 8);
	memcpy(buf + len - LCR_AUTH_TAG_BYTES, tag, sizeof(tag));
	return why;
}
