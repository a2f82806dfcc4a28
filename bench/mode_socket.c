/* SPDX-License-Identifier: MIT */
/*
 * lcraft-bench --mode socket: the replicas are processes on loopback, talking
 * over kernel UDP sockets, each with its durable io_uring log, as lcraft-node
 * runs them. --mode dpdk-memif and dpdk-afpacket run the same with the
 * datagrams on DPDK ports (mode_dpdk.c fills in the transport and measures
 * its floor first).
 *
 * This process is replica 1 and hosts the load; replicas 2..R are children,
 * this program again (`lcraft-bench --replica ...`: a fresh process, so that
 * none inherits this one's threads or its DPDK, which stays up from one run
 * of a sweep to the next), with elections turned off so that replica 1 leads
 * every group (the numbers are then always the leader's). Each child answers
 * on a pipe with its CPU time and its node metrics when asked, and stops
 * when asked.
 *
 * The load runs on the lcores of replica 1, inside their loops (an lcore poll
 * function): per group, `clients` operations in flight (closed loop) or
 * operations started at their intended times (open loop, --rate), each one
 * proposal of `batch` entries of `size` bytes, complete when all its entries
 * are applied on the leader. Latency runs from the intended start (closed
 * loop: the proposal) to the completion of the last entry, so an open-loop
 * operation that had to wait for a free slot counts its wait: no coordinated
 * omission. This is what the peer harness (peers/craft) measures too: commit
 * by a quorum, durable on the leader, applied on the leader.
 *
 * --key FILE: every replica's datagrams are authenticated with that cluster
 * key (aes256gcm; docs/wire-protocol.md, "Authentication"), each open of a
 * replica with a boot of its own: the clock's microseconds, above the last
 * one this process took (replica 1 opens once per run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include "../io/log.h"
#include "auth.h"
#include "bench.h"
#include "lcraft.h"

#define REPLICAS_MAX	5
#define GROUPS_MAX	64
#define CLIENTS_MAX	65536
#define BATCH_MAX	1024
#define LEADER_WAIT_NS	(10ull * 1000000000ull)
#define DRAIN_NS	(5ull * 1000000000ull)
#define METRICS_MAX	(1u << 20)
#define CLUSTER_ID	0x6c637266ull /* "lcrf" */
#define ELECTION_MIN_MS 150
#define ELECTION_MAX_MS 300
#define HEARTBEAT_MS	50
#define SEGMENT_BYTES	(64ull << 20)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the node configuration every replica builds the same way --------------------- */

static void node_config(const struct lcr_bench_opts *o, uint32_t id, const char *root, char *dir,
			size_t dir_len, struct lcr_node_config *c)
{
	lcr_node_config_default(c);
	snprintf(dir, dir_len, "%s/replica-%u", root, id);
	c->id = id;
	c->cluster = CLUSTER_ID;
	c->data_dir = dir;
	c->bind_host = "127.0.0.1";
	c->lcores = o->lcores;
	c->busy_poll = o->busy_poll;
	c->idle_spin_us = o->spin_us;
	c->io_spin_us = o->io_spin_us;
	c->spin_fixed = o->spin_fixed;
	c->durability = o->fsync ? LCR_DURABILITY_FSYNC : LCR_DURABILITY_NONE;
	c->segment_bytes = SEGMENT_BYTES;
	c->n_peers = o->replicas;
	for (uint32_t i = 0; i < o->replicas; i++) {
		c->peers[i].id = i + 1;
		snprintf(c->peers[i].host, sizeof(c->peers[i].host), "127.0.0.1");
		c->peers[i].port = (uint16_t)(o->port_base + 10 * i);
	}
	c->core.election_timeout_min_ms = ELECTION_MIN_MS;
	c->core.election_timeout_max_ms = ELECTION_MAX_MS;
	c->core.heartbeat_interval_ms = HEARTBEAT_MS;
	/* Replica 1 leads: the others never stand (they still vote). */
	c->core.enable_elect = id == 1;
	if (o->mode != LCR_BENCH_SOCKET)
		lcr_bench_dpdk_config(o, id, c);
}

/*
 * --key: the key into c, with a boot above every one this process took
 * before. The key stays in a buffer of this process until the node opened
 * (auth_wipe). 0, or -errno with a sentence.
 */
static uint8_t auth_key[LCR_AUTH_KEY_BYTES];

