#!/usr/bin/python3
"""Stress test of request ids (rid): the records of a flood of writes with
distinct rids live on disk, not in memory, and expire.

(a) A node with a short --rid-ttl takes a pipelined flood of adds, each with
    a fresh rid, over many new lists, then one over a single list (all its
    writes in flight at once: its actor's rids in flight are bounded by its
    writes in flight). Every request gets exactly one reply (ok, or
    overloaded where a bound says so), and the node's peak RSS (VmRSS,
    sampled every 50 ms) stays under 256 MiB, the limit overload_test.py
    holds a node to under floods without rids.
(b) stats agree: every applied write wrote one record (rids.written = ok
    replies), and records + expired = written at every moment.
(c) Past the TTL the records are gone (stats: records 0, expired =
    written) and a retry of a flood write is then a first request again:
    applied anew, with a new entry id (the contract after the TTL), and its
    own retry gets that new reply.

Exits 77 (skipped) when the binaries are missing. Every process is started
and stopped by pid; every wait is bounded.
"""

import argparse
import collections
import os
import sys
import tempfile
import time
import uuid

import zmq

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import stress_lib as sl  # noqa: E402  pylint: disable=wrong-import-position

RSS_LIMIT_KIB = 256 * 1024
TTL_S = 8


def stats(ctx, port):
    """The node's `rids` counters."""
    c = sl.Client(ctx, port)
    try:
        reply = c.call({"op": "stats"}, timeout=5.0)
        return reply["result"]["rids"] if reply and reply.get("ok") else None
    finally:
        c.close()


def flood(ctx, port, requests, n_dealers=4, window=20000, deadline_s=300):
    """Pipelines `requests` (dicts) over n_dealers DEALERs, each with up to
    `window` awaiting a reply. Returns (Counter of codes, missing,
    duplicates, {request index: reply})."""
    clients = [sl.Client(ctx, port) for _ in range(n_dealers)]
    shares = [list(range(i, len(requests), n_dealers)) for i in range(n_dealers)]
    cursor = [0] * n_dealers
    sent_ids = [dict() for _ in range(n_dealers)]  # request id -> index
    outstanding = [0] * n_dealers
    codes = collections.Counter()
    replies = {}
    poller = zmq.Poller()
    for c in clients:
        poller.register(c.sock, zmq.POLLIN)
    deadline = time.monotonic() + deadline_s
    last_reply = time.monotonic()
    while time.monotonic() < deadline:
        for i, c in enumerate(clients):
            while cursor[i] < len(shares[i]) and outstanding[i] < window:
                k = shares[i][cursor[i]]
                sent_ids[i][c.send(dict(requests[k]))] = k
                cursor[i] += 1
                outstanding[i] += 1
                if cursor[i] % 500 == 0:
                    break
        done_sending = all(cursor[i] == len(shares[i]) for i in range(n_dealers))
        if done_sending and not any(outstanding):
            break
        events = dict(poller.poll(10))
        for i, c in enumerate(clients):
            if c.sock in events:
                for reply in c.recv_all(0):
                    codes[sl.error_code(reply)] += 1
                    outstanding[i] -= 1
                    replies[sent_ids[i][reply["id"]]] = reply
                    last_reply = time.monotonic()
        if done_sending and time.monotonic() - last_reply > 30:
            break
    missing = sum(outstanding)
    duplicates = sum(c.duplicates + c.unknown_ids for c in clients)
    for c in clients:
        c.close()
    return codes, missing, duplicates, replies


