//! Binary codes and the binary index against exact ground truth on seeded data: codes that
//! track angles, kernels equal to the scalar reference, recall thresholds a broken encoder or
//! broken probing would miss, filters, files searched in place and files that lie.

use neardb_core::format::{AlignedBytes, FileInfo, FormatError, OpenOptions, SectionKind};
use neardb_core::quant::binary::{hamming_scalar, words_for};
use neardb_core::quant::{BinaryQuantizer, Encoder, Hamming, HammingIsa};
use neardb_core::rng::Rng;
use neardb_core::{
    BinaryIndex, BinaryParams, BinaryView, Bitset, Error, FlatIndex, IdMap, Kernels, Metric, Predicate,
    SearchParams, VectorSearch,
};

/// An anisotropic Gaussian mixture, like the generator of the HNSW suite.
fn mixture(seed: u64, n: usize, dim: usize, clusters: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let centers: Vec<f32> = (0..clusters * dim).map(|_| rng.normal() as f32 * 2.0).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.below(clusters as u64) as usize;
        for j in 0..dim {
            let spread = 1.0 / (1.0 + j as f32).powf(0.3);
            out.push(centers[c * dim + j] + spread * rng.normal() as f32);
        }
    }
    out
}

const DIM: usize = 64;
const N: usize = 5000;

/// `N` vectors and 100 queries drawn from the same 20-cluster mixture: 250 vectors per
/// cluster, more than the 100 candidates a rerank ×10 keeps, so codes must rank within a
/// cluster, not only find it.
fn data() -> (Vec<f32>, Vec<f32>) {
    let mut all = mixture(1, N + 100, DIM, 20);
    let queries = all.split_off(N * DIM);
    (all, queries)
}

fn build(metric: Metric, params: BinaryParams, data: &[f32]) -> BinaryIndex {
    let mut b = BinaryIndex::new(DIM, metric, params).unwrap();
    b.train(data).unwrap();
    b.add(data).unwrap();
    b
}

fn flat(metric: Metric, data: &[f32]) -> FlatIndex {
    let mut f = FlatIndex::new(DIM, metric).unwrap();
    f.add(data).unwrap();
    f
}

fn recall(index: &dyn VectorSearch, truth: &FlatIndex, queries: &[f32], k: usize, p: &SearchParams) -> f64 {
    let mut hits = 0;
    for q in queries.chunks_exact(DIM) {
        let want: Vec<u32> = truth.search(q, k, p, None).unwrap().iter().map(|n| n.id).collect();
        let got = index.search(q, k, p, None).unwrap();
        assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance));
        hits += got.iter().filter(|n| want.contains(&n.id)).count();
    }
    hits as f64 / (queries.len() / DIM * k) as f64
}

fn angle(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    (dot / (na * nb)).clamp(-1.0, 1.0).acos()
}

#[test]
fn hamming_of_uncentred_codes_tracks_the_angle() {
    // Isotropic random vectors: uncentred sign bits and SimHash both estimate angle / π.
    let dim = 128;
    let mut rng = Rng::new(3);
    let x: Vec<f32> = (0..400 * dim).map(|_| rng.normal() as f32).collect();
    for (encoder, bits) in [(Encoder::Sign, dim), (Encoder::Hyperplanes, 1024)] {
        let mut q = BinaryQuantizer::new(dim, bits, encoder, false, 9).unwrap();
        q.train(&Kernels::best(), &x).unwrap();
        let mut codes = Vec::new();
        q.encode_into(&Kernels::best(), &x, &mut codes);
        let w = words_for(bits);
        let (mut err, mut pairs) = (0.0, 0);
        for i in (0..400).step_by(2) {
            let (a, b) = (&x[i * dim..(i + 1) * dim], &x[(i + 1) * dim..(i + 2) * dim]);
            let h = hamming_scalar(&codes[i * w..(i + 1) * w], &codes[(i + 1) * w..(i + 2) * w]);
            err += (h as f64 / bits as f64 - angle(a, b) / std::f64::consts::PI).abs();
            pairs += 1;
        }
        let mean = err / pairs as f64;
        println!("{encoder:?} {bits} bits: mean |hamming/bits - angle/pi| = {mean:.4}");
        // SimHash's standard deviation at 1024 bits is ~0.016; random bits would be ~0.25 off.
        let limit = if encoder == Encoder::Sign { 0.05 } else { 0.02 };
        assert!(mean < limit, "{encoder:?}: {mean}");
    }
}

