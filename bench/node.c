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
 * NOT_LEADER with the leader they know. SNAPSHOT triggers a snapshot of the
 * group (on the leader, or with THIS_NODE on the receiving node) and is
 * answered once the build finished, with the snapshot's last log id.
 *
 * Nothing a client sends is trusted: lcore 0 checks every datagram in the
 * order docs/wire-protocol.md lists the rules, drops what breaks one and
 * counts it under its reason (enum client_drop, "client"."drops" in the
 * metrics), and answers ERROR, counted under "client"."refused", to a
 * well-formed request it will not serve (misaddressed, no such group, no
 * key, ids a write cannot be deduplicated by). A request waits for its
 * answer in a slot of a pool sized at start-up (struct req_pool), so the
 * receive path allocates nothing; with every slot held, a request is
 * dropped (no_memory).
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "kv.h"
#include "lcr_assert.h"
#include "lcraft.h"
#include "prom.h"
#include "wire.h"

#define RX_BURST 64

/* The fixed part of a CLIENT_REQ payload (docs/wire-protocol.md). */
#define REQ_FIXED 32
/* The largest CLIENT_REQ payload: a CAS with the longest key, value and expect. */
#define REQ_PAYLOAD_MAX (REQ_FIXED + LCR_CLIENT_KEY_MAX + 2 * LCR_CLIENT_VALUE_MAX)

/*
 * Requests the node holds at a time (read, not yet answered): 1,024 per
 * group, 8,192 at most; one more is dropped (no_memory) and its client
 * resends. A client has one request in flight (client.h), so this is about
 * clients at once, counting resends whose earlier copy is still held.
 */
#define REQS_PER_GROUP 1024
#define REQS_MAX       8192

/*
 * How long a SNAPSHOT request waits for the build it triggered (or the one
 * under way) before it is answered RETRY: the build goes on, and the
 * client's resend waits for the same one. It holds a request slot
 * meanwhile, so the wait is bounded.
 */
#define SNAPSHOT_WAIT_NS (10ull * 1000000000ull)

/* A STATS answer's value: what one client datagram holds after the headers. */
#define STATS_BYTES (LCR_WIRE_CLIENT_DGRAM_MAX - LCR_WIRE_HDR - 24)

/*
 * STATS answers per second, and at once: a token bucket of STATS_BURST
 * refilled at STATS_PER_S. A STATS request of 88 bytes draws an answer of
 * kilobytes (up to 64 KiB with many groups), and UDP does not prove the
 * sender's address: unbounded, the port would reflect a forged sender's
 * traffic at that gain. Bounded, it sends at most 128 answers a second to
 * everyone together; a request over the bound is dropped (stats_rate).
 */
#define STATS_PER_S 128
#define STATS_BURST 128

/*
 * Why a client datagram was dropped (no answer), one metrics counter each,
 * in the order of the checks. The first ten are the codec's header rules
 * (lcr_wire_open_client); then ours.
 */
enum client_drop {
	CD_SHORT,	   /* under the 56-byte header */
	CD_OVERSIZED,	   /* over 65,507 bytes: more than the receive buffer holds */
	CD_MAGIC,	   /* not "LCRW" */
	CD_VERSION,	   /* not version 1 */
	CD_LENGTH,	   /* header's payload length is not the datagram's */
	CD_CHECKSUM,	   /* CRC32C mismatch */
	CD_CLUSTER,	   /* another cluster's */
	CD_TYPE,	   /* not CLIENT_REQ */
	CD_MALFORMED,	   /* unknown header flags; on a stream; fragmented */
	CD_FRAGMENT,	   /* fragment count 0, index >= count, fragments off a stream */
	CD_FROM,	   /* `from` is not 0: a node's datagram, not a client's */
	CD_PAYLOAD_LENGTH, /* payload not 32 + key_len + value_len + expect_len bytes */
	CD_OP,		   /* op not 1..5 */
	CD_FLAGS,	   /* unknown flag bits, or a flag the op does not take */
	CD_RESERVED,	   /* payload bytes 18..19 not 0 */
	CD_TOO_LONG,	   /* key over 1,024 bytes, value or expect over 8,192 */
	CD_UNUSED_FIELD,   /* a field the op does not use is not empty */
	CD_NO_MEMORY,	   /* no memory to hold the request */
	CD_RCVBUF_FULL,	   /* dropped by the kernel, the socket's queue full (SO_RXQ_OVFL) */
	CD_STATS_RATE,	   /* STATS over STATS_PER_S */
	CD_N
};

