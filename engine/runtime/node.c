/* SPDX-License-Identifier: MIT */
/*
 * The node: its config checked, each lcore's ring, buffers and transport
 * opened, the lcores run and stopped, everything closed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "runtime_int.h"

void lcr_node_config_default(struct lcr_node_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->lcores = 1;
	cfg->mtu = 1500;
	cfg->durability = LCR_DURABILITY_FSYNC;
	cfg->io_mode = LCR_IO_DIRECT_DSYNC;
	cfg->segment_bytes = 64ull << 20;
	lcr_core_config_default(&cfg->core, 1);
}

void *lcr_rt_zalloc(struct lcr_node *n, size_t size)
{
	return lcr_allocator_zalloc(&n->cfg.alloc, size);
}

void lcr_rt_free(struct lcr_node *n, void *p)
{
	lcr_allocator_free(&n->cfg.alloc, p);
}

static const struct lcr_peer_addr *peer_addr(const struct lcr_node_config *c, uint32_t id)
{
	for (uint32_t i = 0; i < c->n_peers; i++)
		if (c->peers[i].id == id)
			return &c->peers[i];
	return NULL;
}

static int check_config(const struct lcr_node_config *c, char *why, size_t len)
{
	if (c->id == 0 || !peer_addr(c, c->id)) {
		snprintf(why, len, "node id %u is not among the %u peers", c->id, c->n_peers);
		return -EINVAL;
	}
	if (c->lcores < 1 || c->lcores > LCORES_MAX) {
		snprintf(why, len, "lcores (%u) must be in 1..%d", c->lcores, LCORES_MAX);
		return -EINVAL;
	}
	if (c->n_cores != 0 && c->n_cores != c->lcores) {
		snprintf(why, len, "%u cores for %u lcores: name one core per lcore", c->n_cores,
			 c->lcores);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < c->n_cores; i++)
		if (c->cores[i] >= CPU_SETSIZE) {
			snprintf(why, len, "core %u is past %d", c->cores[i], CPU_SETSIZE - 1);
			return -EINVAL;
		}
	if (!c->data_dir || !*c->data_dir) {
		snprintf(why, len, "data_dir is required");
		return -EINVAL;
	}
	if (c->n_peers < 1 || c->n_peers > LCR_PEERS_MAX) {
		snprintf(why, len, "%u peers (1..%d)", c->n_peers, LCR_PEERS_MAX);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < c->n_peers; i++) {
		if (c->peers[i].id == 0) {
			snprintf(why, len, "peer %u has id 0 (reserved)", i + 1);
			return -EINVAL;
		}
		for (uint32_t k = 0; k < i; k++)
			if (c->peers[k].id == c->peers[i].id) {
				snprintf(why, len, "node %u is listed twice", c->peers[i].id);
				return -EINVAL;
			}
		if ((uint32_t)c->peers[i].port + c->lcores > 65536) {
			snprintf(why, len, "node %u: port %u + %u lcores is past 65535",
				 c->peers[i].id, c->peers[i].port, c->lcores);
			return -EINVAL;
		}
	}
	return 0;
}

_Static_assert(LCR_NODE_AUTH_KEY_BYTES == LCR_AUTH_KEY_BYTES, "lcraft.h's key is auth.h's");

/* The options of the built-in UDP transport, from the node's config. */
static void udp_setup(struct lcr_node *n)
{
	const struct lcr_node_config *c = &n->cfg;
	struct lcr_udp_config *u = &n->udp;

	lcr_udp_config_default(u);
	/* Peers check that a datagram comes from the address configured for its
	 * sender, so by default send from exactly that address: bound to
	 * 0.0.0.0, a host with several addresses may send from another one. */
	u->bind_host = c->bind_host;
	if (!u->bind_host) {
		for (uint32_t i = 0; i < c->n_peers; i++)
			if (c->peers[i].id == c->id)
				u->bind_host = c->peers[i].host;
	}
	u->mtu = c->mtu;
	u->busy_poll = c->busy_poll;
	u->fault_loss_ppm = c->fault_loss_ppm;
	u->fault_dup_ppm = c->fault_dup_ppm;
	u->fault_reorder_ppm = c->fault_reorder_ppm;
	u->fault_delay_ns = c->fault_delay_ns;
	u->fault_jitter_ns = c->fault_jitter_ns;
	u->fault_seed = c->fault_seed;
	u->dpdk.enable = c->dpdk.enable;
	u->dpdk.eal = c->dpdk.eal;
	u->dpdk.routes = c->dpdk.routes;
	u->dpdk.neighbours = c->dpdk.neighbours;
	u->dpdk.memif_dir = c->dpdk.memif_dir;
	u->dpdk.rx_desc = c->dpdk.rx_desc;
	u->dpdk.tx_desc = c->dpdk.tx_desc;
	u->auth_key = c->auth_key;
	u->auth_alg = c->auth_alg;
	u->auth_boot = c->auth_boot;
	lcr_udp_factory(&n->udp_factory, u);
}

