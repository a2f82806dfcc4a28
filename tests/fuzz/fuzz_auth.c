/* Fuzz authenticated datagrams: lcr_auth_open agrees with the trailer's definition, on any bytes.
 */
/*
 * lcr_auth_open (dpdk-net/auth.c) parses its trailer from untrusted bytes:
 * the boot, the counter and the tag of whatever arrived. The input is a
 * script of ops against one receiver (a fixed cluster key, an alg and a
 * number of senders it keeps chosen by the first byte):
 *
 *   SEAL       a sender context (nodes 2..5; node 5's on another channel)
 *              seals bytes from the input, shared or bound (the client
 *              port's variant); the datagram is kept
 *   OPEN       a kept datagram is opened as it is (the first time, or a
 *              replay), or changed: one byte, cut, lengthened, claimed by
 *              another sender, or with another bound
 *   RAW        arbitrary bytes, claimed by any sender (the seeds hold
 *              datagrams sealed by earlier runs: they verify)
 *   RESTART    a sender starts again with a newer boot (and its old boot
 *              can no longer make a context: -EALREADY)
 *
 * Every answer is checked against a model written from auth.h alone: the
 * session key (BLAKE2b of the label, cluster, sender and boot under the
 * cluster key), the tag (libsodium's AEAD over the datagram, boot, counter
 * and bound, empty plaintext, nonce = counter and channel), the sender's
 * boot (older: OLD_BOOT, before the tag), the replay window (a counter
 * taken once, none LCR_AUTH_WINDOW or more below the highest) and the
 * senders kept (the one heard least recently gives its place). And, as
 * properties of their own: a datagram sealed and opened the first time
 * verifies; changed in any one byte, or claimed by another sender, it never
 * does; opened again it is a replay (unless its sender was forgotten: the
 * model says when); a refusal leaves the senders' state as it was; open
 * never writes the datagram (open_bound puts it back); nothing allocates
 * after init, and everything is freed.
 *
 * Built for libFuzzer with clang (LLVMFuzzerTestOneInput), and with
 * -DLCR_FUZZ_STANDALONE as a plain program that runs N inputs (seed
 * scripts with a few random changes and random bytes, alternately; files
 * named instead of N are run as inputs; "--seeds DIR" writes the seeds).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth.h"
#include "fuzz_input.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz_auth: check failed: %s (%s:%d)\n", #x, __FILE__,     \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define CLUSTER	   0x1c4a7ull
#define CONTEXTS   4 /* senders 2..5 */
#define KEPT_MAX   64
#define DGRAM_MAX  1400
#define STEPS_MAX  3000
#define SENDERS_IN 8 /* senders a RAW op may claim: 0..7 */

static const uint8_t cluster_key[LCR_AUTH_KEY_BYTES] = {
	0x6c, 0x63, 0x72, 0x61, 0x66, 0x74, 0x2d, 0x66, 0x75, 0x7a, 0x7a,
	0x2d, 0x61, 0x75, 0x74, 0x68, 0x9e, 0x37, 0x79, 0xb9, 0x7f, 0x4a,
	0x7c, 0x15, 0xc2, 0xb2, 0xae, 0x3d, 0x27, 0xd4, 0xeb, 0x4f,
};

enum op_kind { A_SEAL, A_OPEN, A_RAW, A_RESTART, A_COUNT };
enum open_how { O_AS_IS, O_FLIP, O_CUT, O_LONGER, O_OTHER_SENDER, O_OTHER_BOUND, O_HOW };

struct kept {
	uint64_t sender;
	bool bound; /* sealed with lcr_auth_seal_shared_bound */
	uint64_t bound_value;
	uint32_t len; /* with the trailer */
	uint8_t buf[DGRAM_MAX + LCR_AUTH_TRAILER];
};

/* ---- the model: auth.h's definitions, written again ------------------------------ */

struct mpeer {
	uint64_t sender, boot, top, heard; /* heard: the model's tick of its last taking */
	uint32_t n_taken;
	uint64_t taken[STEPS_MAX]; /* counters taken in this boot */
};

