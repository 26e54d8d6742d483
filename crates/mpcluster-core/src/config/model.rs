//! The cluster's multipath configuration ([`MultipathConfig`]): global `defaults` knobs and
//! the WWID allow-list with per-LUN alias and knobs ([`WwidEntry`]); its stored JSON form
//! (validated on load: [`MultipathConfig::from_json`]); and the Proxmox-style partial updates
//! the API uses ([`apply_defaults_update`], [`add_wwid`], [`set_wwid_entry`], [`remove_wwid`]).
//!
//! Every way in validates, and every update is all-or-nothing: on error the configuration is
//! left untouched and *every* field error is returned, each naming its field
//! (`defaults.polling-interval`, `wwids.<wwid>.alias`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::error::{ConfigErrors, DocumentError, shown};
use super::knobs::{Knob, Knobs};
use crate::ids::{Alias, Wwid};

/// Ids that cannot be used as WWIDs (`defaults` names the defaults section in the Proxmox
/// section config and in the API).
pub const RESERVED_IDS: &[&str] = &["defaults"];

/// The per-LUN property that is not a knob.
pub const ALIAS_PROPERTY: &str = "alias";

/// One allow-listed LUN: optional alias and per-LUN knobs (only knobs with
/// [`KnobSpec::per_lun`](super::knobs::KnobSpec::per_lun)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WwidEntry {
    alias: Option<Alias>,
    knobs: Knobs,
}

impl WwidEntry {
    /// The map alias, if set (else the map is named by its WWID).
    pub fn alias(&self) -> Option<&Alias> {
        self.alias.as_ref()
    }

    /// The per-LUN knobs.
    pub fn knobs(&self) -> &Knobs {
        &self.knobs
    }

    /// The JSON object form `{"alias": "...", "<knob>": value}` (keys sorted).
    pub fn to_json(&self) -> serde_json::Map<String, Value> {
        let mut m = self.knobs.to_json();
        if let Some(a) = &self.alias {
            m.insert(ALIAS_PROPERTY.to_owned(), Value::from(a.as_str()));
        }
        // serde_json::Map is a BTreeMap without the preserve_order feature; re-sort anyway so
        // the order does not depend on that feature.
        let sorted: BTreeMap<String, Value> = m.into_iter().collect();
        sorted.into_iter().collect()
    }
}

impl Serialize for WwidEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sorted: BTreeMap<String, Value> = self.to_json().into_iter().collect();
        sorted.serialize(s)
    }
}

/// The cluster-wide multipath configuration. Fields are private: it can only be built by the
/// validating constructors and updates below, so a value of this type is always valid (WWIDs,
/// aliases and knob values by their rules, aliases unique, no name collisions, per-LUN knobs
/// only per LUN).
///
/// JSON form (keys sorted):
/// `{"defaults": {"polling-interval": 5, ...}, "wwids": {"<wwid>": {"alias": "x", "no-path-retry": "queue"}}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MultipathConfig {
    defaults: Knobs,
    wwids: BTreeMap<Wwid, WwidEntry>,
}

impl MultipathConfig {
    /// The empty configuration (renders nothing).
    pub fn new() -> Self {
        MultipathConfig::default()
    }

    /// The global knobs (`defaults` section).
    pub fn defaults(&self) -> &Knobs {
        &self.defaults
    }

    /// The allow-list with per-LUN settings.
    pub fn wwids(&self) -> &BTreeMap<Wwid, WwidEntry> {
        &self.wwids
    }

    /// One allow-list entry.
    pub fn get(&self, wwid: &str) -> Option<&WwidEntry> {
        self.wwids.get(wwid)
    }

    /// The allow-listed WWIDs (what the wwids file must contain).
    pub fn allow_list(&self) -> BTreeSet<Wwid> {
        self.wwids.keys().cloned().collect()
    }

    /// No knobs and no WWIDs: nothing to render, the generated drop-ins should be removed.
    pub fn is_empty(&self) -> bool {
        self.defaults.is_empty() && self.wwids.is_empty()
    }

