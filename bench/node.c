/* SPDX-License-Identifier: MIT */
/*
 * lcraft-node: one node of an lcraft cluster, serving the replicated
 * key-value store (kv.h) to clients over UDP.
 *
 *   lcraft-node --config FILE --id N [--json-log]
 *   lcraft-node --help | --help-markdown
 *
 * The node runs the groups 1..groups of the config, each with its own map,
 * on the lcores of the config. Clients (lcraft-cli) send requests to the
 * client port (the node's port + client_port_offset), one UDP datagram each
 * (docs/wire-protocol.md, "Client protocol"). Lcore 0 receives them; a
 * request for a group on another lcore is handed there with
 * lcr_node_post(), and answered from there. Writes are proposed on the
 * leader; reads are linearizable (read_policy); other nodes answer
 * NOT_LEADER with the leader they know.
 *
 * SIGTERM or SIGINT stops the lcores; the node closes its logs and sockets
 * and exits 0. jemalloc is the allocator (linked in); its allocated and
 * resident bytes are in the metrics.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jemalloc/jemalloc.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "kv.h"
#include "lcraft.h"
#include "wire.h"

#define RX_BURST 64

struct grp {
	uint32_t id;
	struct lcr_group *g;
	struct lcr_kv *kv;
	uint64_t requests, answered;
};

struct server {
	struct lcr_app_config cfg;
	struct lcr_node *node;
	struct grp *groups; /* index id - 1 */
	uint32_t n_groups;
	int fd; /* the client socket, shared by every lcore for sending */
	uint64_t started_ns;
	uint8_t *rx; /* lcore 0's receive buffer */
	_Atomic uint64_t rx_dgrams, rx_dropped, tx_dgrams, tx_errors;
};

/* A request in flight: its bytes, where to answer. */
struct req {
	struct server *srv;
	struct grp *grp;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	struct lcr_client_req r;
	uint32_t len;
	uint8_t buf[]; /* the request payload; r's pointers point here */
};

static struct server *the_server;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void say(const struct server *s, const char *event, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s && s->cfg.json_log) {
		/* msg never holds a quote or a backslash (ours, and error
		 * sentences with paths); escape them anyway. */
		char esc[2100];
		size_t o = 0;
		for (const char *c = msg; *c && o + 3 < sizeof(esc); c++) {
			if (*c == '"' || *c == '\\')
				esc[o++] = '\\';
			esc[o++] = *c;
		}
		esc[o] = 0;
		fprintf(stderr, "{\"node\":%u,\"event\":\"%s\",\"msg\":\"%s\"}\n", s->cfg.self,
			event, esc);
	} else {
		fprintf(stderr, "lcraft-node %u: %s\n", s ? s->cfg.self : 0, msg);
	}
}

/* ---- answering ---------------------------------------------------------------- */

static void respond(struct req *q, uint8_t status, uint32_t leader, const void *value,
		    uint32_t value_len)
{
	struct server *s = q->srv;
	static _Thread_local uint8_t out[LCR_WIRE_CLIENT_DGRAM_MAX];
	struct lcr_client_resp resp = { .id = q->r.id,
					.status = status,
					.op = q->r.op,
					.leader = leader,
					.value_len = value_len,
					.value = value };
	size_t n =
		lcr_wire_encode_client_resp(out + LCR_WIRE_HDR, sizeof(out) - LCR_WIRE_HDR, &resp);
	if (n == 0) {
		static const char msg[] = "the answer does not fit one datagram";
		resp.status = LCR_CLIENT_ERROR;
		resp.value = (const uint8_t *)msg;
		resp.value_len = sizeof(msg) - 1;
		n = lcr_wire_encode_client_resp(out + LCR_WIRE_HDR, sizeof(out) - LCR_WIRE_HDR,
						&resp);
	}
	struct lcr_wire_hdr h = { .type = LCR_WIRE_CLIENT_RESP,
				  .cluster = s->cfg.node.cluster,
				  .group = q->grp ? q->grp->id : 0,
				  .from = s->cfg.self,
				  .to = 0,
				  .len = (uint32_t)n,
				  .frag_count = 1 };
	size_t len = lcr_wire_seal(out, &h);
	if (sendto(s->fd, out, len, 0, (struct sockaddr *)&q->addr, q->addr_len) < 0)
		atomic_fetch_add(&s->tx_errors, 1);
	else
		atomic_fetch_add(&s->tx_dgrams, 1);
	if (q->grp)
		q->grp->answered++;
	free(q);
}

static void respond_msg(struct req *q, uint8_t status, const char *msg)
{
	respond(q, status, 0, msg, (uint32_t)strlen(msg));
}

