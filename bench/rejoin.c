/* SPDX-License-Identifier: MIT */
/* A wiped node never rejoins under its old identity (rejoin.h). */
#define _GNU_SOURCE
#include "rejoin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "file.h"
#include "meta.h"

#define ROUND_MS       100 /* asks again (same request id) those that have not answered */
#define SLICE_MS       10  /* the longest wait for an answer before serving our own port */
#define KNOWN_MAX      (2 * LCR_PEERS_MAX)
#define MARK_BYTES_MAX 256

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), k = strlen(tail);
	return n >= k && strcmp(s + n - k, tail) == 0;
}

/* Whether the meta file at `path` holds a vote, a purge point or a commit hint. */
static int meta_state(const char *path, uint32_t group)
{
	static uint8_t buf[2 * LCR_META_SLOT + 1];
	struct lcr_meta_state st;
	uint64_t seq;
	char w[256];
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	ssize_t got = lcr_read_upto(fd, buf, sizeof(buf));
	close(fd);
	if (got < 0)
		return (int)got;
	n = (size_t)got;
	if (n == 0)
		return 0; /* created and not yet written */
	if (n > 2 * LCR_META_SLOT || lcr_meta_recover(buf, n, group, &st, &seq, w, sizeof(w)) < 0)
		return 1; /* not fresh: the open says what is wrong with it */
	return seq > 0 && (st.vote.lid.term > 0 || st.purged.index > 0 || st.committed.index > 0);
}

int lcr_rejoin_group_state(const char *data_dir, uint32_t group, char *why, size_t why_len)
{
	char dir[600], path[900];
	struct dirent *de;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s/group-%u", data_dir, group);
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		snprintf(why, why_len, "%s: %s", dir, strerror(-rc));
		return rc;
	}
	while (rc == 0 && (de = readdir(d))) {
		const char *s = de->d_name;
		if ((strncmp(s, "seg-", 4) == 0 && ends_with(s, ".log")) ||
		    (strncmp(s, "snap-", 5) == 0 && ends_with(s, ".snap")))
			rc = 1;
	}
	closedir(d);
	if (rc == 0) {
		snprintf(path, sizeof(path), "%s/%s", dir, LCR_META_FILE);
		rc = meta_state(path, group);
		if (rc < 0)
			snprintf(why, why_len, "%s: %s", path, strerror(-rc));
	}
	return rc;
}

/* ---- the identity file ------------------------------------------------------------ */

int lcr_rejoin_mark_check(const struct lcr_app_config *c, bool *present, char *why, size_t why_len)
{
	char path[600], text[MARK_BYTES_MAX + 1];
	unsigned long long cluster = 0;
	unsigned node = 0;
	size_t n = 0;
	int rc;

	*present = false;
	snprintf(path, sizeof(path), "%s/%s", c->data_dir, LCR_REJOIN_MARK_FILE);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		rc = -errno;
		snprintf(why, why_len, "%s: %s", path, strerror(-rc));
		return rc;
	}
	ssize_t got = lcr_read_upto(fd, text, MARK_BYTES_MAX);
	close(fd);
	if (got < 0) {
		snprintf(why, why_len, "%s: %s", path, strerror((int)-got));
		return (int)got;
	}
	n = (size_t)got;
	text[n] = 0;
	const char *cl = strstr(text, "\ncluster ");
	const char *nd = strstr(text, "\nnode ");
	if (strncmp(text, "lcraft-node data directory", 26) != 0 || !cl || !nd ||
	    sscanf(cl, "\ncluster %llu", &cluster) != 1 || sscanf(nd, "\nnode %u", &node) != 1) {
		snprintf(why, why_len,
			 "%s: not an identity file that this build reads, so whose directory "
			 "this is cannot be told: refusing to start. If %s is node %u's of "
			 "cluster %llu, remove the file",
			 path, c->data_dir, c->self, (unsigned long long)c->node.cluster);
		return -EBADMSG;
	}
	*present = true;
	if (node == c->self && cluster == c->node.cluster)
		return 0;
	snprintf(why, why_len,
		 "%s says this data directory is node %u's of cluster %llu, not node %u's of "
		 "cluster %llu: refusing to start. A data directory belongs to one node: "
		 "check --id, --config and [node] data_dir (its {id} gives each node a directory "
		 "of its own)",
		 path, node, cluster, c->self, (unsigned long long)c->node.cluster);
	return -EEXIST;
}

