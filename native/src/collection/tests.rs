//! Collection tests: durability across reopen, torn logs, versions, filters against brute
//! force, and bad input.

use super::*;
use neardb_core::payload::{Condition, FieldValue, Keyword, Range};
use neardb_core::rng::Rng;
use serde_json::json;

const DIM: usize = 8;

fn vector(rng: &mut Rng) -> Vec<f32> {
    (0..DIM).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
}

/// Record `i`: tag "t{i % 10}", num i / n, on every third a list of labels.
fn record(rng: &mut Rng, i: u64, n: u64) -> Record {
    let mut meta = json!({"tag": format!("t{}", i % 10), "num": i as f64 / n as f64});
    if i.is_multiple_of(3) {
        meta["labels"] = json!(["x", format!("y{}", i % 4)]);
    }
    Record::new(i, vector(rng)).with_metadata(meta)
}

fn l2_config() -> CollectionConfig {
    CollectionConfig::new(DIM, Metric::L2).with_option("m", "8").with_option("ef_construction", "64")
}

/// Exact answer over `records` (id → vector, metadata) for a filter: ids, closest first,
/// ties by id.
fn brute_force(
    records: &BTreeMap<RecordId, Record>,
    q: &[f32],
    k: usize,
    filter: Option<&PayloadFilter>,
) -> Vec<RecordId> {
    let mut scored: Vec<(f32, RecordId)> = records
        .values()
        .filter(|r| filter.is_none_or(|f| matches(f, &r.id, &r.metadata)))
        .map(|r| (r.vector.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(), r.id.clone()))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}

fn matches(filter: &PayloadFilter, id: &RecordId, metadata: &Value) -> bool {
    let fields = indexed_fields(id, metadata);
    let grouped: Vec<(String, Vec<FieldValue>)> = {
        let mut g: BTreeMap<String, Vec<FieldValue>> = BTreeMap::new();
        for (n, v) in fields {
            g.entry(n.into_owned()).or_default().push(v);
        }
        g.into_iter().collect()
    };
    filter.matches(&|name: &str| grouped.iter().find(|(n, _)| n == name).map_or(&[][..], |(_, v)| &v[..]))
}

fn ids(hits: &[Hit]) -> Vec<RecordId> {
    hits.iter().map(|h| h.id.clone()).collect()
}

fn exact_options(filter: Option<&PayloadFilter>) -> SearchOptions<'_> {
    SearchOptions {
        filter,
        params: SearchParams::new().with_filter_strategy(neardb_core::FilterStrategy::Scan).with_ef(200),
        ..Default::default()
    }
}

#[test]
fn records_survive_reopen_from_the_log_and_from_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(1);
    let mut model = BTreeMap::new();
    {
        let c = Collection::create(dir.path(), l2_config()).unwrap();
        let batch: Vec<Record> = (0..300).map(|i| record(&mut rng, i, 300)).collect();
        c.upsert(&batch).unwrap();
        for r in batch {
            model.insert(r.id.clone(), r);
        }
        c.delete(&[RecordId::Num(5), RecordId::Num(17)]).unwrap();
        model.remove(&RecordId::Num(5));
        model.remove(&RecordId::Num(17));
        // A replaced record: its new vector and metadata win.
        let newer = Record::new(42u64, vec![0.5; DIM]).with_metadata(json!({"tag": "new"}));
        c.upsert(std::slice::from_ref(&newer)).unwrap();
        model.insert(newer.id.clone(), newer);
        assert_eq!(c.len(), model.len() as u64);
    }
    // Reopen: everything comes back from the log.
    let c = Collection::open(dir.path()).unwrap();
    assert_eq!(c.recovery().frames, 3);
    assert!(c.recovery().torn.is_none());
    let check = |c: &Collection| {
        assert_eq!(c.len(), model.len() as u64);
        for (id, r) in &model {
            assert_eq!(c.get(id).unwrap().as_ref(), Some(r), "{id}");
        }
        assert_eq!(c.get(&RecordId::Num(5)).unwrap(), None);
    };
    check(&c);
    // Commit: the records move into a segment; the log starts over.
    let v1 = c.commit(Some("first")).unwrap();
    assert_eq!((v1.version, v1.records, v1.segments), (1, model.len() as u64, 1));
    check(&c);
    drop(c);
    let c = Collection::open(dir.path()).unwrap();
    assert_eq!(c.recovery().frames, 0);
    check(&c);
    // Searches agree with brute force (exact plan; and the walk reaches the same at this ef).
    let mut rng = Rng::new(9);
    for _ in 0..20 {
        let q = vector(&mut rng);
        let hits = c.search(&q, 10, &exact_options(None)).unwrap();
        assert_eq!(ids(&hits), brute_force(&model, &q, 10, None));
        let walked = c.search(
            &q,
            10,
            &SearchOptions { params: SearchParams::new().with_ef(200), ..Default::default() },
        );
        assert_eq!(ids(&walked.unwrap()), brute_force(&model, &q, 10, None));
    }
}

