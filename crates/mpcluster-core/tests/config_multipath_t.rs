//! The rendered drop-ins against the REAL multipath-tools: `multipath -t` (parse the
//! configuration, print the effective one) inside a private mount namespace, with an overlay
//! over `/etc` so the host is untouched.
//!
//! Needs root (unshare -m), `unshare` and `multipath` (Debian multipath-tools). Under `CI=true`
//! anything missing is a failure; otherwise the test prints why it skips and passes.
#![allow(clippy::unwrap_used)]

mod config_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use config_common::{VENDOR_OVERRIDES, rich, vendor_overrides};
use mpcluster_core::config::overrides::{Token, tokenize_line};
use mpcluster_core::config::render::wwid_regex;
use mpcluster_core::config::{
    BASELINE_FILE_NAME, FIXED_DEFAULTS, OVERRIDES_FILE_NAME, render_baseline, render_overrides,
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

#[test]
fn multipath_t_accepts_the_rendered_files() {
    let Some(multipath) = find_multipath() else {
        return skip("multipath (multipath-tools) is not installed");
    };
    let cfg = rich();
    let baseline = render_baseline(&cfg).unwrap().unwrap();
    let overrides = render_overrides(&vendor_overrides()).unwrap();
    let tmp = TempDir::new();
    write(&tmp.0, "baseline.conf", &baseline);
    write(&tmp.0, "overrides.conf", &overrides);

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
        Err(e) => return skip(&format!("cannot run unshare: {e}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(SETUP_FAILED) || (!out.status.success() && stdout.is_empty()) {
        return skip(&format!(
            "cannot set up a private mount namespace with an overlay over /etc (needs root): \
             {}: {stderr}",
            out.status
        ));
    }
    assert!(
        out.status.success(),
        "multipath -t: {}\n{stderr}",
        out.status
    );

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
