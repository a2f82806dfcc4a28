/* SPDX-License-Identifier: MIT */
/*
 * The core's life cycle, event dispatch, command outbox, storage completions
 * and timers. Protocol rules live in election.c, replication.c, follower.c
 * and read.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"

const char *lcr_strerror(int err)
{
	switch (-err) {
	case 0:
		return "ok";
	case LCR_ENOTLEADER:
		return "not the leader";
	case LCR_ENOLEASE:
		return "leader has no quorum lease";
	case LCR_ETRANSFER:
		return "leadership transfer in progress";
	case LCR_EFULL:
		return "queue full";
	case LCR_ESTOPPED:
		return "replica stopped after a fatal I/O error";
	case LCR_ETIMEDOUT:
		return "timed out";
	case LCR_EBACKLOG:
		return "the log is behind (its write buffer is full): retry shortly";
	default:
		return err < 0 ? strerror(-err) : "unknown";
	}
}

void lcr_core_config_default(struct lcr_core_config *cfg, uint32_t id)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = id;
	cfg->election_timeout_min_ms = 150;
	cfg->election_timeout_max_ms = 300;
	cfg->heartbeat_interval_ms = 50;
	cfg->max_payload_entries = 300;
	cfg->inflight_max = 64;
	cfg->respond_max = 256;
	cfg->reads_max = 4096;
	cfg->leader_runs_max = 4096;
	cfg->backoff_ms = 200;
	cfg->read_timeout_ms = 0;
	cfg->enable_pre_vote = false;
	cfg->enable_heartbeat = true;
	cfg->enable_elect = true;
	cfg->enable_leader_restore = false;
	cfg->allow_log_reversion = false;
	cfg->snapshot_logs_since_last = 5000;
	cfg->max_in_snapshot_log_to_keep = 1000;
	cfg->purge_batch_size = 1;
	cfg->snapshot_timeout_ms = 60000;
	cfg->seed = 1;
}

int lcr_core_config_validate(const struct lcr_core_config *cfg, char *why, size_t why_len)
{
	if (cfg->id == 0) {
		snprintf(why, why_len, "id: node id 0 is reserved");
		return -EINVAL;
	}
	if (cfg->election_timeout_min_ms >= cfg->election_timeout_max_ms) {
		snprintf(why, why_len,
			 "election_timeout_min_ms (%llu) must be below election_timeout_max_ms "
			 "(%llu)",
			 (unsigned long long)cfg->election_timeout_min_ms,
			 (unsigned long long)cfg->election_timeout_max_ms);
		return -EINVAL;
	}
	if (cfg->election_timeout_min_ms <= cfg->heartbeat_interval_ms) {
		snprintf(why, why_len,
			 "election_timeout_min_ms (%llu) must exceed heartbeat_interval_ms (%llu)",
			 (unsigned long long)cfg->election_timeout_min_ms,
			 (unsigned long long)cfg->heartbeat_interval_ms);
		return -EINVAL;
	}
	if (cfg->heartbeat_interval_ms == 0) {
		snprintf(why, why_len, "heartbeat_interval_ms must be at least 1");
		return -EINVAL;
	}
	if (cfg->max_payload_entries == 0) {
		snprintf(why, why_len, "max_payload_entries must be at least 1");
		return -EINVAL;
	}
	if (cfg->inflight_max == 0 || cfg->inflight_max > 4096) {
		snprintf(why, why_len, "inflight_max (%u) must be in 1..4096", cfg->inflight_max);
		return -EINVAL;
	}
	if (cfg->respond_max < 8) {
		snprintf(why, why_len, "respond_max (%u) must be at least 8", cfg->respond_max);
		return -EINVAL;
	}
	if (cfg->reads_max == 0) {
		snprintf(why, why_len, "reads_max must be at least 1");
		return -EINVAL;
	}
	if (cfg->leader_runs_max < 16) {
		snprintf(why, why_len, "leader_runs_max (%u) must be at least 16",
			 cfg->leader_runs_max);
		return -EINVAL;
	}
	if (cfg->backoff_ms == 0) {
		snprintf(why, why_len, "backoff_ms must be at least 1");
		return -EINVAL;
	}
	if (cfg->purge_batch_size == 0) {
		snprintf(why, why_len, "purge_batch_size must be at least 1");
		return -EINVAL;
	}
	if (cfg->snapshot_logs_since_last >= LCR_NUMBER_MAX ||
	    cfg->max_in_snapshot_log_to_keep >= LCR_NUMBER_MAX ||
	    cfg->purge_batch_size >= LCR_NUMBER_MAX) {
		snprintf(why, why_len,
			 "snapshot_logs_since_last, max_in_snapshot_log_to_keep and "
			 "purge_batch_size must be below 2^62");
		return -EINVAL;
	}
	if (cfg->snapshot_timeout_ms == 0 || cfg->snapshot_timeout_ms > 24ull * 3600 * 1000) {
		snprintf(why, why_len, "snapshot_timeout_ms (%llu) must be in 1..86400000",
			 (unsigned long long)cfg->snapshot_timeout_ms);
		return -EINVAL;
	}
	if (lcr_membership_validate(&cfg->membership, why, why_len) < 0)
		return -EINVAL;
	/* A node outside the first membership joins later, by a membership
	 * change (so only with them on), and meanwhile is in no config: it
	 * never counts itself a member of a membership the log does not name,
	 * which would reach its snapshots and, once it leads, its followers. It
	 * still has a slot of its own beside the members. */
	uint32_t ids[LCR_NODES_MAX];
	if (!lcr_membership_contains(&cfg->membership, cfg->id) &&
	    (!cfg->enable_membership_changes ||
	     lcr_membership_nodes(&cfg->membership, ids) >= LCR_NODES_MAX)) {
		snprintf(why, why_len,
			 "id: node %u is not in the membership (a node may start outside it "
			 "only with membership changes on, and room for it)",
			 cfg->id);
		return -EINVAL;
	}
	return 0;
}

