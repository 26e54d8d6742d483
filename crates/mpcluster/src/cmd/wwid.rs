//! `mpcluster wwid add|remove|list|set`: the cluster's WWID allow-list with per-LUN alias and
//! knobs, edited in the cluster store (`--store`) with the API's validation and digest guard.
//!
//! Exit codes and conflict handling: see [`super::config`] (a conflict is retried once when the
//! entry itself was not changed meanwhile).

use std::collections::BTreeMap;
use std::process::ExitCode;

use mpcluster_config::wwids::{add_entry, remove_entry, update_entry};
use mpcluster_core::config::MultipathConfig;
use serde_json::Value;

use super::Failure;
use super::config::{edit_retrying, failure, open, parse_assignments, print_json, short};
use super::status::Format;
pub use crate::cli::wwid::{WwidArgs, WwidCommand};

/// The properties of `--alias` and `KNOB=VALUE` arguments.
fn props(alias: &Option<String>, knobs: &[String]) -> Result<BTreeMap<String, Value>, Failure> {
    let mut props = parse_assignments(knobs)?;
    if let Some(a) = alias
        && props
            .insert("alias".to_owned(), Value::from(a.as_str()))
            .is_some()
    {
        return Err(Failure::new(
            2,
            anyhow::anyhow!("alias is given both as --alias and as alias=..."),
        ));
    }
    Ok(props)
}

/// Run the command.
pub async fn run(args: &WwidArgs) -> Result<ExitCode, Failure> {
    match &args.command {
        WwidCommand::Add(a) => {
            let props = props(&a.alias, &a.knobs)?;
            let store = open(&a.store).await?;
            let wwid = a.wwid.clone();
            let scope = a.wwid.clone();
            let done = edit_retrying::<MultipathConfig, _, _, _>(
                store.as_ref(),
                Some(move |c: &MultipathConfig| c.get(&scope).cloned()),
                |cfg| add_entry(cfg, &wwid, props.clone()),
            )
            .await?;
            println!(
                "added {} to the allow-list (digest {})",
                done.output,
                short(&done.digest.to_string())
            );
        }
        WwidCommand::Set(a) => {
            let props = props(&a.alias, &a.knobs)?;
            if props.is_empty() && a.delete.is_empty() {
                return Err(Failure::new(
                    2,
                    anyhow::anyhow!("nothing to change: give --alias, KNOB=VALUE or --delete"),
                ));
            }
            let store = open(&a.store).await?;
            let wwid = a.wwid.clone();
            let scope = a.wwid.clone();
            let done = edit_retrying::<MultipathConfig, _, _, _>(
                store.as_ref(),
                Some(move |c: &MultipathConfig| c.get(&scope).cloned()),
                |cfg| update_entry(cfg, &wwid, props.clone(), a.delete.clone()),
            )
            .await?;
            println!(
                "updated {} (digest {})",
                a.wwid,
                short(&done.digest.to_string())
            );
        }
        WwidCommand::Remove(a) => {
            let store = open(&a.store).await?;
            let scope = a.wwid.clone();
            let done = edit_retrying::<MultipathConfig, _, _, _>(
                store.as_ref(),
                Some(move |c: &MultipathConfig| c.get(&scope).cloned()),
                |cfg| remove_entry(cfg, &a.wwid),
            )
            .await?;
            println!(
                "removed {} from the allow-list (digest {})",
                a.wwid,
                short(&done.digest.to_string())
            );
        }
        WwidCommand::List(a) => {
            let store = open(&a.store).await?;
            let l = mpcluster_config::wwids::list(store.as_ref())
                .await
                .map_err(failure)?;
            if a.format == Format::Json {
                print_json(&serde_json::to_value(&l).map_err(|e| Failure::new(1, e))?)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows = vec![["WWID".to_owned(), "ALIAS".to_owned(), "KNOBS".to_owned()]];
            for v in &l.wwids {
                let (w, e) = (&v.wwid, &v.entry);
                let knobs: Vec<String> = e
                    .knobs()
                    .iter()
                    .map(|(k, v)| format!("{}={}", k.name(), v.render()))
                    .collect();
                rows.push([
                    w.to_string(),
                    e.alias().map_or_else(|| "-".to_owned(), |a| a.to_string()),
                    if knobs.is_empty() {
                        "-".to_owned()
                    } else {
                        knobs.join(" ")
                    },
                ]);
            }
            print_rows(&rows);
            println!("digest: {}", l.digest);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Print rows as left-aligned columns separated by two spaces.
pub(crate) fn print_rows<const N: usize>(rows: &[[String; N]]) {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
