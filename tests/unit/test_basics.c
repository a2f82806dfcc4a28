/* Building blocks of the core: log id list, joint-config quorums, config validation, ids
 * ordering, numbers out of range (terms from the wire, durable state). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"

static void *std_alloc(void *ctx, size_t n)
{
	(void)ctx;
	return malloc(n);
}

static void std_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static struct lcr_log_id lid(uint64_t term, uint32_t node, uint64_t index)
{
	struct lcr_log_id id = { { term, node }, index };
	return id;
}

static void test_log_ids_runs_and_lookup(void **state)
{
	struct lcr_allocator a = { std_alloc, std_free, NULL };
	struct lcr_log_ids l;
	struct lcr_log_id got;
	(void)state;

	assert_int_equal(lcr_log_ids_init(&l, a, 1, lcr_log_id_none()), 0);
	assert_true(lcr_log_ids_has(&l, lcr_log_id_none()));
	assert_false(lcr_log_ids_get(&l, 1, &got));
	for (uint64_t i = 1; i <= 3; i++)
		assert_int_equal(lcr_log_ids_append(&l, lid(1, 1, i)), 0);
	for (uint64_t i = 4; i <= 5; i++)
		assert_int_equal(lcr_log_ids_append(&l, lid(2, 3, i)), 0);
	assert_int_equal(lcr_log_ids_append(&l, lid(2, 4, 6)), 0); /* grows past cap 1 */
	assert_int_equal(l.n, 3);
	assert_true(lcr_log_ids_get(&l, 3, &got) && lcr_log_id_eq(got, lid(1, 1, 3)));
	assert_true(lcr_log_ids_get(&l, 4, &got) && lcr_log_id_eq(got, lid(2, 3, 4)));
	assert_true(lcr_log_ids_get(&l, 6, &got) && lcr_log_id_eq(got, lid(2, 4, 6)));
	assert_false(lcr_log_ids_get(&l, 7, &got));
	assert_true(lcr_log_ids_has(&l, lid(2, 3, 5)));
	assert_false(lcr_log_ids_has(&l, lid(1, 1, 5)));
	assert_true(lcr_log_id_eq(lcr_log_ids_last_run_first(&l), lid(2, 4, 6)));

	lcr_log_ids_truncate(&l, 5);
	assert_true(lcr_log_id_eq(l.last, lid(2, 3, 4)));
	assert_int_equal(l.n, 2);
	lcr_log_ids_truncate(&l, 1);
	assert_true(lcr_log_id_is_none(l.last));
	assert_int_equal(l.n, 0);
	lcr_log_ids_free(&l);
}

static void test_log_ids_purged_base(void **state)
{
	struct lcr_allocator a = { std_alloc, std_free, NULL };
	struct lcr_log_ids l;
	struct lcr_log_id got;
	(void)state;

	assert_int_equal(lcr_log_ids_init(&l, a, 4, lid(3, 1, 100)), 0);
	assert_true(lcr_log_ids_get(&l, 100, &got) && lcr_log_id_eq(got, lid(3, 1, 100)));
	assert_false(lcr_log_ids_get(&l, 99, &got));
	assert_true(lcr_log_ids_has(&l, lid(1, 1, 50))); /* purged: committed, matches */
	assert_int_equal(lcr_log_ids_append(&l, lid(3, 1, 101)), 0);
	lcr_log_ids_truncate(&l, 101);
	assert_true(lcr_log_id_eq(l.last, lid(3, 1, 100)));
	lcr_log_ids_free(&l);
}

static uint64_t vals[8];

static uint64_t val_of(const void *ctx, uint32_t id)
{
	(void)ctx;
	return vals[id];
}

static void test_quorum_single_and_joint(void **state)
{
	struct lcr_membership m;
	(void)state;

	memset(&m, 0, sizeof(m));
	m.n_configs = 1;
	m.configs[0].n = 3;
	m.configs[0].ids[0] = 1;
	m.configs[0].ids[1] = 2;
	m.configs[0].ids[2] = 3;
	vals[1] = 10;
	vals[2] = 7;
	vals[3] = 3;
	assert_int_equal(lcr_membership_quorum_value(&m, val_of, NULL, false), 7);
	/* The planted bug counts one fewer: the leader alone. */
	assert_int_equal(lcr_membership_quorum_value(&m, val_of, NULL, true), 10);

	/* Joint {1,2,3} and {3,4,5}: a majority of each. */
	m.n_configs = 2;
	m.configs[1].n = 3;
	m.configs[1].ids[0] = 3;
	m.configs[1].ids[1] = 4;
	m.configs[1].ids[2] = 5;
	vals[4] = 5;
	vals[5] = 1;
	assert_int_equal(lcr_membership_quorum_value(&m, val_of, NULL, false), 3);
	assert_int_equal(lcr_membership_voter_count(&m), 5);
	assert_true(lcr_membership_is_voter(&m, 5));
	assert_false(lcr_membership_is_voter(&m, 6));
}

