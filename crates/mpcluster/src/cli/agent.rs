//! The clap arguments of `mpcluster agent` (the command itself: `crate::cmd::agent`).

use clap::Args;

use super::agent_args::AgentArgs;
use super::config_file::ConfigFileArgs;
use super::store_args::StoreArgs;

/// Arguments of `mpcluster agent`.
#[derive(Debug, Args)]
pub struct AgentCmdArgs {
    #[command(flatten)]
    pub config_file: ConfigFileArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub agent: AgentArgs,
}
