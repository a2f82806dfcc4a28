/* Unit tests for the linearizability checker (tests/sim/linz.c), with a brute-force cross-check. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "linz.h"

#define P LCR_LINZ_PENDING

/* Ops in one line each: client, key, values, invoke and complete times. */
static struct lcr_linz_op wr(uint32_t c, uint64_t key, uint64_t v, uint64_t inv, uint64_t cmp)
{
	struct lcr_linz_op o = { .kind = LCR_LINZ_WRITE, .client = c, .key = key, .value = v };

	o.invoke_ns = inv;
	o.complete_ns = cmp;
	return o;
}

static struct lcr_linz_op rd(uint32_t c, uint64_t key, uint64_t v, uint64_t inv, uint64_t cmp)
{
	struct lcr_linz_op o = wr(c, key, v, inv, cmp);

	o.kind = LCR_LINZ_READ;
	return o;
}

static struct lcr_linz_op cas(uint32_t c, uint64_t key, uint64_t exp, uint64_t v, bool ok,
			      uint64_t inv, uint64_t cmp)
{
	struct lcr_linz_op o = wr(c, key, v, inv, cmp);

	o.kind = LCR_LINZ_CAS;
	o.expect = exp;
	o.cas_ok = ok;
	return o;
}

/* Runs the checker with no state limit and returns res.ok. */
static bool check(const struct lcr_linz_op *ops, size_t n, struct lcr_linz_result *res)
{
	assert_int_equal(lcr_linz_check(ops, n, 0, res), 0);
	assert_false(res->gave_up);
	if (res->ok)
		assert_string_equal(res->why, "");
	else
		assert_true(strlen(res->why) > 0);
	return res->ok;
}

#define CHECK(ops, res) check((ops), sizeof(ops) / sizeof((ops)[0]), (res))

static void test_empty(void **state)
{
	struct lcr_linz_result res;

	(void)state;
	memset(&res, 0xff, sizeof(res));
	assert_int_equal(lcr_linz_check(NULL, 0, 0, &res), 0);
	assert_true(res.ok);
	assert_false(res.gave_up);
	assert_int_equal(res.states, 0);
	assert_string_equal(res.why, "");
}

static void test_invalid(void **state)
{
	struct lcr_linz_op bad_kind[] = { wr(1, 1, 1, 0, 1) };
	struct lcr_linz_op backwards[] = { wr(1, 1, 1, 10, 5) };
	struct lcr_linz_result res;

	(void)state;
	bad_kind[0].kind = 7;
	assert_int_equal(lcr_linz_check(bad_kind, 1, 0, &res), -EINVAL);
	assert_int_equal(lcr_linz_check(backwards, 1, 0, &res), -EINVAL);
	assert_int_equal(lcr_linz_check(NULL, 1, 0, &res), -EINVAL);
	assert_int_equal(lcr_linz_check(backwards, 0, 0, NULL), -EINVAL);
}

static void test_sequential_ok(void **state)
{
	struct lcr_linz_op ops[] = {
		rd(1, 1, 0, 0, 1),   wr(1, 1, 5, 2, 3),	  rd(2, 1, 5, 4, 5),
		wr(2, 1, 6, 6, 7),   rd(1, 1, 6, 8, 9),	  cas(1, 1, 6, 7, true, 10, 11),
		rd(2, 1, 7, 12, 13), wr(1, 1, 0, 14, 15), rd(2, 1, 0, 16, 17),
	};
	struct lcr_linz_result res;

	(void)state;
	assert_true(CHECK(ops, &res));
	assert_int_equal(res.states, 9);
}

static void test_stale_read_fails(void **state)
{
	struct lcr_linz_op ops[] = {
		wr(1, 1, 5, 0, 10), wr(1, 1, 6, 20, 30),
		rd(2, 1, 5, 40, 50), /* 6 was written before the read started */
	};
	struct lcr_linz_result res;

	(void)state;
	assert_false(CHECK(ops, &res));
	assert_int_equal(res.key, 1);
	assert_non_null(strstr(res.why, "#2 c2 R()=5 [40,50]"));
}

