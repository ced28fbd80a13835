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
endpoint (round robin) before it retries, at once to one not yet tried in
this call (with back-off once all have been), and every endpoint gets a
try before `retries` is counted: up to retries + (endpoints - 1) more
attempts. A move, and any timeout, opens a new socket; replies still due
on the old one are lost (those requests time out in collect()). Fetching
the map counts against the deadline too. An error raised after several
attempts says how many, for how long, and where.

Skipping the router (smart=True, the default). In replicated mode a router
or node answers the `map` op: which node is the primary of each partition
(common/PROTOCOL.md, "map"). The client fetches it from its endpoint on the
first request for a list, then sends each request for a list straight to
its partition's primary, over one more socket per node, as Redis Cluster's
and Kafka's clients do: one hop instead of two. `ping` and `stats` still go
to the endpoint. On "not primary" (a move or a failover: nothing was
applied, so it is resent whatever the op, as a router does), `unavailable`
or a timeout from a node, the client refreshes the map (at most every 20 ms;
also every `map_refresh` seconds, so a changed epoch is seen) and resends
to the primary it then names; a node that timed out is avoided for a while
and its lists go through the endpoint, and with no map at all (static mode,
whose routers and nodes answer `map` with unknown_op, or no answer)
everything goes to the endpoint as before. smart=False always uses the
endpoint; so does CURVE (each node would need its own server key).
`redirects` counts the requests resent to a refreshed map's primary,
`direct` those sent straight to a node.

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
           "parse_endpoints", "partition_of", "read_key_file", "key_or_file", "load_keypair",
           "NOT_PRIMARY_PREFIX"]

READ_OPS = frozenset({"entries", "locate", "ping", "stats", "map"})
WRITE_OPS = frozenset({"add_entry", "update_entry", "delete_entry"})

# Codes after which a read (or a write with a rid) is retried, and after
# which a write without a rid is.
_RETRY_READ_CODES = frozenset({"timeout", "unavailable", "overloaded"})
_RETRY_WRITE_CODES = frozenset({"overloaded"})
# Codes after which call() moves to the next endpoint before retrying.
_FAILOVER_CODES = frozenset({"timeout", "unavailable"})
# The start of the message of an `unavailable` from a node that is not the
# partition's primary (nothing applied; common/protocol.h kNotPrimaryPrefix).
NOT_PRIMARY_PREFIX = "not primary for partition "
# "not primary" answers resent at most this many times per call, after a
# back-off doubling from 20 ms to 320 ms (the router's rule).
_NOT_PRIMARY_TRIES = 6
# Ops sent to the endpoint even with a map (they name no list, or ask the
# router itself).
_ENDPOINT_OPS = frozenset({"ping", "stats", "map"})
_MASK64 = (1 << 64) - 1


