//! What the next configuration apply would change on a node: the **apply plan**.
//!
//! The baseline drop-in sets `user_friendly_names no` and `find_multipaths strict` and
//! blacklists every WWID outside the allow-list. On a node that ran multipath before, the first
//! apply therefore renames existing maps (`mpatha` becomes its WWID, or its cluster alias) and
//! drops maps of LUNs outside the allow-list; anything that names `/dev/mapper/mpatha` (fstab,
//! LVM filters, scripts) would break silently. So the agent works out the plan before writing
//! anything ([`plan_maps`] for the maps, plus the drop-ins and wwids entries it would write or
//! remove), publishes it under the node KV key [`crate::snapshot::kv_keys::PLAN`], and holds
//! an apply that renames or drops a map until an admin accepted exactly that plan
//! ([`Acceptance`]: per node, by the plan's [`ApplyPlan::digest`], or always).
//!
//! Everything here is pure: the agent supplies multipathd's current maps and the file contents.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::MultipathConfig;
use crate::config::Overrides;
use crate::config::overrides::{Token, tokenize_line};
use crate::digest::ConfigDigest;
use crate::ids::{NodeName, Wwid};

/// The only plan format this build writes; newer ones are read as far as they are understood.
pub const PLAN_VERSION: u32 = 1;

/// At most this many entries of each list are published (the counts stay exact).
pub const PLAN_LIST_MAX: usize = 200;

/// One of multipathd's current maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentMap {
    /// Its name (`mpatha`, an alias, or the WWID).
    pub name: String,
    /// Its WWID.
    pub wwid: Wwid,
}

/// A map the apply would rename.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Rename {
    /// The LUN.
    pub wwid: Wwid,
    /// Its name now (`/dev/mapper/<from>`).
    pub from: String,
    /// Its name after the apply.
    pub to: String,
    /// The cluster configuration asks for it by name (the new name is the LUN's cluster
    /// alias, or the LUN was already managed); otherwise it needs an acceptance.
    #[serde(default)]
    pub requested: bool,
}

/// A map the apply would stop multipathing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Dropped {
    /// The LUN.
    pub wwid: Wwid,
    /// Its name now.
    pub name: String,
    /// Why: not in the cluster's allow-list, so blacklisted (and, with `find_multipaths
    /// strict`, not in the wwids file).
    pub reason: String,
    /// An admin removed the LUN from the allow-list (the last apply had it); otherwise mpcluster
    /// never managed it and the drop needs an acceptance.
    #[serde(default)]
    pub requested: bool,
}

/// A file the apply would write or remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct FileChange {
    /// The path (absolute, as on the node).
    pub path: String,
    /// `write` or `remove`.
    pub action: FileAction,
}

/// What happens to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum FileAction {
    /// Written (created or replaced).
    Write,
    /// Removed.
    Remove,
}

/// What the next apply would change on one node, as its agent publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct ApplyPlan {
    /// Format version ([`PLAN_VERSION`]).
    pub version: u32,
    /// Unix seconds when the agent worked it out.
    pub time: i64,
    /// Maps that would be renamed (at most [`PLAN_LIST_MAX`]; `renames-total` counts all).
    #[serde(default)]
    pub renames: Vec<Rename>,
    /// All renames, also those left out of the list.
    #[serde(default)]
    pub renames_total: usize,
    /// Maps that would no longer be multipathed (at most [`PLAN_LIST_MAX`]).
    #[serde(default)]
    pub dropped: Vec<Dropped>,
    /// All dropped maps.
    #[serde(default)]
    pub dropped_total: usize,
    /// Renames nobody asked for (maps mpcluster did not manage yet): while there are any
    /// (or unrequested drops), the apply needs an acceptance.
    #[serde(default)]
    pub unrequested_renames: usize,
    /// Drops nobody asked for (maps of LUNs mpcluster never managed).
    #[serde(default)]
    pub unrequested_drops: usize,
    /// Drop-ins (and the wwids file) written or removed.
    #[serde(default)]
    pub files: Vec<FileChange>,
    /// WWIDs the apply adds to the wwids file (at most [`PLAN_LIST_MAX`]).
    #[serde(default)]
    pub wwids_added: Vec<Wwid>,
    /// WWIDs it removes from the wwids file (at most [`PLAN_LIST_MAX`]).
    #[serde(default)]
    pub wwids_removed: Vec<Wwid>,
    /// Identifies the renames and drops (hex SHA-256): what `config accept` accepts.
    pub digest: String,
    /// The agent holds the apply until an admin accepts this plan.
    #[serde(default)]
    pub waiting: bool,
    /// One line for people when the plan renames or drops maps ("apply waiting: would
    /// rename mpatha -> 3600..."); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// The cluster's acceptance of disruptive applies (document