static void test_concurrent_write_read(void **state)
{
	struct lcr_linz_op old[] = { wr(1, 1, 5, 10, 20), rd(2, 1, 0, 15, 25) };
	struct lcr_linz_op new[] = { wr(1, 1, 5, 10, 20), rd(2, 1, 5, 15, 25) };
	/* Equal endpoints count as concurrent. */
	struct lcr_linz_op touch[] = { wr(1, 1, 5, 10, 20), rd(2, 1, 0, 20, 25) };
	struct lcr_linz_op after[] = { wr(1, 1, 5, 10, 20), rd(2, 1, 0, 21, 25) };
	struct lcr_linz_result res;

	(void)state;
	assert_true(CHECK(old, &res));
	assert_true(CHECK(new, &res));
	assert_true(CHECK(touch, &res));
	assert_false(CHECK(after, &res));
}

static void test_pending_write_observed(void **state)
{
	struct lcr_linz_op ops[] = {
		wr(1, 1, 5, 0, 10),
		wr(2, 1, 6, 20, P),
		rd(3, 1, 6, 1000, 1010),
		rd(1, 1, 6, 2000, 2010),
	};
	/* The pending write cannot take effect before it was sent. */
	struct lcr_linz_op early[] = { wr(2, 1, 6, 20, P), rd(3, 1, 6, 0, 10) };
	struct lcr_linz_result res;

	(void)state;
	assert_true(CHECK(ops, &res));
	assert_false(CHECK(early, &res));
}

static void test_pending_write_unobserved(void **state)
{
	struct lcr_linz_op ops[] = {
		wr(1, 1, 5, 0, 10),  wr(2, 1, 6, 5, P),	 rd(3, 1, 5, 20, 30), wr(2, 1, 7, 40, P),
		rd(1, 1, 5, 50, 60), rd(3, 1, 0, 55, P), /* unknown read: ignored */
	};
	struct lcr_linz_result res;

	(void)state;
	assert_true(CHECK(ops, &res));
	/* Only the three completed ops were searched: the pending ones were dropped. */
	assert_int_equal(res.states, 3);
}

static void test_read_never_written(void **state)
{
	struct lcr_linz_op ops[] = { wr(1, 1, 5, 0, 10), rd(2, 1, 9, 20, 30) };
	struct lcr_linz_op cas_ok[] = { cas(1, 1, 9, 10, true, 0, 10) };
	struct lcr_linz_result res;

	(void)state;
	assert_false(CHECK(ops, &res));
	assert_non_null(
		strstr(res.why, "#1 c2 R()=9 [20,30] observed a value that no op ever wrote"));
	assert_int_equal(res.states, 0);
	assert_false(CHECK(cas_ok, &res));
	assert_non_null(strstr(res.why, "#0 c1 CAS(9->10 ok) [0,10] observed a value"));
}

static void test_cas(void **state)
{
	struct lcr_linz_op ok_seq[] = { wr(1, 1, 5, 0, 10), cas(2, 1, 5, 6, true, 20, 30),
					rd(1, 1, 6, 40, 50) };
	struct lcr_linz_op bad_expect[] = { wr(1, 1, 5, 0, 10), cas(2, 1, 4, 6, true, 20, 30) };
	struct lcr_linz_op fail_ok[] = { wr(1, 1, 5, 0, 10), cas(2, 1, 4, 6, false, 20, 30),
					 rd(1, 1, 5, 40, 50) };
	struct lcr_linz_op fail_bad[] = { wr(1, 1, 5, 0, 10), cas(2, 1, 5, 6, false, 20, 30) };
	/* A failed CAS is fine if a concurrent write moved the value first. */
	struct lcr_linz_op fail_conc[] = { wr(1, 1, 5, 0, 10), wr(3, 1, 7, 15, 35),
					   cas(2, 1, 5, 6, false, 20, 30) };
	/* Two CASes expecting the same value cannot both succeed. */
	struct lcr_linz_op double_ok[] = { wr(1, 1, 5, 0, 10), cas(2, 1, 5, 6, true, 20, 30),
					   cas(3, 1, 5, 7, true, 20, 30) };
	/* A CAS on an absent key. */
	struct lcr_linz_op absent[] = { cas(1, 1, 0, 3, true, 0, 10), rd(2, 1, 3, 20, 30) };
	struct lcr_linz_result res;

	(void)state;
	assert_true(CHECK(ok_seq, &res));
	assert_false(CHECK(bad_expect, &res));
	assert_true(CHECK(fail_ok, &res));
	assert_false(CHECK(fail_bad, &res));
	assert_true(CHECK(fail_conc, &res));
	assert_false(CHECK(double_ok, &res));
	assert_true(CHECK(absent, &res));
}

