#!/usr/bin/python3
"""Multi-host test: 3 nodes, 2 routers and a client on their own hosts.

The hosts are network namespaces on one bridge (netns_topology.py), each with
its own address in 10.213.7.0/24, which exists only inside those namespaces.
This process moves itself into the client's namespace before it makes any
socket, so every request it sends goes over the bridge to a namespace address.

Checks, in order:
  1. both routers answer ping (role router, their --name);
  2. writes through router A are read back, complete, through router B;
  3. `locate` agrees on both routers for every list, and the lists are spread
     over all 3 nodes;
  4. cable cut (the bridge's port to one node goes down): both routers answer
     `unavailable` for that node's lists within --down-after-ms plus one
     heartbeat (asserted < 5 s; the time is printed), a write to such a list
     is refused with `unavailable`, and the other nodes' lists keep serving,
     through both routers, the whole time;
  5. cable back: the node's lists serve again through both routers (the time
     is printed) with every acknowledged entry and nothing else (the refused
     write was not applied), and take writes again;
  6. SIGTERM: every process exits 0.

Exit status: 0 pass, 1 fail, 77 skip (not root, no `ip`, or the machine won't
create namespaces, veths or a bridge). Env TODO_BUILD_DIR names the build dir
(default <repo>/build). Every wait is bounded; processes are stopped by pid and
the namespaces deleted at the end, also on failure, SIGINT or SIGTERM.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "deploy"))
sys.path.insert(0, HERE)
from netns_topology import Topology, TopologyError  # noqa: E402  pylint: disable=C0413

SKIP = 77
BUILD_DIR = os.path.abspath(os.environ.get("TODO_BUILD_DIR", os.path.join(REPO, "build")))
NODE_BIN = os.path.join(BUILD_DIR, "node", "todo-node")
ROUTER_BIN = os.path.join(BUILD_DIR, "router", "todo-router")

NODES = {"n1": 11, "n2": 12, "n3": 13}
ROUTERS = {"ra": 21, "rb": 22}
CLIENT = "cl"
NODE_PORT, ROUTER_PORT = 7001, 7000
HEARTBEAT_MS, DOWN_AFTER_MS = 500, 2000
VICTIM = "n2"
LISTS = [f"multihost-{i:02d}" for i in range(24)]

READY_TIMEOUT = 15.0  # s, for every process to answer ping
DOWN_LIMIT = 5.0  # s, link down -> unavailable (down-after + a heartbeat + slack)
HEAL_LIMIT = 20.0  # s, link up -> serving (bounded wait, not a performance claim)
PROBE_INTERVAL = 0.05  # s between two probes


class Failure(Exception):
    """A check failed."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def skip(reason):
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP)


class Cluster:
    """The processes of the test, each started in its host's namespace."""

    def __init__(self, topo, workdir):
        self.topo = topo
        self.workdir = workdir
        self.procs = {}  # host -> Popen
        self.logs = {}  # host -> path

    def endpoint(self, host):
        port = NODE_PORT if host in NODES else ROUTER_PORT
        return f"tcp://{self.topo.addr(host)}:{port}"

    def _start(self, host, argv):
        log = os.path.join(self.workdir, f"{host}.log")
        self.logs[host] = log
        with open(log, "wb") as out:
            self.procs[host] = subprocess.Popen(self.topo.command(host, argv),
                                                stdin=subprocess.DEVNULL, stdout=out,
                                                stderr=subprocess.STDOUT)

    def start(self):
        for name in NODES:
            self._start(name, [NODE_BIN, "--name", name, "--listen", self.endpoint(name),
                               "--data", os.path.join(self.workdir, "data", name)])
        node_flags = [f"--node={n}={self.endpoint(n)}" for n in NODES]
        for name in ROUTERS:
            self._start(name, [ROUTER_BIN, "--listen", self.endpoint(name), "--name", name,
                               *node_flags, f"--heartbeat-ms={HEARTBEAT_MS}",
                               f"--down-after-ms={DOWN_AFTER_MS}"])

    def stop(self, timeout=10.0):
        """SIGTERM to every process by pid, SIGKILL after `timeout`; {host: status}."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        statuses = {}
        for host, proc in self.procs.items():
            try:
                statuses[host] = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                statuses[host] = f"killed after {timeout:g} s"
                proc.wait(5)
        self.procs = {}
        return statuses

    def dead(self):
        return {h: p.returncode for h, p in self.procs.items() if p.poll() is not None}

    def grep_logs(self, hosts, word):
        """Prints the lines of the hosts' logs that contain `word`."""
        for host in hosts:
            with open(self.logs[host], encoding="utf-8", errors="replace") as f:
                for line in f:
                    if word in line:
                        print(f"  {host}.log: {line.rstrip()}")

    def dump_logs(self, lines=25):
        for host, path in self.logs.items():
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    tail = f.read().splitlines()[-lines:]
            except OSError:
                continue
            print(f"--- last lines of {host} ({path}) ---")
            print("\n".join(tail))


