#!/usr/bin/python3
"""Rid records expire in the replicated mode (shared/spec/retries.md: records
are kept --rid-ttl, then dropped), on the primary AND on its backups: the
primary drops its partitions' records through the replicated write path,
and the backups apply the deletes as any record.

With --rid-ttl 2s (records live 2-4 s):
- Lists led by one node (the victim) get an add_entry with a rid and one
  without. Every node's `stats` counts the rid records its disk gained
  (`written`: the primary's writes, and the backups' applied copies) and
  lost (`expired`): within a bounded wait each node has expired exactly
  what it was written, the primary as many as it wrote, each backup as
  many as it holds for the primary's partitions.
- Nothing else is lost: every list still holds both entries.
- The in-memory rid filter is in use (first writes skip the disk lookup).
- A retry within the TTL is answered from the record (the same entry id);
  after the failover (the victim kill -9ed) a retry of an expired rid
  is applied as new on the new primary (a second entry), and the new
  primary, in its turn, expires the records written under it.
"""

import sys
import time

import repl_lib as rl

PARTITIONS = 8
DATE = "2026-12-19"
LISTS = 40
TTL = "2s"

call = rl.call


call_until_ok = rl.call_until_ok


def rids(ctx, cluster, name):
    r = call(ctx, cluster.endpoint(name), {"op": "stats"}, timeout=3.0)
    assert r and r.get("ok"), f"stats of {name}: {r}"
    return r["result"]["rids"]


def wait_counts(ctx, cluster, want, what, timeout=30.0):
    """Waits until every node named in `want` has rids[what] == want[node];
    the last counts seen."""
    seen = {}

    def done():
        for n, w in want.items():
            seen[n] = rids(ctx, cluster, n)[what]
        return all(seen[n] == w for n, w in want.items())

    ok = rl.sl.wait_until(done, timeout, 0.2)
    assert ok, f"rids '{what}' never reached {want}: {seen}"
    return dict(seen)


def scenario(wd):
    import zmq
    etcd = rl.Etcd(wd).start()
    cluster = rl.Cluster(wd, etcd, nodes=3, replicas=2, partitions=PARTITIONS, router=True,
                         node_flags=("--rid-ttl", TTL))
    ctx = zmq.Context()
    try:
        cluster.start()
        router = cluster.router_endpoint
        m = cluster.wait_router_map(ctx)
        victim = m["parts"][0][0]
        victim_ep = cluster.endpoint(victim)
        mine = [f"x{i}" for i in range(2000)
                if m["parts"][rl.partition_of(f"x{i}", PARTITIONS)][0] == victim][:LISTS]
        assert len(mine) == LISTS, f"only {len(mine)} lists on {victim}"
        # Where each record lives: the victim, and its partition's backups.
        st = cluster.status()
        replicas = {p["partition"]: p["replicas"] for p in st["partitions"]}
        want = {n: 0 for n in cluster.names}
        for name in mine:
            p = rl.partition_of(name, PARTITIONS)
            assert victim in replicas[p] and len(replicas[p]) == 2, (p, replicas[p])
            for n in replicas[p]:
                want[n] += 1
        assert want[victim] == LISTS, want

        first = {}
        for name in mine:
            req = {"op": "add_entry", "list": name, "date": DATE, "title": "old",
                   "rid": f"{name}-old"}
            r = call(ctx, victim_ep, req)
            assert r and r["ok"], (name, r)
            first[name] = (req, r["result"]["id"])
            r = call(ctx, victim_ep, {"op": "add_entry", "list": name, "date": DATE,
                                      "title": "plain"})
            assert r and r["ok"], (name, r)
        # Within the TTL a retry is answered from the record.
        for name in mine[:5]:
            req, eid = first[name]
            r = call(ctx, victim_ep, req)
            assert r and r["ok"] and r["result"]["id"] == eid, (name, r, eid)
        written = wait_counts(ctx, cluster, want, "written", 15)
        rl.log(f"rid records written: {written}")
        # The in-memory filter is in use in this mode too: the first writes
        # skipped the disk lookup (a false positive may not).
        v = rids(ctx, cluster, victim)
        assert v["filter_bytes"] > 0 and v["lookups_skipped"] >= LISTS // 2, v

        # Expired everywhere they were written: the victim by its sweeper,
        # the backups by applying its deletes.
        t0 = time.monotonic()
        expired = wait_counts(ctx, cluster, want, "expired", 30)
        rl.log(f"rid records expired: {expired} ({time.monotonic() - t0:.1f} s after the last "
               f"write; --rid-ttl {TTL})")

        # Nothing else was lost.
        for name in mine:
            r = call_until_ok(ctx, victim_ep, {"op": "entries", "list": name})
            assert sorted(e["title"] for e in r["result"]) == ["old", "plain"], (name, r)

        # Failover: a retry of an expired rid is a first request on the new
        # primary (its copy holds no record to answer from).
        cluster.kill9(victim)
        rl.log(f"kill -9 {victim}")
        renewed = {}
        for name in mine:
            req, eid = first[name]
            r = call_until_ok(ctx, router, req, 60)
            assert r["ok"] and r["result"]["id"] != eid, (name, r, eid)
            renewed[name] = r["result"]["id"]
        for name in mine:
            r = call_until_ok(ctx, router, {"op": "entries", "list": name})
            titles = sorted(e["title"] for e in r["result"])
            assert titles == ["old", "old", "plain"], (name, r)
        # Within the TTL, retried again: answered from the new record.
        for name in mine[:5]:
            r = call_until_ok(ctx, router, first[name][0])
            assert r["ok"] and r["result"]["id"] == renewed[name], (name, r, renewed[name])
        # The new primaries expire the records written under them too.
        m2 = call_until_ok(ctx, router, {"op": "map"})["result"]
        leaders = {}
        for name in mine:
            p = rl.partition_of(name, PARTITIONS)
            assert m2["parts"][p][0] != victim, m2["parts"][p]
            leaders[m2["parts"][p][0]] = leaders.get(m2["parts"][p][0], 0) + 1
        base = {n: expired[n] for n in leaders}
        seen = {}

        def new_ones_expired():
            for n in leaders:
                seen[n] = rids(ctx, cluster, n)["expired"] - base[n]
            return all(seen[n] >= leaders[n] for n in leaders)

        assert rl.sl.wait_until(new_ones_expired, 30, 0.2), \
            f"new primaries {leaders}: records expired since {seen}"
        rl.log(f"after the failover: {len(mine)} expired rids applied as new, and expired "
               f"again by the new primaries {leaders}")
    finally:
        cluster.stop()
        etcd.stop()
        ctx.destroy(linger=0)


if __name__ == "__main__":
    rl.check_binaries()
    sys.exit(rl.run_test("rid-expiry", scenario))
