/* SPDX-License-Identifier: MIT */
/*
 * lcraft-node's metrics over HTTP for Prometheus (prom.h). libmicrohttpd runs
 * one thread of its own that polls every connection and calls answer() for
 * each request, so scrapes are served one at a time, and the buffers below
 * belong to that thread, except a part whose task is posted and not yet run
 * (struct part's `pending`): that buffer is its lcore's until the task ends.
 */
#define _GNU_SOURCE
#include "prom.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lcr_assert.h"

/* How long a scrape waits for the lcores to render their parts. */
#define PROM_WAIT_NS 1000000000ull
/* Connections at once; more wait in the listen backlog. */
#define PROM_CONNECTIONS_MAX 8
/* A connection idle this long is closed. */
#define PROM_IDLE_S 10
/* libmicrohttpd's memory per connection: the request line and headers must fit. */
#define PROM_REQUEST_BYTES (16 * 1024)
/* Bytes of an lcore's part: its own families, then per group and per follower. */
#define PROM_LCORE_BYTES    (16 * 1024)
#define PROM_GROUP_BYTES    (10 * 1024)
#define PROM_FOLLOWER_BYTES 256

/* One lcore's text, rendered there by part_task(). */
struct part {
	struct lcr_prom *p;
	uint32_t lcore;
	char *buf;
	size_t cap;
	char *app; /* lcore 0: the application's families, else NULL */
	/* Under p->mu. */
	bool pending; /* posted, not run yet: buf and app are the lcore's */
	int res;      /* the part's bytes, or -errno */
	int app_res;
};

struct lcr_prom {
	struct lcr_node *node;
	struct lcr_prom_config cfg;
	struct MHD_Daemon *mhd;
	struct part *parts; /* one per lcore */
	char *page;	    /* the merged page */
	size_t page_cap;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping; /* under mu: a scrape under way stops waiting */
};

/* ---- gathering, on the lcores ---------------------------------------------------- */

static void part_task(struct lcr_node *n, void *arg)
{
	struct part *pt = arg;
	struct lcr_prom *p = pt->p;
	int res = lcr_node_metrics_prom(n, pt->lcore, pt->buf, pt->cap), app_res = 0;

	if (pt->app && p->cfg.app)
		app_res = p->cfg.app(p->cfg.app_ctx, pt->app, p->cfg.app_bytes);
	pthread_mutex_lock(&p->mu);
	pt->res = res;
	pt->app_res = app_res;
	pt->pending = false;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void deadline_in(struct timespec *ts, uint64_t ns)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ns / 1000000000ull);
	ts->tv_nsec += (long)(ns % 1000000000ull);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/*
 * Every lcore's part, fresh: 0, or -errno with the lcore that failed in
 * *bad. A part still pending from an earlier scrape that gave up on it is
 * waited for first (it is its lcore's until then), within the same deadline.
 */
