#!/usr/bin/python3
"""Writes the seed corpus of each fuzz target to tests/fuzz/corpus/<target>/.

Seeds are named seed-*; regression inputs (crashes the fuzzer found, kept
after the fix) are named regress-* and are never touched by this script.
Run it again after changing a seed; it rewrites every seed-* file.
"""

import os
import struct

import msgpack

HERE = os.path.dirname(os.path.realpath(__file__))


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def request_seeds():
    title_max = "t" * 1024
    list_max = "l" * 255
    s = {
        "ping": pack({"op": "ping"}),
        "ping-uint-id": pack({"op": "ping", "id": 7}),
        "ping-str-id": pack({"op": "ping", "id": "req-1"}),
        "stats": pack({"op": "stats", "id": 1}),
        "locate": pack({"op": "locate", "list": "groceries", "id": 2}),
        "add": pack({"op": "add_entry", "id": 3, "list": "groceries", "date": "2026-03-01",
                     "title": "milk"}),
        "add-utf8-leap-day": pack({"op": "add_entry", "list": "Bob's list/\u00e9\u6f22",
                                   "date": "2024-02-29", "title": "caf\u00e9 \U0001F600"}),
        "add-max-sizes": pack({"op": "add_entry", "list": list_max, "date": "9999-12-31",
                               "title": title_max}),
        "entries": pack({"op": "entries", "list": "groceries", "id": "e"}),
        "entries-str8-id": pack({"op": "entries", "list": "groceries", "id": "i" * 40}),
        "entries-str16-id": pack({"op": "entries", "list": "groceries", "id": "i" * 300}),
        "entries-date": pack({"op": "entries", "list": "groceries", "date": "0001-01-01"}),
        "update-date": pack({"op": "update_entry", "list": "groceries", "entry_id": 1,
                             "date": "2026-12-31"}),
        "update-title": pack({"op": "update_entry", "list": "groceries", "entry_id": 2,
                              "title": "bread"}),
        "update-both": pack({"op": "update_entry", "list": "groceries",
                             "entry_id": 2**64 - 1, "date": "2000-02-29", "title": "x"}),
        "delete": pack({"op": "delete_entry", "list": "groceries", "entry_id": 1, "id": 9}),
        "unknown-keys": pack({"op": "ping", "extra": {"nested": [1, 2.5, None, b"bin"]},
                              "list": b"\xff"}),
        # Edge cases that must be refused.
        "bad-unknown-op": pack({"op": "add", "id": 1}),
        "bad-missing-op": pack({"id": 1, "list": "a"}),
        "bad-feb-29": pack({"op": "add_entry", "list": "a", "date": "2026-02-29",
                            "title": "x"}),
        "bad-bin-list": pack({"op": "entries", "list": b"groceries"}),
        "bad-list-too-long": pack({"op": "entries", "list": list_max + "l"}),
        "bad-title-too-long": pack({"op": "add_entry", "list": "a", "date": "2026-01-01",
                                    "title": title_max + "t"}),
        # A surrogate (U+DCFF) encoded in UTF-8 is not valid UTF-8.
        "bad-invalid-utf8": b"\x82" + pack("op") + pack("entries") + pack("list") +
                            b"\xa3\xed\xb3\xbf",
        "bad-negative-entry-id": pack({"op": "delete_entry", "list": "a", "entry_id": -1}),
        "bad-float-id": pack({"op": "ping", "id": 1.0}),
        "bad-array-body": pack(["op", "ping"]),
        "bad-trailing": pack({"op": "ping"}) + b"\x00",
        "bad-truncated": pack({"op": "add_entry", "list": "groceries"})[:-3],
        "bad-empty": b"",
        "bad-int-key": b"\x82\x01\x02" + pack("op") + pack("ping"),
        "bad-too-deep": b"\x81\xa1x" + b"\x91" * 40 + b"\xc0",
        # The optional rid of a write (1-64 bytes of any bytes).
        "add-rid": pack({"op": "add_entry", "id": 4, "list": "groceries", "date": "2026-03-01",
                         "title": "milk", "rid": "8e03978e-40d5-43e8-bc93-6894a57f9324"}),
        "update-rid-max": pack({"op": "update_entry", "list": "groceries", "entry_id": 1,
                                "title": "x", "rid": "r" * 64}),
        "delete-rid-control-bytes": pack({"op": "delete_entry", "list": "a", "entry_id": 3,
                                          "rid": "\x00\x01\x7f"}),
        "entries-rid-ignored": pack({"op": "entries", "list": "a", "rid": 7}),
        "bad-rid-empty": pack({"op": "add_entry", "list": "a", "date": "2026-01-01",
                               "title": "x", "rid": ""}),
        "bad-rid-too-long": pack({"op": "delete_entry", "list": "a", "entry_id": 1,
                                  "rid": "r" * 65}),
        "bad-rid-bin": pack({"op": "delete_entry", "list": "a", "entry_id": 1,
                             "rid": b"abc"}),
        "bad-rid-uint": pack({"op": "update_entry", "list": "a", "entry_id": 1, "date":
                              "2026-01-01", "rid": 12345}),
    }
    # A rid whose str bytes are not UTF-8 (msgpack str, raw bytes): accepted.
    s["add-rid-not-utf8"] = (b"\x85" + pack("op") + pack("add_entry") + pack("list") +
                             pack("a") + pack("date") + pack("2026-01-01") + pack("title") +
                             pack("x") + pack("rid") + b"\xa2\xff\xfe")
    # Duplicate rid, by hand.
    s["bad-duplicate-rid"] = (b"\x85" + pack("op") + pack("delete_entry") + pack("list") +
                              pack("a") + pack("entry_id") + pack(1) + pack("rid") +
                              pack("x") + pack("rid") + pack("y"))
    # A non-negative entry_id in a signed encoding (int64) is a uint.
    s["delete-int64-entry-id"] = (b"\x83" + pack("op") + pack("delete_entry") + pack("list") +
                                  pack("a") + pack("entry_id") + b"\xd3" + struct.pack(">q", 5))
    # Duplicate known key, written by hand (a dict can't hold one).
    s["bad-duplicate-list"] = (b"\x83" + pack("op") + pack("entries") + pack("list") +
                               pack("a") + pack("list") + pack("b"))
    # Size limits: exactly 65536 bytes is decoded, one more is not.
    n = 65536 - len(pack({"op": "ping", "pad": ""})) - 2  # a str16 header is 3 bytes, not 1
    s["size-65536"] = pack({"op": "ping", "pad": "p" * n})
    s["bad-size-65537"] = pack({"op": "ping", "pad": "p" * 65600})[:65537]
    assert len(s["size-65536"]) == 65536, len(s["size-65536"])
    return s


