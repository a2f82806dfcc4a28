/* SPDX-License-Identifier: MIT */
/*
 * Snapshots and purge (openraft's snapshot policy, on_building_snapshot_done,
 * calc_purge_upto, try_purge_log and following_handler::install_full_snapshot).
 *
 * Pointers, always: purged <= snapshot <= applied <= committed. A snapshot is
 * built from the state machine as the runtime finds it (at least `applied`);
 * once it is durable the log up to max_in_snapshot_log_to_keep entries
 * before it may go, in steps of purge_batch_size, but only what is durable
 * here and, on a leader, only what no follower's inflight request still
 * needs. A follower whose next entry is purged gets the snapshot instead
 * (replication.c); it installs one only when it is newer than its commit.
 */
#include <string.h>

#include "core_int.h"

/* ---- building ----------------------------------------------------------------- */

static void build(struct lcr_core *c)
{
	c->building = true;
	c->snap_tried = c->applied;
	lcr_core_emit(c, LCR_CMD_BUILD_SNAPSHOT);
}

void lcr_snapshot_maybe_build(struct lcr_core *c)
{
	uint64_t since = c->cfg.snapshot_logs_since_last;
	uint64_t base = c->snapshot.last.index;

	if (c->building || since == 0)
		return;
	if (c->snap_tried.index > base)
		base = c->snap_tried.index;
	if (c->applied.index >= base + since)
		build(c);
}

void lcr_snapshot_trigger(struct lcr_core *c)
{
	if (!c->building && c->applied.index > c->snapshot.last.index)
		build(c);
}

void lcr_snapshot_built(struct lcr_core *c, const struct lcr_snapshot_meta *meta, int err)
{
	if (!c->building)
		return; /* not ours to count (a stale report) */
	c->building = false;
	if (err != 0) {
		c->n_snap_failed++;
		return;
	}
	/* The state machine holds only committed entries, which our log holds
	 * (or purged): anything else is a confused report, not a snapshot. */
	if (meta->last.index > c->apply_sent.index ||
	    (meta->last.index > c->log.purged.index && !lcr_log_ids_has(&c->log, meta->last))) {
		c->n_snap_failed++;
		return;
	}
	c->n_snap_built++;
	/* An install may have moved past it meanwhile: an older one changes nothing. */
	if (meta->last.index <= c->snapshot.last.index)
		return;
	const struct lcr_membership *m = lcr_mship_at(c, meta->last.index);
	if (!m) { /* too old to know its membership: no use to a follower */
		c->n_snap_failed++;
		return;
	}
	c->snap_m = *m;
	c->snapshot = *meta;
	lcr_purge(c, 0, false);
}

/* ---- purge -------------------------------------------------------------------- */

void lcr_purge(struct lcr_core *c, uint64_t upto, bool manual)
{
	uint64_t snap = c->snapshot.last.index;

	if (!manual) {
		uint64_t keep = c->cfg.max_in_snapshot_log_to_keep;
		upto = snap > keep ? snap - keep : 0;
	}
	/* Only what a durable snapshot covers, and only entries durable here:
	 * a purge is never the only record of anything. */
	if (upto > snap)
		upto = snap;
	if (upto > c->flushed_last.index)
		upto = c->flushed_last.index;
	if (upto > c->log.last.index)
		upto = c->log.last.index;
	if (upto <= c->log.purged.index)
		return;
	if (!manual && upto < c->log.purged.index + c->cfg.purge_batch_size)
		return;
	if (c->leader.active && lcr_leader_needs(c, upto) && !LCR_BUG(c, LCR_BUG_PURGE_INFLIGHT)) {
		c->purge_want = upto; /* retried as the followers' acks come in */
		return;
	}
	struct lcr_log_id id;
	LCR_ASSERT(lcr_log_ids_get(&c->log, upto, &id));
	lcr_log_ids_purge(&c->log, id);
	c->purge_want = 0;
	c->n_purges++;
	struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_PURGE);
	cmd->purge.upto = id;
}

void lcr_purge_retry(struct lcr_core *c)
{
	if (c->purge_want > c->log.purged.index)
		lcr_purge(c, c->purge_want, true);
}

/* ---- installing a leader's snapshot --------------------------------------------- */

static void respond(struct lcr_core *c, const struct lcr_msg *req, struct lcr_vote vote,
		    uint64_t when_seq)
{
	const struct lcr_snapshot_req *s = &req->snapshot_req;
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_SNAPSHOT_RESP;
	m.to = req->from;
	m.snapshot_resp.vote = vote;
	m.snapshot_resp.last = s->meta.last;
	m.snapshot_resp.stream_id = s->stream_id;
	m.snapshot_resp.inflight_id = s->inflight_id;
	m.snapshot_resp.send_ns = s->send_ns;
	m.snapshot_resp.send_seq = s->send_seq;
	lcr_core_respond_when(c, when_seq, &m);
}

void lcr_on_snapshot_req(struct lcr_core *c, const struct lcr_msg *m)
{
	const struct lcr_snapshot_req *s = &m->snapshot_req;
	struct lcr_log_id last = s->meta.last;

	/* Only the leader itself sends its snapshot, which holds entries of
	 * leaders up to itself, and covers at least one entry. */
	char why[160];
	uint32_t ids[LCR_NODES_MAX];
	if (m->from != s->vote.lid.node || !s->vote.committed || last.index == 0 ||
	    lcr_leader_id_cmp(last.lid, s->vote.lid) > 0 ||
	    (s->membership && (lcr_membership_validate(s->membership, why, sizeof(why)) < 0 ||
			       lcr_membership_nodes(s->membership, ids) >= LCR_NODES_MAX))) {
		c->n_dropped++;
		return;
	}
	if (lcr_vote_cmp(s->vote, c->vote) < 0) {
		respond(c, m, c->vote, c->vote_seq); /* HigherVote */
		return;
	}
	LCR_ASSERT(lcr_vote_update(c, s->vote));

	/*
	 * Not newer than what is committed here: we hold all of it already
	 * (committed entries match the leader's), so the answer is the same as
	 * after an install, once what we accepted is durable.
	 */
	if (last.index <= c->committed.index && !LCR_BUG(c, LCR_BUG_SNAPSHOT_STALE_INSTALL)) {
		c->n_snap_refused++;
		respond(c, m, s->vote, c->io_seq);
		return;
	}
	bool keep = last.index <= c->log.last.index && lcr_log_ids_has(&c->log, last);
	if (keep) {
		lcr_log_ids_purge(&c->log, last);
	} else {
		/* Everything after the commit point that disagrees goes; so does the
		 * rest, which the snapshot covers. */
		lcr_log_ids_reset(&c->log, last);
		/* Membership entries above it went with the rest of the log. */
		lcr_mship_truncated(c, last.index + 1);
		if (c->flushed_last.index > last.index)
			c->flushed_last = last;
	}
	c->snapshot = s->meta;
	c->committed = last;
	c->apply_sent = last;
	/* The snapshot's membership holds at its last entry; membership entries
	 * the log keeps after it still follow. */
	lcr_mship_installed(c, last, s->membership);
	c->snap_m = s->membership ? *s->membership : *lcr_mship_at(c, last.index);
	c->n_snap_installed++;
	lcr_core_next_seq(c);
	struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_INSTALL_SNAPSHOT);
	cmd->install.io = lcr_core_io_id(c);
	cmd->install.meta = s->meta;
	cmd->install.data = s->data;
	cmd->install.size = s->size;
	cmd->install.keep_log = keep;
	respond(c, m, s->vote, c->io_seq);
}
