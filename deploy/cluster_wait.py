#!/usr/bin/python3
"""Bounded waits on a replicated cluster, for deploy/cluster.

  cluster_wait.py --admin BIN --etcd URL --router EP --timeout S in-sync
      until every member is alive, every replica in sync, and the router
      routes (a read of a never-written list answers ok)
  cluster_wait.py ... failover NAME
      until no partition names NAME primary; prints how long that took
  cluster_wait.py ... balanced
      until no move is left (prints progress every few seconds)
  cluster_wait.py ... left NAME
      until NAME is no longer a member (drained)

Exit status 0 when done, 1 (with one line saying why) at the timeout.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from todo_client import TodoClient, TodoError  # noqa: E402


def status(args):
    done = subprocess.run([args.admin, "--etcd", args.etcd, "status", "--json"],
                          capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        return None, done.stderr.strip()
    return json.loads(done.stdout), ""


def in_sync(args, deadline):
    last = ""
    while time.monotonic() < deadline:
        st, err = status(args)
        if st is not None:
            down = [m["name"] for m in st["members"] if not m["alive"]]
            behind = [p for p in st["partitions"] if p["in_sync"] != p["replicas"]]
            if not down and not behind:
                break
            last = f"members down: {down or 'none'}; {len(behind)} partitions not fully in sync"
        else:
            last = err
        time.sleep(0.2)
    else:
        sys.exit(f"cluster: not every replica in sync after {args.timeout:g} s: {last}")
    with TodoClient(args.router, timeout=2.0, retries=0) as client:
        while True:
            try:
                client.entries("cluster-probe")
                return
            except TodoError as error:
                if time.monotonic() >= deadline:
                    sys.exit(f"cluster: the router does not route yet: {error.code}: "
                             f"{error.message}")
                time.sleep(0.1)


def failover(args, name, start, deadline):
    """Polls the router's map (fast: it follows etcd) until no partition
    names `name` primary."""
    led = None
    with TodoClient(args.router, timeout=1.0, retries=0) as client:
        while time.monotonic() < deadline:
            try:
                parts = client.call("map")["parts"]
            except TodoError:
                time.sleep(0.05)
                continue
            mine = [p for p, (primary, _) in enumerate(parts) if primary == name]
            if led is None:
                led = len(mine)
            if not mine:
                print(f"failover: {name}'s {led} partitions have new primaries "
                      f"{time.monotonic() - start:.1f} s after the kill")
                return
            time.sleep(0.05)
    sys.exit(f"cluster: {name} still leads partitions after {args.timeout:g} s "
             "(no in-sync copy alive?)")


def balanced(args, start, deadline, name=None):
    last_print = 0.0
    while time.monotonic() < deadline:
        st, err = status(args)
        if st is not None:
            mv = st["moves"]
            member = name is not None and any(m["name"] == name for m in st["members"])
            if mv["balanced"] and not member:
                print(f"balanced after {time.monotonic() - start:.1f} s")
                return
            if time.monotonic() - last_print >= 5:
                last_print = time.monotonic()
                print(f"  {len(mv['in_progress'])} partitions moving, {mv['remaining']} more to "
                      f"go" + (f"; waiting for {mv['joining'][0]} to join" if mv["joining"] else "")
                      + (f"; {name} still a member" if member else ""), flush=True)
        time.sleep(0.2)
    sys.exit(f"cluster: not balanced after {args.timeout:g} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--admin", required=True)
    ap.add_argument("--etcd", required=True)
    ap.add_argument("--router", required=True)
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("what", choices=["in-sync", "failover", "balanced", "left"])
    ap.add_argument("name", nargs="?")
    args = ap.parse_args()
    start = time.monotonic()
    deadline = start + args.timeout
    if args.what == "in-sync":
        in_sync(args, deadline)
    elif args.what == "balanced":
        balanced(args, start, deadline)
    elif args.what == "left":
        if not args.name:
            sys.exit("cluster_wait.py: left needs a node name")
        balanced(args, start, deadline, args.name)
    else:
        if not args.name:
            sys.exit("cluster_wait.py: failover needs a node name")
        failover(args, args.name, start, deadline)


if __name__ == "__main__":
    main()
