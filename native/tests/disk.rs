//! The SSD index: it answers exactly as the same steered search over the in-memory graph
//! (same graph, same PQ codes) with either reader, with and without a node cache; recall
//! against exact search; files that lie or end early are errors; and a file laid out for a
//! billion 1024-d vectors is addressed past 32 bits.

use std::os::unix::fs::FileExt;
use std::path::Path;

use neardb::disk::{
    open_reader, relayout_disk_index, write_disk_index, DiskError, DiskIndex, DiskOpenOptions,
    DiskSearchParams, DiskWriteParams, Header, ReaderKind, SECTOR,
};
use neardb::gen::{DataKind, DataSpec, Generator};
use neardb::graph::{steered_search, NodeStore, Scratch, SteerParams};
use neardb::vectors::VectorForm;
use neardb::{
    Filter, FlatIndex, Kernels, Metric, Neighbor, SearchParams, VamanaIndex, VamanaParams, VectorSearch,
};

const DIM: usize = 32;

fn data(metric: Metric, n: usize, stream: u64) -> Vec<f32> {
    let g = Generator::new(DataSpec { kind: DataKind::Clustered, dim: DIM, metric, clusters: 12, seed: 9 });
    g.rows(stream, 0, n)
}

/// Exact search over `base`, the ground truth.
fn exact(metric: Metric, base: &[f32]) -> FlatIndex {
    let mut flat = FlatIndex::new(DIM, metric).unwrap();
    flat.add(base).unwrap();
    flat
}

fn vamana(metric: Metric, base: &[f32]) -> VamanaIndex {
    let params = VamanaParams { r: 16, l: 50, alpha: 1.2, seed: 3 };
    let mut index = VamanaIndex::new(DIM, metric, params).unwrap();
    index.build(base).unwrap();
    index
}

/// The in-memory graph as a node store that sends each node's full vector with its list,
/// numbered as the file numbers its nodes (`order[p]` is the slot at position `p`).
struct InMemory<'a> {
    index: &'a VamanaIndex,
    order: &'a [u32],
    position: Vec<u32>,
}

impl<'a> InMemory<'a> {
    fn new(index: &'a VamanaIndex, order: &'a [u32]) -> Self {
        let mut position = vec![0; order.len()];
        for (p, &slot) in order.iter().enumerate() {
            position[slot as usize] = p as u32;
        }
        Self { index, order, position }
    }
}

impl NodeStore for InMemory<'_> {
    type Error = std::convert::Infallible;
    type Links<'b>
        = std::vec::IntoIter<u32>
    where
        Self: 'b;
    fn node_count(&self) -> usize {
        self.index.slot_count()
    }
    fn fetch<F>(&self, ids: &[u32], mut visit: F) -> Result<(), Self::Error>
    where
        F: FnMut(u32, std::vec::IntoIter<u32>, Option<&[f32]>),
    {
        for &p in ids {
            let slot = self.order[p as usize];
            let v = self.index.get_decoded(slot).unwrap();
            let links: Vec<u32> =
                self.index.neighbors(slot).iter().map(|&l| self.position[l as usize]).collect();
            visit(p, links.into_iter(), Some(&v));
        }
        Ok(())
    }
}

fn write(dir: &Path, name: &str, index: &VamanaIndex, f16: bool) -> std::path::PathBuf {
    write_report(dir, name, index, f16).0
}

fn write_report(dir: &Path, name: &str, index: &VamanaIndex, f16: bool) -> (std::path::PathBuf, Vec<u32>) {
    write_blocks(dir, name, index, f16, None)
}

fn write_blocks(
    dir: &Path,
    name: &str,
    index: &VamanaIndex,
    f16: bool,
    block_sectors: Option<u32>,
) -> (std::path::PathBuf, Vec<u32>) {
    let path = dir.join(name);
    let params = DiskWriteParams { pq_bytes: 8, f16, seed: 5, placement: true, block_sectors };
    let report = write_disk_index(&path, index, None, params).unwrap();
    (path, report.order)
}

fn readers() -> Vec<ReaderKind> {
    let mut kinds = vec![ReaderKind::Pread];
    // io_uring where this kernel allows it (the fallback is what Auto does elsewhere).
    let probe = tempfile::NamedTempFile::new().unwrap();
    probe.as_file().set_len(SECTOR as u64).unwrap();
    if open_reader(probe.path(), ReaderKind::Uring, false).is_ok() {
        kinds.push(ReaderKind::Uring);
    } else {
        eprintln!("io_uring refused here: only the pread reader is tested");
    }
    kinds
}

fn open(path: &Path, reader: ReaderKind, cache_nodes: u64, sector_neighbors: bool) -> DiskIndex {
    let opts = DiskOpenOptions { reader, direct: true, cache_nodes, sector_neighbors, sampled_entries: true };
    DiskIndex::open(path, opts).unwrap()
}

