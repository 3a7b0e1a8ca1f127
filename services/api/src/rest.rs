//! REST under `/v1`: the same reads as GraphQL, and action invocation. Every handler is
//! documented by its `#[utoipa::path]`, which is also what routes it (see `openapi.rs`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_model::Catalog;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::actions::{Invocation, InvokeRequest, invoke};
use crate::auth::{Principal, Scope};
use crate::db::{self, ActionStatus, DeviceFilter, DeviceView, HistoryPoint, PluginView, plain_text};
use crate::error::ErrorBody;
use crate::extract::{Json as JsonBody, Path, Query};
use crate::{ApiError, AppState};

/// The REST routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_devices))
        .routes(routes!(get_device))
        .routes(routes!(history))
        .routes(routes!(invoke_action))
        .routes(routes!(action_status))
        .routes(routes!(plugins))
        .routes(routes!(capabilities))
}

/// Filters and paging of the device list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only devices of this plugin.
    plugin_id: Option<String>,
    /// Only devices of this class.
    device_class: Option<String>,
    /// Only devices having this capability.
    capability: Option<String>,
    /// Only online (true) or offline (false) devices.
    online: Option<bool>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    first: Option<i64>,
    /// Cursor: the `nextCursor` of the previous page.
    after: Option<String>,
}

/// One page of devices.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DevicePage {
    /// The devices, ordered by id.
    items: Vec<DeviceView>,
    /// Pass as `after` to get the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// Devices, a page at a time, ordered by id.
#[utoipa::path(
    get,
    path = "/v1/devices",
    tag = "devices",
    params(ListQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "A page of devices", body = DevicePage),
        (status = 400, description = "Invalid filter or page size", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
async fn list_devices(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<DevicePage>, ApiError> {
    principal.require(Scope::Read)?;
    let filter = DeviceFilter {
        plugin_id: q.plugin_id,
        device_class: q.device_class,
        capability: q.capability,
        online: q.online,
    };
    let first = q.first.unwrap_or(50);
    let (items, has_next) = db::list_devices(&state.pool, &state.plugins, &filter, first, q.after.as_deref()).await?;
    let next_cursor = if has_next { items.last().map(|d| d.id.clone()) } else { None };
    Ok(Json(DevicePage { items, next_cursor }))
}

/// One device.
#[utoipa::path(
    get,
    path = "/v1/devices/{id}",
    tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The device", body = DeviceView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
async fn get_device(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    principal.require(Scope::Read)?;
    db::get_device(&state.pool, &state.plugins, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("device `{id}`")))
}

/// The time range and downsampling of a history query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Capability name.
    capability: String,
    /// Start (inclusive), RFC 3339.
    from: DateTime<Utc>,
    /// End (exclusive), RFC 3339; default now.
    to: Option<DateTime<Utc>>,
    /// Downsample into buckets of this many seconds (average, min, max per bucket).
    #[param(minimum = 1)]
    bucket: Option<i64>,
}

/// A capability's history, optionally downsampled; at most 5000 points.
#[utoipa::path(
    get,
    path = "/v1/devices/{id}/history",
    tag = "devices",
    params(("id" = String, Path, description = "Device id"), HistoryQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "Points in time order", body = Vec<HistoryPoint>),
        (status = 400, description = "Invalid range or bucket", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
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

/// How to run an action.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct InvokeBody {
    /// Parameters, an object (see the capability catalog).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    params: Value,
    /// Run every check and the plugin's dry-run path without touching the device.
    #[serde(default)]
    dry_run: bool,
    /// A repeated key returns the original invocation.
    idempotency_key: Option<String>,
    /// Time-to-live of the command in milliseconds.
    ttl_ms: Option<i64>,
}

/// An accepted invocation.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct InvocationBody {
    /// Invocation id; follow it at `/v1/actions/{id}`.
    action_id: String,
    /// Status now: `queued` for a new invocation, the original's latest for a replay.
    status: String,
    /// Whether this answers a repeated idempotency key.
    replayed: bool,
}

impl From<Invocation> for InvocationBody {
    fn from(invocation: Invocation) -> Self {
        // Destructured so that a new field of `Invocation` is a compile error here, not a silent gap.
        let Invocation { action_id, status, replayed } = invocation;
        Self { action_id, status, replayed }
    }
}

/// Invokes a normalized action on a device.
#[utoipa::path(
    post,
    path = "/v1/devices/{id}/actions/{action}",
    tag = "actions",
    params(("id" = String, Path, description = "Device id"), ("action" = String, Path, description = "Normalized action")),
    request_body = InvokeBody,
    security(("bearer" = ["control"])),
    responses(
        (status = 202, description = "Accepted and queued", body = InvocationBody),
        (status = 400, description = "Unsupported action or invalid parameters", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token lacks the control scope", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 413, description = "Body larger than 256 KiB", body = ErrorBody),
        (status = 415, description = "Not a JSON body", body = ErrorBody),
    )
)]
async fn invoke_action(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, action)): Path<(String, String)>,
    JsonBody(body): JsonBody<InvokeBody>,
) -> Result<(StatusCode, Json<InvocationBody>), ApiError> {
    plain_text("the device id", &id)?;
    plain_text("the action", &action)?;
    plain_text("the idempotency key", body.idempotency_key.as_deref().unwrap_or_default())?;
    let request = InvokeRequest {
        device_id: id,
        action,
        params: body.params,
        dry_run: body.dry_run,
        idempotency_key: body.idempotency_key,
        ttl_ms: body.ttl_ms,
    };
    Ok((StatusCode::ACCEPTED, Json(invoke(&state, &principal, request).await?.into())))
}

/// The status of an action invocation.
#[utoipa::path(
    get,
    path = "/v1/actions/{id}",
    tag = "actions",
    params(("id" = String, Path, description = "Invocation id")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "Its status", body = ActionStatus),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "Unknown (or not yet projected) invocation", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
async fn action_status(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ActionStatus>, ApiError> {
    principal.require(Scope::Read)?;
    db::action_status(&state.pool, &id).await?.map(Json).ok_or_else(|| ApiError::NotFound(format!("action `{id}`")))
}

/// Every plugin and its lifecycle state.
#[utoipa::path(
    get,
    path = "/v1/plugins",
    tag = "plugins",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The plugins, by id", body = Vec<PluginView>),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
async fn plugins(State(state): State<AppState>, principal: Principal) -> Result<Json<Vec<PluginView>>, ApiError> {
    principal.require(Scope::Read)?;
    Ok(Json(db::plugins(&state.pool).await?))
}

/// The capability catalog.
#[utoipa::path(
    get,
    path = "/v1/capabilities",
    tag = "devices",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "Every capability of the catalog", body = Vec<serde_json::Value>),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
async fn capabilities(principal: Principal) -> Result<Json<Vec<tessera_model::Capability>>, ApiError> {
    principal.require(Scope::Read)?;
    Ok(Json(Catalog::builtin().iter().cloned().collect()))
}
