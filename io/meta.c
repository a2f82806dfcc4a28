/* SPDX-License-Identifier: MIT */
/* Vote/meta slots: encoding and recovery (see meta.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "meta.h"
#include "types.h"

#define META_MAGIC   0x4d52434cu /* "LCRM" little-endian */
#define META_VERSION 1

/* On-disk layout of a slot's first bytes, little-endian, no padding surprises. */
struct meta_disk {
	uint32_t magic;
	uint32_t crc; /* CRC32C of bytes [8, sizeof(struct meta_disk)) */
	uint16_t version;
	uint16_t flags;
	uint32_t group;
	uint64_t seq;
	uint64_t vote_term;
	uint32_t vote_node;
	uint32_t vote_committed;
	uint64_t purged_term;
	uint32_t purged_node;
	uint32_t reserved0;
	uint64_t purged_index;
	uint64_t committed_term;
	uint32_t committed_node;
	uint32_t reserved1;
	uint64_t committed_index;
};

_Static_assert(sizeof(struct meta_disk) == 88, "meta slot layout");

void lcr_meta_encode(void *slot, uint32_t group, uint64_t seq, const struct lcr_meta_state *st)
{
	struct meta_disk d;

	memset(slot, 0, LCR_META_SLOT);
	memset(&d, 0, sizeof(d));
	d.magic = META_MAGIC;
	d.version = META_VERSION;
	d.group = group;
	d.seq = seq;
	d.vote_term = st->vote.lid.term;
	d.vote_node = st->vote.lid.node;
	d.vote_committed = st->vote.committed;
	d.purged_term = st->purged.lid.term;
	d.purged_node = st->purged.lid.node;
	d.purged_index = st->purged.index;
	d.committed_term = st->committed.lid.term;
	d.committed_node = st->committed.lid.node;
	d.committed_index = st->committed.index;
	d.crc = lcr_crc32c(0, (const char *)&d + 8, sizeof(d) - 8);
	memcpy(slot, &d, sizeof(d));
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/*
 * Whether an intact slot's flags, reserved words and padding are zeros, as
 * this build writes them (else `why` names the offset in the file). A torn
 * write cannot make them otherwise: it leaves zeros there whichever sectors
 * it reached, since the slot it overwrote had them too.
 */
static bool zeros_hold(const struct meta_disk *d, const void *slot, size_t base, char *why,
		       size_t why_len)
{
	if (d->flags != 0) {
		snprintf(why, why_len, "flags 0x%04x at offset %zu, this build writes none",
			 d->flags, base + offsetof(struct meta_disk, flags));
		return false;
	}
	if (d->reserved0 != 0 || d->reserved1 != 0) {
		snprintf(why, why_len, "reserved bytes at offset %zu are not zero",
			 base + (d->reserved0 ? offsetof(struct meta_disk, reserved0)
					      : offsetof(struct meta_disk, reserved1)));
		return false;
	}
	for (size_t i = sizeof(*d); i < LCR_META_SLOT; i++)
		if (((const unsigned char *)slot)[i]) {
			snprintf(why, why_len,
				 "byte at offset %zu, after the slot's fields, is not zero",
				 base + i);
			return false;
		}
	return true;
}

/*
 * Decode the slot at byte `base` of the file: 1 valid, 0 all zeros, -EBADMSG
 * damaged (a torn write), -ERANGE intact but not a state this build wrote for
 * this group: another format version, another group, flags, reserved bytes or
 * padding not zero, values out of range (`why` says which).
 */
static int decode(const void *slot, size_t base, uint32_t group, uint64_t *seq,
		  struct lcr_meta_state *st, char *why, size_t why_len)
{
	struct meta_disk d;

	if (all_zero(slot, LCR_META_SLOT))
		return 0;
	memcpy(&d, slot, sizeof(d));
	/* The magic and the version keep their place in every version; the
	 * checksum's range may not, so the version is judged first. */
	if (d.magic == META_MAGIC && d.version != META_VERSION) {
		snprintf(why, why_len, "format version %u, this build reads %u", d.version,
			 META_VERSION);
		return -ERANGE;
	}
	if (d.magic != META_MAGIC || d.crc != lcr_crc32c(0, (const char *)slot + 8, sizeof(d) - 8))
		return -EBADMSG;
	/* Intact: a bad value here was written so, which no torn write does.
	 * Another group's slot (a file from another folder) is not a torn
	 * write of ours either: taking our other slot instead would bring back
	 * an older vote. */
	if (d.group != group) {
		snprintf(why, why_len, "a slot of group %u, this is group %u", d.group, group);
		return -ERANGE;
	}
	if (!zeros_hold(&d, slot, base, why, why_len))
		return -ERANGE;
	if (d.seq == 0 || d.seq >= LCR_NUMBER_MAX || d.vote_committed > 1 ||
	    d.vote_term >= LCR_NUMBER_MAX || d.purged_term >= LCR_NUMBER_MAX ||
	    d.purged_index >= LCR_NUMBER_MAX || d.committed_term >= LCR_NUMBER_MAX ||
	    d.committed_index >= LCR_NUMBER_MAX) {
		snprintf(why, why_len,
			 "seq %llu, vote %llu/%u/%u, purged %llu/%llu or commit hint %llu/%llu out "
			 "of range (terms, indexes and seq below 2^62, committed 0 or 1)",
			 (unsigned long long)d.seq, (unsigned long long)d.vote_term, d.vote_node,
			 d.vote_committed, (unsigned long long)d.purged_term,
			 (unsigned long long)d.purged_index, (unsigned long long)d.committed_term,
			 (unsigned long long)d.committed_index);
		return -ERANGE;
	}
	*seq = d.seq;
	memset(st, 0, sizeof(*st));
	st->vote.lid.term = d.vote_term;
	st->vote.lid.node = d.vote_node;
	st->vote.committed = d.vote_committed;
	st->purged.lid.term = d.purged_term;
	st->purged.lid.node = d.purged_node;
	st->purged.index = d.purged_index;
	st->committed.lid.term = d.committed_term;
	st->committed.lid.node = d.committed_node;
	st->committed.index = d.committed_index;
	return 1;
}

int lcr_meta_decode(const void *slot, uint32_t group, uint64_t *seq, struct lcr_meta_state *st)
{
	char why[8];
	int rc = decode(slot, 0, group, seq, st, why, sizeof(why));
	return rc == -ERANGE ? -EBADMSG : rc;
}

int lcr_meta_recover(const void *buf, size_t len, uint32_t group, struct lcr_meta_state *st,
		     uint64_t *seq, char *why, size_t why_len)
{
	static const unsigned char zero[LCR_META_SLOT];
	struct lcr_meta_state s[2];
	uint64_t q[2] = { 0, 0 };
	int rc[2];

	memset(st, 0, sizeof(*st));
	*seq = 0;
	if (len != 0 && len != 2 * LCR_META_SLOT) {
		snprintf(why, why_len, "meta file is %zu bytes, expected %d", len,
			 2 * LCR_META_SLOT);
		return -EBADMSG;
	}
	for (int i = 0; i < 2; i++) {
		const void *slot = len ? (const void *)((const char *)buf + i * LCR_META_SLOT)
				       : (const void *)zero;
		char w[192];
		rc[i] = decode(slot, (size_t)i * LCR_META_SLOT, group, &q[i], &s[i], w, sizeof(w));
		if (rc[i] == -ERANGE) {
			/* Not ours to read, or not ours to trust, whatever the other holds. */
			snprintf(why, why_len, "meta slot at offset %d: %s", i * LCR_META_SLOT, w);
			return -EBADMSG;
		}
	}
	/* Slot (seq & 1) is written for each seq, so both bad means more than
	 * one write went wrong: that is corruption, not a torn write. */
	if (rc[0] < 0 && rc[1] < 0) {
		snprintf(why, why_len, "both meta slots are corrupt (offsets 0 and %d)",
			 LCR_META_SLOT);
		return -EBADMSG;
	}
	int best = -1;
	for (int i = 0; i < 2; i++)
		if (rc[i] == 1 && (best < 0 || q[i] > q[best]))
			best = i;
	if (best < 0)
		return 0; /* fresh: nothing was ever written (or only a torn first write) */
	/* A valid slot must sit where its sequence number says. */
	if ((q[best] & 1) != (uint64_t)best) {
		snprintf(why, why_len,
			 "meta slot at offset %d holds seq %llu, which belongs to the other slot",
			 best * LCR_META_SLOT, (unsigned long long)q[best]);
		return -EBADMSG;
	}
	*st = s[best];
	*seq = q[best];
	return 0;
}
