// Uses the whole JavaScript API of neardb-wasm with the generated declarations
// (../pkg/neardb_wasm.d.ts). Only type-checked (scripts/test-ts.sh), never run. The lines
// under `@ts-expect-error` must NOT type-check: if the declarations degraded to `any`, tsc would
// report those directives as unused and fail.
import init, {
  FlatIndex,
  HnswIndex,
  IvfPqIndex,
  kernelIsa,
  type FlatSearchOptions,
  type HnswOptions,
  type HnswSearchOptions,
  type IdFilter,
  type InitOutput,
  type Metric,
  type SearchResult,
} from "../pkg/neardb_wasm.js";

const wasm: InitOutput = await init();
const memory: WebAssembly.Memory = wasm.memory;
const isa: string = kernelIsa();

const dim = 8;
const metric: Metric = "cosine";

function randomVectors(n: number): Float32Array {
  const out = new Float32Array(n * dim);
  for (let i = 0; i < out.length; i++) out[i] = Math.random() * 2 - 1;
  return out;
}

function show(label: string, r: SearchResult): void {
  const ids: Uint32Array = r.ids;
  const distances: Float32Array = r.distances;
  console.log(label, Array.from(ids), Array.from(distances));
}

// ---- FlatIndex: exact search ----
const flat = new FlatIndex(dim, "l2");
const firstIds: Uint32Array = flat.add(randomVectors(100)); // 0..99
flat.add(randomVectors(3), new Uint32Array([1000, 1001, 1002]));
flat.add(randomVectors(2), [2000, 2001]);
flat.add(randomVectors(1), null);

const query = randomVectors(1);
show("flat", flat.search(query, 5));
const flatOpts: FlatSearchOptions = { filter: new Uint32Array([1, 2, 3, 1000]) };
show("flat, allowed ids", flat.search(query, 3, flatOpts));
show("flat, predicate", flat.search(query, 3, { filter: (id: number) => id % 2 === 0 }));
const flatBatch: SearchResult[] = flat.searchBatch(randomVectors(4), 10, { filter: [5, 6, 7] });
console.log(flatBatch.length, firstIds.length);

flat.remove(1001);
const flatHas: boolean = flat.has(1001);
const stored: Float32Array = flat.get(1000);
const count: number = flat.length;
const empty: boolean = flat.isEmpty;
const flatDim: number = flat.dim;
const flatMetric: Metric = flat.metric;
console.log(flatHas, stored.length, count, empty, flatDim, flatMetric);

const flatBytes: Uint8Array = flat.toBytes();
const flatCopy: FlatIndex = FlatIndex.fromBytes(flatBytes);
show("flat copy", flatCopy.search(query, 1));
flatCopy.free();
flat.free();

// ---- HnswIndex: approximate search ----
const options: HnswOptions = { m: 16, efConstruction: 200, efSearch: 64, seed: 42 };
const hnsw = new HnswIndex(dim, metric, options);
const plain = new HnswIndex(dim, "ip");
const minimal = new HnswIndex(dim, "l1", { m: 8 });
hnsw.add(randomVectors(500));
hnsw.add(randomVectors(2), new Uint32Array([7000, 7001]));

show("hnsw", hnsw.search(query, 10));
show("hnsw, ef 128", hnsw.search(query, 10, { ef: 128 }));
const allowed: IdFilter = new Uint32Array([3, 5, 8, 7000]);
show("hnsw, allowed ids", hnsw.search(query, 10, { ef: 50, filter: allowed }));
const searchOpts: HnswSearchOptions = { filter: (id) => id >= 100 && id < 200 };
show("hnsw, predicate", hnsw.search(query, 10, searchOpts));
for (const r of hnsw.searchBatch(randomVectors(3), 5, { ef: 32 })) show("batch", r);

// Compression: graph walks over one byte per dimension, the best k × 4 re-ranked exactly.
const compressed = HnswIndex.fromBytes(hnsw.toBytes());
compressed.quantizeSq8(4);
const quantization: "none" | "f16" | "sq8" | "sq8+f16" = compressed.quantization;
show("sq8", compressed.search(query, 10, { ef: 64, rerank: 8 }));
console.log(quantization);

