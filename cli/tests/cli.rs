//! The `neardb` binary end to end: every sub-command on generated data, the harness's peer
//! contract, and clear failures on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use neardb::io::{read_f32_vectors, read_ivecs, write_fvecs};

fn run_cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_neardb")).args(args).output().expect("the neardb binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = run_cli(args);
    assert!(out.status.success(), "neardb {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn fails(args: &[&str]) -> String {
    let out = run_cli(args);
    assert!(!out.status.success(), "neardb {args:?} should fail");
    String::from_utf8(out.stderr).expect("utf-8 output")
}

/// `neardb peer build` arguments as the harness passes them, one `--opt` per option.
fn peer_build<'a>(base: &'a Path, index: &'a Path, opts: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["peer", "build", "--base", s(base), "--metric", "l2", "--index", s(index)];
    for o in opts {
        args.extend(["--opt", o]);
    }
    args
}

/// `neardb peer search` arguments as the harness passes them: one single-thread pass at
/// `param`, with `opts` as `--opt` pairs.
fn peer_search<'a>(
    index: &'a Path,
    base: &'a Path,
    queries: &'a Path,
    param: &'a str,
    out: &'a Path,
    opts: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["peer", "search", "--index", s(index), "--base", s(base), "--queries", s(queries)];
    args.extend(["--k", "10", "--param", param, "--mode", "single", "--threads", "1"]);
    args.extend(["--min-time", "0", "--max-repeat", "1", "--out", s(out)]);
    for o in opts {
        args.extend(["--opt", o]);
    }
    args
}

fn last_json(stdout: &str) -> serde_json::Value {
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).expect("a JSON line");
    serde_json::from_str(line).expect("valid JSON")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

