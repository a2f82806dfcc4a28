/* SPDX-License-Identifier: MIT */
/*
 * lcraft-node's configuration: one table of options (section, key, type,
 * default, bounds, help) drives the INI parser, validation, --help and
 * docs/operations.md, so they cannot drift apart (Redis's config table).
 *
 * A file looks like config/local-3.ini:
 *
 *   [cluster]
 *   id = 7
 *   [nodes]
 *   1 = 127.0.0.1:7001
 *   2 = 127.0.0.1:7002
 *   [node]
 *   data_dir = /var/tmp/lcraft/node-{id}
 *   [raft]
 *   election_timeout_min_ms = 150
 *   ...
 *   [dpdk]                        (read with [node] transport = dpdk)
 *   eal = -l 0 --no-huge -m 256 --no-pci --no-shconf
 *   memif_dir = /tmp/lcraft-memif
 *
 * Errors name the file, line and key: "local-3.ini:12: raft.heartbeat_interval_ms:
 * must be below election_timeout_min_ms (150)".
 */
#ifndef LCR_BENCH_CONFIG_H
#define LCR_BENCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lcraft.h"

/* [node] transport: how the groups' datagrams travel (node.dpdk.enable). */
enum lcr_app_transport {
	LCR_APP_TRANSPORT_SOCKETS = 0, /* the kernel's UDP sockets */
	LCR_APP_TRANSPORT_DPDK = 1,    /* DPDK ports, [dpdk] */
};

/*
 * The loaded file. node's strings (data_dir, bind_host, dpdk.eal, routes,
 * neighbours, memif_dir) point into the buffers below, set by
 * lcr_app_config_default().
 */
struct lcr_app_config {
	struct lcr_node_config node; /* peers, Raft options, storage, faults, dpdk, cores */
	uint32_t self;		     /* --id */
	/* --addr HOST:PORT (lcr_app_config_load_addr): where this node runs;
	 * "" if it is the one [nodes] gives. */
	char addr[80];
	/* The node is not in [nodes]: it runs at `addr` (appended to node.peers)
	 * and joins later, when a leader adds it (lcraft-cli add-learner). */
	bool joining;
	/* [cluster] voters as written ("1,2,3"); "": every node of [nodes].
	 * node.core.membership holds them. */
	char voters[256];
	char data_dir[512]; /* with {id} replaced */
	char bind[64];
	uint32_t transport;	     /* enum lcr_app_transport; node.dpdk.enable */
	char cores[256];	     /* [node] cores as written ("0,2-3"); node.cores/n_cores */
	char eal[4096];		     /* [dpdk] eal: its lines joined by a space, {id} replaced */
	char routes[1024];	     /* [dpdk] routes, blanks removed */
	char neighbours[1024];	     /* [dpdk] neighbours, blanks removed */
	char memif_dir[256];	     /* [dpdk] memif_dir */
	uint16_t client_port_offset; /* a node's client port = its port + this */
	uint32_t read_policy;	     /* enum lcr_read_policy for GET */
	uint32_t groups;	     /* groups this node runs (ids 1..groups) */
	char metrics_listen[128];    /* [node] metrics_listen: HOST:PORT, {id} replaced; "": off */
	bool json_log;
	/*
	 * Authentication (docs/wire-protocol.md, "Authentication" and "Client
	 * authentication"): [cluster] key_file, client_key_file and alg as
	 * written, and the keys they hold, read by the load: a node's (self !=
	 * 0) both, a client's only the client key. Wipe them
	 * (lcr_app_config_wipe_keys) once they were handed on.
	 */
	char key_file[256];
	char client_key_file[256];
	uint32_t auth_alg; /* enum lcr_auth_alg (auth.h): aes256gcm, chacha20poly1305 */
	bool has_key;	   /* key holds the cluster key: the Raft port is authenticated */
	bool has_client_key;
	uint8_t key[32];
	uint8_t client_key[32];
};

/* Defaults for everything (no peers). */
void lcr_app_config_default(struct lcr_app_config *c);

/*
 * Read `path` into `c` (after defaults), for node `self` (0: any, e.g. the
 * client). Returns 0 or -EINVAL with the sentence in `why`
 * ("file:line: section.key: reason"), or -errno when the file cannot be read.
 * Validation of relationships (e.g. heartbeat < election timeout, the node
 * being listed) happens here too.
 */
int lcr_app_config_load(struct lcr_app_config *c, const char *path, uint32_t self, char *why,
			size_t why_len);

/*
 * The same for a node started with --addr HOST:PORT (`addr`, NULL or "": as
 * lcr_app_config_load). A node [nodes] lists must be given its address there;
 * any other runs at `addr`, is appended to node.peers (its own address for
 * binding, the client port and the metrics), and starts with the config's
 * membership, which it is not in: a spare that waits, empty, until a leader
 * adds it (c->joining). Not with transport = dpdk.
 */
int lcr_app_config_load_addr(struct lcr_app_config *c, const char *path, uint32_t self,
			     const char *addr, char *why, size_t why_len);

/*
 * A client's load (self 0): the file, with the client key read from
 * `key_file` instead of [cluster] client_key_file (NULL: the file's, if it
 * names one). lcraft-cli's and kvcheck's --key-file. Errors as
 * lcr_app_config_load's; one about --key-file names it.
 */
int lcr_app_config_load_client(struct lcr_app_config *c, const char *path, const char *key_file,
			       char *why, size_t why_len);

/* Wipe the keys a load read (key, client_key): once the node or client holds what it needs. */
void lcr_app_config_wipe_keys(struct lcr_app_config *c);

/*
 * --peer ID=HOST:PORT, after a load: node ID (not this one) listens at
 * HOST:PORT, although the file's [nodes] does not list it: a member started
 * with --addr, so that a node joining while it leads hears from it before its
 * log names it. It joins the node's peers, never its first membership. A node
 * [nodes] lists keeps the address there (another one is refused). Returns 0,
 * or -EINVAL with a sentence.
 */
int lcr_app_config_add_peer(struct lcr_app_config *c, const char *text, char *why, size_t why_len);

/* Print every option with its type, default, bounds and help (--help). */
void lcr_app_config_help(FILE *f);

/* The same as a Markdown reference (docs/operations.md is generated from it). */
void lcr_app_config_markdown(FILE *f);

/* Find a node's address in the loaded config (NULL if absent). */
const struct lcr_peer_addr *lcr_app_config_peer(const struct lcr_app_config *c, uint32_t id);

#endif /* LCR_BENCH_CONFIG_H */
