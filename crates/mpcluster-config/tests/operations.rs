//! The configuration layer over a real embedded store: digest guards, field errors keyed as
//! the views, rejected changes storing nothing, the retrying edit, node removal, and the
//! documents a node applies.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mpcluster_config::node_config::{NodeConfigError, read_node_config};
use mpcluster_config::nodes::{RemoveNodeError, remove_node};
use mpcluster_config::{
    EditError, Form, absent_digest, defaults, edit_retrying, overrides, storage, unix_now, wwids,
};
use mpcluster_core::NodeName;
use mpcluster_core::config::MultipathConfig;
use mpcluster_core::snapshot::{doc_names, kv_keys};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{ClusterStore, EmbeddedOptions, Expect};
use serde_json::{Value, json};

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";

async fn store() -> (Arc<dyn ClusterStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    (Arc::new(store), dir)
}

fn form(v: Value) -> Form {
    let Value::Object(m) = v else { panic!() };
    Form::from_object(m).unwrap()
}

async fn raw(store: &dyn ClusterStore, doc: &str) -> Option<String> {
    store.read_doc(doc).await.unwrap().map(|(t, _)| t)
}

#[tokio::test]
async fn digests_guard_every_write_and_refusals_store_nothing() {
    let (s, _dir) = store().await;
    let s = s.as_ref();
    let v = defaults::view(s).await.unwrap();
    assert_eq!(v.digest, absent_digest());
    assert!(v.knobs.len() > 10);
    let w = defaults::update(
        s,
        form(json!({"polling-interval": 5, "digest": v.digest.to_string()})),
    )
    .await
    .unwrap();
    assert_eq!(defaults::view(s).await.unwrap().digest, w.digest);

    let before = raw(s, doc_names::CONFIG).await;
    // A stale digest.
    let e = defaults::update(
        s,
        form(json!({"polling-interval": 6, "digest": v.digest.to_string()})),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, EditError::Stale) && e.is_conflict());
    // Every field error at once, keyed as the view.
    let Err(EditError::Invalid(errs)) =
        defaults::update(s, form(json!({"polling-interval": 0, "bogus": 1}))).await
    else {
        panic!()
    };
    assert!(errs.for_field("defaults.polling-interval").is_some());
    assert!(errs.for_field("defaults.bogus").is_some());
    assert_eq!(raw(s, doc_names::CONFIG).await, before);
}

#[tokio::test]
async fn wwid_storage_and_overrides_operations() {
    let (s, _dir) = store().await;
    let s = s.as_ref();
    wwids::add(s, form(json!({"wwid": W1, "alias": "data"})))
        .await
        .unwrap();
    let Err(EditError::Invalid(errs)) = wwids::add(s, form(json!({"alias": "x"}))).await else {
        panic!()
    };
    assert_eq!(errs.for_field("wwid").unwrap().message, "required");
    let Err(EditError::Invalid(errs)) = wwids::update(
        s,
        W1,
        form(json!({"alias": "bad alias", "rr-min-io-rq": 0})),
    )
    .await
    else {
        panic!()
    };
    assert!(errs.for_field("alias").is_some() && errs.for_field("rr-min-io-rq").is_some());
    assert!(matches!(
        wwids::get(s, W2).await,
        Err(EditError::NotFound { .. })
    ));
    let d = wwids::get(s, W1).await.unwrap();
    assert_eq!(d.entry.entry.alias().unwrap().as_str(), "data");
    let list = serde_json::to_value(wwids::list(s).await.unwrap()).unwrap();
    assert_eq!(list["wwids"], json!([{"wwid": W1, "alias": "data"}]));
    wwids::remove(s, W1, Some(d.digest)).await.unwrap();

    storage::add(s, form(json!({"type": "multipath", "id": "mp"})))
        .await
        .unwrap();
    storage::add(
        s,
        form(json!({"type": "lvm", "id": "vg", "vgname": "vg0", "base": format!("mp:{W1}")})),
    )
    .await
    .unwrap();
    let Err(EditError::Invalid(errs)) = storage::remove(s, "mp", None).await else {
        panic!()
    };
    assert!(errs.for_field("id").unwrap().message.contains("'vg'"));
    assert_eq!(
        storage::list(s, Some("lvm")).await.unwrap().storages.len(),
        1
    );

    let Err(EditError::Invalid(errs)) =
        overrides::replace(s, form(json!({"content": "blacklist {\n}\n", "x": 1}))).await
    else {
        panic!()
    };
    assert!(errs.for_field("x").is_some(), "{errs:?}");
    overrides::replace(
        s,
        form(json!({"content": "overrides {\n\tno_path_retry fail\n}\n"})),
    )
    .await
    .unwrap();
    assert!(
        overrides::view(s)
            .await
            .unwrap()
            .content
            .contains("no_path_retry")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_elsewhere_in_the_document_is_retried_once() {
    let (s, _dir) = store().await;
    let doc = json!({"wwids": {W1: {"alias": "a"}, W2: {"alias": "b"}}}).to_string();
    s.write_doc(doc_names::CONFIG, &doc, Expect::Any)
        .await
        .unwrap();
    let calls = AtomicUsize::new(0);
    let handle = tokio::runtime::Handle::current();
    let other = json!({"wwids": {W1: {"alias": "a"}, W2: {"alias": "b2"}}}).to_string();
    let done = edit_retrying::<MultipathConfig, _, _, _>(
        s.as_ref(),
        Some(|c: &MultipathConfig| c.get(W1).cloned()),
        |cfg| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::task::block_in_place(|| {
                    handle
                        .block_on(s.write_doc(doc_names::CONFIG, &other, Expect::Any))
                        .unwrap();
                });
            }
            wwids::update_entry(
                cfg,
                W1,
                [("alias".to_owned(), json!("mine"))].into(),
                Vec::new(),
            )
        },
    )
    .await
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let (text, digest) = s.read_doc(doc_names::CONFIG).await.unwrap().unwrap();
    assert_eq!(digest, done.digest);
    let cfg = MultipathConfig::from_json(&text).unwrap();
    assert_eq!(cfg.get(W1).unwrap().alias().unwrap().as_str(), "mine");
    assert_eq!(cfg.get(W2).unwrap().alias().unwrap().as_str(), "b2");
}

