//! A peer's apply plan (`multipath-plan`): decode, re-encode, assemble.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;
mod targets;

fuzz_target!(|data: &[u8]| targets::apply_plan(data));
