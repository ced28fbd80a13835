#!/usr/bin/python3
"""Checks of deploy/systemd: the unit templates and their example env files.

  1. `systemd-analyze verify` of todo-node@n1 and todo-router@r1 (copies of
     the units whose ExecStart names this build's binaries) exits 0 and says
     nothing about them (verify exits 0 on unknown keys and bad values, so
     any line naming a unit is a failure).
  2. `systemd-analyze security --offline=yes`: exposure level at most 2.0.
  3. Every flag of `todo-node --help` / `todo-router --help` is documented
     in node-n1.env.example / router-r1.env.example.
  4. Each unit's ExecStart, expanded the way systemd does (specifiers %i %S
     %%, ${VAR} as one word, $VAR split on spaces) with the unit's
     Environment= and the example env file (TODO_LISTEN moved to a free
     loopback port, TODO_NODES to --cluster and a temp cluster file), runs under a seccomp
     filter that allows only the socket families of the unit's
     RestrictAddressFamilies= (as systemd would): the node answers ping, the
     router routes a write and a read to it, and both exit 0 on SIGTERM.
     For information, it also shows what the node does without AF_NETLINK.

Exit status: 0 pass, 1 fail, 77 skip (no systemd-analyze). Env
TODO_BUILD_DIR names the build dir (default <repo>/build). Loopback only;
bounded waits; processes stopped by pid.
"""

import ctypes
import errno
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
UNITS = os.path.join(REPO, "deploy", "systemd")
sys.path.insert(0, os.path.join(REPO, "deploy"))
from todo_client import TodoClient  # noqa: E402  pylint: disable=wrong-import-position

BUILD_DIR = os.path.abspath(os.environ.get("TODO_BUILD_DIR", os.path.join(REPO, "build")))
BINARIES = {"todo-node": os.path.join(BUILD_DIR, "node", "todo-node"),
            "todo-router": os.path.join(BUILD_DIR, "router", "todo-router")}
# (template, instance, example env file)
UNIT_CASES = [("todo-node@.service", "n1", "node-n1.env.example"),
              ("todo-router@.service", "r1", "router-r1.env.example")]
MAX_EXPOSURE = 2.0
CMD_TIMEOUT = 60

failures = []


def check(condition, message):
    print(("ok: " if condition else "FAIL: ") + message, flush=True)
    if not condition:
        failures.append(message)
    return condition


def run(argv, **kwargs):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=CMD_TIMEOUT, check=False, **kwargs)


# --- unit files ---


def unit_settings(path):
    """[(key, value)] of a unit file, in order (no line continuations used)."""
    settings = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", ";", "[")) and "=" in line:
                key, value = line.split("=", 1)
                settings.append((key.strip(), value.strip()))
    return settings


def env_file(path, commented_examples=True):
    """The KEY=VALUE assignments of an EnvironmentFile; with
    `commented_examples`, also its commented-out `#TODO_X=...` examples, so
    the example values are tried too."""
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if commented_examples and re.match(r"#TODO_\w+=", line):
                line = line[1:]
            if line and not line.startswith(("#", ";")):
                key, value = line.split("=", 1)
                env[key.strip()] = value.strip()
    return env


def expand_exec(command, instance, state_dir, env):
    """argv of an ExecStart= line, expanded as systemd does it."""
    command = command.replace("%%", "\0").replace("%i", instance).replace("%S", state_dir)
    if "%" in command.replace("\0", ""):
        check(False, f"ExecStart uses a specifier this test doesn't expand: {command}")
    argv = []
    for word in command.replace("\0", "%").split():
        whole = re.fullmatch(r"\$\{(\w+)\}", word)
        split = re.fullmatch(r"\$(\w+)", word)
        if whole:
            argv.append(env.get(whole.group(1), ""))
        elif split:
            argv.extend(env.get(split.group(1), "").split())
        else:
            argv.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), word))
    return argv


def instance_copies(workdir):
    """Copies the templates into workdir with this build's binaries in
    ExecStart, plus an instance symlink each; returns {template: instance path}."""
    paths = {}
    for template, instance, _ in UNIT_CASES:
        with open(os.path.join(UNITS, template), encoding="utf-8") as f:
            text = f.read()
        for name, path in BINARIES.items():
            text = text.replace(f"/usr/local/bin/{name} ", f"{path} ")
        with open(os.path.join(workdir, template), "w", encoding="utf-8") as f:
            f.write(text)
        link = os.path.join(workdir, template.replace("@.", f"@{instance}."))
        os.symlink(template, link)
        paths[template] = link
    return paths


# --- seccomp: RestrictAddressFamilies= without systemd ---

