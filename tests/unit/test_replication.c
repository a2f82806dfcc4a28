/* The leader: pipelined streams, Conflict and HigherVote, commit = quorum of flushed, CheckQuorum,
 * #1500. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "harness.h"

static struct th_cluster cl;

static void small_pipeline(struct lcr_core_config *cfg)
{
	cfg->max_payload_entries = 2;
	cfg->inflight_max = 3;
}

static int setup(void **state)
{
	(void)state;
	th_init(&cl, 3, small_pipeline);
	th_elect(&cl, 1);
	th_run(&cl, 10000);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	th_free(&cl);
	return 0;
}

static uint32_t queued_appends_to(uint32_t to, uint32_t *entries)
{
	uint32_t n = 0;
	*entries = 0;
	for (uint32_t i = 0; i < cl.q_len; i++) {
		const struct lcr_msg *m = &cl.q[(cl.q_head + i) % TH_MSGS_MAX].m;
		if (m->type == LCR_MSG_APPEND_REQ && m->to == to && m->append_req.n_entries) {
			n++;
			*entries += m->append_req.n_entries;
		}
	}
	return n;
}

static void test_stream_pipelines_up_to_window(void **state)
{
	(void)state;
	uint32_t entries;
	assert_int_equal(th_propose(&cl, 1, 20, 1), 0);
	/* Three requests of two entries go out before any reply. */
	assert_int_equal(queued_appends_to(2, &entries), 3);
	assert_int_equal(entries, 6);
	th_run(&cl, 100000);
	struct lcr_core_status st = th_status(&cl, 1);
	assert_int_equal(st.committed.index, 21);
	assert_int_equal(th_status(&cl, 2).last.index, 21);
	/* Followers learn the last commit point from the next heartbeat. */
	assert_true(th_node(&cl, 3)->applied.index < 21);
	th_advance(&cl, 60 * MS);
	assert_int_equal(th_node(&cl, 3)->applied.index, 21);
}

static void test_commit_needs_quorum_of_flushed(void **state)
{
	(void)state;
	th_node(&cl, 2)->auto_flush = false;
	th_node(&cl, 3)->auto_flush = false;
	th_propose(&cl, 1, 1, 2);
	th_run(&cl, 10000);
	/* Leader flushed, followers received but did not flush: no commit. */
	assert_int_equal(th_status(&cl, 1).committed.index, 1);
	assert_int_equal(th_status(&cl, 2).last.index, 2);
	th_flush(&cl, th_node(&cl, 2));
	th_run(&cl, 10000);
	assert_int_equal(th_status(&cl, 1).committed.index, 2);
}

static void test_leader_commits_without_own_flush(void **state)
{
	(void)state;
	/* The leader appends in parallel: two durable followers are a quorum. */
	th_node(&cl, 1)->auto_flush = false;
	th_propose(&cl, 1, 1, 3);
	th_run(&cl, 10000);
	assert_int_equal(th_status(&cl, 1).committed.index, 2);
	assert_int_equal(th_status(&cl, 1).flushed.index, 1);
}

static struct lcr_core_status leader_matching(uint32_t follower, struct lcr_log_id *m)
{
	struct lcr_core_status st = th_status(&cl, 1);
	for (uint32_t i = 0; i < st.n_nodes; i++)
		if (st.nodes[i] == follower)
			*m = st.matching[i];
	return st;
}

static uint64_t stream_of(uint32_t to)
{
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_HEARTBEAT };
	uint64_t sid = 0;
	th_step(&cl, th_node(&cl, 1), &ev);
	for (uint32_t i = 0; i < cl.q_len; i++) {
		const struct lcr_msg *m = &cl.q[(cl.q_head + i) % TH_MSGS_MAX].m;
		if (m->type == LCR_MSG_APPEND_REQ && m->to == to)
			sid = m->append_req.stream_id;
	}
	th_run(&cl, 10000);
	return sid;
}

static void resp_from(uint32_t from, uint32_t result, struct lcr_log_id id, uint64_t stream,
		      uint64_t inflight)
{
	struct lcr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_APPEND_RESP;
	m.from = from;
	m.to = 1;
	m.append_resp.result = result;
	m.append_resp.vote = th_status(&cl, 1).vote;
	m.append_resp.log_id = id;
	m.append_resp.stream_id = stream;
	m.append_resp.inflight_id = inflight;
	m.append_resp.send_ns = cl.now;
	struct lcr_event ev = { .type = LCR_EV_MSG, .msg = &m };
	th_step(&cl, th_node(&cl, 1), &ev);
}

static void test_stream_conflict_restarts_stream_and_probes(void **state)
{
	(void)state;
	th_propose(&cl, 1, 10, 4);
	th_run(&cl, 100000);
	uint64_t sid = stream_of(2);
	struct lcr_log_id m;
	leader_matching(2, &m);
	assert_int_equal(m.index, 11);
	/* A Conflict above matching on the current stream: new stream, resend
	 * from the match. Replies on the old stream are then stale. */
	struct lcr_log_id prev = { { 1, 1 }, 12 };
	th_propose(&cl, 1, 2, 5);
	cl.q_len = 0; /* lose what was sent */
	resp_from(2, LCR_APPEND_CONFLICT, prev, sid, 5);
	uint64_t sid2 = 0;
	for (uint32_t i = 0; i < cl.q_len; i++) {
		const struct lcr_msg *q = &cl.q[(cl.q_head + i) % TH_MSGS_MAX].m;
		if (q->type == LCR_MSG_APPEND_REQ && q->to == 2) {
			sid2 = q->append_req.stream_id;
			assert_int_equal(q->append_req.prev.index, 11);
		}
	}
	assert_true(sid2 != 0 && sid2 != sid);
	uint64_t stale = th_status(&cl, 1).stale_msgs;
	resp_from(2, LCR_APPEND_CONFLICT, prev, sid, 6);
	assert_int_equal(th_status(&cl, 1).stale_msgs, stale + 1);
	th_run(&cl, 100000);
	assert_int_equal(th_status(&cl, 1).committed.index, 13);
}

