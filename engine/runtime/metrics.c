/* SPDX-License-Identifier: MIT */
/*
 * Metrics as JSON. An lcore's counters and its groups' state change only on
 * its own thread, so each lcore renders its own part; another thread asks
 * and waits (lcr_node_metrics_json).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
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
		int k = lcr_net_client_metrics_json(g->ng, st.nodes[i], buf + o + 1,
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
	LCR_PUT("},\"proposed\":%llu,\"applied_entries\":%llu,\"cancelled\":%llu,\"refused\":%llu,"
		"\"elections\":%llu,\"dropped_msgs\":%llu,\"stale_msgs\":%llu,\"far_terms\":%llu,"
		"\"term_exhausted\":%llu,\"net_errors\":%llu,",
		(unsigned long long)g->proposed, (unsigned long long)g->applied,
		(unsigned long long)g->cancelled, (unsigned long long)g->refused,
		(unsigned long long)st.elections, (unsigned long long)st.dropped_msgs,
		(unsigned long long)st.stale_msgs, (unsigned long long)st.far_terms,
		(unsigned long long)st.term_exhausted, (unsigned long long)g->net_errors);
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
		"\"restored_bytes\":%llu,\"purge_errors\":%llu,\"installing\":%s,"
		"\"install_ms_last\":%.1f,\"install_iteration_max_us\":%.1f,\"sends_opened\":%llu,"
		"\"send_busy\":%llu,\"send_stale\":%llu},",
		sn->building ? "true" : "false", (double)sn->build_ns_last / 1e6,
		(double)sn->build_ns_max / 1e6, (unsigned long long)sn->bytes_last,
		(unsigned long long)sn->bytes_total, (double)sn->iter_max_ns / 1e3,
		(unsigned long long)sn->restored_bytes, (unsigned long long)sn->purge_errors,
		sn->inst.active ? "true" : "false", (double)sn->install_ns_last / 1e6,
		(double)sn->inst.iter_max_ns / 1e3, (unsigned long long)sn->sent_opened,
		(unsigned long long)sn->send_busy, (unsigned long long)sn->send_stale);
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
	int k = hist_json(buf + o, len > o ? len - o : 0, "write_latency",
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
