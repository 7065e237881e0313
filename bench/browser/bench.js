// Browser benchmark of neardb-wasm (run by run.mjs in headless Chromium; see README.md).
// Loads a TEXMEX dataset, builds an HNSW index in the page (or opens a natively built file),
// then sweeps ef on the simd128 module and on the scalar module with the same index bytes and
// the same queries. Results go to window.__result; progress to the console.
import initSimd, * as simd from "/pkg/neardb_wasm.js";
import initScalar, * as scalar from "/pkg-scalar/neardb_wasm.js";

const params = new URLSearchParams(location.search);
const data = params.get("data");
const metric = params.get("metric") ?? "cosine";
const m = Number(params.get("m") ?? 16);
const efConstruction = Number(params.get("efc") ?? 200);
const efs = (params.get("ef") ?? "16,24,32,48,64,96,128,192").split(",").map(Number);
const nq = Number(params.get("nq") ?? 1000);
const k = 10;
const indexUrl = params.get("index"); // a natively built file instead of a browser build
const flatCheck = params.get("flat") !== "0";
const storage = params.get("storage") ?? "f32"; // "f16": storeF16() before the build
const layout = params.get("layout") ?? "insertion"; // "graph": optimizeLayout() after it
// A folder of filtered.py --export output under the dataset (e.g. "filtered"): filtered
// searches of the opened index at the selectivities in `sel` (default 0.1,0.01), simd only.
const filtered = params.get("filtered");
const selectivities = (params.get("sel") ?? "0.1,0.01").split(",");

const log = (...a) => console.log(...a);

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

// .fvecs / .ivecs: per row an int32 dimension, then the values.
function readVecs(bytes, Kind, limit = Infinity) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dim = view.getInt32(0, true);
  const rows = Math.min(bytes.byteLength / (4 + 4 * dim), limit);
  const out = new Kind(rows * dim);
  for (let r = 0; r < rows; r++) {
    const at = bytes.byteOffset + r * (4 + 4 * dim) + 4;
    out.set(new Kind(bytes.buffer.slice(at, at + 4 * dim)), r * dim);
  }
  return { dim, rows, data: out };
}

function recallAt(found, truth, row, truthDim) {
  let hits = 0;
  const want = truth.subarray(row * truthDim, row * truthDim + k);
  for (const id of found) if (want.includes(id)) hits++;
  return hits / k;
}

// The best of 3 timed passes of `search(i)` over i < n: its total ms and each call's ms.
function timed(n, search) {
  let best = null;
  for (let pass = 0; pass < 3; pass++) {
    const times = new Float64Array(n);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      search(i);
      times[i] = performance.now() - s;
    }
    const total = performance.now() - t0;
    if (!best || total < best.total) best = { total, times };
  }
  return best;
}

// Mean latency over all queries, best of `passes` passes (after one warm-up pass), plus the
// median and 99th percentile of single-query times from the best pass.
function sweep(index, queries, dim, truth, truthDim, ef) {
  const n = queries.length / dim;
  const opts = { ef };
  let recall = 0;
  for (let i = 0; i < n; i++) {
    recall += recallAt(index.search(queries.subarray(i * dim, (i + 1) * dim), k, opts).ids, truth, i, truthDim);
  }
  const best = timed(n, (i) => index.search(queries.subarray(i * dim, (i + 1) * dim), k, opts));
  const sorted = Float64Array.from(best.times).sort();
  return {
    ef,
    recall: recall / n,
    mean_ms: best.total / n,
    p50_ms: sorted[Math.floor(n * 0.5)],
    p99_ms: sorted[Math.min(n - 1, Math.floor(n * 0.99))],
    qps: (n * 1000) / best.total,
  };
}

