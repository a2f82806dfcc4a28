/* Membership: the entry's encoding (retained voters), a joint config finished by a new leader, a
 * node that joins later. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "harness.h"

static struct lcr_membership uniform(const uint32_t *voters, uint32_t nv, const uint32_t *learners,
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

/* {1,2,3,4} -> {1,2,3} keeping 4 as a learner: the joint entry of that change. */
static struct lcr_membership joint_retaining_4(void)
{
	struct lcr_membership m = uniform((uint32_t[]){ 1, 2, 3, 4 }, 4, NULL, 0);

	m.n_configs = 2;
	m.configs[1].n = 3;
	memcpy(m.configs[1].ids, (uint32_t[]){ 1, 2, 3 }, 3 * sizeof(uint32_t));
	m.n_retained = 1;
	m.retained[0] = 4;
	return m;
}

/* Equal as encoded (configs, learners, addresses, retained voters, in order). */
static bool same_bytes(const struct lcr_membership *a, const struct lcr_membership *b)
{
	uint8_t x[LCR_MEMBERSHIP_BYTES_MAX], y[LCR_MEMBERSHIP_BYTES_MAX];
	size_t nx = lcr_membership_encode(a, x, sizeof(x)),
	       ny = lcr_membership_encode(b, y, sizeof(y));

	return nx > 0 && nx == ny && memcmp(x, y, nx) == 0;
}

