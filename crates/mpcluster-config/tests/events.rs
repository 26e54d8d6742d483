//! The event log in a real (embedded) store: the audit trail of edits, recording exactly once
//! under concurrent recorders, sealing and retention, unreadable and newer heads.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use mpcluster_config::events::{
    ChunkCache, EVENTS_DOC, EventsError, append, as_actor, query, read_head, record_observation,
};
use mpcluster_config::{Form, wwids};
use mpcluster_core::events::{CHUNK_EVENTS, EventFilter, EventKind, Retention};
use mpcluster_core::rollup::{Cell, LunStatus};
use mpcluster_core::{MapState, NodeName, Wwid};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{ClusterStore, EmbeddedOptions, Expect};
use serde_json::{Value, json};

const W1: &str = "3600a098038303053453f463045727a01";

async fn store() -> (Arc<dyn ClusterStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    (Arc::new(store), dir)
}

fn form(v: Value) -> Form {
    let Value::Object(m) = v else { unreachable!() };
    Form::from_object(m).unwrap()
}

fn matrix(state: MapState, active: u64) -> Vec<LunStatus> {
    let mut cell = Cell::bare(state);
    cell.paths_active = Some(Some(active));
    cell.paths_total = Some(Some(4));
    vec![LunStatus {
        wwid: Wwid::new(W1).unwrap(),
        alias: None,
        used_by: None,
        size: None,
        cluster_state: state,
        nodes: [(NodeName::new("n1").unwrap(), cell)].into_iter().collect(),
    }]
}