/* splitmix64, to spread a small seed over the xorshift state. */
static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t lcr_core_random(struct lcr_core *c)
{
	uint64_t s1 = c->rng[0];
	const uint64_t s0 = c->rng[1];
	c->rng[0] = s0;
	s1 ^= s1 << 23;
	c->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return c->rng[1] + s0;
}

int lcr_core_slot(const struct lcr_core *c, uint32_t id)
{
	for (uint32_t i = 0; i < c->n_nodes; i++)
		if (c->nodes[i] == id)
			return (int)i;
	return -1;
}

static void free_core(struct lcr_core *c)
{
	struct lcr_allocator a = c->cfg.alloc;

	lcr_log_ids_free(&c->log);
	lcr_allocator_free(&a, c->resp);
	lcr_allocator_free(&a, c->reads);
	lcr_allocator_free(&a, c->out);
	lcr_allocator_free(&a, c);
}

int lcr_core_new(struct lcr_core **out, const struct lcr_core_config *cfg,
		 const struct lcr_core_restore *restore)
{
	const struct lcr_allocator *a = &cfg->alloc;
	char why[256];
	struct lcr_core *c;

	LCR_ASSERT(out != NULL);
	LCR_ASSERT(restore != NULL);
	*out = NULL;
	if (lcr_core_config_validate(cfg, why, sizeof(why)) < 0)
		return -EINVAL;
	/* Durable state out of range is corruption the storage let through. */
	if (restore->vote.lid.term >= LCR_NUMBER_MAX ||
	    restore->committed.lid.term >= LCR_NUMBER_MAX ||
	    restore->committed.index >= LCR_NUMBER_MAX ||
	    restore->purged.lid.term >= LCR_NUMBER_MAX || restore->purged.index >= LCR_NUMBER_MAX ||
	    restore->snapshot.last.lid.term >= LCR_NUMBER_MAX ||
	    restore->snapshot.last.index >= LCR_NUMBER_MAX)
		return -EINVAL;
	/* The log is purged only up to a durable snapshot. */
	if (restore->purged.index > restore->snapshot.last.index)
		return -EINVAL;
	c = lcr_allocator_zalloc(a, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	c->id = cfg->id;
	c->heartbeat_ns = cfg->heartbeat_interval_ms * LCR_NS_PER_MS;
	/* openraft engine_config.rs: leader_lease = election_timeout_max. */
	c->leader_lease_ns = cfg->election_timeout_max_ms * LCR_NS_PER_MS;
	c->smaller_log_timeout_ns = 2 * cfg->election_timeout_max_ms * LCR_NS_PER_MS;
	c->read_timeout_ns =
		cfg->read_timeout_ms ? cfg->read_timeout_ms * LCR_NS_PER_MS : c->leader_lease_ns;
	c->m_committed.m = cfg->membership;
	c->m_committed.id = lcr_log_id_none();
	if (restore->membership.n_configs > 0) {
		if (lcr_membership_validate(&restore->membership, why, sizeof(why)) < 0) {
			lcr_allocator_free(a, c);
			return -EINVAL;
		}
		c->m_committed.m = restore->membership;
		c->m_committed.id = restore->snapshot.last;
	}
	c->membership = c->m_committed.m;
	c->snap_m = c->m_committed.m;
	c->n_nodes = lcr_membership_nodes(&c->membership, c->nodes);
	if (!lcr_membership_contains(&c->membership, c->id))
		c->nodes[c->n_nodes++] = c->id;
	c->self_slot = (uint32_t)lcr_core_slot(c, c->id);

	c->vote = restore->vote;
	c->committed = restore->committed;
	c->snapshot = restore->snapshot;
	c->snap_tried = restore->snapshot.last;
	c->lease_enabled = true;

	uint64_t x = cfg->seed ^ ((uint64_t)cfg->id << 32);
	c->rng[0] = splitmix64(&x);
	c->rng[1] = splitmix64(&x);
	/* Read ids start at a point drawn from the seed (which differs per
	 * start): a follower's read ids name its requests for a read index, and
	 * an answer still on the wire from before a restart must not match a
	 * read taken after it. 2^44 starting points, 2^63 reads before a wrap. */
	c->next_read_id = 1 + (splitmix64(&x) >> 20);

	c->resp_max = cfg->respond_max;
	c->reads_max = cfg->reads_max;
	/* A call sends at most inflight_max requests plus a heartbeat per peer,
	 * releases at most resp_max responses, answers or reports each queued
	 * read once (two commands at most per read), and a few more commands. */
	c->out_max = LCR_NODES_MAX * (cfg->inflight_max + 4) + cfg->respond_max +
		     2 * cfg->reads_max + 64;
	c->resp = lcr_allocator_alloc(a, sizeof(*c->resp) * c->resp_max);
	c->reads = lcr_allocator_alloc(a, sizeof(*c->reads) * c->reads_max);
	c->out = lcr_allocator_alloc(a, sizeof(*c->out) * c->out_max);
	if (!c->resp || !c->reads || !c->out ||
	    lcr_log_ids_init(&c->log, *a, cfg->leader_runs_max, restore->purged) < 0) {
		free_core(c);
		return -ENOMEM;
	}
	c->log.fixed = true; /* the core never allocates once created */
	*out = c;
	return 0;
}

#ifdef LCR_PLANTED_BUGS
void lcr_core_plant_bugs(struct lcr_core *c, uint32_t bugs)
{
	LCR_ASSERT(!c->started);
	c->bugs = bugs;
}
#endif

void lcr_core_free(struct lcr_core *c)
{
	if (c)
		free_core(c);
}

int lcr_core_load_log_id(struct lcr_core *c, struct lcr_log_id id)
{
	if (c->started)
		return -EINVAL;
	if (id.index != c->log.last.index + 1 || id.index >= LCR_NUMBER_MAX ||
	    id.lid.term >= LCR_NUMBER_MAX)
		return -EINVAL;
	if (c->log.n > 0 && lcr_leader_id_cmp(c->log.last.lid, id.lid) > 0)
		return -EINVAL;
	return lcr_log_ids_append(&c->log, id);
}

int lcr_core_load_membership(struct lcr_core *c, struct lcr_log_id id,
			     const struct lcr_membership *m)
{
	char why[160];

	if (c->started || !m || lcr_membership_validate(m, why, sizeof(why)) < 0)
		return -EINVAL;
	if (id.index <= c->log.purged.index || !lcr_log_ids_has(&c->log, id) ||
	    (c->m_log_n > 0 && c->m_log[c->m_log_n - 1].id.index >= id.index))
		return -EINVAL;
	/* An older one is committed once a newer one follows (membership.c). */
	lcr_mship_fold(c, id.index - 1);
	c->m_log[c->m_log_n].id = id;
	c->m_log[c->m_log_n].m = *m;
	c->m_log_n++;
	return 0;
}

/* Every call that takes the time starts here. */
static int begin(struct lcr_core *c, uint64_t now_ns)
{
	c->out_n = 0;
	if (c->stopped)
		return -LCR_ESTOPPED;
	/* The clock is monotonic; a caller going backwards gets "no time passed". */
	if (now_ns > c->now_ns)
		c->now_ns = now_ns;
	return 0;
}

/* Every call ends here: apply what became committed, announce role changes. */
static void finish(struct lcr_core *c)
{
	if (c->stopped)
		return;
	lcr_reads_check_leader(c);
	if (c->committed.index > c->apply_sent.index) {
		struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_APPLY);
		cmd->apply.first = c->apply_sent;
		cmd->apply.last = c->committed;
		c->apply_sent = c->committed;
	}
	lcr_core_announce_role(c);
}

