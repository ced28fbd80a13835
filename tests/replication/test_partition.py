#!/usr/bin/python3
"""A partial partition in network namespaces (replication.md, test 3).

Hosts (network namespaces on one bridge, tests/multihost/netns_topology.py):
etcd "e1", nodes "n1" "n2" "n3", router "ra", and this test's clients "cl".
Under a write load through the router and straight to the primaries, the
primary "n2" is cut off from etcd and the other nodes with nftables (in its
own namespace), while the router and the clients still reach it:

- n2 stops acknowledging within the lease TTL (2 s) of the cut (it can't
  renew its lease: it fences itself), though the router still reaches it;
- its partitions fail over to their in-sync backups and take writes again
  through the router;
- after the cut heals, n2 comes back as a fresh replica and catches up;
  nothing acknowledged is lost, nothing answered "not applied" is there,
  nothing is applied twice (ids unique), and each list holds its writes in
  the order they were acknowledged.

Needs root, iproute2 and nftables (deploy/install-deps); exits 77 where
namespaces can't be made. Every process is stopped by pid and every
namespace deleted, also on failure.
"""

import os
import subprocess
import sys
import time

import msgpack
import zmq

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "multihost"))
import repl_lib as rl  # noqa: E402
from netns_topology import Topology, TopologyError  # noqa: E402

HOSTS = {"e1": 31, "n1": 11, "n2": 12, "n3": 13, "ra": 21, "cl": 51}
NODES = ["n1", "n2", "n3"]
VICTIM = "n2"
LEASE_S = 2.0
PARTITIONS = 16


def nft(topo, host, ruleset):
    """Loads `ruleset` into host's namespace in one transaction (nft -f -)."""
    done = subprocess.run(topo.command(host, ["nft", "-f", "-"]), input=ruleset,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"nft in {host}: {done.stderr.strip()}")


def cut(topo, host, others):
    """Drops every packet between `host` and `others` (in host's namespace),
    atomically."""
    addrs = "{ " + ", ".join(topo.addr(o) for o in others) + " }"
    nft(topo, host, f"""table inet todo_cut {{
  chain in {{ type filter hook input priority 0; policy accept; ip saddr {addrs} drop; }}
  chain out {{ type filter hook output priority 0; policy accept; ip daddr {addrs} drop; }}
}}
""")


def heal(topo, host):
    nft(topo, host, "delete table inet todo_cut\n")


class NsCluster(rl.Cluster):
    """rl.Cluster with each process in its host's namespace and addresses on
    the bridge."""

    def __init__(self, topo, workdir, etcd_url):
        fake_etcd = type("E", (), {"all_endpoints": etcd_url})()
        super().__init__(workdir, fake_etcd, nodes=3, replicas=2, partitions=PARTITIONS,
                         node_flags=["--lease-ms", str(int(LEASE_S * 1000))])
        self.topo = topo
        self.ports = {n: 7001 for n in self.names}

    def endpoint(self, name):
        return f"tcp://{self.topo.addr(name)}:7001"

    def start_node(self, name, extra=()):
        os.makedirs(self.data_dir(name), exist_ok=True)
        argv = self.node_argv(name, ["--repl-listen", f"tcp://{self.topo.addr(name)}:7101",
                                     *extra])
        p = rl.sl.Process(name, self.topo.command(name, argv),
                          os.path.join(self.workdir, f"{name}.log"))
        p.start()
        self.procs[name] = p
        return p

    def start_router(self, extra=()):
        argv = [rl.ROUTER_BIN, "--listen", f"tcp://{self.topo.addr('ra')}:7000", "--etcd",
                self.etcd.all_endpoints, *extra]
        self.router = rl.sl.Process("ra", self.topo.command("ra", argv),
                                    os.path.join(self.workdir, "ra.log")).start()
        return self.router


def direct_writes(ctx, endpoint, lists, t_cut, duration):
    """Sends add_entry and entries (alternately) to `endpoint` (the cut
    primary) for `lists`, one at a time each, for `duration` s after t_cut;
    returns the receive times of its successful answers (writes acknowledged
    or reads answered) and the acknowledged (list, id, title)s."""
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    acks, acked = [], []
    seq = 0
    pending = {}
    end = t_cut + duration
    while time.monotonic() < end:
        while len(pending) < len(lists):
            name = lists[seq % len(lists)]
            title = f"direct-{seq}"
            if seq % 2:
                s.send(msgpack.packb({"op": "entries", "id": seq, "list": name}))
                title = None
            else:
                s.send(msgpack.packb({"op": "add_entry", "id": seq, "list": name,
                                      "date": "2026-12-19", "title": title}))
            pending[seq] = (name, title)
            seq += 1
        if s.poll(50):
            r = msgpack.unpackb(s.recv(), raw=False)
            name, title = pending.pop(r["id"])
            if r.get("ok"):
                acks.append(time.monotonic())
                if title is not None:
                    acked.append((name, r["result"]["id"], title))
        # Requests unanswered for 1 s are given up (outcome unknown).
        if len(pending) >= len(lists):
            pending.clear()
            s.close()
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(endpoint)
    s.close()
    return acks, acked


