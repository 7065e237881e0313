#!/usr/bin/env bash
# Browser benchmark (issue 4's targets): builds the simd128 and scalar wasm packages, then runs
# bench/browser/bench.html in headless Chromium through playwright-core on a harness dataset.
#
#   scripts/bench-browser.sh [DATASET] [extra run.mjs options]
#     DATASET   a folder of ../shared/bench/data (default clustered-384-cos-100k; metric cosine
#               for *-cos-*, else l2). Generated with the harness's gen_data.py when missing.
#   e.g. scripts/bench-browser.sh clustered-384-cos-100k --ef 32,64,128
#        scripts/bench-browser.sh clustered-384-cos-100k --index /tmp/native.neardb   # open, no build
#
# Prints progress on stderr and a JSON line (the full result) on stdout.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
log() { printf '==> %s\n' "$*" >&2; }

dataset="${1:-clustered-384-cos-100k}"
shift || true
data_dir="$(cd .. && pwd)/shared/bench/data"
metric=l2
[[ "$dataset" == *-cos-* ]] && metric=cosine

if [[ ! -f "$data_dir/$dataset/base.fvecs" ]]; then
  bench="$(cd .. && pwd)/shared/bench"
  name="${dataset%-*}"
  size="${dataset##*-}"
  log "generating $dataset with the harness's gen_data.py"
  if [[ -x "$bench/.venv/bin/python" ]]; then
    "$bench/.venv/bin/python" "$bench/gen_data.py" "$name" --n "$size"
  else
    python3 -m pip install --quiet numpy
    python3 "$bench/gen_data.py" "$name" --n "$size"
  fi
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "installing nodejs and npm"
  if [[ $(id -u) -eq 0 ]]; then apt-get install -y nodejs npm; else sudo -n apt-get install -y nodejs npm; fi
fi
if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium"
  if [[ $(id -u) -eq 0 ]]; then apt-get install -y chromium; else sudo -n apt-get install -y chromium; fi
fi

log "building wasm/pkg (simd128) and wasm/pkg-scalar"
bash scripts/build-wasm-pkg.sh >&2

(cd bench/browser && [[ -d node_modules/playwright-core ]] || npm ci --no-audit --no-fund >&2)
log "running the benchmark page on $dataset ($metric); load: $(cut -d' ' -f1-3 /proc/loadavg)"
node bench/browser/run.mjs --data-dir "$data_dir" --data "$dataset" --metric "$metric" "$@"