static void test_pending_cas(void **state)
{
	/* A pending CAS whose value is read later took effect. */
	struct lcr_linz_op took[] = { wr(1, 1, 5, 0, 10), cas(2, 1, 5, 6, false, 20, P),
				      rd(1, 1, 6, 40, 50) };
	/* It could only have taken effect if its expectation held. */
	struct lcr_linz_op cannot[] = { wr(1, 1, 4, 0, 10), cas(2, 1, 5, 6, false, 20, P),
					rd(1, 1, 6, 40, 50) };
	/* A pending CAS whose value nobody saw may never have happened. */
	struct lcr_linz_op never[] = { wr(1, 1, 5, 0, 10), cas(2, 1, 5, 6, true, 20, P),
				       rd(1, 1, 5, 40, 50) };
	/* A pending CAS needs its expected value written by a pending write. */
	struct lcr_linz_op chain[] = { wr(3, 1, 4, 5, P), cas(2, 1, 4, 6, false, 20, P),
				       rd(1, 1, 6, 40, 50) };
	struct lcr_linz_result res;

	(void)state;
	assert_true(CHECK(took, &res));
	assert_false(CHECK(cannot, &res));
	assert_true(CHECK(never, &res));
	assert_true(CHECK(chain, &res));
}

/* An unknown-outcome write never read can still explain a failed CAS: it must not be dropped. */
static void test_pending_write_explains_failed_cas(void **state)
{
	struct lcr_linz_op ops[] = { wr(1, 1, 5, 0, 10), wr(2, 1, 7, 12, P),
				     cas(3, 1, 5, 9, false, 20, 30) };
	struct lcr_linz_op too_late[] = { wr(1, 1, 5, 0, 10), cas(3, 1, 5, 9, false, 20, 30),
					  wr(2, 1, 7, 31, P) };
	/* Concurrent at the CAS's completion time counts. */
	struct lcr_linz_op touching[] = { wr(1, 1, 5, 0, 10), cas(3, 1, 5, 9, false, 20, 30),
					  wr(2, 1, 7, 30, P) };
	/* Interchangeable "hiding" writes, sent one per round: taken in invoke order. */
	struct lcr_linz_op rounds[] = {
		wr(2, 1, 7, 1, P),
		wr(2, 1, 8, 35, P),
		wr(2, 1, 9, 65, P),
		wr(1, 1, 5, 10, 11),
		cas(3, 1, 5, 6, false, 20, 30),
		wr(1, 1, 5, 40, 41),
		cas(3, 1, 5, 6, false, 50, 60),
		wr(1, 1, 5, 70, 71),
		cas(3, 1, 5, 6, false, 80, 90),
		wr(1, 1, 5, 100, 101),
		cas(3, 1, 5, 6, false, 110, 120),
	};
	struct lcr_linz_result res;

	(void)state;
	assert_true(CHECK(ops, &res));
	assert_false(CHECK(too_late, &res));
	assert_true(CHECK(touching, &res));
	/* Three hiding writes explain the first three failures, not the fourth. */
	assert_false(CHECK(rounds, &res));
	assert_true(check(rounds, 9, &res));
}

