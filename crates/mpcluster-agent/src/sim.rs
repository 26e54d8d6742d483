//! Simulated multipath nodes for the demo and end-to-end tests: a small, mutable model of a
//! node's maps and paths, rendered into the replies a real multipathd 0.9.4 gives
//! (`show maps json`, the raw paths format) and into a sysfs tree with map sizes, served by a
//! [`FakeMultipathd`](crate::fake::FakeMultipathd).
//!
//! Paths carry a target identity and a host adapter as on a real host: iSCSI paths go through
//! one session (SCSI host) each to one of two portals, which the sysfs tree shows the way the
//! kernel does (the session's connection `persistent_address`/`persistent_port`, read by
//! [`crate::sysfs::read_path_info`]); FC paths name their target WWPN and HBA in multipathd's
//! own fields.
//!
//! Entry point: [`SimNode::start`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use mpcluster_core::multipathd::{SHOW_MAPS_JSON, SHOW_PATHS_RAW};
use serde_json::json;

use crate::fake::{FakeError, FakeHandle, FakeMultipathd, Misbehaviour};
use crate::socket::SocketAddrSpec;

/// One simulated path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPath {
    /// Device name (`sdc`).
    pub dev: String,
    /// `major:minor`.
    pub dev_t: String,
    /// Usable: `dm_st` active and checker ready. Down paths are failed/faulty.
    pub up: bool,
    /// multipathd's `%P` protocol (`scsi:iscsi`, `scsi:fcp`, `nvme:tcp`, ...).
    pub protocol: String,
    /// Path group number (1-based).
    pub group: u32,
    /// Priority.
    pub pri: u32,
    /// The SCSI host the path leaves through (`host<N>`; an iSCSI session each, an FC HBA
    /// port each).
    pub host: u32,
    /// iSCSI: the portal of its session (`10.0.0.1:3260`), shown in sysfs only (multipathd
    /// does not print it).
    pub portal: Option<String>,
    /// The target's name: the iSCSI IQN, or the FC target WWNN.
    pub target_name: Option<String>,
    /// FC: the target port WWPN (multipathd's `target_wwpn`).
    pub target_wwpn: Option<String>,
    /// multipathd's `host_adapter`: the HBA's PCI address (FC), the initiator address (iSCSI).
    pub host_adapter: Option<String>,
}

/// The portals of the simulated iSCSI array.
pub const SIM_PORTALS: [&str; 2] = ["10.0.0.1:3260", "10.0.0.2:3260"];

/// The simulated iSCSI array's target name.
pub const SIM_IQN: &str = "iqn.2003-01.org.linux-iscsi.mpcluster-sim:array";

impl SimPath {
    /// Give path number `i` of a map over `protocol` its identity: iSCSI path `i` is session
    /// (host) `3 + i` to portal `i % 2`, from initiator interface `i / 2`; FC path `i` leaves
    /// HBA port `i % 2` (host `10 + i % 2`) for target port `i`; anything else host `20`.
    fn identify(&mut self, protocol: &str, i: u32) {
        if protocol.ends_with("iscsi") {
            self.host = 3 + i;
            self.portal = Some(SIM_PORTALS[(i % 2) as usize].to_owned());
            self.target_name = Some(SIM_IQN.to_owned());
            self.host_adapter = Some(format!("10.0.{}.100", 10 + i / 2));
        } else if protocol.ends_with("fcp") {
            self.host = 10 + i % 2;
            self.target_name = Some("0x200000a098c1d2e3".to_owned());
            self.target_wwpn = Some(format!("0x20{}000a098c1d2e3", i + 1));
            self.host_adapter = Some(format!("0000:3b:00.{}", i % 2));
        } else {
            self.host = 20;
        }
    }
}

/// One simulated multipath map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMap {
    /// The WWID.
    pub wwid: String,
    /// The map name (alias or WWID).
    pub name: String,
    /// The dm device (`dm-0`).
    pub sysfs: String,
    /// Size in bytes (a multiple of 512).
    pub size: u64,
    /// Its paths.
    pub paths: Vec<SimPath>,
}

