//! `mpcluster node`: this node's multipath state, collected once from the local multipathd
//! (no cluster store, no server), and forgetting a departed node.
//!
//! - `node status`: every map with its summary and its paths (table or the [`NodeReport`]
//!   JSON).
//! - `node broadcast`: the exact `multipath` value the agent would publish now, on stdout;
//!   its size and whether it had to be reduced or truncated, on stderr.
//! - `node remove NAME [--force]`: forget a departed node in the cluster store (`--store`):
//!   its membership record and every value it published, so its column leaves the status
//!   ([`mpcluster_config::nodes::remove_node`]). Refused while the node is online.
//!
//! Exit codes: 0 on success; 2 when multipathd cannot be asked or its reply cannot be used
//! (the message names the socket tried, the OS error and what to check); `remove`: 2 for an
//! invalid name, an online node (without `--force`) or an unknown one, 1 when the store
//! fails.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use mpcluster_agent::collect::collect;
use mpcluster_config::nodes::{RemoveNodeError, remove_node};
use mpcluster_core::multipathd::{GroupReport, MapReport, NodeReport, PathReport};
use mpcluster_core::payload::{self, BROADCAST_BUDGET, Encoded};
use mpcluster_core::table::{human_size, terminal_safe};
use mpcluster_core::{MapState, NodeName};

use super::Failure;
pub use crate::cli::node::{
    CollectArgs, Format, NodeArgs, NodeBroadcastArgs, NodeCommand, NodeRemoveArgs, NodeStatusArgs,
};

/// Exit code when multipathd cannot be asked or answered something unusable.
const EXIT_COLLECT: u8 = 2;

impl CollectArgs {
    /// Ask multipathd once and summarize (exit code 2 on failure).
    async fn report(&self) -> Result<NodeReport, Failure> {
        let timeout = Duration::try_from_secs_f64(self.multipathd_timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| {
                format!(
                    "--multipathd-timeout: {} is not a duration of more than 0 seconds",
                    self.multipathd_timeout
                )
            })
            .map_err(|e| Failure::new(1, e))?;
        let client =
            mpcluster_agent::MultipathdClient::new(self.multipathd_socket.clone(), timeout);
        collect(&client, &self.sysfs_root)
            .await
            .context("cannot collect this node's multipath state")
            .map_err(|e| Failure::new(EXIT_COLLECT, e))
    }
}

/// Run the command.
pub async fn run(args: &NodeArgs) -> Result<ExitCode, Failure> {
    match &args.command {
        NodeCommand::Status(a) => status(a).await,
        NodeCommand::Broadcast(a) => broadcast(a).await,
        NodeCommand::Remove(a) => remove(a).await,
    }
}