/* A pending write of a value some failed CAS expects is not interchangeable with the others. */
static void test_hiding_writes_differ(void **state)
{
	struct lcr_linz_op ops[] = {
		wr(2, 1, 5, 1, P),   wr(2, 1, 7, 2, P),
		wr(1, 1, 5, 10, 11), cas(3, 1, 5, 6, false, 20, 30), /* only wr(7) can hide 5 */
		wr(1, 1, 8, 40, 41), cas(3, 1, 8, 6, false, 50, 60), /* wr(5) hides 8 */
	};
	struct lcr_linz_result res;

	(void)state;
	assert_true(CHECK(ops, &res));
	ops[4].value = 5;
	ops[5].expect = 5;
	assert_false(CHECK(ops, &res));
}

/* Client 2 reads the new value, then client 3 reads the old one after that read ended. */
static void test_classic_violation(void **state)
{
	struct lcr_linz_op ops[] = {
		wr(1, 1, 1, 0, 100),
		rd(2, 1, 1, 10, 20),
		rd(3, 1, 0, 30, 40),
	};
	struct lcr_linz_op overlap[] = {
		wr(1, 1, 1, 0, 100),
		rd(2, 1, 1, 10, 35),
		rd(3, 1, 0, 30, 40),
	};
	struct lcr_linz_result res;

	(void)state;
	assert_false(CHECK(ops, &res));
	assert_non_null(strstr(res.why, "not linearizable"));
	assert_non_null(strstr(res.why, "#2 c3 R()=0 [30,40] had to go next but the value was 1"));
	assert_true(CHECK(overlap, &res));
}

static void test_independent_keys(void **state)
{
	struct lcr_linz_op ops[] = {
		wr(1, 3, 1, 0, 10),  rd(2, 3, 1, 20, 30),  wr(1, 7, 1, 0, 10),
		rd(2, 7, 0, 20, 30), wr(1, 9, 1, 0, 10),   rd(2, 9, 0, 5, 8),
		wr(1, 11, 1, 0, 10), rd(2, 11, 0, 20, 30), rd(2, 3, 1, 40, 50),
	};
	struct lcr_linz_result res;

	(void)state;
	assert_false(CHECK(ops, &res));
	assert_int_equal(res.key, 7); /* 11 fails too; 7 is the smallest */
	assert_non_null(strstr(res.why, "#3 c2 R()=0 [20,30]"));
	/* Without keys 7 and 11 every key is fine. */
	ops[3] = rd(2, 7, 1, 20, 30);
	ops[7] = rd(2, 11, 1, 20, 30);
	assert_true(CHECK(ops, &res));
}

/* n concurrent writes of distinct values, then a read of 0: exponential, and not linearizable. */
static size_t hard_history(struct lcr_linz_op *ops, size_t n, uint64_t key)
{
	for (size_t i = 0; i < n; i++)
		ops[i] = wr((uint32_t)i, key, i + 1, i, 1000);
	ops[n] = rd(99, key, 0, 2000, 2010);
	return n + 1;
}

static void test_gave_up(void **state)
{
	struct lcr_linz_op ops[80];
	struct lcr_linz_result res;
	size_t n = hard_history(ops, 24, 1);

	(void)state;
	assert_int_equal(lcr_linz_check(ops, n, 1000, &res), 0);
	assert_false(res.ok);
	assert_true(res.gave_up);
	assert_int_equal(res.key, 1);
	assert_true(res.states > 1000 && res.states < 1100);
	assert_non_null(strstr(res.why, "gave up"));

	/* Small enough to finish: a definite failure. */
	n = hard_history(ops, 8, 1);
	assert_int_equal(lcr_linz_check(ops, n, 100000, &res), 0);
	assert_false(res.ok);
	assert_false(res.gave_up);

	/* A give-up on key 1 does not hide a definite failure on key 2... */
	n = hard_history(ops, 24, 1);
	ops[n++] = rd(5, 2, 4, 0, 10);
	assert_int_equal(lcr_linz_check(ops, n, 1000, &res), 0);
	assert_false(res.ok);
	assert_false(res.gave_up);
	assert_int_equal(res.key, 2);
	/* ...and a later key that is fine does not clear it. */
	ops[n - 1] = rd(5, 2, 0, 0, 10);
	assert_int_equal(lcr_linz_check(ops, n, 1000, &res), 0);
	assert_false(res.ok);
	assert_true(res.gave_up);
	assert_int_equal(res.key, 1);
	/* The first key given up on is the one reported. */
	n += hard_history(ops + n, 24, 3);
	assert_int_equal(lcr_linz_check(ops, n, 1000, &res), 0);
	assert_true(res.gave_up);
	assert_int_equal(res.key, 1);
	assert_true(res.states > 2000 && res.states < 2200);
}

