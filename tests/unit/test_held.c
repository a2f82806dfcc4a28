/* SPDX-License-Identifier: MIT */
/*
 * The nodes a group saw hold state (engine/runtime/held.c): which messages
 * count (a granted vote that was never followed by an acknowledgment among
 * them, a pre-vote not), the record written by the writer thread and read
 * back when the group opens, and a damaged or truncated file refused with
 * its path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime_int.h"

struct fixture {
	char dir[256];
	struct lcr_node node;
	struct lcr_group group;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *base = getenv("LCR_TEST_DIR");

	snprintf(f->dir, sizeof(f->dir), "%s/lcr-held-XXXXXX", base ? base : "/var/tmp");
	if (!mkdtemp(f->dir))
		return -1;
	f->node.cfg.id = 1;
	f->group.id = 7;
	f->group.node = &f->node;
	f->group.snap.dir = f->dir;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[300];

	snprintf(path, sizeof(path), "%s/%s", f->dir, LCR_RT_HELD_FILE);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void msg(struct lcr_group *g, const struct lcr_msg *m)
{
	struct lcr_event ev = { .type = LCR_EV_MSG, .msg = m };
	lcr_rt_held_event(g, &ev);
}

static uint32_t held(const struct lcr_group *g, uint32_t *ids)
{
	return lcr_group_held(g, ids, LCR_HELD_MAX);
}

/* A candidate's view: node 2 granted its vote and never acknowledged an
 * entry; node 3 granted a pre-vote only; node 4 answered appends that
 * matched nothing, then conflicted. Only node 2 held state. */
static void test_held_vote_granted_never_acked(void **state)
{
	struct fixture *f = *state;
	struct lcr_group *g = &f->group;
	uint32_t ids[LCR_HELD_MAX];

	struct lcr_msg pre = { .type = LCR_MSG_VOTE_RESP, .from = 3 };
	pre.vote_resp.granted = true;
	pre.vote_resp.pre_vote = true;
	msg(g, &pre);
	struct lcr_msg refused = { .type = LCR_MSG_VOTE_RESP, .from = 5 };
	msg(g, &refused);
	struct lcr_msg empty = { .type = LCR_MSG_APPEND_RESP, .from = 4 };
	empty.append_resp.result = LCR_APPEND_OK; /* matching index 0: holds nothing */
	msg(g, &empty);
	struct lcr_msg conflict = { .type = LCR_MSG_APPEND_RESP, .from = 4 };
	conflict.append_resp.result = LCR_APPEND_CONFLICT;
	conflict.append_resp.log_id.index = 9;
	msg(g, &conflict);
	assert_int_equal(held(g, ids), 0);

	struct lcr_msg granted = { .type = LCR_MSG_VOTE_RESP, .from = 2 };
	granted.vote_resp.granted = true;
	msg(g, &granted);
	assert_int_equal(held(g, ids), 1);
	assert_int_equal(ids[0], 2);
}

/* Every kind of evidence, each id once, in ascending order; this node
 * itself after its first flush. */
static void test_held_kinds_sorted(void **state)
{
	struct fixture *f = *state;
	struct lcr_group *g = &f->group;
	uint32_t ids[LCR_HELD_MAX];

	struct lcr_msg acked = { .type = LCR_MSG_APPEND_RESP, .from = 9 };
	acked.append_resp.result = LCR_APPEND_OK;
	acked.append_resp.log_id.index = 3;
	msg(g, &acked);
	struct lcr_msg leader = { .type = LCR_MSG_APPEND_REQ, .from = 5 };
	msg(g, &leader);
	msg(g, &leader);
	struct lcr_msg snap = { .type = LCR_MSG_SNAPSHOT_REQ, .from = 4 };
	msg(g, &snap);
	msg(g, &acked);
	struct lcr_event flushed = { .type = LCR_EV_IO_FLUSHED };
	lcr_rt_held_event(g, &flushed);
	assert_int_equal(held(g, ids), 4);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 4);
	assert_int_equal(ids[2], 5);
	assert_int_equal(ids[3], 9);
}

/* Written by the writer thread, read back by a group opening on the same
 * directory; then truncated, then changed: refused, the path named. */
static void test_held_durable_and_damage(void **state)
{
	struct fixture *f = *state;
	struct lcr_group *g = &f->group;
	uint32_t ids[LCR_HELD_MAX];
	char why[512], path[300];

	assert_int_equal(lcr_rt_held_start(&f->node), 0);
	struct lcr_msg granted = { .type = LCR_MSG_VOTE_RESP, .from = 3 };
	granted.vote_resp.granted = true;
	msg(g, &granted);
	struct lcr_msg leader = { .type = LCR_MSG_APPEND_REQ, .from = 2 };
	msg(g, &leader);
	lcr_rt_held_stop(&f->node); /* every record handed over is written */

	struct lcr_group back = { .id = 7, .node = &f->node, .snap.dir = f->dir };
	assert_int_equal(lcr_rt_held_load(&back, why, sizeof(why)), 0);
	assert_int_equal(held(&back, ids), 2);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 3);

	struct lcr_group other = { .id = 8, .node = &f->node, .snap.dir = f->dir };
	assert_int_equal(lcr_rt_held_load(&other, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "another group's"));

	snprintf(path, sizeof(path), "%s/%s", f->dir, LCR_RT_HELD_FILE);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 16 + 4 * 2 + 4);
	assert_int_equal(truncate(path, st.st_size - 1), 0);
	struct lcr_group cut = { .id = 7, .node = &f->node, .snap.dir = f->dir };
	assert_int_equal(lcr_rt_held_load(&cut, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, path));
	assert_non_null(strstr(why, "truncated"));

	assert_int_equal(truncate(path, st.st_size), 0); /* a zero where a checksum byte was */
	struct lcr_group bad = { .id = 7, .node = &f->node, .snap.dir = f->dir };
	assert_int_equal(lcr_rt_held_load(&bad, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "checksum"));

	assert_int_equal(unlink(path), 0); /* none: nothing seen yet */
	struct lcr_group none = { .id = 7, .node = &f->node, .snap.dir = f->dir };
	assert_int_equal(lcr_rt_held_load(&none, why, sizeof(why)), 0);
	assert_int_equal(held(&none, ids), 0);
}

/* The record holds at most LCR_HELD_MAX ids; more are said once, not kept. */
static void test_held_bounded(void **state)
{
	struct fixture *f = *state;
	struct lcr_group *g = &f->group;
	uint32_t ids[LCR_HELD_MAX];

	for (uint32_t id = 100; id < 100 + LCR_HELD_MAX + 5; id++) {
		struct lcr_msg m = { .type = LCR_MSG_APPEND_REQ, .from = id };
		msg(g, &m);
	}
	assert_int_equal(held(g, ids), LCR_HELD_MAX);
	assert_int_equal(ids[LCR_HELD_MAX - 1], 100 + LCR_HELD_MAX - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_held_vote_granted_never_acked, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_held_kinds_sorted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_durable_and_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_bounded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
