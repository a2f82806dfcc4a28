/* SPDX-License-Identifier: MIT */
/*
 * CRC32C: SSE4.2 instruction, three streams at once on long buffers, with a
 * slicing-by-8 fallback (see crc32c.h).
 *
 * Every lcore thread checksums, so the table and the choice of
 * implementation are set up once, before any of them can run: at load time
 * (a constructor), through pthread_once. A call that somehow comes first (from
 * another library's constructor) takes the same pthread_once, which makes it
 * wait for the one initialisation; afterwards the check is one acquire load,
 * a plain load on x86.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "crc32c.h"
#include "lcr_assert.h"

#define POLY 0x82f63b78u /* Castagnoli, reflected */

static uint32_t table[8][256];
static bool hw; /* the CPU has SSE4.2's crc32 */

/*
 * Three streams at once (hardware path): the crc32 instruction takes three
 * cycles before its result can feed the next one and one to start, so one
 * dependent chain runs at a third of what the unit can do. A buffer of at
 * least three blocks is cut into three, each checksummed from zero beside
 * the others, and the three are joined: a CRC register is linear, so the
 * register after A then B is shift(reg after A, |B| zero bytes) xor the
 * register of B alone. shift by a block's length is four table lookups
 * (zeros_long, zeros_short: the operator "append that many zero bytes",
 * one table per byte of the register), built once at init.
 */
#define BLOCK_LONG  8192u
#define BLOCK_SHORT 256u
static uint32_t zeros_long[4][256], zeros_short[4][256];

/* A GF(2) 32x32 matrix as 32 columns: the image of each bit. */
static uint32_t gf2_apply(const uint32_t *m, uint32_t v)
{
	uint32_t sum = 0;
	for (uint32_t i = 0; v; i++, v >>= 1)
		if (v & 1)
			sum ^= m[i];
	return sum;
}

/* out = a after b (a and b commute here: both are powers of one operator). */
static void gf2_mul(uint32_t *out, const uint32_t *a, const uint32_t *b)
{
	uint32_t t[32];
	for (int i = 0; i < 32; i++)
		t[i] = gf2_apply(a, b[i]);
	memcpy(out, t, sizeof(t));
}

/* The tables that shift a register past `len` zero bytes. */
static void zeros_table(uint32_t t[4][256], uint32_t len)
{
	uint32_t op[32], base[32];
	/* One zero bit, on the reflected register: shift right, and the
	 * polynomial where a one fell out. */
	base[0] = POLY;
	for (int i = 1; i < 32; i++)
		base[i] = 1u << (i - 1);
	for (int i = 0; i < 32; i++)
		op[i] = 1u << i; /* identity */
	for (uint64_t n = (uint64_t)len * 8; n; n >>= 1) {
		if (n & 1)
			gf2_mul(op, base, op);
		gf2_mul(base, base, base);
	}
	for (uint32_t k = 0; k < 4; k++)
		for (uint32_t b = 0; b < 256; b++)
			t[k][b] = gf2_apply(op, b << (8 * k));
}

static inline uint32_t zeros_shift(const uint32_t t[4][256], uint32_t c)
{
	return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}
static bool ready;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (POLY & (0u - (c & 1)));
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
	zeros_table(zeros_long, BLOCK_LONG);
	zeros_table(zeros_short, BLOCK_SHORT);
#if defined(__x86_64__)
	__builtin_cpu_init(); /* may run before the compiler's own constructor */
	hw = __builtin_cpu_supports("sse4.2");
#endif
	__atomic_store_n(&ready, true, __ATOMIC_RELEASE);
}

__attribute__((constructor)) static void crc32c_load(void)
{
	pthread_once(&once, init);
}

static inline void ensure_init(void)
{
	if (lcr_unlikely(!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)))
		pthread_once(&once, init);
}

uint32_t lcr_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	ensure_init();
	crc = ~crc;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= crc;
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
		      table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
		      table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *buf,
							    size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc;

	/* Three streams of a block each, joined (above). */
	for (int pass = 0; pass < 2; pass++) {
		const uint32_t blk = pass == 0 ? BLOCK_LONG : BLOCK_SHORT;
		const uint32_t(*z)[256] = pass == 0 ? zeros_long : zeros_short;
		while (len >= 3 * (size_t)blk) {
			uint64_t c1 = 0, c2 = 0;
			for (uint32_t i = 0; i < blk; i += 8) {
				uint64_t w0, w1, w2;
				memcpy(&w0, p + i, 8);
				memcpy(&w1, p + blk + i, 8);
				memcpy(&w2, p + 2 * blk + i, 8);
				c = __builtin_ia32_crc32di(c, w0);
				c1 = __builtin_ia32_crc32di(c1, w1);
				c2 = __builtin_ia32_crc32di(c2, w2);
			}
			c = zeros_shift(z, (uint32_t)c) ^ (uint32_t)c1;
			c = zeros_shift(z, (uint32_t)c) ^ (uint32_t)c2;
			p += 3 * (size_t)blk;
			len -= 3 * (size_t)blk;
		}
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return ~c32;
}

uint32_t lcr_crc32c(uint32_t crc, const void *buf, size_t len)
{
	ensure_init();
	return hw ? crc32c_hw(crc, buf, len) : lcr_crc32c_sw(crc, buf, len);
}
#else
uint32_t lcr_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return lcr_crc32c_sw(crc, buf, len);
}
#endif