#[test]
fn the_plain_disk_walk_is_the_in_memory_walk_over_the_same_graph() {
    let dir = tempfile::tempdir().unwrap();
    let base = data(Metric::L2, 2000, 0);
    let queries = data(Metric::L2, 20, 1);
    let index = vamana(Metric::L2, &base);
    for (kind, blocks) in readers().into_iter().flat_map(|k| [(k, 1), (k, 2)]) {
        let (path, order) = write_blocks(dir.path(), "a.disk", &index, false, Some(blocks));
        // The file holds the graph: every node's links are the in-memory links, renumbered.
        let reference = InMemory::new(&index, &order);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().enumerate().all(|(i, &s)| s == i as u32), "placement is a permutation");
        let disk = open(&path, kind, 0, false);
        assert_eq!(disk.header().block_sectors, blocks);
        assert_eq!(disk.reader().0, if kind == ReaderKind::Pread { "pread" } else { "io_uring" });
        let mut scratch = Scratch::default();
        for q in queries.chunks_exact(DIM) {
            let (got, stats) =
                disk.search(q, 10, DiskSearchParams { l: 40, beam: 4, plan: None }, None).unwrap();
            let mut want: Vec<Neighbor> = Vec::new();
            let steer = SteerParams { l: 40, width: 4, ride: 1 };
            let medoid = disk.header().medoid as u32;
            assert_eq!(order[medoid as usize], index.medoid().unwrap());
            let walked = steered_search(
                &reference,
                disk.guide(),
                Kernels::best(),
                Metric::L2,
                medoid,
                q,
                10,
                steer,
                None,
                &mut scratch,
                &mut want,
            )
            .unwrap();
            // The file answers rows (here: slots); the reference answers positions.
            for n in want.iter_mut() {
                n.id = order[n.id as usize];
            }
            assert_eq!(got, want, "{kind:?}");
            assert_eq!((stats.rounds, stats.expanded), (walked.walk.rounds, walked.walk.expanded));
            assert_eq!(stats.pq_distances, walked.walk.distances);
            // Each expanded node was read unless its block already had been in this search.
            assert!(stats.reads <= stats.expanded as u64 * blocks as u64 && stats.reads > 0);
            assert_eq!(stats.reads % blocks as u64, 0, "reads count sectors, whole blocks at a time");
            assert_eq!(stats.cache_hits, 0);
        }
    }
}

#[test]
fn walks_started_near_the_query_take_fewer_rounds_for_the_same_recall() {
    let dir = tempfile::tempdir().unwrap();
    let base = data(Metric::L2, 6000, 0);
    let queries = data(Metric::L2, 100, 1);
    let index = vamana(Metric::L2, &base);
    let path = write(dir.path(), "a.disk", &index, false);
    let truth = exact(Metric::L2, &base);
    let measure = |sampled_entries: bool| {
        let opts = DiskOpenOptions { sampled_entries, ..DiskOpenOptions::default() };
        recall_and_work(&DiskIndex::open(&path, opts).unwrap(), &truth, &queries, 40)
    };
    let (medoid_recall, medoid_rounds, medoid_reads, _) = measure(false);
    let (sampled_recall, sampled_rounds, sampled_reads, sampled_distances) = measure(true);
    eprintln!(
        "medoid start: recall {medoid_recall}, {medoid_rounds} rounds, {medoid_reads} reads; \
         sampled: recall {sampled_recall}, {sampled_rounds} rounds, {sampled_reads} reads"
    );
    assert!(medoid_recall > 0.85, "{medoid_recall}");
    assert!(sampled_recall >= medoid_recall - 0.01, "{sampled_recall} against {medoid_recall}");
    assert!(sampled_rounds < medoid_rounds, "{sampled_rounds} rounds against {medoid_rounds}");
    assert!(sampled_reads < medoid_reads, "{sampled_reads} reads against {medoid_reads}");
    // Each search scored the sample's codes (2√6000 = 154 of them, one may be the medoid) on
    // top of its walk.
    assert!(sampled_distances >= 100 * 153, "{sampled_distances} PQ distances");
}

