//! Notifications: where they go ([`Target`]), what they say ([`Message`]) and when they are
//! due ([`Outbox`], [`advance`]). Pure: the store I/O is the config crate's
//! (`mpcluster_config::notify`), sending is the server's (`mpcluster_server::notify`).
//!
//! - **Targets** ([`TargetsDoc`], the stored document `notify-targets`): a `webhook` (JSON
//!   POST signed with HMAC-SHA256 of `secret`), `smtp` (mail; the password stays in a file on
//!   the server nodes, only its path is stored) or `exec` (a program given the JSON on stdin).
//!   [`new_target`] validates a request's properties all-or-nothing, every field error at
//!   once; [`TargetView`] is what clients see (a webhook's secret only as `"set"`).
//! - **Messages**: one per LUN state change, not per node and not per path. The event log's
//!   LUN and cell events of one LUN within the grouping window ([`NotifySettings::group_window`],
//!   default 10 s) from the first change are merged into one message naming every affected
//!   node; a LUN that returns to `optimal` gets a `recovered` message; a LUN that stays
//!   `failed` a `reminder` every [`NotifySettings::reminder`] (default 4 h); a flapping LUN
//!   ([`crate::events::flapping`]) one `flapping` message and nothing per change until it is
//!   stable again, then one message with the state it settled in. Changes that cancel out
//!   within the window (a blip) send nothing. Each message carries the root-cause hints that
//!   name its LUN.
//! - **The outbox** ([`Outbox`], the stored document `notify-outbox`): a consumer of the
//!   event log with a cursor (the last sequence number processed), the open groups, the
//!   per-LUN state last notified and the pending deliveries (one per message and target, each
//!   with a unique id). [`advance`] moves the cursor and the groups in one step, so the store
//!   layer writes both in one compare-and-swap: nothing is lost or doubled across a change of
//!   the sending server. Deliveries are claimed ([`Outbox::claim_due`]) before they are sent
//!   and removed once sent ([`Outbox::settle`]); a failed one is retried with exponential
//!   back-off ([`retry_delay`]) and dropped after [`NotifySettings::give_up`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::config::{ConfigError, ConfigErrors};
use crate::events::{CellValue, Event, EventKind, Flap, FlapRule};
use crate::hints::Hint;
use crate::ids::{Alias, NodeName, Wwid};
use crate::rollup::LunStatus;
use crate::state::MapState;

/// The version of the targets document this build reads and writes.
pub const TARGETS_VERSION: u32 = 1;
/// The outbox format this build reads and writes.
pub const OUTBOX_FORMAT: u32 = 1;
/// The longest target id.
pub const TARGET_ID_MAX_LEN: usize = 32;
/// What a stored secret shows as in every view.
pub const SECRET_SET: &str = "set";

// ---------------------------------------------------------------------------------------------
// Targets

/// A target id that breaks the naming rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid notification target id {value:?}: {reason}")]
pub struct TargetIdError {
    /// The rejected value, cut to 80 characters.
    pub value: String,
    /// The rule it broke.
    pub reason: &'static str,
}

/// A validated target id: 1 to [`TARGET_ID_MAX_LEN`] characters of `[a-z0-9-]`, starting with
/// a letter or a digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetId(String);

impl TargetId {
    /// Validate `value`.
    pub fn new(value: impl Into<String>) -> Result<TargetId, TargetIdError> {
        let value = value.into();
        let err = |reason| TargetIdError {
            value: value.chars().take(80).collect(),
            reason,
        };
        if value.is_empty() {
            return Err(err("must not be empty"));
        }
        if value.len() > TARGET_ID_MAX_LEN {
            return Err(err("longer than 32 characters"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err("only lowercase letters, digits and '-' are allowed"));
        }
        if value.starts_with('-') {
            return Err(err("must start with a letter or a digit"));
        }
        Ok(TargetId(value))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TargetId {
    type Err = TargetIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetId::new(s)
    }
}

impl Serialize for TargetId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TargetId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TargetId::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum SmtpSecurity {
    /// Plain SMTP (only for a relay on the same host or a trusted network).
    None,
    /// Plain connection upgraded with STARTTLS (required; port 587 by default).
    Starttls,
    /// TLS from the first byte (SMTPS; port 465 by default).
    Tls,
}

impl SmtpSecurity {
    /// Every value.
    pub const ALL: [SmtpSecurity; 3] = [
        SmtpSecurity::None,
        SmtpSecurity::Starttls,
        SmtpSecurity::Tls,
    ];

    /// The name (`none`, `starttls`, `tls`).
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSecurity::None => "none",
            SmtpSecurity::Starttls => "starttls",
            SmtpSecurity::Tls => "tls",
        }
    }

    /// The usual port: 25, 587, 465.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::None => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        }
    }
}

/// A webhook: the message as JSON POSTed to `url`, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `http://` or `https://` URL.
    pub url: String,
    /// The HMAC-SHA256 key of the `X-Mpcluster-Signature` header. Stored (the server needs
    /// it to sign), never shown back.
    pub secret: String,
}

/// Mail over SMTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    /// The SMTP server's host name or address.
    pub server: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    pub security: SmtpSecurity,
    /// The sender address.
    pub from: String,
    /// The recipients (at least one).
    pub to: Vec<String>,
    /// The user to log in as (with `password-file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A file on every server node holding the password, read at send time: the password
    /// itself is never stored.
    #[serde(
        rename = "password-file",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub password_file: Option<String>,
}

/// A program run with the message as JSON on stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// The argument vector; the first is an absolute path (no `PATH` lookup, no shell).
    pub command: Vec<String>,
}

/// A notification target as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Target {
    /// See [`Webhook`].
    Webhook(Webhook),
    /// See [`Smtp`].
    Smtp(Smtp),
    /// See [`Exec`].
    Exec(Exec),
}

impl Target {
    /// The type name (`webhook`, `smtp`, `exec`).
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Webhook(_) => "webhook",
            Target::Smtp(_) => "smtp",
            Target::Exec(_) => "exec",
        }
    }
}

/// The target types.
pub const TARGET_TYPES: &[&str] = &["webhook", "smtp", "exec"];

/// The stored targets document (`notify-targets`): `{"version": 1, "targets": {"<id>":
/// {"type": ..., ...}}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsDoc {
    /// [`TARGETS_VERSION`].
    #[serde(default = "targets_version")]
    pub version: u32,
    /// The targets by id.
    #[serde(default)]
    pub targets: BTreeMap<TargetId, Target>,
}

fn targets_version() -> u32 {
    TARGETS_VERSION
}

/// The stored targets document cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TargetsDocError {
    /// Written by a newer mpcluster.
    #[error(
        "the notification targets have version {found}, this mpcluster reads version \
         {TARGETS_VERSION}: upgrade this node"
    )]
    NewerVersion {
        /// The version found.
        found: u32,
    },
    /// Not the expected JSON.
    #[error("the notification targets document is not valid")]
    Invalid(#[source] serde_json::Error),
    /// A stored target breaks a rule (written by hand?).
    #[error("the stored notification target '{id}' is invalid: {errors}")]
    Target {
        /// The target.
        id: TargetId,
        /// What is wrong with it.
        errors: ConfigErrors,
    },
}

impl TargetsDoc {
    /// Parse and check a stored document.
    pub fn from_json(text: &str) -> Result<TargetsDoc, TargetsDocError> {
        let doc: TargetsDoc = serde_json::from_str(text).map_err(TargetsDocError::Invalid)?;
        if doc.version > TARGETS_VERSION {
            return Err(TargetsDocError::NewerVersion { found: doc.version });
        }
        for (id, t) in &doc.targets {
            check_target(t).map_err(|errors| TargetsDocError::Target {
                id: id.clone(),
                errors,
            })?;
        }
        Ok(doc)
    }

