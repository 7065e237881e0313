#!/usr/bin/env bash
# Server QPS and server CPU per request at C clients: starts `BIN serve --data DATA` on PORT,
# warms up for 2 s, then runs wrk for S seconds with rotate.lua and BODIES (from bodies.py),
# reading the server's user + system time from /proc/PID/stat around the run.
#   bench/server/cpu-per-request.sh BIN DATA BODIES [clients=32] [seconds=8] [port=6390]
# SERVER_CPUS / WRK_CPUS (taskset lists) pin the server and wrk; WRK_THREADS (default 2).
set -euo pipefail
bin=$1 data=$2 bodies=$3 clients=${4:-32} secs=${5:-8} port=${6:-6390}
cd "$(dirname "${BASH_SOURCE[0]}")"
pin() { if [ -n "$1" ]; then echo taskset -c "$1"; fi; }
server_pin=$(pin "${SERVER_CPUS:-}") wrk_pin=$(pin "${WRK_CPUS:-}") threads=${WRK_THREADS:-2}
$server_pin "$bin" serve --data "$data" --port "$port" 2>/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port/collections/c/points/query"
BODIES=$bodies $wrk_pin wrk -t"$threads" -c"$clients" -d2s -s rotate.lua "$url" >/dev/null
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(cpu)
out=$(BODIES=$bodies $wrk_pin wrk -t"$threads" -c"$clients" -d"${secs}s" -s rotate.lua "$url" | grep RESULT)
t1=$(cpu)
ticks=$(getconf CLK_TCK)
qps=$(sed 's/.*qps=\([0-9.]*\).*/\1/' <<<"$out")
awk -v q="$qps" -v c=$((t1 - t0)) -v s="$secs" -v t="$ticks" -v out="$out" \
  'BEGIN { cpu = c / t; printf "%s server_cores=%.2f cpu_per_request_us=%.1f\n", out, cpu / s, cpu / (q * s) * 1e6 }'
