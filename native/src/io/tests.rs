//! Tests of the vector file module: byte-exact layouts, round trips, streaming, and one test
//! per error a file or a caller can provoke.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::*;

fn temp() -> TempDir {
    tempfile::tempdir().expect("create temp dir")
}

fn file(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    fs::write(&path, bytes).expect("write test file");
    path
}

/// A deterministic pseudo-random f32 sequence with varied signs and magnitudes, plus the
/// awkward values a byte-exact round trip must preserve.
fn sample_f32(n: usize) -> Vec<f32> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut values: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / 1024.0 - 8192.0
        })
        .collect();
    let special = [0.0, -0.0, f32::MIN_POSITIVE, f32::MAX, -f32::MAX, 1e-42, f32::EPSILON];
    for (slot, v) in values.iter_mut().zip(special) {
        *slot = v;
    }
    values
}

fn texmex_record(dim: i32, values: &[u8]) -> Vec<u8> {
    let mut out = dim.to_le_bytes().to_vec();
    out.extend_from_slice(values);
    out
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn fvecs_bytes(dim: usize, data: &[f32]) -> Vec<u8> {
    data.chunks(dim).flat_map(|v| texmex_record(dim as i32, &f32_bytes(v))).collect()
}

/// An `.npy` file with the header dict written verbatim (no padding unless `dict` has it).
fn npy_bytes(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[major, 0]);
    if major == 1 {
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f32_npy_dict(shape: &str) -> String {
    format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}\n")
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

// ---------------------------------------------------------------- format detection and probe

#[test]
fn format_from_extension_ignores_case() {
    let cases = [
        ("a.fvecs", VecFormat::Fvecs),
        ("dir.x/b.IVECS", VecFormat::Ivecs),
        ("c.BVecs", VecFormat::Bvecs),
        ("d.Npy", VecFormat::Npy),
    ];
    for (name, format) in cases {
        assert_eq!(VecFormat::from_path(Path::new(name)).ok(), Some(format), "{name}");
        assert_eq!(format.extension(), name.rsplit('.').next().unwrap().to_lowercase());
    }
}

#[test]
fn unknown_extension_is_rejected_everywhere() {
    let dir = temp();
    let path = file(&dir, "vectors.bin", &fvecs_bytes(2, &[1.0, 2.0]));
    for name in ["vectors.bin", "vectors", "fvecs", "vectors.fvecs.gz"] {
        assert!(matches!(VecFormat::from_path(Path::new(name)), Err(VecIoError::UnknownExtension { .. })));
    }
    assert!(matches!(probe(&path), Err(VecIoError::UnknownExtension { .. })));
    assert!(matches!(read_f32_vectors(&path), Err(VecIoError::UnknownExtension { .. })));
    assert!(matches!(read_ivecs(&path), Err(VecIoError::UnknownExtension { .. })));
    assert!(matches!(VecReader::open(&path), Err(VecIoError::UnknownExtension { .. })));
    assert!(matches!(write_f32_vectors(&path, &[1.0], 1), Err(VecIoError::UnknownExtension { .. })));
    assert!(matches!(FvecsWriter::create(&path, 1), Err(VecIoError::UnknownExtension { .. })));
}

#[test]
fn probe_reports_format_dim_and_count() {
    let dir = temp();
    let f = dir.path().join("a.fvecs");
    write_fvecs(&f, &sample_f32(5 * 3), 3).unwrap();
    let i = dir.path().join("a.ivecs");
    write_ivecs(&i, &[7; 4 * 100], 100).unwrap();
    let b = dir.path().join("a.bvecs");
    write_bvecs(&b, &[9; 128 * 11], 128).unwrap();
    let n = dir.path().join("a.npy");
    write_npy_f32(&n, &sample_f32(6 * 2), 2).unwrap();
    let expected = [
        (&f, VecFormat::Fvecs, 3, 5),
        (&i, VecFormat::Ivecs, 100, 4),
        (&b, VecFormat::Bvecs, 128, 11),
        (&n, VecFormat::Npy, 2, 6),
    ];
    for (path, format, dim, count) in expected {
        let info = probe(path).unwrap();
        assert_eq!(info, VecFileInfo { format, dim, count });
    }
}

// ---------------------------------------------------------------- byte-exact layouts

#[test]
fn fvecs_layout_is_byte_exact() {
    let dir = temp();
    let path = dir.path().join("t.fvecs");
    write_fvecs(&path, &[1.0, -2.5, 0.5, 3.0], 2).unwrap();
    let expected: Vec<u8> = [
        &[2, 0, 0, 0][..],
        &[0x00, 0x00, 0x80, 0x3f], // 1.0
        &[0x00, 0x00, 0x20, 0xc0], // -2.5
        &[2, 0, 0, 0],
        &[0x00, 0x00, 0x00, 0x3f], // 0.5
        &[0x00, 0x00, 0x40, 0x40], // 3.0
    ]
    .concat();
    assert_eq!(fs::read(&path).unwrap(), expected);
    assert_eq!(read_f32_vectors(&path).unwrap(), (vec![1.0, -2.5, 0.5, 3.0], 2));
}

#[test]
fn ivecs_layout_is_byte_exact() {
    let dir = temp();
    let path = dir.path().join("t.ivecs");
    write_ivecs(&path, &[1, -1, 258], 3).unwrap();
    let expected: Vec<u8> =
        [&[3, 0, 0, 0][..], &[1, 0, 0, 0], &[0xff, 0xff, 0xff, 0xff], &[2, 1, 0, 0]].concat();
    assert_eq!(fs::read(&path).unwrap(), expected);
    assert_eq!(read_ivecs(&path).unwrap(), (vec![1, -1, 258], 3));
}

#[test]
fn bvecs_layout_is_byte_exact() {
    let dir = temp();
    let path = dir.path().join("t.bvecs");
    write_bvecs(&path, &[0, 255, 7, 1, 2, 3], 3).unwrap();
    let expected = [3, 0, 0, 0, 0, 255, 7, 3, 0, 0, 0, 1, 2, 3];
    assert_eq!(fs::read(&path).unwrap(), expected);
    assert_eq!(read_f32_vectors(&path).unwrap(), (vec![0.0, 255.0, 7.0, 1.0, 2.0, 3.0], 3));
}

#[test]
fn npy_layout_is_byte_exact() {
    let dir = temp();
    let path = dir.path().join("t.npy");
    write_npy_f32(&path, &[1.0, -2.5, 0.5, 3.0, 0.0, 2.0], 3).unwrap();
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    // 10 bytes of preamble + dict + spaces + '\n' = 128.
    let mut expected = b"\x93NUMPY\x01\x00".to_vec();
    expected.extend_from_slice(&118u16.to_le_bytes());
    expected.extend_from_slice(dict.as_bytes());
    expected.resize(127, b' ');
    expected.push(b'\n');
    expected.extend_from_slice(&[
        0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0, 0x00, 0x00, 0x00, 0x3f, //
        0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40,
    ]);
    assert_eq!(fs::read(&path).unwrap(), expected);
    assert_eq!(read_f32_vectors(&path).unwrap(), (vec![1.0, -2.5, 0.5, 3.0, 0.0, 2.0], 3));
}

#[test]
fn npy_header_is_padded_to_64_bytes_and_ends_with_newline() {
    let dir = temp();
    for (rows, dim) in [(0, 1), (1, 1), (3, 7), (123_456_789, 1024), (1, MAX_FILE_DIM)] {
        let header = npy::encode_header("<f4", rows, dim);
        assert_eq!(header.len() % 64, 0, "({rows}, {dim})");
        assert_eq!(header.last(), Some(&b'\n'));
        assert_eq!(&header[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([header[8], header[9]]) as usize;
        assert_eq!(header_len + 10, header.len());
        let dict = std::str::from_utf8(&header[10..]).unwrap();
        assert!(dict
            .starts_with(&format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}")));
        assert!(dict.trim_end_matches('\n').ends_with(['}', ' ']));
    }
    // An empty (0, d) array is a valid .npy file and reads back as no vectors.
    let path = dir.path().join("empty.npy");
    write_npy_f32(&path, &[], 4).unwrap();
    assert_eq!(fs::read(&path).unwrap().len(), 128);
    assert_eq!(read_f32_vectors(&path).unwrap(), (vec![], 4));
    assert_eq!(probe(&path).unwrap().count, 0);
}

// ---------------------------------------------------------------- round trips

#[test]
fn fvecs_round_trip_preserves_every_bit() {
    let dir = temp();
    let path = dir.path().join("r.fvecs");
    let data = sample_f32(37 * 129);
    write_fvecs(&path, &data, 129).unwrap();
    assert_eq!(fs::read(&path).unwrap(), fvecs_bytes(129, &data));
    let (back, dim) = read_f32_vectors(&path).unwrap();
    assert_eq!(dim, 129);
    assert_eq!(bits(&back), bits(&data));
}

#[test]
fn npy_round_trip_preserves_every_bit() {
    let dir = temp();
    let path = dir.path().join("r.npy");
    let data = sample_f32(37 * 129);
    write_npy_f32(&path, &data, 129).unwrap();
    let (back, dim) = read_f32_vectors(&path).unwrap();
    assert_eq!(dim, 129);
    assert_eq!(bits(&back), bits(&data));
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes[128..], f32_bytes(&data));
}

#[test]
fn ivecs_round_trip() {
    let dir = temp();
    let path = dir.path().join("r.ivecs");
    let data: Vec<i32> = (0..1000).map(|i| i * 7919 - 3_000_000).chain([i32::MIN, i32::MAX]).collect();
    write_ivecs(&path, &data, 2).unwrap();
    assert_eq!(read_ivecs(&path).unwrap(), (data, 2));
}

#[test]
fn bvecs_round_trip() {
    let dir = temp();
    let path = dir.path().join("r.bvecs");
    let data: Vec<u8> = (0..=255u8).cycle().take(128 * 50).collect();
    write_bvecs(&path, &data, 128).unwrap();
    let (back, dim) = read_f32_vectors(&path).unwrap();
    assert_eq!(dim, 128);
    assert_eq!(back, data.iter().map(|&b| f32::from(b)).collect::<Vec<_>>());
}

#[test]
fn write_f32_vectors_follows_the_extension() {
    let dir = temp();
    let data = sample_f32(12);
    let f = dir.path().join("x.FVECS");
    let n = dir.path().join("x.npy");
    write_f32_vectors(&f, &data, 4).unwrap();
    write_f32_vectors(&n, &data, 4).unwrap();
    assert_eq!(fs::read(&f).unwrap(), fvecs_bytes(4, &data));
    assert_eq!(&fs::read(&n).unwrap()[..6], b"\x93NUMPY");
    assert_eq!(bits(&read_f32_vectors(&n).unwrap().0), bits(&data));
    for name in ["x.ivecs", "x.bvecs"] {
        assert!(matches!(
            write_f32_vectors(&dir.path().join(name), &data, 4),
            Err(VecIoError::WrongFormat { .. })
        ));
    }
}

#[test]
fn large_vectors_cross_batch_boundaries() {
    // Records bigger than the 1 MiB batch, and a batch that does not divide the count.
    let dir = temp();
    for dim in [300_000, 1000] {
        let path = dir.path().join(format!("big{dim}.fvecs"));
        let data = sample_f32(dim * 7);
        write_fvecs(&path, &data, dim).unwrap();
        let (back, got_dim) = read_f32_vectors(&path).unwrap();
        assert_eq!(got_dim, dim);
        assert_eq!(bits(&back), bits(&data));
    }
}

// ---------------------------------------------------------------- npy variants

#[test]
fn npy_v2_header_with_odd_whitespace_reads() {
    let dir = temp();
    let data = sample_f32(6);
    let dict = "  {  \"shape\" :(\t3 ,2 ) ,'fortran_order':False,\n 'descr' : '<f4'}  \t \n";
    let path = file(&dir, "v2.npy", &npy_bytes(2, dict, &f32_bytes(&data)));
    let (back, dim) = read_f32_vectors(&path).unwrap();
    assert_eq!(dim, 2);
    assert_eq!(bits(&back), bits(&data));
}

#[test]
fn npy_v3_and_python2_headers_read() {
    let dir = temp();
    let data = sample_f32(4);
    let v3 = npy_bytes(3, &f32_npy_dict("(2, 2,)"), &f32_bytes(&data));
    let path = file(&dir, "v3.npy", &v3);
    assert_eq!(bits(&read_f32_vectors(&path).unwrap().0), bits(&data));
    let py2 = "{'descr': u'<f4', 'fortran_order': False, 'shape': (2L, 2L)}";
    let path = file(&dir, "py2.npy", &npy_bytes(1, py2, &f32_bytes(&data)));
    assert_eq!(bits(&read_f32_vectors(&path).unwrap().0), bits(&data));
}

#[test]
fn npy_f64_converts_to_f32() {
    let dir = temp();
    let values = [1.5f64, -0.25, 1e10, std::f64::consts::PI, 1e-300, -7.0];
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
    let path = file(&dir, "f64.npy", &npy_bytes(1, dict, &bytes));
    let expected: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    assert_eq!(read_f32_vectors(&path).unwrap(), (expected, 2));
    assert_eq!(probe(&path).unwrap(), VecFileInfo { format: VecFormat::Npy, dim: 2, count: 3 });
}

#[test]
fn npy_u8_converts_to_f32() {
    let dir = temp();
    let dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }";
    let path = file(&dir, "u8.npy", &npy_bytes(1, dict, &[0, 1, 200, 255]));
    assert_eq!(read_f32_vectors(&path).unwrap(), (vec![0.0, 1.0, 200.0, 255.0], 2));
}

// ---------------------------------------------------------------- streaming

#[test]
fn streaming_matches_whole_file_reads() {
    let dir = temp();
    let data = sample_f32(53 * 24);
    let bytes: Vec<u8> = (0..53 * 24).map(|i| (i * 31 % 251) as u8).collect();
    let f = dir.path().join("s.fvecs");
    let n = dir.path().join("s.npy");
    let b = dir.path().join("s.bvecs");
    write_fvecs(&f, &data, 24).unwrap();
    write_npy_f32(&n, &data, 24).unwrap();
    write_bvecs(&b, &bytes, 24).unwrap();
    for path in [&f, &n, &b] {
        let (whole, dim) = read_f32_vectors(path).unwrap();
        for chunk in [1, 7, 53, 54, 1000, usize::MAX] {
            let mut reader = VecReader::open(path).unwrap();
            assert_eq!(reader.info(), probe(path).unwrap());
            assert_eq!(reader.remaining(), 53);
            let mut streamed = Vec::new();
            let mut buf = vec![99.0; 3];
            loop {
                let got = reader.read_chunk(chunk, &mut buf).unwrap();
                assert_eq!(buf.len(), got * dim, "buf holds exactly this chunk");
                if got == 0 {
                    break;
                }
                assert!(got <= chunk);
                streamed.extend_from_slice(&buf);
            }
            assert_eq!(bits(&streamed), bits(&whole), "{path:?} chunk {chunk}");
            assert_eq!(reader.read_chunk(chunk, &mut buf).unwrap(), 0);
            assert_eq!(reader.remaining(), 0);
        }
    }
}

#[test]
fn streaming_zero_max_reads_nothing() {
    let dir = temp();
    let path = dir.path().join("z.fvecs");
    write_fvecs(&path, &[1.0, 2.0], 1).unwrap();
    let mut reader = VecReader::open(&path).unwrap();
    let mut buf = vec![5.0];
    assert_eq!(reader.read_chunk(0, &mut buf).unwrap(), 0);
    assert!(buf.is_empty());
    assert_eq!(reader.read_chunk(5, &mut buf).unwrap(), 2);
    assert_eq!(buf, [1.0, 2.0]);
}

#[test]
fn limit_reads_the_first_vectors() {
    let dir = temp();
    let path = dir.path().join("l.fvecs");
    let data = sample_f32(10 * 3);
    write_fvecs(&path, &data, 3).unwrap();
    assert_eq!(bits(&read_f32_vectors_limit(&path, 4).unwrap().0), bits(&data[..12]));
    assert_eq!(bits(&read_f32_vectors_limit(&path, 99).unwrap().0), bits(&data));
    assert_eq!(read_f32_vectors_limit(&path, 0).unwrap(), (vec![], 3));
}

#[test]
fn streaming_writer_appends_in_pieces() {
    let dir = temp();
    let path = dir.path().join("w.fvecs");
    let data = sample_f32(100 * 5);
    let mut writer = FvecsWriter::create(&path, 5).unwrap();
    assert_eq!(writer.dim(), 5);
    for piece in [&data[..5], &data[5..5], &data[5..250], &data[250..]] {
        writer.write(piece).unwrap();
    }
    assert_eq!(writer.count(), 100);
    assert_eq!(writer.finish().unwrap(), 100);
    assert_eq!(fs::read(&path).unwrap(), fvecs_bytes(5, &data));

    let path = dir.path().join("w.ivecs");
    let mut writer = FvecsWriter::create(&path, 2).unwrap();
    writer.write_i32(&[1, 2, 3, 4]).unwrap();
    writer.write_i32(&[5, 6]).unwrap();
    assert!(matches!(writer.write(&[1.0, 2.0]), Err(VecIoError::WrongFormat { .. })));
    assert_eq!(writer.finish().unwrap(), 3);
    assert_eq!(read_ivecs(&path).unwrap(), (vec![1, 2, 3, 4, 5, 6], 2));
}

#[test]
fn streaming_writer_checks_its_input() {
    let dir = temp();
    let path = dir.path().join("w.fvecs");
    let mut writer = FvecsWriter::create(&path, 3).unwrap();
    assert!(matches!(writer.write(&[1.0, 2.0]), Err(VecIoError::RaggedData { len: 2, dim: 3 })));
    assert!(matches!(writer.write_i32(&[1, 2, 3]), Err(VecIoError::WrongFormat { .. })));
    writer.write(&[1.0, 2.0, 3.0]).unwrap();
    assert_eq!(writer.finish().unwrap(), 1);
    assert_eq!(read_f32_vectors(&path).unwrap(), (vec![1.0, 2.0, 3.0], 3));
    assert!(matches!(
        FvecsWriter::create(&dir.path().join("x.fvecs"), 0),
        Err(VecIoError::InvalidDimension { dim: 0 })
    ));
    for name in ["x.npy", "x.bvecs"] {
        assert!(matches!(
            FvecsWriter::create(&dir.path().join(name), 3),
            Err(VecIoError::WrongFormat { .. })
        ));
    }
}

// ---------------------------------------------------------------- TEXMEX errors

#[test]
fn empty_files_are_rejected() {
    let dir = temp();
    for name in ["e.fvecs", "e.bvecs", "e.npy"] {
        let path = file(&dir, name, &[]);
        assert!(matches!(read_f32_vectors(&path), Err(VecIoError::Empty { .. })), "{name}");
        assert!(matches!(probe(&path), Err(VecIoError::Empty { .. })), "{name}");
    }
    let path = file(&dir, "e.ivecs", &[]);
    assert!(matches!(read_ivecs(&path), Err(VecIoError::Empty { .. })));
}

#[test]
fn truncated_fvecs_is_rejected_at_every_partial_length() {
    let dir = temp();
    let full = fvecs_bytes(4, &sample_f32(3 * 4)); // three 20-byte records
    for cut in [1, 2, 3, 4, 5, 19, 21, 24, 39, 41, 59] {
        let path = file(&dir, "t.fvecs", &full[..cut]);
        let err = read_f32_vectors(&path).unwrap_err();
        let expected = if cut < 4 { 4 } else { (cut as u64 / 20 + 1) * 20 };
        assert!(
            matches!(
                err,
                VecIoError::Truncated { expected_bytes, actual_bytes, .. }
                    if expected_bytes == expected && actual_bytes == cut as u64
            ),
            "cut at {cut}: {err}"
        );
        assert!(matches!(probe(&path), Err(VecIoError::Truncated { .. })));
        assert!(matches!(VecReader::open(&path), Err(VecIoError::Truncated { .. })));
    }
    // Whole records are a valid, shorter file.
    let path = file(&dir, "t.fvecs", &full[..40]);
    assert_eq!(probe(&path).unwrap().count, 2);
}

#[test]
fn truncated_ivecs_and_bvecs_are_rejected() {
    let dir = temp();
    let ivecs = file(&dir, "t.ivecs", &texmex_record(2, &[1, 0, 0, 0, 2, 0, 0]));
    assert!(matches!(read_ivecs(&ivecs), Err(VecIoError::Truncated { .. })));
    let bvecs = file(&dir, "t.bvecs", &texmex_record(3, &[1, 2, 3, 3, 0, 0, 0, 4]));
    assert!(matches!(
        read_f32_vectors(&bvecs),
        Err(VecIoError::Truncated { expected_bytes: 14, actual_bytes: 12, .. })
    ));
}

#[test]
fn inconsistent_dimension_in_second_vector_is_rejected() {
    let dir = temp();
    // Same total length as two 2-D records, so only the record headers reveal the problem.
    let mut bytes = texmex_record(2, &f32_bytes(&[1.0, 2.0]));
    bytes.extend(texmex_record(1, &f32_bytes(&[3.0, 4.0])));
    let path = file(&dir, "i.fvecs", &bytes);
    let err = read_f32_vectors(&path).unwrap_err();
    assert!(
        matches!(err, VecIoError::InconsistentDimension { vector: 1, expected: 2, found: 1, .. }),
        "{err}"
    );
    // The streaming reader hands out the good first vector, then fails, then stays at the end.
    let mut reader = VecReader::open(&path).unwrap();
    let mut buf = Vec::new();
    assert_eq!(reader.read_chunk(1, &mut buf).unwrap(), 1);
    assert_eq!(buf, [1.0, 2.0]);
    assert!(matches!(
        reader.read_chunk(1, &mut buf),
        Err(VecIoError::InconsistentDimension { vector: 1, .. })
    ));
    assert_eq!(reader.read_chunk(1, &mut buf).unwrap(), 0);

    let mut bytes = texmex_record(2, &[1, 0, 0, 0, 2, 0, 0, 0]);
    bytes.extend(texmex_record(-7, &[3, 0, 0, 0, 4, 0, 0, 0]));
    let path = file(&dir, "i.ivecs", &bytes);
    assert!(matches!(
        read_ivecs(&path),
        Err(VecIoError::InconsistentDimension { vector: 1, expected: 2, found: -7, .. })
    ));
}

#[test]
fn bad_dimensions_are_rejected_before_allocating() {
    let dir = temp();
    let cases: [(i32, &[u8]); 5] = [
        (-1, &[0; 8]),
        (i32::MIN, &[0; 8]),
        (0, &[]),
        (1 << 30, &[0; 8]),
        ((MAX_FILE_DIM + 1) as i32, &[0; 8]),
    ];
    for (dim, rest) in cases {
        for name in ["d.fvecs", "d.ivecs", "d.bvecs"] {
            let path = file(&dir, name, &texmex_record(dim, rest));
            let err = probe(&path).unwrap_err();
            assert!(
                matches!(err, VecIoError::BadDimension { vector: 0, dim: d, .. } if d == i64::from(dim)),
                "{name} dim {dim}: {err}"
            );
        }
    }
    // i32::MAX: 2^31 - 1.
    let path = file(&dir, "d.fvecs", &texmex_record(i32::MAX, &[0; 4]));
    assert!(matches!(read_f32_vectors(&path), Err(VecIoError::BadDimension { .. })));
    // The largest allowed dimension is accepted (and only reported truncated here).
    let path = file(&dir, "d.fvecs", &texmex_record(MAX_FILE_DIM as i32, &[0; 4]));
    assert!(matches!(probe(&path), Err(VecIoError::Truncated { .. })));
}

#[test]
fn wrong_format_for_the_call_is_rejected() {
    let dir = temp();
    let fvecs = dir.path().join("a.fvecs");
    write_fvecs(&fvecs, &[1.0], 1).unwrap();
    let ivecs = dir.path().join("a.ivecs");
    write_ivecs(&ivecs, &[1], 1).unwrap();
    assert!(matches!(read_ivecs(&fvecs), Err(VecIoError::WrongFormat { .. })));
    assert!(matches!(read_f32_vectors(&ivecs), Err(VecIoError::WrongFormat { .. })));
    assert!(matches!(VecReader::open(&ivecs), Err(VecIoError::WrongFormat { .. })));
    // probe handles every format.
    assert_eq!(probe(&ivecs).unwrap().format, VecFormat::Ivecs);
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let dir = temp();
    let path = dir.path().join("missing.fvecs");
    let err = read_f32_vectors(&path).unwrap_err();
    assert!(matches!(&err, VecIoError::Io { path: p, .. } if p == &path));
    assert!(err.to_string().contains("missing.fvecs"));
    let err = write_fvecs(&dir.path().join("no/such/dir.fvecs"), &[1.0], 1).unwrap_err();
    assert!(matches!(err, VecIoError::Io { .. }));
}

// ---------------------------------------------------------------- writer input errors

#[test]
fn ragged_or_dimensionless_writer_input_is_rejected() {
    let dir = temp();
    let p = |name: &str| dir.path().join(name);
    assert!(matches!(
        write_fvecs(&p("r.fvecs"), &[1.0; 5], 2),
        Err(VecIoError::RaggedData { len: 5, dim: 2 })
    ));
    assert!(matches!(write_ivecs(&p("r.ivecs"), &[1; 7], 3), Err(VecIoError::RaggedData { len: 7, dim: 3 })));
    assert!(matches!(write_bvecs(&p("r.bvecs"), &[1; 3], 2), Err(VecIoError::RaggedData { len: 3, dim: 2 })));
    assert!(matches!(
        write_npy_f32(&p("r.npy"), &[1.0; 3], 2),
        Err(VecIoError::RaggedData { len: 3, dim: 2 })
    ));
    assert!(matches!(write_f32_vectors(&p("r2.npy"), &[1.0; 3], 2), Err(VecIoError::RaggedData { .. })));
    assert!(matches!(write_fvecs(&p("z.fvecs"), &[], 0), Err(VecIoError::InvalidDimension { dim: 0 })));
    assert!(matches!(write_npy_f32(&p("z.npy"), &[1.0], 0), Err(VecIoError::InvalidDimension { dim: 0 })));
    assert!(matches!(
        write_bvecs(&p("z.bvecs"), &[], MAX_FILE_DIM + 1),
        Err(VecIoError::InvalidDimension { .. })
    ));
    // Rejected input leaves no file behind.
    for name in ["r.fvecs", "r.ivecs", "r.bvecs", "r.npy", "z.fvecs", "z.npy"] {
        assert!(!p(name).exists(), "{name}");
    }
}

// ---------------------------------------------------------------- npy errors

fn npy_error(bytes: &[u8]) -> VecIoError {
    let dir = temp();
    let path = file(&dir, "e.npy", bytes);
    let err = read_f32_vectors(&path).unwrap_err();
    // probe validates the same header and length.
    let probe_err = probe(&path).unwrap_err();
    assert_eq!(std::mem::discriminant(&err), std::mem::discriminant(&probe_err));
    err
}

fn good_npy() -> Vec<u8> {
    npy_bytes(1, &f32_npy_dict("(2, 3)"), &f32_bytes(&sample_f32(6)))
}

#[test]
fn npy_bad_magic_is_rejected() {
    let mut bytes = good_npy();
    bytes[1] = b'n';
    assert!(matches!(npy_error(&bytes), VecIoError::NpyBadMagic { .. }));
    assert!(matches!(npy_error(b"PK\x03\x04"), VecIoError::NpyBadMagic { .. }));
    assert!(matches!(npy_error(&fvecs_bytes(2, &[1.0, 2.0])), VecIoError::NpyBadMagic { .. }));
}

#[test]
fn npy_unsupported_version_is_rejected() {
    for (major, minor) in [(9, 0), (0, 0), (1, 1), (4, 0)] {
        let mut bytes = good_npy();
        bytes[6] = major;
        bytes[7] = minor;
        let err = npy_error(&bytes);
        assert!(
            matches!(err, VecIoError::NpyUnsupportedVersion { major: a, minor: b, .. } if a == major && b == minor),
            "{err}"
        );
    }
}

#[test]
fn npy_unsupported_dtypes_are_rejected() {
    let cases = [
        ("'>f4'", ">f4"),
        ("'<i8'", "<i8"),
        ("\"|O\"", "|O"),
        ("'<f2'", "<f2"),
        ("'<i4'", "<i4"),
        ("'f4'", "f4"),
        ("[('a', '<f4'), ('b', '<f4', (2,))]", "[('a', '<f4'), ('b', '<f4', (2,))]"),
        ("3", "3"),
    ];
    for (written, reported) in cases {
        let dict = format!("{{'descr': {written}, 'fortran_order': False, 'shape': (2, 3), }}");
        let err = npy_error(&npy_bytes(1, &dict, &[0; 24]));
        assert!(
            matches!(&err, VecIoError::NpyUnsupportedDtype { descr, .. } if descr == reported),
            "{written}: {err}"
        );
    }
}

#[test]
fn npy_fortran_order_is_rejected() {
    let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
    let err = npy_error(&npy_bytes(1, dict, &[0; 24]));
    assert!(matches!(err, VecIoError::NpyFortranOrder { .. }), "{err}");
}

#[test]
fn npy_shapes_other_than_2d_are_rejected() {
    for (shape, data_len) in [("(6,)", 24), ("(1, 2, 3)", 24), ("()", 4), ("(0, 0, 0)", 0)] {
        let err = npy_error(&npy_bytes(1, &f32_npy_dict(shape), &vec![0; data_len]));
        assert!(
            matches!(&err, VecIoError::NpyNotTwoDimensional { shape: s, .. } if s == shape),
            "{shape}: {err}"
        );
    }
}

#[test]
fn npy_bad_column_count_is_rejected() {
    for (shape, dim) in [("(0, 0)", 0), ("(3, 0)", 0), ("(1, 1048577)", 1_048_577)] {
        let err = npy_error(&npy_bytes(1, &f32_npy_dict(shape), &[]));
        assert!(
            matches!(err, VecIoError::BadDimension { vector: 0, dim: d, .. } if d == dim),
            "{shape}: {err}"
        );
    }
}

#[test]
fn npy_truncated_data_is_rejected() {
    let good = good_npy();
    let data_start = good.len() - 24;
    for cut in [1, 4, 23] {
        let err = npy_error(&good[..good.len() - cut]);
        assert!(
            matches!(
                err,
                VecIoError::Truncated { expected_bytes, actual_bytes, .. }
                    if expected_bytes == good.len() as u64
                        && actual_bytes == (good.len() - cut) as u64
            ),
            "{err}"
        );
    }
    // Cut inside the preamble or the header.
    for cut in [3, 6, 7, 9, 11, data_start - 1] {
        let err = npy_error(&good[..cut]);
        assert!(matches!(err, VecIoError::Truncated { .. }), "cut {cut}: {err}");
    }
    // A shape too large for any file.
    let huge = f32_npy_dict("(18446744073709551615, 1024)");
    assert!(matches!(npy_error(&npy_bytes(1, &huge, &[])), VecIoError::NpyHeader { .. }));
    let big = f32_npy_dict("(4000000000, 1024)");
    assert!(matches!(npy_error(&npy_bytes(1, &big, &[])), VecIoError::Truncated { .. }));
}

#[test]
fn npy_trailing_bytes_are_rejected() {
    let mut bytes = good_npy();
    let len = bytes.len() as u64;
    bytes.push(0);
    let err = npy_error(&bytes);
    assert!(
        matches!(
            err,
            VecIoError::TrailingBytes { expected_bytes, actual_bytes, .. }
                if expected_bytes == len && actual_bytes == len + 1
        ),
        "{err}"
    );
}

#[test]
fn npy_malformed_headers_are_rejected() {
    let deep = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': {}2{}}}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let cases = [
        "",
        "   ",
        "[1, 2]",
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'shape': (2, 3)}",
        "{'fortran_order': False, 'shape': (2, 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}",
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}}",
        "{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}",
        "{'descr': '<f4', 'fortran_order': false, 'shape': (2, 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0, 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 'x')}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': 6}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999999999999999999999, 3)}",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}",
        "{,}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\0",
        "{1: 2}",
        &deep,
    ];
    for dict in cases {
        let err = npy_error(&npy_bytes(1, dict, &[0; 24]));
        assert!(matches!(err, VecIoError::NpyHeader { .. }), "{dict:.80}: {err}");
    }
    // Version 3 headers must be UTF-8.
    let mut bytes = npy_bytes(3, &f32_npy_dict("(2, 3)"), &[0; 24]);
    bytes[14] = 0xff;
    assert!(matches!(npy_error(&bytes), VecIoError::NpyHeader { .. }));
    // A header length beyond the limit is refused before reading it.
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&[b' '; 64]);
    assert!(matches!(npy_error(&bytes), VecIoError::NpyHeader { .. }));
}

