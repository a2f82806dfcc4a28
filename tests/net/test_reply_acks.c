/* Acknowledgements in answers (docs/wire-protocol.md), two UDP transports on loopback: the ack
 * of a short AppendEntries rides in the header of its answer when the leader's hello offered
 * it, goes as a STREAM_ACK beside the answer when it did not, and goes alone when no answer
 * comes; nothing is sent twice. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net_host.h"
#include "net_test.h"
#include "udp.h"

#define GROUP	9
#define CLUSTER 97
#define MS	1000000ull
#define N	200 /* AppendEntries per test */

struct inst {
	uint32_t id;
	struct lcr_net *net;
	struct lcr_net_group *g;
	struct lcr_udp_config udp;
	struct lcr_net_factory f;
	struct lcr_peer_addr peers[2];
	bool silent;	  /* takes AppendEntries without answering them */
	uint32_t appends; /* AppendEntries delivered */
	uint32_t answers; /* APPEND_RESP delivered */
};

static struct inst I[2];
static uint16_t base_port;

static void h_deliver(void *group, const struct lcr_msg *m)
{
	struct inst *n = group;
	if (m->type == LCR_MSG_APPEND_RESP) {
		n->answers++;
		return;
	}
	assert_int_equal(m->type, LCR_MSG_APPEND_REQ);
	n->appends++;
	if (n->silent)
		return;
	nt_answer_append(n->g, n->id, m);
}

static void h_failed(void *group, const struct lcr_net_call *c, uint32_t err, const char *why)
{
	(void)group, (void)c, (void)err, (void)why;
}

static void h_attach(void *group, struct lcr_msg *m)
{
	static const uint8_t data[64];
	static struct lcr_entry ents[4];
	(void)group;
	nt_attach(m, ents, 4, sizeof(data), data);
}

static const struct lcr_net_host host = {
	.deliver = h_deliver,
	.failed = h_failed,
	.attach = h_attach,
};

/* Slot k as node id (1 or 2), the other its only peer; `no_reply_acks` as an older node. */
static struct inst *open_inst(uint32_t k, uint32_t id, bool no_reply_acks)
{
	struct inst *x = &I[k];
	struct lcr_net_config c;
	char why[256] = "";
	const uint32_t target = id == 1 ? 2 : 1;

	memset(x, 0, sizeof(*x));
	x->id = id;
	for (uint32_t i = 0; i < 2; i++) {
		x->peers[i] = (struct lcr_peer_addr){ .id = i + 1, .port = base_port + i };
		snprintf(x->peers[i].host, sizeof(x->peers[i].host), "127.0.0.1");
	}
	lcr_udp_config_default(&x->udp);
	x->udp.bind_host = "127.0.0.1";
	x->udp.no_reply_acks = no_reply_acks;
	lcr_udp_factory(&x->f, &x->udp);
	lcr_net_config_default(&c, id, 50, 150, 64, 200);
	struct lcr_net_env env = { .self = id,
				   .cluster = CLUSTER,
				   .lcore = 0,
				   .n_lcores = 1,
				   .n_peers = 2,
				   .peers = x->peers };
	if (lcr_net_open(&x->net, &x->f, &env, &c, &host, why, sizeof(why)) < 0)
		fail_msg("node %u: %s", id, why);
	if (lcr_net_group_open(x->net, GROUP, x, &target, 1, &x->g, why, sizeof(why)) < 0)
		fail_msg("node %u: group: %s", id, why);
	return x;
}

static void close_all(void)
{
	for (uint32_t k = 0; k < 2; k++) {
		lcr_net_close(I[k].net);
		I[k].net = NULL;
	}
}

static int teardown(void **state)
{
	(void)state;
	close_all();
	return 0;
}

static void step(void)
{
	uint64_t t = nt_now_ns();
	for (uint32_t k = 0; k < 2; k++) {
		if (!I[k].net)
			continue;
		lcr_net_poll(I[k].net, t);
		lcr_net_tick(I[k].net, t);
		lcr_net_flush(I[k].net, t);
	}
}

static void run_for(uint64_t ns)
{
	uint64_t end = nt_now_ns() + ns;
	while (nt_now_ns() < end) {
		step();
		usleep(50);
	}
}

