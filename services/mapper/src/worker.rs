//! One mapper worker: one partition of one plugin's raw topic.

use std::sync::Arc;

use tessera_codec::messages::Codec;
use tessera_codec::registry::now_ms;
use tessera_codec::{CodecError, Rejection, RejectionError};
use tessera_log::{DEFAULT_POLL_WAIT, Log, NewRecord, Record};
use tessera_model::package::Package;
use tessera_model::{Catalog, DeviceEvent, EventBody, ModelError, device_id};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::device_cache::DeviceCache;
use crate::{MapperConfig, MapperError};

/// Most records read per batch (one append of their events, one commit). Without a backlog a
/// batch is whatever arrived since the last one.
const BATCH: usize = 2000;
/// Original records up to this size are kept in their `dlq` rejection.
const MAX_ORIGINAL_BYTES: usize = 64 * 1024;

/// Maps one partition.
pub struct Worker {
    package: Arc<Package>,
    topic: String,
    partition: u32,
    group: String,
    events_topic: String,
    dlq_topic: String,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    cache: DeviceCache,
}

impl Worker {
    /// A worker for `topic`/`partition`.
    pub fn new(
        package: Arc<Package>,
        topic: String,
        partition: u32,
        config: &MapperConfig,
        log: Arc<dyn Log>,
        codec: Arc<Codec>,
    ) -> Self {
        Self {
            package,
            topic,
            partition,
            group: config.group.clone(),
            events_topic: config.topics.device_events(),
            dlq_topic: config.topics.dlq(),
            log,
            codec,
            cache: DeviceCache::default(),
        }
    }

    /// Maps until shutdown.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), MapperError> {
        let span = tracing::info_span!("mapper", topic = %self.topic, partition = self.partition);
        async move {
            let mut next = self.log.committed(&self.group, &self.topic, self.partition).await?.unwrap_or(0);
            tracing::info!(from = next, "mapping");
            while !shutdown.is_cancelled() {
                let batch = self.log.read(&self.topic, self.partition, next, BATCH).await?;
                let Some(last) = batch.last() else {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        r = self.log.wait_for(&self.topic, self.partition, next, DEFAULT_POLL_WAIT) => { r?; }
                    }
                    continue;
                };
                let end = last.offset + 1;
                self.process(&batch).await?;
                self.log.commit(&self.group, &self.topic, self.partition, end).await?;
                next = end;
                if let Ok(high) = self.log.end_offset(&self.topic, self.partition).await {
                    metrics::gauge!("tessera_mapper_lag_records", "topic" => self.topic.clone())
                        .set(high.saturating_sub(next) as f64);
                }
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn process(&mut self, batch: &[Record]) -> Result<(), MapperError> {
        let mut events = Vec::new();
        let mut rejections = Vec::new();
        for record in batch {
            match self.map_record(record).await {
                Ok(mapped) => events.extend(mapped),
                Err(errors) => rejections.push(self.rejection(record, errors)?),
            }
        }
        metrics::counter!("tessera_mapper_records_total", "topic" => self.topic.clone()).increment(batch.len() as u64);
        metrics::counter!("tessera_mapper_rejected_total", "topic" => self.topic.clone())
            .increment(rejections.len() as u64);
        if !events.is_empty() {
            let records = events
                .iter()
                .map(|e| {
                    Ok(NewRecord {
                        key: Some(e.device_id.clone().into_bytes()),
                        value: self.codec.encode_event(e)?,
                        timestamp_ms: e.observed_at_ms,
                    })
                })
                .collect::<Result<Vec<_>, MapperError>>()?;
            self.log.append(&self.events_topic, records).await?;
        }
        if !rejections.is_empty() {
            self.log.append(&self.dlq_topic, rejections).await?;
        }
        Ok(())
    }

    fn rejection(&self, record: &Record, errors: Vec<RejectionError>) -> Result<NewRecord, MapperError> {
        let stage = if errors.iter().any(|e| e.rule == "decode") { "decode" } else { "mapping" };
        let rejection = Rejection {
            plugin_id: self.package.manifest.id.clone(),
            stage: stage.into(),
            source_topic: self.topic.clone(),
            source_partition: self.partition as i32,
            source_offset: record.offset as i64,
            rejected_at_ms: now_ms(),
            errors,
            original: (record.value.len() <= MAX_ORIGINAL_BYTES).then(|| record.value.clone()),
        };
        Ok(NewRecord {
            key: Some(self.package.manifest.id.clone().into_bytes()),
            value: self.codec.encode_rejection(&rejection)?,
            timestamp_ms: now_ms(),
        })
    }

    async fn map_record(&mut self, record: &Record) -> Result<Vec<DeviceEvent>, Vec<RejectionError>> {
        let raw = self.codec.decode_raw(&record.value).await.map_err(|e| vec![decode_error(&e)])?;
        let mapped =
            self.package.mapping.apply(Catalog::builtin(), &raw.record, &raw.payload).map_err(|e| match e {
                ModelError::Mapping { field, rule, expected, found } => {
                    vec![RejectionError { field, rule, expected, found }]
                }
                other => vec![RejectionError {
                    field: "$".into(),
                    rule: "mapping".into(),
                    expected: "a mappable record".into(),
                    found: other.to_string(),
                }],
            })?;
        let plugin_id = &self.package.manifest.id;
        let id = device_id(plugin_id, &mapped.external_id);
        let changes = self.cache.observe(Catalog::builtin(), &self.package.actions, &mapped);
        // Suffixes name the event kind rather than a position, so that an event keeps its id when
        // reprocessing after a restart emits more (or fewer) metadata events for the same record.
        let mut bodies = Vec::new();
        if let Some(metadata) = changes.upserted {
            bodies.push(("upserted", EventBody::Upserted(metadata)));
        }
        if let Some(online) = changes.online {
            bodies.push(("availability", EventBody::Availability { online }));
        }
        if !mapped.states.is_empty() {
            bodies.push(("state", EventBody::StateReported { states: mapped.states }));
        }
        Ok(bodies
            .into_iter()
            .map(|(kind, body)| DeviceEvent {
                event_id: format!("{}/{}/{}/{kind}", self.topic, self.partition, record.offset),
                device_id: id.clone(),
                plugin_id: plugin_id.clone(),
                external_id: mapped.external_id.clone(),
                observed_at_ms: raw.observed_at_ms,
                body,
            })
            .collect())
    }
}

/// A structured `dlq` error for a record that does not decode: what part of the wire format or
/// which limit it broke.
fn decode_error(e: &CodecError) -> RejectionError {
    let (field, expected) = match e {
        CodecError::Framing(_) => ("$".to_owned(), "a Confluent-framed record (magic byte 0, schema id)"),
        CodecError::UnknownSchema(_) => ("$.schema_id".to_owned(), "a schema id known to the registry"),
        CodecError::Limit { .. } => ("$".to_owned(), "a datum within the decoding limits (size, nesting, lengths)"),
        CodecError::Shape { field, .. } => (field.clone(), "a record of the plugin's contract"),
        _ => ("$".to_owned(), "a record of the plugin's contract"),
    };
    RejectionError { field, rule: "decode".into(), expected: expected.into(), found: e.to_string() }
}
