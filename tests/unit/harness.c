/* SPDX-License-Identifier: MIT */
/* In-memory cluster harness for the core's unit tests (see harness.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void *must(void *p)
{
	if (!p) {
		fprintf(stderr, "harness: out of memory\n");
		abort();
	}
	return p;
}

void th_config(struct lcr_core_config *cfg, uint32_t id, uint32_t n)
{
	lcr_core_config_default(cfg, id);
	cfg->membership.n_configs = 1;
	cfg->membership.configs[0].n = n;
	for (uint32_t i = 0; i < n; i++)
		cfg->membership.configs[0].ids[i] = i + 1;
	cfg->seed = 42;
}

struct th_node *th_node(struct th_cluster *cl, uint32_t id)
{
	return &cl->nodes[id - 1];
}

struct lcr_core_status th_status(struct th_cluster *cl, uint32_t id)
{
	struct lcr_core_status st;
	lcr_core_status(th_node(cl, id)->core, &st);
	return st;
}

void th_init(struct th_cluster *cl, uint32_t n, void (*tweak)(struct lcr_core_config *cfg))
{
	memset(cl, 0, sizeof(*cl));
	cl->n = n;
	cl->now = 1000 * MS;
	cl->q = must(calloc(TH_MSGS_MAX, sizeof(*cl->q)));
	cl->scratch = must(calloc(TH_LOG_MAX, sizeof(*cl->scratch)));
	for (uint32_t i = 0; i < n; i++) {
		struct th_node *nd = &cl->nodes[i];
		struct lcr_core_config cfg;
		struct lcr_core_restore rs = { 0 };
		int err;
		th_config(&cfg, i + 1, n);
		if (tweak)
			tweak(&cfg);
		nd->id = i + 1;
		nd->up = true;
		nd->auto_flush = true;
		nd->log = must(calloc(TH_LOG_MAX, sizeof(*nd->log)));
		if ((err = lcr_core_new(&nd->core, &cfg, &rs)) < 0) {
			fprintf(stderr, "harness: lcr_core_new: %s\n", lcr_strerror(err));
			abort();
		}
		lcr_core_start(nd->core, cl->now);
		th_process(cl, nd);
	}
}

void th_free(struct th_cluster *cl)
{
	for (uint32_t i = 0; i < cl->n; i++) {
		lcr_core_free(cl->nodes[i].core);
		free(cl->nodes[i].log);
	}
	free(cl->q);
	free(cl->scratch);
}

static void enqueue(struct th_cluster *cl, struct th_node *from, const struct lcr_msg *m)
{
	if (m->type < 16)
		cl->sent[m->type]++;
	if (cl->cut[m->from][m->to])
		return;
	if (m->type == LCR_MSG_APPEND_REQ && cl->cut_appends[m->from][m->to])
		return;
	if (cl->q_len == TH_MSGS_MAX) {
		fprintf(stderr, "harness: message queue full\n");
		abort();
	}
	struct th_msg *qm = &cl->q[(cl->q_head + cl->q_len) % TH_MSGS_MAX];
	qm->m = *m;
	qm->sender = from->id;
	qm->dropped = false;
	cl->q_len++;
}

void th_process(struct th_cluster *cl, struct th_node *nd)
{
	uint32_t n;
	const struct lcr_cmd *cmds = lcr_core_commands(nd->core, &n);
	bool applied = false;

	for (uint32_t i = 0; i < n; i++) {
		const struct lcr_cmd *c = &cmds[i];
		switch (c->type) {
		case LCR_CMD_SAVE_VOTE:
			nd->vote = c->save_vote.vote;
			nd->io_last = c->save_vote.io;
			nd->io_pending = true;
			break;
		case LCR_CMD_APPEND:
			for (uint32_t k = 0; k < c->append.n; k++) {
				const struct lcr_entry *e = &c->append.entries[k];
				struct th_entry *t = &nd->log[e->id.index - 1];
				if (e->id.index != nd->n + 1 || e->id.index > TH_LOG_MAX)
					abort();
				t->id = e->id;
				t->type = e->type;
				t->len = e->len > TH_PAYLOAD ? TH_PAYLOAD : e->len;
				if (t->len)
					memcpy(t->data, e->data, t->len);
				nd->n++;
			}
			nd->io_last = c->append.io;
			nd->io_pending = true;
			break;
		case LCR_CMD_TRUNCATE:
			nd->n = c->truncate.after.index;
			nd->io_last = c->truncate.io;
			nd->io_pending = true;
			break;
		case LCR_CMD_SEND:
			enqueue(cl, nd, &c->send);
			break;
		case LCR_CMD_APPLY:
			nd->applied = c->apply.last;
			applied = true;
			break;
		case LCR_CMD_READS_READY:
			nd->reads_ready = c->reads_ready.read_id;
			break;
		case LCR_CMD_READS_FAILED:
			nd->reads_failed_last = c->reads_failed.last;
			nd->reads_failed_err = c->reads_failed.err;
			break;
		case LCR_CMD_ROLE:
			nd->role = c->role.role;
			nd->leader = c->role.leader;
			break;
		}
	}
	if (applied) {
		struct lcr_event ev = { .type = LCR_EV_APPLIED,
					.now_ns = cl->now,
					.applied = nd->applied };
		th_step(cl, nd, &ev);
	}
}

int th_step(struct th_cluster *cl, struct th_node *nd, struct lcr_event *ev)
{
	ev->now_ns = cl->now;
	int rc = lcr_core_step(nd->core, ev);
	th_process(cl, nd);
	return rc;
}

void th_flush(struct th_cluster *cl, struct th_node *nd)
{
	if (!nd->io_pending)
		return;
	nd->io_pending = false;
	struct lcr_event ev = { .type = LCR_EV_IO_FLUSHED, .io = nd->io_last };
	th_step(cl, nd, &ev);
}

static void deliver(struct th_cluster *cl, struct th_msg *qm)
{
	struct th_node *to = th_node(cl, qm->m.to);
	struct lcr_msg m = qm->m;

	if (!to->up)
		return;
	if (m.type == LCR_MSG_APPEND_REQ && m.append_req.n_entries) {
		struct th_node *from = th_node(cl, qm->sender);
		uint64_t first = m.append_req.prev.index + 1;
		for (uint32_t i = 0; i < m.append_req.n_entries; i++) {
			const struct th_entry *t = &from->log[first + i - 1];
			cl->scratch[i].id = t->id;
			cl->scratch[i].type = t->type;
			cl->scratch[i].len = t->len;
			cl->scratch[i].data = t->data;
		}
		m.append_req.entries = cl->scratch;
	}
	struct lcr_event ev = { .type = LCR_EV_MSG, .msg = &m };
	th_step(cl, to, &ev);
	cl->delivered++;
}

uint64_t th_run(struct th_cluster *cl, uint64_t max_steps)
{
	uint64_t steps = 0;

	while (steps < max_steps) {
		bool did = false;
		for (uint32_t i = 0; i < cl->n; i++) {
			struct th_node *nd = &cl->nodes[i];
			if (nd->up && nd->auto_flush && nd->io_pending) {
				th_flush(cl, nd);
				did = true;
			}
		}
		if (cl->q_len > 0) {
			struct th_msg qm = cl->q[cl->q_head];
			cl->q_head = (cl->q_head + 1) % TH_MSGS_MAX;
			cl->q_len--;
			deliver(cl, &qm);
			did = true;
		}
		if (!did)
			break;
		steps++;
	}
	return steps;
}

void th_advance(struct th_cluster *cl, uint64_t ns)
{
	uint64_t end = cl->now + ns;

	while (cl->now < end) {
		cl->now += 1 * MS;
		for (uint32_t i = 0; i < cl->n; i++) {
			struct th_node *nd = &cl->nodes[i];
			if (!nd->up)
				continue;
			struct lcr_event ev = { .type = LCR_EV_TICK };
			th_step(cl, nd, &ev);
		}
		th_run(cl, 100000);
	}
}

void th_elect(struct th_cluster *cl, uint32_t id)
{
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_ELECT };
	th_step(cl, th_node(cl, id), &ev);
	th_run(cl, 100000);
}

int th_propose(struct th_cluster *cl, uint32_t id, uint32_t n, uint8_t fill)
{
	static struct lcr_entry ents[4096];
	static uint8_t payload[TH_PAYLOAD];
	struct th_node *nd = th_node(cl, id);

	if (n > 4096)
		abort();
	memset(payload, fill, sizeof(payload));
	for (uint32_t i = 0; i < n; i++) {
		ents[i].type = LCR_ENTRY_NORMAL;
		ents[i].len = 16;
		ents[i].data = payload;
	}
	int rc = lcr_core_propose(nd->core, cl->now, ents, n);
	th_process(cl, nd);
	return rc;
}