SYS_SOCKET = {"x86_64": 41, "aarch64": 198}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def family_filter(families):
    """A preexec_fn that confines socket(2) to `families` (EAFNOSUPPORT for
    the others, as systemd's RestrictAddressFamilies= does) and sets
    no_new_privs; None on an architecture this doesn't know."""
    machine = platform.machine()
    if machine not in SYS_SOCKET:
        return None
    ld_abs, jeq_k, ret_k = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET
    allow, errno_ret = 0x7FFF0000, 0x00050000 | errno.EAFNOSUPPORT  # RET_ALLOW, RET_ERRNO
    n = len(families)
    prog = [(ld_abs, 0, 0, 4),  # seccomp_data.arch
            (jeq_k, 0, n + 4, AUDIT_ARCH[machine]),  # other arch: allow
            (ld_abs, 0, 0, 0),  # seccomp_data.nr
            (jeq_k, 0, n + 2, SYS_SOCKET[machine]),  # not socket(): allow
            (ld_abs, 0, 0, 16)]  # args[0] (low 32 bits): the family
    prog += [(jeq_k, n - i, 0, family) for i, family in enumerate(families)]
    prog += [(ret_k, 0, 0, errno_ret), (ret_k, 0, 0, allow)]
    array = (SockFilter * len(prog))(*[SockFilter(*p) for p in prog])
    fprog = SockFprog(len(prog), array)
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec():
        fprog.filter  # pylint: disable=pointless-statement  # keep `array` alive
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
    return preexec


