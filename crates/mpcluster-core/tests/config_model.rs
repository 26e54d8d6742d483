//! The configuration model: knob table, partial updates (set / delete / unknown knob / both),
//! alias uniqueness, the reserved `defaults` id, the stored JSON document (shape, round trip,
//! validation on load) and injection attempts through every field.
#![allow(clippy::unwrap_used)]

mod config_common;

use std::collections::BTreeMap;

use config_common::{EUI, NAA, ODD, map, rich};
use mpcluster_core::config::{
    ConfigErrors, DocumentError, Failback, KNOBS, Knob, KnobValue, MultipathConfig, NoPathRetry,
    PathSelector, ValueType, add_wwid, apply_defaults_update, remove_wwid, set_wwid_entry,
};
use serde_json::{Value, json};

fn fields(e: &ConfigErrors) -> Vec<&str> {
    e.errors().iter().map(|e| e.field.as_str()).collect()
}

fn message<'a>(e: &'a ConfigErrors, field: &str) -> &'a str {
    &e.for_field(field)
        .unwrap_or_else(|| panic!("no error for {field}: {e:?}"))
        .message
}

fn none() -> BTreeMap<String, Value> {
    BTreeMap::new()
}

#[test]
fn knob_table_is_complete_and_consistent() {
    assert_eq!(KNOBS.len(), Knob::ALL.len());
    for (i, spec) in KNOBS.iter().enumerate() {
        assert_eq!(spec.knob, Knob::ALL[i]);
        assert_eq!(Knob::from_name(spec.name), Some(spec.knob));
        assert!(
            spec.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
        assert_eq!(spec.keyword, spec.name.replace('-', "_"));
        assert!(!spec.description.is_empty());
    }
    let required = [
        "polling-interval",
        "path-selector",
        "path-grouping-policy",
        "path-checker",
        "prio",
        "failback",
        "no-path-retry",
        "rr-weight",
        "rr-min-io-rq",
        "fast-io-fail-tmo",
        "dev-loss-tmo",
        "max-sectors-kb",
    ];
    for name in required {
        assert!(Knob::from_name(name).is_some(), "{name}");
    }
    // the multipaths-section subset (multipath.conf(5), "multipaths section")
    let per_lun: Vec<&str> = KNOBS.iter().filter(|s| s.per_lun).map(|s| s.name).collect();
    assert_eq!(
        per_lun,
        [
            "path-selector",
            "path-grouping-policy",
            "prio",
            "failback",
            "no-path-retry",
            "rr-weight",
            "rr-min-io-rq",
            "max-sectors-kb"
        ]
    );
    assert_eq!(
        Knob::PollingInterval.spec().value_type,
        ValueType::Integer {
            min: 1,
            max: 3600,
            unit: "seconds"
        }
    );
}

#[test]
fn knob_table_json_for_the_api() {
    insta::assert_json_snapshot!("knob_table", KNOBS);
}

#[test]
fn defaults_update_sets_deletes_and_keeps_the_rest() {
    let mut cfg = MultipathConfig::new();
    apply_defaults_update(
        &mut cfg,
        map(json!({"polling-interval": 5, "no-path-retry": "queue"})),
        vec![],
    )
    .unwrap();
    apply_defaults_update(
        &mut cfg,
        map(json!({"path-selector": "round-robin 0"})),
        vec![],
    )
    .unwrap();
    let d = cfg.defaults();
    assert_eq!(d.get(Knob::PollingInterval), Some(&KnobValue::Integer(5)));
    assert_eq!(
        d.get(Knob::NoPathRetry),
        Some(&KnobValue::NoPathRetry(NoPathRetry::Queue))
    );
    assert_eq!(
        d.get(Knob::PathSelector),
        Some(&KnobValue::PathSelector(PathSelector::RoundRobin))
    );

    apply_defaults_update(&mut cfg, none(), vec!["no-path-retry".into()]).unwrap();
    assert_eq!(cfg.defaults().get(Knob::NoPathRetry), None);
    assert_eq!(cfg.defaults().len(), 2);
    // deleting an unset knob is a no-op, not an error
    apply_defaults_update(&mut cfg, none(), vec!["failback".into()]).unwrap();
    assert_eq!(cfg.defaults().len(), 2);
    // the last knob goes: the defaults section is gone, nothing keeps the generator engaged
    apply_defaults_update(
        &mut cfg,
        none(),
        vec!["polling-interval".into(), "path-selector".into()],
    )
    .unwrap();
    assert!(cfg.is_empty());
}

#[test]
fn integers_arrive_as_strings_or_numbers() {
    for v in [json!(5), json!("5")] {
        let mut cfg = MultipathConfig::new();
        apply_defaults_update(
            &mut cfg,
            map(json!({"polling-interval": v, "failback": v})),
            vec![],
        )
        .unwrap();
        assert_eq!(
            cfg.defaults().get(Knob::PollingInterval),
            Some(&KnobValue::Integer(5))
        );
        assert_eq!(
            cfg.defaults().get(Knob::Failback),
            Some(&KnobValue::Failback(Failback::Deferred(5)))
        );
    }
}

#[test]
fn unknown_and_fixed_knob_names_are_rejected() {
    let mut cfg = MultipathConfig::new();
    let e = apply_defaults_update(
        &mut cfg,
        map(json!({"bogus": 1, "polling_interval": 5, "user-friendly-names": "yes", "find-multipaths": "greedy"})),
        vec!["nope".into()],
    )
    .unwrap_err();
    assert_eq!(message(&e, "defaults.bogus"), "unknown knob");
    assert_eq!(
        message(&e, "defaults.polling_interval"),
        "unknown knob; did you mean \"polling-interval\"?"
    );
    assert!(message(&e, "defaults.user-friendly-names").starts_with("fixed by mpcluster"));
    assert!(message(&e, "defaults.find-multipaths").starts_with("fixed by mpcluster"));
    assert_eq!(message(&e, "defaults.nope"), "unknown knob");
    assert_eq!(e.errors().len(), 5);
    assert!(cfg.is_empty());
}

#[test]
fn set_and_delete_of_one_knob_is_rejected() {
    let mut cfg = config_common::defaults_only();
    let before = cfg.clone();
    let e = apply_defaults_update(
        &mut cfg,
        map(json!({"polling-interval": 7, "prio": "alua"})),
        vec!["polling-interval".into()],
    )
    .unwrap_err();
    assert_eq!(fields(&e), ["defaults.polling-interval"]);
    assert_eq!(e.errors()[0].message, "both set and deleted in one update");
    assert_eq!(cfg, before, "all-or-nothing: prio was not set either");
}

#[test]
fn every_value_error_is_listed_and_nothing_applied() {
    let mut cfg = config_common::defaults_only();
    let before = cfg.clone();
    let e = apply_defaults_update(
        &mut cfg,
        map(json!({
            "polling-interval": 0,
            "path-selector": "round-robin",
            "path-grouping-policy": "MULTIBUS",
            "failback": -1,
            "no-path-retry": 1.5,
            "rr-weight": true,
            "dev-loss-tmo": null,
            "rr-min-io-rq": "1e3",
            "max-sectors-kb": "99999999999",
            "fast-io-fail-tmo": " 5",
            "prio": ["alua"],
        })),
        vec![],
    )
    .unwrap_err();
    assert_eq!(e.errors().len(), 11, "{e:#?}");
    assert_eq!(cfg, before);
    insta::assert_debug_snapshot!("value_errors", e.errors());
    assert_eq!(
        message(&e, "defaults.polling-interval"),
        "0 is out of range: must be an integer from 1 to 3600 (seconds)"
    );
    assert_eq!(
        message(&e, "defaults.path-selector"),
        "invalid value \"round-robin\": must be one of \"round-robin 0\", \"queue-length 0\", \
         \"service-time 0\" or \"historical-service-time 0\""
    );
}

#[test]
fn wwid_entry_updates() {
    let mut cfg = MultipathConfig::new();
    add_wwid(
        &mut cfg,
        NAA,
        map(json!({"alias": "a1", "no-path-retry": 3})),
    )
    .unwrap();
    set_wwid_entry(
        &mut cfg,
        NAA,
        map(json!({"prio": "alua", "no-path-retry": "queue"})),
        vec!["alias".into()],
    )
    .unwrap();
    let e = cfg.get(NAA).unwrap();
    assert_eq!(e.alias(), None);
    assert_eq!(e.knobs().len(), 2);
    set_wwid_entry(
        &mut cfg,
        NAA,
        map(json!({"alias": "a2"})),
        vec!["prio".into()],
    )
    .unwrap();
    let e = cfg.get(NAA).unwrap();
    assert_eq!(e.alias().unwrap().as_str(), "a2");
    assert_eq!(e.knobs().get(Knob::Prio), None);

    // knobs that multipath ignores in a multipaths entry are defaults-only
    let err = set_wwid_entry(
        &mut cfg,
        NAA,
        map(json!({"polling-interval": 5, "path-checker": "tur", "dev-loss-tmo": 30})),
        vec![],
    )
    .unwrap_err();
    assert_eq!(err.errors().len(), 3);
    assert!(message(&err, &format!("wwids.{NAA}.path-checker")).starts_with("not valid per LUN"));

    let err = set_wwid_entry(
        &mut cfg,
        NAA,
        map(json!({"alias": "x"})),
        vec!["alias".into()],
    )
    .unwrap_err();
    assert_eq!(fields(&err), [format!("wwids.{NAA}.alias")]);

    let err = set_wwid_entry(&mut cfg, NAA, map(json!({"alias": null})), vec![]).unwrap_err();
    assert_eq!(
        message(&err, &format!("wwids.{NAA}.alias")),
        "must be a string (delete it to clear the alias)"
    );
    let err = set_wwid_entry(&mut cfg, NAA, none(), vec!["wwid".into()]).unwrap_err();
    assert_eq!(message(&err, &format!("wwids.{NAA}.wwid")), "unknown knob");

    let err = set_wwid_entry(&mut cfg, EUI, none(), vec![]).unwrap_err();
    assert_eq!(
        message(&err, "wwid"),
        format!("{EUI} is not in the allow-list")
    );
    let err = add_wwid(&mut cfg, NAA, none()).unwrap_err();
    assert_eq!(
        message(&err, "wwid"),
        format!("{NAA} is already in the allow-list")
    );
    let err = remove_wwid(&mut cfg, EUI).unwrap_err();
    assert_eq!(
        message(&err, "wwid"),
        format!("{EUI} is not in the allow-list")
    );
    let removed = remove_wwid(&mut cfg, NAA).unwrap();
    assert_eq!(removed.alias().unwrap().as_str(), "a2");
    assert!(cfg.is_empty());
}

#[test]
fn aliases_are_unique_and_never_another_luns_name() {
    let mut cfg = MultipathConfig::new();
    add_wwid(&mut cfg, NAA, map(json!({"alias": "data"}))).unwrap();
    let e = add_wwid(&mut cfg, EUI, map(json!({"alias": "data"}))).unwrap_err();
    assert_eq!(
        message(&e, &format!("wwids.{EUI}.alias")),
        format!("alias \"data\" is already used by {NAA}")
    );
    assert_eq!(cfg.wwids().len(), 1, "rejected add leaves no entry");

    add_wwid(&mut cfg, EUI, map(json!({"alias": "other"}))).unwrap();
    let e = set_wwid_entry(&mut cfg, EUI, map(json!({"alias": "data"})), vec![]).unwrap_err();
    assert_eq!(fields(&e), [format!("wwids.{EUI}.alias")]);
    // an alias equal to another LUN's WWID would collide with that map's name
    let e = set_wwid_entry(&mut cfg, EUI, map(json!({"alias": NAA})), vec![]).unwrap_err();
    assert!(message(&e, &format!("wwids.{EUI}.alias")).contains("is the WWID of another"));
    // and the other way round
    let e = add_wwid(&mut cfg, "other", none()).unwrap_err();
    assert_eq!(
        message(&e, "wwid"),
        format!("other is the alias of {EUI} (map names would collide)")
    );
    // an alias equal to its own WWID is pointless but harmless
    set_wwid_entry(&mut cfg, EUI, map(json!({"alias": EUI})), vec![]).unwrap();
    // moving an alias in one step: free it first
    set_wwid_entry(&mut cfg, NAA, none(), vec!["alias".into()]).unwrap();
    set_wwid_entry(&mut cfg, EUI, map(json!({"alias": "data"})), vec![]).unwrap();

    // stored documents are checked the same way, on every entry involved
    let e = MultipathConfig::from_json_value(&json!({"wwids": {
        "w1": {"alias": "same"}, "w2": {"alias": "same"}, "w3": {"alias": "w1"}
    }}))
    .unwrap_err();
    assert_eq!(
        fields(&e),
        [
            "wwids.w1.alias",
            "wwids.w1",
            "wwids.w2.alias",
            "wwids.w3.alias"
        ]
    );
}

#[test]
fn defaults_is_a_reserved_id() {
    let mut cfg = MultipathConfig::new();
    for id in ["defaults", "DEFAULTS", "Defaults"] {
        let e = add_wwid(&mut cfg, id, none()).unwrap_err();
        assert_eq!(
            message(&e, "wwid"),
            format!("\"{id}\" is a reserved id, not a WWID")
        );
    }
    let e = MultipathConfig::from_json_value(&json!({"wwids": {"defaults": {}}})).unwrap_err();
    assert_eq!(fields(&e), ["wwids.defaults"]);
    assert!(cfg.is_empty());
}

#[test]
fn stored_document_shape_is_exact_and_sorted() {
    let cfg = rich();
    let text = serde_json::to_string(&cfg).unwrap();
    assert!(text.starts_with(r#"{"defaults":{"checker-timeout":30,"dev-loss-tmo":"infinity","#));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v, cfg.to_json());
    assert_eq!(v["defaults"]["polling-interval"], json!(10));
    assert_eq!(v["defaults"]["no-path-retry"], json!(12));
    assert_eq!(v["defaults"]["path-selector"], json!("round-robin 0"));
    assert_eq!(
        v["wwids"][NAA],
        json!({
            "alias": "san1-lun0",
            "failback": 15,
            "max-sectors-kb": 512,
            "no-path-retry": "queue",
            "path-grouping-policy": "group_by_prio",
            "path-selector": "queue-length 0",
            "prio": "alua",
            "rr-min-io-rq": 4,
            "rr-weight": "priorities"
        })
    );
    assert_eq!(v["wwids"][ODD], json!({"no-path-retry": "fail"}));
    assert_eq!(
        serde_json::to_string(&MultipathConfig::new()).unwrap(),
        r#"{"defaults":{},"wwids":{}}"#
    );
}

#[test]
fn json_round_trip() {
    let cfg = rich();
    let text = serde_json::to_string_pretty(&cfg).unwrap();
    assert_eq!(MultipathConfig::from_json(&text).unwrap(), cfg);
    assert_eq!(serde_json::from_str::<MultipathConfig>(&text).unwrap(), cfg);
    let again = serde_json::to_string_pretty(&MultipathConfig::from_json(&text).unwrap()).unwrap();
    assert_eq!(again, text, "serialization is deterministic");
    // both sections are optional
    assert!(MultipathConfig::from_json("{}").unwrap().is_empty());
    assert!(
        MultipathConfig::from_json(r#"{"defaults": null, "wwids": {}}"#)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn invalid_stored_documents_are_reported_not_panicked_on() {
    match MultipathConfig::from_json("{\"defaults\": ") {
        Err(DocumentError::Json { document, .. }) => {
            assert_eq!(document, "multipath configuration")
        }
        other => panic!("{other:?}"),
    }
    let bad = json!({
        "defaults": {"polling-interval": 99999, "zzz": 1},
        "wwids": {"a b": {}, "w1": [], "w2": {"alias": "bad alias", "polling-interval": 3}},
        "extra": true
    })
    .to_string();
    let Err(DocumentError::Invalid { source, .. }) = MultipathConfig::from_json(&bad) else {
        panic!("expected Invalid");
    };
    assert_eq!(
        fields(&source),
        [
            "extra",
            "defaults.polling-interval",
            "defaults.zzz",
            "wwids.\"a b\"",
            "wwids.w1",
            "wwids.w2.alias",
            "wwids.w2.polling-interval"
        ]
    );
    let e = serde_json::from_str::<MultipathConfig>(&bad).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid multipath configuration: extra: unknown section")
    );
    for doc in [
        "[]",
        "null",
        "1",
        "\"x\"",
        r#"{"defaults": []}"#,
        r#"{"wwids": 1}"#,
    ] {
        assert!(MultipathConfig::from_json(doc).is_err(), "{doc}");
    }
}

const ATTACKS: &[&str] = &[
    "x\"y",
    "x\" }\nmultipaths {",
    "x\ny",
    "x\ry",
    "x{",
    "}",
    "x#y",
    "x!y",
    "x\0y",
    "x\u{1b}y",
    "x y",
    "",
];

fn attacks() -> Vec<String> {
    let mut v: Vec<String> = ATTACKS.iter().map(|s| s.to_string()).collect();
    v.push("a".repeat(10 * 1024));
    v.push(format!("{}\n}}", "b".repeat(10 * 1024)));
    v
}

#[test]
fn injection_through_every_field_is_rejected_naming_the_field() {
    for attack in attacks() {
        let mut cfg = MultipathConfig::new();
        // the WWID itself
        let e = add_wwid(&mut cfg, &attack, none()).unwrap_err();
        assert_eq!(fields(&e), ["wwid"], "{attack:?}");
        assert!(e.to_string().len() < 400, "messages stay short: {e}");
        // the alias
        let e = add_wwid(&mut cfg, NAA, map(json!({"alias": attack}))).unwrap_err();
        assert_eq!(fields(&e), [format!("wwids.{NAA}.alias")], "{attack:?}");
        // every knob, in defaults and per LUN
        for spec in KNOBS {
            let e = apply_defaults_update(&mut cfg, map(json!({spec.name: attack})), vec![])
                .unwrap_err();
            assert_eq!(
                fields(&e),
                [format!("defaults.{}", spec.name)],
                "{attack:?}"
            );
            assert!(e.to_string().len() < 400, "messages stay short: {e}");
            if spec.per_lun {
                let e = add_wwid(&mut cfg, NAA, map(json!({spec.name: attack}))).unwrap_err();
                assert_eq!(fields(&e), [format!("wwids.{NAA}.{}", spec.name)]);
            }
        }
        // property names
        let e =
            apply_defaults_update(&mut cfg, map(json!({attack.clone(): 1})), vec![]).unwrap_err();
        assert_eq!(e.errors().len(), 1);
        assert!(e.errors()[0].field.starts_with("defaults."));
        assert!(!e.errors()[0].field.contains('\n') && e.errors()[0].field.len() < 100);
        // stored document keys
        let doc = json!({"wwids": {attack.clone(): {}}});
        assert!(MultipathConfig::from_json_value(&doc).is_err());
        assert!(cfg.is_empty());
    }
}
