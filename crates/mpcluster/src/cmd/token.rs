//! `mpcluster token add|list|remove`: the API tokens, edited in the cluster store directly
//! (`--store`, like the configuration commands) through [`mpcluster_config::tokens`].
//!
//! `add` prints the new token's credential (`<id>:<secret>`) on stdout, once (or writes it to
//! a new mode-0600 file with `--output`); the store keeps only a salted argon2id hash. `list`
//! never shows secrets or hashes. Removing a token takes effect on the next request.
//!
//! Exit codes: 0 success; 2 invalid input (id, privileges, expiry), an existing id on `add`,
//! an unknown id on `remove`; 1 other failures (store unreachable, unreadable document).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use mpcluster_config::tokens::{add_token, list_tokens, remove_token};
use mpcluster_config::unix_now;
use mpcluster_core::tokens::{
    TokenId, TokensDoc, format_privileges, format_time, parse_expire, parse_privileges,
};
use serde_json::{Value, json};

use super::Failure;
use super::config::{failure, open, print_json};
use super::status::Format;
pub use crate::cli::token::{AddArgs, ListArgs, TokenArgs, TokenCommand};

/// Run the command.
pub async fn run(args: &TokenArgs) -> Result<ExitCode, Failure> {
    match &args.command {
        TokenCommand::Add(a) => add(a).await,
        TokenCommand::List(a) => list(a).await,
        TokenCommand::Remove(a) => {
            let id = TokenId::new(a.name.clone()).map_err(|e| Failure::new(2, e))?;
            let store = open(&a.store).await?;
            remove_token(store.as_ref(), &id).await.map_err(failure)?;
            println!("removed token '{id}'");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Create `path` (which must not exist) with mode 0600 and write `credential` to it.
pub fn write_new_secret_file(path: &Path, credential: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(format!("{credential}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

async fn add(a: &AddArgs) -> Result<ExitCode, Failure> {
    let id = TokenId::new(a.name.clone()).map_err(|e| Failure::new(2, e))?;
    let privs = parse_privileges(&a.privs).map_err(|e| Failure::new(2, e))?;
    let expire = a
        .expire
        .as_deref()
        .map(|e| parse_expire(e, unix_now()))
        .transpose()
        .map_err(|e| Failure::new(2, e))?;
    if let Some(out) = &a.output
        && out.exists()
    {
        return Err(Failure::new(
            2,
            anyhow!("{} exists already; not overwriting it", out.display()),
        ));
    }
    let store = open(&a.store).await?;
    let token = add_token(store.as_ref(), id, privs.clone(), expire, a.comment.clone())
        .await
        .map_err(failure)?;
    let expiry = expire.map_or_else(
        || "never expires".to_owned(),
        |e| format!("expires {}", format_time(e)),
    );
    match &a.output {
        Some(out) => {
            write_new_secret_file(out, &token.credential()).map_err(|e| {
                Failure::new(
                    1,
                    e.context(format!(
                        "token '{}' was added, but its secret is lost: remove it and add it again",
                        token.id
                    )),
                )
            })?;
            eprintln!(
                "added token '{}' ({}; {expiry}); its credential is in {} (mode 0600)",
                token.id,
                format_privileges(&privs),
                out.display()
            );
        }
        None => {
            eprintln!(
                "added token '{}' ({}; {expiry}). Its credential follows, shown only this once; send it as 'Authorization: Bearer <credential>':",
                token.id,
                format_privileges(&privs)
            );
            println!("{}", token.credential());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list_json(doc: &TokensDoc, now: i64) -> Value {
    Value::Array(
        doc.tokens
            .iter()
            .map(|(id, e)| {
                json!({
                    "id": id,
                    "privs": e.privs,
                    "created": e.created,
                    "expire": e.expire,
                    "expired": e.is_expired(now),
                    "comment": e.comment,
                })
            })
            .collect(),
    )
}

async fn list(a: &ListArgs) -> Result<ExitCode, Failure> {
    let store = open(&a.store).await?;
    let loaded = list_tokens(store.as_ref()).await.map_err(failure)?;
    let now = unix_now();
    if a.format == Format::Json {
        print_json(&json!({ "data": list_json(&loaded.value, now), "digest": loaded.digest }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if loaded.value.tokens.is_empty() {
        println!("no API tokens");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 5]> = loaded
        .value
        .tokens
        .iter()
        .map(|(id, e)| {
            let expire = match e.expire {
                None => "never".to_owned(),
                Some(t) if e.is_expired(now) => format!("EXPIRED {}", format_time(t)),
                Some(t) => format_time(t),
            };
            [
                id.to_string(),
                format_privileges(&e.privs),
                format_time(e.created),
                expire,
                e.comment.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["ID", "PRIVILEGES", "CREATED", "EXPIRES", "COMMENT"];
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    Ok(ExitCode::SUCCESS)
}