struct lcr_cmd *lcr_core_emit(struct lcr_core *c, uint32_t type)
{
	LCR_ASSERT(c->out_n < c->out_max);
	struct lcr_cmd *cmd = &c->out[c->out_n++];
	memset(cmd, 0, sizeof(*cmd));
	cmd->type = type;
	return cmd;
}

void lcr_core_send(struct lcr_core *c, const struct lcr_msg *m)
{
	/* The message fills the whole union (it is its largest member), so the
	 * command is not cleared first: one copy instead of a clear and a copy,
	 * on the path every message takes. */
	_Static_assert(sizeof(((struct lcr_cmd *)0)->send) + offsetof(struct lcr_cmd, send) ==
			       sizeof(struct lcr_cmd),
		       "lcr_msg must be the largest member of struct lcr_cmd");
	LCR_ASSERT(c->out_n < c->out_max);
	struct lcr_cmd *cmd = &c->out[c->out_n++];
	cmd->type = LCR_CMD_SEND;
	cmd->send = *m;
	cmd->send.from = c->id;
}

const struct lcr_cmd *lcr_core_commands(const struct lcr_core *c, uint32_t *n)
{
	*n = c->out_n;
	return c->out;
}

uint64_t lcr_core_next_seq(struct lcr_core *c)
{
	return ++c->io_seq;
}

struct lcr_io_id lcr_core_io_id(struct lcr_core *c)
{
	struct lcr_io_id io = { c->io_seq, c->vote, c->log.last };
	return io;
}

void lcr_core_save_vote(struct lcr_core *c)
{
	lcr_core_next_seq(c);
	c->vote_seq = c->io_seq;
	struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_SAVE_VOTE);
	cmd->save_vote.vote = c->vote;
	cmd->save_vote.io = lcr_core_io_id(c);
}

