#!/usr/bin/python3
"""Crash loop: kill -9 one node of a live cluster again and again, then check
that every acknowledged change survived and nothing else leaked in.

Setup: 3 nodes (n1..n3) and 1 router on loopback, fsync on (the default).
Clients (4 DEALERs) pipeline add_entry / update_entry / delete_entry over many
lists (200 by default) through the router, one request in flight per list, so
each list's history is a sequence. Meanwhile the victim node (n1) is killed with
SIGKILL and restarted on the same data directory --restarts times (20) at
random moments drawn from --seed.

Each request ends as one of:
  acked    an ok reply;
  failed   unavailable or overloaded: the protocol says not applied;
  unknown  timeout, or no reply within the client's deadline: may have been
           applied, at any moment after it was sent.
Every entry has a title no other request uses, so the final state can be
traced back to requests.

After the last restart (all nodes up) every list is read through the router
and checked:
  - ids are unique and ascending; no title appears twice (no request was
    applied twice);
  - an acked add is present with the values of its last acked write (or of
    an unknown update), unless a delete of it was acked (then it is absent)
    or is unknown (then either);
  - every other entry comes from an unknown add (never from a failed or
    unsent one), each at most once, with an id above every id acked before
    that add was sent;
  - ids of acked adds grew strictly in the order they were given (never
    reused across restarts);
  - during the run: an update or delete of an entry that was acked and never
    targeted by a delete found it (no acked entry went missing), and no
    request got bad_request, not_found or internal;
  - requests to lists of the other nodes never failed: their error count
    must be 0, and the router answered every request.
Finally the processes get SIGTERM and must exit 0.

Usage: crash_loop_test.py [--restarts N] [--lists N] [--clients N] [--seed N] [--keep]
  --restarts also from $TODO_CRASH_LOOP_RESTARTS. Exits 77 (skip) if the
  binaries are not built ($TODO_BUILD_DIR, default <repo>/build).
"""

import argparse
import collections
import os
import random
import shutil
import sys
import tempfile
import threading
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import stress_lib as sl  # noqa: E402  pylint: disable=wrong-import-position

ROUTER_TIMEOUT_MS = 2000
# A reply later than this counts as none (the router answers within its
# deadline, so this never happens unless the router is broken).
CLIENT_DEADLINE_S = ROUTER_TIMEOUT_MS / 1000 + 3
BACKOFF_S = 0.05  # a list whose request failed waits this long
DATES = ["2026-01-01", "2026-02-28", "2024-02-29", "2026-12-31", "1999-07-04"]


class Op:
    __slots__ = ("rid", "lst", "kind", "entry", "title", "date", "sent", "outcome", "code",
                 "max_acked_at_send")

    def __init__(self, lst, kind, entry=None, title=None, date=None):
        self.rid = None
        self.lst = lst
        self.kind = kind
        self.entry = entry  # EntryModel for update/delete
        self.title = title
        self.date = date
        self.sent = 0.0
        self.outcome = None  # acked | failed | unknown
        self.code = None
        self.max_acked_at_send = 0


class EntryModel:
    """An entry whose add was acked."""

    def __init__(self, eid, title, date):
        self.id = eid
        self.title = title  # of the last acked write that set it
        self.date = date
        self.unknown_titles = set()  # from updates with unknown outcome
        self.unknown_dates = set()
        self.delete = None  # None | "acked" | "unknown"


class ListModel:
    def __init__(self, name, owner, victim, client):
        self.name = name
        self.client = client  # index of the DEALER that sends its requests
        self.owner = owner
        self.victim = victim
        self.entries = {}  # id -> EntryModel
        self.max_acked_id = 0
        self.unknown_adds = []  # Op
        self.busy = None
        self.ready_at = 0.0
        self.seq = 0


class Stats:
    def __init__(self):
        self.sent = 0
        self.acked = collections.Counter()  # kind -> n
        self.failed = collections.Counter()  # code -> n
        self.unknown = collections.Counter()  # "timeout" | "no reply" -> n
        self.acked_victim = 0
        self.other_errors = 0
        self.late_replies = 0
        self.violations = []

    def violation(self, text):
        if len(self.violations) < 1000:
            self.violations.append(text)


