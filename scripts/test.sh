#!/usr/bin/env bash
# Runs every test NearDB has, on a fresh machine too: it installs what it needs (idempotently),
# then checks formatting and lints, runs the native tests, builds the no_std core for the host
# and for wasm32, runs the wasm tests in headless Chromium, and smoke-tests the web app.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step prints the time since the start, so a slow CI run shows where the minutes went.
step() { printf '\n== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# Every test runner's output also goes to this log, for the closing total.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add wasm32-unknown-unknown >/dev/null

step "format"
cargo fmt --all -- --check

step "lints (native targets of every crate)"
cargo clippy --workspace --all-targets -- -D warnings

# The web app (re-exports) and the embedder's 76 wasm-only lines are not linted for wasm32:
# that check would compile the tokenizer and its dependencies once more for wasm32 (it once
# compiled candle, ~4 of the suite's minutes on a clean clone). trunk still compiles them
# below, so an error there fails the suite.
step "lints (wasm32: the browser crate and its tests)"
cargo clippy -p neardb-wasm -p neardb-tests --target wasm32-unknown-unknown --all-targets -- -D warnings

step "no_std core (host)"
cargo build -p neardb-core --no-default-features

step "the embedding model (cached outside the clone; its tests and the demo site need it)"
scripts/fetch-model.sh

step "native tests (core, native, cross-crate, embeddings)"
cargo test 2>&1 | tee -a "$log"

step "fuzzer: a one-minute structure-aware run over crafted index and vector files"
# The dev build `cargo test` just made; exits non-zero on any finding (fuzz/README.md).
# A new seed each run covers new inputs; a finding prints the command that replays it.
cargo run -q -p neardb-fuzz -- --seconds 60 --seed "$(date +%s)" --findings target/fuzz-findings

step "server: neardb serve driven by the official qdrant-client (pinned, in a venv)"
scripts/test-server.sh 2>&1 | tee -a "$log"

step "wasm: no_std build, then browser tests in headless Chromium"
scripts/test-wasm.sh 2>&1 | tee -a "$log"

step "TypeScript: the generated .d.ts checked by tsc --noEmit on wasm/ts-check/example.ts"
scripts/test-ts.sh

step "npm package: npm pack, installed into an empty project, imported by name and searched in Node"
scripts/test-npm.sh 2>&1 | tee -a "$log"

step "crates.io packages: cargo publish --workspace --dry-run (our crates resolved locally)"
# --no-verify: the packaged sources are the ones every step above built and tested.
cargo publish --workspace --dry-run --no-verify --allow-dirty

step "web app: trunk build and a headless page check"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v trunk >/dev/null 2>&1; then
  echo "installing trunk 0.21.14 (once; 15-25 minutes on 2 cores)"
  CARGO_PROFILE_RELEASE_LTO=false cargo install --locked trunk --version 0.21.14
fi
scripts/test-web.sh

# One closing line for CI: every cargo test binary's count, native and browser, and the npm
# package's node tests (any failure
# has already stopped this script).
cargo_passed=$(grep -oE 'test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
node_passed=$(grep -oE '^ℹ pass [0-9]+' "$log" | awk '{s += $3} END {print s + 0}')
passed=$((cargo_passed + node_passed))
echo
echo "tests: ${passed} passed, 0 failed (in $((SECONDS / 60)) min $((SECONDS % 60)) s)"
