/* SPDX-License-Identifier: MIT */
/*
 * Membership changes in the node runtime: five peers configured, three voters
 * at the start (UDP loopback, one process). While a writer keeps proposing, the
 * leader adds node 4 as a learner, promotes it (through a joint config), and
 * removes a follower, which is no longer replicated to; a target naming a node
 * no config lists is refused. A restarted replica opens with the new membership
 * from its log, and again after a snapshot and a purge took those entries, from
 * its snapshot file. Node 5, added while stopped, catches up from a snapshot
 * whose membership it takes (no membership entry left in the log for it), and
 * keeps it across a restart. The metrics show the membership.
 *
 * Then a node no config of the cluster lists joins by the address its
 * membership entry carries, replaces node 1, and is reached again by a
 * replica restarted from its log.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_harness.h"

#define POLICY 1500 /* a snapshot every 1,500 applied entries ... */
#define KEEP   20   /* ... and the log purged up to 20 before it */

static struct ch_cluster cl;
static uint16_t base_port;

static void on_loopback(struct lcr_node_config *c, uint32_t id)
{
	(void)id;
	c->core.snapshot_logs_since_last = POLICY;
	c->core.max_in_snapshot_log_to_keep = KEEP;
	c->core.purge_batch_size = 1;
	/* Five peers, three of them voters: 4 and 5 are spares. */
	memset(&c->core.membership, 0, sizeof(c->core.membership));
	c->core.membership.n_configs = 1;
	c->core.membership.configs[0].n = 3;
	for (uint32_t i = 0; i < 3; i++)
		c->core.membership.configs[0].ids[i] = i + 1;
	ch_loopback(c, base_port);
}

static struct lcr_membership mship(const uint32_t *voters, uint32_t nv, const uint32_t *learners,
				   uint32_t nl)
{
	struct lcr_membership m;
	memset(&m, 0, sizeof(m));
	m.n_configs = 1;
	m.configs[0].n = nv;
	memcpy(m.configs[0].ids, voters, nv * sizeof(*voters));
	m.n_learners = nl;
	if (nl)
		memcpy(m.learners, learners, nl * sizeof(*learners));
	return m;
}

/* The same voters and learners, in any order. */
static bool has_all(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb)
{
	if (na != nb)
		return false;
	for (uint32_t i = 0; i < na; i++) {
		bool found = false;
		for (uint32_t k = 0; k < nb; k++)
			found |= a[i] == b[k];
		if (!found)
			return false;
	}
	return true;
}

static bool same(const struct lcr_membership *a, const struct lcr_membership *b)
{
	return a->n_configs == 1 && b->n_configs == 1 &&
	       has_all(a->configs[0].ids, a->configs[0].n, b->configs[0].ids, b->configs[0].n) &&
	       has_all(a->learners, a->n_learners, b->learners, b->n_learners);
}

/* ---- tasks on a replica's lcore ----------------------------------------------- */

struct on_lcore {
	struct lcr_group *g;
	const struct lcr_membership *target;
	/* lcr_group_change_membership: its return, its sentence, its answer. */
	int rc;
	char why[256];
	_Atomic int err;
	_Atomic bool answered;
	/* lcr_group_membership and the status. */
	struct lcr_membership m;
	struct lcr_log_id m_id;
	bool m_committed;
	struct lcr_core_status st;
	char metrics[1 << 16];
	_Atomic bool ran;
};

static void changed(void *ctx, int err, uint32_t leader)
{
	struct on_lcore *t = ctx;
	(void)leader;
	atomic_store(&t->err, err);
	atomic_store(&t->answered, true);
}

static void change_task(struct lcr_node *n, void *arg)
{
	struct on_lcore *t = arg;
	(void)n;
	t->rc = lcr_group_change_membership(t->g, t->target, t->why, sizeof(t->why), changed, t);
	atomic_store(&t->ran, true);
}

static void look_task(struct lcr_node *n, void *arg)
{
	struct on_lcore *t = arg;
	(void)n;
	lcr_group_membership(t->g, &t->m, &t->m_id, &t->m_committed);
	lcr_group_status(t->g, &t->st);
	int rc = lcr_group_metrics_json(t->g, t->metrics, sizeof(t->metrics));
	assert_true(rc > 0);
	atomic_store(&t->ran, true);
}

