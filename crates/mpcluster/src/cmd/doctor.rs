//! `mpcluster doctor`: one line per check of this node (`mpcluster_agent::doctor`), what is
//! wrong and the command that fixes it. Exit code 0 when no check found an error (warnings
//! and skipped checks included), 1 when one did, 2 when the command itself cannot run (bad
//! options or settings file, no usable node name).
//!
//! It reads the settings file like `agent` and `serve` (store, node, socket, root, no-apply,
//! tls-cert, stale-after), so it checks what the services run with. The facts are the agent
//! crate's; what only this binary can do is asking a server for its clock (`--server`: the
//! `Date` header of `GET /health`, which needs no token).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mpcluster_agent::doctor::{
    self, DoctorConfig, Finding, ServerClock, ServerDate, Severity, has_errors,
};
use mpcluster_agent::parser_check::ParserCheck;
use mpcluster_core::snapshot::DEFAULT_STALE_AFTER;
use serde_json::json;

use super::Failure;
use super::agent_args::hostname;
pub use crate::cli::doctor::DoctorArgs;

/// Run the command.
pub async fn run(args: &DoctorArgs) -> Result<ExitCode, Failure> {
    // The store, and Proxmox mode with it; a store that cannot be opened is a finding.
    let (store, pve) = match args.store.open_cluster().await {
        Ok((store, pve)) => (Ok(store), pve),
        Err(e) => (Err(format!("{e:#}")), None),
    };
    let node = match (&args.node, &pve) {
        (Some(node), _) => node.clone(),
        (None, Some(p)) => p.local_node().await.map_err(|e| {
            Failure::new(
                2,
                anyhow::Error::new(e).context(format!(
                    "cannot read this node's name from {}; pass --node",
                    p.members_file().display()
                )),
            )
        })?,
        (None, None) => hostname().map_err(|e| Failure::new(2, e))?,
    };
    let timeout = Duration::try_from_secs_f64(args.multipathd_timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| {
            format!(
                "--multipathd-timeout: {} is not a duration in seconds above 0",
                args.multipathd_timeout
            )
        })
        .map_err(|e| Failure::new(2, e))?;
    let client = mpcluster_agent::MultipathdClient::new(args.multipathd_socket.clone(), timeout);
    let config = DoctorConfig {
        node: node.clone(),
        root: args.root.clone(),
        applies: !args.no_apply,
        stale_after: args.stale_after.unwrap_or(DEFAULT_STALE_AFTER),
        tls_cert: args.tls_cert.clone(),
        systemctl: args.systemctl.clone(),
        parser_check: ParserCheck::for_root(&args.root),
    };
    let store_ref = match &store {
        Ok(s) => Ok(s.as_ref()),
        Err(e) => Err(e.clone()),
    };
    let mut facts = doctor::gather(&config, &client, store_ref).await;
    if let Some(url) = &args.server {
        let (url, ca, fingerprint) = (url.clone(), args.ca.clone(), args.fingerprint.clone());
        facts.server_clock = Some(
            tokio::task::spawn_blocking(move || server_clock(&url, ca, fingerprint))
                .await
                .map_err(|e| Failure::new(1, e))?,
        );
    }
    let findings = doctor::evaluate(&facts);
    if args.format == crate::cli::status::Format::Json {
        println!("{}", to_json(node.as_str(), &findings));
    } else {
        print!("{}", to_table(node.as_str(), &findings));
    }
    Ok(if has_errors(&findings) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `GET <url>/health` and its `Date` header, with this clock around the request (blocking).
/// Any answer carries the header, an error status (503 while the store is down) too.
fn server_clock(
    url: &str,
    ca: Option<std::path::PathBuf>,
    fingerprint: Option<String>,
) -> ServerClock {
    let endpoint = format!("{}/health", url.trim_end_matches('/'));
    let reply = (|| {
        let mut builder = ureq::AgentBuilder::new();
        let trust = match (ca, fingerprint) {
            (Some(ca), _) => Some(mpcluster_server::tls::ServerTrust::Ca(ca)),
            (None, Some(fp)) => Some(mpcluster_server::tls::ServerTrust::Fingerprint(
                mpcluster_server::tls::parse_fingerprint(&fp).map_err(|e| format!("{e}"))?,
            )),
            (None, None) => None,
        };
        if let Some(trust) = trust {
            let config = mpcluster_server::tls::client_config(&trust)
                .map_err(|e| mpcluster_core::error_chain(&e))?;
            builder = builder.tls_config(Arc::new(config));
        }
        let agent = builder.build();
        let sent_ms = now_ms();
        let response = match agent.get(&endpoint).timeout(Duration::from_secs(10)).call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => {
                return Err(format!(
                    "cannot reach {endpoint}: {}",
                    mpcluster_core::error_chain(&e)
                ));
            }
        };
        let received_ms = now_ms();
        let date = response
            .header("date")
            .ok_or_else(|| format!("{endpoint} sent no Date header"))?;
        Ok(ServerDate {
            date: date.to_owned(),
            sent_ms,
            received_ms,
        })
    })();
    ServerClock {
        url: url.to_owned(),
        reply,
    }
}

fn label(severity: Severity) -> &'static str {
    match severity {
        Severity::Ok => "ok",
        Severity::Skipped => "skipped",
        Severity::Warning => "WARNING",
        Severity::Error => "ERROR",
    }
}

