// The demo page: loads the model, the HNSW index and the package list (from the Cache API when
// cached, so a second visit and offline use need no network), then embeds each question and
// searches the index, entirely in this tab. The WebAssembly exports come from trunk's loader
// as window.wasmBindings (HnswIndex, TextEmbedder, kernelIsa).

const CACHE = "neardb-demo-v1";
const ASSETS = {
  weights: "assets/model.safetensors",
  tokenizer: "assets/tokenizer.json",
  config: "assets/config.json",
  index: "assets/index.neardb",
  docs: "assets/docs.json",
};
const K = 10;
const EF = 64;

const $ = (id) => document.getElementById(id);
const status = (html, state = "loading") => {
  $("status").innerHTML = html;
  $("status").dataset.state = state;
};

// The bytes at `url`: from the cache, else fetched with progress and then cached.
async function load(url, label, progress) {
  const cache = "caches" in self ? await caches.open(CACHE) : null;
  const hit = cache && (await cache.match(url));
  if (hit) {
    progress(label, 1, 1, true);
    return new Uint8Array(await hit.arrayBuffer());
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get("content-length")) || 0;
  const reader = response.body.getReader();
  const parts = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.length;
    progress(label, got, total, false);
  }
  const bytes = new Uint8Array(got);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  if (cache) await cache.put(url, new Response(bytes, { headers: { "content-length": String(got) } }));
  return bytes;
}

function escape(s) {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

async function main() {
  const w = window.wasmBindings;
  const t0 = performance.now();
  const shown = {};
  const progress = (label, got, total, cached) => {
    shown[label] = cached ? `${label}: cached` : total
      ? `${label} <progress value="${got}" max="${total}"></progress> ${(got / 2 ** 20).toFixed(1)} / ${(total / 2 ** 20).toFixed(1)} MiB`
      : `${label}: ${(got / 2 ** 20).toFixed(1)} MiB`;
    status(Object.values(shown).join(" · "));
  };
  const [weights, tokenizer, config, indexBytes, docsBytes] = await Promise.all([
    load(ASSETS.weights, "model", progress),
    load(ASSETS.tokenizer, "tokenizer", progress),
    load(ASSETS.config, "config", progress),
    load(ASSETS.index, "index", progress),
    load(ASSETS.docs, "packages", progress),
  ]);
  const tLoaded = performance.now();
  status("Starting the model and opening the index…");
  await new Promise((r) => setTimeout(r, 0));
  const embedder = new w.TextEmbedder(weights, tokenizer, config);
  const index = w.HnswIndex.fromBytes(indexBytes, { efSearch: EF });
  const docs = JSON.parse(new TextDecoder().decode(docsBytes));
  const tReady = performance.now();
  const timing = {
    download_ms: tLoaded - t0,
    init_ms: tReady - tLoaded,
    cold_ms: tReady - t0,
    packages: index.length,
    kernel: w.kernelIsa(),
  };
  $("footer").textContent = `${index.length} packages · ${w.kernelIsa()} · assets ${((weights.length + indexBytes.length + docsBytes.length) / 2 ** 20).toFixed(0)} MiB, loaded in ${(timing.cold_ms / 1000).toFixed(1)} s (works offline from now on)`;

  function render(found, header) {
    const items = [];
    for (let i = 0; i < found.ids.length; i++) {
      const d = docs[found.ids[i]];
      const score = 1 - found.distances[i];
      const long = d.long.length > 240 ? `${d.long.slice(0, 240)}…` : d.long;
      items.push(`<li data-name="${escape(d.name)}"><span class="name">${escape(d.name)}</span>
        <span class="short">${escape(d.short)}</span><span class="score">${score.toFixed(3)}</span>
        <div class="long">${escape(long)}</div>
        <button class="more" data-id="${found.ids[i]}">more like this</button></li>`);
    }
    $("results").innerHTML = items.join("");
    status(header, "ready");
  }

  let latest = 0;
  async function search(text) {
    const ticket = ++latest;
    if (!text.trim()) {
      $("results").innerHTML = "";
      status("Type a question.", "ready");
      return;
    }
    const a = performance.now();
    const query = embedder.embed(text);
    const b = performance.now();
    const found = index.search(query, K);
    const c = performance.now();
    if (ticket !== latest) return;
    window.neardbLastQuery = { text, embed_ms: b - a, search_ms: c - b, ids: Array.from(found.ids) };
    render(found, `embedding ${(b - a).toFixed(1)} ms · search ${(c - b).toFixed(2)} ms`);
  }

  let timer = 0;
  $("q").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => search(e.target.value), 120);
  });
  $("results").addEventListener("click", (e) => {
    const id = e.target.dataset && e.target.dataset.id;
    if (id === undefined) return;
    const a = performance.now();
    const v = index.get(Number(id));
    const found = index.search(v, K + 1);
    const keep = Array.from(found.ids).map((x, i) => i).filter((i) => found.ids[i] !== Number(id)).slice(0, K);
    const c = performance.now();
    ++latest;
    render(
      { ids: keep.map((i) => found.ids[i]), distances: keep.map((i) => found.distances[i]) },
      `more like <b>${escape(docs[Number(id)].name)}</b> · search ${(c - a).toFixed(2)} ms`,
    );
    window.scrollTo(0, 0);
  });

  // For the end-to-end test and the curious: the loaded pieces and the timings.
  window.neardbDemo = {
    timing,
    embed: (texts) => Array.from(embedder.embedBatch(texts)),
    embedder,
    search: (text) => search(text),
  };
  $("q").disabled = false;
  $("q").focus();
  // Offline: the page, its script and the WebAssembly were fetched before the service worker
  // existed, so put them in the cache it answers from when the network is gone.
  if ("serviceWorker" in navigator && "caches" in self) {
    navigator.serviceWorker.register("sw.js").catch(() => {});
    const own = performance
      .getEntriesByType("resource")
      .map((e) => e.name)
      .filter((u) => u.startsWith(location.origin) && !u.includes("/assets/"));
    const cache = await caches.open(CACHE);
    for (const url of new Set([location.href.split("#")[0], ...own])) {
      await cache.add(url).catch((e) => console.warn(`offline cache: ${url}: ${e}`));
    }
  }
  status(`Ready: ${index.length} packages. Type a question.`, "ready");
}

function start() {
  main().catch((e) => {
    status(`Error: ${escape(String(e && e.message ? e.message : e))}`, "error");
    console.error(e);
  });
}
if (window.wasmBindings) start();
else addEventListener("TrunkApplicationStarted", start, { once: true });
