/* The network contract (dpdk-net/net.h): each RaftNetworkV2 default behaves as openraft documents
 * it, driven through net.c by a fake transport, some with a real core behind it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "net_host.h"

#define MS	  1000000ull
#define NODES	  3
#define CALLS_MAX 4096
#define SELF	  1
#define GROUP	  7

/* ---- a fake transport: records every call, answers when the test says ---------- */

struct call_rec {
	struct lcr_net_call call;
	struct lcr_msg msg;    /* entries pointer not valid after the call */
	uint64_t first_index;  /* AppendEntries: index of the first entry attached */
	bool entries_attached; /* AppendEntries: entries were there during the call */
	uint64_t at_ns;	       /* the test's clock when it was made */
};

struct fake {
	struct lcr_transport base;
	struct lcr_net_ops ops;
	struct lcr_net *net;
	struct call_rec calls[CALLS_MAX];
	uint32_t n_calls;
	uint32_t in_flight[NODES + 1]; /* AppendEntries to each target, not answered yet */
	uint32_t in_flight_max[NODES + 1];
	bool down[NODES + 1]; /* ops to it fail with UNREACHABLE, from inside the op */
	uint32_t responds;
	uint64_t backoff_step_ms; /* backoff(): (step + 1) * this, when the op is set */
	uint64_t *clock;
};

static struct fake F;
static uint64_t now;

static void record(struct lcr_transport *t, const struct lcr_net_call *c, const struct lcr_msg *m)
{
	struct fake *f = (struct fake *)t;
	assert_true(f->n_calls < CALLS_MAX);
	struct call_rec *r = &f->calls[f->n_calls++];
	r->call = *c;
	r->msg = *m;
	r->at_ns = now;
	if (m->type == LCR_MSG_APPEND_REQ) {
		r->entries_attached = m->append_req.n_entries == 0 || m->append_req.entries != NULL;
		if (m->append_req.n_entries)
			r->first_index = m->append_req.entries[0].id.index;
	}
}

static void fake_append(struct lcr_transport *t, const struct lcr_net_call *c,
			const struct lcr_msg *m, const struct lcr_net_opts *o)
{
	struct fake *f = (struct fake *)t;
	assert_int_equal(o->hard_ttl_ns, 50 * MS); /* heartbeat interval */
	assert_int_equal(o->soft_ttl_ns, 50 * MS / 4 * 3);
	record(t, c, m);
	if (++f->in_flight[c->target] > f->in_flight_max[c->target])
		f->in_flight_max[c->target] = f->in_flight[c->target];
	if (f->down[c->target]) {
		f->in_flight[c->target]--;
		lcr_net_fail(f->net, c, LCR_NET_UNREACHABLE, "fake: target down");
	}
}

static void fake_vote(struct lcr_transport *t, const struct lcr_net_call *c,
		      const struct lcr_msg *m, const struct lcr_net_opts *o)
{
	struct fake *f = (struct fake *)t;
	assert_int_equal(o->hard_ttl_ns, 150 * MS); /* election timeout min */
	record(t, c, m);
	if (f->down[c->target])
		lcr_net_fail(f->net, c, LCR_NET_UNREACHABLE, "fake: target down");
}

static void fake_respond(struct lcr_transport *t, uint32_t group, const struct lcr_msg *m)
{
	(void)group;
	(void)m;
	((struct fake *)t)->responds++;
}

static bool fake_poll(struct lcr_transport *t, uint64_t now_ns)
{
	(void)t;
	(void)now_ns;
	return false;
}

/* The optional ops, for a transport that implements everything. */
static void fake_native(struct lcr_transport *t, const struct lcr_net_call *c,
			const struct lcr_msg *m, const struct lcr_net_opts *o)
{
	(void)o;
	record(t, c, m);
}

static uint64_t fake_backoff(struct lcr_transport *t, void *client, uint32_t step)
{
	(void)client;
	return (step + 1) * ((struct fake *)t)->backoff_step_ms * MS;
}

static int fake_open(void *ctx, const struct lcr_net_env *env, struct lcr_transport **out,
		     char *why, size_t why_len)
{
	struct fake *f = ctx;
	(void)why;
	(void)why_len;
	f->net = env->net;
	f->base.ops = &f->ops;
	*out = &f->base;
	return 0;
}

static const struct lcr_net_factory fake_factory = { .name = "fake", .open = fake_open, .ctx = &F };

/* Only what RaftNetworkV2 requires (and the node's respond and poll). */
static void fake_init_required(void)
{
	memset(&F, 0, sizeof(F));
	F.ops.name = "fake";
	F.ops.append_entries = fake_append;
	F.ops.vote = fake_vote;
	F.ops.respond = fake_respond;
	F.ops.poll = fake_poll;
}

static uint32_t calls_of(uint32_t op, uint32_t target)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < F.n_calls; i++)
		if (F.calls[i].call.op == op && F.calls[i].call.target == target)
			n++;
	return n;
}

static const struct call_rec *last_call(uint32_t op, uint32_t target)
{
	for (uint32_t i = F.n_calls; i-- > 0;)
		if (F.calls[i].call.op == op && F.calls[i].call.target == target)
			return &F.calls[i];
	return NULL;
}

/* Replication requests only: AppendEntries that are not heartbeats (inflight id 0). */
static uint32_t replications_of(uint32_t target)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < F.n_calls; i++)
		if (F.calls[i].call.op == LCR_NET_OP_APPEND && F.calls[i].call.target == target &&
		    F.calls[i].msg.append_req.inflight_id != 0)
			n++;
	return n;
}

