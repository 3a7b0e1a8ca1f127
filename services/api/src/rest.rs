//! REST under `/v1`: the same reads as GraphQL, and action invocation.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_model::Catalog;

use crate::actions::{Invocation, InvokeRequest, invoke};
use crate::auth::{Principal, Scope};
use crate::db::{self, ActionStatus, DeviceFilter, DeviceView, HistoryPoint, PluginView};
use crate::{ApiError, AppState};

/// The REST routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/devices", get(list_devices))
        .route("/v1/devices/{id}", get(get_device))
        .route("/v1/devices/{id}/history", get(history))
        .route("/v1/devices/{id}/actions/{action}", post(invoke_action))
        .route("/v1/actions/{id}", get(action_status))
        .route("/v1/plugins", get(plugins))
        .route("/v1/capabilities", get(capabilities))
}

#[derive(Deserialize)]
struct ListQuery {
    plugin_id: Option<String>,
    device_class: Option<String>,
    capability: Option<String>,
    online: Option<bool>,
    #[serde(default = "default_page")]
    first: i64,
    after: Option<String>,
}

fn default_page() -> i64 {
    50
}

async fn list_devices(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Scope::Read)?;
    let filter = DeviceFilter {
        plugin_id: q.plugin_id,
        device_class: q.device_class,
        capability: q.capability,
        online: q.online,
    };
    let (items, has_next) = db::list_devices(&state.pool, &filter, q.first, q.after.as_deref()).await?;
    let next = if has_next { items.last().map(|d| d.id.clone()) } else { None };
    Ok(Json(json!({"items": items, "nextCursor": next})))
}

async fn get_device(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    principal.require(Scope::Read)?;
    db::get_device(&state.pool, &id).await?.map(Json).ok_or_else(|| ApiError::NotFound(format!("device `{id}`")))
}

#[derive(Deserialize)]
struct HistoryQuery {
    capability: String,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
    bucket: Option<i64>,
}

async fn history(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Vec<HistoryPoint>>, ApiError> {
    principal.require(Scope::Read)?;
    let to = q.to.unwrap_or_else(Utc::now);
    Ok(Json(db::history(&state.pool, &id, &q.capability, q.from, to, q.bucket).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvokeBody {
    #[serde(default)]
    params: Value,
    #[serde(default)]
    dry_run: bool,
    idempotency_key: Option<String>,
}

async fn invoke_action(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, action)): Path<(String, String)>,
    Json(body): Json<InvokeBody>,
) -> Result<(axum::http::StatusCode, Json<Invocation>), ApiError> {
    let request = InvokeRequest {
        device_id: id,
        action,
        params: body.params,
        dry_run: body.dry_run,
        idempotency_key: body.idempotency_key,
    };
    Ok((axum::http::StatusCode::ACCEPTED, Json(invoke(&state, &principal, request).await?)))
}

async fn action_status(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ActionStatus>, ApiError> {
    principal.require(Scope::Read)?;
    db::action_status(&state.pool, &id).await?.map(Json).ok_or_else(|| ApiError::NotFound(format!("action `{id}`")))
}

async fn plugins(State(state): State<AppState>, principal: Principal) -> Result<Json<Vec<PluginView>>, ApiError> {
    principal.require(Scope::Read)?;
    Ok(Json(db::plugins(&state.pool).await?))
}

async fn capabilities(principal: Principal) -> Result<Json<Vec<tessera_model::Capability>>, ApiError> {
    principal.require(Scope::Read)?;
    Ok(Json(Catalog::builtin().iter().cloned().collect()))
}
