/* SPDX-License-Identifier: MIT */
/*
 * The network contract in the middle (net.h): the core's messages go out
 * through the transport's ops, or through the defaults openraft's
 * RaftNetworkV2 gives when a transport leaves an op out; results come back
 * as events for the owner of the groups.
 *
 * Results never reach the owner from inside an op or from inside one of its
 * own callbacks: the core is then in the middle of a step (its commands are
 * being executed), and stepping it again would overwrite them. Those results
 * wait in a bounded queue that the loop drains (lcr_net_poll, lcr_net_tick).
 * Results the transport reports from its own poll() go through at once, so a
 * received AppendEntries reaches the core without a copy.
 *
 * Nothing allocates after a group is open.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include "put.h"
#include "alloc.h"
#include "lcr_assert.h"
#include "net_host.h"

#define NET_WHY_MAX 64

/*
 * Entry bytes the native stream hands a target beyond what it acknowledged
 * as durable. A follower acknowledges once its write is done, but takes
 * entries into its log (and applies committed ones) as they arrive; without
 * a bound, a follower whose disk is slower than the path to it piles up
 * unwritten entries in its log's arena (32 MiB by default; a full one stops
 * the replica) and its acks fall ever further behind, until the leader's
 * stall timer restarts the stream and sends everything after the match
 * again, entries the follower has and has not written yet. 8 MiB keeps that
 * backlog, and what a restart sends twice, to a few of the follower's
 * writes (its batches are at most 4 MiB) while the window (1.4 MB over UDP)
 * stays full.
 */
#define NET_UNDURABLE_MAX (8ull << 20)
/* Sends remembered for that count (index and bytes); past it the oldest is
 * forgotten, which only delays the credit until a later one is acknowledged. */
#define NET_FC_MARKS 32

struct net_peer {
	uint32_t target;
	void *client;
	/*
	 * The target's health as the transport reports it, for the default
	 * pre_vote: failing from an error until the target answers again, or
	 * until the backoff for it has passed (then a grant is the retry, as in
	 * openraft's Unreachable handling: back off, then try again).
	 */
	uint32_t fail_err;	/* enum lcr_net_err of the last error; 0: it answers */
	uint32_t fail_step;	/* errors in a row: the backoff step */
	uint64_t fail_until_ns; /* failing until then, or until it answers */
	/* The sequential default of stream_append: requests of one stream. */
	struct lcr_msg *q; /* queue_max requests without entries, FIFO */
	uint32_t q_head, q_len;
	uint64_t ended_stream;	  /* streams up to this one ended: drop their requests */
	bool busy;		  /* one append_entries call in flight */
	struct lcr_net_call cur;  /* that call */
	uint64_t cur_seq;	  /* its send_seq: the reply echoes it */
	uint64_t cur_deadline_ns; /* its hard TTL */
	/* The latest vote or pre-vote call (id 0: none), for its TTL. */
	struct lcr_net_call vote_call;
	uint64_t vote_deadline_ns;
	struct lcr_vote vote_asked; /* what that call asked for: its reply echoes it */
	bool vote_pre;
	/* Entry bytes sent on the native stream and not yet durable there
	 * (NET_UNDURABLE_MAX), counted per stream of the core. */
	uint64_t fc_stream;  /* the core's stream these counts are of */
	uint64_t fc_sent;    /* entry bytes handed to the transport on it */
	uint64_t fc_durable; /* ... up to the newest send the target acknowledged */
	struct {
		uint64_t index; /* the last entry of a send */
		uint64_t sent;	/* fc_sent after it */
	} fc_mark[NET_FC_MARKS];
	uint32_t fc_head, fc_len;
	/* The snapshot being sent to it (full_snapshot), until it ends. */
	bool snap_on;
	struct lcr_net_call snap_call;
	struct lcr_net_snapshot snap; /* the transport reads it until the end */
};

struct lcr_net_group {
	struct lcr_net *net;
	uint32_t id;
	void *host;
	uint32_t n_peers;
	struct net_peer peers[LCR_NODES_MAX];
};

enum { EV_REPLY = 1, EV_FAIL = 2 };

/* A result held for the loop. */
struct net_event {
	uint32_t kind;
	uint32_t group;
	bool synthetic;		  /* made by a default: says nothing of the target's health */
	struct lcr_msg msg;	  /* EV_REPLY: a reply, without entries */
	struct lcr_net_call call; /* EV_FAIL */
	uint32_t err;
	char why[NET_WHY_MAX];
};

struct lcr_net {
	struct lcr_transport *t;
	const struct lcr_net_ops *ops;
	struct lcr_net_config cfg;
	struct lcr_net_host host;
	struct lcr_net_opts opts[LCR_NET_OP_MAX]; /* RPCOption per op */
	struct lcr_net_group **groups;
	uint32_t n_groups;
	struct net_event *ev; /* events_max, a ring */
	uint32_t ev_head, ev_len;
	uint32_t depth; /* inside an op or a host callback: results wait */
	uint64_t next_call_id;
	uint64_t ttl_next_ns; /* no call's TTL ends before this */
	uint64_t now;
	bool pump_due; /* AppendEntries wait in some queue: pumped at every flush */
	struct lcr_net_stats st;
};

/* ---- small helpers ---------------------------------------------------------- */

const char *lcr_net_err_name(uint32_t err)
{
	static const char *names[] = { "none",	  "timeout", "unreachable",
				       "network", "remote",  "closed" };
	return err <= LCR_NET_CLOSED ? names[err] : "unknown";
}

const char *lcr_net_op_name(uint32_t op)
{
	static const char *names[] = {
		"none",	    "append_entries", "stream_append",	 "vote",
		"pre_vote", "full_snapshot",  "transfer_leader", "read_index"
	};
	_Static_assert(sizeof(names) / sizeof(names[0]) == LCR_NET_OP_MAX, "a name per op");
	return op < LCR_NET_OP_MAX ? names[op] : "unknown";
}

void lcr_net_config_default(struct lcr_net_config *c, uint32_t self, uint64_t heartbeat_ms,
			    uint64_t election_timeout_min_ms, uint32_t inflight_max,
			    uint64_t backoff_ms)
{
	memset(c, 0, sizeof(*c));
	c->self = self;
	c->groups_max = 256;
	/* The core keeps at most inflight_max requests out per stream, plus one
	 * heartbeat; one more for the request of a stream just restarted. */
	c->queue_max = inflight_max + 2;
	c->events_max = 4096;
	c->append_ttl_ns = heartbeat_ms * 1000000ull;
	c->vote_ttl_ns = election_timeout_min_ms * 1000000ull;
	c->snapshot_ttl_ns = 200ull * 1000000; /* openraft install_snapshot_timeout */
	c->snapshot_chunk_bytes = 3u << 20;    /* openraft snapshot_max_chunk_size */
	c->backoff_ms = backoff_ms;
}

static struct lcr_net_group *group_of(const struct lcr_net *n, uint32_t id)
{
	for (uint32_t i = 0; i < n->n_groups; i++)
		if (n->groups[i]->id == id)
			return n->groups[i];
	return NULL;
}

static struct net_peer *peer_of(struct lcr_net_group *g, uint32_t target)
{
	for (uint32_t i = 0; i < g->n_peers; i++)
		if (g->peers[i].target == target)
			return &g->peers[i];
	return NULL;
}

static bool is_heartbeat(const struct lcr_msg *m)
{
	return m->append_req.n_entries == 0 && m->append_req.inflight_id == 0;
}

static struct lcr_net_call make_call(struct lcr_net_group *g, struct net_peer *p, uint32_t op,
				     uint64_t stream_id)
{
	struct lcr_net_call c = { .op = op,
				  .group = g->id,
				  .target = p->target,
				  .client = p->client,
				  .stream_id = stream_id,
				  .id = ++g->net->next_call_id };
	return c;
}

static void track_ttl(struct lcr_net *n, uint64_t deadline)
{
	if (deadline < n->ttl_next_ns)
		n->ttl_next_ns = deadline;
}

/* ---- health of a target (for the default pre_vote) ------------------------- */

static void answered(struct net_peer *p)
{
	p->fail_err = 0;
	p->fail_step = 0;
	p->fail_until_ns = 0;
}

static void failed_at(struct lcr_net_group *g, struct net_peer *p, uint32_t err)
{
	/* REMOTE and CLOSED mean it answered, or we stopped on purpose. */
	if (err != LCR_NET_UNREACHABLE && err != LCR_NET_TIMEOUT && err != LCR_NET_NETWORK)
		return;
	p->fail_err = err;
	p->fail_until_ns = g->net->now + lcr_net_backoff_ns(g, p->target, p->fail_step);
	p->fail_step++;
}