struct Dataset {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn dataset(metric: &str) -> Dataset {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_path_buf();
    ok(&[
        "gen",
        "--kind",
        "clustered",
        "--n",
        "3000",
        "--dim",
        "24",
        "--queries",
        "50",
        "--metric",
        metric,
        "--clusters",
        "10",
        "--truth-k",
        "20",
        "--output",
        s(&root),
    ]);
    Dataset { _dir: dir, root }
}

#[test]
fn gen_build_info_search_truth_and_bench_agree() {
    for metric in ["l2", "cosine", "ip", "l1"] {
        let d = dataset(metric);
        let base = d.root.join("base.fvecs");
        let queries = d.root.join("query.fvecs");
        let gt = d.root.join("groundtruth.ivecs");
        let (b, dim) = read_f32_vectors(&base).unwrap();
        assert_eq!((b.len() / dim, dim), (3000, 24));
        let (t, tk) = read_ivecs(&gt).unwrap();
        assert_eq!((t.len() / tk, tk), (50, 20));

        let index = d.root.join("flat.neardb");
        ok(&["build", "--base", s(&base), "--metric", metric, "--index", "flat", "--output", s(&index)]);
        let info = last_json(&ok(&["info", s(&index), "--json"]));
        assert_eq!(info["kind"], "flat");
        assert_eq!(info["count"], 3000);
        assert_eq!(info["dim"], 24);
        assert_eq!(info["sections"][0]["length"], 3000 * 24 * 4);

        // Searching the saved index reproduces the exact ground truth.
        let res = d.root.join("res.ivecs");
        ok(&["search", "--index", s(&index), "--queries", s(&queries), "-k", "10", "--output", s(&res)]);
        let (r, rk) = read_ivecs(&res).unwrap();
        assert_eq!(rk, 10);
        for q in 0..50 {
            assert_eq!(r[q * 10..q * 10 + 10], t[q * 20..q * 20 + 10], "{metric} query {q}");
        }
        // `truth` agrees with `gen`'s ground truth.
        let gt2 = d.root.join("gt2.ivecs");
        ok(&[
            "truth",
            "--base",
            s(&base),
            "--queries",
            s(&queries),
            "--metric",
            metric,
            "-k",
            "20",
            "--output",
            s(&gt2),
        ]);
        assert_eq!(read_ivecs(&gt2).unwrap(), (t.clone(), 20));

        let bench = ok(&[
            "bench",
            "--index",
            s(&index),
            "--queries",
            s(&queries),
            "--truth",
            s(&gt),
            "-k",
            "10",
            "--json",
            "--min-time",
            "0",
            "--max-repeat",
            "1",
        ]);
        let row = last_json(&bench);
        assert_eq!(row["recall"], 1.0);
        for key in ["param", "qps", "qps_batch", "p50_us", "p99_us"] {
            assert!(row.get(key).is_some(), "missing {key} in {row}");
        }
        assert!(row["qps"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn search_json_lists_ids_and_distances_in_order() {
    let d = dataset("l2");
    let index = d.root.join("flat.neardb");
    ok(&["build", "--base", s(&d.root.join("base.fvecs")), "--metric", "l2", "--output", s(&index)]);
    let out = ok(&[
        "search",
        "--index",
        s(&index),
        "--queries",
        s(&d.root.join("query.fvecs")),
        "-k",
        "5",
        "--json",
    ]);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 50);
    let dists: Vec<f64> =
        lines[0]["distances"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(dists.len(), 5);
    assert!(dists.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn peer_contract_as_the_harness_calls_it() {
    let d = dataset("l2");
    let info = last_json(&ok(&["peer", "info"]));
    assert_eq!(info["name"], "neardb");
    let base = d.root.join("base.fvecs");
    let index = d.root.join("peer-index");
    let built = last_json(&ok(&[
        "peer",
        "build",
        "--base",
        s(&base),
        "--metric",
        "l2",
        "--threads",
        "2",
        "--index",
        s(&index),
        "--opt",
        "index=flat",
    ]));
    assert!(built["build_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(built["index_bytes"].as_u64().unwrap(), std::fs::metadata(&index).unwrap().len());
    let (t, tk) = read_ivecs(&d.root.join("groundtruth.ivecs")).unwrap();
    for mode in ["single", "batch"] {
        let res = d.root.join(format!("{mode}.ivecs"));
        let out = last_json(&ok(&[
            "peer",
            "search",
            "--index",
            s(&index),
            "--base",
            s(&base),
            "--queries",
            s(&d.root.join("query.fvecs")),
            "--k",
            "10",
            "--param",
            "-",
            "--mode",
            mode,
            "--threads",
            "2",
            "--min-time",
            "0.05",
            "--max-repeat",
            "2",
            "--out",
            s(&res),
        ]));
        let passes = out["search_s"].as_array().unwrap();
        assert!(!passes.is_empty() && passes.len() <= 2);
        assert_eq!(out.get("latency_us").is_some(), mode == "single");
        let (r, rk) = read_ivecs(&res).unwrap();
        assert_eq!(rk, 10);
        for q in 0..50 {
            assert_eq!(r[q * 10..q * 10 + 10], t[q * tk..q * tk + 10]);
        }
    }
    let err = fails(&peer_build(&base, &index, &["index=nope"]));
    assert!(err.contains("unknown index kind \"nope\""), "{err}");
}

#[test]
fn bad_inputs_fail_with_clear_messages() {
    let d = dataset("l2");
    let base = d.root.join("base.fvecs");
    let index = d.root.join("flat.neardb");
    ok(&["build", "--base", s(&base), "--metric", "l2", "--output", s(&index)]);

    let missing = d.root.join("missing.fvecs");
    assert!(fails(&["build", "--base", s(&missing), "--metric", "l2", "--output", s(&index)])
        .contains("missing.fvecs"));
    assert!(fails(&["build", "--base", s(&base), "--metric", "hamming", "--output", s(&index)])
        .contains("unknown metric"));

    // Queries of the wrong dimension.
    let wrong = d.root.join("wrong.fvecs");
    write_fvecs(&wrong, &[0.5; 10], 5).unwrap();
    assert!(fails(&["search", "--index", s(&index), "--queries", s(&wrong)]).contains("dimensions"));
    // k = 0.
    let q = d.root.join("query.fvecs");
    assert!(fails(&["search", "--index", s(&index), "--queries", s(&q), "-k", "0"])
        .contains("k must be at least 1"));
    // NaN in a query.
    let nan = d.root.join("nan.fvecs");
    let mut v = vec![0.5f32; 24];
    v[3] = f32::NAN;
    write_fvecs(&nan, &v, 24).unwrap();
    assert!(fails(&["search", "--index", s(&index), "--queries", s(&nan)]).contains("non-finite"));
    // Bad rows in the base file are named by their row in the file, also beyond the first 2048
    // that a one-thread build adds at a time, and also for a binary16 build.
    let rows = 2100;
    let mut data: Vec<f32> = (0..rows * 4).map(|i| (i % 13) as f32 * 0.25 + 1.0).collect();
    data[2090 * 4 + 1] = 1.0e6;
    let big = d.root.join("big.fvecs");
    write_fvecs(&big, &data, 4).unwrap();
    for threads in ["1", "2"] {
        let out = d.root.join("big.neardb");
        let args = ["build", "--base", s(&big), "--metric", "l2", "--index", "hnsw", "--quantize", "f16"];
        let err = fails(&[&args[..], &["--threads", threads, "--output", s(&out)]].concat());
        assert!(err.contains("vector 2090 has the value 1000000 at component 1"), "{threads} threads: {err}");
    }
    data[2090 * 4 + 1] = f32::NAN;
    write_fvecs(&big, &data, 4).unwrap();
    let err = fails(&[
        "build",
        "--base",
        s(&big),
        "--metric",
        "l2",
        "--index",
        "hnsw",
        "--threads",
        "1",
        "--output",
        s(&d.root.join("big.neardb")),
    ]);
    assert!(err.contains("vector 2090 has a non-finite value"), "{err}");
    // A corrupted index.
    let mut bytes = std::fs::read(&index).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let bad = d.root.join("bad.neardb");
    std::fs::write(&bad, &bytes).unwrap();
    assert!(fails(&["info", s(&bad)]).contains("checksum"));
    // A truncated one, and an empty one.
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    assert!(fails(&["search", "--index", s(&bad), "--queries", s(&q)]).contains("truncated"));
    std::fs::write(&bad, b"").unwrap();
    assert!(fails(&["info", s(&bad)]).contains("truncated"));
    // Not an index at all.
    assert!(fails(&["info", s(&base)]).contains("not a NearDB index"));
    // A malformed vector file.
    let broken = d.root.join("broken.fvecs");
    std::fs::write(&broken, [24u8, 0, 0, 0, 1, 2, 3]).unwrap();
    assert!(!fails(&["build", "--base", s(&broken), "--metric", "l2", "--output", s(&index)]).is_empty());
    // Ground truth narrower than k.
    let gt = d.root.join("groundtruth.ivecs");
    let err = fails(&["bench", "--index", s(&index), "--queries", s(&q), "--truth", s(&gt), "-k", "50"]);
    assert!(err.contains("columns"), "{err}");
    assert!(
        fails(&["gen", "--n", "0", "--dim", "4", "--output", s(&d.root.join("g"))]).contains("at least 1")
    );
}

#[test]
fn hnsw_build_bench_and_peer_reach_recall_and_reproduce_with_one_thread() {
    graph_build_bench_and_peer(
        "hnsw",
        &["--m", "12", "--ef-construction", "100"],
        &["M=16", "ef_construction=200"],
    );
}

#[test]
fn vamana_build_bench_and_peer_reach_recall_and_reproduce_with_one_thread() {
    graph_build_bench_and_peer(
        "vamana",
        &["--r", "16", "--l", "60", "--alpha", "1.2"],
        &["R=32", "L=200", "alpha=1.2"],
    );
}

/// A graph index (`kind`) built by `neardb build` with `args` (twice on one thread: the same
/// file), benchmarked from RAM and through mmap, and built and searched as the harness's entry
/// does with `peer_opts`.
fn graph_build_bench_and_peer(kind: &str, args: &[&str], peer_opts: &[&str]) {
    let d = dataset("l2");
    let base = d.root.join("base.fvecs");
    let queries = d.root.join("query.fvecs");
    let gt = d.root.join("groundtruth.ivecs");
    let index = d.root.join(format!("{kind}.neardb"));
    let build = |out: &Path| {
        let mut argv = vec!["build", "--base", s(&base), "--metric", "l2", "--index", kind];
        argv.extend(args);
        argv.extend(["--threads", "1", "--seed", "9", "--output", s(out)]);
        ok(&argv)
    };
    build(&index);
    let again = d.root.join(format!("{kind}-again.neardb"));
    build(&again);
    assert_eq!(std::fs::read(&index).unwrap(), std::fs::read(&again).unwrap(), "one-thread builds reproduce");
    let info = last_json(&ok(&["info", s(&index), "--json"]));
    assert_eq!(info["kind"], kind);
    for load in ["ram", "mmap"] {
        let out = ok(&[
            "bench",
            "--index",
            s(&index),
            "--queries",
            s(&queries),
            "--truth",
            s(&gt),
            "-k",
            "10",
            "--param",
            "16,128",
            "--json",
            "--min-time",
            "0",
            "--max-repeat",
            "1",
            "--load",
            load,
        ]);
        let rows: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["param"], 16);
        let (low, high) = (rows[0]["recall"].as_f64().unwrap(), rows[1]["recall"].as_f64().unwrap());
        assert!(high >= 0.98 && high >= low, "{kind} {load}: recall {low} at ef 16, {high} at ef 128");
    }
    // The harness's entry, exactly as it calls us.
    let peer_index = d.root.join(format!("peer-{kind}"));
    let index_opt = format!("index={kind}");
    let mut argv = vec!["peer", "build", "--base", s(&base), "--metric", "l2", "--threads", "2"];
    argv.extend(["--index", s(&peer_index), "--opt", &index_opt]);
    for o in peer_opts {
        argv.extend(["--opt", o]);
    }
    ok(&argv);
    let res = d.root.join("peer.ivecs");
    ok(&peer_search(&peer_index, &base, &queries, "64", &res, &[]));
    let (r, _) = read_ivecs(&res).unwrap();
    let (t, tk) = read_ivecs(&gt).unwrap();
    let hits: usize = (0..50)
        .map(|q| r[q * 10..q * 10 + 10].iter().filter(|id| t[q * tk..q * tk + 10].contains(id)).count())
        .sum();
    assert!(hits >= 480, "peer {kind} recall {hits} / 500");
}

#[test]
fn corpus_dedupes_and_samples_and_embed_rejects_bad_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tr = dir.path().join("Translation-en");
    std::fs::write(
        &tr,
        "Package: mpg123\nDescription-md5: 1\nDescription-en: console MPEG audio player\n plays mp3 files\n\n\
         Package: mpg123\nDescription-md5: 2\nDescription-en: a second copy\n\n\
         Package: twin\nDescription-md5: 3\nDescription-en: console MPEG audio player\n plays mp3 files\n\n\
         Package: sox\nDescription-md5: 4\nDescription-en: Swiss army knife of sound processing\n\n\
         Package: vim\nDescription-md5: 5\nDescription-en: Vi IMproved - enhanced vi editor\n",
    )
    .expect("write");
    let docs = dir.path().join("docs.jsonl");
    let shown = dir.path().join("docs.json");
    ok(&["corpus", "--translations", s(&tr), "--output", s(&docs), "--docs-json", s(&shown)]);
    let names: Vec<String> = std::fs::read_to_string(&docs)
        .expect("read")
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["name"].as_str().expect("name").into()
        })
        .collect();
    // The second mpg123 and the word-for-word twin are dropped.
    assert_eq!(names, ["mpg123", "sox", "vim"]);
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&shown).expect("read")).expect("json");
    assert_eq!(list[0]["long"], "plays mp3 files");
    assert_eq!(list.as_array().map(Vec::len), Some(3));
    ok(&["corpus", "--translations", s(&tr), "--output", s(&docs), "--every", "2"]);
    assert_eq!(std::fs::read_to_string(&docs).expect("read").lines().count(), 2);
    assert!(fails(&["corpus", "--translations", s(&tr), "--output", s(&docs), "--every", "0"])
        .contains("--every"));

    let out = dir.path().join("v.fvecs");
    let err = fails(&["embed", "--input", s(&docs), "--field", "body", "--output", s(&out)]);
    assert!(err.contains("no string field \"body\""), "{err}");
    let err = fails(&["embed", "--input", s(&docs), "--output", s(&out), "--batch", "0"]);
    assert!(err.contains("--batch must be at least 1"), "{err}");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"text\": \"ok\"}\nnot json\n").expect("write");
    let err = fails(&["embed", "--input", s(&bad), "--output", s(&out)]);
    assert!(err.contains("bad.jsonl:2"), "{err}");
    std::fs::write(&bad, "{\"text\": \"ok\"}\n{\"text\": 5}\n").expect("write");
    let err = fails(&["embed", "--input", s(&bad), "--output", s(&out)]);
    assert!(err.contains("bad.jsonl:2: field \"text\" is a number, not a string"), "{err}");
    std::fs::write(&bad, b"{\"text\": \"ok\"}\n{\"text\": \"caf\xe9\"}\n").expect("write");
    let err = fails(&["embed", "--input", s(&bad), "--output", s(&out)]);
    assert!(err.contains("bad.jsonl:2:") && err.contains("UTF-8"), "{err}");
    let err = fails(&["embed", "--input", s(&docs), "--output", s(&out), "--model", s(dir.path())]);
    assert!(err.contains("loading the model"), "{err}");
}

/// Recall@10 of an `.ivecs` result file against the dataset's ground truth.
fn recall_of(d: &Dataset, results: &Path) -> f64 {
    let (t, tk) = read_ivecs(&d.root.join("groundtruth.ivecs")).unwrap();
    let (r, rk) = read_ivecs(results).unwrap();
    assert_eq!(rk, 10);
    let nq = r.len() / rk;
    let hits: usize = (0..nq)
        .map(|q| r[q * 10..q * 10 + 10].iter().filter(|id| t[q * tk..q * tk + 10].contains(id)).count())
        .sum();
    hits as f64 / (nq * 10) as f64
}

#[test]
fn compressed_indexes_build_search_bench_and_serve_the_harness() {
    let d = dataset("l2");
    let base = d.root.join("base.fvecs");
    let queries = d.root.join("query.fvecs");
    let truth = d.root.join("groundtruth.ivecs");
    // (build options, harness --param, recall floor with that param, file smaller than the
    // f32 vectors alone; a 24-d HNSW file is mostly graph, so only IVF-PQ and binary qualify)
    let cases: [(&[&str], &str, f64, bool); 15] = [
        (&["index=vamana", "R=16", "L=60", "quantize=sq8", "rerank=4"], "64", 0.9, false),
        (&["index=vamana", "R=16", "L=60", "quantize=f16"], "64", 0.9, false),
        (&["index=hnsw", "M=12", "ef_construction=80", "quantize=sq8", "rerank=4"], "64", 0.9, false),
        (&["index=hnsw", "M=12", "ef_construction=80", "quantize=f16"], "64", 0.9, false),
        (&["index=hnsw", "M=12", "ef_construction=80", "quantize=sq8+f16", "rerank=4"], "64", 0.9, false),
        // Reordered slots: the harness must still get row numbers back (from the ids section).
        (&["index=hnsw", "M=12", "ef_construction=80", "layout=graph"], "64", 0.9, false),
        (&["index=hnsw", "M=12", "ef_construction=80", "quantize=sq8", "rerank=0"], "64", 0.8, false),
        (&["index=ivfpq", "nlist=32", "m=8"], "8/16", 0.9, false),
        (&["index=ivfpq", "nlist=32", "m=8", "rerank=0"], "32/0", 0.4, true),
        (&["index=flat", "quantize=pq", "pq_m=12"], "1/20", 0.9, false),
        (&["index=binary", "bits=256", "rerank=0"], "-", 0.2, true),
        (&["index=binary", "bits=128", "tables=8", "key_bits=8"], "16/20", 0.8, false),
        // Binary16 rows: scanned by flat, re-ranked from by IVF-PQ and binary.
        (&["index=flat", "quantize=f16"], "-", 0.99, false),
        (&["index=ivfpq", "nlist=32", "m=8", "quantize=f16"], "8/16", 0.9, false),
        (&["index=binary", "bits=128", "tables=8", "key_bits=8", "quantize=f16"], "16/20", 0.8, false),
    ];
    let flat_bytes = 3000 * 24 * 4;
    for (opts, param, floor, small) in cases {
        let index = d.root.join("c.neardb");
        let built = last_json(&ok(&peer_build(&base, &index, opts)));
        let bytes = built["index_bytes"].as_u64().unwrap() as usize;
        if small {
            assert!(bytes < flat_bytes, "{opts:?}: {bytes} bytes");
        }
        let res = d.root.join("c.ivecs");
        let mut args = vec!["peer", "search", "--index", s(&index), "--queries", s(&queries), "--k", "10"];
        args.extend(["--param", param, "--min-time", "0.01", "--max-repeat", "1", "--out", s(&res)]);
        ok(&args);
        let r = recall_of(&d, &res);
        assert!(r >= floor, "{opts:?} --param {param}: recall {r}");
    }
    // neardb build / bench with the same options, sweeping nprobe and rerank.
    let index = d.root.join("ivf.neardb");
    ok(&[
        "build",
        "--base",
        s(&base),
        "--metric",
        "l2",
        "--index",
        "ivfpq",
        "--nlist",
        "16",
        "--pq-m",
        "6",
        "-o",
        s(&index),
    ]);
    let out = ok(&[
        "bench",
        "--index",
        s(&index),
        "--queries",
        s(&queries),
        "--truth",
        s(&truth),
        "--nprobe",
        "1,16",
        "--rerank",
        "1,10",
        "--json",
        "--min-time",
        "0.01",
        "--max-repeat",
        "1",
    ]);
    let rows: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 4);
    let recall = |p: u64, r: u64| {
        rows.iter().find(|x| x["param"] == p && x["rerank"] == r).unwrap()["recall"].as_f64().unwrap()
    };
    // More lists probed and more candidates re-ranked never hurt, and together reach high recall.
    assert!(recall(16, 10) >= recall(1, 10) && recall(16, 10) >= recall(16, 1), "{rows:?}");
    assert!(recall(16, 10) >= 0.95, "{rows:?}");
    // Options that make no sense are refused with a message.
    let err = fails(&peer_build(&base, &index, &["index=hnsw", "layout=spiral"]));
    assert!(err.contains("layout \"spiral\"") && err.contains("insertion, graph"), "{err}");
    let err = fails(&peer_build(&base, &index, &["index=annoy"]));
    assert!(err.contains("annoy") && err.contains("flat, hnsw, ivfpq, binary, vamana"), "{err}");
    let refused: [(&[&str], &[&str]); 6] = [
        (&["--index", "flat", "--quantize", "sq8"], &["not available"]),
        (&["--index", "hnsw", "--quantize", "pq"], &["not available"]),
        (&["--index", "hnsw", "--quantize", "pq:12"], &["invalid value 'pq:12'"]),
        (&["--index", "hnsw", "--layout", "spiral"], &["invalid value 'spiral'", "insertion, graph"]),
        (&["--index", "annoy"], &["invalid value 'annoy'"]),
        (&["--index", "ivfpq", "--pq-m", "7"], &["divide"]),
    ];
    for (options, any_of) in refused {
        let mut args = vec!["build", "--base", s(&base), "--metric", "l2", "-o", s(&index)];
        args.extend_from_slice(options);
        let err = fails(&args);
        assert!(any_of.iter().any(|m| err.contains(m)), "{options:?}: {err}");
    }
    let err = fails(&["build", "--base", s(&base), "--metric", "l1", "--index", "ivfpq", "-o", s(&index)]);
    assert!(err.contains("not l1"), "{err}");
}

#[test]
fn disk_index_builds_searches_benches_and_serves_the_harness() {
    let d = dataset("l2");
    let base = d.root.join("base.fvecs");
    let queries = d.root.join("query.fvecs");
    let gt = d.root.join("groundtruth.ivecs");
    let index = d.root.join("c.disk");
    let out = ok(&[
        "build",
        "--base",
        s(&base),
        "--metric",
        "l2",
        "--index",
        "disk",
        "--r",
        "16",
        "--l",
        "50",
        "--pq-bytes",
        "8",
        "--output",
        s(&index),
    ]);
    assert!(out.contains("built disk index"), "{out}");
    let info = last_json(&ok(&["info", s(&index), "--json"]));
    assert_eq!(
        (info["kind"].as_str(), info["count"].as_u64(), info["dim"].as_u64()),
        (Some("disk"), Some(3000), Some(24))
    );
    assert_eq!((info["pq_bytes"].as_u64(), info["max_degree"].as_u64()), (Some(8), Some(16)));
    assert_eq!(info["file_bytes"].as_u64(), Some(std::fs::metadata(&index).unwrap().len()));
    // A sweep of L: recall rises, reads are counted; the plain walk reads more for less.
    let bench = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut argv =
            vec!["bench", "--index", s(&index), "--queries", s(&queries), "--truth", s(&gt), "-k", "10"];
        argv.extend(["--param", "10,60", "--json", "--min-time", "0", "--max-repeat", "1", "--threads", "1"]);
        argv.extend(extra);
        ok(&argv).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let rows = bench(&["--reader", "pread"]);
    let (low, high) = (rows[0]["recall"].as_f64().unwrap(), rows[1]["recall"].as_f64().unwrap());
    assert!(high >= 0.95 && high >= low, "recall {low} at L 10, {high} at L 60");
    assert!(rows[1]["reads_mean"].as_f64().unwrap() > rows[0]["reads_mean"].as_f64().unwrap());
    assert_eq!(rows[0]["reader"], "pread");
    let plain = bench(&["--plain-walk"]);
    assert!(plain[1]["recall"].as_f64().unwrap() >= 0.9, "{plain:?}");
    let cached = bench(&["--cache-mb", "1"]);
    assert!(cached[1]["cache_hits_mean"].as_f64().unwrap() > 0.0);
    // relayout: the same graph in two-sector blocks answers as well, reading whole blocks.
    let blocks = d.root.join("blocks.disk");
    ok(&["relayout", s(&index), "--out", s(&blocks), "--block-sectors", "2"]);
    let info: serde_json::Value = serde_json::from_str(&ok(&["info", s(&blocks), "--json"])).unwrap();
    assert_eq!(info["block_sectors"], 2, "{info}");
    let mut argv =
        vec!["bench", "--index", s(&blocks), "--queries", s(&queries), "--truth", s(&gt), "-k", "10"];
    argv.extend(["--param", "60", "--json", "--min-time", "0", "--max-repeat", "1", "--threads", "1"]);
    let row: serde_json::Value = serde_json::from_str(ok(&argv).lines().next().unwrap()).unwrap();
    assert!(row["recall"].as_f64().unwrap() >= 0.95, "{row}");
    assert!(fails(&["relayout", s(&index), "--out", s(&blocks), "--block-sectors", "99"]).contains("1 to 16"));
    // search: results as rows, in the .ivecs the harness reads.
    let res = d.root.join("disk.ivecs");
    ok(&[
        "search",
        "--index",
        s(&index),
        "--queries",
        s(&queries),
        "-k",
        "10",
        "--ef",
        "60",
        "--output",
        s(&res),
    ]);
    let (r, rk) = read_ivecs(&res).unwrap();
    assert_eq!((r.len(), rk), (500, 10));
    // The harness's entry: index=disk with its R, L and PQ bytes; W and cache_nodes at search.
    let peer_index = d.root.join("peer.disk");
    ok(&peer_build(&base, &peer_index, &["index=disk", "R=16", "L=50", "pq_bytes=8"]));
    let out = ok(&peer_search(&peer_index, &base, &queries, "60", &res, &["W=4", "cache_nodes=0"]));
    let json = last_json(&out);
    assert!(json["ios_per_query"].as_f64().unwrap() > 1.0, "{json}");
    assert!(recall_of(&d, &res) >= 0.95);
    // Bad input: an unknown search option, PQ bytes that do not divide the dimension, a file
    // that is not an index, and a truncated one.
    let err = fails(&[
        "peer",
        "search",
        "--index",
        s(&peer_index),
        "--queries",
        s(&queries),
        "--param",
        "60",
        "--out",
        s(&res),
        "--opt",
        "beamwidth=4",
    ]);
    assert!(err.contains("beamwidth"), "{err}");
    let err = fails(&[
        "build",
        "--base",
        s(&base),
        "--metric",
        "l2",
        "--index",
        "disk",
        "--pq-bytes",
        "7",
        "--output",
        s(&index),
    ]);
    assert!(err.contains("divide"), "{err}");
    let bytes = std::fs::read(&index).unwrap();
    let cut = d.root.join("cut.disk");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let err = fails(&["search", "--index", s(&cut), "--queries", s(&queries)]);
    assert!(err.contains("truncated"), "{err}");
    let err = fails(&["bench", "--index", s(&index), "--queries", s(&base), "--truth", s(&gt)]);
    assert!(err.contains("ground truth") || err.contains("rows"), "{err}");
}

#[test]
fn allow_files_restrict_search_and_bench_and_bad_ones_are_refused() {
    let d = dataset("l2");
    let (base, queries) = (d.root.join("base.fvecs"), d.root.join("query.fvecs"));
    let index = d.root.join("hnsw.neardb");
    ok(&["build", "--base", s(&base), "--metric", "l2", "--index", "hnsw", "--output", s(&index)]);
    // Every seventh record allowed (429 of 3000), and the exact answers over them.
    let allowed = |row: usize| row % 7 == 3;
    let mask: Vec<u8> = (0..3000).map(|r| u8::from(allowed(r))).collect();
    let allow = d.root.join("mask.u8");
    std::fs::write(&allow, &mask).unwrap();
    let (rows, dim) = read_f32_vectors(&base).unwrap();
    let (qs, _) = read_f32_vectors(&queries).unwrap();
    let mut truth = Vec::new();
    for q in qs.chunks_exact(dim) {
        let mut scored: Vec<(f32, i32)> = rows
            .chunks_exact(dim)
            .enumerate()
            .filter(|(r, _)| allowed(*r))
            .map(|(r, v)| (v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(), r as i32))
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        truth.extend(scored.iter().take(10).map(|p| p.1));
    }
    let truth_path = d.root.join("allowed-truth.ivecs");
    neardb::io::write_ivecs(&truth_path, &truth, 10).unwrap();

    // `neardb search --allow` over an index: ten answers a query, each allowed.
    let search_allowed = |index: &Path| {
        let argv = [
            "search",
            "--index",
            s(index),
            "--queries",
            s(&queries),
            "-k",
            "10",
            "--json",
            "--allow",
            s(&allow),
        ];
        for line in ok(&argv).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let ids = v["ids"].as_array().unwrap();
            assert_eq!(ids.len(), 10);
            assert!(
                ids.iter().all(|id| allowed(id.as_u64().unwrap() as usize)),
                "a disallowed record: {line}"
            );
        }
    };
    search_allowed(&index);
    // `neardb bench --allow` over the index, with more arguments; its JSON row.
    let bench_allowed = |more: &[&str]| {
        let mut args = vec![
            "bench",
            "--index",
            s(&index),
            "--queries",
            s(&queries),
            "--truth",
            s(&truth_path),
            "-k",
            "10",
            "--param",
            "64",
            "--json",
            "--min-time",
            "0",
            "--allow",
            s(&allow),
        ];
        args.extend_from_slice(more);
        last_json(&ok(&args))
    };
    let row = bench_allowed(&[]);
    assert!(row["recall"].as_f64().unwrap() >= 0.95, "{row}");
    assert!(row["plan"].is_string() && row["distances_per_query"].as_f64().unwrap() > 0.0, "{row}");
    // Each strategy forced: the plan reported is the one asked for, and the forced scan is exact.
    for (strategy, plan) in [("scan", "scan"), ("walk", "filtered-walk"), ("two-hop", "two-hop-walk")] {
        let row = bench_allowed(&["--filter-strategy", strategy]);
        assert_eq!(row["plan"], plan, "{row}");
        if strategy == "scan" {
            assert_eq!(row["recall"].as_f64().unwrap(), 1.0, "{row}");
        }
    }
    let err = fails(&["search", "--index", s(&index), "--queries", s(&queries), "--filter-strategy", "walk"]);
    assert!(err.contains("--allow"), "{err}");

