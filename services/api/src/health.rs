//! `/healthz` (the process is up), `/readyz` (it can serve: database and log reachable, change
//! listener connected, projector caught up within a bound) and `/metrics` (Prometheus, with the
//! consumer lag of every role).

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Scope};
use crate::{ApiError, AppState};

/// Largest projector lag (records) at which the API still reports ready.
pub const MAX_READY_LAG: u64 = 10_000;

/// Longest a readiness probe waits for the database or the log.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Consumer group of the mapper on `raw.<plugin>` topics.
const MAPPER_GROUP: &str = "mapper";
/// Consumer group of the plugin-host on `commands`.
const PLUGIN_HOST_GROUP: &str = "plugin-host";

/// The health routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    security(()),
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = serde_json::Value))
)]
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// The lag of one consumer on one topic.
struct Lag {
    role: &'static str,
    topic: String,
    records: u64,
}

/// Records of `device-events` and `governance` not yet projected, per topic.
async fn projector_lags(state: &AppState) -> Result<Vec<Lag>, ApiError> {
    let mut out = Vec::new();
    for topic in [state.topics.device_events(), state.topics.governance()] {
        let mut records = 0;
        let partitions = match state.log.partition_count(&topic).await {
            Ok(n) => n,
            Err(tessera_log::LogError::UnknownTopic(_)) => 0,
            Err(e) => return Err(e.into()),
        };
        for partition in 0..partitions {
            let end = state.log.end_offset(&topic, partition).await?;
            let stored: Option<(i64,)> = sqlx::query_as(
                "SELECT next_offset FROM projection.consumer_offsets WHERE topic = $1 AND partition = $2",
            )
            .bind(&topic)
            .bind(partition as i32)
            .fetch_optional(&state.pool)
            .await?;
            records += end.saturating_sub(stored.map_or(0, |(o,)| o.max(0) as u64));
        }
        out.push(Lag { role: "projector", topic, records });
    }
    Ok(out)
}

/// Lag of a log consumer group on every partition of `topic`.
async fn group_lag(state: &AppState, role: &'static str, group: &str, topic: String) -> Result<Lag, ApiError> {
    let mut records = 0;
    for partition in 0..state.log.partition_count(&topic).await? {
        let end = state.log.end_offset(&topic, partition).await?;
        let committed = state.log.committed(group, &topic, partition).await?.unwrap_or(0);
        records += end.saturating_sub(committed);
    }
    Ok(Lag { role, topic, records })
}

/// The lag of every role: the projector (offsets stored with the projection), the mapper (its
/// group on each `raw.<plugin>` topic) and the plugin-host (its group on `commands`).
async fn consumer_lags(state: &AppState) -> Result<Vec<Lag>, ApiError> {
    let mut lags = projector_lags(state).await?;
    let raw_prefix = state.topics.raw("");
    for topic in state.log.topics().await? {
        if topic.starts_with(&raw_prefix) {
            lags.push(group_lag(state, "mapper", MAPPER_GROUP, topic).await?);
        }
    }
    let commands = state.topics.commands();
    if state.log.partition_count(&commands).await.is_ok() {
        lags.push(group_lag(state, "plugin-host", PLUGIN_HOST_GROUP, commands).await?);
    }
    Ok(lags)
}

/// Readiness: 200 when the database and the log answer, the change listener is connected and
/// the projector is at most 10 000 records behind; else 503. The body says which check failed.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Ready", body = serde_json::Value),
        (status = 503, description = "Not ready; the body names the failing check", body = serde_json::Value),
    )
)]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database =
        matches!(tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&state.pool)).await, Ok(Ok(_)));
    let listening = state.listening.load(Ordering::Relaxed);
    let lag = match tokio::time::timeout(PROBE_TIMEOUT, projector_lags(&state)).await {
        Ok(Ok(lags)) => Some(lags.iter().map(|l| l.records).sum::<u64>()),
        _ => None,
    };
    let log = matches!(
        tokio::time::timeout(PROBE_TIMEOUT, state.log.end_offset(&state.topics.device_events(), 0)).await,
        Ok(Ok(_))
    );
    let caught_up = lag.is_some_and(|l| l <= MAX_READY_LAG);
    let ready = database && log && listening && caught_up;
    let body = json!({
        "ready": ready,
        "database": database,
        "log": log,
        "change_listener": listening,
        "projector_lag": lag,
        "max_projector_lag": MAX_READY_LAG,
    });
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, axum::Json(body))
}

/// Prometheus metrics of this process, with `tessera_api_consumer_lag_records{role, topic}`
/// computed at scrape time for every role.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
    )
)]
async fn metrics(State(state): State<AppState>, principal: Principal) -> Result<impl IntoResponse, ApiError> {
    principal.require(Scope::Read)?;
    match tokio::time::timeout(PROBE_TIMEOUT, consumer_lags(&state)).await {
        Ok(Ok(lags)) => {
            let mut projector = 0;
            for lag in lags {
                if lag.role == "projector" {
                    projector += lag.records;
                }
                metrics::gauge!("tessera_api_consumer_lag_records", "role" => lag.role, "topic" => lag.topic)
                    .set(lag.records as f64);
            }
            metrics::gauge!("tessera_api_projector_lag_records").set(projector as f64);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot compute consumer lag"),
        Err(_) => tracing::warn!("computing consumer lag timed out"),
    }
    let text = state.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