static struct {
	uint32_t alg;
	uint32_t channel;
	uint32_t peers_max, n_peers;
	uint64_t tick;
	struct mpeer p[4];
} M;

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The tag a datagram of `len` bytes (trailer included) must carry. */
static void model_tag(uint64_t sender, const uint8_t *buf, size_t len, const uint64_t *bound,
		      uint8_t tag[LCR_AUTH_TAG_BYTES])
{
	static uint8_t ad[DGRAM_MAX + 2 * LCR_AUTH_TRAILER + 8];
	uint8_t msg[13 + 24], ks[32], nonce[12];
	uint64_t boot = get64(buf + len - LCR_AUTH_TRAILER);
	uint64_t counter = get64(buf + len - LCR_AUTH_TRAILER + 8);
	size_t ad_len = len - LCR_AUTH_TAG_BYTES;
	unsigned long long tag_len = 0;
	uint8_t none[1] = { 0 };

	memcpy(msg, "lcraft-mac-v1", 13);
	put64(msg + 13, CLUSTER);
	put64(msg + 21, sender);
	put64(msg + 29, boot);
	crypto_generichash_blake2b(ks, sizeof(ks), msg, sizeof(msg), cluster_key,
				   sizeof(cluster_key));
	put64(nonce, counter);
	for (int i = 0; i < 4; i++)
		nonce[8 + i] = (uint8_t)(M.channel >> (8 * i));
	CHECK(ad_len + 8 <= sizeof(ad));
	memcpy(ad, buf, ad_len);
	if (bound) {
		put64(ad + ad_len, *bound);
		ad_len += 8;
	}
	if (M.alg == LCR_AUTH_AES256GCM)
		crypto_aead_aes256gcm_encrypt_detached(none, tag, &tag_len, none, 0, ad, ad_len,
						       NULL, nonce, ks);
	else
		crypto_aead_chacha20poly1305_ietf_encrypt_detached(none, tag, &tag_len, none, 0, ad,
								   ad_len, NULL, nonce, ks);
	CHECK(tag_len == LCR_AUTH_TAG_BYTES);
}

static struct mpeer *model_peer(uint64_t sender)
{
	for (uint32_t i = 0; i < M.n_peers; i++)
		if (M.p[i].sender == sender)
			return &M.p[i];
	return NULL;
}

static bool model_fresh(const struct mpeer *p, uint64_t c)
{
	if (c == 0)
		return false;
	if (c > p->top)
		return true;
	if (p->top - c >= LCR_AUTH_WINDOW)
		return false;
	for (uint32_t i = 0; i < p->n_taken; i++)
		if (p->taken[i] == c)
			return false;
	return true;
}

/* What lcr_auth_open must answer, and the model's state after it. */
static uint32_t model_open(uint64_t sender, const uint8_t *buf, size_t len, const uint64_t *bound)
{
	uint8_t tag[LCR_AUTH_TAG_BYTES];

	if (len < LCR_AUTH_TRAILER)
		return LCR_AUTH_SHORT;
	uint64_t boot = get64(buf + len - LCR_AUTH_TRAILER);
	uint64_t counter = get64(buf + len - LCR_AUTH_TRAILER + 8);
	struct mpeer *p = model_peer(sender);
	if (p && boot < p->boot)
		return LCR_AUTH_OLD_BOOT;
	model_tag(sender, buf, len, bound, tag);
	if (sodium_memcmp(tag, buf + len - LCR_AUTH_TAG_BYTES, sizeof(tag)) != 0)
		return LCR_AUTH_BAD_MAC;
	if (!p) {
		/* A new sender: a free place, or the least recently heard one's. */
		if (M.n_peers < M.peers_max) {
			p = &M.p[M.n_peers++];
		} else {
			p = &M.p[0];
			for (uint32_t i = 1; i < M.n_peers; i++)
				if (M.p[i].heard < p->heard)
					p = &M.p[i];
		}
		p->sender = sender;
		p->boot = 0;
	}
	if (boot > p->boot || p->boot == 0) {
		p->boot = boot;
		p->top = 0;
		p->n_taken = 0;
	}
	if (!model_fresh(p, counter))
		return LCR_AUTH_REPLAYED;
	/* Counters that fell out of the window are refused by `top` alone. */
	uint32_t k = 0;
	uint64_t top = counter > p->top ? counter : p->top;
	for (uint32_t i = 0; i < p->n_taken; i++)
		if (top - p->taken[i] < LCR_AUTH_WINDOW)
			p->taken[k++] = p->taken[i];
	p->n_taken = k;
	CHECK(p->n_taken < STEPS_MAX);
	p->taken[p->n_taken++] = counter;
	p->top = top;
	p->heard = ++M.tick;
	return LCR_AUTH_OK;
}

