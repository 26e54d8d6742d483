//! Importing Proxmox VE storage definitions (`/etc/pve/storage.cfg`) into mpcluster's storage
//! document (pure: the caller reads the file and writes the result).
//!
//! Entry point: [`import`], which reads the file with [`read_sections`] (a port of
//! `PVE::SectionConfig::parse_config`) and merges what it can use into a [`StorageConfig`],
//! listing everything it skipped and why ([`Skipped`]).
//!
//! What is imported:
//! - `multipath` storages: `nodes`, `disable`.
//! - `lvm` storages with a `base` on a `multipath` storage of the file (`<mp>:<wwid>`): `vgname`,
//!   `base`, `nodes`, `disable`.
//! - `lvm` storages with a `base` on an `iscsi` storage of the file
//!   (`<iscsi>:<c>.<t>.<l>.scsi-<wwid>` or `...dm-uuid-mpath-<wwid>`, Proxmox's iSCSI volume
//!   names): the WWID is taken from the volume name and the base moves to a **synthesized
//!   multipath storage**, one per iSCSI storage, with the iSCSI storage's `nodes` and `disable`.
//!   Its id is the iSCSI storage's own id when that is free in the merged document, else
//!   `<id>-mp` (then `<id>-mp2`, `<id>-mp3`, ...). An existing mpcluster *multipath* storage with
//!   the candidate id is reused rather than duplicated, so importing the same file twice adds
//!   nothing the second time.
//!
//! Skipped, each with its line number and reason: other types (`dir`, `nfs`, `rbd`, an `iscsi`
//! storage no imported LVM storage sits on, ...), `lvm` without `base` (a local volume group),
//! `lvm` on other bases, sections whose id breaks the storage-id rules, sections with values
//! mpcluster cannot accept (a bad `nodes` list, `vgname`, `disable` or volume name), malformed
//! lines, and ids that already exist in the mpcluster document (never overwritten).
//!
//! Reading follows Proxmox: `#` comment lines are ignored anywhere; a section is a header
//! `<type>: <id>` followed by indented `<key> [<value>]` lines up to the next blank line; a line
//! that is neither (including a header not preceded by a blank line) is ignored and reported;
//! a repeated property keeps its first value; a repeated section id keeps the last section.
//! Deviation: a line of only whitespace ends a section like an empty line does (Proxmox would
//! warn about it and continue the section). Properties mpcluster has no use for (`content`,
//! `shared`, `portal`, ...) are ignored silently.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::ids::{NodeName, StorageId, Wwid};
use crate::storage::{
    LvmBase, LvmStorage, MultipathStorage, Storage, StorageConfig, StorageConfigError, VgName,
};

/// Where Proxmox VE keeps its storage definitions.
pub const DEFAULT_STORAGE_CFG: &str = "/etc/pve/storage.cfg";

/// How many `<id>-mpN` candidates are tried for a synthesized multipath storage.
const MAX_SYNTH_CANDIDATES: usize = 100;

/// One property line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// 1-based line number.
    pub line: usize,
    /// The value (trimmed), `None` for a bare flag (`disable`).
    pub value: Option<String>,
}

/// One `<type>: <id>` section as read from the file (not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// 1-based line number of the header.
    pub line: usize,
    /// The storage type, lowercased (`lvm`, `iscsi`, `dir`, ...).
    pub kind: String,
    /// The id as written.
    pub id: String,
    /// The properties, first occurrence of each key.
    pub properties: BTreeMap<String, Property>,
}

impl Section {
    /// `<type>: <id>`, as in the file (the id shown escaped if it is hostile).
    pub fn label(&self) -> String {
        format!("{}: {}", shown(&self.kind), shown(&self.id))
    }

    fn get(&self, key: &str) -> Option<&Property> {
        self.properties.get(key)
    }
}

/// Why something was not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipKind {
    /// A line that is not a comment, a blank line, a section header or an indented property,
    /// or a repeated property.
    Malformed,
    /// A section id that breaks the storage-id rules.
    InvalidId,
    /// A section replaced by a later section with the same id.
    Duplicate,
    /// A storage type mpcluster does not manage.
    UnsupportedType,
    /// An `lvm` storage without `base` (a local volume group).
    NoBase,
    /// An `lvm` storage whose base is not on a `multipath` or `iscsi` storage of the file, or
    /// whose iSCSI volume name does not name a WWID.
    OtherBase,
    /// A value mpcluster cannot accept (`nodes`, `vgname`, `disable`, the WWID of a base) or a
    /// missing required one (`vgname`).
    InvalidValue,
    /// A storage with this id already exists in the mpcluster document.
    Exists,
    /// An `lvm` storage whose base storage could not be imported.
    BaseNotImported,
}

