/* SPDX-License-Identifier: MIT */
/* A client of lcraft-node's key-value service (client.h). */
#define _GNU_SOURCE
#include "client.h"

#include "auth.h"

#include <assert.h>
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
/* The config's nodes and as many learned from memberships. */
#define NODES_MAX (2 * LCR_PEERS_MAX)

struct target {
	uint32_t id;
	char host[LCR_CLIENT_ADDR_MAX]; /* of its Raft port, without brackets */
	uint16_t port;			/* its Raft port (the client port is + the offset) */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int family;
	bool resolved;
};

struct lcr_kv_client {
	const struct lcr_app_config *cfg;
	struct target nodes[NODES_MAX];
	uint32_t n_nodes;
	uint32_t group;
	int fd4, fd6;
	uint64_t id, next_id;
	uint32_t leader; /* last one seen */
	uint64_t rng;
	bool verbose;
	bool auth;	       /* requests sealed, answers verified (client key) */
	struct lcr_auth_tx tx; /* as this client */
	struct lcr_auth_rx rx; /* the nodes' answers */
	uint8_t buf[LCR_WIRE_CLIENT_DGRAM_MAX + 1];
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The client key's contexts: requests as this client (its random id; a boot
 * from the clock, in ns, so a later process with the same id, were there
 * one, starts above it), answers from any node it may ask.
 */
static int auth_open(struct lcr_kv_client *c, char *why, size_t why_len)
{
	struct lcr_auth_key k = { .alg = c->cfg->auth_alg, .cluster = c->cfg->node.cluster };
	struct timespec ts;
	int rc;

	if ((rc = lcr_auth_usable(k.alg, why, why_len)) < 0)
		return rc;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t boot = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	memcpy(k.key, c->cfg->client_key, sizeof(k.key));
	rc = lcr_auth_tx_init(&c->tx, &k, c->id, boot ? boot : 1, LCR_AUTH_CHANNEL_CLIENT);
	if (rc == 0 &&
	    (rc = lcr_auth_rx_init(&c->rx, &k, LCR_AUTH_CHANNEL_ANSWER, NODES_MAX, NULL)) < 0)
		lcr_auth_tx_wipe(&c->tx);
	lcr_auth_wipe(&k, sizeof(k));
	if (rc < 0)
		snprintf(why, why_len, "client key: %s", strerror(-rc));
	c->auth = rc == 0;
	return rc;
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
	for (uint32_t i = 0; i < cfg->node.n_peers; i++) {
		struct target *t = &c->nodes[c->n_nodes++];
		t->id = cfg->node.peers[i].id;
		snprintf(t->host, sizeof(t->host), "%s", cfg->node.peers[i].host);
		t->port = cfg->node.peers[i].port;
	}
	if (c->n_nodes == 0) {
		free(c);
		snprintf(why, why_len, "the config lists no nodes");
		return -EINVAL;
	}
	if (getrandom(&c->id, sizeof(c->id), 0) != sizeof(c->id) || c->id == 0)
		c->id = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)c;
	c->rng = c->id | 1;
	if (cfg->has_client_key) {
		int rc = auth_open(c, why, why_len);
		if (rc < 0) {
			free(c);
			return rc;
		}
	}
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
	if (c->auth) {
		lcr_auth_tx_wipe(&c->tx);
		lcr_auth_rx_free(&c->rx);
	}
	free(c);
}

