/* SPDX-License-Identifier: MIT */
/* Helpers for storage tests: a ring, a log in a fresh directory, completion tracking. */
#ifndef LCR_IO_HARNESS_H
#define LCR_IO_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "ring.h"

struct iot {
	struct lcr_ring ring;
	struct lcr_log *log;
	struct lcr_log_opts opts;
	char dir[256];
	uint64_t durable_seq; /* newest io seq reported durable */
	struct lcr_io_id durable;
	int err;      /* first error reported */
	uint64_t seq; /* io seqs handed out */
	char why[512];
};

/* Make a fresh directory under $LCR_TEST_DIR or /var/tmp; init the ring. */
void iot_init(struct iot *t, const char *name);
/* Open (or reopen) the log with t->opts; returns lcr_log_open's result. */
int iot_open(struct iot *t);
void iot_close(struct iot *t);
/* Remove the directory and the ring. */
void iot_fini(struct iot *t);
/* Append n entries from index `first` with payload derived from the index. */
int iot_append(struct iot *t, uint64_t first, uint32_t n, uint64_t term, uint32_t node,
	       uint32_t len);
int iot_truncate(struct iot *t, uint64_t after);
int iot_vote(struct iot *t, uint64_t term, uint32_t node, bool committed);
/* Flush, submit and wait until everything handed out is durable (or an error). */
int iot_sync(struct iot *t);
/* Run the ring until nothing is in flight (the spare segment is ready). */
void iot_settle(struct iot *t);
/* The payload byte pattern for an index. */
void iot_payload(uint64_t index, uint8_t *buf, uint32_t len);
/* Check entries [first, last] via the disk read path. */
int iot_check_disk(struct iot *t, uint64_t first, uint64_t last, uint64_t term, uint32_t node);
/* Path of segment `no` of the log. */
void iot_seg_path(struct iot *t, uint64_t no, char *buf, size_t n);

/*
 * cmocka fixtures for a file whose tests share one struct iot (include cmocka.h
 * first): IOT_FIXTURES(t, "log") defines setup() (a fresh directory named for
 * the file, the log opened) and teardown() (the log closed, everything removed).
 */
#define IOT_FIXTURES(t, name)                                                                      \
	static int setup(void **state)                                                             \
	{                                                                                          \
		(void)state;                                                                       \
		iot_init(&(t), name);                                                              \
		assert_int_equal(iot_open(&(t)), 0);                                               \
		return 0;                                                                          \
	}                                                                                          \
	static int teardown(void **state)                                                          \
	{                                                                                          \
		(void)state;                                                                       \
		iot_fini(&(t));                                                                    \
		return 0;                                                                          \
	}

/* An allocation hook that counts: to check that a module allocates through it. */
struct iot_counter {
	int64_t live;	/* blocks given out and not given back */
	uint64_t calls; /* blocks given out */
};
struct lcr_allocator iot_counting(struct iot_counter *c);

#endif