#[test]
fn a_relayout_into_two_sector_blocks_keeps_graph_vectors_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let base = data(Metric::Cosine, 3000, 0);
    let queries = data(Metric::Cosine, 40, 1);
    let index = vamana(Metric::Cosine, &base);
    // Rows that are not slots, so a relayout that lost them would answer wrong ids.
    let rows: Vec<u32> = (0..3000u32).map(|s| s * 7 + 5).collect();
    let one = dir.path().join("one.disk");
    let params = DiskWriteParams { pq_bytes: 8, f16: true, seed: 5, placement: true, block_sectors: Some(1) };
    write_disk_index(&one, &index, Some(&rows), params).unwrap();
    let two = dir.path().join("two.disk");
    let report =
        relayout_disk_index(&one, &two, DiskWriteParams { block_sectors: Some(2), ..params }).unwrap();
    let (a, b) = (open(&one, ReaderKind::Pread, 0, true), open(&two, ReaderKind::Pread, 0, true));
    assert_eq!((b.header().block_sectors, report.block_sectors), (2, 2));
    assert_eq!(b.header().nodes_per_block(), 8192 / b.header().node_bytes());
    assert!(b.header().nodes_per_block() > 2 * a.header().nodes_per_block() - 1);
    // Every row's vector survives bit for bit (binary16 decoded and encoded again).
    for &row in rows.iter().step_by(37) {
        assert_eq!(a.vector(row).unwrap(), b.vector(row).unwrap(), "row {row}");
    }
    assert_eq!(b.vector(6).unwrap(), None, "a row no node holds");
    // Each node keeps its links: the medoid's neighbours are the same rows.
    let exact = exact(Metric::Cosine, &base);
    let mut hits = 0;
    for q in queries.chunks_exact(DIM) {
        let (got, stats) = b.search(q, 10, DiskSearchParams { l: 60, beam: 4, plan: None }, None).unwrap();
        assert_eq!(stats.reads % 2, 0);
        let want = exact.search(q, 10, &SearchParams::default(), None).unwrap();
        hits += got.iter().filter(|n| want.iter().any(|w| rows[w.id as usize] == n.id)).count();
    }
    let r = hits as f64 / 400.0;
    assert!(r >= 0.93, "recall after the relayout {r}");
    // Every reader reads the blocks alike.
    let mut kinds = readers();
    kinds.push(ReaderKind::Mmap);
    for kind in kinds {
        let other = open(&two, kind, 0, true);
        for q in queries.chunks_exact(DIM).take(10) {
            let p = DiskSearchParams { l: 40, beam: 4, plan: None };
            assert_eq!(other.search(q, 10, p, None).unwrap(), b.search(q, 10, p, None).unwrap(), "{kind:?}");
        }
    }
    // In place: the file is replaced once the new one is complete.
    relayout_disk_index(&two, &two, DiskWriteParams { block_sectors: Some(1), ..params }).unwrap();
    assert_eq!(open(&two, ReaderKind::Pread, 0, true).header().block_sectors, 1);
    // Blocks a writer must refuse.
    for bad in [0, 17] {
        let err = relayout_disk_index(&one, &two, DiskWriteParams { block_sectors: Some(bad), ..params })
            .unwrap_err();
        assert!(err.to_string().contains("1 to 16"), "{err}");
    }
    let missing = relayout_disk_index(&dir.path().join("none.disk"), &two, params).unwrap_err();
    assert!(matches!(missing, DiskError::Io { .. }), "{missing}");
}

#[test]
fn whole_sectors_read_less_for_as_much_recall_and_every_reader_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let base = data(Metric::L2, 4000, 0);
    let queries = data(Metric::L2, 40, 1);
    let index = vamana(Metric::L2, &base);
    let exact = exact(Metric::L2, &base);
    let path = write(dir.path(), "b.disk", &index, false);
    let p = DiskSearchParams { l: 30, beam: 4, plan: None };
    let mean_reads_at = |d: &DiskIndex, l: usize| -> f64 {
        let p = DiskSearchParams { l, beam: 4, plan: None };
        queries.chunks_exact(DIM).map(|q| d.search(q, 10, p, None).unwrap().1.reads as f64).sum::<f64>()
            / 40.0
    };
    let mean_reads = |d: &DiskIndex| mean_reads_at(d, 30);
    let plain = open(&path, ReaderKind::Pread, 0, false);
    let whole = open(&path, ReaderKind::Pread, 0, true);
    // Reads at the cheapest list size that reaches recall 0.95, with and without whole sectors.
    let reads_for_recall = |d: &DiskIndex| -> f64 {
        let l =
            [10, 15, 20, 30, 40, 60, 80, 120].into_iter().find(|&l| recall(d, &exact, &queries, l) >= 0.95);
        mean_reads_at(d, l.expect("recall 0.95 within L = 120"))
    };
    let (plain_reads, whole_reads) = (reads_for_recall(&plain), reads_for_recall(&whole));
    eprintln!("reads at recall 0.95: whole sectors {whole_reads}, plain {plain_reads}");
    assert!(whole_reads < plain_reads, "whole sectors {whole_reads} reads, plain {plain_reads}");
    let whole_reads = mean_reads(&whole);
    // Readers only move bytes: the same answers and the same counts from each.
    let mut kinds = readers();
    kinds.push(ReaderKind::Mmap);
    for kind in kinds {
        let other = open(&path, kind, 0, true);
        for q in queries.chunks_exact(DIM) {
            assert_eq!(
                other.search(q, 10, p, None).unwrap(),
                whole.search(q, 10, p, None).unwrap(),
                "{kind:?}"
            );
        }
    }
    // A cache of the medoid's neighbourhood saves reads and keeps the recall.
    let cached = open(&path, ReaderKind::Pread, 400, true);
    assert_eq!(cached.cached_nodes(), 400);
    let hits: u64 =
        queries.chunks_exact(DIM).map(|q| cached.search(q, 10, p, None).unwrap().1.cache_hits).sum();
    assert!(hits > 0);
    assert!(mean_reads(&cached) < whole_reads);
    assert!(recall(&cached, &exact, &queries, 30) >= recall(&whole, &exact, &queries, 30) - 0.02);
}