void lcr_core_nodes_changed(struct lcr_core *c)
{
	uint32_t old_n = c->n_nodes, old_nodes[LCR_NODES_MAX];
	struct lcr_progress old_p[LCR_NODES_MAX];
	bool old_g[LCR_NODES_MAX], old_pg[LCR_NODES_MAX];

	memcpy(old_nodes, c->nodes, sizeof(old_nodes));
	memcpy(old_p, c->leader.progress, sizeof(old_p));
	memcpy(old_g, c->candidate.granted, sizeof(old_g));
	memcpy(old_pg, c->pre_candidate.granted, sizeof(old_pg));
	c->n_nodes = lcr_membership_nodes(&c->membership, c->nodes);
	if (!lcr_membership_contains(&c->membership, c->id))
		c->nodes[c->n_nodes++] = c->id;
	c->self_slot = (uint32_t)lcr_core_slot(c, c->id);
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		uint32_t k = 0;
		while (k < old_n && old_nodes[k] != c->nodes[i])
			k++;
		if (k < old_n) {
			c->leader.progress[i] = old_p[k];
			c->candidate.granted[i] = old_g[k];
			c->pre_candidate.granted[i] = old_pg[k];
		} else {
			c->candidate.granted[i] = false;
			c->pre_candidate.granted[i] = false;
			if (c->leader.active)
				lcr_leader_progress_init(c, i);
		}
	}
	/* A snapshot on its way to a node no longer in the membership stops. */
	for (uint32_t k = 0; k < old_n && c->leader.active; k++) {
		if (old_p[k].snapshot && lcr_core_slot(c, old_nodes[k]) < 0) {
			struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_CANCEL_SNAPSHOT);
			cmd->cancel.target = old_nodes[k];
			cmd->cancel.stream_id = old_p[k].stream_id;
			c->n_snap_cancelled++;
		}
	}
}

void lcr_core_truncate(struct lcr_core *c, uint64_t since)
{
	struct lcr_log_id after;

	/* Raft never removes a committed entry: doing so means a broken invariant. */
	LCR_ASSERT(since > c->committed.index);
	lcr_log_ids_truncate(&c->log, since);
	lcr_mship_truncated(c, since);
	LCR_ASSERT(lcr_log_ids_get(&c->log, since - 1, &after));
	if (c->flushed_last.index >= since)
		c->flushed_last = after;
	lcr_core_next_seq(c);
	struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_TRUNCATE);
	cmd->truncate.after = after;
	cmd->truncate.io = lcr_core_io_id(c);
}

void lcr_core_commit_to(struct lcr_core *c, uint64_t index)
{
	if (index > c->log.last.index)
		index = c->log.last.index;
	if (index <= c->committed.index)
		return;
	LCR_ASSERT(lcr_log_ids_get(&c->log, index, &c->committed));
	lcr_mship_committed(c);
}

/* ---- responses held until a flush ---------------------------------------- */

static bool same_ack_stream(const struct lcr_msg *a, const struct lcr_msg *b)
{
	return a->type == LCR_MSG_APPEND_RESP && b->type == LCR_MSG_APPEND_RESP &&
	       a->append_resp.result == LCR_APPEND_OK && b->append_resp.result == LCR_APPEND_OK &&
	       a->to == b->to && a->append_resp.stream_id == b->append_resp.stream_id &&
	       lcr_vote_eq(a->append_resp.vote, b->append_resp.vote);
}

static void merge_ack(struct lcr_append_resp *into, const struct lcr_append_resp *from)
{
	if (lcr_log_id_cmp(from->log_id, into->log_id) > 0)
		into->log_id = from->log_id;
	if (from->inflight_id > into->inflight_id)
		into->inflight_id = from->inflight_id;
	if (from->send_ns > into->send_ns)
		into->send_ns = from->send_ns;
	if (from->send_seq > into->send_seq)
		into->send_seq = from->send_seq;
}

static void release_responses(struct lcr_core *c)
{
	while (c->resp_len > 0) {
		struct lcr_pending_resp *r = &c->resp[c->resp_head];
		if (r->seq > c->flushed.seq)
			break;
		c->resp_head = (c->resp_head + 1) % c->resp_max;
		c->resp_len--;
		/* Consecutive acks on one stream merge into one: each fact an
		 * ack states (durable up to, received request id, send time,
		 * send seq) only grows, so the maximum of each is still true. A
		 * heartbeat's ack can name less than the append acked before it. */
		if (c->resp_len > 0) {
			struct lcr_pending_resp *next = &c->resp[c->resp_head];
			if (next->seq <= c->flushed.seq && same_ack_stream(&r->msg, &next->msg)) {
				merge_ack(&next->msg.append_resp, &r->msg.append_resp);
				continue;
			}
		}
		lcr_core_send(c, &r->msg);
	}
}

void lcr_core_respond_when(struct lcr_core *c, uint64_t seq, const struct lcr_msg *m)
{
	if (seq <= c->flushed.seq && c->resp_len == 0) {
		lcr_core_send(c, m);
		return;
	}
	if (c->resp_len == c->resp_max) {
		/* Dropping a response is like losing it on the wire: the peer
		 * retries. Counted, because it means the queue is too small. */
		c->resp_head = (c->resp_head + 1) % c->resp_max;
		c->resp_len--;
		c->n_resp_dropped++;
	}
	struct lcr_pending_resp *r = &c->resp[(c->resp_head + c->resp_len) % c->resp_max];
	r->seq = seq;
	r->msg = *m;
	c->resp_len++;
}

/* ---- role announcements --------------------------------------------------- */

static uint32_t current_role(const struct lcr_core *c)
{
	if (c->stopped)
		return LCR_ROLE_STOPPED;
	if (c->leader.active)
		return LCR_ROLE_LEADER;
	if (c->candidate.active)
		return LCR_ROLE_CANDIDATE;
	if (lcr_membership_is_voter(&c->membership, c->id))
		return LCR_ROLE_FOLLOWER;
	return LCR_ROLE_LEARNER;
}

static uint32_t current_leader(const struct lcr_core *c)
{
	if (c->leader.active)
		return c->id;
	if (c->vote.committed)
		return c->vote.lid.node;
	return 0;
}

