/* The core allocates nothing while replicating in steady state: counted through its allocator hook
 * and libc. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static uint64_t hook_allocs;

static void *count_alloc(void *ctx, size_t size)
{
	(void)ctx;
	hook_allocs++;
	return calloc(1, size);
}

static void count_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

#if defined(__SANITIZE_ADDRESS__)
/* ASan owns malloc; only the core's own hook is counted in this build. */
static uint64_t libc_allocs(void)
{
	return 0;
}
#else
/* Count every libc allocation of the process, not just the core's. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static uint64_t n_libc;
void *malloc(size_t n)
{
	n_libc++;
	return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
	n_libc++;
	return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
	n_libc++;
	return __libc_realloc(p, n);
}
static uint64_t libc_allocs(void)
{
	return n_libc;
}
#endif

static void hooked(struct lcr_core_config *cfg)
{
	cfg->alloc.alloc = count_alloc;
	cfg->alloc.free = count_free;
	cfg->max_payload_entries = 64;
}

static void test_steady_replication_allocates_nothing(void **state)
{
	static struct th_cluster cl;
	(void)state;

	th_init(&cl, 3, hooked);
	th_elect(&cl, 1);
	/* Warm up: leases, streams and reads reach their steady shape. */
	for (int i = 0; i < 50; i++) {
		assert_int_equal(th_propose(&cl, 1, 8, (uint8_t)i), 0);
		th_run(&cl, 100000);
	}
	uint64_t hook0 = hook_allocs, libc0 = libc_allocs();
	uint64_t committed0 = th_status(&cl, 1).committed.index;
	for (int i = 0; i < 2000; i++) {
		if (th_propose(&cl, 1, 1 + (uint32_t)(i % 16), (uint8_t)i) != 0)
			fail_msg("propose failed at round %d", i);
		uint64_t rid;
		lcr_core_read(th_node(&cl, 1)->core, cl.now,
			      i % 2 ? LCR_READ_INDEX : LCR_READ_LEASE, &rid);
		th_process(&cl, th_node(&cl, 1));
		th_run(&cl, 100000);
		if (i % 100 == 0)
			th_advance(&cl, 60 * MS); /* heartbeats and timers too */
	}
	uint64_t hook1 = hook_allocs, libc1 = libc_allocs();
	uint64_t committed = th_status(&cl, 1).committed.index - committed0;
	print_message("committed %llu entries: %llu core allocations, %llu libc allocations\n",
		      (unsigned long long)committed, (unsigned long long)(hook1 - hook0),
		      (unsigned long long)(libc1 - libc0));
	assert_true(committed >= 2000);
	assert_int_equal(hook1 - hook0, 0);
	assert_int_equal(libc1 - libc0, 0);
	th_free(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steady_replication_allocates_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
