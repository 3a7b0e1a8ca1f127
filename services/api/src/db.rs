//! Reads of the projection, shared by GraphQL and REST. Every list is bounded.

use std::collections::HashMap;

use async_graphql::SimpleObject;
use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use serde_json::Value as Json;
use sqlx::PgPool;
use tessera_model::surface::PluginSurfaces;
use tessera_model::{Catalog, DeviceMetadata};

use crate::ApiError;

/// Largest page of devices.
pub const MAX_PAGE: i64 = 500;
/// Largest number of history points returned.
pub const MAX_POINTS: i64 = 5000;
/// Widest history bucket: ten years.
pub const MAX_BUCKET_SECONDS: i64 = 10 * 366 * 24 * 3600;

/// Rejects text PostgreSQL cannot store (NUL) before it reaches a query, as a bad request rather
/// than a database failure.
pub fn plain_text(what: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::BadRequest(format!("{what} must not contain NUL characters")));
    }
    Ok(())
}

/// Filters of the device list.
#[derive(Debug, Clone, Default, async_graphql::InputObject, serde::Deserialize)]
pub struct DeviceFilter {
    /// Only devices of this plugin.
    pub plugin_id: Option<String>,
    /// Only devices of this class.
    pub device_class: Option<String>,
    /// Only devices having this capability.
    pub capability: Option<String>,
    /// Only online (true) or offline (false) devices.
    pub online: Option<bool>,
}

/// The current value of one capability of a device.
#[derive(Debug, Clone, Serialize, SimpleObject, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityState {
    /// Capability name.
    pub name: String,
    /// Catalog kind (sensor, binary_sensor, actuator, attribute).
    pub kind: String,
    /// UCUM unit.
    pub unit: Option<String>,
    /// Current value.
    #[schema(value_type = serde_json::Value)]
    pub value: Json,
    /// When it was observed.
    pub observed_at: DateTime<Utc>,
    /// Offset of the event that set it.
    pub offset: i64,
}

/// A device of the unified model.
#[derive(Debug, Clone, Serialize, SimpleObject, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    /// Stable id.
    pub id: String,
    /// Owning plugin.
    pub plugin_id: String,
    /// Id within the plugin.
    pub external_id: String,
    /// Name.
    pub name: String,
    /// Device class.
    pub device_class: String,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Firmware.
    pub firmware: Option<String>,
    /// Reachable now: the device's last reported availability, and false while its plugin is
    /// quarantined, stopped or rejected.
    pub online: bool,
    /// Capability names.
    pub capability_names: Vec<String>,
    /// Current capability values.
    pub capabilities: Vec<CapabilityState>,
    /// Supported normalized actions.
    pub actions: Vec<String>,
    /// UI schema (cards of widgets).
    #[schema(value_type = serde_json::Value)]
    pub ui: Json,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

type DeviceRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<String>,
    Vec<String>,
    bool,
    DateTime<Utc>,
);

/// A downsampled history bucket: start, average, min, max, count.
type BucketRow = (DateTime<Utc>, Option<f64>, Option<f64>, Option<f64>, i64);
/// A row of `plugins`.
type PluginRow = (String, String, String, Option<String>, i32, i64, i64, Json, DateTime<Utc>);
/// A row of `actions`.
type ActionRow = (String, String, String, String, Option<String>, DateTime<Utc>);

/// Whether a device is reachable, as SQL over `projection.devices`: its last reported
/// availability, and only while its plugin can reach it (not while the plugin is in one of
/// [`tessera_projector::UNREACHABLE_PLUGIN_STATES`]: then nothing reports the device going away,
/// and its last availability would claim it is still there).
fn effective_online() -> String {
    let states: Vec<String> =
        tessera_projector::UNREACHABLE_PLUGIN_STATES.iter().map(|state| format!("'{state}'")).collect();
    format!(
        "(devices.online AND NOT EXISTS (SELECT 1 FROM projection.plugins p WHERE p.id = devices.plugin_id AND p.state IN ({})))",
        states.join(", ")
    )
}

/// The columns of a [`DeviceRow`], selected from `projection.devices`.
fn device_columns() -> String {
    format!(
        "id, plugin_id, external_id, name, device_class, manufacturer, model, firmware, capabilities, actions, {}, updated_at",
        effective_online()
    )
}

