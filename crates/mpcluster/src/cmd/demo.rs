//! `mpcluster demo`: a whole simulated cluster in one process. An embedded store, N simulated
//! nodes (each a fake multipathd over the real socket protocol, with its own sysfs tree) and
//! one real agent per node, the real API server, and a timeline that loops through the
//! failures an admin should see: a path fails and comes back, a node goes silent, a node's
//! configuration apply fails, a LUN loses every path on one node, an array portal fails on
//! every node and a node logs in on one iSCSI interface only (the last two show as root-cause
//! hints: target-side, under-pathed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mpcluster_agent::MultipathdClient;
use mpcluster_agent::run::AgentConfig;
use mpcluster_agent::sim::{SIM_PORTALS, SimMap, SimNode, SimPath, SimState};
use mpcluster_core::NodeName;
use mpcluster_core::snapshot::doc_names;
use mpcluster_server::cache::{CacheConfig, StatusCache};
use mpcluster_server::{AppState, app, serve};
use mpcluster_store::{ClusterStore, Expect, StoreOptions, StoreSpec};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Failure;
use super::serve::shutdown_signal;
pub use crate::cli::demo::DemoArgs;

/// The demo's LUNs.
const LUN_VMS: &str = "3600a098038303053453f463045727a01";
const LUN_ZONED: &str = "3600a098038303053453f463045727a02";
const LUN_BACKUP: &str = "3600a098038303053453f463045727a03";
const LUN_HAND: &str = "36001405d1c0ffee0000000000000042";

/// Broadcasts older than this read offline in the demo (production default: 180 s), so a
/// silent node shows within a timeline step.
const DEMO_STALE_AFTER: u64 = 10;

fn node_name(i: usize) -> NodeName {
    #[allow(clippy::unwrap_used)] // always valid
    NodeName::new(format!("demo{}", i + 1)).unwrap()
}

fn initial_state(i: usize) -> SimState {
    let mut maps = vec![SimMap::new(LUN_VMS, 0, 2 << 40, 4, "scsi:iscsi", 0)];
    maps[0].name = "vm-disks".to_owned();
    if i < 2 {
        maps.push(SimMap::new(LUN_ZONED, 1, 500 << 30, 2, "scsi:fcp", 4));
    }
    let mut backup = SimMap::new(LUN_BACKUP, 2, 8 << 40, 2, "scsi:iscsi", 6);
    backup.name = "backup".to_owned();
    maps.push(backup);
    if i == 0 {
        maps.push(SimMap::new(LUN_HAND, 3, 100 << 30, 1, "scsi:sas", 8));
    }
    SimState {
        maps,
        ..SimState::default()
    }
}

struct DemoNode {
    name: NodeName,
    sim: SimNode,
    /// The node's root for the configuration apply (drop-ins, wwids file).
    root: PathBuf,
    agent: Option<(watch::Sender<bool>, JoinHandle<()>)>,
    /// Let the installed `multipath -t` judge each apply (root and multipath-tools needed).
    parser_check: bool,
}

impl DemoNode {
    fn start_agent(&mut self, store: &Arc<dyn ClusterStore>) {
        let (tx, mut rx) = watch::channel(false);
        let mut config = AgentConfig::new(self.name.clone());
        config.interval = Duration::from_secs(1);
        config.refresh = Duration::from_secs(5);
        config.sysfs_root = self.sim.sysfs_root().to_path_buf();
        config.apply_root = Some(self.root.clone());
        config.apply_retry = Duration::from_secs(2);
        config.parser_check = self.parser_check;
        let client = MultipathdClient::new(self.sim.socket_spec(), Duration::from_secs(2));
        let task = tokio::spawn(mpcluster_agent::run::run(
            store.clone(),
            client,
            config,
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        ));
        self.agent = Some((tx, task));
    }

    async fn stop_agent(&mut self) {
        if let Some((tx, task)) = self.agent.take() {
            let _ = tx.send(true);
            let _ = task.await;
        }
    }

    fn set_path(&self, wwid: &str, path: usize, up: bool) {
        self.sim.update(|s| {
            if let Some(m) = s.maps.iter_mut().find(|m| m.wwid == wwid)
                && let Some(p) = m.paths.get_mut(path)
            {
                p.up = up;
            }
        });
    }

    /// Every path through `portal` (on every map) up or down: the array's port.
    fn set_portal(&self, portal: &str, up: bool) {
        self.sim.update(|s| {
            for p in s.maps.iter_mut().flat_map(|m| m.paths.iter_mut()) {
                if p.portal.as_deref() == Some(portal) {
                    p.up = up;
                }
            }
        });
    }

