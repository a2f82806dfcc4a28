/* SPDX-License-Identifier: MIT */
/*
 * lcraft-node: one node of an lcraft cluster, serving the replicated
 * key-value store (kv.h) to clients over UDP.
 *
 *   lcraft-node --config FILE --id N [--addr HOST:PORT] [--peer ID=HOST:PORT ...]
 *               [--json-log] [--rejoin-check-ms MS] [--force-rejoin]
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
 * MEMBERS, CHANGE_MEMBERSHIP and TRANSFER_LEADER are the operator's
 * membership tasks (lcraft-cli members, add-learner, change-membership,
 * remove-node, transfer-leader): a change is answered once it committed, a
 * transfer once the leader changed, each refusal with its own status.
 *
 * With --addr a node that is not in the file's [nodes] runs at that address:
 * its groups start with the file's membership, which it is not in, so it
 * never stands for election and waits, empty, until a leader adds it.
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
 * With [cluster] key_file the node's Raft datagrams are authenticated (the
 * transport's, dpdk-net/auth.h), with client_key_file its client port too:
 * lcore 0 verifies a request's MAC before it reads anything but the client
 * id, the sender the MAC names, and every answer is sealed, from whichever
 * lcore sends it (docs/wire-protocol.md, "Client authentication"). Both need
 * the node's boot, larger at every start: <data_dir>/boot, read, raised and
 * made durable before the transport opens (boot_take). Without a key the
 * node says at start, loudly, who can speak for it.
 *
 * A node whose data directory holds nothing for a group asks the other nodes
 * before it opens whether its id held state there (rejoin.h), until a
 * majority of the voters answered, answering their questions meanwhile on
 * its client port ("checking"): a wiped node that comes back under its old
 * id is refused (exit 3), as is a directory that its identity file gives to
 * another node or cluster (exit 4). Its groups' records of the nodes seen
 * holding state (lcr_group_held) go into MEMBERS' held_state.
 *
 * SIGTERM or SIGINT stops the lcores; the node closes its logs and sockets
 * and exits 0. jemalloc is the allocator (linked in); its allocated and
 * resident bytes are in the metrics.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jemalloc/jemalloc.h>
#include <netdb.h>
#include <pthread.h>
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
#include "auth.h"
#include "client.h"
#include "config.h"
#include "crc32c.h"
#include "file.h"
#include "kv.h"
#include "lcr_assert.h"
#include "lcraft.h"
#include "prom.h"
#include "rejoin.h"
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

/*
 * How long CHANGE_MEMBERSHIP waits for its change to commit before it is
 * answered TIMEOUT (the change goes on; a resend waits for the same one),
 * and TRANSFER_LEADER for the leadership to move: at least this, or four
 * election timeouts (a transfer the target never takes ends with an
 * election once the followers stop hearing the leader). Waiting ops are
 * looked at every WAIT_TICK_NS (lcore 0 posts the look to each lcore).
 */
#define CHANGE_WAIT_NS (10ull * 1000000000ull)
#define XFER_WAIT_NS   (5ull * 1000000000ull)
#define WAIT_TICK_NS   (20ull * 1000000ull)

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
 * Clients whose replay windows the client port keeps (auth.h, about 0.7 KiB
 * each, allocated at start): as many as the sessions of a group (kv.h). A
 * verified request from one more takes the place of the client heard least
 * recently, whose next request is then taken as its first.
 */
#define CLIENT_SENDERS 8192

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
	CD_OP,		   /* op not 1..9 */
	CD_FLAGS,	   /* unknown flag bits, or a flag the op does not take */
	CD_RESERVED,	   /* payload bytes 18..19 not 0 */
	CD_TOO_LONG,	   /* key over 1,024 bytes, value or expect over 8,192 */
	CD_UNUSED_FIELD,   /* a field the op does not use is not empty */
	CD_LAYOUT,	   /* a membership op's value or expect off its layout */
	CD_NO_MEMORY,	   /* no memory to hold the request */
	CD_RCVBUF_FULL,	   /* dropped by the kernel, the socket's queue full (SO_RXQ_OVFL) */
	CD_STATS_RATE,	   /* STATS over STATS_PER_S */
	/* With a client key, checked before everything above but `oversized`
	 * (auth.h; `short` when there is no room for the client id and a trailer). */
	CD_OLD_BOOT, /* a start of the client older than the one it is known by */
	CD_BAD_MAC,  /* the MAC does not verify: not a client holding the key */
	CD_REPLAYED, /* a request seen before (or too far behind) */
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
	[CD_LAYOUT] = "layout",
	[CD_NO_MEMORY] = "no_memory",
	[CD_RCVBUF_FULL] = "rcvbuf_full",
	[CD_STATS_RATE] = "stats_rate",
	[CD_OLD_BOOT] = "old_boot",
	[CD_BAD_MAC] = "bad_mac",
	[CD_REPLAYED] = "replayed",
};

/* Why a well-formed request was answered ERROR before it reached a group. */
enum client_refusal {
	CR_NOT_FOR_US, /* `to` is neither 0 nor this node */
	CR_NO_GROUP,   /* a group this node does not run */
	CR_KEY,	       /* PUT, GET, CAS or DELETE with an empty key */
	CR_IDS,	       /* a write or CHANGE_MEMBERSHIP with client id 0 or request id 0 */
	CR_N
};

static const char *const client_refusal_name[CR_N] = {
	[CR_NOT_FOR_US] = "not_for_us",
	[CR_NO_GROUP] = "no_group",
	[CR_KEY] = "key",
	[CR_IDS] = "ids",
};

struct req;

/*
 * A membership op waiting on its group's lcore (CHANGE_MEMBERSHIP for its
 * change to commit, TRANSFER_LEADER for the leader to change): the request
 * that waits, who sent it, and until when. A resend of it (the same client
 * and request id) takes the waiting copy's place, so a client that lost an
 * answer hears the outcome of the one change it asked for.
 */
struct op_wait {
	struct req *q;	 /* the copy answered when it ends; NULL: none waits */
	uint64_t client; /* who asked: a resend with these ids waits too */
	uint64_t id;
	uint64_t until_ns; /* q is answered TIMEOUT then */
	bool running;	   /* the change or transfer is under way */
};

/*
 * A group's store as STATS reports it, taken on the group's lcore in one go
 * (view_take), so that the digest is the state at exactly that applied index:
 * read apart, a digest of a later state beside an earlier index would tell a
 * checker that two replicas holding the same entries differ.
 */
struct kv_view {
	struct lcr_kv_stats st;
	uint64_t applied_index; /* the group's applied index (the core's, lcr_group_status) */
	uint64_t digest;	/* lcr_kv_digest at that index */
	bool digest_ok;		/* false: a snapshot is being restored, no digest */
	uint64_t gen;		/* the STATS answer it was taken for (server.view_gen) */
};

struct grp {
	uint32_t id;
	struct lcr_group *g;
	struct lcr_kv *kv;
	uint64_t requests, answered;
	/* The group's lcore only. */
	struct op_wait change; /* the change asked for here (lcr_group_change_membership) */
	int change_err;	       /* the last change's outcome, for a resend after it ended */
	uint32_t change_leader;
	struct op_wait xfer; /* the transfer asked for here */
	uint32_t xfer_to;    /* the node it hands over to */
	uint64_t xfer_term;  /* the term of the leadership that hands over */
	struct kv_view view; /* written on the group's lcore, read on lcore 0: server.view_mu */
};

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
	uint64_t tick_last_ns;	  /* when lcore 0 last had the waiting ops looked at */
	/* STATS' views of the groups (struct kv_view): lcore 0 asks the other
	 * lcores for theirs and waits for them (at most VIEW_WAIT_S), as
	 * lcr_node_metrics_json does for the library's part. */
	pthread_mutex_t view_mu;
	pthread_cond_t view_cv;
	uint64_t view_gen;     /* the answer being made; views of another are stale */
	uint32_t view_pending; /* lcores yet to take theirs */
	/* Membership ops waiting for their outcome, on every lcore: while
	 * there are any, lcore 0 has them looked at every WAIT_TICK_NS. */
	_Atomic uint32_t waiting;
	/* [cluster] client_key_file: requests verified on lcore 0 (crx, the
	 * clients' windows), answers sealed on any lcore (ctx: one counter,
	 * taken atomically). The node's boot, when it has a key. */
	bool client_auth;
	struct lcr_auth_rx crx;
	struct lcr_auth_tx ctx;
	uint64_t boot;
	bool booted; /* boot taken (before the rejoin check asks, or at the open) */
	/* While the rejoin check asks: the groups with no state here, ascending. */
	const uint32_t *checking;
	uint32_t n_checking;
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

