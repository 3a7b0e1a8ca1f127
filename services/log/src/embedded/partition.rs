//! One partition: its segments, recovery on open, reads, and the durable end offset that tailers
//! watch.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::watch;

use super::frame::SEGMENT_HEADER_LEN;
use super::segment::{ReadRequest, Segment, parse_segment_file_name};
use crate::{LogError, Record};

/// Upper bound on batch bytes read by one `read` call; it returns early (never empty) beyond it
/// so a huge `max_records` cannot make one call read gigabytes.
const READ_BYTE_BUDGET: usize = 16 << 20;

/// State of a partition shared by its writer task and all readers.
#[derive(Debug)]
pub(crate) struct PartitionShared {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// `<dir>/<topic>/<partition>`.
    pub dir: PathBuf,
    /// Segments in offset order; the last one is the active segment.
    pub segments: RwLock<Vec<Arc<Segment>>>,
    /// Durable end offset; published after every durable batch so tailers wake up.
    pub end: watch::Sender<u64>,
}

impl PartitionShared {
    /// A snapshot of the segment list.
    pub(crate) fn segments(&self) -> Vec<Arc<Segment>> {
        self.segments.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// First retained offset.
    pub(crate) fn start_offset(&self) -> u64 {
        self.segments.read().unwrap_or_else(PoisonError::into_inner).first().map_or(0, |s| s.base)
    }

    /// Durable end offset.
    pub(crate) fn end_offset(&self) -> u64 {
        *self.end.borrow()
    }

    /// Reads up to `max` records from `from`. Offsets below the first retained offset (deleted by
    /// retention) start at the first retained record; the returned records carry their offsets,
    /// so callers can see the gap. Offsets beyond the end are an error.
    pub(crate) fn read(&self, from: u64, max: usize) -> Result<Vec<Record>, LogError> {
        let segments = self.segments();
        let start = segments.first().map_or(0, |s| s.base);
        let end = self.end_offset();
        if from > end {
            return Err(LogError::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.partition,
                offset: from,
                start,
                end,
            });
        }
        let mut out = Vec::new();
        if max == 0 || from == end {
            return Ok(out);
        }
        let mut next = from.max(start);
        let first = segments.partition_point(|s| s.base <= next).saturating_sub(1);
        let request = ReadRequest { topic: &self.topic, partition: self.partition, max };
        let mut budget = READ_BYTE_BUDGET;
        for (i, segment) in segments.iter().enumerate().skip(first) {
            let next_base = segments.get(i + 1).map(|s| s.base);
            segment.read_into(&request, next, next_base, &mut out, &mut budget)?;
            if out.len() >= max || budget == 0 {
                break;
            }
            match next_base {
                Some(base) => next = next.max(base),
                None => break,
            }
        }
        Ok(out)
    }
}

/// Opens a partition directory: validates every segment header, recovers the active segment and
/// returns the shared state plus where the writer continues (byte position, next offset).
pub(crate) fn open_partition(dir: &Path, topic: &str, partition: u32) -> Result<(Arc<PartitionShared>, u64), LogError> {
    let span = tracing::info_span!("tessera_log.recover", topic, partition);
    let _entered = span.enter();
    let mut bases = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            // A segment whose creation was interrupted before its rename: never part of the log.
            let path = entry.path();
            tracing::warn!(path = %path.display(), "removing unfinished segment file");
            std::fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
            continue;
        }
        if let Some(base) = parse_segment_file_name(name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    if bases.is_empty() {
        return Err(LogError::corrupt(dir, 0, "partition directory holds no segment files"));
    }

    let mut segments = Vec::with_capacity(bases.len());
    let last = bases.len() - 1;
    let mut resume = SEGMENT_HEADER_LEN;
    for (i, base) in bases.iter().copied().enumerate() {
        let path = dir.join(super::segment::segment_file_name(base));
        let (segment, file_len) = Segment::open(path, base)?;
        if i == last {
            resume = recover_active(&segment, file_len)?;
        } else {
            // Sealed segments were fsynced before the next one was created; they are fully
            // verified lazily on first read. Their end is the next segment's base.
            segment.state().end_offset = bases[i + 1];
        }
        segments.push(Arc::new(segment));
    }
    let end = segments.last().map_or(0, |s| s.state().end_offset);
    let (end_tx, _) = watch::channel(end);
    let shared = PartitionShared {
        topic: topic.to_owned(),
        partition,
        dir: dir.to_owned(),
        segments: RwLock::new(segments),
        end: end_tx,
    };
    tracing::debug!(end_offset = end, "partition opened");
    Ok((Arc::new(shared), resume))
}

/// Recovers the active segment: a damaged tail with nothing valid after it is a write torn by a
/// crash and is cut off; damage followed by valid data is corruption and refuses the open.
/// Returns the length of the valid prefix (where appends continue).
fn recover_active(segment: &Segment, file_len: u64) -> Result<u64, LogError> {
    let outcome = segment.scan(file_len)?;
    let valid_len = outcome.state.len;
    if let Some((pos, detail)) = outcome.problem {
        let expected = outcome.state.end_offset;
        if let Some(valid_at) = segment.find_valid_batch_after(pos, expected, file_len)? {
            return Err(LogError::corrupt(
                &segment.path,
                pos,
                format!(
                    "{detail}; a valid batch follows at byte {valid_at}, so this is damaged data, not a torn write"
                ),
            ));
        }
        let truncated = file_len - pos;
        tracing::warn!(
            path = %segment.path.display(),
            position = pos,
            truncated_bytes = truncated,
            detail = %detail,
            "truncating torn tail left by an interrupted write"
        );
        segment.truncate(pos)?;
        metrics::counter!("tessera_log_recovered_truncated_bytes_total").increment(truncated);
    }
    segment.install(outcome.state);
    Ok(valid_len)
}
