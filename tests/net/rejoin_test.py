#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A wiped node never rejoins under its old identity with an empty vote.

  rejoin_test.py --node BIN --cli BIN [--auth]

Three lcraft-node processes on loopback take writes. A follower, node 3, is
stopped once the leader counts entries it acknowledged (MEMBERS: matched > 0),
and its data directory is deleted (its disk died). Started again under id 3 it
must refuse within a few seconds, with lcraft-node's exit status 3 and a
message naming the node, what was said (the leader's matched index, or a
node's held_state) and the remedy (a new node id,
docs/operations.md), while nodes 1 and 2 keep committing. Its data directory
given the identity file of another node, it refuses with exit status 4.
With --force-rejoin it starts, saying loudly that it was not checked.

Then node 2 is made the leader, takes writes, and is stopped and wiped while
it leads. Nodes 1 and 3 elect a new leader, whose matched index for node 2 is
0 and which nobody names: only the record of the nodes seen holding state
(MEMBERS' held_state, written durably when node 2's appends came) says node 2
held state, and it is refused (exit 3) naming held_state.

Then a new cluster: node 3 starts alone (--rejoin-check-ms 300): with no
majority of its voters to answer, it keeps asking, saying so every 300 ms,
and does not start. Nodes 1 and 2 then start: each answers MEMBERS with
"checking": true while it checks itself, so nodes 1 and 2 conclude within
FRESH_BOUND_MS of their start (the old check waited its full 1 s there), and
all three take writes.

Then another new cluster: nodes 1 and 2 elect a leader and take writes; node 3
starts for the first time, on an empty data directory, a few seconds late.
Nothing of its own was ever acknowledged, so it starts and catches up.

With --auth the files name a cluster key and a client key: the node asks with
the client key, and the checking nodes of a new cluster answer with it (a
question or an answer without it would be dropped, and the node would keep
asking).

Exit status: 0 passed, 1 failed (reason on the last line), 77 skipped.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_test import (Fail, cli, loopback_cluster, members, run_main,  # noqa: E402
                          say)

EXIT_HELD = 3   # lcraft-node: the cluster says the node held state it no longer has
EXIT_OTHER = 4  # lcraft-node: the data directory is another node's or cluster's
REFUSE_BOUND_S = 10  # a refusal comes within this
FRESH_BOUND_MS = 500  # a new cluster's node concludes within this (the old check: 1000 ms)


def put(cl, k, v):
    cli(cl, "--timeout", "3000", "put", k, v)


def refused(cl, i, status, words, what):
    """Node i must exit `status` within REFUSE_BOUND_S, its stderr holding every one of
    words; returns the message."""
    cmd = [cl.node_bin, "--config", cl.config, "--id", str(i)]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=REFUSE_BOUND_S)
    except subprocess.TimeoutExpired:
        raise Fail(f"node {i} {what} started (still running after {REFUSE_BOUND_S} s)")
    err = p.stderr.strip()
    # A tuple of words: any one of them will do.
    missing = [w for w in words
               if (all(x not in err for x in w) if isinstance(w, tuple) else w not in err)]
    if p.returncode != status or missing:
        raise Fail(f"node {i} {what}: exit {p.returncode} (expected {status}), stderr "
                   f"without {missing}: {err[-600:]}")
    say(f"node {i} {what} refused in {(time.monotonic() - t0) * 1000:.0f} ms, exit "
        f"{p.returncode}: {err.splitlines()[-1]}")
    return err


def wait_matched(cl, i, timeout_s=5):
    """Until the leader's MEMBERS counts entries node i acknowledged: (leader, matched)."""
    deadline = time.monotonic() + timeout_s
    while True:
        m = members(cl)
        n = next((n for n in m["nodes"] if n["id"] == i), None)
        if n and n.get("matched", 0) > 0:
            return m["leader"], n["matched"]
        if time.monotonic() > deadline:
            raise Fail(f"the leader's MEMBERS shows no progress for node {i}: {m}")
        time.sleep(0.1)


def key_file(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)