void lcr_core_announce_role(struct lcr_core *c)
{
	uint32_t role = current_role(c), leader = current_leader(c);

	if (role == c->role && leader == c->announced_leader)
		return;
	c->role = role;
	c->announced_leader = leader;
	struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_ROLE);
	cmd->role.role = role;
	cmd->role.leader = leader;
	cmd->role.vote = c->vote;
}

void lcr_core_stop(struct lcr_core *c, int err)
{
	(void)err;
	if (c->stopped)
		return;
	/* After a failed write or fsync nothing this replica believes about its
	 * disk can be trusted: it stops, and restarts from what recovery finds. */
	lcr_reads_fail_all(c, -LCR_ESTOPPED);
	c->leader.active = false;
	c->candidate.active = false;
	c->pre_candidate.active = false;
	c->stopped = true;
	c->role = LCR_ROLE_STOPPED;
	struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_ROLE);
	cmd->role.role = LCR_ROLE_STOPPED;
	cmd->role.vote = c->vote;
}

/* ---- start ---------------------------------------------------------------- */

int lcr_core_start(struct lcr_core *c, uint64_t now_ns)
{
	int rc = begin(c, now_ns);
	if (rc < 0)
		return rc;
	if (c->started)
		return -EINVAL;
	/* The snapshot's last entry must be in the log (or be its purge point):
	 * the log goes on from it. */
	if (c->snapshot.last.index > 0 && (c->snapshot.last.index > c->log.last.index ||
					   !lcr_log_ids_has(&c->log, c->snapshot.last)))
		return -EINVAL;
	c->started = true;
	/* The state machine holds the snapshot: that much is committed. A
	 * persisted commit hint says more only where the log holds that very
	 * entry: one past the log's end, or naming another entry at its index
	 * (a tail lost, or a value the disk made up), proves nothing about the
	 * entries this log holds, and applying them on its word could apply
	 * what was never committed. */
	if (c->committed.index <= c->snapshot.last.index || !lcr_log_ids_has(&c->log, c->committed))
		c->committed = c->snapshot.last;
	lcr_mship_committed(c);
	c->membership = c->m_log_n ? c->m_log[c->m_log_n - 1].m : c->m_committed.m;
	lcr_core_nodes_changed(c);
	c->flushed.vote = c->vote;
	c->flushed.last = c->log.last;
	c->flushed_last = c->log.last;
	c->apply_sent = c->log.purged;
	if (c->snapshot.last.index > c->apply_sent.index)
		c->apply_sent = c->snapshot.last;
	c->applied = c->apply_sent;
	c->role = 0;
	lcr_resample_election_timeout(c);

	bool own_leader = c->vote.committed && c->vote.lid.node == c->id;
	if (own_leader && (!c->cfg.enable_leader_restore || !lcr_log_ids_can_start_run(&c->log)))
		c->vote.committed = false; /* in memory: a new election is needed */
	c->vote_utime_ns = c->now_ns;
	c->vote_lease_ns = c->vote.committed ? c->leader_lease_ns : 0;
	/* The promise is not persisted: a replica that ever voted may have
	 * acknowledged a leader just before it stopped, so it keeps a promise
	 * for a full lease. Only a blank replica has promised nothing. */
	c->promise_until_ns = c->vote.lid.term > 0 ? c->now_ns + c->leader_lease_ns : 0;
	lcr_vote_refresh_state(c);
	finish(c);
	return 0;
}

/* ---- events ----------------------------------------------------------------- */

static void on_flushed(struct lcr_core *c, struct lcr_io_id io)
{
	/* Storage completes in submission order and never reports twice. */
	LCR_ASSERT(io.seq > c->flushed.seq);
	LCR_ASSERT(io.seq <= c->io_seq);
	c->flushed = io;
	c->flushed_last = io.last;
	release_responses(c);
	lcr_candidate_progress(c);
	lcr_leader_on_flush(c);
	lcr_transfer_check(c);
}

/*
 * What the door learns from a message's votes and log ids: whether every
 * term and index is below LCR_NUMBER_MAX, and the largest term (for the
 * LCR_TERM_JUMP_MAX bound).
 */
struct msg_numbers {
	uint64_t term_max;
	bool in_range;
};

/* One vote (index 0) or log id of a message. */
static void see(struct msg_numbers *n, struct lcr_leader_id lid, uint64_t index)
{
	if (lid.term >= LCR_NUMBER_MAX || index >= LCR_NUMBER_MAX)
		n->in_range = false;
	if (lid.term > n->term_max)
		n->term_max = lid.term;
}

/*
 * The one walk over a message's votes and log ids: the range check and the
 * term bound both come from it, so a field added to a message is seen by
 * both or by neither. Returns false for a type no peer sends. A request's
 * entries are not walked here: they are checked with their bodies
 * (entries_sane), and their terms are bounded by the request's vote
 * (follower.c, well_formed) rather than by the jump.
 */
