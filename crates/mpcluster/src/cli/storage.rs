//! The clap arguments of `mpcluster storage` (the command itself: `crate::cmd::storage`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::status::Format;
use super::store_args::StoreArgs;
use crate::cli_types::DEFAULT_STORAGE_CFG;

/// Arguments of `mpcluster storage`.
#[derive(Debug, Args)]
pub struct StorageArgs {
    #[command(subcommand)]
    pub command: StorageCommand,
}

/// `mpcluster storage` subcommands.
#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Add a storage.
    Add(AddArgs),
    /// Remove a storage (refused while LVM storages sit on it).
    Remove(RemoveArgs),
    /// List the storages.
    List(ListArgs),
    /// Change a storage: `mpcluster storage set ID [--nodes a,b] [--disable|--enable]
    /// [--vgname VG] [--base STORAGE:WWID] [--delete nodes]`.
    Set(SetArgs),
    /// Import multipath and LVM storages from a Proxmox VE storage.cfg.
    ImportPve(ImportArgs),
}

/// Arguments of `mpcluster storage add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(subcommand)]
    pub kind: AddKind,
}

/// The type of storage to add.
#[derive(Debug, Subcommand)]
pub enum AddKind {
    /// A multipath storage: `mpcluster storage add multipath ID [--nodes a,b] [--disable]`.
    Multipath(AddMultipathArgs),
    /// An LVM storage on a multipath LUN:
    /// `mpcluster storage add lvm ID --vgname VG --base STORAGE:WWID [--nodes a,b] [--disable]`.
    Lvm(AddLvmArgs),
}

/// Options every storage type has.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Nodes where the storage is available (comma-separated); default every node.
    #[arg(long, value_name = "NODE,...")]
    pub nodes: Option<String>,
    /// Add it disabled (it counts nowhere).
    #[arg(long)]
    pub disable: bool,
}

/// Arguments of `mpcluster storage add multipath`.
#[derive(Debug, Args)]
pub struct AddMultipathArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Storage id.
    pub id: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `mpcluster storage add lvm`.
#[derive(Debug, Args)]
pub struct AddLvmArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Storage id.
    pub id: String,
    /// The volume group name.
    #[arg(long, value_name = "VG")]
    pub vgname: String,
    /// The base volume: `<multipath-storage-id>:<wwid>`.
    #[arg(long, value_name = "STORAGE:WWID")]
    pub base: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `mpcluster storage remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Storage id.
    pub id: String,
}

/// Arguments of `mpcluster storage list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `mpcluster storage set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Storage id.
    pub id: String,
    /// Nodes where the storage is available (comma-separated).
    #[arg(long, value_name = "NODE,...")]
    pub nodes: Option<String>,
    /// Disable the storage.
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    /// Enable the storage.
    #[arg(long)]
    pub enable: bool,
    /// New volume group name (lvm).
    #[arg(long, value_name = "VG")]
    pub vgname: Option<String>,
    /// New base volume (lvm): `<multipath-storage-id>:<wwid>`.
    #[arg(long, value_name = "STORAGE:WWID")]
    pub base: Option<String>,
    /// Properties to clear (`nodes`, `disable`; repeat or separate with commas).
    #[arg(long, value_name = "PROPERTY", value_delimiter = ',')]
    pub delete: Vec<String>,
}

/// Arguments of `mpcluster storage import-pve`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The Proxmox VE storage.cfg (`-` reads stdin).
    #[arg(value_name = "FILE", default_value = DEFAULT_STORAGE_CFG)]
    pub file: PathBuf,
    /// Only print what would be added and skipped.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}
