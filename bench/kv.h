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
 *   1      3    reserved, 0
 *   4      4    key_len
 *   8      4    value_len
 *   12     4    expect_len (CAS)
 *   16     8    client id
 *   24     8    request id
 *   32     ...  key, value, expect
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

struct lcr_kv;

/* Counters, for metrics. */
struct lcr_kv_stats {
	uint64_t keys, bytes; /* live keys and their key + value bytes */
	uint64_t applied, puts, cas_ok, cas_failed, deletes;
	uint64_t duplicates; /* retried requests answered from the session table */
	uint64_t malformed;  /* entries that are not commands (answered ERROR) */
	uint64_t sessions;
};

struct lcr_kv *lcr_kv_new(void);
void lcr_kv_free(struct lcr_kv *kv);

/*
 * Encode a write into `buf` (cap bytes). Returns its length, or 0 if the op
 * is not a write or a field is over its limit.
 */
size_t lcr_kv_encode(void *buf, size_t cap, const struct lcr_client_req *r);

/*
 * The lcr_sm_ops.apply callback: apply one committed entry. The result
 * (`out`, 1 byte) is the client status (enum lcr_client_status); a CAS that
 * failed is answered with the value current at that point, which the caller
 * reads with lcr_kv_get() inside its completion (it runs right after this
 * entry is applied, before the next).
 */
void lcr_kv_apply(void *kv, const struct lcr_entry *e, void *out, uint32_t *out_len);

/* Look a key up: true and the value (valid until the next apply), or false. */
bool lcr_kv_get(const struct lcr_kv *kv, const void *key, uint32_t key_len, const uint8_t **value,
		uint32_t *value_len);

void lcr_kv_stats(const struct lcr_kv *kv, struct lcr_kv_stats *st);

#endif /* LCR_KV_H */
