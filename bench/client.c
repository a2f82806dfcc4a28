/* SPDX-License-Identifier: MIT */
/* A client of lcraft-node's key-value service (client.h). */
#define _GNU_SOURCE
#include "client.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ROUND_MS 300 /* wait this long for one node before trying the next */

struct target {
	uint32_t id;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int family;
	bool resolved;
};

struct lcr_kv_client {
	const struct lcr_app_config *cfg;
	struct target nodes[LCR_PEERS_MAX];
	uint32_t n_nodes;
	uint32_t group;
	int fd4, fd6;
	uint64_t id, next_id;
	uint32_t leader; /* last one seen */
	uint64_t rng;
	bool verbose;
	uint8_t buf[LCR_WIRE_CLIENT_DGRAM_MAX + 1];
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int lcr_kv_client_open(struct lcr_kv_client **out, const struct lcr_app_config *cfg, uint32_t group,
		       char *why, size_t why_len)
{
	struct lcr_kv_client *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	c->cfg = cfg;
	c->group = group;
	c->fd4 = c->fd6 = -1;
	for (uint32_t i = 0; i < cfg->node.n_peers; i++)
		c->nodes[c->n_nodes++].id = cfg->node.peers[i].id;
	if (c->n_nodes == 0) {
		free(c);
		snprintf(why, why_len, "the config lists no nodes");
		return -EINVAL;
	}
	if (getrandom(&c->id, sizeof(c->id), 0) != sizeof(c->id) || c->id == 0)
		c->id = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)c;
	c->rng = c->id | 1;
	*out = c;
	return 0;
}

void lcr_kv_client_close(struct lcr_kv_client *c)
{
	if (!c)
		return;
	if (c->fd4 >= 0)
		close(c->fd4);
	if (c->fd6 >= 0)
		close(c->fd6);
	free(c);
}

void lcr_kv_client_verbose(struct lcr_kv_client *c, bool on)
{
	c->verbose = on;
}

uint64_t lcr_kv_client_id(const struct lcr_kv_client *c)
{
	return c->id;
}

uint64_t lcr_kv_client_next_id(struct lcr_kv_client *c)
{
	return ++c->next_id;
}

static struct target *target_of(struct lcr_kv_client *c, uint32_t id)
{
	for (uint32_t i = 0; i < c->n_nodes; i++)
		if (c->nodes[i].id == id)
			return &c->nodes[i];
	return NULL;
}

bool lcr_kv_client_knows(const struct lcr_kv_client *c, uint32_t node)
{
	for (uint32_t i = 0; i < c->n_nodes; i++)
		if (c->nodes[i].id == node)
			return true;
	return false;
}

static int resolve(struct lcr_kv_client *c, struct target *t)
{
	const struct lcr_peer_addr *p = lcr_app_config_peer(c->cfg, t->id);
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV }, *ai;
	char port[16];

	snprintf(port, sizeof(port), "%u", (unsigned)p->port + c->cfg->client_port_offset);
	int rc = getaddrinfo(p->host, port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "lcraft client: node %u: %s: %s\n", t->id, p->host,
			gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	t->addr_len = ai->ai_addrlen;
	t->family = ai->ai_family;
	t->resolved = true;
	freeaddrinfo(ai);
	return 0;
}

static int sock_for(struct lcr_kv_client *c, int family)
{
	int *fd = family == AF_INET6 ? &c->fd6 : &c->fd4;
	if (*fd < 0)
		*fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	return *fd < 0 ? -errno : *fd;
}

