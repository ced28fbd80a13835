#!/usr/bin/python3
"""Tests of deploy/todo_client.py, deploy/todo and deploy/cluster.

- ClientAgainstFakeServerTest: TodoClient's retry policy (writes retried
  with one rid, within the deadline, moving between endpoints), id matching,
  late-reply discarding and encoding, against a scripted ROUTER socket in a
  thread (needs no binaries).
- TodoCommandE2ETest: every `todo` command, --json, exit codes and error
  messages, and 200 pipelined requests, against a real 3-node cluster started
  with deploy/cluster in a temporary TODO_RUN_DIR on a random port range.
- ClusterScriptE2ETest: deploy/cluster up (idempotent), status, logs,
  restart-node (data survives) and down (no process left, checked by pid).

The binaries are looked up in $TODO_BUILD_DIR (default <repo>/build); if they
are missing the end-to-end classes are skipped, and the script exits 77
(ctest's SKIP_RETURN_CODE) when nothing but those skips went wrong.
Every wait is bounded; every process started is stopped by pid in
tearDownClass, also when a test fails.
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import msgpack
import zmq

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
DEPLOY = os.path.join(REPO, "deploy")
TODO = os.path.join(DEPLOY, "todo")
CLUSTER = os.path.join(DEPLOY, "cluster")
sys.path.insert(0, DEPLOY)
from todo_client import Reply, TodoClient, TodoError  # noqa: E402  pylint: disable=wrong-import-position

BUILD_DIR = os.path.abspath(os.environ.get("TODO_BUILD_DIR", os.path.join(REPO, "build")))
NODE_BIN = os.path.join(BUILD_DIR, "node", "todo-node")
ROUTER_BIN = os.path.join(BUILD_DIR, "router", "todo-router")
CMD_TIMEOUT = 60  # seconds; bounds every subprocess this file runs


def binaries_missing():
    """A message naming the missing binaries, or None if both exist."""
    missing = [b for b in (NODE_BIN, ROUTER_BIN) if not os.access(b, os.X_OK)]
    if missing:
        return ("binaries not built: " + ", ".join(missing) +
                " (build targets todo-node and todo-router, or set TODO_BUILD_DIR)")
    return None


def wait_until(predicate, timeout=10.0, interval=0.02):
    """Polls predicate() until true or `timeout` s pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------
# TodoClient against a scripted fake server
# --------------------------------------------------------------------------


class FakeServer:
    """A ROUTER socket on a thread; `handler(body_map, n)` returns a list of
    reply maps to send now (n counts requests from 1). Records every request."""

    def __init__(self, handler):
        self.handler = handler
        self.requests = []  # (frames after the identity, decoded body)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        port = self._sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def count(self):
        with self._lock:
            return len(self.requests)

    def _run(self):
        while not self._stop.is_set():
            if not self._sock.poll(20, zmq.POLLIN):
                continue
            frames = self._sock.recv_multipart()
            identity, rest = frames[0], frames[1:]
            body = msgpack.unpackb(rest[-1], raw=False)
            with self._lock:
                self.requests.append((rest, body))
                n = len(self.requests)
            for reply in self.handler(body, n):
                self._sock.send_multipart([identity] + rest[:-1] +
                                          [msgpack.packb(reply, use_bin_type=True)])

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close(linger=0)
        self._ctx.term()


def ok(body, result):
    return {"id": body["id"], "ok": True, "result": result}


def err(body, code, message="scripted"):
    return {"id": body["id"], "ok": False, "error": {"code": code, "message": message}}


