/* Elections: up-to-date logs, leases, higher votes, Pre-Vote (openraft elect/ and append_entries/
 * tests). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "harness.h"

static struct th_cluster cl;

static struct lcr_vote transfer_from;

static void vote_req(uint32_t from, uint32_t to, uint64_t term, struct lcr_log_id last,
		     bool transfer, bool pre_vote)
{
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_VOTE_REQ;
	m.from = from;
	m.to = to;
	m.vote_req.vote.lid.term = term;
	m.vote_req.vote.lid.node = from;
	m.vote_req.last_log_id = last;
	m.vote_req.leadership_transfer = transfer;
	m.vote_req.transfer_from = transfer_from;
	m.vote_req.pre_vote = pre_vote;
	struct lcr_event ev = { .type = LCR_EV_MSG, .msg = &m };
	th_step(&cl, th_node(&cl, to), &ev);
}

/* Take the vote response node `from` queued (dropping everything else). */
static struct lcr_vote_resp take_vote_resp(uint32_t from)
{
	struct lcr_vote_resp r;
	bool found = false;

	th_flush(&cl, th_node(&cl, from));
	while (cl.q_len) {
		struct th_msg *qm = &cl.q[cl.q_head];
		if (qm->m.type == LCR_MSG_VOTE_RESP && qm->m.from == from) {
			r = qm->m.vote_resp;
			found = true;
		}
		cl.q_head = (cl.q_head + 1) % TH_MSGS_MAX;
		cl.q_len--;
	}
	assert_true(found);
	return r;
}

static void cut(uint32_t id, bool on)
{
	for (uint32_t i = 1; i <= cl.n; i++) {
		cl.cut[id][i] = on;
		cl.cut[i][id] = on;
	}
}

static int setup3(void **state)
{
	(void)state;
	th_init(&cl, 3, NULL);
	return 0;
}

static void pre_vote_on(struct lcr_core_config *cfg)
{
	cfg->enable_pre_vote = true;
}

static int setup3_prevote(void **state)
{
	(void)state;
	th_init(&cl, 3, pre_vote_on);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	th_free(&cl);
	return 0;
}

static void test_elect_first_leader_commits_blank(void **state)
{
	(void)state;
	th_elect(&cl, 1);
	struct lcr_core_status st = th_status(&cl, 1);
	assert_int_equal(st.role, LCR_ROLE_LEADER);
	assert_int_equal(st.vote.lid.term, 1);
	assert_true(st.vote.committed);
	assert_int_equal(st.noop.index, 1);
	assert_int_equal(st.committed.index, 1);
	assert_int_equal(th_status(&cl, 2).leader, 1);
	assert_int_equal(th_node(&cl, 3)->log[0].type, LCR_ENTRY_BLANK);
}

static void test_elect_self_vote_waits_for_flush(void **state)
{
	(void)state;
	/* A candidate asks for votes only once its own vote is durable: a
	 * candidate that crashed with requests out and its vote lost could run
	 * again for the same leader id. */
	th_node(&cl, 1)->auto_flush = false;
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_ELECT };
	th_step(&cl, th_node(&cl, 1), &ev);
	assert_int_equal(th_status(&cl, 1).role, LCR_ROLE_CANDIDATE);
	assert_int_equal(cl.q_len, 0); /* no request went out */
	th_run(&cl, 1000);
	assert_int_equal(th_status(&cl, 1).role, LCR_ROLE_CANDIDATE);
	th_flush(&cl, th_node(&cl, 1));
	assert_true(cl.q_len >= 2);
	th_run(&cl, 1000);
	assert_int_equal(th_status(&cl, 1).role, LCR_ROLE_LEADER);
}

static void test_elect_restart_cannot_reuse_leader_id(void **state)
{
	(void)state;
	/* Node 1 wins term 1, so its vote was durable before anyone granted:
	 * a restart from disk keeps it, and the next election uses term 2. */
	th_elect(&cl, 1);
	assert_int_equal(th_node(&cl, 1)->vote.lid.term, 1);
	struct lcr_core_config cfg;
	th_config(&cfg, 1, 3);
	struct lcr_core_restore rs = { .vote = th_node(&cl, 1)->vote };
	struct lcr_core *c;
	assert_int_equal(lcr_core_new(&c, &cfg, &rs), 0);
	for (uint64_t i = 1; i <= th_node(&cl, 1)->n; i++)
		assert_int_equal(lcr_core_load_log_id(c, th_node(&cl, 1)->log[i - 1].id), 0);
	lcr_core_free(th_node(&cl, 1)->core);
	th_node(&cl, 1)->core = c;
	lcr_core_start(c, cl.now);
	th_process(&cl, th_node(&cl, 1));
	th_advance(&cl, 700 * MS);
	th_elect(&cl, 1);
	assert_true(th_status(&cl, 1).vote.lid.term >= 2);
}

