/* lcraft-node's config file: values land in their fields, defaults, errors name file:line, key;
 * key files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "auth.h"
#include "config.h"
#include "log.h"

static char dir[256];  /* a fresh temporary directory per run */
static char path[300]; /* the file each test writes */

/* Three nodes on loopback: the part every file needs. Line 1..6. */
#define BASE                                                                                       \
	"[cluster]\n"                                                                              \
	"id = 7\n"                                                                                 \
	"[nodes]\n"                                                                                \
	"1 = 127.0.0.1:7101\n"                                                                     \
	"2 = 127.0.0.1:7201\n"                                                                     \
	"3 = 127.0.0.1:7301\n"

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	snprintf(dir, sizeof(dir), "%s/lcr-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/test.ini", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return rmdir(dir);
}

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int load(const char *text, uint32_t self, struct lcr_app_config *c, char *why, size_t len)
{
	write_file(text);
	return lcr_app_config_load(c, path, self, why, len);
}

static void load_ok(const char *text, uint32_t self, struct lcr_app_config *c)
{
	char why[256];
	int rc = load(text, self, c, why, sizeof(why));

	if (rc != 0)
		fail_msg("unexpected error: %s", why);
}

/*
 * The file must be refused with "<path>:<where>...", and the sentence must
 * contain `contains` (NULL: nothing more to check).
 */
static void load_err(const char *text, uint32_t self, const char *where, const char *contains)
{
	struct lcr_app_config c;
	char why[512], prefix[600];

	assert_int_equal(load(text, self, &c, why, sizeof(why)), -EINVAL);
	if (getenv("LCR_TEST_VERBOSE"))
		printf("%s\n", why);
	snprintf(prefix, sizeof(prefix), "%s:%s", path, where);
	if (strncmp(why, prefix, strlen(prefix)) != 0)
		fail_msg("error '%s' does not start with '%s'", why, prefix);
	if (contains && !strstr(why, contains))
		fail_msg("error '%s' does not contain '%s'", why, contains);
}

/* ---- values land where they should --------------------------------------------- */

static void test_config_full_file(void **state)
{
	struct lcr_app_config c;
	const char *text = "; every option, none at its default\n"
			   "[cluster]\n"
			   "id = 18446744073709551615\n"
			   "\n"
			   "[nodes]\n"
			   "1 = 10.0.0.1:7101   ; inline comment\n"
			   "2 = node-b.example:7201\n"
			   "3 = 10.0.0.3:7301\n"
			   "\n"
			   "[node]\n"
			   "data_dir = /srv/lcraft/n{id}\n"
			   "lcores = 4\n"
			   "cores = 0-1, 3,5\n"
			   "bind = 10.0.0.2\n"
			   "busy_poll = yes\n"
			   "mtu = 9000\n"
			   "client_port_offset = 500\n"
			   "groups = 16\n"
			   "\n"
			   "[raft]\n"
			   "  election_timeout_min_ms = 1000   ; indented lines are fine\n"
			   "  election_timeout_max_ms = 2000\n"
			   "heartbeat_interval_ms = 100\n"
			   "max_payload_entries = 64\n"
			   "inflight_max = 8\n"
			   "respond_max = 512\n"
			   "reads_max = 100\n"
			   "leader_runs_max = 1024\n"
			   "backoff_ms = 50\n"
			   "read_timeout_ms = 900\n"
			   "enable_pre_vote = on\n"
			   "enable_heartbeat = FALSE\n"
			   "enable_elect = 0\n"
			   "enable_leader_restore = true\n"
			   "allow_log_reversion = 1\n"
			   "read_policy = lease_read\n"
			   "\n"
			   "[storage]\n"
			   "durability = none\n"
			   "io_mode = buffered-fdatasync\n"
			   "segment_mb = 128\n"
			   "\n"
			   "# faults, for tests\n"
			   "[faults]\n"
			   "loss_pct = 2.5\n"
			   "dup_pct = 0.0001\n"
			   "reorder_pct = 100\n"
			   "delay_us = 1500\n"
			   "jitter_us = 250\n"
			   "seed = 42\n";

	(void)state;
	load_ok(text, 2, &c);
	assert_int_equal(c.self, 2);
	assert_int_equal(c.node.id, 2);
	assert_true(c.node.cluster == UINT64_MAX);
	assert_int_equal(c.node.n_peers, 3);
	assert_int_equal(c.node.peers[0].id, 1);
	assert_string_equal(c.node.peers[0].host, "10.0.0.1");
	assert_int_equal(c.node.peers[0].port, 7101);
	assert_int_equal(c.node.peers[1].id, 2);
	assert_string_equal(c.node.peers[1].host, "node-b.example");
	assert_int_equal(c.node.peers[1].port, 7201);
	assert_int_equal(c.node.peers[2].port, 7301);

	assert_string_equal(c.data_dir, "/srv/lcraft/n2");
	assert_ptr_equal(c.node.data_dir, c.data_dir);
	assert_int_equal(c.node.lcores, 4);
	assert_int_equal(c.node.n_cores, 4);
	assert_int_equal(c.node.cores[0], 0);
	assert_int_equal(c.node.cores[1], 1);
	assert_int_equal(c.node.cores[2], 3);
	assert_int_equal(c.node.cores[3], 5);
	assert_string_equal(c.bind, "10.0.0.2");
	assert_ptr_equal(c.node.bind_host, c.bind);
	assert_true(c.node.busy_poll);
	assert_int_equal(c.node.mtu, 9000);
	assert_int_equal(c.client_port_offset, 500);
	assert_int_equal(c.groups, 16);

	assert_int_equal(c.node.core.election_timeout_min_ms, 1000);
	assert_int_equal(c.node.core.election_timeout_max_ms, 2000);
	assert_int_equal(c.node.core.heartbeat_interval_ms, 100);
	assert_int_equal(c.node.core.max_payload_entries, 64);
	assert_int_equal(c.node.core.inflight_max, 8);
	assert_int_equal(c.node.core.respond_max, 512);
	assert_int_equal(c.node.core.reads_max, 100);
	assert_int_equal(c.node.core.leader_runs_max, 1024);
	assert_int_equal(c.node.core.backoff_ms, 50);
	assert_int_equal(c.node.core.read_timeout_ms, 900);
	assert_true(c.node.core.enable_pre_vote);
	assert_false(c.node.core.enable_heartbeat);
	assert_false(c.node.core.enable_elect);
	assert_true(c.node.core.enable_leader_restore);
	assert_true(c.node.core.allow_log_reversion);
	assert_int_equal(c.read_policy, LCR_READ_LEASE);
	/* The core's ids and membership are filled in too. */
	assert_int_equal(c.node.core.id, 2);
	assert_int_equal(c.node.core.membership.n_configs, 1);
	assert_int_equal(c.node.core.membership.configs[0].n, 3);
	assert_int_equal(c.node.core.membership.configs[0].ids[2], 3);

	assert_int_equal(c.node.durability, LCR_DURABILITY_NONE);
	assert_int_equal(c.node.io_mode, LCR_IO_BUFFERED_FDATASYNC);
	assert_true(c.node.segment_bytes == 128ull << 20);

	assert_int_equal(c.node.fault_loss_ppm, 25000);
	assert_int_equal(c.node.fault_dup_ppm, 1);
	assert_int_equal(c.node.fault_reorder_ppm, 1000000);
	assert_true(c.node.fault_delay_ns == 1500000);
	assert_true(c.node.fault_jitter_ns == 250000);
	assert_true(c.node.fault_seed == 42);
	assert_false(c.json_log);

	assert_ptr_equal(lcr_app_config_peer(&c, 3), &c.node.peers[2]);
	assert_null(lcr_app_config_peer(&c, 4));
}

