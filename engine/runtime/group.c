/* SPDX-License-Identifier: MIT */
/*
 * A group's life cycle (open: its log, its peers in the transport, its core
 * loaded from the log; close) and the API calls on a group: proposals
 * gathered per iteration and handed to the core as one batch, reads, events,
 * and the calls callbacks make, deferred to the next iteration.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runtime_int.h"

static struct lcore *lcore_of(struct lcr_node *n, uint32_t group)
{
	return &n->lcores[group % n->n_lcores];
}

uint32_t lcr_group_lcore(const struct lcr_node *n, uint32_t group)
{
	return group % n->n_lcores;
}

uint32_t lcr_group_id(const struct lcr_group *g)
{
	return g->id;
}

void lcr_group_status(const struct lcr_group *g, struct lcr_core_status *st)
{
	lcr_core_status(g->core, st);
}

struct lcr_group *lcr_rt_group_of(struct lcore *lc, uint32_t id)
{
	for (uint32_t i = 0; i < lc->n_groups; i++)
		if (lc->groups[i]->id == id)
			return lc->groups[i];
	return NULL;
}

/* ---- proposals and reads -------------------------------------------------------- */

int lcr_propose(struct lcr_group *g, const void *data, uint32_t len, lcr_propose_fn done, void *ctx)
{
	LCR_ASSERT(g != NULL);
	if (len > PROPOSAL_MAX || !done || (len > 0 && !data))
		return -EINVAL;
	if (g->pn == PROPOSE_MAX || g->pbytes + len > PROPOSE_BYTES ||
	    g->wait_len + g->pn >= PENDING_MAX)
		return -LCR_EFULL;
	memcpy(g->pbuf + g->pbytes, data, len);
	struct lcr_entry *e = &g->pe[g->pn];
	memset(e, 0, sizeof(*e));
	e->type = LCR_ENTRY_NORMAL;
	e->len = len;
	e->data = g->pbuf + g->pbytes;
	g->pp[g->pn].done = done;
	g->pp[g->pn].ctx = ctx;
	g->pp[g->pn].at_ns = g->lc->now;
	g->pbytes += len;
	g->pn++;
	LCR_ASSERT(g->pn <= PROPOSE_MAX && g->pbytes <= PROPOSE_BYTES);
	return 0;
}

/*
 * The first n proposals went to the core (or were refused): drop them, and
 * keep those their callbacks made meanwhile (lcr_propose appends after
 * them, so the batch the core was given stays intact while it runs).
 */
static void proposals_consumed(struct lcr_group *g, uint32_t n)
{
	LCR_ASSERT(n <= g->pn);
	uint32_t keep = g->pn - n;

	if (keep == 0) {
		g->pn = g->pbytes = 0;
		return;
	}
	size_t shift = (size_t)((const uint8_t *)g->pe[n].data - g->pbuf);
	memmove(g->pbuf, g->pbuf + shift, g->pbytes - shift);
	memmove(g->pe, g->pe + n, keep * sizeof(*g->pe));
	memmove(g->pp, g->pp + n, keep * sizeof(*g->pp));
	for (uint32_t i = 0; i < keep; i++)
		g->pe[i].data = (const uint8_t *)g->pe[i].data - shift;
	g->pn = keep;
	g->pbytes -= (uint32_t)shift;
}

/* Refuse the first n proposals with err. */
static void proposals_refuse(struct lcr_group *g, uint32_t n, int err, uint32_t leader)
{
	g->busy++;
	for (uint32_t i = 0; i < n; i++)
		g->pp[i].done(g->pp[i].ctx, err, leader, NULL, 0);
	g->busy--;
	g->refused += n;
	proposals_consumed(g, n);
}

/*
 * A proposal waits for its apply in index order. A new leadership after a
 * truncation can hand out indexes below proposals of an earlier one still
 * waiting (they may yet commit through another node, or be replaced): the
 * new one goes in its place, so each is answered when its index applies.
 */
static void wait_push(struct lcr_group *g, const struct pending *p)
{
	uint32_t pos = g->wait_len;

	/* lcr_propose() keeps proposals waiting plus those of the iteration
	 * below PENDING_MAX. */
	LCR_ASSERT(g->wait_len < PENDING_MAX);
	while (pos > 0 && g->wait[(g->wait_head + pos - 1) % PENDING_MAX].id.index > p->id.index) {
		g->wait[(g->wait_head + pos) % PENDING_MAX] =
			g->wait[(g->wait_head + pos - 1) % PENDING_MAX];
		pos--;
	}
	g->wait[(g->wait_head + pos) % PENDING_MAX] = *p;
	g->wait_len++;
}

