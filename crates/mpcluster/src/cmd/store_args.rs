//! The `--store` option and its etcd TLS / authentication options, shared by every command that
//! talks to the cluster store, and Proxmox mode (`--membership`, `--pve-root`), resolved once
//! per command with the store ([`StoreArgs::open_cluster`]).

use std::sync::Arc;

use anyhow::Context as _;
use mpcluster_config::pve::{MembershipChoice, PveMode};
use mpcluster_store::{ClusterStore, EtcdAuth, EtcdTls, PasswordSource, StoreOptions};

use super::agent_args::AgentArgs;
use crate::cli::store_args::Membership;
pub use crate::cli::store_args::StoreArgs;

impl StoreArgs {
    /// The store options these arguments describe.
    pub fn options(&self) -> StoreOptions {
        let mut options = StoreOptions::default();
        if self.etcd_ca.is_some() || self.etcd_cert.is_some() {
            options.etcd.tls = Some(EtcdTls {
                ca_file: self.etcd_ca.clone(),
                cert_file: self.etcd_cert.clone(),
                key_file: self.etcd_key.clone(),
                domain: None,
            });
        }
        if let Some(user) = &self.etcd_user {
            let password = match &self.etcd_password_file {
                Some(f) => PasswordSource::File(f.clone()),
                None => PasswordSource::Env("MPCLUSTER_ETCD_PASSWORD".to_owned()),
            };
            options.etcd.auth = Some(EtcdAuth {
                user: user.clone(),
                password,
            });
        }
        options
    }

    /// Open the store (in Proxmox mode with its membership from `.members`).
    pub async fn open(&self) -> anyhow::Result<Arc<dyn ClusterStore>> {
        Ok(self.open_cluster().await?.0)
    }

    /// Proxmox mode or not, decided from `--membership`, `--pve-root` and `--store`
    /// ([`PveMode::resolve`]).
    pub fn pve_mode(&self) -> anyhow::Result<Option<PveMode>> {
        let choice = match self.membership {
            Membership::Auto => MembershipChoice::Auto,
            Membership::Pve => MembershipChoice::Pve,
            Membership::Store => MembershipChoice::Store,
        };
        Ok(PveMode::resolve(
            choice,
            self.pve_root.as_deref(),
            &self.store,
        )?)
    }

    /// Open the store and resolve Proxmox mode, once: in Proxmox mode the store's membership
    /// is corosync's (`.members`), for every command alike.
    pub async fn open_cluster(&self) -> anyhow::Result<(Arc<dyn ClusterStore>, Option<PveMode>)> {
        let pve = self.pve_mode()?;
        let options = self.options();
        let store = mpcluster_store::open(&self.store, &options)
            .await
            .with_context(|| format!("cannot open the cluster store {}", self.store))?;
        let store = match &pve {
            Some(p) => p
                .membership_store(store, &self.store, options.pve.poll_interval)
                .await
                .with_context(|| {
                    format!(
                        "cannot take the membership of {} from {}",
                        self.store,
                        p.members_file().display()
                    )
                })?,
            None => store,
        };
        Ok((store, pve))
    }
}

/// The agent's options with, in Proxmox mode, the node name defaulting to corosync's name of
/// this host (`.members`' `nodename`) instead of the host name; `--node` still wins.
pub async fn agent_in_mode(agent: &AgentArgs, pve: Option<&PveMode>) -> anyhow::Result<AgentArgs> {
    let mut agent = agent.clone();
    if let (None, Some(p)) = (&agent.node, pve) {
        let node = p.local_node().await.with_context(|| {
            format!(
                "cannot read this node's name from {}",
                p.members_file().display()
            )
        })?;
        agent.node = Some(node);
    }
    Ok(agent)
}