    /// The stored JSON form.
    pub fn to_json(&self) -> Value {
        let wwids: serde_json::Map<String, Value> = self
            .wwids
            .iter()
            .map(|(w, e)| (w.to_string(), Value::Object(e.to_json())))
            .collect();
        serde_json::json!({
            "defaults": Value::Object(self.defaults.to_json()),
            "wwids": Value::Object(wwids),
        })
    }

    /// Load the stored document, telling a JSON syntax error apart from a document that fails
    /// validation (which lists every field error).
    pub fn from_json(text: &str) -> Result<Self, DocumentError> {
        crate::format::check_named("multipath-config", text)?;
        let v: Value = serde_json::from_str(text).map_err(|source| DocumentError::Json {
            document: "multipath configuration",
            source,
        })?;
        MultipathConfig::from_json_value(&v).map_err(|source| DocumentError::Invalid {
            document: "multipath configuration",
            source,
        })
    }

    /// Validate a JSON value as a configuration document. Both sections are optional; unknown
    /// top-level keys are rejected.
    pub fn from_json_value(v: &Value) -> Result<Self, ConfigErrors> {
        let mut errs = ConfigErrors::default();
        let Value::Object(top) = v else {
            errs.push(
                "document",
                "must be a JSON object with \"defaults\" and \"wwids\"",
            );
            return Err(errs);
        };
        for key in top.keys() {
            if key != "defaults" && key != "wwids" && key != crate::format::FIELD {
                errs.push(
                    shown(key),
                    "unknown section; a configuration has only \"defaults\" and \"wwids\"",
                );
            }
        }
        let mut cfg = MultipathConfig::default();
        match top.get("defaults") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (name, value) in m {
                    set_knob(&mut cfg.defaults, "defaults", name, value, false, &mut errs);
                }
            }
            Some(_) => errs.push("defaults", "must be an object of knobs"),
        }
        match top.get("wwids") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (id, props) in m {
                    let Some(wwid) = check_wwid(&format!("wwids.{}", shown(id)), id, &mut errs)
                    else {
                        continue;
                    };
                    let prefix = format!("wwids.{wwid}");
                    let Value::Object(props) = props else {
                        errs.push(prefix, "must be an object (alias and per-LUN knobs)");
                        continue;
                    };
                    let mut entry = WwidEntry::default();
                    for (name, value) in props {
                        set_entry_property(&mut entry, &prefix, name, value, &mut errs);
                    }
                    cfg.wwids.insert(wwid, entry);
                }
            }
            Some(_) => errs.push("wwids", "must be an object keyed by WWID"),
        }
        let wwids: Vec<Wwid> = cfg.wwids.keys().cloned().collect();
        for w in &wwids {
            cfg.check_names(w, "wwids", &mut errs);
        }
        errs.into_result().map(|()| cfg)
    }

    /// Name collisions involving entry `wwid`: its alias used by another entry or equal to
    /// another entry's WWID, or its WWID used as another entry's alias. `id_field` is the field
    /// reported for the last case (`wwid` in a request, `wwids` in a document).
    fn check_names(&self, wwid: &Wwid, id_field: &str, errs: &mut ConfigErrors) {
        let Some(entry) = self.wwids.get(wwid) else {
            return;
        };
        if let Some(alias) = &entry.alias {
            let field = format!("wwids.{wwid}.{ALIAS_PROPERTY}");
            if let Some((other, _)) = self
                .wwids
                .iter()
                .find(|(o, e)| *o != wwid && e.alias.as_ref() == Some(alias))
            {
                errs.push(
                    field,
                    format!("alias \"{alias}\" is already used by {other}"),
                );
            } else if alias.as_str() != wwid.as_str() && self.wwids.contains_key(alias.as_str()) {
                errs.push(
                    field,
                    format!(
                        "alias \"{alias}\" is the WWID of another allow-listed LUN (map names would collide)"
                    ),
                );
            }
        }
        if let Some((other, _)) = self
            .wwids
            .iter()
            .find(|(o, e)| *o != wwid && e.alias.as_ref().map(Alias::as_str) == Some(wwid.as_str()))
        {
            let field = if id_field == "wwid" {
                "wwid".to_owned()
            } else {
                format!("wwids.{wwid}")
            };
            errs.push(
                field,
                format!("{wwid} is the alias of {other} (map names would collide)"),
            );
        }
    }
}

