//! The `neardb` binary against crafted files and absurd arguments (issue 15): bounded memory
//! for a file that makes every search's tables huge, no buffer sized by k, and ids that an
//! .ivecs file cannot hold refused rather than written as negative numbers.

use std::path::Path;
use std::process::{Command, Output};

use neardb::format::{write_index, AlignedBytes, FileInfo, OpenOptions, SectionKind, SectionRef};
use neardb::io::{read_ivecs, write_fvecs};
use neardb::{IndexKind, IndexSpec, Metric};

fn run(args: &[&str], env: &[(&str, &str)], limit_kib: Option<u64>) -> Output {
    let bin = env!("CARGO_BIN_EXE_neardb");
    let mut cmd = match limit_kib {
        // The address-space limit applies to the binary alone (ulimit in a shell that execs it).
        Some(kib) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\"")).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args).envs(env.iter().copied()).output().expect("the neardb binary runs")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An IVF-PQ file of 2 vectors with dim = pq_m = 65536 (one dimension per sub-quantizer), as an
/// attacker makes it: 67 MB, every checksum valid. Each search needs two 64 MiB lookup tables.
fn wide_ivfpq(path: &Path) {
    const DIM: usize = 65536;
    // The parameters section of a real file, with pq_m set to the dimension.
    let mut spec = IndexSpec::from_options([("index", "ivfpq"), ("nlist", "1"), ("pq_m", "8")]).unwrap();
    spec.rerank = 0;
    let small: Vec<f32> = (0..300 * 8).map(|i| (i % 17) as f32).collect();
    let built = spec.build(Metric::L2, 8, &small, &|_| {}).unwrap();
    let neardb::Index::IvfPq(small) = built.index else { panic!("an IVF-PQ index") };
    let bytes = AlignedBytes::copy_from(&small.to_bytes());
    let info = FileInfo::parse(bytes.as_slice(), OpenOptions::default()).unwrap();
    let mut params = info.section(bytes.as_slice(), SectionKind::PARAMS).unwrap().to_vec();
    params[4..8].copy_from_slice(&(DIM as u32).to_le_bytes());

    let floats =
        |n: usize, f: fn(usize) -> f32| -> Vec<u8> { (0..n).flat_map(|i| f(i).to_le_bytes()).collect() };
    let centroids = floats(DIM, |_| 0.0);
    let codebooks = floats(256 * DIM, |i| (i % 256) as f32 * 0.01);
    let lists: Vec<u8> = [0u32, 2].iter().flat_map(|x| x.to_le_bytes()).collect();
    let slots: Vec<u8> = [0u32, 1].iter().flat_map(|x| x.to_le_bytes()).collect();
    let codes = vec![3u8; 2 * DIM];
    let sections = [
        SectionRef { kind: SectionKind::PARAMS, bytes: &params },
        SectionRef { kind: SectionKind::COARSE_CENTROIDS, bytes: &centroids },
        SectionRef { kind: SectionKind::PQ_CODEBOOKS, bytes: &codebooks },
        SectionRef { kind: SectionKind::IVF_LISTS, bytes: &lists },
        SectionRef { kind: SectionKind::IVF_IDS, bytes: &slots },
        SectionRef { kind: SectionKind::PQ_CODES, bytes: &codes },
    ];
    let mut out = Vec::new();
    write_index(IndexKind::IvfPq, Metric::L2, DIM as u32, 2, &sections, &mut |b: &[u8]| -> Result<(), ()> {
        out.extend_from_slice(b);
        Ok(())
    })
    .unwrap();
    std::fs::write(path, out).unwrap();
}