#[test]
fn every_hamming_path_equals_the_scalar_reference() {
    let mut rng = Rng::new(5);
    for isa in HammingIsa::ALL {
        let Some(h) = Hamming::for_isa(isa) else {
            println!("hamming path {}: skipped (not supported by this build or CPU)", isa.name());
            continue;
        };
        println!("hamming path {}: tested", isa.name());
        for words in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100] {
            let q: Vec<u64> = (0..words).map(|_| rng.next_u64()).collect();
            let codes: Vec<u64> = (0..words * 37).map(|_| rng.next_u64()).collect();
            let mut got = vec![0u32; 37];
            h.scan(&q, &codes, &mut got);
            for (c, &d) in codes.chunks_exact(words).zip(&got) {
                assert_eq!(d, hamming_scalar(&q, c), "{} scan at {words} words", isa.name());
                assert_eq!(h.distance(&q, c), d, "{} at {words} words", isa.name());
            }
        }
    }
    assert_eq!(Hamming::scalar().isa(), HammingIsa::Scalar);
}

#[test]
fn exhaustive_scan_with_rerank_recalls_the_exact_neighbours() {
    let (data, queries) = data();
    let truth = flat(Metric::Cosine, &data);
    // Measured: 256 planes 0.234 by Hamming, 0.854 reranked; 1024 planes 0.452 / 0.988. Codes
    // of noise reach under 0.2 (see `a_broken_encoder_fails_the_recall_floor`).
    let mut b = None;
    for (bits, floor) in [(1024, 0.95), (256, 0.8)] {
        let idx = build(Metric::Cosine, BinaryParams::hyperplanes(bits), &data);
        let r0 = recall(&idx, &truth, &queries, 10, &SearchParams::new());
        let r10 = recall(&idx, &truth, &queries, 10, &SearchParams::new().with_rerank_factor(10));
        println!("cosine, {bits} planes: recall@10 {r0:.3} by Hamming alone, {r10:.3} with rerank ×10");
        assert!(r10 >= floor, "{bits} planes, rerank ×10: {r10}");
        assert!(r10 > r0 + 0.3, "rerank must improve on Hamming ranking");
        b = Some(idx);
    }
    let b = b.unwrap();
    // Results with rerank carry exact distances.
    let q = &queries[..DIM];
    let got = b.search(q, 5, &SearchParams::new().with_rerank_factor(10), None).unwrap();
    let exact = truth.search(q, 50, &SearchParams::new(), None).unwrap();
    for n in &got {
        let e = exact.iter().find(|e| e.id == n.id).unwrap();
        assert_eq!(n.distance, e.distance);
    }
    // Without rerank, distances are Hamming counts.
    let ham = b.search(q, 5, &SearchParams::new(), None).unwrap();
    assert!(ham.iter().all(|n| n.distance.fract() == 0.0 && n.distance <= 256.0));

    // The sign encoder (one bit per dimension) also works, with lower but real recall.
    let s = build(Metric::Cosine, BinaryParams::sign(DIM), &data);
    let rs = recall(&s, &truth, &queries, 10, &SearchParams::new().with_rerank_factor(10));
    println!("cosine, sign bits: recall@10 {rs:.3} with rerank ×10");
    // Measured 0.612: 64 bits say less than 256 planes.
    assert!(rs >= 0.5, "sign: {rs}");

    // L2 and inner product use the same codes as a proxy; rerank makes the distances exact.
    for metric in [Metric::L2, Metric::InnerProduct] {
        let truth = flat(metric, &data);
        let b = build(metric, BinaryParams::hyperplanes(256), &data);
        let r = recall(&b, &truth, &queries, 10, &SearchParams::new().with_rerank_factor(10));
        println!("{metric}, 256 planes: recall@10 {r:.3} with rerank ×10");
        // Measured l2 0.838, ip 0.519: inner product also ranks by norm, which sign bits
        // cannot see, so only the rerank depth saves it on data of uneven norms.
        let floor = if metric == Metric::L2 { 0.75 } else { 0.4 };
        assert!(r >= floor, "{metric}: {r}");
    }
}

