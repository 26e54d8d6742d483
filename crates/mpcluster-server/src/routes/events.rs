//! The event history: matrix changes (LUN cluster states, cells) and the configuration audit
//! trail, filtered by time, sequence, LUN, node and kind.

use axum::Json;
use axum::extract::State;
use mpcluster_config::events::{EventPage, query, shared_chunk_cache};
use mpcluster_config::unix_now;
use mpcluster_core::config::{ConfigError, ConfigErrors};
use mpcluster_core::events::{EventFilter, FilterText};
use serde::Deserialize;

use super::{Data, data};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;

/// Events returned without `limit`.
pub const DEFAULT_LIMIT: usize = 1000;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 10_000;

/// The query of the event listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// From this time on: unix seconds, or an age such as `90s`, `15m`, `1h`, `7d`.
    pub since: Option<String>,
    /// Before this time: unix seconds, or an age (`1h` = until an hour ago).
    pub until: Option<String>,
    /// Only events with a sequence number above this one (to follow the log: pass the
    /// previous answer's `last-seq`).
    pub after: Option<u64>,
    /// Only this LUN.
    pub wwid: Option<String>,
    /// Only this node's cells.
    pub node: Option<String>,
    /// `config`: only the audit trail; `health`: only matrix changes; absent: both.
    pub kind: Option<String>,
    /// At most this many events (default 1000, at most 10000): the newest ones, or with
    /// `after` the oldest ones after it.
    pub limit: Option<usize>,
}

fn filter_of(q: EventsQuery, now: i64) -> Result<(EventFilter, usize), ConfigErrors> {
    let text = FilterText {
        since: q.since.as_deref(),
        until: q.until.as_deref(),
        after: q.after,
        wwid: q.wwid.as_deref(),
        node: q.node.as_deref(),
        kind: q.kind.as_deref(),
    };
    let (filter, mut errors) = match EventFilter::parse(&text, now) {
        Ok(f) => (Some(f), Vec::new()),
        Err(e) => (None, e),
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        errors.push((
            "limit",
            format!("{limit} is out of range: 1 to {MAX_LIMIT}"),
        ));
    }
    match filter {
        Some(f) if errors.is_empty() => Ok((f, limit)),
        _ => Err(ConfigErrors(
            errors
                .into_iter()
                .map(|(field, m)| ConfigError::new(field, m))
                .collect(),
        )),
    }
}

/// The event history, oldest first: changes of LUN cluster states and cells (recorded once
/// cluster-wide) and configuration changes (who, digests before and after, what changed).
#[utoipa::path(get, path = "/api2/json/cluster/multipath/events", tag = "status", operation_id = "get_events",
    params(EventsQuery),
    responses(
        (status = 200, description = "The events and the newest sequence number", body = Data<EventPage>),
        (status = 400, description = "Invalid filter (every problem listed)", body = ErrorBody),
        (status = 500, description = "The stored event log cannot be read", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<Data<EventPage>>, ApiError> {
    let (filter, limit) = filter_of(q, unix_now())?;
    Ok(data(
        query(state.store.as_ref(), shared_chunk_cache(), &filter, limit).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_error_at_once() {
        let q = EventsQuery {
            since: Some("yesterday".into()),
            wwid: Some("no wwid".into()),
            kind: Some("all".into()),
            limit: Some(0),
            ..EventsQuery::default()
        };
        let errs = filter_of(q, 0).unwrap_err();
        let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["since", "wwid", "kind", "limit"]);
    }
}
