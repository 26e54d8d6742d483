//! The settings file of `mpcluster agent` and `mpcluster serve`:
//! `/etc/mpcluster/mpcluster.toml` (or `--config FILE` / `MPCLUSTER_CONFIG`), read by the
//! packaged services.
//!
//! Entry point: [`parse_command_line`], which `main` calls instead of clap's `parse`. One
//! table, [`KEYS`], drives everything: a key is a long option of `agent` or `serve` (plus the
//! global `log`) with the TOML type it takes; its help text, default and environment variable
//! come from the clap definition itself. The same table renders the commented default file the
//! package ships (`render_default_file`, `debian/mpcluster.toml`) and the README's table of
//! keys (`render_readme_table`); the tests here compare both with the files in the tree (and
//! rewrite them with `INSTA_UPDATE=always`).
//!
//! Precedence: command line > environment (`MPCLUSTER_*`) > file > built-in default. A value
//! from the file is passed through the option's own clap parser, so it is checked exactly like
//! the command line; an unknown key, a wrong TOML type or a bad value is an error naming the
//! file, the line and the key, before anything starts. A key of the other command (`listen`
//! for the agent) is checked and otherwise ignored, so one file serves both services.
//!
//! `mpcluster doctor` reads the file too ([`READERS`]), to check what the services run with:
//! it takes the keys it has an option of the same name for (`store`, `node`, `root`,
//! `tls-cert`, ...; their options take the same values) and ignores the others.

use std::ffi::OsString;
#[cfg(test)]
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[cfg(test)]
use clap::ArgAction;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _};

use crate::cli::Cli;
use crate::cli::config_file::DEFAULT_CONFIG_FILE;

/// The commands whose long options are the file's keys (every option a key, every key an
/// option of one of them).
pub const COMMANDS: [&str; 2] = ["agent", "serve"];

/// The commands that read the file: [`COMMANDS`], and `doctor` with the keys it has an option
/// for.
pub const READERS: [&str; 3] = ["agent", "serve", "doctor"];

/// What a key holds in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    String,
    /// A file or directory name (a string).
    Path,
    /// A non-negative integer.
    Integer,
    /// A number of seconds: an integer or a float.
    Seconds,
    /// `true` or `false` (a command-line flag; `false` is its default).
    Bool,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Path => "a file name (a string)",
            Kind::Integer => "an integer",
            Kind::Seconds => "a number of seconds",
            Kind::Bool => "true or false",
        }
    }
}

/// A group of keys in the default file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `--store` and the etcd options.
    Store,
    /// The node agent's options.
    Agent,
    /// The API server's options.
    Server,
    /// Global options.
    Logging,
}

// Only the renderings of the default file and the README table (tests) use the sections.
#[cfg_attr(not(test), allow(dead_code))]
impl Section {
    const ALL: [Section; 4] = [
        Section::Store,
        Section::Agent,
        Section::Server,
        Section::Logging,
    ];

    fn title(self) -> &'static str {
        match self {
            Section::Store => "Cluster store (agent, serve)",
            Section::Agent => {
                "Node agent (agent; serve runs it in-process with the embedded store)"
            }
            Section::Server => "API server (serve)",
            Section::Logging => "Logging (agent, serve)",
        }
    }
}

/// One key of the settings file: the long option of the same name.
#[derive(Debug, Clone, Copy)]
pub struct FileKey {
    /// The key, equal to the long option (`stale-after`).
    pub key: &'static str,
    /// Its TOML type.
    pub kind: Kind,
    /// Where the default file lists it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub section: Section,
    /// An example value (TOML syntax), shown for keys without a default.
    #[cfg_attr(not(test), allow(dead_code))]
    pub example: &'static str,
}

const fn key(key: &'static str, kind: Kind, section: Section, example: &'static str) -> FileKey {
    FileKey {
        key,
        kind,
        section,
        example,
    }
}

