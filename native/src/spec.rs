//! What to build: one [`IndexSpec`] names an index kind and every build option, and builds it
//! over row-major vectors. The CLI, the benchmark harness entry (`neardb peer`) and the tests
//! all go through it, so an option means the same thing everywhere.

use std::path::Path;

use neardb_core::{
    BinaryIndex, BinaryParams, Choice, FlatIndex, HnswIndex, HnswParams, IdMap, IndexKind, IvfPqIndex,
    IvfPqParams, Kernels, Metric, UnknownChoice, VamanaIndex, VamanaParams, VectorSearch,
};

use crate::{save, FileError, InMemory, Index};

/// How the vectors a search reads are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Quantize {
    /// Full `f32` vectors.
    #[default]
    None,
    /// HNSW walks one byte per dimension (scalar quantization) and re-ranks with `f32` rows.
    Sq8,
    /// Binary16 rows, half the bytes: what flat scans and graphs walk, and what IVF-PQ and
    /// binary indexes re-rank with.
    F16,
    /// HNSW walks SQ8 codes and re-ranks against binary16 rows.
    Sq8F16,
    /// Flat: exhaustive product-quantization scan (`pq_m` sub-quantizers).
    Pq,
    /// Flat: exhaustive Hamming scan over binary codes.
    Binary,
}

impl Choice for Quantize {
    const WHAT: &'static str = "quantization";
    const ALL: &'static [Self] = &[Self::None, Self::Sq8, Self::F16, Self::Sq8F16, Self::Pq, Self::Binary];
    fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Sq8 => "sq8",
            Self::F16 => "f16",
            Self::Sq8F16 => "sq8+f16",
            Self::Pq => "pq",
            Self::Binary => "binary",
        }
    }
    fn about(self) -> &'static str {
        match self {
            Self::None => "full f32 vectors",
            Self::Sq8 => "hnsw: walk one byte per dimension, re-rank the best k x rerank exactly",
            Self::F16 => "binary16 rows, half the bytes (flat, hnsw, vamana; ivf-pq and binary re-rank rows)",
            Self::Sq8F16 => "hnsw: walk SQ8 codes, re-rank against binary16 rows",
            Self::Pq => "flat: exhaustive PQ scan with --pq-m sub-quantizers",
            Self::Binary => "flat: exhaustive Hamming scan over sign bits",
        }
    }
}

/// The order of an HNSW index's slots in memory and in the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Row order.
    #[default]
    Insertion,
    /// Grouped by the graph's own hierarchy, so neighbours sit close together; the file then
    /// maps slots back to row numbers in an `ids` section.
    Graph,
}

impl Choice for Layout {
    const WHAT: &'static str = "layout";
    const ALL: &'static [Self] = &[Self::Insertion, Self::Graph];
    fn name(self) -> &'static str {
        match self {
            Self::Insertion => "insertion",
            Self::Graph => "graph",
        }
    }
    fn about(self) -> &'static str {
        match self {
            Self::Insertion => "slots in row order",
            Self::Graph => "slots grouped by the graph (6-10 % faster searches in WebAssembly)",
        }
    }
}

