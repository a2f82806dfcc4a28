/* SPDX-License-Identifier: MIT */
/*
 * A latency histogram for metrics: fixed size, no allocation, O(1) to add.
 *
 * Log-linear, as HdrHistogram: values below LCR_HIST_SUB ns are exact; above,
 * each power of two is split into LCR_HIST_HALF buckets, so a bucket's middle
 * is within 1/128 of every value in it (0.8 %, as the peer harnesses). 3,776
 * buckets, 30 KiB.
 */
#ifndef LCR_HIST_H
#define LCR_HIST_H

#include <stdint.h>
#include <string.h>

#define LCR_HIST_SUB_BITS 7
#define LCR_HIST_SUB	  (1u << LCR_HIST_SUB_BITS)
#define LCR_HIST_HALF	  (LCR_HIST_SUB / 2)
#define LCR_HIST_BUCKETS  ((64 - LCR_HIST_SUB_BITS) * LCR_HIST_HALF + LCR_HIST_SUB)

struct lcr_hist {
	uint64_t count, sum_ns, min_ns, max_ns;
	uint64_t b[LCR_HIST_BUCKETS];
};

static inline uint32_t lcr_hist_index(uint64_t v)
{
	if (v < LCR_HIST_SUB)
		return (uint32_t)v;
	uint32_t shift = (uint32_t)(63 - __builtin_clzll(v)) - (LCR_HIST_SUB_BITS - 1);
	return shift * LCR_HIST_HALF + (uint32_t)(v >> shift);
}

/* The middle of bucket i. */
static inline uint64_t lcr_hist_value(uint32_t i)
{
	if (i < LCR_HIST_SUB)
		return i;
	uint32_t shift = i / LCR_HIST_HALF - 1;
	uint64_t top = i - shift * LCR_HIST_HALF;
	return (top << shift) + ((1ull << shift) >> 1);
}

static inline void lcr_hist_add(struct lcr_hist *h, uint64_t ns)
{
	h->b[lcr_hist_index(ns)]++;
	if (h->count == 0 || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->count++;
	h->sum_ns += ns;
}

/* Add the samples of `from` to `h`. */
static inline void lcr_hist_merge(struct lcr_hist *h, const struct lcr_hist *from)
{
	if (from->count == 0)
		return;
	for (uint32_t i = 0; i < LCR_HIST_BUCKETS; i++)
		h->b[i] += from->b[i];
	if (h->count == 0 || from->min_ns < h->min_ns)
		h->min_ns = from->min_ns;
	if (from->max_ns > h->max_ns)
		h->max_ns = from->max_ns;
	h->count += from->count;
	h->sum_ns += from->sum_ns;
}

/* The p-quantile (0 < p <= 1) in ns, clamped to [min, max]; 0 when empty. */
static inline uint64_t lcr_hist_pct(const struct lcr_hist *h, double p)
{
	uint64_t rank = (uint64_t)(p * (double)h->count + 0.999999), seen = 0;

	if (h->count == 0)
		return 0;
	if (rank == 0)
		rank = 1;
	for (uint32_t i = 0; i < LCR_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = lcr_hist_value(i);
			return v > h->max_ns ? h->max_ns : v < h->min_ns ? h->min_ns : v;
		}
	}
	return h->max_ns;
}

#endif /* LCR_HIST_H */
