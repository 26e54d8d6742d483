//! `mpcluster events`: the cluster's event history (matrix changes and the configuration audit
//! trail), from a server or the store; `--follow` keeps printing new events.
//!
//! Exit codes: 0; 1 for invalid options; 2 when the history cannot be read.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use mpcluster_config::events::{EventPage, query, shared_chunk_cache};
use mpcluster_config::unix_now;
use mpcluster_core::events::{Event, EventFilter, FilterText};
use mpcluster_core::table::{format_unix_utc, terminal_safe};
use mpcluster_store::ClusterStore;

use super::Failure;
use super::source::{HttpClient, http_get};
pub use crate::cli::events::EventsArgs;
use crate::cli::status::Format;

/// How often `--follow` asks for new events.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

enum Reader {
    Server { url: String, client: HttpClient },
    Store(std::sync::Arc<dyn ClusterStore>),
}

impl Reader {
    async fn page(
        &self,
        args: &EventsArgs,
        after: Option<u64>,
        limit: usize,
    ) -> anyhow::Result<EventPage> {
        match self {
            Reader::Server { url, client } => {
                let mut q = vec![format!("limit={limit}")];
                let mut add = |k: &str, v: &Option<String>| {
                    if let Some(v) = v {
                        q.push(format!("{k}={}", encode(v)));
                    }
                };
                add("since", &args.since);
                add("until", &args.until);
                add("wwid", &args.wwid);
                add("node", &args.node);
                if let Some(a) = after {
                    q.push(format!("after={a}"));
                }
                if args.config {
                    q.push("kind=config".to_owned());
                } else if args.health {
                    q.push("kind=health".to_owned());
                }
                let endpoint = format!(
                    "{}/api2/json/cluster/multipath/events?{}",
                    url.trim_end_matches('/'),
                    q.join("&")
                );
                let client = client.clone();
                let text = tokio::task::spawn_blocking(move || http_get(&client, &endpoint))
                    .await
                    .context("the HTTP request task failed")??;
                let value: serde_json::Value =
                    serde_json::from_str(&text).context("the server's reply is not JSON")?;
                let data = value
                    .get("data")
                    .cloned()
                    .context("the server's reply has no \"data\"")?;
                serde_json::from_value(data).context("the server's event page")
            }
            Reader::Store(store) => {
                let filter = filter(args, after, unix_now())?;
                Ok(query(store.as_ref(), shared_chunk_cache(), &filter, limit).await?)
            }
        }
    }
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The filter of the options (store mode; the server parses the same text the same way).
fn filter(args: &EventsArgs, after: Option<u64>, now: i64) -> anyhow::Result<EventFilter> {
    let kind = if args.config {
        Some("config")
    } else if args.health {
        Some("health")
    } else {
        None
    };
    let text = FilterText {
        since: args.since.as_deref(),
        until: args.until.as_deref(),
        after,
        wwid: args.wwid.as_deref(),
        node: args.node.as_deref(),
        kind,
    };
    EventFilter::parse(&text, now).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|(f, m)| format!("--{f}: {m}")).collect();
        anyhow!(lines.join("; "))
    })
}

/// One event for people: time, sequence number, what happened.
pub fn render(e: &Event) -> String {
    let mut line = format!(
        "{}  #{:<6} {}",
        format_unix_utc(e.time),
        e.seq,
        terminal_safe(&e.kind.describe())
    );
    if let mpcluster_core::events::EventKind::Config {
        digest_before,
        digest_after,
        ..
    } = &e.kind
    {
        let short = |d: &Option<String>| {
            d.as_deref()
                .map_or_else(|| "-".to_owned(), |d| d.chars().take(12).collect())
        };
        line.push_str(&format!(
            " [{} -> {}]",
            short(digest_before),
            short(digest_after)
        ));
    }
    line
}

fn print(events: &[Event], format: Format, follow: bool) -> anyhow::Result<()> {
    match format {
        Format::Json if follow => {
            for e in events {
                println!("{}", serde_json::to_string(e)?);
            }
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(events)?),
        Format::Table => {
            for e in events {
                println!("{}", render(e));
            }
        }
    }
    Ok(())
}

/// Run the command.
pub async fn run(args: &EventsArgs) -> Result<ExitCode, Failure> {
    if args.source.snapshot.is_some() {
        return Err(Failure::new(
            1,
            anyhow!("the event history is not part of a snapshot: use --server or --store"),
        ));
    }
    if args.limit == 0 || args.limit > 10_000 {
        return Err(Failure::new(1, anyhow!("--limit: 1 to 10000")));
    }
    // Options are checked before anything is read.
    filter(args, None, unix_now()).map_err(|e| Failure::new(1, e))?;
    let reader = match &args.source.server {
        Some(url) => Reader::Server {
            url: url.clone(),
            client: args
                .source
                .client
                .client()
                .map_err(|e| Failure::new(1, e))?,
        },
        None => {
            let (store, _) = args
                .source
                .store
                .open_cluster()
                .await
                .map_err(|e| Failure::new(2, e))?;
            Reader::Store(store)
        }
    };
    let first = reader
        .page(args, None, args.limit)
        .await
        .map_err(|e| Failure::new(2, e))?;
    if !args.follow && first.events.is_empty() && args.format == Format::Table {
        eprintln!("No events match.");
    }
    print(&first.events, args.format, args.follow).map_err(|e| Failure::new(2, e))?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut last = first.last_seq;
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        match reader.page(args, Some(last), 1000).await {
            Ok(page) => {
                print(&page.events, args.format, true).map_err(|e| Failure::new(2, e))?;
                last = page
                    .events
                    .last()
                    .map_or(page.last_seq.max(last), |e| e.seq);
            }
            Err(e) => eprintln!("mpcluster: {e:#} (retrying)"),
        }
    }
}