uint64_t lcr_kv_client_auth_drops(const struct lcr_kv_client *c, uint32_t reason)
{
	return c->auth && reason < LCR_AUTH_DROP_MAX ? c->rx.st.drops[reason] : 0;
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

int lcr_kv_client_add_node(struct lcr_kv_client *c, uint32_t id, const char *addr)
{
	struct lcr_peer_addr p;
	char why[160];

	if (id == 0 || lcr_peer_addr_parse(addr, id, &p, why, sizeof(why)) < 0)
		return -EINVAL;
	struct target *t = target_of(c, id);
	if (!t) {
		if (c->n_nodes == NODES_MAX)
			return -ENOSPC;
		t = &c->nodes[c->n_nodes++];
	}
	memset(t, 0, sizeof(*t));
	t->id = id;
	static_assert(sizeof(t->host) == sizeof(p.host), "a host as the config holds it");
	memcpy(t->host, p.host, sizeof(t->host));
	t->port = p.port;
	return 0;
}

static int resolve(struct lcr_kv_client *c, struct target *t)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV }, *ai;
	char port[16];

	if ((unsigned)t->port + c->cfg->client_port_offset > 65535) {
		fprintf(stderr,
			"lcraft client: node %u: port %u + client_port_offset %u is past 65535\n",
			t->id, t->port, c->cfg->client_port_offset);
		return -EHOSTUNREACH;
	}
	snprintf(port, sizeof(port), "%u", (unsigned)t->port + c->cfg->client_port_offset);
	int rc = getaddrinfo(t->host, port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "lcraft client: node %u: %s: %s\n", t->id, t->host,
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

/*
 * An answer of *len bytes in c->buf, with a client key: its MAC verified as
 * the node its header's `from` names (the only field read before), bound to
 * this client's id, the trailer cut from *len. false: dropped (counted in
 * c->rx).
 */
static bool answer_verified(struct lcr_kv_client *c, size_t *len)
{
	if (*len < LCR_WIRE_HDR + LCR_AUTH_TRAILER) {
		c->rx.st.drops[LCR_AUTH_SHORT]++;
		return false;
	}
	uint32_t from = (uint32_t)c->buf[20] | (uint32_t)c->buf[21] << 8 |
			(uint32_t)c->buf[22] << 16 | (uint32_t)c->buf[23] << 24;
	uint32_t why = lcr_auth_open_bound(&c->rx, from, c->buf, *len, c->id);
	if (why != LCR_AUTH_OK) {
		if (c->verbose)
			fprintf(stderr, "lcraft client: an answer as node %u refused: %s\n", from,
				lcr_auth_drop_name(why));
		return false;
	}
	*len -= LCR_AUTH_TRAILER;
	return true;
}

int lcr_kv_client_send(struct lcr_kv_client *c, uint32_t node, const struct lcr_client_req *r)
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
	/* The codec refuses flags the op does not take, as the node would. The
	 * trailer, with a key, follows within the largest datagram. */
	size_t cap = LCR_WIRE_CLIENT_DGRAM_MAX - LCR_WIRE_HDR - (c->auth ? LCR_AUTH_TRAILER : 0);
	size_t n = lcr_wire_encode_client_req(c->buf + LCR_WIRE_HDR, cap, r);
	if (n == 0)
		return -EMSGSIZE;
	struct lcr_wire_hdr h = { .type = LCR_WIRE_CLIENT_REQ,
				  .cluster = c->cfg->node.cluster,
				  .group = c->group,
				  .to = node,
				  .len = (uint32_t)n,
				  .frag_count = 1 };
	size_t len = lcr_wire_seal(c->buf, &h);
	if (c->auth)
		len = lcr_auth_seal(&c->tx, c->buf, len);
	if (sendto(fd, c->buf, len, 0, (struct sockaddr *)&t->addr, t->addr_len) < 0) {
		rc = -errno;
		if (c->verbose)
			fprintf(stderr, "lcraft client: send to node %u: %s\n", node,
				strerror(errno));
		return rc;
	}
	return 0;
}

/*
 * The first answer to request `r` (its id) that arrives on `fds` before
 * `end` (mono_ms), from any node: 0 with *a, -ETIMEDOUT or -ENOMEM.
 */