/* The proposals of this iteration go to the core together. */
bool lcr_rt_propose_batch(struct lcr_group *g)
{
	uint32_t n = g->pn;

	if (n == 0)
		return false;
	/* The log must be able to take them: refuse now rather than fail later
	 * (its unwritten batches fill the arena: the disk is behind). */
	if (lcr_log_space(g->log) < (uint64_t)g->pbytes + (uint64_t)n * 64 + (8u << 20)) {
		g->backlogged += n;
		proposals_refuse(g, n, -LCR_EBACKLOG, g->leader);
		return true;
	}
	int rc = lcr_core_propose(g->core, g->lc->now, g->pe, n);
	if (rc < 0) {
		struct lcr_core_status st;
		lcr_core_status(g->core, &st);
		proposals_refuse(g, n, rc, st.leader);
		return true;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct pending w = g->pp[i];
		w.id = g->pe[i].id;
		wait_push(g, &w);
	}
	lcr_rt_trace_proposed(g->trace, g->pp, n, g->pe[n - 1].id.index, g->lc->now);
	g->proposed += n;
	lcr_rt_run_cmds(g);
	proposals_consumed(g, n);
	return true;
}

static int defer(struct lcr_group *g, const struct deferred *d)
{
	if (g->def_len == DEFERRED_MAX)
		return -LCR_EFULL;
	g->deferred[(g->def_head + g->def_len) % DEFERRED_MAX] = *d;
	g->def_len++;
	return 0;
}

int lcr_read(struct lcr_group *g, uint32_t policy, lcr_read_fn done, void *ctx)
{
	uint64_t id;

	if (!done)
		return -EINVAL;
	if (g->busy) {
		/* From a callback: next iteration (done then says how it went). */
		struct deferred d = { .is_read = true, .policy = policy, .done = done, .ctx = ctx };
		return defer(g, &d);
	}
	if (g->reads_len == READS_WAIT_MAX)
		return -LCR_EFULL;
	int rc = lcr_core_read(g->core, g->lc->now, policy, &id);
	if (rc < 0) {
		lcr_rt_run_cmds(g);
		return rc;
	}
	/* Read ids increase by one per read: the ring stays in id order. */
	if (g->reads_len > 0)
		LCR_ASSERT(g->reads[(g->reads_head + g->reads_len - 1) % READS_WAIT_MAX].read_id <
			   id);
	struct waiting_read *r = &g->reads[(g->reads_head + g->reads_len) % READS_WAIT_MAX];
	r->read_id = id;
	r->done = done;
	r->ctx = ctx;
	g->reads_len++;
	lcr_rt_run_cmds(g);
	return 0;
}

int lcr_group_event(struct lcr_group *g, const struct lcr_event *ev)
{
	LCR_ASSERT(g != NULL && ev != NULL);
	struct lcr_event e = *ev;
	if (e.type == LCR_EV_MSG || e.type == LCR_EV_IO_FLUSHED || e.type == LCR_EV_IO_FAILED ||
	    e.type == LCR_EV_APPLIED)
		return -EINVAL; /* the runtime's own */
	if (g->busy) {
		struct deferred d = { .is_read = false, .ev = e };
		return defer(g, &d);
	}
	lcr_rt_step(g, &e);
	return 0;
}

/* API calls that callbacks made during the last iteration, in order. */
bool lcr_rt_run_deferred(struct lcr_group *g)
{
	uint32_t n = g->def_len; /* not those they make now: next time */

	for (uint32_t i = 0; i < n; i++) {
		struct deferred d = g->deferred[g->def_head];
		g->def_head = (g->def_head + 1) % DEFERRED_MAX;
		g->def_len--;
		if (!d.is_read) {
			lcr_rt_step(g, &d.ev);
			continue;
		}
		int rc = lcr_read(g, d.policy, d.done, d.ctx);
		if (rc < 0) {
			g->busy++;
			d.done(d.ctx, rc, g->leader);
			g->busy--;
		}
	}
	return n > 0;
}

/* The core's backoff hook: the transport's intervals for this group. */
static uint64_t group_backoff_ns(void *ctx, uint32_t target, uint32_t step)
{
	struct lcr_group *g = ctx;
	return lcr_net_backoff_ns(g->ng, target, step);
}

/* Close what a group opened (its log first: writes in flight finish) and
 * free it; for a group half-opened too. */
