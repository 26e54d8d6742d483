//! Naming rules and size limits shared by every backend.
//!
//! Node KV keys, document names and etcd cluster names follow one rule, [`NAME_RULE`]
//! (`[a-z0-9-]{1,64}`), which keeps them safe as file names and etcd key segments. Value
//! limits per node KV key follow pmxcfs (values must stay below 32 KiB) except the per-path
//! detail key, which may reach 1 MiB. All checks happen before anything is written.

use mpcluster_core::snapshot::kv_keys;

use crate::StoreError;

/// The naming rule, as shown in error messages.
pub const NAME_RULE: &str = "1 to 64 characters from a-z, 0-9 and '-'";

/// Longest name accepted.
pub const NAME_MAX_LEN: usize = 64;

/// Largest value for keys limited like pmxcfs node KV (`multipath`, `multipath-apply`,
/// `multipath-collect` and every key not listed otherwise): below 32 KiB, i.e. 32767 bytes.
pub const KV_SMALL_MAX_LEN: usize = 32 * 1024 - 1;

/// Largest value for `multipath-detail` (per-path detail for the node view): 1 MiB.
pub const KV_DETAIL_MAX_LEN: usize = 1024 * 1024;

/// Largest document accepted: 1 MiB (etcd's default request limit is 1.5 MiB).
pub const DOC_MAX_LEN: usize = 1024 * 1024;

/// The largest value accepted for node KV `key`, in bytes (inclusive).
pub fn value_limit(key: &str) -> usize {
    if key == kv_keys::DETAIL {
        KV_DETAIL_MAX_LEN
    } else {
        // HEALTH, APPLY, COLLECT and unknown keys.
        KV_SMALL_MAX_LEN
    }
}

/// Check `name` against [`NAME_RULE`]; `kind` names it in the error.
pub fn check_name(kind: &'static str, name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        Some("must not be empty".to_owned())
    } else if name.len() > NAME_MAX_LEN {
        Some(format!(
            "is {} bytes long; {NAME_RULE} are allowed",
            name.len()
        ))
    } else {
        name.chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
            .map(|c| format!("contains {c:?}; {NAME_RULE} are allowed"))
    };
    match reason {
        None => Ok(()),
        Some(reason) => {
            let mut value: String = name.chars().take(80).collect();
            if value.len() < name.len() {
                value.push('…');
            }
            Err(StoreError::InvalidName {
                kind,
                value,
                reason,
            })
        }
    }
}

/// Check a node KV key name.
pub fn check_kv_key(key: &str) -> Result<(), StoreError> {
    check_name("node KV key", key)
}

/// Check a document name.
pub fn check_doc_name(name: &str) -> Result<(), StoreError> {
    check_name("document name", name)
}

/// Check a node KV value against its key's limit.
pub fn check_kv_value(key: &str, value: &str) -> Result<(), StoreError> {
    let limit = value_limit(key);
    if value.len() > limit {
        return Err(StoreError::ValueTooLarge {
            key: key.to_owned(),
            len: value.len(),
            limit,
        });
    }
    Ok(())
}

/// Check a document's size.
pub fn check_doc_content(name: &str, content: &str) -> Result<(), StoreError> {
    if content.len() > DOC_MAX_LEN {
        return Err(StoreError::DocumentTooLarge {
            doc: name.to_owned(),
            len: content.len(),
            limit: DOC_MAX_LEN,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "multipath-detail", "0", &"a".repeat(64)] {
            check_name("x", ok).unwrap();
        }
        for bad in ["", "A", "a_b", "a/b", "a.b", "..", "ä", &"a".repeat(65)] {
            let e = check_name("document name", bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    StoreError::InvalidName {
                        kind: "document name",
                        ..
                    }
                ),
                "{bad:?}"
            );
        }
        let e = check_name("node KV key", "a/b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid node KV key \"a/b\": contains '/'; 1 to 64 characters from a-z, 0-9 and '-' are allowed"
        );
    }

    #[test]
    fn limits() {
        assert_eq!(value_limit("multipath"), 32767);
        assert_eq!(value_limit("multipath-apply"), 32767);
        assert_eq!(value_limit("multipath-collect"), 32767);
        assert_eq!(value_limit("whatever"), 32767);
        assert_eq!(value_limit("multipath-detail"), 1 << 20);
        check_kv_value("multipath", &"x".repeat(32767)).unwrap();
        assert!(matches!(
            check_kv_value("multipath", &"x".repeat(32768)),
            Err(StoreError::ValueTooLarge {
                len: 32768,
                limit: 32767,
                ..
            })
        ));
        check_kv_value("multipath-detail", &"x".repeat(1 << 20)).unwrap();
        assert!(check_kv_value("multipath-detail", &"x".repeat((1 << 20) + 1)).is_err());
    }
}
