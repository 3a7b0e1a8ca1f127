//! What the mapper tests share: an embedded log in a temporary directory with the real schema
//! registry and codec, plugin packages registered as the plugin host registers them, raw records
//! written as the host writes them, and the real mapper role running over it all.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_codec::messages::Codec;
use tessera_codec::raw::{RawObservation, envelope_schema_text};
use tessera_codec::registry::RegisteredSchema;
use tessera_codec::{Rejection, SchemaRegistry, Topics};
use tessera_log::membership::Membership;
use tessera_log::{Log, NewRecord};
use tessera_mapper::MapperConfig;
use tessera_model::package::Package;
use tessera_model::{DeviceEvent, EventBody, StateValue};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The directory of the payload fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/payloads")
}

/// A fixture message: the record type, the payload, and (for `bad_*` files) the expected error.
pub struct Message {
    pub file: String,
    pub record: String,
    pub payload: Value,
    pub expect: Option<(String, String)>,
}

/// The messages of a fixture package, sorted by file name.
pub fn messages(package: &str) -> Vec<Message> {
    let dir = fixtures().join(package).join("messages");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let expect = json
                .get("expect")
                .map(|e| (e["field"].as_str().unwrap().to_owned(), e["rule"].as_str().unwrap().to_owned()));
            Message {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                record: json["record"].as_str().unwrap().to_owned(),
                payload: json["payload"].clone(),
                expect,
            }
        })
        .collect()
}

/// An embedded log with the registry and codec on it.
pub struct Bench {
    pub dir: tempfile::TempDir,
    pub log: Arc<dyn Log>,
    pub codec: Arc<Codec>,
    pub topics: Topics,
}

impl Bench {
    pub async fn open() -> Bench {
        let dir = tempfile::Builder::new().prefix("tessera-mapper-").tempdir().unwrap();
        let (log, codec) = open_log(dir.path()).await;
        Bench { dir, log, codec, topics: Topics::default() }
    }