def scenario(wd):
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces)")
        sys.exit(77)
    topo = Topology(HOSTS, os.getpid() % 100000)
    procs = []
    cluster = None
    load = None
    try:
        try:
            topo.create()
        except TopologyError as e:
            if e.skippable:
                print(f"SKIP: {e}")
                sys.exit(77)
            raise
        # Everything this process makes from here lives in the client's host.
        topo.enter("cl")
        etcd_url = f"http://{topo.addr('e1')}:2379"
        etcd = rl.sl.Process("e1", topo.command("e1", [
            rl.ETCD_BIN, "--name", "e1", "--data-dir", os.path.join(wd, "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", f"http://{topo.addr('e1')}:2380",
            "--initial-advertise-peer-urls", f"http://{topo.addr('e1')}:2380",
            "--initial-cluster", f"e1=http://{topo.addr('e1')}:2380",
            "--heartbeat-interval", "100", "--election-timeout", "500", "--log-level", "warn"]),
            os.path.join(wd, "e1.log")).start()
        procs.append(etcd)
        cluster = NsCluster(topo, wd, etcd_url)
        assert rl.sl.wait_until(lambda: cluster.admin("status", check=False).returncode in (0, 1),
                                20, 0.2), "etcd not reachable"
        cluster.init()
        for n in NODES:
            cluster.start_node(n)
        cluster.start_router()
        cluster.wait_in_sync(60)
        ctx = zmq.Context()
        router = f"tcp://{topo.addr('ra')}:7000"
        endpoints = [cluster.endpoint(n) for n in NODES]
        assert rl.sl.wait_until(lambda: rl.SmartClient(ctx, [router], PARTITIONS).refresh(), 15,
                                0.2), "the router has no map"
        load = rl.WriteLoad(ctx, endpoints, PARTITIONS, lists=120, window=32, deadline=6.0,
                            router=router)
        load.start()
        time.sleep(3)
        assert load.acked_count() > 0, f"nothing acknowledged: {load.errors}"
        reader = rl.SmartClient(ctx, endpoints, PARTITIONS)
        reader.refresh()
        victim_lists = [n for n in load.lists
                        if reader.primary[rl.partition_of(n, PARTITIONS)] == VICTIM]
        assert victim_lists, f"{VICTIM} leads nothing"
        rl.log(f"cut {VICTIM} off from etcd and n1, n3 (the router and clients still reach it)")
        # Times are counted from before the cut: the interval measured is the
        # longest it can be.
        t_cut = time.monotonic()
        cut(topo, VICTIM, ["e1", "n1", "n3"])
        rl.log(f"(the cut took {time.monotonic() - t_cut:.3f} s to put in place)")
        # direct_writes writes the even-indexed lists and reads the odd ones.
        # The reads go to lists nobody writes, in the victim's partitions: a
        # read waits behind its list's unacknowledged writes, and after the
        # cut none is acknowledged, so reads of the loaded lists could all
        # wait until the fence and leave nothing to time.
        parts = {rl.partition_of(n, PARTITIONS) for n in victim_lists}
        quiet = [f"quiet-{i}" for i in range(100000)
                 if rl.partition_of(f"quiet-{i}", PARTITIONS) in parts][:4]
        direct = [x for pair in zip(victim_lists[:4], quiet) for x in pair]
        acks, direct_acked = direct_writes(ctx, cluster.endpoint(VICTIM), direct, t_cut,
                                           LEASE_S + 2.0)
        last = max(acks) - t_cut if acks else None
        rl.log(f"{VICTIM} answered {len(acks)} requests after the cut (reads; its writes need "
               f"its cut-off backup), the last {last if last is None else round(last, 3)} s after "
               f"it; lease TTL {LEASE_S} s")
        assert last is not None, f"{VICTIM} answered no read at all after the cut"
        assert last <= LEASE_S, f"{VICTIM} still answered {last:.3f} s after the cut (> TTL)"
        # Its lists are taken over and writable through the router.
        rl.sl.wait_until(lambda: all(t is not None for t in
                                     load.first_acks_after(t_cut, victim_lists).values()), 20, 0.1)
        firsts = load.first_acks_after(t_cut, victim_lists)
        assert all(t is not None for t in firsts.values()), "lists of the cut node never came back"
        rl.log(f"its lists writable again through the router after "
               f"{max(t - t_cut for t in firsts.values()):.2f} s")
        time.sleep(2)
        rl.log("heal the cut")
        heal(topo, VICTIM)
        cluster.wait_in_sync(90)
        time.sleep(1)
        load.stop()
        assert load.failure is None, load.failure
        # The direct writes n2 acknowledged before its fence must be there too.
        for name, eid, title in direct_acked:
            r = reader.call({"op": "entries", "list": name})
            assert r and r.get("ok"), r
            got = {e["id"]: e["title"] for e in r["result"]}
            assert got.get(eid) == title, f"{name}: {VICTIM} acknowledged {eid}={title!r}, LOST"
        # verify() also checks that lists hold only the load's titles; the
        # direct writes use other titles, so check those lists apart.
        direct_lists = {n for n, _, _ in direct_acked}
        load.lists = [n for n in load.lists if n not in victim_lists[:8]]
        checked = rl.verify(reader, load)
        rl.log(f"all {checked} acknowledged writes read back (+{len(direct_acked)} direct ones); "
               f"errors seen by the load: {load.errors}")
        reader.close()
        ctx.destroy(linger=0)
    finally:
        if load is not None and load.is_alive():
            load.stop()
        if cluster is not None:
            cluster.stop()
        for p in procs:
            p.terminate(timeout=10)
        failures = topo.destroy()
        if failures:
            print("namespace clean-up failed: " + "; ".join(failures))


if __name__ == "__main__":
    rl.check_binaries()
    sys.exit(rl.run_test("partition", scenario))
