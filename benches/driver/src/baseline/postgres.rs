//! PostgreSQL on its own: the rows the projector produced, written again directly, with the
//! projector's own statements (UNNEST upserts of the latest state, UNNEST inserts of history, the
//! offset update, one transaction per batch) into a scratch schema of the same database, minus
//! everything else the projector does (reading the log, decoding, notifying).

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;
use sqlx::PgPool;

/// Rows per transaction: the projector's batch.
pub const BATCH: usize = 2000;
/// The scratch schema, created with the projection's own DDL and dropped afterwards.
const SCHEMA: &str = "bench_baseline";

type Row = (String, String, DateTime<Utc>, String, Json, Option<f64>);

/// What the baseline measured.
#[derive(Debug, Clone, Serialize)]
pub struct UpsertThroughput {
    /// History rows written (each also upserts its device's latest state).
    pub rows: u64,
    /// Transactions.
    pub transactions: u64,
    /// Time taken, seconds.
    pub seconds: f64,
    /// Rows per second.
    pub rows_per_s: f64,
    /// Rows per transaction.
    pub batch: usize,
}

/// Writes up to `max` rows of `projection.state_history` (in the order they were observed)
/// again into a scratch schema and measures how fast.
pub async fn upsert_rows(pool: &PgPool, max: u64) -> anyhow::Result<UpsertThroughput> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT device_id, capability, observed_at, event_id, value, num FROM projection.state_history
         ORDER BY observed_at, event_id LIMIT $1",
    )
    .bind(max as i64)
    .fetch_all(pool)
    .await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")).execute(pool).await?;
    tessera_projector::ensure_schema(pool, SCHEMA).await?;
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut next_offset = 0i64;
    let mut transactions = 0;
    for chunk in rows.chunks(BATCH) {
        next_offset += chunk.len() as i64;
        write_batch(&mut conn, chunk, next_offset).await?;
        transactions += 1;
    }
    let seconds = started.elapsed().as_secs_f64().max(f64::EPSILON);
    drop(conn);
    sqlx::query(&format!("DROP SCHEMA {SCHEMA} CASCADE")).execute(pool).await?;
    Ok(UpsertThroughput {
        rows: rows.len() as u64,
        transactions,
        seconds,
        rows_per_s: rows.len() as f64 / seconds,
        batch: BATCH,
    })
}

/// One projector-shaped transaction.
async fn write_batch(conn: &mut sqlx::PgConnection, rows: &[Row], next_offset: i64) -> anyhow::Result<()> {
    let mut latest: HashMap<(&str, &str), (usize, &Row)> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        latest.insert((&row.0, &row.1), (i, row));
    }
    let base = next_offset - rows.len() as i64;
    let (mut devices, mut caps, mut values, mut ats, mut offsets) = (vec![], vec![], vec![], vec![], vec![]);
    for (i, row) in latest.into_values() {
        devices.push(row.0.clone());
        caps.push(row.1.clone());
        values.push(row.4.clone());
        ats.push(row.2);
        offsets.push(base + i as i64);
    }
    let mut tx = sqlx::Connection::begin(conn).await?;
    sqlx::query(&tessera_projector::upsert_state_sql(SCHEMA))
        .bind(devices)
        .bind(caps)
        .bind(values)
        .bind(ats)
        .bind(offsets)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&tessera_projector::insert_history_sql(SCHEMA))
        .bind(rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.3.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.4.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.5).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO {SCHEMA}.consumer_offsets (topic, partition, next_offset) VALUES ('baseline', 0, $1)
         ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset"
    ))
    .bind(next_offset)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