#[test]
fn a_log_torn_at_every_byte_recovers_exactly_the_acknowledged_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(2);
    let mut states = Vec::new(); // (log length after the batch, model)
    let mut model: BTreeMap<RecordId, Record> = BTreeMap::new();
    {
        let c = Collection::create(dir.path(), l2_config()).unwrap();
        states.push((std::fs::metadata(dir.path().join(wal::file_name(1))).unwrap().len(), model.clone()));
        for b in 0..4u64 {
            let batch: Vec<Record> = (0..3).map(|i| record(&mut rng, b * 3 + i, 12)).collect();
            c.upsert(&batch).unwrap();
            for r in batch {
                model.insert(r.id.clone(), r);
            }
            if b == 2 {
                states.push((
                    std::fs::metadata(dir.path().join(wal::file_name(1))).unwrap().len(),
                    model.clone(),
                ));
                c.delete(&[RecordId::Num(1)]).unwrap();
                model.remove(&RecordId::Num(1));
            }
            states
                .push((std::fs::metadata(dir.path().join(wal::file_name(1))).unwrap().len(), model.clone()));
        }
    }
    let log = std::fs::read(dir.path().join(wal::file_name(1))).unwrap();
    let manifest = std::fs::read(dir.path().join(manifest::FILE)).unwrap();
    for cut in 16..=log.len() {
        let copy = tempfile::tempdir().unwrap();
        std::fs::write(copy.path().join(manifest::FILE), &manifest).unwrap();
        std::fs::write(copy.path().join(wal::file_name(1)), &log[..cut]).unwrap();
        let c = Collection::open(copy.path()).unwrap();
        // The model of the last change wholly within the cut.
        let (end, want) = states.iter().rev().find(|(end, _)| *end as usize <= cut).unwrap();
        assert_eq!(c.recovery().torn.is_some(), *end as usize != cut, "cut {cut}");
        assert_eq!(c.len(), want.len() as u64, "cut {cut}");
        for (id, r) in want {
            assert_eq!(c.get(id).unwrap().as_ref(), Some(r), "cut {cut}, {id}");
        }
        // Writing after recovery works, and survives another reopen.
        c.upsert(&[Record::new(999u64, vec![1.0; DIM])]).unwrap();
        drop(c);
        let c = Collection::open(copy.path()).unwrap();
        assert!(c.recovery().torn.is_none(), "cut {cut}");
        assert_eq!(c.len(), want.len() as u64 + 1);
    }
}

#[test]
fn versions_answer_as_committed_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(3);
    let c = Collection::create(dir.path(), l2_config()).unwrap();
    let batch: Vec<Record> = (0..200).map(|i| record(&mut rng, i, 200)).collect();
    c.upsert(&batch).unwrap();
    let v1 = c.commit(Some("c1")).unwrap();
    let q = batch[7].vector.clone();
    // Delete record 7 and replace record 8, then commit again.
    c.delete(&[RecordId::Num(7)]).unwrap();
    c.upsert(&[Record::new(8u64, vec![9.0; DIM])]).unwrap();
    let v2 = c.commit(Some("c2")).unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v2.records, 199);
    // Writes after the last commit are not in any version.
    c.upsert(&[Record::new(1000u64, q.clone())]).unwrap();

    let old = c.version("c1").unwrap();
    assert_eq!(old.len(), 200);
    assert_eq!(old.get(&RecordId::Num(7)).unwrap().unwrap().vector, batch[7].vector);
    assert_eq!(old.get(&RecordId::Num(8)).unwrap().unwrap().vector, batch[8].vector);
    assert_eq!(old.get(&RecordId::Num(1000)).unwrap(), None);
    let hits = old.search(&q, 1, &exact_options(None)).unwrap();
    assert_eq!(hits[0].id, RecordId::Num(7), "the version still answers with the deleted record");
    let new = c.version("2").unwrap();
    assert_eq!(new.get(&RecordId::Num(7)).unwrap(), None);
    assert_eq!(new.get(&RecordId::Num(8)).unwrap().unwrap().vector, vec![9.0; DIM]);
    let now = c.search(&q, 1, &exact_options(None)).unwrap();
    assert_eq!(now[0].id, RecordId::Num(1000));
    assert!(matches!(c.version("c3"), Err(CollectionError::UnknownVersion(_))));
    assert!(matches!(c.commit(Some("c1")), Err(CollectionError::DuplicateVersionName(_))));

    // Reopened, the versions are still there; compaction rewrites into one segment, and
    // releasing the old versions gives their files back.
    drop((old, new));
    drop(c);
    let c = Collection::open(dir.path()).unwrap();
    assert_eq!(
        c.versions().iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
        [Some("c1".into()), Some("c2".into())]
    );
    assert_eq!(c.len(), 200); // 199 committed + 1000 from the log
    let files_before = std::fs::read_dir(dir.path()).unwrap().count();
    let v = c.compact(None).unwrap();
    assert_eq!((v.segments, v.records), (1, 200));
    // Version 3 committed record 1000 from the log, version 4 is the compaction.
    assert_eq!(v.version, 4);
    let released = c.retain(1, false).unwrap();
    assert_eq!(released, [1, 2, 3]);
    let files_after: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files_after.len() < files_before, "{files_after:?}");
    assert_eq!(files_after.iter().filter(|f| f.ends_with(".neardb")).count(), 1, "{files_after:?}");
    assert_eq!(c.get(&RecordId::Num(1000)).unwrap().unwrap().vector, q);
    assert!(c.version("c1").is_err());
    drop(c);
    let c = Collection::open(dir.path()).unwrap();
    assert_eq!(c.len(), 200);
    assert_eq!(c.get(&RecordId::Num(8)).unwrap().unwrap().vector, vec![9.0; DIM]);
}