#[tokio::test]
async fn every_edit_is_audited_with_its_actor_and_digests() {
    let (store, _dir) = store().await;
    let written = as_actor(
        "token:ops".to_owned(),
        wwids::add(store.as_ref(), form(json!({"wwid": W1, "alias": "vmdata"}))),
    )
    .await
    .unwrap();
    let page = query(
        store.as_ref(),
        &ChunkCache::default(),
        &EventFilter {
            config: Some(true),
            ..EventFilter::default()
        },
        100,
    )
    .await
    .unwrap();
    assert_eq!(page.events.len(), 1, "{page:?}");
    let EventKind::Config {
        doc,
        actor,
        digest_before,
        digest_after,
        summary,
    } = &page.events[0].kind
    else {
        panic!("{page:?}")
    };
    assert_eq!(doc, "multipath-config");
    assert_eq!(actor, "token:ops");
    assert_eq!(digest_before, &None, "the document did not exist");
    assert_eq!(
        digest_after.as_deref(),
        Some(written.digest.to_string().as_str())
    );
    assert!(summary.contains(W1), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_recorders_record_each_change_once() {
    let (store, _dir) = store().await;
    let timeline = [
        matrix(MapState::Optimal, 4),
        matrix(MapState::Degraded, 3),
        matrix(MapState::Failed, 0),
        matrix(MapState::Optimal, 4),
    ];
    for (t, m) in timeline.iter().enumerate() {
        // Three recorders see the same picture at once (two servers and a takeover).
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let store = store.clone();
                let m = m.clone();
                tokio::spawn(async move {
                    record_observation(store.as_ref(), t as i64, &m, Retention::default()).await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    }
    let page = query(
        store.as_ref(),
        &ChunkCache::default(),
        &EventFilter::default(),
        100,
    )
    .await
    .unwrap();
    let lines: Vec<String> = page.events.iter().map(|e| e.kind.describe()).collect();
    assert_eq!(
        lines,
        [
            format!("LUN {W1}: optimal -> degraded"),
            format!("LUN {W1} on n1: optimal 3/4 -> degraded 3/4")
                .replace("optimal 3/4", "optimal 4/4"),
            format!("LUN {W1}: degraded -> failed"),
            format!("LUN {W1} on n1: degraded 3/4 -> failed 0/4"),
            format!("LUN {W1}: failed -> optimal"),
            format!("LUN {W1} on n1: failed 0/4 -> optimal 4/4"),
        ]
    );
    let seqs: Vec<u64> = page.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=6).collect::<Vec<_>>());
}

#[tokio::test]
async fn chunks_are_sealed_and_pruned_by_count_and_age() {
    let (store, _dir) = store().await;
    let kind = || EventKind::Config {
        doc: "x".into(),
        actor: "test".into(),
        digest_before: None,
        digest_after: None,
        summary: "s".into(),
    };
    // 3 chunks' worth, one event a day... in batches.
    for day in 0..3 {
        let batch: Vec<EventKind> = (0..CHUNK_EVENTS).map(|_| kind()).collect();
        append(store.as_ref(), day * 86_400, batch).await.unwrap();
    }
    let (head, _) = read_head(store.as_ref()).await.unwrap();
    assert_eq!(head.chunks.len(), 3);
    assert!(head.recent.is_empty());
    let first = head.chunks[0].doc_name();
    assert!(store.read_doc(&first).await.unwrap().is_some());
    let all = query(
        store.as_ref(),
        &ChunkCache::default(),
        &EventFilter::default(),
        10_000,
    )
    .await
    .unwrap();
    assert_eq!(all.events.len(), 3 * CHUNK_EVENTS);
    assert_eq!(all.last_seq, 3 * CHUNK_EVENTS as u64);
    // A limit: the newest ones; with `after`: the oldest ones after it.
    let newest = query(
        store.as_ref(),
        &ChunkCache::default(),
        &EventFilter::default(),
        10,
    )
    .await
    .unwrap();
    assert!(newest.truncated);
    assert_eq!(newest.events[0].seq, 3 * CHUNK_EVENTS as u64 - 9);
    let after = query(
        store.as_ref(),
        &ChunkCache::default(),
        &EventFilter {
            after_seq: Some(5),
            ..EventFilter::default()
        },
        10,
    )
    .await
    .unwrap();
    assert_eq!(after.events[0].seq, 6);

    // Age: with one-day retention at day 3, the day-0 and day-1 chunks go (documents deleted).
    mpcluster_config::events::update_head(
        store.as_ref(),
        3 * 86_400,
        Retention {
            max_age: 86_400 + 1,
            max_events: 1_000_000,
        },
        |head| Ok(head.append(3 * 86_400, vec![kind()])),
    )
    .await
    .unwrap();
    let (head, _) = read_head(store.as_ref()).await.unwrap();
    assert_eq!(head.chunks.len(), 1, "{:?}", head.chunks);
    assert!(
        store.read_doc(&first).await.unwrap().is_none(),
        "pruned chunk deleted"
    );
}

#[tokio::test]
async fn an_unreadable_or_newer_log_is_an_error_naming_it_and_is_not_overwritten() {
    let (store, _dir) = store().await;
    store
        .write_doc(EVENTS_DOC, r#"{"format": 7, "next-seq": 9}"#, Expect::Any)
        .await
        .unwrap();
    let err = record_observation(
        store.as_ref(),
        1,
        &matrix(MapState::Optimal, 4),
        Retention::default(),
    )
    .await
    .unwrap_err();
    let text = mpcluster_core::error_chain(&err);
    assert!(
        text.contains("format 7") && text.contains("format 1"),
        "{text}"
    );
    assert!(matches!(err, EventsError::Head(_)));
    let (kept, _) = store.read_doc(EVENTS_DOC).await.unwrap().unwrap();
    assert_eq!(
        kept, r#"{"format": 7, "next-seq": 9}"#,
        "a newer log is never overwritten"
    );

    store
        .write_doc(EVENTS_DOC, "not json", Expect::Any)
        .await
        .unwrap();
    let err = query(
        store.as_ref(),
        &ChunkCache::default(),
        &EventFilter::default(),
        10,
    )
    .await
    .unwrap_err();
    assert!(
        mpcluster_core::error_chain(&err).contains("'events'"),
        "{}",
        mpcluster_core::error_chain(&err)
    );
}