static const struct call_rec *last_replication(uint32_t target)
{
	for (uint32_t i = F.n_calls; i-- > 0;)
		if (F.calls[i].call.op == LCR_NET_OP_APPEND && F.calls[i].call.target == target &&
		    F.calls[i].msg.append_req.inflight_id != 0)
			return &F.calls[i];
	return NULL;
}

/* ---- a recording owner (no core) ---------------------------------------------------- */

struct failure {
	struct lcr_net_call call;
	uint32_t err;
	char why[96];
};

static struct {
	struct lcr_msg delivered[256];
	uint32_t n_delivered;
	struct failure failed[256];
	uint32_t n_failed;
	uint32_t attached;
} H;

static struct lcr_entry attach_ents[512];

static void rec_deliver(void *group, const struct lcr_msg *m)
{
	(void)group;
	assert_true(H.n_delivered < 256);
	H.delivered[H.n_delivered++] = *m;
}

static void rec_failed(void *group, const struct lcr_net_call *c, uint32_t err, const char *why)
{
	(void)group;
	assert_true(H.n_failed < 256);
	struct failure *x = &H.failed[H.n_failed++];
	x->call = *c;
	x->err = err;
	snprintf(x->why, sizeof(x->why), "%s", why ? why : "");
}

static void rec_attach(void *group, struct lcr_msg *m)
{
	(void)group;
	H.attached++;
	for (uint32_t i = 0; i < m->append_req.n_entries; i++) {
		memset(&attach_ents[i], 0, sizeof(attach_ents[i]));
		attach_ents[i].id.lid = m->append_req.vote.lid;
		attach_ents[i].id.index = m->append_req.prev.index + 1 + i;
		attach_ents[i].type = LCR_ENTRY_NORMAL;
	}
	m->append_req.entries = attach_ents;
}

static const struct lcr_net_host rec_host = { rec_deliver, rec_failed, rec_attach };

static struct lcr_net *net;
static struct lcr_net_group *ng;

static void open_net(const struct lcr_net_host *host, void *host_group)
{
	struct lcr_core_config core;
	struct lcr_net_config nc;
	struct lcr_net_env env;
	char why[256];
	uint32_t targets[] = { 2, 3 };

	memset(&H, 0, sizeof(H));
	lcr_core_config_default(&core, SELF);
	lcr_net_config_default(&nc, SELF, core.heartbeat_interval_ms, core.election_timeout_min_ms,
			       core.inflight_max, core.backoff_ms);
	memset(&env, 0, sizeof(env));
	env.self = SELF;
	env.n_lcores = 1;
	now = 1000 * MS;
	int rc = lcr_net_open(&net, &fake_factory, &env, &nc, host, why, sizeof(why));
	if (rc < 0)
		fail_msg("lcr_net_open: %s", why);
	assert_ptr_equal(lcr_net_transport(net), &F.base);
	rc = lcr_net_group_open(net, GROUP, host_group, targets, 2, &ng, why, sizeof(why));
	if (rc < 0)
		fail_msg("lcr_net_group_open: %s", why);
	lcr_net_poll(net, now);
}

static void close_net(void)
{
	lcr_net_close(net);
	net = NULL;
	ng = NULL;
}

static struct lcr_msg append_req(uint32_t to, uint64_t stream, uint64_t inflight, uint64_t seq,
				 uint64_t prev_index, uint32_t n)
{
	struct lcr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_APPEND_REQ;
	m.from = SELF;
	m.to = to;
	m.append_req.vote = (struct lcr_vote){ { 3, SELF }, true };
	m.append_req.prev = (struct lcr_log_id){ { 3, SELF }, prev_index };
	m.append_req.stream_id = stream;
	m.append_req.inflight_id = inflight;
	m.append_req.send_seq = seq;
	m.append_req.n_entries = n;
	return m;
}

static struct lcr_msg append_resp(uint32_t from, const struct lcr_msg *req, uint32_t result)
{
	struct lcr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_APPEND_RESP;
	m.from = from;
	m.to = SELF;
	m.append_resp.result = result;
	m.append_resp.vote = req->append_req.vote;
	m.append_resp.log_id = req->append_req.prev;
	m.append_resp.log_id.index += req->append_req.n_entries;
	m.append_resp.stream_id = req->append_req.stream_id;
	m.append_resp.inflight_id = req->append_req.inflight_id;
	m.append_resp.send_seq = req->append_req.send_seq;
	return m;
}

/* Answer the AppendEntries in flight to `to` (the fake's view). */
static void answer_append(uint32_t to, uint32_t result)
{
	const struct call_rec *r = last_call(LCR_NET_OP_APPEND, to);
	assert_non_null(r);
	struct lcr_msg resp = append_resp(to, &r->msg, result);
	F.in_flight[to]--;
	lcr_net_reply(net, GROUP, &resp);
}

static struct lcr_msg vote_req(uint32_t to, uint64_t term, bool pre)
{
	struct lcr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_VOTE_REQ;
	m.from = SELF;
	m.to = to;
	m.vote_req.vote = (struct lcr_vote){ { term, SELF }, false };
	m.vote_req.last_log_id = (struct lcr_log_id){ { 2, 2 }, 10 };
	m.vote_req.pre_vote = pre;
	return m;
}

/* ---- (1) stream_append left out: sequential ------------------------------------------ */

