//! `mpcluster agent`: the node agent (collect, broadcast, keep membership) until SIGTERM, then
//! leave the cluster so the node reads offline at once.

use std::process::ExitCode;

use super::Failure;
use super::serve::shutdown_signal;
pub use crate::cli::agent::AgentCmdArgs;

/// Run the command.
pub async fn run(args: &AgentCmdArgs) -> Result<ExitCode, Failure> {
    let inner = async {
        // Proxmox mode: membership from corosync, and this node's name as corosync knows it.
        let (store, pve) = args.store.open_cluster().await?;
        let agent = super::store_args::agent_in_mode(&args.agent, pve.as_ref()).await?;
        let client = agent.client()?;
        let config = agent.config()?;
        mpcluster_agent::run::run(store, client, config, shutdown_signal()).await;
        anyhow::Ok(ExitCode::SUCCESS)
    };
    inner.await.map_err(|e| Failure::new(1, e))
}
