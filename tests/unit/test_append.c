/* AppendEntries on a follower: every prev/conflict/truncate case (openraft t11_append_conflicts).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "harness.h"

static struct th_cluster cl;

static struct lcr_log_id lid(uint64_t term, uint32_t node, uint64_t index)
{
	struct lcr_log_id id = { { term, node }, index };
	return id;
}

static struct lcr_vote cvote(uint64_t term, uint32_t node)
{
	struct lcr_vote v = { { term, node }, true };
	return v;
}

/* The follower under test is node 2; messages it sends wait in the queue. */
static struct lcr_entry ents[16];

static void send_append(struct lcr_vote vote, struct lcr_log_id prev, struct lcr_log_id commit,
			const struct lcr_log_id *ids, uint32_t n)
{
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_APPEND_REQ;
	m.from = vote.lid.node;
	m.to = 2;
	m.append_req.vote = vote;
	m.append_req.prev = prev;
	m.append_req.leader_commit = commit;
	m.append_req.stream_id = 7;
	m.append_req.inflight_id = 1;
	m.append_req.n_entries = n;
	for (uint32_t i = 0; i < n; i++) {
		ents[i].id = ids[i];
		ents[i].type = LCR_ENTRY_NORMAL;
		ents[i].len = 0;
	}
	m.append_req.entries = ents;
	struct lcr_event ev = { .type = LCR_EV_MSG, .msg = &m };
	th_step(&cl, th_node(&cl, 2), &ev);
}

/* Pop the last message node 2 sent (the queue is otherwise drained). */
static struct lcr_msg last_sent(void)
{
	struct lcr_msg m;
	assert_true(cl.q_len > 0);
	m = cl.q[(cl.q_head + cl.q_len - 1) % TH_MSGS_MAX].m;
	cl.q_head = 0;
	cl.q_len = 0;
	return m;
}

static void assert_log(const struct lcr_log_id *want, uint64_t n)
{
	struct th_node *nd = th_node(&cl, 2);
	assert_int_equal(nd->n, n);
	for (uint64_t i = 0; i < n; i++)
		assert_true(lcr_log_id_eq(nd->log[i].id, want[i]));
	struct lcr_core_status st = th_status(&cl, 2);
	assert_int_equal(st.last.index, n);
}

static int setup(void **state)
{
	(void)state;
	th_init(&cl, 3, NULL);
	th_node(&cl, 2)->auto_flush = false;
	/* Node 2 holds 1-1.1, 1-1.2, 1-1.3 from leader (1, node 1). */
	struct lcr_log_id ids[3] = { lid(1, 1, 1), lid(1, 1, 2), lid(1, 1, 3) };
	send_append(cvote(1, 1), lcr_log_id_none(), lcr_log_id_none(), ids, 3);
	th_flush(&cl, th_node(&cl, 2));
	struct lcr_msg r = last_sent();
	assert_int_equal(r.type, LCR_MSG_APPEND_RESP);
	assert_int_equal(r.append_resp.result, LCR_APPEND_OK);
	assert_true(lcr_log_id_eq(r.append_resp.log_id, lid(1, 1, 3)));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	th_free(&cl);
	return 0;
}

static void test_append_ack_waits_for_flush(void **state)
{
	(void)state;
	struct lcr_log_id ids[1] = { lid(1, 1, 4) };
	send_append(cvote(1, 1), lid(1, 1, 3), lcr_log_id_none(), ids, 1);
	assert_int_equal(cl.q_len, 0); /* nothing acknowledged before the flush */
	th_flush(&cl, th_node(&cl, 2));
	struct lcr_msg r = last_sent();
	assert_int_equal(r.append_resp.result, LCR_APPEND_OK);
	assert_true(lcr_log_id_eq(r.append_resp.log_id, lid(1, 1, 4)));
	assert_int_equal(r.append_resp.stream_id, 7);
}