/* A core's config as node `id` of a group of three (nodes 1, 2, 3). */
static void config_three(struct lcr_core_config *cfg, uint32_t id)
{
	lcr_core_config_default(cfg, id);
	cfg->membership.n_configs = 1;
	cfg->membership.configs[0].n = 3;
	for (uint32_t i = 0; i < 3; i++)
		cfg->membership.configs[0].ids[i] = i + 1;
}

static void test_config_validation_names_the_option(void **state)
{
	struct lcr_core_config cfg;
	char why[256];
	(void)state;

	config_three(&cfg, 1);
	assert_int_equal(lcr_core_config_validate(&cfg, why, sizeof(why)), 0);

	cfg.election_timeout_min_ms = 300;
	assert_int_equal(lcr_core_config_validate(&cfg, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "election_timeout_min_ms"));
	cfg.election_timeout_min_ms = 40;
	assert_int_equal(lcr_core_config_validate(&cfg, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "heartbeat_interval_ms"));
	cfg.election_timeout_min_ms = 150;
	cfg.max_payload_entries = 0;
	assert_int_equal(lcr_core_config_validate(&cfg, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "max_payload_entries"));
	cfg.max_payload_entries = 300;
	cfg.membership.configs[0].ids[2] = 2;
	assert_int_equal(lcr_core_config_validate(&cfg, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "twice"));
	cfg.membership.configs[0].ids[2] = 3;
	cfg.id = 9;
	assert_int_equal(lcr_core_config_validate(&cfg, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "not in the membership"));

	struct lcr_core_restore rs = { 0 };
	struct lcr_core *c = (struct lcr_core *)&rs; /* overwritten with NULL */
	assert_int_equal(lcr_core_new(&c, &cfg, &rs), -EINVAL);
	assert_null(c);
}

static void test_vote_and_log_id_order(void **state)
{
	struct lcr_vote a = { { 2, 1 }, false }, b = { { 2, 3 }, false }, ac = { { 2, 1 }, true };
	(void)state;

	/* Advanced mode: (term, node) totally ordered, committed above uncommitted. */
	assert_true(lcr_vote_cmp(a, b) < 0);
	assert_true(lcr_vote_cmp(ac, a) > 0);
	assert_true(lcr_vote_cmp(ac, b) < 0);
	assert_true(lcr_log_id_cmp(lid(1, 5, 100), lid(2, 1, 1)) < 0);
	assert_true(lcr_log_id_cmp(lid(2, 1, 2), lid(2, 1, 1)) > 0);
	assert_true(lcr_log_id_cmp(lcr_log_id_none(), lid(0, 1, 1)) < 0);
	assert_string_equal(lcr_strerror(-LCR_ENOTLEADER), "not the leader");
}

static void test_restart_loads_log_and_restores(void **state)
{
	struct lcr_core_config cfg;
	struct lcr_core_restore rs;
	(void)state;

	config_three(&cfg, 2);
	memset(&rs, 0, sizeof(rs));
	rs.vote.lid.term = 4;
	rs.vote.lid.node = 2;
	rs.vote.committed = true; /* we were leader */
	rs.committed = lid(4, 2, 2);
	struct lcr_core *c;
	assert_int_equal(lcr_core_new(&c, &cfg, &rs), 0);
	assert_int_equal(lcr_core_load_log_id(c, lid(4, 2, 1)), 0);
	assert_int_equal(lcr_core_load_log_id(c, lid(4, 2, 3)), -EINVAL); /* gap */
	assert_int_equal(lcr_core_load_log_id(c, lid(4, 2, 2)), 0);
	assert_int_equal(lcr_core_load_log_id(c, lid(3, 1, 3)), -EINVAL); /* older leader */
	assert_int_equal(lcr_core_start(c, 1000), 0);
	struct lcr_core_status st;
	lcr_core_status(c, &st);
	/* Leader restore is off: a restart needs a new election. */
	assert_int_equal(st.role, LCR_ROLE_FOLLOWER);
	assert_false(st.vote.committed);
	assert_int_equal(st.committed.index, 2);
	uint32_t n;
	const struct lcr_cmd *cmds = lcr_core_commands(c, &n);
	bool apply = false;
	for (uint32_t i = 0; i < n; i++)
		if (cmds[i].type == LCR_CMD_APPLY && cmds[i].apply.last.index == 2)
			apply = true;
	assert_true(apply);
	lcr_core_free(c);
}