fn count(findings: &[Finding], severity: Severity) -> usize {
    findings.iter().filter(|f| f.severity == severity).count()
}

fn plural(n: usize, word: &str) -> String {
    match n {
        0 => format!("no {word}s"),
        1 => format!("1 {word}"),
        _ => format!("{n} {word}s"),
    }
}

/// One line per finding (`ok      multipathd       running: ...`), its fix indented below it,
/// then a count.
fn to_table(node: &str, findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{:<8} {:<16} {}\n",
            label(f.severity),
            f.check,
            f.what
        ));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("{:<8} {:<16} fix: {fix}\n", "", ""));
        }
    }
    out.push_str(&format!(
        "\n{node}: {}, {}\n",
        plural(count(findings, Severity::Error), "error"),
        plural(count(findings, Severity::Warning), "warning")
    ));
    out
}

fn to_json(node: &str, findings: &[Finding]) -> serde_json::Value {
    json!({
        "node": node,
        "errors": count(findings, Severity::Error),
        "warnings": count(findings, Severity::Warning),
        "findings": findings.iter().map(|f| json!({
            "check": f.check,
            "severity": f.severity.as_str(),
            "what": f.what,
            "fix": f.fix,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings() -> Vec<Finding> {
        vec![
            Finding {
                check: "multipathd",
                severity: Severity::Ok,
                what: "running: pid 1 idle (at /run/multipathd.socket)".to_owned(),
                fix: None,
            },
            Finding {
                check: "agent-service",
                severity: Severity::Error,
                what: "mpcluster-agent.service is failed".to_owned(),
                fix: Some("systemctl restart mpcluster-agent.service".to_owned()),
            },
        ]
    }

    #[test]
    fn table_has_one_line_per_finding_and_the_fix_below() {
        assert_eq!(
            to_table("pve1", &findings()),
            "ok       multipathd       running: pid 1 idle (at /run/multipathd.socket)\n\
             ERROR    agent-service    mpcluster-agent.service is failed\n\
             \x20                         fix: systemctl restart mpcluster-agent.service\n\
             \n\
             pve1: 1 error, no warnings\n"
        );
    }

    #[test]
    fn json_names_every_field() {
        let v = to_json("pve1", &findings());
        assert_eq!(v["node"], "pve1");
        assert_eq!(v["errors"], 1);
        assert_eq!(v["warnings"], 0);
        assert_eq!(v["findings"][0]["severity"], "ok");
        assert_eq!(v["findings"][0]["fix"], serde_json::Value::Null);
        assert_eq!(v["findings"][1]["check"], "agent-service");
        assert_eq!(
            v["findings"][1]["fix"],
            "systemctl restart mpcluster-agent.service"
        );
    }
}
