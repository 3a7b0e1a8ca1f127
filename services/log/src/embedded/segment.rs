//! One segment file: creation, validation, recovery scans and reads.
//!
//! A segment is named after the offset of its first record (`00000000000000000000.log`). Readers
//! and the partition's writer share one file handle and use positional I/O, so readers never see
//! bytes beyond [`SegmentState::len`], which the writer advances only once a batch is durable.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::frame::{
    BATCH_HEADER_LEN, BatchHeader, SEGMENT_HEADER_LEN, check_segment_header, decode_batch, encode_segment_header,
    verify_batch,
};
use super::fsutil::{fsync_dir, read_exact_at, write_all_at};
use crate::{LogError, Record};

/// A sparse index entry: the batch starting at `offset` begins at byte `pos`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexEntry {
    pub offset: u64,
    pub pos: u64,
}

/// Bytes between sparse index entries: small enough that a read scans little, large enough that
/// the index of a 64 MiB segment stays around 16k entries.
pub(crate) const INDEX_INTERVAL: u64 = 4096;

/// Read-ahead when scanning a segment.
const READ_CHUNK: usize = 256 * 1024;

/// The mutable view of a segment shared between its writer and readers.
#[derive(Debug, Default)]
pub(crate) struct SegmentState {
    /// Sparse offset index; always starts with the first batch when the segment has one.
    pub index: Vec<IndexEntry>,
    /// Bytes readers may read (header included): everything before this is durable and valid.
    pub len: u64,
    /// Offset after the last readable record.
    pub end_offset: u64,
    /// Whether `index` has been built. Sealed segments are indexed lazily on first read so that
    /// opening a large log does not read all of it.
    pub scanned: bool,
    /// Position of the last index entry.
    pub last_index_pos: u64,
}

impl SegmentState {
    /// Records that a batch of `header` now sits at `pos` and is readable.
    pub(crate) fn push_batch(&mut self, pos: u64, header: &BatchHeader) {
        if self.index.is_empty() || pos - self.last_index_pos >= INDEX_INTERVAL {
            self.index.push(IndexEntry { offset: header.base_offset, pos });
            self.last_index_pos = pos;
        }
        self.len = pos + header.len as u64;
        self.end_offset = header.end_offset();
    }
}

/// One segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Offset of the first record (also the file name).
    pub base: u64,
    /// Path of the file.
    pub path: PathBuf,
    /// Handle shared by the writer (positional writes) and readers (positional reads).
    pub file: File,
    state: Mutex<SegmentState>,
}

/// File name of the segment starting at `base`.
pub(crate) fn segment_file_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// Parses a segment file name back into its base offset.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What a sequential validation of a segment found.
#[derive(Debug)]
pub(crate) struct ScanOutcome {
    /// Sparse index of the valid prefix.
    pub state: SegmentState,
    /// First invalid position and why, if the file does not end cleanly.
    pub problem: Option<(u64, String)>,
}

