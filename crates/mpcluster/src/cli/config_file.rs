//! The `--config FILE` option of `agent` and `serve` (the settings file itself:
//! `crate::config_file`).

use std::path::PathBuf;

use clap::Args;

/// The settings file read when `--config` (or `MPCLUSTER_CONFIG`) names none.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/mpcluster/mpcluster.toml";

/// Which settings file to read.
#[derive(Debug, Args, Clone)]
pub struct ConfigFileArgs {
    /// Settings file (TOML; every key is one of this command's long options). Default
    /// /etc/mpcluster/mpcluster.toml, skipped when missing; a named file must exist.
    /// Precedence: command line > environment > this file > built-in default.
    #[arg(long, env = "MPCLUSTER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}
