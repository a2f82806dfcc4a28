/* SPDX-License-Identifier: MIT */
/*
 * The replicated key-value state machine of lcraft-node: put, get, cas,
 * delete over byte-string keys (<= 1 KiB) and values (<= 8 KiB).
 *
 * A write is one log entry: a 32-byte command header, then key, value and
 * expected value (layout below, little-endian). Applying a command is
 * deterministic, so every replica that applies the same log holds the same
 * map. Each client's latest request id and its outcome are part of the state
 * (a session table), so a request retried after a lost answer or a leader
 * change is applied at most once and answered with its first outcome.
 *
 *   offset size
 *   0      1    op (LCR_CLIENT_PUT, _CAS, _DELETE)
 *   1      1    flags: LCR_KV_EXPECT_VALUE (CAS only); 0 in entries written
 *               before the flag existed, which keep their meaning
 *   2      2    reserved, 0
 *   4      4    key_len
 *   8      4    value_len
 *   12     4    expect_len (CAS)
 *   16     8    client id
 *   24     8    request id
 *   32     ...  key, value, expect
 *
 * CAS compares the key's current value with the expected one: with
 * LCR_KV_EXPECT_VALUE the key must be present and hold exactly `expect`
 * (which may be empty); without it an empty `expect` means "the key is
 * absent" and a non-empty one "present and equal".
 *
 * Sessions: one per client id (0: none, no deduplication), in 1,024 sets of
 * 8 ways by a hash of the id; a client new to a full set replaces that set's
 * least recently active one, which is then forgotten (every replica forgets
 * the same one: the choice depends on the log alone). A request id above the
 * session's last is applied; the last one again is answered with its stored
 * outcome; an older one is answered ERROR (LCR_KV_ERR_STALE) and not applied.
 *
 * Only the owning lcore touches a kv (no locks).
 */
#ifndef LCR_KV_H
#define LCR_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lcraft.h"
#include "wire.h"

#define LCR_KV_CMD_HDR 32

/*
 * CAS: `expect` is a value the key must hold, even when empty (else an empty
 * `expect` means "absent"). The command's byte 1 (a log format, so its value
 * never changes) uses the bit of the client request's flags
 * (LCR_CLIENT_F_EXPECT_VALUE, CLIENT_REQ byte 17): a request's flags go into
 * its command as they are (kv.c asserts the two agree).
 */
#define LCR_KV_EXPECT_VALUE 0x01
#define LCR_KV_FLAGS_KNOWN  LCR_KV_EXPECT_VALUE

/*
 * The result of applying a command (lcr_kv_apply's `out`): byte 0 the client
 * status (enum lcr_client_status). When it is ERROR, byte 1 says why (enum
 * lcr_kv_error) and, for LCR_KV_ERR_STALE, bytes 2..9 hold the client's last
 * applied request id (little-endian).
 */
enum lcr_kv_error {
	LCR_KV_ERR_MALFORMED = 1, /* the entry is not a command: nothing changed */
	LCR_KV_ERR_STALE = 2,	  /* request id below the client's last: not applied */
};
#define LCR_KV_RESULT_MAX 10

struct lcr_kv;

/* Counters, for metrics. */
struct lcr_kv_stats {
	uint64_t keys, bytes; /* live keys and their key + value bytes */
	uint64_t applied, puts, cas_ok, cas_failed, deletes;
	uint64_t duplicates; /* resends of a client's last request, answered from its session */
	uint64_t stale;	     /* requests older than their client's last (answered ERROR) */
	uint64_t malformed;  /* entries that are not commands (answered ERROR) */
	uint64_t sessions;
};

struct lcr_kv *lcr_kv_new(void);
void lcr_kv_free(struct lcr_kv *kv);

/*
 * Encode a write into `buf` (cap bytes) with the request's flags
 * (LCR_KV_EXPECT_VALUE, CAS only). Returns its length, or 0 if the op is not
 * a write, a field is over its limit, the key is empty or the flags do not
 * fit the op.
 */
size_t lcr_kv_encode(void *buf, size_t cap, const struct lcr_client_req *r);

/*
 * The lcr_sm_ops.apply callback: apply one committed entry. The result
 * (`out`, at most LCR_KV_RESULT_MAX bytes, layout above) starts with the
 * client status; a CAS that failed is answered with the value current at
 * that point, which the caller reads with lcr_kv_get() inside its completion
 * (it runs right after this entry is applied, before the next).
 */
void lcr_kv_apply(void *kv, const struct lcr_entry *e, void *out, uint32_t *out_len);

/* Look a key up: true and the value (valid until the next apply), or false. */
bool lcr_kv_get(const struct lcr_kv *kv, const void *key, uint32_t key_len, const uint8_t **value,
		uint32_t *value_len);

void lcr_kv_stats(const struct lcr_kv *kv, struct lcr_kv_stats *st);

/*
 * The digest of the store's contents: equal on two stores exactly when they
 * hold the same keys with the same values (up to a 64-bit hash's
 * collisions), whatever the order of the writes that made them, so replicas
 * that applied the same entries, or restored a snapshot of them, agree.
 *
 *   digest = sum over the live pairs (key, value), modulo 2^64, of
 *            SipHash-2-4(k, key || value || u32le(len(key)))
 *
 * SipHash-2-4 is libsodium's crypto_shorthash (Aumasson and Bernstein's
 * reference function) with the 16-byte key k = the ASCII bytes
 * "lcraft-kv-digest" (no terminator); its 8-byte output is read as a
 * little-endian u64. The key's length after the value makes the pairs
 * ("ab", "c") and ("a", "bc") hash apart. An empty store's digest is 0. The
 * session table and the counters are not in it.
 *
 * Kept up to date on every change (put, a CAS that succeeds, delete,
 * restore): the new pair is hashed once, O(key + value), and its term kept
 * beside it (8 bytes a key), so an overwrite or a delete takes the old term
 * out without hashing again.
 * Returns false (and the digest of a partial store) between restore_begin
 * and restore_end, when the store is neither the old state nor the new one.
 */
bool lcr_kv_digest(const struct lcr_kv *kv, uint64_t *digest);

/*
 * Snapshots (lcr_sm_ops' hooks): the cursor is a frozen view, the header
 * and the session table copied and the live keys' memory kept until it
 * closes (what apply() replaces or deletes meanwhile is freed then). The
 * format is in kv.c. A restore rebuilds the table from the bytes and checks
 * the keys and bytes against the snapshot's counters (-EBADMSG if not); it
 * may begin while a cursor is open, which goes on reading its frozen view.
 */
void *lcr_kv_snapshot_open(void *kv, int *err);
long lcr_kv_snapshot_read(void *kv, void *cursor, void *buf, size_t cap);
void lcr_kv_snapshot_close(void *kv, void *cursor);
int lcr_kv_restore_begin(void *kv, const struct lcr_snapshot_meta *meta);
int lcr_kv_restore_chunk(void *kv, const void *data, size_t len);
int lcr_kv_restore_end(void *kv);

/* apply and the six snapshot hooks. */
extern const struct lcr_sm_ops lcr_kv_ops;

#endif /* LCR_KV_H */
