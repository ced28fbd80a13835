#!/usr/bin/python3
"""Test hosts on one machine: network namespaces joined by a bridge.

A Topology is a star of network namespaces ("hosts") around a bridge that
lives in a namespace of its own ("todo-sw-<suffix>"), so nothing is created
in, or routed through, the namespace this process started in:

    todo-n1-<suffix>  v<suffix>n1 ==veth== b<suffix>n1 ┐
    todo-ra-<suffix>  v<suffix>ra ==veth== b<suffix>ra ├─ br<suffix>  (in todo-sw-<suffix>)
    ...                                                 ┘

Every host gets one address in SUBNET (a /24 that exists only inside these
namespaces, with no default route, so traffic to anything else fails with
"network unreachable" instead of leaving the machine), and its loopback.
Every veth is created directly inside the namespaces (`ip -n`), never in the
caller's. destroy() deletes every namespace, which deletes the veths and the
bridge with them; it is safe to call more than once and after a partial
create().

Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2's `ip`.
"""

import ctypes
import os
import subprocess

SUBNET = "10.213.7"  # /24 inside the test namespaces only
CLONE_NEWNET = 0x40000000
IP_TIMEOUT = 10  # seconds; bounds every `ip` command


class TopologyError(Exception):
    """An `ip` command failed; `skippable` if it was creating the topology."""

    def __init__(self, message, skippable=False):
        super().__init__(message)
        self.skippable = skippable


def ip(*args, check=True):
    """Runs `ip ARGS`; returns CompletedProcess. Raises TopologyError on failure."""
    try:
        done = subprocess.run(["ip", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=IP_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise TopologyError(f"ip {' '.join(args)}: {error}") from error
    if check and done.returncode != 0:
        raise TopologyError(f"ip {' '.join(args)} failed ({done.returncode}): "
                            f"{done.stderr.strip()}")
    return done


class Topology:
    """Namespaces named todo-<host>-<suffix>, one per host, on one bridge.

    Args:
      hosts: {host: last address byte}, e.g. {"n1": 11, "ra": 21}; host names
        are 2 characters so interface names stay within 15 bytes.
      suffix: unique per run (the pid), part of every namespace and link name.
    """

    def __init__(self, hosts, suffix):
        for host in hosts:
            if len(host) != 2:
                raise ValueError(f"host names are 2 characters: {host!r}")
        self.hosts = dict(hosts)
        self.suffix = str(suffix)
        self.switch = f"todo-sw-{self.suffix}"
        self.bridge = f"br{self.suffix}"
        self._created = []  # namespaces, in creation order

    # --- names ---

    def ns(self, host):
        """The namespace of `host`."""
        return f"todo-{host}-{self.suffix}"

    def addr(self, host):
        """The IPv4 address of `host` (inside the namespaces only)."""
        return f"{SUBNET}.{self.hosts[host]}"

    def host_if(self, host):
        """The host's end of its veth (inside its namespace)."""
        return f"v{self.suffix}{host}"

    def port_if(self, host):
        """The bridge's end of the host's veth (inside the switch namespace)."""
        return f"b{self.suffix}{host}"

    # --- life cycle ---

    def create(self):
        """Creates the switch, every host and their links.

        Raises TopologyError (skippable=True: the machine can't do it, e.g.
        `ip netns add` is not permitted or veth/bridge links are unsupported).
        """
        try:
            self._add_ns(self.switch)
            ip("-n", self.switch, "link", "set", "lo", "up")
            ip("-n", self.switch, "link", "add", self.bridge, "type", "bridge")
            ip("-n", self.switch, "link", "set", self.bridge, "up")
            for host in self.hosts:
                ns = self.ns(host)
                self._add_ns(ns)
                ip("-n", ns, "link", "set", "lo", "up")
                ip("-n", self.switch, "link", "add", self.port_if(host), "type", "veth", "peer",
                   "name", self.host_if(host), "netns", ns)
                ip("-n", self.switch, "link", "set", self.port_if(host), "master", self.bridge)
                ip("-n", self.switch, "link", "set", self.port_if(host), "up")
                ip("-n", ns, "addr", "add", f"{self.addr(host)}/24", "dev", self.host_if(host))
                ip("-n", ns, "link", "set", self.host_if(host), "up")
        except TopologyError as error:
            error.skippable = True
            raise

    def _add_ns(self, name):
        ip("netns", "add", name)
        self._created.append(name)

    def destroy(self):
        """Deletes every namespace this Topology created; returns the failures."""
        failures = []
        for name in reversed(self._created):
            done = ip("netns", "del", name, check=False)
            if done.returncode != 0 and os.path.exists(f"/run/netns/{name}"):
                failures.append(f"ip netns del {name}: {done.stderr.strip()}")
        self._created = []
        return failures

    # --- faults ---

    def cut(self, host):
        """Takes the bridge's port to `host` down: the host's cable is pulled."""
        ip("-n", self.switch, "link", "set", self.port_if(host), "down")

    def heal(self, host):
        """Brings the bridge's port to `host` back up."""
        ip("-n", self.switch, "link", "set", self.port_if(host), "up")

    # --- running things ---

    def command(self, host, argv):
        """The argv that runs `argv` inside the host's namespace.

        `ip netns exec` execs the command in place, so the pid of the process
        started with it is the pid of the command itself.
        """
        return ["ip", "netns", "exec", self.ns(host), *argv]

    def enter(self, host):
        """Moves the calling thread into the host's namespace (setns(2)).

        Call before any socket or thread is made: threads and sockets made
        afterwards (ZeroMQ's I/O threads too) live in that namespace. Verifies
        the move by comparing namespace inodes; raises TopologyError if it
        didn't happen.
        """
        path = f"/run/netns/{self.ns(host)}"
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise TopologyError(f"setns({path}): {os.strerror(err)}")
        finally:
            os.close(fd)
        if os.stat("/proc/thread-self/ns/net").st_ino != os.stat(path).st_ino:
            raise TopologyError(f"setns({path}) did not move this thread")