impl SimMap {
    /// A map with `paths` paths over `protocol`, all up, two path groups (ALUA-style).
    pub fn new(
        wwid: &str,
        dm: u32,
        size: u64,
        paths: u32,
        protocol: &str,
        first_sd: u32,
    ) -> SimMap {
        let paths = (0..paths)
            .map(|i| {
                let n = first_sd + i;
                let mut p = SimPath {
                    dev: sd_name(n),
                    dev_t: format!("8:{}", n * 16),
                    up: true,
                    protocol: protocol.to_owned(),
                    group: if i % 2 == 0 { 1 } else { 2 },
                    pri: if i % 2 == 0 { 50 } else { 10 },
                    host: 0,
                    portal: None,
                    target_name: None,
                    target_wwpn: None,
                    host_adapter: None,
                };
                p.identify(protocol, i);
                p
            })
            .collect();
        SimMap {
            wwid: wwid.to_owned(),
            name: wwid.to_owned(),
            sysfs: format!("dm-{dm}"),
            size,
            paths,
        }
    }
}

/// `sda`, ..., `sdz`, `sdaa`, ...
fn sd_name(mut n: u32) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(char::from(b'a' + (n % 26) as u8));
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    letters.reverse();
    format!("sd{}", letters.into_iter().collect::<String>())
}

/// The state of a simulated node: its maps, and whether multipathd "runs".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimState {
    /// The assembled maps.
    pub maps: Vec<SimMap>,
    /// `false`: the daemon answers nothing useful (connection closed), like a stopped one.
    pub down: bool,
    /// Every command received that is not a `show` command (e.g. `reconfigure`).
    pub commands: Vec<String>,
}

impl SimState {
    /// `show maps json` as multipathd 0.9.4 prints it.
    pub fn maps_json(&self) -> String {
        let maps: Vec<serde_json::Value> = self.maps.iter().map(map_json).collect();
        let doc = json!({"major_version": 0, "minor_version": 1, "maps": maps});
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    }

    /// `show paths raw format` with [`mpcluster_core::multipathd::PATHS_RAW_FORMAT`]; `ok` when
    /// there are no paths (as multipathd answers).
    pub fn paths_raw(&self) -> String {
        let mut out = String::new();
        for (lun, map) in self.maps.iter().enumerate() {
            for p in &map.paths {
                // %d|%P|%w|%D|%t|%T|%o|%c|%p|%M|%i|%N|%n|%R|%r|%a|%L|%m
                let (dm, chk, dev) = path_states(p);
                let undef = |v: &Option<String>| v.clone().unwrap_or_else(|| "[undef]".to_owned());
                out.push_str(&format!(
                    "{}|{}|{}|{}|{}|{}|{}|tur|{}|normal|{}:0:0:{lun}|[undef]|{}|[undef]|{}|{}|0x0000000000000000|{}\n",
                    p.dev,
                    p.protocol,
                    map.wwid,
                    p.dev_t,
                    dm,
                    chk,
                    dev,
                    p.pri,
                    p.host,
                    undef(&p.target_name),
                    undef(&p.target_wwpn),
                    // multipathd prints an iSCSI session's initiator address only while it is up.
                    if p.up || p.portal.is_none() { undef(&p.host_adapter) } else { "[undef]".to_owned() },
                    map.name
                ));
            }
        }
        if out.is_empty() {
            "ok\n".to_owned()
        } else {
            out
        }
    }

    /// Write `<root>/block/<dm-N>/size` (in 512-byte sectors) for every map, and for every
    /// iSCSI path its device link into its session and the session's connection (portal) and
    /// target name, as the kernel shows them.
    pub fn write_sysfs(&self, root: &Path) -> std::io::Result<()> {
        for (lun, map) in self.maps.iter().enumerate() {
            let dir = root.join("block").join(&map.sysfs);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("size"), format!("{}\n", map.size / 512))?;
            for p in &map.paths {
                let Some(portal) = &p.portal else { continue };
                let h = p.host;
                let device = root.join(format!(
                    "devices/platform/host{h}/session{h}/target{h}:0:0/{h}:0:0:{lun}"
                ));
                std::fs::create_dir_all(&device)?;
                let block = root.join("block").join(&p.dev);
                std::fs::create_dir_all(&block)?;
                let link = block.join("device");
                if std::fs::read_link(&link).ok().as_deref() != Some(device.as_path()) {
                    let _ = std::fs::remove_file(&link);
                    std::os::unix::fs::symlink(&device, &link)?;
                }
                let session = root.join(format!("class/iscsi_session/session{h}"));
                std::fs::create_dir_all(&session)?;
                if let Some(name) = &p.target_name {
                    std::fs::write(session.join("targetname"), format!("{name}\n"))?;
                }
                let conn = root.join(format!("class/iscsi_connection/connection{h}:0"));
                std::fs::create_dir_all(&conn)?;
                let (address, port) = portal.rsplit_once(':').unwrap_or((portal, "3260"));
                std::fs::write(conn.join("persistent_address"), format!("{address}\n"))?;
                std::fs::write(conn.join("persistent_port"), format!("{port}\n"))?;
            }
        }
        Ok(())
    }
}

