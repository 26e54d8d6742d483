//! A change request, Proxmox style ([`Form`]): the properties to set, an optional `delete` list
//! (array, or a string separated by `,`, `;` or spaces) and an optional `digest`.
//!
//! Transport-neutral: the server builds one from a JSON body, the CLI from its arguments.
//! [`Form::from_object`] reports every problem of `digest` and `delete` at once; the properties
//! are checked by the resource's operation (every field error at once as well).

use std::collections::BTreeMap;

use mpcluster_core::config::{ConfigError, ConfigErrors};
use mpcluster_core::digest::{ConfigDigest, DigestParseError};
use serde_json::{Map, Value};

use crate::error::{EditError, one_error};

/// A parsed change request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Form {
    /// The client's digest, if sent.
    pub digest: Option<ConfigDigest>,
    /// Properties to clear.
    pub delete: Vec<String>,
    /// Properties to set (everything but `digest` and `delete`).
    pub props: BTreeMap<String, Value>,
}

/// Split a Proxmox-style list (`a,b c;d`).
pub fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|p| !p.is_empty())
}

/// Parse a digest given as a JSON value (`null` = none). Errors are keyed `digest`.
pub fn parse_digest(v: &Value) -> Result<Option<ConfigDigest>, ConfigErrors> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => s
            .parse()
            .map(Some)
            .map_err(|e: DigestParseError| one_error("digest", e.to_string())),
        _ => Err(one_error("digest", "must be a string of 64 hex digits")),
    }
}

impl Form {
    /// A form from a request object: `digest` and `delete` are taken out and checked (every
    /// error of both at once, keyed `digest` and `delete`), the rest are the properties.
    pub fn from_object(object: Map<String, Value>) -> Result<Form, EditError> {
        let mut top = object;
        let mut errs = ConfigErrors::default();
        let digest = match top.remove("digest") {
            None => None,
            Some(v) => parse_digest(&v).unwrap_or_else(|e| {
                errs.0.extend(e.0);
                None
            }),
        };
        let delete = match top.remove("delete") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => split_list(&s).map(str::to_owned).collect(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Value::String(s) => out.push(s),
                        _ => errs.0.push(ConfigError::new(
                            "delete",
                            "must list property names (strings)",
                        )),
                    }
                }
                out
            }
            Some(_) => {
                errs.0.push(ConfigError::new(
                    "delete",
                    "must be a list of property names (an array, or a comma-separated string)",
                ));
                Vec::new()
            }
        };
        errs.into_result().map_err(EditError::Invalid)?;
        Ok(Form {
            digest,
            delete,
            props: top.into_iter().collect(),
        })
    }

    /// A form of properties only (the CLI's `KNOB=VALUE` arguments).
    pub fn props(props: BTreeMap<String, Value>) -> Form {
        Form {
            props,
            ..Form::default()
        }
    }

    /// Take a required string property out of the form (`required` / `must be a string`,
    /// keyed by its name).
    pub fn take_string(&mut self, name: &str) -> Result<String, EditError> {
        match self.props.remove(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(EditError::field(name, "must be a string")),
            None => Err(EditError::field(name, "required")),
        }
    }

    /// Refuse every property and `delete` (a request that takes only a digest, or only named
    /// properties already taken out): each one is a field error.
    pub fn no_props(&self) -> Result<(), EditError> {
        let mut errs = ConfigErrors::default();
        for name in self.props.keys() {
            errs.0
                .push(ConfigError::new(key_name(name), "unexpected property"));
        }
        if !self.delete.is_empty() {
            errs.0
                .push(ConfigError::new("delete", "not supported here"));
        }
        errs.into_result().map_err(EditError::Invalid)
    }

    /// The digest of a removal: `query` (when the transport has one, e.g. `?digest=`) wins over
    /// the form's; any property or `delete` is refused.
    pub fn removal_digest(&self, query: Option<&str>) -> Result<Option<ConfigDigest>, EditError> {
        let digest = match query {
            Some(d) => parse_digest(&Value::from(d)).map_err(EditError::Invalid)?,
            None => self.digest,
        };
        self.no_props()?;
        Ok(digest)
    }
}

/// Re-key field errors: `prefix` (e.g. `wwids.<wwid>.`) is dropped, and a field equal to
/// `from` is renamed `to`.
pub(crate) fn rekey(
    errs: ConfigErrors,
    prefix: &str,
    rename: Option<(&str, &str)>,
) -> ConfigErrors {
    ConfigErrors(
        errs.0
            .into_iter()
            .map(|mut e| {
                if let Some(rest) = e.field.strip_prefix(prefix) {
                    e.field = rest.to_owned();
                }
                if let Some((from, to)) = rename
                    && e.field == from
                {
                    e.field = to.to_owned();
                }
                e
            })
            .collect(),
    )
}

/// A property name as an error key: as is when short and printable, else escaped and cut.
pub(crate) fn key_name(name: &str) -> String {
    if name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
        return name.to_owned();
    }
    let cut: String = name.chars().take(40).collect();
    let mut out = format!("{cut:?}");
    if cut.len() < name.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn forms() {
        assert_eq!(Form::from_object(Map::new()).unwrap(), Form::default());
        let f =
            Form::from_object(obj(json!({"a": 1, "delete": "x, y;z", "digest": null}))).unwrap();
        assert_eq!(f.delete, ["x", "y", "z"]);
        assert_eq!(f.props.len(), 1);
        let Err(EditError::Invalid(e)) =
            Form::from_object(obj(json!({"digest": "zz", "delete": 5})))
        else {
            panic!()
        };
        assert!(e.for_field("digest").is_some() && e.for_field("delete").is_some());
    }

    #[test]
    fn removal_digests() {
        let d = ConfigDigest::of("x");
        let f = Form::from_object(obj(json!({"digest": d.to_string()}))).unwrap();
        assert_eq!(f.removal_digest(None).unwrap(), Some(d));
        let q = ConfigDigest::of("y").to_string();
        assert_eq!(
            f.removal_digest(Some(&q)).unwrap(),
            Some(ConfigDigest::of("y"))
        );
        assert!(f.removal_digest(Some("zz")).is_err());
        let f = Form::from_object(obj(json!({"x": 1, "delete": "a"}))).unwrap();
        let Err(EditError::Invalid(e)) = f.removal_digest(None) else {
            panic!()
        };
        assert!(e.for_field("x").is_some() && e.for_field("delete").is_some());
    }
}
