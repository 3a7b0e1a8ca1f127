//! The schema registry: schema ids, subjects and versions, kept on the `schemas` topic.
//!
//! Ids are the low 31 bits of the schema's Rabin fingerprint, so registration is idempotent and
//! every process agrees on ids without coordination. The topic is the source of truth; each
//! process caches what it has read and re-reads the topic when asked for an id it does not know.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::rabin::Rabin;
use serde::{Deserialize, Serialize};
use tessera_log::{Log, NewRecord};
use tokio::sync::{Mutex, RwLock};

use crate::{CodecError, Topics};

/// A schema known to the registry.
#[derive(Debug)]
pub struct RegisteredSchema {
    /// Schema id, as in the Confluent framing.
    pub id: u32,
    /// The text the schema was registered with.
    pub text: String,
    /// The parsed schema.
    pub schema: Schema,
}

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectVersion {
    /// Subject name.
    pub subject: String,
    /// Version number, from 1.
    pub version: u32,
    /// Schema id.
    pub id: u32,
}

#[derive(Serialize, Deserialize)]
struct StoredEntry {
    subject: String,
    id: u32,
    schema: String,
}

#[derive(Default)]
struct State {
    by_id: HashMap<u32, Arc<RegisteredSchema>>,
    subjects: BTreeMap<String, Vec<u32>>,
    next_offset: u64,
}

/// The registry of one installation, backed by the `schemas` topic.
pub struct SchemaRegistry {
    log: Arc<dyn Log>,
    topic: String,
    state: RwLock<State>,
    refresh_lock: Mutex<()>,
}

/// The id a schema gets: the low 31 bits of its Rabin fingerprint.
pub fn schema_id(schema: &Schema) -> u32 {
    let fingerprint = schema.fingerprint::<Rabin>();
    let mut bytes = [0u8; 8];
    for (slot, b) in bytes.iter_mut().zip(fingerprint.bytes.iter()) {
        *slot = *b;
    }
    (u64::from_le_bytes(bytes) & 0x7fff_ffff) as u32
}

impl SchemaRegistry {
    /// Opens the registry on `log`, creating its topic if needed and reading what it holds.
    pub async fn open(log: Arc<dyn Log>, topics: &Topics) -> Result<Self, CodecError> {
        let topic = topics.schemas();
        log.create_topic(&topic, 1).await?;
        let registry = Self { log, topic, state: RwLock::new(State::default()), refresh_lock: Mutex::new(()) };
        registry.refresh().await?;
        Ok(registry)
    }

    /// Reads entries appended since the last refresh.
    pub async fn refresh(&self) -> Result<(), CodecError> {
        let _guard = self.refresh_lock.lock().await;
        let mut next = self.state.read().await.next_offset;
        loop {
            let batch = self.log.read(&self.topic, 0, next, 512).await?;
            let Some(last) = batch.last() else { break };
            next = last.offset + 1;
            let mut state = self.state.write().await;
            for record in &batch {
                let Ok(entry) = serde_json::from_slice::<StoredEntry>(&record.value) else {
                    tracing::warn!(offset = record.offset, "skipping unreadable schema registry entry");
                    continue;
                };
                let Ok(schema) = tessera_model::contract_parse::parse_str(&entry.schema) else {
                    tracing::warn!(offset = record.offset, id = entry.id, "skipping unparsable schema");
                    continue;
                };
                state
                    .by_id
                    .entry(entry.id)
                    .or_insert_with(|| Arc::new(RegisteredSchema { id: entry.id, text: entry.schema.clone(), schema }));
                let versions = state.subjects.entry(entry.subject).or_default();
                if !versions.contains(&entry.id) {
                    versions.push(entry.id);
                }
            }
            state.next_offset = next;
        }
        Ok(())
    }

    /// Registers `text` under `subject` and returns it; idempotent.
    pub async fn register(&self, subject: &str, text: &str) -> Result<Arc<RegisteredSchema>, CodecError> {
        // Schema texts may come from plugin packages: parse without letting the library panic.
        let schema =
            tessera_model::contract_parse::parse_str(text).map_err(|e| CodecError::InvalidSchema(e.to_string()))?;
        self.register_parsed(subject, text, schema).await
    }

    /// Registers an already parsed schema whose text is `text`.
    pub async fn register_parsed(
        &self,
        subject: &str,
        text: &str,
        schema: Schema,
    ) -> Result<Arc<RegisteredSchema>, CodecError> {
        let id = schema_id(&schema);
        self.refresh().await?;
        {
            let state = self.state.read().await;
            if let Some(existing) = state.by_id.get(&id) {
                if existing.schema.canonical_form() != schema.canonical_form() {
                    return Err(CodecError::Collision(id));
                }
                if state.subjects.get(subject).is_some_and(|v| v.contains(&id)) {
                    return Ok(existing.clone());
                }
            }
        }
        let entry = StoredEntry { subject: subject.to_owned(), id, schema: text.to_owned() };
        let value = serde_json::to_vec(&entry).map_err(|e| CodecError::InvalidSchema(e.to_string()))?;
        let record = NewRecord { key: Some(id.to_string().into_bytes()), value, timestamp_ms: now_ms() };
        self.log.append(&self.topic, vec![record]).await?;
        self.refresh().await?;
        self.state.read().await.by_id.get(&id).cloned().ok_or(CodecError::UnknownSchema(id))
    }

    /// Looks up a schema by id, re-reading the topic on a miss.
    pub async fn get(&self, id: u32) -> Result<Arc<RegisteredSchema>, CodecError> {
        if let Some(found) = self.state.read().await.by_id.get(&id) {
            return Ok(found.clone());
        }
        self.refresh().await?;
        self.state.read().await.by_id.get(&id).cloned().ok_or(CodecError::UnknownSchema(id))
    }

    /// All subjects, sorted.
    pub async fn subjects(&self) -> Result<Vec<String>, CodecError> {
        self.refresh().await?;
        Ok(self.state.read().await.subjects.keys().cloned().collect())
    }

    /// The versions of a subject, oldest first; empty if the subject is unknown.
    pub async fn versions(&self, subject: &str) -> Result<Vec<SubjectVersion>, CodecError> {
        self.refresh().await?;
        let state = self.state.read().await;
        Ok(state
            .subjects
            .get(subject)
            .map(|ids| {
                ids.iter()
                    .enumerate()
                    .map(|(i, id)| SubjectVersion { subject: subject.to_owned(), version: i as u32 + 1, id: *id })
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