#[test]
fn filtered_searches_equal_brute_force_at_every_selectivity_and_are_never_short() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(4);
    let c = Collection::create(dir.path(), l2_config()).unwrap();
    let n = 1500u64;
    let mut model = BTreeMap::new();
    // Two segments and recent records, with deletions in each.
    for (lo, hi) in [(0, 600), (600, 1200), (1200, n)] {
        let batch: Vec<Record> = (lo..hi).map(|i| record(&mut rng, i, n)).collect();
        c.upsert(&batch).unwrap();
        for r in batch {
            model.insert(r.id.clone(), r);
        }
        let gone: Vec<RecordId> = (lo..hi).filter(|i| i % 11 == 0).map(RecordId::Num).collect();
        c.delete(&gone).unwrap();
        for id in gone {
            model.remove(&id);
        }
        if hi < n {
            c.commit(None).unwrap();
        }
    }
    let m = |field: &str, v: Keyword| Condition::Match { field: field.into(), value: v };
    let t = |s: &str| Keyword::Text(s.into());
    let filters = [
        PayloadFilter::default(),
        PayloadFilter {
            must: vec![Condition::Range {
                field: "num".into(),
                range: Range { lt: Some(0.5), ..Default::default() },
            }],
            ..Default::default()
        },
        PayloadFilter { must: vec![m("tag", t("t3"))], ..Default::default() },
        PayloadFilter {
            must: vec![
                m("tag", t("t3")),
                Condition::Range {
                    field: "num".into(),
                    range: Range { lt: Some(0.1), ..Default::default() },
                },
            ],
            ..Default::default()
        },
        PayloadFilter {
            should: vec![m("labels", t("y1")), m("tag", t("t9"))],
            must_not: vec![m("tag", t("t1"))],
            ..Default::default()
        },
        PayloadFilter { must: vec![m("tag", t("nothing"))], ..Default::default() },
        // Qdrant's JSON: ids (one deleted, one unknown) and a nested clause.
        parse_filter(r#"{"must": [{"has_id": [3, 4, 11, 700, 1400, 99999]}]}"#).unwrap(),
        parse_filter(r#"{"must": [{"key": "labels", "match": {"except": ["y0"]}}], "must_not": [{"must": [{"key": "num", "range": {"gte": 0.2, "lte": 0.8}}]}]}"#).unwrap(),
    ];
    let mut qrng = Rng::new(44);
    for f in &filters {
        let want_count = model.values().filter(|r| matches(f, &r.id, &r.metadata)).count() as u64;
        assert_eq!(c.count(Some(f)).unwrap(), want_count, "{f:?}");
        let mut recall = 0.0;
        let queries = 20;
        for _ in 0..queries {
            let q = vector(&mut qrng);
            let truth = brute_force(&model, &q, 10, Some(f));
            let (hits, stats) = c.search_with_stats(&q, 10, &exact_options(Some(f))).unwrap();
            assert_eq!(ids(&hits), truth, "{f:?}");
            assert_eq!(stats.matches, want_count);
            // The planner's choice (walk or scan per segment): never short, only matches.
            let auto = SearchOptions {
                filter: Some(f),
                params: SearchParams::new().with_ef(64),
                with_metadata: true,
                ..Default::default()
            };
            let hits = c.search(&q, 10, &auto).unwrap();
            assert_eq!(hits.len(), truth.len(), "{f:?}");
            assert!(hits.iter().all(|h| matches(f, &h.id, h.metadata.as_ref().unwrap())));
            recall += truth.iter().filter(|id| hits.iter().any(|h| &h.id == *id)).count() as f64
                / truth.len().max(1) as f64;
        }
        if want_count > 0 {
            assert!(recall / queries as f64 >= 0.95, "{f:?}: recall {}", recall / queries as f64);
        }
    }
}

#[test]
fn bad_input_gets_clear_errors_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collection::create(dir.path(), l2_config()).unwrap();
    let ok = Record::new(1u64, vec![0.0; DIM]);
    c.upsert(std::slice::from_ref(&ok)).unwrap();
    let err = |r: Result<()>| r.unwrap_err().to_string();
    assert!(err(c.upsert(&[Record::new(2u64, vec![0.0; 3])])).contains("dimension mismatch"));
    let mut nan = vec![0.0; DIM];
    nan[2] = f32::NAN;
    assert!(err(c.upsert(&[Record::new(2u64, nan)])).contains("non-finite"));
    assert!(err(c.upsert(&[ok.clone(), ok.clone()])).contains("more than once"));
    assert!(
        err(c.upsert(&[Record::new(3u64, vec![0.0; DIM]).with_metadata(json!([1]))])).contains("JSON object")
    );
    assert!(err(c.upsert(&[Record::new("", vec![0.0; DIM])])).contains("1 to 1024 bytes"));
    assert!(err(c.delete(&[RecordId::Num(77)])).contains("no record has id 77"));
    // A batch with one bad record adds none of it.
    assert!(c.upsert(&[Record::new(4u64, vec![0.0; DIM]), Record::new(5u64, vec![0.0; 2])]).is_err());
    assert_eq!(c.len(), 1);
    assert!(matches!(
        c.search(&[0.0; DIM], 0, &SearchOptions::default()),
        Err(CollectionError::Index(neardb_core::Error::ZeroK))
    ));
    assert!(c.search(&[0.0; 3], 1, &SearchOptions::default()).is_err());
    // Refused writes never reached the log.
    drop(c);
    let c = Collection::open(dir.path()).unwrap();
    assert_eq!((c.len(), c.recovery().frames), (1, 1));
    assert!(matches!(Collection::create(dir.path(), l2_config()), Err(CollectionError::Exists(_))));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(Collection::open(empty.path()), Err(CollectionError::NotFound(_))));
    // Cosine refuses a zero vector; a collection of an index kind that segments cannot be
    // is refused.
    let cos = tempfile::tempdir().unwrap();
    let c = Collection::create(cos.path(), CollectionConfig::new(DIM, Metric::Cosine)).unwrap();
    assert!(err(c.upsert(&[Record::new(1u64, vec![0.0; DIM])])).contains("zero"));
    let ivf = tempfile::tempdir().unwrap();
    assert!(Collection::create(
        ivf.path(),
        CollectionConfig::new(DIM, Metric::L2).with_option("index", "ivfpq")
    )
    .is_err());
}

