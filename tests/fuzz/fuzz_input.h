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
#include <stdio.h>

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

/*
 * The standalone builds' change to a seed: up to three bytes flipped (never
 * the first, which chooses what the script does), and one time in four cut
 * short at a random length.
 */
static inline void fuzz_mutate(uint64_t *x, uint8_t *buf, size_t *n)
{
	uint32_t changes = (uint32_t)(fuzz_next(x) % 4);

	for (uint32_t k = 0; k<changes && * n> 1; k++)
		buf[1 + fuzz_next(x) % (*n - 1)] ^= (uint8_t)(1 + fuzz_next(x) % 255);
	if (fuzz_next(x) % 4 == 0)
		*n = 1 + fuzz_next(x) % *n;
}

/*
 * Run the inputs in these files (a crash libFuzzer found, a seed) through
 * `run`, each read into buf (at most cap bytes): 0, or 1 if a file cannot
 * be read (named on stderr).
 */
static inline int fuzz_replay(const char *target, int n, char **paths,
			      int (*run)(const uint8_t *, size_t), uint8_t *buf, size_t cap)
{
	for (int i = 0; i < n; i++) {
		FILE *f = fopen(paths[i], "rb");
		if (!f) {
			fprintf(stderr, "%s: %s: cannot open\n", target, paths[i]);
			return 1;
		}
		size_t len = fread(buf, 1, cap, f);
		fclose(f);
		run(buf, len);
		printf("%s: %s: ok\n", target, paths[i]);
	}
	return 0;
}

#endif /* LCR_FUZZ_INPUT_H */
