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

#endif /* LCR_FUZZ_INPUT_H */
