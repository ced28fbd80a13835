#!/usr/bin/python3
"""The operator's page in a real browser, against a real replicated cluster
(one etcd member, 3 todo-nodes with R=2, a todo-router with --http), with
Debian's chromium in headless mode driven over the DevTools protocol
(cdp.py):

- /api/cluster has its documented keys and types; /api/list answers; bad
  query parameters get 400 with a JSON message;
- the page loads with no console error, uncaught exception or failed load,
  and lists the three nodes, up;
- a node killed with kill -9 shows as down on the page within a few
  seconds (printed), and as up again after its restart;
- the list look-up box answers the owner and the entry count of a list
  written through the HTTP API;
- in static mode (two nodes and a router of their own) the page lists the
  nodes and hides partitions and moves, again with no error;
- every metric deploy/grafana/todo-cluster.json queries is exported by the
  router or a node.

Screenshots (operator_page.png: the final page; operator_page_down.png:
with the node down; operator_page_static.png) go to $TODO_ARTIFACT_DIR (ctest: the build's
tests/web/). Every process is started here and stopped by pid; every wait
is bounded.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "replication"))
import repl_lib as rl  # noqa: E402
import zmq  # noqa: E402
import cdp  # noqa: E402
import dashboard_check  # noqa: E402

ARTIFACTS = os.path.abspath(os.environ.get("TODO_ARTIFACT_DIR", os.path.join(rl.BUILD_DIR,
                                                                              "tests", "web")))
LIST = "page-demo"


def http(port, method, target, body=None, timeout=10):
    """(status, parsed JSON or text) of one request to the router's HTTP port."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{target}", method=method,
                                 data=body.encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    text = raw.decode()
    return status, json.loads(text) if ctype.startswith("application/json") else text


def check_types(obj, spec, where):
    """Asserts obj has every key of spec with a value of its type(s)."""
    for key, types in spec.items():
        assert key in obj, f"{where}: no key {key!r} in {json.dumps(obj)[:400]}"
        types = types if isinstance(types, tuple) else (types,)
        v = obj[key]
        ok = any((v is None) if t is None else
                 (isinstance(v, t) and not (t is int and isinstance(v, bool))) for t in types)
        assert ok, f"{where}.{key} is {v!r}, expected {types}"


def check_cluster_json(doc, partitions):
    check_types(doc, {"api": int, "router": dict, "cluster": dict, "nodes": list,
                      "partitions_included": str, "partitions": list, "moves": list,
                      "not_in_sync": list, "unavailable": list, "rates": dict}, "cluster")
    assert doc["api"] == 1, doc["api"]
    check_types(doc["router"], {"name": str, "mode": str, "serving": bool, "inflight": int,
                                "time_ms": int}, "router")
    assert doc["router"]["mode"] == "replicated"
    check_types(doc["cluster"], {"name": str, "has_map": bool, "map_error": (str, None),
                                 "map_version": int, "map_revision": int, "partition_count": int,
                                 "replicas": int, "min_insync": int, "controller": (str, None),
                                 "etcd_revision": int, "partition_states": dict}, "cluster")
    assert doc["cluster"]["partition_count"] == partitions and doc["cluster"]["replicas"] == 2
    for s in ("ok", "catching_up", "under_replicated", "moving", "unavailable"):
        check_types(doc["cluster"]["partition_states"], {s: int}, "partition_states")
    for n in doc["nodes"]:
        check_types(n, {"name": str, "endpoint": (str, None), "repl_endpoint": (str, None),
                        "member": bool, "leaving": bool, "lease": bool,
                        "heartbeat": (str, None), "heard_ms_ago": (int, None), "alive": bool,
                        "status": str, "primaries": int, "backups": int, "not_in_sync": int,
                        "stats": (dict, None)}, f"node {n.get('name')}")
        assert n["status"] in ("up", "down", "starting"), n
        if n["stats"] is not None:
            check_types(n["stats"], {"ok": bool, "error": (str, None), "age_ms": (int, None),
                                     "inflight": (int, None), "live_actors": (int, None)},
                        "node stats")
    assert doc["partitions_included"] == "all"
    assert len(doc["partitions"]) == partitions, len(doc["partitions"])
    for p in doc["partitions"]:
        check_types(p, {"partition": int, "epoch": int, "leader_epoch": int, "replicas": list,
                        "in_sync": list, "handoff": (str, None), "state": str,
                        "seq": (int, None), "backups": list}, "partition")
        for b in p["backups"]:
            check_types(b, {"name": str, "mode": str, "in_sync": bool, "acked": int, "lag": int},
                        "backup")
    for r in doc["not_in_sync"]:
        check_types(r, {"partition": int, "replica": str, "alive": bool, "mode": (str, None),
                        "lag": (int, None), "acked": (int, None)}, "not_in_sync")
    check_types(doc["rates"], {"slot_ms": int, "slots": list}, "rates")
    for s in doc["rates"]["slots"]:
        check_types(s, {"t_ms": int, "seconds": float, "requests": int, "replies": dict,
                        "latency_count": int, "p50_ms": (float, int, None),
                        "p90_ms": (float, int, None), "p99_ms": (float, int, None)}, "slot")
        assert set(s["replies"]) == {"ok", "bad_request", "unknown_op", "not_found", "overloaded",
                                     "unavailable", "timeout", "internal"}, s["replies"]