/// A build that cannot go ahead as specified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The index kind does not take this quantization.
    #[error("quantization {quantize} is not available for index kind {kind}")]
    Unsupported {
        /// The index kind.
        kind: &'static str,
        /// The quantization asked for.
        quantize: &'static str,
    },
    /// A `key=value` option with a key no index kind knows.
    #[error("unknown build option {0:?}")]
    UnknownOption(String),
    /// A `key=value` option whose value does not parse.
    #[error("build option {key}={value}: expected {expected}")]
    BadValue {
        /// The option.
        key: String,
        /// What was given.
        value: String,
        /// What it should have been.
        expected: &'static str,
    },
    /// A name outside an option's list.
    #[error(transparent)]
    UnknownName(#[from] UnknownChoice),
    /// The index refused the data or the parameters.
    #[error(transparent)]
    Index(#[from] neardb_core::Error),
    /// The SSD index could not be built or written.
    #[cfg(unix)]
    #[error(transparent)]
    Disk(#[from] crate::disk::DiskError),
}

/// Everything that decides what a build produces.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexSpec {
    /// The index kind.
    pub kind: IndexKind,
    /// HNSW graph parameters (links per node, build candidate list, level seed).
    pub hnsw: HnswParams,
    /// Vamana graph parameters (R, L, α); the seed is `hnsw.seed`, shared by every kind.
    pub vamana: VamanaParams,
    /// How the vectors searches read are stored.
    pub quantize: Quantize,
    /// HNSW slot order.
    pub layout: Layout,
    /// Quantized kinds: re-rank the best k × `rerank` candidates exactly (HNSW-SQ8 by default;
    /// IVF-PQ and binary when a search asks). 0 keeps only the codes, in memory and in the file.
    pub rerank: usize,
    /// IVF: inverted lists (0: round(√n)).
    pub nlist: usize,
    /// PQ: sub-quantizers; must divide the dimension (0: the largest of 48/32/16 dividing it
    /// with ≥ 8 dimensions each).
    pub pq_m: usize,
    /// PQ: bits per sub-code, 8 or 4.
    pub nbits: u8,
    /// Binary: code bits from random hyperplanes (0: one sign bit per dimension).
    pub bits: usize,
    /// Binary: LSH tables (0: exhaustive Hamming scan).
    pub tables: usize,
    /// Binary: key bits per LSH table.
    pub key_bits: usize,
    /// SSD index built from a file: most bytes the build may hold (0: no limit). Past it the
    /// build is sharded (`disk::build_disk_index_from_file`).
    pub build_memory: u64,
    /// SSD index: sectors per block, one read (0: by node size, two where a node fits a
    /// sector once but two sectors three times).
    pub block_sectors: u32,
}

impl Default for IndexSpec {
    fn default() -> Self {
        Self::new(IndexKind::Flat)
    }
}

impl IndexSpec {
    /// A spec of `kind` with every option at its default.
    pub fn new(kind: IndexKind) -> Self {
        Self {
            kind,
            hnsw: HnswParams::default(),
            vamana: VamanaParams::default(),
            quantize: Quantize::None,
            layout: Layout::Insertion,
            rerank: 4,
            nlist: 0,
            pq_m: 0,
            nbits: 8,
            bits: 0,
            tables: 0,
            key_bits: 16,
            build_memory: 0,
            block_sectors: 0,
        }
    }

    /// Refuses combinations no index kind builds, before any data is read.
    pub fn check(&self) -> Result<(), SpecError> {
        use IndexKind as K;
        use Quantize as Q;
        let fits = match self.kind {
            K::Flat => matches!(self.quantize, Q::None | Q::F16 | Q::Pq | Q::Binary),
            K::Hnsw | K::Vamana => matches!(self.quantize, Q::None | Q::Sq8 | Q::F16 | Q::Sq8F16),
            K::IvfPq => matches!(self.quantize, Q::None | Q::Pq | Q::F16),
            // The nodes on the SSD hold f32 or binary16 vectors; PQ codes steer regardless.
            K::Disk => matches!(self.quantize, Q::None | Q::F16 | Q::Pq),
            K::Binary => matches!(self.quantize, Q::None | Q::Binary | Q::F16),
        };
        if !fits {
            return Err(SpecError::Unsupported { kind: self.kind.name(), quantize: self.quantize.name() });
        }
        if self.layout != Layout::Insertion && self.kind != K::Hnsw {
            return Err(SpecError::BadValue {
                key: "layout".into(),
                value: self.layout.name().into(),
                expected: "insertion (only hnsw reorders its slots)",
            });
        }
        Ok(())
    }

    /// Sets one option by the name the benchmark harness and config files use (`index`, `M`,
    /// `ef_construction`/`efc`, `seed`, `R`, `L`, `alpha`, `quantize`, `layout`, `rerank`,
    /// `nlist`, `pq_m`, `nbits`, `bits`, `tables`, `key_bits`). Lower-case `m` means HNSW's links per node,
    /// except for IVF-PQ, where (as in FAISS) it is the PQ sub-quantizers: apply `index`
    /// first, or use [`IndexSpec::from_options`].
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SpecError> {
        let number = |expected: &'static str| -> Result<usize, SpecError> {
            value.parse().map_err(|_| SpecError::BadValue { key: key.into(), value: value.into(), expected })
        };
        match key {
            "index" => self.kind = IndexKind::from_name(value)?,
            "M" => self.hnsw.m = number("a whole number")?,
            "m" if self.kind == IndexKind::IvfPq => self.pq_m = number("a whole number")?,
            "m" => self.hnsw.m = number("a whole number")?,
            "ef_construction" | "efc" | "ef-construction" => {
                self.hnsw.ef_construction = number("a whole number")?
            }
            "seed" => {
                self.hnsw.seed = value.parse().map_err(|_| SpecError::BadValue {
                    key: key.into(),
                    value: value.into(),
                    expected: "a whole number",
                })?
            }
            "R" | "r" => self.vamana.r = number("a whole number")?,
            "L" | "l" => self.vamana.l = number("a whole number")?,
            "alpha" => {
                self.vamana.alpha = value.parse().map_err(|_| SpecError::BadValue {
                    key: key.into(),
                    value: value.into(),
                    expected: "a number",
                })?
            }
            "quantize" => self.quantize = Quantize::from_name(value)?,
            "layout" => self.layout = Layout::from_name(value)?,
            "rerank" => self.rerank = number("a whole number")?,
            "nlist" => self.nlist = number("a whole number")?,
            // The SSD index's PQ bytes per node are its sub-quantizers (8 bits each).
            "pq_m" | "pq-m" | "pq_bytes" | "pq-bytes" => self.pq_m = number("a whole number")?,

            "nbits" => {
                self.nbits = match value {
                    "4" => 4,
                    "8" => 8,
                    _ => {
                        return Err(SpecError::BadValue {
                            key: key.into(),
                            value: value.into(),
                            expected: "4 or 8",
                        })
                    }
                }
            }
            "bits" => self.bits = number("a whole number")?,
            "tables" => self.tables = number("a whole number")?,
            "key_bits" | "key-bits" => self.key_bits = number("a whole number")?,
            "block_sectors" | "block-sectors" => {
                self.block_sectors = number("a whole number")?.min(u32::MAX as usize) as u32
            }
            "build_memory" | "build-memory" => {
                let gb: f64 =
                    value.parse().ok().filter(|g: &f64| g.is_finite() && *g >= 0.0).ok_or_else(|| {
                        SpecError::BadValue {
                            key: key.into(),
                            value: value.into(),
                            expected: "GB, a number ≥ 0",
                        }
                    })?;
                self.build_memory = (gb * 1e9) as u64;
            }
            _ => return Err(SpecError::UnknownOption(key.into())),
        }
        Ok(())
    }

    /// A spec from `key=value` options in any order (`index` is applied first, so `m` means
    /// the right thing whatever the order).
    pub fn from_options<'a>(
        options: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, SpecError> {
        let options: Vec<(&str, &str)> = options.into_iter().collect();
        let mut spec = Self::default();
        for (k, v) in options.iter().filter(|(k, _)| *k == "index") {
            spec.set(k, v)?;
        }
        for (k, v) in options.iter().filter(|(k, _)| *k != "index") {
            spec.set(k, v)?;
        }
        Ok(spec)
    }

    /// Builds the index over row-major `data` of dimension `dim`. `progress(n)` is called as
    /// vectors are inserted (HNSW; from worker threads in a parallel build). With more than one
    /// rayon thread HNSW links in parallel; with one, the build is the reproducible sequential
    /// one (the same seed gives the same file natively and in the browser).
    pub fn build(
        &self,
        metric: Metric,
        dim: usize,
        data: &[f32],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<BuiltIndex, SpecError> {
        self.check()?;
        let n = data.len().checked_div(dim).unwrap_or(0);
        match (self.kind, self.quantize) {
            (IndexKind::Flat, Quantize::Binary) | (IndexKind::Binary, _) => {
                self.build_binary(metric, dim, data)
            }
            (IndexKind::Flat, Quantize::Pq) => self.build_ivfpq(metric, dim, data, 1),
            (IndexKind::IvfPq, _) => self.build_ivfpq(metric, dim, data, self.nlist),
            (IndexKind::Flat, q) => {
                let mut index = FlatIndex::new(dim, metric)?;
                if q == Quantize::F16 {
                    index.store_f16()?;
                }
                index.add(data)?;
                Ok(BuiltIndex::new(Index::Flat(index)))
            }
            (IndexKind::Hnsw, q) => {
                let mut index = HnswIndex::new(dim, metric, self.hnsw)?;
                // A binary16 index is binary16 from the start: the build walks its own rows
                // and never holds the f32 ones.
                if matches!(q, Quantize::F16 | Quantize::Sq8F16) {
                    index.store_f16()?;
                }
                index.reserve(n)?;
                if parallel_threads() > 1 {
                    add_parallel(&mut index, data, progress)?;
                } else {
                    const CHUNK: usize = 2048;
                    for (i, chunk) in data.chunks(dim.max(1) * CHUNK).enumerate() {
                        // An error names the row of `data`, not of the chunk.
                        index.add(chunk).map_err(|e| e.in_batch_at(i * CHUNK))?;
                        progress((chunk.len() / dim.max(1)) as u64);
                    }
                }
                if matches!(q, Quantize::Sq8 | Quantize::Sq8F16) {
                    index.quantize_sq8(self.rerank)?;
                }
                let ids = match self.layout {
                    Layout::Graph => {
                        let rows = index.reorder_for_locality();
                        IdMap::from_ids(&rows, |s| !index.is_deleted(s))?
                    }
                    Layout::Insertion => IdMap::identity(n as u32),
                };
                Ok(BuiltIndex { ids, ..BuiltIndex::new(Index::Hnsw(index)) })
            }
            (IndexKind::Disk, _) => Err(SpecError::Index(neardb_core::Error::InvalidParameter {
                name: "index",
                reason: "an SSD index is written straight to its file: use IndexSpec::build_disk",
            })),
            (IndexKind::Vamana, q) => {
                let params = VamanaParams { seed: self.hnsw.seed, ..self.vamana };
                let mut index = VamanaIndex::new(dim, metric, params)?;
                if matches!(q, Quantize::F16 | Quantize::Sq8F16) {
                    index.store_f16()?;
                }
                build_vamana(&mut index, data)?;
                progress(n as u64);
                if matches!(q, Quantize::Sq8 | Quantize::Sq8F16) {
                    index.quantize_sq8(self.rerank)?;
                }
                Ok(BuiltIndex::new(Index::Vamana(index)))
            }
        }
    }

    /// Builds an SSD index (kind `disk`) over `data` straight into `path`: the Vamana graph
    /// (R, L, α; in parallel with more than one rayon thread) in memory, then its nodes, in
    /// `f32` or (`quantize f16`) binary16, and PQ codes of `pq_m` bytes (0: 32, or the largest
    /// power of two below it dividing the dimension) written out.
    #[cfg(unix)]
    pub fn build_disk(
        &self,
        metric: Metric,
        dim: usize,
        data: &[f32],
        path: &Path,
    ) -> Result<crate::disk::DiskWriteReport, SpecError> {
        if self.kind != IndexKind::Disk {
            return Err(SpecError::Index(neardb_core::Error::InvalidParameter {
                name: "index",
                reason: "build_disk builds the SSD index (index=disk)",
            }));
        }
        self.check()?;
        let params = VamanaParams { seed: self.hnsw.seed, ..self.vamana };
        let mut index = VamanaIndex::new(dim, metric, params)?;
        build_vamana(&mut index, data)?;
        Ok(crate::disk::write_disk_index(path, &index, None, self.disk_write_params(dim))?)
    }

    /// Builds an SSD index (kind `disk`) over the vector file `base` into `output`, holding at
    /// most `build_memory` bytes beyond the fixed `disk::FIXED_BUILD_BYTES` (0: no limit):
    /// past it the rows are sharded, each shard's graph built in memory, and the shard graphs
    /// merged on disk. The base is streamed, never held whole, when sharded.
    #[cfg(unix)]
    pub fn build_disk_from_file(
        &self,
        metric: Metric,
        base: &Path,
        output: &Path,
    ) -> Result<crate::disk::BudgetedReport, SpecError> {
        if self.kind != IndexKind::Disk {
            return Err(SpecError::Index(neardb_core::Error::InvalidParameter {
                name: "index",
                reason: "build_disk_from_file builds the SSD index (index=disk)",
            }));
        }
        self.check()?;
        let dim = crate::io::probe(base).map_err(crate::disk::DiskError::from)?.dim;
        let plan = crate::disk::BudgetedBuild {
            metric,
            vamana: VamanaParams { seed: self.hnsw.seed, ..self.vamana },
            write: self.disk_write_params(dim),
            memory_bytes: self.build_memory,
        };
        Ok(crate::disk::build_disk_index_from_file(base, output, &plan, build_vamana_owned)?)
    }

    /// The SSD file's PQ bytes (`pq_m`; 0: 32, or the largest power of two below it dividing
    /// the dimension), vector form and placement.
    #[cfg(unix)]
    fn disk_write_params(&self, dim: usize) -> crate::disk::DiskWriteParams {
        let pq_bytes = match self.pq_m {
            0 => [32, 16, 8, 4, 2, 1].into_iter().find(|b| dim.is_multiple_of(*b)).unwrap_or(1),
            m => m,
        };
        crate::disk::DiskWriteParams {
            pq_bytes,
            f16: self.quantize == Quantize::F16,
            seed: self.hnsw.seed,
            placement: true,
            block_sectors: (self.block_sectors > 0).then_some(self.block_sectors),
        }
    }

    fn build_ivfpq(
        &self,
        metric: Metric,
        dim: usize,
        data: &[f32],
        nlist: usize,
    ) -> Result<BuiltIndex, SpecError> {
        let n = data.len().checked_div(dim).unwrap_or(0);
        let auto = IvfPqParams::auto(n, dim);
        let params = IvfPqParams {
            nlist: if nlist > 0 { nlist } else { auto.nlist },
            pq_m: if self.pq_m > 0 { self.pq_m } else { auto.pq_m },
            nbits: self.nbits,
            seed: self.hnsw.seed,
            keep_vectors: self.rerank > 0,
            ..IvfPqParams::default()
        };
        let mut index = IvfPqIndex::build(dim, metric, params, data)?;
        if self.quantize == Quantize::F16 {
            index.store_f16()?;
        }
        Ok(BuiltIndex::new(Index::IvfPq(index)))
    }

    fn build_binary(&self, metric: Metric, dim: usize, data: &[f32]) -> Result<BuiltIndex, SpecError> {
        let base =
            if self.bits == 0 { BinaryParams::sign(dim) } else { BinaryParams::hyperplanes(self.bits) };
        let params = if self.tables > 0 { base.with_lsh(self.tables, self.key_bits) } else { base };
        let mut index = BinaryIndex::new(dim, metric, params.with_seed(self.hnsw.seed))?;
        if self.quantize == Quantize::F16 {
            index.store_f16()?;
        }
        index.train(data)?;
        index.add(data)?;
        Ok(BuiltIndex { keep_vectors: self.rerank > 0, ..BuiltIndex::new(Index::Binary(index)) })
    }
}

#[cfg(feature = "parallel")]
fn parallel_threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(not(feature = "parallel"))]
fn parallel_threads() -> usize {
    1
}

