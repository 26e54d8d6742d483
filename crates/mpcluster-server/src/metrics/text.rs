//! The Prometheus text exposition format (version 0.0.4), written into byte buffers: family
//! headers, samples, label escaping. Writing into a `Vec` cannot fail, so nothing here returns
//! a `Result`.

use std::io::Write as _;

/// The `Content-Type` of a scrape.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    Counter,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

/// `# HELP` and `# TYPE` of a family. Every sample of the family must follow before the next
/// family starts.
pub(crate) fn family(out: &mut Vec<u8>, name: &str, kind: Kind, help: &str) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    for b in help.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.as_str().as_bytes());
    out.push(b'\n');
}

/// Append `name="value"` to a label list (`a="x",b="y"`), escaping the value as the format
/// requires (`\` `"` and line feeds). Label names are ours and need no escaping.
pub(crate) fn label(labels: &mut Vec<u8>, name: &str, value: &str) {
    if !labels.is_empty() {
        labels.push(b',');
    }
    pair(labels, name, value);
}

/// `name="value"`, the value escaped.
fn pair(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    if value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        for b in value.bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'"' => out.extend_from_slice(b"\\\""),
                b'\n' => out.extend_from_slice(b"\\n"),
                _ => out.push(b),
            }
        }
    } else {
        out.extend_from_slice(value.as_bytes());
    }
    out.push(b'"');
}

/// A label list of one label.
pub(crate) fn labels1(name: &str, value: &str) -> Vec<u8> {
    let mut l = Vec::with_capacity(name.len() + value.len() + 3);
    label(&mut l, name, value);
    l
}

/// A sample value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value {
    Int(u64),
    Float(f64),
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Int(u64::from(b))
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(n)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

/// `name{labels,extra} value`: `labels` is a pre-rendered label list (possibly empty),
/// `extra` one more label (the `state` of an enum series, the `le` of a bucket).
pub(crate) fn sample(
    out: &mut Vec<u8>,
    name: &str,
    labels: &[u8],
    extra: Option<(&str, &str)>,
    value: impl Into<Value>,
) {
    out.extend_from_slice(name.as_bytes());
    if !labels.is_empty() || extra.is_some() {
        out.push(b'{');
        out.extend_from_slice(labels);
        if let Some((k, v)) = extra {
            if !labels.is_empty() {
                out.push(b',');
            }
            pair(out, k, v);
        }
        out.push(b'}');
    }
    out.push(b' ');
    match value.into() {
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(f) => float(out, f),
    }
    out.push(b'\n');
}

/// A float as the format spells it (`+Inf`, `-Inf`, `NaN`; Rust's shortest round-trip
/// decimal otherwise, which Prometheus parses).
pub(crate) fn float(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"+Inf" } else { b"-Inf" });
    } else {
        let _ = write!(out, "{f}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn text(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn label_values_are_escaped() {
        let mut l = Vec::new();
        label(&mut l, "alias", "plain-name.1");
        label(&mut l, "node", "a\"b\\c\nd");
        assert_eq!(text(l), r#"alias="plain-name.1",node="a\"b\\c\nd""#);
    }

    #[test]
    fn help_is_escaped_and_types_named() {
        let mut out = Vec::new();
        family(&mut out, "x_total", Kind::Counter, "one\\two\nthree \"q\"");
        assert_eq!(
            text(out),
            "# HELP x_total one\\\\two\\nthree \"q\"\n# TYPE x_total counter\n"
        );
    }

    #[test]
    fn samples() {
        let mut out = Vec::new();
        sample(&mut out, "a", b"", None, 3u64);
        sample(&mut out, "b", b"", Some(("state", "ok")), true);
        sample(&mut out, "c", br#"x="1""#, Some(("le", "+Inf")), 0.25);
        sample(&mut out, "d", br#"x="1""#, None, f64::INFINITY);
        sample(&mut out, "e", b"", None, f64::NAN);
        sample(&mut out, "f", b"", None, 1e-7);
        assert_eq!(
            text(out),
            "a 3\nb{state=\"ok\"} 1\nc{x=\"1\",le=\"+Inf\"} 0.25\nd{x=\"1\"} +Inf\ne NaN\nf 0.0000001\n"
        );
    }
}
