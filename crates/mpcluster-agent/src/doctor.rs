//! `mpcluster doctor`: what is wrong on this node, and the command that fixes it.
//!
//! Entry points: [`gather`] (the I/O: asks multipathd, runs `multipath -t`, `multipath -h` and
//! `systemctl`, reads files and the cluster store) collects [`Facts`]; [`evaluate`] (pure)
//! turns them into one [`Finding`] per check: its [`Severity`], what it found and, when
//! something is wrong, the command that fixes it. A check that cannot be made is reported as
//! [`Severity::Skipped`] with the reason, never left out. The binary's `doctor` command adds
//! the server's clock ([`ServerClock`], it has the HTTP client) and prints the findings.
//!
//! The checks, by their stable ids ([`checks`]):
//! - `multipath-tools`: `multipath` is installed under the root (`usr/sbin` or `sbin`, where
//!   the apply looks for it, [`crate::apply::MULTIPATH_BINARIES`]); its version is the first
//!   line of its `multipath -h`. multipathd 0.9.4 has no command that tells its version (its
//!   handler table has none; only the help text it sends for a command it does not know
//!   carries the version line), so the version shown is the installed multipath-tools'.
//! - `multipathd`: `show daemon` answers, with `pid N idle` or `running`.
//! - `parser`: the installed `multipath -t` reads the configuration under the root without a
//!   complaint ([`crate::parser_check`]; in a private mount namespace for another root).
//! - `drop-ins`: the drop-ins under the root are byte for byte what mpcluster renders now for
//!   the stored configuration (the baseline keeping the wwids-file entries mpcluster did not
//!   add, as the apply renders it, and the overrides), and the wwids file lists every
//!   allow-listed WWID. A difference means the agent has not applied the configuration (not
//!   running, failing, or holding a disruptive apply), or someone edited a generated file.
//! - `find-multipaths`: the running multipathd (`show config`) has the `defaults` values
//!   mpcluster fixes ([`FIXED_DEFAULTS`]: `find_multipaths strict`, `user_friendly_names
//!   no`): in force, not only on disk (a later file, or a missed reconfigure, would differ).
//!   The daemon's configuration rather than `multipath -t`'s stdout: that is the merged
//!   configuration on disk, which [`crate::parser_check`] does not keep, and the drop-ins
//!   check already compares the files.
//! - `store`: the cluster store opens and answers.
//! - `broadcast`: this node's health broadcast in the store decodes and is younger than the
//!   staleness limit; without one, multipathd must have no map (an agent publishes only while
//!   there are maps). On a store with membership, the node must be an online member.
//! - `collect`, `apply`: the node's `multipath-collect` / `multipath-apply` error, if any.
//! - `plan`: the node's `multipath-plan`: an apply held until an admin accepts it.
//! - `clock`: this node's clock against other clocks. The store has no clock of its own, so
//!   "the store's time" is what it can tell: (1) with `--server URL`, the `Date` header of a
//!   running `mpcluster serve` (its clock; the request's round trip and the header's whole
//!   seconds bound the offset's uncertainty); (2) the `time` of the other nodes' newest
//!   broadcasts in the store (each agent stamps them with its own clock, at least every
//!   refresh while it has maps): when every other node's newest broadcast is dated more than
//!   [`CLOCK_TOLERANCE`] seconds ahead of this clock, this clock is behind by at least the
//!   smallest such lead. Broadcasts cannot show this clock running *ahead* (they may simply be
//!   old): `--server` checks both directions. On a single node with no server given there is
//!   no other clock, and the check is skipped.
//! - `tls`: the server certificate (`tls-cert`): readable, valid now, not expiring within
//!   [`TLS_WARN_DAYS`] days.
//! - `agent-service`: `systemctl is-active mpcluster-agent.service` says `active`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mpcluster_config::node_config::read_node_config;
use mpcluster_config::unix_now;
use mpcluster_core::config::wwids_file::{foreign_entries, listed_wwids};
use mpcluster_core::config::{
    BASELINE_PATH, FIXED_DEFAULTS, OVERRIDES_PATH, ParserOutput, WWIDS_PATH,
    render_baseline_keeping, render_overrides,
};
use mpcluster_core::snapshot::kv_keys;
use mpcluster_core::{NodeName, Wwid, error_chain};
use mpcluster_store::ClusterStore;

use crate::apply::{MULTIPATH_BINARIES, STATE_PATH};
use crate::client::{ClientError, MultipathdClient, Reply};
use crate::parser_check::{ParserCheck, ParserCheckError};

/// The stable ids of the checks (the `check` of a [`Finding`], in [`evaluate`]'s order).
pub mod checks {
    /// multipath-tools installed under the root, and its version.
    pub const MULTIPATH_TOOLS: &str = "multipath-tools";
    /// multipathd answers `show daemon`.
    pub const MULTIPATHD: &str = "multipathd";
    /// `multipath -t` has no complaint about the configuration under the root.
    pub const PARSER: &str = "parser";
    /// The drop-ins and the wwids file are what mpcluster renders for the stored configuration.
    pub const DROP_INS: &str = "drop-ins";
    /// The running multipathd has mpcluster's fixed `defaults` (find_multipaths strict).
    pub const FIND_MULTIPATHS: &str = "find-multipaths";
    /// The cluster store opens and answers.
    pub const STORE: &str = "store";
    /// This node's broadcast is in the store, readable and fresh.
    pub const BROADCAST: &str = "broadcast";
    /// The node's `multipath-collect` error.
    pub const COLLECT: &str = "collect";
    /// The node's `multipath-apply` error.
    pub const APPLY: &str = "apply";
    /// The node's apply plan: an apply waiting for acceptance.
    pub const PLAN: &str = "plan";
    /// This node's clock against the server's and the other nodes'.
    pub const CLOCK: &str = "clock";
    /// The server certificate's validity.
    pub const TLS: &str = "tls";
    /// `mpcluster-agent.service` is active.
    pub const AGENT_SERVICE: &str = "agent-service";
}

/// The agent's systemd unit.
pub const AGENT_UNIT: &str = "mpcluster-agent.service";

/// The server's systemd unit (reloads its certificate on `systemctl reload`).
pub const SERVER_UNIT: &str = "mpcluster-server.service";

/// A clock this many seconds or more off another is an error.
pub const CLOCK_TOLERANCE: i64 = 5;

/// A server certificate expiring within this many days is a warning.
pub const TLS_WARN_DAYS: i64 = 30;

/// How long `multipath -h` and `systemctl is-active` may take.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(10);

const FIX_START_MULTIPATHD: &str = "systemctl enable --now multipathd";
const FIX_RESTART_MULTIPATHD: &str = "systemctl restart multipathd";
const FIX_INSTALL: &str = "apt install multipath-tools";
const FIX_RECONFIGURE: &str = "multipathd reconfigure";
const FIX_AS_ROOT: &str = "sudo mpcluster doctor";
const FIX_CLOCK: &str = "timedatectl set-ntp true  # or: systemctl restart chronyd";
const FIX_STORE: &str =
    "editor /etc/mpcluster/mpcluster.toml  # `store` and the etcd keys, as the agent uses them";

fn fix_start_agent() -> String {
    format!("systemctl enable --now {AGENT_UNIT}")
}

fn fix_restart_agent() -> String {
    format!("systemctl restart {AGENT_UNIT}")
}

// ---- findings ---------------------------------------------------------------------------------

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Checked, fine.
    Ok,
    /// Could not be checked (the reason is in [`Finding::what`]); not a problem by itself.
    Skipped,
    /// Worth a look; not broken (yet).
    Warning,
    /// Broken: `mpcluster doctor` exits non-zero.
    Error,
}

impl Severity {
    /// The word used in JSON: `ok`, `skipped`, `warning`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Skipped => "skipped",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The check's stable id ([`checks`]).
    pub check: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// What was found (what is wrong, or what is fine, or why it was not checked).
    pub what: String,
    /// The command that fixes it (shell; a `#` comment may follow), when something is wrong.
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, what: impl Into<String>) -> Self {
        Finding {
            check,
            severity: Severity::Ok,
            what: what.into(),
            fix: None,
        }
    }

    fn skipped(check: &'static str, what: impl Into<String>) -> Self {
        Finding {
            check,
            severity: Severity::Skipped,
            what: what.into(),
            fix: None,
        }
    }

    fn warning(check: &'static str, what: impl Into<String>, fix: Option<String>) -> Self {
        Finding {
            check,
            severity: Severity::Warning,
            what: what.into(),
            fix,
        }
    }

    fn error(check: &'static str, what: impl Into<String>, fix: Option<String>) -> Self {
        Finding {
            check,
            severity: Severity::Error,
            what: what.into(),
            fix,
        }
    }
}

// ---- facts ------------------------------------------------------------------------------------

/// Everything the checks look at, gathered once ([`gather`]).
#[derive(Debug, Clone)]
pub struct Facts {
    /// This node.
    pub node: NodeName,
    /// This node's clock when the facts were gathered (unix seconds).
    pub now: i64,
    /// The root the agent applies under (`/` in production).
    pub root: PathBuf,
    /// Whether the agent applies the cluster configuration on this node (not `no-apply`).
    pub applies: bool,
    /// The staleness limit of broadcasts, in seconds.
    pub stale_after: u64,
    /// multipath-tools under the root.
    pub tools: ToolsFacts,
    /// What multipathd answered.
    pub multipathd: MultipathdFacts,
    /// What `multipath -t` said.
    pub parser: ParserFacts,
    /// The drop-ins on disk against the stored configuration.
    pub dropins: DropinFacts,
    /// What the cluster store holds for this node (and its peers).
    pub store: StoreFacts,
    /// A server's clock, when one was asked (`--server`).
    pub server_clock: Option<ServerClock>,
    /// The server certificate.
    pub tls: TlsFacts,
    /// The agent's systemd unit.
    pub agent_service: ServiceFacts,
}

/// multipath-tools under the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolsFacts {
    /// The `multipath` found under the root, if any.
    pub installed: Option<PathBuf>,
    /// Its version line (`multipath-tools v0.9.4 (12/19, 2022)`), when `multipath -h` gave one.
    pub version: Option<String>,
}

/// Why multipathd could not be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultipathdErrorKind {
    /// No socket accepted the connection: not running.
    Unreachable,
    /// It did not answer in time (or answered `timeout`).
    Timeout,
    /// It refused the command (not root).
    PermissionDenied,
    /// Anything else (a broken reply, `fail`).
    Other,
}

/// An error asking multipathd, kept as text (with its whole chain) and a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipathdError {
    /// What kind of failure.
    pub kind: MultipathdErrorKind,
    /// The error and its causes.
    pub message: String,
}

impl MultipathdError {
    fn from_client(e: &ClientError) -> Self {
        let kind = match e {
            ClientError::Connect { .. } => MultipathdErrorKind::Unreachable,
            ClientError::Timeout { .. } | ClientError::DaemonTimeout { .. } => {
                MultipathdErrorKind::Timeout
            }
            ClientError::PermissionDenied { .. } => MultipathdErrorKind::PermissionDenied,
            _ => MultipathdErrorKind::Other,
        };
        MultipathdError {
            kind,
            message: error_chain(e),
        }
    }
}