    /// Remove the paths of `wwid` leaving through `hosts` (a missing iSCSI login); returns them
    /// for [`DemoNode::restore_paths`].
    fn remove_paths(&self, wwid: &str, hosts: &[u32]) -> Vec<SimPath> {
        let mut removed = Vec::new();
        self.sim.update(|s| {
            if let Some(m) = s.maps.iter_mut().find(|m| m.wwid == wwid) {
                let (gone, kept): (Vec<SimPath>, Vec<SimPath>) =
                    m.paths.drain(..).partition(|p| hosts.contains(&p.host));
                m.paths = kept;
                removed = gone;
            }
        });
        removed
    }

    fn restore_paths(&self, wwid: &str, paths: Vec<SimPath>) {
        self.sim.update(|s| {
            if let Some(m) = s.maps.iter_mut().find(|m| m.wwid == wwid) {
                m.paths.extend(paths);
                m.paths.sort_by_key(|p| p.host);
            }
        });
    }

    fn set_all_paths(&self, wwid: &str, up: bool) {
        self.sim.update(|s| {
            if let Some(m) = s.maps.iter_mut().find(|m| m.wwid == wwid) {
                for p in &mut m.paths {
                    p.up = up;
                }
            }
        });
    }
}

async fn write_documents(store: &dyn ClusterStore, nodes: usize) -> anyhow::Result<()> {
    let config = json!({
        "defaults": {"polling-interval": 5, "no-path-retry": 12},
        "wwids": {
            LUN_VMS: {"alias": "vm-disks"},
            LUN_ZONED: {"alias": "db-fc"},
            LUN_BACKUP: {"alias": "backup"},
        }
    });
    store
        .write_doc(doc_names::CONFIG, &config.to_string(), Expect::Any)
        .await
        .context("writing the demo configuration")?;
    let all: Vec<String> = (0..nodes).map(|i| node_name(i).to_string()).collect();
    let storage = json!({"storages": [
        {"type": "multipath", "id": "san", "nodes": all},
        {"type": "lvm", "id": "vmdata", "vgname": "vmdata", "base": format!("san:{LUN_VMS}")},
        {"type": "lvm", "id": "dbdata", "vgname": "dbdata", "base": format!("san:{LUN_ZONED}"),
         "nodes": [node_name(0).to_string(), node_name(1).to_string()]},
    ]});
    store
        .write_doc(doc_names::STORAGE, &storage.to_string(), Expect::Any)
        .await
        .context("writing the demo storage definitions")?;
    Ok(())
}

/// Touch the configuration (toggle a default knob) so every agent applies again.
async fn bump_config(store: &dyn ClusterStore) -> anyhow::Result<()> {
    let (text, digest) = store
        .read_doc(doc_names::CONFIG)
        .await?
        .context("the demo configuration is gone")?;
    let mut doc: serde_json::Value = serde_json::from_str(&text)?;
    let current = doc["defaults"]["polling-interval"].as_u64().unwrap_or(5);
    doc["defaults"]["polling-interval"] = json!(if current == 5 { 10 } else { 5 });
    store
        .write_doc(doc_names::CONFIG, &doc.to_string(), Expect::Digest(digest))
        .await?;
    Ok(())
}

/// Run the command.
pub async fn run(args: &DemoArgs) -> Result<ExitCode, Failure> {
    inner(args).await.map_err(|e| Failure::new(1, e))
}

