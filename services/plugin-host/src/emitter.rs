//! Writes what a plugin emits to the log on its behalf: accepted observations to `raw.<plugin>`,
//! refused output to `dlq`. Records are batched so that one durable append covers many of them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tessera_codec::messages::Codec;
use tessera_codec::raw::RawObservation;
use tessera_codec::registry::{RegisteredSchema, now_ms};
use tessera_codec::{Rejection, RejectionError};
use tessera_log::{Log, NewRecord};
use tokio::sync::mpsc;

use crate::protocol::ObserveParams;
use crate::quota::TokenBucket;

/// Largest batch written in one append.
const MAX_BATCH: usize = 1000;

/// Counters of one plugin's output.
#[derive(Debug, Default)]
pub struct Stats {
    /// Observations durably written to the raw topic.
    pub accepted: AtomicI64,
    /// Output refused (contract, quota or protocol violations).
    pub rejected: AtomicI64,
}

enum Item {
    Raw(NewRecord),
    Rejected(NewRecord),
}

/// The per-plugin writer.
pub struct Emitter {
    plugin_id: String,
    raw_topic: String,
    envelope: Arc<RegisteredSchema>,
    codec: Arc<Codec>,
    tx: mpsc::Sender<Item>,
    /// Output counters.
    pub stats: Arc<Stats>,
    /// Rejections written individually per second; the rest are summarized.
    dlq_budget: Mutex<TokenBucket>,
    /// Rejections over the budget since the last summary, by stage.
    suppressed: Mutex<BTreeMap<String, u64>>,
}