static int lcore_open(struct lcr_node *n, uint32_t index, char *why, size_t why_len)
{
	struct lcore *lc = &n->lcores[index];
	const struct lcr_node_config *c = &n->cfg;
	int rc;

	LCR_ASSERT(index < n->n_lcores);
	lc->index = index;
	lc->node = n;
	pthread_mutex_init(&lc->m_mu, NULL);
	pthread_cond_init(&lc->m_cv, NULL);
	lc->poll_fd = -1;
	lc->efd = -1;
	lc->epfd = -1;
	lc->ents = lcr_rt_zalloc(n, sizeof(*lc->ents) * ENTS_MAX);
	lc->cold = lcr_rt_zalloc(n, COLD_BYTES);
	lc->posts = lcr_rt_zalloc(n, sizeof(*lc->posts) * POST_MAX);
	if (!lc->ents || !lc->cold || !lc->posts) {
		snprintf(why, why_len, "lcore %u: out of memory", index);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < POST_MAX; i++)
		atomic_store(&lc->posts[i].seq, i);
	if ((rc = lcr_ring_init(&lc->ring, 512)) < 0) {
		snprintf(why, why_len, "lcore %u: io_uring: %s", index, strerror(-rc));
		return rc;
	}
	lc->efd = lcr_ring_eventfd(&lc->ring);
	/* The set an idle lcore sleeps on (its transport's socket joins it at
	 * the first sleep): made once, for the node's life, so that its number
	 * never changes under what joined it. */
	lc->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (lc->epfd < 0 || lc->efd < 0) {
		rc = lc->epfd < 0 ? -errno : lc->efd;
		snprintf(why, why_len, "lcore %u: %s: %s", index,
			 lc->epfd < 0 ? "epoll_create1" : "io_uring eventfd", strerror(-rc));
		return rc;
	}
	struct epoll_event eev = { .events = EPOLLIN, .data.fd = lc->efd };
	if (epoll_ctl(lc->epfd, EPOLL_CTL_ADD, lc->efd, &eev) < 0) {
		rc = -errno;
		snprintf(why, why_len, "lcore %u: epoll_ctl: %s", index, strerror(-rc));
		return rc;
	}

	/* The transport of this lcore: the application's, or UDP. */
	struct lcr_net_env env = { .self = c->id,
				   .cluster = c->cluster,
				   .lcore = index,
				   .n_lcores = n->n_lcores,
				   .n_peers = c->n_peers,
				   .peers = n->cfg.peers,
				   .alloc = c->alloc };
	struct lcr_net_config nc;
	lcr_net_config_default(&nc, c->id, c->core.heartbeat_interval_ms,
			       c->core.election_timeout_min_ms, c->core.inflight_max,
			       c->core.backoff_ms);
	nc.groups_max = GROUPS_MAX;
	nc.alloc = c->alloc;
	/* A group whose state machine has the snapshot hooks purges its log, so
	 * a lagging follower catches up only from a snapshot. Which groups open
	 * is known only later, so the built-in UDP transport (which has
	 * full_snapshot) always takes snapshots; an application's transport is
	 * not required to (its groups then never catch up past a purge). */
	nc.snapshots = c->transport == NULL;
	const struct lcr_net_factory *f = c->transport ? c->transport : &n->udp_factory;
	return lcr_net_open(&lc->net, f, &env, &nc, &lcr_rt_net_host, why, why_len);
}

/* Create `dir` and its missing parents (mkdir -p). */
static int mkdir_p(const char *dir, char *why, size_t why_len)
{
	char path[4096];
	if (!dir || !*dir || strlen(dir) >= sizeof(path)) {
		snprintf(why, why_len, "data_dir: %s", dir && *dir ? "too long" : "empty");
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != 0)
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			snprintf(why, why_len, "data_dir: cannot create %.3000s: %s", path,
				 strerror(errno));
			return -errno;
		}
		*p = c;
		if (c == 0)
			return 0;
	}
}

