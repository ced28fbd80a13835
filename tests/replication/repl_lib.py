"""Shared pieces of the replicated-mode tests: a local etcd (one member or
three), a cluster of todo-node processes initialized with todo-admin, an
optional todo-router, a client that sends straight to each partition's
primary (from the `map` op), and a pipelined write load that records every
acknowledged write so that the tests can read them all back.

Every process is started by us and stopped by pid; every wait is bounded.
The binaries come from $TODO_BUILD_DIR (default <repo>/build); etcd from
Debian's etcd-server (/usr/bin/etcd).
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import msgpack
import zmq

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "stress"))
import stress_lib as sl  # noqa: E402  (Process, free_ports, wait_until)

REPO = sl.REPO
BUILD_DIR = sl.BUILD_DIR
NODE_BIN = sl.NODE_BIN
ROUTER_BIN = sl.ROUTER_BIN
ADMIN_BIN = os.path.join(BUILD_DIR, "router", "todo-admin")
ETCD_BIN = os.environ.get("TODO_ETCD_BIN", "/usr/bin/etcd")

MASK = (1 << 64) - 1


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & MASK
    return h


def mix64(x):
    x ^= x >> 30
    x = (x * 0xbf58476d1ce4e5b9) & MASK
    x ^= x >> 27
    x = (x * 0x94d049bb133111eb) & MASK
    x ^= x >> 31
    return x


def partition_of(name, partitions):
    """partition(list) = mix64(fnv1a64(list)) mod P (common/PROTOCOL.md)."""
    return mix64(fnv1a64(name.encode())) % partitions


def check_binaries():
    missing = [b for b in (NODE_BIN, ROUTER_BIN, ADMIN_BIN, ETCD_BIN) if not os.access(b, os.X_OK)]
    if missing:
        print("missing: " + ", ".join(missing) + " (build, and deploy/install-deps for etcd)")
        sys.exit(1)


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


class Etcd:
    """A local etcd of `members` members on loopback (free ports)."""

    def __init__(self, workdir, members=1, host="127.0.0.1"):
        self.workdir = workdir
        self.host = host
        self.members = []
        ports = sl.free_ports(2 * members)
        token = f"todo-test-{os.getpid()}-{random.randrange(1 << 30)}"
        names = [f"e{i}" for i in range(members)]
        peers = ",".join(f"{n}=http://{host}:{ports[2 * i + 1]}" for i, n in enumerate(names))
        # etcd's data on tmpfs where there is one: on a test machine with one
        # disk, etcd's WAL fsyncs queue behind the nodes' (a 1 GiB catch-up
        # made them take 0.7 s), and nodes lose their 2-s leases for that
        # alone; a real etcd has a disk of its own. TODO_TEST_ETCD_ON_DISK=1
        # keeps it in the workdir.
        self.shm_dir = None
        data_root = workdir
        if os.path.isdir("/dev/shm") and not os.environ.get("TODO_TEST_ETCD_ON_DISK"):
            self.shm_dir = tempfile.mkdtemp(prefix="todo-etcd-", dir="/dev/shm")
            data_root = self.shm_dir
        for i, name in enumerate(names):
            client, peer = ports[2 * i], ports[2 * i + 1]
            argv = [ETCD_BIN, "--name", name, "--data-dir", os.path.join(data_root, f"etcd-{name}"),
                    "--listen-client-urls", f"http://{host}:{client}",
                    "--advertise-client-urls", f"http://{host}:{client}",
                    "--listen-peer-urls", f"http://{host}:{peer}",
                    "--initial-advertise-peer-urls", f"http://{host}:{peer}",
                    "--initial-cluster", peers, "--initial-cluster-token", token,
                    "--initial-cluster-state", "new", "--log-level", "warn",
                    # A leader election must end well within a node's lease
                    # (2 s): with etcd's default 1 s election timeout an
                    # election takes up to 2 s. deploy/ runs etcd so too.
                    "--heartbeat-interval", "100", "--election-timeout", "500"]
            proc = sl.Process(name, argv, os.path.join(workdir, f"etcd-{name}.log"))
            self.members.append({"name": name, "client": client, "proc": proc})

    @property
    def endpoints(self):
        return ",".join(f"http://{self.host}:{m['client']}" for m in self.members
                        if m["proc"].alive())

    @property
    def all_endpoints(self):
        return ",".join(f"http://{self.host}:{m['client']}" for m in self.members)

    def healthy(self, m):
        try:
            with urllib.request.urlopen(f"http://{self.host}:{m['client']}/health",
                                        timeout=1) as r:
                return json.loads(r.read()).get("health") == "true"
        except Exception:  # noqa: BLE001  (not up yet)
            return False

    def start(self, timeout=30):
        for m in self.members:
            m["proc"].start()
        if not sl.wait_until(lambda: all(self.healthy(m) for m in self.members), timeout, 0.1):
            raise RuntimeError("etcd did not become healthy: " +
                               " | ".join(m["proc"].log()[-500:] for m in self.members))
        return self

    def kill(self, i):
        self.members[i]["proc"].kill9()

    def stop(self):
        for m in self.members:
            m["proc"].terminate(timeout=10)
        if self.shm_dir:
            shutil.rmtree(self.shm_dir, ignore_errors=True)
            self.shm_dir = None

    def get_raw(self, key):
        """A key's value (str), read through the JSON gateway; None if absent."""
        import base64
        body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
        m = [m for m in self.members if m["proc"].alive()][0]
        req = urllib.request.Request(f"http://{self.host}:{m['client']}/v3/kv/range", data=body,
                                     method="POST")
        with urllib.request.urlopen(req, timeout=3) as r:
            kvs = json.loads(r.read()).get("kvs", [])
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def put_raw(self, key, value):
        """Puts a key directly (tests of bad input) through the JSON gateway."""
        import base64
        body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                           "value": base64.b64encode(value.encode()).decode()}).encode()
        m = [m for m in self.members if m["proc"].alive()][0]
        req = urllib.request.Request(f"http://{self.host}:{m['client']}/v3/kv/put", data=body,
                                     method="POST")
        with urllib.request.urlopen(req, timeout=3) as r:
            return json.loads(r.read())


