#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""One DPDK node and two socket nodes form one cluster, through kills and malformed frames.

  dpdk_mixed_test.py --node BIN --cli BIN --kvcheck BIN --netns-sh PATH --dpdk yes|no

Three lcraft-node processes in network namespaces joined by veth pairs and a
bridge (config/netns.sh with its own prefix and subnet): node 1 puts its Raft
datagrams on DPDK (af_packet on its veth end: [node] transport = dpdk, a config
file of its own), nodes 2 and 3 on kernel UDP sockets. The frames must be byte
for byte what the sockets send and take, or there is no cluster.

mixed (kvcheck throughout, linearizable): node 1 is made the leader without
luck: when a socket node leads, the other socket node is killed, the leader
goes on committing without it, then the leader is killed as the stale node
restarts; Raft's election restriction leaves node 1 the only node that can
win. The socket followers must catch up with node 1's commit index (DPDK ->
sockets). Then node 1 is killed (SIGKILL): the socket nodes elect within two
election timeouts, and node 1, restarted, catches up as a follower of a socket leader
(sockets -> DPDK). Then the leader, a socket node, is killed and restarted the
same way.

frames (kvcheck throughout, a socket node leading: node 1 is killed once more
if it leads, since its kernel's answers to clients go out on the veth, where
af_packet sees them): from the bridge's end of node 1's veth, an AF_PACKET
socket sends 10 of each kind of malformed frame frame.c drops (IPv6 and
VLAN-tagged Ethernet, IPv4 headers cut short or too short or of version 6, a
total length past the frame, a bad header checksum, ICMP and another protocol,
another IPv4 address, UDP lengths that disagree, a bad UDP checksum, ARP with
bad sizes or opcode or cut short). Each frame_drops counter of node 1's "dpdk"
metrics must rise by exactly what was sent of its kind, and node 1 must go on
committing. Fragments never reach DPDK on af_packet (the PMD's sockets have the
kernel reassemble them first): lone fragments must count nowhere, and a
datagram with a bad UDP checksum sent in two fragments counts as udp_checksum.
Then SIGTERM stops every node cleanly.

The link is prepared so that the counts are exact and the cluster forms:
  - tx checksumming off on the bridge's end of node 1's veth: a kernel socket
    on a veth leaves the UDP checksum to the "hardware" (CHECKSUM_PARTIAL),
    and the veth and the bridge carry it unfinished to af_packet, which DPDK
    22.11's PMD hands up as it is: node 1 dropped every datagram of the socket
    nodes as udp_checksum. With tx checksumming off on that port, the kernel
    finishes the checksum when it forwards a frame to node 1.
  - in node 1's namespace the kernel drops what comes for the Raft port and
    sends no ICMP (iptables): af_packet also sees the frames the kernel sends
    on the veth, and its port unreachable messages would count as not_udp.
  - IPv6 off on every veth end and the bridge: router solicitations and MLD
    reports would count as not_ip.
  - node 1's metrics are asked for from inside its namespace (over lo): a
    reply to the root namespace would go out on the veth, where af_packet sees
    it (a stats reply in fragments, reassembled for af_packet past its
    2,048-byte frames, counted as ip_length).

Exit status: 0 passed, 1 failed (the reason on the last line), 77 skipped (not
root, no network namespaces or iptables, or lcraft-node built without DPDK).
LCR_TEST_DPDK_NETNS_PREFIX and LCR_TEST_DPDK_NETNS_SUBNET (defaults lcrd and
10.79.0) choose the namespaces.
"""
import argparse
import array
import fcntl
import json
import os
import random
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_test import (FAILOVER_BOUND_MS, Cluster, Fail,  # noqa: E402
                          Skip, Workload, netns_up, run, run_main, say)

DPDK_NODE = 1
RAFT_PORT = 7101
REPEAT = 10  # frames of each malformed kind
RESTART_MS = 300  # a node's start-up, where a failover needs its vote
# frame.c's drop reasons (lcr_frame_drop_name), all checked for exact counts.
FRAME_DROPS = ["frame_short", "not_ip", "ip_header", "ip_length", "ip_checksum", "ip_fragment",
               "not_udp", "not_our_ip", "udp_length", "udp_checksum", "arp_malformed"]


# ---- frames ------------------------------------------------------------------------------

def inet_sum(data):
    """RFC 1071: the one's complement of the one's complement sum."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def mac_bytes(text):
    return bytes(int(x, 16) for x in text.split(":"))


