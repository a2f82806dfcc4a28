#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The client protocol of lcraft-node as docs/wire-protocol.md states it, byte by byte.

  client_protocol_test.py --node BIN [--cli BIN] [--auth] [--check NAME ...]

One lcraft-node (a one-node cluster with two groups, on loopback) gets crafted
CLIENT_REQ datagrams from this script, which encodes them itself from the
document (no lcraft code): the `to` rules, the group the answers carry, at-most-
once resends and the ERROR for an older request id, CAS from and to an empty
value (the EXPECT_VALUE flag), which operations answer NOT_FOUND, the requests
answered ERROR and counted under "refused", and every drop reason of the client
port counted under its own name in the STATS answer (with no answer sent), the
kernel's drops for a full receive queue (the node stopped by SIGSTOP) too.
SNAPSHOT builds a snapshot (the metrics then count it), on the leader or, with
THIS_NODE, on the node asked. The membership ops: MEMBERS' JSON, CHANGE_MEMBERSHIP
adding and removing a learner (node 2, a spare of the config), each refusal with
its own status (no voters, invalid targets, unknown nodes, a stale log id, a
change under way), a resend waiting for its change, TRANSFER_LEADER's answers,
and their malformed and out-of-bounds datagrams dropped under their names. With
--cli, lcraft-cli's CAS to and from the empty value (--expect-value), its
snapshot command and its membership commands' exit statuses. Last,
three times the node's room for requests in flight, to show answered requests
give their room back.

With --auth the node has a cluster key and a client key ([cluster] key_file,
client_key_file) and every check runs again with each request sealed and each
answer verified by this script, from docs/wire-protocol.md's "Client
authentication" alone (BLAKE2b from hashlib, the GMAC from Python's
cryptography package; skipped without it). Then check_auth: without the
trailer, with a bit changed, under another key, replayed (a PUT, a SNAPSHOT
that would build again), from an earlier start of the client: no answer,
nothing applied, each counted (bad_mac, short, replayed, old_boot); STATS
needs the key too; an answer verifies only for the client it answers; and
lcraft-cli, against a node of this script's, takes only answers sealed with
the key and bound to itself (another key, no trailer, an answer replayed from
another client: refused, exit 3).

