//! `tessera projector rebuild`: project every partition from offset 0 into a fresh schema, then
//! swap it in for the live one in a single transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tessera_codec::Topics;
use tessera_codec::messages::Codec;
use tessera_log::Log;
use tokio_util::sync::CancellationToken;

use crate::worker::{Kind, Worker};
use crate::{LIVE_SCHEMA, ProjectorConfig, ProjectorError, ensure_schema};

const REBUILD_SCHEMA: &str = "projection_rebuild";

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    /// Records projected.
    pub records: u64,
    /// Time taken.
    pub elapsed: Duration,
}

/// Rebuilds the projection from offset 0 and swaps it in for the live one.
pub async fn rebuild(
    topics: Topics,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    pool: PgPool,
) -> Result<RebuildReport, ProjectorError> {
    let started = Instant::now();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {REBUILD_SCHEMA} CASCADE")).execute(&pool).await?;
    ensure_schema(&pool, REBUILD_SCHEMA).await?;
    let config = ProjectorConfig { topics: topics.clone(), schema: REBUILD_SCHEMA.to_owned(), notify: false };
    let mut records = 0;
    for (topic, kind) in [(topics.device_events(), Kind::DeviceEvents), (topics.governance(), Kind::Governance)] {
        log.create_topic(&topic, topics.partitions_for(&topic)).await?;
        for partition in 0..log.partition_count(&topic).await? {
            let end = log.end_offset(&topic, partition).await?;
            records += end;
            let worker = Worker {
                topic: topic.clone(),
                partition,
                kind,
                config: config.clone(),
                log: log.clone(),
                codec: codec.clone(),
                pool: pool.clone(),
            };
            worker.run_until(CancellationToken::new(), Some(end)).await?;
        }
    }
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {LIVE_SCHEMA} CASCADE")).execute(&mut *tx).await?;
    sqlx::query(&format!("ALTER SCHEMA {REBUILD_SCHEMA} RENAME TO {LIVE_SCHEMA}")).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(RebuildReport { records, elapsed: started.elapsed() })
}
