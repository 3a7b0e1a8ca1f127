//! Offline, on the ingest phase's data directory once `serve` has stopped: a full projector
//! rebuild beside reading the log alone, then the ingest baselines (the log's own append rate and
//! PostgreSQL's own upsert rate on the same records and rows). The embedded PostgreSQL is started
//! from the same cluster directory with the same durable settings `serve` uses.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use tessera_codec::messages::Codec;
use tessera_codec::{SchemaRegistry, Topics};
use tessera_embedded_postgres::{EmbeddedPostgres, PgOptions};
use tessera_log::{EmbeddedLog, EmbeddedOptions, Log};

use crate::baseline::log::{LogThroughput, append, read_all, read_topic};
use crate::baseline::postgres::{UpsertThroughput, upsert_rows};

/// The replay figure and its baseline.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayResult {
    /// Records the rebuild projected (`device-events` and `governance`, from offset 0).
    pub events: u64,
    /// Time the rebuild took, seconds (from dropping the scratch schema to swapping it in).
    pub seconds: f64,
    /// Events per second.
    pub events_per_s: f64,
    /// Baseline: reading every record of `device-events` alone.
    pub baseline_log_read: LogThroughput,
}

/// The ingest baselines.
#[derive(Debug, Clone, Serialize)]
pub struct IngestBaselines {
    /// The log appending the ingest's own encoded raw records, fsync on.
    pub log_append: LogThroughput,
    /// PostgreSQL upserting the ingest's own rows.
    pub postgres_upsert: UpsertThroughput,
}

/// Runs the rebuild and the baselines; `max_rows` bounds the baselines' sizes.
pub async fn run(data_dir: &Path, max_rows: u64) -> anyhow::Result<(ReplayResult, IngestBaselines)> {
    let topics = Topics::default();
    let pg = EmbeddedPostgres::start(&data_dir.join("postgres"), &PgOptions::default()).await?;
    let result = measure(data_dir, &topics, pg.url(), max_rows).await;
    pg.stop().await;
    result
}

async fn measure(
    data_dir: &Path,
    topics: &Topics,
    url: &str,
    max_rows: u64,
) -> anyhow::Result<(ReplayResult, IngestBaselines)> {
    let pool = PgPoolOptions::new().max_connections(4).connect(url).await?;
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(data_dir.join("log"), EmbeddedOptions::default()).await?);

    tracing::info!("replay: reading device-events alone");
    let baseline_log_read = read_all(log.as_ref(), &topics.device_events()).await?;
    tracing::info!(records = baseline_log_read.records, "replay: rebuilding the projection");
    let registry = Arc::new(SchemaRegistry::open(log.clone(), topics).await?);
    let codec = Arc::new(Codec::open(registry, topics).await?);
    let report = tessera_projector::rebuild(topics.clone(), log.clone(), codec, pool.clone()).await?;
    let seconds = report.elapsed.as_secs_f64().max(f64::EPSILON);
    let replay = ReplayResult {
        events: report.records,
        seconds,
        events_per_s: report.records as f64 / seconds,
        baseline_log_read,
    };

    tracing::info!(max_rows, "baselines: log append");
    let raw_topic = topics.raw("loadgen");
    let records = read_topic(log.as_ref(), &raw_topic, max_rows).await?;
    let log_append = append(&data_dir.join("bench-log"), &raw_topic, records).await?;
    tracing::info!(max_rows, "baselines: PostgreSQL upsert");
    let postgres_upsert = upsert_rows(&pool, max_rows).await?;
    pool.close().await;
    Ok((replay, IngestBaselines { log_append, postgres_upsert }))
}
