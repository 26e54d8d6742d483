//! Node health collection, pure part: parse + summarize a generated `show maps json` reply of
//! 256 maps x 4 paths (0.9.4 layout), the raw-format fallback for the same system, and the
//! broadcast encoding. Prints the encoded broadcast size for 100 / 256 / 400 maps.
//!
//! `cargo bench -p mpcluster-core --bench multipathd -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mpcluster_core::multipathd::{
    MapsReply, parse_maps_json, parse_maps_raw, parse_paths_raw, summarize,
};
use mpcluster_core::payload::{BROADCAST_BUDGET, encode_broadcast, encode_detail};

#[path = "../tests/multipathd_gen/mod.rs"]
mod multipathd_gen;

use multipathd_gen::{maps_json, naa_wwid, paths_raw, summaries};

const MAPS: usize = 256;
const PATHS: usize = 4;
const NOW: i64 = 1_764_254_400;

/// The `show maps raw format` reply (agent's format) for the generated system.
fn maps_raw(maps: usize) -> String {
    (0..maps)
        .map(|m| {
            format!(
                "{}|dm-{m}|active|{PATHS}|5 chk|immediate|rw|1 queue_if_no_path|1 alua||0|lun{m}\n",
                naa_wwid(m)
            )
        })
        .collect()
}

fn print_sizes() {
    for n in [100, 256, 400] {
        let e = encode_broadcast(NOW, &summaries(n, Some(10), Some(50)));
        eprintln!(
            "broadcast {n:>3} maps (10% degraded, 2% failed, 33-char NAA WWIDs): {:>5} bytes \
             (budget {BROADCAST_BUDGET}); kept {}, optional fields dropped on {}, truncated {}",
            e.value.len(),
            e.maps_kept,
            e.reduced,
            e.truncated
        );
    }
}

fn bench(c: &mut Criterion) {
    print_sizes();
    let json = maps_json(MAPS, PATHS, Some(10));
    let paths = paths_raw(MAPS, PATHS);
    let maps = maps_raw(MAPS);
    eprintln!(
        "input: show maps json {} bytes, paths raw {} bytes, maps raw {} bytes",
        json.len(),
        paths.len(),
        maps.len()
    );
    let report = {
        let mut r = parse_maps_json(json.as_bytes()).unwrap();
        r.join_paths(&parse_paths_raw(paths.as_bytes()).unwrap());
        summarize(&r, |_| Some(1 << 40))
    };
    eprintln!(
        "detail payload for 256 x 4: {} bytes",
        encode_detail(NOW, &report).value.len()
    );

    c.bench_function("parse_maps_json 256x4", |b| {
        b.iter(|| parse_maps_json(black_box(json.as_bytes())).unwrap())
    });
    c.bench_function("parse+join+summarize json 256x4", |b| {
        b.iter(|| {
            let mut r = parse_maps_json(black_box(json.as_bytes())).unwrap();
            r.join_paths(&parse_paths_raw(black_box(paths.as_bytes())).unwrap());
            summarize(&r, |_| Some(1 << 40))
        })
    });
    c.bench_function("raw fallback parse+summarize 256x4", |b| {
        b.iter(|| {
            let p = parse_paths_raw(black_box(paths.as_bytes())).unwrap();
            let m = parse_maps_raw(black_box(maps.as_bytes())).unwrap();
            summarize(&MapsReply::from_raw(m, &p), |_| Some(1 << 40))
        })
    });
    let summary_256 = report.summaries();
    c.bench_function("encode_broadcast 256", |b| {
        b.iter(|| encode_broadcast(NOW, black_box(&summary_256)))
    });
    let summary_400 = summaries(400, Some(10), Some(50));
    c.bench_function("encode_broadcast 400 (truncating)", |b| {
        b.iter(|| encode_broadcast(NOW, black_box(&summary_400)))
    });
    c.bench_function("encode_detail 256x4", |b| {
        b.iter(|| encode_detail(NOW, black_box(&report)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