class ClientAgainstFakeServerTest(unittest.TestCase):

    def serve(self, handler):
        server = FakeServer(handler)
        self.addCleanup(server.close)
        # smart=False: these scripted servers are not clusters (no `map`);
        # SmartClientAgainstFakeServersTest covers skipping the router.
        client = TodoClient(server.endpoint, timeout=0.3, retries=2, backoff=0.01, smart=False)
        self.addCleanup(client.close)
        return server, client

    def test_request_encoding_is_strict(self):
        server, client = self.serve(lambda b, n: [ok(b, {"id": 1})])
        self.assertEqual(client.add_entry("bob", "2026-12-19", "Dentist ✓"), 1)
        frames, body = server.requests[0]
        self.assertEqual(len(frames), 1, "one body frame, no delimiter")
        # raw=False turns msgpack str into Python str but leaves bin as bytes,
        # so this proves every key and string value went out as str.
        self.assertEqual(body, {"op": "add_entry", "id": body["id"], "list": "bob",
                                "date": "2026-12-19", "title": "Dentist ✓",
                                "rid": body["rid"]})
        self.assertRegex(body["rid"], r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                      r"[0-9a-f]{12}$")  # a uuid4
        self.assertIsInstance(body["id"], int)
        self.assertTrue(all(isinstance(k, str) for k in body))

    def test_ids_increase_and_none_keys_are_left_out(self):
        server, client = self.serve(lambda b, n: [ok(b, {"id": 1, "date": "2026-01-01",
                                                         "title": "x"})])
        client.update_entry("bob", 1, title="x")
        client.update_entry("bob", 1, date="2026-01-01")
        (_, first), (_, second) = server.requests
        self.assertNotIn("date", first)
        self.assertNotIn("title", second)
        self.assertGreater(second["id"], first["id"])

    def test_error_reply_raises_todo_error(self):
        _, client = self.serve(lambda b, n: [err(b, "not_found", "no entry 9 in list 'bob'")])
        with self.assertRaises(TodoError) as cm:
            client.update_entry("bob", 9, title="x")
        self.assertEqual(cm.exception.code, "not_found")
        self.assertEqual(cm.exception.message, "no entry 9 in list 'bob'")

    def test_reads_are_retried_on_timeout(self):
        server, client = self.serve(lambda b, n: [])  # never answers
        with self.assertRaises(TodoError) as cm:
            client.entries("bob")
        self.assertEqual(cm.exception.code, "timeout")
        self.assertTrue(wait_until(lambda: server.count() >= 3))
        self.assertEqual(server.count(), 3)  # 1 + retries=2

    def test_reads_are_retried_on_unavailable_and_overloaded(self):
        codes = {1: "unavailable", 2: "overloaded"}
        server, client = self.serve(
            lambda b, n: [err(b, codes[n]) if n in codes else ok(b, {"node": "n2"})])
        self.assertEqual(client.locate("bob"), "n2")
        self.assertEqual(server.count(), 3)

    def test_reads_give_up_after_retries(self):
        server, client = self.serve(lambda b, n: [err(b, "unavailable", "node n1 is down")])
        with self.assertRaises(TodoError) as cm:
            client.ping()
        self.assertEqual(cm.exception.code, "unavailable")
        # The last error, and how long and where the call tried.
        self.assertTrue(cm.exception.message.startswith(
            "node n1 is down; gave up after 3 attempts in "), cm.exception.message)
        self.assertIn(f"(tried {server.endpoint})", cm.exception.message)
        self.assertEqual(server.count(), 3)

    def test_reads_are_not_retried_on_other_errors(self):
        server, client = self.serve(lambda b, n: [err(b, "bad_request")])
        with self.assertRaises(TodoError):
            client.entries("bob", date="2026-02-29")
        self.assertEqual(server.count(), 1)

    def serve_v1(self, handler):
        """A client that sends writes without a rid (v1 behaviour)."""
        server = FakeServer(handler)
        self.addCleanup(server.close)
        client = TodoClient(server.endpoint, timeout=0.3, retries=2, backoff=0.01, rids=False,
                            smart=False)
        self.addCleanup(client.close)
        return server, client

    def test_writes_without_rid_are_not_retried_on_timeout(self):
        server, client = self.serve_v1(lambda b, n: [])
        with self.assertRaises(TodoError) as cm:
            client.add_entry("bob", "2026-12-19", "Dentist")
        self.assertEqual(cm.exception.code, "timeout")
        # The client waited a whole timeout after its only send: a retry
        # would have been sent, and received, by now.
        self.assertTrue(wait_until(lambda: server.count() >= 1))
        self.assertEqual(server.count(), 1)
        self.assertNotIn("rid", server.requests[0][1])

    def test_writes_without_rid_are_not_retried_on_unavailable(self):
        server, client = self.serve_v1(lambda b, n: [err(b, "unavailable")])
        with self.assertRaises(TodoError):
            client.delete_entry("bob", 1)
        self.assertEqual(server.count(), 1)
        # Nor is a write given rid=None by a client that has rids.
        server2, client2 = self.serve(lambda b, n: [err(b, "unavailable")])
        with self.assertRaises(TodoError):
            client2.delete_entry("bob", 1, rid=None)
        self.assertEqual(server2.count(), 1)
        self.assertNotIn("rid", server2.requests[0][1])

    def test_overloaded_writes_are_retried(self):
        for serve in (self.serve, self.serve_v1):
            server, client = serve(
                lambda b, n: [err(b, "overloaded") if n < 3 else ok(b, {"deleted": True})])
            self.assertTrue(client.delete_entry("bob", 1))
            self.assertEqual(server.count(), 3)

    def test_writes_are_retried_with_the_same_rid_on_timeout(self):
        # The first two attempts get no reply (lost); the third does.
        server, client = self.serve(lambda b, n: [ok(b, {"id": 7})] if n == 3 else [])
        self.assertEqual(client.add_entry("bob", "2026-12-19", "Dentist"), 7)
        self.assertEqual(server.count(), 3)
        bodies = [body for _, body in server.requests]
        self.assertEqual(len({b["rid"] for b in bodies}), 1, "one rid for every attempt")
        self.assertEqual(len({b["id"] for b in bodies}), 3, "a new request id each time")
        self.assertEqual({(b["op"], b["title"]) for b in bodies}, {("add_entry", "Dentist")})

    def test_writes_are_retried_with_the_same_rid_on_unavailable_and_overloaded(self):
        codes = {1: "unavailable", 2: "overloaded"}
        server, client = self.serve(
            lambda b, n: [err(b, codes[n]) if n in codes else
                          ok(b, {"id": 1, "date": "2026-01-01", "title": "x"})])
        self.assertEqual(client.update_entry("bob", 1, title="x")["title"], "x")
        self.assertEqual(server.count(), 3)
        self.assertEqual(len({body["rid"] for _, body in server.requests}), 1)

    def test_every_write_gets_a_fresh_rid_and_reads_none(self):
        server, client = self.serve(lambda b, n: [ok(b, {"id": n, "deleted": True})])
        client.add_entry("bob", "2026-12-19", "a")
        client.add_entry("bob", "2026-12-19", "a")
        client.delete_entry("bob", 1)
        client.call("entries", list="bob")
        client.add_entry("bob", "2026-12-19", "a", rid="mine")
        ids = client.pipeline([("add_entry", {"list": "b", "date": "2026-12-19", "title": "p"}),
                               ("add_entry", {"list": "b", "date": "2026-12-19", "title": "p",
                                              "rid": "chosen"})])
        self.assertTrue(all(r.ok for r in ids))
        rids = [body.get("rid") for _, body in server.requests]
        self.assertEqual(len(set(rids[:3])), 3)
        self.assertIsNone(rids[3])  # a read carries none
        self.assertEqual(rids[4], "mine")
        self.assertNotIn(rids[5], rids[:5])
        self.assertEqual(rids[6], "chosen")

    def test_the_deadline_bounds_every_retry(self):
        server, client = self.serve(lambda b, n: [])  # never answers
        client.retries = 1000
        client.deadline = 1.0
        start = time.monotonic()
        with self.assertRaises(TodoError) as cm:
            client.add_entry("bob", "2026-12-19", "Dentist")
        elapsed = time.monotonic() - start
        self.assertEqual(cm.exception.code, "timeout")
        self.assertLess(elapsed, 3.0)  # a bound, not a perf check: 1 s plus slack
        self.assertLess(server.count(), 10)
        self.assertEqual(len({body["rid"] for _, body in server.requests}), 1)

    def test_backoff_doubles_is_capped_and_jittered(self):
        client = TodoClient("tcp://127.0.0.1:1", backoff=0.1, max_backoff=0.5)
        self.addCleanup(client.close)
        for attempt, cap in ((0, 0.1), (1, 0.2), (2, 0.4), (3, 0.5), (50, 0.5)):
            delays = [client._backoff_delay(attempt) for _ in range(200)]  # pylint: disable=protected-access
            self.assertTrue(all(cap * 0.5 <= d <= cap for d in delays), (attempt, delays[:5]))
            self.assertGreater(len(set(delays)), 100)  # jittered, not in lock-step

    def test_moves_to_the_next_endpoint_on_timeout_and_unavailable(self):
        dead = dead_endpoint(self)
        down = FakeServer(lambda b, n: [err(b, "unavailable", "node n1 is down")])
        self.addCleanup(down.close)
        live = FakeServer(lambda b, n: [ok(b, {"id": 3})])
        self.addCleanup(live.close)
        client = TodoClient(f"{dead}, {down.endpoint}", timeout=0.3, retries=3, backoff=0.01,
                            smart=False)
        self.addCleanup(client.close)
        self.assertEqual(client.endpoints, [dead, down.endpoint])
        client.endpoints.append(live.endpoint)
        self.assertEqual(client.add_entry("bob", "2026-12-19", "Dentist"), 3)
        self.assertEqual(client.endpoint, live.endpoint)
        self.assertEqual((down.count(), live.count()), (1, 1))
        self.assertEqual(down.requests[0][1]["rid"], live.requests[0][1]["rid"])
        # And reads too; it stays on the endpoint that answered.
        self.assertEqual(client.ping()["id"], 3)
        self.assertEqual(live.count(), 2)

    def test_every_endpoint_gets_a_try_before_retries_are_counted(self):
        dead = [dead_endpoint(self) for _ in range(3)]
        live = FakeServer(lambda b, n: [ok(b, {"pong": True})])
        self.addCleanup(live.close)
        client = TodoClient(dead + [live.endpoint], timeout=0.2, retries=0, backoff=5.0,
                            smart=False)
        self.addCleanup(client.close)
        start = time.monotonic()
        self.assertEqual(client.ping(), {"pong": True})
        self.assertEqual(client.endpoint, live.endpoint)
        # Untried endpoints go at once, not after a back-off (5 s here).
        self.assertLess(time.monotonic() - start, 4.0)  # a bound, not a perf check

    def test_fetching_the_map_counts_against_the_deadline(self):
        dead = [dead_endpoint(self) for _ in range(3)]
        client = TodoClient(dead, timeout=5.0, retries=3, deadline=1.5)  # smart: asks for the map
        self.addCleanup(client.close)
        start = time.monotonic()
        with self.assertRaises(TodoError) as cm:
            client.add_entry("bob", "2026-12-19", "Dentist")
        self.assertEqual(cm.exception.code, "timeout")
        self.assertLess(time.monotonic() - start, 3.0)  # 1.5 s plus slack, not 3 x 1 s + 1.5

    def test_its_own_request_sent_back_is_a_dead_endpoint(self):
        # What a DEALER sees when TCP connected it to itself: its request.
        echo = FakeServer(lambda b, n: [b])
        self.addCleanup(echo.close)
        live = FakeServer(lambda b, n: [ok(b, {"id": 4})])
        self.addCleanup(live.close)
        client = TodoClient([echo.endpoint, live.endpoint], timeout=0.5, retries=3,
                            backoff=0.01, smart=False)
        self.addCleanup(client.close)
        self.assertEqual(client.add_entry("bob", "2026-12-19", "Dentist"), 4)
        self.assertEqual(client.endpoint, live.endpoint)
        self.assertEqual((echo.count(), live.count()), (1, 1))
        # One request at a time (no retries): the error says what happened.
        lone = TodoClient(echo.endpoint, timeout=0.5, retries=0, smart=False)
        self.addCleanup(lone.close)
        with self.assertRaises(TodoError) as caught:
            lone.ping()
        self.assertEqual(caught.exception.code, "unavailable")
        self.assertIn("connected to itself", caught.exception.message)

    def test_endpoints_parse(self):
        from todo_client import parse_endpoints  # pylint: disable=import-outside-toplevel
        self.assertEqual(parse_endpoints("tcp://a:1"), ["tcp://a:1"])
        self.assertEqual(parse_endpoints(" tcp://a:1 ,tcp://b:2,"), ["tcp://a:1", "tcp://b:2"])
        self.assertEqual(parse_endpoints(["tcp://a:1,tcp://b:2", "tcp://c:3"]),
                         ["tcp://a:1", "tcp://b:2", "tcp://c:3"])
        with self.assertRaises(ValueError):
            parse_endpoints(" , ")

    def test_late_reply_is_discarded(self):
        held = []

        def handler(body, n):
            if n == 1:
                held.append(body)  # answer request 1 only after request 2 arrives
                return []
            return [ok(held[0], {"pong": True, "role": "node", "name": "stale"}),
                    ok(body, {"pong": True, "role": "node", "name": "fresh"})]

        server = FakeServer(handler)
        self.addCleanup(server.close)
        client = TodoClient(server.endpoint, timeout=0.2, retries=0, smart=False)
        self.addCleanup(client.close)
        with self.assertRaises(TodoError):
            client.ping()
        self.assertEqual(client.ping()["name"], "fresh")

    def test_collect_matches_replies_by_id(self):
        held = []

        def handler(body, n):  # answers the 5 requests in reverse order
            held.append(body)
            if n < 5:
                return []
            return [ok(b, {"node": f"for-{b['list']}"}) for b in reversed(held)]

        _, client = self.serve(handler)
        replies = client.pipeline([("locate", {"list": f"l{i}"}) for i in range(5)])
        self.assertEqual([r.result["node"] for r in replies], [f"for-l{i}" for i in range(5)])

    def test_collect_reports_missing_replies_as_timeouts(self):
        _, client = self.serve(lambda b, n: [ok(b, {"node": "n1"})] if n % 2 else [])
        replies = client.pipeline([("locate", {"list": "x"})] * 4, timeout=0.3)
        self.assertEqual([r.ok for r in replies], [True, False, True, False])
        self.assertEqual(replies[1].error.code, "timeout")
        with self.assertRaises(TodoError):
            replies[1].value()
        self.assertEqual(replies[0].value(), {"node": "n1"})
        self.assertIsInstance(replies[0], Reply)

    def test_no_server_times_out_within_the_deadline(self):
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        client = TodoClient(f"tcp://127.0.0.1:{port}", timeout=0.2, retries=0)
        self.addCleanup(client.close)
        start = time.monotonic()
        with self.assertRaises(TodoError) as cm:
            client.ping()
        self.assertEqual(cm.exception.code, "timeout")
        self.assertLess(time.monotonic() - start, 5.0)  # bounded, not a perf check