/// Every key. A test checks that each long option of `agent` and `serve` (but `--config`) has
/// one, and each key an option.
pub const KEYS: &[FileKey] = &[
    key(
        "store",
        Kind::String,
        Section::Store,
        r#""etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/prod""#,
    ),
    key(
        "etcd-ca",
        Kind::Path,
        Section::Store,
        r#""/etc/mpcluster/etcd-ca.pem""#,
    ),
    key(
        "etcd-cert",
        Kind::Path,
        Section::Store,
        r#""/etc/mpcluster/etcd-client.pem""#,
    ),
    key(
        "etcd-key",
        Kind::Path,
        Section::Store,
        r#""/etc/mpcluster/etcd-client.key""#,
    ),
    key("etcd-user", Kind::String, Section::Store, r#""mpcluster""#),
    key(
        "etcd-password-file",
        Kind::Path,
        Section::Store,
        r#""/etc/mpcluster/etcd-password""#,
    ),
    key("membership", Kind::String, Section::Store, r#""auto""#),
    key("pve-root", Kind::Path, Section::Store, r#""/etc/pve""#),
    key("node", Kind::String, Section::Agent, r#""pve1""#),
    key(
        "multipathd-socket",
        Kind::String,
        Section::Agent,
        r#""default""#,
    ),
    key("multipathd-timeout", Kind::Seconds, Section::Agent, "5"),
    key("sysfs-root", Kind::Path, Section::Agent, r#""/sys""#),
    key("interval", Kind::Seconds, Section::Agent, "2"),
    key("refresh", Kind::Integer, Section::Agent, "60"),
    key("member-ttl", Kind::Integer, Section::Agent, "15"),
    key("root", Kind::Path, Section::Agent, r#""/""#),
    key("no-apply", Kind::Bool, Section::Agent, "true"),
    key("no-uevents", Kind::Bool, Section::Agent, "true"),
    key("listen", Kind::String, Section::Server, r#""0.0.0.0:8470""#),
    key(
        "tls-cert",
        Kind::Path,
        Section::Server,
        r#""/etc/mpcluster/server.pem""#,
    ),
    key(
        "tls-key",
        Kind::Path,
        Section::Server,
        r#""/etc/mpcluster/server.key""#,
    ),
    key("insecure-http", Kind::Bool, Section::Server, "true"),
    key(
        "admin-token-file",
        Kind::Path,
        Section::Server,
        r#""/var/lib/mpcluster/admin-token""#,
    ),
    key("no-agent", Kind::Bool, Section::Server, "true"),
    key("stale-after", Kind::Integer, Section::Server, "180"),
    key("metrics-public", Kind::Bool, Section::Server, "true"),
    key("flap-changes", Kind::Integer, Section::Server, "4"),
    key("flap-window", Kind::Seconds, Section::Server, "600"),
    key("event-retention-days", Kind::Integer, Section::Server, "30"),
    key(
        "event-retention-max",
        Kind::Integer,
        Section::Server,
        "100000",
    ),
    key("log", Kind::String, Section::Logging, r#""info""#),
];

/// Why the settings file cannot be used. `Display` names the file, the line and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read (a missing default file is not an error).
    #[error("cannot read the settings file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML.
    #[error("{} line {line}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The TOML parser's message.
        message: String,
    },
    /// A key that is no option of `agent` or `serve`.
    #[error(
        "{} line {line}: unknown key '{key}'{}",
        path.display(),
        did_you_mean(suggestion.as_deref())
    )]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The key as written.
        key: String,
        /// The closest known key, if one is close.
        suggestion: Option<String>,
    },
    /// A value of the wrong TOML type.
    #[error("{} line {line}: '{key}' must be {expected}", path.display())]
    Type {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The key.
        key: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A value the option's parser refuses.
    #[error("{} line {line}: bad value {value:?} for '{key}': {reason}", path.display())]
    Value {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The key.
        key: String,
        /// The value as text.
        value: String,
        /// The parser's reason.
        reason: String,
    },
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default()
}

/// One setting read from the file, checked, as the command-line argument it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The key.
    pub key: &'static str,
    /// The value as the option takes it (`None`: a flag set to false, i.e. nothing to pass).
    pub value: Option<String>,
    /// 1-based line of the key.
    pub line: usize,
}

impl Setting {
    /// The command-line argument (`--key=value`, or `--key` for a flag set to true).
    fn argument(&self, kind: Kind) -> Option<OsString> {
        match (kind, &self.value) {
            (Kind::Bool, Some(_)) => Some(format!("--{}", self.key).into()),
            (Kind::Bool, None) => None,
            (_, Some(v)) => Some(format!("--{}={v}", self.key).into()),
            (_, None) => None,
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Levenshtein distance (keys are short ASCII).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn suggest(key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase().replace('_', "-");
    KEYS.iter()
        .map(|k| (distance(&lower, k.key), k.key))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.to_owned())
}

/// The command (`agent` or `serve`) that has the option `key` (globals included).
fn command_with(cmd: &clap::Command, key: &str) -> Option<&'static str> {
    COMMANDS.into_iter().find(|name| {
        cmd.find_subcommand(name)
            .is_some_and(|sub| sub.get_arguments().any(|a| a.get_long() == Some(key)))
    })
}

/// Check `value` with the option's own parser: parse `mpcluster <command> --key=value`. Only
/// a refused value counts here; the rules between options are checked once the file and the
/// command line are put together ([`parse_command_line`]).
fn check_value(command: &str, key: &str, value: &str) -> Result<(), String> {
    let argv = ["mpcluster", command, &format!("--{key}={value}")];
    match Cli::command().try_get_matches_from(argv) {
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation | clap::error::ErrorKind::InvalidValue
            ) =>
        {
            Err(clap_reason(&e))
        }
        _ => Ok(()),
    }
}

/// The clap command with its globals propagated to the subcommands.
fn built_command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

/// Parse and check the settings file `text` (named `path` in errors).
pub fn parse(text: &str, path: &Path) -> Result<Vec<Setting>, ConfigFileError> {
    let doc = toml::de::DeTable::parse(text).map_err(|e| ConfigFileError::Syntax {
        path: path.to_owned(),
        line: line_of(text, e.span().map(|s| s.start).unwrap_or(0)),
        message: e.message().trim().to_owned(),
    })?;
    let cmd = built_command();
    let mut settings = Vec::new();
    for (k, v) in doc.get_ref() {
        let line = line_of(text, k.span().start);
        let name: &str = k.get_ref();
        let Some(spec) = KEYS.iter().find(|s| s.key == name) else {
            return Err(ConfigFileError::UnknownKey {
                path: path.to_owned(),
                line,
                key: name.to_owned(),
                suggestion: suggest(name),
            });
        };
        let type_error = || ConfigFileError::Type {
            path: path.to_owned(),
            line,
            key: spec.key.to_owned(),
            expected: spec.kind.expected(),
        };
        let value: Option<String> = match (spec.kind, v.get_ref()) {
            (Kind::String | Kind::Path, toml::de::DeValue::String(s)) => Some(s.to_string()),
            (Kind::Integer | Kind::Seconds, toml::de::DeValue::Integer(i)) => {
                let digits = i.as_str().replace('_', "");
                let n = i64::from_str_radix(&digits, i.radix()).map_err(|_| type_error())?;
                Some(n.to_string())
            }
            (Kind::Seconds, toml::de::DeValue::Float(f)) => Some(f.as_str().replace('_', "")),
            (Kind::Bool, toml::de::DeValue::Boolean(b)) => b.then(|| "true".to_owned()),
            _ => return Err(type_error()),
        };
        if let (Some(text_value), Some(command)) = (&value, command_with(&cmd, spec.key))
            && spec.kind != Kind::Bool
        {
            check_value(command, spec.key, text_value).map_err(|reason| {
                ConfigFileError::Value {
                    path: path.to_owned(),
                    line: line_of(text, v.span().start),
                    key: spec.key.to_owned(),
                    value: text_value.clone(),
                    reason,
                }
            })?;
        }
        settings.push(Setting {
            key: spec.key,
            value,
            line,
        });
    }
    settings.sort_by_key(|s| s.line);
    Ok(settings)
}

/// clap's reason for refusing a value: the parser's own error when there is one, else clap's
/// message.
fn clap_reason(e: &clap::Error) -> String {
    if let Some(source) = std::error::Error::source(e) {
        return source.to_string();
    }
    clap_message(e)
}

/// clap's message without its `error: ` prefix and the usage and help hints after it, on one
/// line.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let message: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    message
        .strip_prefix("error: ")
        .unwrap_or(&message)
        .to_owned()
}

/// Parse the command line as [`clap::Parser::parse`] does (exiting on `--help`, `--version` and
/// errors), with the settings file folded in for the [`READERS`]: every key that the command
/// line and the environment leave unset is passed as if given on the command line. The whole
/// is then parsed once, so clap checks the rules between options across both (`tls-key` on the
/// command line completes `tls-cert` from the file). A settings file that cannot be used ends
/// the process with exit code 2 before anything starts.
pub fn parse_command_line() -> ArgMatches {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let (argv, file) = match with_file_settings(argv) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mpcluster: {e}");
            std::process::exit(2);
        }
    };
    Cli::command()
        .try_get_matches_from(argv)
        .unwrap_or_else(|e| {
            if let Some(file) = file.filter(|_| e.use_stderr()) {
                eprintln!(
                    "mpcluster: the command line, with the settings from {}, is not valid:",
                    file.display()
                );
            }
            e.exit()
        })
}