def wait_ready(cluster, client_for):
    """Waits until every node and router answers ping over the bridge."""
    deadline = time.monotonic() + READY_TIMEOUT
    for host in list(NODES) + list(ROUTERS):
        client = client_for(cluster.endpoint(host), timeout=0.5)
        while True:
            check(not cluster.dead(), f"exited during start-up: {cluster.dead()}")
            reply = client.collect([client.submit("ping")], timeout=0.5)[0]
            if reply.ok:
                break
            check(time.monotonic() < deadline,
                  f"{host} did not answer ping within {READY_TIMEOUT:g} s: {reply.error}")
            time.sleep(0.1)


def wait_routed(cluster, client_for):
    """Waits until each router forwards to each node: `entries` on a list the
    node owns answers ok (it stores nothing). A router answers `overloaded`
    for a node it has not connected to yet."""
    deadline = time.monotonic() + READY_TIMEOUT
    for router in ROUTERS:
        client = client_for(cluster.endpoint(router), timeout=1.0)
        owners = {}
        for name, reply in zip(LISTS, client.pipeline([("locate", {"list": n}) for n in LISTS])):
            check(reply.ok, f"locate {name} via {router}: {reply.error}")
            owners.setdefault(reply.result["node"], name)
        check(set(owners) == set(NODES), f"{router} assigns no list to some node: {owners}")
        for node, probe in sorted(owners.items()):
            while True:
                reply = client.collect([client.submit("entries", list=probe)], timeout=1.0)[0]
                if reply.ok:
                    break
                check(time.monotonic() < deadline,
                      f"{router} still can't reach {node} after {READY_TIMEOUT:g} s: {reply.error}")
                time.sleep(0.1)


def as_entries(result):
    return [{"id": e["id"], "date": e["date"], "title": e["title"]} for e in result]


def read_all(client, lists, expected, via):
    """Reads every list in one pipeline; checks each equals `expected`."""
    replies = client.pipeline([("entries", {"list": name}) for name in lists], timeout=5.0)
    for name, reply in zip(lists, replies):
        check(reply.ok, f"entries {name} via {via}: {reply.error}")
        check(as_entries(reply.result) == expected[name],
              f"entries {name} via {via}: {reply.result} != {expected[name]}")


def probe_until(clients, list_name, want, limit, healthy=None):
    """Sends `entries list_name` to each router every PROBE_INTERVAL until it
    answers as `want` ("unavailable", or "ok"); returns {router: seconds}.

    `healthy`: (lists, expected) that must keep reading back exactly, through
    the same router, in every round. Fails after `limit` seconds.
    """
    start = time.monotonic()
    found = {}
    round_no = 0
    while len(found) < len(clients):
        round_start = time.monotonic()
        elapsed = round_start - start
        check(elapsed < limit, f"no '{want}' for {list_name} within {limit:g} s "
                               f"(got it from {sorted(found)} only)")
        for router, client in clients.items():
            if router in found:
                continue
            probe = client.submit("entries", list=list_name)
            if healthy:
                lists, expected = healthy
                other = lists[round_no % len(lists)]
                reply = client.collect([client.submit("entries", list=other)], timeout=3.0)[0]
                check(reply.ok and as_entries(reply.result) == expected[other],
                      f"{other} (a healthy node's list) via {router} during the fault: "
                      f"{reply.error if not reply.ok else reply.result}")
            reply = client.collect([probe], timeout=PROBE_INTERVAL)[0]
            code = "ok" if reply.ok else reply.error.code
            if code == want:
                found[router] = time.monotonic() - start
        round_no += 1
        # Pace the rounds: an immediate answer must not turn this into a busy loop.
        time.sleep(max(0.0, round_start + PROBE_INTERVAL - time.monotonic()))
    return found