int lcr_rejoin_mark_write(const struct lcr_app_config *c, char *why, size_t why_len)
{
	char path[600], tmp[620], text[MARK_BYTES_MAX];
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", c->data_dir, LCR_REJOIN_MARK_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int len = snprintf(text, sizeof(text),
			   "lcraft-node data directory (written at its first start; never edit)\n"
			   "cluster %llu\nnode %u\n",
			   (unsigned long long)c->node.cluster, c->self);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, (size_t)len) != len || fsync(fd) < 0)
		rc = errno ? -errno : -EIO;
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	int dfd = rc == 0 ? open(c->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (rc == 0 && (dfd < 0 || fsync(dfd) < 0))
		rc = -errno;
	if (dfd >= 0)
		close(dfd);
	if (rc < 0)
		snprintf(why, why_len, "%s: cannot write the identity file: %s", tmp,
			 strerror(-rc));
	return rc;
}

/* ---- asking the cluster ----------------------------------------------------------- */

/* What the answers to one group's question showed. */
struct group_ask {
	uint32_t group;
	uint32_t voters[2 * LCR_NODES_MAX]; /* of the newest membership an answer named */
	uint32_t n_voters;
	uint64_t voters_index; /* that membership's entry index (0: the config's) */
	uint32_t answered[KNOWN_MAX];
	uint32_t n_answered;
	/* Each answering node's latest view, by its index in `answered`. */
	uint32_t view_leader[KNOWN_MAX]; /* the leader it names (0: none) */
	uint64_t view_term[KNOWN_MAX];
	bool view_leads[KNOWN_MAX];   /* it says it is the leader */
	uint32_t checking[KNOWN_MAX]; /* of those, nodes that were checking themselves */
	uint32_t n_checking;
	uint32_t leader; /* a leader that answered (0: none) */
};

