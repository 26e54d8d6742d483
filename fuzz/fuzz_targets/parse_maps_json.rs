//! `show maps json` replies: parse, summarize, encode the payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcluster_core::multipathd::parse_maps_json;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = parse_maps_json(data) {
        common::summarize_and_check(&reply);
    }
});