static int recv_answer(struct lcr_kv_client *c, const struct lcr_client_req *r, uint64_t end,
		       struct pollfd *fds, nfds_t n_fds, struct lcr_kv_answer *a)
{
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= end)
			return -ETIMEDOUT;
		for (nfds_t i = 0; i < n_fds; i++)
			fds[i].events = POLLIN;
		if (poll(fds, n_fds, (int)(end - now)) <= 0)
			continue;
		for (nfds_t i = 0; i < n_fds; i++) {
			if (!fds[i].revents)
				continue;
			ssize_t got = recv(fds[i].fd, c->buf, sizeof(c->buf), MSG_DONTWAIT);
			if (got < 0)
				continue; /* e.g. ECONNREFUSED: nobody listens there (yet) */
			size_t k = (size_t)got;
			if (c->auth && !answer_verified(c, &k))
				continue;
			struct lcr_wire_hdr rh;
			struct lcr_client_resp resp;
			if (lcr_wire_open_client(c->buf, k, c->cfg->node.cluster, &rh) !=
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
}

int lcr_kv_client_recv(struct lcr_kv_client *c, const struct lcr_client_req *r, uint64_t wait_ms,
		       struct lcr_kv_answer *a)
{
	struct pollfd fds[2];
	nfds_t n = 0;

	if (c->fd4 >= 0)
		fds[n++].fd = c->fd4;
	if (c->fd6 >= 0)
		fds[n++].fd = c->fd6;
	if (n == 0)
		return -ENOTCONN;
	return recv_answer(c, r, mono_ms() + wait_ms, fds, n, a);
}

uint32_t lcr_kv_client_nodes(const struct lcr_kv_client *c, uint32_t *ids, uint32_t max)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < c->n_nodes && n < max; i++)
		ids[n++] = c->nodes[i].id;
	return n;
}

int lcr_kv_client_exchange(struct lcr_kv_client *c, uint32_t node, const struct lcr_client_req *r,
			   uint64_t wait_ms, struct lcr_kv_answer *a)
{
	int rc = lcr_kv_client_send(c, node, r);

	if (rc < 0)
		return rc;
	struct target *t = target_of(c, node);
	struct pollfd pfd = { .fd = t->family == AF_INET6 ? c->fd6 : c->fd4 };
	return recv_answer(c, r, mono_ms() + wait_ms, &pfd, 1, a);
}

/*
 * Node `from` named a leader this client does not know (a node added with
 * --addr): ask `from` its MEMBERS (THIS_NODE, its own view), whose addresses
 * the client then knows. The target of that leader, or NULL.
 */
static struct target *learn_leader(struct lcr_kv_client *c, uint32_t from, uint32_t leader,
				   uint64_t wait_ms)
{
	struct lcr_client_req r = { .client = c->id,
				    .id = lcr_kv_client_next_id(c),
				    .op = LCR_CLIENT_MEMBERS,
				    .flags = LCR_CLIENT_F_THIS_NODE };
	struct lcr_kv_answer a;
	struct lcr_members m;

	if (lcr_kv_client_exchange(c, from, &r, wait_ms, &a) < 0)
		return NULL;
	if (a.status == LCR_CLIENT_OK && lcr_members_parse((char *)a.value, a.value_len, &m) == 0)
		lcr_kv_client_learn(c, &m);
	free(a.value);
	if (c->verbose)
		fprintf(stderr, "lcraft client: node %u named leader %u, %s\n", from, leader,
			target_of(c, leader) ? "learned from its MEMBERS"
					     : "unknown to its MEMBERS");
	return target_of(c, leader);
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
			if (a->leader && !l)
				l = learn_leader(c, t->id, a->leader, wait);
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

/* ---- the MEMBERS answer ---------------------------------------------------------- */

/*
 * A small JSON reader for the MEMBERS answer: objects, arrays, strings
 * without escapes but \" and \\, unsigned integers, true, false, null.
 * Anything else, or nesting deeper than JSON_DEPTH, is refused.
 */
#define JSON_DEPTH 8

struct jr {
	const char *p, *end;
	bool bad;
};

static void j_ws(struct jr *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r'))
		j->p++;
}

/* Consume `ch` if it comes next. */
static bool j_eat(struct jr *j, char ch)
{
	j_ws(j);
	if (j->p < j->end && *j->p == ch) {
		j->p++;
		return true;
	}
	return false;
}

static void j_want(struct jr *j, char ch)
{
	if (!j_eat(j, ch))
		j->bad = true;
}

static bool j_word(struct jr *j, const char *w)
{
	size_t n = strlen(w);

	j_ws(j);
	if ((size_t)(j->end - j->p) >= n && memcmp(j->p, w, n) == 0) {
		j->p += n;
		return true;
	}
	return false;
}

/* A string into out (cap bytes with the terminator; longer: bad). */
static void j_str(struct jr *j, char *out, size_t cap)
{
	size_t n = 0;

	j_want(j, '"');
	while (!j->bad && j->p < j->end && *j->p != '"') {
		char ch = *j->p++;
		if (ch == '\\') {
			if (j->p == j->end || (*j->p != '"' && *j->p != '\\')) {
				j->bad = true;
				break;
			}
			ch = *j->p++;
		}
		if (n + 1 >= cap) {
			j->bad = true;
			break;
		}
		out[n++] = ch;
	}
	if (cap)
		out[n] = '\0';
	j_want(j, '"');
}

static uint64_t j_u64(struct jr *j)
{
	uint64_t v = 0;
	int digits = 0;

	j_ws(j);
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9' && digits < 20) {
		v = v * 10 + (uint64_t)(*j->p++ - '0');
		digits++;
	}
	if (digits == 0 || digits == 20)
		j->bad = true;
	return v;
}

