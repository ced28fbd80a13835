#!/usr/bin/python3
"""Functional tests of todo-bench (never of its speed).

- FlagsTest: a bad flag exits 2 with one line; no server exits 1, in bounded
  time, with a message naming the endpoint.
- FakeServerTest: against a scripted ROUTER in a thread, the bench sends one
  frame per request with a uint id and well-formed keys, counts error replies
  and unanswered requests as errors (never as throughput), retries preload
  adds refused with overloaded, and sends the same request stream for the
  same seed.
- SmartTest: --smart against a fake router that answers `map` and fake
  nodes: requests go straight to their partition's primary, "not primary"
  is resent to the refreshed map's primary (counted as redirected), and an
  endpoint without a map (static mode) gets everything, as without --smart.
- NodeTest: against a real todo-node (skipped if $TODO_NODE_BIN is missing):
  a full mix runs with no error but not_found, --preload leaves exactly K
  entries on every list, and --touch-lists reads every list once.

$TODO_BENCH_BIN names the bench (ctest sets it). Every wait is bounded and
every process started is stopped by pid.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import msgpack
import zmq

BENCH_BIN = os.environ.get("TODO_BENCH_BIN", "")
NODE_BIN = os.environ.get("TODO_NODE_BIN", "")
RUN_TIMEOUT = 60  # seconds; bounds every bench run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_bench(*args, timeout=RUN_TIMEOUT):
    return subprocess.run([BENCH_BIN, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


class FakeServer:
    """A ROUTER on a thread. Replies ok to everything except: every
    `fail_every`-th non-ping request gets `overloaded`, every `drop_every`-th
    gets no reply. Records (frame count, decoded body) of the first requests."""

    def __init__(self, fail_every=0, drop_every=0, keep=20000, handler=None):
        self.fail_every, self.drop_every, self.keep = fail_every, drop_every, keep
        self.handler = handler  # body -> reply map, or None for the default
        self.requests = []
        self.endpoint = "tcp://127.0.0.1:%d" % free_port()
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.bind(self.endpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        n = 0
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(50):
                continue
            frames = self._sock.recv_multipart()
            body = msgpack.unpackb(frames[-1], raw=False)
            if len(self.requests) < self.keep:
                self.requests.append((len(frames) - 1, body))
            reply = self.handler(body) if self.handler else None
            if reply is not None:
                pass
            elif body.get("op") == "ping":
                reply = {"id": body.get("id"), "ok": True, "result": {"pong": True}}
            else:
                n += 1
                if self.drop_every and n % self.drop_every == 0:
                    continue
                if self.fail_every and n % self.fail_every == 0:
                    reply = {"id": body.get("id"), "ok": False,
                             "error": {"code": "overloaded", "message": "fake"}}
                else:
                    reply = {"id": body.get("id"), "ok": True, "result": {"id": 1}}
            self._sock.send_multipart(frames[:-1] + [msgpack.packb(reply)])

    def close(self):
        self._stop.set()
        self._thread.join(timeout=10)
        self._sock.close()
        self._ctx.term()


class FlagsTest(unittest.TestCase):
    def test_bad_flag_exits_2_with_one_line(self):
        for args in (["--window", "0"], ["--mix", "add=1,bogus=2"], ["--no-such-flag"],
                     ["--endpoint", "127.0.0.1:7000"], ["--threads", "5", "--connections", "4"]):
            r = run_bench(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn("todo-bench: error:", r.stderr)

    def test_no_server_exits_1_in_bounded_time(self):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        start = time.monotonic()
        r = run_bench("--endpoint", endpoint, "--connect-timeout", "1", "--connections", "3")
        self.assertEqual(r.returncode, 1)
        self.assertLess(time.monotonic() - start, 20)
        self.assertIn("could not connect", r.stderr)
        self.assertIn(endpoint, r.stderr)
        self.assertEqual(r.stdout, "")


class FakeServerTest(unittest.TestCase):
    def bench(self, server, *extra):
        r = run_bench("--endpoint", server.endpoint, "--duration", "0.5", "--warmup", "0.1",
                      "--json", *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_requests_are_single_frames_with_valid_keys(self):
        server = FakeServer()
        try:
            d = self.bench(server, "--connections", "2", "--threads", "2", "--lists", "7",
                           "--dates", "3", "--title-bytes", "11", "--list-prefix", "p-",
                           "--mix", "add=1,entries=1,entries_all=1,update=1,delete=1")
        finally:
            server.close()
        self.assertGreater(d["ok"], 0)
        self.assertEqual(d["errors"], {})
        self.assertEqual(d["ops_per_sec"], round(d["ok"] / 0.5, 1))
        self.assertEqual(set(d["ops"]), {"add", "entries", "entries_all", "update", "delete"})
        ops = set()
        for frames, body in server.requests:
            self.assertEqual(frames, 1, body)  # no empty delimiter
            self.assertIsInstance(body["id"], int)
            op = body["op"]
            if op == "ping":
                continue
            self.assertIn(body["list"], ["p-%d" % i for i in range(7)])
            if op == "entries":
                ops.add("entries" if "date" in body else "entries_all")
            else:
                ops.add(op)
            if op in ("add_entry", "update_entry"):
                self.assertEqual(len(body["title"]), 11)
                self.assertIn(body["date"], ["2026-01-01", "2026-01-02", "2026-01-03"])
            if op in ("update_entry", "delete_entry"):
                self.assertGreaterEqual(body["entry_id"], 1)
        self.assertEqual(ops, {"add_entry", "entries", "entries_all", "update_entry",
                               "delete_entry"})

    def test_errors_and_timeouts_are_not_throughput(self):
        server = FakeServer(fail_every=5, drop_every=100)
        try:
            d = self.bench(server, "--connections", "2", "--window", "8", "--timeout-ms", "100")
        finally:
            server.close()
        self.assertGreater(d["ok"], 0)
        self.assertEqual(set(d["errors"]), {"overloaded", "client_timeout"})
        self.assertEqual(d["errors_total"], sum(d["errors"].values()))
        per_op_ok = sum(o["ok"] for o in d["ops"].values())
        self.assertEqual(per_op_ok, d["ok"])
        self.assertEqual(d["latency_us"]["count"], d["ok"])
        self.assertEqual(d["ops_per_sec"], round(d["ok"] / 0.5, 1))
        self.assertEqual(d["unanswered_at_exit"], 0)
        self.assertEqual(d["stray_replies"], 0)
        lat = d["latency_us"]
        self.assertLessEqual(lat["p50"], lat["p90"])
        self.assertLessEqual(lat["p90"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["p999"])
        self.assertLessEqual(lat["p999"], lat["max"])

    def test_preload_retries_overloaded(self):
        server = FakeServer(fail_every=3)
        try:
            d = self.bench(server, "--connections", "2", "--lists", "20", "--preload", "2",
                           "--mix", "entries=1")
        finally:
            server.close()
        self.assertEqual(d["preload_ok"], 40)
        self.assertEqual(d["preload_errors"], {})
        # Only the preload adds: every 3rd attempt was refused and sent again,
        # so 40 successes took 59 or 60 attempts.
        adds = sum(1 for _, b in server.requests if b["op"] == "add_entry")
        self.assertIn(adds, (59, 60))

    def test_same_seed_same_stream(self):
        streams = []
        for seed in ("3", "3", "4"):
            server = FakeServer(keep=3000)
            try:
                self.bench(server, "--connections", "1", "--window", "4", "--seed", seed,
                           "--lists", "50", "--mix", "add=2,entries=1,update=1,delete=1")
            finally:
                server.close()
            streams.append([b for _, b in server.requests if b["op"] != "ping"])
        n = min(len(s) for s in streams)
        self.assertGreater(n, 100)
        strip = lambda s: [{k: v for k, v in b.items() if k != "id"} for b in s[:n]]
        self.assertEqual(strip(streams[0]), strip(streams[1]))
        self.assertNotEqual(strip(streams[0]), strip(streams[2]))


def partition_of(name, partitions):
    """mix64(fnv1a64(name)) mod partitions (common/PROTOCOL.md, "map")."""
    mask = (1 << 64) - 1
    h = 0xcbf29ce484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001b3) & mask
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & mask
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & mask
    return (h ^ (h >> 31)) % partitions


class SmartTest(unittest.TestCase):
    P = 4

    def serve(self, **kw):
        server = FakeServer(**kw)
        self.addCleanup(server.close)
        return server

    def map_reply(self, body, version, primaries, nodes):
        return {"id": body.get("id"), "ok": True, "result": {
            "partitions": self.P, "hash": "mix64-fnv1a64", "version": version, "nodes": nodes,
            "parts": [[p, 1] for p in primaries]}}

    def bench(self, endpoint, *extra, connections=2):
        r = run_bench("--endpoint", endpoint, "--smart", "--duration", "0.5", "--warmup", "0.1",
                      "--connections", str(connections), "--lists", "50", "--json", *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout), r.stderr

    def test_flag_rules(self):
        r = run_bench("--smart", "--backend", "redis", "--endpoint", "tcp://127.0.0.1:6379")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--smart goes with --backend zmq", r.stderr)

    def test_requests_go_straight_to_the_primary(self):
        a, b = self.serve(), self.serve()
        primaries = ["n1", "n1", "n2", "n2"]
        router = self.serve(handler=lambda body: self.map_reply(
            body, 1, primaries, {"n1": a.endpoint, "n2": b.endpoint})
            if body.get("op") == "map" else None)
        # Two threads of three connections: two hubs, each shared by its
        # thread's connections (one socket per node per thread).
        d, stderr = self.bench(router.endpoint, "--threads", "2", connections=6)
        self.assertIn("map version 1", stderr)
        self.assertTrue(d["smart"]["map"])
        self.assertEqual(d["errors_total"], 0)
        self.assertEqual(d["late_replies"] + d["stray_replies"], 0)
        self.assertGreater(d["ok"], 0)
        self.assertEqual({body["op"] for _, body in router.requests}, {"map", "ping"})
        for node, name in ((a, "n1"), (b, "n2")):
            lists = [body["list"] for _, body in node.requests if "list" in body]
            self.assertTrue(lists, name)
            self.assertTrue(all(primaries[partition_of(l, self.P)] == name for l in lists), name)

    def test_not_primary_is_resent_to_the_new_primary(self):
        moved = threading.Event()

        def old_primary(body):
            if body.get("op") == "ping":
                return None
            moved.set()
            return {"id": body.get("id"), "ok": False, "error": {
                "code": "unavailable", "message": "not primary for partition 0 (fake)"}}

        a, b = self.serve(handler=old_primary), self.serve()
        nodes = {"n1": a.endpoint, "n2": b.endpoint}
        router = self.serve(handler=lambda body: (
            self.map_reply(body, 2 if moved.is_set() else 1,
                           ["n2" if moved.is_set() else "n1"] * self.P, nodes))
            if body.get("op") == "map" else None)
        d, _ = self.bench(router.endpoint)  # writes without rids too: nothing was applied
        self.assertEqual(d["errors_total"], 0, d["errors"])
        self.assertGreater(d["smart"]["redirected"], 0)
        self.assertGreater(d["ok"], 0)
        self.assertTrue(any("list" in body for _, body in b.requests))

    def test_no_map_sends_everything_to_the_endpoint(self):
        router = self.serve(handler=lambda body: {
            "id": body.get("id"), "ok": False, "error": {
                "code": "unknown_op", "message": "map is answered in replicated mode only"}}
            if body.get("op") == "map" else None)
        d, stderr = self.bench(router.endpoint)
        self.assertIn("no map (", stderr)
        self.assertFalse(d["smart"]["map"])
        self.assertEqual(d["errors_total"], 0)
        self.assertGreater(sum(1 for _, body in router.requests if "list" in body), 0)


@unittest.skipUnless(NODE_BIN and os.access(NODE_BIN, os.X_OK), "todo-node not built")
class NodeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="todo-bench-test-")
        cls.endpoint = "tcp://127.0.0.1:%d" % free_port()
        cls.log = open(os.path.join(cls.dir, "node.log"), "w+")
        cls.node = subprocess.Popen(
            [NODE_BIN, "--name", "n1", "--listen", cls.endpoint, "--data",
             os.path.join(cls.dir, "data"), "--no-sync"], stderr=cls.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            cls.log.seek(0)
            if "listening on" in cls.log.read():
                return
            if cls.node.poll() is not None:
                break
            time.sleep(0.05)
        cls.tearDownClass()
        raise RuntimeError("todo-node did not start")

    @classmethod
    def tearDownClass(cls):
        if cls.node.poll() is None:
            cls.node.terminate()
            try:
                cls.node.wait(timeout=20)
            except subprocess.TimeoutExpired:
                cls.node.kill()
                cls.node.wait()
        cls.log.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def entries(self, lst):
        ctx = zmq.Context.instance()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.endpoint)
        try:
            s.send(msgpack.packb({"op": "entries", "id": 1, "list": lst}))
            self.assertTrue(s.poll(10000), "no reply")
            reply = msgpack.unpackb(s.recv(), raw=False)
        finally:
            s.close()
        self.assertTrue(reply["ok"], reply)
        return reply["result"]

    def test_full_mix(self):
        r = run_bench("--endpoint", self.endpoint, "--duration", "1", "--warmup", "0.2",
                      "--lists", "200", "--preload", "2", "--list-prefix", "mix-",
                      "--mix", "add=3,entries=2,entries_all=1,update=2,delete=1", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        d = json.loads(r.stdout)
        self.assertGreater(d["ok"], 0)
        self.assertEqual(d["preload_ok"], 400)
        self.assertEqual(d["preload_errors"], {})
        # An update may find its entry deleted; nothing else may fail.
        self.assertLessEqual(set(d["errors"]), {"not_found"})
        self.assertLessEqual(set(d["ops"]["update"]["errors"]), {"not_found"})
        self.assertEqual(d["unanswered_at_exit"], 0)
        self.assertEqual(d["stray_replies"], 0)
        self.assertIn("bench cpu:", r.stderr)  # the table goes to stderr with --json

    def test_preload_adds_k_entries_per_list(self):
        r = run_bench("--endpoint", self.endpoint, "--duration", "0.3", "--warmup", "0",
                      "--lists", "30", "--preload", "4", "--list-prefix", "pre-",
                      "--mix", "entries_all=1", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        d = json.loads(r.stdout)
        self.assertEqual(d["preload_ok"], 120)
        self.assertEqual(d["errors"], {})
        for i in (0, 13, 29):
            got = self.entries("pre-%d" % i)
            self.assertEqual([e["id"] for e in got], [1, 2, 3, 4])
            for e in got:
                self.assertEqual(len(e["title"]), 24)

    def test_touch_lists_reads_each_list_once(self):
        r = run_bench("--endpoint", self.endpoint, "--touch-lists", "--lists", "500",
                      "--list-prefix", "touch-", "--connections", "3", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        d = json.loads(r.stdout)
        self.assertEqual((d["touched_ok"], d["errors"], d["lists"]), (500, {}, 500))
        self.assertEqual(self.entries("touch-499"), [])
        r = run_bench("--endpoint", self.endpoint, "--touch-lists", "--preload", "1")
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    if not BENCH_BIN or not os.access(BENCH_BIN, os.X_OK):
        raise SystemExit("set TODO_BENCH_BIN to the todo-bench binary")
    unittest.main()
