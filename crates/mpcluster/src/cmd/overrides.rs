//! `mpcluster overrides get|set`: the admin's verbatim `devices` / `overrides` sections (their
//! own store document and digest), checked with multipath's tokenizer rules before storing.
//!
//! `get` prints the text exactly as stored (`get > f; edit f; set f` round-trips). A conflict
//! is never retried: the whole text is the entry. Exit codes: see [`super::config`].

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use mpcluster_config::overrides::parse_overrides;
use mpcluster_core::config::Overrides;

use super::Failure;
use super::config::{edit_retrying, failure, open, print_json, short};
use super::status::Format;
pub use crate::cli::overrides::{OverridesArgs, OverridesCommand};

/// Largest file `set` reads (the model accepts 128 KiB; this leaves room to report the size).
const MAX_READ: u64 = 1024 * 1024;

fn read_text(path: &PathBuf) -> anyhow::Result<String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_READ)
            .read_to_string(&mut text)
            .context("cannot read the overrides from stdin")?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_READ).read_to_string(&mut text))
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(text)
}

/// Run the command.
pub async fn run(args: &OverridesArgs) -> Result<ExitCode, Failure> {
    match &args.command {
        OverridesCommand::Get(a) => {
            let store = open(&a.store).await?;
            let v = mpcluster_config::overrides::view(store.as_ref())
                .await
                .map_err(failure)?;
            if a.format == Format::Json {
                print_json(&serde_json::to_value(&v).map_err(|e| Failure::new(1, e))?)?;
            } else {
                print!("{}", v.content);
            }
        }
        OverridesCommand::Set(a) => {
            let text = read_text(&a.file).map_err(|e| Failure::new(1, e))?;
            let overrides = parse_overrides(text).map_err(failure)?;
            let store = open(&a.store).await?;
            let done =
                edit_retrying::<Overrides, (), _, _>(store.as_ref(), None::<fn(&Overrides)>, |o| {
                    *o = overrides.clone();
                    Ok(())
                })
                .await?;
            println!(
                "overrides stored (digest {})",
                short(&done.digest.to_string())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
