//! `show maps json` replies: parse, summarize, encode the payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;
mod targets;

fuzz_target!(|data: &[u8]| targets::parse_maps_json(data));
