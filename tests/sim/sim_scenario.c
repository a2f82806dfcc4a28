/* SPDX-License-Identifier: MIT */
/*
 * Nemesis scenarios: fault sequences the random nemesis reaches only by luck,
 * orchestrated so that they happen in most seeds that pick them. A seed picks
 * at most one kind (sim_params.scenario); the nemesis starts it now and then,
 * and stays quiet until it ends. Each is a small state machine stepped after
 * every event (sim_scenario_step), acting on the network, on crashes and
 * restarts, and on triggered elections.
 *
 *   majority      A minority (1 .. (N-1)/2 nodes, the leader among them half
 *                 the time) is cut off both ways, made deaf (hears nothing;
 *                 Pre-Vote seeds only, see majority_start) or
 *                 mute (is heard by no one), while every other fault stops.
 *                 The nodes that can talk must elect one of them and commit a
 *                 new entry within SIM_MAJORITY_BOUND: liveness while the
 *                 fault persists, not only after healing.
 *   figure8       Raft's Figure 8 (§5.4.2). Elections run only when the
 *                 scenario triggers them. A stable leader A replicates a few
 *                 entries to a minority (alone, or with one partner of five)
 *                 and crashes; B, with a shorter log, is elected and appends
 *                 entries of its term nowhere but on its own disk, and
 *                 crashes; A is elected again and replicates its old entries
 *                 to a majority while every message carrying its new term's
 *                 entries (its no-op first) is lost; A crashes; B is elected
 *                 again and overwrites A's old entries. Counting replicas of
 *                 an earlier term's entries would have committed them.
 *   leader-reads  The leader is cut off (both ways, or mute) while half the
 *                 clients are pinned to it, reading only, and the others find
 *                 the new leader and write there: what the old leader serves
 *                 must stay linearizable.
 *   stale-transfer A leader A hands over to T; T's transfer vote requests
 *                 (the waiver of A's lease) are held back. Meanwhile B, which
 *                 cannot hear T and ranks below it, is elected in the same
 *                 term, and A acknowledges B: A now keeps a lease for B.
 *                 Then T's requests arrive, still naming A as the leader that
 *                 hands over. T's vote is above B's and its log as good as
 *                 A's (B's own entries are held back too), so only the lease
 *                 stands between A and a grant: A must refuse, since the
 *                 waiver comes from a leader it no longer follows
 *                 (lease-promise).
 */
#include <string.h>

#include "sim.h"

/*
 * How long a connected majority may take to commit while a minority is cut:
 * a lease the followers keep for the old leader (300 ms), an election timeout
 * (150-300 ms), a Pre-Vote round, a split vote or a greater-log wait (600 ms),
 * with room to spare (measured: docs/reliability.md).
 */
#define SIM_MAJORITY_BOUND (3000 * MS)

/* How long a figure-8 phase may wait for the election it triggered. */
#define FIG8_PHASE_MAX (2500 * MS)

enum { MAJ_CUT = 0, MAJ_DEAF = 1, MAJ_MUTE = 2 };
static const char *const fault_names[] = { "cut off", "deaf", "mute" };

enum {
	F8_STABLE = 1, /* wait for a leader A with its no-op committed */
	F8_MINORITY,   /* A appends entries only a minority receives */
	F8_ELECT_B,    /* A is down: elect B, whose log lacks them */
	F8_B_LEADS,    /* B appends entries of its term only on its own disk */
	F8_ELECT_A,    /* B is down, A back: elect A again */
	F8_WITHHOLD,   /* A replicates its old entries; its new term's are lost */
	F8_REELECT_B,  /* A is down, B back: elect B again */
};

enum {
	ST_STABLE = 1, /* wait for a leader A with its no-op committed; A hands over to T */
	ST_TRANSFER,   /* T stands (its requests held); B holds A's log: elect B */
	ST_B_LEADS,    /* once A keeps a lease for B, T's requests arrive */
	ST_LATE,       /* the voters answer them */
};

/* How long a stale-transfer phase may wait for what it needs. */
#define STALE_PHASE_MAX (400 * MS)
/*
 * How often a seed starts it. Each run changes leaders two or three times (B,
 * then whoever wins once T's higher vote stops B), and a seed with a small
 * run table (sim.c, fill_config) stops electing once its log holds that many
 * leaders' runs: long seeds that repeated it all along ran out.
 */