/*
 * A persisted commit hint counts only where the log holds that very entry:
 * one past the log's end, or naming another entry at its index, applies
 * nothing at start (the replica learns the commit from its leader).
 */
static void test_restore_commit_hint_not_in_log_ignored(void **state)
{
	(void)state;
	const struct lcr_log_id hints[] = { lid(4, 2, 5), lid(3, 1, 2), lid(4, 2, 2) };
	const uint64_t want[] = { 0, 0, 2 };

	for (size_t h = 0; h < sizeof(hints) / sizeof(hints[0]); h++) {
		struct lcr_core_config cfg;
		struct lcr_core_restore rs;
		struct lcr_core *c;
		struct lcr_core_status st;
		uint32_t n;

		config_three(&cfg, 2);
		memset(&rs, 0, sizeof(rs));
		rs.vote.lid.term = 4;
		rs.vote.lid.node = 2;
		rs.committed = hints[h];
		assert_int_equal(lcr_core_new(&c, &cfg, &rs), 0);
		assert_int_equal(lcr_core_load_log_id(c, lid(4, 2, 1)), 0);
		assert_int_equal(lcr_core_load_log_id(c, lid(4, 2, 2)), 0);
		assert_int_equal(lcr_core_start(c, 1000), 0);
		lcr_core_status(c, &st);
		assert_int_equal(st.committed.index, want[h]);
		const struct lcr_cmd *cmds = lcr_core_commands(c, &n);
		for (uint32_t i = 0; i < n; i++)
			if (cmds[i].type == LCR_CMD_APPLY)
				assert_int_equal(cmds[i].apply.last.index, want[h]);
		lcr_core_free(c);
	}
}

/*
 * A replica whose log holds leader_runs_max runs may not lead, so it does not
 * stand; its next timer must still move forward (an election deadline left in
 * the past made every tick due at once: a busy loop), and it stands as soon as
 * it can.
 */
static void test_full_run_table_does_not_spin(void **state)
{
	struct lcr_core_config cfg;
	struct lcr_core_restore rs;
	(void)state;

	config_three(&cfg, 2);
	cfg.leader_runs_max = 16;
	memset(&rs, 0, sizeof(rs));
	rs.vote.lid.term = 16;
	rs.vote.lid.node = 1;
	struct lcr_core *c;
	assert_int_equal(lcr_core_new(&c, &cfg, &rs), 0);
	for (uint64_t t = 1; t <= 16; t++) /* one entry of each of 16 leaders */
		assert_int_equal(lcr_core_load_log_id(c, lid(t, 1, t)), 0);
	uint64_t now = 1000;
	assert_int_equal(lcr_core_start(c, now), 0);
	struct lcr_core_status st;
	lcr_core_status(c, &st);
	assert_true(st.runs_full);
	uint32_t ticks = 0;
	for (; ticks < 100 && now < 10ull * 1000000000; ticks++) {
		lcr_core_status(c, &st);
		assert_true(st.next_timer_ns > now); /* never due at once again */
		now = st.next_timer_ns;
		struct lcr_event ev = { .type = LCR_EV_TICK, .now_ns = now };
		lcr_core_step(c, &ev);
		uint32_t n;
		(void)lcr_core_commands(c, &n);
	}
	lcr_core_status(c, &st);
	print_message("%u ticks in %.1f s with a full run table: %llu elections\n", ticks,
		      (double)now / 1e9, (unsigned long long)st.elections);
	assert_int_equal(st.elections, 0);
	assert_int_equal(st.role, LCR_ROLE_FOLLOWER);
	assert_true(ticks < 100); /* about one tick per election timeout, not a spin */
	lcr_core_free(c);
}

static void test_io_failure_stops_replica(void **state)
{
	struct lcr_core_config cfg;
	struct lcr_core_restore rs = { 0 };
	(void)state;

	lcr_core_config_default(&cfg, 1);
	cfg.membership.n_configs = 1;
	cfg.membership.configs[0].n = 1;
	cfg.membership.configs[0].ids[0] = 1;
	struct lcr_core *c;
	assert_int_equal(lcr_core_new(&c, &cfg, &rs), 0);
	assert_int_equal(lcr_core_start(c, 1000), 0);
	struct lcr_event ev = { .type = LCR_EV_IO_FAILED, .now_ns = 2000, .io_error = -EIO };
	assert_int_equal(lcr_core_step(c, &ev), -LCR_ESTOPPED);
	struct lcr_event tick = { .type = LCR_EV_TICK, .now_ns = 3000 };
	assert_int_equal(lcr_core_step(c, &tick), -LCR_ESTOPPED);
	struct lcr_core_status st;
	lcr_core_status(c, &st);
	assert_int_equal(st.role, LCR_ROLE_STOPPED);
	lcr_core_free(c);
}