static const char *const client_drop_name[CD_N] = {
	[CD_SHORT] = "short",
	[CD_OVERSIZED] = "oversized",
	[CD_MAGIC] = "magic",
	[CD_VERSION] = "version",
	[CD_LENGTH] = "length",
	[CD_CHECKSUM] = "checksum",
	[CD_CLUSTER] = "cluster",
	[CD_TYPE] = "type",
	[CD_MALFORMED] = "malformed",
	[CD_FRAGMENT] = "fragment",
	[CD_FROM] = "from",
	[CD_PAYLOAD_LENGTH] = "payload_length",
	[CD_OP] = "op",
	[CD_FLAGS] = "flags",
	[CD_RESERVED] = "reserved",
	[CD_TOO_LONG] = "too_long",
	[CD_UNUSED_FIELD] = "unused_field",
	[CD_NO_MEMORY] = "no_memory",
	[CD_RCVBUF_FULL] = "rcvbuf_full",
	[CD_STATS_RATE] = "stats_rate",
};

/* Why a well-formed request was answered ERROR before it reached a group. */
enum client_refusal {
	CR_NOT_FOR_US, /* `to` is neither 0 nor this node */
	CR_NO_GROUP,   /* a group this node does not run */
	CR_KEY,	       /* PUT, GET, CAS or DELETE with an empty key */
	CR_IDS,	       /* a write with client id 0 or request id 0 */
	CR_N
};

static const char *const client_refusal_name[CR_N] = {
	[CR_NOT_FOR_US] = "not_for_us",
	[CR_NO_GROUP] = "no_group",
	[CR_KEY] = "key",
	[CR_IDS] = "ids",
};

struct grp {
	uint32_t id;
	struct lcr_group *g;
	struct lcr_kv *kv;
	uint64_t requests, answered;
};

struct req;

/*
 * The request slots, allocated once at start-up, so that reading a request
 * allocates nothing. Lcore 0 takes a slot for each request it reads; the
 * lcore that answers the request (its group's, or the thread closing the
 * node) gives it back. So giving back is a lock-free push onto `returned`,
 * from any thread, and lcore 0 takes the whole of `returned` at once when its
 * own list is empty: only lcore 0 takes, so a slot never comes back under a
 * pusher that saw it (no ABA). Slots never used are taken from `fresh` up, so
 * the pages of slots a node never needed are never touched.
 */
struct req_pool {
	struct req *slots; /* n of them */
	uint32_t n;
	uint32_t fresh;	  /* slots[fresh..n) never used (lcore 0's) */
	struct req *free; /* given back, taken over by lcore 0 (lcore 0's) */
	/* Given back by any thread since: written by every lcore, so on a
	 * cache line of its own, away from lcore 0's fields. */
	_Alignas(LCR_CACHE_LINE) _Atomic(struct req *) returned;
};

struct server {
	struct lcr_app_config cfg;
	struct lcr_node *node;
	struct grp *groups; /* index id - 1 */
	uint32_t n_groups;
	int fd; /* the client socket, shared by every lcore for sending */
	uint64_t started_ns;
	uint8_t *rx; /* lcore 0's receive buffer, LCR_WIRE_CLIENT_DGRAM_MAX bytes */
	char *stats; /* lcore 0's STATS answer, STATS_BYTES */
	struct req_pool pool;
	_Atomic uint64_t rx_dgrams, tx_dgrams, tx_errors;
	/* Written and read on lcore 0 alone (the client socket's and STATS'). */
	uint64_t drops[CD_N];	  /* datagrams dropped, by reason */
	uint64_t refused[CR_N];	  /* requests answered ERROR before a group, by reason */
	uint32_t rxq_ovfl_seen;	  /* the kernel's SO_RXQ_OVFL count when last read */
	uint64_t stats_tokens_ns; /* STATS' bucket in ns of refill (1 s / STATS_PER_S a token) */
	uint64_t stats_last_ns;	  /* when it was last filled */
};

/* A request in flight: its bytes, where to answer. One slot of the pool. */
struct req {
	struct req *next; /* on a free list of the pool */
	struct server *srv;
	struct grp *grp; /* NULL until the group is known good */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	struct lcr_client_req r;
	uint32_t group; /* the request header's group, echoed in the answer */
	uint32_t len;
	/* SNAPSHOT, on the group's lcore: the build counters when it was
	 * triggered, and when the wait for them to move ends. */
	uint64_t snap_built;
	uint64_t snap_failed;
	uint64_t snap_until_ns;
	uint8_t buf[REQ_PAYLOAD_MAX]; /* the request payload; r's pointers point here */
};