    let short = d.root.join("short.u8");
    std::fs::write(&short, &mask[..2999]).unwrap();
    let err = fails(&["search", "--index", s(&index), "--queries", s(&queries), "--allow", s(&short)]);
    assert!(err.contains("2999 bytes") && err.contains("3000 records"), "{err}");
    let err = fails(&[
        "search",
        "--index",
        s(&index),
        "--queries",
        s(&queries),
        "--allow",
        s(&d.root.join("none.u8")),
    ]);
    assert!(err.contains("--allow") && err.contains("none.u8"), "{err}");

    // The SSD index takes the same mask: its planner's choice, or the plan asked for.
    let disk = d.root.join("allow.disk");
    ok(&[
        "build",
        "--base",
        s(&base),
        "--metric",
        "l2",
        "--index",
        "disk",
        "--pq-bytes",
        "8",
        "--output",
        s(&disk),
    ]);
    search_allowed(&disk);
    let bench_disk = |more: &[&str]| {
        let mut args =
            vec!["bench", "--index", s(&disk), "--queries", s(&queries), "--truth", s(&truth_path)];
        args.extend(["-k", "10", "--param", "64", "--json", "--min-time", "0", "--allow", s(&allow)]);
        args.extend_from_slice(more);
        last_json(&ok(&args))
    };
    let row = bench_disk(&[]);
    assert!(row["recall"].as_f64().unwrap() >= 0.9, "{row}");
    for (strategy, plan) in [("scan", "scan"), ("walk", "filtered-walk")] {
        let row = bench_disk(&["--filter-strategy", strategy]);
        assert!(row["plans"].as_str().unwrap().starts_with(plan), "{row}");
        assert!(row["recall"].as_f64().unwrap() >= 0.85, "{row}");
    }
    let err = fails(&[
        "bench",
        "--index",
        s(&disk),
        "--queries",
        s(&queries),
        "--truth",
        s(&truth_path),
        "--allow",
        s(&allow),
        "--filter-strategy",
        "two-hop",
    ]);
    assert!(err.contains("two-hop"), "{err}");
    let err = fails(&["search", "--index", s(&disk), "--queries", s(&queries), "--allow", s(&short)]);
    assert!(err.contains("2999 bytes") && err.contains("3000 records"), "{err}");
}

