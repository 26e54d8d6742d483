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
    assert!(matches!(e, EditError::Stale { .. }) && e.is_conflict());
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

    storage::add(s, None, form(json!({"type": "multipath", "id": "mp"})))
        .await
        .unwrap();
    storage::add(
        s,
        None,
        form(json!({"type": "lvm", "id": "vg", "vgname": "vg0", "base": format!("mp:{W1}")})),
    )
    .await
    .unwrap();
    let Err(EditError::Invalid(errs)) = storage::remove(s, None, "mp", None).await else {
        panic!()
    };
    assert!(errs.for_field("id").unwrap().message.contains("'vg'"));
    assert_eq!(
        storage::list(s, None, Some("lvm"))
            .await
            .unwrap()
            .storages
            .len(),
        1
    );
    let all = serde_json::to_value(storage::list(s, None, None).await.unwrap()).unwrap();
    assert_eq!(all["used-by"], json!({"mp": ["vg"]}));
    assert_eq!(
        all["source"],
        json!({"kind": "mpcluster", "editable": true})
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

/// Proxmox mode: the storages are storage.cfg's (with their lines, the problems named),
/// every storage write is refused with the pvesm message before anything is stored, and the
/// status's expectations follow the file as it changes.
#[tokio::test]
async fn proxmox_mode_reads_storage_cfg_and_refuses_storage_writes() {
    use mpcluster_config::pve::PveMode;
    let (s, _dir) = store().await;
    let s = s.as_ref();
    let root = tempfile::tempdir().unwrap();
    let pve = PveMode::new(root.path());
    // A document mpcluster would use outside Proxmox mode: ignored here.
    storage::add(s, None, form(json!({"type": "multipath", "id": "doc"})))
        .await
        .unwrap();
    let before = raw(s, doc_names::STORAGE).await;
    std::fs::write(
        pve.storage_cfg(),
        format!(
            "dir: local\n\tpath /var/lib/vz\n\n\
             multipath: san\n\tnodes n1,n2\n\n\
             lvm: data\n\tvgname vg_data\n\tbase san:{W1}\n\tnodes n1\n\n\
             lvm: bad\n\tvgname vg\n\tbase san:{W2}\n\tnodes n1,bad!\n"
        ),
    )
    .unwrap();
    let list = serde_json::to_value(storage::list(s, Some(&pve), None).await.unwrap()).unwrap();
    assert_eq!(
        list["storages"],
        json!([
            {"type": "multipath", "id": "san", "nodes": ["n1", "n2"]},
            {"type": "lvm", "id": "data", "vgname": "vg_data", "base": format!("san:{W1}"), "nodes": ["n1"]},
        ])
    );
    assert_eq!(
        list["origins"],
        json!({"san": {"line": 4}, "data": {"line": 7}})
    );
    assert_eq!(list["used-by"], json!({"san": ["data"]}));
    assert_eq!(list["source"]["kind"], "pve");
    assert_eq!(list["source"]["editable"], false);
    assert!(
        list["source"]["note"].as_str().unwrap().contains("pvesm"),
        "{list}"
    );
    let problems = list["source"]["problems"].to_string();
    assert!(problems.contains("line 15 (lvm: bad): nodes"), "{problems}");
    let d = storage::get(s, Some(&pve), "data").await.unwrap();
    assert_eq!(d.storage.type_name(), "lvm");

    // Writes: refused with the pvesm message, even invalid ones; nothing stored.
    let writes = [
        storage::add(s, Some(&pve), form(json!({"type": "multipath", "id": "x"}))).await,
        storage::add(s, Some(&pve), form(json!({"type": "bogus"}))).await,
        storage::update(s, Some(&pve), "san", form(json!({"disable": true}))).await,
        storage::remove(s, Some(&pve), "data", None).await,
    ];
    for w in writes {
        let Err(EditError::ReadOnly(m)) = w else {
            panic!("{w:?}")
        };
        assert!(m.contains("pvesm") && m.contains("storage.cfg"), "{m}");
    }
    assert_eq!(raw(s, doc_names::STORAGE).await, before);

    // The status's expectations come from the file, read each time.
    let node = |n: &str| NodeName::new(n).unwrap();
    let read = mpcluster_config::read_snapshot(s, unix_now(), None, None, Some(&pve))
        .await
        .unwrap();
    assert_eq!(read.storage_source, Some(pve.storage_cfg()));
    let e = &read.snapshot.expectations;
    assert_eq!(
        e.wwid_nodes[&mpcluster_core::Wwid::new(W1).unwrap()],
        [node("n1")].into()
    );
    assert!(
        read.notes.iter().any(|n| n.contains("(lvm: bad)")),
        "{:?}",
        read.notes
    );
    std::fs::write(
        pve.storage_cfg(),
        format!("multipath: san\n\tnodes n1,n2\n\nlvm: data\n\tvgname vg_data\n\tbase san:{W1}\n\tnodes n2\n"),
    )
    .unwrap();
    let read = mpcluster_config::read_snapshot(s, unix_now(), None, None, Some(&pve))
        .await
        .unwrap();
    assert_eq!(
        read.snapshot.expectations.wwid_nodes[&mpcluster_core::Wwid::new(W1).unwrap()],
        [node("n2")].into()
    );
    // Outside Proxmox mode: the document.
    let read = mpcluster_config::read_snapshot(s, unix_now(), None, Some(&node("n1")), None)
        .await
        .unwrap();
    assert_eq!(read.storage_source, None);
    assert!(read.snapshot.expectations.wwid_nodes.is_empty());
    assert_eq!(read.snapshot.expectations.nodes, [node("n1")].into());
}

/// 20 WWIDs that differ only in their last digits.
fn many_wwids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("3600a098038303053453f46304572{i:04}"))
        .collect()
}