def scenario(cluster, topo, client_for):
    routers = {r: client_for(cluster.endpoint(r), timeout=3.0) for r in ROUTERS}
    ra, rb = routers["ra"], routers["rb"]

    # 1. Both routers answer ping.
    for name, client in routers.items():
        pong = client.ping()
        check(pong.get("pong") is True and pong.get("role") == "router" and
              pong.get("name") == name, f"ping {name}: {pong}")
    print("ok: both routers answer ping")

    # 2. Writes through A, read through B.
    expected = {name: [] for name in LISTS}
    writes = [(name, f"2026-0{1 + k}-1{k}", f"{name} entry {k}") for name in LISTS
              for k in range(2)]
    replies = ra.pipeline([("add_entry", {"list": n, "date": d, "title": t})
                           for n, d, t in writes], timeout=10.0)
    for (name, date, title), reply in zip(writes, replies):
        check(reply.ok, f"add_entry {name} via ra: {reply.error}")
        expected[name].append({"id": reply.result["id"], "date": date, "title": title})
    read_all(rb, LISTS, expected, "rb")
    print(f"ok: {len(writes)} entries written through ra read back through rb")

    # 3. locate agrees and spreads.
    owners = {}
    for name in LISTS:
        a, b = ra.locate(name), rb.locate(name)
        check(a == b, f"locate {name}: ra says {a}, rb says {b}")
        owners[name] = a
    spread = {n: sum(1 for o in owners.values() if o == n) for n in NODES}
    check(set(owners.values()) == set(NODES), f"lists not spread over all nodes: {spread}")
    print(f"ok: locate agrees on both routers; lists per node: {spread}")

    victim_lists = [n for n in LISTS if owners[n] == VICTIM]
    other_lists = [n for n in LISTS if owners[n] != VICTIM]

    # 4. Cut the victim's cable.
    topo.cut(VICTIM)
    down = probe_until(routers, victim_lists[0], "unavailable", DOWN_LIMIT + 5.0,
                       healthy=(other_lists, expected))
    for router, seconds in sorted(down.items()):
        print(f"link-down -> unavailable: {seconds:.2f} s (via {router})")
    for router, seconds in down.items():
        check(seconds < DOWN_LIMIT,
              f"{router} took {seconds:.2f} s to answer unavailable (limit {DOWN_LIMIT:g} s)")
    for name in victim_lists:
        for router, client in routers.items():
            reply = client.collect([client.submit("entries", list=name)], timeout=3.0)[0]
            check(not reply.ok and reply.error.code == "unavailable",
                  f"entries {name} via {router} while {VICTIM} is cut: "
                  f"{reply.result or reply.error}")
    refused = ra.collect([ra.submit("add_entry", list=victim_lists[0], date="2026-05-05",
                                    title="refused while cut")], timeout=3.0)[0]
    check(not refused.ok and refused.error.code == "unavailable",
          f"add_entry to a cut node's list: {refused.result or refused.error}")
    for name in other_lists[:3]:  # the healthy nodes keep taking writes
        date, title = "2026-06-06", f"{name} written during the cut"
        expected[name].append({"id": rb.add_entry(name, date, title), "date": date,
                               "title": title})
    read_all(ra, other_lists, expected, "ra")
    read_all(rb, other_lists, expected, "rb")
    print(f"ok: {VICTIM}'s {len(victim_lists)} lists answer unavailable on both routers "
          f"(writes refused); the other {len(other_lists)} lists keep serving and taking writes")

    # 5. Heal.
    topo.heal(VICTIM)
    up = probe_until(routers, victim_lists[0], "ok", HEAL_LIMIT)
    for router, seconds in sorted(up.items()):
        print(f"link-up -> serving: {seconds:.2f} s (via {router})")
    read_all(ra, LISTS, expected, "ra")
    read_all(rb, LISTS, expected, "rb")
    date, title = "2026-07-07", "written after the heal"
    new_id = ra.add_entry(victim_lists[0], date, title)
    check(new_id == expected[victim_lists[0]][-1]["id"] + 1,
          f"id after the heal: {new_id} (the refused write must not have taken an id)")
    expected[victim_lists[0]].append({"id": new_id, "date": date, "title": title})
    read_all(rb, victim_lists, expected, "rb")
    print(f"ok: {VICTIM}'s lists serve again on both routers with every acknowledged entry "
          "and nothing else; they take writes again")
    for client in routers.values():
        client.close()
    return max(down.values()), max(up.values())


