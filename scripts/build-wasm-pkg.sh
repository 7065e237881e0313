#!/usr/bin/env bash
# Builds the JavaScript package of the browser crate (wasm/) as plain ES modules with TypeScript
# declarations (wasm-bindgen --target web):
#   wasm/pkg/          the simd128 build (the default): import it, or `npm install ./wasm/pkg`
#   wasm/pkg-scalar/   the same API built without simd128, for comparing kernels (skipped with
#                      --simd-only)
# The scalar build uses its own target dir (target/wasm-scalar) so that it does not invalidate
# the cache of the main build. No wasm-opt: Debian's binaryen cannot read this wasm-bindgen's
# output, and the release build is already optimised. Needs the wasm32 target and wasm-bindgen
# (scripts/test-wasm.sh installs both).
set -euo pipefail

TARGET=wasm32-unknown-unknown
WASM=neardb_wasm.wasm

scalar=1
case "${1:-}" in
  "") ;;
  --simd-only) scalar=0 ;;
  *) echo "usage: $0 [--simd-only]" >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

log() { printf '==> %s\n' "$*" >&2; }

command -v wasm-bindgen >/dev/null 2>&1 || {
  log "wasm-bindgen not found (scripts/test-wasm.sh installs the pinned version)"
  exit 1
}

# 1. simd128 (flags from .cargo/config.toml). A RUSTFLAGS variable replaces them: keep simd128.
simd_rustflags="${RUSTFLAGS:-}"
if [[ -n "$simd_rustflags" && "$simd_rustflags" != *simd128* ]]; then
  simd_rustflags="$simd_rustflags -C target-feature=+simd128"
fi
log "cargo build -p neardb-wasm --target $TARGET --release (simd128)"
if [[ -n "$simd_rustflags" ]]; then
  RUSTFLAGS="$simd_rustflags" cargo build -p neardb-wasm --target "$TARGET" --release
else
  cargo build -p neardb-wasm --target "$TARGET" --release
fi
rm -rf wasm/pkg
wasm-bindgen --target web --out-dir wasm/pkg "target/$TARGET/release/$WASM"

version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)"
[[ -n "$version" ]] || { log "no version in [workspace.package] of Cargo.toml"; exit 1; }
# The npm package: an ES module with its declarations; the .wasm is exported too, so Node users
# can read it for initSync (`import.meta.resolve("neardb-wasm/neardb_wasm_bg.wasm")`).
cat >wasm/pkg/package.json <<EOF
{
  "name": "neardb-wasm",
  "version": "$version",
  "description": "NearDB vector search in the browser: flat, HNSW, IVF-PQ and binary indexes in WebAssembly (simd128), opening the same index files as the native library",
  "license": "MIT OR Apache-2.0",
  "keywords": ["vector-search", "ann", "hnsw", "embeddings", "webassembly"],
  "type": "module",
  "main": "./neardb_wasm.js",
  "module": "./neardb_wasm.js",
  "types": "./neardb_wasm.d.ts",
  "exports": {
    ".": {
      "types": "./neardb_wasm.d.ts",
      "default": "./neardb_wasm.js"
    },
    "./neardb_wasm_bg.wasm": "./neardb_wasm_bg.wasm",
    "./package.json": "./package.json"
  },
  "files": [
    "neardb_wasm.js",
    "neardb_wasm.d.ts",
    "neardb_wasm_bg.wasm",
    "neardb_wasm_bg.wasm.d.ts",
    "README.md",
    "LICENSE-MIT",
    "LICENSE-APACHE"
  ],
  "sideEffects": false
}
EOF
cp wasm/README.md LICENSE-MIT LICENSE-APACHE wasm/pkg/

# 2. Scalar: RUSTFLAGS replaces the +simd128 of .cargo/config.toml.
if [[ $scalar -eq 1 ]]; then
  log "cargo build -p neardb-wasm --target $TARGET --release (scalar, target/wasm-scalar)"
  RUSTFLAGS="-C target-feature=-simd128" \
    cargo build -p neardb-wasm --target "$TARGET" --release --target-dir target/wasm-scalar
  rm -rf wasm/pkg-scalar
  wasm-bindgen --target web --out-dir wasm/pkg-scalar "target/wasm-scalar/$TARGET/release/$WASM"
fi

for d in wasm/pkg wasm/pkg-scalar; do
  if [[ $d == wasm/pkg || $scalar -eq 1 ]]; then
    log "$d: $(du -k "$d/neardb_wasm_bg.wasm" | cut -f1) KiB neardb_wasm_bg.wasm"
  fi
done
