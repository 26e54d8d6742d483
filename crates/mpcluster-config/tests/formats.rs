//! Rolling upgrades (issue 16): the stores of the previous release read and written by this
//! one, and a newer format refused by name and never overwritten.
//!
//! `tests/fixtures/formats/1/` is an embedded store written by the previous release (format 1:
//! no `format` fields), made with `scripts/make-format-fixture.sh` from the release's own
//! binary (see that directory's README). `formats/2` does not exist on disk: the tests make it
//! by adding `"format": 2` (`"version": 2` for the apply plans) to every stored object of the
//! format-1 store, as a next release would write them.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use mpcluster_config::node_config::read_node_config;
use mpcluster_config::{EditError, Form, load, read_snapshot, wwids};
use mpcluster_core::config::{MultipathConfig, Overrides};
use mpcluster_core::plan::Acceptance;
use mpcluster_core::status::assemble;
use mpcluster_core::storage::StorageConfig;
use mpcluster_core::tokens::TokensDoc;
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{ClusterStore, EmbeddedOptions};
use serde_json::{Value, json};

const NEW_WWID: &str = "3600a098038303053453f463045727aff";

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats/1/store")
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// Every stored file of the store (documents and node values), relative path -> path.
fn files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for sub in ["docs", "kv"] {
        let mut stack = vec![root.join(sub)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

async fn open_copy(newer: bool) -> (Arc<dyn ClusterStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    if newer {
        for p in files(dir.path()) {
            let text = std::fs::read_to_string(&p).unwrap();
            let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(&text) else {
                continue; // the overrides: a JSON string in format 1
            };
            let field =
                if p.parent().unwrap().ends_with("multipath-plan") || p.ends_with("docs/tokens") {
                    "version"
                } else {
                    "format"
                };
            obj.insert(field.to_owned(), json!(2));
            std::fs::write(&p, serde_json::to_string(&obj).unwrap()).unwrap();
        }
    }
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    (Arc::new(store), dir)
}

/// The newest broadcast time in the store (the fixture's "now").
async fn fixture_now(store: &dyn ClusterStore) -> i64 {
    store
        .get_all("multipath")
        .await
        .unwrap()
        .values()
        .filter_map(|v| serde_json::from_str::<Value>(v).ok()?["time"].as_i64())
        .max()
        .unwrap()
}

fn form(v: Value) -> Form {
    let Value::Object(m) = v else { unreachable!() };
    Form::from_object(m).unwrap()
}

#[tokio::test]
async fn the_previous_release_store_is_read_and_written_compatibly() {
    let (store, dir) = open_copy(false).await;
    let s = store.as_ref();
    // Every document loads.
    assert!(load::<MultipathConfig>(s).await.unwrap().stored);
    load::<Overrides>(s).await.unwrap();
    assert!(load::<StorageConfig>(s).await.unwrap().stored);
    assert!(load::<TokensDoc>(s).await.unwrap().stored);
    load::<Acceptance>(s).await.unwrap();
    read_node_config(s).await.unwrap();
    // The status: every node's broadcast, plan and detail read without an error.
    let now = fixture_now(s).await;
    let read = read_snapshot(s, now, None, None, None).await.unwrap();
    assert!(read.notes.is_empty(), "{:?}", read.notes);
    let a = assemble(&read.snapshot);
    assert!(a.status.luns.len() >= 2, "{:?}", a.status.luns);
    assert!(read.snapshot.kv.multipath.len() >= 3);
    for (node, issues) in &a.status.nodes {
        assert!(issues.broadcast_error.is_none(), "{node}: {issues:?}");
        assert!(issues.plan_error.is_none(), "{node}: {issues:?}");
        assert!(issues.detail_error.is_none(), "{node}: {issues:?}");
    }
    assert!(
        a.status.luns.iter().any(|l| !l.nodes.is_empty()),
        "cells from the old broadcasts"
    );
    // What this release writes stays format 1 (no `format` field), so nodes still on the
    // previous release read it.
    wwids::add(s, form(json!({"wwid": NEW_WWID, "alias": "upgraded"})))
        .await
        .unwrap();
    let text = std::fs::read_to_string(dir.path().join("docs/multipath-config")).unwrap();
    assert!(
        text.contains(NEW_WWID) && !text.contains("\"format\""),
        "{text}"
    );
}

#[tokio::test]
async fn a_newer_format_is_refused_by_name_and_never_overwritten() {
    let (store, dir) = open_copy(true).await;
    let s = store.as_ref();
    let says_both = |text: &str| {
        assert!(
            text.contains("format 2") && text.contains("format 1") && text.contains("upgrade"),
            "names both versions: {text}"
        );
    };
    // Documents: a CLI/API error naming both versions.
    for err in [
        load::<MultipathConfig>(s).await.unwrap_err(),
        load::<StorageConfig>(s).await.unwrap_err(),
        load::<Acceptance>(s).await.unwrap_err(),
    ] {
        says_both(&mpcluster_core::error_chain(&err));
    }
    says_both(&mpcluster_core::error_chain(
        &load::<TokensDoc>(s).await.unwrap_err(),
    ));
    // The agent applies nothing of it.
    says_both(&mpcluster_core::error_chain(
        &read_node_config(s).await.unwrap_err(),
    ));
    // An edit is refused and the newer document stays byte for byte.
    let before = std::fs::read(dir.path().join("docs/multipath-config")).unwrap();
    let err = wwids::add(s, form(json!({"wwid": NEW_WWID})))
        .await
        .unwrap_err();
    assert!(matches!(err, EditError::Unreadable { .. }), "{err:?}");
    says_both(&mpcluster_core::error_chain(&err));
    assert_eq!(
        std::fs::read(dir.path().join("docs/multipath-config")).unwrap(),
        before,
        "never overwritten"
    );
    // The status: each node's broadcast, plan and detail are node errors naming both versions
    // (the node shows as unreadable, never as misread cells); the documents are notes.
    let now = fixture_now(s).await;
    let read = read_snapshot(s, now, None, None, None).await.unwrap();
    assert!(
        read.notes.iter().any(|n| n.contains("format 2")),
        "{:?}",
        read.notes
    );
    let a = assemble(&read.snapshot);
    assert!(read.snapshot.kv.multipath.len() >= 3);
    for node in read.snapshot.kv.multipath.keys() {
        let issues = &a.status.nodes[node];
        says_both(issues.broadcast_error.as_deref().unwrap());
        let plan = issues.plan_error.as_deref().unwrap_or_default();
        assert!(
            !read.snapshot.kv.multipath_plan.contains_key(node)
                || (plan.contains("version 2") || plan.contains("format 2")),
            "{node}: {issues:?}"
        );
        // The path detail: a node error while the node is online; this one is not (its
        // broadcast is unreadable), so the reader's notes say it.
        if read.snapshot.kv.multipath_detail.contains_key(node) {
            let note = a
                .notes
                .iter()
                .find(|n| n.starts_with(&format!("node {node}: path detail")))
                .unwrap_or_else(|| panic!("{node}: {:?}", a.notes));
            says_both(note);
        }
    }
    for lun in &a.status.luns {
        for (node, cell) in &lun.nodes {
            assert_ne!(
                cell.state,
                mpcluster_core::MapState::Optimal,
                "{node}: a newer broadcast is never read as optimal"
            );
        }
    }
}
