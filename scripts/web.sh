#!/usr/bin/env bash
# The demo site (web/), built with trunk.
#   scripts/web.sh          serve it with live reload on http://127.0.0.1:8080/
#   scripts/web.sh build    build an optimised copy into web/dist/ (no server)
# Installs trunk 0.21.14 if it is missing (0.22 needs a newer rustc than 1.95; TOOLCHAIN.md).
set -euo pipefail

TRUNK_VERSION=0.21.14

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if ! command -v trunk >/dev/null 2>&1; then
  echo "==> installing trunk $TRUNK_VERSION (takes 15-25 minutes)" >&2
  CARGO_PROFILE_RELEASE_LTO=false cargo install --locked trunk --version "$TRUNK_VERSION"
fi

cd web
case "${1:-serve}" in
  serve) exec trunk serve --address 127.0.0.1 --port 8080 ;;
  build) exec trunk build --release ;;
  *)
    echo "usage: $0 [serve|build]" >&2
    exit 2
    ;;
esac
