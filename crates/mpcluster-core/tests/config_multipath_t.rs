//! The rendered drop-ins against the REAL multipath-tools: `multipath -t` (parse the
//! configuration, print the effective one) inside a private mount namespace, with an overlay
//! over `/etc` so the host is untouched. Also the property that the overrides validator and the
//! real parser agree: documents covering every keyword of multipath-tools 0.9.4's `device`,
//! `overrides` and `protocol` tables pass our validation and the real parser reads them without
//! a complaint.
//!
//! Needs root (unshare -m), `unshare` and `multipath` (Debian multipath-tools). Under `CI=true`
//! anything missing is a failure; otherwise the test prints why it skips and passes.
#![allow(clippy::unwrap_used)]

mod config_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use config_common::{VENDOR_OVERRIDES, rich, vendor_overrides};
use mpcluster_core::config::keywords::{self, Keyword, KeywordStatus};
use mpcluster_core::config::overrides::{Token, tokenize_line};
use mpcluster_core::config::render::wwid_regex;
use mpcluster_core::config::{
    BASELINE_FILE_NAME, FIXED_DEFAULTS, OVERRIDES_FILE_NAME, Overrides, read_parser_stderr,
    render_baseline, render_overrides,
};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skip (print why) or, under CI, fail.
fn skip(why: &str) {
    if ci() {
        panic!("CI=true and {why}");
    }
    eprintln!("skipping: {why}");
}

fn find_multipath() -> Option<PathBuf> {
    ["/sbin/multipath", "/usr/sbin/multipath"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "mpcluster-multipath-t-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(p.join("ns")).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Exit code of the namespace script when the namespace / overlay could not be set up.
const SETUP_FAILED: i32 = 97;

const SCRIPT: &str = r#"
set -u
T="$1"; MP="$2"
mount -t tmpfs mpcluster-test "$T/ns" || exit 97
mkdir "$T/ns/upper" "$T/ns/work" || exit 97
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/ns/upper,workdir=$T/ns/work" /etc || exit 97
rm -rf /etc/multipath /etc/multipath.conf || exit 97
mkdir -p /etc/multipath/conf.d || exit 97
: > /etc/multipath.conf
cp "$T/baseline.conf" "/etc/multipath/conf.d/$3" || exit 97
cp "$T/overrides.conf" "/etc/multipath/conf.d/$4" || exit 97
exec "$MP" -t
"#;

/// A section of `multipath -t` output: its keyword/value lines and subsections.
#[derive(Debug, Default)]
struct Section {
    name: String,
    values: Vec<(String, String)>,
    children: Vec<Section>,
}

impl Section {
    fn child(&self, name: &str) -> &Section {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no section {name} in {}", self.name))
    }

    fn value(&self, keyword: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
    }
}

/// Read multipath's own output format with multipath's tokenizer.
fn parse_config(text: &str) -> Section {
    let mut stack = vec![Section {
        name: "(top)".into(),
        ..Section::default()
    }];
    for line in text.lines() {
        match tokenize_line(line).as_slice() {
            [] => {}
            [Token::Word(name), Token::Open] => stack.push(Section {
                name: name.clone(),
                ..Section::default()
            }),
            [Token::Close] => {
                let done = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(done);
            }
            [Token::Word(k), Token::Word(v)]
            | [Token::Word(k), Token::Quote, Token::Word(v), Token::Quote] => stack
                .last_mut()
                .unwrap()
                .values
                .push((k.clone(), v.clone())),
            [Token::Word(k), Token::Quote, Token::Quote] => stack
                .last_mut()
                .unwrap()
                .values
                .push((k.clone(), String::new())),
            other => panic!("unexpected line in multipath -t output: {line:?} {other:?}"),
        }
    }
    assert_eq!(stack.len(), 1, "unbalanced multipath -t output");
    stack.pop().unwrap()
}

fn write(dir: &Path, name: &str, content: &str) {
    std::fs::write(dir.join(name), content).unwrap();
}

/// Run the real `multipath -t` on the two drop-ins (and an empty `/etc/multipath.conf`):
/// `(stdout, stderr)`, or `None` when it cannot run here (after [`skip`]).
fn multipath_t(baseline: &str, overrides: &str) -> Option<(String, String)> {
    let Some(multipath) = find_multipath() else {
        skip("multipath (multipath-tools) is not installed");
        return None;
    };
    let tmp = TempDir::new();
    write(&tmp.0, "baseline.conf", baseline);
    write(&tmp.0, "overrides.conf", overrides);

    let out = match Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            SCRIPT,
            "sh",
        ])
        .arg(&tmp.0)
        .arg(&multipath)
        .args([BASELINE_FILE_NAME, OVERRIDES_FILE_NAME])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            skip(&format!("cannot run unshare: {e}"));
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.code() == Some(SETUP_FAILED) || (!out.status.success() && stdout.is_empty()) {
        skip(&format!(
            "cannot set up a private mount namespace with an overlay over /etc (needs root): \
             {}: {stderr}",
            out.status
        ));
        return None;
    }
    assert!(
        out.status.success(),
        "multipath -t: {}\n{stderr}",
        out.status
    );
    Some((stdout, stderr))
}

