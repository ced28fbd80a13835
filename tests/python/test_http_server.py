#!/usr/bin/python3
"""The router's event-driven HTTP server under many, slow and bad clients
(raw sockets), against a real cluster (deploy/cluster: 2 nodes and a router
with --http on a free port range, http_cluster.py).

- 10,000 idle keep-alive connections held at once (each made one request):
  the router's RSS stays under a bound (printed), and a fresh request is
  answered meanwhile;
- 1,000 connections trickling their headers and 1,000 trickling their
  bodies, at once: a fresh request is answered meanwhile (its latency
  printed, not judged), and the header and body deadlines close them all;
- bad input, each on its own connection, and after each a fresh request is
  still answered: malformed request lines, a huge header (431), a body over
  the limit (413), bad chunking, a body longer than declared, a request in
  one-byte writes, a client that pipelines and never reads its answers;
- what the library gives: pipelining in order, chunked bodies,
  Expect: 100-continue, HTTP/1.0, HEAD; 429 past --http-max-pipeline; 503
  and a log line past --http-max-connections.

The router runs with shorter deadlines than the defaults
(--http-header-timeout-ms 3000 --http-body-timeout-ms 3000
--http-send-timeout-ms 3000) so the test is quick. Every wait is bounded;
every process is stopped by pid. Exits 77 (ctest's skip) if the binaries
are missing.
"""

import json
import os
import resource
import selectors
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from http_cluster import HttpCluster, binaries_missing, wait_until  # noqa: E402

RUN_ID = str(os.getpid())
ROUTER_FLAGS = ("--http-header-timeout-ms 3000 --http-body-timeout-ms 3000 "
                "--http-send-timeout-ms 3000")
IDLE_CONNECTIONS = 10000
SLOW_CONNECTIONS = 1000
# The router's RSS with 10,000 idle connections, at most (it is printed; a
# connection costs a few hundred bytes of the router's memory).
IDLE_RSS_BOUND_MIB = 96


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def read_response(sock, timeout=10.0):
    """Reads one HTTP/1.1 response with a Content-Length (or a 1xx):
    (status, {lower-case header: value}, body); None if the connection
    closed first."""
    deadline = time.monotonic() + timeout
    data = getattr(sock, "_pending", b"")
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            return None
        rest += chunk
    sock._pending = rest[length:]  # pylint: disable=protected-access
    return status, headers, rest[:length]