static int gather(struct lcr_prom *p, uint32_t *bad)
{
	struct timespec dl;
	int rc = 0;

	deadline_in(&dl, PROM_WAIT_NS);
	pthread_mutex_lock(&p->mu);
	for (uint32_t i = 0; i < p->cfg.lcores && rc == 0; i++) {
		struct part *pt = &p->parts[i];
		while (pt->pending && !p->stopping && rc == 0)
			rc = -pthread_cond_timedwait(&p->cv, &p->mu, &dl);
		if (pt->pending || p->stopping) {
			rc = p->stopping ? -LCR_ESTOPPED : -ETIMEDOUT;
			*bad = i;
			break;
		}
		pt->pending = true;
		pt->res = pt->app_res = -EINPROGRESS;
		pthread_mutex_unlock(&p->mu);
		int post = lcr_node_post(p->node, i, part_task, pt);
		pthread_mutex_lock(&p->mu);
		if (post < 0) {
			pt->pending = false; /* never posted: the buffer stays ours */
			rc = post;
			*bad = i;
		}
	}
	for (uint32_t i = 0; i < p->cfg.lcores && rc == 0; i++) {
		struct part *pt = &p->parts[i];
		while (pt->pending && !p->stopping && rc == 0)
			rc = -pthread_cond_timedwait(&p->cv, &p->mu, &dl);
		if (pt->pending) {
			rc = p->stopping ? -LCR_ESTOPPED : -ETIMEDOUT;
			*bad = i;
		} else if (pt->res < 0 || pt->app_res < 0) {
			rc = pt->res < 0 ? pt->res : pt->app_res;
			*bad = i;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* ---- merging ---------------------------------------------------------------------- */

/* Where the family block at `s` ends: at the next "# HELP " line, or at `end`. */
static const char *block_end(const char *s, const char *end)
{
	const char *q = s;
	while (q < end) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		q = nl ? nl + 1 : end;
		if (end - q > 7 && memcmp(q, "# HELP ", 7) == 0)
			break;
	}
	return q;
}

/* "# HELP name " at `s`, up to and with the blank after the name: its length. */
static size_t help_prefix_len(const char *s, const char *end)
{
	size_t n = 7;
	while (s + n < end && s[n] != ' ' && s[n] != '\n')
		n++;
	return n + 1;
}

/* Append `n` bytes to the page, or false when they do not fit. */
static bool put(struct lcr_prom *p, size_t *o, const char *s, size_t n)
{
	if (n > p->page_cap - *o)
		return false;
	memcpy(p->page + *o, s, n);
	*o += n;
	return true;
}

/*
 * The page: lcore 0's part block by block, each followed by the samples of
 * the same family from the other lcores (their "#" lines left out), then the
 * application's families. Bytes, or -EPROTO (parts whose families differ:
 * lcr_node_metrics_prom broke its contract), -ENOSPC.
 */
static int merge(struct lcr_prom *p)
{
	const uint32_t n = p->cfg.lcores;
	const char *at[LCR_LCORES_MAX], *end[LCR_LCORES_MAX];
	size_t o = 0;

	LCR_ASSERT(n >= 1 && n <= LCR_LCORES_MAX);
	for (uint32_t i = 0; i < n; i++) {
		at[i] = p->parts[i].buf;
		end[i] = at[i] + p->parts[i].res;
	}
	while (at[0] < end[0]) {
		const char *s0 = at[0], *b0 = block_end(s0, end[0]);
		size_t head = help_prefix_len(s0, b0);
		if (!put(p, &o, s0, (size_t)(b0 - s0)))
			return -ENOSPC;
		at[0] = b0;
		for (uint32_t i = 1; i < n; i++) {
			if ((size_t)(end[i] - at[i]) < head || memcmp(at[i], s0, head) != 0)
				return -EPROTO;
			const char *bi = block_end(at[i], end[i]);
			for (const char *l = at[i]; l < bi;) {
				const char *nl = memchr(l, '\n', (size_t)(bi - l));
				const char *next = nl ? nl + 1 : bi;
				if (*l != '#' && !put(p, &o, l, (size_t)(next - l)))
					return -ENOSPC;
				l = next;
			}
			at[i] = bi;
		}
	}
	for (uint32_t i = 1; i < n; i++)
		if (at[i] != end[i])
			return -EPROTO;
	if (p->cfg.app && !put(p, &o, p->parts[0].app, (size_t)p->parts[0].app_res))
		return -ENOSPC;
	return (int)o;
}

/* ---- HTTP, on libmicrohttpd's thread ------------------------------------------------ */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     const char *body, size_t len, bool allow_get)
{
	/* Copied: the page buffer is the next scrape's while this one is sent. */
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (allow_get)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET");
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *msg,
			    bool allow_get)
{
	return reply(c, status, "text/plain; charset=utf-8", msg, strlen(msg), allow_get);
}

/*
 * One request. Answered at its first call, with its headers: a body (any
 * method but GET may carry one) is never read, and libmicrohttpd closes the
 * connection after the answer rather than read it.
 */
static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct lcr_prom *p = cls;
	char msg[160];
	uint32_t bad = 0;
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;

	if (strcmp(url, "/metrics") != 0)
		return text(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n",
			    false);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: GET /metrics\n",
			    true);
	int rc = gather(p, &bad);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "lcore %u did not render its metrics: %s\n", bad,
			 rc == -ETIMEDOUT ? "no answer within 1 s" : lcr_strerror(rc));
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg, false);
	}
	rc = merge(p);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "the metrics page could not be built: %s\n",
			 rc == -ENOSPC ? "larger than its buffer" : "the lcores' parts differ");
		return text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, msg, false);
	}
	return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", p->page,
		     (size_t)rc, false);
}

