//! Status assembly (decode every broadcast, liveness, roll-up) plus JSON encoding of the result,
//! on synthetic snapshots of 16x256, 64x1024 and 256x4096 nodes x LUNs (10% degraded cells,
//! 5% offline and 5% stale nodes). Method and numbers: docs/PERFORMANCE.md.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mpcluster_core::status::assemble;
use mpcluster_core::synthetic::{SyntheticSpec, synthetic_snapshot};

fn status_assembly(c: &mut Criterion) {
    let mut group = c.benchmark_group("status_assembly_json");
    group.sample_size(10);
    for (nodes, luns) in [(16, 256), (64, 1024), (256, 4096)] {
        let snap = synthetic_snapshot(SyntheticSpec::new(nodes, luns));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{nodes}x{luns}")),
            &snap,
            |b, snap| {
                b.iter(|| {
                    let a = assemble(snap);
                    serde_json::to_vec(&a.status).map(|v| v.len())
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, status_assembly);
criterion_main!(benches);