class Workload:
    """Chooses, sends and accounts requests; one in flight per list."""

    def __init__(self, clients, lists, rng, stats):
        self.clients = clients
        self.lists = lists
        self.rng = rng
        self.stats = stats
        self.inflight = {}  # (client index, rid) -> Op
        self.poller = zmq.Poller()
        for c in clients:
            self.poller.register(c.sock, zmq.POLLIN)

    def next_op(self, lst):
        lst.seq += 1
        title = f"{lst.name}#{lst.seq}" + ("-\u00e9\u6f22" if lst.seq % 7 == 0 else "")
        live = [e for e in lst.entries.values() if e.delete is None]
        r = self.rng.random()
        if not live or r < 0.5:
            return Op(lst, "add", title=title, date=self.rng.choice(DATES))
        e = self.rng.choice(live)
        if r < 0.8:
            which = self.rng.randrange(3)
            return Op(lst, "update", entry=e, title=title if which != 1 else None,
                      date=self.rng.choice(DATES) if which != 0 else None)
        return Op(lst, "delete", entry=e)

    def send(self, op, now):
        req = {"op": {"add": "add_entry", "update": "update_entry",
                      "delete": "delete_entry"}[op.kind], "list": op.lst.name}
        if op.entry is not None:
            req["entry_id"] = op.entry.id
        if op.title is not None:
            req["title"] = op.title
        if op.date is not None:
            req["date"] = op.date
        op.max_acked_at_send = op.lst.max_acked_id
        op.sent = now
        op.rid = self.clients[op.lst.client].send(req)
        op.lst.busy = op
        self.inflight[(op.lst.client, op.rid)] = op
        self.stats.sent += 1

    def issue(self, now):
        for lst in self.lists:
            if lst.busy is None and lst.ready_at <= now:
                self.send(self.next_op(lst), now)

    def on_reply(self, client, reply, now):
        op = self.inflight.pop((client, reply["id"]), None)
        if op is None:
            self.stats.late_replies += 1  # already counted as no reply
            return
        self.finish(op, sl.error_code(reply), reply.get("result"), now)

    def expire(self, now):
        for key in [k for k, op in self.inflight.items() if now - op.sent > CLIENT_DEADLINE_S]:
            self.finish(self.inflight.pop(key), "no reply", None, now)

    def receive(self, timeout_ms):
        """Handles the replies that arrive within timeout_ms on any client."""
        ready = dict(self.poller.poll(timeout_ms))
        for i, c in enumerate(self.clients):
            if c.sock in ready:
                for reply in c.recv_all(0):
                    self.on_reply(i, reply, time.monotonic())


    def finish(self, op, code, result, now):
        lst = op.lst
        lst.busy = None
        op.code = code
        st = self.stats
        if not lst.victim and code != "ok":
            st.other_errors += 1
            st.violation(f"list {lst.name} on {lst.owner} (not the victim): {op.kind} got {code}")
        if code == "ok":
            op.outcome = "acked"
            st.acked[op.kind] += 1
            if lst.victim:
                st.acked_victim += 1
            self.acked(op, result)
        elif code in ("timeout", "no reply"):
            op.outcome = "unknown"
            st.unknown[code] += 1
            if op.kind == "add":
                lst.unknown_adds.append(op)
            elif op.kind == "update":
                if op.title is not None:
                    op.entry.unknown_titles.add(op.title)
                if op.date is not None:
                    op.entry.unknown_dates.add(op.date)
            elif op.entry.delete is None:
                op.entry.delete = "unknown"
        elif code in ("unavailable", "overloaded"):
            op.outcome = "failed"
            st.failed[code] += 1
            lst.ready_at = now + BACKOFF_S
        else:
            op.outcome = "failed"
            st.failed[code] += 1
            if code == "not_found" and op.kind == "update":
                # Only entries no delete ever targeted are updated.
                st.violation(f"list {lst.name}: update of acked entry {op.entry.id} (never "
                             "deleted) got not_found: the entry was lost")
            else:
                st.violation(f"list {lst.name}: {op.kind} got {code}")

    def acked(self, op, result):
        lst = op.lst
        st = self.stats
        if op.kind == "add":
            eid = result["id"] if isinstance(result, dict) else None
            if not isinstance(eid, int) or eid <= lst.max_acked_id:
                st.violation(f"list {lst.name}: add acked with id {eid}, not above the last "
                             f"acked id {lst.max_acked_id}")
                return
            lst.max_acked_id = eid
            lst.entries[eid] = EntryModel(eid, op.title, op.date)
        elif op.kind == "update":
            e = op.entry
            if not isinstance(result, dict) or result.get("id") != e.id:
                st.violation(f"list {lst.name}: update of {e.id} acked with {result!r}")
                return
            if op.title is not None:
                e.title = op.title
            if op.date is not None:
                e.date = op.date
            if result.get("title") not in {e.title} | e.unknown_titles or \
               result.get("date") not in {e.date} | e.unknown_dates:
                st.violation(f"list {lst.name}: update of {e.id} returned {result!r}")
        else:
            if result != {"deleted": True}:
                st.violation(f"list {lst.name}: delete of acked entry {op.entry.id} "
                             f"(never deleted before) returned {result!r}: the entry was lost")
            op.entry.delete = "acked"