#define STALE_RUNS_MAX 3

const char *sim_scenario_name(uint32_t kind)
{
	static const char *const names[] = { "none", "majority", "figure8", "leader-reads",
					     "stale-transfer" };
	return kind <= SIM_SCEN_KINDS ? names[kind] : "?";
}

static uint32_t quorum(const struct sim_world *w)
{
	return w->par.nodes / 2 + 1;
}

static bool is_leader(struct sim_world *w, uint32_t id)
{
	const struct sim_node *n = sim_node(w, id);
	return id && n->up && n->st_valid && n->role == LCR_ROLE_LEADER;
}

static void trigger_elect(struct sim_world *w, uint32_t id)
{
	struct lcr_event ev = { .type = LCR_EV_TRIGGER_ELECT };
	sim_step_event(w, sim_node(w, id), &ev);
}

static void block_outbound(struct sim_world *w, uint32_t id, uint32_t except)
{
	for (uint32_t i = 1; i <= w->par.nodes; i++)
		if (i != id && i != except)
			w->blocked[id - 1][i - 1] = true;
}

static void next_phase(struct sim_world *w, uint32_t phase, uint64_t retry_in)
{
	w->scen.phase = phase;
	w->scen.phase_at = w->now;
	w->scen.retry_at = w->now + retry_in;
}

void sim_scenario_end(struct sim_world *w, bool done)
{
	struct sim_scenario *sc = &w->scen;
	uint32_t kind = sc->kind;
	bool no_elect = sc->no_elect;

	if (!kind)
		return;
	if (done)
		w->scen_done[kind]++;

	sim_trace(w, 0, "scenario %s %s (phase %u)", sim_scenario_name(kind),
		  done ? "done" : "abandoned", sc->phase);
	memset(sc, 0, sizeof(*sc));
	memset(w->blocked, 0, sizeof(w->blocked));
	for (uint32_t c = 0; c < SIM_CLIENTS_MAX; c++) {
		w->clients[c].pinned = 0;
		w->clients[c].reads_only = false;
	}
	for (uint32_t i = 1; i <= w->par.nodes; i++) {
		struct sim_node *n = sim_node(w, i);
		if (!n->up)
			sim_node_restart(w, n);
		else if (no_elect)
			sim_set_elect(w, n, true);
	}
	if (!w->healed)
		sim_schedule_nemesis(w);
}

/* ---- majority ------------------------------------------------------------------ */

static void majority_start(struct sim_world *w)
{
	struct sim_scenario *sc = &w->scen;
	uint32_t N = w->par.nodes, k = 1 + (uint32_t)sim_rnd_below(w, (N - 1) / 2);
	uint32_t leader = sim_find_leader(w), chosen = 0;

	memset(w->blocked, 0, sizeof(w->blocked));
	sim_calm(w);
	/*
	 * Deaf only with Pre-Vote. Without it, a deaf node whose log is as good
	 * as the others' keeps winning votes it never hears, each grant holding
	 * the voter's timer back (Raft §5.2): the majority elects only when a
	 * voter's timeout beats the deaf node's next one, by chance each round,
	 * which no bound holds (thesis §9.6, the reason Pre-Vote exists).
	 */
	sc->fault = (uint32_t)sim_rnd_below(w, 3);
	if (sc->fault == MAJ_DEAF && !w->par.pre_vote)
		sc->fault = sim_rnd_below(w, 2) ? MAJ_CUT : MAJ_MUTE;
	if (leader && sim_rnd_below(w, 2)) {
		sc->minority[leader - 1] = true;
		chosen++;
	}
	while (chosen < k) {
		uint32_t i = (uint32_t)sim_rnd_below(w, N);
		if (!sc->minority[i]) {
			sc->minority[i] = true;
			chosen++;
		}
	}
	for (uint32_t a = 0; a < N; a++)
		for (uint32_t b = 0; b < N; b++) {
			if (!sc->minority[a] || sc->minority[b])
				continue;
			if (sc->fault != MAJ_DEAF)
				w->blocked[a][b] = true; /* a is not heard */
			if (sc->fault != MAJ_MUTE)
				w->blocked[b][a] = true; /* a hears nothing */
		}
	for (uint32_t i = 0; i < N; i++) {
		const struct sim_node *n = &w->nodes[i];
		if (n->st_valid && n->st.committed.index > sc->commit_base)
			sc->commit_base = n->st.committed.index;
	}
	sim_trace(w, 0, "scenario majority: %u node(s) %s%s", k, fault_names[sc->fault],
		  leader && sc->minority[leader - 1] ? ", the leader among them" : "");
}