/* A replica of {1, 2, 3}, started, with `vote` restored. */
static struct lcr_core *three(struct lcr_vote vote)
{
	struct lcr_core_config cfg;
	struct lcr_core_restore rs = { .vote = vote };
	struct lcr_core *c;

	config_three(&cfg, 1);
	assert_int_equal(lcr_core_new(&c, &cfg, &rs), 0);
	assert_int_equal(lcr_core_start(c, 1000), 0);
	return c;
}

static uint32_t vote_req(struct lcr_core *c, uint64_t term, uint64_t now)
{
	struct lcr_msg m = { .type = LCR_MSG_VOTE_REQ, .from = 2, .to = 1 };
	m.vote_req.vote = (struct lcr_vote){ { term, 2 }, false };
	m.vote_req.last_log_id = lid(term, 2, 5);
	struct lcr_event ev = { .type = LCR_EV_MSG, .now_ns = now, .msg = &m };
	uint32_t n;
	assert_int_equal(lcr_core_step(c, &ev), 0);
	lcr_core_commands(c, &n);
	return n;
}

/*
 * A term no peer could have reached since ours (LCR_TERM_JUMP_MAX, up to the
 * last legal term 2^62 - 1) is refused at the door: nothing saved, nothing
 * answered, counted. One within the bound is taken in.
 */
static void test_far_term_refused(void **state)
{
	struct lcr_core_status st;
	(void)state;

	struct lcr_core *c = three((struct lcr_vote){ { 7, 3 }, true });
	uint64_t s = 10ull * 1000 * 1000 * 1000; /* past any lease */
	assert_int_equal(vote_req(c, 7 + LCR_TERM_JUMP_MAX + 1, s), 0);
	assert_int_equal(vote_req(c, LCR_NUMBER_MAX - 1, s + 1), 0);
	lcr_core_status(c, &st);
	assert_int_equal(st.vote.lid.term, 7);
	assert_int_equal(st.far_terms, 2);
	assert_int_equal(st.dropped_msgs, 0);
	/* At the bound: a peer that held that many elections meanwhile. */
	assert_true(vote_req(c, 7 + LCR_TERM_JUMP_MAX, s + 2) > 0);
	lcr_core_status(c, &st);
	assert_int_equal(st.vote.lid.term, 7 + LCR_TERM_JUMP_MAX);
	assert_int_equal(st.far_terms, 2);
	lcr_core_free(c);
}

/* A replica at the last legal term does not stand for election (no wrap). */
static void test_term_exhausted_refuses_to_campaign(void **state)
{
	struct lcr_core_status st;
	uint32_t n;
	(void)state;

	struct lcr_core *c = three((struct lcr_vote){ { LCR_NUMBER_MAX - 1, 1 }, false });
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_ELECT,
				.now_ns = 10ull * 1000 * 1000 * 1000 };
	assert_int_equal(lcr_core_step(c, &ev), 0);
	const struct lcr_cmd *cmds = lcr_core_commands(c, &n);
	for (uint32_t i = 0; i < n; i++)
		assert_int_not_equal(cmds[i].type, LCR_CMD_SAVE_VOTE);
	lcr_core_status(c, &st);
	assert_int_equal(st.vote.lid.term, LCR_NUMBER_MAX - 1);
	assert_int_equal(st.term_exhausted, 1);
	assert_int_equal(st.role, LCR_ROLE_FOLLOWER);
	lcr_core_free(c);
}

/* An APPEND_REQ from leader 2 (term 1) to replica 1 with the given entries at 1..n. */
static uint32_t append_req(struct lcr_core *c, struct lcr_entry *e, uint32_t n, uint64_t now,
			   bool *append)
{
	struct lcr_msg m = { .type = LCR_MSG_APPEND_REQ, .from = 2, .to = 1 };
	m.append_req.vote = (struct lcr_vote){ { 1, 2 }, true };
	m.append_req.n_entries = n;
	m.append_req.entries = e;
	for (uint32_t i = 0; i < n; i++)
		e[i].id = lid(1, 2, i + 1);
	struct lcr_event ev = { .type = LCR_EV_MSG, .now_ns = now, .msg = &m };
	uint32_t k;
	assert_int_equal(lcr_core_step(c, &ev), 0);
	const struct lcr_cmd *cmds = lcr_core_commands(c, &k);
	*append = false;
	for (uint32_t i = 0; i < k; i++)
		if (cmds[i].type == LCR_CMD_APPEND)
			*append = true;
	return k;
}

