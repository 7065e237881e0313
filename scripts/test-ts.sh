#!/usr/bin/env bash
# Type-checks wasm/ts-check/example.ts, which uses the whole JavaScript API, against the
# TypeScript declarations wasm-bindgen generates (wasm/pkg/neardb_wasm.d.ts), with TypeScript
# pinned by wasm/ts-check/package-lock.json. The example also holds misuses marked
# `// @ts-expect-error`, so the check fails if the declarations stop rejecting them (e.g. a type
# that became `any`). Builds wasm/pkg first (scripts/build-wasm-pkg.sh --simd-only; incremental) and installs
# Node.js and npm if they are missing (needs root or passwordless sudo for that).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh



# 1. Node.js and npm.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "installing nodejs and npm"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi

# 2. The package whose declarations are checked (incremental: fast when nothing changed).
scripts/build-wasm-pkg.sh --simd-only
[[ -f wasm/pkg/neardb_wasm.d.ts ]] || { log "no wasm/pkg/neardb_wasm.d.ts was built"; exit 1; }

# 3. TypeScript, exactly the locked version (again when the lock file changed).
if [[ ! -x wasm/ts-check/node_modules/.bin/tsc ||
  wasm/ts-check/package-lock.json -nt wasm/ts-check/node_modules/.package-lock.json ]]; then
  log "npm ci in wasm/ts-check"
  (cd wasm/ts-check && npm ci --no-audit --no-fund)
fi

# 4. The check.
log "tsc $(cd wasm/ts-check && npx --no-install tsc --version) --noEmit -p wasm/ts-check"
(cd wasm/ts-check && npx --no-install tsc --noEmit -p .)
echo "ok: wasm/ts-check/example.ts type-checks against wasm/pkg/neardb_wasm.d.ts" \
  "($(grep -c '^// @ts-expect-error' wasm/ts-check/example.ts) expected errors rejected)"
