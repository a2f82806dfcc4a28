/* SPDX-License-Identifier: MIT */
/*
 * CRC32C (base/crc32c.c): the fast paths (the SSE4.2 instruction on short
 * buffers, ISA-L's folding from 256 bytes) against the portable table-driven
 * one, for every length up to 2 KiB and around where the implementation
 * changes, at every alignment, from random starting values, continued over
 * split buffers, and over 5 MiB; the standard check value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_crc_check_value(void **state)
{
	(void)state;
	assert_int_equal(lcr_crc32c(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(lcr_crc32c_sw(0, "123456789", 9), 0xe3069283u);
}

static void test_crc_matches_portable(void **state)
{
	(void)state;
	enum { MAX = 5 << 20 };
	uint8_t *buf = malloc(MAX + 8);
	assert_non_null(buf);
	for (size_t i = 0; i < MAX + 8; i++)
		buf[i] = (uint8_t)next();
	/* Lengths: all small ones, and around the switch to ISA-L (256) and
	 * around sizes its folding treats apart (its blocks of 64 to 256 bytes). */
	static const size_t edges[] = { 256, 1024, 4096, 65536, MAX - 32 };
	uint32_t checked = 0;
	for (size_t len = 0; len <= 2048; len++) {
		uint32_t seed = (uint32_t)next();
		size_t off = len % 8;
		assert_int_equal(lcr_crc32c(seed, buf + off, len),
				 lcr_crc32c_sw(seed, buf + off, len));
		checked++;
	}
	for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++)
		for (size_t len = edges[e] - 24; len <= edges[e] + 24 && len <= MAX; len++)
			for (size_t off = 0; off < 8; off++) {
				uint32_t seed = (uint32_t)next();
				assert_int_equal(lcr_crc32c(seed, buf + off, len),
						 lcr_crc32c_sw(seed, buf + off, len));
				checked++;
			}
	/* Random lengths, and continuation over a random split. */
	for (int i = 0; i < 2000; i++) {
		size_t len = next() % (i < 1900 ? 65536 : MAX), cut = len ? next() % len : 0;
		uint32_t whole = lcr_crc32c(0, buf, len);
		assert_int_equal(whole, lcr_crc32c_sw(0, buf, len));
		assert_int_equal(lcr_crc32c(lcr_crc32c(0, buf, cut), buf + cut, len - cut), whole);
		checked++;
	}
	print_message("%u CRCs equal to the portable ones\n", checked);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_check_value),
		cmocka_unit_test(test_crc_matches_portable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