static void test_config_defaults(void **state)
{
	struct lcr_app_config c, d;
	struct lcr_core_config core;

	(void)state;
	load_ok(BASE, 1, &c);
	lcr_core_config_default(&core, 1);
	assert_int_equal(c.node.cluster, 7);
	assert_string_equal(c.data_dir, "/var/tmp/lcraft/node-1");
	assert_int_equal(c.node.lcores, 1);
	assert_string_equal(c.bind, "0.0.0.0");
	assert_ptr_equal(c.node.bind_host, c.bind);
	assert_false(c.node.busy_poll);
	assert_int_equal(c.node.mtu, 1500);
	assert_int_equal(c.client_port_offset, 1000);
	assert_int_equal(c.groups, 1);
	assert_int_equal(c.read_policy, LCR_READ_INDEX);
	assert_int_equal(c.node.durability, LCR_DURABILITY_FSYNC);
	assert_int_equal(c.node.io_mode, LCR_IO_DIRECT_DSYNC);
	assert_true(c.node.segment_bytes == 64ull << 20);
	assert_int_equal(c.node.fault_loss_ppm, 0);
	assert_int_equal(c.node.fault_dup_ppm, 0);
	assert_int_equal(c.node.fault_reorder_ppm, 0);
	assert_true(c.node.fault_delay_ns == 0 && c.node.fault_jitter_ns == 0);
	assert_true(c.node.fault_seed == 0);
	assert_int_equal(c.transport, LCR_APP_TRANSPORT_SOCKETS);
	assert_false(c.node.dpdk.enable);
	assert_int_equal(c.node.n_cores, 0);
	assert_string_equal(c.cores, "");
	assert_string_equal(c.node.dpdk.eal, "");
	assert_string_equal(c.node.dpdk.routes, "");
	assert_string_equal(c.node.dpdk.neighbours, "");
	assert_string_equal(c.node.dpdk.memif_dir, "");
	assert_int_equal(c.node.dpdk.rx_desc, 0);
	assert_int_equal(c.node.dpdk.tx_desc, 0);

	/* Raft options: exactly lcr_core_config_default()'s, but Pre-Vote, which
	 * lcraft-node turns on (etcd's default since 3.5). */
	assert_true(c.node.core.election_timeout_min_ms == core.election_timeout_min_ms);
	assert_true(c.node.core.election_timeout_max_ms == core.election_timeout_max_ms);
	assert_true(c.node.core.heartbeat_interval_ms == core.heartbeat_interval_ms);
	assert_int_equal(c.node.core.max_payload_entries, core.max_payload_entries);
	assert_int_equal(c.node.core.inflight_max, core.inflight_max);
	assert_int_equal(c.node.core.respond_max, core.respond_max);
	assert_int_equal(c.node.core.reads_max, core.reads_max);
	assert_int_equal(c.node.core.leader_runs_max, core.leader_runs_max);
	assert_true(c.node.core.backoff_ms == core.backoff_ms);
	assert_true(c.node.core.read_timeout_ms == core.read_timeout_ms);
	assert_false(core.enable_pre_vote);
	assert_true(c.node.core.enable_pre_vote);
	assert_int_equal(c.node.core.enable_heartbeat, core.enable_heartbeat);
	assert_int_equal(c.node.core.enable_elect, core.enable_elect);
	assert_int_equal(c.node.core.enable_leader_restore, core.enable_leader_restore);
	assert_int_equal(c.node.core.allow_log_reversion, core.allow_log_reversion);
	assert_true(c.node.core.seed == core.seed);

	/* lcr_app_config_default() alone gives the same, without peers. */
	lcr_app_config_default(&d);
	assert_int_equal(d.node.n_peers, 0);
	assert_string_equal(d.data_dir, "/var/tmp/lcraft/node-{id}");
	assert_ptr_equal(d.node.data_dir, d.data_dir);
	assert_ptr_equal(d.node.dpdk.eal, d.eal);
	assert_ptr_equal(d.node.dpdk.memif_dir, d.memif_dir);
	assert_int_equal(d.node.mtu, c.node.mtu);
	assert_true(d.node.segment_bytes == c.node.segment_bytes);
}

static void test_config_id_substitution(void **state)
{
	struct lcr_app_config c;

	(void)state;
	load_ok(BASE "[node]\ndata_dir = /d/{id}/x-{id}\n", 3, &c);
	assert_string_equal(c.data_dir, "/d/3/x-3");
	assert_ptr_equal(c.node.data_dir, c.data_dir);
	/* A client (self 0) has no data: the template stays. */
	load_ok(BASE "[node]\ndata_dir = /d/{id}\n", 0, &c);
	assert_string_equal(c.data_dir, "/d/{id}");
	assert_int_equal(c.self, 0);
	/* No {id}: as written. */
	load_ok(BASE "[node]\ndata_dir = relative/dir\n", 2, &c);
	assert_string_equal(c.data_dir, "relative/dir");
}

static void test_config_ipv6(void **state)
{
	struct lcr_app_config c;
	const char *text = "[cluster]\nid = 1\n"
			   "[nodes]\n"
			   "1 = [::1]:7001\n"
			   "2 = [0:0::1]:7101\n"
			   "3 = [fe80::1:2]:7001\n"
			   "[node]\nbind = ::\n";

	(void)state;
	load_ok(text, 1, &c);
	assert_int_equal(c.node.n_peers, 3);
	assert_string_equal(c.node.peers[0].host, "::1");
	assert_int_equal(c.node.peers[0].port, 7001);
	assert_string_equal(c.node.peers[2].host, "fe80::1:2");
	assert_string_equal(c.bind, "::");
	/* The same address spelled differently is still the same address. */
	load_err("[cluster]\nid = 1\n[nodes]\n1 = [::1]:7001\n2 = [0:0::1]:7001\n"
		 "[node]\nbind = ::\n",
		 1, "5: nodes.2: ", "also node 1's address (line 4)");
	/* An IPv4 socket cannot reach IPv6 peers. */
	load_err("[cluster]\nid = 1\n[nodes]\n1 = [::1]:7001\n2 = [::1]:7101\n", 1,
		 "5: node.bind: ", "set [node] bind = ::");
	load_err("[cluster]\nid = 1\n[node]\nbind = 127.0.0.1\n[nodes]\n1 = [::1]:7001\n2 = "
		 "[::1]:7101\n",
		 1, "4: node.bind: ", "IPv6");
	/* A client has no bind: fine. */
	load_ok("[cluster]\nid = 1\n[nodes]\n1 = [::1]:7001\n2 = [::1]:7101\n", 0, &c);
}

/* ---- transport = dpdk, [dpdk], cores -------------------------------------------------- */