class Cluster:
    """`nodes` todo-node processes n1..nN in replicated mode, a cluster made
    with todo-admin init, and optionally a router."""

    def __init__(self, workdir, etcd, nodes=3, replicas=2, partitions=32, min_insync=1,
                 node_flags=(), router=False, host="127.0.0.1", cluster_name="todo",
                 router_flags=(), node_extra=None):
        self.workdir = workdir
        self.etcd = etcd
        self.replicas = replicas
        self.partitions = partitions
        self.min_insync = min_insync
        self.host = host
        self.cluster_name = cluster_name
        self.node_flags = list(node_flags)
        # name -> flags for that node alone (e.g. its own --curve-secret)
        self.node_extra = {n: list(f) for n, f in (node_extra or {}).items()}
        self.names = [f"n{i + 1}" for i in range(nodes)]
        ports = sl.free_ports(nodes + 1)
        self.ports = dict(zip(self.names, ports))
        self.router_port = ports[-1]
        self.procs = {}
        self.router = None
        self.want_router = router
        self.router_flags = list(router_flags)

    def endpoint(self, name):
        return f"tcp://{self.host}:{self.ports[name]}"

    def data_dir(self, name):
        return os.path.join(self.workdir, "data", name)

    def admin(self, *args, check=True, timeout=20):
        argv = [ADMIN_BIN, "--etcd", self.etcd.all_endpoints, "--cluster-name",
                self.cluster_name, *args]
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"todo-admin {' '.join(args)}: {done.returncode}: {done.stderr}")
        return done

    def init(self):
        self.admin("init", "--replicas", str(self.replicas), "--partitions",
                   str(self.partitions), "--min-insync", str(self.min_insync), *self.names)

    def node_argv(self, name, extra=()):
        return [NODE_BIN, "--name", name, "--listen", self.endpoint(name), "--data",
                self.data_dir(name), "--etcd", self.etcd.all_endpoints, "--cluster-name",
                self.cluster_name, *self.node_flags, *self.node_extra.get(name, ()), *extra]

    def start_node(self, name, extra=()):
        os.makedirs(self.data_dir(name), exist_ok=True)
        p = sl.Process(name, self.node_argv(name, extra),
                       os.path.join(self.workdir, f"{name}.log"))
        p.start()
        self.procs[name] = p
        return p

    def start(self, timeout=30):
        self.init()
        for n in self.names:
            self.start_node(n)
        if self.want_router:
            self.start_router()
        self.wait_in_sync(timeout)
        return self

    def start_router(self, extra=()):
        argv = [ROUTER_BIN, "--listen", f"tcp://{self.host}:{self.router_port}", "--etcd",
                self.etcd.all_endpoints, "--cluster-name", self.cluster_name, *self.router_flags,
                *extra]
        self.router = sl.Process("r1", argv, os.path.join(self.workdir, "r1.log")).start()
        return self.router

    @property
    def router_endpoint(self):
        return f"tcp://{self.host}:{self.router_port}"

    def wait_router_map(self, ctx, timeout=15):
        """Waits (bounded) until the router answers the `map` op; the map."""
        got = {}

        def ready():
            r = call(ctx, self.router_endpoint, {"op": "map"}, 1)
            if r and r.get("ok"):
                got["map"] = r["result"]
            return "map" in got

        assert sl.wait_until(ready, timeout, 0.2), "the router never had a map"
        return got["map"]

    def kill9(self, name):
        self.procs[name].kill9()

    def wipe(self, name):
        shutil.rmtree(self.data_dir(name), ignore_errors=True)

    def stop(self):
        if self.router:
            self.router.terminate(timeout=15)
        for p in self.procs.values():
            p.terminate(timeout=20)

    def status(self):
        done = self.admin("status", "--json", check=False, timeout=15)
        if done.returncode != 0:
            return None
        return json.loads(done.stdout)

    def log_lines(self, needles, lines=15):
        """For an assertion message: each node's last `lines` lines that
        contain any of `needles`."""
        out = []
        for name in self.names:
            path = os.path.join(self.workdir, f"{name}.log")
            try:
                with open(path, errors="replace") as fh:
                    hits = [ln.rstrip() for ln in fh if any(n in ln for n in needles)]
            except OSError:
                continue
            out.extend(f"  {ln}" for ln in hits[-lines:])
        return "\n".join(out)

    def unsettled_story(self, lines=12):
        """For an assertion message: the partitions not settled (fewer than R
        replicas in sync, or moving) and, from every node's log, the last
        lines about each, so a CI failure shows its cause in its first lines."""
        st = self.status()
        if st is None:
            return "(todo-admin status failed)"
        moving = {m["partition"] for m in st["moves"]["in_progress"]}
        bad = [p for p in st["partitions"]
               if len(p["replicas"]) != self.replicas or p["in_sync"] != p["replicas"]
               or p["partition"] in moving]
        out = [f"moves: {json.dumps(st['moves'])}", f"not in sync: {json.dumps(st['not_in_sync'])}"]
        for p in bad[:4]:
            out.append(json.dumps(p, sort_keys=True))
            out.append(self.log_lines((f"partition {p['partition']}:",), lines))
        return "\n".join(out)

    def in_sync(self, alive_only=True):
        """True if every partition has R replicas, all alive and in sync."""
        st = self.status()
        if st is None:
            return False
        alive = {m["name"] for m in st["members"] if m["alive"]}
        for p in st["partitions"]:
            if len(p["replicas"]) != self.replicas or p["in_sync"] != p["replicas"]:
                return False
            if alive_only and not set(p["replicas"]) <= alive:
                return False
        return True

    def wait_in_sync(self, timeout=60):
        if not sl.wait_until(self.in_sync, timeout, 0.25):
            raise AssertionError(f"the cluster did not get every replica in sync within "
                                 f"{timeout} s: {json.dumps(self.status())[:2000]}")

    def logs(self):
        return {n: p.log() for n, p in self.procs.items()}


