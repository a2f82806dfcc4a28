/* SPDX-License-Identifier: MIT */
/*
 * lcraft-node's configuration (config.h). Everything about an option lives in
 * one row of `opts` below: its section and key, type, where it is stored,
 * default, bounds and help. The INI parser, lcr_app_config_default(), --help
 * and docs/operations.md all walk that table, so they cannot drift apart
 * (Redis's config table, style.md "Configuration").
 *
 * Parsing goes through inih with our own line reader: Debian's libinih is
 * built without line numbers in the handler, so the reader counts lines (and
 * refuses lines too long for inih's buffer, which inih would otherwise split
 * into two lines). Relationships between Raft options are checked by
 * lcr_core_config_validate(), whose sentence is mapped back to the key and
 * line that caused it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "auth.h"
#include "lcr_assert.h"
#include "log.h"

/* ---- the option table --------------------------------------------------------- */

enum opt_type {
	OPT_U32 = 1, /* decimal integer */
	OPT_U64,
	OPT_BOOL, /* true/false, yes/no, on/off, 1/0 */
	OPT_STRING,
	OPT_ENUM,    /* one of `choices` */
	OPT_MS,	     /* milliseconds */
	OPT_US,	     /* microseconds (stored as nanoseconds: scale 1000) */
	OPT_MIB,     /* mebibytes (stored as bytes: scale 2^20) */
	OPT_PERCENT, /* decimal percentage, up to 4 decimals (stored as ppm) */
	OPT_NODES,   /* [nodes]: <node id> = host:port, one line per voter */
};

#define OPT_REQUIRED 1u /* no default: the file must set it */
/*
 * The value may continue (OPT_STRING): a repeated `key = ...` line, or an
 * indented line below it (inih's multi-line values), appends its text after
 * `join`. inih holds at most 197 characters a line, fewer than EAL
 * arguments or a list for 16 nodes may need.
 */
#define OPT_APPEND 2u

struct opt_choice {
	const char *name;
	uint32_t value;
};

/* Returns 0 if `value` is acceptable, else -EINVAL with why not (naming the bad part) in err. */
typedef int (*opt_check_fn)(const char *value, char *err, size_t err_len);

struct opt {
	const char *section;
	const char *key;
	uint8_t type;	 /* enum opt_type */
	uint8_t flags;	 /* OPT_REQUIRED, OPT_APPEND */
	uint16_t size;	 /* bytes of the field at `offset` */
	size_t offset;	 /* into struct lcr_app_config */
	uint64_t scale;	 /* stored = value * scale (integers); 0 means 1 */
	const char *def; /* default as text; NULL: lcr_core_config_default()'s */
	uint64_t min;	 /* bounds, in the unit of the key */
	uint64_t max;
	const struct opt_choice *choices; /* OPT_ENUM, ended by a NULL name */
	opt_check_fn check;		  /* OPT_STRING: extra validation */
	char join;			  /* OPT_APPEND: between the parts */
	const char *help;
};

#define FIELD(f)                                                                                   \
	.offset = offsetof(struct lcr_app_config, f),                                              \
	.size = sizeof(((struct lcr_app_config *)0)->f)

static const struct opt_choice durability_choices[] = {
	{ "fsync", LCR_DURABILITY_FSYNC },
	{ "none", LCR_DURABILITY_NONE },
	{ NULL, 0 },
};

static const struct opt_choice io_mode_choices[] = {
	{ "direct-dsync", LCR_IO_DIRECT_DSYNC },
	{ "direct-fdatasync", LCR_IO_DIRECT_FDATASYNC },
	{ "buffered-fdatasync", LCR_IO_BUFFERED_FDATASYNC },
	{ NULL, 0 },
};

static const struct opt_choice read_policy_choices[] = {
	{ "read_index", LCR_READ_INDEX },
	{ "lease_read", LCR_READ_LEASE },
	{ NULL, 0 },
};

static const struct opt_choice alg_choices[] = {
	{ "aes256gcm", LCR_AUTH_AES256GCM },
	{ "chacha20poly1305", LCR_AUTH_CHACHA20POLY1305 },
	{ NULL, 0 },
};

static const struct opt_choice transport_choices[] = {
	{ "sockets", LCR_APP_TRANSPORT_SOCKETS },
	{ "dpdk", LCR_APP_TRANSPORT_DPDK },
	{ NULL, 0 },
};

static int check_bind(const char *v, char *err, size_t err_len);
static int check_data_dir(const char *v, char *err, size_t err_len);
static int check_cores(const char *v, char *err, size_t err_len);
static int check_routes(const char *v, char *err, size_t err_len);
static int check_neighbours(const char *v, char *err, size_t err_len);
static int check_metrics_listen(const char *v, char *err, size_t err_len);
static int check_voters(const char *v, char *err, size_t err_len);

struct section {
	const char *name;
	const char *help;
};

static const struct section sections[] = {
	{ "cluster", "Identifies the cluster, who votes at its start, and the keys that "
		     "authenticate its datagrams." },
	{ "nodes", "Every node of the cluster, this node included (unless it was started with "
		   "--addr): one line per node, `<node id> = host:port`." },
	{ "node", "This process: where it keeps its data, how many lcores it runs, "
		  "what it binds to." },
	{ "raft", "Raft options; defaults are openraft's (lcr_core_config_default)." },
	{ "storage", "The log on disk." },
	{ "faults", "Faults injected on send, for tests. All off by default." },
	{ "dpdk", "The DPDK path of the transport, read with [node] transport = dpdk: the "
		  "node's datagrams, the same as on sockets, go out of DPDK ports in "
		  "Ethernet/IPv4/UDP frames it builds itself; it answers ARP for its address in "
		  "[nodes]. Needs a build with DPDK." },
};
#define N_SECTIONS (sizeof(sections) / sizeof(sections[0]))

#define RAFT(f) FIELD(node.core.f)

