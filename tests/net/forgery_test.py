#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Forged and replayed datagrams against a live three-node cluster on loopback change nothing.

  forgery_test.py --node BIN --cli BIN --forge BIN [--auth]

A forger (tests/net/forge.c: datagrams encoded and sealed by the library's own
codec, only the sender a lie) attacks a running cluster, first from an address
that is no member's (a stranger), then from the address of a member that is
down (a buggy or hijacked member):

  stranger: a TRANSFER to a follower in the leader's name; an AppendEntries
            from a "leader" with a higher term carrying a PUT; a heartbeat on
            stream id 2^64 - 1 for every pair of nodes; a VOTE_REQ with term
            2^62 - 1 to the leader, then to a follower.
  member:   with node x stopped, from x's own address: VOTE_REQs with term
            2^62 - 1, an AppendEntries with such a term, heartbeats on stream
            2^64 - 1.

Without a key (the default) every node says at start, loudly, that nothing is
authenticated; the stranger's datagrams are dropped as sender_address, the
member's counted as far_terms and future_stream (they reach the core, which
refuses them). With --auth the nodes have a cluster key and a client key
([cluster] key_file, client_key_file) and the forger has neither: every
forged datagram is dropped before anything in it is used, counted as bad_mac
or old_boot (its last 32 bytes read as a trailer), none reaches the address
check or the core (sender_address, far_terms, future_stream stay as they
were); a forged PUT to every node's client port draws no answer and is
counted. Then replays, through a relay between nodes 1 and 2 (node 1's file
names the relay as node 2 and node 2's names it as node 1; the relay keeps
every datagram it passes): the votes, the TRANSFER and the old leader's
AppendEntries (an old stream) of a leadership transfer, the newest stream
datagrams (a replayed sequence), each sent again once: each counted
replayed, exactly once, so none went further (a datagram is counted under one
reason), and no term moved; ten of them with a bit changed: bad_mac; node 1
restarted, then its datagrams of the earlier start sent again: old_boot. Last, the boot file: larger at every start, a
damaged one refused with a sentence naming it, a removed one taken from the
clock.

After each: the leader and every term are unchanged, the forged key is not
found, and writes still commit. Then the leader that saw the forgeries is
killed and restarted: the cluster elects again, with no term near 2^62, and
every write is read back.

