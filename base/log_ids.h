/* SPDX-License-Identifier: MIT */
/*
 * The log-id index: which leader wrote each index of a log (openraft's
 * LogIdList). The core keeps one per replica to answer "the log id at index
 * i" for elections and replication; io/ keeps one per log to recover and to
 * tell the runtime what it loaded. Neither owns the other's.
 */
#ifndef LCR_LOG_IDS_H
#define LCR_LOG_IDS_H

#include "lcr_assert.h"
#include "types.h"

/*
 * Which leader wrote each index, stored as the first log id of every run of
 * entries by one leader (openraft's LogIdList). Grows only when a new leader's
 * entries arrive, never per entry.
 */
struct lcr_log_ids {
	struct lcr_log_id *keys; /* keys[i]: first log id of run i, ascending */
	uint32_t n;
	uint32_t cap;
	struct lcr_log_id purged; /* last purged log id (none: nothing purged) */
	struct lcr_log_id last;	  /* last log id; == purged when the log is empty */
	bool fixed;		  /* capacity fixed: a new run past it fails with -ENOSPC */
	struct lcr_allocator alloc;
};

int lcr_log_ids_init(struct lcr_log_ids *l, struct lcr_allocator alloc, uint32_t cap,
		     struct lcr_log_id purged);
void lcr_log_ids_free(struct lcr_log_ids *l);
/* The log id at `index`; false when the index is purged away or beyond last. */
bool lcr_log_ids_get(const struct lcr_log_ids *l, uint64_t index, struct lcr_log_id *out);
/* True when `id` is in the log (the purged id and none count as present). */
bool lcr_log_ids_has(const struct lcr_log_ids *l, struct lcr_log_id id);
/* Append the next id (index last+1). May allocate when a new leader's run starts. */
int lcr_log_ids_append_slow(struct lcr_log_ids *l, struct lcr_log_id id);
/*
 * Inline because it runs once per entry on every replica: an entry that
 * continues the last run only moves `last` (engine-mode profile: ~30
 * instructions per entry and replica through the call, ~8 inline).
 */
static inline int lcr_log_ids_append(struct lcr_log_ids *l, struct lcr_log_id id)
{
	if (lcr_likely(l->n > 0 && id.index == l->last.index + 1 &&
		       lcr_leader_id_eq(l->keys[l->n - 1].lid, id.lid))) {
		l->last = id;
		return 0;
	}
	return lcr_log_ids_append_slow(l, id);
}
/* Remove every entry with index >= since (since > purged.index). */
void lcr_log_ids_truncate(struct lcr_log_ids *l, uint64_t since);
/* Forget every entry up to and including `upto` (which must be in the log). */
void lcr_log_ids_purge(struct lcr_log_ids *l, struct lcr_log_id upto);
/* Drop every entry: the log is empty, purged up to `at` (a snapshot installed). */
void lcr_log_ids_reset(struct lcr_log_ids *l, struct lcr_log_id at);
/* Room for one more run without allocating. */
bool lcr_log_ids_can_start_run(const struct lcr_log_ids *l);
/* The first log id of the last leader's run (none when empty). */
struct lcr_log_id lcr_log_ids_last_run_first(const struct lcr_log_ids *l);

#endif /* LCR_LOG_IDS_H */
