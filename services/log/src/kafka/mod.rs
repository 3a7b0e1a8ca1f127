//! The Kafka backend: the [`Log`] trait on a Kafka-protocol cluster through librdkafka (rdkafka).
//! Enabled by the `kafka` cargo feature; opened by [`crate::open`] with
//! `kafka://host:port[,host:port][?options]` (see [`KafkaOptions::from_url`]).
//!
//! How each trait method maps to Kafka:
//!
//! | trait method | Kafka |
//! |---|---|
//! | `create_topic(t, n)` | CreateTopics (admin API) with `n` partitions and the configured replication factor; `TOPIC_ALREADY_EXISTS` is success; then Metadata until every partition has a leader |
//! | `topics()` | Metadata for all topics, without internal `__` topics |
//! | `partition_count(t)` | Metadata of `t` (cached: partitions are never removed) |
//! | `append(t, records)` | one idempotent producer (`enable.idempotence=true`, `acks=all`) per log; each record is sent to the explicit partition [`crate::partition_for_key`] picks, so both backends route alike; returns once every record's delivery report (the broker's ack, carrying its offset) arrived |
//! | `read(t, p, from, n)` | ListOffsets (watermarks) to bound `from`, unless a known high-water mark already covers it; then Fetch through a cached read cursor: a consumer `assign`ed to `t/p` at `from`, reused by the next read from where this one stopped |
//! | `end_offset(t, p)` | ListOffsets: the high-water mark (last offset acknowledged by all in-sync replicas, plus one) |
//! | `wait_for(t, p, o, timeout)` | ListOffsets; if the high-water mark is not past `o`, a long-polling Fetch on the cursor at `o`; the first record to arrive ends the wait and stays buffered for the next `read` |
//! | `commit(g, t, p, o)` | OffsetCommit to `g`'s group coordinator from a consumer with `group.id=g` and auto-commit off, synchronous |
//! | `committed(g, t, p)` | OffsetFetch from `g`'s group coordinator |
//!
//! Differences from the embedded backend, inherent to Kafka: a record's timestamp of exactly 0 is
//! replaced by the append time (librdkafka reads 0 as "now"); a failed `append` may have stored
//! some of its records (each is still stored at most once, in order); retention and compaction
//! are the topic's broker-side configuration.

mod cluster;
mod context;
mod cursors;
mod groups;
mod membership;
mod options;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

pub use self::cluster::TopicCreator;
pub use self::membership::{KafkaMembership, KafkaMembershipError};
pub use self::options::KafkaOptions;

use self::cluster::{Cluster, kafka_error};
use self::context::LogContext;
use self::cursors::CursorPool;
use self::groups::Groups;
use crate::embedded::MAX_PARTITIONS;
use crate::names::{validate_group_name, validate_topic_name};
use crate::{Log, LogError, NewRecord, Position, Record, partition_for_key};

/// Most bytes of record data one `read` returns (it may return fewer records than asked).
const MAX_READ_BYTES: usize = 4 << 20;

/// The Kafka log backend. Share it behind an `Arc`; all methods take `&self`.
pub struct KafkaLog {
    producer: FutureProducer<LogContext>,
    cluster: Arc<Cluster>,
    cursors: Arc<CursorPool>,
    groups: Arc<Groups>,
    opts: KafkaOptions,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog").field("bootstrap_servers", &self.opts.bootstrap_servers).finish_non_exhaustive()
    }
}

/// Runs blocking librdkafka work on the blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, LogError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, LogError> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| kafka_error("blocking task", e))?
}

impl KafkaLog {
    /// Creates the clients and checks the cluster answers (a metadata request within
    /// `request_timeout`).
    pub async fn open(opts: KafkaOptions) -> Result<KafkaLog, LogError> {
        let span = tracing::info_span!("tessera_log.kafka.open", brokers = %opts.bootstrap_servers);
        let producer: FutureProducer<LogContext> =
            opts.producer().create_with_context(LogContext).map_err(|e| kafka_error("create producer", e))?;
        let cluster = Arc::new(Cluster::new(&opts)?);
        let probe = cluster.clone();
        let topics = blocking(move || probe.topic_names()).await?;
        span.in_scope(|| tracing::info!(topics = topics.len(), "connected to Kafka"));
        Ok(KafkaLog {
            producer,
            cluster,
            cursors: Arc::new(CursorPool::new(&opts)),
            groups: Arc::new(Groups::new(&opts)),
            opts,
        })
    }