Exit status: 0 passed, 1 failed (the reason is the last line of stdout, after
the tail of the node's log), 77 skipped (the reason is the last line). Files
go to a temporary directory under $LCR_TEST_DIR or /var/tmp, removed at the
end unless LCR_TEST_KEEP=1.
"""
import argparse
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77
T0 = time.monotonic()

# docs/wire-protocol.md
MAGIC = 0x5752434C
HDR = 56
CLIENT_REQ, CLIENT_RESP = 16, 17
PUT, GET, CAS, DELETE, STATS, SNAPSHOT = 1, 2, 3, 4, 5, 6
MEMBERS, CHANGE_MEMBERSHIP, TRANSFER_LEADER = 7, 8, 9
OK, NOT_FOUND, CAS_FAILED, NOT_LEADER, RETRY, ERROR = 0, 1, 2, 3, 4, 5
BUSY, UNKNOWN_NODE, INVALID, NO_VOTERS, TIMEOUT, TRANSFER_FAILED = 6, 7, 8, 9, 10, 11
STATUS = {0: "OK", 1: "NOT_FOUND", 2: "CAS_FAILED", 3: "NOT_LEADER", 4: "RETRY", 5: "ERROR",
          6: "BUSY", 7: "UNKNOWN_NODE", 8: "INVALID", 9: "NO_VOTERS", 10: "TIMEOUT",
          11: "TRANSFER_FAILED"}
EXPECT_VALUE = 0x01  # CLIENT_REQ byte 17, bit 0
THIS_NODE = 0x02  # CLIENT_REQ byte 17, bit 1 (SNAPSHOT only)
CLIENT_DGRAM_MAX = 65507
NODE = 1
SPARE = 2  # in [nodes], not a voter ([cluster] voters = 1), never started
GROUPS = 2


def say(msg):
    print(f"[{time.monotonic() - T0:7.3f}] {msg}", flush=True)


class Fail(Exception):
    """The node did not do what the document says."""


class Skip(Exception):
    """The test cannot run here."""


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def header(payload, cluster, group, frm=0, to=0, typ=CLIENT_REQ, flags=0, stream=0, seq=0,
           frag_index=0, frag_count=1, version=1, magic=MAGIC, length=None):
    """A datagram: the 56-byte header (CRC filled in) and the payload."""
    if length is None:
        length = len(payload)
    h = struct.pack("<IBBHQIIIIQQHHI", magic, version, typ, flags, cluster, group, frm, to,
                    length, stream, seq, frag_index, frag_count, 0)
    crc = crc32c(h + payload)
    return h[:52] + struct.pack("<I", crc) + payload


def req_payload(client, rid, op, key=b"", value=b"", expect=b"", flags=0, reserved=b"\0\0",
                lens=None):
    """A CLIENT_REQ payload; lens = (key_len, value_len, expect_len) to lie about them."""
    kl, vl, el = lens if lens else (len(key), len(value), len(expect))
    return (struct.pack("<QQBB2sIII", client, rid, op, flags, reserved, kl, vl, el) + key +
            value + expect)


def target(voters, learners=(), addrs=(), counts=None, reserved=0):
    """CHANGE_MEMBERSHIP's value: counts, reserved, voters, learners, then each address as
    node id, length, text; counts = (voters, learners, addrs) to lie about them."""
    nv, nl, na = counts if counts else (len(voters), len(learners), len(addrs))
    out = struct.pack("<IIII", nv, nl, na, reserved)
    out += b"".join(struct.pack("<I", i) for i in voters)
    out += b"".join(struct.pack("<I", i) for i in learners)
    for i, text in addrs:
        out += struct.pack("<II", i, len(text)) + text
    return out


def log_id(term, node, index, reserved=0):
    """The 24-byte log id: term, node, reserved, index."""
    return struct.pack("<QIIQ", term, node, reserved, index)


# ---- authentication (docs/wire-protocol.md, "Authentication", "Client authentication") ----

TRAILER = 32
CHANNEL_CLIENT, CHANNEL_ANSWER = 0x80000000, 0x40000000
LABEL = b"lcraft-mac-v1"


def aead_of(alg, key):
    """The AEAD whose tag over an empty plaintext is the MAC; None without cryptography."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    except ImportError:
        return None
    return AESGCM(key) if alg == "aes256gcm" else ChaCha20Poly1305(key)


def session_key(key, cluster, sender, boot):
    """K_s = BLAKE2b-256(key = the key, "lcraft-mac-v1" || cluster || sender || boot)."""
    return hashlib.blake2b(LABEL + struct.pack("<QQQ", cluster, sender, boot), key=key,
                           digest_size=32).digest()


def tag_of(aead, counter, channel, ad):
    return aead.encrypt(struct.pack("<QI", counter, channel), b"", ad)


class Sealer:
    """A client's requests, sealed: the sender is the payload's client id (bytes 56..63),
    the session key of (sender, boot), counters 1, 2, ... per sender, channel 0x80000000."""

    def __init__(self, key, cluster, alg="aes256gcm", boot=None):
        self.key, self.cluster, self.alg = key, cluster, alg
        self.boot = boot if boot is not None else time.time_ns()
        self.senders = {}  # sender -> [aead, last counter]

    def seal(self, d):
        sender = struct.unpack_from("<Q", d, HDR)[0] if len(d) >= HDR + 8 else 0
        st = self.senders.get(sender)
        if st is None:
            st = self.senders[sender] = [
                aead_of(self.alg, session_key(self.key, self.cluster, sender, self.boot)), 0]
        st[1] += 1
        t = d + struct.pack("<QQ", self.boot, st[1])
        return t + tag_of(st[0], st[1], CHANNEL_CLIENT, t)


class Opener:
    """A node's answers, verified: the sender is the header's `from` (bytes 20..23), the
    tag over the answer, boot, counter and the client id it answers (not sent), channel
    0x40000000; per node the current boot and the counters taken (older boots and counters
    taken before refused)."""

    def __init__(self, key, cluster, alg="aes256gcm"):
        self.key, self.cluster, self.alg = key, cluster, alg
        self.nodes = {}  # node -> [boot, aead, set of counters]

    def open(self, d, client):
        """(the answer without its trailer, None) or (None, the reason it is refused)."""
        if len(d) < HDR + TRAILER:
            return None, "short"
        node = struct.unpack_from("<I", d, 20)[0]
        boot, counter = struct.unpack_from("<QQ", d, len(d) - TRAILER)
        st = self.nodes.get(node)
        if st and boot < st[0]:
            return None, "old_boot"
        aead = st[1] if st and boot == st[0] else aead_of(
            self.alg, session_key(self.key, self.cluster, node, boot))
        want = tag_of(aead, counter, CHANNEL_ANSWER, d[:-16] + struct.pack("<Q", client))
        if not hmac.compare_digest(want, d[-16:]):
            return None, "bad_mac"
        if not st or boot > st[0]:
            st = self.nodes[node] = [boot, aead, set()]
        if counter in st[2]:
            return None, "replayed"
        st[2].add(counter)
        return d[:-TRAILER], None


class Answer:
    def __init__(self, hdr, rid, status, op, leader, value):
        self.hdr, self.id, self.status, self.op = hdr, rid, status, op
        self.leader, self.value = leader, value

    def __repr__(self):
        return (f"{STATUS.get(self.status, self.status)} id {self.id} op {self.op} "
                f"leader {self.leader} group {self.hdr['group']} value {self.value[:120]!r}")


def parse_answer(d, cluster):
    """A CLIENT_RESP datagram checked against the document; an Answer."""
    if len(d) < HDR + 24:
        raise Fail(f"an answer of {len(d)} bytes")
    (magic, version, typ, flags, cl, group, frm, to, length, stream, seq, fi, fc,
     crc) = struct.unpack("<IBBHQIIIIQQHHI", d[:HDR])
    if magic != MAGIC or version != 1 or typ != CLIENT_RESP or length != len(d) - HDR:
        raise Fail(f"a bad answer header: magic {magic:#x} version {version} type {typ}")
    if crc != crc32c(d[:52] + b"\0\0\0\0" + d[HDR:]):
        raise Fail("an answer with a bad CRC32C")
    if cl != cluster or frm != NODE or to != 0 or flags or stream or seq or fi != 0 or fc != 1:
        raise Fail(f"an answer header off the rules: cluster {cl} from {frm} to {to} "
                   f"flags {flags} stream {stream} seq {seq} fragment {fi}/{fc}")
    rid, status, op, res1, leader, vl, res2 = struct.unpack("<QBBHIII", d[HDR:HDR + 24])
    if (res1 or res2 or vl != len(d) - HDR - 24 or status > TRANSFER_FAILED or
            not 1 <= op <= TRANSFER_LEADER):
        raise Fail(f"a malformed answer payload: status {status} op {op} value_len {vl}")
    return Answer({"group": group}, rid, status, op, leader, d[HDR + 24:])


class Client:
    """Crafted datagrams to the node's client port; answers checked and parsed."""

    def __init__(self, cluster, port, key=None):
        self.cluster, self.addr = cluster, ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.client = random.randrange(1, 2**64)
        self.next = 0
        # With the client key: requests sealed, answers verified; the client id each
        # request id was sent with (an answer is bound to it).
        self.sealer = Sealer(key, cluster) if key else None
        self.opener = Opener(key, cluster) if key else None
        self.bound = {}
        self.sent = None  # the last datagram sent, as it went (replays)

    def rid(self):
        self.next += 1
        return self.next

    def send(self, d, raw=False):
        """Send d: sealed first when this client has the key (raw: as it is)."""
        if self.sealer and not raw:
            if len(d) >= HDR + 16:
                client, rid = struct.unpack_from("<QQ", d, HDR)
                self.bound[rid] = client
            d = self.sealer.seal(d)
        self.sent = d
        self.sock.sendto(d, self.addr)

    def answer(self, d):
        """A datagram received: verified and its trailer cut (with the key), then parsed."""
        if self.opener:
            rid = struct.unpack_from("<Q", d, HDR)[0] if len(d) >= HDR + 8 else 0
            plain, why = self.opener.open(d, self.bound.get(rid, self.client))
            if plain is None:
                raise Fail(f"an answer to request {rid} does not verify: {why}")
            d = plain
        return parse_answer(d, self.cluster)

    def recv(self, want_id, timeout=2.0):
        """The answer with request id want_id; other answers are returned too, in a list."""
        end = time.monotonic() + timeout
        others = []
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise Fail(f"no answer to request {want_id} within {timeout} s")
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(70000)
            except socket.timeout:
                continue
            a = self.answer(d)
            if a.id == want_id:
                return a, others
            others.append(a)

    def call(self, op, key=b"", value=b"", expect=b"", flags=0, group=1, to=0, rid=None,
             client=None, timeout=2.0):
        rid = self.rid() if rid is None else rid
        p = req_payload(self.client if client is None else client, rid, op, key, value, expect,
                        flags)
        self.send(header(p, self.cluster, group, to=to))
        a, others = self.recv(rid, timeout)
        if others:
            raise Fail(f"unexpected answers {others} before the one to request {rid}")
        if a.op != op:
            raise Fail(f"request {rid}: the answer echoes op {a.op}, not {op}")
        return a

    def stats(self, group=1):
        a = self.call(STATS, group=group)
        if a.status != OK:
            raise Fail(f"STATS: {a}")
        return json.loads(a.value)


def expect(a, status, value=None, what=""):
    if a.status != status or (value is not None and a.value != value):
        want = STATUS[status] + ("" if value is None else f" {value!r}")
        raise Fail(f"{what}: expected {want}, got {a}")


def expect_error(a, words, what):
    """ERROR with a message naming every one of words."""
    expect(a, ERROR, what=what)
    msg = a.value.decode(errors="replace")
    if not msg or any(w not in msg for w in words):
        raise Fail(f"{what}: the ERROR message {msg!r} should say {words}")
    say(f"{what}: ERROR \"{msg}\"")


# ---- the checks --------------------------------------------------------------------------

def wait_leader(c, timeout_s=10):
    """Until the node answers (its socket may not be bound yet) and every group takes a
    write."""
    deadline = time.monotonic() + timeout_s
    a = None
    group = 1
    while time.monotonic() < deadline:
        rid = c.rid()
        c.send(header(req_payload(c.client, rid, PUT, b"warm-up", b"1"), c.cluster, group))
        try:
            a, _ = c.recv(rid, timeout=0.2)
        except Fail:
            continue
        if a.status == OK:
            if group == GROUPS:
                return
            group += 1
            continue
        if a.status not in (NOT_LEADER, RETRY):
            break
        time.sleep(0.05)
    raise Fail(f"group {group} of the one-node cluster did not take a write within "
               f"{timeout_s} s: {a}")


def check_to(c, _env):
    """`to` is 0 (whoever receives it) or the receiving node's id; else ERROR, not applied."""
    expect(c.call(PUT, b"to", b"zero", to=0), OK, what="PUT with to = 0")
    expect(c.call(PUT, b"to", b"self", to=NODE), OK, what="PUT with to = the node's id")
    expect(c.call(GET, b"to", to=NODE), OK, b"self", what="GET with to = the node's id")
    for to in (2, 0xFFFFFFFF):
        a = c.call(PUT, b"to", b"other", to=to)
        expect_error(a, [f"node {to}", f"node {NODE}"], f"PUT with to = {to}")
        a = c.call(STATS, to=to)
        expect_error(a, [f"node {to}"], f"STATS with to = {to}")
    expect(c.call(GET, b"to"), OK, b"self", what="GET after the misaddressed PUTs")


def check_groups(c, _env):
    """The answer's header group is the request's: STATS and unknown groups included."""
    for g in (0, 1, 2, 7):
        a = c.call(STATS, group=g)
        expect(a, OK, what=f"STATS in group {g}")
        if a.hdr["group"] != g:
            raise Fail(f"STATS in group {g}: the answer carries group {a.hdr['group']}")
    for g in (0, GROUPS + 1, 0xFFFFFFFF):
        a = c.call(PUT, b"k", b"v", group=g)
        expect_error(a, [f"no group {g}"], f"PUT to group {g}")
        if a.hdr["group"] != g:
            raise Fail(f"PUT to group {g}: the answer carries group {a.hdr['group']}")
    a = c.call(PUT, b"g2", b"two", group=2)
    expect(a, OK, what="PUT in group 2")
    if a.hdr["group"] != 2:
        raise Fail(f"PUT in group 2: the answer carries group {a.hdr['group']}")
    expect(c.call(GET, b"g2", group=1), NOT_FOUND, what="GET in group 1 of group 2's key")


def check_resends(c, _env):
    """A resend with the same request id is applied at most once and gets the first outcome;
    an older id gets ERROR with a message and is not applied."""
    rid = c.rid()
    expect(c.call(CAS, b"once", b"a", rid=rid), OK, what="CAS absent -> a")
    expect(c.call(CAS, b"once", b"a", rid=rid), OK,
           what="the same CAS resent (same id): its first outcome")
    expect(c.call(GET, b"once"), OK, b"a", what="GET after the resent CAS")
    rid = c.rid()
    expect(c.call(DELETE, b"once", rid=rid), OK, what="DELETE")
    expect(c.call(DELETE, b"once", rid=rid), OK, what="the same DELETE resent: its first outcome")
    expect(c.call(PUT, b"once", b"b"), OK, what="PUT b")
    last = c.next
    a = c.call(PUT, b"once", b"stale", rid=last - 1)
    expect_error(a, [f"request id {last - 1}", "older", f"last applied {last}"],
                 "PUT with an older request id")
    expect(c.call(GET, b"once"), OK, b"b", what="GET after the older request")
    stale = c.stats()["kv"][0]["stale"]
    if stale < 1:
        raise Fail(f"kv stale counter {stale} after an older request id")


def check_cas_empty(c, _env):
    """CAS to and from an empty value; EXPECT_VALUE tells 'empty value' from 'absent'."""
    k = b"empty"
    expect(c.call(CAS, k, b""), OK, what="CAS absent -> empty value")
    expect(c.call(GET, k), OK, b"", what="GET of the empty value")
    expect(c.call(CAS, k, b"x"), CAS_FAILED, b"",
           what="CAS absent -> x (no flag) on the empty value")
    expect(c.call(CAS, k, b"x", flags=EXPECT_VALUE), OK, what="CAS empty value -> x (flag)")
    expect(c.call(GET, k), OK, b"x", what="GET after CAS from the empty value")
    expect(c.call(CAS, k, b"y", flags=EXPECT_VALUE), CAS_FAILED, b"x",
           what="CAS empty value -> y (flag) on x")
    expect(c.call(CAS, k, b"", b"x", flags=EXPECT_VALUE), OK, what="CAS x -> empty (flag)")
    expect(c.call(CAS, k, b"z", b"x"), CAS_FAILED, b"", what="CAS x -> z on the empty value")
    expect(c.call(DELETE, k), OK, what="DELETE of the empty value")
    expect(c.call(CAS, k, b"y", flags=EXPECT_VALUE), NOT_FOUND,
           what="CAS empty value -> y (flag) on an absent key")
    expect(c.call(GET, k), NOT_FOUND, what="GET after the failed CAS")


def check_not_found(c, _env):
    """NOT_FOUND: GET, DELETE and CAS (expecting a value) of an absent key; never PUT."""
    k = b"never-written"
    expect(c.call(GET, k), NOT_FOUND, b"", what="GET of an absent key")
    expect(c.call(DELETE, k), NOT_FOUND, b"", what="DELETE of an absent key")
    expect(c.call(CAS, k, b"v", b"w"), NOT_FOUND, b"", what="CAS w -> v of an absent key")
    expect(c.call(PUT, k, b"v"), OK, what="PUT of an absent key")


def check_refused(c, _env):
    """Requests answered ERROR (not applied), each counted under its reason."""
    before = c.stats()["client"]["refused"]
    expect_error(c.call(PUT, b"", b"v"), ["key"], "PUT with an empty key")
    expect_error(c.call(GET, b""), ["key"], "GET with an empty key")
    expect_error(c.call(DELETE, b"ids", client=0), ["client id"], "DELETE from client id 0")
    expect_error(c.call(PUT, b"ids", b"v", rid=0), ["request id"], "PUT with request id 0")
    expect(c.call(GET, b"ids"), NOT_FOUND, what="GET after the refused writes")
    after = c.stats()["client"]["refused"]
    want = {"not_for_us": 0, "no_group": 0, "key": 2, "ids": 2}
    got = {k: after[k] - before[k] for k in want}
    if got != want:
        raise Fail(f"refused counters went up by {got}, expected {want}")


def check_drops(c, env):
    """Each malformed datagram is dropped (no answer) and counted under its own reason."""
    cl, node_port = c.cluster, env["port"]
    good = req_payload(c.client, 999999, GET, b"k")
    cases = [
        ("short", b"LCRW\x01\x10"),
        ("magic", header(good, cl, 1, magic=0x12345678)),
        ("version", header(good, cl, 1, version=2)),
        ("length", header(good, cl, 1, length=len(good) + 1)),
        ("checksum", header(good, cl, 1)[:-1] + b"K"),
        ("cluster", header(good, cl ^ 1, 1)),
        ("type", header(good, cl, 1, typ=1)),            # a Raft VOTE_REQ
        ("type", header(good, cl, 1, typ=CLIENT_RESP)),  # an answer, sent to the node
        ("type", header(good, cl, 1, typ=99)),
        ("malformed", header(good, cl, 1, flags=0x8000)),
        ("malformed", header(good, cl, 1, stream=5, seq=0)),
        ("fragment", header(good, cl, 1, frag_count=0)),
        ("from", header(good, cl, 1, frm=2)),
        ("payload_length", header(good[:20], cl, 1)),
        ("payload_length", header(req_payload(1, 1, GET, b"k", lens=(2, 0, 0)), cl, 1)),
        ("payload_length", header(good + b"\0", cl, 1)),
        ("op", header(req_payload(1, 1, 0, b"k"), cl, 1)),
        ("op", header(req_payload(1, 1, 10, b"k"), cl, 1)),
        ("op", header(req_payload(1, 1, 255, b"k"), cl, 1)),
        ("flags", header(req_payload(1, 1, CAS, b"k", b"v", flags=0x80), cl, 1)),
        ("flags", header(req_payload(1, 1, PUT, b"k", b"v", flags=EXPECT_VALUE), cl, 1)),
        ("flags", header(req_payload(1, 1, GET, b"k", flags=THIS_NODE), cl, 1)),
        ("flags", header(req_payload(1, 1, SNAPSHOT, flags=EXPECT_VALUE), cl, 1)),
        ("reserved", header(req_payload(1, 1, GET, b"k", reserved=b"\0\1"), cl, 1)),
        ("too_long", header(req_payload(1, 1, GET, b"k" * 1025), cl, 1)),
        ("too_long", header(req_payload(1, 1, PUT, b"k", b"v" * 8193), cl, 1)),
        ("too_long", header(req_payload(1, 1, GET, b"k", lens=(0xFFFFFFFF, 0, 0)), cl, 1)),
        ("unused_field", header(req_payload(1, 1, GET, b"k", b"v"), cl, 1)),
        ("unused_field", header(req_payload(1, 1, PUT, b"k", b"v", b"e"), cl, 1)),
        ("unused_field", header(req_payload(1, 1, STATS, b"k"), cl, 1)),
        ("unused_field", header(req_payload(1, 1, SNAPSHOT, b"k"), cl, 1)),
    ] + membership_drops(cl)
    before = c.stats()["client"]
    big = None
    if socket.has_ipv6:
        # Over IPv6 a UDP payload may be 65,527 bytes: more than any client datagram.
        try:
            big = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            big.sendto(b"", ("::1", node_port))
        except OSError as e:
            say(f"no IPv6 loopback here ({e}): the oversized case is left out")
            big = None
    for name, d in cases:
        c.send(d)
    if big:
        big.sendto(header(b"\0" * (CLIENT_DGRAM_MAX - HDR + 1), cl, 1), ("::1", node_port))
        big.sendto(header(b"\0" * (65527 - HDR), cl, 1), ("::1", node_port))
        big.close()
    # The node reads its socket in order: once this is answered, all the above were seen.
    # (The empty IPv6 datagram sent first counts as short.)
    a = c.call(GET, b"after-the-drops")
    expect(a, NOT_FOUND, what="a good request after the bad ones")
    after = c.stats()["client"]
    want = {}
    for name, _ in cases:
        want[name] = want.get(name, 0) + 1
    if big is not None:
        want["oversized"] = 2
        want["short"] += 1
    got = {k: after["drops"].get(k, 0) - before["drops"].get(k, 0) for k in after["drops"]}
    got = {k: v for k, v in got.items() if v}
    if got != want:
        raise Fail(f"drop counters went up by {got}, expected {want}")
    total = after["dropped"] - before["dropped"]
    if total != sum(want.values()):
        raise Fail(f"'dropped' went up by {total}, the reasons by {sum(want.values())}")
    say(f"drops counted by reason: {json.dumps(got, sort_keys=True)}")


def check_overflow(c, env):
    """Datagrams the kernel dropped for a full receive queue count under rcvbuf_full."""
    before = c.stats()["client"]["drops"]
    n = 12000  # ~12 MB of skbs: beyond the 8 MiB a 4 MiB SO_RCVBUF can grow to
    bad = header(b"\0" * 1100, c.cluster, 1, magic=0x12345678)
    node = env["proc"]
    node.send_signal(signal.SIGSTOP)
    try:
        for _ in range(n):
            c.send(bad)
    finally:
        node.send_signal(signal.SIGCONT)
    tries = 0
    while True:  # the first copies may still find the queue full
        time.sleep(0.05)
        tries += 1
        rid = c.rid()
        c.send(header(req_payload(c.client, rid, GET, b"k"), c.cluster, 1))
        try:
            c.recv(rid, timeout=0.5)
            break
        except Fail:
            if tries == 10:
                raise
    after = c.stats()["client"]["drops"]
    full = after["rcvbuf_full"] - before["rcvbuf_full"]
    magic = after["magic"] - before["magic"]
    say(f"{n} datagrams sent to a stopped node: {magic} read and dropped (magic), {full} "
        f"dropped by the kernel (rcvbuf_full), {tries} tries of the next request")
    if full == 0 or not n <= magic + full <= n + tries - 1:
        raise Fail(f"{n} datagrams to a stopped node: magic {magic} + rcvbuf_full {full}")


def check_cli(_c, env):
    """lcraft-cli (bench/client.c) sets the flag byte and `to`, and reads the answers."""
    if not env["cli"]:
        say("check_cli: no --cli given, left out")
        return

    def cli(*words, want_rc=0, want_out=None):
        cmd = [env["cli"], "--config", env["config"], "--timeout", "3000", *words]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=10)
        if p.returncode != want_rc or (want_out is not None and p.stdout != want_out):
            raise Fail(f"{' '.join(words)}: exit {p.returncode}, stdout {p.stdout!r}, "
                       f"stderr {p.stderr.strip()!r}; expected exit {want_rc}, stdout "
                       f"{want_out!r}")
    cli("cas", "cli-empty", "", "", want_out="OK\n")
    cli("get", "cli-empty", want_out="\n")
    cli("cas", "cli-empty", "", "x", want_rc=1)  # "" without the flag: absent
    cli("--expect-value", "cas", "cli-empty", "", "x", want_out="OK\n")
    cli("get", "cli-empty", want_out="x\n")
    cli("--expect-value", "cas", "cli-empty", "", "y", want_rc=1)
    cli("--node", str(NODE), "put", "cli-to", "v", want_out="OK\n")
    cli("--expect-value", "put", "cli-to", "w", want_rc=2)
    cli("snapshot")
    cli("--node", str(NODE), "--group", "2", "snapshot")
    cli("snapshot", "extra", want_rc=2)

    # The membership commands and their exit statuses (lcraft-cli --help).
    spare = f"127.0.0.1:{env['spare_port']}"
    out = cli_out(env, "members")
    if json.loads(out)["voters"] != [NODE]:
        raise Fail(f"lcraft-cli members: {out!r}")
    cli("--node", str(NODE), "members")
    cli("members", "extra", want_rc=2)
    cli("add-learner", str(SPARE), spare, "--no-wait")
    if json.loads(cli_out(env, "members"))["learners"] != [SPARE]:
        raise Fail("lcraft-cli add-learner: node 2 is not a learner")
    # Node 2 never runs: it never catches up.
    cli("add-learner", str(SPARE), spare, "--catchup-ms", "300", want_rc=12)
    cli("add-learner", str(SPARE), "127.0.0.1:1", "--no-wait", want_rc=7)
    cli("add-learner", "x", spare, want_rc=2)
    cli("add-learner", str(SPARE), "nohost", want_rc=2)
    cli("add-learner", str(SPARE), spare, "--lag", want_rc=2)
    cli("add-learner", str(SPARE), spare, "--retain", want_rc=2)
    cli("change-membership", str(NODE))  # learner 2 stays
    if json.loads(cli_out(env, "members"))["learners"] != [SPARE]:
        raise Fail("lcraft-cli change-membership: learner 2 was not kept")
    cli("change-membership", "", want_rc=8)
    cli("change-membership", f"{NODE},5", want_rc=6)
    cli("change-membership", f"{NODE},{NODE}", want_rc=2)
    cli("change-membership", "0", want_rc=2)
    cli("remove-node", "5", want_rc=6)
    cli("remove-node", str(NODE), want_rc=8)
    cli("remove-node", str(SPARE))
    cli("transfer-leader", str(NODE))
    cli("transfer-leader", str(SPARE), want_rc=6)
    cli("--node", str(NODE), "transfer-leader", str(NODE), want_rc=2)
    if json.loads(cli_out(env, "members"))["learners"]:
        raise Fail("lcraft-cli remove-node: learner 2 is still there")