static int auth_config(const struct lcr_bench_opts *o, struct lcr_node_config *c, char *why,
		       size_t why_len)
{
	static uint64_t last_boot;
	struct timespec ts;
	char e[400];
	int rc;

	if (!o->key_file || !o->key_file[0])
		return 0;
	if ((rc = lcr_auth_key_load(o->key_file, auth_key, e, sizeof(e))) < 0) {
		snprintf(why, why_len, "--key: %s", e);
		return rc;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
	last_boot = now > last_boot ? now : last_boot + 1;
	c->auth_key = auth_key;
	c->auth_alg = LCR_AUTH_AES256GCM;
	c->auth_boot = last_boot;
	return 0;
}

static void auth_wipe(void)
{
	lcr_auth_wipe(auth_key, sizeof(auth_key));
}

/* A state machine that only counts (the peer harness's FSM is a no-op too). */
static void count_apply(void *sm, const struct lcr_entry *e, void *out, uint32_t *rlen)
{
	(void)e;
	(void)out;
	(*(uint64_t *)sm)++;
	*rlen = 0;
}

/* ---- the replicas 2..R: children ---------------------------------------------------- */

struct child {
	pid_t pid;
	int cmd;    /* we write: 'm' metrics, 'q' quit */
	int report; /* it writes: one line per 'm' */
	FILE *in;
};

struct replica_ctx {
	struct lcr_node *node;
	int cmd, report;
};

/* In the child: answers the parent until it says quit, then stops the node. */
static void *replica_control(void *arg)
{
	struct replica_ctx *rc = arg;
	static char buf[METRICS_MAX];
	char c;

	while (read(rc->cmd, &c, 1) == 1 && c == 'm') {
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		int n = snprintf(buf, sizeof(buf), "{\"user_s\":%.6f,\"sys_s\":%.6f,\"metrics\":",
				 (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
				 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
		int w = lcr_node_metrics_json(rc->node, buf + n, sizeof(buf) - (size_t)n - 3);
		if (w < 0)
			w = snprintf(buf + n, sizeof(buf) - (size_t)n, "null");
		n += w;
		buf[n++] = '}';
		buf[n++] = '\n';
		for (int off = 0; off < n;) {
			ssize_t k = write(rc->report, buf + off, (size_t)(n - off));
			if (k <= 0)
				break;
			off += (int)k;
		}
	}
	lcr_node_stop(rc->node);
	return NULL;
}

static void __attribute__((noreturn))
replica_run(const struct lcr_bench_opts *o, uint32_t id, const char *root, int cmd, int report)
{
	struct lcr_node_config c;
	struct lcr_node *node;
	char dir[512], why[512];
	static uint64_t counters[GROUPS_MAX + 1];

	node_config(o, id, root, dir, sizeof(dir), &c);
	/* DPDK: replica 1's floor first; the node opens when it says 'g'. */
	if (o->mode != LCR_BENCH_SOCKET) {
		int rc = lcr_bench_dpdk_floor_serve(o, id, cmd, report, why, sizeof(why));
		if (rc == -ECANCELED)
			_exit(0);
		if (rc < 0) {
			fprintf(stderr, "lcraft-bench: replica %u: %s\n", id, why);
			_exit(2);
		}
	}
	if (auth_config(o, &c, why, sizeof(why)) < 0 ||
	    lcr_node_open(&node, &c, why, sizeof(why)) < 0) {
		fprintf(stderr, "lcraft-bench: replica %u: %s\n", id, why);
		_exit(2);
	}
	auth_wipe();
	for (uint32_t g = 1; g <= o->groups; g++) {
		struct lcr_sm_ops ops = { .apply = count_apply };
		struct lcr_group *grp;
		if (lcr_group_open(node, g, &ops, &counters[g], &grp, why, sizeof(why)) < 0) {
			fprintf(stderr, "lcraft-bench: replica %u group %u: %s\n", id, g, why);
			_exit(2);
		}
	}
	if (o->mode != LCR_BENCH_SOCKET && dprintf(report, "open\n") < 0)
		_exit(2);
	struct replica_ctx rc = { node, cmd, report };
	pthread_t t;
	if (pthread_create(&t, NULL, replica_control, &rc) != 0)
		_exit(2);
	lcr_node_run(node);
	pthread_join(t, NULL);
	lcr_node_close(node);
	_exit(0);
}

/* The fds a replica finds its pipes on after exec. */
#define REPLICA_CMD_FD	  3
#define REPLICA_REPORT_FD 4
#define REPLICA_ARGS	  16

/* What a replica needs of the options, as "key=value" arguments after
 * "--replica" (lcr_bench_replica_main reads them back). */
struct replica_args {
	char buf[REPLICA_ARGS][4200];
	char *argv[REPLICA_ARGS + 3];
};

static void replica_args(const struct lcr_bench_opts *o, uint32_t id, const char *root,
			 struct replica_args *a)
{
	int n = 0;
#define ARG(...) snprintf(a->buf[n++], sizeof(a->buf[0]), __VA_ARGS__)
	ARG("id=%u", id);
	ARG("root=%s", root);
	ARG("mode=%d", (int)o->mode);
	ARG("replicas=%u", o->replicas);
	ARG("groups=%u", o->groups);
	ARG("lcores=%u", o->lcores);
	ARG("fsync=%d", o->fsync);
	ARG("port_base=%u", o->port_base);
	ARG("busy_poll=%d", o->busy_poll);
	ARG("spin_us=%u", o->spin_us);
	ARG("io_spin_us=%u", o->io_spin_us);
	ARG("spin_fixed=%d", o->spin_fixed);
	ARG("eal=%s", o->eal ? o->eal : "");
	ARG("memif_dir=%s", o->memif_dir ? o->memif_dir : "");
	ARG("veth=%s", o->veth ? o->veth : "");
	ARG("key=%s", o->key_file ? o->key_file : "");
#undef ARG
	if (n > REPLICA_ARGS)
		abort(); /* REPLICA_ARGS is too small */
	a->argv[0] = (char *)(o->argv0 ? o->argv0 : "lcraft-bench");
	a->argv[1] = (char *)"--replica";
	for (int i = 0; i < n; i++)
		a->argv[2 + i] = a->buf[i];
	a->argv[2 + n] = NULL;
}

int lcr_bench_replica_main(int argc, char **argv)
{
	static struct lcr_bench_opts o;
	static char root[PATH_MAX], eal[4096], memif_dir[PATH_MAX], veth[32], key[PATH_MAX];
	unsigned id = 0, mode = 0, replicas = 0, groups = 0, lcores = 0, fsync = 0, port = 0,
		 busy = 0, spin = 0, io_spin = 0, spin_fixed = 0, got = 0;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		got += sscanf(a, "id=%u", &id) + sscanf(a, "mode=%u", &mode) +
		       sscanf(a, "replicas=%u", &replicas) + sscanf(a, "groups=%u", &groups) +
		       sscanf(a, "lcores=%u", &lcores) + sscanf(a, "fsync=%u", &fsync) +
		       sscanf(a, "port_base=%u", &port) + sscanf(a, "busy_poll=%u", &busy) +
		       sscanf(a, "spin_us=%u", &spin) + sscanf(a, "io_spin_us=%u", &io_spin) +
		       sscanf(a, "spin_fixed=%u", &spin_fixed);
		if (!strncmp(a, "root=", 5) && ++got)
			snprintf(root, sizeof(root), "%s", a + 5);
		else if (!strncmp(a, "eal=", 4) && ++got)
			snprintf(eal, sizeof(eal), "%s", a + 4);
		else if (!strncmp(a, "memif_dir=", 10) && ++got)
			snprintf(memif_dir, sizeof(memif_dir), "%s", a + 10);
		else if (!strncmp(a, "veth=", 5) && ++got)
			snprintf(veth, sizeof(veth), "%s", a + 5);
		else if (!strncmp(a, "key=", 4) && ++got)
			snprintf(key, sizeof(key), "%s", a + 4);
	}
	if (got != 16 || id < 2 || id > REPLICAS_MAX || replicas < id || groups < 1 ||
	    groups > GROUPS_MAX || lcores < 1 || port == 0 || port > 65535) {
		fprintf(stderr, "lcraft-bench --replica: started by lcraft-bench itself, not by "
				"hand (bad arguments)\n");
		return 2;
	}
	o.mode = (enum lcr_bench_mode)mode;
	o.replicas = replicas;
	o.groups = groups;
	o.lcores = lcores;
	o.fsync = fsync;
	o.port_base = (uint16_t)port;
	o.busy_poll = busy;
	o.spin_us = spin;
	o.io_spin_us = io_spin;
	o.spin_fixed = spin_fixed != 0;
	o.eal = eal;
	o.memif_dir = memif_dir;
	o.veth = veth;
	o.key_file = key;
	o.argv0 = "lcraft-bench";
	/* Named as replica 1 is, not "exe" (/proc/self/exe). */
	prctl(PR_SET_NAME, "lcraft-bench");
	replica_run(&o, id, root, REPLICA_CMD_FD, REPLICA_REPORT_FD);
}

/* In the child, between fork and exec (only async-signal-safe calls): the
 * pipes onto their fds, every other fd closed, this program again. */
static void __attribute__((noreturn)) replica_exec(int cmd, int report, struct replica_args *a)
{
	/* Never outlive the parent (killed, say): no orphan replicas spinning on
	 * the ports. Kept across exec. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);
	signal(SIGINT, SIG_IGN); /* the parent stops us, in order */
	int c = fcntl(cmd, F_DUPFD, 10), r = fcntl(report, F_DUPFD, 10);
	if (c < 0 || r < 0 || dup2(c, REPLICA_CMD_FD) < 0 || dup2(r, REPLICA_REPORT_FD) < 0)
		_exit(2);
	close_range(REPLICA_REPORT_FD + 1, ~0u, 0);
	execv("/proc/self/exe", a->argv);
	_exit(127);
}

static int children_start(const struct lcr_bench_opts *o, const char *root, struct child *ch,
			  char *why, size_t why_len)
{
	static struct replica_args args;

	for (uint32_t id = 2; id <= o->replicas; id++) {
		struct child *k = &ch[id];
		int cp[2], rp[2];
		cp[0] = cp[1] = rp[0] = rp[1] = -1;
		if (pipe2(cp, O_CLOEXEC) < 0 || pipe2(rp, O_CLOEXEC) < 0) {
			int err = errno;
			snprintf(why, why_len, "pipe: %s", strerror(err));
			for (int f = 0; f < 2; f++) {
				if (cp[f] >= 0)
					close(cp[f]);
				if (rp[f] >= 0)
					close(rp[f]);
			}
			return -err;
		}
		replica_args(o, id, root, &args);
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			int err = errno;
			snprintf(why, why_len, "fork: %s", strerror(err));
			close(cp[0]);
			close(cp[1]);
			close(rp[0]);
			close(rp[1]);
			return -err;
		}
		if (pid == 0)
			replica_exec(cp[0], rp[1], &args);
		close(cp[0]);
		close(rp[1]);
		k->pid = pid;
		k->cmd = cp[1];
		k->report = rp[0];
		k->in = fdopen(rp[0], "r");
	}
	return 0;
}

/* One report line of child k into buf (NUL-terminated), or -EIO. */
static int child_report(struct child *k, char *buf, size_t len)
{
	if (write(k->cmd, "m", 1) != 1 || !fgets(buf, (int)len, k->in))
		return -EIO;
	return 0;
}

/*
 * One at a time, the last first: a DPDK replica reaches those with a lower id
 * through memif ports it connects to (their servers), and a client port whose
 * server goes away is restarted until it comes back, saying so. Replica 1
 * closes its node after them.
 */
static void children_stop(const struct lcr_bench_opts *o, struct child *ch)
{
	for (uint32_t id = o->replicas; id >= 2; id--) {
		struct child *k = &ch[id];
		if (k->pid <= 0)
			continue;
		if (write(k->cmd, "q", 1) != 1)
			kill(k->pid, SIGKILL);
		close(k->cmd);
		int st;
		uint64_t end = now_ns() + 5000000000ull;
		while (waitpid(k->pid, &st, WNOHANG) == 0) {
			if (now_ns() > end) {
				kill(k->pid, SIGKILL);
				waitpid(k->pid, &st, 0);
				break;
			}
			usleep(1000);
		}
		if (k->in)
			fclose(k->in);
		k->pid = 0;
	}
}

/*
 * DPDK: the replicas open their nodes in order of id, each once the one
 * before it has (it says "open" on its report pipe), so that every memif
 * port a node connects to has its server up when it starts (replica a < b
 * serves their port). Replica 1's node is open already.
 */
static int children_open(const struct lcr_bench_opts *o, struct child *ch, char *why,
			 size_t why_len)
{
	char line[64];
	for (uint32_t id = 2; id <= o->replicas; id++) {
		if (write(ch[id].cmd, "g", 1) != 1 || !fgets(line, sizeof(line), ch[id].in) ||
		    strcmp(line, "open\n") != 0) {
			snprintf(why, why_len, "replica %u did not open its node (its error above)",
				 id);
			return -EIO;
		}
	}
	return 0;
}

/* ---- reading numbers out of the metrics JSON ------------------------------------------ */

/* The sum of every number that follows "key": in the text. */
static double json_sum(const char *s, const char *key)
{
	char pat[64];
	double sum = 0;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	for (const char *p = strstr(s, pat); p; p = strstr(p + 1, pat))
		sum += strtod(p + strlen(pat), NULL);
	return sum;
}

/*
 * A histogram's figures: the first "key":{...} in the text after `after`
 * (NULL: anywhere), as metrics.c renders them. False if there is none.
 */
static bool json_hist(const char *s, const char *after, const char *key,
		      struct lcr_bench_stage *out)
{
	char pat[64];
	if (after && !(s = strstr(s, after)))
		return false;
	snprintf(pat, sizeof(pat), "\"%s\":{", key);
	const char *p = strstr(s, pat);
	if (!p)
		return false;
	const char *end = strchr(p + strlen(pat), '}');
	const char *c = strstr(p, "\"count\":"), *a = strstr(p, "\"p50_us\":"),
		   *b = strstr(p, "\"p99_us\":"), *e = strstr(p, "\"p999_us\":"),
		   *m = strstr(p, "\"max_us\":");
	if (!end || !c || !a || !b || !e || !m || c > end || a > end || b > end || e > end ||
	    m > end)
		return false;
	out->count = strtoull(c + 8, NULL, 10);
	out->p50_us = strtod(a + 9, NULL);
	out->p99_us = strtod(b + 9, NULL);
	out->p999_us = strtod(e + 10, NULL);
	out->max_us = strtod(m + 9, NULL);
	return true;
}

/* Where each --trace stage is read: replica 1 (leader) or 2, under what. */
static const struct {
	bool follower;
	const char *after, *key;
} stage_keys[LCR_BENCH_STAGES] = {
	[LCR_BT_QUEUE] = { false, "\"stages\"", "proposal_queue" },
	[LCR_BT_LEADER_DURABLE] = { false, "\"stages\"", "leader_durable" },
	[LCR_BT_RTT] = { false, "\"stages\"", "replication_rtt" },
	[LCR_BT_COMMIT] = { false, "\"stages\"", "commit" },
	[LCR_BT_APPLY] = { false, "\"stages\"", "apply" },
	[LCR_BT_ONE_WAY] = { true, "\"stages\"", "follower_one_way" },
	[LCR_BT_FOLLOWER_DURABLE] = { true, "\"stages\"", "follower_durable" },
	[LCR_BT_FOLLOWER_ACK] = { true, "\"stages\"", "follower_ack" },
	[LCR_BT_RX_LEADER] = { false, NULL, "rx_delay" },
	[LCR_BT_RX_FOLLOWER] = { true, NULL, "rx_delay" },
	[LCR_BT_WRITE_LEADER] = { false, NULL, "write_latency" },
	[LCR_BT_WRITE_FOLLOWER] = { true, NULL, "write_latency" },
};

static void trace_read(struct lcr_bench_trace *t, const char *metrics, bool follower)
{
	for (uint32_t i = 0; i < LCR_BENCH_STAGES; i++)
		if (stage_keys[i].follower == follower &&
		    json_hist(metrics, stage_keys[i].after, stage_keys[i].key, &t->st[i]))
			t->have = true;
}

/* ---- the load, on replica 1's lcores ------------------------------------------------- */

struct slot {
	struct load *ld;
	uint64_t start_ns; /* intended start */
	uint32_t left;	   /* entries not applied yet */
	bool busy;
	bool failed; /* one of its entries came back with an error */
};

struct load {
	struct lcr_group *g;
	uint32_t id;
	const struct lcr_bench_opts *o;
	struct slot *slots;
	uint32_t *ready; /* free slots, a stack */
	uint32_t n_ready;
	uint8_t *payload;
	uint64_t rate_gap_ns; /* open loop: between intended starts of this group */
	uint64_t next_due_ns; /* open loop: the next intended start */
	uint64_t win_start, win_end;
	_Atomic int phase;   /* 0 idle, 1 run, 2 drain, 3 probe */
	_Atomic bool probed; /* a probe entry committed: the leader takes writes */
	bool probing;
	_Atomic uint64_t ops, errors; /* completed in the window */
	_Atomic uint64_t ops_all;     /* completed since the start (progress) */
	_Atomic uint64_t in_flight;
	_Atomic uint32_t role;
	uint64_t applied; /* the state machine's counter */
	struct lcr_hist lat;
};

static struct load loads[GROUPS_MAX + 1];

static void op_done(void *ctx, int err, uint32_t leader, const void *res, uint32_t len)
{
	struct slot *s = ctx;
	struct load *ld = s->ld;
	(void)leader;
	(void)res;
	(void)len;

	if (err)
		s->failed = true; /* counted once the whole operation is back */
	if (--s->left > 0)
		return;
	uint64_t t = now_ns();
	bool in_window = t >= ld->win_start && t < ld->win_end;
	if (s->failed) {
		if (in_window)
			atomic_fetch_add_explicit(&ld->errors, 1, memory_order_relaxed);
		s->failed = false;
	} else {
		if (in_window) {
			atomic_fetch_add_explicit(&ld->ops, 1, memory_order_relaxed);
			lcr_hist_add(&ld->lat, t - s->start_ns);
		}
		atomic_fetch_add_explicit(&ld->ops_all, 1, memory_order_relaxed);
	}
	s->busy = false;
	atomic_fetch_sub_explicit(&ld->in_flight, 1, memory_order_relaxed);
	ld->ready[ld->n_ready++] = (uint32_t)(s - ld->slots);
}

/* Start one operation on a free slot; false if the group cannot take it now. */
static bool op_start(struct load *ld, uint64_t start_ns)
{
	const struct lcr_bench_opts *o = ld->o;
	uint32_t si = ld->ready[ld->n_ready - 1];
	struct slot *s = &ld->slots[si];

	s->start_ns = start_ns;
	s->left = o->batch;
	s->failed = false;
	for (uint32_t i = 0; i < o->batch; i++) {
		int rc = lcr_propose(ld->g, ld->payload, o->size, op_done, s);
		if (rc < 0) {
			/* This iteration's batch is full (-LCR_EFULL). Nothing
			 * proposed yet: try again next iteration. Else the
			 * entries proposed still complete, the operation with
			 * them, as failed. */
			if (i == 0)
				return false;
			s->left = i;
			s->failed = true;
			break;
		}
	}
	ld->n_ready--;
	s->busy = true;
	atomic_fetch_add_explicit(&ld->in_flight, 1, memory_order_relaxed);
	return true;
}

/*
 * A new leader refuses writes until it holds a quorum lease (its first acks):
 * one entry is proposed, again until it commits, before the clock starts,
 * so that no run counts those refusals (or starts with a warm-up of 0 into
 * them).
 */
static void probe_done(void *ctx, int err, uint32_t leader, const void *res, uint32_t len)
{
	struct load *ld = ctx;
	(void)leader;
	(void)res;
	(void)len;
	ld->probing = false;
	if (err == 0)
		atomic_store_explicit(&ld->probed, true, memory_order_release);
}

static void role_changed(void *sm, uint32_t role, uint32_t leader)
{
	struct load *ld = (struct load *)((char *)sm - offsetof(struct load, applied));
	(void)leader;
	atomic_store(&ld->role, role);
}

static void load_apply(void *sm, const struct lcr_entry *e, void *out, uint32_t *rlen)
{
	count_apply(sm, e, out, rlen);
}

/* Every loop iteration of an lcore: start what is due on its groups. */
static bool load_poll(struct lcr_node *n, uint32_t lcore, void *ctx, uint64_t now)
{
	const struct lcr_bench_opts *o = ctx;
	bool work = false;
	(void)n;

	for (uint32_t g = 1; g <= o->groups; g++) {
		struct load *ld = &loads[g];
		if (lcr_group_lcore(n, g) != lcore)
			continue;
		int phase = atomic_load_explicit(&ld->phase, memory_order_acquire);
		if (phase == 3 && !ld->probing && !atomic_load(&ld->probed) &&
		    atomic_load(&ld->role) == LCR_ROLE_LEADER &&
		    lcr_propose(ld->g, ld->payload, o->size, probe_done, ld) == 0)
			ld->probing = true;
		if (phase != 1)
			continue;
		if (o->rate > 0) {
			/* Open loop: every due start, if a slot is free; a late one
			 * keeps its intended time. */
			while (ld->n_ready && ld->next_due_ns <= now &&
			       op_start(ld, ld->next_due_ns)) {
				ld->next_due_ns += ld->rate_gap_ns;
				work = true;
			}
		} else {
			while (ld->n_ready && op_start(ld, now))
				work = true;
		}
	}
	return work;
}

static int load_init(const struct lcr_bench_opts *o, char *why, size_t why_len)
{
	for (uint32_t g = 1; g <= o->groups; g++) {
		struct load *ld = &loads[g];
		memset(ld, 0, sizeof(*ld));
		ld->id = g;
		ld->o = o;
		ld->slots = calloc(o->clients, sizeof(*ld->slots));
		ld->ready = calloc(o->clients, sizeof(*ld->ready));
		ld->payload = calloc(1, o->size ? o->size : 1);
		if (!ld->slots || !ld->ready || !ld->payload) {
			snprintf(why, why_len, "out of memory for %u clients", o->clients);
			return -ENOMEM;
		}
		memset(ld->payload, 0x5a, o->size);
		for (uint32_t i = 0; i < o->clients; i++) {
			ld->slots[i].ld = ld;
			ld->ready[i] = o->clients - 1 - i;
		}
		ld->n_ready = o->clients;
		if (o->rate > 0)
			ld->rate_gap_ns = (uint64_t)(1e9 * o->groups / o->rate);
	}
	return 0;
}

static void load_free(const struct lcr_bench_opts *o)
{
	for (uint32_t g = 1; g <= o->groups; g++) {
		free(loads[g].slots);
		free(loads[g].ready);
		free(loads[g].payload);
	}
}

/* ---- the run ---------------------------------------------------------------------- */

static void nothing(struct lcr_node *n, void *arg)
{
	(void)n;
	(void)arg;
}

/* A sleeping lcore sees a new phase at once, not after its sleep. */
static void wake_lcores(const struct lcr_bench_opts *o, struct lcr_node *node)
{
	for (uint32_t l = 0; l < o->lcores; l++)
		lcr_node_post(node, l, nothing, NULL);
}

static void *run_node(void *arg)
{
	lcr_node_run(arg);
	return NULL;
}

static double cpu_self(double *user, double *sys)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	*sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	return *user + *sys;
}

