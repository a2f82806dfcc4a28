/* SPDX-License-Identifier: MIT */
/*
 * The fuzz targets' reading of their input: bytes taken from the front, big
 * end first, zeros once it runs out (so every input, however short, drives a
 * whole run).
 */
#ifndef LCR_FUZZ_INPUT_H
#define LCR_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct input {
	const uint8_t *p;
	size_t n;
};

static inline uint64_t take(struct input *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v <<= 8;
		if (in->n) {
			v |= *in->p++;
			in->n--;
		}
	}
	return v;
}

/* The standalone builds' generator (xorshift64): the next value of *x. */
static inline uint64_t fuzz_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* A random input of 1..limit bytes into buf (limit at most its size): its length. */
static inline size_t fuzz_random_input(uint64_t *x, uint8_t *buf, size_t limit)
{
	size_t n = 1 + fuzz_next(x) % limit;

	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)fuzz_next(x);
	return n;
}

#endif /* LCR_FUZZ_INPUT_H */