static bool failing(const struct lcr_net *n, const struct net_peer *p)
{
	return p->fail_err != 0 && n->now < p->fail_until_ns;
}

/* ---- calling out ---------------------------------------------------------- */

static void host_deliver(struct lcr_net_group *g, const struct lcr_msg *m)
{
	g->net->depth++;
	g->net->host.deliver(g->host, m);
	g->net->depth--;
}

static void host_failed(struct lcr_net_group *g, const struct lcr_net_call *c, uint32_t err,
			const char *why)
{
	g->net->depth++;
	g->net->host.failed(g->host, c, err, why);
	g->net->depth--;
}

typedef void (*msg_op_fn)(struct lcr_transport *t, const struct lcr_net_call *call,
			  const struct lcr_msg *req, const struct lcr_net_opts *opt);

static void call_op(struct lcr_net *n, msg_op_fn op, const struct lcr_net_call *c,
		    const struct lcr_msg *m)
{
	n->st.calls[c->op]++;
	n->depth++;
	op(n->t, c, m, &n->opts[c->op]);
	n->depth--;
}

/* Hold a result for the loop; a full queue loses it, like the network would. */
static struct net_event *hold(struct lcr_net *n, uint32_t kind, uint32_t group)
{
	if (n->ev_len == n->cfg.events_max) {
		n->st.events_full++;
		return NULL;
	}
	struct net_event *e = &n->ev[(n->ev_head + n->ev_len) % n->cfg.events_max];
	n->ev_len++;
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->group = group;
	return e;
}

static void hold_fail(struct lcr_net *n, const struct lcr_net_call *c, uint32_t err,
		      const char *why, bool synthetic)
{
	struct net_event *e = hold(n, EV_FAIL, c->group);
	if (!e)
		return;
	e->call = *c;
	e->err = err;
	e->synthetic = synthetic;
	snprintf(e->why, sizeof(e->why), "%s", why ? why : "");
}

/* ---- the sequential default of stream_append -------------------------------- */

static void seq_clear(struct lcr_net *n, struct net_peer *p)
{
	n->st.seq_dropped += p->q_len;
	p->q_head = p->q_len = 0;
}

/* A stream ended (an error, Conflict, HigherVote): its waiting requests go. */
static void seq_end(struct lcr_net *n, struct net_peer *p, uint64_t stream)
{
	if (stream > p->ended_stream)
		p->ended_stream = stream;
	if (p->q_len && p->q[p->q_head].append_req.stream_id <= p->ended_stream)
		seq_clear(n, p);
}

/*
 * The host attaches the entries of `m` (net_host.h): bounded and without
 * blocking when it can (attach_max), else all at once. 0, -EAGAIN (not
 * now) or -errno (never: drop the request).
 */
static int host_attach(struct lcr_net_group *g, struct lcr_msg *m, uint64_t bytes_max)
{
	struct lcr_net *n = g->net;
	int rc = 0;

	if (m->append_req.n_entries == 0)
		return 0; /* a heartbeat: nothing to attach */
	n->depth++;
	if (n->host.attach_max) {
		rc = n->host.attach_max(g->host, m, bytes_max);
		LCR_ASSERT(rc < 0 || (m->append_req.n_entries >= 1 && m->append_req.entries));
	} else {
		n->host.attach(g->host, m);
	}
	n->depth--;
	return rc;
}

/* ---- durable-bytes flow control (native stream) ------------------------------ */

static void fc_reset(struct net_peer *p, uint64_t stream)
{
	p->fc_stream = stream;
	p->fc_sent = 0;
	p->fc_durable = 0;
	p->fc_head = 0;
	p->fc_len = 0;
}

/* Entry bytes the stream may still take before the target's acks catch up. */
static uint64_t fc_room(const struct net_peer *p)
{
	uint64_t out = p->fc_sent - p->fc_durable;

	return out < NET_UNDURABLE_MAX ? NET_UNDURABLE_MAX - out : 0;
}

/* A send of `bytes` whose last entry is `index`. */
static void fc_sent(struct net_peer *p, uint64_t index, uint64_t bytes)
{
	p->fc_sent += bytes;
	if (p->fc_len == NET_FC_MARKS) {
		p->fc_head = (p->fc_head + 1) % NET_FC_MARKS;
		p->fc_len--;
	}
	uint32_t i = (p->fc_head + p->fc_len) % NET_FC_MARKS;
	p->fc_mark[i].index = index;
	p->fc_mark[i].sent = p->fc_sent;
	p->fc_len++;
}

/* The target holds every entry up to `index` durably (an Ok, of any stream of
 * this leadership: entries are entries). Returns whether that freed room. */
static bool fc_durable(struct net_peer *p, uint64_t index)
{
	bool freed = false;

	while (p->fc_len > 0 && p->fc_mark[p->fc_head].index <= index) {
		p->fc_durable = p->fc_mark[p->fc_head].sent;
		p->fc_head = (p->fc_head + 1) % NET_FC_MARKS;
		p->fc_len--;
		freed = true;
	}
	return freed;
}

/* Send the next waiting request, if none is in flight. */
static void seq_pump(struct lcr_net_group *g, struct net_peer *p)
{
	struct lcr_net *n = g->net;

	/* The native stream's queue is stream_pump's. */
	if (n->ops->stream_append)
		return;
	while (!p->busy && p->q_len > 0) {
		struct lcr_msg m = p->q[p->q_head];
		p->q_head = (p->q_head + 1) % n->cfg.queue_max;
		p->q_len--;
		if (m.append_req.stream_id <= p->ended_stream) {
			n->st.seq_dropped++;
			continue;
		}
		uint32_t want = m.append_req.n_entries;
		int rc = host_attach(g, &m, UINT64_MAX);
		if (rc == -EAGAIN) {
			/* Its entries are being read: back at the head, next flush. */
			p->q_head = (p->q_head + n->cfg.queue_max - 1) % n->cfg.queue_max;
			p->q_len++;
			n->pump_due = true;
			n->st.append_waits++;
			break;
		}
		if (rc < 0) {
			n->st.append_unattached++; /* the core's stream restarts */
			continue;
		}
		uint32_t got = m.append_req.n_entries;
		if (got > 0 && got < want) {
			/* Fewer attached than asked (one message holds ~1 MiB): the
			 * rest goes next, after this one's reply. We just took a
			 * slot, so there is room at the head. */
			struct lcr_msg rest = m;
			rest.append_req.prev = m.append_req.entries[got - 1].id;
			rest.append_req.n_entries = want - got;
			rest.append_req.entries = NULL;
			p->q_head = (p->q_head + n->cfg.queue_max - 1) % n->cfg.queue_max;
			p->q[p->q_head] = rest;
			p->q_len++;
			n->st.append_splits++;
		}
		p->cur = make_call(g, p, LCR_NET_OP_APPEND, m.append_req.stream_id);
		p->cur.heartbeat = is_heartbeat(&m);
		p->cur_seq = m.append_req.send_seq;
		p->cur_deadline_ns = n->now + n->cfg.append_ttl_ns;
		p->busy = true;
		track_ttl(n, p->cur_deadline_ns);
		n->st.defaults[LCR_NET_OP_STREAM_APPEND]++;
		call_op(n, n->ops->append_entries, &p->cur, &m);
	}
}

static void seq_send(struct lcr_net_group *g, struct net_peer *p, const struct lcr_msg *m)
{
	struct lcr_net *n = g->net;
	uint64_t s = m->append_req.stream_id;

	if (s <= p->ended_stream) {
		n->st.seq_dropped++; /* the core opens a new stream after the error */
		return;
	}
	if (p->q_len > 0) {
		uint64_t qs = p->q[p->q_head].append_req.stream_id;
		if (s < qs) {
			n->st.seq_dropped++;
			return;
		}
		if (s > qs)
			seq_clear(n, p); /* the core left that stream behind */
	}
	/* One heartbeat waiting is enough: the newest replaces it. */
	if (m->append_req.n_entries == 0 && m->append_req.inflight_id == 0) {
		for (uint32_t i = 0; i < p->q_len; i++) {
			struct lcr_msg *q = &p->q[(p->q_head + i) % n->cfg.queue_max];
			if (q->append_req.n_entries == 0 && q->append_req.inflight_id == 0) {
				*q = *m;
				seq_pump(g, p);
				return;
			}
		}
	}
	if (p->q_len == n->cfg.queue_max) {
		n->st.seq_full++; /* the core's stream restarts when it stalls */
		return;
	}
	p->q[(p->q_head + p->q_len) % n->cfg.queue_max] = *m;
	p->q_len++;
	seq_pump(g, p);
}