/*
 * A peer's entries reach storage only with a type storage writes and a length
 * it takes: an unknown type, the reserved membership type, a payload above
 * LCR_ENTRY_MAX or a payload without data is dropped at the door and counted,
 * with nothing appended, answered or saved. Entries at the bounds are taken.
 */
static void test_bad_entries_dropped(void **state)
{
	static const uint8_t payload[8];
	const struct {
		uint32_t type;
		uint32_t len;
		const void *data;
	} bad[] = {
		{ 99, 4, payload },
		{ 0, 4, payload },
		{ LCR_ENTRY_MEMBERSHIP, 4, payload },
		{ LCR_ENTRY_NORMAL, LCR_ENTRY_MAX + 1, payload },
		{ LCR_ENTRY_NORMAL, UINT32_MAX, payload },
		{ LCR_ENTRY_NORMAL, 4, NULL },
	};
	struct lcr_core_status st;
	struct lcr_entry e[2];
	bool append;
	(void)state;

	struct lcr_core *c = three((struct lcr_vote){ { 1, 2 }, true });
	uint64_t now = 2000;
	for (uint32_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* The bad entry second, after a good one: the whole message goes. */
		memset(e, 0, sizeof(e));
		e[0].type = LCR_ENTRY_BLANK;
		e[1].type = bad[i].type;
		e[1].len = bad[i].len;
		e[1].data = bad[i].data;
		assert_int_equal(append_req(c, e, 2, now++, &append), 0);
		assert_false(append);
		lcr_core_status(c, &st);
		assert_int_equal(st.dropped_msgs, i + 1);
		assert_int_equal(st.last.index, 0);
	}
	/* At the bounds: a blank without data, a payload of LCR_ENTRY_MAX. */
	memset(e, 0, sizeof(e));
	e[0].type = LCR_ENTRY_BLANK;
	e[1].type = LCR_ENTRY_NORMAL;
	e[1].len = LCR_ENTRY_MAX;
	e[1].data = payload; /* the core never reads a payload */
	append_req(c, e, 2, now, &append);
	assert_true(append);
	lcr_core_status(c, &st);
	assert_int_equal(st.dropped_msgs, sizeof(bad) / sizeof(bad[0]));
	assert_int_equal(st.last.index, 2);
	lcr_core_free(c);
}

/* A single-node replica, elected and flushed: a leader that takes proposals. */
static struct lcr_core *solo_leader(void)
{
	struct lcr_core_config cfg;
	struct lcr_core_restore rs = { 0 };
	struct lcr_core *c;
	struct lcr_core_status st;

	lcr_core_config_default(&cfg, 1);
	cfg.membership.n_configs = 1;
	cfg.membership.configs[0].n = 1;
	cfg.membership.configs[0].ids[0] = 1;
	assert_int_equal(lcr_core_new(&c, &cfg, &rs), 0);
	assert_int_equal(lcr_core_start(c, 1000), 0);
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_ELECT, .now_ns = 2000 };
	for (int round = 0; round < 4; round++) {
		uint32_t n;
		const struct lcr_cmd *cmds = lcr_core_commands(c, &n);
		struct lcr_io_id io = { 0 };
		for (uint32_t i = 0; i < n; i++) {
			if (cmds[i].type == LCR_CMD_SAVE_VOTE)
				io = cmds[i].save_vote.io;
			if (cmds[i].type == LCR_CMD_APPEND)
				io = cmds[i].append.io;
		}
		assert_int_equal(lcr_core_step(c, &ev), 0);
		ev = (struct lcr_event){ .type = LCR_EV_IO_FLUSHED,
					 .now_ns = 3000 + round,
					 .io = io };
		if (io.seq == 0)
			ev.type = LCR_EV_TICK;
	}
	lcr_core_status(c, &st);
	assert_int_equal(st.role, LCR_ROLE_LEADER);
	return c;
}

