//! The fuzzer checked against itself: the seeds are valid and replay exactly, the checksum
//! fix-up yields files that verify, the oracle notices planted bugs, and a short fixed-seed
//! run finds nothing beyond the known open bugs.

use std::sync::{Arc, OnceLock};

use neardb_fuzz::layout::{self, entry_at, put, Layout};
use neardb_fuzz::oracle;
use neardb_fuzz::rng::Rng;
use neardb_fuzz::runner::{self, Config, Corpus, Target};
use neardb_fuzz::seeds;

fn corpus() -> Arc<Corpus> {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static CORPUS: OnceLock<Arc<Corpus>> = OnceLock::new();
    CORPUS
        .get_or_init(|| {
            let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
            Arc::new(Corpus::build(dir.path()).unwrap())
        })
        .clone()
}

#[test]
fn every_seed_opens_answers_cleanly_and_replays() {
    let c = corpus();
    let kinds: std::collections::BTreeSet<_> = c.index.iter().map(|s| s.kind.name()).collect();
    // Every kind of the in-memory format (the SSD index has its own layout and seeds, below).
    let format_kinds =
        <neardb::IndexKind as neardb::Choice>::ALL.iter().filter(|&&k| k != neardb::IndexKind::Disk);
    assert_eq!(kinds.len(), format_kinds.count(), "{kinds:?}");
    for s in &c.index {
        let out = oracle::exercise(&s.bytes, &s.vectors, &mut Rng::new(1));
        assert_eq!(out.refused, None, "{}", s.name);
        assert!(out.violations.is_empty(), "{}: {:?}", s.name, out.violations);
        assert!(out.answered > 0, "{}", s.name);
    }
    let again = seeds::index_seeds().unwrap();
    for (a, b) in c.index.iter().zip(&again) {
        assert!(a.bytes == b.bytes, "{} is not built reproducibly", a.name);
    }
    use neardb::format::SectionKind;
    let has = |name: &str, kind| c.index.iter().any(|s| s.name.starts_with(name) && s.has_section(kind));
    assert!(has("hnsw-none-graph", SectionKind::IDS));
    assert!(has("hnsw-none-insertion-deleted", SectionKind::DELETED));
    assert!(has("ivfpq-nbits8", SectionKind::VECTORS));
    assert!(!has("ivfpq-nbits4-no-vectors", SectionKind::VECTORS));
    assert!(has("binary-lsh", SectionKind::LSH_TABLES));
    assert!(has("vamana-sq8-deleted", SectionKind::DELETED));
    assert!(has("vamana-f16-consolidated", SectionKind::VECTORS_F16));
}

#[test]
fn every_ssd_seed_opens_and_answers_cleanly_and_mutants_replay() {
    let c = corpus();
    assert_eq!(c.disk.seeds.len(), 4);
    for (i, s) in c.disk.seeds.iter().enumerate() {
        let path = c.disk.dir.join(format!("check-{i}.disk"));
        std::fs::write(&path, &s.bytes).unwrap();
        for seed in 0..4 {
            let out = neardb_fuzz::disk::exercise(&path, &s.vectors, s.dim, &mut Rng::new(seed));
            assert_eq!(out.refused, None, "{}", s.name);
            assert!(out.violations.is_empty(), "{}: {:?}", s.name, out.violations);
        }
        let a = neardb_fuzz::disk::mutate(s, &mut Rng::new(77));
        let b = neardb_fuzz::disk::mutate(s, &mut Rng::new(77));
        assert_eq!((a.bytes, a.ops), (b.bytes, b.ops));
    }
    // The run's own choice sends some executions to the SSD target.
    assert!((0..100).any(|seed| Target::All.resolve(seed) == Target::Disk));
}

#[test]
fn checksum_fix_up_makes_files_that_verify() {
    for s in &corpus().index {
        // Every CRC wiped: refused; recomputed: the seed again, byte for byte.
        let mut b = s.bytes.clone();
        let l = Layout::read(&b);
        put(&mut b, 60, 4, 0);
        for e in &l.entries {
            put(&mut b, entry_at(e.index) + 24, 4, 0xdead_beef);
        }
        assert!(oracle::open(&b).is_err(), "{}", s.name);
        layout::fix_checksums(&mut b);
        assert!(b == s.bytes, "{}", s.name);
        assert!(oracle::open(&b).is_ok(), "{}", s.name);

        // A changed value that keeps the structure: refused while stale, opens once fixed.
        if let Some(e) = l.find(neardb::format::SectionKind::VECTORS.0) {
            let r = e.range(s.bytes.len()).unwrap();
            let mut b = s.bytes.clone();
            put(&mut b, r.start, 4, 0.25f32.to_bits() as u64);
            assert!(b != s.bytes, "{}", s.name);
            assert!(oracle::open(&b).is_err(), "{}: a stale section CRC must be refused", s.name);
            layout::fix_checksums(&mut b);
            assert!(oracle::open(&b).is_ok(), "{}", s.name);
        }
    }
}

#[test]
fn mutants_replay_from_their_seed() {
    let c = corpus();
    // Also proves the mutators themselves survive hostile values (overflow checks are on).
    for seed in 0..5000 {
        let a = runner::prepare(&c, Target::All, seed);
        let b = runner::prepare(&c, Target::All, seed);
        assert_eq!((a.bytes, a.ops), (b.bytes, b.ops));
    }
}

#[test]
fn a_planted_bug_becomes_a_finding() {
    // A file whose caller ids are all u32::MAX: any answer from it reports an id that names no
    // vector. Should the library start refusing such files, the planted rule is checked on
    // a fabricated answer instead, so this test keeps proving the oracle can fail.
    let c = corpus();
    let s = c.index.iter().find(|s| s.name.starts_with("flat-ids")).unwrap();
    let mut b = s.bytes.clone();
    let e = *Layout::read(&b).find(neardb::format::SectionKind::IDS.0).unwrap();
    let r = e.range(b.len()).unwrap();
    b[r].fill(0xff);
    layout::fix_checksums(&mut b);
    let out = oracle::exercise(&b, &s.vectors, &mut Rng::new(5));
    if out.refused.is_none() {
        assert!(out.violations.iter().any(|v| v.cause == "external-id-no-id"), "{:?}", out.violations);
    }
    let ids = [neardb::NO_ID; 4];
    let expect = oracle::Expect { k: 2, slots: 4, deleted: &|_| false, ids: Some(&ids), filter: None };
    let hits = [neardb::Neighbor::new(0, f32::NAN), neardb::Neighbor::new(0, 1.0)];
    let mut causes: Vec<String> = oracle::check_hits(&hits, &expect).into_iter().map(|v| v.cause).collect();
    causes.sort();
    assert_eq!(causes, ["duplicate-id", "external-id-no-id", "nan-distance"]);
}

#[test]
fn a_fixed_seed_run_finds_nothing() {
    let cfg = Config { seconds: 600.0, iterations: Some(5000), seed: 20_260_501, ..Config::default() };
    let report = runner::run(&cfg, corpus()).unwrap();
    assert_eq!(report.executions, 5000);
    println!("{}", report.summary());
    assert!(report.groups.is_empty(), "findings:\n{}", report.summary());
    let opened: u64 = report.kinds.values().map(|k| k.opened).sum();
    assert!(opened > 100, "too few mutants open to test anything:\n{}", report.summary());
}