/* ---- the run --------------------------------------------------------------------- */

static struct {
	struct lcr_auth_rx rx;
	struct lcr_auth_tx tx[CONTEXTS];
	uint64_t boot[CONTEXTS];
	struct lcr_auth_key key;
	struct kept kept[KEPT_MAX];
	struct kept lost;
	uint32_t n_kept, kept_next;
	uint64_t opens;
	long allocs, frees;
	bool after_init;
} R;

static uint64_t boot_base = 1ull << 32; /* each run's boots above the last run's */
static bool aes_ok;
static bool trace; /* FUZZ_AUTH_TRACE set: every open and its answer */

static void *count_alloc(void *ctx, size_t size)
{
	(void)ctx;
	CHECK(!R.after_init);
	R.allocs++;
	return malloc(size);
}

static void count_free(void *ctx, void *p)
{
	(void)ctx;
	R.frees++;
	free(p);
}

static uint64_t context_sender(uint32_t i)
{
	return 2 + i;
}

static uint32_t context_channel(uint32_t i)
{
	return i == 3 ? 1 : 0; /* node 5 seals for another lcore: never verifies here */
}

/* The receiver's answer, checked against the model and the properties of every open. */
static uint32_t open_checked(uint64_t sender, uint8_t *buf, size_t len, const uint64_t *bound)
{
	static uint8_t before[DGRAM_MAX + 2 * LCR_AUTH_TRAILER + 8];
	static struct lcr_auth_peer peers[4];
	static uint32_t index[16];
	struct lcr_auth_rx *r = &R.rx;
	uint32_t n_peers = r->n_peers, slots = r->index_mask + 1;

	CHECK(len <= sizeof(before) && slots <= 16 && n_peers <= 4);
	memcpy(before, buf, len);
	memcpy(peers, r->peers, sizeof(peers[0]) * n_peers);
	memcpy(index, r->index, sizeof(index[0]) * slots);
	uint64_t accepted = r->st.accepted;
	uint32_t want = model_open(sender, buf, len, bound);
	uint32_t got = bound ? lcr_auth_open_bound(r, sender, buf, len, *bound)
			     : lcr_auth_open(r, sender, buf, len);
	if (got != want)
		fprintf(stderr, "fuzz_auth: sender %llu, %zu bytes%s: open says %s, the model %s\n",
			(unsigned long long)sender, len, bound ? " (bound)" : "",
			lcr_auth_drop_name(got), lcr_auth_drop_name(want));
	CHECK(got == want);
	if (trace)
		fprintf(stderr, "open: sender %llu, %zu bytes%s: %s\n", (unsigned long long)sender,
			len, bound ? " (bound)" : "", lcr_auth_drop_name(got));
	CHECK(memcmp(before, buf, len) == 0); /* never written (open_bound: put back) */
	R.opens++;
	uint64_t counted = r->st.accepted;
	for (uint32_t d = 1; d < LCR_AUTH_DROP_MAX; d++)
		counted += r->st.drops[d];
	CHECK(counted == R.opens);
	if (got != LCR_AUTH_OK) {
		/* A refusal leaves the senders as they were. */
		CHECK(r->st.accepted == accepted);
		CHECK(r->n_peers == n_peers);
		CHECK(memcmp(peers, r->peers, sizeof(peers[0]) * n_peers) == 0);
		CHECK(memcmp(index, r->index, sizeof(index[0]) * slots) == 0);
	} else {
		CHECK(r->n_peers <= r->peers_max);
	}
	return got;
}

