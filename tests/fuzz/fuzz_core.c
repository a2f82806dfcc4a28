/* Fuzz the Raft core with arbitrary peer messages between legitimate ticks, flushes, proposals and
 * reads: it must never abort, and storage gets only entries it takes. */
/*
 * Peer messages are untrusted input: whatever their fields say, the core must
 * drop or answer them, count what it drops, and keep its invariants. What the
 * owner does (storage completions, apply progress) follows the contract, as
 * the runtime would. Any abort (LCR_ASSERT) is a finding, and so is an
 * LCR_CMD_APPEND carrying an entry storage would refuse (check_append):
 * entries, of peers and of proposals, come with arbitrary types and lengths.
 *
 * Built for libFuzzer with clang (LLVMFuzzerTestOneInput), and with
 * -DLCR_FUZZ_STANDALONE as a plain program that feeds N seeded random inputs,
 * so gcc builds and CI run it too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "fuzz_input.h"

/* Small numbers most of the time, anything sometimes. */
static uint64_t num(struct input *in)
{
	uint8_t k = (uint8_t)take(in, 1);
	if (k < 200)
		return k % 12;
	if (k < 250)
		return take(in, 2);
	return take(in, 8);
}

/* Mostly a type storage takes (blank, normal), sometimes any other. */
static uint32_t entry_type(struct input *in)
{
	uint8_t k = (uint8_t)take(in, 1);
	if (k < 200)
		return LCR_ENTRY_BLANK + k % 2;
	if (k < 240)
		return k % 5;
	return (uint32_t)take(in, 4);
}

/* Mostly short, sometimes at the entry bound, sometimes anything. */
static uint32_t entry_len(struct input *in)
{
	uint8_t k = (uint8_t)take(in, 1);
	if (k < 200)
		return k % 16;
	if (k < 240)
		return LCR_ENTRY_MAX - 2 + k % 4;
	return (uint32_t)take(in, 4);
}

static struct lcr_vote vote(struct input *in)
{
	struct lcr_vote v = { { num(in), (uint32_t)num(in) % 5 }, take(in, 1) & 1 };
	return v;
}

static struct lcr_log_id lid(struct input *in)
{
	struct lcr_log_id id = { { num(in), (uint32_t)num(in) % 5 }, num(in) };
	return id;
}

struct owner {
	struct lcr_core *c;
	struct lcr_io_id io_last; /* newest io handed to "storage" */
	bool io_pending;
	struct lcr_log_id apply_to;
	bool apply_pending;
	struct lcr_entry ents[64];
	uint8_t payload[64]; /* what every entry's data points at: the core never reads it */
};

/* Give an entry arbitrary type, length and data pointer, mostly plausible ones. */
static void entry_body(struct owner *o, struct input *in, struct lcr_entry *e)
{
	e->type = entry_type(in);
	e->len = entry_len(in);
	e->data = take(in, 1) % 16 ? o->payload : NULL;
}

/*
 * What storage takes (io/log_batch.c asserts the type, refuses the length):
 * the core hands it nothing else, whatever its peers or its owner gave it.
 */
static void check_append(const struct lcr_cmd *cmd)
{
	for (uint32_t i = 0; i < cmd->append.n; i++) {
		const struct lcr_entry *e = &cmd->append.entries[i];
		if ((e->type != LCR_ENTRY_BLANK && e->type != LCR_ENTRY_NORMAL) ||
		    e->len > LCR_ENTRY_MAX || (e->len > 0 && !e->data)) {
			fprintf(stderr,
				"fuzz_core: APPEND of index %llu: type %u, %u bytes, data %p\n",
				(unsigned long long)e->id.index, e->type, e->len, e->data);
			abort();
		}
	}
}

static void drain(struct owner *o)
{
	uint32_t n;
	const struct lcr_cmd *cmds = lcr_core_commands(o->c, &n);
	for (uint32_t i = 0; i < n; i++) {
		switch (cmds[i].type) {
		case LCR_CMD_SAVE_VOTE:
			o->io_last = cmds[i].save_vote.io;
			o->io_pending = true;
			break;
		case LCR_CMD_APPEND:
			check_append(&cmds[i]);
			o->io_last = cmds[i].append.io;
			o->io_pending = true;
			break;
		case LCR_CMD_TRUNCATE:
			o->io_last = cmds[i].truncate.io;
			o->io_pending = true;
			break;
		case LCR_CMD_APPLY:
			o->apply_to = cmds[i].apply.last;
			o->apply_pending = true;
			break;
		default:
			break;
		}
	}
}

