#!/usr/bin/python3
"""Clients that skip the router (README "Using it"), against a real
replicated cluster: etcd + 3 todo-nodes (R=2, 32 partitions) made with
todo-admin init, and a todo-router as the clients' endpoint.

1. direct: TodoClient and `todo` given the router's endpoint fetch the map
   and send every list request straight to its primary: the router's own
   `stats` count no add_entry or entries (it forwarded nothing), and
   `todo --no-smart` goes through it (counted once).
2. failover: a primary is killed with kill -9; the same client keeps
   answering reads and writes of its lists (the map refreshed on timeout /
   "not primary", the router used meanwhile), every acknowledged write is
   read back once, and afterwards requests go straight to the new primary.
3. add-node: n4 joins (todo-admin add-node) while the client writes and
   reads; every call succeeds, and once the moves are done the client
   sends straight to n4 for the partitions it took.

Every process is ours, stopped by pid; every wait is bounded. Exit 77
(skipped) without the binaries or etcd.
"""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "replication"))
sys.path.insert(0, os.path.join(REPO, "deploy"))

import repl_lib as rl  # noqa: E402
from todo_client import TodoClient, partition_of  # noqa: E402

TODO = os.path.join(REPO, "deploy", "todo")
P = 32


def router_counts(client):
    """add_entry and entries requests the router has been sent."""
    st = client.stats()
    assert st["role"] == "router", st
    return st["requests"]["add_entry"], st["requests"]["entries"]


