//! A plugin that stops being reachable (quarantined, stopped, rejected) takes its devices offline:
//! the projector notifies each of them as an availability change when the plugin enters or leaves
//! such a state (and not on other plugin changes), so that live subscriptions see it, and the API
//! reports them offline while the plugin stays there.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use sqlx::postgres::PgListener;
use tessera_codec::messages::Codec;
use tessera_codec::{PluginLifecycle, SchemaRegistry, Topics};
use tessera_embedded_postgres::{EmbeddedPostgres, PgOptions};
use tessera_log::{EmbeddedLog, EmbeddedOptions, Log, NewRecord};
use tessera_model::{DeviceEvent, DeviceMetadata, EventBody};
use tokio_util::sync::CancellationToken;

const PLUGIN: &str = "lamp-maker";
const DEVICES: [&str; 2] = ["lamp-maker:a", "lamp-maker:b"];

fn upserted(device: &str, offset: usize) -> DeviceEvent {
    DeviceEvent {
        event_id: format!("raw/0/{offset}/0"),
        device_id: device.to_owned(),
        plugin_id: PLUGIN.to_owned(),
        external_id: device.rsplit(':').next().unwrap_or(device).to_owned(),
        observed_at_ms: 1_760_000_000_000,
        body: EventBody::Upserted(DeviceMetadata {
            name: device.to_owned(),
            device_class: "light".into(),
            manufacturer: None,
            model: None,
            firmware: None,
            capabilities: vec!["switch".into()],
            actions: vec!["toggle".into()],
        }),
    }
}

fn lifecycle(state: &str, n: i64) -> PluginLifecycle {
    PluginLifecycle {
        plugin_id: PLUGIN.to_owned(),
        version: "1.0.0".into(),
        state: state.to_owned(),
        detail: None,
        restarts: 0,
        violations: Vec::new(),
        accepted: n,
        rejected: 0,
        at_ms: 1_760_000_000_000 + n,
    }
}

/// Collects notifications until the one for the plugin itself (the last of its batch); returns the
/// devices notified with an availability change before it.
async fn devices_notified_until_plugin(listener: &mut PgListener) -> Vec<String> {
    let mut devices = Vec::new();
    loop {
        let notification = tokio::time::timeout(Duration::from_secs(30), listener.recv())
            .await
            .expect("a notification within 30 s")
            .expect("listener");
        let change: Json = serde_json::from_str(notification.payload()).expect("JSON payload");
        if change["plugin"] == PLUGIN {
            devices.sort();
            return devices;
        }
        let kinds = change["kinds"].as_array().cloned().unwrap_or_default();
        if kinds.iter().any(|k| k == "availability") {
            devices.push(change["device"].as_str().unwrap_or_default().to_owned());
        }
    }
}

async fn online(pool: &sqlx::PgPool) -> Vec<(String, bool)> {
    // What the API derives (services/api/src/db.rs), spelled out for the test.
    sqlx::query_as(
        "SELECT id, online AND NOT EXISTS (SELECT 1 FROM projection.plugins p WHERE p.id = devices.plugin_id
           AND p.state = ANY($1)) FROM projection.devices ORDER BY id",
    )
    .bind(tessera_projector::UNREACHABLE_PLUGIN_STATES)
    .fetch_all(pool)
    .await
    .expect("devices")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_follow_their_plugin_out_of_reach_and_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let topics = Topics::default();
    let log: Arc<dyn Log> =
        Arc::new(EmbeddedLog::open(&dir.path().join("log"), EmbeddedOptions::default()).await.expect("log"));
    let registry = Arc::new(SchemaRegistry::open(log.clone(), &topics).await.expect("registry"));
    let codec = Arc::new(Codec::open(registry, &topics).await.expect("codec"));
    log.create_topic(&topics.device_events(), 1).await.expect("topic");
    log.create_topic(&topics.governance(), 1).await.expect("topic");
    let events = DEVICES
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let event = upserted(d, i);
            NewRecord {
                key: Some(event.device_id.clone().into_bytes()),
                value: codec.encode_event(&event).expect("encode"),
                timestamp_ms: event.observed_at_ms,
            }
        })
        .collect();
    log.append(&topics.device_events(), events).await.expect("append events");

    let pg = EmbeddedPostgres::start(&dir.path().join("postgres"), &PgOptions { unsafe_no_fsync: true })
        .await
        .expect("PostgreSQL");
    let pool = sqlx::PgPool::connect(pg.url()).await.expect("connect");
    tessera_projector::ensure_schema(&pool, tessera_projector::LIVE_SCHEMA).await.expect("schema");
    let mut listener = PgListener::connect_with(&pool).await.expect("listener");
    listener.listen(tessera_projector::CHANGES_CHANNEL).await.expect("listen");
    let shutdown = CancellationToken::new();
    let projector = tokio::spawn(tessera_projector::run(
        tessera_projector::ProjectorConfig::live(topics.clone()),
        log.clone(),
        codec.clone(),
        pool.clone(),
        shutdown.clone(),
    ));

    // Each lifecycle record is its own batch: append one, wait for its plugin notification.
    let mut expect = async |state: &str, n: i64, moved: bool| {
        let record = NewRecord {
            key: Some(PLUGIN.as_bytes().to_vec()),
            value: codec.encode_lifecycle(&lifecycle(state, n)).expect("encode"),
            timestamp_ms: 1_760_000_000_000 + n,
        };
        log.append(&topics.governance(), vec![record]).await.expect("append lifecycle");
        let notified = devices_notified_until_plugin(&mut listener).await;
        let expected: Vec<String> = if moved { DEVICES.iter().map(|d| (*d).to_owned()).collect() } else { Vec::new() };
        assert_eq!(notified, expected, "devices notified when the plugin became {state}");
        let now = online(&pool).await;
        let reachable = !tessera_projector::UNREACHABLE_PLUGIN_STATES.contains(&state);
        assert!(now.iter().all(|(_, on)| *on == reachable), "{state}: {now:?}");
    };
    expect("running", 1, false).await;
    expect("degraded", 2, false).await;
    expect("quarantined", 3, true).await;
    expect("stopped", 4, false).await;
    expect("running", 5, true).await;

    shutdown.cancel();
    projector.await.expect("projector task").expect("projector");
    pool.close().await;
    pg.stop().await;
}
