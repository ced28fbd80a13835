#!/usr/bin/python3
"""End-to-end tests of CurveZMQ: todo-keygen, todo-node and todo-router with
--curve-secret/--curve-allow, and the Python client and `todo` CLI with keys.

One cluster for the whole file: node n1 (CURVE server; allows only the
router's key) and a router (CURVE server to clients, allowing only client c1;
CURVE client to n1 with the node's key from the cluster file). Then:

- an allowed client works end to end (through the router to the node), and
  its socket reports ZMQ_MECHANISM == CURVE;
- a client with an unknown key gets nothing, and the router logs the ZAP
  refusal naming that key; a plaintext client gets nothing;
- a client connecting straight to the node with a non-router key is refused
  (logged by the node), while the router's key is let in: a node accepts
  only its routers;
- bad flags and key files stop a process at startup with exit 2 and a message
  naming the flag or file; an open secret file is warned about.

"Gets nothing" is checked with a bounded wait (NO_REPLY_WAIT) after the
allowed client has been answered in the same way, and backed by the log line
of the refusal where there is one (a plaintext peer fails the handshake
before ZAP, so it leaves none). Every process is started here and stopped by
pid; exit 77 (skipped) if the binaries are missing.
"""

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack
import zmq

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
DEPLOY = os.path.join(REPO, "deploy")
sys.path.insert(0, DEPLOY)
from todo_client import (TodoClient, TodoError, key_or_file, load_keypair,  # noqa: E402  pylint: disable=wrong-import-position
                         read_key_file)

BUILD_DIR = os.path.abspath(os.environ.get("TODO_BUILD_DIR", os.path.join(REPO, "build")))
NODE_BIN = os.path.join(BUILD_DIR, "node", "todo-node")
ROUTER_BIN = os.path.join(BUILD_DIR, "router", "todo-router")
KEYGEN_BIN = os.path.join(BUILD_DIR, "router", "todo-keygen")
BENCH_BIN = os.path.join(BUILD_DIR, "tests", "bench", "todo-bench")
TODO = os.path.join(DEPLOY, "todo")
CMD_TIMEOUT = 30        # seconds; bounds every command run to completion
START_TIMEOUT = 15      # seconds for a process to log that it listens
NO_REPLY_WAIT = 1.5     # seconds a refused client waits for the reply that must not come
LOG_WAIT = 5            # seconds for a log line to appear


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.02)


def run(args, env=None):
    return subprocess.run(args, capture_output=True, text=True, timeout=CMD_TIMEOUT, env=env,
                          check=False)


class Process:
    """A started binary with its stderr in a log file; stopped by pid."""

    def __init__(self, args, log_path):
        self.log_path = log_path
        self._log = open(log_path, "w")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)  # pylint: disable=consider-using-with

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_log(self, text, timeout=LOG_WAIT):
        """True once `text` is in the log; False after `timeout` s or when the
        process has exited without writing it."""
        wait_until(lambda: text in self.log() or self.proc.poll() is not None, timeout)
        return text in self.log()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        return self.proc.returncode


def keygen(prefix):
    r = run([KEYGEN_BIN, "--out", prefix])
    if r.returncode != 0:
        raise RuntimeError(f"todo-keygen --out {prefix}: {r.stderr}")
    return r.stdout.strip()


