#!/usr/bin/python3
"""End-to-end tests of the router's HTTP front end (todo-router --http) and
the metrics endpoints, against a real cluster: 2 nodes and a router started
with deploy/cluster on a free port range (http_cluster.py).

- the book's endpoints, byte for byte, and their bad parameters;
- the JSON API: create (201 + Location), list, filter, update, delete,
  owner, bad JSON, bad ids, 404/405/413;
- list names that need percent-encoding (space, '/', '%', unicode), checked
  against what a ZeroMQ client sees;
- keep-alive: many requests on one connection;
- status mapping: 429 (router --max-inflight reached while a node is
  SIGSTOPped), 504 (that node's requests pass --timeout-ms), 503 (a node
  killed, or down);
- /metrics of the router and of a node parse as Prometheus text and move;
- the `stats` op through `todo stats`.

Exits 77 (ctest's skip) if the binaries are missing. Every process started
is stopped by pid in tearDownClass (SIGCONT first), also when a test fails.
"""

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.realpath(__file__)))), "deploy"))
from http_cluster import TODO, HttpCluster, binaries_missing, wait_until  # noqa: E402
from todo_client import TodoClient  # noqa: E402

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
RUN_ID = str(os.getpid())  # list names are unique per run


def quote(name):
    return urllib.parse.quote(name, safe="")


def book_query(**params):
    return urllib.parse.urlencode(params)


# --- Prometheus text -------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_prometheus(text):
    """Parses exposition text strictly enough for these tests: every line is
    a comment (# HELP / # TYPE) or a sample whose family has a TYPE; returns
    ({(name, frozenset(labels)): value}, {family: type})."""
    samples, types = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# "):
            parts = line.split(" ", 3)
            if parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            elif parts[1] != "HELP":
                raise ValueError(f"bad comment line: {line!r}")
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError(f"bad sample line: {line!r}")
        name, labels_text, value = m.groups()
        labels = {}
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = LABEL.match(labels_text, pos)
                if not lm:
                    raise ValueError(f"bad labels in {line!r}")
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        if family not in types:
            raise ValueError(f"sample {name} has no # TYPE line")
        samples[(name, frozenset(labels.items()))] = float(value)
    return samples, types


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def check_histograms(testcase, samples, types):
    """Buckets are cumulative and end with +Inf == _count."""
    for family, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for (name, labels), value in samples.items():
            if name == family + "_bucket":
                rest = frozenset((k, v) for k, v in labels if k != "le")
                le = dict(labels)["le"]
                series.setdefault(rest, []).append((math.inf if le == "+Inf" else float(le), value))
        for rest, buckets in series.items():
            buckets.sort()
            counts = [v for _, v in buckets]
            testcase.assertEqual(counts, sorted(counts), f"{family} {dict(rest)} not cumulative")
            testcase.assertEqual(buckets[-1][0], math.inf)
            testcase.assertEqual(buckets[-1][1], samples[(family + "_count", rest)])


