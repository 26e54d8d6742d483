//! Merging the allow-list into multipath's wwids file: adds, prunes only what we added, keeps
//! foreign entries and comments, idempotent, header on an empty file.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use mpcluster_core::Wwid;
use mpcluster_core::config::wwids_file::{listed_wwids, wwid_of_line};
use mpcluster_core::config::{WWIDS_FILE_HEADER, merge_wwids_file};
use proptest::prelude::*;

fn set(v: &[&str]) -> BTreeSet<Wwid> {
    v.iter().map(|w| Wwid::new(*w).unwrap()).collect()
}

const BOOT: &str = "3600508b1001c4d4b5a3c2e1f0a9b8c7d";

fn existing() -> String {
    format!("{WWIDS_FILE_HEADER}/{BOOT}/\n# a hand-written note\n/ours-old/\n/ours-kept/\n")
}

#[test]
fn header_on_an_empty_file() {
    let m = merge_wwids_file("", &set(&["b", "a"]), &set(&[]));
    assert_eq!(m.content, format!("{WWIDS_FILE_HEADER}/a/\n/b/\n"));
    assert_eq!(m.added_by_us, set(&["a", "b"]));
    assert!(m.changed);
    // nothing wanted: an empty file stays empty
    let m = merge_wwids_file("", &set(&[]), &set(&["x"]));
    assert_eq!(m.content, "");
    assert!(!m.changed && m.added_by_us.is_empty());
}

#[test]
fn adds_and_prunes_only_ours() {
    let m = merge_wwids_file(
        &existing(),
        &set(&["ours-kept", "new"]),
        &set(&["ours-old", "ours-kept"]),
    );
    assert_eq!(
        m.content,
        format!("{WWIDS_FILE_HEADER}/{BOOT}/\n# a hand-written note\n/ours-kept/\n/new/\n")
    );
    assert_eq!(m.added_by_us, set(&["ours-kept", "new"]));
    assert!(m.changed);
}

#[test]
fn foreign_entries_are_kept_and_never_adopted() {
    // the boot LUN is also allow-listed: it is not added twice and not recorded as ours ...
    let m = merge_wwids_file(&existing(), &set(&[BOOT]), &set(&[]));
    assert_eq!(m.content, existing());
    assert!(m.added_by_us.is_empty());
    assert!(!m.changed);
    // ... so removing it from the allow-list later does not prune it
    let m2 = merge_wwids_file(&m.content, &set(&[]), &m.added_by_us);
    assert_eq!(m2.content, existing());
    assert!(!m2.changed);
}

#[test]
fn keeps_junk_and_a_missing_final_newline() {
    let text = "# header\n/unterminated\n  /indented/\nnot a wwid\n/last/";
    let m = merge_wwids_file(text, &set(&["n"]), &set(&["unterminated", "indented"]));
    assert_eq!(m.content, format!("{text}\n/n/\n"));
    assert_eq!(
        listed_wwids(&m.content),
        ["last", "n"].into_iter().collect()
    );
    assert_eq!(wwid_of_line("/a/ trailing"), Some("a"));
    assert_eq!(wwid_of_line("#/a/"), None);
}

#[test]
fn idempotent_and_readds_what_someone_removed() {
    let wanted = set(&["a", "b"]);
    let m1 = merge_wwids_file(&existing(), &wanted, &set(&["ours-old", "ours-kept"]));
    let m2 = merge_wwids_file(&m1.content, &wanted, &m1.added_by_us);
    assert_eq!(m2.content, m1.content);
    assert_eq!(m2.added_by_us, m1.added_by_us);
    assert!(!m2.changed);
    // `multipath -W` reset the file: ours come back, still recorded as ours
    let m3 = merge_wwids_file(WWIDS_FILE_HEADER, &wanted, &m2.added_by_us);
    assert_eq!(m3.content, format!("{WWIDS_FILE_HEADER}/a/\n/b/\n"));
    assert_eq!(m3.added_by_us, wanted);
}

proptest! {
    #[test]
    fn merge_properties(
        foreign in proptest::collection::btree_set("[a-f]", 0..4),
        prev in proptest::collection::btree_set("[a-h]", 0..5),
        wanted in proptest::collection::btree_set("[c-j]", 0..5),
    ) {
        let foreign: BTreeSet<Wwid> = foreign.iter().map(|w| Wwid::new(w.as_str()).unwrap()).collect();
        let prev: BTreeSet<Wwid> = prev.iter().map(|w| Wwid::new(w.as_str()).unwrap()).collect();
        let wanted: BTreeSet<Wwid> = wanted.iter().map(|w| Wwid::new(w.as_str()).unwrap()).collect();
        let mut file = String::from("# c\n");
        for w in foreign.iter().chain(prev.iter()) {
            file.push_str(&format!("/{w}/\n"));
        }
        let m = merge_wwids_file(&file, &wanted, &prev);
        let listed = listed_wwids(&m.content);
        for w in &wanted {
            prop_assert!(listed.contains(w.as_str()));
        }
        for w in &foreign {
            if !prev.contains(w) {
                prop_assert!(listed.contains(w.as_str()), "foreign {} kept", w);
                prop_assert!(!m.added_by_us.contains(w), "foreign {} not adopted", w);
            }
        }
        for w in &prev {
            if !wanted.contains(w) {
                prop_assert!(!listed.contains(w.as_str()), "ours {} pruned", w);
            }
        }
        prop_assert!(m.added_by_us.is_subset(&wanted));
        prop_assert!(m.content.starts_with("# c\n"));
        let again = merge_wwids_file(&m.content, &wanted, &m.added_by_us);
        prop_assert_eq!(&again.content, &m.content);
        prop_assert_eq!(&again.added_by_us, &m.added_by_us);
        prop_assert!(!again.changed);
    }
}

#[test]
fn foreign_entries_are_listed_neither_ours_nor_wanted() {
    use mpcluster_core::config::wwids_file::foreign_entries;
    let w = |s: &str| Wwid::new(s).unwrap();
    let file = "# header\n/3600a0980383030534000000000000001/\n/3600a0980383030534000000000000002/\n/3600a0980383030534000000000000003/\njunk\n/not a wwid/\n";
    let wanted = BTreeSet::from([w("3600a0980383030534000000000000001")]);
    let ours = BTreeSet::from([w("3600a0980383030534000000000000002")]);
    assert_eq!(
        foreign_entries(file, &wanted, &ours),
        BTreeSet::from([w("3600a0980383030534000000000000003")])
    );
    assert!(foreign_entries("", &wanted, &ours).is_empty());
}