#[tokio::test]
async fn removing_nodes() {
    let (s, _dir) = store().await;
    let s = s.as_ref();
    let node = |n: &str| NodeName::new(n).unwrap();
    let now = unix_now();
    for (n, t) in [("n1", now), ("n2", now - 3600)] {
        s.put(
            kv_keys::HEALTH,
            &node(n),
            Some(&json!({"time": t, "maps": {}}).to_string()),
        )
        .await
        .unwrap();
    }
    // A node only a storage expects is not online, but nothing is stored about it either.
    s.write_doc(
        doc_names::STORAGE,
        &json!({"storages": [{"type": "multipath", "id": "mp", "nodes": ["n1", "n3"]}]})
            .to_string(),
        Expect::Any,
    )
    .await
    .unwrap();

    let e = remove_node(s, &node("n1"), false).await.unwrap_err();
    assert!(matches!(e, RemoveNodeError::Online { .. }));
    let msg = e.to_string();
    assert!(
        msg.starts_with("node n1 is online (last broadcast ")
            && msg.ends_with(" s ago); stop its agent first, or force"),
        "{msg}"
    );
    assert!(matches!(
        remove_node(s, &node("n3"), false).await,
        Err(RemoveNodeError::Unknown { .. })
    ));
    assert!(matches!(
        remove_node(s, &node("n9"), true).await,
        Err(RemoveNodeError::Unknown { .. })
    ));
    let r = remove_node(s, &node("n2"), false).await.unwrap();
    assert!(!r.was_online);
    assert!(s.get_all(kv_keys::HEALTH).await.unwrap().len() == 1);
    let r = remove_node(s, &node("n1"), true).await.unwrap();
    assert!(r.was_online);
    assert!(s.get_all(kv_keys::HEALTH).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_documents_a_node_applies() {
    let (s, _dir) = store().await;
    let c = read_node_config(s.as_ref()).await.unwrap();
    assert!(c.config.is_empty() && c.overrides.as_str().is_empty());
    wwids::add(s.as_ref(), form(json!({"wwid": W1})))
        .await
        .unwrap();
    let c = read_node_config(s.as_ref()).await.unwrap();
    assert_eq!(c.config.allow_list().len(), 1);
    s.write_doc(doc_names::OVERRIDES, "{", Expect::Any)
        .await
        .unwrap();
    assert!(matches!(
        read_node_config(s.as_ref()).await,
        Err(NodeConfigError::Document(_))
    ));
}
