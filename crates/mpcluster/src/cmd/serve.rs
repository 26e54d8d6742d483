//! `mpcluster serve`: the API server. With the embedded (single-node) store it also runs this
//! node's agent in-process, so one command gives a working node.
//!
//! Access control: every API route but `/health` (and the web UI's static files) needs an API
//! token (`mpcluster token`). The first `serve` on a store without tokens creates the token
//! `admin` (Sys.Audit, Sys.Modify), prints its credential once on stdout and writes it to a
//! mode-0600 file (`--admin-token-file`; default `admin-token` in the embedded store's
//! directory, or in /var/lib/mpcluster for etcd). HTTPS with `--tls-cert`/`--tls-key`
//! (reloaded on SIGHUP); plain HTTP on a non-loopback address needs `--insecure-http`.
//! `/metrics` needs a `Sys.Audit` token too, unless `--metrics-public`; the store is wrapped
//! to measure its requests for it (`mpcluster_server::metrics`).

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use mpcluster_config::EditError;
use mpcluster_server::cache::{CacheConfig, StatusCache};
use mpcluster_server::limits::{ServeOptions, serve_with};
use mpcluster_server::tls::ServerTls;
use mpcluster_server::{AppState, app};
use mpcluster_store::{ClusterStore, StoreSpec};

use super::Failure;
use super::store_args::agent_in_mode;
pub use crate::cli::serve::ServeArgs;

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

/// Run the command.
pub async fn run(args: &ServeArgs) -> Result<ExitCode, Failure> {
    inner(args).await
}

/// The admin token file: `--admin-token-file`, else next to the store.
fn admin_token_file(args: &ServeArgs) -> PathBuf {
    if let Some(f) = &args.admin_token_file {
        return f.clone();
    }
    match &args.store.store {
        StoreSpec::Embedded { dir } => dir
            .clone()
            .unwrap_or_else(mpcluster_store::default_embedded_dir)
            .join("admin-token"),
        _ => mpcluster_store::default_embedded_dir().join("admin-token"),
    }
}

/// Write `credential` to `path` with mode 0600 (atomically replacing an older file), creating
/// the directory (mode 0700) if needed.
fn write_token_file(path: &Path, credential: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // A named temporary file is created with mode 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(format!("{credential}\n").as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Create the admin token if the store has no tokens document; print and save it.
async fn bootstrap(store: &dyn ClusterStore, file: &Path) -> Result<(), EditError> {
    let Some(token) = mpcluster_config::tokens::bootstrap_admin(store).await? else {
        return Ok(());
    };
    let saved = match write_token_file(file, &token.credential()) {
        Ok(()) => format!("saved to {} (mode 0600)", file.display()),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot save the admin token");
            "NOT saved to a file (see the error above)".to_owned()
        }
    };
    eprintln!(
        "mpcluster: created the API token '{}' (Sys.Audit, Sys.Modify) on this store without tokens; {saved}. Its credential follows on stdout, shown only this once.",
        token.id
    );
    println!("{}", token.credential());
    Ok(())
}

fn is_transient(e: &EditError) -> bool {
    e.is_transient()
}

/// Bootstrap now; while the store is unavailable, retry in the background. Other failures
/// (authentication refused by the store, an unreadable document) stop `serve`.
async fn bootstrap_or_retry(
    store: &Arc<dyn ClusterStore>,
    file: PathBuf,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    match bootstrap(store.as_ref(), &file).await {
        Ok(()) => Ok(None),
        Err(e) if is_transient(&e) => {
            tracing::warn!(error = %mpcluster_core::error_chain(&e), "cannot check the API tokens yet; retrying in the background");
            let store = store.clone();
            Ok(Some(tokio::spawn(async move {
                let mut delay = std::time::Duration::from_secs(1);
                loop {
                    tokio::time::sleep(delay).await;
                    match bootstrap(store.as_ref(), &file).await {
                        Ok(()) => return,
                        Err(e) if is_transient(&e) => {}
                        Err(e) => {
                            tracing::error!(error = %mpcluster_core::error_chain(&e), "cannot create the admin token");
                            return;
                        }
                    }
                    delay = (delay * 2).min(std::time::Duration::from_secs(30));
                }
            })))
        }
        Err(EditError::Store { source, .. }) => {
            Err(anyhow::Error::new(source).context("cannot read the API tokens"))
        }
        Err(e) => Err(anyhow::Error::new(e).context("cannot create the admin token")),
    }
}

/// Reload the TLS certificate on every SIGHUP (without TLS, SIGHUP is logged and ignored).
fn reload_on_sighup(tls: Option<Arc<ServerTls>>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let Some(tls) = &tls else {
                tracing::info!("SIGHUP: no TLS certificate to reload");
                continue;
            };
            match tls.reload() {
                Ok(()) => tracing::info!(
                    fingerprint = %tls.fingerprint(),
                    "SIGHUP: TLS certificate reloaded"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: cannot reload the TLS certificate; keeping the one in use")
                }
            }
        }
    }))
}

