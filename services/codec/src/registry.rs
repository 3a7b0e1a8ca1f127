//! The schema registry: schema ids, subjects and versions, kept on the `schemas` topic.
//!
//! Ids are the low 31 bits of the schema's Rabin fingerprint, so registration is idempotent and
//! every process agrees on ids without coordination. The topic is the source of truth; each
//! process caches what it has read and re-reads the topic when asked for an id it does not know.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use apache_avro::headers::HeaderBuilder;
use apache_avro::rabin::Rabin;
use apache_avro::types::Value;
use apache_avro::{GenericSingleObjectReader, GenericSingleObjectWriter, Schema};
use serde::{Deserialize, Serialize};
use tessera_log::{Log, NewRecord};
use tokio::sync::{Mutex, RwLock};

use crate::{CodecError, Topics, wire};

/// A schema known to the registry.
#[derive(Debug)]
pub struct RegisteredSchema {
    /// Schema id, as in the Confluent framing.
    pub id: u32,
    /// The text the schema was registered with.
    pub text: String,
    /// The parsed schema.
    pub schema: Schema,
    /// The schema with its named types resolved once, for encoding and decoding without resolving
    /// them again for every datum; `None` if they do not resolve (then every use fails as before).
    prepared: Option<Prepared>,
}

impl RegisteredSchema {
    /// A registered schema, its named types resolved once.
    pub fn new(id: u32, text: String, schema: Schema) -> Self {
        let prepared = Prepared::new(id, &schema);
        Self { id, text, schema, prepared }
    }

    pub(crate) fn prepared(&self) -> Option<&Prepared> {
        self.prepared.as_ref()
    }
}

/// A schema resolved for repeated use: the Avro library resolves a schema's named types on every
/// `to_avro_datum`/`from_avro_datum` call (twice per encode), which dominated the cost of a datum.
pub(crate) struct Prepared {
    /// Named types by full name, for the pre-decoding guard.
    pub(crate) names: HashMap<apache_avro::schema::Name, Schema>,
    /// The payload record types, when the schema is a raw envelope (`raw::payload_types`).
    pub(crate) payload_types: Vec<String>,
    /// Validates and encodes with the resolved schema; writes [`PAD`] zero bytes and then the
    /// Confluent header before the datum (its header must be 10 to 20 bytes long).
    writer: std::sync::Mutex<GenericSingleObjectWriter>,
    /// The writer's header, to build a fresh writer after a failed write.
    padded_header: Vec<u8>,
    /// The schema, for the same.
    schema: Schema,
    /// Decodes a whole framed record (its header is exactly the Confluent header).
    reader: GenericSingleObjectReader,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("names", &self.names.len()).finish_non_exhaustive()
    }
}

/// Zero bytes the prepared writer's header starts with, dropped from its output.
const PAD: usize = 5;

struct Header(Vec<u8>);

impl HeaderBuilder for Header {
    fn build_header(&self) -> Vec<u8> {
        self.0.clone()
    }
}

/// Drops the first `skip` bytes written, appends the rest to `out`.
struct SkipFirst<'a> {
    skip: usize,
    out: &'a mut Vec<u8>,
}

