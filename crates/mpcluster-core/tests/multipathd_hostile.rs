//! Hostile and malformed replies: every one gives a typed error or a partial result with its
//! errors listed; never a panic, a hang or memory beyond proportional to the input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mpcluster_core::multipathd::{
    MAX_ERRORS, MAX_REPLY_LEN, MapsReply, ParseError, Recovery, parse_maps_json, parse_maps_raw,
    parse_paths_raw, summarize,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn healthy() -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real-0.9.4/scsi_debug/01-healthy/show-maps-json.json");
    std::fs::read(p).unwrap()
}

/// Run every parser (and summarize what parses) on one input.
fn all_parsers(input: &[u8]) {
    if let Ok(r) = parse_maps_json(input) {
        let _ = serde_json::to_string(&summarize(&r, |_| Some(1)));
    }
    let paths = parse_paths_raw(input).unwrap_or_default();
    if let Ok(m) = parse_maps_raw(input) {
        let r = MapsReply::from_raw(m, &paths);
        let _ = serde_json::to_string(&summarize(&r, |_| None));
    }
}

#[test]
fn every_truncation_of_a_real_reply() {
    let full = healthy();
    for end in 0..full.trim_ascii_end().len() {
        let cut = &full[..end];
        match parse_maps_json(cut) {
            Err(e) => {
                let r = e.recovery();
                assert!(
                    matches!(r, Recovery::FallBackToRaw | Recovery::Retry),
                    "{end}: {e} -> {r:?}"
                );
            }
            Ok(r) => panic!("a truncated reply parsed at {end}: {} maps", r.maps.len()),
        }
    }
    assert!(parse_maps_json(&full).is_ok());
}

#[test]
fn binary_garbage() {
    // xorshift: deterministic noise.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [1, 2, 7, 64, 1000, 65_536, 200_000] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        all_parsers(&bytes);
        let mut with_brace = b"{".to_vec();
        with_brace.extend_from_slice(&bytes);
        assert!(matches!(
            parse_maps_json(&with_brace),
            Err(ParseError::Json { .. })
        ));
        // Garbage with the separator in it: records fail one by one, errors stay capped.
        let piped: Vec<u8> = bytes
            .iter()
            .map(|b| {
                if b % 7 == 0 {
                    b'|'
                } else if b % 11 == 0 {
                    b'\n'
                } else {
                    *b
                }
            })
            .collect();
        if let Ok(r) = parse_paths_raw(&piped) {
            assert!(r.errors.len() <= MAX_ERRORS + 1);
        }
    }
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    for doc in [
        "[".repeat(1_000_000),
        format!("{{\"maps\": {}", "[".repeat(1_000_000)),
        format!("{}{}", "{\"a\":".repeat(200_000), "}".repeat(200_000)),
    ] {
        let e = parse_maps_json(doc.as_bytes()).unwrap_err();
        assert!(
            matches!(e, ParseError::Json { .. } | ParseError::Unexpected { .. }),
            "{e}"
        );
    }
    // Deep nesting in an unknown field is skipped (serde_json skips iteratively), not stored.
    let doc = format!(
        "{{\"maps\": [{{\"uuid\": \"w\", \"x\": {}1{}, \"path_groups\": []}}]}}",
        "[".repeat(1_000_000),
        "]".repeat(1_000_000)
    );
    let r = parse_maps_json(doc.as_bytes()).unwrap();
    assert_eq!(r.maps.len(), 1);
    assert!(r.errors.is_empty());
    // ... and in a known field it is a listed error, the rest of the map is kept.
    let doc = format!(
        "{{\"maps\": [{{\"uuid\": \"w\", \"name\": {}1{}, \"path_groups\": [[{}]]}}]}}",
        "[".repeat(100_000),
        "]".repeat(100_000),
        "[".repeat(100_000) + &"]".repeat(100_000)
    );
    let r = parse_maps_json(doc.as_bytes()).unwrap();
    assert_eq!(
        r.errors,
        ["maps[0].name: an array instead of a string; ignored"]
    );
    assert_eq!(r.maps[0].problems, ["path_groups[0] is an array"]);
}

#[test]
fn unescaped_quote_in_alias() {
    let text = String::from_utf8(healthy())
        .unwrap()
        .replace("\"name\" : \"mpatha\"", "\"name\" : \"db\"prod\"");
    let e = parse_maps_json(text.as_bytes()).unwrap_err();
    assert!(matches!(e, ParseError::Json { line: 5, .. }), "{e:?}");
    assert_eq!(e.recovery(), Recovery::FallBackToRaw);
    // A backslash is as fatal when it forms an invalid escape.
    let text = String::from_utf8(healthy())
        .unwrap()
        .replace("\"name\" : \"mpatha\"", "\"name\" : \"a\\qb\"");
    assert_eq!(
        parse_maps_json(text.as_bytes()).unwrap_err().recovery(),
        Recovery::FallBackToRaw
    );
}

#[test]
fn canned_daemon_replies() {
    let cases: [(&[u8], Recovery); 7] = [
        (b"fail\n\0", Recovery::Retry),
        (b"fail\ntimeout\n", Recovery::Retry),
        (b"timeout\n", Recovery::Retry),
        (b"permission deny: need to be root", Recovery::GiveUp),
        (b"show maps json: not found\nmultipath-tools v0.9.4 (12/19, 2022)\nCLI commands reference:\n list|show maps|multipaths\n", Recovery::FallBackToRaw),
        (b"", Recovery::Retry),
        (b"hello\n", Recovery::GiveUp),
    ];
    for (reply, want) in cases {
        assert_eq!(
            parse_maps_json(reply).unwrap_err().recovery(),
            want,
            "{reply:?}"
        );
        // Not understood: for the raw commands there is nothing left to fall back to.
        let raw_want = if want == Recovery::FallBackToRaw {
            Recovery::GiveUp
        } else {
            want
        };
        assert_eq!(
            parse_maps_raw(reply).unwrap_err().recovery(),
            raw_want,
            "{reply:?}"
        );
    }
}