class SmartClientAgainstFakeServersTest(unittest.TestCase):
    """Skipping the router, against scripted servers: a fake router that
    answers `map` (replicated mode) and fake nodes. The real cluster's
    version is tests/python/test_smart_client.py."""

    def server(self, handler):
        server = FakeServer(handler)
        self.addCleanup(server.close)
        return server

    def client(self, endpoint, **kw):
        client = TodoClient(endpoint, timeout=0.5, retries=2, backoff=0.01, **kw)
        self.addCleanup(client.close)
        return client

    @staticmethod
    def map_reply(body, version, primary, nodes, partitions=4):
        return ok(body, {"partitions": partitions, "hash": "mix64-fnv1a64", "version": version,
                         "nodes": nodes, "parts": [[primary, 1]] * partitions})

    def test_requests_for_lists_go_straight_to_the_primary(self):
        node = self.server(lambda b, n: [ok(b, [])])
        router = self.server(lambda b, n: [
            self.map_reply(b, 1, "n1", {"n1": node.endpoint}) if b["op"] == "map"
            else ok(b, {"pong": True, "role": "router", "name": "r"})])
        client = self.client(router.endpoint)
        self.assertEqual(client.entries("bob"), [])
        self.assertEqual(client.entries("alice"), [])
        self.assertEqual(client.ping()["role"], "router")  # no list: the endpoint
        self.assertEqual([b["op"] for _, b in node.requests], ["entries", "entries"])
        self.assertEqual([b["op"] for _, b in router.requests], ["map", "ping"])
        self.assertEqual(client.direct, 2)

    def test_not_primary_refreshes_the_map_and_resends_any_op(self):
        moved = threading.Event()

        def old_primary(b, n):
            moved.set()
            return [err(b, "unavailable", "not primary for partition 2 (its primary is 'n2')")]

        a = self.server(old_primary)
        b_node = self.server(lambda b, n: [ok(b, {"id": 7})])
        router = self.server(lambda b, n: [
            self.map_reply(b, 2, "n2", {"n1": a.endpoint, "n2": b_node.endpoint})
            if moved.is_set() else self.map_reply(b, 1, "n1", {"n1": a.endpoint,
                                                               "n2": b_node.endpoint})])
        client = self.client(router.endpoint, rids=False)  # even a write without a rid
        self.assertEqual(client.add_entry("bob", "2026-12-19", "x"), 7)
        self.assertEqual((a.count(), b_node.count()), (1, 1))
        self.assertEqual(client.redirects, 1)
        self.assertNotIn("rid", b_node.requests[0][1])

    def test_static_mode_goes_through_the_endpoint_and_asks_once(self):
        router = self.server(lambda b, n: [
            err(b, "unknown_op", "map is answered in replicated mode only")
            if b["op"] == "map" else ok(b, [])])
        client = self.client(router.endpoint)
        for _ in range(3):
            self.assertEqual(client.entries("bob"), [])
        self.assertEqual([b["op"] for _, b in router.requests], ["map"] + ["entries"] * 3)
        self.assertEqual(client.direct, 0)

    def test_a_silent_node_is_avoided_and_the_endpoint_used(self):
        silent = self.server(lambda b, n: [])  # a primary that died
        router = self.server(lambda b, n: [
            self.map_reply(b, 1, "n1", {"n1": silent.endpoint}) if b["op"] == "map"
            else ok(b, [{"id": 1}])])
        client = self.client(router.endpoint)
        self.assertEqual(client.entries("bob"), [{"id": 1}])
        self.assertEqual(silent.count(), 1)
        self.assertEqual([b["op"] for _, b in router.requests if b["op"] != "map"],
                         ["entries"])

    def test_smart_false_never_asks_for_the_map(self):
        router = self.server(lambda b, n: [ok(b, [])])
        client = self.client(router.endpoint, smart=False)
        client.entries("bob")
        self.assertEqual([b["op"] for _, b in router.requests], ["entries"])

    def test_partition_of_matches_the_cluster_hash(self):
        # The same values as common/cluster/map.h's PartitionOf (unit-tested
        # there) and tests/replication/repl_lib.partition_of.
        sys.path.insert(0, os.path.join(REPO, "tests", "replication"))
        from todo_client import partition_of  # pylint: disable=import-outside-toplevel
        import repl_lib  # pylint: disable=import-outside-toplevel
        self.assertEqual((partition_of("alice", 256), partition_of("bob", 256)), (92, 236))
        for name in ("bob", "alice", "", "ünïcode", "x" * 100):
            for p in (1, 7, 32, 256):
                self.assertEqual(partition_of(name, p), repl_lib.partition_of(name, p))