#[test]
fn damaged_files_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(5);
    {
        let c = Collection::create(dir.path(), l2_config()).unwrap();
        let batch: Vec<Record> = (0..50).map(|i| record(&mut rng, i, 50)).collect();
        c.upsert(&batch).unwrap();
        c.delete(&[RecordId::Num(3)]).unwrap();
        c.commit(None).unwrap();
        c.delete(&[RecordId::Num(4)]).unwrap();
        c.commit(None).unwrap();
    }
    let files: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    for file in files.iter().filter(|f| !f.to_string_lossy().ends_with(".log")) {
        let original = std::fs::read(file).unwrap();
        for at in [0, original.len() / 2, original.len() - 1] {
            let mut bytes = original.clone();
            bytes[at] ^= 0x41;
            std::fs::write(file, &bytes).unwrap();
            // Opening (and reading the records) fails cleanly or, where the flip hit bytes
            // no check covers, still opens; it never panics.
            if let Ok(c) = Collection::open(dir.path()) {
                let _ = c.get(&RecordId::Num(1));
            }
        }
        std::fs::write(file, &original[..original.len() / 2]).unwrap();
        // Every file is read by the head or by an older version that is still kept.
        let r = Collection::open(dir.path())
            .and_then(|c| c.versions().iter().try_for_each(|v| c.version(&v.version.to_string()).map(drop)));
        assert!(r.is_err(), "{} cut in half still opened", file.display());
        std::fs::write(file, &original).unwrap();
    }
    assert_eq!(Collection::open(dir.path()).unwrap().len(), 48);
}