/// Something that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Skipped {
    /// 1-based line number (of the offending line, or of the section header).
    pub line: usize,
    /// The section, `<type>: <id>`, if the problem concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// The category.
    pub kind: SkipKind,
    /// A sentence for people.
    pub reason: String,
}

/// A storage the import adds to the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Added {
    /// 1-based line number of the section it comes from.
    pub line: usize,
    /// The storage as added.
    pub storage: Storage,
    /// For a synthesized multipath storage: the iSCSI storage it stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_iscsi: Option<StorageId>,
}

/// The result of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Import {
    /// The merged document: the existing storages, then the added ones (file order, a
    /// synthesized multipath storage just before the first LVM storage on it).
    pub config: StorageConfig,
    /// What was added, in the order of `config`.
    pub added: Vec<Added>,
    /// Existing mpcluster multipath storages that imported LVM storages now sit on, with the
    /// iSCSI storage each stands for (see the module documentation).
    pub reused: Vec<(StorageId, StorageId)>,
    /// What was skipped, by line.
    pub skipped: Vec<Skipped>,
}

/// Read the sections of a Proxmox section-config file. Returns the sections in file order
/// (a later section with an id seen before replaces it, reported as [`SkipKind::Duplicate`])
/// and the lines that were ignored ([`SkipKind::Malformed`]).
pub fn read_sections(text: &str) -> (Vec<Section>, Vec<Skipped>) {
    let mut sections: Vec<Section> = Vec::new();
    let mut skipped = Vec::new();
    let mut current: Option<Section> = None;
    for (idx, raw) in text.split('\n').enumerate() {
        let n = idx + 1;
        if is_comment(raw) {
            continue;
        }
        if raw.trim().is_empty() {
            if let Some(s) = current.take() {
                push_section(&mut sections, s, &mut skipped);
            }
            continue;
        }
        let line = raw.trim_end();
        match &mut current {
            None => match parse_header(line) {
                Some((kind, id)) => {
                    current = Some(Section {
                        line: n,
                        kind,
                        id,
                        properties: BTreeMap::new(),
                    });
                }
                None => skipped.push(Skipped {
                    line: n,
                    section: None,
                    kind: SkipKind::Malformed,
                    reason: format!(
                        "not a section header \"<type>: <id>\" (ignored): {}",
                        shown(line)
                    ),
                }),
            },
            Some(section) => match parse_property(line) {
                Some((key, value)) => {
                    let label = section.label();
                    match section.properties.entry(key) {
                        std::collections::btree_map::Entry::Occupied(e) => {
                            skipped.push(Skipped {
                                line: n,
                                section: Some(label),
                                kind: SkipKind::Malformed,
                                reason: format!(
                                    "duplicate property \"{}\" (ignored; the first value is used)",
                                    shown(e.key())
                                ),
                            });
                        }
                        std::collections::btree_map::Entry::Vacant(e) => {
                            e.insert(Property { line: n, value });
                        }
                    }
                }
                None => skipped.push(Skipped {
                    line: n,
                    section: Some(section.label()),
                    kind: SkipKind::Malformed,
                    reason: if parse_header(line).is_some() {
                        format!(
                            "section header without a blank line before it: Proxmox ignores it \
                             and reads the lines below as part of the previous section: {}",
                            shown(line)
                        )
                    } else {
                        format!("not an indented property line (ignored): {}", shown(line))
                    },
                }),
            },
        }
    }
    if let Some(s) = current.take() {
        push_section(&mut sections, s, &mut skipped);
    }
    (sections, skipped)
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

fn push_section(sections: &mut Vec<Section>, section: Section, skipped: &mut Vec<Skipped>) {
    if let Some(pos) = sections.iter().position(|s| s.id == section.id) {
        let old = sections.remove(pos);
        skipped.push(Skipped {
            line: old.line,
            section: Some(old.label()),
            kind: SkipKind::Duplicate,
            reason: format!(
                "id defined again at line {} (Proxmox uses the last definition)",
                section.line
            ),
        });
    }
    sections.push(section);
}

/// `^(\S+):\s*(\S+)\s*$` (the line is already right-trimmed); the type is lowercased.
fn parse_header(line: &str) -> Option<(String, String)> {
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    // The type is the longest run of non-space characters followed by ':' that leaves a single
    // non-space word after optional spaces: split at the last ':' before the first whitespace
    // gap, like the greedy regex does.
    let (head, id) = match line.split_once(char::is_whitespace) {
        Some((head, rest)) => {
            let rest = rest.trim_start();
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return None;
            }
            (head, rest)
        }
        None => {
            // `type:id` without a space: the greedy `(\S+):` takes the last ':'.
            let (t, i) = line.rsplit_once(':')?;
            return (!t.is_empty() && !i.is_empty()).then(|| (t.to_lowercase(), i.to_owned()));
        }
    };
    let kind = head.strip_suffix(':')?;
    if kind.is_empty() {
        return None;
    }
    Some((kind.to_lowercase(), id.to_owned()))
}