# --------------------------------------------------------------------------
# A real cluster, started with deploy/cluster
# --------------------------------------------------------------------------


def ports_free(base, count):
    for port in range(base, base + count):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def dead_endpoint(test):
    """A loopback endpoint nobody listens on, held bound until `test` ends.

    The port stays bound (never listened on) so the kernel cannot hand it out
    as a connecting socket's own source port: a TCP connect to a free port in
    the ephemeral range can otherwise connect to itself, and a ZeroMQ DEALER
    then receives its own request back as if it were the reply.
    """
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    test.addCleanup(holder.close)
    return f"tcp://127.0.0.1:{holder.getsockname()[1]}"


def pick_base_port(count):
    for _ in range(50):
        base = random.randrange(17000, 40000, 10)
        # deploy/cluster also binds base+80 (HTTP) and base+91.. (node metrics).
        if ports_free(base, count) and ports_free(base + 80, 20):
            return base
    raise RuntimeError("no free port range found")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class LocalCluster:
    """A cluster run by deploy/cluster in a temporary TODO_RUN_DIR."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.base = pick_base_port(nodes + 1)
        self.run_dir = tempfile.mkdtemp(prefix="todo-py-e2e-")
        self.env = dict(os.environ, TODO_RUN_DIR=self.run_dir, TODO_BASE_PORT=str(self.base),
                        TODO_BUILD_DIR=BUILD_DIR, TODO_READY_TIMEOUT="20")
        self.endpoint = f"tcp://127.0.0.1:{self.base}"
        self.env["TODO_ENDPOINT"] = self.endpoint
        self.seen_pids = set()  # every pid ever recorded, killed in close()

    def names(self):
        return [f"n{i}" for i in range(1, self.nodes + 1)] + ["r1"]

    def node_endpoint(self, name):
        return f"tcp://127.0.0.1:{self.base + int(name[1:])}"

    def pid_file(self, name):
        return os.path.join(self.run_dir, "pids", f"{name}.pid")

    def pids(self):
        """name -> pid from the pid files that exist."""
        out = {}
        for name in self.names():
            try:
                with open(self.pid_file(name), encoding="ascii") as f:
                    out[name] = int(f.read().strip())
            except (OSError, ValueError):
                continue
        self.seen_pids.update(out.values())
        return out

    def script(self, *args, timeout=CMD_TIMEOUT):
        proc = subprocess.run([CLUSTER, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        self.pids()
        return proc

    def up(self, *extra):
        proc = self.script("up", "-n", str(self.nodes), "--static", *extra, timeout=180)
        if proc.returncode != 0:
            raise RuntimeError(f"deploy/cluster up failed ({proc.returncode}):\n"
                               f"{proc.stdout}\n{proc.stderr}")
        return proc

    def close(self):
        """deploy/cluster down, then SIGKILL by pid anything still alive."""
        try:
            self.script("down", timeout=60)
        except Exception:  # pylint: disable=broad-except
            pass
        self.pids()
        for pid in self.seen_pids:
            if pid_alive(pid) and _is_todo_process(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _is_todo_process(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"todo-" in f.read()
    except OSError:
        return False


def todo(cluster, *args, endpoint=None):
    """Runs deploy/todo; returns the CompletedProcess (text)."""
    cmd = [TODO]
    if endpoint:
        cmd += ["--endpoint", endpoint]
    return subprocess.run(cmd + list(args), env=cluster.env, capture_output=True, text=True,
                          timeout=CMD_TIMEOUT, check=False)


class E2EBase(unittest.TestCase):
    NODES = 3
    cluster = None

    @classmethod
    def setUpClass(cls):
        missing = binaries_missing()
        if missing:
            raise unittest.SkipTest(missing)
        cls.cluster = LocalCluster(cls.NODES)
        try:
            cls.up_output = cls.cluster.up()
        except BaseException:
            cls.cluster.close()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.cluster is not None:
            cls.cluster.close()

    def todo(self, *args, endpoint=None):
        return todo(self.cluster, *args, endpoint=endpoint)

    def assert_ok(self, proc):
        self.assertEqual(proc.returncode, 0, f"stdout={proc.stdout!r} stderr={proc.stderr!r}")
        self.assertEqual(proc.stderr, "")
        return proc.stdout

    def assert_error(self, proc, code):
        """Asserts exit 1 and one stderr line 'todo: CODE: <message>'; returns the message."""
        self.assertEqual(proc.returncode, 1, f"stdout={proc.stdout!r} stderr={proc.stderr!r}")
        self.assertEqual(proc.stdout, "")
        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        prefix = f"todo: {code}: "
        self.assertTrue(lines[0].startswith(prefix), lines[0])
        message = lines[0][len(prefix):]
        self.assertTrue(message.strip(), "the server's message is shown")
        return message


class TodoCommandE2ETest(E2EBase):

    def test_up_showed_it_working(self):
        out = self.up_output.stdout
        self.assertIn("added entry 1 to 'demo'", out)
        self.assertIn("1  2026-12-19  Dentist", out)
        self.assertEqual(self.cluster.pids().keys(), set(self.cluster.names()))

    def test_ping(self):
        self.assertEqual(self.assert_ok(self.todo("ping")), "pong from router r1\n")
        result = json.loads(self.assert_ok(self.todo("--json", "ping")))
        self.assertEqual((result["pong"], result["role"], result["name"]), (True, "router", "r1"))
        for name in ("n1", "n2", "n3"):  # options also work after the command
            out = self.assert_ok(self.todo("ping", "--json",
                                           "--endpoint", self.cluster.node_endpoint(name)))
            result = json.loads(out)
            self.assertEqual((result["pong"], result["role"], result["name"]),
                             (True, "node", name))

    def test_add_and_entries(self):
        self.assertEqual(self.assert_ok(self.todo("add", "alice", "2026-12-19", "Dentist")),
                         "added entry 1 to 'alice'\n")
        self.assertEqual(self.assert_ok(self.todo("add", "alice", "2026-12-20", "Movies", "at",
                                                  "8")),
                         "added entry 2 to 'alice'\n")
        self.assertEqual(self.assert_ok(self.todo("add", "alice", "2026-12-19", "Shopping")),
                         "added entry 3 to 'alice'\n")
        self.assertEqual(self.assert_ok(self.todo("entries", "alice")),
                         "1  2026-12-19  Dentist\n2  2026-12-20  Movies at 8\n"
                         "3  2026-12-19  Shopping\n")
        self.assertEqual(self.assert_ok(self.todo("entries", "alice", "2026-12-19")),
                         "1  2026-12-19  Dentist\n3  2026-12-19  Shopping\n")
        self.assertEqual(self.assert_ok(self.todo("entries", "alice", "2027-01-01")),
                         "no entries in 'alice' on 2027-01-01\n")
        self.assertEqual(self.assert_ok(self.todo("entries", "never-written")),
                         "no entries in 'never-written'\n")

    def test_json_output(self):
        self.assertEqual(json.loads(self.assert_ok(
            self.todo("--json", "add", "jason", "2026-03-01", "Café ☕"))), {"id": 1})
        entries = json.loads(self.assert_ok(self.todo("entries", "jason", "--json")))
        self.assertEqual([(e["id"], e["date"], e["title"]) for e in entries],
                         [(1, "2026-03-01", "Café ☕")])
        self.assertEqual(json.loads(self.assert_ok(self.todo("--json", "entries", "nobody"))),
                         [])
        updated = json.loads(self.assert_ok(
            self.todo("--json", "update", "jason", "1", "--title", "Tea")))
        self.assertEqual((updated["id"], updated["date"], updated["title"]),
                         (1, "2026-03-01", "Tea"))
        node = json.loads(self.assert_ok(self.todo("--json", "locate", "jason")))["node"]
        self.assertIn(node, ("n1", "n2", "n3"))
        self.assertEqual(json.loads(self.assert_ok(self.todo("--json", "delete", "jason", "1"))),
                         {"deleted": True})
        self.assertEqual(json.loads(self.assert_ok(self.todo("--json", "delete", "jason", "1"))),
                         {"deleted": False})

    def test_update(self):
        self.assert_ok(self.todo("add", "upd", "2026-12-19", "Dentist"))
        self.assertEqual(self.assert_ok(self.todo("update", "upd", "1", "--date", "2026-12-21")),
                         "updated entry in 'upd': 1  2026-12-21  Dentist\n")
        self.assertEqual(self.assert_ok(self.todo("update", "upd", "1", "--title", "Dentist 9am",
                                                  "--date", "2026-12-22")),
                         "updated entry in 'upd': 1  2026-12-22  Dentist 9am\n")
        self.assertEqual(self.assert_ok(self.todo("entries", "upd")),
                         "1  2026-12-22  Dentist 9am\n")

    def test_update_of_missing_id_is_not_found(self):
        self.assert_ok(self.todo("add", "nf", "2026-12-19", "Dentist"))
        self.assert_error(self.todo("update", "nf", "42", "--title", "x"), "not_found")
        self.assert_error(self.todo("update", "never-written-nf", "1", "--title", "x"),
                          "not_found")

    def test_delete(self):
        self.assert_ok(self.todo("add", "del", "2026-12-19", "A"))
        self.assert_ok(self.todo("add", "del", "2026-12-19", "B"))
        self.assertEqual(self.assert_ok(self.todo("delete", "del", "1")),
                         "deleted entry 1 from 'del'\n")
        self.assertEqual(self.assert_ok(self.todo("delete", "del", "1")),
                         "no entry 1 in 'del'; nothing deleted\n")
        self.assertEqual(self.assert_ok(self.todo("entries", "del")), "2  2026-12-19  B\n")
        # Ids are never reused after a delete.
        self.assertEqual(self.assert_ok(self.todo("add", "del", "2026-12-19", "C")),
                         "added entry 3 to 'del'\n")

    def test_locate_names_the_owner(self):
        self.assert_ok(self.todo("add", "where", "2026-12-19", "Dentist"))
        out = self.assert_ok(self.todo("locate", "where"))
        self.assertRegex(out, r"^'where' is on node n[123]\n$")
        owner = out.split()[-1]
        # The owning node, asked directly, has the entry and names itself.
        direct = self.cluster.node_endpoint(owner)
        self.assertEqual(self.assert_ok(self.todo("entries", "where", endpoint=direct)),
                         "1  2026-12-19  Dentist\n")
        self.assertEqual(self.assert_ok(self.todo("locate", "where", endpoint=direct)), out)

    def test_bad_date_shows_the_servers_message(self):
        for date in ("2026-02-29", "2026-13-01", "tomorrow"):
            message = self.assert_error(self.todo("add", "bad", date, "x"), "bad_request")
            self.assertIn("date", message)
        self.assert_error(self.todo("entries", "bad", "2026-02-30"), "bad_request")
        self.assert_error(self.todo("update", "bad", "1", "--date", "0000-01-01"), "bad_request")
        self.assertEqual(self.assert_ok(self.todo("entries", "bad")), "no entries in 'bad'\n")

    def test_bad_list_and_title_are_bad_requests(self):
        self.assert_error(self.todo("add", "x" * 256, "2026-12-19", "t"), "bad_request")
        self.assert_error(self.todo("add", "", "2026-12-19", "t"), "bad_request")
        self.assert_error(self.todo("add", "bob", "2026-12-19", "t" * 1025), "bad_request")

    def test_usage_errors_exit_2(self):
        for args in (["add", "bob", "2026-12-19"],      # missing title
                     ["update", "bob", "one", "--title", "x"],  # non-integer id
                     ["delete", "bob", "-3"],
                     ["update", "bob", "1"],             # nothing to change
                     ["entries"],
                     ["frobnicate"],
                     []):
            proc = self.todo(*args)
            self.assertEqual(proc.returncode, 2, (args, proc.stderr))
            self.assertEqual(proc.stdout, "")
            self.assertIn("usage:", proc.stderr)

    def test_a_write_run_again_with_its_rid_is_applied_once(self):
        rid = f"cli-{random.getrandbits(64):x}"
        first = self.assert_ok(self.todo("add", "--rid", rid, "ridlist", "2026-12-19", "Once"))
        again = self.assert_ok(self.todo("add", "--rid", rid, "ridlist", "2026-12-19", "Once"))
        self.assertEqual(first, again)
        self.assertEqual(self.assert_ok(self.todo("entries", "ridlist")).splitlines(),
                         ["1  2026-12-19  Once"])
        # Other arguments with the same rid: refused, nothing changed.
        msg = self.assert_error(self.todo("add", "--rid", rid, "ridlist", "2026-12-19", "Other"),
                                "bad_request")
        self.assertIn("was used for a different request", msg)
        # Without --rid every run is a new write.
        self.assert_ok(self.todo("add", "ridlist", "2026-12-19", "Twice"))
        self.assert_ok(self.todo("add", "ridlist", "2026-12-19", "Twice"))
        self.assertEqual(len(self.assert_ok(self.todo("entries", "ridlist")).splitlines()), 3)
        proc = self.todo("add", "--rid", "r" * 65, "ridlist", "2026-12-19", "x")
        self.assertEqual(proc.returncode, 2)
        proc = self.todo("add", "--rid", "a", "--no-rid", "ridlist", "2026-12-19", "x")
        self.assertEqual(proc.returncode, 2)

    def test_several_endpoints_the_dead_ones_skipped(self):
        dead = dead_endpoint(self)
        live = self.cluster.endpoint
        out = self.assert_ok(self.todo("--timeout", "0.5", "--endpoint", f"{dead},{live}",
                                       "add", "multi", "2026-12-19", "A"))
        self.assertEqual(out.strip(), "added entry 1 to 'multi'")
        # Repeated --endpoint, and $TODO_ENDPOINT as a list.
        out = self.assert_ok(self.todo("--timeout", "0.5", "--endpoint", dead, "--endpoint", live,
                                       "entries", "multi"))
        self.assertEqual(out.splitlines(), ["1  2026-12-19  A"])
        env = dict(self.cluster.env, TODO_ENDPOINT=f"{dead}, {live}")
        proc = subprocess.run([TODO, "--timeout", "0.5", "entries", "multi"], env=env,
                              capture_output=True, text=True, timeout=CMD_TIMEOUT, check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.splitlines(), ["1  2026-12-19  A"])

    def test_client_writes_with_rids_through_the_cluster(self):
        with TodoClient(self.cluster.endpoint) as client:
            first = client.add_entry("ridclient", "2026-12-19", "x", rid="py-1")
            self.assertEqual(client.add_entry("ridclient", "2026-12-19", "x", rid="py-1"), first)
            upd = client.update_entry("ridclient", first, title="y", rid="py-2")
            self.assertEqual(client.update_entry("ridclient", first, title="y", rid="py-2"), upd)
            self.assertTrue(client.delete_entry("ridclient", first, rid="py-3"))
            self.assertTrue(client.delete_entry("ridclient", first, rid="py-3"))  # the same reply
            self.assertFalse(client.delete_entry("ridclient", first))  # a new delete
            self.assertEqual(client.entries("ridclient"), [])

    def test_no_server_exits_1_with_timeout(self):
        port = pick_base_port(1)
        proc = self.todo("--timeout", "0.3", "--retries", "0", "ping",
                         endpoint=f"tcp://127.0.0.1:{port}")
        self.assert_error(proc, "timeout")

    def test_unknown_op_via_client(self):
        with TodoClient(self.cluster.endpoint) as client:
            with self.assertRaises(TodoError) as cm:
                client.call("frobnicate", list="bob")
            self.assertEqual(cm.exception.code, "unknown_op")

    def test_client_convenience_methods(self):
        with TodoClient(self.cluster.endpoint) as client:
            self.assertEqual(client.ping()["role"], "router")
            self.assertEqual(client.add_entry("conv", "2026-12-19", "Dentist"), 1)
            self.assertEqual(client.update_entry("conv", 1, title="Dentist!")["title"],
                             "Dentist!")
            self.assertEqual([(e["id"], e["title"]) for e in client.entries("conv")],
                             [(1, "Dentist!")])
            self.assertEqual(client.entries("conv", date="2026-12-20"), [])
            self.assertIn(client.locate("conv"), ("n1", "n2", "n3"))
            self.assertTrue(client.delete_entry("conv", 1))
            self.assertFalse(client.delete_entry("conv", 1))

    def test_pipelining_200_requests(self):
        with TodoClient(self.cluster.endpoint, timeout=30) as client:
            replies = client.pipeline(
                [("add_entry", {"list": "pipe", "date": "2026-12-19", "title": f"item {i}"})
                 for i in range(200)])
            self.assertTrue(all(r.ok for r in replies), [r for r in replies if not r.ok][:3])
            ids = [r.result["id"] for r in replies]
            self.assertEqual(sorted(ids), list(range(1, 201)))
            # Each reply's id is the entry holding that request's title.
            stored = {e["id"]: e["title"] for e in client.entries("pipe")}
            self.assertEqual(stored, {ids[i]: f"item {i}" for i in range(200)})

            # 200 mixed reads over many lists, gathered by id.
            reads = []
            for i in range(100):
                reads.append(("entries", {"list": f"pipe-empty-{i}"}))
                reads.append(("locate", {"list": f"pipe-empty-{i}"}))
            replies = client.pipeline(reads)
            self.assertEqual([r.result for r in replies[0::2]], [[]] * 100)
            self.assertTrue(all(r.result["node"] in ("n1", "n2", "n3") for r in replies[1::2]))


class ClusterScriptE2ETest(E2EBase):
    NODES = 2

    def test_lifecycle(self):
        c = self.cluster
        first = c.pids()
        self.assertEqual(set(first), {"n1", "n2", "r1"})
        self.assertTrue(all(pid_alive(p) for p in first.values()))

        # up again: nothing new started, no demo.
        proc = c.up()
        self.assertEqual(c.pids(), first)
        self.assertIn("already running", proc.stdout)
        self.assertNotIn("added entry", proc.stdout)

        proc = c.script("status")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        for name, pid in first.items():
            self.assertRegex(proc.stdout, rf"(?m)^{name}\s+{pid}\s+yes\s+.*\"pong\": true")

        proc = c.script("logs", "n1")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("--name n1", proc.stdout)

        # restart-node: a new pid, same data.
        owner = json.loads(self.assert_ok(self.todo("--json", "locate", "life")))["node"]
        self.assert_ok(self.todo("add", "life", "2026-12-19", "Dentist"))
        proc = c.script("restart-node", owner)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        after = c.pids()
        self.assertNotEqual(after[owner], first[owner])
        self.assertFalse(pid_alive(first[owner]))
        self.assertTrue(pid_alive(after[owner]))
        # No retries: restart-node returns only once the router reaches it.
        self.assertEqual(self.assert_ok(self.todo("--retries", "0", "entries", "life")),
                         "1  2026-12-19  Dentist\n")

        # kill -9 the owner: the router answers `unavailable` once it notices
        # (--down-after-ms, 2 s by default); `up` starts it again, data intact.
        os.kill(after[owner], signal.SIGKILL)
        self.assertTrue(wait_until(lambda: not pid_alive(after[owner]), timeout=10))
        # Until the router notices, a request may time out instead.
        last = wait_until(lambda: (lambda p: p if "todo: unavailable:" in p.stderr else None)(
            self.todo("--retries", "0", "--timeout", "1", "entries", "life")), timeout=20)
        self.assertIsNotNone(last, "the router never answered unavailable for a dead node")
        message = self.assert_error(last, "unavailable")
        self.assertIn(owner, message)
        proc = c.up()
        self.assertNotIn(f"{owner} already running", proc.stdout)
        self.assertIn("r1 already running", proc.stdout)
        after = c.pids()
        self.assertTrue(pid_alive(after[owner]))
        self.assertEqual(self.assert_ok(self.todo("--retries", "0", "entries", "life")),
                         "1  2026-12-19  Dentist\n")

        # down: every process gone, pid files removed.
        all_pids = c.seen_pids | set(after.values())
        proc = c.script("down")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        for pid in all_pids:
            self.assertFalse(pid_alive(pid), f"pid {pid} still alive after down")
        self.assertEqual(os.listdir(os.path.join(c.run_dir, "pids")), [])
        proc = c.script("status")
        self.assertNotEqual(proc.returncode, 0)
        self.assertRegex(proc.stdout, r"(?m)^r1\s+-\s+no")


if __name__ == "__main__":
    _program = unittest.main(exit=False, verbosity=2)
    _result = _program.result
    if not _result.wasSuccessful():
        sys.exit(1)
    if binaries_missing() and _result.skipped:
        print(f"SKIPPED end-to-end tests: {binaries_missing()}", file=sys.stderr)
        sys.exit(77)
    sys.exit(0)