    /// The stored text.
    pub fn to_json(&self) -> String {
        // Our own plain data: encoding cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// What clients see of a target: everything but the webhook secret, which shows as
/// [`SECRET_SET`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct TargetView {
    /// The target id.
    #[cfg_attr(feature = "schema", schema(value_type = String))]
    pub id: TargetId,
    /// `webhook`, `smtp` or `exec`.
    #[serde(rename = "type")]
    pub kind: String,
    /// webhook: the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// webhook: `"set"` (the secret itself is never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// smtp: the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// smtp: the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// smtp: `none`, `starttls` or `tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SmtpSecurity>,
    /// smtp: the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// smtp: the recipients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
    /// smtp: the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// smtp: the password file's path on the server nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// exec: the argument vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
}

impl TargetView {
    /// The view of target `id`.
    pub fn of(id: &TargetId, t: &Target) -> TargetView {
        let mut v = TargetView {
            id: id.clone(),
            kind: t.kind().to_owned(),
            url: None,
            secret: None,
            server: None,
            port: None,
            security: None,
            from: None,
            to: None,
            username: None,
            password_file: None,
            command: None,
        };
        match t {
            Target::Webhook(w) => {
                v.url = Some(w.url.clone());
                v.secret = Some(SECRET_SET.to_owned());
            }
            Target::Smtp(s) => {
                v.server = Some(s.server.clone());
                v.port = Some(s.port);
                v.security = Some(s.security);
                v.from = Some(s.from.clone());
                v.to = Some(s.to.clone());
                v.username = s.username.clone();
                v.password_file = s.password_file.clone();
            }
            Target::Exec(e) => v.command = Some(e.command.clone()),
        }
        v
    }
}

/// Properties of each type besides `type` and `id`.
pub fn target_props(kind: &str) -> &'static [&'static str] {
    match kind {
        "webhook" => &["url", "secret"],
        "smtp" => &[
            "server",
            "port",
            "security",
            "from",
            "to",
            "username",
            "password-file",
        ],
        "exec" => &["command"],
        _ => &[],
    }
}

/// Required properties of each type.
fn required_props(kind: &str) -> &'static [&'static str] {
    match kind {
        "webhook" => &["url", "secret"],
        "smtp" => &["server", "from", "to"],
        "exec" => &["command"],
        _ => &[],
    }
}

fn no_controls(s: &str) -> Result<(), String> {
    if s.chars().any(char::is_control) {
        Err("must not contain control characters".to_owned())
    } else {
        Ok(())
    }
}

fn check_url(url: &str) -> Result<(), String> {
    no_controls(url)?;
    if url.len() > 2048 {
        return Err("longer than 2048 characters".to_owned());
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must be an http:// or https:// URL")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(' ') || host.contains('@') {
        return Err("must name a host (http://HOST[:PORT]/PATH; no user:password@)".to_owned());
    }
    Ok(())
}

fn check_secret(secret: &str) -> Result<(), String> {
    no_controls(secret)?;
    if secret.len() < 16 {
        return Err("must be at least 16 characters (it is the HMAC-SHA256 key)".to_owned());
    }
    if secret.len() > 1024 {
        return Err("longer than 1024 characters".to_owned());
    }
    Ok(())
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() || host.len() > 253 {
        return Err("must be a host name or an IP address".to_owned());
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'))
    {
        return Err(
            "must be a host name or an IP address (letters, digits, '.', '-', ':')".to_owned(),
        );
    }
    Ok(())
}

/// A mail address: `local@domain`, no spaces, angle brackets or control characters.
pub fn check_address(addr: &str) -> Result<(), String> {
    let bad = || format!("{addr:?} is not a mail address (user@domain)");
    if addr.len() > 254
        || addr
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';'))
    {
        return Err(bad());
    }
    match addr.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(()),
        _ => Err(bad()),
    }
}

fn check_abs_path(p: &str) -> Result<(), String> {
    no_controls(p)?;
    if !p.starts_with('/') || p.len() > 4096 {
        return Err("must be an absolute path".to_owned());
    }
    Ok(())
}

/// Check a target (also a stored one): every problem, keyed by property.
pub fn check_target(t: &Target) -> Result<(), ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let mut push = |field: &str, r: Result<(), String>| {
        if let Err(m) = r {
            errs.0.push(ConfigError::new(field, m));
        }
    };
    match t {
        Target::Webhook(w) => {
            push("url", check_url(&w.url));
            push("secret", check_secret(&w.secret));
        }
        Target::Smtp(s) => {
            push("server", check_host(&s.server));
            push(
                "port",
                if s.port == 0 {
                    Err("must be a port from 1 to 65535".to_owned())
                } else {
                    Ok(())
                },
            );
            push("from", check_address(&s.from));
            push(
                "to",
                if s.to.is_empty() {
                    Err("must name at least one recipient".to_owned())
                } else if s.to.len() > 50 {
                    Err("at most 50 recipients".to_owned())
                } else {
                    s.to.iter().try_for_each(|a| check_address(a))
                },
            );
            if let Some(u) = &s.username {
                push(
                    "username",
                    if u.is_empty() || u.len() > 256 {
                        Err("must be 1 to 256 characters".to_owned())
                    } else {
                        no_controls(u)
                    },
                );
            }
            if let Some(p) = &s.password_file {
                push("password-file", check_abs_path(p));
            }
            match (&s.username, &s.password_file) {
                (Some(_), None) => push(
                    "password-file",
                    Err("required with username (the password is read from this file)".into()),
                ),
                (None, Some(_)) => push("username", Err("required with password-file".to_owned())),
                _ => {}
            }
        }
        Target::Exec(e) => push(
            "command",
            match e.command.first() {
                None => Err("must name the program (an absolute path) and its arguments".into()),
                Some(_) if e.command.len() > 64 => Err("at most 64 arguments".to_owned()),
                Some(p) => check_abs_path(p)
                    .map_err(|_| {
                        format!(
                            "the program {p:?} must be an absolute path (no PATH lookup, no shell)"
                        )
                    })
                    .and_then(|()| {
                        e.command.iter().try_for_each(|a| {
                            if a.contains('\0') {
                                Err("an argument contains a NUL character".to_owned())
                            } else {
                                Ok(())
                            }
                        })
                    }),
            },
        ),
    }
    errs.into_result()
}

fn string_prop(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err("must be a string".to_owned()),
    }
}

fn list_prop(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(s
            .split([',', ' '])
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("must list {what} (strings)"))
            })
            .collect(),
        _ => Err(format!("must be a list of {what}")),
    }
}

