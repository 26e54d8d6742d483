//! The human table for a [`Status`]: one row per LUN, one column per node, then node problems.
//!
//! Entry point: [`render`]. Colour is the caller's decision ([`TableOptions::color`]): the CLI
//! enables it only on a TTY and never with `NO_COLOR`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::ids::NodeName;
use crate::rollup::{Cell, LunStatus};
use crate::state::MapState;
use crate::status::Status;

/// Rendering options.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableOptions {
    /// Emit ANSI colour codes for states.
    pub color: bool,
}

/// Bytes as a short IEC size (`512 B`, `64.0 MiB`, `1.5 TiB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian, no time zone database).
/// A time outside the years -9999 to 9999 (only a broken or hostile peer sends one) is shown
/// as `@SECONDS`.
pub fn format_unix_utc(t: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        ),
        Err(_) => format!("@{t}"),
    }
}

/// Make peer-supplied text safe for a terminal: control characters (newlines, escapes) are
/// shown escaped instead of being interpreted.
pub fn terminal_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn paint(state: MapState, text: &str, color: bool) -> String {
    if !color {
        return text.to_owned();
    }
    let code = match state {
        MapState::Optimal => "32",       // green
        MapState::Degraded => "33",      // yellow/amber
        MapState::Missing => "38;5;208", // orange
        MapState::Failed => "1;31",      // bold red
        MapState::Unknown => "90",       // grey
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn cell_text(cell: Option<&Cell>) -> (Option<MapState>, String) {
    let Some(cell) = cell else {
        return (None, "-".to_owned());
    };
    let text = match (cell.paths_active, cell.paths_total) {
        (Some(a), Some(t)) => {
            let num = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
            format!("{} {}/{}", cell.state, num(a), num(t))
        }
        _ => cell.state.to_string(),
    };
    (Some(cell.state), text)
}

/// Render the status as a table for people. LUNs are listed worst first, then by WWID.
pub fn render(status: &Status, opts: TableOptions) -> String {
    let nodes: BTreeSet<&NodeName> = status.luns.iter().flat_map(|l| l.nodes.keys()).collect();
    let mut luns: Vec<&LunStatus> = status.luns.iter().collect();
    luns.sort_by(|a, b| {
        b.cluster_state
            .cmp(&a.cluster_state)
            .then(a.wwid.cmp(&b.wwid))
    });

    // Each cell: (state for colour, plain text).
    let mut header: Vec<(Option<MapState>, String)> = ["LUN", "USED BY", "SIZE", "STATE"]
        .iter()
        .map(|h| (None, (*h).to_owned()))
        .collect();
    header.extend(nodes.iter().map(|n| (None, n.to_string())));
    let mut rows = vec![header];
    for lun in &luns {
        let label = lun
            .alias
            .as_ref()
            .map_or_else(|| lun.wwid.to_string(), |a| a.to_string());
        let mut row = vec![
            (None, label),
            (None, lun.used_by.clone().unwrap_or_else(|| "-".to_owned())),
            (None, lun.size.map_or_else(|| "-".to_owned(), human_size)),
            (Some(lun.cluster_state), lun.cluster_state.to_string()),
        ];
        row.extend(nodes.iter().map(|n| cell_text(lun.nodes.get(*n))));
        rows.push(row);
    }

    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].1.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();

    let mut out = String::new();
    if luns.is_empty() {
        out.push_str("No LUNs: the allow-list is empty and no node reports a multipath map.\n");
    } else {
        for row in &rows {
            let mut line = String::new();
            for (i, (state, text)) in row.iter().enumerate() {
                let pad = widths[i] - text.chars().count();
                let shown = match state {
                    Some(s) => paint(*s, text, opts.color),
                    None => text.clone(),
                };
                line.push_str(&shown);
                if i + 1 < columns {
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let counts = status.counts();
        let summary: Vec<String> = counts
            .iter()
            .rev()
            .map(|(state, n)| paint(*state, &format!("{n} {state}"), opts.color))
            .collect();
        let _ = writeln!(
            out,
            "\n{} LUN{}: {}",
            luns.len(),
            if luns.len() == 1 { "" } else { "s" },
            summary.join(", ")
        );
    }

    if !status.nodes.is_empty() {
        out.push_str("\nNode problems:\n");
        for (node, issues) in &status.nodes {
            let when = |t: &Option<Option<i64>>| match t {
                Some(Some(t)) => format!(" (since {})", format_unix_utc(*t)),
                _ => String::new(),
            };
            if let Some(a) = issues.agent {
                let _ = writeln!(out, "  {node}: {}", a.describe());
            }
            if let Some(e) = &issues.broadcast_error {
                let _ = writeln!(out, "  {node}: {}", terminal_safe(e));
            }
            for text in [&issues.apply_waiting, &issues.plan_error]
                .into_iter()
                .flatten()
            {
                let _ = writeln!(out, "  {node}: {}", terminal_safe(text));
            }
            if let Some(e) = &issues.publish_error {
                let since = issues.publish_time.map(Some);
                let _ = writeln!(
                    out,
                    "  {node}: publishing failed{}: {}",
                    when(&since),
                    terminal_safe(e)
                );
            }
            let failures = [
                ("config apply", &issues.apply_error, &issues.apply_time),
                ("collection", &issues.collect_error, &issues.collect_time),
            ];
            for (what, error, time) in failures {
                if let Some(e) = error {
                    let _ = writeln!(
                        out,
                        "  {node}: {what} failed{}: {}",
                        when(time),
                        terminal_safe(e)
                    );
                }
            }
        }
    }
    out
}

/// The root-cause hints for people, one per line under a `Hints:` heading (empty when there
/// are none): severity, kind, the sentence, since when. Peer text is made terminal-safe.
pub fn render_hints(hints: &[crate::hints::Hint], options: TableOptions) -> String {
    use crate::hints::Severity;
    let mut out = String::new();
    if hints.is_empty() {
        return out;
    }
    out.push_str("\nHints:\n");
    for h in hints {
        let severity = h.severity.as_str().to_ascii_uppercase();
        let severity = match (options.color, h.severity) {
            (true, Severity::Critical) => format!("\x1b[31m{severity}\x1b[0m"),
            (true, Severity::Warning) => format!("\x1b[33m{severity}\x1b[0m"),
            _ => severity,
        };
        let _ = writeln!(
            out,
            "  {severity} {}: {} (since {})",
            h.kind.as_str(),
            terminal_safe(&h.message),
            format_unix_utc(h.since)
        );
    }
    out
}

/// The flapping LUNs and cells for people, one per line under a `Flapping:` heading (empty
/// when there are none).
pub fn render_flapping(
    flaps: &[crate::events::Flap],
    luns: &[crate::rollup::LunStatus],
    options: TableOptions,
) -> String {
    let mut out = String::new();
    if flaps.is_empty() {
        return out;
    }
    out.push_str("\nFlapping:\n");
    for f in flaps {
        let name = luns
            .iter()
            .find(|l| l.wwid == f.wwid)
            .and_then(|l| l.alias.as_ref())
            .map_or_else(|| f.wwid.to_string(), |a| format!("{a} ({})", f.wwid));
        let label = if options.color {
            "\x1b[35mFLAPPING\x1b[0m"
        } else {
            "FLAPPING"
        };
        let place = match &f.node {
            Some(n) => format!("{name} on {n}"),
            None => name,
        };
        let _ = writeln!(
            out,
            "  {label} {place}: {} changes since {}, last {}",
            f.changes,
            format_unix_utc(f.since),
            format_unix_utc(f.last)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(human_size(3 * (1 << 40) / 2), "1.5 TiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn times() {
        assert_eq!(format_unix_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix_utc(1_796_000_000), "2026-11-30 00:53:20 UTC");
        assert_eq!(format_unix_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_unix_utc(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(format_unix_utc(253_402_300_799), "9999-12-31 23:59:59 UTC");
        assert_eq!(format_unix_utc(i64::MAX), format!("@{}", i64::MAX));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(terminal_safe("a\nb\x1b[31m"), "a\\nb\\u{1b}[31m");
    }
}