static void test_config_dpdk(void **state)
{
	struct lcr_app_config c;
	const char *text = BASE "[node]\n"
				"transport = dpdk\n"
				"[dpdk]\n"
				"eal = -l 0 --no-huge --vdev=net_af_packet0,iface=veth{id}\n"
				"routes = 2=net_af_packet0, 3 = 0000:01:00.0\n"
				"neighbours = 1=02:00:00:00:00:01,3=0A:bc:DE:f0:12:34\n"
				"rx_desc = 512\n"
				"tx_desc = 32768\n";

	(void)state;
	load_ok(text, 2, &c);
	assert_int_equal(c.transport, LCR_APP_TRANSPORT_DPDK);
	assert_true(c.node.dpdk.enable);
	assert_ptr_equal(c.node.dpdk.eal, c.eal);
	assert_string_equal(c.eal, "-l 0 --no-huge --vdev=net_af_packet0,iface=veth2");
	/* Blanks are dropped from the lists: the library reads them without. */
	assert_ptr_equal(c.node.dpdk.routes, c.routes);
	assert_string_equal(c.routes, "2=net_af_packet0,3=0000:01:00.0");
	assert_ptr_equal(c.node.dpdk.neighbours, c.neighbours);
	assert_string_equal(c.neighbours, "1=02:00:00:00:00:01,3=0A:bc:DE:f0:12:34");
	assert_ptr_equal(c.node.dpdk.memif_dir, c.memif_dir);
	assert_string_equal(c.memif_dir, "");
	assert_int_equal(c.node.dpdk.rx_desc, 512);
	assert_int_equal(c.node.dpdk.tx_desc, 32768);
	/* A client keeps the {id} template, as for data_dir. */
	load_ok(text, 0, &c);
	assert_string_equal(c.eal, "-l 0 --no-huge --vdev=net_af_packet0,iface=veth{id}");

	/* memif_dir alone is enough: the node adds the ports to EAL's arguments. */
	load_ok(BASE "[node]\ntransport = DPDK\n[dpdk]\nmemif_dir = /tmp/m\n", 1, &c);
	assert_true(c.node.dpdk.enable);
	assert_string_equal(c.node.dpdk.memif_dir, "/tmp/m");
	assert_string_equal(c.node.dpdk.eal, "");
	/* [dpdk] is read, and checked, with transport = sockets too. */
	load_ok(BASE "[dpdk]\neal = -l 0\nrx_desc = 0\n", 1, &c);
	assert_false(c.node.dpdk.enable);
	assert_string_equal(c.node.dpdk.eal, "-l 0");
	/* Named hosts are fine for sockets. */
	load_ok("[cluster]\nid = 1\n[nodes]\n1 = a.example:7001\n[node]\ntransport = sockets\n", 1,
		&c);
	assert_false(c.node.dpdk.enable);
}

/* eal, routes and neighbours go on over several lines; the rest are set once. */
static void test_config_eal_append(void **state)
{
	struct lcr_app_config c;
	char big[8192];
	size_t n;

	(void)state;
	/* A repeated line appends after one space. */
	load_ok(BASE "[dpdk]\neal = -l 0 --no-huge\neal = -m 256   ; memory\neal = --no-pci\n", 1,
		&c);
	assert_string_equal(c.eal, "-l 0 --no-huge -m 256 --no-pci");
	/* So does an indented line (spaces or a tab), its inline comment cut; blank
	 * and comment lines in between do not end the value. */
	load_ok(BASE "[dpdk]\n"
		     "eal = -l 0\n"
		     "  --no-huge -m 256   ; no hugepages here\n"
		     "\t--vdev=net_memif0,role=server,socket=/tmp/s;x\n"
		     "\n"
		     "; a comment\n"
		     "    --no-pci\n"
		     "rx_desc = 64\n",
		1, &c);
	assert_string_equal(c.eal, "-l 0 --no-huge -m 256 --vdev=net_memif0,role=server,"
				   "socket=/tmp/s;x --no-pci");
	assert_int_equal(c.node.dpdk.rx_desc, 64);
	/* An indented key = value line is a key of its own (indented files). */
	load_ok(BASE "[dpdk]\n  eal = -l 0\n  memif_dir = /tmp/m\n  rx_desc = 8\n", 1, &c);
	assert_string_equal(c.eal, "-l 0");
	assert_string_equal(c.memif_dir, "/tmp/m");
	assert_int_equal(c.node.dpdk.rx_desc, 8);
	/* An empty first line: nothing to join to. */
	load_ok(BASE "[dpdk]\neal =\neal = -l 0\n", 1, &c);
	assert_string_equal(c.eal, "-l 0");
	/* The lists append after a comma. */
	load_ok(BASE "[dpdk]\nroutes = 1=p0\n  2=p1\nroutes = 3=p2\n"
		     "neighbours = 1=02:00:00:00:00:01\nneighbours = 2=02:00:00:00:00:02\n",
		1, &c);
	assert_string_equal(c.routes, "1=p0,2=p1,3=p2");
	assert_string_equal(c.neighbours, "1=02:00:00:00:00:01,2=02:00:00:00:00:02");
	/* One value over many lines, up to 4095 characters. */
	n = (size_t)snprintf(big, sizeof(big), BASE "[dpdk]\neal = -l 0\n");
	for (int i = 0; i < 28; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "  --vdev=net_null%02d,x=%0120d\n",
				      i, 0);
	load_ok(big, 1, &c);
	assert_int_equal(strlen(c.eal), 4 + 28 * (1 + 140));
	/* ... and one more line is too many: its line is named. */
	snprintf(big + n, sizeof(big) - n, "eal = %0190d\n", 0);
	load_err(big, 1, "37: dpdk.eal: ", "longer than 4095 characters with this line");

	/* Only eal, routes and neighbours go on: an indented line below another key
	 * is a line of its own, and a repeated key is set twice. */
	load_err(BASE "[dpdk]\nmemif_dir = /tmp/m\n  --no-pci\n", 1, "9: syntax error", NULL);
	load_err(BASE "[dpdk]\nmemif_dir = /tmp/m\nmemif_dir = /tmp/n\n", 1,
		 "9: dpdk.memif_dir: ", "set twice (first at line 8)");
	/* A section ends the value: an indented line after it continues nothing. */
	load_err(BASE "[dpdk]\neal = -l 0\n[node]\n  --no-pci\n", 1, "10: syntax error", NULL);
	/* An error in an appended part names its line. */
	load_err(BASE "[dpdk]\nroutes = 1=p0\n  2=p1\n  1=p2\n", 1,
		 "10: dpdk.routes: ", "node 1 is named twice");
	load_err(BASE "[dpdk]\nneighbours = 1=02:00:00:00:00:01\nneighbours = 2=02:00:00:00:00\n",
		 1, "9: dpdk.neighbours: ",
		 "node 2: '02:00:00:00:00' is not an Ethernet address (aa:bb:cc:dd:ee:ff)");
	/* Too long once {id} is replaced: the first line of eal is named. */
	n = (size_t)snprintf(big, sizeof(big),
			     "[cluster]\nid = 1\n[nodes]\n1 = 127.0.0.1:7001\n"
			     "1234567 = 127.0.0.1:7101\n[dpdk]\neal = -l 0\n");
	for (int i = 0; i < 22; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "  {id}%0180d\n", 0);
	load_ok(big, 1, &c);
	assert_int_equal(strlen(c.eal), 4 + 22 * (1 + 1 + 180));
	load_err(big, 1234567, "7: dpdk.eal: ", "longer than 4095 characters with {id} replaced");
}

