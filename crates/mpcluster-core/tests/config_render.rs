//! Rendering the generated drop-ins: insta snapshots (empty, defaults only, rich, overrides),
//! determinism, line-length limits, and a property test that no accepted value, however
//! hostile, changes the structure of the rendered file.
#![allow(clippy::unwrap_used)]

mod config_common;

use std::collections::BTreeMap;

use config_common::{EUI, NAA, ODD, defaults_only, map, rich, vendor_overrides};
use mpcluster_core::config::overrides::{Token, tokenize_line};
use mpcluster_core::config::render::wwid_regex;
use mpcluster_core::config::{
    KNOBS, MAX_LINE_LEN, MultipathConfig, Overrides, add_wwid, apply_defaults_update,
    render_baseline, render_overrides,
};
use proptest::prelude::*;
use serde_json::json;

/// The shape of a rendered file, read with multipath's own tokenizer: one entry per
/// non-comment line, `open <section>`, `close`, or `<keyword> = <value>`. Panics on any other
/// line shape (a value that broke out of its line).
fn structure(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        assert!(
            line.len() <= MAX_LINE_LEN,
            "line too long: {} bytes",
            line.len()
        );
        assert!(
            !line.chars().any(|c| c.is_control() && c != '\t'),
            "control character in {line:?}"
        );
        match tokenize_line(line).as_slice() {
            [] => {}
            [Token::Word(s), Token::Open] => out.push(format!("open {s}")),
            [Token::Close] => out.push("close".to_owned()),
            [Token::Word(k), Token::Word(v)] => out.push(format!("{k} = {v}")),
            [Token::Word(k), Token::Quote, Token::Word(v), Token::Quote] => {
                out.push(format!("{k} = {v}"))
            }
            other => panic!("line {line:?} reads as {other:?}"),
        }
    }
    out
}

/// The structure the model says the file must have.
fn expected_structure(cfg: &MultipathConfig) -> Vec<String> {
    let mut v = vec![
        "open defaults".to_owned(),
        "user_friendly_names = no".to_owned(),
        "find_multipaths = strict".to_owned(),
    ];
    for (k, val) in cfg.defaults().iter() {
        v.push(format!("{} = {}", k.keyword(), val.render()));
    }
    v.extend(["close", "open blacklist", "wwid = .*", "close"].map(String::from));
    if !cfg.wwids().is_empty() {
        v.push("open blacklist_exceptions".to_owned());
        for w in cfg.wwids().keys() {
            v.push(format!("wwid = {}", wwid_regex(w.as_str())));
        }
        v.push("close".to_owned());
        v.push("open multipaths".to_owned());
        for (w, e) in cfg.wwids() {
            v.push("open multipath".to_owned());
            v.push(format!("wwid = {w}"));
            if let Some(a) = e.alias() {
                v.push(format!("alias = {a}"));
            }
            for (k, val) in e.knobs().iter() {
                v.push(format!("{} = {}", k.keyword(), val.render()));
            }
            v.push("close".to_owned());
        }
        v.push("close".to_owned());
    }
    v
}

fn assert_well_formed(cfg: &MultipathConfig) {
    let text = render_baseline(cfg).unwrap().unwrap();
    assert_eq!(structure(&text), expected_structure(cfg), "{text}");
}

#[test]
fn baseline_empty_is_none() {
    assert_eq!(render_baseline(&MultipathConfig::new()).unwrap(), None);
}

#[test]
fn baseline_defaults_only() {
    let text = render_baseline(&defaults_only()).unwrap().unwrap();
    insta::assert_snapshot!("baseline_defaults_only", text);
    assert_well_formed(&defaults_only());
}

#[test]
fn baseline_rich() {
    let cfg = rich();
    let text = render_baseline(&cfg).unwrap().unwrap();
    insta::assert_snapshot!("baseline_rich", text);
    assert_well_formed(&cfg);
    // one exception per WWID, anchored and escaped; exact (unescaped) WWIDs in multipaths
    assert!(text.contains(&format!("\twwid \"^{NAA}$\"\n")));
    assert!(text.contains("\twwid \"^eui\\.0025388b71b0e2c4$\"\n"));
    assert!(text.contains("\twwid \"^1ODD_VENDOR\\+x\\(1\\)\\[2\\]\\*\\?\\^\\$\\|y$\"\n"));
    assert!(text.contains(&format!("\t\twwid {ODD}\n")));
    assert!(text.contains(&format!("\t\twwid {EUI}\n")));
}

