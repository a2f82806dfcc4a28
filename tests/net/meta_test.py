#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A node whose vote file was zeroed or emptied refuses to start; the others go on.

  meta_test.py --node BIN --cli BIN

Three lcraft-node processes on loopback take writes. A follower is stopped and
its meta file (the durable vote, beside the log's segments) is overwritten
with zeros, then truncated to 0 bytes: each time, starting the node must fail
(a non-zero exit within a few seconds) with a message naming the meta file,
while the two others keep committing. Starting as if new would forget the
node's vote, and a node that forgets its vote may vote twice in one term.
With the file restored the node starts and catches up.

Exit status: 0 passed, 1 failed (reason on the last line), 77 skipped.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_test import Fail, loopback_cluster, run_main, say  # noqa: E402


def put(cl, k, v):
    p = subprocess.run([cl.cli_bin, "--config", cl.config, "--timeout", "3000", "put", k, v],
                       capture_output=True, text=True, timeout=15)
    if p.returncode != 0:
        raise Fail(f"put {k}: exit {p.returncode}: {p.stderr.strip()}")


def refuses(cl, i, meta, what):
    """Node i must not start: exit non-zero within 10 s, naming the meta file."""
    cmd = [cl.node_bin, "--config", cl.config, "--id", str(i)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise Fail(f"node {i} with its meta file {what} started (still running after 10 s)")
    out = (p.stdout + p.stderr).strip()
    if p.returncode == 0 or "meta" not in out:
        raise Fail(f"node {i} with its meta file {what}: exit {p.returncode}, said: {out[-400:]}")
    say(f"node {i} with its meta file {what} refuses to start (exit {p.returncode}): "
        f"{out.splitlines()[-1]}")


def test(args, tmp, cleanups):
    cl = loopback_cluster(args, tmp, cleanups)
    cl.raft_extra = ["enable_pre_vote = true"]
    cl.write_config()
    cl.start_all()
    lead, term, _ = cl.wait_leader(cl.ids, 10)
    for k in range(20):
        put(cl, f"k{k}", "v")
    x = [i for i in cl.ids if i != lead][0]
    cl.kill9(x)
    meta = os.path.join(tmp, "data", f"node-{x}", "group-1", "meta")
    if not os.path.exists(meta):
        raise Fail(f"no meta file at {meta}")
    with open(meta, "rb") as f:
        saved = f.read()
    size = len(saved)

    with open(meta, "r+b") as f:
        f.write(b"\0" * size)
    refuses(cl, x, meta, "zeroed")
    put(cl, "during-zeroed", "v")
    with open(meta, "wb"):
        pass
    refuses(cl, x, meta, "emptied")
    put(cl, "during-emptied", "v")
    say(f"nodes {[i for i in cl.ids if i != x]} kept committing")

    with open(meta, "wb") as f:
        f.write(saved)
    cl.start(x)
    cl.wait_caught_up(x, lead, time.monotonic(), "restored", "restarted with its meta file")
    cl.stop_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--node", required=True)
    ap.add_argument("--cli", required=True)
    return run_main("meta", test, ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
