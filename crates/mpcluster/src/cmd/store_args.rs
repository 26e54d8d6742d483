//! The `--store` option and its etcd TLS / authentication options, shared by every command that
//! talks to the cluster store.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use mpcluster_store::{ClusterStore, EtcdAuth, EtcdTls, PasswordSource, StoreOptions, StoreSpec};

/// Where the cluster store is.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// The cluster store: `embedded[:DIR]` (single node; DIR defaults to /var/lib/mpcluster,
    /// or $XDG_STATE_HOME/mpcluster when not root) or
    /// `etcd://HOST:PORT[,HOST:PORT...][/CLUSTER]`.
    #[arg(
        long,
        env = "MPCLUSTER_STORE",
        default_value = "embedded",
        value_name = "SPEC"
    )]
    pub store: StoreSpec,
    /// etcd: CA certificate (PEM) to verify the etcd servers.
    #[arg(long, env = "MPCLUSTER_ETCD_CA", value_name = "FILE")]
    pub etcd_ca: Option<PathBuf>,
    /// etcd: client certificate (PEM) for mutual TLS.
    #[arg(
        long,
        env = "MPCLUSTER_ETCD_CERT",
        value_name = "FILE",
        requires = "etcd_key"
    )]
    pub etcd_cert: Option<PathBuf>,
    /// etcd: client key (PEM) for mutual TLS.
    #[arg(
        long,
        env = "MPCLUSTER_ETCD_KEY",
        value_name = "FILE",
        requires = "etcd_cert"
    )]
    pub etcd_key: Option<PathBuf>,
    /// etcd: user name for authentication.
    #[arg(long, env = "MPCLUSTER_ETCD_USER", value_name = "USER")]
    pub etcd_user: Option<String>,
    /// etcd: file holding the password (never pass a password on the command line; the
    /// environment variable MPCLUSTER_ETCD_PASSWORD is read when no file is given).
    #[arg(long, env = "MPCLUSTER_ETCD_PASSWORD_FILE", value_name = "FILE")]
    pub etcd_password_file: Option<PathBuf>,
}

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

    /// Open the store.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn ClusterStore>> {
        mpcluster_store::open(&self.store, &self.options())
            .await
            .with_context(|| format!("cannot open the cluster store {}", self.store))
    }
}
