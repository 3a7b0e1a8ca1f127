//! Consumer-group offsets: one small JSON file per group, topic and partition under
//! `<dir>/__groups/<group>/<topic>/<partition>.json`, each replaced atomically on commit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::fsutil::{create_dir_durable, write_atomic};
use crate::LogError;

#[derive(Debug, Serialize, Deserialize)]
struct CommittedOffset {
    next_offset: u64,
}

type Key = (String, String, u32);

/// Stores committed offsets durably and caches them in memory.
#[derive(Debug)]
pub(crate) struct GroupStore {
    root: PathBuf,
    cache: Mutex<HashMap<Key, Option<u64>>>,
    /// Serializes commits: they share temporary file names and directory creation.
    write: tokio::sync::Mutex<()>,
}

impl GroupStore {
    /// A store rooted at `<dir>/__groups` (created on first commit).
    pub(crate) fn new(dir: &Path) -> GroupStore {
        GroupStore { root: dir.join("__groups"), cache: Mutex::new(HashMap::new()), write: tokio::sync::Mutex::new(()) }
    }

    fn path(&self, group: &str, topic: &str, partition: u32) -> PathBuf {
        self.root.join(group).join(topic).join(format!("{partition}.json"))
    }

    /// Durably stores `next_offset`; returns once it would survive a power failure.
    pub(crate) async fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        next_offset: u64,
    ) -> Result<(), LogError> {
        let _guard = self.write.lock().await;
        let path = self.path(group, topic, partition);
        let bytes = serde_json::to_vec(&CommittedOffset { next_offset })
            .map_err(|e| LogError::io(&path, std::io::Error::other(e)))?;
        let target = path.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(parent) = target.parent() {
                create_dir_durable(parent)?;
            }
            write_atomic(&target, &bytes)
        })
        .await
        .map_err(|e| LogError::io(&path, std::io::Error::other(e)))??;
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((group.to_owned(), topic.to_owned(), partition), Some(next_offset));
        Ok(())
    }

    /// The committed offset, if any.
    pub(crate) async fn committed(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>, LogError> {
        let key = (group.to_owned(), topic.to_owned(), partition);
        if let Some(cached) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok(*cached);
        }
        let path = self.path(group, topic, partition);
        let loaded = tokio::task::spawn_blocking(move || load(&path))
            .await
            .map_err(|e| LogError::io(&self.root, std::io::Error::other(e)))??;
        // A commit racing with this load wins: only fill the cache if nothing is there yet.
        Ok(*self.cache.lock().unwrap_or_else(PoisonError::into_inner).entry(key).or_insert(loaded))
    }
}

fn load(path: &Path) -> Result<Option<u64>, LogError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io(path, e)),
    };
    let stored: CommittedOffset = serde_json::from_slice(&bytes)
        .map_err(|e| LogError::corrupt(path, 0, format!("committed offset file is not valid: {e}")))?;
    Ok(Some(stored.next_offset))
}
