/* SPDX-License-Identifier: MIT */
/*
 * Planted bugs: slips the simulation must catch (tests/sim, `--bug`). They
 * exist only in a core compiled with LCR_PLANTED_BUGS, which the simulation
 * does for itself; the library is built without them and has no way to turn
 * them on. Not installed.
 */
#ifndef LCR_BUGS_H
#define LCR_BUGS_H

#include <stdint.h>

struct lcr_core;

enum lcr_bug {
	LCR_BUG_COMMIT_WITHOUT_QUORUM = 1u << 0,
	LCR_BUG_ACK_BEFORE_FLUSH = 1u << 1,
	LCR_BUG_VOTE_NOT_PERSISTED = 1u << 2,
	LCR_BUG_GRANT_STALE_LOG = 1u << 3,
	LCR_BUG_LEASE_IGNORED = 1u << 4,
	LCR_BUG_VOTE_BEFORE_DURABLE = 1u << 5,
	LCR_BUG_FAR_TERM_ACCEPTED = 1u << 6,
	LCR_BUG_NO_STEP_DOWN = 1u << 7,
	LCR_BUG_FOLLOWER_READ_STALE = 1u << 8,
	LCR_BUG_SNAPSHOT_STALE_INSTALL = 1u << 9, /* install a snapshot older than the commit */
	LCR_BUG_PURGE_INFLIGHT = 1u << 10,	  /* purge entries an inflight request needs */
	LCR_BUG_JOINT_SINGLE_QUORUM =
		1u << 11, /* commit under a joint config on the new one's quorum */
	LCR_BUG_REMOVED_STILL_VOTES = 1u << 12, /* elections count the committed config's voters */
	LCR_BUG_ADDRS_DROPPED = 1u << 13,  /* a change keeps only the addresses its target names */
	LCR_BUG_RETAIN_DROPPED = 1u << 14, /* a joint entry omits the voters kept as learners */
};

#ifdef LCR_PLANTED_BUGS
/* Plant `bugs` (enum lcr_bug bits) in a replica, before lcr_core_start(). */
void lcr_core_plant_bugs(struct lcr_core *c, uint32_t bugs);
#endif

#endif /* LCR_BUGS_H */