static const struct opt opts[] = {
	{ "cluster", "id", OPT_U64, OPT_REQUIRED, FIELD(node.cluster), .min = 1, .max = UINT64_MAX,
	  .help = "The cluster id; datagrams of other clusters are dropped." },
	{ "cluster", "voters", OPT_STRING, 0, FIELD(voters), .def = "", .check = check_voters,
	  .help = "The first membership's voters, node ids of [nodes] separated by commas "
		  "(1,2,3). The other nodes of [nodes] are spares: they run and wait, empty, "
		  "until lcraft-cli add-learner adds them. Empty: every node of [nodes] votes. "
		  "It is the membership until the first change, which the group's log (or "
		  "snapshot) then holds instead: the same on every node." },
	{ "cluster", "key_file", OPT_STRING, 0, FIELD(key_file), .def = "",
	  .help = "A file holding the cluster key, the same on every node: 32 bytes, or 64 "
		  "hexadecimal digits and a newline (head -c 32 /dev/urandom > FILE), readable "
		  "by its owner alone (chmod 600: a file its group or others may read is "
		  "refused). Every Raft datagram then carries a MAC that is checked before "
		  "anything in it is used; a datagram replayed, of an old stream or of an "
		  "earlier start of its sender is refused, and each refusal counted "
		  "(docs/wire-protocol.md, \"Authentication\"). Empty: the datagrams are not "
		  "authenticated, and the node says at start that anyone who can send to its "
		  "ports can speak for its peers. A relative path starts where the node "
		  "starts." },
	{ "cluster", "client_key_file", OPT_STRING, 0, FIELD(client_key_file), .def = "",
	  .help = "A file holding the client port's key, as key_file's but another key (a "
		  "client holding the cluster key could forge the nodes' own datagrams; the "
		  "same key is refused). Every request, STATS included, and every answer then "
		  "carries a MAC; a request replayed is refused and counted. lcraft-cli and "
		  "kvcheck read it from the same file (or their --key-file). Empty: the client "
		  "port is not authenticated, and the node says so at start." },
	{ "cluster", "alg", OPT_ENUM, 0, FIELD(auth_alg), .def = "aes256gcm",
	  .choices = alg_choices,
	  .help = "The MAC of both keys, the same on every node and client: aes256gcm "
		  "(AES-256-GCM as a GMAC; needs AES-NI: refused on a CPU without) or "
		  "chacha20poly1305 (Poly1305, any CPU, about twice the CPU per datagram)." },

	{ "nodes", "<node id>", OPT_NODES, 0, .size = 0, .offset = 0, .min = 1,
	  .max = LCR_PEERS_MAX,
	  .help = "A node: node id (1..4294967295) = host:port, where host is an IPv4 "
		  "address, a name, or an IPv6 address in brackets ([::1]:7001). The port "
		  "is the node's lcore 0; lcore i listens on port + i." },

	{ "node", "data_dir", OPT_STRING, 0, FIELD(data_dir), .def = "/var/tmp/lcraft/node-{id}",
	  .check = check_data_dir,
	  .help = "Where the node keeps its groups (<data_dir>/group-<g>/); {id} is replaced "
		  "by the node id." },
	{ "node", "lcores", OPT_U32, 0, FIELD(node.lcores), .def = "1", .min = 1, .max = 64,
	  .help = "Threads; lcore i runs the groups whose id modulo lcores is i and listens on "
		  "the node's port + i." },
	{ "node", "bind", OPT_STRING, 0, FIELD(bind), .def = "0.0.0.0", .check = check_bind,
	  .help = "Local address the sockets bind to; use :: when peers have IPv6 addresses." },
	{ "node", "transport", OPT_ENUM, 0, FIELD(transport), .def = "sockets",
	  .choices = transport_choices,
	  .help = "How Raft datagrams travel: sockets, the kernel's UDP sockets; dpdk, DPDK "
		  "ports ([dpdk]), which needs a build with DPDK, [dpdk] eal or memif_dir, and "
		  "an IPv4 address as every node's host in [nodes] (DPDK resolves no names). "
		  "The client port (lcraft-cli) is a kernel socket either way." },
	{ "node", "cores", OPT_STRING, 0, FIELD(cores), .def = "", .check = check_cores,
	  .help = "CPU cores to pin the lcores to: core numbers and ranges, as 0,2-3; lcore i "
		  "runs on the i-th core listed, so list as many as lcores. Empty: not pinned, "
		  "the kernel places the threads." },
	{ "node", "busy_poll", OPT_BOOL, 0, FIELD(node.busy_poll), .def = "false",
	  .help = "Lcores never sleep: the lowest latency, but each lcore takes a whole CPU "
		  "core." },
	{ "node", "idle_spin_us", OPT_U32, 0, FIELD(node.idle_spin_us), .def = "0", .max = 100000,
	  .help = "After doing work, an lcore keeps polling this many microseconds before it "
		  "sleeps: a sleeping vCPU can take tens of microseconds to wake, so 50 cuts "
		  "latency at light load, at the price of that much CPU after each burst." },
	{ "node", "io_spin_us", OPT_U32, 0, FIELD(node.io_spin_us), .def = "0", .max = 100000,
	  .help = "The same while the lcore's own disk writes are in flight: their completion "
		  "is near, and waiting for it awake takes a wake-up off the commit path (on a "
		  "2-vCPU VM, 500 took the 1-client commit p50 from ~255 to ~200 us, for ~0.9 "
		  "core more)." },
	{ "node", "spin_fixed", OPT_BOOL, 0, FIELD(node.spin_fixed), .def = "false",
	  .help = "false: idle_spin_us and io_spin_us are bounds, and an lcore polls only "
		  "while what it waits for is due by the running medians of its idle gaps and "
		  "its writes (not at all when they are usually longer than the bound), so the "
		  "CPU it burns follows the load; true: always the whole time." },
	{ "node", "mtu", OPT_U32, 0, FIELD(node.mtu), .def = "1500", .min = 576, .max = 9028,
	  .help = "IP MTU of the path: a datagram carries at most mtu - 28 bytes (IPv4 and UDP "
		  "headers). The same on every node: a node drops stream datagrams longer than its "
		  "own mtu allows (`fragment`, `docs/wire-protocol.md`, \"Streams\")." },
	{ "node", "client_port_offset", OPT_U32, 0, FIELD(client_port_offset), .def = "1000",
	  .min = 1, .max = 60000,
	  .help = "A node's client port (lcraft-cli) is its port in [nodes] + this." },
	{ "node", "groups", OPT_U32, 0, FIELD(groups), .def = "1", .min = 1, .max = 1024,
	  .help = "Raft groups the node runs, ids 1..groups; each is an independent replicated "
		  "log." },
	{ "node", "metrics_listen", OPT_STRING, 0, FIELD(metrics_listen), .def = "",
	  .check = check_metrics_listen,
	  .help = "HOST:PORT (an IPv6 address in brackets) where the node serves its metrics "
		  "to Prometheus over HTTP, GET /metrics, from a thread of its own; {id} is "
		  "replaced by the node id, so one file serves a cluster on one host "
		  "(127.0.0.1:910{id}). Empty: no HTTP server. See \"Metrics for "
		  "Prometheus\" above." },

	{ "raft", "election_timeout_min_ms", OPT_MS, 0, RAFT(election_timeout_min_ms), .min = 1,
	  .max = 600000,
	  .help = "A follower that hears no leader for a time drawn from [min, max) starts an "
		  "election; must exceed heartbeat_interval_ms." },
	{ "raft", "election_timeout_max_ms", OPT_MS, 0, RAFT(election_timeout_max_ms), .min = 2,
	  .max = 600000,
	  .help = "Upper end (exclusive) of the election timeout; also the leader lease, during "
		  "which lease reads need no quorum round." },
	{ "raft", "heartbeat_interval_ms", OPT_MS, 0, RAFT(heartbeat_interval_ms), .min = 1,
	  .max = 600000,
	  .help = "How often the leader sends heartbeats; must be below "
		  "election_timeout_min_ms." },
	{ "raft", "max_payload_entries", OPT_U32, 0, RAFT(max_payload_entries), .min = 1,
	  .max = 65536, .help = "Entries per AppendEntries request." },
	{ "raft", "inflight_max", OPT_U32, 0, RAFT(inflight_max), .min = 1, .max = 4096,
	  .help = "Pipelined AppendEntries requests in flight per follower." },
	{ "raft", "respond_max", OPT_U32, 0, RAFT(respond_max), .min = 8, .max = 1u << 20,
	  .help = "Responses waiting for a flush; overflow drops the oldest (counted)." },
	{ "raft", "reads_max", OPT_U32, 0, RAFT(reads_max), .min = 1, .max = 1u << 20,
	  .help = "Linearizable reads waiting; more are refused (LCR_EFULL)." },
	{ "raft", "leader_runs_max", OPT_U32, 0, RAFT(leader_runs_max), .min = 16, .max = 1u << 20,
	  .help = "Runs of entries by one leader a log may hold (24 bytes each, allocated at "
		  "start); a replica whose log is full of runs does not stand for election." },
	{ "raft", "backoff_ms", OPT_MS, 0, RAFT(backoff_ms), .min = 1, .max = 60000,
	  .help = "Base of the replication backoff when a peer is unreachable: b, 2b, 4b, ... "
		  "capped at 1 s." },
	{ "raft", "read_timeout_ms", OPT_MS, 0, RAFT(read_timeout_ms), .min = 0, .max = 600000,
	  .help = "How long a read may wait for its quorum ack and apply; 0: the leader lease "
		  "(election_timeout_max_ms)." },
	{ "raft", "enable_pre_vote", OPT_BOOL, 0, RAFT(enable_pre_vote), .def = "true",
	  .help = "Run a Pre-Vote round before an election, so that a node rejoining after a "
		  "partition does not depose a healthy leader. On by default in lcraft-node (as "
		  "etcd since 3.5; openraft's default is off): docs/benchmarks.md has the write "
		  "gap on healing with and without it." },
	{ "raft", "enable_heartbeat", OPT_BOOL, 0, RAFT(enable_heartbeat),
	  .help = "Send heartbeats (switch off only in tests)." },
	{ "raft", "enable_elect", OPT_BOOL, 0, RAFT(enable_elect),
	  .help = "Start an election when the timeout expires (switch off only in tests)." },
	{ "raft", "enable_leader_restore", OPT_BOOL, 0, RAFT(enable_leader_restore),
	  .help = "Keep leadership across a restart when the persisted vote is this node's "
		  "committed one. Off by default, unlike openraft: a leader appends in parallel "
		  "with replication, so after a crash its disk may lack entries it already sent, "
		  "and a restored leader may reuse their log ids for different entries (see "
		  "docs/architecture.md)." },
	{ "raft", "allow_log_reversion", OPT_BOOL, 0, RAFT(allow_log_reversion),
	  .help = "Keep replicating to a follower whose log went backwards (a wiped disk) "
		  "instead of stopping at the reversion." },
	{ "raft", "snapshot_logs_since_last", OPT_U64, 0, RAFT(snapshot_logs_since_last), .min = 0,
	  .max = 1ull << 40,
	  .help = "Build a snapshot once the state machine has applied this many entries past "
		  "the last one (openraft's SnapshotPolicy::LogsSinceLast); 0: never, only on "
		  "request (LCR_EV_TRIGGER_SNAPSHOT). The build writes the whole state to "
		  "<data_dir>/group-<g>/ a piece per loop iteration." },
	{ "raft", "max_in_snapshot_log_to_keep", OPT_U64, 0, RAFT(max_in_snapshot_log_to_keep),
	  .min = 0, .max = 1ull << 40,
	  .help = "After a snapshot, keep this many log entries before its last one (a "
		  "follower that lags less catches up from the log, not a snapshot); the rest "
		  "is purged." },
	{ "raft", "purge_batch_size", OPT_U64, 0, RAFT(purge_batch_size), .min = 1,
	  .max = 1ull << 40,
	  .help = "Purge the log only in steps of at least this many entries (whole segments are "
		  "what "
		  "the log frees: a step frees disk only once a whole segment is behind it)." },
	{ "raft", "read_policy", OPT_ENUM, 0, FIELD(read_policy), .def = "read_index",
	  .choices = read_policy_choices,
	  .help = "How a GET is served: read_index confirms leadership with a quorum after the "
		  "read "
		  "arrives; lease_read serves under the leader lease without a round trip "
		  "(relies on bounded clock drift)." },

	{ "storage", "durability", OPT_ENUM, 0, FIELD(node.durability), .def = "fsync",
	  .choices = durability_choices,
	  .help = "fsync: a write is acknowledged once it is on stable storage. none: once it is "
		  "written; UNSAFE, a crash or power loss loses acknowledged writes (benchmarks "
		  "only)." },
	{ "storage", "io_mode", OPT_ENUM, 0, FIELD(node.io_mode), .def = "direct-dsync",
	  .choices = io_mode_choices,
	  .help = "How a batch becomes durable: direct-dsync (an O_DIRECT write with RWF_DSYNC, "
		  "O_DSYNC "
		  "for that write alone: one write), "
		  "direct-fdatasync (O_DIRECT write, then fdatasync), buffered-fdatasync (page "
		  "cache write, then fdatasync); see docs/benchmarks.md." },
	{ "storage", "segment_mb", OPT_MIB, 0, FIELD(node.segment_bytes), .scale = 1u << 20,
	  .def = "64", .min = 4, .max = 4096, .help = "Size of a log segment file, in MiB." },

	{ "faults", "loss_pct", OPT_PERCENT, 0, FIELD(node.fault_loss_ppm), .scale = 1, .def = "0",
	  .min = 0, .max = 1000000, .help = "Datagrams dropped, in percent." },
	{ "faults", "dup_pct", OPT_PERCENT, 0, FIELD(node.fault_dup_ppm), .scale = 1, .def = "0",
	  .min = 0, .max = 1000000, .help = "Datagrams sent twice, in percent." },
	{ "faults", "reorder_pct", OPT_PERCENT, 0, FIELD(node.fault_reorder_ppm), .scale = 1,
	  .def = "0", .min = 0, .max = 1000000,
	  .help = "Datagrams held back until 1 to 8 later ones have gone out (or 1 ms has "
		  "passed), in percent." },
	{ "faults", "delay_us", OPT_US, 0, FIELD(node.fault_delay_ns), .scale = 1000, .def = "0",
	  .min = 0, .max = 10000000, .help = "Delay added to every datagram, in microseconds." },
	{ "faults", "jitter_us", OPT_US, 0, FIELD(node.fault_jitter_ns), .scale = 1000, .def = "0",
	  .min = 0, .max = 10000000,
	  .help = "Random extra delay per datagram, uniform in 0..jitter_us, in "
		  "microseconds." },
	{ "faults", "seed", OPT_U64, 0, FIELD(node.fault_seed), .def = "0", .min = 0,
	  .max = UINT64_MAX, .help = "Seed of the fault generator, for reproducible runs." },

	{ "dpdk", "eal", OPT_STRING, OPT_APPEND, FIELD(eal), .def = "", .join = ' ',
	  .help = "EAL arguments as a DPDK application takes them, blank-separated, e.g. -l 0 "
		  "--no-huge -m 256 --no-pci --no-shconf --vdev=net_af_packet0,iface=eth1; {id} "
		  "is replaced by the node id. A line holds at most 197 characters, so the value "
		  "continues: a repeated eal = ... line, or an indented line below it (one that "
		  "sets no option), appends its text after one space. -l names EAL's lcores "
		  "only: the node's threads are pinned by [node] cores." },
	{ "dpdk", "routes", OPT_STRING, OPT_APPEND, FIELD(routes), .def = "", .check = check_routes,
	  .join = ',',
	  .help = "The DPDK port that reaches a node: node=port,... with the port's name "
		  "(net_af_packet0, or a PCI address as 0000:01:00.0); nodes not named go out of "
		  "the first port. Every node named must be in [nodes]. Not with memif_dir, "
		  "which routes every peer itself. A repeated or indented line appends after a "
		  "comma." },
	{ "dpdk", "neighbours", OPT_STRING, OPT_APPEND, FIELD(neighbours), .def = "",
	  .check = check_neighbours, .join = ',',
	  .help = "Static Ethernet addresses: node=aa:bb:cc:dd:ee:ff,...; those of the nodes "
		  "not named are learnt from their frames and by ARP. Every node named must be "
		  "in [nodes]. A repeated or indented line appends after a comma." },
	{ "dpdk", "memif_dir", OPT_STRING, 0, FIELD(memif_dir), .def = "",
	  .help = "A directory for memif sockets: the node adds a memif port to every peer "
		  "(net_memif<peer>, socket <dir>/memif-<a>-<b>.sock for nodes a < b) to the EAL "
		  "arguments and routes each peer through its own, so that one file serves "
		  "every node of a cluster on one host. lcraft-node creates the directory if "
		  "it is missing." },
	{ "dpdk", "rx_desc", OPT_U32, 0, FIELD(node.dpdk.rx_desc), .def = "0", .min = 0,
	  .max = 32768,
	  .help = "Receive descriptors per queue of every port; 0: 1024. The driver may round "
		  "it to what it supports." },
	{ "dpdk", "tx_desc", OPT_U32, 0, FIELD(node.dpdk.tx_desc), .def = "0", .min = 0,
	  .max = 32768,
	  .help = "Transmit descriptors per queue of every port; 0: 1024. The driver may round "
		  "it to what it supports." },
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

/* ---- values -------------------------------------------------------------------- */

static void *field_of(struct lcr_app_config *c, const struct opt *o)
{
	return (char *)c + o->offset;
}

static uint64_t scale_of(const struct opt *o)
{
	return o->scale ? o->scale : 1;
}

static void store_uint(void *p, uint16_t size, uint64_t v)
{
	switch (size) {
	case 2:
		LCR_ASSERT(v <= UINT16_MAX);
		*(uint16_t *)p = (uint16_t)v;
		break;
	case 4:
		LCR_ASSERT(v <= UINT32_MAX);
		*(uint32_t *)p = (uint32_t)v;
		break;
	case 8:
		*(uint64_t *)p = v;
		break;
	default:
		LCR_ASSERT(!"integer field of an unexpected size");
	}
}

static uint64_t load_uint(const void *p, uint16_t size)
{
	switch (size) {
	case 2:
		return *(const uint16_t *)p;
	case 4:
		return *(const uint32_t *)p;
	case 8:
		return *(const uint64_t *)p;
	default:
		LCR_ASSERT(!"integer field of an unexpected size");
	}
	return 0;
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* A decimal number: digits only, no sign, no trailing junk, no overflow. */
static int parse_u64(const char *s, uint64_t *out, char *err, size_t err_len)
{
	uint64_t v = 0;

	if (!*s) {
		snprintf(err, err_len, "missing value");
		return -EINVAL;
	}
	if (*s == '-') {
		snprintf(err, err_len, "'%s' is negative", s);
		return -EINVAL;
	}
	for (const char *p = s; *p; p++) {
		if (!is_digit(*p)) {
			snprintf(err, err_len, "'%s' is not a whole decimal number", s);
			return -EINVAL;
		}
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) {
			snprintf(err, err_len, "'%s' is too large", s);
			return -ERANGE;
		}
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

/* "2.5" -> 25000 ppm: at most 4 decimals (1 ppm), at most 100. */
static int parse_percent(const char *s, uint64_t *ppm, char *err, size_t err_len)
{
	uint64_t whole = 0, frac = 0;
	unsigned int n_int = 0, n_frac = 0;
	const char *p = s;

	if (*p == '-') {
		snprintf(err, err_len, "'%s' is negative", s);
		return -EINVAL;
	}
	for (; is_digit(*p) && n_int < 4; p++, n_int++)
		whole = whole * 10 + (uint64_t)(*p - '0');
	if (*p == '.')
		for (p++; is_digit(*p) && n_frac < 5; p++, n_frac++)
			frac = frac * 10 + (uint64_t)(*p - '0');
	if (*p || n_int == 0 || (n_frac == 0 && p[-1] == '.')) {
		snprintf(err, err_len, "'%s' is not a percentage (a decimal number, as 2.5)", s);
		return -EINVAL;
	}
	if (n_frac > 4) {
		snprintf(err, err_len, "'%s' has more than 4 decimals (the unit is 1 ppm)", s);
		return -EINVAL;
	}
	for (; n_frac < 4; n_frac++)
		frac *= 10;
	*ppm = whole * 10000 + frac;
	return 0;
}

static int parse_bool(const char *s, bool *out, char *err, size_t err_len)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	snprintf(err, err_len, "'%s' is not a boolean (true/false, yes/no, on/off, 1/0)", s);
	return -EINVAL;
}

static void choices_list(const struct opt_choice *ch, const char *sep, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (; ch->name && n < len; ch++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", n ? sep : "", ch->name);
}

static void format_percent(uint64_t ppm, char *out, size_t len)
{
	int n = snprintf(out, len, "%llu.%04llu", (unsigned long long)(ppm / 10000),
			 (unsigned long long)(ppm % 10000));

	while (n > 0 && out[n - 1] == '0')
		out[--n] = '\0';
	if (n > 0 && out[n - 1] == '.')
		out[--n] = '\0';
}

/* Parse `value` as option `o` and store it in `c`; err says why not. */
static int set_value(struct lcr_app_config *c, const struct opt *o, const char *value, char *err,
		     size_t err_len)
{
	void *p = field_of(c, o);
	uint64_t v;
	char list[128];
	int rc;

	switch (o->type) {
	case OPT_BOOL: {
		bool b;

		if ((rc = parse_bool(value, &b, err, err_len)) < 0)
			return rc;
		*(bool *)p = b;
		return 0;
	}
	case OPT_STRING:
		if (strlen(value) >= o->size) {
			snprintf(err, err_len, "longer than %u characters", o->size - 1);
			return -EINVAL;
		}
		if (o->check && (rc = o->check(value, err, err_len)) < 0)
			return rc;
		memcpy(p, value, strlen(value) + 1);
		return 0;
	case OPT_ENUM:
		for (const struct opt_choice *ch = o->choices; ch->name; ch++)
			if (strcasecmp(value, ch->name) == 0) {
				store_uint(p, o->size, ch->value);
				return 0;
			}
		choices_list(o->choices, ", ", list, sizeof(list));
		snprintf(err, err_len, "'%s' is not one of: %s", value, list);
		return -EINVAL;
	case OPT_PERCENT:
		if ((rc = parse_percent(value, &v, err, err_len)) < 0)
			return rc;
		if (v > o->max) {
			snprintf(err, err_len, "'%s' is out of range 0..100", value);
			return -ERANGE;
		}
		store_uint(p, o->size, v);
		return 0;
	case OPT_U32:
	case OPT_U64:
	case OPT_MS:
	case OPT_US:
	case OPT_MIB:
		if ((rc = parse_u64(value, &v, err, err_len)) < 0)
			return rc;
		if (v < o->min || v > o->max) {
			snprintf(err, err_len, "%llu is out of range %llu..%llu",
				 (unsigned long long)v, (unsigned long long)o->min,
				 (unsigned long long)o->max);
			return -ERANGE;
		}
		store_uint(p, o->size, v * scale_of(o));
		return 0;
	default:
		LCR_ASSERT(!"option type without a value");
	}
	return -EINVAL;
}

/* The value of option `o` in `c`, as a config file would spell it. */
static const char *format_value(const struct lcr_app_config *c, const struct opt *o, char *out,
				size_t len)
{
	const void *p = (const char *)c + o->offset;
	uint64_t v;

	switch (o->type) {
	case OPT_BOOL:
		return *(const bool *)p ? "true" : "false";
	case OPT_STRING:
		return (const char *)p;
	case OPT_ENUM:
		v = load_uint(p, o->size);
		for (const struct opt_choice *ch = o->choices; ch->name; ch++)
			if (ch->value == v)
				return ch->name;
		snprintf(out, len, "%llu", (unsigned long long)v);
		return out;
	case OPT_PERCENT:
		format_percent(load_uint(p, o->size), out, len);
		return out;
	case OPT_NODES:
		return "";
	default:
		v = load_uint(p, o->size) / scale_of(o);
		snprintf(out, len, "%llu", (unsigned long long)v);
		return out;
	}
}

/* Every row must make sense: a broken table is a programming error. */
static void check_opt(const struct opt *o)
{
	LCR_ASSERT(o->section && o->key && o->help);
	LCR_ASSERT(o->min <= o->max);
	switch (o->type) {
	case OPT_BOOL:
		LCR_ASSERT(o->size == sizeof(bool));
		break;
	case OPT_STRING:
		LCR_ASSERT(o->size > 1);
		if (o->flags & OPT_APPEND)
			LCR_ASSERT(o->join != '\0');
		break;
	case OPT_ENUM:
		LCR_ASSERT(o->choices && o->size == sizeof(uint32_t));
		break;
	case OPT_NODES:
		break;
	default:
		LCR_ASSERT(o->size == 2 || o->size == 4 || o->size == 8);
		LCR_ASSERT(o->size == 8 || o->max * scale_of(o) < (1ull << (8 * o->size)));
		LCR_ASSERT(o->max <= UINT64_MAX / scale_of(o));
	}
}

void lcr_app_config_default(struct lcr_app_config *c)
{
	char err[160];

	memset(c, 0, sizeof(*c));
	lcr_core_config_default(&c->node.core, 1);
	for (size_t i = 0; i < N_OPTS; i++) {
		check_opt(&opts[i]);
		if (opts[i].def)
			LCR_ASSERT(set_value(c, &opts[i], opts[i].def, err, sizeof(err)) == 0);
	}
	c->node.bind_host = c->bind;
	c->node.data_dir = c->data_dir;
	c->node.dpdk.eal = c->eal;
	c->node.dpdk.routes = c->routes;
	c->node.dpdk.neighbours = c->neighbours;
	c->node.dpdk.memif_dir = c->memif_dir;
}

/* ---- hosts and ports ----------------------------------------------------------- */

/* 4 or 6 for an IP literal (brackets not included), 0 for a name. */
static int ip_family(const char *host)
{
	unsigned char buf[16];

	if (inet_pton(AF_INET, host, buf) == 1)
		return 4;
	if (inet_pton(AF_INET6, host, buf) == 1)
		return 6;
	return 0;
}

/* A host name (RFC 1123 letters, digits, '-' and '.'), or an IP literal. */
static const char *check_host(const char *v)
{
	bool dotted_digits = true;

	if (!*v)
		return "empty host";
	if (ip_family(v))
		return NULL;
	if (strchr(v, ':'))
		return "not an IPv6 address";
	if (strlen(v) > 63)
		return "host name longer than 63 characters";
	if (v[0] == '-' || v[0] == '.')
		return "not a host name";
	for (const char *p = v; *p; p++) {
		bool alnum = is_digit(*p) || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');

		if (!alnum && *p != '-' && *p != '.')
			return "not a host name or IP address";
		if (!is_digit(*p) && *p != '.')
			dotted_digits = false;
	}
	if (dotted_digits)
		return "not an IPv4 address";
	return NULL;
}

static int check_bind(const char *v, char *err, size_t err_len)
{
	const char *why = check_host(v);

	if (!why)
		return 0;
	snprintf(err, err_len, "'%s': %s", v, why);
	return -EINVAL;
}

static int check_data_dir(const char *v, char *err, size_t err_len)
{
	if (*v)
		return 0;
	snprintf(err, err_len, "'': empty path");
	return -EINVAL;
}

static int parse_host_port(const char *v, struct lcr_peer_addr *a, char *err, size_t err_len);

/*
 * [node] metrics_listen: empty, or host:port as in [nodes]. {id} stands for
 * a number here; the value with the node id in it is checked again at the end
 * of the load (check_metrics_port).
 */
static int check_metrics_listen(const char *v, char *err, size_t err_len)
{
	struct lcr_peer_addr a;
	char t[sizeof(((struct lcr_app_config *)0)->metrics_listen)];
	size_t n = 0;

	if (!*v)
		return 0;
	for (const char *s = v; *s && n + 1 < sizeof(t); n++)
		if (strncmp(s, "{id}", 4) == 0) {
			t[n] = '1';
			s += 4;
		} else {
			t[n] = *s++;
		}
	t[n] = '\0';
	if (strcmp(t, v) == 0)
		return parse_host_port(t, &a, err, err_len);
	char why[200];
	if (parse_host_port(t, &a, why, sizeof(why)) < 0) {
		snprintf(err, err_len, "'%s' with {id} replaced (by 1 here): %s", v, why);
		return -EINVAL;
	}
	return 0;
}

/* The same host spelled the same way: IP literals in canonical form, names in lower case. */
static void host_canonical(const char *host, char *out, size_t len)
{
	unsigned char buf[16];

	if (inet_pton(AF_INET, host, buf) == 1 && inet_ntop(AF_INET, buf, out, (socklen_t)len))
		return;
	if (inet_pton(AF_INET6, host, buf) == 1 && inet_ntop(AF_INET6, buf, out, (socklen_t)len))
		return;
	snprintf(out, len, "%s", host);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

/* "host:port", "[v6]:port" -> peer address (host without brackets). */
static int parse_host_port(const char *v, struct lcr_peer_addr *a, char *err, size_t err_len)
{
	char host[sizeof(a->host)];
	const char *port, *why;
	size_t host_len;
	uint64_t p;

	if (v[0] == '[') {
		const char *close = strchr(v, ']');

		if (!close) {
			snprintf(err, err_len, "'%s': missing ']' after the IPv6 address", v);
			return -EINVAL;
		}
		host_len = (size_t)(close - v - 1);
		if (host_len >= sizeof(a->host)) {
			snprintf(err, err_len, "'%s': address too long", v);
			return -EINVAL;
		}
		memcpy(host, v + 1, host_len);
		host[host_len] = '\0';
		if (ip_family(host) != 6) {
			snprintf(err, err_len, "'%s': '%s' is not an IPv6 address", v, host);
			return -EINVAL;
		}
		if (close[1] != ':') {
			snprintf(err, err_len, "'%s': expected :port after ']'", v);
			return -EINVAL;
		}
		port = close + 2;
	} else {
		const char *colon = strrchr(v, ':');

		if (!colon) {
			snprintf(err, err_len, "'%s': expected host:port", v);
			return -EINVAL;
		}
		host_len = (size_t)(colon - v);
		if (memchr(v, ':', host_len)) {
			snprintf(err, err_len,
				 "'%s': an IPv6 address goes in brackets, as [::1]:7001", v);
			return -EINVAL;
		}
		if (host_len >= sizeof(a->host)) {
			snprintf(err, err_len, "'%s': host longer than %zu characters", v,
				 sizeof(a->host) - 1);
			return -EINVAL;
		}
		memcpy(host, v, host_len);
		host[host_len] = '\0';
		if ((why = check_host(host)) != NULL) {
			snprintf(err, err_len, "'%s': %s", v, why);
			return -EINVAL;
		}
		port = colon + 1;
	}
	if (parse_u64(port, &p, err, err_len) < 0 || p < 1 || p > 65535) {
		snprintf(err, err_len, "'%s': the port must be a number in 1..65535", v);
		return -EINVAL;
	}
	memcpy(a->host, host, host_len + 1);
	a->port = (uint16_t)p;
	return 0;
}

/* ---- lists: [node] cores, [dpdk] routes and neighbours ----------------------------- */

#define ITEM_MAX      96   /* longest item of a list worth reading */
#define CORE_MAX      1023 /* CPU_SETSIZE - 1: the highest core pthread_setaffinity_np names */
#define PORT_NAME_MAX 63   /* a DPDK port's name (lcr_dpdk_peer.eth_port) */

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * The next comma-separated item of *p, blanks around it dropped, into item.
 * Returns 1, 0 at the end of the list, or -E2BIG for an item longer than
 * ITEM_MAX - 1 (never valid).
 */
static int next_item(const char **p, char item[ITEM_MAX])
{
	const char *s = *p, *comma;
	size_t n;

	if (!s)
		return 0;
	comma = strchr(s, ',');
	n = comma ? (size_t)(comma - s) : strlen(s);
	*p = comma ? comma + 1 : NULL;
	for (; n && is_blank(*s); s++, n--)
		;
	for (; n && is_blank(s[n - 1]); n--)
		;
	if (n >= ITEM_MAX)
		return -E2BIG;
	memcpy(item, s, n);
	item[n] = '\0';
	return 1;
}

static int long_item(char *err, size_t err_len)
{
	snprintf(err, err_len, "an item is longer than %d characters", ITEM_MAX - 1);
	return -EINVAL;
}

/* A whole list that is empty or blank: no items at all. */
static bool list_empty(const char *v)
{
	for (; *v; v++)
		if (!is_blank(*v))
			return false;
	return true;
}

/*
 * "0,2-3" -> 0, 2, 3 into cores (LCR_LCORES_MAX of them; NULL: only count).
 * Returns how many, or -EINVAL with the bad item named in err.
 */
static int parse_cores(const char *v, uint16_t *cores, char *err, size_t err_len)
{
	char item[ITEM_MAX];
	uint32_t n = 0;
	int rc;

	if (list_empty(v))
		return 0;
	while ((rc = next_item(&v, item)) != 0) {
		char *dash;
		uint64_t lo, hi;
		char e[64];

		if (rc < 0)
			return long_item(err, err_len);
		dash = strchr(item, '-');
		if (dash)
			*dash = '\0';
		if (parse_u64(item, &lo, e, sizeof(e)) < 0 ||
		    (dash && parse_u64(dash + 1, &hi, e, sizeof(e)) < 0)) {
			if (dash)
				*dash = '-';
			snprintf(err, err_len,
				 "'%s' is not a core number or range (list them as 0,2-3)", item);
			return -EINVAL;
		}
		if (!dash)
			hi = lo;
		if (hi > CORE_MAX) {
			snprintf(err, err_len, "core %llu is past %d", (unsigned long long)hi,
				 CORE_MAX);
			return -EINVAL;
		}
		if (lo > hi) {
			snprintf(err, err_len, "the range %llu-%llu goes down (write %llu-%llu)",
				 (unsigned long long)lo, (unsigned long long)hi,
				 (unsigned long long)hi, (unsigned long long)lo);
			return -EINVAL;
		}
		for (uint64_t core = lo; core <= hi; core++) {
			if (n == LCR_LCORES_MAX) {
				snprintf(err, err_len,
					 "more than %d cores (one per lcore, at most %d lcores)",
					 LCR_LCORES_MAX, LCR_LCORES_MAX);
				return -EINVAL;
			}
			if (cores)
				cores[n] = (uint16_t)core;
			n++;
		}
	}
	return (int)n;
}

static int check_cores(const char *v, char *err, size_t err_len)
{
	int rc = parse_cores(v, NULL, err, err_len);

	return rc < 0 ? rc : 0;
}

/* A DPDK port's name: net_af_packet0, net_memif2, 0000:01:00.0. */
static int check_port_name(const char *v, char *err, size_t err_len)
{
	if (!*v || strlen(v) > PORT_NAME_MAX) {
		snprintf(err, err_len, "'%s' is not a DPDK port name (1..%d characters)", v,
			 PORT_NAME_MAX);
		return -EINVAL;
	}
	for (const char *p = v; *p; p++) {
		bool alnum = is_digit(*p) || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');

		if (!alnum && !strchr("_.:-", *p)) {
			snprintf(err, err_len,
				 "'%s' is not a DPDK port name (letters, digits and _.:- only)", v);
			return -EINVAL;
		}
	}
	return 0;
}

static bool is_hex(char ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* aa:bb:cc:dd:ee:ff: six bytes of two hexadecimal digits each. */
static int check_mac(const char *v, char *err, size_t err_len)
{
	bool ok = strlen(v) == 17;

	for (size_t i = 0; ok && i < 17; i++)
		ok = i % 3 == 2 ? v[i] == ':' : is_hex(v[i]);
	if (ok)
		return 0;
	snprintf(err, err_len, "'%s' is not an Ethernet address (aa:bb:cc:dd:ee:ff)", v);
	return -EINVAL;
}

/*
 * "node=value,...": every node once, each value passing `check`. The nodes
 * go to ids (LCR_PEERS_MAX of them; a list cannot name more nodes than a
 * cluster has). Returns how many, or -EINVAL with the bad item in err.
 */
static int parse_node_list(const char *v, opt_check_fn check, uint32_t ids[LCR_PEERS_MAX],
			   char *err, size_t err_len)
{
	char item[ITEM_MAX], e[160];
	uint32_t n = 0;
	int rc;

	if (list_empty(v))
		return 0;
	while ((rc = next_item(&v, item)) != 0) {
		char *eq, *key = item, *value;
		uint64_t id;

		if (rc < 0)
			return long_item(err, err_len);
		eq = strchr(item, '=');
		if (!eq) {
			snprintf(err, err_len, "'%s' is not node=value", item);
			return -EINVAL;
		}
		*eq = '\0';
		for (value = eq + 1; is_blank(*value); value++)
			;
		for (char *end = eq; end > key && is_blank(end[-1]); *--end = '\0')
			;
		if (parse_u64(key, &id, e, sizeof(e)) < 0 || id < 1 || id > UINT32_MAX) {
			snprintf(err, err_len, "'%s' is not a node id (1..4294967295)", key);
			return -EINVAL;
		}
		if (check(value, e, sizeof(e)) < 0) {
			snprintf(err, err_len, "node %llu: %s", (unsigned long long)id, e);
			return -EINVAL;
		}
		for (uint32_t i = 0; i < n; i++)
			if (ids[i] == id) {
				snprintf(err, err_len, "node %llu is named twice",
					 (unsigned long long)id);
				return -EINVAL;
			}
		if (n == LCR_PEERS_MAX) {
			snprintf(err, err_len, "more than %d nodes named", LCR_PEERS_MAX);
			return -EINVAL;
		}
		ids[n++] = (uint32_t)id;
	}
	return (int)n;
}

static int check_routes(const char *v, char *err, size_t err_len)
{
	uint32_t ids[LCR_PEERS_MAX];
	int rc = parse_node_list(v, check_port_name, ids, err, err_len);

	return rc < 0 ? rc : 0;
}

static int check_neighbours(const char *v, char *err, size_t err_len)
{
	uint32_t ids[LCR_PEERS_MAX];
	int rc = parse_node_list(v, check_mac, ids, err, err_len);

	return rc < 0 ? rc : 0;
}

/* Blanks out: the library reads the lists without them (dpdk-net/udp.c). */
static void squeeze_blanks(char *s)
{
	char *out = s;

	for (; *s; s++)
		if (!is_blank(*s))
			*out++ = *s;
	*out = '\0';
}

/*
 * [cluster] voters: node ids separated by commas (blanks around them
 * allowed), none twice, into ids; the count, or -EINVAL with why.
 */
static int parse_voters(const char *v, uint32_t *ids, char *err, size_t err_len)
{
	uint32_t n = 0;

	while (*v) {
		char word[32];
		size_t len = strcspn(v, ",");
		uint64_t id;

		while (len && is_blank(*v)) {
			v++;
			len--;
		}
		while (len && is_blank(v[len - 1]))
			len--;
		if (len == 0 || len >= sizeof(word)) {
			snprintf(err, err_len, "expected node ids separated by commas, as 1,2,3");
			return -EINVAL;
		}
		memcpy(word, v, len);
		word[len] = '\0';
		if (parse_u64(word, &id, err, err_len) < 0 || id < 1 || id > UINT32_MAX) {
			snprintf(err, err_len, "%s: a node id is a number in 1..4294967295", word);
			return -EINVAL;
		}
		for (uint32_t i = 0; i < n; i++)
			if (ids[i] == id) {
				snprintf(err, err_len, "node %u is named twice", ids[i]);
				return -EINVAL;
			}
		if (n == LCR_PEERS_MAX) {
			snprintf(err, err_len, "more than %d voters", LCR_PEERS_MAX);
			return -EINVAL;
		}
		ids[n++] = (uint32_t)id;
		v += strcspn(v, ",");
		if (*v == ',' && !*++v) {
			snprintf(err, err_len, "a comma with no node id after it");
			return -EINVAL;
		}
	}
	return (int)n;
}

static int check_voters(const char *v, char *err, size_t err_len)
{
	uint32_t ids[LCR_PEERS_MAX];
	int rc = parse_voters(v, ids, err, err_len);

	return rc < 0 ? rc : 0;
}

/* ---- loading ------------------------------------------------------------------- */

/* The nodes become the core's initial membership. */
static_assert(LCR_PEERS_MAX <= LCR_NODES_MAX, "every node must fit in a membership config");

struct load {
	struct lcr_app_config *c;
	const char *path;
	FILE *f;
	uint32_t line;			   /* the line inih is parsing (1-based) */
	int read_errno;			   /* reading the file failed */
	uint32_t nodes_line;		   /* the [nodes] header */
	uint32_t set_line[N_OPTS];	   /* where each option was set; 0: default */
	uint32_t node_line[LCR_PEERS_MAX]; /* where each node was listed */
	size_t append_opt; /* the option of the last key line, if OPT_APPEND; else N_OPTS */
	char *why;
	size_t why_len;
	bool failed;
	uint32_t err_line; /* line of the recorded error; 0: none */
};

#define LINE_DEFAULT UINT32_MAX /* the option was not in the file */

/* Record the first error: "path:line: what". line 0: no line. */
__attribute__((format(printf, 3, 4))) static void fail(struct load *ld, uint32_t line,
						       const char *fmt, ...)
{
	size_t n = 0;
	va_list ap;

	if (ld->failed)
		return;
	ld->failed = true;
	ld->err_line = line;
	if (line == LINE_DEFAULT)
		n = (size_t)snprintf(ld->why, ld->why_len, "%s:(default): ", ld->path);
	else if (line)
		n = (size_t)snprintf(ld->why, ld->why_len, "%s:%u: ", ld->path, line);
	else
		n = (size_t)snprintf(ld->why, ld->why_len, "%s: ", ld->path);
	if (n >= ld->why_len)
		return;
	va_start(ap, fmt);
	vsnprintf(ld->why + n, ld->why_len - n, fmt, ap);
	va_end(ap);
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Levenshtein distance of two short strings (longer ones: far apart). */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[97], cur[97];

	if (la > 96 || lb > 96)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);

			cur[j] = min_size(sub, min_size(prev[j] + 1, cur[j - 1] + 1));
		}
		memcpy(prev, cur, sizeof(size_t) * (lb + 1));
	}
	return prev[lb];
}

/* Whether every '_'-separated word of `key` is a word of `cand`. */
static bool words_within(const char *key, const char *cand)
{
	const char *w = key;
	size_t n_words = 0, n_chars = strlen(key);

	while (*w) {
		size_t len = strcspn(w, "_");
		bool found = false;

		for (const char *c = cand; *c;) {
			size_t clen = strcspn(c, "_");

			if (clen == len && strncmp(c, w, len) == 0)
				found = true;
			c += clen + (c[clen] == '_');
		}
		if (!found || len == 0)
			return false;
		n_words++;
		w += len + (w[len] == '_');
	}
	return n_words >= 2 || n_chars >= 5;
}

/* The known option closest to section.key, or NULL if none is close. */
static const struct opt *closest_opt(const char *section, const char *key)
{
	const struct opt *best = NULL;
	size_t best_d = SIZE_MAX;
	char given[96], cand[96];

	snprintf(given, sizeof(given), "%s.%s", section, key);
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *o = &opts[i];
		size_t d, limit = strlen(given) / 4;

		if (o->type == OPT_NODES)
			continue;
		snprintf(cand, sizeof(cand), "%s.%s", o->section, o->key);
		d = distance(given, cand);
		if (d > (limit > 2 ? limit : 2) && !words_within(key, o->key))
			continue;
		if (d < best_d) {
			best = o;
			best_d = d;
		}
	}
	return best;
}

static const struct section *find_section(const char *name)
{
	for (size_t i = 0; i < N_SECTIONS; i++)
		if (strcmp(sections[i].name, name) == 0)
			return &sections[i];
	return NULL;
}

/* "[cluster], [nodes], ..., [dpdk]", `last` before the last one. */
static const char *section_list(const char *last, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < N_SECTIONS && n < len; i++) {
		const char *sep = i == 0 ? "" : i + 1 < N_SECTIONS ? ", " : last;

		n += (size_t)snprintf(out + n, len - n, "%s[%s]", sep, sections[i].name);
	}
	return out;
}

