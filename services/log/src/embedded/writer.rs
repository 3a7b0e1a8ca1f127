//! The per-partition writer task and group commit.
//!
//! Each partition has one task that owns the active segment's write position. Appenders send it
//! requests over a channel; while it is busy writing and fsyncing one group, new requests queue
//! up and are written together afterwards, so concurrent appenders share fsyncs (group commit)
//! without any timer-induced latency. Records of a group go into batches of about
//! [`TARGET_BATCH_LEN`], and with [`FsyncPolicy::Always`] every batch is fsynced before the next
//! one is written: that invariant is what makes crash recovery exact (see `frame`).

use std::sync::{Arc, PoisonError};
use std::time::{Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

use super::frame::{
    BATCH_HEADER_LEN, BatchHeader, SEGMENT_HEADER_LEN, TARGET_BATCH_LEN, encode_batch, encoded_record_len,
};
use super::fsutil::{DirLock, fsync_dir, write_all_at};
use super::partition::PartitionShared;
use super::segment::Segment;
use super::{EmbeddedOptions, FsyncPolicy};
use crate::{LogError, NewRecord};

/// Requests beyond this many queued bytes wait for the next group, bounding one group's memory.
const GROUP_MAX_BYTES: usize = 8 << 20;

/// One append call's records for one partition; answered with the offset of the first record
/// (the others follow contiguously).
#[derive(Debug)]
pub(crate) struct AppendRequest {
    /// Records, in order.
    pub records: Vec<NewRecord>,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<u64, LogError>>,
}

impl AppendRequest {
    fn bytes(&self) -> usize {
        self.records.iter().map(encoded_record_len).sum()
    }
}

/// Owns the write side of one partition.
#[derive(Debug)]
pub(crate) struct Writer {
    shared: Arc<PartitionShared>,
    active: Arc<Segment>,
    write_pos: u64,
    next_offset: u64,
    opts: Arc<EmbeddedOptions>,
    /// Bytes written but not yet fsynced (only with [`FsyncPolicy::Interval`]).
    unsynced: bool,
    /// Keeps the directory locked until the last writer is gone.
    _lock: Arc<DirLock>,
}

impl Writer {
    /// A writer continuing the active segment of `shared` at byte `write_pos`.
    pub(crate) fn new(
        shared: Arc<PartitionShared>,
        write_pos: u64,
        opts: Arc<EmbeddedOptions>,
        lock: Arc<DirLock>,
    ) -> Result<Writer, LogError> {
        let active = shared
            .segments()
            .last()
            .cloned()
            .ok_or_else(|| LogError::corrupt(&shared.dir, 0, "partition has no segment"))?;
        let next_offset = shared.end_offset();
        Ok(Writer { shared, active, write_pos, next_offset, opts, unsynced: false, _lock: lock })
    }

    /// Writes every request's records in order and makes them durable (per the fsync policy).
    /// Returns each request's first offset.
    fn write_requests(&mut self, requests: &[Vec<NewRecord>]) -> Result<Vec<u64>, LogError> {
        let mut firsts = Vec::with_capacity(requests.len());
        let mut batch: Vec<&NewRecord> = Vec::new();
        let mut batch_len = BATCH_HEADER_LEN;
        for records in requests {
            firsts.push(self.next_offset + batch.len() as u64);
            for record in records {
                let len = encoded_record_len(record);
                if !batch.is_empty() && batch_len + len > TARGET_BATCH_LEN {
                    self.write_batch(&batch)?;
                    batch.clear();
                    batch_len = BATCH_HEADER_LEN;
                }
                batch.push(record);
                batch_len += len;
            }
        }
        if !batch.is_empty() {
            self.write_batch(&batch)?;
        }
        Ok(firsts)
    }

    /// Writes one batch, makes it durable and publishes it to readers.
    fn write_batch(&mut self, records: &[&NewRecord]) -> Result<(), LogError> {
        let bytes = encode_batch(self.next_offset, records);
        if self.write_pos > SEGMENT_HEADER_LEN && self.write_pos + bytes.len() as u64 > self.opts.segment_bytes {
            self.roll()?;
        }
        write_all_at(&self.active.file, &bytes, self.write_pos).map_err(|e| LogError::io(&self.active.path, e))?;
        match self.opts.fsync {
            FsyncPolicy::Always => self.sync()?,
            FsyncPolicy::Interval(_) => self.unsynced = true,
        }
        // Only now is the batch durable: make it visible to readers, then wake tailers.
        let header = BatchHeader::parse(&bytes);
        self.active.state().push_batch(self.write_pos, &header);
        self.write_pos += bytes.len() as u64;
        self.next_offset = header.end_offset();
        self.shared.end.send_replace(self.next_offset);
        metrics::counter!("tessera_log_appended_records_total", "topic" => self.shared.topic.clone())
            .increment(records.len() as u64);
        metrics::counter!("tessera_log_append_bytes_total").increment(bytes.len() as u64);
        Ok(())
    }

    /// Fsyncs the active segment.
    fn sync(&mut self) -> Result<(), LogError> {
        let started = Instant::now();
        self.active.file.sync_data().map_err(|e| LogError::io(&self.active.path, e))?;
        metrics::histogram!("tessera_log_fsync_seconds").record(started.elapsed().as_secs_f64());
        self.unsynced = false;
        Ok(())
    }

    /// Seals the active segment and starts a new one at the next offset.
    fn roll(&mut self) -> Result<(), LogError> {
        if self.unsynced {
            // Sealed segments must be complete on disk: recovery only repairs the newest one.
            self.sync()?;
        }
        let segment = Arc::new(Segment::create(&self.shared.dir, self.next_offset)?);
        self.shared.segments.write().unwrap_or_else(PoisonError::into_inner).push(segment.clone());
        tracing::debug!(
            topic = %self.shared.topic,
            partition = self.shared.partition,
            base_offset = self.next_offset,
            "rolled to a new segment"
        );
        self.active = segment;
        self.write_pos = SEGMENT_HEADER_LEN;
        if let Err(error) = self.apply_retention() {
            // Failing to delete old data is not a reason to fail the append.
            tracing::warn!(%error, "retention could not delete old segments");
        }
        Ok(())
    }

    /// Deletes the oldest sealed segments while the partition is larger than `retention_bytes`
    /// or their last modification is older than `retention_age`. The active segment always stays.
    pub(crate) fn apply_retention(&self) -> Result<(), LogError> {
        let (limit_bytes, limit_age) = (self.opts.retention_bytes, self.opts.retention_age);
        if limit_bytes.is_none() && limit_age.is_none() {
            return Ok(());
        }
        let segments = self.shared.segments();
        let Some((_active, sealed)) = segments.split_last() else {
            return Ok(());
        };
        let sizes: Vec<u64> = segments.iter().map(|s| s.state().len).collect();
        let mut total: u64 = sizes.iter().sum();
        let now = SystemTime::now();
        let mut delete = 0;
        for (segment, size) in sealed.iter().zip(&sizes) {
            let too_big = limit_bytes.is_some_and(|limit| total > limit);
            let too_old = match limit_age {
                Some(age) => {
                    let meta = segment.file.metadata().map_err(|e| LogError::io(&segment.path, e))?;
                    let modified = meta.modified().map_err(|e| LogError::io(&segment.path, e))?;
                    now.duration_since(modified).is_ok_and(|elapsed| elapsed > age)
                }
                None => false,
            };
            if !(too_big || too_old) {
                break;
            }
            total -= size;
            delete += 1;
        }
        if delete == 0 {
            return Ok(());
        }
        let removed: Vec<Arc<Segment>> =
            self.shared.segments.write().unwrap_or_else(PoisonError::into_inner).drain(..delete).collect();
        for segment in &removed {
            // Readers holding the segment keep their open handle; the data goes once they finish.
            std::fs::remove_file(&segment.path).map_err(|e| LogError::io(&segment.path, e))?;
            tracing::info!(path = %segment.path.display(), "retention deleted segment");
        }
        fsync_dir(&self.shared.dir)
    }
}

/// Runs a blocking step of the writer on the blocking pool and hands the writer back; `None` if
/// the step panicked (the writer is then gone).
async fn blocking<T: Send + 'static>(
    mut writer: Writer,
    step: impl FnOnce(&mut Writer) -> T + Send + 'static,
) -> Option<(Writer, T)> {
    tokio::task::spawn_blocking(move || {
        let out = step(&mut writer);
        (writer, out)
    })
    .await
    .ok()
}

