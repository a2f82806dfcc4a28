/* SPDX-License-Identifier: MIT */
/*
 * The same three-node flow as test_cluster.c (elect, 3000 commits, failover
 * within two election timeouts, restart and catch-up), but with the
 * application's own transport plugged in through lcr_node_config.transport:
 * an in-memory one between the threads of this process that implements only
 * what the network contract requires (append_entries, vote, respond, poll;
 * plus wait and close to live in the lcore loop). Replication then runs on
 * the sequential default of stream_append and elections on the default
 * pre_vote, end to end, with real io_uring storage; a follower's read fails
 * at once with -ENOTSUP through the default read_index.
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

#include "cluster_harness.h"
#include "net.h"

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
	struct mem_call calls[CH_NODES + 1];
	uint64_t now; /* the lcore loop's clock, from poll(): the node's TTLs run on it */
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mem *registry[CH_NODES + 1]; /* running nodes, by id */

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
	struct mem *t = to <= CH_NODES ? registry[to] : NULL;
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
			struct mem_call *c = &t->calls[x->m.from <= CH_NODES ? x->m.from : 0];
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
	if (env->self > CH_NODES || registry[env->self]) {
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

static struct ch_cluster cl;

/* Every peer through the in-memory transport; elections through the default pre_vote too. */
static void in_memory(struct lcr_node_config *c, uint32_t id)
{
	(void)id;
	c->core.enable_pre_vote = true;
	for (uint32_t i = 0; i < CH_NODES; i++)
		snprintf(c->peers[i].host, sizeof(c->peers[i].host), "mem");
	c->transport = &mem_factory;
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
	struct ch_batch *b = calloc(1, sizeof(*b));
	char *m = malloc(1 << 16);
	(void)state;

	uint32_t l = ch_start_cluster(&cl);
	uint64_t took_ns = ch_commit(&cl, l, b, 0, 3000, 5000);
	print_message("3000 proposals committed in %.1f ms\n", (double)took_ns / 1e6);

	/* Replication went through the sequential default on append_entries. */
	assert_true(lcr_node_metrics_json(cl.rep[l].node, m, 1 << 16) > 0);
	assert_non_null(strstr(m, "\"transport\":\"mem\""));
	uint64_t seq = metric(m, "defaults", "stream_append");
	print_message("leader %u: %llu AppendEntries by the sequential default\n", l,
		      (unsigned long long)seq);
	assert_true(seq >= 20); /* 3000 entries, at most 300 a request, two followers */
	assert_true(metric(m, "calls", "append_entries") == seq);
	assert_int_equal(metric(m, "calls", "stream_append"), 0);

	/* The leader goes; a new one within two election timeouts. */
	uint32_t l2 = ch_fail_leader(&cl, l);
	/* Its election went through the default pre_vote (synthesized grants). */
	assert_true(lcr_node_metrics_json(cl.rep[l2].node, m, 1 << 16) > 0);
	assert_true(metric(m, "defaults", "pre_vote") >= 1);

	ch_commit(&cl, l2, b, 3000, 1000, 5000);

	/* The old leader restarts from its disk and catches up (the new leader
	 * backed off from it while it was gone). */
	ch_start(&cl, l);
	ch_commit(&cl, l2, b, 4000, 10, 10000);

	/* No read_index op: a follower's read fails at once, -ENOTSUP (the
	 * default answers for the leader), not at its timeout. */
	uint32_t f = l2 % CH_NODES + 1;
	struct lcr_cq *cq;
	struct lcr_req *done;
	struct lcr_req rd = { .op = LCR_REQ_READ, .group = CH_GROUP, .policy = LCR_READ_INDEX };
	assert_int_equal(lcr_cq_open(cl.rep[f].node, 4, &cq), 0);
	uint64_t t0 = ch_now_ns();
	assert_int_equal(lcr_submit(cq, &rd), 0);
	assert_int_equal(lcr_cq_wait(cq, &done, 1, 5000000000ull), 1);
	assert_int_equal(rd.err, -ENOTSUP);
	assert_true(ch_now_ns() - t0 < 100000000ull);
	assert_true(lcr_node_metrics_json(cl.rep[f].node, m, 1 << 16) > 0);
	assert_true(metric(m, "defaults", "read_index") >= 1);

	assert_true(lcr_node_metrics_json(cl.rep[l2].node, m, 1 << 16) > 0);
	print_message("%s\n", m);
	ch_stop_all(&cl);
	lcr_cq_close(cq);
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
	ch_config(&cl, &c, 1, d, sizeof(d));
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
	if (ch_init(&cl, "lcraft-own-transport", in_memory) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_transport_missing_vote_refused),
		cmocka_unit_test(test_own_transport_elect_replicate_failover_catchup),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	ch_fini(&cl);
	return rc;
}