def cluster_seeds():
    key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
    return {
        "example": open(os.path.join(HERE, "..", "..", "deploy", "cluster.example.conf"),
                        "rb").read(),
        "three-nodes": b"node n1 tcp://127.0.0.1:7001\nnode n2 tcp://127.0.0.1:7002\n"
                       b"node n3 ipc:///tmp/n3.sock\n",
        "comments-tabs-crlf": b"# cluster\r\n\r\n  node\tn1\ttcp://h:1 # first\r\n"
                              b"node n-2.x_y inproc://n2#not-a-comment\r\n",
        "with-key": ("node n1 tcp://127.0.0.1:7001 " + key + "\n").encode(),
        "bad-key": b"node n1 tcp://127.0.0.1:7001 #\x00notakey\nnode n2 tcp://a:1 0123\n",
        "bad-duplicate-name": b"node n1 tcp://a:1\nnode n1 tcp://a:2\n",
        "bad-duplicate-endpoint": b"node n1 tcp://a:1\nnode n2 tcp://a:1\n",
        "bad-name": b"node n/1 tcp://a:1\n",
        "bad-endpoint": b"node n1 http://a:1\n",
        "bad-directive": b"nodes n1 tcp://a:1\n",
        "bad-word-count": b"node n1 tcp://a:1 k extra\n",
        "bad-long-name": b"node " + b"n" * 65 + b" tcp://a:1\n",
        "node-flag": b"n1=tcp://127.0.0.1:7001",
        "node-flag-bad": b"n1:tcp://127.0.0.1:7001",
        "key-file": ("# todo-keygen: CURVE public key of 'n1'\n" + key + "  # n1\n").encode(),
        "z85-key": key.encode(),
        "z85-overflow": b"#" * 40,
    }


