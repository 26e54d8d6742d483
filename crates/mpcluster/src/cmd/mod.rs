//! One module per subcommand, each with its clap arguments and a `run` function.

pub mod agent;
pub mod agent_args;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod doctor;
pub mod events;
pub mod hints;
pub mod node;
pub mod nodes;
pub mod notify;
pub mod overrides;
pub mod preflight;
pub mod serve;
pub mod snapshot;
pub mod source;
pub mod status;
pub mod storage;
pub mod store_args;
pub mod token;
pub mod wwid;

/// A failed command: the error to print and the process exit code to use.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong, with context.
    pub error: anyhow::Error,
    /// The exit code (commands document theirs).
    pub exit_code: u8,
}

impl Failure {
    /// A failure with an explicit exit code.
    pub fn new(exit_code: u8, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            error: error.into(),
            exit_code,
        }
    }
}

/// Whether stdout should get ANSI colour: a terminal, and `NO_COLOR` unset or empty.
pub fn stdout_color() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}