impl<'de> Deserialize<'de> for MultipathConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        MultipathConfig::from_json_value(&v).map_err(|errs| {
            let all: Vec<String> = errs.errors().iter().map(ToString::to_string).collect();
            serde::de::Error::custom(format!(
                "invalid multipath configuration: {}",
                all.join("; ")
            ))
        })
    }
}

/// Validate `id` as an allow-list WWID (the `Wwid` rules, and not a reserved id).
fn check_wwid(field: &str, id: &str, errs: &mut ConfigErrors) -> Option<Wwid> {
    if RESERVED_IDS.iter().any(|r| r.eq_ignore_ascii_case(id)) {
        errs.push(field, format!("\"{id}\" is a reserved id, not a WWID"));
        return None;
    }
    match Wwid::new(id) {
        Ok(w) => Some(w),
        Err(e) => {
            errs.push(field, e.to_string());
            None
        }
    }
}

/// Parse and set one knob under `prefix` (`defaults` or `wwids.<wwid>`).
fn set_knob(
    knobs: &mut Knobs,
    prefix: &str,
    name: &str,
    value: &Value,
    per_lun: bool,
    errs: &mut ConfigErrors,
) {
    let field = format!("{prefix}.{}", shown(name));
    let Some(knob) = Knob::from_name(name) else {
        errs.push(field, Knob::unknown_name_message(name));
        return;
    };
    if per_lun && !knob.per_lun() {
        errs.push(
            field,
            "not valid per LUN (multipath ignores it in a multipaths entry); set it in defaults",
        );
        return;
    }
    match knob.parse_json(value) {
        Ok(v) => {
            // parse_json only returns values of this knob, in range
            if let Err(m) = knobs.set(knob, v) {
                errs.push(field, m);
            }
        }
        Err(m) => errs.push(field, m),
    }
}

/// Set one property (alias or per-LUN knob) of an entry.
fn set_entry_property(
    entry: &mut WwidEntry,
    prefix: &str,
    name: &str,
    value: &Value,
    errs: &mut ConfigErrors,
) {
    if name == ALIAS_PROPERTY {
        let field = format!("{prefix}.{ALIAS_PROPERTY}");
        match value {
            Value::String(s) => match Alias::new(s.as_str()) {
                Ok(a) => entry.alias = Some(a),
                Err(e) => errs.push(field, e.to_string()),
            },
            _ => errs.push(field, "must be a string (delete it to clear the alias)"),
        }
        return;
    }
    set_knob(&mut entry.knobs, prefix, name, value, true, errs);
}

/// Names that appear in both `set` and `delete`, each reported once under `prefix`.
fn set_and_deleted(
    prefix: &str,
    set: &BTreeMap<String, Value>,
    delete: &[String],
    errs: &mut ConfigErrors,
) -> BTreeSet<String> {
    let both: BTreeSet<String> = delete
        .iter()
        .filter(|d| set.contains_key(d.as_str()))
        .cloned()
        .collect();
    for name in &both {
        errs.push(
            format!("{prefix}.{}", shown(name)),
            "both set and deleted in one update",
        );
    }
    both
}