#[test]
fn a_broken_encoder_fails_the_recall_floor() {
    // Guard on the threshold above: codes of noise (planes from an unrelated seed on shuffled
    // slots) must not pass it, so passing says something about the encoder.
    let (data, queries) = data();
    let truth = flat(Metric::Cosine, &data);
    let mut rng = Rng::new(77);
    let noise: Vec<f32> = (0..N * DIM).map(|_| rng.normal() as f32).collect();
    let mut b = BinaryIndex::new(DIM, Metric::Cosine, BinaryParams::hyperplanes(256)).unwrap();
    b.train(&noise).unwrap();
    b.add(&noise).unwrap();
    let r = recall(&b, &truth, &queries, 10, &SearchParams::new().with_rerank_factor(10));
    assert!(r < 0.2, "noise index recall {r}");
}

#[test]
fn more_probes_give_more_recall() {
    let (data, queries) = data();
    let truth = flat(Metric::Cosine, &data);
    // 18-bit keys over 5000 vectors: a bucket holds a few vectors, so which buckets are
    // probed decides what is found. Rerank ×50 keeps every candidate a probe finds, so the
    // curve measures the candidate sets, not the Hamming ranking.
    let b = build(Metric::Cosine, BinaryParams::hyperplanes(256).with_lsh(3, 18), &data);
    let exhaustive = build(Metric::Cosine, BinaryParams::hyperplanes(256), &data);
    let p = |probes| SearchParams::new().with_nprobe(probes).with_rerank_factor(50);
    let ceiling = recall(&exhaustive, &truth, &queries, 10, &p(0));
    let mut last = 0.0;
    let mut rows = Vec::new();
    for probes in [1, 2, 4, 8, 16, 32, 64, 128] {
        let r = recall(&b, &truth, &queries, 10, &p(probes));
        rows.push((probes, r));
        assert!(r >= last, "recall fell from {last} to {r} at {probes} probes");
        last = r;
    }
    println!("LSH 3 tables × 18 bits, rerank ×50: recall@10 by probes {rows:?}; exhaustive {ceiling}");
    // Measured 0.549, 0.758, 0.885, 0.970, 0.993, 0.999, 1.0, 1.0 for 1 … 128 probes.
    assert!(rows[0].1 + 0.1 < last, "probing more buckets must find more: {rows:?}");
    assert!(last >= 0.8 && last <= ceiling, "128 probes: {last}");
    // nprobe 0 is the documented default (8).
    assert_eq!(recall(&b, &truth, &queries, 10, &p(0)), rows[3].1);
}

#[test]
fn filters_are_honoured_in_scan_and_probe() {
    let (data, queries) = data();
    for params in [BinaryParams::hyperplanes(128), BinaryParams::hyperplanes(128).with_lsh(8, 10)] {
        let b = build(Metric::L2, params, &data);
        let even = Predicate(|id: u32| id.is_multiple_of(2));
        let sparse = Bitset::from_fn(N as u32, |id| id % 50 == 7);
        for q in queries.chunks_exact(DIM).take(20) {
            for rerank in [0, 4] {
                let p = SearchParams::new().with_rerank_factor(rerank).with_nprobe(16);
                let got = b.search(q, 10, &p, Some(&even)).unwrap();
                assert!(!got.is_empty() && got.iter().all(|n| n.id % 2 == 0));
                // A sparse bitset (2% of slots) switches to the scan: still a full answer.
                let got = b.search(q, 10, &p, Some(&sparse)).unwrap();
                assert_eq!(got.len(), 10);
                assert!(got.iter().all(|n| n.id % 50 == 7));
            }
        }
    }
}

