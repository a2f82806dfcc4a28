/* SPDX-License-Identifier: MIT */
/*
 * Metrics as JSON, and in Prometheus's text format. An lcore's counters and
 * its groups' state change only on its own thread, so each lcore renders its
 * own part; another thread asks and waits (lcr_node_metrics_json), or posts
 * a task there (lcr_node_metrics_prom).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "put.h"
#include "dpdk.h"
#include "runtime_int.h"

/* ---- metrics ---------------------------------------------------------------------- */

static const char *role_name(uint32_t r)
{
	static const char *names[] = { "none",	 "follower", "candidate",
				       "leader", "learner",  "stopped" };
	return r <= 5 ? names[r] : "unknown";
}

static int hist_json(char *buf, size_t len, const char *name, const struct lcr_hist *h)
{
	size_t o = 0;
	LCR_PUT("\"%s\":{\"count\":%llu,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
		"\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f}",
		name, (unsigned long long)h->count, (double)lcr_hist_pct(h, 0.5) / 1000.0,
		(double)lcr_hist_pct(h, 0.9) / 1000.0, (double)lcr_hist_pct(h, 0.99) / 1000.0,
		(double)lcr_hist_pct(h, 0.999) / 1000.0, (double)h->max_ns / 1000.0,
		h->count ? (double)h->sum_ns / (double)h->count / 1000.0 : 0.0);
	return (int)o;
}

