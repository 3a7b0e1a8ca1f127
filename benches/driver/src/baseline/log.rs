//! The embedded log on its own: appending the pipeline's own encoded records to a separate log
//! (fsync on every append, as `serve` runs it), and reading a topic from end to end.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use tessera_log::{EmbeddedLog, EmbeddedOptions, Log, NewRecord};

/// Records per append: the plugin-host's largest batch.
pub const APPEND_BATCH: usize = 1000;
/// Records per read: the projector's batch.
const READ_BATCH: usize = 2000;

/// A throughput measurement of the log.
#[derive(Debug, Clone, Serialize)]
pub struct LogThroughput {
    /// Records moved.
    pub records: u64,
    /// Their key and value bytes.
    pub bytes: u64,
    /// Time taken, seconds.
    pub seconds: f64,
    /// Records per second.
    pub records_per_s: f64,
    /// MiB of keys and values per second.
    pub mib_per_s: f64,
    /// Records per append or read call.
    pub batch: usize,
}

impl LogThroughput {
    fn new(records: u64, bytes: u64, seconds: f64, batch: usize) -> Self {
        let seconds = seconds.max(f64::EPSILON);
        Self {
            records,
            bytes,
            seconds,
            records_per_s: records as f64 / seconds,
            mib_per_s: bytes as f64 / seconds / (1024.0 * 1024.0),
            batch,
        }
    }
}

/// Reads up to `max` records of `topic` from offset 0, partition by partition.
pub async fn read_topic(log: &dyn Log, topic: &str, max: u64) -> anyhow::Result<Vec<NewRecord>> {
    let mut out = Vec::new();
    for partition in 0..log.partition_count(topic).await? {
        let end = log.end_offset(topic, partition).await?;
        let mut next = 0;
        while next < end && (out.len() as u64) < max {
            let batch = log.read(topic, partition, next, READ_BATCH).await?;
            let Some(last) = batch.last() else { break };
            next = last.offset + 1;
            let room = (max - out.len() as u64) as usize;
            out.extend(batch.into_iter().take(room).map(|r| NewRecord {
                key: r.key,
                value: r.value,
                timestamp_ms: r.timestamp_ms,
            }));
        }
    }
    Ok(out)
}

/// Reads every record of `topic` and measures how fast.
pub async fn read_all(log: &dyn Log, topic: &str) -> anyhow::Result<LogThroughput> {
    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    for partition in 0..log.partition_count(topic).await? {
        let end = log.end_offset(topic, partition).await?;
        let mut next = 0;
        while next < end {
            let batch = log.read(topic, partition, next, READ_BATCH).await?;
            let Some(last) = batch.last() else { break };
            next = last.offset + 1;
            records += batch.len() as u64;
            bytes += batch.iter().map(|r| (r.value.len() + r.key.as_ref().map_or(0, Vec::len)) as u64).sum::<u64>();
        }
    }
    Ok(LogThroughput::new(records, bytes, started.elapsed().as_secs_f64(), READ_BATCH))
}

/// Appends `records` to `topic` of a fresh embedded log in `dir` (default options: fsync before
/// every acknowledgement), one batch after another as the plugin-host's writer does, and removes
/// the log afterwards.
pub async fn append(dir: &Path, topic: &str, records: Vec<NewRecord>) -> anyhow::Result<LogThroughput> {
    let bytes = records.iter().map(|r| (r.value.len() + r.key.as_ref().map_or(0, Vec::len)) as u64).sum();
    let count = records.len() as u64;
    let mut batches = Vec::new();
    let mut rest = records.into_iter().peekable();
    while rest.peek().is_some() {
        batches.push(rest.by_ref().take(APPEND_BATCH).collect::<Vec<_>>());
    }
    let log = EmbeddedLog::open(dir, EmbeddedOptions::default()).await?;
    log.create_topic(topic, 1).await?;
    let started = Instant::now();
    for batch in batches {
        log.append(topic, batch).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    log.close().await?;
    drop(log);
    std::fs::remove_dir_all(dir)?;
    Ok(LogThroughput::new(count, bytes, seconds, APPEND_BATCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_then_reads_back_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<NewRecord> = (0..2500u32)
            .map(|i| NewRecord { key: Some(format!("k{}", i % 7).into_bytes()), value: vec![1; 100], timestamp_ms: 1 })
            .collect();
        let source = EmbeddedLog::open(dir.path().join("source"), EmbeddedOptions::default()).await.unwrap();
        source.create_topic("t", 1).await.unwrap();
        source.append("t", records.clone()).await.unwrap();
        let read = read_all(&source, "t").await.unwrap();
        assert_eq!(read.records, 2500);
        assert_eq!(read.bytes, 2500 * 100 + records.iter().map(|r| r.key.as_ref().unwrap().len() as u64).sum::<u64>());
        assert_eq!(read_topic(&source, "t", 1200).await.unwrap(), records[..1200].to_vec());

        let target = dir.path().join("target");
        let appended = append(&target, "t", records).await.unwrap();
        assert_eq!(appended.records, 2500);
        assert!(appended.records_per_s > 0.0);
        assert!(!target.exists(), "the scratch log is removed");
    }
}
