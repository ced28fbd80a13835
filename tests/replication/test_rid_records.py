#!/usr/bin/python3
"""`stats` counts the rid records on each node's disk in the replicated mode
too (rids.records; the static mode keeps an exact count key, this mode
counts them at start and follows the writes, expiries and snapshots after).

- Lists get an add_entry and a delete_entry (of a missing entry), each with
  a rid, through the router: within a bounded wait every node's `records`
  is the number it holds, two per list for each copy of the list's
  partition (the primary's and its backup's).
- A node kill -9ed and started again counts its records from its disk (the
  rid sweeper's scan at start), and every node still has its count once
  the cluster is back in sync.
"""

import sys

import repl_lib as rl

PARTITIONS = 8
DATE = "2026-12-19"
LISTS = 48

call = rl.call
call_until_ok = rl.call_until_ok


def rids(ctx, cluster, name):
    r = call(ctx, cluster.endpoint(name), {"op": "stats"}, timeout=3.0)
    if not (r and r.get("ok")):
        return None
    return r["result"]["rids"]


def wait_records(ctx, cluster, want, timeout=20.0):
    """Waits until every node named in `want` has rids.records == want[node]."""
    seen = {}

    def done():
        for n, w in want.items():
            r = rids(ctx, cluster, n)
            seen[n] = r and r["records"]
        return all(seen[n] == w for n, w in want.items())

    assert rl.sl.wait_until(done, timeout, 0.2), f"rids.records never reached {want}: {seen}"


def scenario(wd):
    import zmq
    etcd = rl.Etcd(wd).start()
    cluster = rl.Cluster(wd, etcd, nodes=3, replicas=2, partitions=PARTITIONS, router=True)
    ctx = zmq.Context()
    try:
        cluster.start()
        router = cluster.router_endpoint
        cluster.wait_router_map(ctx)
        st = cluster.status()
        replicas = {p["partition"]: p["replicas"] for p in st["partitions"]}
        want = {n: 0 for n in cluster.names}
        lists = [f"c{i}" for i in range(LISTS)]
        for name in lists:
            p = rl.partition_of(name, PARTITIONS)
            assert len(replicas[p]) == 2, (p, replicas[p])
            for n in replicas[p]:
                want[n] += 2
            r = call_until_ok(ctx, router, {"op": "add_entry", "list": name, "date": DATE,
                                            "title": "t", "rid": f"{name}-add"})
            assert r["ok"], (name, r)
            r = call_until_ok(ctx, router, {"op": "delete_entry", "list": name, "entry_id": 999,
                                            "rid": f"{name}-del"})
            assert r["ok"] and r["result"] == {"deleted": False}, (name, r)
        assert sum(want.values()) == 2 * 2 * LISTS, want
        wait_records(ctx, cluster, want)
        rl.log(f"rid records per node: {want}")

        # Counted from the disk at start.
        victim = cluster.names[0]
        cluster.kill9(victim)
        cluster.start_node(victim)
        wait_records(ctx, cluster, {victim: want[victim]}, 30)
        cluster.wait_in_sync(60)
        wait_records(ctx, cluster, want)
        rl.log(f"after {victim} restarted: {want}")
    finally:
        cluster.stop()
        etcd.stop()
        ctx.destroy(linger=0)


if __name__ == "__main__":
    rl.check_binaries()
    sys.exit(rl.run_test("rid-records", scenario))
