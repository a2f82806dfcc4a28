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

struct lcr_app_config {
	struct lcr_node_config node; /* peers, Raft options, storage, faults */
	uint32_t self;		     /* --id */
	char data_dir[512];	     /* with {id} replaced */
	char bind[64];
	uint16_t client_port_offset; /* a node's client port = its port + this */
	uint32_t read_policy;	     /* enum lcr_read_policy for GET */
	uint32_t groups;	     /* groups this node runs (ids 1..groups) */
	bool json_log;
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

/* Print every option with its type, default, bounds and help (--help). */
void lcr_app_config_help(FILE *f);

/* The same as a Markdown reference (docs/operations.md is generated from it). */
void lcr_app_config_markdown(FILE *f);

/* Find a node's address in the loaded config (NULL if absent). */
const struct lcr_peer_addr *lcr_app_config_peer(const struct lcr_app_config *c, uint32_t id);

#endif /* LCR_BENCH_CONFIG_H */