static struct kept *keep(void)
{
	struct kept *k = &R.kept[R.kept_next];
	R.kept_next = (R.kept_next + 1) % KEPT_MAX;
	if (R.n_kept < KEPT_MAX)
		R.n_kept++;
	return k;
}

static void op_seal(struct input *in, uint32_t sel)
{
	uint32_t i = sel % CONTEXTS;
	uint8_t how = (uint8_t)take(in, 1);
	uint32_t len = (uint32_t)take(in, 2) % (DGRAM_MAX + 1);
	struct kept *k = how & 8 ? &R.lost : keep(); /* lost: its counter is used all the same */

	k->sender = context_sender(i);
	for (uint32_t b = 0; b < len; b++)
		k->buf[b] = (uint8_t)take(in, 1);
	k->bound = how & 1;
	if (k->bound) {
		k->bound_value = take(in, 8);
		k->len =
			(uint32_t)lcr_auth_seal_shared_bound(&R.tx[i], k->buf, len, k->bound_value);
	} else {
		k->len = (uint32_t)(how & 2 ? lcr_auth_seal_shared(&R.tx[i], k->buf, len)
					    : lcr_auth_seal(&R.tx[i], k->buf, len));
	}
	CHECK(k->len == len + LCR_AUTH_TRAILER);
	CHECK(get64(k->buf + len) == R.boot[i]);
	CHECK(get64(k->buf + len + 8) == lcr_auth_sealed(&R.tx[i]));
	if (!(how & 4))
		return;
	/* Opened at once: a sealed datagram verifies the first time (one sealed
	 * for another lcore never does). */
	uint32_t got = open_checked(k->sender, k->buf, k->len, k->bound ? &k->bound_value : NULL);
	CHECK((got == LCR_AUTH_OK) == (context_channel(i) == 0));
}

static void op_open(struct input *in)
{
	static uint8_t buf[DGRAM_MAX + 2 * LCR_AUTH_TRAILER + 8];
	uint8_t sel = (uint8_t)take(in, 1), how = (uint8_t)take(in, 1);
	uint32_t pos = (uint32_t)take(in, 2);
	uint8_t flip = (uint8_t)(take(in, 1) | 1);

	if (R.n_kept == 0)
		return;
	const struct kept *k = &R.kept[sel % R.n_kept];
	uint64_t sender = k->sender, bound = k->bound_value;
	size_t len = k->len;
	memcpy(buf, k->buf, len);
	switch (how % O_HOW) {
	case O_AS_IS:
		break;
	case O_FLIP:
		buf[pos % len] ^= flip;
		break;
	case O_CUT:
		len -= 1 + pos % len;
		break;
	case O_LONGER:
		for (uint32_t i = 0; i < 1 + pos % 16; i++)
			buf[len++] = flip;
		break;
	case O_OTHER_SENDER:
		sender = sender + 1 + pos % 6;
		break;
	default:
		bound ^= (uint64_t)flip << (8 * (pos % 8));
		break;
	}
	struct mpeer *mp = model_peer(k->sender);
	bool replay = how % O_HOW == O_AS_IS && mp && mp->boot == get64(buf + len - 32) &&
		      !model_fresh(mp, get64(buf + len - 24));
	/* O_OTHER_BOUND on a datagram sealed without one: opened with one. */
	bool with_bound = k->bound || how % O_HOW == O_OTHER_BOUND;
	uint32_t got = open_checked(sender, buf, len, with_bound ? &bound : NULL);
	if (how % O_HOW != O_AS_IS)
		CHECK(got != LCR_AUTH_OK); /* changed in any way: never taken */
	if (replay)
		CHECK(got == LCR_AUTH_REPLAYED);
}