int lcr_node_open(struct lcr_node **out, const struct lcr_node_config *cfg, char *why,
		  size_t why_len)
{
	LCR_ASSERT(out != NULL);
	LCR_ASSERT(cfg != NULL);
	int rc = check_config(cfg, why, why_len);
	if (rc < 0)
		return rc;
	struct lcr_node *n = lcr_allocator_zalloc(&cfg->alloc, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->cfg = *cfg;
	n->n_lcores = cfg->lcores;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* lcr_group_wait's deadlines */
	pthread_cond_init(&n->wait_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&n->wait_mu, NULL);
	size_t dlen = strlen(cfg->data_dir) + 1;
	n->data_dir = lcr_rt_zalloc(n, dlen);
	if (!n->data_dir) {
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(n->data_dir, cfg->data_dir, dlen);
	n->cfg.data_dir = n->data_dir;
	rc = mkdir_p(cfg->data_dir, why, why_len);
	if (rc < 0)
		goto fail;
	udp_setup(n);
	n->lcores = lcr_allocator_aligned(&n->cfg.alloc, sizeof(*n->lcores) * n->n_lcores,
					  LCR_CACHE_LINE);
	if (!n->lcores) {
		rc = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < n->n_lcores; i++)
		if ((rc = lcore_open(n, i, why, why_len)) < 0)
			goto fail;
	if ((rc = lcr_rt_held_start(n)) < 0) {
		snprintf(why, why_len, "node %u: the held records' writer thread: %s", cfg->id,
			 strerror(-rc));
		goto fail;
	}
	*out = n;
	return 0;
fail:
	lcr_node_close(n);
	return rc;
}

int lcr_node_set_poll(struct lcr_node *n, uint32_t lcore, lcr_poll_fn poll, int fd, void *ctx)
{
	LCR_ASSERT(n != NULL);
	if (lcore >= n->n_lcores)
		return -EINVAL;
	n->lcores[lcore].poll = poll;
	n->lcores[lcore].poll_ctx = ctx;
	n->lcores[lcore].poll_fd = fd;
	return 0;
}

int lcr_node_run(struct lcr_node *n)
{
	/* From here each lcore's state is its thread's, even before the thread
	 * runs: a metrics request from elsewhere waits for it (metrics.c). */
	for (uint32_t i = 0; i < n->n_lcores; i++)
		atomic_store(&n->lcores[i].looping, true);
	/* DPDK's telemetry shows the metrics beside the ports' (the lcores
	 * render them from here on). */
	if (!n->cfg.transport && n->cfg.dpdk.enable) {
		int rc = lcr_rt_telemetry_open(n);
		if (rc < 0)
			fprintf(stderr,
				"lcraft: WARNING: node %u: DPDK telemetry: the /lcraft commands "
				"could "
				"not be registered (%s); the metrics are still in "
				"lcr_node_metrics_json()\n",
				n->cfg.id, strerror(-rc));
	}
	for (uint32_t i = 1; i < n->n_lcores; i++)
		if (pthread_create(&n->lcores[i].thread, NULL, lcr_rt_lcore_main, &n->lcores[i]) !=
		    0) {
			atomic_store(&n->stop, true);
			for (uint32_t k = 1; k < i; k++)
				pthread_join(n->lcores[k].thread, NULL);
			for (uint32_t k = 0; k < n->n_lcores; k++)
				atomic_store(&n->lcores[k].looping, false);
			return -EAGAIN;
		}
	lcr_rt_lcore_main(&n->lcores[0]);
	for (uint32_t i = 1; i < n->n_lcores; i++)
		pthread_join(n->lcores[i].thread, NULL);
	return 0;
}

void lcr_node_stop(struct lcr_node *n)
{
	atomic_store(&n->stop, true);
	/* Sleeping lcores notice at once (write() is async-signal-safe). */
	for (uint32_t i = 0; i < n->n_lcores; i++)
		lcr_rt_wake(&n->lcores[i]);
}

void lcr_node_close(struct lcr_node *n)
{
	if (!n)
		return;
	lcr_rt_telemetry_close(n); /* waits for a telemetry request under way */
	/* Tasks still in the rings run now, on this thread; posts are refused
	 * from here on. What they propose is answered -LCR_ESTOPPED below. */
	lcr_rt_drain_posts(n);
	/* Threads in lcr_group_wait() see the close and leave before the node goes. */
	pthread_mutex_lock(&n->wait_mu);
	pthread_cond_broadcast(&n->wait_cv);
	pthread_mutex_unlock(&n->wait_mu);
	while (atomic_load(&n->waiters) > 0) {
		pthread_mutex_lock(&n->wait_mu);
		pthread_cond_broadcast(&n->wait_cv);
		pthread_mutex_unlock(&n->wait_mu);
		sched_yield();
	}
	lcr_rt_held_stop(n); /* the records handed over are on disk before the groups go */
	for (uint32_t i = 0; n->lcores && i < n->n_lcores; i++) {
		struct lcore *lc = &n->lcores[i];
		/* Writes in flight finish before their buffers go. */
		for (uint32_t k = 0; k < lc->n_groups; k++)
			lcr_rt_group_close(n, lc->groups[k]);
		lcr_net_close(lc->net);
		if (lc->ring.depth)
			lcr_ring_exit(&lc->ring);
		if (lc->epfd >= 0)
			close(lc->epfd);
		lcr_rt_free(n, lc->ents);
		lcr_rt_free(n, lc->cold);
		lcr_rt_free(n, lc->posts);
		if (lc->node) {
			pthread_mutex_destroy(&lc->m_mu);
			pthread_cond_destroy(&lc->m_cv);
		}
	}
	lcr_allocator_free_aligned(&n->cfg.alloc, n->lcores);
	lcr_rt_free(n, n->data_dir);
	pthread_mutex_destroy(&n->wait_mu);
	pthread_cond_destroy(&n->wait_cv);
	struct lcr_allocator a = n->cfg.alloc;
	lcr_allocator_free(&a, n);
}