/// What multipathd answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipathdFacts {
    /// The socket(s) asked, resolved (`/run/multipathd.socket, then @/org/...`).
    pub socket: String,
    /// `show daemon`'s reply.
    pub daemon: Result<String, MultipathdError>,
    /// `show config`'s reply (`None`: not asked, multipathd did not answer `show daemon`).
    pub config: Option<Result<String, String>>,
    /// How many maps multipathd has (`None`: not asked).
    pub maps: Option<Result<usize, String>>,
}

/// What `multipath -t` said about the configuration under the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParserFacts {
    /// It was not run (why).
    NotRun(String),
    /// It could not be run; `setup`: the private mount namespace could not be set up (not root).
    CannotRun {
        /// Whether the namespace setup failed.
        setup: bool,
        /// The error and its causes.
        error: String,
    },
    /// It ran.
    Ran(ParserOutput),
}

/// The drop-ins on disk against what mpcluster renders for the stored configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropinFacts {
    /// Not compared (why): `no-apply`, or no store to read the configuration from.
    NotChecked(String),
    /// The stored configuration could not be read or does not validate.
    ConfigUnreadable(String),
    /// Compared.
    Compared(DropinComparison),
}

/// One comparison of the generated files with the stored configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropinComparison {
    /// Whether the stored configuration is non-empty (mpcluster writes a baseline).
    pub configured: bool,
    /// The baseline and the overrides drop-in.
    pub files: Vec<DropinFile>,
    /// Allow-listed WWIDs the wwids file does not list.
    pub wwids_missing: Vec<String>,
}

/// One generated file: what mpcluster renders now, what the disk holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropinFile {
    /// The file (under the root).
    pub path: PathBuf,
    /// What mpcluster renders for it now (`None`: no such file).
    pub expected: Option<String>,
    /// What the disk holds (`Ok(None)`: no such file).
    pub actual: Result<Option<String>, String>,
}

/// What the cluster store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreFacts {
    /// The store could not be opened (why).
    Unavailable(String),
    /// What was read (each read on its own: one failing does not hide the others).
    Read(StoreRead),
}

/// What was read from the store: raw values, decoded by [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRead {
    /// The store, for messages.
    pub describe: String,
    /// Whether the store has no membership (embedded).
    pub standalone: bool,
    /// This node in the membership: `Some(online)` when listed.
    pub member: Result<Option<bool>, String>,
    /// This node's `multipath` value.
    pub broadcast: Result<Option<String>, String>,
    /// This node's `multipath-collect` value.
    pub collect: Result<Option<String>, String>,
    /// This node's `multipath-apply` value.
    pub apply: Result<Option<String>, String>,
    /// This node's `multipath-plan` value.
    pub plan: Result<Option<String>, String>,
    /// The other nodes' `multipath` values.
    pub peers: Result<BTreeMap<NodeName, String>, String>,
}

/// A server's clock: its `Date` header and when this node sent the request and got the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerClock {
    /// The server asked.
    pub url: String,
    /// Its reply, or why there was none.
    pub reply: Result<ServerDate, String>,
}

/// A `Date` header and this node's clock around the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDate {
    /// The header as sent (`Sun, 06 Nov 1994 08:49:37 GMT`).
    pub date: String,
    /// This node's clock when the request was sent (unix milliseconds).
    pub sent_ms: i64,
    /// This node's clock when the reply arrived (unix milliseconds).
    pub received_ms: i64,
}

/// The server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFacts {
    /// No `tls-cert` is configured.
    NotConfigured,
    /// The configured certificate.
    Cert {
        /// Its file.
        path: PathBuf,
        /// Its validity, or why it cannot be read.
        read: Result<CertValidity, String>,
    },
}

/// A certificate's subject and validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertValidity {
    /// The subject (`CN=...`).
    pub subject: String,
    /// notBefore (unix seconds).
    pub not_before: i64,
    /// notAfter (unix seconds).
    pub not_after: i64,
}

/// The agent's systemd unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceFacts {
    /// systemd could not be asked (why: no systemctl, not booted with systemd, ...).
    CannotAsk(String),
    /// `systemctl is-active`'s answer (`active`, `inactive`, `failed`, ...).
    State(String),
}

// ---- evaluation (pure) ------------------------------------------------------------------------

/// Every check's finding, in a fixed order (the ids in [`checks`]).
pub fn evaluate(facts: &Facts) -> Vec<Finding> {
    vec![
        check_tools(facts),
        check_multipathd(&facts.multipathd),
        check_parser(facts),
        check_dropins(facts),
        check_find_multipaths(facts),
        check_store(&facts.store),
        check_broadcast(facts),
        check_collect(facts),
        check_apply(facts),
        check_plan(facts),
        check_clock(facts),
        check_tls(facts),
        check_agent_service(&facts.agent_service),
    ]
}

/// Whether any finding is an [`Severity::Error`] (`mpcluster doctor` then exits 1).
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// One line for a finding: control characters (newlines from multi-line errors) become spaces.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control())
        .filter(|s| !s.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_tools(facts: &Facts) -> Finding {
    let id = checks::MULTIPATH_TOOLS;
    match &facts.tools.installed {
        None => Finding::error(
            id,
            format!(
                "multipath-tools is not installed (no {} or {} under {})",
                MULTIPATH_BINARIES[0],
                MULTIPATH_BINARIES[1],
                facts.root.display()
            ),
            Some(FIX_INSTALL.to_owned()),
        ),
        Some(path) => Finding::ok(
            id,
            match &facts.tools.version {
                Some(v) => format!("installed: {} ({v})", path.display()),
                None => format!("installed: {} (version unknown)", path.display()),
            },
        ),
    }
}

/// `show daemon`'s reply: `pid <n> <state>[ (pending reconfigure)]` → (pid, state, pending).
pub fn parse_show_daemon(reply: &str) -> Option<(u32, &str, bool)> {
    let line = reply.lines().next()?.trim();
    let rest = line.strip_prefix("pid ")?;
    let (pid, rest) = rest.split_once(' ')?;
    let pid = pid.parse().ok()?;
    let pending = rest.contains("(pending reconfigure)");
    let state = rest.split_whitespace().next()?;
    Some((pid, state, pending))
}

fn check_multipathd(m: &MultipathdFacts) -> Finding {
    let id = checks::MULTIPATHD;
    match &m.daemon {
        Err(e) => {
            let fix = match e.kind {
                MultipathdErrorKind::Unreachable => Some(FIX_START_MULTIPATHD.to_owned()),
                MultipathdErrorKind::Timeout => Some(FIX_RESTART_MULTIPATHD.to_owned()),
                MultipathdErrorKind::PermissionDenied => Some(FIX_AS_ROOT.to_owned()),
                MultipathdErrorKind::Other => Some(format!(
                    "{FIX_RESTART_MULTIPATHD}  # details: journalctl -u multipathd"
                )),
            };
            let what = match e.kind {
                MultipathdErrorKind::Unreachable => {
                    format!("multipathd is not running: {}", one_line(&e.message))
                }
                _ => one_line(&e.message),
            };
            Finding::error(id, what, fix)
        }
        Ok(reply) => match parse_show_daemon(reply) {
            Some((pid, state @ ("idle" | "running"), false)) => {
                Finding::ok(id, format!("running: pid {pid} {state} (at {})", m.socket))
            }
            Some((pid, "shutdown", _)) => Finding::error(
                id,
                format!("multipathd (pid {pid}) is shutting down"),
                Some(FIX_START_MULTIPATHD.to_owned()),
            ),
            Some((pid, state, pending)) => Finding::warning(
                id,
                format!(
                    "multipathd (pid {pid}) is busy: {state}{}; run mpcluster doctor again in a moment",
                    if pending { ", reconfigure pending" } else { "" }
                ),
                None,
            ),
            None => Finding::warning(
                id,
                format!(
                    "unexpected reply to `show daemon` at {}: {:?}",
                    m.socket,
                    reply.chars().take(80).collect::<String>()
                ),
                None,
            ),
        },
    }
}

fn check_parser(facts: &Facts) -> Finding {
    let id = checks::PARSER;
    let root = facts.root.display();
    match &facts.parser {
        ParserFacts::NotRun(why) => Finding::skipped(id, format!("multipath -t not run: {why}")),
        ParserFacts::CannotRun { setup: true, error } => Finding::warning(
            id,
            format!(
                "cannot have multipath -t read the configuration under {root}: {}",
                one_line(error)
            ),
            Some(FIX_AS_ROOT.to_owned()),
        ),
        ParserFacts::CannotRun { setup: false, error } => Finding::error(
            id,
            format!(
                "cannot have multipath -t read the configuration under {root}: {}",
                one_line(error)
            ),
            Some(FIX_INSTALL.to_owned()),
        ),
        ParserFacts::Ran(out) if out.has_complaints() => Finding::error(
            id,
            format!(
                "multipath -t complains about the configuration under {root}: {}",
                out.complaints_summary()
            ),
            Some(
                "multipath -t >/dev/null  # names each complaint; correct /etc/multipath.conf or the drop-in it names (mpcluster's overrides: mpcluster overrides get, then set FILE)"
                    .to_owned(),
            ),
        ),
        ParserFacts::Ran(out) => Finding::ok(
            id,
            match out.notices.len() {
                0 => format!("multipath -t reads the configuration under {root} without complaint"),
                n => format!(
                    "multipath -t reads the configuration under {root} without complaint ({n} deprecation notice{})",
                    if n == 1 { "" } else { "s" }
                ),
            },
        ),
    }
}

/// The file name of a path, for messages.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Whether the node's plan says an apply is waiting (loosely: `{"waiting": true, ...}`).
fn plan_waiting(facts: &Facts) -> Option<serde_json::Value> {
    let StoreFacts::Read(read) = &facts.store else {
        return None;
    };
    let Ok(Some(raw)) = &read.plan else {
        return None;
    };
    let value: serde_json::Value = serde_json::from_str(raw).ok()?;
    (value.get("waiting").and_then(serde_json::Value::as_bool) == Some(true)).then_some(value)
}

fn check_dropins(facts: &Facts) -> Finding {
    let id = checks::DROP_INS;
    let cmp = match &facts.dropins {
        DropinFacts::NotChecked(why) => return Finding::skipped(id, why.clone()),
        DropinFacts::ConfigUnreadable(e) => {
            return Finding::error(
                id,
                format!("cannot read the stored configuration: {}", one_line(e)),
                Some("mpcluster config show  # then set the configuration again".to_owned()),
            );
        }
        DropinFacts::Compared(cmp) => cmp,
    };
    let mut problems = Vec::new();
    for file in &cmp.files {
        let name = file_name(&file.path);
        match (&file.expected, &file.actual) {
            (_, Err(e)) => problems.push(format!("cannot read {name}: {}", one_line(e))),
            (Some(_), Ok(None)) => problems.push(format!("{name} is missing")),
            (None, Ok(Some(_))) => problems.push(format!(
                "{name} is left over (the stored configuration has none)"
            )),
            (Some(want), Ok(Some(have))) if want != have => problems.push(format!(
                "{name} differs from what mpcluster renders for the stored configuration"
            )),
            _ => {}
        }
    }
    if !cmp.wwids_missing.is_empty() {
        let n = cmp.wwids_missing.len();
        let first = &cmp.wwids_missing[0];
        problems.push(if n == 1 {
            format!("the wwids file lacks the allow-listed {first}")
        } else {
            format!(
                "the wwids file lacks {n} allow-listed WWIDs ({first}, and {} more)",
                n - 1
            )
        });
    }
    if problems.is_empty() {
        return Finding::ok(
            id,
            if cmp.configured {
                "the drop-ins and the wwids file are what mpcluster renders for the stored configuration".to_owned()
            } else {
                "no cluster configuration yet: mpcluster writes no drop-ins (and there are none)"
                    .to_owned()
            },
        );
    }
    let what = format!(
        "the stored configuration is not applied under {}: {}",
        facts.root.display(),
        problems.join("; ")
    );
    if plan_waiting(facts).is_some() {
        return Finding::warning(
            id,
            format!("{what} (held: an apply is waiting, see `plan`)"),
            None,
        );
    }
    Finding::error(
        id,
        what,
        Some(format!(
            "{}  # the agent applies the stored configuration when it starts",
            fix_restart_agent()
        )),
    )
}

/// The `defaults` section of `multipathd show config` (or `multipath -t`) as keyword → value
/// (quotes removed, first occurrence kept).
pub fn show_config_defaults(config: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut depth = 0usize;
    let mut in_defaults = false;
    for line in config.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "}" {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                in_defaults = false;
            }
            continue;
        }
        if let Some(head) = line.strip_suffix('{') {
            if depth == 0 && head.trim() == "defaults" {
                in_defaults = true;
            }
            depth += 1;
            continue;
        }
        if in_defaults && depth == 1 {
            let (keyword, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map_or_else(|| value.to_owned(), |v| v.replace("\"\"", "\""));
            out.entry(keyword.to_owned()).or_insert(value);
        }
    }
    out
}