/// [`crate::snapshot::doc_names::ACCEPT`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    /// Apply renames and drops without asking (the cluster setting).
    #[serde(default)]
    pub always: bool,
    /// Per node, the digest of the plan an admin accepted.
    #[serde(default)]
    pub nodes: BTreeMap<NodeName, String>,
}

impl Acceptance {
    /// Whether `node` may apply a plan with `digest`.
    pub fn accepts(&self, node: &NodeName, digest: &str) -> bool {
        self.always || self.nodes.get(node).is_some_and(|d| d == digest)
    }
}

/// Whether the overrides set `user_friendly_names yes` anywhere (in `overrides` or a
/// `device`): map names then come from the bindings file, and a map keeps its name.
fn overrides_want_friendly_names(overrides: &Overrides) -> bool {
    overrides.as_str().lines().any(|line| {
        let tokens = tokenize_line(line);
        matches!(
            tokens.as_slice(),
            [Token::Word(k), Token::Word(v), ..] if k == "user_friendly_names" && v == "yes"
        ) || matches!(
            tokens.as_slice(),
            [Token::Word(k), Token::Quote, Token::Word(v), ..] if k == "user_friendly_names" && v == "yes"
        )
    })
}

/// The name `wwid` gets under the candidate configuration: its cluster alias; else, with
/// `user_friendly_names yes` from the overrides, the name it has (from the bindings file);
/// else the WWID itself.
fn name_after(config: &MultipathConfig, friendly: bool, map: &CurrentMap) -> String {
    if let Some(alias) = config.get(map.wwid.as_str()).and_then(|e| e.alias()) {
        return alias.as_str().to_owned();
    }
    if friendly {
        return map.name.clone();
    }
    map.wwid.as_str().to_owned()
}

/// The renames and drops an apply of `config` + `overrides` makes to `maps`. `kept` are the
/// wwids-file entries mpcluster did not add: the baseline keeps them as blacklist exceptions.
/// `applied_before` is the allow-list of the node's last successful apply: a change to a LUN
/// in it, or a rename to a cluster alias, is what an admin asked for by name (`requested`);
/// anything else (the first apply's `mpatha` -> WWID, a map of a LUN mpcluster never
/// managed disappearing) is a surprise that needs an acceptance. An empty configuration
/// renders no baseline and changes no map.
pub fn plan_maps(
    maps: &[CurrentMap],
    config: &MultipathConfig,
    overrides: &Overrides,
    kept: &BTreeSet<Wwid>,
    applied_before: &BTreeSet<Wwid>,
) -> (Vec<Rename>, Vec<Dropped>) {
    if config.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let friendly = overrides_want_friendly_names(overrides);
    let mut renames = Vec::new();
    let mut dropped = Vec::new();
    for map in maps {
        if config.get(map.wwid.as_str()).is_none() && !kept.contains(&map.wwid) {
            dropped.push(Dropped {
                wwid: map.wwid.clone(),
                name: map.name.clone(),
                reason: "not in the cluster's WWID allow-list (blacklisted)".to_owned(),
                requested: applied_before.contains(&map.wwid),
            });
            continue;
        }
        let to = name_after(config, friendly, map);
        if to != map.name {
            let to_alias = config
                .get(map.wwid.as_str())
                .and_then(|e| e.alias())
                .is_some();
            renames.push(Rename {
                wwid: map.wwid.clone(),
                from: map.name.clone(),
                to,
                requested: to_alias || applied_before.contains(&map.wwid),
            });
        }
    }
    renames.sort_by(|a, b| a.wwid.cmp(&b.wwid));
    dropped.sort_by(|a, b| a.wwid.cmp(&b.wwid));
    renames.dedup();
    dropped.dedup();
    (renames, dropped)
}

