/* Storage faults through the ring wrapper: failed fsync and write, ENOSPC, short writes, EAGAIN;
 * nothing acknowledged is lost. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "io_harness.h"

static struct iot t;
static struct lcr_ring_faults faults;

static int setup(void **state)
{
	(void)state;
	iot_init(&t, "faults");
	memset(&faults, 0, sizeof(faults));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	t.ring.faults = NULL;
	iot_fini(&t);
	return 0;
}

/* Reopen without faults: everything acknowledged before must be there. */
static void expect_acknowledged_survive(uint64_t acked_last)
{
	t.ring.faults = NULL;
	iot_close(&t);
	int rc = iot_open(&t);
	if (rc < 0)
		fail_msg("reopen: %s", t.why);
	assert_true(lcr_log_last(t.log).index >= acked_last);
	assert_int_equal(iot_check_disk(&t, 1, acked_last, 1, 1), 0);
}

/* Append rounds of 50 entries; returns the last index acknowledged. */
static uint64_t write_until_error(uint32_t len)
{
	uint64_t next = 1, acked = 0;
	for (int round = 0; round < 40; round++) {
		if (iot_append(&t, next, 50, 1, 1, len) < 0)
			break;
		next += 50;
		if (iot_sync(&t) < 0)
			break;
		acked = next - 1;
	}
	return acked;
}

static void test_fault_failed_fsync_stops_the_log(void **state)
{
	(void)state;
	t.opts.io_mode = LCR_IO_DIRECT_FDATASYNC;
	assert_int_equal(iot_open(&t), 0);
	iot_settle(&t); /* the spare segment is ready: faults hit batches */
	t.ring.faults = &faults;
	faults.fail_fsync_nth = 5;
	uint64_t acked = write_until_error(100);
	assert_true(acked > 0);
	assert_int_equal(t.err, -EIO);
	assert_int_equal(lcr_log_error(t.log), -EIO);
	/* Sticky: nothing more is accepted, never "retried and trusted". */
	assert_int_equal(iot_append(&t, acked + 51, 1, 1, 1, 10), -EIO);
	expect_acknowledged_survive(acked);
}

static void test_fault_failed_write_stops_the_log(void **state)
{
	(void)state;
	assert_int_equal(iot_open(&t), 0); /* RWF_DSYNC: the write is the flush */
	iot_settle(&t);
	t.ring.faults = &faults;
	faults.fail_write_nth = 4;
	faults.write_errno = -EIO;
	uint64_t acked = write_until_error(100);
	assert_true(acked > 0);
	assert_int_equal(t.err, -EIO);
	expect_acknowledged_survive(acked);
}

static void test_fault_enospc_reported_nothing_lost(void **state)
{
	(void)state;
	t.opts.io_mode = LCR_IO_DIRECT_FDATASYNC;
	assert_int_equal(iot_open(&t), 0);
	iot_settle(&t);
	t.ring.faults = &faults;
	faults.fail_write_nth = 4;
	faults.write_errno = -ENOSPC;
	uint64_t acked = write_until_error(100);
	assert_int_equal(t.err, -ENOSPC);
	expect_acknowledged_survive(acked);
}

static void test_fault_short_writes_resubmitted(void **state)
{
	(void)state;
	assert_int_equal(iot_open(&t), 0);
	iot_settle(&t);
	t.ring.faults = &faults;
	faults.short_write_every = 1; /* every write comes back half done */
	/* Batches of 50 x 2000 bytes are well above the 8 KiB a short write needs. */
	uint64_t acked = write_until_error(2000);
	assert_int_equal(t.err, 0);
	assert_int_equal(acked, 2000);
	assert_true(t.ring.stats.resubmitted > 0);
	expect_acknowledged_survive(acked);
}

static void test_fault_eagain_resubmitted(void **state)
{
	(void)state;
	t.opts.io_mode = LCR_IO_DIRECT_FDATASYNC;
	assert_int_equal(iot_open(&t), 0);
	iot_settle(&t);
	t.ring.faults = &faults;
	faults.eagain_every = 2;
	uint64_t acked = write_until_error(300);
	assert_int_equal(t.err, 0);
	assert_int_equal(acked, 2000);
	assert_true(t.ring.stats.resubmitted > 0);
	expect_acknowledged_survive(acked);
}

static void test_fault_failed_vote_sync(void **state)
{
	(void)state;
	t.opts.io_mode = LCR_IO_BUFFERED_FDATASYNC;
	assert_int_equal(iot_open(&t), 0);
	assert_int_equal(iot_vote(&t, 2, 1, false), 0);
	assert_int_equal(iot_sync(&t), 0);
	iot_settle(&t);
	t.ring.faults = &faults;
	faults.fail_fsync_nth = 1;
	assert_int_equal(iot_vote(&t, 3, 1, false), 0);
	assert_int_equal(iot_sync(&t), -EIO);
	assert_int_equal(iot_vote(&t, 4, 1, false), -EIO);
	t.ring.faults = NULL;
	iot_close(&t);
	assert_int_equal(iot_open(&t), 0);
	struct lcr_log_recovery rs;
	lcr_log_recovered(t.log, &rs);
	assert_true(rs.vote.lid.term >= 2); /* the acknowledged vote is there */
}

static void test_fault_spare_preparation_failure_is_retried(void **state)
{
	(void)state;
	/* The spare's preparation fails (its first zero write): the log goes
	 * on in the active segment and tries again when it needs the next one. */
	t.ring.faults = &faults;
	faults.fail_write_nth = 1;
	faults.write_errno = -ENOSPC;
	assert_int_equal(iot_open(&t), 0);
	iot_settle(&t);
	t.ring.faults = NULL;
	uint64_t n = 0;
	for (int round = 0; round < 4; round++) {
		assert_int_equal(iot_append(&t, n + 1, 1000, 1, 1, 3000), 0);
		n += 1000;
		assert_int_equal(iot_sync(&t), 0);
	}
	assert_int_equal(t.err, 0);
	struct lcr_log_stats st;
	lcr_log_stats(t.log, &st);
	assert_true(st.segments_created >= 3);
	expect_acknowledged_survive(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fault_failed_fsync_stops_the_log, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_failed_write_stops_the_log, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_enospc_reported_nothing_lost, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_short_writes_resubmitted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_eagain_resubmitted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_failed_vote_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_spare_preparation_failure_is_retried,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