static void test_net_sequential_one_in_flight_next_after_reply(void **state)
{
	(void)state;
	fake_init_required();
	open_net(&rec_host, NULL);

	/* Five requests queued at once: only the first goes out. */
	for (uint32_t i = 0; i < 5; i++) {
		struct lcr_msg m = append_req(2, 10, i + 1, i + 1, 2 * i, 2);
		lcr_net_send(ng, &m, now);
	}
	assert_int_equal(calls_of(LCR_NET_OP_APPEND, 2), 1);
	assert_int_equal(calls_of(LCR_NET_OP_STREAM_APPEND, 2), 0);
	const struct call_rec *r = last_call(LCR_NET_OP_APPEND, 2);
	assert_int_equal(r->msg.append_req.inflight_id, 1);
	assert_int_equal(r->call.stream_id, 10);
	assert_true(r->entries_attached);
	assert_int_equal(r->msg.append_req.n_entries, 2);
	assert_int_equal(r->first_index, 1);

	/* Each reply lets exactly the next one out, in order. */
	for (uint32_t i = 1; i <= 5; i++) {
		assert_int_equal(F.in_flight[2], 1);
		answer_append(2, LCR_APPEND_OK);
		assert_int_equal(H.n_delivered, i); /* the core got the reply */
		assert_int_equal(H.delivered[i - 1].append_resp.inflight_id, i);
		assert_int_equal(calls_of(LCR_NET_OP_APPEND, 2), i < 5 ? i + 1 : 5);
		if (i < 5)
			assert_int_equal(
				last_call(LCR_NET_OP_APPEND, 2)->msg.append_req.inflight_id, i + 1);
	}
	assert_int_equal(F.in_flight_max[2], 1);
	assert_int_equal(F.in_flight[2], 0);
	assert_int_equal(H.attached, 5);

	/* An error ends the stream: it is reported, what waited is dropped. */
	for (uint32_t i = 6; i <= 8; i++) {
		struct lcr_msg m = append_req(2, 10, i, i, 2 * (i - 1), 2);
		lcr_net_send(ng, &m, now);
	}
	assert_int_equal(calls_of(LCR_NET_OP_APPEND, 2), 6);
	const struct call_rec *c6 = last_call(LCR_NET_OP_APPEND, 2);
	F.in_flight[2]--;
	lcr_net_fail(net, &c6->call, LCR_NET_UNREACHABLE, "test");
	assert_int_equal(H.n_failed, 1);
	assert_int_equal(H.failed[0].call.op, LCR_NET_OP_APPEND);
	assert_int_equal(H.failed[0].call.target, 2);
	assert_int_equal(H.failed[0].call.stream_id, 10);
	assert_int_equal(H.failed[0].err, LCR_NET_UNREACHABLE);
	assert_int_equal(calls_of(LCR_NET_OP_APPEND, 2), 6);
	/* More on the ended stream goes nowhere; the core opens a new one. */
	struct lcr_msg stale = append_req(2, 10, 9, 9, 16, 2);
	lcr_net_send(ng, &stale, now);
	assert_int_equal(calls_of(LCR_NET_OP_APPEND, 2), 6);
	struct lcr_msg fresh = append_req(2, 11, 1, 10, 10, 2);
	lcr_net_send(ng, &fresh, now);
	assert_int_equal(calls_of(LCR_NET_OP_APPEND, 2), 7);
	assert_int_equal(last_call(LCR_NET_OP_APPEND, 2)->call.stream_id, 11);
	/* A second error report for the call that already ended changes nothing. */
	lcr_net_fail(net, &c6->call, LCR_NET_UNREACHABLE, "late");
	assert_int_equal(H.n_failed, 1);

	struct lcr_net_stats st;
	lcr_net_stats(net, &st);
	assert_int_equal(st.calls[LCR_NET_OP_APPEND], 7);
	assert_int_equal(st.defaults[LCR_NET_OP_STREAM_APPEND], 7);
	assert_int_equal(st.seq_dropped, 3); /* 7, 8 and the stale 9 */
	assert_int_equal(st.errors[LCR_NET_UNREACHABLE], 1);
	assert_int_equal(st.late, 1);
	assert_int_equal(calls_of(LCR_NET_OP_APPEND, 3), 0);
	close_net();
}

static void test_net_sequential_conflict_ttl_and_errors_inside_ops(void **state)
{
	(void)state;
	fake_init_required();
	open_net(&rec_host, NULL);

	/* Conflict ends the stream too (openraft's sequential stream stops there). */
	for (uint32_t i = 0; i < 3; i++) {
		struct lcr_msg m = append_req(2, 20, i + 1, i + 1, 2 * i, 2);
		lcr_net_send(ng, &m, now);
	}
	answer_append(2, LCR_APPEND_CONFLICT);
	assert_int_equal(H.n_delivered, 1);
	assert_int_equal(H.delivered[0].append_resp.result, LCR_APPEND_CONFLICT);
	assert_int_equal(calls_of(LCR_NET_OP_APPEND, 2), 1);

	/* No reply within the hard TTL (the heartbeat interval): TIMEOUT. */
	struct lcr_msg m = append_req(2, 21, 1, 4, 0, 2);
	lcr_net_send(ng, &m, now);
	assert_int_equal(calls_of(LCR_NET_OP_APPEND, 2), 2);
	assert_true(lcr_net_next_timer(net) == now + 50 * MS);
	lcr_net_tick(net, now + 50 * MS - 1);
	assert_int_equal(H.n_failed, 0);
	lcr_net_tick(net, now + 50 * MS);
	assert_int_equal(H.n_failed, 1);
	assert_int_equal(H.failed[0].err, LCR_NET_TIMEOUT);
	assert_int_equal(H.failed[0].call.stream_id, 21);
	/* Its reply, late, still reaches the core (an Ok proves durable entries). */
	F.in_flight[2] = 1;
	answer_append(2, LCR_APPEND_OK);
	assert_int_equal(H.n_delivered, 2);

	/* An error reported from inside the op waits for the loop: the core is
	 * in the middle of a step when it sends. */
	now += 100 * MS;
	F.down[3] = true;
	struct lcr_msg m3 = append_req(3, 30, 1, 5, 0, 1);
	lcr_net_send(ng, &m3, now);
	assert_int_equal(calls_of(LCR_NET_OP_APPEND, 3), 1);
	assert_int_equal(H.n_failed, 1);
	assert_true(lcr_net_next_timer(net) == 0);
	lcr_net_poll(net, now);
	assert_int_equal(H.n_failed, 2);
	assert_int_equal(H.failed[1].call.target, 3);
	assert_int_equal(H.failed[1].err, LCR_NET_UNREACHABLE);

	struct lcr_net_stats st;
	lcr_net_stats(net, &st);
	assert_int_equal(st.ttl_expired, 1);
	assert_int_equal(st.seq_dropped, 2);
	close_net();
}