def configure(args, cl, tmp):
    if args.auth:
        key_file(os.path.join(tmp, "cluster.key"))
        key_file(os.path.join(tmp, "client.key"))
        cl.cluster_extra = [f"key_file = {tmp}/cluster.key",
                            f"client_key_file = {tmp}/client.key"]
    cl.write_config()


def wiped_refused(args, tmp, cleanups):
    cl = loopback_cluster(args, tmp, cleanups)
    configure(args, cl, tmp)
    cl.start_all()
    lead, term, _ = cl.wait_leader(cl.ids, 15)
    say(f"cluster {cl.cluster_id}: leader {lead} (term {term}), files in {tmp}")
    x = 3
    if lead == x:
        cli(cl, "transfer-leader", "1")
        lead, term, _ = cl.wait_leader(cl.ids, 10, min_term=term)
    for k in range(20):
        put(cl, f"k{k}", "v")
    lead, matched = wait_matched(cl, x)
    say(f"leader {lead} counts node {x}'s log through index {matched}")
    cl.stop(x)
    data = os.path.join(tmp, "data", f"node-{x}")
    ident = os.path.join(data, "identity")
    if not os.path.exists(ident):
        raise Fail(f"node {x} wrote no identity file ({ident})")
    shutil.rmtree(data)
    say(f"node {x} stopped, {data} deleted (its disk died)")

    refused(cl, x, EXIT_HELD, [f"node {x}", ("matched", "held_state"), "refusing to start",
                               "Replace a node whose disk died", "--force-rejoin"],
            "with a wiped data directory")
    if os.path.exists(os.path.join(data, "group-1")):
        raise Fail(f"the refused node {x} made {data}/group-1: it opened its groups")
    put(cl, "during-refused", "v")
    say(f"nodes {[i for i in cl.ids if i != x]} kept committing")

    os.makedirs(data, exist_ok=True)
    with open(ident, "w") as f:
        f.write(f"lcraft-node data directory\ncluster {cl.cluster_id}\nnode 2\n")
    refused(cl, x, EXIT_OTHER, [ident, "node 2's", f"not node {x}'s"],
            "on node 2's data directory (its identity file)")
    os.remove(ident)

    cl.node_args[x] = ["--force-rejoin"]
    cl.start(x)
    time.sleep(1.5)
    cl.check_alive()
    with open(cl.logs[x], "rb") as f:
        f.seek(cl.log_offset[x])
        log = f.read().decode(errors="replace")
    if "--force-rejoin" not in log or "WARNING" not in log:
        raise Fail(f"node {x} with --force-rejoin said no warning: {log[-400:]}")
    say(f"node {x} with --force-rejoin runs, warned: "
        f"{next(l for l in log.splitlines() if '--force-rejoin' in l)[:160]}...")
    put(cl, "after-forced", "v")
    wiped_leader(cl, tmp)
    cl.stop_all()


def wiped_leader(cl, tmp):
    """Node 2 wiped while it leads: only the held records say it held state."""
    x = 2
    lead, term, _ = cl.wait_leader(cl.ids, 10)
    if lead != x:
        cli(cl, "transfer-leader", str(x))
        lead, term, _ = cl.wait_leader(cl.ids, 10, min_term=term)
    if lead != x:
        raise Fail(f"node {x} did not become the leader (node {lead} leads)")
    for k in range(10):
        put(cl, f"led{k}", "v")
    say(f"node {x} leads (term {term}) and took writes")
    cl.stop(x)
    data = os.path.join(tmp, "data", f"node-{x}")
    shutil.rmtree(data)
    rest = [i for i in cl.ids if i != x]
    lead, term2, _ = cl.wait_leader(rest, 15, min_term=term)
    m = members(cl)
    mine = next((n for n in m["nodes"] if n["id"] == x), {})
    if mine.get("matched", 0) > 0 or m["leader"] == x:
        raise Fail(f"the new leader still counts node {x}: {m}")
    say(f"node {x} stopped while leading, {data} deleted; node {lead} leads (term {term2}), "
        f"its matched for node {x}: {mine.get('matched', 0)}, held_state {m.get('held_state')}")
    refused(cl, x, EXIT_HELD, [f"node {x}", "held_state", "refusing to start"],
            "wiped while it led")
    put(cl, "after-leader-refused", "v")