#[test]
fn multipath_t_accepts_the_rendered_files() {
    let cfg = rich();
    let baseline = render_baseline(&cfg).unwrap().unwrap();
    let overrides = render_overrides(&vendor_overrides()).unwrap();
    let Some((stdout, stderr)) = multipath_t(&baseline, &overrides) else {
        return;
    };

    // multipath reports config problems on stderr (exit code 0): there must be none
    let complaints: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        complaints.is_empty(),
        "multipath -t complained:\n{}\n--- baseline ---\n{baseline}--- overrides ---\n{overrides}",
        complaints.join("\n")
    );

    let top = parse_config(&stdout);
    // our knobs, as multipath read them
    let defaults = top.child("defaults");
    let mut report = String::from("defaults (as multipath -t prints them):\n");
    for (keyword, value) in FIXED_DEFAULTS {
        assert_eq!(defaults.value(keyword), Some(*value), "{keyword}");
        report.push_str(&format!("  {keyword} {value}\n"));
    }
    for (knob, value) in cfg.defaults().iter() {
        assert_eq!(
            defaults.value(knob.keyword()),
            Some(value.render().as_str()),
            "defaults {}",
            knob.keyword()
        );
        report.push_str(&format!("  {} {}\n", knob.keyword(), value.render()));
    }
    // the allow-list
    let blacklist = top.child("blacklist");
    assert!(blacklist.values.contains(&("wwid".into(), ".*".into())));
    let exceptions = top.child("blacklist_exceptions");
    for w in cfg.wwids().keys() {
        assert!(
            exceptions
                .values
                .contains(&("wwid".into(), wwid_regex(w.as_str()))),
            "exception for {w}"
        );
    }
    // the multipaths entries
    let multipaths = top.child("multipaths");
    for (w, entry) in cfg.wwids() {
        let m = multipaths
            .children
            .iter()
            .find(|m| m.value("wwid") == Some(w.as_str()))
            .unwrap_or_else(|| panic!("no multipath entry for {w}:\n{stdout}"));
        assert_eq!(m.value("alias"), entry.alias().map(|a| a.as_str()), "{w}");
        report.push_str(&format!("multipath {w}:\n"));
        if let Some(a) = entry.alias() {
            report.push_str(&format!("  alias {a}\n"));
        }
        for (knob, value) in entry.knobs().iter() {
            assert_eq!(
                m.value(knob.keyword()),
                Some(value.render().as_str()),
                "{w} {}",
                knob.keyword()
            );
            report.push_str(&format!("  {} {}\n", knob.keyword(), value.render()));
        }
    }
    // the admin's overrides and device entry
    let ovr = top.child("overrides");
    assert_eq!(ovr.value("dev_loss_tmo"), Some("60"));
    assert_eq!(ovr.child("protocol").value("fast_io_fail_tmo"), Some("7"));
    let netapp = top
        .child("devices")
        .children
        .iter()
        .rev()
        .find(|d| d.value("vendor") == Some("NETAPP") && d.value("product") == Some("LUN.*"))
        .unwrap_or_else(|| panic!("no NETAPP LUN.* device:\n{stdout}"));
    assert_eq!(netapp.value("features"), Some("2 pg_init_retries 50"));
    assert_eq!(netapp.value("prio"), Some("ontap"));
    assert!(VENDOR_OVERRIDES.contains("PURE"));
    eprintln!("{report}");
}