static void unknown_section(struct load *ld, const char *name)
{
	char list[128];

	const char *best = NULL;
	size_t best_d = 3;

	for (size_t i = 0; i < N_SECTIONS; i++) {
		size_t d = distance(name, sections[i].name);

		if (d < best_d) {
			best = sections[i].name;
			best_d = d;
		}
	}
	if (best)
		fail(ld, ld->line, "[%s]: unknown section (did you mean [%s]?)", name, best);
	else
		fail(ld, ld->line, "[%s]: unknown section (sections: %s)", name,
		     section_list(", ", list, sizeof(list)));
}

/*
 * Whether `line` (blanks dropped) reads `name =`, name as an option's: a
 * letter or '_', then letters, digits and '_'. A list's item (2=net_memif2)
 * starts with a digit, EAL's arguments with '-'.
 */
static bool is_key_line(const char *line)
{
	const char *p = line;

	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'))
		return false;
	while (is_digit(*p) || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_')
		p++;
	while (is_blank(*p))
		p++;
	return *p == '=';
}

/*
 * An indented line below an OPT_APPEND option continues its value, unless
 * it reads `key = ...` (an indented file) or is blank, a comment or a
 * section. It goes to inih indented by one blank, which inih's multi-line
 * values hand to on_option() under the same key; its inline comment is cut
 * here, as inih (55) does not for continuation lines.
 */
static bool continue_value(struct load *ld, char *str, size_t *n)
{
	char *semi;

	if (ld->append_opt == N_OPTS || strchr("#;[\r\n", str[0]) || is_key_line(str))
		return false;
	for (semi = strchr(str, ';'); semi && !is_blank(semi[-1]); semi = strchr(semi + 1, ';'))
		;
	if (semi) {
		while (semi > str && is_blank(semi[-1]))
			semi--;
		*n = (size_t)(semi - str);
	}
	memmove(str + 1, str, *n);
	str[0] = ' ';
	(*n)++;
	return true;
}

/*
 * inih's reader: one whole line per call, counted. A line longer than inih's
 * buffer would be split by inih into two lines, so it is refused here and
 * handed on as an empty line. Leading blanks are dropped, so that indented
 * files work (inih would take an indented line for the continuation of the
 * previous value), except on the continuation lines of an OPT_APPEND option
 * (continue_value()). Section headers are checked here, so that an unknown
 * section is reported even when it has no keys.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct load *ld = stream;
	size_t n = 0, max = num > 3 ? (size_t)num - 3 : 0;
	bool too_long = false, leading = true, indented = false;
	int ch;

	errno = 0;
	while ((ch = getc(ld->f)) != EOF && ch != '\n') {
		if (leading && (ch == ' ' || ch == '\t')) {
			indented = true;
			continue;
		}
		leading = false;
		if (n < max)
			str[n++] = (char)ch;
		else
			too_long = true;
	}
	if (ch == EOF && ferror(ld->f)) {
		ld->read_errno = errno ? errno : EIO;
		return NULL;
	}
	if (ch == EOF && n == 0 && leading)
		return NULL;
	ld->line++;
	if (too_long) {
		fail(ld, ld->line, "line longer than %zu characters", max);
		n = 0;
	}
	str[n] = '\0';
	/* max leaves room for the blank, the newline and the terminator. */
	if (indented && n && continue_value(ld, str, &n))
		LCR_ASSERT(n + 2 <= (size_t)num);
	str[n++] = '\n';
	str[n] = '\0';

	if (str[0] == '[') {
		ld->append_opt = N_OPTS;
		char name[64];
		size_t len = strcspn(str + 1, "]\n");

		if (str[1 + len] == ']' && len < sizeof(name)) {
			memcpy(name, str + 1, len);
			name[len] = '\0';
			if (!find_section(name))
				unknown_section(ld, name);
			else if (strcmp(name, "nodes") == 0 && !ld->nodes_line)
				ld->nodes_line = ld->line;
		}
	}
	return str;
}

