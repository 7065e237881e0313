//! The seed corpus: small valid index files of every kind and variant the library writes,
//! built in memory (deterministically, so an execution seed replays on any run), and the
//! vectors they were built from (the oracle's queries).

use neardb::format::SectionKind;
use neardb::{
    BuiltIndex, FlatIndex, HnswIndex, HnswParams, IdMap, IndexKind, IndexSpec, Metric, Savable, VamanaIndex,
    VamanaParams, WithIds,
};

use crate::rng::Rng;

/// One valid index file.
#[derive(Clone, Debug)]
pub struct Seed {
    /// What variant it is, e.g. `hnsw-sq8+f16-graph-l2`.
    pub name: String,
    /// Its index kind.
    pub kind: IndexKind,
    /// The dimension it was built with.
    pub dim: usize,
    /// The rows it was built from, row-major.
    pub vectors: Vec<f32>,
    /// The file.
    pub bytes: Vec<u8>,
}

impl Seed {
    /// Whether the file has a section of `kind`.
    pub fn has_section(&self, kind: SectionKind) -> bool {
        crate::layout::Layout::read(&self.bytes).find(kind.0).is_some()
    }
}

/// Row-major data with some cluster structure, so IVF lists and graph levels are uneven.
pub fn data(seed: u64, n: usize, dim: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let centres: Vec<f32> = (0..4 * dim).map(|_| rng.unit()).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.below(4);
        out.extend((0..dim).map(|d| centres[c * dim + d] + 0.3 * rng.unit()));
    }
    out
}

