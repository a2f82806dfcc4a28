/* SPDX-License-Identifier: MIT */
/*
 * The node's metrics in DPDK's telemetry (dpdk.h, lcr_dpdk_telemetry_set),
 * beside the ports' own: dpdk-telemetry.py, or any client of the socket
 * /var/run/dpdk/<file-prefix>/dpdk_telemetry.v2, asks for /lcraft/... as it
 * asks for /ethdev/stats.
 *
 * A command's callback runs on DPDK's telemetry thread. It asks its owner
 * for JSON (the runtime renders it on the lcores), which is turned into
 * DPDK's data model here: telemetry 22.11 nests one level at most, so an
 * object becomes one dictionary whose names are the paths of its leaves
 * ("net/requests", "dpdk/ports/0/ipackets"), and a top-level array of
 * non-negative integers an array. Names longer than DPDK allows and entries
 * past its 256 are left out and counted (an entry "truncated"). JSON is
 * parsed with jansson, which DPDK itself depends on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <rte_telemetry.h>

#include "dpdk.h"

#define TEL_CMDS_MAX 8
#define TEL_JSON_MAX (256u * 1024) /* what one answer's JSON may take */
#define TEL_DEPTH    16

static struct {
	pthread_mutex_t mu; /* held while a callback runs: clear() waits for it */
	struct {
		char cmd[64];
		lcr_dpdk_tel_fn fn; /* NULL: answered as an error */
		void *ctx;
	} cmds[TEL_CMDS_MAX];
	uint32_t n;
} tel = { .mu = PTHREAD_MUTEX_INITIALIZER };

struct flat {
	struct rte_tel_data *d;
	uint32_t entries, truncated;
};

static void leaf(struct flat *f, const char *name, json_t *v)
{
	if (f->entries >= RTE_TEL_MAX_DICT_ENTRIES - 1 || strlen(name) >= RTE_TEL_MAX_STRING_LEN) {
		f->truncated++;
		return;
	}
	int rc;
	char s[64];
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		rc = rte_tel_data_add_dict_u64(f->d, name, (uint64_t)json_integer_value(v));
	} else if (json_is_integer(v) && json_integer_value(v) >= INT32_MIN) {
		rc = rte_tel_data_add_dict_int(f->d, name, (int)json_integer_value(v));
	} else if (json_is_real(v)) {
		/* 22.11 carries no floating point: the number as text. */
		snprintf(s, sizeof(s), "%.3f", json_real_value(v));
		rc = rte_tel_data_add_dict_string(f->d, name, s);
	} else if (json_is_string(v)) {
		rc = rte_tel_data_add_dict_string(f->d, name, json_string_value(v));
	} else if (json_is_boolean(v)) {
		rc = rte_tel_data_add_dict_u64(f->d, name, json_is_true(v));
	} else {
		rc = -EINVAL; /* null, or an integer below INT32_MIN */
	}
	if (rc == 0)
		f->entries++;
	else
		f->truncated++;
}

/* Names are letters, digits, '_' and '/': anything else becomes '_'. */
static size_t name_append(char *path, size_t at, const char *key)
{
	size_t o = at;
	if (o && o < RTE_TEL_MAX_STRING_LEN)
		path[o++] = '/';
	for (const char *k = key; *k && o < RTE_TEL_MAX_STRING_LEN; k++, o++) {
		char c = *k;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '/';
		path[o] = ok ? c : '_';
	}
	path[o] = 0;
	return o;
}

static void flatten(struct flat *f, json_t *v, char *path, size_t at, int depth)
{
	if (depth > TEL_DEPTH) {
		f->truncated++;
		return;
	}
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
		{
			size_t o = name_append(path, at, k);
			flatten(f, x, path, o, depth + 1);
			path[at] = 0;
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		{
			char idx[24];
			snprintf(idx, sizeof(idx), "%zu", i);
			size_t o = name_append(path, at, idx);
			flatten(f, x, path, o, depth + 1);
			path[at] = 0;
		}
	} else {
		leaf(f, path, v);
	}
}

/* JSON text into d: an array of non-negative integers, or a flat dict. */
static int to_tel(struct rte_tel_data *d, const char *text, size_t len)
{
	json_error_t err;
	json_t *root = json_loadb(text, len, 0, &err);
	if (!root)
		return -EINVAL;
	int rc = 0;
	if (json_is_array(root)) {
		rte_tel_data_start_array(d, RTE_TEL_U64_VAL);
		size_t i;
		json_t *x;
		json_array_foreach(root, i, x)
		{
			if (!json_is_integer(x) || json_integer_value(x) < 0 ||
			    i >= RTE_TEL_MAX_ARRAY_ENTRIES) {
				rc = -EINVAL;
				break;
			}
			rte_tel_data_add_array_u64(d, (uint64_t)json_integer_value(x));
		}
	} else if (json_is_object(root)) {
		char path[RTE_TEL_MAX_STRING_LEN + 1] = "";
		struct flat f = { .d = d };
		rte_tel_data_start_dict(d);
		flatten(&f, root, path, 0, 0);
		if (f.truncated)
			rte_tel_data_add_dict_u64(d, "truncated", f.truncated);
	} else {
		rc = -EINVAL;
	}
	json_decref(root);
	return rc;
}

static int tel_cb(const char *cmd, const char *params, struct rte_tel_data *d)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&tel.mu);
	for (uint32_t i = 0; i < tel.n; i++) {
		if (strcmp(tel.cmds[i].cmd, cmd) != 0)
			continue;
		if (!tel.cmds[i].fn)
			break; /* no node now */
		char *buf = malloc(TEL_JSON_MAX);
		if (!buf) {
			rc = -ENOMEM;
			break;
		}
		int n = tel.cmds[i].fn(tel.cmds[i].ctx, params ? params : "", buf, TEL_JSON_MAX);
		rc = n < 0 ? n : to_tel(d, buf, (size_t)n);
		free(buf);
		break;
	}
	pthread_mutex_unlock(&tel.mu);
	return rc;
}

int lcr_dpdk_telemetry_set(const char *cmd, const char *help, lcr_dpdk_tel_fn fn, void *ctx)
{
	int rc = 0;
	if (strlen(cmd) >= sizeof(tel.cmds[0].cmd))
		return -ENAMETOOLONG;
	pthread_mutex_lock(&tel.mu);
	uint32_t i = 0;
	while (i < tel.n && strcmp(tel.cmds[i].cmd, cmd) != 0)
		i++;
	if (i == tel.n) {
		/* DPDK keeps a command for the process's life: registered once,
		 * pointed at whichever node is open. */
		if (tel.n == TEL_CMDS_MAX) {
			rc = -ENOSPC;
			goto out;
		}
		rc = rte_telemetry_register_cmd(cmd, tel_cb, help);
		if (rc < 0)
			goto out;
		snprintf(tel.cmds[i].cmd, sizeof(tel.cmds[i].cmd), "%s", cmd);
		tel.n++;
	}
	tel.cmds[i].fn = fn;
	tel.cmds[i].ctx = ctx;
out:
	pthread_mutex_unlock(&tel.mu);
	return rc;
}

void lcr_dpdk_telemetry_clear(void *ctx)
{
	pthread_mutex_lock(&tel.mu); /* after a callback under way */
	for (uint32_t i = 0; i < tel.n; i++)
		if (tel.cmds[i].ctx == ctx)
			tel.cmds[i].fn = NULL;
	pthread_mutex_unlock(&tel.mu);
}
