#!/usr/bin/python3
"""Replicated mode, bad input (issue 14): each is a clear log line and no
damage.

1. etcd down at start: the node says so, keeps trying, stops cleanly on
   SIGTERM; once etcd and the cluster exist it joins and serves.
2. A node that is not a member: it says so and serves nothing ("not
   primary"), and the cluster is unchanged.
3. A malformed map written into etcd: every node logs it and keeps the last
   valid map (writes go on); todo-admin status refuses it with exit 1; a
   valid map written back is taken.
4. Replication messages from an old leader epoch, and garbage, sent to a
   backup's replication endpoint: refused (an answer that says so), logged,
   and its copy is unchanged.
"""

import json
import os
import signal
import sys
import time

import msgpack
import zmq

import repl_lib as rl

MAP_KEY = "/todo/todo/map"


def wait_log(proc, text, timeout=15):
    return rl.sl.wait_until(lambda: text in proc.log(), timeout, 0.1)


def scenario(wd):
    ctx = zmq.Context()
    etcd = rl.Etcd(wd)
    cluster = rl.Cluster(wd, etcd, nodes=3, replicas=2, partitions=16)
    extra = None
    load = None
    try:
        # 1. etcd down at start.
        n1 = cluster.start_node("n1")
        assert wait_log(n1, "not reachable yet"), f"no clear line about etcd: {n1.log()[-1500:]}"
        rl.log("a node started before etcd says: " +
               [l for l in n1.log().splitlines() if "not reachable" in l][0].split("] ", 1)[1][:120])
        etcd.start()
        assert wait_log(n1, "not initialized"), f"no line about the missing cluster: {n1.log()[-800:]}"
        # A router says so too, in its log and to its clients.
        router = cluster.start_router()
        assert wait_log(router, "is not initialized in etcd"), router.log()[-800:]
        r = rl.call(ctx, cluster.router_endpoint,
                    {"op": "add_entry", "list": "l1", "date": "2026-12-19", "title": "early"})
        assert r and r["error"]["code"] == "unavailable" and "not initialized" in \
            r["error"]["message"], r
        router.terminate()
        cluster.router = None
        cluster.init()
        for n in ("n2", "n3"):
            cluster.start_node(n)
        cluster.wait_in_sync(60)
        rl.log("etcd started, cluster initialized: the early node joined and serves")
        early_map = etcd.get_raw(MAP_KEY)  # put back in step 3, once the map has moved on

        # A node told to stop while etcd is unreachable exits at once, 0.
        lost = rl.sl.Process("lost", [rl.NODE_BIN, "--name", "n9", "--listen",
                                      f"tcp://127.0.0.1:{rl.sl.free_ports(1)[0]}", "--data",
                                      os.path.join(wd, "data", "lost"), "--etcd",
                                      f"http://127.0.0.1:{rl.sl.free_ports(1)[0]}"],
                             os.path.join(wd, "lost.log")).start()
        assert wait_log(lost, "not reachable yet")
        t0 = time.monotonic()
        status = lost.terminate(timeout=10)
        assert status == 0, f"exit {status} on SIGTERM while waiting for etcd"
        rl.log(f"SIGTERM while waiting for etcd: exit 0 after {time.monotonic() - t0:.2f} s")

        endpoints = [cluster.endpoint(n) for n in cluster.names]
        load = rl.WriteLoad(ctx, endpoints, cluster.partitions, lists=50, window=16, deadline=2.0)
        load.start()
        time.sleep(1)

        # 2. Not a member.
        port = rl.sl.free_ports(1)[0]
        extra = rl.sl.Process("n9", [rl.NODE_BIN, "--name", "n9", "--listen",
                                     f"tcp://127.0.0.1:{port}", "--data",
                                     os.path.join(wd, "data", "n9"), "--etcd",
                                     etcd.all_endpoints], os.path.join(wd, "n9.log")).start()
        assert wait_log(extra, "is not a member"), f"n9 said nothing: {extra.log()[-800:]}"
        map_before = cluster.status()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://127.0.0.1:{port}")
        sock.send(msgpack.packb({"op": "add_entry", "list": "l1", "date": "2026-12-19",
                                 "title": "to a non-member"}))
        assert sock.poll(5000), "n9 did not answer"
        r = msgpack.unpackb(sock.recv(), raw=False)
        sock.close()
        assert not r["ok"] and r["error"]["code"] == "unavailable", r
        assert "not primary" in r["error"]["message"], r
        st = cluster.status()
        assert [p["replicas"] for p in st["partitions"]] == \
            [p["replicas"] for p in map_before["partitions"]], "a non-member changed the map"
        assert "n9" in st["not_members_alive"], st["not_members_alive"]
        # The map a client gets sends it to members only.
        m = rl.call(ctx, cluster.endpoint("n1"), {"op": "map"})
        assert m and m["ok"] and "n9" not in m["result"]["nodes"], m
        rl.log(f"a non-member logs why it waits, answers {r['error']['message']!r}")
        extra.terminate()

        # 3. A malformed map in etcd, then an old map put back (etcd restored
        # from an old backup): neither is taken, writes go on, and the
        # controller writes the map in force back over it.
        def refused_and_written_back(value, logged, what):
            """Puts `value` as the map: every node logs `logged`, writes go
            on, and the controller writes the map in force back over it.
            Returns (the map before, the map written back)."""
            cur = json.loads(etcd.get_raw(MAP_KEY))
            etcd.put_raw(MAP_KEY, value)
            for n in cluster.names:
                assert wait_log(cluster.procs[n], logged), \
                    f"{n} did not log the {what}: {cluster.procs[n].log()[-800:]}"
            acked = load.acked_count()
            time.sleep(2)
            assert load.acked_count() > acked, f"writes stopped with the {what}: {load.errors}"
            assert rl.sl.wait_until(
                lambda: (cluster.status() or {}).get("version", 0) > cur["version"], 15, 0.2), \
                f"the controller did not write the map back over the {what}"
            return cur, json.loads(etcd.get_raw(MAP_KEY))

        _, back = refused_and_written_back('{"partitions": 16, "replicas": "two"}',
                                           "malformed and was not taken", "malformed map")
        assert any("writing the map in force back" in cluster.procs[n].log() for n in cluster.names)
        rl.log("a malformed map: logged by every node, the last valid one kept, writes go on, "
               f"the controller wrote back version {back['version']}")

        old_version = json.loads(early_map)["version"]
        assert old_version < back["version"], (old_version, back["version"])
        cur, back = refused_and_written_back(early_map, "is older than the map in force", "old map")
        assert [p["leader_epoch"] for p in back["parts"]] == \
            [p["leader_epoch"] for p in cur["parts"]], "the map written back is not the one in force"
        rl.log(f"an old map (version {old_version}) put back: refused by every node, writes go "
               f"on, the controller wrote back version {back['version']}")

        # 4. Old-epoch and garbage replication messages to a backup.
        rl.log("old-epoch replication messages and garbage to a backup")
        st = cluster.status()
        part = st["partitions"][0]
        backup = part["replicas"][1]
        repl_ep = node_repl_endpoint(cluster, backup)
        before = read_list_all(ctx, cluster, load)
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.ROUTING_ID, part["replicas"][0].encode())  # pretend to be the primary
        s.connect(repl_ep)
        # A probe at leader epoch 0 (below any real one): refused.
        s.send(msgpack.packb([1, 0, 0, 777]))
        state = recv_state(s, 777)
        assert state is not None, "no answer to an old-epoch probe"
        assert state[7] is True, f"not refused: {state}"
        # An append of an old epoch with a record: refused, not applied.
        rec = b"\x01" + (4).to_bytes(4, "little") + b"\x00\x00\xffx" + (1).to_bytes(4, "little") + b"v"
        s.send(msgpack.packb([3, 0, 0, 777, 1, [rec]], use_bin_type=True))
        state = recv_state(s, 777)
        assert state is not None, "no answer to an old-epoch append"
        assert state[7] is True, f"not refused: {state}"
        # Garbage.
        for junk in (b"", b"\xc1", b"not msgpack at all", msgpack.packb([9, 1, 2, 3])):
            s.send(junk)
        s.close()
        time.sleep(1)
        assert cluster.procs[backup].alive(), f"{backup} died"
        assert "bad frame" in cluster.procs[backup].log(), "garbage not logged"
        after = read_list_all(ctx, cluster, load)
        for name, entries in before.items():
            assert entries == after[name][:len(entries)], f"{name} changed under old messages"
        rl.log(f"{backup} refused them (state refused=true), logged the garbage, kept serving")

        load.stop()
        assert load.failure is None, load.failure
        reader = rl.SmartClient(ctx, endpoints, cluster.partitions)
        checked = rl.verify(reader, load)
        reader.close()
        rl.log(f"all {checked} acknowledged writes read back")
    finally:
        if load is not None and load.is_alive():
            load.stop()
        if extra is not None:
            extra.terminate()
        cluster.stop()
        etcd.stop()
        ctx.destroy(linger=0)


def recv_state(sock, session, timeout=5.0):
    """The backup's state answer for `session`, or None within the timeout.
    A frame is a sequence of messages (common/cluster/repl_wire.h), and the
    backup answers its primary's routing id, which this socket took over:
    the real primary's acks may come first or share our answer's frame."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sock.poll(int(left * 1000) + 1):
            return None
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(sock.recv())
        for m in unpacker:
            if isinstance(m, list) and len(m) >= 8 and m[0] == 2 and m[3] == session:
                return m


def node_repl_endpoint(cluster, name):
    return json.loads(cluster.etcd.get_raw(f"/todo/todo/nodes/{name}"))["repl_endpoint"]


def read_list_all(ctx, cluster, load):
    c = rl.SmartClient(ctx, [cluster.endpoint(n) for n in cluster.names], cluster.partitions)
    out = {}
    for name in load.lists[:20]:
        r = c.call({"op": "entries", "list": name})
        out[name] = r["result"] if r and r.get("ok") else None
    c.close()
    return out


if __name__ == "__main__":
    rl.check_binaries()
    sys.exit(rl.run_test("bad-input", scenario))
