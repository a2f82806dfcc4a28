#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The node's metrics in DPDK's telemetry, beside the ports' own.

  telemetry_test.py --node BIN --cli BIN --dpdk yes|no

Three lcraft-node processes on DPDK memif (one EAL file prefix each, so each has
its own telemetry socket, /var/run/dpdk/<prefix>/dpdk_telemetry.v2 as root). This
script speaks DPDK's telemetry protocol itself (a SOCK_SEQPACKET socket: an info
object first, then one JSON answer per command) and checks, on every node:
/lcraft/node names it; /lcraft/groups lists its group; /lcraft/group,1 agrees with
lcraft-cli stats on the leader and the term, and its committed index moves with 50
writes; /lcraft/lcore,0 shows the transport's and the DPDK ports' counters, moving
too; parameters that name nothing (group 0, 2, 4294967295, "x", "", an lcore past
the last) answer null; DPDK's own /ethdev/list is there beside them; /help lists
the lcraft commands.

Exit status: 0 passed, 1 failed (the reason is the last line), 77 skipped (the
reason is the last line: a build without DPDK).
"""
import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_test import Fail, Skip, loopback_cluster, run_main, say  # noqa: E402


def runtime_dir(prefix):
    """Where DPDK 22.11 puts a process's runtime files (eal_create_runtime_dir)."""
    if os.geteuid() == 0:
        base = "/var/run"
    else:
        base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    return os.path.join(base, "dpdk", prefix)


class Telemetry:
    """One connection to a process's telemetry socket."""

    def __init__(self, path, timeout_s=10):
        deadline = time.monotonic() + timeout_s
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self.sock.settimeout(5)
            try:
                self.sock.connect(path)
                break
            except OSError as e:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise Fail(f"telemetry: cannot connect to {path}: {e}") from e
                time.sleep(0.1)
        info = json.loads(self.sock.recv(65536))
        if "version" not in info or "max_output_len" not in info:
            raise Fail(f"telemetry: {path}: unexpected greeting {info}")
        self.max = info["max_output_len"]

    def ask(self, cmd):
        """The answer's value (dict, list or None)."""
        self.sock.send(cmd.encode())
        text = self.sock.recv(self.max + 1024)
        try:
            a = json.loads(text)
        except ValueError as e:
            raise Fail(f"telemetry: {cmd}: not JSON: {text[:300]!r}") from e
        name = cmd.split(",", 1)[0]
        if name not in a:
            raise Fail(f"telemetry: {cmd}: answer without {name}: {a}")
        return a[name]

    def close(self):
        self.sock.close()


