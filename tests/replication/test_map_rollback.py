#!/usr/bin/python3
"""Replicated mode: etcd restored from an old backup while every node was
down (the map in etcd goes back), and nothing acknowledged is lost.

Each node saves the map it runs on in its data dir (CLUSTER_MAP). After a
failover has moved primaries (new leader epochs), every node is killed
(`kill -9`) one after another, an old map is
put back into etcd, and the nodes start again. None may take the old map:
it would make deposed primaries serve their old copies and hand out ids
again. Only the node whose saved map is the newest may host the
controller, and only once every member is up; it writes its map back over
the old one, and the cluster goes on from there.

Checks: every node logs the map it last ran on and that etcd's went back;
a node whose map is older than another's does not decide; the map in etcd
ends newer than every saved one, with every member in sync; every
acknowledged write is read back, and new writes get ids above all of them.
"""

import json
import sys
import time

import zmq

import repl_lib as rl

MAP_KEY = "/todo/todo/map"


def scenario(wd):
    ctx = zmq.Context()
    etcd = rl.Etcd(wd)
    etcd.start()
    cluster = rl.Cluster(wd, etcd, nodes=3, replicas=2, partitions=8)
    load = None
    try:
        cluster.start(60)
        old_map = etcd.get_raw(MAP_KEY)
        endpoints = [cluster.endpoint(n) for n in cluster.names]
        load = rl.WriteLoad(ctx, endpoints, cluster.partitions, lists=40, window=8, deadline=2.0)
        load.start()
        time.sleep(2)
        st = cluster.status()
        led = [p["partition"] for p in st["partitions"] if p["replicas"][0] == "n1"]
        assert led, st["partitions"]
        cluster.kill9("n1")
        assert rl.sl.wait_until(
            lambda: all((cluster.status() or st)["partitions"][p]["replicas"][0] != "n1"
                        for p in led), 20, 0.2), "no failover"
        cluster.start_node("n1")
        cluster.wait_in_sync(60)
        time.sleep(1)
        load.stop()
        assert load.failure is None, load.failure
        rl.log(f"n1 led {led}, failed over and came back; {load.acked_count()} writes acked")

        for n in cluster.names:  # no clean stop: what each saved before acting on it
            cluster.kill9(n)
            time.sleep(0.3)
        saved = {}
        for n in cluster.names:
            with open(f"{cluster.data_dir(n)}/CLUSTER_MAP") as fh:
                saved[n] = json.load(fh)["version"]
        old_version = json.loads(old_map)["version"]
        assert all(v > old_version for v in saved.values()), (saved, old_version)
        etcd.put_raw(MAP_KEY, old_map)
        rl.log(f"all killed (saved map versions {saved}); etcd's map put back to version "
               f"{old_version}")

        for n in cluster.names:
            cluster.start_node(n)
        newest = max(saved.values())
        assert rl.sl.wait_until(
            lambda: (cluster.status() or {}).get("version", 0) > newest, 30, 0.2), \
            "the newest saved map was not put back"
        cluster.wait_in_sync(60)
        for n in cluster.names:
            log = cluster.procs[n].log()
            assert f"last ran on: version {saved[n]}" in log, f"{n}: {log[-800:]}"
            assert "older than the map in force and was not taken" in log, f"{n}: {log[-800:]}"
        for n in cluster.names:
            if saved[n] < newest:
                assert "will not decide" in cluster.procs[n].log(), n
        rl.log(f"no node took the old map; the controller put back a map newer than version "
               f"{newest}, every member in sync")

        reader = rl.SmartClient(ctx, endpoints, cluster.partitions)
        checked = rl.verify(reader, load)
        for name in load.lists:
            top = max((eid for (eid, _, _) in load.acked[name]), default=0)
            r = reader.call({"op": "add_entry", "list": name, "date": "2026-12-20",
                             "title": f"{name}:after"}, timeout=3.0, tries=40)
            assert r and r.get("ok"), f"{name}: {r}"
            assert r["result"]["id"] > top, f"{name}: id {r['result']['id']} reused (<= {top})"
        reader.close()
        rl.log(f"all {checked} acknowledged writes read back; new writes get fresh ids")
    finally:
        if load is not None and load.is_alive():
            load.stop()
        cluster.stop()
        etcd.stop()
        ctx.destroy(linger=0)


if __name__ == "__main__":
    rl.check_binaries()
    sys.exit(rl.run_test("map-rollback", scenario))
