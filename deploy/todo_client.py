#!/usr/bin/python3
"""A small client for the todo cluster (wire protocol, common/PROTOCOL.md).

One TodoClient talks to one router at a time (or to a single node: a node
answers the same protocol) over a ZeroMQ DEALER socket, and may be given
several routers to move between. Every request carries an auto-incrementing
unsigned id, and replies are matched to requests by that id, so many
requests can be in flight at once (pipelining):

    client = TodoClient("tcp://127.0.0.1:7000")          # or "tcp://r1:7000,tcp://r2:7000"
    entry_id = client.add_entry("bob", "2026-12-19", "Dentist")
    for e in client.entries("bob"):
        print(e["id"], e["date"], e["title"])

    ids = [client.submit("entries", list=name) for name in names]
    replies = client.collect(ids)          # Reply objects, in the order of ids

Error replies raise TodoError(code, message); `code` is the wire code
("bad_request", "not_found", "timeout", ...). A request with no reply within
`timeout` seconds fails with code "timeout" (raised by the client itself; the
message says so). A reply that arrives after its request was given up on is
discarded.

Writes happen once. Every write (add_entry, update_entry, delete_entry)
carries a fresh request id, its `rid` (a uuid4), and the server applies a
given rid once: a retry of it gets the first attempt's reply (see
common/PROTOCOL.md, "rid"; the server keeps rids for --rid-ttl, 24 h by
default). So call() retries writes like reads: on "timeout", "unavailable"
and "overloaded", with the same rid on every attempt, up to `retries` more
times, with jittered exponential back-off, and never past its `deadline`.
With rids=False writes carry no rid and are retried only on "overloaded",
which guarantees nothing was applied (a timed-out write may or may not
have happened). submit() and pipeline() give writes a fresh rid too (pass
rid=... to choose it, e.g. to retry a pipelined write yourself) but never
retry.

Several endpoints: on "timeout" or "unavailable" call() moves to the next
endpoint (round robin) before it retries. A move, and any timeout, opens a
new socket; replies still due on the old one are lost (those requests time
out in collect()).

Not thread-safe: use one TodoClient per thread.
"""

import datetime
import itertools
import random
import struct
import time
import uuid

import msgpack
import zmq
import zmq.utils.z85

__all__ = ["TodoClient", "TodoError", "Reply", "READ_OPS", "WRITE_OPS", "new_rid",
           "parse_endpoints", "read_key_file", "key_or_file", "load_keypair"]

READ_OPS = frozenset({"entries", "locate", "ping", "stats"})
WRITE_OPS = frozenset({"add_entry", "update_entry", "delete_entry"})

# Codes after which a read (or a write with a rid) is retried, and after
# which a write without a rid is.
_RETRY_READ_CODES = frozenset({"timeout", "unavailable", "overloaded"})
_RETRY_WRITE_CODES = frozenset({"overloaded"})
# Codes after which call() moves to the next endpoint before retrying.
_FAILOVER_CODES = frozenset({"timeout", "unavailable"})


def new_rid():
    """A fresh request id for a write: a uuid4 (36 bytes; a rid is 1-64)."""
    return str(uuid.uuid4())


def parse_endpoints(endpoints):
    """A list of endpoints from a str ("tcp://a:7000" or a comma-separated
    list) or an iterable of such strs. Raises ValueError if none is left."""
    if isinstance(endpoints, str):
        endpoints = [endpoints]
    out = []
    for item in endpoints:
        out.extend(part.strip() for part in str(item).split(",") if part.strip())
    if not out:
        raise ValueError("no endpoint given")
    return out


class TodoError(Exception):
    """An error reply from the server, or a client-side timeout.

    Attributes:
      code: the wire error code, e.g. "bad_request", "not_found", "timeout".
      message: the server's message (or the client's, for a local timeout).
    """

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Reply:
    """The outcome of one request: either `result` (ok) or `error` (TodoError)."""

    __slots__ = ("id", "ok", "result", "error")

    def __init__(self, request_id, ok, result=None, error=None):
        self.id = request_id
        self.ok = ok
        self.result = result
        self.error = error

    def value(self):
        """Returns the result, or raises the error."""
        if not self.ok:
            raise self.error
        return self.result

    def __repr__(self):
        if self.ok:
            return f"Reply(id={self.id}, ok=True, result={self.result!r})"
        return f"Reply(id={self.id}, ok=False, error={self.error!r})"

    @staticmethod
    def from_map(request_id, body):
        """Builds a Reply from a decoded reply map (protocol.md, "Replies")."""
        if body.get("ok") is True:
            return Reply(request_id, True, result=body.get("result"))
        err = body.get("error")
        if isinstance(err, dict):
            code = str(err.get("code", "internal"))
            message = str(err.get("message", ""))
        else:
            code, message = "internal", f"malformed error reply: {body!r}"
        return Reply(request_id, False, error=TodoError(code, message))


