/* The fault decorator: loss, dup, reorder and delay rates, determinism, partitions, hold queue. */
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
#include <time.h>
#include <unistd.h>

#include "backend.h"

#define N_RATES 100000
#define REC_MAX (3 * N_RATES)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- an in-memory backend that records what it is given ------------------- */

struct rec {
	uint64_t seq; /* the first 8 bytes of the datagram */
	uint64_t at_ns;
	uint32_t peer;
	uint32_t len;
};

struct fake {
	struct lcr_backend be;
	uint32_t take_max; /* datagrams taken per tx_burst, 0: all */
	uint32_t n_rec;
	struct rec *rec;
	int *closed;
};

static int fake_rx(struct lcr_backend *be, struct lcr_dgram *d, uint32_t max)
{
	(void)be;
	(void)d;
	(void)max;
	return 0;
}

static int fake_tx(struct lcr_backend *be, const struct lcr_dgram *d, uint32_t n)
{
	struct fake *f = (struct fake *)be;
	uint64_t t = now_ns();
	uint32_t i;

	for (i = 0; i < n && (f->take_max == 0 || i < f->take_max); i++) {
		struct rec *r = &f->rec[f->n_rec++];

		assert_true(f->n_rec <= REC_MAX);
		assert_true(d[i].len >= 8);
		memcpy(&r->seq, d[i].buf, 8);
		r->at_ns = t;
		r->peer = d[i].peer;
		r->len = d[i].len;
	}
	return (int)i;
}

/* Sleeps the whole timeout, so a decorator that asks for too long is seen. */
static int fake_wait(struct lcr_backend *be, int fd, uint64_t timeout_ns)
{
	struct timespec ts = { (time_t)(timeout_ns / 1000000000u),
			       (long)(timeout_ns % 1000000000u) };

	(void)be;
	(void)fd;
	if (timeout_ns > 0)
		clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	return 0;
}

static void fake_stats(const struct lcr_backend *be, struct lcr_backend_stats *st)
{
	const struct fake *f = (const struct fake *)be;

	memset(st, 0, sizeof(*st));
	st->tx_dgrams = f->n_rec;
}

static void fake_close(struct lcr_backend *be)
{
	struct fake *f = (struct fake *)be;

	if (f->closed)
		(*f->closed)++;
	free(f->rec);
	free(f);
}

static const struct lcr_backend_ops fake_ops = {
	.rx_burst = fake_rx,
	.tx_burst = fake_tx,
	.wait = fake_wait,
	.stats = fake_stats,
	.close = fake_close,
};

static struct fake *fake_new(uint32_t take_max, int *closed)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->be.ops = &fake_ops;
	f->take_max = take_max;
	f->rec = calloc(REC_MAX, sizeof(*f->rec));
	assert_non_null(f->rec);
	f->closed = closed;
	return f;
}

static struct lcr_backend *faulty_over(struct fake *fk, const struct lcr_faulty_opts *o)
{
	struct lcr_backend *be;

	assert_int_equal(lcr_faulty_open(&be, &fk->be, o), 0);
	return be;
}

/*
 * Send seqs 1..n to `peer` in bursts of 16, retrying whatever the backend
 * hands back, then let every held datagram go.
 */
static void send_seqs(struct lcr_backend *be, uint64_t n, uint32_t peer)
{
	static uint8_t buf[16][64];
	struct lcr_dgram d[16];
	uint64_t seq = 1;

	while (seq <= n) {
		uint32_t k = 0, off = 0;

		for (; k < 16 && seq + k <= n; k++) {
			uint64_t s = seq + k;

			memcpy(buf[k], &s, 8);
			d[k] = (struct lcr_dgram){ buf[k], 64, peer };
		}
		while (off < k) {
			int rc = lcr_be_tx(be, d + off, k - off);

			assert_true(rc >= 0);
			off += (uint32_t)rc;
		}
		seq += k;
	}
}

/* Reordered datagrams that nothing overtakes go after 1 ms; delayed ones when due. */
static void drain(struct lcr_backend *be, uint64_t for_ns)
{
	uint64_t end = now_ns() + for_ns;

	while (now_ns() < end)
		lcr_be_wait(be, -1, end - now_ns());
	lcr_be_wait(be, -1, 0);
}