fn recall(disk: &DiskIndex, exact: &FlatIndex, queries: &[f32], l: usize) -> f64 {
    recall_and_work(disk, exact, queries, l).0
}

/// Recall@10 at list size `l` (beam 4), and the rounds, reads and PQ distances of all the
/// searches together.
fn recall_and_work(disk: &DiskIndex, exact: &FlatIndex, queries: &[f32], l: usize) -> (f64, u32, u64, u32) {
    let (mut hits, mut rounds, mut reads, mut distances) = (0, 0, 0, 0);
    for q in queries.chunks_exact(DIM) {
        let (got, stats) = disk.search(q, 10, DiskSearchParams { l, beam: 4, plan: None }, None).unwrap();
        let want = exact.search(q, 10, &SearchParams::default(), None).unwrap();
        hits += got.iter().filter(|n| want.iter().any(|w| w.id == n.id)).count();
        rounds += stats.rounds;
        reads += stats.reads;
        distances += stats.pq_distances;
    }
    (hits as f64 / (queries.len() / DIM * 10) as f64, rounds, reads, distances)
}

#[test]
fn recall_against_exact_search_in_both_vector_forms_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
        let base = data(metric, 3000, 0);
        let queries = data(metric, 40, 1);
        let index = vamana(metric, &base);
        let exact = exact(metric, &base);
        for f16 in [false, true] {
            let path = write(dir.path(), &format!("{metric:?}-{f16}.disk"), &index, f16);
            let disk = DiskIndex::open(&path, DiskOpenOptions::default()).unwrap();
            assert_eq!(disk.header().form, if f16 { VectorForm::F16 } else { VectorForm::F32 });
            let r = recall(&disk, &exact, &queries, 60);
            assert!(r >= 0.93, "{metric:?} f16={f16}: recall {r}");
            // A longer list never finds less.
            assert!(recall(&disk, &exact, &queries, 120) >= r - 0.01);
        }
    }
}

#[test]
fn filters_speak_rows_and_results_are_only_allowed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let base = data(Metric::L2, 2000, 0);
    let index = vamana(Metric::L2, &base);
    let path = dir.path().join("rows.disk");
    // Rows numbered backwards, so a mix-up of slots and rows shows.
    let rows: Vec<u32> = (0..2000u32).rev().map(|r| r + 10_000).collect();
    write_disk_index(
        &path,
        &index,
        Some(&rows),
        DiskWriteParams { pq_bytes: 8, f16: false, seed: 5, placement: true, block_sectors: None },
    )
    .unwrap();
    let disk = DiskIndex::open(&path, DiskOpenOptions::default()).unwrap();
    let q = &base[7 * DIM..8 * DIM];
    let (got, _) = disk.search(q, 5, DiskSearchParams::default(), None).unwrap();
    assert_eq!(got[0].id, rows[7], "slot 7 is itself nearest, answered as its row");
    let even = neardb::Predicate(|row: u32| row.is_multiple_of(2));
    let (filtered, _) = disk.search(q, 5, DiskSearchParams::default(), Some(&even)).unwrap();
    assert_eq!(filtered.len(), 5);
    assert!(filtered.iter().all(|n| n.id.is_multiple_of(2) && n.id >= 10_000), "{filtered:?}");
}

/// Recall@10 of filtered searches against the exact filtered answer, and checks on every
/// answer: only allowed rows, each once, ascending distance, never short of `min(10, matches)`.
fn filtered_recall(
    disk: &DiskIndex,
    exact: &FlatIndex,
    queries: &[f32],
    allow: &neardb::Bitset,
    p: DiskSearchParams,
) -> (f64, Vec<neardb::Plan>) {
    let (mut hits, mut wanted, mut plans) = (0, 0, Vec::new());
    for q in queries.chunks_exact(DIM) {
        let (got, stats) = disk.search(q, 10, p, Some(allow)).unwrap();
        let want = exact.search(q, 10, &SearchParams::default(), Some(allow)).unwrap();
        assert_eq!(got.len(), want.len(), "never short: {} allowed", allow.count());
        assert!(got.iter().all(|n| allow.contains(n.id)), "only allowed rows: {got:?}");
        assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance && w[0].id != w[1].id));
        hits += got.iter().filter(|n| want.iter().any(|w| w.id == n.id)).count();
        wanted += want.len();
        plans.push(stats.plan);
    }
    (hits as f64 / wanted.max(1) as f64, plans)
}

