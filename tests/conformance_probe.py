#!/usr/bin/python3
"""Black-box conformance probes written from shared/spec/protocol.md,
retries.md and replication.md (and the README's HTTP API) only: their
MUST-level statements checked at the edges against freshly started
processes: one node, a router with two static nodes and its HTTP port, a
router in front of a foreign (Python) node, and the replicated mode (etcd +
3 nodes + a router; 2 nodes with --min-insync 2).

What it checks, by step (`tests/conformance_probe.py STEP...` runs some):
  flags   unknown and malformed flags: exit 2, one line, nothing on stdout
  node    the body rules (64 KiB vs 64 KiB + 1, bin/str, trailing bytes,
          keys, id types, list/date/title/entry_id edges), list semantics,
          rids, REQ/DEALER framing and envelopes, ping/locate exactly, ids
          after delete + restart and kill -9, a locked or mismatched data
          dir refused, SIGTERM/SIGINT -> 0
  router  the same through a router with 2 static nodes, rendezvous locate,
          router ping name, HTTP API and Idempotency-Key
  repl    locate/map/stats/not primary in replicated mode, todo-admin
  bounds  1,000 in flight on a list and 10,000 on a node admitted, the
          router's deadline, SIGTERM answering what is in flight, an
          overloaded refusal leaving no rid record
  deep    body/framing through the replicated router, reads see the writes
          before them, ids and rids across two failovers and a snapshot, a
          non-member serves nothing, a static data dir refused
  mflags  more malformed flags, a format mismatch, todo-admin refusals
  insync  --min-insync 2: nothing acknowledged on one copy, unavailable not
          applied, rid retries applied once; no live replica;
          etcd keys under /todo/<cluster>/; add-node/remove-node refusals
  clients the Python client and `todo` retry a write once; 4,000
          concurrent retries of one rid have one effect
  fake    a router before a foreign node: v1 only, body forwarded as is
  order   per-list order and no stale reads; ids across actor eviction
  kill9   kill -9 under a pipelined load: acknowledged changes kept, rid
          retries applied once with the first reply
  ttl     rid records kept for --rid-ttl, then dropped
  doc     common/PROTOCOL.md states the spec's limits

Every process is started here and stopped by pid; every wait is bounded;
no assertion is on speed (the few time bounds only catch "never answered").
Exit 0 if every check passed, 1 otherwise (each failure printed).
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(HERE, "stress"))
sys.path.insert(0, os.path.join(HERE, "replication"))
import stress_lib as sl  # noqa: E402
import repl_lib as rl  # noqa: E402

FAILS = []
PASSES = [0]


def check(ok, what, detail=""):
    if ok:
        PASSES[0] += 1
    else:
        FAILS.append(f"{what}: {detail}")
        print(f"FAIL {what}: {detail}", flush=True)


def exit_status(proc, timeout):
    """The process's exit status, or None if it is still running after
    `timeout` seconds."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def run_refusal(what, argv, timeout, hung):
    """Runs a command line that must be refused; its CompletedProcess, or
    None (a failed check saying `hung`) if it still runs after `timeout`."""
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, text=True)
    except subprocess.TimeoutExpired:
        check(False, what, hung)
        return None


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def fixstr(b):
    """A msgpack str header + raw bytes (which may be invalid UTF-8)."""
    n = len(b)
    if n < 32:
        return bytes([0xA0 | n]) + b
    if n < 256:
        return b"\xd9" + bytes([n]) + b
    return b"\xda" + n.to_bytes(2, "big") + b


def rawmap(pairs):
    """pairs of already-encoded (key bytes, value bytes)."""
    n = len(pairs)
    assert n < 16
    return bytes([0x80 | n]) + b"".join(k + v for k, v in pairs)


def s(x):
    return pack(x)


class Conn:
    def __init__(self, ctx, endpoint, kind=zmq.DEALER):
        self.sock = ctx.socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.kind = kind
        self.ctx = ctx
        self.endpoint = endpoint

    def frames(self, frames, timeout=6.0):
        self.sock.send_multipart(frames)
        if not self.sock.poll(int(timeout * 1000)):
            return None
        return self.sock.recv_multipart()

    def raw(self, body, timeout=6.0):
        """One body frame (no delimiter); the decoded reply or None."""
        if self.kind == zmq.REQ:
            got = self.frames([body], timeout)
            return None if got is None else msgpack.unpackb(got[-1], raw=False)
        got = self.frames([body], timeout)
        if got is None:
            return None
        return msgpack.unpackb(got[-1], raw=False)

    def call(self, req, timeout=6.0):
        return self.raw(pack(req), timeout)

    def close(self):
        self.sock.close()


def code(r):
    if r is None:
        return "no reply"
    if r.get("ok"):
        return "ok"
    return r.get("error", {}).get("code")


def expect_code(c, body, want, what, echo_id=None):
    r = c.raw(body) if isinstance(body, bytes) else c.call(body)
    check(code(r) == want, what, f"want {want}, got {r}")
    if r is not None and not r.get("ok"):
        err = r.get("error", {})
        check(isinstance(err.get("message"), str) and err.get("message"), what + " (message str)",
              str(r))
        check(set(r.keys()) <= {"id", "ok", "error"}, what + " (reply keys)", str(r))
    if echo_id is not None and r is not None:
        check(r.get("id") == echo_id, what + " (id echoed)", str(r))
    return r


# --------------------------------------------------------------------------
# One node (or a router in front of nodes): the body rules.
# --------------------------------------------------------------------------

def probe_body(c, label, lst):
    P = label + ": "
    # Size: exactly 64 KiB decoded, 64 KiB + 1 refused without decoding.
    base = {"op": "ping", "id": 7, "pad": ""}
    overhead = len(pack(base))
    pad = 65536 - overhead
    # Header of str grows from 0 (fixstr a0) to 3 bytes (da xx xx) for len>=256
    body = pack({"op": "ping", "id": 7, "pad": "x" * (pad - 2)})
    check(len(body) == 65536, P + "built 65536", str(len(body)))
    r = c.raw(body)
    check(code(r) == "ok" and r.get("id") == 7, P + "body of exactly 65536 bytes is decoded", str(r)[:200])
    body = pack({"op": "ping", "id": 7, "pad": "x" * (pad - 1)})
    check(len(body) == 65537, P + "built 65537", str(len(body)))
    r = c.raw(body)
    check(code(r) == "bad_request", P + "65537-byte body refused", str(r)[:200])
    check(r is not None and "id" not in r, P + "65537-byte body refused without decoding (no id)", str(r)[:200])
    # The same two sizes from a REQ socket (the delimiter frame added).
    q = Conn(c.ctx, c.endpoint, zmq.REQ)
    r = q.raw(pack({"op": "ping", "id": 7, "pad": "x" * (pad - 2)}))
    check(code(r) == "ok" and r.get("id") == 7, P + "REQ: body of exactly 65536 bytes is decoded", str(r)[:200])
    r = q.raw(pack({"op": "ping", "id": 7, "pad": "x" * (pad - 1)}))
    check(code(r) == "bad_request" and "id" not in r, P + "REQ: 65537-byte body refused undecoded", str(r)[:200])
    q.close()
    # A 100 KiB body (still below a frame cap, if any)
    r = c.raw(pack({"op": "ping", "id": 8, "pad": "y" * 100000}))
    check(code(r) == "bad_request", P + "100 KB body refused", str(r)[:200])

    # Not msgpack, empty, not a map, trailing bytes.
    expect_code(c, b"", "bad_request", P + "empty body")
    expect_code(c, b"\xc1", "bad_request", P + "0xc1 never-used byte")
    expect_code(c, b"\x81\xa2op", "bad_request", P + "truncated map")
    expect_code(c, pack(["op", "ping"]), "bad_request", P + "array body")
    expect_code(c, pack("ping"), "bad_request", P + "str body")
    expect_code(c, pack({"op": "ping", "id": 3}) + b"\x00", "bad_request", P + "trailing byte")
    expect_code(c, pack({"op": "ping"}) + pack({"op": "ping"}), "bad_request", P + "two maps")
    # bin key, int key, nil key, bin value for op/list/date/title
    expect_code(c, rawmap([(b"\xc4\x02op", s("ping"))]), "bad_request", P + "bin key 'op'")
    expect_code(c, rawmap([(s("op"), s("ping")), (s(1), s(1))]), "bad_request", P + "int key")
    expect_code(c, rawmap([(s("op"), s("ping")), (b"\xc0", s(1))]), "bad_request", P + "nil key")
    expect_code(c, rawmap([(s("op"), s("ping")), (b"\xc4\x03pad", s(1))]), "bad_request",
                P + "bin unknown key")
    expect_code(c, {"op": b"ping"}, "bad_request", P + "op as bin")
    expect_code(c, {"op": "add_entry", "list": lst.encode(), "date": "2024-01-01", "title": "t"},
                "bad_request", P + "list as bin")
    expect_code(c, {"op": "add_entry", "list": lst, "date": b"2024-01-01", "title": "t"},
                "bad_request", P + "date as bin")
    expect_code(c, {"op": "add_entry", "list": lst, "date": "2024-01-01", "title": b"t"},
                "bad_request", P + "title as bin")
    expect_code(c, {"id": 1}, "bad_request", P + "missing op", echo_id=1)
    expect_code(c, {"op": 5}, "bad_request", P + "op int")
    expect_code(c, {"op": "frobnicate", "id": "x"}, "unknown_op", P + "unknown op", echo_id="x")
    expect_code(c, {"op": "PING"}, "unknown_op", P + "op case-sensitive")
    # Unknown keys ignored
    r = c.call({"op": "ping", "zzz": [1, {"a": None}], "id": 0})
    check(code(r) == "ok" and r.get("id") == 0, P + "unknown keys ignored, id 0 echoed", str(r))

    # id types
    for v, name in ((1.5, "float"), (1.0, "float 1.0"), (None, "nil"), ([1], "array"),
                    ({"a": 1}, "map"), (True, "bool"), (-1, "negative int"), (b"x", "bin")):
        expect_code(c, {"op": "ping", "id": v}, "bad_request", P + f"id {name}")
    for v in (0, 2**64 - 1, "", "abc", "é"):
        r = c.call({"op": "ping", "id": v})
        check(code(r) == "ok" and r.get("id") == v and type(r.get("id")) is type(v),
              P + f"id {v!r} echoed verbatim", str(r))
    r = c.call({"op": "ping"})
    check(code(r) == "ok" and "id" not in r, P + "no id -> no id key", str(r))
    check(r is not None and set(r.keys()) == {"ok", "result"}, P + "success keys", str(r))

    # list
    A = {"op": "add_entry", "date": "2024-01-01", "title": "t"}
    expect_code(c, dict(A), "bad_request", P + "add without list")
    expect_code(c, dict(A, list=""), "bad_request", P + "list of 0 bytes")
    expect_code(c, dict(A, list=5), "bad_request", P + "list int")
    r = c.call(dict(A, list="a" * 255))
    check(code(r) == "ok", P + "list of 255 bytes", str(r))
    r = c.call(dict(A, list="é" * 127 + "a"))
    check(code(r) == "ok", P + "list of 255 bytes UTF-8", str(r))
    expect_code(c, dict(A, list="a" * 256), "bad_request", P + "list of 256 bytes")
    expect_code(c, dict(A, list="é" * 128), "bad_request", P + "list of 256 bytes UTF-8")
    r = c.call({"op": "entries", "list": "b"})
    check(code(r) == "ok", P + "list of 1 byte", str(r))
    for bad, name in ((b"\xff", "0xff"), (b"\xc0\x80", "overlong NUL"),
                      (b"\xed\xa0\x80", "surrogate"), (b"\xe2\x82", "truncated"),
                      (b"\xf4\x90\x80\x80", "above U+10FFFF")):
        body = rawmap([(s("op"), s("entries")), (s("list"), fixstr(bad))])
        expect_code(c, body, "bad_request", P + f"list invalid UTF-8 {name}")
    body = rawmap([(s("op"), s("add_entry")), (s("list"), s(lst)), (s("date"), s("2024-01-01")),
                   (s("title"), fixstr(b"ok\xff"))])
    expect_code(c, body, "bad_request", P + "title invalid UTF-8")
    body = rawmap([(s("op"), s("add_entry")), (s("list"), s(lst)), (s("date"), fixstr(b"2024-01-0\xff")),
                   (s("title"), s("x"))])
    expect_code(c, body, "bad_request", P + "date invalid UTF-8")

    # dates
    good = ["0001-01-01", "9999-12-31", "2024-02-29", "2000-02-29", "2026-12-31"]
    bad = ["0000-01-01", "2026-02-29", "1900-02-29", "2100-02-29", " 2024-01-01", "2024-01-01 ",
           "2024-1-01", "2024-01-1", "2024-13-01", "2024-00-10", "2024-04-31", "2024-01-00",
           "10000-01-01", "2024/01/01", "20240101", "", "２０２４-01-01", "2024-01-01\x00",
           "+024-01-01", "-001-01-01", "2024-02-30", "2024-06-31", "2024-01-32"]
    for d in good:
        r = c.call(dict(A, list=lst, date=d))
        check(code(r) == "ok", P + f"date {d!r} accepted", str(r))
        r = c.call({"op": "entries", "list": lst, "date": d})
        check(code(r) == "ok", P + f"entries date {d!r} accepted", str(r))
    for d in bad:
        expect_code(c, dict(A, list=lst, date=d), "bad_request", P + f"add date {d!r} refused")
        expect_code(c, {"op": "entries", "list": lst, "date": d}, "bad_request",
                    P + f"entries date {d!r} refused")
    expect_code(c, dict(A, list=lst, date=20240101), "bad_request", P + "date int")
    expect_code(c, {"op": "add_entry", "list": lst, "title": "x"}, "bad_request", P + "no date")
    expect_code(c, {"op": "add_entry", "list": lst, "date": "2024-01-01"}, "bad_request",
                P + "no title")

    # title
    r = c.call(dict(A, list=lst, title="t" * 1024))
    check(code(r) == "ok", P + "title 1024 bytes", str(r))
    r = c.call(dict(A, list=lst, title="€" * 341 + "a"))
    check(code(r) == "ok", P + "title 1024 bytes UTF-8", str(r))
    expect_code(c, dict(A, list=lst, title="t" * 1025), "bad_request", P + "title 1025 bytes")
    expect_code(c, dict(A, list=lst, title="€" * 342), "bad_request", P + "title 1026 bytes UTF-8")
    expect_code(c, dict(A, list=lst, title=""), "bad_request", P + "title 0 bytes")
    r = c.call(dict(A, list=lst, title="a\x00b"))
    check(code(r) == "ok", P + "title with NUL", str(r))
    expect_code(c, dict(A, list=lst, title=5), "bad_request", P + "title int")

    # entry_id
    U = {"op": "update_entry", "list": lst, "title": "u"}
    D = {"op": "delete_entry", "list": lst}
    for v, name in ((-1, "negative"), (1.0, "float"), (None, "nil"), ("1", "str"), ([1], "array"),
                    (True, "bool")):
        expect_code(c, dict(U, entry_id=v), "bad_request", P + f"update entry_id {name}")
        expect_code(c, dict(D, entry_id=v), "bad_request", P + f"delete entry_id {name}")
    expect_code(c, dict(U), "bad_request", P + "update no entry_id")
    expect_code(c, dict(D), "bad_request", P + "delete no entry_id")
    expect_code(c, dict(U, entry_id=2**64 - 1), "not_found", P + "update entry_id 2^64-1")
    r = c.call(dict(D, entry_id=2**64 - 1))
    check(code(r) == "ok" and r["result"] == {"deleted": False}, P + "delete entry_id 2^64-1", str(r))
    r = c.call(dict(D, entry_id=0))
    check(code(r) == "ok" and r["result"] == {"deleted": False}, P + "delete entry_id 0", str(r))
    expect_code(c, {"op": "update_entry", "list": lst, "entry_id": 1}, "bad_request",
                P + "update with neither date nor title")
    # signed-int encoding of a non-negative id (msgpack int8 0xd0 0x01)
    body = rawmap([(s("op"), s("delete_entry")), (s("list"), s(lst)), (s("entry_id"), b"\xd0\x7f")])
    r = c.raw(body)
    check(code(r) == "ok", P + "entry_id in signed encoding", str(r))


