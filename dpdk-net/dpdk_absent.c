/* SPDX-License-Identifier: MIT */
/*
 * The DPDK backend in a build without DPDK (meson did not find libdpdk, or
 * -Ddpdk=disabled): it says so when asked for. dpdk.c replaces this file
 * where DPDK is found.
 */
#include <errno.h>
#include <stdio.h>

#include "dpdk.h"

int lcr_dpdk_open(struct lcr_backend **out, const struct lcr_dpdk_opts *o, char *why,
		  unsigned why_len)
{
	(void)o;
	*out = NULL;
	snprintf(why, why_len,
		 "dpdk: this build has no DPDK (libdpdk was not found when it was configured: "
		 "install libdpdk-dev and run meson setup again)");
	return -ENOTSUP;
}

const char *lcr_dpdk_drop_name(uint32_t reason)
{
	return reason < LCR_FRAME_DROP_MAX ? lcr_frame_drop_name(reason) : "unknown";
}

int lcr_dpdk_telemetry_set(const char *cmd, const char *help, lcr_dpdk_tel_fn fn, void *ctx)
{
	(void)cmd, (void)help, (void)fn, (void)ctx;
	return -ENOTSUP;
}

void lcr_dpdk_telemetry_clear(void *ctx)
{
	(void)ctx;
}
