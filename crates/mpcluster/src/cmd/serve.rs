//! `mpcluster serve`: the API server. With the embedded (single-node) store it also runs this
//! node's agent in-process, so one command gives a working node.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use mpcluster_server::cache::{CacheConfig, StatusCache};
use mpcluster_server::{AppState, app, serve};

use super::Failure;
use super::agent_args::AgentArgs;
use super::store_args::StoreArgs;

/// Arguments of `mpcluster serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8470", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Do not run the local agent even with the embedded store.
    #[arg(long)]
    pub no_agent: bool,
    /// Staleness limit for broadcasts in seconds (default 180).
    #[arg(long, value_name = "SECONDS")]
    pub stale_after: Option<u64>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

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
    inner(args).await.map_err(|e| Failure::new(1, e))
}

async fn inner(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open().await?;
    let node = args.agent.node_name()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr().context("listener address")?;

    let (cache, cache_task) = StatusCache::spawn(
        store.clone(),
        CacheConfig {
            stale_after: args.stale_after,
            local_node: Some(node.clone()),
            ..CacheConfig::default()
        },
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent_task = if store.is_standalone() && !args.no_agent {
        let client = args.agent.client()?;
        let config = args.agent.config()?;
        let mut rx = stop_rx.clone();
        tracing::info!(node = %config.node, "running the local agent in-process");
        Some(tokio::spawn(mpcluster_agent::run::run(
            store.clone(),
            client,
            config,
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        )))
    } else {
        None
    };

    eprintln!(
        "mpcluster: serving http://{local}/ (store: {})",
        store.describe()
    );
    let mut rx = stop_rx.clone();
    let server = serve(listener, app(AppState { store, cache }), async move {
        let _ = rx.wait_for(|stop| *stop).await;
    });
    let signal = async {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    };
    let (served, ()) = tokio::join!(server, signal);
    served.context("the HTTP server failed")?;
    if let Some(t) = agent_task {
        let _ = t.await;
    }
    cache_task.abort();
    Ok(ExitCode::SUCCESS)
}