def record(key, value):
    return struct.pack(">H", len(key)) + key + struct.pack(">H", len(value)) + value


def prefix(name):
    return bytes([len(name)]) + name


def entry_key(name, i):
    return prefix(name) + b"\x01" + struct.pack(">Q", i)


def meta_key(name):
    return prefix(name) + b"\x00"


def entry_value(yyyymmdd, title):
    return b"\x01" + struct.pack(">I", yyyymmdd) + title


def meta_value(n):
    return b"\x01" + struct.pack(">Q", n)


def rid_key(name, rid):
    return prefix(name) + b"\x02" + rid


def rid_value(op, created_ms, args, outcome):
    return b"\x01" + bytes([op]) + struct.pack(">Q", created_ms) + args + outcome


def expiry_key(created_ms, name, rid):
    return b"\x00rid-expiry" + struct.pack(">Q", created_ms) + prefix(name) + rid


def rid_record_key(drop_at, h1, h2):
    return b"\x00rids" + struct.pack(">QQQ", drop_at, h1, h2)


def rid_value2(op, args_hash, outcome):
    return bytes([2, op]) + struct.pack(">Q", args_hash) + outcome


def storage_seeds():
    g = b"groceries"
    return {
        "list-three-entries": record(entry_key(g, 1), entry_value(20260301, b"milk")) +
                              record(entry_key(g, 2), entry_value(20260301, b"bread")) +
                              record(entry_key(g, 5), entry_value(20240229, b"eggs")),
        "list-with-meta": record(meta_key(g), meta_value(10)) +
                          record(entry_key(g, 3), entry_value(99991231, "caf\u00e9".encode())),
        "meta-only": record(meta_key(b"empty"), meta_value(42)),
        "two-lists-nul-names": record(entry_key(b"a\x00b", 1), entry_value(10101, b"t")) +
                               record(entry_key(b"a", 1), entry_value(10101, b"u")) +
                               record(entry_key(b"a\x00", 7), entry_value(20000101, b"v")),
        "max-name": record(entry_key(b"n" * 255, 1), entry_value(20260101, b"t" * 1024)),
        "bad-value-version": record(entry_key(g, 1), b"\x02" + entry_value(20260101, b"x")[1:]),
        "bad-value-date": record(entry_key(g, 1), entry_value(20260229, b"x")),
        "bad-value-utf8": record(entry_key(g, 1), entry_value(20260101, b"\xc0\x80")),
        "bad-key-in-range": record(meta_key(g) + b"\x00", meta_value(1)) +
                            record(entry_key(g, 1), entry_value(20260101, b"x")),
        "bad-meta-short": record(meta_key(g), b"\x01\x00"),
        "entry-key": entry_key(g, 1),
        "entry-value": entry_value(20260301, b"milk"),
        "meta-value": meta_value(2**63),
        # Rid records (common/storage_format.h) beside a list's entries.
        "list-with-rid-records":
            record(entry_key(g, 1), entry_value(20260301, b"milk")) +
            record(rid_key(g, b"r1"), rid_value(1, 1, struct.pack(">I", 20260301) +
                                                struct.pack(">H", 4) + b"milk",
                                                b"\x01" + struct.pack(">Q", 1))) +
            record(expiry_key(1, g, b"r1"), b""),
        "rid-value-add": rid_value(1, 1700000000000, struct.pack(">I", 20240229) +
                                   struct.pack(">H", 3) + b"tea", b"\x01" + struct.pack(">Q", 9)),
        "rid-value-update": rid_value(2, 5, struct.pack(">Q", 3) + b"\x03" +
                                      struct.pack(">I", 20260101) + struct.pack(">H", 1) + b"t",
                                      b"\x02" + struct.pack(">I", 20260101) +
                                      struct.pack(">H", 1) + b"t"),
        "rid-value-update-not-found": rid_value(2, 5, struct.pack(">Q", 3) + b"\x01" +
                                                struct.pack(">I", 20260101), b"\x03"),
        "rid-value-delete": rid_value(3, 5, struct.pack(">Q", 3), b"\x05"),
        "rid-expiry-key": expiry_key(2**40, b"list", b"8e03978e-40d5-43e8-bc93-6894a57f9324"),
        "rid-count": b"\x01" + struct.pack(">Q", 12345),
        # Version 2 (bucketed) rid records: one key each, hashed.
        "list-with-rid-records-v2":
            record(entry_key(g, 1), entry_value(20260301, b"milk")) +
            record(rid_record_key(172800000, 2**63 + 5, 7),
                   rid_value2(1, 2**64 - 1, b"\x01" + struct.pack(">Q", 1))),
        "rid-record-key": rid_record_key(2**40, 1, 2**64 - 1),
        "rid-value2-add": rid_value2(1, 12345, b"\x01" + struct.pack(">Q", 9)),
        "rid-value2-update": rid_value2(2, 0, b"\x02" + struct.pack(">I", 20260101) +
                                        struct.pack(">H", 1) + b"t"),
        "rid-value2-update-not-found": rid_value2(2, 1, b"\x03"),
        "rid-value2-delete": rid_value2(3, 2, b"\x04"),
        "manifest": b"todo-node data directory\nformat 1\nshards 4\n",
        "manifest-bad-shards": b"todo-node data directory\nformat 1\nshards 0\n",
        "manifest-unknown-key": b"todo-node data directory\n\nshards 1024\nformat 1\nx 1\n",
        "manifest-duplicate-shards": b"todo-node data directory\nformat 1\nshards 1\nshards 3\n",
        "commit-value": meta_value(12345),
        "committed-file": b"todo-node committed 12345\n",
    }