/* ---- results ------------------------------------------------------------------ */

/* ---- snapshots (full_snapshot) ------------------------------------------------ */

/* Whether `r` answers the request `q` (the stream fields it echoes). */
static bool snap_answers(const struct lcr_snapshot_req *q, const struct lcr_snapshot_resp *r)
{
	return r->stream_id == q->stream_id && r->inflight_id == q->inflight_id &&
	       r->send_seq == q->send_seq;
}

/*
 * The send to `p` ended: the transport stops (cancel: it is told now; else
 * it already reported the end) and the host releases the source, so no read
 * of the snapshot outlives the call.
 */
static void snap_release(struct lcr_net_group *g, struct net_peer *p, bool cancel)
{
	struct lcr_net *n = g->net;

	LCR_ASSERT(p->snap_on);
	p->snap_on = false;
	if (cancel) {
		n->depth++;
		n->ops->cancel_snapshot(n->t, &p->snap_call);
		n->depth--;
		n->st.snap_cancelled++;
	}
	if (n->host.snap_close) {
		n->depth++;
		n->host.snap_close(g->host, &p->snap);
		n->depth--;
	}
}

static void send_snapshot(struct lcr_net_group *g, struct net_peer *p, const struct lcr_msg *m)
{
	struct lcr_net *n = g->net;
	struct lcr_net_call c = make_call(g, p, LCR_NET_OP_SNAPSHOT, m->snapshot_req.stream_id);
	int rc;

	LCR_ASSERT(m->snapshot_req.data == 0 && m->snapshot_req.size == 0);
	if (!n->ops->full_snapshot) {
		/* Refused at open where the node purges its log (net.h). */
		n->st.defaults[LCR_NET_OP_SNAPSHOT]++;
		hold_fail(n, &c, LCR_NET_UNREACHABLE, "full_snapshot not implemented", true);
		return;
	}
	/* The core sends one snapshot at a time to a target: a new one means
	 * it gave the last up (its stream restarted). */
	if (p->snap_on) {
		n->st.snap_replaced++;
		snap_release(g, p, true);
	}
	memset(&p->snap, 0, sizeof(p->snap));
	p->snap.req = *m;
	rc = -ENOENT;
	if (n->host.snap_open) {
		n->depth++;
		rc = n->host.snap_open(g->host, m, &p->snap);
		n->depth--;
	}
	if (rc < 0) {
		/* Being built, or purged for a newer one: the core asks again
		 * after its backoff. Nothing is known of the target. */
		n->st.snap_no_source++;
		hold_fail(n, &c, LCR_NET_UNREACHABLE, "no durable snapshot matches the request",
			  true);
		return;
	}
	LCR_ASSERT(p->snap.pull != NULL);
	p->snap_on = true;
	p->snap_call = c;
	n->st.calls[LCR_NET_OP_SNAPSHOT]++;
	n->depth++;
	n->ops->full_snapshot(n->t, &c, m->snapshot_req.vote, &p->snap, &n->opts[c.op]);
	n->depth--;
}

void lcr_net_cancel_snapshot(struct lcr_net_group *g, uint32_t target, uint64_t stream_id)
{
	struct net_peer *p = peer_of(g, target);

	if (p && p->snap_on && (stream_id == 0 || p->snap_call.stream_id == stream_id))
		snap_release(g, p, true);
}

/* The receiving side: the transport's calls, checked, to the host. */
static struct lcr_net_group *snap_group(struct lcr_net *n, uint32_t group)
{
	return n->host.snap_begin ? group_of(n, group) : NULL;
}

int lcr_net_snapshot_begin(struct lcr_net *n, uint32_t group, const struct lcr_msg *req,
			   uint64_t size, uint64_t *handle)
{
	LCR_ASSERT(n->depth == 0);
	struct lcr_net_group *g = snap_group(n, group);
	struct net_peer *p = g ? peer_of(g, req->from) : NULL;

	if (!p || req->to != n->cfg.self || req->type != LCR_MSG_SNAPSHOT_REQ) {
		n->st.snap_rx_refused++;
		return -ENOENT;
	}
	answered(p);
	n->depth++;
	int rc = n->host.snap_begin(g->host, req, size, handle);
	n->depth--;
	if (rc < 0) {
		n->st.snap_rx_refused++;
		return rc;
	}
	n->st.snap_rx_begun++;
	return 0;
}

long lcr_net_snapshot_write(struct lcr_net *n, uint32_t group, uint64_t handle, const void *data,
			    size_t len)
{
	struct lcr_net_group *g = snap_group(n, group);

	if (!g)
		return -ENOENT;
	n->depth++;
	long rc = n->host.snap_write(g->host, handle, data, len);
	n->depth--;
	LCR_ASSERT(rc < 0 || (size_t)rc <= len);
	return rc;
}

int lcr_net_snapshot_end(struct lcr_net *n, uint32_t group, uint64_t handle)
{
	/* The host may step its core from here: only from poll() or tick(). */
	LCR_ASSERT(n->depth == 0);
	struct lcr_net_group *g = snap_group(n, group);

	if (!g)
		return -ENOENT;
	n->st.requests++;
	return n->host.snap_end(g->host, handle);
}

void lcr_net_snapshot_abort(struct lcr_net *n, uint32_t group, uint64_t handle)
{
	struct lcr_net_group *g = snap_group(n, group);

	if (!g)
		return;
	n->depth++;
	n->host.snap_abort(g->host, handle);
	n->depth--;
}

static void on_reply(struct lcr_net_group *g, struct net_peer *p, const struct lcr_msg *m,
		     bool synthetic)
{
	struct lcr_net *n = g->net;

	if (!synthetic)
		answered(p);
	if (m->type == LCR_MSG_APPEND_RESP) {
		const struct lcr_append_resp *r = &m->append_resp;
		if (r->result == LCR_APPEND_OK && fc_durable(p, r->log_id.index) && p->q_len > 0)
			n->pump_due = true;
		if (p->busy && r->stream_id == p->cur.stream_id && r->send_seq == p->cur_seq) {
			p->busy = false;
			/* Conflict and HigherVote end a stream (openraft's
			 * stream_append_sequential stops at them). */
			if (r->result != LCR_APPEND_OK)
				seq_end(n, p, p->cur.stream_id);
		}
	} else if (m->type == LCR_MSG_VOTE_RESP && !synthetic && p->vote_call.id &&
		   m->vote_resp.pre_vote == p->vote_pre &&
		   lcr_vote_eq(m->vote_resp.req_vote, p->vote_asked)) {
		/* The reply to the call in flight: its TTL ends. A reply to an
		 * earlier call still goes to the core, which judges it by the
		 * vote it echoes (a late grant is still a grant). */
		p->vote_call.id = 0;
	} else if (m->type == LCR_MSG_SNAPSHOT_RESP && p->snap_on &&
		   snap_answers(&p->snap.req.snapshot_req, &m->snapshot_resp)) {
		/* The transport ended the send when the answer came. */
		snap_release(g, p, false);
	}
	n->st.replies++;
	host_deliver(g, m);
	seq_pump(g, p);
}

static void on_fail(struct lcr_net_group *g, struct net_peer *p, const struct lcr_net_call *c,
		    uint32_t err, const char *why, bool synthetic)
{
	struct lcr_net *n = g->net;

	switch (c->op) {
	case LCR_NET_OP_SNAPSHOT:
		/* A default's failure (no op, no source) had no send to end. */
		if (!synthetic) {
			if (!p->snap_on || c->id != p->snap_call.id) {
				n->st.late++;
				return;
			}
			snap_release(g, p, false);
		}
		break;
	case LCR_NET_OP_APPEND:
		if (!p->busy || c->id != p->cur.id) {
			n->st.late++;
			return;
		}
		p->busy = false;
		if (!c->heartbeat)
			seq_end(n, p, c->stream_id);
		break;
	case LCR_NET_OP_STREAM_APPEND:
		/* Its requests still waiting go: the core opens a new stream. */
		if (!c->heartbeat && p->q)
			seq_end(n, p, c->stream_id);
		break;
	case LCR_NET_OP_VOTE:
	case LCR_NET_OP_PRE_VOTE:
		if (!synthetic) {
			if (c->id != p->vote_call.id) {
				n->st.late++;
				return;
			}
			p->vote_call.id = 0;
		}
		break;
	default:
		break;
	}
	n->st.errors[err]++;
	if (!synthetic)
		failed_at(g, p, err);
	/* A heartbeat's failure says nothing replication needs: the core keeps
	 * sending heartbeats, backed off or not (engine/replication.c). What
	 * waited behind it goes now (a heartbeat past its TTL, with requests
	 * queued, left them there until something else pumped). */
	if (c->heartbeat) {
		n->st.heartbeat_errors++;
		seq_pump(g, p);
		return;
	}
	host_failed(g, c, err, why);
	seq_pump(g, p);
}

