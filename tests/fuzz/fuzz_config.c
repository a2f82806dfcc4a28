/* Fuzz lcraft-node's config parser: any file and --id are refused or loaded the same way twice. */
/*
 * bench/config.c reads an INI file (through inih) and the node id of --id.
 * The input here is that file, either as raw bytes or built from the input
 * as lines (sections, known keys with values near their bounds, continuation
 * lines, comments, junk) on top of a valid file, so that loading gets past
 * the syntax to the checks of each option and of their relationships.
 *
 * Properties:
 *   - loading never crashes, never leaks (ASan's leak check) and never
 *     allocates beyond libFuzzer's -malloc_limit_mb;
 *   - loading the same file again gives the same result: the same return
 *     code and sentence, and for an accepted file the same config, byte for
 *     byte (the parser keeps no state between loads);
 *   - a comment appended to the file changes nothing;
 *   - an accepted config is one the node can run: its Raft options pass
 *     lcr_core_config_validate(), node ids are unique and --id is among them,
 *     every string is terminated inside its buffer, the node's pointers are
 *     into the config, cores match lcores;
 *   - a refused file says why, naming the file.
 * There is no writer of configs, so no parse, write, parse round trip.
 *
 * The file lives in a memfd (/proc/self/fd/N): no disk. Built for libFuzzer
 * with clang (LLVMFuzzerTestOneInput), and with -DLCR_FUZZ_STANDALONE as a
 * plain program that feeds N seeded random inputs, so gcc builds and CI run
 * it too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "core.h"
#include "fuzz_input.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz_config: check failed: %s (%s:%d)\n", #x, __FILE__,   \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define FILE_MAX (64u << 10)

static const char base_file[] = "[cluster]\n"
				"id = 7\n"
				"[nodes]\n"
				"1 = 127.0.0.1:7101\n"
				"2 = 127.0.0.1:7201\n"
				"3 = 127.0.0.1:7301\n"
				"[node]\n"
				"data_dir = /var/tmp/lcraft/node-{id}\n"
				"lcores = 1\n"
				"[raft]\n"
				"election_timeout_min_ms = 150\n"
				"election_timeout_max_ms = 300\n"
				"heartbeat_interval_ms = 50\n";

static const char *const sections[] = { "cluster", "nodes", "node", "raft", "storage",
					"faults",  "dpdk",  "",	    "Raft", "nodes " };

static const char *const keys[] = {
	"id",
	"data_dir",
	"lcores",
	"bind",
	"transport",
	"cores",
	"busy_poll",
	"idle_spin_us",
	"io_spin_us",
	"spin_fixed",
	"mtu",
	"client_port_offset",
	"groups",
	"election_timeout_min_ms",
	"election_timeout_max_ms",
	"heartbeat_interval_ms",
	"max_payload_entries",
	"inflight_max",
	"respond_max",
	"reads_max",
	"leader_runs_max",
	"backoff_ms",
	"read_timeout_ms",
	"enable_pre_vote",
	"enable_heartbeat",
	"enable_elect",
	"enable_leader_restore",
	"allow_log_reversion",
	"snapshot_logs_since_last",
	"max_in_snapshot_log_to_keep",
	"purge_batch_size",
	"read_policy",
	"durability",
	"io_mode",
	"segment_mb",
	"loss_pct",
	"dup_pct",
	"reorder_pct",
	"delay_us",
	"jitter_us",
	"seed",
	"eal",
	"routes",
	"neighbours",
	"memif_dir",
	"rx_desc",
	"tx_desc",
	"1",
	"2",
	"4",
	"4294967295",
	"4294967296",
	"0",
	"heartbeat_interval",
};

static const char *const values[] = {
	"0",
	"1",
	"2",
	"16",
	"64",
	"65",
	"150",
	"300",
	"1000",
	"65535",
	"65536",
	"4294967295",
	"4294967296",
	"18446744073709551615",
	"18446744073709551616",
	"-1",
	"+1",
	"0x10",
	"1e3",
	"007",
	"true",
	"false",
	"yes",
	"off",
	"12.5",
	"100.0000",
	"100.00001",
	"0.0001",
	".5",
	"5.",
	"sockets",
	"dpdk",
	"fsync",
	"none",
	"direct-dsync",
	"buffered",
	"read_index",
	"lease",
	"0,2-3",
	"3-1",
	"0-63",
	"127.0.0.1:7401",
	"[::1]:7001",
	"[::1]",
	"::1:7001",
	"localhost:1",
	"host-name.example:65535",
	"127.0.0.1:0",
	"127.0.0.1:65536",
	"1.2.3:80",
	"0.0.0.0",
	"::",
	"/tmp/x-{id}-{id}",
	"{id",
	"-l 0 --no-huge",
	"1=net_memif0, 2 = 0000:01:00.0",
	"1=aa:bb:cc:dd:ee:ff",
	"1=aa:bb:cc:dd:ee",
	"/tmp/lcraft-memif",
	"",
	" ; comment",
	"a;b",
};

struct text {
	char buf[FILE_MAX];
	size_t len;
};

static void put(struct text *t, const char *s, size_t n)
{
	if (n > sizeof(t->buf) - t->len)
		n = sizeof(t->buf) - t->len;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
}

static void puts_(struct text *t, const char *s)
{
	put(t, s, strlen(s));
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A value: one of the list, a run of one character, or raw input bytes. */
static void put_value(struct text *t, struct input *in)
{
	uint8_t sel = (uint8_t)take(in, 1);
	char run[300];

	if (sel < 200) {
		puts_(t, values[sel % N(values)]);
	} else if (sel < 230) {
		size_t n = (size_t)take(in, 2) % sizeof(run);

		memset(run, "a9{:/ ,-"[sel % 8], n);
		put(t, run, n);
	} else {
		size_t n = (size_t)take(in, 1) % 40;

		for (size_t i = 0; i < n && in->n; i++) {
			char ch = (char)take(in, 1);

			if (ch != '\n')
				put(t, &ch, 1);
		}
	}
}

