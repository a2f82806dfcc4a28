/* SPDX-License-Identifier: MIT */
/*
 * The vote/meta store of one group: a file of two 4 KiB slots written in
 * turn, each with a sequence number and a CRC32C. Recovery takes the valid
 * slot with the highest sequence. Only one write is ever in flight, so only
 * the newest slot can be torn, and the other still holds the previous state.
 *
 * What a slot holds: the vote, the purge point of the log (entries up to it
 * are gone from the segments) and a commit hint.
 */
#ifndef LCR_META_H
#define LCR_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

#define LCR_META_SLOT 4096
#define LCR_META_FILE "meta"

struct lcr_meta_state {
	struct lcr_vote vote;
	struct lcr_log_id purged;
	struct lcr_log_id committed;
};

/* Slot encoding; the whole slot is LCR_META_SLOT bytes (zero padded). */
void lcr_meta_encode(void *slot, uint32_t group, uint64_t seq, const struct lcr_meta_state *st);

/*
 * Decode one slot. Returns 1 for a valid slot (*seq and *st set), 0 for an
 * all-zero slot, -EBADMSG for anything else (torn or corrupt). A valid slot's
 * seq, terms and indexes are below LCR_NUMBER_MAX.
 */
int lcr_meta_decode(const void *slot, uint32_t group, uint64_t *seq, struct lcr_meta_state *st);

/*
 * Choose the state from the two slots' bytes (2 * LCR_META_SLOT, or fewer
 * for a short file). Returns 0 with *st and *seq (0: no valid slot, all
 * zeros or a torn first write), or -EBADMSG with `why` naming the slot and its
 * offset: both slots damaged, a slot of another format version ("format
 * version N, this build reads M"), an intact slot with values out of range
 * or with flags, reserved bytes or the bytes after its fields not zero (the
 * offset named), a valid slot in the other's place.
 */
int lcr_meta_recover(const void *buf, size_t len, uint32_t group, struct lcr_meta_state *st,
		     uint64_t *seq, char *why, size_t why_len);

#endif /* LCR_META_H */