Exit status: 0 passed, 1 failed (reason on the last line), 77 skipped.
"""
import argparse
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_test import (Fail, loopback_cluster, free_udp_ports, run_main,  # noqa: E402
                          say, tail, FAILOVER_BOUND_MS)
from client_protocol_test import HDR, PUT, header, req_payload  # noqa: E402

TERM_HUGE = 2**62 - 1
STREAM_HUGE = 2**64 - 1
VOTE_REQ, VOTE_RESP, APPEND_REQ, TRANSFER = 1, 2, 3, 5  # docs/wire-protocol.md
TRAILER = 32
AUTH_DROPS = ("bad_mac", "old_boot", "replayed")


class Forgery:
    def __init__(self, args, cl):
        self.forge_bin, self.cl = args.forge, cl

    def send(self, to, as_, kind, bind="127.0.0.1:0", **kw):
        host, port = self.cl.addrs[to]
        cmd = [self.forge_bin, "--cluster", str(self.cl.cluster_id), "--dest", f"{host}:{port}",
               "--to", str(to), "--as", str(as_), "--kind", kind, "--bind", bind]
        for k, v in kw.items():
            cmd += [f"--{k}", str(v)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        if p.returncode != 0:
            raise Fail(f"forge {kind}: exit {p.returncode}: {p.stderr.strip()}")


def stats(cl, i):
    """Node i's whole STATS answer, or fail."""
    p = subprocess.run([cl.cli_bin, "--config", cl.config, "--node", str(i), "--timeout", "500",
                        "stats"], capture_output=True, text=True, timeout=10)
    if p.returncode != 0:
        raise Fail(f"node {i}: stats: exit {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout.splitlines()[0])


def lcore(cl, i):
    """Node i's lcore 0 metrics (transport counters and groups), or fail."""
    return stats(cl, i)["lcraft"]["lcores"][0]


def cli(cl, *args, check=True):
    p = subprocess.run([cl.cli_bin, "--config", cl.config, "--timeout", "3000", *args],
                       capture_output=True, text=True, timeout=15)
    if check and p.returncode != 0:
        raise Fail(f"lcraft-cli {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def unchanged(cl, ids, lead, term, what):
    """The leader and every node's term are what they were; the forged key is absent and a
    new write commits."""
    st = cl.statuses(ids)
    for i in ids:
        s = st[i]
        if s is None:
            raise Fail(f"{what}: node {i} does not answer")
        if s["term"] != term or s["leader"] != lead:
            raise Fail(f"{what}: node {i} now says term {s['term']}, leader {s['leader']} "
                       f"(was term {term}, leader {lead})")
    p = cli(cl, "get", "forged", check=False)
    if p.returncode != 1 or "not found" not in p.stderr:
        raise Fail(f"{what}: the forged key reads {p.stdout.strip()!r} ({p.stderr.strip()})")
    key = f"after-{what.split()[0]}"
    cli(cl, "put", key, "v")
    if cli(cl, "get", key).stdout.strip() != "v":
        raise Fail(f"{what}: {key} does not read back")
    say(f"{what}: leader {lead}, term {term} on nodes {ids}; forged key absent; {key} committed")


def drops(cl, i):
    return lcore(cl, i).get("dropped", {})


def group(cl, i):
    return lcore(cl, i)["groups"][0]


def auth_drops(cl, i):
    d = drops(cl, i)
    return sum(d.get(k, 0) for k in AUTH_DROPS)


def log_of(cl, i):
    with open(cl.logs[i], errors="replace") as f:
        f.seek(cl.log_offset[i])
        return f.read()


# ---- forgeries ---------------------------------------------------------------------------

def forgeries(args, cl, auth):
    """The stranger's and the down member's forgeries; with auth, each dropped unread."""
    lead, term, _ = cl.wait_leader(cl.ids, 10)
    cli(cl, "put", "k0", "v0")
    fol = [i for i in cl.ids if i != lead]
    f, g = fol
    st = cl.statuses(cl.ids)
    last = st[lead]["last"]
    say(f"leader {lead} term {term}, last index {last}; followers {fol}")
    fg = Forgery(args, cl)

    # ---- a stranger ----
    before = {i: drops(cl, i) for i in cl.ids}
    sent = {i: 0 for i in cl.ids}
    fg.send(f, lead, "transfer", term=term, prev=f"{term}:{lead}:{last}")
    sent[f] += 1
    fg.send(f, g, "append", term=term + 1, prev=f"{term}:{lead}:{last}", key="forged",
            value="by-a-stranger")
    sent[f] += 1
    for a in cl.ids:
        for b in cl.ids:
            if a != b:
                fg.send(b, a, "stream", term=term, stream=STREAM_HUGE)
                sent[b] += 1
    fg.send(lead, f, "vote", term=TERM_HUGE)
    fg.send(f, g, "vote", term=TERM_HUGE)
    sent[lead] += 1
    sent[f] += 1
    time.sleep(1.0)
    unchanged(cl, cl.ids, lead, term, "stranger forgeries")
    for i in cl.ids:
        now = drops(cl, i)
        got = {k: now.get(k, 0) - before[i].get(k, 0) for k in ("sender_address",) + AUTH_DROPS}
        counted = got["sender_address"] if not auth else got["bad_mac"] + got["old_boot"]
        if counted < sent[i] or (auth and got["sender_address"]):
            raise Fail(f"node {i}: {sent[i]} forged datagrams, counted {got}")
        say(f"node {i}: {sent[i]} forged datagrams dropped: {got}")

    # ---- a member's address, the member down ----
    x, y = g, f
    cl.kill9(x)
    bind = f"127.0.0.1:{cl.addrs[x][1]}"
    far0 = {i: group(cl, i)["far_terms"] for i in (lead, y)}
    d0 = {i: drops(cl, i) for i in (lead, y)}
    last = cl.statuses([lead])[lead]["last"]
    for to in (lead, y):
        fg.send(to, x, "vote", bind=bind, term=TERM_HUGE)
        fg.send(to, x, "stream", bind=bind, term=term, stream=STREAM_HUGE)
    fg.send(y, x, "append", bind=bind, term=TERM_HUGE, prev=f"{term}:{lead}:{last}",
            key="forged", value="by-a-member")
    time.sleep(1.0)
    unchanged(cl, [lead, y], lead, term, f"member-address forgeries (node {x} down)")
    for i in (lead, y):
        far = group(cl, i)["far_terms"] - far0[i]
        now = drops(cl, i)
        fut = now.get("future_stream", 0) - d0[i].get("future_stream", 0)
        unread = sum(now.get(k, 0) - d0[i].get(k, 0) for k in AUTH_DROPS)
        sent_i = 3 if i == y else 2
        if not auth and (far < 1 or fut < 1):
            raise Fail(f"node {i}: far_terms +{far}, future_stream +{fut}: each must count")
        if auth and (far or fut or unread < sent_i):
            raise Fail(f"node {i}: far_terms +{far}, future_stream +{fut}, refused unread "
                       f"+{unread} of {sent_i}: with a key none may reach the core")
        say(f"node {i}: far_terms +{far}, future_stream +{fut}, refused unread +{unread}")
    return lead, term, x, y


def restart_and_elect(cl, lead, term, x, y):
    """The nodes that saw 2^62 - 1 restart and still elect."""
    cl.start(x)
    cl.wait_caught_up(x, lead, time.monotonic(), "restart", "restarted")
    t0 = time.monotonic()
    cl.kill9(lead)
    new, new_term, seen = cl.wait_leader([x, y], 5, min_term=term,
                                         what=f"a new leader after killing node {lead}")
    ms = (seen - t0) * 1000
    say(f"killed leader {lead}: nodes {[x, y]} agree on leader {new} (term {new_term}) "
        f"after {ms:.0f} ms")
    if ms > FAILOVER_BOUND_MS or new_term > term + 10:
        raise Fail(f"failover {ms:.0f} ms (bound {FAILOVER_BOUND_MS}), term {new_term}")
    cl.start(lead)
    lead2, term2, _ = cl.wait_leader(cl.ids, 5, what="one leader after the restart")
    unchanged(cl, cl.ids, lead2, term2, "after restarts")
    return lead2, term2


def read_back(cl, keys):
    for k, v in keys:
        got = cli(cl, "get", k).stdout.strip()
        if got != v:
            raise Fail(f"{k} reads {got!r}, not {v!r}")
    say("every acknowledged write reads back")


def test(args, tmp, cleanups):
    cl = loopback_cluster(args, tmp, cleanups)
    cl.raft_extra = ["enable_pre_vote = true"]
    cl.write_config()
    cl.start_all()
    cl.wait_leader(cl.ids, 10)
    for i in cl.ids:
        if "WARNING: nothing is authenticated: anyone who can send to the node's ports can " \
           "speak for its peers" not in log_of(cl, i):
            raise Fail(f"node {i}, started without a key, did not say so: {tail(cl.logs[i], 5)}")
    say("every node, started without a key, says that anyone can speak for its peers")
    lead, term, x, y = forgeries(args, cl, auth=False)
    restart_and_elect(cl, lead, term, x, y)
    read_back(cl, (("k0", "v0"), ("after-stranger", "v"), ("after-member-address", "v")))
    cl.stop_all()


# ---- with keys: the relay and its replays --------------------------------------------------

class Relay:
    """Between nodes 1 and 2: node 1 sends what it means for node 2 to r12, which passes it on
    to node 2 from r21, where node 2 believes node 1 is, and the other way round. Every
    datagram passed is kept, in order, with its direction ("1>2" or "2>1")."""

    def __init__(self, p1, p2, r12, r21):
        self.p1, self.p2 = ("127.0.0.1", p1), ("127.0.0.1", p2)
        self.s12 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s21 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s12.bind(("127.0.0.1", r12))
        self.s21.bind(("127.0.0.1", r21))
        self.kept = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            ready, _, _ = select.select([self.s12, self.s21], [], [], 0.1)
            for s in ready:
                try:
                    d = s.recv(70000)
                except OSError:
                    continue
                way = "1>2" if s is self.s12 else "2>1"
                with self.lock:
                    self.kept.append((way, d))
                self.send(way, d)

    def send(self, way, d):
        """d on its way, from where its receiver expects its sender."""
        if way == "1>2":
            self.s21.sendto(d, self.p2)
        else:
            self.s12.sendto(d, self.p1)

    def mark(self):
        with self.lock:
            return len(self.kept)

    def since(self, mark, until=None):
        with self.lock:
            return list(self.kept[mark:until])

    def stop(self):
        self.stopping = True
        self.thread.join()
        self.s12.close()
        self.s21.close()


def typ(d):
    return d[5]


def counters(cl, i):
    """What a replay delivered would move: the transport's drops and the core's."""
    lc = lcore(cl, i)
    g = lc["groups"][0]
    return {"dropped": lc.get("dropped", {}), "stale_msgs": g["stale_msgs"],
            "far_terms": g["far_terms"], "dropped_msgs": g["dropped_msgs"]}


def replay(cl, relay, batch, what, want):
    """Send every (way, d) of batch again, once; each must be counted under `want` on its
    receiver, exactly: a datagram is counted under one reason, so none of them went further
    (the live traffic goes on meanwhile, and may move other counters: a retransmission's
    duplicate, say; far_terms it never moves)."""
    if not batch:
        raise Fail(f"{what}: the relay kept nothing to replay")
    st = cl.statuses(cl.ids)
    lead = st[1]["leader"]
    term = st[1]["term"]
    before = {i: counters(cl, i) for i in (1, 2)}
    for way, d in batch:
        relay.send(way, d)
    time.sleep(0.5)
    sent = {1: sum(1 for w, _ in batch if w == "2>1"), 2: sum(1 for w, _ in batch if w == "1>2")}
    for i in (1, 2):
        now = counters(cl, i)
        moved = {k: now["dropped"].get(k, 0) - before[i]["dropped"].get(k, 0)
                 for k in set(now["dropped"]) | set(before[i]["dropped"])}
        moved = {k: v for k, v in moved.items() if v}
        core = {k: now[k] - before[i][k] for k in ("stale_msgs", "far_terms", "dropped_msgs")}
        if moved.get(want, 0) != sent[i] or core["far_terms"]:
            raise Fail(f"{what}: node {i} got {sent[i]} again; its drops moved by {moved} "
                       f"(want {want} +{sent[i]}), the core's by {core}")
        if set(moved) - {want} or any(core.values()):
            say(f"{what}: node {i}: the live traffic moved {moved}, the core {core}")
    unchanged(cl, cl.ids, lead, term, what)
    say(f"{what}: {sent[2]} datagrams to node 2 and {sent[1]} to node 1 again: each "
        f"counted {want}, nothing delivered")


def relay_configs(cl, tmp, r12, r21):
    """Node 1's file names the relay as node 2, node 2's names it as node 1."""
    with open(cl.config) as f:
        text = f.read()
    p1, p2 = cl.addrs[1][1], cl.addrs[2][1]
    files = {}
    for i, (a, b) in ((1, (f"2 = 127.0.0.1:{p2}", f"2 = 127.0.0.1:{r12}")),
                      (2, (f"1 = 127.0.0.1:{p1}", f"1 = 127.0.0.1:{r21}"))):
        files[i] = os.path.join(tmp, f"node-{i}.ini")
        if a not in text:
            raise Fail(f"{cl.config} has no line {a!r}")
        with open(files[i], "w") as f:
            f.write(text.replace(a, b))
    return files


def key_file(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)


def client_port_forgeries(cl):
    """A PUT without the client key, to every node's client port: no answer, counted."""
    before = {i: stats(cl, i)["client"]["drops"] for i in cl.ids}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    for i in cl.ids:
        d = header(req_payload(0xf0f0f0f0, 1, PUT, b"forged", b"by-a-client-without-the-key"),
                   cl.cluster_id, 1)
        s.sendto(d, ("127.0.0.1", cl.addrs[i][1] + 1000))
        try:
            got = s.recv(70000)
            raise Fail(f"node {i}'s client port answered a PUT without the key ({len(got)} "
                       f"bytes)")
        except socket.timeout:
            pass
    s.close()
    for i in cl.ids:
        now = stats(cl, i)["client"]["drops"]
        moved = {k: now[k] - before[i][k] for k in now if now[k] != before[i][k]}
        if sum(moved.get(k, 0) for k in ("bad_mac", "old_boot", "short")) != 1 or \
                set(moved) - {"bad_mac", "old_boot", "short"}:
            raise Fail(f"node {i}: a PUT without the client key moved its drops by {moved}")
    if cli(cl, "get", "forged", check=False).returncode != 1:
        raise Fail("the forged PUT to a client port was applied")
    say("a PUT without the client key to every client port: no answer, counted, not applied")


def boot_file(cl, tmp, i):
    """Node i's boot: in <data_dir>/boot, larger at every start; a damaged file refused with a
    sentence naming it; a removed one taken from the clock."""
    path = os.path.join(tmp, "data", f"node-{i}", "boot")

    def on_disk():
        with open(path, "rb") as f:
            b = f.read()
        if len(b) != 24 or b[:4] != b"LCRB":
            raise Fail(f"{path}: {len(b)} bytes, starts {b[:4]!r}")
        return struct.unpack_from("<Q", b, 16)[0]

    b0 = stats(cl, i)["auth"]["boot"]
    if on_disk() != b0:
        raise Fail(f"node {i} runs with boot {b0}, its file says {on_disk()}")
    cl.stop(i)
    cl.start(i)
    cl.wait_leader(cl.ids, 10, what=f"a leader after node {i}'s restart")
    b1 = stats(cl, i)["auth"]["boot"]
    if b1 <= b0 or on_disk() != b1:
        raise Fail(f"node {i} restarted with boot {b1} (before {b0}; file {on_disk()})")
    cl.stop(i)
    with open(path, "r+b") as f:
        f.truncate(10)
    cmd = [cl.node_bin, "--config", cl.node_configs.get(i, cl.config), "--id", str(i)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if p.returncode != 1 or f"{path}: 10 bytes, not 24: damaged" not in p.stderr or \
            "remove the file" not in p.stderr:
        raise Fail(f"node {i} on a damaged boot file: exit {p.returncode}: {p.stderr.strip()}")
    say(f"node {i} on a boot file cut to 10 bytes: refused ({p.stderr.strip().splitlines()[-1]})")
    os.unlink(path)
    cl.start(i)
    cl.wait_leader(cl.ids, 10, what=f"a leader after node {i} started without its boot file")
    b2 = stats(cl, i)["auth"]["boot"]
    if b2 <= b1:
        raise Fail(f"node {i}'s boot from the clock {b2} is not above {b1}")
    say(f"node {i}'s boots: {b0}, {b1} (restart), {b2} (file removed: the clock)")


def test_auth(args, tmp, cleanups):
    cl = loopback_cluster(args, tmp, cleanups)
    key_file(os.path.join(tmp, "cluster.key"))
    key_file(os.path.join(tmp, "client.key"))
    cl.cluster_extra = [f"key_file = {tmp}/cluster.key", f"client_key_file = {tmp}/client.key"]
    cl.raft_extra = ["enable_pre_vote = true"]
    cl.write_config()
    r12 = free_udp_ports(lambda b: [b, b + 100, b + 1000, b + 1100])
    relay = Relay(cl.addrs[1][1], cl.addrs[2][1], r12, r12 + 100)
    cleanups.append(relay.stop)
    cl.node_configs = relay_configs(cl, tmp, r12, r12 + 100)
    say(f"relay between nodes 1 and 2: node 1 sends to 127.0.0.1:{r12}, node 2 to "
        f"127.0.0.1:{r12 + 100}")
    cl.start_all()
    cl.wait_leader(cl.ids, 10)
    for i in cl.ids:
        log = log_of(cl, i)
        if "Raft datagrams and the client port authenticated with aes256gcm" not in log or \
                "WARNING" in log:
            raise Fail(f"node {i} with both keys: {tail(cl.logs[i], 5)}")
    say("every node says its Raft datagrams and client port are authenticated")

    # Replays. Node 2 leads, then hands over to node 1 through the relay: votes (and
    # Pre-Votes), the TRANSFER, node 2's AppendEntries, then node 1's.
    cli(cl, "transfer-leader", "2")
    mark = relay.mark()
    for k in range(5):
        cli(cl, "put", f"q{k}", "v")
    cli(cl, "transfer-leader", "1")
    for k in range(20):
        cli(cl, "put", f"r{k + 1}", "v")
    time.sleep(0.3)
    kept = relay.since(mark)
    votes = [(w, d) for w, d in kept if typ(d) in (VOTE_REQ, VOTE_RESP, TRANSFER)]
    old_stream = [(w, d) for w, d in kept if w == "2>1" and typ(d) == APPEND_REQ]
    say(f"kept {len(kept)} datagrams of the transfer: {len(votes)} votes and TRANSFERs, "
        f"{len(old_stream)} AppendEntries of node 2's leadership")
    replay(cl, relay, votes, "old votes and TRANSFER replayed", "replayed")
    replay(cl, relay, old_stream, "an old stream replayed", "replayed")
    newest = relay.since(max(mark, relay.mark() - 40))
    replay(cl, relay, newest, "the newest 40 datagrams replayed", "replayed")
    flipped = []
    for way, d in newest[:10]:
        b = bytearray(d)
        b[HDR + 1] ^= 0x10  # a payload byte: not the trailer's boot
        flipped.append((way, bytes(b)))
    replay(cl, relay, flipped, "10 datagrams with a bit changed", "bad_mac")
    # Node 1 restarts: its datagrams of the earlier start are old_boot at node 2.
    mark = relay.mark()
    time.sleep(0.2)
    before_restart = [(w, d) for w, d in relay.since(mark) if w == "1>2"]
    cl.stop(1)
    cl.start(1)
    cl.wait_leader(cl.ids, 10, what="a leader after node 1's restart")
    # Node 1 leads again, so node 2 hears its new start.
    cli(cl, "transfer-leader", "1")
    cli(cl, "put", "after-restart", "v")
    replay(cl, relay, before_restart, "node 1's datagrams of its earlier start", "old_boot")

    # Forgers without the keys.
    client_port_forgeries(cl)
    lead, term, x, y = forgeries(args, cl, auth=True)
    restart_and_elect(cl, lead, term, x, y)
    read_back(cl, (("k0", "v0"), ("after-stranger", "v"), ("after-member-address", "v"),
                   ("q4", "v"), ("r20", "v"), ("after-restart", "v")))
    boot_file(cl, tmp, 3)
    cl.stop_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--node", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--forge", required=True)
    ap.add_argument("--auth", action="store_true",
                    help="nodes with a cluster key and a client key; replays through a relay")
    args = ap.parse_args()
    if args.auth:
        return run_main("forgery-auth", test_auth, args)
    return run_main("forgery", test, args)


if __name__ == "__main__":
    sys.exit(main())