#[test]
fn oversized_reply_is_refused_before_parsing() {
    let big = vec![b' '; MAX_REPLY_LEN + 1];
    assert!(matches!(
        parse_maps_json(&big),
        Err(ParseError::TooLarge { .. })
    ));
    assert!(matches!(
        parse_paths_raw(&big),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn huge_values_and_many_errors_stay_bounded() {
    let alias = "A".repeat(5_000_000);
    let doc = format!(
        r#"{{"maps": [{{"name": "{alias}", "uuid": "w1", "sysfs": "dm-1", "path_groups": [{{"group": 1, "paths": [{{"dev": "sda", "dm_st": "active", "chk_st": "ready"}}]}}]}}]}}"#
    );
    let r = parse_maps_json(doc.as_bytes()).unwrap();
    let report = summarize(&r, |_| None);
    assert!(report.maps[0].name.len() <= 256);

    // 100k entries that are not objects: one error line each would be 100k lines.
    let doc = format!("{{\"maps\": [{}1]}}", "1,".repeat(100_000));
    let r = parse_maps_json(doc.as_bytes()).unwrap();
    assert!(r.maps.is_empty());
    assert_eq!(r.errors.len(), MAX_ERRORS + 1);
    assert!(r.errors.last().unwrap().contains("more not shown"));

    // An ANSI escape in an alias does not reach error lines raw.
    let doc = r#"{"maps": [{"name": "x\u001b[31m", "uuid": "bad wwid", "path_groups": []}]}"#;
    let report = summarize(&parse_maps_json(doc.as_bytes()).unwrap(), |_| None);
    assert_eq!(report.errors.len(), 1);
    assert!(!report.errors[0].contains('\u{1b}'), "{:?}", report.errors);
}

#[test]
fn raw_hostile_lines() {
    // A line of a million separators, a 100 KB line, NULs, CRLF, invalid UTF-8.
    let mut input = "|".repeat(1_000_000);
    input.push('\n');
    input.push_str(&"x".repeat(100_000));
    input.push('\n');
    input.push_str("sdc|scsi:fcp|w\0|8:32|active|ready|running|tur|50|normal|1:0:0:1|a|b|c|d|e|0x0001000000000000|mp\r\n");
    let mut bytes = input.into_bytes();
    bytes.extend_from_slice(
        b"sd\xff|scsi:fcp|w|8:32|active|ready|running|tur|50|normal|1:0:0:1|a|b|c|d|e|f|mp\n",
    );
    let start = Instant::now();
    let r = parse_paths_raw(&bytes).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(r.paths.len(), 2, "{:?}", r.errors);
    assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
    assert_eq!(r.paths[0].path.wwid.as_deref(), Some("w\0"));
    assert_eq!(r.paths[0].multipath.as_deref(), Some("mp"));
    assert_eq!(r.paths[1].path.dev, "sd\u{fffd}");
    assert_eq!(r.paths[1].path.lun_hex.as_deref(), Some("f"));
    assert_eq!(r.paths[1].path.lun(), None);
    // A NUL in a WWID cannot reach the broadcast: the map is left out with an error.
    let maps = parse_maps_raw(b"w\0|dm-1|active|1|off|-|rw|0|0||0|mp\n").unwrap();
    let report = summarize(&MapsReply::from_raw(maps, &r), |_| None);
    assert!(report.maps.is_empty());
    assert_eq!(report.errors.len(), 3, "{:?}", report.errors);
}

/// 100k maps parse in time linear in the input (memory is checked in `multipathd_large`).
#[test]
fn hundred_thousand_maps_raw() {
    let mut maps = String::new();
    let mut paths = String::new();
    for i in 0..100_000 {
        maps.push_str(&format!("w{i}|dm-{i}|active|1|off|-|rw|0|0||0|m{i}\n"));
        paths.push_str(&format!("sd{i}|scsi:iscsi|w{i}|8:{i}|active|ready|running|tur|50|normal|1:0:0:1|[undef]|iqn.x|[undef]|[undef]|10.0.0.1|0x0001000000000000|m{i}\n"));
    }
    let start = Instant::now();
    let m = parse_maps_raw(maps.as_bytes()).unwrap();
    let p = parse_paths_raw(paths.as_bytes()).unwrap();
    let reply = MapsReply::from_raw(m, &p);
    let report = summarize(&reply, |_| None);
    assert_eq!(report.maps.len(), 100_000);
    assert!(report.errors.is_empty());
    assert!(start.elapsed() < Duration::from_secs(60));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/multipathd_hostile.txt"
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        all_parsers(&bytes);
    }

    #[test]
    fn mutated_real_reply_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
    ) {
        let mut bytes = healthy();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        all_parsers(&bytes);
    }

    #[test]
    fn arbitrary_records_never_panic(
        lines in proptest::collection::vec("[a-z0-9|: /\\[\\]\"-]{0,200}", 0..20)
    ) {
        let text = lines.join("\n");
        all_parsers(text.as_bytes());
    }
}
