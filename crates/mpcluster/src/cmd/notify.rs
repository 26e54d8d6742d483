//! `mpcluster notify add|list|remove|test`: the notification targets, edited in the cluster
//! store directly (`--store`, like the other configuration commands) through
//! [`mpcluster_config::notify`], so with the API's validation, digest guard and audit trail.
//! `test` sends a test message from this node at once (the same senders the server uses).
//!
//! Secrets never appear on the command line: a webhook's key comes from `--secret-file`, an
//! SMTP password stays in `--password-file` on the server nodes (only the path is stored).
//!
//! Exit codes: 0 success (`test`: the target accepted the message); 2 invalid input (every
//! field and reason printed), an existing id on `add`, an unknown id; 1 other failures (store
//! unreachable, `test` not accepted).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use mpcluster_config::notify::{add, get, list, remove};
use mpcluster_core::notify::{TargetId, TargetView};
use serde_json::{Value, json};

use super::Failure;
use super::config::{failure, open, print_json, short};
use super::status::Format;
pub use crate::cli::notify::{AddCommand, NotifyArgs, NotifyCommand, Security};

/// Run the command.
pub async fn run(args: &NotifyArgs) -> Result<ExitCode, Failure> {
    match &args.command {
        NotifyCommand::Add(a) => add_target(a).await,
        NotifyCommand::List(a) => {
            let store = open(&a.store).await?;
            let listed = list(store.as_ref()).await.map_err(failure)?;
            if a.format == Format::Json {
                print_json(&json!({ "data": listed.targets, "digest": listed.digest }))?;
            } else {
                print!("{}", render_table(&listed.targets));
            }
            Ok(ExitCode::SUCCESS)
        }
        NotifyCommand::Remove(a) => {
            let id = target_id(&a.id)?;
            let store = open(&a.store).await?;
            let digest = remove(store.as_ref(), &id, None).await.map_err(failure)?;
            println!(
                "removed notification target '{id}' (digest {})",
                short(&digest.to_string())
            );
            Ok(ExitCode::SUCCESS)
        }
        NotifyCommand::Test(a) => {
            let id = target_id(&a.id)?;
            let store = open(&a.store).await?;
            let target = get(store.as_ref(), &id).await.map_err(failure)?;
            mpcluster_server::notify::send_test(&id, &target, Duration::from_secs(15))
                .await
                .map_err(|e| Failure::new(1, anyhow!(mpcluster_core::error_chain(&e))))?;
            println!("test message sent to '{id}'");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn target_id(id: &str) -> Result<TargetId, Failure> {
    TargetId::new(id).map_err(|e| Failure::new(2, e))
}

async fn add_target(cmd: &AddCommand) -> Result<ExitCode, Failure> {
    let (store_args, props) = match cmd {
        AddCommand::Webhook(a) => {
            let secret = std::fs::read_to_string(&a.secret_file)
                .with_context(|| format!("cannot read the secret file {}", a.secret_file.display()))
                .map_err(|e| Failure::new(2, e))?;
            let secret = secret.trim_end_matches(['\r', '\n']);
            (
                &a.store,
                json!({"type": "webhook", "id": a.id, "url": a.url, "secret": secret}),
            )
        }
        AddCommand::Smtp(a) => {
            let security = match a.security {
                Security::None => "none",
                Security::Starttls => "starttls",
                Security::Tls => "tls",
            };
            let mut v = json!({"type": "smtp", "id": a.id, "server": a.server,
                "security": security, "from": a.from, "to": a.to});
            if let Some(p) = a.port {
                v["port"] = json!(p);
            }
            if let Some(u) = &a.username {
                v["username"] = json!(u);
            }
            if let Some(f) = &a.password_file {
                v["password-file"] = json!(f);
            }
            (&a.store, v)
        }
        AddCommand::Exec(a) => (
            &a.store,
            json!({"type": "exec", "id": a.id, "command": a.command}),
        ),
    };
    let props: BTreeMap<String, Value> =
        serde_json::from_value(props).map_err(|e| Failure::new(1, e))?;
    let store = open(store_args).await?;
    let view = add(store.as_ref(), props, None).await.map_err(failure)?;
    println!("added notification target '{}' ({})", view.id, view.kind);
    Ok(ExitCode::SUCCESS)
}

/// `ID  TYPE  WHERE`: one line per target.
fn render_table(targets: &[TargetView]) -> String {
    if targets.is_empty() {
        return "no notification targets\n".to_owned();
    }
    let rows: Vec<[String; 3]> = targets
        .iter()
        .map(|t| {
            let place = match t.kind.as_str() {
                "webhook" => format!("{} (secret set)", t.url.as_deref().unwrap_or("")),
                "smtp" => {
                    let mut s = format!(
                        "{}:{} ({}) from {} to {}",
                        t.server.as_deref().unwrap_or(""),
                        t.port.unwrap_or(0),
                        t.security.map_or("", |s| s.as_str()),
                        t.from.as_deref().unwrap_or(""),
                        t.to.as_deref().unwrap_or(&[]).join(", ")
                    );
                    if let (Some(u), Some(f)) = (&t.username, &t.password_file) {
                        s.push_str(&format!(", login {u} (password in {f})"));
                    }
                    s
                }
                _ => t.command.as_deref().unwrap_or(&[]).join(" "),
            };
            [t.id.to_string(), t.kind.clone(), place]
        })
        .collect();
    let header = ["ID", "TYPE", "WHERE"];
    let widths: Vec<usize> = (0..2)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |c: [&str; 3]| {
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {}\n",
            c[0],
            c[1],
            c[2],
            w0 = widths[0],
            w1 = widths[1]
        ));
    };
    line(header);
    for r in &rows {
        line([&r[0], &r[1], &r[2]]);
    }
    out
}
