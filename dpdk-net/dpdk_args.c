/* SPDX-License-Identifier: MIT */
/*
 * The DPDK backend's options and the EAL arguments the node makes itself
 * (dpdk.h): in every build, DPDK or not, since they are only data and text.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dpdk.h"

int lcr_dpdk_memif_eal(char *out, size_t len, const char *base, const char *dir, uint32_t self,
		       const uint32_t *nodes, uint32_t n_nodes)
{
	int k = snprintf(out, len, "%s", base ? base : "");
	size_t o = k < 0 ? len : (size_t)k;
	for (uint32_t i = 0; i < n_nodes && o < len; i++) {
		uint32_t p = nodes[i];
		if (p == self)
			continue;
		uint32_t a = p < self ? p : self, b = p < self ? self : p;
		k = snprintf(out + o, len - o,
			     " --vdev=net_memif%u,role=%s,id=0,socket=%s/memif-%u-%u.sock", p,
			     self == a ? "server" : "client", dir, a, b);
		o = k < 0 ? len : o + (size_t)k;
	}
	return o < len ? (int)o : -ENAMETOOLONG;
}

void lcr_dpdk_opts_default(struct lcr_dpdk_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->n_lcores = 1;
	o->dgram_max = 1472;
	o->rx_desc = 1024;
	o->tx_desc = 1024;
	o->nap_min_ns = 50ull * 1000;
	o->nap_max_ns = 1000ull * 1000;
}
