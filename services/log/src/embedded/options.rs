//! Configuration of the embedded backend.

use std::time::Duration;

use super::frame::MAX_BATCH_LEN;
use crate::LogError;

/// When appends are fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Fsync before acknowledging every append (concurrent appends share fsyncs). Nothing
    /// acknowledged is ever lost, even on power failure. The default.
    #[default]
    Always,
    /// Acknowledge once written to the OS and fsync every given period. A process crash loses
    /// nothing, but a power failure can lose up to one period of acknowledged appends, and
    /// because several unsynced batches may then be torn, `open` can report `Corrupt` for a tail
    /// that `Always` would have recovered. Records also become readable before they are durable.
    Interval(Duration),
}

/// Options of [`super::EmbeddedLog`]; start from `EmbeddedOptions::default()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Fsync policy, [`FsyncPolicy::Always`] by default.
    pub fsync: FsyncPolicy,
    /// A segment is closed and a new one started once it would grow beyond this many bytes
    /// (default 64 MiB). A single batch larger than this gets a segment of its own.
    pub segment_bytes: u64,
    /// Largest accepted record, key plus value, in bytes (default 1 MiB, at most 64 MiB).
    pub max_record_bytes: usize,
    /// Delete the oldest segments while a partition is larger than this (off by default).
    pub retention_bytes: Option<u64>,
    /// Delete segments not written to for longer than this (off by default).
    pub retention_age: Option<Duration>,
    /// How often retention is checked besides at every segment roll (default 60 s).
    pub retention_check_interval: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            fsync: FsyncPolicy::Always,
            segment_bytes: 64 << 20,
            max_record_bytes: 1 << 20,
            retention_bytes: None,
            retention_age: None,
            retention_check_interval: Duration::from_secs(60),
        }
    }
}

/// Upper bound for [`EmbeddedOptions::max_record_bytes`]; well below the on-disk batch limit.
pub const MAX_RECORD_BYTES_LIMIT: usize = 64 << 20;

impl EmbeddedOptions {
    /// Checks the options are usable.
    pub fn validate(&self) -> Result<(), LogError> {
        const _: () = assert!(MAX_RECORD_BYTES_LIMIT < MAX_BATCH_LEN);
        if self.segment_bytes < 128 {
            return Err(LogError::InvalidConfig(format!(
                "segment_bytes is {}, must be at least 128",
                self.segment_bytes
            )));
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > MAX_RECORD_BYTES_LIMIT {
            return Err(LogError::InvalidConfig(format!(
                "max_record_bytes is {}, must be between 1 and {MAX_RECORD_BYTES_LIMIT}",
                self.max_record_bytes
            )));
        }
        if let FsyncPolicy::Interval(period) = self.fsync
            && period.is_zero()
        {
            return Err(LogError::InvalidConfig("the fsync interval must be longer than zero".to_owned()));
        }
        if self.retention_check_interval.is_zero() {
            return Err(LogError::InvalidConfig("retention_check_interval must be longer than zero".to_owned()));
        }
        Ok(())
    }
}