#[test]
fn exception_regexes_match_only_their_wwid() {
    // multipath compiles blacklist entries with regcomp(REG_EXTENDED); GNU grep -E reads POSIX
    // EREs the same way.
    let cfg = rich();
    let wwids: Vec<String> = cfg.wwids().keys().map(|w| w.to_string()).collect();
    let mut candidates: std::collections::BTreeSet<String> = wwids.iter().cloned().collect();
    for w in &wwids {
        candidates.insert(format!("x{w}"));
        candidates.insert(format!("{w}x"));
        // what an unescaped '.', '+', '(' ... would also have matched
        candidates.insert(w.replace('.', "X"));
        candidates.insert(w.replace("+x", "xx"));
        candidates.insert(w.replace("(1)", "1").replace("[2]", "2"));
    }
    let input = candidates.into_iter().collect::<Vec<_>>().join("\n") + "\n";
    for w in &wwids {
        let mut child = match Command::new("grep")
            .args(["-E", "-e", &wwid_regex(w)])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return skip(&format!("cannot run grep: {e}")),
        };
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{w}\n"),
            "{w}"
        );
    }
}

/// A value multipath-tools 0.9.4 parses for `keyword` (from the multipath.conf(5) man page of
/// 0.9.4; a number where the keyword takes one).
fn sample_value(keyword: &str) -> &'static str {
    match keyword {
        "alias_prefix" => "mpath",
        "all_tg_pt"
        | "deferred_remove"
        | "flush_on_last_del"
        | "ghost_delay"
        | "recheck_wwid"
        | "skip_kpartx"
        | "user_friendly_names"
        | "delay_wait_checks"
        | "delay_watch_checks" => "no",
        "detect_checker" | "detect_prio" | "retain_attached_hw_handler" => "yes",
        "checker" | "path_checker" => "tur",
        "dev_loss_tmo" => "60",
        "eh_deadline" => "10",
        "failback" => "immediate",
        "fast_io_fail_tmo" => "5",
        "features" => "0",
        "hardware_handler" => "1 alua",
        "marginal_path_double_failed_time" => "60",
        "marginal_path_err_rate_threshold" => "10",
        "marginal_path_err_recheck_gap_time" => "600",
        "marginal_path_err_sample_time" => "120",
        "max_sectors_kb" => "1024",
        "no_path_retry" => "queue",
        "path_grouping_policy" => "group_by_prio",
        "path_selector" => "service-time 0",
        "prio" => "alua",
        "prio_args" => "exclusive_pref_bit",
        "product" => "MPCLUSTER-PROP.*",
        "product_blacklist" => "LUNZ",
        "revision" => "1.0",
        "rr_min_io" => "1000",
        "rr_min_io_rq" => "1",
        "rr_weight" => "uniform",
        "san_path_err_forget_rate" | "san_path_err_recovery_time" | "san_path_err_threshold" => {
            "100"
        }
        "type" => "scsi:fcp",
        "uid_attribute" => "ID_SERIAL",
        "vendor" => "MPCLUSTER",
        "vpd_vendor" => "hp3par",
        other => panic!("no sample value for {other}: add one"),
    }
}

/// The applied keywords of `table`; with `alias`, `checker` instead of `path_checker` (the two
/// set one value, so a section takes only one of them).
fn applied(table: &[Keyword], alias: bool) -> Vec<&'static str> {
    table
        .iter()
        .filter(|k| k.status == KeywordStatus::Accepted)
        .map(|k| k.name)
        .filter(|n| {
            if alias {
                *n != "path_checker"
            } else {
                *n != "checker"
            }
        })
        .collect()
}

fn lines(indent: &str, keywords: &[&str]) -> String {
    keywords
        .iter()
        .map(|k| format!("{indent}{k} \"{}\"\n", sample_value(k)))
        .collect()
}