def todo_cli(endpoint, *args):
    done = subprocess.run(["/usr/bin/python3", TODO, "--endpoint", endpoint, "--timeout", "2",
                           *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"todo {' '.join(args)}: {done.returncode} {done.stderr}"
    return done.stdout


def test_direct(cluster, router):
    c = TodoClient(router, timeout=2.0)
    try:
        before = router_counts(c)
        added = {}
        for i in range(60):
            name = f"direct-{i}"
            added[name] = c.add_entry(name, "2026-12-19", f"t{i}")
        for name, entry_id in added.items():
            got = c.entries(name)
            assert [e["id"] for e in got] == [entry_id], (name, got)
        after = router_counts(c)
        assert after == before, f"the router was sent list requests: {before} -> {after}"
        # Each request once, plus its resends (a node briefly fenced under
        # load answers `unavailable`): every one straight to a primary.
        assert c.direct == 120 + c.redirects, (c.direct, c.redirects)
        # The map names three nodes, and the client spoke to each primary.
        assert len(c._node_socks) == 3, c._node_socks  # pylint: disable=protected-access
        rl.log(f"direct: 120 requests straight to the primaries, router counts {after}")

        # The `todo` command skips it too; --no-smart goes through it.
        out = todo_cli(router, "--json", "add", "cli-list", "2026-12-20", "from", "todo")
        assert json.loads(out)["id"] == 1, out
        assert router_counts(c) == after, "todo sent an add through the router"
        todo_cli(router, "--no-smart", "entries", "cli-list")
        assert router_counts(c) == (after[0], after[1] + 1), router_counts(c)
        rl.log("direct: `todo` skipped the router; `todo --no-smart` went through it")
    finally:
        c.close()


def lists_of(c, node, n, prefix):
    """n list names whose partition's primary is `node` in the client's map."""
    m = c._map  # pylint: disable=protected-access
    out, i = [], 0
    while len(out) < n:
        name = f"{prefix}-{i}"
        if m["primary"][partition_of(name, m["partitions"])] == node:
            out.append(name)
        i += 1
    return out


def test_failover(cluster, router):
    c = TodoClient(router, timeout=1.0, retries=10, deadline=40.0)
    try:
        c.ping()
        c.entries("warm")  # fetches the map
        victim = "n1"
        names = lists_of(c, victim, 10, "fo")
        acked = {n: [c.add_entry(n, "2026-12-19", "before")] for n in names}
        redirects0 = c.redirects
        cluster.kill9(victim)
        rl.log(f"failover: killed {victim} (kill -9)")
        t0 = time.monotonic()
        for k in range(3):
            for n in names:
                acked[n].append(c.add_entry(n, "2026-12-19", f"after-{k}"))
        rl.log(f"failover: 30 writes to {victim}'s lists acknowledged in "
               f"{time.monotonic() - t0:.1f} s; redirects {c.redirects - redirects0}")
        for n in names:
            got = [e["id"] for e in c.entries(n)]
            assert got == acked[n], (n, got, acked[n])
        assert c.redirects > redirects0, "no request was resent after the kill"

        # The writes may have gone through the router (n1 avoided) before
        # the promotion: once the map names new primaries, the client has
        # them within its refresh.
        def promoted():
            c._refresh_map(force=True)  # pylint: disable=protected-access
            m = c._map  # pylint: disable=protected-access
            return m is not None and all(m["primary"][partition_of(n, P)] != victim
                                         for n in names)

        assert rl.sl.wait_until(promoted, 30, 0.2), "the map still names the killed primary"
        m = c._map  # pylint: disable=protected-access
        primaries = {m["primary"][partition_of(n, P)] for n in names}
        # And straight to the new primary again: the router sees nothing.
        before = router_counts(c)
        for n in names:
            c.entries(n)
        assert router_counts(c) == before, (before, router_counts(c))
        rl.log(f"failover: every write read back; new primaries {sorted(primaries)}")
    finally:
        c.close()


def test_add_node(cluster, router):
    c = TodoClient(router, timeout=2.0, retries=10, deadline=60.0)
    try:
        names = [f"mv-{i}" for i in range(40)]
        acked = {n: [] for n in names}
        cluster.names.append("n4")
        cluster.ports["n4"] = rl.sl.free_ports(1)[0]
        cluster.start_node("n4")
        done = cluster.admin("add-node", "n4", check=False)
        assert done.returncode == 0, done.stderr
        rl.log("add-node: " + done.stdout.strip())

        def balanced():
            st = cluster.status()
            return (st is not None and st["moves"]["balanced"] and
                    all(p["in_sync"] == p["replicas"] and len(p["replicas"]) == 2
                        for p in st["partitions"]))

        deadline = time.monotonic() + 180
        rounds = 0
        while True:
            for n in names:
                acked[n].append(c.add_entry(n, "2026-12-19", f"r{rounds}"))
                got = [e["id"] for e in c.entries(n)]
                assert got == acked[n], (n, got, acked[n])
            rounds += 1
            if balanced():
                break
            assert time.monotonic() < deadline, \
                "moves not done within 180 s\n" + cluster.unsettled_story()
        rl.log(f"add-node: {rounds} rounds of 40 writes + 40 reads during the moves, all "
               f"answered; redirects {c.redirects}")
        c._refresh_map(force=True)  # pylint: disable=protected-access
        n4 = cluster.endpoint("n4")
        m = c._map  # pylint: disable=protected-access
        assert m["nodes"].get("n4") == n4, m["nodes"]
        assert "n4" in m["primary"], "n4 is primary of nothing after the moves"
        on_n4 = lists_of(c, "n4", 5, "n4list")
        before = router_counts(c)
        for n in on_n4:
            c.add_entry(n, "2026-12-19", "on n4")
        assert router_counts(c) == before
        assert n4 in c._node_socks, c._node_socks  # pylint: disable=protected-access
        rl.log("add-node: lists of n4's partitions written straight to n4")
    finally:
        c.close()


def main():
    missing = [b for b in (rl.NODE_BIN, rl.ROUTER_BIN, rl.ADMIN_BIN, rl.ETCD_BIN)
               if not os.access(b, os.X_OK)]
    if missing:
        print("skipped: missing " + ", ".join(missing))
        return 77

    def body(wd):
        etcd = rl.Etcd(wd)
        etcd.start()
        cluster = rl.Cluster(wd, etcd, nodes=3, replicas=2, partitions=P, router=True)
        try:
            cluster.start()
            router = f"tcp://127.0.0.1:{cluster.router_port}"
            assert rl.sl.wait_until(lambda: _map_ready(router), 30, 0.2), "no map from router"
            test_direct(cluster, router)
            test_add_node(cluster, router)
            test_failover(cluster, router)
        finally:
            cluster.stop()
            etcd.stop()

    return rl.run_test("smart-client", body)


def _map_ready(endpoint):
    c = TodoClient(endpoint, timeout=0.5, retries=0, smart=False)
    try:
        return len(c.map()["parts"]) == P
    except Exception:  # noqa: BLE001  (not yet)
        return False
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(main())