/* A refusal by the library, as the client protocol says it. */
static void respond_err(struct req *q, int err, uint32_t leader)
{
	switch (-err) {
	case LCR_ENOTLEADER:
		respond(q, LCR_CLIENT_NOT_LEADER, leader, NULL, 0);
		break;
	case LCR_ENOLEASE:
	case LCR_ETRANSFER:
	case LCR_EFULL:
	case LCR_ETIMEDOUT:
	case ECANCELED: /* replaced by another leader's entry: never committed */
		respond(q, LCR_CLIENT_RETRY, leader, NULL, 0);
		break;
	case LCR_ESTOPPED:
		respond_msg(q, LCR_CLIENT_ERROR,
			    "this replica stopped after a storage error; ask another node");
		break;
	default:
		respond_msg(q, LCR_CLIENT_ERROR, lcr_strerror(err));
		break;
	}
}

/* ---- requests, on the group's lcore --------------------------------------------- */

static void written(void *ctx, int err, uint32_t leader, const void *result, uint32_t len)
{
	struct req *q = ctx;
	if (err) {
		respond_err(q, err, leader);
		return;
	}
	uint8_t status = len >= 1 ? *(const uint8_t *)result : LCR_CLIENT_ERROR;
	const uint8_t *v = NULL;
	uint32_t vl = 0;
	/* Runs right after the entry was applied: the value now is the one
	 * the CAS was compared with. */
	if (status == LCR_CLIENT_CAS_FAILED)
		lcr_kv_get(q->grp->kv, q->r.key, q->r.key_len, &v, &vl);
	respond(q, status, 0, v, vl);
}

static void read_ready(void *ctx, int err, uint32_t leader)
{
	struct req *q = ctx;
	const uint8_t *v;
	uint32_t vl;

	if (err) {
		respond_err(q, err, leader);
		return;
	}
	if (lcr_kv_get(q->grp->kv, q->r.key, q->r.key_len, &v, &vl))
		respond(q, LCR_CLIENT_OK, 0, v, vl);
	else
		respond(q, LCR_CLIENT_NOT_FOUND, 0, NULL, 0);
}

static void handle(struct req *q)
{
	struct grp *g = q->grp;
	struct lcr_core_status st;
	int rc;

	g->requests++;
	lcr_group_status(g->g, &st);
	if (st.role != LCR_ROLE_LEADER) {
		respond(q, LCR_CLIENT_NOT_LEADER, st.leader, NULL, 0);
		return;
	}
	if (q->r.op == LCR_CLIENT_GET) {
		rc = lcr_read(g->g, q->srv->cfg.read_policy, read_ready, q);
		if (rc < 0)
			respond_err(q, rc, st.leader);
		return;
	}
	static _Thread_local uint8_t
		cmd[LCR_KV_CMD_HDR + LCR_CLIENT_KEY_MAX + 2 * LCR_CLIENT_VALUE_MAX];
	size_t n = lcr_kv_encode(cmd, sizeof(cmd), &q->r);
	if (n == 0) {
		respond_msg(q, LCR_CLIENT_ERROR, "a write needs a key of 1..1024 bytes");
		return;
	}
	rc = lcr_propose(g->g, cmd, (uint32_t)n, written, q);
	if (rc < 0)
		respond_err(q, rc, st.leader);
}

static void handle_task(struct lcr_node *n, void *arg)
{
	(void)n;
	handle(arg);
}

/* ---- metrics -------------------------------------------------------------------- */

static size_t jemalloc_stat(const char *name)
{
	size_t v = 0, len = sizeof(v);
	if (mallctl(name, &v, &len, NULL, 0) != 0)
		return 0;
	return v;
}