static void reply_now(struct lcr_net *n, uint32_t group, const struct lcr_msg *m, bool synthetic)
{
	struct lcr_net_group *g = group_of(n, group);
	struct net_peer *p = g ? peer_of(g, m->from) : NULL;

	if (!p || m->to != n->cfg.self ||
	    (m->type != LCR_MSG_APPEND_RESP && m->type != LCR_MSG_VOTE_RESP &&
	     m->type != LCR_MSG_READ_INDEX_RESP && m->type != LCR_MSG_SNAPSHOT_RESP)) {
		n->st.dropped++;
		return;
	}
	on_reply(g, p, m, synthetic);
}

static void fail_now(struct lcr_net *n, const struct lcr_net_call *c, uint32_t err, const char *why,
		     bool synthetic)
{
	struct lcr_net_group *g = group_of(n, c->group);
	struct net_peer *p = g ? peer_of(g, c->target) : NULL;

	if (!p) {
		n->st.late++; /* its group closed */
		return;
	}
	on_fail(g, p, c, err, why, synthetic);
}

/* Act on the results held so far (not on those they cause: next time). */
static bool drain(struct lcr_net *n)
{
	uint32_t k = n->ev_len;

	for (uint32_t i = 0; i < k; i++) {
		struct net_event e = n->ev[n->ev_head];
		n->ev_head = (n->ev_head + 1) % n->cfg.events_max;
		n->ev_len--;
		if (e.kind == EV_REPLY)
			reply_now(n, e.group, &e.msg, e.synthetic);
		else
			fail_now(n, &e.call, e.err, e.why, e.synthetic);
	}
	return k > 0;
}

void lcr_net_deliver(struct lcr_net *n, uint32_t group, const struct lcr_msg *m)
{
	/* A request carries entries we do not copy: it must come from poll(). */
	LCR_ASSERT(n->depth == 0);
	struct lcr_net_group *g = group_of(n, group);
	struct net_peer *p = g ? peer_of(g, m->from) : NULL;

	if (!p || m->to != n->cfg.self ||
	    (m->type != LCR_MSG_APPEND_REQ && m->type != LCR_MSG_VOTE_REQ &&
	     m->type != LCR_MSG_TRANSFER_LEADER && m->type != LCR_MSG_READ_INDEX_REQ)) {
		n->st.dropped++;
		return;
	}
	answered(p);
	n->st.requests++;
	host_deliver(g, m);
}

void lcr_net_peer_started(struct lcr_net *n, uint32_t group, uint32_t peer)
{
	LCR_ASSERT(n->depth == 0);
	struct lcr_net_group *g = group_of(n, group);
	struct net_peer *p = g ? peer_of(g, peer) : NULL;

	if (!p) {
		n->st.dropped++;
		return;
	}
	answered(p);
	n->st.peers_started++;
	if (n->host.peer_started) {
		n->depth++;
		n->host.peer_started(g->host, peer);
		n->depth--;
	}
}

void lcr_net_reply(struct lcr_net *n, uint32_t group, const struct lcr_msg *m)
{
	if (n->depth == 0) {
		reply_now(n, group, m, false);
		return;
	}
	/* Replies carry no entries: the copy is all of it. */
	struct net_event *e = hold(n, EV_REPLY, group);
	if (e)
		e->msg = *m;
}

void lcr_net_fail(struct lcr_net *n, const struct lcr_net_call *call, uint32_t err, const char *why)
{
	if (err < LCR_NET_TIMEOUT || err > LCR_NET_CLOSED || call->op == 0 ||
	    call->op >= LCR_NET_OP_MAX) {
		n->st.dropped++;
		return;
	}
	if (n->depth == 0)
		fail_now(n, call, err, why, false);
	else
		hold_fail(n, call, err, why, false);
}

/* ---- sending ------------------------------------------------------------------ */

/*
 * The native stream_append with a host that attaches without blocking
 * (attach_max): requests wait in the peer's queue until their entries are
 * at hand (read from disk asynchronously) and fit the stream's window
 * (stream_room), and each goes out cut after the entries that fit, the
 * rest staying at the head, so the transport is never handed more than it
 * can hold and nothing the core sent is dropped for want of room: the
 * core's pipeline (inflight_max requests of max_payload_entries, counted in
 * entries) may hold far more bytes than the window (300 entries of 8 KiB
 * are 2.4 MB; the UDP window is 1.4 MB). The queue is bounded by what the
 * core keeps out: inflight_max requests per stream, the head maybe the
 * rest of one already acknowledged in part (queue_max = inflight_max + 2).
 * Returns whether it sent anything.
 */
static bool stream_pump(struct lcr_net_group *g, struct net_peer *p)
{
	struct lcr_net *n = g->net;
	bool sent = false;

	while (p->q_len > 0) {
		struct lcr_msg *head = &p->q[p->q_head];
		if (head->append_req.stream_id <= p->ended_stream) {
			p->q_head = (p->q_head + 1) % n->cfg.queue_max;
			p->q_len--;
			n->st.seq_dropped++;
			continue;
		}
		uint64_t room =
			n->ops->stream_room ? n->ops->stream_room(n->t, p->client) : UINT64_MAX;
		if (head->append_req.stream_id != p->fc_stream)
			fc_reset(p, head->append_req.stream_id);
		if (fc_room(p) == 0) {
			/* Wait for the target's acks (on_reply pumps again), or
			 * for the core to restart the stream. */
			n->st.append_waits++;
			break;
		}
		if (fc_room(p) < room)
			room = fc_room(p);
		struct lcr_msg msg = *head;
		uint32_t want = msg.append_req.n_entries;
		int rc = host_attach(g, &msg, room);
		if (rc == -EAGAIN) {
			n->pump_due = true; /* room or a read: the next flush */
			n->st.append_waits++;
			break;
		}
		if (rc < 0) {
			/* Gone from the log (purged): the core restarts the stream. */
			p->q_head = (p->q_head + 1) % n->cfg.queue_max;
			p->q_len--;
			n->st.append_unattached++;
			continue;
		}
		uint32_t got = msg.append_req.n_entries;
		LCR_ASSERT(got >= 1 && got <= want);
		struct lcr_log_id last = msg.append_req.entries[got - 1].id;
		uint64_t bytes = 0;
		for (uint32_t i = 0; i < got; i++)
			bytes += msg.append_req.entries[i].len;
		struct lcr_net_call c =
			make_call(g, p, LCR_NET_OP_STREAM_APPEND, msg.append_req.stream_id);
		call_op(n, n->ops->stream_append, &c, &msg);
		fc_sent(p, last.index, bytes);
		sent = true;
		if (got < want) {
			/* The rest, right after what went, of the same stream. */
			head->append_req.prev = last;
			head->append_req.n_entries = want - got;
			n->st.append_splits++;
			continue;
		}
		p->q_head = (p->q_head + 1) % n->cfg.queue_max;
		p->q_len--;
	}
	return sent;
}

static void stream_queue(struct lcr_net_group *g, struct net_peer *p, const struct lcr_msg *m)
{
	struct lcr_net *n = g->net;
	uint64_t s = m->append_req.stream_id;

	if (s <= p->ended_stream) {
		n->st.seq_dropped++; /* the core opens a new stream after the error */
		return;
	}
	if (p->q_len > 0 && s > p->q[p->q_head].append_req.stream_id)
		seq_clear(n, p); /* the core left that stream behind */
	if (p->q_len == n->cfg.queue_max) {
		/* More than the core keeps out: never silently, the stream ends
		 * now and the core starts over. */
		struct lcr_net_call c = make_call(g, p, LCR_NET_OP_STREAM_APPEND, s);
		n->st.seq_full++;
		hold_fail(n, &c, LCR_NET_NETWORK, "append queue full", false);
		return;
	}
	p->q[(p->q_head + p->q_len) % n->cfg.queue_max] = *m;
	p->q_len++;
	n->st.append_queued++;
	stream_pump(g, p);
}