def partition_of(list_name, partitions):
    """The partition of a list: mix64(fnv1a64(name)) mod partitions, over the
    name's UTF-8 bytes (common/PROTOCOL.md, "map"; common/cluster/map.h)."""
    h = 0xcbf29ce484222325
    for b in list_name.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001b3) & _MASK64
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & _MASK64
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & _MASK64
    h ^= h >> 31
    return h % partitions


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
                 error=TodoError("timeout", f"no reply from {endpoint} within {seconds:.3g}s "
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
        With several endpoints each gets a try before these are counted.
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
        CURVE turns `smart` off.
      smart: in replicated mode, send each request for a list straight to
        its partition's primary, from the `map` op (see the module doc);
        False: always through the endpoint.
      map_refresh: seconds after which the map is fetched again before the
        next request (default 5; "not primary" refreshes it at once).
      context: an existing zmq.Context to use (default: the global instance).
    """

    def __init__(self, endpoint, timeout=5.0, retries=3, *, backoff=0.1, max_backoff=2.0,
                 deadline=30.0, rids=True, curve_serverkey=None, curve_publickey=None,
                 curve_secretkey=None, smart=True, map_refresh=5.0, context=None):
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
        # Skipping the router: the map (None: none yet, or none to be had),
        # whether the endpoints answer `map` at all, per-node sockets.
        self.smart = bool(smart) and self._curve is None
        self.map_refresh = float(map_refresh)
        self._map = None  # {"version", "partitions", "nodes": {name: ep}, "primary": [...]}
        self._map_unsupported = False  # unknown_op: static mode, never asked again
        self._map_at = float("-inf")  # when the map was last asked for
        self._node_socks = {}  # node endpoint -> DEALER
        self._avoid = {}  # node endpoint -> monotonic time until which it is avoided
        self._where = {}  # pending request id -> the socket it went on
        self._last_target = None  # the endpoint of the last submit()
        self._call_deadline = None  # monotonic end of the call() in progress (bounds map fetches)
        self.redirects = 0
        self.direct = 0
        self._open()

    def _new_socket(self, endpoint):
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # Pipelining: let many requests and replies queue in the socket.
        sock.setsockopt(zmq.SNDHWM, 100000)
        sock.setsockopt(zmq.RCVHWM, 100000)
        try:
            sock.connect(endpoint)
        except zmq.ZMQError:
            sock.close(linger=0)
            raise
        return sock

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
        """Closes the sockets; requests in flight are abandoned."""
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        for sock in self._node_socks.values():
            sock.close(linger=0)
        self._node_socks.clear()
        self._pending.clear()
        self._where.clear()

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
        sock, self._last_target = self._route(op, body.get("list"))
        self._send(data, time.monotonic() + self.timeout, sock)
        self._pending[request_id] = None
        self._where[request_id] = sock
        if sock is not self._sock:
            self.direct += 1
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
            socks = {id(s): s for s in (self._where.get(i) for i in waiting)
                     if s is not None and not s.closed}
            if not socks:
                break  # their sockets were closed: those replies are lost
            poller = zmq.Poller()
            for sock in socks.values():
                poller.register(sock, zmq.POLLIN)
            for sock, _ in poller.poll(max(1, int(remaining * 1000))):
                self._drain(sock)
            waiting = {i for i in waiting if self._pending.get(i) is None}
        replies = []
        for request_id in ids:
            body = self._pending.pop(request_id, None)
            sock = self._where.pop(request_id, None)
            if body is None:
                replies.append(_timeout_reply(request_id, self._endpoint_of(sock), seconds))
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
            self._where.pop(request_id, None)

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
        start = time.monotonic()
        deadline = start + self.deadline
        # Every endpoint gets a try before the retries are counted: moving
        # on to the next router is what several endpoints are for.
        max_attempts = self.retries + len(self.endpoints) - 1
        tried = {self.endpoint}
        self._call_deadline = deadline
        try:
            return self._call(op, keys, retry_codes, start, deadline, max_attempts, tried)
        finally:
            self._call_deadline = None

    def _call(self, op, keys, retry_codes, start, deadline, max_attempts, tried):
        attempt = 0
        not_primary = 0
        while True:
            target = None
            try:
                request_id = self.submit(op, **keys)  # may fetch the map: within the deadline
                target = self._last_target
                remaining = deadline - time.monotonic()
                reply = self.collect([request_id], timeout=max(0.001, min(self.timeout,
                                                                          remaining)))[0]
            except TodoError as error:  # could not even queue the request
                reply = Reply(None, False, error=error)
            if reply.ok:
                return reply.result
            code = reply.error.code
            direct = target is not None and target in self._node_socks
            if self.smart and code in _FAILOVER_CODES and keys.get("list") is not None:
                if direct and code == "timeout":
                    self._drop_node(target)  # its lists go through the endpoint for a while
                if (code == "unavailable" and reply.error.message.startswith(NOT_PRIMARY_PREFIX)
                        and not_primary < _NOT_PRIMARY_TRIES):
                    # Nothing was applied: resent (any op) to the primary the
                    # map names after a short wait, as a router does.
                    delay = min(0.32, 0.02 * (2 ** not_primary))
                    if time.monotonic() + delay < deadline:
                        not_primary += 1
                        self.redirects += 1
                        time.sleep(delay)
                        self._refresh_map(force=True)
                        continue
                self._refresh_map(force=True)
            if code not in retry_codes:
                raise reply.error
            if attempt >= max_attempts:
                raise self._gave_up(reply.error, attempt + 1, start, tried)
            delay = self._backoff_delay(attempt)
            if direct:
                self.redirects += 1  # the map (refreshed above) decides where it goes
            elif code in _FAILOVER_CODES and len(self.endpoints) > 1:
                # Another router: one not tried yet in this call goes at once.
                self.reconnect(next_endpoint=True)
                if self.endpoint not in tried:
                    delay = 0.0
                tried.add(self.endpoint)
            elif code in _FAILOVER_CODES:
                self.reconnect()  # a fresh connection to the same one
            if time.monotonic() + delay >= deadline:
                raise self._gave_up(reply.error, attempt + 1, start, tried)
            time.sleep(delay)
            attempt += 1

    def _gave_up(self, error, attempts, start, tried):
        """The last error, saying how long the call tried and where."""
        if attempts <= 1:
            return error
        where = ", ".join(sorted(tried)) if len(tried) > 1 else next(iter(tried))
        return TodoError(error.code, f"{error.message}; gave up after {attempts} attempts in "
                                     f"{time.monotonic() - start:.1f}s (tried {where})")

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

    def map(self):
        """The partition map (replicated mode): {"partitions", "hash",
        "version", "nodes": {name: endpoint}, "parts": [[primary, epoch], ...]}
        from the endpoint. Raises TodoError("unknown_op") in static mode."""
        return self.call("map")

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

    def _endpoint_of(self, sock):
        for endpoint, s in self._node_socks.items():
            if s is sock:
                return endpoint
        return self.endpoint

    def _route(self, op, list_name):
        """(socket, endpoint) for a request: its partition's primary's when
        there is a map, else the endpoint's."""
        if not self.smart or list_name is None or op in _ENDPOINT_OPS:
            return self._sock, self.endpoint
        now = time.monotonic()
        if not self._map_unsupported and now - self._map_at >= self.map_refresh:
            self._refresh_map()
        m = self._map
        if m is None or not isinstance(list_name, str):
            return self._sock, self.endpoint
        node = m["nodes"].get(m["primary"][partition_of(list_name, m["partitions"])])
        if node is None or self._avoid.get(node, 0) > now:
            return self._sock, self.endpoint  # no live primary known: the router decides
        sock = self._node_socks.get(node)
        if sock is None:
            try:
                sock = self._node_socks[node] = self._new_socket(node)
            except zmq.ZMQError:
                return self._sock, self.endpoint
        return sock, node

    def _drop_node(self, endpoint):
        """A node that timed out: close its socket (replies due on it are
        lost) and send its partitions through the endpoint for 2 s, or until
        a new map names other primaries."""
        sock = self._node_socks.pop(endpoint, None)
        if sock is not None:
            sock.close(linger=0)
        self._avoid[endpoint] = time.monotonic() + 2.0

    def _refresh_map(self, force=False):
        """Asks the endpoints (then the nodes of the last map) for the map;
        at most every 20 ms. unknown_op (static mode) turns it off for good;
        no answer at all leaves no map (everything goes to the endpoint)."""
        if not self.smart or self._map_unsupported:
            return
        now = time.monotonic()
        if now - self._map_at < 0.02 or (not force and now - self._map_at < self.map_refresh):
            return
        self._map_at = now
        sources = list(dict.fromkeys(
            [self.endpoint] + self.endpoints +
            (list(self._map["nodes"].values()) if self._map else [])))
        # The whole fetch within one request timeout, and within the call's
        # deadline: a dead endpoint costs at most half a second of it.
        end = now + self.timeout
        if self._call_deadline is not None:
            end = min(end, self._call_deadline)
        for endpoint in sources:
            left = end - time.monotonic()
            if left <= 0:
                break
            wait_ms = max(1, int(min(left, 0.5) * 1000))
            sock = self._ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            try:
                sock.connect(endpoint)
                sock.send(msgpack.packb({"op": "map", "id": 0}, use_bin_type=True))
                if not sock.poll(wait_ms, zmq.POLLIN):
                    continue
                body = msgpack.unpackb(sock.recv(), raw=False)
            except (zmq.ZMQError, ValueError, msgpack.exceptions.ExtraData):
                continue
            finally:
                sock.close(linger=0)
            if not isinstance(body, dict):
                continue
            if not body.get("ok"):
                err = body.get("error") or {}
                if isinstance(err, dict) and err.get("code") == "unknown_op":
                    self._map_unsupported = True  # static mode
                    self._map = None
                    return
                continue  # e.g. "no cluster map yet": ask the next one
            parsed = _parse_map(body.get("result"))
            if parsed is not None:
                if self._map is None or parsed["primary"] != self._map["primary"]:
                    self._avoid.clear()  # new primaries: try them
                self._map = parsed
                return
        self._map = None  # nobody answered: through the endpoint until one does

    def _send(self, data, deadline, sock=None):
        """Sends without blocking past `deadline`, draining replies meanwhile."""
        sock = sock or self._sock
        while True:
            try:
                sock.send(data, zmq.NOBLOCK)
                return
            except zmq.Again:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TodoError("timeout", f"could not send to {self._endpoint_of(sock)} within "
                                           f"{self.timeout:g}s (client-side deadline)")
            events = sock.poll(max(1, int(remaining * 1000)), zmq.POLLIN | zmq.POLLOUT)
            if events & zmq.POLLIN:
                self._drain(sock)

    def _drain(self, sock=None):
        """Receives every reply already queued; keeps those still wanted."""
        sock = sock or self._sock
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
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
            if "op" in body and "ok" not in body:
                # Our own request came back: with nothing listening on a
                # loopback port in the ephemeral range, TCP can connect the
                # socket to itself. Nothing was applied; answered as a dead
                # endpoint, so the caller moves on (and reconnects).
                body = {"id": request_id, "ok": False, "error": {
                    "code": "unavailable",
                    "message": f"{self._endpoint_of(sock)} sent our request back: the socket "
                               "is connected to itself (nothing listens there)"}}
            if isinstance(request_id, int) and request_id in self._pending \
                    and self._pending[request_id] is None:
                self._pending[request_id] = body
            # Otherwise a late or unknown reply: discarded.


def _bytes(value):
    return value.encode("ascii") if isinstance(value, str) else value


def _parse_map(result):
    """The parts of a `map` result the client uses, or None if malformed."""
    try:
        partitions = int(result["partitions"])
        nodes = {str(k): str(v) for k, v in result["nodes"].items()}
        primary = [str(p[0]) for p in result["parts"]]
        if partitions < 1 or len(primary) != partitions:
            return None
        return {"version": int(result["version"]), "partitions": partitions, "nodes": nodes,
                "primary": primary}
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


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