#[cfg(feature = "parallel")]
fn add_parallel(
    index: &mut HnswIndex,
    data: &[f32],
    progress: &(dyn Fn(u64) + Sync),
) -> neardb_core::Result<()> {
    index.add_parallel_with(data, progress).map(drop)
}

#[cfg(not(feature = "parallel"))]
fn add_parallel(index: &mut HnswIndex, data: &[f32], _: &(dyn Fn(u64) + Sync)) -> neardb_core::Result<()> {
    index.add(data).map(drop)
}

/// Builds on every rayon thread when there is more than one, else the seeded sequential build.
#[cfg(feature = "parallel")]
fn build_vamana(index: &mut VamanaIndex, data: &[f32]) -> neardb_core::Result<()> {
    if parallel_threads() > 1 {
        index.build_parallel(data)
    } else {
        index.build(data)
    }
}

#[cfg(not(feature = "parallel"))]
fn build_vamana(index: &mut VamanaIndex, data: &[f32]) -> neardb_core::Result<()> {
    index.build(data)
}

/// [`build_vamana`] over rows handed over (one copy fewer at the build's peak).
#[cfg(feature = "parallel")]
fn build_vamana_owned(index: &mut VamanaIndex, data: Vec<f32>) -> neardb_core::Result<()> {
    if parallel_threads() > 1 {
        index.build_parallel_owned(data)
    } else {
        index.build_owned(data)
    }
}

