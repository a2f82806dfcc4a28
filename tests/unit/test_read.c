/* Linearizable reads: ReadIndex, LeaseRead, read_log_id, timeouts (openraft t11_client_reads), and
 * ReadIndex from followers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "harness.h"

static struct th_cluster cl;

static int setup(void **state)
{
	(void)state;
	th_init(&cl, 3, NULL);
	th_elect(&cl, 1);
	th_propose(&cl, 1, 4, 1);
	th_run(&cl, 10000);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	th_free(&cl);
	return 0;
}

static int read_on(uint32_t id, uint32_t policy, uint64_t *rid)
{
	int rc = lcr_core_read(th_node(&cl, id)->core, cl.now, policy, rid);
	th_process(&cl, th_node(&cl, id));
	return rc;
}

static void test_read_index_waits_for_quorum_ack(void **state)
{
	(void)state;
	uint64_t rid;
	struct th_node *l = th_node(&cl, 1);
	assert_int_equal(read_on(1, LCR_READ_INDEX, &rid), 0);
	/* Applied is already past read_log_id, but a quorum must confirm first. */
	assert_true(l->reads_ready < rid);
	th_run(&cl, 10000); /* the heartbeat it broadcast is acknowledged */
	assert_int_equal(l->reads_ready, rid);
}

static void test_read_log_id_is_max_of_committed_and_noop(void **state)
{
	(void)state;
	uint64_t rid;
	struct th_node *l = th_node(&cl, 1);
	/* Entries proposed but not committed: a read waits only for committed. */
	th_node(&cl, 2)->auto_flush = false;
	th_node(&cl, 3)->auto_flush = false;
	th_propose(&cl, 1, 2, 2);
	th_run(&cl, 10000);
	assert_int_equal(th_status(&cl, 1).committed.index, 5);
	assert_int_equal(read_on(1, LCR_READ_INDEX, &rid), 0);
	th_node(&cl, 2)->auto_flush = true;
	th_run(&cl, 10000);
	assert_int_equal(l->reads_ready, rid);
}

static void test_read_waits_for_apply(void **state)
{
	(void)state;
	/* A new leader must have its noop applied before serving a read. */
	th_free(&cl);
	th_init(&cl, 3, NULL);
	for (uint32_t i = 2; i <= 3; i++)
		th_node(&cl, i)->auto_flush = false;
	th_elect(&cl, 1);
	th_run(&cl, 10000);
	/* Votes flushed by hand so the election completes, blank not committed. */
	for (uint32_t i = 2; i <= 3; i++)
		th_flush(&cl, th_node(&cl, i));
	th_run(&cl, 10000);
	uint64_t rid;
	struct th_node *l = th_node(&cl, 1);
	if (th_status(&cl, 1).committed.index == 0) {
		assert_int_equal(read_on(1, LCR_READ_INDEX, &rid), 0);
		th_run(&cl, 10000);
		assert_true(l->reads_ready < rid);
		th_flush(&cl, th_node(&cl, 2));
		th_run(&cl, 10000);
		assert_int_equal(l->reads_ready, rid);
	} else {
		/* Flushing the votes also flushed the blank: read is immediate. */
		assert_int_equal(read_on(1, LCR_READ_INDEX, &rid), 0);
		th_run(&cl, 10000);
		assert_int_equal(l->reads_ready, rid);
	}
}

static void test_lease_read_served_within_lease(void **state)
{
	(void)state;
	uint64_t rid;
	assert_int_equal(read_on(1, LCR_READ_LEASE, &rid), 0);
	/* No heartbeat needed: ready in the same call. */
	assert_int_equal(th_node(&cl, 1)->reads_ready, rid);
}

static void test_lease_read_fails_when_lease_stale(void **state)
{
	(void)state;
	uint64_t rid;
	for (uint32_t i = 1; i <= 3; i++)
		cl.cut[i][1] = true;
	th_advance(&cl, 301 * MS);
	assert_int_equal(read_on(1, LCR_READ_LEASE, &rid), -LCR_ENOLEASE);
}

static void test_read_index_times_out(void **state)
{
	(void)state;
	uint64_t rid;
	for (uint32_t i = 1; i <= 3; i++)
		cl.cut[i][1] = true;
	assert_int_equal(read_on(1, LCR_READ_INDEX, &rid), 0);
	th_advance(&cl, 302 * MS); /* default wait: the leader lease */
	assert_int_equal(th_node(&cl, 1)->reads_failed_last, rid);
	assert_int_equal(th_node(&cl, 1)->reads_failed_err, -LCR_ETIMEDOUT);
}

