/* SPDX-License-Identifier: MIT */
/*
 * forge: one well-formed Raft datagram with a forged sender, as an attacker on
 * the network would send it (tests/net/forgery_test.py drives it).
 *
 *   forge --cluster C --dest HOST:PORT --to N --as N --kind KIND [options]
 *
 *   --bind HOST:PORT   the source address (default 127.0.0.1:0, a stranger's;
 *                      a member's address when that member is down)
 *   --group G          Raft group (default 1)
 *   --term T           the term of the forged vote (default 1)
 *   --prev T:N:I       prev log id of an AppendEntries (default 0:0:0)
 *   --key K --value V  the PUT an "append" carries (lcraft-node's key-value format)
 *   --stream S         the stream id of an "append" or "stream" datagram
 *
 * Kinds:
 *   vote      VOTE_REQ {term, as} with a last log id far ahead
 *   transfer  TRANSFER_LEADER from leader {term, as} to node `to`
 *   append    APPEND_REQ on a stream from "leader" {term, as}, one entry: the PUT
 *   stream    an empty APPEND_REQ (heartbeat) on stream S (default 2^64 - 1)
 *
 * The datagram is encoded and sealed with the library's own codec
 * (dpdk-net/wire.c): only its sender is a lie. Exit 0 once sent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kv.h"
#include "stream.h"
#include "wire.h"

static void usage(void)
{
	fprintf(stderr, "usage: forge --cluster C --dest HOST:PORT --to N --as N --kind "
			"vote|transfer|append|stream [--bind HOST:PORT] [--group G] [--term T] "
			"[--prev T:N:I] [--key K --value V] [--stream S]\n");
	exit(2);
}

static void addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	unsigned port;

	if (sscanf(s, "%63[^:]:%u", host, &port) != 2 || port > 65535) {
		fprintf(stderr, "forge: %s: expected HOST:PORT\n", s);
		exit(2);
	}
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		fprintf(stderr, "forge: %s: not an IPv4 address\n", host);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	uint64_t cluster = 0, term = 1, stream = 0;
	uint32_t to = 0, as = 0, group = 1;
	const char *kind = NULL, *key = "forged", *value = "by-a-stranger";
	struct sockaddr_in dest, bind_to;
	struct lcr_log_id prev = lcr_log_id_none();
	bool have_dest = false;

	addr("127.0.0.1:0", &bind_to);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--cluster"))
			cluster = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--dest")) {
			addr(v, &dest);
			have_dest = true;
		} else if (!strcmp(a, "--bind"))
			addr(v, &bind_to);
		else if (!strcmp(a, "--to"))
			to = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--as"))
			as = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--group"))
			group = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--term"))
			term = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--stream"))
			stream = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--kind"))
			kind = v;
		else if (!strcmp(a, "--key"))
			key = v;
		else if (!strcmp(a, "--value"))
			value = v;
		else if (!strcmp(a, "--prev")) {
			unsigned long long t, ix;
			unsigned nd;
			if (sscanf(v, "%llu:%u:%llu", &t, &nd, &ix) != 3)
				usage();
			prev = (struct lcr_log_id){ { t, nd }, ix };
		} else
			usage();
	}
	if (!cluster || !have_dest || !to || !as || !kind)
		usage();

	static uint8_t buf[LCR_WIRE_DGRAM_MAX];
	uint8_t put[LCR_WIRE_DGRAM_MAX];
	struct lcr_entry ent;
	struct lcr_msg m = { .from = as, .to = to };
	struct lcr_wire_hdr h = {
		.cluster = cluster, .group = group, .from = as, .to = to, .frag_count = 1
	};
	if (!strcmp(kind, "vote")) {
		m.type = LCR_MSG_VOTE_REQ;
		m.vote_req.vote = (struct lcr_vote){ { term, as }, false };
		m.vote_req.last_log_id = (struct lcr_log_id){ { term, as }, 1ull << 40 };
		h.type = LCR_WIRE_VOTE_REQ;
	} else if (!strcmp(kind, "transfer")) {
		m.type = LCR_MSG_TRANSFER_LEADER;
		m.transfer.from_leader = (struct lcr_vote){ { term, as }, true };
		m.transfer.to = to;
		m.transfer.last_log_id = prev;
		h.type = LCR_WIRE_TRANSFER;
	} else if (!strcmp(kind, "append") || !strcmp(kind, "stream")) {
		bool put_one = !strcmp(kind, "append");
		m.type = LCR_MSG_APPEND_REQ;
		m.append_req.vote = (struct lcr_vote){ { term, as }, true };
		m.append_req.prev = prev;
		m.append_req.stream_id = 1;
		m.append_req.inflight_id = 1;
		if (put_one) {
			struct lcr_client_req r = { .client = 0xf0f0f0f0,
						    .id = 1,
						    .op = LCR_CLIENT_PUT };
			r.key = (const uint8_t *)key;
			r.key_len = (uint32_t)strlen(key);
			r.value = (const uint8_t *)value;
			r.value_len = (uint32_t)strlen(value);
			size_t n = lcr_kv_encode(put, sizeof(put), &r);
			if (n == 0) {
				fprintf(stderr, "forge: the PUT does not encode\n");
				return 1;
			}
			ent = (struct lcr_entry){ .id = { { term, as }, prev.index + 1 },
						  .type = LCR_ENTRY_NORMAL,
						  .len = (uint32_t)n,
						  .data = put };
			m.append_req.n_entries = 1;
			m.append_req.entries = &ent;
			m.append_req.leader_commit = ent.id;
		}
		h.type = LCR_WIRE_APPEND_REQ;
		h.stream = stream ? stream : put_one ? lcr_stream_new_id() : UINT64_MAX;
		h.seq = 1;
	} else {
		usage();
	}
	size_t len = lcr_wire_encode_msg(buf + LCR_WIRE_HDR, sizeof(buf) - LCR_WIRE_HDR, &m);
	if (len == 0) {
		fprintf(stderr, "forge: the message does not encode\n");
		return 1;
	}
	h.len = (uint32_t)len;
	size_t dlen = lcr_wire_seal(buf, &h);

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&bind_to, sizeof(bind_to)) < 0) {
		fprintf(stderr, "forge: bind: %s\n", strerror(errno));
		return 1;
	}
	if (sendto(fd, buf, dlen, 0, (struct sockaddr *)&dest, sizeof(dest)) != (ssize_t)dlen) {
		fprintf(stderr, "forge: sendto: %s\n", strerror(errno));
		return 1;
	}
	close(fd);
	return 0;
}