/* The leader's own proposals obey the same contract with storage. */
static void test_bad_proposals_refused(void **state)
{
	static const uint8_t payload[8];
	struct lcr_entry e;
	(void)state;

	struct lcr_core *c = solo_leader();
	e = (struct lcr_entry){ .type = LCR_ENTRY_NORMAL,
				.len = LCR_ENTRY_MAX + 1,
				.data = payload };
	assert_int_equal(lcr_core_propose(c, 10000, &e, 1), -EINVAL);
	e = (struct lcr_entry){ .type = LCR_ENTRY_NORMAL, .len = 4, .data = NULL };
	assert_int_equal(lcr_core_propose(c, 10000, &e, 1), -EINVAL);
	e = (struct lcr_entry){ .type = LCR_ENTRY_MEMBERSHIP, .len = 4, .data = payload };
	assert_int_equal(lcr_core_propose(c, 10000, &e, 1), -EINVAL);
	e = (struct lcr_entry){ .type = LCR_ENTRY_NORMAL, .len = LCR_ENTRY_MAX, .data = payload };
	assert_int_equal(lcr_core_propose(c, 10000, &e, 1), 0);
	lcr_core_free(c);
}

/* One message of each type to replica 1 (leader 3 in term 7), taken without a drop. */
static struct lcr_msg plain_msg(uint32_t type, struct lcr_entry *e)
{
	const struct lcr_vote leader = { { 7, 3 }, true };
	struct lcr_msg m = { .type = type, .from = 3, .to = 1 };

	switch (type) {
	case LCR_MSG_VOTE_REQ:
		m.from = 2;
		m.vote_req.vote = (struct lcr_vote){ { 8, 2 }, false };
		m.vote_req.transfer_from = leader;
		break;
	case LCR_MSG_VOTE_RESP:
		m.vote_resp.vote = leader;
		m.vote_resp.req_vote = leader;
		break;
	case LCR_MSG_APPEND_REQ:
		*e = (struct lcr_entry){ .id = lid(7, 3, 1), .type = LCR_ENTRY_NORMAL };
		m.append_req.vote = leader;
		m.append_req.n_entries = 1;
		m.append_req.entries = e;
		break;
	case LCR_MSG_APPEND_RESP:
		m.append_resp.result = LCR_APPEND_OK;
		m.append_resp.vote = leader;
		break;
	case LCR_MSG_TRANSFER_LEADER:
		m.transfer.from_leader = leader;
		m.transfer.to = 2;
		break;
	}
	return m;
}

/* Feed `m` to a fresh replica 1 (leader 3 in term 7) and read its counters. */
static void feed(const struct lcr_msg *m, struct lcr_core_status *st)
{
	struct lcr_core *c = three((struct lcr_vote){ { 7, 3 }, true });
	struct lcr_event ev = { .type = LCR_EV_MSG, .now_ns = 2000, .msg = m };
	assert_int_equal(lcr_core_step(c, &ev), 0);
	lcr_core_status(c, st);
	lcr_core_free(c);
}

/*
 * Every vote and log id of every message is range-checked (a term or index
 * at 2^62 is dropped) and every term counts toward the jump bound (a term
 * past LCR_TERM_JUMP_MAX is refused as far). A request's entries are range
 * checked too; their terms are bounded by the request's vote instead, so an
 * entry with a far term is dropped as not well formed.
 */
/* A membership with node addresses: round trip, the bytes a membership without
 * them always had, every malformed address section refused, and a change
 * keeping the addresses of the nodes that stay. */
