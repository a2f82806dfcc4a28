/* SPDX-License-Identifier: MIT */
/*
 * kvcheck: a workload against an lcraft-node cluster that records every
 * operation and checks the history for linearizability with the project's
 * checker (tests/sim/linz.c) — the same check the deterministic simulation
 * makes, on real processes, sockets and disks.
 *
 *   kvcheck --config FILE [--clients 8] [--keys 16] [--seconds 10]
 *           [--op-timeout-ms 2000] [--read-pct 40] [--cas-pct 20]
 *           [--delete-pct 0] [--no-final-reads] [--history FILE]
 *           [--key-prefix k] [--key-file FILE]
 *
 * The client key is the config's [cluster] client_key_file, or --key-file
 * (requests sealed, answers verified: bench/client.h).
 *
 * The check takes every key to be absent at the start: on a cluster that ran
 * an earlier workload, give each run its own --key-prefix (keys PREFIX1 ..
 * PREFIXn).
 *
 * Each client (a thread) does one operation at a time on a random key: a
 * put of a value unique to the whole run, a linearizable get, a CAS from
 * the value it last saw to a new unique value, or (--delete-pct, default 0)
 * a delete. An operation not answered within --op-timeout-ms has an unknown
 * outcome (it may take effect later, or never) and is recorded as such.
 * After --seconds, every key is read once more (with a long timeout, after
 * the test has healed the cluster): a write that was acknowledged and then
 * lost makes that last read, and so the history, non-linearizable.
 *
 * A delete is checked as a write of 0 ("absent", linz.h) when it is answered
 * OK or not at all; answered NOT_FOUND it changed nothing and found the key
 * absent where it took effect, so it is checked as a read of 0. The history
 * file names deletes "del" either way.
 *
 * Prints progress on stderr and one JSON line on stdout. Exit status: 0
 * linearizable and progress made; 1 a violation (explained on stderr); 2
 * usage; 3 no operation completed; 4 the check was inconclusive.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "linz.h"

struct opts {
	uint32_t clients, keys, seconds, read_pct, cas_pct, delete_pct;
	const char *key_prefix; /* keys are PREFIX1 .. PREFIXn */
	uint64_t op_timeout_ms;
	bool final_reads;
	const char *history;
};

struct worker {
	uint32_t index;
	pthread_t thread;
	const struct opts *o;
	const struct lcr_app_config *cfg;
	struct lcr_linz_op *ops;
	bool *is_delete; /* per op: a delete (checked as a write or a read of 0) */
	size_t n, cap;
	uint64_t *seen; /* per key: the last value this client saw (0: absent) */
	uint64_t rng;
	uint64_t ok, pending, errors;
};

static _Atomic bool stopping;
static _Atomic uint64_t completed, timed_out;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static struct lcr_linz_op *push(struct worker *w)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 1024;
		w->ops = realloc(w->ops, w->cap * sizeof(*w->ops));
		w->is_delete = realloc(w->is_delete, w->cap * sizeof(*w->is_delete));
		if (!w->ops || !w->is_delete) {
			fprintf(stderr, "kvcheck: out of memory\n");
			exit(2);
		}
	}
	struct lcr_linz_op *op = &w->ops[w->n++];
	memset(op, 0, sizeof(*op));
	w->is_delete[w->n - 1] = false;
	op->client = w->index;
	return op;
}

/* Values are decimal strings of unique 64-bit numbers; 0 means absent. */
static uint64_t parse_value(const struct lcr_kv_answer *a)
{
	char *end;
	uint64_t v = strtoull((const char *)a->value, &end, 10);
	if (a->value_len == 0 || *end) {
		fprintf(stderr, "kvcheck: a value we never wrote: \"%s\"\n", a->value);
		return UINT64_MAX; /* makes the history fail, as it should */
	}
	return v;
}

/* A kind of one_op() the checker does not have: a delete. */
#define KV_DELETE 100

