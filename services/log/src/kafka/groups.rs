//! Consumer-group offsets through Kafka's group coordinator: one consumer per group (created on
//! first use, auto-commit off), committing with OffsetCommit and reading with OffsetFetch. The
//! consumers never subscribe, so commits are those of a "simple" consumer group (generation -1),
//! which the coordinator accepts while the group has no subscribed members.
//!
//! Every method blocks; callers run them on the blocking pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::cluster::kafka_error;
use super::context::LogContext;
use super::options::KafkaOptions;
use crate::LogError;

/// The group consumers, by group name.
pub(super) struct Groups {
    consumers: Mutex<HashMap<String, Arc<BaseConsumer<LogContext>>>>,
    opts: KafkaOptions,
    timeout: Duration,
}

impl Groups {
    /// No consumers yet.
    pub(super) fn new(opts: &KafkaOptions) -> Groups {
        Groups { consumers: Mutex::new(HashMap::new()), opts: opts.clone(), timeout: opts.request_timeout }
    }

    fn consumer(&self, group: &str) -> Result<Arc<BaseConsumer<LogContext>>, LogError> {
        let mut consumers = self.consumers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(consumer) = consumers.get(group) {
            return Ok(consumer.clone());
        }
        let consumer: BaseConsumer<LogContext> = self
            .opts
            .group(group)
            .create_with_context(LogContext)
            .map_err(|e| kafka_error(format!("create consumer of group {group}"), e))?;
        let consumer = Arc::new(consumer);
        consumers.insert(group.to_owned(), consumer.clone());
        Ok(consumer)
    }

    /// Commits `next_offset` for the group and waits for the coordinator's answer.
    pub(super) fn commit(&self, group: &str, topic: &str, partition: u32, next_offset: u64) -> Result<(), LogError> {
        let operation = || format!("commit of group {group} on {topic}/{partition}");
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(topic, partition as i32, Offset::Offset(next_offset as i64))
            .map_err(|e| kafka_error(operation(), e))?;
        self.consumer(group)?.commit(&offsets, CommitMode::Sync).map_err(|e| kafka_error(operation(), e))
    }

    /// The group's committed offset, `None` if it never committed one.
    pub(super) fn committed(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>, LogError> {
        let operation = || format!("committed offset of group {group} on {topic}/{partition}");
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition(topic, partition as i32);
        let found =
            self.consumer(group)?.committed_offsets(wanted, self.timeout).map_err(|e| kafka_error(operation(), e))?;
        let Some(element) = found.find_partition(topic, partition as i32) else { return Ok(None) };
        element.error().map_err(|e| kafka_error(operation(), e))?;
        Ok(match element.offset() {
            Offset::Offset(offset) if offset >= 0 => Some(offset as u64),
            _ => None,
        })
    }
}