/// Build a new target from a request's properties (`type`, `id` and the type's properties),
/// every field error listed. `command` must be an array (arguments may contain spaces).
pub fn new_target(mut props: BTreeMap<String, Value>) -> Result<(TargetId, Target), ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let id = match props.remove("id") {
        None => Err("required".to_owned()),
        Some(v) => string_prop(&v).and_then(|s| TargetId::new(s).map_err(|e| e.reason.to_owned())),
    };
    let id = id.map_err(|m| errs.0.push(ConfigError::new("id", m))).ok();
    let kind = match props.remove("type") {
        Some(Value::String(s)) if TARGET_TYPES.contains(&s.as_str()) => Some(s),
        other => {
            let m = format!("must be one of {}", TARGET_TYPES.join(", "));
            errs.0.push(ConfigError::new(
                "type",
                if other.is_none() {
                    format!("required; {m}")
                } else {
                    m
                },
            ));
            None
        }
    };
    let Some(kind) = kind else {
        return Err(errs);
    };
    let allowed = target_props(&kind);
    for name in props.keys() {
        if !allowed.contains(&name.as_str()) {
            errs.0.push(ConfigError::new(
                name.clone(),
                format!(
                    "unknown property of a {kind} target (it takes {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    for req in required_props(&kind) {
        if !props.contains_key(*req) {
            errs.0.push(ConfigError::new(*req, "required"));
        }
    }
    let mut take = |name: &str, parse: &dyn Fn(&Value) -> Result<Value, String>| -> Value {
        match props.get(name).map(parse) {
            Some(Ok(v)) => v,
            Some(Err(m)) => {
                errs.0.push(ConfigError::new(name, m));
                Value::Null
            }
            None => Value::Null,
        }
    };
    let s = |v: &Value| string_prop(v).map(Value::from);
    let target = match kind.as_str() {
        "webhook" => {
            let url = take("url", &s);
            let secret = take("secret", &s);
            Target::Webhook(Webhook {
                url: url.as_str().unwrap_or_default().to_owned(),
                secret: secret.as_str().unwrap_or_default().to_owned(),
            })
        }
        "smtp" => {
            let security = take("security", &|v| match v {
                Value::String(x) => SmtpSecurity::ALL
                    .iter()
                    .find(|s| s.as_str() == x)
                    .map(|s| Value::from(s.as_str()))
                    .ok_or_else(|| "must be none, starttls or tls".to_owned()),
                _ => Err("must be none, starttls or tls".to_owned()),
            });
            let security = SmtpSecurity::ALL
                .into_iter()
                .find(|s| Some(s.as_str()) == security.as_str())
                .unwrap_or(SmtpSecurity::Starttls);
            let port = take("port", &|v| {
                let n = match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.parse::<u64>().ok(),
                    _ => None,
                };
                match n {
                    Some(n @ 1..=65535) => Ok(Value::from(n)),
                    _ => Err("must be a port from 1 to 65535".to_owned()),
                }
            });
            let to = take("to", &|v| list_prop(v, "mail addresses").map(Value::from));
            let opt = |v: Value| v.as_str().map(str::to_owned);
            Target::Smtp(Smtp {
                server: take("server", &s).as_str().unwrap_or_default().to_owned(),
                port: port
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or_else(|| security.default_port()),
                security,
                from: take("from", &s).as_str().unwrap_or_default().to_owned(),
                to: to
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| opt(x.clone())).collect())
                    .unwrap_or_default(),
                username: opt(take("username", &s)),
                password_file: opt(take("password-file", &s)),
            })
        }
        _ => {
            let command = take("command", &|v| match v {
                Value::Array(_) => list_prop(v, "arguments").map(Value::from),
                _ => Err(
                    "must be an array: the program (an absolute path) and its arguments".to_owned(),
                ),
            });
            Target::Exec(Exec {
                command: command
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        }
    };
    // Check what was given; a missing or malformed property has its error already.
    if let Err(e) = check_target(&target) {
        for err in e.0 {
            if errs.for_field(&err.field).is_none() {
                errs.0.push(err);
            }
        }
    }
    errs.into_result()?;
    match id {
        Some(id) => Ok((id, target)),
        None => Err(ConfigErrors(vec![ConfigError::new("id", "required")])),
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum MessageKind {
    /// The LUN's cluster state changed (not to `optimal`).
    State,
    /// The LUN is `optimal` again.
    Recovered,
    /// The LUN is still `failed`.
    Reminder,
    /// The LUN is flapping: no message per change until it is stable.
    Flapping,
    /// A test message (`notify test`).
    Test,
}

impl MessageKind {
    /// Every kind.
    pub const ALL: [MessageKind; 5] = [
        MessageKind::State,
        MessageKind::Recovered,
        MessageKind::Reminder,
        MessageKind::Flapping,
        MessageKind::Test,
    ];

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::State => "state",
            MessageKind::Recovered => "recovered",
            MessageKind::Reminder => "reminder",
            MessageKind::Flapping => "flapping",
            MessageKind::Test => "test",
        }
    }
}

/// One node's part in a message: its cell before the first and after the last change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NodeChange {
    /// The node.
    #[cfg_attr(feature = "schema", schema(value_type = String))]
    pub node: NodeName,
    /// Its cell before (absent: it had none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<CellValue>,
    /// Its cell after (absent: it has none now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<CellValue>,
}

/// A notification. The webhook body and the exec hook's stdin are this as JSON; mail gets
/// `subject` and `text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct Message {
    /// Unique per message and target (`<message>-<target>`): a receiver that sees an id
    /// twice (a resend after a crash between sending and recording it) drops the second.
    pub id: String,
    /// What it is about.
    pub kind: MessageKind,
    /// When it was made (unix s).
    pub time: i64,
    /// The LUN (absent for a test message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
    pub wwid: Option<Wwid>,
    /// Its alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
    pub alias: Option<Alias>,
    /// The LUN's cluster state now (absent: it left the matrix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<MapState>,
    /// The state the previous message told (or the state before the change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<MapState>,
    /// Every node whose cell changed, with its cell before and after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeChange>,
    /// reminder: failed since; flapping: flapping since (unix s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// flapping: the changes in the current unstable run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<u32>,
    /// The root-cause hints naming this LUN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<Hint>,
    /// One line (the mail subject).
    pub subject: String,
    /// The message for people (the mail body).
    pub text: String,
}

impl Message {
    /// The same message as delivered to `target` (its delivery id).
    pub fn for_delivery(&self, delivery_id: &str) -> Message {
        let mut m = self.clone();
        m.id = delivery_id.to_owned();
        m.text = m.text.replace(&self.id, delivery_id);
        m
    }

    /// The JSON body (webhook, exec stdin).
    pub fn to_json(&self) -> String {
        // Our own plain data: encoding cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn lun_name(wwid: &Wwid, alias: Option<&Alias>) -> String {
    match alias {
        Some(a) => format!("{a} ({wwid})"),
        None => wwid.to_string(),
    }
}

fn state_name(s: Option<MapState>) -> &'static str {
    s.map_or("not in the matrix", MapState::as_str)
}

fn cell_name(c: Option<&CellValue>) -> String {
    c.map_or_else(|| "-".to_owned(), ToString::to_string)
}

/// The inputs of one message besides its kind.
struct Draft<'a> {
    id: String,
    time: i64,
    wwid: &'a Wwid,
    alias: Option<&'a Alias>,
    state: Option<MapState>,
    previous: Option<MapState>,
    nodes: Vec<NodeChange>,
    since: Option<i64>,
    changes: Option<u32>,
    hints: &'a [Hint],
    /// The flapping of this LUN just ended.
    settled: bool,
}