/* ---- (2) pre_vote left out: a grant, but never from a failing target ----------------- */

static void test_net_pre_vote_default_grants(void **state)
{
	(void)state;
	fake_init_required();
	open_net(&rec_host, NULL);

	struct lcr_msg pv = vote_req(2, 5, true);
	lcr_net_send(ng, &pv, now);
	assert_int_equal(F.n_calls, 0); /* nothing went to the transport */
	assert_int_equal(H.n_delivered, 0);
	lcr_net_poll(net, now);
	assert_int_equal(H.n_delivered, 1);
	const struct lcr_msg *r = &H.delivered[0];
	assert_int_equal(r->type, LCR_MSG_VOTE_RESP);
	assert_int_equal(r->from, 2);
	assert_int_equal(r->to, SELF);
	assert_true(lcr_vote_eq(r->vote_resp.vote, pv.vote_req.vote));
	assert_true(lcr_vote_eq(r->vote_resp.req_vote, pv.vote_req.vote));
	assert_true(lcr_log_id_is_none(r->vote_resp.last_log_id));
	assert_true(r->vote_resp.granted);
	assert_true(r->vote_resp.pre_vote);

	/* A real vote does go out, through vote. */
	struct lcr_msg v = vote_req(2, 5, false);
	lcr_net_send(ng, &v, now);
	assert_int_equal(calls_of(LCR_NET_OP_VOTE, 2), 1);
	assert_int_equal(calls_of(LCR_NET_OP_PRE_VOTE, 2), 0);

	struct lcr_net_stats st;
	lcr_net_stats(net, &st);
	assert_int_equal(st.defaults[LCR_NET_OP_PRE_VOTE], 1);
	assert_int_equal(st.calls[LCR_NET_OP_VOTE], 1);
	close_net();
}

static void pre_vote_to(uint32_t to)
{
	struct lcr_msg pv = vote_req(to, 9, true);
	lcr_net_send(ng, &pv, now);
	lcr_net_poll(net, now);
}

static bool granted_by(uint32_t from)
{
	for (uint32_t i = 0; i < H.n_delivered; i++)
		if (H.delivered[i].type == LCR_MSG_VOTE_RESP && H.delivered[i].from == from &&
		    H.delivered[i].vote_resp.granted)
			return true;
	return false;
}

static void test_net_pre_vote_failing_target_is_an_error(void **state)
{
	(void)state;
	fake_init_required();
	open_net(&rec_host, NULL);

	/* The transport's vote to 3 reports UNREACHABLE, its append to 2 too. */
	F.down[3] = true;
	F.down[2] = true;
	struct lcr_msg v = vote_req(3, 8, false);
	lcr_net_send(ng, &v, now);
	struct lcr_msg a = append_req(2, 40, 1, 1, 0, 1);
	lcr_net_send(ng, &a, now);
	lcr_net_poll(net, now);
	assert_int_equal(H.n_failed, 2);

	/* Pre-votes to them: errors, no grant. */
	pre_vote_to(3);
	pre_vote_to(2);
	assert_false(granted_by(3));
	assert_false(granted_by(2));
	assert_int_equal(H.n_delivered, 0);
	assert_int_equal(H.n_failed, 4);
	assert_int_equal(H.failed[2].call.op, LCR_NET_OP_PRE_VOTE);
	assert_int_equal(H.failed[2].call.target, 3);
	assert_int_equal(H.failed[2].err, LCR_NET_UNREACHABLE);
	assert_int_equal(H.failed[3].call.target, 2);
	assert_int_equal(F.n_calls, 2); /* still no pre_vote calls: there is no op */

	/* The target answering ends it: a request from 3 arrives. */
	struct lcr_msg from3 = vote_req(SELF, 9, true);
	from3.from = 3;
	from3.vote_req.vote.lid.node = 3;
	lcr_net_deliver(net, GROUP, &from3);
	assert_int_equal(H.n_delivered, 1);
	pre_vote_to(3);
	assert_true(granted_by(3));

	/* So does the backoff running out (then the grant is the retry): 200 ms
	 * after the one error of 2 in a row. */
	now += 199 * MS;
	pre_vote_to(2);
	assert_false(granted_by(2));
	now += 1 * MS;
	pre_vote_to(2);
	assert_true(granted_by(2));
	/* A second error in a row: 400 ms. */
	struct lcr_msg a2 = append_req(2, 41, 1, 2, 0, 1);
	lcr_net_send(ng, &a2, now);
	lcr_net_poll(net, now);
	uint32_t before = H.n_delivered;
	now += 399 * MS;
	pre_vote_to(2);
	assert_int_equal(H.n_delivered, before);
	now += 1 * MS;
	pre_vote_to(2);
	assert_int_equal(H.n_delivered, before + 1);

	struct lcr_net_stats st;
	lcr_net_stats(net, &st);
	assert_int_equal(st.pre_vote_refused, 4);
	close_net();
}

