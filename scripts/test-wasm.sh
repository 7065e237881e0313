#!/usr/bin/env bash
# Builds the core for wasm32 and runs the browser test suite (wasm/tests/browser.rs) in headless
# Chromium. Installs what is missing, and only that, so it is safe to run again. Needs no stdin
# (CI=true works); installing system packages needs root or passwordless sudo.
set -euo pipefail

WASM_BINDGEN_VERSION=0.2.130 # must equal the `wasm-bindgen = "=0.2.130"` pin in Cargo.toml
TARGET=wasm32-unknown-unknown

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh



# 1. The wasm32 target.
if ! rustup target list --installed | grep -qx "$TARGET"; then
  log "adding rust target $TARGET"
  rustup target add "$TARGET"
fi

# 2. wasm-bindgen CLI (wasm-bindgen + wasm-bindgen-test-runner), exactly the pinned version.
#    Installed WITHOUT --locked: its lock file pins a crate the registry lacks (TOOLCHAIN.md).
have_bindgen() {
  command -v wasm-bindgen >/dev/null 2>&1 &&
    command -v wasm-bindgen-test-runner >/dev/null 2>&1 &&
    [[ "$(wasm-bindgen --version)" == "wasm-bindgen $WASM_BINDGEN_VERSION" ]]
}
if ! have_bindgen; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes 10-15 minutes)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
  have_bindgen || { log "wasm-bindgen $WASM_BINDGEN_VERSION still not on PATH"; exit 1; }
fi

# 3. Chromium and ChromeDriver (the runner drives the browser through WebDriver).
if ! command -v chromedriver >/dev/null 2>&1; then
  log "installing chromium and chromium-driver"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
fi
# .cargo/config.toml points at Debian's driver; a driver found elsewhere on PATH wins.
CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
export CHROMEDRIVER

# A RUSTFLAGS variable replaces the target rustflags of .cargo/config.toml: keep simd128 on.
if [[ -n "${RUSTFLAGS:-}" && "$RUSTFLAGS" != *simd128* ]]; then
  log "RUSTFLAGS is set; adding -C target-feature=+simd128 to it"
  export RUSTFLAGS="$RUSTFLAGS -C target-feature=+simd128"
fi

log "versions: $(rustc --version); $(wasm-bindgen --version); $(chromedriver --version | cut -d' ' -f1-2)"

# 4. The core builds for wasm32 without std.
log "cargo build -p neardb-core --no-default-features --target $TARGET"
cargo build -p neardb-core --no-default-features --target "$TARGET"

# 5. Native fixtures for the parity test: a seeded, single-thread HNSW build and its answers,
#    made by the native CLI (tests/build.rs copies them in; tests/tests/browser_parity.rs checks
#    them in the browser).
fixtures="$PWD/target/wasm-fixtures"
log "building native parity fixtures in $fixtures"
# The debug neardb as `cargo test` builds it (same packages, same unified features), so after
# the README's test command's `cargo test` this compiles nothing; `cargo build -p neardb`
# would resolve features differently and rebuild the whole tree (4 minutes on a clean clone).
cargo test --no-run
neardb=target/debug/neardb
"$neardb" gen --kind clustered --n 3000 --dim 48 --queries 25 --metric cosine --clusters 15 --truth-k 10 \
  --seed 7 --output "$fixtures" 2>/dev/null
"$neardb" build --base "$fixtures/base.fvecs" --metric cosine --index hnsw --m 12 --ef-construction 100 \
  --seed 42 --threads 1 --output "$fixtures/hnsw.neardb" >/dev/null
"$neardb" search --index "$fixtures/hnsw.neardb" --queries "$fixtures/query.fvecs" -k 10 --json \
  >"$fixtures/results.json"
# Compressed: HNSW over SQ8 codes alone (no f32 vectors, approximate distances), so the answers
# compare the quantization kernels natively and in simd128 bit for bit.
"$neardb" build --base "$fixtures/base.fvecs" --metric cosine --index hnsw --m 12 --ef-construction 100 \
  --seed 42 --threads 1 --quantize sq8 --rerank 0 --output "$fixtures/hnsw-sq8.neardb" >/dev/null
