"""A headless Chromium driven over the Chrome DevTools Protocol, with only
Python's standard library: a minimal RFC 6455 WebSocket client (client
frames masked, text frames, fragmentation, ping/pong, close) and the few
CDP calls a page test needs (navigate, evaluate, screenshot), collecting
every console error, uncaught exception and browser log error on the way.

Chromium is started with a fresh --user-data-dir and the flags that keep
it off the network (this machine has no internet: without them it tries
to reach Google), on --remote-debugging-port=0; the port it picked is read
from <user-data-dir>/DevToolsActivePort. It runs in a process group of its
own and is stopped by its pid (SIGTERM, then SIGKILL; then SIGKILL to the
group its pid names, for any helper left), and every wait here is bounded.
"""

import base64
import json
import os
import signal
import socket
import struct
import subprocess
import time
import urllib.request

CHROMIUM = os.environ.get("TODO_CHROMIUM", "/usr/bin/chromium")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--disable-default-apps",
         "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
         "--disable-features=Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


class CdpError(Exception):
    pass


class WebSocket:
    """A WebSocket client over a plain TCP socket (ws:// only)."""

    def __init__(self, url, timeout=10.0):
        if not url.startswith("ws://"):
            raise CdpError(f"not a ws:// URL: {url}")
        rest = url[len("ws://"):]
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port or 80)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise CdpError("WebSocket handshake: connection closed")
            head += chunk
            if len(head) > 65536:
                raise CdpError("WebSocket handshake: header too long")
        head, _, self.buf = head.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise CdpError(f"WebSocket handshake refused: {status!r}")

    def send_text(self, text):
        payload = text.encode()
        header = bytes([0x81])  # FIN + text
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("WebSocket read timed out")
            self.sock.settimeout(left)
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise CdpError("WebSocket closed by the browser")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_text(self, timeout):
        """The next whole text message (str); socket.timeout after `timeout` s."""
        deadline = time.monotonic() + timeout
        parts = []
        while True:
            b0, b1 = self._read(2, deadline)
            fin, opcode = b0 & 0x80, b0 & 0x0F
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2, deadline))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8, deadline))[0]
            mask = self._read(4, deadline) if b1 & 0x80 else None
            payload = self._read(n, deadline)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping: answer with a masked pong
                m = os.urandom(4)
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + m +
                                  bytes(b ^ m[i % 4] for i, b in enumerate(payload)))
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                raise CdpError("WebSocket closed by the browser")
            parts.append(payload)
            if fin:
                return b"".join(parts).decode()

    def close(self):
        try:
            self.sock.sendall(bytes([0x88, 0x80]) + os.urandom(4))
        except OSError:
            pass
        self.sock.close()


class Browser:
    """One headless Chromium with one page, driven over CDP."""

    def __init__(self, workdir, width=1200, height=1000):
        self.user_dir = os.path.join(workdir, "chromium-profile")
        os.makedirs(self.user_dir, exist_ok=True)
        self.log_path = os.path.join(workdir, "chromium.log")
        self.size = (width, height)
        self.proc = None
        self.ws = None
        self.next_id = 1
        self.events = []
        self.errors = []  # console errors, exceptions, log errors (strings)

    def start(self, timeout=30):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.user_dir}",
             f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group: its helpers go with it
        log.close()
        port_file = os.path.join(self.user_dir, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        port = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CdpError(f"chromium exited with {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                with open(port_file) as f:
                    port = int(f.readline().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        if port is None:
            raise CdpError(f"chromium wrote no DevToolsActivePort within {timeout} s")
        page = None
        while time.monotonic() < deadline and page is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    targets = json.loads(r.read())
                page = next((t for t in targets if t.get("type") == "page"), None)
            except OSError:
                pass
            if page is None:
                time.sleep(0.1)
        if page is None:
            raise CdpError("chromium has no page target")
        self.ws = WebSocket(page["webSocketDebuggerUrl"])
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(method)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.size[0], "height": self.size[1], "deviceScaleFactor": 1,
                   "mobile": False})
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _note(self, msg):
        method, p = msg.get("method"), msg.get("params", {})
        self.events.append(method)
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.errors.append(f"console.{p['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            desc = d.get("exception", {}).get("description") or d.get("text", "")
            self.errors.append(f"uncaught exception: {desc} at {d.get('url', '')}:"
                               f"{d.get('lineNumber', '?')}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.errors.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}")

    def call(self, method, params=None, timeout=15.0):
        """Sends a command and returns its result (events meanwhile are noted)."""
        cid = self.next_id
        self.next_id += 1
        self.ws.send_text(json.dumps({"id": cid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError(f"{method}: no answer within {timeout} s")
            msg = json.loads(self.ws.recv_text(left))
            if msg.get("id") == cid:
                if "error" in msg:
                    raise CdpError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._note(msg)

    def pump(self, seconds):
        """Reads events for `seconds` (console errors arrive as events)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                msg = json.loads(self.ws.recv_text(left))
            except socket.timeout:
                return
            if "method" in msg:
                self._note(msg)

    def navigate(self, url, timeout=20.0):
        self.events.clear()
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while "Page.loadEventFired" not in self.events:
            if time.monotonic() >= deadline:
                raise CdpError(f"{url} did not load within {timeout} s")
            self.pump(0.1)

    def evaluate(self, expression, timeout=15.0):
        """The value of a JS expression (promises awaited)."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            raise CdpError(f"evaluate {expression[:80]!r}: {r['exceptionDetails']}")
        return r.get("result", {}).get("value")

    def wait_for(self, expression, timeout, interval=0.1):
        """Evaluates until the value is truthy or `timeout` s pass; the last value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() >= deadline:
                return value
            self.pump(interval)

    def screenshot(self, path):
        """A PNG of the whole page (its content's height, the window's width)."""
        height = self.evaluate("Math.ceil(document.documentElement.scrollHeight)") or self.size[1]
        clip = {"x": 0, "y": 0, "width": self.size[0], "height": height, "scale": 1}
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": clip}, timeout=30)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def stop(self):
        if self.ws is not None:
            try:
                self.ws.close()
            except OSError:
                pass
            self.ws = None
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Its renderer and utility processes, in the group it leads (by its
        # pid), if any outlived it.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
