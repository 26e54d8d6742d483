//! Cluster snapshot documents (`mpcluster status --snapshot FILE`): parse, assemble.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;
mod targets;

fuzz_target!(|data: &[u8]| targets::snapshot(data));