static void test_append_prev_beyond_last_conflicts_without_truncating(void **state)
{
	(void)state;
	send_append(cvote(1, 1), lid(1, 1, 5), lcr_log_id_none(), NULL, 0);
	struct lcr_msg r = last_sent();
	assert_int_equal(r.append_resp.result, LCR_APPEND_CONFLICT);
	assert_true(lcr_log_id_eq(r.append_resp.log_id, lid(1, 1, 5)));
	struct lcr_log_id want[3] = { lid(1, 1, 1), lid(1, 1, 2), lid(1, 1, 3) };
	assert_log(want, 3);
}

static void test_append_prev_mismatch_truncates_at_prev(void **state)
{
	(void)state;
	send_append(cvote(2, 3), lid(2, 3, 2), lcr_log_id_none(), NULL, 0);
	struct lcr_msg r = last_sent();
	assert_int_equal(r.append_resp.result, LCR_APPEND_CONFLICT);
	assert_true(lcr_log_id_eq(r.append_resp.log_id, lid(2, 3, 2)));
	struct lcr_log_id want[1] = { lid(1, 1, 1) };
	assert_log(want, 1);
}

static void test_append_truncates_only_at_first_mismatch(void **state)
{
	(void)state;
	struct lcr_log_id ids[2] = { lid(1, 1, 2), lid(2, 3, 3) };
	send_append(cvote(2, 3), lid(1, 1, 1), lcr_log_id_none(), ids, 2);
	struct lcr_log_id want[3] = { lid(1, 1, 1), lid(1, 1, 2), lid(2, 3, 3) };
	assert_log(want, 3);
	th_flush(&cl, th_node(&cl, 2));
	struct lcr_msg r = last_sent();
	assert_int_equal(r.append_resp.result, LCR_APPEND_OK);
	assert_true(lcr_log_id_eq(r.append_resp.log_id, lid(2, 3, 3)));
}

static void test_append_matching_entries_write_nothing(void **state)
{
	(void)state;
	struct th_node *nd = th_node(&cl, 2);
	struct lcr_io_id before = nd->io_last;
	struct lcr_log_id ids[2] = { lid(1, 1, 2), lid(1, 1, 3) };
	send_append(cvote(1, 1), lid(1, 1, 1), lcr_log_id_none(), ids, 2);
	assert_int_equal(nd->io_last.seq, before.seq); /* no new storage command */
	struct lcr_msg r = last_sent();
	assert_int_equal(r.append_resp.result, LCR_APPEND_OK);
	assert_true(lcr_log_id_eq(r.append_resp.log_id, lid(1, 1, 3)));
}

static void test_append_short_request_keeps_longer_log(void **state)
{
	(void)state;
	struct lcr_log_id ids[1] = { lid(1, 1, 1) };
	send_append(cvote(1, 1), lcr_log_id_none(), lcr_log_id_none(), ids, 1);
	struct lcr_log_id want[3] = { lid(1, 1, 1), lid(1, 1, 2), lid(1, 1, 3) };
	assert_log(want, 3);
	struct lcr_msg r = last_sent();
	/* Ok(max(prev, last entry)), not the follower's own last. */
	assert_true(lcr_log_id_eq(r.append_resp.log_id, lid(1, 1, 1)));
}

static void test_append_lower_vote_gets_higher_vote(void **state)
{
	(void)state;
	struct lcr_log_id ids[1] = { lid(2, 3, 4) };
	send_append(cvote(2, 3), lid(1, 1, 3), lcr_log_id_none(), ids, 1);
	th_flush(&cl, th_node(&cl, 2));
	last_sent();
	send_append(cvote(1, 1), lid(1, 1, 3), lcr_log_id_none(), NULL, 0);
	struct lcr_msg r = last_sent();
	assert_int_equal(r.append_resp.result, LCR_APPEND_HIGHER_VOTE);
	assert_true(lcr_vote_eq(r.append_resp.vote, cvote(2, 3)));
}

