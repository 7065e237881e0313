// The packed npm package as a user gets it: scripts/test-npm.sh installs the `npm pack` tarball
// into an empty project, and this test (run there by `node --test`) imports it by name, loads
// the wasm the way Node users must (initSync with the bytes of the exported .wasm file), then
// builds, searches, round-trips and misuses indexes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { initSync, FlatIndex, HnswIndex, kernelIsa } from "neardb-wasm";

initSync({ module: readFileSync(fileURLToPath(import.meta.resolve("neardb-wasm/neardb_wasm_bg.wasm"))) });

// A seeded generator, so a failure reproduces.
function vectors(n, dim, seed) {
  let s = seed >>> 0;
  const out = new Float32Array(n * dim);
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

const dim = 32;
const n = 2000;
const data = vectors(n, dim, 7);
const queries = vectors(50, dim, 11);

test("the package runs the simd128 build", () => {
  assert.equal(kernelIsa(), "simd128");
});

test("HNSW finds what exact search finds (recall@10 against FlatIndex)", () => {
  const flat = new FlatIndex(dim, "l2");
  flat.add(data);
  const hnsw = new HnswIndex(dim, "l2", { m: 16, efConstruction: 100, seed: 1 });
  hnsw.add(data);
  assert.equal(hnsw.length, n);
  let found = 0;
  for (let q = 0; q < 50; q++) {
    const query = queries.subarray(q * dim, (q + 1) * dim);
    const truth = new Set(flat.search(query, 10).ids);
    const hits = hnsw.search(query, 10, { ef: 64 });
    assert.equal(hits.ids.length, 10);
    for (const id of hits.ids) found += truth.has(id) ? 1 : 0;
  }
  assert.ok(found / 500 >= 0.9, `recall ${found / 500}`);
});

test("an index survives toBytes / fromBytes with the same answers", () => {
  const hnsw = new HnswIndex(dim, "cosine", { seed: 3 });
  hnsw.add(data.subarray(0, 500 * dim));
  const again = HnswIndex.fromBytes(hnsw.toBytes());
  const query = queries.subarray(0, dim);
  const a = hnsw.search(query, 5, { ef: 32 });
  const b = again.search(query, 5, { ef: 32 });
  assert.deepEqual(Array.from(b.ids), Array.from(a.ids));
  assert.deepEqual(Array.from(b.distances), Array.from(a.distances));
});

test("bad input is a thrown Error naming the problem", () => {
  const flat = new FlatIndex(dim, "l2");
  flat.add(data.subarray(0, 10 * dim));
  assert.throws(() => flat.search(new Float32Array(dim + 1), 3), /dimension/i);
  assert.throws(() => flat.search(queries.subarray(0, dim), 0), Error);
  assert.throws(() => new FlatIndex(dim, "hamming"), /metric/i);
  assert.throws(() => FlatIndex.fromBytes(new Uint8Array([1, 2, 3])), Error);
});