/// multipathd prints some values in another spelling than multipath.conf takes them
/// (`find_multipaths no` shows as `off`, `yes` as `on`).
fn same_value(keyword: &str, shown: &str, wanted: &str) -> bool {
    let normal = |v: &str| match (keyword, v) {
        ("find_multipaths", "off") => "no".to_owned(),
        ("find_multipaths", "on") => "yes".to_owned(),
        (_, v) => v.to_owned(),
    };
    normal(shown) == normal(wanted)
}

fn check_find_multipaths(facts: &Facts) -> Finding {
    let id = checks::FIND_MULTIPATHS;
    if !facts.applies {
        return Finding::skipped(
            id,
            "this node runs with no-apply: mpcluster sets no multipath defaults here",
        );
    }
    let Some(config) = &facts.multipathd.config else {
        return Finding::skipped(
            id,
            "multipathd did not answer: its configuration in force is unknown",
        );
    };
    let text = match config {
        Ok(t) => t,
        Err(e) => {
            return Finding::warning(
                id,
                format!(
                    "cannot read multipathd's configuration (show config): {}",
                    one_line(e)
                ),
                None,
            );
        }
    };
    let defaults = show_config_defaults(text);
    let shown = |k: &str| defaults.get(k).map_or("(not shown)", String::as_str);
    let configured = match &facts.dropins {
        DropinFacts::Compared(c) => Some(c.configured),
        _ => None,
    };
    if configured == Some(false) {
        return Finding::ok(
            id,
            format!(
                "no cluster configuration yet, so mpcluster sets nothing; in force: find_multipaths {}",
                shown("find_multipaths")
            ),
        );
    }
    let wrong: Vec<String> = FIXED_DEFAULTS
        .iter()
        .filter(|(k, want)| !defaults.get(*k).is_some_and(|v| same_value(k, v, want)))
        .map(|(k, want)| format!("{k} {:?} (mpcluster sets {want:?})", shown(k)))
        .collect();
    if wrong.is_empty() {
        let in_force: Vec<String> = FIXED_DEFAULTS
            .iter()
            .map(|(k, _)| format!("{k} {}", shown(k)))
            .collect();
        return Finding::ok(
            id,
            format!("in force in multipathd: {}", in_force.join(", ")),
        );
    }
    let on_disk_ok = matches!(&facts.dropins, DropinFacts::Compared(_))
        && check_dropins(facts).severity == Severity::Ok;
    let fix = if on_disk_ok {
        format!(
            "{FIX_RECONFIGURE}  # if it persists, a later file overrides mpcluster's baseline: grep -r find_multipaths /etc/multipath.conf /etc/multipath/conf.d"
        )
    } else {
        fix_restart_agent()
    };
    Finding::error(
        id,
        format!("multipathd runs with {}", wrong.join(", ")),
        Some(fix),
    )
}

fn check_store(store: &StoreFacts) -> Finding {
    let id = checks::STORE;
    match store {
        StoreFacts::Unavailable(e) => Finding::error(
            id,
            format!("cannot open the cluster store: {}", one_line(e)),
            Some(FIX_STORE.to_owned()),
        ),
        StoreFacts::Read(read) => {
            let errors: Vec<&String> = [
                read.member.as_ref().err(),
                read.broadcast.as_ref().err(),
                read.collect.as_ref().err(),
                read.apply.as_ref().err(),
                read.plan.as_ref().err(),
                read.peers.as_ref().err(),
            ]
            .into_iter()
            .flatten()
            .collect();
            match errors.first() {
                Some(e) => Finding::error(
                    id,
                    format!("cannot read the {}: {}", read.describe, one_line(e)),
                    Some(FIX_STORE.to_owned()),
                ),
                None => Finding::ok(id, format!("{} answers", read.describe)),
            }
        }
    }
}

/// A duration in seconds for people (`42 s`, `5 min`, `3 h`, `2 days`).
fn human_secs(secs: i64) -> String {
    let s = secs.unsigned_abs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

fn check_broadcast(facts: &Facts) -> Finding {
    let id = checks::BROADCAST;
    let node = &facts.node;
    let StoreFacts::Read(read) = &facts.store else {
        return Finding::skipped(id, "the cluster store cannot be read");
    };
    let member_problem = match &read.member {
        _ if read.standalone => None,
        Ok(Some(true)) => None,
        Ok(Some(false)) => Some(format!(
            "{node} is an offline member of the {}",
            read.describe
        )),
        Ok(None) => Some(format!("{node} is not a member of the {}", read.describe)),
        Err(_) => None, // the store finding says so
    };
    let Ok(raw) = &read.broadcast else {
        return Finding::skipped(id, "the broadcast cannot be read (see `store`)");
    };
    let fix_restart = Some(fix_restart_agent());
    let Some(raw) = raw else {
        let maps = facts
            .multipathd
            .maps
            .as_ref()
            .and_then(|m| m.as_ref().ok())
            .copied();
        return match (maps, member_problem) {
            (_, Some(p)) => Finding::error(
                id,
                format!("{p}, and the store holds no broadcast from it: is its agent running?"),
                Some(fix_start_agent()),
            ),
            (Some(0), None) => Finding::ok(
                id,
                format!(
                    "no broadcast from {node}: multipathd has no map, and an agent publishes only while there are maps"
                ),
            ),
            (Some(n), None) => Finding::error(
                id,
                format!(
                    "the store holds no broadcast from {node} although multipathd has {n} map{}: is its agent running?",
                    if n == 1 { "" } else { "s" }
                ),
                Some(fix_start_agent()),
            ),
            (None, None) => Finding::error(
                id,
                format!("the store holds no broadcast from {node}: is its agent running?"),
                Some(fix_start_agent()),
            ),
        };
    };
    let decoded = match mpcluster_core::broadcast::decode(raw) {
        Ok(d) => d,
        Err(e) => {
            return Finding::error(
                id,
                format!("{node}'s broadcast in the store is unreadable: {e}"),
                fix_restart,
            );
        }
    };
    let Some(time) = decoded.broadcast.time else {
        return Finding::error(
            id,
            format!("{node}'s broadcast in the store has no time: the status reads it stale"),
            fix_restart,
        );
    };
    let age = facts.now - time;
    let limit = i64::try_from(facts.stale_after).unwrap_or(i64::MAX);
    if age < -mpcluster_core::status::CLOCK_AHEAD_TOLERANCE {
        return Finding::error(
            id,
            format!(
                "{node}'s broadcast is dated {} ahead of this clock: the status does not trust it (was this clock set back?)",
                human_secs(-age)
            ),
            Some(FIX_CLOCK.to_owned()),
        );
    }
    if age > limit {
        return Finding::error(
            id,
            format!(
                "{node}'s last broadcast is {} old (limit {limit} s): the status shows the node offline",
                human_secs(age)
            ),
            fix_restart,
        );
    }
    if let Some(p) = member_problem {
        return Finding::error(id, format!("{p}: the status shows it offline"), fix_restart);
    }
    let maps = decoded.broadcast.maps.len();
    Finding::ok(
        id,
        format!(
            "{node}'s broadcast is {} old, {maps} map{}",
            human_secs(age.max(0)),
            if maps == 1 { "" } else { "s" }
        ),
    )
}

/// The `error` of a `{"error", "time"}` value: `Ok(None)` when absent or empty.
fn node_error(raw: Option<&String>) -> Result<Option<(String, Option<i64>)>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| format!("not JSON: {e}"))?;
    let time = mpcluster_core::broadcast::unix_time(value.get("time"));
    match value.get("error").and_then(serde_json::Value::as_str) {
        Some(e) if !e.is_empty() => Ok(Some((e.to_owned(), time))),
        Some(_) => Ok(None),
        None => Err("no \"error\" text".to_owned()),
    }
}

fn since(facts: &Facts, time: Option<i64>) -> String {
    time.map(|t| format!(" ({} ago)", human_secs((facts.now - t).max(0))))
        .unwrap_or_default()
}

fn check_collect(facts: &Facts) -> Finding {
    let id = checks::COLLECT;
    let StoreFacts::Read(read) = &facts.store else {
        return Finding::skipped(id, "the cluster store cannot be read");
    };
    let Ok(raw) = &read.collect else {
        return Finding::skipped(id, "the collection error cannot be read (see `store`)");
    };
    match node_error(raw.as_ref()) {
        Ok(None) => Finding::ok(id, "the agent's last collection worked"),
        Ok(Some((e, time))) => Finding::error(
            id,
            format!(
                "the agent cannot collect from multipathd{}: {}",
                since(facts, time),
                one_line(&e)
            ),
            Some(format!(
                "{FIX_RESTART_MULTIPATHD}  # the agent retries every interval; details: journalctl -u {AGENT_UNIT}"
            )),
        ),
        Err(e) => Finding::warning(
            id,
            format!(
                "{}'s collection error in the store is unreadable: {e}",
                facts.node
            ),
            None,
        ),
    }
}