// One filtered selectivity: the allowed ids (a Uint32Array, converted by the module on every
// search as a JavaScript caller's would be), an ef sweep of single-query latency with recall
// against the exact answers over the allowed records, and the plans the planner chose.
async function filteredSweep(index, dir, sel) {
  const queries = readVecs(await fetchBytes(`${dir}/queries.fvecs`), Float32Array);
  const truth = readVecs(await fetchBytes(`${dir}/truth-${sel}.ivecs`), Int32Array);
  const mask = await fetchBytes(`${dir}/mask-${sel}.u8`);
  if (mask.length !== index.length) throw new Error(`mask-${sel}.u8 has ${mask.length} bytes for ${index.length} vectors`);
  const ids = [];
  for (let i = 0; i < mask.length; i++) if (mask[i]) ids.push(i);
  const allowed = Uint32Array.from(ids);
  const dim = queries.dim;
  const n = queries.rows;
  const rows = [];
  for (const ef of efs) {
    const opts = { ef, filter: allowed, stats: true };
    let recall = 0;
    const plans = {};
    let distances = 0;
    for (let i = 0; i < n; i++) {
      const r = index.search(queries.data.subarray(i * dim, (i + 1) * dim), k, opts);
      recall += recallAt(r.ids, truth.data, i, truth.dim);
      plans[r.stats.plan] = (plans[r.stats.plan] ?? 0) + 1;
      distances += r.stats.distances;
    }
    const plain = { ef, filter: allowed };
    const best = timed(n, (i) => index.search(queries.data.subarray(i * dim, (i + 1) * dim), k, plain));
    const sorted = Float64Array.from(best.times).sort();
    const row = {
      ef, recall: recall / n, plans, distances_per_query: distances / n,
      mean_ms: best.total / n, p99_ms: sorted[Math.min(n - 1, Math.floor(n * 0.99))], qps: (n * 1000) / best.total,
    };
    rows.push(row);
    log(`sel ${sel} (${allowed.length} allowed) ef ${ef}: recall ${row.recall.toFixed(4)} ${JSON.stringify(plans)} ${row.mean_ms.toFixed(3)} ms, ${row.qps.toFixed(0)} QPS`);
  }
  return { selectivity: Number(sel), matches: allowed.length, rows };
}