class SmartClient:
    """Sends each request straight to its partition's primary, as Redis
    Cluster's and Kafka's clients do: the map comes from the `map` op of any
    node; "not primary", `unavailable` or a timeout refresh it."""

    def __init__(self, ctx, endpoints, partitions, router=None):
        self.ctx = ctx
        self.seed_endpoints = list(endpoints)
        self.partitions = partitions
        self.router = router  # if set, every request goes there (a simple client)
        self.socks = {}     # endpoint -> DEALER
        self.nodes = {}     # name -> endpoint
        self.primary = []   # partition -> name
        self.map_at = 0.0
        self.map_from = None  # the endpoint that answered the last map

    def sock(self, endpoint):
        s = self.socks.get(endpoint)
        if s is None:
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(endpoint)
            self.socks[endpoint] = s
        return s

    def refresh(self, timeout=0.5):
        """Asks nodes for the map until one answers; True if one did."""
        if time.monotonic() - self.map_at < 0.1:
            return bool(self.primary)
        self.map_at = time.monotonic()
        # The endpoint that answered last first: a dead node (still in the
        # map's node list) costs a whole timeout each time it is tried.
        order = list(self.nodes.values()) + self.seed_endpoints
        if self.map_from in order:
            order.remove(self.map_from)
            order.insert(0, self.map_from)
        for ep in order:
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            try:
                s.connect(ep)
                s.send(sl.pack({"op": "map"}))
                if s.poll(int(timeout * 1000)):
                    r = msgpack.unpackb(s.recv(), raw=False)
                    if r.get("ok"):
                        res = r["result"]
                        self.nodes = dict(res["nodes"])
                        self.primary = [p[0] for p in res["parts"]]
                        self.map_from = ep
                        return True
            finally:
                s.close()
        return False

    def endpoint_for(self, list_name):
        if self.router:
            return self.router
        if not self.primary:
            self.refresh()
        if not self.primary:
            return None
        p = partition_of(list_name, self.partitions)
        return self.nodes.get(self.primary[p])

    def call(self, request, timeout=3.0, tries=20):
        """One request, retried (map refreshed) on not primary / unavailable /
        timeout, up to `tries` times. Reads only: a write retried here could
        apply twice."""
        last = None
        for _ in range(tries):
            ep = self.endpoint_for(request["list"]) if "list" in request else self.seed_endpoints[0]
            if ep is None:
                time.sleep(0.1)
                self.refresh()
                continue
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            try:
                s.connect(ep)
                s.send(sl.pack(request))
                if s.poll(int(timeout * 1000)):
                    last = msgpack.unpackb(s.recv(), raw=False)
                    code = None if last.get("ok") else last["error"]["code"]
                    if code not in ("unavailable", "timeout", "overloaded"):
                        return last
            finally:
                s.close()
            time.sleep(0.1)
            self.map_at = 0
            self.refresh()
        return last

    def close(self):
        for s in self.socks.values():
            s.close()
        self.socks.clear()


