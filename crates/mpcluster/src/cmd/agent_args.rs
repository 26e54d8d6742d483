//! Options of the node agent, shared by `mpcluster agent` and `mpcluster serve` (which runs
//! the local agent in-process with the embedded store).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use mpcluster_agent::SocketAddrSpec;
use mpcluster_agent::client::DEFAULT_TIMEOUT;
use mpcluster_agent::run::AgentConfig;
use mpcluster_core::NodeName;

/// Agent options.
#[derive(Debug, Args, Clone)]
pub struct AgentArgs {
    /// This node's name (default: the host name up to the first dot).
    #[arg(long, env = "MPCLUSTER_NODE", value_name = "NAME")]
    pub node: Option<NodeName>,
    /// multipathd's socket: `default` (/run/multipathd.socket if present, else the abstract
    /// @/org/kernel/linux/storage/multipathd), a path, or `@name` for an abstract socket.
    #[arg(long, default_value = "default", value_name = "SOCKET")]
    pub multipathd_socket: SocketAddrSpec,
    /// Timeout for one multipathd command, in seconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT.as_secs_f64(), value_name = "SECONDS")]
    pub multipathd_timeout: f64,
    /// sysfs root (map sizes are read from <DIR>/block/dm-N/size).
    #[arg(long, default_value = "/sys", value_name = "DIR")]
    pub sysfs_root: PathBuf,
    /// Collection interval in seconds.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub interval: f64,
    /// Republish unchanged state this often, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub refresh: u64,
    /// Membership TTL in seconds: how long after a crash the node reads offline.
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub member_ttl: u64,
    /// Root directory for applying the cluster configuration: drop-ins go to
    /// <ROOT>/etc/multipath/conf.d, the allow-list to <ROOT>/etc/multipath/wwids.
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
    /// Do not apply the cluster configuration on this node (health reporting only).
    #[arg(long)]
    pub no_apply: bool,
}

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
        Ok(c)
    }
}
