//! The raw-format fallback (see `targets::parse_raw` for the input layout).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;
mod targets;

fuzz_target!(|data: &[u8]| targets::parse_raw(data));