static void majority_step(struct sim_world *w)
{
	struct sim_scenario *sc = &w->scen;

	if (sc->phase == 2) {
		if (w->now >= sc->retry_at)
			sim_scenario_end(w, true);
		return;
	}
	for (uint32_t i = 0; i < w->par.nodes; i++) {
		struct sim_node *n = &w->nodes[i];
		if (sc->minority[i] || !is_leader(w, i + 1))
			continue;
		if (n->st.committed.index > sc->commit_base &&
		    n->st.committed.index >= n->st.noop.index) {
			sim_trace(w, n->id, "majority committed %llu after %llu ms",
				  (unsigned long long)n->st.committed.index,
				  (unsigned long long)((w->now - sc->started) / MS));
			/* Half the time the new leader hands over to another node of
			 * the majority, while the minority (if mute, it hears the
			 * transfer's vote requests) may still follow an older one. */
			uint32_t to = 1 + (uint32_t)sim_rnd_below(w, w->par.nodes);
			if (sim_rnd_below(w, 2) && to != n->id && !sc->minority[to - 1]) {
				struct lcr_event ev = { .type = LCR_EV_TRIGGER_TRANSFER,
							.transfer_to = to };
				sim_trace(w, n->id, "majority: transfer leadership to %u", to);
				sim_step_event(w, n, &ev);
				next_phase(w, 2, 200 * MS + sim_rnd_below(w, 400 * MS));
				return;
			}
			sim_scenario_end(w, true);
			return;
		}
	}
	uint64_t bound = SIM_MAJORITY_BOUND;
	if (w->now > sc->started + bound) {
		char cut[3 * SIM_NODES_MAX + 1] = "";
		for (uint32_t i = 0, o = 0; i < w->par.nodes; i++)
			if (sc->minority[i])
				o += (uint32_t)snprintf(cut + o, sizeof(cut) - o, " %u", i + 1);
		sim_violation(w, "liveness-majority",
			      "no leader among the connected majority committed within %llu ms "
			      "while node(s)%s were %s (leader: %u)",
			      (unsigned long long)(bound / MS), cut, fault_names[sc->fault],
			      sim_find_leader(w));
	}
}

/* ---- figure 8 ------------------------------------------------------------------ */

static uint32_t fig8_pick_b(struct sim_world *w)
{
	struct sim_scenario *sc = &w->scen;
	uint32_t best = 0;

	for (uint32_t i = 1; i <= w->par.nodes; i++) {
		const struct sim_node *n = sim_node(w, i);
		if (i == sc->a || sc->minority[i - 1] || !n->up || !n->st_valid)
			continue;
		if (!best || lcr_log_id_cmp(n->st.last, sim_node(w, best)->st.last) > 0)
			best = i;
	}
	return best;
}

/* From now on, the entries `id` appends as a new leader reach no one. */
static void fig8_withhold(struct sim_world *w, uint32_t id)
{
	const struct sim_node *n = sim_node(w, id);

	w->scen.withhold_from = id;
	w->scen.withhold_above = n->mem.n ? n->mem.e[n->mem.n - 1].id.lid.term : 0;
}

/* Elect `id` by triggering its election now and then; false once overdue. */
static bool fig8_elect(struct sim_world *w, uint32_t id)
{
	struct sim_scenario *sc = &w->scen;

	if (w->now > sc->phase_at + FIG8_PHASE_MAX) {
		sim_scenario_end(w, false);
		return false;
	}
	if (w->now >= sc->retry_at) {
		trigger_elect(w, id);
		sc->retry_at = w->now + 80 * MS;
	}
	return true;
}