def _timeout_reply(request_id, endpoint, seconds):
    return Reply(request_id, False,
                 error=TodoError("timeout", f"no reply from {endpoint} within {seconds:g}s "
                                            "(client-side deadline)"))


def _as_date(value):
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.strftime("%Y-%m-%d")
    return value


class TodoClient:
    """A DEALER-socket client for one or several endpoints.

    Args:
      endpoint: a ZeroMQ endpoint, e.g. "tcp://127.0.0.1:7000", or several
        (a comma-separated str or a list): the client starts with the first
        and moves to the next on "timeout" or "unavailable".
      timeout: seconds to wait for each reply (per attempt); > 0.
      retries: extra attempts for retryable failures (see module doc); >= 0.
      backoff: the first back-off delay in seconds; doubles each retry.
      max_backoff: the cap on one back-off delay.
      deadline: seconds one call() may take in all, attempts and back-off
        included (default 30); no attempt starts or waits past it.
      rids: give every write a fresh rid, and retry writes like reads (the
        default); False: v1 behaviour (no rid, writes retried only on
        "overloaded").
      curve_serverkey, curve_publickey, curve_secretkey: optional Z85 CURVE
        keys (str or bytes): the server's public key and this client's
        keypair (see load_keypair). With curve_serverkey and curve_secretkey
        the socket uses CURVE (encrypted, and authenticated by the server's
        allow-list); curve_publickey is derived from the secret if omitted.
        Giving only some of them raises ValueError. Every endpoint gets the
        same server key (routers of one cluster share it in the examples).
      context: an existing zmq.Context to use (default: the global instance).
    """

    def __init__(self, endpoint, timeout=5.0, retries=3, *, backoff=0.1, max_backoff=2.0,
                 deadline=30.0, rids=True, curve_serverkey=None, curve_publickey=None,
                 curve_secretkey=None, context=None):
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if deadline <= 0:
            raise ValueError("deadline must be > 0")
        self.endpoints = parse_endpoints(endpoint)
        self._current = 0
        self.endpoint = self.endpoints[0]
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.deadline = float(deadline)
        self.rids = bool(rids)
        self._ids = itertools.count(1)
        # Ids still wanted -> decoded reply map, or None until it arrives.
        self._pending = {}
        self._ctx = context or zmq.Context.instance()
        self._curve = None
        if curve_serverkey or curve_publickey or curve_secretkey:
            if not (curve_serverkey and curve_secretkey):
                raise ValueError("CURVE needs curve_serverkey and curve_secretkey "
                                 "(curve_publickey is derived if omitted)")
            if not curve_publickey:
                curve_publickey = zmq.curve_public(_bytes(curve_secretkey))
            self._curve = (_bytes(curve_serverkey), _bytes(curve_publickey),
                           _bytes(curve_secretkey))
        self._sock = None
        self._open()

    def _open(self):
        """Opens a socket to the current endpoint (closing any other)."""
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # Pipelining: let many requests and replies queue in the socket.
        sock.setsockopt(zmq.SNDHWM, 100000)
        sock.setsockopt(zmq.RCVHWM, 100000)
        if self._curve:
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = self._curve
        try:
            sock.connect(self.endpoint)
        except zmq.ZMQError:
            sock.close(linger=0)
            raise
        self._sock = sock

    def reconnect(self, next_endpoint=False):
        """Drops the socket (replies still due on it are lost: those requests
        time out) and opens a new one, to the next endpoint if asked."""
        if next_endpoint:
            self._current = (self._current + 1) % len(self.endpoints)
            self.endpoint = self.endpoints[self._current]
        self._open()

    # --- lifecycle ---

    def close(self):
        """Closes the socket; requests in flight are abandoned."""
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        self._pending.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- pipelining ---

    def submit(self, op, **keys):
        """Sends one request without waiting; returns its id.

        `keys` are the request keys (list=..., date=..., title=..., entry_id=...,
        rid=...); keys whose value is None are left out (rid=None: a write
        without a rid). A write given no rid gets a fresh one (unless the
        client has rids=False). Collect the reply with collect().
        Raises TodoError("timeout") if the request can't even be queued in time.
        """
        request_id = next(self._ids)
        body = {"op": op, "id": request_id}
        for key, value in keys.items():
            if value is not None:
                body[key] = _as_date(value) if key == "date" else value
        if op in WRITE_OPS and self.rids and "rid" not in body and "rid" not in keys:
            body["rid"] = new_rid()
        data = msgpack.packb(body, use_bin_type=True)
        self._send(data, time.monotonic() + self.timeout)
        self._pending[request_id] = None
        return request_id

    def collect(self, ids, timeout=None):
        """Waits for the replies to `ids` (from submit) and returns them.

        Returns a list of Reply, in the order of `ids`. An id with no reply by
        the deadline (now + `timeout`, default self.timeout) gets a Reply with a
        "timeout" TodoError, and its late reply, if any, is discarded. Never
        raises for error replies: check Reply.ok or call Reply.value(). Raises
        KeyError for an id that is not pending (never submitted, already
        collected, or forgotten).
        """
        ids = list(ids)
        seconds = self.timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + seconds
        for request_id in ids:
            if request_id not in self._pending:
                raise KeyError(f"request id {request_id} is not pending")
        waiting = {i for i in ids if self._pending.get(i) is None}
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self._sock.poll(max(1, int(remaining * 1000)), zmq.POLLIN):
                self._drain()
                waiting = {i for i in waiting if self._pending.get(i) is None}
        replies = []
        for request_id in ids:
            body = self._pending.pop(request_id, None)
            if body is None:
                replies.append(_timeout_reply(request_id, self.endpoint, seconds))
            else:
                replies.append(Reply.from_map(request_id, body))
        return replies

    def pipeline(self, requests, timeout=None):
        """Sends every request, then gathers the replies by id.

        `requests` is an iterable of (op, keys) pairs, keys a dict. Returns a
        list of Reply in the order of `requests`. `timeout` (default
        self.timeout) bounds the wait for all replies after the last send. No
        automatic retries: a failed request shows up as a Reply with an error.
        """
        ids = [self.submit(op, **dict(keys)) for op, keys in requests]
        return self.collect(ids, timeout=timeout)

    def forget(self, ids):
        """Gives up on submitted requests; their replies will be discarded."""
        for request_id in ids:
            self._pending.pop(request_id, None)

    # --- one request at a time ---

    def call(self, op, **keys):
        """Sends one request, waits for its reply, retries as the module doc says.

        A write gets one rid for all its attempts: `rid=` if given (None: no
        rid), else a fresh one (unless rids=False). Returns the reply's
        "result"; raises TodoError on an error reply, or when no attempt got
        a reply (code "timeout"), or the last retryable error once the
        retries or the deadline are used up.
        """
        if op in WRITE_OPS:
            if "rid" not in keys and self.rids:
                keys["rid"] = new_rid()
            retry_codes = _RETRY_READ_CODES if keys.get("rid") else _RETRY_WRITE_CODES
        else:
            retry_codes = _RETRY_READ_CODES if op in READ_OPS else frozenset()
        deadline = time.monotonic() + self.deadline
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                request_id = self.submit(op, **keys)
                reply = self.collect([request_id], timeout=max(0.001, min(self.timeout,
                                                                          remaining)))[0]
            except TodoError as error:  # could not even queue the request
                reply = Reply(None, False, error=error)
            if reply.ok:
                return reply.result
            code = reply.error.code
            if code not in retry_codes or attempt >= self.retries:
                raise reply.error
            delay = self._backoff_delay(attempt)
            if time.monotonic() + delay >= deadline:
                raise reply.error
            if code in _FAILOVER_CODES:
                # Another router (or a fresh connection to the same one).
                self.reconnect(next_endpoint=len(self.endpoints) > 1)
            time.sleep(delay)
            attempt += 1

    def add_entry(self, list_name, date, title, **rid):
        """Adds an entry; returns its new id (int). Writes take an optional
        rid=... (default: a fresh one; see call())."""
        return self.call("add_entry", list=list_name, date=date, title=title, **rid)["id"]

    def entries(self, list_name, date=None):
        """Returns the list's entries (dicts with id, date, title), by ascending id."""
        return self.call("entries", list=list_name, date=date)

    def update_entry(self, list_name, entry_id, date=None, title=None, **rid):
        """Changes an entry's date and/or title; returns the updated entry.

        Raises TodoError("not_found") if the list has no such entry.
        """
        return self.call("update_entry", list=list_name, entry_id=entry_id, date=date,
                         title=title, **rid)

    def delete_entry(self, list_name, entry_id, **rid):
        """Deletes an entry; returns True if it existed, False otherwise."""
        return bool(self.call("delete_entry", list=list_name, entry_id=entry_id,
                              **rid)["deleted"])

    def locate(self, list_name):
        """Returns the name of the node that owns the list."""
        return self.call("locate", list=list_name)["node"]

    def ping(self):
        """Returns the ping result: {"pong": True, "role": ..., "name": ...}."""
        return self.call("ping")

    def stats(self):
        """Returns the server's counters: a dict with "role" ("router" or
        "node"), "name" and its counters (see common/PROTOCOL.md, `stats`)."""
        return self.call("stats")

    # --- internals ---

    def _backoff_delay(self, attempt):
        """backoff doubling per attempt, capped at max_backoff, then jittered
        to 50-100% of that so that clients never retry in lock-step."""
        delay = min(self.max_backoff, self.backoff * (2 ** min(attempt, 30)))
        return delay * random.uniform(0.5, 1.0)

    def _send(self, data, deadline):
        """Sends without blocking past `deadline`, draining replies meanwhile."""
        while True:
            try:
                self._sock.send(data, zmq.NOBLOCK)
                return
            except zmq.Again:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TodoError("timeout", f"could not send to {self.endpoint} within "
                                           f"{self.timeout:g}s (client-side deadline)")
            events = self._sock.poll(max(1, int(remaining * 1000)), zmq.POLLIN | zmq.POLLOUT)
            if events & zmq.POLLIN:
                self._drain()

    def _drain(self):
        """Receives every reply already queued; keeps those still wanted."""
        while True:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            # A reply mirrors the request's framing: [body] or ["", body].
            try:
                body = msgpack.unpackb(frames[-1], raw=False)
            except Exception:  # pylint: disable=broad-except
                continue  # undecodable: can't match it to a request
            if not isinstance(body, dict):
                continue
            request_id = body.get("id")
            if isinstance(request_id, int) and request_id in self._pending \
                    and self._pending[request_id] is None:
                self._pending[request_id] = body
            # Otherwise a late or unknown reply: discarded.