#[test]
fn duplicates_and_neighbours_find_exactly_the_close_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(6);
    let c = Collection::create(dir.path(), l2_config()).unwrap();
    // 200 scattered records, and 10 near copies of the first ten (string ids).
    let mut records: Vec<Record> = (0..200)
        .map(|i| Record::new(i as u64, vector(&mut rng).iter().map(|x| x * 10.0).collect()))
        .collect();
    for i in 0..10 {
        let mut v = records[i].vector.clone();
        v[0] += 0.001;
        records.push(Record::new(format!("copy-{i}"), v));
    }
    c.upsert(&records[..150]).unwrap();
    c.commit(None).unwrap();
    c.upsert(&records[150..]).unwrap();
    let threshold = 0.01;
    let mut want = Vec::new();
    for (i, a) in records.iter().enumerate() {
        for b in &records[i + 1..] {
            let d: f32 = a.vector.iter().zip(&b.vector).map(|(x, y)| (x - y) * (x - y)).sum();
            if d < threshold {
                want.push(if a.id < b.id {
                    (a.id.clone(), b.id.clone())
                } else {
                    (b.id.clone(), a.id.clone())
                });
            }
        }
    }
    want.sort();
    assert_eq!(want.len(), 10);
    let mut got: Vec<(RecordId, RecordId)> =
        c.duplicates(threshold, 5).unwrap().into_iter().map(|(a, b, _)| (a, b)).collect();
    got.sort();
    assert_eq!(got, want);
    let n = c.neighbours_of(&RecordId::Num(3), 3).unwrap();
    assert_eq!(n[0].id, RecordId::from("copy-3"));
    assert!(n.iter().all(|h| h.id != RecordId::Num(3)));
    assert!(matches!(c.neighbours_of(&RecordId::Num(9999), 3), Err(CollectionError::UnknownId(_))));
}

#[test]
fn commits_run_beside_writes_and_searches_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collection::create(dir.path(), l2_config()).unwrap();
    let n = 3000u64;
    let records: Vec<Record> = {
        let mut rng = Rng::new(7);
        (0..n).map(|i| record(&mut rng, i, n)).collect()
    };
    c.upsert(&records[..500]).unwrap();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for chunk in records[500..].chunks(100) {
                c.upsert(chunk).unwrap();
                // Replace and delete records that may sit in a segment, in the recent
                // records, or in a table being committed.
                let id = chunk[0].id.clone();
                c.delete(std::slice::from_ref(&id)).unwrap();
                c.upsert(&chunk[..1]).unwrap();
            }
        });
        let committer = scope.spawn(|| {
            for _ in 0..4 {
                c.commit(None).unwrap();
            }
        });
        let searcher = scope.spawn(|| {
            let mut rng = Rng::new(8);
            for _ in 0..50 {
                let hits = c.search(&vector(&mut rng), 5, &SearchOptions::default()).unwrap();
                assert_eq!(hits.len(), 5);
            }
        });
        writer.join().unwrap();
        committer.join().unwrap();
        searcher.join().unwrap();
    });
    c.commit(Some("last")).unwrap();
    let check = |c: &Collection| {
        assert_eq!(c.len(), n);
        assert_eq!(c.count(None).unwrap(), n);
        for r in &records {
            assert_eq!(c.get(&r.id).unwrap().as_ref(), Some(r));
        }
        // Each record is found by its own vector.
        for r in records.iter().step_by(97) {
            let hits = c.search(&r.vector, 1, &exact_options(None)).unwrap();
            assert_eq!(hits[0].id, r.id);
        }
    };
    check(&c);
    assert_eq!(c.versions().len(), 5);
    drop(c);
    let c = Collection::open(dir.path()).unwrap();
    check(&c);
}

#[test]
fn a_commit_cut_short_after_freezing_replays_both_log_generations() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(9);
    let records: Vec<Record> = (0..40).map(|i| record(&mut rng, i, 40)).collect();
    {
        let c = Collection::create(dir.path(), l2_config()).unwrap();
        c.upsert(&records[..20]).unwrap();
        c.commit(None).unwrap();
        c.upsert(&records[20..30]).unwrap();
    }
    // What a crash between freezing and the manifest leaves: the manifest names generation 2,
    // which holds records 20..30, and generation 3 took the writes after the freeze.
    {
        let c = Collection::open(dir.path()).unwrap();
        let mut log = lock(&c.log);
        let next = Wal::create(dir.path(), 3).unwrap();
        log.file = Arc::new(next.sync_handle().unwrap());
        drop(std::mem::replace(&mut log.wal, next));
        drop(log);
        c.syncer.mark_synced((3, 16));
        c.upsert(&records[30..]).unwrap();
        c.delete(&[RecordId::Num(25)]).unwrap();
    }
    let c = Collection::open(dir.path()).unwrap();
    assert_eq!(c.recovery().frames, 3);
    assert_eq!(c.len(), 39);
    for r in records.iter().filter(|r| r.id != RecordId::Num(25)) {
        assert_eq!(c.get(&r.id).unwrap().as_ref(), Some(r));
    }
    // The next commit folds both generations into the segments and drops their logs.
    c.commit(None).unwrap();
    drop(c);
    let c = Collection::open(dir.path()).unwrap();
    assert_eq!((c.len(), c.recovery().frames), (39, 0));
    let logs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".log"))
        .count();
    assert_eq!(logs, 1);
}