static void test_config_cores(void **state)
{
	struct lcr_app_config c;

	(void)state;
	load_ok(BASE "[node]\nlcores = 3\ncores = 0,2-3\n", 1, &c);
	assert_int_equal(c.node.n_cores, 3);
	assert_int_equal(c.node.cores[0], 0);
	assert_int_equal(c.node.cores[1], 2);
	assert_int_equal(c.node.cores[2], 3);
	/* A core may serve two lcores; a range of one core; the highest core. */
	load_ok(BASE "[node]\ncores = 1023-1023, 1023\nlcores = 2\n", 1, &c);
	assert_int_equal(c.node.n_cores, 2);
	assert_int_equal(c.node.cores[1], 1023);
	load_ok(BASE "[node]\ncores = 0-63\nlcores = 64\n", 1, &c);
	assert_int_equal(c.node.n_cores, 64);
	assert_int_equal(c.node.cores[63], 63);
	/* Empty or blank: not pinned. */
	load_ok(BASE "[node]\ncores =\nlcores = 2\n", 1, &c);
	assert_int_equal(c.node.n_cores, 0);
	load_ok(BASE "[node]\ncores =   ;none\n", 1, &c);
	assert_int_equal(c.node.n_cores, 0);

	/* One core per lcore: the line of cores is blamed, that of lcores named. */
	load_err(BASE "[node]\nlcores = 2\ncores = 0,2-3\n", 1, "9: node.cores: ",
		 "3 cores (0,2-3) for 2 lcores (line 8): list one core per lcore");
	load_err(BASE "[node]\ncores = 4\nlcores = 2\n", 0,
		 "8: node.cores: ", "1 core (4) for 2 lcores (line 9)");
	load_err(BASE "[node]\ncores = 0,1\n", 1,
		 "8: node.cores: ", "2 cores (0,1) for 1 lcore (the default)");
	/* Syntax and bounds. */
	load_err(BASE "[node]\ncores = 0,x\n", 1,
		 "8: node.cores: ", "'x' is not a core number or range (list them as 0,2-3)");
	load_err(BASE "[node]\ncores = 0,,1\n", 1, "8: node.cores: ", "'' is not a core number");
	load_err(BASE "[node]\ncores = 0,\n", 1, "8: node.cores: ", "'' is not a core number");
	load_err(BASE "[node]\ncores = 1-\n", 1, "8: node.cores: ", "'1-' is not a core number");
	load_err(BASE "[node]\ncores = -1\n", 1, "8: node.cores: ", "'-1' is not a core number");
	load_err(BASE "[node]\ncores = 0 1\n", 1, "8: node.cores: ", "'0 1' is not a core number");
	load_err(BASE "[node]\ncores = 3-2\n", 1,
		 "8: node.cores: ", "the range 3-2 goes down (write 2-3)");
	load_err(BASE "[node]\ncores = 1024\n", 1, "8: node.cores: ", "core 1024 is past 1023");
	load_err(BASE "[node]\ncores = 0-2000\n", 1, "8: node.cores: ", "core 2000 is past 1023");
	load_err(BASE "[node]\ncores = 0-64\n", 1,
		 "8: node.cores: ", "more than 64 cores (one per lcore, at most 64 lcores)");
}

static void test_config_dpdk_errors(void **state)
{
	struct lcr_app_config c;
	char text[512];

	(void)state;
	/* transport = dpdk needs EAL arguments or memif ports. */
	load_err(BASE "[node]\ntransport = dpdk\n", 1, "8: node.transport: ",
		 "dpdk needs [dpdk] eal (the EAL arguments, which name the ports) or [dpdk] "
		 "memif_dir (a memif port to every peer on this host); neither is set");
	load_err(BASE "[node]\ntransport = rdma\n", 1,
		 "8: node.transport: ", "'rdma' is not one of: sockets, dpdk");
	/* ... and IPv4 literals: DPDK resolves no names. */
	load_err("[cluster]\nid = 1\n[nodes]\n1 = 10.0.0.1:7001\n2 = node-b:7001\n"
		 "[node]\ntransport = dpdk\n[dpdk]\neal = -l 0\n",
		 1, "5: nodes.2: ",
		 "node-b is not an IPv4 address, which transport = dpdk needs (DPDK resolves no "
		 "names)");
	load_err("[cluster]\nid = 1\n[node]\nbind = ::\ntransport = dpdk\n[dpdk]\nmemif_dir = "
		 "/m\n[nodes]\n1 = [::1]:7001\n",
		 1, "9: nodes.1: ", "::1 is not an IPv4 address");
	/* The lists name nodes of [nodes], in their syntax. */
	load_err(BASE "[dpdk]\nroutes = 1=p0,4=p1\n", 1,
		 "8: dpdk.routes: ", "node 4 is not in [nodes] (nodes: 1, 2, 3)");
	load_err(BASE "[dpdk]\nneighbours = 1=02:00:00:00:00:01\n  9=02:00:00:00:00:09\n", 1,
		 "8: dpdk.neighbours: ", "node 9 is not in [nodes] (nodes: 1, 2, 3)");
	load_err(BASE "[dpdk]\nroutes = 2\n", 1, "8: dpdk.routes: ", "'2' is not node=value");
	load_err(BASE "[dpdk]\nroutes = x=p0\n", 1,
		 "8: dpdk.routes: ", "'x' is not a node id (1..4294967295)");
	load_err(BASE "[dpdk]\nroutes = 0=p0\n", 1, "8: dpdk.routes: ", "'0' is not a node id");
	load_err(BASE "[dpdk]\nroutes = 2=\n", 1,
		 "8: dpdk.routes: ", "node 2: '' is not a DPDK port name (1..63 characters)");
	load_err(BASE "[dpdk]\nroutes = 2=net memif\n", 1, "8: dpdk.routes: ",
		 "node 2: 'net memif' is not a DPDK port name (letters, digits and _.:- only)");
	load_err(BASE "[dpdk]\nroutes = 2=p0,2=p1\n", 1,
		 "8: dpdk.routes: ", "node 2 is named twice");
	load_err(BASE "[dpdk]\nroutes = 1=p0,,2=p1\n", 1,
		 "8: dpdk.routes: ", "'' is not node=value");
	load_err(BASE "[dpdk]\nneighbours = 2=02:00:00:00:00:0g\n", 1,
		 "8: dpdk.neighbours: ", "'02:00:00:00:00:0g' is not an Ethernet address");
	load_err(BASE "[dpdk]\nneighbours = 2=2:0:0:0:0:1\n", 1,
		 "8: dpdk.neighbours: ", "is not an Ethernet address (aa:bb:cc:dd:ee:ff)");
	load_err(BASE "[dpdk]\nneighbours = 2=02-00-00-00-00-01\n", 1,
		 "8: dpdk.neighbours: ", "is not an Ethernet address");
	load_err(BASE "[dpdk]\nneighbours = 2=02:00:00:00:00:01:02\n", 1,
		 "8: dpdk.neighbours: ", "is not an Ethernet address");
	snprintf(text, sizeof(text), BASE "[dpdk]\nroutes = 1=%0100d\n", 0);
	load_err(text, 1, "8: dpdk.routes: ", "an item is longer than 95 characters");
	/* memif_dir routes every peer itself. */
	load_err(BASE "[dpdk]\nmemif_dir = /tmp/m\nroutes = 2=p0\n", 1, "9: dpdk.routes: ",
		 "memif_dir (line 8) routes every peer through its own memif port; set one of "
		 "them");
	/* Its sockets' names must fit a Unix socket's (107 characters). */
	snprintf(text, sizeof(text), BASE "[dpdk]\nmemif_dir = /%092d\n", 0);
	load_err(text, 1, "8: dpdk.memif_dir: ",
		 "memif-1-2.sock is longer than 107 characters, the most a Unix socket's name "
		 "holds");
	snprintf(text, sizeof(text), BASE "[dpdk]\nmemif_dir = /%091d\n", 0);
	load_ok(text, 1, &c);
	/* Bounds and names. */
	load_err(BASE "[dpdk]\nrx_desc = 32769\n", 1,
		 "8: dpdk.rx_desc: ", "32769 is out of range 0..32768");
	load_err(BASE "[dpdk]\ntx_desc = -1\n", 1, "8: dpdk.tx_desc: ", "negative");
	load_err(BASE "[dpdk]\nbogus = 1\n", 1, "8: dpdk.bogus: unknown option", NULL);
	load_err(BASE "[dpdk]\nmemif = /tmp\n", 1,
		 "8: dpdk.memif: ", "did you mean dpdk.memif_dir?");
	load_err(BASE "[dpk]\n", 1, "7: [dpk]: unknown section", "did you mean [dpdk]?");
}

