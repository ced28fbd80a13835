#!/usr/bin/python3
"""Tests of tests/python/etcd_cluster.py, the etcd fixture Python tests of
the replicated mode use: a 3-member cluster starts healthy, serves keys,
survives the loss of a member, takes it back, and leaves no process behind."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from etcd_cluster import ETCD_BIN, EtcdCluster  # noqa: E402


def alive(pid):
    return os.path.exists(f"/proc/{pid}")


class EtcdClusterTest(unittest.TestCase):
    def test_three_members_lose_one_and_take_it_back(self):
        with EtcdCluster(members=3) as etcd:
            self.assertEqual(len(etcd.endpoints), 3)
            self.assertEqual(etcd.flag.count(","), 2)
            pids = [etcd.pid(i) for i in range(3)]
            self.assertTrue(all(pids))
            rev = etcd.put("k", "v1", member=0)
            self.assertGreater(rev, 0)
            self.assertEqual(etcd.get("k", member=2), "v1")
            etcd.kill(0)
            self.assertIsNone(etcd.pid(0))
            # A quorum is left; if e0 led, the others elect a leader first.
            self.assertTrue(etcd.wait_healthy([1, 2], timeout=30))
            etcd.put("k", "v2", member=1)
            self.assertEqual(etcd.get("k", member=2), "v2")
            etcd.restart(0)
            self.assertEqual(etcd.get("k", member=0), "v2")  # caught up
            data = etcd.dir
            pids = [etcd.pid(i) for i in range(3)]
        self.assertFalse(any(alive(p) for p in pids))
        self.assertFalse(os.path.exists(data))

    def test_pause_and_resume(self):
        with EtcdCluster(members=1) as etcd:
            etcd.pause(0)
            self.assertFalse(etcd.healthy(0, timeout=0.3))
            etcd.resume(0)
            self.assertTrue(etcd.wait_healthy(timeout=10))
            self.assertIsNone(etcd.get("absent"))


if __name__ == "__main__":
    if not os.access(ETCD_BIN, os.X_OK):
        print(f"{ETCD_BIN} missing: install etcd-server (deploy/install-deps)", file=sys.stderr)
        sys.exit(1)  # CI installs it: a missing etcd is a failure, not a skip
    unittest.main()
