/* SPDX-License-Identifier: MIT */
/*
 * Small pieces the transport tests on loopback share (test_auth.c,
 * test_peer_learn.c, test_reply_acks.c): the clock, a counter out of a
 * transport's metrics, an AppendEntries to send and its answer. Include after
 * cmocka.h.
 */
#ifndef LCR_NET_TEST_H
#define LCR_NET_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net_host.h"

static inline uint64_t nt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A counter out of the transport's metrics ("key":N, the first), 0 when absent. */
static inline uint64_t nt_metric(struct lcr_net *net, const char *key)
{
	static char buf[65536];
	char pat[64];
	assert_true(lcr_net_metrics_json(net, buf, sizeof(buf)) > 0);
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(buf, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* An AppendEntries of `n` entries after index `prev` from `from` (the leader of term 1). */
static inline void nt_append(struct lcr_net_group *g, uint32_t from, uint32_t to, uint64_t prev,
			     uint32_t n)
{
	struct lcr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LCR_MSG_APPEND_REQ;
	m.from = from;
	m.to = to;
	m.append_req.vote = (struct lcr_vote){ { 1, from }, true };
	m.append_req.prev = (struct lcr_log_id){ { 1, from }, prev };
	m.append_req.stream_id = 1;
	m.append_req.inflight_id = prev + 1;
	m.append_req.send_seq = prev + 1;
	m.append_req.n_entries = n;
	lcr_net_send(g, &m, nt_now_ns());
}

/* The entries of an AppendEntries being sent (a host's attach): `len` bytes
 * of `data` each, in `ents` (room for `max`). */
static inline void nt_attach(struct lcr_msg *m, struct lcr_entry *ents, uint32_t max, uint32_t len,
			     const uint8_t *data)
{
	assert_true(m->append_req.n_entries <= max);
	for (uint32_t i = 0; i < m->append_req.n_entries; i++) {
		ents[i].id = m->append_req.prev;
		ents[i].id.index += i + 1;
		ents[i].type = LCR_ENTRY_NORMAL;
		ents[i].len = len;
		ents[i].data = data;
	}
	m->append_req.entries = ents;
}

/* Node `self` takes the AppendEntries `m` and answers OK at once. */
static inline void nt_answer_append(struct lcr_net_group *g, uint32_t self, const struct lcr_msg *m)
{
	struct lcr_msg r = { .type = LCR_MSG_APPEND_RESP, .from = self, .to = m->from };
	r.append_resp.result = LCR_APPEND_OK;
	r.append_resp.vote = m->append_req.vote;
	r.append_resp.log_id = m->append_req.prev;
	r.append_resp.log_id.index += m->append_req.n_entries;
	r.append_resp.stream_id = m->append_req.stream_id;
	r.append_resp.inflight_id = m->append_req.inflight_id;
	r.append_resp.send_seq = m->append_req.send_seq;
	lcr_net_send(g, &r, nt_now_ns());
}

#endif /* LCR_NET_TEST_H */