static struct server *the_server;

/* ---- the request pool ------------------------------------------------------------ */

static int req_pool_init(struct req_pool *p, uint32_t groups)
{
	LCR_ASSERT(groups >= 1);
	p->n = groups < REQS_MAX / REQS_PER_GROUP ? groups * REQS_PER_GROUP : REQS_MAX;
	/* Not zeroed: a slot is filled in when taken, its pages touched then. */
	p->slots = malloc((size_t)p->n * sizeof(*p->slots));
	if (!p->slots)
		return -ENOMEM;
	p->fresh = 0;
	p->free = NULL;
	atomic_init(&p->returned, NULL);
	return 0;
}

/* A free slot, or NULL if every one is held. Lcore 0 alone. */
static struct req *req_get(struct req_pool *p)
{
	struct req *q = p->free;

	if (!q)
		q = atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire);
	if (q) {
		p->free = q->next;
		return q;
	}
	if (p->fresh < p->n)
		return &p->slots[p->fresh++];
	return NULL;
}

/* Give a slot back; from any thread, once per req_get(). */
static void req_put(struct req_pool *p, struct req *q)
{
	LCR_ASSERT(q >= p->slots && q < p->slots + p->n);
	struct req *head = atomic_load_explicit(&p->returned, memory_order_relaxed);
	do
		q->next = head;
	while (!atomic_compare_exchange_weak_explicit(&p->returned, &head, q, memory_order_release,
						      memory_order_relaxed));
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A little-endian integer of n bytes (wire and log formats). */
static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
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
				  .group = q->group,
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
	req_put(&s->pool, q);
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
	case LCR_EBACKLOG:
	case LCR_ETIMEDOUT:
	case ECANCELED: /* replaced by another leader's entry: never committed */
		respond(q, LCR_CLIENT_RETRY, leader, NULL, 0);
		break;
	case LCR_ESTOPPED:
		respond_msg(q, LCR_CLIENT_ERROR,
			    "this replica stopped (a storage error, or it is shutting down): not "
			    "served; ask another node");
		break;
	default:
		respond_msg(q, LCR_CLIENT_ERROR, lcr_strerror(err));
		break;
	}
}

/* ---- requests, on the group's lcore --------------------------------------------- */

/* The state machine answered ERROR (kv.h says how it says why). */
static void respond_kv_error(struct req *q, const uint8_t *res, uint32_t len)
{
	char msg[200];

	if (len >= LCR_KV_RESULT_MAX && res[1] == LCR_KV_ERR_STALE) {
		snprintf(msg, sizeof(msg),
			 "request id %llu is older than the last applied %llu for this client: not "
			 "applied (a client's request ids must rise)",
			 (unsigned long long)q->r.id, (unsigned long long)get_le(res + 2, 8));
		respond_msg(q, LCR_CLIENT_ERROR, msg);
		return;
	}
	respond_msg(q, LCR_CLIENT_ERROR,
		    "the log entry is not a command this node can apply: not applied");
}

