//! `mpcluster storage add|remove|list|set|import-pve`: the storage definitions (`multipath`
//! storages and `lvm` storages on a multipath LUN), edited in the cluster store (`--store`)
//! with the API's validation and digest guard.
//!
//! `import-pve` reads a Proxmox VE `storage.cfg` ([`mpcluster_core::pve_import`]), prints what
//! it adds and what it skips (with line numbers and reasons) and merges the result into the
//! stored document; existing ids are never overwritten. `--dry-run` only prints. The import is
//! written with the digest read before it and is not retried on a conflict (run it again: it
//! is idempotent).
//!
//! Exit codes and conflict handling of the other subcommands: see [`super::config`] (retried
//! once when the named storage itself was not changed meanwhile).
//!
//! In Proxmox mode (see [`super::store_args`]) `list` shows Proxmox's storage.cfg (SOURCE:
//! the line of each storage) and every other subcommand is refused (exit 2) with a message
//! pointing to `pvesm`: mpcluster follows that file and never edits it.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use mpcluster_config::storage::{add_storage, new_storage, remove_storage, update_in};
use mpcluster_config::views::StorageList;
use mpcluster_config::{EditError, Loaded, edit, load};
use mpcluster_core::StorageId;
use mpcluster_core::pve_import;
use mpcluster_core::storage::{Storage, StorageConfig};
use serde_json::{Value, json};

use super::Failure;
use super::config::{edit_retrying, failure, open, print_json, short};
use super::status::Format;
use super::store_args::StoreArgs;
use super::wwid::print_rows;
pub use crate::cli::storage::{AddKind, CommonArgs, ImportArgs, StorageArgs, StorageCommand};

/// Largest storage.cfg read.
const MAX_READ: u64 = 4 * 1024 * 1024;

fn common_props(kind: &str, id: &str, common: &CommonArgs) -> BTreeMap<String, Value> {
    let mut props = BTreeMap::new();
    props.insert("type".to_owned(), json!(kind));
    props.insert("id".to_owned(), json!(id));
    if let Some(n) = &common.nodes {
        props.insert("nodes".to_owned(), json!(n));
    }
    if common.disable {
        props.insert("disable".to_owned(), json!(true));
    }
    props
}

/// Run the command.
pub async fn run(args: &StorageArgs) -> Result<ExitCode, Failure> {
    match &args.command {
        StorageCommand::Add(a) => {
            let (store_args, props) = match &a.kind {
                AddKind::Multipath(m) => (&m.store, common_props("multipath", &m.id, &m.common)),
                AddKind::Lvm(l) => {
                    let mut props = common_props("lvm", &l.id, &l.common);
                    props.insert("vgname".to_owned(), json!(l.vgname));
                    props.insert("base".to_owned(), json!(l.base));
                    (&l.store, props)
                }
            };
            editable(store_args)?;
            let storage = new_storage(props)
                .map_err(EditError::Invalid)
                .map_err(failure)?;
            let id = storage.id().clone();
            let store = open(store_args).await?;
            let scope = id.clone();
            let done = edit_retrying::<StorageConfig, _, _, _>(
                store.as_ref(),
                Some(move |c: &StorageConfig| scope_of(c, scope.as_str())),
                |cfg| add_storage(cfg, storage.clone()).map_err(EditError::Invalid),
            )
            .await?;
            println!(
                "added {} storage '{id}' (digest {})",
                storage.type_name(),
                short(&done.digest.to_string())
            );
        }
        StorageCommand::Set(a) => {
            editable(&a.store)?;
            let mut props = BTreeMap::new();
            if let Some(n) = &a.nodes {
                props.insert("nodes".to_owned(), json!(n));
            }
            if a.disable || a.enable {
                props.insert("disable".to_owned(), json!(a.disable));
            }
            if let Some(v) = &a.vgname {
                props.insert("vgname".to_owned(), json!(v));
            }
            if let Some(b) = &a.base {
                props.insert("base".to_owned(), json!(b));
            }
            if props.is_empty() && a.delete.is_empty() {
                return Err(Failure::new(2, anyhow!("nothing to change")));
            }
            let store = open(&a.store).await?;
            let scope = a.id.clone();
            let done = edit_retrying::<StorageConfig, _, _, _>(
                store.as_ref(),
                Some(move |c: &StorageConfig| scope_of(c, &scope)),
                |cfg| update_in(cfg, &a.id, props.clone(), &a.delete),
            )
            .await?;
            println!(
                "updated storage '{}' (digest {})",
                a.id,
                short(&done.digest.to_string())
            );
        }
        StorageCommand::Remove(a) => {
            editable(&a.store)?;
            let store = open(&a.store).await?;
            let scope = a.id.clone();
            let done = edit_retrying::<StorageConfig, _, _, _>(
                store.as_ref(),
                Some(move |c: &StorageConfig| scope_of(c, &scope)),
                |cfg| remove_storage(cfg, &a.id),
            )
            .await?;
            println!(
                "removed {} storage '{}' (digest {})",
                done.output.type_name(),
                a.id,
                short(&done.digest.to_string())
            );
        }
        StorageCommand::List(a) => {
            let (store, pve) = a
                .store
                .open_cluster()
                .await
                .map_err(|e| Failure::new(1, e))?;
            let l = mpcluster_config::storage::list(store.as_ref(), pve.as_ref(), None)
                .await
                .map_err(failure)?;
            if a.format == Format::Json {
                print_json(&serde_json::to_value(&l).map_err(|e| Failure::new(1, e))?)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows = vec![[
                "ID".to_owned(),
                "TYPE".to_owned(),
                "NODES".to_owned(),
                "STATE".to_owned(),
                "VOLUME GROUP".to_owned(),
                "BASE".to_owned(),
                "USED BY".to_owned(),
                "SOURCE".to_owned(),
            ]];
            for s in &l.storages {
                rows.push(storage_row(s, &l));
            }
            print_rows(&rows);
            match &l.source.path {
                Some(path) => println!(
                    "source: {path} (Proxmox mode: read-only here; change storages with pvesm)"
                ),
                None => println!("source: the mpcluster storage document"),
            }
            for p in &l.source.problems {
                println!("problem: {p}");
            }
            println!("digest: {}", l.digest);
        }
        StorageCommand::ImportPve(a) => return import(a).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// The storage named `id` and every storage whose base is on it (what a change to `id` depends
/// on), for the conflict retry.
fn scope_of(cfg: &StorageConfig, id: &str) -> Vec<Storage> {
    cfg.storages
        .iter()
        .filter(|s| match s {
            Storage::Lvm(l) => l.id.as_str() == id || l.base.storage.as_str() == id,
            Storage::Multipath(m) => m.id.as_str() == id,
        })
        .cloned()
        .collect()
}

/// Refuse every storage write in Proxmox mode, before anything else (exit 2, the pvesm
/// message).
fn editable(store: &StoreArgs) -> Result<(), Failure> {
    let pve = store.pve_mode().map_err(|e| Failure::new(1, e))?;
    mpcluster_config::storage::check_editable(pve.as_ref()).map_err(failure)
}

/// Where a listed storage comes from, for the table.
fn source_of(id: &StorageId, l: &StorageList) -> String {
    match (l.origins.get(id), &l.source.path) {
        (Some(o), Some(path)) => {
            let file = Path::new(path)
                .file_name()
                .map_or_else(|| path.clone(), |f| f.to_string_lossy().into_owned());
            match &o.iscsi {
                Some(iscsi) => format!("{file}:{} (iscsi {iscsi})", o.line),
                None => format!("{file}:{}", o.line),
            }
        }
        _ => "mpcluster".to_owned(),
    }
}

fn storage_row(s: &Storage, l: &StorageList) -> [String; 8] {
    let (nodes, disable) = match s {
        Storage::Multipath(m) => (&m.nodes, m.disable),
        Storage::Lvm(l) => (&l.nodes, l.disable),
    };
    let nodes = nodes.as_ref().map_or_else(
        || "all".to_owned(),
        |n| n.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(","),
    );
    let (vg, base) = match s {
        Storage::Lvm(l) => (l.vgname.as_str().to_owned(), l.base.to_string()),
        Storage::Multipath(_) => ("-".to_owned(), "-".to_owned()),
    };
    [
        s.id().to_string(),
        s.type_name().to_owned(),
        nodes,
        if disable { "disabled" } else { "enabled" }.to_owned(),
        vg,
        base,
        l.used_by.get(s.id()).map_or_else(
            || "-".to_owned(),
            |u| {
                u.iter()
                    .map(StorageId::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            },
        ),
        source_of(s.id(), l),
    ]
}

fn read_cfg(path: &PathBuf) -> anyhow::Result<String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_READ)
            .read_to_string(&mut text)
            .context("cannot read the storage configuration from stdin")?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_READ).read_to_string(&mut text))
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(text)
}