impl Segment {
    /// Creates an empty segment durably: the header goes to a temporary file that is fsynced and
    /// then renamed into place, so a crash never leaves a segment with a half-written header.
    pub(crate) fn create(dir: &Path, base: u64) -> Result<Segment, LogError> {
        let path = dir.join(segment_file_name(base));
        let tmp = dir.join(format!("{}.tmp", segment_file_name(base)));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| LogError::io(&tmp, e))?;
        write_all_at(&file, &encode_segment_header(base), 0).map_err(|e| LogError::io(&tmp, e))?;
        file.sync_all().map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))?;
        fsync_dir(dir)?;
        Ok(Segment {
            base,
            path,
            file,
            state: Mutex::new(SegmentState {
                len: SEGMENT_HEADER_LEN,
                end_offset: base,
                scanned: true,
                ..SegmentState::default()
            }),
        })
    }

    /// Opens an existing segment and validates its header. Returns the segment (not yet indexed)
    /// and the file's length.
    pub(crate) fn open(path: PathBuf, base: u64) -> Result<(Segment, u64), LogError> {
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(|e| LogError::io(&path, e))?;
        let file_len = file.metadata().map_err(|e| LogError::io(&path, e))?.len();
        if file_len < SEGMENT_HEADER_LEN {
            return Err(LogError::corrupt(
                &path,
                0,
                format!("segment file is {file_len} bytes, shorter than its {SEGMENT_HEADER_LEN}-byte header"),
            ));
        }
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        read_exact_at(&file, &mut header, 0).map_err(|e| LogError::io(&path, e))?;
        check_segment_header(&header, base).map_err(|detail| LogError::corrupt(&path, 0, detail))?;
        let segment = Segment {
            base,
            path,
            file,
            state: Mutex::new(SegmentState { len: file_len, end_offset: base, ..SegmentState::default() }),
        };
        Ok((segment, file_len))
    }

    /// Locks the shared state. A panic while holding the lock cannot leave it half-updated in a
    /// harmful way (every update is a few field stores), so poisoning is ignored.
    pub(crate) fn state(&self) -> MutexGuard<'_, SegmentState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Validates the segment from the start, verifying every batch checksum and that offsets are
    /// contiguous from the base, and stops at the first problem.
    pub(crate) fn scan(&self, file_len: u64) -> Result<ScanOutcome, LogError> {
        let mut reader = ReadAt::new(&self.file, file_len);
        let mut state =
            SegmentState { len: SEGMENT_HEADER_LEN, end_offset: self.base, scanned: true, ..SegmentState::default() };
        let mut pos = SEGMENT_HEADER_LEN;
        let problem = loop {
            if pos == file_len {
                break None;
            }
            let header = match self.batch_at(&mut reader, pos, state.end_offset)? {
                Ok(header) => header,
                Err(detail) => break Some((pos, detail)),
            };
            state.push_batch(pos, &header);
            pos += header.len as u64;
        };
        Ok(ScanOutcome { state, problem })
    }

    /// Reads and fully verifies the batch at `pos`, which must start at offset `expected`.
    /// The outer error is an I/O failure; the inner one describes invalid data.
    fn batch_at(
        &self,
        reader: &mut ReadAt<'_>,
        pos: u64,
        expected: u64,
    ) -> Result<Result<BatchHeader, String>, LogError> {
        let io = |e| LogError::io(&self.path, e);
        let Some(bytes) = reader.get(pos, BATCH_HEADER_LEN).map_err(io)? else {
            return Ok(Err(format!("incomplete batch header: only {} bytes left in the file", reader.limit - pos)));
        };
        let header = BatchHeader::parse(bytes);
        if let Err(detail) = header.plausible() {
            return Ok(Err(detail));
        }
        if header.base_offset != expected {
            return Ok(Err(format!(
                "batch starts at offset {} but offset {expected} was expected",
                header.base_offset
            )));
        }
        let Some(bytes) = reader.get(pos, header.len).map_err(io)? else {
            return Ok(Err(format!(
                "incomplete batch: {} bytes announced, {} present",
                header.len,
                reader.limit - pos
            )));
        };
        Ok(verify_batch(bytes))
    }

    /// After a problem at `bad_pos`, looks for any complete, valid batch further on whose offsets
    /// could follow `expected`. Finding one means the damage is not a torn final write.
    pub(crate) fn find_valid_batch_after(
        &self,
        bad_pos: u64,
        expected: u64,
        file_len: u64,
    ) -> Result<Option<u64>, LogError> {
        let io = |e| LogError::io(&self.path, e);
        let mut reader = ReadAt::new(&self.file, file_len);
        // Offsets grow by at least one per 40 bytes (smallest batch), which bounds the offsets a
        // genuine later batch can carry and lets the scan skip almost every position cheaply.
        let max_offset = expected + (file_len - bad_pos) / 40 + 1;
        let mut candidate = bad_pos + 1;
        while candidate + (BATCH_HEADER_LEN as u64) <= file_len {
            let Some(bytes) = reader.get(candidate, BATCH_HEADER_LEN).map_err(io)? else {
                break;
            };
            let header = BatchHeader::parse(bytes);
            if header.plausible().is_ok()
                && (expected..=max_offset).contains(&header.base_offset)
                && candidate + header.len as u64 <= file_len
                && let Some(bytes) = reader.get(candidate, header.len).map_err(io)?
                && verify_batch(bytes).is_ok()
            {
                return Ok(Some(candidate));
            }
            candidate += 1;
        }
        Ok(None)
    }

    /// Truncates the file to `len` durably (recovery of a torn tail).
    pub(crate) fn truncate(&self, len: u64) -> Result<(), LogError> {
        self.file.set_len(len).map_err(|e| LogError::io(&self.path, e))?;
        self.file.sync_all().map_err(|e| LogError::io(&self.path, e))
    }

    /// Installs the result of a successful scan.
    pub(crate) fn install(&self, state: SegmentState) {
        *self.state() = state;
    }

    /// Builds the index of a sealed segment on first use, checking it ends exactly where the
    /// next segment starts.
    fn ensure_scanned(&self, next_base: Option<u64>) -> Result<(), LogError> {
        let mut state = self.state();
        if state.scanned {
            return Ok(());
        }
        let _span = tracing::debug_span!("tessera_log.index_segment", path = %self.path.display()).entered();
        let file_len = state.len;
        let outcome = self.scan(file_len)?;
        if let Some((pos, detail)) = outcome.problem {
            return Err(LogError::corrupt(&self.path, pos, detail));
        }
        if let Some(next) = next_base
            && outcome.state.end_offset != next
        {
            return Err(LogError::corrupt(
                &self.path,
                outcome.state.len,
                format!(
                    "segment ends at offset {} but the next segment starts at offset {next}",
                    outcome.state.end_offset
                ),
            ));
        }
        *state = outcome.state;
        Ok(())
    }

    /// Appends records of this segment with offset `>= from` to `out` until `out` holds `max`
    /// records or about `byte_budget` bytes of batches were read. Every batch returned from is
    /// checksum-verified.
    pub(crate) fn read_into(
        &self,
        read: &ReadRequest<'_>,
        from: u64,
        next_base: Option<u64>,
        out: &mut Vec<Record>,
        byte_budget: &mut usize,
    ) -> Result<(), LogError> {
        self.ensure_scanned(next_base)?;
        let (mut pos, limit) = {
            let state = self.state();
            if from >= state.end_offset || state.index.is_empty() {
                return Ok(());
            }
            let idx = state.index.partition_point(|e| e.offset <= from);
            let entry = state.index[idx.saturating_sub(1)];
            (entry.pos, state.len)
        };
        let mut reader = ReadAt::new(&self.file, limit);
        let io = |e| LogError::io(&self.path, e);
        while pos < limit && out.len() < read.max && *byte_budget > 0 {
            let Some(bytes) = reader.get(pos, BATCH_HEADER_LEN).map_err(io)? else {
                return Err(LogError::corrupt(&self.path, pos, "batch header cut short"));
            };
            let header = BatchHeader::parse(bytes);
            header.plausible().map_err(|detail| LogError::corrupt(&self.path, pos, detail))?;
            if header.end_offset() <= from {
                pos += header.len as u64;
                continue;
            }
            let Some(bytes) = reader.get(pos, header.len).map_err(io)? else {
                return Err(LogError::corrupt(&self.path, pos, "batch cut short"));
            };
            decode_batch(bytes, read.topic, read.partition, from, read.max, out)
                .map_err(|detail| LogError::corrupt(&self.path, pos, detail))?;
            *byte_budget = byte_budget.saturating_sub(header.len);
            pos += header.len as u64;
        }
        Ok(())
    }
}

