#!/usr/bin/env bash
# The npm package as users install it: `npm pack` on wasm/pkg (built by scripts/test-ts.sh, or
# here), the tarball installed into an empty project, and wasm/npm-test/import.test.mjs run
# there with `node --test`: it imports `neardb-wasm` by name and builds and searches indexes.
# The tarball has no dependencies, so npm installs it without fetching anything.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

[[ -f wasm/pkg/package.json ]] || scripts/build-wasm-pkg.sh --simd-only

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log "npm pack wasm/pkg"
tarball="$(cd wasm/pkg && npm pack --silent --pack-destination "$tmp")"
tar -tzf "$tmp/$tarball" | sed 's/^/    /' >&2

mkdir "$tmp/app"
cp wasm/npm-test/import.test.mjs "$tmp/app/"
(cd "$tmp/app" && printf '{"name":"neardb-npm-test","private":true,"type":"module"}\n' >package.json &&
  npm install --no-audit --no-fund --silent "$tmp/$tarball")
log "node --test: import neardb-wasm from the installed tarball"
(cd "$tmp/app" && node --test --test-reporter=spec import.test.mjs)