int lcr_group_metrics_json(struct lcr_group *g, char *buf, size_t len)
{
	struct lcr_core_status st;
	struct lcr_log_stats ls;
	size_t o = 0;
	int k;

	lcr_core_status(g->core, &st);
	lcr_log_stats(g->log, &ls);
	LCR_PUT("{\"group\":%u,\"role\":\"%s\",\"term\":%llu,\"leader\":%u,"
		"\"last\":%llu,\"committed\":%llu,\"applied\":%llu,\"flushed\":%llu,",
		g->id, role_name(st.role), (unsigned long long)st.vote.lid.term, st.leader,
		(unsigned long long)st.last.index, (unsigned long long)st.committed.index,
		(unsigned long long)st.applied.index, (unsigned long long)st.flushed.index);
	LCR_PUT("\"replication\":{");
	for (uint32_t i = 0, first = 1; st.role == LCR_ROLE_LEADER && i < st.n_nodes; i++) {
		if (st.nodes[i] == st.id)
			continue;
		LCR_PUT("%s\"%u\":{\"matching\":%llu", first ? "" : ",", st.nodes[i],
			(unsigned long long)st.matching[i].index);
		/* The transport's view of the follower (UDP: its stream). */
		k = lcr_net_client_metrics_json(g->ng, st.nodes[i], buf + o + 1,
						len > o + 1 ? len - o - 1 : 0);
		if (k < 0)
			return k;
		if (k > 0) {
			if (o < len)
				buf[o] = ',';
			o += (size_t)k + 1;
		}
		LCR_PUT("}");
		first = 0;
	}
	LCR_PUT("}");
	/* The leader: how long ago a quorum acknowledged its newest send
	 * (openraft's last_quorum_acked): a healthy leader keeps it under a
	 * heartbeat interval plus a round trip. */
	if (st.role == LCR_ROLE_LEADER && st.quorum_acked_ns) {
		uint64_t now = lcr_rt_now_ns();
		LCR_PUT(",\"quorum_acked_ms_ago\":%.3f",
			now > st.quorum_acked_ns ? (double)(now - st.quorum_acked_ns) / 1e6 : 0.0);
	}
	LCR_PUT(",\"membership\":");
	k = lcr_rt_mship_json(&st.membership, buf + o, len > o ? len - o : 0);
	if (k < 0)
		return k;
	o += (size_t)k;
	LCR_PUT(",\"membership_index\":%llu,\"membership_committed\":%s,"
		"\"membership_changes\":%llu,\"membership_changes_failed\":%llu",
		(unsigned long long)st.membership_id.index,
		st.membership_committed ? "true" : "false", (unsigned long long)g->mship_changed,
		(unsigned long long)g->mship_failed);
	LCR_PUT(",\"proposed\":%llu,\"applied_entries\":%llu,\"cancelled\":%llu,\"refused\":%llu,"
		"\"elections\":%llu,\"dropped_msgs\":%llu,\"stale_msgs\":%llu,\"far_terms\":%llu,"
		"\"term_exhausted\":%llu,\"net_errors\":%llu,\"log_reversions\":%llu,",
		(unsigned long long)g->proposed, (unsigned long long)g->applied,
		(unsigned long long)g->cancelled, (unsigned long long)g->refused,
		(unsigned long long)st.elections, (unsigned long long)st.dropped_msgs,
		(unsigned long long)st.stale_msgs, (unsigned long long)st.far_terms,
		(unsigned long long)st.term_exhausted, (unsigned long long)g->net_errors,
		(unsigned long long)st.reversions);
	/* Snapshots and purges: the core's counters and the runtime's builds. */
	const struct lcr_rt_snap *sn = &g->snap;
	LCR_PUT("\"snapshot_index\":%llu,\"purged_index\":%llu,\"applied_index\":%llu,"
		"\"snapshots_built\":%llu,\"snapshots_failed\":%llu,\"snapshots_sent\":%llu,"
		"\"snapshots_installed\":%llu,\"snapshots_cancelled\":%llu,\"purges\":%llu,",
		(unsigned long long)st.snapshot.last.index, (unsigned long long)st.purged.index,
		(unsigned long long)g->applied_id.index, (unsigned long long)st.snapshots_built,
		(unsigned long long)st.snapshots_failed, (unsigned long long)st.snapshots_sent,
		(unsigned long long)st.snapshots_installed,
		(unsigned long long)st.snapshots_cancelled, (unsigned long long)st.purges);
	LCR_PUT("\"snapshot\":{\"building\":%s,\"build_ms_last\":%.1f,\"build_ms_max\":%.1f,"
		"\"bytes_last\":%llu,\"bytes_total\":%llu,\"build_iteration_max_us\":%.1f,"
		"\"build_iteration_cpu_max_us\":%.1f,"
		"\"restored_bytes\":%llu,\"purge_errors\":%llu,\"installing\":%s,"
		"\"install_ms_last\":%.1f,\"install_iteration_max_us\":%.1f,"
		"\"install_iteration_cpu_max_us\":%.1f,\"sends_opened\":%llu,"
		"\"send_busy\":%llu,\"send_stale\":%llu,\"recv_bad\":%llu},",
		sn->building ? "true" : "false", (double)sn->build_ns_last / 1e6,
		(double)sn->build_ns_max / 1e6, (unsigned long long)sn->bytes_last,
		(unsigned long long)sn->bytes_total, (double)sn->iter_max_ns / 1e3,
		(double)sn->iter_cpu_max_ns / 1e3, (unsigned long long)sn->restored_bytes,
		(unsigned long long)sn->purge_errors, sn->inst.active ? "true" : "false",
		(double)sn->install_ns_last / 1e6, (double)sn->inst.iter_max_ns / 1e3,
		(double)sn->inst.iter_cpu_max_ns / 1e3, (unsigned long long)sn->sent_opened,
		(unsigned long long)sn->send_busy, (unsigned long long)sn->send_stale,
		(unsigned long long)sn->recv_bad);
	LCR_PUT("\"storage\":{\"batches\":%llu,\"entries\":%llu,\"bytes\":%llu,\"syncs\":%llu,"
		"\"vote_writes\":%llu,\"cache_hits\":%llu,\"cache_misses\":%llu,\"disk_reads\":%"
		"llu,"
		"\"segments\":%llu,\"flushes_reported\":%llu,\"buffer_free\":%llu,"
		"\"backlogged\":%llu,",
		(unsigned long long)ls.batches_written, (unsigned long long)ls.entries_written,
		(unsigned long long)ls.bytes_written, (unsigned long long)ls.syncs,
		(unsigned long long)ls.vote_writes, (unsigned long long)ls.cache_hits,
		(unsigned long long)ls.cache_misses, (unsigned long long)ls.disk_reads,
		(unsigned long long)ls.segments_created, (unsigned long long)g->flushes,
		(unsigned long long)lcr_log_space(g->log), (unsigned long long)g->backlogged);
	/* Each batch's write, and its fdatasync with durability fsync. */
	k = hist_json(buf + o, len > o ? len - o : 0, "write_latency",
		      lcr_log_write_latency(g->log));
	if (k < 0)
		return k;
	o += (size_t)k;
	LCR_PUT("},");
	k = hist_json(buf + o, len > o ? len - o : 0, "commit_latency", &g->commit_lat);
	if (k < 0)
		return k;
	o += (size_t)k;
	/* A commit's timeline (trace.c), each stage since the group opened. */
	LCR_PUT(",\"stages\":{");
	for (uint32_t i = 0; i < LCR_STAGE_N; i++) {
		if (i)
			LCR_PUT(",");
		k = hist_json(buf + o, len > o ? len - o : 0, lcr_rt_stage_name(i),
			      &g->trace->h[i]);
		if (k < 0)
			return k;
		o += (size_t)k;
	}
	LCR_PUT("}}");
	return o < len ? (int)o : -ENOSPC;
}

/*
 * One lcore's part: its loop, its transport, its groups (LCR_RT_M_ALL; with
 * LCR_RT_M_LCORE their number; LCR_RT_M_IDS their ids alone; a group id:
 * that group alone). On that lcore.
 */
