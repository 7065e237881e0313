#!/usr/bin/env bash
# Server overhead with the load generator on its own core: the server pinned to CPU 0 (so it
# runs one single-threaded runtime), wrk pinned to CPU 1, then the library on CPU 0 alone with
# one thread over the same collection and the same queries. On a 2-core machine this is the
# only way to keep the load generator off the server's core; the ratio is server QPS over
# library QPS, each on one core.
#   bench/server/pinned.sh BIN DATA BODIES QUERIES TRUTH [clients=32] [seconds=10] [ef=40] [port=6391]
# DATA holds `collections/c`; BODIES comes from bodies.py with the same ef.
set -euo pipefail
bin=$1 data=$2 bodies=$3 queries=$4 truth=$5 clients=${6:-32} secs=${7:-10} ef=${8:-40} port=${9:-6391}
cd "$(dirname "${BASH_SOURCE[0]}")"
taskset -c 0 "$bin" serve --data "$data" --port "$port" 2>/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port/collections/c/points/query"
BODIES=$bodies taskset -c 1 wrk -t1 -c"$clients" -d2s -s rotate.lua "$url" >/dev/null
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(cpu)
out=$(BODIES=$bodies taskset -c 1 wrk -t1 -c"$clients" -d"${secs}s" -s rotate.lua "$url" | grep RESULT)
t1=$(cpu)
kill "$pid"
wait "$pid" 2>/dev/null || true
ticks=$(getconf CLK_TCK)
qps=$(sed 's/.*qps=\([0-9.]*\).*/\1/' <<<"$out")
awk -v q="$qps" -v c=$((t1 - t0)) -v s="$secs" -v t="$ticks" -v out="$out" \
  'BEGIN { cpu = c / t; printf "server: %s server_cores=%.2f cpu_per_request_us=%.1f\n", out, cpu / s, cpu / (q * s) * 1e6 }'
lib=$(taskset -c 0 "$bin" collection search --dir "$data/collections/c" --queries "$queries" \
  --truth "$truth" --ef "$ef" --threads 1 2>&1)
echo "library (CPU 0, 1 thread):"
echo "$lib"