#[cfg(not(feature = "parallel"))]
fn build_vamana_owned(index: &mut VamanaIndex, data: Vec<f32>) -> neardb_core::Result<()> {
    index.build_owned(data)
}

/// A freshly built index of any kind, ready to save.
pub struct BuiltIndex {
    /// The index.
    pub index: Index<InMemory>,
    /// The row number of each slot: the identity unless HNSW's slots were reordered, and then
    /// written as the file's `ids` section.
    pub ids: IdMap,
    /// Whether the file keeps the vectors (a binary-code index may be saved without them).
    pub keep_vectors: bool,
}

impl BuiltIndex {
    /// `index` with slots as row numbers, saved with its vectors.
    pub fn new(index: Index<InMemory>) -> Self {
        let slots = index.len() as u32;
        Self { index, ids: IdMap::identity(slots), keep_vectors: true }
    }

    /// Writes the index file (see [`crate::save`]); returns its length.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<u64, FileError> {
        save(self, path)
    }

    /// The kernels searches of this index run on.
    pub fn isa(&self) -> &'static str {
        match &self.index {
            Index::Flat(i) => i.kernels().isa().name(),
            _ => Kernels::best().isa().name(),
        }
    }
}

impl crate::Savable for BuiltIndex {
    fn write_file(&self, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<u64> {
        let ids = &self.ids;
        match &self.index {
            Index::Flat(i) => i.write_with_ids(ids, sink),
            Index::Hnsw(i) => i.write_with_ids(ids, sink),
            Index::IvfPq(i) => i.write_with_ids(ids, sink),
            Index::Binary(i) if self.keep_vectors => i.write_with_ids(ids, sink),
            Index::Binary(i) => i.write_without_vectors(sink),
            Index::Vamana(i) => i.write_with_ids(ids, sink),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_in_any_order() {
        let s = IndexSpec::from_options([("M", "12"), ("index", "hnsw"), ("ef_construction", "80")]).unwrap();
        assert_eq!((s.kind, s.hnsw.m, s.hnsw.ef_construction), (IndexKind::Hnsw, 12, 80));
        // FAISS's lower-case m is PQ's sub-quantizers for IVF-PQ, whatever the order.
        let s = IndexSpec::from_options([("m", "32"), ("index", "ivfpq"), ("nlist", "100")]).unwrap();
        assert_eq!((s.kind, s.pq_m, s.nlist, s.hnsw.m), (IndexKind::IvfPq, 32, 100, HnswParams::default().m));
        let s = IndexSpec::from_options([("quantize", "sq8+f16"), ("index", "hnsw"), ("layout", "graph")])
            .unwrap();
        assert_eq!((s.quantize, s.layout), (Quantize::Sq8F16, Layout::Graph));
        // The harness's spelling of Vamana's options.
        let s = IndexSpec::from_options([("R", "24"), ("index", "vamana"), ("L", "80"), ("alpha", "1.3")])
            .unwrap();
        assert_eq!((s.kind, s.vamana.r, s.vamana.l, s.vamana.alpha), (IndexKind::Vamana, 24, 80, 1.3));
    }

    #[test]
    fn bad_options_are_named() {
        let err = |o: &[(&str, &str)]| IndexSpec::from_options(o.iter().copied()).unwrap_err().to_string();
        assert!(err(&[("M", "x")]).contains("M=x"));
        assert!(err(&[("bogus", "1")]).contains("bogus"));
        assert!(err(&[("nbits", "300")]).contains("4 or 8"));
        let e = err(&[("index", "annoy")]);
        assert!(e.contains("annoy") && e.contains("flat, hnsw, ivfpq, binary, vamana"), "{e}");
        assert!(err(&[("index", "vamana"), ("alpha", "x")]).contains("alpha=x"));
        assert!(err(&[("quantize", "pq:16")]).contains("quantization"));
    }

    #[test]
    fn unsupported_combinations_fail_before_building() {
        let mut s = IndexSpec::new(IndexKind::Flat);
        s.quantize = Quantize::Sq8;
        assert!(matches!(s.check(), Err(SpecError::Unsupported { kind: "flat", quantize: "sq8" })));
        let mut s = IndexSpec::new(IndexKind::IvfPq);
        s.layout = Layout::Graph;
        assert!(s.check().is_err());
        let err = s.build(Metric::L2, 2, &[0.0; 4], &|_| {});
        assert!(err.is_err());
    }

    #[test]
    fn every_kind_builds_and_answers() {
        use neardb_core::{SearchParams, VectorSearch};
        let dim = 8;
        let data: Vec<f32> = (0..400 * dim).map(|i| ((i * 7919) % 101) as f32 / 101.0).collect();
        for &kind in IndexKind::ALL {
            let mut spec = IndexSpec::new(kind);
            spec.nlist = 4;
            spec.pq_m = 4;
            if kind == IndexKind::Disk {
                // The SSD index is written straight to its file and searched from it.
                assert!(spec.build(Metric::L2, dim, &data, &|_| {}).is_err());
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("spec.disk");
                spec.build_disk(Metric::L2, dim, &data, &path).unwrap();
                let disk =
                    crate::disk::DiskIndex::open(&path, crate::disk::DiskOpenOptions::default()).unwrap();
                let (hits, _) =
                    disk.search(&data[..dim], 1, crate::disk::DiskSearchParams::default(), None).unwrap();
                assert_eq!(hits[0].distance, 0.0, "disk: the first row finds itself");
                continue;
            }
            let built = spec.build(Metric::L2, dim, &data, &|_| {}).unwrap();
            let hits = built
                .index
                .search(&data[..dim], 1, &SearchParams::new().with_rerank_factor(8), None)
                .unwrap();
            assert_eq!(hits[0].distance, 0.0, "{kind}: the first row finds itself");
        }
    }

    /// Every kind, built in memory, written and opened in place as the same kind of the one
    /// list, answers every query identically (ids and distance bits), in single and batch
    /// search.
    #[test]
    fn every_kind_answers_the_same_built_and_opened() {
        use crate::AnyIndex;
        use neardb_core::format::{AlignedBytes, OpenOptions};
        use neardb_core::{SearchParams, VectorSearch};
        let dim = 12;
        let data: Vec<f32> = (0..600 * dim).map(|i| ((i * 7919 + 13) % 211) as f32 / 211.0).collect();
        let queries: Vec<f32> = (0..20 * dim).map(|i| ((i * 104_729 + 7) % 173) as f32 / 173.0).collect();
        // The kinds of the in-memory format (the SSD index has its own file: tests/disk.rs).
        for &kind in IndexKind::ALL.iter().filter(|&&k| k != IndexKind::Disk) {
            let mut spec = IndexSpec::new(kind);
            spec.nlist = 6;
            spec.pq_m = 4;
            spec.vamana.r = 12;
            spec.vamana.l = 32;
            let built = spec.build(Metric::L2, dim, &data, &|_| {}).unwrap();
            let mut bytes = Vec::new();
            crate::Savable::write_file(&built, &mut |b| {
                bytes.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
            let opened =
                AnyIndex::from_bytes(AlignedBytes::copy_from(&bytes), OpenOptions::default()).unwrap();
            assert_eq!(opened.info().kind, kind, "{kind}: the file's kind");
            assert_eq!((opened.len(), opened.dim()), (built.index.len(), dim));
            let p = SearchParams::new().with_ef(24).with_nprobe(3).with_rerank_factor(4);
            let bits = |h: &[neardb_core::Neighbor]| {
                h.iter().map(|n| (n.id, n.distance.to_bits())).collect::<Vec<_>>()
            };
            for q in queries.chunks_exact(dim) {
                let a = built.index.search(q, 7, &p, None).unwrap();
                let b = opened.search(q, 7, &p, None).unwrap();
                assert_eq!(bits(&a), bits(&b), "{kind}");
            }
            let batch_a = built.index.search_batch(&queries, 7, &p, None).unwrap();
            let batch_b = opened.search_batch(&queries, 7, &p, None).unwrap();
            for (a, b) in batch_a.iter().zip(&batch_b) {
                assert_eq!(bits(a), bits(b), "{kind} (batch)");
            }
        }
    }
}
