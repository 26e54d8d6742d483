//! Options of the node agent, shared by `mpcluster agent` and `mpcluster serve` (which runs
//! the local agent in-process with the embedded store).

use std::time::Duration;

pub use crate::cli::agent_args::AgentArgs;
use anyhow::Context as _;
use mpcluster_agent::run::AgentConfig;
use mpcluster_core::NodeName;

/// The local host name up to the first dot.
pub fn hostname() -> anyhow::Result<NodeName> {
    let uname = rustix::system::uname();
    let full = uname.nodename().to_string_lossy().into_owned();
    let short = full.split('.').next().unwrap_or_default().to_owned();
    NodeName::new(short)
        .with_context(|| format!("the host name {full:?} is not a usable node name; pass --node"))
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .with_context(|| format!("--{name}: {v} is not a duration in seconds"))
        .and_then(|d| {
            if d.is_zero() {
                anyhow::bail!("--{name} must be more than 0")
            } else {
                Ok(d)
            }
        })
}

impl AgentArgs {
    /// This node's name.
    pub fn node_name(&self) -> anyhow::Result<NodeName> {
        match &self.node {
            Some(n) => Ok(n.clone()),
            None => hostname(),
        }
    }

    /// The multipathd client.
    pub fn client(&self) -> anyhow::Result<mpcluster_agent::MultipathdClient> {
        Ok(mpcluster_agent::MultipathdClient::new(
            self.multipathd_socket.clone(),
            secs("multipathd-timeout", self.multipathd_timeout)?,
        ))
    }

    /// The agent configuration.
    pub fn config(&self) -> anyhow::Result<AgentConfig> {
        let mut c = AgentConfig::new(self.node_name()?);
        c.interval = secs("interval", self.interval)?;
        c.refresh = Duration::from_secs(self.refresh.max(1));
        c.member_ttl = Duration::from_secs(self.member_ttl.max(2));
        c.sysfs_root = self.sysfs_root.clone();
        c.apply_root = (!self.no_apply).then(|| self.root.clone());
        c.uevents = (!self.no_uevents).then_some(mpcluster_agent::uevent::DEFAULT_DEBOUNCE);
        Ok(c)
    }
}