/// The digest of a plan's disruptive part: the renames and drops, in order.
pub fn disruptive_digest(renames: &[Rename], dropped: &[Dropped]) -> String {
    let mut text = String::new();
    for r in renames {
        text.push_str(&format!("rename\t{}\t{}\t{}\n", r.wwid, r.from, r.to));
    }
    for d in dropped {
        text.push_str(&format!("drop\t{}\t{}\n", d.wwid, d.name));
    }
    ConfigDigest::of(&text).to_hex()
}

impl ApplyPlan {
    /// Assemble a plan (lists cut to [`PLAN_LIST_MAX`], counts kept), without a verdict
    /// (`waiting` false).
    pub fn new(
        time: i64,
        renames: Vec<Rename>,
        dropped: Vec<Dropped>,
        files: Vec<FileChange>,
        mut wwids_added: Vec<Wwid>,
        mut wwids_removed: Vec<Wwid>,
    ) -> ApplyPlan {
        let digest = disruptive_digest(&renames, &dropped);
        let (renames_total, dropped_total) = (renames.len(), dropped.len());
        let unrequested_renames = renames.iter().filter(|r| !r.requested).count();
        let unrequested_drops = dropped.iter().filter(|d| !d.requested).count();
        // Those that need an acceptance first, so the published lists never hide them.
        let mut renames = renames;
        let mut dropped = dropped;
        renames.sort_by_key(|r| r.requested);
        dropped.sort_by_key(|d| d.requested);
        let mut plan = ApplyPlan {
            version: PLAN_VERSION,
            time,
            renames,
            renames_total,
            dropped,
            dropped_total,
            unrequested_renames,
            unrequested_drops,
            files,
            wwids_added: Vec::new(),
            wwids_removed: Vec::new(),
            digest,
            waiting: false,
            summary: None,
        };
        plan.summary = plan.describe_disruption();
        plan.renames.truncate(PLAN_LIST_MAX);
        plan.dropped.truncate(PLAN_LIST_MAX);
        wwids_added.truncate(PLAN_LIST_MAX);
        wwids_removed.truncate(PLAN_LIST_MAX);
        plan.wwids_added = wwids_added;
        plan.wwids_removed = wwids_removed;
        plan
    }

    /// A plan that changes nothing (after a successful apply: the next one has nothing to do).
    pub fn nothing(time: i64) -> ApplyPlan {
        ApplyPlan::new(
            time,
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        )
    }

    /// Whether the apply renames or drops a map.
    pub fn is_disruptive(&self) -> bool {
        self.renames_total > 0 || self.dropped_total > 0
    }

    /// Whether it renames or drops a map nobody asked for: the agent holds such an apply
    /// until an admin accepts the plan.
    pub fn needs_acceptance(&self) -> bool {
        self.unrequested_renames > 0 || self.unrequested_drops > 0
    }

    /// Whether the apply changes nothing at all.
    pub fn is_empty(&self) -> bool {
        !self.is_disruptive()
            && self.files.is_empty()
            && self.wwids_added.is_empty()
            && self.wwids_removed.is_empty()
    }

    /// Mark the plan as held (or not) until accepted; the summary says which.
    pub fn set_waiting(&mut self, waiting: bool) {
        self.waiting = waiting;
        self.summary = self.describe_disruption();
    }

    /// "apply waiting: would rename mpatha -> 3600... and 2 more; would stop multipathing
    /// mpathc (3600...)" (`apply accepted:` instead when accepted), naming the renames and
    /// drops nobody asked for; `None` when there are none.
    fn describe_disruption(&self) -> Option<String> {
        if !self.needs_acceptance() {
            return None;
        }
        const SHOWN: usize = 3;
        let renames_total = self.unrequested_renames;
        let renames: Vec<&Rename> = self.renames.iter().filter(|r| !r.requested).collect();
        let dropped_total = self.unrequested_drops;
        let dropped: Vec<&Dropped> = self.dropped.iter().filter(|d| !d.requested).collect();
        let mut parts = Vec::new();
        if renames_total > 0 {
            let mut s = String::from("would rename ");
            let names: Vec<String> = renames
                .iter()
                .take(SHOWN)
                .map(|r| format!("{} -> {}", r.from, r.to))
                .collect();
            s.push_str(&names.join(", "));
            if renames_total > names.len() {
                s.push_str(&format!(" and {} more", renames_total - names.len()));
            }
            parts.push(s);
        }
        if dropped_total > 0 {
            let mut s = String::from("would stop multipathing ");
            let names: Vec<String> = dropped
                .iter()
                .take(SHOWN)
                .map(|d| {
                    if d.name == d.wwid.as_str() {
                        d.name.clone()
                    } else {
                        format!("{} ({})", d.name, d.wwid)
                    }
                })
                .collect();
            s.push_str(&names.join(", "));
            if dropped_total > names.len() {
                s.push_str(&format!(" and {} more", dropped_total - names.len()));
            }
            s.push_str(" (not in the allow-list)");
            parts.push(s);
        }
        let head = if self.waiting {
            "apply waiting"
        } else {
            "apply accepted"
        };
        Some(format!("{head}: {}", parts.join("; ")))
    }