static bool in(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

static void add(uint32_t *ids, uint32_t *n, uint32_t max, uint32_t id)
{
	if (!in(ids, *n, id) && *n < max)
		ids[(*n)++] = id;
}

/* The voters of every config of `m` (one list, each id once). */
static void voters_of(const struct lcr_membership *m, uint32_t *ids, uint32_t *n)
{
	*n = 0;
	for (uint32_t k = 0; k < m->n_configs; k++)
		for (uint32_t i = 0; i < m->configs[k].n; i++)
			add(ids, n, 2 * LCR_NODES_MAX, m->configs[k].ids[i]);
}

static uint32_t index_of(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return i;
	return n;
}

/*
 * The leader named in the newest term by the answers (0: none), which must
 * answer too, as the leader: it alone holds the followers' matched indexes,
 * and its held record is the one that names the followers that acknowledged
 * it. Sets *waiting when it has not (yet) answered as the leader.
 */
static uint32_t named_leader(const struct group_ask *ga, bool *waiting)
{
	uint32_t lead = 0;
	uint64_t term = 0;

	for (uint32_t i = 0; i < ga->n_answered; i++)
		if (ga->view_leader[i] && ga->view_term[i] >= term) {
			lead = ga->view_leader[i];
			term = ga->view_term[i];
		}
	uint32_t k = index_of(ga->answered, ga->n_answered, lead);
	*waiting = lead != 0 && (k == ga->n_answered || !ga->view_leads[k]);
	return lead;
}

/*
 * Whether the answers make a majority of the voters, this node counted if it
 * is one, and the leader they name answered too.
 */
static bool quorum(const struct group_ask *ga, uint32_t self, uint32_t *have, uint32_t *need)
{
	bool waiting;
	uint32_t k = in(ga->voters, ga->n_voters, self) ? 1 : 0;

	for (uint32_t i = 0; i < ga->n_voters; i++)
		if (ga->voters[i] != self && in(ga->answered, ga->n_answered, ga->voters[i]))
			k++;
	*have = k;
	*need = ga->n_voters / 2 + 1;
	(void)named_leader(ga, &waiting);
	return k >= *need && !waiting;
}

/*
 * Node `from`'s view `m` of group ga->group: evidence that `self` held state
 * there (the sentence in v->said, v->held set), or what it adds to ga.
 */
static void judge(const struct lcr_members *m, uint32_t from, uint32_t self, struct group_ask *ga,
		  struct lcr_rejoin_verdict *v)
{
	uint32_t g = ga->group;

	if (strcmp(m->role, "leader") == 0) {
		const struct lcr_members_node *me = lcr_members_find(m, self);
		ga->leader = from;
		if (me && me->progress && me->matched > 0) {
			snprintf(v->said, sizeof(v->said),
				 "node %u, the leader of group %u in term %llu, says node %u "
				 "acknowledged its log through index %llu (MEMBERS: matched %llu)",
				 from, g, (unsigned long long)m->term, self,
				 (unsigned long long)me->matched, (unsigned long long)me->matched);
			v->held = true;
			return;
		}
	}
	if (m->leader == self) {
		snprintf(v->said, sizeof(v->said),
			 "node %u (%s in term %llu) names node %u as the leader of group %u, "
			 "which it became only with its vote for itself saved",
			 from, m->role, (unsigned long long)m->term, self, g);
		v->held = true;
		return;
	}
	if (m->log_id.index > 0 && m->log_id.lid.node == self) {
		snprintf(v->said, sizeof(v->said),
			 "node %u's membership of group %u is the entry at index %llu that node %u "
			 "appended as the leader of term %llu",
			 from, g, (unsigned long long)m->log_id.index, self,
			 (unsigned long long)m->log_id.lid.term);
		v->held = true;
		return;
	}
	if (in(m->held, m->n_held, self)) {
		snprintf(v->said, sizeof(v->said),
			 "node %u (%s in term %llu) recorded that node %u held state in group %u "
			 "(MEMBERS: held_state lists %u: it granted a vote, acknowledged entries, "
			 "led or had state of its own there)",
			 from, m->role, (unsigned long long)m->term, self, g, self);
		v->held = true;
	}
}

/* One answer: counted once per node, judged every time. */
static void take(struct lcr_kv_client *cl, const struct lcr_kv_answer *a, uint32_t self,
		 struct group_ask *ga, struct lcr_rejoin_verdict *v)
{
	static struct lcr_members m; /* 4 KiB: setup code, on the main thread */

	if (a->from == self || a->status != LCR_CLIENT_OK ||
	    lcr_members_parse((const char *)a->value, a->value_len, &m) < 0)
		return;
	add(ga->answered, &ga->n_answered, KNOWN_MAX, a->from);
	uint32_t k = index_of(ga->answered, ga->n_answered, a->from);
	if (k < ga->n_answered) {
		ga->view_leader[k] = m.leader;
		ga->view_term[k] = m.term;
		ga->view_leads[k] = strcmp(m.role, "leader") == 0 && m.leader == a->from;
	}
	if (m.checking)
		add(ga->checking, &ga->n_checking, KNOWN_MAX, a->from);
	/* The newest membership an answer names decides whose answers count. */
	if (m.log_id.index > ga->voters_index) {
		ga->voters_index = m.log_id.index;
		ga->n_voters = 0;
		for (uint32_t c = 0; c < m.n_configs; c++)
			for (uint32_t i = 0; i < m.configs[c].n; i++)
				add(ga->voters, &ga->n_voters, 2 * LCR_NODES_MAX,
				    m.configs[c].ids[i]);
	}
	/* Members the config does not list (added with --addr) are asked too. */
	lcr_kv_client_learn(cl, &m);
	judge(&m, a->from, self, ga, v);
}

/* "1, 2, 3" (or "none") into out. */
static const char *id_list(const uint32_t *ids, uint32_t n, char *out, size_t len)
{
	size_t o = 0;

	out[0] = 0;
	for (uint32_t i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%u", i ? ", " : "", ids[i]);
	if (n == 0)
		snprintf(out, len, "none");
	return out;
}

/* The voters that have not answered (this node left out). */
static uint32_t silent(const struct group_ask *ga, uint32_t self, uint32_t *ids)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < ga->n_voters; i++)
		if (ga->voters[i] != self && !in(ga->answered, ga->n_answered, ga->voters[i]))
			ids[n++] = ga->voters[i];
	return n;
}

static void say_waiting(const struct lcr_rejoin_hooks *h, const struct group_ask *ga, uint32_t self,
			uint64_t ms)
{
	uint32_t have, need, ids[2 * LCR_NODES_MAX];
	char a[160], b[160], line[512];

	bool waiting;
	(void)quorum(ga, self, &have, &need);
	uint32_t lead = named_leader(ga, &waiting);
	uint32_t n = silent(ga, self, ids);
	if (have >= need && waiting) {
		snprintf(line, sizeof(line),
			 "group %u: a majority of its voters answered without evidence that node "
			 "%u held state, but node %u, whom they name as leader, has not answered "
			 "as the leader yet (it holds the followers' progress); still asking; "
			 "%llu ms so far (--force-rejoin skips the check, dangerous)",
			 ga->group, self, lead, (unsigned long long)ms);
		if (h && h->progress)
			h->progress(h->ctx, line);
		return;
	}
	snprintf(line, sizeof(line),
		 "group %u: waiting for a majority of its voters to answer whether node %u held "
		 "state: %u of the %u needed of %u voters (node %u counted if a voter; answered: "
		 "%s), still asking node(s) %s; %llu ms so far (--force-rejoin skips the check, "
		 "dangerous)",
		 ga->group, self, have, need, ga->n_voters, self,
		 id_list(ga->answered, ga->n_answered, a, sizeof(a)), id_list(ids, n, b, sizeof(b)),
		 (unsigned long long)ms);
	if (h && h->progress)
		h->progress(h->ctx, line);
}