#[test]
fn many_threads_on_a_file_with_huge_lookup_tables_stay_within_memory() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("wide.neardb");
    wide_ivfpq(&index);
    let queries = dir.path().join("q.fvecs");
    let q: Vec<f32> = (0..32 * 65536).map(|i| (i % 5) as f32 * 0.01).collect();
    write_fvecs(&queries, &q, 65536).unwrap();
    let out = dir.path().join("res.ivecs");
    // 16 threads × two 64 MiB tables would be 2 GiB of tables alone; the batch runs only as many
    // searches at once as 512 MiB of scratch allows. (One malloc arena per thread would reserve
    // 64 MiB of address space each: two arenas keep the limit about the heap.)
    let args = ["search", "--index", s(&index), "--queries", s(&queries), "-k", "2", "--threads", "16"];
    let o = run(&[&args[..], &["--output", s(&out)]].concat(), &[("MALLOC_ARENA_MAX", "2")], Some(2_000_000));
    assert!(o.status.success(), "{}", stderr(&o));
    let (ids, k) = read_ivecs(&out).unwrap();
    assert_eq!((ids.len(), k), (64, 2));
    assert!(ids.chunks(2).all(|r| r == [0, 1] || r == [1, 0]));
}

fn small_dataset(dir: &Path) -> (String, String) {
    let base = dir.join("base.fvecs");
    let queries = dir.join("q.fvecs");
    let d: Vec<f32> = (0..40 * 6).map(|i| ((i * 31 % 97) as f32) / 97.0).collect();
    write_fvecs(&base, &d, 6).unwrap();
    write_fvecs(&queries, &d[..5 * 6], 6).unwrap();
    (s(&base).to_string(), s(&queries).to_string())
}

#[test]
fn a_huge_k_answers_every_vector_and_allocates_nothing_by_k() {
    let dir = tempfile::tempdir().unwrap();
    let (base, queries) = small_dataset(dir.path());
    let index = dir.path().join("h.neardb");
    let o = run(&["build", "--base", &base, "--metric", "l2", "--index", "hnsw", "-o", s(&index)], &[], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("res.ivecs");
    // nq × k int32 would be 6 GB; the rows are as wide as the index is long.
    let args =
        ["search", "--index", s(&index), "--queries", &queries, "-k", "300000000", "--output", s(&out)];
    let o = run(&args, &[], Some(1_000_000));
    assert!(o.status.success(), "{}", stderr(&o));
    let (ids, k) = read_ivecs(&out).unwrap();
    assert_eq!((ids.len(), k), (5 * 40, 40));
    let res = dir.path().join("peer.ivecs");
    let args =
        ["peer", "search", "--index", s(&index), "--queries", &queries, "--k", "300000000", "--out", s(&res)];
    let o = run(&[&args[..], &["--min-time", "0", "--max-repeat", "1"]].concat(), &[], Some(1_000_000));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_ivecs(&res).unwrap().1, 40);
}

#[test]
fn ids_beyond_int32_are_refused_for_ivecs_and_printed_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let (base, queries) = small_dataset(dir.path());
    let flat = dir.path().join("f.neardb");
    let o = run(&["build", "--base", &base, "--metric", "l2", "-o", s(&flat)], &[], None);
    assert!(o.status.success(), "{}", stderr(&o));
    // Give the file caller ids from 2^31 up: valid ids, but not int32.
    let bytes = AlignedBytes::copy_from(&std::fs::read(&flat).unwrap());
    let info = FileInfo::parse(bytes.as_slice(), OpenOptions::default()).unwrap();
    let vectors = info.section(bytes.as_slice(), SectionKind::VECTORS).unwrap();
    let ids: Vec<u8> = (0..40u32).flat_map(|i| ((1 << 31) + i).to_le_bytes()).collect();
    let sections = [
        SectionRef { kind: SectionKind::VECTORS, bytes: vectors },
        SectionRef { kind: SectionKind::IDS, bytes: &ids },
    ];
    let mut out = Vec::new();
    write_index(info.kind, info.metric, info.dim, info.count, &sections, &mut |b: &[u8]| -> Result<(), ()> {
        out.extend_from_slice(b);
        Ok(())
    })
    .unwrap();
    std::fs::write(&flat, out).unwrap();
    let res = dir.path().join("res.ivecs");
    let o = run(
        &["search", "--index", s(&flat), "--queries", &queries, "-k", "3", "--output", s(&res)],
        &[],
        None,
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not fit an .ivecs file"), "{}", stderr(&o));
    let o = run(&["search", "--index", s(&flat), "--queries", &queries, "-k", "1", "--json"], &[], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["ids"][0], (1u64 << 31));
}