/// `argv` with the settings file's values added (for the [`READERS`]), and the file when it
/// added any. Other commands, and a missing default file, leave `argv` as it is.
pub fn with_file_settings(
    argv: Vec<OsString>,
) -> Result<(Vec<OsString>, Option<PathBuf>), ConfigFileError> {
    // A first, lenient parse: which command, which file, and what the command line and the
    // environment set already. Its errors (or `--help`) are left to the final parse.
    let Ok(matches) = Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(&argv)
    else {
        return Ok((argv, None));
    };
    let Some((name, sub)) = matches.subcommand() else {
        return Ok((argv, None));
    };
    if !READERS.contains(&name) {
        return Ok((argv, None));
    }
    let explicit = sub.try_get_one::<PathBuf>("config").ok().flatten().cloned();
    let path = explicit
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok((argv, None));
        }
        Err(source) => return Err(ConfigFileError::Read { path, source }),
    };
    let settings = parse(&text, &path)?;
    let cmd = built_command();
    let Some(sub_cmd) = cmd.find_subcommand(name) else {
        return Ok((argv, None));
    };
    let mut extra = Vec::new();
    for setting in &settings {
        let Some(arg) = sub_cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(setting.key))
        else {
            continue; // the other command's key
        };
        let id = arg.get_id().as_str();
        let given = |m: &ArgMatches| {
            matches!(
                m.try_get_raw(id).ok().and_then(|_| m.value_source(id)),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        if given(sub) || given(&matches) {
            continue;
        }
        let kind = KEYS
            .iter()
            .find(|k| k.key == setting.key)
            .map_or(Kind::String, |k| k.kind);
        extra.extend(setting.argument(kind));
    }
    if extra.is_empty() {
        return Ok((argv, None));
    }
    let mut argv = argv;
    let at = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
    argv.splice(at..at, extra);
    Ok((argv, Some(path)))
}

