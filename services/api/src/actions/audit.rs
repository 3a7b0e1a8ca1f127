//! The audit trail of action decisions: who asked for what, when, and what was decided
//! (`allowed`, `denied`, `replayed` or `failed`), with the reason and the invocation it created.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;
use sqlx::{PgExecutor, PgPool};

use crate::ApiError;

/// Largest page of audit entries.
pub const MAX_PAGE: i64 = 500;

/// What was decided about an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Checked and enqueued.
    Allowed,
    /// Refused (scope, device, action, parameters, key reuse, ...).
    Denied,
    /// A repeated idempotency key: the original invocation was returned, nothing was enqueued.
    Replayed,
    /// Allowed, but it could not be enqueued (log or database unavailable).
    Failed,
}

impl Outcome {
    /// The name stored in `audit_log.outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Replayed => "replayed",
            Outcome::Failed => "failed",
        }
    }
}

/// One decision to record.
pub struct Decision<'a> {
    /// Caller (token name).
    pub caller: &'a str,
    /// Normalized action asked for.
    pub action: &'a str,
    /// Target device id.
    pub device_id: &'a str,
    /// What was decided.
    pub outcome: Outcome,
    /// The invocation allowed or replayed.
    pub action_id: Option<&'a str>,
    /// Reason, parameters, dry-run flag, idempotency key.
    pub detail: Json,
}

/// Writes a decision with `db` (the pool, or the transaction that enqueues the command).
pub async fn record<'e>(db: impl PgExecutor<'e>, d: &Decision<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (token_name, action, target, outcome, detail, action_id) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(d.caller)
    .bind(format!("invoke:{}", d.action))
    .bind(d.device_id)
    .bind(d.outcome.as_str())
    .bind(&d.detail)
    .bind(d.action_id)
    .execute(db)
    .await?;
    metrics::counter!("tessera_api_action_decisions_total", "outcome" => d.outcome.as_str()).increment(1);
    Ok(())
}

/// An entry of the audit trail.
#[derive(Debug, Clone, Serialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Sequence number (increasing).
    pub id: i64,
    /// When it was decided.
    pub at: DateTime<Utc>,
    /// Who: the caller's token name.
    pub token_name: String,
    /// What: `invoke:<action>`.
    pub action: String,
    /// On what: the device id.
    pub target: String,
    /// `allowed`, `denied`, `replayed` or `failed`.
    pub outcome: String,
    /// The invocation allowed or replayed.
    pub action_id: Option<String>,
    /// Reason, parameters, dry-run flag, idempotency key.
    pub detail: Json,
}

type AuditRow = (i64, DateTime<Utc>, String, String, String, String, Option<String>, Json);

/// The newest `first` entries, older than entry `before` when given, newest first.
pub async fn recent(pool: &PgPool, first: i64, before: Option<i64>) -> Result<Vec<AuditEntry>, ApiError> {
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(ApiError::BadRequest(format!("page size must be between 1 and {MAX_PAGE}")));
    }
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT id, at, token_name, action, target, outcome, action_id, detail FROM audit_log
         WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(before)
    .bind(first)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, at, token_name, action, target, outcome, action_id, detail)| AuditEntry {
            id,
            at,
            token_name,
            action,
            target,
            outcome,
            action_id,
            detail,
        })
        .collect())
}