static int lcore_metrics_json(struct lcore *lc, uint32_t part, char *buf, size_t len)
{
	size_t o = 0;

	if (part == LCR_RT_M_IDS) {
		LCR_PUT("[");
		for (uint32_t k = 0; k < lc->n_groups; k++)
			LCR_PUT("%s%u", k ? "," : "", lc->groups[k]->id);
		LCR_PUT("]");
		return o < len ? (int)o : -ENOSPC;
	}
	if (part != LCR_RT_M_ALL && part != LCR_RT_M_LCORE) {
		struct lcr_group *g = lcr_rt_group_of(lc, part);
		return g ? lcr_group_metrics_json(g, buf, len) : -ENOENT;
	}
	LCR_PUT("{\"lcore\":%u,\"iterations\":%llu,\"sleeps\":%llu,", lc->index,
		(unsigned long long)lc->iterations, (unsigned long long)lc->sleeps);
	/* Polling before sleeping (loop.c): its medians, its time, whether it paid. */
	LCR_PUT("\"poll\":{\"gap_median_us\":%.1f,\"io_median_us\":%.1f,\"polled_ms\":%.1f,"
		"\"paid\":%llu,\"slept_after\":%llu},",
		(double)lc->gap_med / 1e3, (double)lc->io_med / 1e3, (double)lc->spun_ns / 1e6,
		(unsigned long long)lc->spin_hits, (unsigned long long)lc->spin_misses);
	/* Node addresses from memberships (membership.c): told the transport,
	 * forgotten, refused; the ones it holds now. */
	LCR_PUT("\"peers_learned\":{\"learned\":%llu,\"forgotten\":%llu,\"refused\":%llu,"
		"\"now\":{",
		(unsigned long long)lc->learned_n, (unsigned long long)lc->forgotten_n,
		(unsigned long long)lc->learn_failed);
	for (uint32_t k = 0; k < lc->n_learned; k++)
		LCR_PUT("%s\"%u\":\"%s\"", k ? "," : "", lc->learned[k].id,
			lc->learned[k].err ? "refused" : "ok");
	LCR_PUT("}},");
	/* The transport: net.c's counters and its own (UDP: datagrams, drops). */
	int w = lcr_net_metrics_json(lc->net, buf + o, len > o ? len - o : 0);
	if (w < 0)
		return w;
	o += (size_t)w;
	if (part == LCR_RT_M_LCORE) {
		LCR_PUT(",\"groups\":%u}", lc->n_groups);
		return o < len ? (int)o : -ENOSPC;
	}
	LCR_PUT(",\"groups\":[");
	for (uint32_t k = 0; k < lc->n_groups; k++) {
		if (k)
			LCR_PUT(",");
		w = lcr_group_metrics_json(lc->groups[k], buf + o, len > o ? len - o : 0);
		if (w < 0)
			return w;
		o += (size_t)w;
	}
	LCR_PUT("]}");
	return o < len ? (int)o : -ENOSPC;
}

/* Asked for by another thread (lcr_node_metrics_json): render into its buffer. */
void lcr_rt_metrics_render(struct lcore *lc)
{
	pthread_mutex_lock(&lc->m_mu);
	if (lc->m_out) {
		*lc->m_res = lcore_metrics_json(lc, lc->m_part, lc->m_out, lc->m_len);
		lc->m_out = NULL;
		lc->m_res = NULL;
		pthread_cond_broadcast(&lc->m_cv);
	}
	atomic_store_explicit(&lc->m_want, false, memory_order_relaxed);
	pthread_mutex_unlock(&lc->m_mu);
}

/*
 * Another lcore's part, rendered by that lcore while we wait (at most 1 s):
 * its counters and its groups' state change only on its own thread.
 */
static int lcore_metrics_remote(struct lcore *lc, uint32_t part, char *buf, size_t len)
{
	struct timespec dl;
	int rc = 0, res = INT_MIN;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 1;
	pthread_mutex_lock(&lc->m_mu);
	/* Another thread's request first (its buffer, its result). */
	while (lc->m_out && atomic_load(&lc->looping) && rc == 0)
		rc = pthread_cond_timedwait(&lc->m_cv, &lc->m_mu, &dl);
	if (lc->m_out || !atomic_load(&lc->looping)) {
		pthread_mutex_unlock(&lc->m_mu);
		return atomic_load(&lc->looping) ? -ETIMEDOUT : -LCR_ESTOPPED;
	}
	lc->m_out = buf;
	lc->m_len = len;
	lc->m_part = part;
	lc->m_res = &res;
	atomic_store_explicit(&lc->m_want, true, memory_order_release);
	lcr_rt_wake(lc);
	while (res == INT_MIN && atomic_load(&lc->looping) && rc == 0)
		rc = pthread_cond_timedwait(&lc->m_cv, &lc->m_mu, &dl);
	if (res == INT_MIN) {
		/* It did not answer (stopped, or stuck): never write there later. */
		if (lc->m_res == &res) {
			lc->m_out = NULL;
			lc->m_res = NULL;
			pthread_cond_broadcast(&lc->m_cv);
		}
		res = atomic_load(&lc->looping) ? -ETIMEDOUT : -LCR_ESTOPPED;
	}
	pthread_mutex_unlock(&lc->m_mu);
	return res;
}

