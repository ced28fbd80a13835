#!/usr/bin/python3
"""Test of tests/bench/compare --plot (never of speed): from a made-up
results file (compare --json's shape) and a failover file (failover_times
--json's), compare --plot-from draws a PNG with gnuplot (its signature and
size checked: three panels side by side), without --failover-json two
panels; a file that is not compare's JSON, or a failover file without kill
times, is refused with exit 2 and a message. Runs nothing else.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
COMPARE = os.path.join(HERE, "compare")


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def run(*args):
    r = subprocess.run([COMPARE, *args], capture_output=True, text=True, timeout=120,
                       check=False)
    sys.stdout.write(r.stdout + r.stderr)
    return r


def main():
    failures = []
    with tempfile.TemporaryDirectory(prefix="todo-plot-test-") as d:
        table, runs = [], []
        for i, name in enumerate(("redis-always", "redis-everysec", "node", "router",
                                  "redis-replica", "replicated")):
            ops = 100000.0 + 20000 * i
            table.append({"setup": name, "label": name, "preload": 0, "ops_per_sec": ops,
                          "ops_per_sec_min": ops * 0.9, "ops_per_sec_max": ops * 1.1,
                          "p99_ms": 5.0 + i})
            for rnd in (1, 2, 3):
                runs.append({"setup": name, "preload": 0, "round": rnd, "rc": 0,
                             "ops_per_sec": ops, "p99_ms": 4.0 + i + rnd})
        # A failed setup (no successful run) is left out of the bars.
        table.append({"setup": "x", "label": "x", "preload": 0, "ops_per_sec": None,
                      "p99_ms": None})
        results = os.path.join(d, "results.json")
        with open(results, "w") as f:
            json.dump({"config": {"rounds": 3, "duration": 10, "date": "2026-12-06 12:00 UTC"},
                       "runs": runs, "table": table}, f)
        failover = os.path.join(d, "failover.json")
        with open(failover, "w") as f:
            json.dump({"kills": 5, "times_s": [2.1, 2.4, 2.6, 3.0, 2.2]}, f)

        out = os.path.join(d, "bench.png")
        r = run("--plot-from", results, "--failover-json", failover, "--plot", out)
        if r.returncode != 0 or not os.path.exists(out):
            failures.append("compare --plot-from exited %d" % r.returncode)
        else:
            w, h = png_size(out)
            if (w, h) != (3 * 560, 520):
                failures.append("three panels expected 1680x520, got %dx%d" % (w, h))
            if os.path.getsize(out) > 200_000:
                failures.append("the PNG is %d bytes" % os.path.getsize(out))
        out2 = os.path.join(d, "bench2.png")
        r = run("--plot-from", results, "--plot", out2)
        if r.returncode != 0 or png_size(out2) != (2 * 560, 520):
            failures.append("without failover times: exit %d" % r.returncode)

        r = run("--plot-from", failover, "--plot", os.path.join(d, "bad.png"))
        if r.returncode != 2 or "not a compare --json file" not in r.stdout:
            failures.append("a non-results file: exit %d" % r.returncode)
        r = run("--plot-from", results, "--failover-json", results, "--plot",
                os.path.join(d, "bad.png"))
        if r.returncode != 2 or "no list of kill times" not in r.stderr:
            failures.append("a failover file without times: exit %d" % r.returncode)
        r = run("--plot-from", results)
        if r.returncode != 2:
            failures.append("--plot-from without --plot: exit %d" % r.returncode)
    for f in failures:
        print("FAIL: " + f)
    print("1 passed, 0 failed" if not failures else "0 passed, 1 failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
