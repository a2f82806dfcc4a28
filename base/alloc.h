/* SPDX-License-Identifier: MIT */
/*
 * Aligned blocks from the allocation hook (types.h), which promises only
 * malloc's alignment: cache-line aligned per-lcore state, 4 KiB aligned
 * O_DIRECT buffers. The block is over-allocated by `align` bytes; the
 * pointer the hook returned sits in the word just below the aligned start.
 */
#ifndef LCR_ALLOC_H
#define LCR_ALLOC_H

#include <stdint.h>

#include "lcr_assert.h"
#include "types.h"

#define LCR_CACHE_LINE 64

/* Zeroed memory of `size` bytes aligned to `align` (a power of two, >= 16), or NULL. */
static inline void *lcr_allocator_aligned(const struct lcr_allocator *a, size_t size, size_t align)
{
	LCR_ASSERT(align >= 16 && (align & (align - 1)) == 0);
	if (size > SIZE_MAX - align)
		return NULL;
	uint8_t *raw = lcr_allocator_zalloc(a, size + align);
	if (!raw)
		return NULL;
	uintptr_t at = ((uintptr_t)raw + align) & ~(uintptr_t)(align - 1);
	((void **)at)[-1] = raw;
	return (void *)at;
}

/* Give back what lcr_allocator_aligned(a, ...) returned; NULL is fine. */
static inline void lcr_allocator_free_aligned(const struct lcr_allocator *a, void *p)
{
	if (p)
		lcr_allocator_free(a, ((void **)p)[-1]);
}

#endif /* LCR_ALLOC_H */