#[test]
fn compaction_beside_a_writer_never_brings_back_a_replaced_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(10);
    let c = Collection::create(dir.path(), l2_config()).unwrap();
    let records: Vec<Record> = (0..3000).map(|i| record(&mut rng, i, 3000)).collect();
    c.upsert(&records).unwrap();
    c.commit(None).unwrap();
    let newer = |i: u64| Record::new(i, vec![i as f32; DIM]).with_metadata(json!({"tag": "newer"}));
    for _ in 0..3 {
        std::thread::scope(|scope| {
            scope.spawn(|| c.compact(None).unwrap());
            scope.spawn(|| {
                for lo in (0..3000).step_by(50) {
                    let batch: Vec<Record> = (lo..lo + 5).map(newer).collect();
                    c.upsert(&batch).unwrap();
                }
            });
        });
        for lo in (0..3000u64).step_by(50) {
            for i in lo..lo + 5 {
                assert_eq!(c.get(&RecordId::Num(i)).unwrap(), Some(newer(i)), "record {i}");
            }
        }
        assert_eq!(c.len(), 3000);
    }
}

#[test]
fn scroll_pages_through_matches_in_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(11);
    let c = Collection::create(dir.path(), l2_config()).unwrap();
    let mut records: Vec<Record> = (0..300).map(|i| record(&mut rng, i, 300)).collect();
    records.push(Record::new("b", vector(&mut rng)));
    records.push(Record::new("a", vector(&mut rng)));
    c.upsert(&records[..150]).unwrap();
    c.commit(None).unwrap();
    c.upsert(&records[150..]).unwrap();
    let t3 = parse_filter(r#"{"must": [{"key": "tag", "match": {"value": "t3"}}]}"#).unwrap();
    for (filter, want) in [
        (None, (0..300).map(RecordId::Num).chain(["a", "b"].map(RecordId::from)).collect::<Vec<_>>()),
        (Some(&t3), (0..300).filter(|i| i % 10 == 3).map(RecordId::Num).collect()),
    ] {
        // Pages of 7, each starting at the id the last one stopped before.
        let mut got = Vec::new();
        let mut from = None;
        loop {
            let mut page = c.scroll(filter, from.as_ref(), 8).unwrap();
            from = if page.len() == 8 { page.pop() } else { None };
            got.extend(page);
            if from.is_none() {
                break;
            }
        }
        assert_eq!(got, want);
    }
}

#[test]
fn recent_records_are_searched_through_their_graph_and_a_commit_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = OpenOptions { index_recent_from: 64, ..OpenOptions::default() };
    let mut rng = Rng::new(7);
    let mut model = BTreeMap::new();
    drop(Collection::create(dir.path(), l2_config()).unwrap());
    let c = Collection::open_with_options(dir.path(), options).unwrap();
    // 1,500 records, then a third of them replaced and a tenth deleted.
    for lo in (0..1500).step_by(100) {
        let batch: Vec<Record> = (lo..lo + 100).map(|i| record(&mut rng, i, 1500)).collect();
        c.upsert(&batch).unwrap();
        model.extend(batch.into_iter().map(|r| (r.id.clone(), r)));
    }
    let replaced: Vec<Record> = (0..1500).step_by(3).map(|i| record(&mut rng, i, 1500)).collect();
    c.upsert(&replaced).unwrap();
    model.extend(replaced.into_iter().map(|r| (r.id.clone(), r)));
    let gone: Vec<RecordId> = (1..1500).step_by(10).map(RecordId::from).collect();
    c.delete(&gone).unwrap();
    for id in &gone {
        model.remove(id);
    }
    let start = std::time::Instant::now();
    while c.unindexed_rows() > 0 {
        assert!(start.elapsed().as_secs() < 120, "the indexer never caught up");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let filter = PayloadFilter {
        must: vec![Condition::Match { field: "tag".into(), value: Keyword::Text("t3".into()) }],
        ..Default::default()
    };
    let check = |c: &Collection, model: &BTreeMap<RecordId, Record>, through_graph: bool| {
        let mut qrng = Rng::new(99);
        let (mut found, mut wanted) = (0, 0);
        for _ in 0..40 {
            let q = vector(&mut qrng);
            for f in [None, Some(&filter)] {
                let opts = SearchOptions {
                    filter: f,
                    params: SearchParams::new().with_ef(64),
                    ..Default::default()
                };
                let (hits, stats) = c.search_with_stats(&q, 10, &opts).unwrap();
                let truth = brute_force(model, &q, 10, f);
                // Never short, only live matching records, each once.
                assert_eq!(hits.len(), truth.len());
                let mut seen = HashSet::new();
                for h in &hits {
                    let r = &model[&h.id];
                    assert!(f.is_none_or(|f| matches(f, &r.id, &r.metadata)));
                    assert!(seen.insert(h.id.clone()));
                }
                if through_graph && f.is_none() {
                    assert!(stats.parts.iter().any(|p| p.plan != neardb_core::Plan::Scan), "{stats:?}");
                }
                found += hits.iter().filter(|h| truth.contains(&h.id)).count();
                wanted += truth.len();
            }
        }
        let recall = found as f64 / wanted as f64;
        assert!(recall >= 0.9, "recall {recall}");
    };
    check(&c, &model, true);
    // Records arriving now are searched through the graph once linked and scanned until then:
    // whichever part holds them, each is found once.
    let more: Vec<Record> = (1500..1700).map(|i| record(&mut rng, i, 1500)).collect();
    c.upsert(&more).unwrap();
    model.extend(more.into_iter().map(|r| (r.id.clone(), r)));
    check(&c, &model, false);

    // The commit writes the graph as the segment, rows replaced or deleted before it included
    // (so the new segment starts with deleted rows); every record reads back as upserted.
    c.commit(None).unwrap();
    assert!(c.deleted_fraction() > 0.2, "{}", c.deleted_fraction());
    check(&c, &model, true);
    drop(c);
    let c = Collection::open_with_options(dir.path(), options).unwrap();
    assert_eq!(c.len(), model.len() as u64);
    for r in model.values() {
        assert_eq!(c.get(&r.id).unwrap().as_ref(), Some(r));
    }
    for id in &gone {
        assert_eq!(c.get(id).unwrap(), None);
    }
    check(&c, &model, true);
    let mut qrng = Rng::new(5);
    for _ in 0..20 {
        let q = vector(&mut qrng);
        let hits = c.search(&q, 10, &exact_options(Some(&filter))).unwrap();
        assert_eq!(ids(&hits), brute_force(&model, &q, 10, Some(&filter)));
    }
}

