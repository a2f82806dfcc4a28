/* SPDX-License-Identifier: MIT */
/*
 * The same three-node flow as test_cluster.c (elect, 3000 commits, failover
 * within two election timeouts, restart and catch-up), but with the
 * application's own transport plugged in through lcr_node_config.transport:
 * an in-memory one between the threads of this process that implements only
 * what the network contract requires (append_entries, vote, respond, poll;
 * plus wait and close to live in the lcore loop). Replication then runs on
 * the sequential default of stream_append and elections on the default
 * pre_vote, end to end, with real io_uring storage.
 *
 * The transport checks the sequential contract itself: a new AppendEntries
 * to a target never starts while the previous one is unanswered and younger
 * than its hard TTL.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lcraft.h"
#include "net.h"

#define NODES		3
#define GROUP		1
#define ELECTION_MAX_MS 300

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the application's transport: messages between threads, in memory ------- */

struct mem_msg {
	struct mem_msg *next;
	uint32_t group;
	bool reply;
	struct lcr_msg m; /* AppendEntries: entries and payload follow this struct */
};

/* The AppendEntries call in flight to one target, as this transport sees it. */
struct mem_call {
	bool answered;
	uint64_t stream_id, send_seq;
	uint64_t started_ns, hard_ttl_ns;
};