static struct on_lcore *run_on(uint32_t id, lcr_task_fn fn, const struct lcr_membership *target)
{
	static struct on_lcore t;
	memset(&t, 0, sizeof(t));
	t.g = cl.rep[id].group;
	t.target = target;
	assert_int_equal(lcr_node_post(cl.rep[id].node, 0, fn, &t), 0);
	for (int i = 0; i < 5000 && !atomic_load(&t.ran); i++)
		usleep(1000);
	assert_true(atomic_load(&t.ran));
	return &t;
}

/* Replica `id`'s membership, status and metrics, read on its lcore. */
static struct on_lcore *look(uint32_t id)
{
	return run_on(id, look_task, NULL);
}

/* The leader changes the membership to `target`; waits for the answer. */
static int change(uint32_t leader, const struct lcr_membership *target, char *why, size_t len)
{
	for (int attempt = 0;; attempt++) {
		struct on_lcore *t = run_on(leader, change_task, target);
		if (t->rc == -LCR_ENOLEASE && attempt < 100) {
			usleep(5000);
			continue;
		}
		size_t n = strnlen(t->why, sizeof(t->why));
		if (len > 0) {
			n = n < len ? n : len - 1;
			memcpy(why, t->why, n);
			why[n] = '\0';
		}
		if (t->rc < 0)
			return t->rc;
		for (int i = 0; i < 10000 && !atomic_load(&t->answered); i++)
			usleep(1000);
		assert_true(atomic_load(&t->answered));
		return atomic_load(&t->err);
	}
}

/* A number from replica `id`'s metrics ("key":n). */
static double metric(uint32_t id, const char *key)
{
	char pat[80];
	struct on_lcore *t = look(id);
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(t->metrics, pat);
	if (!p)
		fail_msg("no %s in replica %u's metrics", key, id);
	return strtod(p + strlen(pat), NULL);
}

/* ---- a writer that keeps proposing ---------------------------------------------- */

static _Atomic bool w_stop;
static _Atomic uint32_t w_leader;
static _Atomic uint64_t w_ok, w_failed;
static pthread_t w_thread;

static void w_proposed(void *ctx, int err, uint32_t leader, const void *res, uint32_t len)
{
	_Atomic uint32_t *left = ctx;
	(void)leader, (void)res, (void)len;
	atomic_fetch_add(err == 0 ? &w_ok : &w_failed, 1);
	atomic_fetch_sub(left, 1);
}

struct w_batch {
	struct lcr_group *g;
	uint32_t first;
	_Atomic uint32_t left;
};

static void w_task(struct lcr_node *n, void *arg)
{
	struct w_batch *b = arg;
	(void)n;
	for (uint32_t i = 0; i < 10; i++) {
		char buf[32];
		int len = snprintf(buf, sizeof(buf), "w-%u", b->first + i);
		if (lcr_propose(b->g, buf, (uint32_t)len, w_proposed, &b->left) < 0) {
			atomic_fetch_add(&w_failed, 1);
			atomic_fetch_sub(&b->left, 1);
		}
	}
}

static void *writer(void *arg)
{
	static struct w_batch b;
	(void)arg;
	for (uint32_t first = 0; !atomic_load(&w_stop); first += 10) {
		uint32_t l = atomic_load(&w_leader);
		b.g = cl.rep[l].group;
		b.first = first;
		atomic_store(&b.left, 10);
		if (lcr_node_post(cl.rep[l].node, 0, w_task, &b) < 0)
			break;
		for (int i = 0; i < 10000 && atomic_load(&b.left) > 0; i++)
			usleep(200);
		if (atomic_load(&b.left) > 0)
			break; /* unanswered: the test fails on w_ok below */
		usleep(20000); /* at most 500 entries/s: no snapshot before the restarts */
	}
	return NULL;
}

static void writer_start(uint32_t leader)
{
	atomic_store(&w_stop, false);
	atomic_store(&w_leader, leader);
	assert_int_equal(pthread_create(&w_thread, NULL, writer, NULL), 0);
}

static void writer_stop(void)
{
	atomic_store(&w_stop, true);
	pthread_join(w_thread, NULL);
}

/* ---- the test ------------------------------------------------------------------- */

/*
 * Replica `id` opens (not running yet) with `want` as its membership, from the
 * entry at `entry` in its log, or (entry 0) from its snapshot, whose last
 * index is then the membership's id.
 */