/* ---- a small owner with a real core behind net.c -------------------------------------- */

struct mini {
	struct lcr_core *core;
	struct lcr_log_id ids[8192]; /* ids[i]: the entry at index i + 1 */
	uint64_t n_ids;
	struct lcr_entry ents[512];
	struct lcr_io_id io;
	uint32_t role;
	uint32_t net_errors;
};

static struct mini M;

static void mini_run(void);

static void mini_step(struct lcr_event *ev)
{
	ev->now_ns = now;
	assert_int_equal(lcr_core_step(M.core, ev), 0);
	mini_run();
}

/* Execute the commands: storage is memory that is durable at once. */
static void mini_run(void)
{
	uint32_t n;
	const struct lcr_cmd *cmds = lcr_core_commands(M.core, &n);
	bool flushed = false, applied = false;
	struct lcr_log_id applied_to = lcr_log_id_none();

	for (uint32_t i = 0; i < n; i++) {
		const struct lcr_cmd *c = &cmds[i];
		switch (c->type) {
		case LCR_CMD_SAVE_VOTE:
			M.io = c->save_vote.io;
			flushed = true;
			break;
		case LCR_CMD_APPEND:
			for (uint32_t k = 0; k < c->append.n; k++) {
				assert_int_equal(c->append.entries[k].id.index, M.n_ids + 1);
				M.ids[M.n_ids++] = c->append.entries[k].id;
			}
			M.io = c->append.io;
			flushed = true;
			break;
		case LCR_CMD_TRUNCATE:
			M.n_ids = c->truncate.after.index;
			M.io = c->truncate.io;
			flushed = true;
			break;
		case LCR_CMD_SEND:
			lcr_net_send(ng, &c->send, now);
			break;
		case LCR_CMD_APPLY:
			applied = true;
			applied_to = c->apply.last;
			break;
		case LCR_CMD_ROLE:
			M.role = c->role.role;
			if (M.role != LCR_ROLE_LEADER)
				lcr_net_cancel(ng);
			break;
		default:
			break;
		}
	}
	if (flushed) {
		struct lcr_event ev = { .type = LCR_EV_IO_FLUSHED, .io = M.io };
		mini_step(&ev);
	}
	if (applied) {
		struct lcr_event ev = { .type = LCR_EV_APPLIED, .applied = applied_to };
		mini_step(&ev);
	}
}

static void mini_deliver(void *group, const struct lcr_msg *m)
{
	(void)group;
	struct lcr_event ev = { .type = LCR_EV_MSG, .msg = m };
	mini_step(&ev);
}

static void mini_failed(void *group, const struct lcr_net_call *c, uint32_t err, const char *why)
{
	rec_failed(group, c, err, why);
	if (c->op != LCR_NET_OP_APPEND && c->op != LCR_NET_OP_STREAM_APPEND)
		return;
	M.net_errors++;
	struct lcr_event ev = { .type = LCR_EV_NET_ERROR };
	ev.net.target = c->target;
	ev.net.stream_id = c->stream_id;
	ev.net.err = err;
	mini_step(&ev);
}

static void mini_attach(void *group, struct lcr_msg *m)
{
	(void)group;
	uint32_t n = m->append_req.n_entries;
	assert_true(n <= 512);
	for (uint32_t i = 0; i < n; i++) {
		memset(&M.ents[i], 0, sizeof(M.ents[i]));
		M.ents[i].id = M.ids[m->append_req.prev.index + i];
		M.ents[i].type = LCR_ENTRY_NORMAL;
	}
	m->append_req.entries = M.ents;
}

static const struct lcr_net_host mini_host = { mini_deliver, mini_failed, mini_attach };

static uint64_t mini_backoff(void *ctx, uint32_t target, uint32_t step)
{
	(void)ctx;
	return lcr_net_backoff_ns(ng, target, step);
}

/* Election timeouts for the next mini_open (0: the defaults). */
static uint32_t mini_election_ms;

static void mini_open(uint32_t voters, bool pre_vote)
{
	struct lcr_core_config cfg;
	struct lcr_core_restore rs;

	memset(&M, 0, sizeof(M));
	open_net(&mini_host, &M);
	lcr_core_config_default(&cfg, SELF);
	cfg.membership.n_configs = 1;
	cfg.membership.configs[0].n = voters;
	for (uint32_t i = 0; i < voters; i++)
		cfg.membership.configs[0].ids[i] = i + 1;
	cfg.enable_pre_vote = pre_vote;
	cfg.seed = 7;
	if (mini_election_ms) {
		cfg.election_timeout_min_ms = mini_election_ms;
		cfg.election_timeout_max_ms = mini_election_ms * 2;
	}
	/* As the runtime does: a transport with its own backoff sets it. */
	if (lcr_net_has_backoff(net)) {
		cfg.backoff_ns = mini_backoff;
		cfg.backoff_ctx = &M;
	}
	memset(&rs, 0, sizeof(rs));
	assert_int_equal(lcr_core_new(&M.core, &cfg, &rs), 0);
	assert_int_equal(lcr_core_start(M.core, now), 0);
	mini_run();
}

static void mini_close(void)
{
	lcr_core_free(M.core);
	close_net();
}

/* One millisecond of the loop: held results, timers, TTLs. */
static void mini_ms(void)
{
	now += MS;
	lcr_net_poll(net, now);
	if (now >= lcr_core_next_timer(M.core)) {
		struct lcr_event ev = { .type = LCR_EV_TICK };
		mini_step(&ev);
	}
	lcr_net_tick(net, now);
}

