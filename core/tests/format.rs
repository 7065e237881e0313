//! The file format against hostile bytes: every lie a file can tell gets its own error, and a
//! valid file round-trips byte for byte.

use neardb_core::format::{
    write_index, AlignedBytes, FileInfo, FormatError, IndexKind, OpenOptions, Region, SectionKind,
    SectionRef, FORMAT_VERSION, HEADER_LEN, SECTION_ENTRY_LEN,
};
use neardb_core::{Error, FlatIndex, FlatView, Metric, SearchParams, VectorSearch};

fn sample_index() -> FlatIndex {
    let mut idx = FlatIndex::new(5, Metric::L2).unwrap();
    let data: Vec<f32> = (0..5 * 9).map(|i| (i as f32 * 0.37).sin()).collect();
    idx.add(&data).unwrap();
    idx
}

fn aligned(bytes: &[u8]) -> AlignedBytes {
    AlignedBytes::copy_from(bytes)
}

fn parse(bytes: &[u8]) -> Result<FileInfo, FormatError> {
    FileInfo::parse(aligned(bytes).as_slice(), OpenOptions::default())
}

fn open_flat(bytes: &[u8]) -> Result<FlatView<AlignedBytes>, Error> {
    FlatView::open(aligned(bytes))
}

/// Rewrites the header checksum so a test can change one field and see that field's error.
fn reseal(bytes: &mut [u8]) {
    let sections = u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as usize;
    let table_end = (HEADER_LEN + SECTION_ENTRY_LEN * sections).min(bytes.len());
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..60]);
    h.update(&bytes[HEADER_LEN..table_end]);
    let crc = h.finalize();
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
}

fn entry_at(i: usize) -> usize {
    HEADER_LEN + i * SECTION_ENTRY_LEN
}

fn two_section_file() -> Vec<u8> {
    let a = [7u8; 100];
    let b = [9u8; 40];
    let mut out = Vec::new();
    write_index(
        IndexKind::Hnsw,
        Metric::L2,
        4,
        0,
        &[
            SectionRef { kind: SectionKind::PARAMS, bytes: &a },
            SectionRef { kind: SectionKind::VECTORS, bytes: &b },
        ],
        &mut |x: &[u8]| -> Result<(), ()> {
            out.extend_from_slice(x);
            Ok(())
        },
    )
    .unwrap();
    out
}

#[test]
fn layout_is_as_documented() {
    let idx = sample_index();
    let bytes = idx.to_bytes();
    assert_eq!(&bytes[0..4], b"NRDB");
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), FORMAT_VERSION);
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), IndexKind::Flat.code());
    assert_eq!(bytes[10], Metric::L2.code());
    assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), 5);
    assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 9);
    assert_eq!(u64::from_le_bytes(bytes[32..40].try_into().unwrap()), bytes.len() as u64);
    let info = parse(&bytes).unwrap();
    assert_eq!(info.sections.len(), 1);
    let v = info.sections[0];
    assert_eq!(v.offset % 64, 0);
    assert_eq!(v.offset, 128, "first section follows the 96-byte header+table, aligned up");
    assert_eq!(v.len, 9 * 5 * 4);
    let stored: Vec<f32> =
        bytes[128..128 + 180].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(stored, idx.rows().f32().expect("f32 rows"));
}

#[test]
fn flat_round_trip_is_byte_exact_and_searches_identically() {
    let idx = sample_index();
    let bytes = idx.to_bytes();
    let view = open_flat(&bytes).unwrap();
    assert_eq!(view.rows().f32().expect("f32 rows"), idx.rows().f32().expect("f32 rows"));
    let again = FlatIndex::from_bytes(&bytes).unwrap();
    assert_eq!(again.to_bytes(), bytes);
    let q = [0.1, -0.2, 0.3, 0.0, 0.5];
    let p = SearchParams::new();
    assert_eq!(view.search(&q, 4, &p, None).unwrap(), idx.search(&q, 4, &p, None).unwrap());
    // Opening from an unaligned slice copies once and still works.
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    assert_eq!(FlatIndex::from_bytes(&shifted[1..]).unwrap().to_bytes(), bytes);
}

