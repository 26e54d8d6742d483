//! Transport words: multipathd's `%P` protocol names (`scsi:iscsi`, `nvme:tcp`, ...) as the
//! short words the broadcast and the matrix show (`iscsi`, `nvme-tcp`, ...):
//! [`transport_word`], and a map's common transport, [`common_transport`].

use std::borrow::Cow;

use crate::broadcast::TRANSPORT_MAX_LEN;

/// The transport word of a map whose paths use different transports.
pub const MIXED: &str = "mixed";

/// The short transport word for a `%P` protocol name (`@0.9.4:libmultipath/structs.c`
/// `protocol_name[]`, unchanged to 0.14.3).
///
/// SCSI transports drop the `scsi:` prefix (`scsi:fcp` → `fc`, `scsi:iscsi` → `iscsi`,
/// `scsi:sas` → `sas`, `scsi:unspec` → `scsi`); NVMe ones keep it as `nvme-<x>` (`nvme:tcp` →
/// `nvme-tcp`, `nvme:fc` → `nvme-fc`, `nvme:pcie` → `nvme-pcie`, `nvme:unspec` → `nvme`).
/// `undef`, `[undef]` and empty give `None`. A protocol this table does not know yet is
/// converted the same way if it is short and made of `[a-z0-9:-]`, else `None`.
pub fn transport_word(protocol: &str) -> Option<Cow<'static, str>> {
    let word = match protocol {
        "scsi:fcp" => "fc",
        "scsi:iscsi" => "iscsi",
        "scsi:sas" => "sas",
        "scsi:srp" => "srp",
        "scsi:spi" => "spi",
        "scsi:ssa" => "ssa",
        "scsi:sbp" => "sbp",
        "scsi:adt" => "adt",
        "scsi:ata" => "ata",
        "scsi:usb" => "usb",
        "scsi:unspec" => "scsi",
        "nvme:pcie" => "nvme-pcie",
        "nvme:rdma" => "nvme-rdma",
        "nvme:fc" => "nvme-fc",
        "nvme:tcp" => "nvme-tcp",
        "nvme:loop" => "nvme-loop",
        "nvme:apple-nvme" => "nvme-apple",
        "nvme:unspec" => "nvme",
        "ccw" => "ccw",
        "cciss" => "cciss",
        "" | "undef" | "[undef]" | "[unknown]" => return None,
        other => return unknown_protocol(other).map(Cow::Owned),
    };
    Some(Cow::Borrowed(word))
}

fn unknown_protocol(protocol: &str) -> Option<String> {
    if protocol.len() > TRANSPORT_MAX_LEN
        || !protocol
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
    {
        return None;
    }
    let word = match protocol.split_once(':') {
        Some(("scsi", rest)) => rest.to_owned(),
        Some(("nvme", rest)) => format!("nvme-{rest}"),
        _ => protocol.to_owned(),
    };
    let word = word.replace(':', "-");
    (!word.is_empty() && word.len() <= TRANSPORT_MAX_LEN).then_some(word)
}

/// The common transport word of a set of path protocols: the word when all paths that have
/// one agree, [`MIXED`] when they differ, `None` when no path has a known protocol.
pub fn common_transport<'a>(
    protocols: impl IntoIterator<Item = Option<&'a str>>,
) -> Option<String> {
    let mut common: Option<Cow<'static, str>> = None;
    for word in protocols.into_iter().flatten().filter_map(transport_word) {
        match &common {
            None => common = Some(word),
            Some(seen) if *seen == word => {}
            Some(_) => return Some(MIXED.to_owned()),
        }
    }
    common.map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_protocols() {
        let cases = [
            ("scsi:fcp", Some("fc")),
            ("scsi:iscsi", Some("iscsi")),
            ("scsi:sas", Some("sas")),
            ("scsi:srp", Some("srp")),
            ("scsi:unspec", Some("scsi")),
            ("nvme:tcp", Some("nvme-tcp")),
            ("nvme:rdma", Some("nvme-rdma")),
            ("nvme:fc", Some("nvme-fc")),
            ("nvme:pcie", Some("nvme-pcie")),
            ("nvme:apple-nvme", Some("nvme-apple")),
            ("nvme:unspec", Some("nvme")),
            ("ccw", Some("ccw")),
            ("undef", None),
            ("", None),
            ("scsi:future", Some("future")),
            ("nvme:quic", Some("nvme-quic")),
            ("x:y:z", Some("x-y-z")),
            ("SCSI:FCP", None),
            ("scsi:\u{1b}[31m", None),
        ];
        for (p, want) in cases {
            assert_eq!(transport_word(p).as_deref(), want, "{p:?}");
        }
        assert_eq!(transport_word(&"a".repeat(100)), None);
    }

    #[test]
    fn common() {
        assert_eq!(
            common_transport([Some("scsi:iscsi"), Some("scsi:iscsi")]).as_deref(),
            Some("iscsi")
        );
        assert_eq!(
            common_transport([Some("scsi:iscsi"), None, Some("undef")]).as_deref(),
            Some("iscsi")
        );
        assert_eq!(
            common_transport([Some("scsi:iscsi"), Some("scsi:fcp")]).as_deref(),
            Some(MIXED)
        );
        assert_eq!(common_transport([None, Some("undef")]), None);
        assert_eq!(common_transport(std::iter::empty()), None);
    }
}