static void test_vote_needs_up_to_date_log(void **state)
{
	(void)state;
	th_elect(&cl, 1);
	th_propose(&cl, 1, 3, 0xaa);
	th_run(&cl, 10000);
	/* Node 2 has 1-1.4 as last. A candidate with a shorter log is refused. */
	th_advance(&cl, 700 * MS); /* let the lease run out: heartbeats stop below */
	struct lcr_event off = { .type = LCR_EV_SET_TOGGLE };
	off.toggle.toggle = LCR_TOGGLE_HEARTBEAT;
	off.toggle.on = false;
	th_step(&cl, th_node(&cl, 1), &off);
	th_advance(&cl, 400 * MS);
	struct lcr_log_id shorter = { { 1, 1 }, 2 };
	vote_req(3, 2, 5, shorter, false, false);
	struct lcr_vote_resp r = take_vote_resp(2);
	assert_false(r.granted);
	assert_int_equal(r.last_log_id.index, 4);
	assert_int_equal(th_status(&cl, 2).vote.lid.term, 1); /* unchanged */
	/* Equal log: granted, and persisted before the reply. */
	struct lcr_log_id equal = { { 1, 1 }, 4 };
	th_node(&cl, 2)->auto_flush = false;
	vote_req(3, 2, 5, equal, false, false);
	assert_int_equal(cl.q_len, 0); /* waits for the vote to be durable */
	r = take_vote_resp(2);
	assert_true(r.granted);
	assert_int_equal(th_node(&cl, 2)->vote.lid.term, 5);
}

static void test_vote_rejected_during_lease(void **state)
{
	(void)state;
	th_elect(&cl, 1);
	th_advance(&cl, 20 * MS);
	struct lcr_log_id last = th_status(&cl, 2).last;
	/* A follower that heard from its leader within the lease refuses. */
	vote_req(3, 2, 9, last, false, false);
	struct lcr_vote_resp r = take_vote_resp(2);
	assert_false(r.granted);
	assert_int_equal(th_status(&cl, 2).vote.lid.term, 1);
	/* A transfer from some other leader does not lift the promise... */
	transfer_from.lid.term = 0;
	transfer_from.lid.node = 3;
	transfer_from.committed = true;
	vote_req(3, 2, 9, last, true, false);
	r = take_vote_resp(2);
	assert_false(r.granted);
	/* ...one from the leader we promised does. */
	transfer_from = th_status(&cl, 2).vote;
	vote_req(3, 2, 9, last, true, false);
	r = take_vote_resp(2);
	transfer_from = (struct lcr_vote){ { 0, 0 }, false };
	assert_true(r.granted);
	assert_int_equal(th_status(&cl, 2).vote.lid.term, 9);
}

static void test_adopted_own_higher_vote_ends_candidacy(void **state)
{
	(void)state;
	/* Candidate 1 (term 1) hears a rejection carrying {2, node 1}: a vote
	 * naming us from an older round. It adopts it and stops being the
	 * candidate of term 1 instead of tripping over it later. */
	cut(1, true);
	th_elect(&cl, 1);
	assert_int_equal(th_status(&cl, 1).role, LCR_ROLE_CANDIDATE);
	struct lcr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_VOTE_RESP;
	m.from = 2;
	m.to = 1;
	m.vote_resp.vote.lid.term = 2;
	m.vote_resp.vote.lid.node = 1;
	m.vote_resp.req_vote = th_status(&cl, 1).vote;
	struct lcr_event ev = { .type = LCR_EV_MSG, .msg = &m };
	th_step(&cl, th_node(&cl, 1), &ev);
	/* Grants for the old candidacy now change nothing. */
	m.from = 3;
	m.vote_resp.vote = m.vote_resp.req_vote;
	m.vote_resp.granted = true;
	th_step(&cl, th_node(&cl, 1), &ev);
	m.from = 2;
	th_step(&cl, th_node(&cl, 1), &ev);
	assert_true(th_status(&cl, 1).role != LCR_ROLE_LEADER);
}

