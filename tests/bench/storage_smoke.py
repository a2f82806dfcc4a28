#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""lcraft-storage-bench end to end, briefly (a smoke test, not a timed one): a short
run of group-64b in three rounds (no fio: that test's target is its own entries per
second) prints one JSON line per run and, after them, one summary line per target:
the median over the rounds of the runs' figures, judged against the target. With fio
installed, qd1 in two rounds too (a ratio to fio, an even count's median). Bad flags
(no rounds, an alignment named twice) are refused with exit status 1 and a sentence.

  storage_smoke.py --bench build/bench/lcraft-storage-bench [--dir /var/tmp]

Exit status: 0 passed, 1 failed (the reason is the last line).
"""
import argparse
import json
import shutil
import statistics
import subprocess
import sys


def fail(why):
    print(why)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--dir", default="/var/tmp")
    a = ap.parse_args()

    for bad, flag in ((["--rounds", "0"], "--rounds"), (["--block-bytes", "512,512"],
                                                         "--block-bytes")):
        p = subprocess.run([a.bench, "--dir", a.dir] + bad, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        if p.returncode == 0 or flag not in p.stderr:
            fail(f"{' '.join(bad)} was not refused with a sentence: {p.returncode} "
                 f"{p.stderr!r}")

    cases = [("group-64b", 3, ["--no-fio"])]
    if shutil.which("fio"):
        cases.append(("qd1", 2, []))
    else:
        print("fio is not installed: qd1 against fio is not run")
    for test, rounds, extra in cases:
        check(a, test, rounds, extra)
    print("storage: passed")


def check(a, test, rounds, extra):
    cmd = [a.bench, "--dir", a.dir, "--mode", "direct-dsync", "--test", test,
           "--seconds", "0.3", "--rounds", str(rounds), "--json"] + extra
    print("running:", " ".join(cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=240)
    if p.returncode != 0:
        fail(f"exit status {p.returncode}: {p.stderr[-2000:]}")
    lines = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    runs = [j for j in lines if "summary" not in j]
    sums = [j for j in lines if j.get("summary") == "target"]
    if "targets (direct-dsync), the median over the rounds" not in p.stdout:
        fail("no targets paragraph in the text output")
    mine = [r for r in runs if r.get("test") == test and r.get("mode") == "direct-dsync"]
    if len(mine) != rounds:
        fail(f"{test}: {len(mine)} runs, want {rounds} (one per round)")
    s = [j for j in sums if j["test"] == test]
    if len(s) != 1:
        fail(f"{test}: {len(s)} summary lines, want 1")
    s = s[0]
    key = "ops_per_s" if test == "group-64b" else "ratio"
    figures = [r[key] for r in mine]
    if s["rounds"] != rounds or s["figure"] != ("entries_per_s" if key == "ops_per_s" else key):
        fail(f"{test}: summary {s}")
    med = statistics.median(figures)
    if abs(s["median"] - med) > 1e-3 * max(1.0, abs(med)) or \
            abs(s["min"] - min(figures)) > 1e-3 * max(1.0, abs(min(figures))) or \
            abs(s["max"] - max(figures)) > 1e-3 * max(1.0, abs(max(figures))):
        fail(f"{test}: summary {s} is not the median/min/max of {figures}")
    if s["target_met"] != (s["median"] >= s["target"]):
        fail(f"{test}: target_met {s['target_met']} against median {s['median']} "
             f"and target {s['target']}")
    print(f"{test}: median {s['median']:.4g} of {[round(x, 4) for x in figures]}, "
          f"target {s['target']}, met {s['target_met']}")


if __name__ == "__main__":
    main()