static void test_append_commit_limited_to_what_matched(void **state)
{
	(void)state;
	/* The leader has committed 1-1.3, but this request proves only 1-1.1. */
	struct lcr_log_id ids[1] = { lid(1, 1, 1) };
	send_append(cvote(1, 1), lcr_log_id_none(), lid(1, 1, 3), ids, 1);
	assert_int_equal(th_status(&cl, 2).committed.index, 1);
	send_append(cvote(1, 1), lid(1, 1, 3), lid(1, 1, 3), NULL, 0);
	assert_int_equal(th_status(&cl, 2).committed.index, 3);
	assert_int_equal(th_node(&cl, 2)->applied.index, 3);
}

static void test_append_malformed_is_dropped(void **state)
{
	(void)state;
	/* Entries not consecutive after prev. */
	struct lcr_log_id ids[2] = { lid(1, 1, 4), lid(1, 1, 6) };
	uint64_t dropped = th_status(&cl, 2).dropped_msgs;
	send_append(cvote(1, 1), lid(1, 1, 3), lcr_log_id_none(), ids, 2);
	assert_int_equal(cl.q_len, 0);
	assert_int_equal(th_status(&cl, 2).dropped_msgs, dropped + 1);
	assert_int_equal(th_node(&cl, 2)->n, 3);
}

static void test_append_conflict_below_commit_is_dropped(void **state)
{
	(void)state;
	/* Commit 1-1.3 here, then a "leader" claims a different entry at 2. */
	send_append(cvote(1, 1), lid(1, 1, 3), lid(1, 1, 3), NULL, 0);
	assert_int_equal(th_status(&cl, 2).committed.index, 3);
	last_sent();
	uint64_t dropped = th_status(&cl, 2).dropped_msgs;
	struct lcr_log_id ids[1] = { lid(5, 3, 2) };
	send_append(cvote(5, 3), lid(1, 1, 1), lcr_log_id_none(), ids, 1);
	send_append(cvote(5, 3), lid(5, 3, 2), lcr_log_id_none(), NULL, 0);
	/* Neither a forged entry nor a forged prev removes a committed entry. */
	assert_int_equal(th_status(&cl, 2).dropped_msgs, dropped + 2);
	struct lcr_log_id want[3] = { lid(1, 1, 1), lid(1, 1, 2), lid(1, 1, 3) };
	assert_log(want, 3);
}

static void small_runs(struct lcr_core_config *cfg)
{
	cfg->leader_runs_max = 16;
}

static void test_append_run_table_full_is_dropped(void **state)
{
	(void)state;
	th_free(&cl);
	th_init(&cl, 3, small_runs);
	th_node(&cl, 2)->auto_flush = false;
	/* 20 entries from 20 leaders need 20 runs: more than the table holds. */
	struct lcr_log_id ids[16];
	for (uint32_t i = 0; i < 16; i++)
		ids[i] = lid(i + 1, 1, i + 1);
	send_append(cvote(30, 1), lcr_log_id_none(), lcr_log_id_none(), ids, 16);
	assert_int_equal(th_status(&cl, 2).last.index, 16);
	struct lcr_log_id more[1] = { lid(20, 1, 17) };
	uint64_t dropped = th_status(&cl, 2).dropped_msgs;
	send_append(cvote(30, 1), lid(16, 1, 16), lcr_log_id_none(), more, 1);
	assert_int_equal(th_status(&cl, 2).dropped_msgs, dropped + 1);
	assert_int_equal(th_status(&cl, 2).last.index, 16);
	assert_int_equal(th_status(&cl, 2).role, LCR_ROLE_FOLLOWER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_ack_waits_for_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_append_prev_beyond_last_conflicts_without_truncating, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_prev_mismatch_truncates_at_prev, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_truncates_only_at_first_mismatch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_matching_entries_write_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_short_request_keeps_longer_log, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_lower_vote_gets_higher_vote, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_commit_limited_to_what_matched, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_malformed_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_conflict_below_commit_is_dropped, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_run_table_full_is_dropped, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