fn check_apply(facts: &Facts) -> Finding {
    let id = checks::APPLY;
    let StoreFacts::Read(read) = &facts.store else {
        return Finding::skipped(id, "the cluster store cannot be read");
    };
    let Ok(raw) = &read.apply else {
        return Finding::skipped(id, "the apply error cannot be read (see `store`)");
    };
    match node_error(raw.as_ref()) {
        Ok(None) if !facts.applies => Finding::skipped(
            id,
            "this node runs with no-apply: the agent applies no configuration",
        ),
        Ok(None) => Finding::ok(id, "no apply error"),
        Ok(Some((e, time))) => Finding::error(
            id,
            format!(
                "the last configuration apply failed{}: {}",
                since(facts, time),
                one_line(&e)
            ),
            Some(format!(
                "{}  # retries the apply; details: journalctl -u {AGENT_UNIT}; the configuration: mpcluster config show, mpcluster overrides get",
                fix_restart_agent()
            )),
        ),
        Err(e) => Finding::warning(
            id,
            format!(
                "{}'s apply error in the store is unreadable: {e}",
                facts.node
            ),
            None,
        ),
    }
}

fn check_plan(facts: &Facts) -> Finding {
    let id = checks::PLAN;
    let StoreFacts::Read(read) = &facts.store else {
        return Finding::skipped(id, "the cluster store cannot be read");
    };
    let raw = match &read.plan {
        Err(_) => return Finding::skipped(id, "the apply plan cannot be read (see `store`)"),
        Ok(None) => return Finding::ok(id, "no apply waiting"),
        Ok(Some(raw)) => raw,
    };
    if serde_json::from_str::<serde_json::Value>(raw).is_err() {
        return Finding::warning(
            id,
            format!("{}'s apply plan in the store is not JSON", facts.node),
            None,
        );
    }
    match plan_waiting(facts) {
        None => Finding::ok(id, "no apply waiting"),
        Some(plan) => {
            let summary = plan
                .get("summary")
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| "apply waiting for acceptance".to_owned(), one_line);
            Finding::error(
                id,
                summary,
                Some(format!("mpcluster config accept --node {}", facts.node)),
            )
        }
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Unix seconds as `2027-03-01 12:00 UTC`.
pub fn format_utc(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// An HTTP `Date` header (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`, what every current
/// server sends) as unix seconds; `None` for anything else.
pub fn parse_http_date(date: &str) -> Option<i64> {
    let parts: Vec<&str> = date.split_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)?;
    let month = i64::try_from(month).ok()? + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, s] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day)
        || !(0..24).contains(h)
        || !(0..60).contains(mi)
        || !(0..=60).contains(s)
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s)
}

/// A server's clock minus this one's, in milliseconds, and how uncertain that is: the header
/// has whole seconds (the server's time is within the second it names) and the reply came
/// some time between sending and receiving.
pub fn server_offset_ms(date: &ServerDate) -> Option<(i64, i64)> {
    let server_ms = parse_http_date(&date.date)? * 1000 + 500;
    let rtt = (date.received_ms - date.sent_ms).max(0);
    let mid = date.sent_ms + rtt / 2;
    Some((server_ms - mid, rtt / 2 + 500))
}

fn check_clock(facts: &Facts) -> Finding {
    let id = checks::CLOCK;
    let tolerance_ms = CLOCK_TOLERANCE * 1000;
    let mut fine = Vec::new();
    let mut notes = Vec::new();
    // (1) a server's Date header: both directions.
    if let Some(server) = &facts.server_clock {
        match &server.reply {
            Err(e) => notes.push(format!(
                "cannot ask {} for its time: {}",
                server.url,
                one_line(e)
            )),
            Ok(date) => match server_offset_ms(date) {
                None => notes.push(format!(
                    "{}'s Date header {:?} is not an HTTP date",
                    server.url, date.date
                )),
                Some((offset, uncertainty)) if offset.abs() - uncertainty > tolerance_ms => {
                    let secs = (offset.abs() - uncertainty) / 1000;
                    let direction = if offset > 0 { "behind" } else { "ahead of" };
                    return Finding::error(
                        id,
                        format!(
                            "this node's clock is at least {} {direction} {}'s (its Date header; tolerance {CLOCK_TOLERANCE} s)",
                            human_secs(secs),
                            server.url
                        ),
                        Some(FIX_CLOCK.to_owned()),
                    );
                }
                Some((offset, uncertainty)) => fine.push(format!(
                    "within {CLOCK_TOLERANCE} s of {}'s (offset {:+.1} s ± {:.1} s)",
                    server.url,
                    offset as f64 / 1000.0,
                    uncertainty as f64 / 1000.0
                )),
            },
        }
    }
    // (2) the other nodes' newest broadcasts: only "this clock is behind" can be told.
    if let StoreFacts::Read(read) = &facts.store
        && let Ok(peers) = &read.peers
    {
        let leads: Vec<(&NodeName, i64)> = peers
            .iter()
            .filter_map(|(node, raw)| {
                let time = mpcluster_core::broadcast::decode(raw)
                    .ok()?
                    .broadcast
                    .time?;
                Some((node, time - facts.now))
            })
            .collect();
        if let Some(&(_, least)) = leads.iter().min_by_key(|(_, lead)| *lead) {
            if least > CLOCK_TOLERANCE {
                return Finding::error(
                    id,
                    format!(
                        "every other node's newest broadcast ({} node{}) is dated at least {} ahead of this clock: this node's clock is behind",
                        leads.len(),
                        if leads.len() == 1 { "" } else { "s" },
                        human_secs(least)
                    ),
                    Some(FIX_CLOCK.to_owned()),
                );
            }
            fine.push(format!(
                "not behind the other nodes' ({} broadcast{} not all dated ahead)",
                leads.len(),
                if leads.len() == 1 { "" } else { "s" }
            ));
        }
    }
    match (fine.is_empty(), notes.is_empty()) {
        (false, true) => Finding::ok(id, format!("this node's clock is {}", fine.join("; "))),
        (false, false) => Finding::warning(
            id,
            format!(
                "this node's clock is {}; {}",
                fine.join("; "),
                notes.join("; ")
            ),
            None,
        ),
        (true, false) => Finding::warning(id, notes.join("; "), None),
        (true, true) => Finding::skipped(
            id,
            "no other clock to compare with: no other node's broadcast in the store, and no --server URL",
        ),
    }
}

fn check_tls(facts: &Facts) -> Finding {
    let id = checks::TLS;
    let (path, read) = match &facts.tls {
        TlsFacts::NotConfigured => {
            return Finding::skipped(
                id,
                "no tls-cert configured (the server here, if any, serves plain HTTP)",
            );
        }
        TlsFacts::Cert { path, read } => (path, read),
    };
    let fix = Some(format!(
        "systemctl reload {SERVER_UNIT}  # after putting a valid certificate and its key at {}",
        path.display()
    ));
    let cert = match read {
        Err(e) => {
            return Finding::error(
                id,
                format!(
                    "cannot read the server certificate {}: {}",
                    path.display(),
                    one_line(e)
                ),
                fix,
            );
        }
        Ok(c) => c,
    };
    let left = cert.not_after - facts.now;
    if left < 0 {
        return Finding::error(
            id,
            format!(
                "the server certificate {} ({}) expired on {}",
                path.display(),
                cert.subject,
                format_utc(cert.not_after)
            ),
            fix,
        );
    }
    if cert.not_before > facts.now {
        return Finding::error(
            id,
            format!(
                "the server certificate {} ({}) is not valid before {} (is this clock right?)",
                path.display(),
                cert.subject,
                format_utc(cert.not_before)
            ),
            fix,
        );
    }
    if left < TLS_WARN_DAYS * 86_400 {
        return Finding::warning(
            id,
            format!(
                "the server certificate {} ({}) expires on {}, in {}",
                path.display(),
                cert.subject,
                format_utc(cert.not_after),
                human_secs(left)
            ),
            fix,
        );
    }
    Finding::ok(
        id,
        format!(
            "the server certificate {} is valid until {} ({} days)",
            path.display(),
            format_utc(cert.not_after),
            left / 86_400
        ),
    )
}

fn check_agent_service(service: &ServiceFacts) -> Finding {
    let id = checks::AGENT_SERVICE;
    match service {
        ServiceFacts::CannotAsk(why) => Finding::skipped(
            id,
            format!("cannot ask systemd about {AGENT_UNIT}: {}", one_line(why)),
        ),
        ServiceFacts::State(state) => match state.as_str() {
            "active" => Finding::ok(id, format!("{AGENT_UNIT} is active")),
            "failed" => Finding::error(
                id,
                format!("{AGENT_UNIT} is failed"),
                Some(format!(
                    "{}  # why it failed: journalctl -u {AGENT_UNIT}",
                    fix_restart_agent()
                )),
            ),
            "inactive" => Finding::error(
                id,
                format!("{AGENT_UNIT} is inactive: this node's health is not published"),
                Some(fix_start_agent()),
            ),
            other => Finding::warning(
                id,
                format!("{AGENT_UNIT} is {other}"),
                Some(format!("systemctl status {AGENT_UNIT}")),
            ),
        },
    }
}

// ---- gathering (I/O) --------------------------------------------------------------------------

/// What [`gather`] looks at.
#[derive(Debug, Clone)]
pub struct DoctorConfig {
    /// This node.
    pub node: NodeName,
    /// The root the agent applies under.
    pub root: PathBuf,
    /// Whether the agent applies the cluster configuration (not `no-apply`).
    pub applies: bool,
    /// The staleness limit of broadcasts, in seconds.
    pub stale_after: u64,
    /// The server certificate to check, if one is configured.
    pub tls_cert: Option<PathBuf>,
    /// The `systemctl` program (looked up in `PATH` when relative).
    pub systemctl: PathBuf,
    /// How `multipath -t` is run ([`ParserCheck::for_root`] of the root).
    pub parser_check: ParserCheck,
}

impl DoctorConfig {
    /// The checks of `node` under `root`: the installed `multipath -t`, `systemctl` from `PATH`,
    /// the default staleness limit, no certificate.
    pub fn new(node: NodeName, root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        DoctorConfig {
            node,
            parser_check: ParserCheck::for_root(&root),
            root,
            applies: true,
            stale_after: mpcluster_core::snapshot::DEFAULT_STALE_AFTER,
            tls_cert: None,
            systemctl: PathBuf::from("systemctl"),
        }
    }
}

/// Gather the facts: everything is asked concurrently, and every failure becomes a fact (never
/// an error of its own). `store` is the opened store, or why it could not be opened. The
/// server's clock is left to the caller ([`Facts::server_clock`]).
pub async fn gather(
    config: &DoctorConfig,
    client: &MultipathdClient,
    store: Result<&dyn ClusterStore, String>,
) -> Facts {
    let now = unix_now();
    let store_ref = store.as_ref().ok().copied();
    let (tools, multipathd, parser, dropins, store_facts, tls, agent_service) = tokio::join!(
        find_tools(&config.root),
        ask_multipathd(client),
        run_parser(&config.parser_check, &config.root),
        compare_dropins(&config.root, store_ref, config.applies),
        read_store(store_ref, &config.node),
        read_tls(config.tls_cert.as_deref()),
        ask_systemd(&config.systemctl),
    );
    let store = match (store, store_facts) {
        (Err(e), _) => StoreFacts::Unavailable(e),
        (Ok(_), Some(read)) => StoreFacts::Read(read),
        (Ok(_), None) => StoreFacts::Unavailable("not read".to_owned()),
    };
    Facts {
        node: config.node.clone(),
        now,
        root: config.root.clone(),
        applies: config.applies,
        stale_after: config.stale_after,
        tools,
        multipathd,
        parser,
        dropins,
        store,
        server_clock: None,
        tls,
        agent_service,
    }
}