async fn remove(a: &NodeRemoveArgs) -> Result<ExitCode, Failure> {
    let node = NodeName::new(a.name.as_str()).map_err(|e| Failure::new(2, e))?;
    let store = a.store.open().await.map_err(|e| Failure::new(1, e))?;
    let removed = remove_node(store.as_ref(), &node, a.force)
        .await
        .map_err(|e| match e {
            RemoveNodeError::Online { .. } | RemoveNodeError::Unknown { .. } => {
                Failure::new(2, anyhow::anyhow!("{e}"))
            }
            RemoveNodeError::Store { .. } => Failure::new(1, e),
        })?;
    println!(
        "removed node '{}' from {} (its membership and everything it published)",
        removed.node,
        store.describe()
    );
    if removed.was_online {
        eprintln!(
            "note: node '{}' was online: if its agent still runs, it publishes again and the node reappears",
            removed.node
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(args: &NodeStatusArgs) -> Result<ExitCode, Failure> {
    let report = args.collect.report().await?;
    let text = match args.format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&report)
                .context("cannot encode the node report")
                .map_err(|e| Failure::new(1, e))?;
            text.push('\n');
            text
        }
        Format::Table => render(&report, super::stdout_color()),
    };
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

async fn broadcast(args: &NodeBroadcastArgs) -> Result<ExitCode, Failure> {
    let report = args.collect.report().await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let encoded = payload::encode_broadcast(now, &report.summaries());
    // Byte-exact when piped; a newline on a terminal only, so the prompt starts on its own line.
    let mut out = encoded.value.clone().into_bytes();
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        out.push(b'\n');
    }
    write_stdout(&out)?;
    eprintln!("{}", size_line(&encoded));
    if report.maps.is_empty() {
        eprintln!(
            "note: no multipath map: the agent clears its broadcast instead of publishing this"
        );
    }
    for e in &report.errors {
        eprintln!("note: {}", terminal_safe(e));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
        .map_err(|e| Failure::new(1, e))
}

/// `<n> bytes (budget <b>), <kept> of <total> maps, ...`: what `node broadcast` says on stderr.
pub fn size_line(e: &Encoded) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut line = format!(
        "broadcast: {} bytes (budget {BROADCAST_BUDGET}), {} of {} map{}",
        e.value.len(),
        e.maps_kept,
        e.maps_total,
        plural(e.maps_total)
    );
    if e.reduced == 0 && e.truncated == 0 {
        line.push_str(", not reduced, not truncated");
    } else {
        if e.reduced > 0 {
            let _ = write!(
                line,
                ", reduced: {} map{} without transport/size",
                e.reduced,
                plural(e.reduced)
            );
        } else {
            line.push_str(", not reduced");
        }
        if e.truncated > 0 {
            let _ = write!(line, ", truncated: {} map(s) left out", e.truncated);
        } else {
            line.push_str(", not truncated");
        }
    }
    line
}

// ---- the table -------------------------------------------------------------------------

fn paint(code: &str, text: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// The colour of a map state (as in the cluster status table).
fn state_color(state: MapState) -> &'static str {
    match state {
        MapState::Optimal => "32",
        MapState::Degraded => "33",
        MapState::Missing => "38;5;208",
        MapState::Failed => "1;31",
        MapState::Unknown => "90",
    }
}

fn or_dash(v: Option<&str>) -> String {
    v.map_or_else(|| "-".to_owned(), terminal_safe)
}

/// A map's state word: `failed (queueing)` when I/O hangs instead of failing.
fn state_text(m: &MapReport) -> String {
    if m.queueing {
        format!("{} (queueing)", m.state)
    } else {
        m.state.to_string()
    }
}

