//! `mpcluster nodes`: every known node with membership, liveness, last broadcast and errors.

use std::process::ExitCode;

use mpcluster_core::status::assemble;
use mpcluster_core::table::{format_unix_utc, terminal_safe};

use super::Failure;
use super::status::Format;
pub use crate::cli::nodes::NodesArgs;

/// Run the command.
pub async fn run(args: &NodesArgs) -> Result<ExitCode, Failure> {
    let snap = args.source.load().await.map_err(|e| Failure::new(2, e))?;
    let overview = assemble(&snap).node_overview;
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&overview).map_err(|e| Failure::new(2, e))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![[
        "NODE".to_owned(),
        "ONLINE".to_owned(),
        "MEMBER".to_owned(),
        "LAST BROADCAST".to_owned(),
        "MAPS".to_owned(),
        "PROBLEMS".to_owned(),
    ]];
    for n in &overview {
        let mut problems = Vec::new();
        if n.stale {
            problems.push("stale broadcast".to_owned());
        }
        if let Some(a) = n.issues.agent {
            problems.push(a.describe().to_owned());
        }
        if let Some(e) = &n.issues.broadcast_error {
            problems.push(terminal_safe(e));
        }
        if let Some(e) = &n.issues.publish_error {
            problems.push(format!("publish: {}", terminal_safe(e)));
        }
        if let Some(e) = &n.issues.apply_error {
            problems.push(format!("apply: {}", terminal_safe(e)));
        }
        for text in [&n.issues.apply_waiting, &n.issues.plan_error]
            .into_iter()
            .flatten()
        {
            problems.push(terminal_safe(text));
        }
        if let Some(e) = &n.issues.collect_error {
            problems.push(format!("collect: {}", terminal_safe(e)));
        }
        rows.push([
            n.node.to_string(),
            if n.online { "yes" } else { "no" }.to_owned(),
            match n.member {
                None => "standalone".to_owned(),
                Some(true) => "online".to_owned(),
                Some(false) => "offline".to_owned(),
            },
            n.last_broadcast
                .map_or_else(|| "-".to_owned(), format_unix_utc),
            n.maps.map_or_else(|| "-".to_owned(), |m| m.to_string()),
            if problems.is_empty() {
                "-".to_owned()
            } else {
                problems.join("; ")
            },
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}
