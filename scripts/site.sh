#!/usr/bin/env bash
# The main job: semantic search over Debian's ~62k package descriptions, in the browser.
# Prepares everything from the registries and caches it (scripts/prepare-site.sh: model,
# descriptions, native embeddings — about 20 minutes on 2 cores the first time, seconds after),
# then serves the site with trunk on http://127.0.0.1:8080/.
# Installs what is missing: the wasm32 target, wasm-bindgen-cli, trunk (TOOLCHAIN.md versions).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
log() { printf '==> %s\n' "$*" >&2; }

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
if [[ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen 0.2.130" ]]; then
  log "installing wasm-bindgen-cli 0.2.130 (10-15 minutes, once)"
  cargo install wasm-bindgen-cli --version 0.2.130 --force
fi
if ! command -v trunk >/dev/null 2>&1; then
  log "installing trunk 0.21.14 (15-25 minutes, once)"
  CARGO_PROFILE_RELEASE_LTO=false cargo install --locked trunk --version 0.21.14
fi

scripts/prepare-site.sh
cd web
log "serving on http://127.0.0.1:8080/ (trunk serve --release; Ctrl-C stops)"
exec trunk serve --release --address 127.0.0.1 --port 8080