/* Run until *count reaches want, at most 2 s. */
static bool run_until(const uint32_t *count, uint32_t want)
{
	uint64_t end = nt_now_ns() + 2000 * MS;
	while (nt_now_ns() < end) {
		step();
		if (*count >= want)
			return true;
		usleep(20);
	}
	return false;
}

/* An AppendEntries of one 64-byte entry after `prev` from node 1 to node 2. */
static void append(struct inst *x, uint64_t prev)
{
	nt_append(x->g, x->id, 2, prev, 1);
}

static uint64_t metric(const struct inst *x, const char *key)
{
	return nt_metric(x->net, key);
}

/* A counter of node 1's link to node 2 (the stream it sends). */
static uint64_t link_metric(const struct inst *x, const char *key)
{
	static char buf[4096];
	char pat[64];
	assert_true(lcr_net_client_metrics_json(x->g, 2, buf, sizeof(buf)) > 0);
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(buf, pat);
	assert_non_null(p);
	return strtoull(p + strlen(pat), NULL, 10);
}

/* N AppendEntries one at a time, each answered before the next. */
static void exchange(struct inst *l, struct inst *f)
{
	for (uint32_t i = 0; i < N; i++) {
		append(l, i);
		assert_true(run_until(&l->answers, i + 1));
	}
	run_for(2 * MS);
	assert_int_equal(f->appends, N);
	assert_int_equal(link_metric(l, "in_flight"), 0);
	assert_int_equal(link_metric(l, "retransmits"), 0);
}

/* Node 2 started after node 1 said hello: it learns of the offer from the answer to its own. */
static void test_acks_ride_in_answers(void **state)
{
	(void)state;
	struct inst *l = open_inst(0, 1, false);
	run_for(5 * MS); /* node 1's hello goes to no one */
	struct inst *f = open_inst(1, 2, false);
	run_for(10 * MS);
	exchange(l, f);
	/* At most the stream's first ack (a new stream is acked at once) went alone. */
	assert_true(metric(f, "acks_in_answers") >= N - 1);
	assert_true(metric(f, "acks_sent") <= 1);
	assert_true(metric(l, "acks_from_answers") >= N - 1);
	/* One datagram back per AppendEntries, a hello or two besides. */
	assert_true(metric(f, "tx_dgrams") <= N + 3);
}

/* A leader that does not read acks in answers (an older node): STREAM_ACKs, as before. */
static void test_acks_apart_for_an_older_leader(void **state)
{
	(void)state;
	struct inst *l = open_inst(0, 1, true);
	struct inst *f = open_inst(1, 2, false);
	run_for(10 * MS);
	exchange(l, f);
	assert_int_equal(metric(f, "acks_in_answers"), 0);
	assert_true(metric(f, "acks_sent") >= N);
	assert_int_equal(metric(l, "acks_from_answers"), 0);
}

/* No answer: the held ack goes alone after its hold, before the sender's timer runs out. */
static void test_held_ack_goes_without_answer(void **state)
{
	(void)state;
	struct inst *l = open_inst(0, 1, false);
	struct inst *f = open_inst(1, 2, false);
	run_for(10 * MS);
	f->silent = true;
	for (uint32_t i = 0; i < 20; i++) {
		append(l, i);
		assert_true(run_until(&f->appends, i + 1));
		uint64_t t0 = nt_now_ns();
		while (link_metric(l, "in_flight") != 0 && nt_now_ns() - t0 < 1500 * 1000)
			step();
		assert_int_equal(link_metric(l, "in_flight"), 0);
	}
	assert_int_equal(link_metric(l, "retransmits"), 0);
	assert_int_equal(metric(f, "acks_in_answers"), 0);
	assert_true(metric(f, "acks_sent") >= 20);
}

int main(void)
{
	base_port = (uint16_t)(25000 + (getpid() % 4000) * 4);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_acks_ride_in_answers, teardown),
		cmocka_unit_test_teardown(test_acks_apart_for_an_older_leader, teardown),
		cmocka_unit_test_teardown(test_held_ack_goes_without_answer, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