static void assert_near(double got, double want, double tol, const char *what)
{
	if (got - want > tol || want - got > tol)
		fail_msg("%s: %.0f, expected %.0f +- %.0f", what, got, want, tol);
}

/* Six standard deviations of a binomial count: a false alarm once in 10^9 runs. */
static double six_sigma(double n, double p)
{
	double v = n * p * (1 - p), x = v > 1 ? v : 1;

	/* Newton's square root, so that the test needs no libm. */
	for (int i = 0; i < 64; i++)
		x = (x + v / x) / 2;
	return 6 * x;
}

struct fate {
	uint32_t copies;
	bool late; /* first copy came after a later seq */
};

/* What became of seqs 1..n: copies received and whether they came out of order. */
static uint64_t fates(const struct fake *fk, struct fate *fa, uint64_t n)
{
	uint64_t seen_max = 0, late = 0;

	memset(fa, 0, (n + 1) * sizeof(*fa));
	for (uint32_t i = 0; i < fk->n_rec; i++) {
		uint64_t s = fk->rec[i].seq;

		assert_true(s >= 1 && s <= n);
		if (fa[s].copies++ == 0 && s < seen_max) {
			fa[s].late = true;
			late++;
		}
		if (s > seen_max)
			seen_max = s;
	}
	return late;
}

static void test_faulty_rates_within_bounds(void **state)
{
	struct lcr_faulty_opts o = {
		.seed = 1, .loss_ppm = 100000, .dup_ppm = 100000, .reorder_ppm = 100000
	};
	static struct fate fa[N_RATES + 1];
	struct fake *fk = fake_new(0, NULL);
	struct lcr_backend *be = faulty_over(fk, &o);
	struct lcr_faulty_stats st;
	uint64_t late, once = 0, twice = 0, kept;

	(void)state;
	send_seqs(be, N_RATES, 2);
	drain(be, 3000000);
	lcr_faulty_stats(be, &st);
	late = fates(fk, fa, N_RATES);
	for (uint64_t s = 1; s <= N_RATES; s++) {
		assert_true(fa[s].copies <= 2);
		once += fa[s].copies == 1;
		twice += fa[s].copies == 2;
	}
	kept = N_RATES - st.dropped;
	print_message("dropped %lu duplicated %lu reordered %lu (arrived late %lu)\n",
		      (unsigned long)st.dropped, (unsigned long)st.duplicated,
		      (unsigned long)st.reordered, (unsigned long)late);
	assert_near((double)st.dropped, 0.1 * N_RATES, six_sigma(N_RATES, 0.1), "dropped");
	assert_near((double)st.duplicated, 0.1 * (double)kept, six_sigma((double)kept, 0.1),
		    "duplicated");
	assert_near((double)st.reordered, 0.1 * (double)kept, six_sigma((double)kept, 0.1),
		    "reordered");
	/* What the counters say is what the receiver sees. */
	assert_int_equal(once + twice, kept);
	assert_int_equal(twice, st.duplicated);
	assert_int_equal(fk->n_rec, kept + st.duplicated);
	/*
	 * A reordered datagram arrives after later ones, unless its duplicate
	 * went first (10%) or the later ones were lost too.
	 */
	assert_true(late <= st.reordered);
	assert_true(late >= st.reordered * 8 / 10);
	assert_int_equal(st.hold_full + st.partitioned + st.delayed, 0);
	be->ops->close(be);
}

static void run_seeded(uint64_t seed, uint32_t take_max, struct fate *fa,
		       struct lcr_faulty_stats *st, uint64_t n)
{
	struct lcr_faulty_opts o = {
		.seed = seed, .loss_ppm = 50000, .dup_ppm = 50000, .reorder_ppm = 50000
	};
	struct fake *fk = fake_new(take_max, NULL);
	struct lcr_backend *be = faulty_over(fk, &o);

	send_seqs(be, n, 2);
	drain(be, 3000000);
	lcr_faulty_stats(be, st);
	fates(fk, fa, n);
	be->ops->close(be);
}