static void add_node(struct load *ld, const char *key, const char *value)
{
	struct lcr_node_config *n = &ld->c->node;
	struct lcr_peer_addr a;
	char err[200], canon[64], other[64];
	uint64_t id;

	/* Every byte of the copy is defined: a loaded config compares (and would
	 * write out) equal to itself, with no stack bytes in it. */
	memset(&a, 0, sizeof(a));
	if (parse_u64(key, &id, err, sizeof(err)) < 0 || id < 1 || id > UINT32_MAX) {
		fail(ld, ld->line, "nodes.%s: a node id must be a number in 1..4294967295", key);
		return;
	}
	if (parse_host_port(value, &a, err, sizeof(err)) < 0) {
		fail(ld, ld->line, "nodes.%s: %s", key, err);
		return;
	}
	a.id = (uint32_t)id;
	host_canonical(a.host, canon, sizeof(canon));
	for (uint32_t i = 0; i < n->n_peers; i++) {
		if (n->peers[i].id == a.id) {
			fail(ld, ld->line, "nodes.%s: node %u is listed twice (first at line %u)",
			     key, a.id, ld->node_line[i]);
			return;
		}
		host_canonical(n->peers[i].host, other, sizeof(other));
		if (n->peers[i].port == a.port && strcmp(canon, other) == 0) {
			fail(ld, ld->line, "nodes.%s: %s is also node %u's address (line %u)", key,
			     value, n->peers[i].id, ld->node_line[i]);
			return;
		}
	}
	if (n->n_peers == LCR_PEERS_MAX) {
		fail(ld, ld->line, "nodes.%s: more than %d nodes", key, LCR_PEERS_MAX);
		return;
	}
	ld->node_line[n->n_peers] = ld->line;
	n->peers[n->n_peers++] = a;
}

/* A further line of an OPT_APPEND option: its text after the value so far and o->join. */
static int append_value(struct lcr_app_config *c, const struct opt *o, const char *value, char *err,
			size_t err_len)
{
	char joined[4096];
	const char *old = field_of(c, o);
	size_t n;

	LCR_ASSERT(o->type == OPT_STRING && (o->flags & OPT_APPEND));
	LCR_ASSERT(o->size <= sizeof(joined));
	if (!*value)
		return 0;
	if (!*old)
		return set_value(c, o, value, err, err_len);
	n = (size_t)snprintf(joined, sizeof(joined), "%s%c%s", old, o->join, value);
	if (n >= o->size) {
		snprintf(err, err_len, "longer than %u characters with this line", o->size - 1);
		return -EINVAL;
	}
	return set_value(c, o, joined, err, err_len);
}

static int on_option(void *user, const char *section, const char *key, const char *value)
{
	struct load *ld = user;
	const struct opt *o = NULL;
	char err[200];
	size_t i;

	if (ld->failed)
		return 1; /* report the first error only */
	ld->append_opt = N_OPTS;
	if (!*section) {
		char list[128];

		fail(ld, ld->line, "%s: option outside a section (put it under %s)", key,
		     section_list(" or ", list, sizeof(list)));
		return 1;
	}
	if (!find_section(section)) {
		unknown_section(ld, section);
		return 1;
	}
	if (strcmp(section, "nodes") == 0) {
		add_node(ld, key, value);
		return 1;
	}
	for (i = 0; i < N_OPTS; i++)
		if (strcmp(opts[i].section, section) == 0 && strcmp(opts[i].key, key) == 0) {
			o = &opts[i];
			break;
		}
	if (!o) {
		const struct opt *near = closest_opt(section, key);

		if (near)
			fail(ld, ld->line, "%s.%s: unknown option (did you mean %s.%s?)", section,
			     key, near->section, near->key);
		else
			fail(ld, ld->line, "%s.%s: unknown option (lcraft-node --help lists them)",
			     section, key);
		return 1;
	}
	if (ld->set_line[i] && !(o->flags & OPT_APPEND)) {
		fail(ld, ld->line, "%s.%s: set twice (first at line %u)", section, key,
		     ld->set_line[i]);
		return 1;
	}
	if ((ld->set_line[i] ? append_value(ld->c, o, value, err, sizeof(err))
			     : set_value(ld->c, o, value, err, sizeof(err))) < 0) {
		fail(ld, ld->line, "%s.%s: %s", section, key, err);
		return 1;
	}
	if (!ld->set_line[i])
		ld->set_line[i] = ld->line;
	if (o->flags & OPT_APPEND)
		ld->append_opt = i;
	return 1;
}

