/* AppendEntries from datagrams to a log arena: the receive path, for an instruction count. */
/*
 * valgrind --tool=callgrind --toggle-collect='rx_all*' stream_rx_bench [mode] [n] [bytes]
 * (the pattern: the compiler may rename it, rx_all.constprop.0)
 *
 * Usage: stream_rx_bench [single|frag|reorder] [messages] [entry bytes]
 *
 *   single   one entry per AppendEntries (one datagram each), in order
 *   frag     eight entries per AppendEntries (several datagrams each), in order
 *   reorder  as single, each pair of datagrams swapped
 *
 * The datagrams are cut by the sender (lcr_stx_send) before anything is
 * measured. rx_all() then does, per datagram, what the UDP transport and the
 * log do: check the header and CRC (lcr_wire_open), hand the datagram to the
 * stream layer (lcr_srx_on_dgram), decode each message it hands up
 * (lcr_wire_decode_msg) and copy each entry into an arena with a CRC over it,
 * as lcr_log_append frames it. Exit status 1 if any message came up wrong.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "stream.h"
#include "wire.h"

#define ENTS_MAX 64

struct bench {
	uint8_t **dg; /* sealed datagrams, in the order they are passed in */
	uint32_t *dg_len;
	uint32_t n_dg;
	struct lcr_srx rx;
	struct lcr_entry ents[ENTS_MAX];
	uint8_t *arena; /* where the entries go, as a log would put them */
	size_t arena_bytes, arena_used;
	uint64_t msgs, entries, bad;
	uint32_t crc;
};

static void on_msg(void *ctx, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct bench *b = ctx;
	struct lcr_msg m;

	memset(&m, 0, sizeof(m));
	if (lcr_wire_decode_msg(p, len, type, &m, b->ents, ENTS_MAX) != LCR_DROP_NONE ||
	    m.type != LCR_MSG_APPEND_REQ) {
		b->bad++;
		return;
	}
	b->msgs++;
	for (uint32_t i = 0; i < m.append_req.n_entries; i++) {
		const struct lcr_entry *e = &m.append_req.entries[i];
		if (b->arena_used + e->len > b->arena_bytes)
			b->arena_used = 0;
		memcpy(b->arena + b->arena_used, e->data, e->len);
		b->crc = lcr_crc32c(b->crc, b->arena + b->arena_used, e->len);
		b->arena_used += e->len;
		b->entries++;
	}
}