fn path_states(p: &SimPath) -> (&'static str, &'static str, &'static str) {
    if p.up {
        ("active", "ready", "running")
    } else {
        ("failed", "faulty", "offline")
    }
}

fn map_json(map: &SimMap) -> serde_json::Value {
    let mut groups: Vec<u32> = map.paths.iter().map(|p| p.group).collect();
    groups.sort_unstable();
    groups.dedup();
    let active = map.paths.iter().filter(|p| p.up).count();
    let path_groups: Vec<serde_json::Value> = groups
        .iter()
        .map(|g| {
            let paths: Vec<serde_json::Value> = map
                .paths
                .iter()
                .filter(|p| p.group == *g)
                .map(|p| {
                    let (dm, chk, dev) = path_states(p);
                    let undef =
                        |v: &Option<String>| v.clone().unwrap_or_else(|| "[undef]".to_owned());
                    let adapter = if p.up || p.portal.is_none() {
                        undef(&p.host_adapter)
                    } else {
                        "[undef]".to_owned()
                    };
                    json!({
                        "dev": p.dev, "dev_t": p.dev_t, "dm_st": dm, "dev_st": dev,
                        "chk_st": chk, "checker": "tur", "pri": p.pri,
                        "host_wwnn": "[undef]", "target_wwnn": undef(&p.target_name),
                        "host_wwpn": "[undef]", "target_wwpn": undef(&p.target_wwpn),
                        "host_adapter": adapter, "lun_hex": "0x0000000000000000",
                        "marginal_st": "normal"
                    })
                })
                .collect();
            let pri = map
                .paths
                .iter()
                .find(|p| p.group == *g)
                .map_or(0, |p| p.pri);
            json!({
                "selector": "service-time 0", "pri": pri,
                "dm_st": if *g == 1 { "active" } else { "enabled" },
                "marginal_st": "normal", "group": g, "paths": paths
            })
        })
        .collect();
    json!({
        "name": map.name, "uuid": map.wwid, "sysfs": map.sysfs,
        "failback": "immediate", "queueing": "5 chk", "paths": active,
        "write_prot": "rw", "dm_st": "active", "features": "1 queue_if_no_path",
        "hwhandler": "1 alua", "action": "", "path_faults": 0,
        "vend": "LIO-ORG", "prod": "mpcluster-sim", "rev": "4.0",
        "switch_grp": 0, "map_loads": 1, "total_q_time": 0, "q_timeouts": 0,
        "path_groups": path_groups
    })
}

/// A running simulated node: a fake multipathd serving [`SimState`] and a sysfs directory.
pub struct SimNode {
    state: Arc<Mutex<SimState>>,
    sysfs: PathBuf,
    fake: FakeHandle,
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNode")
            .field("sysfs", &self.sysfs)
            .finish_non_exhaustive()
    }
}

impl SimNode {
    /// Serve `state` on a fake multipathd at `socket` (a path), with sysfs under `sysfs`.
    pub fn start(socket: &Path, sysfs: &Path, state: SimState) -> Result<SimNode, FakeError> {
        let fake = FakeMultipathd::start(socket.to_path_buf())?;
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        fake.set_handler(move |cmd| {
            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
            if s.down {
                return Some(String::new());
            }
            if cmd == SHOW_MAPS_JSON {
                Some(s.maps_json())
            } else if cmd == SHOW_PATHS_RAW {
                Some(s.paths_raw())
            } else {
                s.commands.push(cmd.to_owned());
                if cmd.starts_with("reconfigure") || cmd == "show daemon" {
                    Some(if cmd == "show daemon" {
                        "pid 1 idle\n".to_owned()
                    } else {
                        "ok\n".to_owned()
                    })
                } else {
                    None
                }
            }
        });
        let node = SimNode {
            state,
            sysfs: sysfs.to_path_buf(),
            fake,
        };
        node.sync_sysfs();
        Ok(node)
    }