/* ---- life cycle ------------------------------------------------------------------- */

/* "host:port" or "[v6]:port" -> a listening TCP socket, or -errno with why. */
static int listen_on(const char *listen_addr, char *why, size_t why_len)
{
	char host[128];
	const char *port;
	const char *colon = strrchr(listen_addr, ':');

	if (!colon || colon == listen_addr || (size_t)(colon - listen_addr) >= sizeof(host)) {
		snprintf(why, why_len, "metrics_listen %s: expected host:port", listen_addr);
		return -EINVAL;
	}
	size_t hl = (size_t)(colon - listen_addr);
	memcpy(host, listen_addr, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	port = colon + 1;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE },
			*ai = NULL;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		snprintf(why, why_len, "metrics_listen %s: %s", listen_addr, gai_strerror(rc));
		return -EINVAL;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		snprintf(why, why_len, "metrics_listen %s: cannot listen there: %s", listen_addr,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	return fd;
}

static void prom_release(struct lcr_prom *p)
{
	for (uint32_t i = 0; p->parts && i < p->cfg.lcores; i++) {
		free(p->parts[i].buf);
		free(p->parts[i].app);
	}
	free(p->parts);
	free(p->page);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int lcr_prom_open(struct lcr_prom **out, struct lcr_node *n, const struct lcr_prom_config *cfg,
		  char *why, size_t why_len)
{
	LCR_ASSERT(out && n && cfg && cfg->listen);
	LCR_ASSERT(cfg->lcores >= 1 && cfg->lcores <= LCR_LCORES_MAX);
	LCR_ASSERT(cfg->groups >= 1 && cfg->nodes >= 1);
	struct lcr_prom *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(why, why_len, "metrics: out of memory");
		return -ENOMEM;
	}
	p->node = n;
	p->cfg = *cfg;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* Every lcore sized for the most groups one holds (ids spread modulo lcores). */
	size_t per_lcore = (cfg->groups + cfg->lcores - 1) / cfg->lcores;
	size_t cap =
		PROM_LCORE_BYTES +
		per_lcore * (PROM_GROUP_BYTES + (size_t)(cfg->nodes - 1) * PROM_FOLLOWER_BYTES);
	p->parts = calloc(cfg->lcores, sizeof(*p->parts));
	p->page_cap = cap * cfg->lcores + (cfg->app ? cfg->app_bytes : 0);
	p->page = malloc(p->page_cap);
	bool ok = p->parts && p->page;
	for (uint32_t i = 0; ok && i < cfg->lcores; i++) {
		struct part *pt = &p->parts[i];
		pt->p = p;
		pt->lcore = i;
		pt->cap = cap;
		pt->buf = malloc(cap);
		pt->app = i == 0 && cfg->app ? malloc(cfg->app_bytes) : NULL;
		ok = pt->buf && (pt->app || i != 0 || !cfg->app);
	}
	if (!ok) {
		snprintf(why, why_len, "metrics: out of memory for a page of %zu bytes",
			 p->page_cap);
		prom_release(p);
		return -ENOMEM;
	}
	int fd = listen_on(cfg->listen, why, why_len);
	if (fd < 0) {
		prom_release(p);
		return fd;
	}
	p->mhd = MHD_start_daemon(
		MHD_USE_POLL_INTERNAL_THREAD, 0, NULL, NULL, answer, p, MHD_OPTION_LISTEN_SOCKET,
		(MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)PROM_CONNECTIONS_MAX,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)PROM_IDLE_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)PROM_REQUEST_BYTES, MHD_OPTION_END);
	if (!p->mhd) {
		snprintf(why, why_len, "metrics_listen %s: the HTTP server did not start",
			 cfg->listen);
		close(fd);
		prom_release(p);
		return -EIO;
	}
	*out = p;
	return 0;
}

void lcr_prom_stop(struct lcr_prom *p)
{
	if (!p || !p->mhd)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	MHD_stop_daemon(p->mhd); /* joins its thread, closes the socket */
	p->mhd = NULL;
}

void lcr_prom_free(struct lcr_prom *p)
{
	if (!p)
		return;
	LCR_ASSERT(!p->mhd);
	for (uint32_t i = 0; i < p->cfg.lcores; i++)
		LCR_ASSERT(!p->parts[i].pending); /* lcr_node_close() ran every task */
	prom_release(p);
}