static void fig8_step(struct sim_world *w)
{
	struct sim_scenario *sc = &w->scen;
	struct sim_node *a = sc->a ? sim_node(w, sc->a) : NULL;
	struct sim_node *b = sc->b ? sim_node(w, sc->b) : NULL;
	uint32_t leader;

	switch (sc->phase) {
	case F8_STABLE:
		leader = sim_find_leader(w);
		if (leader &&
		    sim_node(w, leader)->st.committed.index >= sim_node(w, leader)->st.noop.index) {
			sc->a = leader;
			uint32_t partner = 0;
			if (w->par.nodes >= 5)
				partner = leader % w->par.nodes + 1;
			if (partner)
				sc->minority[partner - 1] = true;
			block_outbound(w, leader, partner);
			for (uint64_t k = 2 + sim_rnd_below(w, 5); k > 0; k--)
				sim_propose(w, sim_node(w, leader));
			sim_trace(w, leader, "figure8: leader replicates to a minority");
			next_phase(w, F8_MINORITY, 5 * MS + sim_rnd_below(w, 25 * MS));
		} else if (w->now > sc->phase_at + FIG8_PHASE_MAX) {
			sim_scenario_end(w, false);
		} else if (w->now >= sc->retry_at) {
			trigger_elect(w, 1 + (uint32_t)sim_rnd_below(w, w->par.nodes));
			sc->retry_at = w->now + 100 * MS;
		}
		break;
	case F8_MINORITY:
		if (w->now < sc->retry_at)
			break;
		sim_node_crash(w, a, 1000000 * MS);
		memset(w->blocked, 0, sizeof(w->blocked));
		/* The followers' lease for A must run out before B can win. */
		next_phase(w, F8_ELECT_B, 320 * MS);
		break;
	case F8_ELECT_B:
		if (!sc->b && w->now >= sc->retry_at) {
			sc->b = fig8_pick_b(w);
			if (sc->b)
				fig8_withhold(w, sc->b);
		}
		if (!sc->b)
			break;
		if (is_leader(w, sc->b)) {
			block_outbound(w, sc->b, 0);
			for (uint64_t k = sim_rnd_below(w, 3); k > 0; k--)
				sim_propose(w, sim_node(w, sc->b));
			sim_trace(w, sc->b, "figure8: B leads, heard by no one");
			next_phase(w, F8_B_LEADS, 5 * MS + sim_rnd_below(w, 25 * MS));
			break;
		}
		fig8_elect(w, sc->b);
		break;
	case F8_B_LEADS:
		/* Its no-op (at least) must be on its own disk before it crashes. */
		if (w->now < sc->retry_at ||
		    (b->up &&
		     (b->disk.log.n == 0 ||
		      !lcr_leader_id_eq(b->disk.log.e[b->disk.log.n - 1].id.lid, b->st.vote.lid)) &&
		     w->now < sc->phase_at + 300 * MS))
			break;
		sim_node_crash(w, b, 1000000 * MS);
		memset(w->blocked, 0, sizeof(w->blocked));
		sim_node_restart(w, a);
		fig8_withhold(w, sc->a);
		next_phase(w, F8_ELECT_A, 0);
		break;
	case F8_ELECT_A:
		if (is_leader(w, sc->a)) {
			sc->old_last = a->st.noop.index - 1;
			sim_trace(w, sc->a, "figure8: A leads again; its new entries are lost");
			next_phase(w, F8_WITHHOLD, 0);
			break;
		}
		fig8_elect(w, sc->a);
		break;
	case F8_WITHHOLD: {
		if (!is_leader(w, sc->a)) {
			sim_scenario_end(w, false);
			break;
		}
		uint32_t have = 0;
		for (uint32_t i = 0; i < a->st.n_nodes; i++)
			have += a->st.matching[i].index >= sc->old_last;
		if (have < quorum(w) && w->now < sc->phase_at + 400 * MS)
			break;
		sim_node_crash(w, a, 1000000 * MS);
		sim_node_restart(w, b);
		next_phase(w, F8_REELECT_B, 0);
		break;
	}
	case F8_REELECT_B:
		if (is_leader(w, sc->b)) {
			sim_trace(w, sc->b, "figure8: B leads again over A's old entries");
			sim_scenario_end(w, true);
			break;
		}
		fig8_elect(w, sc->b);
		break;
	}
}