/// `^\s+(\S+)(\s+(.*\S))?\s*$` (the line is already right-trimmed).
fn parse_property(line: &str) -> Option<(String, Option<String>)> {
    if !line.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = line.trim_start();
    match rest.split_once(char::is_whitespace) {
        None => Some((rest.to_owned(), None)),
        Some((key, value)) => Some((key.to_owned(), Some(value.trim().to_owned()))),
    }
}

/// A value as shown in a reason: as is when short and printable, else escaped and cut.
fn shown(s: &str) -> String {
    if s.len() <= 80 && s.chars().all(|c| !c.is_control() && c != '"') {
        return s.to_owned();
    }
    let cut: String = s.chars().take(60).collect();
    let mut out = format!("{cut:?}");
    if cut.len() < s.len() {
        out.push('…');
    }
    out
}

/// The outcome of checking one section's common properties.
type Checked<T> = Result<T, (usize, String)>;

fn parse_nodes(section: &Section) -> Checked<Option<BTreeSet<NodeName>>> {
    let Some(p) = section.get("nodes") else {
        return Ok(None);
    };
    let value = p.value.as_deref().unwrap_or("");
    let mut out = BTreeSet::new();
    for name in value
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|n| !n.is_empty())
    {
        let node = NodeName::new(name).map_err(|e| (p.line, format!("nodes: {e}")))?;
        out.insert(node);
    }
    if out.is_empty() {
        return Err((p.line, "nodes: empty node list".to_owned()));
    }
    Ok(Some(out))
}

fn parse_disable(section: &Section) -> Checked<bool> {
    let Some(p) = section.get("disable") else {
        return Ok(false);
    };
    match p.value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("1" | "on" | "yes" | "true") => Ok(true),
        Some("0" | "off" | "no" | "false") => Ok(false),
        Some(other) => Err((
            p.line,
            format!("disable: {} is not a boolean", shown(other)),
        )),
    }
}

/// The WWID in an iSCSI volume name `<channel>.<id>.<lun>.(scsi-|dm-uuid-mpath-)<wwid>`.
pub fn wwid_from_iscsi_volname(volname: &str) -> Option<&str> {
    let mut rest = volname;
    for _ in 0..3 {
        let end = rest.find('.')?;
        let digits = &rest[..end];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest = &rest[end + 1..];
    }
    let wwid = rest
        .strip_prefix("scsi-")
        .or_else(|| rest.strip_prefix("dm-uuid-mpath-"))?;
    (!wwid.is_empty()).then_some(wwid)
}

/// What an LVM section's base resolves to.
enum BaseRef<'a> {
    /// A multipath section of the file (its id).
    Multipath(&'a StorageId),
    /// An iSCSI section of the file (its index in the valid sections).
    Iscsi(usize),
}

/// An LVM storage ready to be added once its base is known.
struct LvmPlan<'a> {
    section: &'a Section,
    id: StorageId,
    vgname: VgName,
    wwid: Wwid,
    nodes: Option<BTreeSet<NodeName>>,
    disable: bool,
    base: BaseRef<'a>,
}

