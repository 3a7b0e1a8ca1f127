//! The parts of a run, each against a real `tessera serve` (or, for replay, its data directory).

pub mod fanout;
pub mod ingest;
pub mod latency;
pub mod replay;

use std::path::Path;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tessera_codec::Topics;

/// What every phase needs to start a server.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The `tessera` binary.
    pub tessera: &'a Path,
    /// Repository root.
    pub repo: &'a Path,
}

/// A small pool of our own on the database under test (to read the projector's offsets).
pub async fn connect(url: &str) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new().max_connections(2).acquire_timeout(Duration::from_secs(30)).connect(url).await?)
}

/// The next offset the projector will project, summed over the partitions of `device-events`:
/// the number of events it has committed to PostgreSQL.
pub async fn committed_events(pool: &PgPool) -> anyhow::Result<u64> {
    let (sum,): (i64,) = sqlx::query_as(
        "SELECT COALESCE(SUM(next_offset), 0)::bigint FROM projection.consumer_offsets WHERE topic = $1",
    )
    .bind(Topics::default().device_events())
    .fetch_one(pool)
    .await?;
    Ok(sum.max(0) as u64)
}

/// Records not yet through the pipeline: raw records the mapper has not mapped plus events the
/// projector has not committed, as `/metrics` reports them.
pub async fn backlog(server: &crate::server::Server) -> anyhow::Result<f64> {
    let text = server.metrics_text().await?;
    Ok(crate::prom::sum(&text, "tessera_mapper_lag_records", None)
        + crate::prom::sum(&text, "tessera_api_projector_lag_records", None))
}