/// Pad cells to column widths; `colors[i]` paints cell `i` after padding is computed.
fn aligned(rows: &[Vec<(Option<&'static str>, String)>], indent: &str, color: bool) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|(_, t)| t.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = indent.to_owned();
            for (i, (code, text)) in row.iter().enumerate() {
                let shown = match code {
                    Some(code) => paint(code, text, color),
                    None => text.clone(),
                };
                line.push_str(&shown);
                if i + 1 < row.len() {
                    line.push_str(&" ".repeat(widths[i] - text.chars().count() + 2));
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

fn path_row(p: &PathReport) -> Vec<(Option<&'static str>, String)> {
    let (mark, code) = if !p.usable && p.dm_st.as_deref() == Some("failed") {
        ("FAILED", "1;31")
    } else if !p.usable {
        // Not failed in the kernel (yet), but not carrying I/O: checker faulty, i/o pending...
        ("UNUSABLE", "1;31")
    } else if p.marginal {
        ("marginal", "33")
    } else {
        ("ok", "32")
    };
    // As `multipath -ll` shows them: DM state, checker state, device state.
    let word = |v: &Option<String>| v.as_deref().map_or_else(|| "?".to_owned(), terminal_safe);
    let adapter = p.host_adapter.as_deref().or(p.host_wwpn.as_deref());
    let target = p
        .portal
        .as_deref()
        .or(p.nvme_address.as_deref())
        .or(p.iscsi_target.as_deref())
        .or(p.target_wwpn.as_deref())
        .or(p.target_wwnn.as_deref());
    vec![
        (Some(code), mark.to_owned()),
        (None, terminal_safe(&p.dev)),
        (None, word(&p.dm_st)),
        (None, word(&p.chk_st)),
        (None, word(&p.dev_st)),
        (
            None,
            format!(
                "pri {}",
                p.pri.map_or_else(|| "-".to_owned(), |v| v.to_string())
            ),
        ),
        (None, format!("hcil {}", or_dash(p.hcil.as_deref()))),
        (None, format!("adapter {}", or_dash(adapter))),
        (None, format!("target {}", or_dash(target))),
    ]
}

fn group_line(g: &GroupReport) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &g.state {
        parts.push(terminal_safe(s));
    }
    if let Some(p) = g.pri {
        parts.push(format!("pri {p}"));
    }
    if let Some(s) = &g.selector {
        parts.push(terminal_safe(s));
    }
    if g.marginal {
        parts.push("marginal".to_owned());
    }
    let head = match g.group {
        Some(n) => format!("group {n}"),
        None => "group ?".to_owned(),
    };
    if parts.is_empty() {
        format!("  {head}")
    } else {
        format!("  {head} ({})", parts.join(", "))
    }
}

/// Render the node report for people: one line per map in multipathd's order (as `multipath
/// -ll` lists them), its path groups and paths indented below (paths not carrying I/O
/// marked `FAILED`, or `UNUSABLE` while the kernel still has them active), then a count per state and the report's problems. Text from multipathd is made
/// terminal-safe; `color` adds ANSI colours.
pub fn render(report: &NodeReport, color: bool) -> String {
    let mut out = String::new();
    if report.maps.is_empty() {
        out.push_str("No multipath maps on this node.\n");
    } else {
        let header: Vec<(Option<&'static str>, String)> =
            ["NAME", "WWID", "SIZE", "STATE", "PATHS", "TRANSPORT"]
                .iter()
                .map(|h| (None, (*h).to_owned()))
                .collect();
        let mut rows = vec![header];
        for m in &report.maps {
            let name = if m.name == m.wwid.as_str() {
                "-".to_owned()
            } else {
                terminal_safe(&m.name)
            };
            rows.push(vec![
                (None, name),
                (None, terminal_safe(m.wwid.as_str())),
                (None, m.size.map_or_else(|| "-".to_owned(), human_size)),
                (Some(state_color(m.state)), state_text(m)),
                (None, format!("{}/{}", m.paths_active, m.paths_total)),
                (None, or_dash(m.transport.as_deref())),
            ]);
        }
        let map_lines = aligned(&rows, "", color);
        // Path columns line up across the whole table.
        let path_rows: Vec<Vec<_>> = report
            .maps
            .iter()
            .flat_map(|m| {
                m.path_groups
                    .iter()
                    .flat_map(|g| g.paths.iter().map(path_row))
            })
            .collect();
        let mut path_lines = aligned(&path_rows, "    ", color).into_iter();

        out.push_str(&map_lines[0]);
        out.push('\n');
        for (m, line) in report.maps.iter().zip(&map_lines[1..]) {
            out.push_str(line);
            out.push('\n');
            if m.paths_omitted {
                out.push_str("  (paths not reported)\n");
            }
            for g in &m.path_groups {
                out.push_str(&group_line(g));
                out.push('\n');
                for _ in &g.paths {
                    if let Some(l) = path_lines.next() {
                        out.push_str(&l);
                        out.push('\n');
                    }
                }
            }
        }

        let mut counts: Vec<(MapState, usize)> = Vec::new();
        for state in MapState::ALL.iter().rev() {
            let n = report.maps.iter().filter(|m| m.state == *state).count();
            if n > 0 {
                counts.push((*state, n));
            }
        }
        let summary: Vec<String> = counts
            .iter()
            .map(|(s, n)| paint(state_color(*s), &format!("{n} {s}"), color))
            .collect();
        let n = report.maps.len();
        let _ = writeln!(
            out,
            "\n{n} map{}: {}",
            if n == 1 { "" } else { "s" },
            summary.join(", ")
        );
    }
    if !report.errors.is_empty() {
        out.push_str("\nProblems:\n");
        for e in &report.errors {
            let _ = writeln!(out, "  {}", terminal_safe(e));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mpcluster_core::Wwid;

    fn path(dev: &str, usable: bool, marginal: bool) -> PathReport {
        PathReport {
            dev: dev.to_owned(),
            dev_t: None,
            dm_st: Some(if usable { "active" } else { "failed" }.to_owned()),
            chk_st: Some(if usable { "ready" } else { "faulty" }.to_owned()),
            dev_st: None,
            usable,
            marginal,
            checker: None,
            pri: None,
            protocol: None,
            transport: None,
            hcil: None,
            host_adapter: None,
            host_wwnn: None,
            host_wwpn: Some("0x10000090fa000001".to_owned()),
            target_wwnn: Some("0x20000090fa000001".to_owned()),
            target_wwpn: None,
            iscsi_target: None,
            lun: None,
            ..PathReport::default()
        }
    }

    fn report(name: &str) -> NodeReport {
        NodeReport {
            maps: vec![MapReport {
                name: name.to_owned(),
                wwid: Wwid::new("36001405aaaa").unwrap(),
                sysfs: Some("dm-0".to_owned()),
                size: None,
                state: MapState::Degraded,
                paths_active: 2,
                paths_total: 3,
                transport: None,
                queueing: false,
                paths_omitted: false,
                path_groups: vec![GroupReport {
                    group: None,
                    state: None,
                    pri: None,
                    selector: None,
                    marginal: false,
                    paths: vec![
                        path("sda", true, false),
                        path("sdb", false, false),
                        path("sdc", true, true),
                    ],
                }],
            }],
            errors: vec!["map size unknown\x1b[2J".to_owned()],
        }
    }

    #[test]
    fn plain_table_marks_paths_and_escapes_peer_text() {
        let text = render(&report("evil\x1b]0;title\x07"), false);
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text}");
        assert!(text.contains("evil\\u{1b}]0;title\\u{7}"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "  group ?");
        assert!(lines[3].starts_with("    ok        sda  active  ready   ?  pri -  hcil -  adapter 0x10000090fa000001  target 0x20000090fa000001"), "{text}");
        assert!(
            lines[4].starts_with("    FAILED    sdb  failed  faulty"),
            "{text}"
        );
        assert!(lines[5].starts_with("    marginal  sdc"), "{text}");
        assert!(
            text.ends_with("\nProblems:\n  map size unknown\\u{1b}[2J\n"),
            "{text}"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let text = render(&report("m"), true);
        assert!(text.contains("\x1b[33mdegraded\x1b[0m"), "{text}");
        assert!(text.contains("\x1b[1;31mFAILED\x1b[0m"), "{text}");
        // Padding is computed on the plain text: columns still line up.
        let plain = render(&report("m"), false);
        let strip = |s: &str| {
            s.replace("\x1b[33m", "")
                .replace("\x1b[32m", "")
                .replace("\x1b[1;31m", "")
                .replace("\x1b[0m", "")
        };
        assert_eq!(strip(&text), plain);
    }

    #[test]
    fn size_lines() {
        let e = |value: &str, kept, total, reduced, truncated| Encoded {
            value: value.to_owned(),
            maps_total: total,
            maps_kept: kept,
            reduced,
            truncated,
        };
        assert_eq!(
            size_line(&e("{}", 1, 1, 0, 0)),
            format!(
                "broadcast: 2 bytes (budget {BROADCAST_BUDGET}), 1 of 1 map, not reduced, not truncated"
            )
        );
        assert_eq!(
            size_line(&e("{}", 3, 5, 1, 2)),
            format!(
                "broadcast: 2 bytes (budget {BROADCAST_BUDGET}), 3 of 5 maps, reduced: 1 map without transport/size, truncated: 2 map(s) left out"
            )
        );
        assert!(
            size_line(&e("{}", 5, 5, 2, 0))
                .ends_with(", reduced: 2 maps without transport/size, not truncated")
        );
    }
}
