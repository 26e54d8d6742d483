//! `mpcluster config show|set|unset`: the cluster-wide multipath `defaults` knobs, edited in
//! the cluster store directly (`--store`) through the configuration layer
//! ([`mpcluster_config`]), so with the API's validation and digest guard.
//!
//! Also the helpers the other configuration commands (`wwid`, `overrides`, `storage`) share:
//! [`edit_retrying`] (compare-and-swap write, retried), [`failure`] (exit codes) and
//! [`parse_assignments`] (`KNOB=VALUE`).
//!
//! Exit codes: 0 success; 2 invalid input (each field and reason printed), an unknown entry;
//! 1 other failures (store unreachable, unreadable document, a conflict that was not retried).
//!
//! Concurrency: a write uses the digest read just before it. If another writer got in between
//! (409 in API terms), the document is re-read; while the part this command changes (the named
//! knobs, the WWID entry, the storage) is unchanged there, the command is applied again on the
//! new document (re-validated, so e.g. an alias taken meanwhile is still refused; up to
//! `mpcluster_config::document::EDIT_ATTEMPTS` tries with jittered pauses), so concurrent
//! edits of different entries all succeed. If another writer changed the same part, the
//! conflict is reported naming what changed, and nothing is written.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::anyhow;
use mpcluster_config::{Document, EditError, Edited, Loaded, load};
use mpcluster_core::config::{
    ConfigErrors, FIXED_DEFAULTS, KNOBS, Knob, KnobValue, MultipathConfig, apply_defaults_update,
};
use mpcluster_store::ClusterStore;
use serde_json::{Value, json};

use super::Failure;
use super::status::Format;
use super::store_args::StoreArgs;
pub use crate::cli::config::{AcceptArgs, ConfigArgs, ConfigCommand, PlanArgs, ShowArgs};