/// What a partition read asks for.
#[derive(Debug)]
pub(crate) struct ReadRequest<'a> {
    pub topic: &'a str,
    pub partition: u32,
    pub max: usize,
}

/// Buffered positional reads over the first `limit` bytes of a file.
struct ReadAt<'a> {
    file: &'a File,
    limit: u64,
    buf: Vec<u8>,
    buf_pos: u64,
}

impl<'a> ReadAt<'a> {
    fn new(file: &'a File, limit: u64) -> Self {
        ReadAt { file, limit, buf: Vec::new(), buf_pos: 0 }
    }

    /// The `n` bytes at `pos`, or `None` if they extend past the limit.
    fn get(&mut self, pos: u64, n: usize) -> std::io::Result<Option<&[u8]>> {
        if pos.saturating_add(n as u64) > self.limit {
            return Ok(None);
        }
        let cached = pos >= self.buf_pos && pos + n as u64 <= self.buf_pos + self.buf.len() as u64;
        if !cached {
            let want = (n.max(READ_CHUNK) as u64).min(self.limit - pos) as usize;
            self.buf.resize(want, 0);
            read_exact_at(self.file, &mut self.buf, pos)?;
            self.buf_pos = pos;
        }
        let start = (pos - self.buf_pos) as usize;
        Ok(Some(&self.buf[start..start + n]))
    }
}