int lcr_node_metrics_json(struct lcr_node *n, char *buf, size_t len)
{
	size_t o = 0;

	LCR_PUT("{\"node\":%u,\"lcores\":[", n->cfg.id);
	for (uint32_t i = 0; i < n->n_lcores; i++) {
		struct lcore *lc = &n->lcores[i];
		bool mine = !atomic_load(&lc->looping) || lcr_rt_this_lcore() == lc;
		if (i)
			LCR_PUT(",");
		int w = mine ? lcore_metrics_json(lc, LCR_RT_M_ALL, buf + o, len > o ? len - o : 0)
			     : lcore_metrics_remote(lc, LCR_RT_M_ALL, buf + o,
						    len > o ? len - o : 0);
		if (w < 0)
			return w;
		o += (size_t)w;
	}
	LCR_PUT("]}");
	return o < len ? (int)o : -ENOSPC;
}

int lcr_rt_metrics_part(struct lcr_node *n, uint32_t lcore, uint32_t part, char *buf, size_t len)
{
	if (lcore >= n->n_lcores)
		return -ENOENT;
	struct lcore *lc = &n->lcores[lcore];
	bool mine = !atomic_load(&lc->looping) || lcr_rt_this_lcore() == lc;
	return mine ? lcore_metrics_json(lc, part, buf, len)
		    : lcore_metrics_remote(lc, part, buf, len);
}

/* ---- Prometheus ------------------------------------------------------------------- */

/*
 * The text exposition format (version 0.0.4): one HELP and one TYPE line per
 * family, then its samples. A page must hold each family once, its samples
 * together, so an lcore renders family by family, each across its groups;
 * and every family's HELP line comes even with no sample (a follower has no
 * per-follower lines), so that the lcores' texts have the same families in
 * the same order and a page for several lcores is their texts merged family
 * by family (lcraft.h, lcr_node_metrics_prom).
 */

/* What one group says, read once per family it appears in (on its lcore). */
struct prom_group {
	struct lcr_core_status st;
	struct lcr_log_stats ls;
};

/* A plain family: one sample per group, a number of the group's. */
enum prom_field {
	PF_TERM,
	PF_LEADER,
	PF_LAST,
	PF_FLUSHED,
	PF_COMMITTED,
	PF_APPLIED,
	PF_SNAPSHOT,
	PF_PURGED,
	PF_ELECTIONS,
	PF_PROPOSED,
	PF_APPLIED_ENTRIES,
	PF_CANCELLED,
	PF_REFUSED,
	PF_BACKLOGGED,
	PF_BYTES,
	PF_ENTRIES,
	PF_BATCHES,
	PF_SYNCS,
	PF_SEG_CREATED,
	PF_SEG_PURGED,
	PF_BUFFER_FREE,
	PF_SNAP_BUILT,
	PF_SNAP_FAILED,
	PF_SNAP_SENT,
	PF_SNAP_INSTALLED,
	PF_SNAP_CANCELLED,
	PF_PURGES,
};

struct prom_family {
	const char *name;
	const char *type; /* "gauge" or "counter" */
	uint32_t field;	  /* enum prom_field */
	const char *help;
};

static const struct prom_family prom_families[] = {
	{ "lcraft_term", "gauge", PF_TERM, "The replica's current term." },
	{ "lcraft_leader_id", "gauge", PF_LEADER, "The leader this replica knows; 0: none." },
	{ "lcraft_last_index", "gauge", PF_LAST,
	  "Index of the last entry in the log (in memory)." },
	{ "lcraft_flushed_index", "gauge", PF_FLUSHED,
	  "Index of the last entry known durable here." },
	{ "lcraft_committed_index", "gauge", PF_COMMITTED, "Index of the last committed entry." },
	{ "lcraft_applied_index", "gauge", PF_APPLIED,
	  "Index of the last entry applied to the state machine." },
	{ "lcraft_snapshot_index", "gauge", PF_SNAPSHOT,
	  "Last index the newest snapshot holds; 0: none." },
	{ "lcraft_purged_index", "gauge", PF_PURGED, "Last index purged from the log; 0: none." },
	{ "lcraft_elections_total", "counter", PF_ELECTIONS, "Elections this replica started." },
	{ "lcraft_proposals_total", "counter", PF_PROPOSED, "Entries proposed on this replica." },
	{ "lcraft_applied_entries_total", "counter", PF_APPLIED_ENTRIES,
	  "Entries applied to the state machine." },
	{ "lcraft_proposals_cancelled_total", "counter", PF_CANCELLED,
	  "Proposals replaced by another leader's entries (never committed)." },
	{ "lcraft_proposals_refused_total", "counter", PF_REFUSED,
	  "Proposals refused at once (not the leader, no lease, a transfer)." },
	{ "lcraft_proposals_backlogged_total", "counter", PF_BACKLOGGED,
	  "Proposals refused because the log's write buffer was full (the disk is behind)." },
	{ "lcraft_storage_written_bytes_total", "counter", PF_BYTES,
	  "Bytes the log wrote, padding to 4 KiB included." },
	{ "lcraft_storage_written_entries_total", "counter", PF_ENTRIES, "Entries the log wrote." },
	{ "lcraft_storage_write_batches_total", "counter", PF_BATCHES,
	  "Batches the log wrote (one write each)." },
	{ "lcraft_storage_syncs_total", "counter", PF_SYNCS, "fdatasync calls of the log." },
	{ "lcraft_storage_segments_created_total", "counter", PF_SEG_CREATED,
	  "Log segment files created." },
	{ "lcraft_storage_segments_purged_total", "counter", PF_SEG_PURGED,
	  "Log segment files purged." },
	{ "lcraft_storage_buffer_free_bytes", "gauge", PF_BUFFER_FREE,
	  "Free bytes of the log's write buffer (proposals are refused when it is full)." },
	{ "lcraft_snapshots_built_total", "counter", PF_SNAP_BUILT, "Snapshots built here." },
	{ "lcraft_snapshots_failed_total", "counter", PF_SNAP_FAILED,
	  "Snapshot builds that failed." },
	{ "lcraft_snapshots_sent_total", "counter", PF_SNAP_SENT, "Snapshots sent to followers." },
	{ "lcraft_snapshots_installed_total", "counter", PF_SNAP_INSTALLED,
	  "Snapshots received from a leader and installed here." },
	{ "lcraft_snapshots_cancelled_total", "counter", PF_SNAP_CANCELLED,
	  "Snapshot sends cancelled." },
	{ "lcraft_purges_total", "counter", PF_PURGES, "Log purges after a snapshot." },
};