class Frames:
    """Frames to node 1's MAC and IPv4 address from a host that is no member."""

    def __init__(self, dst_mac, dst_ip, src_ip):
        self.dst_mac = mac_bytes(dst_mac)
        self.src_mac = bytes([0x02, 0, 0, 0, 0, 0xc8])  # locally administered
        self.dst_ip, self.src_ip = socket.inet_aton(dst_ip), socket.inet_aton(src_ip)

    def eth(self, ethertype, payload):
        return self.dst_mac + self.src_mac + struct.pack("!H", ethertype) + payload

    def ip(self, proto, payload, dst=None, ihl=5, total=None, flags_frag=0x4000, bad_sum=False,
           ip_id=None):
        """An IPv4 header saying ihl (words; options zero past 5, 20 bytes below) and
        total, then payload; the header checksum good unless bad_sum."""
        size = max(ihl, 5) * 4
        hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0,
                          total if total is not None else size + len(payload),
                          random.randrange(65536) if ip_id is None else ip_id, flags_frag, 64,
                          proto, 0, self.src_ip,
                          dst or self.dst_ip) + bytes(size - 20)
        c = inet_sum(hdr) ^ (0x5a5a if bad_sum else 0)
        return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload

    def udp(self, payload, dst=None, length=None, bad_sum=False):
        """A UDP header and payload to the Raft port, the checksum over the pseudo-header."""
        n = 8 + len(payload)
        hdr = struct.pack("!HHHH", 40000, RAFT_PORT, length if length is not None else n, 0)
        pseudo = (self.src_ip + (dst or self.dst_ip) + struct.pack("!BBH", 0, 17, n))
        c = inet_sum(pseudo + hdr + payload) or 0xffff  # 0 would mean none
        if bad_sum:
            c = (c ^ 0x5a5a) or 0x1234
        return hdr[:6] + struct.pack("!H", c) + payload

    def ipv4_udp(self, payload=b"lcraft-test-junk", **ip_kw):
        return self.eth(0x0800, self.ip(17, self.udp(payload, dst=ip_kw.get("dst")), **ip_kw))

    def arp(self, hlen=6, plen=4, op=1, cut=0):
        a = struct.pack("!HHBBH", 1, 0x0800, hlen, plen, op) + self.src_mac + self.src_ip + \
            b"\0" * 6 + self.dst_ip
        return self.eth(0x0806, a[:len(a) - cut] if cut else a)

    def fragments(self, bad_udp_sum):
        """A UDP datagram in two IPv4 fragments (16 bytes, then the rest), a fresh IP id."""
        ip_id = random.randrange(65536)
        dgram = self.udp(b"lcraft-test-junk", bad_sum=bad_udp_sum)
        return [self.eth(0x0800, self.ip(17, dgram[:16], ip_id=ip_id, flags_frag=0x2000)),
                self.eth(0x0800, self.ip(17, dgram[16:], ip_id=ip_id, flags_frag=16 // 8))]

    def malformed(self):
        """[(the drop reason node 1 counts, what, [frames] or a function making them anew)]:
        every kind frame.c drops.

        Fragments never reach DPDK as such: the af_packet PMD (22.11) joins its sockets to
        a PACKET_FANOUT_HASH group with PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles
        IPv4 fragments before the PMD's ring. A lone fragment is held there (and dropped
        after ipfrag_time) and counts nowhere (None); a datagram in two fragments arrives
        whole, so one with a bad UDP checksum counts as udp_checksum. frame.c's ip_fragment
        is for ports that hand fragments up (NICs, memif); test_frame covers it."""
        good_ip = self.ip(17, self.udp(b"lcraft-test-junk"))
        icmp = struct.pack("!BBHHH", 0, 0, 0, 7, 1) + b"lcraft"  # an echo reply, unasked
        icmp = icmp[:2] + struct.pack("!H", inet_sum(icmp)) + icmp[4:]
        ipv6 = (struct.pack("!IHBB", 6 << 28, 8 + 16, 17, 64) + b"\xfd" + b"\0" * 14 + b"\1" +
                b"\xfd" + b"\0" * 14 + b"\2" + self.udp(b"lcraft-test-junk"))
        other = socket.inet_aton(".".join(socket.inet_ntoa(self.dst_ip).split(".")[:3] + ["77"]))
        junk = b"lcraft-test-junk"
        return [
            ("not_ip", "IPv6 (ethertype 0x86dd)", [self.eth(0x86dd, ipv6)]),
            ("not_ip", "a VLAN tag (0x8100) before IPv4",
             [self.eth(0x8100, struct.pack("!HH", 5, 0x0800) + good_ip)]),
            ("ip_header", "an IPv4 header cut at 19 bytes", [self.eth(0x0800, good_ip[:19])]),
            ("ip_header", "header length 16 bytes (ihl 4)", [self.ipv4_udp(ihl=4)]),
            ("ip_header", "IP version 6 in an IPv4 frame",
             [self.eth(0x0800, bytes([0x65]) + good_ip[1:])]),
            ("ip_length", "total length 1000 in a 44-byte packet", [self.ipv4_udp(total=1000)]),
            ("ip_checksum", "a bad header checksum", [self.ipv4_udp(bad_sum=True)]),
            (None, "a lone first fragment (more fragments)", [self.ipv4_udp(flags_frag=0x2000)]),
            (None, "a lone later fragment (offset 1480)", [self.ipv4_udp(flags_frag=185)]),
            ("udp_checksum", "a bad UDP checksum in two fragments",
             lambda: self.fragments(True)),
            ("not_udp", "ICMP (an echo reply)", [self.eth(0x0800, self.ip(1, icmp))]),
            ("not_udp", "IP protocol 253", [self.eth(0x0800, self.ip(253, junk))]),
            ("not_our_ip", "UDP to another address",
             [self.eth(0x0800, self.ip(17, self.udp(junk, dst=other), dst=other))]),
            ("udp_length", "UDP length past the IP packet",
             [self.eth(0x0800, self.ip(17, self.udp(junk, length=8 + 20)))]),
            ("udp_length", "UDP length short of the IP packet",
             [self.eth(0x0800, self.ip(17, self.udp(junk, length=8 + 8)))]),
            ("udp_checksum", "a bad UDP checksum",
             [self.eth(0x0800, self.ip(17, self.udp(junk, bad_sum=True)))]),
            ("arp_malformed", "ARP with 8-byte hardware addresses", [self.arp(hlen=8)]),
            ("arp_malformed", "ARP with 16-byte protocol addresses", [self.arp(plen=16)]),
            ("arp_malformed", "ARP opcode 3", [self.arp(op=3)]),
            ("arp_malformed", "ARP cut at 38 bytes", [self.arp(cut=4)]),
        ]


# ---- the link ----------------------------------------------------------------------------

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM = 0x16, 0x17


def ethtool_value(dev, cmd, value=0):
    """The ethtool ioctl of a struct ethtool_value on dev (in this namespace): its value."""
    buf = array.array("I", [cmd, value])
    ifr = struct.pack("16sP", dev.encode(), buf.buffer_info()[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, SIOCETHTOOL, ifr)
    return buf[1]


def prepare_links(net, ids, dp):
    """See the top of the file: why each of these."""
    for i in ids:
        run(["ip", "netns", "exec", net.ns(i), "sysctl", "-qw",
             f"net.ipv6.conf.{net.ns(i)}-ns.disable_ipv6=1"], check=False)
        run(["sysctl", "-qw", f"net.ipv6.conf.{net.ns(i)}-br.disable_ipv6=1"], check=False)
    run(["sysctl", "-qw", f"net.ipv6.conf.{net.bridge}.disable_ipv6=1"], check=False)
    port = f"{net.ns(dp)}-br"
    try:
        ethtool_value(port, ETHTOOL_STXCSUM, 0)
        on = ethtool_value(port, ETHTOOL_GTXCSUM)
    except OSError as e:
        raise Fail(f"{port}: cannot turn tx checksumming off (ethtool ioctl): {e}") from e
    if on:
        raise Fail(f"{port}: tx checksumming is still on")
    net.iptables_atomic(dp, [["INPUT", "-p", "udp", "--dport", str(RAFT_PORT), "-j", "DROP"],
                             ["OUTPUT", "-p", "icmp", "-j", "DROP"]])
    say(f"{port}: tx checksumming off; {net.ns(dp)}: the kernel drops UDP to {RAFT_PORT} and "
        f"sends no ICMP; IPv6 off on the veths and the bridge")


def dpdk_lcore(cl, net, i):
    """Node i's lcore 0 metrics, asked from inside its namespace (see the top)."""
    p = run(["ip", "netns", "exec", net.ns(i), cl.cli_bin, "--config", cl.config, "--node",
             str(i), "--timeout", "1000", "stats"], timeout=15)
    lc = json.loads(p.stdout.splitlines()[0])["lcraft"]["lcores"][0]
    if "dpdk" not in lc:
        raise Fail(f"node {i}: its metrics have no \"dpdk\" object: is it on DPDK? {lc}")
    return lc


# ---- the scenarios -----------------------------------------------------------------------

def force_dpdk_leader(cl, dp, label):
    """Make node dp the leader when a socket node x leads: kill the other socket node y,
    let x commit past y's log, kill x as y restarts. y's log is then older than dp's, so
    dp refuses it the vote and only dp can win. Returns the failover ms."""
    x, term, _ = cl.wait_leader(cl.ids, 5, what="the leader before forcing")
    y = next(i for i in cl.ids if i not in (x, dp))
    y_last = cl.status(y)["last"]
    cl.kill9(y)
    t_y = time.monotonic()
    while True:
        st = cl.status(x)
        if st and st["committed"] > y_last + 20:
            break
        if time.monotonic() - t_y > 5:
            raise Fail(f"{label}: leader {x} committed nothing past {y_last} with node {y} "
                       f"down ({st})")
        time.sleep(0.02)
    say(f"{label}: killed node {y} (last index {y_last}); leader {x} committed up to "
        f"{st['committed']} without it")
    t0 = time.monotonic()
    cl.kill9(x)
    cl.start(y)
    new, new_term, seen = cl.wait_leader([dp, y], 5, min_term=term,
                                         what=f"a new leader after killing node {x}")
    ms = (seen - t0) * 1000
    say(f"{label}: killed leader {x} (term {term}) and restarted node {y}; nodes {[dp, y]} "
        f"agree on leader {new} (term {new_term}) after {ms:.0f} ms")
    if new != dp:
        raise Fail(f"{label}: node {new}, whose log was older than node {dp}'s, won")
    # Node 1 needs y's vote, so y must be running again: its start-up is allowed for.
    if ms > FAILOVER_BOUND_MS + RESTART_MS:
        raise Fail(f"{label}: failover took {ms:.0f} ms, more than "
                   f"{FAILOVER_BOUND_MS + RESTART_MS} ms")
    cl.wait_caught_up(y, dp, t0, label, "restarted with a stale log")
    cl.restart_and_catch_up(x, dp, label)
    return ms


def followers_catch_up(cl, lead, label):
    t0 = time.monotonic()
    for i in cl.ids:
        if i != lead:
            cl.wait_caught_up(i, lead, t0, label, f"a follower of node {lead}")


def inject(net, dp, kinds):
    """Send REPEAT of each kind from the bridge's end of node dp's veth (a kind of two
    fragments anew each time, with a fresh IP id): reason -> count."""
    port = f"{net.ns(dp)}-br"
    sent = {}
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((port, 0))
        for _ in range(REPEAT):
            for reason, _what, frames in kinds:
                for f in frames() if callable(frames) else frames:
                    if s.send(f) != len(f):
                        raise Fail(f"{port}: a short send of {len(f)} bytes")
                if reason:
                    sent[reason] = sent.get(reason, 0) + 1
            time.sleep(0.005)  # af_packet's ring holds 512 frames; let the node drain it
    return sent


def test(args, tmp, cleanups):
    if args.dpdk != "yes":
        raise Skip("skipped: lcraft-node was built without DPDK (install libdpdk-dev, "
                   "meson setup again)")
    prefix = os.environ.get("LCR_TEST_DPDK_NETNS_PREFIX", "lcrd")
    subnet = os.environ.get("LCR_TEST_DPDK_NETNS_SUBNET", "10.79.0")
    net = netns_up(args, cleanups, prefix, subnet, f"lcraft-dpdk-mixed-{prefix}.lock")
    ids, dp = (1, 2, 3), DPDK_NODE
    prepare_links(net, ids, dp)
    cl = Cluster(args, tmp, {i: (f"{subnet}.{i}", RAFT_PORT) for i in ids},
                 netns={i: net.ns(i) for i in ids})
    cleanups.append(cl.cleanup)
    cl.raft_extra = ["enable_pre_vote = true"]  # as the netns test
    cl.dpdk_nodes[dp] = ["eal = -l 0 --no-huge -m 256 --no-pci --no-shconf --log-level=3",
                         f"\t--vdev=net_af_packet0,iface={net.ns(dp)}-ns"]
    cl.write_config()
    say(f"cluster {cl.cluster_id}: node {dp} on DPDK (af_packet on {net.ns(dp)}-ns), the "
        f"others on sockets; {subnet}.1..3:{RAFT_PORT} in namespaces {prefix}1..3; files in {tmp}")
    t0 = time.monotonic()
    cl.start_all()
    lead, term, seen = cl.wait_leader(cl.ids, 10)
    say(f"leader {lead} (term {term}) elected {(seen - t0) * 1000:.0f} ms after the start")

    # 1. and 2. Node 1 leads, then follows; kills of node 1 and of a socket node.
    wl = Workload(args, cl, tmp, "mixed", seconds=12)
    cleanups.append(wl.cleanup)
    time.sleep(1)
    times = []
    if lead != dp:
        times.append(("forced", force_dpdk_leader(cl, dp, "force"), None))
    lead, term, _ = cl.wait_leader(cl.ids, 5, what=f"node {dp} as the leader")
    if lead != dp:
        raise Fail(f"node {lead} leads, not node {dp}")
    followers_catch_up(cl, dp, "dpdk leads")
    f_ms, c_ms = cl.kill_leader_and_restart("dpdk killed")
    times.append(("dpdk", f_ms, c_ms))
    lead, term, _ = cl.wait_leader(cl.ids, 5, what="the leader after node 1's restart")
    if lead == dp:
        raise Fail(f"node {dp} leads again right after its restart")
    followers_catch_up(cl, lead, "dpdk follows")
    time.sleep(0.5)
    f_ms, c_ms = cl.kill_leader_and_restart("socket killed")
    times.append(("socket", f_ms, c_ms))
    lead, term, _ = cl.wait_leader(cl.ids, 5, what="the leader before the frames")
    if lead == dp:
        # The frames must meet a socket leader: node 1's kernel answers clients on the
        # veth, where af_packet sees the replies go out (counted as not_our_ip).
        time.sleep(0.5)
        f_ms, c_ms = cl.kill_leader_and_restart("dpdk killed again")
        times.append(("dpdk again", f_ms, c_ms))
    if not wl.running():
        say("note: the workload ended before the scenario did")
    say("failover ms / catch-up ms: " + "; ".join(
        f"{k} {f:.0f} / "
        f"{'-' if c is None else f'{c:.0f}'}" for k, f, c in times))
    wl.finish()

    # 3. Malformed frames at node 1's port, under the workload.
    mac = json.loads(run(["ip", "-n", net.ns(dp), "-j", "link", "show", "dev",
                          f"{net.ns(dp)}-ns"]).stdout)[0]["address"]
    kinds = Frames(mac, f"{subnet}.{dp}", f"{subnet}.200").malformed()
    wl = Workload(args, cl, tmp, "frames", seconds=5)
    cleanups.append(wl.cleanup)
    time.sleep(1)
    before = dpdk_lcore(cl, net, dp)
    sent = inject(net, dp, kinds)
    time.sleep(0.5)
    after = dpdk_lcore(cl, net, dp)
    d0, d1 = before["dpdk"]["frame_drops"], after["dpdk"]["frame_drops"]
    bad = []
    for r in FRAME_DROPS:
        got = d1.get(r, 0) - d0.get(r, 0)
        want = sent.get(r, 0)
        note = " (lone fragments are held by the kernel)" if r == "ip_fragment" else ""
        say(f"frames: {r}: sent {want}, counted {got}{note}" +
            ("" if got == want else "  <-- differs"))
        if got != want:
            bad.append(f"{r} +{got} (sent {want})")
    other = {r: d1[r] - d0.get(r, 0) for r in d1 if r not in FRAME_DROPS and d1[r] != d0.get(r, 0)}
    say(f"frames: other drops meanwhile: {other or 'none'}")
    if bad:
        why = ""
        if other.get("no_port"):
            why = (f" ({other['no_port']} client datagrams reached node {dp} meanwhile, "
                   f"as no_port: its kernel's answers go out on the veth, seen as not_our_ip)")
        raise Fail("frames: counters differ from what was sent: " + ", ".join(bad) + why)
    g0, g1 = before["groups"][0], after["groups"][0]
    say(f"frames: {len(kinds)} kinds x {REPEAT} sent ({sum(sent.values())} counted); node "
        f"{dp} ({g1['role']}) committed {g0['committed']} -> {g1['committed']} meanwhile")
    if g1["committed"] <= g0["committed"]:
        raise Fail(f"frames: node {dp} committed nothing while the frames came")
    wl.finish()
    lead, term, _ = cl.wait_leader(cl.ids, 5, what="the leader after the frames")
    cl.wait_caught_up(dp, lead, time.monotonic(), "frames", "hit by malformed frames")
    cl.check_alive()
    cl.stop_all()
    return cl


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--node", required=True, help="the lcraft-node executable")
    ap.add_argument("--cli", required=True, help="the lcraft-cli executable")
    ap.add_argument("--kvcheck", required=True, help="the kvcheck executable")
    ap.add_argument("--netns-sh", required=True, help="config/netns.sh")
    ap.add_argument("--dpdk", choices=["yes", "no"], default="no",
                    help="whether lcraft-node was built with DPDK")
    return run_main("dpdk-mixed", test, ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