static void stats(struct req *q)
{
	struct server *s = q->srv;
	size_t cap = LCR_WIRE_CLIENT_DGRAM_MAX - LCR_WIRE_HDR - 24, o = 0;
	char *buf = malloc(cap);
	struct rusage ru;

	if (!buf) {
		respond_msg(q, LCR_CLIENT_ERROR, "out of memory");
		return;
	}
	/* jemalloc caches its statistics: a new epoch refreshes them. */
	uint64_t epoch = 1;
	size_t elen = sizeof(epoch);
	mallctl("epoch", &epoch, &elen, &epoch, elen);
	getrusage(RUSAGE_SELF, &ru);
	int k = snprintf(buf, cap,
			 "{\"node\":%u,\"uptime_s\":%.3f,\"allocator\":{\"name\":\"jemalloc\","
			 "\"allocated\":%zu,\"active\":%zu,\"resident\":%zu,\"mapped\":%zu},"
			 "\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"client\":{\"rx\":%llu,"
			 "\"dropped\":%llu,\"tx\":%llu,\"tx_errors\":%llu},\"kv\":[",
			 s->cfg.self, (double)(mono_ns() - s->started_ns) / 1e9,
			 jemalloc_stat("stats.allocated"), jemalloc_stat("stats.active"),
			 jemalloc_stat("stats.resident"), jemalloc_stat("stats.mapped"),
			 (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
			 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
			 (unsigned long long)atomic_load(&s->rx_dgrams),
			 (unsigned long long)atomic_load(&s->rx_dropped),
			 (unsigned long long)atomic_load(&s->tx_dgrams),
			 (unsigned long long)atomic_load(&s->tx_errors));
	o = (size_t)k;
	for (uint32_t i = 0; i < s->n_groups && o < cap; i++) {
		struct lcr_kv_stats ks;
		lcr_kv_stats(s->groups[i].kv, &ks);
		k = snprintf(buf + o, cap - o,
			     "%s{\"group\":%u,\"keys\":%llu,\"bytes\":%llu,\"puts\":%llu,"
			     "\"cas_ok\":%llu,\"cas_failed\":%llu,\"deletes\":%llu,"
			     "\"duplicates\":%llu,\"malformed\":%llu,\"requests\":%llu}",
			     i ? "," : "", s->groups[i].id, (unsigned long long)ks.keys,
			     (unsigned long long)ks.bytes, (unsigned long long)ks.puts,
			     (unsigned long long)ks.cas_ok, (unsigned long long)ks.cas_failed,
			     (unsigned long long)ks.deletes, (unsigned long long)ks.duplicates,
			     (unsigned long long)ks.malformed,
			     (unsigned long long)s->groups[i].requests);
		o += (size_t)k;
	}
	if (o + 16 < cap) {
		o += (size_t)snprintf(buf + o, cap - o, "],\"lcraft\":");
		int w = lcr_node_metrics_json(s->node, buf + o, cap - o - 2);
		if (w > 0) {
			o += (size_t)w;
			buf[o++] = '}';
			buf[o] = 0;
			respond(q, LCR_CLIENT_OK, 0, buf, (uint32_t)o);
			free(buf);
			return;
		}
	}
	free(buf);
	respond_msg(q, LCR_CLIENT_ERROR, "the metrics do not fit one datagram");
}

/* ---- the client socket (lcore 0) ------------------------------------------------ */

static void dispatch(struct server *s, const uint8_t *d, size_t len,
		     const struct sockaddr_storage *from, socklen_t from_len)
{
	struct lcr_wire_hdr h;
	if (lcr_wire_open_client(d, len, s->cfg.node.cluster, &h) != LCR_DROP_NONE ||
	    h.type != LCR_WIRE_CLIENT_REQ) {
		atomic_fetch_add(&s->rx_dropped, 1);
		return;
	}
	struct req *q = malloc(sizeof(*q) + h.len);
	if (!q) {
		atomic_fetch_add(&s->rx_dropped, 1);
		return;
	}
	memset(q, 0, sizeof(*q));
	q->srv = s;
	q->len = h.len;
	memcpy(q->buf, d + LCR_WIRE_HDR, h.len);
	memcpy(&q->addr, from, from_len);
	q->addr_len = from_len;
	if (lcr_wire_decode_client_req(q->buf, q->len, &q->r) != LCR_DROP_NONE) {
		atomic_fetch_add(&s->rx_dropped, 1);
		free(q);
		return;
	}
	if (q->r.op == LCR_CLIENT_STATS) {
		stats(q);
		return;
	}
	if (h.group == 0 || h.group > s->n_groups) {
		char msg[96];
		snprintf(msg, sizeof(msg), "no group %u here (groups 1..%u)", h.group, s->n_groups);
		respond_msg(q, LCR_CLIENT_ERROR, msg);
		return;
	}
	q->grp = &s->groups[h.group - 1];
	uint32_t lcore = lcr_group_lcore(s->node, h.group);
	if (lcore == 0) {
		handle(q);
		return;
	}
	if (lcr_node_post(s->node, lcore, handle_task, q) < 0)
		respond(q, LCR_CLIENT_RETRY, 0, NULL, 0);
}

static bool client_poll(struct lcr_node *n, uint32_t lcore, void *ctx, uint64_t now)
{
	struct server *s = ctx;
	bool work = false;
	(void)n;
	(void)lcore;
	(void)now;

	for (int i = 0; i < RX_BURST; i++) {
		struct sockaddr_storage from;
		socklen_t from_len = sizeof(from);
		ssize_t k = recvfrom(s->fd, s->rx, LCR_WIRE_CLIENT_DGRAM_MAX + 1, MSG_DONTWAIT,
				     (struct sockaddr *)&from, &from_len);
		if (k < 0)
			break;
		atomic_fetch_add(&s->rx_dgrams, 1);
		dispatch(s, s->rx, (size_t)k, &from, from_len);
		work = true;
	}
	return work;
}

static int client_socket(struct server *s, char *why, size_t why_len)
{
	const struct lcr_peer_addr *me = lcr_app_config_peer(&s->cfg, s->cfg.self);
	const char *host = s->cfg.node.bind_host ? s->cfg.node.bind_host : "0.0.0.0";
	unsigned port = (unsigned)me->port + s->cfg.client_port_offset;
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV },
			*ai = NULL;
	char ps[16];

	snprintf(ps, sizeof(ps), "%u", port);
	int rc = getaddrinfo(host, ps, &hints, &ai);
	if (rc != 0) {
		snprintf(why, why_len, "client socket: %s: %s", host, gai_strerror(rc));
		return -EINVAL;
	}
	int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		rc = -errno;
		snprintf(why, why_len, "client socket: bind %s:%u: %s", host, port,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	int big = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	s->fd = fd;
	return 0;
}

/* ---- main ------------------------------------------------------------------------- */

static void on_signal(int sig)
{
	(void)sig;
	if (the_server && the_server->node)
		lcr_node_stop(the_server->node);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: lcraft-node --config FILE --id N [--json-log]\n"
		   "       lcraft-node --help | --help-markdown\n"
		   "\n"
		   "Runs node N of the cluster FILE describes, serving its key-value store to\n"
		   "lcraft-cli on the client port (the node's port + client_port_offset).\n"
		   "SIGTERM or SIGINT stops it cleanly.\n\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },  { "id", required_argument, NULL, 'i' },
		{ "json-log", no_argument, NULL, 'j' },	     { "help", no_argument, NULL, 'h' },
		{ "help-markdown", no_argument, NULL, 'm' }, { NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	long id = 0;
	bool json_log = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:i:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'i': {
			char *end;
			id = strtol(optarg, &end, 10);
			if (*end || id < 1 || id > UINT32_MAX) {
				fprintf(stderr,
					"lcraft-node: --id %s: a node id is 1..4294967295\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'j':
			json_log = true;
			break;
		case 'h':
			usage(stdout);
			lcr_app_config_help(stdout);
			return 0;
		case 'm':
			lcr_app_config_markdown(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || id == 0 || optind != argc) {
		usage(stderr);
		fprintf(stderr, "lcraft-node: --config and --id are required\n");
		return 2;
	}

	static struct server srv;
	char why[512];
	int rc = lcr_app_config_load(&srv.cfg, path, (uint32_t)id, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "lcraft-node: %s\n", why);
		return 2;
	}
	srv.cfg.json_log = json_log;
	srv.fd = -1;
	srv.started_ns = mono_ns();
	the_server = &srv;

	rc = lcr_node_open(&srv.node, &srv.cfg.node, why, sizeof(why));
	if (rc < 0) {
		say(&srv, "error", "%s", why);
		return 1;
	}
	srv.n_groups = srv.cfg.groups;
	srv.groups = calloc(srv.n_groups, sizeof(*srv.groups));
	srv.rx = malloc(LCR_WIRE_CLIENT_DGRAM_MAX + 1);
	if (!srv.groups || !srv.rx) {
		say(&srv, "error", "out of memory");
		return 1;
	}
	for (uint32_t i = 0; i < srv.n_groups; i++) {
		struct grp *g = &srv.groups[i];
		g->id = i + 1;
		g->kv = lcr_kv_new();
		struct lcr_sm_ops ops = { .apply = lcr_kv_apply };
		if (!g->kv || (rc = lcr_group_open(srv.node, g->id, &ops, g->kv, &g->g, why,
						   sizeof(why))) < 0) {
			say(&srv, "error", "%s", g->kv ? why : "out of memory");
			lcr_node_close(srv.node);
			return 1;
		}
	}
	if ((rc = client_socket(&srv, why, sizeof(why))) < 0) {
		say(&srv, "error", "%s", why);
		lcr_node_close(srv.node);
		return 1;
	}
	lcr_node_set_poll(srv.node, 0, client_poll, srv.fd, &srv);

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	const struct lcr_peer_addr *me = lcr_app_config_peer(&srv.cfg, srv.cfg.self);
	say(&srv, "start",
	    "cluster %llu, %u peers, raft %s:%u, clients port %u, %u lcore(s), %u group(s), data "
	    "in %s",
	    (unsigned long long)srv.cfg.node.cluster, srv.cfg.node.n_peers, me->host, me->port,
	    (unsigned)me->port + srv.cfg.client_port_offset, srv.cfg.node.lcores, srv.n_groups,
	    srv.cfg.data_dir);
	rc = lcr_node_run(srv.node);
	if (rc < 0)
		say(&srv, "error", "could not start the lcores: %s", strerror(-rc));
	lcr_node_close(srv.node);
	srv.node = NULL;
	close(srv.fd);
	for (uint32_t i = 0; i < srv.n_groups; i++)
		lcr_kv_free(srv.groups[i].kv);
	free(srv.groups);
	free(srv.rx);
	say(&srv, "stop", "stopped cleanly");
	return rc < 0 ? 1 : 0;
}