/* ---- errors: file:line and key ----------------------------------------------------- */

static void test_config_unknown_key(void **state)
{
	(void)state;
	load_err(BASE "[raft]\nheartbeat_ms = 20\n", 1, "8: raft.heartbeat_ms: unknown option",
		 "(did you mean raft.heartbeat_interval_ms?)");
	load_err(BASE "[raft]\nelection_timeout_ms_min = 200\n", 1,
		 "8: raft.election_timeout_ms_min: ", "did you mean raft.election_timeout_min_ms?");
	load_err(BASE "[node]\nlcore = 2\n", 1, "8: node.lcore: ", "did you mean node.lcores?");
	/* In the wrong section: the right one is suggested. */
	load_err(BASE "[node]\nheartbeat_interval_ms = 20\n", 1,
		 "8: node.heartbeat_interval_ms: ", "did you mean raft.heartbeat_interval_ms?");
	load_err(BASE "[node]\nxyzzy = 1\n", 1, "8: node.xyzzy: unknown option", "--help");
	load_err(BASE "[raf]\nheartbeat_interval_ms = 20\n", 1, "7: [raf]: unknown section",
		 "did you mean [raft]?");
	/* An unknown section is reported even when empty. */
	load_err(BASE "[extra]\n", 1, "7: [extra]: unknown section", NULL);
	load_err("id = 7\n" BASE, 1, "1: id: option outside a section", NULL);
}

static void test_config_bad_number(void **state)
{
	(void)state;
	load_err(BASE "[raft]\ninflight_max = 12x\n", 1,
		 "8: raft.inflight_max: ", "'12x' is not a whole decimal number");
	load_err(BASE "[raft]\ninflight_max = -5\n", 1, "8: raft.inflight_max: ", "negative");
	load_err(BASE "[raft]\ninflight_max = 0x10\n", 1, "8: raft.inflight_max: ", "not a whole");
	load_err(BASE "[raft]\ninflight_max = 1.5\n", 1, "8: raft.inflight_max: ", "not a whole");
	load_err(BASE "[raft]\ninflight_max =\n", 1, "8: raft.inflight_max: ", "missing value");
	load_err("[cluster]\nid = 18446744073709551616\n[nodes]\n1 = 127.0.0.1:1\n", 1,
		 "2: cluster.id: ", "too large");
	load_err(BASE "[node]\nmtu = 99999999999999999999999\n", 1, "8: node.mtu: ", "too large");
	load_err(BASE "[faults]\nloss_pct = 2.55555\n", 1, "8: faults.loss_pct: ", "4 decimals");
	load_err(BASE "[faults]\nloss_pct = 2.5%\n", 1, "8: faults.loss_pct: ", "not a percentage");
	load_err(BASE "[faults]\ndup_pct = -1\n", 1, "8: faults.dup_pct: ", "negative");
}

static void test_config_out_of_bounds(void **state)
{
	(void)state;
	load_err(BASE "[node]\nlcores = 65\n", 1, "8: node.lcores: ", "65 is out of range 1..64");
	load_err(BASE "[node]\nlcores = 0\n", 1, "8: node.lcores: ", "0 is out of range 1..64");
	load_err(BASE "[node]\nmtu = 575\n", 1, "8: node.mtu: ", "out of range 576..9028");
	load_err(BASE "[storage]\nsegment_mb = 4097\n", 1,
		 "8: storage.segment_mb: ", "out of range 4..4096");
	load_err(BASE "[raft]\ninflight_max = 4097\n", 1, "8: raft.inflight_max: ", "out of range");
	load_err(BASE "[faults]\nreorder_pct = 100.0001\n", 1,
		 "8: faults.reorder_pct: ", "out of range 0..100");
	load_err("[cluster]\nid = 0\n[nodes]\n1 = 127.0.0.1:7001\n", 1,
		 "2: cluster.id: ", "out of range 1..");
}

static void test_config_bad_bool_enum(void **state)
{
	(void)state;
	load_err(BASE "[node]\nbusy_poll = maybe\n", 1, "8: node.busy_poll: ",
		 "'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)");
	load_err(BASE "[storage]\ndurability = fsnc\n", 1,
		 "8: storage.durability: ", "'fsnc' is not one of: fsync, none");
	load_err(BASE "[storage]\nio_mode = dsync\n", 1, "8: storage.io_mode: ",
		 "one of: direct-dsync, direct-fdatasync, buffered-fdatasync");
	load_err(BASE "[raft]\nread_policy = lease\n", 1,
		 "8: raft.read_policy: ", "one of: read_index, lease_read");
}

static void test_config_bad_nodes(void **state)
{
	(void)state;
	load_err(BASE "2 = 127.0.0.1:7401\n", 1, "7: nodes.2: ", "listed twice (first at line 5)");
	load_err(BASE "4 = 127.0.0.1:7201\n", 1,
		 "7: nodes.4: ", "127.0.0.1:7201 is also node 2's address (line 5)");
	load_err(BASE "4 = 127.0.0.1\n", 1, "7: nodes.4: ", "expected host:port");
	load_err(BASE "4 = ::1:7001\n", 1, "7: nodes.4: ", "IPv6 address goes in brackets");
	load_err(BASE "4 = [::1:7001\n", 1, "7: nodes.4: ", "missing ']'");
	load_err(BASE "4 = [1.2.3.4]:7001\n", 1, "7: nodes.4: ", "not an IPv6 address");
	load_err(BASE "4 = [::1]7001\n", 1, "7: nodes.4: ", "expected :port");
	load_err(BASE "4 = 127.0.0.1:70000\n", 1,
		 "7: nodes.4: ", "port must be a number in 1..65535");
	load_err(BASE "4 = 127.0.0.1:0\n", 1, "7: nodes.4: ", "1..65535");
	load_err(BASE "4 = 127.0.0.1:\n", 1, "7: nodes.4: ", "1..65535");
	load_err(BASE "4 = 300.1.1.1:7001\n", 1, "7: nodes.4: ", "not an IPv4 address");
	load_err(BASE "4 = bad_name:7001\n", 1, "7: nodes.4: ", "not a host name");
	load_err(BASE "4 = :7001\n", 1, "7: nodes.4: ", "empty host");
	load_err(BASE "0 = 127.0.0.1:7401\n", 1, "7: nodes.0: ", "1..4294967295");
	load_err(BASE "4294967296 = 127.0.0.1:7401\n", 1, "7: nodes.4294967296: ", "1..4294967295");
	load_err(BASE "x = 127.0.0.1:7401\n", 1, "7: nodes.x: ", "node id");
	/* Port ranges: lcore i listens on port + i, the client port is port + offset. */
	load_err("[cluster]\nid = 1\n[nodes]\n1 = 127.0.0.1:7001\n2 = 127.0.0.1:7003\n"
		 "[node]\nlcores = 3\n",
		 1, "5: nodes.2: ", "collide with node 1's ports 7001..7003");
	load_err("[cluster]\nid = 1\n[nodes]\n1 = 127.0.0.1:7001\n2 = 127.0.0.1:8001\n", 1,
		 "4: nodes.1: ", "8001 (client) collide with node 2's");
	load_err("[cluster]\nid = 1\n[nodes]\n1 = 127.0.0.1:65000\n", 1,
		 "4: nodes.1: ", "below 65536");
	/* Different hosts may use the same ports. */
	struct lcr_app_config c;
	load_ok("[cluster]\nid = 1\n[nodes]\n1 = 10.0.0.1:7001\n2 = 10.0.0.2:7001\n[node]\n"
		"lcores = 8\n",
		2, &c);
	/* At most LCR_PEERS_MAX nodes. */
	char text[2048];
	size_t n = (size_t)snprintf(text, sizeof(text), "[cluster]\nid = 1\n[nodes]\n");
	for (int i = 1; i <= LCR_PEERS_MAX + 1; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%d = 127.0.0.1:%d\n", i,
				      7000 + 10 * i);
	char where[64];
	snprintf(where, sizeof(where), "%d: nodes.%d: ", LCR_PEERS_MAX + 4, LCR_PEERS_MAX + 1);
	load_err(text, 1, where, "more than 16 nodes");
}