/* Lines built from the input, after the valid file or instead of it. */
static void build(struct text *t, struct input *in)
{
	uint8_t how = (uint8_t)take(in, 1);

	if (how & 1)
		puts_(t, base_file);
	while (in->n && t->len < sizeof(t->buf) - 512) {
		uint8_t op = (uint8_t)take(in, 1);

		if (op & 0x80)
			puts_(t, "  "); /* indented: a continuation, or just indented */
		switch (op & 7) {
		case 0:
			puts_(t, "[");
			puts_(t, sections[take(in, 1) % N(sections)]);
			puts_(t, op & 0x40 ? "]" : "] ; x");
			break;
		case 1:
		case 2:
		case 3:
			puts_(t, keys[take(in, 1) % N(keys)]);
			puts_(t, op & 0x40 ? " = " : "=");
			put_value(t, in);
			break;
		case 4:
			put_value(t, in); /* a continuation of the value above, or junk */
			break;
		case 5:
			puts_(t, op & 0x40 ? "; comment" : "# comment");
			break;
		case 6:
			break; /* blank */
		default: {
			/* Raw bytes, newlines and all. */
			size_t n = (size_t)take(in, 1) % 64;

			for (size_t i = 0; i < n && in->n; i++) {
				char ch = (char)take(in, 1);
				put(t, &ch, 1);
			}
			break;
		}
		}
		puts_(t, op & 0x20 ? "\r\n" : "\n");
	}
}

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* What an accepted config must be. */
static void check_accepted(const struct lcr_app_config *c, uint32_t self)
{
	const struct lcr_node_config *n = &c->node;
	char why[256];

	CHECK(c->self == self);
	CHECK(n->n_peers >= 1 && n->n_peers <= LCR_PEERS_MAX);
	for (uint32_t i = 0; i < n->n_peers; i++) {
		CHECK(n->peers[i].id != 0);
		CHECK(terminated(n->peers[i].host, sizeof(n->peers[i].host)));
		CHECK(n->peers[i].host[0] != '\0');
		for (uint32_t k = 0; k < i; k++)
			CHECK(n->peers[k].id != n->peers[i].id);
	}
	if (self)
		CHECK(lcr_app_config_peer(c, self) != NULL);
	CHECK(lcr_core_config_validate(&n->core, why, sizeof(why)) == 0);
	CHECK(n->core.heartbeat_interval_ms < n->core.election_timeout_min_ms);
	CHECK(n->core.election_timeout_min_ms <= n->core.election_timeout_max_ms);
	CHECK(terminated(c->data_dir, sizeof(c->data_dir)) && c->data_dir[0] != '\0');
	CHECK(terminated(c->bind, sizeof(c->bind)));
	CHECK(terminated(c->cores, sizeof(c->cores)));
	CHECK(terminated(c->eal, sizeof(c->eal)));
	CHECK(terminated(c->routes, sizeof(c->routes)));
	CHECK(terminated(c->neighbours, sizeof(c->neighbours)));
	CHECK(terminated(c->memif_dir, sizeof(c->memif_dir)));
	if (self)
		CHECK(strstr(c->data_dir, "{id}") == NULL);
	CHECK(n->data_dir == c->data_dir && n->bind_host == c->bind);
	CHECK(n->dpdk.eal == c->eal && n->dpdk.routes == c->routes);
	CHECK(n->dpdk.neighbours == c->neighbours && n->dpdk.memif_dir == c->memif_dir);
	CHECK(n->dpdk.enable == (c->transport == LCR_APP_TRANSPORT_DPDK));
	CHECK(n->lcores >= 1);
	CHECK(n->n_cores == 0 || n->n_cores == n->lcores);
	CHECK(strchr(c->routes, ' ') == NULL && strchr(c->neighbours, ' ') == NULL);
}