def check_bad_parameters(port):
    for target in ("/api/cluster?partitions=some", "/api/cluster?verbose=1",
                   "/api/cluster?partitions=all&partitions=none", "/api/list",
                   "/api/list?name=", "/api/list?list=x", "/api/list?name=" + "x" * 300):
        status, body = http(port, "GET", target)
        assert status == 400, f"{target}: {status} {body}"
        assert isinstance(body, dict) and body["error"]["code"] == "bad_request", (target, body)
        assert body["error"]["message"], (target, body)
        rl.log(f"{target[:40]}: 400 {body['error']['message'][:70]}")


def node_row(browser, name):
    """The page's row for node `name`: its data-status, or None."""
    return browser.evaluate(
        f"(() => {{ const r = document.querySelector('#nodes tr[data-node=\"{name}\"]');"
        f" return r ? r.dataset.status : null; }})()")


def check_static_mode(wd, browser):
    """Two static-mode nodes and a router: the page shows the nodes, hides
    what static mode has not, and logs no error."""
    ports = rl.sl.free_ports(4)
    procs = []
    try:
        nodes = []
        for i, name in enumerate(("s1", "s2")):
            data = os.path.join(wd, "static", name)
            os.makedirs(data, exist_ok=True)
            ep = f"tcp://127.0.0.1:{ports[i]}"
            nodes += ["--node", f"{name}={ep}"]
            procs.append(rl.sl.Process(name, [rl.NODE_BIN, "--name", name, "--listen", ep,
                                              "--data", data],
                                       os.path.join(wd, f"static-{name}.log")).start())
        procs.append(rl.sl.Process("rs", [rl.ROUTER_BIN, "--listen", f"tcp://127.0.0.1:{ports[2]}",
                                          *nodes, "--http", f"127.0.0.1:{ports[3]}"],
                                   os.path.join(wd, "static-router.log")).start())
        assert rl.sl.wait_until(lambda: http_ok(ports[3]), 20, 0.2), "static router: no HTTP"
        browser.navigate(f"http://127.0.0.1:{ports[3]}/")
        ok = browser.wait_for(
            "document.body.dataset.mode === 'static' && document.body.dataset.updates >= 2 && "
            "document.querySelectorAll('#nodes tr[data-status=\"up\"]').length === 2", 20)
        assert ok, f"static mode: the page never listed 2 nodes up; errors {browser.errors}"
        hidden = browser.evaluate(
            "['partitions-section', 'moves-section', 'cluster-section'].every(id => "
            "getComputedStyle(document.getElementById(id)).display === 'none') && "
            "getComputedStyle(document.getElementById('static-note')).display !== 'none'")
        assert hidden, "static mode: the partitions are shown or the note is not"
        browser.screenshot(os.path.join(ARTIFACTS, "operator_page_static.png"))
        browser.pump(0.5)
        assert not browser.errors, "static mode: the page logged errors:\n  " + "\n  ".join(
            browser.errors)
        rl.log("static mode: the page lists s1, s2 up and no partitions")
        # Leave the page before its router stops: its next poll would be
        # refused, and that is the test's doing, not the page's.
        browser.navigate("about:blank")
    finally:
        for p in reversed(procs):
            p.terminate(timeout=15)