static void test_faulty_same_seed_same_decisions(void **state)
{
	enum { N = 20000 };
	static struct fate a[N + 1], b[N + 1], c[N + 1];
	struct lcr_faulty_stats sa, sb, sc;

	(void)state;
	run_seeded(42, 0, a, &sa, N);
	run_seeded(42, 0, b, &sb, N);
	run_seeded(43, 0, c, &sc, N);
	assert_memory_equal(&sa, &sb, sizeof(sa));
	for (int s = 1; s <= N; s++)
		assert_int_equal(a[s].copies, b[s].copies);
	/* Another seed, other decisions. */
	bool differ = memcmp(&sa, &sc, sizeof(sa)) != 0;
	for (int s = 1; s <= N && !differ; s++)
		differ = a[s].copies != c[s].copies;
	assert_true(differ);
}

static void test_faulty_backpressure_keeps_decisions(void **state)
{
	enum { N = 20000 };
	static struct fate a[N + 1], b[N + 1];
	struct lcr_faulty_stats sa, sb;

	(void)state;
	/*
	 * An inner backend that takes 3 datagrams per call hands most of every
	 * burst back; the retried datagrams must meet the same fate (only a
	 * refused duplicate may be lost).
	 */
	run_seeded(7, 0, a, &sa, N);
	run_seeded(7, 3, b, &sb, N);
	assert_int_equal(sa.dropped, sb.dropped);
	assert_int_equal(sa.reordered, sb.reordered);
	assert_true(sb.duplicated <= sa.duplicated);
	for (int s = 1; s <= N; s++) {
		assert_int_equal(a[s].copies > 0, b[s].copies > 0);
		assert_true(b[s].copies <= a[s].copies);
	}
}

