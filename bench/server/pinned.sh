#!/usr/bin/env bash
# Server overhead with the load generator on its own core: `cpu-per-request.sh` with the server
# pinned to CPU 0 (so it runs one single-threaded runtime) and wrk (one thread) to CPU 1, then
# the library on CPU 0 alone with one thread over the same collection and queries. On a 2-core
# machine this is the only way to keep the load generator off the server's core; the ratio is
# server QPS over library QPS, each on one core.
#   bench/server/pinned.sh BIN DATA BODIES QUERIES TRUTH [clients=32] [seconds=10] [ef=40] [port=6391]
# DATA holds `collections/c`; BODIES comes from bodies.py with the same ef.
set -euo pipefail
bin=$1 data=$2 bodies=$3 queries=$4 truth=$5 clients=${6:-32} secs=${7:-10} ef=${8:-40} port=${9:-6391}
here=$(dirname "${BASH_SOURCE[0]}")
echo -n "server (CPU 0; wrk on CPU 1): "
SERVER_CPUS=0 WRK_CPUS=1 WRK_THREADS=1 "$here/cpu-per-request.sh" "$bin" "$data" "$bodies" "$clients" "$secs" "$port"
echo "library (CPU 0, 1 thread):"
taskset -c 0 "$bin" collection search --dir "$data/collections/c" --queries "$queries" \
  --truth "$truth" --ef "$ef" --threads 1
