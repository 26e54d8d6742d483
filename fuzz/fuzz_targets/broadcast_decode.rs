//! A peer's `multipath` broadcast: decode, assemble, re-encode.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;
mod targets;

fuzz_target!(|data: &[u8]| targets::broadcast_decode(data));
