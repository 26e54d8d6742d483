//! The clap arguments of `mpcluster notify` (the command itself: `crate::cmd::notify`).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::status::Format;
use super::store_args::StoreArgs;

/// Arguments of `mpcluster notify`.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    #[command(subcommand)]
    pub command: NotifyCommand,
}

/// `mpcluster notify` subcommands.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Add a notification target: a webhook, mail over SMTP, or an exec hook.
    #[command(subcommand)]
    Add(AddCommand),
    /// List the notification targets (a webhook's secret shows as "set").
    List(ListArgs),
    /// Remove a notification target (its pending messages are dropped).
    Remove(IdArgs),
    /// Send a test message to a target now, from this node, and say whether it was accepted.
    Test(IdArgs),
}

/// `mpcluster notify add` target types.
#[derive(Debug, Subcommand)]
pub enum AddCommand {
    /// A webhook: every message POSTed as JSON, signed with HMAC-SHA256
    /// (`X-Mpcluster-Signature: sha256=<hex>`).
    Webhook(WebhookArgs),
    /// Mail over SMTP.
    Smtp(SmtpArgs),
    /// A program run with the message as JSON on stdin: `notify add exec ID -- /path/prog ARGS...`.
    Exec(ExecArgs),
}

/// Arguments of `mpcluster notify add webhook`.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The target id: lowercase letters, digits and '-' (at most 32).
    #[arg(value_name = "ID")]
    pub id: String,
    /// The URL (http:// or https://).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// File holding the HMAC-SHA256 key (at least 16 characters; never given on the command
    /// line, never shown back).
    #[arg(long, value_name = "FILE")]
    pub secret_file: PathBuf,
}

/// How the SMTP connection is protected (`--security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Security {
    /// Plain SMTP (a relay on this host or a trusted network only).
    None,
    /// STARTTLS, required (port 587 by default).
    Starttls,
    /// TLS from the start (SMTPS, port 465 by default).
    Tls,
}

/// Arguments of `mpcluster notify add smtp`.
#[derive(Debug, Args)]
pub struct SmtpArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The target id: lowercase letters, digits and '-' (at most 32).
    #[arg(value_name = "ID")]
    pub id: String,
    /// The SMTP server's host name or address.
    #[arg(long, value_name = "HOST")]
    pub server: String,
    /// Its port (default: 25, 587 or 465 by --security).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// How the connection is protected.
    #[arg(long, value_enum, default_value_t = Security::Starttls)]
    pub security: Security,
    /// The sender address.
    #[arg(long, value_name = "ADDRESS")]
    pub from: String,
    /// A recipient (repeat for more).
    #[arg(long, value_name = "ADDRESS", required = true)]
    pub to: Vec<String>,
    /// The user to log in as (needs --password-file).
    #[arg(long, value_name = "USER", requires = "password_file")]
    pub username: Option<String>,
    /// Absolute path of a file on every server node holding the SMTP password (read when
    /// sending; the password itself is never stored).
    #[arg(long, value_name = "FILE", requires = "username")]
    pub password_file: Option<String>,
}

/// Arguments of `mpcluster notify add exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The target id: lowercase letters, digits and '-' (at most 32).
    #[arg(value_name = "ID")]
    pub id: String,
    /// The program (an absolute path) and its arguments, after `--`.
    #[arg(value_name = "COMMAND", last = true, required = true)]
    pub command: Vec<String>,
}

/// Arguments of `mpcluster notify list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `mpcluster notify remove` and `notify test`.
#[derive(Debug, Args)]
pub struct IdArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The target id.
    #[arg(value_name = "ID")]
    pub id: String,
}
