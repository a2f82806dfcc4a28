/* SPDX-License-Identifier: MIT */
/*
 * A group's membership in the runtime (runtime_int.h; the core's side:
 * engine/membership.c, docs/architecture.md "Membership changes").
 *
 * At open: the first membership comes from the node's config (every peer a
 * voter, or lcr_node_config.core.membership), the newest snapshot's from its
 * file header, and every membership entry the log holds above its purge point
 * is read back and loaded into the core (lcr_core_load_membership), so a
 * restarted replica decides with the membership it had, not the config's.
 *
 * While running: the apply path follows the membership at the applied index
 * (applied_m), which a snapshot build writes into its file header and a
 * snapshot send puts in front of the file's bytes (the stream header below);
 * the receiver takes it from there into its own file's header and hands it to
 * the core with the SNAPSHOT_REQ. lcr_group_change_membership() asks the core
 * for a change and answers once the target is the committed membership.
 *
 * Node addresses travel with a membership (lcr_membership.addrs): every
 * time a group's effective membership may have changed (a membership entry
 * appended, a truncation, a snapshot installed, open), lcr_rt_mship_learn
 * tells the lcore's transport where the members it did not know listen
 * (lcr_net_set_peer), gives the group a client for each, and forgets the
 * learned nodes no group of the lcore has as a member any more. Nodes of the
 * config are known from the start and never forgotten.
 *
 * Only the group's lcore calls these (and open, before it runs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "put.h"
#include "runtime_int.h"

static_assert(LCR_MEMBERSHIP_BYTES_MAX <= LCR_SNAP_MEMBERSHIP_MAX,
	      "a membership fits a snapshot header");

#define STREAM_MAGIC 0x4d52434cu /* "LCRM" */

static uint32_t members(const struct lcr_membership *m, uint32_t out[LCR_NODES_MAX]);

static bool is_peer(const struct lcr_node_config *c, uint32_t id)
{
	for (uint32_t i = 0; i < c->n_peers; i++)
		if (c->peers[i].id == id)
			return true;
	return false;
}

/*
 * Every node `m` names is one of the config's peers or has an address in `m`
 * or in `have` (may be NULL), which parses; else -EINVAL with why.
 */
static int known_nodes(const struct lcr_node_config *c, const struct lcr_membership *m,
		       const struct lcr_membership *have, char *why, size_t why_len)
{
	uint32_t ids[2 * LCR_NODES_MAX + LCR_NODES_MAX], n = 0;

	for (uint32_t k = 0; k < m->n_configs && k < LCR_CONFIGS_MAX; k++)
		for (uint32_t i = 0; i < m->configs[k].n && i < LCR_NODES_MAX; i++)
			ids[n++] = m->configs[k].ids[i];
	for (uint32_t i = 0; i < m->n_learners && i < LCR_NODES_MAX; i++)
		ids[n++] = m->learners[i];
	for (uint32_t i = 0; i < n; i++) {
		const char *a = lcr_membership_addr(m, ids[i]);
		if (!a && have)
			a = lcr_membership_addr(have, ids[i]);
		if (!a && !is_peer(c, ids[i])) {
			snprintf(why, why_len,
				 "node %u is not one of this node's %u configured peers and the "
				 "membership gives no address for it",
				 ids[i], c->n_peers);
			return -EINVAL;
		}
		struct lcr_peer_addr pa;
		char w[160];
		if (a && lcr_peer_addr_parse(a, ids[i], &pa, w, sizeof(w)) < 0) {
			snprintf(why, why_len, "node %u's address \"%s\": %s", ids[i], a, w);
			return -EINVAL;
		}
	}
	return 0;
}

int lcr_rt_mship_initial(const struct lcr_node_config *c, struct lcr_membership *m, char *why,
			 size_t why_len)
{
	int rc;

	if (c->core.membership.n_configs == 0) {
		memset(m, 0, sizeof(*m));
		m->n_configs = 1;
		m->configs[0].n = c->n_peers;
		for (uint32_t i = 0; i < c->n_peers; i++)
			m->configs[0].ids[i] = c->peers[i].id;
	} else {
		*m = c->core.membership;
		if (lcr_membership_validate(m, why, why_len) < 0)
			return -EINVAL;
		if ((rc = known_nodes(c, m, NULL, why, why_len)) < 0)
			return rc;
	}
	/* A node the first membership leaves out joins later, by a change a
	 * leader commits: until the log or a snapshot names it, it is in no
	 * config and never stands for election. It does not add itself as a
	 * learner: that view would be persisted (its snapshots carry the
	 * membership it applied) and sent (to followers once it leads), a
	 * learner no committed change added. The core keeps a slot for it. */
	uint32_t ids[LCR_NODES_MAX];
	if (!lcr_membership_contains(m, c->id) && members(m, ids) >= LCR_NODES_MAX) {
		snprintf(why, why_len, "the first membership has no room for node %u", c->id);
		return -EINVAL;
	}
	return 0;
}

