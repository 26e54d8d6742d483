//! The library types the clap definitions in [`crate::cli`] parse into. `build.rs` compiles
//! `src/cli` with stand-ins instead (`src/cli/build_types.rs`); the test below keeps the two
//! in step where it shows (defaults in the generated man pages and completions).

pub use mpcluster_agent::SocketAddrSpec;
pub use mpcluster_agent::client::DEFAULT_TIMEOUT;
pub use mpcluster_core::NodeName;
pub use mpcluster_core::pve_import::DEFAULT_STORAGE_CFG;
pub use mpcluster_store::StoreSpec;

#[cfg(test)]
#[path = "cli/build_types.rs"]
mod stand_ins;

#[cfg(test)]
mod tests {
    use super::stand_ins;

    #[test]
    fn build_stand_ins_match() {
        assert_eq!(stand_ins::DEFAULT_TIMEOUT, super::DEFAULT_TIMEOUT);
        assert_eq!(stand_ins::DEFAULT_STORAGE_CFG, super::DEFAULT_STORAGE_CFG);
    }
}