static void send_append(struct lcr_net_group *g, struct net_peer *p, const struct lcr_msg *m)
{
	struct lcr_net *n = g->net;

	if (!n->ops->stream_append) {
		seq_send(g, p, m);
		return;
	}
	if (n->host.attach_max) {
		if (!is_heartbeat(m)) {
			stream_queue(g, p, m);
			return;
		}
		/* A heartbeat carries nothing to attach and need not wait: its
		 * prev is what the peer is known to hold. */
		struct lcr_net_call c =
			make_call(g, p, LCR_NET_OP_STREAM_APPEND, m->append_req.stream_id);
		c.heartbeat = true;
		call_op(n, n->ops->stream_append, &c, m);
		return;
	}
	/* Native: straight onto the transport's stream, entries attached here
	 * and encoded by the op (no copy of their payload on the way). The
	 * host may attach fewer entries than asked (one message holds ~1 MiB):
	 * the rest follows as further requests of the same stream, each after
	 * the last entry of the one before, so the core's pipeline has no gap. */
	struct lcr_msg msg = *m;
	uint32_t left = m->append_req.n_entries;
	for (;;) {
		n->depth++;
		n->host.attach(g->host, &msg);
		n->depth--;
		uint32_t got = msg.append_req.n_entries;
		struct lcr_log_id last =
			got ? msg.append_req.entries[got - 1].id : msg.append_req.prev;
		struct lcr_net_call c =
			make_call(g, p, LCR_NET_OP_STREAM_APPEND, m->append_req.stream_id);
		c.heartbeat = is_heartbeat(m);
		call_op(n, n->ops->stream_append, &c, &msg);
		if (got == 0 || got >= left)
			break;
		left -= got;
		n->st.append_splits++;
		msg = *m;
		msg.append_req.prev = last;
		msg.append_req.n_entries = left;
	}
}

static void send_vote(struct lcr_net_group *g, struct net_peer *p, const struct lcr_msg *m)
{
	struct lcr_net *n = g->net;
	bool pre = m->vote_req.pre_vote;
	msg_op_fn op = pre ? n->ops->pre_vote : n->ops->vote;

	if (!op) {
		/* The default pre_vote: a grant as if from the target, unless the
		 * transport says the target is failing. An isolated candidate
		 * must not collect a quorum of grants nobody gave. */
		struct lcr_net_call c = make_call(g, p, LCR_NET_OP_PRE_VOTE, 0);
		n->st.defaults[LCR_NET_OP_PRE_VOTE]++;
		if (failing(n, p)) {
			n->st.pre_vote_refused++;
			hold_fail(n, &c, p->fail_err,
				  "pre_vote not implemented; the target is failing", true);
			return;
		}
		struct net_event *e = hold(n, EV_REPLY, g->id);
		if (!e)
			return;
		e->synthetic = true;
		e->msg.type = LCR_MSG_VOTE_RESP;
		e->msg.from = p->target;
		e->msg.to = n->cfg.self;
		e->msg.vote_resp.vote = m->vote_req.vote;
		e->msg.vote_resp.req_vote = m->vote_req.vote;
		e->msg.vote_resp.last_log_id = lcr_log_id_none();
		e->msg.vote_resp.granted = true;
		e->msg.vote_resp.pre_vote = true;
		return;
	}
	p->vote_call = make_call(g, p, pre ? LCR_NET_OP_PRE_VOTE : LCR_NET_OP_VOTE, 0);
	p->vote_asked = m->vote_req.vote;
	p->vote_pre = pre;
	p->vote_deadline_ns = n->now + n->cfg.vote_ttl_ns;
	track_ttl(n, p->vote_deadline_ns);
	struct lcr_net_call c = p->vote_call;
	call_op(n, op, &c, m);
}

static void send_transfer(struct lcr_net_group *g, struct net_peer *p, const struct lcr_msg *m)
{
	struct lcr_net *n = g->net;
	struct lcr_net_call c = make_call(g, p, LCR_NET_OP_TRANSFER, 0);

	if (!n->ops->transfer_leader) {
		/* openraft's default: Unreachable, and the other nodes wait for
		 * the leader lease to run out instead. It says nothing about the
		 * target's health. */
		n->st.defaults[LCR_NET_OP_TRANSFER]++;
		hold_fail(n, &c, LCR_NET_UNREACHABLE, "transfer_leader not implemented", true);
		return;
	}
	call_op(n, n->ops->transfer_leader, &c, m);
}

/*
 * A follower's read index request. Without the op, the answer a transport
 * that cannot carry it would give: unsupported, as if from the leader, so
 * the follower's reads fail at once with a clear error instead of at their
 * timeout. It says nothing of the target's health.
 */
static void send_read_index(struct lcr_net_group *g, struct net_peer *p, const struct lcr_msg *m)
{
	struct lcr_net *n = g->net;

	if (!n->ops->read_index) {
		n->st.defaults[LCR_NET_OP_READ_INDEX]++;
		struct net_event *e = hold(n, EV_REPLY, g->id);
		if (!e)
			return;
		e->synthetic = true;
		e->msg.type = LCR_MSG_READ_INDEX_RESP;
		e->msg.from = p->target;
		e->msg.to = n->cfg.self;
		e->msg.read_index_resp.result = LCR_READ_INDEX_UNSUPPORTED;
		e->msg.read_index_resp.vote = m->read_index_req.vote;
		e->msg.read_index_resp.read_id = m->read_index_req.read_id;
		e->msg.read_index_resp.read_log_id = lcr_log_id_none();
		return;
	}
	struct lcr_net_call c = make_call(g, p, LCR_NET_OP_READ_INDEX, 0);
	call_op(n, n->ops->read_index, &c, m);
}

void lcr_net_send(struct lcr_net_group *g, const struct lcr_msg *m, uint64_t now_ns)
{
	struct lcr_net *n = g->net;

	if (now_ns > n->now)
		n->now = now_ns;
	if (m->type == LCR_MSG_APPEND_RESP || m->type == LCR_MSG_VOTE_RESP ||
	    m->type == LCR_MSG_READ_INDEX_RESP || m->type == LCR_MSG_SNAPSHOT_RESP) {
		n->st.responds++;
		n->depth++;
		n->ops->respond(n->t, g->id, m);
		n->depth--;
		return;
	}
	struct net_peer *p = peer_of(g, m->to);
	if (!p) {
		n->st.dropped++;
		return;
	}
	switch (m->type) {
	case LCR_MSG_APPEND_REQ:
		send_append(g, p, m);
		break;
	case LCR_MSG_VOTE_REQ:
		send_vote(g, p, m);
		break;
	case LCR_MSG_TRANSFER_LEADER:
		send_transfer(g, p, m);
		break;
	case LCR_MSG_READ_INDEX_REQ:
		send_read_index(g, p, m);
		break;
	case LCR_MSG_SNAPSHOT_REQ:
		send_snapshot(g, p, m);
		break;
	default:
		n->st.dropped++;
		break;
	}
}

void lcr_net_cancel(struct lcr_net_group *g)
{
	for (uint32_t i = 0; i < g->n_peers; i++) {
		seq_clear(g->net, &g->peers[i]);
		if (g->peers[i].snap_on)
			snap_release(g, &g->peers[i], true);
	}
}

uint64_t lcr_net_backoff_ns(const struct lcr_net_group *g, uint32_t target, uint32_t step)
{
	const struct lcr_net *n = g->net;

	if (!n->ops->backoff)
		return lcr_backoff_default_ns(n->cfg.backoff_ms, step);
	void *client = NULL;
	for (uint32_t i = 0; i < g->n_peers; i++)
		if (g->peers[i].target == target)
			client = g->peers[i].client;
	return n->ops->backoff(n->t, client, step);
}

bool lcr_net_has_backoff(const struct lcr_net *n)
{
	return n->ops->backoff != NULL;
}

/* ---- peers learned at run time ------------------------------------------------ */

static const char *transport_name(const struct lcr_net *n)
{
	return n->ops->name ? n->ops->name : "?";
}

bool lcr_net_can_learn_peers(const struct lcr_net *n)
{
	return n->ops->set_peer != NULL && n->ops->forget_peer != NULL;
}