def probe_list_semantics(c, label, lst):
    P = label + ": "
    r = c.call({"op": "entries", "list": lst})
    check(code(r) == "ok" and r["result"] == [], P + "never-written list is []", str(r))
    r = c.call({"op": "entries", "list": lst, "date": "2024-01-01"})
    check(code(r) == "ok" and r["result"] == [], P + "never-written list by date is []", str(r))
    ids = []
    for i in range(3):
        r = c.call({"op": "add_entry", "list": lst, "date": "2024-03-0%d" % (i + 1), "title": f"t{i}"})
        check(code(r) == "ok" and set(r["result"].keys()) == {"id"}, P + "add result {id}", str(r))
        ids.append(r["result"]["id"] if code(r) == "ok" else None)
    check(ids == [1, 2, 3], P + "ids from 1, one more each time", str(ids))
    r = c.call({"op": "entries", "list": lst})
    want = [{"id": 1, "date": "2024-03-01", "title": "t0"}, {"id": 2, "date": "2024-03-02", "title": "t1"},
            {"id": 3, "date": "2024-03-03", "title": "t2"}]
    got = [{k: e[k] for k in ("id", "date", "title")} for e in r["result"]] if code(r) == "ok" else r
    check(got == want, P + "entries ascending by id", str(r))
    r = c.call({"op": "entries", "list": lst, "date": "2024-03-02"})
    check(code(r) == "ok" and [e["id"] for e in r["result"]] == [2], P + "entries by date", str(r))
    r = c.call({"op": "update_entry", "list": lst, "entry_id": 2, "date": "2024-05-05"})
    check(code(r) == "ok" and r["result"].get("id") == 2 and r["result"].get("date") == "2024-05-05"
          and r["result"].get("title") == "t1", P + "update date returns entry", str(r))
    r = c.call({"op": "update_entry", "list": lst, "entry_id": 2, "title": "T"})
    check(code(r) == "ok" and r["result"].get("title") == "T" and r["result"].get("date") == "2024-05-05",
          P + "update title returns entry", str(r))
    r = c.call({"op": "update_entry", "list": lst, "entry_id": 9, "title": "T"})
    check(code(r) == "not_found", P + "update of a missing id", str(r))
    r = c.call({"op": "delete_entry", "list": lst, "entry_id": 3})
    check(code(r) == "ok" and r["result"] == {"deleted": True}, P + "delete true", str(r))
    r = c.call({"op": "delete_entry", "list": lst, "entry_id": 3})
    check(code(r) == "ok" and r["result"] == {"deleted": False}, P + "delete again false", str(r))
    r = c.call({"op": "update_entry", "list": lst, "entry_id": 3, "title": "T"})
    check(code(r) == "not_found", P + "update of a deleted id", str(r))
    r = c.call({"op": "add_entry", "list": lst, "date": "2024-03-04", "title": "t4"})
    check(code(r) == "ok" and r["result"]["id"] == 4, P + "id not reused after delete", str(r))


def probe_framing(ctx, ep, label):
    P = label + ": "
    body = pack({"op": "ping", "id": 1})
    d = Conn(ctx, ep)
    got = d.frames([body])
    check(got is not None and len(got) == 1, P + "DEALER without delimiter: reply one frame", str(got))
    got = d.frames([b"", body])
    check(got is not None and len(got) == 2 and got[0] == b"", P + "DEALER with delimiter: reply [empty, body]",
          str(got))
    got = d.frames([b"env1", b"env2", b"", body])
    check(got is not None and got[:3] == [b"env1", b"env2", b""] and len(got) == 4,
          P + "multi-frame envelope echoed", str(got))
    got = d.frames([b"", b"", body])
    check(got is not None and got[:2] == [b"", b""] and len(got) == 3, P + "two empty frames echoed", str(got))
    got = d.frames([b"env1", body])
    check(got is not None and got[:1] == [b"env1"] and len(got) == 2,
          P + "envelope without delimiter echoed", str(got))
    d.close()
    q = Conn(ctx, ep, zmq.REQ)
    for i in range(3):
        got = q.frames([pack({"op": "ping", "id": i})])
        check(got is not None and msgpack.unpackb(got[-1], raw=False).get("id") == i,
              P + f"REQ round trip {i}", str(got))
    q.close()
    # Garbage never stops it serving another client.
    g = Conn(ctx, ep)
    for junk in (b"\xff" * 10, b"", b"\x91\x91\x91" * 100, b"\xdf\xff\xff\xff\xff"):
        g.sock.send(junk)
    g.close()
    d = Conn(ctx, ep)
    r = d.call({"op": "ping"})
    check(code(r) == "ok", P + "serves after garbage", str(r))
    d.close()


def probe_rid(c, label, lst):
    P = label + ": "
    A = {"op": "add_entry", "list": lst, "date": "2024-01-01", "title": "x"}
    for v, name in ((b"r", "bin"), (1, "uint"), (None, "nil"), ("", "0 bytes"), ("r" * 65, "65 bytes"),
                    (["r"], "array")):
        r = expect_code(c, dict(A, rid=v), "bad_request", P + f"rid {name}")
    r = c.call({"op": "entries", "list": lst})
    check(code(r) == "ok" and r["result"] == [], P + "refused rids changed nothing", str(r))
    r1 = c.call(dict(A, rid="a", id=1))
    r2 = c.call(dict(A, rid="a", id=2))
    check(code(r1) == "ok" and r1.get("id") == 1 and r2.get("id") == 2 and r1["result"] == r2["result"],
          P + "rid of 1 byte retried: same reply, own id", f"{r1} {r2}")
    r1 = c.call(dict(A, list=lst + "-u8", rid="é" * 32))
    check(code(r1) == "ok", P + "rid of 64 bytes UTF-8", str(r1))
    expect_code(c, dict(A, list=lst + "-u8", rid="é" * 33), "bad_request", P + "rid of 66 bytes UTF-8")
    r1 = c.call(dict(A, rid="z" * 64))
    r2 = c.call(dict(A, rid="z" * 64))
    check(code(r1) == "ok" and r1 == r2, P + "rid of 64 bytes retried", f"{r1} {r2}")
    r = c.call({"op": "entries", "list": lst})
    check(code(r) == "ok" and len(r["result"]) == 2, P + "two rids -> two entries", str(r))
    # same rid, other args
    r = c.call(dict(A, rid="a", title="y"))
    check(code(r) == "bad_request" and "rid" in r["error"]["message"]
          and "different request" in r["error"]["message"], P + "rid reuse other title", str(r))
    r = c.call({"op": "delete_entry", "list": lst, "entry_id": 1, "rid": "a"})
    check(code(r) == "bad_request" and "different request" in r["error"]["message"],
          P + "rid reuse other op", str(r))
    r = c.call({"op": "entries", "list": lst})
    check(code(r) == "ok" and len(r["result"]) == 2 and r["result"][0]["title"] == "x",
          P + "rid reuse changed nothing", str(r))
    # not_found replayed
    U = {"op": "update_entry", "list": lst, "entry_id": 3, "title": "new", "rid": "u1"}
    r = c.call(U)
    check(code(r) == "not_found", P + "rid update of missing id -> not_found", str(r))
    r = c.call(dict(A, title="third"))
    check(code(r) == "ok" and r["result"]["id"] == 3, P + "third entry", str(r))
    r = c.call(U)
    check(code(r) == "not_found", P + "not_found replayed on retry", str(r))
    r = c.call({"op": "entries", "list": lst})
    check(code(r) == "ok" and r["result"][-1]["title"] == "third", P + "not_found retry changed nothing",
          str(r))
    # delete false replayed
    Dl = {"op": "delete_entry", "list": lst, "entry_id": 4, "rid": "d1"}
    r = c.call(Dl)
    check(code(r) == "ok" and r["result"] == {"deleted": False}, P + "rid delete missing", str(r))
    r = c.call(dict(A, title="fourth"))
    r = c.call(Dl)
    check(code(r) == "ok" and r["result"] == {"deleted": False}, P + "deleted:false replayed", str(r))
    # bad_request leaves no record
    r = c.call(dict(A, rid="b1", date="2026-02-29"))
    check(code(r) == "bad_request", P + "bad date with rid", str(r))
    r = c.call(dict(A, rid="b1", title="after-bad"))
    check(code(r) == "ok", P + "bad_request left no record (retry with other args is first)", str(r))
    # update rid with date only vs date+title differ
    r1 = c.call({"op": "update_entry", "list": lst, "entry_id": 1, "date": "2024-02-02", "rid": "u2"})
    r2 = c.call({"op": "update_entry", "list": lst, "entry_id": 1, "date": "2024-02-02", "title": "x",
                 "rid": "u2"})
    check(code(r1) == "ok" and code(r2) == "bad_request", P + "update args (title given or not) differ",
          f"{r1} {r2}")
    # rid on entries is ignored (not validated)
    r = c.call({"op": "entries", "list": lst, "rid": 5})
    check(code(r) == "ok", P + "rid on entries ignored", str(r))
    # rid scoped per list
    r = c.call(dict(A, list=lst + "-other", rid="a"))
    check(code(r) == "ok" and r["result"]["id"] == 1, P + "rid scoped per list", str(r))