def check_flood(checks, label, result, n):
    codes, missing, duplicates, _ = result
    total = sum(codes.values())
    print(f"  {label}: {total} replies: {dict(codes)}; missing {missing}, "
          f"duplicates {duplicates}", flush=True)
    checks.check(missing == 0 and total == n, f"{label}: every request got a reply",
                 f"{total} of {n}")
    checks.check(duplicates == 0, f"{label}: no request got two replies", str(duplicates))
    other = {k: v for k, v in codes.items() if k not in ("ok", "overloaded")}
    checks.check(not other, f"{label}: replies are ok or overloaded only", str(other))
    checks.check(codes["ok"] > n // 2, f"{label}: most requests succeeded", str(codes["ok"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--lists", type=int, default=50000)
    ap.add_argument("--hot", type=int, default=40000, help="writes to the single list")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if (msg := sl.missing_binaries()):
        print(f"SKIP: {msg}")
        return sl.SKIP
    work = tempfile.mkdtemp(prefix="todo-rid-flood-")
    print(f"work dir {work}")
    ctx = zmq.Context()
    checks = sl.Checks()
    node = None
    t0 = time.monotonic()
    try:
        port = sl.free_ports(1)[0]
        node = sl.Process("rid-node", sl.node_argv("rid-node", port, os.path.join(work, "data"),
                                                   "--rid-ttl", f"{TTL_S}s"),
                          os.path.join(work, "rid-node.log")).start()
        if not sl.wait_serving(ctx, port, node):
            raise RuntimeError("the node did not start:\n" + node.log()[-2000:])

        print("(a) floods of writes, each with a fresh rid", flush=True)
        spread = [{"op": "add_entry", "list": f"flood-{k % args.lists}", "date": "2026-03-01",
                   "title": f"flood {k}", "rid": str(uuid.uuid4())}
                  for k in range(args.requests)]
        hot = [{"op": "add_entry", "list": "hot", "date": "2026-03-02", "title": f"hot {k}",
                "rid": str(uuid.uuid4())} for k in range(args.hot)]
        rss = sl.RssSampler([node.pid])
        spread_result = flood(ctx, port, spread)
        hot_result = flood(ctx, port, hot, n_dealers=1, window=4000)  # the mailbox holds 4096
        peak = rss.stop()[node.pid]
        check_flood(checks, f"{args.requests} adds over {args.lists} lists", spread_result,
                    args.requests)
        check_flood(checks, f"{args.hot} adds to one list", hot_result, args.hot)
        checks.check(0 < peak < RSS_LIMIT_KIB,
                     f"peak RSS {peak / 1024:.0f} MiB (limit {RSS_LIMIT_KIB // 1024} MiB)")

        print("(b) stats", flush=True)
        ok = spread_result[0]["ok"] + hot_result[0]["ok"]
        # The counters are read one by one while the sweeper may be
        # dropping records: wait (bounded) for a reading between two passes.
        deadline = time.monotonic() + 10
        while True:
            s = stats(ctx, port)
            if s is None or s["records"] + s["expired"] == s["written"] or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.05)
        print(f"  stats rids: {s}", flush=True)
        checks.check(s is not None and s["written"] == ok,
                     "one record written per applied write", f"{s and s['written']} vs {ok}")
        checks.check(s is not None and s["records"] + s["expired"] == s["written"],
                     "records + expired = written", str(s))
        checks.check(s is not None and s["hits"] == 0, "no write was taken for a retry", str(s))

        print(f"(c) past the TTL ({TTL_S} s)", flush=True)
        deadline = time.monotonic() + TTL_S + 60
        while time.monotonic() < deadline:
            s = stats(ctx, port)
            if s is not None and s["records"] == 0:
                break
            time.sleep(0.5)
        print(f"  stats rids: {s}", flush=True)
        checks.check(s is not None and s["records"] == 0 and s["expired"] == s["written"],
                     "every record expired", str(s))
        # A flood write that was applied, retried now: a first request again.
        k = next(i for i, r in spread_result[3].items() if r.get("ok"))
        first_id = spread_result[3][k]["result"]["id"]
        c = sl.Client(ctx, port)
        again = c.call(dict(spread[k]), timeout=10.0)
        again2 = c.call(dict(spread[k]), timeout=10.0)
        c.close()
        new_id = again and again.get("ok") and again["result"]["id"]
        checks.check(bool(new_id) and new_id != first_id,
                     "a retry after the TTL is applied anew (a new entry)",
                     f"first id {first_id}, now {again}")
        checks.check(bool(again2) and again2.get("ok") and again2["result"]["id"] == new_id,
                     "and its own retry gets that reply", str(again2))
        s = stats(ctx, port)
        checks.check(s is not None and s["records"] == 1 and s["hits"] == 1,
                     "one new record, one hit", str(s))
        code = node.terminate()
        checks.check(code == 0, "the node exits 0 on SIGTERM", f"exit {code}")
    except RuntimeError as e:
        checks.check(False, "setup", str(e))
    finally:
        if node is not None and node.alive():
            node.kill9()
        ctx.destroy(linger=0)
    return checks.report(work, args.keep, t0)


if __name__ == "__main__":
    sys.exit(main())