async fn inner(args: &ServeArgs) -> Result<ExitCode, Failure> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Arc::new(
            ServerTls::load(cert, key).map_err(|e| Failure::new(2, e))?,
        )),
        _ => None,
    };
    if tls.is_none() && !args.listen.ip().is_loopback() {
        if !args.insecure_http {
            return Err(Failure::new(
                2,
                anyhow!(
                    "refusing to serve plain HTTP on the non-loopback address {}: give --tls-cert and --tls-key, or --insecure-http to send API tokens and the configuration unencrypted",
                    args.listen
                ),
            ));
        }
        eprintln!(
            "mpcluster: WARNING: serving plain HTTP on {} (--insecure-http): API tokens and the cluster configuration cross the network unencrypted; anyone on the path can read them and take over every node's multipath configuration",
            args.listen
        );
        tracing::warn!(listen = %args.listen, "serving plain HTTP on a non-loopback address (--insecure-http)");
    }
    run_server(args, tls).await.map_err(|e| Failure::new(1, e))
}

async fn run_server(args: &ServeArgs, tls: Option<Arc<ServerTls>>) -> anyhow::Result<ExitCode> {
    let (store, pve) = args.store.open_cluster().await?;
    let metrics = mpcluster_server::metrics::Metrics::default();
    let store = metrics.instrument(store);
    let agent_args = agent_in_mode(&args.agent, pve.as_ref()).await?;
    let node = agent_args.node_name()?;
    let bootstrap_task = bootstrap_or_retry(&store, admin_token_file(args)).await?;
    let listener = mpcluster_server::limits::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr().context("listener address")?;
    let hup_task = Some(reload_on_sighup(tls.clone())?);
    // This node's agent in-process: with a standalone store, and with the embedded store
    // also in Proxmox mode (where corosync's membership makes the store look clustered).
    let embedded = matches!(args.store.store, StoreSpec::Embedded { .. });
    let local_agent = (store.is_standalone() || embedded) && !args.no_agent;
    // The in-process agent's publishing health: the status shows this node as unable to
    // publish (never as what the store still holds) while its writes fail.
    let (publish_tx, publish_rx) = tokio::sync::watch::channel(None);
    let (cache, cache_task) = StatusCache::spawn(
        store.clone(),
        CacheConfig {
            stale_after: args.stale_after,
            local_node: Some(node.clone()),
            local_publish: local_agent.then_some(publish_rx),
            pve: pve.clone(),
            metrics,
            ..CacheConfig::default()
        },
    );

    mpcluster_config::events::set_flap_rule(mpcluster_core::events::FlapRule {
        changes: args.flap_changes,
        window: args.flap_window,
    });
    // One server records the matrix's changes into the cluster's event history.
    let recorder = mpcluster_server::recorder::spawn_recorder(
        store.clone(),
        cache.clone(),
        mpcluster_server::recorder::RecorderConfig {
            retention: mpcluster_core::events::Retention {
                max_age: args.event_retention_days * 86_400,
                max_events: args.event_retention_max,
            },
            ..Default::default()
        },
        cache.metrics().clone(),
    );
    // The recording server also sends the notifications (issue 14, section 3).
    let notifier = mpcluster_server::notify::spawn_notifier(
        store.clone(),
        cache.clone(),
        recorder.leader.clone(),
        cache.metrics().clone(),
        mpcluster_server::notify::NotifierSettings::from_env().map_err(anyhow::Error::msg)?,
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent_task = if local_agent {
        let client = agent_args.client()?;
        let config = agent_args.config()?;
        let mut rx = stop_rx.clone();
        tracing::info!(node = %config.node, "running the local agent in-process");
        Some(tokio::spawn(mpcluster_agent::run::run_reporting(
            store.clone(),
            client,
            config,
            publish_tx,
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        )))
    } else {
        None
    };

    if let Some(tls) = &tls {
        eprintln!(
            "mpcluster: TLS certificate SHA-256 fingerprint {} (clients: --fingerprint or --ca)",
            tls.fingerprint()
        );
    }
    if let Some(p) = &pve {
        eprintln!(
            "mpcluster: Proxmox mode: membership from {}, storages from {} (read-only here)",
            p.members_file().display(),
            p.storage_cfg().display()
        );
    }
    eprintln!(
        "mpcluster: serving {}://{local}/ (store: {})",
        if tls.is_some() { "https" } else { "http" },
        store.describe()
    );
    let ready_task = crate::systemd::ready_when_answering(
        cache.clone(),
        format!(
            "{}://{local}/",
            if tls.is_some() { "https" } else { "http" }
        ),
    );
    let mut rx = stop_rx.clone();
    let options = ServeOptions {
        tls,
        ..ServeOptions::default()
    };
    let server = serve_with(
        listener,
        app(AppState {
            store,
            cache,
            pve,
            metrics_public: args.metrics_public,
        }),
        options,
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        },
    );
    let signal = async {
        shutdown_signal().await;
        tracing::info!("shutting down");
        crate::systemd::stopping();
        let _ = stop_tx.send(true);
    };
    let (served, ()) = tokio::join!(server, signal);
    served.context("the HTTP server failed")?;
    if let Some(t) = agent_task {
        let _ = t.await;
    }
    notifier.abort();
    recorder.stop().await;
    cache_task.abort();
    for t in [bootstrap_task, hup_task, ready_task].into_iter().flatten() {
        t.abort();
    }
    Ok(ExitCode::SUCCESS)
}