#[test]
fn filtered_searches_scan_or_walk_and_find_the_exact_filtered_answer() {
    use neardb::Plan;
    let dir = tempfile::tempdir().unwrap();
    let base = data(Metric::L2, 4000, 0);
    let queries = data(Metric::L2, 30, 1);
    let index = vamana(Metric::L2, &base);
    let path = write(dir.path(), "f.disk", &index, false);
    let exact = exact(Metric::L2, &base);
    for reader in readers() {
        let disk = open(&path, reader, 0, true);
        // Scattered filters from 0.25 % to all rows, by a hash of the row.
        for percent in [0.25f64, 2.0, 10.0, 40.0, 100.0] {
            let allow = neardb::Bitset::from_fn(4000, |r| {
                (r.wrapping_mul(2_654_435_761) % 10_000) as f64 / 100.0 < percent
            });
            let auto = DiskSearchParams { l: 60, beam: 4, plan: None };
            let (r, plans) = filtered_recall(&disk, &exact, &queries, &allow, auto);
            assert!(r >= 0.9, "{reader:?} {percent} %: recall {r} ({plans:?})");
            if percent < 1.0 {
                assert!(plans.iter().all(|&p| p == Plan::Scan), "a tight filter scans: {plans:?}");
            }
            // Either plan, asked for, answers as well (a walk that comes back short is redone
            // as a scan).
            for plan in [Plan::Scan, Plan::FilteredWalk] {
                let p = DiskSearchParams { plan: Some(plan), ..auto };
                let (r, plans) = filtered_recall(&disk, &exact, &queries, &allow, p);
                let redone = |p: Plan| plan == Plan::FilteredWalk && p == Plan::WalkThenScan;
                assert!(plans.iter().all(|&p| p == plan || redone(p)), "{plans:?}");
                let floor = if plan == Plan::FilteredWalk && percent < 1.0 { 0.5 } else { 0.9 };
                assert!(r >= floor, "{reader:?} {percent} % {plan:?}: recall {r}");
            }
        }
        // No row allowed: nothing, and no read.
        let none = neardb::Bitset::from_fn(4000, |_| false);
        let (got, stats) =
            disk.search(&queries[..DIM], 10, DiskSearchParams::default(), Some(&none)).unwrap();
        assert!(got.is_empty() && stats.reads == 0);
        // Fewer allowed than k: all of them.
        let three = neardb::Bitset::from_fn(4000, |r| r == 5 || r == 900 || r == 3999);
        let (got, _) = disk.search(&queries[..DIM], 10, DiskSearchParams::default(), Some(&three)).unwrap();
        let mut ids: Vec<u32> = got.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![5, 900, 3999]);
        // Bad queries are refused with a filter as without.
        assert!(disk.search(&queries[..DIM - 1], 10, DiskSearchParams::default(), Some(&none)).is_err());
        assert!(disk.search(&queries[..DIM], 0, DiskSearchParams::default(), Some(&three)).is_err());
    }
}

#[test]
fn a_predicate_filter_is_planned_from_a_sample_and_rows_need_not_be_dense() {
    let dir = tempfile::tempdir().unwrap();
    let base = data(Metric::Cosine, 3000, 0);
    let index = vamana(Metric::Cosine, &base);
    let path = dir.path().join("sparse-rows.disk");
    // Rows far apart and backwards: the row map is not an array by row.
    let rows: Vec<u32> = (0..3000u32).map(|s| 1_000_000 - 7 * s).collect();
    write_disk_index(
        &path,
        &index,
        Some(&rows),
        DiskWriteParams { pq_bytes: 8, f16: true, seed: 5, placement: true, block_sectors: None },
    )
    .unwrap();
    let disk = DiskIndex::open(&path, DiskOpenOptions::default()).unwrap();
    let exact = exact(Metric::Cosine, &base);
    let queries = data(Metric::Cosine, 20, 1);
    let slot_of = |row: u32| (1_000_000 - row) / 7;
    for modulus in [3u32, 200] {
        let allowed_slot = |s: u32| s % modulus == 1;
        let by_row = neardb::Predicate(|row: u32| {
            row <= 1_000_000 && (1_000_000 - row).is_multiple_of(7) && allowed_slot(slot_of(row))
        });
        let by_slot = neardb::Bitset::from_fn(3000, allowed_slot);
        let (mut hits, mut wanted) = (0, 0);
        for q in queries.chunks_exact(DIM) {
            let (got, _) = disk.search(q, 10, DiskSearchParams::default(), Some(&by_row)).unwrap();
            let want = exact.search(q, 10, &SearchParams::default(), Some(&by_slot)).unwrap();
            assert_eq!(got.len(), 10);
            assert!(got.iter().all(|n| by_row.allows(n.id)), "{got:?}");
            hits += got.iter().filter(|n| want.iter().any(|w| w.id == slot_of(n.id))).count();
            wanted += 10;
        }
        let r = hits as f64 / wanted as f64;
        assert!(r >= 0.9, "1 in {modulus}: recall {r}");
        // A bitset over these rows finds the same (its ids are rows up to a million).
        let bits = neardb::Bitset::from_fn(1_000_001, |row| by_row.allows(row));
        let q = &queries[..DIM];
        let a = disk.search(q, 10, DiskSearchParams::default(), Some(&by_row)).unwrap().0;
        let b = disk.search(q, 10, DiskSearchParams::default(), Some(&bits)).unwrap().0;
        assert!(b.iter().all(|n| by_row.allows(n.id)) && b.len() == 10);
        let common = a.iter().filter(|n| b.iter().any(|m| m.id == n.id)).count();
        assert!(common >= 8, "{a:?} against {b:?}");
    }
}