/// Run the command.
pub async fn run(args: &ConfigArgs) -> Result<ExitCode, Failure> {
    match &args.command {
        ConfigCommand::Show(a) => show(a).await,
        ConfigCommand::Plan(a) => plan(a).await,
        ConfigCommand::Accept(a) => accept(a).await,
        ConfigCommand::Set(a) => {
            let set = parse_assignments(&a.assignments)?;
            let names: Vec<String> = set.keys().cloned().collect();
            let store = open(&a.store).await?;
            let done = edit_retrying::<MultipathConfig, _, _, _>(
                store.as_ref(),
                Some(move |c: &MultipathConfig| defaults_of(c, &names)),
                |cfg| {
                    apply_defaults_update(cfg, set.clone(), Vec::new()).map_err(EditError::Invalid)
                },
            )
            .await?;
            println!(
                "set {} (digest {})",
                a.assignments.join(" "),
                short(&done.digest.to_string())
            );
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Unset(a) => {
            let names = a.knobs.clone();
            let store = open(&a.store).await?;
            let scope = names.clone();
            let done = edit_retrying::<MultipathConfig, _, _, _>(
                store.as_ref(),
                Some(move |c: &MultipathConfig| defaults_of(c, &scope)),
                |cfg| {
                    apply_defaults_update(cfg, BTreeMap::new(), names.clone())
                        .map_err(EditError::Invalid)
                },
            )
            .await?;
            println!(
                "unset {} (digest {})",
                a.knobs.join(" "),
                short(&done.digest.to_string())
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn show(a: &ShowArgs) -> Result<ExitCode, Failure> {
    let store = open(&a.store).await?;
    let l: Loaded<MultipathConfig> = load(store.as_ref()).await.map_err(failure)?;
    let defaults = l.value.defaults();
    if a.format == Format::Json {
        let mut v = json!({
            "defaults": Value::Object(defaults.to_json()),
            "digest": l.digest,
        });
        if a.knobs {
            v["knobs"] = json!(KNOBS);
        }
        print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.knobs {
        for spec in KNOBS {
            let value = defaults
                .get(spec.knob)
                .map_or_else(|| "(not set)".to_owned(), KnobValue::render);
            println!("{} = {value}", spec.name);
            println!("    {}", spec.description);
            println!(
                "    accepts {}; {}",
                spec.value_type.expectation(),
                if spec.per_lun {
                    "also per LUN (mpcluster wwid set)"
                } else {
                    "defaults only"
                }
            );
        }
        let fixed: Vec<String> = FIXED_DEFAULTS
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("fixed by mpcluster: {}", fixed.join(", "));
    } else if defaults.is_empty() {
        println!("no knobs set: multipath's own defaults apply (mpcluster config show --knobs)");
    } else {
        let width = defaults
            .iter()
            .map(|(k, _)| k.name().len())
            .max()
            .unwrap_or(0);
        for (k, v) in defaults.iter() {
            println!("{:<width$}  {}", k.name(), v.render());
        }
    }
    println!("digest: {}", l.digest);
    Ok(ExitCode::SUCCESS)
}

fn node_arg(node: &str) -> Result<mpcluster_core::NodeName, Failure> {
    mpcluster_core::NodeName::new(node).map_err(|e| Failure::new(2, anyhow!("--node: {e}")))
}

async fn plan(a: &PlanArgs) -> Result<ExitCode, Failure> {
    let node = a.node.as_deref().map(node_arg).transpose()?;
    let store = open(&a.store).await?;
    let view = mpcluster_config::plan::plans(store.as_ref(), node.as_ref())
        .await
        .map_err(failure)?;
    if a.format == Format::Json {
        print_json(&serde_json::to_value(&view).map_err(|e| Failure::new(1, e))?)?;
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render_plans(&view));
    Ok(ExitCode::SUCCESS)
}

/// The plans for people.
fn render_plans(view: &mpcluster_config::plan::PlansView) -> String {
    use mpcluster_core::plan::FileAction;
    use mpcluster_core::table::terminal_safe;
    use std::fmt::Write as _;
    let mut out = String::new();
    if view.nodes.is_empty() {
        out.push_str(
            "no node has published an apply plan yet (agents publish one when they apply)\n",
        );
    }
    for n in &view.nodes {
        let node = &n.node;
        let Some(p) = &n.plan else {
            match &n.error {
                Some(e) => {
                    let _ = writeln!(out, "{node}: apply plan unreadable: {}", terminal_safe(e));
                }
                None => {
                    let _ = writeln!(out, "{node}: no apply plan published");
                }
            }
            continue;
        };
        let verdict = if p.waiting && n.accepted {
            "accepted: its agent applies it on its next attempt".to_owned()
        } else if p.waiting {
            format!("WAITING for an acceptance: mpcluster config accept --node {node}")
        } else if p.is_empty() {
            "nothing to change".to_owned()
        } else if n.accepted {
            "accepted".to_owned()
        } else {
            "applies without asking".to_owned()
        };
        let _ = writeln!(
            out,
            "{node} (planned {}): {verdict}",
            mpcluster_core::table::format_unix_utc(p.time)
        );
        let more = |shown: usize, total: usize| {
            (total > shown).then(|| format!("  ... and {} more\n", total - shown))
        };
        for r in &p.renames {
            let _ = writeln!(
                out,
                "  rename  /dev/mapper/{} -> /dev/mapper/{}{}",
                terminal_safe(&r.from),
                terminal_safe(&r.to),
                if r.requested { "" } else { "  (not asked for)" }
            );
        }
        out.extend(more(p.renames.len(), p.renames_total));
        for d in &p.dropped {
            let _ = writeln!(
                out,
                "  drop    /dev/mapper/{} ({}): {}{}",
                terminal_safe(&d.name),
                d.wwid,
                d.reason,
                if d.requested { "" } else { "  (not asked for)" }
            );
        }
        out.extend(more(p.dropped.len(), p.dropped_total));
        for f in &p.files {
            let what = match f.action {
                FileAction::Write => "write ",
                FileAction::Remove => "remove",
            };
            let _ = writeln!(out, "  {what}  {}", terminal_safe(&f.path));
        }
        for w in &p.wwids_added {
            let _ = writeln!(out, "  wwids   + {w}");
        }
        for w in &p.wwids_removed {
            let _ = writeln!(out, "  wwids   - {w}");
        }
    }
    let _ = writeln!(
        out,
        "always accept: {}",
        if view.always_accept {
            "yes (renames and drops apply without asking)"
        } else {
            "no (mpcluster config accept --always true changes that)"
        }
    );
    out
}

async fn accept(a: &AcceptArgs) -> Result<ExitCode, Failure> {
    let store = open(&a.store).await?;
    if let Some(always) = a.always {
        mpcluster_config::plan::set_always(store.as_ref(), always)
            .await
            .map_err(failure)?;
        println!(
            "always accept: {}",
            if always {
                "yes: every node applies renames and drops without asking"
            } else {
                "no: applies that rename or drop maps wait for `mpcluster config accept --node N`"
            }
        );
    }
    if let Some(node) = &a.node {
        let node = node_arg(node)?;
        let done = mpcluster_config::plan::accept_node(store.as_ref(), &node)
            .await
            .map_err(failure)?;
        println!(
            "accepted the plan of {node} (digest {}): {}",
            short(&done.digest),
            done.summary
                .as_deref()
                .map_or("", |s| s.strip_prefix("apply waiting: ").unwrap_or(s))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The values of the named knobs in `defaults` (the part `config set/unset` changes).
fn defaults_of(cfg: &MultipathConfig, names: &[String]) -> Vec<Option<KnobValue>> {
    names
        .iter()
        .map(|n| Knob::from_name(n).and_then(|k| cfg.defaults().get(k).copied()))
        .collect()
}

/// Open the store (failures exit 1).
pub(crate) async fn open(store: &StoreArgs) -> Result<std::sync::Arc<dyn ClusterStore>, Failure> {
    store.open().await.map_err(|e| Failure::new(1, e))
}

/// The first 12 hex digits of a digest, for messages.
pub(crate) fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// Print pretty JSON (failures exit 1).
pub(crate) fn print_json(v: &Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Failure::new(1, e))?;
    println!("{text}");
    Ok(())
}

/// Parse `KNOB=VALUE` arguments (values as text; the model parses them). Exit 2 on a missing
/// `=` or a repeated name.
pub(crate) fn parse_assignments(items: &[String]) -> Result<BTreeMap<String, Value>, Failure> {
    let mut out = BTreeMap::new();
    for item in items {
        let Some((name, value)) = item.split_once('=') else {
            return Err(Failure::new(
                2,
                anyhow!("{item:?}: expected KNOB=VALUE (see mpcluster config show --knobs)"),
            ));
        };
        if out
            .insert(name.to_owned(), Value::from(value.to_owned()))
            .is_some()
        {
            return Err(Failure::new(2, anyhow!("{name:?} is given twice")));
        }
    }
    Ok(out)
}

/// Every field error, one per line.
fn describe_errors(errs: &ConfigErrors) -> String {
    let lines: Vec<String> = errs
        .errors()
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    match lines.as_slice() {
        [one] => format!("invalid input: {one}"),
        _ => format!("invalid input:\n  {}", lines.join("\n  ")),
    }
}

/// The exit code and message of a failed edit: 2 for invalid input and unknown entries, 1
/// for everything else.
pub(crate) fn failure(e: EditError) -> Failure {
    match e {
        EditError::Invalid(errs) => Failure::new(2, anyhow!(describe_errors(&errs))),
        EditError::Rejected(m) | EditError::ReadOnly(m) => Failure::new(2, anyhow!(m)),
        EditError::NotFound { .. } | EditError::Exists { .. } => {
            Failure::new(2, anyhow!(e.to_string()))
        }
        // The message names what the other writer changed.
        e if e.is_conflict() => Failure::new(1, anyhow!(e.to_string())),
        e => Failure::new(1, e),
    }
}

/// [`mpcluster_config::edit_retrying`] (a conflict is retried while the part of the document
/// the command changes, `scope`, was not changed meanwhile), failures as exit codes.
pub(crate) async fn edit_retrying<T, S, R, F>(
    store: &dyn ClusterStore,
    scope: Option<impl Fn(&T) -> S>,
    op: F,
) -> Result<Edited<R>, Failure>
where
    T: Document,
    S: PartialEq,
    R: Send,
    F: Fn(&mut T) -> Result<R, EditError> + Sync,
{
    mpcluster_config::edit_retrying(store, scope, op)
        .await
        .map_err(failure)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use mpcluster_core::snapshot::doc_names;
    use mpcluster_store::Expect;
    use mpcluster_store::embedded::EmbeddedStore;

    use super::*;

    const W1: &str = "3600a098038303053453f463045727a01";
    const W2: &str = "3600a098038303053453f463045727a02";

    /// While the command computes its change, another writer changes the document (once).
    async fn race(other: serde_json::Value, touches: &str) -> Result<(), Failure> {
        let dir = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn ClusterStore> = std::sync::Arc::new(
            EmbeddedStore::open(dir.path(), Default::default())
                .await
                .unwrap(),
        );
        let doc = json!({"wwids": {W1: {"alias": "a"}, W2: {"alias": "b"}}}).to_string();
        store
            .write_doc(doc_names::CONFIG, &doc, Expect::Any)
            .await
            .unwrap();
        let calls = AtomicUsize::new(0);
        let other = other.to_string();
        let handle = tokio::runtime::Handle::current();
        let wwid = touches.to_owned();
        let res = edit_retrying::<MultipathConfig, _, _, _>(
            store.as_ref(),
            Some(move |c: &MultipathConfig| c.get(&wwid).cloned()),
            |cfg| {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    tokio::task::block_in_place(|| {
                        handle
                            .block_on(store.write_doc(doc_names::CONFIG, &other, Expect::Any))
                            .unwrap();
                    });
                }
                mpcluster_config::wwids::update_entry(
                    cfg,
                    W1,
                    [("alias".to_owned(), json!("mine"))].into(),
                    Vec::new(),
                )
            },
        )
        .await;
        let (text, _) = store.read_doc(doc_names::CONFIG).await.unwrap().unwrap();
        let cfg = MultipathConfig::from_json(&text).unwrap();
        match &res {
            Ok(_) => {
                assert_eq!(calls.load(Ordering::SeqCst), 2);
                assert_eq!(cfg.get(W1).unwrap().alias().unwrap().as_str(), "mine");
            }
            Err(_) => assert_ne!(cfg.get(W1).unwrap().alias().unwrap().as_str(), "mine"),
        }
        res.map(|_| ())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conflict_on_another_entry_is_retried_once() {
        race(
            json!({"wwids": {W1: {"alias": "a"}, W2: {"alias": "b2"}}}),
            W1,
        )
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conflict_on_the_same_entry_is_reported() {
        let e = race(
            json!({"wwids": {W1: {"alias": "theirs"}, W2: {"alias": "b"}}}),
            W1,
        )
        .await
        .unwrap_err();
        assert_eq!(e.exit_code, 1);
        let message = e.error.to_string();
        assert!(
            message.starts_with(mpcluster_config::CHANGED_MEANWHILE),
            "{message}"
        );
        assert!(
            message.contains(&format!("WWID {W1} changed")) && !message.contains(W2),
            "names what changed: {message}"
        );
    }

    #[test]
    fn assignments() {
        let m = parse_assignments(&["a=1".to_owned(), "b=x=y".to_owned()]).unwrap();
        assert_eq!(m["b"], "x=y");
        assert_eq!(
            parse_assignments(&["a".to_owned()]).unwrap_err().exit_code,
            2
        );
        assert_eq!(
            parse_assignments(&["a=1".to_owned(), "a=2".to_owned()])
                .unwrap_err()
                .exit_code,
            2
        );
    }
}