static void reopen_with(uint32_t id, const struct lcr_membership *want, uint64_t entry,
			const char *from)
{
	struct lcr_membership m;
	struct lcr_log_id mid;
	bool committed;

	ch_stop(&cl, id);
	ch_open(&cl, id);
	lcr_group_membership(cl.rep[id].group, &m, &mid, &committed);
	print_message("replica %u reopened: %u voters, %u learners, entry %llu (%s)\n", id,
		      m.configs[0].n, m.n_learners, (unsigned long long)mid.index, from);
	assert_true(same(&m, want));
	if (entry) {
		/* Effective from its entry; committed once the leader says so
		 * (the persisted commit hint may lag behind it). */
		assert_int_equal(mid.index, entry);
	} else {
		assert_true(committed); /* a snapshot holds only what committed */
		struct lcr_core_status st;
		lcr_group_status(cl.rep[id].group, &st);
		assert_true(st.snapshot.last.index > 0);
		assert_int_equal(mid.index, st.snapshot.last.index);
		assert_true(st.purged.index > 0);
	}
	ch_run(&cl, id);
}

static void test_membership_add_promote_remove_r5(void **state)
{
	struct ch_batch b;
	char why[256];
	(void)state;

	assert_int_equal(ch_init(&cl, "lcraft-membership", on_loopback), 0);
	cl.n_nodes = 5;
	cl.snapshots = true;
	uint32_t l = ch_start_cluster(&cl);
	ch_commit(&cl, l, &b, 0, 10, 5000);

	/* A node no config lists cannot be reached: refused, saying why. */
	const uint32_t v9[] = { 1, 2, 3 }, l9[] = { 9 };
	struct lcr_membership bad = mship(v9, 3, l9, 1);
	assert_int_equal(change(l, &bad, why, sizeof(why)), -EINVAL);
	print_message("node 9 refused: %s\n", why);
	assert_non_null(strstr(why, "node 9"));

	writer_start(l);
	/* Node 4 joins as a learner, then becomes a voter. */
	ch_start(&cl, 4);
	const uint32_t v123[] = { 1, 2, 3 }, l4[] = { 4 };
	struct lcr_membership m = mship(v123, 3, l4, 1);
	assert_int_equal(change(l, &m, why, sizeof(why)), 0);
	const uint32_t v1234[] = { 1, 2, 3, 4 };
	m = mship(v1234, 4, NULL, 0);
	assert_int_equal(change(l, &m, why, sizeof(why)), 0);
	struct on_lcore *t = look(l);
	assert_true(same(&t->m, &m) && t->m_committed);
	print_message("node 4 promoted: membership entry %llu\n",
		      (unsigned long long)t->m_id.index);
	/* Every replica can be waited on for it (openraft's wait()), from any
	 * thread; a later entry is not there. */
	uint64_t promoted = t->m_id.index;
	for (uint32_t i = 1; i <= 4; i++)
		assert_int_equal(lcr_group_wait(cl.rep[i].node, CH_GROUP, LCR_WAIT_MEMBERSHIP,
						promoted, 5000000000ull),
				 0);
	assert_int_equal(lcr_group_wait(cl.rep[l].node, CH_GROUP, LCR_WAIT_MEMBERSHIP,
					promoted + 1000000, 100000000ull),
			 -LCR_ETIMEDOUT);

	/* A follower goes: the leader stops replicating to it. */
	uint32_t x = l % 3 + 1, v[4], nv = 0;
	for (uint32_t i = 1; i <= 4; i++)
		if (i != x)
			v[nv++] = i;
	struct lcr_membership after = mship(v, nv, NULL, 0);
	assert_int_equal(change(l, &after, why, sizeof(why)), 0);
	t = look(l);
	assert_true(same(&t->m, &after) && t->m_committed);
	uint64_t m_index = t->m_id.index;
	for (uint32_t i = 0; i < t->st.n_nodes; i++)
		assert_int_not_equal(t->st.nodes[i], x);
	assert_non_null(strstr(t->metrics, "\"membership\":{\"joint\":false,\"voters\":["));
	usleep(300 * 1000);
	uint64_t x_applied = ch_applied(&cl, x), ok = atomic_load(&w_ok);
	usleep(500 * 1000);
	print_message("node %u removed at %llu: applied %llu, then %llu while the writer "
		      "committed %llu more\n",
		      x, (unsigned long long)m_index, (unsigned long long)x_applied,
		      (unsigned long long)ch_applied(&cl, x),
		      (unsigned long long)(atomic_load(&w_ok) - ok));
	assert_true(atomic_load(&w_ok) > ok);
	assert_int_equal(ch_applied(&cl, x), x_applied);
	ch_stop(&cl, x);
	writer_stop();
	print_message("the writer: %llu ok, %llu failed\n", (unsigned long long)atomic_load(&w_ok),
		      (unsigned long long)atomic_load(&w_failed));
	assert_true(atomic_load(&w_ok) > 0);
	assert_int_equal(atomic_load(&w_failed), 0);
	ch_wait_converged(&cl, ch_applied(&cl, l), 10000);

	/* Restarted, a follower has the new membership from its log. */
	uint32_t y = 4;
	assert_true(metric(y, "purged_index") < (double)m_index);
	reopen_with(y, &after, m_index, "from the log");
	ch_commit(&cl, l, &b, 100000, 10, 10000);

	/* Once snapshots and purges took the membership entries, from the
	 * snapshot file's header. */
	for (uint32_t i = 0; i < 4; i++) {
		ch_propose(&cl, l, &b, 200000 + i * 500, 500, 0);
		assert_int_equal(atomic_load(&b.ok), 500);
	}
	ch_wait_converged(&cl, ch_applied(&cl, l), 10000);
	double purged = 0;
	for (int i = 0; i < 500 && (purged = metric(y, "purged_index")) <= (double)m_index; i++)
		usleep(10000);
	assert_true(purged > (double)m_index);
	reopen_with(y, &after, 0, "from the snapshot");
	ch_commit(&cl, l, &b, 300000, 10, 10000);

	/* Node 5 added while stopped; the leader's log is purged past that
	 * entry before it starts: its membership comes with the snapshot. */
	const uint32_t l5[] = { 5 };
	struct lcr_membership with5 = mship(v, nv, l5, 1);
	assert_int_equal(change(l, &with5, why, sizeof(why)), 0);
	uint64_t m5 = look(l)->m_id.index;
	for (uint32_t i = 0; i < 4; i++) {
		ch_propose(&cl, l, &b, 400000 + i * 500, 500, 0);
		assert_int_equal(atomic_load(&b.ok), 500);
	}
	for (int i = 0; i < 500 && (purged = metric(l, "purged_index")) <= (double)m5; i++)
		usleep(10000);
	assert_true(purged > (double)m5);
	ch_start(&cl, 5);
	ch_wait_converged(&cl, ch_applied(&cl, l), 20000);
	t = look(5);
	print_message("node 5 caught up: snapshots_installed %llu, membership entry %llu\n",
		      (unsigned long long)t->st.snapshots_installed,
		      (unsigned long long)t->m_id.index);
	assert_true(t->st.snapshots_installed >= 1);
	assert_true(same(&t->m, &with5));
	assert_true(t->m_id.index > m5); /* the snapshot's: no entry left for it */
	assert_int_equal(t->st.role, LCR_ROLE_LEARNER);
	reopen_with(5, &with5, 0, "from the installed snapshot");
	ch_commit(&cl, l, &b, 500000, 10, 20000);

	ch_stop_all(&cl);
	ch_fini(&cl);
}