#[test]
fn errors_name_the_file() {
    let dir = temp();
    let path = file(&dir, "named-file.npy", b"\x93NUMPY\x09\x00");
    let message = read_f32_vectors(&path).unwrap_err().to_string();
    assert!(message.contains("named-file.npy"), "{message}");
    assert!(message.contains("9.0"), "{message}");
}

// ---------------------------------------------------------------- robustness

/// Every single-byte corruption of small valid files, and random junk, must give Ok or an
/// error, never a panic.
#[test]
fn corrupt_files_never_panic() {
    let dir = temp();
    let fvecs = fvecs_bytes(3, &sample_f32(6));
    let npy = good_npy();
    let mut state = 12345u32;
    let mut next = move || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 24) as u8
    };
    for (name, good) in [("c.fvecs", &fvecs), ("c.bvecs", &fvecs), ("c.ivecs", &fvecs), ("c.npy", &npy)] {
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff, b'(', b'\'', b'}', next()] {
                let mut bytes = good.clone();
                bytes[i] = v;
                let path = file(&dir, name, &bytes);
                let _ = probe(&path);
                let _ = read_f32_vectors(&path);
                let _ = read_ivecs(&path);
            }
        }
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len).map(|_| next()).collect();
            let path = file(&dir, name, &bytes);
            let _ = read_f32_vectors(&path);
            let _ = read_ivecs(&path);
        }
    }
}