/* Send answer `resp` to request `r` of group `group` from `addr`: 0, or -1 (counted). */
static int answer(struct server *s, const struct lcr_client_req *r, uint32_t group,
		  struct lcr_client_resp *resp, const struct sockaddr_storage *addr,
		  socklen_t addr_len)
{
	static _Thread_local uint8_t out[LCR_WIRE_CLIENT_DGRAM_MAX];
	/* With a client key the trailer follows the payload, within the datagram. */
	size_t cap = sizeof(out) - LCR_WIRE_HDR - (s->client_auth ? LCR_AUTH_TRAILER : 0);
	size_t n = lcr_wire_encode_client_resp(out + LCR_WIRE_HDR, cap, resp);
	if (n == 0) {
		static const char msg[] = "the answer does not fit one datagram";
		resp->status = LCR_CLIENT_ERROR;
		resp->value = (const uint8_t *)msg;
		resp->value_len = sizeof(msg) - 1;
		n = lcr_wire_encode_client_resp(out + LCR_WIRE_HDR, cap, resp);
	}
	struct lcr_wire_hdr h = { .type = LCR_WIRE_CLIENT_RESP,
				  .cluster = s->cfg.node.cluster,
				  .group = group,
				  .from = s->cfg.self,
				  .to = 0,
				  .len = (uint32_t)n,
				  .frag_count = 1 };
	size_t len = lcr_wire_seal(out, &h);
	/* Bound to the request's client: it verifies at no other client. */
	if (s->client_auth)
		len = lcr_auth_seal_shared_bound(&s->ctx, out, len, r->client);
	if (sendto(s->fd, out, len, 0, (const struct sockaddr *)addr, addr_len) < 0) {
		atomic_fetch_add(&s->tx_errors, 1);
		return -1;
	}
	atomic_fetch_add(&s->tx_dgrams, 1);
	return 0;
}

