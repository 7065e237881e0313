//! Flat scan against memory bandwidth, measured in the same run: one query over 100k × 1024
//! f32 vectors (400 MB, far beyond cache) on one thread, next to a plain streaming read of the
//! same buffer. The ratio of their bytes per second is the fraction of bandwidth the scan uses.
//! `NEARDB_SCAN_N` overrides the vector count.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use neardb::rng::Rng;
use neardb::{FlatIndex, Metric, SearchParams, VectorSearch};
use std::hint::black_box;
use std::time::Duration;

/// The streaming-read reference: sums the buffer with 16 independent accumulators, which the
/// compiler vectorises; far more arithmetic capacity than memory can feed, so it runs at the
/// read bandwidth.
fn stream_sum(data: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    for chunk in data.chunks_exact(16) {
        for j in 0..16 {
            acc[j] += chunk[j];
        }
    }
    acc.iter().sum()
}

fn flat_scan(c: &mut Criterion) {
    let n: usize = std::env::var("NEARDB_SCAN_N").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dim = 1024;
    let mut rng = Rng::new(7);
    let data: Vec<f32> = (0..n * dim).map(|_| rng.next_f32()).collect();
    let query: Vec<f32> = (0..dim).map(|_| rng.next_f32()).collect();
    let mut index = FlatIndex::new(dim, Metric::L2).expect("valid dimension");
    index.add(&data).expect("finite data");
    drop(data);
    let bytes = (n * dim * 4) as u64;
    let mut g = c.benchmark_group(format!("scan_{n}x{dim}"));
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    g.bench_function("memory_read_bandwidth", |b| {
        b.iter(|| stream_sum(black_box(index.rows().f32().expect("f32 rows"))))
    });
    let params = SearchParams::new();
    for metric_name in ["l2", "ip"] {
        let idx = if metric_name == "l2" {
            index.clone()
        } else {
            let mut ip = FlatIndex::new(dim, Metric::InnerProduct).expect("valid dimension");
            ip.add(index.rows().f32().expect("f32 rows")).expect("finite data");
            ip
        };
        g.bench_function(format!("flat_search_k10_{metric_name}_{}", idx.kernels().isa().name()), |b| {
            let mut out = Vec::with_capacity(10);
            b.iter(|| idx.search_into(black_box(&query), 10, &params, None, &mut out).expect("valid query"))
        });
    }
    g.finish();
}

criterion_group!(benches, flat_scan);
criterion_main!(benches);