def cli_out(env, *words):
    p = subprocess.run([env["cli"], "--config", env["config"], "--timeout", "3000", *words],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
    if p.returncode != 0:
        raise Fail(f"{' '.join(words)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


# ---- the membership ops --------------------------------------------------------------------

def membership_drops(cl):
    """Malformed membership ops, each dropped under its own name (check_drops sends them)."""
    v = target([1])
    pl = lambda op, **kw: header(req_payload(1, 1, op, **kw), cl, 1)  # noqa: E731
    return [
        ("flags", pl(CHANGE_MEMBERSHIP, value=v, flags=THIS_NODE)),
        ("flags", pl(MEMBERS, flags=EXPECT_VALUE)),
        ("flags", pl(TRANSFER_LEADER, value=struct.pack("<I", 1), flags=THIS_NODE)),
        ("too_long", pl(CHANGE_MEMBERSHIP, value=v, lens=(0, 8193, 0))),
        ("unused_field", pl(MEMBERS, key=b"k")),
        ("unused_field", pl(MEMBERS, value=b"v")),
        ("unused_field", pl(CHANGE_MEMBERSHIP, key=b"k", value=v)),
        ("unused_field", pl(TRANSFER_LEADER, value=struct.pack("<I", 1), expect=b"e")),
        ("payload_length", pl(CHANGE_MEMBERSHIP, value=v, lens=(0, len(v) + 1, 0))),
        ("layout", pl(CHANGE_MEMBERSHIP)),                            # no target
        ("layout", pl(CHANGE_MEMBERSHIP, value=v[:15])),              # under 16 bytes
        ("layout", pl(CHANGE_MEMBERSHIP, value=v + b"\0")),           # a byte left over
        ("layout", pl(CHANGE_MEMBERSHIP, value=target([1], counts=(2, 0, 0)))),
        ("layout", pl(CHANGE_MEMBERSHIP, value=target(range(1, 18)))),  # 17 voters
        ("layout", pl(CHANGE_MEMBERSHIP, value=target([1], range(2, 19)))),  # 17 learners
        ("layout", pl(CHANGE_MEMBERSHIP, value=target([1], reserved=1))),
        ("layout", pl(CHANGE_MEMBERSHIP, value=target([1], [2], [(2, b"")]))),
        ("layout", pl(CHANGE_MEMBERSHIP, value=target([1], [2], [(2, b"1" * 64)]))),
        ("layout", pl(CHANGE_MEMBERSHIP, value=target([1], [2], [(2, b"127.0.0.1 :9")]))),
        ("layout", pl(CHANGE_MEMBERSHIP, value=target([1], [2], [(2, b"127.0.0.1:\x7f")]))),
        ("layout", pl(CHANGE_MEMBERSHIP, value=target([1], [2], [(2, b"a:1")],
                                                     counts=(1, 1, 17)))),
        ("layout", pl(CHANGE_MEMBERSHIP, value=v, expect=b"\0" * 8)),  # neither 0 nor 24
        ("layout", pl(CHANGE_MEMBERSHIP, value=v, expect=log_id(1, 1, 1, reserved=1))),
        ("layout", pl(TRANSFER_LEADER)),
        ("layout", pl(TRANSFER_LEADER, value=b"\1\0\0")),
        ("layout", pl(TRANSFER_LEADER, value=b"\1\0\0\0\0")),
        ("layout", pl(TRANSFER_LEADER, value=struct.pack("<I", 0))),
    ]


def members(c, group=1, flags=0):
    """MEMBERS (OK), its JSON checked against the document's keys."""
    a = c.call(MEMBERS, flags=flags, group=group)
    expect(a, OK, what=f"MEMBERS of group {group}")
    m = json.loads(a.value)
    for k in ("group", "node", "role", "leader", "term", "log_id", "joint", "committed",
              "voters", "configs", "learners", "last_index", "nodes", "held_state"):
        if k not in m:
            raise Fail(f"MEMBERS: no {k!r} in {m}")
    held = m["held_state"]
    if len(held) > 64 or held != sorted(set(held)) or not all(isinstance(i, int) for i in held):
        raise Fail(f"MEMBERS: held_state is not at most 64 ascending ids: {held}")
    if m["group"] != group or m["node"] != NODE:
        raise Fail(f"MEMBERS of group {group}: group {m['group']}, node {m['node']}")
    return m


def change(c, voters, learners=(), addrs=(), expect_id=b"", client=None, rid=None):
    return c.call(CHANGE_MEMBERSHIP, value=target(voters, learners, addrs), expect=expect_id,
                  client=client, rid=rid)


def check_membership(c, env):
    """MEMBERS, CHANGE_MEMBERSHIP and TRANSFER_LEADER: answers and refusals by status."""
    m = members(c)
    if m["voters"] != [NODE] or m["learners"] or not m["committed"] or m["joint"]:
        raise Fail(f"MEMBERS at the start: {m}")
    if m["log_id"] != {"term": 0, "node": 0, "index": 0}:
        raise Fail(f"MEMBERS: the config's membership has log id {m['log_id']}, not 0")
    me = m["nodes"][0]
    if me["id"] != NODE or me["addr"] != f"127.0.0.1:{env['raft_port']}" or "lag" not in me:
        raise Fail(f"MEMBERS: the leader's own entry {me}")
    m2 = members(c, group=2, flags=THIS_NODE)
    if m2["role"] != "leader" or m2["voters"] != [NODE]:
        raise Fail(f"MEMBERS of group 2 with THIS_NODE: {m2}")

    spare = (SPARE, f"127.0.0.1:{env['spare_port']}".encode())
    # Refusals, each with its status; nothing changes.
    refusals = [
        (NO_VOTERS, [], [SPARE], (), b"no voter"),
        (INVALID, [0], [], (), b"node id 0"),
        (INVALID, [NODE, NODE], [], (), b"twice"),
        (INVALID, [NODE], [NODE], (), b"twice"),
        (INVALID, [NODE], [], [spare], b"does not name"),
        (INVALID, [NODE], [SPARE], [(SPARE, b"127.0.0.1:1")], b"config"),
        (INVALID, [NODE], [SPARE], [spare, spare], b"two addresses"),
        (INVALID, [NODE], [SPARE], [(SPARE, b"not-an-address")], b"address"),
        (UNKNOWN_NODE, [NODE, SPARE], [], (), b"not a member"),
        (UNKNOWN_NODE, [NODE], [9], (), b"unknown"),
    ]
    for status, voters, learners, addrs, words in refusals:
        a = change(c, voters, learners, addrs)
        if a.status != status or words not in a.value:
            raise Fail(f"CHANGE_MEMBERSHIP voters {voters} learners {learners} addrs {addrs}: "
                       f"expected {STATUS[status]} saying {words!r}, got {a}")
    say(f"CHANGE_MEMBERSHIP: {len(refusals)} refusals, each with its status")
    a = c.call(CHANGE_MEMBERSHIP, value=target([NODE]), client=0)
    expect_error(a, ["client id"], "CHANGE_MEMBERSHIP from client id 0")
    expect(change(c, [NODE]), OK, what="CHANGE_MEMBERSHIP to the membership it is")
    if members(c)["log_id"]["index"] != 0:
        raise Fail("a CHANGE_MEMBERSHIP to the membership it is wrote an entry")

    # The spare as a learner (its address from the config; given, the same is fine).
    expect(change(c, [NODE], [SPARE], [spare], expect_id=log_id(0, 0, 0)), OK,
           what="CHANGE_MEMBERSHIP adding learner 2")
    m = members(c)
    if m["learners"] != [SPARE] or not m["committed"] or m["log_id"]["index"] == 0:
        raise Fail(f"MEMBERS after adding learner 2: {m}")
    a = change(c, [NODE], [], expect_id=log_id(0, 0, 0))
    expect(a, CAS_FAILED, what="CHANGE_MEMBERSHIP with the first membership's log id")
    now = json.loads(a.value)
    if now["learners"] != [SPARE] or now["log_id"] != m["log_id"]:
        raise Fail(f"CAS_FAILED carries {now}, not the membership now {m}")

    # Under way: the node stopped, a change, its resend and another client's change
    # queue up; read in one burst, the resend waits in the first copy's place (one
    # answer) and the other is BUSY.
    lid = m["log_id"]
    seen = log_id(lid["term"], lid["node"], lid["index"])
    rid = c.rid()
    first = header(req_payload(c.client, rid, CHANGE_MEMBERSHIP, value=target([NODE]),
                               expect=seen), c.cluster, 1)
    other_rid = c.rid()
    # Without a log id: the first change's entry is the effective membership by then,
    # and a log id would be refused as stale before BUSY is looked at.
    other = header(req_payload(c.client ^ 1, other_rid, CHANGE_MEMBERSHIP,
                               value=target([NODE], [SPARE])), c.cluster, 1)
    node = env["proc"]
    node.send_signal(signal.SIGSTOP)
    try:
        c.send(first)
        c.send(first)
        c.send(other)
    finally:
        node.send_signal(signal.SIGCONT)
    answers = {}
    end = time.monotonic() + 3
    while time.monotonic() < end and len(answers) < 3:
        c.sock.settimeout(max(0.01, min(0.5, end - time.monotonic())))
        try:
            a = c.answer(c.sock.recv(70000))
        except socket.timeout:
            if len(answers) == 2:
                break
            continue
        answers.setdefault(a.id, []).append(a)
    got = {i: [STATUS[a.status] for a in lst] for i, lst in answers.items()}
    if got != {rid: ["OK"], other_rid: ["BUSY"]}:
        raise Fail(f"a change, its resend and another change at once: answers {got}, "
                   f"expected OK once for request {rid} and BUSY for {other_rid}")
    say(f"a change and its resend: one OK; another client's change meanwhile: BUSY "
        f"({answers[other_rid][0].value.decode()!r})")
    m = members(c)
    if m["learners"] or not m["committed"]:
        raise Fail(f"MEMBERS after removing learner 2: {m}")
    expect(c.call(CHANGE_MEMBERSHIP, value=target([NODE]), expect=seen, rid=rid), OK,
           what="the same change resent after it ended: its outcome")

    # A node the config does not list, with its address (the membership carries it);
    # a name is refused (the nodes learn numeric addresses only).
    expect(change(c, [NODE], [9], [(9, b"127.0.0.1:9")]), OK,
           what="CHANGE_MEMBERSHIP adding learner 9 at 127.0.0.1:9 (not in the config)")
    m = members(c)
    if m["learners"] != [9] or m["nodes"][-1] != {"id": 9, "voter": False,
                                                   "addr": "127.0.0.1:9", "matched": 0,
                                                   "lag": m["last_index"]}:
        raise Fail(f"MEMBERS with learner 9: {m}")
    expect(change(c, [NODE]), OK, what="removing learner 9")
    a = change(c, [NODE], [9], [(9, b"localhost:9")])
    if a.status != INVALID:
        raise Fail(f"CHANGE_MEMBERSHIP with learner 9 at localhost:9: {a}")
    say(f"learner 9 at 127.0.0.1:9 added and removed; at localhost:9: INVALID "
        f"{a.value.decode()!r}")

    # TRANSFER_LEADER: to itself at once; to a node that is no voter refused.
    a = c.call(TRANSFER_LEADER, value=struct.pack("<I", NODE))
    if a.status != OK or a.leader != NODE:
        raise Fail(f"TRANSFER_LEADER to the leader itself: {a}")
    for to in (SPARE, 99):
        a = c.call(TRANSFER_LEADER, value=struct.pack("<I", to))
        if a.status != UNKNOWN_NODE or f"node {to}".encode() not in a.value:
            raise Fail(f"TRANSFER_LEADER to node {to}: {a}")
    expect(c.call(PUT, b"after-membership", b"1"), OK, what="a write after the membership ops")



def snapshot_id(a, what):
    """The OK answer to SNAPSHOT: the snapshot's last log id (index, term)."""
    expect(a, OK, what=what)
    if len(a.value) != 16:
        raise Fail(f"{what}: a value of {len(a.value)} bytes, not 16")
    return struct.unpack("<QQ", a.value)


def group_metrics(c, group):
    for lc in c.stats()["lcraft"]["lcores"]:
        for g in lc["groups"]:
            if g["group"] == group:
                return g
    raise Fail(f"no metrics of group {group}")


def check_snapshot(c, _env):
    """SNAPSHOT builds one now and answers with its last log id once built; the metrics
    count it; with nothing applied since, the same snapshot answers at once."""
    expect(c.call(PUT, b"snap", b"1"), OK, what="PUT before a snapshot")
    before = group_metrics(c, 1)
    index, term = snapshot_id(c.call(SNAPSHOT, timeout=12), "SNAPSHOT of group 1")
    after = group_metrics(c, 1)
    say(f"SNAPSHOT: index {index} term {term}; snapshots_built "
        f"{before['snapshots_built']} -> {after['snapshots_built']}")
    if after["snapshots_built"] < 1 or after["snapshots_built"] <= before["snapshots_built"]:
        raise Fail(f"snapshots_built {before['snapshots_built']} -> "
                   f"{after['snapshots_built']} after SNAPSHOT")
    if index < 1 or term < 1 or index > after["applied_index"]:
        raise Fail(f"SNAPSHOT answered index {index} term {term}; applied "
                   f"{after['applied_index']}")
    again = snapshot_id(c.call(SNAPSHOT, flags=THIS_NODE, timeout=12), "SNAPSHOT again")
    if again != (index, term):
        raise Fail(f"SNAPSHOT with nothing new applied: {again}, not {(index, term)}")
    expect(c.call(GET, b"snap"), OK, b"1", what="GET after the snapshot")
    a = c.call(SNAPSHOT, group=GROUPS + 1)
    expect_error(a, [f"no group {GROUPS + 1}"], "SNAPSHOT of a group not here")


def check_pool(c, _env):
    """The node holds at most 1,024 requests per group; every answer frees its room.

    Of each kind of request (a write, a read, a CAS with EXPECT_VALUE answered NOT_FOUND,
    a delete, a refusal) more than the node has room for, 256 at a time: each is
    answered and none is dropped as no_memory, so every way of answering gives the
    room back."""
    room = 1024 * GROUPS
    window = 256

    def one(kind, rid, key):
        """A request of `kind` with request id `rid`: (payload, to)."""
        other = random.randrange(1, 2**64)  # writes: a client each (one in flight)
        if kind == "put":
            return req_payload(other, rid, PUT, key, b"v"), 0
        if kind == "get":
            return req_payload(c.client, rid, GET, key), 0
        if kind == "cas":
            return req_payload(other, rid, CAS, b"pool-none", b"x", flags=EXPECT_VALUE), 0
        if kind == "delete":
            return req_payload(other, rid, DELETE, b"pool-none"), 0
        return req_payload(c.client, rid, GET, key), NODE + 1  # refused

    before = c.stats()["client"]["drops"]
    total = 0
    for kind in ("put", "get", "cas", "delete", "refused"):
        sent = 0
        while sent < room + window:
            want = set()
            for i in range(window):
                rid = c.rid()
                p, to = one(kind, rid, b"pool-%d" % (i % 64))
                c.send(header(p, c.cluster, 1 + i % GROUPS, to=to))
                want.add(rid)
            end = time.monotonic() + 5
            while want:
                left = end - time.monotonic()
                if left <= 0:
                    raise Fail(f"{kind}: {len(want)} of {window} requests unanswered after "
                               f"{sent} answered (dropped for want of room?)")
                c.sock.settimeout(left)
                try:
                    a = c.answer(c.sock.recv(70000))
                except socket.timeout:
                    continue
                if a.id not in want:
                    raise Fail(f"{kind}: an answer to no request of this window: {a}")
                want.discard(a.id)
            sent += window
        total += sent
    after = c.stats()["client"]["drops"]
    if after["no_memory"] != before["no_memory"]:
        raise Fail(f"no_memory went up by {after['no_memory'] - before['no_memory']} with "
                   f"{window} requests in flight: the node lost room for requests")
    say(f"{total} requests, {window} in flight at a time, more than the node's room "
        f"({room}) of each kind: all answered, none dropped as no_memory")


def check_stats_rate(c, _env):
    """STATS is answered at most 128 times a second (a bucket of 128): the rest is dropped
    and counted as stats_rate, so a forged sender cannot turn the port into an amplifier.

    400 STATS at once: at least 128 and at most 128 + 128/s of the time taken are answered
    (one fewer: the count before takes one),
    and the others are counted; after a second the bucket has refilled."""
    time.sleep(1.1)  # a full bucket
    before = c.stats()["client"]["drops"]["stats_rate"]
    n = 400
    t0 = time.monotonic()
    for _ in range(n):
        c.send(header(req_payload(c.client, c.rid(), STATS), c.cluster, 1))
    answered = 0
    c.sock.settimeout(0.5)
    try:
        while True:
            a = c.answer(c.sock.recv(70000))
            expect(a, OK, what="STATS")
            answered += 1
    except socket.timeout:
        pass
    took = time.monotonic() - t0 - 0.5
    time.sleep(1.1)
    after = c.stats()["client"]["drops"]["stats_rate"]
    # The c.stats() before took one of the 128 tokens.
    allowed = 127 + 128 * took + 2
    if answered < 127 or answered > allowed:
        raise Fail(f"{answered} of {n} STATS answered in {took:.3f} s: want 127..{allowed:.0f}")
    if after - before != n - answered:
        raise Fail(f"stats_rate went up by {after - before}, but {n - answered} of {n} "
                   f"STATS went unanswered")
    say(f"{n} STATS at once: {answered} answered in {took:.3f} s, {after - before} dropped "
        f"as stats_rate")


# ---- authentication (--auth) ---------------------------------------------------------------

def check_auth(c, env):
    """With the client key, a request without its trailer, with a bit changed, under another
    key, replayed, or from an earlier start of its client draws no answer, applies nothing
    and is counted under its reason; STATS needs the key too; an answer verifies only for the
    client it answers."""
    if not c.sealer:
        say("check_auth: the node has no client key (--auth runs it)")
        return

    def silent(d, what):
        """d, sent as it is, draws no answer."""
        c.send(d, raw=True)
        c.sock.settimeout(0.3)
        try:
            got = c.sock.recv(70000)
        except socket.timeout:
            return
        raise Fail(f"{what}: answered ({len(got)} bytes): it must be dropped")

    def put_sealed(key, value, rid=None):
        rid = c.rid() if rid is None else rid
        return c.sealer.seal(header(req_payload(c.client, rid, PUT, key, value), c.cluster, 1))

    before = c.stats()["client"]["drops"]
    # No trailer: a PUT (its last 32 bytes read as a boot above the client's: bad_mac) and
    # a STATS (88 bytes, no room for the client id and a trailer: short).
    silent(header(req_payload(c.client, c.rid(), PUT, b"auth-plain", b"x" * 64), c.cluster, 1),
           "a PUT without a trailer")
    silent(header(req_payload(c.client, c.rid(), STATS), c.cluster, 1), "STATS without a trailer")
    # One bit changed: the value, the counter, the tag (the same request id throughout, so
    # that one taken would make the genuine copy a resend answered with its outcome).
    rid = c.rid()
    d = put_sealed(b"auth-flip", b"v", rid)
    for pos, what in ((HDR + 32 + len(b"auth-flip"), "value"), (len(d) - 24, "counter"),
                      (len(d) - 1, "tag")):
        bad = bytearray(d)
        bad[pos] ^= 1
        silent(bytes(bad), f"a PUT with a bit of its {what} changed")
    c.bound[rid] = c.client
    c.send(d, raw=True)
    expect(c.recv(rid)[0], OK, what="the PUT as sealed")
    expect(c.call(GET, b"auth-flip"), OK, b"v", what="GET after the changed PUTs")
    # Another key.
    other = Sealer(os.urandom(32), c.cluster)
    silent(other.seal(header(req_payload(c.client, c.rid(), PUT, b"auth-other", b"v"),
                             c.cluster, 1)), "a PUT under another key")
    expect(c.call(GET, b"auth-other"), NOT_FOUND, what="GET after the PUT under another key")
    # Replayed: a PUT after the client wrote again, and a SNAPSHOT after more was applied
    # (it would build again: not a write, no session answers it).
    expect(c.call(PUT, b"auth-replay", b"one"), OK, what="PUT one")
    first = c.sent
    expect(c.call(PUT, b"auth-replay", b"two"), OK, what="PUT two")
    silent(first, "PUT one replayed")
    expect(c.call(GET, b"auth-replay"), OK, b"two", what="GET after PUT one replayed")
    snapshot_id(c.call(SNAPSHOT, flags=THIS_NODE, timeout=12), "SNAPSHOT")
    snap = c.sent
    built = group_metrics(c, 1)["snapshots_built"]
    for i in range(3):
        expect(c.call(PUT, b"auth-after-snap", b"%d" % i), OK, what="PUT after the SNAPSHOT")
    silent(snap, "the SNAPSHOT replayed")
    time.sleep(0.5)
    if group_metrics(c, 1)["snapshots_built"] != built:
        raise Fail(f"the SNAPSHOT replayed built a snapshot ({built} before)")
    # An earlier start of a client: its requests, even fresh ones, once a later start spoke.
    cid = random.randrange(1, 2**64)
    early = Sealer(c.sealer.key, c.cluster, boot=c.sealer.boot - 1000)
    late = Sealer(c.sealer.key, c.cluster, boot=c.sealer.boot + 1000)
    for sealer, what in ((early, "the earlier start"), (late, "the later start")):
        rid = c.rid()
        c.bound[rid] = cid
        c.send(sealer.seal(header(req_payload(cid, rid, GET, b"auth-flip"), c.cluster, 1)),
               raw=True)
        expect(c.recv(rid)[0], OK, b"v", what=f"GET from {what}")
    silent(early.seal(header(req_payload(cid, c.rid(), GET, b"auth-flip"), c.cluster, 1)),
           "a GET from the earlier start after the later one")
    after = c.stats()["client"]["drops"]
    want = {"bad_mac": 5, "short": 1, "replayed": 2, "old_boot": 1}
    got = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    if got != want:
        raise Fail(f"drops went up by {got}, expected {want}")
    say(f"no trailer, changed bits, another key, replays, an earlier start: no answer, "
        f"counted {json.dumps(got, sort_keys=True)}")

    # An answer verifies for the client it answers only.
    rid = c.rid()
    c.send(header(req_payload(c.client, rid, GET, b"auth-flip"), c.cluster, 1))
    c.sock.settimeout(2)
    raw = c.sock.recv(70000)
    if c.opener.open(raw, c.client ^ 1) != (None, "bad_mac"):
        raise Fail("an answer verified for a client it does not answer")
    plain, why = c.opener.open(raw, c.client)
    if plain is None:
        raise Fail(f"the answer does not verify for its client: {why}")
    if c.opener.open(raw, c.client) != (None, "replayed"):
        raise Fail("the same answer verified twice")
    a = parse_answer(plain, c.cluster)
    expect(a, OK, b"v", what="the GET's answer")
    auth = c.stats()["auth"]
    if auth["raft"] != "aes256gcm" or auth["clients"] != "aes256gcm" or auth["boot"] < 1:
        raise Fail(f"STATS' auth: {auth}")
    say(f"answers bound to their client; STATS auth {json.dumps(auth, sort_keys=True)}")


def answer_dgram(key, cluster, req, status, value, boot, counter, bound=None, seal=True):
    """A node's answer to request datagram req (without its trailer), as node NODE."""
    client, rid, op = struct.unpack_from("<QQB", req, HDR)
    group = struct.unpack_from("<I", req, 16)[0]
    p = struct.pack("<QBBHIII", rid, status, op, 0, 0, len(value), 0) + value
    d = header(p, cluster, group, frm=NODE, typ=CLIENT_RESP)
    if not seal:
        return d
    aead = aead_of("aes256gcm", session_key(key, cluster, NODE, boot))
    t = d + struct.pack("<QQ", boot, counter)
    return t + tag_of(aead, counter, CHANNEL_ANSWER,
                      t + struct.pack("<Q", client if bound is None else bound))


def check_auth_cli(c, env):
    """lcraft-cli seals its requests and takes only answers sealed with the client key and
    bound to itself: against a node of this script's, an answer under another key, one
    without its trailer and one replayed from another lcraft-cli leave it without an answer
    (exit 3, -v says why); the right one is printed."""
    if not c.sealer or not env["cli"]:
        say("check_auth_cli: needs --auth and --cli")
        return
    key, cl = c.sealer.key, c.cluster
    port = free_port()
    fake = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fake.bind(("127.0.0.1", port + 1000))
    config = os.path.join(os.path.dirname(env["config"]), "fake.ini")
    with open(config, "w") as f:
        f.write(f"[cluster]\nid = {cl}\nclient_key_file = {env['client_key_file']}\n"
                f"[nodes]\n{NODE} = 127.0.0.1:{port}\n")
    opener = Sealer(key, cl)  # only for its session keys: requests are checked below
    boot, counter = time.time_ns(), [0]
    kept = {}

    def run(mode):
        p = subprocess.Popen([env["cli"], "--config", config, "--timeout", "1000", "-v",
                              "get", "k"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        fake.settimeout(0.1)
        while p.poll() is None:
            try:
                d, addr = fake.recvfrom(70000)
            except socket.timeout:
                continue
            # The request verifies as its client's (sender: the client id).
            sender, = struct.unpack_from("<Q", d, HDR)
            b, n = struct.unpack_from("<QQ", d, len(d) - TRAILER)
            aead = aead_of("aes256gcm", session_key(key, cl, sender, b))
            if tag_of(aead, n, CHANNEL_CLIENT, d[:-16]) != d[-16:]:
                raise Fail("lcraft-cli's request does not verify")
            req = d[:-TRAILER]
            counter[0] += 1
            if mode == "replayed":
                out = kept["good"]
            else:
                out = answer_dgram(key if mode != "other-key" else os.urandom(32), cl, req, OK,
                                   b"fake-value", boot, counter[0], seal=mode != "no-trailer")
            kept.setdefault(mode, out)
            fake.sendto(out, addr)
        out, err = p.communicate()
        return p.returncode, out, err

    del opener
    rc, out, err = run("good")
    if rc != 0 or out != "fake-value\n":
        raise Fail(f"lcraft-cli against a node answering with the key: exit {rc}, {out!r}, "
                   f"{err.strip()!r}")
    for mode, says in (("other-key", "refused: bad_mac"), ("no-trailer", "refused: bad_mac"),
                       ("replayed", "refused: bad_mac")):
        rc, out, err = run(mode)
        if rc != 3 or out or says not in err:
            raise Fail(f"lcraft-cli, answered {mode}: exit {rc}, stdout {out!r}, stderr "
                       f"{err.strip()[-300:]!r}; expected exit 3 and {says!r}")
        say(f"lcraft-cli answered {mode}: exit 3 ({says})")
    fake.close()
    # The client key of the config, or --key-file; another key draws no answer.
    p = subprocess.run([env["cli"], "--config", env["config"], "--timeout", "500",
                        "--key-file", env["other_key_file"], "get", "k"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
    if p.returncode != 3:
        raise Fail(f"lcraft-cli --key-file (another key): exit {p.returncode}, "
                   f"{p.stderr.strip()!r}")
    p = subprocess.run([env["cli"], "--config", env["config"], "--key-file",
                        env["client_key_file"], "get", "auth-flip"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
    if p.returncode != 0 or p.stdout != "v\n":
        raise Fail(f"lcraft-cli --key-file (the key): exit {p.returncode}, {p.stderr.strip()!r}")


CHECKS = [check_to, check_groups, check_resends, check_cas_empty, check_not_found,
          check_refused, check_snapshot, check_membership, check_drops, check_overflow,
          check_cli, check_pool, check_stats_rate, check_auth, check_auth_cli]


# ---- the node ----------------------------------------------------------------------------

def free_port():
    for _ in range(200):
        base = random.randrange(10000, 28000, 10)
        socks = []
        try:
            for p in (base, base + 1000):
                for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                    try:
                        s = socket.socket(fam, socket.SOCK_DGRAM)
                    except OSError:
                        continue
                    socks.append(s)
                    if fam == socket.AF_INET6:
                        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s.bind((host, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise Fail("no free UDP ports found")


def ipv6_ok():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def key_file(path):
    """A fresh key in path, mode 600; the key."""
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, key.hex().encode() + b"\n")
    os.close(fd)
    return key


def run_test(args, tmp, procs):
    port = free_port()
    cluster = random.randrange(1, 2**63)
    config = os.path.join(tmp, "node.ini")
    v6 = ipv6_ok()
    keys, client_key = [], None
    env = {}
    if args.auth:
        if aead_of("aes256gcm", bytes(32)) is None:
            raise Skip("--auth: Python's cryptography package is missing (pip install "
                       "cryptography): this script seals with its AES-GCM")
        env["key_file"] = os.path.join(tmp, "cluster.key")
        env["client_key_file"] = os.path.join(tmp, "client.key")
        env["other_key_file"] = os.path.join(tmp, "other.key")
        key_file(env["key_file"])
        client_key = key_file(env["client_key_file"])
        key_file(env["other_key_file"])
        keys = [f"key_file = {env['key_file']}", f"client_key_file = {env['client_key_file']}"]
    with open(config, "w") as f:
        f.write("\n".join([
            "; written by tests/net/client_protocol_test.py",
            "[cluster]", f"id = {cluster}", f"voters = {NODE}", *keys, "",
            "[nodes]", f"{NODE} = 127.0.0.1:{port}", f"{SPARE} = 127.0.0.1:{port + 100}", "",
            "[node]", f"data_dir = {tmp}/data/node-{{id}}", "lcores = 1", f"groups = {GROUPS}",
            # "::" takes IPv4 too (dual stack) and lets the oversized case use ::1.
            f"bind = {'::' if v6 else '0.0.0.0'}", "",
            "[raft]", "election_timeout_min_ms = 150", "election_timeout_max_ms = 300",
            "heartbeat_interval_ms = 50", "",
            "[storage]", "durability = none", "segment_mb = 4"]) + "\n")
    log = os.path.join(tmp, "node.log")
    with open(log, "wb") as lf:
        procs.append((subprocess.Popen([args.node, "--config", config, "--id", str(NODE)],
                                       stdin=subprocess.DEVNULL, stdout=lf,
                                       stderr=subprocess.STDOUT), log))
    say(f"node {NODE} of cluster {cluster}: raft 127.0.0.1:{port}, clients :{port + 1000}"
        f"{' (IPv6 too)' if v6 else ''}")
    c = Client(cluster, port + 1000, client_key)
    wait_leader(c)
    env.update({"port": port + 1000, "config": config, "cli": args.cli, "proc": procs[0][0],
                "raft_port": port, "spare_port": port + 100})
    for check in CHECKS:
        if args.check and check.__name__ not in args.check:
            continue
        check(c, env)
        say(f"{check.__name__}: ok")
    p, _ = procs[0]
    if p.poll() is not None:
        raise Fail(f"the node exited with status {p.returncode}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--node", required=True, help="the lcraft-node executable")
    ap.add_argument("--cli", help="the lcraft-cli executable (check_cli)")
    ap.add_argument("--auth", action="store_true",
                    help="the node with a cluster key and a client key: every check sealed, "
                         "then check_auth and check_auth_cli")
    ap.add_argument("--check", action="append", choices=[f.__name__ for f in CHECKS],
                    help="run only this check (repeatable); default: all")
    args = ap.parse_args()
    seed = int(os.environ.get("LCR_TEST_SEED", random.randrange(2**32)))
    random.seed(seed)
    say(f"seed {seed} (LCR_TEST_SEED reruns with the same ports and ids)")
    parent = os.environ.get("LCR_TEST_DIR") or "/var/tmp"
    tmp = tempfile.mkdtemp(prefix="lcraft-net-client-", dir=parent)
    procs = []
    status, reason = 1, None
    try:
        run_test(args, tmp, procs)
        status = 0
    except Skip as e:
        status, reason = SKIP, str(e)
    except Fail as e:
        reason = str(e)
    except Exception as e:  # a bug of this script: still clean up, and fail
        import traceback
        traceback.print_exc()
        reason = f"{type(e).__name__}: {e}"
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if status == 1:
                print("---- tail of the node's log ----")
                with open(log, errors="replace") as f:
                    print("".join(f.readlines()[-30:]), end="")
                print("---- end of the node's log ----", flush=True)
        if os.environ.get("LCR_TEST_KEEP") == "1":
            say(f"kept {tmp} (LCR_TEST_KEEP=1)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if status == 0:
        say("passed")
    elif status == SKIP:
        print(reason, flush=True)
    else:
        print(f"FAIL: {reason}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
