// Quick simd128-vs-scalar check without a browser: the same wasm package in Node (V8), an
// index file opened with HnswIndex.fromBytes, the dataset's 1000 queries one `search` call at a
// time; prints µs per query (best of three timed passes after a warm-up). Chromium's figures
// (bench.html) are the ones BENCHMARKS.md reports as the target; this is for back-to-back
// comparisons while working.
//   node bench/browser/node-bench.mjs <pkg dir> <index file> <dataset dir> <ef,ef,…> [rerank]
//   e.g. node bench/browser/node-bench.mjs $PWD/wasm/pkg /tmp/h.neardb ../shared/bench/data/clustered-384-cos-100k 32,64
import fs from 'fs';
const [pkg, indexPath, dataDir, efsArg, rerankArg] = process.argv.slice(2);
const mod = await import(pkg + '/neardb_wasm.js');
await mod.default({ module_or_path: fs.readFileSync(pkg + '/neardb_wasm_bg.wasm') });
function readVecs(path) {
  const b = fs.readFileSync(path);
  const dim = b.readInt32LE(0);
  const rows = b.length / (4 + 4 * dim);
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) out.set(new Float32Array(b.buffer.slice(b.byteOffset + r * (4 + 4 * dim) + 4, b.byteOffset + (r + 1) * (4 + 4 * dim))), r * dim);
  return { dim, rows, data: out };
}
const q = readVecs(dataDir + '/query.fvecs');
const idx = mod.HnswIndex.fromBytes(new Uint8Array(fs.readFileSync(indexPath)));
for (const ef of efsArg.split(',').map(Number)) {
  const opts = { ef };
  if (rerankArg) opts.rerank = Number(rerankArg);
  let best = Infinity;
  for (let pass = 0; pass < 4; pass++) {
    const t0 = performance.now();
    for (let i = 0; i < q.rows; i++) idx.search(q.data.subarray(i * q.dim, (i + 1) * q.dim), 10, opts);
    const t = performance.now() - t0;
    if (pass > 0) best = Math.min(best, t);
  }
  console.log(`ef ${ef}: ${(best / q.rows * 1000).toFixed(1)} us/query`);
}