/* ---- leader reads ------------------------------------------------------------- */

static void reads_start(struct sim_world *w, uint32_t leader)
{
	struct sim_scenario *sc = &w->scen;
	bool mute = sim_rnd_below(w, 10) < 3;

	memset(w->blocked, 0, sizeof(w->blocked));
	sim_calm(w);
	sc->a = leader;
	for (uint32_t i = 1; i <= w->par.nodes; i++) {
		if (i == leader)
			continue;
		w->blocked[leader - 1][i - 1] = true;
		if (!mute)
			w->blocked[i - 1][leader - 1] = true;
	}
	for (uint32_t c = 0; c < w->par.clients; c += 2) {
		w->clients[c].pinned = leader;
		w->clients[c].reads_only = true;
		w->clients[c].target = leader;
	}
	sc->retry_at = w->now + 400 * MS + sim_rnd_below(w, 1000 * MS);
	sim_trace(w, leader, "scenario leader-reads: leader %s, clients pinned",
		  mute ? "mute" : "cut off");
}

static void reads_step(struct sim_world *w)
{
	struct sim_scenario *sc = &w->scen;
	uint32_t leader = sim_find_leader(w);

	if (leader && leader != sc->a)
		sc->phase = 2; /* a new leader while the old one takes reads */
	if (w->now >= sc->retry_at)
		sim_scenario_end(w, sc->phase == 2);
}

/* ---- stale transfer ----------------------------------------------------------- */

/* B and T: two nodes besides the leader, B the lower, so that B's vote in the
 * next term ranks below T's (leader ids order by term, then node). */
static void stale_pick(struct sim_world *w, uint32_t leader)
{
	struct sim_scenario *sc = &w->scen;
	uint32_t x, y;

	do
		x = 1 + (uint32_t)sim_rnd_below(w, w->par.nodes);
	while (x == leader);
	do
		y = 1 + (uint32_t)sim_rnd_below(w, w->par.nodes);
	while (y == leader || y == x);
	sc->b = x < y ? x : y;
	sc->to = x < y ? y : x;
}

static bool stale_overdue(struct sim_world *w, uint64_t max)
{
	if (w->now <= w->scen.phase_at + max)
		return false;
	sim_scenario_end(w, false);
	return true;
}

static void stale_step(struct sim_world *w)
{
	struct sim_scenario *sc = &w->scen;
	uint32_t leader;

	switch (sc->phase) {
	case ST_STABLE: {
		leader = sim_find_leader(w);
		const struct sim_node *l = leader ? sim_node(w, leader) : NULL;
		if (!l || l->st.transferring || l->st.committed.index < l->st.noop.index) {
			stale_overdue(w, FIG8_PHASE_MAX);
			break;
		}
		sc->a = leader;
		sc->a_last = l->st.last;
		stale_pick(w, leader);
		/* B never hears T (nor T's refusal, which would end B's
		 * candidacy), and B's entries of its new term reach no one. */
		w->blocked[sc->b - 1][sc->to - 1] = true;
		w->blocked[sc->to - 1][sc->b - 1] = true;
		sc->withhold_from = sc->b;
		sc->withhold_above = l->st.vote.lid.term;
		struct lcr_event ev = { .type = LCR_EV_TRIGGER_TRANSFER, .transfer_to = sc->to };
		sim_trace(w, leader, "stale-transfer: hand over to %u; %u to stand", sc->to, sc->b);
		sim_step_event(w, sim_node(w, leader), &ev);
		next_phase(w, ST_TRANSFER, 0);
		break;
	}
	case ST_TRANSFER: {
		struct sim_node *b = sim_node(w, sc->b);
		bool held = false;
		for (uint32_t i = 0; i < w->par.nodes; i++)
			held |= sc->held_for[i];
		if (!held || lcr_log_id_cmp(b->st.last, sc->a_last) < 0) {
			stale_overdue(w, STALE_PHASE_MAX);
			break;
		}
		struct lcr_event ev = { .type = LCR_EV_TRIGGER_ELECT };
		sim_trace(w, sc->b, "stale-transfer: %u stands while %u's requests are held", sc->b,
			  sc->to);
		sim_step_event(w, b, &ev);
		next_phase(w, ST_B_LEADS, 0);
		break;
	}
	case ST_B_LEADS: {
		const struct sim_node *a = sim_node(w, sc->a), *b = sim_node(w, sc->b);
		if (!is_leader(w, sc->b) || !lcr_leader_id_eq(a->promise_lid, b->st.vote.lid) ||
		    a->promise_end <= sim_node_time(w, b)) {
			stale_overdue(w, STALE_PHASE_MAX);
			break;
		}
		sim_trace(w, sc->a, "stale-transfer: %u's transfer requests arrive late", sc->to);
		for (uint32_t i = 0; i < w->par.nodes; i++)
			if (sc->held_for[i])
				sim_deliver(w, &sc->held[i]);
		memset(sc->held_for, 0, sizeof(sc->held_for));
		next_phase(w, ST_LATE, 20 * MS + sim_rnd_below(w, 80 * MS));
		break;
	}
	case ST_LATE:
		if (w->now >= sc->retry_at)
			sim_scenario_end(w, true);
		break;
	}
}