fn to_view(row: DeviceRow, states: Vec<CapabilityState>, plugins: &PluginSurfaces) -> DeviceView {
    let (
        id,
        plugin_id,
        external_id,
        name,
        device_class,
        manufacturer,
        model,
        firmware,
        capability_names,
        actions,
        online,
        updated_at,
    ) = row;
    let metadata = DeviceMetadata {
        name: name.clone(),
        device_class: device_class.clone(),
        manufacturer: manufacturer.clone(),
        model: model.clone(),
        firmware: firmware.clone(),
        capabilities: capability_names.clone(),
        actions: actions.clone(),
    };
    // The plugin's ui.toml and actions.toml shape the generated schema (see schemas/widgets.md).
    let ui = serde_json::to_value(plugins.ui(Catalog::builtin(), &plugin_id, &metadata)).unwrap_or(Json::Null);
    DeviceView {
        id,
        plugin_id,
        external_id,
        name,
        device_class,
        manufacturer,
        model,
        firmware,
        online,
        capability_names,
        capabilities: states,
        actions,
        ui,
        updated_at,
    }
}

async fn states_of(pool: &PgPool, ids: &[String]) -> Result<HashMap<String, Vec<CapabilityState>>, ApiError> {
    let rows: Vec<(String, String, Json, DateTime<Utc>, i64)> = sqlx::query_as(
        "SELECT device_id, capability, value, observed_at, event_offset FROM projection.device_state WHERE device_id = ANY($1) ORDER BY device_id, capability",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let catalog = Catalog::builtin();
    let mut out: HashMap<String, Vec<CapabilityState>> = HashMap::new();
    for (device, name, value, observed_at, offset) in rows {
        let cap = catalog.get(&name);
        let kind = cap
            .map(|c| serde_json::to_value(c.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
            .unwrap_or_default();
        out.entry(device).or_default().push(CapabilityState {
            unit: cap.and_then(|c| c.unit.clone()),
            kind,
            name,
            value,
            observed_at,
            offset,
        });
    }
    Ok(out)
}

/// One page of devices ordered by id, after the cursor `after` (a device id).
pub async fn list_devices(
    pool: &PgPool,
    plugins: &PluginSurfaces,
    filter: &DeviceFilter,
    first: i64,
    after: Option<&str>,
) -> Result<(Vec<DeviceView>, bool), ApiError> {
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(ApiError::BadRequest(format!("page size must be between 1 and {MAX_PAGE}")));
    }
    for (what, value) in
        [("pluginId", &filter.plugin_id), ("deviceClass", &filter.device_class), ("capability", &filter.capability)]
    {
        plain_text(what, value.as_deref().unwrap_or_default())?;
    }
    plain_text("the cursor", after.unwrap_or_default())?;
    let rows: Vec<DeviceRow> = sqlx::query_as(&format!(
        "SELECT {columns} FROM projection.devices
         WHERE NOT removed
           AND ($1::text IS NULL OR plugin_id = $1)
           AND ($2::text IS NULL OR device_class = $2)
           AND ($3::text IS NULL OR $3 = ANY(capabilities))
           AND ($4::boolean IS NULL OR {online} = $4)
           AND ($5::text IS NULL OR id > $5)
         ORDER BY id LIMIT $6",
        columns = device_columns(),
        online = effective_online()
    ))
    .bind(&filter.plugin_id)
    .bind(&filter.device_class)
    .bind(&filter.capability)
    .bind(filter.online)
    .bind(after)
    .bind(first + 1)
    .fetch_all(pool)
    .await?;
    let has_next = rows.len() as i64 > first;
    let rows: Vec<DeviceRow> = rows.into_iter().take(first as usize).collect();
    let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut states = states_of(pool, &ids).await?;
    Ok((
        rows.into_iter()
            .map(|r| {
                let s = states.remove(&r.0).unwrap_or_default();
                to_view(r, s, plugins)
            })
            .collect(),
        has_next,
    ))
}

/// One device by id.
pub async fn get_device(pool: &PgPool, plugins: &PluginSurfaces, id: &str) -> Result<Option<DeviceView>, ApiError> {
    plain_text("the device id", id)?;
    let row: Option<DeviceRow> =
        sqlx::query_as(&format!("SELECT {} FROM projection.devices WHERE id = $1 AND NOT removed", device_columns()))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let mut states = states_of(pool, std::slice::from_ref(&row.0)).await?;
    let s = states.remove(&row.0).unwrap_or_default();
    Ok(Some(to_view(row, s, plugins)))
}

/// A point of a capability's history.
#[derive(Debug, Clone, Serialize, SimpleObject, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPoint {
    /// Time (bucket start when downsampled).
    pub at: DateTime<Utc>,
    /// Value (average over the bucket when downsampled and numeric).
    #[schema(value_type = serde_json::Value)]
    pub value: Json,
    /// Smallest value in the bucket.
    pub min: Option<f64>,
    /// Largest value in the bucket.
    pub max: Option<f64>,
    /// Observations in the bucket.
    pub count: i64,
}

/// History of one capability between two times, optionally downsampled into buckets of
/// `bucket_seconds` (average, min, max per bucket), at most [`MAX_POINTS`] points.
pub async fn history(
    pool: &PgPool,
    device: &str,
    capability: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket_seconds: Option<i64>,
) -> Result<Vec<HistoryPoint>, ApiError> {
    plain_text("the device id", device)?;
    plain_text("the capability", capability)?;
    if to < from {
        return Err(ApiError::BadRequest("`to` is before `from`".into()));
    }
    // PostgreSQL's timestamps span 4713 BC to 294276 AD; chrono's reach further.
    let representable = |t: DateTime<Utc>| (1..=9999).contains(&t.year());
    if !representable(from) || !representable(to) {
        return Err(ApiError::BadRequest("`from` and `to` must lie between the years 1 and 9999".into()));
    }
    if bucket_seconds.is_some_and(|b| b > MAX_BUCKET_SECONDS) {
        return Err(ApiError::BadRequest(format!("bucket must be at most {MAX_BUCKET_SECONDS} seconds")));
    }
    match bucket_seconds {
        Some(b) if b < 1 => Err(ApiError::BadRequest("bucket must be at least 1 second".into())),
        Some(bucket) => {
            let rows: Vec<BucketRow> = sqlx::query_as(
                "SELECT to_timestamp(floor(extract(epoch FROM observed_at) / $4) * $4) AS at, avg(num), min(num), max(num), count(*)
                 FROM projection.state_history WHERE device_id = $1 AND capability = $2 AND observed_at >= $3 AND observed_at < $5
                 GROUP BY 1 ORDER BY 1 LIMIT $6",
            )
            .bind(device)
            .bind(capability)
            .bind(from)
            .bind(bucket as f64)
            .bind(to)
            .bind(MAX_POINTS)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(at, avg, min, max, count)| HistoryPoint {
                    at,
                    value: avg.map_or(Json::Null, Json::from),
                    min,
                    max,
                    count,
                })
                .collect())
        }
        None => {
            let rows: Vec<(DateTime<Utc>, Json, Option<f64>)> = sqlx::query_as(
                "SELECT observed_at, value, num FROM projection.state_history
                 WHERE device_id = $1 AND capability = $2 AND observed_at >= $3 AND observed_at < $4
                 ORDER BY observed_at DESC LIMIT $5",
            )
            .bind(device)
            .bind(capability)
            .bind(from)
            .bind(to)
            .bind(MAX_POINTS)
            .fetch_all(pool)
            .await?;
            let mut points: Vec<HistoryPoint> = rows
                .into_iter()
                .map(|(at, value, num)| HistoryPoint { at, value, min: num, max: num, count: 1 })
                .collect();
            points.reverse();
            Ok(points)
        }
    }
}

