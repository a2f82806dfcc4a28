/* SPDX-License-Identifier: MIT */
/*
 * Authenticated datagrams (docs/wire-protocol.md, "Authentication"): with a
 * cluster key, every datagram carries a 32-byte trailer
 *
 *   off       size field
 *   len         8  boot: the sender's start count, grows with every start
 *   len + 8     8  counter: 1, 2, 3 ... per datagram of this sender context
 *   len + 16   16  tag over bytes 0 .. len + 16 (the datagram, boot, counter)
 *
 * The tag is AES-256-GCM or ChaCha20-Poly1305 (IETF) with an empty plaintext
 * and the datagram as additional data (a GMAC), under a session key per
 * sender and boot:
 *
 *   K_s   = BLAKE2b-256(key = cluster key,
 *                       "lcraft-mac-v1" || cluster u64 || sender u64 || boot u64)
 *   nonce = counter u64 || channel u32            (little-endian, 12 bytes)
 *
 * so a nonce never repeats under one key as long as (sender, boot, channel)
 * names one sender context: a boot is used by one start of a node, and the
 * channel tells apart the contexts of one start (the UDP transport's lcore).
 * The receiver knows the channel (its own lcore: lcore i talks to lcore i),
 * so it is not on the wire.
 *
 * The receiver keeps, per sender: the boot it takes now, that boot's session
 * key, and a replay window (the highest counter and which of the
 * LCR_AUTH_WINDOW below it arrived). A datagram of an older boot is dropped
 * before any work; a newer boot's key is derived into one candidate slot
 * (so forged boots cost one derivation each and no memory); the tag is
 * checked in constant time; only then may a newer boot replace the current
 * one, and only then is the counter taken. Nothing is allocated per datagram.
 *
 * This module knows no wire format: the caller says who claims to have sent a
 * datagram (the UDP transport reads the header's `from`, bounds-checked, and
 * nothing else before lcr_auth_open says yes). One context is used by one
 * thread.
 */
#ifndef LCR_AUTH_H
#define LCR_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

#define LCR_AUTH_KEY_BYTES 32 /* the cluster key */
#define LCR_AUTH_TAG_BYTES 16
#define LCR_AUTH_TRAILER   32	/* boot, counter, tag */
#define LCR_AUTH_WINDOW	   1024 /* counters below the highest that may still arrive once */
/* Bitmap words of a replay window: LCR_AUTH_WINDOW bits plus the word of the highest. */
#define LCR_AUTH_WORDS (LCR_AUTH_WINDOW / 64 + 1)
/* A session key ready to use: libsodium's expanded AES-GCM state (512 bytes
 * in 1.0.18), or the 32-byte ChaCha20-Poly1305 key at its start. */
#define LCR_AUTH_STATE_BYTES 512

enum lcr_auth_alg {
	LCR_AUTH_NONE = 0,
	LCR_AUTH_AES256GCM = 1,	       /* "aes256gcm": needs AES-NI and PCLMUL */
	LCR_AUTH_CHACHA20POLY1305 = 2, /* "chacha20poly1305": any CPU */
	LCR_AUTH_ALG_MAX
};

/* Why lcr_auth_open refused a datagram (the names are metrics). */
enum lcr_auth_drop {
	LCR_AUTH_OK = 0,
	LCR_AUTH_SHORT,	   /* "mac_short": no room for a trailer */
	LCR_AUTH_OLD_BOOT, /* "old_boot": a boot older than the sender's current one */
	LCR_AUTH_BAD_MAC,  /* "bad_mac": the tag does not verify */
	LCR_AUTH_REPLAYED, /* "replayed": a counter seen before, or behind the window */
	LCR_AUTH_DROP_MAX
};

/* "aes256gcm", "chacha20poly1305", "none"; "unknown" out of range. */
const char *lcr_auth_alg_name(uint32_t alg);
/* The alg a name gives (lcr_auth_alg_name's), or -EINVAL. */
int lcr_auth_alg_parse(const char *name, uint32_t *alg);
/* The metric name of a drop reason; "unknown" out of range. */
const char *lcr_auth_drop_name(uint32_t reason);

/*
 * Whether this process can use `alg` (initialises libsodium): 0, or -errno
 * with a sentence: -EINVAL for an unknown alg, -ENOTSUP for aes256gcm on a
 * CPU without AES-NI (the cluster must then agree on chacha20poly1305: an alg
 * is configuration, never chosen per node), -EIO when libsodium fails.
 * Any thread, any time (setup).
 */
int lcr_auth_usable(uint32_t alg, char *why, size_t why_len);

/* What every member of a cluster is configured with. */
struct lcr_auth_key {
	uint32_t alg;	  /* enum lcr_auth_alg, not NONE */
	uint64_t cluster; /* the cluster id: keys of two clusters never meet */
	uint8_t key[LCR_AUTH_KEY_BYTES];
};