__attribute__((noinline)) static void rx_all(struct bench *b)
{
	for (uint32_t i = 0; i < b->n_dg; i++) {
		struct lcr_wire_hdr h;
		if (lcr_wire_open(b->dg[i], b->dg_len[i], 7, &h) != LCR_DROP_NONE) {
			b->bad++;
			continue;
		}
		if (lcr_srx_on_dgram(&b->rx, &h, b->dg[i] + LCR_WIRE_HDR, on_msg, b) !=
		    LCR_DROP_NONE)
			b->bad++;
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "single";
	uint32_t n = argc > 2 ? (uint32_t)atoi(argv[2]) : 100000;
	uint32_t entry_bytes = argc > 3 ? (uint32_t)atoi(argv[3]) : 1024;
	uint32_t per_msg = strcmp(mode, "frag") == 0 ? 8 : 1;
	bool swap = strcmp(mode, "reorder") == 0;
	static struct bench b;
	struct lcr_stream_opts o;
	struct lcr_stx tx;
	struct lcr_dgram_view d;

	if (n == 0 || entry_bytes == 0 || entry_bytes > 60000 ||
	    (strcmp(mode, "single") && strcmp(mode, "frag") && !swap)) {
		fprintf(stderr, "usage: stream_rx_bench [single|frag|reorder] [messages] "
				"[entry bytes]\n");
		return 2;
	}
	lcr_stream_opts_default(&o);
	if (lcr_stx_init(&tx, &o, 7, 1, 1, 2) < 0 || lcr_srx_init(&b.rx, &o) < 0)
		return 1;

	/* The messages: AppendEntries of per_msg entries, cut into datagrams. */
	uint8_t *data = malloc(entry_bytes), *enc = malloc(LCR_WIRE_MSG_MAX);
	struct lcr_entry ents[8];
	size_t cap = 1024;
	b.dg = malloc(cap * sizeof(*b.dg));
	b.dg_len = malloc(cap * sizeof(*b.dg_len));
	for (uint32_t i = 0; i < entry_bytes; i++)
		data[i] = (uint8_t)(i * 7);
	for (uint32_t k = 0; k < n; k++) {
		struct lcr_msg m = { .type = LCR_MSG_APPEND_REQ, .from = 1, .to = 2 };
		m.append_req.vote.lid = (struct lcr_leader_id){ 3, 1 };
		m.append_req.vote.committed = true;
		m.append_req.prev.lid = m.append_req.vote.lid;
		m.append_req.prev.index = (uint64_t)k * per_msg;
		m.append_req.leader_commit = m.append_req.prev;
		m.append_req.stream_id = 1;
		m.append_req.send_seq = k + 1;
		for (uint32_t i = 0; i < per_msg; i++) {
			ents[i].id.lid = m.append_req.vote.lid;
			ents[i].id.index = m.append_req.prev.index + 1 + i;
			ents[i].type = LCR_ENTRY_NORMAL;
			ents[i].len = entry_bytes;
			ents[i].data = data;
		}
		m.append_req.n_entries = per_msg;
		m.append_req.entries = ents;
		size_t len = lcr_wire_encode_msg(enc, LCR_WIRE_MSG_MAX, &m);
		if (len == 0 || lcr_stx_send(&tx, LCR_WIRE_APPEND_REQ, enc, (uint32_t)len, 0) < 0)
			return 1;
		while (lcr_stx_next(&tx, 0, &d)) {
			if (b.n_dg == cap) {
				cap *= 2;
				b.dg = realloc(b.dg, cap * sizeof(*b.dg));
				b.dg_len = realloc(b.dg_len, cap * sizeof(*b.dg_len));
			}
			b.dg[b.n_dg] = malloc(d.len);
			memcpy(b.dg[b.n_dg], d.buf, d.len);
			b.dg_len[b.n_dg++] = d.len;
		}
		struct lcr_wire_ack a = { .stream = tx.stream,
					  .cum = tx.next_seq - 1,
					  .window = 1024 };
		lcr_stx_on_ack(&tx, &a, 0);
	}
	if (swap)
		for (uint32_t i = 0; i + 1 < b.n_dg; i += 2) {
			uint8_t *t = b.dg[i];
			uint32_t l = b.dg_len[i];
			b.dg[i] = b.dg[i + 1];
			b.dg_len[i] = b.dg_len[i + 1];
			b.dg[i + 1] = t;
			b.dg_len[i + 1] = l;
		}
	b.arena_bytes = 64u << 20;
	b.arena = malloc(b.arena_bytes);

	rx_all(&b);

	printf("%s: %u messages, %u datagrams, %llu entries delivered, crc %08x\n", mode, n, b.n_dg,
	       (unsigned long long)b.entries, b.crc);
	if (b.bad || b.msgs != n || b.entries != (uint64_t)n * per_msg) {
		fprintf(stderr, "wrong: %llu bad, %llu messages\n", (unsigned long long)b.bad,
			(unsigned long long)b.msgs);
		return 1;
	}
	/* Everything back (the sanitizer build checks for leaks). */
	for (uint32_t i = 0; i < b.n_dg; i++)
		free(b.dg[i]);
	free(b.dg);
	free(b.dg_len);
	free(b.arena);
	free(data);
	free(enc);
	lcr_stx_free(&tx);
	lcr_srx_free(&b.rx);
	return 0;
}
