#!/usr/bin/python3
"""--min-insync K (shared/spec/replication.md): a partition whose in-sync
set would drop below K refuses writes with `unavailable`, and a write whose
outcome the node cannot know (handed to a backup that then fell silent) is
answered `timeout`, never a success. So with K = 2 no write is acknowledged
on one copy, not even to a retry answered from the write's rid record.

2 nodes, R = 2, K = 2 (every partition on both). Writes with rids go
straight to n1, for partitions it leads. n2 is killed (kill -9) while they
flow; every write sent after that is answered `unavailable` or `timeout`,
none `ok` (before the fix, the writes that waited on n2 when the map took
it out of sync were acknowledged with one copy), and a retry of one answered
`timeout` is not `ok` while n2 is down. n2 comes back; each write
is retried with its rid until it succeeds, and each list then holds each
intended entry exactly once.
"""

import sys
import time

import msgpack
import repl_lib as rl

PARTITIONS = 8
DATE = "2026-12-19"


def test(workdir):
    ctx = rl.zmq.Context()
    etcd = rl.Etcd(workdir).start()
    cluster = rl.Cluster(workdir, etcd, nodes=2, replicas=2, partitions=PARTITIONS, min_insync=2)
    try:
        cluster.start(timeout=60)
        st = cluster.status()
        led = {p["partition"] for p in st["partitions"] if p["replicas"][0] == "n1"}
        assert led, st["partitions"]
        lists = [f"k{i}" for i in range(400) if rl.partition_of(f"k{i}", PARTITIONS) in led][:20]
        ep = cluster.endpoint("n1")
        for name in lists:
            r = rl.call_until_ok(ctx, ep, {"op": "add_entry", "list": name, "date": DATE,
                                           "title": "before", "rid": f"{name}-before"})
            assert r.get("ok"), r

        s = ctx.socket(rl.zmq.DEALER)
        s.setsockopt(rl.zmq.LINGER, 0)
        s.connect(ep)
        sent = {}  # id -> request
        replies = {}

        def drain(wait_ms):
            while s.poll(wait_ms):
                r = msgpack.unpackb(s.recv(), raw=False)
                replies[r["id"]] = r
                wait_ms = 0

        def send(i):
            name = lists[i % len(lists)]
            req = {"op": "add_entry", "list": name, "date": DATE, "title": f"w{i}",
                   "rid": f"{name}-w{i}"}
            sent[i] = req
            s.send(rl.sl.pack(dict(req, id=i)))

        # A steady stream, so that writes are waiting on n2 when it dies.
        i = 0
        for _ in range(25):
            send(i)
            i += 1
            drain(0)
            time.sleep(0.02)
        cluster.kill9("n2")
        after_kill = i
        end = time.monotonic() + 5
        while time.monotonic() < end:
            send(i)
            i += 1
            drain(0)
            time.sleep(0.02)
        deadline = time.monotonic() + 15
        while len(replies) < len(sent) and time.monotonic() < deadline:
            drain(200)
        assert len(replies) == len(sent), f"{len(sent) - len(replies)} writes never answered"
        codes = {}
        for j in range(after_kill, i):
            r = replies[j]
            code = "ok" if r.get("ok") else r["error"]["code"]
            codes[code] = codes.get(code, 0) + 1
        rl.log(f"writes sent after n2 was killed: {codes}")
        assert "ok" not in codes, f"acknowledged on one copy with --min-insync 2: {codes}"
        assert set(codes) <= {"unavailable", "timeout"}, codes

        # A retry of a write answered `timeout` is answered from its rid
        # record: while one copy is in sync, not with a success either.
        timed_out = [j for j in range(after_kill, i) if replies[j].get("error", {}).get("code") == "timeout"]
        for j in timed_out[:5]:
            r = rl.call(ctx, ep, sent[j], 5)
            assert r is not None and not r.get("ok"), ("a retry told a success on one copy", sent[j], r)
        rl.log(f"{len(timed_out[:5])} retries of timed-out writes refused while n2 is down")

        cluster.start_node("n2")
        cluster.wait_in_sync(60)
        # The primaries may have moved back to n2: a client that follows the map.
        client = rl.SmartClient(ctx, [cluster.endpoint(n) for n in cluster.names], PARTITIONS)
        for j in range(i):
            if replies[j].get("ok"):
                continue
            r = client.call(sent[j])
            assert r and r.get("ok"), (sent[j], r)
        for name in lists:
            r = client.call({"op": "entries", "list": name})
            assert r and r.get("ok"), (name, r)
            titles = [e["title"] for e in r["result"]]
            want = ["before"] + [q["title"] for q in sent.values() if q["list"] == name]
            assert sorted(titles) == sorted(want), (name, titles, want)
        rl.log("after n2 came back, every write retried with its rid is there exactly once")
        s.close()
        client.close()
    finally:
        cluster.stop()
        etcd.stop()
        ctx.destroy(linger=0)


if __name__ == "__main__":
    rl.check_binaries()
    sys.exit(rl.run_test("min-insync", test))
