//! `/healthz` (the process is up), `/readyz` (it can serve: database and log reachable, change
//! listener connected, projector caught up within a bound) and `/metrics` (Prometheus).

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use crate::auth::{Principal, Scope};
use crate::{ApiError, AppState};

/// Largest projector lag (records) at which the API still reports ready.
const MAX_READY_LAG: u64 = 10_000;

/// The health routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

async fn projector_lag(state: &AppState) -> Result<u64, ApiError> {
    let topic = state.topics.device_events();
    let mut lag = 0;
    for partition in 0..state.log.partition_count(&topic).await? {
        let end = state.log.end_offset(&topic, partition).await?;
        let stored: Option<(i64,)> =
            sqlx::query_as("SELECT next_offset FROM projection.consumer_offsets WHERE topic = $1 AND partition = $2")
                .bind(&topic)
                .bind(partition as i32)
                .fetch_optional(&state.pool)
                .await?;
        lag += end.saturating_sub(stored.map_or(0, |(o,)| o.max(0) as u64));
    }
    Ok(lag)
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = sqlx::query("SELECT 1").execute(&state.pool).await.is_ok();
    let listening = state.listening.load(Ordering::Relaxed);
    let lag = projector_lag(&state).await;
    let caught_up = matches!(lag, Ok(l) if l <= MAX_READY_LAG);
    let ready = database && listening && caught_up;
    let body = json!({
        "ready": ready,
        "database": database,
        "log": lag.is_ok(),
        "change_listener": listening,
        "projector_lag": lag.as_ref().ok(),
    });
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, axum::Json(body))
}

async fn metrics(State(state): State<AppState>, principal: Principal) -> Result<impl IntoResponse, ApiError> {
    principal.require(Scope::Read)?;
    if let Ok(lag) = projector_lag(&state).await {
        metrics::gauge!("tessera_api_projector_lag_records").set(lag as f64);
    }
    let text = state.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
