//! Applying decoded events to the projection inside the batch transaction. Every write is
//! idempotent and ordered by the event's offset (`WHERE old.event_offset <= new.event_offset`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};
use sqlx::PgConnection;
use tessera_codec::messages::Codec;
use tessera_log::Record;
use tessera_model::{DeviceEvent, EventBody};

use crate::{CHANGES_CHANNEL, ProjectorError, UNREACHABLE_PLUGIN_STATES};

fn timestamp(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

/// The batched upsert of current states in `schema`: binds device ids, capabilities, jsonb values,
/// observation times and event offsets as parallel arrays; an older offset never overwrites a newer.
pub fn upsert_state_sql(schema: &str) -> String {
    format!(
        "INSERT INTO {schema}.device_state AS st (device_id, capability, value, observed_at, event_offset)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[], $5::bigint[])
         ON CONFLICT (device_id, capability) DO UPDATE SET value = EXCLUDED.value, observed_at = EXCLUDED.observed_at,
           event_offset = EXCLUDED.event_offset
         WHERE st.event_offset <= EXCLUDED.event_offset"
    )
}

/// The batched insert of state history in `schema`: binds device ids, capabilities, observation
/// times, event ids, jsonb values and numeric values as parallel arrays; a row already there
/// (same event and capability) is left alone.
pub fn insert_history_sql(schema: &str) -> String {
    format!(
        "INSERT INTO {schema}.state_history (device_id, capability, observed_at, event_id, value, num)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::jsonb[], $6::float8[])
         ON CONFLICT DO NOTHING"
    )
}

/// What a batch changed, for notifications.
pub struct Batch {
    schema: String,
    notify: bool,
    changed: BTreeMap<String, (BTreeSet<String>, BTreeSet<&'static str>, u64)>,
    plugins: BTreeSet<String>,
}

impl Batch {
    /// An empty batch projecting into `schema`.
    pub fn new(schema: &str, notify: bool) -> Self {
        Self { schema: schema.to_owned(), notify, changed: BTreeMap::new(), plugins: BTreeSet::new() }
    }

    fn touch(&mut self, device: &str, kind: &'static str, capabilities: impl IntoIterator<Item = String>, offset: u64) {
        let entry = self.changed.entry(device.to_owned()).or_default();
        entry.0.extend(capabilities);
        entry.1.insert(kind);
        entry.2 = entry.2.max(offset);
    }

    /// Sends one notification per changed device; delivered by PostgreSQL only on commit.
    pub async fn notify(&self, conn: &mut PgConnection) -> Result<(), ProjectorError> {
        if !self.notify {
            return Ok(());
        }
        let mut payloads = Vec::with_capacity(self.changed.len() + self.plugins.len());
        for (device, (caps, kinds, offset)) in &self.changed {
            let payload = json!({"device": device, "capabilities": caps, "kinds": kinds, "offset": offset}).to_string();
            // pg_notify payloads are limited to 8000 bytes; fall back to device-only.
            payloads.push(if payload.len() < 7900 {
                payload
            } else {
                json!({"device": device, "kinds": kinds, "offset": offset}).to_string()
            });
        }
        payloads.extend(self.plugins.iter().map(|plugin| json!({"plugin": plugin}).to_string()));
        if !payloads.is_empty() {
            // One round trip for the whole batch, not one per device.
            sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
                .bind(CHANGES_CHANNEL)
                .bind(payloads)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct StateRows {
    latest: HashMap<(String, String), (Json, i64, i64)>,
    history: Vec<(String, String, i64, String, Json, Option<f64>)>,
}

/// Applies `device-events` records.
pub async fn apply_device_events(
    conn: &mut PgConnection,
    batch: &mut Batch,
    codec: &Codec,
    records: &[&Record],
) -> Result<(), ProjectorError> {
    let s = batch.schema.clone();
    let mut states = StateRows::default();
    for record in records {
        let event: DeviceEvent = match codec.decode_event(&record.value).await {
            Ok(e) => e,
            Err(e) => {
                metrics::counter!("tessera_projector_undecodable_total").increment(1);
                tracing::error!(offset = record.offset, error = %e, "skipping undecodable device event");
                continue;
            }
        };
        let offset = record.offset as i64;
        let at = timestamp(event.observed_at_ms);
        match &event.body {
            EventBody::Upserted(m) => {
                sqlx::query(&format!(
                    "INSERT INTO {s}.devices AS d (id, plugin_id, external_id, name, device_class, manufacturer, model, firmware, capabilities, actions, updated_at, event_offset)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, device_class = EXCLUDED.device_class,
                       manufacturer = EXCLUDED.manufacturer, model = EXCLUDED.model, firmware = EXCLUDED.firmware,
                       capabilities = EXCLUDED.capabilities, actions = EXCLUDED.actions, removed = false,
                       updated_at = EXCLUDED.updated_at, event_offset = EXCLUDED.event_offset
                     WHERE d.event_offset <= EXCLUDED.event_offset"
                ))
                .bind(&event.device_id)
                .bind(&event.plugin_id)
                .bind(&event.external_id)
                .bind(&m.name)
                .bind(&m.device_class)
                .bind(&m.manufacturer)
                .bind(&m.model)
                .bind(&m.firmware)
                .bind(&m.capabilities)
                .bind(&m.actions)
                .bind(at)
                .bind(offset)
                .execute(&mut *conn)
                .await?;
                batch.touch(&event.device_id, "metadata", [], record.offset);
            }
            EventBody::Availability { online } => {
                sqlx::query(&format!(
                    "UPDATE {s}.devices SET online = $2, updated_at = $3, event_offset = $4 WHERE id = $1 AND event_offset <= $4"
                ))
                .bind(&event.device_id)
                .bind(online)
                .bind(at)
                .bind(offset)
                .execute(&mut *conn)
                .await?;
                batch.touch(&event.device_id, "availability", [], record.offset);
            }
            EventBody::Removed => {
                sqlx::query(&format!(
                    "UPDATE {s}.devices SET removed = true, event_offset = $2 WHERE id = $1 AND event_offset <= $2"
                ))
                .bind(&event.device_id)
                .bind(offset)
                .execute(&mut *conn)
                .await?;
                batch.touch(&event.device_id, "removed", [], record.offset);
            }
            EventBody::StateReported { states: entries } => {
                for entry in entries {
                    let value = entry.value.to_json();
                    states.history.push((
                        event.device_id.clone(),
                        entry.capability.clone(),
                        event.observed_at_ms,
                        event.event_id.clone(),
                        value.clone(),
                        entry.value.as_f64(),
                    ));
                    states.latest.insert(
                        (event.device_id.clone(), entry.capability.clone()),
                        (value, event.observed_at_ms, offset),
                    );
                }
                batch.touch(&event.device_id, "state", entries.iter().map(|e| e.capability.clone()), record.offset);
            }
            EventBody::Action { action_id, action, outcome, detail } => {
                sqlx::query(&format!(
                    "INSERT INTO {s}.actions AS a (action_id, device_id, action, status, detail, updated_at, event_offset)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (action_id) DO UPDATE SET status = EXCLUDED.status, detail = COALESCE(EXCLUDED.detail, a.detail),
                       updated_at = EXCLUDED.updated_at, event_offset = EXCLUDED.event_offset
                     WHERE a.event_offset <= EXCLUDED.event_offset"
                ))
                .bind(action_id)
                .bind(&event.device_id)
                .bind(action)
                .bind(outcome.as_str())
                .bind(detail)
                .bind(at)
                .bind(offset)
                .execute(&mut *conn)
                .await?;
                batch.touch(&event.device_id, "action", [], record.offset);
            }
        }
    }
    write_states(conn, &s, states).await
}

async fn write_states(conn: &mut PgConnection, s: &str, rows: StateRows) -> Result<(), ProjectorError> {
    if !rows.latest.is_empty() {
        let mut devices = Vec::with_capacity(rows.latest.len());
        let mut caps = Vec::with_capacity(rows.latest.len());
        let mut values = Vec::with_capacity(rows.latest.len());
        let mut ats = Vec::with_capacity(rows.latest.len());
        let mut offsets = Vec::with_capacity(rows.latest.len());
        for ((device, cap), (value, at, offset)) in rows.latest {
            devices.push(device);
            caps.push(cap);
            values.push(value);
            ats.push(timestamp(at));
            offsets.push(offset);
        }
        sqlx::query(&upsert_state_sql(s))
            .bind(devices)
            .bind(caps)
            .bind(values)
            .bind(ats)
            .bind(offsets)
            .execute(&mut *conn)
            .await?;
    }
    if !rows.history.is_empty() {
        let n = rows.history.len();
        let (mut devices, mut caps, mut ats, mut ids, mut values, mut nums) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (device, cap, at, id, value, num) in rows.history {
            devices.push(device);
            caps.push(cap);
            ats.push(timestamp(at));
            ids.push(id);
            values.push(value);
            nums.push(num);
        }
        sqlx::query(&insert_history_sql(s))
            .bind(devices)
            .bind(caps)
            .bind(ats)
            .bind(ids)
            .bind(values)
            .bind(nums)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Applies `governance` records to the plugins table.
pub async fn apply_governance(
    conn: &mut PgConnection,
    batch: &mut Batch,
    codec: &Codec,
    records: &[&Record],
) -> Result<(), ProjectorError> {
    let s = batch.schema.clone();
    for record in records {
        let l = match codec.decode_lifecycle(&record.value).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(offset = record.offset, error = %e, "skipping undecodable governance record");
                continue;
            }
        };
        let violations = serde_json::to_value(&l.violations).unwrap_or(Json::Array(Vec::new()));
        let before: Option<(String,)> = sqlx::query_as(&format!("SELECT state FROM {s}.plugins WHERE id = $1"))
            .bind(&l.plugin_id)
            .fetch_optional(&mut *conn)
            .await?;
        let applied = sqlx::query(&format!(
            "INSERT INTO {s}.plugins AS p (id, version, state, detail, restarts, accepted, rejected, violations, updated_at, event_offset)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, state = EXCLUDED.state, detail = EXCLUDED.detail,
               restarts = EXCLUDED.restarts, accepted = EXCLUDED.accepted, rejected = EXCLUDED.rejected,
               violations = EXCLUDED.violations, updated_at = EXCLUDED.updated_at, event_offset = EXCLUDED.event_offset
             WHERE p.event_offset <= EXCLUDED.event_offset"
        ))
        .bind(&l.plugin_id)
        .bind(&l.version)
        .bind(&l.state)
        .bind(&l.detail)
        .bind(l.restarts)
        .bind(l.accepted)
        .bind(l.rejected)
        .bind(violations)
        .bind(timestamp(l.at_ms))
        .bind(record.offset as i64)
        .execute(&mut *conn)
        .await?;
        let reachable = |state: &str| !UNREACHABLE_PLUGIN_STATES.contains(&state);
        let was_reachable = before.as_ref().is_none_or(|(state,)| reachable(state));
        if applied.rows_affected() > 0 && was_reachable != reachable(&l.state) {
            // Every device of the plugin just went offline (or back to what it last reported).
            let devices: Vec<(String,)> =
                sqlx::query_as(&format!("SELECT id FROM {s}.devices WHERE plugin_id = $1 AND NOT removed"))
                    .bind(&l.plugin_id)
                    .fetch_all(&mut *conn)
                    .await?;
            for (device,) in devices {
                batch.touch(&device, "availability", [], record.offset);
            }
        }
        batch.plugins.insert(l.plugin_id);
    }
    Ok(())
}