#[test]
fn every_durability_policy_keeps_every_write_across_a_clean_close() {
    for policy in [Durability::Sync, Durability::Batch { bytes: 4096 }, Durability::None] {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng::new(13);
        let mut model = BTreeMap::new();
        drop(Collection::create(dir.path(), l2_config()).unwrap());
        {
            let c = Collection::open_with(dir.path(), policy).unwrap();
            // Writers on two threads, batches of 10, some replacing earlier records.
            let batches: Vec<Vec<Record>> = (0..40)
                .map(|b| (0..10).map(|i| record(&mut rng, (b * 7 + i) % 300, 300)).collect())
                .collect();
            for batch in &batches {
                for r in batch {
                    model.insert(r.id.clone(), r.clone());
                }
            }
            let (odd, even): (Vec<_>, Vec<_>) = batches.iter().enumerate().partition(|(i, _)| i % 2 == 1);
            std::thread::scope(|s| {
                for half in [&odd, &even] {
                    let c = &c;
                    s.spawn(move || {
                        for (_, batch) in half.iter() {
                            c.upsert(batch).unwrap();
                        }
                    });
                }
            });
            if policy == Durability::None {
                c.flush().unwrap();
            }
            assert_eq!(c.len(), model.len() as u64);
            // The two threads interleave, so which write of a shared id won is not known here:
            // every id is present.
            for id in model.keys() {
                assert!(c.contains(id));
            }
            c.delete(&[model.keys().next().unwrap().clone()]).unwrap();
        }
        let c = Collection::open(dir.path()).unwrap();
        assert_eq!(c.len(), model.len() as u64 - 1, "{policy:?}");
        assert_eq!(c.recovery().torn, None, "{policy:?}");
        assert_eq!(c.recovery().frames, 41, "{policy:?}");
    }
}

#[test]
fn a_log_cut_short_while_it_was_created_starts_again_empty() {
    let mut rng = Rng::new(17);
    let records: Vec<Record> = (0..30).map(|i| record(&mut rng, i, 30)).collect();
    for cut in 0..=16 {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Collection::create(dir.path(), l2_config()).unwrap();
            c.upsert(&records[..20]).unwrap();
            c.commit(None).unwrap();
            c.upsert(&records[20..]).unwrap();
        }
        // What a kill inside the next freeze's Wal::create leaves: generation 3's file with
        // part of its header (or, at 16, a whole header of the wrong generation).
        let mut header = b"NEARWAL1".to_vec();
        header.extend_from_slice(&(if cut == 16 { 9u64 } else { 3u64 }).to_le_bytes());
        std::fs::write(dir.path().join(wal::file_name(3)), &header[..cut]).unwrap();
        let c = Collection::open(dir.path()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(c.len(), 30);
        c.delete(&[RecordId::Num(0)]).unwrap();
        drop(c);
        let c = Collection::open(dir.path()).unwrap();
        assert_eq!(c.len(), 29);
        assert_eq!(c.get(&RecordId::Num(29)).unwrap().as_ref(), Some(&records[29]));
    }
}