/// Waits for the next tick of an optional interval; never completes without one.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn interval(period: std::time::Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// The writer task: serves append requests until every sender is gone, fsyncs on a timer under
/// [`FsyncPolicy::Interval`], and applies retention periodically.
pub(crate) async fn run(writer: Writer, mut requests: mpsc::Receiver<AppendRequest>) {
    let topic = writer.shared.topic.clone();
    let partition = writer.shared.partition;
    let mut sync_timer = match writer.opts.fsync {
        FsyncPolicy::Interval(period) => Some(interval(period)),
        FsyncPolicy::Always => None,
    };
    let retention_enabled = writer.opts.retention_bytes.is_some() || writer.opts.retention_age.is_some();
    let mut retention_timer = retention_enabled.then(|| interval(writer.opts.retention_check_interval));
    let mut failed: Option<String> = None;
    let mut writer = Some(writer);

    loop {
        let first = tokio::select! {
            request = requests.recv() => match request {
                Some(request) => request,
                None => break,
            },
            () = tick(&mut sync_timer) => {
                let due = failed.is_none() && writer.as_ref().is_some_and(|w| w.unsynced);
                if let Some(w) = writer.take_if(|_| due) {
                    let Some((w, result)) = blocking(w, Writer::sync).await else { break };
                    if let Err(error) = result {
                        tracing::error!(%error, topic, partition, "fsync failed; partition stops accepting appends");
                        failed = Some(error.to_string());
                    }
                    writer = Some(w);
                }
                continue;
            }
            () = tick(&mut retention_timer) => {
                if let Some(w) = writer.take() {
                    let Some((w, result)) = blocking(w, |w| w.apply_retention()).await else { break };
                    if let Err(error) = result {
                        tracing::warn!(%error, topic, partition, "retention could not delete old segments");
                    }
                    writer = Some(w);
                }
                continue;
            }
        };

        // Group commit: take everything that queued up while the previous group was written.
        let mut group = vec![first];
        let mut bytes = group[0].bytes();
        while bytes < GROUP_MAX_BYTES {
            match requests.try_recv() {
                Ok(request) => {
                    bytes += request.bytes();
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        let (records, replies): (Vec<_>, Vec<_>) = group.into_iter().map(|r| (r.records, r.reply)).unzip();

        let outcome = match (&failed, writer.take()) {
            (None, Some(w)) => match blocking(w, move |w| w.write_requests(&records)).await {
                Some((w, result)) => {
                    writer = Some(w);
                    result
                }
                None => Err(LogError::io("", std::io::Error::other("partition writer panicked"))),
            },
            _ => Err(LogError::io("", std::io::Error::other("partition writer is gone"))),
        };
        match outcome {
            Ok(firsts) => {
                for (reply, first) in replies.into_iter().zip(firsts) {
                    // The appender may have given up waiting; its records are durable anyway.
                    let _ = reply.send(Ok(first));
                }
            }
            Err(error) => {
                // The tail of the segment is now in an unknown state (a failed fsync may have
                // dropped dirty pages), so refuse further appends instead of building on it;
                // reopening the log recovers from what is really on disk.
                let reason = failed.get_or_insert_with(|| {
                    tracing::error!(%error, topic, partition, "append failed; partition stops accepting appends");
                    error.to_string()
                });
                for reply in replies {
                    let _ = reply.send(Err(LogError::PartitionFailed {
                        topic: topic.clone(),
                        partition,
                        reason: reason.clone(),
                    }));
                }
                if writer.is_none() {
                    break;
                }
            }
        }
    }

    if let Some(w) = writer.filter(|w| w.unsynced && failed.is_none())
        && let Some((_, Err(error))) = blocking(w, Writer::sync).await
    {
        tracing::error!(%error, topic, partition, "final fsync failed");
    }
}
