//! `mpcluster agent`: the node agent (collect, broadcast, keep membership) until SIGTERM, then
//! leave the cluster so the node reads offline at once.

use std::process::ExitCode;

use clap::Args;

use super::Failure;
use super::agent_args::AgentArgs;
use super::serve::shutdown_signal;
use super::store_args::StoreArgs;

/// Arguments of `mpcluster agent`.
#[derive(Debug, Args)]
pub struct AgentCmdArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// Run the command.
pub async fn run(args: &AgentCmdArgs) -> Result<ExitCode, Failure> {
    let inner = async {
        let store = args.store.open().await?;
        let client = args.agent.client()?;
        let config = args.agent.config()?;
        mpcluster_agent::run::run(store, client, config, shutdown_signal()).await;
        anyhow::Ok(ExitCode::SUCCESS)
    };
    inner.await.map_err(|e| Failure::new(1, e))
}