static size_t opt_index(const char *section, const char *key)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (strcmp(opts[i].section, section) == 0 && strcmp(opts[i].key, key) == 0)
			return i;
	LCR_ASSERT(!"no such option");
	return 0;
}

/* Whether `word` appears in `s` as a whole word (not inside a longer name). */
static bool mentions(const char *s, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = strstr(s, word); p; p = strstr(p + 1, word)) {
		bool start = p == s || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z'));
		bool end = !(p[len] == '_' || (p[len] >= 'a' && p[len] <= 'z'));

		if (start && end)
			return true;
	}
	return false;
}

/*
 * The first membership's voters: [cluster] voters, each in [nodes], or every
 * node of [nodes] (a node started with --addr is in neither).
 */
static bool first_voters(struct load *ld, struct lcr_membership *m)
{
	const struct lcr_app_config *c = ld->c;
	uint32_t *ids = m->configs[0].ids, line = ld->set_line[opt_index("cluster", "voters")];
	char err[200];

	if (!c->voters[0]) {
		for (uint32_t i = 0; i < c->node.n_peers; i++)
			if (!(c->joining && c->node.peers[i].id == c->self))
				ids[m->configs[0].n++] = c->node.peers[i].id;
		return true;
	}
	int n = parse_voters(c->voters, ids, err, sizeof(err));
	LCR_ASSERT(n >= 0); /* check_voters() passed it */
	m->configs[0].n = (uint32_t)n;
	if (n == 0) {
		fail(ld, line,
		     "cluster.voters: no node id: name at least one voter, or leave it "
		     "out for every node of [nodes]");
		return false;
	}
	for (int i = 0; i < n; i++) {
		const struct lcr_peer_addr *p = lcr_app_config_peer(c, ids[i]);
		if (!p || (c->joining && ids[i] == c->self)) {
			fail(ld, line, "cluster.voters: node %u is not in [nodes]", ids[i]);
			return false;
		}
	}
	return true;
}

/*
 * Raft relationships, by lcr_core_config_validate(). Its sentence names the
 * options involved; blame the one set last in the file (the likely edit), or
 * the first one named if all are defaults.
 */
static void check_raft(struct load *ld)
{
	struct lcr_core_config cc = ld->c->node.core;
	char why[200];
	size_t blame = SIZE_MAX;

	memset(&cc.membership, 0, sizeof(cc.membership));
	cc.membership.n_configs = 1;
	if (!first_voters(ld, &cc.membership))
		return;
	/* A spare (or a joining node) is in no config of its own: the Raft
	 * options are checked as a voter's. */
	cc.id = ld->c->self && lcr_membership_contains(&cc.membership, ld->c->self)
			? ld->c->self
			: cc.membership.configs[0].ids[0];
	if (lcr_core_config_validate(&cc, why, sizeof(why)) == 0) {
		ld->c->node.core.id = ld->c->self ? ld->c->self : cc.id;
		ld->c->node.core.membership = cc.membership;
		return;
	}
	for (size_t i = 0; i < N_OPTS; i++) {
		if (strcmp(opts[i].section, "raft") != 0 || !mentions(why, opts[i].key))
			continue;
		if (blame == SIZE_MAX || ld->set_line[i] > ld->set_line[blame])
			blame = i;
	}
	if (blame == SIZE_MAX)
		fail(ld, ld->nodes_line, "nodes: %s", why);
	else if (ld->set_line[blame])
		fail(ld, ld->set_line[blame], "raft.%s: %s", opts[blame].key, why);
	else
		fail(ld, LINE_DEFAULT, "raft.%s: %s", opts[blame].key, why);
}

static bool ranges_overlap(uint32_t a, uint32_t a_n, uint32_t b, uint32_t b_n)
{
	return a < b + b_n && b < a + a_n;
}

/*
 * Node i listens on port + 0..lcores-1 and on its client port. Those of two
 * nodes on the same host must not meet, and all must stay below 65536.
 */
static void check_ports(struct load *ld)
{
	const struct lcr_app_config *c = ld->c;
	const struct lcr_node_config *n = &c->node;
	uint32_t lcores = n->lcores, off = c->client_port_offset;
	char hi[64], hk[64];

	for (uint32_t i = 0; i < n->n_peers && !ld->failed; i++) {
		const struct lcr_peer_addr *a = &n->peers[i];

		if (a->port + lcores - 1 > 65535 || a->port + off > 65535) {
			fail(ld, ld->node_line[i],
			     "nodes.%u: port %u leaves no room for its lcore ports (port + 0..%u) "
			     "or its client port (port + %u) below 65536",
			     a->id, a->port, lcores - 1, off);
			return;
		}
		host_canonical(a->host, hi, sizeof(hi));
		for (uint32_t k = 0; k < n->n_peers; k++) {
			const struct lcr_peer_addr *b = &n->peers[k];

			host_canonical(b->host, hk, sizeof(hk));
			if (strcmp(hi, hk) != 0)
				continue;
			if ((k < i && ranges_overlap(a->port, lcores, b->port, lcores)) ||
			    ranges_overlap(a->port + off, 1, b->port, lcores)) {
				fail(ld, ld->node_line[i],
				     "nodes.%u: ports %u..%u (lcores) and %u (client) collide with "
				     "node %u's ports %u..%u on %s",
				     a->id, a->port, a->port + lcores - 1, a->port + off, b->id,
				     b->port, b->port + lcores - 1, a->host);
				return;
			}
		}
	}
}

/* An IPv4 socket cannot reach IPv6 peers (dpdk-net/sock.c resolves in its family). */
static void check_bind_family(struct load *ld)
{
	const struct lcr_node_config *n = &ld->c->node;

	if (ip_family(ld->c->bind) != 4)
		return;
	for (uint32_t i = 0; i < n->n_peers; i++)
		if (n->peers[i].id != ld->c->self && ip_family(n->peers[i].host) == 6) {
			uint32_t line = ld->set_line[opt_index("node", "bind")];

			fail(ld, line ? line : ld->node_line[i],
			     "node.bind: %s is IPv4 but node %u has the IPv6 address %s; set "
			     "[node] bind = ::",
			     ld->c->bind, n->peers[i].id, n->peers[i].host);
			return;
		}
}

/* Replace every {id} in a string option (data_dir, eal) by the node id. */
static void substitute_id(struct load *ld, const char *section, const char *key)
{
	struct lcr_app_config *c = ld->c;
	size_t i = opt_index(section, key);
	char *value = field_of(c, &opts[i]), out[4096], id[16];
	size_t n = 0, id_len, size = opts[i].size;
	const char *s = value;

	LCR_ASSERT(opts[i].type == OPT_STRING && size <= sizeof(out));
	if (!c->self)
		return; /* a client has no data, nor EAL: keep the template */
	id_len = (size_t)snprintf(id, sizeof(id), "%u", c->self);
	while (*s) {
		if (strncmp(s, "{id}", 4) == 0) {
			if (n + id_len >= size)
				break;
			memcpy(out + n, id, id_len);
			n += id_len;
			s += 4;
		} else {
			if (n + 1 >= size)
				break;
			out[n++] = *s++;
		}
	}
	if (*s) {
		fail(ld, ld->set_line[i], "%s.%s: longer than %zu characters with {id} replaced",
		     section, key, size - 1);
		return;
	}
	out[n] = '\0';
	memcpy(value, out, n + 1);
}

/* The line an option was set at, as text for a sentence: "line 9" or "the default". */
static const char *where_set(const struct load *ld, const char *section, const char *key, char *out,
			     size_t len)
{
	uint32_t line = ld->set_line[opt_index(section, key)];

	if (line)
		snprintf(out, len, "line %u", line);
	else
		snprintf(out, len, "the default");
	return out;
}

/* [node] cores: one per lcore (lcore i runs on the i-th), into node.cores. */
static void load_cores(struct load *ld)
{
	struct lcr_app_config *c = ld->c;
	char err[200], at[32];
	int n = parse_cores(c->cores, c->node.cores, err, sizeof(err));

	LCR_ASSERT(n >= 0); /* check_cores() passed it */
	c->node.n_cores = (uint32_t)n;
	if (n == 0 || (uint32_t)n == c->node.lcores)
		return;
	fail(ld, ld->set_line[opt_index("node", "cores")],
	     "node.cores: %d core%s (%s) for %u lcore%s (%s): list one core per lcore", n,
	     n == 1 ? "" : "s", c->cores, c->node.lcores, c->node.lcores == 1 ? "" : "s",
	     where_set(ld, "node", "lcores", at, sizeof(at)));
}

/* Every node a [dpdk] list names (routes, neighbours) is in [nodes]. */
static void check_list_nodes(struct load *ld, const char *key, opt_check_fn check)
{
	const struct lcr_app_config *c = ld->c;
	size_t i = opt_index("dpdk", key);
	uint32_t ids[LCR_PEERS_MAX];
	char err[200], list[LCR_PEERS_MAX * 12];
	int n = parse_node_list(field_of(ld->c, &opts[i]), check, ids, err, sizeof(err));

	LCR_ASSERT(n >= 0); /* its check passed it */
	for (int k = 0; k < n; k++) {
		size_t len = 0;

		if (lcr_app_config_peer(c, ids[k]))
			continue;
		for (uint32_t p = 0; p < c->node.n_peers; p++)
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%u",
						p ? ", " : "", c->node.peers[p].id);
		fail(ld, ld->set_line[i], "dpdk.%s: node %u is not in [nodes] (nodes: %s)", key,
		     ids[k], list);
		return;
	}
}

/* The longest name a Unix socket has (sockaddr_un.sun_path, its terminator left out). */
#define UNIX_PATH_MAX 107

/*
 * [dpdk] against the rest: what transport = dpdk needs, the nodes the
 * lists name, memif sockets' names. The lists and the sockets are checked
 * whatever the transport, so that a file is right before it is switched.
 */
static void check_dpdk(struct load *ld)
{
	struct lcr_app_config *c = ld->c;
	const struct lcr_node_config *n = &c->node;
	size_t memif = opt_index("dpdk", "memif_dir");

	check_list_nodes(ld, "routes", check_port_name);
	check_list_nodes(ld, "neighbours", check_mac);
	if (ld->failed)
		return;
	if (c->routes[0] && c->memif_dir[0]) {
		fail(ld, ld->set_line[opt_index("dpdk", "routes")],
		     "dpdk.routes: memif_dir (line %u) routes every peer through its own memif "
		     "port; set one of them",
		     ld->set_line[memif]);
		return;
	}
	for (uint32_t a = 0; a < n->n_peers && c->memif_dir[0]; a++)
		for (uint32_t b = 0; b < n->n_peers; b++) {
			uint32_t lo = n->peers[a].id, hi = n->peers[b].id;
			int len = snprintf(NULL, 0, "%s/memif-%u-%u.sock", c->memif_dir, lo, hi);

			if (lo >= hi || len <= UNIX_PATH_MAX)
				continue;
			fail(ld, ld->set_line[memif],
			     "dpdk.memif_dir: the socket %s/memif-%u-%u.sock is longer than %d "
			     "characters, the most a Unix socket's name holds",
			     c->memif_dir, lo, hi, UNIX_PATH_MAX);
			return;
		}
	if (c->transport != LCR_APP_TRANSPORT_DPDK)
		return;
	if (!c->eal[0] && !c->memif_dir[0]) {
		fail(ld, ld->set_line[opt_index("node", "transport")],
		     "node.transport: dpdk needs [dpdk] eal (the EAL arguments, which name the "
		     "ports) or [dpdk] memif_dir (a memif port to every peer on this host); "
		     "neither is set");
		return;
	}
	for (uint32_t i = 0; i < n->n_peers; i++)
		if (ip_family(n->peers[i].host) != 4) {
			fail(ld, ld->node_line[i],
			     "nodes.%u: %s is not an IPv4 address, which transport = dpdk needs "
			     "(DPDK resolves no names)",
			     n->peers[i].id, n->peers[i].host);
			return;
		}
}

/* metrics_listen with the node id in it (a port past 65535, say). */
static void check_metrics_port(struct load *ld)
{
	const char *v = ld->c->metrics_listen;
	struct lcr_peer_addr a;
	char err[200];

	if (*v && parse_host_port(v, &a, err, sizeof(err)) < 0)
		fail(ld, ld->set_line[opt_index("node", "metrics_listen")],
		     "node.metrics_listen: %s (with {id} replaced by %u)", err, ld->c->self);
}

/*
 * --addr: the address of a node [nodes] lists must be the one there; another
 * node joins at it (appended to the peers, c->joining), on sockets.
 */
static void join_at(struct load *ld)
{
	struct lcr_app_config *c = ld->c;
	struct lcr_node_config *n = &c->node;
	const struct lcr_peer_addr *p = lcr_app_config_peer(c, c->self);
	struct lcr_peer_addr a;
	char err[200], mine[64], theirs[64];

	memset(&a, 0, sizeof(a));
	if (parse_host_port(c->addr, &a, err, sizeof(err)) < 0) {
		fail(ld, 0, "--addr %s: %s", c->addr, err);
		return;
	}
	if (p) {
		host_canonical(a.host, mine, sizeof(mine));
		host_canonical(p->host, theirs, sizeof(theirs));
		if (a.port != p->port || strcmp(mine, theirs) != 0)
			fail(ld, ld->node_line[p - n->peers],
			     "nodes.%u: --addr %s is not this node's address here (%s:%u): --addr "
			     "starts a node that is not in [nodes], or repeats its address",
			     c->self, c->addr, p->host, p->port);
		return;
	}
	if (c->transport == LCR_APP_TRANSPORT_DPDK) {
		fail(ld, ld->set_line[opt_index("node", "transport")],
		     "node.transport: dpdk routes only the nodes of [nodes]; node %u (--addr %s, "
		     "not "
		     "in [nodes]) runs on sockets",
		     c->self, c->addr);
		return;
	}
	if (n->n_peers == LCR_PEERS_MAX) {
		fail(ld, ld->nodes_line, "nodes: %d nodes already; no room for node %u (--addr)",
		     LCR_PEERS_MAX, c->self);
		return;
	}
	a.id = c->self;
	ld->node_line[n->n_peers] = 0;
	n->peers[n->n_peers++] = a;
	c->joining = true;
}

/*
 * [cluster] key_file and client_key_file: the keys, read now, so that a file
 * that is missing, open to others or not a key stops the load with its
 * line. A client (self 0) reads the client key only: `client_key` (its
 * --key-file) if given, else the file's.
 */