static bool msg_numbers(const struct lcr_msg *m, struct msg_numbers *n)
{
	n->term_max = 0;
	n->in_range = true;
	switch (m->type) {
	case LCR_MSG_VOTE_REQ:
		see(n, m->vote_req.vote.lid, 0);
		see(n, m->vote_req.last_log_id.lid, m->vote_req.last_log_id.index);
		see(n, m->vote_req.transfer_from.lid, 0);
		return true;
	case LCR_MSG_VOTE_RESP:
		see(n, m->vote_resp.vote.lid, 0);
		see(n, m->vote_resp.req_vote.lid, 0);
		see(n, m->vote_resp.last_log_id.lid, m->vote_resp.last_log_id.index);
		return true;
	case LCR_MSG_APPEND_REQ:
		see(n, m->append_req.vote.lid, 0);
		see(n, m->append_req.prev.lid, m->append_req.prev.index);
		see(n, m->append_req.leader_commit.lid, m->append_req.leader_commit.index);
		return true;
	case LCR_MSG_APPEND_RESP:
		see(n, m->append_resp.vote.lid, 0);
		see(n, m->append_resp.log_id.lid, m->append_resp.log_id.index);
		return true;
	case LCR_MSG_TRANSFER_LEADER:
		see(n, m->transfer.from_leader.lid, 0);
		see(n, m->transfer.last_log_id.lid, m->transfer.last_log_id.index);
		return true;
	case LCR_MSG_READ_INDEX_REQ:
		see(n, m->read_index_req.vote.lid, 0);
		return true;
	case LCR_MSG_READ_INDEX_RESP:
		see(n, m->read_index_resp.vote.lid, 0);
		see(n, m->read_index_resp.read_log_id.lid, m->read_index_resp.read_log_id.index);
		return true;
	case LCR_MSG_SNAPSHOT_REQ:
		see(n, m->snapshot_req.vote.lid, 0);
		see(n, m->snapshot_req.meta.last.lid, m->snapshot_req.meta.last.index);
		return true;
	case LCR_MSG_SNAPSHOT_RESP:
		see(n, m->snapshot_resp.vote.lid, 0);
		see(n, m->snapshot_resp.last.lid, m->snapshot_resp.last.index);
		return true;
	default:
		return false;
	}
}

/*
 * An entry storage takes: blank or normal, a payload of at most LCR_ENTRY_MAX
 * bytes, and data behind a payload. The log asserts the type and refuses a
 * longer payload, which stops the replica; peer messages are untrusted, so a
 * bad entry is stopped here, at the door, and never reaches an assertion.
 * LCR_ENTRY_MEMBERSHIP is taken only where membership changes are on
 * (lcr_core_config.enable_membership_changes: its owner loads membership
 * entries at start-up), and only with a payload lcr_membership_decode takes;
 * elsewhere a replica that stored one would go on under the old membership
 * after a restart while its log says otherwise, so refusing it is safer.
 */
static bool entry_valid(const struct lcr_core *c, const struct lcr_entry *e)
{
	if (e->type == LCR_ENTRY_MEMBERSHIP) {
		if (!c->cfg.enable_membership_changes)
			return false;
		struct lcr_membership m;
		uint32_t ids[LCR_NODES_MAX];
		/* At most LCR_NODES_MAX - 1 nodes: a replica not among them still
		 * has a slot of its own. */
		return e->data && lcr_membership_decode(e->data, e->len, &m) == 0 &&
		       lcr_membership_nodes(&m, ids) < LCR_NODES_MAX;
	}
	if (e->type != LCR_ENTRY_BLANK && e->type != LCR_ENTRY_NORMAL)
		return false;
	if (e->len > LCR_ENTRY_MAX)
		return false;
	return e->len == 0 || e->data != NULL;
}

/*
 * A request's entries: no more than the indexes left after prev (which
 * msg_numbers() bounded, so no wrap), ids in range, bodies storage takes.
 * The protocol handler checks the rest (follower.c).
 */
static bool entries_sane(const struct lcr_core *c, const struct lcr_append_req *a)
{
	if (a->n_entries > LCR_NUMBER_MAX - a->prev.index)
		return false;
	for (uint32_t i = 0; i < a->n_entries && a->entries; i++) {
		struct lcr_log_id id = a->entries[i].id;
		if (id.lid.term >= LCR_NUMBER_MAX || id.index >= LCR_NUMBER_MAX ||
		    !entry_valid(c, &a->entries[i]))
			return false;
	}
	return true;
}

static void on_msg(struct lcr_core *c, const struct lcr_msg *m)
{
	/* A sender outside the node table is dropped, but for a request where
	 * membership changes are on: a node this replica does not know yet may
	 * lead a membership it has not received (Raft processes requests from
	 * anyone; the transport keeps strangers out). Replies need a slot. */
	bool request = m->type == LCR_MSG_VOTE_REQ || m->type == LCR_MSG_APPEND_REQ ||
		       m->type == LCR_MSG_SNAPSHOT_REQ || m->type == LCR_MSG_TRANSFER_LEADER ||
		       m->type == LCR_MSG_READ_INDEX_REQ;
	bool known = lcr_core_slot(c, m->from) >= 0 ||
		     (request && c->cfg.enable_membership_changes && m->from != 0);
	if (m->to != c->id || !known || m->from == c->id) {
		c->n_stale++;
		return;
	}
	/* Numbers in range; the protocol handlers check the rest. */
	struct msg_numbers n;
	if (!msg_numbers(m, &n) || !n.in_range ||
	    (m->type == LCR_MSG_APPEND_REQ && !entries_sane(c, &m->append_req))) {
		c->n_dropped++;
		return;
	}
	/* A term no peer could have reached since ours: refused, not adopted
	 * (LCR_TERM_JUMP_MAX). Both terms are below 2^62, so no wrap. */
	if (n.term_max > c->vote.lid.term + LCR_TERM_JUMP_MAX &&
	    !LCR_BUG(c, LCR_BUG_FAR_TERM_ACCEPTED)) {
		c->n_far_terms++;
		return;
	}
	switch (m->type) {
	case LCR_MSG_VOTE_REQ:
		lcr_on_vote_req(c, m);
		break;
	case LCR_MSG_VOTE_RESP:
		lcr_on_vote_resp(c, m);
		break;
	case LCR_MSG_APPEND_REQ:
		lcr_on_append_req(c, m);
		break;
	case LCR_MSG_APPEND_RESP:
		lcr_on_append_resp(c, m);
		break;
	case LCR_MSG_TRANSFER_LEADER:
		lcr_on_transfer(c, m);
		break;
	case LCR_MSG_READ_INDEX_REQ:
		lcr_on_read_index_req(c, m);
		break;
	case LCR_MSG_READ_INDEX_RESP:
		lcr_on_read_index_resp(c, m);
		break;
	case LCR_MSG_SNAPSHOT_REQ:
		lcr_on_snapshot_req(c, m);
		break;
	case LCR_MSG_SNAPSHOT_RESP:
		lcr_on_snapshot_resp(c, m);
		break;
	default:
		c->n_stale++;
		break;
	}
}