def http_ok(port):
    try:
        return http(port, "GET", "/health")[0] == 200
    except OSError:
        return False


def scenario(wd):
    os.makedirs(ARTIFACTS, exist_ok=True)
    etcd = rl.Etcd(wd).start()
    partitions = 64
    cluster = rl.Cluster(wd, etcd, nodes=3, replicas=2, partitions=partitions)
    http_port, *metrics_ports = rl.sl.free_ports(4)
    node_extra = {n: ["--metrics", f"127.0.0.1:{p}"] for n, p in zip(cluster.names,
                                                                      metrics_ports)}
    browser = None
    load = None
    ctx = zmq.Context()
    try:
        cluster.init()
        for n in cluster.names:
            cluster.start_node(n, node_extra[n])
        cluster.start_router(["--http", f"127.0.0.1:{http_port}"])
        cluster.wait_in_sync(60)
        assert rl.sl.wait_until(lambda: http(http_port, "GET", "/health")[0] == 200, 20, 0.2), \
            "the router's HTTP port never answered"

        # A list with three entries, through the HTTP API.
        for i in range(3):
            body = json.dumps({"date": "2026-12-19", "title": f"entry {i}"})
            ok = rl.sl.wait_until(lambda: http(http_port, "POST", f"/lists/{LIST}/entries",
                                               body)[0] == 201, 15, 0.2)
            assert ok, f"POST /lists/{LIST}/entries never answered 201"
        status, owner = http(http_port, "GET", f"/lists/{LIST}/owner")
        assert status == 200, owner
        owner = owner["node"]

        # The JSON: shape, the look-up, bad parameters.
        assert rl.sl.wait_until(
            lambda: all(n["status"] == "up" and n["stats"] and n["stats"]["ok"]
                        for n in http(http_port, "GET", "/api/cluster")[1]["nodes"]), 20, 0.2), \
            "the nodes' stats never came in"
        status, doc = http(http_port, "GET", "/api/cluster")
        assert status == 200, doc
        check_cluster_json(doc, partitions)
        assert [n["name"] for n in doc["nodes"]] == cluster.names, doc["nodes"]
        assert sum(n["primaries"] for n in doc["nodes"]) == partitions
        assert sum(n["backups"] for n in doc["nodes"]) == partitions
        assert all(p["backups"] for p in doc["partitions"]), "no lag figures from the primaries"
        status, problems = http(http_port, "GET", "/api/cluster?partitions=problems")
        assert status == 200 and problems["partitions_included"] == "problems", problems
        status, lookup = http(http_port, "GET", "/api/list?name=" + urllib.parse.quote(LIST))
        assert status == 200, lookup
        assert lookup["node"] == owner and lookup["entries"] == 3, lookup
        assert lookup["partition"] == rl.partition_of(LIST, partitions), lookup
        assert lookup["node"] in lookup["replicas"] and len(lookup["replicas"]) == 2, lookup
        rl.log(f"/api/list?name={LIST}: {lookup}")
        check_bad_parameters(http_port)

        # A light write load through the router meanwhile, so the charts
        # and the partitions have something to show.
        load = rl.WriteLoad(ctx, [cluster.endpoint(n) for n in cluster.names], partitions,
                            lists=100, window=8, deadline=6.0,
                            router=f"tcp://127.0.0.1:{cluster.router_port}")
        load.start()

        # The page in a browser.
        browser = cdp.Browser(wd).start()
        page = f"http://127.0.0.1:{http_port}/"
        browser.navigate(page)
        ok = browser.wait_for(
            "document.body.dataset.updates >= 2 && "
            "document.querySelectorAll('#nodes tr[data-status=\"up\"]').length === 3", 20)
        names = browser.evaluate("[...document.querySelectorAll('#nodes tbody tr')]"
                                 ".map(r => r.dataset.node)")
        assert ok, f"the page never listed 3 nodes up: {names}; errors {browser.errors}"
        assert names == cluster.names, names
        rl.log(f"page loaded: nodes {names}, mode "
               f"{browser.evaluate('document.body.dataset.mode')}")
        squares = browser.evaluate("document.querySelectorAll('#partition-rows rect').length")
        assert squares == 2 * partitions, f"{squares} partition squares, expected {2 * partitions}"

        # kill -9 a node that is not the list's owner; the page shows it down.
        victim = next(n for n in cluster.names if n != owner)
        t_kill = time.monotonic()
        cluster.kill9(victim)
        down = browser.wait_for(f"(() => {{ const r = document.querySelector("
                                f"'#nodes tr[data-node=\"{victim}\"]');"
                                f" return r && r.dataset.status === 'down'; }})()", 15)
        took = time.monotonic() - t_kill
        assert down, f"{victim} not shown down {took:.1f} s after kill -9: {node_row(browser, victim)}"
        rl.log(f"kill -9 {victim}: the page shows it down after {took:.1f} s")
        assert took <= 10, f"the page took {took:.1f} s to show {victim} down"
        browser.pump(1.5)  # a poll or two more: the partitions' new state
        browser.screenshot(os.path.join(ARTIFACTS, "operator_page_down.png"))

        # Restarted: up again.
        t_start = time.monotonic()
        cluster.start_node(victim, node_extra[victim])
        up = browser.wait_for(f"(() => {{ const r = document.querySelector("
                              f"'#nodes tr[data-node=\"{victim}\"]');"
                              f" return r && r.dataset.status === 'up'; }})()", 30)
        assert up, f"{victim} not shown up again after its restart: {node_row(browser, victim)}"
        rl.log(f"{victim} restarted: the page shows it up after "
               f"{time.monotonic() - t_start:.1f} s")

        # The look-up box.
        browser.evaluate(f"document.getElementById('lookup-name').value = {json.dumps(LIST)};"
                         " document.querySelector('#lookup button').click(); true")
        done = browser.wait_for("document.getElementById('lookup-result').dataset.state === "
                                "'done'", 15)
        result = browser.evaluate("(() => { const d = document.getElementById('lookup-result')"
                                  ".dataset; return {owner: d.owner, entries: d.entries,"
                                  " text: document.getElementById('lookup-result').innerText};"
                                  " })()")
        assert done, f"the look-up never answered: {result}"
        assert result["owner"] == owner and result["entries"] == "3", result
        rl.log(f"look-up of {LIST}: owner {result['owner']}, {result['entries']} entries")

        # Let the cluster settle for the picture (the restarted node catches
        # up), then the final screenshot.
        cluster.wait_in_sync(60)
        load.stop()
        assert load.failure is None, load.failure
        assert load.acked_count() > 0, f"the load got nothing acknowledged: {load.errors}"
        rl.log(f"load: {load.acked_count()} writes acknowledged, errors {load.errors}")
        browser.pump(2.5)
        shot = browser.screenshot(os.path.join(ARTIFACTS, "operator_page.png"))
        rl.log(f"screenshots: {shot}, {os.path.join(ARTIFACTS, 'operator_page_down.png')}")
        browser.pump(0.5)
        assert not browser.errors, "the page logged errors:\n  " + "\n  ".join(browser.errors)

        # Static mode: the same page, without partitions.
        check_static_mode(wd, browser)

        # The Grafana dashboard queries only metrics that exist.
        texts = [http(http_port, "GET", "/metrics")[1]]
        for p in metrics_ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=5) as r:
                texts.append(r.read().decode())
        missing = dashboard_check.missing_metrics(texts)
        assert not missing, f"the dashboard queries metrics nobody exports: {missing}"
        rl.log(f"dashboard: all {len(dashboard_check.dashboard_metrics())} metrics exported")
    finally:
        if load is not None and load.is_alive():
            load.stop()
        if browser is not None:
            browser.stop()
        cluster.stop()
        etcd.stop()
        ctx.destroy(linger=0)


def main():
    rl.check_binaries()
    if not os.access(cdp.CHROMIUM, os.X_OK):
        print(f"{cdp.CHROMIUM} not found (deploy/install-deps installs chromium)")
        return 1
    return rl.run_test("operator-page", scenario)


if __name__ == "__main__":
    sys.exit(main())
