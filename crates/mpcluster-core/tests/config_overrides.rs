//! The admin's verbatim overrides: multipath's tokenizer (quotes, `""`, comments), typical vendor
//! sections accepted, and every rejection reason with its message.
#![allow(clippy::unwrap_used)]

mod config_common;

use mpcluster_core::config::overrides::{Token, tokenize_line};
use mpcluster_core::config::{DocumentError, Overrides};

fn w(s: &str) -> Token {
    Token::Word(s.to_owned())
}

fn rejection(text: &str) -> Vec<String> {
    Overrides::parse(text)
        .unwrap_err()
        .errors()
        .iter()
        .map(|e| {
            assert_eq!(e.field, "overrides");
            e.message.clone()
        })
        .collect()
}

#[test]
fn tokenizer_follows_multipath() {
    use Token::{Close, Open, Quote};
    assert_eq!(tokenize_line("devices {"), [w("devices"), Open]);
    assert_eq!(tokenize_line("\t}"), [Close]);
    assert_eq!(tokenize_line("  # a comment {"), []);
    assert_eq!(tokenize_line("! another }"), []);
    assert_eq!(tokenize_line(""), []);
    assert_eq!(
        tokenize_line(r#"vendor "NETAPP" # trailing comment {"#),
        [w("vendor"), Quote, w("NETAPP"), Quote]
    );
    // inside quotes: whitespace, braces, '#', '!' are literal, "" is one quote
    assert_eq!(
        tokenize_line(r#"product "a ""b"" {x} #y !z""#),
        [w("product"), Quote, w(r#"a "b" {x} #y !z"#), Quote]
    );
    // outside quotes '#' / '!' end the line even inside a word, braces split words
    assert_eq!(tokenize_line("vendor ab#cd"), [w("vendor"), w("ab")]);
    assert_eq!(tokenize_line("vendor ab!cd"), [w("vendor"), w("ab")]);
    assert_eq!(
        tokenize_line("device{x}"),
        [w("device"), Open, w("x"), Close]
    );
    // non-ASCII outside quotes counts as whitespace
    assert_eq!(
        tokenize_line("vendor NETÄPP"),
        [w("vendor"), w("NET"), w("PP")]
    );
    assert_eq!(
        tokenize_line("vendor \"NETÄPP\""),
        [w("vendor"), Quote, w("NETÄPP"), Quote]
    );
    // unclosed quote runs to the end of the line
    assert_eq!(
        tokenize_line("vendor \"abc"),
        [w("vendor"), Quote, w("abc")]
    );
    assert_eq!(tokenize_line("vendor \"\""), [w("vendor"), Quote, Quote]);
}

#[test]
fn accepts_typical_vendor_devices() {
    let o = config_common::vendor_overrides();
    assert_eq!(o.as_str(), config_common::VENDOR_OVERRIDES);
    assert!(!o.is_empty());
}

#[test]
fn quoted_braces_and_comments_are_handled_like_multipath() {
    let text = r#"devices {
	device {
		vendor "a{b}"        # a { in a comment
		product "x#y!z ""q"""  ! another } comment
		revision ""
	}
	# }
	! {
}
"#;
    Overrides::parse(text).unwrap();
}

#[test]
fn blank_and_comment_only_is_empty() {
    assert!(Overrides::parse("").unwrap().is_empty());
    assert!(Overrides::parse("# x\n\n  ! y\n").unwrap().is_empty());
    assert!(!Overrides::parse("overrides {\n}\n").unwrap().is_empty());
}

#[test]
fn rejects_managed_sections() {
    let cases = [
        (
            "defaults {\n}\n",
            "section \"defaults\" is not allowed in the overrides",
        ),
        ("blacklist {\n}\n", "section \"blacklist\" is not allowed"),
        (
            "blacklist_exceptions {\n}\n",
            "section \"blacklist_exceptions\" is not allowed",
        ),
        (
            "blacklist_foo {\n}\n",
            "section \"blacklist_foo\" is not allowed",
        ),
        ("multipaths {\n}\n", "section \"multipaths\" is not allowed"),
        ("multipath {\n}\n", "section \"multipath\" is not allowed"),
        (
            "device {\n}\n",
            "section \"device\" must be inside a \"devices\" section",
        ),
        ("frobnicate {\n}\n", "unknown section \"frobnicate\""),
    ];
    for (text, msg) in cases {
        let errs = rejection(text);
        assert_eq!(errs.len(), 1, "{text:?}: {errs:?}");
        assert!(
            errs[0].starts_with(&format!("line 1: {msg}")),
            "{text:?}: {errs:?}"
        );
    }
    // hidden after valid sections, and a nested one
    let errs = rejection(
        "overrides {\n}\ndevices {\n\tdevice {\n\t\tvendor V\n\t\tproduct P\n\t}\n}\ndefaults {\n\tpolling_interval 1\n}\n",
    );
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("line 9: section \"defaults\""));
    let errs = rejection("devices {\n\tdefaults {\n\t}\n}\n");
    assert_eq!(
        errs,
        [
            "line 2: section \"defaults\" is not allowed in \"devices\" (it takes only \"device\" subsections)"
        ]
    );
}

#[test]
fn every_rejection_reason_with_its_message() {
    let long_value = format!("overrides {{\n\tvendor \"{}\"\n}}\n", "v".repeat(1020));
    let cases: Vec<(&str, String)> = vec![
        (
            "defaults section",
            "defaults {\n\tpolling_interval 5\n}\n".into(),
        ),
        ("blacklist section", "blacklist {\n\twwid .*\n}\n".into()),
        ("multipaths section", "multipaths {\n}\n".into()),
        ("unknown section", "foo {\n}\n".into()),
        (
            "repeated section",
            "overrides {\n}\noverrides {\n}\n".into(),
        ),
        (
            "unclosed section",
            "devices {\n\tdevice {\n\t\tvendor X\n\t\tproduct Y\n\t}\n".into(),
        ),
        ("extra close", "overrides {\n}\n}\n".into()),
        ("outside sections", "polling_interval 5\n".into()),
        (
            "value directly in devices",
            "devices {\n\tvendor X\n}\n".into(),
        ),
        ("line too long", long_value),
        ("NUL", "overrides {\n\tno_path_retry 5\0\n}\n".into()),
        ("CR", "overrides {\r\n}\r\n".into()),
        ("escape", "overrides {\n\tno_path_retry \u{1b}5\n}\n".into()),
        (
            "text after {",
            "devices {\n\tdevice { vendor \"X\" }\n}\n".into(),
        ),
        ("text after }", "overrides {\n} overrides {\n}\n".into()),
        ("{ without a name", "{\n}\n".into()),
        ("section name without {", "devices\n{\n}\n".into()),
        ("quote first", "overrides {\n\t\"x\" y\n}\n".into()),
        ("missing value", "overrides {\n\tno_path_retry\n}\n".into()),
        (
            "extra value",
            "overrides {\n\tpath_selector round-robin 0\n}\n".into(),
        ),
        (
            "unclosed quote",
            "overrides {\n\tpath_selector \"round-robin 0\n}\n".into(),
        ),
        (
            "text after quote",
            "overrides {\n\tprio_args \"a\" b\n}\n".into(),
        ),
        (
            "brace after value",
            "overrides {\n\tno_path_retry 5 }\n}\n".into(),
        ),
        (
            "protocol in device",
            "devices {\n\tdevice {\n\t\tprotocol {\n\t\t}\n\t}\n}\n".into(),
        ),
        (
            "subsection of protocol",
            "overrides {\n\tprotocol {\n\t\tdevice {\n\t\t}\n\t}\n}\n".into(),
        ),
    ];
    let mut report = String::new();
    for (what, text) in &cases {
        let errs = rejection(text);
        assert!(!errs.is_empty(), "{what}");
        report.push_str(&format!("{what}:\n"));
        for e in errs {
            report.push_str(&format!("  {e}\n"));
        }
    }
    insta::assert_snapshot!("rejections", report);
}

#[test]
fn line_length_limit_is_multipaths_buffer() {
    // 1022 bytes + '\n' = 1023 bytes fit fgets' 1024-byte buffer; 1023 bytes do not
    let line = |n: usize| format!("\tprio_args \"{}\"", "v".repeat(n - 13));
    assert_eq!(line(1022).len(), 1022);
    Overrides::parse(format!("overrides {{\n{}\n}}\n", line(1022))).unwrap();
    let errs = rejection(&format!("overrides {{\n{}\n}}\n", line(1023)));
    assert_eq!(
        errs,
        [
            "line 2: 1023 bytes long; multipath reads lines of at most 1022 bytes (its 1024-byte buffer) and would split it"
        ]
    );
    // a 10 KB line or document of junk is rejected with a short message
    let errs = rejection(&"x".repeat(10_240));
    assert!(errs[0].len() < 200);
    let errs = rejection(&"x".repeat(200 * 1024));
    assert_eq!(
        errs,
        ["204800 bytes long; at most 131072 bytes are accepted"]
    );
}

#[test]
fn control_characters_other_than_tab_are_rejected() {
    Overrides::parse("overrides {\n\tno_path_retry\t5\n}\n").unwrap();
    for c in ['\0', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{b}', '\u{c}'] {
        let errs = rejection(&format!("overrides {{\n\tno_path_retry 5{c}\n}}\n"));
        assert_eq!(errs.len(), 1, "{c:?}");
        assert!(errs[0].starts_with("line 2: contains "), "{errs:?}");
    }
}

#[test]
fn stored_form_is_a_json_string() {
    let o = config_common::vendor_overrides();
    let json = serde_json::to_string(&o).unwrap();
    assert_eq!(Overrides::from_json(&json).unwrap(), o);
    assert_eq!(serde_json::from_str::<Overrides>(&json).unwrap(), o);
    assert!(matches!(
        Overrides::from_json("{"),
        Err(DocumentError::Json { .. })
    ));
    let bad = serde_json::to_string("defaults {\n}\n").unwrap();
    assert!(matches!(
        Overrides::from_json(&bad),
        Err(DocumentError::Invalid { .. })
    ));
    assert!(
        serde_json::from_str::<Overrides>(&bad)
            .unwrap_err()
            .to_string()
            .starts_with("invalid overrides: overrides: line 1: section \"defaults\"")
    );
}

/// Real-world device entries (NetApp, Pure, 3PAR, Dell EMC, IBM) and an `overrides` section
/// with `protocol` subsections; `config_multipath_t.rs` runs the same file through the real
/// parser.
pub const REAL_WORLD: &str = include_str!("fixtures/overrides/real-world.conf");

#[test]
fn accepts_real_world_device_entries() {
    let o = Overrides::parse(REAL_WORLD).unwrap();
    assert_eq!(o.as_str(), REAL_WORLD);
    assert!(!o.is_empty());
}

/// A device entry around `body` (vendor and product given).
fn in_device(body: &str) -> String {
    format!("devices {{\n\tdevice {{\n\t\tvendor \"V\"\n\t\tproduct \"P\"\n{body}\t}}\n}}\n")
}

#[test]
fn unknown_keyword_is_refused_with_its_line_and_section() {
    // what multipath -t says about this: "line 3, invalid keyword in the device section"
    let errs = rejection(
        "devices {\n\tdevice {\n\t\tno_such_keyword 1\n\t\tvendor \"X\"\n\t\tproduct \"Y\"\n\t}\n}\n",
    );
    assert_eq!(
        errs,
        [
            "line 3: unknown keyword \"no_such_keyword\" in section \"device\": multipath-tools 0.9.4 would log \"invalid keyword in the device section\" and skip the line"
        ]
    );
}

#[test]
fn keywords_multipath_would_skip_or_drop_are_refused() {
    let cases: Vec<(&str, String)> = vec![
        ("unknown keyword", in_device("\t\tno_such_keyword 1\n")),
        (
            "misspelled vendor (the entry loses its vendor)",
            "devices {\n\tdevice {\n\t\tvendr \"NETAPP\"\n\t\tproduct \"LUN.*\"\n\t}\n}\n".into(),
        ),
        ("misspelled keyword", in_device("\t\tpath_checkr tur\n")),
        (
            "missing vendor",
            "devices {\n\tdevice {\n\t\tproduct \"LUN.*\"\n\t\tno_path_retry queue\n\t}\n}\n"
                .into(),
        ),
        (
            "missing product",
            "devices {\n\tdevice {\n\t\tvendor \"NETAPP\"\n\t}\n}\n".into(),
        ),
        ("empty device", "devices {\n\tdevice {\n\t}\n}\n".into()),
        (
            "deprecated and ignored in device",
            in_device(
                "\t\tgetuid_callout \"/lib/udev/scsi_id -g -u -d /dev/%n\"\n\t\tpg_timeout 10\n",
            ),
        ),
        (
            "deprecated and ignored in overrides",
            "overrides {\n\tgetuid_callout \"/bin/true\"\n}\n".into(),
        ),
        (
            "defaults keyword in device",
            in_device("\t\tpolling_interval 5\n"),
        ),
        (
            "defaults keyword in overrides",
            "overrides {\n\tfind_multipaths yes\n}\n".into(),
        ),
        (
            "multipaths-only keyword in overrides",
            "overrides {\n\talias db\n\twwid 3600a098038303053453f463045727a2f\n}\n".into(),
        ),
        (
            "device-only keyword in overrides",
            "overrides {\n\thardware_handler \"1 alua\"\n\tvendor NETAPP\n}\n".into(),
        ),
        (
            "overrides keyword in protocol",
            "overrides {\n\tprotocol {\n\t\ttype \"scsi:fcp\"\n\t\tno_path_retry queue\n\t}\n}\n"
                .into(),
        ),
        (
            "protocol without type",
            "overrides {\n\tprotocol {\n\t\tfast_io_fail_tmo 5\n\t}\n}\n".into(),
        ),
        (
            "protocol with an unknown type",
            "overrides {\n\tprotocol {\n\t\ttype \"nvme\"\n\t}\n}\n".into(),
        ),
        (
            "type directly in overrides",
            "overrides {\n\ttype \"scsi:fcp\"\n}\n".into(),
        ),
        (
            "repeated keyword",
            in_device("\t\tno_path_retry queue\n\t\tno_path_retry 5\n"),
        ),
        (
            "checker and path_checker",
            "overrides {\n\tpath_checker tur\n\tchecker directio\n}\n".into(),
        ),
        ("case matters", in_device("\t\tNo_Path_Retry queue\n")),
    ];
    let mut report = String::new();
    for (what, text) in &cases {
        let errs = rejection(text);
        assert!(!errs.is_empty(), "{what}");
        for e in &errs {
            assert!(e.starts_with("line "), "{what}: {e}");
        }
        report.push_str(&format!("{what}:\n"));
        for e in errs {
            report.push_str(&format!("  {e}\n"));
        }
    }
    insta::assert_snapshot!("keyword_rejections", report);
}

#[test]
fn every_keyword_error_is_reported_at_once_up_to_the_limit() {
    let text = "devices {\n\tdevice {\n\t\tvendr X\n\t\tprodct Y\n\t\tpolling_interval 5\n\t}\n}\noverrides {\n\talias a\n\tprotocol {\n\t}\n}\n";
    let errs = rejection(text);
    let lines: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
    assert_eq!(
        lines,
        ["line 3", "line 4", "line 5", "line 6", "line 9", "line 11"],
        "{errs:#?}"
    );
    assert!(
        errs[3].contains("has no \"vendor\" and no \"product\""),
        "{errs:#?}"
    );

    // a document of nothing but mistakes: at most 50 errors
    let mut text = String::from("overrides {\n");
    for i in 0..200 {
        text.push_str(&format!("\tbogus_{i} 1\n"));
    }
    text.push_str("}\n");
    assert_eq!(rejection(&text).len(), 50);
}

#[test]
fn every_table_keyword_is_accepted_in_its_section_and_only_deprecated_ones_refused() {
    use mpcluster_core::config::keywords::{self, KeywordStatus};
    for (section, table) in [
        ("device", keywords::DEVICE),
        ("overrides", keywords::OVERRIDES),
        ("protocol", keywords::PROTOCOL),
    ] {
        for k in table {
            let value = if k.name == "type" { "scsi:fcp" } else { "1" };
            let line = format!("{} \"{value}\"\n", k.name);
            let text = match section {
                "device" if matches!(k.name, "vendor" | "product") => {
                    "devices {\ndevice {\nvendor V\nproduct P\n}\n}\n".to_owned()
                }
                "device" => format!("devices {{\ndevice {{\nvendor V\nproduct P\n{line}}}\n}}\n"),
                "overrides" => format!("overrides {{\n{line}}}\n"),
                _ if k.name == "type" => format!("overrides {{\nprotocol {{\n{line}}}\n}}\n"),
                _ => format!("overrides {{\nprotocol {{\ntype scsi:fcp\n{line}}}\n}}\n"),
            };
            let result = Overrides::parse(&text);
            match k.status {
                KeywordStatus::Accepted => {
                    assert!(result.is_ok(), "{section} {}: {result:?}", k.name);
                }
                _ => {
                    let errs = result.unwrap_err();
                    assert!(
                        errs.errors()[0].message.contains("deprecated"),
                        "{section} {}: {errs:?}",
                        k.name
                    );
                }
            }
        }
    }
    for t in keywords::PROTOCOL_TYPES {
        Overrides::parse(format!(
            "overrides {{\n\tprotocol {{\n\t\ttype \"{t}\"\n\t}}\n}}\n"
        ))
        .unwrap();
    }
}

#[test]
fn content_of_refused_sections_is_not_judged_again() {
    // one message per refused section, not one per line in it
    let errs = rejection("multipaths {\n\tmultipath {\n\t\twwid x\n\t\talias y\n\t}\n}\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("line 1: section \"multipaths\""));
    let errs = rejection("defaults {\n\tpolling_interval 5\n");
    assert_eq!(
        errs[1],
        "unbalanced braces: \"defaults\" opened at line 1 is not closed"
    );
}
