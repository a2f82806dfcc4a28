/* SPDX-License-Identifier: MIT */
/*
 * Linearizability checker for key/value register histories (Wing & Gong's
 * search with Lowe's memoisation, as in Porcupine), used by the deterministic
 * simulation and by multi-process tests.
 *
 * A history is a list of client operations on registers, each with the time
 * the client sent it and the time it got the answer. Every key is an
 * independent register whose initial value is 0 ("absent"), so keys are
 * checked separately (P-compositionality). The history is linearizable if
 * every key's operations can be put in one sequential order that respects
 * real time (a.complete_ns < b.invoke_ns puts a before b; equal times count
 * as concurrent) and that a single register would have produced.
 *
 * Operations whose outcome is unknown (complete_ns == LCR_LINZ_PENDING) may
 * take effect at any point after their invocation, or never. Such a read says
 * nothing and is ignored; such a CAS either succeeded (only possible when its
 * expected value matched) or had no effect. Such writes/CASes whose value no
 * op observed are ignored too, unless they could explain a failed CAS (by
 * overwriting the value it expected): those are kept, but only tried where a
 * failed CAS needs them.
 *
 * Test code: plain malloc/free, no global state, safe to call from several
 * threads on different histories.
 */
#ifndef LCR_LINZ_H
#define LCR_LINZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lcr_linz_kind {
	LCR_LINZ_WRITE = 1,
	LCR_LINZ_READ = 2,
	LCR_LINZ_CAS = 3,
};

/* complete_ns of an operation whose outcome is unknown (timed out, crashed). */
#define LCR_LINZ_PENDING UINT64_MAX

struct lcr_linz_op {
	uint32_t kind;	      /* enum lcr_linz_kind */
	uint32_t client;      /* for messages only */
	uint64_t key;	      /* each key is an independent register */
	uint64_t value;	      /* WRITE: written; READ: observed (0 = absent); CAS: new value */
	uint64_t expect;      /* CAS: expected current value (0 = absent) */
	bool cas_ok;	      /* CAS with known outcome: did it succeed */
	uint64_t invoke_ns;   /* when the client sent it */
	uint64_t complete_ns; /* when the client got the answer; LCR_LINZ_PENDING: unknown */
};

struct lcr_linz_result {
	bool ok;	 /* a linearization exists for every key */
	bool gave_up;	 /* inconclusive: some key hit state_limit, none definitely failed */
	uint64_t key;	 /* the key `why` talks about (smallest failing, else first given up) */
	uint64_t states; /* search states explored, all keys checked */
	char why[512];	 /* human explanation about res.key when !ok; "" when ok */
};

/*
 * Check whether the history ops[0..n) is linearizable. ops may be NULL when n
 * is 0 and is not modified; the operations may come in any order.
 *
 * Keys are checked in ascending order. The search of one key stops after
 * state_limit new states (0 means no limit); the key is then "given up" and
 * the remaining keys are still checked, because a definite violation there is
 * worth more than an inconclusive answer.
 *
 * On return 0, *res says:
 *   ok                      the history is linearizable (why is "");
 *   !ok && !gave_up         a definite violation on res->key, explained in why
 *                           with input indexes, clients, times and values;
 *   !ok && gave_up          no violation found, but res->key (the first such
 *                           key) was not searched to the end.
 *
 * Cost: memory is about one small record per explored state (the set of
 * linearized operations is stored as a window around the real-time frontier,
 * so it grows with concurrency, not with history length); time is close to
 * linear in the number of operations for typical histories (about 0.12 ms for
 * 1000 ops of 5 overlapping clients) but exponential in concurrency in the
 * worst case, hence state_limit. No recursion: length is bounded by memory.
 *
 * Values need not be unique, but unique values (per key) keep the search
 * small; 0 is the initial value, so writing 0 is a delete.
 *
 * Returns 0, -EINVAL (res NULL, ops NULL with n > 0, more than 2^30 ops, an
 * unknown kind, or complete_ns < invoke_ns), or -ENOMEM. On error *res is not
 * meaningful.
 */
int lcr_linz_check(const struct lcr_linz_op *ops, size_t n, uint64_t state_limit,
		   struct lcr_linz_result *res);

#endif /* LCR_LINZ_H */
