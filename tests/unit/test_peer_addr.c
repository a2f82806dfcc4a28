/* Node addresses as text (net.h lcr_peer_addr_parse, lcr_peer_addr_format): round trips and
 * every malformed form refused with a sentence; net.c's side of set_peer and forget_peer with
 * a transport that has them and one that has not. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_host.h"

/* ---- parse and format ------------------------------------------------------------ */

static void round_trip(const char *text, const char *host, uint16_t port)
{
	struct lcr_peer_addr a, b;
	char why[256] = "", buf[LCR_PEER_ADDR_TEXT_MAX];

	if (lcr_peer_addr_parse(text, 7, &a, why, sizeof(why)) != 0)
		fail_msg("\"%s\" refused: %s", text, why);
	assert_int_equal(a.id, 7);
	assert_string_equal(a.host, host);
	assert_int_equal(a.port, port);
	int n = lcr_peer_addr_format(&a, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(buf));
	assert_int_equal(lcr_peer_addr_parse(buf, 7, &b, why, sizeof(why)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
}

static void test_peer_addr_round_trip(void **state)
{
	(void)state;
	round_trip("127.0.0.1:7001", "127.0.0.1", 7001);
	round_trip("10.1.2.3:1", "10.1.2.3", 1);
	round_trip("node-3.example.org:65535", "node-3.example.org", 65535);
	round_trip("db_1:80", "db_1", 80);
	round_trip("[::1]:7001", "::1", 7001);
	round_trip("[fe80::1%eth0]:7001", "fe80::1%eth0", 7001);
	round_trip("[2001:db8::ffff:1.2.3.4]:9", "2001:db8::ffff:1.2.3.4", 9);
	/* The formatter's own text, for the longest host there is. */
	char host[64];
	memset(host, 'h', 63);
	host[63] = 0;
	char text[LCR_PEER_ADDR_TEXT_MAX];
	snprintf(text, sizeof(text), "%s:65535", host);
	round_trip(text, host, 65535);
	/* Leading zeros are read; the formatter writes none. */
	struct lcr_peer_addr a;
	char why[256], buf[LCR_PEER_ADDR_TEXT_MAX];
	assert_int_equal(lcr_peer_addr_parse("h:007001", 1, &a, why, sizeof(why)), 0);
	assert_int_equal(a.port, 7001);
	lcr_peer_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "h:7001");
}

static void test_peer_addr_format_bounds(void **state)
{
	(void)state;
	struct lcr_peer_addr a = { .id = 1, .host = "::1", .port = 7001 };
	char buf[LCR_PEER_ADDR_TEXT_MAX];

	assert_int_equal(lcr_peer_addr_format(&a, buf, sizeof(buf)), 10);
	assert_string_equal(buf, "[::1]:7001");
	assert_int_equal(lcr_peer_addr_format(&a, buf, 10), -ENOSPC);
	assert_string_equal(buf, "[::1]:700"); /* cut, terminated */
	assert_int_equal(lcr_peer_addr_format(&a, buf, 11), 10);
	/* The longest IPv6 host in brackets still fits LCR_PEER_ADDR_TEXT_MAX. */
	memset(a.host, ':', 63);
	a.host[63] = 0;
	a.port = 65535;
	assert_int_equal(lcr_peer_addr_format(&a, buf, sizeof(buf)), LCR_PEER_ADDR_TEXT_MAX - 1);
}

/* `text` refused with -EINVAL, a sentence naming the node, *out untouched. */
static void refused(const char *text, const char *says)
{
	struct lcr_peer_addr a, before;
	char why[256] = "";

	memset(&a, 0x5a, sizeof(a));
	before = a;
	int rc = lcr_peer_addr_parse(text, 4, &a, why, sizeof(why));
	if (rc != -EINVAL)
		fail_msg("\"%s\": %d, not -EINVAL", text ? text : "(null)", rc);
	print_message("%-28s %s\n", text ? text : "(null)", why);
	assert_non_null(strstr(why, "node 4"));
	if (!strstr(why, says))
		fail_msg("\"%s\": \"%s\" does not say \"%s\"", text ? text : "(null)", why, says);
	assert_memory_equal(&a, &before, sizeof(a));
}

static void test_peer_addr_malformed_refused(void **state)
{
	(void)state;
	refused(NULL, "empty");
	refused("", "empty");
	refused("127.0.0.1", "no port");
	refused("127.0.0.1:", "no port");
	refused("127.0.0.1:0", "1..65535");
	refused("127.0.0.1:65536", "1..65535");
	refused("127.0.0.1:99999999999999999999", "1..65535");
	refused("127.0.0.1:-1", "1..65535");
	refused("127.0.0.1:+7001", "1..65535");
	refused("127.0.0.1:70 01", "1..65535");
	refused("127.0.0.1:7001x", "1..65535");
	refused(":7001", "no host");
	refused("[]:7001", "no host");
	refused("[::1:7001", "never closes");
	refused("[::1", "never closes");
	refused("[::1]", "no port");
	refused("[::1]7001", "after its ']'");
	refused("[::1]:", "no port");
	refused("[127.0.0.1]:7001", "IPv6");
	refused("[not-v6]:7001", "IPv6");
	refused("[::1%]:7001", "IPv6");
	refused("::1:7001", "brackets");
	refused("fe80::1%eth0:7001", "brackets");
	refused("a b:7001", "character");
	refused("host/x:7001", "character");
	refused("h\x01st:7001", "character");
	refused("]:7001", "character");
	refused("@#$%:1", "character");
	/* Too long: the host past 63 bytes, the text past the bound. */
	char text[256];
	memset(text, 'h', 64);
	snprintf(text + 64, sizeof(text) - 64, ":7001");
	refused(text, "at most 63");
	memset(text, 'h', 200);
	snprintf(text + 200, sizeof(text) - 200, ":7001");
	refused(text, "longer than");
}

/* ---- net.c's side, with a fake transport ----------------------------------------- */

struct fake {
	struct lcr_transport base;
	struct lcr_peer_addr set[4];
	uint32_t n_set, forgot[4], n_forgot;
};

static struct fake F;

static void fake_msg(struct lcr_transport *t, const struct lcr_net_call *c, const struct lcr_msg *m,
		     const struct lcr_net_opts *o)
{
	(void)t, (void)c, (void)m, (void)o;
}

static void fake_respond(struct lcr_transport *t, uint32_t group, const struct lcr_msg *m)
{
	(void)t, (void)group, (void)m;
}

static bool fake_poll(struct lcr_transport *t, uint64_t now_ns)
{
	(void)t, (void)now_ns;
	return false;
}

static int fake_set_peer(struct lcr_transport *t, const struct lcr_peer_addr *p, char *why,
			 size_t why_len)
{
	struct fake *f = (struct fake *)t;
	(void)why, (void)why_len;
	assert_true(f->n_set < 4);
	f->set[f->n_set++] = *p;
	return 0;
}

static int fake_forget_peer(struct lcr_transport *t, uint32_t id)
{
	struct fake *f = (struct fake *)t;
	assert_true(f->n_forgot < 4);
	f->forgot[f->n_forgot++] = id;
	return 0;
}

static struct lcr_net_ops fake_ops;

static int fake_open(void *ctx, const struct lcr_net_env *env, struct lcr_transport **out,
		     char *why, size_t why_len)
{
	(void)ctx, (void)env, (void)why, (void)why_len;
	memset(&F, 0, sizeof(F));
	F.base.ops = &fake_ops;
	*out = &F.base;
	return 0;
}

static void h_deliver(void *g, const struct lcr_msg *m)
{
	(void)g, (void)m;
}

static void h_failed(void *g, const struct lcr_net_call *c, uint32_t err, const char *why)
{
	(void)g, (void)c, (void)err, (void)why;
}

static void h_attach(void *g, struct lcr_msg *m)
{
	(void)g, (void)m;
}

static const struct lcr_net_host host = { .deliver = h_deliver,
					  .failed = h_failed,
					  .attach = h_attach };

static int open_fake(struct lcr_net **net, char *why, size_t why_len)
{
	static const struct lcr_peer_addr peers[] = { { .id = 1, .host = "127.0.0.1", .port = 1 } };
	struct lcr_net_factory f = { .name = "fake-factory", .open = fake_open };
	struct lcr_net_env env = { .self = 1, .n_lcores = 1, .n_peers = 1, .peers = peers };
	struct lcr_net_config c;

	lcr_net_config_default(&c, 1, 50, 150, 8, 100);
	return lcr_net_open(net, &f, &env, &c, &host, why, why_len);
}

static void base_ops(void)
{
	memset(&fake_ops, 0, sizeof(fake_ops));
	fake_ops.name = "fake";
	fake_ops.append_entries = fake_msg;
	fake_ops.vote = fake_msg;
	fake_ops.respond = fake_respond;
	fake_ops.poll = fake_poll;
}

static void test_net_set_peer_without_op_not_supported(void **state)
{
	(void)state;
	struct lcr_net *net;
	char why[256] = "";
	struct lcr_peer_addr a = { .id = 3, .host = "10.0.0.3", .port = 7001 };

	base_ops();
	assert_int_equal(open_fake(&net, why, sizeof(why)), 0);
	assert_false(lcr_net_can_learn_peers(net));
	assert_int_equal(lcr_net_set_peer(net, &a, why, sizeof(why)), -ENOTSUP);
	print_message("%s\n", why);
	assert_non_null(strstr(why, "\"fake\""));
	assert_non_null(strstr(why, "node 3"));
	assert_int_equal(lcr_net_forget_peer(net, 3), -ENOTSUP);
	lcr_net_close(net);

	/* One without the other is refused at open. */
	fake_ops.set_peer = fake_set_peer;
	assert_int_equal(open_fake(&net, why, sizeof(why)), -EINVAL);
	print_message("%s\n", why);
	assert_non_null(strstr(why, "set_peer and forget_peer"));
	fake_ops.set_peer = NULL;
	fake_ops.forget_peer = fake_forget_peer;
	assert_int_equal(open_fake(&net, why, sizeof(why)), -EINVAL);
}

static void test_net_set_peer_checked_and_passed_on(void **state)
{
	(void)state;
	struct lcr_net *net;
	char why[256] = "";

	base_ops();
	fake_ops.set_peer = fake_set_peer;
	fake_ops.forget_peer = fake_forget_peer;
	assert_int_equal(open_fake(&net, why, sizeof(why)), 0);
	assert_true(lcr_net_can_learn_peers(net));

	struct lcr_peer_addr a;
	assert_int_equal(lcr_peer_addr_parse("[::1]:7003", 3, &a, why, sizeof(why)), 0);
	assert_int_equal(lcr_net_set_peer(net, &a, why, sizeof(why)), 0);
	assert_int_equal(F.n_set, 1);
	assert_memory_equal(&F.set[0], &a, sizeof(a));
	assert_int_equal(lcr_net_forget_peer(net, 3), 0);
	assert_int_equal(F.n_forgot, 1);
	assert_int_equal(F.forgot[0], 3);

	/* What no transport can use never reaches it. */
	struct lcr_peer_addr bad[] = {
		{ .id = 0, .host = "10.0.0.1", .port = 1 }, /* node 0 */
		{ .id = 1, .host = "10.0.0.1", .port = 1 }, /* this node */
		{ .id = 3, .host = "", .port = 1 },	    /* no host */
		{ .id = 3, .host = "10.0.0.1", .port = 0 }, /* no port */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = 0;
		assert_int_equal(lcr_net_set_peer(net, &bad[i], why, sizeof(why)), -EINVAL);
		print_message("%s\n", why);
		assert_true(why[0] != 0);
	}
	struct lcr_peer_addr unterminated = { .id = 3, .port = 1 };
	memset(unterminated.host, 'x', sizeof(unterminated.host));
	assert_int_equal(lcr_net_set_peer(net, &unterminated, why, sizeof(why)), -EINVAL);
	assert_int_equal(lcr_net_forget_peer(net, 0), -EINVAL);
	assert_int_equal(lcr_net_forget_peer(net, 1), -EINVAL);
	assert_int_equal(F.n_set, 1);
	assert_int_equal(F.n_forgot, 1);
	lcr_net_close(net);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_addr_round_trip),
		cmocka_unit_test(test_peer_addr_format_bounds),
		cmocka_unit_test(test_peer_addr_malformed_refused),
		cmocka_unit_test(test_net_set_peer_without_op_not_supported),
		cmocka_unit_test(test_net_set_peer_checked_and_passed_on),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
