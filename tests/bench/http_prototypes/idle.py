#!/usr/bin/python3
# idle.py PROG: starts PROG on a port, opens N idle keep-alive connections
# (after one request each), prints the server's RSS before and after.
import os, socket, subprocess, sys, time, resource, random
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
prog, n = sys.argv[1], int(sys.argv[2])
port = random.randrange(31000, 32000)
p = subprocess.Popen(["bash", "-c", f"ulimit -n 20000; exec {prog} {port}"])
time.sleep(0.3)
def rss():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) / 1024
before = rss()
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port)); socks.append(s)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
for s in socks:
    s.settimeout(5); s.recv(4096)
time.sleep(0.5)
print(f"{prog}: RSS {before:.1f} MiB -> {rss():.1f} MiB with {n} idle connections")
p.kill()