async function main() {
  const simdOut = await initSimd({ module_or_path: "/pkg/neardb_wasm_bg.wasm" });
  const scalarOut = await initScalar({ module_or_path: "/pkg-scalar/neardb_wasm_bg.wasm" });
  const result = {
    userAgent: navigator.userAgent,
    crossOriginIsolated: self.crossOriginIsolated,
    isa: { simd: simd.kernelIsa(), scalar: scalar.kernelIsa() },
    data, metric, m, efConstruction, k,
  };
  if (result.isa.simd !== "simd128" || result.isa.scalar !== "scalar") {
    throw new Error(`module kernels are ${JSON.stringify(result.isa)}`);
  }
  let t = performance.now();
  const queries = readVecs(await fetchBytes(`/data/${data}/query.fvecs`), Float32Array, nq);
  const truth = readVecs(await fetchBytes(`/data/${data}/groundtruth.ivecs`), Int32Array, nq);
  const dim = queries.dim;
  let index;
  if (indexUrl) {
    const bytes = await fetchBytes(indexUrl);
    t = performance.now();
    index = simd.HnswIndex.fromBytes(bytes);
    result.open_ms = performance.now() - t;
    result.index_bytes = bytes.byteLength;
    log(`opened ${indexUrl} (${bytes.byteLength} bytes) in ${result.open_ms.toFixed(1)} ms`);
  } else {
    const base = readVecs(await fetchBytes(`/data/${data}/base.fvecs`), Float32Array);
    result.n = base.rows;
    result.dim = dim;
    log(`loaded ${base.rows} x ${dim} in ${(performance.now() - t).toFixed(0)} ms; building`);
    const before = simdOut.memory.buffer.byteLength;
    index = new simd.HnswIndex(dim, metric, { m, efConstruction, seed: 42 });
    if (storage === "f16") index.storeF16();
    else if (storage !== "f32") throw new Error(`unknown storage ${storage}`);
    result.storage = storage;
    t = performance.now();
    index.reserve(base.rows);
    // Batches of 10k so progress shows; the index is the same as one add of everything.
    const batch = 10000;
    for (let r = 0; r < base.rows; r += batch) {
      index.add(base.data.subarray(r * dim, Math.min(base.rows, r + batch) * dim));
      log(`  ${Math.min(base.rows, r + batch)} added, ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    result.build_s = (performance.now() - t) / 1000;
    if (layout === "graph") {
      const t0 = performance.now();
      index.optimizeLayout();
      result.layout_s = (performance.now() - t0) / 1000;
    } else if (layout !== "insertion") throw new Error(`unknown layout ${layout}`);
    result.layout = layout;
    result.wasm_memory_before_bytes = before;
    result.wasm_memory_after_build_bytes = simdOut.memory.buffer.byteLength;
    const bytes = index.toBytes();
    result.index_bytes = bytes.byteLength;
    log(`built in ${result.build_s.toFixed(1)} s; wasm memory ${(result.wasm_memory_after_build_bytes / 2 ** 20).toFixed(0)} MiB; file ${(bytes.byteLength / 2 ** 20).toFixed(1)} MiB`);
    if (flatCheck) {
      // The exact answers of the flat index equal the harness's ground truth (sanity check of
      // the data path, not of the graph).
      const flat = new simd.FlatIndex(dim, metric);
      flat.add(base.data);
      let agree = 0;
      for (let i = 0; i < Math.min(50, queries.rows); i++) {
        agree += recallAt(flat.search(queries.data.subarray(i * dim, (i + 1) * dim), k).ids, truth.data, i, truth.dim);
      }
      result.flat_recall_vs_truth = agree / Math.min(50, queries.rows);
      flat.free();
    }
    index.free();
    index = simd.HnswIndex.fromBytes(bytes);
    result._bytes = bytes;
  }
  if (filtered) {
    result.filtered = [];
    for (const sel of selectivities) result.filtered.push(await filteredSweep(index, `/data/${data}/${filtered}`, sel));
    return result;
  }
  const bytes = result._bytes ?? (await fetchBytes(indexUrl));
  delete result._bytes;
  const scalarIndex = scalar.HnswIndex.fromBytes(bytes);
  result.simd = [];
  result.scalar = [];
  for (const ef of efs) {
    const s = sweep(index, queries.data, dim, truth.data, truth.dim, ef);
    const c = sweep(scalarIndex, queries.data, dim, truth.data, truth.dim, ef);
    if (Math.abs(s.recall - c.recall) > 1e-12) throw new Error(`simd and scalar recall differ at ef ${ef}`);
    result.simd.push(s);
    result.scalar.push(c);
    log(`ef ${ef}: recall ${s.recall.toFixed(4)}  simd ${s.mean_ms.toFixed(3)} ms (p99 ${s.p99_ms.toFixed(3)})  scalar ${c.mean_ms.toFixed(3)} ms  x${(c.mean_ms / s.mean_ms).toFixed(2)}`);
  }
  // Exact scan on both modules: the kernel-bound case.
  const flatBytes = (() => {
    const f = new simd.FlatIndex(dim, metric);
    const n = Math.min(20000, index.length);
    const rows = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) rows.set(index.get(i), i * dim);
    f.add(rows);
    const b = f.toBytes();
    f.free();
    return b;
  })();
  const flats = [simd.FlatIndex.fromBytes(flatBytes), scalar.FlatIndex.fromBytes(flatBytes)];
  const flatMs = flats.map((f) => {
    const q = queries.data;
    for (let i = 0; i < 20; i++) f.search(q.subarray(i * dim, (i + 1) * dim), k);
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) f.search(q.subarray(i * dim, (i + 1) * dim), k);
    return (performance.now() - t0) / 100;
  });
  result.flat_20k = { simd_ms: flatMs[0], scalar_ms: flatMs[1], ratio: flatMs[1] / flatMs[0] };
  log(`flat 20k scan: simd ${flatMs[0].toFixed(3)} ms, scalar ${flatMs[1].toFixed(3)} ms, x${(flatMs[1] / flatMs[0]).toFixed(2)}`);
  result.wasm_memory_end_bytes = simdOut.memory.buffer.byteLength;
  return result;
}

main().then(
  (r) => (window.__result = r),
  (e) => (window.__result = { error: String(e && e.stack ? e.stack : e) }),
);