#[test]
fn collection_commands_load_filter_version_and_refuse_bad_input() {
    let d = dataset("l2");
    let (base, dim) = read_f32_vectors(&d.root.join("base.fvecs")).unwrap();
    let dir = d.root.join("coll");
    let dir_s = s(&dir).to_owned();
    ok(&[
        "collection",
        "create",
        "--dir",
        &dir_s,
        "--dim",
        &dim.to_string(),
        "--metric",
        "l2",
        "--opt",
        "m=8",
    ]);
    // 3000 records: tag t0..t9 by row, num = row / 3000.
    let mut lines = String::new();
    for (i, v) in base.chunks_exact(dim).enumerate() {
        let vector: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        lines += &format!(
            "{{\"id\": {i}, \"vector\": [{}], \"metadata\": {{\"tag\": \"t{}\", \"num\": {}}}}}\n",
            vector.join(","),
            i % 10,
            i as f64 / 3000.0
        );
    }
    let records = d.root.join("records.jsonl");
    std::fs::write(&records, &lines).unwrap();
    let out =
        ok(&["collection", "upsert", "--dir", &dir_s, "--records", s(&records), "--batch", "500", "--json"]);
    assert_eq!(last_json(&out)["records"], 3000);
    ok(&["collection", "commit", "--dir", &dir_s, "--name", "v-one"]);
    // A filtered search: every hit matches, and the exact answer (forced scan) equals brute
    // force over the matching rows.
    let queries = d.root.join("query.fvecs");
    let filter =
        r#"{"must": [{"key": "tag", "match": {"value": "t3"}}, {"key": "num", "range": {"lt": 0.5}}]}"#;
    let out = ok(&[
        "collection",
        "search",
        "--dir",
        &dir_s,
        "--queries",
        s(&queries),
        "-k",
        "5",
        "--filter",
        filter,
        "--filter-strategy",
        "scan",
        "--with-metadata",
    ]);
    let (qs, _) = read_f32_vectors(&queries).unwrap();
    for (line, q) in out.lines().zip(qs.chunks_exact(dim)) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ids: Vec<u64> = v["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        let mut want: Vec<(f32, u64)> = base
            .chunks_exact(dim)
            .enumerate()
            .filter(|(i, _)| i % 10 == 3 && (*i as f64 / 3000.0) < 0.5)
            .map(|(i, r)| (r.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(), i as u64))
            .collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        assert_eq!(ids, want.iter().take(5).map(|w| w.1).collect::<Vec<_>>());
        assert!(v["metadata"].as_array().unwrap().iter().all(|m| m["tag"] == "t3"));
    }
    // Delete by filter, then the old version still has them and the current one does not.
    let out = ok(&[
        "collection",
        "delete",
        "--dir",
        &dir_s,
        "--filter",
        r#"{"must": [{"key": "tag", "match": {"value": "t3"}}]}"#,
    ]);
    assert!(out.contains("deleted 300 records"), "{out}");
    assert!(fails(&["collection", "get", "--dir", &dir_s, "--id", "3"]).contains("no record has id 3"));
    ok(&["collection", "commit", "--dir", &dir_s]);
    let versions = ok(&["collection", "versions", "--dir", &dir_s, "--time"]);
    assert_eq!(versions.lines().count(), 2);
    assert_eq!(last_json(&versions)["records"], 2700);
    let old = ok(&[
        "collection",
        "search",
        "--dir",
        &dir_s,
        "--queries",
        s(&queries),
        "-k",
        "3",
        "--version",
        "v-one",
        "--filter",
        r#"{"must": [{"has_id": [3]}]}"#,
    ]);
    assert!(old.lines().all(|l| l.contains("\"ids\":[3]")), "{old}");
    let info = last_json(&ok(&["collection", "info", "--dir", &dir_s]));
    assert_eq!(info["records"], 2700);
    // Bad input: a malformed line names its number, a bad filter names its place, a wrong
    // dimension names the record.
    std::fs::write(&records, "{\"id\": 1, \"vector\": [1, 2]}\n{\"id\": 2, \"vector\": \"x\"}\n").unwrap();
    let err = fails(&["collection", "upsert", "--dir", &dir_s, "--records", s(&records)]);
    assert!(err.contains("line 2"), "{err}");
    std::fs::write(&records, "{\"id\": 1, \"vector\": [1, 2]}\n").unwrap();
    let err = fails(&["collection", "upsert", "--dir", &dir_s, "--records", s(&records)]);
    assert!(err.contains("record 1") && err.contains("dimension mismatch"), "{err}");
    let err = fails(&[
        "collection",
        "search",
        "--dir",
        &dir_s,
        "--queries",
        s(&queries),
        "--filter",
        r#"{"must": [{"key": "n", "range": {"lt": "x"}}]}"#,
    ]);
    assert!(err.contains("filter.must[0].range.lt"), "{err}");
    let err = fails(&["collection", "create", "--dir", &dir_s, "--dim", "4", "--metric", "l2"]);
    assert!(err.contains("already holds a collection"), "{err}");
}