def main():
    if os.geteuid() != 0:
        skip("needs root to create network namespaces (ip netns add)")
    if shutil.which("ip") is None:
        skip("iproute2's `ip` not found (deploy/install-deps installs iproute2)")
    for binary in (NODE_BIN, ROUTER_BIN):
        if not os.access(binary, os.X_OK):
            print(f"FAIL: {binary} not built (build todo-node and todo-router, or set "
                  "TODO_BUILD_DIR)", flush=True)
            return 1

    # SIGTERM/SIGHUP (e.g. from ctest) unwind through the finally below.
    def on_signal(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    topo = Topology({**NODES, **ROUTERS, CLIENT: 30}, os.getpid())
    workdir = tempfile.mkdtemp(prefix="todo-multihost-")
    cluster = Cluster(topo, workdir)
    status, keep, context = 1, False, None
    try:
        try:
            topo.create()
        except TopologyError as error:
            if error.skippable:
                skip(f"cannot build the test hosts: {error}")
            raise
        print(f"hosts: namespaces todo-{{sw,{','.join(topo.hosts)}}}-{topo.suffix}, "
              f"bridge {topo.bridge}, addresses {topo.addr('n1')}.. (inside them only)")
        topo.enter(CLIENT)  # before any socket: everything below talks over the bridge
        import zmq  # pylint: disable=import-outside-toplevel
        from todo_client import TodoClient  # pylint: disable=import-outside-toplevel
        context = zmq.Context()

        def client_for(endpoint, timeout):
            return TodoClient(endpoint, timeout=timeout, retries=2, backoff=0.05,
                              context=context)

        cluster.start()
        wait_ready(cluster, client_for)
        wait_routed(cluster, client_for)
        print(f"ok: 3 nodes and 2 routers answer ping (data and logs in {workdir})")
        down_s, up_s = scenario(cluster, topo, client_for)
        print(f"the routers' view of {VICTIM}:")
        cluster.grep_logs(ROUTERS, f"'{VICTIM}'")
        check(not cluster.dead(), f"processes exited during the test: {cluster.dead()}")
        statuses = cluster.stop()
        check(all(s == 0 for s in statuses.values()), f"exit statuses on SIGTERM: {statuses}")
        print("ok: every process exited 0 on SIGTERM")
        print(f"PASS: link-down -> unavailable: {down_s:.2f} s, link-up -> serving: {up_s:.2f} s")
        status = 0
    except (Failure, TopologyError) as error:
        print(f"FAIL: {error}", flush=True)
        keep = True
    except Exception:  # pylint: disable=broad-except  # e.g. a TodoError: report, clean up
        print(f"FAIL: unexpected error:\n{traceback.format_exc()}", flush=True)
        keep = True
    finally:
        if keep:
            cluster.dump_logs()
        if context is not None:
            context.destroy(linger=0)
        cluster.stop(timeout=5.0)
        failures = topo.destroy()
        for failure in failures:
            print(f"cleanup: {failure}")
        if failures:
            status = 1
        if keep:
            print(f"kept {workdir} for inspection")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