static void test_membership_addrs(void **state)
{
	(void)state;
	struct lcr_membership m = { .n_configs = 1 }, d;
	uint8_t b[LCR_MEMBERSHIP_BYTES_MAX];
	char why[160];

	m.configs[0].n = 3;
	m.configs[0].ids[0] = 1, m.configs[0].ids[1] = 2, m.configs[0].ids[2] = 3;
	size_t plain = lcr_membership_encode(&m, b, sizeof(b));
	assert_int_equal(plain, 4 + 4 + 12 + 4); /* no address section at all */
	m.learners[m.n_learners++] = 4;
	m.addrs[0].id = 4;
	strcpy(m.addrs[0].addr, "[::1]:7004");
	m.n_addrs = 1;
	size_t n = lcr_membership_encode(&m, b, sizeof(b));
	assert_int_equal(n, 4 + 4 + 12 + 4 + 4 + 4 + 4 + 1 + 10);
	assert_int_equal(lcr_membership_decode(b, n, &d), 0);
	assert_string_equal(lcr_membership_addr(&d, 4), "[::1]:7004");
	assert_null(lcr_membership_addr(&d, 1));
	/* Truncated anywhere in the addresses, or a byte left over. */
	for (size_t k = plain + 4 + 1; k < n; k++)
		assert_int_equal(lcr_membership_decode(b, k, &d), -EINVAL);
	assert_int_equal(lcr_membership_decode(b, n + 1, &d), -EINVAL);
	/* A section with no address, a zero or 64-byte length. */
	uint8_t c[sizeof(b)];
	memcpy(c, b, n);
	memset(c + plain + 4, 0, 4);
	assert_int_equal(lcr_membership_decode(c, n, &d), -EINVAL);
	memcpy(c, b, n);
	c[plain + 4 + 4 + 4] = 0;
	assert_int_equal(lcr_membership_decode(c, n, &d), -EINVAL);
	c[plain + 4 + 4 + 4] = 64;
	assert_int_equal(lcr_membership_decode(c, n, &d), -EINVAL);
	/* A NUL or a space in it; an address for a node that is not a member. */
	memcpy(c, b, n);
	c[n - 3] = 0;
	assert_int_equal(lcr_membership_decode(c, n, &d), -EINVAL);
	c[n - 3] = ' ';
	assert_int_equal(lcr_membership_decode(c, n, &d), -EINVAL);
	m.addrs[0].id = 5;
	assert_int_equal(lcr_membership_validate(&m, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "not a member"));
	m.addrs[0].id = 4;
	m.addrs[1] = m.addrs[0];
	m.n_addrs = 2;
	assert_int_equal(lcr_membership_validate(&m, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "two addresses"));
	m.n_addrs = 1;
	/* Keep: a target naming no address keeps node 4's; node 3's goes
	 * with node 3. */
	struct lcr_membership t = { .n_configs = 1 };
	t.configs[0].n = 3;
	t.configs[0].ids[0] = 1, t.configs[0].ids[1] = 2, t.configs[0].ids[2] = 4;
	m.addrs[1].id = 3;
	strcpy(m.addrs[1].addr, "10.0.0.3:7001");
	m.n_addrs = 2;
	lcr_membership_keep_addrs(&t, &m);
	assert_int_equal(t.n_addrs, 1);
	assert_string_equal(lcr_membership_addr(&t, 4), "[::1]:7004");
	assert_null(lcr_membership_addr(&t, 3));
	assert_int_equal(lcr_membership_validate(&t, why, sizeof(why)), 0);
	/* The largest membership fits the bound. */
	struct lcr_membership big = { .n_configs = 2 };
	for (uint32_t i = 0; i < LCR_NODES_MAX; i++) {
		big.configs[i % 2].ids[big.configs[i % 2].n++] = i + 1;
		big.addrs[i].id = i + 1;
		memset(big.addrs[i].addr, 'a', LCR_NODE_ADDR_MAX - 1);
	}
	big.n_addrs = LCR_NODES_MAX;
	assert_int_equal(lcr_membership_validate(&big, why, sizeof(why)), 0);
	n = lcr_membership_encode(&big, b, sizeof(b));
	assert_true(n > 0 && n <= LCR_MEMBERSHIP_BYTES_MAX);
	assert_int_equal(lcr_membership_decode(b, n, &d), 0);
}