static void respond(struct req *q, uint8_t status, uint32_t leader, const void *value,
		    uint32_t value_len)
{
	struct server *s = q->srv;
	struct lcr_client_resp resp = { .id = q->r.id,
					.status = status,
					.op = q->r.op,
					.leader = leader,
					.value_len = value_len,
					.value = value };

	(void)answer(s, &q->r, q->group, &resp, &q->addr, q->addr_len);
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

/* ---- membership ops, on the group's lcore --------------------------------------- */

static bool id_in(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Where node `id` can be reached, as "HOST:PORT" (an IPv6 host in brackets):
 * the membership's address for it, else this node's config. False if neither
 * knows. */
static bool node_addr(const struct server *s, const struct lcr_membership *m, uint32_t id,
		      char *out, size_t len)
{
	const char *a = m ? lcr_membership_addr(m, id) : NULL;
	const struct lcr_peer_addr *p = lcr_app_config_peer(&s->cfg, id);

	if (a) {
		snprintf(out, len, "%s", a);
		return true;
	}
	return p && lcr_peer_addr_format(p, out, len) > 0;
}

static const char *role_name(uint32_t role)
{
	switch (role) {
	case LCR_ROLE_FOLLOWER:
		return "follower";
	case LCR_ROLE_CANDIDATE:
		return "candidate";
	case LCR_ROLE_LEADER:
		return "leader";
	case LCR_ROLE_LEARNER:
		return "learner";
	default:
		return "stopped";
	}
}

#define JPUT(...) o += (size_t)snprintf(buf + o, o < cap ? cap - o : 0, __VA_ARGS__)

static size_t json_ids(char *buf, size_t cap, size_t o, const uint32_t *ids, uint32_t n)
{
	JPUT("[");
	for (uint32_t i = 0; i < n; i++)
		JPUT("%s%u", i ? "," : "", ids[i]);
	JPUT("]");
	return o;
}

/* One member of the MEMBERS answer: its address, and on the leader its progress. */
static size_t json_node(const struct server *s, const struct lcr_core_status *st, char *buf,
			size_t cap, size_t o, uint32_t id, bool voter)
{
	char addr[LCR_PEER_ADDR_TEXT_MAX];

	JPUT("{\"id\":%u,\"voter\":%s,\"addr\":", id, voter ? "true" : "false");
	if (node_addr(s, &st->membership, id, addr, sizeof(addr)))
		JPUT("\"%s\"", addr);
	else
		JPUT("null");
	for (uint32_t i = 0; st->role == LCR_ROLE_LEADER && i < st->n_nodes; i++) {
		if (st->nodes[i] != id)
			continue;
		uint64_t m = st->matching[i].index;
		JPUT(",\"matched\":%llu,\"lag\":%llu", (unsigned long long)m,
		     (unsigned long long)(st->last.index > m ? st->last.index - m : 0));
	}
	JPUT("}");
	return o;
}

/*
 * The MEMBERS answer (docs/wire-protocol.md, "The MEMBERS answer"): the
 * effective membership (the newest appended), its log id, whether it is
 * committed, and each member's address and, on the leader, progress.
 */
static size_t members_json(const struct server *s, const struct grp *g,
			   const struct lcr_core_status *st, char *buf, size_t cap)
{
	const struct lcr_membership *m = &st->membership;
	const struct lcr_log_id *id = &st->membership_id;
	uint32_t newest = m->n_configs - 1;
	size_t o = 0;

	LCR_ASSERT(m->n_configs >= 1 && m->n_configs <= LCR_CONFIGS_MAX);
	JPUT("{\"group\":%u,\"node\":%u,\"role\":\"%s\",\"leader\":%u,\"term\":%llu,"
	     "\"log_id\":{\"term\":%llu,\"node\":%u,\"index\":%llu},\"joint\":%s,"
	     "\"committed\":%s,\"voters\":",
	     g->id, s->cfg.self, role_name(st->role), st->leader,
	     (unsigned long long)st->vote.lid.term, (unsigned long long)id->lid.term, id->lid.node,
	     (unsigned long long)id->index, m->n_configs > 1 ? "true" : "false",
	     st->membership_committed ? "true" : "false");
	if (m->n_configs > 1)
		JPUT("[");
	for (uint32_t k = 0; k < m->n_configs; k++) {
		JPUT("%s", k ? "," : "");
		o = json_ids(buf, cap, o, m->configs[k].ids, m->configs[k].n);
	}
	if (m->n_configs > 1)
		JPUT("]");
	JPUT(",\"configs\":[");
	for (uint32_t k = 0; k < m->n_configs; k++) {
		JPUT("%s", k ? "," : "");
		o = json_ids(buf, cap, o, m->configs[k].ids, m->configs[k].n);
	}
	JPUT("],\"learners\":");
	o = json_ids(buf, cap, o, m->learners, m->n_learners);
	JPUT(",\"last_index\":%llu,\"nodes\":[", (unsigned long long)st->last.index);
	bool first = true;
	for (uint32_t i = 0; i < m->configs[newest].n; i++, first = false) {
		JPUT("%s", first ? "" : ",");
		o = json_node(s, st, buf, cap, o, m->configs[newest].ids[i], true);
	}
	for (uint32_t i = 0; newest > 0 && i < m->configs[0].n; i++) {
		uint32_t v = m->configs[0].ids[i];
		if (id_in(m->configs[newest].ids, m->configs[newest].n, v))
			continue;
		JPUT("%s", first ? "" : ",");
		first = false;
		o = json_node(s, st, buf, cap, o, v, true);
	}
	for (uint32_t i = 0; i < m->n_learners; i++, first = false) {
		JPUT("%s", first ? "" : ",");
		o = json_node(s, st, buf, cap, o, m->learners[i], false);
	}
	/* The nodes this group recorded holding state (the rejoin check reads them). */
	uint32_t held[LCR_HELD_MAX];
	uint32_t n_held = lcr_group_held(g->g, held, LCR_HELD_MAX);
	JPUT("],\"held_state\":");
	o = json_ids(buf, cap, o, held, n_held < LCR_HELD_MAX ? n_held : LCR_HELD_MAX);
	JPUT("}");
	return o;
}

static_assert(LCR_MEMBERS_HELD_MAX == LCR_HELD_MAX,
	      "a MEMBERS answer's held_state fits the parser");

/* Answer with the MEMBERS JSON of `st` (OK, or CAS_FAILED for a stale change). */
static void respond_members(struct req *q, uint8_t status, const struct lcr_core_status *st)
{
	static _Thread_local char buf[LCR_CLIENT_VALUE_MAX];
	size_t n = members_json(q->srv, q->grp, st, buf, sizeof(buf));

	if (n >= sizeof(buf)) { /* 16 members take about 2 KiB */
		respond_msg(q, LCR_CLIENT_ERROR, "the membership does not fit an answer");
		return;
	}
	respond(q, status, status == LCR_CLIENT_OK ? 0 : st->leader, buf, (uint32_t)n);
}

#undef JPUT

/* An op starts waiting (op_wait.q was NULL). */
static void wait_begin(struct op_wait *w, struct req *q, uint64_t wait_ns)
{
	LCR_ASSERT(w->q == NULL);
	w->q = q;
	w->client = q->r.client;
	w->id = q->r.id;
	w->until_ns = mono_ns() + wait_ns;
	atomic_fetch_add(&q->srv->waiting, 1);
}

/* The waiting copy, taken off the wait to be answered (NULL if none). */
static struct req *wait_take(struct op_wait *w)
{
	struct req *q = w->q;

	if (q) {
		w->q = NULL;
		atomic_fetch_sub(&q->srv->waiting, 1);
	}
	return q;
}

/* A resend of the op that waits: it waits in the older copy's place. */
static bool wait_resend(struct op_wait *w, struct req *q, uint64_t wait_ns)
{
	if (!w->running || w->client != q->r.client || w->id != q->r.id)
		return false;
	struct req *old = wait_take(w);
	if (old)
		req_put(&q->srv->pool, old); /* the client waits for one answer */
	wait_begin(w, q, wait_ns);
	return true;
}

/* CHANGE_MEMBERSHIP's outcome, as the client protocol says it. */
static void respond_change(struct req *q, int err, uint32_t leader)
{
	char msg[160];

	switch (-err) {
	case 0:
		respond(q, LCR_CLIENT_OK, leader, NULL, 0);
		break;
	case LCR_ENOTLEADER:
		/* The change may still complete under the next leader. */
		respond(q, LCR_CLIENT_NOT_LEADER, leader, NULL, 0);
		break;
	case EBUSY:
		respond_msg(q, LCR_CLIENT_BUSY,
			    "another membership change is under way: not changed");
		break;
	case EINVAL:
		snprintf(msg, sizeof(msg), "the leader refused the target: %s", lcr_strerror(err));
		respond_msg(q, LCR_CLIENT_INVALID, msg);
		break;
	default:
		respond_err(q, err, leader);
		break;
	}
}

/* lcr_group_change_membership's callback (ctx: the group): the change ended. */
static void change_done(void *ctx, int err, uint32_t leader)
{
	struct grp *g = ctx;
	struct req *q = wait_take(&g->change);

	g->change.running = false;
	g->change_err = err;
	g->change_leader = leader;
	if (q)
		respond_change(q, err, leader);
}

/*
 * What a target means, checked before it reaches the library (each refusal
 * its own status, docs/wire-protocol.md): LCR_CLIENT_OK, or the status with
 * the sentence in `msg`.
 */
static uint8_t target_check(const struct server *s, const struct lcr_membership *cur,
			    const struct lcr_client_target *t, char *msg, size_t len)
{
	uint32_t all[2 * LCR_NODES_MAX], n = 0;

	if (t->n_voters == 0) {
		snprintf(msg, len, "the target has no voter: a group needs at least one");
		return LCR_CLIENT_NO_VOTERS;
	}
	for (uint32_t i = 0; i < t->n_voters + t->n_learners; i++) {
		uint32_t id = i < t->n_voters ? t->voters[i] : t->learners[i - t->n_voters];
		if (id == 0) {
			snprintf(msg, len, "node id 0 is reserved");
			return LCR_CLIENT_INVALID;
		}
		if (id_in(all, n, id)) {
			snprintf(msg, len, "node %u is named twice (a voter is no learner)", id);
			return LCR_CLIENT_INVALID;
		}
		all[n++] = id;
	}
	if (n > LCR_NODES_MAX) {
		snprintf(msg, len, "%u nodes: a membership holds at most %d", n, LCR_NODES_MAX);
		return LCR_CLIENT_INVALID;
	}
	for (uint32_t i = 0; i < t->n_addrs; i++) {
		const struct lcr_client_addr *a = &t->addrs[i];
		const struct lcr_peer_addr *p = lcr_app_config_peer(&s->cfg, a->id);
		const char *had = lcr_membership_addr(cur, a->id);
		struct lcr_peer_addr pa;
		char why[160];

		if (!id_in(all, n, a->id)) {
			snprintf(msg, len, "an address for node %u, which the target does not name",
				 a->id);
			return LCR_CLIENT_INVALID;
		}
		for (uint32_t k = 0; k < i; k++)
			if (t->addrs[k].id == a->id) {
				snprintf(msg, len, "two addresses for node %u", a->id);
				return LCR_CLIENT_INVALID;
			}
		if (lcr_peer_addr_parse(a->addr, a->id, &pa, why, sizeof(why)) < 0) {
			snprintf(msg, len, "node %u's address: %s", a->id, why);
			return LCR_CLIENT_INVALID;
		}
		/* A member keeps its address: a node that moved is a new node
		 * (remove it, add it under a new id). */
		if (had && strcmp(had, a->addr) != 0) {
			snprintf(msg, len, "node %u is at %s in the membership, not at %s", a->id,
				 had, a->addr);
			return LCR_CLIENT_INVALID;
		}
		if (!had && p && (strcmp(p->host, pa.host) != 0 || p->port != pa.port)) {
			snprintf(msg, len, "node %u is at %s:%u in this node's config, not at %s",
				 a->id, p->host, p->port, a->addr);
			return LCR_CLIENT_INVALID;
		}
	}
	return LCR_CLIENT_OK;
}

/*
 * Who the target names that the cluster cannot take (UNKNOWN_NODE): a new
 * voter must be a member already (openraft: add it as a learner first, so it
 * has caught up before it counts), a new learner needs an address (one this
 * node knows, or one the target gives).
 */
static bool target_known(const struct server *s, const struct lcr_membership *m,
			 const struct lcr_client_target *t, char *msg, size_t len)
{
	char addr[LCR_PEER_ADDR_TEXT_MAX];

	for (uint32_t i = 0; i < t->n_voters; i++)
		if (!lcr_membership_contains(m, t->voters[i])) {
			snprintf(msg, len,
				 "node %u is not a member: add it as a learner first (lcraft-cli "
				 "add-learner), then make it a voter once it caught up",
				 t->voters[i]);
			return false;
		}
	for (uint32_t i = 0; i < t->n_learners; i++) {
		uint32_t id = t->learners[i];
		bool given = false;
		for (uint32_t k = 0; k < t->n_addrs; k++)
			given |= t->addrs[k].id == id;
		if (!lcr_membership_contains(m, id) && !given &&
		    !node_addr(s, m, id, addr, sizeof(addr))) {
			snprintf(msg, len,
				 "node %u is unknown: no address for it here; give one (lcraft-cli "
				 "add-learner %u HOST:PORT)",
				 id, id);
			return false;
		}
	}
	return true;
}

/* The target's voters and learners as the same sets as `m`'s (a single config). */
static bool target_is(const struct lcr_client_target *t, const struct lcr_membership *m)
{
	if (m->n_configs != 1 || m->configs[0].n != t->n_voters || m->n_learners != t->n_learners)
		return false;
	for (uint32_t i = 0; i < t->n_voters; i++)
		if (!id_in(m->configs[0].ids, m->configs[0].n, t->voters[i]))
			return false;
	for (uint32_t i = 0; i < t->n_learners; i++)
		if (!id_in(m->learners, m->n_learners, t->learners[i]))
			return false;
	return true;
}

/*
 * CHANGE_MEMBERSHIP, on the leader: checked (each refusal its own status),
 * compared with the membership the client saw (its log id, when given),
 * handed to lcr_group_change_membership, and answered when its callback
 * runs: once the target is the committed membership, or with why not.
 */
static void change_membership(struct req *q, const struct lcr_core_status *st)
{
	struct grp *g = q->grp;
	struct lcr_client_target t;
	struct lcr_membership m;
	char msg[300];
	uint8_t status;

	if (wait_resend(&g->change, q, CHANGE_WAIT_NS))
		return;
	if (!g->change.running && g->change.client == q->r.client && g->change.id == q->r.id) {
		respond_change(q, g->change_err, g->change_leader); /* it already ended */
		return;
	}
	/* The codec checked the layout (req_check, lcr_wire_decode_client_req). */
	if (lcr_wire_decode_client_target(q->r.value, q->r.value_len, &t) != LCR_DROP_NONE) {
		respond_msg(q, LCR_CLIENT_INVALID, "the target does not decode");
		return;
	}
	if ((status = target_check(q->srv, &st->membership, &t, msg, sizeof(msg))) !=
	    LCR_CLIENT_OK) {
		respond_msg(q, status, msg);
		return;
	}
	if (q->r.expect_len) {
		struct lcr_log_id seen;
		lcr_wire_decode_client_log_id(q->r.expect, q->r.expect_len, &seen);
		if (!lcr_log_id_eq(seen, st->membership_id)) {
			respond_members(q, LCR_CLIENT_CAS_FAILED, st);
			return;
		}
	}
	if (g->change.running || !st->membership_committed) {
		snprintf(msg, sizeof(msg),
			 "another membership change is under way (the membership at index %llu is "
			 "%s): not changed; try again once it committed",
			 (unsigned long long)st->membership_id.index,
			 st->membership_committed ? "committed, its callback pending"
						  : "not committed");
		respond_msg(q, LCR_CLIENT_BUSY, msg);
		return;
	}
	if (!target_known(q->srv, &st->membership, &t, msg, sizeof(msg))) {
		respond_msg(q, LCR_CLIENT_UNKNOWN_NODE, msg);
		return;
	}
	if (target_is(&t, &st->membership)) {
		respond(q, LCR_CLIENT_OK, 0, NULL, 0); /* nothing to change */
		return;
	}
	memset(&m, 0, sizeof(m));
	m.n_configs = 1;
	m.configs[0].n = t.n_voters;
	memcpy(m.configs[0].ids, t.voters, t.n_voters * sizeof(t.voters[0]));
	m.n_learners = t.n_learners;
	memcpy(m.learners, t.learners, t.n_learners * sizeof(t.learners[0]));
	/* The addresses given; the library keeps those of the nodes that stay. */
	m.n_addrs = t.n_addrs;
	for (uint32_t i = 0; i < t.n_addrs; i++) {
		m.addrs[i].id = t.addrs[i].id;
		memcpy(m.addrs[i].addr, t.addrs[i].addr, sizeof(m.addrs[i].addr));
	}
	int rc = lcr_group_change_membership(g->g, &m, msg, sizeof(msg), change_done, g);
	if (rc == -EBUSY) {
		respond_msg(q, LCR_CLIENT_BUSY, msg);
		return;
	}
	if (rc == -EINVAL || rc == -ENOTSUP) {
		respond_msg(q, LCR_CLIENT_INVALID, msg);
		return;
	}
	if (rc < 0) {
		respond_err(q, rc, st->leader);
		return;
	}
	g->change.running = true;
	wait_begin(&g->change, q, CHANGE_WAIT_NS);
}

/*
 * TRANSFER_LEADER, on the leader: LCR_EV_TRIGGER_TRANSFER, then wait (looked
 * at every tick, transfer_look) until the leadership moved: OK when the
 * target leads, TRANSFER_FAILED when another node does.
 */
static void transfer_leader(struct req *q, const struct lcr_core_status *st)
{
	struct grp *g = q->grp;
	uint32_t to = (uint32_t)get_le(q->r.value, 4);
	uint64_t wait_ns = 4ull * q->srv->cfg.node.core.election_timeout_max_ms * 1000000ull;
	char msg[200];

	if (wait_ns < XFER_WAIT_NS)
		wait_ns = XFER_WAIT_NS;
	if (wait_resend(&g->xfer, q, wait_ns))
		return;
	if (to == q->srv->cfg.self) {
		respond(q, LCR_CLIENT_OK, to, NULL, 0); /* it leads already */
		return;
	}
	if (!lcr_membership_is_voter(&st->membership, to)) {
		snprintf(msg, sizeof(msg),
			 "node %u is not a voter of group %u: only a voter can lead", to, g->id);
		respond_msg(q, LCR_CLIENT_UNKNOWN_NODE, msg);
		return;
	}
	if (st->transferring || g->xfer.running) {
		snprintf(msg, sizeof(msg), "a leadership transfer to node %u is under way",
			 g->xfer_to);
		respond_msg(q, LCR_CLIENT_BUSY, msg);
		return;
	}
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_TRANSFER, .transfer_to = to };
	int rc = lcr_group_event(g->g, &ev);
	if (rc < 0) {
		respond_err(q, rc, st->leader);
		return;
	}
	g->xfer.running = true;
	g->xfer_to = to;
	g->xfer_term = st->vote.lid.term;
	wait_begin(&g->xfer, q, wait_ns);
}

/* Whether the transfer ended, answering the waiting copy if so. */
static void transfer_look(struct grp *g, uint64_t now)
{
	struct lcr_core_status st;
	struct req *q;

	lcr_group_status(g->g, &st);
	bool same = st.role == LCR_ROLE_LEADER && st.vote.lid.term == g->xfer_term;
	bool moved = !same && st.leader != 0;
	if (!moved && now < g->xfer.until_ns && st.role != LCR_ROLE_STOPPED)
		return;
	g->xfer.running = false;
	if (!(q = wait_take(&g->xfer)))
		return;
	if (moved && st.leader == g->xfer_to) {
		respond(q, LCR_CLIENT_OK, st.leader, NULL, 0);
	} else if (moved) {
		char msg[160];
		snprintf(msg, sizeof(msg), "the leadership went to node %u, not node %u", st.leader,
			 g->xfer_to);
		respond(q, LCR_CLIENT_TRANSFER_FAILED, st.leader, msg, (uint32_t)strlen(msg));
	} else {
		respond_msg(q, LCR_CLIENT_TIMEOUT,
			    "the leadership did not move in time (the node's log may say why)");
	}
}

/* A change that outlived its wait: TIMEOUT, and it goes on. */
static void change_look(struct grp *g, uint64_t now)
{
	struct req *q;

	if (now < g->change.until_ns || !(q = wait_take(&g->change)))
		return;
	respond_msg(q, LCR_CLIENT_TIMEOUT,
		    "the change is under way but not committed yet (MEMBERS shows it); a resend "
		    "with the same request id waits for it again");
}

/* Look at the waiting ops of the groups on `lcore` (on that lcore). */
static void waits_look(struct server *s, uint32_t lcore)
{
	uint64_t now = mono_ns();

	for (uint32_t i = 0; i < s->n_groups; i++) {
		struct grp *g = &s->groups[i];
		if (lcr_group_lcore(s->node, g->id) != lcore)
			continue;
		if (g->change.q)
			change_look(g, now);
		if (g->xfer.q)
			transfer_look(g, now);
	}
}

static void waits_task(struct lcr_node *n, void *arg)
{
	(void)n;
	waits_look(the_server, (uint32_t)(uintptr_t)arg);
}

static void handle(struct req *q)
{
	struct grp *g = q->grp;
	struct lcr_core_status st;
	int rc;

	g->requests++;
	lcr_group_status(g->g, &st);
	bool this_node = q->r.flags & LCR_CLIENT_F_THIS_NODE;
	if (q->r.op == LCR_CLIENT_SNAPSHOT && this_node) {
		snapshot(q, &st);
		return;
	}
	if (q->r.op == LCR_CLIENT_MEMBERS && this_node) {
		respond_members(q, LCR_CLIENT_OK, &st);
		return;
	}
	if (st.role != LCR_ROLE_LEADER) {
		respond(q, LCR_CLIENT_NOT_LEADER, st.leader, NULL, 0);
		return;
	}
	switch (q->r.op) {
	case LCR_CLIENT_SNAPSHOT:
		snapshot(q, &st);
		return;
	case LCR_CLIENT_MEMBERS:
		respond_members(q, LCR_CLIENT_OK, &st);
		return;
	case LCR_CLIENT_CHANGE_MEMBERSHIP:
		change_membership(q, &st);
		return;
	case LCR_CLIENT_TRANSFER_LEADER:
		transfer_leader(q, &st);
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

/*
 * ",auth":{...}: whether each port is authenticated ("off", or the alg), the
 * node's boot, and the client port's verifier: senders held, evicted,
 * session keys derived, answers sealed. Bytes written (cap is ample).
 */
static size_t auth_json(const struct server *s, char *buf, size_t cap)
{
	const struct lcr_app_config *c = &s->cfg;
	const char *alg = lcr_auth_alg_name(c->auth_alg);
	size_t o = (size_t)snprintf(buf, cap, ",\"auth\":{\"raft\":\"%s\",\"clients\":\"%s\"",
				    c->has_key ? alg : "off", s->client_auth ? alg : "off");
	if (s->boot)
		o += (size_t)snprintf(buf + o, cap - o, ",\"boot\":%llu",
				      (unsigned long long)s->boot);
	if (s->client_auth)
		o += (size_t)snprintf(buf + o, cap - o,
				      ",\"client_senders\":%u,\"client_evicted\":%llu,"
				      "\"client_derivations\":%llu,\"client_verified\":%llu,"
				      "\"answers_sealed\":%llu",
				      s->crx.n_peers, (unsigned long long)s->crx.st.evicted,
				      (unsigned long long)s->crx.st.derivations,
				      (unsigned long long)s->crx.st.accepted,
				      (unsigned long long)lcr_auth_sealed(&s->ctx));
	o += (size_t)snprintf(buf + o, cap - o, "}");
	LCR_ASSERT(o < cap);
	return o;
}

/*
 * The Raft port's authentication drops of lcore `lc` (bad_mac, replayed,
 * old_boot) from the node's metrics JSON `m`: the lcore's part is the
 * (lc+1)-th transport "dropped" object, which holds a reason once it counted
 * one. The transport keeps these counters for its JSON alone.
 */
static uint64_t raft_auth_drops(const char *m, uint32_t lc, const char *reason)
{
	const char *p = m;
	char key[32];

	for (uint32_t i = 0; p && i <= lc; i++)
		if ((p = strstr(p, "\"dropped\":{")) != NULL)
			p += 11;
	if (!p)
		return 0;
	const char *end = strchr(p, '}');
	snprintf(key, sizeof(key), "\"%s\":", reason);
	const char *at = strstr(p, key);
	if (!end || !at || at > end)
		return 0;
	return strtoull(at + strlen(key), NULL, 10);
}

/* The most bytes client_prom() writes: 24 drop reasons, 4 refusals, the Raft
 * port's authentication drops of 64 lcores, their heads. */
#define CLIENT_PROM_BYTES 32768

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
	PUT("# HELP lcraft_auth_enabled Whether a port's datagrams are authenticated "
	    "([cluster] key_file: raft, client_key_file: client).\n"
	    "# TYPE lcraft_auth_enabled gauge\n"
	    "lcraft_auth_enabled{node=\"%u\",port=\"raft\"} %d\n"
	    "lcraft_auth_enabled{node=\"%u\",port=\"client\"} %d\n",
	    id, s->cfg.has_key, id, s->client_auth);
	PUT("# HELP lcraft_transport_auth_dropped_total Raft datagrams the lcore's transport "
	    "refused for their MAC (bad_mac), a counter seen before (replayed) or an earlier "
	    "start of the sender (old_boot).\n"
	    "# TYPE lcraft_transport_auth_dropped_total counter\n");
	/* The node's metrics, into lcore 0's STATS buffer (this is lcore 0). */
	if (s->cfg.has_key && lcr_node_metrics_json(s->node, s->stats, STATS_BYTES) > 0) {
		static const char *const reasons[] = { "bad_mac", "replayed", "old_boot" };
		for (uint32_t lc = 0; lc < s->cfg.node.lcores; lc++)
			for (int r = 0; r < 3; r++)
				PUT("lcraft_transport_auth_dropped_total{node=\"%u\",lcore=\"%u\","
				    "reason=\"%s\"} %llu\n",
				    id, lc, reasons[r],
				    (unsigned long long)raft_auth_drops(s->stats, lc, reasons[r]));
	}
#undef PUT
	return o < len ? (int)o : -ENOSPC;
}

/* How long lcore 0 waits for the other lcores' views (as lcr_node_metrics_json). */
#define VIEW_WAIT_S 1

/* Take group g's view, on its lcore, with server.view_mu held. */
static void view_take(struct grp *g, uint64_t gen)
{
	struct lcr_core_status st;

	/* On the group's lcore, between two steps of its loop: the store has
	 * applied exactly the entries up to the core's applied index (the
	 * runtime reports an apply to the core in the call that makes it). */
	lcr_group_status(g->g, &st);
	g->view.applied_index = st.applied.index;
	lcr_kv_stats(g->kv, &g->view.st);
	g->view.digest_ok = lcr_kv_digest(g->kv, &g->view.digest);
	g->view.gen = gen;
}

/* The views of the groups of one lcore (arg: the lcore, and the answer's
 * generation above it), posted there by views_take. */
static void view_task(struct lcr_node *n, void *arg)
{
	struct server *s = the_server;
	uint32_t lcore = (uint32_t)((uintptr_t)arg & 0xff);
	uint64_t gen = (uint64_t)((uintptr_t)arg >> 8);

	pthread_mutex_lock(&s->view_mu);
	if (gen == s->view_gen) {
		for (uint32_t i = 0; i < s->n_groups; i++)
			if (lcr_group_lcore(n, s->groups[i].id) == lcore)
				view_take(&s->groups[i], gen);
		s->view_pending--;
		pthread_cond_broadcast(&s->view_cv);
	}
	pthread_mutex_unlock(&s->view_mu);
}

/*
 * Take every group's view for a STATS answer (lcore 0): its own groups here,
 * the others' on their lcores, waited for at most VIEW_WAIT_S. Returns the
 * answer's generation with server.view_mu held (the caller renders the views
 * and unlocks); a group whose view.gen is another was not heard from.
 */
static uint64_t views_take(struct server *s)
{
	uint32_t lcores = s->cfg.node.lcores;
	bool has[64] = { false }; /* lcores with groups: at most 64 (config.c) */

	LCR_ASSERT(lcores >= 1 && lcores <= 64);
	for (uint32_t i = 0; i < s->n_groups; i++)
		has[lcr_group_lcore(s->node, s->groups[i].id)] = true;
	pthread_mutex_lock(&s->view_mu);
	uint64_t gen = ++s->view_gen;
	s->view_pending = 0;
	for (uint32_t i = 0; i < s->n_groups; i++)
		if (lcr_group_lcore(s->node, s->groups[i].id) == 0)
			view_take(&s->groups[i], gen);
	for (uint32_t l = 1; l < lcores; l++)
		s->view_pending += has[l];
	pthread_mutex_unlock(&s->view_mu);
	for (uint32_t l = 1; l < lcores; l++) {
		if (!has[l])
			continue;
		void *arg = (void *)(uintptr_t)(gen << 8 | l);
		if (lcr_node_post(s->node, l, view_task, arg) < 0) {
			pthread_mutex_lock(&s->view_mu);
			s->view_pending--;
			pthread_mutex_unlock(&s->view_mu);
		}
	}
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += VIEW_WAIT_S;
	pthread_mutex_lock(&s->view_mu);
	while (s->view_pending > 0)
		if (pthread_cond_timedwait(&s->view_cv, &s->view_mu, &dl) == ETIMEDOUT)
			break;
	return gen;
}

/* One group's entry of STATS' "kv" (server.view_mu held). Bytes written, as snprintf. */
static int kv_json(const struct grp *g, uint64_t gen, char *buf, size_t cap, bool first)
{
	struct lcr_kv_stats ks;
	char idx[24] = "null", dig[24] = "null";

	if (g->view.gen == gen) {
		ks = g->view.st;
		snprintf(idx, sizeof(idx), "%llu", (unsigned long long)g->view.applied_index);
		if (g->view.digest_ok)
			snprintf(dig, sizeof(dig), "\"%016llx\"",
				 (unsigned long long)g->view.digest);
	} else {
		lcr_kv_stats(g->kv, &ks); /* its lcore did not answer: counters as they are */
	}
	return snprintf(buf, cap,
			"%s{\"group\":%u,\"applied_index\":%s,\"digest\":%s,\"keys\":%llu,"
			"\"bytes\":%llu,\"puts\":%llu,\"cas_ok\":%llu,\"cas_failed\":%llu,"
			"\"deletes\":%llu,\"duplicates\":%llu,\"stale\":%llu,"
			"\"malformed\":%llu,\"requests\":%llu}",
			first ? "" : ",", g->id, idx, dig, (unsigned long long)ks.keys,
			(unsigned long long)ks.bytes, (unsigned long long)ks.puts,
			(unsigned long long)ks.cas_ok, (unsigned long long)ks.cas_failed,
			(unsigned long long)ks.deletes, (unsigned long long)ks.duplicates,
			(unsigned long long)ks.stale, (unsigned long long)ks.malformed,
			(unsigned long long)g->requests);
}

/* Answer STATS, on lcore 0 (its buffer is lcore 0's). */
static void stats(struct req *q)
{
	struct server *s = q->srv;
	size_t cap = STATS_BYTES - (s->client_auth ? LCR_AUTH_TRAILER : 0), o = 0;
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
	o += auth_json(s, buf + o, cap - o);
	o += (size_t)snprintf(buf + o, cap - o, ",\"kv\":[");
	uint64_t gen = views_take(s);
	for (uint32_t i = 0; i < s->n_groups && o < cap; i++)
		o += (size_t)kv_json(&s->groups[i], gen, buf + o, cap - o, i == 0);
	pthread_mutex_unlock(&s->view_mu);
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
 * (checks 6 to 13), in their order, to count a drop under the rule it
 * breaks: the codec (lcr_wire_decode_client_req) checks the same rules but
 * says only "malformed". Every length is bounded before it is added up.
 * Returns CD_N if the payload is good.
 */
static enum client_drop req_check(const uint8_t *p, size_t len)
{
	if (len < REQ_FIXED)
		return CD_PAYLOAD_LENGTH;
	uint8_t op = p[16], flags = p[17];
	if (op < LCR_CLIENT_PUT || op > LCR_CLIENT_OP_MAX)
		return CD_OP;
	if ((flags & ~LCR_CLIENT_F_KNOWN) ||
	    ((flags & LCR_CLIENT_F_EXPECT_VALUE) && op != LCR_CLIENT_CAS) ||
	    ((flags & LCR_CLIENT_F_THIS_NODE) && op != LCR_CLIENT_SNAPSHOT &&
	     op != LCR_CLIENT_MEMBERS))
		return CD_FLAGS;
	if (p[18] || p[19])
		return CD_RESERVED;
	uint64_t kl = get_le(p + 20, 4), vl = get_le(p + 24, 4), el = get_le(p + 28, 4);
	if (kl > LCR_CLIENT_KEY_MAX || vl > LCR_CLIENT_VALUE_MAX || el > LCR_CLIENT_VALUE_MAX)
		return CD_TOO_LONG;
	bool has_key = op <= LCR_CLIENT_DELETE;
	bool has_value = op == LCR_CLIENT_PUT || op == LCR_CLIENT_CAS ||
			 op == LCR_CLIENT_CHANGE_MEMBERSHIP || op == LCR_CLIENT_TRANSFER_LEADER;
	bool has_expect = op == LCR_CLIENT_CAS || op == LCR_CLIENT_CHANGE_MEMBERSHIP;
	if ((vl && !has_value) || (el && !has_expect) || (kl && !has_key))
		return CD_UNUSED_FIELD;
	if (REQ_FIXED + kl + vl + el != len)
		return CD_PAYLOAD_LENGTH;
	const uint8_t *v = p + REQ_FIXED + kl, *e = v + vl;
	struct lcr_client_target t;
	struct lcr_log_id id;
	if (op == LCR_CLIENT_CHANGE_MEMBERSHIP &&
	    (lcr_wire_decode_client_target(v, vl, &t) != LCR_DROP_NONE ||
	     (el && lcr_wire_decode_client_log_id(e, el, &id) != LCR_DROP_NONE)))
		return CD_LAYOUT;
	if (op == LCR_CLIENT_TRANSFER_LEADER && (vl != LCR_CLIENT_NODE_ID_BYTES || !get_le(v, 4)))
		return CD_LAYOUT;
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
	if (r->op == LCR_CLIENT_SNAPSHOT || r->op == LCR_CLIENT_MEMBERS ||
	    r->op == LCR_CLIENT_TRANSFER_LEADER)
		return true; /* no key, and not a write */
	if (r->op == LCR_CLIENT_CHANGE_MEMBERSHIP) {
		if (r->client != 0 && r->id != 0)
			return true;
		refuse(q, CR_IDS,
		       "a membership change needs a non-zero client id and a non-zero request id "
		       "(a resend waits for the change the first copy started)");
		return false;
	}
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

/* Why the verifier refused a request, as our counter. */
static enum client_drop auth_drop(uint32_t why)
{
	switch (why) {
	case LCR_AUTH_OLD_BOOT:
		return CD_OLD_BOOT;
	case LCR_AUTH_BAD_MAC:
		return CD_BAD_MAC;
	case LCR_AUTH_REPLAYED:
		return CD_REPLAYED;
	default:
		return CD_SHORT;
	}
}

static void dispatch(struct server *s, const uint8_t *d, size_t len,
		     const struct sockaddr_storage *from, socklen_t from_len)
{
	struct lcr_wire_hdr h;

	/* With a client key, nothing but the client id (the sender the MAC
	 * names) is read before the MAC verified; the trailer is then cut. */
	if (s->client_auth) {
		if (len < LCR_WIRE_HDR + 8 + LCR_AUTH_TRAILER) {
			s->drops[CD_SHORT]++;
			return;
		}
		uint32_t bad = lcr_auth_open(&s->crx, get_le(d + LCR_WIRE_HDR, 8), d, len);
		if (bad != LCR_AUTH_OK) {
			s->drops[auth_drop(bad)]++;
			return;
		}
		len -= LCR_AUTH_TRAILER;
	}
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

/*
 * Have the waiting membership ops looked at, every WAIT_TICK_NS while there
 * are any: here for lcore 0's groups, by a posted task on the others (a full
 * ring is tried again at the next tick). Lcore 0 runs this at least every
 * 100 ms even when idle (the loop's longest sleep), so a wait ends at most
 * that late.
 */
static void waits_tick(struct server *s)
{
	uint64_t now = mono_ns();

	if (!atomic_load_explicit(&s->waiting, memory_order_relaxed) ||
	    now - s->tick_last_ns < WAIT_TICK_NS)
		return;
	s->tick_last_ns = now;
	waits_look(s, 0);
	for (uint32_t l = 1; l < s->cfg.node.lcores; l++)
		(void)lcr_node_post(s->node, l, waits_task, (void *)(uintptr_t)l);
}

static bool client_poll(struct lcr_node *n, uint32_t lcore, void *ctx, uint64_t now)
{
	struct server *s = ctx;
	bool work = false;
	(void)n;
	(void)lcore;
	(void)now;

	waits_tick(s);
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

/* ---- the boot: this start of the node (auth.h) ----------------------------------- */

/*
 * <data_dir>/boot, 24 bytes, little-endian (docs/wire-protocol.md,
 * "Authentication", the boot): magic "LCRB", CRC32C of bytes 8..23, version 1 (u16), 6 bytes 0,
 * the boot of the last start (u64). Replaced whole by a rename, so a file of
 * another size or checksum is damage, not a torn write.
 */
#define BOOT_MAGIC   0x4252434cu /* "LCRB" */
#define BOOT_VERSION 1
#define BOOT_BYTES   24
/* Boots are microseconds of the clock: 2^62 is past the year 100,000. */
#define BOOT_MAX (1ull << 62)

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The boot the file at `path` holds (0: no file), or -errno with a sentence. */
static int boot_read(const char *path, uint64_t *boot, char *why, size_t why_len)
{
	uint8_t b[BOOT_BYTES + 1];
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*boot = 0;
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	while (n < sizeof(b)) {
		ssize_t k = read(fd, b + n, sizeof(b) - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int rc = -errno;
			snprintf(why, why_len, "%s: %s", path, strerror(-rc));
			close(fd);
			return rc;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	const char *bad = NULL;
	char what[64];
	uint64_t v = get_le(b + 16, 8);
	if (n != BOOT_BYTES) {
		snprintf(what, sizeof(what), "%s%zu bytes, not %d", n > BOOT_BYTES ? "over " : "",
			 n > BOOT_BYTES ? (size_t)BOOT_BYTES : n, BOOT_BYTES);
		bad = what;
	} else if (get_le(b, 4) != BOOT_MAGIC) {
		bad = "not a boot file (its magic is not LCRB)";
	} else if (get_le(b + 8, 2) != BOOT_VERSION) {
		snprintf(what, sizeof(what), "format version %u, this build reads %u",
			 (unsigned)get_le(b + 8, 2), BOOT_VERSION);
		bad = what;
	} else if (get_le(b + 4, 4) != lcr_crc32c(0, b + 8, BOOT_BYTES - 8)) {
		bad = "its checksum does not match";
	} else if (v == 0 || v >= BOOT_MAX) {
		bad = "the boot in it is 0 or beyond 2^62";
	}
	if (bad) {
		snprintf(why, why_len,
			 "%s: %s: damaged (the node replaces it whole). Each start's boot must be "
			 "larger than the last one's, or its datagrams would reuse nonces: remove "
			 "the file to take the boot from the clock, which is safe unless this "
			 "machine's clock went back since the node last started",
			 path, bad);
		return -EBADMSG;
	}
	*boot = v;
	return 0;
}

/* Make `path` hold `boot`, durably: a new file renamed over it, then the directory synced. */
static int boot_write(const char *dir, const char *path, uint64_t boot, char *why, size_t why_len)
{
	uint8_t b[BOOT_BYTES] = { 0 };

	put_le(b, BOOT_MAGIC, 4);
	put_le(b + 8, BOOT_VERSION, 2);
	put_le(b + 16, boot, 8);
	put_le(b + 4, lcr_crc32c(0, b + 8, BOOT_BYTES - 8), 4);
	int rc = lcr_file_replace(dir, path, b, sizeof(b), 0600);
	if (rc < 0)
		snprintf(why, why_len, "%s: cannot write the boot: %s", path, strerror(-rc));
	return rc;
}

/* Create `dir` and its missing parents (the node makes them too, but later). */
static int mkdir_parents(const char *dir, char *why, size_t why_len)
{
	char p[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(p)) {
		snprintf(why, why_len, "data_dir: empty or too long");
		return -EINVAL;
	}
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char c = p[i];
		p[i] = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			int rc = -errno;
			snprintf(why, why_len, "data_dir %s: cannot create %s: %s", dir, p,
				 strerror(-rc));
			return rc;
		}
		p[i] = c;
	}
	return 0;
}

/*
 * This start's boot: larger than the last start's (the file) and at least the
 * clock's microseconds, so that it also grows past a data directory that
 * was lost; made durable before any datagram is sealed with it. A boot
 * used twice would restart the counters of a session key: GCM's nonces
 * would repeat, and peers would take the replies of the first start as
 * fresh. Returns 0, or -errno with a sentence.
 */
static int boot_take(const char *dir, uint64_t *boot, char *why, size_t why_len)
{
	char path[600]; /* data_dir is at most 511 bytes (config.h) */
	struct timespec ts;
	uint64_t last;
	int rc;

	if ((rc = mkdir_parents(dir, why, why_len)) < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/boot", dir);
	if ((rc = boot_read(path, &last, why, why_len)) < 0)
		return rc;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
	*boot = now > last ? now : last + 1;
	if (*boot >= BOOT_MAX) {
		snprintf(why, why_len, "%s: the next boot would pass 2^62", path);
		return -ERANGE;
	}
	return boot_write(dir, path, *boot, why, why_len);
}

/*
 * The client port's verifier and the answers' sealer, under the client key:
 * requests from any sender on LCR_AUTH_CHANNEL_CLIENT, answers as this node
 * (its id widened, its boot) on LCR_AUTH_CHANNEL_ANSWER.
 */
static int client_auth_open(struct server *s, char *why, size_t why_len)
{
	struct lcr_auth_key k = { .alg = s->cfg.auth_alg, .cluster = s->cfg.node.cluster };
	int rc;

	memcpy(k.key, s->cfg.client_key, sizeof(k.key));
	rc = lcr_auth_rx_init(&s->crx, &k, LCR_AUTH_CHANNEL_CLIENT, CLIENT_SENDERS, NULL);
	if (rc == 0 &&
	    (rc = lcr_auth_tx_init(&s->ctx, &k, s->cfg.self, s->boot, LCR_AUTH_CHANNEL_ANSWER)) < 0)
		lcr_auth_rx_free(&s->crx);
	lcr_auth_wipe(&k, sizeof(k));
	if (rc < 0)
		snprintf(why, why_len, "client port: its verifier and sealer: %s", strerror(-rc));
	s->client_auth = rc == 0;
	return rc;
}

/* What the node says at start about its keys: one loud line for what is open to anyone. */
static void say_auth(const struct server *s)
{
	const struct lcr_app_config *c = &s->cfg;
	const struct lcr_peer_addr *me = lcr_app_config_peer(c, c->self);
	unsigned cport = (unsigned)me->port + c->client_port_offset;

	if (!c->has_key && !s->client_auth)
		say(s, "warning",
		    "WARNING: nothing is authenticated: anyone who can send to the node's ports "
		    "can speak for its peers (votes, entries, snapshots) and read and write its "
		    "store on port %u; set [cluster] key_file and client_key_file",
		    cport);
	else if (!c->has_key)
		say(s, "warning",
		    "WARNING: datagrams are not authenticated: anyone who can send to the node's "
		    "ports can speak for its peers; set [cluster] key_file");
	else if (!s->client_auth)
		say(s, "warning",
		    "WARNING: the client port %u is not authenticated: anyone who can send to it "
		    "can read and write the store and read the metrics; set [cluster] "
		    "client_key_file",
		    cport);
	if (c->has_key || s->client_auth)
		say(s, "auth", "%s authenticated with %s, boot %llu",
		    c->has_key && s->client_auth ? "Raft datagrams and the client port"
		    : c->has_key		 ? "Raft datagrams"
						 : "the client port",
		    lcr_auth_alg_name(c->auth_alg), (unsigned long long)s->boot);
}

/* "sockets" or "dpdk", and the cores the lcores are pinned to, for the start line. */
static const char *transport_text(const struct lcr_app_config *c, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s%s", c->node.dpdk.enable ? "dpdk" : "sockets",
		 c->node.n_cores ? ", lcores on cores " : "", c->node.n_cores ? c->cores : "",
		 c->node.dpdk.enable && c->memif_dir[0] ? ", memif" : "");
	return out;
}

/* ---- a wiped node never rejoins under its old id (rejoin.h) ------------------------ */

/*
 * While this node checks itself (rejoin.h), its client port answers MEMBERS
 * (THIS_NODE) for a group that holds no state here with the config's first
 * membership, an empty held_state and "checking": true (docs/wire-protocol.md,
 * "The MEMBERS answer"): it holds nothing, so it recorded nothing, and the
 * nodes of a new cluster, all checking, hear from each other at once. Every
 * other request, and MEMBERS for a group that holds state here (its record
 * is not read before the group opens), is answered RETRY (the node is not
 * serving yet). Datagrams are judged as
 * dispatch() judges them, the client key's MAC first.
 */
static bool checking_group(const struct server *s, uint32_t group)
{
	for (uint32_t k = 0; k < s->n_checking; k++)
		if (s->checking[k] == group)
			return true;
	return false;
}

/* The checking node's MEMBERS answer for `group` (fits: 16 voters of 10 digits, twice). */
static size_t checking_members(const struct server *s, uint32_t group, char *buf, size_t cap)
{
	const struct lcr_membership *m = &s->cfg.node.core.membership;
	size_t o = 0;

#define JPUT(...) o += (size_t)snprintf(buf + o, o < cap ? cap - o : 0, __VA_ARGS__)
	JPUT("{\"group\":%u,\"node\":%u,\"role\":\"learner\",\"leader\":0,\"term\":0,", group,
	     s->cfg.self);
	JPUT("\"log_id\":{\"term\":0,\"node\":0,\"index\":0},\"joint\":false,");
	JPUT("\"committed\":true,\"voters\":");
	o = json_ids(buf, cap, o, m->configs[0].ids, m->configs[0].n);
	JPUT(",\"configs\":[");
	o = json_ids(buf, cap, o, m->configs[0].ids, m->configs[0].n);
	JPUT("],\"learners\":[],\"last_index\":0,\"nodes\":[],\"held_state\":[],");
	JPUT("\"checking\":true}");
#undef JPUT
	LCR_ASSERT(o < cap);
	return o;
}

static void checking_serve(void *ctx)
{
	static uint8_t d[LCR_WIRE_CLIENT_DGRAM_MAX];
	struct server *s = ctx;
	char buf[1024];

	for (int i = 0; i < RX_BURST; i++) {
		struct sockaddr_storage from;
		socklen_t from_len = sizeof(from);
		struct lcr_wire_hdr h;
		struct lcr_client_req r;
		ssize_t got = recvfrom(s->fd, d, sizeof(d), MSG_DONTWAIT | MSG_TRUNC,
				       (struct sockaddr *)&from, &from_len);
		if (got < 0)
			return;
		size_t len = (size_t)got;
		if (len > sizeof(d))
			continue;
		if (s->client_auth) {
			if (len < LCR_WIRE_HDR + 8 + LCR_AUTH_TRAILER ||
			    lcr_auth_open(&s->crx, get_le(d + LCR_WIRE_HDR, 8), d, len) !=
				    LCR_AUTH_OK)
				continue;
			len -= LCR_AUTH_TRAILER;
		}
		if (lcr_wire_open_client(d, len, s->cfg.node.cluster, &h) != LCR_DROP_NONE ||
		    h.type != LCR_WIRE_CLIENT_REQ || h.from != 0 ||
		    req_check(d + LCR_WIRE_HDR, h.len) != CD_N ||
		    lcr_wire_decode_client_req(d + LCR_WIRE_HDR, h.len, &r) != LCR_DROP_NONE)
			continue;
		if ((h.to != 0 && h.to != s->cfg.self) || h.group == 0 || h.group > s->cfg.groups)
			continue;
		struct lcr_client_resp resp = { .id = r.id,
						.op = r.op,
						.status = LCR_CLIENT_RETRY };
		if (r.op == LCR_CLIENT_MEMBERS && (r.flags & LCR_CLIENT_F_THIS_NODE) &&
		    checking_group(s, h.group)) {
			resp.status = LCR_CLIENT_OK;
			resp.value = (const uint8_t *)buf;
			resp.value_len = (uint32_t)checking_members(s, h.group, buf, sizeof(buf));
		}
		(void)answer(s, &r, h.group, &resp, &from, from_len);
	}
}

static void checking_progress(void *ctx, const char *line)
{
	say(ctx, "rejoin", "%s", line);
}

/*
 * What asking needs: the boot (with a key), the client port's verifier and
 * sealer (with a client key) and its socket, which main() then keeps.
 */
static int checking_open(struct server *s, char *why, size_t why_len)
{
	int rc;

	if ((s->cfg.has_key || s->cfg.has_client_key) && !s->booted) {
		if ((rc = boot_take(s->cfg.data_dir, &s->boot, why, why_len)) < 0)
			return rc;
		s->booted = true;
	}
	if (s->cfg.has_client_key && !s->client_auth &&
	    (rc = client_auth_open(s, why, why_len)) < 0)
		return rc;
	return s->fd >= 0 ? 0 : client_socket(s, why, why_len);
}

/*
 * Before the node opens: its data directory must be its own (the identity
 * file), and where a group holds no state yet the cluster is asked whether
 * this node id held some there (unless `force`), until a majority of the
 * voters answered (a line on stderr every `every_ms` while it waits).
 * Returns 0 to go on, or the status to exit with, having said why. *mark:
 * the identity file is to be written once the groups are open (their locks
 * held).
 */
static int rejoin_check(struct server *s, bool force, uint64_t every_ms, bool *mark)
{
	const struct lcr_app_config *c = &s->cfg;
	struct lcr_rejoin_verdict v;
	char why[1024], list[64];
	bool present;
	int rc;

	/* The directory exists from the start, as the boot file makes it with a key. */
	if ((rc = mkdir_parents(c->data_dir, why, sizeof(why))) < 0) {
		say(s, "error", "%s", why);
		return 1;
	}
	if ((rc = lcr_rejoin_mark_check(c, &present, why, sizeof(why))) < 0) {
		say(s, "error", "%s (exit %d)", why,
		    rc == -EEXIST || rc == -EBADMSG ? LCR_REJOIN_EXIT_OTHER : 1);
		return rc == -EEXIST || rc == -EBADMSG ? LCR_REJOIN_EXIT_OTHER : 1;
	}
	*mark = !present;
	uint32_t *fresh = calloc(c->groups, sizeof(*fresh)), n = 0;
	if (!fresh) {
		say(s, "error", "out of memory");
		return 1;
	}
	for (uint32_t g = 1; g <= c->groups; g++) {
		if ((rc = lcr_rejoin_group_state(c->data_dir, g, why, sizeof(why))) < 0) {
			say(s, "error", "%s", why);
			free(fresh);
			return 1;
		}
		if (rc == 0)
			fresh[n++] = g;
	}
	if (n == 0 || c->node.n_peers <= 1) {
		free(fresh);
		return 0; /* its own state, or nobody to ask (a cluster of one) */
	}
	if (n == 1)
		snprintf(list, sizeof(list), "group %u", fresh[0]);
	else if (n == c->groups)
		snprintf(list, sizeof(list), "any of its %u groups", n);
	else
		snprintf(list, sizeof(list), "group %u and %u others", fresh[0], n - 1);
	if (force) {
		say(s, "warning",
		    "WARNING: --force-rejoin: %s holds no state for %s and the cluster is not "
		    "asked whether node %u held some: if this node's disk was wiped, it may vote "
		    "twice in a term and lose committed entries",
		    c->data_dir, list, c->self);
		free(fresh);
		return 0;
	}
	if ((rc = checking_open(s, why, sizeof(why))) < 0) {
		say(s, "error", "%s", why);
		free(fresh);
		return 1;
	}
	struct lcr_rejoin_hooks hooks = { .serve = checking_serve,
					  .progress = checking_progress,
					  .ctx = s };
	s->checking = fresh;
	s->n_checking = n;
	rc = lcr_rejoin_ask(c, fresh, n, every_ms, &hooks, &v);
	s->checking = NULL;
	s->n_checking = 0;
	free(fresh);
	if (rc < 0) {
		say(s, "error",
		    "%s holds no state for %s; %s: refusing to start unchecked (--force-rejoin "
		    "starts it anyway, which is dangerous)",
		    c->data_dir, list, v.said);
		return 1;
	}
	if (v.held) {
		say(s, "error",
		    "refusing to start: %s holds no log and no vote for group %u, but %s",
		    c->data_dir, v.group, v.said);
		say(s, "error",
		    "node %u held state in this cluster that is gone (a wiped or new disk): back "
		    "under its old id, with an empty vote, it could vote twice in a term and count "
		    "toward the quorum of entries it no longer holds. Replace it under a new node "
		    "id (docs/operations.md, \"Replace a node whose disk died\"); --force-rejoin "
		    "starts it anyway, which is dangerous (exit %d)",
		    c->self, LCR_REJOIN_EXIT_HELD);
		return LCR_REJOIN_EXIT_HELD;
	}
	say(s, "rejoin", "%s holds no state for %s, and nothing says node %u held some: %s",
	    c->data_dir, list, c->self, v.said);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: lcraft-node --config FILE --id N [--addr HOST:PORT]\n"
		   "                   [--peer ID=HOST:PORT ...] [--json-log]\n"
		   "                   [--rejoin-check-ms MS] [--force-rejoin]\n"
		   "       lcraft-node --help | --help-markdown\n"
		   "\n"
		   "Runs node N of the cluster FILE describes, serving its key-value store to\n"
		   "lcraft-cli on the client port (the node's port + client_port_offset).\n"
		   "With --addr, node N need not be in the file's [nodes]: it runs at HOST:PORT,\n"
		   "knows the file's nodes, and waits, empty, until a leader adds it\n"
		   "(lcraft-cli add-learner N HOST:PORT). --peer names a member the file does not\n"
		   "list (one started with --addr), so that this node hears from it before its\n"
		   "log names it. SIGTERM or SIGINT stops it cleanly.\n\n");
	fprintf(f,
		"A node whose data directory holds no state for a group (a first start, or a\n"
		"wiped disk) first asks the other nodes whether node N held state there: a\n"
		"node that recorded it (MEMBERS' held_state: it granted a vote, acknowledged\n"
		"entries, led), the leader's matched index for it above 0, a node naming it\n"
		"as leader, a membership it wrote. If one says so the node refuses to start\n"
		"(exit 3): replace it under a new id (docs/operations.md, \"Replace a node\n"
		"whose disk died\"). It starts only once a majority of the group's voters\n"
		"(itself counted) answered without evidence, and keeps asking until then,\n"
		"saying every --rejoin-check-ms MS (default %d) what it waits for. While it\n"
		"asks, its client port answers MEMBERS with \"checking\": true, so the nodes\n"
		"of a new cluster start together. --force-rejoin skips the question\n"
		"(dangerous: a wiped node may vote twice in a term and lose committed\n"
		"entries). <data_dir>/identity, written at the first start, names the node and\n"
		"cluster the directory belongs to; another's is refused (exit 4).\n"
		"\n"
		"Exit status: 0 stopped cleanly; 1 an error (the log says which); 2 bad usage\n"
		"or config; 3 the cluster says node N held state that its data directory no\n"
		"longer has; 4 the data directory is another node's or cluster's (or its\n"
		"identity file is damaged).\n\n",
		LCR_REJOIN_WAIT_MS);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "id", required_argument, NULL, 'i' },
		{ "addr", required_argument, NULL, 'a' },
		{ "peer", required_argument, NULL, 'p' },
		{ "json-log", no_argument, NULL, 'j' },
		{ "force-rejoin", no_argument, NULL, 'f' },
		{ "rejoin-check-ms", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ "help-markdown", no_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *addr = NULL, *peers[LCR_PEERS_MAX];
	uint32_t n_peers = 0;
	long id = 0;
	bool json_log = false, force_rejoin = false, mark = false;
	uint64_t rejoin_ms = LCR_REJOIN_WAIT_MS;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:i:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'a':
			addr = optarg;
			break;
		case 'p':
			if (n_peers == LCR_PEERS_MAX) {
				fprintf(stderr, "lcraft-node: more than %d --peer\n",
					LCR_PEERS_MAX);
				return 2;
			}
			peers[n_peers++] = optarg;
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
		case 'f':
			force_rejoin = true;
			break;
		case 'w': {
			char *end;
			long ms = strtol(optarg, &end, 10);
			if (*end || ms < 1 || ms > LCR_REJOIN_WAIT_MS_MAX) {
				fprintf(stderr,
					"lcraft-node: --rejoin-check-ms %s: 1..%d milliseconds\n",
					optarg, LCR_REJOIN_WAIT_MS_MAX);
				return 2;
			}
			rejoin_ms = (uint64_t)ms;
			break;
		}
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
	char why[1024];
	int rc = lcr_app_config_load_addr(&srv.cfg, path, (uint32_t)id, addr, why, sizeof(why));
	for (uint32_t i = 0; rc == 0 && i < n_peers; i++)
		rc = lcr_app_config_add_peer(&srv.cfg, peers[i], why, sizeof(why));
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
	pthread_mutex_init(&srv.view_mu, NULL);
	pthread_cond_init(&srv.view_cv, NULL);

	if ((rc = rejoin_check(&srv, force_rejoin, rejoin_ms, &mark)) != 0) {
		lcr_app_config_wipe_keys(&srv.cfg);
		return rc;
	}
	if ((rc = prepare_config(&srv.cfg, why, sizeof(why))) < 0) {
		say(&srv, "error", "%s", why);
		return 1;
	}
	if ((srv.cfg.has_key || srv.cfg.has_client_key) && !srv.booted) {
		if ((rc = boot_take(srv.cfg.data_dir, &srv.boot, why, sizeof(why))) < 0) {
			say(&srv, "error", "%s", why);
			return 1;
		}
	}
	if (srv.cfg.has_key) {
		srv.cfg.node.auth_key = srv.cfg.key;
		srv.cfg.node.auth_alg = srv.cfg.auth_alg;
		srv.cfg.node.auth_boot = srv.boot;
	}

	rc = lcr_node_open(&srv.node, &srv.cfg.node, why, sizeof(why));
	if (rc < 0) {
		lcr_app_config_wipe_keys(&srv.cfg);
		say(&srv, "error", "%s", why);
		return 1;
	}
	/* The transport derived what it needs; the client port's contexts next. */
	if (srv.cfg.has_client_key && !srv.client_auth &&
	    (rc = client_auth_open(&srv, why, sizeof(why))) < 0) {
		lcr_app_config_wipe_keys(&srv.cfg);
		say(&srv, "error", "%s", why);
		lcr_node_close(srv.node);
		return 1;
	}
	lcr_app_config_wipe_keys(&srv.cfg);
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
	/* The groups' locks are held: nobody else writes in this directory now. */
	if (mark && (rc = lcr_rejoin_mark_write(&srv.cfg, why, sizeof(why))) < 0) {
		say(&srv, "error", "%s", why);
		lcr_node_close(srv.node);
		return 1;
	}
	if (srv.fd < 0 && (rc = client_socket(&srv, why, sizeof(why))) < 0) {
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
	say_auth(&srv);
	if (srv.cfg.joining)
		say(&srv, "joining",
		    "node %u is not in %s's [nodes]: it runs at %s and waits to be added "
		    "(lcraft-cli add-learner %u %s), unless its log already made it a member",
		    srv.cfg.self, path, srv.cfg.addr, srv.cfg.self, srv.cfg.addr);
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
	if (srv.client_auth) {
		lcr_auth_rx_free(&srv.crx);
		lcr_auth_tx_wipe(&srv.ctx);
	}
	say(&srv, "stop", "stopped cleanly");
	return rc < 0 ? 1 : 0;
}