async fn inner(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let temp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let spec = StoreSpec::Embedded {
        dir: Some(dir.join("store")),
    };
    let store = mpcluster_store::open(&spec, &StoreOptions::default())
        .await
        .with_context(|| format!("cannot open the demo store in {}", dir.display()))?;
    let count = usize::from(args.nodes);
    write_documents(store.as_ref(), count).await?;
    // The API needs a token: the demo's admin token, in a mode-0600 file.
    let token_file = dir.join("admin-token");
    if let Some(token) = mpcluster_config::tokens::bootstrap_admin(store.as_ref())
        .await
        .context("cannot create the demo's API token")?
    {
        let _ = std::fs::remove_file(&token_file);
        super::token::write_new_secret_file(&token_file, &token.credential())?;
    }

    // The real parser judges each node's apply where it can run: as root (a private mount
    // namespace per node root) with multipath-tools installed.
    let parser_check = rustix::process::geteuid().is_root()
        && mpcluster_agent::parser_check::find_multipath().is_some();
    let mut nodes = Vec::with_capacity(count);
    for i in 0..count {
        let name = node_name(i);
        let sim = SimNode::start(
            &dir.join(format!("{name}.sock")),
            &dir.join(format!("{name}-sys")),
            initial_state(i),
        )
        .with_context(|| format!("cannot start the simulated multipathd of {name}"))?;
        // A root with multipath-tools "installed", where the agent applies the configuration.
        let root = dir.join(format!("{name}-root"));
        std::fs::create_dir_all(root.join("usr/sbin"))
            .and_then(|()| std::fs::write(root.join("usr/sbin/multipath"), ""))
            .with_context(|| format!("cannot create the root of {name}"))?;
        // The hand-made map is in the node's wwids file (multipath remembers what it
        // assembled): the baseline keeps it, so the first apply drops nothing unannounced.
        if i == 0 {
            let wwids = root.join(mpcluster_core::config::WWIDS_PATH);
            std::fs::create_dir_all(wwids.parent().unwrap_or(&root))
                .and_then(|()| {
                    std::fs::write(
                        &wwids,
                        format!(
                            "{}/{LUN_HAND}/\n",
                            mpcluster_core::config::WWIDS_FILE_HEADER
                        ),
                    )
                })
                .with_context(|| format!("cannot write the wwids file of {name}"))?;
        }
        let mut node = DemoNode {
            name,
            sim,
            root,
            agent: None,
            parser_check,
        };
        node.start_agent(&store);
        nodes.push(node);
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr().context("listener address")?;
    let (cache, cache_task) = StatusCache::spawn(
        store.clone(),
        CacheConfig {
            stale_after: Some(DEMO_STALE_AFTER),
            refresh: Duration::from_secs(1),
            ..CacheConfig::default()
        },
    );
    // The demo's timeline goes into the event history (events panel, per-LUN timeline).
    let recorder = mpcluster_server::recorder::spawn_recorder(
        store.clone(),
        cache.clone(),
        mpcluster_server::recorder::RecorderConfig::default(),
        cache.metrics().clone(),
    );
    println!("mpcluster demo: {count} simulated nodes");
    println!("  UI:     http://{local}/ (paste the token below)");
    println!("  API:    http://{local}/api2/json/cluster/multipath/status");
    println!(
        "  CLI:    mpcluster status --server http://{local} --token-file {}",
        token_file.display()
    );
    println!(
        "  token:  {} (send 'Authorization: Bearer <its content>')",
        token_file.display()
    );
    println!("  store:  {}", store.describe());
    if !parser_check {
        println!(
            "  note:   applies are not checked with `multipath -t` (needs root and multipath-tools)"
        );
    }
    println!("  Ctrl-C stops the demo.");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut rx = stop_rx.clone();
    let server = tokio::spawn(serve(
        listener,
        app(AppState {
            store: store.clone(),
            cache,
            pve: None,
            metrics_public: false,
        }),
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    ));

    let step = Duration::from_secs(args.step.max(1));
    let timeline = async {
        let last = count - 1;
        loop {
            println!("[demo] all healthy");
            tokio::time::sleep(step).await;
            println!("[demo] {}: one path of vm-disks fails", nodes[1].name);
            nodes[1].set_path(LUN_VMS, 0, false);
            tokio::time::sleep(step).await;
            println!("[demo] {}: the path comes back", nodes[1].name);
            nodes[1].set_path(LUN_VMS, 0, true);
            tokio::time::sleep(step).await;
            println!("[demo] {}: goes silent (agent stopped)", nodes[last].name);
            nodes[last].stop_agent().await;
            tokio::time::sleep(step + Duration::from_secs(DEMO_STALE_AFTER)).await;
            println!("[demo] {}: back", nodes[last].name);
            nodes[last].start_agent(&store);
            println!(
                "[demo] {}: configuration apply fails (its conf.d cannot be written)",
                nodes[0].name
            );
            let conf_d = nodes[0].root.join(mpcluster_core::config::CONF_DIR);
            let _ = std::fs::remove_dir_all(&conf_d);
            let _ = std::fs::write(&conf_d, "not a directory");
            // A configuration change makes every node apply again.
            let _ = bump_config(store.as_ref()).await;
            tokio::time::sleep(step).await;
            println!("[demo] {}: conf.d repaired", nodes[0].name);
            let _ = std::fs::remove_file(&conf_d);
            println!("[demo] {}: backup loses every path", nodes[0].name);
            nodes[0].set_all_paths(LUN_BACKUP, false);
            tokio::time::sleep(step).await;
            nodes[0].set_all_paths(LUN_BACKUP, true);
            println!(
                "[demo] target portal {} fails on every node (the array's port): a target-side hint",
                SIM_PORTALS[0]
            );
            for n in &nodes {
                n.set_portal(SIM_PORTALS[0], false);
            }
            tokio::time::sleep(step).await;
            for n in &nodes {
                n.set_portal(SIM_PORTALS[0], true);
            }
            println!(
                "[demo] {}: logged in on one iSCSI interface only (2 of the 4 paths of vm-disks): an under-pathed hint",
                nodes[last].name
            );
            let removed = nodes[last].remove_paths(LUN_VMS, &[5, 6]);
            tokio::time::sleep(step).await;
            nodes[last].restore_paths(LUN_VMS, removed);
        }
    };
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = timeline => {}
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    recorder.stop().await;
    cache_task.abort();
    for n in &mut nodes {
        n.stop_agent().await;
    }
    Ok(ExitCode::SUCCESS)
}