#[test]
fn a_change_refused_after_logging_leaves_neither_memory_nor_log_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(21);
    let records: Vec<Record> = (0..30).map(|i| record(&mut rng, i, 30)).collect();
    {
        let c = Collection::create(dir.path(), l2_config()).unwrap();
        c.upsert(&records[..10]).unwrap();
        FAIL_NEXT_APPLY.with(|f| f.set(true));
        assert!(c.upsert(&records[10..20]).is_err());
        assert_eq!(c.len(), 10);
        // The log was cut back: the next frames take the refused one's place, and are synced.
        c.upsert(&records[20..]).unwrap();
        c.upsert(&records[20..21]).unwrap();
        assert_eq!(c.len(), 20);
    }
    let c = Collection::open(dir.path()).unwrap();
    assert_eq!((c.recovery().frames, c.recovery().torn.clone()), (3, None));
    assert_eq!(c.len(), 20);
    assert_eq!(c.get(&RecordId::Num(15)).unwrap(), None);
    assert_eq!(c.get(&RecordId::Num(25)).unwrap().as_ref(), Some(&records[25]));
}

#[test]
fn an_ssd_collection_keeps_its_segments_on_disk_and_answers_like_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(15);
    let config = CollectionConfig::new(DIM, Metric::L2)
        .with_option("index", "disk")
        .with_option("r", "16")
        .with_option("l", "50");
    let c = Collection::create(dir.path(), config).unwrap();
    let mut model = BTreeMap::new();
    let n = 1000u64;
    // A large commit (an SSD segment), then a small one (under 256 rows: flat).
    for (lo, hi) in [(0, 800), (800, n)] {
        let batch: Vec<Record> = (lo..hi).map(|i| record(&mut rng, i, n)).collect();
        c.upsert(&batch).unwrap();
        for r in batch {
            model.insert(r.id.clone(), r);
        }
        let gone: Vec<RecordId> = (lo..hi).filter(|i| i % 13 == 0).map(RecordId::Num).collect();
        c.delete(&gone).unwrap();
        for id in gone {
            model.remove(&id);
        }
        c.commit(None).unwrap();
    }
    let kinds = |c: &Collection| -> Vec<bool> {
        c.read_head()
            .parts
            .iter()
            .map(|p| matches!(p.segment.index, segment::SegmentIndex::Disk(_)))
            .collect()
    };
    assert_eq!(kinds(&c), vec![true, false]);
    // A record deleted from the SSD segment after its commit.
    c.delete(&[RecordId::Num(101)]).unwrap();
    model.remove(&RecordId::Num(101));
    let filters = [
        None,
        Some(PayloadFilter {
            must: vec![Condition::Match { field: "tag".into(), value: Keyword::Text("t3".into()) }],
            ..Default::default()
        }),
        Some(parse_filter(r#"{"must": [{"has_id": [3, 4, 101, 640, 950]}]}"#).unwrap()),
    ];
    let check = |c: &Collection, what: &str| {
        for (id, r) in &model {
            assert_eq!(c.get(id).unwrap().as_ref(), Some(r), "{what}: {id}");
        }
        assert_eq!(c.get(&RecordId::Num(101)).unwrap(), None);
        let mut qrng = Rng::new(7);
        for f in &filters {
            let mut recall = 0.0;
            for _ in 0..20 {
                let q = vector(&mut qrng);
                let truth = brute_force(&model, &q, 10, f.as_ref());
                let options = SearchOptions {
                    filter: f.as_ref(),
                    params: SearchParams::new().with_ef(64),
                    with_metadata: true,
                    ..Default::default()
                };
                let hits = c.search(&q, 10, &options).unwrap();
                assert_eq!(hits.len(), truth.len(), "{what}: never short ({f:?})");
                assert!(hits.iter().all(|h| f.as_ref().is_none_or(|f| matches(
                    f,
                    &h.id,
                    h.metadata.as_ref().unwrap()
                ))));
                assert!(hits.iter().all(|h| model.contains_key(&h.id)), "{what}: a deleted record answered");
                recall += truth.iter().filter(|id| hits.iter().any(|h| &h.id == *id)).count() as f64
                    / truth.len().max(1) as f64;
            }
            assert!(recall / 20.0 >= 0.95, "{what} {f:?}: recall {}", recall / 20.0);
        }
    };
    check(&c, "committed");
    c.commit(None).unwrap();
    drop(c);
    let c = Collection::open(dir.path()).unwrap();
    check(&c, "reopened");
    // Compaction reads the SSD segment front to back into one new SSD segment.
    c.compact(None).unwrap();
    assert_eq!(kinds(&c), vec![true]);
    check(&c, "compacted");
    // quantize sq8 is not an SSD segment's form.
    let bad =
        CollectionConfig::new(DIM, Metric::L2).with_option("index", "disk").with_option("quantize", "sq8");
    let err = Collection::create(dir.path().join("bad"), bad).err().unwrap();
    assert!(err.to_string().contains("sq8"), "{err}");
}