static void test_faulty_blocked_peer_gets_nothing(void **state)
{
	struct lcr_faulty_opts o = { .seed = 3 };
	struct fake *fk = fake_new(0, NULL);
	struct lcr_backend *be = faulty_over(fk, &o);
	struct lcr_faulty_stats st;
	uint32_t to2 = 0, to3 = 0;

	(void)state;
	lcr_faulty_block(be, 2, true);
	lcr_faulty_block(be, 2, true); /* twice is once */
	send_seqs(be, 500, 2);
	send_seqs(be, 500, 3);
	for (uint32_t i = 0; i < fk->n_rec; i++) {
		to2 += fk->rec[i].peer == 2;
		to3 += fk->rec[i].peer == 3;
	}
	assert_int_equal(to2, 0);
	assert_int_equal(to3, 500);
	lcr_faulty_stats(be, &st);
	assert_int_equal(st.partitioned, 500);
	/* Healed. */
	lcr_faulty_block(be, 2, false);
	send_seqs(be, 10, 2);
	assert_int_equal(fk->n_rec, 510);
	be->ops->close(be);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_faulty_delay_no_earlier_no_oversleep(void **state)
{
	enum { N = 200 };
	const uint64_t delay = 2000000, jitter = 1000000;
	struct lcr_faulty_opts o = { .seed = 5, .delay_ns = delay, .jitter_ns = jitter };
	struct fake *fk = fake_new(0, NULL);
	struct lcr_backend *be = faulty_over(fk, &o);
	static uint64_t sent_at[N + 1];
	static uint8_t buf[64];
	struct lcr_faulty_stats st;
	uint64_t lat[N], end, t0;

	(void)state;
	for (uint64_t s = 1; s <= N; s++) {
		struct lcr_dgram d = { buf, 64, 2 };

		memcpy(buf, &s, 8);
		sent_at[s] = now_ns();
		assert_int_equal(lcr_be_tx(be, &d, 1), 1);
	}
	/* Waits with a long timeout return as the held datagrams fall due. */
	end = now_ns() + 2000000000u;
	while (fk->n_rec < N && now_ns() < end)
		lcr_be_wait(be, -1, 1000000000u);
	assert_int_equal(fk->n_rec, N);
	for (uint32_t i = 0; i < N; i++) {
		const struct rec *r = &fk->rec[i];

		lat[i] = r->at_ns - sent_at[r->seq];
		assert_true(lat[i] >= delay); /* never early */
	}
	qsort(lat, N, sizeof(lat[0]), cmp_u64);
	print_message("latency min %.2f p50 %.2f max %.2f ms (delay 2 + jitter 0..1 ms)\n",
		      (double)lat[0] / 1e6, (double)lat[N / 2] / 1e6, (double)lat[N - 1] / 1e6);
	/* Generous: this machine has two cores and builds run beside the tests. */
	assert_true(lat[N / 2] < delay + jitter + 20000000);
	assert_true(lat[N - 1] < delay + jitter + 200000000);
	lcr_faulty_stats(be, &st);
	assert_int_equal(st.delayed, N);
	/* One datagram due in 3 ms: a wait of a second returns when it is due, and sends it. */
	o.delay_ns = 3000000;
	o.jitter_ns = 0;
	lcr_faulty_set(be, &o);
	t0 = now_ns();
	send_seqs(be, 1, 2);
	lcr_be_wait(be, -1, 1000000000u);
	assert_true(now_ns() - t0 >= 3000000);
	assert_true(now_ns() - t0 < 200000000);
	assert_int_equal(fk->n_rec, N + 1);
	/* A delay without jitter keeps the order, bursts included. */
	send_seqs(be, 100, 2);
	drain(be, 10000000);
	assert_int_equal(fk->n_rec, N + 101);
	for (uint32_t i = 0; i < 100; i++)
		assert_int_equal(fk->rec[N + 1 + i].seq, i + 1);
	be->ops->close(be);
}

static void test_faulty_hold_queue_overflow_counted(void **state)
{
	struct lcr_faulty_opts o = { .seed = 9, .delay_ns = 1000000000u, .hold_max = 8 };
	int closed = 0;
	struct fake *fk = fake_new(0, &closed);
	struct lcr_backend *be = faulty_over(fk, &o);
	struct lcr_faulty_stats st;

	(void)state;
	send_seqs(be, 20, 2);
	lcr_faulty_stats(be, &st);
	assert_int_equal(st.delayed, 8);
	assert_int_equal(st.hold_full, 12);
	/* The twelve that found no slot went at once, in order. */
	assert_int_equal(fk->n_rec, 12);
	for (uint32_t i = 0; i < 12; i++)
		assert_int_equal(fk->rec[i].seq, 9 + i);
	/* Closing with datagrams held frees them and closes the inner backend. */
	be->ops->close(be);
	assert_int_equal(closed, 1);
}

static void test_faulty_set_changes_rates(void **state)
{
	struct lcr_faulty_opts o = { .seed = 11 };
	struct fake *fk = fake_new(0, NULL);
	struct lcr_backend *be = faulty_over(fk, &o);
	struct lcr_faulty_stats st;

	(void)state;
	send_seqs(be, 100, 2);
	o.loss_ppm = 1000000;
	lcr_faulty_set(be, &o);
	send_seqs(be, 100, 2);
	o.loss_ppm = 0;
	o.dup_ppm = 1000000;
	lcr_faulty_set(be, &o);
	send_seqs(be, 100, 2);
	lcr_faulty_stats(be, &st);
	assert_int_equal(st.dropped, 100);
	assert_int_equal(st.duplicated, 100);
	assert_int_equal(fk->n_rec, 300);
	be->ops->close(be);
	/* Rates above one million per million are refused, and the inner backend stays ours. */
	struct lcr_backend *bad = NULL;
	fk = fake_new(0, NULL);
	o.loss_ppm = 1000001;
	assert_int_equal(lcr_faulty_open(&bad, &fk->be, &o), -EINVAL);
	assert_null(bad);
	fk->be.ops->close(&fk->be);
}

/* ---- over real sockets ------------------------------------------------------ */

static int open_sock_pair(struct lcr_backend **a, struct lcr_backend **b)
{
	uint16_t base = (uint16_t)(20000 + (getpid() * 53) % 30000);
	char why[256];
	int rc = -EADDRINUSE;

	for (unsigned t = 0; t < 200 && rc == -EADDRINUSE; t++) {
		struct lcr_sock_opts oa, ob;

		lcr_sock_opts_default(&oa);
		lcr_sock_opts_default(&ob);
		oa.bind_host = ob.bind_host = "127.0.0.1";
		oa.bind_port = (uint16_t)(base + 2 * t);
		ob.bind_port = (uint16_t)(oa.bind_port + 1);
		oa.n_peers = ob.n_peers = 1;
		oa.peers[0] = (struct lcr_sock_peer){ .node = 2,
						      .host = "127.0.0.1",
						      .port = ob.bind_port };
		ob.peers[0] = (struct lcr_sock_peer){ .node = 1,
						      .host = "127.0.0.1",
						      .port = oa.bind_port };
		rc = lcr_sock_open(a, &oa, why, sizeof(why));
		if (rc < 0)
			continue;
		rc = lcr_sock_open(b, &ob, why, sizeof(why));
		if (rc < 0)
			(*a)->ops->close(*a);
	}
	if (rc < 0)
		print_error("%s\n", why);
	return rc;
}

/* Count what arrives at `be` within `ns`. */
static uint32_t count_rx(struct lcr_backend *be, uint64_t ns)
{
	struct lcr_dgram d[64];
	uint64_t end = now_ns() + ns;
	uint32_t n = 0;

	while (now_ns() < end) {
		int k = lcr_be_rx(be, d, 64);

		assert_true(k >= 0);
		n += (uint32_t)k;
		if (k == 0)
			lcr_be_wait(be, -1, 1000000);
	}
	return n;
}

static void test_faulty_over_sockets(void **state)
{
	struct lcr_faulty_opts o = { .seed = 13, .dup_ppm = 1000000 };
	struct lcr_backend *sa, *b, *a;
	struct lcr_backend_stats bs;
	static uint8_t buf[64];
	struct lcr_dgram d = { buf, 64, 2 };
	uint64_t t0, dt;

	(void)state;
	assert_int_equal(open_sock_pair(&sa, &b), 0);
	assert_int_equal(lcr_faulty_open(&a, sa, &o), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(lcr_be_tx(a, &d, 1), 1);
	assert_int_equal(count_rx(b, 100000000), 200);
	/* Stats are the inner backend's: what really went out. */
	a->ops->stats(a, &bs);
	assert_int_equal(bs.tx_dgrams, 200);
	/* Partitioned: nothing. */
	lcr_faulty_block(a, 2, true);
	for (int i = 0; i < 100; i++)
		assert_int_equal(lcr_be_tx(a, &d, 1), 1);
	assert_int_equal(count_rx(b, 30000000), 0);
	lcr_faulty_block(a, 2, false);
	/* Delayed 5 ms: a long wait wakes when it is due and sends it. */
	o.dup_ppm = 0;
	o.delay_ns = 5000000;
	lcr_faulty_set(a, &o);
	t0 = now_ns();
	assert_int_equal(lcr_be_tx(a, &d, 1), 1);
	assert_int_equal(count_rx(b, 1000000), 0);
	lcr_be_wait(a, -1, 2000000000u);
	dt = now_ns() - t0;
	print_message("wait with a datagram due in 5 ms returned after %.2f ms\n",
		      (double)dt / 1e6);
	assert_true(dt >= 5000000);
	assert_true(dt < 50000000);
	assert_int_equal(count_rx(b, 20000000), 1);
	/* rx passes through the inner backend. */
	d.peer = 1;
	assert_int_equal(lcr_be_tx(b, &d, 1), 1);
	assert_int_equal(count_rx(a, 20000000), 1);
	a->ops->close(a); /* closes sa too */
	b->ops->close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faulty_rates_within_bounds),
		cmocka_unit_test(test_faulty_same_seed_same_decisions),
		cmocka_unit_test(test_faulty_backpressure_keeps_decisions),
		cmocka_unit_test(test_faulty_blocked_peer_gets_nothing),
		cmocka_unit_test(test_faulty_delay_no_earlier_no_oversleep),
		cmocka_unit_test(test_faulty_hold_queue_overflow_counted),
		cmocka_unit_test(test_faulty_set_changes_rates),
		cmocka_unit_test(test_faulty_over_sockets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
