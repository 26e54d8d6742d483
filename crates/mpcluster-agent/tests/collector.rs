//! The caching collector sees every change at once and returns the same report while nothing
//! changes; a daemon that stops answering is an error, never a cached report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mpcluster_agent::MultipathdClient;
use mpcluster_agent::collect::{Collector, collect};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use mpcluster_core::MapState;

#[tokio::test]
async fn collector_follows_changes_and_never_serves_a_stale_report() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimNode::start(
        &dir.path().join("mpd.sock"),
        &dir.path().join("sys"),
        SimState {
            maps: vec![SimMap::new(
                "3600a098038303053453f463045727a01",
                0,
                1 << 30,
                2,
                "scsi:fcp",
                0,
            )],
            ..SimState::default()
        },
    )
    .unwrap();
    let client = MultipathdClient::new(sim.socket_spec(), Duration::from_secs(2));
    let mut collector = Collector::new(client.clone(), sim.sysfs_root(), Duration::from_secs(60));

    let first = collector.collect().await.unwrap();
    assert_eq!(
        first.report,
        collect(&client, sim.sysfs_root()).await.unwrap(),
        "same as uncached"
    );
    assert_eq!(first.summaries, first.report.summaries());
    assert!(
        std::sync::Arc::ptr_eq(&collector.collect().await.unwrap(), &first),
        "unchanged: the same report, shared"
    );

    sim.update(|s| s.maps[0].paths[0].up = false);
    let changed = collector.collect().await.unwrap();
    let summary = changed.summaries.values().next().unwrap();
    assert_eq!(summary.state, MapState::Degraded);

    sim.update(|s| s.down = true);
    assert!(collector.collect().await.is_err());
    sim.update(|s| s.down = false);
    let back = collector.collect().await.unwrap();
    assert_eq!(back, changed);
}