impl Emitter {
    /// Starts the writer task for a plugin that may write `dlq_per_second` rejections per second
    /// individually.
    pub fn start(
        plugin_id: &str,
        (raw_topic, dlq_topic): (String, String),
        envelope: Arc<RegisteredSchema>,
        codec: Arc<Codec>,
        log: Arc<dyn Log>,
        dlq_per_second: u32,
    ) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let stats = Arc::new(Stats::default());
        tokio::spawn(write_loop(rx, log, raw_topic.clone(), dlq_topic, stats.clone(), plugin_id.to_owned()));
        Self {
            plugin_id: plugin_id.to_owned(),
            raw_topic,
            envelope,
            codec,
            tx,
            stats,
            dlq_budget: Mutex::new(TokenBucket::new(dlq_per_second)),
            suppressed: Mutex::default(),
        }
    }

    /// Validates an observation against the contract and queues it, or queues its rejection;
    /// returns whether it was accepted.
    pub async fn observe(&self, obs: ObserveParams) -> bool {
        let observed_at_ms = obs.observed_at_ms.unwrap_or_else(now_ms);
        let raw = RawObservation {
            plugin_id: self.plugin_id.clone(),
            observed_at_ms,
            received_at_ms: now_ms(),
            record: obs.record.clone(),
            payload: obs.payload,
        };
        match self.codec.encode_raw(&self.envelope, &raw) {
            Ok(value) => {
                let record = NewRecord { key: Some(obs.external_id.into_bytes()), value, timestamp_ms: observed_at_ms };
                let _ = self.tx.send(Item::Raw(record)).await;
                true
            }
            Err(e) => {
                let (field, expected) = match &e {
                    tessera_codec::CodecError::Shape { field, expected } => (field.clone(), expected.clone()),
                    other => (String::new(), other.to_string()),
                };
                let found = truncate(&raw.payload.to_string(), 256);
                self.reject(
                    "contract",
                    vec![RejectionError { field, rule: format!("contract:{}", obs.record), expected, found }],
                )
                .await;
                false
            }
        }
    }

    /// Counts a rejection of output that never reached the log and queues it for `dlq`, unless the
    /// plugin is over its dlq budget: then it is only counted, and summarized by
    /// [`Emitter::flush_summary`].
    pub async fn reject(&self, stage: &str, errors: Vec<RejectionError>) {
        self.count_rejected(stage, 1);
        let within_budget = self.dlq_budget.lock().map(|mut b| b.try_take()).unwrap_or(true);
        if within_budget {
            self.write_rejection(stage, errors).await;
        } else if let Ok(mut suppressed) = self.suppressed.lock() {
            *suppressed.entry(stage.to_owned()).or_default() += 1;
        }
    }

    /// Counts `count` rejections of output the host dropped before it could even be read (the
    /// plugin wrote faster than the host reads), and writes one `dlq` record saying so.
    pub async fn reject_unread(&self, count: u64) {
        self.count_rejected("overflow", count);
        let error = RejectionError {
            field: "stdout".into(),
            rule: "overflow".into(),
            expected: "plugin output at a pace the host can read".into(),
            found: format!("{count} messages dropped unread"),
        };
        self.write_rejection("overflow", vec![error]).await;
    }

    /// Writes one `dlq` record per stage summarizing the rejections over the budget since the last
    /// call.
    pub async fn flush_summary(&self) {
        let suppressed = match self.suppressed.lock() {
            Ok(mut s) => std::mem::take(&mut *s),
            Err(_) => return,
        };
        for (stage, count) in suppressed {
            let error = RejectionError {
                field: String::new(),
                rule: "dlq_budget".into(),
                expected: "rejections within the plugin's limits.dlq_per_second".into(),
                found: format!("{count} more `{stage}` rejections, counted but not written individually"),
            };
            self.write_rejection(&stage, vec![error]).await;
        }
    }

    fn count_rejected(&self, stage: &str, count: u64) {
        self.stats.rejected.fetch_add(i64::try_from(count).unwrap_or(i64::MAX), Ordering::Relaxed);
        metrics::counter!("tessera_host_rejected_total", "plugin" => self.plugin_id.clone(), "stage" => stage.to_owned())
            .increment(count);
    }

    async fn write_rejection(&self, stage: &str, errors: Vec<RejectionError>) {
        let rejection = Rejection {
            plugin_id: self.plugin_id.clone(),
            stage: stage.to_owned(),
            source_topic: self.raw_topic.clone(),
            source_partition: 0,
            source_offset: -1,
            rejected_at_ms: now_ms(),
            errors,
            original: None,
        };
        match self.codec.encode_rejection(&rejection) {
            Ok(value) => {
                let record =
                    NewRecord { key: Some(self.plugin_id.clone().into_bytes()), value, timestamp_ms: now_ms() };
                let _ = self.tx.send(Item::Rejected(record)).await;
            }
            Err(e) => tracing::error!(plugin = %self.plugin_id, error = %e, "cannot encode rejection"),
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max { text.to_owned() } else { format!("{}…", &text[..text.floor_char_boundary(max)]) }
}

async fn write_loop(
    mut rx: mpsc::Receiver<Item>,
    log: Arc<dyn Log>,
    raw_topic: String,
    dlq_topic: String,
    stats: Arc<Stats>,
    plugin: String,
) {
    let mut raw = Vec::new();
    let mut rejected = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(item) = next {
            match item {
                Item::Raw(r) => raw.push(r),
                Item::Rejected(r) => rejected.push(r),
            }
            next = if raw.len() + rejected.len() < MAX_BATCH { rx.try_recv().ok() } else { None };
        }
        for (topic, batch, is_raw) in [(&raw_topic, &mut raw, true), (&dlq_topic, &mut rejected, false)] {
            if batch.is_empty() {
                continue;
            }
            let count = batch.len();
            let mut delay = std::time::Duration::from_millis(50);
            // The records were accepted from the plugin: retry until the log takes them.
            loop {
                match log.append(topic, batch.clone()).await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::error!(%plugin, %topic, error = %e, "append failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(std::time::Duration::from_secs(5));
                    }
                }
            }
            batch.clear();
            if is_raw {
                stats.accepted.fetch_add(count as i64, Ordering::Relaxed);
                metrics::counter!("tessera_host_observations_total", "plugin" => plugin.clone())
                    .increment(count as u64);
            }
        }
    }
}