/// Run blocking file work on Tokio's blocking pool (a panic in it becomes its error text).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("the file task failed: {e}"))?
}

/// Run `program args` with `LC_ALL=C`, no stdin, under a timeout: (success, stdout, stderr).
async fn run_program(
    program: &Path,
    args: &[&str],
) -> Result<(bool, String, String), std::io::Error> {
    let child = tokio::process::Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let out = tokio::time::timeout(PROGRAM_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("did not finish within {PROGRAM_TIMEOUT:?}"),
            )
        })??;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The `multipath-tools v...` line of `multipath -h`'s output (0.9.4 prints it first, on
/// stderr; older releases on stdout).
pub fn version_line(output: &str) -> Option<&str> {
    output
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("multipath-tools v"))
}

async fn find_tools(root: &Path) -> ToolsFacts {
    let candidates: Vec<PathBuf> = MULTIPATH_BINARIES.iter().map(|b| root.join(b)).collect();
    let installed = blocking(move || Ok(candidates.into_iter().find(|p| p.exists())))
        .await
        .ok()
        .flatten();
    let version = match &installed {
        Some(path) => run_program(path, &["-h"])
            .await
            .ok()
            .and_then(|(_, stdout, stderr)| {
                version_line(&format!("{stderr}\n{stdout}")).map(str::to_owned)
            }),
        None => None,
    };
    ToolsFacts { installed, version }
}

async fn ask_multipathd(client: &MultipathdClient) -> MultipathdFacts {
    // The socket(s) tried, resolved (`default` is /run/multipathd.socket when it exists,
    // then the abstract one).
    let socket = client
        .socket()
        .candidates()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", then ");
    let daemon = client
        .command("show daemon")
        .await
        .map(Reply::into_text)
        .map_err(|e| MultipathdError::from_client(&e));
    if daemon.is_err() {
        return MultipathdFacts {
            socket,
            daemon,
            config: None,
            maps: None,
        };
    }
    let (config, maps) = tokio::join!(client.command("show config"), client.show_maps_raw("%w"));
    MultipathdFacts {
        socket,
        daemon,
        config: Some(config.map(Reply::into_text).map_err(|e| error_chain(&e))),
        maps: Some(
            maps.map(|text| text.lines().filter(|l| !l.trim().is_empty()).count())
                .map_err(|e| error_chain(&e)),
        ),
    }
}

async fn run_parser(check: &ParserCheck, root: &Path) -> ParserFacts {
    match check.run(root).await {
        Ok(out) => ParserFacts::Ran(out),
        Err(e @ ParserCheckError::NotInstalled { .. }) => ParserFacts::NotRun(error_chain(&e)),
        Err(e @ ParserCheckError::Setup { .. }) => ParserFacts::CannotRun {
            setup: true,
            error: error_chain(&e),
        },
        Err(e) => ParserFacts::CannotRun {
            setup: false,
            error: error_chain(&e),
        },
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

async fn compare_dropins(
    root: &Path,
    store: Option<&dyn ClusterStore>,
    applies: bool,
) -> DropinFacts {
    if !applies {
        return DropinFacts::NotChecked(
            "this node runs with no-apply: mpcluster writes no drop-ins here".to_owned(),
        );
    }
    let Some(store) = store else {
        return DropinFacts::NotChecked(
            "the stored configuration cannot be read (see `store`)".to_owned(),
        );
    };
    let node_config = match read_node_config(store).await {
        Ok(c) => c,
        Err(e) => return DropinFacts::ConfigUnreadable(error_chain(&e)),
    };
    let root = root.to_path_buf();
    let compared = blocking(move || {
        // The baseline keeps the wwids-file entries mpcluster did not add, exactly as the
        // apply renders it: `foreign_entries`, the one rule both use.
        let wwids = read_optional(&root.join(WWIDS_PATH))?.unwrap_or_default();
        let ours: BTreeSet<Wwid> = read_optional(&root.join(STATE_PATH))?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let wanted = node_config.config.allow_list();
        let listed = listed_wwids(&wwids);
        let foreign = foreign_entries(&wwids, &wanted, &ours);
        let baseline =
            render_baseline_keeping(&node_config.config, &foreign).map_err(|e| error_chain(&e))?;
        let overrides = render_overrides(&node_config.overrides);
        let files = [(BASELINE_PATH, baseline), (OVERRIDES_PATH, overrides)]
            .into_iter()
            .map(|(rel, expected)| {
                let path = root.join(rel);
                DropinFile {
                    actual: read_optional(&path),
                    path,
                    expected,
                }
            })
            .collect();
        let wwids_missing = wanted
            .iter()
            .filter(|w| !listed.contains(w.as_str()))
            .map(|w| w.as_str().to_owned())
            .collect();
        Ok(DropinComparison {
            configured: !node_config.config.is_empty(),
            files,
            wwids_missing,
        })
    })
    .await;
    match compared {
        Ok(c) => DropinFacts::Compared(c),
        Err(e) => DropinFacts::ConfigUnreadable(e),
    }
}

async fn read_store(store: Option<&dyn ClusterStore>, node: &NodeName) -> Option<StoreRead> {
    let store = store?;
    let get =
        |key: &'static str| async move { store.get(key, node).await.map_err(|e| error_chain(&e)) };
    let (member, broadcast, collect, apply, plan, peers) = tokio::join!(
        store.members(),
        get(kv_keys::HEALTH),
        get(kv_keys::COLLECT),
        get(kv_keys::APPLY),
        get(kv_keys::PLAN),
        store.get_all(kv_keys::HEALTH),
    );
    Some(StoreRead {
        describe: store.describe(),
        standalone: store.is_standalone(),
        member: member
            .map(|m| m.get(node).map(|m| m.online))
            .map_err(|e| error_chain(&e)),
        broadcast,
        collect,
        apply,
        plan,
        peers: peers
            .map(|mut all| {
                all.remove(node);
                all
            })
            .map_err(|e| error_chain(&e)),
    })
}

/// The subject and validity of the first certificate in a PEM file (the server certificate
/// of a chain).
pub fn read_cert_validity(pem: &[u8]) -> Result<CertValidity, String> {
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| format!("not PEM: {e}"))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let cert = block
            .parse_x509()
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let validity = cert.validity();
        return Ok(CertValidity {
            subject: cert.subject().to_string(),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
        });
    }
    Err("no CERTIFICATE block in the file".to_owned())
}

async fn read_tls(path: Option<&Path>) -> TlsFacts {
    let Some(path) = path else {
        return TlsFacts::NotConfigured;
    };
    let file = path.to_path_buf();
    let read = blocking(move || {
        let pem = std::fs::read(&file).map_err(|e| e.to_string())?;
        read_cert_validity(&pem)
    })
    .await;
    TlsFacts::Cert {
        path: path.to_path_buf(),
        read,
    }
}