def node_stats_writes(c):
    r = c.call({"op": "stats"})
    if code(r) != "ok":
        return None
    return sum(sh.get("writes", 0) for sh in r["result"].get("shards", []))


def probe_single_node(ctx, work):
    print("== single node", flush=True)
    port, = sl.free_ports(1)
    data = os.path.join(work, "n1")
    node = sl.Process("n1", sl.node_argv("n1", port, data), os.path.join(work, "n1.log")).start()
    try:
        check(sl.wait_serving(ctx, port, node), "node serving", node.log()[-500:])
        ep = f"tcp://127.0.0.1:{port}"
        c = Conn(ctx, ep)
        r = c.call({"op": "ping", "id": 1})
        check(r == {"id": 1, "ok": True, "result": {"pong": True, "role": "node", "name": "n1"}},
              "node: ping exactly", str(r))
        r = c.call({"op": "locate", "list": "alice"})
        check(r == {"ok": True, "result": {"node": "n1"}}, "node: locate -> own name", str(r))
        expect_code(c, {"op": "locate"}, "bad_request", "node: locate without list")
        r = c.call({"op": "map"})
        check(code(r) in ("unknown_op",), "node: map in static mode", str(r))
        w0 = node_stats_writes(c)
        r = c.call({"op": "entries", "list": "never"})
        check(code(r) == "ok" and r["result"] == [], "node: entries never-written", str(r))
        r = c.call({"op": "entries", "list": "never2", "date": "2024-01-01"})
        w1 = node_stats_writes(c)
        check(w0 is not None and w0 == w1, "node: entries on never-written list stores nothing", f"{w0} {w1}")
        probe_body(c, "node", "body")
        probe_list_semantics(c, "node", "sem")
        probe_rid(c, "node", "rids")
        probe_framing(ctx, ep, "node")
        # ids after restart: delete the highest then SIGTERM restart, then kill -9.
        r = c.call({"op": "delete_entry", "list": "sem", "entry_id": 4})
        c.close()
        st = node.terminate(timeout=20)
        check(st == 0, "node: SIGTERM -> exit 0", str(st))
        node = sl.Process("n1", sl.node_argv("n1", port, data), os.path.join(work, "n1.log")).start()
        check(sl.wait_serving(ctx, port, node), "node restarted", node.log()[-500:])
        c = Conn(ctx, ep)
        r = c.call({"op": "add_entry", "list": "sem", "date": "2024-01-01", "title": "after"})
        check(code(r) == "ok" and r["result"]["id"] == 5, "node: id not reused after delete + restart", str(r))
        r = c.call({"op": "entries", "list": "never"})
        check(code(r) == "ok" and r["result"] == [], "node: never-written list still [] after restart", str(r))
        r = c.call({"op": "delete_entry", "list": "sem", "entry_id": 5})
        check(code(r) == "ok" and r["result"] == {"deleted": True}, "node: delete the highest id", str(r))
        r3 = c.call({"op": "add_entry", "list": "rids", "date": "2024-01-01", "title": "x", "rid": "a"})
        check(code(r3) == "ok" and r3["result"]["id"] == 1, "node: rid replay after restart", str(r3))
        # a list whose every entry was deleted
        for i in range(2):
            c.call({"op": "add_entry", "list": "alldel", "date": "2024-01-01", "title": "x"})
        c.call({"op": "delete_entry", "list": "alldel", "entry_id": 1})
        c.call({"op": "delete_entry", "list": "alldel", "entry_id": 2})
        c.close()
        node.kill9()
        # locked data dir: a second node on the same dir refuses to start
        node = sl.Process("n1", sl.node_argv("n1", port, data), os.path.join(work, "n1.log")).start()
        check(sl.wait_serving(ctx, port, node), "node restarted after kill -9", node.log()[-500:])
        c = Conn(ctx, ep)
        r = c.call({"op": "add_entry", "list": "sem", "date": "2024-01-01", "title": "after"})
        check(code(r) == "ok" and r["result"]["id"] == 6, "node: id not reused after delete + kill -9", str(r))
        r = c.call({"op": "add_entry", "list": "alldel", "date": "2024-01-01", "title": "x"})
        check(code(r) == "ok" and r["result"]["id"] == 3, "node: id not reused, all deleted + kill -9", str(r))
        c.close()
        p2port, = sl.free_ports(1)
        two = subprocess.run(sl.node_argv("n2", p2port, data), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=20, text=True)
        check(two.returncode != 0 and ("lock" in two.stderr.lower()), "node: refuses a locked data dir",
              f"{two.returncode} {two.stderr[-300:]}")
        st = node.terminate(timeout=20)
        check(st == 0, "node: SIGTERM -> 0 (2)", str(st))
        # shard count mismatch
        mm = subprocess.run(sl.node_argv("n1", port, data, "--shards", "7"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=20, text=True)
        check(mm.returncode != 0 and "shard" in mm.stderr.lower(), "node: refuses shard-count mismatch",
              f"{mm.returncode} {mm.stderr[-300:]}")
        # SIGINT -> 0
        node = sl.Process("n1", sl.node_argv("n1", port, data), os.path.join(work, "n1.log")).start()
        check(sl.wait_serving(ctx, port, node), "node restarted (3)", node.log()[-300:])
        os.kill(node.pid, signal.SIGINT)
        st = exit_status(node.proc, 20)
        check(st == 0, "node: SIGINT -> 0", str(st))
    finally:
        node.terminate(timeout=10)


def probe_flags(work):
    print("== flags", flush=True)
    port, = sl.free_ports(1)
    d = os.path.join(work, "flags")
    cases = [
        ("node unknown flag", sl.node_argv("n1", port, d, "--frobnicate")),
        ("node unknown flag=value", sl.node_argv("n1", port, d, "--frobnicate=1")),
        ("node missing --name", [sl.NODE_BIN, "--listen", f"tcp://127.0.0.1:{port}", "--data", d]),
        ("node missing --data", [sl.NODE_BIN, "--name", "n", "--listen", f"tcp://127.0.0.1:{port}"]),
        ("node --listen without value", [sl.NODE_BIN, "--name", "n", "--data", d, "--listen"]),
        ("node bad --shards", sl.node_argv("n1", port, d, "--shards", "abc")),
        ("node --write-buffer-mb 0", sl.node_argv("n1", port, d, "--write-buffer-mb", "0")),
        ("node --write-buffer-mb 2000", sl.node_argv("n1", port, d, "--write-buffer-mb", "2000")),
        ("node positional", sl.node_argv("n1", port, d, "extra")),
        ("router unknown flag", sl.router_argv(port, [("n1", port + 1)], "--frobnicate")),
        ("router malformed --node", [sl.ROUTER_BIN, "--listen", f"tcp://127.0.0.1:{port}", "--node", "n1"]),
        ("router no --listen", [sl.ROUTER_BIN, "--node", f"n1=tcp://127.0.0.1:{port}"]),
        ("router bad timeout", sl.router_argv(port, [("n1", port + 1)], "--timeout-ms", "x")),
        ("admin unknown flag", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "--frobnicate", "status"]),
        ("admin no command", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1"]),
        ("admin unknown command", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "frob"]),
        ("admin init no replicas", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "init", "n1"]),
        ("admin init bad replicas", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "init", "--replicas",
                                     "x", "n1"]),
        ("admin status bad flag", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "status", "--jsn"]),
        ("admin add-node no name", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "add-node"]),
        ("admin add-node empty name", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "add-node", ""]),
        ("admin remove-node empty name", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "remove-node", ""]),
    ]
    for what, argv in cases:
        done = run_refusal(what, argv, 15, "did not exit within 15 s")
        if done is None:
            continue
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        check(done.returncode == 2, what + " exit 2", f"{done.returncode} {done.stderr[-300:]}")
        check(len(lines) == 1, what + " one line", repr(done.stderr[-400:]))
        check(done.stdout == "", what + " nothing on stdout", repr(done.stdout[-200:]))
    shutil.rmtree(d, ignore_errors=True)


def rendezvous_owner(lst, names):
    best = None
    for n in names:
        sc = rl.mix64(rl.fnv1a64(n.encode()) ^ rl.mix64(rl.fnv1a64(lst.encode())))
        if best is None or sc > best[0] or (sc == best[0] and n < best[1]):
            best = (sc, n)
    return best[1]