#[test]
fn a_damaged_row_region_fails_filtered_searches_only() {
    let dir = tempfile::tempdir().unwrap();
    let base = data(Metric::L2, 600, 0);
    let index = vamana(Metric::L2, &base);
    let path = write(dir.path(), "rows-bad.disk", &index, false);
    let header = neardb::disk::read_header(&path).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0xAB], header.rows_offset() + 17).unwrap();
    drop(file);
    let disk = DiskIndex::open(&path, DiskOpenOptions::default()).unwrap();
    let q = &base[..DIM];
    assert_eq!(disk.search(q, 5, DiskSearchParams::default(), None).unwrap().0.len(), 5);
    let some = neardb::Bitset::from_fn(600, |r| r % 2 == 0);
    let err = disk.search(q, 5, DiskSearchParams::default(), Some(&some)).unwrap_err();
    assert!(matches!(err, DiskError::BadRows { .. }), "{err}");
}

#[test]
fn bad_queries_and_bad_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = data(Metric::L2, 600, 0);
    let index = vamana(Metric::L2, &base);
    let path = write(dir.path(), "good.disk", &index, false);
    let bytes = std::fs::read(&path).unwrap();
    let disk = DiskIndex::open(&path, DiskOpenOptions::default()).unwrap();
    let q = &base[..DIM];
    assert!(matches!(disk.search(&q[..5], 3, DiskSearchParams::default(), None), Err(DiskError::Core(_))));
    assert!(matches!(disk.search(q, 0, DiskSearchParams::default(), None), Err(DiskError::Core(_))));
    let nan: Vec<f32> = q.iter().map(|_| f32::NAN).collect();
    assert!(matches!(disk.search(&nan, 3, DiskSearchParams::default(), None), Err(DiskError::Core(_))));
    assert!(disk.search(q, 3, DiskSearchParams { l: 0, beam: 4, plan: None }, None).is_err());
    assert!(disk.search(q, 3, DiskSearchParams { l: 10, beam: 0, plan: None }, None).is_err());

    let open = |b: &[u8]| {
        let p = dir.path().join("bad.disk");
        std::fs::write(&p, b).unwrap();
        DiskIndex::open(&p, DiskOpenOptions::default())
    };
    assert!(matches!(open(&bytes[..bytes.len() - 1]), Err(DiskError::WrongLength { .. })));
    assert!(matches!(open(&bytes[..100]), Err(DiskError::BadHeader { .. })));
    assert!(matches!(open(b""), Err(DiskError::BadHeader { .. })));
    let mut header_flip = bytes.clone();
    header_flip[17] ^= 1;
    assert!(matches!(open(&header_flip), Err(DiskError::BadHeader { .. })));
    let mut pq_flip = bytes.clone();
    let last_code = disk.header().rows_offset() as usize - 1;
    pq_flip[last_code] ^= 1;
    assert!(matches!(open(&pq_flip), Err(DiskError::BadPq { .. })));
    // Nodes carry no checksum; their structure is checked as they are read.
    let h = disk.header().clone();
    let degree_at = |id: u64| {
        let at = h.locate(id);
        at.offset as usize + at.within + DIM * 4 + 4
    };
    let medoid = h.medoid;
    let mut lying_degree = bytes.clone();
    lying_degree[degree_at(medoid)..degree_at(medoid) + 4].copy_from_slice(&(h.max_degree + 1).to_le_bytes());
    let d = open(&lying_degree).unwrap();
    let err = d.search(q, 3, DiskSearchParams::default(), None).unwrap_err();
    assert!(matches!(err, DiskError::BadNode { reason, .. } if reason.contains("degree")), "{err}");
    let mut lying_link = bytes.clone();
    let first_link = degree_at(medoid) + 4;
    lying_link[first_link..first_link + 4].copy_from_slice(&600u32.to_le_bytes());
    let err = open(&lying_link).unwrap().search(q, 3, DiskSearchParams::default(), None).unwrap_err();
    assert!(matches!(err, DiskError::BadNode { reason, .. } if reason.contains("neighbour")), "{err}");
    // A file cut short after it was opened: the read that meets the end is an error.
    for kind in readers() {
        let p = dir.path().join("shrinking.disk");
        std::fs::write(&p, &bytes).unwrap();
        let d = DiskIndex::open(
            &p,
            DiskOpenOptions {
                reader: kind,
                direct: false,
                cache_nodes: 0,
                sector_neighbors: true,
                sampled_entries: true,
            },
        )
        .unwrap();
        std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(SECTOR as u64 * 2).unwrap();
        let err = d.search(q, 3, DiskSearchParams { l: 50, beam: 4, plan: None }, None).unwrap_err();
        assert!(err.to_string().contains("short read"), "{kind:?}: {err}");
    }
    // Too few vectors to train 8-bit PQ, and a PQ size that does not divide the dimension.
    let tiny = vamana(Metric::L2, &base[..100 * DIM]);
    let p = dir.path().join("tiny.disk");
    assert!(matches!(
        write_disk_index(
            &p,
            &tiny,
            None,
            DiskWriteParams { pq_bytes: 8, f16: false, seed: 1, placement: true, block_sectors: None }
        ),
        Err(DiskError::Build { .. })
    ));
    assert!(matches!(
        write_disk_index(
            &p,
            &index,
            None,
            DiskWriteParams { pq_bytes: 7, f16: false, seed: 1, placement: true, block_sectors: None }
        ),
        Err(DiskError::Build { .. })
    ));
}