    /// Decode a (peer's) plan value: unknown fields are ignored, a newer version is refused
    /// naming both versions, a value that is not a plan is an error naming why.
    pub fn decode(raw: &str) -> Result<ApplyPlan, PlanDecodeError> {
        if raw.len() > PLAN_BUDGET {
            return Err(PlanDecodeError::TooLarge(raw.len()));
        }
        crate::format::check("the apply plan", raw, "version", PLAN_VERSION)
            .map_err(PlanDecodeError::Newer)?;
        serde_json::from_str(raw).map_err(|e| PlanDecodeError::Invalid(e.to_string()))
    }

    /// Encode for the store.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The largest plan value a reader accepts (a plan of [`PLAN_LIST_MAX`]-entry lists is far
/// below it).
pub const PLAN_BUDGET: usize = 512 * 1024;

/// Why a plan value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanDecodeError {
    /// Larger than [`PLAN_BUDGET`].
    #[error("plan value of {0} bytes exceeds the {PLAN_BUDGET}-byte budget")]
    TooLarge(usize),
    /// Not a plan.
    #[error("not an apply plan: {0}")]
    Invalid(String),
    /// Written by a newer mpcluster ([`crate::format`]).
    #[error(transparent)]
    Newer(crate::format::NewerFormat),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: &str = "3600a098038303053453f463045727a01";
    const B: &str = "3600a098038303053453f463045727a02";
    const C: &str = "3600a098038303053453f463045727a03";

    fn map(name: &str, wwid: &str) -> CurrentMap {
        CurrentMap {
            name: name.into(),
            wwid: Wwid::new(wwid).unwrap(),
        }
    }

    fn config(json: &str) -> MultipathConfig {
        MultipathConfig::from_json(json).unwrap()
    }