def families_of(settings):
    names = " ".join(v for k, v in settings if k == "RestrictAddressFamilies").split()
    return [getattr(socket, name) for name in names]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ping(endpoint, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    with TodoClient(endpoint, timeout=0.5, retries=0) as client:
        while proc.poll() is None and time.monotonic() < deadline:
            reply = client.collect([client.submit("ping")], timeout=0.5)[0]
            if reply.ok:
                return reply.result
            time.sleep(0.05)
    return None


def stop(proc, timeout=10.0):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        return f"killed after {timeout:g} s"


# --- the checks ---


def check_verify(paths):
    for path in paths.values():
        done = run(["systemd-analyze", "verify", path])
        about_us = [line for line in done.stdout.splitlines() if "todo-" in line]
        check(done.returncode == 0 and not about_us,
              f"systemd-analyze verify {os.path.basename(path)}: exit {done.returncode}"
              + "".join(f"\n    {line}" for line in done.stdout.splitlines()))


def check_security(paths):
    for template, path in paths.items():
        done = run(["systemd-analyze", "security", "--offline=yes", path])
        match = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", done.stdout)
        if done.returncode != 0 and "offline" in done.stdout and not match:
            print(f"note: systemd-analyze security --offline unsupported here; skipped {template}")
            continue
        check(match is not None and float(match.group(1)) <= MAX_EXPOSURE,
              f"{os.path.basename(path)} exposure level "
              f"{match.group(1) + ' ' + match.group(2) if match else '?'} "
              f"(at most {MAX_EXPOSURE})" + ("" if match else f"\n{done.stdout[-2000:]}"))


def check_flags_documented():
    for (template, _, example), binary in zip(UNIT_CASES, BINARIES.values()):
        done = run([binary, "--help"])
        flags = set(re.findall(r"^\s+(?:-\w,)?(--[a-z][a-z-]*)", done.stdout, re.M)) - {"--help"}
        with open(os.path.join(UNITS, example), encoding="utf-8") as f:
            text = f.read()
        missing = sorted(f for f in flags if not re.search(re.escape(f) + r"\b", text))
        check(done.returncode == 0 and flags and not missing,
              f"{example} documents all {len(flags)} flags of {os.path.basename(binary)}"
              + (f"; missing: {' '.join(missing)}" if missing else ""))


def start_unit(template, instance, example, workdir, overrides, families):
    """Starts the unit's ExecStart as systemd would; returns (Popen, argv, log)."""
    settings = unit_settings(os.path.join(UNITS, template))
    env = {}
    for key, value in settings:
        if key == "Environment":
            name, _, val = value.partition("=")
            env[name] = val
    env.update(env_file(os.path.join(UNITS, example)))
    env.update(overrides)
    command = next(v for k, v in settings if k == "ExecStart")
    argv = expand_exec(command, instance, os.path.join(workdir, "state"), env)
    name = os.path.basename(argv[0])
    if argv[0] != f"/usr/local/bin/{name}" or name not in BINARIES:
        check(False, f"{template} runs {argv[0]}, not /usr/local/bin/todo-node or -router")
        return None, argv, None
    argv[0] = BINARIES[name]
    log = os.path.join(workdir, f"{instance}.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, preexec_fn=family_filter(families))
    return proc, argv, log


def tail(log, lines=10):
    with open(log, encoding="utf-8", errors="replace") as f:
        return "\n".join("    " + line for line in f.read().splitlines()[-lines:])


def check_filter_works():
    """The seccomp emulation refuses a family it doesn't list, allows one it does."""
    probe = ("import socket, sys\n"
             "try:\n"
             "    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()\n"
             "except OSError as e:\n"
             "    sys.exit(e.errno)\n"
             "socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()\n")
    only_inet = family_filter([socket.AF_INET])
    done = subprocess.run(["/usr/bin/python3", "-c", probe], preexec_fn=only_inet,
                          timeout=CMD_TIMEOUT, check=False)
    allowed = subprocess.run(["/usr/bin/python3", "-c", probe],
                             preexec_fn=family_filter([socket.AF_INET, socket.AF_NETLINK]),
                             timeout=CMD_TIMEOUT, check=False)
    check(done.returncode == errno.EAFNOSUPPORT and allowed.returncode == 0,
          "the seccomp emulation of RestrictAddressFamilies= refuses an unlisted family "
          f"with EAFNOSUPPORT (exit {done.returncode}) and allows a listed one "
          f"(exit {allowed.returncode})")


def check_exec_start(workdir):
    node_t, node_i, node_env = UNIT_CASES[0]
    router_t, router_i, router_env = UNIT_CASES[1]
    node_ep = f"tcp://127.0.0.1:{free_port()}"
    router_ep = f"tcp://127.0.0.1:{free_port()}"
    cluster = os.path.join(workdir, "cluster.conf")
    with open(cluster, "w", encoding="utf-8") as f:
        f.write(f"node {node_i} {node_ep}\n")
    node_families = families_of(unit_settings(os.path.join(UNITS, node_t)))
    router_families = families_of(unit_settings(os.path.join(UNITS, router_t)))
    if family_filter(node_families) is None:
        print(f"note: no seccomp filter for {platform.machine()}; ExecStart runs unconfined")
    else:
        check_filter_works()
    node, argv, node_log = start_unit(node_t, node_i, node_env, workdir,
                                      {"TODO_LISTEN": node_ep}, node_families)
    if node is None:
        return
    procs = [node]
    try:
        print(f"  {' '.join(argv)}")
        pong = wait_ping(node_ep, node)
        check(pong == {"pong": True, "role": "node", "name": node_i},
              f"{node_t} ExecStart (as {node_i}, under its RestrictAddressFamilies) answers "
              f"ping: {pong}" + ("" if pong else "\n" + tail(node_log)))
        router, argv, router_log = start_unit(router_t, router_i, router_env, workdir,
                                              {"TODO_LISTEN": router_ep,
                                               "TODO_NODES": f"--cluster {cluster}"},
                                              router_families)
        if router is None:
            return
        procs.append(router)
        print(f"  {' '.join(argv)}")
        pong = wait_ping(router_ep, router)
        check(pong == {"pong": True, "role": "router", "name": router_i},
              f"{router_t} ExecStart (as {router_i}) answers ping: {pong}"
              + ("" if pong else "\n" + tail(router_log)))
        if pong:
            with TodoClient(router_ep, timeout=3.0, retries=5, backoff=0.1) as client:
                entry_id = client.call("add_entry", list="units", date="2026-01-02",
                                       title="through the router unit")["id"]
                entries = client.entries("units")
            check([e["id"] for e in entries] == [entry_id],
                  f"the router routes a write and a read to the node: {entries}")
        data = os.path.join(workdir, "state", "todo", node_i)
        check(os.path.isdir(data) and os.listdir(data),
              f"the node keeps its data in %S/todo/%i ({data})")
    finally:
        statuses = [stop(p) for p in reversed(procs)]
    check(all(s == 0 for s in statuses), f"SIGTERM: exit statuses {statuses} (router, node)")

    # For information: the same node without AF_NETLINK in the allowed families.
    narrow = [f for f in node_families if f != socket.AF_NETLINK]
    if family_filter(narrow) is not None and narrow != node_families:
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        proc, _, log = start_unit(node_t, "n9", node_env, workdir, {"TODO_LISTEN": endpoint},
                                  narrow)
        if proc is None:
            return
        pong = wait_ping(endpoint, proc, timeout=5.0)
        status = stop(proc)
        print(f"note: without AF_NETLINK the node {'answers ping' if pong else 'fails'} "
              f"(exit status {status})" + ("" if pong else "\n" + tail(log, 2)))


def main():
    analyze = shutil.which("systemd-analyze")
    if analyze is None or run([analyze, "--version"]).returncode != 0:
        print("SKIP: systemd-analyze not found or not working (Debian package systemd; "
              "deploy/install-deps installs it)")
        return 77
    for binary in BINARIES.values():
        if not os.access(binary, os.X_OK):
            print(f"FAIL: {binary} not built (build todo-node and todo-router, or set "
                  "TODO_BUILD_DIR)")
            return 1
    workdir = tempfile.mkdtemp(prefix="todo-units-")
    try:
        paths = instance_copies(workdir)
        check_verify(paths)
        check_security(paths)
        check_flags_documented()
        check_exec_start(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'FAIL' if failures else 'PASS'}: {len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
