#!/usr/bin/python3
"""Replicated mode through a router (issue 14, "Router"): the router routes
by the map it watches in etcd; a node's kill -9 gives a fast `unavailable`
for its partitions (heartbeats, and the node's lease), not timeouts; once
the controller has failed over, the router sends to the new primary; a
request that reached a node that is no longer primary ("not primary") is
forwarded on to the new one, also while nodes are added and removed. Every
acknowledged write is read back through the router, and `locate` and `map`
answer from the map. A node that comes back on another endpoint is reached
there (the router polls the new connection, not the closed one).
"""

import sys
import threading
import time
import urllib.request

import zmq

import repl_lib as rl


call = rl.call


def scenario(wd):
    etcd = rl.Etcd(wd).start()
    cluster = rl.Cluster(wd, etcd, nodes=3, replicas=2, partitions=32, router=True)
    ctx = zmq.Context()
    load = None
    try:
        cluster.start()
        router = cluster.router_endpoint
        m = cluster.wait_router_map(ctx)
        assert m["partitions"] == 32 and len(m["parts"]) == 32, m
        loc = call(ctx, router, {"op": "locate", "list": "alice"})["result"]
        assert loc["partition"] == rl.partition_of("alice", 32), loc
        assert loc["node"] == m["parts"][loc["partition"]][0], (loc, m["parts"][loc["partition"]])
        assert loc["node"] in loc["replicas"] and len(loc["replicas"]) == 2, loc
        rl.log(f"locate alice: {loc}")

        endpoints = [cluster.endpoint(n) for n in cluster.names]
        load = rl.WriteLoad(ctx, endpoints, 32, lists=200, window=64, deadline=6.0, router=router)
        load.start()
        time.sleep(3)
        assert load.acked_count() > 0, f"nothing acknowledged through the router: {load.errors}"
        victim = m["parts"][0][0]
        victim_lists = [n for n in load.lists if m["parts"][rl.partition_of(n, 32)][0] == victim]
        rl.log(f"kill -9 {victim} ({len(victim_lists)} lists)")
        errors_before = dict(load.errors)
        t_kill = time.monotonic()
        cluster.kill9(victim)
        rl.sl.wait_until(lambda: all(t is not None for t in
                                     load.first_acks_after(t_kill, victim_lists).values()), 20, 0.1)
        firsts = load.first_acks_after(t_kill, victim_lists)
        assert all(t is not None for t in firsts.values()), "some lists never came back"
        worst = max(t - t_kill for t in firsts.values())
        new_errors = {k: v - errors_before.get(k, 0) for k, v in load.errors.items()
                      if v != errors_before.get(k, 0)}
        rl.log(f"through the router: every list of {victim} writable after {worst:.2f} s; "
               f"errors meanwhile: {new_errors}")
        assert worst <= 5.0, f"failover through the router took {worst:.2f} s"
        assert new_errors.get("timeout", 0) + new_errors.get("client_timeout", 0) <= 64, \
            f"the router answered with timeouts, not a fast unavailable: {new_errors}"
        time.sleep(1)
        load.stop()
        assert load.failure is None, load.failure
        checked = rl.verify(rl.SmartClient(ctx, endpoints, 32, router=router), load)
        rl.log(f"all {checked} acknowledged writes read back through the router")
        st = call(ctx, router, {"op": "stats"})["result"]
        rl.log(f"router stats: forwarded {st['forwarded']}, timeouts {st['timeouts']}")
    finally:
        if load is not None and load.is_alive():
            load.stop()
        cluster.stop()
        etcd.stop()
        ctx.destroy(linger=0)