/// Render a message: subject, text, the hints naming its LUN.
fn render(kind: MessageKind, d: Draft<'_>) -> Message {
    let name = lun_name(d.wwid, d.alias);
    let state = state_name(d.state);
    let prev = state_name(d.previous);
    let node_names: Vec<&str> = d.nodes.iter().map(|n| n.node.as_str()).collect();
    let on = if node_names.is_empty() {
        String::new()
    } else {
        format!(" on {}", node_names.join(", "))
    };
    let subject = match kind {
        MessageKind::State if d.settled => {
            format!("[mpcluster] LUN {name} stopped flapping: {state}")
        }
        MessageKind::State => format!("[mpcluster] LUN {name} {state} (was {prev}){on}"),
        MessageKind::Recovered if d.settled => {
            format!("[mpcluster] LUN {name} stopped flapping: optimal again")
        }
        MessageKind::Recovered => format!("[mpcluster] LUN {name} optimal again (was {prev}){on}"),
        MessageKind::Reminder => format!("[mpcluster] LUN {name} still failed"),
        MessageKind::Flapping => format!("[mpcluster] LUN {name} is flapping (now {state})"),
        MessageKind::Test => "[mpcluster] test message".to_owned(),
    };
    let mut text = String::new();
    let when = crate::tokens::format_time(d.time);
    match kind {
        MessageKind::State | MessageKind::Recovered if d.settled => text.push_str(&format!(
            "LUN {name} stopped flapping and is {state} (stable since the last change).\n"
        )),
        MessageKind::State => {
            text.push_str(&format!("LUN {name} is {state} (was {prev}).\n"));
        }
        MessageKind::Recovered => {
            text.push_str(&format!("LUN {name} is optimal again (was {prev}).\n"));
        }
        MessageKind::Reminder => text.push_str(&format!(
            "LUN {name} is still failed (since {}).\n",
            d.since
                .map_or_else(|| "?".to_owned(), crate::tokens::format_time)
        )),
        MessageKind::Flapping => text.push_str(&format!(
            "LUN {name} is flapping: {} changes since {}; it is {state} now. No message per \
             change is sent until it has been stable for a while.\n",
            d.changes.unwrap_or(0),
            d.since
                .map_or_else(|| "?".to_owned(), crate::tokens::format_time)
        )),
        MessageKind::Test => {}
    }
    for n in &d.nodes {
        text.push_str(&format!(
            "  {}: {} -> {}\n",
            n.node,
            cell_name(n.before.as_ref()),
            cell_name(n.after.as_ref())
        ));
    }
    let hints: Vec<Hint> = d
        .hints
        .iter()
        .filter(|h| h.luns.contains(d.wwid))
        .cloned()
        .collect();
    for h in &hints {
        text.push_str(&format!("Hint ({}): {}\n", h.severity.as_str(), h.message));
    }
    text.push_str(&format!("Time: {when}\nMessage id: {}\n", d.id));
    Message {
        id: d.id,
        kind,
        time: d.time,
        wwid: Some(d.wwid.clone()),
        alias: d.alias.cloned(),
        state: d.state,
        previous: d.previous,
        nodes: d.nodes,
        since: d.since,
        changes: d.changes,
        hints,
        subject,
        text,
    }
}

/// A test message for target `target` at `now`.
pub fn test_message(target: &TargetId, now: i64) -> Message {
    let id = format!("test-{now}-{target}");
    Message {
        text: format!(
            "This is a test message from mpcluster to the notification target '{target}'.\n\
             Time: {}\nMessage id: {id}\n",
            crate::tokens::format_time(now)
        ),
        id,
        kind: MessageKind::Test,
        time: now,
        wwid: None,
        alias: None,
        state: None,
        previous: None,
        nodes: Vec::new(),
        since: None,
        changes: None,
        hints: Vec::new(),
        subject: "[mpcluster] test message".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// The outbox

/// When messages are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifySettings {
    /// Changes of one LUN within this many seconds of the first are one message (10 s).
    pub group_window: i64,
    /// A LUN that stays failed is reminded of this often (4 h).
    pub reminder: i64,
    /// When a LUN counts as flapping (4 changes in 600 s).
    pub flap: FlapRule,
    /// A delivery that keeps failing is dropped after this many seconds (24 h).
    pub give_up: i64,
    /// The first retry after this many seconds, doubling (2 s) ...
    pub retry_first: i64,
    /// ... up to this (300 s).
    pub retry_max: i64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            group_window: 10,
            reminder: 4 * 3600,
            flap: FlapRule::default(),
            give_up: 24 * 3600,
            retry_first: 2,
            retry_max: 300,
        }
    }
}

/// The pause before the next try after `attempts` failed ones: `first`, doubling, at most
/// `max`.
pub fn retry_delay(attempts: u32, settings: &NotifySettings) -> i64 {
    let doublings = attempts.saturating_sub(1).min(30);
    settings
        .retry_first
        .max(1)
        .saturating_mul(1i64 << doublings)
        .min(settings.retry_max.max(1))
}

/// Changes of one LUN not yet due as a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The first change's time: the group is due at `first + group_window`.
    pub first: i64,
    /// The last change's time.
    pub last: i64,
    /// The cluster state before the first change (absent: the LUN was not in the matrix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<MapState>,
    /// The cluster state after the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<MapState>,
    /// The alias at the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<Alias>,
    /// Per node: the cell before its first and after its last change.
    #[serde(default)]
    pub nodes: BTreeMap<NodeName, (Option<CellValue>, Option<CellValue>)>,
}

/// What was last told about one LUN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LunNotified {
    /// The cluster state the last message told (absent: none was sent, the LUN was optimal
    /// or not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<MapState>,
    /// When the last message about it was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent: Option<i64>,
    /// Since when it is failed (as told).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_since: Option<i64>,
    /// A flapping message was sent and the LUN has not been stable since.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flapping: bool,
    /// Changes not yet due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Group>,
}

/// A delivery being sent: by whom, until when (then another server may take it over).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The sending server.
    pub holder: String,
    /// Until (unix s).
    pub until: i64,
}

/// One message to one target, not yet sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Unique: `<message id>-<target>`.
    pub id: String,
    /// Where to.
    pub target: TargetId,
    /// The message (its `id` is the delivery id).
    pub message: Message,
    /// Failed tries so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not before (unix s).
    #[serde(rename = "next-try")]
    pub next_try: i64,
    /// When it was made (unix s).
    pub created: i64,
    /// The last failure.
    #[serde(
        rename = "last-error",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_error: Option<String>,
    /// Being sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
}

/// The notification outbox (the stored document `notify-outbox`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    /// [`OUTBOX_FORMAT`].
    pub format: u32,
    /// The last event sequence number processed (absent: not started; the first [`advance`]
    /// starts at the log's end, history is not notified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    /// The number of the next message.
    #[serde(rename = "next-message", default)]
    pub next_message: u64,
    /// Per LUN (only LUNs with something to remember).
    #[serde(default)]
    pub luns: BTreeMap<Wwid, LunNotified>,
    /// Pending deliveries, oldest first.
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            format: OUTBOX_FORMAT,
            cursor: None,
            next_message: 1,
            luns: BTreeMap::new(),
            deliveries: Vec::new(),
        }
    }
}

/// The stored outbox cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Written by a newer mpcluster.
    #[error(
        "the notification outbox has format {found}, this mpcluster reads format \
         {OUTBOX_FORMAT}: upgrade this node"
    )]
    NewerFormat {
        /// The format found.
        found: u32,
    },
    /// Not JSON of the expected shape.
    #[error("the notification outbox is unreadable")]
    Unreadable(#[source] serde_json::Error),
}

/// What [`advance`] looks at besides the outbox.
#[derive(Debug, Clone, Copy)]
pub struct AdvanceInput<'a> {
    /// New events, in sequence order (those at or below the cursor are skipped).
    pub events: &'a [Event],
    /// The log's last sequence number (where a new outbox starts).
    pub last_seq: u64,
    /// The matrix now.
    pub luns: &'a [LunStatus],
    /// The root-cause hints now.
    pub hints: &'a [Hint],
    /// The LUNs and cells flapping now ([`crate::events::flapping`]).
    pub flaps: &'a [Flap],
    /// The configured targets: each new message gets one delivery per target.
    pub targets: &'a [TargetId],
    /// Now (unix s).
    pub now: i64,
    /// The settings.
    pub settings: &'a NotifySettings,
}