static void written(void *ctx, int err, uint32_t leader, const void *result, uint32_t len)
{
	struct req *q = ctx;
	const uint8_t *res = result;

	if (err == -LCR_ESTOPPED) {
		/* The entry may have reached other replicas before this one
		 * stopped, and commit there. */
		respond_msg(q, LCR_CLIENT_ERROR,
			    "this replica stopped (a storage error, or it is shutting down) after "
			    "taking the write: it may or may not be applied; resend it, with the "
			    "same request id, to another node");
		return;
	}
	if (err) {
		respond_err(q, err, leader);
		return;
	}
	if (len < 1 || res[0] == LCR_CLIENT_ERROR) {
		respond_kv_error(q, res, len);
		return;
	}
	uint8_t status = res[0];
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

/* The OK answer to SNAPSHOT: the newest snapshot's last log id. */
static void respond_snapshot(struct req *q, const struct lcr_core_status *st)
{
	uint8_t v[LCR_CLIENT_SNAPSHOT_RESULT];
	uint64_t index = st->snapshot.last.index, term = st->snapshot.last.lid.term;

	for (int i = 0; i < 8; i++) {
		v[i] = (uint8_t)(index >> (8 * i));
		v[8 + i] = (uint8_t)(term >> (8 * i));
	}
	respond(q, LCR_CLIENT_OK, 0, v, sizeof(v));
}

/*
 * A SNAPSHOT request waits on its group's lcore for the build to be reported
 * (built or failed), looking once per loop iteration: the task posts itself
 * again until then, or until SNAPSHOT_WAIT_NS passed.
 */
static void snapshot_wait_task(struct lcr_node *n, void *arg)
{
	struct req *q = arg;
	struct lcr_core_status st;

	lcr_group_status(q->grp->g, &st);
	if (st.snapshots_built > q->snap_built) {
		respond_snapshot(q, &st);
		return;
	}
	if (st.snapshots_failed > q->snap_failed) {
		respond_msg(q, LCR_CLIENT_ERROR,
			    "the snapshot build failed (the node's log says why): no snapshot "
			    "taken");
		return;
	}
	if (mono_ns() >= q->snap_until_ns) {
		respond(q, LCR_CLIENT_RETRY, 0, NULL, 0);
		return;
	}
	int rc = lcr_node_post(n, lcr_group_lcore(n, q->group), snapshot_wait_task, q);
	if (rc < 0)
		respond_err(q, rc, 0);
}

/*
 * SNAPSHOT: trigger a build (the core starts one unless one is under way or
 * the state machine applied nothing since the newest snapshot) and wait for
 * it. With nothing to build, the newest snapshot is the answer at once.
 */
static void snapshot(struct req *q, struct lcr_core_status *st)
{
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_SNAPSHOT };
	int rc;

	q->snap_built = st->snapshots_built;
	q->snap_failed = st->snapshots_failed;
	q->snap_until_ns = mono_ns() + SNAPSHOT_WAIT_NS;
	rc = lcr_group_event(q->grp->g, &ev);
	if (rc < 0) {
		respond_err(q, rc, st->leader);
		return;
	}
	lcr_group_status(q->grp->g, st);
	if (!st->building && st->snapshots_built == q->snap_built &&
	    st->snapshots_failed == q->snap_failed) {
		respond_snapshot(q, st);
		return;
	}
	snapshot_wait_task(q->srv->node, q);
}

