#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""lcraft-node's metrics for Prometheus ([node] metrics_listen): served, valid, moving.

  metrics_test.py --node BIN --cli BIN

First, bad metrics_listen values must stop lcraft-node at start with a config
error naming the key and the line (exit 2), and a port already taken with a
message naming the address (exit 1). Then three nodes on loopback, each with
metrics_listen = 127.0.0.1:<prefix>{id}, are scraped with urllib: every family
has one HELP and one TYPE line, each group one role at 1, the leader a matched
index and a lag per follower, histograms whose buckets rise to their count;
`promtool check metrics` accepts the page (that check is skipped, saying so,
where promtool is not installed: Debian's package prometheus has it). After
writes with lcraft-cli the numbers must have moved: the leader's committed
index, proposals, commit latency count and bytes written, every node's applied
index. Other paths answer 404, other methods 405, oversized headers an error.
The nodes then stop cleanly on SIGTERM, the HTTP thread with them.

Exit status: 0 passed, 1 failed (reason on the last line), 77 skipped.
"""
import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_test import Fail, loopback_cluster, run_main, say  # noqa: E402

WRITES = 40
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def free_tcp_prefix():
    """A number P such that TCP ports P1, P2 and P3 (P * 10 + id) are free on loopback."""
    for _ in range(200):
        prefix = random.randrange(1100, 3200)
        socks = []
        try:
            for i in (1, 2, 3):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", prefix * 10 + i))
            return prefix
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise Fail("no free TCP ports found")


def set_listen(cl, value):
    """Rewrite the cluster's file with [node] metrics_listen = value; its line number."""
    cl.write_config()
    with open(cl.config) as f:
        lines = f.read().split("\n")
    at = lines.index("[node]") + 1
    lines.insert(at, f"metrics_listen = {value}")
    with open(cl.config, "w") as f:
        f.write("\n".join(lines))
    return at + 1


def start_fails(cl, status, words, what):
    """Node 1 must exit `status` within 10 s, its message holding every one of `words`."""
    try:
        # Alone, a first start's rejoin check would wait for a majority of the
        # voters to answer: --force-rejoin skips it (what is tested comes after).
        p = subprocess.run([cl.node_bin, "--config", cl.config, "--id", "1", "--force-rejoin"],
                           capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise Fail(f"{what}: lcraft-node still runs after 10 s")
    out = (p.stdout + p.stderr).strip()
    if p.returncode != status or not all(w in out for w in words):
        raise Fail(f"{what}: exit {p.returncode} (want {status}), said: {out[-300:]!r} "
                   f"(want {words})")
    say(f"{what}: exit {status}: {out.splitlines()[-1]}")


def bad_values(cl):
    for value, why in (("127.0.0.1", "expected host:port"),
                       ("127.0.0.1:0", "port"),
                       ("127.0.0.1:70000", "port"),
                       ("::1:9100", "brackets"),
                       ("[::1:9100", "]"),
                       ("bad host:9100", "host"),
                       ("127.0.0.1:9999{id}", "{id} replaced")):
        line = set_listen(cl, value)
        start_fails(cl, 2, [f"cluster.ini:{line}:", "metrics_listen", why],
                    f"metrics_listen = {value}")
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        set_listen(cl, f"127.0.0.1:{port}")
        start_fails(cl, 1, [f"127.0.0.1:{port}", "cannot listen"], "metrics_listen on a taken port")
    finally:
        busy.close()


def http(url, method="GET", headers=None):
    """(status, body) of one request."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def parse(text, where):
    """{(name, labels): value} of a page, checking one HELP and TYPE per family, families
    in one block each, and the content of every line."""
    samples, helps, types, seen, current = {}, set(), {}, [], None
    for n, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            name = line.split(" ")[2]
            kind = helps if line.startswith("# HELP ") else types
            if name in kind:
                raise Fail(f"{where}:{n}: a second {line[:6]} for {name}")
            if kind is helps:
                helps.add(name)
            else:
                types[name] = line.split(" ")[3]
            if name != current:
                if name in seen:
                    raise Fail(f"{where}:{n}: family {name} in two places")
                seen.append(name)
                current = name
            continue
        m = SAMPLE.match(line)
        if not m:
            raise Fail(f"{where}:{n}: not a sample line: {line!r}")
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        if family != current:
            raise Fail(f"{where}:{n}: {name} outside its family's block ({current})")
        if (name, labels) in samples:
            raise Fail(f"{where}:{n}: {name}{labels} twice")
        samples[(name, labels)] = value
    for name in seen:
        if name not in helps or name not in types:
            raise Fail(f"{where}: family {name} lacks its HELP or TYPE line")
    return samples, types


def value(samples, name, **labels):
    want = {f'{k}="{v}"' for k, v in labels.items()}
    found = [v for (n, ls), v in samples.items()
             if n == name and want <= set(ls.strip("{}").split(","))]
    if len(found) != 1:
        raise Fail(f"{name}{labels}: {len(found)} samples, want 1")
    return found[0]


def check_histograms(samples, types, where):
    for fam, kind in types.items():
        if kind != "histogram":
            continue
        by_series = {}
        for (n, ls), v in samples.items():
            if n == fam + "_bucket":
                key = re.sub(r',?le="[^"]*"', "", ls)
                le = re.search(r'le="([^"]*)"', ls).group(1)
                by_series.setdefault(key, []).append((float(le), v))
        for key, buckets in by_series.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            if counts != sorted(counts) or buckets[-1][0] != float("inf"):
                raise Fail(f"{where}: {fam}{key}: buckets do not rise to +Inf: {buckets}")
            if counts[-1] != samples[(fam + "_count", key)]:
                raise Fail(f"{where}: {fam}{key}: +Inf {counts[-1]} != count "
                           f"{samples[(fam + '_count', key)]}")


def scrape(cl, port, i):
    status, body = http(f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        raise Fail(f"node {i}: GET /metrics answered {status}: {body[:200]}")
    samples, types = parse(body, f"node {i}")
    check_histograms(samples, types, f"node {i}")
    return body, samples


def promtool(body, where):
    tool = shutil.which("promtool")
    if not tool:
        say("promtool check skipped: promtool is not installed (Debian: apt-get install "
            "prometheus)")
        return
    p = subprocess.run([tool, "check", "metrics"], input=body, capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0:
        raise Fail(f"{where}: promtool check metrics failed: {(p.stdout + p.stderr)[-600:]}")
    say(f"{where}: promtool check metrics: ok")


def test(args, tmp, cleanups):
    cl = loopback_cluster(args, tmp, cleanups)
    bad_values(cl)

    prefix = free_tcp_prefix()
    set_listen(cl, f"127.0.0.1:{prefix}{{id}}")
    port = lambda i: prefix * 10 + i  # noqa: E731
    cl.start_all()
    lead, term, _ = cl.wait_leader(cl.ids, 10)
    say(f"leader {lead} (term {term}); metrics on ports {[port(i) for i in cl.ids]}")

    before = {}
    for i in cl.ids:
        body, s = scrape(cl, port(i), i)
        before[i] = s
        roles = [r for r in ("follower", "candidate", "leader", "learner", "stopped")
                 if value(s, "lcraft_role", group=1, role=r) == 1]
        if roles != (["leader"] if i == lead else ["follower"]):
            raise Fail(f"node {i}: lcraft_role at 1 for {roles}")
        if value(s, "lcraft_term", group=1) < 1 or value(s, "lcraft_leader_id", group=1) != lead:
            raise Fail(f"node {i}: term or leader id wrong")
        if i == lead:
            promtool(body, f"node {i}")
    for p in (i for i in cl.ids if i != lead):
        value(before[lead], "lcraft_follower_matched_index", group=1, peer=p)
        value(before[lead], "lcraft_follower_lag_entries", group=1, peer=p)

    for k in range(WRITES):
        pr = subprocess.run([cl.cli_bin, "--config", cl.config, "--timeout", "3000", "put",
                             f"k{k}", "v" * 100], capture_output=True, text=True, timeout=15)
        if pr.returncode != 0:
            raise Fail(f"put k{k}: exit {pr.returncode}: {pr.stderr.strip()}")

    b, a = before[lead], None
    for _ in range(100):  # the followers apply within a heartbeat or two
        _, a = scrape(cl, port(lead), lead)
        done = all(value(scrape(cl, port(i), i)[1], "lcraft_applied_index", group=1) >=
                   value(b, "lcraft_committed_index", group=1) + WRITES for i in cl.ids)
        if done:
            break
        time.sleep(0.05)
    else:
        raise Fail(f"the applied index of every node did not reach {WRITES} more")
    for name, at_least in (("lcraft_committed_index", WRITES), ("lcraft_proposals_total", WRITES),
                           ("lcraft_commit_latency_seconds_count", WRITES),
                           ("lcraft_storage_written_bytes_total", WRITES * 100),
                           ("lcraft_storage_written_entries_total", WRITES)):
        moved = value(a, name, group=1) - value(b, name, group=1)
        if moved < at_least:
            raise Fail(f"leader {lead}: {name} moved by {moved}, want at least {at_least}")
        say(f"leader {lead}: {name} +{moved:.0f}")
    rx = value(a, "lcraft_client_datagrams_total", direction="received")
    if rx < 1:
        raise Fail("lcraft_client_datagrams_total{direction=received} did not count the puts")
    body, _ = scrape(cl, port(lead), lead)
    promtool(body, f"node {lead} after {WRITES} writes")

    for url, method, headers, want, what in (
            ("/", "GET", None, (404,), "GET /"),
            ("/metricsx", "GET", None, (404,), "GET /metricsx"),
            ("/metrics", "POST", None, (405,), "POST /metrics"),
            ("/metrics", "PUT", None, (405,), "PUT /metrics"),
            ("/metrics", "GET", {"X-Big": "x" * 40000}, (413, 414, 431, 400), "40 KB of headers")):
        try:
            status, _ = http(f"http://127.0.0.1:{port(lead)}{url}", method, headers)
        except (ConnectionError, urllib.error.URLError):
            status = "closed"  # the server may close instead of answering
        if status not in want and not (status == "closed" and headers):
            raise Fail(f"{what}: answered {status}, want {want}")
        say(f"{what}: {status}")
    # Still serving after all that.
    scrape(cl, port(lead), lead)
    cl.stop_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--node", required=True)
    ap.add_argument("--cli", required=True)
    return run_main("metrics", test, ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