    /// Closes the log and opens it again, as a restarted process would.
    pub async fn reopen(self) -> Bench {
        let Bench { dir, log, codec, topics } = self;
        // The embedded log keeps its directory locked until its last handle (the codec's registry
        // holds one) is gone and its writer tasks have ended.
        drop(codec);
        drop(log);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tessera_log::open(&format!("embedded:{}", dir.path().display())).await {
                Ok(log) => {
                    let codec = codec_on(log.clone()).await;
                    return Bench { dir, log, codec, topics };
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot reopen the log: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Validates a fixture package and registers its raw envelope as the plugin host does.
    pub async fn package(&self, name: &str) -> (PathBuf, Arc<Package>, Arc<RegisteredSchema>) {
        let dir = fixtures().join(name);
        let files = tessera_plugin_host::package::read_files(&dir).unwrap();
        let package = tessera_model::package::validate(&files, tessera_model::Catalog::builtin())
            .unwrap_or_else(|v| panic!("fixture package {name} is invalid: {v:#?}"));
        let id = package.manifest.id.clone();
        let raw_topic = self.topics.raw(&id);
        // As the plugin host does; a topic created earlier keeps its partition count.
        self.log.create_topic(&raw_topic, 1).await.unwrap();
        let envelope = self
            .codec
            .registry()
            .register(&format!("{raw_topic}-value"), &envelope_schema_text(&id, &package.contract_texts))
            .await
            .unwrap();
        (dir, Arc::new(package), envelope)
    }

    /// Encodes an observation and appends it to the plugin's raw topic, keyed by `key`.
    pub async fn append_raw(
        &self,
        package: &Package,
        envelope: &RegisteredSchema,
        key: &str,
        record: &str,
        payload: &Value,
    ) -> (u32, u64) {
        let id = &package.manifest.id;
        let obs = RawObservation {
            plugin_id: id.clone(),
            observed_at_ms: 1_700_000_000_000,
            received_at_ms: 1_700_000_000_001,
            record: record.to_owned(),
            payload: payload.clone(),
        };
        let value = self.codec.encode_raw(envelope, &obs).unwrap();
        self.append_bytes(id, key, value).await
    }

    /// Appends arbitrary bytes to a plugin's raw topic.
    pub async fn append_bytes(&self, plugin_id: &str, key: &str, value: Vec<u8>) -> (u32, u64) {
        let record = NewRecord { key: Some(key.as_bytes().to_vec()), value, timestamp_ms: 1_700_000_000_002 };
        let at = self.log.append(&self.topics.raw(plugin_id), vec![record]).await.unwrap();
        (at[0].partition, at[0].offset)
    }

    /// Starts the real mapper role over `packages` as a member of `membership`'s group.
    pub fn start_mapper(&self, packages: Vec<PathBuf>, membership: Arc<dyn Membership>) -> Mapper {
        let config = MapperConfig { packages, topics: self.topics.clone(), group: "mapper".into() };
        let stop = CancellationToken::new();
        let (log, codec, token) = (self.log.clone(), self.codec.clone(), stop.clone());
        let task = tokio::spawn(async move {
            tessera_mapper::run_member(config, log, codec, membership.as_ref(), token).await.unwrap();
        });
        Mapper { stop, task }
    }

    /// Every device event so far.
    pub async fn events(&self) -> Vec<DeviceEvent> {
        let topic = self.topics.device_events();
        if !self.log.topics().await.unwrap().contains(&topic) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for record in tessera_log::read_all(self.log.as_ref(), &topic, 0).await.unwrap() {
            out.push(self.codec.decode_event(&record.value).await.unwrap());
        }
        out
    }

    /// Every rejection so far.
    pub async fn rejections(&self) -> Vec<Rejection> {
        let topic = self.topics.dlq();
        if !self.log.topics().await.unwrap().contains(&topic) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for record in tessera_log::read_all(self.log.as_ref(), &topic, 0).await.unwrap() {
            out.push(self.codec.decode_rejection(&record.value).await.unwrap());
        }
        out
    }

    /// Polls until `done` holds for the events and rejections, at most `limit`.
    pub async fn until<F>(&self, what: &str, limit: Duration, mut done: F) -> (Vec<DeviceEvent>, Vec<Rejection>)
    where
        F: FnMut(&[DeviceEvent], &[Rejection]) -> bool,
    {
        let deadline = Instant::now() + limit;
        loop {
            let (events, rejections) = (self.events().await, self.rejections().await);
            if done(&events, &rejections) {
                return (events, rejections);
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}: {} events, {} rejections",
                events.len(),
                rejections.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn codec_on(log: Arc<dyn Log>) -> Arc<Codec> {
    let topics = Topics::default();
    let registry = Arc::new(SchemaRegistry::open(log, &topics).await.unwrap());
    Arc::new(Codec::open(registry, &topics).await.unwrap())
}

async fn open_log(dir: &Path) -> (Arc<dyn Log>, Arc<Codec>) {
    let log = tessera_log::open(&format!("embedded:{}", dir.display())).await.unwrap();
    let codec = codec_on(log.clone()).await;
    (log, codec)
}

/// A running mapper.
pub struct Mapper {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Mapper {
    /// Stops it gracefully (it commits and releases its partitions) and waits.
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.task).await.expect("mapper stops in time").unwrap();
    }

    /// Kills it without letting it commit (as a crash would).
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The latest value of each capability of each device, by `device id/capability`.
pub fn latest_states(events: &[DeviceEvent]) -> BTreeMap<String, StateValue> {
    let mut out = BTreeMap::new();
    for event in events {
        if let EventBody::StateReported { states } = &event.body {
            for s in states {
                out.insert(format!("{}/{}", event.device_id, s.capability), s.value.clone());
            }
        }
    }
    out
}

/// The latest metadata of each device.
pub fn latest_metadata(events: &[DeviceEvent]) -> BTreeMap<String, tessera_model::DeviceMetadata> {
    let mut out = BTreeMap::new();
    for event in events {
        if let EventBody::Upserted(meta) = &event.body {
            out.insert(event.device_id.clone(), meta.clone());
        }
    }
    out
}
