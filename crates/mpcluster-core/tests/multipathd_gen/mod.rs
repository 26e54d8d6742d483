//! Generators of realistic multipathd replies and broadcast inputs, shared by the tests and
//! the `multipathd` bench (`#[path]`-included there).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mpcluster_core::broadcast::MapSummary;
use mpcluster_core::{MapState, Wwid};

/// A realistic 33-character NAA WWID (NetApp prefix + counter).
pub fn naa_wwid(i: usize) -> String {
    format!("3600a098038303053453f4630{:08x}", i)
}

/// `show maps json` with `maps` maps of `paths` iSCSI paths each (two ALUA groups), in
/// multipathd 0.9.4's exact layout. Every `failed_every`-th map has its first path failed.
pub fn maps_json(maps: usize, paths: usize, failed_every: Option<usize>) -> String {
    let mut s = String::with_capacity(maps * (800 + paths * 600));
    s.push_str("{\n   \"major_version\": 0,\n   \"minor_version\": 1,\n   \"maps\": [");
    for m in 0..maps {
        if m > 0 {
            s.push(',');
        }
        let degraded = failed_every.is_some_and(|k| k > 0 && m % k == 0);
        let active = if degraded {
            paths.saturating_sub(1)
        } else {
            paths
        };
        let _ = write!(
            s,
            "{{\n      \"name\" : \"lun{m}\",\n      \"uuid\" : \"{}\",\n      \"sysfs\" : \"dm-{m}\",\n      \"failback\" : \"immediate\",\n      \"queueing\" : \"5 chk\",\n      \"paths\" : {active},\n      \"write_prot\" : \"rw\",\n      \"dm_st\" : \"active\",\n      \"features\" : \"1 queue_if_no_path\",\n      \"hwhandler\" : \"1 alua\",\n      \"action\" : \"\",\n      \"path_faults\" : 0,\n      \"vend\" : \"NETAPP\",\n      \"prod\" : \"LUN C-Mode\",\n      \"rev\" : \"9800\",\n      \"switch_grp\" : 0,\n      \"map_loads\" : 1,\n      \"total_q_time\" : 0,\n      \"q_timeouts\" : 0,\n      \"path_groups\": [",
            naa_wwid(m)
        );
        let groups = if paths >= 2 { 2 } else { 1 };
        let per_group = paths.div_ceil(groups);
        let mut p = 0;
        for g in 0..groups {
            if g > 0 {
                s.push(',');
            }
            let (pri, st) = if g == 0 {
                (50, "active")
            } else {
                (10, "enabled")
            };
            let _ = write!(
                s,
                "{{\n         \"selector\" : \"service-time 0\",\n         \"pri\" : {pri},\n         \"dm_st\" : \"{st}\",\n         \"marginal_st\" : \"normal\",\n         \"group\" : {},\n         \"paths\": [",
                g + 1
            );
            for k in 0..per_group.min(paths - p) {
                if k > 0 {
                    s.push(',');
                }
                let failed = degraded && p == 0;
                let (dm, chk) = if failed {
                    ("failed", "faulty")
                } else {
                    ("active", "ready")
                };
                let dev = dev_name(m * paths + p);
                let _ = write!(
                    s,
                    "{{\n            \"dev\" : \"{dev}\",\n            \"dev_t\" : \"8:{}\",\n            \"dm_st\" : \"{dm}\",\n            \"dev_st\" : \"running\",\n            \"chk_st\" : \"{chk}\",\n            \"checker\" : \"tur\",\n            \"pri\" : {pri},\n            \"host_wwnn\" : \"[undef]\",\n            \"target_wwnn\" : \"iqn.1992-08.com.netapp:sn.4711\",\n            \"host_wwpn\" : \"[undef]\",\n            \"target_wwpn\" : \"[undef]\",\n            \"host_adapter\" : \"10.0.{}.1\",\n            \"lun_hex\" : \"0x{:04x}000000000000\",\n            \"marginal_st\" : \"normal\"\n         }}",
                    (m * paths + p) * 16 % 256,
                    p % 4,
                    m % 0x4000
                );
                p += 1;
            }
            s.push_str("]\n      }");
        }
        s.push_str("]\n   }");
    }
    s.push_str("]\n}\n");
    s
}

/// `show paths raw format` (the agent's format) for the same system as [`maps_json`].
pub fn paths_raw(maps: usize, paths: usize) -> String {
    let mut s = String::new();
    for m in 0..maps {
        for p in 0..paths {
            let _ = writeln!(
                s,
                "{}|scsi:iscsi|{}|8:{}|active|ready|running|tur|50|normal|{}:0:0:{m}|[undef]|iqn.1992-08.com.netapp:sn.4711|[undef]|[undef]|10.0.{}.1|0x{:04x}000000000000|lun{m}",
                dev_name(m * paths + p),
                naa_wwid(m),
                (m * paths + p) * 16 % 256,
                p + 2,
                p % 4,
                m % 0x4000
            );
        }
    }
    s
}

/// Linux sd names: sda .. sdz, sdaa, ...
pub fn dev_name(mut i: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'a' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    letters.reverse();
    format!("sd{}", String::from_utf8_lossy(&letters))
}

/// Broadcast input: `n` maps with NAA WWIDs, all optional fields set (iSCSI, 1 TiB + i), 4/4
/// paths; every `degraded_every`-th map degraded 3/4, every `failed_every`-th failed 0/4.
pub fn summaries(
    n: usize,
    degraded_every: Option<usize>,
    failed_every: Option<usize>,
) -> BTreeMap<Wwid, MapSummary> {
    (0..n)
        .filter_map(|i| {
            let hit = |k: Option<usize>| k.is_some_and(|k| k > 0 && i % k == 0);
            let (state, active) = if hit(failed_every) {
                (MapState::Failed, 0)
            } else if hit(degraded_every) {
                (MapState::Degraded, 3)
            } else {
                (MapState::Optimal, 4)
            };
            let wwid = Wwid::new(naa_wwid(i)).ok()?;
            Some((
                wwid,
                MapSummary {
                    state,
                    paths_active: Some(active),
                    paths_total: Some(4),
                    transport: Some("iscsi".into()),
                    size: Some((1u64 << 40) + i as u64 * 4096),
                },
            ))
        })
        .collect()
}