async fn ask_systemd(systemctl: &Path) -> ServiceFacts {
    match run_program(systemctl, &["is-active", AGENT_UNIT]).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ServiceFacts::CannotAsk(format!("{} not found", systemctl.display()))
        }
        Err(e) => ServiceFacts::CannotAsk(format!("{}: {e}", systemctl.display())),
        Ok((_, stdout, stderr)) => match stdout.split_whitespace().next() {
            Some(state) => ServiceFacts::State(state.to_owned()),
            None => ServiceFacts::CannotAsk(
                stderr
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("systemctl printed nothing")
                    .to_owned(),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const NOW: i64 = 1_767_225_600; // 2026-01-01 00:00 UTC
    const W1: &str = "3600a098038303053453f463045727a01";

    fn node() -> NodeName {
        NodeName::new("pve1").unwrap()
    }

    const SHOW_CONFIG: &str = "defaults {\n\tverbosity 2\n\tuser_friendly_names \"no\"\n\tfind_multipaths \"strict\"\n\tfind_multipaths_timeout -10\n}\nblacklist {\n\twwid \".*\"\n\tdevice {\n\t\tvendor \"X\"\n\t\tfind_multipaths \"greedy\"\n\t}\n}\ndevices {\n\tdevice {\n\t\tvendor \"NETAPP\"\n\t\tuser_friendly_names \"yes\"\n\t}\n}\n";

    fn broadcast(time: i64) -> String {
        format!(
            r#"{{"time": {time}, "maps": {{"{W1}": {{"state": "optimal", "paths-active": 2, "paths-total": 2}}}}}}"#
        )
    }

    /// A node where every check passes.
    fn healthy() -> Facts {
        Facts {
            node: node(),
            now: NOW,
            root: PathBuf::from("/"),
            applies: true,
            stale_after: 180,
            tools: ToolsFacts {
                installed: Some(PathBuf::from("/usr/sbin/multipath")),
                version: Some("multipath-tools v0.9.4 (12/19, 2022)".to_owned()),
            },
            multipathd: MultipathdFacts {
                socket: "@/org/kernel/linux/storage/multipathd".to_owned(),
                daemon: Ok("pid 569 idle\n".to_owned()),
                config: Some(Ok(SHOW_CONFIG.to_owned())),
                maps: Some(Ok(1)),
            },
            parser: ParserFacts::Ran(ParserOutput::default()),
            dropins: DropinFacts::Compared(DropinComparison {
                configured: true,
                files: vec![
                    DropinFile {
                        path: PathBuf::from("/").join(BASELINE_PATH),
                        expected: Some("baseline\n".to_owned()),
                        actual: Ok(Some("baseline\n".to_owned())),
                    },
                    DropinFile {
                        path: PathBuf::from("/").join(OVERRIDES_PATH),
                        expected: None,
                        actual: Ok(None),
                    },
                ],
                wwids_missing: vec![],
            }),
            store: StoreFacts::Read(StoreRead {
                describe: "embedded store /var/lib/mpcluster".to_owned(),
                standalone: true,
                member: Ok(None),
                broadcast: Ok(Some(broadcast(NOW - 20))),
                collect: Ok(None),
                apply: Ok(None),
                plan: Ok(None),
                peers: Ok(BTreeMap::new()),
            }),
            server_clock: None,
            tls: TlsFacts::NotConfigured,
            agent_service: ServiceFacts::State("active".to_owned()),
        }
    }

    fn finding(facts: &Facts, check: &str) -> Finding {
        evaluate(facts)
            .into_iter()
            .find(|f| f.check == check)
            .unwrap()
    }

    fn read(facts: &mut Facts) -> &mut StoreRead {
        match &mut facts.store {
            StoreFacts::Read(r) => r,
            StoreFacts::Unavailable(_) => panic!("no store"),
        }
    }

    fn cmp(facts: &mut Facts) -> &mut DropinComparison {
        match &mut facts.dropins {
            DropinFacts::Compared(c) => c,
            _ => panic!("not compared"),
        }
    }

    #[track_caller]
    fn assert_finding(f: &Finding, severity: Severity, what: &str, fix: Option<&str>) {
        assert_eq!(f.severity, severity, "{f:?}");
        assert!(f.what.contains(what), "{:?} lacks {what:?}", f.what);
        match fix {
            Some(fix) => assert!(
                f.fix.as_deref().is_some_and(|x| x.contains(fix)),
                "{f:?}: fix lacks {fix:?}"
            ),
            None => assert_eq!(f.fix, None, "{f:?}"),
        }
    }

    #[test]
    fn a_healthy_node_has_every_check_in_order_and_no_error() {
        let findings = evaluate(&healthy());
        let ids: Vec<&str> = findings.iter().map(|f| f.check).collect();
        assert_eq!(
            ids,
            [
                checks::MULTIPATH_TOOLS,
                checks::MULTIPATHD,
                checks::PARSER,
                checks::DROP_INS,
                checks::FIND_MULTIPATHS,
                checks::STORE,
                checks::BROADCAST,
                checks::COLLECT,
                checks::APPLY,
                checks::PLAN,
                checks::CLOCK,
                checks::TLS,
                checks::AGENT_SERVICE,
            ]
        );
        for f in &findings {
            assert!(
                matches!(f.severity, Severity::Ok | Severity::Skipped),
                "{f:?}"
            );
            assert_eq!(f.fix, None, "{f:?}");
        }
        assert!(!has_errors(&findings));
        // Without a server and without peers, the clock cannot be compared: said so.
        assert_finding(
            &finding(&healthy(), checks::CLOCK),
            Severity::Skipped,
            "no other clock to compare with",
            None,
        );
    }

    #[test]
    fn multipath_tools() {
        let f = finding(&healthy(), checks::MULTIPATH_TOOLS);
        assert_finding(
            &f,
            Severity::Ok,
            "installed: /usr/sbin/multipath (multipath-tools v0.9.4",
            None,
        );
        let mut facts = healthy();
        facts.tools = ToolsFacts::default();
        facts.root = PathBuf::from("/srv/root");
        let f = finding(&facts, checks::MULTIPATH_TOOLS);
        assert_finding(
            &f,
            Severity::Error,
            "not installed (no usr/sbin/multipath or sbin/multipath under /srv/root)",
            Some("apt install multipath-tools"),
        );
        assert!(has_errors(&evaluate(&facts)));
    }

    #[test]
    fn version_lines() {
        assert_eq!(
            version_line("multipath-tools v0.9.4 (12/19, 2022)\nUsage:\n"),
            Some("multipath-tools v0.9.4 (12/19, 2022)")
        );
        assert_eq!(version_line("\nUsage:\n  multipath [-v level]\n"), None);
    }

    #[test]
    fn show_daemon_replies() {
        assert_eq!(
            parse_show_daemon("pid 569 idle\n"),
            Some((569, "idle", false))
        );
        assert_eq!(
            parse_show_daemon("pid 7 configure (pending reconfigure)\n"),
            Some((7, "configure", true))
        );
        assert_eq!(parse_show_daemon("ok\n"), None);
        assert_eq!(parse_show_daemon("pid x idle"), None);
    }

    #[test]
    fn multipathd() {
        assert_finding(
            &finding(&healthy(), checks::MULTIPATHD),
            Severity::Ok,
            "running: pid 569 idle (at @/org/kernel/linux/storage/multipathd)",
            None,
        );
        let with = |daemon: Result<String, MultipathdError>| {
            let mut facts = healthy();
            facts.multipathd.daemon = daemon;
            finding(&facts, checks::MULTIPATHD)
        };
        let err = |kind| {
            Err(MultipathdError {
                kind,
                message: "cannot connect to multipathd at @/org/kernel/linux/storage/multipathd: is multipath-tools installed and multipathd running?: Connection refused (os error 111)".to_owned(),
            })
        };
        assert_finding(
            &with(err(MultipathdErrorKind::Unreachable)),
            Severity::Error,
            "multipathd is not running: cannot connect",
            Some("systemctl enable --now multipathd"),
        );
        assert_finding(
            &with(err(MultipathdErrorKind::Timeout)),
            Severity::Error,
            "cannot connect",
            Some("systemctl restart multipathd"),
        );
        assert_finding(
            &with(err(MultipathdErrorKind::PermissionDenied)),
            Severity::Error,
            "cannot connect",
            Some("sudo mpcluster doctor"),
        );
        assert_finding(
            &with(err(MultipathdErrorKind::Other)),
            Severity::Error,
            "cannot connect",
            Some("journalctl -u multipathd"),
        );
        assert_finding(
            &with(Ok("pid 3 configure (pending reconfigure)\n".to_owned())),
            Severity::Warning,
            "busy: configure, reconfigure pending",
            None,
        );
        assert_finding(
            &with(Ok("pid 3 running (pending reconfigure)\n".to_owned())),
            Severity::Warning,
            "busy: running, reconfigure pending",
            None,
        );
        assert_finding(
            &with(Ok("pid 3 shutdown\n".to_owned())),
            Severity::Error,
            "shutting down",
            Some("systemctl enable --now multipathd"),
        );
        assert_finding(
            &with(Ok("gibberish\n".to_owned())),
            Severity::Warning,
            "unexpected reply to `show daemon`",
            None,
        );
    }

    #[test]
    fn parser() {
        assert_finding(
            &finding(&healthy(), checks::PARSER),
            Severity::Ok,
            "without complaint",
            None,
        );
        let with = |parser: ParserFacts| {
            let mut facts = healthy();
            facts.parser = parser;
            finding(&facts, checks::PARSER)
        };
        assert_finding(
            &with(ParserFacts::Ran(ParserOutput {
                complaints: vec![
                    "/etc/multipath/conf.d/zz.conf line 2, invalid keyword: bogus".to_owned(),
                ],
                notices: vec![],
            })),
            Severity::Error,
            "multipath -t complains about the configuration under /: /etc/multipath/conf.d/zz.conf line 2, invalid keyword: bogus",
            Some("multipath -t >/dev/null"),
        );
        assert_finding(
            &with(ParserFacts::Ran(ParserOutput {
                complaints: vec![],
                notices: vec!["config option getuid_callout is deprecated and will be disabled in a future release".to_owned()],
            })),
            Severity::Ok,
            "(1 deprecation notice)",
            None,
        );
        assert_finding(
            &with(ParserFacts::CannotRun {
                setup: true,
                error: "cannot set up a private mount namespace for multipath -t (it needs root): unshare failed".to_owned(),
            }),
            Severity::Warning,
            "it needs root",
            Some("sudo mpcluster doctor"),
        );
        assert_finding(
            &with(ParserFacts::CannotRun {
                setup: false,
                error: "multipath -t did not finish within 30s".to_owned(),
            }),
            Severity::Error,
            "did not finish",
            Some("apt install multipath-tools"),
        );
        assert_finding(
            &with(ParserFacts::NotRun(
                "/usr/sbin/multipath is not installed (multipath-tools)".to_owned(),
            )),
            Severity::Skipped,
            "multipath -t not run: /usr/sbin/multipath is not installed",
            None,
        );
    }

    #[test]
    fn dropins() {
        assert_finding(
            &finding(&healthy(), checks::DROP_INS),
            Severity::Ok,
            "are what mpcluster renders for the stored configuration",
            None,
        );
        let restart = Some("systemctl restart mpcluster-agent.service");

        let mut facts = healthy();
        cmp(&mut facts).files[0].actual = Ok(None);
        assert_finding(
            &finding(&facts, checks::DROP_INS),
            Severity::Error,
            "not applied under /: mpcluster-00-baseline.conf is missing",
            restart,
        );

        let mut facts = healthy();
        cmp(&mut facts).files[0].actual = Ok(Some("edited by hand\n".to_owned()));
        assert_finding(
            &finding(&facts, checks::DROP_INS),
            Severity::Error,
            "mpcluster-00-baseline.conf differs from what mpcluster renders",
            restart,
        );

        let mut facts = healthy();
        cmp(&mut facts).files[1].actual = Ok(Some("old overrides\n".to_owned()));
        assert_finding(
            &finding(&facts, checks::DROP_INS),
            Severity::Error,
            "mpcluster-10-overrides.conf is left over",
            restart,
        );

        let mut facts = healthy();
        cmp(&mut facts).files[1].actual = Err("permission denied".to_owned());
        assert_finding(
            &finding(&facts, checks::DROP_INS),
            Severity::Error,
            "cannot read mpcluster-10-overrides.conf: permission denied",
            restart,
        );

        let mut facts = healthy();
        cmp(&mut facts).wwids_missing = vec![
            W1.to_owned(),
            "36001405aa00000000000000000000b99".to_owned(),
        ];
        assert_finding(
            &finding(&facts, checks::DROP_INS),
            Severity::Error,
            &format!("the wwids file lacks 2 allow-listed WWIDs ({W1}, and 1 more)"),
            restart,
        );

        // An apply waiting for acceptance explains the difference: a warning, the plan has the fix.
        let mut facts = healthy();
        cmp(&mut facts).files[0].actual = Ok(Some("older\n".to_owned()));
        read(&mut facts).plan = Ok(Some(
            r#"{"waiting": true, "summary": "apply waiting"}"#.to_owned(),
        ));
        assert_finding(
            &finding(&facts, checks::DROP_INS),
            Severity::Warning,
            "held: an apply is waiting, see `plan`",
            None,
        );

        let mut facts = healthy();
        facts.dropins = DropinFacts::Compared(DropinComparison {
            configured: false,
            files: vec![],
            wwids_missing: vec![],
        });
        assert_finding(
            &finding(&facts, checks::DROP_INS),
            Severity::Ok,
            "no cluster configuration yet",
            None,
        );

        let mut facts = healthy();
        facts.dropins = DropinFacts::NotChecked("this node runs with no-apply".to_owned());
        assert_finding(
            &finding(&facts, checks::DROP_INS),
            Severity::Skipped,
            "no-apply",
            None,
        );

        let mut facts = healthy();
        facts.dropins =
            DropinFacts::ConfigUnreadable("the stored configuration is invalid".to_owned());
        assert_finding(
            &finding(&facts, checks::DROP_INS),
            Severity::Error,
            "cannot read the stored configuration: the stored configuration is invalid",
            Some("mpcluster config show"),
        );
    }

    #[test]
    fn show_config_defaults_reads_only_the_defaults_section() {
        let d = show_config_defaults(SHOW_CONFIG);
        assert_eq!(d["find_multipaths"], "strict");
        assert_eq!(d["user_friendly_names"], "no");
        assert_eq!(d["find_multipaths_timeout"], "-10");
        assert_eq!(d.len(), 4);
        let d = show_config_defaults("defaults {\n\talias_prefix \"a\"\"b\"\n}\n");
        assert_eq!(d["alias_prefix"], "a\"b");
        assert!(show_config_defaults("").is_empty());
    }

    #[test]
    fn find_multipaths() {
        assert_finding(
            &finding(&healthy(), checks::FIND_MULTIPATHS),
            Severity::Ok,
            "in force in multipathd: user_friendly_names no, find_multipaths strict",
            None,
        );
        let greedy = SHOW_CONFIG.replacen("\"strict\"", "\"greedy\"", 1);
        // On disk right, in force wrong: multipathd missed a reconfigure (or a later file wins).
        let mut facts = healthy();
        facts.multipathd.config = Some(Ok(greedy.clone()));
        assert_finding(
            &finding(&facts, checks::FIND_MULTIPATHS),
            Severity::Error,
            "multipathd runs with find_multipaths \"greedy\" (mpcluster sets \"strict\")",
            Some("multipathd reconfigure"),
        );
        // Not on disk either: the agent has to apply.
        cmp(&mut facts).files[0].actual = Ok(None);
        assert_finding(
            &finding(&facts, checks::FIND_MULTIPATHS),
            Severity::Error,
            "find_multipaths \"greedy\"",
            Some("systemctl restart mpcluster-agent.service"),
        );
        // multipathd prints `find_multipaths no` as "off".
        let mut facts = healthy();
        facts.multipathd.config = Some(Ok(SHOW_CONFIG
            .replacen("\"strict\"", "\"off\"", 1)
            .replacen("\"no\"", "\"yes\"", 1)));
        assert_finding(
            &finding(&facts, checks::FIND_MULTIPATHS),
            Severity::Error,
            "user_friendly_names \"yes\" (mpcluster sets \"no\"), find_multipaths \"off\"",
            Some("multipathd reconfigure"),
        );
        assert!(same_value("find_multipaths", "off", "no"));
        assert!(same_value("find_multipaths", "on", "yes"));
        assert!(!same_value("user_friendly_names", "off", "no"));

        let mut facts = healthy();
        facts.multipathd.config = Some(Ok("defaults {\n}\n".to_owned()));
        assert_finding(
            &finding(&facts, checks::FIND_MULTIPATHS),
            Severity::Error,
            "find_multipaths \"(not shown)\"",
            Some("multipathd reconfigure"),
        );

        let mut facts = healthy();
        facts.multipathd.config = None;
        assert_finding(
            &finding(&facts, checks::FIND_MULTIPATHS),
            Severity::Skipped,
            "multipathd did not answer",
            None,
        );
        let mut facts = healthy();
        facts.multipathd.config = Some(Err("fail".to_owned()));
        assert_finding(
            &finding(&facts, checks::FIND_MULTIPATHS),
            Severity::Warning,
            "cannot read multipathd's configuration",
            None,
        );
        let mut facts = healthy();
        facts.applies = false;
        facts.multipathd.config = Some(Ok(greedy.clone()));
        assert_finding(
            &finding(&facts, checks::FIND_MULTIPATHS),
            Severity::Skipped,
            "no-apply",
            None,
        );
        let mut facts = healthy();
        facts.multipathd.config = Some(Ok(greedy));
        cmp(&mut facts).configured = false;
        assert_finding(
            &finding(&facts, checks::FIND_MULTIPATHS),
            Severity::Ok,
            "no cluster configuration yet, so mpcluster sets nothing; in force: find_multipaths greedy",
            None,
        );
    }

    #[test]
    fn store() {
        assert_finding(
            &finding(&healthy(), checks::STORE),
            Severity::Ok,
            "embedded store /var/lib/mpcluster answers",
            None,
        );
        let mut facts = healthy();
        facts.store = StoreFacts::Unavailable(
            "cannot open the cluster store etcd://10.0.0.1:2379: connection refused".to_owned(),
        );
        assert_finding(
            &finding(&facts, checks::STORE),
            Severity::Error,
            "cannot open the cluster store: cannot open the cluster store etcd://10.0.0.1:2379",
            Some("/etc/mpcluster/mpcluster.toml"),
        );
        // Everything that needs the store says why it was not checked.
        for check in [
            checks::BROADCAST,
            checks::COLLECT,
            checks::APPLY,
            checks::PLAN,
        ] {
            assert_finding(
                &finding(&facts, check),
                Severity::Skipped,
                "the cluster store cannot be read",
                None,
            );
        }
        let mut facts = healthy();
        read(&mut facts).apply = Err("store unavailable: timeout".to_owned());
        assert_finding(
            &finding(&facts, checks::STORE),
            Severity::Error,
            "cannot read the embedded store /var/lib/mpcluster: store unavailable: timeout",
            Some("/etc/mpcluster/mpcluster.toml"),
        );
        assert_finding(
            &finding(&facts, checks::APPLY),
            Severity::Skipped,
            "see `store`",
            None,
        );
    }

    #[test]
    fn broadcasts() {
        assert_finding(
            &finding(&healthy(), checks::BROADCAST),
            Severity::Ok,
            "pve1's broadcast is 20 s old, 1 map",
            None,
        );
        let restart = Some("systemctl restart mpcluster-agent.service");
        let start = Some("systemctl enable --now mpcluster-agent.service");

        let mut facts = healthy();
        read(&mut facts).broadcast = Ok(Some(broadcast(NOW - 600)));
        assert_finding(
            &finding(&facts, checks::BROADCAST),
            Severity::Error,
            "pve1's last broadcast is 10 min old (limit 180 s): the status shows the node offline",
            restart,
        );
        facts.stale_after = 900;
        assert_eq!(finding(&facts, checks::BROADCAST).severity, Severity::Ok);

        let mut facts = healthy();
        read(&mut facts).broadcast = Ok(None);
        assert_finding(
            &finding(&facts, checks::BROADCAST),
            Severity::Error,
            "the store holds no broadcast from pve1 although multipathd has 1 map: is its agent running?",
            start,
        );
        facts.multipathd.maps = Some(Ok(0));
        assert_finding(
            &finding(&facts, checks::BROADCAST),
            Severity::Ok,
            "no broadcast from pve1: multipathd has no map",
            None,
        );
        facts.multipathd.maps = None;
        assert_finding(
            &finding(&facts, checks::BROADCAST),
            Severity::Error,
            "the store holds no broadcast from pve1: is its agent running?",
            start,
        );

        let mut facts = healthy();
        read(&mut facts).broadcast = Ok(Some("{not json".to_owned()));
        assert_finding(
            &finding(&facts, checks::BROADCAST),
            Severity::Error,
            "pve1's broadcast in the store is unreadable: not JSON",
            restart,
        );
        read(&mut facts).broadcast = Ok(Some(r#"{"maps": {}}"#.to_owned()));
        assert_finding(
            &finding(&facts, checks::BROADCAST),
            Severity::Error,
            "has no time",
            restart,
        );
        read(&mut facts).broadcast = Ok(Some(broadcast(NOW + 120)));
        assert_finding(
            &finding(&facts, checks::BROADCAST),
            Severity::Error,
            "dated 2 min ahead of this clock",
            Some("timedatectl set-ntp true"),
        );

        // With membership (etcd), the node must be an online member.
        let mut facts = healthy();
        read(&mut facts).standalone = false;
        read(&mut facts).member = Ok(Some(true));
        assert_eq!(finding(&facts, checks::BROADCAST).severity, Severity::Ok);
        read(&mut facts).member = Ok(Some(false));
        assert_finding(
            &finding(&facts, checks::BROADCAST),
            Severity::Error,
            "pve1 is an offline member of the embedded store /var/lib/mpcluster: the status shows it offline",
            restart,
        );
        read(&mut facts).member = Ok(None);
        read(&mut facts).broadcast = Ok(None);
        facts.multipathd.maps = Some(Ok(0));
        assert_finding(
            &finding(&facts, checks::BROADCAST),
            Severity::Error,
            "pve1 is not a member of the embedded store /var/lib/mpcluster, and the store holds no broadcast from it",
            start,
        );
    }

    #[test]
    fn collect_and_apply_errors() {
        assert_finding(
            &finding(&healthy(), checks::COLLECT),
            Severity::Ok,
            "last collection worked",
            None,
        );
        assert_finding(
            &finding(&healthy(), checks::APPLY),
            Severity::Ok,
            "no apply error",
            None,
        );
        let mut facts = healthy();
        read(&mut facts).collect = Ok(Some(
            serde_json::json!({"error": "cannot connect to multipathd at @/org/kernel/linux/storage/multipathd", "time": NOW - 30}).to_string(),
        ));
        read(&mut facts).apply = Ok(Some(
            serde_json::json!({"error": "multipath -t rejects the candidate configuration, which was not applied (the previous one stays in force): invalid value for no_path_retry: \"bogus\"", "time": NOW - 7200}).to_string(),
        ));
        assert_finding(
            &finding(&facts, checks::COLLECT),
            Severity::Error,
            "the agent cannot collect from multipathd (30 s ago): cannot connect",
            Some("systemctl restart multipathd"),
        );
        assert_finding(
            &finding(&facts, checks::APPLY),
            Severity::Error,
            "the last configuration apply failed (2 h ago): multipath -t rejects",
            Some("systemctl restart mpcluster-agent.service"),
        );
        // An empty error is no error; an unreadable value says so.
        let mut facts = healthy();
        read(&mut facts).collect = Ok(Some(r#"{"error": "", "time": 1}"#.to_owned()));
        read(&mut facts).apply = Ok(Some("[]".to_owned()));
        assert_eq!(finding(&facts, checks::COLLECT).severity, Severity::Ok);
        assert_finding(
            &finding(&facts, checks::APPLY),
            Severity::Warning,
            "pve1's apply error in the store is unreadable",
            None,
        );
        let mut facts = healthy();
        facts.applies = false;
        assert_finding(
            &finding(&facts, checks::APPLY),
            Severity::Skipped,
            "no-apply",
            None,
        );
    }

    #[test]
    fn plan() {
        assert_finding(
            &finding(&healthy(), checks::PLAN),
            Severity::Ok,
            "no apply waiting",
            None,
        );
        let summary = format!("apply waiting: would rename mpatha -> {W1}");
        let mut facts = healthy();
        read(&mut facts).plan = Ok(Some(
            serde_json::json!({"version": 1, "time": NOW, "waiting": true, "summary": summary, "renames": []}).to_string(),
        ));
        let f = finding(&facts, checks::PLAN);
        assert_finding(
            &f,
            Severity::Error,
            &summary,
            Some("mpcluster config accept --node pve1"),
        );
        assert_eq!(f.what, summary);
        read(&mut facts).plan = Ok(Some(r#"{"waiting": true}"#.to_owned()));
        assert_finding(
            &finding(&facts, checks::PLAN),
            Severity::Error,
            "apply waiting for acceptance",
            Some("mpcluster config accept --node pve1"),
        );
        read(&mut facts).plan = Ok(Some(
            r#"{"waiting": false, "summary": "would write 2 files"}"#.to_owned(),
        ));
        assert_finding(
            &finding(&facts, checks::PLAN),
            Severity::Ok,
            "no apply waiting",
            None,
        );
        read(&mut facts).plan = Ok(Some("{oops".to_owned()));
        assert_finding(
            &finding(&facts, checks::PLAN),
            Severity::Warning,
            "not JSON",
            None,
        );
    }

    #[test]
    fn dates() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 2026 00:00:00 GMT"), Some(NOW));
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT"),
            Some(1_709_251_199)
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 CET"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
        assert_eq!(format_utc(NOW), "2026-01-01 00:00 UTC");
        assert_eq!(format_utc(784_111_777), "1994-11-06 08:49 UTC");
        assert_eq!(format_utc(1_709_251_199), "2024-02-29 23:59 UTC");
        assert_eq!(format_utc(-1), "1969-12-31 23:59 UTC");
        for days in [-1000, 0, 59, 365, 11_016, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    fn server(date_secs: i64, sent_ms: i64, received_ms: i64) -> ServerClock {
        let (y, m, d) = civil_from_days(date_secs.div_euclid(86_400));
        let rem = date_secs.rem_euclid(86_400);
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = MONTHS[usize::try_from(m - 1).unwrap()];
        ServerClock {
            url: "https://pve2:8470".to_owned(),
            reply: Ok(ServerDate {
                date: format!(
                    "Xxx, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
                    rem / 3600,
                    rem % 3600 / 60,
                    rem % 60
                ),
                sent_ms,
                received_ms,
            }),
        }
    }

    #[test]
    fn clock_against_a_server() {
        let ms = NOW * 1000;
        let Ok(date) = &server(NOW, ms, ms + 200).reply else {
            panic!()
        };
        assert_eq!(server_offset_ms(date), Some((400, 600)));

        let mut facts = healthy();
        facts.server_clock = Some(server(NOW + 1, ms, ms + 100));
        assert_finding(
            &finding(&facts, checks::CLOCK),
            Severity::Ok,
            "this node's clock is within 5 s of https://pve2:8470's (offset +1.4 s ± 0.6 s)",
            None,
        );
        facts.server_clock = Some(server(NOW + 42, ms, ms + 100));
        assert_finding(
            &finding(&facts, checks::CLOCK),
            Severity::Error,
            "this node's clock is at least 41 s behind https://pve2:8470's",
            Some("timedatectl set-ntp true  # or: systemctl restart chronyd"),
        );
        facts.server_clock = Some(server(NOW - 3600, ms, ms + 100));
        assert_finding(
            &finding(&facts, checks::CLOCK),
            Severity::Error,
            "at least 59 min ahead of https://pve2:8470's",
            Some("timedatectl set-ntp true"),
        );
        // Within the tolerance plus the uncertainty: not an error.
        facts.server_clock = Some(server(NOW + 5, ms, ms + 2000));
        assert_eq!(finding(&facts, checks::CLOCK).severity, Severity::Ok);
        facts.server_clock = Some(ServerClock {
            url: "https://pve2:8470".to_owned(),
            reply: Err("cannot reach https://pve2:8470/health: connection refused".to_owned()),
        });
        assert_finding(
            &finding(&facts, checks::CLOCK),
            Severity::Warning,
            "cannot ask https://pve2:8470 for its time: cannot reach",
            None,
        );
        facts.server_clock = Some(ServerClock {
            url: "https://pve2:8470".to_owned(),
            reply: Ok(ServerDate {
                date: "yesterday".to_owned(),
                sent_ms: ms,
                received_ms: ms,
            }),
        });
        assert_finding(
            &finding(&facts, checks::CLOCK),
            Severity::Warning,
            "is not an HTTP date",
            None,
        );
    }

    #[test]
    fn clock_against_the_other_nodes() {
        let peers = |times: &[(&str, i64)]| -> BTreeMap<NodeName, String> {
            times
                .iter()
                .map(|(n, t)| (NodeName::new(*n).unwrap(), broadcast(*t)))
                .collect()
        };
        let mut facts = healthy();
        read(&mut facts).peers = Ok(peers(&[("pve2", NOW + 40), ("pve3", NOW + 95)]));
        assert_finding(
            &finding(&facts, checks::CLOCK),
            Severity::Error,
            "every other node's newest broadcast (2 nodes) is dated at least 40 s ahead of this clock: this node's clock is behind",
            Some("timedatectl set-ntp true"),
        );
        // One node ahead is that node's clock (the status says so), not this one's.
        read(&mut facts).peers = Ok(peers(&[("pve2", NOW - 30), ("pve3", NOW + 95)]));
        assert_finding(
            &finding(&facts, checks::CLOCK),
            Severity::Ok,
            "not behind the other nodes' (2 broadcasts not all dated ahead)",
            None,
        );
        // Unreadable peers are no evidence.
        read(&mut facts).peers = Ok(BTreeMap::from([(
            NodeName::new("pve2").unwrap(),
            "garbage".to_owned(),
        )]));
        assert_eq!(finding(&facts, checks::CLOCK).severity, Severity::Skipped);
        // Both sources: the server's verdict and the peers'.
        read(&mut facts).peers = Ok(peers(&[("pve2", NOW - 3)]));
        facts.server_clock = Some(server(NOW, NOW * 1000, NOW * 1000 + 10));
        assert_finding(
            &finding(&facts, checks::CLOCK),
            Severity::Ok,
            "within 5 s of https://pve2:8470's (offset +0.5 s ± 0.5 s); not behind the other nodes' (1 broadcast",
            None,
        );
    }

    fn cert(not_before: i64, not_after: i64) -> TlsFacts {
        TlsFacts::Cert {
            path: PathBuf::from("/etc/mpcluster/server.pem"),
            read: Ok(CertValidity {
                subject: "CN=pve1".to_owned(),
                not_before,
                not_after,
            }),
        }
    }

    #[test]
    fn tls() {
        assert_finding(
            &finding(&healthy(), checks::TLS),
            Severity::Skipped,
            "no tls-cert configured",
            None,
        );
        let reload = Some(
            "systemctl reload mpcluster-server.service  # after putting a valid certificate and its key at /etc/mpcluster/server.pem",
        );
        let mut facts = healthy();
        facts.tls = cert(NOW - 86_400, NOW + 400 * 86_400);
        assert_finding(
            &finding(&facts, checks::TLS),
            Severity::Ok,
            "the server certificate /etc/mpcluster/server.pem is valid until 2027-02-05 00:00 UTC (400 days)",
            None,
        );
        facts.tls = cert(NOW - 86_400, NOW + 10 * 86_400);
        assert_finding(
            &finding(&facts, checks::TLS),
            Severity::Warning,
            "(CN=pve1) expires on 2026-01-11 00:00 UTC, in 10 days",
            reload,
        );
        assert!(!has_errors(&evaluate(&facts)), "a warning is no error");
        facts.tls = cert(NOW - 86_400, NOW - 60);
        assert_finding(
            &finding(&facts, checks::TLS),
            Severity::Error,
            "(CN=pve1) expired on 2025-12-31 23:59 UTC",
            reload,
        );
        facts.tls = cert(NOW + 86_400, NOW + 400 * 86_400);
        assert_finding(
            &finding(&facts, checks::TLS),
            Severity::Error,
            "is not valid before 2026-01-02 00:00 UTC",
            reload,
        );
        facts.tls = TlsFacts::Cert {
            path: PathBuf::from("/etc/mpcluster/server.pem"),
            read: Err("No such file or directory (os error 2)".to_owned()),
        };
        assert_finding(
            &finding(&facts, checks::TLS),
            Severity::Error,
            "cannot read the server certificate /etc/mpcluster/server.pem: No such file",
            reload,
        );
    }

    fn rcgen_pem(not_before: time::OffsetDateTime, not_after: time::OffsetDateTime) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["pve1.example".to_owned()]).unwrap();
        params.not_before = not_before;
        params.not_after = not_after;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pve1.example");
        format!(
            "{}{}",
            params.self_signed(&key).unwrap().pem(),
            key.serialize_pem()
        )
    }

    #[test]
    fn reads_the_validity_of_a_real_certificate() {
        let not_before = time::OffsetDateTime::from_unix_timestamp(NOW - 86_400).unwrap();
        let not_after = time::OffsetDateTime::from_unix_timestamp(NOW + 12 * 86_400).unwrap();
        // The server certificate comes first; a key (or a CA) after it does not matter.
        let pem = rcgen_pem(not_before, not_after);
        let v = read_cert_validity(pem.as_bytes()).unwrap();
        assert_eq!(v.not_before, NOW - 86_400);
        assert_eq!(v.not_after, NOW + 12 * 86_400);
        assert!(v.subject.contains("CN=pve1.example"), "{}", v.subject);
        // A key before the certificate is skipped.
        let key_first = format!(
            "{}{}",
            rcgen::KeyPair::generate().unwrap().serialize_pem(),
            pem
        );
        assert_eq!(
            read_cert_validity(key_first.as_bytes()).unwrap().not_after,
            NOW + 12 * 86_400
        );
        assert!(
            read_cert_validity(b"hello")
                .unwrap_err()
                .contains("no CERTIFICATE")
        );
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(
            read_cert_validity(broken.as_bytes())
                .unwrap_err()
                .contains("not an X.509 certificate")
        );
    }

    #[test]
    fn agent_service() {
        assert_finding(
            &finding(&healthy(), checks::AGENT_SERVICE),
            Severity::Ok,
            "mpcluster-agent.service is active",
            None,
        );
        let with = |service: ServiceFacts| {
            let mut facts = healthy();
            facts.agent_service = service;
            finding(&facts, checks::AGENT_SERVICE)
        };
        assert_finding(
            &with(ServiceFacts::State("failed".to_owned())),
            Severity::Error,
            "mpcluster-agent.service is failed",
            Some("systemctl restart mpcluster-agent.service"),
        );
        assert_finding(
            &with(ServiceFacts::State("inactive".to_owned())),
            Severity::Error,
            "mpcluster-agent.service is inactive",
            Some("systemctl enable --now mpcluster-agent.service"),
        );
        assert_finding(
            &with(ServiceFacts::State("activating".to_owned())),
            Severity::Warning,
            "mpcluster-agent.service is activating",
            Some("systemctl status mpcluster-agent.service"),
        );
        assert_finding(
            &with(ServiceFacts::CannotAsk(
                "System has not been booted with systemd as init system (PID 1). Can't operate."
                    .to_owned(),
            )),
            Severity::Skipped,
            "cannot ask systemd about mpcluster-agent.service: System has not been booted",
            None,
        );
    }

    #[test]
    fn findings_are_one_line() {
        assert_eq!(one_line("a\n  b\r\n\tc \n"), "a b c");
    }

    /// A shell script standing in for `systemctl`.
    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("systemctl");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[tokio::test]
    async fn asks_systemd_through_the_given_program() {
        let dir = tempfile::tempdir().unwrap();
        let failed = script(
            dir.path(),
            "[ \"$1 $2\" = \"is-active mpcluster-agent.service\" ] || exit 9\necho failed; exit 3",
        );
        assert_eq!(
            ask_systemd(&failed).await,
            ServiceFacts::State("failed".to_owned())
        );
        let no_systemd = script(
            dir.path(),
            "echo 'System has not been booted with systemd as init system (PID 1).' >&2; exit 1",
        );
        assert_eq!(
            ask_systemd(&no_systemd).await,
            ServiceFacts::CannotAsk(
                "System has not been booted with systemd as init system (PID 1).".to_owned()
            )
        );
        assert!(matches!(
            ask_systemd(&dir.path().join("none")).await,
            ServiceFacts::CannotAsk(why) if why.ends_with("none not found")
        ));
    }

    #[tokio::test]
    async fn finds_the_tools_under_the_root_and_their_version() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_tools(dir.path()).await, ToolsFacts::default());
        std::fs::create_dir_all(dir.path().join("sbin")).unwrap();
        let bin = dir.path().join("sbin/multipath");
        std::fs::write(
            &bin,
            "#!/bin/sh\necho 'multipath-tools v0.9.4 (12/19, 2022)' >&2\necho Usage: >&2\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            find_tools(dir.path()).await,
            ToolsFacts {
                installed: Some(bin.clone()),
                version: Some("multipath-tools v0.9.4 (12/19, 2022)".to_owned()),
            }
        );
        // Not runnable (an empty file): installed, version unknown.
        std::fs::write(&bin, "").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(find_tools(dir.path()).await.version, None);
    }
}