static void tick(struct lcr_core *c)
{
	if (c->leader.active) {
		lcr_leader_tick(c);
	} else {
		lcr_candidate_progress(c);
		lcr_election_tick(c);
	}
	lcr_transfer_check(c);
	lcr_reads_progress(c);
}

int lcr_core_step(struct lcr_core *c, const struct lcr_event *ev)
{
	int rc = begin(c, ev->now_ns);
	if (rc < 0)
		return rc;
	LCR_ASSERT(c->started);
	switch (ev->type) {
	case LCR_EV_TICK:
		tick(c);
		break;
	case LCR_EV_MSG:
		on_msg(c, ev->msg);
		break;
	case LCR_EV_IO_FLUSHED:
		on_flushed(c, ev->io);
		break;
	case LCR_EV_IO_FAILED:
		lcr_core_stop(c, ev->io_error);
		return -LCR_ESTOPPED;
	case LCR_EV_APPLIED:
		LCR_ASSERT(ev->applied.index <= c->apply_sent.index);
		if (ev->applied.index > c->applied.index)
			c->applied = ev->applied;
		lcr_reads_progress(c);
		lcr_snapshot_maybe_build(c);
		break;
	case LCR_EV_NET_ERROR:
		lcr_on_net_error(c, ev->net.target, ev->net.stream_id, ev->net.err);
		break;
	case LCR_EV_TRIGGER_ELECT:
		if (ev->elect.pre_vote)
			lcr_pre_elect(c);
		else
			lcr_elect(c, NULL);
		break;
	case LCR_EV_TRIGGER_HEARTBEAT:
		if (c->leader.active)
			lcr_leader_heartbeat(c);
		break;
	case LCR_EV_TRIGGER_TRANSFER:
		lcr_trigger_transfer(c, ev->transfer_to);
		break;
	case LCR_EV_SET_TOGGLE:
		if (ev->toggle.toggle == LCR_TOGGLE_HEARTBEAT)
			c->cfg.enable_heartbeat = ev->toggle.on;
		else if (ev->toggle.toggle == LCR_TOGGLE_ELECT)
			c->cfg.enable_elect = ev->toggle.on;
		else if (ev->toggle.toggle == LCR_TOGGLE_PRE_VOTE)
			c->cfg.enable_pre_vote = ev->toggle.on;
		else
			return -EINVAL;
		break;
	case LCR_EV_SNAPSHOT_BUILT:
		lcr_snapshot_built(c, &ev->snapshot.meta, ev->snapshot.err);
		break;
	case LCR_EV_TRIGGER_SNAPSHOT:
		lcr_snapshot_trigger(c);
		break;
	case LCR_EV_TRIGGER_PURGE:
		lcr_purge(c, ev->purge_upto, true);
		break;
	default:
		return -EINVAL;
	}
	finish(c);
	return 0;
}

int lcr_core_propose(struct lcr_core *c, uint64_t now_ns, struct lcr_entry *entries, uint32_t n)
{
	int rc = begin(c, now_ns);
	if (rc < 0)
		return rc;
	if (!c->leader.active)
		return -LCR_ENOTLEADER;
	if (c->leader.transfer_to != 0)
		return -LCR_ETRANSFER;
	/* CheckQuorum: no new writes without a quorum heard from within the lease. */
	if (!lcr_leader_lease_valid(c))
		return -LCR_ENOLEASE;
	if (n == 0)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (entries[i].type == LCR_ENTRY_MEMBERSHIP || !entry_valid(c, &entries[i]))
			return -EINVAL;
	lcr_leader_append(c, entries, n);
	finish(c);
	return c->stopped ? -LCR_ESTOPPED : 0;
}

