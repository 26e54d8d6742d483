//! The clap arguments of the `--store` option and its etcd TLS / authentication options (the
//! command itself: `crate::cmd::store_args`).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::cli_types::StoreSpec;

/// Where the cluster store is.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// The cluster store: `embedded[:DIR]` (single node; DIR defaults to /var/lib/mpcluster,
    /// or $XDG_STATE_HOME/mpcluster when not root), `pve[:DIR]` (Proxmox VE: files in the
    /// cluster filesystem, DIR defaults to /etc/pve) or
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
    /// Proxmox mode: node names, membership and liveness from corosync (<ROOT>/.members),
    /// storages from <ROOT>/storage.cfg (followed, read-only here: pvesm edits them). `auto`:
    /// when <ROOT>/.members exists or the store is `pve`; `pve`: always; `store`: never.
    #[arg(
        long,
        env = "MPCLUSTER_MEMBERSHIP",
        value_enum,
        default_value_t = Membership::Auto,
        value_name = "FROM"
    )]
    pub membership: Membership,
    /// The Proxmox cluster filesystem's root ROOT (default /etc/pve, or the pve store's
    /// directory); another directory for tests.
    #[arg(long, env = "MPCLUSTER_PVE_ROOT", value_name = "DIR")]
    pub pve_root: Option<PathBuf>,
}

/// Where membership comes from (`--membership`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Membership {
    /// Proxmox mode when the root has `.members` (or the store is `pve`).
    Auto,
    /// Proxmox mode.
    Pve,
    /// The store's own membership (never Proxmox mode).
    Store,
}
