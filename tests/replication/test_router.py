#!/usr/bin/python3
"""Replicated mode through a router (issue 14, "Router"): the router routes
by the map it watches in etcd; a node's kill -9 gives a fast `unavailable`
for its partitions (heartbeats, and the node's lease), not timeouts; once
the controller has failed over, the router sends to the new primary; a
request that reached a node that is no longer primary ("not primary") is
forwarded once more to the new one. Every acknowledged write is read back
through the router, and `locate` and `map` answer from the map.
"""

import sys
import time

import msgpack
import zmq

import repl_lib as rl


def call(ctx, endpoint, req, timeout=5.0):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    try:
        s.connect(endpoint)
        s.send(msgpack.packb(req))
        if s.poll(int(timeout * 1000)):
            return msgpack.unpackb(s.recv(), raw=False)
        return None
    finally:
        s.close()


def scenario(wd):
    etcd = rl.Etcd(wd).start()
    cluster = rl.Cluster(wd, etcd, nodes=3, replicas=2, partitions=32, router=True)
    ctx = zmq.Context()
    load = None
    try:
        cluster.start()
        router = f"tcp://127.0.0.1:{cluster.router_port}"
        assert rl.sl.wait_until(lambda: (call(ctx, router, {"op": "map"}, 1) or {}).get("ok"),
                                15, 0.2), "the router never had a map"
        m = call(ctx, router, {"op": "map"})["result"]
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


if __name__ == "__main__":
    rl.check_binaries()
    sys.exit(rl.run_test("router", scenario))