int lcr_rt_mship_of_snap(const struct lcr_snap_meta *f, struct lcr_membership *m)
{
	if (f->membership_len == 0)
		return -EBADMSG;
	return lcr_membership_decode(f->membership, f->membership_len, m) < 0 ? -EBADMSG : 0;
}

int lcr_rt_mship_to_writer(struct lcr_snap_writer *w, const struct lcr_membership *m)
{
	uint8_t b[LCR_MEMBERSHIP_BYTES_MAX];
	size_t n = lcr_membership_encode(m, b, sizeof(b));

	LCR_ASSERT(n > 0);
	return lcr_snap_set_membership(w, b, (uint32_t)n);
}

/* ---- the snapshot stream's header ----------------------------------------------- */

/*
 * What a sender puts in front of a snapshot file's data (docs/storage-format.md,
 * "The snapshot stream"): magic, CRC32C of bytes [8, 268), the membership's
 * length, the membership as the file header holds it, zero padded.
 */
void lcr_rt_mship_stream_hdr(const struct lcr_snap_meta *f, uint8_t *out)
{
	uint32_t magic = STREAM_MAGIC, len = f->membership_len;

	LCR_ASSERT(len <= LCR_SNAP_MEMBERSHIP_MAX);
	memset(out, 0, LCR_RT_SNAP_STREAM_HDR);
	memcpy(out, &magic, 4);
	memcpy(out + 8, &len, 4);
	memcpy(out + 12, f->membership, len);
	uint32_t crc = lcr_crc32c(0, out + 8, LCR_RT_SNAP_STREAM_HDR - 8);
	memcpy(out + 4, &crc, 4);
}

int lcr_rt_mship_stream_parse(const uint8_t *h, struct lcr_membership *m, const uint8_t **bytes,
			      uint32_t *len)
{
	uint32_t magic, crc, n;

	memcpy(&magic, h, 4);
	memcpy(&crc, h + 4, 4);
	memcpy(&n, h + 8, 4);
	if (magic != STREAM_MAGIC || crc != lcr_crc32c(0, h + 8, LCR_RT_SNAP_STREAM_HDR - 8) ||
	    n == 0 || n > LCR_SNAP_MEMBERSHIP_MAX)
		return -EBADMSG;
	if (lcr_membership_decode(h + 12, n, m) < 0)
		return -EBADMSG;
	*bytes = h + 12;
	*len = n;
	return 0;
}

/* ---- at open ---------------------------------------------------------------- */

/* Load the membership entry at `index`, if the log holds one there. */
static int load_one(struct lcr_group *g, uint64_t index, char *why, size_t why_len)
{
	struct lcr_log_id id;
	struct lcr_entry e;
	struct lcr_membership m;

	if (!lcr_log_id_at(g->log, index, &id))
		return 0; /* cut off since recovery found it */
	int rc = lcr_log_read(g->log, index, &e, g->lc->cold, COLD_BYTES);
	if (rc < 0) {
		snprintf(why, why_len, "group %u: cannot read the log entry at %llu: %s", g->id,
			 (unsigned long long)index, lcr_strerror(rc));
		return rc;
	}
	if (e.type != LCR_ENTRY_MEMBERSHIP)
		return 0;
	if (lcr_membership_decode(e.data, e.len, &m) < 0 ||
	    (rc = lcr_core_load_membership(g->core, id, &m)) < 0) {
		snprintf(why, why_len, "group %u: the membership entry at %llu does not load",
			 g->id, (unsigned long long)index);
		return -EBADMSG;
	}
	return 0;
}

int lcr_rt_mship_load(struct lcr_group *g, char *why, size_t why_len)
{
	uint64_t first = lcr_log_first_index(g->log), last = lcr_log_last(g->log).index;
	const uint64_t *idx;
	uint32_t n;
	int rc;

	if (lcr_log_memberships(g->log, &idx, &n) == -E2BIG) {
		/* More than recovery kept track of: look at every entry. */
		for (uint64_t i = first; i <= last; i++)
			if ((rc = load_one(g, i, why, why_len)) < 0)
				return rc;
		return 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (idx[i] < first || idx[i] > last)
			continue;
		if ((rc = load_one(g, idx[i], why, why_len)) < 0)
			return rc;
	}
	return 0;
}