bool sim_scenario_holds(struct sim_world *w, const struct lcr_msg *m)
{
	struct sim_scenario *sc = &w->scen;

	if (sc->kind != SIM_SCEN_STALE_TRANSFER || sc->phase < ST_TRANSFER ||
	    sc->phase > ST_B_LEADS || m->from != sc->to || m->type != LCR_MSG_VOTE_REQ ||
	    !m->vote_req.leadership_transfer || m->to < 1 || m->to > w->par.nodes)
		return false;
	sc->held[m->to - 1] = *m;
	sc->held_for[m->to - 1] = true;
	return true;
}

/* ---- entry points ------------------------------------------------------------- */

void sim_scenario_start(struct sim_world *w, uint32_t kind)
{
	struct sim_scenario *sc = &w->scen;
	uint32_t leader = sim_find_leader(w);

	if (sc->kind || w->healed)
		return;
	if (kind == SIM_SCEN_LEADER_READS && !leader)
		return;
	if (kind == SIM_SCEN_STALE_TRANSFER && w->scen_started[kind] >= STALE_RUNS_MAX)
		return;
	memset(sc, 0, sizeof(*sc));
	sc->kind = kind;
	sc->started = w->now;
	sc->phase = 1;
	sc->phase_at = w->now;
	w->scen_started[kind]++;
	switch (kind) {
	case SIM_SCEN_MAJORITY:
		majority_start(w);
		break;
	case SIM_SCEN_FIGURE8:
		sc->no_elect = true;
		memset(w->blocked, 0, sizeof(w->blocked));
		sim_calm(w);
		sc->phase = F8_STABLE;
		sim_trace(w, 0, "scenario figure8");
		break;
	case SIM_SCEN_LEADER_READS:
		reads_start(w, leader);
		break;
	case SIM_SCEN_STALE_TRANSFER:
		memset(w->blocked, 0, sizeof(w->blocked));
		sim_calm(w);
		sc->phase = ST_STABLE;
		sim_trace(w, 0, "scenario stale-transfer");
		break;
	}
}

void sim_scenario_step(struct sim_world *w)
{
	switch (w->scen.kind) {
	case SIM_SCEN_MAJORITY:
		majority_step(w);
		break;
	case SIM_SCEN_FIGURE8:
		fig8_step(w);
		break;
	case SIM_SCEN_LEADER_READS:
		reads_step(w);
		break;
	case SIM_SCEN_STALE_TRANSFER:
		stale_step(w);
		break;
	}
}

bool sim_scenario_drops(const struct sim_world *w, const struct lcr_msg *m,
			const struct sim_entry *entries)
{
	const struct sim_scenario *sc = &w->scen;

	if ((sc->kind != SIM_SCEN_FIGURE8 && sc->kind != SIM_SCEN_STALE_TRANSFER) ||
	    !sc->withhold_from || m->from != sc->withhold_from || m->type != LCR_MSG_APPEND_REQ ||
	    !entries)
		return false;
	for (uint32_t i = 0; i < m->append_req.n_entries; i++)
		if (entries[i].id.lid.term > sc->withhold_above)
			return true;
	return false;
}