/* ---- randomized cross-check against a brute-force search ---- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ULL);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return rng_next(s) % n;
}

/* Can op i go next: every completed op that ended before it started is placed. */
static bool bf_minimal(const struct lcr_linz_op *ops, size_t n, uint32_t used, size_t i)
{
	for (size_t j = 0; j < n; j++) {
		if (!(used >> j & 1) && j != i && ops[j].complete_ns < ops[i].invoke_ns)
			return false;
	}
	return true;
}

/* Applies op o to reg[key]; false if the register could not have answered that way. */
static bool bf_apply(const struct lcr_linz_op *o, uint64_t *reg)
{
	uint64_t *r = &reg[o->key];

	switch (o->kind) {
	case LCR_LINZ_WRITE:
		*r = o->value;
		return true;
	case LCR_LINZ_READ:
		return *r == o->value;
	default:
		break;
	}
	if (o->complete_ns == P) {
		/* Took effect or not; a failed attempt changes nothing either way. */
		if (*r == o->expect)
			*r = o->value;
		return true;
	}
	if (!o->cas_ok)
		return *r != o->expect;
	if (*r != o->expect)
		return false;
	*r = o->value;
	return true;
}

/* Every order of every subset containing all completed ops, over all keys at once. */
static bool bf_search(const struct lcr_linz_op *ops, size_t n, uint32_t used, uint64_t *reg)
{
	bool done = true;

	for (size_t i = 0; i < n; i++)
		done &= (used >> i & 1) || ops[i].complete_ns == P;
	if (done)
		return true;
	for (size_t i = 0; i < n; i++) {
		uint64_t saved[3];

		if ((used >> i & 1) || !bf_minimal(ops, n, used, i))
			continue;
		if (ops[i].kind == LCR_LINZ_READ && ops[i].complete_ns == P)
			continue;
		memcpy(saved, reg, sizeof(saved));
		if (bf_apply(&ops[i], reg) && bf_search(ops, n, used | 1u << i, reg))
			return true;
		memcpy(reg, saved, sizeof(saved));
	}
	return false;
}

static bool brute_force(const struct lcr_linz_op *ops, size_t n)
{
	uint64_t reg[3] = { 0 };

	return bf_search(ops, n, 0, reg);
}

/* Arbitrary ops: mostly not linearizable, small values so they repeat. */
static void random_ops(uint64_t *s, struct lcr_linz_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct lcr_linz_op *o = &ops[i];
		uint64_t inv = rnd(s, 20);

		*o = (struct lcr_linz_op){ .kind = 1 + (uint32_t)rnd(s, 3),
					   .client = (uint32_t)i,
					   .key = 1 + rnd(s, 2),
					   .value = rnd(s, 4),
					   .expect = rnd(s, 3),
					   .cas_ok = rnd(s, 2),
					   .invoke_ns = inv,
					   .complete_ns = inv + rnd(s, 12) };
		if (rnd(s, 5) == 0)
			o->complete_ns = P;
	}
}

/*
 * Ops run against a real register at a random point of their interval (so
 * the history is linearizable), then sometimes one answer is corrupted.
 */