def verify_list(lst, entries, stats):
    """Checks the final entries of one list against the model."""
    v = stats.violation
    ids = [e.get("id") for e in entries]
    if len(set(ids)) != len(ids):
        v(f"list {lst.name}: duplicate ids {ids}")
    if ids != sorted(ids):
        v(f"list {lst.name}: ids not ascending {ids}")
    titles = [e.get("title") for e in entries]
    for t, n in collections.Counter(titles).items():
        if n > 1:
            v(f"list {lst.name}: title {t!r} appears {n} times (a request applied twice)")
    by_id = {e["id"]: e for e in entries}
    for e in lst.entries.values():
        got = by_id.get(e.id)
        if e.delete == "acked":
            if got is not None:
                v(f"list {lst.name}: entry {e.id} was deleted (acked) but is there: {got}")
            continue
        if got is None:
            if e.delete is None:
                v(f"list {lst.name}: acked entry {e.id} ({e.title!r}) is missing")
            continue
        if got.get("title") not in {e.title} | e.unknown_titles:
            v(f"list {lst.name}: entry {e.id} has title {got.get('title')!r}, "
              f"expected {e.title!r} (acked) or one of {sorted(e.unknown_titles)}")
        if got.get("date") not in {e.date} | e.unknown_dates:
            v(f"list {lst.name}: entry {e.id} has date {got.get('date')!r}, "
              f"expected {e.date!r} (acked) or one of {sorted(e.unknown_dates)}")
    unknown_adds = {op.title: op for op in lst.unknown_adds}
    extras = 0
    for got in entries:
        if got["id"] in lst.entries:
            continue
        extras += 1
        op = unknown_adds.get(got.get("title"))
        if op is None:
            v(f"list {lst.name}: entry {got} comes from no acked or unknown add")
            continue
        if got["id"] <= op.max_acked_at_send:
            v(f"list {lst.name}: entry {got} (an unknown add) has an id not above "
              f"{op.max_acked_at_send}, acked before it was sent: an id was reused")
        if got.get("date") != op.date:
            v(f"list {lst.name}: entry {got} (an unknown add) has date other than {op.date}")
    return extras


