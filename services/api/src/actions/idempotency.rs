//! Idempotency keys: a caller's key maps to exactly one invocation, stored in PostgreSQL under a
//! primary key of (token name, key). The key is claimed in the transaction that enqueues the
//! command, so two requests with one key never both enqueue: the second waits for the first
//! transaction and then finds its invocation. Keys are remembered for [`KEY_RETENTION`]: a sweeper
//! forgets older ones, so a key reused after that is a new request (as with other APIs that take
//! idempotency keys, clients retry within minutes, not days).

use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

/// How long an idempotency key is remembered.
pub const KEY_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How often the sweeper forgets expired keys.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Longest idempotency key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 200;

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new and now belongs to the invocation being created.
    Fresh,
    /// The key already belongs to this invocation (same request): replay it.
    Replay(String),
    /// The key already belongs to an invocation of a different request.
    Conflict(String),
}

/// The identity of a request, so a replay can be told from a reuse of the key for another one.
pub fn fingerprint(device_id: &str, action: &str, params: &Map<String, Json>, dry_run: bool) -> String {
    // serde_json's maps are ordered by key, so equal parameter objects serialize identically.
    let canonical = json!([device_id, action, params, dry_run]).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Why a key is refused, if it is.
pub fn invalid(key: &str) -> Option<String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Some(format!("an idempotency key needs 1 to {MAX_KEY_BYTES} bytes"));
    }
    key.chars().any(char::is_control).then(|| "an idempotency key cannot contain control characters".to_owned())
}

/// The new invocation a key would map to.
pub struct Request<'a> {
    /// Caller (token name).
    pub caller: &'a str,
    /// The caller's key.
    pub key: &'a str,
    /// Id of the invocation being created.
    pub action_id: &'a str,
    /// [`fingerprint`] of the request.
    pub fingerprint: &'a str,
    /// Target device.
    pub device_id: &'a str,
    /// Action.
    pub action: &'a str,
}

/// Claims `req.key` for `req.action_id` inside the caller's transaction.
pub async fn claim(conn: &mut PgConnection, req: &Request<'_>) -> Result<Claim, sqlx::Error> {
    let inserted: Option<(String,)> = sqlx::query_as(
        "INSERT INTO action_idempotency (token_name, idempotency_key, action_id, request_hash, device_id, action)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (token_name, idempotency_key) DO NOTHING RETURNING action_id",
    )
    .bind(req.caller)
    .bind(req.key)
    .bind(req.action_id)
    .bind(req.fingerprint)
    .bind(req.device_id)
    .bind(req.action)
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        return Ok(Claim::Fresh);
    }
    let (action_id, hash): (String, String) = sqlx::query_as(
        "SELECT action_id, request_hash FROM action_idempotency WHERE token_name = $1 AND idempotency_key = $2",
    )
    .bind(req.caller)
    .bind(req.key)
    .fetch_one(&mut *conn)
    .await?;
    Ok(if hash == req.fingerprint { Claim::Replay(action_id) } else { Claim::Conflict(action_id) })
}

/// Forgets the keys claimed more than `retention` ago; returns how many.
pub async fn purge_expired(pool: &PgPool, retention: std::time::Duration) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM action_idempotency WHERE created_at < now() - make_interval(secs => $1)")
        .bind(retention.as_secs_f64())
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Forgets expired keys every few minutes until `shutdown`.
pub fn spawn_sweeper(pool: PgPool, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match purge_expired(&pool, KEY_RETENTION).await {
                Ok(0) => {}
                Ok(n) => {
                    metrics::counter!("tessera_api_idempotency_keys_expired_total").increment(n);
                    tracing::info!(keys = n, "forgot expired idempotency keys");
                }
                Err(e) => tracing::warn!(error = %e, "cannot purge expired idempotency keys"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_key_order_and_tell_requests_apart() {
        let a: Map<String, Json> = serde_json::from_str(r#"{"r": 1, "g": 2, "b": 3}"#).unwrap();
        let b: Map<String, Json> = serde_json::from_str(r#"{"b": 3, "g": 2, "r": 1}"#).unwrap();
        assert_eq!(fingerprint("d", "set_color", &a, false), fingerprint("d", "set_color", &b, false));
        assert_ne!(fingerprint("d", "set_color", &a, false), fingerprint("d", "set_color", &a, true));
        assert_ne!(fingerprint("d", "set_color", &a, false), fingerprint("e", "set_color", &a, false));
    }

    #[test]
    fn keys_are_bounded() {
        assert!(invalid("retry-1").is_none());
        assert!(invalid("").is_some());
        assert!(invalid(&"k".repeat(MAX_KEY_BYTES + 1)).is_some());
        assert!(invalid("a\nb").is_some());
    }
}