static void load_keys(struct load *ld, const char *client_key)
{
	struct lcr_app_config *c = ld->c;
	uint32_t kl = ld->set_line[opt_index("cluster", "key_file")];
	uint32_t cl = ld->set_line[opt_index("cluster", "client_key_file")];
	uint32_t al = ld->set_line[opt_index("cluster", "alg")];
	char why[400];

	if (c->self && c->key_file[0]) {
		if (lcr_auth_key_load(c->key_file, c->key, why, sizeof(why)) < 0) {
			fail(ld, kl, "cluster.key_file: %s", why);
			return;
		}
		c->has_key = true;
	}
	if (client_key) {
		if (lcr_auth_key_load(client_key, c->client_key, why, sizeof(why)) < 0) {
			/* Not the file's fault: say it as the option that gave it. */
			snprintf(ld->why, ld->why_len, "--key-file: %s", why);
			ld->failed = true;
			return;
		}
		snprintf(c->client_key_file, sizeof(c->client_key_file), "%s", client_key);
		c->has_client_key = true;
	} else if (c->client_key_file[0]) {
		if (lcr_auth_key_load(c->client_key_file, c->client_key, why, sizeof(why)) < 0) {
			fail(ld, cl, "cluster.client_key_file: %s", why);
			return;
		}
		c->has_client_key = true;
	}
	if (c->has_key && c->has_client_key && !memcmp(c->key, c->client_key, sizeof(c->key))) {
		fail(ld, cl,
		     "cluster.client_key_file: %s holds the same key as key_file (line %u): a "
		     "client holding it could forge the nodes' own datagrams; give the clients a "
		     "key of their own",
		     c->client_key_file, kl);
		return;
	}
	if ((c->has_key || c->has_client_key) && lcr_auth_usable(c->auth_alg, why, sizeof(why)) < 0)
		fail(ld, al ? al : LINE_DEFAULT, "cluster.alg: %s", why);
}

void lcr_app_config_wipe_keys(struct lcr_app_config *c)
{
	lcr_auth_wipe(c->key, sizeof(c->key));
	lcr_auth_wipe(c->client_key, sizeof(c->client_key));
}

static void check_loaded(struct load *ld, const char *client_key)
{
	struct lcr_app_config *c = ld->c;

	for (size_t i = 0; i < N_OPTS; i++)
		if ((opts[i].flags & OPT_REQUIRED) && !ld->set_line[i])
			fail(ld, 0, "%s.%s: required, but not set (add %s = ... under [%s])",
			     opts[i].section, opts[i].key, opts[i].key, opts[i].section);
	if (c->node.n_peers == 0)
		fail(ld, ld->nodes_line,
		     "nodes: no node listed; list every voter as <node id> = host:port");
	if (ld->failed)
		return;
	if (c->addr[0])
		join_at(ld);
	if (ld->failed)
		return;
	if (c->self && !lcr_app_config_peer(c, c->self)) {
		char ids[LCR_PEERS_MAX * 12];
		size_t n = 0;

		for (uint32_t i = 0; i < c->node.n_peers; i++)
			n += (size_t)snprintf(ids + n, sizeof(ids) - n, "%s%u", i ? ", " : "",
					      c->node.peers[i].id);
		fail(ld, ld->nodes_line, "nodes: node %u (--id) is not listed (nodes: %s)", c->self,
		     ids);
		return;
	}
	check_ports(ld);
	if (c->self)
		check_bind_family(ld);
	if (!ld->failed)
		check_raft(ld);
	if (!ld->failed)
		load_cores(ld);
	if (!ld->failed)
		check_dpdk(ld);
	if (!ld->failed)
		substitute_id(ld, "node", "data_dir");
	if (!ld->failed)
		substitute_id(ld, "dpdk", "eal");
	if (!ld->failed)
		substitute_id(ld, "node", "metrics_listen");
	if (!ld->failed && c->self)
		check_metrics_port(ld);
	if (!ld->failed)
		load_keys(ld, client_key);
	squeeze_blanks(c->routes);
	squeeze_blanks(c->neighbours);
	c->node.dpdk.enable = c->transport == LCR_APP_TRANSPORT_DPDK;
}

int lcr_app_config_add_peer(struct lcr_app_config *c, const char *text, char *why, size_t why_len)
{
	struct lcr_node_config *n = &c->node;
	struct lcr_peer_addr a;
	char err[200], mine[64], theirs[64];
	const char *eq = strchr(text, '=');
	char *end;

	memset(&a, 0, sizeof(a));
	unsigned long id = eq ? strtoul(text, &end, 10) : 0;
	if (!eq || end != eq || text[0] < '1' || text[0] > '9' || id > UINT32_MAX) {
		snprintf(why, why_len,
			 "--peer %.80s: expected ID=HOST:PORT, ID a node id 1..4294967295", text);
		return -EINVAL;
	}
	if (parse_host_port(eq + 1, &a, err, sizeof(err)) < 0) {
		snprintf(why, why_len, "--peer %.80s: %s", text, err);
		return -EINVAL;
	}
	a.id = (uint32_t)id;
	if (a.id == c->self) {
		snprintf(why, why_len,
			 "--peer %.80s: node %u is this node (--addr gives its own address)", text,
			 a.id);
		return -EINVAL;
	}
	const struct lcr_peer_addr *p = lcr_app_config_peer(c, a.id);
	if (p) {
		host_canonical(a.host, mine, sizeof(mine));
		host_canonical(p->host, theirs, sizeof(theirs));
		if (a.port == p->port && strcmp(mine, theirs) == 0)
			return 0;
		snprintf(why, why_len, "--peer %.80s: node %u is at %s:%u in the file", text, a.id,
			 p->host, p->port);
		return -EINVAL;
	}
	if (c->transport == LCR_APP_TRANSPORT_DPDK) {
		snprintf(why, why_len,
			 "--peer %.80s: node.transport dpdk routes only the nodes of [nodes]",
			 text);
		return -EINVAL;
	}
	if (n->n_peers == LCR_PEERS_MAX) {
		snprintf(why, why_len, "--peer %.80s: %d nodes known already", text, LCR_PEERS_MAX);
		return -EINVAL;
	}
	n->peers[n->n_peers++] = a;
	return 0;
}

int lcr_app_config_load(struct lcr_app_config *c, const char *path, uint32_t self, char *why,
			size_t why_len)
{
	return lcr_app_config_load_addr(c, path, self, NULL, why, why_len);
}

static int load_file(struct lcr_app_config *c, const char *path, uint32_t self, const char *addr,
		     const char *client_key, char *why, size_t why_len);

int lcr_app_config_load_addr(struct lcr_app_config *c, const char *path, uint32_t self,
			     const char *addr, char *why, size_t why_len)
{
	return load_file(c, path, self, addr, NULL, why, why_len);
}

int lcr_app_config_load_client(struct lcr_app_config *c, const char *path, const char *key_file,
			       char *why, size_t why_len)
{
	return load_file(c, path, 0, NULL, key_file, why, why_len);
}

