"""A local cluster with the HTTP front end, for the HTTP tests.

HttpCluster starts 2 nodes and a router with deploy/cluster (so the router
runs with --http on base+80 and node nI with --metrics on base+90+I) in a
temporary TODO_RUN_DIR, on a base port whose every port is free. Every wait
is bounded; stop() resumes (SIGCONT) and stops every process by the pid in
its pid file, SIGKILLing any that survive, also after a failed test.
"""

import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
CLUSTER = os.path.join(REPO, "deploy", "cluster")
TODO = os.path.join(REPO, "deploy", "todo")
BUILD_DIR = os.path.abspath(os.environ.get("TODO_BUILD_DIR", os.path.join(REPO, "build")))
NODE_BIN = os.path.join(BUILD_DIR, "node", "todo-node")
ROUTER_BIN = os.path.join(BUILD_DIR, "router", "todo-router")
CMD_TIMEOUT = 90  # seconds; bounds every deploy/cluster command


def binaries_missing():
    """A message naming the missing binaries, or None if both exist."""
    missing = [b for b in (NODE_BIN, ROUTER_BIN) if not os.access(b, os.X_OK)]
    if missing:
        return "binaries not built: " + ", ".join(missing)
    return None


def wait_until(predicate, timeout=10.0, interval=0.05):
    """Polls predicate() until it is truthy or `timeout` s pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class HttpCluster:
    """deploy/cluster with `nodes` nodes; HTTP on self.http_port."""

    def __init__(self, nodes=2, node_flags="--no-sync", router_flags=""):
        self.nodes = nodes
        self.node_flags = node_flags
        self.router_flags = router_flags
        self.run_dir = tempfile.mkdtemp(prefix="todo-http-test-")
        self.base = self._pick_base()
        self.http_port = self.base + 80
        self.endpoint = f"tcp://127.0.0.1:{self.base}"
        self._pids = set()

    def _ports(self, base):
        return ([base + i for i in range(self.nodes + 1)] + [base + 80] +
                [base + 90 + i for i in range(1, self.nodes + 1)])

    def _pick_base(self):
        for _ in range(100):
            base = random.randrange(20000, 50000, 100)
            if all(_port_free(p) for p in self._ports(base)):
                return base
        raise RuntimeError("no free port range found")

    def env(self, router_flags=None):
        return dict(os.environ, TODO_RUN_DIR=self.run_dir, TODO_BASE_PORT=str(self.base),
                    TODO_BUILD_DIR=BUILD_DIR, TODO_NODE_FLAGS=self.node_flags,
                    TODO_ROUTER_FLAGS=self.router_flags if router_flags is None else router_flags)

    def _run(self, *args, router_flags=None):
        proc = subprocess.run([CLUSTER, *args], env=self.env(router_flags), capture_output=True,
                              text=True, timeout=CMD_TIMEOUT, check=False)
        self._remember_pids()
        if proc.returncode != 0:
            raise RuntimeError(f"deploy/cluster {' '.join(args)} failed ({proc.returncode}):\n"
                               f"{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def _remember_pids(self):
        pid_dir = os.path.join(self.run_dir, "pids")
        if os.path.isdir(pid_dir):
            for name in os.listdir(pid_dir):
                pid = self.pid(name[:-len(".pid")])
                if pid:
                    self._pids.add(pid)

    def start(self):
        # The static mode: these tests pin its behaviour (the replicated
        # mode has its own, tests/replication/).
        self._run("up", "-n", str(self.nodes), "--static", "--no-demo")
        self.wait_http_ready()

    def wait_http_ready(self, timeout=20):
        def ready():
            try:
                return self.request("GET", "/health", timeout=2)[0] == 200
            except OSError:
                return False
        if not wait_until(ready, timeout=timeout):
            raise RuntimeError(f"router HTTP on port {self.http_port} not ready in {timeout}s")

    def restart(self, name, router_flags=None):
        """Restarts a process (router flags may change); waits until it serves."""
        self._run("restart-node", name, router_flags=router_flags)
        if name == "r1":
            self.wait_http_ready()

    def pid(self, name):
        try:
            with open(os.path.join(self.run_dir, "pids", f"{name}.pid"), encoding="ascii") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def metrics_port(self, node_index):
        return self.base + 90 + node_index

    def log(self, name):
        try:
            with open(os.path.join(self.run_dir, "logs", f"{name}.log"), encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        self._remember_pids()
        for pid in self._pids:
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
        try:
            subprocess.run([CLUSTER, "down"], env=self.env(), capture_output=True,
                           timeout=CMD_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            pass
        for pid in self._pids:
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                wait_until(lambda p=pid: not _alive(p), timeout=5)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def request(self, method, path, body=None, headers=None, port=None, timeout=10):
        """One request on a fresh connection: (status, {lower-case header: value}, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", port or self.http_port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()