/// Import `text` (a storage.cfg) into `existing`: see the module documentation. Fails only if
/// the merged document does not validate, which would be a bug here (the import checks every
/// base it adds).
pub fn import(existing: &StorageConfig, text: &str) -> Result<Import, StorageConfigError> {
    let (sections, mut skipped) = read_sections(text);
    let skip = |s: &Section, line: usize, kind: SkipKind, reason: String| Skipped {
        line,
        section: Some(s.label()),
        kind,
        reason,
    };

    // Valid ids only from here on.
    let mut valid: Vec<(&Section, StorageId)> = Vec::new();
    for s in &sections {
        match StorageId::new(s.id.as_str()) {
            Ok(id) => valid.push((s, id)),
            Err(e) => skipped.push(skip(s, s.line, SkipKind::InvalidId, e.to_string())),
        }
    }
    let file_ids: BTreeSet<&str> = valid.iter().map(|(_, id)| id.as_str()).collect();
    let existing_ids: BTreeSet<&str> = existing.storages.iter().map(|s| s.id().as_str()).collect();

    // Pass 1: multipath sections.
    let mut mp_ok: BTreeMap<&str, MultipathStorage> = BTreeMap::new();
    let mut mp_failed: BTreeSet<&str> = BTreeSet::new();
    for (s, id) in &valid {
        if s.kind != "multipath" {
            continue;
        }
        let checked = parse_nodes(s).and_then(|nodes| Ok((nodes, parse_disable(s)?)));
        match checked {
            Ok((nodes, disable)) => {
                mp_ok.insert(
                    id.as_str(),
                    MultipathStorage {
                        id: id.clone(),
                        nodes,
                        disable,
                    },
                );
            }
            Err((line, reason)) => {
                mp_failed.insert(id.as_str());
                skipped.push(skip(s, line, SkipKind::InvalidValue, reason));
            }
        }
    }

    // Pass 2: LVM sections, resolved against the file.
    let mut lvm_plans: Vec<LvmPlan<'_>> = Vec::new();
    for (s, id) in &valid {
        if s.kind != "lvm" {
            continue;
        }
        if existing_ids.contains(id.as_str()) {
            skipped.push(skip(
                s,
                s.line,
                SkipKind::Exists,
                format!("a storage '{id}' already exists in mpcluster (not overwritten)"),
            ));
            continue;
        }
        match plan_lvm(s, id, &valid) {
            Ok(plan) => lvm_plans.push(plan),
            Err((line, kind, reason)) => skipped.push(skip(s, line, kind, reason)),
        }
    }

    // Pass 3: emit in file order.
    let mut taken: BTreeSet<String> = existing_ids.iter().map(|s| (*s).to_owned()).collect();
    taken.extend(file_ids.iter().map(|s| (*s).to_owned()));
    let mut synthesized: BTreeMap<usize, Result<StorageId, String>> = BTreeMap::new();
    let mut used_iscsi: BTreeSet<usize> = BTreeSet::new();
    let mut added: Vec<Added> = Vec::new();
    let mut reused: Vec<(StorageId, StorageId)> = Vec::new();
    let mut lvm_iter = lvm_plans.into_iter().peekable();
    for (s, id) in &valid {
        match s.kind.as_str() {
            "multipath" => {
                let Some(mp) = mp_ok.get(id.as_str()) else {
                    continue;
                };
                if existing_ids.contains(id.as_str()) {
                    skipped.push(skip(
                        s,
                        s.line,
                        SkipKind::Exists,
                        format!("a storage '{id}' already exists in mpcluster (not overwritten)"),
                    ));
                    continue;
                }
                added.push(Added {
                    line: s.line,
                    storage: Storage::Multipath(mp.clone()),
                    from_iscsi: None,
                });
            }
            "lvm" => {
                let Some(plan) = lvm_iter.next_if(|p| std::ptr::eq(p.section, *s)) else {
                    continue;
                };
                let base_id = match &plan.base {
                    BaseRef::Multipath(mp_id) => {
                        match existing.get(mp_id.as_str()) {
                            Some(Storage::Multipath(_)) => {}
                            Some(other) => {
                                skipped.push(skip(
                                    s,
                                    s.line,
                                    SkipKind::BaseNotImported,
                                    format!(
                                        "its base storage '{mp_id}' exists in mpcluster as an {} \
                                         storage, not a multipath storage",
                                        other.type_name()
                                    ),
                                ));
                                continue;
                            }
                            None if mp_failed.contains(mp_id.as_str()) => {
                                skipped.push(skip(
                                    s,
                                    s.line,
                                    SkipKind::BaseNotImported,
                                    format!("its base storage '{mp_id}' was not imported"),
                                ));
                                continue;
                            }
                            None => {}
                        }
                        (*mp_id).clone()
                    }
                    BaseRef::Iscsi(iscsi_idx) => {
                        let (iscsi, iscsi_id) = &valid[*iscsi_idx];
                        let entry = synthesized.entry(*iscsi_idx).or_insert_with(|| {
                            synthesize(iscsi, iscsi_id, existing, &mut taken, &mut added).map(
                                |(mp_id, reuse)| {
                                    if reuse {
                                        reused.push((mp_id.clone(), iscsi_id.clone()));
                                    }
                                    mp_id
                                },
                            )
                        });
                        match entry {
                            Ok(mp_id) => {
                                used_iscsi.insert(*iscsi_idx);
                                mp_id.clone()
                            }
                            Err(reason) => {
                                skipped.push(skip(
                                    s,
                                    s.line,
                                    SkipKind::BaseNotImported,
                                    reason.clone(),
                                ));
                                continue;
                            }
                        }
                    }
                };
                added.push(Added {
                    line: s.line,
                    storage: Storage::Lvm(LvmStorage {
                        id: plan.id,
                        vgname: plan.vgname,
                        base: LvmBase {
                            storage: base_id,
                            wwid: plan.wwid,
                        },
                        nodes: plan.nodes,
                        disable: plan.disable,
                    }),
                    from_iscsi: None,
                });
            }
            _ => {}
        }
    }

    // Unused iSCSI storages and every other type.
    for (idx, (s, _)) in valid.iter().enumerate() {
        match s.kind.as_str() {
            "multipath" | "lvm" => {}
            "iscsi" if used_iscsi.contains(&idx) => {}
            "iscsi" => skipped.push(skip(
                s,
                s.line,
                SkipKind::UnsupportedType,
                "type 'iscsi' is not managed by mpcluster (no imported lvm storage uses it as \
                 its base)"
                    .to_owned(),
            )),
            other => skipped.push(skip(
                s,
                s.line,
                SkipKind::UnsupportedType,
                format!(
                    "type '{}' is not managed by mpcluster (only multipath and lvm storages are)",
                    shown(other)
                ),
            )),
        }
    }
    skipped.sort_by_key(|s| s.line);

    let mut config = existing.clone();
    config
        .storages
        .extend(added.iter().map(|a| a.storage.clone()));
    config.validate()?;
    Ok(Import {
        config,
        added,
        reused,
        skipped,
    })
}