#[test]
fn a_file_laid_out_for_a_billion_1024d_vectors_is_addressed_past_32_bits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("billion.disk");
    let header = Header {
        metric: Metric::L2,
        dim: 1024,
        form: VectorForm::F32,
        count: 1_000_000_000,
        max_degree: 64,
        medoid: 0,
        pq_m: 32,
        build_l: 100,
        build_alpha_bits: 1.2f32.to_bits(),
        build_seed: 1,
        pq_crc: 0,
        rows_crc: 0,
        unit_vectors: false,
        block_sectors: 1,
    };
    let file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    // Sparse: 4 TB apparent, nearly nothing on disk.
    file.set_len(header.file_len()).unwrap();
    assert!(header.file_len() > 4_000_000_000_000);
    file.write_all_at(&header.encode(), 0).unwrap();
    let id = 900_000_000u64;
    let at = header.locate(id);
    let vector: Vec<f32> = (0..1024).map(|i| i as f32 * 0.5 - 7.0).collect();
    let mut node: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    node.extend_from_slice(&(id as u32).to_le_bytes());
    node.extend_from_slice(&1u32.to_le_bytes());
    node.extend_from_slice(&7u32.to_le_bytes());
    file.write_all_at(&node, at.offset + at.within as u64).unwrap();
    file.sync_all().unwrap();
    assert!(at.offset > u32::MAX as u64 * 800);
    // The header reads back and agrees with the file's 4 TB length.
    let mut head = vec![0u8; SECTOR];
    file.read_exact_at(&mut head, 0).unwrap();
    assert_eq!(Header::decode(&head, std::fs::metadata(&path).unwrap().len()).unwrap(), header);
    let parse = |bytes: &[u8]| -> (Vec<f32>, u32, u32) {
        let v = bytes[..4096].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        (v, word(4096), word(4100))
    };
    // Through a memory map of the whole 4 TB, and every reader (io_uring where allowed, with
    // O_DIRECT).
    let mut kinds = readers();
    kinds.push(ReaderKind::Mmap);
    for kind in kinds {
        let reader = open_reader(&path, kind, true).unwrap();
        let mut got = None;
        reader.read_batch(&[(at.offset, at.len)], &mut |_, b| got = Some(parse(&b[at.within..]))).unwrap();
        assert_eq!(got.unwrap(), (vector.clone(), id as u32, 1), "{kind:?}");
    }
}

fn budgeted(metric: Metric, memory_bytes: u64) -> neardb::disk::BudgetedBuild {
    neardb::disk::BudgetedBuild {
        metric,
        vamana: VamanaParams { r: 16, l: 50, alpha: 1.2, seed: 3 },
        write: DiskWriteParams { pq_bytes: 8, f16: false, seed: 5, placement: true, block_sectors: None },
        memory_bytes,
    }
}

fn build_from_file(
    input: &Path,
    output: &Path,
    plan: &neardb::disk::BudgetedBuild,
) -> Result<neardb::disk::BudgetedReport, DiskError> {
    neardb::disk::build_disk_index_from_file(input, output, plan, |index, data| index.build_owned(data))
}