static void test_every_field_bounded(void **state)
{
#define F(t, field, far)                                                                           \
	{                                                                                          \
		t, offsetof(struct lcr_msg, field), #field, far                                    \
	}
	static const struct {
		uint32_t type;
		size_t off; /* of a uint64_t term or index */
		const char *name;
		bool term; /* a term (else an index, which may be far ahead) */
	} fields[] = {
		F(LCR_MSG_VOTE_REQ, vote_req.vote.lid.term, true),
		F(LCR_MSG_VOTE_REQ, vote_req.last_log_id.lid.term, true),
		F(LCR_MSG_VOTE_REQ, vote_req.last_log_id.index, false),
		F(LCR_MSG_VOTE_REQ, vote_req.transfer_from.lid.term, true),
		F(LCR_MSG_VOTE_RESP, vote_resp.vote.lid.term, true),
		F(LCR_MSG_VOTE_RESP, vote_resp.req_vote.lid.term, true),
		F(LCR_MSG_VOTE_RESP, vote_resp.last_log_id.lid.term, true),
		F(LCR_MSG_VOTE_RESP, vote_resp.last_log_id.index, false),
		F(LCR_MSG_APPEND_REQ, append_req.vote.lid.term, true),
		F(LCR_MSG_APPEND_REQ, append_req.prev.lid.term, true),
		F(LCR_MSG_APPEND_REQ, append_req.prev.index, false),
		F(LCR_MSG_APPEND_REQ, append_req.leader_commit.lid.term, true),
		F(LCR_MSG_APPEND_REQ, append_req.leader_commit.index, false),
		F(LCR_MSG_APPEND_RESP, append_resp.vote.lid.term, true),
		F(LCR_MSG_APPEND_RESP, append_resp.log_id.lid.term, true),
		F(LCR_MSG_APPEND_RESP, append_resp.log_id.index, false),
		F(LCR_MSG_TRANSFER_LEADER, transfer.from_leader.lid.term, true),
		F(LCR_MSG_TRANSFER_LEADER, transfer.last_log_id.lid.term, true),
		F(LCR_MSG_TRANSFER_LEADER, transfer.last_log_id.index, false),
	};
#undef F
	struct lcr_core_status st;
	struct lcr_entry e;
	struct lcr_msg m;
	(void)state;

	for (uint32_t type = LCR_MSG_VOTE_REQ; type <= LCR_MSG_TRANSFER_LEADER; type++) {
		m = plain_msg(type, &e);
		feed(&m, &st);
		assert_int_equal(st.dropped_msgs + st.far_terms, 0);
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const uint64_t bad[2] = { LCR_NUMBER_MAX, 7 + LCR_TERM_JUMP_MAX + 1 };
		for (int b = 0; b < (fields[i].term ? 2 : 1); b++) {
			m = plain_msg(fields[i].type, &e);
			memcpy((char *)&m + fields[i].off, &bad[b], sizeof(bad[b]));
			feed(&m, &st);
			bool far = b == 1;
			if (st.dropped_msgs != (uint64_t)!far || st.far_terms != (uint64_t)far)
				fail_msg("%s = %llu: dropped %llu, far %llu", fields[i].name,
					 (unsigned long long)bad[b],
					 (unsigned long long)st.dropped_msgs,
					 (unsigned long long)st.far_terms);
		}
	}
	/* The entries: ids at 2^62 dropped, a term above the vote's dropped too. */
	const uint64_t bad_entry[3][2] = { { LCR_NUMBER_MAX, 1 },
					   { 7 + LCR_TERM_JUMP_MAX + 1, 1 },
					   { 7, LCR_NUMBER_MAX } };
	for (int b = 0; b < 3; b++) {
		m = plain_msg(LCR_MSG_APPEND_REQ, &e);
		e.id = lid(bad_entry[b][0], 3, bad_entry[b][1]);
		feed(&m, &st);
		assert_int_equal(st.dropped_msgs, 1);
		assert_int_equal(st.far_terms, 0);
	}
}

/* Durable state out of range is refused at start, not taken in. */
static void test_restore_out_of_range_refused(void **state)
{
	struct lcr_core_config cfg;
	struct lcr_core *c;
	(void)state;

	lcr_core_config_default(&cfg, 1);
	cfg.membership.n_configs = 1;
	cfg.membership.configs[0].n = 1;
	cfg.membership.configs[0].ids[0] = 1;
	struct lcr_core_restore rs = { .vote = { { LCR_NUMBER_MAX, 1 }, false } };
	assert_int_equal(lcr_core_new(&c, &cfg, &rs), -EINVAL);
	rs = (struct lcr_core_restore){ .committed = lid(1, 1, LCR_NUMBER_MAX) };
	assert_int_equal(lcr_core_new(&c, &cfg, &rs), -EINVAL);
	rs = (struct lcr_core_restore){ .purged = lid(LCR_NUMBER_MAX, 1, 3) };
	assert_int_equal(lcr_core_new(&c, &cfg, &rs), -EINVAL);
	rs = (struct lcr_core_restore){ { { 0, 0 }, false } };
	assert_int_equal(lcr_core_new(&c, &cfg, &rs), 0);
	assert_int_equal(lcr_core_load_log_id(c, lid(LCR_NUMBER_MAX, 1, 1)), -EINVAL);
	assert_int_equal(lcr_core_load_log_id(c, lid(1, 1, 1)), 0);
	lcr_core_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_ids_runs_and_lookup),
		cmocka_unit_test(test_log_ids_purged_base),
		cmocka_unit_test(test_quorum_single_and_joint),
		cmocka_unit_test(test_config_validation_names_the_option),
		cmocka_unit_test(test_vote_and_log_id_order),
		cmocka_unit_test(test_restart_loads_log_and_restores),
		cmocka_unit_test(test_restore_commit_hint_not_in_log_ignored),
		cmocka_unit_test(test_full_run_table_does_not_spin),
		cmocka_unit_test(test_io_failure_stops_replica),
		cmocka_unit_test(test_far_term_refused),
		cmocka_unit_test(test_term_exhausted_refuses_to_campaign),
		cmocka_unit_test(test_restore_out_of_range_refused),
		cmocka_unit_test(test_bad_entries_dropped),
		cmocka_unit_test(test_bad_proposals_refused),
		cmocka_unit_test(test_every_field_bounded),
		cmocka_unit_test(test_membership_addrs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