/* Nodes 1-3 list only each other; node 4's config lists 1-3 and itself: the
 * others learn its address from the membership. */
static void outside_config(struct lcr_node_config *c, uint32_t id)
{
	c->n_peers = id == 4 ? 4 : 3;
	memset(&c->core.membership, 0, sizeof(c->core.membership));
	c->core.membership.n_configs = 1;
	c->core.membership.configs[0].n = 3;
	for (uint32_t i = 0; i < 3; i++)
		c->core.membership.configs[0].ids[i] = i + 1;
	ch_loopback(c, (uint16_t)(base_port + 200));
}

static bool has_voters(const struct lcr_membership *m, const uint32_t *v, uint32_t n)
{
	return m->n_configs == 1 && m->configs[0].n == n && has_all(m->configs[0].ids, n, v, n);
}

/* Wait until replica `id` applied what replica `l` has. */
static void caught_up(uint32_t id, uint32_t l)
{
	uint64_t want = ch_applied(&cl, l);
	for (int i = 0; i < 10000 && ch_applied(&cl, id) < want; i++)
		usleep(1000);
	assert_true(ch_applied(&cl, id) >= want);
}

/*
 * A node no config of the cluster lists joins by the address its membership
 * entry carries: added as a learner, it catches up, becomes a voter in place
 * of node 1, and the cluster goes on without node 1; a replica restarted
 * reaches it again from the address in its log. Addresses the transport
 * cannot take are refused with a sentence.
 */