/* ---- node addresses ----------------------------------------------------------- */

static struct lcr_rt_learned *learned_of(struct lcore *lc, uint32_t id)
{
	for (uint32_t i = 0; i < lc->n_learned; i++)
		if (lc->learned[i].id == id)
			return &lc->learned[i];
	return NULL;
}

/*
 * Tell this lcore's transport that node `id` listens at `addr`, unless it was
 * told so already: 0, or -errno with the sentence in lc->learn_why (said on
 * stderr once per address).
 */
static int learn_addr(struct lcore *lc, uint32_t id, const char *addr)
{
	struct lcr_rt_learned *l = learned_of(lc, id);
	struct lcr_peer_addr pa;
	char w[200];
	int rc;

	if (l && strcmp(l->addr, addr) == 0) {
		if (l->err)
			snprintf(lc->learn_why, sizeof(lc->learn_why), "%s", l->why);
		return l->err;
	}
	if (!l) {
		if (lc->n_learned == LCR_RT_LEARNED_MAX) {
			snprintf(lc->learn_why, sizeof(lc->learn_why),
				 "this lcore knows %d learned node addresses already",
				 LCR_RT_LEARNED_MAX);
			return -ENOSPC;
		}
		l = &lc->learned[lc->n_learned++];
		memset(l, 0, sizeof(*l));
		l->id = id;
	}
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	rc = lcr_peer_addr_parse(addr, id, &pa, w, sizeof(w));
	if (rc == 0)
		rc = lcr_net_set_peer(lc->net, &pa, w, sizeof(w));
	l->err = rc;
	if (rc < 0) {
		snprintf(l->why, sizeof(l->why), "%s", w);
		snprintf(lc->learn_why, sizeof(lc->learn_why), "%s", w);
		lc->learn_failed++;
		fprintf(stderr, "lcraft: lcore %u: node %u at %s cannot be reached: %s\n",
			lc->index, id, addr, w);
		return rc;
	}
	lc->learned_n++;
	return 0;
}

/* The nodes of `m`, each once. */
static uint32_t members(const struct lcr_membership *m, uint32_t out[LCR_NODES_MAX])
{
	uint32_t n = 0;

	for (uint32_t k = 0; k < m->n_configs && k < LCR_CONFIGS_MAX; k++)
		for (uint32_t i = 0; i < m->configs[k].n && i < LCR_NODES_MAX; i++) {
			uint32_t id = m->configs[k].ids[i], j = 0;
			while (j < n && out[j] != id)
				j++;
			if (j == n && n < LCR_NODES_MAX)
				out[n++] = id;
		}
	for (uint32_t i = 0; i < m->n_learners && i < LCR_NODES_MAX; i++) {
		uint32_t id = m->learners[i], j = 0;
		while (j < n && out[j] != id)
			j++;
		if (j == n && n < LCR_NODES_MAX)
			out[n++] = id;
	}
	return n;
}

void lcr_rt_mship_learn(struct lcr_group *g)
{
	const struct lcr_node_config *c = &g->node->cfg;
	struct lcore *lc = g->lc;
	struct lcr_membership m;
	uint32_t ids[LCR_NODES_MAX], n;
	char why[200];

	lcr_group_membership(g, &m, NULL, NULL);
	n = members(&m, ids);
	for (uint32_t i = 0; i < n; i++) {
		if (ids[i] == c->id)
			continue;
		const char *a = lcr_membership_addr(&m, ids[i]);
		if (a && learn_addr(lc, ids[i], a) < 0)
			continue;
		if (!a && !is_peer(c, ids[i]))
			continue; /* refused when proposed; a log from elsewhere */
		int rc = lcr_net_group_add_target(g->ng, ids[i], ids, n, why, sizeof(why));
		if (rc < 0) {
			lc->learn_failed++;
			fprintf(stderr, "lcraft: group %u: node %u cannot be reached: %s\n", g->id,
				ids[i], why);
		}
	}
	/* Learned nodes no group here has as a member any more. */
	for (uint32_t i = 0; i < lc->n_learned;) {
		uint32_t id = lc->learned[i].id;
		bool used = is_peer(c, id);
		for (uint32_t k = 0; k < lc->n_groups && !used; k++) {
			struct lcr_membership gm;
			lcr_group_membership(lc->groups[k], &gm, NULL, NULL);
			used = lcr_membership_contains(&gm, id);
		}
		if (used) {
			i++;
			continue;
		}
		if (lc->learned[i].err == 0) {
			lcr_net_forget_peer(lc->net, id);
			lc->forgotten_n++;
		}
		lc->learned[i] = lc->learned[--lc->n_learned];
	}
}