/* What the window's deltas are taken from: every replica's counters. */
struct snap {
	double user, sys;
	double fsyncs, entries_flushed, log_bytes, datagrams, retransmits;
	double leader_tx; /* datagrams replica 1 sent */
	int64_t allocs;
};

static int snapshot(const struct lcr_bench_opts *o, struct lcr_node *node, struct child *ch,
		    char *buf, struct snap *s, struct lcr_bench_trace *tr)
{
	memset(s, 0, sizeof(*s));
	cpu_self(&s->user, &s->sys);
	s->allocs = lcr_bench_allocs();
	int w = lcr_node_metrics_json(node, buf, METRICS_MAX);
	if (w < 0)
		return w;
	bool dump = getenv("LCR_BENCH_METRICS") != NULL; /* every replica's metrics, stderr */
	if (dump)
		fprintf(stderr, "replica 1: %s\n", buf);
	/* The leader's log: one durable write per batch (fdatasync, or a write
	 * with O_DSYNC, the default mode). */
	s->fsyncs = json_sum(buf, "batches");
	s->entries_flushed = json_sum(buf, "entries");
	s->log_bytes = json_sum(buf, "bytes");
	s->leader_tx = json_sum(buf, "tx_dgrams");
	s->datagrams = json_sum(buf, "rx_dgrams") + s->leader_tx;
	s->retransmits = json_sum(buf, "retransmits");
	if (tr)
		trace_read(tr, buf, false);
	for (uint32_t id = 2; id <= o->replicas; id++) {
		if (child_report(&ch[id], buf, METRICS_MAX) < 0)
			return -EIO;
		if (dump)
			fprintf(stderr, "replica %u: %s", id, buf);
		s->user += json_sum(buf, "user_s");
		s->sys += json_sum(buf, "sys_s");
		s->datagrams += json_sum(buf, "rx_dgrams") + json_sum(buf, "tx_dgrams");
		s->retransmits += json_sum(buf, "retransmits");
		if (tr && id == 2)
			trace_read(tr, buf, true);
	}
	return 0;
}