static void handle(struct req *q)
{
	struct grp *g = q->grp;
	struct lcr_core_status st;
	int rc;

	g->requests++;
	lcr_group_status(g->g, &st);
	if (q->r.op == LCR_CLIENT_SNAPSHOT && (q->r.flags & LCR_CLIENT_F_THIS_NODE)) {
		snapshot(q, &st);
		return;
	}
	if (st.role != LCR_ROLE_LEADER) {
		respond(q, LCR_CLIENT_NOT_LEADER, st.leader, NULL, 0);
		return;
	}
	if (q->r.op == LCR_CLIENT_SNAPSHOT) {
		snapshot(q, &st);
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
	if (n == 0) { /* dispatch() lets only writes it takes through */
		respond_msg(q, LCR_CLIENT_ERROR,
			    "this node could not encode the write: not applied");
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

/* The client port's counters as a JSON object: bytes written (cap is ample). */
static size_t client_json(const struct server *s, char *buf, size_t cap)
{
	uint64_t dropped = 0;
	size_t o = 0;

	for (int i = 0; i < CD_N; i++)
		dropped += s->drops[i];
	o += (size_t)snprintf(buf + o, cap - o,
			      "{\"rx\":%llu,\"dropped\":%llu,\"tx\":%llu,\"tx_errors\":%llu,"
			      "\"drops\":{",
			      (unsigned long long)atomic_load(&s->rx_dgrams),
			      (unsigned long long)dropped,
			      (unsigned long long)atomic_load(&s->tx_dgrams),
			      (unsigned long long)atomic_load(&s->tx_errors));
	for (int i = 0; i < CD_N && o < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s\"%s\":%llu", i ? "," : "",
				      client_drop_name[i], (unsigned long long)s->drops[i]);
	o += (size_t)snprintf(buf + o, cap - o, "},\"refused\":{");
	for (int i = 0; i < CR_N && o < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s\"%s\":%llu", i ? "," : "",
				      client_refusal_name[i], (unsigned long long)s->refused[i]);
	o += (size_t)snprintf(buf + o, cap - o, "}}");
	LCR_ASSERT(o < cap);
	return o;
}

/* The most bytes client_prom() writes: 20 drop reasons, 4 refusals, their heads. */
#define CLIENT_PROM_BYTES 8192

/*
 * The client port's counters for Prometheus (prom.h), on lcore 0: they are
 * lcore 0's. Bytes written, or -ENOSPC.
 */
static int client_prom(void *ctx, char *buf, size_t len)
{
	const struct server *s = ctx;
	const unsigned id = s->cfg.self;
	size_t o = 0;

#define PUT(...) o += (size_t)snprintf(buf + o, len > o ? len - o : 0, __VA_ARGS__)
	PUT("# HELP lcraft_client_datagrams_total Datagrams of the client port, by direction.\n"
	    "# TYPE lcraft_client_datagrams_total counter\n"
	    "lcraft_client_datagrams_total{node=\"%u\",direction=\"received\"} %llu\n"
	    "lcraft_client_datagrams_total{node=\"%u\",direction=\"sent\"} %llu\n"
	    "# HELP lcraft_client_send_errors_total Answers the client port failed to send.\n"
	    "# TYPE lcraft_client_send_errors_total counter\n"
	    "lcraft_client_send_errors_total{node=\"%u\"} %llu\n",
	    id, (unsigned long long)atomic_load(&s->rx_dgrams), id,
	    (unsigned long long)atomic_load(&s->tx_dgrams), id,
	    (unsigned long long)atomic_load(&s->tx_errors));
	PUT("# HELP lcraft_client_dropped_total Client datagrams dropped unanswered, by the rule "
	    "they broke (docs/wire-protocol.md).\n"
	    "# TYPE lcraft_client_dropped_total counter\n");
	for (int i = 0; i < CD_N; i++)
		PUT("lcraft_client_dropped_total{node=\"%u\",reason=\"%s\"} %llu\n", id,
		    client_drop_name[i], (unsigned long long)s->drops[i]);
	PUT("# HELP lcraft_client_refused_total Client requests answered ERROR before reaching a "
	    "group, by reason.\n"
	    "# TYPE lcraft_client_refused_total counter\n");
	for (int i = 0; i < CR_N; i++)
		PUT("lcraft_client_refused_total{node=\"%u\",reason=\"%s\"} %llu\n", id,
		    client_refusal_name[i], (unsigned long long)s->refused[i]);
#undef PUT
	return o < len ? (int)o : -ENOSPC;
}

/* Answer STATS, on lcore 0 (its buffer is lcore 0's). */
static void stats(struct req *q)
{
	struct server *s = q->srv;
	size_t cap = STATS_BYTES, o = 0;
	char *buf = s->stats;
	struct rusage ru;

	/* jemalloc caches its statistics: a new epoch refreshes them. */
	uint64_t epoch = 1;
	size_t elen = sizeof(epoch);
	mallctl("epoch", &epoch, &elen, &epoch, elen);
	getrusage(RUSAGE_SELF, &ru);
	int k = snprintf(buf, cap,
			 "{\"node\":%u,\"uptime_s\":%.3f,\"allocator\":{\"name\":\"jemalloc\","
			 "\"allocated\":%zu,\"active\":%zu,\"resident\":%zu,\"mapped\":%zu},"
			 "\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"client\":",
			 s->cfg.self, (double)(mono_ns() - s->started_ns) / 1e9,
			 jemalloc_stat("stats.allocated"), jemalloc_stat("stats.active"),
			 jemalloc_stat("stats.resident"), jemalloc_stat("stats.mapped"),
			 (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
			 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	o = (size_t)k;
	o += client_json(s, buf + o, cap - o);
	o += (size_t)snprintf(buf + o, cap - o, ",\"kv\":[");
	for (uint32_t i = 0; i < s->n_groups && o < cap; i++) {
		struct lcr_kv_stats ks;
		lcr_kv_stats(s->groups[i].kv, &ks);
		k = snprintf(buf + o, cap - o,
			     "%s{\"group\":%u,\"keys\":%llu,\"bytes\":%llu,\"puts\":%llu,"
			     "\"cas_ok\":%llu,\"cas_failed\":%llu,\"deletes\":%llu,"
			     "\"duplicates\":%llu,\"stale\":%llu,\"malformed\":%llu,"
			     "\"requests\":%llu}",
			     i ? "," : "", s->groups[i].id, (unsigned long long)ks.keys,
			     (unsigned long long)ks.bytes, (unsigned long long)ks.puts,
			     (unsigned long long)ks.cas_ok, (unsigned long long)ks.cas_failed,
			     (unsigned long long)ks.deletes, (unsigned long long)ks.duplicates,
			     (unsigned long long)ks.stale, (unsigned long long)ks.malformed,
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
			return;
		}
	}
	respond_msg(q, LCR_CLIENT_ERROR, "the metrics do not fit one datagram");
}

/* ---- the client socket (lcore 0) ------------------------------------------------ */

/* A refusal of the header codec, as our counter. */
static enum client_drop wire_drop(uint32_t why)
{
	switch (why) {
	case LCR_DROP_SHORT:
		return CD_SHORT;
	case LCR_DROP_OVERSIZED:
		return CD_OVERSIZED;
	case LCR_DROP_MAGIC:
		return CD_MAGIC;
	case LCR_DROP_VERSION:
		return CD_VERSION;
	case LCR_DROP_LENGTH:
		return CD_LENGTH;
	case LCR_DROP_CHECKSUM:
		return CD_CHECKSUM;
	case LCR_DROP_CLUSTER:
		return CD_CLUSTER;
	case LCR_DROP_TYPE:
		return CD_TYPE;
	case LCR_DROP_FRAGMENT:
		return CD_FRAGMENT;
	default:
		return CD_MALFORMED;
	}
}

/*
 * Check a CLIENT_REQ payload against the rules of docs/wire-protocol.md
 * (checks 6 to 12), in their order, to count a drop under the rule it
 * breaks: the codec (lcr_wire_decode_client_req) checks the same rules but
 * says only "malformed". Every length is bounded before it is added up.
 * Returns CD_N if the payload is good.
 */
static enum client_drop req_check(const uint8_t *p, size_t len)
{
	if (len < REQ_FIXED)
		return CD_PAYLOAD_LENGTH;
	uint8_t op = p[16], flags = p[17];
	if (op < LCR_CLIENT_PUT || op > LCR_CLIENT_SNAPSHOT)
		return CD_OP;
	if ((flags & ~LCR_CLIENT_F_KNOWN) ||
	    ((flags & LCR_CLIENT_F_EXPECT_VALUE) && op != LCR_CLIENT_CAS) ||
	    ((flags & LCR_CLIENT_F_THIS_NODE) && op != LCR_CLIENT_SNAPSHOT))
		return CD_FLAGS;
	if (p[18] || p[19])
		return CD_RESERVED;
	uint64_t kl = get_le(p + 20, 4), vl = get_le(p + 24, 4), el = get_le(p + 28, 4);
	if (kl > LCR_CLIENT_KEY_MAX || vl > LCR_CLIENT_VALUE_MAX || el > LCR_CLIENT_VALUE_MAX)
		return CD_TOO_LONG;
	if ((vl && op != LCR_CLIENT_PUT && op != LCR_CLIENT_CAS) || (el && op != LCR_CLIENT_CAS) ||
	    (kl && (op == LCR_CLIENT_STATS || op == LCR_CLIENT_SNAPSHOT)))
		return CD_UNUSED_FIELD;
	if (REQ_FIXED + kl + vl + el != len)
		return CD_PAYLOAD_LENGTH;
	return CD_N;
}

/* Answer ERROR with `msg`, counted under `why`. */
static void refuse(struct req *q, enum client_refusal why, const char *msg)
{
	q->srv->refused[why]++;
	respond_msg(q, LCR_CLIENT_ERROR, msg);
}

/*
 * The checks of a well-formed request that the client hears about, in the
 * order docs/wire-protocol.md lists them: true if q may go on, false if it
 * was answered ERROR (nothing applied).
 */
static bool admit(struct server *s, struct req *q, uint32_t to)
{
	const struct lcr_client_req *r = &q->r;
	char msg[128];

	if (to != 0 && to != s->cfg.self) {
		snprintf(msg, sizeof(msg),
			 "addressed to node %u, but this is node %u: not served (to is 0 or the "
			 "receiving node)",
			 to, s->cfg.self);
		refuse(q, CR_NOT_FOR_US, msg);
		return false;
	}
	if (r->op == LCR_CLIENT_STATS)
		return true; /* about the whole node: any group */
	if (q->group == 0 || q->group > s->n_groups) {
		snprintf(msg, sizeof(msg), "no group %u here (groups 1..%u)", q->group,
			 s->n_groups);
		refuse(q, CR_NO_GROUP, msg);
		return false;
	}
	if (r->op == LCR_CLIENT_SNAPSHOT)
		return true; /* no key, and not a write */
	if (r->key_len == 0) {
		refuse(q, CR_KEY, "a key is 1..1024 bytes; this one is empty");
		return false;
	}
	if (r->op != LCR_CLIENT_GET && (r->client == 0 || r->id == 0)) {
		refuse(q, CR_IDS,
		       "a write needs a non-zero client id and a non-zero request id (they make "
		       "it at most once)");
		return false;
	}
	return true;
}

/* Whether STATS may be answered now (its token bucket; lcore 0). */
static bool stats_allowed(struct server *s)
{
	const uint64_t per = 1000000000ull / STATS_PER_S, cap = per * STATS_BURST;
	uint64_t now = mono_ns();
	s->stats_tokens_ns += now - s->stats_last_ns;
	s->stats_last_ns = now;
	if (s->stats_tokens_ns > cap)
		s->stats_tokens_ns = cap;
	if (s->stats_tokens_ns < per)
		return false;
	s->stats_tokens_ns -= per;
	return true;
}

static void dispatch(struct server *s, const uint8_t *d, size_t len,
		     const struct sockaddr_storage *from, socklen_t from_len)
{
	struct lcr_wire_hdr h;
	uint32_t why = lcr_wire_open_client(d, len, s->cfg.node.cluster, &h);
	if (why != LCR_DROP_NONE) {
		s->drops[wire_drop(why)]++;
		return;
	}
	if (h.type != LCR_WIRE_CLIENT_REQ) {
		s->drops[CD_TYPE]++; /* a CLIENT_RESP */
		return;
	}
	if (h.from != 0) {
		s->drops[CD_FROM]++;
		return;
	}
	enum client_drop bad = req_check(d + LCR_WIRE_HDR, h.len);
	if (bad != CD_N) {
		s->drops[bad]++;
		return;
	}
	LCR_ASSERT(h.len <= REQ_PAYLOAD_MAX); /* req_check() bounded every length */
	struct req *q = req_get(&s->pool);
	if (!q) {
		s->drops[CD_NO_MEMORY]++;
		return;
	}
	memset(q, 0, offsetof(struct req, buf));
	q->srv = s;
	q->len = h.len;
	q->group = h.group;
	memcpy(q->buf, d + LCR_WIRE_HDR, h.len);
	memcpy(&q->addr, from, from_len);
	q->addr_len = from_len;
	/* req_check() checks what the codec does; should they ever disagree,
	 * the codec's word is final (input is counted, never asserted). */
	if (lcr_wire_decode_client_req(q->buf, q->len, &q->r) != LCR_DROP_NONE) {
		s->drops[CD_MALFORMED]++;
		req_put(&s->pool, q);
		return;
	}
	if (!admit(s, q, h.to))
		return;
	if (q->r.op == LCR_CLIENT_STATS) {
		if (!stats_allowed(s)) {
			s->drops[CD_STATS_RATE]++;
			req_put(&s->pool, q);
			return;
		}
		stats(q);
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

/* The kernel's count of datagrams it dropped on this socket (SO_RXQ_OVFL),
 * which comes with a datagram once it is not 0. */
static void rxq_overflow(struct server *s, struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL)
			continue;
		uint32_t n;
		memcpy(&n, CMSG_DATA(c), sizeof(n));
		s->drops[CD_RCVBUF_FULL] += (uint32_t)(n - s->rxq_ovfl_seen); /* wraps */
		s->rxq_ovfl_seen = n;
	}
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
		union {
			char buf[CMSG_SPACE(sizeof(uint32_t))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = s->rx, .iov_len = LCR_WIRE_CLIENT_DGRAM_MAX };
		struct msghdr mh = { .msg_name = &from,
				     .msg_namelen = sizeof(from),
				     .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		/* MSG_TRUNC: the real size of a datagram the buffer cut short. */
		ssize_t k = recvmsg(s->fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
		if (k < 0)
			break;
		atomic_fetch_add(&s->rx_dgrams, 1);
		rxq_overflow(s, &mh);
		work = true;
		if ((mh.msg_flags & MSG_TRUNC) || (size_t)k > LCR_WIRE_CLIENT_DGRAM_MAX) {
			s->drops[CD_OVERSIZED]++;
			continue;
		}
		dispatch(s, s->rx, (size_t)k, &from, mh.msg_namelen);
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
	int big = 4 << 20, one = 1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
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

/*
 * What the config asks of the machine before the node opens: the directory
 * of the memif sockets ([dpdk] memif_dir). DPDK 22.11 names them in the
 * abstract namespace by default, where it stays empty, but a memif socket
 * that is a file (socket-abstract=no) is bound there and DPDK does not make
 * the directory. lcr_node_config itself (transport, dpdk.*, cores) is
 * filled in by lcr_app_config_load().
 */
static int prepare_config(const struct lcr_app_config *c, char *why, size_t why_len)
{
	const char *dir = c->node.dpdk.memif_dir;

	if (!c->node.dpdk.enable || !dir || !dir[0])
		return 0;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		int rc = -errno;

		snprintf(why, why_len, "[dpdk] memif_dir %s: cannot create it: %s", dir,
			 strerror(-rc));
		return rc;
	}
	return 0;
}

/* "sockets" or "dpdk", and the cores the lcores are pinned to, for the start line. */
static const char *transport_text(const struct lcr_app_config *c, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s%s", c->node.dpdk.enable ? "dpdk" : "sockets",
		 c->node.n_cores ? ", lcores on cores " : "", c->node.n_cores ? c->cores : "",
		 c->node.dpdk.enable && c->memif_dir[0] ? ", memif" : "");
	return out;
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
	srv.stats_last_ns = srv.started_ns;
	srv.stats_tokens_ns = 1000000000ull / STATS_PER_S * STATS_BURST; /* full */
	the_server = &srv;

	if ((rc = prepare_config(&srv.cfg, why, sizeof(why))) < 0) {
		say(&srv, "error", "%s", why);
		return 1;
	}

	rc = lcr_node_open(&srv.node, &srv.cfg.node, why, sizeof(why));
	if (rc < 0) {
		say(&srv, "error", "%s", why);
		return 1;
	}
	srv.n_groups = srv.cfg.groups;
	srv.groups = calloc(srv.n_groups, sizeof(*srv.groups));
	srv.rx = malloc(LCR_WIRE_CLIENT_DGRAM_MAX);
	srv.stats = malloc(STATS_BYTES);
	if (!srv.groups || !srv.rx || !srv.stats || req_pool_init(&srv.pool, srv.n_groups) < 0) {
		say(&srv, "error", "out of memory");
		return 1;
	}
	for (uint32_t i = 0; i < srv.n_groups; i++) {
		struct grp *g = &srv.groups[i];
		g->id = i + 1;
		g->kv = lcr_kv_new();
		struct lcr_sm_ops ops = lcr_kv_ops;
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
	struct lcr_prom *prom = NULL;
	if (srv.cfg.metrics_listen[0]) {
		struct lcr_prom_config pc = { .listen = srv.cfg.metrics_listen,
					      .lcores = srv.cfg.node.lcores,
					      .groups = srv.n_groups,
					      .nodes = srv.cfg.node.n_peers,
					      .app_bytes = CLIENT_PROM_BYTES,
					      .app = client_prom,
					      .app_ctx = &srv };
		if ((rc = lcr_prom_open(&prom, srv.node, &pc, why, sizeof(why))) < 0) {
			say(&srv, "error", "%s", why);
			lcr_node_close(srv.node);
			return 1;
		}
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	const struct lcr_peer_addr *me = lcr_app_config_peer(&srv.cfg, srv.cfg.self);
	char transport[400];
	say(&srv, "start",
	    "cluster %llu, %u peers, raft %s:%u (%s), clients port %u, %u lcore(s), %u group(s), "
	    "data in %s%s%s",
	    (unsigned long long)srv.cfg.node.cluster, srv.cfg.node.n_peers, me->host, me->port,
	    transport_text(&srv.cfg, transport, sizeof(transport)),
	    (unsigned)me->port + srv.cfg.client_port_offset, srv.cfg.node.lcores, srv.n_groups,
	    srv.cfg.data_dir, prom ? ", metrics on http://" : "",
	    prom ? srv.cfg.metrics_listen : "");
	rc = lcr_node_run(srv.node);
	if (rc < 0)
		say(&srv, "error", "could not start the lcores: %s", strerror(-rc));
	/* The HTTP thread posts tasks to the node: it stops first; the tasks it
	 * left posted run in lcr_node_close(), into buffers freed after it. */
	lcr_prom_stop(prom);
	lcr_node_close(srv.node);
	lcr_prom_free(prom);
	srv.node = NULL;
	close(srv.fd);
	for (uint32_t i = 0; i < srv.n_groups; i++)
		lcr_kv_free(srv.groups[i].kv);
	free(srv.groups);
	free(srv.rx);
	free(srv.stats);
	free(srv.pool.slots); /* after lcr_node_close(): it answers what was held */
	say(&srv, "stop", "stopped cleanly");
	return rc < 0 ? 1 : 0;
}
