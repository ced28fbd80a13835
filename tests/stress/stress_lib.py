"""Shared pieces of the stress tests: finding the binaries, starting and
stopping todo-node and todo-router on loopback (always by pid, every wait
bounded), reading a process's RSS, and a pipelining DEALER client.

The binaries are looked up in $TODO_BUILD_DIR (default <repo>/build).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import msgpack
import zmq

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
BUILD_DIR = os.path.abspath(os.environ.get("TODO_BUILD_DIR", os.path.join(REPO, "build")))
NODE_BIN = os.path.join(BUILD_DIR, "node", "todo-node")
ROUTER_BIN = os.path.join(BUILD_DIR, "router", "todo-router")
SKIP = 77  # ctest's SKIP_RETURN_CODE


def missing_binaries():
    """A message naming the binaries that are not built, or None."""
    missing = [b for b in (NODE_BIN, ROUTER_BIN) if not os.access(b, os.X_OK)]
    if missing:
        return "not built: " + ", ".join(missing) + " (set TODO_BUILD_DIR)"
    return None


def free_ports(n):
    """n distinct loopback TCP ports that were free a moment ago."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def wait_until(predicate, timeout, interval=0.02):
    """Polls predicate() until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(body):
    return msgpack.unpackb(body, raw=False)


def rss_kib(pid):
    """VmRSS of a process in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """Samples the VmRSS of some pids every `interval` s on a thread; keeps
    the peak of each."""

    def __init__(self, pids, interval=0.05):
        self.peak = {pid: 0 for pid in pids}
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            for pid in self.peak:
                self.peak[pid] = max(self.peak[pid], rss_kib(pid))
            self._stop.wait(self._interval)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


class Process:
    """A todo-node or todo-router we started: stderr goes to a log file."""

    def __init__(self, name, argv, log_path):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        log.write(f"==== start: {' '.join(self.argv)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill9(self):
        """kill -9 and reap (bounded)."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def terminate(self, timeout=20):
        """SIGTERM, wait for the exit (kill -9 after `timeout`); the status."""
        if self.proc is None:
            return None
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            return None


def node_argv(name, port, data, *extra):
    return [NODE_BIN, "--name", name, "--listen", f"tcp://127.0.0.1:{port}", "--data", data,
            *extra]


def router_argv(port, nodes, *extra):
    """nodes: [(name, port)]."""
    argv = [ROUTER_BIN, "--listen", f"tcp://127.0.0.1:{port}"]
    for name, p in nodes:
        argv += ["--node", f"{name}=tcp://127.0.0.1:{p}"]
    return argv + list(extra)


def ping(ctx, port, timeout=1.0):
    """The ping result from the server on `port`, or None within `timeout` s."""
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    try:
        s.connect(f"tcp://127.0.0.1:{port}")
        s.send(pack({"op": "ping", "id": 1}))
        if s.poll(int(timeout * 1000)):
            reply = unpack(s.recv())
            if reply.get("ok"):
                return reply["result"]
        return None
    finally:
        s.close()


def wait_serving(ctx, port, proc, timeout=20.0):
    """Until the server on `port` answers ping; False if it died or timed out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            return False
        if ping(ctx, port, timeout=0.3) is not None:
            return True
    return False


class Client:
    """A DEALER that pipelines requests: each gets a fresh uint id, and replies
    are matched by id. Replies never arrive for an id twice unless the server
    sends two (counted in `duplicates`)."""

    def __init__(self, ctx, port, rcvhwm=0, sndhwm=0):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self.sock.setsockopt(zmq.SNDHWM, sndhwm)
        self.sock.connect(f"tcp://127.0.0.1:{port}")
        self.next_id = 1
        self.answered = set()
        self.duplicates = 0
        self.unknown_ids = 0

    def send(self, request):
        """Sends request (a dict without id); returns the id it got."""
        rid = self.next_id
        self.next_id += 1
        request["id"] = rid
        self.sock.send(pack(request))
        return rid

    def recv_all(self, timeout_ms):
        """Replies available within timeout_ms (waits for the first only):
        a list of decoded reply maps, each for an id not answered before."""
        out = []
        if not self.sock.poll(timeout_ms):
            return out
        while True:
            try:
                body = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return out
            reply = unpack(body)
            rid = reply.get("id")
            if not isinstance(rid, int) or rid <= 0 or rid >= self.next_id:
                self.unknown_ids += 1
                continue
            if rid in self.answered:
                self.duplicates += 1
                continue
            self.answered.add(rid)
            out.append(reply)

    def call(self, request, timeout=5.0):
        """One request, waiting for its reply; None if none within timeout."""
        rid = self.send(request)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            for r in self.recv_all(int(left * 1000) + 1):
                if r["id"] == rid:
                    return r

    def close(self):
        self.sock.close()


def error_code(reply):
    """'ok' or the reply's error code."""
    if reply.get("ok"):
        return "ok"
    return reply.get("error", {}).get("code", "?")


STOPPED_RE = re.compile(
    r"stopped: (\d+) requests, (\d+) bad, (\d+) overloaded, (\d+) replies, (\d+) dropped")


def node_exit_counters(log):
    """The counters of a node's last 'stopped:' log line, or None."""
    found = STOPPED_RE.findall(log)
    if not found:
        return None
    keys = ("requests", "bad", "overloaded", "replies", "dropped")
    return dict(zip(keys, map(int, found[-1])))


class Checks:
    """Collects a script's results; each check prints one line, and
    report() prints the failures and cleans up the work dir."""

    def __init__(self):
        self.failures = []

    def check(self, ok, what, detail=""):
        print(f"  {'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)
        if not ok:
            self.failures.append(f"{what}: {detail}")
        return ok

    def report(self, work, keep, t0):
        """Prints the outcome, removes `work` unless something failed or
        `keep`; the script's exit status."""
        print(f"{len(self.failures)} failed checks ({time.monotonic() - t0:.0f} s)")
        for f in self.failures:
            print("  FAILED: " + f)
        if self.failures or keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        return 1 if self.failures else 0
