//! Distance kernels at 1024 dimensions: the textbook scalar loop, the canonical scalar
//! reference, and every SIMD path this CPU has (vectors in L1, so this measures compute).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use neardb_core::rng::Rng;
use neardb_core::simd::scalar;
use neardb_core::{Isa, Kernels};
use std::hint::black_box;

fn kernels(c: &mut Criterion) {
    let dim = 1024;
    let mut rng = Rng::new(1);
    let a: Vec<f32> = (0..dim).map(|_| rng.next_f32()).collect();
    let b: Vec<f32> = (0..dim).map(|_| rng.next_f32()).collect();
    type Kernel = (&'static str, fn(&[f32], &[f32]) -> f32, fn(&Kernels, &[f32], &[f32]) -> f32);
    let pairs: [Kernel; 2] = [
        ("dot", scalar::dot_sequential, |k, a, b| k.dot(a, b)),
        ("l2sq", scalar::l2sq_sequential, |k, a, b| k.l2sq(a, b)),
    ];
    for (name, sequential, via_table) in pairs {
        let mut g = c.benchmark_group(format!("{name}_1024"));
        g.throughput(Throughput::Elements(dim as u64));
        g.bench_function("scalar_loop", |bench| bench.iter(|| sequential(black_box(&a), black_box(&b))));
        for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512] {
            match Kernels::for_isa(isa) {
                Some(k) => {
                    g.bench_function(isa.name(), |bench| {
                        bench.iter(|| via_table(&k, black_box(&a), black_box(&b)))
                    });
                }
                None => eprintln!("skipped: CPU lacks {}", isa.name()),
            }
        }
        g.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