static void test_vote_granted_after_lease_expires(void **state)
{
	(void)state;
	th_elect(&cl, 1);
	cut(1, true);
	th_advance(&cl, 100 * MS);
	struct lcr_log_id last = th_status(&cl, 2).last;
	vote_req(3, 2, 9, last, false, false);
	assert_false(take_vote_resp(2).granted);
	th_advance(&cl, 301 * MS); /* leader_lease = election_timeout_max */
	vote_req(3, 2, 9, last, false, false);
	assert_true(take_vote_resp(2).granted);
}

static void test_leader_steps_down_on_higher_vote(void **state)
{
	(void)state;
	th_elect(&cl, 1);
	th_propose(&cl, 1, 1, 1);
	th_run(&cl, 10000);
	/* Node 2 elects itself with a transfer flag; node 1 sees its vote. */
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_TRANSFER, .transfer_to = 2 };
	th_step(&cl, th_node(&cl, 1), &ev);
	th_run(&cl, 10000);
	assert_int_equal(th_status(&cl, 2).role, LCR_ROLE_LEADER);
	assert_int_equal(th_status(&cl, 1).role, LCR_ROLE_FOLLOWER);
	assert_int_equal(th_status(&cl, 1).leader, 2);
	assert_int_equal(th_status(&cl, 1).vote.lid.term, 2);
}

static void test_higher_vote_in_append_resp_steps_down(void **state)
{
	(void)state;
	th_elect(&cl, 1);
	/* Learn the stream of this leadership from a heartbeat to node 3. */
	struct lcr_event hb = { .type = LCR_EV_TRIGGER_HEARTBEAT };
	th_step(&cl, th_node(&cl, 1), &hb);
	uint64_t sid = 0;
	for (uint32_t i = 0; i < cl.q_len; i++) {
		const struct lcr_msg *q = &cl.q[(cl.q_head + i) % TH_MSGS_MAX].m;
		if (q->type == LCR_MSG_APPEND_REQ && q->to == 3)
			sid = q->append_req.stream_id;
	}
	th_run(&cl, 10000);
	struct lcr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_APPEND_RESP;
	m.from = 3;
	m.to = 1;
	m.append_resp.result = LCR_APPEND_HIGHER_VOTE;
	m.append_resp.vote.lid.term = 7;
	m.append_resp.vote.lid.node = 3;
	m.append_resp.vote.committed = true;
	m.append_resp.stream_id = sid + 1000; /* not a stream of this leadership */
	struct lcr_event ev0 = { .type = LCR_EV_MSG, .msg = &m };
	th_step(&cl, th_node(&cl, 1), &ev0);
	assert_int_equal(th_status(&cl, 1).role, LCR_ROLE_LEADER);
	m.append_resp.stream_id = 0; /* a stream from before this leadership */
	th_step(&cl, th_node(&cl, 1), &ev0);
	assert_int_equal(th_status(&cl, 1).role, LCR_ROLE_LEADER);
	m.append_resp.stream_id = sid;
	uint64_t rid;
	assert_int_equal(lcr_core_read(th_node(&cl, 1)->core, cl.now, LCR_READ_INDEX, &rid), 0);
	th_process(&cl, th_node(&cl, 1));
	struct lcr_event ev = { .type = LCR_EV_MSG, .msg = &m };
	th_step(&cl, th_node(&cl, 1), &ev);
	struct lcr_core_status st = th_status(&cl, 1);
	assert_int_equal(st.role, LCR_ROLE_FOLLOWER);
	/* Adopted in uncommitted form: a vote is not a leader we heard from. */
	assert_int_equal(st.vote.lid.term, 7);
	assert_false(st.vote.committed);
	/* Pending reads fail on step-down. */
	assert_int_equal(th_node(&cl, 1)->reads_failed_last, rid);
	assert_int_equal(th_node(&cl, 1)->reads_failed_err, -LCR_ENOTLEADER);
}

static void test_pre_vote_keeps_isolated_term(void **state)
{
	(void)state;
	th_elect(&cl, 1);
	th_run(&cl, 10000);
	cut(3, true);
	th_advance(&cl, 3000 * MS);
	/* Isolated node 3 ran Pre-Vote rounds only: its term did not move. */
	assert_int_equal(th_status(&cl, 3).vote.lid.term, 1);
	assert_true(th_status(&cl, 3).elections == 0);
	cut(3, false);
	th_advance(&cl, 200 * MS);
	/* Rejoining does not disturb the leader. */
	assert_int_equal(th_status(&cl, 1).role, LCR_ROLE_LEADER);
	assert_int_equal(th_status(&cl, 1).vote.lid.term, 1);
	assert_int_equal(th_status(&cl, 3).leader, 1);
}