static void test_membership_node_outside_config_r4(void **state)
{
	struct ch_batch b;
	char why[256], addr4[32];
	(void)state;

	assert_int_equal(ch_init(&cl, "lcraft-membership-addr", outside_config), 0);
	cl.n_nodes = 4;
	uint32_t l = ch_start_cluster(&cl);
	ch_commit(&cl, l, &b, 0, 10, 5000);
	ch_start(&cl, 4);

	const uint32_t v123[] = { 1, 2, 3 }, l4[] = { 4 };
	struct lcr_membership m = mship(v123, 3, l4, 1);
	/* Without an address: nobody could reach node 4. */
	assert_int_equal(change(l, &m, why, sizeof(why)), -EINVAL);
	print_message("no address: %s\n", why);
	assert_non_null(strstr(why, "no address"));
	m.n_addrs = 1;
	m.addrs[0].id = 4;
	/* An address that does not parse, or a name the lcore would resolve. */
	snprintf(m.addrs[0].addr, sizeof(m.addrs[0].addr), "127.0.0.1");
	assert_int_equal(change(l, &m, why, sizeof(why)), -EINVAL);
	print_message("no port: %s\n", why);
	snprintf(m.addrs[0].addr, sizeof(m.addrs[0].addr), "localhost:7000");
	assert_int_not_equal(change(l, &m, why, sizeof(why)), 0);
	print_message("a name: %s\n", why);

	snprintf(addr4, sizeof(addr4), "127.0.0.1:%u", base_port + 200 + 30);
	snprintf(m.addrs[0].addr, sizeof(m.addrs[0].addr), "%s", addr4);
	assert_int_equal(change(l, &m, why, sizeof(why)), 0);
	ch_commit(&cl, l, &b, 1000, 10, 5000);
	caught_up(4, l);
	print_message("node 4 (%s) caught up as a learner: applied %llu\n", addr4,
		      (unsigned long long)ch_applied(&cl, 4));

	/* Voters 2, 3, 4: the address is kept without being given again. */
	const uint32_t v234[] = { 2, 3, 4 };
	struct lcr_membership t = mship(v234, 3, NULL, 0);
	assert_int_equal(change(l, &t, why, sizeof(why)), 0);
	uint32_t l2 = l;
	if (l == 1) {
		ch_stop(&cl, 1);
		l2 = ch_wait_leader(&cl, 5000);
	} else {
		ch_stop(&cl, 1);
	}
	assert_true(l2 >= 2);
	struct on_lcore *o = look(l2);
	for (int i = 0; i < 200 && !(has_voters(&o->m, v234, 3) && o->m_committed); i++) {
		usleep(10000); /* a new leader commits its blank entry first */
		o = look(l2);
	}
	assert_true(has_voters(&o->m, v234, 3) && o->m_committed);
	assert_non_null(o->m.n_addrs == 1 ? lcr_membership_addr(&o->m, 4) : NULL);
	assert_string_equal(lcr_membership_addr(&o->m, 4), addr4);
	assert_non_null(strstr(o->metrics, "\"addrs\":{\"4\":\""));
	ch_commit(&cl, l2, &b, 2000, 10, 5000);
	print_message("node 1 stopped: leader %u commits with voters 2, 3, 4\n", l2);

	/* Node 2 restarted learns node 4's address from its log; then with node
	 * 3 stopped, only 2 and 4 make a quorum. */
	if (l2 == 2) {
		ch_stop(&cl, 2);
		l2 = ch_wait_leader(&cl, 5000);
		ch_start(&cl, 2);
	} else {
		ch_stop(&cl, 2);
		ch_start(&cl, 2);
	}
	print_message("node 2 restarted: leader %u\n", l2);
	ch_commit(&cl, l2, &b, 3000, 10, 5000);
	caught_up(2, l2);
	if (l2 == 3) {
		ch_stop(&cl, 3);
		l2 = ch_wait_leader(&cl, 5000);
	} else {
		ch_stop(&cl, 3);
	}
	print_message("node 3 stopped: leader %u\n", l2);
	assert_true(l2 == 2 || l2 == 4);
	ch_commit(&cl, l2, &b, 4000, 10, 5000);
	print_message("nodes 2 and 4 alone commit (leader %u)\n", l2);
	ch_stop_all(&cl);
	ch_fini(&cl);
}

int main(void)
{
	base_port = (uint16_t)(26000 + (getpid() % 1500) * 20);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_membership_add_promote_remove_r5),
		cmocka_unit_test(test_membership_node_outside_config_r4),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
