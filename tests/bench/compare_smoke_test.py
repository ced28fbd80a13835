#!/usr/bin/python3
"""Smoke test of tests/bench/compare (never of speed): a --quick run on small
lists completes, exits 0 and prints the table with a row for every setup,
the cost of request ids for the +rid setups, and the replicated-smart
setup (todo-bench --smart, no router) with its paired ratios.
Exits 77 (skipped) when compare does, i.e. without redis-server.

$TODO_BUILD_DIR names the build dir holding the binaries (ctest sets it).
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    build = os.environ.get("TODO_BUILD_DIR", "")
    if not build:
        raise SystemExit("set TODO_BUILD_DIR to the build dir")
    argv = [os.path.join(HERE, "compare"), "--build", build, "--quick", "--duration", "1",
            "--lists", "1000", "--settle", "1"]  # ctest runs beside it: don't wait long
    r = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if r.returncode == 77:
        return 77
    failures = []
    if r.returncode != 0:
        failures.append("compare exited %d" % r.returncode)
    if not re.search(r"^setup +ops/s .*p99 ms +vs always +paired +cpu s/1k op +busiest process",
                     r.stdout, re.M):
        failures.append("no table header")
    for setup in ("redis-always", "redis-everysec", "node", "node+rid", "router", "router+rid",
                  "redis-replica", "replicated", "replicated-smart"):
        # name, ops/s, min..max, p99, ratio, paired ratio, cpu per 1k ops, busiest process
        row = r"^%s +\d+ +\d+\.\.\d+ +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +\S+ \d+%%" % (
            re.escape(setup))
        if not re.search(row, r.stdout, re.M):
            failures.append("no table row for " + setup)
    # The cost of request ids: each +rid setup over its twin, same round.
    if not re.search(r"^cost of request ids: ", r.stdout, re.M):
        failures.append("no rid cost line")
    for setup in ("node+rid", "router+rid"):
        if not re.search(r"^  %s +[\d.]+ \([\d.]+\.\.[\d.]+\)  cpu [\d.]+$" % re.escape(setup),
                         r.stdout, re.M):
            failures.append("no rid cost row for " + setup)
    # Skipping the router: the smart setup had a map, and its paired ratios.
    if not re.search(r"^round 1 replicated-smart .* smart: \d+ redirected$", r.stdout, re.M):
        failures.append("replicated-smart ran without a map (or no run line)")
    for line in (r"^replicated-smart \(preload 0\) vs redis-replica, paired over the rounds: "
                 r"[\d.]+$",
                 r"^replicated-smart \(preload 0\) vs replicated \(through the router\), "
                 r"paired over the rounds: [\d.]+$"):
        if not re.search(line, r.stdout, re.M):
            failures.append("no line " + line)
    for f in failures:
        print("FAIL: " + f)
    print("1 passed, 0 failed" if not failures else "0 passed, 1 failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
