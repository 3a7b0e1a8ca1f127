//! The embedded backend: a durable, crash-safe log in a local directory.
//!
//! Layout:
//!
//! ```text
//! <dir>/.lock                                  exclusive lock held while open
//! <dir>/<topic>/topic.json                     {"partitions": N}; written last, so it marks a
//!                                              fully created topic
//! <dir>/<topic>/<partition>/<base offset>.log  segments (see `frame` for the format)
//! <dir>/__groups/<group>/<topic>/<partition>.json  committed consumer offsets
//! ```
//!
//! Guarantees: an append returns only once its records are durable ([`FsyncPolicy::Always`]);
//! readers and tailers never see records that are not yet durable; on open, a torn tail of the
//! newest segment (left by a crash mid-write) is truncated, while damage followed by valid data,
//! or a bad segment header, makes `open` fail with [`LogError::Corrupt`]. Reads verify checksums
//! and never return damaged records.
//!
//! Reads below the first retained offset (after retention deleted old segments) start at the
//! first retained record; reads beyond the end fail with [`LogError::OffsetOutOfRange`].

mod frame;
mod fsutil;
mod groups;
mod options;
mod partition;
mod segment;
mod topic;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use options::{EmbeddedOptions, FsyncPolicy, MAX_RECORD_BYTES_LIMIT};

use self::fsutil::DirLock;
use self::groups::GroupStore;
use self::partition::PartitionShared;
use self::topic::{LoadedTopic, create_topic_on_disk, load_dir};
use self::writer::{AppendRequest, Writer};
use crate::names::{validate_group_name, validate_topic_name};
use crate::{Log, LogError, NewRecord, Position, Record, partition_for_key};

/// Most partitions a topic may have.
pub(crate) const MAX_PARTITIONS: u32 = 100_000;

/// Queue depth of a partition writer; appenders wait (backpressure) beyond it.
const WRITER_QUEUE: usize = 1024;

/// A partition as seen by the log handle: shared state plus the way to its writer task.
#[derive(Debug)]
struct PartitionHandle {
    shared: Arc<PartitionShared>,
    sender: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Topic {
    partitions: Vec<PartitionHandle>,
}

/// The embedded log backend. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct EmbeddedLog {
    dir: PathBuf,
    opts: Arc<EmbeddedOptions>,
    lock: Arc<DirLock>,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serializes topic creation (it is rare, and doing it twice at once would race on disk).
    create: tokio::sync::Mutex<()>,
    groups: GroupStore,
    closed: AtomicBool,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `dir`, recovering every partition. Fails with
    /// [`LogError::Corrupt`] if data is damaged beyond a torn final write, and with
    /// [`LogError::Locked`] if another process has the directory open.
    pub async fn open(dir: impl AsRef<Path>, opts: EmbeddedOptions) -> Result<EmbeddedLog, LogError> {
        opts.validate()?;
        let dir = dir.as_ref().to_owned();
        let span = tracing::info_span!("tessera_log.open", dir = %dir.display());
        let opts = Arc::new(opts);
        let loaded = {
            let target = dir.clone();
            let span = span.clone();
            tokio::task::spawn_blocking(move || span.in_scope(|| load_dir(&target)))
                .await
                .map_err(|e| LogError::io(&dir, std::io::Error::other(e)))??
        };
        let (lock, topics) = loaded;
        let lock = Arc::new(lock);
        let mut map = HashMap::new();
        for (name, partitions) in topics {
            let topic = start_topic(partitions, &opts, &lock)?;
            map.insert(name, Arc::new(topic));
        }
        span.in_scope(|| tracing::info!(topics = map.len(), "log opened"));
        Ok(EmbeddedLog {
            groups: GroupStore::new(&dir),
            dir,
            opts,
            lock,
            topics: RwLock::new(map),
            create: tokio::sync::Mutex::new(()),
            closed: AtomicBool::new(false),
        })
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &EmbeddedOptions {
        &self.opts
    }

    /// First offset still retained in the partition (0 unless retention deleted segments).
    pub async fn start_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        Ok(self.partition(topic, partition)?.shared.start_offset())
    }

    /// Stops accepting calls, lets every writer finish what it has queued (fsyncing under
    /// [`FsyncPolicy::Interval`]) and waits for them, releasing the directory lock once the last
    /// handle is dropped. Dropping the log without closing is safe too: acknowledged appends
    /// are already durable.
    pub async fn close(&self) -> Result<(), LogError> {
        self.closed.store(true, Ordering::SeqCst);
        let topics: Vec<Arc<Topic>> = self.read_topics().values().cloned().collect();
        let mut tasks = Vec::new();
        for topic in &topics {
            for handle in &topic.partitions {
                lock(&handle.sender).take();
                tasks.extend(lock(&handle.task).take());
            }
        }
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "partition writer ended abnormally");
            }
        }
        Ok(())
    }

    fn read_topics(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn check_open(&self) -> Result<(), LogError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(LogError::Closed);
        }
        Ok(())
    }

    fn topic(&self, topic: &str) -> Result<Arc<Topic>, LogError> {
        self.check_open()?;
        self.read_topics().get(topic).cloned().ok_or_else(|| LogError::UnknownTopic(topic.to_owned()))
    }

    fn partition(&self, topic: &str, partition: u32) -> Result<PartitionRef, LogError> {
        let t = self.topic(topic)?;
        let count = t.partitions.len() as u32;
        let handle = t.partitions.get(partition as usize).ok_or_else(|| LogError::UnknownPartition {
            topic: topic.to_owned(),
            partition,
            partitions: count,
        })?;
        Ok(PartitionRef { shared: handle.shared.clone() })
    }
}