struct mem {
	struct lcr_transport base;
	struct lcr_net *net;
	uint32_t self;
	int efd; /* written when the inbox gets a message */
	pthread_mutex_t mu;
	struct mem_msg *head, *tail; /* inbox */
	struct mem_call calls[NODES + 1];
	uint64_t now; /* the lcore loop's clock, from poll(): the node's TTLs run on it */
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mem *registry[NODES + 1]; /* running nodes, by id */

static struct {
	_Atomic uint64_t append_calls, vote_calls, responds, unreachable, delivered;
	_Atomic uint64_t overlaps; /* a new AppendEntries while one was in flight */
} mstats;

/* Copy a message (and the entries of an AppendEntries) into the inbox of `to`. */
static bool mem_post(uint32_t to, uint32_t group, const struct lcr_msg *m, bool reply)
{
	size_t size = sizeof(struct mem_msg), payload = 0;
	uint32_t n = m->type == LCR_MSG_APPEND_REQ ? m->append_req.n_entries : 0;

	for (uint32_t i = 0; i < n; i++)
		payload += m->append_req.entries[i].len;
	size += (size_t)n * sizeof(struct lcr_entry) + payload;
	pthread_mutex_lock(&registry_mu);
	struct mem *t = to <= NODES ? registry[to] : NULL;
	if (!t) {
		pthread_mutex_unlock(&registry_mu);
		return false;
	}
	struct mem_msg *x = malloc(size);
	assert_non_null(x);
	x->next = NULL;
	x->group = group;
	x->reply = reply;
	x->m = *m;
	if (n) {
		struct lcr_entry *e = (struct lcr_entry *)(x + 1);
		uint8_t *p = (uint8_t *)(e + n);
		for (uint32_t i = 0; i < n; i++) {
			e[i] = m->append_req.entries[i];
			memcpy(p, e[i].data, e[i].len);
			e[i].data = p;
			p += e[i].len;
		}
		x->m.append_req.entries = e;
	}
	pthread_mutex_lock(&t->mu);
	if (t->tail)
		t->tail->next = x;
	else
		t->head = x;
	t->tail = x;
	pthread_mutex_unlock(&t->mu);
	uint64_t one = 1;
	if (write(t->efd, &one, sizeof(one)) < 0)
		perror("eventfd");
	pthread_mutex_unlock(&registry_mu);
	return true;
}

static void mem_append_entries(struct lcr_transport *tp, const struct lcr_net_call *call,
			       const struct lcr_msg *req, const struct lcr_net_opts *opt)
{
	struct mem *t = (struct mem *)tp;
	struct mem_call *c = &t->calls[call->target];
	uint64_t now = t->now;

	atomic_fetch_add(&mstats.append_calls, 1);
	if (c->started_ns && !c->answered && now < c->started_ns + c->hard_ttl_ns)
		atomic_fetch_add(&mstats.overlaps, 1);
	c->answered = false;
	c->stream_id = req->append_req.stream_id;
	c->send_seq = req->append_req.send_seq;
	c->started_ns = now;
	c->hard_ttl_ns = opt->hard_ttl_ns;
	if (!mem_post(call->target, call->group, req, false)) {
		/* Reported from inside the op: the node holds it for its loop. */
		c->answered = true;
		atomic_fetch_add(&mstats.unreachable, 1);
		lcr_net_fail(t->net, call, LCR_NET_UNREACHABLE, "mem: node not running");
	}
}

static void mem_vote(struct lcr_transport *tp, const struct lcr_net_call *call,
		     const struct lcr_msg *req, const struct lcr_net_opts *opt)
{
	struct mem *t = (struct mem *)tp;
	(void)opt;
	atomic_fetch_add(&mstats.vote_calls, 1);
	if (!mem_post(call->target, call->group, req, false)) {
		atomic_fetch_add(&mstats.unreachable, 1);
		lcr_net_fail(t->net, call, LCR_NET_UNREACHABLE, "mem: node not running");
	}
}

static void mem_respond(struct lcr_transport *tp, uint32_t group, const struct lcr_msg *resp)
{
	(void)tp;
	atomic_fetch_add(&mstats.responds, 1);
	mem_post(resp->to, group, resp, true); /* a stopped requester: lost, like a datagram */
}

static bool mem_poll(struct lcr_transport *tp, uint64_t now)
{
	struct mem *t = (struct mem *)tp;

	t->now = now;
	pthread_mutex_lock(&t->mu);
	struct mem_msg *x = t->head;
	t->head = t->tail = NULL;
	pthread_mutex_unlock(&t->mu);
	bool work = x != NULL;
	while (x) {
		struct mem_msg *next = x->next;
		atomic_fetch_add(&mstats.delivered, 1);
		if (x->reply) {
			const struct lcr_append_resp *r = &x->m.append_resp;
			struct mem_call *c = &t->calls[x->m.from <= NODES ? x->m.from : 0];
			if (x->m.type == LCR_MSG_APPEND_RESP && r->stream_id == c->stream_id &&
			    r->send_seq == c->send_seq)
				c->answered = true;
			lcr_net_reply(t->net, x->group, &x->m);
		} else {
			lcr_net_deliver(t->net, x->group, &x->m);
		}
		free(x);
		x = next;
	}
	return work;
}

static int mem_wait(struct lcr_transport *tp, int fd, uint64_t timeout_ns)
{
	struct mem *t = (struct mem *)tp;
	struct pollfd p[2] = { { .fd = t->efd, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
	struct timespec ts = { .tv_sec = (time_t)(timeout_ns / 1000000000ull),
			       .tv_nsec = (long)(timeout_ns % 1000000000ull) };
	if (ppoll(p, fd >= 0 ? 2 : 1, &ts, NULL) < 0)
		return -errno;
	if (p[0].revents & POLLIN) {
		uint64_t v;
		if (read(t->efd, &v, sizeof(v)) < 0)
			return -errno;
	}
	return 0;
}

static void mem_close(struct lcr_transport *tp)
{
	struct mem *t = (struct mem *)tp;

	pthread_mutex_lock(&registry_mu);
	if (registry[t->self] == t)
		registry[t->self] = NULL;
	pthread_mutex_unlock(&registry_mu);
	for (struct mem_msg *x = t->head, *next; x; x = next) {
		next = x->next;
		free(x);
	}
	close(t->efd);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* Only the required ops of the contract, and what the lcore loop needs. */
static const struct lcr_net_ops mem_ops = {
	.name = "mem",
	.append_entries = mem_append_entries,
	.vote = mem_vote,
	.respond = mem_respond,
	.poll = mem_poll,
	.wait = mem_wait,
	.close = mem_close,
};

static int mem_open(void *ctx, const struct lcr_net_env *env, struct lcr_transport **out, char *why,
		    size_t why_len)
{
	const struct lcr_net_ops *ops = ctx;
	struct mem *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->base.ops = ops;
	t->net = env->net;
	t->self = env->self;
	t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&t->mu, NULL);
	pthread_mutex_lock(&registry_mu);
	if (env->self > NODES || registry[env->self]) {
		pthread_mutex_unlock(&registry_mu);
		snprintf(why, why_len, "mem: node %u is already running", env->self);
		close(t->efd);
		free(t);
		return -EEXIST;
	}
	registry[env->self] = t;
	pthread_mutex_unlock(&registry_mu);
	*out = &t->base;
	return 0;
}

static const struct lcr_net_factory mem_factory = { .name = "mem",
						    .open = mem_open,
						    .ctx = (void *)&mem_ops };

/* ---- the cluster ------------------------------------------------------------- */

struct sm {
	_Atomic uint64_t count; /* entries applied */
	_Atomic uint64_t hash;
	_Atomic uint32_t role, leader;
};

struct replica {
	struct lcr_node *node;
	struct lcr_group *group;
	struct sm sm;
	pthread_t thread;
	bool running;
};

static struct replica rep[NODES + 1]; /* 1-based */
static char dir[256];

static void sm_apply(void *ctx, const struct lcr_entry *e, void *out, uint32_t *rlen)
{
	struct sm *s = ctx;
	uint64_t h = atomic_load(&s->hash);
	for (uint32_t i = 0; i < e->len; i++)
		h = (h ^ ((const uint8_t *)e->data)[i]) * 1099511628211ull;
	h = (h ^ e->id.index) * 1099511628211ull;
	atomic_store(&s->hash, h);
	uint64_t c = atomic_fetch_add(&s->count, 1) + 1;
	memcpy(out, &c, 8);
	*rlen = 8;
}

static void sm_role(void *ctx, uint32_t role, uint32_t leader)
{
	struct sm *s = ctx;
	atomic_store(&s->role, role);
	atomic_store(&s->leader, leader);
}

static void *run_node(void *arg)
{
	struct replica *r = arg;
	lcr_node_run(r->node);
	return NULL;
}

static void config(struct lcr_node_config *c, uint32_t id, char *d, size_t dlen)
{
	lcr_node_config_default(c);
	c->id = id;
	c->cluster = 42;
	snprintf(d, dlen, "%s/n%u", dir, id);
	c->data_dir = d;
	c->n_peers = NODES;
	c->segment_bytes = 8u << 20;
	c->core.election_timeout_min_ms = 150;
	c->core.election_timeout_max_ms = ELECTION_MAX_MS;
	c->core.heartbeat_interval_ms = 50;
	/* Elections go through the default pre_vote too. */
	c->core.enable_pre_vote = true;
	for (uint32_t i = 0; i < NODES; i++) {
		c->peers[i].id = i + 1;
		snprintf(c->peers[i].host, sizeof(c->peers[i].host), "mem");
	}
	c->transport = &mem_factory;
}

static void start(uint32_t id)
{
	struct lcr_node_config c;
	char why[256], d[300];
	struct replica *r = &rep[id];

	config(&c, id, d, sizeof(d));
	memset(&r->sm, 0, sizeof(r->sm));
	int rc = lcr_node_open(&r->node, &c, why, sizeof(why));
	if (rc < 0)
		fail_msg("node %u: %s", id, why);
	struct lcr_sm_ops ops = { .apply = sm_apply, .role = sm_role };
	rc = lcr_group_open(r->node, GROUP, &ops, &r->sm, &r->group, why, sizeof(why));
	if (rc < 0)
		fail_msg("node %u group: %s", id, why);
	assert_int_equal(pthread_create(&r->thread, NULL, run_node, r), 0);
	r->running = true;
}

static void stop(uint32_t id)
{
	struct replica *r = &rep[id];
	lcr_node_stop(r->node);
	pthread_join(r->thread, NULL);
	lcr_node_close(r->node);
	r->node = NULL;
	r->running = false;
}

static uint32_t agreed_leader(void)
{
	uint32_t l = 0;
	for (uint32_t i = 1; i <= NODES; i++) {
		if (!rep[i].running)
			continue;
		uint32_t x = atomic_load(&rep[i].sm.leader);
		if (x == 0 || (l && x != l))
			return 0;
		l = x;
	}
	return l && rep[l].running && atomic_load(&rep[l].sm.role) == LCR_ROLE_LEADER ? l : 0;
}

static uint32_t wait_leader(uint64_t timeout_ms)
{
	uint64_t end = now_ns() + timeout_ms * 1000000ull;
	while (now_ns() < end) {
		uint32_t l = agreed_leader();
		if (l)
			return l;
		usleep(1000);
	}
	return 0;
}

struct batch {
	struct lcr_group *g;
	uint32_t first, n;
	_Atomic uint32_t ok, failed, answered;
	_Atomic int first_err;
};

static void proposed(void *ctx, int err, uint32_t leader, const void *res, uint32_t len)
{
	struct batch *b = ctx;
	(void)leader;
	(void)res;
	if (err == 0) {
		assert_int_equal(len, 8);
		atomic_fetch_add(&b->ok, 1);
	} else {
		int zero = 0;
		atomic_compare_exchange_strong(&b->first_err, &zero, err);
		atomic_fetch_add(&b->failed, 1);
	}
	atomic_fetch_add(&b->answered, 1);
}

static void propose_task(struct lcr_node *n, void *arg)
{
	struct batch *b = arg;
	(void)n;
	for (uint32_t i = 0; i < b->n; i++) {
		char buf[64];
		int len = snprintf(buf, sizeof(buf), "entry-%u", b->first + i);
		int rc = lcr_propose(b->g, buf, (uint32_t)len, proposed, b);
		if (rc < 0) {
			int zero = 0;
			atomic_compare_exchange_strong(&b->first_err, &zero, rc);
			atomic_fetch_add(&b->failed, 1);
			atomic_fetch_add(&b->answered, 1);
		}
	}
}

/* Propose n entries on the leader; a fresh leader without its lease says
 * -LCR_ENOLEASE until a follower acks (CheckQuorum): try again then. */
static void propose_on(uint32_t leader, struct batch *b, uint32_t first, uint32_t n)
{
	for (int attempt = 0;; attempt++) {
		memset(b, 0, sizeof(*b));
		b->g = rep[leader].group;
		b->first = first;
		b->n = n;
		assert_int_equal(lcr_node_post(rep[leader].node, 0, propose_task, b), 0);
		uint64_t end = now_ns() + 20000ull * 1000000;
		while (atomic_load(&b->answered) < n && now_ns() < end)
			usleep(1000);
		assert_int_equal(atomic_load(&b->answered), n);
		if (atomic_load(&b->ok) == 0 && atomic_load(&b->first_err) == -LCR_ENOLEASE &&
		    attempt < 100) {
			usleep(5000);
			continue;
		}
		break;
	}
	if (atomic_load(&b->ok) != n)
		print_message("on %u: %u ok, %u failed (first error %d)\n", leader,
			      atomic_load(&b->ok), atomic_load(&b->failed),
			      atomic_load(&b->first_err));
}

static void wait_converged(uint64_t count, uint64_t timeout_ms)
{
	uint64_t end = now_ns() + timeout_ms * 1000000ull;
	for (;;) {
		bool same = true, first = true;
		uint64_t h = 0;
		for (uint32_t i = 1; i <= NODES; i++) {
			if (!rep[i].running)
				continue;
			if (atomic_load(&rep[i].sm.count) != count) {
				same = false;
				break;
			}
			uint64_t x = atomic_load(&rep[i].sm.hash);
			if (!first && x != h)
				fail_msg("replica %u applied different entries", i);
			h = x;
			first = false;
		}
		if (same)
			return;
		if (now_ns() > end) {
			for (uint32_t i = 1; i <= NODES; i++)
				print_message("replica %u: applied %llu (want %llu)\n", i,
					      (unsigned long long)atomic_load(&rep[i].sm.count),
					      (unsigned long long)count);
			fail_msg("replicas did not converge");
		}
		usleep(2000);
	}
}

/* The number after `"key":` inside the object `"obj":{...}` of a metrics text. */
static uint64_t metric(const char *json, const char *obj, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":{", obj);
	const char *o = strstr(json, pat);
	if (!o)
		return 0;
	const char *end = strchr(o, '}');
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *k = strstr(o, pat);
	if (!k || (end && k > end))
		return 0;
	return strtoull(k + strlen(pat), NULL, 10);
}

static void test_own_transport_elect_replicate_failover_catchup(void **state)
{
	struct batch *b = calloc(1, sizeof(*b));
	char *m = malloc(1 << 16);
	(void)state;

	for (uint32_t i = 1; i <= NODES; i++)
		start(i);
	uint32_t l = wait_leader(5000);
	assert_true(l != 0);
	print_message("leader %u\n", l);

	uint64_t t0 = now_ns();
	propose_on(l, b, 0, 3000);
	uint64_t t1 = now_ns();
	assert_int_equal(atomic_load(&b->ok), 3000);
	print_message("3000 proposals committed in %.1f ms\n", (double)(t1 - t0) / 1e6);
	uint64_t applied = atomic_load(&rep[l].sm.count);
	wait_converged(applied, 5000);

	/* Replication went through the sequential default on append_entries. */
	assert_true(lcr_node_metrics_json(rep[l].node, m, 1 << 16) > 0);
	assert_non_null(strstr(m, "\"transport\":\"mem\""));
	uint64_t seq = metric(m, "defaults", "stream_append");
	print_message("leader %u: %llu AppendEntries by the sequential default\n", l,
		      (unsigned long long)seq);
	assert_true(seq >= 20); /* 3000 entries, at most 300 a request, two followers */
	assert_true(metric(m, "calls", "append_entries") == seq);
	assert_int_equal(metric(m, "calls", "stream_append"), 0);

	/* The leader goes; a new one within two election timeouts. */
	uint64_t stopped = now_ns();
	stop(l);
	uint32_t l2 = wait_leader(4000);
	uint64_t took_ms = (now_ns() - stopped) / 1000000;
	assert_true(l2 != 0 && l2 != l);
	print_message("new leader %u after %llu ms\n", l2, (unsigned long long)took_ms);
	assert_true(took_ms < 2 * ELECTION_MAX_MS + 100);
	/* Its election went through the default pre_vote (synthesized grants). */
	assert_true(lcr_node_metrics_json(rep[l2].node, m, 1 << 16) > 0);
	assert_true(metric(m, "defaults", "pre_vote") >= 1);

	propose_on(l2, b, 3000, 1000);
	assert_int_equal(atomic_load(&b->ok), 1000);
	applied = atomic_load(&rep[l2].sm.count);
	wait_converged(applied, 5000);

	/* The old leader restarts from its disk and catches up (the new leader
	 * backed off from it while it was gone). */
	start(l);
	propose_on(l2, b, 4000, 10);
	assert_int_equal(atomic_load(&b->ok), 10);
	applied = atomic_load(&rep[l2].sm.count);
	wait_converged(applied, 10000);

	assert_true(lcr_node_metrics_json(rep[l2].node, m, 1 << 16) > 0);
	print_message("%s\n", m);
	for (uint32_t i = 1; i <= NODES; i++)
		if (rep[i].running)
			stop(i);
	print_message("transport: %llu append_entries, %llu votes, %llu responds, %llu "
		      "unreachable, %llu delivered, %llu overlaps\n",
		      (unsigned long long)mstats.append_calls,
		      (unsigned long long)mstats.vote_calls, (unsigned long long)mstats.responds,
		      (unsigned long long)mstats.unreachable, (unsigned long long)mstats.delivered,
		      (unsigned long long)mstats.overlaps);
	assert_true(mstats.vote_calls >= 2);
	assert_true(mstats.unreachable >= 1); /* calls to the stopped node */
	assert_int_equal(mstats.overlaps, 0);
	free(m);
	free(b);
}

/* A transport without a required op is refused when the node opens, with the reason. */
static void test_own_transport_missing_vote_refused(void **state)
{
	static struct lcr_net_ops no_vote;
	struct lcr_net_factory f = mem_factory;
	struct lcr_node_config c;
	struct lcr_node *n = NULL;
	char why[256], d[300];
	(void)state;

	no_vote = mem_ops;
	no_vote.vote = NULL;
	f.ctx = &no_vote;
	config(&c, 1, d, sizeof(d));
	c.transport = &f;
	int rc = lcr_node_open(&n, &c, why, sizeof(why));
	print_message("%s\n", why);
	assert_int_equal(rc, -EINVAL);
	assert_null(n);
	assert_non_null(strstr(why, "vote is required"));
	assert_null(registry[1]); /* the refused transport was closed */
}

int main(void)
{
	const char *base = getenv("LCR_TEST_DIR") ? getenv("LCR_TEST_DIR") : "/var/tmp";
	snprintf(dir, sizeof(dir), "%s/lcraft-own-transport-XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror(dir);
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_transport_missing_vote_refused),
		cmocka_unit_test(test_own_transport_elect_replicate_failover_catchup),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return rc;
}