static void sleep_until(uint64_t t)
{
	uint64_t n = now_ns();
	if (t > n) {
		struct timespec ts = { (time_t)((t - n) / 1000000000ull),
				       (long)((t - n) % 1000000000ull) };
		nanosleep(&ts, NULL);
	}
}

static bool all_lead(const struct lcr_bench_opts *o)
{
	for (uint32_t g = 1; g <= o->groups; g++)
		if (atomic_load(&loads[g].role) != LCR_ROLE_LEADER)
			return false;
	return true;
}

static uint64_t sum_ops_all(const struct lcr_bench_opts *o, uint64_t *errors)
{
	uint64_t ops = 0, err = 0;
	for (uint32_t g = 1; g <= o->groups; g++) {
		ops += atomic_load_explicit(&loads[g].ops_all, memory_order_relaxed);
		err += atomic_load_explicit(&loads[g].errors, memory_order_relaxed);
	}
	*errors = err;
	return ops;
}

static int rm_rf(const char *path)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", path);
	return system(cmd) == 0 ? 0 : -EIO;
}

int lcr_bench_socket(const struct lcr_bench_opts *o, struct lcr_bench_result *r,
		     lcr_bench_progress_fn progress, void *ctx, char *why, size_t why_len)
{
	struct child ch[REPLICAS_MAX + 1];
	struct lcr_node_config c;
	struct lcr_node *node = NULL;
	pthread_t runner;
	bool running = false;
	char root[400], dir[512];
	static char buf[METRICS_MAX];
	int rc;

	memset(ch, 0, sizeof(ch));
	memset(r, 0, sizeof(*r));
	if (o->replicas < 1 || o->replicas > REPLICAS_MAX || o->groups < 1 ||
	    o->groups > GROUPS_MAX || o->clients < 1 || o->clients > CLIENTS_MAX || o->batch < 1 ||
	    o->batch > BATCH_MAX || o->lcores < 1) {
		snprintf(why, why_len,
			 "socket and dpdk modes take 1..%d replicas, 1..%d groups, 1..%d "
			 "clients per group, a batch of 1..%d and at least one lcore",
			 REPLICAS_MAX, GROUPS_MAX, CLIENTS_MAX, BATCH_MAX);
		return -EINVAL;
	}
	snprintf(root, sizeof(root), "%s/lcraft-bench-XXXXXX", o->dir);
	if (!mkdtemp(root)) {
		snprintf(why, why_len, "cannot make a directory under %s: %s", o->dir,
			 strerror(errno));
		return -errno;
	}
	rc = children_start(o, root, ch, why, why_len);
	if (rc < 0)
		goto out;
	rc = load_init(o, why, why_len);
	if (rc < 0)
		goto out;
	/* DPDK: replica 1's ports up for good, then the bare floor between
	 * replicas 1 and 2 before any node. */
	if (o->mode != LCR_BENCH_SOCKET && (rc = lcr_bench_dpdk_hold(o, why, why_len)) < 0)
		goto out;
	if (o->mode != LCR_BENCH_SOCKET && o->floor && o->replicas >= 2 &&
	    (rc = lcr_bench_dpdk_floor(o, ch[2].cmd, ch[2].in, r, why, why_len)) < 0)
		goto out;
	node_config(o, 1, root, dir, sizeof(dir), &c);
	if ((rc = auth_config(o, &c, why, why_len)) < 0)
		goto out;
	rc = lcr_node_open(&node, &c, why, why_len);
	auth_wipe();
	if (rc < 0)
		goto out;
	for (uint32_t g = 1; g <= o->groups; g++) {
		struct lcr_sm_ops ops = { .apply = load_apply, .role = role_changed };
		rc = lcr_group_open(node, g, &ops, &loads[g].applied, &loads[g].g, why, why_len);
		if (rc < 0)
			goto out;
	}
	if (o->mode != LCR_BENCH_SOCKET && (rc = children_open(o, ch, why, why_len)) < 0)
		goto out;
	for (uint32_t l = 0; l < o->lcores; l++)
		lcr_node_set_poll(node, l, load_poll, -1, (void *)o);
	uint64_t t0 = now_ns();
	if (pthread_create(&runner, NULL, run_node, node) != 0) {
		rc = -EAGAIN;
		snprintf(why, why_len, "cannot start the lcores");
		goto out;
	}
	running = true;

	/* Replica 1 stands for election after its first timeout; then each
	 * group commits a probe entry. */
	while (!all_lead(o)) {
		if (now_ns() - t0 > LEADER_WAIT_NS || lcr_bench_interrupted) {
			rc = lcr_bench_interrupted ? -EINTR : -ETIMEDOUT;
			snprintf(why, why_len, "%s",
				 lcr_bench_interrupted
					 ? "interrupted"
					 : "replica 1 did not lead every group within 10 s");
			goto out;
		}
		usleep(1000);
	}
	r->election_ms = (double)(now_ns() - t0) / 1e6;
	r->leader = 1;
	for (uint32_t g = 1; g <= o->groups; g++)
		atomic_store_explicit(&loads[g].phase, 3, memory_order_release);
	wake_lcores(o, node);
	for (uint32_t g = 1; g <= o->groups; g++)
		while (!atomic_load_explicit(&loads[g].probed, memory_order_acquire)) {
			if (now_ns() - t0 > LEADER_WAIT_NS || lcr_bench_interrupted) {
				rc = lcr_bench_interrupted ? -EINTR : -ETIMEDOUT;
				snprintf(why, why_len, "group %u: %s", g,
					 lcr_bench_interrupted
						 ? "interrupted"
						 : "the leader took no write within 10 s");
				goto out;
			}
			usleep(200);
		}

	uint64_t start = now_ns();
	uint64_t win_start = start + (uint64_t)(o->warmup * 1e9);
	uint64_t win_end = win_start + (uint64_t)(o->seconds * 1e9);
	for (uint32_t g = 1; g <= o->groups; g++) {
		loads[g].win_start = win_start;
		loads[g].win_end = win_end;
		loads[g].next_due_ns = start;
		atomic_store_explicit(&loads[g].phase, 1, memory_order_release);
	}
	wake_lcores(o, node);
	/* Progress once a second; the counters' snapshots at the window's edges. */
	struct snap s0, s1;
	bool have0 = false;
	for (uint64_t tick = start + 1000000000ull;; tick += 1000000000ull) {
		uint64_t next = tick;
		if (!have0 && win_start <= next)
			next = win_start;
		if (win_end <= next)
			next = win_end;
		sleep_until(next);
		if (lcr_bench_interrupted) {
			rc = -EINTR;
			snprintf(why, why_len, "interrupted");
			goto out;
		}
		if (!have0 && now_ns() >= win_start) {
			if (snapshot(o, node, ch, buf, &s0, NULL) < 0) {
				rc = -EIO;
				snprintf(why, why_len, "a replica stopped answering");
				goto out;
			}
			have0 = true;
		}
		if (now_ns() >= win_end)
			break;
		if (progress && next == tick) {
			uint64_t err, ops = sum_ops_all(o, &err);
			progress(ctx, (double)((int64_t)now_ns() - (int64_t)win_start) / 1e9, ops,
				 err);
		}
		if (next != tick)
			tick -= 1000000000ull; /* that wake-up was the window's edge */
	}
	if (snapshot(o, node, ch, buf, &s1, o->trace ? &r->trace : NULL) < 0) {
		rc = -EIO;
		snprintf(why, why_len, "a replica stopped answering");
		goto out;
	}
	r->window_s = (double)(now_ns() - win_start) / 1e9;
	/* Stop starting operations; let those in flight finish (not counted). */
	for (uint32_t g = 1; g <= o->groups; g++)
		atomic_store_explicit(&loads[g].phase, 2, memory_order_release);
	for (uint64_t end = now_ns() + DRAIN_NS; now_ns() < end;) {
		uint64_t left = 0;
		for (uint32_t g = 1; g <= o->groups; g++)
			left += atomic_load(&loads[g].in_flight);
		if (left == 0)
			break;
		usleep(1000);
	}
	lcr_node_stop(node);
	pthread_join(runner, NULL);
	running = false;

	r->window_s = (double)(win_end - win_start) / 1e9;
	for (uint32_t g = 1; g <= o->groups; g++) {
		struct load *ld = &loads[g];
		r->ops += ld->ops;
		r->errors += ld->errors;
		if (g == 1)
			r->lat = ld->lat;
		else
			lcr_hist_merge(&r->lat, &ld->lat);
	}
	r->entries = r->ops * o->batch;
	r->user_s = s1.user - s0.user;
	r->sys_s = s1.sys - s0.sys;
	r->fsyncs = (int64_t)(s1.fsyncs - s0.fsyncs);
	r->entries_flushed = (int64_t)(s1.entries_flushed - s0.entries_flushed);
	r->log_bytes = (int64_t)(s1.log_bytes - s0.log_bytes);
	r->datagrams = (int64_t)(s1.datagrams - s0.datagrams);
	r->retransmits = (int64_t)(s1.retransmits - s0.retransmits);
	r->leader_tx = (int64_t)(s1.leader_tx - s0.leader_tx);
	r->allocs = s0.allocs >= 0 && s1.allocs >= 0 ? s1.allocs - s0.allocs : -1;
	if (o->rate > 0)
		snprintf(r->note, sizeof(r->note), "open loop at %.0f ops/s", o->rate);
	rc = 0;
out:
	if (running) {
		lcr_node_stop(node);
		pthread_join(runner, NULL);
	}
	children_stop(o, ch);
	lcr_node_close(node);
	load_free(o);
	rm_rf(root);
	return rc;
}