/* Ask one group until a majority of its voters answered, or the evidence is in. */
static void ask_group(struct lcr_kv_client *cl, const struct lcr_app_config *c, uint64_t every_ms,
		      const struct lcr_rejoin_hooks *h, struct group_ask *ga,
		      struct lcr_rejoin_verdict *v)
{
	struct lcr_client_req r = { .client = lcr_kv_client_id(cl),
				    .id = lcr_kv_client_next_id(cl),
				    .op = LCR_CLIENT_MEMBERS,
				    .flags = LCR_CLIENT_F_THIS_NODE };
	uint64_t t0 = mono_ms(), next_send = t0, next_say = t0 + every_ms;
	uint32_t ids[KNOWN_MAX], have, need;

	voters_of(&c->node.core.membership, ga->voters, &ga->n_voters);
	/* The same request id every round, to every node (a node's latest view
	 * replaces its earlier one): an answer to an earlier round counts. */
	while (!v->held && !quorum(ga, c->self, &have, &need)) {
		uint64_t now = mono_ms();
		if (now >= next_send) {
			uint32_t n = lcr_kv_client_nodes(cl, ids, KNOWN_MAX);
			for (uint32_t i = 0; i < n; i++)
				if (ids[i] != c->self)
					(void)lcr_kv_client_send(cl, ids[i], &r);
			if (n > v->asked)
				v->asked = n - (in(ids, n, c->self) ? 1 : 0);
			next_send = now + ROUND_MS;
		}
		if (now >= next_say) {
			say_waiting(h, ga, c->self, now - t0);
			next_say = now + every_ms;
		}
		if (h && h->serve)
			h->serve(h->ctx);
		struct lcr_kv_answer a;
		int rc = lcr_kv_client_recv(cl, &r, SLICE_MS, &a);
		if (rc == -ENOTCONN || rc == -ENOMEM) /* nothing sent: no spinning */
			usleep(SLICE_MS * 1000);
		if (rc < 0)
			continue;
		take(cl, &a, c->self, ga, v);
		free(a.value);
	}
}

/* Append to v->said (what was learned), as far as it goes. */
__attribute__((format(printf, 3, 4))) static void learned(struct lcr_rejoin_verdict *v, size_t *o,
							  const char *fmt, ...)
{
	va_list ap;

	if (*o >= sizeof(v->said))
		return;
	va_start(ap, fmt);
	int k = vsnprintf(v->said + *o, sizeof(v->said) - *o, fmt, ap);
	va_end(ap);
	if (k > 0)
		*o += (size_t)k;
}

int lcr_rejoin_ask(const struct lcr_app_config *c, const uint32_t *groups, uint32_t n,
		   uint64_t every_ms, const struct lcr_rejoin_hooks *h,
		   struct lcr_rejoin_verdict *v)
{
	uint64_t t0 = mono_ms();
	uint32_t all[KNOWN_MAX], n_all = 0, have, need;
	char list[128], list2[128];
	size_t o = 0;

	memset(v, 0, sizeof(*v));
	for (uint32_t k = 0; k < n && !v->held; k++) {
		struct group_ask ga = { .group = groups[k] };
		struct lcr_kv_client *cl;
		char w[256];

		int rc = lcr_kv_client_open(&cl, c, groups[k], w, sizeof(w));
		if (rc < 0) {
			snprintf(v->said, sizeof(v->said), "cannot ask the cluster: %s", w);
			return rc;
		}
		ask_group(cl, c, every_ms, h, &ga, v);
		lcr_kv_client_close(cl);
		for (uint32_t i = 0; i < ga.n_answered; i++)
			add(all, &n_all, KNOWN_MAX, ga.answered[i]);
		if (v->held) {
			v->group = ga.group;
			break;
		}
		(void)quorum(&ga, c->self, &have, &need);
		learned(v, &o, "%sgroup %u: %u of %u voters (%s) answered without evidence",
			o ? "; " : "", ga.group, have, ga.n_voters,
			id_list(ga.voters, ga.n_voters, list, sizeof(list)));
		if (ga.leader)
			learned(v, &o, ", leader %u among them", ga.leader);
		if (ga.n_checking)
			learned(v, &o, ", node(s) %s checking themselves (no state either)",
				id_list(ga.checking, ga.n_checking, list2, sizeof(list2)));
	}
	v->answered = n_all;
	if (!v->held)
		learned(v, &o, " (nodes that answered: %s; %llu ms)",
			id_list(all, n_all, list, sizeof(list)),
			(unsigned long long)(mono_ms() - t0));
	return 0;
}
