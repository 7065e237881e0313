#!/usr/bin/env bash
# End-to-end check of the demo site: builds web/ with trunk, serves web/dist on 127.0.0.1 and
# loads it in headless Chromium, then checks that the page filled in its #result element (top-5
# ids and distances, timings, kernel simd128). Skips, saying so, only when trunk is not installed
# (scripts/web.sh installs it); any other problem fails. Extra arguments go to `trunk build`
# (e.g. --release).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if ! command -v trunk >/dev/null 2>&1; then
  echo "skipped: trunk not installed (scripts/web.sh installs trunk 0.21.14)"
  exit 0
fi
chromium_bin="${CHROMIUM:-}"
if [[ -z "$chromium_bin" ]]; then
  for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then
      chromium_bin="$(command -v "$c")"
      break
    fi
  done
fi
[[ -n "$chromium_bin" ]] || { echo "error: no chromium found (apt-get install -y chromium)" >&2; exit 1; }

echo "==> trunk build $*" >&2
(cd web && trunk build "$@")
[[ -f web/dist/index.html ]] || { echo "error: trunk produced no web/dist/index.html" >&2; exit 1; }

tmp="$(mktemp -d)"
server=""
cleanup() {
  if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server "$port" --bind 127.0.0.1 --directory web/dist >"$tmp/http.log" 2>&1 &
server=$!
for _ in $(seq 50); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

echo "==> loading http://127.0.0.1:$port/ in headless $(basename "$chromium_bin")" >&2
timeout 120 "$chromium_bin" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$tmp/profile" --virtual-time-budget=15000 \
  --dump-dom "http://127.0.0.1:$port/" >"$tmp/dom.html" 2>"$tmp/chromium.log" || {
  echo "error: chromium failed; its log:" >&2
  cat "$tmp/chromium.log" >&2
  exit 1
}

python3 - "$tmp/dom.html" <<'PY'
import html, re, sys

dom = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r'<pre\b[^>]*\bid="result"[^>]*>(.*?)</pre>', dom, re.S)
if not m:
    sys.exit("error: no #result element in the page:\n" + dom[:2000])
tag = m.group(0)[: m.group(0).index(">") + 1]
text = html.unescape(m.group(1))
print(text, end="" if text.endswith("\n") else "\n")
status = re.search(r'data-status="([^"]*)"', tag)
problems = []
if not status or status.group(1) != "ok":
    problems.append(f"data-status is {status.group(1) if status else None!r}, not 'ok'")
if "kernel: simd128" not in text:
    problems.append("the page does not report the simd128 kernels")
if not re.search(r"search: top-5 in [0-9.]+ ms", text):
    problems.append("no search timing")
rows = re.findall(r"^\d+\s+\d+\s+[0-9.]+$", text, re.M)
if len(rows) != 5:
    problems.append(f"{len(rows)} result rows, expected 5")
if problems:
    sys.exit("error: " + "; ".join(problems))
print("ok: the demo page filled #result")
PY
