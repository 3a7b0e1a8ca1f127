//! The small HTTP listener of roles run alone (`tessera run plugin-host|mapper|projector`):
//! `/healthz`, `/readyz` (the log, and the database when the role has one, are reachable) and
//! `/metrics` (Prometheus; only with `TESSERA_METRICS_TOKEN` set, and only for that bearer token,
//! since these roles hold no API tokens).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use sqlx::PgPool;
use tessera_log::Log;
use tokio_util::sync::CancellationToken;

/// What a role's readiness depends on.
#[derive(Clone)]
pub struct RoleHealth {
    /// The log.
    pub log: Arc<dyn Log>,
    /// A topic the role reads (its end offset proves the log answers).
    pub topic: String,
    /// The database, for roles that have one.
    pub pool: Option<PgPool>,
    /// Metrics exposition.
    pub metrics: Option<PrometheusHandle>,
    /// Bearer token required for `/metrics`.
    pub metrics_token: Option<String>,
}

/// Serves the role's health endpoints until `shutdown`.
pub async fn serve(addr: SocketAddr, health: RoleHealth, shutdown: CancellationToken) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}

async fn readyz(State(h): State<RoleHealth>) -> Response {
    let log = h.log.end_offset(&h.topic, 0).await.is_ok();
    let database = match &h.pool {
        Some(pool) => Some(sqlx::query("SELECT 1").execute(pool).await.is_ok()),
        None => None,
    };
    let ready = log && database != Some(false);
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(json!({"ready": ready, "log": log, "database": database}))).into_response()
}

async fn metrics(State(h): State<RoleHealth>, headers: HeaderMap) -> Response {
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match (&h.metrics_token, given) {
        (Some(expected), Some(given)) if expected == given => {
            let text = h.metrics.as_ref().map(|m| m.render()).unwrap_or_default();
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
        _ => (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"code": "unauthorized", "message": "metrics need the TESSERA_METRICS_TOKEN bearer token"}}))).into_response(),
    }
}