static uint64_t term_of(void)
{
	struct lcr_core_status st;
	lcr_core_status(M.core, &st);
	return st.vote.lid.term;
}

static void trigger_elect(bool pre_vote)
{
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_ELECT };
	ev.elect.pre_vote = pre_vote;
	mini_step(&ev);
}

/*
 * An isolated candidate: its transport reports both peers unreachable. Its
 * pre-votes then collect no synthesized grants, so it never reaches a real
 * election and its term stays where it was (openraft's bare default would
 * grant and let it inflate the term every round).
 */
static void test_net_isolated_candidate_wins_no_pre_vote_quorum(void **state)
{
	(void)state;
	fake_init_required();
	F.down[2] = F.down[3] = true;
	mini_open(3, true);

	/* Its last real election told it the peers are unreachable. */
	trigger_elect(false);
	mini_ms();
	assert_int_equal(term_of(), 1);
	assert_int_equal(calls_of(LCR_NET_OP_VOTE, 2), 1);
	assert_int_equal(calls_of(LCR_NET_OP_VOTE, 3), 1);
	assert_int_equal(H.n_failed, 2);

	/* Pre-vote rounds inside the backoff: no grant, no election. */
	for (uint32_t round = 0; round < 15; round++) {
		trigger_elect(true);
		for (uint32_t k = 0; k < 10; k++)
			mini_ms();
	}
	assert_int_equal(term_of(), 1);
	assert_true(M.role != LCR_ROLE_LEADER);
	assert_int_equal(calls_of(LCR_NET_OP_VOTE, 2), 1); /* no real vote went out */
	assert_int_equal(calls_of(LCR_NET_OP_VOTE, 3), 1);
	struct lcr_net_stats st;
	lcr_net_stats(net, &st);
	assert_true(st.pre_vote_refused >= 30);
	assert_int_equal(st.defaults[LCR_NET_OP_PRE_VOTE], st.pre_vote_refused);
	mini_close();

	/* The same silence without any failure reported: the synthesized grants
	 * make a quorum and a real election follows (plain Raft). */
	fake_init_required();
	mini_open(3, true);
	trigger_elect(true);
	mini_ms();
	assert_int_equal(term_of(), 1);
	assert_int_equal(calls_of(LCR_NET_OP_VOTE, 2), 1);
	assert_false(last_call(LCR_NET_OP_VOTE, 2)->msg.vote_req.pre_vote);
	mini_close();
}

/* ---- (3) transfer_leader left out: UNREACHABLE --------------------------------------- */

static void test_net_transfer_leader_default_unreachable(void **state)
{
	(void)state;
	fake_init_required();
	open_net(&rec_host, NULL);

	struct lcr_msg t;
	memset(&t, 0, sizeof(t));
	t.type = LCR_MSG_TRANSFER_LEADER;
	t.from = SELF;
	t.to = 2;
	t.transfer.from_leader = (struct lcr_vote){ { 4, SELF }, true };
	t.transfer.to = 3;
	lcr_net_send(ng, &t, now);
	assert_int_equal(F.n_calls, 0);
	assert_int_equal(H.n_failed, 0); /* reported from the loop, not from inside the send */
	lcr_net_poll(net, now);
	assert_int_equal(H.n_failed, 1);
	assert_int_equal(H.failed[0].call.op, LCR_NET_OP_TRANSFER);
	assert_int_equal(H.failed[0].call.target, 2);
	assert_int_equal(H.failed[0].err, LCR_NET_UNREACHABLE);
	assert_string_equal(H.failed[0].why, "transfer_leader not implemented");

	/* It says nothing about the target: its pre-vote is still granted. */
	pre_vote_to(2);
	assert_true(granted_by(2));
	struct lcr_net_stats st;
	lcr_net_stats(net, &st);
	assert_int_equal(st.defaults[LCR_NET_OP_TRANSFER], 1);
	close_net();
}

/* ---- (4) backoff left out: the configured one ------------------------------------------ */

/*
 * A leader whose follower fails every replication request: the gaps between
 * them, in ms. `step_ms` > 0 gives the transport a backoff of its own.
 * Heartbeats go on meanwhile, every heartbeat interval (openraft's heartbeat
 * workers are apart from replication and its backoff): they are not counted,
 * and the follower never answers them.
 */
static void backoff_gaps(uint64_t *gaps, uint32_t n, uint64_t step_ms)
{
	fake_init_required();
	if (step_ms) {
		F.ops.backoff = fake_backoff;
		F.backoff_step_ms = step_ms;
	}
	/* Two voters: 2 grants the vote, then never answers an append. A leader
	 * that hears from no quorum for its lease steps down (CheckQuorum): the
	 * lease, an election timeout, outlasts the backoffs measured here. */
	mini_election_ms = 10000;
	mini_open(2, false);
	mini_election_ms = 0;
	trigger_elect(false);
	const struct call_rec *v = last_call(LCR_NET_OP_VOTE, 2);
	assert_non_null(v);
	struct lcr_msg grant;
	memset(&grant, 0, sizeof(grant));
	grant.type = LCR_MSG_VOTE_RESP;
	grant.from = 2;
	grant.to = SELF;
	grant.vote_resp.vote = v->msg.vote_req.vote;
	grant.vote_resp.req_vote = v->msg.vote_req.vote;
	grant.vote_resp.granted = true;
	lcr_net_reply(net, GROUP, &grant);
	assert_int_equal(M.role, LCR_ROLE_LEADER);

	uint32_t heartbeats = calls_of(LCR_NET_OP_APPEND, 2) - replications_of(2);
	for (uint32_t i = 0; i < n; i++) {
		const struct call_rec *a = last_replication(2);
		assert_non_null(a);
		uint32_t before = replications_of(2);
		uint64_t at = now;
		lcr_net_fail(net, &a->call, LCR_NET_UNREACHABLE, "test");
		while (replications_of(2) == before && now < at + 5000 * MS)
			mini_ms();
		gaps[i] = (now - at) / MS;
	}
	/* Heartbeats are queued behind the unanswered request by the
	 * sequential default (one AppendEntries in flight), so few reach it. */
	(void)heartbeats;
	/* The replication failures, and heartbeats that timed out meanwhile. */
	assert_true(M.net_errors >= n);
	mini_close();
}