static void group_free(struct lcr_node *n, struct lcr_group *g)
{
	lcr_rt_snap_close(g);
	if (g->log)
		lcr_log_close(g->log);
	lcr_core_free(g->core);
	if (g->ng)
		lcr_net_group_close(g->ng);
	lcr_rt_free(n, g->pe);
	lcr_rt_free(n, g->pp);
	lcr_rt_free(n, g->pbuf);
	lcr_rt_free(n, g->wait);
	lcr_rt_free(n, g->reads);
	lcr_rt_free(n, g->deferred);
	lcr_rt_free(n, g->trace);
	lcr_rt_free(n, g->snap.dir);
	lcr_rt_free(n, g->snap.buf);
	lcr_rt_free(n, g);
}

/* The snapshot hooks come all six or none (lcraft.h). */
static bool sm_hooks(const struct lcr_sm_ops *o, bool *valid)
{
	int n = !!o->snapshot_open + !!o->snapshot_read + !!o->snapshot_close + !!o->restore_begin +
		!!o->restore_chunk + !!o->restore_end;
	*valid = n == 0 || n == 6;
	return n == 6;
}

/*
 * The log against the snapshot restored at open (`snap`, none: index 0): the
 * core starts at the snapshot and loads the log after it, so the log must not
 * be purged past it and must hold its last entry, or end where it was purged
 * up to it. Returns 0 if so; 1 if the log lacks that entry (it ends before
 * it, or holds another term there), which is a crash between an installed
 * snapshot becoming durable and the log's reset: log_install() finishes the
 * reset; -EBADMSG with why if the log was purged past the snapshot (entries
 * between are lost, and nothing here brings them back).
 */
static int log_check(struct lcr_group *g, const struct lcr_log_recovery *rec,
		     const struct lcr_snapshot_meta *snap, char *why, size_t why_len)
{
	struct lcr_log_id last = lcr_log_last(g->log), at;

	if (rec->purged.index > snap->last.index) {
		if (snap->last.index == 0)
			snprintf(why, why_len,
				 "group %u: the log in %s is purged up to %llu but there is no "
				 "snapshot: the entries up to %llu are lost",
				 g->id, g->snap.dir, (unsigned long long)rec->purged.index,
				 (unsigned long long)rec->purged.index);
		else
			snprintf(why, why_len,
				 "group %u: the log in %s is purged up to %llu, past its newest "
				 "snapshot (at %llu): the entries between are lost",
				 g->id, g->snap.dir, (unsigned long long)rec->purged.index,
				 (unsigned long long)snap->last.index);
		return -EBADMSG;
	}
	if (snap->last.index == 0)
		return 0;
	if (lcr_log_id_at(g->log, snap->last.index, &at) && lcr_log_id_eq(at, snap->last))
		return 0;
	if (lcr_log_id_eq(rec->purged, snap->last) && last.index <= snap->last.index)
		return 0;
	return 1;
}

/* How long open waits for the log's reset to become durable (a few writes). */
#define LOG_INSTALL_WAIT_NS (30ull * 1000000000ull)

/*
 * Finish what a crash cut short: the snapshot `snap` is durable but the log
 * was not reset after it (lcr_log_install without keep_log, as the core's
 * INSTALL_SNAPSHOT does when its log lacks the snapshot's last entry; Raft
 * thesis 5.3: "If the snapshot is newer, the follower discards its entire
 * log"). Blocks until the reset is durable, reaping the lcore's ring (this is
 * open: the lcore does not run it yet); the completion is the log's, not the
 * core's, so it is taken here and not handed on. Returns 0, or -errno with why.
 */
static int log_install(struct lcr_group *g, const struct lcr_snapshot_meta *snap, char *why,
		       size_t why_len)
{
	struct lcr_io_id io = { .seq = 0, .last = snap->last };
	uint64_t until = lcr_rt_now_ns() + LOG_INSTALL_WAIT_NS;
	struct lcr_log_id was = lcr_log_last(g->log);
	int rc;

	LCR_ASSERT(g->core == NULL);
	LCR_ASSERT(!g->flush_new && g->io_err == 0);
	rc = lcr_log_install(g->log, snap->last, false, &io);
	while (rc == 0 && (!g->flush_new || lcr_log_busy(g->log))) {
		if (g->io_err)
			rc = g->io_err;
		else if (lcr_rt_now_ns() > until)
			rc = -ETIMEDOUT;
		else {
			lcr_log_flush(g->log);
			lcr_ring_wait(&g->lc->ring, 10 * 1000 * 1000);
		}
	}
	g->flush_new = false;
	g->io_err = 0;
	memset(&g->flushed, 0, sizeof(g->flushed));
	if (rc < 0) {
		snprintf(why, why_len,
			 "group %u: the log in %s (up to %llu, term %llu) lacks the last entry of "
			 "its newest snapshot (%llu, term %llu), and restarting it after the "
			 "snapshot failed: %s",
			 g->id, g->snap.dir, (unsigned long long)was.index,
			 (unsigned long long)was.lid.term, (unsigned long long)snap->last.index,
			 (unsigned long long)snap->last.lid.term, lcr_strerror(rc));
		return rc;
	}
	LCR_ASSERT(lcr_log_id_eq(lcr_log_last(g->log), snap->last));
	return 0;
}