/// Check an LVM section and resolve its base against the file's sections.
fn plan_lvm<'a>(
    s: &'a Section,
    id: &StorageId,
    valid: &'a [(&'a Section, StorageId)],
) -> Result<LvmPlan<'a>, (usize, SkipKind, String)> {
    let invalid = |(line, reason): (usize, String)| (line, SkipKind::InvalidValue, reason);
    let Some(base) = s.get("base") else {
        return Err((
            s.line,
            SkipKind::NoBase,
            "no base: a volume group on local disks, not on a multipath LUN".to_owned(),
        ));
    };
    let base_value = base.value.as_deref().unwrap_or("");
    let vgname = match s.get("vgname") {
        None => return Err((s.line, SkipKind::InvalidValue, "no vgname".to_owned())),
        Some(p) => VgName::new(p.value.as_deref().unwrap_or(""))
            .map_err(|e| (p.line, SkipKind::InvalidValue, format!("vgname: {e}")))?,
    };
    let nodes = parse_nodes(s).map_err(invalid)?;
    let disable = parse_disable(s).map_err(invalid)?;
    let Some((base_store, volname)) = base_value.split_once(':') else {
        return Err((
            base.line,
            SkipKind::OtherBase,
            format!(
                "base {} is not a volume id <storage>:<volume>",
                shown(base_value)
            ),
        ));
    };
    let Some(base_idx) = valid.iter().position(|(_, v)| v.as_str() == base_store) else {
        return Err((
            base.line,
            SkipKind::OtherBase,
            format!(
                "its base storage '{}' is not defined in the file",
                shown(base_store)
            ),
        ));
    };
    let (base_section, base_id) = &valid[base_idx];
    let (wwid_text, base_ref) = match base_section.kind.as_str() {
        "multipath" => (volname, BaseRef::Multipath(base_id)),
        "iscsi" => match wwid_from_iscsi_volname(volname) {
            Some(w) => (w, BaseRef::Iscsi(base_idx)),
            None => {
                return Err((
                    base.line,
                    SkipKind::OtherBase,
                    format!(
                        "iSCSI volume {} does not name a LUN by WWID \
                         (<channel>.<id>.<lun>.scsi-<wwid> or ...dm-uuid-mpath-<wwid>)",
                        shown(volname)
                    ),
                ));
            }
        },
        other => {
            return Err((
                base.line,
                SkipKind::OtherBase,
                format!(
                    "its base storage '{base_id}' is of type '{}'; only multipath and iscsi \
                     bases can be imported",
                    shown(other)
                ),
            ));
        }
    };
    let wwid = Wwid::new(wwid_text)
        .map_err(|e| (base.line, SkipKind::InvalidValue, format!("base: {e}")))?;
    Ok(LvmPlan {
        section: s,
        id: id.clone(),
        vgname,
        wwid,
        nodes,
        disable,
        base: base_ref,
    })
}

