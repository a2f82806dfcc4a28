#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""lcraft-bench end to end, briefly (a smoke test, not a timed one): every mode that
is built runs a short sweep and prints, for each run, one JSON line with every field
the peer harnesses and docs/benchmarks.md rely on, with values that hang together;
bad flags are refused with exit status 2 and a sentence. dpdk: --mode dpdk-memif,
with its bare memif floor measured in each run and the ratio to it (skipped where
the build has no DPDK, or where EAL does not come up for a user who is not root);
then, as root, --mode dpdk-afpacket and dpdk-afxdp the same way, their veths and
bridge gone afterwards (without root: refused, saying so).

  bench_smoke.py socket|engine|dpdk|usage --bench build/lcraft-bench

Exit status: 0 passed, 1 failed (the reason is the last line), 77 skipped.
"""
import argparse
import json
import os
import subprocess
import sys

COMMON = ["engine", "mode", "replicas", "nodes", "groups", "lcores", "durability", "clients",
          "rate", "size", "batch", "seconds", "warmup_s", "window_s", "ops", "committed",
          "ops_per_s", "entries_per_s", "mb_per_s", "lat_us", "lat_cdf_us", "cpu",
          "fsyncs_per_s", "entries_per_fsync", "datagrams_per_s", "retransmits",
          "allocs_per_entry", "floor", "leader_id", "election_ms", "errors", "ok", "transport",
          "entries_per_datagram", "floor_dpdk_rtt_p50_us", "floor_dpdk_rtt_p99_us",
          "floor_dpdk_rtt_nap_p50_us", "floor_dpdk_pps", "ratio_p50_to_dpdk_rtt",
          "ratio_p50_to_append"]
DPDK_FLOOR = ["floor_dpdk_rtt_p50_us", "floor_dpdk_rtt_p99_us", "floor_dpdk_pps",
              "ratio_p50_to_dpdk_rtt"]


LAST_STDERR = []


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def check_line(d, mode, clients):
    missing = [k for k in COMMON if k not in d]
    if missing:
        fail(f"{mode}: fields missing: {missing}")
    if d["engine"] != "lcraft" or d["mode"] != mode or d["clients"] != clients:
        fail(f"{mode}: wrong engine/mode/clients: {d}")
    if d["ok"] is not True or d["errors"] != 0 or d["ops"] <= 0:
        fail(f"{mode} clients={clients}: not ok: {d}")
    lat = d["lat_us"]
    for k in ("p50", "p90", "p99", "p999", "max", "min", "mean"):
        if not isinstance(lat.get(k), (int, float)) or lat[k] <= 0:
            fail(f"{mode}: lat_us.{k} is {lat.get(k)}")
    if not lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]:
        fail(f"{mode}: latency percentiles out of order: {lat}")
    cdf = d["lat_cdf_us"]
    if [q for q, _ in cdf] != sorted(q for q, _ in cdf) or any(
            cdf[i][1] > cdf[i + 1][1] for i in range(len(cdf) - 1)):
        fail(f"{mode}: lat_cdf_us not monotonic: {cdf}")
    if abs(d["ops_per_s"] * d["window_s"] - d["ops"]) > 1 + 1e-3 * d["ops"]:
        fail(f"{mode}: ops_per_s x window_s != ops: {d['ops_per_s']} x {d['window_s']}")
    if d["committed"] != d["ops"] * d["batch"]:
        fail(f"{mode}: committed != ops x batch")
    if d["cpu"]["cores"] <= 0:
        fail(f"{mode}: cpu.cores {d['cpu']}")
    if mode in ("socket", "dpdk-memif", "dpdk-afpacket"):
        for k in ("fsyncs_per_s", "entries_per_fsync", "datagrams_per_s",
                  "entries_per_datagram"):
            if not isinstance(d[k], (int, float)) or d[k] <= 0:
                fail(f"{mode}: {k} is {d[k]}")
        if d["entries_per_fsync"] < 0.99:
            fail(f"{mode}: fewer than one entry per durable write: {d['entries_per_fsync']}")
        if d["ratio_p50_to_append"] is None or d["ratio_p50_to_append"] <= 0:
            fail(f"{mode}: ratio_p50_to_append is {d['ratio_p50_to_append']}")
    if mode.startswith("dpdk-"):
        if d["transport"] != "udp-" + mode:
            fail(f"{mode}: transport is {d['transport']}")
        for k in DPDK_FLOOR + ["floor_dpdk_rtt_nap_p50_us"]:
            if not isinstance(d[k], (int, float)) or d[k] <= 0:
                fail(f"{mode}: {k} is {d[k]}")
        if d["floor_dpdk_rtt_p50_us"] > d["floor_dpdk_rtt_p99_us"]:
            fail(f"{mode}: floor p50 above p99: {d['floor_dpdk_rtt_p50_us']}")
        want = d["lat_us"]["p50"] / d["floor_dpdk_rtt_p50_us"]
        if abs(d["ratio_p50_to_dpdk_rtt"] - want) > 0.01 * want + 0.02:
            fail(f"{mode}: ratio_p50_to_dpdk_rtt {d['ratio_p50_to_dpdk_rtt']}, "
                 f"p50 / floor is {want:.2f}")
    else:
        for k in DPDK_FLOOR:
            if d[k] is not None:
                fail(f"{mode}: {k} is {d[k]}, not null")
    if d["allocs_per_entry"] is not None and d["allocs_per_entry"] < 0:
        fail(f"{mode}: allocs_per_entry {d['allocs_per_entry']}")
    if mode != "engine":
        check_stages(d, mode)


def check_stages(d, mode):
    """--trace: every stage of a commit was seen, and they hang together."""
    st = d.get("stages_us")
    if not st:
        fail(f"{mode}: --trace gave no stages_us")
    for k, v in st.items():
        if k.endswith("_rx_delay") and mode != "socket":
            continue  # kernel sockets' receive timestamps: DPDK ports have none
        if v["count"] <= 0 or not 0 <= v["p50"] <= v["p99"]:
            fail(f"{mode}: stage {k}: {v}")
    # A commit needs a majority: the leader's write or a round trip at least
    # (the histograms' buckets are within 1 %).
    first = min(st["leader_durable"]["p50"], st["replication_rtt"]["p50"])
    if st["commit"]["p50"] < 0.98 * first:
        fail(f"{mode}: commit p50 {st['commit']['p50']} below both the leader's write "
             f"and the round trip ({first})")
    # The round trip holds the follower's own work.
    if st["replication_rtt"]["p50"] < 0.98 * st["follower_durable"]["p50"]:
        fail(f"{mode}: round trip p50 {st['replication_rtt']['p50']} below the follower's "
             f"write p50 {st['follower_durable']['p50']}")
    # Every answered operation was committed: the stages count at least the window's.
    if d["clients"] == 1 and (st["commit"]["count"] < d["ops"] or
                              st["apply"]["count"] < d["ops"]):
        fail(f"{mode}: fewer commits traced than operations: {st['commit']} for {d['ops']}")


def run_sweep(bench, mode, extra):
    clients = [1, 16]
    cmd = [bench, "--mode", mode, "--clients", ",".join(map(str, clients)), "--seconds", "1",
           "--warmup", "0.3", "--quiet"] + (["--trace"] if mode != "engine" else []) + extra
    print(" ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=120)
    print(p.stdout, p.stderr, sep="\n", flush=True)
    LAST_STDERR[:] = [p.stderr]
    if p.returncode != 0:
        fail(f"{mode}: exit {p.returncode}")
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    if len(lines) != len(clients):
        fail(f"{mode}: {len(lines)} JSON lines for {len(clients)} runs")
    for d, c in zip(lines, clients):
        check_line(d, mode, c)
    if mode != "engine" and "floor" not in p.stdout:
        fail(f"{mode}: the table does not show the floors")
    if mode != "engine" and "commit timeline" not in p.stdout or (
            mode != "engine" and "* the critical path" not in p.stdout):
        fail(f"{mode}: --trace printed no stage table with its critical path")
    floor_name = {"dpdk-memif": "bare DPDK memif", "dpdk-afpacket": "bare DPDK af_packet",
                  "dpdk-afxdp": "bare DPDK af_xdp"}
    if mode in floor_name and floor_name[mode] not in p.stdout:
        fail(f"{mode}: the table does not show the bare floor")


def usage(bench):
    # A build without DPDK says that first.
    for args, words in ((["--mode", "dpdk-afxdp", "--replicas", "1"],
                         ("3 or 5", "this build has no DPDK")),
                        (["--mode", "dpdk-memif", "--replicas", "1"],
                         ("3 or 5", "this build has no DPDK")),
                        (["--replicas", "2"], "1, 3 or 5"),
                        (["--clients", "0"], "clients"),
                        (["--durability", "maybe"], "fsync or none"),
                        (["--bogus"], "usage")):
        p = subprocess.run([bench] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        if isinstance(words, str):
            words = (words,)
        if p.returncode != 2 or not any(w in p.stderr for w in words):
            fail(f"{args}: exit {p.returncode}, stderr {p.stderr.strip()!r} (want 2 and "
                 f"{words!r})")
    print("usage errors: each refused with exit 2 and a sentence")


def dpdk(bench):
    p = subprocess.run([bench, "--mode", "dpdk-memif", "--replicas", "1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    if "this build has no DPDK" in p.stderr:
        print("skipped: this build has no DPDK (meson found no libdpdk, or -Ddpdk=disabled)")
        sys.exit(77)
    try:
        run_sweep(bench, "dpdk-memif", ["--dir", "/var/tmp"])
    except SystemExit as e:
        # Without root, EAL may not get the memory it wants (memlock limits):
        # skipped, saying so, rather than failed.
        if e.code == 1 and os.geteuid() != 0 and LAST_STDERR and "EAL" in LAST_STDERR[0]:
            print("skipped: DPDK's EAL did not come up for a user who is not root; run as "
                  "root")
            sys.exit(77)
        raise
    for mode in ("dpdk-afpacket", "dpdk-afxdp"):
        if os.geteuid() != 0:
            p = subprocess.run([bench, "--mode", mode], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=30)
            if p.returncode != 2 or "as root" not in p.stderr:
                fail(f"{mode} without root: exit {p.returncode}, {p.stderr.strip()!r}")
            print(f"{mode}: not root, refused as it should be (not run)")
            continue
        before = links()
        run_sweep(bench, mode, ["--dir", "/var/tmp"])
        left = sorted(set(links()) - set(before))
        if left:
            fail(f"{mode} left interfaces behind: {left}")


def links():
    """The names of this host's network interfaces that lcraft-bench makes (lcb...)."""
    p = subprocess.run(["ip", "-o", "link"], stdout=subprocess.PIPE, text=True, timeout=30)
    return [ln.split(":")[1].strip().split("@")[0] for ln in p.stdout.splitlines()
            if ":" in ln and ln.split(":")[1].strip().startswith("lcb")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["socket", "engine", "dpdk", "usage"])
    ap.add_argument("--bench", required=True)
    a = ap.parse_args()
    if a.what == "usage":
        usage(a.bench)
    elif a.what == "socket":
        run_sweep(a.bench, "socket", ["--dir", "/var/tmp"])
    elif a.what == "dpdk":
        dpdk(a.bench)
    else:
        p = subprocess.run([a.bench, "--mode", "engine", "--clients", "1", "--seconds", "0.1",
                            "--warmup", "0", "--quiet"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        if "not built in" in p.stderr:
            print("engine mode is not built into this lcraft-bench")
            sys.exit(77)
        run_sweep(a.bench, "engine", [])
    print(f"{a.what}: passed")


if __name__ == "__main__":
    main()