static void op_raw(struct input *in)
{
	static uint8_t buf[DGRAM_MAX + LCR_AUTH_TRAILER];
	uint8_t how = (uint8_t)take(in, 1);
	uint32_t len = (uint32_t)take(in, 2) % (sizeof(buf) + 1);
	uint64_t sender = how % SENDERS_IN, bound = 0;

	for (uint32_t b = 0; b < len; b++)
		buf[b] = (uint8_t)take(in, 1);
	if (how & 0x80)
		bound = take(in, 8);
	open_checked(sender, buf, len, how & 0x80 ? &bound : NULL);
}

static void op_restart(uint32_t sel, struct input *in)
{
	uint32_t i = sel % CONTEXTS;
	uint64_t old = R.boot[i];

	R.boot[i] += 1 + take(in, 1) % 4;
	CHECK(lcr_auth_tx_init(&R.tx[i], &R.key, context_sender(i), R.boot[i],
			       context_channel(i)) == 0);
	/* Its old boot (or any not newer) can no longer make a context. */
	struct lcr_auth_tx again;
	CHECK(lcr_auth_tx_init(&again, &R.key, context_sender(i), old, context_channel(i)) ==
	      -EALREADY);
	CHECK(lcr_auth_tx_init(&again, &R.key, context_sender(i), R.boot[i], context_channel(i)) ==
	      -EALREADY);
}

static void run(struct input *in)
{
	struct lcr_allocator alloc = { .alloc = count_alloc, .free = count_free, .ctx = NULL };
	uint8_t cfg = (uint8_t)take(in, 1);

	memset(&R, 0, sizeof(R));
	memset(&M, 0, sizeof(M));
	M.alg = (cfg & 1) && aes_ok ? LCR_AUTH_AES256GCM : LCR_AUTH_CHACHA20POLY1305;
	M.channel = 0;
	M.peers_max = 1 + (cfg >> 1) % 4;
	R.key.alg = M.alg;
	R.key.cluster = CLUSTER;
	memcpy(R.key.key, cluster_key, sizeof(cluster_key));
	CHECK(lcr_auth_rx_init(&R.rx, &R.key, M.channel, M.peers_max, &alloc) == 0);
	R.after_init = true;
	boot_base += 1u << 20;
	for (uint32_t i = 0; i < CONTEXTS; i++) {
		R.boot[i] = boot_base + 16 * i;
		CHECK(lcr_auth_tx_init(&R.tx[i], &R.key, context_sender(i), R.boot[i],
				       context_channel(i)) == 0);
	}

	for (uint32_t n = 0; n < STEPS_MAX && in->n > 0; n++) {
		uint8_t op = (uint8_t)take(in, 1);
		switch ((op >> 2) % A_COUNT) {
		case A_SEAL:
			op_seal(in, op & 3);
			break;
		case A_OPEN:
			op_open(in);
			break;
		case A_RAW:
			op_raw(in);
			break;
		default:
			op_restart(op & 3, in);
			break;
		}
	}
	for (uint32_t i = 0; i < CONTEXTS; i++)
		lcr_auth_tx_wipe(&R.tx[i]);
	R.after_init = false;
	lcr_auth_rx_free(&R.rx);
	CHECK(R.allocs == R.frees);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	struct input in = { data, size };

	if (!init) {
		char why[256];
		CHECK(sodium_init() >= 0);
		aes_ok = lcr_auth_usable(LCR_AUTH_AES256GCM, why, sizeof(why)) == 0;
		init = true;
		trace = getenv("FUZZ_AUTH_TRACE") != NULL;
	}
	run(&in);
	return 0;
}

/* ---- seed scripts ------------------------------------------------------------------ */

#ifdef LCR_FUZZ_STANDALONE
struct script {
	uint8_t b[65536];
	size_t n;
};