static void test_heartbeat_prev_is_matching_not_committed(void **state)
{
	(void)state;
	/* Issue #1500: follower 3 lags; its heartbeat must carry its matching. */
	cl.cut[1][3] = true;
	th_propose(&cl, 1, 5, 6);
	th_run(&cl, 100000);
	assert_int_equal(th_status(&cl, 1).committed.index, 6);
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_HEARTBEAT };
	cl.cut[1][3] = false;
	th_step(&cl, th_node(&cl, 1), &ev);
	struct lcr_log_id m3 = { { 0, 0 }, 0 };
	leader_matching(3, &m3);
	bool seen = false;
	for (uint32_t i = 0; i < cl.q_len; i++) {
		const struct lcr_msg *q = &cl.q[(cl.q_head + i) % TH_MSGS_MAX].m;
		if (q->type == LCR_MSG_APPEND_REQ && q->to == 3 && q->append_req.n_entries == 0) {
			assert_true(lcr_log_id_eq(q->append_req.prev, m3));
			assert_int_equal(q->append_req.prev.index, 1);
			seen = true;
		}
	}
	assert_true(seen);
	/* A delayed Ok for the old matching after catch-up is no reversion. */
	th_run(&cl, 100000);
	th_advance(&cl, 60 * MS);
	leader_matching(3, &m3);
	assert_int_equal(m3.index, 6);
	struct lcr_log_id old = { { 1, 1 }, 1 };
	resp_from(3, LCR_APPEND_OK, old, stream_of(3), 0);
	leader_matching(3, &m3);
	assert_int_equal(m3.index, 6);
	assert_int_equal(th_status(&cl, 1).reversions, 0);
}

static void test_conflict_below_matching_is_reversion(void **state)
{
	(void)state;
	th_propose(&cl, 1, 3, 7);
	th_run(&cl, 100000);
	uint64_t sid = stream_of(2);
	struct lcr_log_id m2 = { { 0, 0 }, 0 }, prev = { { 1, 1 }, 2 };
	leader_matching(2, &m2);
	resp_from(2, LCR_APPEND_CONFLICT, prev, sid, 0);
	struct lcr_log_id after = { { 0, 0 }, 0 };
	leader_matching(2, &after);
	/* Not allowed by default: counted, matching kept. */
	assert_int_equal(th_status(&cl, 1).reversions, 1);
	assert_true(lcr_log_id_eq(after, m2));
}

static void test_check_quorum_rejects_writes_keeps_pending(void **state)
{
	(void)state;
	/* A write in flight when the leader is cut off survives. */
	th_node(&cl, 2)->auto_flush = false;
	th_node(&cl, 3)->auto_flush = false;
	assert_int_equal(th_propose(&cl, 1, 1, 8), 0);
	th_run(&cl, 10000);
	for (uint32_t i = 1; i <= 3; i++)
		cl.cut[i][1] = true;
	th_advance(&cl, 301 * MS);
	/* No quorum heard within the lease: new writes refused, no step-down. */
	assert_int_equal(th_propose(&cl, 1, 1, 9), -LCR_ENOLEASE);
	assert_int_equal(th_status(&cl, 1).role, LCR_ROLE_LEADER);
	for (uint32_t i = 1; i <= 3; i++)
		cl.cut[i][1] = false;
	th_node(&cl, 2)->auto_flush = true;
	th_node(&cl, 3)->auto_flush = true;
	th_advance(&cl, 60 * MS);
	assert_int_equal(th_status(&cl, 1).committed.index, 2);
	assert_int_equal(th_propose(&cl, 1, 1, 10), 0);
}

static void test_propose_on_follower_is_refused(void **state)
{
	(void)state;
	assert_int_equal(th_propose(&cl, 2, 1, 11), -LCR_ENOTLEADER);
	assert_int_equal(th_status(&cl, 2).leader, 1);
}

static void test_transfer_forwards_writes(void **state)
{
	(void)state;
	cl.cut[1][3] = true; /* the target never hears of it: transfer stays pending */
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_TRANSFER, .transfer_to = 3 };
	th_step(&cl, th_node(&cl, 1), &ev);
	assert_int_equal(th_propose(&cl, 1, 1, 12), -LCR_ETRANSFER);
	assert_true(th_status(&cl, 1).transferring);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stream_pipelines_up_to_window, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_commit_needs_quorum_of_flushed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_leader_commits_without_own_flush, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stream_conflict_restarts_stream_and_probes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_prev_is_matching_not_committed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict_below_matching_is_reversion, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_check_quorum_rejects_writes_keeps_pending,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_propose_on_follower_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_transfer_forwards_writes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
