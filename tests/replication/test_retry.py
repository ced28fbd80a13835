#!/usr/bin/python3
"""Request ids across a failover (shared/spec/retries.md, "What the tests must
show" 1, replicated mode): a write whose reply was lost because its primary
was kill -9ed is retried, with the same rid, through the router once the
controller has failed the partition over; it is applied exactly once.

- Set A: each list gets one add_entry and one delete_entry with a rid that
  the primary acknowledged before it died; their retries on the new
  primary answer exactly what the first did (the same entry id; the
  delete's ok, not not_found), and nothing is applied twice.
- Set B: each list gets five add_entry with rids sent to the primary in a
  burst, which is killed at once, replies unread (some applied and
  replicated, some not); retried until ok, each list holds each entry
  exactly once, with the id the retry answered.
- A rid used again for a different write is bad_request after the failover
  too, and changes nothing.
"""

import sys
import time

import msgpack
import zmq

import repl_lib as rl

PARTITIONS = 32
DATE = "2026-12-19"
PER_LIST = 5


call = rl.call


call_until_ok = rl.call_until_ok


def once(name, k):
    return {"op": "add_entry", "list": name, "date": DATE, "title": f"once-{k}",
            "rid": f"{name}-once-{k}"}


def strip(reply):
    """A reply without its request id (the retry's id differs)."""
    return {k: v for k, v in reply.items() if k != "id"}


def scenario(wd):
    etcd = rl.Etcd(wd).start()
    cluster = rl.Cluster(wd, etcd, nodes=3, replicas=2, partitions=PARTITIONS, router=True)
    ctx = zmq.Context()
    try:
        cluster.start()
        router = cluster.router_endpoint
        m = cluster.wait_router_map(ctx)
        victim = m["parts"][0][0]
        victim_ep = cluster.endpoint(victim)
        mine = [f"r{i}" for i in range(4000)
                if m["parts"][rl.partition_of(f"r{i}", PARTITIONS)][0] == victim]
        set_a, set_b = mine[:60], mine[60:260]
        assert len(set_b) == 200, f"only {len(mine)} lists on {victim}"

        # Set A: acknowledged by the primary (and so by its in-sync backup).
        first = {}
        for name in set_a:
            keep = {"op": "add_entry", "list": name, "date": DATE, "title": "keep",
                    "rid": f"{name}-keep"}
            gone = {"op": "add_entry", "list": name, "date": DATE, "title": "gone",
                    "rid": f"{name}-gone"}
            rk = call(ctx, victim_ep, keep)
            rg = call(ctx, victim_ep, gone)
            assert rk and rk["ok"] and rg and rg["ok"], (rk, rg)
            dele = {"op": "delete_entry", "list": name, "entry_id": rg["result"]["id"],
                    "rid": f"{name}-del"}
            rd = call(ctx, victim_ep, dele)
            assert rd and rd["ok"], rd
            first[name] = [(keep, rk), (gone, rg), (dele, rd)]

        # Set B: in flight when the primary dies; replies never read.
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(victim_ep)
        # Three writes a list, then once one is answered, two more, and the
        # kill at once: the first ones were applied on both copies (their
        # replies dropped), the last mostly not at all.
        for k in range(3):
            for name in set_b:
                s.send(msgpack.packb(once(name, k)))
        got = 1 if s.poll(10000) else 0
        for k in range(3, PER_LIST):
            for name in set_b:
                s.send(msgpack.packb(once(name, k)))
        cluster.kill9(victim)
        s.close()
        rl.log(f"kill -9 {victim}: {PER_LIST * len(set_b)} rid writes sent, {got} answered")

        # Retries through the router, after (and during) the failover.
        t0 = time.monotonic()
        for name in set_a:
            for req, reply in first[name]:
                again = call_until_ok(ctx, router, req)
                assert strip(again) == strip(reply), \
                    f"{name}: retry of {req['rid']} answered {again}, first {reply}"
        rl.log(f"set A: {3 * len(set_a)} retried writes answered as the first time "
               f"({time.monotonic() - t0:.2f} s after the kill)")
        # How many of set B made it before the kill (replicated, so the new
        # primary has them): both cases should be exercised.
        before = sum(len(call_until_ok(ctx, router, {"op": "entries", "list": name})["result"])
                     for name in set_b)
        rl.log(f"set B: {before} of {PER_LIST * len(set_b)} writes were applied before the kill")
        answered = {}
        for k in range(PER_LIST):
            for name in set_b:
                r = call_until_ok(ctx, router, once(name, k))
                assert r["ok"], f"{name}: retry answered {r}"
                answered[(name, k)] = r["result"]["id"]
        # Retried again: the same id (the record is on the new primary).
        for name in set_b[:50]:
            r = call_until_ok(ctx, router, once(name, 0))
            assert r["ok"] and r["result"]["id"] == answered[(name, 0)], (name, r)

        # The same rid for a different write: refused, nothing changes.
        name = set_a[0]
        r = call_until_ok(ctx, router, {"op": "add_entry", "list": name, "date": DATE,
                                        "title": "different", "rid": f"{name}-keep"})
        assert not r["ok"] and r["error"]["code"] == "bad_request", r
        assert "different" in r["error"]["message"], r

        # Read back: exactly the intended entries, each once.
        for name in set_a:
            r = call_until_ok(ctx, router, {"op": "entries", "list": name})
            titles = sorted(e["title"] for e in r["result"])
            assert titles == ["keep"], f"{name}: {r['result']}"
            assert r["result"][0]["id"] == first[name][0][1]["result"]["id"], r
        for name in set_b:
            r = call_until_ok(ctx, router, {"op": "entries", "list": name})
            entries = r["result"]
            titles = sorted(e["title"] for e in entries)
            assert titles == sorted(f"once-{k}" for k in range(PER_LIST)), f"{name}: {entries}"
            for e in entries:
                k = int(e["title"].split("-")[1])
                assert e["id"] == answered[(name, k)], (name, e, answered[(name, k)])
        st = cluster.status()
        assert st is not None and all(mm["name"] != victim or not mm["alive"]
                                      for mm in st["members"]), st
        rl.log(f"set B: {len(set_b)} lists each hold their five entries exactly once; "
               f"a rid reused for a different write is bad_request")
    finally:
        cluster.stop()
        etcd.stop()
        ctx.destroy(linger=0)


if __name__ == "__main__":
    rl.check_binaries()
    sys.exit(rl.run_test("retry-failover", scenario))