#[cfg(test)]
/// A key's clap facts for the docs: help text, default, environment variable, commands.
struct KeyDoc {
    help: String,
    default: Option<String>,
    env: Option<String>,
    commands: Vec<&'static str>,
}

#[cfg(test)]
fn key_doc(cmd: &clap::Command, spec: &FileKey) -> KeyDoc {
    let mut doc = KeyDoc {
        help: String::new(),
        default: None,
        env: None,
        commands: Vec::new(),
    };
    for name in COMMANDS {
        let Some(arg) = cmd
            .find_subcommand(name)
            .and_then(|s| s.get_arguments().find(|a| a.get_long() == Some(spec.key)))
        else {
            continue;
        };
        doc.commands.push(name);
        doc.help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        doc.env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        doc.default = match arg.get_action() {
            ArgAction::SetTrue => None,
            _ => arg
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy().into_owned()),
        };
    }
    doc
}

#[cfg(test)]
fn toml_literal(kind: Kind, value: &str) -> String {
    match kind {
        Kind::String | Kind::Path => {
            format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
        }
        Kind::Integer | Kind::Seconds | Kind::Bool => value.to_owned(),
    }
}

#[cfg(test)]
/// `text` as `# ` comment lines of at most `width` columns.
fn comment(out: &mut String, text: &str, width: usize) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.len() + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    if line.len() > 1 {
        out.push_str(&line);
        out.push('\n');
    }
}