/* One operation: run it, record it. */
static void one_op(struct worker *w, struct lcr_kv_client *c, uint32_t kind, uint64_t key,
		   uint64_t timeout_ms)
{
	char kbuf[96], vbuf[32], ebuf[32];
	struct lcr_client_req r = { .client = lcr_kv_client_id(c), .id = lcr_kv_client_next_id(c) };
	struct lcr_linz_op *op = push(w);
	uint64_t value = ((uint64_t)(w->index + 1) << 40) | (r.id & ((1ull << 40) - 1));

	snprintf(kbuf, sizeof(kbuf), "%s%" PRIu64, w->o->key_prefix, key);
	r.key = (const uint8_t *)kbuf;
	r.key_len = (uint32_t)strlen(kbuf);
	op->key = key;
	op->kind = kind;
	switch (kind) {
	case KV_DELETE:
		/* A write of 0 (absent); answered NOT_FOUND, a read of 0 (below). */
		r.op = LCR_CLIENT_DELETE;
		op->kind = LCR_LINZ_WRITE;
		w->is_delete[w->n - 1] = true;
		break;
	case LCR_LINZ_WRITE:
		r.op = LCR_CLIENT_PUT;
		snprintf(vbuf, sizeof(vbuf), "%" PRIu64, value);
		r.value = (const uint8_t *)vbuf;
		r.value_len = (uint32_t)strlen(vbuf);
		op->value = value;
		break;
	case LCR_LINZ_CAS:
		r.op = LCR_CLIENT_CAS;
		snprintf(vbuf, sizeof(vbuf), "%" PRIu64, value);
		r.value = (const uint8_t *)vbuf;
		r.value_len = (uint32_t)strlen(vbuf);
		op->value = value;
		op->expect = w->seen[key];
		if (op->expect) {
			snprintf(ebuf, sizeof(ebuf), "%" PRIu64, op->expect);
			r.expect = (const uint8_t *)ebuf;
			r.expect_len = (uint32_t)strlen(ebuf);
		}
		break;
	default:
		r.op = LCR_CLIENT_GET;
		break;
	}
	struct lcr_kv_answer a;
	op->invoke_ns = now_ns();
	int rc = lcr_kv_client_call(c, &r, 0, timeout_ms, &a);
	uint64_t done = now_ns();
	if (rc < 0) {
		op->complete_ns = LCR_LINZ_PENDING;
		w->pending++;
		atomic_fetch_add(&timed_out, 1);
		return;
	}
	op->complete_ns = done;
	switch (a.status) {
	case LCR_CLIENT_OK:
		if (kind == LCR_LINZ_READ) {
			op->value = parse_value(&a);
			w->seen[key] = op->value;
		} else {
			op->cas_ok = true;
			w->seen[key] = op->value; /* 0 after a delete */
		}
		w->ok++;
		break;
	case LCR_CLIENT_NOT_FOUND:
		if (kind == KV_DELETE) {
			op->kind = LCR_LINZ_READ;
			op->value = 0;
			w->seen[key] = 0;
		} else if (kind == LCR_LINZ_READ) {
			op->value = 0;
			w->seen[key] = 0;
		} else if (kind == LCR_LINZ_CAS) {
			op->cas_ok = false; /* expected a value, the key is absent */
			w->seen[key] = 0;
		}
		w->ok++;
		break;
	case LCR_CLIENT_CAS_FAILED:
		op->cas_ok = false;
		w->seen[key] = parse_value(&a);
		w->ok++;
		break;
	default:
		/* ERROR: the write may or may not have happened (e.g. the
		 * replica stopped after taking it). */
		fprintf(stderr, "kvcheck: client %u: node %u answered error: %s\n", w->index,
			a.from, a.value);
		op->complete_ns = LCR_LINZ_PENDING;
		w->errors++;
		break;
	}
	free(a.value);
	atomic_fetch_add(&completed, 1);
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	struct lcr_kv_client *c;
	char why[256];

	if (lcr_kv_client_open(&c, w->cfg, 1, why, sizeof(why)) < 0) {
		fprintf(stderr, "kvcheck: %s\n", why);
		exit(2);
	}
	while (!atomic_load(&stopping)) {
		uint64_t key = 1 + rnd(&w->rng) % w->o->keys;
		uint32_t p = (uint32_t)(rnd(&w->rng) % 100), kind = LCR_LINZ_WRITE;
		if (p < w->o->read_pct)
			kind = LCR_LINZ_READ;
		else if (p < w->o->read_pct + w->o->cas_pct)
			kind = LCR_LINZ_CAS;
		else if (p < w->o->read_pct + w->o->cas_pct + w->o->delete_pct)
			kind = KV_DELETE;
		one_op(w, c, kind, key, w->o->op_timeout_ms);
	}
	lcr_kv_client_close(c);
	return NULL;
}