static void test_config_self_not_listed(void **state)
{
	struct lcr_app_config c;

	(void)state;
	load_err(BASE, 4, "3: nodes: ", "node 4 (--id) is not listed (nodes: 1, 2, 3)");
	/* Self 0 (a client) need not be listed. */
	load_ok(BASE, 0, &c);
	load_err("[cluster]\nid = 1\n", 1, " nodes: no node listed", NULL);
	load_err("[cluster]\nid = 1\n[nodes]\n", 1, "3: nodes: no node listed", NULL);
}

/*
 * [cluster] voters: the first membership (the others of [nodes] are spares);
 * --addr: a node outside [nodes] joins at its address, one inside keeps its own.
 */
static void test_config_voters_and_addr(void **state)
{
	struct lcr_app_config c;
	char why[512];

	(void)state;
	load_ok(BASE, 2, &c);
	assert_int_equal(c.node.core.membership.n_configs, 1);
	assert_int_equal(c.node.core.membership.configs[0].n, 3);
	assert_false(c.joining);
	load_ok("[cluster]\nid = 7\nvoters = 1, 3\n[nodes]\n1 = 127.0.0.1:7101\n"
		"2 = 127.0.0.1:7201\n3 = 127.0.0.1:7301\n",
		2, &c);
	assert_int_equal(c.node.core.membership.configs[0].n, 2);
	assert_int_equal(c.node.core.membership.configs[0].ids[1], 3);
	assert_int_equal(c.node.core.id, 2); /* a spare */
	assert_int_equal(c.node.n_peers, 3);
	load_err("[cluster]\nid = 7\nvoters = 1,9\n[nodes]\n1 = 127.0.0.1:7101\n", 1,
		 "3: cluster.voters: ", "node 9 is not in [nodes]");
	load_err("[cluster]\nid = 7\nvoters = 1,1\n[nodes]\n1 = 127.0.0.1:7101\n", 1,
		 "3: cluster.voters: ", "node 1 is named twice");
	load_err("[cluster]\nid = 7\nvoters = 1,\n[nodes]\n1 = 127.0.0.1:7101\n", 1,
		 "3: cluster.voters: ", "a comma");
	load_err("[cluster]\nid = 7\nvoters = x\n[nodes]\n1 = 127.0.0.1:7101\n", 1,
		 "3: cluster.voters: ", "node id");

	/* --addr for a node [nodes] does not list: appended, joining, not a voter. */
	write_file(BASE);
	assert_int_equal(lcr_app_config_load_addr(&c, path, 4, "127.0.0.1:7401", why, sizeof(why)),
			 0);
	assert_true(c.joining);
	assert_int_equal(c.node.n_peers, 4);
	assert_int_equal(c.node.peers[3].id, 4);
	assert_int_equal(c.node.peers[3].port, 7401);
	assert_int_equal(c.node.core.id, 4);
	assert_int_equal(c.node.core.membership.configs[0].n, 3);
	assert_non_null(lcr_app_config_peer(&c, 4));
	/* The same address as [nodes] for a listed node; another one refused. */
	assert_int_equal(lcr_app_config_load_addr(&c, path, 2, "127.0.0.1:7201", why, sizeof(why)),
			 0);
	assert_false(c.joining);
	assert_int_equal(lcr_app_config_load_addr(&c, path, 2, "127.0.0.1:7202", why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "nodes.2: --addr 127.0.0.1:7202 is not this node's address"));
	assert_int_equal(lcr_app_config_load_addr(&c, path, 4, "127.0.0.1", why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "--addr 127.0.0.1: "));
	/* Its ports must not collide with a listed node's. */
	assert_int_equal(lcr_app_config_load_addr(&c, path, 4, "127.0.0.1:8101", why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "collide"));
	assert_int_equal(lcr_app_config_load_addr(&c, path, 0, "127.0.0.1:7401", why, sizeof(why)),
			 -EINVAL);

	/* --peer: a member the file does not list joins the peers, not the
	 * first membership; a listed node keeps its address; bad text refused. */
	assert_int_equal(lcr_app_config_load_addr(&c, path, 6, "127.0.0.1:7601", why, sizeof(why)),
			 0);
	assert_int_equal(lcr_app_config_add_peer(&c, "4=127.0.0.1:7401", why, sizeof(why)), 0);
	assert_int_equal(c.node.n_peers, 5);
	assert_int_equal(c.node.peers[4].id, 4);
	assert_int_equal(c.node.peers[4].port, 7401);
	assert_int_equal(c.node.core.membership.configs[0].n, 3);
	assert_false(lcr_membership_contains(&c.node.core.membership, 4));
	assert_int_equal(lcr_app_config_add_peer(&c, "2=127.0.0.1:7201", why, sizeof(why)), 0);
	assert_int_equal(c.node.n_peers, 5);
	assert_int_equal(lcr_app_config_add_peer(&c, "2=127.0.0.1:7209", why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "node 2 is at 127.0.0.1:7201 in the file"));
	assert_int_equal(lcr_app_config_add_peer(&c, "6=127.0.0.1:7601", why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "this node"));
	const char *bad[] = {
		"4",	       "=127.0.0.1:7401", "0=127.0.0.1:7401",	    "x=127.0.0.1:7401",
		"4=127.0.0.1", "4=:7401",	  "99999999999=127.0.0.1:1"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(lcr_app_config_add_peer(&c, bad[i], why, sizeof(why)), -EINVAL);
		assert_non_null(strstr(why, "--peer "));
	}
	assert_int_equal(c.node.n_peers, 5);
}

static void test_config_relationships(void **state)
{
	(void)state;
	/* heartbeat >= election_timeout_min: the key set in the file is blamed. */
	load_err(BASE "[raft]\nheartbeat_interval_ms = 150\n", 1, "8: raft.heartbeat_interval_ms: ",
		 "election_timeout_min_ms (150) must exceed heartbeat_interval_ms (150)");
	/* Both set: the one set last. */
	load_err(BASE "[raft]\nheartbeat_interval_ms = 100\nelection_timeout_min_ms = 90\n", 1,
		 "9: raft.election_timeout_min_ms: ", "must exceed heartbeat_interval_ms (100)");
	load_err(BASE "[raft]\nelection_timeout_max_ms = 150\n", 1,
		 "8: raft.election_timeout_max_ms: ",
		 "election_timeout_min_ms (150) must be below election_timeout_max_ms (150)");
	/* Relationships hold for a client (self 0) too. */
	load_err(BASE "[raft]\nheartbeat_interval_ms = 500\n", 0,
		 "8: raft.heartbeat_interval_ms: ", NULL);
}

