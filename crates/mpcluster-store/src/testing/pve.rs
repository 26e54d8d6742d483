//! [`PveRoot`]: a stand-in for `/etc/pve` in tests: a temporary directory with a `.members`
//! file that the test controls (nodes joining, going offline, coming back, leaving the
//! cluster, quorum), written in pmxcfs's own format and replaced atomically. Open the pve
//! store on it with [`PveRoot::spec`] (`pve:DIR`).

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::StoreSpec;
use crate::pve::MEMBERS_FILE;

/// A pmxcfs-like root directory whose membership a test sets. Removed on drop.
#[derive(Debug)]
pub struct PveRoot {
    dir: tempfile::TempDir,
    state: Mutex<State>,
}

#[derive(Debug, Clone)]
struct State {
    local: String,
    version: u32,
    cluster: Option<Cluster>,
}

#[derive(Debug, Clone)]
struct Cluster {
    name: String,
    quorate: bool,
    /// node -> (id, online)
    nodes: BTreeMap<String, (u32, bool)>,
}

impl PveRoot {
    /// A corosync cluster `cluster` whose only node is `local`, online and quorate.
    pub fn cluster(cluster: &str, local: &str) -> io::Result<PveRoot> {
        PveRoot::with(State {
            local: local.to_owned(),
            version: 1,
            cluster: Some(Cluster {
                name: cluster.to_owned(),
                quorate: true,
                nodes: BTreeMap::from([(local.to_owned(), (1, true))]),
            }),
        })
    }

    /// A Proxmox node without a cluster: `.members` has only `nodename` and `version`.
    pub fn standalone(local: &str) -> io::Result<PveRoot> {
        PveRoot::with(State {
            local: local.to_owned(),
            version: 1,
            cluster: None,
        })
    }

    fn with(state: State) -> io::Result<PveRoot> {
        let root = PveRoot {
            dir: tempfile::tempdir()?,
            state: Mutex::new(state),
        };
        root.write(&root.state())?;
        Ok(root)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `<root>/.members`.
    pub fn members_path(&self) -> PathBuf {
        self.dir.path().join(MEMBERS_FILE)
    }

    /// The spec of the pve store on this root (`pve:DIR`).
    pub fn spec(&self) -> StoreSpec {
        StoreSpec::Pve {
            root: Some(self.dir.path().to_path_buf()),
        }
    }

    /// List `node` in the cluster (a new node gets the next node id), online or not. Turns a
    /// standalone root into a cluster named `cluster`, as `pvecm create` would.
    pub fn set_online(&self, node: &str, online: bool) -> io::Result<()> {
        let mut state = self.state();
        let local = state.local.clone();
        let cluster = state.cluster.get_or_insert_with(|| Cluster {
            name: "cluster".to_owned(),
            quorate: true,
            nodes: BTreeMap::from([(local, (1, true))]),
        });
        let next_id = cluster.nodes.values().map(|(id, _)| *id).max().unwrap_or(0) + 1;
        cluster
            .nodes
            .entry(node.to_owned())
            .and_modify(|(_, o)| *o = online)
            .or_insert((next_id, online));
        state.version += 1;
        self.write(&state)
    }

    /// Remove `node` from the cluster configuration, as `pvecm delnode` does. With no node
    /// left the file reads standalone, as pmxcfs writes it without nodes.
    pub fn remove(&self, node: &str) -> io::Result<()> {
        let mut state = self.state();
        if let Some(c) = &mut state.cluster {
            c.nodes.remove(node);
            if c.nodes.is_empty() {
                state.cluster = None;
            }
        }
        state.version += 1;
        self.write(&state)
    }

    /// Set whether the cluster is quorate.
    pub fn set_quorate(&self, quorate: bool) -> io::Result<()> {
        let mut state = self.state();
        if let Some(c) = &mut state.cluster {
            c.quorate = quorate;
        }
        state.version += 1;
        self.write(&state)
    }

    /// Replace `.members` with `text` as is (malformed files); the next `set_*` writes the
    /// managed state again.
    pub fn write_members_raw(&self, text: &str) -> io::Result<()> {
        replace(&self.members_path(), text)
    }

    /// The `.members` text of the managed state, as pmxcfs prints it
    /// (`cfs_create_memberlist_msg`).
    pub fn render(&self) -> String {
        render(&self.state())
    }

    fn write(&self, state: &State) -> io::Result<()> {
        replace(&self.members_path(), &render(state))
    }
}

fn render(state: &State) -> String {
    let mut out = String::from("{\n");
    out.push_str(&format!("\"nodename\": \"{}\",\n", state.local));
    match &state.cluster {
        None => out.push_str(&format!("\"version\": {}\n", state.version)),
        Some(c) => {
            out.push_str(&format!("\"version\": {},\n", state.version));
            out.push_str(&format!(
                "\"cluster\": {{ \"name\": \"{}\", \"version\": 1, \"nodes\": {}, \"quorate\": {} }},\n",
                c.name,
                c.nodes.len(),
                u8::from(c.quorate)
            ));
            out.push_str("\"nodelist\": {\n");
            let entries: Vec<String> = c
                .nodes
                .iter()
                .map(|(n, (id, online))| {
                    format!(
                        "  \"{n}\": {{ \"id\": {id}, \"online\": {}, \"ip\": \"192.0.2.{id}\"}}",
                        u8::from(*online)
                    )
                })
                .collect();
            out.push_str(&entries.join(",\n"));
            out.push_str("\n  }\n");
        }
    }
    out.push_str("}\n");
    out
}

/// Replace `path` atomically (temp file + rename), so readers never see half a file.
fn replace(path: &Path, text: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".members-fixture.")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::pve::PveMembers;

    #[test]
    fn renders_what_the_parser_reads() {
        let root = PveRoot::cluster("c", "pve1").unwrap();
        root.set_online("pve2", true).unwrap();
        root.set_online("pve3", false).unwrap();
        let m = PveMembers::parse(&std::fs::read_to_string(root.members_path()).unwrap()).unwrap();
        let c = m.cluster.unwrap();
        assert_eq!(c.name, "c");
        assert_eq!(c.nodes.len(), 3);
        assert!(!c.nodes[&crate::NodeName::new("pve3").unwrap()].online);
        root.remove("pve2").unwrap();
        root.remove("pve3").unwrap();
        root.remove("pve1").unwrap();
        let m = PveMembers::parse(&root.render()).unwrap();
        assert!(m.is_standalone());
        let s = PveRoot::standalone("solo").unwrap();
        assert!(
            PveMembers::parse(&std::fs::read_to_string(s.members_path()).unwrap())
                .unwrap()
                .is_standalone()
        );
        s.set_online("other", true).unwrap();
        assert_eq!(PveMembers::parse(&s.render()).unwrap().members().len(), 2);
    }
}
