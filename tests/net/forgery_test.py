#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Forged datagrams against a live three-node cluster on loopback change nothing.

  forgery_test.py --node BIN --cli BIN --forge BIN

A forger (tests/net/forge.c: datagrams encoded and sealed by the library's own
codec, only the sender a lie) attacks a running cluster, first from an address
that is no member's (a stranger), then from the address of a member that is
down (a buggy or hijacked member):

  stranger: a TRANSFER to a follower in the leader's name; an AppendEntries
            from a "leader" with a higher term carrying a PUT; a heartbeat on
            stream id 2^64 - 1 for every pair of nodes; a VOTE_REQ with term
            2^62 - 1 to the leader, then to a follower.
            Each is dropped as sender_address, counted on the node it reached.
  member:   with node x stopped, from x's own address: VOTE_REQs with term
            2^62 - 1, an AppendEntries with such a term, heartbeats on stream
            2^64 - 1. Counted as far_terms and future_stream.

After each: the leader and every term are unchanged, the forged key is not
found, and writes still commit. Then the leader that saw the huge terms is
killed and restarted: the cluster elects again, with no term near 2^62, and
every write is read back.

Exit status: 0 passed, 1 failed (reason on the last line), 77 skipped.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_test import (Fail, loopback_cluster, run_main, say,  # noqa: E402
                          FAILOVER_BOUND_MS)

TERM_HUGE = 2**62 - 1
STREAM_HUGE = 2**64 - 1


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


def lcore(cl, i):
    """Node i's lcore 0 metrics (transport counters and groups), or fail."""
    p = subprocess.run([cl.cli_bin, "--config", cl.config, "--node", str(i), "--timeout", "500",
                        "stats"], capture_output=True, text=True, timeout=10)
    if p.returncode != 0:
        raise Fail(f"node {i}: stats: exit {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout.splitlines()[0])["lcraft"]["lcores"][0]


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


def test(args, tmp, cleanups):
    cl = loopback_cluster(args, tmp, cleanups)
    cl.raft_extra = ["enable_pre_vote = true"]
    cl.write_config()
    cl.start_all()
    lead, term, _ = cl.wait_leader(cl.ids, 10)
    cli(cl, "put", "k0", "v0")
    fol = [i for i in cl.ids if i != lead]
    f, g = fol
    st = cl.statuses(cl.ids)
    last = st[lead]["last"]
    say(f"leader {lead} term {term}, last index {last}; followers {fol}")
    fg = Forgery(args, cl)

    # ---- a stranger ----
    before = {i: drops(cl, i).get("sender_address", 0) for i in cl.ids}
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
        got = drops(cl, i).get("sender_address", 0) - before[i]
        if got < sent[i]:
            raise Fail(f"node {i}: {sent[i]} forged datagrams, {got} counted as sender_address")
        say(f"node {i}: {got} dropped as sender_address (sent {sent[i]})")

    # ---- a member's address, the member down ----
    x, y = g, f
    cl.kill9(x)
    bind = f"127.0.0.1:{cl.addrs[x][1]}"
    far0 = {i: group(cl, i)["far_terms"] for i in (lead, y)}
    fut0 = {i: drops(cl, i).get("future_stream", 0) for i in (lead, y)}
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
        fut = drops(cl, i).get("future_stream", 0) - fut0[i]
        if far < 1 or fut < 1:
            raise Fail(f"node {i}: far_terms +{far}, future_stream +{fut}: each must count")
        say(f"node {i}: far_terms +{far}, future_stream +{fut}")

    # ---- the nodes that saw 2^62 - 1 restart and still elect ----
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
    for k, v in (("k0", "v0"), ("after-stranger", "v"), ("after-member-address", "v")):
        got = cli(cl, "get", k).stdout.strip()
        if got != v:
            raise Fail(f"{k} reads {got!r}, not {v!r}")
    say("every acknowledged write reads back")
    cl.stop_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--node", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--forge", required=True)
    return run_main("forgery", test, ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