impl std::io::Write for SkipFirst<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let skipped = self.skip.min(buf.len());
        self.skip -= skipped;
        self.out.extend_from_slice(&buf[skipped..]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Prepared {
    fn new(id: u32, schema: &Schema) -> Option<Self> {
        let names = crate::guard::named_types(schema).ok()?;
        let header = wire::frame(id, &[]);
        let mut padded = vec![0u8; PAD];
        padded.extend_from_slice(&header);
        let writer =
            GenericSingleObjectWriter::new_with_capacity_and_header_builder(schema, 256, Header(padded.clone()))
                .ok()?;
        let reader = GenericSingleObjectReader::new_with_header_builder(schema.clone(), Header(header)).ok()?;
        Some(Self {
            names,
            payload_types: crate::raw::payload_types(schema),
            writer: std::sync::Mutex::new(writer),
            padded_header: padded,
            schema: schema.clone(),
            reader,
        })
    }

    /// Validates `value` against the schema and returns it encoded and framed.
    pub(crate) fn encode_framed(&self, value: &Value) -> Result<Vec<u8>, apache_avro::Error> {
        let mut out = Vec::with_capacity(128);
        let mut writer = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = writer.write_value_ref(value, &mut SkipFirst { skip: PAD, out: &mut out }) {
            // A write that fails half-way leaves the writer's buffer dirty: start from a clean one.
            let header = Header(self.padded_header.clone());
            if let Ok(fresh) =
                GenericSingleObjectWriter::new_with_capacity_and_header_builder(&self.schema, 256, header)
            {
                *writer = fresh;
            }
            return Err(e);
        }
        Ok(out)
    }

    /// Decodes a whole framed record (header included) written with this schema.
    pub(crate) fn decode_framed(&self, framed: &[u8]) -> Result<Value, apache_avro::Error> {
        self.reader.read_value(&mut &framed[..])
    }
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
                    .or_insert_with(|| Arc::new(RegisteredSchema::new(entry.id, entry.schema.clone(), schema)));
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
        // Every record decoded looks its schema up here: the uncontended case takes the lock
        // without awaiting, so a consumer decoding a batch does not spend its scheduling budget
        // (and yield to the runtime) on lookups.
        if let Ok(state) = self.state.try_read()
            && let Some(found) = state.by_id.get(&id)
        {
            return Ok(found.clone());
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::{self, RawObservation};
    use serde_json::json;

    fn envelope() -> (Schema, String) {
        let contract = vec![
            r#"{"type":"record","name":"A","namespace":"p","fields":[{"name":"x","type":"int"}]}"#.to_string(),
            r#"{"type":"record","name":"B","namespace":"p","fields":[{"name":"x","type":["null","double"]},{"name":"a","type":"p.A"},{"name":"as","type":{"type":"array","items":"p.A"}}]}"#.to_string(),
        ];
        let text = raw::envelope_schema_text("my-plugin", &contract);
        (Schema::parse_str(&text).unwrap(), text)
    }

    #[test]
    fn prepared_encoding_and_decoding_match_the_library() {
        let (schema, text) = envelope();
        let id = schema_id(&schema);
        let registered = RegisteredSchema::new(id, text, schema.clone());
        let prepared = registered.prepared().expect("the envelope resolves");
        assert_eq!(prepared.payload_types, vec!["p.A".to_string(), "p.B".to_string()]);
        let obs = RawObservation {
            plugin_id: "my-plugin".into(),
            observed_at_ms: 1,
            received_at_ms: 2,
            record: "p.B".into(),
            payload: json!({"x": 1.5, "a": {"x": 2}, "as": [{"x": 3}, {"x": 4}]}),
        };
        let value = raw::to_value(&schema, &obs).unwrap();
        let with = raw::to_value_with(&schema, &prepared.payload_types, &prepared.names, &obs).unwrap();
        assert_eq!(with, value);
        let expected = wire::frame(id, &apache_avro::to_avro_datum(&schema, value.clone()).unwrap());
        assert_eq!(prepared.encode_framed(&value).unwrap(), expected);
        let decoded = prepared.decode_framed(&expected).unwrap();
        assert_eq!(decoded, apache_avro::from_avro_datum(&schema, &mut &expected[5..], None).unwrap());
        assert_eq!(raw::from_value_with(&prepared.payload_types, &decoded).unwrap(), obs);
        crate::guard::check_datum_named(&schema, &prepared.names, &expected[5..], &Default::default()).unwrap();
        // A value that does not match fails, and leaves the writer as good as new.
        assert!(prepared.encode_framed(&Value::Null).is_err());
        assert_eq!(prepared.encode_framed(&value).unwrap(), expected);
    }

    #[test]
    fn contract_mismatches_still_name_the_field() {
        let (schema, text) = envelope();
        let registered = RegisteredSchema::new(schema_id(&schema), text, schema.clone());
        let prepared = registered.prepared().unwrap();
        let obs = RawObservation {
            plugin_id: "my-plugin".into(),
            observed_at_ms: 1,
            received_at_ms: 2,
            record: "p.B".into(),
            payload: json!({"x": null, "a": {"x": 2}, "as": [{"x": 3}, {"x": "four"}]}),
        };
        let err = raw::to_value_with(&schema, &prepared.payload_types, &prepared.names, &obs).unwrap_err();
        assert!(matches!(err, CodecError::Shape { ref field, .. } if field == "$.as[1].x"), "{err}");
    }
}