static bool has(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* The layout, byte for byte (docs/storage-format.md, "Membership entries"). */
static void test_encode_retained_layout(void **state)
{
	struct lcr_membership m = joint_retaining_4(), back;
	uint8_t b[LCR_MEMBERSHIP_BYTES_MAX];
	(void)state;

	static const uint8_t want[] = {
		2, 0, 0, 0,						    /* n_configs */
		4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, /* old */
		3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0,		    /* new */
		0, 0, 0, 0,						    /* n_learners */
		0, 0, 0, 0,		/* n_addrs: 0, retained voters follow */
		1, 0, 0, 0, 4, 0, 0, 0, /* n_retained, node 4 */
	};
	size_t n = lcr_membership_encode(&m, b, sizeof(b));
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(b, want, sizeof(want));
	assert_int_equal(lcr_membership_decode(b, n, &back), 0);
	assert_true(same_bytes(&m, &back));
	assert_int_equal(back.n_retained, 1);
	assert_int_equal(back.retained[0], 4);

	/* With an address: the address list, then the retained voters. */
	m.n_addrs = 1;
	m.addrs[0].id = 4;
	strcpy(m.addrs[0].addr, "h:1");
	static const uint8_t tail[] = { 1,   0,	  0, 0, 4, 0, 0, 0, 3, 'h',
					':', '1', 1, 0, 0, 0, 4, 0, 0, 0 };
	n = lcr_membership_encode(&m, b, sizeof(b));
	assert_int_equal(n, 44 + sizeof(tail));
	assert_memory_equal(b + 44, tail, sizeof(tail));
	assert_int_equal(lcr_membership_decode(b, n, &back), 0);
	assert_true(same_bytes(&m, &back));
	/* Too small a buffer: nothing written. */
	assert_int_equal(lcr_membership_encode(&m, b, n - 1), 0);
}

/* A membership without retained voters encodes as it always did. */
static void test_encode_without_retained_unchanged(void **state)
{
	struct lcr_membership m = uniform((uint32_t[]){ 1, 2, 3 }, 3, (uint32_t[]){ 4 }, 1), back;
	uint8_t b[LCR_MEMBERSHIP_BYTES_MAX];
	(void)state;

	static const uint8_t want[] = { 1, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0,
					0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0 };
	size_t n = lcr_membership_encode(&m, b, sizeof(b));
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(b, want, sizeof(want));
	assert_int_equal(lcr_membership_decode(b, n, &back), 0);
	assert_int_equal(back.n_retained, 0);
	assert_int_equal(back.n_addrs, 0);
	assert_true(same_bytes(&m, &back));

	/* A joint config without retained voters: no list, as before. */
	m = joint_retaining_4();
	m.n_retained = 0;
	m.retained[0] = 0;
	n = lcr_membership_encode(&m, b, sizeof(b));
	assert_int_equal(n, 44);
	assert_int_equal(lcr_membership_decode(b, n, &back), 0);
	assert_true(same_bytes(&m, &back));
}

/* Every cut, a byte more, an empty list, bad counts and ids: refused. */
static void test_decode_rejects_malformed_retained(void **state)
{
	struct lcr_membership m = joint_retaining_4(), back;
	uint8_t b[LCR_MEMBERSHIP_BYTES_MAX], c[LCR_MEMBERSHIP_BYTES_MAX];
	(void)state;

	size_t n = lcr_membership_encode(&m, b, sizeof(b));
	assert_int_equal(n, 56);
	/* Every cut but the one that ends with the learners (an older,
	 * complete membership without the retained voters). */
	for (size_t k = 0; k < n; k++)
		if (k != 44)
			assert_int_equal(lcr_membership_decode(b, k, &back), -EINVAL);
	/* A byte more. */
	memcpy(c, b, n);
	c[n] = 0;
	assert_int_equal(lcr_membership_decode(c, n + 1, &back), -EINVAL);
	/* n_addrs 0 with nothing after it. */
	assert_int_equal(lcr_membership_decode(b, 48, &back), -EINVAL);
	/* n_retained 0, or past the bound, or not matching the bytes. */
	memcpy(c, b, n);
	c[48] = 0;
	assert_int_equal(lcr_membership_decode(c, 52, &back), -EINVAL);
	c[48] = 17;
	assert_int_equal(lcr_membership_decode(c, n, &back), -EINVAL);
	c[48] = 2;
	assert_int_equal(lcr_membership_decode(c, n, &back), -EINVAL);
	c[48] = 0xff;
	c[51] = 0xff;
	assert_int_equal(lcr_membership_decode(c, n, &back), -EINVAL);
	/* A retained id that is a voter of the new config, of neither, or 0. */
	static const uint8_t bad_ids[] = { 1, 5, 0 };
	for (size_t i = 0; i < sizeof(bad_ids); i++) {
		memcpy(c, b, n);
		c[52] = bad_ids[i];
		assert_int_equal(lcr_membership_decode(c, n, &back), -EINVAL);
	}
	/* The same node twice. */
	m.n_retained = 2;
	m.retained[1] = 4;
	assert_int_not_equal(lcr_membership_encode(&m, c, sizeof(c)), 0);
	assert_int_equal(lcr_membership_decode(c, 60, &back), -EINVAL);
}

static void test_validate_retained(void **state)
{
	struct lcr_membership m = joint_retaining_4();
	char why[160];
	(void)state;

	assert_int_equal(lcr_membership_validate(&m, why, sizeof(why)), 0);
	/* Only in a joint config. */
	struct lcr_membership one = m;
	one.n_configs = 1;
	assert_int_equal(lcr_membership_validate(&one, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "retained"));
	/* Not also a learner. */
	m.n_learners = 1;
	m.learners[0] = 4;
	assert_int_equal(lcr_membership_validate(&m, why, sizeof(why)), -EINVAL);
	m.n_learners = 0;
	m.n_retained = LCR_NODES_MAX + 1;
	assert_int_equal(lcr_membership_validate(&m, why, sizeof(why)), -EINVAL);
}

/* ---- a cluster ------------------------------------------------------------------- */

static struct th_cluster cl;

static void changes_on(struct lcr_core_config *cfg)
{
	cfg->enable_membership_changes = true;
}

/* Voters 1..4, node 5 outside the first membership. */
static void changes_on_four_voters(struct lcr_core_config *cfg)
{
	cfg->enable_membership_changes = true;
	cfg->membership.configs[0].n = 4;
}

static struct lcr_membership committed_at(uint32_t id, bool *committed)
{
	struct lcr_core_status st = th_status(&cl, id);
	*committed = st.membership_committed;
	return st.membership;
}

/*
 * change_membership(retain): the leader that began the change leaves after
 * the joint config reached the others and before it could finish; the new
 * leader finishes it from the joint entry alone, and the voter the target
 * keeps as a learner stays one (openraft: retain = true).
 */
static void test_new_leader_finishes_retained(void **state)
{
	(void)state;
	th_init(&cl, 4, changes_on);
	th_elect(&cl, 1);
	th_run(&cl, 10000);
	assert_int_equal(th_status(&cl, 1).role, LCR_ROLE_LEADER);

	/* The leader hears no acks from here on: it never commits the joint
	 * config, so it never proposes the target itself. */
	for (uint32_t f = 2; f <= 4; f++)
		cl.cut[f][1] = true;
	struct lcr_membership t = uniform((uint32_t[]){ 1, 2, 3 }, 3, (uint32_t[]){ 4 }, 1);
	struct lcr_log_id jid;
	assert_int_equal(lcr_core_change_membership(th_node(&cl, 1)->core, cl.now, &t, &jid), 0);
	th_process(&cl, th_node(&cl, 1));
	th_run(&cl, 10000);
	for (uint32_t f = 2; f <= 4; f++) {
		struct lcr_core_status st = th_status(&cl, f);
		assert_int_equal(st.membership.n_configs, 2);
		assert_int_equal(st.membership_id.index, jid.index);
		assert_int_equal(st.membership.n_retained, 1);
		assert_int_equal(st.membership.retained[0], 4);
	}
	/* The old leader goes; another is elected (by a majority of each
	 * config: 2 and 3 must vote) and finishes the change. */
	th_node(&cl, 1)->up = false;
	th_advance(&cl, 5000 * MS);
	for (uint32_t f = 2; f <= 4; f++) {
		bool committed;
		struct lcr_membership m = committed_at(f, &committed);
		assert_true(committed);
		assert_int_equal(m.n_configs, 1);
		assert_int_equal(m.configs[0].n, 3);
		for (uint32_t v = 1; v <= 3; v++)
			assert_true(has(m.configs[0].ids, m.configs[0].n, v));
		/* Node 4 stays, a learner. */
		assert_int_equal(m.n_learners, 1);
		assert_int_equal(m.learners[0], 4);
		assert_int_equal(m.n_retained, 0);
		assert_true(same_bytes(&m, &t));
	}
	assert_int_equal(th_status(&cl, 4).role, LCR_ROLE_LEARNER);
	th_free(&cl);
}

/* The leader that began it finishes it to the same entry. */
static void test_leader_finishes_retained(void **state)
{
	(void)state;
	th_init(&cl, 4, changes_on);
	th_elect(&cl, 1);
	th_run(&cl, 10000);
	struct lcr_membership t = uniform((uint32_t[]){ 2, 3, 4 }, 3, (uint32_t[]){ 1 }, 1);
	assert_int_equal(lcr_core_change_membership(th_node(&cl, 1)->core, cl.now, &t, NULL), 0);
	th_process(&cl, th_node(&cl, 1));
	th_run(&cl, 100000);
	th_advance(&cl, 3000 * MS);
	for (uint32_t f = 1; f <= 4; f++) {
		bool committed;
		struct lcr_membership m = committed_at(f, &committed);
		assert_true(committed);
		assert_true(same_bytes(&m, &t));
	}
	th_free(&cl);
}

/*
 * A node outside the first membership is in no config until a change adds
 * it: not a learner of its own making, so the membership a snapshot of its
 * would carry is the one every node started from.
 */
static void test_joining_node_not_self_learner(void **state)
{
	(void)state;
	th_init(&cl, 5, changes_on_four_voters);
	struct lcr_core_status st = th_status(&cl, 5);
	assert_int_equal(st.role, LCR_ROLE_LEARNER);
	assert_false(lcr_membership_contains(&st.membership, 5));
	assert_false(lcr_membership_contains(&st.snapshot_membership, 5));
	assert_int_equal(st.membership.n_learners, 0);

	th_elect(&cl, 1);
	th_run(&cl, 10000);
	assert_int_equal(th_status(&cl, 1).role, LCR_ROLE_LEADER);
	assert_int_equal(th_propose(&cl, 1, 3, 7), 0);
	th_run(&cl, 10000);
	/* The cluster goes on without it; it still names no learner. */
	st = th_status(&cl, 5);
	assert_false(lcr_membership_contains(&st.membership, 5));

	struct lcr_membership t = uniform((uint32_t[]){ 1, 2, 3, 4 }, 4, (uint32_t[]){ 5 }, 1);
	assert_int_equal(lcr_core_change_membership(th_node(&cl, 1)->core, cl.now, &t, NULL), 0);
	th_process(&cl, th_node(&cl, 1));
	th_run(&cl, 100000);
	th_advance(&cl, 100 * MS);
	st = th_status(&cl, 5);
	assert_true(lcr_membership_contains(&st.membership, 5));
	assert_false(lcr_membership_is_voter(&st.membership, 5));
	assert_true(st.membership_committed);
	th_free(&cl);

	/* Without membership changes a node outside can never join: refused. */
	struct lcr_core_config cfg;
	char why[200];
	th_config(&cfg, 5, 4);
	assert_int_equal(lcr_core_config_validate(&cfg, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "not in the membership"));
	cfg.enable_membership_changes = true;
	assert_int_equal(lcr_core_config_validate(&cfg, why, sizeof(why)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_retained_layout),
		cmocka_unit_test(test_encode_without_retained_unchanged),
		cmocka_unit_test(test_decode_rejects_malformed_retained),
		cmocka_unit_test(test_validate_retained),
		cmocka_unit_test(test_new_leader_finishes_retained),
		cmocka_unit_test(test_leader_finishes_retained),
		cmocka_unit_test(test_joining_node_not_self_learner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