/// A partition's shared state, detached from the topic map lock.
struct PartitionRef {
    shared: Arc<PartitionShared>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the writer tasks of a loaded topic.
fn start_topic(
    partitions: LoadedTopic,
    opts: &Arc<EmbeddedOptions>,
    dir_lock: &Arc<DirLock>,
) -> Result<Topic, LogError> {
    let mut handles = Vec::with_capacity(partitions.len());
    for (shared, write_pos) in partitions {
        let writer = Writer::new(shared.clone(), write_pos, opts.clone(), dir_lock.clone())?;
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let task = tokio::spawn(writer::run(writer, rx));
        handles.push(PartitionHandle { shared, sender: Mutex::new(Some(tx)), task: Mutex::new(Some(task)) });
    }
    Ok(Topic { partitions: handles })
}

#[async_trait]
impl Log for EmbeddedLog {
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), LogError> {
        validate_topic_name(topic)?;
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(LogError::InvalidPartitionCount(partitions));
        }
        self.check_open()?;
        let _guard = self.create.lock().await;
        if let Some(existing) = self.read_topics().get(topic) {
            if existing.partitions.len() as u32 != partitions {
                tracing::warn!(
                    topic,
                    existing = existing.partitions.len(),
                    requested = partitions,
                    "topic already exists with a different partition count; keeping it"
                );
            }
            return Ok(());
        }
        let loaded = {
            let dir = self.dir.clone();
            let name = topic.to_owned();
            tokio::task::spawn_blocking(move || create_topic_on_disk(&dir, &name, partitions))
                .await
                .map_err(|e| LogError::io(&self.dir, std::io::Error::other(e)))??
        };
        let started = start_topic(loaded, &self.opts, &self.lock)?;
        self.topics.write().unwrap_or_else(PoisonError::into_inner).insert(topic.to_owned(), Arc::new(started));
        tracing::info!(topic, partitions, "topic created");
        Ok(())
    }

    async fn topics(&self) -> Result<Vec<String>, LogError> {
        self.check_open()?;
        let mut names: Vec<String> = self.read_topics().keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    async fn partition_count(&self, topic: &str) -> Result<u32, LogError> {
        Ok(self.topic(topic)?.partitions.len() as u32)
    }

    async fn append(&self, topic: &str, records: Vec<NewRecord>) -> Result<Vec<Position>, LogError> {
        let t = self.topic(topic)?;
        let limit = self.opts.max_record_bytes;
        for record in &records {
            let size = record.key.as_ref().map_or(0, Vec::len) + record.value.len();
            if size > limit {
                return Err(LogError::RecordTooLarge { size, limit });
            }
        }
        let count = t.partitions.len() as u32;
        // Route, remembering each record's index so positions come back in input order.
        let mut routed: Vec<(Vec<usize>, Vec<NewRecord>)> = (0..count).map(|_| (Vec::new(), Vec::new())).collect();
        for (i, record) in records.into_iter().enumerate() {
            let p = partition_for_key(record.key.as_deref(), count) as usize;
            routed[p].0.push(i);
            routed[p].1.push(record);
        }
        let total: usize = routed.iter().map(|(idx, _)| idx.len()).sum();
        // Send every partition's share first so partitions write in parallel, then wait.
        let mut pending = Vec::new();
        for (p, (indexes, records)) in routed.into_iter().enumerate() {
            if records.is_empty() {
                continue;
            }
            let handle = &t.partitions[p];
            let sender = lock(&handle.sender).clone().ok_or(LogError::Closed)?;
            let (reply, answer) = oneshot::channel();
            sender.send(AppendRequest { records, reply }).await.map_err(|_| LogError::Closed)?;
            pending.push((p as u32, indexes, answer));
        }
        let mut positions = vec![Position { partition: 0, offset: 0 }; total];
        for (partition, indexes, answer) in pending {
            let first = answer.await.map_err(|_| LogError::PartitionFailed {
                topic: topic.to_owned(),
                partition,
                reason: "the partition writer stopped".to_owned(),
            })??;
            for (k, i) in indexes.into_iter().enumerate() {
                positions[i] = Position { partition, offset: first + k as u64 };
            }
        }
        Ok(positions)
    }

    async fn read(&self, topic: &str, partition: u32, from: u64, max_records: usize) -> Result<Vec<Record>, LogError> {
        let p = self.partition(topic, partition)?;
        let shared = p.shared;
        tokio::task::spawn_blocking(move || shared.read(from, max_records))
            .await
            .map_err(|e| LogError::io(&self.dir, std::io::Error::other(e)))?
    }

    async fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        Ok(self.partition(topic, partition)?.shared.end_offset())
    }

    async fn wait_for(&self, topic: &str, partition: u32, offset: u64, timeout: Duration) -> Result<bool, LogError> {
        let p = self.partition(topic, partition)?;
        let mut end = p.shared.end.subscribe();
        match tokio::time::timeout(timeout, end.wait_for(|&end| end > offset)).await {
            Ok(Ok(_)) => Ok(true),
            // The sender lives in the shared state we hold, so it cannot be gone; be safe anyway.
            Ok(Err(_)) => Err(LogError::Closed),
            Err(_) => Ok(p.shared.end_offset() > offset),
        }
    }

    async fn commit(&self, group: &str, topic: &str, partition: u32, next_offset: u64) -> Result<(), LogError> {
        validate_group_name(group)?;
        self.partition(topic, partition)?;
        self.groups.commit(group, topic, partition, next_offset).await
    }

    async fn committed(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>, LogError> {
        validate_group_name(group)?;
        self.partition(topic, partition)?;
        self.groups.committed(group, topic, partition).await
    }
}