int lcr_net_set_peer(struct lcr_net *n, const struct lcr_peer_addr *p, char *why, size_t why_len)
{
	LCR_ASSERT(n && p);
	LCR_ASSERT(n->depth == 0); /* from the loop, never from inside an op or a callback */
	if (p->id == 0 || p->id == n->cfg.self) {
		snprintf(why, why_len, "node %u: %s", p->id,
			 p->id == 0 ? "node id 0 is reserved"
				    : "that is this node: only a peer's address is set");
		return -EINVAL;
	}
	if (!memchr(p->host, '\0', sizeof(p->host)) || !p->host[0] || p->port == 0) {
		snprintf(why, why_len, "node %u: %s", p->id,
			 p->port == 0 ? "its port is 0 (ports are 1..65535)"
				      : "its host is empty or not terminated");
		return -EINVAL;
	}
	if (!lcr_net_can_learn_peers(n)) {
		snprintf(why, why_len,
			 "transport \"%s\" knows only the peers it opened with (it has no "
			 "set_peer): node %u at %s cannot be reached; name the node among the "
			 "configured peers",
			 transport_name(n), p->id, p->host);
		return -ENOTSUP;
	}
	return n->ops->set_peer(n->t, p, why, why_len);
}

int lcr_net_forget_peer(struct lcr_net *n, uint32_t id)
{
	LCR_ASSERT(n);
	LCR_ASSERT(n->depth == 0);
	if (id == 0 || id == n->cfg.self)
		return -EINVAL;
	if (!lcr_net_can_learn_peers(n))
		return -ENOTSUP;
	return n->ops->forget_peer(n->t, id);
}

/* ---- addresses as text ----------------------------------------------------------- */

static_assert(LCR_PEER_ADDR_TEXT_MAX == sizeof(((struct lcr_peer_addr *)0)->host) + 8,
	      "the longest text: brackets, the longest host, ':', five digits and the NUL");

/* `text` (n bytes) for a message: what is not printable shown as '?'. */
static const char *shown(char out[LCR_PEER_ADDR_TEXT_MAX], const char *text, size_t n)
{
	size_t k = n < LCR_PEER_ADDR_TEXT_MAX - 1 ? n : LCR_PEER_ADDR_TEXT_MAX - 1;
	for (size_t i = 0; i < k; i++)
		out[i] = isprint((unsigned char)text[i]) ? text[i] : '?';
	out[k] = 0;
	return out;
}

static bool host_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* An IPv6 address with an optional "%zone" (an interface name or number). */
static bool ipv6_text(const char *h, size_t len)
{
	char buf[sizeof(((struct lcr_peer_addr *)0)->host)];
	struct in6_addr a;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, h, len);
	buf[len] = 0;
	char *zone = strchr(buf, '%');
	if (zone) {
		*zone++ = 0;
		if (!*zone)
			return false;
		for (const char *z = zone; *z; z++)
			if (!host_char(*z))
				return false;
	}
	return inet_pton(AF_INET6, buf, &a) == 1;
}

/* The port: decimal digits only, 1..65535; 0 if it is none. */
static uint32_t port_of(const char *s)
{
	uint32_t v = 0;

	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (uint32_t)(*s - '0');
		if (v > 65535)
			return 0;
	}
	return v;
}

/* -EINVAL with "node ID: the address "TEXT" WHAT" in `why`. */
static int refuse(char *why, size_t why_len, uint32_t id, const char *t, const char *what)
{
	snprintf(why, why_len, "node %u: the address \"%s\" %s", id, t, what);
	return -EINVAL;
}

/* "[IPV6]:PORT" (text[0] is '['): the host inside the brackets, the port after. */
static int split_bracketed(const char *text, size_t n, uint32_t id, const char *t,
			   const char **host, size_t *host_len, const char **port, char *why,
			   size_t why_len)
{
	const char *close = memchr(text, ']', n);

	if (!close)
		return refuse(why, why_len, id, t,
			      "opens a '[' it never closes: expected [IPV6]:PORT");
	if (close[1] != ':')
		return refuse(why, why_len, id, t,
			      close[1] ? "has something other than ':' and a port after its ']'"
				       : "has no port: expected [IPV6]:PORT");
	*host = text + 1;
	*host_len = (size_t)(close - *host);
	*port = close + 2;
	if (*host_len == 0)
		return refuse(why, why_len, id, t, "has no host in its brackets");
	if (!ipv6_text(*host, *host_len))
		return refuse(why, why_len, id, t,
			      "has no IPv6 address in its brackets (brackets are for IPv6 only: "
			      "write an IPv4 address or a name without them)");
	return 0;
}

/* "HOST:PORT": the host before the last ':' (none in it), the port after. */
static int split_plain(const char *text, uint32_t id, const char *t, const char **host,
		       size_t *host_len, const char **port, char *why, size_t why_len)
{
	const char *colon = strrchr(text, ':');

	if (!colon)
		return refuse(why, why_len, id, t, "has no port: expected HOST:PORT");
	*host = text;
	*host_len = (size_t)(colon - text);
	*port = colon + 1;
	if (memchr(text, ':', *host_len))
		return refuse(why, why_len, id, t,
			      "holds an IPv6 address without brackets: write it as in [::1]:7001");
	if (*host_len == 0)
		return refuse(why, why_len, id, t, "has no host: expected HOST:PORT");
	for (size_t i = 0; i < *host_len; i++) {
		if (!host_char(text[i])) {
			snprintf(why, why_len,
				 "node %u: the address \"%s\" has a character in its host (byte "
				 "%zu) that no IPv4 address or host name has",
				 id, t, i + 1);
			return -EINVAL;
		}
	}
	return 0;
}

int lcr_peer_addr_parse(const char *text, uint32_t id, struct lcr_peer_addr *out, char *why,
			size_t why_len)
{
	char t[LCR_PEER_ADDR_TEXT_MAX], what[64];
	const char *host, *port;
	size_t host_len;
	int rc;

	LCR_ASSERT(out);
	if (!text || !text[0]) {
		snprintf(why, why_len,
			 "node %u: the address is empty: expected HOST:PORT or [IPV6]:PORT", id);
		return -EINVAL;
	}
	size_t n = strnlen(text, LCR_PEER_ADDR_TEXT_MAX);
	if (n == LCR_PEER_ADDR_TEXT_MAX) {
		snprintf(why, why_len, "node %u: the address \"%.32s...\" is longer than %d bytes",
			 id, shown(t, text, 32), LCR_PEER_ADDR_TEXT_MAX - 1);
		return -EINVAL;
	}
	shown(t, text, n);
	rc = text[0] == '[' ? split_bracketed(text, n, id, t, &host, &host_len, &port, why, why_len)
			    : split_plain(text, id, t, &host, &host_len, &port, why, why_len);
	if (rc < 0)
		return rc;
	if (host_len >= sizeof(out->host)) {
		snprintf(what, sizeof(what), "has a host of %zu bytes, at most %zu", host_len,
			 sizeof(out->host) - 1);
		return refuse(why, why_len, id, t, what);
	}
	uint32_t pn = port_of(port);
	if (pn == 0)
		return refuse(why, why_len, id, t,
			      *port ? "has a port that is not a number in 1..65535"
				    : "has no port after its ':'");
	memset(out, 0, sizeof(*out));
	out->id = id;
	memcpy(out->host, host, host_len);
	out->port = (uint16_t)pn;
	return 0;
}

int lcr_peer_addr_format(const struct lcr_peer_addr *p, char *buf, size_t len)
{
	size_t hl = strnlen(p->host, sizeof(p->host));
	int k = memchr(p->host, ':', hl)
			? snprintf(buf, len, "[%.*s]:%u", (int)hl, p->host, (unsigned)p->port)
			: snprintf(buf, len, "%.*s:%u", (int)hl, p->host, (unsigned)p->port);

	if (k < 0)
		return -EINVAL;
	return (size_t)k < len ? k : -ENOSPC;
}

/* ---- the loop ------------------------------------------------------------------ */

bool lcr_net_poll(struct lcr_net *n, uint64_t now_ns)
{
	LCR_ASSERT(n->depth == 0);
	n->now = now_ns;
	bool work = drain(n);
	return n->ops->poll(n->t, now_ns) || work;
}