static void run(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct lcr_core_config cfg;
	struct lcr_core_restore rs;
	struct owner o;
	uint64_t now = 1000000000ull;

	memset(&o, 0, sizeof(o));
	lcr_core_config_default(&cfg, 2);
	cfg.membership.n_configs = 1;
	cfg.membership.configs[0].n = 3;
	for (uint32_t i = 0; i < 3; i++)
		cfg.membership.configs[0].ids[i] = i + 1;
	cfg.enable_pre_vote = take(&in, 1) & 1;
	cfg.leader_runs_max = 16;
	cfg.respond_max = 8;
	cfg.reads_max = 4;
	memset(&rs, 0, sizeof(rs));
	if (lcr_core_new(&o.c, &cfg, &rs) < 0)
		abort();
	lcr_core_start(o.c, now);
	drain(&o);

	for (int steps = 0; steps < 400 && in.n > 0; steps++) {
		struct lcr_event ev;
		struct lcr_msg m;
		memset(&ev, 0, sizeof(ev));
		memset(&m, 0, sizeof(m));
		uint8_t op = (uint8_t)take(&in, 1);
		now += num(&in) * 7000000ull;
		ev.now_ns = now;
		switch (op % 10) {
		case 0: /* time passes */
			ev.type = LCR_EV_TICK;
			lcr_core_step(o.c, &ev);
			break;
		case 1: /* storage catches up, as storage does: the newest io */
			if (o.io_pending) {
				o.io_pending = false;
				ev.type = LCR_EV_IO_FLUSHED;
				ev.io = o.io_last;
				lcr_core_step(o.c, &ev);
			}
			break;
		case 2: /* the state machine applies what it was told to */
			if (o.apply_pending) {
				o.apply_pending = false;
				ev.type = LCR_EV_APPLIED;
				ev.applied = o.apply_to;
				lcr_core_step(o.c, &ev);
			}
			break;
		case 3: { /* a client write, not always a good one */
			uint32_t n = (uint32_t)num(&in) % 8 + 1;
			for (uint32_t i = 0; i < n; i++)
				entry_body(&o, &in, &o.ents[i]);
			lcr_core_propose(o.c, now, o.ents, n);
			break;
		}
		case 4: { /* a read */
			uint64_t rid;
			lcr_core_read(o.c, now, take(&in, 1) & 1 ? LCR_READ_INDEX : LCR_READ_LEASE,
				      &rid);
			break;
		}
		case 5: /* a trigger */
			ev.type = LCR_EV_TRIGGER_ELECT + (uint32_t)(take(&in, 1) % 3);
			ev.transfer_to = (uint32_t)num(&in) % 5;
			ev.elect.pre_vote = take(&in, 1) & 1;
			lcr_core_step(o.c, &ev);
			break;
		case 6: /* a transport error */
			ev.type = LCR_EV_NET_ERROR;
			ev.net.target = (uint32_t)num(&in) % 5;
			ev.net.stream_id = num(&in);
			ev.net.err = (uint32_t)num(&in) % 7;
			lcr_core_step(o.c, &ev);
			break;
		default: { /* an arbitrary message from a peer */
			m.type = (uint32_t)num(&in) % 7;
			m.from = (uint32_t)num(&in) % 5;
			m.to = take(&in, 1) % 8 ? 2 : (uint32_t)num(&in);
			switch (m.type) {
			case LCR_MSG_VOTE_REQ:
				m.vote_req.vote = vote(&in);
				m.vote_req.last_log_id = lid(&in);
				m.vote_req.transfer_from = vote(&in);
				m.vote_req.leadership_transfer = take(&in, 1) & 1;
				m.vote_req.pre_vote = take(&in, 1) & 1;
				break;
			case LCR_MSG_VOTE_RESP:
				m.vote_resp.vote = vote(&in);
				m.vote_resp.req_vote = vote(&in);
				m.vote_resp.last_log_id = lid(&in);
				m.vote_resp.granted = take(&in, 1) & 1;
				m.vote_resp.pre_vote = take(&in, 1) & 1;
				break;
			case LCR_MSG_APPEND_REQ: {
				m.append_req.vote = vote(&in);
				m.append_req.prev = lid(&in);
				m.append_req.leader_commit = lid(&in);
				m.append_req.stream_id = num(&in);
				m.append_req.inflight_id = num(&in);
				m.append_req.send_ns = num(&in);
				m.append_req.send_seq = num(&in);
				uint32_t n = (uint32_t)num(&in) % 9;
				struct lcr_log_id at = m.append_req.prev;
				for (uint32_t i = 0; i < n; i++) {
					/* Mostly consecutive and plausible, sometimes not. */
					if (take(&in, 1) % 4) {
						at.index++;
						if (take(&in, 1) % 3 == 0)
							at.lid = m.append_req.vote.lid;
					} else {
						at = lid(&in);
					}
					o.ents[i].id = at;
					entry_body(&o, &in, &o.ents[i]);
				}
				m.append_req.n_entries = n;
				m.append_req.entries = n ? o.ents : NULL;
				break;
			}
			case LCR_MSG_APPEND_RESP:
				m.append_resp.result = (uint32_t)num(&in) % 5;
				m.append_resp.vote = vote(&in);
				m.append_resp.log_id = lid(&in);
				m.append_resp.stream_id = num(&in);
				m.append_resp.inflight_id = num(&in);
				m.append_resp.send_ns = now - num(&in);
				m.append_resp.send_seq = num(&in);
				break;
			case LCR_MSG_TRANSFER_LEADER:
				m.transfer.from_leader = vote(&in);
				m.transfer.to = (uint32_t)num(&in) % 5;
				m.transfer.last_log_id = lid(&in);
				break;
			}
			ev.type = LCR_EV_MSG;
			ev.msg = &m;
			lcr_core_step(o.c, &ev);
			break;
		}
		}
		drain(&o);
	}
	lcr_core_free(o.c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size);
	return 0;
}

#ifdef LCR_FUZZ_STANDALONE
int main(int argc, char **argv)
{
	unsigned long runs = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
	static uint8_t buf[4096];
	uint64_t x = 0x1234567;

	for (unsigned long r = 0; r < runs; r++) {
		size_t n = 64 + (x % (sizeof(buf) - 64));
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)fuzz_next(&x);
		run(buf, n);
	}
	printf("fuzz_core: %lu random inputs, no abort\n", runs);
	return 0;
}
#endif
