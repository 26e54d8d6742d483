//! The multipath wwids file (`/etc/multipath/wwids`): with `find_multipaths strict` a WWID must
//! be listed there for multipath to build a map, so the agent merges the allow-list into it.
//!
//! Entry point: [`merge_wwids_file`], a pure function of the current content, the wanted
//! allow-list and the WWIDs the agent itself added earlier (state the agent records). It adds
//! missing allow-listed WWIDs, prunes only WWIDs we added before and no longer want, and leaves
//! every other line (header, comments, hand-made or boot-from-SAN entries, entries multipathd
//! remembered) untouched and in place. It is idempotent.

use std::collections::BTreeSet;

use crate::ids::Wwid;

/// The header multipath writes into a new wwids file (`libmultipath/wwids.c`).
pub const WWIDS_FILE_HEADER: &str = "\
# Multipath wwids, Version : 1.0
# NOTE: This file is automatically maintained by multipath and multipathd.
# You should not need to edit this file in normal circumstances.
#
# Valid WWIDs:
";

/// The result of [`merge_wwids_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WwidsMerge {
    /// The new file content.
    pub content: String,
    /// The WWIDs that are in the file because of us: record this and pass it as
    /// `previously_added_by_us` next time. Entries that were already there (hand-made, boot from
    /// SAN, remembered by multipathd) are never adopted.
    pub added_by_us: BTreeSet<Wwid>,
    /// Whether `content` differs from the existing content (write only then).
    pub changed: bool,
}

/// The WWID of one wwids-file line, read the way multipath reads it (`lookup_wwid`): the line
/// must start with `/`, and the WWID runs to the next `/`. Other lines (comments, junk) have
/// none.
pub fn wwid_of_line(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('/')?;
    let end = rest.find('/')?;
    Some(&rest[..end])
}

/// The WWIDs listed in a wwids file.
pub fn listed_wwids(content: &str) -> BTreeSet<&str> {
    content.lines().filter_map(wwid_of_line).collect()
}

/// The WWIDs listed in the wwids file `existing` that mpcluster did not add
/// (`added_by_us`) and the cluster does not allow-list (`wanted`): boot-from-SAN and hand-made
/// entries, which the baseline keeps as blacklist exceptions so their maps are never dropped.
/// One rule for the apply and for `doctor`'s check of what the apply rendered.
pub fn foreign_entries(
    existing: &str,
    wanted: &BTreeSet<Wwid>,
    added_by_us: &BTreeSet<Wwid>,
) -> BTreeSet<Wwid> {
    listed_wwids(existing)
        .into_iter()
        .filter_map(|w| Wwid::new(w).ok())
        .filter(|w| !added_by_us.contains(w) && !wanted.contains(w))
        .collect()
}

/// Merge the allow-list into the wwids file.
///
/// - Lines whose WWID is in `previously_added_by_us` but not in `wanted` are removed (all of
///   them, if duplicated).
/// - Every other line is kept verbatim, in place.
/// - Wanted WWIDs not yet listed are appended as `/<wwid>/` lines in sorted order; an empty file
///   first gets multipath's header ([`WWIDS_FILE_HEADER`]).
pub fn merge_wwids_file(
    existing: &str,
    wanted: &BTreeSet<Wwid>,
    previously_added_by_us: &BTreeSet<Wwid>,
) -> WwidsMerge {
    let mut content = String::with_capacity(existing.len() + 64 * wanted.len());
    let mut present: BTreeSet<&str> = BTreeSet::new();
    for line in existing.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        if let Some(w) = wwid_of_line(body) {
            if previously_added_by_us.contains(w) && !wanted.contains(w) {
                continue;
            }
            present.insert(w);
        }
        content.push_str(line);
    }
    let mut added_by_us = BTreeSet::new();
    for w in wanted {
        if present.contains(w.as_str()) {
            if previously_added_by_us.contains(w) {
                added_by_us.insert(w.clone());
            }
            continue;
        }
        if content.is_empty() {
            content.push_str(WWIDS_FILE_HEADER);
        } else if !content.ends_with('\n') {
            content.push('\n');
        }
        content.push('/');
        content.push_str(w.as_str());
        content.push_str("/\n");
        added_by_us.insert(w.clone());
    }
    let changed = content != existing;
    WwidsMerge {
        content,
        added_by_us,
        changed,
    }
}