#[test]
fn truncation_at_every_boundary_is_reported() {
    let bytes = sample_index().to_bytes();
    let info = parse(&bytes).unwrap();
    let s = info.sections[0];
    let mut cuts = vec![0, 3, 4, 32, 63, 64, 80, 95, 96, 127];
    cuts.extend([s.offset as usize, s.offset as usize + 1, (s.offset + s.len) as usize - 1]);
    for cut in cuts {
        let err = parse(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, FormatError::Truncated { available, .. } if available == cut as u64),
            "cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn trailing_bytes_are_reported() {
    let mut bytes = sample_index().to_bytes();
    bytes.extend_from_slice(&[0; 3]);
    assert!(matches!(parse(&bytes), Err(FormatError::TrailingBytes { .. })));
}

#[test]
fn bad_magic_is_reported() {
    let mut bytes = sample_index().to_bytes();
    bytes[0] = b'X';
    assert_eq!(parse(&bytes).unwrap_err(), FormatError::BadMagic { found: *b"XRDB" });
    assert!(matches!(parse(b"GIF89a"), Err(FormatError::BadMagic { .. })));
}

#[test]
fn future_and_zero_versions_are_refused() {
    let mut bytes = sample_index().to_bytes();
    bytes[4..6].copy_from_slice(&2u16.to_le_bytes());
    reseal(&mut bytes);
    assert_eq!(parse(&bytes).unwrap_err(), FormatError::UnsupportedVersion { found: 2, newest: 1 });
    let msg = parse(&bytes).unwrap_err().to_string();
    assert!(msg.contains("newer"), "{msg}");
    bytes[4..6].copy_from_slice(&0u16.to_le_bytes());
    reseal(&mut bytes);
    assert!(matches!(parse(&bytes), Err(FormatError::BadHeader { field: "version", .. })));
}

#[test]
fn corrupted_header_fails_its_checksum() {
    let mut bytes = sample_index().to_bytes();
    bytes[13] ^= 1; // dim
    assert!(matches!(parse(&bytes), Err(FormatError::HeaderChecksum { .. })));
    let mut bytes = sample_index().to_bytes();
    bytes[entry_at(0) + 16] ^= 4; // section length in the table
    assert!(matches!(parse(&bytes), Err(FormatError::HeaderChecksum { .. })));
}

#[test]
fn corrupted_section_fails_its_checksum_unless_verification_is_off() {
    let mut bytes = sample_index().to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    assert!(matches!(parse(&bytes), Err(FormatError::SectionChecksum { kind: SectionKind::VECTORS, .. })));
    let buf = aligned(&bytes);
    assert!(FileInfo::parse(buf.as_slice(), OpenOptions { verify_checksums: false }).is_ok());
}

#[test]
fn unknown_kind_metric_and_dimension_are_rejected() {
    let base = sample_index().to_bytes();
    let mut b = base.clone();
    b[8..10].copy_from_slice(&99u16.to_le_bytes());
    reseal(&mut b);
    assert_eq!(parse(&b).unwrap_err(), FormatError::UnknownIndexKind { code: 99 });
    let mut b = base.clone();
    b[10] = 0;
    reseal(&mut b);
    assert_eq!(parse(&b).unwrap_err(), FormatError::UnknownMetric { code: 0 });
    let mut b = base.clone();
    b[12..16].copy_from_slice(&0u32.to_le_bytes());
    reseal(&mut b);
    assert_eq!(parse(&b).unwrap_err(), FormatError::InvalidDimension { dim: 0 });
    let mut b = base;
    b[40] = 1;
    reseal(&mut b);
    assert!(matches!(parse(&b), Err(FormatError::BadHeader { field: "reserved", .. })));
}

#[test]
fn misaligned_section_is_rejected() {
    let mut b = sample_index().to_bytes();
    let at = entry_at(0) + 8;
    b[at..at + 8].copy_from_slice(&100u64.to_le_bytes());
    reseal(&mut b);
    assert_eq!(
        parse(&b).unwrap_err(),
        FormatError::MisalignedSection { kind: SectionKind::VECTORS, offset: 100 }
    );
}

#[test]
fn section_past_the_end_is_rejected() {
    let mut b = sample_index().to_bytes();
    let at = entry_at(0) + 16;
    b[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(parse(&b), Err(FormatError::SectionOutOfBounds { .. })));
}

#[test]
fn overlapping_sections_are_rejected() {
    let mut b = two_section_file();
    assert!(parse(&b).is_ok());
    // Move the second section onto the first.
    let first_offset = u64::from_le_bytes(b[entry_at(0) + 8..entry_at(0) + 16].try_into().unwrap());
    let at = entry_at(1) + 8;
    b[at..at + 8].copy_from_slice(&(first_offset + 64).to_le_bytes());
    reseal(&mut b);
    assert_eq!(
        parse(&b).unwrap_err(),
        FormatError::OverlappingSections {
            first: Region::Section(SectionKind::PARAMS),
            second: SectionKind::VECTORS
        }
    );
    // A section inside the header/table.
    let mut b = two_section_file();
    b[at..at + 8].copy_from_slice(&64u64.to_le_bytes());
    reseal(&mut b);
    assert_eq!(
        parse(&b).unwrap_err(),
        FormatError::OverlappingSections { first: Region::Header, second: SectionKind::VECTORS }
    );
}

#[test]
fn duplicate_unknown_and_too_many_sections_are_rejected() {
    let mut b = two_section_file();
    b[entry_at(1)..entry_at(1) + 4].copy_from_slice(&SectionKind::PARAMS.0.to_le_bytes());
    reseal(&mut b);
    assert_eq!(parse(&b).unwrap_err(), FormatError::DuplicateSection { kind: SectionKind::PARAMS });
    let mut b = two_section_file();
    b[entry_at(1)..entry_at(1) + 4].copy_from_slice(&777u32.to_le_bytes());
    reseal(&mut b);
    assert_eq!(parse(&b).unwrap_err(), FormatError::UnknownSection { kind: 777 });
    let mut b = two_section_file();
    b[24..28].copy_from_slice(&1000u32.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(parse(&b), Err(FormatError::TooManySections { count: 1000, .. })));
}

#[test]
fn flat_specific_checks() {
    // Missing vectors section.
    let mut out = Vec::new();
    write_index(IndexKind::Flat, Metric::L2, 4, 0, &[], &mut |x: &[u8]| -> Result<(), ()> {
        out.extend_from_slice(x);
        Ok(())
    })
    .unwrap();
    assert!(matches!(
        open_flat(&out),
        Err(Error::Format(FormatError::MissingSection { kind: SectionKind::VECTORS }))
    ));
    // Count that disagrees with the section size.
    let mut b = sample_index().to_bytes();
    b[16..24].copy_from_slice(&10u64.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        open_flat(&b),
        Err(Error::Format(FormatError::SectionSize { expected: 200, actual: 180, .. }))
    ));
    // A count so large the section size overflows.
    b[16..24].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    reseal(&mut b);
    assert!(matches!(open_flat(&b), Err(Error::Format(FormatError::TooLarge { .. }))));
    // Another index kind.
    let mut b = sample_index().to_bytes();
    b[8..10].copy_from_slice(&IndexKind::Hnsw.code().to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        open_flat(&b),
        Err(Error::Format(FormatError::KindMismatch { expected: IndexKind::Flat, found: IndexKind::Hnsw }))
    ));
}

