/* SPDX-License-Identifier: MIT */
/*
 * A client of lcraft-node's key-value service (docs/wire-protocol.md,
 * "Client protocol"), shared by lcraft-cli and the test and benchmark
 * workloads.
 *
 * One request at a time per client. A request goes to one node, addressed
 * to it (header `to` = its id); a node that is not the leader names the
 * leader and the request follows it; RETRY answers back off (10 ms doubling
 * to 200 ms) and go to the same node again; a node silent for a round
 * (300 ms) is skipped for the next. The request keeps its id across all of
 * that, so the cluster applies a write at most once even when an answer is
 * lost (as long as the nodes remember this client: kv.h, "Sessions").
 *
 * The nodes are the config's [nodes], and any other a membership names: a
 * node that names a leader the client does not know is asked its MEMBERS,
 * whose addresses the client then knows (a node added with --addr).
 *
 * With a client key (the config's [cluster] client_key_file, or a tool's
 * --key-file: cfg->has_client_key) every request is sealed as this client
 * (its id the sender, a boot from the clock, channel LCR_AUTH_CHANNEL_CLIENT)
 * and every answer must verify as its node's (docs/wire-protocol.md, "Client
 * authentication"); one that does not is dropped, said with verbose, and
 * the client waits on.
 *
 * A client is not thread-safe; use one per thread.
 */
#ifndef LCR_BENCH_CLIENT_H
#define LCR_BENCH_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "wire.h"

struct lcr_kv_client;

struct lcr_kv_answer {
	uint8_t status;	 /* enum lcr_client_status */
	uint32_t leader; /* NOT_LEADER: the node named */
	uint32_t from;	 /* the node that answered */
	uint8_t *value;	 /* malloc'ed, NUL-terminated (free it) */
	uint32_t value_len;
};

/*
 * A client of the cluster `cfg` describes (which must outlive it), talking to
 * `group`. With cfg->has_client_key the key is read here: the caller may wipe
 * cfg's copy once its clients are open.
 */
int lcr_kv_client_open(struct lcr_kv_client **out, const struct lcr_app_config *cfg, uint32_t group,
		       char *why, size_t why_len);
void lcr_kv_client_close(struct lcr_kv_client *c);

/* Say on stderr what happens to each try. */
void lcr_kv_client_verbose(struct lcr_kv_client *c, bool on);

/* This client's random id, and a fresh request id. */
uint64_t lcr_kv_client_id(const struct lcr_kv_client *c);
uint64_t lcr_kv_client_next_id(struct lcr_kv_client *c);

/* Answers dropped because they did not verify, by auth.h's reason (LCR_AUTH_BAD_MAC ...). */
uint64_t lcr_kv_client_auth_drops(const struct lcr_kv_client *c, uint32_t reason);

/* Whether `node` is one of the cluster's nodes. */
bool lcr_kv_client_knows(const struct lcr_kv_client *c, uint32_t node);

/*
 * Know node `id` at `addr` ("HOST:PORT" of its Raft port, an IPv6 host in
 * brackets; its client port is PORT + client_port_offset), replacing what
 * was known of it. 0, -EINVAL (not HOST:PORT) or -ENOSPC (LCR_PEERS_MAX * 2
 * nodes known).
 */
int lcr_kv_client_add_node(struct lcr_kv_client *c, uint32_t id, const char *addr);

/* ---- the MEMBERS answer (docs/wire-protocol.md, "The MEMBERS answer") ------------- */

struct lcr_members_node {
	uint32_t id;
	bool voter;
	char addr[LCR_CLIENT_ADDR_MAX + 8]; /* "" if the node gave none */
	bool progress;			    /* matched and lag given (the leader's view) */
	uint64_t matched;
	uint64_t lag;
};

#define LCR_MEMBERS_HELD_MAX 64 /* LCR_HELD_MAX (lcraft.h) */
struct lcr_members {
	uint32_t group, node, leader;
	char role[16];
	uint64_t term;
	struct lcr_log_id log_id; /* the membership's entry; all 0: none */
	bool joint, committed;
	uint32_t n_configs; /* 1, or 2 when joint (the old config first) */
	struct {
		uint32_t n;
		uint32_t ids[LCR_NODES_MAX];
	} configs[LCR_CONFIGS_MAX];
	uint32_t n_learners;
	uint32_t learners[LCR_NODES_MAX];
	uint64_t last_index;
	uint32_t n_nodes;
	struct lcr_members_node nodes[2 * LCR_NODES_MAX];
	/* The nodes the answering node recorded holding state (lcr_group_held). */
	uint32_t n_held;
	uint32_t held[LCR_MEMBERS_HELD_MAX];
	bool checking; /* the answering node holds nothing yet: it checks itself (rejoin.h) */
};

/* Parse a MEMBERS answer (`len` bytes of JSON): 0, or -EBADMSG. */
int lcr_members_parse(const char *json, size_t len, struct lcr_members *m);

/* The member `id` of m, or NULL. */
const struct lcr_members_node *lcr_members_find(const struct lcr_members *m, uint32_t id);

/* Know every node m gives an address for (lcr_kv_client_add_node). */
void lcr_kv_client_learn(struct lcr_kv_client *c, const struct lcr_members *m);

/*
 * Send `r` (client and id filled in by the caller) until a final answer (OK,
 * NOT_FOUND, CAS_FAILED, ERROR) or `timeout_ms` passes, with its flags
 * (r->flags: LCR_CLIENT_F_EXPECT_VALUE for a CAS whose expected value is a
 * value even when empty, else 0). Starts with node
 * `first` (0: the last leader seen, else one at random). Returns 0 with *a
 * filled, -ETIMEDOUT, or -EMSGSIZE (a request the protocol cannot carry,
 * flags the op does not take included).
 */
int lcr_kv_client_call(struct lcr_kv_client *c, const struct lcr_client_req *r, uint32_t first,
		       uint64_t timeout_ms, struct lcr_kv_answer *a);

/* One try with one node: 0 with *a (any status), -ETIMEDOUT, or -errno. */
int lcr_kv_client_exchange(struct lcr_kv_client *c, uint32_t node, const struct lcr_client_req *r,
			   uint64_t wait_ms, struct lcr_kv_answer *a);

/*
 * The two halves of an exchange, for asking several nodes at once: send `r`
 * to `node` without waiting (0, -EINVAL for a node it does not know,
 * -EMSGSIZE, or -errno), then take the answers to `r` (its id) as they come,
 * from any node (a->from says which): 0 with *a, -ETIMEDOUT after `wait_ms`,
 * -ENOTCONN if nothing was sent yet.
 */
int lcr_kv_client_send(struct lcr_kv_client *c, uint32_t node, const struct lcr_client_req *r);
int lcr_kv_client_recv(struct lcr_kv_client *c, const struct lcr_client_req *r, uint64_t wait_ms,
		       struct lcr_kv_answer *a);

/* The ids of the nodes this client knows (the config's, then those learned), at most `max`. */
uint32_t lcr_kv_client_nodes(const struct lcr_kv_client *c, uint32_t *ids, uint32_t max);

#endif /* LCR_BENCH_CLIENT_H */