static void test_config_missing_cluster_id(void **state)
{
	(void)state;
	load_err("[nodes]\n1 = 127.0.0.1:7001\n", 1, " cluster.id: required, but not set", NULL);
	load_err("[cluster]\n[nodes]\n1 = 127.0.0.1:7001\n", 1, " cluster.id: required", NULL);
}

static void test_config_syntax(void **state)
{
	struct lcr_app_config c;
	char why[256], big[600];

	(void)state;
	load_err(BASE "[raft]\nno equals sign here\n", 1, "8: syntax error", NULL);
	load_err(BASE "[raft\n", 1, "7: syntax error", NULL);
	load_err(BASE "[raft]\ninflight_max = 8\ninflight_max = 9\n", 1,
		 "9: raft.inflight_max: ", "set twice (first at line 8)");
	/* A line longer than inih's buffer is refused, not split in two. */
	snprintf(big, sizeof(big), BASE "[node]\ndata_dir = /%0300d\nlcores = x\n", 0);
	load_err(big, 1, "8: line longer than", NULL);
	/* The first error wins when there are several. */
	load_err(BASE "[raft]\nbogus\ninflight_max = x\n", 1, "8: syntax error", NULL);
	load_err(BASE "[raft]\ninflight_max = x\nbogus\n", 1, "8: raft.inflight_max", NULL);
	/* A file that cannot be read: -errno. */
	assert_int_equal(lcr_app_config_load(&c, "/nonexistent/x.ini", 1, why, sizeof(why)),
			 -ENOENT);
	assert_non_null(strstr(why, "/nonexistent/x.ini: "));
	assert_true(lcr_app_config_load(&c, dir, 1, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, dir));
	/* CRLF line ends and an empty file section are fine. */
	load_ok("[cluster]\r\nid = 7\r\n[nodes]\r\n1 = 127.0.0.1:7001\r\n[raft]\r\n", 1, &c);
	assert_int_equal(c.node.cluster, 7);
}

/* ---- help and docs ------------------------------------------------------------------ */

static char *capture(void (*fn)(FILE *))
{
	/* On the heap: GCC 12 at -O3 takes the returned text for a pointer
	 * into this frame when open_memstream() writes to locals here. */
	struct {
		char *buf;
		size_t len;
	} *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	FILE *f = open_memstream(&m->buf, &m->len);

	assert_non_null(f);
	fn(f);
	assert_int_equal(fclose(f), 0);
	char *out = m->buf;
	free(m);
	return out;
}

static void test_config_help_and_markdown(void **state)
{
	static const char *const keys[] = {
		"[cluster]",
		"[nodes]",
		"[node]",
		"[raft]",
		"[storage]",
		"[faults]",
		"[dpdk]",
		"data_dir",
		"transport",
		"memif_dir",
		"neighbours",
		"rx_desc",
		"appends its text after one space",
		"client_port_offset",
		"election_timeout_min_ms",
		"enable_leader_restore",
		"read_policy",
		"lease_read",
		"direct-fdatasync",
		"segment_mb",
		"reorder_pct",
		"docs/architecture.md",
	};
	char *help = capture(lcr_app_config_help);
	char *md = capture(lcr_app_config_markdown);
	struct lcr_app_config c;

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!strstr(help, keys[i]))
			fail_msg("--help lacks %s", keys[i]);
		if (!strstr(md, keys[i]))
			fail_msg("the Markdown lacks %s", keys[i]);
	}
	assert_non_null(strstr(md, "| `heartbeat_interval_ms` | ms | `50` | 1..600000 |"));
	assert_non_null(strstr(md, "O_DIRECT write with RWF_DSYNC"));
	assert_non_null(strstr(help, "default sockets, sockets|dpdk"));
	assert_non_null(strstr(md, "| `cores` | string | `\"\"` |"));
	assert_non_null(strstr(md, "lcraft-cli --config config/local-3.ini put k v"));

	/* The example in the docs is a valid file. */
	const char *start = strstr(md, "```ini\n");
	assert_non_null(start);
	start += strlen("```ini\n");
	const char *end = strstr(start, "```");
	assert_non_null(end);
	char *example = strndup(start, (size_t)(end - start));
	assert_non_null(example);
	for (uint32_t id = 0; id <= 3; id++)
		load_ok(example, id, &c);
	assert_string_equal(c.data_dir, "/var/tmp/lcraft/local-3/node-3");
	free(example);
	free(help);
	free(md);
}

/* The files in config/ (when the source tree is known: meson sets LCR_SOURCE_ROOT). */
static void test_config_repo_files(void **state)
{
	static const struct {
		const char *name;
		const char *host;     /* node 1's, or its start */
		const char *data_dir; /* with %u for the node id */
		bool dpdk;
		uint32_t n_cores;
		const char *eal; /* node 2's, NULL: none */
	} files[] = {
		{ "local-3", "127.0.0.1", "/var/tmp/lcraft/local-3/node-%u", false, 0, NULL },
		{ "veth-3", "10.77.0.", "/var/tmp/lcraft/veth-3/node-%u", false, 0, NULL },
		{ "dpdk-memif-3", "127.0.0.1", "/var/tmp/lcraft/dpdk-memif-3/node-%u", true, 0,
		  "-l 0 --no-huge -m 256 --no-pci --no-shconf --file-prefix=lcraft-2" },
		{ "dpdk-veth-3", "10.77.0.", "/var/tmp/lcraft/dpdk-veth-3/node-%u", true, 0,
		  "-l 0 --no-huge -m 256 --no-pci --no-shconf "
		  "--vdev=net_af_packet0,iface=lcr2-ns" },
		{ "dpdk-nic", "192.0.2.", "/var/lib/lcraft/node-%u", true, 4,
		  "-l 0 -n 4 --file-prefix=lcraft-2 -a 0000:01:00.0" },
	};
	const char *root = getenv("LCR_SOURCE_ROOT");
	struct lcr_app_config c;
	char file[512], why[256], dd[128];

	(void)state;
	if (!root) {
		print_message("skipped: LCR_SOURCE_ROOT is unset (meson test sets it)\n");
		skip();
	}
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		snprintf(file, sizeof(file), "%s/config/%s.ini", root, files[f].name);
		for (uint32_t id = 0; id <= 3; id++) {
			if (lcr_app_config_load(&c, file, id, why, sizeof(why)) != 0)
				fail_msg("%s", why);
			assert_int_equal(c.node.cluster, 7);
			assert_int_equal(c.node.n_peers, 3);
			assert_non_null(strstr(c.node.peers[0].host, files[f].host));
			assert_int_equal(c.node.dpdk.enable, files[f].dpdk);
			assert_int_equal(c.node.n_cores, files[f].n_cores);
			if (id) {
				snprintf(dd, sizeof(dd), files[f].data_dir, id);
				assert_string_equal(c.data_dir, dd);
			}
			if (id == 2 && files[f].eal)
				assert_string_equal(c.node.dpdk.eal, files[f].eal);
			if (id == 2 && !strcmp(files[f].name, "dpdk-memif-3"))
				assert_string_equal(c.node.dpdk.memif_dir, "/tmp/lcraft-memif");
		}
	}
}

