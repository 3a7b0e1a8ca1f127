//! What the Kafka backend knows about the cluster: topic metadata (partition counts, cached, since
//! Tessera never shrinks a topic), high-water marks (queried, plus hints learnt from appends and
//! reads so that sequential reads need no round trip), and topic creation through the admin API.
//!
//! Every method here blocks on librdkafka; callers run them on the blocking pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};

use super::context::LogContext;
use super::options::KafkaOptions;
use crate::LogError;

/// Creates a topic some other way than the CreateTopics admin API, for clusters that lack it
/// (librdkafka's mock cluster creates topics through its own API). Called on a blocking thread
/// with the topic name and partition count; returning `Ok` means the topic exists.
pub type TopicCreator = Arc<dyn Fn(&str, u32) -> Result<(), LogError> + Send + Sync>;

/// Metadata, watermarks and topic creation.
pub(super) struct Cluster {
    client: BaseConsumer<LogContext>,
    admin: AdminClient<LogContext>,
    creator: Mutex<Option<TopicCreator>>,
    partitions: Mutex<HashMap<String, u32>>,
    high: Mutex<HashMap<(String, u32), u64>>,
    timeout: Duration,
    replication_factor: i32,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wraps a librdkafka error as [`LogError::Kafka`].
pub(super) fn kafka_error(operation: impl Into<String>, error: impl std::fmt::Display) -> LogError {
    LogError::Kafka { operation: operation.into(), detail: error.to_string() }
}

impl Cluster {
    /// Connects the metadata and admin clients (librdkafka connects lazily; nothing is sent yet).
    pub(super) fn new(opts: &KafkaOptions) -> Result<Cluster, LogError> {
        let client = opts.metadata().create_with_context(LogContext).map_err(|e| kafka_error("create client", e))?;
        let admin =
            opts.metadata().create_with_context(LogContext).map_err(|e| kafka_error("create admin client", e))?;
        Ok(Cluster {
            client,
            admin,
            creator: Mutex::new(None),
            partitions: Mutex::new(HashMap::new()),
            high: Mutex::new(HashMap::new()),
            timeout: opts.request_timeout,
            replication_factor: opts.replication_factor,
        })
    }

    /// Replaces the CreateTopics admin call by `creator`.
    pub(super) fn set_creator(&self, creator: TopicCreator) {
        *lock(&self.creator) = Some(creator);
    }

    /// Partition count of `topic` if it is cached (no I/O).
    pub(super) fn cached_count(&self, topic: &str) -> Option<u32> {
        lock(&self.partitions).get(topic).copied()
    }

    /// Partition count of `topic` from the cache, asking the cluster on a miss.
    pub(super) fn partition_count(&self, topic: &str) -> Result<u32, LogError> {
        if let Some(count) = lock(&self.partitions).get(topic) {
            return Ok(*count);
        }
        let count = self.fetch_partitions(topic)?.ok_or_else(|| LogError::UnknownTopic(topic.to_owned()))?;
        lock(&self.partitions).insert(topic.to_owned(), count);
        Ok(count)
    }

    /// The partition count the cluster reports for `topic` with a leader for every partition, or
    /// `None` if the topic does not exist.
    fn fetch_partitions(&self, topic: &str) -> Result<Option<u32>, LogError> {
        let metadata = match self.client.fetch_metadata(Some(topic), self.timeout) {
            Ok(metadata) => metadata,
            Err(KafkaError::MetadataFetch(
                RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
            )) => {
                return Ok(None);
            }
            Err(e) => return Err(kafka_error(format!("metadata of {topic}"), e)),
        };
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
        match found.error() {
            None => {}
            Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => return Ok(None),
            Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE) if found.partitions().is_empty() => {
                return Ok(None);
            }
            Some(other) => {
                return Err(kafka_error(format!("metadata of {topic}"), RDKafkaErrorCode::from(other)));
            }
        }
        if found.partitions().is_empty() || found.partitions().iter().any(|p| p.leader() < 0) {
            // Still being created: not usable yet.
            return Ok(None);
        }
        Ok(Some(found.partitions().len() as u32))
    }

    /// Names of the cluster's topics, without internal ones (`__consumer_offsets`, ...).
    pub(super) fn topic_names(&self) -> Result<Vec<String>, LogError> {
        let metadata = self.client.fetch_metadata(None, self.timeout).map_err(|e| kafka_error("list topics", e))?;
        let mut names: Vec<String> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.name().starts_with("__"))
            .map(|t| t.name().to_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The creator set by [`Cluster::set_creator`], if any.
    pub(super) fn creator(&self) -> Option<TopicCreator> {
        lock(&self.creator).clone()
    }

    /// Asks the cluster whether `topic` is ready with every partition led; caches the count.
    pub(super) fn probe_created(&self, topic: &str) -> Result<Option<u32>, LogError> {
        let found = self.fetch_partitions(topic)?;
        if let Some(count) = found {
            lock(&self.partitions).insert(topic.to_owned(), count);
        }
        Ok(found)
    }

    /// Creates `topic` with the CreateTopics admin API; an existing topic is fine.
    pub(super) async fn create_with_admin(&self, topic: &str, partitions: u32) -> Result<(), LogError> {
        let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(self.replication_factor));
        let options = AdminOptions::new().operation_timeout(Some(self.timeout)).request_timeout(Some(self.timeout));
        let results = self
            .admin
            .create_topics([&new], &options)
            .await
            .map_err(|e| kafka_error(format!("create topic {topic}"), e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(kafka_error(format!("create topic {topic}"), code)),
            }
        }
        Ok(())
    }

    /// `(first retained offset, high-water mark)` of a partition, asked from its leader.
    pub(super) fn watermarks(&self, topic: &str, partition: u32) -> Result<(u64, u64), LogError> {
        let (low, high) = self
            .client
            .fetch_watermarks(topic, partition as i32, self.timeout)
            .map_err(|e| kafka_error(format!("watermarks of {topic}/{partition}"), e))?;
        let (low, high) = (low.max(0) as u64, high.max(0) as u64);
        self.learn_high(topic, partition, high);
        Ok((low, high))
    }

    /// A lower bound of the partition's high-water mark known without asking (0 if unknown).
    pub(super) fn high_hint(&self, topic: &str, partition: u32) -> u64 {
        lock(&self.high).get(&(topic.to_owned(), partition)).copied().unwrap_or(0)
    }

    /// Records that the partition's high-water mark is at least `high` (it never goes down).
    pub(super) fn learn_high(&self, topic: &str, partition: u32, high: u64) {
        let mut map = lock(&self.high);
        let entry = map.entry((topic.to_owned(), partition)).or_insert(0);
        *entry = (*entry).max(high);
    }
}
