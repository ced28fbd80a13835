#!/usr/bin/python3
"""Functional tests of todo-bench's Redis backend (never of its speed), against
a real redis-server on loopback (exit 77, skipped, if there is none).

- the data a run leaves: every list's ids are 1..n with n its counter (ids
  increase one by one per list), and each value is "YYYY-MM-DD<TAB>title";
- a full mix fails only with not_found (an update of a deleted id), like a
  node; an update-only run on preloaded lists never fails;
- the same preload on a todo-node and on Redis stores the same entries
  (skipped without $TODO_NODE_BIN);
- --touch-lists reads every list once and stores nothing;
- flags: a non-tcp endpoint exits 2; no server exits 1 naming Redis.

$TODO_BENCH_BIN names the bench (ctest sets it). Every wait is bounded and
every process started is stopped by pid.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack
import zmq

BENCH_BIN = os.environ.get("TODO_BENCH_BIN", "")
NODE_BIN = os.environ.get("TODO_NODE_BIN", "")
REDIS_BIN = shutil.which("redis-server") or ""
RUN_TIMEOUT = 60  # seconds; bounds every bench run
VALUE = re.compile(r"^2026-\d\d-\d\d\t[a-z0-9 ]{24}$")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_bench(*args, timeout=RUN_TIMEOUT):
    return subprocess.run([BENCH_BIN, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


class Resp:
    """A minimal blocking RESP2 client: enough for GET, HGETALL, KEYS, DBSIZE."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def close(self):
        self.file.close()
        self.sock.close()

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._read()

    def _read(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.file.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            return [self._read() for _ in range(int(rest))]
        raise RuntimeError("bad RESP line %r" % line)

    def hash(self, key):
        flat = self.call("HGETALL", key)
        return dict(zip(flat[0::2], flat[1::2]))


class RedisServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="todo-bench-redis-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "redis.log"), "w")
        self.proc = subprocess.Popen(
            [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                c = Resp(self.port)
                try:
                    if c.call("PING") == "PONG":
                        return
                finally:
                    c.close()
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    @property
    def endpoint(self):
        return "tcp://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class FlagsTest(unittest.TestCase):
    def test_redis_needs_a_tcp_endpoint(self):
        for endpoint in ("ipc:///tmp/x", "tcp://127.0.0.1", "tcp://127.0.0.1:0"):
            r = run_bench("--backend", "redis", "--endpoint", endpoint)
            self.assertEqual(r.returncode, 2, endpoint)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn("tcp://HOST:PORT", r.stderr)
        r = run_bench("--backend", "memcached")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--backend", r.stderr)

    def test_no_redis_exits_1_in_bounded_time(self):
        port = free_port()
        start = time.monotonic()
        r = run_bench("--backend", "redis", "--endpoint", "tcp://127.0.0.1:%d" % port,
                      "--connect-timeout", "1")
        self.assertEqual(r.returncode, 1)
        self.assertLess(time.monotonic() - start, 20)
        self.assertIn("could not connect to Redis at 127.0.0.1:%d" % port, r.stderr)
        self.assertEqual(r.stdout, "")


class RedisTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.client = Resp(cls.redis.port)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.redis.stop()

    def bench(self, *extra):
        r = run_bench("--backend", "redis", "--endpoint", self.redis.endpoint, "--json", *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def check_list(self, name):
        """Checks one list's keys; returns (counter, {id: value})."""
        counter = int(self.client.call("GET", "n:" + name) or 0)
        entries = {int(k): v for k, v in self.client.hash("e:" + name).items()}
        self.assertLessEqual(set(entries), set(range(1, counter + 1)), name)
        for v in entries.values():
            self.assertRegex(v, VALUE)
        return counter, entries

    def test_adds_number_each_list_from_1(self):
        d = self.bench("--mix", "add=1", "--lists", "20", "--list-prefix", "add-", "--preload",
                       "5", "--connections", "4", "--window", "8", "--duration", "0.5",
                       "--warmup", "0.1")
        self.assertEqual(d["backend"], "redis")
        self.assertEqual(d["preload_ok"], 100)
        self.assertEqual(d["errors"], {})
        self.assertGreater(d["ok"], 0)
        total = 0
        for i in range(20):
            counter, entries = self.check_list("add-%d" % i)
            # No delete in the mix: the ids are exactly 1..counter.
            self.assertEqual(sorted(entries), list(range(1, counter + 1)))
            self.assertGreaterEqual(counter, 5)
            total += counter
        # Adds answered after the window (the drain) are stored, not counted.
        counted = d["preload_ok"] + d["warmup_ok"] + d["ok"]
        self.assertGreaterEqual(total, counted)
        self.assertLessEqual(total, counted + 4 * 8)

    def test_full_mix_fails_only_with_not_found(self):
        d = self.bench("--mix", "add=3,entries=2,entries_all=1,update=2,delete=1", "--lists",
                       "50", "--list-prefix", "mix-", "--preload", "2", "--duration", "0.5",
                       "--warmup", "0.1")
        self.assertEqual(set(d["ops"]), {"add", "entries", "entries_all", "update", "delete"})
        for op in d["ops"].values():
            self.assertGreater(op["ok"], 0)
        self.assertLessEqual(set(d["errors"]), {"not_found"})
        self.assertLessEqual(set(d["ops"]["update"]["errors"]), {"not_found"})
        self.assertEqual(d["unanswered_at_exit"], 0)
        self.assertEqual(d["stray_replies"], 0)
        for i in range(50):
            self.check_list("mix-%d" % i)

    def test_updates_of_existing_ids_succeed(self):
        d = self.bench("--mix", "update=1", "--lists", "10", "--list-prefix", "upd-",
                       "--preload", "3", "--duration", "0.3", "--warmup", "0")
        self.assertGreater(d["ok"], 0)
        self.assertEqual(d["errors"], {})
        for i in range(10):
            counter, entries = self.check_list("upd-%d" % i)
            self.assertEqual((counter, sorted(entries)), (3, [1, 2, 3]))

    def test_touch_lists_reads_every_list_and_stores_nothing(self):
        before = self.client.call("DBSIZE")
        r = run_bench("--backend", "redis", "--endpoint", self.redis.endpoint, "--touch-lists",
                      "--lists", "300", "--list-prefix", "touch-")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"touched 300 lists in [\d.]+ s: 300 ok, 0 failed\n$")
        self.assertEqual(self.client.call("DBSIZE"), before)

    @unittest.skipUnless(NODE_BIN and os.access(NODE_BIN, os.X_OK), "todo-node not built")
    def test_same_preload_stores_the_same_entries_as_a_node(self):
        tmp = tempfile.mkdtemp(prefix="todo-bench-redis-node-")
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        log = open(os.path.join(tmp, "node.log"), "w+")
        node = subprocess.Popen([NODE_BIN, "--name", "n1", "--listen", endpoint, "--data",
                                 os.path.join(tmp, "data"), "--no-sync"], stderr=log)
        ctx = zmq.Context()
        try:
            args = ("--mix", "entries_all=1", "--lists", "12", "--list-prefix", "same-",
                    "--preload", "7", "--duration", "0.2", "--warmup", "0", "--json")
            on_node = run_bench("--endpoint", endpoint, *args)
            self.assertEqual(on_node.returncode, 0, on_node.stderr)
            self.bench(*args)
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(endpoint)
            for i in range(12):
                name = "same-%d" % i
                s.send(msgpack.packb({"op": "entries", "id": i, "list": name}))
                self.assertTrue(s.poll(10000), "no reply")
                reply = msgpack.unpackb(s.recv(), raw=False)
                self.assertTrue(reply["ok"], reply)
                node_entries = reply["result"]
                counter, entries = self.check_list(name)
                self.assertEqual(counter, 7)
                self.assertEqual([e["id"] for e in node_entries], list(range(1, 8)))
                self.assertEqual(sorted(entries), list(range(1, 8)))
                # Which id an entry got depends on the order the adds of one
                # list arrived (over several connections); the entries don't.
                self.assertEqual(sorted("%s\t%s" % (e["date"], e["title"]) for e in node_entries),
                                 sorted(entries.values()))
            s.close()
        finally:
            ctx.term()
            if node.poll() is None:
                node.terminate()
                try:
                    node.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    node.kill()
                    node.wait()
            log.close()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if not BENCH_BIN or not os.access(BENCH_BIN, os.X_OK):
        raise SystemExit("set TODO_BENCH_BIN to the todo-bench binary")
    if not REDIS_BIN:
        print("redis-server not found: skipped")
        sys.exit(77)
    unittest.main()