/// Documents that together use every applied keyword of the three tables, every protocol
/// type, both spellings of the path checker, plus the real-world fixture.
fn generated_documents() -> Vec<(String, String)> {
    let mut docs = Vec::new();
    for alias in [false, true] {
        let device = applied(keywords::DEVICE, alias);
        let overrides = applied(keywords::OVERRIDES, alias);
        let protocol: Vec<&str> = applied(keywords::PROTOCOL, alias);
        docs.push((
            format!("every keyword (checker alias: {alias})"),
            format!(
                "devices {{\n\tdevice {{\n{}\t}}\n}}\noverrides {{\n{}\tprotocol {{\n{}\t}}\n}}\n",
                lines("\t\t", &device),
                lines("\t", &overrides),
                lines("\t\t", &protocol),
            ),
        ));
    }
    let mut protocols = String::from("overrides {\n");
    for t in keywords::PROTOCOL_TYPES {
        protocols.push_str(&format!(
            "\tprotocol {{\n\t\ttype \"{t}\"\n\t\tdev_loss_tmo 30\n\t}}\n"
        ));
    }
    protocols.push_str("}\n");
    docs.push(("every protocol type".into(), protocols));
    // several minimal device entries: vendor and product are all they need
    docs.push((
        "minimal devices".into(),
        "devices {\n\tdevice {\n\t\tvendor A\n\t\tproduct B\n\t}\n\tdevice {\n\t\tproduct \"x y\"\n\t\tvendor \"\"\n\t}\n}\n"
            .into(),
    ));
    docs.push((
        "real-world".into(),
        include_str!("fixtures/overrides/real-world.conf").into(),
    ));
    docs
}

#[test]
fn every_document_the_validator_accepts_the_real_parser_reads_without_complaint() {
    let docs = generated_documents();
    // the generated documents use every keyword of each table
    for table in [keywords::DEVICE, keywords::OVERRIDES, keywords::PROTOCOL] {
        for k in table.iter().filter(|k| k.status == KeywordStatus::Accepted) {
            assert!(
                docs.iter().any(|(_, d)| d
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{} ", k.name)))),
                "{} not covered",
                k.name
            );
        }
    }
    let baseline = render_baseline(&rich()).unwrap().unwrap();
    for (what, text) in &docs {
        let overrides = Overrides::parse(text.as_str())
            .unwrap_or_else(|e| panic!("{what}: the validator refuses it: {e:?}\n{text}"));
        let rendered = render_overrides(&overrides).unwrap();
        let Some((stdout, stderr)) = multipath_t(&baseline, &rendered) else {
            return;
        };
        let output = read_parser_stderr(&stderr);
        for c in &output.complaints {
            assert!(
                !c.contains("invalid keyword")
                    && !c.contains("missing vendor or product")
                    && !c.contains("missing type")
                    && !c.contains("duplicate keyword")
                    && !c.contains("deprecated"),
                "{what}: multipath -t: {c}\n{text}"
            );
        }
        // the sample values are valid too: nothing at all to complain about
        assert!(
            !output.has_complaints(),
            "{what}: multipath -t complained: {:#?}\n{text}",
            output.complaints
        );
        // nothing was dropped: each device entry and each protocol entry is in the output
        let top = parse_config(&stdout);
        for (vendor, product) in text.split("device {").skip(1).map(|d| {
            let body = d.split('}').next().unwrap();
            let entry = parse_config(&format!("device {{{body}}}\n"));
            let dev = entry.child("device");
            (
                dev.value("vendor").unwrap().to_owned(),
                dev.value("product").unwrap().to_owned(),
            )
        }) {
            assert!(
                top.child("devices")
                    .children
                    .iter()
                    .any(|d| d.value("vendor") == Some(vendor.as_str())
                        && d.value("product") == Some(product.as_str())),
                "{what}: device {vendor:?} {product:?} dropped"
            );
        }
        let protocols = text.matches("protocol {").count();
        if protocols > 0 {
            assert_eq!(
                top.child("overrides")
                    .children
                    .iter()
                    .filter(|c| c.name == "protocol")
                    .count(),
                protocols,
                "{what}: a protocol entry was dropped"
            );
        }
    }
}