"$neardb" search --index "$fixtures/hnsw-sq8.neardb" --queries "$fixtures/query.fvecs" -k 10 --json \
  >"$fixtures/results-sq8.json"
# Binary16 vectors: walked directly (f16), and as the re-ranking rows of SQ8 codes (sq8+f16), so
# the answers compare the binary16 kernels natively and in simd128 bit for bit.
for q in f16 sq8+f16; do
  name=${q/+/}
  "$neardb" build --base "$fixtures/base.fvecs" --metric cosine --index hnsw --m 12 --ef-construction 100 \
    --seed 42 --threads 1 --quantize "$q" --rerank 4 --output "$fixtures/hnsw-$name.neardb" >/dev/null
  "$neardb" search --index "$fixtures/hnsw-$name.neardb" --queries "$fixtures/query.fvecs" -k 10 --json \
    >"$fixtures/results-$name.json"
done
# Vamana, seeded on one thread: the browser rebuilds it byte for byte and answers identically.
"$neardb" build --base "$fixtures/base.fvecs" --metric cosine --index vamana --r 16 --l 60 --alpha 1.2 \
  --seed 42 --threads 1 --output "$fixtures/vamana.neardb" >/dev/null
"$neardb" search --index "$fixtures/vamana.neardb" --queries "$fixtures/query.fvecs" -k 10 --ef 32 --json \
  >"$fixtures/results-vamana.json"
# Filtered searches: two allow masks (one byte per row), a wide one walked (forced: at 3,000 rows
# the planner would scan) and a tight one scanned; the browser passes the same ids as a filter
# and must get the same answers.
perl -e 'print join "", map { chr($_ % 7 == 3 ? 1 : 0) } 0..2999' >"$fixtures/allow-wide.u8"
perl -e 'print join "", map { chr($_ % 97 == 5 ? 1 : 0) } 0..2999' >"$fixtures/allow-tight.u8"
for sel in wide:walk tight:auto; do
  strategy=${sel#*:}
  sel=${sel%:*}
  "$neardb" search --index "$fixtures/hnsw.neardb" --queries "$fixtures/query.fvecs" -k 10 \
    --allow "$fixtures/allow-$sel.u8" --filter-strategy "$strategy" --json >"$fixtures/results-allow-$sel.json"
  "$neardb" search --index "$fixtures/vamana.neardb" --queries "$fixtures/query.fvecs" -k 10 --ef 32 \
    --allow "$fixtures/allow-$sel.u8" --filter-strategy "$strategy" --json \
    >"$fixtures/results-vamana-allow-$sel.json"
done
# IVF-PQ (re-ranked: exact distances) and LSH over binary codes (Hamming only), built and searched
# natively; the browser opens them in place and must answer identically.
"$neardb" build --base "$fixtures/base.fvecs" --metric cosine --index ivfpq --nlist 20 --pq-m 12 \
  --seed 42 --threads 1 --output "$fixtures/ivfpq.neardb" >/dev/null
"$neardb" search --index "$fixtures/ivfpq.neardb" --queries "$fixtures/query.fvecs" -k 10 --nprobe 4 \
  --rerank 4 --json >"$fixtures/results-ivfpq.json"
"$neardb" build --base "$fixtures/base.fvecs" --metric cosine --index binary --bits 256 --tables 6 \
  --key-bits 10 --rerank 0 --seed 42 --threads 1 --output "$fixtures/binary.neardb" >/dev/null
"$neardb" search --index "$fixtures/binary.neardb" --queries "$fixtures/query.fvecs" -k 10 --nprobe 8 \
  --json >"$fixtures/results-binary.json"
export NEARDB_WASM_FIXTURES="$fixtures"

# 6. The browser suite (the runner comes from .cargo/config.toml).
log "cargo test -p neardb-wasm -p neardb-tests --target $TARGET"
start=$SECONDS
cargo test -p neardb-wasm -p neardb-tests --target "$TARGET"
log "browser tests passed in $((SECONDS - start)) s (including the build)"
