#!/usr/bin/env bash
# `neardb serve` driven by the official qdrant-client (pinned), in a venv this script makes:
# load 10k points and check queries, filters, scroll, deletes against brute force; restart the
# server and find everything acknowledged; then API keys. Uses the debug `neardb` that `cargo
# test` built (NEARDB_BIN overrides).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
QDRANT_CLIENT_VERSION=1.20.0
venv=target/qdrant-client-venv
for tool in curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { log "installing $tool"; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$tool"; }
done
installed=$("$venv/bin/pip" show qdrant-client 2>/dev/null | sed -n 's/^Version: //p' || true)
if [[ "$installed" != "$QDRANT_CLIENT_VERSION" ]]; then
  log "making $venv with qdrant-client $QDRANT_CLIENT_VERSION"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian splits venv (ensurepip) out of python3.
    log "installing python3-venv"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet "qdrant-client==$QDRANT_CLIENT_VERSION"
fi
bin=${NEARDB_BIN:-target/debug/neardb}
[[ -x "$bin" ]] || cargo build -p neardb-cli
data=$(mktemp -d)
state="$data/state.json"
port=$((20000 + RANDOM % 20000))
pid=
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
start() {
  "$bin" serve --data "$data/db" --port "$port" --commit-rows 4000 "$@" 2>>"$data/server.log" &
  pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not start:" >&2; cat "$data/server.log" >&2; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=; }
start
"$venv/bin/python" server/tests/qdrant_client_test.py load "$port" "$state"
# Read whole before grep (grep -q stops early, and curl's broken pipe would fail the pipeline).
metrics=$(curl -sf "http://127.0.0.1:$port/metrics")
grep -q 'neardb_collection_records{collection="docs"}' <<<"$metrics" || { echo "no collection metrics" >&2; exit 1; }
stop
start
"$venv/bin/python" server/tests/qdrant_client_test.py verify "$port" "$state"
stop
start --api-key full-key --read-only-key read-key
"$venv/bin/python" server/tests/qdrant_client_test.py keys "$port" full-key read-key
stop
echo "server tests passed"
