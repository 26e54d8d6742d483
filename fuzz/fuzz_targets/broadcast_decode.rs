//! A peer's `multipath` broadcast: the tolerant decoder, then the status assembly over a
//! snapshot in which that value is one node's broadcast, then the payload encoder over what
//! was decoded.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use mpcluster_core::NodeName;
use mpcluster_core::broadcast::decode;
use mpcluster_core::snapshot::{KvSnapshot, Member, SNAPSHOT_VERSION, Snapshot, SnapshotConfig};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let decoded = decode(&raw);

    // Decoding what was decoded gives the same broadcast, with nothing ignored.
    if let Ok(d) = &decoded {
        let again = serde_json::to_string(&d.broadcast).expect("broadcast serializes");
        let d2 = decode(&again).expect("re-encoded broadcast decodes");
        assert_eq!(d2.broadcast, d.broadcast, "{again}");
        assert!(d2.ignored.is_empty(), "{:?}", d2.ignored);
        // The encoder over the decoded maps, with a budget from the input.
        common::check_broadcast_encoding(&d.broadcast.maps, 40 + raw.len() % 2048);
    }

    let node = NodeName::new("node1").expect("node name");
    let time = decoded.as_ref().ok().and_then(|d| d.broadcast.time);
    let wwids = decoded
        .as_ref()
        .map(|d| d.broadcast.maps.keys().take(8).cloned().collect())
        .unwrap_or_default();
    let snap = Snapshot {
        version: SNAPSHOT_VERSION,
        now: time.unwrap_or(common::NOW),
        stale_after: None,
        config: SnapshotConfig {
            wwids,
            aliases: BTreeMap::new(),
        },
        members: [(node.clone(), Member { online: true })].into(),
        kv: KvSnapshot {
            multipath: [(node, raw.into_owned())].into(),
            ..KvSnapshot::default()
        },
        expectations: Default::default(),
        publish_errors: BTreeMap::new(),
    };
    common::check_snapshot(&snap);
});