/* ReadIndex from a follower: the leader confirms a read index, the follower
 * serves once it has applied up to it, not before. */
static void test_follower_read_served_after_leader_confirms(void **state)
{
	(void)state;
	uint64_t rid;
	struct th_node *f = th_node(&cl, 2);
	/* The follower misses two entries the others commit. */
	cl.cut_appends[1][2] = true;
	th_propose(&cl, 1, 2, 2);
	th_run(&cl, 10000);
	assert_int_equal(th_status(&cl, 1).committed.index, 7);
	assert_true(th_status(&cl, 2).applied.index < 7);
	uint64_t asked = cl.sent[LCR_MSG_READ_INDEX_REQ];
	assert_int_equal(read_on(2, LCR_READ_INDEX, &rid), 0);
	assert_int_equal(cl.sent[LCR_MSG_READ_INDEX_REQ], asked + 1);
	th_run(&cl, 10000);
	/* Answered (read index 7), but the follower has applied less. */
	assert_int_equal(cl.sent[LCR_MSG_READ_INDEX_RESP], 1);
	assert_true(f->reads_ready < rid);
	assert_true(f->reads_failed_last < rid);
	/* Two reads more, asked together once the first request is answered. */
	uint64_t rid2, rid3;
	assert_int_equal(read_on(2, LCR_READ_INDEX, &rid2), 0);
	assert_int_equal(read_on(2, LCR_READ_INDEX, &rid3), 0);
	assert_int_equal(rid3, rid2 + 1);
	th_run(&cl, 10000);
	assert_true(f->reads_ready < rid);
	cl.cut_appends[1][2] = false;
	th_advance(&cl, 60 * MS); /* a heartbeat brings the entries */
	assert_int_equal(th_status(&cl, 2).applied.index, 7);
	assert_int_equal(f->reads_ready, rid3);
	assert_true(f->reads_failed_last < rid);
}

static void test_follower_lease_read_refused(void **state)
{
	(void)state;
	uint64_t rid;
	assert_int_equal(read_on(2, LCR_READ_LEASE, &rid), -LCR_ENOTLEADER);
}

/* The request never arrives: the follower asks again, then times out. */
static void test_follower_read_times_out(void **state)
{
	(void)state;
	uint64_t rid;
	cl.cut[2][1] = true;
	uint64_t asked = cl.sent[LCR_MSG_READ_INDEX_REQ];
	assert_int_equal(read_on(2, LCR_READ_INDEX, &rid), 0);
	th_advance(&cl, 200 * MS);
	assert_true(cl.sent[LCR_MSG_READ_INDEX_REQ] >= asked + 3); /* every heartbeat interval */
	assert_true(th_node(&cl, 2)->reads_failed_last < rid);
	th_advance(&cl, 102 * MS); /* default wait: the leader lease */
	assert_int_equal(th_node(&cl, 2)->reads_failed_last, rid);
	assert_int_equal(th_node(&cl, 2)->reads_failed_err, -LCR_ETIMEDOUT);
	assert_true(th_node(&cl, 2)->reads_ready < rid);
}

/* The follower's leader changes before an answer: its reads fail. */
static void test_follower_reads_fail_on_leader_change(void **state)
{
	(void)state;
	uint64_t rid;
	cl.cut[2][1] = true;
	assert_int_equal(read_on(2, LCR_READ_INDEX, &rid), 0);
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_TRANSFER,
				.now_ns = cl.now,
				.transfer_to = 3 };
	th_step(&cl, th_node(&cl, 1), &ev);
	th_run(&cl, 10000);
	th_advance(&cl, 20 * MS);
	assert_int_equal(th_status(&cl, 2).leader, 3);
	assert_int_equal(th_node(&cl, 2)->reads_failed_last, rid);
	assert_int_equal(th_node(&cl, 2)->reads_failed_err, -LCR_ENOTLEADER);
	assert_true(th_node(&cl, 2)->reads_ready < rid);
	/* Following the new leader, a new read is served. */
	cl.cut[2][1] = false;
	assert_int_equal(read_on(2, LCR_READ_INDEX, &rid), 0);
	th_run(&cl, 10000);
	assert_int_equal(th_node(&cl, 2)->reads_ready, rid);
}