#[test]
fn owned_and_in_place_files_search_identically() {
    let (data, queries) = data();
    for params in [
        BinaryParams::hyperplanes(200),
        BinaryParams::sign(DIM).with_lsh(4, 12),
        BinaryParams::hyperplanes(100).with_center(false).with_lsh(12, 14),
    ] {
        let b = build(Metric::Cosine, params, &data[..2000 * DIM]);
        let bytes = b.to_bytes();
        assert_eq!(bytes, b.to_bytes(), "to_bytes is stable");
        let aligned = AlignedBytes::copy_from(&bytes);
        let view = BinaryView::open(aligned.as_slice()).unwrap();
        assert_eq!(view.len(), 2000);
        assert_eq!(view.params(), b.params());
        assert!(view.has_vectors());
        let scalar = BinaryView::open(aligned.as_slice())
            .unwrap()
            .with_hamming(Hamming::scalar())
            .with_kernels(Kernels::scalar());
        for q in queries.chunks_exact(DIM).take(30) {
            for p in [SearchParams::new().with_nprobe(4), SearchParams::new().with_rerank_factor(5)] {
                let want = b.search(q, 10, &p, None).unwrap();
                assert_eq!(view.search(q, 10, &p, None).unwrap(), want);
                assert_eq!(scalar.search(q, 10, &p, None).unwrap(), want);
            }
        }
        let copy = view.to_index().unwrap();
        assert_eq!(copy.to_bytes(), bytes, "view → owned → bytes round trip");

        // Without vectors: Hamming search works and matches, rerank is refused.
        let slim = AlignedBytes::copy_from(&b.to_bytes_without_vectors());
        assert!(slim.len() < bytes.len());
        let v = BinaryView::open(slim.as_slice()).unwrap();
        assert!(!v.has_vectors());
        let q = &queries[..DIM];
        assert_eq!(
            v.search(q, 10, &SearchParams::new(), None).unwrap(),
            b.search(q, 10, &SearchParams::new(), None).unwrap()
        );
        assert!(matches!(
            v.search(q, 10, &SearchParams::new().with_rerank_factor(2), None),
            Err(Error::InvalidParameter { name: "rerank_factor", .. })
        ));
        assert!(v.to_index().is_err());
    }
}

#[test]
fn seeded_builds_are_byte_identical_and_kernel_independent() {
    let data = mixture(4, 1500, DIM, 10);
    let p = BinaryParams::hyperplanes(128).with_lsh(6, 10);
    let a = build(Metric::Cosine, p, &data);
    let mut s = BinaryIndex::new(DIM, Metric::Cosine, p).unwrap().with_kernels(Kernels::scalar());
    s.train(&data).unwrap();
    s.add(&data).unwrap();
    assert_eq!(a.to_bytes(), s.to_bytes());
    // Adding in two batches rebuilds the same tables.
    let mut two = BinaryIndex::new(DIM, Metric::Cosine, p).unwrap();
    two.train(&data).unwrap();
    two.add(&data[..700 * DIM]).unwrap();
    assert_eq!(two.add(&data[700 * DIM..]).unwrap(), 700..1500);
    assert_eq!(two.to_bytes(), a.to_bytes());
    let other = build(Metric::Cosine, p.with_seed(99), &data);
    assert_ne!(other.to_bytes(), a.to_bytes());
}

#[test]
fn ids_section_round_trips() {
    let data = mixture(6, 300, DIM, 5);
    let b = build(Metric::L2, BinaryParams::hyperplanes(64), &data);
    let by_slot: Vec<u32> = (0..300).map(|s| 1000 + s * 3).collect();
    let ids = IdMap::from_ids(&by_slot, |_| true).unwrap();
    let mut bytes = Vec::new();
    b.write_with_ids(&ids, &mut |c: &[u8]| -> Result<(), ()> {
        bytes.extend_from_slice(c);
        Ok(())
    })
    .unwrap();
    let aligned = AlignedBytes::copy_from(&bytes);
    let v = BinaryView::open(aligned.as_slice()).unwrap();
    assert_eq!(v.ids(), Some(&by_slot[..]));
}

