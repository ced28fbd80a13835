"""A throwaway local etcd cluster for Python tests (the twin of
tests/integration/etcd_fixture.h).

    from etcd_cluster import EtcdCluster
    with EtcdCluster(members=3) as etcd:      # started and healthy, or raises
        etcd.endpoints                        # ["http://127.0.0.1:PORT", ...]
        etcd.flag                             # "http://...,http://..." for --etcd
        etcd.kill(0); etcd.restart(0)         # kill -9, start again on its data
        etcd.wait_healthy([1, 2])             # a leader again (after losing it)
        etcd.pause(1); etcd.resume(1)         # SIGSTOP / SIGCONT
        etcd.put("k", "v"); etcd.get("k")     # through the JSON gateway

Members run /usr/bin/etcd (Debian's etcd-server; $TODO_ETCD_BIN overrides) on
127.0.0.1 with free random ports, their data and logs in a temporary
directory. Every wait is bounded; stop() (and leaving the `with`) kills every
member by its pid (SIGCONT, SIGKILL, reaped) and removes the directory
(kept if TODO_KEEP_TEMP=1).
"""

import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ETCD_BIN = os.environ.get("TODO_ETCD_BIN") or "/usr/bin/etcd"


def _free_port(taken):
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


class EtcdError(Exception):
    pass


class EtcdCluster:
    def __init__(self, members=1, heartbeat_ms=100, election_ms=1000, extra_flags=()):
        self.size = members
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.extra_flags = list(extra_flags)
        self.dir = None
        self.token = f"todo-py-{os.getpid()}-{random.getrandbits(32)}"
        self.procs = [None] * members
        self.logs = [None] * members
        self.client_urls = []
        self.peer_urls = []

    # --- lifecycle -----------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=30.0):
        """Starts every member; returns once all are healthy or raises EtcdError
        (with the logs' tails). Tries new ports (3 times) if a port was taken."""
        if not os.access(ETCD_BIN, os.X_OK):
            raise EtcdError(f"{ETCD_BIN} not found: install etcd-server (deploy/install-deps)")
        self.dir = tempfile.mkdtemp(prefix="todo-etcd-")
        why = ""
        for _ in range(3):
            taken = set()
            self.client_urls = [f"http://127.0.0.1:{_free_port(taken)}" for _ in range(self.size)]
            self.peer_urls = [f"http://127.0.0.1:{_free_port(taken)}" for _ in range(self.size)]
            for i in range(self.size):
                self._launch(i)
            if self.wait_healthy(timeout=timeout):
                return self
            why = self.log_tails()
            clash = any("address already in use" in self.log(i) for i in range(self.size))
            self._kill_all()
            if not clash:
                break
            for i in range(self.size):
                shutil.rmtree(self._data(i), ignore_errors=True)
        self.stop()
        raise EtcdError(f"etcd cluster of {self.size} not healthy within {timeout} s\n{why}")

    def stop(self):
        """Kills every member by pid and removes the data (idempotent)."""
        self._kill_all()
        if self.dir and os.environ.get("TODO_KEEP_TEMP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    # --- members -----------------------------------------------------------------

    @property
    def endpoints(self):
        return list(self.client_urls)

    @property
    def flag(self):
        """The endpoints as one --etcd value."""
        return ",".join(self.client_urls)

    def pid(self, i):
        p = self.procs[i]
        return p.pid if p is not None and p.poll() is None else None

    def kill(self, i):
        """kill -9 member i and reap it."""
        p = self.procs[i]
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
            p.wait(timeout=10)

    def terminate(self, i, timeout=10.0):
        """SIGTERM member i; SIGKILL if it has not exited within `timeout` s."""
        p = self.procs[i]
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.terminate()
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)

    def pause(self, i):
        os.kill(self.procs[i].pid, signal.SIGSTOP)

    def resume(self, i):
        os.kill(self.procs[i].pid, signal.SIGCONT)

    def restart(self, i, timeout=20.0):
        """Starts member i again on its data dir and ports; waits until healthy."""
        if self.pid(i) is not None:
            raise EtcdError(f"member e{i} is still running")
        self._launch(i)
        if not self.wait_healthy([i], timeout):
            raise EtcdError(f"e{i} not healthy {timeout} s after a restart\n{self.log_tails()}")

    def healthy(self, i, timeout=0.5):
        try:
            with urllib.request.urlopen(self.client_urls[i] + "/health", timeout=timeout) as r:
                return json.load(r).get("health") == "true"
        except (OSError, ValueError):
            return False

    def wait_healthy(self, members=None, timeout=30.0):
        """True once every member in `members` (default: all running) is healthy."""
        deadline = time.monotonic() + timeout
        for i in members if members is not None else range(self.size):
            while not self.healthy(i):
                if self.pid(i) is None or time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
        return True

    def log(self, i):
        try:
            with open(self.logs[i], encoding="utf-8", errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def log_tails(self, lines=20):
        return "\n".join(f"--- e{i}:\n" + "\n".join(self.log(i).splitlines()[-lines:])
                         for i in range(self.size))

    # --- a little of the v3 JSON gateway (keys and values are str) ------------------

    def call(self, path, body, member=None, timeout=5.0):
        """POSTs `body` (a dict) to /v3/`path` on `member` (default: the first
        running one); returns the answer's JSON or raises EtcdError."""
        i = member if member is not None else next(
            (m for m in range(self.size) if self.pid(m) is not None), 0)
        req = urllib.request.Request(self.client_urls[i] + "/v3/" + path,
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise EtcdError(f"{path}: HTTP {e.code}: {e.read()[:200]!r}") from e
        except OSError as e:
            raise EtcdError(f"{path} at {self.client_urls[i]}: {e}") from e

    def put(self, key, value, member=None):
        return int(self.call("kv/put", {"key": _b64(key), "value": _b64(value)}, member)
                   ["header"]["revision"])

    def get(self, key, member=None):
        """The value of `key`, or None."""
        kvs = self.call("kv/range", {"key": _b64(key)}, member).get("kvs", [])
        return base64.b64decode(kvs[0].get("value", "")).decode() if kvs else None

    # --- internals -------------------------------------------------------------------

    def _data(self, i):
        return os.path.join(self.dir, f"e{i}")

    def _launch(self, i):
        initial = ",".join(f"e{j}={self.peer_urls[j]}" for j in range(self.size))
        args = [ETCD_BIN, "--name", f"e{i}", "--data-dir", self._data(i),
                "--listen-client-urls", self.client_urls[i],
                "--advertise-client-urls", self.client_urls[i],
                "--listen-peer-urls", self.peer_urls[i],
                "--initial-advertise-peer-urls", self.peer_urls[i],
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", self.token,
                "--heartbeat-interval", str(self.heartbeat_ms),
                "--election-timeout", str(self.election_ms),
                "--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
                *self.extra_flags]
        self.logs[i] = os.path.join(self.dir, f"e{i}.log")
        with open(self.logs[i], "ab") as log:
            self.procs[i] = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT)

    def _kill_all(self):
        for i in range(self.size):
            self.kill(i)


def _b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()
