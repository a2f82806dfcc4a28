/* SPDX-License-Identifier: MIT */
/*
 * lcraft-node's metrics for Prometheus: an HTTP server (libmicrohttpd, a
 * thread of its own) answering GET /metrics with the node's metrics in the
 * text exposition format. Each scrape posts a task to every lcore, which
 * renders its own part there (lcr_node_metrics_prom); the HTTP thread waits
 * for them, at most PROM_WAIT_NS, and merges the parts family by family.
 *
 * Bounded: the connections at once, their idle time, the bytes of a request's
 * headers (no body is read), and the page, whose buffers are sized once at
 * start from the lcores, groups and nodes.
 */
#ifndef LCR_BENCH_PROM_H
#define LCR_BENCH_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "lcraft.h"

struct lcr_prom;

/*
 * The application's own families (the client port's counters), rendered on
 * lcore 0 after the lcore's own part: bytes written, or -ENOSPC. Its text
 * goes at the end of the page as it is.
 */
typedef int (*lcr_prom_app_fn)(void *ctx, char *buf, size_t len);

struct lcr_prom_config {
	const char *listen;  /* HOST:PORT, or [v6]:PORT */
	uint32_t lcores;     /* the node's */
	uint32_t groups;     /* the node's groups, all lcores together */
	uint32_t nodes;	     /* nodes in the cluster (a leader's followers: nodes - 1) */
	size_t app_bytes;    /* the most `app` writes */
	lcr_prom_app_fn app; /* NULL: none */
	void *app_ctx;
};

/*
 * Listen and serve `n`'s metrics: after lcr_node_open() and the groups'
 * lcr_group_open(), before or while lcr_node_run() runs. Returns 0, or
 * -errno with a sentence in `why` (the address, and why it cannot be bound).
 */
int lcr_prom_open(struct lcr_prom **out, struct lcr_node *n, const struct lcr_prom_config *cfg,
		  char *why, size_t why_len);

/* Stop serving (waits for a scrape under way, at most PROM_WAIT_NS). Before lcr_node_close(). */
void lcr_prom_stop(struct lcr_prom *p);

/* Free it: after lcr_node_close(), which runs any task a scrape left posted. */
void lcr_prom_free(struct lcr_prom *p);

#endif /* LCR_BENCH_PROM_H */
