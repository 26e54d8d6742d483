//! `mpcluster preflight`: before maintenance, would every LUN keep a usable path on every
//! node with these target ports, nodes or adapters down? Asks the server
//! (`POST .../cluster/multipath/preflight`) with `--server`, else evaluates the snapshot
//! read from the store or a file with the same code (`mpcluster_core::preflight`).
//!
//! Exit codes: 0 safe, 2 unsafe (some LUN would lose its last usable path on some node),
//! 3 unknown (a node that carries LUNs has stale or no path detail, or the cluster cannot be
//! read), 1 for bad `--down` values.

use std::process::ExitCode;

use anyhow::Context as _;
use mpcluster_core::preflight::{Down, PreflightReport, PreflightRequest, evaluate};
use mpcluster_core::status::assemble;

use super::Failure;
pub use crate::cli::preflight::PreflightArgs;
use crate::cli::status::Format;

/// Run the command.
pub async fn run(args: &PreflightArgs) -> Result<ExitCode, Failure> {
    let down = args
        .down
        .iter()
        .map(|d| Down::parse(d))
        .collect::<Result<Vec<_>, _>>()
        .context("--down")
        .map_err(|e| Failure::new(1, e))?;
    let request = PreflightRequest {
        down,
        min_paths: args.min_paths,
    };
    request
        .check()
        .context("--down")
        .map_err(|e| Failure::new(1, e))?;
    let report = match &args.source.server {
        Some(url) if args.source.snapshot.is_none() => ask_server(args, url, &request)
            .await
            .map_err(|e| Failure::new(3, e))?,
        _ => {
            let snap = args.source.load().await.map_err(|e| Failure::new(3, e))?;
            evaluate(&assemble(&snap), &request)
        }
    };
    match args.format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&report)
                .context("cannot encode the report")
                .map_err(|e| Failure::new(3, e))?;
            println!("{text}");
        }
        Format::Table => print!("{}", report.render()),
    }
    Ok(ExitCode::from(report.verdict.exit_code()))
}

async fn ask_server(
    args: &PreflightArgs,
    url: &str,
    request: &PreflightRequest,
) -> anyhow::Result<PreflightReport> {
    let client = args.source.client.client()?;
    let endpoint = format!(
        "{}/api2/json/cluster/multipath/preflight",
        url.trim_end_matches('/')
    );
    let body = serde_json::to_string(request).context("cannot encode the request")?;
    let text = tokio::task::spawn_blocking(move || client.post_json(&endpoint, &body))
        .await
        .context("the HTTP request task failed")??;
    let value: serde_json::Value =
        serde_json::from_str(&text).context("the server's reply is not JSON")?;
    let data = value
        .get("data")
        .context("the server's reply has no \"data\"")?;
    serde_json::from_value(data.clone()).context("the server's pre-flight report")
}