static void register_ops(uint64_t *s, struct lcr_linz_op *ops, size_t n)
{
	uint64_t lin[8], reg[3] = { 0 };
	size_t order[8];

	random_ops(s, ops, n);
	for (size_t i = 0; i < n; i++) {
		uint64_t end = ops[i].complete_ns == P ? ops[i].invoke_ns + 30 : ops[i].complete_ns;

		lin[i] = ops[i].invoke_ns + rnd(s, end - ops[i].invoke_ns + 1);
		order[i] = i;
	}
	for (size_t i = 1; i < n; i++) {
		for (size_t j = i; j > 0 && lin[order[j - 1]] > lin[order[j]]; j--) {
			size_t t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	}
	for (size_t k = 0; k < n; k++) {
		struct lcr_linz_op *o = &ops[order[k]];
		uint64_t *r = &reg[o->key];

		if (o->complete_ns == P && rnd(s, 2))
			continue; /* never took effect */
		if (o->kind == LCR_LINZ_READ)
			o->value = *r;
		if (o->kind == LCR_LINZ_CAS) {
			o->cas_ok = *r == o->expect;
			if (o->cas_ok)
				*r = o->value;
		}
		if (o->kind == LCR_LINZ_WRITE)
			*r = o->value;
	}
	if (n && rnd(s, 4) == 0)
		ops[rnd(s, n)].value = rnd(s, 4);
}

static void test_random_vs_brute_force(void **state)
{
	struct lcr_linz_op ops[8];
	struct lcr_linz_result res;
	uint64_t seed = 42;
	int agree_ok = 0, agree_bad = 0;

	(void)state;
	for (int iter = 0; iter < 40000; iter++) {
		size_t n = rnd(&seed, 9);
		bool expect;

		if (iter % 2)
			random_ops(&seed, ops, n);
		else
			register_ops(&seed, ops, n);
		expect = brute_force(ops, n);
		assert_int_equal(lcr_linz_check(ops, n, 0, &res), 0);
		assert_false(res.gave_up);
		if (res.ok != expect)
			fail_msg("iteration %d: checker says %d, brute force %d; why: %s", iter,
				 res.ok, expect, res.why);
		agree_ok += expect;
		agree_bad += !expect;
	}
	/* Both answers must be well represented for the comparison to mean anything. */
	assert_true(agree_ok > 5000);
	assert_true(agree_bad > 5000);
}

/* ---- a large history, as the simulation produces ---- */

struct gen_op {
	struct lcr_linz_op op;
	uint64_t lin;
	bool lost; /* pending and never took effect */
};

static int gen_cmp(const void *a, const void *b)
{
	const struct gen_op *x = a, *y = b;

	return x->lin < y->lin ? -1 : x->lin > y->lin;
}

/* Clients issue ops back to back; each takes effect at a random point of its interval. */
static struct lcr_linz_op *gen_history(uint64_t seed, size_t n, uint32_t clients, uint64_t keys)
{
	struct gen_op *g = calloc(n, sizeof(*g));
	struct lcr_linz_op *ops = calloc(n, sizeof(*ops));
	uint64_t t[16] = { 0 }, reg[16] = { 0 }, next_val = 1;

	assert_non_null(g);
	assert_non_null(ops);
	for (size_t i = 0; i < n; i++) {
		uint32_t c = (uint32_t)rnd(&seed, clients);
		uint64_t inv = t[c] + rnd(&seed, 50), dur = 1 + rnd(&seed, 200);

		g[i].op = (struct lcr_linz_op){ .kind = 1 + (uint32_t)rnd(&seed, 3),
						.client = c,
						.key = rnd(&seed, keys),
						.invoke_ns = inv,
						.complete_ns = inv + dur };
		g[i].lin = inv + rnd(&seed, dur + 1);
		t[c] = inv + dur;
		if (rnd(&seed, 50) == 0) {
			g[i].op.complete_ns = P;
			g[i].lost = rnd(&seed, 2);
		}
	}
	qsort(g, n, sizeof(*g), gen_cmp);
	for (size_t i = 0; i < n; i++) {
		struct lcr_linz_op *o = &g[i].op;
		uint64_t *r = &reg[o->key];

		o->value = next_val++;
		o->expect = rnd(&seed, 2) ? *r : *r + 1;
		if (g[i].lost)
			continue;
		if (o->kind == LCR_LINZ_READ)
			o->value = *r;
		else if (o->kind == LCR_LINZ_WRITE || (o->cas_ok = *r == o->expect))
			*r = o->value;
	}
	for (size_t i = 0; i < n; i++)
		ops[i] = g[i].op;
	free(g);
	return ops;
}

static void test_large_history(void **state)
{
	const size_t n = 5000;
	struct lcr_linz_op *ops = gen_history(7, n, 5, 3);
	struct lcr_linz_result res;
	size_t victim = n / 2;

	(void)state;
	assert_int_equal(lcr_linz_check(ops, n, 1000000, &res), 0);
	assert_true(res.ok);
	/* Corrupt one completed read in the middle: now it must fail on that key. */
	while (ops[victim].kind != LCR_LINZ_READ || ops[victim].complete_ns == P)
		victim++;
	ops[victim].value = ops[victim].value ? 0 : 1;
	assert_int_equal(lcr_linz_check(ops, n, 1000000, &res), 0);
	assert_false(res.ok);
	assert_false(res.gave_up);
	assert_int_equal(res.key, ops[victim].key);
	free(ops);
}

/*
 * A write that spans 100 sequential write/read pairs and must go last: the
 * search first places it early, goes deep and backtracks across many words of
 * its bitset. Pending writes nobody reads and failed CASes add hiders that
 * must not multiply the states explored.
 */
static size_t long_op_history(struct lcr_linz_op *ops)
{
	size_t n = 0;

	ops[n++] = wr(9, 1, 1000, 0, 10000);
	for (uint64_t i = 0; i < 100; i++) {
		ops[n++] = wr(1, 1, i + 1, 10 * i + 1, 10 * i + 5);
		ops[n++] = rd(2, 1, i + 1, 10 * i + 6, 10 * i + 9);
		if (i % 10 == 0) {
			ops[n++] = wr(3, 1, 2000 + i, 10 * i + 1, P);
			ops[n++] = cas(4, 1, 5000, 6000, false, 10 * i + 6, 10 * i + 9);
		}
	}
	ops[n++] = rd(2, 1, 1000, 10001, 10010);
	return n;
}

static void test_long_op_backtracking(void **state)
{
	struct lcr_linz_op ops[256];
	struct lcr_linz_result res;
	size_t n = long_op_history(ops);

	(void)state;
	assert_true(check(ops, n, &res));
	assert_true(res.states < 2000);
	ops[n - 1].value = 100; /* the long write may also go before the last pair */
	assert_true(check(ops, n, &res));
	ops[n - 1].value = 99; /* overwritten before the read started */
	assert_false(check(ops, n, &res));
	assert_true(res.states < 2000);
}

/* One key, 100k sequential ops: the search must not recurse. */
static void test_deep_history(void **state)
{
	const size_t n = 100000;
	struct lcr_linz_op *ops = calloc(n, sizeof(*ops));
	struct lcr_linz_result res;

	(void)state;
	assert_non_null(ops);
	for (size_t i = 0; i < n; i++)
		ops[i] = i % 2 ? rd(1, 4, i, 10 * i, 10 * i + 15)
			       : wr(2, 4, i + 1, 10 * i, 10 * i + 5);
	assert_true(check(ops, n, &res));
	assert_int_equal(res.states, n);
	ops[n - 1].value = 1;
	assert_false(check(ops, n, &res));
	free(ops);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_sequential_ok),
		cmocka_unit_test(test_stale_read_fails),
		cmocka_unit_test(test_concurrent_write_read),
		cmocka_unit_test(test_pending_write_observed),
		cmocka_unit_test(test_pending_write_unobserved),
		cmocka_unit_test(test_read_never_written),
		cmocka_unit_test(test_cas),
		cmocka_unit_test(test_pending_cas),
		cmocka_unit_test(test_pending_write_explains_failed_cas),
		cmocka_unit_test(test_hiding_writes_differ),
		cmocka_unit_test(test_classic_violation),
		cmocka_unit_test(test_independent_keys),
		cmocka_unit_test(test_gave_up),
		cmocka_unit_test(test_random_vs_brute_force),
		cmocka_unit_test(test_large_history),
		cmocka_unit_test(test_long_op_backtracking),
		cmocka_unit_test(test_deep_history),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
