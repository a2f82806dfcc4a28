/* SPDX-License-Identifier: MIT */
/*
 * A wiped node never rejoins under its old identity with an empty vote
 * (lcraft-node at start; docs/operations.md, "Replace a node whose disk
 * died").
 *
 * Raft's safety rests on every node remembering its vote and the entries it
 * acknowledged. A node whose data directory was lost (a dead disk, a wipe)
 * and that comes back under its old id holds neither: it may vote a second
 * time in a term, and the entries it acknowledged are on fewer nodes than
 * the quorum that committed them. Such a node looks like a new one to
 * itself, so lcraft-node asks the cluster, as etcd does at a bootstrap
 * without a WAL ("member has already been bootstrapped"):
 *
 * - lcr_rejoin_group_state() tells whether a group's directory holds Raft
 *   state (a segment, a snapshot, a vote). Only groups without any are
 *   asked about.
 * - lcr_rejoin_ask() sends MEMBERS (THIS_NODE, docs/wire-protocol.md) to
 *   every other node it knows over the client protocol (with the client key
 *   when the config has one), for each such group, and reads each answer
 *   for evidence that this node id held state in that group. Evidence is
 *   only what cannot be said of a node that never held anything:
 *     1. the answer's `held_state` lists it: the answering node recorded,
 *        durably, that it granted a vote, acknowledged entries or a snapshot,
 *        or sent entries as leader (lcr_group_held, <group>/held), so the
 *        record outlives restarts and leader changes;
 *     2. the leader's matched index for it is above 0: the leader sets it
 *        only from the node's own acknowledgment that it holds the log
 *        through that index durably (engine/replication.c, match_to);
 *     3. a node names it as its leader: a leader was elected, so it saved
 *        its vote for itself in that term;
 *     4. the group's membership is an entry (index > 0) that it wrote as
 *        leader (the log id's node is the entry's proposer).
 *   A node that starts late for the first time (the others elected and
 *   wrote without it) has none of these: nothing of its own was ever
 *   acknowledged, and nobody recorded it. "No evidence" is concluded only
 *   once a majority of the group's voters (those of the newest membership an
 *   answer names, else the config's; this node counted if it is one)
 *   answered without evidence, and the leader the answers name (in the
 *   newest term) answered as the leader, since it alone holds its
 *   followers' progress and the record of those that acknowledged it; until
 *   then it keeps asking, with no time
 *   bound, saying on stderr every `every_ms` what it waits for. A node that
 *   is checking itself answers with "checking": true and an empty
 *   held_state (it holds nothing, so it recorded nothing): the nodes of a
 *   new cluster see each other and start at once.
 * - The identity file <data_dir>/identity names the node and the cluster a
 *   directory belongs to, written at the first start: a directory of
 *   another node id or cluster is refused (lcr_rejoin_mark_check).
 *
 * Setup code, on the main thread before the node opens.
 */
#ifndef LCR_BENCH_REJOIN_H
#define LCR_BENCH_REJOIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* lcraft-node's exit statuses for the two refusals (usage, docs/operations.md). */
#define LCR_REJOIN_EXIT_HELD  3 /* the cluster says this node id held state now lost */
#define LCR_REJOIN_EXIT_OTHER 4 /* the data directory is another node's or cluster's */

#define LCR_REJOIN_WAIT_MS     1000  /* between two lines saying what it waits for, by default */
#define LCR_REJOIN_WAIT_MS_MAX 60000 /* --rejoin-check-ms's largest */
#define LCR_REJOIN_MARK_FILE   "identity"

/*
 * Whether group `group`'s directory under `data_dir` holds Raft state: a log
 * segment, a snapshot, or a meta file with a vote, a purge point or a commit
 * hint (a meta file that does not decode counts: the open judges it).
 * Returns 1, 0 (no directory, or nothing in it yet), or -errno with a
 * sentence.
 */
int lcr_rejoin_group_state(const char *data_dir, uint32_t group, char *why, size_t why_len);

/*
 * The identity file of c->data_dir: 0 if there is none (*present false) or
 * it names c->self and c's cluster (*present true); -EEXIST if it names
 * another node or cluster, -EBADMSG if it is not one, each with a sentence
 * naming the file; another -errno if it cannot be read.
 */
int lcr_rejoin_mark_check(const struct lcr_app_config *c, bool *present, char *why, size_t why_len);

/* Write the identity file (durably: a new file renamed, the directory synced): 0 or -errno. */
int lcr_rejoin_mark_write(const struct lcr_app_config *c, char *why, size_t why_len);

struct lcr_rejoin_verdict {
	bool held;	   /* the cluster says node c->self held state in a group asked about */
	uint32_t group;	   /* held: that group */
	uint32_t answered; /* nodes that answered, over every group */
	uint32_t asked;	   /* nodes asked (the config's, --peer, learned from answers) */
	char said[640];	   /* held: what a node said; else what was learned */
};

/* What the asking does while it waits (each may be NULL). */
struct lcr_rejoin_hooks {
	/* Answer the questions that came to this node's own client port, without
	 * waiting (other nodes checking themselves ask it too). */
	void (*serve)(void *ctx);
	/* A line saying what it waits for, every `every_ms`. */
	void (*progress)(void *ctx, const char *line);
	void *ctx;
};

/*
 * Ask every node c knows but c->self about the groups of `groups` (n of
 * them), one group after the other, each until a majority of its voters
 * answered without evidence (rejoin.h's top), and stop at the first
 * evidence. No time bound: while it waits, h->serve runs every 10 ms at
 * most apart and h->progress every `every_ms`. Returns 0 with *v, or -errno
 * with v->said (no client could be opened: nothing was asked).
 */
int lcr_rejoin_ask(const struct lcr_app_config *c, const uint32_t *groups, uint32_t n,
		   uint64_t every_ms, const struct lcr_rejoin_hooks *h,
		   struct lcr_rejoin_verdict *v);

#endif /* LCR_BENCH_REJOIN_H */