#[test]
fn a_build_within_a_memory_budget_shards_and_keeps_recall_within_a_point() {
    let dir = tempfile::tempdir().unwrap();
    for metric in [Metric::L2, Metric::Cosine] {
        let n = 16000;
        let base = data(metric, n, 0);
        let queries = data(metric, 1000, 1);
        let input = dir.path().join(format!("{metric:?}.fvecs"));
        neardb::io::write_fvecs(&input, &base, DIM).unwrap();
        let exact = exact(metric, &base);

        let whole_path = dir.path().join(format!("{metric:?}-whole.disk"));
        let whole = build_from_file(&input, &whole_path, &budgeted(metric, 0)).unwrap();
        assert_eq!(whole.shards, 1);
        // A budget for half the rows in a shard: with each row in two shards, 4+ shards (more
        // where the clusters are uneven) and the backbone.
        let per_row = neardb::disk::shard_row_bytes(DIM, 16);
        let budget = per_row * n as u64 / 2;
        let sharded_path = dir.path().join(format!("{metric:?}-sharded.disk"));
        let sharded = build_from_file(&input, &sharded_path, &budgeted(metric, budget)).unwrap();
        assert!(sharded.shards >= 5, "{} shards", sharded.shards);
        assert!(sharded.largest_shard as u64 * per_row <= budget, "largest shard {}", sharded.largest_shard);
        assert!(!dir.path().join(format!("{metric:?}-sharded.shards-tmp")).exists(), "temporary files left");

        let whole = DiskIndex::open(&whole_path, DiskOpenOptions::default()).unwrap();
        let sharded = DiskIndex::open(&sharded_path, DiskOpenOptions::default()).unwrap();
        assert_eq!(sharded.header().count, n as u64);
        // Each node's row is its input row, and its vector is that row.
        for row in [0u32, 1, 4321, n as u32 - 1] {
            let (got, _) = sharded
                .search(
                    &base[row as usize * DIM..(row as usize + 1) * DIM],
                    1,
                    DiskSearchParams { l: 40, beam: 4, plan: None },
                    None,
                )
                .unwrap();
            assert_eq!(got[0].id, row, "{metric:?}");
        }
        // The operating points (recall 0.88 and up). At L 10, where both are near 0.77, the merged
        // graph trails by up to 2 points: its entry phase has fewer long links than one build's.
        for l in [20, 40, 60] {
            let (a, b) = (recall(&whole, &exact, &queries, l), recall(&sharded, &exact, &queries, l));
            assert!(b >= a - 0.01, "{metric:?} L {l}: sharded recall {b} against {a} in one build");
        }
    }
}

#[test]
fn a_budgeted_build_refuses_bad_rows_and_budgets_too_small() {
    let dir = tempfile::tempdir().unwrap();
    let mut base = data(Metric::L2, 4000, 0);
    let per_row = neardb::disk::shard_row_bytes(DIM, 16);
    let budget = per_row * 1500;
    let input = dir.path().join("base.fvecs");
    let out = dir.path().join("out.disk");
    // Too small for a shard of 1024 rows.
    neardb::io::write_fvecs(&input, &base, DIM).unwrap();
    let err = build_from_file(&input, &out, &budgeted(Metric::L2, per_row * 100)).unwrap_err();
    assert!(matches!(err, DiskError::Build { .. }), "{err}");
    // A NaN in row 3210 is named, in the sharded and the one-build paths.
    base[3210 * DIM + 7] = f32::NAN;
    neardb::io::write_fvecs(&input, &base, DIM).unwrap();
    for memory in [budget, 0] {
        let err = build_from_file(&input, &out, &budgeted(Metric::L2, memory)).unwrap_err();
        assert!(
            matches!(err, DiskError::Core(neardb::Error::NonFiniteVector { vector: 3210, component: 7 })),
            "{memory}: {err}"
        );
    }
    // A zero row under cosine.
    base[3210 * DIM + 7] = 0.0;
    base[77 * DIM..78 * DIM].iter_mut().for_each(|x| *x = 0.0);
    neardb::io::write_fvecs(&input, &base, DIM).unwrap();
    let err = build_from_file(&input, &out, &budgeted(Metric::Cosine, budget)).unwrap_err();
    assert!(matches!(err, DiskError::Core(neardb::Error::ZeroVector { .. })), "{err}");
    // A file cut mid-record is an input error.
    let bytes = std::fs::read(&input).unwrap();
    std::fs::write(&input, &bytes[..bytes.len() - 3]).unwrap();
    let err = build_from_file(&input, &out, &budgeted(Metric::L2, budget)).unwrap_err();
    assert!(matches!(err, DiskError::Input(_)), "{err}");
    assert!(!out.exists());
}

#[test]
fn poisoned_vectors_are_refused_and_rows_claimed_twice_are_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let base = data(Metric::L2, 600, 0);
    let index = vamana(Metric::L2, &base);
    let path = write(dir.path(), "poison.disk", &index, false);
    let h = neardb::disk::read_header(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let q = &base[..DIM];
    let open_bytes = |b: &[u8]| {
        let p = dir.path().join("mutant.disk");
        std::fs::write(&p, b).unwrap();
        DiskIndex::open(&p, DiskOpenOptions::default()).unwrap()
    };
    // A NaN in the medoid's vector: every search meets it first.
    let at = h.locate(h.medoid);
    let mut nan = bytes.clone();
    let v = at.offset as usize + at.within;
    nan[v..v + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let err = open_bytes(&nan).search(q, 5, DiskSearchParams::default(), None).unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
    // Sector 2's nodes copied over sector 3's: twenty rows now have two nodes each.
    let mut twice = bytes.clone();
    let sector2 = twice[2 * SECTOR..3 * SECTOR].to_vec();
    twice[3 * SECTOR..4 * SECTOR].copy_from_slice(&sector2);
    let d = open_bytes(&twice);
    for q in base.chunks_exact(DIM).take(50) {
        if let Ok((hits, _)) = d.search(q, 20, DiskSearchParams::default(), None) {
            let mut ids: Vec<u32> = hits.iter().map(|n| n.id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), hits.len(), "{hits:?}");
        }
    }
}