def said_ms(cl, i):
    """The ms node i's check took, from its line (None: no such line yet)."""
    with open(cl.logs[i], "rb") as f:
        f.seek(cl.log_offset[i])
        log = f.read().decode(errors="replace")
    for line in log.splitlines():
        if "holds no state for" in line:
            got = re.search(r"; (\d+) ms\)", line)
            if got:
                return int(got.group(1)), line
    return None, log


def fresh_cluster(args, tmp, cleanups):
    """A new cluster: a node alone keeps asking; the others start at once."""
    os.makedirs(tmp)
    cl = loopback_cluster(args, tmp, cleanups)
    configure(args, cl, tmp)
    cl.node_args[3] = ["--rejoin-check-ms", "300"]
    cl.start(3)
    time.sleep(1.5)
    cl.check_alive()
    ms, log = said_ms(cl, 3)
    waits = [l for l in log.splitlines() if "waiting for a majority" in l]
    if ms is not None or len(waits) < 3:
        raise Fail(f"node 3 alone did not keep asking (--rejoin-check-ms 300, 1.5 s): {log[-600:]}")
    say(f"node 3 alone keeps asking, {len(waits)} lines in 1.5 s: {waits[-1][:200]}")
    t0 = time.monotonic()
    cl.start(1)
    cl.start(2)
    lead, term, _ = cl.wait_leader(cl.ids, 15)
    took = (time.monotonic() - t0) * 1000
    for i in cl.ids:
        ms, line = said_ms(cl, i)
        if ms is None:
            raise Fail(f"node {i} did not say its check ended: {line[-600:]}")
        if i != 3 and ms >= FRESH_BOUND_MS:
            raise Fail(f"node {i} of a new cluster took {ms} ms to check (bound "
                       f"{FRESH_BOUND_MS} ms): {line}")
        if i != 3 and "checking" not in line:
            raise Fail(f"node {i} does not say a node was checking itself: {line}")
        say(f"node {i}: {ms} ms: {line[line.find('nothing says'):][:200]}")
    for k in range(5):
        put(cl, f"fresh{k}", "v")
    say(f"a new cluster: leader {lead} (term {term}) {took:.0f} ms after nodes 1 and 2 "
        f"started; writes committed")
    cl.stop_all()


def late_first_start(args, tmp, cleanups):
    os.makedirs(tmp)
    cl = loopback_cluster(args, tmp, cleanups)
    configure(args, cl, tmp)
    cl.start(1)
    cl.start(2)
    lead, term, _ = cl.wait_leader([1, 2], 15)
    for k in range(20):
        put(cl, f"late{k}", "v")
    say(f"a new cluster {cl.cluster_id}: nodes 1 and 2 elected leader {lead} (term {term}) "
        f"and took writes; node 3 starts for the first time")
    t0 = time.monotonic()
    cl.start(3)
    cl.wait_caught_up(3, lead, t0, "late first start", "started late on an empty directory")
    with open(cl.logs[3], "rb") as f:
        f.seek(cl.log_offset[3])
        log = f.read().decode(errors="replace")
    said = [l for l in log.splitlines() if "nothing says node 3 held" in l]
    if not said:
        raise Fail(f"node 3's log does not say the cluster was asked: {log[-600:]}")
    say(f"node 3 said: {said[0]}")
    cl.stop_all()


def test(args, tmp, cleanups):
    wiped_refused(args, tmp, cleanups)
    fresh_cluster(args, os.path.join(tmp, "fresh"), cleanups)
    late_first_start(args, os.path.join(tmp, "late"), cleanups)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--node", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--auth", action="store_true", help="a cluster key and a client key")
    args = ap.parse_args()
    return run_main("rejoin-auth" if args.auth else "rejoin", test, args)


if __name__ == "__main__":
    sys.exit(main())