def ping_with(endpoint, server_key=None, keypair=None, wait=NO_REPLY_WAIT):
    """Sends one ping on a fresh DEALER (CURVE if keys are given); returns
    (reply map or None after `wait` s, the socket's ZMQ_MECHANISM)."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    try:
        if server_key is not None:
            s.curve_serverkey = server_key.encode()
            s.curve_publickey = keypair[0].encode()
            s.curve_secretkey = keypair[1].encode()
        mechanism = s.getsockopt(zmq.MECHANISM)
        s.connect(endpoint)
        s.send(msgpack.packb({"op": "ping", "id": 7}))
        if not s.poll(int(wait * 1000)):
            return None, mechanism
        return msgpack.unpackb(s.recv(), raw=False), mechanism
    finally:
        s.close(linger=0)


class CurveClusterTest(unittest.TestCase):
    dir = None
    node = None
    router = None

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="todo-curve-test-")
        cls.key = {}
        for name in ("n1", "r1", "c1", "stranger"):
            prefix = os.path.join(cls.dir, name)
            public = keygen(prefix)
            cls.key[name] = (public, read_key_file(prefix + ".key"))
        cls.node_ep = f"tcp://127.0.0.1:{free_port()}"
        cls.router_ep = f"tcp://127.0.0.1:{free_port()}"
        cls.cluster = os.path.join(cls.dir, "cluster.conf")
        with open(cls.cluster, "w", encoding="ascii") as f:
            f.write("# node NAME ENDPOINT SERVER_KEY\n"
                    f"node n1 {cls.node_ep} {cls.key['n1'][0]}  # n1.pub\n")
        cls.node = Process([NODE_BIN, "--name", "n1", "--listen", cls.node_ep, "--data",
                            os.path.join(cls.dir, "data-n1"), "--no-sync",
                            "--curve-secret", cls.path("n1.key"),
                            "--curve-allow", cls.path("r1.pub")],
                           cls.path("n1.log"))
        cls.router = Process([ROUTER_BIN, "--listen", cls.router_ep, "--name", "r1",
                              "--cluster", cls.cluster,
                              "--curve-secret", cls.path("r1.key"),
                              "--curve-allow", cls.path("c1.pub")],
                             cls.path("r1.log"))
        for p in (cls.node, cls.router):
            if not p.wait_log("listening on", START_TIMEOUT):
                raise RuntimeError(f"{p.log_path} never said 'listening on':\n{p.log()}")

    @classmethod
    def tearDownClass(cls):
        for p in (cls.router, cls.node):
            if p is not None:
                p.stop()
        if cls.dir:
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    def client(self, name="c1", server="r1", endpoint=None, timeout=5.0):
        return TodoClient(endpoint or self.router_ep, timeout=timeout, retries=0,
                          curve_serverkey=self.key[server][0],
                          curve_publickey=self.key[name][0], curve_secretkey=self.key[name][1],
                          context=zmq.Context.instance())

    # --- the processes say they run CURVE ---

    def test_both_log_that_they_run_curve(self):
        self.assertIn(f"security: CURVE: public key {self.key['n1'][0]}, 1 client key allowed",
                      self.node.log())
        self.assertIn(f"security: CURVE: public key {self.key['r1'][0]}, 1 client key allowed",
                      self.router.log())

    # --- allowed ---

    def test_allowed_client_works_end_to_end(self):
        with self.client() as c:
            self.assertEqual(c._sock.getsockopt(zmq.MECHANISM), zmq.CURVE)  # pylint: disable=protected-access
            pong = c.ping()
            self.assertEqual((pong["role"], pong["name"]), ("router", "r1"))
            self.assertEqual(c.locate("curve-list"), "n1")
            # Forwarded to the node over the router's CURVE connection.
            first = c.add_entry("curve-list", "2026-12-19", "Dentist")
            second = c.add_entry("curve-list", "2026-12-20", "Shopping")
            self.assertEqual(second, first + 1)
            titles = [e["title"] for e in c.entries("curve-list")]
            self.assertEqual(titles[-2:], ["Dentist", "Shopping"])

    def test_todo_cli_with_key_files(self):
        base = [TODO, "--endpoint", self.router_ep, "--timeout", "5", "--retries", "0",
                "--curve-server-key", self.path("r1.pub"), "--curve-key", self.path("c1")]
        r = run(base + ["add", "cli-list", "2026-01-02", "Call", "Bob"])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(base + ["--json", "entries", "cli-list"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Call Bob", r.stdout)
        # The server key inline (with '=': a Z85 key may start with '-'), the
        # client key from the environment.
        env = dict(os.environ, TODO_CURVE_KEY=self.path("c1.key"))
        r = run([TODO, "--endpoint", self.router_ep, "--curve-server-key=" + self.key["r1"][0],
                 "ping"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("pong from router r1", r.stdout)
        # Half the keys is a usage error.
        r = run([TODO, "--endpoint", self.router_ep, "--curve-key", self.path("c1"), "ping"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("needs both --curve-server-key and --curve-key", r.stderr)

    def test_bench_with_keys(self):
        if not os.access(BENCH_BIN, os.X_OK):
            self.skipTest(f"{BENCH_BIN} not built")
        base = [BENCH_BIN, "--endpoint", self.router_ep, "--connections", "2", "--window", "4",
                "--lists", "20", "--duration", "0.3", "--warmup", "0.1", "--connect-timeout", "2",
                "--list-prefix", "bench-curve-"]
        r = run(base + ["--curve-server-key", self.path("r1.pub"), "--curve-key", self.path("c1")])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = run(base)  # plaintext: no connection ever answers
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        r = run(base + ["--curve-key", self.path("c1")])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("needs both --curve-server-key and --curve-key", r.stderr)

    def test_router_key_is_let_into_the_node(self):
        reply, mechanism = ping_with(self.node_ep, self.key["n1"][0], self.key["r1"], wait=5)
        self.assertEqual(mechanism, zmq.CURVE)
        self.assertIsNotNone(reply)
        self.assertEqual(reply["result"]["role"], "node")

    # --- refused ---

    def test_unknown_key_is_refused_and_logged(self):
        # The same wait that an allowed client gets an answer in.
        reply, _ = ping_with(self.router_ep, self.key["r1"][0], self.key["c1"])
        self.assertIsNotNone(reply)
        reply, mechanism = ping_with(self.router_ep, self.key["r1"][0], self.key["stranger"])
        self.assertEqual(mechanism, zmq.CURVE)
        self.assertIsNone(reply)
        self.assertTrue(self.router.wait_log(f"ZAP: refused CURVE key {self.key['stranger'][0]}"),
                        self.router.log())

    def test_plaintext_client_gets_nothing(self):
        for endpoint in (self.router_ep, self.node_ep):
            reply, mechanism = ping_with(endpoint)
            self.assertEqual(mechanism, zmq.NULL)
            self.assertIsNone(reply, endpoint)

    def test_wrong_server_key_gets_nothing(self):
        # c1 is allowed, but expects the node's key from the router.
        reply, _ = ping_with(self.router_ep, self.key["n1"][0], self.key["c1"])
        self.assertIsNone(reply)

    def test_node_refuses_clients_that_are_not_its_routers(self):
        reply, mechanism = ping_with(self.node_ep, self.key["n1"][0], self.key["c1"])
        self.assertEqual(mechanism, zmq.CURVE)
        self.assertIsNone(reply)
        self.assertTrue(self.node.wait_log(f"ZAP: refused CURVE key {self.key['c1'][0]}"),
                        self.node.log())
        with self.assertRaises(TodoError) as cm:
            with self.client(endpoint=self.node_ep, server="n1", timeout=NO_REPLY_WAIT) as c:
                c.ping()
        self.assertEqual(cm.exception.code, "timeout")


class KeygenTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="todo-keygen-test-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_writes_a_keypair_with_modes_and_headers(self):
        prefix = os.path.join(self.dir, "n1")
        old_umask = os.umask(0)  # the secret is 0600 whatever the umask
        try:
            public = keygen(prefix)
        finally:
            os.umask(old_umask)
        self.assertEqual(stat.S_IMODE(os.stat(prefix + ".key").st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(prefix + ".pub").st_mode), 0o644)
        for suffix in (".key", ".pub"):
            with open(prefix + suffix, encoding="ascii") as f:
                lines = f.read().splitlines()
            self.assertEqual(len(lines), 2, lines)
            self.assertTrue(lines[0].startswith("# todo-keygen "), lines[0])
            self.assertEqual(len(lines[1]), 40)
        self.assertEqual(read_key_file(prefix + ".pub"), public)
        self.assertEqual(load_keypair(prefix)[0], public)
        r = run([KEYGEN_BIN, "--public-of", prefix + ".key"])
        self.assertEqual((r.returncode, r.stdout.strip()), (0, public))

    def test_refuses_to_overwrite_without_force(self):
        prefix = os.path.join(self.dir, "r1")
        first = keygen(prefix)
        r = run([KEYGEN_BIN, "--out", prefix])
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists; not overwritten (use --force", r.stderr)
        self.assertEqual(read_key_file(prefix + ".pub"), first)
        r = run([KEYGEN_BIN, "--out", prefix, "--force"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotEqual(r.stdout.strip(), first)
        self.assertEqual(read_key_file(prefix + ".pub"), r.stdout.strip())

    def test_usage_errors_exit_2(self):
        for args in ([], ["--force"], ["--out", "a", "--public-of", "b"], ["--bogus"]):
            r = run([KEYGEN_BIN] + args)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr.startswith("todo-keygen: error: "), r.stderr)


class ClientKeyHelpersTest(unittest.TestCase):
    """deploy/todo_client.py's key-file helpers and CURVE arguments (no server)."""

    PUBLIC = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
    SECRET = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="todo-client-keys-test-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="ascii") as f:
            f.write(text)
        return path

    def test_key_files(self):
        self.write("k.key", f"# header\n\n{self.SECRET}\t# trailing comment\n")
        self.assertEqual(load_keypair(os.path.join(self.dir, "k")), (self.PUBLIC, self.SECRET))
        pub = self.write("k.pub", f"# public\n{self.PUBLIC}\n")
        self.assertEqual(key_or_file(pub), self.PUBLIC)
        self.assertEqual(key_or_file(self.PUBLIC), self.PUBLIC)
        for text, fragment in ((f"{self.PUBLIC}\n{self.PUBLIC}\n", "holds 2 keys"),
                               ("# none\n", "holds 0 keys"),
                               ("#" * 40 + "x\nabc\n", ":2: not a CURVE key"),
                               (f"{self.PUBLIC} extra\n", ":1: not a CURVE key")):
            with self.assertRaises(ValueError) as cm:
                read_key_file(self.write("bad.pub", text))
            self.assertIn(fragment, str(cm.exception))
        with self.assertRaises(OSError):
            key_or_file(os.path.join(self.dir, "missing.pub"))

    def test_client_needs_server_and_secret_keys(self):
        with self.assertRaises(ValueError):
            TodoClient("tcp://127.0.0.1:1", curve_serverkey=self.PUBLIC)
        with self.assertRaises(ValueError):
            TodoClient("tcp://127.0.0.1:1", curve_secretkey=self.SECRET)
        with TodoClient("tcp://127.0.0.1:1", curve_serverkey=self.PUBLIC,
                        curve_secretkey=self.SECRET) as c:
            sock = c._sock  # pylint: disable=protected-access
            self.assertEqual(sock.getsockopt(zmq.MECHANISM), zmq.CURVE)


