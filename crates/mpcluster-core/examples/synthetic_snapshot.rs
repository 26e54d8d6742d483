//! Print a synthetic cluster snapshot (`mpcluster_core::synthetic`): N nodes x M LUNs, 10 %
//! of the cells degraded, 5 % of the nodes offline and 5 % stale. Used by
//! `scripts/bench-seed.sh` to time `mpcluster status --snapshot` against the seed's rules.
//!
//! `cargo run --release -p mpcluster-core --features synthetic --example synthetic_snapshot -- 64 1024`

use std::io::Write as _;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut number = |what: &str, default: usize| match args.next() {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("synthetic_snapshot: {what} must be a number, not {v:?}");
            std::process::exit(2)
        }),
    };
    let nodes = number("NODES", 64);
    let luns = number("LUNS", 1024);
    let snap = mpcluster_core::synthetic::synthetic_snapshot(
        mpcluster_core::synthetic::SyntheticSpec::new(nodes, luns),
    );
    let text = serde_json::to_string(&snap).unwrap_or_else(|e| {
        eprintln!("synthetic_snapshot: {e}");
        std::process::exit(1)
    });
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").is_err() {
        std::process::exit(1);
    }
}