/* A request for a leadership the receiver does not hold is refused. */
static void test_read_index_request_to_non_leader_refused(void **state)
{
	(void)state;
	struct lcr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_READ_INDEX_REQ;
	m.from = 2;
	m.to = 3;
	m.read_index_req.vote = th_status(&cl, 2).vote;
	m.read_index_req.read_id = 77;
	struct lcr_event ev = { .type = LCR_EV_MSG, .now_ns = cl.now, .msg = &m };
	assert_int_equal(lcr_core_step(th_node(&cl, 3)->core, &ev), 0);
	uint32_t n;
	const struct lcr_cmd *cmds = lcr_core_commands(th_node(&cl, 3)->core, &n);
	assert_int_equal(n, 1);
	assert_int_equal(cmds[0].type, LCR_CMD_SEND);
	assert_int_equal(cmds[0].send.type, LCR_MSG_READ_INDEX_RESP);
	assert_int_equal(cmds[0].send.to, 2);
	assert_int_equal(cmds[0].send.read_index_resp.result, LCR_READ_INDEX_NOT_LEADER);
	assert_int_equal(cmds[0].send.read_index_resp.read_id, 77);
	assert_int_equal(cmds[0].send.read_index_resp.read_log_id.index, 0);
}

static void small_reads(struct lcr_core_config *cfg)
{
	cfg->reads_max = 2;
}

static void test_reads_queue_is_bounded(void **state)
{
	(void)state;
	uint64_t rid;
	th_free(&cl);
	th_init(&cl, 3, small_reads);
	th_elect(&cl, 1);
	for (uint32_t i = 1; i <= 3; i++)
		cl.cut[i][1] = true;
	assert_int_equal(read_on(1, LCR_READ_INDEX, &rid), 0);
	assert_int_equal(read_on(1, LCR_READ_INDEX, &rid), 0);
	assert_int_equal(read_on(1, LCR_READ_INDEX, &rid), -LCR_EFULL);
}

/* The leader holds no more than reads_max reads, its own and its followers'. */
static void test_follower_read_refused_when_leader_full(void **state)
{
	(void)state;
	uint64_t rid;
	th_free(&cl);
	th_init(&cl, 3, small_reads);
	th_elect(&cl, 1);
	th_run(&cl, 10000);
	/* No heartbeat reaches a follower: the leader's own reads wait. */
	cl.cut_appends[1][2] = true;
	cl.cut_appends[1][3] = true;
	assert_int_equal(read_on(1, LCR_READ_INDEX, &rid), 0);
	assert_int_equal(read_on(1, LCR_READ_INDEX, &rid), 0);
	assert_int_equal(read_on(2, LCR_READ_INDEX, &rid), 0);
	th_run(&cl, 10000);
	assert_int_equal(th_node(&cl, 2)->reads_failed_last, rid);
	assert_int_equal(th_node(&cl, 2)->reads_failed_err, -LCR_EFULL);
}

/* A leader handing over answers its followers' reads with TRANSFER. */
static void test_follower_read_fails_on_transfer(void **state)
{
	(void)state;
	uint64_t rid;
	/* The heartbeat for the read reaches no one: the leader holds it. */
	cl.cut_appends[1][2] = true;
	cl.cut_appends[1][3] = true;
	assert_int_equal(read_on(2, LCR_READ_INDEX, &rid), 0);
	th_run(&cl, 10000);
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_TRANSFER,
				.now_ns = cl.now,
				.transfer_to = 3 };
	th_step(&cl, th_node(&cl, 1), &ev);
	th_run(&cl, 10000);
	assert_int_equal(th_node(&cl, 2)->reads_failed_last, rid);
	assert_int_equal(th_node(&cl, 2)->reads_failed_err, -LCR_ETRANSFER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_index_waits_for_quorum_ack, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_read_log_id_is_max_of_committed_and_noop,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_waits_for_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_read_served_within_lease, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lease_read_fails_when_lease_stale, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_read_index_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follower_read_served_after_leader_confirms,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_follower_lease_read_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follower_read_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follower_reads_fail_on_leader_change, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_read_index_request_to_non_leader_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads_queue_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follower_read_refused_when_leader_full, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_follower_read_fails_on_transfer, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