/// Find or add the multipath storage standing for iSCSI storage `iscsi`: returns its id and
/// whether an existing one is reused.
fn synthesize(
    iscsi: &Section,
    iscsi_id: &StorageId,
    existing: &StorageConfig,
    taken: &mut BTreeSet<String>,
    added: &mut Vec<Added>,
) -> Result<(StorageId, bool), String> {
    let nodes = parse_nodes(iscsi).map_err(|(line, r)| {
        format!("its iSCSI base storage '{iscsi_id}' has an invalid value at line {line}: {r}")
    })?;
    let disable = parse_disable(iscsi).map_err(|(line, r)| {
        format!("its iSCSI base storage '{iscsi_id}' has an invalid value at line {line}: {r}")
    })?;
    for n in 0..MAX_SYNTH_CANDIDATES {
        let candidate = match n {
            0 => iscsi_id.to_string(),
            1 => format!("{iscsi_id}-mp"),
            n => format!("{iscsi_id}-mp{n}"),
        };
        let Ok(id) = StorageId::new(candidate.as_str()) else {
            break;
        };
        match existing.get(id.as_str()) {
            Some(Storage::Multipath(_)) => return Ok((id, true)),
            Some(_) => continue,
            None => {}
        }
        // The iSCSI storage's own id is free unless something else in the result uses it.
        if n > 0 && taken.contains(id.as_str()) {
            continue;
        }
        taken.insert(id.to_string());
        added.push(Added {
            line: iscsi.line,
            storage: Storage::Multipath(MultipathStorage {
                id: id.clone(),
                nodes,
                disable,
            }),
            from_iscsi: Some(iscsi_id.clone()),
        });
        return Ok((id, false));
    }
    Err(format!(
        "no free id for a multipath storage standing for iSCSI storage '{iscsi_id}'"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const W1: &str = "36001405aa6d4bd1e9d1487bb1d1f4a2a";
    const W2: &str = "36001405bb6d4bd1e9d1487bb1d1f4a2b";
    const W3: &str = "3600a098038303053453f463045727a03";

    fn cfg(v: serde_json::Value) -> StorageConfig {
        let c: StorageConfig = serde_json::from_value(v).unwrap();
        c.validate().unwrap();
        c
    }

    fn kinds(i: &Import) -> Vec<(usize, SkipKind)> {
        i.skipped.iter().map(|s| (s.line, s.kind)).collect()
    }

    /// A realistic cluster: local storages, NFS, an iSCSI SAN with LVM on it, a multipath
    /// storage with LVM on it, node restrictions, a disabled storage, comments.
    fn realistic() -> String {
        format!(
            "\
# storage.cfg of a three-node cluster
dir: local
\tpath /var/lib/vz
\tcontent iso,vztmpl,backup

lvmthin: local-lvm
\tthinpool data
\tvgname pve
\tcontent rootdir,images

nfs: backups
\texport /srv/backups
\tpath /mnt/pve/backups
\tserver 10.0.0.20
\tcontent backup
\tprune-backups keep-last=3

iscsi: san1
\tportal 10.0.0.1
\ttarget iqn.2003-01.org.linux-iscsi.san1:sn.abcdef
\tnodes pve1,pve2
\tcontent none

lvm: san1-lvm
\tvgname vg_san1
\tbase san1:0.0.1.scsi-{W1}
\tshared 1
\tcontent images,rootdir

# second LUN, multipath-named by-id volume
lvm: san1-lvm2
\tvgname vg_san1b
\tbase san1:0.0.2.dm-uuid-mpath-{W2}
\tdisable

multipath: mp
\tnodes pve1 pve2,pve3
\tcontent images

lvm: fc-data
\tvgname fcdata
\tbase mp:{W3}
\tnodes pve3
\tshared 1

lvm: local-vg
\tvgname vmdata
\tcontent images
"
        )
    }

    #[test]
    fn realistic_file_imports_multipath_lvm_and_iscsi_based_lvm() {
        let i = import(&StorageConfig::default(), &realistic()).unwrap();
        let got = serde_json::to_value(&i.config).unwrap();
        assert_eq!(
            got,
            json!({"storages": [
                {"type": "multipath", "id": "san1", "nodes": ["pve1", "pve2"]},
                {"type": "lvm", "id": "san1-lvm", "vgname": "vg_san1", "base": format!("san1:{W1}")},
                {"type": "lvm", "id": "san1-lvm2", "vgname": "vg_san1b", "base": format!("san1:{W2}"),
                 "disable": true},
                {"type": "multipath", "id": "mp", "nodes": ["pve1", "pve2", "pve3"]},
                {"type": "lvm", "id": "fc-data", "vgname": "fcdata", "base": format!("mp:{W3}"),
                 "nodes": ["pve3"]},
            ]})
        );
        assert_eq!(i.added.len(), 5);
        assert_eq!(
            i.added[0].from_iscsi.as_ref().map(StorageId::as_str),
            Some("san1")
        );
        assert_eq!(
            kinds(&i),
            vec![
                (2, SkipKind::UnsupportedType),
                (6, SkipKind::UnsupportedType),
                (11, SkipKind::UnsupportedType),
                (46, SkipKind::NoBase),
            ]
        );
        assert!(i.skipped[0].reason.contains("'dir'"), "{:?}", i.skipped[0]);
        assert_eq!(i.skipped[3].section.as_deref(), Some("lvm: local-vg"));
        // importing the same file again adds nothing
        let again = import(&i.config, &realistic()).unwrap();
        assert!(again.added.is_empty(), "{:?}", again.added);
        assert_eq!(again.config, i.config);
        assert_eq!(
            again
                .skipped
                .iter()
                .filter(|s| s.kind == SkipKind::Exists)
                .count(),
            4
        );
    }

    #[test]
    fn synthesized_id_avoids_taken_ids_and_reuses_existing_multipath() {
        let text = format!(
            "iscsi: san\n\tportal 10.0.0.1\n\ttarget iqn.x\n\tnodes a\n\n\
             lvm: vg1\n\tvgname vg1\n\tbase san:0.0.0.scsi-{W1}\n\n\
             multipath: san-mp\n\n"
        );
        // 'san' is taken by an existing lvm storage, 'san-mp' by the file: 'san-mp2'
        let existing = cfg(json!({"storages": [
            {"type": "multipath", "id": "other"},
            {"type": "lvm", "id": "san", "vgname": "v", "base": format!("other:{W2}")},
        ]}));
        let i = import(&existing, &text).unwrap();
        let ids: Vec<&str> = i.added.iter().map(|a| a.storage.id().as_str()).collect();
        assert_eq!(ids, ["san-mp2", "vg1", "san-mp"]);
        match &i.added[0].storage {
            Storage::Multipath(m) => {
                assert_eq!(m.nodes.as_ref().unwrap().len(), 1);
            }
            other => panic!("{other:?}"),
        }
        // an existing multipath storage with the iSCSI id is reused, not duplicated
        let existing = cfg(json!({"storages": [{"type": "multipath", "id": "san"}]}));
        let i = import(&existing, &text).unwrap();
        let ids: Vec<&str> = i.added.iter().map(|a| a.storage.id().as_str()).collect();
        assert_eq!(ids, ["vg1", "san-mp"]);
        assert_eq!(i.reused.len(), 1);
    }

    #[test]
    fn malformed_lines_invalid_ids_and_values_are_reported_with_lines() {
        let text = format!(
            "\
garbage line
multipath: mp
\tnodes a,b
\tnodes c
not indented

multipath: x
\tdisable

multipath: bad_nodes
\tnodes a,\"b\"

lvm: on-rbd
\tvgname v
\tbase ceph:vm-100-disk-0

rbd: ceph
\tpool rbd

lvm: no-vgname
\tbase mp:{W1}

lvm: bad-wwid
\tvgname v
\tbase mp:bad{{wwid

lvm: weird-iscsi
\tvgname v
\tbase san:lun1

iscsi: san
\tportal p

lvm: missing
\tvgname v
\tbase nowhere:{W1}

lvm: ok
\tvgname v
\tbase mp:{W1}
\tdisable maybe

lvm: on-bad
\tvgname v
\tbase bad_nodes:{W1}
"
        );
        let i = import(&StorageConfig::default(), &text).unwrap();
        assert_eq!(
            kinds(&i),
            vec![
                (1, SkipKind::Malformed),
                (4, SkipKind::Malformed),
                (5, SkipKind::Malformed),
                (7, SkipKind::InvalidId),
                (11, SkipKind::InvalidValue),
                (15, SkipKind::OtherBase),
                (17, SkipKind::UnsupportedType),
                (20, SkipKind::InvalidValue),
                (25, SkipKind::InvalidValue),
                (29, SkipKind::OtherBase),
                (31, SkipKind::UnsupportedType),
                (36, SkipKind::OtherBase),
                (41, SkipKind::InvalidValue),
                (43, SkipKind::BaseNotImported),
            ],
            "{:#?}",
            i.skipped
        );
        // the duplicate 'nodes' keeps the first value; the stray line does not break the section
        assert_eq!(
            serde_json::to_value(&i.config).unwrap(),
            json!({"storages": [{"type": "multipath", "id": "mp", "nodes": ["a", "b"]}]})
        );
        assert!(
            i.skipped[3].reason.contains("at least 2"),
            "{:?}",
            i.skipped[3]
        );
    }

    #[test]
    fn header_without_blank_line_is_read_like_proxmox() {
        let text = format!("multipath: mp\nlvm: l\n\tvgname v\n\tbase mp:{W1}\n");
        let (sections, skipped) = read_sections(&text);
        assert_eq!(sections.len(), 1);
        assert!(sections[0].properties.contains_key("vgname"));
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].reason.contains("blank line"));
    }

    #[test]
    fn duplicate_ids_keep_the_last_section() {
        let text = "multipath: mp\n\tnodes a\n\nmultipath: mp\n\tnodes b\n";
        let i = import(&StorageConfig::default(), text).unwrap();
        assert_eq!(
            serde_json::to_value(&i.config).unwrap(),
            json!({"storages": [{"type": "multipath", "id": "mp", "nodes": ["b"]}]})
        );
        assert_eq!(kinds(&i), vec![(1, SkipKind::Duplicate)]);
    }

    #[test]
    fn headers_comments_and_line_endings() {
        assert_eq!(
            parse_header("LVM: x"),
            Some(("lvm".to_owned(), "x".to_owned()))
        );
        assert_eq!(
            parse_header("lvm:x"),
            Some(("lvm".to_owned(), "x".to_owned()))
        );
        assert_eq!(
            parse_header("lvm:   x"),
            Some(("lvm".to_owned(), "x".to_owned()))
        );
        assert_eq!(parse_header("lvm: x y"), None);
        assert_eq!(parse_header("lvm x"), None);
        assert_eq!(parse_header(": x"), None);
        assert_eq!(parse_header(" lvm: x"), None);
        assert_eq!(
            parse_property("\tdisable"),
            Some(("disable".to_owned(), None))
        );
        assert_eq!(
            parse_property("    path /a b "),
            Some(("path".to_owned(), Some("/a b".to_owned())))
        );
        // CRLF line endings, indented comments inside a section
        let text = "multipath: mp\r\n  # a comment\r\n\tnodes a\r\n\tdisable 0\r\n";
        let i = import(&StorageConfig::default(), text).unwrap();
        assert!(i.skipped.is_empty(), "{:?}", i.skipped);
        assert_eq!(
            serde_json::to_value(&i.config).unwrap(),
            json!({"storages": [{"type": "multipath", "id": "mp", "nodes": ["a"]}]})
        );
    }

    #[test]
    fn iscsi_volnames() {
        assert_eq!(
            wwid_from_iscsi_volname(&format!("0.0.1.scsi-{W1}")),
            Some(W1)
        );
        assert_eq!(
            wwid_from_iscsi_volname(&format!("12.3.45.dm-uuid-mpath-{W1}")),
            Some(W1)
        );
        for bad in [
            "0.0.scsi-x",
            "a.0.1.scsi-x",
            "0.0.1.scsi-",
            "0.0.1.ata-x",
            "0..1.scsi-x",
            "lun1",
        ] {
            assert_eq!(wwid_from_iscsi_volname(bad), None, "{bad}");
        }
    }

    #[test]
    fn hostile_input_never_panics_and_is_reported_escaped() {
        let long = "x".repeat(10_000);
        let text =
            format!("{long}\nmultipath: {long}\n\nlvm: l\n\tvgname \"v\n\tbase mp:{{}}\n\0\n");
        let i = import(&StorageConfig::default(), &text).unwrap();
        assert!(i.added.is_empty());
        assert!(i.skipped.iter().all(|s| s.reason.len() < 400), "{i:?}");
    }
}