class HttpApiTest(unittest.TestCase):
    cluster = None

    @classmethod
    def setUpClass(cls):
        missing = binaries_missing()
        if missing:
            raise unittest.SkipTest(missing)
        cls.cluster = HttpCluster(nodes=2)
        try:
            cls.cluster.start()
        except Exception:
            cls.cluster.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.cluster:
            cls.cluster.stop()

    def req(self, method, path, body=None, headers=None, **kw):
        return self.cluster.request(method, path, body=body, headers=headers, **kw)

    def json_req(self, method, path, obj=None):
        body = None if obj is None else json.dumps(obj).encode()
        status, headers, data = self.req(method, path, body=body,
                                         headers={"Content-Type": JSON} if body else None)
        self.assertEqual(headers.get("content-type"), JSON, data)
        return status, headers, json.loads(data)

    def assert_json_error(self, status, want_status, body, code, needle=""):
        self.assertEqual(status, want_status, body)
        self.assertEqual(set(body), {"error"})
        self.assertEqual(body["error"]["code"], code)
        self.assertIn(needle, body["error"]["message"])

    def owned_by(self, node, prefix):
        """A list name that `node` owns."""
        for i in range(500):
            name = f"{prefix}-{RUN_ID}-{i}"
            status, _, body = self.json_req("GET", f"/lists/{quote(name)}/owner")
            self.assertEqual(status, 200)
            if body["node"] == node:
                return name
        self.fail(f"no list owned by {node}")

    # --- the book's endpoints ---

    def test_book_endpoints_byte_exact(self):
        lst = f"bob-{RUN_ID}"
        for title in ("Dentist", "Movies"):
            status, headers, body = self.req(
                "POST", "/add_entry?" + book_query(list=lst, date="2026-12-19", title=title))
            self.assertEqual((status, body), (200, b"OK"))
            self.assertEqual(headers["content-type"], TEXT)
        self.req("POST", "/add_entry?" + book_query(list=lst, date="2026-12-20", title="Shopping"))
        status, headers, body = self.req("GET",
                                         "/entries?" + book_query(list=lst, date="2026-12-19"))
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], TEXT)
        self.assertEqual(body, b"2026-12-19 Dentist\n2026-12-19 Movies\n")
        status, _, body = self.req("GET", "/entries?" + book_query(list=lst, date="2026-12-21"))
        self.assertEqual((status, body), (200, b""))

    def test_book_post_without_content_length(self):
        # A POST with neither Content-Length nor a body is answered at once.
        lst = f"raw-{RUN_ID}"
        with socket.create_connection(("127.0.0.1", self.cluster.http_port), timeout=5) as s:
            s.sendall(f"POST /add_entry?list={lst}&date=2026-01-01&title=T HTTP/1.1\r\n"
                      "Host: x\r\n\r\n".encode())
            start = time.monotonic()
            data = b""
            while not data.endswith(b"\r\n\r\nOK"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.assertLess(time.monotonic() - start, 4)
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), data)
        self.assertTrue(data.endswith(b"\r\n\r\nOK"), data)

    def test_book_bad_parameters_are_400_text(self):
        cases = [
            ("GET", "/entries?date=2026-12-19", "missing query parameter 'list'"),
            ("GET", "/entries?list=bob", "missing query parameter 'date'"),
            ("GET", "/entries?list=bob&date=2026-02-29", "'2026-02-29'"),
            ("GET", "/entries?list=bob&date=tomorrow", "YYYY-MM-DD"),
            ("POST", "/add_entry?list=bob&date=2026-12-19", "missing query parameter 'title'"),
            ("POST", "/add_entry?list=bob&title=x", "missing query parameter 'date'"),
            ("POST", "/add_entry?date=2026-12-19&title=x", "missing query parameter 'list'"),
            ("POST", "/add_entry?list=bob&date=2026-13-01&title=x", "calendar date"),
            ("POST", "/add_entry?list=bob&date=2026-12-19&title=", "title must be 1-1024 bytes"),
            ("GET", "/entries?list=&date=2026-12-19", "list name must be 1-255 bytes"),
            # A bad escape is refused, not taken literally (as in the JSON API).
            ("GET", "/entries?list=%zz&date=2026-12-19", "bad percent-escape in query: '%zz'"),
            ("POST", "/add_entry?list=bob&date=2026-12-19&title=%4", "bad percent-escape"),
        ]
        for method, path, needle in cases:
            with self.subTest(path=path):
                status, headers, body = self.req(method, path)
                self.assertEqual(status, 400, body)
                self.assertEqual(headers["content-type"], TEXT)
                self.assertIn(needle, body.decode())
                self.assertTrue(body.endswith(b"\n"))

    # --- the JSON API ---

    def test_json_api_crud(self):
        lst = f"json-{RUN_ID}"
        base = f"/lists/{quote(lst)}/entries"
        status, headers, entry = self.json_req("POST", base,
                                               {"date": "2026-12-19", "title": "Dentist"})
        self.assertEqual(status, 201)
        self.assertEqual(entry, {"id": 1, "date": "2026-12-19", "title": "Dentist"})
        self.assertEqual(headers["location"], f"{base}/1")
        _, _, second = self.json_req("POST", base, {"date": "2026-12-20", "title": "Gym",
                                                    "extra": "ignored"})
        self.assertEqual(second["id"], 2)

        status, _, entries = self.json_req("GET", base)
        self.assertEqual(status, 200)
        self.assertEqual(entries, [entry, second])
        _, _, on_date = self.json_req("GET", base + "?date=2026-12-20")
        self.assertEqual(on_date, [second])

        status, _, updated = self.json_req("PATCH", f"{base}/1", {"title": "Dentist at 9"})
        self.assertEqual((status, updated),
                         (200, {"id": 1, "date": "2026-12-19", "title": "Dentist at 9"}))
        _, _, updated = self.json_req("PATCH", f"{base}/1", {"date": "2026-12-21"})
        self.assertEqual(updated["date"], "2026-12-21")
        status, _, body = self.json_req("PATCH", f"{base}/99", {"title": "x"})
        self.assert_json_error(status, 404, body, "not_found", "99")

        status, _, body = self.json_req("DELETE", f"{base}/2")
        self.assertEqual((status, body), (200, {"deleted": True}))
        status, _, body = self.json_req("DELETE", f"{base}/2")
        self.assertEqual((status, body), (200, {"deleted": False}))
        _, _, entries = self.json_req("GET", base)
        self.assertEqual([e["id"] for e in entries], [1])

        status, _, owner = self.json_req("GET", f"/lists/{quote(lst)}/owner")
        self.assertEqual(status, 200)
        with TodoClient(self.cluster.endpoint, timeout=5) as client:
            self.assertEqual(owner, {"node": client.locate(lst)})
            self.assertEqual(client.entries(lst), entries)

    def test_json_api_bad_requests(self):
        base = f"/lists/bad-{RUN_ID}/entries"
        cases = [
            ("POST", base, b'{"date": "2026-12-19", "title": ', "not valid JSON"),
            ("POST", base, b"[1, 2]", "must be a JSON object, not array"),
            ("POST", base, b'{"date": "2026-12-19"}', "missing field 'title'"),
            ("POST", base, b'{"title": "x"}', "missing field 'date'"),
            ("POST", base, b'{"date": 20261219, "title": "x"}', "field 'date' must be a string"),
            ("POST", base, b'{"date": "2026-02-30", "title": "x"}', "calendar date"),
            ("POST", base, b'{"date": "2026-12-19", "title": ""}', "title must be"),
            ("POST", base, b"", "not valid JSON"),
            ("PATCH", base + "/1", b"{}", "at least one of 'date', 'title'"),
            ("PATCH", base + "/abc", b'{"title": "x"}', "unsigned integer"),
            ("DELETE", base + "/-1", None, "unsigned integer"),
            ("DELETE", base + "/18446744073709551616", None, "unsigned integer"),
            ("GET", base + "?date=2026-1-1", None, "calendar date"),
            ("GET", "/lists/%ZZ/entries", None, "percent-escape"),
            ("GET", "/lists/%FF/entries", None, "UTF-8"),
            ("GET", base + "?date=%zz", None, "bad percent-escape in query"),
            # A number JSON can't hold, even in a key nobody reads: 400, not 500.
            ("POST", base, b'{"date": "2026-12-19", "title": "x", "n": 1e999}',
             "not usable JSON"),
            ("PATCH", base + "/1", b'{"title": "x", "n": [-1e400]}', "not usable JSON"),
        ]
        for method, path, body, needle in cases:
            with self.subTest(method=method, path=path, body=body):
                status, _, data = self.json_req(method, path, None) if body is None else \
                    self._raw_json(method, path, body)
                self.assert_json_error(status, 400, data, "bad_request", needle)

    def _raw_json(self, method, path, body):
        status, headers, data = self.req(method, path, body=body,
                                         headers={"Content-Type": JSON})
        self.assertEqual(headers.get("content-type"), JSON)
        return status, headers, json.loads(data)

    def test_unknown_routes_methods_and_big_bodies(self):
        status, _, body = self.json_req("GET", "/nope")
        self.assert_json_error(status, 404, body, "not_found", "/nope")
        status, _, body = self.json_req("GET", "/lists/x/entries/1/more")
        self.assert_json_error(status, 404, body, "not_found")
        status, headers, body = self.json_req("PUT", "/lists/x/entries")
        self.assert_json_error(status, 405, body, "method_not_allowed")
        self.assertEqual(headers["allow"], "GET, HEAD, POST")
        status, headers, body = self.json_req("GET", "/lists/x/entries/1")
        self.assertEqual((status, headers["allow"]), (405, "PATCH, DELETE"))
        big = json.dumps({"date": "2026-12-19", "title": "x" * 70000}).encode()
        status, _, body = self._raw_json("POST", "/lists/x/entries", big)
        self.assert_json_error(status, 413, body, "payload_too_large")
        # Just under the limit is read (and then refused by the title rule).
        ok = json.dumps({"date": "2026-12-19", "title": "x" * 2000}).encode()
        status, _, body = self._raw_json("POST", "/lists/x/entries", ok)
        self.assert_json_error(status, 400, body, "bad_request", "title must be")

    def test_percent_encoded_list_names(self):
        names = [f"with space {RUN_ID}", f"a/b/{RUN_ID}", f"été ✓ 日本 {RUN_ID}",
                 f"100% {RUN_ID}", f"q?x&y=z#f {RUN_ID}", f"+plus {RUN_ID}"]
        with TodoClient(self.cluster.endpoint, timeout=5) as client:
            for name in names:
                with self.subTest(name=name):
                    path = f"/lists/{quote(name)}/entries"
                    status, headers, entry = self.json_req(
                        "POST", path, {"date": "2026-03-04", "title": name})
                    self.assertEqual(status, 201)
                    self.assertEqual(headers["location"], f"{path}/{entry['id']}")
                    # The name reached the cluster unchanged.
                    self.assertEqual([e["title"] for e in client.entries(name)], [name])
                    status, _, body = self.req(
                        "GET", "/entries?" + book_query(list=name, date="2026-03-04"))
                    self.assertEqual((status, body), (200, f"2026-03-04 {name}\n".encode()))
                    _, _, owner = self.json_req("GET", f"/lists/{quote(name)}/owner")
                    self.assertEqual(owner["node"], client.locate(name))

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        import http.client  # pylint: disable=import-outside-toplevel
        conn = http.client.HTTPConnection("127.0.0.1", self.cluster.http_port, timeout=10)
        lst = f"ka-{RUN_ID}"
        try:
            local = None
            for i in range(30):
                if i % 3 == 0:
                    conn.request("POST", "/add_entry?" + book_query(list=lst, date="2026-05-05",
                                                                    title=f"t{i}"))
                else:
                    conn.request("GET", "/entries?" + book_query(list=lst, date="2026-05-05"))
                resp = conn.getresponse()
                body = resp.read()
                self.assertEqual(resp.status, 200, body)
                self.assertNotEqual((resp.getheader("Connection") or "").lower(), "close")
                name = conn.sock.getsockname()
                if local is None:
                    local = name
                self.assertEqual(name, local, "the server closed the connection")
            self.assertEqual(body.count(b"\n"), 10)
        finally:
            conn.close()

    # --- statuses from the cluster's state ---

    def test_overloaded_429_and_timeout_504(self):
        # A router that allows 2 requests in flight and waits 1.5 s for them.
        self.cluster.restart("r1", router_flags="--timeout-ms 1500 --max-inflight 2")
        n1 = self.cluster.pid("n1")
        try:
            lst = self.owned_by("n1", "stopped")
            path = f"/lists/{quote(lst)}/entries"
            os.kill(n1, signal.SIGSTOP)
            results = []

            def waiting_request():
                start = time.monotonic()
                status, headers, body = self.req("GET", path)
                results.append((status, headers, json.loads(body), time.monotonic() - start))

            threads = [threading.Thread(target=waiting_request) for _ in range(2)]
            for t in threads:
                t.start()

            def inflight():
                samples, _ = parse_prometheus(self.req("GET", "/metrics")[2].decode())
                return sample(samples, "todo_router_inflight") >= 2
            self.assertTrue(wait_until(inflight, timeout=5), "requests did not reach the router")

            status, headers, body = self.json_req("GET", path)
            self.assert_json_error(status, 429, body, "overloaded", "--max-inflight")
            self.assertEqual(headers.get("retry-after"), "1")
            status, headers, text = self.req("GET", "/entries?" + book_query(list=lst,
                                                                             date="2026-01-01"))
            self.assertEqual((status, headers["content-type"]), (429, TEXT))
            self.assertEqual(headers.get("retry-after"), "1")
            self.assertIn(b"--max-inflight", text)

            for t in threads:
                t.join(timeout=15)
                self.assertFalse(t.is_alive())
            for status, _, body, elapsed in results:
                self.assert_json_error(status, 504, body, "timeout", "1500 ms")
                self.assertGreaterEqual(elapsed, 1.4)

            # Still silent: the router marks n1 down (--down-after-ms 2000): 503.
            def unavailable():
                return self.json_req("GET", path)[0] == 503
            self.assertTrue(wait_until(unavailable, timeout=10))
            status, _, body = self.json_req("GET", path)
            self.assert_json_error(status, 503, body, "unavailable", "n1")
        finally:
            os.kill(n1, signal.SIGCONT)
            self.cluster.restart("r1")

    def test_killed_node_gives_503_and_health_shows_it(self):
        lst = self.owned_by("n2", "killed")
        path = f"/lists/{quote(lst)}/entries"
        n2 = self.cluster.pid("n2")
        try:
            os.kill(n2, signal.SIGKILL)

            def unavailable():
                return self.json_req("GET", path)[0] == 503
            self.assertTrue(wait_until(unavailable, timeout=10))
            status, _, body = self.json_req("GET", path)
            self.assert_json_error(status, 503, body, "unavailable", "n2")
            status, headers, text = self.req("GET", "/entries?" + book_query(list=lst,
                                                                             date="2026-01-01"))
            self.assertEqual((status, headers["content-type"]), (503, TEXT))
            self.assertIn(b"n2", text)

            def n2_down():
                status, _, health = self.json_req("GET", "/health")
                return status == 200 and health["nodes"] == {"n1": "up", "n2": "down"}
            self.assertTrue(wait_until(n2_down, timeout=10))
        finally:
            self.cluster.restart("n2")
        status, _, body = self.json_req("GET", path)
        self.assertEqual((status, body), (200, []))

    # --- metrics and stats ---

    def test_health(self):
        status, _, body = self.json_req("GET", "/health")
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "serving")
        self.assertEqual(body["role"], "router")
        self.assertEqual(body["name"], "r1")
        self.assertEqual(set(body["nodes"]), {"n1", "n2"})
        port = self.cluster.metrics_port(1)
        status, _, data = self.req("GET", "/health", port=port)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(data), {"status": "serving", "role": "node", "name": "n1"})

    def test_router_metrics_parse_and_move(self):
        status, headers, data = self.req("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        samples, types = parse_prometheus(data.decode())
        check_histograms(self, samples, types)
        for family in ("todo_router_requests_total", "todo_router_request_duration_seconds",
                       "todo_router_node_up", "todo_router_timeouts_total",
                       "todo_router_late_replies_dropped_total", "todo_http_requests_total",
                       "todo_router_inflight", "todo_router_forwarded_replies_total"):
            self.assertIn(family, types)
        self.assertEqual(types["todo_router_request_duration_seconds"], "histogram")
        self.assertEqual(sample(samples, "todo_router_node_up", node="n1",
                                endpoint=f"tcp://127.0.0.1:{self.cluster.base + 1}"), 1)
        before_http = sample(samples, "todo_http_requests_total", route="book_entries",
                             status="200")
        before_ops = sample(samples, "todo_router_requests_total", op="entries")
        lst = f"metrics-{RUN_ID}"
        for _ in range(3):
            self.assertEqual(self.req("GET", "/entries?" + book_query(list=lst,
                                                                       date="2026-01-01"))[0], 200)

        def moved():
            s, _ = parse_prometheus(self.req("GET", "/metrics")[2].decode())
            return (sample(s, "todo_http_requests_total", route="book_entries", status="200") >=
                    before_http + 3 and
                    sample(s, "todo_router_requests_total", op="entries") >= before_ops + 3 and s)
        after = wait_until(moved, timeout=5)
        self.assertTrue(after, "counters did not move")
        self.assertGreaterEqual(
            sample(after, "todo_router_request_duration_seconds_count", op="entries"), 3)
        self.assertGreaterEqual(
            sample(after, "todo_router_forwarded_replies_total", op="entries", code="ok"), 3)

    def test_node_metrics_parse_and_move(self):
        lst = self.owned_by("n1", "node-metrics")
        port = self.cluster.metrics_port(1)
        status, headers, data = self.req("GET", "/metrics", port=port)
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        samples, types = parse_prometheus(data.decode())
        check_histograms(self, samples, types)
        for family in ("todo_node_requests_total", "todo_node_request_duration_seconds",
                       "todo_node_live_actors", "todo_node_actors_loaded_total",
                       "todo_node_actors_evicted_total", "todo_node_mailbox_depth_sum",
                       "todo_node_mailbox_depth_max", "todo_node_writer_queue_depth",
                       "todo_node_group_commit_size", "todo_node_write_duration_seconds"):
            self.assertIn(family, types)
        before = sample(samples, "todo_node_requests_total", op="add_entry", code="ok")
        commits_before = sum(v for (n, _), v in samples.items()
                             if n == "todo_node_group_commit_size_count")
        for i in range(4):
            self.assertEqual(self.req("POST", "/add_entry?" + book_query(
                list=lst, date="2026-01-01", title=f"t{i}"))[0], 200)

        def moved():
            s, _ = parse_prometheus(self.req("GET", "/metrics", port=port)[2].decode())
            return sample(s, "todo_node_requests_total", op="add_entry",
                          code="ok") >= before + 4 and s
        after = wait_until(moved, timeout=5)
        self.assertTrue(after, "node counters did not move")
        self.assertGreaterEqual(sample(after, "todo_node_live_actors"), 1)
        self.assertGreaterEqual(
            sample(after, "todo_node_request_duration_seconds_count", op="add_entry"), 4)
        commits = sum(v for (n, _), v in after.items() if n == "todo_node_group_commit_size_count")
        self.assertGreater(commits, commits_before)

    def test_stats_op_via_todo_cli(self):
        def stats(endpoint):
            out = subprocess.run([TODO, "--endpoint", endpoint, "stats", "--json"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
            return json.loads(out)
        router = stats(self.cluster.endpoint)
        self.assertEqual((router["role"], router["name"]), ("router", "r1"))
        self.assertEqual(router["nodes"], {"n1": "up", "n2": "up"})
        for key in ("requests", "own_replies", "forwarded", "timeouts", "late_replies_dropped",
                    "forwarded_replies", "latency", "inflight"):
            self.assertIn(key, router)
        lst = f"stats-{RUN_ID}"
        self.req("POST", "/add_entry?" + book_query(list=lst, date="2026-01-01", title="x"))
        again = stats(self.cluster.endpoint)
        self.assertGreaterEqual(again["requests"]["add_entry"], router["requests"]["add_entry"] + 1)
        self.assertGreaterEqual(again["requests"]["stats"], 2)

        node = stats(f"tcp://127.0.0.1:{self.cluster.base + 1}")
        self.assertEqual((node["role"], node["name"]), ("node", "n1"))
        for key in ("live_actors", "actors_loaded", "actors_evicted", "mailbox_depth_sum",
                    "mailbox_depth_max", "shards", "requests", "latency", "replies_sent"):
            self.assertIn(key, node)
        # A new data dir gets half the cores' shards, at least 1 (at most 16).
        self.assertEqual(len(node["shards"]), max(1, min(16, (os.cpu_count() or 1) // 2)))
        self.assertIn("queue_depth", node["shards"][0])
        text = subprocess.run([TODO, "--endpoint", self.cluster.endpoint, "stats"],
                              capture_output=True, text=True, timeout=30, check=True).stdout
        self.assertRegex(text, r"(?m)^role\s+router$")
        self.assertRegex(text, r"(?m)^requests\.add_entry\s+\d+$")


def main():
    if binaries_missing():
        print(f"SKIP: {binaries_missing()}")
        return 77
    result = unittest.main(exit=False, verbosity=2).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