#[cfg(test)]
/// The commented default file the package ships as `/etc/mpcluster/mpcluster.toml`.
pub fn render_default_file() -> String {
    let cmd = built_command();
    let mut out = String::new();
    comment(
        &mut out,
        "mpcluster settings: /etc/mpcluster/mpcluster.toml, read by `mpcluster agent` and \
         `mpcluster serve` (the mpcluster-agent and mpcluster-server services; `--config FILE` \
         or MPCLUSTER_CONFIG reads another file).",
        92,
    );
    out.push_str("#\n");
    comment(
        &mut out,
        "Every key is the long command-line option of the same name. Precedence: command line > \
         environment (the MPCLUSTER_* variables named below) > this file > built-in default. \
         An unknown key or a bad value is an error naming its line, and the service does not \
         start. A key only one of the two commands has is ignored by the other. Everything \
         below is commented out: the built-in defaults (shown) apply.",
        92,
    );
    for section in Section::ALL {
        let _ = write!(out, "\n# --- {} ", section.title());
        let dashes = 92usize.saturating_sub(out.lines().last().map_or(0, str::len));
        out.push_str(&"-".repeat(dashes));
        out.push('\n');
        for spec in KEYS.iter().filter(|k| k.section == section) {
            let doc = key_doc(&cmd, spec);
            out.push('\n');
            let mut help = doc.help.trim().to_owned();
            if !help.ends_with(['.', ')']) {
                help.push('.');
            }
            comment(&mut out, &help, 92);
            let mut facts = Vec::new();
            if let Some(env) = &doc.env {
                facts.push(format!("Environment: {env}."));
            }
            if doc.default.is_none() && spec.kind != Kind::Bool {
                facts.push("Unset by default; for example:".to_owned());
            }
            if !facts.is_empty() {
                comment(&mut out, &facts.join(" "), 92);
            }
            let value = match (&doc.default, spec.kind) {
                (_, Kind::Bool) => "false".to_owned(),
                (Some(d), kind) => toml_literal(kind, d),
                (None, _) => spec.example.to_owned(),
            };
            let _ = writeln!(out, "#{} = {value}", spec.key);
        }
    }
    out
}

