/* SPDX-License-Identifier: MIT */
/*
 * Linearizable reads on the leader (openraft docs/protocol/read.md):
 *   read_log_id = max(committed, noop); serve once applied >= read_log_id and
 *   - ReadIndex: a quorum acknowledged a message sent after the read arrived
 *     (a heartbeat is broadcast for it), proving no newer leader had been
 *     elected; "after" is by the leader's send sequence, not by time;
 *   - LeaseRead: the quorum lease is valid now, else the read fails at once.
 * Reads wait in one FIFO ring; both conditions only become true in arrival
 * order, so the head decides. Results go out as id ranges, O(1) commands.
 */
#include "core_int.h"

int lcr_read_start(struct lcr_core *c, uint32_t policy, uint64_t *read_id)
{
	if (!c->leader.active)
		return -LCR_ENOTLEADER;
	if (c->leader.transfer_to != 0)
		return -LCR_ETRANSFER;
	if (c->reads_len == c->reads_max)
		return -LCR_EFULL;
	uint64_t need_seq = 0;
	if (policy == LCR_READ_LEASE) {
		if (!lcr_leader_lease_valid(c))
			return -LCR_ENOLEASE;
	} else {
		need_seq = c->leader.send_seq;
		lcr_leader_heartbeat(c);
	}
	struct lcr_pending_read *r = &c->reads[(c->reads_head + c->reads_len) % c->reads_max];
	r->read_id = c->next_read_id++;
	r->need_seq = need_seq;
	r->lease = policy == LCR_READ_LEASE;
	r->read_index = c->committed.index > c->leader.noop.index ? c->committed.index
								  : c->leader.noop.index;
	r->deadline_ns = c->now_ns + c->read_timeout_ns;
	c->reads_len++;
	*read_id = r->read_id;
	lcr_reads_progress(c);
	return 0;
}

static void emit_ready(struct lcr_core *c, uint64_t upto)
{
	struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_READS_READY);
	cmd->reads_ready.read_id = upto;
}

static void emit_failed(struct lcr_core *c, uint64_t first, uint64_t last, int err)
{
	struct lcr_cmd *cmd = lcr_core_emit(c, LCR_CMD_READS_FAILED);
	cmd->reads_failed.first = first;
	cmd->reads_failed.last = last;
	cmd->reads_failed.err = err;
}

void lcr_reads_progress(struct lcr_core *c)
{
	uint64_t acked, ready = 0, fail_first = 0, fail_last = 0;

	if (c->reads_len == 0)
		return;
	acked = c->leader.active ? lcr_leader_quorum_acked_seq(c) : 0;
	while (c->reads_len > 0) {
		struct lcr_pending_read *r = &c->reads[c->reads_head];
		bool ok = (r->lease || acked > r->need_seq) && c->applied.index >= r->read_index;
		if (ok) {
			if (fail_first) {
				emit_failed(c, fail_first, fail_last, -LCR_ETIMEDOUT);
				fail_first = 0;
			}
			ready = r->read_id;
		} else if (c->now_ns > r->deadline_ns) {
			if (ready) {
				emit_ready(c, ready);
				ready = 0;
			}
			if (!fail_first)
				fail_first = r->read_id;
			fail_last = r->read_id;
		} else {
			break;
		}
		c->reads_head = (c->reads_head + 1) % c->reads_max;
		c->reads_len--;
	}
	if (ready)
		emit_ready(c, ready);
	if (fail_first)
		emit_failed(c, fail_first, fail_last, -LCR_ETIMEDOUT);
}

void lcr_reads_fail_all(struct lcr_core *c, int err)
{
	if (c->reads_len == 0)
		return;
	uint64_t first = c->reads[c->reads_head].read_id;
	emit_failed(c, first, first + c->reads_len - 1, err);
	c->reads_head = 0;
	c->reads_len = 0;
}

uint64_t lcr_reads_next_timer(const struct lcr_core *c)
{
	if (c->reads_len == 0)
		return 0;
	return c->reads[c->reads_head].deadline_ns + 1;
}