    #[test]
    fn first_apply_renames_friendly_names_and_drops_unlisted_maps() {
        let cfg = config(&format!(
            r#"{{"wwids": {{"{A}": {{}}, "{B}": {{"alias": "db"}}}}}}"#
        ));
        let maps = [map("mpatha", A), map("mpathb", B), map("mpathc", C)];
        let (renames, dropped) = plan_maps(
            &maps,
            &cfg,
            &Overrides::empty(),
            &BTreeSet::new(),
            &BTreeSet::new(),
        );
        assert_eq!(
            renames,
            vec![
                Rename {
                    wwid: Wwid::new(A).unwrap(),
                    from: "mpatha".into(),
                    to: A.into(),
                    requested: false,
                },
                Rename {
                    wwid: Wwid::new(B).unwrap(),
                    from: "mpathb".into(),
                    to: "db".into(),
                    requested: true,
                },
            ]
        );
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].name, "mpathc");
        // A wwids-file entry mpcluster did not add is kept, not dropped.
        let kept = BTreeSet::from([Wwid::new(C).unwrap()]);
        let (_, dropped) = plan_maps(&maps, &cfg, &Overrides::empty(), &kept, &BTreeSet::new());
        assert!(dropped.is_empty());
    }

    #[test]
    fn changes_to_managed_luns_are_requested() {
        // A was applied before (its alias was removed since: back to the WWID); C was in the
        // allow-list and is removed now.
        let cfg = config(&format!(r#"{{"wwids": {{"{A}": {{}}}}}}"#));
        let before = BTreeSet::from([Wwid::new(A).unwrap(), Wwid::new(C).unwrap()]);
        let (r, d) = plan_maps(
            &[map("db", A), map(C, C)],
            &cfg,
            &Overrides::empty(),
            &BTreeSet::new(),
            &before,
        );
        assert!(r[0].requested && d[0].requested);
        let plan = ApplyPlan::new(1, r, d, vec![], vec![], vec![]);
        assert!(plan.is_disruptive() && !plan.needs_acceptance() && plan.summary.is_none());
    }

    #[test]
    fn maps_already_named_as_configured_change_nothing() {
        let cfg = config(&format!(
            r#"{{"wwids": {{"{A}": {{}}, "{B}": {{"alias": "db"}}}}}}"#
        ));
        let maps = [map(A, A), map("db", B)];
        let (r, d) = plan_maps(
            &maps,
            &cfg,
            &Overrides::empty(),
            &BTreeSet::new(),
            &BTreeSet::new(),
        );
        assert!(r.is_empty() && d.is_empty());
    }

    #[test]
    fn empty_configuration_changes_no_map() {
        let maps = [map("mpatha", A)];
        let (r, d) = plan_maps(
            &maps,
            &MultipathConfig::new(),
            &Overrides::empty(),
            &BTreeSet::new(),
            &BTreeSet::new(),
        );
        assert!(r.is_empty() && d.is_empty());
    }

    #[test]
    fn friendly_names_from_the_overrides_keep_names() {
        let cfg = config(&format!(r#"{{"wwids": {{"{A}": {{}}}}}}"#));
        let ov = Overrides::parse("overrides {\n\tuser_friendly_names yes\n}\n").unwrap();
        let (r, _) = plan_maps(
            &[map("mpatha", A)],
            &cfg,
            &ov,
            &BTreeSet::new(),
            &BTreeSet::new(),
        );
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn summary_names_the_renames_and_digest_follows_them() {
        let cfg = config(&format!(r#"{{"wwids": {{"{A}": {{}}}}}}"#));
        let (r, d) = plan_maps(
            &[map("mpatha", A), map("mpathc", C)],
            &cfg,
            &Overrides::empty(),
            &BTreeSet::new(),
            &BTreeSet::new(),
        );
        let mut plan = ApplyPlan::new(1, r.clone(), d.clone(), vec![], vec![], vec![]);
        plan.set_waiting(true);
        let summary = plan.summary.clone().unwrap();
        assert!(
            summary.starts_with(&format!("apply waiting: would rename mpatha -> {A}")),
            "{summary}"
        );
        assert!(summary.contains(&format!("mpathc ({C})")), "{summary}");
        let other = ApplyPlan::new(1, r, vec![], vec![], vec![], vec![]);
        assert_ne!(plan.digest, other.digest);
        let back = ApplyPlan::decode(&plan.encode()).unwrap();
        assert_eq!(back, plan);
        assert!(ApplyPlan::decode("{}").is_err());
        assert!(ApplyPlan::new(1, vec![], vec![], vec![], vec![], vec![]).is_empty());
    }

    #[test]
    fn acceptance_is_per_node_and_digest_or_always() {
        let n = NodeName::new("pve1").unwrap();
        let mut acc = Acceptance::default();
        assert!(!acc.accepts(&n, "x"));
        acc.nodes.insert(n.clone(), "x".into());
        assert!(acc.accepts(&n, "x") && !acc.accepts(&n, "y"));
        acc.always = true;
        assert!(acc.accepts(&NodeName::new("pve2").unwrap(), "z"));
    }

    #[test]
    fn long_lists_are_cut_but_counted() {
        let renames: Vec<Rename> = (0..PLAN_LIST_MAX + 5)
            .map(|i| Rename {
                wwid: Wwid::new(format!("3600a0980383030534{i:014}")).unwrap(),
                from: format!("mpath{i}"),
                to: "x".into(),
                requested: false,
            })
            .collect();
        let mut plan = ApplyPlan::new(1, renames, vec![], vec![], vec![], vec![]);
        plan.set_waiting(true);
        assert_eq!(plan.renames.len(), PLAN_LIST_MAX);
        assert_eq!(plan.renames_total, PLAN_LIST_MAX + 5);
        assert!(
            plan.summary
                .unwrap()
                .contains(&format!("and {} more", PLAN_LIST_MAX + 2))
        );
    }
}