class StartupErrorTest(unittest.TestCase):
    """Bad CURVE flags stop a process before it serves: exit 2, one line
    naming the flag or the file."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="todo-curve-flags-test-")
        for name in ("n1", "r1", "c1"):
            keygen(os.path.join(cls.dir, name))
        cls.n1_pub = read_key_file(os.path.join(cls.dir, "n1.pub"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def p(self, name):
        return os.path.join(self.dir, name)

    def node(self, *flags):
        return run([NODE_BIN, "--name", "n1", "--listen", f"tcp://127.0.0.1:{free_port()}",
                    "--data", self.p("data")] + list(flags))

    def router(self, *flags):
        return run([ROUTER_BIN, "--listen", f"tcp://127.0.0.1:{free_port()}",
                    "--node", f"n1=tcp://127.0.0.1:{free_port()}"] + list(flags))

    def assert_flag_error(self, r, *fragments):
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        for fragment in fragments:
            self.assertIn(fragment, r.stderr)

    def test_node(self):
        self.assert_flag_error(self.node("--curve-secret", self.p("n1.key")),
                               "--curve-secret needs --curve-allow")
        self.assert_flag_error(self.node("--curve-allow", self.p("r1.pub")),
                               "--curve-allow needs --curve-secret")
        self.assert_flag_error(
            self.node("--curve-secret", self.p("missing.key"), "--curve-allow", self.p("r1.pub")),
            "--curve-secret: cannot read " + self.p("missing.key"))
        self.assert_flag_error(
            self.node("--curve-secret", self.p("n1.pub"), "--curve-allow", self.p("r1.pub")),
            "looks like a public key file")
        garbage = self.p("garbage.pub")
        with open(garbage, "w", encoding="ascii") as f:
            f.write("# one bad key\nnot-a-key\n")
        self.assert_flag_error(
            self.node("--curve-secret", self.p("n1.key"), "--curve-allow", garbage),
            f"--curve-allow: {garbage}:2: not a CURVE key: expected 40 Z85 characters, got 9")

    def test_router_needs_a_key_for_every_node(self):
        self.assert_flag_error(
            self.router("--curve-secret", self.p("r1.key"), "--curve-allow", self.p("c1.pub")),
            "no server key for node(s) n1")
        self.assert_flag_error(self.router("--node-key", f"n1={self.n1_pub}"),
                               "no --curve-secret")
        self.assert_flag_error(
            self.router("--curve-secret", self.p("r1.key"), "--curve-allow", self.p("c1.pub"),
                        "--node-key", "n2=" + self.p("n1.pub")),
            "no node named 'n2'")

    def test_open_secret_file_is_warned_about(self):
        shutil.copy(self.p("r1.key"), self.p("open.key"))
        os.chmod(self.p("open.key"), 0o644)
        router = Process([ROUTER_BIN, "--listen", f"tcp://127.0.0.1:{free_port()}",
                          "--node", f"n1=tcp://127.0.0.1:{free_port()}",
                          "--node-key", f"n1={self.n1_pub}", "--curve-secret", self.p("open.key"),
                          "--curve-allow", self.p("c1.pub")], self.p("open.log"))
        try:
            self.assertTrue(router.wait_log("mode 0644: group or others may access it"),
                            router.log())
        finally:
            self.assertEqual(router.stop(), 0, router.log())


def main():
    missing = [b for b in (NODE_BIN, ROUTER_BIN, KEYGEN_BIN) if not os.access(b, os.X_OK)]
    if missing:
        print("skipped: binaries not built: " + ", ".join(missing), file=sys.stderr)
        return 77
    if not zmq.has("curve"):
        print("skipped: this pyzmq/libzmq has no CURVE", file=sys.stderr)
        return 77
    result = unittest.main(exit=False, verbosity=2).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
