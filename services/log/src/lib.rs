//! The event log: Tessera's system of record.
//!
//! Every role talks to the log through the [`Log`] trait. A log holds named topics, each split into a
//! fixed number of partitions; a partition is an append-only sequence of [`Record`]s numbered by
//! offset from 0. Appends are acknowledged only once durable; reads start at any offset; consumers
//! in a group share partitions and commit the offset of the next record they want.
//!
//! Backends are picked by URL (see [`open`]): `embedded:<dir>` is the durable on-disk log that
//! `tessera serve` uses by default; `kafka://host:port[,host:port]` is a Kafka cluster (cargo
//! feature `kafka`).
//!
//! Routing ([`partition_for_key`]) and naming rules ([`validate_topic_name`]) are shared by all
//! backends; the `contract-tests` feature exposes `contract`, the test suite every backend runs.

#[cfg(any(test, feature = "contract-tests"))]
pub mod contract;
mod embedded;
mod error;
#[cfg(feature = "kafka")]
mod kafka;
pub mod membership;
mod names;
mod partitioner;

use std::time::Duration;

use async_trait::async_trait;

pub use embedded::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, MAX_RECORD_BYTES_LIMIT};
pub use error::LogError;
#[cfg(feature = "kafka")]
pub use kafka::{KafkaLog, KafkaMembership, KafkaMembershipError, KafkaOptions, TopicCreator};
pub use names::{MAX_NAME_LEN, validate_group_name, validate_topic_name};
pub use partitioner::partition_for_key;

/// A record to append: the key routes it to a partition, the value is opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// Routing key; records with the same key land in the same partition, in order.
    pub key: Option<Vec<u8>>,
    /// The payload (for Tessera topics, Confluent-framed Avro).
    pub value: Vec<u8>,
    /// Producer-side timestamp in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// A record as stored in a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Topic the record belongs to.
    pub topic: String,
    /// Partition within the topic.
    pub partition: u32,
    /// Position of the record in its partition, starting at 0.
    pub offset: u64,
    /// Timestamp given at append time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Routing key.
    pub key: Option<Vec<u8>>,
    /// Payload.
    pub value: Vec<u8>,
}

/// Where an appended record was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Partition the record was routed to.
    pub partition: u32,
    /// Offset the record was given.
    pub offset: u64,
}

/// One log backend. All methods are safe to call concurrently from many tasks.
#[async_trait]
pub trait Log: Send + Sync + 'static {
    /// Creates `topic` with `partitions` partitions; does nothing if it already exists.
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), LogError>;

    /// Names of all topics.
    async fn topics(&self) -> Result<Vec<String>, LogError>;

    /// Number of partitions of `topic`.
    async fn partition_count(&self, topic: &str) -> Result<u32, LogError>;

    /// Appends records, routing each by its key, and returns once all of them are durable.
    /// The returned positions are in the order of `records`.
    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> Result<Vec<Position>, LogError>;

    /// Reads up to `max_records` records of one partition starting at `from`; returns an empty
    /// vector at the end of the partition (it never waits).
    ///
    /// If `from` lies below the first retained offset (retention deleted it), the read starts at
    /// the first retained record; the records carry their offsets, so the gap is visible. A
    /// `from` beyond the end offset fails with [`LogError::OffsetOutOfRange`]. A read may return
    /// fewer than `max_records` records even when more are available (it bounds its size).
    async fn read(&self, topic: &str, partition: u32, from: u64, max_records: usize) -> Result<Vec<Record>, LogError>;

    /// Offset the next appended record of the partition will get (the high-water mark).
    async fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError>;

    /// Waits until the partition's end offset is greater than `offset` or `timeout` passes;
    /// returns whether data is available. This is how consumers tail with low latency.
    async fn wait_for(&self, topic: &str, partition: u32, offset: u64, timeout: Duration) -> Result<bool, LogError>;

    /// Stores `next_offset` (the offset of the next record to consume) for a consumer group.
    async fn commit(&self, group: &str, topic: &str, partition: u32, next_offset: u64) -> Result<(), LogError>;

    /// The offset last committed by a consumer group, if any.
    async fn committed(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>, LogError>;
}

/// Opens a log backend from a URL: `embedded:<directory>`, or
/// `kafka://host:port[,host:port][?options]` (see [`KafkaOptions::from_url`]; needs the `kafka`
/// cargo feature, otherwise such a URL fails with [`LogError::InvalidConfig`]).
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Log>, LogError> {
    if let Some(dir) = url.strip_prefix("embedded:") {
        let log = EmbeddedLog::open(dir, EmbeddedOptions::default()).await?;
        return Ok(std::sync::Arc::new(log));
    }
    if url.starts_with("kafka://") {
        #[cfg(feature = "kafka")]
        return Ok(std::sync::Arc::new(KafkaLog::open(KafkaOptions::from_url(url)?).await?));
        #[cfg(not(feature = "kafka"))]
        return Err(LogError::InvalidConfig(format!(
            "{url:?} needs the Kafka backend, which this build leaves out (cargo feature `kafka`)"
        )));
    }
    Err(LogError::UnsupportedUrl(url.to_owned()))
}

/// Reads every partition of `topic` from `from` until the end known at call time; a helper for
/// replay tools and tests.
pub async fn read_all(log: &dyn Log, topic: &str, from: u64) -> Result<Vec<Record>, LogError> {
    let mut out = Vec::new();
    for partition in 0..log.partition_count(topic).await? {
        let end = log.end_offset(topic, partition).await?;
        let mut next = from;
        while next < end {
            let batch = log.read(topic, partition, next, 1024).await?;
            let Some(last) = batch.last() else { break };
            next = last.offset + 1;
            out.extend(batch);
        }
    }
    Ok(out)
}

/// Default time a consumer waits for new data before checking for shutdown.
pub const DEFAULT_POLL_WAIT: Duration = Duration::from_millis(250);
