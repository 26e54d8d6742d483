//! Status assembly plus JSON encoding of the result, on synthetic snapshots of 16x256, 64x1024
//! and 256x4096 nodes x LUNs (10% degraded cells, 5% offline and 5% stale nodes).
//!
//! - `cold`: from raw broadcasts (every node decoded), what `mpcluster status --snapshot` does.
//! - `warm`: what the server does on a store event: one node's broadcast changed, the others
//!   are reused from the [`StatusEngine`] cache.
//!
//! Method and numbers: docs/PERFORMANCE.md.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mpcluster_core::snapshot::Snapshot;
use mpcluster_core::status::{StatusEngine, assemble};
use mpcluster_core::synthetic::{SyntheticSpec, synthetic_snapshot};

const SIZES: [(usize, usize); 3] = [(16, 256), (64, 1024), (256, 4096)];

/// The same snapshot with the first node's broadcast rewritten (one more degraded map).
fn with_one_node_changed(snap: &Snapshot, flip: bool) -> Snapshot {
    let mut next = snap.clone();
    if let Some(raw) = next.kv.multipath.values_mut().next() {
        *raw = if flip {
            raw.replacen("\"optimal\"", "\"degraded\"", 1)
        } else {
            raw.replacen("\"degraded\"", "\"optimal\"", 1)
        };
    }
    next
}

fn status_assembly(c: &mut Criterion) {
    let mut group = c.benchmark_group("status_cold");
    group.sample_size(10);
    for (nodes, luns) in SIZES {
        let snap = synthetic_snapshot(SyntheticSpec::new(nodes, luns));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{nodes}x{luns}")),
            &snap,
            |b, snap| b.iter(|| serde_json::to_vec(&assemble(snap).status).map(|v| v.len())),
        );
    }
    group.finish();

    let mut group = c.benchmark_group("status_warm_one_node_changed");
    group.sample_size(10);
    for (nodes, luns) in SIZES {
        let base = synthetic_snapshot(SyntheticSpec::new(nodes, luns));
        let variants = [with_one_node_changed(&base, true), base.clone()];
        let mut engine = StatusEngine::default();
        engine.assemble(&base);
        let mut i = 0usize;
        group.bench_function(
            BenchmarkId::from_parameter(format!("{nodes}x{luns}")),
            |b| {
                b.iter(|| {
                    i += 1;
                    let a = engine.assemble(&variants[i % 2]);
                    serde_json::to_vec(&a.status).map(|v| v.len())
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, status_assembly);
criterion_main!(benches);
