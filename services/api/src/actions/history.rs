//! A device's recent action invocations and their status, from the projection.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::ApiError;
use crate::db::ActionStatus;

/// A row of `projection.actions`.
type ActionRow = (String, String, String, String, Option<String>, DateTime<Utc>);

/// Largest number of invocations returned.
pub const MAX_ACTIONS: i64 = 200;

/// The `first` most recently changed invocations on `device_id`, newest first.
pub async fn device_actions(pool: &PgPool, device_id: &str, first: i64) -> Result<Vec<ActionStatus>, ApiError> {
    if !(1..=MAX_ACTIONS).contains(&first) {
        return Err(ApiError::BadRequest(format!("first must be between 1 and {MAX_ACTIONS}")));
    }
    let rows: Vec<ActionRow> = sqlx::query_as(
        "SELECT action_id, device_id, action, status, detail, updated_at FROM projection.actions
         WHERE device_id = $1 ORDER BY updated_at DESC, event_offset DESC LIMIT $2",
    )
    .bind(device_id)
    .bind(first)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, device_id, action, status, detail, updated_at)| ActionStatus {
            id,
            device_id,
            action,
            status,
            detail,
            updated_at,
        })
        .collect())
}
