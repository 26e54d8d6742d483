//! Rendering a `/metrics` scrape of the status ([`Scrape::status_only`]: every status series,
//! without the server's own few hundred lines) on synthetic statuses of 16 x 256 and
//! 64 x 1000 nodes x LUNs (10% degraded cells, 5% offline and 5% stale nodes), as plain text
//! and gzip-compressed as it is sent ([`ScrapeBody`]). Prints the sizes first.
//!
//! Method and numbers: docs/PERFORMANCE.md.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mpcluster_core::status::{Assembly, assemble};
use mpcluster_core::synthetic::{SyntheticSpec, synthetic_snapshot};
use mpcluster_server::metrics::{Scrape, ScrapeBody};

const SIZES: [(usize, usize); 2] = [(16, 256), (64, 1000)];

/// Bytes sent, and the largest piece held at once.
fn drain(mut body: ScrapeBody) -> (usize, usize) {
    let (mut total, mut largest) = (0, 0);
    while let Some(b) = body.next_bytes() {
        total += b.len();
        largest = largest.max(b.len());
    }
    (total, largest)
}

fn scrape(c: &mut Criterion) {
    let statuses: Vec<(String, Arc<Assembly>, i64)> = SIZES
        .iter()
        .map(|&(nodes, luns)| {
            let snap = synthetic_snapshot(SyntheticSpec::new(nodes, luns));
            (
                format!("{nodes}x{luns}"),
                Arc::new(assemble(&snap)),
                snap.now,
            )
        })
        .collect();
    for (name, assembly, now) in &statuses {
        let text = Scrape::status_only(assembly.clone(), *now).into_text();
        let lines = text.iter().filter(|b| **b == b'\n').count();
        let (plain, largest) = drain(ScrapeBody::new(
            Scrape::status_only(assembly.clone(), *now),
            false,
        ));
        let (gzip, largest_gz) = drain(ScrapeBody::new(
            Scrape::status_only(assembly.clone(), *now),
            true,
        ));
        println!(
            "metrics {name}: {lines} lines, {plain} bytes (largest piece {largest}), gzip {gzip} bytes (largest piece {largest_gz})"
        );
    }

    let mut group = c.benchmark_group("metrics_scrape_plain");
    group.sample_size(10);
    for (name, assembly, now) in &statuses {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                drain(ScrapeBody::new(
                    Scrape::status_only(assembly.clone(), *now),
                    false,
                ))
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("metrics_scrape_gzip");
    group.sample_size(10);
    for (name, assembly, now) in &statuses {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                drain(ScrapeBody::new(
                    Scrape::status_only(assembly.clone(), *now),
                    true,
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, scrape);
criterion_main!(benches);
