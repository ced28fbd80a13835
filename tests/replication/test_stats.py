#!/usr/bin/python3
"""`stats` per partition in the replicated mode (shared/spec/replication.md,
"Protocol additions": per partition the node's role, epoch, sequence
numbers and the lag of each backup), checked against the map that
`todo-admin status --json` shows:

- each node reports exactly the partitions the map gives it, with the role
  the map gives it (primary first in `replicas`, the rest backups);
- a primary and its backups report the partition's epoch in the map (a
  backup reported 0 before), and a primary one `backups` entry per backup,
  with `lag`;
- after a kill -9 and the repair that follows (epochs raised), the same.
"""

import sys

import repl_lib as rl

PARTITIONS = 8


def node_stats(ctx, cluster, name):
    r = rl.call(ctx, cluster.endpoint(name), {"op": "stats"}, 3)
    assert r and r.get("ok"), (name, r)
    return r["result"]


def matches(ctx, cluster):
    """'' if every live node's stats agree with the map, else what differs."""
    st = cluster.status()
    if st is None:
        return "no status"
    alive = {m["name"] for m in st["members"] if m["alive"]}
    for name in sorted(alive):
        got = {p["partition"]: p for p in node_stats(ctx, cluster, name).get("partitions", [])}
        for part in st["partitions"]:
            p = part["partition"]
            if name not in part["replicas"]:
                if p in got:
                    return f"{name} reports partition {p}, not its: {got[p]}"
                continue
            mine = got.get(p)
            role = "primary" if part["replicas"][0] == name else "backup"
            if mine is None or mine["role"] != role or mine["epoch"] != part["epoch"] or "seq" not in mine:
                return f"{name}, partition {p}: stats {mine}, map {part}"
            if role == "primary":
                backups = {b["name"]: b for b in mine.get("backups", [])}
                if set(backups) != set(part["replicas"][1:]) or any("lag" not in b for b in backups.values()):
                    return f"{name}, partition {p}: backups {mine.get('backups')}, map {part}"
    return ""


def test(workdir):
    ctx = rl.zmq.Context()
    etcd = rl.Etcd(workdir).start()
    cluster = rl.Cluster(workdir, etcd, nodes=3, replicas=2, partitions=PARTITIONS)
    try:
        cluster.start(timeout=60)
        client = rl.SmartClient(ctx, [cluster.endpoint(n) for n in cluster.names], PARTITIONS)
        for i in range(40):
            r = client.call({"op": "add_entry", "list": f"s{i}", "date": "2026-12-19", "title": "x"})
            assert r and r.get("ok"), r
        # Stats are published at each replication tick: bounded wait.
        last = {}

        def agree():
            last["why"] = matches(ctx, cluster)
            return last["why"] == ""
        assert rl.sl.wait_until(agree, 10, 0.2), last["why"]
        rl.log("stats agree with the map")

        cluster.kill9("n1")
        assert rl.sl.wait_until(lambda: (lambda st: st is not None and all(
            len(p["replicas"]) == 2 and p["in_sync"] == p["replicas"] and "n1" not in p["replicas"]
            for p in st["partitions"]))(cluster.status()), 60, 0.25), cluster.unsettled_story()
        st = cluster.status()
        assert max(p["epoch"] for p in st["partitions"]) > 1, st["partitions"]
        assert rl.sl.wait_until(agree, 10, 0.2), last["why"]
        rl.log("stats agree with the map after a failover and the repair")
        client.close()
    finally:
        cluster.stop()
        etcd.stop()
        ctx.destroy(linger=0)


if __name__ == "__main__":
    rl.check_binaries()
    sys.exit(rl.run_test("stats", test))