int lcr_group_open(struct lcr_node *n, uint32_t id, const struct lcr_sm_ops *ops, void *sm,
		   struct lcr_group **out, char *why, size_t why_len)
{
	struct lcore *lc = lcore_of(n, id);
	const struct lcr_node_config *c = &n->cfg;
	char dir[4096];
	int rc;

	LCR_ASSERT(out != NULL);
	bool hooks_valid, hooks;
	if (!ops) {
		snprintf(why, why_len, "group %u: no state machine (ops)", id);
		return -EINVAL;
	}
	hooks = sm_hooks(ops, &hooks_valid);
	if (!hooks_valid) {
		snprintf(why, why_len,
			 "group %u: the state machine has some snapshot hooks but not all six", id);
		return -EINVAL;
	}
	if (lc->n_groups == GROUPS_MAX) {
		snprintf(why, why_len, "lcore %u already runs %d groups", lc->index, GROUPS_MAX);
		return -ENOSPC;
	}
	if (lcr_rt_group_of(lc, id)) {
		snprintf(why, why_len, "group %u is already open", id);
		return -EEXIST;
	}
	struct lcr_group *g = lcr_rt_zalloc(n, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->id = id;
	g->node = n;
	g->lc = lc;
	g->ops = *ops;
	g->sm = sm;
	g->pe = lcr_rt_zalloc(n, sizeof(*g->pe) * PROPOSE_MAX);
	g->pp = lcr_rt_zalloc(n, sizeof(*g->pp) * PROPOSE_MAX);
	g->pbuf = lcr_rt_zalloc(n, PROPOSE_BYTES);
	g->wait = lcr_rt_zalloc(n, sizeof(*g->wait) * PENDING_MAX);
	g->reads = lcr_rt_zalloc(n, sizeof(*g->reads) * READS_WAIT_MAX);
	g->deferred = lcr_rt_zalloc(n, sizeof(*g->deferred) * DEFERRED_MAX);
	g->trace = lcr_rt_zalloc(n, sizeof(*g->trace));
	snprintf(dir, sizeof(dir), "%s/group-%u", c->data_dir, id);
	g->snap.dir = lcr_rt_zalloc(n, strlen(dir) + 1);
	if (hooks)
		g->snap.buf = lcr_rt_zalloc(n, LCR_SNAP_CHUNK);
	if (!g->pe || !g->pp || !g->pbuf || !g->wait || !g->reads || !g->deferred || !g->trace ||
	    !g->snap.dir || (hooks && !g->snap.buf)) {
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(g->snap.dir, dir, strlen(dir) + 1);
	struct lcr_log_opts lo;
	lcr_log_opts_default(&lo, dir);
	lo.group = id;
	lo.durability = c->durability;
	lo.io_mode = c->io_mode;
	lo.segment_bytes = c->segment_bytes;
	lo.alloc = c->alloc;
	lo.done = lcr_rt_log_done;
	lo.ctx = g;
	if ((rc = lcr_log_open(&g->log, &lc->ring, &lo, why, why_len)) < 0)
		goto fail;
	/* Its peers in the transport: every node but this one. */
	uint32_t targets[LCR_PEERS_MAX], n_targets = 0;
	for (uint32_t i = 0; i < c->n_peers; i++)
		if (c->peers[i].id != c->id)
			targets[n_targets++] = c->peers[i].id;
	if ((rc = lcr_net_group_open(lc->net, id, g, targets, n_targets, &g->ng, why, why_len)) < 0)
		goto fail;

	/* The core: Raft options from the config; the first membership: the
	 * peers, or the config's (membership.c); changes on. */
	struct lcr_core_config cc = c->core;
	cc.id = c->id;
	if ((rc = lcr_rt_mship_initial(c, &cc.membership, why, why_len)) < 0)
		goto fail;
	cc.enable_membership_changes = true;
	cc.seed = c->core.seed ^ ((uint64_t)c->id << 20) ^ id ^ lcr_rt_now_ns();
	/* A transport with its own backoff sets the intervals (RaftNetworkV2). */
	if (lcr_net_has_backoff(lc->net)) {
		cc.backoff_ns = group_backoff_ns;
		cc.backoff_ctx = g;
	}
	if (lcr_core_config_validate(&cc, why, why_len) < 0) {
		rc = -EINVAL;
		goto fail;
	}
	/* The nodes it has seen hold state (held.c): read before anything steps. */
	if ((rc = lcr_rt_held_load(g, why, why_len)) < 0)
		goto fail;
	/* The state machine from the newest snapshot (blocking: this is open);
	 * the log then replays only what follows it. */
	struct lcr_log_recovery rec;
	struct lcr_snapshot_meta snap;
	struct lcr_membership snap_m;
	lcr_log_recovered(g->log, &rec);
	if ((rc = lcr_rt_snap_restore(g, &snap, &snap_m, why, why_len)) < 0)
		goto fail;
	if ((rc = log_check(g, &rec, &snap, why, why_len)) < 0)
		goto fail;
	if (rc == 1) {
		if ((rc = log_install(g, &snap, why, why_len)) < 0)
			goto fail;
		lcr_log_recovered(g->log, &rec); /* purged: the snapshot's last entry */
	}
	g->snap.floor = snap.last;
	g->applied_id = g->apply_to = snap.last;
	g->applied_m = snap_m.n_configs > 0 ? snap_m : cc.membership;
	struct lcr_core_restore rs = { rec.vote, rec.committed, rec.purged, snap, snap_m };
	if ((rc = lcr_core_new(&g->core, &cc, &rs)) < 0) {
		snprintf(why, why_len, "group %u: %s", id, lcr_strerror(rc));
		goto fail;
	}
	struct lcr_log_id last = lcr_log_last(g->log);
	for (uint64_t i = lcr_log_first_index(g->log); i <= last.index; i++) {
		struct lcr_log_id lid;
		if (!lcr_log_id_at(g->log, i, &lid) ||
		    (rc = lcr_core_load_log_id(g->core, lid)) < 0) {
			snprintf(why, why_len, "group %u: the log at index %llu does not load (%s)",
				 id, (unsigned long long)i,
				 rc == -ENOSPC ? "more leader changes than "
						 "leader_runs_max"
					       : "inconsistent");
			rc = rc < 0 ? rc : -EINVAL;
			goto fail;
		}
	}
	/* Then the membership entries among them: the core decides with the
	 * membership the log says, not the config's. */
	if ((rc = lcr_rt_mship_load(g, why, why_len)) < 0)
		goto fail;
	lc->groups[lc->n_groups++] = g;
	lc->now = lcr_rt_now_ns();
	lcr_core_start(g->core, lc->now);
	lcr_rt_mship_learn(g); /* the members the log or the snapshot names */
	lcr_rt_run_cmds(g);
	*out = g;
	return 0;
fail:
	group_free(n, g);
	return rc;
}

void lcr_rt_group_close(struct lcr_node *n, struct lcr_group *g)
{
	/* Whoever waits hears that the replica stopped (documented in lcraft.h:
	 * these callbacks run here, on the thread closing the node). */
	g->busy++; /* calls from these callbacks are deferred, and dropped with the group */
	for (uint32_t i = 0; i < g->pn; i++)
		g->pp[i].done(g->pp[i].ctx, -LCR_ESTOPPED, 0, NULL, 0);
	g->pn = 0;
	lcr_rt_answer_waits(g, -LCR_ESTOPPED, 0);
	lcr_rt_mship_close(g);
	while (g->def_len) {
		struct deferred d = g->deferred[g->def_head];
		g->def_head = (g->def_head + 1) % DEFERRED_MAX;
		g->def_len--;
		if (d.is_read)
			d.done(d.ctx, -LCR_ESTOPPED, 0);
	}
	while (g->reads_len) {
		struct waiting_read r = g->reads[g->reads_head];
		g->reads_head = (g->reads_head + 1) % READS_WAIT_MAX;
		g->reads_len--;
		r.done(r.ctx, -LCR_ESTOPPED, 0);
	}
	group_free(n, g);
}
