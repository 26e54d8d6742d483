//! Shared fixtures of the config tests: a defaults-only and a rich configuration (every knob,
//! aliases, per-LUN knobs, a WWID full of regex metacharacters) and typical vendor overrides.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;

use mpcluster_core::config::{MultipathConfig, Overrides, add_wwid, apply_defaults_update};
use serde_json::{Value, json};

pub const NAA: &str = "3600a098038303053453f463045727a2f";
pub const EUI: &str = "eui.0025388b71b0e2c4";
/// Valid by the `Wwid` rules and full of POSIX ERE metacharacters.
pub const ODD: &str = "1ODD_VENDOR+x(1)[2]*?^$|y";

pub fn map(v: Value) -> BTreeMap<String, Value> {
    serde_json::from_value(v).unwrap()
}

pub fn defaults_only() -> MultipathConfig {
    let mut cfg = MultipathConfig::new();
    apply_defaults_update(
        &mut cfg,
        map(json!({"polling-interval": 5, "no-path-retry": "queue", "path-selector": "service-time 0"})),
        vec![],
    )
    .unwrap();
    cfg
}

/// Every knob in defaults, every per-LUN knob on one LUN, aliases.
pub fn rich() -> MultipathConfig {
    let mut cfg = MultipathConfig::new();
    apply_defaults_update(
        &mut cfg,
        map(json!({
            "polling-interval": "10",
            "path-selector": "round-robin 0",
            "path-grouping-policy": "multibus",
            "path-checker": "tur",
            "prio": "const",
            "failback": "immediate",
            "no-path-retry": 12,
            "rr-weight": "uniform",
            "rr-min-io-rq": 2,
            "fast-io-fail-tmo": 5,
            "dev-loss-tmo": "infinity",
            "max-sectors-kb": 1024,
            "checker-timeout": 30,
            "queue-without-daemon": "no",
        })),
        vec![],
    )
    .unwrap();
    add_wwid(
        &mut cfg,
        NAA,
        map(json!({
            "alias": "san1-lun0",
            "path-selector": "queue-length 0",
            "path-grouping-policy": "group_by_prio",
            "prio": "alua",
            "failback": 15,
            "no-path-retry": "queue",
            "rr-weight": "priorities",
            "rr-min-io-rq": "4",
            "max-sectors-kb": 512,
        })),
    )
    .unwrap();
    add_wwid(&mut cfg, EUI, map(json!({"alias": "nvme.lun_1"}))).unwrap();
    add_wwid(&mut cfg, ODD, map(json!({"no-path-retry": "fail"}))).unwrap();
    cfg
}

pub const VENDOR_OVERRIDES: &str = r#"# NetApp ONTAP, per the vendor's host utilities
devices {
	device {
		vendor "NETAPP"
		product "LUN.*"
		path_grouping_policy group_by_prio
		prio ontap
		failback immediate
		no_path_retry queue
		features "2 pg_init_retries 50"   # quoted value with spaces
	}
	device {
		vendor "PURE"
		product "FlashArray"
		path_selector "service-time 0"
		fast_io_fail_tmo 10
	}
}
overrides {
	dev_loss_tmo 60
	protocol {
		type "scsi:iscsi"
		fast_io_fail_tmo 7
	}
}
"#;

pub fn vendor_overrides() -> Overrides {
    Overrides::parse(VENDOR_OVERRIDES).unwrap()
}