static void sb(struct script *s, uint64_t v, unsigned bytes)
{
	CHECK(s->n + bytes <= sizeof(s->b));
	for (unsigned i = bytes; i-- > 0;)
		s->b[s->n++] = (uint8_t)(v >> (8 * i)); /* big end first, as take() reads */
}

/* SEAL on context i: how (1 bound, 2 shared, 4 open at once, 8 not kept), `len` bytes. */
static void s_seal(struct script *s, uint32_t i, uint32_t how, uint32_t len)
{
	sb(s, A_SEAL << 2 | i, 1);
	sb(s, how, 1);
	sb(s, len, 2);
	for (uint32_t k = 0; k < len; k++)
		sb(s, k * 7 + i, 1);
	if (how & 1)
		sb(s, 0xc0ffee00u + i, 8);
}

static void s_open(struct script *s, uint32_t kept, uint32_t how, uint32_t pos)
{
	sb(s, A_OPEN << 2, 1);
	sb(s, kept, 1);
	sb(s, how, 1);
	sb(s, pos, 2);
	sb(s, 0x20, 1);
}

static void s_raw(struct script *s, uint64_t sender, const uint8_t *b, uint32_t len)
{
	sb(s, A_RAW << 2, 1);
	sb(s, sender, 1);
	sb(s, len, 2);
	for (uint32_t k = 0; k < len; k++)
		sb(s, b[k], 1);
}

static void save(const char *dir, const char *name, const struct script *s)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(s->b, 1, s->n, f) == s->n);
	CHECK(fclose(f) == 0);
}

#define N_SEEDS 8

/*
 * Seed `i` into *s; its name. The sealed datagrams of "auth-raw-sealed" are
 * made here with boot 1 of node 2 (a fresh process: this boot is free); a
 * receiver of any later run takes them, since it derives the key of any boot.
 */