static void prom_read(struct lcr_group *g, struct prom_group *pg)
{
	lcr_core_status(g->core, &pg->st);
	lcr_log_stats(g->log, &pg->ls);
}

static uint64_t prom_value(const struct lcr_group *g, const struct prom_group *pg, uint32_t f)
{
	const struct lcr_core_status *st = &pg->st;
	const struct lcr_log_stats *ls = &pg->ls;

	switch (f) {
	case PF_TERM:
		return st->vote.lid.term;
	case PF_LEADER:
		return st->leader;
	case PF_LAST:
		return st->last.index;
	case PF_FLUSHED:
		return st->flushed.index;
	case PF_COMMITTED:
		return st->committed.index;
	case PF_APPLIED:
		return st->applied.index;
	case PF_SNAPSHOT:
		return st->snapshot.last.index;
	case PF_PURGED:
		return st->purged.index;
	case PF_ELECTIONS:
		return st->elections;
	case PF_PROPOSED:
		return g->proposed;
	case PF_APPLIED_ENTRIES:
		return g->applied;
	case PF_CANCELLED:
		return g->cancelled;
	case PF_REFUSED:
		return g->refused;
	case PF_BACKLOGGED:
		return g->backlogged;
	case PF_BYTES:
		return ls->bytes_written;
	case PF_ENTRIES:
		return ls->entries_written;
	case PF_BATCHES:
		return ls->batches_written;
	case PF_SYNCS:
		return ls->syncs;
	case PF_SEG_CREATED:
		return ls->segments_created;
	case PF_SEG_PURGED:
		return ls->segments_purged;
	case PF_BUFFER_FREE:
		return lcr_log_space(g->log);
	case PF_SNAP_BUILT:
		return st->snapshots_built;
	case PF_SNAP_FAILED:
		return st->snapshots_failed;
	case PF_SNAP_SENT:
		return st->snapshots_sent;
	case PF_SNAP_INSTALLED:
		return st->snapshots_installed;
	case PF_SNAP_CANCELLED:
		return st->snapshots_cancelled;
	case PF_PURGES:
		return st->purges;
	}
	LCR_ASSERT(!"a family without a field");
	return 0;
}

