"""Checks that every metric deploy/grafana/todo-cluster.json queries is one
the router and the nodes export (their "# TYPE" lines; a histogram's
_bucket, _sum and _count series count as its family).

  /usr/bin/python3 tests/web/dashboard_check.py URL [URL...]   # /metrics URLs
"""

import json
import os
import re
import sys
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "todo-cluster.json")


def dashboard_metrics(path=DASHBOARD):
    """Every todo_* metric name in the dashboard's queries."""
    with open(path) as f:
        dash = json.load(f)
    names = set()

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                names.update(re.findall(r"\btodo_[a-z0-9_]+", t.get("expr", "")))
            walk(p.get("panels", []))

    walk(dash["panels"])
    return names


def exported_families(texts):
    """{family: type} from the "# TYPE" lines of Prometheus texts."""
    out = {}
    for text in texts:
        for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M):
            out[m.group(1)] = m.group(2)
    return out


def missing_metrics(texts, path=DASHBOARD):
    """The dashboard's metric names that no text exports (sorted)."""
    families = exported_families(texts)
    missing = []
    for name in sorted(dashboard_metrics(path)):
        if name in families:
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if families.get(base) == "histogram":
            continue
        missing.append(name)
    return missing


def main(urls):
    texts = []
    for u in urls:
        with urllib.request.urlopen(u, timeout=5) as r:
            texts.append(r.read().decode())
    missing = missing_metrics(texts)
    print(f"{len(dashboard_metrics())} metrics in the dashboard; missing: {missing or 'none'}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