static void test_without_pre_vote_isolated_term_grows(void **state)
{
	(void)state;
	th_elect(&cl, 1);
	th_run(&cl, 10000);
	cut(3, true);
	th_advance(&cl, 3000 * MS);
	/* The control: plain Raft inflates the isolated node's term. */
	assert_true(th_status(&cl, 3).vote.lid.term > 3);
}

static void test_pre_vote_grant_needs_lease_expired(void **state)
{
	(void)state;
	th_elect(&cl, 1);
	th_advance(&cl, 20 * MS);
	struct lcr_log_id last = th_status(&cl, 2).last;
	vote_req(3, 2, 2, last, false, true);
	struct lcr_vote_resp r = take_vote_resp(2);
	assert_true(r.pre_vote);
	assert_false(r.granted);
	/* Pre-Vote persists nothing: no vote change, no storage command. */
	assert_int_equal(th_status(&cl, 2).vote.lid.term, 1);
}

/*
 * A node refused for a shorter log waits smaller_log_timeout longer before
 * its next election, to let the voter with the greater log win. Once it has
 * caught up, the wait is over: here node 3 was refused, caught up, and then
 * holds the longest log when the leader goes silent; node 2, behind, cannot
 * win. Node 3 must campaign after its plain election timeout (it did only
 * after another 600 ms, while the penalty lasted until its timer fired).
 */
static void test_greater_log_wait_ends_when_caught_up(void **state)
{
	(void)state;
	th_elect(&cl, 1);
	cut(3, true);
	th_propose(&cl, 1, 3, 0xaa);
	th_run(&cl, 10000);
	cut(3, false);
	/* Node 3 runs with its shorter log: refused, it learns of a greater one. */
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_ELECT };
	th_step(&cl, th_node(&cl, 3), &ev);
	th_run(&cl, 10000);
	th_advance(&cl, 2000 * MS); /* a leader again, node 3 caught up */
	uint32_t lead = th_status(&cl, 1).leader;
	assert_true(lead == 1 || lead == 2);
	assert_int_equal(th_status(&cl, 3).leader, lead);
	assert_int_equal(th_status(&cl, 3).last.index, th_status(&cl, lead).last.index);
	/* Node 3 gets entries node 2 does not: its log is the longest. */
	uint32_t other = lead == 1 ? 2 : 1;
	cut(other, true);
	th_propose(&cl, lead, 2, 0xbb);
	th_run(&cl, 10000);
	assert_true(th_status(&cl, 3).last.index > th_status(&cl, other).last.index);
	/* The leader goes silent. */
	cut(other, false);
	cut(lead, true);
	uint64_t t0 = cl.now;
	while (th_status(&cl, 3).role != LCR_ROLE_LEADER && cl.now - t0 < 3000 * MS)
		th_advance(&cl, 1 * MS);
	assert_int_equal(th_status(&cl, 3).role, LCR_ROLE_LEADER);
	/* Lease (election_timeout_max) + a timeout of at most the max, + a margin. */
	struct lcr_core_config cfg;
	th_config(&cfg, 3, 3);
	uint64_t bound = (2 * cfg.election_timeout_max_ms + 100) * MS;
	assert_true(cl.now - t0 <= bound);
}

static void test_triggered_elect_respects_own_lease(void **state)
{
	(void)state;
	th_elect(&cl, 1);
	th_advance(&cl, 20 * MS);
	cut(1, true);
	/* Node 2 just acknowledged leader 1: it must not vote for itself now. */
	th_elect(&cl, 2);
	assert_int_equal(th_status(&cl, 2).role, LCR_ROLE_CANDIDATE);
	assert_int_equal(th_status(&cl, 1).role, LCR_ROLE_LEADER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_elect_first_leader_commits_blank, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_elect_self_vote_waits_for_flush, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_elect_restart_cannot_reuse_leader_id, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_adopted_own_higher_vote_ends_candidacy, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_vote_needs_up_to_date_log, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_vote_rejected_during_lease, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_vote_granted_after_lease_expires, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_leader_steps_down_on_higher_vote, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_higher_vote_in_append_resp_steps_down, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_pre_vote_keeps_isolated_term, setup3_prevote,
						teardown),
		cmocka_unit_test_setup_teardown(test_without_pre_vote_isolated_term_grows, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_pre_vote_grant_needs_lease_expired, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_greater_log_wait_ends_when_caught_up, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_triggered_elect_respects_own_lease, setup3,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
