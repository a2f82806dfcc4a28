/* SPDX-License-Identifier: MIT */
/*
 * Always-on assertions. A broken invariant stops the replica: continuing with
 * corrupt state could acknowledge data that is not there (style.md,
 * "Assertions"). LCR_DEBUG_ASSERT is for O(n) checks and compiles away unless
 * LCR_DEBUG is defined.
 */
#ifndef LCR_ASSERT_H
#define LCR_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define lcr_likely(x)	__builtin_expect(!!(x), 1)
#define lcr_unlikely(x) __builtin_expect(!!(x), 0)

__attribute__((noreturn, cold)) static inline void lcr_assert_fail(const char *expr,
								   const char *file, int line)
{
	fprintf(stderr, "lcraft: assertion failed: %s (%s:%d)\n", expr, file, line);
	abort();
}

#define LCR_ASSERT(x)                                                                              \
	do {                                                                                       \
		if (lcr_unlikely(!(x)))                                                            \
			lcr_assert_fail(#x, __FILE__, __LINE__);                                   \
	} while (0)

#ifdef LCR_DEBUG
#define LCR_DEBUG_ASSERT(x) LCR_ASSERT(x)
#else
#define LCR_DEBUG_ASSERT(x) ((void)0)
#endif

#endif /* LCR_ASSERT_H */