def test(args, tmp, cleanups):
    if args.dpdk != "yes":
        raise Skip("skipped: lcraft-node was built without DPDK (install libdpdk-dev, "
                   "meson setup again)")
    cl = loopback_cluster(args, tmp, cleanups)
    prefix = f"lcraft-tel-{os.getpid()}-{random.randrange(10**6)}"
    cl.dpdk = [f"eal = -l 0 --no-huge -m 256 --no-pci --no-shconf --log-level=3 "
               f"--file-prefix={prefix}-{{id}}", f"memif_dir = {tmp}/memif"]

    def rm_runtime():
        for i in cl.ids:
            d = runtime_dir(f"{prefix}-{i}")
            if os.path.isdir(d):
                for f in os.listdir(d):
                    os.unlink(os.path.join(d, f))
                os.rmdir(d)
    cleanups.append(rm_runtime)
    cl.write_config()
    cl.start_all()
    lead, term, _ = cl.wait_leader(cl.ids, 10)
    say(f"leader {lead} (term {term}) over DPDK memif")

    tel = {}
    for i in cl.ids:
        path = os.path.join(runtime_dir(f"{prefix}-{i}"), "dpdk_telemetry.v2")
        tel[i] = Telemetry(path)
        cleanups.append(tel[i].close)

    for i in cl.ids:
        t = tel[i]
        node = t.ask("/lcraft/node")
        if node != {"node": i, "lcores": 1, "groups": 1}:
            raise Fail(f"node {i}: /lcraft/node = {node}")
        groups = t.ask("/lcraft/groups")
        if groups != [1]:
            raise Fail(f"node {i}: /lcraft/groups = {groups}")
        g = t.ask("/lcraft/group,1")
        if not isinstance(g, dict) or g.get("group") != 1:
            raise Fail(f"node {i}: /lcraft/group,1 = {g}")
        want_role = "leader" if i == lead else "follower"
        if g["role"] != want_role or g["leader"] != lead or g["term"] != term:
            raise Fail(f"node {i}: /lcraft/group,1 says {g['role']}, leader {g['leader']}, "
                       f"term {g['term']}; lcraft-cli stats said leader {lead}, term {term}")
        for bad in ("/lcraft/group,0", "/lcraft/group,2", "/lcraft/group,4294967295",
                    "/lcraft/group,x", "/lcraft/group", "/lcraft/group,1x",
                    "/lcraft/lcore,1", "/lcraft/lcore,99999999999", "/lcraft/lcore,-1"):
            a = t.ask(bad)
            if a is not None:
                raise Fail(f"node {i}: {bad} names nothing, yet answered {a}")
        if not isinstance(t.ask("/ethdev/list"), list):
            raise Fail(f"node {i}: DPDK's own /ethdev/list is missing")
        helps = t.ask("/help,/lcraft/group")
        if not helps or "group id" not in str(helps):
            raise Fail(f"node {i}: /help,/lcraft/group = {helps}")

    before = {i: (tel[i].ask("/lcraft/group,1"), tel[i].ask("/lcraft/lcore,0")) for i in cl.ids}
    for k in range(50):
        p = subprocess.run([args.cli, "--config", cl.config, "put", f"tel-{k}", "v"],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise Fail(f"put tel-{k}: exit {p.returncode}: {p.stderr.strip()}")
    deadline = time.monotonic() + 5
    for i in cl.ids:
        g0, l0 = before[i]
        while True:
            g, lc = tel[i].ask("/lcraft/group,1"), tel[i].ask("/lcraft/lcore,0")
            if g["applied"] >= g0["committed"] + 50 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if g["committed"] < g0["committed"] + 50 or g["applied"] < g0["committed"] + 50:
            raise Fail(f"node {i}: 50 writes later /lcraft/group,1 shows committed "
                       f"{g0['committed']} -> {g['committed']}, applied {g['applied']}")
        ports = sorted(k for k in lc if k.startswith("dpdk/ports/") and k.endswith("/name"))
        if len(ports) != 2:
            raise Fail(f"node {i}: /lcraft/lcore,0 shows ports {ports}, not one per peer")
        for key in ("rx_dgrams", "tx_dgrams", "net/responds" if i != lead else "net/replies"):
            if lc.get(key, 0) <= l0.get(key, 0):
                raise Fail(f"node {i}: /lcraft/lcore,0 {key} did not move with 50 writes "
                           f"({l0.get(key)} -> {lc.get(key)})")
        sent = sum(lc[p.replace("/name", "/opackets")] for p in ports)
        if sent < lc["tx_dgrams"]:
            raise Fail(f"node {i}: its ports sent {sent} packets, fewer than its "
                       f"{lc['tx_dgrams']} datagrams")
        if "truncated" in g or "truncated" in lc:
            raise Fail(f"node {i}: metrics left out of telemetry: group {g.get('truncated')}, "
                       f"lcore {lc.get('truncated')}")
        say(f"node {i}: {g['role']}, committed {g0['committed']} -> {g['committed']}, "
            f"datagrams out {l0['tx_dgrams']} -> {lc['tx_dgrams']}, "
            f"{len(g) + len(lc)} telemetry entries")
    cl.stop_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--node", required=True, help="the lcraft-node executable")
    ap.add_argument("--cli", required=True, help="the lcraft-cli executable")
    ap.add_argument("--dpdk", choices=["yes", "no"], default="no",
                    help="whether lcraft-node was built with DPDK")
    return run_main("telemetry", test, ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