    /// Creates topics with `creator` instead of the CreateTopics admin API (for clusters without
    /// it, such as librdkafka's mock cluster).
    pub fn with_topic_creator(self, creator: TopicCreator) -> KafkaLog {
        self.cluster.set_creator(creator);
        self
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &KafkaOptions {
        &self.opts
    }

    async fn partition_count_of(&self, topic: &str) -> Result<u32, LogError> {
        if let Some(count) = self.cluster.cached_count(topic) {
            return Ok(count);
        }
        let cluster = self.cluster.clone();
        let topic = topic.to_owned();
        blocking(move || cluster.partition_count(&topic)).await
    }

    async fn check_partition(&self, topic: &str, partition: u32) -> Result<(), LogError> {
        let partitions = self.partition_count_of(topic).await?;
        if partition >= partitions {
            return Err(LogError::UnknownPartition { topic: topic.to_owned(), partition, partitions });
        }
        Ok(())
    }

    /// Hands every record to the producer (waiting while its queue is full) and returns the
    /// delivery futures in record order.
    async fn enqueue(
        &self,
        topic: &str,
        records: &[NewRecord],
        partitions: u32,
    ) -> Result<Vec<(u32, rdkafka::producer::DeliveryFuture)>, LogError> {
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let partition = partition_for_key(record.key.as_deref(), partitions);
            loop {
                let mut message = FutureRecord::<[u8], [u8]>::to(topic)
                    .partition(partition as i32)
                    .payload(&record.value)
                    .timestamp(record.timestamp_ms);
                if let Some(key) = &record.key {
                    message = message.key(key);
                }
                match self.producer.send_result(message) {
                    Ok(delivery) => {
                        deliveries.push((partition, delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // Backpressure: librdkafka's queue drains as the broker acknowledges.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(kafka_error(format!("append to {topic}/{partition}"), e)),
                }
            }
        }
        Ok(deliveries)
    }
}

/// How long a read waits for each record after the first one that it knows exists (below the
/// high-water mark) before returning what it has.
const NEXT_RECORD_WAIT: Duration = Duration::from_millis(500);

/// Reads up to `max_records` from `from` towards `end`, a high-water mark the caller knows is
/// beyond `from`: waits (up to `timeout`) for the first record, then takes the records up to
/// `end` as they are fetched, stopping early at the size bound.
fn read_from(
    cursors: &CursorPool,
    topic: &str,
    partition: u32,
    (from, end): (u64, u64),
    max_records: usize,
    timeout: Duration,
) -> Result<Vec<Record>, LogError> {
    let mut cursor = cursors.take(topic, partition, from)?;
    let result = (|| {
        cursor.position(topic, partition, from)?;
        let Some(first) = cursor.take(timeout)? else {
            return Err(kafka_error(
                format!("read {topic}/{partition} from {from}"),
                format!("no record arrived within {timeout:?} although the high-water mark is {end}"),
            ));
        };
        let mut bytes = first.value.len();
        let mut out = vec![first];
        while out.len() < max_records && bytes < MAX_READ_BYTES {
            // Records known to exist are worth a short wait; past `end`, only what is already here.
            let known = out.last().is_some_and(|r| r.offset + 1 < end);
            let wait = if known { NEXT_RECORD_WAIT } else { Duration::ZERO };
            let Some(record) = cursor.take(wait)? else { break };
            bytes += record.value.len() + record.key.as_ref().map_or(0, Vec::len);
            out.push(record);
        }
        Ok(out)
    })();
    if result.is_err() {
        cursor.invalidate();
    }
    cursors.give_back(cursor);
    result
}

/// Waits on the cursor at `offset` for a record at `offset` or later; keeps it for the next read.
fn wait_on_cursor(
    cursors: &CursorPool,
    topic: &str,
    partition: u32,
    offset: u64,
    high: u64,
    timeout: Duration,
) -> Result<bool, LogError> {
    // Beyond the high-water mark a fetch would be out of range (and reset): start at the mark
    // and skip up to `offset`.
    let start = offset.min(high);
    let mut cursor = cursors.take(topic, partition, start)?;
    let deadline = Instant::now() + timeout;
    let result = (|| {
        cursor.position(topic, partition, start)?;
        loop {
            match cursor.take(deadline.saturating_duration_since(Instant::now()))? {
                Some(record) if record.offset >= offset => {
                    cursor.unread(record);
                    return Ok(true);
                }
                Some(_) => continue,
                None => return Ok(false),
            }
        }
    })();
    if result.is_err() {
        cursor.invalidate();
    }
    cursors.give_back(cursor);
    result
}

#[async_trait]
impl Log for KafkaLog {
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), LogError> {
        validate_topic_name(topic)?;
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(LogError::InvalidPartitionCount(partitions));
        }
        let cluster = self.cluster.clone();
        let name = topic.to_owned();
        if blocking(move || cluster.probe_created(&name)).await?.is_some() {
            return Ok(());
        }
        match self.cluster.creator() {
            Some(creator) => {
                let name = topic.to_owned();
                blocking(move || creator(&name, partitions)).await?;
            }
            None => self.cluster.create_with_admin(topic, partitions).await?,
        }
        let deadline = Instant::now() + self.opts.request_timeout;
        loop {
            let cluster = self.cluster.clone();
            let name = topic.to_owned();
            if let Some(count) = blocking(move || cluster.probe_created(&name)).await? {
                if count != partitions {
                    tracing::warn!(
                        topic,
                        existing = count,
                        requested = partitions,
                        "topic exists with another partition count"
                    );
                }
                tracing::info!(topic, partitions = count, "topic ready");
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(kafka_error(format!("create topic {topic}"), "not every partition has a leader in time"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn topics(&self) -> Result<Vec<String>, LogError> {
        let cluster = self.cluster.clone();
        blocking(move || cluster.topic_names()).await
    }

    async fn partition_count(&self, topic: &str) -> Result<u32, LogError> {
        self.partition_count_of(topic).await
    }

    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> Result<Vec<Position>, LogError> {
        let partitions = self.partition_count_of(topic).await?;
        let limit = self.opts.max_record_bytes;
        for record in &records {
            let size = record.key.as_ref().map_or(0, Vec::len) + record.value.len();
            if size > limit {
                return Err(LogError::RecordTooLarge { size, limit });
            }
        }
        let started = Instant::now();
        let deliveries = self.enqueue(topic, &records, partitions).await?;
        let mut positions = Vec::with_capacity(deliveries.len());
        let mut failure = None;
        // Await every delivery, even after a failure, so none is left in flight unobserved.
        for (partition, delivery) in deliveries {
            let operation = || format!("append to {topic}/{partition}");
            match delivery.await {
                Ok(Ok(delivery)) => {
                    let offset = delivery.offset.max(0) as u64;
                    self.cluster.learn_high(topic, partition, offset + 1);
                    positions.push(Position { partition, offset });
                }
                Ok(Err((e, _))) => failure = failure.or(Some(kafka_error(operation(), e))),
                Err(_) => failure = failure.or(Some(kafka_error(operation(), "the producer was dropped"))),
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        metrics::counter!("tessera_log_appended_records_total", "topic" => topic.to_owned())
            .increment(positions.len() as u64);
        metrics::histogram!("tessera_log_kafka_append_seconds").record(started.elapsed().as_secs_f64());
        Ok(positions)
    }

    async fn read(&self, topic: &str, partition: u32, from: u64, max_records: usize) -> Result<Vec<Record>, LogError> {
        self.check_partition(topic, partition).await?;
        if max_records == 0 {
            return Ok(Vec::new());
        }
        let (cluster, cursors) = (self.cluster.clone(), self.cursors.clone());
        let topic = topic.to_owned();
        let timeout = self.opts.request_timeout;
        blocking(move || {
            let mut end = cluster.high_hint(&topic, partition);
            if from >= end {
                let start;
                (start, end) = cluster.watermarks(&topic, partition)?;
                if from > end {
                    return Err(LogError::OffsetOutOfRange { topic, partition, offset: from, start, end });
                }
                if from == end {
                    return Ok(Vec::new());
                }
            }
            let records = read_from(&cursors, &topic, partition, (from, end), max_records, timeout)?;
            if let Some(last) = records.last() {
                cluster.learn_high(&topic, partition, last.offset + 1);
            }
            Ok(records)
        })
        .await
    }

    async fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.check_partition(topic, partition).await?;
        let cluster = self.cluster.clone();
        let topic = topic.to_owned();
        blocking(move || Ok(cluster.watermarks(&topic, partition)?.1)).await
    }

    async fn wait_for(&self, topic: &str, partition: u32, offset: u64, timeout: Duration) -> Result<bool, LogError> {
        self.check_partition(topic, partition).await?;
        let (cluster, cursors) = (self.cluster.clone(), self.cursors.clone());
        let topic = topic.to_owned();
        blocking(move || {
            if cluster.high_hint(&topic, partition) > offset {
                return Ok(true);
            }
            let (_, high) = cluster.watermarks(&topic, partition)?;
            if high > offset {
                return Ok(true);
            }
            if timeout.is_zero() {
                return Ok(false);
            }
            wait_on_cursor(&cursors, &topic, partition, offset, high, timeout)
        })
        .await
    }

    async fn commit(&self, group: &str, topic: &str, partition: u32, next_offset: u64) -> Result<(), LogError> {
        validate_group_name(group)?;
        self.check_partition(topic, partition).await?;
        let groups = self.groups.clone();
        let (group, topic) = (group.to_owned(), topic.to_owned());
        blocking(move || groups.commit(&group, &topic, partition, next_offset)).await
    }

    async fn committed(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>, LogError> {
        validate_group_name(group)?;
        self.check_partition(topic, partition).await?;
        let groups = self.groups.clone();
        let (group, topic) = (group.to_owned(), topic.to_owned());
        blocking(move || groups.committed(&group, &topic, partition)).await
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        // Closing consumers waits for librdkafka; do it off the async runtime's threads.
        let cursors = self.cursors.clone();
        std::thread::spawn(move || cursors.clear());
    }
}