class WriteLoad(threading.Thread):
    """A pipelined add_entry load over `lists` lists (one write in flight per
    list, `window` in all), straight to the primaries. Every acknowledged
    write is recorded as (id, k) under its list, k being the list's own send
    counter carried in the title, so that read-back checks content, ids and
    per-list order."""

    def __init__(self, ctx, endpoints, partitions, lists=200, window=64, prefix="l",
                 deadline=3.0, router=None):
        super().__init__(daemon=True)
        self.client = SmartClient(ctx, endpoints, partitions, router=router)
        self.lists = [f"{prefix}{i}" for i in range(lists)]
        self.window = window
        self.deadline = deadline
        self.acked = {name: [] for name in self.lists}   # name -> [(id, k, t)]
        # Writes answered with an error that means "not applied": they must
        # never show up in a list.
        self.refused = {name: set() for name in self.lists}
        self.sent = {name: 0 for name in self.lists}
        self.errors = {}
        self.stop_event = threading.Event()
        self.failure = None
        self.first_ok_after = {}  # set by tests: t -> lists acked after it
        self.lock = threading.Lock()
        self.partitions = partitions

    def title(self, name, k):
        return f"{name}:{k}"

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001  (reported by the test)
            self.failure = repr(e)

    def _run(self):
        c = self.client
        c.refresh()
        poller = zmq.Poller()
        polled = set()
        outstanding = {}   # req id -> (name, k, t, endpoint)
        stale = False      # an error said the map may have changed
        busy = set()
        next_id = 1
        free = list(self.lists)
        random.shuffle(free)
        while not self.stop_event.is_set():
            now = time.monotonic()
            while len(outstanding) < self.window and free:
                name = free.pop()
                ep = c.endpoint_for(name)
                if ep is None:
                    free.append(name)
                    c.refresh()
                    break
                k = self.sent[name]
                self.sent[name] += 1
                s = c.sock(ep)
                if s not in polled:
                    poller.register(s, zmq.POLLIN)
                    polled.add(s)
                s.send(sl.pack({"op": "add_entry", "id": next_id, "list": name,
                                "date": "2026-12-19", "title": self.title(name, k)}))
                outstanding[next_id] = (name, k, now, ep)
                busy.add(name)
                next_id += 1
            for s, _ in poller.poll(20):
                while True:
                    try:
                        body = s.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    r = msgpack.unpackb(body, raw=False)
                    entry = outstanding.pop(r.get("id"), None)
                    if entry is None:
                        continue  # timed out already (client side)
                    name, k, t, ep = entry
                    busy.discard(name)
                    free.insert(0, name)
                    if r.get("ok"):
                        with self.lock:
                            self.acked[name].append((r["result"]["id"], k, time.monotonic()))
                    else:
                        code = r["error"]["code"]
                        with self.lock:
                            self.errors[code] = self.errors.get(code, 0) + 1
                            if code in ("unavailable", "overloaded", "bad_request"):
                                self.refused[name].add(k)
                        if code in ("unavailable", "timeout"):
                            stale = True
            # A request waiting long: the map may have changed (a primary
            # died; its requests sit in a queue to nobody).
            now = time.monotonic()
            if outstanding and now - min(e[2] for e in outstanding.values()) > 0.25:
                c.refresh(timeout=0.2)
            # Client-side deadline: outcome unknown, the list is free again.
            for rid in [i for i, e in outstanding.items() if now - e[2] > self.deadline]:
                name, k, t, ep = outstanding.pop(rid)
                busy.discard(name)
                free.insert(0, name)
                with self.lock:
                    self.errors["client_timeout"] = self.errors.get("client_timeout", 0) + 1
                stale = True
            # One refresh for all the errors of this turn: one per error (32
            # requests to a dead node answered at once) kept this thread
            # from reading answers, and so from timing acks, for seconds.
            if stale:
                stale = False
                c.map_at = 0
                c.refresh(timeout=0.2)

    def stop(self, timeout=20):
        self.stop_event.set()
        self.join(timeout)

    def acked_count(self):
        with self.lock:
            return sum(len(v) for v in self.acked.values())

    def first_acks_after(self, t0, lists):
        """For each list, the time of its first ack after t0 (None if none)."""
        # Acks are appended in the order the load thread takes them, so
        # their times only grow: walk back from the newest, never over the
        # whole history (a scan of every ack, every 20 ms while a caller
        # waits, held the lock long enough to delay the load's own acks, and
        # more so with each kill as the history grew).
        with self.lock:
            out = {}
            for name in lists:
                first = None
                for (_, _, t) in reversed(self.acked[name]):
                    if t < t0:
                        break
                    first = t
                out[name] = first
            return out