def _bytes(value):
    return value.encode("ascii") if isinstance(value, str) else value


# --- CURVE key files (format: common/io/security/keys.h, written by todo-keygen) ---

_Z85_KEY_CHARS = 40


def _is_z85_key(text):
    if len(text) != _Z85_KEY_CHARS:
        return False
    try:
        return len(zmq.utils.z85.decode(text.encode("ascii"))) == 32
    except (ValueError, KeyError, IndexError, struct.error):  # bad character, out of range
        return False


def read_key_file(path):
    """The one Z85 key (str) in a key file: '#' lines and blank lines are
    ignored, a '#' comment may follow the key. Raises ValueError naming the
    file if it holds no key, more than one, or a malformed one (never quoting
    it: it may be secret), and OSError if it can't be read."""
    keys = []
    with open(path, encoding="ascii", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            word, rest = (line.split(None, 1) + [""])[:2]
            if not _is_z85_key(word) or (rest and not rest.startswith("#")):
                raise ValueError(f"{path}:{number}: not a CURVE key "
                                 "(expected 40 Z85 characters, then at most a '#' comment)")
            keys.append(word)
    if len(keys) != 1:
        raise ValueError(f"{path}: holds {len(keys)} keys; a key file holds exactly one")
    return keys[0]


def key_or_file(value):
    """A public key given as 40 Z85 characters, or as a key file (e.g. the
    router's PREFIX.pub); returns the Z85 str."""
    if _is_z85_key(value):
        return value
    return read_key_file(value)


def load_keypair(prefix):
    """(public, secret) Z85 strs of a todo-keygen keypair: reads PREFIX.key
    (PREFIX itself if it ends in .key) and derives the public key."""
    path = prefix if prefix.endswith(".key") else prefix + ".key"
    secret = read_key_file(path)
    return zmq.curve_public(secret.encode("ascii")).decode("ascii"), secret