static int load_file(struct lcr_app_config *c, const char *path, uint32_t self, const char *addr,
		     const char *client_key, char *why, size_t why_len)
{
	struct load ld;
	int rc;

	LCR_ASSERT(c && path && why && why_len > 0);
	lcr_app_config_default(c);
	c->self = self;
	c->node.id = self;
	if (addr && addr[0]) {
		if (!self || strlen(addr) >= sizeof(c->addr)) {
			snprintf(why, why_len, "--addr %.80s: %s", addr,
				 self ? "longer than a HOST:PORT may be" : "needs --id");
			return -EINVAL;
		}
		snprintf(c->addr, sizeof(c->addr), "%s", addr);
	}
	memset(&ld, 0, sizeof(ld));
	ld.append_opt = N_OPTS;
	ld.c = c;
	ld.path = path;
	ld.why = why;
	ld.why_len = why_len;
	why[0] = '\0';
	ld.f = fopen(path, "r");
	if (!ld.f) {
		rc = -errno;
		snprintf(why, why_len, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = ini_parse_stream(read_line, &ld, on_option, &ld);
	fclose(ld.f);
	if (ld.read_errno) {
		snprintf(why, why_len, "%s: %s", path, strerror(ld.read_errno));
		return -ld.read_errno;
	}
	if (rc > 0 && (!ld.failed || (uint32_t)rc < ld.err_line)) {
		ld.failed = false;
		fail(&ld, (uint32_t)rc,
		     "syntax error: expected [section], key = value or a comment");
	}
	if (!ld.failed)
		check_loaded(&ld, client_key);
	if (ld.failed)
		lcr_app_config_wipe_keys(c);
	return ld.failed ? -EINVAL : 0;
}

const struct lcr_peer_addr *lcr_app_config_peer(const struct lcr_app_config *c, uint32_t id)
{
	for (uint32_t i = 0; i < c->node.n_peers; i++)
		if (c->node.peers[i].id == id)
			return &c->node.peers[i];
	return NULL;
}

/* ---- help and docs ------------------------------------------------------------- */

static const char *type_name(const struct opt *o)
{
	switch (o->type) {
	case OPT_U32:
		return "u32";
	case OPT_U64:
		return "u64";
	case OPT_BOOL:
		return "bool";
	case OPT_STRING:
		return "string";
	case OPT_ENUM:
		return "enum";
	case OPT_MS:
		return "ms";
	case OPT_US:
		return "us";
	case OPT_MIB:
		return "MiB";
	case OPT_PERCENT:
		return "percent";
	case OPT_NODES:
		return "host:port";
	}
	return "?";
}

/* Bounds or choices, as text ("" when there are none worth saying). */
static const char *bounds_text(const struct opt *o, const char *sep, char *out, size_t len)
{
	out[0] = '\0';
	switch (o->type) {
	case OPT_ENUM:
		choices_list(o->choices, sep, out, len);
		break;
	case OPT_PERCENT:
		snprintf(out, len, "0..100");
		break;
	case OPT_NODES:
		snprintf(out, len, "1..%llu nodes", (unsigned long long)o->max);
		break;
	case OPT_U32:
	case OPT_U64:
	case OPT_MS:
	case OPT_US:
	case OPT_MIB:
		snprintf(out, len, "%llu..%llu", (unsigned long long)o->min,
			 (unsigned long long)o->max);
		break;
	default:
		break;
	}
	return out;
}

static const char *default_text(const struct lcr_app_config *d, const struct opt *o, char *out,
				size_t len)
{
	if (o->flags & OPT_REQUIRED)
		return "required";
	if (o->type == OPT_NODES)
		return "required";
	if (o->type == OPT_STRING && !*format_value(d, o, out, len))
		return "\"\"";
	return format_value(d, o, out, len);
}

/* Print `text` wrapped at 80 columns, each line indented by `indent` spaces. */
static void print_wrapped(FILE *f, const char *text, int indent)
{
	const int width = 80 - indent;

	while (*text) {
		int len = (int)strlen(text), cut = len;

		if (len > width) {
			for (cut = width; cut > 0 && text[cut] != ' '; cut--)
				;
			if (cut == 0)
				cut = width;
		}
		fprintf(f, "%*s%.*s\n", indent, "", cut, text);
		text += cut;
		while (*text == ' ')
			text++;
	}
}

void lcr_app_config_help(FILE *f)
{
	struct lcr_app_config d;
	char def[64], bounds[128], line[256];

	lcr_app_config_default(&d);
	fprintf(f, "Configuration file (INI; --config FILE). Options by section:\n");
	for (size_t s = 0; s < N_SECTIONS; s++) {
		fprintf(f, "\n[%s]\n", sections[s].name);
		print_wrapped(f, sections[s].help, 2);
		for (size_t i = 0; i < N_OPTS; i++) {
			const struct opt *o = &opts[i];

			if (strcmp(o->section, sections[s].name) != 0)
				continue;
			bounds_text(o, "|", bounds, sizeof(bounds));
			snprintf(line, sizeof(line), "  %-24s %-9s %s%s%s%s", o->key, type_name(o),
				 o->flags & OPT_REQUIRED || o->type == OPT_NODES ? "" : "default ",
				 default_text(&d, o, def, sizeof(def)), bounds[0] ? ", " : "",
				 bounds);
			fprintf(f, "%s\n", line);
			print_wrapped(f, o->help, 6);
		}
	}
}

/* The guide in front of the reference (docs/operations.md). */
static const char guide[] =
	"<!-- Generated by `lcraft-node --help-markdown` from the option table in\n"
	"     bench/config.c. Edit it there, then regenerate this file. -->\n"
	"# Operating lcraft-node\n"
	"\n"
	"## Three nodes on loopback\n"
	"\n"
	"`config/local-3.ini` describes a cluster of three nodes on 127.0.0.1. Start each\n"
	"node in its own terminal (or in the background); the `--id` picks the line of\n"
	"`[nodes]` that is this process:\n"
	"\n"
	"```sh\n"
	"build/lcraft-node --config config/local-3.ini --id 1\n"
	"build/lcraft-node --config config/local-3.ini --id 2\n"
	"build/lcraft-node --config config/local-3.ini --id 3\n"
	"```\n"
	"\n"
	"Once a leader is elected (a few hundred milliseconds), talk to the cluster with\n"
	"the client, which reads the same file to find the nodes:\n"
	"\n"
	"```sh\n"
	"build/lcraft-cli --config config/local-3.ini put k v\n"
	"build/lcraft-cli --config config/local-3.ini get k\n"
	"build/lcraft-cli --config config/local-3.ini stats    # metrics of every node, JSON\n"
	"build/lcraft-cli --config config/local-3.ini snapshot # group 1's snapshot, now\n"
	"```\n"
	"\n"
	"SIGTERM (`kill <pid>`, or Ctrl-C) shuts a node down cleanly: its lcores stop, its\n"
	"logs and sockets are closed, and it exits 0. A node killed outright (SIGKILL, a\n"
	"crash) loses nothing it acknowledged: at restart it recovers from its log, cutting\n"
	"a torn tail (`docs/storage-format.md`).\n"
	"\n"
	"lcraft-node's exit statuses: 0 stopped cleanly (SIGTERM, SIGINT); 1 an error\n"
	"(the log says which: a damaged file, a port in use, ...); 2 bad usage or\n"
	"config; 3 its data directory holds no state for a group in which the cluster\n"
	"says this node id held some (a wiped disk: \"Replace a node whose disk died\");\n"
	"4 its data directory is another node's or another cluster's, or its identity\n"
	"file is damaged (\"The data directory\").\n"
	"\n"
	"`config/veth-3.ini` is the same cluster across three network namespaces joined by\n"
	"a bridge; `sudo config/netns.sh up` creates them (`down` removes them, `status`\n"
	"shows them), and each node runs inside its namespace:\n"
	"`sudo ip netns exec lcr1 build/lcraft-node --config config/veth-3.ini --id 1`.\n"
	"The bridge has the address 10.77.0.254 in the root namespace, so the client\n"
	"runs there as it is: `build/lcraft-cli --config config/veth-3.ini put k v`.\n"
	"`LCR_NETNS_PREFIX` and `LCR_NETNS_SUBNET` (defaults `lcr` and `10.77.0`) make\n"
	"another set beside it, as the tests do (`config/netns.sh --help`).\n"
	"\n"
	"## On DPDK\n"
	"\n"
	"With `[node] transport = dpdk` (a build with DPDK: `meson -Ddpdk=enabled`) the\n"
	"nodes' datagrams go out of DPDK ports instead of kernel sockets, set up by the\n"
	"`[dpdk]` section; the client port stays a kernel socket, so lcraft-cli works\n"
	"unchanged. Every `[nodes]` host must then be an IPv4 address. Three files show\n"
	"the ways in; each says in its header how to run it:\n"
	"\n"
	"- `config/dpdk-memif-3.ini`: three nodes on this machine joined by memif ports\n"
	"  (shared memory), made from `memif_dir`; no hugepages, no root.\n"
	"- `config/dpdk-veth-3.ini`: the veth-3 cluster, each node on its namespace's\n"
	"  veth end through DPDK's af_packet driver (root, `config/netns.sh up`).\n"
	"- `config/dpdk-nic.ini`: a template for real NICs bound to vfio-pci, on\n"
	"  hugepages, each lcore pinned to its own core (`cores`) and busy polling.\n"
	"\n"
	"EAL arguments are longer than a line may be: `eal` goes on over a repeated\n"
	"`eal = ...` line or indented lines below it, joined by a space. `{id}` in `eal` is\n"
	"replaced by the node id, so one file can give each node its own interface\n"
	"(`iface=lcr{id}-ns`) or `--file-prefix`.\n"
	"\n"
	"DPDK nodes and socket nodes form one cluster (the same datagrams). On veths,\n"
	"turn transmit checksumming off on the bridge's end of each DPDK node's veth\n"
	"(`ethtool -K lcr1-br tx off`): a kernel socket leaves its UDP checksum for the\n"
	"\"hardware\" to finish, the veth and the bridge carry it unfinished, and\n"
	"af_packet hands the frame to DPDK as it is, so the DPDK node would drop every\n"
	"datagram of a socket node (`frame_drops.udp_checksum`). Real NICs finish the\n"
	"checksum themselves.\n"
	"\n"
	"DPDK's telemetry shows the node's metrics beside the ports' own: with\n"
	"`--file-prefix=lcraft-{id}` in `eal`, node 1's socket is\n"
	"`/var/run/dpdk/lcraft-1/dpdk_telemetry.v2` (as root), and DPDK's\n"
	"`dpdk-telemetry.py -f lcraft-1` (package `dpdk`) asks it: `/lcraft/node` (id,\n"
	"lcores, groups), `/lcraft/groups` (their ids), `/lcraft/group,<id>` (a group's\n"
	"role, indexes, replication, storage and latency) and `/lcraft/lcore,<n>` (an\n"
	"lcore's loop, network, UDP and DPDK counters), each the object of `lcraft-cli\n"
	"stats` flattened into one dictionary whose names are paths\n"
	"(`storage/write_latency/p50_us`; fractions as text: DPDK 22.11 carries no\n"
	"floating point). Nodes sharing a prefix share one socket: the first node has it.\n"
	"\n"
	"## Metrics for Prometheus\n"
	"\n"
	"With `metrics_listen = HOST:PORT` under `[node]` a node serves its metrics in\n"
	"Prometheus's text format on `GET /metrics` (404 for any other path, 405 for any\n"
	"other method), from an HTTP server on a thread of its own (libmicrohttpd), never\n"
	"on an lcore. `{id}` is replaced by the node id, so `metrics_listen =\n"
	"127.0.0.1:910{id}` gives nodes 1, 2 and 3 of one file ports 9101, 9102 and 9103.\n"
	"A scrape job:\n"
	"\n"
	"```yaml\n"
	"scrape_configs:\n"
	"  - job_name: lcraft\n"
	"    static_configs:\n"
	"      - targets: [\"127.0.0.1:9101\", \"127.0.0.1:9102\", \"127.0.0.1:9103\"]\n"
	"```\n"
	"\n"
	"Each scrape posts a task to every lcore (`lcr_node_post`), which renders its\n"
	"groups' numbers there (`lcr_node_metrics_prom`, docs/api.md): the numbers are\n"
	"read where they change, with no lock on the lcores. The scrape waits at most 1 s\n"
	"for them all and answers 503, naming the lcore, if one did not answer. Every\n"
	"sample carries `node`; a group's carry `group`, an lcore's `lcore`, the\n"
	"leader's per-follower ones `peer`:\n"
	"\n"
	"- `lcraft_role{role=...}` (1 for the current role, 0 for the others),\n"
	"  `lcraft_term`, `lcraft_leader_id`, `lcraft_last_index`,\n"
	"  `lcraft_flushed_index`, `lcraft_committed_index`, `lcraft_applied_index`,\n"
	"  `lcraft_snapshot_index`, `lcraft_purged_index`;\n"
	"- on the leader, `lcraft_follower_matched_index` and\n"
	"  `lcraft_follower_lag_entries` per follower;\n"
	"- counters: `lcraft_elections_total`, `lcraft_raft_messages_dropped_total{reason}`\n"
	"  (the core's), `lcraft_transport_dropped_total{reason}` and\n"
	"  `lcraft_transport_call_errors_total{kind}` (each lcore's network layer),\n"
	"  proposals, `lcraft_storage_written_bytes_total`, entries, batches, syncs,\n"
	"  segments created and purged, snapshots built, failed, sent, installed and\n"
	"  cancelled, `lcraft_purges_total`; the node's client port:\n"
	"  `lcraft_client_datagrams_total{direction}`, `lcraft_client_send_errors_total`,\n"
	"  `lcraft_client_dropped_total{reason}`, `lcraft_client_refused_total{reason}`;\n"
	"  authentication: `lcraft_auth_enabled{port}` (`raft`, `client`: 1 or 0) and\n"
	"  `lcraft_transport_auth_dropped_total{lcore,reason}` (`bad_mac`, `replayed`,\n"
	"  `old_boot` on the Raft port);\n"
	"- `lcraft_commit_latency_seconds` and `lcraft_log_write_latency_seconds`,\n"
	"  histograms since the group opened. The node keeps latencies in log-linear\n"
	"  buckets of 1/128 (`base/hist.h`); the page gives cumulative counts at bounds\n"
	"  near 1, 2.5 and 5 x 10^k us from 1 us to 10 s, each moved to the end of the\n"
	"  node's bucket it falls in (at most 0.8 % up: `le=\"0.000001007\"`), so every\n"
	"  count is exact. `histogram_quantile()` over a `rate()` of them gives recent\n"
	"  quantiles; `lcraft-cli stats` has the node's own since start.\n"
	"\n"
	"Everything is bounded: 8 connections at once (more wait in the kernel's\n"
	"backlog), 10 s of idleness closes one, a request's line and headers fit in\n"
	"16 KiB (else 431 or 413) and no request body is read; the page is built in a\n"
	"buffer sized at start from the lcores, groups and nodes, one scrape at a time.\n"
	"There is no TLS nor authentication: listen on loopback or a management network.\n"
	"\n"
	"## Authentication\n"
	"\n"
	"Without keys a node trusts every datagram that names a member and comes from its\n"
	"address, and every client request; it says so at start, loudly:\n"
	"`WARNING: nothing is authenticated: anyone who can send to the node's ports can\n"
	"speak for its peers (...)`. UDP does not prove a source address, so anyone who\n"
	"can reach the ports can vote, append entries or write to the store. Give the\n"
	"cluster two keys, one for the nodes and one for their clients:\n"
	"\n"
	"```sh\n"
	"umask 077\n"
	"head -c 32 /dev/urandom > /etc/lcraft/cluster.key   # or 64 hex digits, a newline\n"
	"head -c 32 /dev/urandom > /etc/lcraft/client.key\n"
	"```\n"
	"\n"
	"copy `cluster.key` to every node and `client.key` to every node and every\n"
	"client host (each file mode 600: a key file its group or others may read is\n"
	"refused), and name them in every file:\n"
	"\n"
	"```\n"
	"[cluster]\n"
	"id = 7\n"
	"key_file = /etc/lcraft/cluster.key\n"
	"client_key_file = /etc/lcraft/client.key\n"
	"```\n"
	"\n"
	"Every Raft datagram then carries a MAC (AES-256-GCM's GMAC; `alg =\n"
	"chacha20poly1305` on CPUs without AES-NI, the same on every node), checked\n"
	"before anything in it is used: a forged one is dropped as `bad_mac`, a replayed\n"
	"one (an old vote, an old stream, any datagram sent again) as `replayed`, one of\n"
	"an earlier start of its sender as `old_boot`, each counted (`dropped` in\n"
	"`lcraft-cli stats`, `lcraft_transport_auth_dropped_total`). The client port\n"
	"does the same with the client key, for every request, STATS included, and seals\n"
	"every answer for the client that asked; lcraft-cli and kvcheck read\n"
	"`client_key_file` from the same file, or take `--key-file FILE`. Clients get a\n"
	"key of their own because one holding the cluster key could forge the nodes'\n"
	"datagrams; the same key in both is refused. `stats` shows what each port uses\n"
	"(`auth`). The byte-level rules are in docs/wire-protocol.md (\"Authentication\",\n"
	"\"Client authentication\"), the cost in docs/benchmarks.md.\n"
	"\n"
	"Each start of a node has a boot, a number larger than at every start before:\n"
	"the node keeps it in `<data_dir>/boot` and raises it before it sends anything, so\n"
	"that its datagrams of an earlier start are refused and its nonces never repeat.\n"
	"A damaged boot file stops the node with a sentence; removing it takes the boot\n"
	"from the clock, which is safe unless the clock went back since the node last ran.\n"
	"\n"
	"A new key takes effect once every member restarted with it: until then, nodes\n"
	"with different keys (or one without) hear nothing of each other (`bad_mac`), so\n"
	"restart them all at once, or accept that writes stop while a majority runs the\n"
	"old key and the others the new one. Change the client key together with the\n"
	"clients.\n"
	"\n"
	"## The data directory\n"
	"\n"
	"Each node keeps its groups under `data_dir` (`{id}` is replaced by the node id):\n"
	"\n"
	"```\n"
	"<data_dir>/identity                  the cluster id and node id it belongs to (text)\n"
	"<data_dir>/boot                      this start's boot (24 bytes), only with a key\n"
	"<data_dir>/group-<g>/meta            the vote and commit hint (two slots)\n"
	"<data_dir>/group-<g>/seg-<n>.log     log segments (segment_mb each)\n"
	"<data_dir>/group-<g>/snap-<term>-<node>-<index>.snap\n"
	"                                     the newest snapshot\n"
	"<data_dir>/group-<g>/build.tmp       a snapshot being built (removed at open)\n"
	"<data_dir>/group-<g>/recv/           a snapshot being received from the leader,\n"
	"                                     or received and not yet installed (recv.tmp,\n"
	"                                     then its final name; removed at open)\n"
	"```\n"
	"\n"
	"The log keeps a few more files of its own in `group-<g>` (`held`, `held.tmp`,\n"
	"`free-<n>.seg`: `docs/storage-format.md`). Files of any other name there are\n"
	"neither read nor removed.\n"
	"\n"
	"How much: a snapshot is the state machine's whole state (the key-value store: 8\n"
	"bytes per key and its key and value bytes, plus 256 KiB of sessions) in a 4 KiB\n"
	"header, the data rounded up to 4 KiB and 4 bytes per MiB of checksums. While\n"
	"one is built, the previous one stays until the new one is durable: count twice\n"
	"the state. The log keeps what follows the newest snapshot, plus\n"
	"`max_in_snapshot_log_to_keep` entries before it, in whole segments: a segment\n"
	"goes once every entry in it is purged. With `snapshot_logs_since_last = 0` no\n"
	"snapshot is built but on request (LCR_EV_TRIGGER_SNAPSHOT), and the log grows\n"
	"until one is. A group opens from its newest snapshot and replays only the log\n"
	"after it; a damaged snapshot stops the open naming the file, its last index and,\n"
	"for damaged data, the byte where the damaged 1 MiB chunk starts; a log purged\n"
	"past it stops it naming both indexes. A log that ends before the newest\n"
	"snapshot's last entry (or holds another term there) is what a crash leaves\n"
	"between a snapshot received from the leader becoming durable and the log's\n"
	"reset after it: the open finishes that reset (the log restarts empty after the\n"
	"snapshot) and goes on from the snapshot.\n"
	"\n"
	"To build a snapshot now, on request:\n"
	"\n"
	"```sh\n"
	"build/lcraft-cli --config FILE [--group G] snapshot            # on the group's leader\n"
	"build/lcraft-cli --config FILE [--group G] --node N snapshot   # on node N, any role\n"
	"```\n"
	"\n"
	"It prints `OK index I term T`, the snapshot's last entry, once the build is\n"
	"done (or at once, naming the newest snapshot, when nothing was applied since);\n"
	"exit status 4 if the build failed (the node's log says why), 3 if it was not\n"
	"done within `--timeout` (default 5000 ms; the build goes on). The log before it\n"
	"is then purged as after any build, keeping `max_in_snapshot_log_to_keep`\n"
	"entries. `stats` shows `snapshots_built`, `snapshot_index` and `purged_index`\n"
	"per group. The request is the client protocol's SNAPSHOT (op 6,\n"
	"docs/wire-protocol.md); the node waits at most 10 s for a build before it\n"
	"answers RETRY, which lcraft-cli asks again until its timeout.\n"
	"\n"
	"A directory belongs to one node; a lock keeps a second process out, and the\n"
	"identity file, written at the node's first start, names the cluster (`[cluster]\n"
	"id`) and the node: started on a directory whose file names another node or\n"
	"cluster (a wrong `--id`, a `data_dir` without `{id}`), lcraft-node refuses, exit\n"
	"status 4. Never wipe one node's directory while the others keep theirs: Raft's\n"
	"safety rests on a node remembering its vote and the entries it acknowledged (a\n"
	"wiped node is refused when it comes back: \"Replace a node whose disk died\",\n"
	"below). The formats are in `docs/storage-format.md`.\n"
	"\n"
	"**`durability = none` is unsafe**: the node acknowledges entries that are only in\n"
	"the page cache, so a crash or power loss can lose committed writes and break Raft's\n"
	"guarantees. Use it to measure the cost of durability, never for data you keep.\n"
	"\n"
	"## Membership: adding, replacing and removing nodes\n"
	"\n"
	"A group's voters and learners are its membership. It starts as the config's:\n"
	"every node of `[nodes]`, or those `[cluster] voters` names (the others are\n"
	"spares that run and wait, empty). From then on it lives in the group's log and\n"
	"changes only through the leader, one change at a time: once a group changed\n"
	"it, `[nodes]` and `voters` no longer say who votes. lcraft-cli does the\n"
	"operator's tasks (openraft's cluster control; the client protocol's\n"
	"membership ops, `docs/wire-protocol.md`), on group 1 or `--group G`; each group\n"
	"has its own membership, so run them for every group:\n"
	"\n"
	"```sh\n"
	"build/lcraft-cli --config FILE members                      # JSON: voters, learners, "
	"addresses, lag\n"
	"build/lcraft-cli --config FILE add-learner 4 10.0.0.4:7101  # a learner; waits until it "
	"caught up\n"
	"build/lcraft-cli --config FILE change-membership 2,3,4      # these are the voters now\n"
	"build/lcraft-cli --config FILE remove-node 1                # out of the voters and the "
	"learners\n"
	"build/lcraft-cli --config FILE transfer-leader 3            # node 3 leads; waits until "
	"it does\n"
	"```\n"
	"\n"
	"Each reads the membership from the leader, sends the change with that\n"
	"membership's log id (refused, exit 9, if another change got in meanwhile),\n"
	"waits until it committed and prints the membership then. `members` prints the\n"
	"leader's view: each node's address, matched index and lag (`--node N members`:\n"
	"node N's own view, whatever its role). `add-learner` then waits until the\n"
	"learner is within `--lag N` entries of the leader (openraft's\n"
	"`replication_lag_threshold`, 5000), at most `--catchup-ms MS` (60000; exit 12\n"
	"if not: it stays a learner and goes on catching up); with `--no-wait` it returns\n"
	"once the node is a learner. `change-membership` keeps the learners it does not\n"
	"make voters; the voters it leaves out leave the group (`--retain`: they stay as\n"
	"learners). A new voter must be a learner first (exit 6 otherwise), so that it\n"
	"holds the log before it counts toward a quorum: add it, let it catch up, then\n"
	"promote it. Voters change through a joint configuration, where both the old\n"
	"and the new majority decide until the new one commits; a new voter that is\n"
	"down can block that, and the leader, no longer heard by a majority of the new\n"
	"configuration, then steps down until the node is back. Removing the leader is\n"
	"fine: it steps down once the change committed.\n"
	"\n"
	"Exit statuses of these commands: 0 done; 2 bad usage (an argument that is no\n"
	"node id, an address that is not HOST:PORT); 3 no answer within `--timeout`\n"
	"(15000 ms by default for these; a change may still complete: `members` shows\n"
	"it); 4 an error; 5 another membership change or a leadership transfer is under\n"
	"way; 6 a node that is not a member (or, for a new learner, has no address;\n"
	"for transfer-leader, is no voter); 7 an invalid target (an address other than\n"
	"the one the membership or the leader's config holds for that node, a node named\n"
	"twice); 8 the change would leave no voter; 9 the membership changed since it\n"
	"was read; 10 the leader's wait for the commit (10 s) or the transfer ran out:\n"
	"it may still happen; 11 the leadership went to another node than asked; 12 the\n"
	"learner did not catch up within `--catchup-ms`.\n"
	"\n"
	"### A node the file does not list: `--addr`\n"
	"\n"
	"`lcraft-node --config FILE --id 4 --addr 10.0.0.4:7101` starts node 4 although\n"
	"FILE's `[nodes]` does not list it. It binds at that address (lcore *i* at the\n"
	"port + *i*, its client port at the port + `client_port_offset`), knows FILE's\n"
	"nodes, and opens its groups with FILE's membership, which it is not in: it is\n"
	"no voter, so it never stands for election, and it waits, empty, until a leader\n"
	"adds it. `add-learner 4 10.0.0.4:7101` puts the address into the membership,\n"
	"and every member learns it from the log, so no other node's file changes (give\n"
	"a numeric address: the nodes do not resolve names when they learn one). The\n"
	"new node itself knows FILE's nodes only, until its log names the others: if\n"
	"a member FILE does not list may lead meanwhile, name it with `--peer\n"
	"ID=HOST:PORT` (repeatable; a node of `[nodes]` keeps its address there).\n"
	"Restarted with the same `--addr`, node 4 finds its memberships, addresses\n"
	"included, in its log. An `--id` that `[nodes]` lists takes no other address\n"
	"than the one there (the node refuses to start). Clients find such a node in the\n"
	"membership: lcraft-cli asks a node that names a leader it does not know for\n"
	"its MEMBERS; `--peer 4=10.0.0.4:7101` names one for `--node 4`.\n"
	"\n"
	"### Replace a node whose disk died\n"
	"\n"
	"Voters 1, 2 and 3; node 1's disk died. Do not bring node 1 back under its old id\n"
	"on an empty data directory. A node's vote and its log are what Raft counts on:\n"
	"node 1 voted in its terms and acknowledged entries that a quorum counted as\n"
	"committed. Wiped, it would come back with an empty vote and an empty log: it\n"
	"could vote a second time in a term it already voted in, so that two leaders\n"
	"are elected for one term, and count toward the quorum of entries it no longer\n"
	"holds, so that a committed entry can be lost. lcraft-node refuses to start on\n"
	"a vote file that was zeroed or emptied, and a data directory wiped whole,\n"
	"which looks like a new node's, it checks with the cluster: a node whose\n"
	"directory holds no state for a group asks the other nodes (the file's,\n"
	"`--peer`, and the members their answers name) over the client port, with the\n"
	"client key if the file names one, whether its id held state there. Each says\n"
	"so if its record of the nodes it has seen hold state lists the node (MEMBERS'\n"
	"`held_state`; each group keeps it durably in `group-N/held`,\n"
	"docs/storage-format.md: the leaders it followed, the nodes that granted it a\n"
	"vote, the followers that acknowledged its entries), if it is the leader and\n"
	"its matched index for the node is above 0 (only the node's acknowledgment\n"
	"that it holds entries durably sets it), if it names the node as its leader (a\n"
	"leader saved its vote), or if its membership is an entry the node wrote as\n"
	"leader. Then the node exits with status 3 and a message naming what was said:\n"
	"\n"
	"```\n"
	"lcraft-node 1: refusing to start: /var/lib/lcraft/node-1 holds no log and no vote\n"
	"for group 1, but node 2 (follower in term 5) recorded that node 1 held state in\n"
	"group 1 (MEMBERS: held_state lists 1: it granted a vote, acknowledged entries, led\n"
	"or had state of its own there). Node 1 held state in this cluster that is gone\n"
	"(a wiped or new disk): [...] Replace it under a new node id [...]\n"
	"```\n"
	"\n"
	"A node starting for the first time, however late, has acknowledged nothing and\n"
	"led nothing: nobody recorded it, the leader's matched index for it is 0, and it\n"
	"starts (its log says what it was told). It starts only once a majority of the\n"
	"group's voters (those of the newest membership an answer names, else the\n"
	"file's; itself counted when it is one) answered without evidence, and the\n"
	"leader their answers name (in the newest term) answered as the leader: it\n"
	"alone holds its followers' progress and the record of who acknowledged it.\n"
	"Until then it keeps asking, every 100 ms, with no time bound, and says every\n"
	"`--rejoin-check-ms` (1000 ms) on stderr how many answered and whom it still\n"
	"waits for. A node that is checking itself answers MEMBERS with `\"checking\":\n"
	"true` and an empty `held_state`, so the nodes of a new cluster, started\n"
	"together, hear from each other and start at once (a few milliseconds).\n"
	"\n"
	"What is covered now: a node wiped while it led (its followers recorded it), a\n"
	"node wiped after a leader change (the leader it acknowledged, or the\n"
	"candidates it voted for, recorded it; the record survives their restarts), a\n"
	"node that granted a vote and never acknowledged an entry (the candidate\n"
	"recorded it). What is still not:\n"
	"\n"
	"- a node whose every recorder is gone or silent while a majority of voters\n"
	"  answers: the records are on the nodes that saw its state (the leaders it\n"
	"  followed, the candidates it voted for, and, if it led, its followers), not\n"
	"  on every node. A follower wiped while the only leader it ever acknowledged\n"
	"  is down passes the check if the other voters answer;\n"
	"- a node wiped together with every node that recorded it, or two nodes of\n"
	"  three wiped at once: empty nodes answer \"checking\", which counts toward the\n"
	"  majority as a new cluster's nodes must;\n"
	"- a recorder whose own `held` file was removed (a damaged one is refused,\n"
	"  naming it; removed, that node no longer vouches for anyone);\n"
	"- more than 64 ids in one group's lifetime: the 65th and later are not\n"
	"  recorded (said once on stderr).\n"
	"\n"
	"So follow the steps below whatever the check says. `--force-rejoin` skips the\n"
	"question; it is dangerous, for the reasons above. A wiped node is a new node, under a new "
	"id:\n"
	"\n"
	"1. start a fresh node, with an empty data directory, under an id the cluster\n"
	"   never used (under node 1's it is refused, exit 3, where the cluster can tell):\n"
	"   `lcraft-node --config FILE --id 4 --addr 10.0.0.4:7101` (or list\n"
	"   it in `[nodes]` of every file, outside `voters`). It knows FILE's nodes and\n"
	"   drops what any other node sends (`sender_address` under `dropped` in its\n"
	"   metrics) until its log names that node: give it every member FILE does not\n"
	"   list (`lcraft-cli members` shows them) with `--peer ID=HOST:PORT`, or a\n"
	"   leader it does not know cannot reach it and step 2 runs out (exit 12);\n"
	"2. `lcraft-cli --config FILE add-learner 4 10.0.0.4:7101`: it returns once\n"
	"   node 4 caught up (from the log, or from a snapshot);\n"
	"3. `lcraft-cli --config FILE change-membership 2,3,4`: node 4 takes node 1's\n"
	"   place and node 1 leaves;\n"
	"4. `lcraft-cli --config FILE members` shows voters 2, 3, 4, each lag near 0.\n"
	"\n"
	"Until step 3 has committed, two of the three voters are up: one more failure\n"
	"stops the writes (never the safety). Add the new node before removing the dead\n"
	"one, not the other way round, and run steps 2 to 4 for every group\n"
	"(`--group G`). Node 1's line may stay in the files: it is no member any more.\n"
	"Clients (lcraft-cli, kvcheck) start from FILE's nodes: once none of them is a\n"
	"member, list the members in `[nodes]` or give them with `--peer`.\n"
	"\n"
	"## The configuration file\n"
	"\n"
	"An INI file: `[section]` headers, then one `key = value` per line. Comments start\n"
	"with `#` or `;` at the beginning of a line, or with ` ;` after a value. Every key\n"
	"must be known: a misspelt key, a value out of range or a bad relationship\n"
	"between options stops the node with the file, line and key at fault, e.g.\n"
	"`local-3.ini:7: raft.heartbeat_ms: unknown option (did you mean\n"
	"raft.heartbeat_interval_ms?)`. Lines are limited to 197 characters; `[dpdk]`'s\n"
	"`eal`, `routes` and `neighbours` go on over further lines (a repeated key, or an\n"
	"indented line that sets no option). Every option but `cluster.id` and the nodes\n"
	"has a default.\n"
	"\n"
	"`[nodes]` lists the nodes of the cluster, this node included, as `<node id> =\n"
	"host:port`: node ids are 1..4294967295, the host is an IPv4 address, a name, or\n"
	"an IPv6 address in brackets (`[::1]:7001`). All nodes use the same file; `--id`\n"
	"says which node a process is (a node that is not listed runs with `--addr`,\n"
	"above). Every node listed is a voter at the start, unless `[cluster] voters`\n"
	"names some: the others are then spares, to be added later.\n"
	"\n"
	"**Ports.** A node runs `lcores` threads; lcore *i* listens on the node's port +\n"
	"*i* (UDP), so leave room between the ports of nodes that share a host. The node's\n"
	"client port (lcraft-cli) is its port + `client_port_offset`. With the example\n"
	"below and the defaults, node 1 uses 7101 (Raft) and 8101 (clients); with\n"
	"`lcores = 4`, 7101..7104 and 8101.\n"
	"\n"
	"Example (`config/local-3.ini`):\n"
	"\n"
	"```ini\n"
	"[cluster]\n"
	"id = 7\n"
	"\n"
	"[nodes]\n"
	"1 = 127.0.0.1:7101\n"
	"2 = 127.0.0.1:7201\n"
	"3 = 127.0.0.1:7301\n"
	"\n"
	"[node]\n"
	"data_dir = /var/tmp/lcraft/local-3/node-{id}\n"
	"lcores = 1\n"
	"\n"
	"[raft]\n"
	"election_timeout_min_ms = 150\n"
	"election_timeout_max_ms = 300\n"
	"heartbeat_interval_ms = 50\n"
	"\n"
	"[storage]\n"
	"durability = fsync\n"
	"```\n"
	"\n"
	"## Options\n"
	"\n"
	"`lcraft-node --help` prints the same list.\n";

/* Text in a Markdown table cell; outside a code span, <...> must not look like HTML. */
static void md_cell(FILE *f, const char *s, bool code)
{
	if (code)
		fputc('`', f);
	for (; *s; s++) {
		if (*s == '|')
			fputs("\\|", f);
		else if (*s == '<' && !code)
			fputs("&lt;", f);
		else
			fputc(*s, f);
	}
	if (code)
		fputc('`', f);
}

void lcr_app_config_markdown(FILE *f)
{
	struct lcr_app_config d;
	char def[64], bounds[128];

	lcr_app_config_default(&d);
	fputs(guide, f);
	for (size_t s = 0; s < N_SECTIONS; s++) {
		fprintf(f, "\n### [%s]\n\n%s\n\n", sections[s].name, sections[s].help);
		fprintf(f, "| Option | Type | Default | Range or choices | Description |\n");
		fprintf(f, "|---|---|---|---|---|\n");
		for (size_t i = 0; i < N_OPTS; i++) {
			const struct opt *o = &opts[i];

			if (strcmp(o->section, sections[s].name) != 0)
				continue;
			fputs("| ", f);
			md_cell(f, o->key, true);
			fprintf(f, " | %s | ", type_name(o));
			md_cell(f, default_text(&d, o, def, sizeof(def)),
				!(o->flags & OPT_REQUIRED) && o->type != OPT_NODES);
			fputs(" | ", f);
			md_cell(f, bounds_text(o, ", ", bounds, sizeof(bounds)), false);
			fputs(" | ", f);
			md_cell(f, o->help, false);
			fputs(" |\n", f);
		}
	}
}