static bool j_bool(struct jr *j)
{
	if (j_word(j, "true"))
		return true;
	if (!j_word(j, "false"))
		j->bad = true;
	return false;
}

static void j_skip(struct jr *j, int depth)
{
	char tmp[256];

	j_ws(j);
	if (j->bad || j->p == j->end || depth > JSON_DEPTH) {
		j->bad = true;
		return;
	}
	if (*j->p == '"') {
		j_str(j, tmp, sizeof(tmp));
	} else if (*j->p == '{' || *j->p == '[') {
		char close = *j->p == '{' ? '}' : ']';
		j->p++;
		if (j_eat(j, close))
			return;
		do {
			if (close == '}') {
				j_str(j, tmp, sizeof(tmp));
				j_want(j, ':');
			}
			j_skip(j, depth + 1);
		} while (!j->bad && j_eat(j, ','));
		j_want(j, close);
	} else if (!j_word(j, "true") && !j_word(j, "false") && !j_word(j, "null")) {
		(void)j_u64(j);
	}
}

/* An array of node ids, at most `max`. */
static uint32_t j_ids(struct jr *j, uint32_t *ids, uint32_t max)
{
	uint32_t n = 0;

	j_want(j, '[');
	if (j_eat(j, ']'))
		return 0;
	do {
		uint64_t v = j_u64(j);
		if (n == max || v > UINT32_MAX) {
			j->bad = true;
			return n;
		}
		ids[n++] = (uint32_t)v;
	} while (!j->bad && j_eat(j, ','));
	j_want(j, ']');
	return n;
}

/* Walk an object's members: on each key, `fn` reads the value (or skips it). */
typedef void (*j_member_fn)(struct jr *j, const char *key, void *ctx);

static void j_object(struct jr *j, j_member_fn fn, void *ctx)
{
	char key[32];

	j_want(j, '{');
	if (j_eat(j, '}'))
		return;
	do {
		j_str(j, key, sizeof(key));
		j_want(j, ':');
		if (!j->bad)
			fn(j, key, ctx);
	} while (!j->bad && j_eat(j, ','));
	j_want(j, '}');
}

static void m_log_id(struct jr *j, const char *key, void *ctx)
{
	struct lcr_log_id *id = ctx;

	if (strcmp(key, "term") == 0)
		id->lid.term = j_u64(j);
	else if (strcmp(key, "node") == 0)
		id->lid.node = (uint32_t)j_u64(j);
	else if (strcmp(key, "index") == 0)
		id->index = j_u64(j);
	else
		j_skip(j, 2);
}

