//! Simulated multipath nodes for the demo and end-to-end tests: a small, mutable model of a
//! node's maps and paths, rendered into the replies a real multipathd 0.9.4 gives
//! (`show maps json`, the raw paths format) and into a sysfs tree with map sizes, served by a
//! [`FakeMultipathd`](crate::fake::FakeMultipathd).
//!
//! Entry point: [`SimNode::start`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use mpcluster_core::multipathd::{SHOW_MAPS_JSON, SHOW_PATHS_RAW};
use serde_json::json;

use crate::fake::{FakeError, FakeHandle, FakeMultipathd};
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
                SimPath {
                    dev: sd_name(n),
                    dev_t: format!("8:{}", n * 16),
                    up: true,
                    protocol: protocol.to_owned(),
                    group: if i % 2 == 0 { 1 } else { 2 },
                    pri: if i % 2 == 0 { 50 } else { 10 },
                }
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
        for map in &self.maps {
            for p in &map.paths {
                // %d|%P|%w|%D|%t|%T|%o|%c|%p|%M|%i|%N|%n|%R|%r|%a|%L|%m
                let (dm, chk, dev) = path_states(p);
                out.push_str(&format!(
                    "{}|{}|{}|{}|{}|{}|{}|tur|{}|normal|{}:0:0:0|[undef]|[undef]|[undef]|[undef]|[undef]|0x0000000000000000|{}\n",
                    p.dev, p.protocol, map.wwid, p.dev_t, dm, chk, dev, p.pri, p.group + 2, map.name
                ));
            }
        }
        if out.is_empty() {
            "ok\n".to_owned()
        } else {
            out
        }
    }

    /// Write `<root>/block/<dm-N>/size` (in 512-byte sectors) for every map.
    pub fn write_sysfs(&self, root: &Path) -> std::io::Result<()> {
        for map in &self.maps {
            let dir = root.join("block").join(&map.sysfs);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("size"), format!("{}\n", map.size / 512))?;
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
                    json!({
                        "dev": p.dev, "dev_t": p.dev_t, "dm_st": dm, "dev_st": dev,
                        "chk_st": chk, "checker": "tur", "pri": p.pri,
                        "host_wwnn": "[undef]", "target_wwnn": "[undef]",
                        "host_wwpn": "[undef]", "target_wwpn": "[undef]",
                        "host_adapter": "[undef]", "lun_hex": "0x0000000000000000",
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
        assert_eq!(sd_name(26), "sdaa");
    }
}
