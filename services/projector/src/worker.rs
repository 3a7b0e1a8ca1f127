//! One projector worker: one partition of `device-events` or `governance`.

use std::sync::Arc;
use std::time::Instant;

use sqlx::PgPool;
use tessera_codec::messages::Codec;
use tessera_log::{DEFAULT_POLL_WAIT, Log, Record};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::apply::{Batch, apply_device_events, apply_governance};
use crate::{ProjectorConfig, ProjectorError};

/// Most records projected per transaction. A backlog is worked off in large transactions, which
/// spend fewer round trips, fsyncs, state upserts and notifications per event (a batch upserts
/// and notifies each changed device once); without a backlog a batch is whatever arrived since
/// the last one, so this does not delay anything.
const BATCH: usize = 5000;

/// Which topic a worker projects.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `device-events`.
    DeviceEvents,
    /// `governance`.
    Governance,
}

/// Projects one partition.
pub struct Worker {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: u32,
    /// What the topic holds.
    pub kind: Kind,
    /// Projector configuration.
    pub config: ProjectorConfig,
    /// The log.
    pub log: Arc<dyn Log>,
    /// Decoder.
    pub codec: Arc<Codec>,
    /// Database.
    pub pool: PgPool,
}

impl Worker {
    /// Projects until shutdown, or until the stored offset reaches `stop_at`.
    pub async fn run_until(self, shutdown: CancellationToken, stop_at: Option<u64>) -> Result<(), ProjectorError> {
        let span = tracing::info_span!("projector", topic = %self.topic, partition = self.partition, schema = %self.config.schema);
        async move {
            let mut next = self.stored_offset().await?;
            tracing::info!(from = next, "projecting");
            loop {
                if stop_at.is_some_and(|end| next >= end) || shutdown.is_cancelled() {
                    return Ok(());
                }
                let records = self.log.read(&self.topic, self.partition, next, BATCH).await?;
                if records.is_empty() {
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        r = self.log.wait_for(&self.topic, self.partition, next, DEFAULT_POLL_WAIT) => { r?; }
                    }
                    continue;
                }
                let started = Instant::now();
                next = self.project(next, &records).await?;
                metrics::histogram!("tessera_projector_batch_seconds").record(started.elapsed().as_secs_f64());
                metrics::counter!("tessera_projector_records_total", "topic" => self.topic.clone())
                    .increment(records.len() as u64);
                if let Ok(end) = self.log.end_offset(&self.topic, self.partition).await {
                    metrics::gauge!("tessera_projector_lag_records", "topic" => self.topic.clone())
                        .set(end.saturating_sub(next) as f64);
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn stored_offset(&self) -> Result<u64, ProjectorError> {
        let row: Option<(i64,)> = sqlx::query_as(&format!(
            "SELECT next_offset FROM {}.consumer_offsets WHERE topic = $1 AND partition = $2",
            self.config.schema
        ))
        .bind(&self.topic)
        .bind(self.partition as i32)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map_or(0, |(o,)| o.max(0) as u64))
    }

    /// Applies a batch read from offset `from` in one transaction; returns the offset to read next.
    async fn project(&self, from: u64, records: &[Record]) -> Result<u64, ProjectorError> {
        let schema = &self.config.schema;
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO {schema}.consumer_offsets (topic, partition, next_offset) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING"
        ))
        .bind(&self.topic)
        .bind(self.partition as i32)
        .execute(&mut *tx)
        .await?;
        // The row lock fences concurrent projectors of the same partition.
        let (stored,): (i64,) = sqlx::query_as(&format!(
            "SELECT next_offset FROM {schema}.consumer_offsets WHERE topic = $1 AND partition = $2 FOR UPDATE"
        ))
        .bind(&self.topic)
        .bind(self.partition as i32)
        .fetch_one(&mut *tx)
        .await?;
        let stored = stored.max(0) as u64;
        if from != stored {
            // Another projector moved the offset, or a rebuild swapped in one that went back:
            // read again from what is stored, so that a batch always starts at the stored offset.
            tx.rollback().await?;
            return Ok(stored);
        }
        if records.first().is_some_and(|r| r.offset > stored) {
            // Retention deleted records below the first one the log still has: they cannot be
            // projected by anyone, so the gap is logged and skipped rather than retried forever.
            let first = records.first().map_or(stored, |r| r.offset);
            metrics::counter!("tessera_projector_skipped_records_total").increment(first - stored);
            tracing::warn!(stored, first, "records below the log's first retained offset were never projected");
        }
        let fresh: Vec<&Record> = records.iter().collect();
        let Some(last) = fresh.last() else {
            tx.rollback().await?;
            return Ok(stored);
        };
        let next = last.offset + 1;
        let mut batch = Batch::new(schema, self.config.notify);
        match self.kind {
            Kind::DeviceEvents => apply_device_events(&mut tx, &mut batch, &self.codec, &fresh).await?,
            Kind::Governance => apply_governance(&mut tx, &mut batch, &self.codec, &fresh).await?,
        }
        sqlx::query(&format!(
            "UPDATE {schema}.consumer_offsets SET next_offset = $3 WHERE topic = $1 AND partition = $2"
        ))
        .bind(&self.topic)
        .bind(self.partition as i32)
        .bind(next as i64)
        .execute(&mut *tx)
        .await?;
        batch.notify(&mut tx).await?;
        tx.commit().await?;
        Ok(next)
    }
}