struct lcr_auth_mac {
	_Alignas(16) uint8_t st[LCR_AUTH_STATE_BYTES];
};

/* ---- sending ------------------------------------------------------------------ */

struct lcr_auth_tx {
	struct lcr_auth_mac mac; /* K_s of (sender, boot) */
	uint32_t alg;
	uint32_t channel;
	uint64_t boot;
	uint64_t counter; /* of the last datagram sealed; the next gets counter + 1 */
};

/*
 * A sender context for `sender` in its start `boot` (>= 1), on `channel`.
 * Returns 0, -EINVAL (alg unusable: lcr_auth_usable says why; boot 0), or
 * -EALREADY when this process already made a context for the same alg,
 * cluster, sender and channel with this boot or a later one: its counters
 * would start again at 1 under the same key, which GCM must never see. (A
 * process keeps the last boot of up to 256 of them; across processes it is
 * the node's business: its boot must grow with every start.)
 */
int lcr_auth_tx_init(struct lcr_auth_tx *t, const struct lcr_auth_key *k, uint64_t sender,
		     uint64_t boot, uint32_t channel);

/*
 * Append the trailer to the `len` bytes at buf (buf must hold len +
 * LCR_AUTH_TRAILER). Returns the new length. Every call takes a new counter,
 * so sending the same bytes twice (a retransmission) gives two datagrams.
 */
size_t lcr_auth_seal(struct lcr_auth_tx *t, uint8_t *buf, size_t len);

/* Wipe the session key (sodium_memzero). */
void lcr_auth_tx_wipe(struct lcr_auth_tx *t);

/* Wipe `len` bytes of a secret (a key's copy) so that no optimisation skips it. */
void lcr_auth_wipe(void *p, size_t len);

/* ---- receiving ------------------------------------------------------------------ */

struct lcr_auth_peer {
	uint64_t sender;
	uint64_t boot;		       /* the current one: older ones are refused */
	uint64_t top;		       /* the highest counter taken in it (0: none) */
	uint64_t used;		       /* the receiver's tick when it last took one (eviction) */
	uint64_t seen[LCR_AUTH_WORDS]; /* bit c % (64 * WORDS): counter c taken */
	struct lcr_auth_mac mac;
};

struct lcr_auth_rx_stats {
	uint64_t accepted;
	uint64_t drops[LCR_AUTH_DROP_MAX];
	uint64_t derivations;	/* session keys derived: one per new (sender, boot) tried */
	uint64_t boot_switches; /* a known sender's newer boot took over */
	uint64_t evicted;	/* senders forgotten to make room (least recently heard) */
};

struct lcr_auth_rx {
	uint32_t alg;
	uint32_t channel;
	uint64_t cluster;
	uint8_t key[LCR_AUTH_KEY_BYTES]; /* the cluster key, to derive session keys */
	struct lcr_auth_peer *peers;	 /* peers_max, allocated at init */
	uint32_t n_peers, peers_max;
	/* The candidate: the last session key derived for a (sender, boot) that
	 * has not verified yet; a repeated forged boot costs no derivation. */
	bool cand_valid;
	uint64_t cand_sender, cand_boot;
	struct lcr_auth_mac cand;
	uint64_t tick;
	struct lcr_auth_rx_stats st;
	struct lcr_allocator alloc;
};

/*
 * A receiver context on `channel` for up to `senders_max` senders (their
 * state, about 0.7 KiB each, is allocated here, once, from `alloc`; NULL:
 * malloc). A verified datagram from a sender beyond that many takes the
 * place of the one heard least recently (counted `evicted`); unverified ones
 * never take a place. Returns 0, -EINVAL or -ENOMEM.
 */
int lcr_auth_rx_init(struct lcr_auth_rx *r, const struct lcr_auth_key *k, uint32_t channel,
		     uint32_t senders_max, const struct lcr_allocator *alloc);

/*
 * Check the datagram of `len` bytes at buf (trailer included) that claims to
 * come from `sender`, in this order: length (SHORT), boot older than the
 * sender's current (OLD_BOOT), tag (BAD_MAC), counter (REPLAYED). Returns
 * LCR_AUTH_OK (the datagram is the first `len - LCR_AUTH_TRAILER` bytes; the
 * sender's state took it) or the reason, counted in r->st, with the state as
 * it was. Reads buf, never writes it.
 */
uint32_t lcr_auth_open(struct lcr_auth_rx *r, uint64_t sender, const uint8_t *buf, size_t len);

/* Wipe every key and give the senders' state back. */
void lcr_auth_rx_free(struct lcr_auth_rx *r);

#endif /* LCR_AUTH_H */
