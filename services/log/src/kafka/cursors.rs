//! Read cursors: a consumer assigned to one partition at a known position, kept between calls.
//!
//! A tailing reader calls `read(from)`, gets records up to `n`, then `read(n + 1)` or
//! `wait_for(n + 1)`: the cursor whose position is `n + 1` is reused, so the consumer keeps its
//! fetch session and prefetched records and no seek happens. A record a `wait_for` received is
//! kept in the cursor and handed out by the next `read`. Cursors are pooled per
//! (topic, partition); a read at another position repositions (re-assigns) an idle cursor of that
//! partition; beyond `max_idle` idle cursors the least recently used is closed.
//!
//! Every method blocks (librdkafka polls); callers run them on the blocking pool.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::cluster::kafka_error;
use super::context::LogContext;
use super::options::KafkaOptions;
use crate::{LogError, Record};

/// One consumer assigned to (at most) one partition.
pub(super) struct Cursor {
    consumer: BaseConsumer<LogContext>,
    topic: String,
    partition: u32,
    /// Offset after the last record taken from the consumer; `None` until assigned.
    next: Option<u64>,
    /// Records taken from the consumer but not yet handed out (by `wait_for`).
    pending: VecDeque<Record>,
    last_used: Instant,
}

impl Cursor {
    /// Offset of the next record this cursor hands out, if it is assigned.
    fn at(&self) -> Option<u64> {
        self.pending.front().map(|r| r.offset).or(self.next)
    }

    /// Whether the cursor hands out `topic/partition` from `from` without repositioning.
    fn is_at(&self, topic: &str, partition: u32, from: u64) -> bool {
        self.topic == topic && self.partition == partition && self.at() == Some(from)
    }

    /// Points the cursor at `from` of `topic/partition` (a no-op when already there).
    pub(super) fn position(&mut self, topic: &str, partition: u32, from: u64) -> Result<(), LogError> {
        if self.is_at(topic, partition, from) {
            return Ok(());
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition as i32, Offset::Offset(from as i64))
            .map_err(|e| kafka_error(format!("assign {topic}/{partition}"), e))?;
        // Re-assigning drops whatever the consumer had prefetched for the old position (librdkafka
        // versions its fetch queue), so nothing stale is delivered afterwards; `take` still skips
        // anything below the new position as a second line of defence.
        self.consumer.assign(&assignment).map_err(|e| kafka_error(format!("assign {topic}/{partition}"), e))?;
        if self.topic != topic {
            topic.clone_into(&mut self.topic);
        }
        self.partition = partition;
        self.next = Some(from);
        self.pending.clear();
        Ok(())
    }

    /// The next record at or after the cursor's position, waiting up to `timeout` for it.
    pub(super) fn take(&mut self, timeout: Duration) -> Result<Option<Record>, LogError> {
        if let Some(record) = self.pending.pop_front() {
            return Ok(Some(record));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let message = match self.consumer.poll(remaining) {
                None => return Ok(None),
                Some(Ok(message)) => message,
                Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                    return Err(kafka_error(format!("read {}/{}", self.topic, self.partition), code));
                }
                Some(Err(e)) => {
                    // Transient (a broker connection dropped, a leader moved): librdkafka retries.
                    tracing::warn!(topic = %self.topic, partition = self.partition, error = %e, "consumer error");
                    if remaining.is_zero() {
                        return Ok(None);
                    }
                    continue;
                }
            };
            let offset = message.offset();
            let below = self.next.is_some_and(|next| (offset as u64) < next);
            if offset < 0 || message.topic() != self.topic || message.partition() != self.partition as i32 || below {
                continue; // left over from before a reposition
            }
            let record = Record {
                topic: self.topic.clone(),
                partition: self.partition,
                offset: offset as u64,
                timestamp_ms: message.timestamp().to_millis().unwrap_or(-1),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            };
            self.next = Some(record.offset + 1);
            return Ok(Some(record));
        }
    }

    /// Puts a record back so the next `take` returns it first.
    pub(super) fn unread(&mut self, record: Record) {
        self.pending.push_front(record);
    }

    /// Forgets the position, so the next use re-assigns (after an error the consumer's state is
    /// not trusted).
    pub(super) fn invalidate(&mut self) {
        self.next = None;
        self.pending.clear();
    }
}

/// Idle cursors by (topic, partition).
pub(super) struct CursorPool {
    idle: Mutex<HashMap<(String, u32), Vec<Cursor>>>,
    max_idle: usize,
    opts: KafkaOptions,
    opened: AtomicUsize,
}

impl CursorPool {
    /// An empty pool creating consumers from `opts`.
    pub(super) fn new(opts: &KafkaOptions) -> CursorPool {
        CursorPool {
            idle: Mutex::new(HashMap::new()),
            max_idle: opts.max_idle_cursors,
            opts: opts.clone(),
            opened: AtomicUsize::new(0),
        }
    }

    /// A cursor for `topic/partition`: one already at `from` if there is one, else an idle one of
    /// the partition, else a new consumer. Give it back with [`CursorPool::give_back`].
    pub(super) fn take(&self, topic: &str, partition: u32, from: u64) -> Result<Cursor, LogError> {
        {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(list) = idle.get_mut(&(topic.to_owned(), partition))
                && !list.is_empty()
            {
                let index = list.iter().position(|c| c.is_at(topic, partition, from)).unwrap_or(list.len() - 1);
                return Ok(list.swap_remove(index));
            }
        }
        let consumer: BaseConsumer<LogContext> =
            self.opts.reader().create_with_context(LogContext).map_err(|e| kafka_error("create read cursor", e))?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tessera_log_kafka_cursors_opened_total").increment(1);
        Ok(Cursor {
            consumer,
            topic: topic.to_owned(),
            partition,
            next: None,
            pending: VecDeque::new(),
            last_used: Instant::now(),
        })
    }

    /// Returns a cursor to the pool, closing the least recently used one beyond the limit.
    pub(super) fn give_back(&self, mut cursor: Cursor) {
        cursor.last_used = Instant::now();
        let evicted = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.entry((cursor.topic.clone(), cursor.partition)).or_default().push(cursor);
            let count: usize = idle.values().map(Vec::len).sum();
            if count > self.max_idle { remove_oldest(&mut idle) } else { None }
        };
        // Closing a consumer blocks briefly; never under the lock.
        drop(evicted);
    }

    /// How many consumers the pool has created so far.
    #[cfg(test)]
    pub(super) fn opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    /// Closes every idle cursor.
    pub(super) fn clear(&self) {
        let all: Vec<Cursor> =
            self.idle.lock().unwrap_or_else(PoisonError::into_inner).drain().flat_map(|(_, list)| list).collect();
        drop(all);
    }
}

fn remove_oldest(idle: &mut HashMap<(String, u32), Vec<Cursor>>) -> Option<Cursor> {
    let (key, index) = idle
        .iter()
        .flat_map(|(key, list)| list.iter().enumerate().map(move |(i, c)| (key, i, c.last_used)))
        .min_by_key(|(_, _, used)| *used)
        .map(|(key, i, _)| (key.clone(), i))?;
    let list = idle.get_mut(&key)?;
    let cursor = list.swap_remove(index);
    if list.is_empty() {
        idle.remove(&key);
    }
    Some(cursor)
}