/* A key file in the test's directory: `len` bytes of `bytes`, mode `mode`; its path. */
static const char *key_at(const char *name, const void *bytes, size_t len, mode_t mode)
{
	static char kp[16][320];
	static int n;
	char *p = kp[n++ % 16];
	snprintf(p, sizeof(kp[0]), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(p, mode), 0);
	return p;
}

/* [cluster] key_file, client_key_file and alg: the keys read, each bad file refused with its line.
 */
static void test_config_keys(void **state)
{
	struct lcr_app_config c;
	char text[2048], want[400], raw[32], raw2[32], why[512];
	const char hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	(void)state;

	for (int i = 0; i < 32; i++) {
		raw[i] = (char)(0x40 + i);
		raw2[i] = (char)(0x80 + i);
	}
	const char *k = key_at("node.key", raw, 32, 0600);
	const char *ck = key_at("client.key", hex, sizeof(hex) - 1, 0400);

	/* Both keys, on a node; defaults: none, aes256gcm. */
	load_ok(BASE, 1, &c);
	assert_false(c.has_key);
	assert_false(c.has_client_key);
	assert_string_equal(c.key_file, "");
	assert_int_equal(c.auth_alg, LCR_AUTH_AES256GCM);
	snprintf(text, sizeof(text),
		 "[cluster]\nid = 7\nkey_file = %s\nclient_key_file = %s\nalg = "
		 "chacha20poly1305\n[nodes]\n1 = 127.0.0.1:7101\n2 = 127.0.0.1:7201\n",
		 k, ck);
	load_ok(text, 1, &c);
	assert_true(c.has_key && c.has_client_key);
	assert_memory_equal(c.key, raw, 32);
	for (int i = 0; i < 32; i++)
		assert_int_equal(c.client_key[i], i);
	assert_int_equal(c.auth_alg, LCR_AUTH_CHACHA20POLY1305);
	lcr_app_config_wipe_keys(&c);
	for (int i = 0; i < 32; i++)
		assert_int_equal(c.key[i] | c.client_key[i], 0);

	/* A client reads the client key only; --key-file replaces the file's. */
	load_ok(text, 0, &c);
	assert_false(c.has_key);
	assert_true(c.has_client_key);
	const char *ck2 = key_at("other.key", raw2, 32, 0600);
	assert_int_equal(lcr_app_config_load_client(&c, path, ck2, why, sizeof(why)), 0);
	assert_memory_equal(c.client_key, raw2, 32);
	assert_string_equal(c.client_key_file, ck2);
	assert_int_equal(lcr_app_config_load_client(&c, path, "/nonexistent.key", why, sizeof(why)),
			 -EINVAL);
	assert_string_equal(why, "--key-file: /nonexistent.key: No such file or directory");

	/* Each bad key file, named with its line (3: key_file, 4: client_key_file). */
	const struct {
		const char *name;
		const char *bytes;
		size_t len;
		mode_t mode;
		int as_client; /* 0: key_file, line 3; 1: client_key_file, line 4 */
		const char *says;
	} bad[] = {
		{ "short.key", raw, 31, 0600, 0, "31 bytes: a key file holds exactly 32 bytes" },
		{ "long.key", hex, 66, 0600, 1, "at least 66 bytes" },
		{ "hex.key", "z00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 64,
		  0600, 0, "byte 0 (0x7a) is no hexadecimal digit" },
		{ "open.key", raw, 32, 0644, 0,
		  "mode 0644 lets its group and others read or write it" },
		{ "group.key", raw, 32, 0660, 1, "chmod 600" },
		{ "zero.key", "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
		  32, 0600, 0, "every byte of the key is 0" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *b = key_at(bad[i].name, bad[i].bytes, bad[i].len, bad[i].mode);
		snprintf(text, sizeof(text),
			 "[cluster]\nid = 7\n%s = %s\n%s = %s\n[nodes]\n1 = 127.0.0.1:7101\n",
			 "key_file", bad[i].as_client ? k : b, "client_key_file",
			 bad[i].as_client ? b : ck);
		snprintf(want, sizeof(want),
			 "cluster.%s: %s: ", bad[i].as_client ? "client_key_file" : "key_file", b);
		load_err(text, 1, bad[i].as_client ? "4: " : "3: ", want);
		load_err(text, 1, bad[i].as_client ? "4: " : "3: ", bad[i].says);
	}
	/* A missing file; the same key for the clients as for the nodes. */
	load_err("[cluster]\nid = 7\n[nodes]\n1 = 127.0.0.1:7101\n[cluster]\nkey_file = "
		 "/nonexistent/node.key\n",
		 1, "6: ", "cluster.key_file: /nonexistent/node.key: No such file or directory");
	snprintf(text, sizeof(text),
		 "[cluster]\nid = 7\nkey_file = %s\nclient_key_file = %s\n[nodes]\n1 = "
		 "127.0.0.1:7101\n",
		 k, k);
	load_err(text, 1, "4: ", "holds the same key as key_file (line 3): a client holding it");
	/* An algorithm that is none of the two. */
	load_err(BASE "[cluster]\nalg = hmac\n", 1,
		 "8: ", "cluster.alg: 'hmac' is not one of: aes256gcm, chacha20poly1305");
	/* A client needs no access to the node key. */
	snprintf(text, sizeof(text),
		 "[cluster]\nid = 7\nkey_file = /nonexistent/node.key\n[nodes]\n1 = "
		 "127.0.0.1:7101\n");
	load_ok(text, 0, &c);
	assert_false(c.has_key);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char p[320];
		snprintf(p, sizeof(p), "%s/%s", dir, bad[i].name);
		unlink(p);
	}
	unlink(k);
	unlink(ck);
	unlink(ck2);
}

/* docs/operations.md is generated: it must be what lcr_app_config_markdown() prints now. */
static void test_config_docs_current(void **state)
{
	const char *root = getenv("LCR_SOURCE_ROOT");
	char file[512], *want, *have = NULL;
	size_t have_len = 0;
	FILE *f;

	(void)state;
	if (!root) {
		print_message("skipped: LCR_SOURCE_ROOT is unset (meson test sets it)\n");
		skip();
	}
	snprintf(file, sizeof(file), "%s/docs/operations.md", root);
	f = fopen(file, "r");
	assert_non_null(f);
	assert_int_equal(getdelim(&have, &have_len, '\0', f) > 0, 1);
	fclose(f);
	want = capture(lcr_app_config_markdown);
	if (strcmp(want, have) != 0)
		fail_msg("docs/operations.md is stale: regenerate it with "
			 "build/lcraft-node --help-markdown > docs/operations.md");
	free(want);
	free(have);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_full_file),
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_id_substitution),
		cmocka_unit_test(test_config_ipv6),
		cmocka_unit_test(test_config_dpdk),
		cmocka_unit_test(test_config_eal_append),
		cmocka_unit_test(test_config_cores),
		cmocka_unit_test(test_config_dpdk_errors),
		cmocka_unit_test(test_config_unknown_key),
		cmocka_unit_test(test_config_bad_number),
		cmocka_unit_test(test_config_out_of_bounds),
		cmocka_unit_test(test_config_bad_bool_enum),
		cmocka_unit_test(test_config_bad_nodes),
		cmocka_unit_test(test_config_self_not_listed),
		cmocka_unit_test(test_config_voters_and_addr),
		cmocka_unit_test(test_config_relationships),
		cmocka_unit_test(test_config_missing_cluster_id),
		cmocka_unit_test(test_config_syntax),
		cmocka_unit_test(test_config_help_and_markdown),
		cmocka_unit_test(test_config_repo_files),
		cmocka_unit_test(test_config_keys),
		cmocka_unit_test(test_config_docs_current),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