static const char *seed(uint32_t i, struct script *s)
{
	s->n = 0;
	switch (i) {
	case 0: /* sealed and opened; again (a replay); changed; another sender's */
		sb(s, 0x06, 1);
		for (uint32_t k = 0; k < 3; k++)
			s_seal(s, k % 2, 4, 20 + 30 * k);
		s_seal(s, 0, 0, 100);
		s_open(s, 3, O_AS_IS, 0);
		s_open(s, 3, O_AS_IS, 0);
		s_open(s, 0, O_FLIP, 5);
		s_open(s, 1, O_FLIP, 20 + 30 + 9); /* the trailer's counter */
		s_open(s, 2, O_CUT, 3);
		s_open(s, 2, O_LONGER, 3);
		s_open(s, 1, O_OTHER_SENDER, 0);
		return "auth-seal-open";
	case 1: /* the same with aes256gcm (where the CPU has it) and node 5's other channel */
		sb(s, 0x07, 1);
		for (uint32_t k = 0; k < 4; k++)
			s_seal(s, k, 4 | 2, 64);
		s_open(s, 1, O_FLIP, 64 + 31); /* the tag's last byte */
		s_open(s, 0, O_AS_IS, 0);
		return "auth-aes";
	case 2: /* bound to a value (the client port's answers) */
		sb(s, 0x06, 1);
		s_seal(s, 1, 1 | 4, 48);
		s_seal(s, 1, 1, 48);
		s_open(s, 1, O_OTHER_BOUND, 2);
		s_open(s, 1, O_AS_IS, 0);
		s_open(s, 1, O_AS_IS, 0);
		return "auth-bound";
	case 3: /* out of order within the window, then one below it */
		sb(s, 0x06, 1);
		s_seal(s, 0, 0, 10);
		for (uint32_t k = 0; k < 1100; k++)
			s_seal(s, 0, 8, 0);
		s_seal(s, 0, 0, 10);
		s_seal(s, 0, 0, 10);
		s_open(s, 2, O_AS_IS, 0);
		s_open(s, 1, O_AS_IS, 0);
		s_open(s, 0, O_AS_IS, 0);
		return "auth-window";
	case 4: /* a sender's new boot: its old datagrams are refused before the tag */
		sb(s, 0x06, 1);
		s_seal(s, 0, 4, 30);
		s_seal(s, 0, 0, 30);
		sb(s, A_RESTART << 2 | 0, 1);
		sb(s, 2, 1);
		s_seal(s, 0, 4, 30);
		s_open(s, 1, O_AS_IS, 0);
		return "auth-restart";
	case 5: /* one sender kept: the second takes its place, and its datagrams open again */
		sb(s, 0x00, 1);
		s_seal(s, 0, 4, 16);
		s_seal(s, 1, 4, 16);
		s_open(s, 0, O_AS_IS, 0);
		s_open(s, 1, O_AS_IS, 0);
		return "auth-evicted";
	case 6: { /* datagrams sealed earlier, as raw bytes: they verify; changed, never */
		struct lcr_auth_key key = { .alg = LCR_AUTH_CHACHA20POLY1305, .cluster = CLUSTER };
		struct lcr_auth_tx tx;
		uint8_t d[3][64 + LCR_AUTH_TRAILER];
		memcpy(key.key, cluster_key, sizeof(key.key));
		CHECK(lcr_auth_tx_init(&tx, &key, 2, 1, 0) == 0);
		for (uint32_t k = 0; k < 3; k++) {
			memset(d[k], 'a' + k, 64);
			CHECK(lcr_auth_seal(&tx, d[k], 64) == sizeof(d[k]));
		}
		sb(s, 0x06, 1);
		s_raw(s, 2, d[1], sizeof(d[1]));
		s_raw(s, 2, d[0], sizeof(d[0]));
		s_raw(s, 2, d[1], sizeof(d[1]));
		d[2][40] ^= 1;
		s_raw(s, 2, d[2], sizeof(d[2]));
		s_raw(s, 3, d[0], sizeof(d[0]));
		s_seal(s, 0, 4, 8);
		d[2][40] ^= 1;
		s_raw(s, 2, d[2], sizeof(d[2]));
		return "auth-raw-sealed";
	}
	default: { /* arbitrary bytes: too short, a trailer of zeros, of ones */
		uint8_t b[80];
		sb(s, 0x06, 1);
		memset(b, 0, sizeof(b));
		s_raw(s, 2, b, 31);
		s_raw(s, 2, b, 32);
		memset(b, 0xff, sizeof(b));
		s_raw(s, 4, b, 80);
		s_raw(s, 0, b, 0);
		return "auth-raw-garbage";
	}
	}
}

static int write_seeds(const char *dir)
{
	struct script s;

	for (uint32_t i = 0; i < N_SEEDS; i++) {
		const char *n = seed(i, &s);
		save(dir, n, &s);
	}
	printf("fuzz_auth: %u seeds in %s\n", N_SEEDS, dir);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--seeds") == 0)
		return write_seeds(argv[2]);
	if (argc > 1 && (argv[1][0] < '0' || argv[1][0] > '9')) {
		static struct script r;
		return fuzz_replay("fuzz_auth", argc - 1, argv + 1, LLVMFuzzerTestOneInput, r.b,
				   sizeof(r.b));
	}
	unsigned long runs = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
	static struct script s;
	uint64_t x = 0x2545f4914f6cdd1dull;

	for (unsigned long n_run = 0; n_run < runs; n_run++) {
		if (n_run % 2 == 0) {
			/* A seed (not the raw-sealed one: this process sealed its boot
			 * already) with a few bytes changed, maybe cut. */
			uint32_t i = (uint32_t)(fuzz_next(&x) % N_SEEDS);
			seed(i == 6 ? 7 : i, &s);
			fuzz_mutate(&x, s.b, &s.n);
		} else {
			s.n = fuzz_random_input(&x, s.b, 4096);
		}
		LLVMFuzzerTestOneInput(s.b, s.n);
	}
	printf("fuzz_auth: %lu runs (seed scripts changed, random bytes); every open as auth.h "
	       "defines it\n",
	       runs);
	return 0;
}
#endif