int lcr_kv_client_exchange(struct lcr_kv_client *c, uint32_t node, const struct lcr_client_req *r,
			   uint64_t wait_ms, struct lcr_kv_answer *a)
{
	struct target *t = target_of(c, node);
	int rc;

	if (!t)
		return -EINVAL;
	if (!t->resolved && (rc = resolve(c, t)) < 0)
		return rc;
	int fd = sock_for(c, t->family);
	if (fd < 0)
		return fd;
	/* The codec refuses flags the op does not take, as the node would. */
	size_t n =
		lcr_wire_encode_client_req(c->buf + LCR_WIRE_HDR, sizeof(c->buf) - LCR_WIRE_HDR, r);
	if (n == 0)
		return -EMSGSIZE;
	struct lcr_wire_hdr h = { .type = LCR_WIRE_CLIENT_REQ,
				  .cluster = c->cfg->node.cluster,
				  .group = c->group,
				  .to = node,
				  .len = (uint32_t)n,
				  .frag_count = 1 };
	size_t len = lcr_wire_seal(c->buf, &h);
	if (sendto(fd, c->buf, len, 0, (struct sockaddr *)&t->addr, t->addr_len) < 0) {
		rc = -errno;
		if (c->verbose)
			fprintf(stderr, "lcraft client: send to node %u: %s\n", node,
				strerror(errno));
		return rc;
	}
	uint64_t end = mono_ms() + wait_ms;
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= end)
			return -ETIMEDOUT;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, (int)(end - now)) <= 0)
			continue;
		ssize_t k = recv(fd, c->buf, sizeof(c->buf), MSG_DONTWAIT);
		if (k < 0)
			continue; /* e.g. ECONNREFUSED: nobody listens there (yet) */
		struct lcr_wire_hdr rh;
		struct lcr_client_resp resp;
		if (lcr_wire_open_client(c->buf, (size_t)k, c->cfg->node.cluster, &rh) !=
			    LCR_DROP_NONE ||
		    rh.type != LCR_WIRE_CLIENT_RESP ||
		    lcr_wire_decode_client_resp(c->buf + LCR_WIRE_HDR, rh.len, &resp) !=
			    LCR_DROP_NONE ||
		    resp.id != r->id)
			continue; /* not ours, or the answer to an earlier try */
		a->status = resp.status;
		a->leader = resp.leader;
		a->from = rh.from;
		a->value_len = resp.value_len;
		a->value = malloc((size_t)resp.value_len + 1);
		if (!a->value)
			return -ENOMEM;
		if (resp.value_len)
			memcpy(a->value, resp.value, resp.value_len);
		a->value[resp.value_len] = 0;
		return 0;
	}
}

static void backoff_sleep(uint64_t *ms)
{
	usleep((useconds_t)(*ms * 1000));
	*ms = *ms * 2 > 200 ? 200 : *ms * 2;
}

int lcr_kv_client_call(struct lcr_kv_client *c, const struct lcr_client_req *r, uint32_t first,
		       uint64_t timeout_ms, struct lcr_kv_answer *a)
{
	uint64_t deadline = mono_ms() + timeout_ms, backoff = 10;
	struct target *t = target_of(c, first ? first : c->leader);

	if (!t) {
		c->rng ^= c->rng << 13;
		c->rng ^= c->rng >> 7;
		c->rng ^= c->rng << 17;
		t = &c->nodes[c->rng % c->n_nodes];
	}
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		uint64_t wait = deadline - now < ROUND_MS ? deadline - now : ROUND_MS;
		int rc = lcr_kv_client_exchange(c, t->id, r, wait, a);
		if (rc == -ENOMEM || rc == -EMSGSIZE)
			return rc;
		if (rc == 0 && a->status == LCR_CLIENT_NOT_LEADER) {
			struct target *l = a->leader ? target_of(c, a->leader) : NULL;
			if (c->verbose)
				fprintf(stderr,
					"lcraft client: node %u is not the leader (leader: %u)\n",
					t->id, a->leader);
			free(a->value);
			if (l && l != t) {
				t = l;
				continue;
			}
			/* No leader known there yet: wait a little, ask another. */
			backoff_sleep(&backoff);
		} else if (rc == 0 && a->status == LCR_CLIENT_RETRY) {
			if (c->verbose)
				fprintf(stderr, "lcraft client: node %u says retry\n", t->id);
			free(a->value);
			backoff_sleep(&backoff);
			continue;
		} else if (rc == 0) {
			if (a->status != LCR_CLIENT_ERROR)
				c->leader = a->from;
			return 0;
		} else {
			if (c->verbose)
				fprintf(stderr, "lcraft client: node %u: %s\n", t->id,
					rc == -ETIMEDOUT ? "no answer" : strerror(-rc));
			if (rc != -ETIMEDOUT)
				backoff_sleep(&backoff); /* failed at once: do not spin */
		}
		t = &c->nodes[(uint32_t)(t - c->nodes + 1) % c->n_nodes];
	}
}