/* End the calls whose hard TTL passed; returns whether any did. */
static bool expire(struct lcr_net *n)
{
	bool work = false;
	uint64_t next = UINT64_MAX;

	if (n->now < n->ttl_next_ns)
		return false;
	/* Calls the callbacks below make lower it again. */
	n->ttl_next_ns = UINT64_MAX;
	for (uint32_t i = 0; i < n->n_groups; i++) {
		struct lcr_net_group *g = n->groups[i];
		for (uint32_t k = 0; k < g->n_peers; k++) {
			struct net_peer *p = &g->peers[k];
			if (p->busy && n->now >= p->cur_deadline_ns) {
				struct lcr_net_call c = p->cur;
				n->st.ttl_expired++;
				on_fail(g, p, &c, LCR_NET_TIMEOUT, "no reply within the hard TTL",
					false);
				work = true;
			}
			if (p->vote_call.id && n->now >= p->vote_deadline_ns) {
				struct lcr_net_call c = p->vote_call;
				n->st.ttl_expired++;
				on_fail(g, p, &c, LCR_NET_TIMEOUT, "no reply within the hard TTL",
					false);
				work = true;
			}
			if (p->busy && p->cur_deadline_ns < next)
				next = p->cur_deadline_ns;
			if (p->vote_call.id && p->vote_deadline_ns < next)
				next = p->vote_deadline_ns;
		}
	}
	if (next < n->ttl_next_ns)
		n->ttl_next_ns = next;
	return work;
}

bool lcr_net_tick(struct lcr_net *n, uint64_t now_ns)
{
	LCR_ASSERT(n->depth == 0);
	n->now = now_ns;
	bool work = drain(n);
	work |= expire(n);
	if (n->ops->tick)
		work |= n->ops->tick(n->t, now_ns);
	return work;
}

/* Requests that waited for room or for their entries: try them again. */
static bool pump_all(struct lcr_net *n)
{
	bool work = false;

	n->pump_due = false;
	for (uint32_t i = 0; i < n->n_groups; i++) {
		struct lcr_net_group *g = n->groups[i];
		for (uint32_t k = 0; k < g->n_peers; k++) {
			struct net_peer *p = &g->peers[k];
			if (p->q_len == 0)
				continue;
			if (n->ops->stream_append)
				work |= stream_pump(g, p);
			else if (!p->busy)
				seq_pump(g, p);
		}
	}
	return work;
}

bool lcr_net_flush(struct lcr_net *n, uint64_t now_ns)
{
	bool work = false;

	n->now = now_ns;
	if (n->pump_due)
		work = pump_all(n);
	if (n->ops->flush)
		work |= n->ops->flush(n->t, now_ns);
	return work;
}

uint64_t lcr_net_next_timer(const struct lcr_net *n)
{
	if (n->ev_len > 0)
		return 0;
	uint64_t t = n->ttl_next_ns;
	if (n->ops->next_timer) {
		uint64_t x = n->ops->next_timer(n->t);
		if (x < t)
			t = x;
	}
	return t;
}

int lcr_net_wait(struct lcr_net *n, int fd, uint64_t timeout_ns)
{
	if (n->ops->wait)
		return n->ops->wait(n->t, fd, timeout_ns);
	struct timespec ts = { .tv_sec = (time_t)(timeout_ns / 1000000000ull),
			       .tv_nsec = (long)(timeout_ns % 1000000000ull) };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int rc = ppoll(&pfd, fd >= 0 ? 1 : 0, &ts, NULL);
	return rc < 0 ? -errno : 0;
}

/* ---- groups --------------------------------------------------------------------- */