/* ---- while running ------------------------------------------------------------ */

void lcr_rt_mship_applied(struct lcr_group *g, const struct lcr_entry *e)
{
	struct lcr_membership m;

	LCR_ASSERT(e->type == LCR_ENTRY_MEMBERSHIP);
	/* The core took it only if it decodes (entry_valid), and the log
	 * checked its checksum on the way back. */
	int rc = lcr_membership_decode(e->data, e->len, &m);
	LCR_ASSERT(rc == 0);
	g->applied_m = m;
}

/* The same voters and learners, in any order. */
static bool same_set(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb)
{
	if (na != nb)
		return false;
	for (uint32_t i = 0; i < na; i++) {
		uint32_t k = 0;
		while (k < nb && b[k] != a[i])
			k++;
		if (k == nb)
			return false;
	}
	return true;
}

bool lcr_rt_mship_same(const struct lcr_membership *a, const struct lcr_membership *b)
{
	if (a->n_configs != b->n_configs)
		return false;
	for (uint32_t k = 0; k < a->n_configs; k++)
		if (!same_set(a->configs[k].ids, a->configs[k].n, b->configs[k].ids,
			      b->configs[k].n))
			return false;
	return same_set(a->learners, a->n_learners, b->learners, b->n_learners);
}

/* The change ends: its callback runs once. */
static void change_done(struct lcr_group *g, int err, uint32_t leader)
{
	struct lcr_rt_mchange *mc = &g->mc;
	lcr_membership_fn done = mc->done;
	void *ctx = mc->ctx;

	LCR_ASSERT(mc->state != LCR_RT_MC_NONE);
	mc->state = LCR_RT_MC_NONE;
	mc->done = NULL;
	if (err == 0)
		g->mship_changed++;
	else
		g->mship_failed++;
	g->busy++;
	done(ctx, err, leader);
	g->busy--;
}

/* Hand the target to the core: 0 (it waits), or the core's refusal. */
static int change_start(struct lcr_group *g)
{
	struct lcr_rt_mchange *mc = &g->mc;
	struct lcr_core_status st;
	struct lcr_log_id id;

	LCR_ASSERT(!g->busy);
	int rc = lcr_core_change_membership(g->core, g->lc->now, &mc->target, &id);
	lcr_rt_run_cmds(g);
	if (rc < 0)
		return rc;
	lcr_core_status(g->core, &st);
	mc->vote = st.vote;
	mc->first = id;
	mc->state = LCR_RT_MC_WAITING;
	return 0;
}

int lcr_group_change_membership(struct lcr_group *g, const struct lcr_membership *target, char *why,
				size_t why_len, lcr_membership_fn done, void *ctx)
{
	char scratch[8];
	int rc;

	LCR_ASSERT(g != NULL);
	if (!why) {
		why = scratch;
		why_len = sizeof(scratch);
	}
	if (!target || !done) {
		snprintf(why, why_len, "no target or no callback");
		return -EINVAL;
	}
	if (target->n_configs != 1) {
		snprintf(why, why_len, "the target holds %u configs: name one (the voters)",
			 target->n_configs);
		return -EINVAL;
	}
	if (lcr_membership_validate(target, why, why_len) < 0)
		return -EINVAL;
	struct lcr_membership have;
	lcr_group_membership(g, &have, NULL, NULL);
	if ((rc = known_nodes(&g->node->cfg, target, &have, why, why_len)) < 0)
		return rc;
	/* A node the config does not list is reached by the address the
	 * membership gives, which this lcore's transport must take (told here
	 * unless called from a callback, where the transport is not to be
	 * called: then once the entry is appended). */
	if (target->n_addrs && !lcr_net_can_learn_peers(g->lc->net)) {
		snprintf(why, why_len,
			 "the target gives node addresses, and this node's transport knows "
			 "only the peers of its config");
		return -ENOTSUP;
	}
	for (uint32_t i = 0; i < target->n_addrs && !g->busy; i++) {
		const struct lcr_node_addr *a = &target->addrs[i];
		if (a->id != g->node->cfg.id && (rc = learn_addr(g->lc, a->id, a->addr)) < 0) {
			snprintf(why, why_len, "node %u's address %s: %s", a->id, a->addr,
				 g->lc->learn_why);
			return rc;
		}
	}
	if (g->mc.state != LCR_RT_MC_NONE) {
		snprintf(why, why_len, "a membership change asked for here is under way");
		return -EBUSY;
	}
	g->mc.target = *target;
	g->mc.done = done;
	g->mc.ctx = ctx;
	if (g->busy) {
		/* From a callback: the core's commands are being walked. The
		 * next iteration starts it, and `done` says how that went. */
		g->mc.state = LCR_RT_MC_QUEUED;
		return 0;
	}
	rc = change_start(g);
	if (rc < 0) {
		g->mc.state = LCR_RT_MC_NONE;
		snprintf(why, why_len, "the core refused the change: %s", lcr_strerror(rc));
		return rc;
	}
	return 0;
}