int lcr_core_change_membership(struct lcr_core *c, uint64_t now_ns,
			       const struct lcr_membership *target, struct lcr_log_id *id)
{
	struct lcr_membership next;
	uint32_t ids[LCR_NODES_MAX];
	char why[160];
	bool direct;
	int rc = begin(c, now_ns);

	if (rc < 0)
		return rc;
	if (!c->cfg.enable_membership_changes)
		return -ENOTSUP;
	if (!c->leader.active)
		return -LCR_ENOTLEADER;
	if (c->leader.transfer_to != 0)
		return -LCR_ETRANSFER;
	if (!lcr_leader_lease_valid(c))
		return -LCR_ENOLEASE;
	if (!target || target->n_configs != 1 ||
	    lcr_membership_validate(target, why, sizeof(why)) < 0)
		return -EINVAL;
	/* One change at a time (openraft: the previous must be committed). */
	if (!lcr_mship_settled(c) || c->m_target_pending)
		return -EBUSY;
	/* Addresses: the target's, else the ones the nodes have now. */
	struct lcr_membership t = *target;
	const struct lcr_membership *have =
		LCR_BUG(c, LCR_BUG_ADDRS_DROPPED) ? NULL : &c->membership;
	lcr_membership_keep_addrs(&t, have);
	lcr_mship_joint(&c->membership, &t, &next, &direct);
	lcr_membership_keep_addrs(&next, have);
	/* The joint config holds the old and the new nodes; every replica's
	 * table must take them, and itself (entry_valid's bound). */
	if (lcr_membership_validate(&next, why, sizeof(why)) < 0 ||
	    lcr_membership_nodes(&next, ids) >= LCR_NODES_MAX)
		return -EINVAL;
	if (LCR_BUG(c, LCR_BUG_RETAIN_DROPPED))
		next.n_retained = 0; /* the joint entry forgets whom the target keeps */
	if (!direct) {
		/* What any leader that finishes it would propose: the same
		 * entry whether or not the leadership changes meanwhile. */
		lcr_mship_target(&next, &c->m_target);
		c->m_target_pending = true;
		c->m_joint_index = c->log.last.index + 1;
	}
	lcr_leader_propose_membership(c, &next);
	if (id)
		*id = c->m_entry.id;
	finish(c);
	return c->stopped ? -LCR_ESTOPPED : 0;
}

int lcr_core_read(struct lcr_core *c, uint64_t now_ns, uint32_t policy, uint64_t *read_id)
{
	int rc = begin(c, now_ns);
	if (rc < 0)
		return rc;
	if (policy != LCR_READ_INDEX && policy != LCR_READ_LEASE)
		return -EINVAL;
	rc = lcr_read_start(c, policy, read_id);
	finish(c);
	return rc;
}

static uint64_t next_timer(const struct lcr_core *c)
{
	uint64_t t = c->leader.active ? lcr_leader_next_timer(c) : lcr_election_deadline(c);
	uint64_t r = lcr_reads_next_timer(c);

	if (r && r < t)
		t = r;
	if (c->transfer_in.active && c->transfer_in.deadline_ns + 1 < t)
		t = c->transfer_in.deadline_ns + 1;
	return t;
}

uint64_t lcr_core_next_timer(const struct lcr_core *c)
{
	return c->stopped ? UINT64_MAX : next_timer(c);
}

void lcr_core_status(const struct lcr_core *c, struct lcr_core_status *st)
{
	memset(st, 0, sizeof(*st));
	st->id = c->id;
	st->role = current_role(c);
	st->leader = current_leader(c);
	st->vote = c->vote;
	st->last = c->log.last;
	st->flushed = c->flushed_last;
	st->committed = c->committed;
	st->applied = c->applied;
	st->purged = c->log.purged;
	st->snapshot = c->snapshot;
	st->building = c->building;
	st->membership = c->membership;
	st->snapshot_membership = c->snap_m;
	st->membership_id = c->m_log_n ? c->m_log[c->m_log_n - 1].id : c->m_committed.id;
	st->membership_committed = c->m_log_n == 0;
	st->membership_changes = c->n_mship_changes;
	st->n_nodes = c->n_nodes;
	for (uint32_t i = 0; i < c->n_nodes; i++)
		st->nodes[i] = c->nodes[i];
	if (c->leader.active) {
		st->noop = c->leader.noop;
		st->transferring = c->leader.transfer_to != 0;
		uint64_t acked = lcr_leader_quorum_acked_ns(c);
		st->quorum_acked_ns = acked;
		if (lcr_leader_lease_valid(c))
			st->lease_until_ns = acked + c->leader_lease_ns;
		for (uint32_t i = 0; i < c->n_nodes; i++) {
			st->matching[i] = c->leader.progress[i].matching;
			st->sent[i] = c->leader.progress[i].sent_index;
			st->inflight[i] = (uint32_t)(c->leader.progress[i].next_inflight_id - 1 -
						     c->leader.progress[i].acked_inflight_id);
			st->inflight_from[i] = c->leader.progress[i].inflight_from;
			st->sending_snapshot[i] = c->leader.progress[i].snapshot;
		}
	}
	st->snapshots_built = c->n_snap_built;
	st->snapshots_failed = c->n_snap_failed;
	st->snapshots_sent = c->n_snap_sent;
	st->snapshots_cancelled = c->n_snap_cancelled;
	st->snapshots_installed = c->n_snap_installed;
	st->snapshots_refused = c->n_snap_refused;
	st->purges = c->n_purges;
	st->elections = c->n_elections;
	st->responses_dropped = c->n_resp_dropped;
	st->stale_msgs = c->n_stale;
	st->reversions = c->n_reversions;
	st->dropped_msgs = c->n_dropped;
	st->far_terms = c->n_far_terms;
	st->term_exhausted = c->n_term_exhausted;
	st->runs_full = !lcr_log_ids_can_start_run(&c->log);
	st->next_timer_ns = c->stopped ? UINT64_MAX : next_timer(c);
}