fn bytes_of(index: &dyn Savable) -> Vec<u8> {
    let mut out = Vec::new();
    index
        .write_file(&mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .expect("writing to a Vec cannot fail");
    out
}

fn built_bytes(built: &BuiltIndex) -> Vec<u8> {
    bytes_of(built)
}

/// How an HNSW seed is built.
#[derive(Clone, Copy)]
struct HnswSeed {
    metric: Metric,
    dim: usize,
    n: usize,
    quantize: &'static str,
    graph_layout: bool,
    /// Rows removed after the build (leaves a `deleted` section).
    removed: usize,
    /// Re-rank factor of an SQ8 index (0: codes only).
    rerank: usize,
}

fn hnsw_seed(s: HnswSeed, salt: u64) -> Result<Seed, String> {
    let vectors = data(salt, s.n, s.dim);
    // Built here rather than through `IndexSpec`, which links in parallel when rayon has
    // threads: a parallel graph depends on timing, and the corpus must replay exactly.
    let params = HnswParams { m: 6, ef_construction: 40, seed: salt };
    let mut index = HnswIndex::new(s.dim, s.metric, params).map_err(|e| e.to_string())?;
    if matches!(s.quantize, "f16" | "sq8+f16") {
        index.store_f16().map_err(|e| e.to_string())?;
    }
    index.add(&vectors).map_err(|e| e.to_string())?;
    if matches!(s.quantize, "sq8" | "sq8+f16") {
        index.quantize_sq8(s.rerank).map_err(|e| e.to_string())?;
    }
    for i in 0..s.removed {
        index.remove((i * 7 % s.n) as u32).map_err(|e| e.to_string())?;
    }
    let ids = if s.graph_layout {
        let rows = index.reorder_for_locality();
        IdMap::from_ids(&rows, |slot| !index.is_deleted(slot)).map_err(|e| e.to_string())?
    } else {
        IdMap::identity(s.n as u32)
    };
    let name = format!(
        "hnsw-{}{}-{}{}-{}",
        s.quantize,
        if s.rerank == 0 { "-codes-only" } else { "" },
        if s.graph_layout { "graph" } else { "insertion" },
        if s.removed > 0 { "-deleted" } else { "" },
        s.metric.name()
    );
    let bytes = bytes_of(&WithIds(&index, &ids));
    Ok(Seed { name, kind: IndexKind::Hnsw, dim: s.dim, vectors, bytes })
}

/// A Vamana seed, built sequentially (reproducible); `removed` rows are deleted afterwards, and
/// with `consolidate` their slots freed (else they stay in the graph, traversable).
fn vamana_seed(
    metric: Metric,
    dim: usize,
    n: usize,
    quantize: &'static str,
    removed: usize,
    consolidate: bool,
    salt: u64,
) -> Result<Seed, String> {
    let vectors = data(salt, n, dim);
    let params = VamanaParams { r: 8, l: 24, alpha: 1.2, seed: salt };
    let mut index = VamanaIndex::new(dim, metric, params).map_err(|e| e.to_string())?;
    if quantize == "f16" {
        index.store_f16().map_err(|e| e.to_string())?;
    }
    index.build(&vectors).map_err(|e| e.to_string())?;
    if quantize == "sq8" {
        index.quantize_sq8(4).map_err(|e| e.to_string())?;
    }
    for i in 0..removed {
        index.remove((i * 7 % n) as u32).map_err(|e| e.to_string())?;
    }
    if consolidate {
        index.consolidate();
    }
    let state = match (removed, consolidate) {
        (0, _) => "",
        (_, false) => "-deleted",
        (_, true) => "-consolidated",
    };
    let name = format!("vamana-{quantize}{state}-{}", metric.name());
    Ok(Seed { name, kind: IndexKind::Vamana, dim, vectors, bytes: bytes_of(&index) })
}

fn spec_seed(
    name: &str,
    options: &[(&str, &str)],
    metric: Metric,
    dim: usize,
    n: usize,
    salt: u64,
) -> Result<Seed, String> {
    let vectors = data(salt, n, dim);
    let seed = salt.to_string();
    let mut all = options.to_vec();
    all.push(("seed", &seed));
    let spec = IndexSpec::from_options(all).map_err(|e| format!("{name}: {e}"))?;
    let built = spec.build(metric, dim, &vectors, &|_| {}).map_err(|e| format!("{name}: {e}"))?;
    let name = format!("{name}-{}", metric.name());
    let bytes = built_bytes(&built);
    // Not `spec.kind`: a flat spec with PQ or binary codes writes an IVF-PQ or binary file.
    let kind = IndexKind::from_code(u16::from_le_bytes([bytes[8], bytes[9]]))
        .ok_or_else(|| format!("{name}: the writer put an unknown kind in the header"))?;
    Ok(Seed { name, kind, dim, vectors, bytes })
}

/// Every seed file. Fails only if the library refuses to build one of them (a bug to report
/// rather than fuzz around).
pub fn index_seeds() -> Result<Vec<Seed>, String> {
    use Metric::{Cosine, InnerProduct as Ip, L1, L2};
    let mut out = Vec::new();

    out.push(spec_seed("flat", &[("index", "flat")], L1, 8, 50, 1)?);
    {
        // A flat file with caller ids: the slots in reverse.
        let (dim, n) = (5, 20);
        let vectors = data(2, n, dim);
        let mut index = FlatIndex::new(dim, Cosine).map_err(|e| e.to_string())?;
        index.add(&vectors).map_err(|e| e.to_string())?;
        let rows: Vec<u32> = (0..n as u32).rev().map(|r| r + 1000).collect();
        let ids = IdMap::from_ids(&rows, |_| true).map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        index
            .write_with_ids(&ids, &mut |b: &[u8]| -> Result<(), ()> {
                bytes.extend_from_slice(b);
                Ok(())
            })
            .map_err(|_| "writing a flat file failed".to_string())?;
        out.push(Seed { name: "flat-ids-cosine".into(), kind: IndexKind::Flat, dim, vectors, bytes });
    }

    let h = |metric, dim, n, quantize, graph_layout| HnswSeed {
        metric,
        dim,
        n,
        quantize,
        graph_layout,
        removed: 0,
        rerank: 4,
    };
    out.push(hnsw_seed(h(L2, 16, 200, "none", false), 3)?);
    out.push(hnsw_seed(h(Cosine, 12, 120, "sq8", false), 4)?);
    out.push(hnsw_seed(h(Ip, 8, 100, "f16", true), 5)?);
    out.push(hnsw_seed(h(L2, 24, 300, "sq8+f16", true), 6)?);
    out.push(hnsw_seed(h(L1, 4, 150, "none", true), 7)?);
    out.push(hnsw_seed(HnswSeed { rerank: 0, ..h(L2, 8, 80, "sq8", false) }, 8)?);
    out.push(hnsw_seed(HnswSeed { removed: 10, ..h(L2, 6, 90, "none", false) }, 9)?);
    out.push(hnsw_seed(HnswSeed { removed: 5, ..h(Cosine, 10, 60, "sq8+f16", true) }, 10)?);

    out.push(vamana_seed(L2, 12, 150, "none", 0, false, 20)?);
    out.push(vamana_seed(Cosine, 8, 100, "sq8", 9, false, 21)?);
    out.push(vamana_seed(Ip, 6, 90, "f16", 12, true, 22)?);

    let ivf = [("index", "ivfpq"), ("nlist", "8"), ("pq_m", "4"), ("nbits", "8")];
    out.push(spec_seed("ivfpq-nbits8", &ivf, L2, 16, 300, 11)?);
    let ivf = [("index", "ivfpq"), ("nlist", "4"), ("pq_m", "2"), ("nbits", "4"), ("rerank", "0")];
    out.push(spec_seed("ivfpq-nbits4-no-vectors", &ivf, Ip, 8, 200, 12)?);
    let ivf = [("index", "ivfpq"), ("nlist", "5"), ("pq_m", "3"), ("nbits", "4")];
    out.push(spec_seed("ivfpq-nbits4", &ivf, Cosine, 12, 120, 13)?);
    let pq = [("index", "flat"), ("quantize", "pq"), ("pq_m", "4"), ("nbits", "4")];
    out.push(spec_seed("flat-pq", &pq, L2, 8, 100, 14)?);

    out.push(spec_seed("binary-sign", &[("index", "binary")], L2, 16, 100, 15)?);
    let hp = [("index", "binary"), ("bits", "24")];
    out.push(spec_seed("binary-hyperplanes", &hp, Cosine, 12, 150, 16)?);
    let lsh = [("index", "binary"), ("bits", "32"), ("tables", "4"), ("key_bits", "6")];
    out.push(spec_seed("binary-lsh", &lsh, Ip, 20, 250, 17)?);
    let bare = [("index", "binary"), ("rerank", "0")];
    out.push(spec_seed("binary-sign-no-vectors", &bare, Ip, 8, 60, 18)?);
    let flat_bin = [("index", "flat"), ("quantize", "binary"), ("tables", "2"), ("key_bits", "4")];
    out.push(spec_seed("flat-binary-lsh", &flat_bin, L2, 10, 40, 19)?);
    Ok(out)
}