def reply_seeds():
    err = lambda code, rid=None: pack(({"id": rid} if rid is not None else {}) | {
        "ok": False, "error": {"code": code, "message": "m: " + code}})
    s = {
        "add-ok": pack({"id": 1, "ok": True, "result": {"id": 1}}),
        "entries-ok": pack({"id": "x", "ok": True, "result": [
            {"id": 1, "date": "2026-03-01", "title": "milk"}]}),
        "deleted-ok": pack({"ok": True, "result": {"deleted": False}}),
        "ping-ok": pack({"id": 2**64 - 1, "ok": True,
                         "result": {"pong": True, "role": "router", "name": "r1"}}),
        "error-bad-request": err("bad_request", 3),
        "error-unknown-op": err("unknown_op", "s"),
        "error-not-found": err("not_found"),
        "error-overloaded": err("overloaded", 4),
        "error-unavailable": err("unavailable", 5),
        "error-timeout": err("timeout", 6),
        "error-internal": err("internal", 7),
        "error-unknown-code": err("something_new", 8),
        "bad-no-ok": pack({"id": 1, "result": 1}),
        "bad-not-map": pack([1, True]),
        "bad-trailing": pack({"ok": True, "result": None}) + b"\xc0",
        "deep-result": b"\x82\xa2ok\xc3\xa6result" + b"\x91" * 100 + b"\xc0",
    }
    return s


def batch_record(frames):
    out = bytes([len(frames)])
    for f in frames:
        out += struct.pack(">I", len(f)) + f
    return out


def batch_seeds():
    add = pack({"op": "add_entry", "id": 3, "list": "groceries", "date": "2026-03-01",
                "title": "milk"})
    ok = pack({"id": 3, "ok": True, "result": {"id": 1}})
    head = b"R" + bytes(8)
    return {
        "one-request": batch_record([head, add]),
        "request-with-envelope": batch_record([head, b"client-7", b"", add]),
        "two-replies": batch_record([head, ok]) + batch_record([head, b"", ok]),
        "max-frames": batch_record([head] + [b"e"] * 15 + [add]),
        "ping-asks": pack({"op": "ping", "batch": 64}),
        "pong-grants": pack({"ok": True, "result": {"pong": True, "batch": 64}}),
        "bad-one-frame": batch_record([add]),
        "bad-short-length": bytes([2]) + struct.pack(">I", 100) + b"xx",
        "bad-trailing": batch_record([head, add]) + b"\x00",
    }


def main():
    for target, seeds in (("request", request_seeds()), ("cluster", cluster_seeds()),
                          ("storage", storage_seeds()), ("reply", reply_seeds()),
                          ("batch", batch_seeds())):
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.startswith("seed-"):
                os.remove(os.path.join(d, f))
        for name, data in seeds.items():
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
