//! The log's error type: every variant says what went wrong in terms of topics, partitions and
//! files, so an operator can act on the message alone.

use std::path::PathBuf;

/// Everything a [`crate::Log`] operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A file system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Data on disk failed validation (bad checksum, bad header, broken offsets). The log refuses
    /// to serve it rather than return damaged records.
    #[error("corrupt log data in {path} at byte {position}: {detail}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte position in the file where the damage starts.
        position: u64,
        /// What exactly failed validation.
        detail: String,
    },

    /// The topic does not exist.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),

    /// The topic exists but has no such partition.
    #[error("topic {topic:?} has {partitions} partitions; partition {partition} does not exist")]
    UnknownPartition {
        /// Topic asked for.
        topic: String,
        /// Partition asked for.
        partition: u32,
        /// How many partitions the topic has.
        partitions: u32,
    },

    /// [`crate::open`] was given a URL no backend understands.
    #[error("unsupported log URL {0:?} (expected embedded:<directory> or kafka://host:port[,host:port])")]
    UnsupportedUrl(String),

    /// A record's key plus value is larger than the configured limit.
    #[error("record of {size} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        /// Key plus value size of the rejected record.
        size: usize,
        /// The configured maximum.
        limit: usize,
    },

    /// The topic name breaks the naming rules (see [`crate::validate_topic_name`]).
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// The consumer group name breaks the naming rules (same rules as topic names).
    #[error("invalid consumer group name {name:?}: {reason}")]
    InvalidGroupName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// A topic cannot have zero partitions (or more than the backend supports).
    #[error("invalid partition count {0} (must be between 1 and 100000)")]
    InvalidPartitionCount(u32),

    /// A read started beyond the end of the partition.
    #[error("offset {offset} is out of range for {topic}/{partition} (records exist from {start} up to {end})")]
    OffsetOutOfRange {
        /// Topic read.
        topic: String,
        /// Partition read.
        partition: u32,
        /// Offset asked for.
        offset: u64,
        /// First retained offset.
        start: u64,
        /// End offset (next offset to be written).
        end: u64,
    },

    /// Another process (or another open handle in this process) holds the log directory.
    #[error("log directory {path} is locked by another process")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// Writing to a partition failed earlier (for example an fsync error); the partition refuses
    /// further appends until the log is reopened, because the state of its tail is unknown.
    #[error("partition {topic}/{partition} stopped accepting appends after an earlier failure: {reason}")]
    PartitionFailed {
        /// Topic of the failed partition.
        topic: String,
        /// The failed partition.
        partition: u32,
        /// The original failure.
        reason: String,
    },

    /// The options given to the backend make no sense.
    #[error("invalid log configuration: {0}")]
    InvalidConfig(String),

    /// The log was closed.
    #[error("the log is closed")]
    Closed,

    /// The Kafka cluster (or librdkafka talking to it) failed an operation; only the Kafka backend
    /// returns this.
    #[error("Kafka {operation} failed: {detail}")]
    Kafka {
        /// What the backend was doing, for example "append to device-events/3".
        operation: String,
        /// librdkafka's or the broker's error.
        detail: String,
    },
}

impl LogError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io { path: path.into(), source }
    }

    /// Builds a [`LogError::Corrupt`].
    pub(crate) fn corrupt(path: impl Into<PathBuf>, position: u64, detail: impl Into<String>) -> Self {
        LogError::Corrupt { path: path.into(), position, detail: detail.into() }
    }
}
