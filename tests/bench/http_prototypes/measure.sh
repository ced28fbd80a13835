#!/bin/bash
# Build first: see README.md in this folder.
# measure.sh: each prototype, wrk -t2 at 100 and 1000 connections, 5 s; req/s, p99, server CPU µs/request
ulimit -n "$(ulimit -Hn)"
for round in 1 2; do
for p in ${PROTOS:-evhttp_proto beast_asio_proto beast_epoll_proto beast_epoll_handoff_proto}; do
  port=$((30000 + RANDOM % 1000))
  ./$p $port & pid=$!
  sleep 0.3
  for c in 100 1000; do
    t0=$(awk '{print $14+$15}' /proc/$pid/stat)
    out=$(wrk -t2 -c$c -d5s --latency http://127.0.0.1:$port/ 2>&1)
    t1=$(awk '{print $14+$15}' /proc/$pid/stat)
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    p99=$(echo "$out" | awk '$1=="99%"{print $2}')
    reqs=$(echo "$out" | awk '/requests in/{print $1}')
    err=$(echo "$out" | grep -o 'Socket errors.*')
    cpu=$(python3 -c "print(round(($t1-$t0)*10000/$reqs,2))")
    echo "$round $p c=$c rps=$rps p99=$p99 cpu_us_per_req=$cpu $err"
  done
  kill $pid; wait $pid 2>/dev/null
done
done