#[test]
fn baseline_is_deterministic_and_survives_the_store() {
    let cfg = rich();
    let a = render_baseline(&cfg).unwrap();
    let stored = serde_json::to_string(&cfg).unwrap();
    let loaded = MultipathConfig::from_json(&stored).unwrap();
    assert_eq!(render_baseline(&loaded).unwrap(), a);
}

#[test]
fn wwids_without_defaults_and_defaults_without_wwids() {
    let mut cfg = MultipathConfig::new();
    add_wwid(&mut cfg, NAA, BTreeMap::new()).unwrap();
    let text = render_baseline(&cfg).unwrap().unwrap();
    assert!(text.contains("defaults {\n\tuser_friendly_names no\n\tfind_multipaths strict\n}\n"));
    assert_well_formed(&cfg);
    // no WWIDs: everything is blacklisted, no empty exception / multipaths sections
    let text = render_baseline(&defaults_only()).unwrap().unwrap();
    assert!(!text.contains("blacklist_exceptions {") && !text.contains("multipaths {"));
}

#[test]
fn overrides_file() {
    let text = render_overrides(&vendor_overrides()).unwrap();
    insta::assert_snapshot!("overrides_file", text);
    assert!(text.ends_with(config_common::VENDOR_OVERRIDES));
    // a missing final newline is added
    let o = Overrides::parse("overrides {\n\tno_path_retry 5\n}").unwrap();
    assert!(render_overrides(&o).unwrap().ends_with("}\n"));
}

#[test]
fn overrides_empty_is_none() {
    assert_eq!(render_overrides(&Overrides::empty()), None);
    let only_comments = Overrides::parse("# nothing yet\n\n! still nothing\n").unwrap();
    assert_eq!(render_overrides(&only_comments), None);
}

#[test]
fn longest_wwid_of_metacharacters_fits_a_multipath_line() {
    let mut cfg = MultipathConfig::new();
    let w = "+".repeat(127);
    add_wwid(&mut cfg, &w, BTreeMap::new()).unwrap();
    assert_well_formed(&cfg);
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        3 => r#"[a-z0-9"{}#!\n\r\x00\x7f\u{85} \t'/\\.*+?()\[\]^$|_-]{0,40}"#,
        2 => proptest::sample::select(vec![
            "round-robin 0", "queue", "5", "0", "immediate", "infinity", "off", "yes", "alua",
            "3600", "3601", "4", "1048576",
        ])
        .prop_map(String::from),
        1 => "[ -~]{0,300}",
        1 => Just("x".repeat(10_000)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary strings as WWID, alias or knob value (in defaults and per LUN): either
    /// rejected, or the rendered file has exactly the structure the model implies.
    #[test]
    fn accepted_values_never_change_the_file_structure(s in hostile(), j in any::<u32>()) {
        let mut cfg = MultipathConfig::new();
        let _ = add_wwid(&mut cfg, &s, BTreeMap::new());
        let _ = add_wwid(&mut cfg, NAA, map(json!({"alias": s})));
        let _ = add_wwid(&mut cfg, "w2", map(json!({"alias": "w2-alias"})));
        for spec in KNOBS {
            let _ = apply_defaults_update(&mut cfg, map(json!({spec.name: s})), vec![]);
            if spec.per_lun {
                let _ = mpcluster_core::config::set_wwid_entry(
                    &mut cfg, "w2", map(json!({spec.name: s})), vec![]);
            }
            // numbers too
            let _ = apply_defaults_update(&mut cfg, map(json!({spec.name: j})), vec![]);
        }
        let _ = apply_defaults_update(&mut cfg, map(json!({s.clone(): "5"})), vec![]);
        assert_well_formed(&cfg);
        // and it survives the store unchanged
        let stored = serde_json::to_string(&cfg).unwrap();
        prop_assert_eq!(MultipathConfig::from_json(&stored).unwrap(), cfg);
    }
}
