//! What several integration tests share: rewriting the sections of a valid index file, as a
//! hostile or damaged file would have them (checksums recomputed, so only the validation of
//! the content can refuse it).

use neardb_core::format::{
    write_index, AlignedBytes, FileInfo, FormatError, OpenOptions, SectionKind, SectionRef,
};
use neardb_core::{Error, FlatIndex, HnswView, SearchParams, VectorSearch};

/// `bytes` with every section passed through `edit` (which returns `false` to drop it) and
/// `extra` sections appended, written out again as a file.
#[allow(dead_code)] // not every test file that includes this module forges files
pub fn rewrite(
    bytes: &[u8],
    extra: &[(SectionKind, Vec<u8>)],
    mut edit: impl FnMut(SectionKind, &mut Vec<u8>) -> bool,
) -> AlignedBytes {
    let buf = AlignedBytes::copy_from(bytes);
    let info = FileInfo::parse(buf.as_slice(), OpenOptions::default()).unwrap();
    let mut sections = Vec::new();
    for s in &info.sections {
        let mut b = info.section(buf.as_slice(), s.kind).unwrap().to_vec();
        if edit(s.kind, &mut b) {
            sections.push((s.kind, b));
        }
    }
    sections.extend(extra.iter().cloned());
    let refs: Vec<SectionRef> = sections.iter().map(|(k, b)| SectionRef { kind: *k, bytes: b }).collect();
    let mut out = Vec::new();
    write_index(info.kind, info.metric, info.dim, info.count, &refs, &mut |x: &[u8]| -> Result<(), ()> {
        out.extend_from_slice(x);
        Ok(())
    })
    .unwrap();
    AlignedBytes::copy_from(&out)
}

/// The format error an HNSW file is refused with (panics if it opens or fails otherwise).
#[allow(dead_code)] // not every test file that includes this module opens HNSW files
pub fn hnsw_open_error(b: &AlignedBytes) -> FormatError {
    match HnswView::open(b.as_slice()) {
        Err(Error::Format(e)) => e,
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("a forged file opened"),
    }
}

/// Mean recall@10 of `index` against exact search by `flat` over `dim`-wide `queries`; every
/// answer must be full and sorted.
#[allow(dead_code)] // not every test file that includes this module measures recall this way
pub fn recall_at_10(
    index: &dyn VectorSearch,
    flat: &FlatIndex,
    queries: &[f32],
    dim: usize,
    p: &SearchParams,
) -> f64 {
    let mut hits = 0;
    for q in queries.chunks_exact(dim) {
        let truth: Vec<u32> = flat.search(q, 10, p, None).unwrap().iter().map(|n| n.id).collect();
        let got = index.search(q, 10, p, None).unwrap();
        assert_eq!(got.len(), 10);
        assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance));
        hits += got.iter().filter(|n| truth.contains(&n.id)).count();
    }
    hits as f64 / (queries.len() / dim * 10) as f64
}

/// A Gaussian mixture: `clusters` centres drawn with spread `scale`, each row a centre plus unit
/// noise — clustered like real embeddings, so recall thresholds mean something.
#[allow(dead_code)] // not every test file that includes this module draws mixtures
pub fn mixture(seed: u64, n: usize, dim: usize, clusters: usize, scale: f32) -> Vec<f32> {
    let mut rng = neardb_core::rng::Rng::new(seed);
    let centers: Vec<f32> = (0..clusters * dim).map(|_| rng.normal() as f32 * scale).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.below(clusters as u64) as usize;
        out.extend((0..dim).map(|j| centers[c * dim + j] + rng.normal() as f32));
    }
    out
}
