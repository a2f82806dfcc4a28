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

/*
 * The channels of lcraft-node's client port (docs/wire-protocol.md, "Client
 * authentication"), apart from the UDP transport's (its lcores, 0..63): a
 * client seals its requests on CLIENT, a node its answers on ANSWER, so that
 * neither ever shares a nonce with the other nor with the transport, even
 * under one key.
 */
#define LCR_AUTH_CHANNEL_CLIENT 0x80000000u
#define LCR_AUTH_CHANNEL_ANSWER 0x40000000u

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

/*
 * Read a key from the file at `path`: exactly LCR_AUTH_KEY_BYTES bytes, or
 * twice as many hexadecimal digits (either case) and one optional newline.
 * Refused, each with a sentence naming the path: a file that is not a
 * regular file, one its group or others may read or write (mode & 077: a
 * secret goes in a file only its owner reads, chmod 600), any other size or
 * a character that is no hexadecimal digit, a key of 32 zero bytes. Reads at
 * most 130 bytes. Returns 0, -EINVAL (the contents), -EPERM (the mode) or
 * the -errno of open/read. Setup only; the buffers it read into are wiped.
 */
int lcr_auth_key_load(const char *path, uint8_t key[LCR_AUTH_KEY_BYTES], char *why, size_t why_len);

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

/*
 * lcr_auth_seal for a context that several threads seal with at once (a
 * node's answers on its client port go out from every lcore): each call
 * takes its counter with one atomic add, so no two datagrams share a nonce;
 * they may leave out of counter order, which the receiver's window takes.
 * A context is sealed with this or with lcr_auth_seal, never both.
 */
size_t lcr_auth_seal_shared(struct lcr_auth_tx *t, uint8_t *buf, size_t len);

/*
 * lcr_auth_seal_shared, with the tag also over `bound`, 8 bytes both ends
 * know and the datagram does not carry (u64 little-endian after the
 * counter): the tag is over the datagram, boot, counter and bound. A node's
 * answers bind the client id of the request they answer, so that an answer
 * captured on its way to one client never verifies at another. buf must
 * hold len + LCR_AUTH_TRAILER bytes, as for lcr_auth_seal.
 */
size_t lcr_auth_seal_shared_bound(struct lcr_auth_tx *t, uint8_t *buf, size_t len, uint64_t bound);

/* The counter of the last datagram sealed: how many were (any thread). */
uint64_t lcr_auth_sealed(const struct lcr_auth_tx *t);

/* Wipe the session key (sodium_memzero). */
void lcr_auth_tx_wipe(struct lcr_auth_tx *t);

/* Wipe `len` bytes of a secret (a key's copy) so that no optimisation skips it. */
void lcr_auth_wipe(void *p, size_t len);

/* ---- receiving ------------------------------------------------------------------ */

struct lcr_auth_peer {
	uint64_t sender;
	uint64_t boot;		       /* the current one: older ones are refused */
	uint64_t top;		       /* the highest counter taken in it (0: none) */
	uint64_t used;		       /* the receiver's tick when it last took one */
	uint32_t newer, older;	       /* neighbours in the recency list (UINT32_MAX: none) */
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
	/* Where each sender is: an open-addressing table of peer index + 1 (0:
	 * empty), twice peers_max rounded up to a power of two, probed from a
	 * hash of the sender keyed with `seed` (random), so a lookup costs O(1)
	 * with thousands of senders (a client port) and a sender that chooses
	 * its id cannot choose its slot. */
	uint32_t *index;
	uint32_t index_mask;
	uint64_t seed;
	/* The recency list: newest heard first; its tail is evicted. */
	uint32_t newest, oldest;
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
 * state, about 0.7 KiB each, and an index of 8 bytes each, are allocated
 * here, once, from `alloc`; NULL: malloc). A verified datagram from a sender
 * beyond that many takes the place of the one heard least recently (counted
 * `evicted`; O(1): a recency list); unverified ones never take a place.
 * Finding a sender is O(1) however many there are. Returns 0, -EINVAL
 * (senders_max 0 or above 2^24) or -ENOMEM.
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

/*
 * lcr_auth_open for a datagram sealed with lcr_auth_seal_shared_bound: the
 * tag must be over `bound` too. Writes into the trailer while it checks
 * and puts it back before it returns.
 */
uint32_t lcr_auth_open_bound(struct lcr_auth_rx *r, uint64_t sender, uint8_t *buf, size_t len,
			     uint64_t bound);

/* Wipe every key and give the senders' state back. */
void lcr_auth_rx_free(struct lcr_auth_rx *r);

#endif /* LCR_AUTH_H */
