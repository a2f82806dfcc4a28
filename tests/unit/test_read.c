/* Linearizable reads: ReadIndex, LeaseRead, read_log_id and timeouts (openraft t11_client_reads).
 */
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

static void test_read_on_follower_refused(void **state)
{
	(void)state;
	uint64_t rid;
	assert_int_equal(read_on(2, LCR_READ_INDEX, &rid), -LCR_ENOTLEADER);
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
		cmocka_unit_test_setup_teardown(test_read_on_follower_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads_queue_is_bounded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
