//! Crafted index files with valid checksums that lie where the structure checks alone could not
//! see it (issue 15's findings), and inputs whose values would overflow a distance: each is
//! refused by name, where before it answered nonsense.

mod common;

use common::rewrite;
use neardb_core::format::{AlignedBytes, FileInfo, FormatError, OpenOptions, SectionKind, HEADER_LEN};
use neardb_core::{
    BinaryIndex, BinaryParams, BinaryView, Error, FlatIndex, FlatView, HnswIndex, HnswParams, HnswView,
    IdMap, IvfPqIndex, IvfPqParams, IvfPqView, Metric, SearchParams, VectorSearch, MAX_COMPONENT, NO_ID,
};

fn data(n: usize, dim: usize) -> Vec<f32> {
    (0..n * dim).map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5).collect()
}

fn format_error(r: Result<impl Sized, Error>) -> FormatError {
    match r {
        Err(Error::Format(e)) => e,
        Err(e) => panic!("expected a format error, got {e:?}"),
        Ok(_) => panic!("a crafted file opened"),
    }
}

fn u32_bytes(words: impl IntoIterator<Item = u32>) -> Vec<u8> {
    words.into_iter().flat_map(u32::to_le_bytes).collect()
}

fn hnsw_with_ids() -> Vec<u8> {
    let mut index = HnswIndex::new(8, Metric::L2, HnswParams { m: 8, ef_construction: 40, seed: 1 }).unwrap();
    index.add(&data(60, 8)).unwrap();
    let ids: Vec<u32> = (0..60).map(|i| 1000 + i).collect();
    let map = IdMap::from_ids(&ids, |_| true).unwrap();
    let mut out = Vec::new();
    index
        .write_with_ids(&map, &mut |b: &[u8]| -> Result<(), ()> {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
    out
}

#[test]
fn an_ids_section_must_give_every_live_slot_its_own_id() {
    let bytes = hnsw_with_ids();
    assert!(HnswView::open(AlignedBytes::copy_from(&bytes)).is_ok());
    for (what, id_of) in
        [("all reserved", (|_| NO_ID) as fn(u32) -> u32), ("all equal", |_| 7), ("one twice", |s| s.min(58))]
    {
        let forged = rewrite(&bytes, &[], |kind, b| {
            if kind == SectionKind::IDS {
                *b = u32_bytes((0..60).map(id_of));
            }
            true
        });
        let e = format_error(HnswView::open(forged));
        assert!(matches!(e, FormatError::InvalidSection { kind: SectionKind::IDS, .. }), "{what}: {e:?}");
    }
    // The same rule for every kind that can carry ids: a flat file given equal ids.
    let flat = FlatIndex::new(4, Metric::L2).and_then(|mut f| f.add(&data(5, 4)).map(|_| f)).unwrap();
    let forged = rewrite(&flat.to_bytes(), &[(SectionKind::IDS, u32_bytes([3; 5]))], |_, _| true);
    let e = format_error(FlatView::open(forged));
    assert!(matches!(e, FormatError::InvalidSection { kind: SectionKind::IDS, .. }), "{e:?}");
    let fine = rewrite(&flat.to_bytes(), &[(SectionKind::IDS, u32_bytes([9, 3, 5, 1, 2]))], |_, _| true);
    assert_eq!(FlatView::open(fine).unwrap().ids(), Some(&[9, 3, 5, 1, 2][..]));
}

#[test]
fn a_deleted_slot_may_keep_any_id_but_live_ones_may_not_share_it() {
    let mut index = HnswIndex::new(8, Metric::L2, HnswParams { m: 8, ef_construction: 40, seed: 1 }).unwrap();
    index.add(&data(60, 8)).unwrap();
    index.remove(5).unwrap();
    let ids: Vec<u32> = (0..60).map(|i| if i == 5 { NO_ID } else { 1000 + i }).collect();
    let map = IdMap::from_ids(&ids, |s| s != 5).unwrap();
    let mut bytes = Vec::new();
    index
        .write_with_ids(&map, &mut |b: &[u8]| -> Result<(), ()> {
            bytes.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
    assert!(HnswView::open(AlignedBytes::copy_from(&bytes)).is_ok(), "NO_ID on the deleted slot");
    let reuse = rewrite(&bytes, &[], |kind, b| {
        if kind == SectionKind::IDS {
            // Slot 5 is deleted: its entry may repeat a live id without making two answers.
            *b = u32_bytes((0..60).map(|i| if i == 5 { 1000 } else { 1000 + i }));
        }
        true
    });
    assert!(HnswView::open(reuse).is_ok());
}

/// A value whose square overflows `f32` at any dimension, and one just inside the range.
const HUGE: f32 = 3.0e38;

fn set_first_f32(kind: SectionKind, value: f32) -> impl FnMut(SectionKind, &mut Vec<u8>) -> bool {
    move |k, b| {
        if k == kind {
            b[..4].copy_from_slice(&value.to_le_bytes());
        }
        true
    }
}

#[test]
fn finite_but_huge_values_are_refused_in_files() {
    let flat = FlatIndex::new(4, Metric::L2).and_then(|mut f| f.add(&data(5, 4)).map(|_| f)).unwrap();
    let e = format_error(FlatView::open(rewrite(
        &flat.to_bytes(),
        &[],
        set_first_f32(SectionKind::VECTORS, HUGE),
    )));
    assert!(matches!(e, FormatError::InvalidSection { kind: SectionKind::VECTORS, .. }), "{e:?}");
    // At the bound itself the file opens, and every distance is finite.
    let edge =
        FlatView::open(rewrite(&flat.to_bytes(), &[], set_first_f32(SectionKind::VECTORS, -MAX_COMPONENT)))
            .unwrap();
    let hits = edge.search(&[MAX_COMPONENT; 4], 5, &SearchParams::new(), None).unwrap();
    assert!(hits.iter().all(|h| h.distance.is_finite()), "{hits:?}");

    let d = data(400, 8);
    let ivf =
        IvfPqIndex::build(8, Metric::L2, IvfPqParams { nlist: 4, pq_m: 4, ..IvfPqParams::default() }, &d)
            .unwrap();
    for kind in [SectionKind::COARSE_CENTROIDS, SectionKind::PQ_CODEBOOKS, SectionKind::VECTORS] {
        let e = format_error(IvfPqView::open(rewrite(&ivf.to_bytes(), &[], set_first_f32(kind, HUGE))));
        assert!(matches!(e, FormatError::InvalidSection { .. }), "{kind}: {e:?}");
    }

    let mut binary = BinaryIndex::new(8, Metric::L2, BinaryParams::hyperplanes(64)).unwrap();
    binary.train(&d).unwrap();
    binary.add(&d).unwrap();
    for kind in [SectionKind::BINARY_PLANES, SectionKind::VECTORS] {
        let e = format_error(BinaryView::open(rewrite(&binary.to_bytes(), &[], set_first_f32(kind, -HUGE))));
        assert!(matches!(e, FormatError::InvalidSection { .. }), "{kind}: {e:?}");
    }

    let mut sq = HnswIndex::new(8, Metric::L2, HnswParams { m: 8, ef_construction: 40, seed: 1 }).unwrap();
    sq.add(&d[..80 * 8]).unwrap();
    sq.quantize_sq8(4).unwrap();
    for kind in [SectionKind::SQ_RANGES, SectionKind::VECTORS] {
        assert!(HnswView::open(rewrite(&sq.to_bytes(), &[], set_first_f32(kind, HUGE))).is_err(), "{kind}");
    }
}

#[test]
fn finite_but_huge_values_are_refused_as_input() {
    let mut flat = FlatIndex::new(3, Metric::L2).unwrap();
    let e = flat.add(&[0.0, 1.0, 2.0, 0.0, HUGE, 1.0]).unwrap_err();
    assert_eq!(e, Error::VectorOutOfRange { vector: 1, component: 1, value: HUGE });
    flat.add(&[0.0, 1.0, 2.0]).unwrap();
    let e = flat.search(&[-HUGE, 0.0, 0.0], 1, &SearchParams::new(), None).unwrap_err();
    assert_eq!(e, Error::QueryOutOfRange { component: 0, value: -HUGE });
    // NaN and infinity keep their own, older errors.
    assert_eq!(
        flat.add(&[f32::NAN, 0.0, 0.0]).unwrap_err(),
        Error::NonFiniteVector { vector: 0, component: 0 }
    );
    let e = flat.search(&[0.0, f32::INFINITY, 0.0], 1, &SearchParams::new(), None).unwrap_err();
    assert_eq!(e, Error::NonFiniteQuery { component: 1 });
    // The largest values accepted give finite distances under every metric.
    for metric in Metric::ALL {
        let mut f = FlatIndex::new(3, metric).unwrap();
        f.add(&[MAX_COMPONENT, -MAX_COMPONENT, MAX_COMPONENT, 1.0, 2.0, 3.0]).unwrap();
        let hits = f
            .search(&[-MAX_COMPONENT, MAX_COMPONENT, -MAX_COMPONENT], 2, &SearchParams::new(), None)
            .unwrap();
        assert!(hits.iter().all(|h| h.distance.is_finite()), "{metric}: {hits:?}");
    }
}

fn flat_file() -> Vec<u8> {
    FlatIndex::new(4, Metric::L2).and_then(|mut f| f.add(&data(5, 4)).map(|_| f)).unwrap().to_bytes()
}

fn reseal(bytes: &mut [u8]) {
    let sections = u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as usize;
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..60]);
    h.update(&bytes[HEADER_LEN..HEADER_LEN + 32 * sections]);
    let crc = h.finalize();
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
}

fn parse(bytes: &[u8]) -> Result<FileInfo, FormatError> {
    FileInfo::parse(AlignedBytes::copy_from(bytes).as_slice(), OpenOptions::default())
}

#[test]
fn bytes_outside_every_section_are_refused() {
    let bytes = flat_file();
    assert!(parse(&bytes).is_ok());
    // Megabytes nobody checks, declared in the header's length and covered by its checksum.
    let mut carried = bytes.clone();
    carried.extend(std::iter::repeat_n(0xAB, 1 << 20));
    let len = carried.len() as u64;
    carried[32..40].copy_from_slice(&len.to_le_bytes());
    reseal(&mut carried);
    let e = parse(&carried).unwrap_err();
    assert_eq!(e, FormatError::UncoveredBytes { offset: bytes.len() as u64, len: 1 << 20 });
    // The padding between the table (64 + 32 bytes) and the first section (at 128) is zero.
    let mut padded = bytes.clone();
    padded[100] = 1;
    assert_eq!(parse(&padded).unwrap_err(), FormatError::NonZeroPadding { offset: 96 });
    // A section moved one alignment step later leaves a 64-byte hole.
    let mut holed = bytes.clone();
    let offset = u64::from_le_bytes(holed[HEADER_LEN + 8..HEADER_LEN + 16].try_into().unwrap());
    holed.splice(offset as usize..offset as usize, [0u8; 64]);
    holed[HEADER_LEN + 8..HEADER_LEN + 16].copy_from_slice(&(offset + 64).to_le_bytes());
    let len = holed.len() as u64;
    holed[32..40].copy_from_slice(&len.to_le_bytes());
    reseal(&mut holed);
    assert_eq!(parse(&holed).unwrap_err(), FormatError::UncoveredBytes { offset: 96, len: 96 });
}

#[test]
fn sections_an_index_kind_never_reads_are_refused() {
    let deleted = (SectionKind::DELETED, vec![0xFF; 8]);
    let forged = rewrite(&flat_file(), &[deleted], |_, _| true);
    let e = format_error(FlatView::open(forged));
    assert_eq!(
        e,
        FormatError::UnusedSection { kind: SectionKind::DELETED, index: neardb_core::IndexKind::Flat }
    );
    let lsh = (SectionKind::LSH_TABLES, vec![0; 64]);
    let e = format_error(HnswView::open(rewrite(&hnsw_with_ids(), &[lsh], |_, _| true)));
    assert!(matches!(e, FormatError::UnusedSection { kind: SectionKind::LSH_TABLES, .. }), "{e:?}");
}

/// That no buffer is sized by k is checked under a memory limit in `cli/tests/hostile.rs`
/// (an allocation here is lazy and would pass); this checks the answers.
#[test]
fn a_huge_k_returns_every_vector() {
    let d = data(50, 8);
    let mut hnsw = HnswIndex::new(8, Metric::L2, HnswParams::default()).unwrap();
    hnsw.add(&d).unwrap();
    let flat = FlatIndex::new(8, Metric::L2).and_then(|mut f| f.add(&d).map(|_| f)).unwrap();
    let k = 300_000_000;
    assert_eq!(hnsw.search(&d[..8], k, &SearchParams::new(), None).unwrap().len(), 50);
    assert_eq!(flat.search(&d[..8], k, &SearchParams::new(), None).unwrap().len(), 50);
    assert_eq!(flat.search_batch(&d[..16], k, None).unwrap().iter().map(Vec::len).sum::<usize>(), 100);
}

#[test]
fn ivfpq_search_scratch_is_known_before_searching() {
    let d = data(400, 16);
    let ivf =
        IvfPqIndex::build(16, Metric::L2, IvfPqParams { nlist: 4, pq_m: 16, ..IvfPqParams::default() }, &d)
            .unwrap();
    let view = IvfPqView::open(AlignedBytes::copy_from(&ivf.to_bytes())).unwrap();
    // Two m × 256 lookup tables dominate: 2 × 16 × 256 floats.
    let tables = 2 * 16 * 256 * 4;
    for index in [&ivf as &dyn VectorSearch, &view] {
        let bytes = index.search_scratch_bytes();
        assert!(bytes >= tables && bytes < tables + 64 * 1024, "{bytes}");
    }
    assert_eq!(FlatIndex::new(4, Metric::L2).unwrap().search_scratch_bytes(), 0);
}