static void test_net_backoff_default_and_transport_override(void **state)
{
	(void)state;
	fake_init_required();
	open_net(&rec_host, NULL);
	assert_false(lcr_net_has_backoff(net));
	static const uint64_t want[] = { 200, 400, 800, 1000, 1000, 1000 };
	for (uint32_t s = 0; s < 6; s++)
		assert_true(lcr_net_backoff_ns(ng, 2, s) == want[s] * MS);
	close_net();

	/* The core honours them: a leader whose follower fails every append. */
	uint64_t gaps[5] = { 0 };
	backoff_gaps(gaps, 5, 0);
	print_message("default backoff gaps: %llu %llu %llu %llu %llu ms\n",
		      (unsigned long long)gaps[0], (unsigned long long)gaps[1],
		      (unsigned long long)gaps[2], (unsigned long long)gaps[3],
		      (unsigned long long)gaps[4]);
	/* The backoff, then at most a heartbeat's TTL (50 ms): the sequential
	 * default has one AppendEntries in flight, and a heartbeat may hold it
	 * when the backoff ends (heartbeats go on through backoffs). */
	for (uint32_t i = 0; i < 5; i++) {
		assert_true(gaps[i] >= want[i]);
		assert_true(gaps[i] <= want[i] + 51);
	}

	/* A transport's own backoff replaces it: 30, 60, 90 ... ms. */
	backoff_gaps(gaps, 5, 30);
	print_message("transport backoff gaps: %llu %llu %llu %llu %llu ms\n",
		      (unsigned long long)gaps[0], (unsigned long long)gaps[1],
		      (unsigned long long)gaps[2], (unsigned long long)gaps[3],
		      (unsigned long long)gaps[4]);
	for (uint32_t i = 0; i < 5; i++) {
		assert_true(gaps[i] >= 30 * (i + 1));
		assert_true(gaps[i] <= 30 * (i + 1) + 51);
	}
}

/* ---- (5) a required op missing ----------------------------------------------------------- */

static void test_net_missing_required_op_refused(void **state)
{
	(void)state;
	static const char *names[] = { "append_entries", "vote", "respond", "poll" };
	struct lcr_core_config core;
	struct lcr_net_config nc;
	struct lcr_net_env env;
	char why[256];

	lcr_core_config_default(&core, SELF);
	lcr_net_config_default(&nc, SELF, core.heartbeat_interval_ms, core.election_timeout_min_ms,
			       core.inflight_max, core.backoff_ms);
	memset(&env, 0, sizeof(env));
	env.self = SELF;
	for (uint32_t i = 0; i < 4; i++) {
		fake_init_required();
		if (i == 0)
			F.ops.append_entries = NULL;
		if (i == 1)
			F.ops.vote = NULL;
		if (i == 2)
			F.ops.respond = NULL;
		if (i == 3)
			F.ops.poll = NULL;
		why[0] = 0;
		struct lcr_net *x = NULL;
		int rc = lcr_net_open(&x, &fake_factory, &env, &nc, &rec_host, why, sizeof(why));
		print_message("%s missing: %s\n", names[i], why);
		assert_int_equal(rc, -EINVAL);
		assert_null(x);
		assert_non_null(strstr(why, names[i]));
		assert_non_null(strstr(why, "is required"));
		assert_non_null(strstr(why, "\"fake\""));
	}
	/* full_snapshot is in the table but nothing calls it yet: optional for now. */
	fake_init_required();
	struct lcr_net *x = NULL;
	assert_int_equal(lcr_net_open(&x, &fake_factory, &env, &nc, &rec_host, why, sizeof(why)),
			 0);
	lcr_net_close(x);
}

/* ---- (4) read_index left out: an UNSUPPORTED answer; with it, the op and its reply ------ */

static struct lcr_msg read_index_req(uint32_t to, uint64_t read_id)
{
	struct lcr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_READ_INDEX_REQ;
	m.from = SELF;
	m.to = to;
	m.read_index_req.vote = (struct lcr_vote){ { 4, to }, true };
	m.read_index_req.read_id = read_id;
	return m;
}