class Chaos(threading.Thread):
    """Kills the victim with SIGKILL and restarts it, `restarts` times."""

    def __init__(self, victim, port, restarts, rng, up_range, down_range):
        super().__init__(daemon=True)
        self.victim = victim
        self.port = port
        self.restarts = restarts
        self.rng = rng
        self.up_range = up_range
        self.down_range = down_range
        self.done = threading.Event()
        self.stop = threading.Event()
        self.kills = 0
        self.error = None
        self.restart_times = []

    def run(self):
        ctx = zmq.Context()
        try:
            for _ in range(self.restarts):
                if self.stop.wait(self.rng.uniform(*self.up_range)):
                    return
                self.victim.kill9()
                self.kills += 1
                self.stop.wait(self.rng.uniform(*self.down_range))
                t0 = time.monotonic()
                self.victim.start()
                if not sl.wait_serving(ctx, self.port, self.victim, timeout=30):
                    self.error = f"victim did not serve again after restart {self.kills}"
                    return
                self.restart_times.append(time.monotonic() - t0)
        finally:
            ctx.destroy(linger=0)
            self.done.set()


def read_all(client, lists, deadline_s=60):
    """Reads every list through the router, retrying a list that fails; a
    dict name -> entries (lists that never read are missing)."""
    out = {}
    pending = list(lists)
    deadline = time.monotonic() + deadline_s
    while pending and time.monotonic() < deadline:
        rids = {client.send({"op": "entries", "list": lst.name}): lst for lst in pending}
        pending = []
        t_end = time.monotonic() + CLIENT_DEADLINE_S
        while rids and time.monotonic() < t_end:
            for reply in client.recv_all(100):
                lst = rids.pop(reply["id"], None)
                if lst is None:
                    continue
                if reply.get("ok"):
                    out[lst.name] = reply["result"]
                else:
                    pending.append(lst)
        pending += rids.values()
        if pending:
            time.sleep(0.2)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--restarts", type=int,
                    default=int(os.environ.get("TODO_CRASH_LOOP_RESTARTS", "20")))
    ap.add_argument("--lists", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4, help="DEALERs sharing the lists")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("TODO_CRASH_LOOP_SEED", "1")))
    ap.add_argument("--keep", action="store_true", help="keep the data and logs")
    args = ap.parse_args()
    if (msg := sl.missing_binaries()):
        print(f"SKIP: {msg}")
        return sl.SKIP

    work = tempfile.mkdtemp(prefix="todo-crash-loop-")
    ports = sl.free_ports(4)
    names = ["n1", "n2", "n3"]
    node_port = dict(zip(names, ports[:3]))
    router_port = ports[3]
    nodes = {n: sl.Process(n, sl.node_argv(n, node_port[n], os.path.join(work, n)),
                           os.path.join(work, f"{n}.log")) for n in names}
    router = sl.Process("router", sl.router_argv(
        router_port, [(n, node_port[n]) for n in names], "--timeout-ms", str(ROUTER_TIMEOUT_MS),
        "--heartbeat-ms", "100", "--down-after-ms", "500"), os.path.join(work, "router.log"))
    victim_name = "n1"
    ctx = zmq.Context()
    stats = Stats()
    ok = False
    chaos = None
    try:
        for p in nodes.values():
            p.start()
        router.start()
        for n, p in nodes.items():
            if not sl.wait_serving(ctx, node_port[n], p):
                raise RuntimeError(f"node {n} did not start:\n{p.log()[-2000:]}")
        if not sl.wait_serving(ctx, router_port, router):
            raise RuntimeError(f"router did not start:\n{router.log()[-2000:]}")

        clients = [sl.Client(ctx, router_port) for _ in range(args.clients)]
        client = clients[0]
        lists = []
        for i in range(args.lists):
            name = f"crash-{i:03d}"
            reply = client.call({"op": "locate", "list": name})
            owner = reply["result"]["node"]
            lists.append(ListModel(name, owner, owner == victim_name, i % len(clients)))
        n_victim = sum(lst.victim for lst in lists)
        print(f"seed {args.seed}; {len(lists)} lists ({len(clients)} clients), {n_victim} on "
              f"the victim {victim_name}; "
              f"{args.restarts} restarts; work dir {work}", flush=True)
        if n_victim == 0 or n_victim == len(lists):
            raise RuntimeError("the victim must own some lists but not all")

        rng = random.Random(args.seed)
        workload = Workload(clients, lists, random.Random(rng.random()), stats)
        chaos = Chaos(nodes[victim_name], node_port[victim_name], args.restarts,
                      random.Random(rng.random()), up_range=(1.5, 5.0), down_range=(0.05, 1.0))
        t0 = time.monotonic()
        chaos.start()
        tail_until = None
        while True:
            now = time.monotonic()
            if chaos.done.is_set() and tail_until is None:
                tail_until = now + 2.0  # keep going a little after the last restart
            if tail_until is not None and now >= tail_until:
                break
            workload.issue(now)
            workload.receive(20)
            workload.expire(time.monotonic())
            for n, p in nodes.items():
                if n != victim_name and not p.alive():
                    raise RuntimeError(f"node {n} died:\n{p.log()[-2000:]}")
            if not router.alive():
                raise RuntimeError(f"router died:\n{router.log()[-2000:]}")
        # Let what is in flight finish (bounded by the client deadline).
        drain_end = time.monotonic() + CLIENT_DEADLINE_S + 1
        while workload.inflight and time.monotonic() < drain_end:
            workload.receive(50)
            workload.expire(time.monotonic())
        run_s = time.monotonic() - t0
        if chaos.error:
            raise RuntimeError(chaos.error + "\n" + nodes[victim_name].log()[-3000:])

        final = read_all(client, lists)
        unread = [lst.name for lst in lists if lst.name not in final]
        if unread:
            stats.violation(f"{len(unread)} lists could not be read at the end: {unread[:5]}")
        extras = 0
        entries_total = 0
        for lst in lists:
            if lst.name in final:
                extras += verify_list(lst, final[lst.name], stats)
                entries_total += len(final[lst.name])

        dups = sum(c.duplicates for c in clients)
        unknown_ids = sum(c.unknown_ids for c in clients)
        if dups or unknown_ids:
            stats.violation(f"{dups} duplicate replies, {unknown_ids} replies with unknown ids")
        if stats.unknown["no reply"]:
            stats.violation(f"{stats.unknown['no reply']} requests got no reply within "
                            f"{CLIENT_DEADLINE_S} s (the router must answer within its deadline)")
        if chaos.kills != args.restarts:
            stats.violation(f"only {chaos.kills} of {args.restarts} restarts happened")
        if args.restarts > 0 and stats.acked_victim == 0:
            stats.violation("no request to the victim was acknowledged: the test proved nothing")

        exit_codes = {"router": router.terminate()}
        for n, p in nodes.items():
            exit_codes[n] = p.terminate()
        for who, code in exit_codes.items():
            if code != 0:
                stats.violation(f"{who} exited with {code} on SIGTERM (expected 0)")

        acked_total = sum(stats.acked.values())
        print(f"ran {run_s:.1f} s: {stats.sent} requests sent; acknowledged {acked_total} "
              f"(add {stats.acked['add']}, update {stats.acked['update']}, "
              f"delete {stats.acked['delete']}; {stats.acked_victim} on the victim); "
              f"failed {dict(stats.failed)}; unknown outcome {dict(stats.unknown)}; "
              f"late replies {stats.late_replies}")
        rt = chaos.restart_times
        print(f"restarts: {chaos.kills} kill -9 of {victim_name}; restart to serving "
              f"{min(rt) if rt else 0:.2f}-{max(rt) if rt else 0:.2f} s")
        print(f"final read: {entries_total} entries in {len(final)} lists, {extras} from adds "
              f"with unknown outcome; errors on other nodes' lists: {stats.other_errors}")
        if stats.violations:
            print(f"FAILED: {len(stats.violations)} violations:")
            for text in stats.violations[:50]:
                print("  " + text)
            return 1
        print("verification: OK (every acknowledged change present, nothing unacknowledged "
              "twice, ids never reused, other nodes never failed)")
        ok = True
        return 0
    finally:
        if chaos is not None:
            chaos.stop.set()
            chaos.join(timeout=40)
        for p in [router, *nodes.values()]:
            if p.alive():
                p.kill9()
        ctx.destroy(linger=0)
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs and data kept in {work}")


if __name__ == "__main__":
    sys.exit(main())