static int prom_head(char *buf, size_t len, const char *name, const char *type, const char *help)
{
	size_t o = 0;
	LCR_PUT("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	return (int)o;
}

/*
 * Bucket bounds of the latency histograms: near 1, 2.5 and 5 x 10^k us, from
 * 1 us to 10 s, each moved up to the end of the lcr_hist bucket it falls in
 * (at most 1/128 above it) so that every cumulative count is exact: the
 * counts of whole lcr_hist buckets, no sample split or guessed.
 */
static const uint64_t prom_bounds_ns[] = {
	1000,	   2500,      5000,	  10000,      25000,	  50000,       100000,	 250000,
	500000,	   1000000,   2500000,	  5000000,    10000000,	  25000000,    50000000, 100000000,
	250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
#define PROM_BOUNDS (sizeof(prom_bounds_ns) / sizeof(prom_bounds_ns[0]))

/* The first value of lcr_hist bucket i (hist.h: lcr_hist_value is its middle). */
static uint64_t hist_bucket_low(uint32_t i)
{
	if (i < LCR_HIST_SUB)
		return i;
	uint32_t shift = i / LCR_HIST_HALF - 1;
	return (uint64_t)(i - shift * LCR_HIST_HALF) << shift;
}

/* One histogram's samples: cumulative buckets at prom_bounds_ns, +Inf, sum, count. */
static int prom_hist(char *buf, size_t len, const char *name, const char *labels,
		     const struct lcr_hist *h)
{
	uint64_t seen = 0;
	uint32_t i = 0;
	size_t o = 0;

	for (uint32_t b = 0; b < PROM_BOUNDS; b++) {
		uint32_t last = lcr_hist_index(prom_bounds_ns[b]);
		LCR_ASSERT(last + 1 < LCR_HIST_BUCKETS);
		for (; i <= last; i++)
			seen += h->b[i];
		/* Samples are whole ns: below the next bucket's first is at most one less. */
		uint64_t le_ns = hist_bucket_low(last + 1) - 1;
		LCR_ASSERT(le_ns >= prom_bounds_ns[b]);
		/* In seconds, every digit of the ns written (a float could round it up). */
		char le[32];
		int w = snprintf(le, sizeof(le), "%llu.%09llu",
				 (unsigned long long)(le_ns / 1000000000u),
				 (unsigned long long)(le_ns % 1000000000u));
		while (w > 0 && le[w - 1] == '0')
			le[--w] = '\0';
		LCR_PUT("%s_bucket{%s,le=\"%s\"} %llu\n", name, labels, le,
			(unsigned long long)seen);
	}
	LCR_PUT("%s_bucket{%s,le=\"+Inf\"} %llu\n%s_sum{%s} %.9f\n%s_count{%s} %llu\n", name,
		labels, (unsigned long long)h->count, name, labels, (double)h->sum_ns / 1e9, name,
		labels, (unsigned long long)h->count);
	return (int)o;
}

/* Why the core dropped a message, as a label, and its counter. */
static const struct {
	const char *reason;
	size_t offset;
} prom_core_drops[] = {
	{ "malformed", offsetof(struct lcr_core_status, dropped_msgs) },
	{ "stale", offsetof(struct lcr_core_status, stale_msgs) },
	{ "far_term", offsetof(struct lcr_core_status, far_terms) },
	{ "respond_queue_full", offsetof(struct lcr_core_status, responses_dropped) },
	/* A follower answered Conflict below what it had acknowledged as
	 * durable: its disk lost entries (wiped, replaced); not replicated to
	 * unless allow_log_reversion. */
	{ "log_reversion", offsetof(struct lcr_core_status, reversions) },
};

/* The transport's drops (net.c's counters), by reason. */
static const struct {
	const char *reason;
	size_t offset;
} prom_net_drops[] = {
	{ "unknown_group_or_sender", offsetof(struct lcr_net_stats, dropped) },
	{ "late_completion", offsetof(struct lcr_net_stats, late) },
	{ "ttl_expired", offsetof(struct lcr_net_stats, ttl_expired) },
	{ "sequential_superseded", offsetof(struct lcr_net_stats, seq_dropped) },
	{ "sequential_queue_full", offsetof(struct lcr_net_stats, seq_full) },
	{ "result_queue_full", offsetof(struct lcr_net_stats, events_full) },
};

static uint64_t field_u64(const void *s, size_t offset)
{
	uint64_t v;
	memcpy(&v, (const char *)s + offset, sizeof(v));
	return v;
}

/* The families with labels of their own: role, followers, drops. */
static int prom_group_special(struct lcore *lc, char *buf, size_t len)
{
	static const uint32_t roles[] = { LCR_ROLE_FOLLOWER, LCR_ROLE_CANDIDATE, LCR_ROLE_LEADER,
					  LCR_ROLE_LEARNER, LCR_ROLE_STOPPED };
	uint32_t node = lc->node->cfg.id;
	struct prom_group pg;
	size_t o = 0;
	int k;

	if ((k = prom_head(buf, len, "lcraft_role", "gauge",
			   "1 for the replica's current role, 0 for the others.")) < 0)
		return k;
	o += (size_t)k;
	for (uint32_t i = 0; i < lc->n_groups; i++) {
		prom_read(lc->groups[i], &pg);
		for (size_t r = 0; r < sizeof(roles) / sizeof(roles[0]); r++)
			LCR_PUT("lcraft_role{node=\"%u\",group=\"%u\",role=\"%s\"} %d\n", node,
				lc->groups[i]->id, role_name(roles[r]), pg.st.role == roles[r]);
	}
	/* The leader's view of each follower (none on other replicas). */
	static const char *const peer_fam[2][2] = {
		{ "lcraft_follower_matched_index",
		  "Leader only: the last index known to match on each follower." },
		{ "lcraft_follower_lag_entries",
		  "Leader only: entries each follower lacks (last index - matched index)." },
	};
	for (int f = 0; f < 2; f++) {
		if ((k = prom_head(buf + o, len > o ? len - o : 0, peer_fam[f][0], "gauge",
				   peer_fam[f][1])) < 0)
			return k;
		o += (size_t)k;
		for (uint32_t i = 0; i < lc->n_groups; i++) {
			prom_read(lc->groups[i], &pg);
			const struct lcr_core_status *st = &pg.st;
			for (uint32_t p = 0; st->role == LCR_ROLE_LEADER && p < st->n_nodes; p++) {
				if (st->nodes[p] == st->id)
					continue;
				uint64_t m = st->matching[p].index;
				uint64_t v = f == 0		  ? m
					     : st->last.index > m ? st->last.index - m
								  : 0;
				LCR_PUT("%s{node=\"%u\",group=\"%u\",peer=\"%u\"} %llu\n",
					peer_fam[f][0], node, lc->groups[i]->id, st->nodes[p],
					(unsigned long long)v);
			}
		}
	}
	if ((k = prom_head(buf + o, len > o ? len - o : 0, "lcraft_raft_messages_dropped_total",
			   "counter", "Raft messages the core dropped, by reason.")) < 0)
		return k;
	o += (size_t)k;
	for (uint32_t i = 0; i < lc->n_groups; i++) {
		prom_read(lc->groups[i], &pg);
		for (size_t r = 0; r < sizeof(prom_core_drops) / sizeof(prom_core_drops[0]); r++)
			LCR_PUT("lcraft_raft_messages_dropped_total{node=\"%u\",group=\"%u\","
				"reason=\"%s\"} %llu\n",
				node, lc->groups[i]->id, prom_core_drops[r].reason,
				(unsigned long long)field_u64(&pg.st, prom_core_drops[r].offset));
	}
	return (int)o;
}

/* The lcore's own: its loop and its transport. */
static int prom_lcore(struct lcore *lc, char *buf, size_t len)
{
	uint32_t node = lc->node->cfg.id;
	struct lcr_net_stats ns;
	size_t o = 0;
	int k;

	lcr_net_stats(lc->net, &ns);
	if ((k = prom_head(buf, len, "lcraft_lcore_iterations_total", "counter",
			   "Loop iterations of the lcore.")) < 0)
		return k;
	o += (size_t)k;
	LCR_PUT("lcraft_lcore_iterations_total{node=\"%u\",lcore=\"%u\"} %llu\n", node, lc->index,
		(unsigned long long)lc->iterations);
	if ((k = prom_head(buf + o, len > o ? len - o : 0, "lcraft_lcore_sleeps_total", "counter",
			   "Times the lcore slept, having nothing to do.")) < 0)
		return k;
	o += (size_t)k;
	LCR_PUT("lcraft_lcore_sleeps_total{node=\"%u\",lcore=\"%u\"} %llu\n", node, lc->index,
		(unsigned long long)lc->sleeps);
	if ((k = prom_head(
		     buf + o, len > o ? len - o : 0, "lcraft_transport_dropped_total", "counter",
		     "Messages and results the lcore's network layer dropped, by reason.")) < 0)
		return k;
	o += (size_t)k;
	for (size_t r = 0; r < sizeof(prom_net_drops) / sizeof(prom_net_drops[0]); r++)
		LCR_PUT("lcraft_transport_dropped_total{node=\"%u\",lcore=\"%u\",reason=\"%s\"} "
			"%llu\n",
			node, lc->index, prom_net_drops[r].reason,
			(unsigned long long)field_u64(&ns, prom_net_drops[r].offset));
	if ((k = prom_head(buf + o, len > o ? len - o : 0, "lcraft_transport_call_errors_total",
			   "counter", "Transport calls that ended with an error, by kind.")) < 0)
		return k;
	o += (size_t)k;
	for (uint32_t e = 1; e <= LCR_NET_CLOSED; e++)
		LCR_PUT("lcraft_transport_call_errors_total{node=\"%u\",lcore=\"%u\",kind=\"%s\"} "
			"%llu\n",
			node, lc->index, lcr_net_err_name(e), (unsigned long long)ns.errors[e]);
	return (int)o;
}

int lcr_node_metrics_prom(struct lcr_node *n, uint32_t lcore, char *buf, size_t len)
{
	if (!n || !buf || lcore >= n->n_lcores)
		return -EINVAL;
	struct lcore *lc = &n->lcores[lcore];
	if (atomic_load(&lc->looping) && lcr_rt_this_lcore() != lc)
		return -EPERM; /* its groups change under us: ask it (lcr_node_post) */
	uint32_t node = n->cfg.id;
	struct prom_group pg;
	char labels[48];
	size_t o = 0;
	int k;

	if ((k = prom_lcore(lc, buf, len)) < 0)
		return k;
	o += (size_t)k;
	if ((k = prom_group_special(lc, buf + o, len > o ? len - o : 0)) < 0)
		return k;
	o += (size_t)k;
	for (size_t f = 0; f < sizeof(prom_families) / sizeof(prom_families[0]); f++) {
		const struct prom_family *pf = &prom_families[f];
		if ((k = prom_head(buf + o, len > o ? len - o : 0, pf->name, pf->type, pf->help)) <
		    0)
			return k;
		o += (size_t)k;
		for (uint32_t i = 0; i < lc->n_groups; i++) {
			struct lcr_group *g = lc->groups[i];
			prom_read(g, &pg);
			LCR_PUT("%s{node=\"%u\",group=\"%u\"} %llu\n", pf->name, node, g->id,
				(unsigned long long)prom_value(g, &pg, pf->field));
		}
	}
	/* The latencies: each commit (proposal to applied), each batch's write and sync. */
	static const char *const hist_fam[2][2] = {
		{ "lcraft_commit_latency_seconds",
		  "From a proposal on this replica to its entry applied here." },
		{ "lcraft_log_write_latency_seconds",
		  "Each batch's write to the log, with its fdatasync under durability fsync." },
	};
	for (int h = 0; h < 2; h++) {
		if ((k = prom_head(buf + o, len > o ? len - o : 0, hist_fam[h][0], "histogram",
				   hist_fam[h][1])) < 0)
			return k;
		o += (size_t)k;
		for (uint32_t i = 0; i < lc->n_groups; i++) {
			struct lcr_group *g = lc->groups[i];
			snprintf(labels, sizeof(labels), "node=\"%u\",group=\"%u\"", node, g->id);
			k = prom_hist(buf + o, len > o ? len - o : 0, hist_fam[h][0], labels,
				      h == 0 ? &g->commit_lat : lcr_log_write_latency(g->log));
			if (k < 0)
				return k;
			o += (size_t)k;
		}
	}
	return o < len ? (int)o : -ENOSPC;
}

/* ---- DPDK telemetry ----------------------------------------------------------------- */

/* A telemetry parameter: a decimal number below 2^32, nothing else. */
static bool tel_number(const char *p, uint32_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	for (; p[i] >= '0' && p[i] <= '9' && i < 10; i++)
		v = v * 10 + (uint64_t)(p[i] - '0');
	if (i == 0 || p[i] || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static int tel_groups(void *ctx, const char *params, char *buf, size_t len);

static int tel_node(void *ctx, const char *params, char *buf, size_t len)
{
	struct lcr_node *n = ctx;
	size_t o = 0;
	/* The groups, counted by the lcores that own them. */
	int w = tel_groups(ctx, params, buf, len);
	if (w < 0)
		return w;
	uint32_t groups = w > 2;
	for (int i = 0; i < w; i++)
		groups += buf[i] == ',';
	LCR_PUT("{\"node\":%u,\"lcores\":%u,\"groups\":%u}", n->cfg.id, n->n_lcores, groups);
	return o < len ? (int)o : -ENOSPC;
}

static int tel_lcore(void *ctx, const char *params, char *buf, size_t len)
{
	uint32_t i;
	if (!tel_number(params, &i))
		return -EINVAL;
	return lcr_rt_metrics_part(ctx, i, LCR_RT_M_LCORE, buf, len);
}

static int tel_group(void *ctx, const char *params, char *buf, size_t len)
{
	struct lcr_node *n = ctx;
	uint32_t id;
	if (!tel_number(params, &id) || id == 0 || id >= LCR_RT_M_IDS)
		return -EINVAL;
	return lcr_rt_metrics_part(n, lcr_group_lcore(n, id), id, buf, len);
}

static int tel_groups(void *ctx, const char *params, char *buf, size_t len)
{
	struct lcr_node *n = ctx;
	size_t o = 0;
	(void)params;
	/* One array of every lcore's: their parts are "[a,b]", joined. */
	LCR_PUT("[");
	for (uint32_t i = 0; i < n->n_lcores; i++) {
		int w = lcr_rt_metrics_part(n, i, LCR_RT_M_IDS, buf + o, len > o ? len - o : 0);
		if (w < 0)
			return w;
		if (w > 2) { /* not "[]": drop its brackets, join with a comma */
			memmove(buf + o, buf + o + 1, (size_t)w - 2);
			o += (size_t)w - 2;
			LCR_PUT(",");
		}
	}
	if (o > 1 && buf[o - 1] == ',')
		o--;
	LCR_PUT("]");
	return o < len ? (int)o : -ENOSPC;
}

int lcr_rt_telemetry_open(struct lcr_node *n)
{
	static const struct {
		const char *cmd, *help;
		lcr_dpdk_tel_fn fn;
	} cmds[] = {
		{ "/lcraft/node", "lcraft: node id, lcores, groups. No parameters", tel_node },
		{ "/lcraft/lcore",
		  "lcraft: an lcore's loop and transport (network, UDP, DPDK) counters. "
		  "Parameters: int lcore",
		  tel_lcore },
		{ "/lcraft/group",
		  "lcraft: a group's role, indexes, replication, storage, latency. "
		  "Parameters: int group id",
		  tel_group },
		{ "/lcraft/groups", "lcraft: the ids of the node's groups. No parameters",
		  tel_groups },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int rc = lcr_dpdk_telemetry_set(cmds[i].cmd, cmds[i].help, cmds[i].fn, n);
		if (rc < 0) {
			lcr_dpdk_telemetry_clear(n);
			return rc;
		}
	}
	return 0;
}

void lcr_rt_telemetry_close(struct lcr_node *n)
{
	lcr_dpdk_telemetry_clear(n);
}
