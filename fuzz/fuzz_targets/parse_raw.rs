//! The raw-format fallback: `show maps raw format` and `show paths raw format` replies.
//!
//! Input: one flag byte, then the maps reply, a NUL byte, and the paths reply. Flag bit 0
//! chooses the format strings: clear = the agent's standard formats, set = the formats of the
//! real 0.9.4 captures (space-separated, other fields). Both replies are parsed, joined with
//! `MapsReply::from_raw`, summarized and encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcluster_core::multipathd::{
    MapsFormat, MapsReply, PathsFormat, parse_maps_raw, parse_maps_raw_with, parse_paths_raw,
    parse_paths_raw_with,
};

#[path = "common.rs"]
mod common;

const CAPTURE_MAPS: &str = "%n %w %d %N %Q %t %S";
const CAPTURE_PATHS: &str = "%w %i %d %D %t %T %o %P %a %r %R";

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let (maps_text, paths_text) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let (maps, paths) = if flag & 1 == 0 {
        (parse_maps_raw(maps_text), parse_paths_raw(paths_text))
    } else {
        let mf = MapsFormat::new(CAPTURE_MAPS).expect("capture maps format");
        let pf = PathsFormat::new(CAPTURE_PATHS).expect("capture paths format");
        (
            parse_maps_raw_with(&mf, maps_text),
            parse_paths_raw_with(&pf, paths_text),
        )
    };
    // The paths reply is also parsed on its own (the agent always asks for it).
    let paths = paths.unwrap_or_default();
    if let Ok(maps) = maps {
        let reply = MapsReply::from_raw(maps, &paths);
        common::summarize_and_check(&reply);
    }
});