/// The result of sending one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Sent: removed.
    Sent,
    /// Failed: retried at the given time.
    Retry(i64),
    /// Failed for longer than [`NotifySettings::give_up`]: dropped.
    GaveUp,
    /// Not in the outbox (settled by someone else).
    Unknown,
}

impl Outbox {
    /// Decode a stored outbox.
    pub fn decode(text: &str) -> Result<Outbox, OutboxError> {
        #[derive(Deserialize)]
        struct Probe {
            format: u32,
        }
        let probe: Probe = serde_json::from_str(text).map_err(OutboxError::Unreadable)?;
        if probe.format > OUTBOX_FORMAT {
            return Err(OutboxError::NewerFormat {
                found: probe.format,
            });
        }
        serde_json::from_str(text).map_err(OutboxError::Unreadable)
    }

    /// Encode for storing.
    pub fn encode(&self) -> String {
        // Our own plain data: encoding cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Claim at most `max` deliveries due at `now` (oldest first; not claimed by someone
    /// else, or whose claim ran out) for `holder` until `until`; returns them. Deliveries to
    /// targets not in `targets` (removed meanwhile) are dropped.
    pub fn claim_due(
        &mut self,
        holder: &str,
        now: i64,
        until: i64,
        targets: &[TargetId],
        max: usize,
    ) -> Vec<Delivery> {
        self.deliveries.retain(|d| targets.contains(&d.target));
        let mut out = Vec::new();
        for d in &mut self.deliveries {
            if out.len() >= max {
                break;
            }
            let free = d
                .claim
                .as_ref()
                .is_none_or(|c| c.holder == holder || c.until <= now);
            if d.next_try <= now && free {
                d.claim = Some(Claim {
                    holder: holder.to_owned(),
                    until,
                });
                out.push(d.clone());
            }
        }
        out
    }

    /// Record the result of sending delivery `id` at `now`.
    pub fn settle(
        &mut self,
        id: &str,
        result: Result<(), String>,
        now: i64,
        settings: &NotifySettings,
    ) -> Settled {
        let Some(i) = self.deliveries.iter().position(|d| d.id == id) else {
            return Settled::Unknown;
        };
        match result {
            Ok(()) => {
                self.deliveries.remove(i);
                Settled::Sent
            }
            Err(e) => {
                let d = &mut self.deliveries[i];
                d.attempts += 1;
                d.claim = None;
                d.last_error = Some(e.chars().take(500).collect());
                if now - d.created >= settings.give_up {
                    self.deliveries.remove(i);
                    return Settled::GaveUp;
                }
                d.next_try = now + retry_delay(d.attempts, settings);
                Settled::Retry(d.next_try)
            }
        }
    }
}

/// Move the outbox forward: take the new events into the groups, close the groups that are
/// due, start and end flapping, send reminders; every new message becomes one delivery per
/// target. Returns the new messages (also queued).
pub fn advance(outbox: &mut Outbox, input: &AdvanceInput<'_>) -> Vec<Message> {
    let s = input.settings;
    let now = input.now;
    let current: BTreeMap<&Wwid, &LunStatus> = input.luns.iter().map(|l| (&l.wwid, l)).collect();
    let mut messages = Vec::new();

    let Some(cursor) = outbox.cursor else {
        // Not started: begin at the log's end. A LUN that is failed now is not announced,
        // but reminded of. Other states are not taken from the matrix: it may be older or
        // newer than the log's end, and the next change's event says what it was before.
        outbox.cursor = Some(input.last_seq);
        for l in input.luns {
            if l.cluster_state == MapState::Failed {
                outbox.luns.insert(
                    l.wwid.clone(),
                    LunNotified {
                        state: Some(MapState::Failed),
                        last_sent: Some(now),
                        failed_since: Some(now),
                        ..LunNotified::default()
                    },
                );
            }
        }
        return messages;
    };

    let flapping_luns: BTreeMap<&Wwid, &Flap> = input
        .flaps
        .iter()
        .filter(|f| f.node.is_none())
        .map(|f| (&f.wwid, f))
        .collect();

    let mut new_cursor = cursor;
    for e in input.events {
        if e.seq <= cursor {
            continue;
        }
        new_cursor = new_cursor.max(e.seq);
        let (wwid, alias) = match &e.kind {
            EventKind::Lun { wwid, alias, .. } | EventKind::Cell { wwid, alias, .. } => {
                (wwid, alias)
            }
            EventKind::Config { .. } => continue,
        };
        let lun = outbox.luns.entry(wwid.clone()).or_default();
        if lun.flapping {
            continue;
        }
        // A change past the open group's window closes it first.
        if lun
            .group
            .as_ref()
            .is_some_and(|g| e.time >= g.first + s.group_window)
            && let Some(m) = close_group(&mut outbox.next_message, wwid, lun, &current, input)
        {
            messages.push(m);
        }
        match &e.kind {
            EventKind::Lun { before, after, .. } => match &mut lun.group {
                Some(g) => {
                    g.after = *after;
                    g.last = e.time;
                    g.alias = alias.clone();
                }
                None => {
                    lun.group = Some(Group {
                        first: e.time,
                        last: e.time,
                        before: *before,
                        after: *after,
                        alias: alias.clone(),
                        nodes: BTreeMap::new(),
                    });
                }
            },
            EventKind::Cell {
                node,
                before,
                after,
                ..
            } => {
                // Cell changes only name the nodes of a LUN state change.
                if let Some(g) = &mut lun.group {
                    g.last = e.time;
                    g.nodes
                        .entry(node.clone())
                        .and_modify(|(_, a)| *a = *after)
                        .or_insert((*before, *after));
                }
            }
            EventKind::Config { .. } => {}
        }
    }
    outbox.cursor = Some(new_cursor);

    // Flapping starts: one message, the open group is dropped.
    for (wwid, flap) in &flapping_luns {
        let lun = outbox.luns.entry((*wwid).clone()).or_default();
        if lun.flapping {
            continue;
        }
        lun.group = None;
        lun.flapping = true;
        let now_lun = current.get(wwid);
        let state = now_lun.map(|l| l.cluster_state);
        let id = next_id(&mut outbox.next_message, now);
        let m = render(
            MessageKind::Flapping,
            Draft {
                id,
                time: now,
                wwid,
                alias: now_lun.and_then(|l| l.alias.as_ref()),
                state,
                previous: lun.state,
                nodes: Vec::new(),
                since: Some(flap.since),
                changes: Some(flap.changes),
                hints: input.hints,
                settled: false,
            },
        );
        lun.state = state;
        lun.last_sent = Some(now);
        messages.push(m);
    }
    // Flapping ends: one message with the state it settled in.
    let wwids: Vec<Wwid> = outbox.luns.keys().cloned().collect();
    for wwid in &wwids {
        let Some(lun) = outbox.luns.get_mut(wwid) else {
            continue;
        };
        if lun.flapping && !flapping_luns.contains_key(wwid) {
            lun.flapping = false;
            lun.group = None;
            let now_lun = current.get(wwid);
            let state = now_lun.map(|l| l.cluster_state);
            let kind = if state == Some(MapState::Optimal) {
                MessageKind::Recovered
            } else {
                MessageKind::State
            };
            let id = next_id(&mut outbox.next_message, now);
            messages.push(render(
                kind,
                Draft {
                    id,
                    time: now,
                    wwid,
                    alias: now_lun.and_then(|l| l.alias.as_ref()),
                    state,
                    previous: lun.state,
                    nodes: Vec::new(),
                    since: None,
                    changes: None,
                    hints: input.hints,
                    settled: true,
                },
            ));
            lun.failed_since = (state == Some(MapState::Failed)).then_some(now);
            lun.state = state;
            lun.last_sent = Some(now);
        }
    }
    // Groups that are due.
    for wwid in &wwids {
        let Some(lun) = outbox.luns.get_mut(wwid) else {
            continue;
        };
        if lun
            .group
            .as_ref()
            .is_some_and(|g| now >= g.first + s.group_window)
            && let Some(m) = close_group(&mut outbox.next_message, wwid, lun, &current, input)
        {
            messages.push(m);
        }
    }
    // Reminders for LUNs that stay failed.
    for wwid in &wwids {
        let Some(lun) = outbox.luns.get_mut(wwid) else {
            continue;
        };
        let still_failed = current
            .get(wwid)
            .is_some_and(|l| l.cluster_state == MapState::Failed);
        if lun.state == Some(MapState::Failed)
            && still_failed
            && !lun.flapping
            && lun.group.is_none()
            && lun.last_sent.is_none_or(|t| now - t >= s.reminder)
        {
            let l = current.get(wwid);
            let id = next_id(&mut outbox.next_message, now);
            messages.push(render(
                MessageKind::Reminder,
                Draft {
                    id,
                    time: now,
                    wwid,
                    alias: l.and_then(|l| l.alias.as_ref()),
                    state: Some(MapState::Failed),
                    previous: Some(MapState::Failed),
                    nodes: Vec::new(),
                    since: lun.failed_since,
                    changes: None,
                    hints: input.hints,
                    settled: false,
                },
            ));
            lun.last_sent = Some(now);
        }
    }
    // Forget LUNs with nothing to remember (optimal or gone, nothing open).
    outbox.luns.retain(|w, l| {
        l.flapping
            || l.group.is_some()
            || (current.contains_key(w) && l.state.is_some_and(|s| s != MapState::Optimal))
    });
    for m in &messages {
        for t in input.targets {
            let id = format!("{}-{t}", m.id);
            outbox.deliveries.push(Delivery {
                message: m.for_delivery(&id),
                id,
                target: t.clone(),
                attempts: 0,
                next_try: now,
                created: now,
                last_error: None,
                claim: None,
            });
        }
    }
    messages
}

fn next_id(counter: &mut u64, now: i64) -> String {
    let id = format!("{counter}-{now}");
    *counter += 1;
    id
}

/// Close `lun`'s open group: a message when the state differs from what was told (or, never
/// told, from the state before the group).
fn close_group(
    counter: &mut u64,
    wwid: &Wwid,
    lun: &mut LunNotified,
    current: &BTreeMap<&Wwid, &LunStatus>,
    input: &AdvanceInput<'_>,
) -> Option<Message> {
    let g = lun.group.take()?;
    let baseline = lun.state.or(g.before);
    let after = g.after;
    let told = lun.state;
    lun.state = after;
    if after == baseline || after.is_none() {
        // A blip that cancelled out, or the LUN left the matrix (a configuration change).
        if after != Some(MapState::Failed) {
            lun.failed_since = None;
        }
        return None;
    }
    if after == Some(MapState::Optimal) && told.is_none() {
        // Optimal, and nobody was told otherwise: a new LUN, one whose first information came
        // in (unknown at a server's start), one that was not optimal before the notifier
        // started.
        return None;
    }
    let kind = if after == Some(MapState::Optimal) {
        MessageKind::Recovered
    } else {
        MessageKind::State
    };
    lun.failed_since = (after == Some(MapState::Failed)).then_some(g.last);
    lun.last_sent = Some(input.now);
    let alias = g
        .alias
        .as_ref()
        .or_else(|| current.get(wwid).and_then(|l| l.alias.as_ref()));
    let id = next_id(counter, input.now);
    Some(render(
        kind,
        Draft {
            id,
            time: input.now,
            wwid,
            alias,
            state: after,
            previous: baseline,
            nodes: g
                .nodes
                .iter()
                .map(|(n, (b, a))| NodeChange {
                    node: n.clone(),
                    before: *b,
                    after: *a,
                })
                .filter(|n| n.before != n.after)
                .collect(),
            since: None,
            changes: None,
            hints: input.hints,
            settled: false,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use crate::events::{EventLog, flapping};
    use crate::hints::{HintKind, Severity};
    use crate::rollup::Cell;
    use serde_json::json;

    const W: &str = "3600a098038303053453f463045727a01";

    fn wwid() -> Wwid {
        W.parse().unwrap()
    }
    fn node(n: &str) -> NodeName {
        n.parse().unwrap()
    }
    fn cell(state: MapState, a: u64) -> Cell {
        let mut c = Cell::bare(state);
        c.paths_active = Some(Some(a));
        c.paths_total = Some(Some(2));
        c
    }

    /// A LUN on nodes a and b, an event log, an outbox.
    struct Sim {
        cells: BTreeMap<NodeName, Cell>,
        state: MapState,
        log: EventLog,
        outbox: Outbox,
        settings: NotifySettings,
        hints: Vec<Hint>,
        recorded: Option<crate::events::Recorded>,
    }

    impl Sim {
        fn new() -> Sim {
            let mut sim = Sim {
                cells: [
                    (node("a"), cell(MapState::Optimal, 2)),
                    (node("b"), cell(MapState::Optimal, 2)),
                ]
                .into(),
                state: MapState::Optimal,
                log: EventLog::default(),
                outbox: Outbox::default(),
                settings: NotifySettings {
                    group_window: 10,
                    reminder: 100,
                    flap: FlapRule {
                        changes: 4,
                        window: 60,
                    },
                    ..NotifySettings::default()
                },
                hints: Vec::new(),
                recorded: None,
            };
            sim.observe(0);
            sim
        }

        fn luns(&self) -> Vec<LunStatus> {
            vec![LunStatus {
                wwid: wwid(),
                alias: Some("data".parse().unwrap()),
                used_by: None,
                size: None,
                cluster_state: self.state,
                nodes: self.cells.clone(),
            }]
        }

        /// Record the matrix as the recorder does.
        fn observe(&mut self, time: i64) {
            let (kinds, next) = crate::events::observe(self.recorded.as_ref(), &self.luns());
            self.recorded = Some(next);
            self.log.append(time, kinds);
        }

        /// Set node cells (`node`, state, usable paths) and the LUN state at `time`.
        fn change(&mut self, time: i64, lun: MapState, cells: &[(&str, MapState, u64)]) {
            self.state = lun;
            for (n, s, a) in cells {
                self.cells.insert(node(n), cell(*s, *a));
            }
            self.observe(time);
        }

        fn tick(&mut self, now: i64) -> Vec<String> {
            let flaps = flapping(&self.log.recent, now, self.settings.flap);
            let luns = self.luns();
            let targets = [TargetId::new("hook").unwrap()];
            let msgs = advance(
                &mut self.outbox,
                &AdvanceInput {
                    events: &self.log.recent,
                    last_seq: self.log.next_seq - 1,
                    luns: &luns,
                    hints: &self.hints,
                    flaps: &flaps,
                    targets: &targets,
                    now,
                    settings: &self.settings,
                },
            );
            // Round-trip through the stored form every time.
            self.outbox = Outbox::decode(&self.outbox.encode()).unwrap();
            msgs.iter()
                .map(|m| {
                    let nodes: Vec<&str> = m.nodes.iter().map(|n| n.node.as_str()).collect();
                    format!(
                        "{} {} (was {}) [{}]",
                        m.kind.as_str(),
                        state_name(m.state),
                        state_name(m.previous),
                        nodes.join(",")
                    )
                })
                .collect()
        }
    }

    use MapState::{Degraded as D, Failed as F, Optimal as O};

    /// What happens at each time, and the messages the tick at that time must give.
    enum Step {
        Change(MapState, &'static [(&'static str, MapState, u64)]),
        Tick,
    }

    #[test]
    fn scripted_timeline() {
        let table: &[(i64, Step, &[&str])] = &[
            // Degrade on a, then b within the window: one message naming both.
            (100, Step::Change(D, &[("a", D, 1)]), &[]),
            (100, Step::Tick, &[]),
            (105, Step::Change(D, &[("b", D, 1)]), &[]),
            (105, Step::Tick, &[]),
            (109, Step::Tick, &[]),
            (110, Step::Tick, &["state degraded (was optimal) [a,b]"]),
            // A path count change alone sends nothing.
            (150, Step::Change(D, &[("b", D, 0)]), &[]),
            (170, Step::Tick, &[]),
            // Fail.
            (200, Step::Change(F, &[("a", F, 0)]), &[]),
            (210, Step::Tick, &["state failed (was degraded) [a]"]),
            // Reminders every 100 s while failed.
            (300, Step::Tick, &[]),
            (310, Step::Tick, &["reminder failed (was failed) []"]),
            (350, Step::Tick, &[]),
            (410, Step::Tick, &["reminder failed (was failed) []"]),
            // Recover.
            (450, Step::Change(O, &[("a", O, 2), ("b", O, 2)]), &[]),
            (460, Step::Tick, &["recovered optimal (was failed) [a,b]"]),
            // A blip within the window sends nothing; nor do reminders come now.
            (600, Step::Change(D, &[("a", D, 1)]), &[]),
            (603, Step::Change(O, &[("a", O, 2)]), &[]),
            (620, Step::Tick, &[]),
            // Flap, slower than the window: messages until the 4th change in 60 s ...
            (700, Step::Change(D, &[("a", D, 1)]), &[]),
            (710, Step::Tick, &["state degraded (was optimal) [a]"]),
            (715, Step::Change(O, &[("a", O, 2)]), &[]),
            (725, Step::Tick, &["recovered optimal (was degraded) [a]"]),
            (730, Step::Change(D, &[("a", D, 1)]), &[]),
            (740, Step::Tick, &["state degraded (was optimal) [a]"]),
            // ... then one flapping message and nothing per change.
            (745, Step::Change(O, &[("a", O, 2)]), &[]),
            (745, Step::Tick, &["flapping optimal (was degraded) []"]),
            (760, Step::Change(F, &[("a", F, 0)]), &[]),
            (775, Step::Tick, &[]),
            (780, Step::Change(O, &[("a", O, 2)]), &[]),
            (800, Step::Tick, &[]),
            (839, Step::Tick, &[]),
            // Stable for the flap window: one message, the state it settled in.
            (840, Step::Tick, &["recovered optimal (was optimal) []"]),
            (900, Step::Tick, &[]),
        ];
        let mut sim = Sim::new();
        assert!(
            sim.tick(0).is_empty(),
            "the first tick starts at the log's end"
        );
        for (t, step, want) in table {
            let got = match step {
                Step::Change(lun, cells) => {
                    sim.change(*t, *lun, cells);
                    Vec::new()
                }
                Step::Tick => sim.tick(*t),
            };
            assert_eq!(&got, want, "at {t}");
        }
        // One delivery per message (one target), unique ids, the outbox forgot the LUN.
        let ids: BTreeSet<&str> = sim
            .outbox
            .deliveries
            .iter()
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(ids.len(), sim.outbox.deliveries.len());
        assert_eq!(sim.outbox.deliveries.len(), 10);
        assert!(sim.outbox.luns.is_empty(), "{:?}", sim.outbox.luns);
        assert_eq!(sim.outbox.cursor, Some(sim.log.next_seq - 1));
        // Claimed oldest first, at most as many as asked for.
        let hook = TargetId::new("hook").unwrap();
        let first: Vec<String> = sim.outbox.deliveries[..3]
            .iter()
            .map(|d| d.id.clone())
            .collect();
        let claimed = sim
            .outbox
            .claim_due("s1", 900, 930, std::slice::from_ref(&hook), 3);
        assert_eq!(
            claimed.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
            first
        );
        assert_eq!(
            sim.outbox
                .deliveries
                .iter()
                .filter(|d| d.claim.is_some())
                .count(),
            3
        );
    }

    #[test]
    fn a_failed_lun_at_start_is_reminded_not_announced() {
        let mut sim = Sim::new();
        sim.change(5, F, &[("a", F, 0)]);
        assert!(sim.tick(10).is_empty());
        assert!(sim.tick(109).is_empty());
        assert_eq!(sim.tick(110), vec!["reminder failed (was failed) []"]);
    }

    #[test]
    fn optimal_again_is_told_only_to_who_heard_otherwise() {
        // A LUN without information when the notifier starts, then optimal: nothing.
        let mut sim = Sim::new();
        sim.change(1, MapState::Unknown, &[("a", MapState::Unknown, 0)]);
        assert!(sim.tick(2).is_empty());
        sim.change(3, O, &[("a", O, 2)]);
        assert!(sim.tick(20).is_empty());
        // Unknown for a moment, then degraded within the window: told against what it was
        // before the first change.
        sim.change(100, MapState::Unknown, &[("a", MapState::Unknown, 0)]);
        sim.change(102, O, &[("a", O, 2)]);
        sim.change(103, D, &[("a", D, 1)]);
        assert_eq!(
            sim.tick(110),
            vec!["state degraded (was optimal) [a]".to_owned()]
        );
    }

    #[test]
    fn messages_carry_the_hints_naming_their_lun_and_render() {
        let mut sim = Sim::new();
        sim.tick(0);
        let hint = |luns: Vec<Wwid>, msg: &str| Hint {
            id: format!("target-side:{msg}"),
            kind: HintKind::TargetSide,
            severity: Severity::Critical,
            nodes: vec![node("a"), node("b")],
            luns,
            target_port: Some("10.0.0.1:3260".into()),
            port_kind: None,
            target: None,
            host_adapters: Vec::new(),
            since: 90,
            message: msg.to_owned(),
        };
        sim.hints = vec![
            hint(
                vec![wwid()],
                "target port 10.0.0.1:3260 is down on every node",
            ),
            hint(
                vec!["3600a098038303053453f463045727a09".parse().unwrap()],
                "another LUN",
            ),
        ];
        sim.change(100, D, &[("a", D, 1), ("b", D, 1)]);
        sim.tick(110);
        let d = &sim.outbox.deliveries[0];
        let m = &d.message;
        assert_eq!(d.id, "1-110-hook");
        assert_eq!(m.id, d.id);
        assert_eq!(m.hints.len(), 1);
        assert_eq!(
            m.subject,
            format!("[mpcluster] LUN data ({W}) degraded (was optimal) on a, b")
        );
        assert_eq!(
            m.text,
            format!(
                "LUN data ({W}) is degraded (was optimal).\n  a: optimal 2/2 -> degraded 1/2\n  \
                 b: optimal 2/2 -> degraded 1/2\nHint (critical): target port 10.0.0.1:3260 is \
                 down on every node\nTime: 1970-01-01 00:01:50 UTC\nMessage id: 1-110-hook\n"
            )
        );
        let v: Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(v["kind"], "state");
        assert_eq!(v["state"], "degraded");
        assert_eq!(v["previous"], "optimal");
        assert_eq!(v["wwid"], W);
        assert_eq!(v["alias"], "data");
        assert_eq!(
            v["nodes"][0],
            json!({"node": "a", "before": {"state": "optimal", "paths-active": 2, "paths-total": 2}, "after": {"state": "degraded", "paths-active": 1, "paths-total": 2}})
        );
        assert_eq!(v["hints"][0]["kind"], "target-side");
    }

    #[test]
    fn claims_retries_and_giving_up() {
        let s = NotifySettings::default();
        assert_eq!(
            (1..=10).map(|a| retry_delay(a, &s)).collect::<Vec<_>>(),
            vec![2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
        );
        let mut sim = Sim::new();
        sim.tick(0);
        sim.change(100, F, &[("a", F, 0)]);
        sim.tick(110);
        let hook = TargetId::new("hook").unwrap();
        let mut ob = sim.outbox.clone();
        let id = ob.deliveries[0].id.clone();
        // Claimed by one server: not by another until the claim runs out.
        assert_eq!(
            ob.claim_due("s1", 110, 140, std::slice::from_ref(&hook), 8)
                .len(),
            1
        );
        assert!(
            ob.claim_due("s2", 139, 170, std::slice::from_ref(&hook), 8)
                .is_empty()
        );
        assert_eq!(
            ob.claim_due("s2", 140, 170, std::slice::from_ref(&hook), 8)
                .len(),
            1
        );
        // A failure: retried later, the claim released.
        assert_eq!(
            ob.settle(&id, Err("connection refused".into()), 141, &s),
            Settled::Retry(143)
        );
        assert!(
            ob.claim_due("s1", 142, 170, std::slice::from_ref(&hook), 8)
                .is_empty()
        );
        assert_eq!(
            ob.claim_due("s1", 143, 170, std::slice::from_ref(&hook), 8)
                .len(),
            1
        );
        assert_eq!(ob.settle(&id, Ok(()), 144, &s), Settled::Sent);
        assert!(ob.deliveries.is_empty());
        assert_eq!(ob.settle(&id, Ok(()), 145, &s), Settled::Unknown);
        // Failing for a day: dropped.
        let mut ob = sim.outbox.clone();
        assert_eq!(
            ob.settle(&id, Err("x".into()), 110 + 86_400, &s),
            Settled::GaveUp
        );
        assert!(ob.deliveries.is_empty());
        // A removed target's deliveries go.
        let mut ob = sim.outbox.clone();
        assert!(ob.claim_due("s1", 200, 230, &[], 8).is_empty());
        assert!(ob.deliveries.is_empty());
    }

    fn props(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn targets_are_validated_with_every_error_at_once() {
        let good_cases = [
            json!({"type": "webhook", "id": "ops", "url": "https://hooks.example/x", "secret": "0123456789abcdef"}),
            json!({"type": "smtp", "id": "mail-1", "server": "mail.example", "from": "mp@example.org", "to": "a@example.org, b@example.org", "security": "tls"}),
            json!({"type": "smtp", "id": "m2", "server": "127.0.0.1", "port": 2525, "security": "none", "from": "a@b", "to": ["c@d"], "username": "u", "password-file": "/etc/mpcluster/smtp.pw"}),
            json!({"type": "exec", "id": "x", "command": ["/usr/local/bin/page", "--team", "storage ops"]}),
        ];
        for c in good_cases {
            let (id, t) = new_target(props(c.clone())).unwrap_or_else(|e| panic!("{c}: {e}"));
            check_target(&t).unwrap();
            assert!(!id.as_str().is_empty());
        }
        let (_, t) = new_target(props(good_cases_smtp())).unwrap();
        let Target::Smtp(s) = t else { panic!() };
        assert_eq!((s.port, s.to.len()), (465, 2));

        let bad: &[(Value, &[(&str, &str)])] = &[
            (
                json!({}),
                &[
                    ("id", "required"),
                    ("type", "required; must be one of webhook, smtp, exec"),
                ],
            ),
            (
                json!({"type": "webhook", "id": "Ops!", "url": "ftp://x", "secret": "short", "extra": 1}),
                &[
                    ("id", "only lowercase letters, digits and '-' are allowed"),
                    (
                        "extra",
                        "unknown property of a webhook target (it takes url, secret)",
                    ),
                    ("url", "must be an http:// or https:// URL"),
                    (
                        "secret",
                        "must be at least 16 characters (it is the HMAC-SHA256 key)",
                    ),
                ],
            ),
            (
                json!({"type": "smtp", "id": "m", "server": "mail example", "port": 0, "security": "ssl", "from": "nobody", "to": [], "username": "u"}),
                &[
                    ("security", "must be none, starttls or tls"),
                    ("port", "must be a port from 1 to 65535"),
                    (
                        "server",
                        "must be a host name or an IP address (letters, digits, '.', '-', ':')",
                    ),
                    ("from", "\"nobody\" is not a mail address (user@domain)"),
                    ("to", "must name at least one recipient"),
                    (
                        "password-file",
                        "required with username (the password is read from this file)",
                    ),
                ],
            ),
            (
                json!({"type": "exec", "id": "x", "command": "page --now"}),
                &[(
                    "command",
                    "must be an array: the program (an absolute path) and its arguments",
                )],
            ),
            (
                json!({"type": "exec", "id": "x", "command": ["page"]}),
                &[(
                    "command",
                    "the program \"page\" must be an absolute path (no PATH lookup, no shell)",
                )],
            ),
            (
                json!({"type": "webhook", "id": "w"}),
                &[("url", "required"), ("secret", "required")],
            ),
        ];
        for (input, want) in bad {
            let errs = new_target(props(input.clone())).unwrap_err();
            let got: Vec<(&str, &str)> = errs
                .0
                .iter()
                .map(|e| (e.field.as_str(), e.message.as_str()))
                .collect();
            let mut got_sorted = got.clone();
            got_sorted.sort();
            let mut want_sorted = want.to_vec();
            want_sorted.sort();
            assert_eq!(got_sorted, want_sorted, "{input}");
        }
    }

    fn good_cases_smtp() -> Value {
        json!({"type": "smtp", "id": "mail-1", "server": "mail.example", "from": "mp@example.org", "to": "a@example.org, b@example.org", "security": "tls"})
    }

    #[test]
    fn views_never_show_the_secret_and_documents_round_trip() {
        let (id, t) = new_target(props(json!({"type": "webhook", "id": "ops", "url": "https://h/x", "secret": "0123456789abcdef-secret"}))).unwrap();
        let v = serde_json::to_string(&TargetView::of(&id, &t)).unwrap();
        assert!(!v.contains("0123456789abcdef"), "{v}");
        assert!(v.contains(r#""secret":"set""#), "{v}");
        let mut doc = TargetsDoc::default();
        doc.targets.insert(id, t);
        assert_eq!(TargetsDoc::from_json(&doc.to_json()).unwrap(), doc);
        let err = TargetsDoc::from_json(r#"{"version": 2}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the notification targets have version 2, this mpcluster reads version 1: upgrade this node"
        );
        let err = TargetsDoc::from_json(
            r#"{"version": 1, "targets": {"x": {"type": "exec", "command": ["rel"]}}}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the stored notification target 'x' is invalid"),
            "{err}"
        );
        let err = Outbox::decode(r#"{"format": 9}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the notification outbox has format 9, this mpcluster reads format 1: upgrade this node"
        );
    }
}
