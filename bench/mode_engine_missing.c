/* SPDX-License-Identifier: MIT */
/* Temporary: engine mode is being written (bench/mode_engine.c). */
#include <errno.h>
#include <stdio.h>

#include "bench.h"

int lcr_bench_engine(const struct lcr_bench_opts *o, struct lcr_bench_result *r,
		     lcr_bench_progress_fn progress, void *ctx, char *why, size_t why_len)
{
	(void)o;
	(void)r;
	(void)progress;
	(void)ctx;
	snprintf(why, why_len, "engine mode is not built in");
	return -ENOTSUP;
}