bool lcr_rt_mship_progress(struct lcr_group *g)
{
	struct lcr_rt_mchange *mc = &g->mc;
	struct lcr_core_status s, *st = &s;

	if (lcr_unlikely(g->mship_dirty)) {
		g->mship_dirty = false;
		lcr_rt_mship_learn(g);
	}
	if (lcr_likely(mc->state == LCR_RT_MC_NONE))
		return false;
	if (mc->state == LCR_RT_MC_QUEUED) {
		int rc = change_start(g);
		if (rc < 0)
			change_done(g, rc, g->leader);
		return true;
	}
	lcr_core_status(g->core, st);
	/* Done once the target is what is committed here: a leader the target
	 * removes steps down in that same step, so this is looked at first. */
	if (st->membership_committed && lcr_rt_mship_same(&st->membership, &mc->target)) {
		change_done(g, 0, st->leader);
		return true;
	}
	if (st->role == LCR_ROLE_STOPPED) {
		change_done(g, -LCR_ESTOPPED, 0);
		return true;
	}
	/* Only this leadership carries the change on (openraft: a new leader
	 * does not finish another's joint config by itself). */
	if (st->role != LCR_ROLE_LEADER || !lcr_leader_id_eq(st->vote.lid, mc->vote.lid)) {
		change_done(g, -LCR_ENOTLEADER, st->leader);
		return true;
	}
	return false;
}

void lcr_rt_mship_close(struct lcr_group *g)
{
	if (g->mc.state != LCR_RT_MC_NONE)
		change_done(g, -LCR_ESTOPPED, 0);
}

void lcr_group_membership(const struct lcr_group *g, struct lcr_membership *effective,
			  struct lcr_log_id *id, bool *committed)
{
	struct lcr_core_status s, *st = &s;

	lcr_core_status(g->core, st);
	if (effective)
		*effective = st->membership;
	if (id)
		*id = st->membership_id;
	if (committed)
		*committed = st->membership_committed;
}

int lcr_rt_mship_json(const struct lcr_membership *m, char *buf, size_t len)
{
	size_t o = 0;

	LCR_PUT("{\"joint\":%s,\"voters\":[", m->n_configs > 1 ? "true" : "false");
	/* The newest config; a joint one's older config follows. */
	uint32_t k = m->n_configs - 1;
	for (uint32_t i = 0; i < m->configs[k].n; i++)
		LCR_PUT("%s%u", i ? "," : "", m->configs[k].ids[i]);
	LCR_PUT("]");
	if (m->n_configs > 1) {
		LCR_PUT(",\"voters_old\":[");
		for (uint32_t i = 0; i < m->configs[0].n; i++)
			LCR_PUT("%s%u", i ? "," : "", m->configs[0].ids[i]);
		LCR_PUT("]");
	}
	LCR_PUT(",\"learners\":[");
	for (uint32_t i = 0; i < m->n_learners; i++)
		LCR_PUT("%s%u", i ? "," : "", m->learners[i]);
	/* Printable ASCII without spaces (lcr_membership_validate); quotes
	 * and backslashes escaped. */
	LCR_PUT("],\"addrs\":{");
	for (uint32_t i = 0; i < m->n_addrs && i < LCR_NODES_MAX; i++) {
		LCR_PUT("%s\"%u\":\"", i ? "," : "", m->addrs[i].id);
		for (const char *p = m->addrs[i].addr;
		     *p && p < m->addrs[i].addr + LCR_NODE_ADDR_MAX; p++)
			LCR_PUT(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
		LCR_PUT("\"");
	}
	LCR_PUT("}}");
	return o < len ? (int)o : -ENOSPC;
}