#[cfg(test)]
/// The README's table of keys (Markdown).
pub fn render_readme_table() -> String {
    let cmd = built_command();
    let mut out = String::from(
        "| key | type | commands | environment | default | what it sets |\n|---|---|---|---|---|---|\n",
    );
    for spec in KEYS {
        let doc = key_doc(&cmd, spec);
        let help = doc
            .help
            .trim()
            .replace('|', "\\|")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let kind = match spec.kind {
            Kind::String => "string",
            Kind::Path => "path",
            Kind::Integer => "integer",
            Kind::Seconds => "seconds",
            Kind::Bool => "bool",
        };
        let default = match (&doc.default, spec.kind) {
            (_, Kind::Bool) => "`false`".to_owned(),
            (Some(d), kind) => format!("`{}`", toml_literal(kind, d)),
            (None, _) => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {kind} | {} | {} | {default} | {help} |",
            spec.key,
            doc.commands.join(", "),
            doc.env
                .as_deref()
                .map_or("-".to_owned(), |e| format!("`{e}`")),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;

    use super::*;

    fn p() -> PathBuf {
        PathBuf::from("mpcluster.toml")
    }

    #[test]
    fn every_option_of_agent_and_serve_has_a_key_and_back() {
        let cmd = built_command();
        let mut options = BTreeSet::new();
        for name in COMMANDS {
            for arg in cmd.find_subcommand(name).unwrap().get_arguments() {
                if let Some(long) = arg.get_long()
                    && !["config", "help", "version"].contains(&long)
                {
                    options.insert(long.to_owned());
                    let spec = KEYS.iter().find(|k| k.key == long).unwrap_or_else(|| {
                        panic!("`mpcluster {name} --{long}` has no key in config_file::KEYS: add one (and re-render debian/mpcluster.toml and the README table)")
                    });
                    let flag = matches!(arg.get_action(), ArgAction::SetTrue);
                    assert_eq!(
                        flag,
                        spec.kind == Kind::Bool,
                        "--{long}: flag vs Kind::Bool"
                    );
                }
            }
        }
        let keys: BTreeSet<String> = KEYS.iter().map(|k| k.key.to_owned()).collect();
        assert_eq!(keys, options, "KEYS and the options differ");
        assert_eq!(KEYS.len(), keys.len(), "a key is listed twice");
    }

    /// `doctor` checks what the services run with: it takes the keys naming where they find
    /// things, and each of its options that is a key takes the same values as the services'
    /// option (same kind, same default).
    #[test]
    fn doctor_reads_the_keys_of_the_services_it_checks() {
        let cmd = built_command();
        let doctor = cmd.find_subcommand("doctor").unwrap();
        let services: Vec<&clap::Command> = COMMANDS
            .iter()
            .map(|name| cmd.find_subcommand(name).unwrap())
            .collect();
        let mut shared = BTreeSet::new();
        for arg in doctor.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let Some(spec) = KEYS.iter().find(|k| k.key == long) else {
                continue; // doctor's own option (--server, --json, ...)
            };
            shared.insert(long);
            let flag = matches!(arg.get_action(), ArgAction::SetTrue);
            assert_eq!(
                flag,
                spec.kind == Kind::Bool,
                "doctor --{long}: flag vs Kind::Bool"
            );
            let theirs = services
                .iter()
                .find_map(|s| s.get_arguments().find(|a| a.get_long() == Some(long)))
                .unwrap();
            assert_eq!(
                arg.get_default_values(),
                theirs.get_default_values(),
                "doctor --{long}: another default than the services'"
            );
            assert_eq!(arg.get_env(), theirs.get_env(), "doctor --{long}: env");
        }
        for key in [
            "store",
            "etcd-ca",
            "etcd-cert",
            "etcd-key",
            "etcd-user",
            "etcd-password-file",
            "membership",
            "pve-root",
            "node",
            "multipathd-socket",
            "multipathd-timeout",
            "root",
            "no-apply",
            "tls-cert",
            "stale-after",
            "log",
        ] {
            assert!(shared.contains(key), "doctor has no --{key}");
        }
    }

    #[test]
    fn doctor_takes_its_keys_from_the_file_and_ignores_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mpcluster.toml");
        std::fs::write(
            &file,
            "store = \"embedded:/srv/store\"\nlisten = \"0.0.0.0:8470\"\ninterval = 3\n\
             tls-cert = \"/etc/mpcluster/server.pem\"\ntls-key = \"/etc/mpcluster/server.key\"\n\
             no-apply = true\nroot = \"/srv/root\"\n",
        )
        .unwrap();
        let argv: Vec<OsString> = [
            "mpcluster",
            "doctor",
            "--config",
            file.to_str().unwrap(),
            "--root",
            "/other",
        ]
        .map(OsString::from)
        .to_vec();
        let (argv, used) = with_file_settings(argv).unwrap();
        assert_eq!(used.as_deref(), Some(file.as_path()));
        let added: Vec<String> = argv[6..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            added,
            [
                "--store=embedded:/srv/store",
                "--tls-cert=/etc/mpcluster/server.pem",
                "--no-apply",
            ],
            "the command line's --root wins; listen, interval and tls-key are not doctor's"
        );
        // status still never reads the file.
        let argv: Vec<OsString> = ["mpcluster", "status", "--snapshot", "-"]
            .map(OsString::from)
            .to_vec();
        assert_eq!(with_file_settings(argv.clone()).unwrap(), (argv, None));
    }

    #[test]
    fn examples_are_valid_values() {
        let text: String = KEYS
            .iter()
            .map(|k| format!("{} = {}\n", k.key, k.example))
            .collect();
        let settings = parse(&text, &p()).unwrap();
        assert_eq!(settings.len(), KEYS.len());
    }

    #[test]
    fn unknown_key_names_line_and_suggestion() {
        let text = "# comment\n\nstore = \"embedded\"\n\n\n\nlistn = \"0.0.0.0:8470\"\n";
        let e = parse(text, &p()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mpcluster.toml line 7: unknown key 'listn' (did you mean 'listen'?)"
        );
        let e = parse("colour = 1\n", &p()).unwrap_err();
        assert_eq!(e.to_string(), "mpcluster.toml line 1: unknown key 'colour'");
        let e = parse("stale_after = 5\n", &p()).unwrap_err();
        assert!(
            e.to_string().ends_with("(did you mean 'stale-after'?)"),
            "{e}"
        );
    }

    #[test]
    fn tables_and_wrong_types_are_errors() {
        let e = parse("[serve]\nlisten = \"0.0.0.0:1\"\n", &p()).unwrap_err();
        assert_eq!(e.to_string(), "mpcluster.toml line 1: unknown key 'serve'");
        let e = parse("\ninterval = \"fast\"\n", &p()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mpcluster.toml line 2: 'interval' must be a number of seconds"
        );
        let e = parse("no-apply = \"yes\"\n", &p()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mpcluster.toml line 1: 'no-apply' must be true or false"
        );
        let e = parse("refresh = 1.5\n", &p()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mpcluster.toml line 1: 'refresh' must be an integer"
        );
        let e = parse("store = [\"a\"]\n", &p()).unwrap_err();
        assert!(e.to_string().contains("'store' must be a string"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_by_the_options_parser() {
        let e = parse("listen = \"0.0.0.0\"\n", &p()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("mpcluster.toml line 1: bad value \"0.0.0.0\" for 'listen': "),
            "{e}"
        );
        let e = parse("store = \"nosuch://x\"\n", &p()).unwrap_err();
        assert!(e.to_string().contains("for 'store': "), "{e}");
        let e = parse("refresh = -1\n", &p()).unwrap_err();
        assert!(e.to_string().contains("for 'refresh': "), "{e}");
        let e = parse("node = \"bad name\"\n", &p()).unwrap_err();
        assert!(e.to_string().contains("for 'node': "), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse("store = \"embedded\"\nlisten = \n", &p()).unwrap_err();
        assert!(e.to_string().starts_with("mpcluster.toml line 2: "), "{e}");
        let e = parse("a = 1\na = 2\n", &p()).unwrap_err();
        assert!(e.to_string().starts_with("mpcluster.toml line 2: "), "{e}");
    }

    #[test]
    fn values_become_arguments() {
        let s = parse(
            "interval = 0.5\nrefresh = 0x10\nno-apply = true\nno-agent = false\nroot = \"/x\"\n",
            &p(),
        )
        .unwrap();
        let args: Vec<_> = s
            .iter()
            .filter_map(|s| {
                let kind = KEYS.iter().find(|k| k.key == s.key).unwrap().kind;
                s.argument(kind)
            })
            .collect();
        assert_eq!(
            args,
            ["--interval=0.5", "--refresh=16", "--no-apply", "--root=/x"]
                .map(OsString::from)
                .to_vec()
        );
    }

    #[test]
    fn the_shipped_default_file_is_the_rendered_one_and_parses() {
        let rendered = render_default_file();
        assert!(parse(&rendered, &p()).unwrap().is_empty());
        // Uncommented, every line parses and covers every key.
        let uncommented: String = rendered
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| KEYS.iter().any(|k| l.starts_with(&format!("{} = ", k.key))))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(parse(&uncommented, &p()).unwrap().len(), KEYS.len());
        expect_file("debian/mpcluster.toml", &rendered);
    }

    #[test]
    fn readme_lists_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let (start, end) = ("<!-- config-keys -->\n", "<!-- /config-keys -->");
        let table = render_readme_table();
        let (Some(a), Some(b)) = (readme.find(start), readme.find(end)) else {
            panic!("README.md has no {start:?} ... {end:?} block");
        };
        let current = &readme[a + start.len()..b];
        if current != table {
            if update() {
                let mut new = readme.clone();
                new.replace_range(a + start.len()..b, &table);
                std::fs::write(&path, new).unwrap();
            } else {
                panic!(
                    "README.md's table of settings-file keys is out of date; run with INSTA_UPDATE=always to rewrite it:\n{table}"
                );
            }
        }
    }

    fn update() -> bool {
        std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always")
    }

    /// `rel` (in this crate) must hold `expected`; `INSTA_UPDATE=always` rewrites it.
    fn expect_file(rel: &str, expected: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != expected {
            if update() {
                std::fs::write(&path, expected).unwrap();
            } else {
                panic!(
                    "{rel} is not what config_file::render_default_file() gives; run with INSTA_UPDATE=always to rewrite it"
                );
            }
        }
    }
}