/// Rewrites one section of a valid file (recomputing its checksum), to forge lies that pass
/// the container checks and must be caught by the binary index's own validation.
fn forge(bytes: &[u8], kind: SectionKind, edit: impl FnOnce(&mut [u8])) -> AlignedBytes {
    let info = FileInfo::parse(bytes, OpenOptions { verify_checksums: false }).unwrap();
    let e = *info.entry(kind).unwrap();
    let mut out = AlignedBytes::copy_from(bytes);
    let buf = out.as_mut_slice();
    let (s, t) = (e.offset as usize, (e.offset + e.len) as usize);
    edit(&mut buf[s..t]);
    let crc = crc32(&buf[s..t]);
    // Patch the table entry's CRC, then the header CRC over bytes 0..60 and the table.
    let idx = info.sections.iter().position(|x| x.kind == kind).unwrap();
    let at = 64 + idx * 32 + 24;
    buf[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    let table_end = 64 + 32 * info.sections.len();
    let mut h = Vec::from(&buf[..60]);
    h.extend_from_slice(&buf[64..table_end]);
    let hc = crc32(&h);
    buf[60..64].copy_from_slice(&hc.to_le_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE), the same function crc32fast computes.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn u32_at(b: &mut [u8], i: usize) -> &mut [u8] {
    &mut b[i * 4..i * 4 + 4]
}

#[test]
fn corrupt_truncated_and_lying_files_are_rejected() {
    let data = mixture(8, 400, DIM, 5);
    let b = build(Metric::Cosine, BinaryParams::hyperplanes(100).with_lsh(3, 8), &data);
    let bytes = b.to_bytes();
    let open = |x: &AlignedBytes| BinaryView::open(x.as_slice()).map(|_| ());
    assert!(open(&AlignedBytes::copy_from(&bytes)).is_ok());
    let invalid = |kind| move |r: Result<(), Error>| matches!(r, Err(Error::Format(FormatError::InvalidSection { kind: k, .. })) if k == kind);

    // Truncation and a flipped byte are container errors.
    for cut in [10, 63, 200, bytes.len() - 1] {
        assert!(open(&AlignedBytes::copy_from(&bytes[..cut])).is_err(), "cut at {cut}");
    }
    let mut flipped = bytes.clone();
    let last = flipped.len() - 5;
    flipped[last] ^= 0x40;
    assert!(matches!(
        open(&AlignedBytes::copy_from(&flipped)),
        Err(Error::Format(FormatError::SectionChecksum { .. }))
    ));

    let kp = SectionKind::PARAMS;
    // bits = 0; bits that disagree with words; unknown encoder; stray flag; reserved byte.
    assert!(invalid(kp)(open(&forge(&bytes, kp, |p| u32_at(p, 0).copy_from_slice(&0u32.to_le_bytes())))));
    assert!(invalid(kp)(open(&forge(&bytes, kp, |p| u32_at(p, 0).copy_from_slice(&200u32.to_le_bytes())))));
    assert!(invalid(kp)(open(&forge(&bytes, kp, |p| u32_at(p, 2).copy_from_slice(&7u32.to_le_bytes())))));
    assert!(invalid(kp)(open(&forge(&bytes, kp, |p| p[13] = 1))));
    assert!(invalid(kp)(open(&forge(&bytes, kp, |p| p[40] = 1))));
    // key_bits beyond the limit; more tables than the section holds is a size error.
    assert!(invalid(kp)(open(&forge(&bytes, kp, |p| u32_at(p, 7).copy_from_slice(&30u32.to_le_bytes())))));
    assert!(matches!(
        open(&forge(&bytes, kp, |p| u32_at(p, 6).copy_from_slice(&4u32.to_le_bytes()))),
        Err(Error::Format(FormatError::SectionSize { kind: SectionKind::LSH_TABLES, .. }))
    ));

    // A code with bits beyond its 100: set bit 127 of the second word of slot 5.
    let kc = SectionKind::BINARY_CODES;
    assert!(invalid(kc)(open(&forge(&bytes, kc, |c| c[5 * 16 + 15] |= 0x80))));

    // Non-finite plane.
    let kpl = SectionKind::BINARY_PLANES;
    assert!(invalid(kpl)(open(
        &forge(&bytes, kpl, |p| u32_at(p, 70).copy_from_slice(&f32::NAN.to_le_bytes()))
    )));

    // Tables: position beyond the code, a position repeated, offsets that do not start at 0,
    // decrease, or do not end at count; a slot beyond count; a slot in the wrong bucket.
    let kl = SectionKind::LSH_TABLES;
    let buckets = 1 + (1 << 8);
    let off0 = 3 * 8;
    let slots0 = off0 + 3 * buckets;
    assert!(invalid(kl)(open(&forge(&bytes, kl, |t| u32_at(t, 1).copy_from_slice(&100u32.to_le_bytes())))));
    assert!(invalid(kl)(open(&forge(&bytes, kl, |t| {
        let first: [u8; 4] = t[0..4].try_into().unwrap();
        u32_at(t, 1).copy_from_slice(&first);
    }))));
    assert!(invalid(kl)(open(&forge(&bytes, kl, |t| u32_at(t, off0).copy_from_slice(&1u32.to_le_bytes())))));
    assert!(invalid(kl)(open(
        &forge(&bytes, kl, |t| u32_at(t, off0 + 100).copy_from_slice(&u32::MAX.to_le_bytes()))
    )));
    assert!(invalid(kl)(open(
        &forge(&bytes, kl, |t| u32_at(t, off0 + buckets - 1).copy_from_slice(&399u32.to_le_bytes()))
    )));
    assert!(invalid(kl)(open(
        &forge(&bytes, kl, |t| u32_at(t, slots0 + 3).copy_from_slice(&400u32.to_le_bytes()))
    )));
    assert!(invalid(kl)(open(&forge(&bytes, kl, |t| {
        // Swap the first and last slot of table 0: each lands in the other's bucket (or
        // breaks the ascending order within one).
        let (a, z) = (slots0, slots0 + 399);
        let first: [u8; 4] = t[a * 4..a * 4 + 4].try_into().unwrap();
        let lastv: [u8; 4] = t[z * 4..z * 4 + 4].try_into().unwrap();
        u32_at(t, a).copy_from_slice(&lastv);
        u32_at(t, z).copy_from_slice(&first);
    }))));

    // Wrong kind of file.
    let mut f = FlatIndex::new(DIM, Metric::Cosine).unwrap();
    f.add(&data).unwrap();
    let fb = AlignedBytes::copy_from(&f.to_bytes());
    assert!(matches!(open(&fb), Err(Error::Format(FormatError::KindMismatch { .. }))));
}

#[test]
fn bad_inputs_are_errors() {
    let p = BinaryParams::hyperplanes(64);
    assert!(matches!(
        BinaryIndex::new(8, Metric::L1, p),
        Err(Error::InvalidParameter { name: "metric", .. })
    ));
    assert!(matches!(
        BinaryIndex::new(8, Metric::L2, BinaryParams::hyperplanes(0)),
        Err(Error::InvalidParameter { name: "bits", .. })
    ));
    assert!(matches!(
        BinaryIndex::new(8, Metric::L2, BinaryParams::sign(16)),
        Err(Error::InvalidParameter { name: "bits", .. })
    ));
    assert!(matches!(
        BinaryIndex::new(8, Metric::L2, p.with_lsh(2, 0)),
        Err(Error::InvalidParameter { name: "key_bits", .. })
    ));
    assert!(matches!(
        BinaryIndex::new(8, Metric::L2, BinaryParams::hyperplanes(8).with_lsh(2, 12)),
        Err(Error::InvalidParameter { name: "key_bits", .. })
    ));
    assert!(matches!(BinaryIndex::new(0, Metric::L2, p), Err(Error::InvalidDimension { .. })));

    let mut b = BinaryIndex::new(4, Metric::Cosine, p).unwrap();
    let q = [1.0, 0.0, 0.0, 0.0];
    let sp = SearchParams::new();
    assert_eq!(b.search(&q, 1, &sp, None).unwrap_err(), Error::EmptyIndex);
    assert!(matches!(b.add(&q), Err(Error::InvalidParameter { name: "index", .. })), "untrained");
    assert!(b.train(&[]).is_err());
    assert!(matches!(b.train(&[0.0; 4]), Err(Error::ZeroVector { .. })));
    b.train(&[1.0, 2.0, 3.0, 4.0, 0.5, 0.1, 0.0, 1.0]).unwrap();
    assert_eq!(b.search(&q, 1, &sp, None).unwrap_err(), Error::EmptyIndex);
    assert!(matches!(b.add(&[1.0, f32::NAN, 0.0, 0.0]), Err(Error::NonFiniteVector { .. })));
    assert!(matches!(b.add(&[1.0, 2.0, 3.0]), Err(Error::DimensionMismatch { .. })));
    assert!(matches!(b.add(&[1.0, 2.0, 3.0, 4.0, 5.0]), Err(Error::RaggedVectors { .. })));
    assert!(matches!(b.add(&[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]), Err(Error::ZeroVector { .. })));
    assert!(b.is_empty(), "a failed batch adds nothing");
    assert_eq!(b.add(&[1.0, 2.0, 3.0, 4.0]).unwrap(), 0..1);
    assert!(matches!(b.train(&[1.0; 4]), Err(Error::InvalidParameter { name: "train", .. })));
    assert_eq!(b.search(&q, 0, &sp, None).unwrap_err(), Error::ZeroK);
    assert!(matches!(b.search(&q[..3], 1, &sp, None), Err(Error::DimensionMismatch { .. })));
    assert!(matches!(b.search(&[f32::NAN, 0.0, 0.0, 0.0], 1, &sp, None), Err(Error::NonFiniteQuery { .. })));
    assert!(matches!(b.search(&[0.0; 4], 1, &sp, None), Err(Error::ZeroVector { .. })));
    assert_eq!(b.search(&q, 10, &sp.with_rerank_factor(3), None).unwrap().len(), 1);

    // An untrained, empty index still writes a valid file that opens and reports empty.
    let u = BinaryIndex::new(4, Metric::L2, p.with_lsh(2, 4)).unwrap();
    let bytes = AlignedBytes::copy_from(&u.to_bytes());
    let v = BinaryView::open(bytes.as_slice()).unwrap();
    assert_eq!(v.search(&q, 1, &sp, None).unwrap_err(), Error::EmptyIndex);
    assert!(!v.to_index().unwrap().is_trained());
}

/// Prints the Hamming scan speed of each available path (no assertion: timing is not a
/// test). Run with `cargo test --release --test binary -- --ignored --nocapture`.
#[test]
#[ignore]
fn hamming_scan_speed() {
    let mut rng = Rng::new(21);
    for bits in [256, 1024] {
        let words = bits / 64;
        // 8192 codes (256 KiB at 256 bits, 1 MiB at 1024) stay in cache: this measures the
        // kernel, not memory bandwidth (100k × 1024-bit codes stream at ~8 GB/s here).
        let n = 8192;
        let codes: Vec<u64> = (0..n * words).map(|_| rng.next_u64()).collect();
        let q: Vec<u64> = (0..words).map(|_| rng.next_u64()).collect();
        let mut out = vec![0u32; n];
        for isa in HammingIsa::ALL {
            let Some(h) = Hamming::for_isa(isa) else {
                println!("{bits} bits, {}: skipped (not supported here)", isa.name());
                continue;
            };
            h.scan(&q, &codes, &mut out);
            let reps = 500;
            let t = std::time::Instant::now();
            for _ in 0..reps {
                h.scan(std::hint::black_box(&q), std::hint::black_box(&codes), &mut out);
            }
            let ns = t.elapsed().as_nanos() as f64 / (reps * n) as f64;
            println!(
                "{bits} bits, {}: {ns:.2} ns per code (checksum {})",
                isa.name(),
                out.iter().sum::<u32>()
            );
        }
    }
}