// Binary16 vectors: half the bytes in memory and in `toBytes`, the same answers within rounding.
const half = HnswIndex.fromBytes(hnsw.toBytes());
half.storeF16();
show("f16", half.search(query, 10, { ef: 64 }));
console.log(half.quantization, half.toBytes().length);
// Or binary16 from the start: the build never holds f32 rows.
const small = new HnswIndex(dim, "cosine", { m: 16, efConstruction: 200, storage: "f16" });
small.add(randomVectors(100));
console.log(small.quantization);
half.optimizeLayout(); // the same answers and ids; faster searches in the tab

// IVF-PQ: trained in the tab, or opened from a native `neardb build --index ivfpq` file.
const ivf = new IvfPqIndex(dim, "cosine", { nlist: 16, pqM: 4, nbits: 8, keepVectors: true });
ivf.train(randomVectors(2000));
ivf.add(randomVectors(2000));
show("ivfpq", ivf.search(query, 10, { nprobe: 8, rerank: 4 }));
const ivfCopy: IvfPqIndex = IvfPqIndex.fromBytes(ivf.toBytes());
console.log(ivfCopy.nlist, ivfCopy.pqM, ivfCopy.length);

hnsw.efSearch = 100;
const ef: number = hnsw.efSearch;
const m: number = hnsw.m;
const efConstruction: number = hnsw.efConstruction;
hnsw.remove(7001);
if (!hnsw.has(7001)) console.log("removed", hnsw.get(7000).length, hnsw.length, hnsw.dim, hnsw.metric);
console.log(ef, m, efConstruction, hnsw.isEmpty, plain.length, minimal.m);

// Round trip, and a natively built file loaded with fetch.
const reopened = HnswIndex.fromBytes(hnsw.toBytes(), { efSearch: 80 });
show("reopened", reopened.search(query, 5));
const fetched = HnswIndex.fromBytes(new Uint8Array(await (await fetch("index.neardb")).arrayBuffer()));
show("fetched", fetched.search(new Float32Array(fetched.dim), 5));

try {
  hnsw.search(new Float32Array(dim + 1), 5);
} catch (e) {
  if (e instanceof Error) console.log("rejected:", e.message);
}

// WebAssembly memory is freed by free(), or by `using` (Symbol.dispose) at the end of a block.
for (const index of [hnsw, plain, minimal, reopened, fetched]) index.free();
{
  using scratch = new FlatIndex(dim, "dot");
  scratch.add(randomVectors(10));
  show("scratch", scratch.search(query, 3));
}
console.log(isa, memory.buffer.byteLength);

// ---- Misuse the declarations must reject ----
const probe = new FlatIndex(dim, "l2");
const probeHnsw = new HnswIndex(dim, "l2");

// @ts-expect-error k is a number, not a string
probe.search(query, "5");

// @ts-expect-error unknown search option (a typo of `ef`)
probeHnsw.search(query, 5, { eff: 3 });

// @ts-expect-error not a metric NearDB knows (a runtime Error too)
new FlatIndex(dim, "hamming");

// @ts-expect-error FlatIndex searches are exact: no `ef` option
probe.search(query, 5, { ef: 10 });

// @ts-expect-error unknown constructor option (a typo of `efConstruction`)
new HnswIndex(dim, "l2", { efConstuction: 100 });

// @ts-expect-error storage is "f32" or "f16"
new HnswIndex(dim, "l2", { storage: "f8" });
// @ts-expect-error fromBytes options hold only `efSearch`
HnswIndex.fromBytes(new Uint8Array(0), { m: 8 });

// @ts-expect-error a filter predicate returns a boolean
probeHnsw.search(query, 5, { filter: (id: number) => `${id}` });

// @ts-expect-error results are typed arrays, not `any`
const wrongIds: string = probe.search(query, 1).ids;

// @ts-expect-error `length` is read-only
probe.length = 3;

console.log(wrongIds);
probe.free();
probeHnsw.free();