#[test]
fn non_finite_vectors_in_a_file_are_rejected() {
    let idx = sample_index();
    let mut data = idx.rows().f32().expect("f32 rows").to_vec();
    data[7] = f32::NAN;
    let mut out = Vec::new();
    write_index(
        IndexKind::Flat,
        Metric::L2,
        5,
        9,
        &[SectionRef { kind: SectionKind::VECTORS, bytes: bytemuck::cast_slice(&data) }],
        &mut |x: &[u8]| -> Result<(), ()> {
            out.extend_from_slice(x);
            Ok(())
        },
    )
    .unwrap();
    assert!(matches!(
        open_flat(&out),
        Err(Error::Format(FormatError::InvalidSection { kind: SectionKind::VECTORS, .. }))
    ));
}

#[test]
fn unaligned_buffer_is_reported_not_misread() {
    let bytes = sample_index().to_bytes();
    let mut shifted = AlignedBytes::zeroed(bytes.len() + 1);
    shifted.as_mut_slice()[1..].copy_from_slice(&bytes);
    assert_eq!(
        FileInfo::parse(&shifted.as_slice()[1..], OpenOptions::default()).unwrap_err(),
        FormatError::UnalignedBuffer { align: 8 }
    );
}

#[test]
fn random_corruption_never_panics() {
    let bytes = sample_index().to_bytes();
    let mut rng = neardb_core::rng::Rng::new(99);
    for _ in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(b.len() as u64) as usize;
            b[i] = rng.next_u64() as u8;
        }
        if rng.below(2) == 0 {
            reseal(&mut b);
        }
        let cut = if rng.below(4) == 0 { rng.below(b.len() as u64) as usize } else { b.len() };
        if let Ok(view) = open_flat(&b[..cut]) {
            // Whatever opened must search without panicking.
            let q = vec![0.5; view.dim()];
            let _ = view.search(&q, 3, &SearchParams::new(), None);
        }
    }
}