    fn sync_sysfs(&self) {
        let s = self.lock();
        if let Err(e) = s.write_sysfs(&self.sysfs) {
            tracing::warn!(error = %e, "cannot write the simulated sysfs");
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Change the state (e.g. fail a path); sysfs follows.
    pub fn update(&self, f: impl FnOnce(&mut SimState)) {
        f(&mut self.lock());
        self.sync_sysfs();
    }

    /// A copy of the current state.
    pub fn state(&self) -> SimState {
        self.lock().clone()
    }

    /// Make the simulated multipathd misbehave for every command (hang, half replies, ...;
    /// see [`Misbehaviour`]), or with `None` behave again.
    pub fn set_misbehaviour(&self, misbehaviour: Option<Misbehaviour>) {
        self.fake.set_misbehaviour(misbehaviour);
    }

    /// The socket spec for the agent's client.
    pub fn socket_spec(&self) -> SocketAddrSpec {
        self.fake.socket_spec()
    }

    /// The sysfs root for the agent.
    pub fn sysfs_root(&self) -> &Path {
        &self.sysfs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mpcluster_core::MapState;
    use mpcluster_core::multipathd::{parse_maps_json, parse_paths_raw, summarize};

    #[test]
    fn rendered_replies_parse_and_summarize() {
        let mut state = SimState {
            maps: vec![
                SimMap::new(
                    "3600a098038303053453f463045727a01",
                    0,
                    1 << 30,
                    4,
                    "scsi:iscsi",
                    0,
                ),
                SimMap::new(
                    "3600a098038303053453f463045727a02",
                    1,
                    2 << 30,
                    2,
                    "scsi:fcp",
                    4,
                ),
            ],
            ..SimState::default()
        };
        state.maps[1].paths[0].up = false;
        let mut reply = parse_maps_json(state.maps_json().as_bytes()).unwrap();
        let paths = parse_paths_raw(state.paths_raw().as_bytes()).unwrap();
        reply.join_paths(&paths);
        let report = summarize(&reply, |_| Some(512));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let sums = report.summaries();
        let a = &sums[&mpcluster_core::Wwid::new("3600a098038303053453f463045727a01").unwrap()];
        assert_eq!(
            (a.state, a.paths_active, a.paths_total),
            (MapState::Optimal, Some(4), Some(4))
        );
        assert_eq!(a.transport.as_deref(), Some("iscsi"));
        let b = &sums[&mpcluster_core::Wwid::new("3600a098038303053453f463045727a02").unwrap()];
        assert_eq!(
            (b.state, b.paths_active, b.paths_total),
            (MapState::Degraded, Some(1), Some(2))
        );
        assert_eq!(b.transport.as_deref(), Some("fc"));
        assert_eq!(sd_name(0), "sda");

        // The identities: iSCSI portals from the sysfs tree, FC WWPNs from multipathd.
        let dir = tempfile::tempdir().unwrap();
        state.write_sysfs(dir.path()).unwrap();
        state.write_sysfs(dir.path()).unwrap(); // idempotent
        let mut report = report;
        report.enrich_paths(|dev| Some(crate::sysfs::read_path_info(dir.path(), dev)));
        let iscsi: Vec<_> = report.maps[0]
            .path_groups
            .iter()
            .flat_map(|g| &g.paths)
            .collect();
        let mut portals: Vec<_> = iscsi
            .iter()
            .map(|p| (p.adapter().unwrap(), p.portal.clone().unwrap()))
            .collect();
        portals.sort();
        assert_eq!(
            portals,
            [
                ("host3".to_owned(), SIM_PORTALS[0].to_owned()),
                ("host4".to_owned(), SIM_PORTALS[1].to_owned()),
                ("host5".to_owned(), SIM_PORTALS[0].to_owned()),
                ("host6".to_owned(), SIM_PORTALS[1].to_owned()),
            ]
        );
        assert_eq!(iscsi[0].iscsi_target.as_deref(), Some(SIM_IQN));
        let fc = report.maps[1].path_groups[0].paths[0]
            .target_port()
            .unwrap();
        assert_eq!(fc.id, "0x201000a098c1d2e3");
        assert_eq!(sd_name(26), "sdaa");
    }
}