/// A plugin's condition.
#[derive(Debug, Clone, Serialize, SimpleObject, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginView {
    /// Plugin id.
    pub id: String,
    /// Package version.
    pub version: String,
    /// Lifecycle state.
    pub state: String,
    /// Last error or reason.
    pub last_error: Option<String>,
    /// Restarts.
    pub restarts: i32,
    /// Observations accepted.
    pub observations_accepted: i64,
    /// Observations rejected.
    pub observations_rejected: i64,
    /// Contract violations (rejected packages).
    #[schema(value_type = serde_json::Value)]
    pub violations: Json,
    /// Last transition.
    pub updated_at: DateTime<Utc>,
}

/// Every plugin, by id.
pub async fn plugins(pool: &PgPool) -> Result<Vec<PluginView>, ApiError> {
    let rows: Vec<PluginRow> = sqlx::query_as(
        "SELECT id, version, state, detail, restarts, accepted, rejected, violations, updated_at FROM projection.plugins ORDER BY id LIMIT 1000",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                version,
                state,
                last_error,
                restarts,
                observations_accepted,
                observations_rejected,
                violations,
                updated_at,
            )| PluginView {
                id,
                version,
                state,
                last_error,
                restarts,
                observations_accepted,
                observations_rejected,
                violations,
                updated_at,
            },
        )
        .collect())
}

/// The status of an action invocation.
#[derive(Debug, Clone, Serialize, SimpleObject, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionStatus {
    /// Invocation id.
    pub id: String,
    /// Target device.
    pub device_id: String,
    /// Action.
    pub action: String,
    /// queued, sent, succeeded, failed, timed_out, expired.
    pub status: String,
    /// Detail (error text).
    pub detail: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An action's status, once the projector has seen it.
pub async fn action_status(pool: &PgPool, id: &str) -> Result<Option<ActionStatus>, ApiError> {
    plain_text("the action id", id)?;
    let row: Option<ActionRow> = sqlx::query_as(
        "SELECT action_id, device_id, action, status, detail, updated_at FROM projection.actions WHERE action_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(id, device_id, action, status, detail, updated_at)| ActionStatus {
        id,
        device_id,
        action,
        status,
        detail,
        updated_at,
    }))
}