/// Partial update of the `defaults` knobs (Proxmox style): knobs in `set` are set (values as
/// JSON strings or numbers: `"5"` and `5` are both accepted for integers), knobs in `delete`
/// are unset, all others stay as they are. Unknown names, invalid values and a name both set and
/// deleted are rejected. All-or-nothing: on error `cfg` is unchanged.
pub fn apply_defaults_update(
    cfg: &mut MultipathConfig,
    set: BTreeMap<String, Value>,
    delete: Vec<String>,
) -> Result<(), ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let mut next = cfg.defaults.clone();
    let both = set_and_deleted("defaults", &set, &delete, &mut errs);
    for name in &delete {
        if both.contains(name) {
            continue;
        }
        match Knob::from_name(name) {
            Some(k) => {
                next.remove(k);
            }
            None => errs.push(
                format!("defaults.{}", shown(name)),
                Knob::unknown_name_message(name),
            ),
        }
    }
    for (name, value) in &set {
        if !both.contains(name) {
            set_knob(&mut next, "defaults", name, value, false, &mut errs);
        }
    }
    errs.into_result()?;
    cfg.defaults = next;
    Ok(())
}

/// Add `wwid` to the allow-list with the properties in `set` (`alias` and per-LUN knobs).
/// Rejected: an invalid or reserved WWID (field `wwid`), one already listed, invalid
/// properties, an alias already in use or colliding with a WWID. Returns the validated WWID.
pub fn add_wwid(
    cfg: &mut MultipathConfig,
    wwid: &str,
    set: BTreeMap<String, Value>,
) -> Result<Wwid, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let Some(w) = check_wwid("wwid", wwid, &mut errs) else {
        return Err(errs);
    };
    if cfg.wwids.contains_key(&w) {
        errs.push("wwid", format!("{w} is already in the allow-list"));
        return Err(errs);
    }
    let prefix = format!("wwids.{w}");
    let mut entry = WwidEntry::default();
    for (name, value) in &set {
        set_entry_property(&mut entry, &prefix, name, value, &mut errs);
    }
    let mut next = cfg.clone();
    next.wwids.insert(w.clone(), entry);
    next.check_names(&w, "wwid", &mut errs);
    errs.into_result()?;
    *cfg = next;
    Ok(w)
}

/// Partial update of one allow-list entry: properties in `set` are set, properties in `delete`
/// (`alias` or a knob name) are cleared, the rest stays. Same rules as
/// [`apply_defaults_update`], plus alias uniqueness. All-or-nothing.
pub fn set_wwid_entry(
    cfg: &mut MultipathConfig,
    wwid: &str,
    set: BTreeMap<String, Value>,
    delete: Vec<String>,
) -> Result<(), ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let Some(w) = check_wwid("wwid", wwid, &mut errs) else {
        return Err(errs);
    };
    let Some(current) = cfg.wwids.get(&w) else {
        errs.push("wwid", format!("{w} is not in the allow-list"));
        return Err(errs);
    };
    let prefix = format!("wwids.{w}");
    let mut entry = current.clone();
    let both = set_and_deleted(&prefix, &set, &delete, &mut errs);
    for name in &delete {
        if both.contains(name) {
            continue;
        }
        if name == ALIAS_PROPERTY {
            entry.alias = None;
            continue;
        }
        match Knob::from_name(name) {
            Some(k) => {
                entry.knobs.remove(k);
            }
            None => errs.push(
                format!("{prefix}.{}", shown(name)),
                Knob::unknown_name_message(name),
            ),
        }
    }
    for (name, value) in &set {
        if !both.contains(name) {
            set_entry_property(&mut entry, &prefix, name, value, &mut errs);
        }
    }
    let mut next = cfg.clone();
    next.wwids.insert(w.clone(), entry);
    next.check_names(&w, "wwid", &mut errs);
    errs.into_result()?;
    *cfg = next;
    Ok(())
}

/// Remove `wwid` from the allow-list, returning its entry. Rejected when it is not listed.
pub fn remove_wwid(cfg: &mut MultipathConfig, wwid: &str) -> Result<WwidEntry, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let Some(w) = check_wwid("wwid", wwid, &mut errs) else {
        return Err(errs);
    };
    match cfg.wwids.remove(&w) {
        Some(e) => Ok(e),
        None => {
            errs.push("wwid", format!("{w} is not in the allow-list"));
            Err(errs)
        }
    }
}