int lcr_net_group_open(struct lcr_net *n, uint32_t group, void *host_group, const uint32_t *targets,
		       uint32_t n_targets, struct lcr_net_group **out, char *why, size_t why_len)
{
	const struct lcr_allocator *a = &n->cfg.alloc;
	int rc;

	if (n->n_groups == n->cfg.groups_max || group_of(n, group)) {
		snprintf(why, why_len, "group %u: %s", group,
			 group_of(n, group) ? "already open" : "too many groups on this lcore");
		return -EINVAL;
	}
	if (n_targets > LCR_NODES_MAX) {
		snprintf(why, why_len, "group %u: %u peers (at most %d)", group, n_targets,
			 LCR_NODES_MAX);
		return -EINVAL;
	}
	struct lcr_net_group *g = lcr_allocator_zalloc(a, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->net = n;
	g->id = group;
	g->host = host_group;
	for (uint32_t i = 0; i < n_targets; i++) {
		struct net_peer *p = &g->peers[g->n_peers];
		LCR_ASSERT(targets[i] != 0 && targets[i] != n->cfg.self);
		p->target = targets[i];
		/* The sequential default queues requests; the native stream
		 * holds there what the window or the disk cannot give yet. */
		if (!n->ops->stream_append || n->host.attach_max) {
			p->q = lcr_allocator_zalloc(a, sizeof(*p->q) * n->cfg.queue_max);
			if (!p->q) {
				rc = -ENOMEM;
				goto err_drop_clients;
			}
		}
		if (n->ops->new_client && (rc = n->ops->new_client(n->t, group, p->target,
								   &p->client, why, why_len)) < 0) {
			lcr_allocator_free(a, p->q);
			goto err_drop_clients;
		}
		g->n_peers++;
	}
	n->groups[n->n_groups++] = g;
	*out = g;
	return 0;
err_drop_clients:
	for (uint32_t i = 0; i < g->n_peers; i++) {
		if (n->ops->drop_client)
			n->ops->drop_client(n->t, g->peers[i].client);
		lcr_allocator_free(a, g->peers[i].q);
	}
	lcr_allocator_free(a, g);
	return rc;
}

bool lcr_net_group_has_target(const struct lcr_net_group *g, uint32_t target)
{
	for (uint32_t i = 0; i < g->n_peers; i++)
		if (g->peers[i].target == target)
			return true;
	return false;
}

static bool listed(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

int lcr_net_group_add_target(struct lcr_net_group *g, uint32_t target, const uint32_t *keep,
			     uint32_t n_keep, char *why, size_t why_len)
{
	struct lcr_net *n = g->net;
	const struct lcr_allocator *a = &n->cfg.alloc;
	uint32_t slot = g->n_peers;
	struct net_peer fresh;
	int rc;

	LCR_ASSERT(target != 0 && target != n->cfg.self);
	if (lcr_net_group_has_target(g, target))
		return 0;
	if (slot == LCR_NODES_MAX) {
		/* Full: take the slot of a node that left, once nothing of it is
		 * in flight (its calls ended, its snapshot released). */
		for (uint32_t i = 0; i < g->n_peers && slot == LCR_NODES_MAX; i++) {
			const struct net_peer *q = &g->peers[i];
			if (!listed(keep, n_keep, q->target) && !q->busy && !q->vote_call.id &&
			    !q->snap_on && q->q_len == 0)
				slot = i;
		}
		if (slot == LCR_NODES_MAX) {
			snprintf(why, why_len,
				 "group %u: no room for node %u: %d nodes are members or still "
				 "have calls in flight",
				 g->id, target, LCR_NODES_MAX);
			return -ENOSPC;
		}
	}
	memset(&fresh, 0, sizeof(fresh));
	fresh.target = target;
	if (!n->ops->stream_append || n->host.attach_max) {
		fresh.q = lcr_allocator_zalloc(a, sizeof(*fresh.q) * n->cfg.queue_max);
		if (!fresh.q) {
			snprintf(why, why_len, "group %u: out of memory for node %u", g->id,
				 target);
			return -ENOMEM;
		}
	}
	if (n->ops->new_client &&
	    (rc = n->ops->new_client(n->t, g->id, target, &fresh.client, why, why_len)) < 0) {
		lcr_allocator_free(a, fresh.q);
		return rc;
	}
	if (slot < g->n_peers) {
		struct net_peer *old = &g->peers[slot];
		if (n->ops->drop_client)
			n->ops->drop_client(n->t, old->client);
		lcr_allocator_free(a, old->q);
	} else {
		g->n_peers++;
	}
	g->peers[slot] = fresh;
	return 0;
}

void lcr_net_group_close(struct lcr_net_group *g)
{
	struct lcr_net *n = g->net;

	for (uint32_t i = 0; i < g->n_peers; i++) {
		if (g->peers[i].snap_on)
			snap_release(g, &g->peers[i], true);
		if (n->ops->drop_client)
			n->ops->drop_client(n->t, g->peers[i].client);
		lcr_allocator_free(&n->cfg.alloc, g->peers[i].q);
	}
	for (uint32_t i = 0; i < n->n_groups; i++)
		if (n->groups[i] == g) {
			n->groups[i] = n->groups[--n->n_groups];
			break;
		}
	lcr_allocator_free(&n->cfg.alloc, g);
}

/* ---- opening ----------------------------------------------------------------------- */

/* The ops RaftNetworkV2 gives no default for, and the two the node needs. */
static const char *missing_op(const struct lcr_net_ops *o)
{
	if (!o->append_entries)
		return "append_entries is required (RaftNetworkV2::append_entries has no default)";
	if (!o->vote)
		return "vote is required (RaftNetworkV2::vote has no default)";
	if (!o->respond)
		return "respond is required: the core's replies to requests go back through it";
	if (!o->poll)
		return "poll is required: it is how messages from peers reach the node";
	if (!o->set_peer != !o->forget_peer)
		return "set_peer and forget_peer come together: a transport that learns peers at "
		       "run time must also forget them";
	if (o->full_snapshot && !o->cancel_snapshot)
		return "cancel_snapshot is required with full_snapshot (openraft's cancel): a send "
		       "must stop when replication to its target closes";
	return NULL;
}

int lcr_net_open(struct lcr_net **out, const struct lcr_net_factory *f,
		 const struct lcr_net_env *env, const struct lcr_net_config *cfg,
		 const struct lcr_net_host *host, char *why, size_t why_len)
{
	const struct lcr_allocator *a = &cfg->alloc;
	int rc;

	LCR_ASSERT(host->deliver && host->failed && host->attach);
	if (!f || !f->open) {
		snprintf(why, why_len, "the transport factory has no open()");
		return -EINVAL;
	}
	if (cfg->queue_max == 0 || cfg->events_max == 0 || cfg->groups_max == 0) {
		snprintf(why, why_len, "net: queue_max, events_max and groups_max must be >= 1");
		return -EINVAL;
	}
	struct lcr_net *n = lcr_allocator_aligned(a, sizeof(*n), LCR_CACHE_LINE);
	if (!n)
		return -ENOMEM;
	n->cfg = *cfg;
	n->host = *host;
	n->ttl_next_ns = UINT64_MAX;
	n->groups = lcr_allocator_zalloc(a, sizeof(*n->groups) * cfg->groups_max);
	n->ev = lcr_allocator_zalloc(a, sizeof(*n->ev) * cfg->events_max);
	if (!n->groups || !n->ev) {
		rc = -ENOMEM;
		goto err_free;
	}
	for (uint32_t op = 1; op < LCR_NET_OP_MAX; op++) {
		uint64_t hard = op == LCR_NET_OP_APPEND || op == LCR_NET_OP_STREAM_APPEND
					? cfg->append_ttl_ns
				: op == LCR_NET_OP_SNAPSHOT ? cfg->snapshot_ttl_ns
							    : cfg->vote_ttl_ns;
		n->opts[op].hard_ttl_ns = hard;
		n->opts[op].soft_ttl_ns = hard / 4 * 3;
		n->opts[op].snapshot_chunk_bytes = cfg->snapshot_chunk_bytes;
	}
	struct lcr_net_env e = *env;
	e.net = n;
	if ((rc = f->open(f->ctx, &e, &n->t, why, why_len)) < 0)
		goto err_free;
	n->ops = n->t->ops;
	const char *miss = n->ops ? missing_op(n->ops) : "it has no table of ops";
	if (!miss && cfg->snapshots && !n->ops->full_snapshot)
		miss = "full_snapshot is required: this node purges its log (its snapshot policy), "
		       "so a follower behind the purge point can only catch up from a snapshot, "
		       "and there is no default (net.h); implement it, or never purge";
	if (miss) {
		snprintf(why, why_len, "transport \"%s\": %s",
			 n->ops && n->ops->name ? n->ops->name : (f->name ? f->name : "?"), miss);
		rc = -EINVAL;
		goto err_close;
	}
	*out = n;
	return 0;
err_close:
	if (n->ops && n->ops->close)
		n->ops->close(n->t);
err_free:
	lcr_allocator_free(a, n->groups);
	lcr_allocator_free(a, n->ev);
	lcr_allocator_free_aligned(a, n);
	return rc;
}

void lcr_net_close(struct lcr_net *n)
{
	if (!n)
		return;
	struct lcr_allocator a = n->cfg.alloc;
	while (n->n_groups > 0)
		lcr_net_group_close(n->groups[n->n_groups - 1]);
	if (n->ops->close)
		n->ops->close(n->t);
	lcr_allocator_free(&a, n->groups);
	lcr_allocator_free(&a, n->ev);
	lcr_allocator_free_aligned(&a, n);
}

struct lcr_transport *lcr_net_transport(const struct lcr_net *n)
{
	return n->t;
}

/* ---- metrics ------------------------------------------------------------------------ */

void lcr_net_stats(const struct lcr_net *n, struct lcr_net_stats *st)
{
	*st = n->st;
}

static int counts_json(char *buf, size_t len, const char *name, const uint64_t *v, uint32_t n,
		       const char *(*label)(uint32_t))
{
	size_t o = 0;
	LCR_PUT("\"%s\":{", name);
	for (uint32_t i = 1, first = 1; i < n; i++) {
		if (!v[i])
			continue;
		LCR_PUT("%s\"%s\":%llu", first ? "" : ",", label(i), (unsigned long long)v[i]);
		first = 0;
	}
	LCR_PUT("}");
	return (int)o;
}

int lcr_net_metrics_json(const struct lcr_net *n, char *buf, size_t len)
{
	const struct lcr_net_stats *s = &n->st;
	size_t o = 0;
	int k;

	LCR_PUT("\"transport\":\"%s\",\"net\":{", n->ops->name ? n->ops->name : "?");
	if ((k = counts_json(buf + o, len > o ? len - o : 0, "calls", s->calls, LCR_NET_OP_MAX,
			     lcr_net_op_name)) < 0)
		return k;
	o += (size_t)k;
	LCR_PUT(",");
	if ((k = counts_json(buf + o, len > o ? len - o : 0, "defaults", s->defaults,
			     LCR_NET_OP_MAX, lcr_net_op_name)) < 0)
		return k;
	o += (size_t)k;
	LCR_PUT(",");
	if ((k = counts_json(buf + o, len > o ? len - o : 0, "errors", s->errors,
			     LCR_NET_CLOSED + 1, lcr_net_err_name)) < 0)
		return k;
	o += (size_t)k;
	LCR_PUT(",\"requests\":%llu,\"replies\":%llu,\"responds\":%llu,\"pre_vote_refused\":%llu,"
		"\"ttl_expired\":%llu,\"late\":%llu,\"seq_dropped\":%llu,\"seq_full\":%llu,"
		"\"events_full\":%llu,\"dropped\":%llu,\"append_splits\":%llu,"
		"\"heartbeat_errors\":%llu,\"snap_no_source\":%llu,\"snap_replaced\":%llu,"
		"\"snap_cancelled\":%llu,\"snap_rx_begun\":%llu,\"snap_rx_refused\":%llu,"
		"\"append_queued\":%llu,\"append_waits\":%llu,\"append_unattached\":%llu,"
		"\"peers_started\":%llu}",
		(unsigned long long)s->requests, (unsigned long long)s->replies,
		(unsigned long long)s->responds, (unsigned long long)s->pre_vote_refused,
		(unsigned long long)s->ttl_expired, (unsigned long long)s->late,
		(unsigned long long)s->seq_dropped, (unsigned long long)s->seq_full,
		(unsigned long long)s->events_full, (unsigned long long)s->dropped,
		(unsigned long long)s->append_splits, (unsigned long long)s->heartbeat_errors,
		(unsigned long long)s->snap_no_source, (unsigned long long)s->snap_replaced,
		(unsigned long long)s->snap_cancelled, (unsigned long long)s->snap_rx_begun,
		(unsigned long long)s->snap_rx_refused, (unsigned long long)s->append_queued,
		(unsigned long long)s->append_waits, (unsigned long long)s->append_unattached,
		(unsigned long long)s->peers_started);
	if (n->ops->metrics_json) {
		LCR_PUT(",");
		k = n->ops->metrics_json(n->t, buf + o, len > o ? len - o : 0);
		if (k < 0)
			return k;
		o += (size_t)k;
	}
	return (int)o;
}

int lcr_net_client_metrics_json(const struct lcr_net_group *g, uint32_t target, char *buf,
				size_t len)
{
	const struct lcr_net *n = g->net;

	if (!n->ops->client_metrics_json)
		return 0;
	for (uint32_t i = 0; i < g->n_peers; i++)
		if (g->peers[i].target == target)
			return n->ops->client_metrics_json(n->t, g->peers[i].client, buf, len);
	return 0;
}