def call(ctx, endpoint, req, timeout=5.0):
    """One request on a fresh DEALER; the decoded reply, or None after
    `timeout` seconds."""
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


def call_until_ok(ctx, endpoint, req, deadline_s=30.0):
    """Sends `req` (same rid every time) until an answer other than
    timeout/unavailable/overloaded, with back-off, as the spec's clients do;
    the answer. AssertionError after `deadline_s`."""
    end = time.monotonic() + deadline_s
    pause = 0.05
    last = None
    while time.monotonic() < end:
        last = call(ctx, endpoint, req, timeout=3.0)
        if last is not None:
            code = None if last.get("ok") else last["error"]["code"]
            if code not in ("timeout", "unavailable", "overloaded"):
                return last
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
    raise AssertionError(f"{req} never answered within {deadline_s} s: last {last}")


def verify(client, load, context=""):
    """Reads every list back from its primary and checks every acknowledged
    write: there, with its title, ids unique, acked ones in send order.
    Returns the number of entries checked; raises AssertionError."""
    checked = 0
    for name in load.lists:
        r = client.call({"op": "entries", "list": name}, timeout=3.0, tries=40)
        assert r is not None and r.get("ok"), f"{context}reading {name}: {r}"
        entries = r["result"]
        ids = [e["id"] for e in entries]
        assert len(ids) == len(set(ids)), f"{context}{name}: duplicate ids {ids}"
        by_id = {e["id"]: e["title"] for e in entries}
        acked = sorted(load.acked[name])
        for (eid, k, _) in acked:
            want = load.title(name, k)
            assert eid in by_id, f"{context}{name}: acknowledged entry {eid} ({want}) LOST"
            assert by_id[eid] == want, (f"{context}{name}: entry {eid} is {by_id[eid]!r}, "
                                        f"acknowledged as {want!r}")
            checked += 1
        ks = [k for (_, k, _) in acked]
        assert ks == sorted(ks), f"{context}{name}: acknowledged writes out of order: {acked}"
        # Everything in the list is something this load sent (no other data),
        # and nothing it was told was not applied.
        for e in entries:
            assert e["title"].startswith(name + ":"), f"{context}{name}: stray entry {e}"
            k = int(e["title"].split(":")[-1])
            assert k not in load.refused[name], (f"{context}{name}: entry {e} was answered "
                                                 f"'not applied' (unavailable/overloaded) but is there")
    return checked


class Workdir:
    """A temporary directory, kept (and named) if the test fails."""

    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix=f"todo-{name}-")

    def cleanup(self, ok):
        if ok and not os.environ.get("TODO_KEEP_TEST_DIRS"):
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            print(f"test files kept in {self.path}")


def run_test(name, fn, **cluster_args):
    """Runs fn(workdir) with cleanup, printing logs on failure; exit status."""
    wd = Workdir(name)
    ok = False
    try:
        fn(wd.path)
        ok = True
    except AssertionError as e:
        print(f"FAILED: {e}")
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        print(f"ERROR: {e!r}")
    finally:
        if not ok:
            for f in sorted(os.listdir(wd.path)):
                if f.endswith(".log"):
                    with open(os.path.join(wd.path, f), errors="replace") as fh:
                        text = fh.read()
                    print(f"---- {f} (last 4000 bytes)\n{text[-4000:]}")
        wd.cleanup(ok)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1