async fn import(a: &ImportArgs) -> Result<ExitCode, Failure> {
    // In Proxmox mode storage.cfg is read live: an imported copy would only drift.
    editable(&a.store)?;
    let text = read_cfg(&a.file).map_err(|e| Failure::new(1, e))?;
    let store = open(&a.store).await?;
    let current: Loaded<StorageConfig> = load(store.as_ref()).await.map_err(failure)?;
    let result = pve_import::import(&current.value, &text)
        .map_err(|e| Failure::new(1, anyhow!(e).context("the imported storages do not check")))?;
    let mut digest = None;
    if !a.dry_run && !result.added.is_empty() {
        let merged = result.config.clone();
        // Guarded by the digest `merged` was computed from: never retried.
        let done = edit::<StorageConfig, (), _>(store.as_ref(), Some(current.digest), |cfg| {
            *cfg = merged.clone();
            Ok(())
        })
        .await
        .map_err(failure)?;
        digest = Some(done.digest);
    }
    if a.format == Format::Json {
        print_json(&json!({
            "dry-run": a.dry_run,
            "added": result.added,
            "reused": result.reused,
            "skipped": result.skipped,
            "digest": digest,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if a.dry_run { "would add" } else { "added" };
    for added in &result.added {
        let detail = match (&added.storage, &added.from_iscsi) {
            (Storage::Multipath(_), Some(iscsi)) => {
                format!(" (stands for iscsi storage '{iscsi}')")
            }
            (Storage::Lvm(l), _) => format!(" (vg {} on {})", l.vgname.as_str(), l.base),
            _ => String::new(),
        };
        println!(
            "{verb} {} '{}' from line {}{detail}",
            added.storage.type_name(),
            added.storage.id(),
            added.line
        );
    }
    for (mp, iscsi) in &result.reused {
        println!("using existing multipath storage '{mp}' for iscsi storage '{iscsi}'");
    }
    for s in &result.skipped {
        let section = s
            .section
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        println!("skipped line {}{section}: {}", s.line, s.reason);
    }
    match digest {
        Some(d) => println!(
            "imported {} storage(s) into {} (digest {})",
            result.added.len(),
            store.describe(),
            short(&d.to_string())
        ),
        None if a.dry_run => println!("dry run: nothing written"),
        None => println!("nothing to import"),
    }
    Ok(ExitCode::SUCCESS)
}