static void m_node(struct jr *j, const char *key, void *ctx)
{
	struct lcr_members_node *n = ctx;

	if (strcmp(key, "id") == 0) {
		n->id = (uint32_t)j_u64(j);
	} else if (strcmp(key, "voter") == 0) {
		n->voter = j_bool(j);
	} else if (strcmp(key, "addr") == 0) {
		if (!j_word(j, "null"))
			j_str(j, n->addr, sizeof(n->addr));
	} else if (strcmp(key, "matched") == 0) {
		n->matched = j_u64(j);
		n->progress = true;
	} else if (strcmp(key, "lag") == 0) {
		n->lag = j_u64(j);
	} else {
		j_skip(j, 3);
	}
}

static void m_top(struct jr *j, const char *key, void *ctx)
{
	struct lcr_members *m = ctx;

	if (strcmp(key, "group") == 0) {
		m->group = (uint32_t)j_u64(j);
	} else if (strcmp(key, "node") == 0) {
		m->node = (uint32_t)j_u64(j);
	} else if (strcmp(key, "leader") == 0) {
		m->leader = (uint32_t)j_u64(j);
	} else if (strcmp(key, "role") == 0) {
		j_str(j, m->role, sizeof(m->role));
	} else if (strcmp(key, "term") == 0) {
		m->term = j_u64(j);
	} else if (strcmp(key, "log_id") == 0) {
		j_object(j, m_log_id, &m->log_id);
	} else if (strcmp(key, "joint") == 0) {
		m->joint = j_bool(j);
	} else if (strcmp(key, "committed") == 0) {
		m->committed = j_bool(j);
	} else if (strcmp(key, "configs") == 0) {
		j_want(j, '[');
		do {
			if (m->n_configs == LCR_CONFIGS_MAX) {
				j->bad = true;
				return;
			}
			m->configs[m->n_configs].n =
				j_ids(j, m->configs[m->n_configs].ids, LCR_NODES_MAX);
			m->n_configs++;
		} while (!j->bad && j_eat(j, ','));
		j_want(j, ']');
	} else if (strcmp(key, "learners") == 0) {
		m->n_learners = j_ids(j, m->learners, LCR_NODES_MAX);
	} else if (strcmp(key, "last_index") == 0) {
		m->last_index = j_u64(j);
	} else if (strcmp(key, "nodes") == 0) {
		j_want(j, '[');
		if (j_eat(j, ']'))
			return;
		do {
			if (m->n_nodes == 2 * LCR_NODES_MAX) {
				j->bad = true;
				return;
			}
			j_object(j, m_node, &m->nodes[m->n_nodes++]);
		} while (!j->bad && j_eat(j, ','));
		j_want(j, ']');
	} else if (strcmp(key, "held_state") == 0) {
		m->n_held = j_ids(j, m->held, LCR_MEMBERS_HELD_MAX);
	} else if (strcmp(key, "checking") == 0) {
		m->checking = j_bool(j);
	} else {
		j_skip(j, 1); /* "voters" (the configs again), and what later nodes add */
	}
}

int lcr_members_parse(const char *json, size_t len, struct lcr_members *m)
{
	struct jr j = { json, json + len, false };

	memset(m, 0, sizeof(*m));
	j_object(&j, m_top, m);
	j_ws(&j);
	if (j.bad || j.p != j.end || m->n_configs == 0)
		return -EBADMSG;
	return 0;
}

const struct lcr_members_node *lcr_members_find(const struct lcr_members *m, uint32_t id)
{
	for (uint32_t i = 0; i < m->n_nodes; i++)
		if (m->nodes[i].id == id)
			return &m->nodes[i];
	return NULL;
}

void lcr_kv_client_learn(struct lcr_kv_client *c, const struct lcr_members *m)
{
	for (uint32_t i = 0; i < m->n_nodes; i++) {
		const struct lcr_members_node *n = &m->nodes[i];
		const struct target *t = target_of(c, n->id);
		struct lcr_peer_addr p;
		char why[160];

		if (!n->addr[0] || lcr_peer_addr_parse(n->addr, n->id, &p, why, sizeof(why)) < 0)
			continue;
		if (t && strcmp(t->host, p.host) == 0 && t->port == p.port)
			continue; /* resolved already, maybe */
		(void)lcr_kv_client_add_node(c, n->id, n->addr);
	}
}
