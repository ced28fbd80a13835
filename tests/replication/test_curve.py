#!/usr/bin/python3
"""Replicated mode with CurveZMQ on every port (R=2, 3 nodes, a router):

- each node announces its public key in etcd (nodes/<name>: curve_key); the
  router and the other nodes connect to it as CURVE clients expecting that
  key (their logs say "(CURVE)");
- the nodes' --curve-allow lists the router's key and the other nodes'
  keys; the router's lists the client's;
- an allowed client writes through the router (the Python client with
  rids), a node is killed with kill -9 in the middle, and every
  acknowledged write is read back exactly once after the failover: the
  replication stream, catch-up and failover all ran over CURVE;
- a plaintext client gets nothing from the router, a node's client port or
  a node's replication port (bounded waits), and the nodes keep serving.
"""

import json
import os
import subprocess
import sys
import time

import msgpack
import zmq

import repl_lib as rl

sys.path.insert(0, os.path.join(rl.REPO, "deploy"))
from todo_client import TodoClient, load_keypair  # noqa: E402  pylint: disable=wrong-import-position

KEYGEN_BIN = os.path.join(rl.BUILD_DIR, "router", "todo-keygen")
NO_REPLY_WAIT = 1.5  # seconds a refused client waits for the reply that must not come


def keygen(wd, name):
    prefix = os.path.join(wd, "keys", name)
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    subprocess.run([KEYGEN_BIN, "--out", prefix], check=True, capture_output=True, timeout=30)
    return prefix


def plaintext_gets_nothing(ctx, endpoint, frames):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    try:
        s.connect(endpoint)
        s.send_multipart(frames)
        return not s.poll(int(NO_REPLY_WAIT * 1000))
    finally:
        s.close()


def scenario(wd):
    names = ["n1", "n2", "n3"]
    keys = {n: keygen(wd, n) for n in names + ["r1", "alice"]}
    etcd = rl.Etcd(wd).start()
    node_allow = [f for n in names + ["r1"] for f in ("--curve-allow", keys[n] + ".pub")]
    cluster = rl.Cluster(wd, etcd, nodes=3, replicas=2, partitions=16, router=True,
                         node_extra={n: ["--curve-secret", keys[n] + ".key", *node_allow]
                                     for n in names},
                         router_flags=["--curve-secret", keys["r1"] + ".key", "--curve-allow",
                                       keys["alice"] + ".pub"])
    ctx = zmq.Context()
    client = None
    try:
        cluster.start()
        # Each node announces the public key of its keypair.
        for n in names:
            info = json.loads(etcd.get_raw(f"/todo/todo/nodes/{n}"))
            want, _ = load_keypair(keys[n])
            assert info.get("curve_key") == want, f"{n} announces {info.get('curve_key')!r}"
        # The nodes replicate to each other over CURVE, the router reaches them so.
        logs = cluster.logs()
        for n in names:
            assert "(CURVE)" in logs[n], f"{n} connected to no peer over CURVE:\n{logs[n][-2000:]}"
        assert rl.sl.wait_until(lambda: cluster.router.log().count("(CURVE)") >= 3, 10, 0.1), \
            f"the router did not connect to 3 nodes over CURVE:\n{cluster.router.log()[-2000:]}"

        pub, secret = load_keypair(keys["alice"])
        r1_pub, _ = load_keypair(keys["r1"])
        router_ep = cluster.router_endpoint
        client = TodoClient(router_ep, timeout=2.0, retries=8, deadline=30.0,
                            curve_serverkey=r1_pub, curve_publickey=pub, curve_secretkey=secret,
                            context=ctx)
        lists = [f"curve-{i}" for i in range(40)]
        acked = {name: [] for name in lists}

        def write_round(k):
            for name in lists:
                title = f"{name}:{k}"
                eid = client.add_entry(name, "2026-12-06", title)
                acked[name].append((eid, title))

        for k in range(5):
            write_round(k)
        rl.log(f"{5 * len(lists)} writes acknowledged through the router over CURVE")

        # Plaintext gets nothing, anywhere.
        probe = [msgpack.packb({"op": "ping"})]
        assert plaintext_gets_nothing(ctx, router_ep, probe), "the router answered plaintext"
        assert plaintext_gets_nothing(ctx, cluster.endpoint("n1"), probe), \
            "n1's client port answered plaintext"
        # The replication port: an old-epoch probe (leader epoch 0) is
        # answered "refused" to a peer with an allowed key (n1's), and not at
        # all in plaintext.
        repl_ep = json.loads(etcd.get_raw("/todo/todo/nodes/n2"))["repl_endpoint"]
        old_probe = msgpack.packb([1, 0, 0, 777])
        n1_pub, n1_secret = load_keypair(keys["n1"])
        n2_pub, _ = load_keypair(keys["n2"])
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.ROUTING_ID, b"n1-probe")
        s.curve_serverkey = n2_pub.encode()
        s.curve_publickey = n1_pub.encode()
        s.curve_secretkey = n1_secret.encode()
        s.connect(repl_ep)
        s.send(old_probe)
        assert s.poll(5000), "no answer over CURVE to an old-epoch probe from an allowed key"
        state = msgpack.unpackb(s.recv(), raw=False)
        assert state[0] == 2 and state[7] is True, f"not refused: {state}"
        s.close()
        assert plaintext_gets_nothing(ctx, repl_ep, [old_probe]), \
            "n2's replication port answered a plaintext probe"

        # kill -9 a node in the middle of the writes; the client retries with
        # its rids across the failover, over CURVE.
        victim = "n2"
        st = cluster.status()
        primary = {p["partition"]: p["replicas"][0] for p in st["partitions"]}
        led = [n for n in lists if primary[rl.partition_of(n, cluster.partitions)] == victim]
        assert led, f"{victim} leads none of the lists: the kill would test nothing"
        rl.log(f"kill -9 {victim} (primary of {len(led)} of the {len(lists)} lists)")
        cluster.kill9(victim)
        for k in range(5, 10):
            write_round(k)
        rl.log(f"{10 * len(lists)} writes acknowledged; {victim} killed after the first half")

        # Every acknowledged write is there exactly once.
        for name in lists:
            entries = client.entries(name)
            by_title = {}
            for e in entries:
                by_title.setdefault(e["title"], []).append(e["id"])
            for eid, title in acked[name]:
                ids = by_title.get(title, [])
                assert ids == [eid], f"{name}: {title} acknowledged as id {eid}, found {ids}"
            assert len(entries) == len(acked[name]), \
                f"{name}: {len(entries)} entries for {len(acked[name])} acknowledged writes"
        rl.log(f"all {10 * len(lists)} acknowledged writes read back exactly once")
        # The survivors still serve, and the router still answers over CURVE.
        assert client.ping() is not None
    finally:
        if client:
            client.close()
        cluster.stop()
        etcd.stop()
        ctx.term()


if __name__ == "__main__":
    rl.check_binaries()
    if not os.access(KEYGEN_BIN, os.X_OK):
        print(f"missing {KEYGEN_BIN}")
        sys.exit(1)
    sys.exit(rl.run_test("repl-curve", scenario))
