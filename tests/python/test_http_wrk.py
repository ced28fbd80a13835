#!/usr/bin/python3
"""A short wrk run of the book's workload against the router's HTTP API.

Starts 2 nodes and a router (deploy/cluster, HTTP on a free port), runs
`wrk -t1 -c16 -d3s -s tests/http/book_mix.lua` (80% GET /entries, 20%
POST /add_entry over 1,000 lists), prints wrk's figures and asserts that
every answer was 2xx (the script's "non2xx" count is 0) and that requests
were made. No timed assertion: the figures are printed, not judged.

Environment: WRK_DURATION (default 3s), WRK_CONNECTIONS (default 16),
WRK_NODE_FLAGS (default "--no-sync"; "" to fsync every group commit).
Exits 77 (ctest's skip) if wrk or the binaries are missing.
"""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from http_cluster import REPO, HttpCluster, binaries_missing  # noqa: E402

SCRIPT = os.path.join(REPO, "tests", "http", "book_mix.lua")


def main():
    wrk = shutil.which("wrk")
    if wrk is None:
        print("SKIP: wrk is not installed (Debian package wrk)")
        return 77
    if binaries_missing():
        print(f"SKIP: {binaries_missing()}")
        return 77
    cluster = HttpCluster(nodes=2, node_flags=os.environ.get("WRK_NODE_FLAGS", "--no-sync"))
    try:
        cluster.start()
        cmd = [wrk, "-t1", f"-c{os.environ.get('WRK_CONNECTIONS', '16')}",
               f"-d{os.environ.get('WRK_DURATION', '3s')}", "--latency", "--timeout", "10s",
               "-s", SCRIPT, f"http://127.0.0.1:{cluster.http_port}"]
        print("$", " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        print(proc.stdout)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            print(f"FAIL: wrk exited {proc.returncode}")
            return 1
        non2xx = re.search(r"(?m)^non2xx (\d+)$", proc.stdout)
        sent = re.search(r"(?m)^requests (\d+) (\d+)$", proc.stdout)
        total = re.search(r"(\d+) requests in", proc.stdout)
        errors = re.search(r"Socket errors: (.*)", proc.stdout)
        failures = []
        if not non2xx or int(non2xx.group(1)) != 0:
            failures.append(f"non-2xx answers: {non2xx.group(1) if non2xx else 'not reported'}")
        if not sent or int(sent.group(1)) == 0 or int(sent.group(2)) == 0:
            failures.append("the script sent no GET or no POST")
        if not total or int(total.group(1)) == 0:
            failures.append("no requests completed")
        if errors:
            failures.append(f"socket errors: {errors.group(1)}")
        if failures:
            print("FAIL: " + "; ".join(failures))
            print(cluster.log("r1")[-3000:], file=sys.stderr)
            return 1
        print("1 passed, 0 failed")
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