/// Issue 16, part 4: concurrent edits of different entries without a digest all succeed (20
/// through the API's operation, 20 through the CLI's retrying edit), each re-read and
/// re-applied when another writer won the compare-and-swap.
async fn parallel_edits_of_different_entries_all_succeed(s: Arc<dyn ClusterStore>) {
    let api = many_wwids(40);
    let (api, cli) = api.split_at(20);
    let mut tasks = Vec::new();
    for w in api {
        let (s, w) = (s.clone(), w.clone());
        tasks.push(tokio::spawn(async move {
            wwids::add(s.as_ref(), form(json!({"wwid": w})))
                .await
                .map(|_| ())
        }));
    }
    for w in cli {
        let (s, w) = (s.clone(), w.clone());
        tasks.push(tokio::spawn(async move {
            let scope = w.clone();
            edit_retrying::<MultipathConfig, _, _, _>(
                s.as_ref(),
                Some(move |c: &MultipathConfig| c.get(&scope).cloned()),
                |cfg| wwids::add_entry(cfg, &w, Default::default()),
            )
            .await
            .map(|_| ())
        }));
    }
    let results: Vec<Result<(), EditError>> = futures_join(tasks).await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    let listed = wwids::list(s.as_ref()).await.unwrap();
    assert_eq!(listed.wwids.len(), 40);
}

async fn futures_join<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_edits_of_different_entries_all_succeed_embedded() {
    let (s, _dir) = store().await;
    parallel_edits_of_different_entries_all_succeed(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_edits_of_different_entries_all_succeed_etcd() {
    use mpcluster_store::testing::{EtcdServer, require_etcd};
    if require_etcd("parallel_edits_of_different_entries_all_succeed_etcd").is_none() {
        return;
    }
    let etcd = EtcdServer::start().await.unwrap();
    let s = mpcluster_store::open(&etcd.spec("edits"), &Default::default())
        .await
        .unwrap();
    parallel_edits_of_different_entries_all_succeed(s).await;
}

/// Issue 16, part 4: a digest-guarded write that lost names what the other writer changed,
/// whether the digest was stale before the write (the version it stands for was read here
/// earlier) or the compare-and-swap decided.
#[tokio::test]
async fn a_stale_digest_names_what_changed() {
    let (s, _dir) = store().await;
    let s = s.as_ref();
    wwids::add(s, form(json!({"wwid": W1, "alias": "a"})))
        .await
        .unwrap();
    let seen = wwids::list(s).await.unwrap().digest;
    // Another writer: adds W2, changes W1's alias and a defaults knob.
    wwids::add(s, form(json!({"wwid": W2}))).await.unwrap();
    wwids::update(s, W1, form(json!({"alias": "b"})))
        .await
        .unwrap();
    defaults::update(s, form(json!({"polling-interval": 7})))
        .await
        .unwrap();
    let before = raw(s, doc_names::CONFIG).await;
    let e = wwids::add(
        s,
        form(json!({"wwid": "36001405aa6d4bd1e9d1487bb1d1f4a2a", "digest": seen.to_string()})),
    )
    .await
    .unwrap_err();
    let message = e.to_string();
    assert!(e.is_conflict(), "{e:?}");
    assert!(
        message.starts_with(mpcluster_config::CHANGED_MEANWHILE),
        "{message}"
    );
    for part in [
        "the multipath configuration changed meanwhile".to_owned(),
        format!("WWID {W2} added"),
        format!("WWID {W1} changed"),
        "defaults knob polling-interval added".to_owned(),
        "by another writer".to_owned(),
    ] {
        assert!(message.contains(&part), "{part:?} missing in {message}");
    }
    assert_eq!(raw(s, doc_names::CONFIG).await, before, "nothing written");

    // A digest this process never saw: no list, but no false claim either.
    let unknown = mpcluster_core::digest::ConfigDigest::of("something else");
    let e = wwids::remove(s, W1, Some(unknown)).await.unwrap_err();
    assert!(e.to_string().contains("no longer at the digest"), "{e}");
}