def scenario_moves(wd):
    """A node added and one removed under a load that goes only through the
    router (a simple client): the router forwards each "not primary" on to
    the partition's new primary, so the client sees no timeout and at most
    a few `unavailable` (nothing applied), and every acknowledged write is
    there."""
    etcd = rl.Etcd(wd).start()
    http_port = rl.sl.free_ports(1)[0]
    cluster = rl.Cluster(wd, etcd, nodes=3, replicas=2, partitions=32, router=True,
                         router_flags=["--http", f"127.0.0.1:{http_port}"])
    ctx = zmq.Context()
    load = None
    gauges = MetricsWatcher(http_port)
    try:
        cluster.start()
        router = cluster.router_endpoint
        cluster.wait_router_map(ctx)
        assert rl.sl.wait_until(lambda: gauges.scrape().get("todo_cluster_partitions_ok") == 32,
                                15, 0.3), f"the router's gauges: {gauges.last}"
        gauges.start()
        endpoints = [cluster.endpoint(n) for n in cluster.names]
        load = rl.WriteLoad(ctx, endpoints, 32, lists=200, window=64, deadline=6.0, router=router)
        load.start()
        time.sleep(2)
        cluster.names.append("n4")
        cluster.ports["n4"] = rl.sl.free_ports(1)[0]
        cluster.start_node("n4")
        cluster.admin("add-node", "n4")

        def balanced(gone=None):
            st = cluster.status()
            return st is not None and st["moves"]["balanced"] and \
                (gone is None or all(m["name"] != gone for m in st["members"]))
        assert rl.sl.wait_until(balanced, 120, 0.3), "not balanced after add-node n4"
        cluster.admin("remove-node", "n1")
        assert rl.sl.wait_until(lambda: balanced("n1"), 120, 0.3), "n1 never left"
        time.sleep(1)
        gauges.stop()
        seen = gauges.max_seen
        rl.log(f"the router's /metrics during the moves, highest values: {seen}")
        # Scraped every 0.2 s from a snapshot published every 0.25 s: a
        # short phase (n1 draining) may fall between two scrapes, but the
        # join's moves (two batches of --max-moves at least) cannot.
        assert seen.get("todo_cluster_moves_in_progress", 0) + \
            seen.get("todo_cluster_moves_remaining", 0) > 0, seen
        end = {}

        def settled():
            end.update(gauges.scrape())
            return (end.get("todo_cluster_moves_in_progress") == 0
                    and end.get("todo_cluster_moves_remaining") == 0
                    and end.get("todo_cluster_partitions_ok") == 32
                    and end.get("todo_cluster_members_alive") == 3)
        assert rl.sl.wait_until(settled, 15, 0.3), f"the gauges once balanced: {end}"
        load.stop()
        assert load.failure is None, load.failure
        acked = load.acked_count()
        errors = dict(load.errors)
        st = call(ctx, router, {"op": "stats"})["result"]
        rl.log(f"add-node n4 and remove-node n1 through the router: {acked} writes "
               f"acknowledged; errors {errors}; the router sent {st['not_primary_retries']} "
               f"'not primary' answers on")
        assert errors.get("timeout", 0) + errors.get("client_timeout", 0) == 0, errors
        assert sum(errors.values()) <= max(10, acked // 100), \
            f"more than 1% of the writes failed during the moves: {errors}"
        endpoints = [cluster.endpoint(n) for n in cluster.names if n != "n1"]
        checked = rl.verify(rl.SmartClient(ctx, endpoints, 32, router=router), load)
        rl.log(f"all {checked} acknowledged writes read back through the router")
    finally:
        gauges.stop()
        if load is not None and load.is_alive():
            load.stop()
        cluster.stop()
        etcd.stop()
        ctx.destroy(linger=0)


def scenario_endpoints(wd):
    """Every node restarted on a new port, one after the other (same name,
    same data): the router's map names each new endpoint, the router
    connects a fresh DEALER to it and polls that socket, not the closed one
    (the poll list is rebuilt after every map change). Afterwards every
    primary is at a new endpoint, and a write and a read of a list in each
    of the 32 partitions, through the router, are answered."""
    etcd = rl.Etcd(wd).start()
    cluster = rl.Cluster(wd, etcd, nodes=3, replicas=2, partitions=32, router=True)
    ctx = zmq.Context()
    try:
        cluster.start()
        router = cluster.router_endpoint
        cluster.wait_router_map(ctx)
        lists = {}  # partition -> a list name in it
        i = 0
        while len(lists) < 32:
            lists.setdefault(rl.partition_of(f"e{i}", 32), f"e{i}")
            i += 1
        old = {n: cluster.endpoint(n) for n in cluster.names}
        for name in cluster.names:
            assert cluster.procs[name].terminate(timeout=20) is not None, f"{name} did not stop"
            cluster.ports[name] = rl.sl.free_ports(1)[0]
            cluster.start_node(name)
            new = cluster.endpoint(name)
            rl.log(f"{name} restarted: {old[name]} -> {new}")

            def router_knows(name=name, new=new):
                m = call(ctx, router, {"op": "map"}, 1) or {}
                return m.get("ok") and m["result"]["nodes"].get(name) == new
            assert rl.sl.wait_until(router_knows, 20, 0.2), \
                f"the router's map never named {name} at {new}"
            cluster.wait_in_sync(60)
        m = call(ctx, router, {"op": "map"})["result"]
        assert all(m["nodes"][n] != old[n] for n in cluster.names), (old, m["nodes"])
        assert {p[0] for p in m["parts"]} <= set(cluster.names), m["parts"]

        def answered(req):
            # The cluster is in sync, but a partition may still be changing
            # hands: `unavailable` (nothing applied) is tried again; any
            # other answer is final. No answer at all is a failure.
            got = {}

            def final():
                got["r"] = call(ctx, router, req, 3)
                assert got["r"] is not None, f"no answer through the router to {req}"
                return got["r"].get("ok") or got["r"]["error"]["code"] != "unavailable"
            rl.sl.wait_until(final, 15, 0.2)
            return got["r"]
        for part, name in sorted(lists.items()):
            r = answered({"op": "add_entry", "list": name, "date": "2026-12-06",
                          "title": f"{name}:moved"})
            assert r is not None and r.get("ok"), f"add to {name} (partition {part}): {r}"
        for part, name in sorted(lists.items()):
            r = answered({"op": "entries", "list": name})
            assert r is not None and r.get("ok"), f"entries of {name} (partition {part}): {r}"
            titles = {e["title"] for e in r["result"]}
            assert f"{name}:moved" in titles, f"{name} (partition {part}): {r['result']}"
        assert cluster.router.alive(), "the router exited"
        st = call(ctx, router, {"op": "stats"})["result"]
        rl.log(f"32 partitions written and read through the router after every node moved; "
               f"router stats: forwarded {st['forwarded']}, timeouts {st['timeouts']}")
        assert st["timeouts"] == 0, f"the router timed out requests to moved nodes: {st}"
    finally:
        cluster.stop()
        etcd.stop()
        ctx.destroy(linger=0)


class MetricsWatcher(threading.Thread):
    """Scrapes the router's /metrics every 0.2 s and keeps each todo_cluster_*
    gauge's highest value (a sample's labels folded into its name:
    todo_cluster_partitions{state="ok"} is todo_cluster_partitions_ok)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.max_seen = {}
        self.last = {}
        self.halt = threading.Event()

    def scrape(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if not line.startswith("todo_cluster_"):
                continue
            name, value = line.rsplit(" ", 1)
            if "{" in name:
                base, labels = name[:-1].split("{", 1)
                name = base + "_" + labels.split("=", 1)[1].strip('"')
            out[name] = float(value)
        self.last = out
        return out

    def run(self):
        while not self.halt.wait(0.2):
            for k, v in self.scrape().items():
                self.max_seen[k] = max(v, self.max_seen.get(k, v))

    def stop(self):
        self.halt.set()
        if self.is_alive():
            self.join(5)


if __name__ == "__main__":
    rl.check_binaries()
    status = rl.run_test("router", scenario)
    status = status or rl.run_test("router-moves", scenario_moves)
    sys.exit(status or rl.run_test("router-endpoints", scenario_endpoints))
