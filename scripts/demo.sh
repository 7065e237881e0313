#!/usr/bin/env bash
# The main job on an embedded default: generate a seeded clustered dataset with exact ground
# truth, build an index, save it, memory-map it back, and report recall@10 and QPS.
# Extra arguments go to `neardb demo` (e.g. --n 100000 --dim 384 --metric cosine).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p neardb-cli
exec target/release/neardb demo "$@"