#[test]
fn collection_upsert_embeds_text_that_comes_without_a_vector() {
    let dir = tempfile::tempdir().unwrap();
    let coll = dir.path().join("docs");
    ok(&["collection", "create", "--dir", s(&coll), "--dim", "384", "--metric", "cosine"]);
    let records = dir.path().join("docs.jsonl");
    std::fs::write(
        &records,
        concat!(
            "{\"id\": \"cat\", \"metadata\": {\"text\": \"a cat sits on the mat\"}}\n",
            "{\"id\": \"kitten\", \"metadata\": {\"text\": \"a kitten is sitting on a rug\"}}\n",
            "{\"id\": \"stocks\", \"metadata\": {\"text\": \"stock markets fell today\"}}\n",
        ),
    )
    .unwrap();
    let err = fails(&["collection", "upsert", "--dir", s(&coll), "--records", s(&records)]);
    assert!(err.contains("line 1") && err.contains("vector"), "{err}");
    ok(&["collection", "upsert", "--dir", s(&coll), "--records", s(&records), "--embed", "text"]);
    let got =
        ok(&["collection", "get", "--dir", s(&coll), "--id", "cat", "--id", "kitten", "--id", "stocks"]);
    let vectors: Vec<Vec<f32>> = got
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["vector"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
        })
        .collect();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert_eq!(vectors[0].len(), 384);
    // Known similarities of all-MiniLM-L6-v2 (0.69 and 0.07).
    assert!((dot(&vectors[0], &vectors[1]) - 0.69).abs() < 0.02, "{}", dot(&vectors[0], &vectors[1]));
    assert!(dot(&vectors[0], &vectors[2]) < 0.15);
    std::fs::write(&records, "{\"id\": 9, \"metadata\": {\"title\": \"no text\"}}\n").unwrap();
    let err =
        fails(&["collection", "upsert", "--dir", s(&coll), "--records", s(&records), "--embed", "text"]);
    assert!(err.contains("no string metadata field \"text\""), "{err}");
}

#[test]
fn embed_vectors_do_not_depend_on_batch_size_or_threads() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("texts.jsonl");
    let texts = [
        "a cat sits on the mat",
        "",
        "mpg123: console MPEG audio player",
        "Ünïcödé façade 🚀",
        "vim: Vi IMproved - enhanced vi editor",
        "stock markets fell today",
        "libssl3: Secure Sockets Layer toolkit - shared libraries",
    ];
    let lines: Vec<String> = texts.iter().map(|t| serde_json::json!({ "text": t }).to_string()).collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let run = |threads: &str, batch: &str| {
        let out = dir.path().join(format!("v-{threads}-{batch}.fvecs"));
        ok(&["embed", "--input", s(&input), "--output", s(&out), "--threads", threads, "--batch", batch]);
        std::fs::read(&out).unwrap()
    };
    let one = run("1", "1");
    assert_eq!(one.len(), texts.len() * (4 + 384 * 4));
    assert_eq!(run("2", "3"), one, "2 threads, batches of 3");
    assert_eq!(run("2", "64"), one, "2 threads, one batch");
}
