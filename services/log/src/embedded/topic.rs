//! Topics on disk: loading every complete topic when the log opens, and creating new ones.
//! `topic.json` is written last and atomically, so its presence marks a fully created topic.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::MAX_PARTITIONS;
use super::fsutil::{DirLock, create_dir_durable, fsync_dir, write_atomic};
use super::partition::{PartitionShared, open_partition};
use super::segment::{Segment, parse_segment_file_name};
use crate::LogError;
use crate::names::validate_topic_name;

/// Contents of `topic.json`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TopicMeta {
    pub partitions: u32,
}

/// Every partition of a topic, recovered, with the byte position its writer continues at.
pub(crate) type LoadedTopic = Vec<(Arc<PartitionShared>, u64)>;

/// Takes the directory lock and opens every complete topic (blocking).
pub(crate) fn load_dir(dir: &Path) -> Result<(DirLock, Vec<(String, LoadedTopic)>), LogError> {
    create_dir_durable(dir)?;
    let lock = DirLock::acquire(dir)?;
    let mut topics = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let is_dir = entry.file_type().map_err(|e| LogError::io(entry.path(), e))?.is_dir();
        let name = entry.file_name();
        match name.to_str() {
            Some(name) if is_dir && validate_topic_name(name).is_ok() => names.push(name.to_owned()),
            _ => {}
        }
    }
    names.sort();
    for name in names {
        let topic_dir = dir.join(&name);
        let meta_path = topic_dir.join("topic.json");
        let bytes = match std::fs::read(&meta_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Creation was interrupted before its last step; `create_topic` finishes it.
                tracing::warn!(topic = %name, "ignoring topic directory without topic.json");
                continue;
            }
            Err(e) => return Err(LogError::io(&meta_path, e)),
        };
        let meta: TopicMeta = serde_json::from_slice(&bytes)
            .map_err(|e| LogError::corrupt(&meta_path, 0, format!("invalid topic.json: {e}")))?;
        if meta.partitions == 0 || meta.partitions > MAX_PARTITIONS {
            return Err(LogError::corrupt(&meta_path, 0, format!("invalid partition count {}", meta.partitions)));
        }
        topics.push((name.clone(), load_topic(&topic_dir, &name, meta.partitions)?));
    }
    Ok((lock, topics))
}

fn load_topic(topic_dir: &Path, name: &str, partitions: u32) -> Result<LoadedTopic, LogError> {
    (0..partitions).map(|p| open_partition(&topic_dir.join(p.to_string()), name, p)).collect()
}

/// Creates a topic on disk (blocking): partition directories with an empty first segment, then
/// `topic.json` atomically as the commit point.
pub(crate) fn create_topic_on_disk(dir: &Path, name: &str, partitions: u32) -> Result<LoadedTopic, LogError> {
    let topic_dir = dir.join(name);
    create_dir_durable(&topic_dir)?;
    for p in 0..partitions {
        let partition_dir = topic_dir.join(p.to_string());
        create_dir_durable(&partition_dir)?;
        let has_segment = std::fs::read_dir(&partition_dir)
            .map_err(|e| LogError::io(&partition_dir, e))?
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_str().and_then(parse_segment_file_name).is_some());
        if !has_segment {
            Segment::create(&partition_dir, 0)?;
        }
    }
    fsync_dir(&topic_dir)?;
    let meta = serde_json::to_vec(&TopicMeta { partitions })
        .map_err(|e| LogError::io(&topic_dir, std::io::Error::other(e)))?;
    write_atomic(&topic_dir.join("topic.json"), &meta)?;
    load_topic(&topic_dir, name, partitions)
}
