#!/usr/bin/env bash
# Prepares everything the demo site needs, from the registries, and caches it:
#   1. the model (scripts/fetch-model.sh);
#   2. Debian's English package descriptions (apt's Translation-en files, fetched into a
#      private lists folder, never touching the system's apt state);
#   3. `neardb corpus` (de-duplicated packages), `neardb embed` (natively, all cores),
#      `neardb build --index hnsw --quantize f16 --layout graph` (cosine, binary16), `neardb model-f16`
#      (half-size weights);
#   4. web/assets/: index.neardb, docs.json, model.safetensors (f16), tokenizer.json, config.json.
# Each step is skipped when its output is newer than its inputs. EVERY=N keeps every Nth
# package (the test suite uses EVERY=20 for a quick end-to-end run); PROFILE=dev uses the debug
# neardb the test suite has already built (dependencies are optimised there too).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
cache="${NEARDB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/neardb}"
every="${EVERY:-1}"
fresh() { [[ -f "$1" && ! "$1" -ot "$2" ]]; } # $1 exists and is not older than $2

# 1. Model.
NEARDB_CACHE="$cache" scripts/fetch-model.sh
model="$cache/minilm"

# 2. Descriptions (refetched after a week).
lists="$cache/debian/lists"
mkdir -p "$lists/partial"
if [[ -z "$(find "$lists" -maxdepth 1 -name '*Translation-en*' -mtime -7 2>/dev/null)" ]]; then
  log "fetching Debian's package lists and English descriptions into $lists"
  as_root apt-get -o Dir::State::Lists="$lists" -o Acquire::Languages=en update >&2
fi
texts=()
# Main first, then updates and security: the first description of a package wins.
ordered=$(
  cd "$lists"
  ls -- *Translation-en* | grep -v -e '-updates_' -e '-security_' || true
  ls -- *Translation-en* | grep -e '-updates_' || true
  ls -- *Translation-en* | grep -e '-security_' || true
)
for name in $ordered; do
  f="$lists/$name"
  out="$cache/debian/$(basename "$f" | sed 's/\.[a-z0-9]*$//').txt"
  fresh "$out" "$f" || /usr/lib/apt/apt-helper cat-file "$f" >"$out"
  texts+=("$out")
done
[[ ${#texts[@]} -gt 0 ]] || { log "no Translation-en files in $lists"; exit 1; }

# 3. Corpus, vectors, index.
profile="${PROFILE:-release}"
log "cargo build --profile $profile (neardb)"
if [[ $profile == dev ]]; then
  # The debug neardb exactly as `cargo test` builds it (see scripts/test-wasm.sh), so the
  # test suite does not rebuild the tree with differently unified features.
  cargo test --no-run >&2
else
  cargo build --profile "$profile" -p neardb-cli >&2
fi
neardb="target/$([[ $profile == dev ]] && echo debug || echo "$profile")/neardb"
work="$cache/site-every$every"
mkdir -p "$work"
"$neardb" corpus --translations "${texts[@]}" --output "$work/docs.jsonl.new" --docs-json "$work/docs.json.new" --every "$every"
# Replace only on change, so unchanged descriptions keep their vectors.
for f in docs.jsonl docs.json; do
  if cmp -s "$work/$f.new" "$work/$f"; then rm "$work/$f.new"; else mv "$work/$f.new" "$work/$f"; fi
done
if ! fresh "$work/vectors.fvecs" "$work/docs.jsonl"; then
  log "embedding $(wc -l <"$work/docs.jsonl") packages natively (64 tokens each; about 56 per second on 2 cores)"
  "$neardb" embed --input "$work/docs.jsonl" --output "$work/vectors.fvecs" --model "$model" --max-tokens 64 --batch 32
fi
# Binary16 vectors: half the download of f32, the same answers within rounding; slots grouped by
# the graph, which makes searches in the tab faster (BENCHMARKS.md).
if ! fresh "$work/index-f16-graph.neardb" "$work/vectors.fvecs"; then
  "$neardb" build --base "$work/vectors.fvecs" --metric cosine --index hnsw --m 16 --ef-construction 200 \
    --quantize f16 --layout graph --output "$work/index-f16-graph.neardb" >&2
fi
fresh "$cache/model-f16.safetensors" "$model/model.safetensors" ||
  "$neardb" model-f16 --input "$model/model.safetensors" --output "$cache/model-f16.safetensors"

# 4. The site's assets (hard links where the file system allows, else copies).
mkdir -p web/assets
put() { ln -f "$1" "web/assets/$2" 2>/dev/null || cp -f "$1" "web/assets/$2"; }
put "$work/index-f16-graph.neardb" index.neardb
put "$work/docs.json" docs.json
put "$cache/model-f16.safetensors" model.safetensors
put "$model/tokenizer.json" tokenizer.json
put "$model/config.json" config.json
log "web/assets ready: $(du -shL web/assets | cut -f1) ($(wc -l <"$work/docs.jsonl") packages)"