def http_req(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace"), dict(resp.getheaders())
    finally:
        conn.close()


def probe_router(ctx, work):
    print("== router + 2 static nodes", flush=True)
    p1, p2, rp, hp = sl.free_ports(4)
    nodes = [sl.Process(n, sl.node_argv(n, p, os.path.join(work, "r" + n)), os.path.join(work, f"r{n}.log")).start()
             for n, p in (("n1", p1), ("n2", p2))]
    rep = f"tcp://127.0.0.1:{rp}"
    router = sl.Process("r", sl.router_argv(rp, [("n1", p1), ("n2", p2)], "--http", f"127.0.0.1:{hp}"),
                        os.path.join(work, "router.log")).start()
    try:
        for n, p in zip(nodes, (p1, p2)):
            check(sl.wait_serving(ctx, p, n), "static node serving", n.log()[-300:])
        check(sl.wait_serving(ctx, rp, router), "router serving", router.log()[-300:])
        c = Conn(ctx, rep)
        r = c.call({"op": "ping", "id": "p"})
        check(r == {"id": "p", "ok": True, "result": {"pong": True, "role": "router", "name": rep}},
              "router: ping exactly (name = listen endpoint)", str(r))
        for lst in ("alice", "bob", "carol", "dave", "é/x\x00y"):
            r = c.call({"op": "locate", "list": lst})
            want = rendezvous_owner(lst, ["n1", "n2"])
            check(r == {"ok": True, "result": {"node": want}}, f"router: locate {lst!r} by rendezvous",
                  f"{r} want {want}")
        expect_code(c, {"op": "locate", "list": ""}, "bad_request", "router: locate list of 0 bytes")
        # wait until the router sees both nodes up
        sl.wait_until(lambda: code(c.call({"op": "entries", "list": "alice"}, 2)) == "ok"
                      and code(c.call({"op": "entries", "list": "bob"}, 2)) == "ok", 10, 0.1)
        probe_body(c, "router", "rbody")
        probe_list_semantics(c, "router", "rsem")
        probe_rid(c, "router", "rrids")
        probe_framing(ctx, rep, "router")
        read_your_writes(ctx, rep, "rryw", 300, "router")
        c.close()
        probe_http(hp)
        probe_http_more(hp)
        st = router.terminate(timeout=20)
        check(st == 0, "router: SIGTERM -> 0", str(st))
        # router with --name
        router = sl.Process("r", sl.router_argv(rp, [("n1", p1), ("n2", p2)], "--name", "front"),
                            os.path.join(work, "router.log")).start()
        check(sl.wait_serving(ctx, rp, router), "router restarted", router.log()[-300:])
        c = Conn(ctx, rep)
        r = c.call({"op": "ping"})
        check(r == {"ok": True, "result": {"pong": True, "role": "router", "name": "front"}},
              "router --name: ping", str(r))
        c.close()
        # a node killed: unavailable within the deadline
        nodes[1].kill9()
        owner2 = [l for l in ("alice", "bob", "carol", "dave", "erin", "frank") if rendezvous_owner(l, ["n1", "n2"]) == "n2"][0]
        c = Conn(ctx, rep)
        t0 = time.monotonic()
        r = c.call({"op": "entries", "list": owner2}, 8)
        # Bounds only "never answered" (no timing assertion: the deadline is 5 s).
        check(code(r) in ("unavailable", "timeout") and time.monotonic() - t0 < 7.9,
              "router: dead node -> unavailable/timeout within deadline", f"{r} {time.monotonic() - t0:.1f}s")
        c.close()
        os.kill(router.pid, signal.SIGINT)
        st = exit_status(router.proc, 20)
        check(st == 0, "router: SIGINT -> 0", str(st))
    finally:
        router.terminate(timeout=10)
        for n in nodes:
            n.terminate(timeout=10)


def probe_http(hp):
    print("== http", flush=True)
    st, body, h = http_req(hp, "POST", "/add_entry?list=hb&date=2026-12-19&title=Dentist", b"")
    check(st == 200 and body.strip() == "OK", "http: book add_entry", f"{st} {body!r}")
    st, body, h = http_req(hp, "GET", "/entries?list=hb&date=2026-12-19")
    check(st == 200 and body.strip() == "2026-12-19 Dentist", "http: book entries", f"{st} {body!r}")
    # Idempotency-Key on the book's POST /add_entry
    for i in range(2):
        st, body, h = http_req(hp, "POST", "/add_entry?list=hb2&date=2026-12-19&title=Once", b"",
                               {"Idempotency-Key": "k-book"})
        check(st == 200, f"http: book add with key #{i}", f"{st} {body!r}")
    st, body, h = http_req(hp, "GET", "/entries?list=hb2&date=2026-12-19")
    check(st == 200 and body.strip().count("Once") == 1, "http: book add key applied once", f"{st} {body!r}")
    st, body, h = http_req(hp, "POST", "/add_entry?list=hb2&date=2026-12-19&title=Other", b"",
                           {"Idempotency-Key": "k-book"})
    check(st == 400, "http: book key reused with other args -> 400", f"{st} {body!r}")
    # JSON API POST
    replies = []
    for i in range(2):
        st, body, h = http_req(hp, "POST", "/lists/hj/entries",
                               json.dumps({"date": "2026-12-19", "title": "A"}),
                               {"Idempotency-Key": "k-post", "Content-Type": "application/json"})
        replies.append((st, body))
    check(replies[0][0] == 201 and replies[0] == replies[1], "http: POST with key: same answer", str(replies))
    st, body, h = http_req(hp, "GET", "/lists/hj/entries")
    check(st == 200 and len(json.loads(body)) == 1, "http: POST with key applied once", f"{st} {body}")
    # PATCH
    replies = []
    for i in range(2):
        st, body, h = http_req(hp, "PATCH", "/lists/hj/entries/1", json.dumps({"title": "B"}),
                               {"Idempotency-Key": "k-patch"})
        replies.append((st, body))
    check(replies[0][0] == 200 and replies[0] == replies[1], "http: PATCH with key: same answer", str(replies))
    st, body, h = http_req(hp, "PATCH", "/lists/hj/entries/1", json.dumps({"title": "C"}),
                           {"Idempotency-Key": "k-patch"})
    check(st == 400, "http: PATCH key reused other args -> 400", f"{st} {body}")
    # PATCH missing -> 404, replayed
    st1, b1, _ = http_req(hp, "PATCH", "/lists/hj/entries/2", json.dumps({"title": "C"}),
                          {"Idempotency-Key": "k-p404"})
    http_req(hp, "POST", "/lists/hj/entries", json.dumps({"date": "2026-12-19", "title": "2nd"}))
    st2, b2, _ = http_req(hp, "PATCH", "/lists/hj/entries/2", json.dumps({"title": "C"}),
                          {"Idempotency-Key": "k-p404"})
    check(st1 == 404 and st2 == 404, "http: PATCH 404 replayed with key", f"{st1} {st2} {b2}")
    # DELETE
    replies = []
    for i in range(2):
        st, body, h = http_req(hp, "DELETE", "/lists/hj/entries/1", None, {"Idempotency-Key": "k-del"})
        replies.append((st, body))
    check(replies[0][0] == 200 and replies[0] == replies[1] and json.loads(replies[0][1]) == {"deleted": True},
          "http: DELETE with key: same answer (deleted true twice)", str(replies))
    # bad keys
    for k in ("", "k" * 65):
        st, body, h = http_req(hp, "POST", "/lists/hj/entries", json.dumps({"date": "2026-12-19", "title": "A"}),
                               {"Idempotency-Key": k})
        check(st == 400, f"http: Idempotency-Key of {len(k)} bytes -> 400", f"{st} {body}")
    st, body, h = http_req(hp, "POST", "/lists/hj/entries", json.dumps({"date": "2026-12-19", "title": "A"}),
                           {"Idempotency-Key": "k" * 64})
    check(st == 201, "http: Idempotency-Key of 64 bytes", f"{st} {body}")
    st, body, h = http_req(hp, "GET", "/lists/hnever/entries")
    check(st == 200 and json.loads(body) == [], "http: never-written list []", f"{st} {body}")
    st, body, h = http_req(hp, "POST", "/lists/hj/entries", json.dumps({"date": "2026-02-29", "title": "A"}))
    check(st == 400, "http: bad date 400", f"{st} {body}")
    st, body, h = http_req(hp, "DELETE", "/lists/hj/entries/99")
    check(st == 200 and json.loads(body) == {"deleted": False}, "http: DELETE missing -> deleted false",
          f"{st} {body}")


def probe_replicated(ctx, work):
    print("== replicated", flush=True)
    etcd = rl.Etcd(work).start()
    cluster = rl.Cluster(work, etcd, nodes=3, replicas=2, partitions=16, router=True)
    try:
        cluster.start(timeout=60)
        m = cluster.wait_router_map(ctx)
        check(m.get("partitions") == 16 and isinstance(m.get("hash"), str) and len(m.get("parts", [])) == 16,
              "repl: map has P, hash name, parts", json.dumps(m)[:300])
        check(set(m.get("nodes", {}).keys()) == {"n1", "n2", "n3"}
              and all(v == cluster.endpoint(k) for k, v in m["nodes"].items()), "repl: map nodes endpoints",
              str(m.get("nodes")))
        c = Conn(ctx, cluster.router_endpoint)
        st = cluster.status()
        parts = {p["partition"]: p for p in st["partitions"]}
        for lst in ("alice", "bob", "carol"):
            r = c.call({"op": "locate", "list": lst})
            p = rl.partition_of(lst, 16)
            ok = code(r) == "ok" and set(r["result"].keys()) >= {"node", "replicas", "partition", "epoch"}
            check(ok, f"repl: locate {lst} keys", str(r))
            if ok:
                res = r["result"]
                check(res["partition"] == p and res["replicas"] == parts[p]["replicas"]
                      and res["node"] == parts[p]["replicas"][0] and res["epoch"] == parts[p]["epoch"],
                      f"repl: locate {lst} agrees with status", f"{res} vs {parts[p]}")
                check(m["parts"][p][0] == res["node"], f"repl: map primary of {lst}", f"{m['parts'][p]}")
        # node in replicated mode: map and locate
        n1 = Conn(ctx, cluster.endpoint("n1"))
        r = n1.call({"op": "map"})
        check(code(r) == "ok" and r["result"].get("partitions") == 16, "repl: node answers map", str(r)[:200])
        r = n1.call({"op": "locate", "list": "alice"})
        check(code(r) == "ok" and set(r["result"].keys()) >= {"node", "replicas", "partition", "epoch"},
              "repl: node locate keys", str(r))
        r = n1.call({"op": "ping"})
        check(r == {"ok": True, "result": {"pong": True, "role": "node", "name": "n1"}}, "repl: node ping", str(r))
        # not primary
        p = rl.partition_of("alice", 16)
        prim = parts[p]["replicas"][0]
        other = [n for n in ("n1", "n2", "n3") if n != prim][0]
        o = Conn(ctx, cluster.endpoint(other))
        r = o.call({"op": "add_entry", "list": "alice", "date": "2024-01-01", "title": "x"})
        check(code(r) == "unavailable" and "primary" in r["error"]["message"] and prim in r["error"]["message"],
              "repl: not primary -> unavailable naming the primary", str(r))
        r = o.call({"op": "entries", "list": "alice"})
        check(code(r) == "unavailable", "repl: not primary read -> unavailable", str(r))
        o.close()
        # stats per-partition
        pc = Conn(ctx, cluster.endpoint(prim))
        for i in range(3):
            c.call({"op": "add_entry", "list": "alice", "date": "2024-01-01", "title": f"x{i}"})
        r = pc.call({"op": "stats"})
        check(code(r) == "ok", "repl: stats ok", str(r)[:200])
        if code(r) == "ok":
            pstats = {x["partition"]: x for x in r["result"].get("partitions", [])}
            mine = [x for x in st["partitions"] if prim in x["replicas"]]
            for x in mine:
                got = pstats.get(x["partition"])
                role = "primary" if x["replicas"][0] == prim else "backup"
                check(got is not None and got.get("role") == role and got.get("epoch") == x["epoch"]
                      and "seq" in got, "repl: stats per partition: role, epoch, seq", f"{got} vs {x}")
                if role == "primary" and got is not None:
                    check([b.get("name") for b in got.get("backups", [])] == x["replicas"][1:]
                          and all("lag" in b for b in got["backups"]), "repl: stats: each backup's lag",
                          str(got))
        pc.close()
        # body/semantics/rids through the replicated router
        probe_list_semantics(c, "repl-router", "qsem")
        probe_rid(c, "repl-router", "qrids")
        # admin
        done = cluster.admin("init", "--replicas", "2", "n1", "n2", "n3", check=False)
        check(done.returncode == 1 and done.stderr.strip(), "admin: init refuses existing cluster (exit 1)",
              f"{done.returncode} {done.stderr}")
        done = cluster.admin("status", "--json", check=False)
        check(done.returncode == 0, "admin: status --json exit 0", done.stderr)
        try:
            j = json.loads(done.stdout)
            check(isinstance(j.get("replicas"), int) and isinstance(j.get("members"), list)
                  and all(set(x.keys()) >= {"name", "alive"} for x in j["members"])
                  and all(set(x.keys()) >= {"partition", "epoch", "replicas", "in_sync"} for x in j["partitions"]),
                  "admin: status --json keys", done.stdout[:300])
        except ValueError:
            check(False, "admin: status --json is one JSON object", done.stdout[:300])
        done = cluster.admin("status", check=False)
        check(done.returncode == 0 and "n1" in done.stdout, "admin: status table", done.stdout[:200])
        done = cluster.admin("add-node", "n1", check=False)
        check(done.returncode == 1, "admin: add-node of a member -> 1", f"{done.returncode} {done.stderr}")
        done = cluster.admin("remove-node", "zz", check=False)
        check(done.returncode == 1, "admin: remove-node unknown -> 1", f"{done.returncode} {done.stderr}")
        done = cluster.admin("--frobnicate", "status", check=False)
        check(done.returncode == 2, "admin: unknown flag -> 2", f"{done.returncode} {done.stderr}")
        done = subprocess.run([rl.ADMIN_BIN, "--etcd", etcd.all_endpoints, "--cluster-name", "nosuch",
                               "status", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=20)
        check(done.returncode == 1, "admin: status of a missing cluster -> 1", f"{done.returncode} {done.stderr}")
        # flags in replicated mode
        done = subprocess.run(cluster.node_argv("n1", ["--lease-ms", "abc"]), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=20)
        check(done.returncode == 2, "repl node: bad --lease-ms -> 2", f"{done.returncode} {done.stderr}")
        # A dead etcd URL first in the list: router, admin still work.
        rp2, = sl.free_ports(1)
        r2 = sl.Process("r2", [sl.ROUTER_BIN, "--listen", f"tcp://127.0.0.1:{rp2}", "--etcd",
                               "http://127.0.0.1:1," + etcd.all_endpoints], os.path.join(work, "r2.log")).start()
        try:
            c2 = Conn(ctx, f"tcp://127.0.0.1:{rp2}")
            ok = sl.wait_until(lambda: code(c2.call({"op": "entries", "list": "alice"}, 1)) == "ok", 20, 0.3)
            check(ok, "repl: router with a dead etcd URL first serves", r2.log()[-300:])
            c2.close()
        finally:
            r2.terminate(timeout=10)
        done = subprocess.run([rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1," + etcd.all_endpoints, "status", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        check(done.returncode == 0, "admin: a dead etcd URL first", f"{done.returncode} {done.stderr[-200:]}")
        c.close()
        n1.close()
        for name, p in list(cluster.procs.items()):
            st_ = p.terminate(timeout=20)
            check(st_ == 0, f"repl node {name}: SIGTERM -> 0", str(st_))
        st_ = cluster.router.terminate(timeout=20)
        check(st_ == 0, "repl router: SIGTERM -> 0", str(st_))
    finally:
        cluster.stop()
        etcd.stop()


def pipeline(ctx, ep, reqs, timeout=30.0):
    """Sends every request on one DEALER with ids 0..n-1; returns the replies by id."""
    c = Conn(ctx, ep)
    c.sock.setsockopt(zmq.SNDHWM, 0)
    c.sock.setsockopt(zmq.RCVHWM, 0)
    for i, r in enumerate(reqs):
        c.sock.send(pack(dict(r, id=i)))
    got = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(reqs) and time.monotonic() < deadline:
        if c.sock.poll(200):
            rep = msgpack.unpackb(c.sock.recv(), raw=False)
            got[rep.get("id")] = rep
    c.close()
    return got


def probe_bounds(ctx, work):
    print("== bounds, SIGTERM in flight, overloaded leaves no record", flush=True)
    port, p2, rp = sl.free_ports(3)
    data = os.path.join(work, "bn")
    node = sl.Process("b1", sl.node_argv("b1", port, data), os.path.join(work, "b1.log")).start()
    n2 = sl.Process("b2", sl.node_argv("b2", p2, data + "2"), os.path.join(work, "b2.log")).start()
    router = sl.Process("br", sl.router_argv(rp, [("b1", port)]), os.path.join(work, "br.log")).start()
    try:
        check(sl.wait_serving(ctx, port, node), "bounds node serving", node.log()[-300:])
        check(sl.wait_serving(ctx, p2, n2), "bounds node 2 serving", n2.log()[-300:])
        check(sl.wait_serving(ctx, rp, router), "bounds router serving", router.log()[-300:])
        ep = f"tcp://127.0.0.1:{port}"
        reqs = [{"op": "add_entry", "list": "one", "date": "2024-01-01", "title": f"t{i}"} for i in range(1000)]
        got = pipeline(ctx, ep, reqs)
        codes = {}
        for r in got.values():
            codes[code(r)] = codes.get(code(r), 0) + 1
        check(codes == {"ok": 1000}, "node: 1,000 in flight on one list admitted", str(codes))
        ids = sorted(r["result"]["id"] for r in got.values() if code(r) == "ok")
        check(ids == list(range(1, 1001)), "node: 1,000 pipelined adds got ids 1..1000", str(ids[:5]))
        # per-list order: title tN got id N+1
        check(all(got[i]["result"]["id"] == i + 1 for i in range(1000) if code(got.get(i)) == "ok"),
              "node: per-list order kept (ids in send order)")
        reqs = [{"op": "add_entry", "list": f"l{i % 500}", "date": "2024-01-01", "title": "t"} for i in range(10000)]
        got = pipeline(ctx, ep, reqs, 60)
        codes = {}
        for r in got.values():
            codes[code(r)] = codes.get(code(r), 0) + 1
        check(codes == {"ok": 10000}, "node: 10,000 in flight on one node admitted", str(codes))
        rep = f"tcp://127.0.0.1:{rp}"
        reqs = [{"op": "add_entry", "list": "rone", "date": "2024-01-01", "title": f"t{i}"} for i in range(1000)]
        got = pipeline(ctx, rep, reqs)
        codes = {}
        for r in got.values():
            codes[code(r)] = codes.get(code(r), 0) + 1
        check(codes == {"ok": 1000}, "router: 1,000 in flight on one list admitted", str(codes))
        reqs = [{"op": "add_entry", "list": f"rl{i % 700}", "date": "2024-01-01", "title": "t"} for i in range(10000)]
        got = pipeline(ctx, rep, reqs, 60)
        codes = {}
        for r in got.values():
            codes[code(r)] = codes.get(code(r), 0) + 1
        check(codes == {"ok": 10000}, "router: 10,000 in flight to one node admitted", str(codes))

        # Router deadline with a frozen node; SIGTERM of the router answers what is in flight.
        os.kill(node.pid, signal.SIGSTOP)
        try:
            c = Conn(ctx, rep)
            t0 = time.monotonic()
            r = c.call({"op": "entries", "list": "one", "id": 1}, 10)
            dt = time.monotonic() - t0
            check(code(r) == "timeout" and r.get("id") == 1 and dt < 9.9,
                  "router: frozen node -> timeout within the 5 s deadline", f"{r} {dt:.2f}s")
            c2 = Conn(ctx, rep)
            for i in range(20):
                c2.sock.send(pack({"op": "entries", "list": "one", "id": i}))
            time.sleep(0.3)
            t0 = time.monotonic()
            os.kill(router.pid, signal.SIGTERM)
            got = {}
            deadline = time.monotonic() + 10
            while len(got) < 20 and time.monotonic() < deadline:
                if c2.sock.poll(200):
                    rr = msgpack.unpackb(c2.sock.recv(), raw=False)
                    got[rr.get("id")] = rr
            check(len(got) == 20, "router: SIGTERM answers every request in flight",
                  f"{len(got)} of 20 answered: {set(code(x) for x in got.values())}")
            st = exit_status(router.proc, 15)
            check(st == 0, "router: SIGTERM with a frozen node -> 0", str(st))
            c.close()
            c2.close()
        finally:
            os.kill(node.pid, signal.SIGCONT)

        # Node SIGTERM under a pipelined write load: every acknowledged write is there after.
        c = Conn(ctx, ep)
        c.sock.setsockopt(zmq.SNDHWM, 0)
        n = 3000
        for i in range(n):
            c.sock.send(pack({"op": "add_entry", "list": "term", "date": "2024-01-01", "title": f"t{i}", "id": i}))
        first = msgpack.unpackb(c.sock.recv(), raw=False) if c.sock.poll(5000) else None
        os.kill(node.pid, signal.SIGTERM)
        acked = {first["result"]["id"]: first["id"]} if first and first.get("ok") else {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and node.alive():
            if c.sock.poll(100):
                rr = msgpack.unpackb(c.sock.recv(), raw=False)
                if rr.get("ok"):
                    acked[rr["result"]["id"]] = rr["id"]
        while c.sock.poll(100):
            rr = msgpack.unpackb(c.sock.recv(), raw=False)
            if rr.get("ok"):
                acked[rr["result"]["id"]] = rr["id"]
        st = exit_status(node.proc, 10)
        check(st == 0, "node: SIGTERM under load -> 0", str(st))
        c.close()
        node = sl.Process("b1", sl.node_argv("b1", port, data), os.path.join(work, "b1.log")).start()
        check(sl.wait_serving(ctx, port, node), "bounds node restarted", node.log()[-300:])
        c = Conn(ctx, ep)
        r = c.call({"op": "entries", "list": "term"})
        have = {e["id"]: e["title"] for e in r["result"]} if code(r) == "ok" else {}
        missing = [i for i in acked if i not in have]
        check(not missing, "node: every write acked before SIGTERM is there", f"{len(missing)} missing of {len(acked)}")
        print(f"   SIGTERM under load: {len(acked)} acked, {len(have)} stored", flush=True)
        c.close()
    finally:
        for p in (router, node, n2):
            p.terminate(timeout=10)

    # overloaded refusals leave no rid record: a node with a tiny mailbox
    port, = sl.free_ports(1)
    node = sl.Process("o1", sl.node_argv("o1", port, os.path.join(work, "ov"), "--mailbox", "1",
                                         "--writer-queue", "1"),
                      os.path.join(work, "o1.log")).start()
    try:
        check(sl.wait_serving(ctx, port, node), "overload node serving", node.log()[-300:])
        ep = f"tcp://127.0.0.1:{port}"
        reqs = [{"op": "add_entry", "list": "ov", "date": "2024-01-01", "title": f"t{i}", "rid": f"r{i}"}
                for i in range(400)]
        got = pipeline(ctx, ep, reqs)
        over = [i for i, r in got.items() if code(r) == "overloaded"]
        oks = {i: r for i, r in got.items() if code(r) == "ok"}
        print(f"   overload: {len(over)} overloaded, {len(oks)} ok of 400", flush=True)
        check(len(got) == 400, "overload: every request answered", str(len(got)))
        c = Conn(ctx, ep)
        bad = []
        for i in over[:100]:
            r = c.call(dict(reqs[i]))
            if code(r) != "ok" or r["result"]["id"] in {x["result"]["id"] for x in oks.values()}:
                bad.append((i, r))
        check(not bad, "overload: a retry after overloaded is a first request", str(bad[:3]))
        bad = []
        for i in list(oks)[:100]:
            r = c.call(dict(reqs[i], id=i))
            if r != oks[i]:
                bad.append((i, r, oks[i]))
        check(not bad, "overload: a retry after ok gets the first reply", str(bad[:3]))
        c.close()
    finally:
        node.terminate(timeout=10)


def all_seq(ctx, cluster):
    total = 0
    for n in cluster.names:
        if not cluster.procs[n].alive():
            continue
        c = Conn(ctx, cluster.endpoint(n))
        r = c.call({"op": "stats"}, 3)
        c.close()
        if code(r) != "ok":
            return None
        total += sum(p.get("seq", 0) for p in r["result"].get("partitions", []))
    return total


def primary_of(cluster, lst):
    st = cluster.status()
    if st is None:
        return None
    p = [x for x in st["partitions"] if x["partition"] == rl.partition_of(lst, cluster.partitions)][0]
    return p["replicas"][0] if p["replicas"] else None


def probe_repl_deep(ctx, work):
    print("== replicated: body, framing, ids through failover and snapshot", flush=True)
    etcd = rl.Etcd(work).start()
    cluster = rl.Cluster(os.path.join(work, "deep"), etcd, nodes=3, replicas=2, partitions=8, router=True)
    os.makedirs(cluster.workdir, exist_ok=True)
    try:
        cluster.start(timeout=60)
        cluster.wait_router_map(ctx)
        rep = cluster.router_endpoint
        c = Conn(ctx, rep)
        sl.wait_until(lambda: code(c.call({"op": "entries", "list": "x"}, 2)) == "ok", 15, 0.2)
        probe_body(c, "repl-router", "qbody")
        probe_framing(ctx, rep, "repl-router")
        read_your_writes(ctx, rep, "qryw", 200, "repl-router")
        prim = primary_of(cluster, "qryw2")
        read_your_writes(ctx, cluster.endpoint(prim), "qryw2", 200, "repl-primary")
        # stats are published at each replication tick: wait until they are still.
        last = [None]

        def still():
            v = all_seq(ctx, cluster)
            same = v is not None and v == last[0]
            last[0] = v
            return same
        sl.wait_until(still, 15, 0.5)
        s0 = last[0]
        for i in range(5):
            r = c.call({"op": "entries", "list": f"never{i}"})
            check(code(r) == "ok" and r["result"] == [], "repl: never-written list []", str(r))
        time.sleep(1.0)
        s1 = all_seq(ctx, cluster)
        check(s0 is not None and s0 == s1, "repl: entries on never-written lists replicates nothing", f"{s0} {s1}")
        L = "idlist"
        for i in range(3):
            r = c.call({"op": "add_entry", "list": L, "date": "2024-01-01", "title": f"t{i}",
                        "rid": f"a{i}"})
            check(code(r) == "ok" and r["result"]["id"] == i + 1, "repl: add", str(r))
        r = c.call({"op": "delete_entry", "list": L, "entry_id": 3})
        check(code(r) == "ok" and r["result"] == {"deleted": True}, "repl: delete highest", str(r))
        r = c.call({"op": "update_entry", "list": L, "entry_id": 7, "title": "z", "rid": "nf"})
        check(code(r) == "not_found", "repl: not_found with rid", str(r))
        a = primary_of(cluster, L)
        cluster.kill9(a)
        cluster.wipe(a)
        def add_ok(rid, title):
            got = {}

            def f():
                rr = c.call({"op": "add_entry", "list": L, "date": "2024-01-01", "title": title, "rid": rid}, 6)
                got["r"] = rr
                return code(rr) == "ok"
            sl.wait_until(f, 30, 0.1)
            return got.get("r")
        r = add_ok("b4", "t4")
        check(code(r) == "ok" and r["result"]["id"] == 4, "repl: id not reused after delete + primary kill -9 and wipe",
              str(r))
        r = c.call({"op": "delete_entry", "list": L, "entry_id": 4})
        check(code(r) == "ok" and r["result"] == {"deleted": True}, "repl: delete highest (2)", str(r))
        # Wait for R to be restored without a (a snapshot to the third node).
        ok = sl.wait_until(lambda: (lambda st: st is not None and all(
            len(p["replicas"]) == 2 and p["in_sync"] == p["replicas"] and a not in p["replicas"]
            for p in st["partitions"]))(cluster.status()), 60, 0.5)
        check(ok, "repl: R restored after a kill", json.dumps(cluster.status())[:500])
        b = primary_of(cluster, L)
        cluster.kill9(b)
        r = add_ok("c5", "t5")
        check(code(r) == "ok" and r["result"]["id"] == 5,
              "repl: id not reused after delete + failover to a snapshot-fed replica", str(r))
        r = c.call({"op": "add_entry", "list": L, "date": "2024-01-01", "title": "t0", "rid": "a0"})
        check(code(r) == "ok" and r["result"]["id"] == 1, "repl: rid replayed after two failovers", str(r))
        r = c.call({"op": "update_entry", "list": L, "entry_id": 7, "title": "z", "rid": "nf"})
        check(code(r) == "not_found", "repl: not_found replayed after two failovers", str(r))
        r = c.call({"op": "entries", "list": L})
        check(code(r) == "ok" and [e["id"] for e in r["result"]] == [1, 2, 5], "repl: final content", str(r))
        c.close()
        # a node that is not a member serves nothing
        port, = sl.free_ports(1)
        argv = [sl.NODE_BIN, "--name", "n9", "--listen", f"tcp://127.0.0.1:{port}", "--data",
                os.path.join(work, "n9"), "--etcd", etcd.all_endpoints]
        p9 = sl.Process("n9", argv, os.path.join(work, "n9.log")).start()
        try:
            time.sleep(3)
            c9 = Conn(ctx, f"tcp://127.0.0.1:{port}")
            r = c9.call({"op": "add_entry", "list": L, "date": "2024-01-01", "title": "no"}, 3)
            check(code(r) != "ok", "repl: a non-member serves nothing", str(r))
            r = c9.call({"op": "entries", "list": L}, 3)
            check(code(r) != "ok", "repl: a non-member serves no read", str(r))
            c9.close()
            check("member" in p9.log(), "repl: a non-member logs why", p9.log()[-300:])
        finally:
            p9.terminate(timeout=10)
        # a static data dir started in replicated mode
        sport, = sl.free_ports(1)
        sdir = os.path.join(work, "static-dir")
        sp = sl.Process("s", sl.node_argv("n1", sport, sdir), os.path.join(work, "s.log")).start()
        check(sl.wait_serving(ctx, sport, sp), "static node for dir", sp.log()[-200:])
        cs = Conn(ctx, f"tcp://127.0.0.1:{sport}")
        cs.call({"op": "add_entry", "list": "s", "date": "2024-01-01", "title": "x"})
        cs.close()
        sp.terminate(timeout=10)
        argv = [sl.NODE_BIN, "--name", "n1", "--listen", f"tcp://127.0.0.1:{sport}", "--data", sdir,
                "--etcd", etcd.all_endpoints]
        try:
            done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
            check(done.returncode not in (0,) and done.stderr.strip(), "repl: static data dir refused with a message",
                  f"{done.returncode} {done.stderr[-300:]}")
        except subprocess.TimeoutExpired:
            check(False, "repl: static data dir refused", "the node kept running (migrated?)")
    finally:
        cluster.stop()
        etcd.stop()


def probe_more_flags(ctx, work):
    print("== more flags, formats, admin", flush=True)
    port, p2 = sl.free_ports(2)
    d = os.path.join(work, "mf")
    ep = f"tcp://127.0.0.1:{port}"
    cases = [
        ("node --listen garbage", [sl.NODE_BIN, "--name", "n", "--listen", "garbage", "--data", d]),
        ("node --name empty", [sl.NODE_BIN, "--name", "", "--listen", ep, "--data", d]),
        ("node --data empty", [sl.NODE_BIN, "--name", "n", "--listen", ep, "--data", ""]),
        ("node --shards 0", sl.node_argv("n1", port, d, "--shards", "0")),
        ("node --shards -1", sl.node_argv("n1", port, d, "--shards", "-1")),
        ("node --workers 0", sl.node_argv("n1", port, d, "--workers", "0")),
        ("node --mailbox 0", sl.node_argv("n1", port, d, "--mailbox", "0")),
        ("node --idle-timeout -1", sl.node_argv("n1", port, d, "--idle-timeout", "-1")),
        ("node --rid-ttl bogus", sl.node_argv("n1", port, d, "--rid-ttl", "bogus")),
        ("node --log-level loud", sl.node_argv("n1", port, d, "--log-level", "loud")),
        ("node --name twice", sl.node_argv("n1", port, d, "--name", "n2")),
        ("node --lease-ms 0", sl.node_argv("n1", port, d, "--etcd", "http://127.0.0.1:1", "--lease-ms", "0")),
        ("router --node n1=", [sl.ROUTER_BIN, "--listen", ep, "--node", "n1="]),
        ("router --node =tcp", [sl.ROUTER_BIN, "--listen", ep, "--node", f"=tcp://127.0.0.1:{p2}"]),
        ("router --node garbage ep", [sl.ROUTER_BIN, "--listen", ep, "--node", "n1=garbage"]),
        ("router duplicate node name", [sl.ROUTER_BIN, "--listen", ep, "--node", f"n1=tcp://127.0.0.1:{p2}",
                                        "--node", f"n1=tcp://127.0.0.1:{p2 + 1}"]),
        ("router no nodes", [sl.ROUTER_BIN, "--listen", ep]),
        ("router --listen garbage", [sl.ROUTER_BIN, "--listen", "garbage", "--node", f"n1=tcp://127.0.0.1:{p2}"]),
        ("router --timeout-ms 0", sl.router_argv(port, [("n1", p2)], "--timeout-ms", "0")),
        ("router --timeout-ms -5", sl.router_argv(port, [("n1", p2)], "--timeout-ms", "-5")),
        ("router --http garbage", sl.router_argv(port, [("n1", p2)], "--http", "garbage")),
        ("router --etcd with --node", sl.router_argv(port, [("n1", p2)], "--etcd", "http://127.0.0.1:1")),
        ("router --max-inflight 0", sl.router_argv(port, [("n1", p2)], "--max-inflight", "0")),
        ("admin init --replicas 0", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "init", "--replicas", "0", "n1"]),
        ("admin init no names", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "init", "--replicas", "1"]),
        ("admin init --partitions 0", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "init", "--replicas", "1",
                                       "--partitions", "0", "n1"]),
        ("admin no --etcd", [rl.ADMIN_BIN, "status"]),
        ("admin init R > names", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "init", "--replicas", "3",
                                  "n1", "n2"]),
        ("admin init K > R", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "init", "--replicas", "2",
                              "--min-insync", "3", "n1", "n2"]),
        ("admin init duplicate names", [rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "init", "--replicas", "1",
                                        "n1", "n1"]),
    ]
    for what, argv in cases:
        done = run_refusal(what, argv, 8, "still running after 8 s (accepted?)")
        if done is None:
            continue
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        check(done.returncode in (1, 2), what + " refused", f"{done.returncode} {done.stderr[-300:]}")
        check(done.returncode != 2 or len(lines) == 1, what + " one line", repr(done.stderr[-400:]))
    # admin against a dead etcd: bounded, exit 1
    t0 = time.monotonic()
    try:
        done = subprocess.run([rl.ADMIN_BIN, "--etcd", "http://127.0.0.1:1", "status", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, text=True)
        check(done.returncode == 1, "admin: status with etcd down -> 1", f"{done.returncode} {done.stderr[-200:]}")
    except subprocess.TimeoutExpired:
        check(False, "admin: status with etcd down", "hung 30 s")
    print(f"   admin vs dead etcd took {time.monotonic() - t0:.1f}s", flush=True)
    # format mismatch in MANIFEST
    node = sl.Process("f", sl.node_argv("n1", port, d), os.path.join(work, "f.log")).start()
    check(sl.wait_serving(ctx, port, node), "format node serving", node.log()[-200:])
    node.terminate(timeout=10)
    man = os.path.join(d, "MANIFEST")
    txt = open(man).read()
    open(man, "w").write(txt.replace("format 1", "format 9"))
    done = subprocess.run(sl.node_argv("n1", port, d), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10,
                          text=True)
    check(done.returncode != 0 and "format" in done.stderr, "node: refuses a format mismatch",
          f"{done.returncode} {done.stderr[-200:]}")
    shutil.rmtree(d, ignore_errors=True)


def probe_http_more(hp):
    print("== http more", flush=True)
    cases = [
        ("POST", "/lists/hm/entries", json.dumps({"date": "2026-12-19", "title": "t" * 1025}), 400),
        ("POST", "/lists/hm/entries", json.dumps({"date": "2026-12-19", "title": "t" * 1024}), 201),
        ("POST", "/lists/hm/entries", json.dumps({"date": "2026-12-19"}), 400),
        ("POST", "/lists/hm/entries", "{bad json", 400),
        ("POST", "/lists/hm/entries", json.dumps({"date": "2026-12-19", "title": "x", "n": 1e999}).replace("inf", "1e999"), 400),
        ("POST", "/lists/hm/entries", "x" * 70000, 413),
        ("PATCH", "/lists/hm/entries/1", json.dumps({}), 400),
        ("PATCH", "/lists/hm/entries/99", json.dumps({"title": "x"}), 404),
        ("PATCH", "/lists/hm/entries/-1", json.dumps({"title": "x"}), 400),
        ("PATCH", "/lists/hm/entries/abc", json.dumps({"title": "x"}), 400),
        ("PATCH", "/lists/hm/entries/18446744073709551616", json.dumps({"title": "x"}), 400),
        ("DELETE", "/lists/hm/entries/18446744073709551615", None, 200),
        ("GET", "/lists/hm/entries?date=2026-02-29", None, 400),
        ("GET", "/lists/" + "a" * 256 + "/entries", None, 400),
        ("GET", "/lists/%zz/entries", None, 400),
        ("GET", "/lists/%FF/entries", None, 400),
        ("GET", "/nosuch", None, 404),
        ("PUT", "/lists/hm/entries", None, 405),
        ("GET", "/entries?list=hm", None, 400),
        ("POST", "/add_entry?list=hm&date=2026-02-29&title=x", b"", 400),
        ("POST", "/add_entry?list=hm&date=2026-01-01", b"", 400),
        ("GET", "/health", None, 200),
        ("GET", "/lists/a%2Fb/owner", None, 200),
    ]
    for method, path, body, want in cases:
        try:
            st, b, h = http_req(hp, method, path, body)
        except Exception as e:  # noqa: BLE001
            st, b, h = repr(e), "", {}
        check(st == want, f"http: {method} {path[:60]} -> {want}", f"{st} {b[:200]!r}")
        if want == 405:
            check("Allow" in h, "http: 405 has Allow", str(h))
    st, b, h = http_req(hp, "POST", "/lists/hm/entries", json.dumps({"date": "2026-12-19", "title": "A"}),
                        {"Idempotency-Key": '"quoted"'})
    check(st == 201, "http: quoted Idempotency-Key", f"{st} {b}")
    conn = http.client.HTTPConnection("127.0.0.1", hp, timeout=10)
    conn.putrequest("POST", "/lists/hm/entries")
    conn.putheader("Idempotency-Key", "k1")
    conn.putheader("Idempotency-Key", "k2")
    body = json.dumps({"date": "2026-12-19", "title": "A"}).encode()
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    check(resp.status == 400, "http: two Idempotency-Key headers -> 400", f"{resp.status} {resp.read()[:100]}")
    conn.close()
    st, b, h = http_req(hp, "GET", "/lists/a%2Fb/owner")
    print("   owner:", st, b, flush=True)


def probe_repl_insync(ctx, work):
    print("== replicated: --min-insync 2, no live in-sync replica", flush=True)
    etcd = rl.Etcd(work).start()
    cluster = rl.Cluster(os.path.join(work, "mi"), etcd, nodes=2, replicas=2, partitions=8, min_insync=2,
                         router=True)
    os.makedirs(cluster.workdir, exist_ok=True)
    try:
        cluster.start(timeout=60)
        cluster.wait_router_map(ctx)
        rep = cluster.router_endpoint
        c = Conn(ctx, rep)
        r = c.call({"op": "ping"})
        check(r == {"ok": True, "result": {"pong": True, "role": "router", "name": rep}},
              "repl router: ping name = listen endpoint", str(r))
        lists = [f"m{i}" for i in range(16)]
        for L in lists:
            r = c.call({"op": "add_entry", "list": L, "date": "2024-01-01", "title": "first"}, 6)
            check(code(r) == "ok", "repl K=2: first add", str(r))
        st = cluster.status()
        victim = "n2"
        parts = {p["partition"]: p for p in st["partitions"]}
        hit = [L for L in lists if victim in parts[rl.partition_of(L, 8)]["replicas"]]
        cluster.kill9(victim)
        # Until the partitions without the victim refuse writes (its lease
        # expired): a throwaway list of such a partition, bounded.
        probe = [f"z{i}" for i in range(200) if victim in parts[rl.partition_of(f"z{i}", 8)]["replicas"]][0]
        ok = sl.wait_until(lambda: code(c.call({"op": "add_entry", "list": probe, "date": "2024-01-01",
                                                "title": "p"}, 7)) == "unavailable", 30, 0.2)
        check(ok, "repl K=2: writes refused once the victim is gone")
        codes = {}
        first_code = {}
        for L in hit:
            r = c.call({"op": "add_entry", "list": L, "date": "2024-01-01", "title": "during", "rid": "w-" + L}, 7)
            codes[code(r)] = codes.get(code(r), 0) + 1
            first_code[L] = code(r)
        print(f"   K=2 with {victim} dead: writes to its partitions: {codes}", flush=True)
        # `timeout` for a write that waited on the victim before the map took
        # it out of sync (outcome unknown); `unavailable` once below K.
        check(set(codes) <= {"unavailable", "timeout"}, "repl K=2: no write acknowledged below K", str(codes))
        rcodes = {}
        for L in hit:
            r = c.call({"op": "entries", "list": L}, 7)
            rcodes[code(r)] = rcodes.get(code(r), 0) + 1
            if code(r) == "ok" and first_code[L] == "unavailable":
                check([e["title"] for e in r["result"]] == ["first"], "repl K=2: refused write not applied", str(r))
        print(f"   K=2 reads of those lists: {rcodes}", flush=True)
        # Back: the refused writes left no rid record.
        cluster.start_node(victim)
        ok = sl.wait_until(lambda: code(c.call({"op": "add_entry", "list": hit[0], "date": "2024-01-01",
                                                "title": "probe"}, 3)) == "ok", 60, 0.5)
        check(ok, "repl K=2: writes again once the node is back")
        for L in hit:
            r = c.call({"op": "add_entry", "list": L, "date": "2024-01-01", "title": "during", "rid": "w-" + L}, 7)
            if code(r) != "ok":
                sl.wait_until(lambda: code(c.call({"op": "entries", "list": L}, 3)) == "ok", 30, 0.5)
                r = c.call({"op": "add_entry", "list": L, "date": "2024-01-01", "title": "during", "rid": "w-" + L}, 7)
            got = c.call({"op": "entries", "list": L}, 7)
            titles = [e["title"] for e in got["result"]] if code(got) == "ok" else got
            check(code(r) == "ok" and isinstance(titles, list) and titles.count("during") == 1,
                  "repl K=2: a refused or timed-out write, retried with its rid, applied once", f"{r} {titles}")
        cluster.wait_in_sync(60)
        # Both replicas of a partition dead: unavailable (not a wrong answer), then back with the data.
        st = cluster.status()
        parts = {p["partition"]: p for p in st["partitions"]}
        L = lists[0]
        pair = parts[rl.partition_of(L, 8)]["replicas"]
        for n in pair:
            cluster.kill9(n)
        time.sleep(5)
        t0 = time.monotonic()
        r = c.call({"op": "entries", "list": L}, 8)
        dt = time.monotonic() - t0
        check(code(r) in ("unavailable", "timeout") and dt < 7.9, "repl: no live replica -> unavailable/timeout in deadline",
              f"{r} {dt:.1f}s")
        print(f"   no live replica: {code(r)} after {dt:.2f}s", flush=True)
        for n in pair:
            cluster.start_node(n)
        ok = sl.wait_until(lambda: code(c.call({"op": "entries", "list": L}, 3)) == "ok", 60, 0.5)
        r = c.call({"op": "entries", "list": L}, 5)
        check(ok and code(r) == "ok" and [e["title"] for e in r["result"]][:1] == ["first"],
              "repl: the partition comes back with its data", str(r))
        # every key under /todo/<cluster>/
        import base64
        body = json.dumps({"key": base64.b64encode(b"\0").decode(),
                           "range_end": base64.b64encode(b"\0").decode(), "keys_only": True}).encode()
        import urllib.request
        req = urllib.request.Request(etcd.endpoints.split(",")[0] + "/v3/kv/range", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=3) as resp:
            keys = [base64.b64decode(k["key"]).decode(errors="replace") for k in json.loads(resp.read()).get("kvs", [])]
        done = cluster.admin("remove-node", "n1", check=False)
        check(done.returncode == 1 and done.stderr.strip(), "admin: remove-node leaving fewer than R members -> 1",
              f"{done.returncode} {done.stderr}")
        done = cluster.admin("add-node", "n4", check=False)
        st = cluster.status()
        check(done.returncode == 0 and st is not None and "n4" in [m["name"] for m in st["members"]],
              "admin: add-node returns once the map names the member", f"{done.returncode} {done.stderr}")
        # n4 never runs: its add stays in progress, and a second is refused.
        done = cluster.admin("add-node", "n5", check=False)
        check(done.returncode == 1 and "in progress" in done.stderr,
              "admin: a second add-node while one is in progress -> 1",
              f"{done.returncode} {done.stderr} {done.stdout[-200:]}")
        outside = [k for k in keys if not k.startswith("/todo/todo/")]
        check(keys and not outside, "repl: everything in etcd under /todo/<cluster>/", str(outside[:5]))
        c.close()
    finally:
        cluster.stop()
        etcd.stop()


def probe_clients(ctx, work):
    print("== clients retry writes with one rid; concurrent retries of one rid", flush=True)
    import threading
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "deploy"))
    import todo_client
    port, rp = sl.free_ports(2)
    node = sl.Process("c1", sl.node_argv("c1", port, os.path.join(work, "cl")), os.path.join(work, "c1.log")).start()
    router = sl.Process("cr", sl.router_argv(rp, [("c1", port)], "--timeout-ms", "400"),
                        os.path.join(work, "cr.log")).start()
    try:
        check(sl.wait_serving(ctx, port, node), "client node serving")
        check(sl.wait_serving(ctx, rp, router), "client router serving")
        rep = f"tcp://127.0.0.1:{rp}"
        sl.wait_until(lambda: code(Conn(ctx, rep).call({"op": "entries", "list": "x"}, 1)) == "ok", 10, 0.1)

        def freeze(sec):
            os.kill(node.pid, signal.SIGSTOP)
            time.sleep(sec)
            os.kill(node.pid, signal.SIGCONT)
        th = threading.Thread(target=freeze, args=(1.5,))
        th.start()
        time.sleep(0.05)
        cl = todo_client.TodoClient(rep, timeout=1.0, retries=10, backoff=0.1, deadline=15, smart=False)
        try:
            got = cl.add_entry("cli", "2024-01-01", "once")
        except Exception as e:  # noqa: BLE001
            got = repr(e)
        th.join()
        r = Conn(ctx, rep).call({"op": "entries", "list": "cli"})
        check(got == 1 and code(r) == "ok" and len(r["result"]) == 1, "python client: a write retried past timeouts once",
              f"{got} {r}")
        cl.close()
        th = threading.Thread(target=freeze, args=(1.5,))
        th.start()
        time.sleep(0.05)
        done = subprocess.run(["/usr/bin/python3", os.path.join(os.path.dirname(HERE), "deploy", "todo"),
                               "--endpoint", rep, "--timeout", "1", "--retries", "10", "--no-smart",
                               "add", "cli2", "2024-01-01", "once"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=30)
        th.join()
        r = Conn(ctx, rep).call({"op": "entries", "list": "cli2"})
        check(done.returncode == 0 and code(r) == "ok" and len(r["result"]) == 1,
              "todo command: a write retried past timeouts once", f"{done.returncode} {done.stdout} {done.stderr[-200:]} {r}")
        # Thousands of concurrent retries of one rid, through the router and directly.
        socks = [Conn(ctx, rep) for _ in range(8)] + [Conn(ctx, f"tcp://127.0.0.1:{port}") for _ in range(8)]
        body = {"op": "add_entry", "list": "same", "date": "2024-01-01", "title": "t", "rid": "the-one"}
        for k, sc in enumerate(socks):
            sc.sock.setsockopt(zmq.SNDHWM, 0)
            for i in range(250):
                sc.sock.send(pack(dict(body, id=i)))
        results = {}
        deadline = time.monotonic() + 30
        n = 0
        for sc in socks:
            while n < 4000 and time.monotonic() < deadline:
                if not sc.sock.poll(500):
                    break
                rr = msgpack.unpackb(sc.sock.recv(), raw=False)
                n += 1
                key = json.dumps(rr.get("result") if rr.get("ok") else rr.get("error", {}).get("code"))
                results[key] = results.get(key, 0) + 1
        for sc in socks:
            sc.close()
        r = Conn(ctx, rep).call({"op": "entries", "list": "same"})
        print(f"   4000 retries of one rid: {results}", flush=True)
        check(code(r) == "ok" and len(r["result"]) == 1, "4000 concurrent retries of one rid: one effect", str(r)[:200])
        check(list(results) == ['{"id": 1}'], "4000 concurrent retries of one rid: every reply the first's", str(results))
    finally:
        router.terminate(timeout=10)
        node.terminate(timeout=10)


def probe_fake_node(ctx, work):
    """A node written by others (a plain ROUTER socket in Python) behind our router."""
    print("== router in front of a foreign node", flush=True)
    import threading
    np_, rp = sl.free_ports(2)
    fake = ctx.socket(zmq.ROUTER)
    fake.setsockopt(zmq.LINGER, 0)
    fake.bind(f"tcp://127.0.0.1:{np_}")
    seen = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            if not fake.poll(50):
                continue
            frames = fake.recv_multipart()
            body = frames[-1]
            try:
                req = msgpack.unpackb(body, raw=False)
            except Exception:  # noqa: BLE001
                req = {}
            if req.get("op") != "ping":
                seen.append(frames)
            if req.get("op") == "ping":
                res = {"pong": True, "role": "node", "name": "f1"}
            elif req.get("op") == "entries":
                res = []
            else:
                res = {"id": 1}
            rep = {"ok": True, "result": res}
            if "id" in req:
                rep = {"id": req["id"], "ok": True, "result": res}
            fake.send_multipart(frames[:-1] + [pack(rep)])

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    router = sl.Process("fr", sl.router_argv(rp, [("f1", np_)]), os.path.join(work, "fr.log")).start()
    try:
        check(sl.wait_serving(ctx, rp, router), "router before a foreign node serving")
        rep = f"tcp://127.0.0.1:{rp}"
        c = Conn(ctx, rep)
        ok = sl.wait_until(lambda: code(c.call({"op": "entries", "list": "a", "id": 5}, 1)) == "ok", 10, 0.2)
        check(ok, "router forwards to a foreign node")
        seen.clear()
        body = pack({"op": "add_entry", "list": "a", "date": "2024-01-01", "title": "t", "id": 9, "zz": 1})
        got = c.frames([b"", body])
        check(got is not None and len(got) == 2 and got[0] == b"" and msgpack.unpackb(got[1], raw=False).get("id") == 9,
              "foreign node: reply framed as the request (delimiter)", str(got))
        check(len(seen) == 1 and seen[0][-1] == body, "router forwards the body unchanged (not re-encoded)",
              str(seen)[:300])
        check(len(seen) == 1 and b"\xb7todo-batch/1" not in seen[0], "a foreign node never gets a batch", str(seen)[:200])
        seen.clear()
        got = c.frames([body])
        check(got is not None and len(got) == 1, "foreign node: reply framed as the request (no delimiter)", str(got))
        # many pipelined: still v1 one by one
        seen.clear()
        for i in range(50):
            c.sock.send(pack({"op": "entries", "list": f"l{i}", "id": i}))
        n = 0
        deadline = time.monotonic() + 10
        while n < 50 and time.monotonic() < deadline:
            if c.sock.poll(200):
                c.sock.recv()
                n += 1
        check(n == 50 and all(b"\xb7todo-batch/1" not in f for f in seen), "foreign node: 50 pipelined, all v1",
              f"{n} {len(seen)}")
        c.close()
    finally:
        router.terminate(timeout=10)
        stop.set()
        th.join(timeout=5)
        fake.close()


def read_your_writes(ctx, ep, lst, pairs, label):
    """Pipelines add, entries, add, entries ... on one list; each entries must
    show exactly the adds sent before it (per-list order, no stale read)."""
    c = Conn(ctx, ep)
    c.sock.setsockopt(zmq.SNDHWM, 0)
    for i in range(pairs):
        c.sock.send(pack({"op": "add_entry", "list": lst, "date": "2024-01-01", "title": f"t{i}", "id": 2 * i}))
        c.sock.send(pack({"op": "entries", "list": lst, "id": 2 * i + 1}))
    got = {}
    deadline = time.monotonic() + 30
    while len(got) < 2 * pairs and time.monotonic() < deadline:
        if c.sock.poll(200):
            r = msgpack.unpackb(c.sock.recv(), raw=False)
            got[r.get("id")] = r
    c.close()
    bad = []
    for i in range(pairs):
        r = got.get(2 * i + 1)
        if code(r) != "ok" or [e["title"] for e in r["result"]] != [f"t{k}" for k in range(i + 1)]:
            bad.append((i, None if r is None else str(r)[:200]))
    check(len(got) == 2 * pairs and not bad, f"{label}: each read shows exactly the writes sent before it",
          f"{len(got)} replies, {len(bad)} bad, first {bad[:2]}")


def probe_order_evict(ctx, work):
    print("== per-list order, no stale reads; ids across actor eviction", flush=True)
    port, = sl.free_ports(1)
    node = sl.Process("e1", sl.node_argv("e1", port, os.path.join(work, "ev"), "--idle-timeout", "0.3"),
                      os.path.join(work, "e1.log")).start()
    try:
        check(sl.wait_serving(ctx, port, node), "evict node serving")
        ep = f"tcp://127.0.0.1:{port}"
        read_your_writes(ctx, ep, "ryw", 300, "node")
        c = Conn(ctx, ep)
        for i in range(3):
            c.call({"op": "add_entry", "list": "ev", "date": "2024-01-01", "title": "x"})
        c.call({"op": "add_entry", "list": "ev2", "date": "2024-01-01", "title": "x", "rid": "e"})
        r = c.call({"op": "delete_entry", "list": "ev", "entry_id": 3})
        r = c.call({"op": "delete_entry", "list": "ev", "entry_id": 2})
        for i in range(2):
            c.call({"op": "add_entry", "list": "evall", "date": "2024-01-01", "title": "x"})
        c.call({"op": "delete_entry", "list": "evall", "entry_id": 2})
        c.call({"op": "delete_entry", "list": "evall", "entry_id": 1})
        time.sleep(0.4)
        ok = sl.wait_until(lambda: (lambda r: code(r) == "ok" and r["result"].get("live_actors", 1) == 0)(
            c.call({"op": "stats"})), 15, 0.3)
        r = c.call({"op": "stats"})
        print(f"   after idle: live_actors {r['result'].get('live_actors')}, evicted {r['result'].get('actors_evicted')}",
              flush=True)
        check(ok, "evict: actors evicted when idle", str(r)[:200])
        r = c.call({"op": "add_entry", "list": "ev", "date": "2024-01-01", "title": "y"})
        check(code(r) == "ok" and r["result"]["id"] == 4, "evict: id not reused after delete + eviction", str(r))
        r = c.call({"op": "add_entry", "list": "evall", "date": "2024-01-01", "title": "y"})
        check(code(r) == "ok" and r["result"]["id"] == 3, "evict: id not reused, all deleted + eviction", str(r))
        r = c.call({"op": "add_entry", "list": "ev2", "date": "2024-01-01", "title": "x", "rid": "e"})
        check(code(r) == "ok" and r["result"]["id"] == 1, "evict: rid replayed after eviction", str(r))
        r = c.call({"op": "entries", "list": "ev2"})
        check(code(r) == "ok" and len(r["result"]) == 1, "evict: rid replay added nothing", str(r))
        c.close()
    finally:
        node.terminate(timeout=10)


def probe_kill9(ctx, work):
    print("== kill -9 under a pipelined load: acknowledged changes kept; rid retries apply once", flush=True)
    port, = sl.free_ports(1)
    data = os.path.join(work, "k9")
    node = sl.Process("k1", sl.node_argv("k1", port, data), os.path.join(work, "k1.log")).start()
    try:
        check(sl.wait_serving(ctx, port, node), "k9 node serving")
        ep = f"tcp://127.0.0.1:{port}"
        c = Conn(ctx, ep)
        for L in ("kd0", "kd1", "kd2", "kd3"):
            for i in range(20):
                c.call({"op": "add_entry", "list": L, "date": "2024-01-01", "title": "seed"})
        c.sock.setsockopt(zmq.SNDHWM, 0)
        reqs = []
        for i in range(6000):
            L = f"k{i % 40}"
            reqs.append({"op": "add_entry", "list": L, "date": "2024-01-01", "title": f"{L}:{i}", "rid": f"r{i}"})
            if i % 10 == 0:
                reqs.append({"op": "delete_entry", "list": f"kd{i % 4}", "entry_id": 20 - (i // 10) % 20})
                reqs.append({"op": "update_entry", "list": f"kd{i % 4}", "entry_id": 1 + (i // 10) % 20, "title": f"u{i}"})
        for j, r in enumerate(reqs):
            c.sock.send(pack(dict(r, id=j)))
        acked = {}
        deadline = time.monotonic() + 20
        while len(acked) < len(reqs) // 3 and time.monotonic() < deadline:
            if c.sock.poll(100):
                rr = msgpack.unpackb(c.sock.recv(), raw=False)
                acked[rr["id"]] = rr
        node.kill9()
        while c.sock.poll(50):
            rr = msgpack.unpackb(c.sock.recv(), raw=False)
            acked[rr["id"]] = rr
        c.close()
        print(f"   kill -9 after {len(acked)} of {len(reqs)} replies", flush=True)
        node = sl.Process("k1", sl.node_argv("k1", port, data), os.path.join(work, "k1.log")).start()
        check(sl.wait_serving(ctx, port, node), "k9 node restarted")
        c = Conn(ctx, ep)
        lists = {}
        for L in [f"k{i}" for i in range(40)] + [f"kd{i}" for i in range(4)]:
            r = c.call({"op": "entries", "list": L})
            lists[L] = {e["id"]: e for e in r["result"]} if code(r) == "ok" else {}
        lost = []
        for j, rr in acked.items():
            q = reqs[j]
            if not rr.get("ok"):
                continue
            L = q["list"]
            if q["op"] == "add_entry" and lists[L].get(rr["result"]["id"], {}).get("title") != q["title"]:
                lost.append((j, q, rr))
            if q["op"] == "delete_entry" and rr["result"]["deleted"] and q["entry_id"] in lists[L]:
                lost.append((j, q, rr))
        check(not lost, "kill -9: every acknowledged change is there", str(lost[:3]))
        # Retry every add with its rid: each intended entry exactly once, acked replies equal.
        diff = []
        for j, q in enumerate(reqs):
            if q["op"] != "add_entry":
                continue
            r = c.call(dict(q, id=j))
            if j in acked and acked[j].get("ok") and r != acked[j]:
                diff.append((j, acked[j], r))
        check(not diff, "kill -9: a retried write gets the first reply", str(diff[:3]))
        dup = []
        for i in range(40):
            r = c.call({"op": "entries", "list": f"k{i}"})
            titles = [e["title"] for e in r["result"]]
            want = sorted(q["title"] for q in reqs if q["op"] == "add_entry" and q["list"] == f"k{i}")
            if sorted(titles) != want:
                dup.append((i, len(titles), len(want)))
        check(not dup, "kill -9 + rid retries: each intended entry exactly once", str(dup[:3]))
        c.close()
    finally:
        node.terminate(timeout=10)


def probe_rid_ttl(ctx, work):
    print("== rid records kept at least --rid-ttl, then dropped", flush=True)
    port, = sl.free_ports(1)
    node = sl.Process("t1", sl.node_argv("t1", port, os.path.join(work, "ttl"), "--rid-ttl", "2s"),
                      os.path.join(work, "t1.log")).start()
    try:
        check(sl.wait_serving(ctx, port, node), "ttl node serving")
        c = Conn(ctx, f"tcp://127.0.0.1:{port}")
        A = {"op": "add_entry", "list": "ttl", "date": "2024-01-01", "title": "x", "rid": "t"}
        t0 = time.monotonic()
        r1 = c.call(A)
        kept = []
        while time.monotonic() - t0 < 1.8:
            kept.append(c.call(A) == r1)
            time.sleep(0.2)
        check(code(r1) == "ok" and all(kept), "rid: record kept for the TTL", str(kept))
        gone = sl.wait_until(lambda: (lambda r: code(r) == "ok" and r["result"]["rids"]["records"] == 0)(
            c.call({"op": "stats"})), 10, 0.2)
        dt = time.monotonic() - t0
        check(gone, "rid: the record dropped after the TTL", f"{dt:.1f}s")
        r2 = c.call(A)
        check(code(r2) == "ok" and r2["result"]["id"] == 2, "rid: after expiry a retry is a first request", str(r2))
        r = c.call({"op": "stats"})
        check(code(r) == "ok" and r["result"]["rids"]["expired"] >= 1, "rid: stats count the expired", str(r)[:200])
        c.close()
    finally:
        node.terminate(timeout=10)


def probe_protocol_md():
    """common/PROTOCOL.md agrees with protocol.md on a few checkable facts."""
    with open(os.path.join(os.path.dirname(HERE), "common", "PROTOCOL.md")) as f:
        txt = f.read()
    for needle in ("65536", "1–255", "1–1024", "0001–9999", "`{\"deleted\": true}`"):
        check(needle in txt, f"PROTOCOL.md mentions {needle}")


def main():
    miss = sl.missing_binaries()
    if miss:
        print(miss)
        return sl.SKIP
    if not os.access(rl.ADMIN_BIN, os.X_OK) or not os.access(rl.ETCD_BIN, os.X_OK):
        print(f"missing: {rl.ADMIN_BIN} or {rl.ETCD_BIN} (build, and deploy/install-deps for etcd)")
        return 1
    ctx = zmq.Context()
    work = tempfile.mkdtemp(prefix="todo-conformance-")
    only = sys.argv[1:]
    try:
        steps = [("flags", lambda: probe_flags(work)), ("node", lambda: probe_single_node(ctx, work)),
                 ("router", lambda: probe_router(ctx, work)), ("repl", lambda: probe_replicated(ctx, work)),
                 ("bounds", lambda: probe_bounds(ctx, work)),
                 ("deep", lambda: probe_repl_deep(ctx, work)),
                 ("mflags", lambda: probe_more_flags(ctx, work)),
                 ("insync", lambda: probe_repl_insync(ctx, work)),
                 ("clients", lambda: probe_clients(ctx, work)),
                 ("fake", lambda: probe_fake_node(ctx, work)),
                 ("order", lambda: probe_order_evict(ctx, work)),
                 ("kill9", lambda: probe_kill9(ctx, work)),
                 ("ttl", lambda: probe_rid_ttl(ctx, work)),
                 ("doc", probe_protocol_md)]
        for name, fn in steps:
            if only and name not in only:
                continue
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                check(False, f"{name} raised", repr(e))
    finally:
        ctx.destroy(linger=0)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{PASSES[0]} checks passed, {len(FAILS)} failed", flush=True)
    for f in FAILS:
        print("  FAIL", f)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