static int fd = -1;
static char path[64];
static struct lcr_app_config c1, c2;
static unsigned long accepted; /* files loaded */

/* The same config twice, or the first bytes where they differ and the file. */
static void check_same(const struct lcr_app_config *a, const struct lcr_app_config *b,
		       const struct text *t)
{
	static struct lcr_app_config na, nb;
	const uint8_t *x = (const uint8_t *)&na, *y = (const uint8_t *)&nb;
	size_t at = 0;

	memcpy(&na, a, sizeof(na));
	memcpy(&nb, b, sizeof(nb));
	while (at < sizeof(*a) && x[at] == y[at])
		at++;
	if (at == sizeof(*a))
		return;
	fprintf(stderr, "fuzz_config: loaded twice, the configs differ at byte %zu of %zu:\n%.*s\n",
		at, sizeof(*a), (int)t->len, t->buf);
	CHECK(!"the same config");
}

static int load(const void *buf, size_t len, uint32_t self, struct lcr_app_config *c, char *why,
		size_t why_len)
{
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, buf, len, 0) == (ssize_t)len);
	return lcr_app_config_load(c, path, self, why, why_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct text t;
	static const char tail[] = "\n; appended\n";
	char why1[512], why2[512];
	struct input in = { data, size };
	uint32_t self;

	if (fd < 0) {
		fd = memfd_create("fuzz_config.ini", 0);
		CHECK(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	uint8_t mode = (uint8_t)take(&in, 1);
	/* --id: mostly a listed node, sometimes none (a client) or any. */
	self = mode & 0x80 ? (uint32_t)take(&in, 4) : mode & 0x40 ? 0u : 1u + (mode >> 4) % 4u;
	t.len = 0;
	if (mode & 1)
		put(&t, (const char *)in.p, in.n < FILE_MAX ? in.n : FILE_MAX);
	else
		build(&t, &in);

	int rc1 = load(t.buf, t.len, self, &c1, why1, sizeof(why1));
	CHECK(rc1 == 0 || rc1 == -EINVAL);
	if (rc1 == 0) {
		CHECK(why1[0] == '\0');
		check_accepted(&c1, self);
		accepted++;
	} else {
		CHECK(strncmp(why1, path, strlen(path)) == 0); /* names the file */
		CHECK(why1[strlen(path)] == ':');
	}
	memcpy(&c2, &c1, sizeof(c1));

	/* The same file again: the same answer, the same config. */
	int rc2 = load(t.buf, t.len, self, &c1, why2, sizeof(why2));
	CHECK(rc1 == rc2);
	CHECK(strcmp(why1, why2) == 0);
	if (rc1 == 0)
		check_same(&c1, &c2, &t);

	/* A comment at the end changes nothing. */
	if (t.len + sizeof(tail) <= sizeof(t.buf)) {
		put(&t, tail, sizeof(tail) - 1);
		rc2 = load(t.buf, t.len, self, &c1, why2, sizeof(why2));
		if (rc1 != rc2)
			fprintf(stderr,
				"fuzz_config: with a comment appended: %d (%s), before %d (%s)\n",
				rc2, why2, rc1, why1);
		CHECK(rc1 == rc2);
		if (rc1 == 0)
			check_same(&c1, &c2, &t);
	}
	return 0;
}

#ifdef LCR_FUZZ_STANDALONE
int main(int argc, char **argv)
{
	unsigned long runs = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
	static uint8_t buf[2048];
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (unsigned long r = 0; r < runs; r++) {
		size_t n = fuzz_random_input(&x, buf, sizeof(buf));
		/* Mostly built files on the valid one, with few edits: those get accepted. */
		if (r % 4 != 0) {
			buf[0] &= (uint8_t)~1u;
			if (n > 1)
				buf[1] |= 1;
			if (n > 2 + r % 6)
				n = 2 + r % 6;
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("fuzz_config: %lu random files (%lu accepted), each loaded alike twice\n", runs,
	       accepted);
	return 0;
}
#endif