def closed_by_peer(sock, timeout=10.0):
    """True if the peer closes within `timeout` (reading and dropping data)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
    return False


class Sock(socket.socket):
    """A socket that can carry unread response bytes between reads."""
    _pending = b""


class HttpServerTest(unittest.TestCase):
    cluster = None

    @classmethod
    def setUpClass(cls):
        missing = binaries_missing()
        if missing:
            raise unittest.SkipTest(missing)
        cls.nofile = raise_nofile()
        cls.cluster = HttpCluster(nodes=2, router_flags=ROUTER_FLAGS)
        try:
            cls.cluster.start()
        except Exception:
            cls.cluster.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.cluster:
            cls.cluster.stop()

    def connect(self):
        s = Sock(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(("127.0.0.1", self.cluster.http_port))
        return s

    def fresh_request(self):
        """A new connection's GET /entries: (status, seconds)."""
        start = time.monotonic()
        with self.connect() as s:
            s.sendall(f"GET /entries?list=fresh-{RUN_ID}&date=2026-12-19 HTTP/1.1\r\n"
                      "Host: t\r\n\r\n".encode())
            r = read_response(s)
        return (r[0] if r else None), time.monotonic() - start

    def assert_fresh_request_answered(self, what):
        status, seconds = self.fresh_request()
        print(f"{what}: a fresh request answered {status} in {seconds * 1000:.1f} ms", flush=True)
        self.assertEqual(status, 200)

    def metric(self, sample_name):
        status, _, text = self.cluster.request("GET", "/metrics")
        self.assertEqual(status, 200)
        for line in text.decode().splitlines():
            if line.startswith(sample_name + " "):
                return float(line.split()[-1])
        self.fail(f"no sample {sample_name}")
        return None

    def router_pid(self):
        return self.cluster.pid("r1")

    # --- many connections ---

    def test_10000_idle_keep_alive_connections(self):
        if self.nofile < IDLE_CONNECTIONS + 200:
            self.fail(f"RLIMIT_NOFILE hard limit {self.nofile} is too low for "
                      f"{IDLE_CONNECTIONS} connections")
        pid = self.router_pid()
        before = rss_mib(pid)
        socks = []
        try:
            request = f"GET /entries?list=idle-{RUN_ID}&date=2026-12-19 HTTP/1.1\r\nHost: t\r\n\r\n"
            for _ in range(IDLE_CONNECTIONS):
                s = Sock(socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(("127.0.0.1", self.cluster.http_port))
                s.sendall(request.encode())
                socks.append(s)
            answered = 0
            for s in socks:
                r = read_response(s, timeout=30)
                answered += 1 if r and r[0] == 200 else 0
            self.assertEqual(answered, IDLE_CONNECTIONS)
            held = rss_mib(pid)
            print(f"router RSS: {before:.1f} MiB before, {held:.1f} MiB with "
                  f"{IDLE_CONNECTIONS} idle keep-alive connections "
                  f"({(held - before) * 1024 * 1024 / IDLE_CONNECTIONS:.0f} bytes each); "
                  f"bound {IDLE_RSS_BOUND_MIB} MiB", flush=True)
            self.assertLess(held, IDLE_RSS_BOUND_MIB)
            self.assert_fresh_request_answered(f"{IDLE_CONNECTIONS} idle connections")
            # They are still open: each answers another request.
            for s in socks[:: IDLE_CONNECTIONS // 20]:
                s.sendall(request.encode())
                self.assertEqual(read_response(s)[0], 200)
        finally:
            for s in socks:
                s.close()

    def trickle(self, socks, payload_of, seconds, interval=0.5):
        """Sends one more byte of payload_of(i) on each socket every
        `interval` for `seconds`, checking a fresh request midway; returns
        how many the server had closed by the end."""
        sent = [0] * len(socks)
        closed = set()
        end = time.monotonic() + seconds
        checked = False
        while time.monotonic() < end:
            for i, s in enumerate(socks):
                if i in closed:
                    continue
                payload = payload_of(i)
                if sent[i] < len(payload):
                    try:
                        s.send(payload[sent[i]:sent[i] + 1])
                        sent[i] += 1
                    except OSError:
                        closed.add(i)
            if not checked and time.monotonic() > end - seconds / 2:
                checked = True
                self.assert_fresh_request_answered(f"{len(socks)} trickling connections")
            time.sleep(interval)
        return closed

    def closed_count(self, socks, timeout):
        """How many of `socks` the server closes within `timeout`."""
        sel = selectors.DefaultSelector()
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        closed = 0
        deadline = time.monotonic() + timeout
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    data = b""
                if data == b"":
                    closed += 1
                    sel.unregister(key.fileobj)
        sel.close()
        return closed

    def test_1000_slow_header_and_1000_slow_body_connections(self):
        # At once: 1,000 connections trickle a request header, 1,000 others
        # have sent a header and trickle the body, one byte each every 0.5 s.
        header = (f"GET /entries?list=slow-{RUN_ID}&date=2026-12-19 HTTP/1.1\r\n"
                  "Host: t\r\nX-Padding: " + "x" * 200 + "\r\n\r\n").encode()
        body = json.dumps({"date": "2026-12-19", "title": "slow " + "y" * 100}).encode()
        head = (f"POST /lists/slowbody-{RUN_ID}/entries HTTP/1.1\r\nHost: t\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        before = self.metric('todo_http_deadline_closes_total{deadline="header"}')
        before_body = self.metric('todo_http_deadline_closes_total{deadline="body"}')
        slow_headers = [self.connect() for _ in range(SLOW_CONNECTIONS)]
        slow_bodies = [self.connect() for _ in range(SLOW_CONNECTIONS)]
        socks = slow_headers + slow_bodies
        try:
            for s in slow_bodies:
                s.sendall(head)
            self.trickle(socks, lambda i: header if i < SLOW_CONNECTIONS else body, seconds=2.0)
            # --http-header-timeout-ms 3000 and --http-body-timeout-ms 3000:
            # every trickler is closed.
            closed = self.closed_count(socks, timeout=10)
            print(f"{closed} of {len(socks)} tricklers closed by the header and body deadlines",
                  flush=True)
            self.assertEqual(closed, len(socks))
            self.assert_fresh_request_answered("after the tricklers")
            self.assertGreaterEqual(
                self.metric('todo_http_deadline_closes_total{deadline="header"}') - before,
                SLOW_CONNECTIONS)
            self.assertGreaterEqual(
                self.metric('todo_http_deadline_closes_total{deadline="body"}') - before_body,
                SLOW_CONNECTIONS)
        finally:
            for s in socks:
                s.close()

    # --- bad input ---

    def exchange(self, raw, timeout=10):
        """Sends `raw` on a new connection; (first response or None, closed after it)."""
        with self.connect() as s:
            s.sendall(raw)
            r = read_response(s, timeout)
            return r, closed_by_peer(s, timeout)

    def assert_rejected(self, raw, status, needle=None):
        r, closed = self.exchange(raw)
        self.assertIsNotNone(r, "no answer")
        self.assertEqual(r[0], status, r)
        self.assertEqual(r[1].get("connection"), "close")
        if needle:
            self.assertIn(needle, r[2].decode())
        self.assertTrue(closed, "the connection stayed open")
        self.assert_fresh_request_answered(f"after a {status}")

    def test_malformed_request_lines(self):
        for raw in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                    b"GET /entries HTTP/1.1\nHost: x\r\n\r\n", b"\x00\x01\x02 / HTTP/1.1\r\n\r\n",
                    b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"):
            with self.subTest(raw=raw):
                self.assert_rejected(raw, 400, "malformed HTTP request")

    def test_huge_header_is_431(self):
        raw = (b"GET /entries?list=a&date=2026-12-19 HTTP/1.1\r\nHost: t\r\nX-Big: " +
               b"z" * 20000 + b"\r\n\r\n")
        self.assert_rejected(raw, 431, "header is larger than 16384 bytes")

    def test_body_over_limit_is_413(self):
        raw = (b"POST /lists/big/entries HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n" +
               b"{" * 70000)
        self.assert_rejected(raw, 413, "payload_too_large")
        chunked = (b"POST /lists/big/entries HTTP/1.1\r\nHost: t\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" +
                   (b"8000\r\n" + b"a" * 0x8000 + b"\r\n") * 3 + b"0\r\n\r\n")
        self.assert_rejected(chunked, 413, "payload_too_large")

    def test_bad_chunking_is_400(self):
        for chunks in (b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcdef\r\n0\r\n\r\n",
                       b"-1\r\nabc\r\n0\r\n\r\n"):
            with self.subTest(chunks=chunks):
                raw = (b"POST /lists/c/entries HTTP/1.1\r\nHost: t\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
                self.assert_rejected(raw, 400, "malformed HTTP request")

    def test_body_longer_than_declared(self):
        body = json.dumps({"date": "2026-12-19", "title": "declared"}).encode()
        raw = (f"POST /lists/longer-{RUN_ID}/entries HTTP/1.1\r\nHost: t\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body + b"trailing junk\r\n\r\n"
        with self.connect() as s:
            s.sendall(raw)
            first = read_response(s)
            self.assertEqual(first[0], 201, first)  # the declared body is the request
            second = read_response(s)  # the rest is read as a request: malformed
            self.assertEqual(second[0], 400, second)
            self.assertTrue(closed_by_peer(s))
        self.assert_fresh_request_answered("after a body longer than declared")

    def test_one_byte_writes(self):
        raw = (f"POST /add_entry?list=bytes-{RUN_ID}&date=2026-12-19&title=Dentist HTTP/1.1\r\n"
               "Host: t\r\nContent-Length: 0\r\n\r\n").encode()
        with self.connect() as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for b in raw:
                s.send(bytes([b]))
                time.sleep(0.002)
            r = read_response(s)
        self.assertEqual((r[0], r[2]), (200, b"OK"))

    def test_many_clients_that_never_read_large_answers(self):
        """Each connection alone is bounded (256 KiB of unread answers stops
        its reading), but its pipelined requests were all parsed before the
        first answer came: without a bound in all, many such clients of a
        big list grew the router by ~275 KiB each (1.5 GB for 4,000). Past
        --http-max-unsent-mb, large answers are 429 overloaded instead."""
        budget_mib = 8
        self.cluster.restart("r1", router_flags=ROUTER_FLAGS + f" --http-max-unsent-mb {budget_mib}")
        try:
            name = f"big-{RUN_ID}"
            title = "x" * 1000
            with self.connect() as s:
                for i in range(300):
                    body = json.dumps({"date": "2026-12-19", "title": f"{i} {title}"}).encode()
                    s.sendall(f"POST /lists/{name}/entries HTTP/1.1\r\nHost: t\r\n"
                              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                    self.assertEqual(read_response(s)[0], 201)
            status, _, big = self.cluster.request("GET", f"/lists/{name}/entries")
            self.assertEqual(status, 200)
            self.assertGreater(len(big), 300_000)
            pid = self.router_pid()
            before = rss_mib(pid)
            request = f"GET /lists/{name}/entries HTTP/1.1\r\nHost: t\r\n\r\n".encode() * 16
            socks = []
            try:
                for _ in range(200):
                    s = self.connect()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.sendall(request)
                    socks.append(s)
                # Every request is answered or refused; then nothing moves.
                self.assertTrue(wait_until(
                    lambda: self.metric("todo_http_awaiting") <= 1, timeout=30))  # itself
                refused = self.metric('todo_http_rejected_total{reason="unsent_budget"}')
                unsent = self.metric("todo_http_unsent_bytes")
                grown = rss_mib(pid)
                print(f"200 clients x 16 reads of a {len(big) // 1024} KiB list, never read: "
                      f"{refused:.0f} answers refused, {unsent / 2**20:.1f} MiB unsent, router "
                      f"RSS {before:.1f} -> {grown:.1f} MiB", flush=True)
                self.assertGreater(refused, 0)
                # The budget, plus one answer past it, plus the small 429s.
                self.assertLess(unsent, (budget_mib << 20) + 2 * len(big) + 3200 * 1024)
                self.assertLess(grown - before, budget_mib + 64)
                self.assert_fresh_request_answered("beside 200 clients that never read")
            finally:
                for s in socks:
                    s.close()
            # Their answers leave with them: the count goes back to 0.
            self.assertTrue(wait_until(lambda: self.metric("todo_http_unsent_bytes") == 0, timeout=10))
            status, _, again = self.cluster.request("GET", f"/lists/{name}/entries")
            self.assertEqual((status, len(again)), (200, len(big)))
        finally:
            self.cluster.restart("r1", router_flags=ROUTER_FLAGS)

    def test_client_that_never_reads(self):
        pid = self.router_pid()
        before = rss_mib(pid)
        s = self.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        request = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
        sent = 0
        end = time.monotonic() + 3
        while time.monotonic() < end:
            try:
                sent += s.send(request * 100)
            except BlockingIOError:
                time.sleep(0.01)  # the router stopped reading: back-pressure
        grown = rss_mib(pid)
        print(f"a client that never reads: sent {sent // len(request)} requests; router RSS "
              f"{before:.1f} -> {grown:.1f} MiB", flush=True)
        self.assertLess(grown - before, 64)
        self.assert_fresh_request_answered("beside a client that never reads")
        # --http-send-timeout-ms 3000: the router gives up on it.
        s.setblocking(True)
        self.assertTrue(wait_until(lambda: self._peer_closed_without_reading(s), timeout=15))
        s.close()

    @staticmethod
    def _peer_closed_without_reading(s):
        # A closed peer makes our sends fail (RST) once its close arrives.
        try:
            s.settimeout(0.2)
            s.send(b"x")
            return False
        except (BrokenPipeError, ConnectionResetError):
            return True
        except socket.timeout:
            return False

    # --- what the library gives ---

    def test_pipelining_in_order(self):
        lst = f"pipe-{RUN_ID}"
        raw = b"".join(
            f"POST /add_entry?list={lst}&date=2026-12-19&title=t{i} HTTP/1.1\r\nHost: t\r\n"
            f"Content-Length: 0\r\n\r\n".encode() for i in range(5))
        raw += f"GET /entries?list={lst}&date=2026-12-19 HTTP/1.1\r\nHost: t\r\n\r\n".encode()
        with self.connect() as s:
            s.sendall(raw)
            answers = [read_response(s) for _ in range(6)]
        self.assertEqual([a[0] for a in answers], [200] * 6)
        self.assertEqual(answers[-1][2].decode().splitlines(),
                         [f"2026-12-19 t{i}" for i in range(5)])

    def test_pipelining_past_the_bound_is_429(self):
        # 50 requests in one write: 16 (--http-max-pipeline) go to the
        # router at once; the ones parsed while 16 await answers get 429.
        raw = (f"GET /lists/p429-{RUN_ID}/entries HTTP/1.1\r\nHost: t\r\n\r\n" * 50).encode()
        with self.connect() as s:
            s.sendall(raw)
            answers = [read_response(s) for _ in range(50)]
        statuses = [a[0] for a in answers]
        self.assertEqual(statuses[:16], [200] * 16)
        self.assertIn(429, statuses)
        for a in answers:
            if a[0] == 429:
                self.assertEqual(a[1].get("retry-after"), "1")
                self.assertEqual(json.loads(a[2])["error"]["code"], "overloaded")
        self.assertEqual(set(statuses), {200, 429})

    def test_chunked_body_and_expect_continue(self):
        body = json.dumps({"date": "2026-12-19", "title": "chunked"}).encode()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                          for i in range(0, len(body), 7)) + b"0\r\n\r\n"
        with self.connect() as s:
            s.sendall(f"POST /lists/chunk-{RUN_ID}/entries HTTP/1.1\r\nHost: t\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n".encode() + chunks)
            r = read_response(s)
            self.assertEqual(r[0], 201, r)
            self.assertEqual(json.loads(r[2])["title"], "chunked")
            # Expect: 100-continue: the interim answer comes before the body.
            s.sendall(f"POST /lists/chunk-{RUN_ID}/entries HTTP/1.1\r\nHost: t\r\n"
                      f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            interim = read_response(s)
            self.assertEqual(interim[0], 100)
            s.sendall(body)
            r = read_response(s)
            self.assertEqual((r[0], json.loads(r[2])["id"]), (201, 2))

    def test_http10_and_head(self):
        with self.connect() as s:
            s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            r = read_response(s)
            self.assertEqual(r[0], 200)
            self.assertEqual(r[1].get("connection"), "close")
            self.assertTrue(closed_by_peer(s))
        with self.connect() as s:
            s.sendall(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                      b"HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n")
            r = read_response(s)
            self.assertEqual((r[0], r[1].get("connection")), (200, "keep-alive"))
            length = int(r[1]["content-length"])
            # HEAD: the same headers, no body (read_response would wait for it).
            data = getattr(s, "_pending", b"")
            while b"\r\n\r\n" not in data:
                data += s.recv(4096)
            head, rest = data.split(b"\r\n\r\n", 1)
            self.assertIn(b"200 OK", head)
            self.assertIn(f"Content-Length: {length}".encode(), head)
            self.assertEqual(rest, b"")

    def test_max_connections_refuses_at_once(self):
        self.cluster.restart("r1", router_flags=ROUTER_FLAGS + " --http-max-connections 50")
        socks = []
        try:
            for _ in range(50):
                socks.append(self.connect())
                socks[-1].sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            for s in socks:
                self.assertEqual(read_response(s)[0], 200)
            start = time.monotonic()
            r, closed = self.exchange(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            print(f"past --http-max-connections: {r[0] if r else None} in "
                  f"{(time.monotonic() - start) * 1000:.1f} ms", flush=True)
            self.assertEqual(r[0], 503)
            self.assertEqual(r[1].get("retry-after"), "1")
            self.assertTrue(closed)
            self.assertTrue(wait_until(lambda: "refused 1 connection(s)" in
                                       self.cluster.log("r1"), timeout=5))
            # Those refused within the next 10 s are logged when the period
            # ends, even with no refusal after them.
            for _ in range(3):
                r, closed = self.exchange(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
                self.assertEqual(r[0], 503)
            self.assertTrue(wait_until(lambda: "refused 3 connection(s)" in
                                       self.cluster.log("r1"), timeout=15))
            socks.pop().close()
            self.assertTrue(wait_until(lambda: self.fresh_request()[0] == 200, timeout=5))
        finally:
            for s in socks:
                s.close()
            self.cluster.restart("r1", router_flags=ROUTER_FLAGS)


def main():
    if binaries_missing():
        print(f"SKIP: {binaries_missing()}")
        return 77
    result = unittest.main(exit=False, verbosity=2).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