static void test_net_read_index_default_unsupported(void **state)
{
	(void)state;
	fake_init_required();
	open_net(&rec_host, NULL);

	struct lcr_msg q = read_index_req(2, 77);
	lcr_net_send(ng, &q, now);
	assert_int_equal(F.n_calls, 0);
	assert_int_equal(H.n_delivered, 0); /* answered from the loop, not from the send */
	lcr_net_poll(net, now);
	assert_int_equal(H.n_delivered, 1);
	const struct lcr_msg *r = &H.delivered[0];
	assert_int_equal(r->type, LCR_MSG_READ_INDEX_RESP);
	assert_int_equal(r->from, 2);
	assert_int_equal(r->to, SELF);
	assert_int_equal(r->read_index_resp.result, LCR_READ_INDEX_UNSUPPORTED);
	assert_int_equal(r->read_index_resp.read_id, 77);
	assert_true(lcr_log_id_is_none(r->read_index_resp.read_log_id));
	assert_int_equal(H.n_failed, 0);
	struct lcr_net_stats st;
	lcr_net_stats(net, &st);
	assert_int_equal(st.defaults[LCR_NET_OP_READ_INDEX], 1);
	close_net();

	/* With the op: the request goes to it, the leader's answer to the host. */
	fake_init_required();
	F.ops.read_index = fake_native;
	open_net(&rec_host, NULL);
	lcr_net_send(ng, &q, now);
	assert_int_equal(calls_of(LCR_NET_OP_READ_INDEX, 2), 1);
	assert_int_equal(last_call(LCR_NET_OP_READ_INDEX, 2)->msg.read_index_req.read_id, 77);
	struct lcr_msg a;
	memset(&a, 0, sizeof(a));
	a.type = LCR_MSG_READ_INDEX_RESP;
	a.from = 2;
	a.to = SELF;
	a.read_index_resp.result = LCR_READ_INDEX_OK;
	a.read_index_resp.read_id = 77;
	lcr_net_reply(net, GROUP, &a);
	assert_int_equal(H.n_delivered, 1);
	assert_int_equal(H.delivered[0].read_index_resp.result, LCR_READ_INDEX_OK);
	/* A peer's request reaches the host; the core's answer goes out by respond. */
	struct lcr_msg in = read_index_req(SELF, 5);
	in.from = 3;
	lcr_net_deliver(net, GROUP, &in);
	assert_int_equal(H.n_delivered, 2);
	a.from = SELF;
	a.to = 3;
	lcr_net_send(ng, &a, now);
	assert_int_equal(F.responds, 1);
	close_net();
}

/* ---- a full transport: its own ops, no defaults -------------------------------------------- */

static void test_net_full_transport_native_ops_used(void **state)
{
	(void)state;
	fake_init_required();
	F.ops.stream_append = fake_native;
	F.ops.pre_vote = fake_native;
	F.ops.transfer_leader = fake_native;
	F.ops.backoff = fake_backoff;
	F.backoff_step_ms = 7;
	open_net(&rec_host, NULL);

	/* Pipelined: three requests go out at once, none through append_entries. */
	for (uint32_t i = 0; i < 3; i++) {
		struct lcr_msg m = append_req(2, 50, i + 1, i + 1, 2 * i, 2);
		lcr_net_send(ng, &m, now);
	}
	assert_int_equal(calls_of(LCR_NET_OP_STREAM_APPEND, 2), 3);
	assert_int_equal(calls_of(LCR_NET_OP_APPEND, 2), 0);
	assert_true(last_call(LCR_NET_OP_STREAM_APPEND, 2)->entries_attached);
	assert_int_equal(last_call(LCR_NET_OP_STREAM_APPEND, 2)->first_index, 5);
	/* Its replies go to the core as they come. */
	struct lcr_msg ok = append_resp(2, &F.calls[0].msg, LCR_APPEND_OK);
	lcr_net_reply(net, GROUP, &ok);
	assert_int_equal(H.n_delivered, 1);

	struct lcr_msg pv = vote_req(3, 6, true);
	lcr_net_send(ng, &pv, now);
	assert_int_equal(calls_of(LCR_NET_OP_PRE_VOTE, 3), 1);
	assert_true(last_call(LCR_NET_OP_PRE_VOTE, 3)->msg.vote_req.pre_vote);

	struct lcr_msg t;
	memset(&t, 0, sizeof(t));
	t.type = LCR_MSG_TRANSFER_LEADER;
	t.from = SELF;
	t.to = 3;
	lcr_net_send(ng, &t, now);
	assert_int_equal(calls_of(LCR_NET_OP_TRANSFER, 3), 1);

	/* Nothing synthesized comes out of the loop. */
	lcr_net_poll(net, now);
	assert_int_equal(H.n_delivered, 1);
	assert_int_equal(H.n_failed, 0);

	assert_true(lcr_net_has_backoff(net));
	for (uint32_t s = 0; s < 4; s++)
		assert_true(lcr_net_backoff_ns(ng, 2, s) == (s + 1) * 7 * MS);

	/* The core's replies go back through respond. */
	struct lcr_msg resp = append_resp(SELF, &F.calls[0].msg, LCR_APPEND_OK);
	resp.from = SELF;
	resp.to = 2;
	lcr_net_send(ng, &resp, now);
	assert_int_equal(F.responds, 1);

	struct lcr_net_stats st;
	lcr_net_stats(net, &st);
	for (uint32_t op = 1; op < LCR_NET_OP_MAX; op++)
		assert_int_equal(st.defaults[op], 0);
	assert_int_equal(st.calls[LCR_NET_OP_STREAM_APPEND], 3);
	assert_int_equal(st.calls[LCR_NET_OP_PRE_VOTE], 1);
	assert_int_equal(st.calls[LCR_NET_OP_TRANSFER], 1);
	assert_int_equal(st.responds, 1);
	close_net();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_sequential_one_in_flight_next_after_reply),
		cmocka_unit_test(test_net_sequential_conflict_ttl_and_errors_inside_ops),
		cmocka_unit_test(test_net_pre_vote_default_grants),
		cmocka_unit_test(test_net_pre_vote_failing_target_is_an_error),
		cmocka_unit_test(test_net_isolated_candidate_wins_no_pre_vote_quorum),
		cmocka_unit_test(test_net_transfer_leader_default_unreachable),
		cmocka_unit_test(test_net_read_index_default_unsupported),
		cmocka_unit_test(test_net_backoff_default_and_transport_override),
		cmocka_unit_test(test_net_missing_required_op_refused),
		cmocka_unit_test(test_net_full_transport_native_ops_used),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