static void write_history(const char *path, const struct lcr_linz_op *ops, const bool *is_delete,
			  size_t n)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "kvcheck: %s: %s\n", path, strerror(errno));
		return;
	}
	fprintf(f, "# kind client key value expect cas_ok invoke_ns complete_ns (pending: -)\n");
	for (size_t i = 0; i < n; i++) {
		const struct lcr_linz_op *o = &ops[i];
		fprintf(f, "%s %u %" PRIu64 " %" PRIu64 " %" PRIu64 " %d %" PRIu64 " ",
			is_delete[i]		    ? "del"
			: o->kind == LCR_LINZ_WRITE ? "put"
			: o->kind == LCR_LINZ_READ  ? "get"
						    : "cas",
			o->client, o->key, o->value, o->expect, o->cas_ok, o->invoke_ns);
		if (o->complete_ns == LCR_LINZ_PENDING)
			fprintf(f, "-\n");
		else
			fprintf(f, "%" PRIu64 "\n", o->complete_ns);
	}
	fclose(f);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kvcheck --config FILE [--clients 8] [--keys 16] [--seconds 10]\n"
		   "               [--op-timeout-ms 2000] [--read-pct 40] [--cas-pct 20]\n"
		   "               [--delete-pct 0] [--no-final-reads] [--history FILE]\n"
		   "               [--key-prefix k] [--key-file FILE]\n"
		   "The keys must be new (absent) when the run starts: the check assumes so.\n"
		   "Give each run on the same cluster its own --key-prefix.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "clients", required_argument, NULL, 'n' },
		{ "keys", required_argument, NULL, 'k' },
		{ "seconds", required_argument, NULL, 's' },
		{ "op-timeout-ms", required_argument, NULL, 't' },
		{ "read-pct", required_argument, NULL, 'r' },
		{ "cas-pct", required_argument, NULL, 'a' },
		{ "delete-pct", required_argument, NULL, 'd' },
		{ "no-final-reads", no_argument, NULL, 'F' },
		{ "history", required_argument, NULL, 'H' },
		{ "key-prefix", required_argument, NULL, 'P' },
		{ "key-file", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .clients = 8,
			  .keys = 16,
			  .seconds = 10,
			  .read_pct = 40,
			  .cas_pct = 20,
			  .op_timeout_ms = 2000,
			  .final_reads = true,
			  .key_prefix = "k" };
	const char *path = NULL, *key_file = NULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		unsigned long v = 0;
		if (optarg && opt != 'c' && opt != 'H' && opt != 'P' && opt != 'K') {
			char *end;
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || v > 1000000) {
				fprintf(stderr, "kvcheck: %s: not a number\n", optarg);
				return 2;
			}
		}
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'P':
			if (strlen(optarg) > 64) {
				fprintf(stderr, "kvcheck: --key-prefix: at most 64 bytes\n");
				return 2;
			}
			o.key_prefix = optarg;
			break;
		case 'n':
			o.clients = (uint32_t)v;
			break;
		case 'k':
			o.keys = (uint32_t)v;
			break;
		case 's':
			o.seconds = (uint32_t)v;
			break;
		case 't':
			o.op_timeout_ms = v;
			break;
		case 'r':
			o.read_pct = (uint32_t)v;
			break;
		case 'a':
			o.cas_pct = (uint32_t)v;
			break;
		case 'd':
			o.delete_pct = (uint32_t)v;
			break;
		case 'F':
			o.final_reads = false;
			break;
		case 'H':
			o.history = optarg;
			break;
		case 'K':
			key_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || optind != argc || o.clients == 0 || o.clients > 256 || o.keys == 0 ||
	    o.read_pct + o.cas_pct + o.delete_pct > 100 || o.op_timeout_ms == 0) {
		usage(stderr);
		return 2;
	}
	static struct lcr_app_config cfg;
	char why[512];
	if (lcr_app_config_load_client(&cfg, path, key_file, why, sizeof(why)) < 0) {
		fprintf(stderr, "kvcheck: %s\n", why);
		return 2;
	}

	struct worker *w = calloc(o.clients, sizeof(*w));
	for (uint32_t i = 0; i < o.clients; i++) {
		w[i].index = i;
		w[i].o = &o;
		w[i].cfg = &cfg;
		w[i].seen = calloc(o.keys + 1, sizeof(uint64_t));
		w[i].rng = now_ns() ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull) ^ (uint64_t)getpid();
		if (!w[i].rng)
			w[i].rng = 1;
		pthread_create(&w[i].thread, NULL, run_worker, &w[i]);
	}
	uint64_t start = now_ns(), last = 0;
	for (uint32_t s = 1; s <= o.seconds; s++) {
		sleep(1);
		uint64_t c = atomic_load(&completed);
		fprintf(stderr,
			"kvcheck: %us: %" PRIu64 " ops/s, %" PRIu64 " completed, %" PRIu64
			" unanswered\n",
			s, c - last, c, atomic_load(&timed_out));
		last = c;
	}
	atomic_store(&stopping, true);
	for (uint32_t i = 0; i < o.clients; i++)
		pthread_join(w[i].thread, NULL);
	double load_s = (double)(now_ns() - start) / 1e9;

	/* Final reads: every key, after the cluster healed. */
	uint64_t final_unanswered = 0;
	if (o.final_reads) {
		struct lcr_kv_client *c;
		if (lcr_kv_client_open(&c, &cfg, 1, why, sizeof(why)) < 0) {
			fprintf(stderr, "kvcheck: %s\n", why);
			return 2;
		}
		for (uint64_t k = 1; k <= o.keys; k++) {
			size_t before = w[0].n;
			one_op(&w[0], c, LCR_LINZ_READ, k, 15000);
			if (w[0].ops[before].complete_ns == LCR_LINZ_PENDING)
				final_unanswered++;
		}
		lcr_kv_client_close(c);
	}

	size_t n = 0;
	uint64_t ok = 0, pending = 0, errors = 0, writes_acked = 0;
	for (uint32_t i = 0; i < o.clients; i++) {
		n += w[i].n;
		ok += w[i].ok;
		pending += w[i].pending;
		errors += w[i].errors;
	}
	struct lcr_linz_op *all = malloc((n ? n : 1) * sizeof(*all));
	bool *all_delete = malloc((n ? n : 1) * sizeof(*all_delete));
	size_t k = 0;
	for (uint32_t i = 0; i < o.clients; i++) {
		memcpy(all + k, w[i].ops, w[i].n * sizeof(*all));
		if (w[i].n)
			memcpy(all_delete + k, w[i].is_delete, w[i].n * sizeof(*all_delete));
		k += w[i].n;
	}
	for (size_t i = 0; i < n; i++)
		if (all[i].complete_ns != LCR_LINZ_PENDING &&
		    (all[i].kind == LCR_LINZ_WRITE ||
		     (all[i].kind == LCR_LINZ_CAS && all[i].cas_ok)))
			writes_acked++;
	if (o.history)
		write_history(o.history, all, all_delete, n);

	struct lcr_linz_result res;
	uint64_t t0 = now_ns();
	int rc = lcr_linz_check(all, n, 20000000, &res);
	double check_ms = (double)(now_ns() - t0) / 1e6;
	int status = 0;
	const char *verdict = "linearizable";
	if (rc < 0) {
		fprintf(stderr, "kvcheck: the checker failed: %s\n", strerror(-rc));
		status = 4;
		verdict = "error";
	} else if (!res.ok && !res.gave_up) {
		fprintf(stderr, "kvcheck: NOT LINEARIZABLE (key %s%" PRIu64 "): %s\n", o.key_prefix,
			res.key, res.why);
		status = 1;
		verdict = "violation";
	} else if (!res.ok) {
		fprintf(stderr, "kvcheck: inconclusive: key %s%" PRIu64 " needs more search\n",
			o.key_prefix, res.key);
		status = 4;
		verdict = "inconclusive";
	} else if (ok == 0) {
		fprintf(stderr, "kvcheck: no operation completed\n");
		status = 3;
	} else if (final_unanswered) {
		fprintf(stderr, "kvcheck: %" PRIu64 " final reads got no answer\n",
			final_unanswered);
		status = 3;
	}
	printf("{\"ops\":%zu,\"ok\":%" PRIu64 ",\"pending\":%" PRIu64 ",\"errors\":%" PRIu64
	       ",\"writes_acked\":%" PRIu64 ",\"ops_per_s\":%.0f,\"clients\":%u,\"keys\":%u,"
	       "\"final_reads\":%s,\"linearizable\":%s,\"verdict\":\"%s\",\"states\":%" PRIu64
	       ",\"check_ms\":%.1f}\n",
	       n, ok, pending, errors, writes_acked, (double)ok / load_s, o.clients, o.keys,
	       o.final_reads ? "true" : "false", status == 0 || status == 3 ? "true" : "false",
	       verdict, rc == 0 ? res.states : 0, check_ms);
	for (uint32_t i = 0; i < o.clients; i++) {
		free(w[i].ops);
		free(w[i].is_delete);
		free(w[i].seen);
	}
	free(w);
	free(all);
	free(all_delete);
	return status;
}
