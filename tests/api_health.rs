//! `/healthz`, `/readyz` and `/metrics`, with real processes:
//!
//! - in `serve` mode the stack is ready, and `/metrics` exports the consumer lag of every role
//!   (projector, mapper, plugin-host) besides the roles' own metrics;
//! - with the roles split (`tessera run api`, `tessera run projector`), the API is not ready while
//!   the projector is more than the bound behind, says why, and becomes ready once it caught up.

mod harness;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{Stack, StackOptions, free_port};
use serde_json::Value;
use tessera_codec::messages::Codec;
use tessera_codec::{SchemaRegistry, Topics};
use tessera_embedded_postgres::{EmbeddedPostgres, PgOptions};
use tessera_log::{EmbeddedLog, EmbeddedOptions, Log, NewRecord};
use tessera_model::{DeviceEvent, EventBody, StateEntry, StateValue};
use tokio::process::{Child, Command};

async fn metrics_text(http: &reqwest::Client, base: &str, token: &str) -> String {
    let response = http.get(format!("{base}/metrics")).bearer_auth(token).send().await.expect("metrics");
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_is_ready_and_exports_the_lag_of_every_role() {
    let mut stack = Stack::start(StackOptions { demo: true, ..Default::default() }).await;
    let health = stack.http().get(format!("{}/healthz", stack.base)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = stack.http().get(format!("{}/readyz", stack.base)).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let body: Value = ready.json().await.unwrap();
    for check in ["database", "log", "change_listener", "ready"] {
        assert_eq!(body[check], true, "{check}: {body}");
    }
    assert!(body["projector_lag"].as_u64().is_some_and(|l| l <= 10_000), "{body}");
    assert_eq!(stack.http().get(format!("{}/metrics", stack.base)).send().await.unwrap().status().as_u16(), 401);

    // Once the simulator's observations flowed, every role has a lag gauge.
    let text = stack
        .eventually("lag gauges of every role", Duration::from_secs(60), || async {
            let text = metrics_text(stack.http(), &stack.base, &stack.token).await;
            ["projector", "mapper", "plugin-host"]
                .iter()
                .all(|role| text.contains(&format!("tessera_api_consumer_lag_records{{role=\"{role}\"")))
                .then_some(text)
        })
        .await;
    assert!(
        text.contains("tessera_api_consumer_lag_records{role=\"mapper\",topic=\"tessera.raw.simulator\"}"),
        "{text}"
    );
    // The roles' own metrics come through the same exposition in serve mode.
    assert!(text.contains("tessera_projector_records_total"), "{text}");
    assert!(text.contains("\ntessera_mapper_"), "{text}");
    assert!(stack.stop().await, "tessera serve did not exit cleanly");
}

/// Writes `count` state reports of one device to a fresh embedded log, then closes it.
async fn write_events(dir: &std::path::Path, count: usize) {
    let topics = Topics::default();
    let log = Arc::new(EmbeddedLog::open(dir, EmbeddedOptions::default()).await.expect("log"));
    {
        let dyn_log: Arc<dyn Log> = log.clone();
        let registry = Arc::new(SchemaRegistry::open(dyn_log.clone(), &topics).await.expect("registry"));
        let codec = Codec::open(registry, &topics).await.expect("codec");
        dyn_log.create_topic(&topics.device_events(), 1).await.expect("topic");
        let events: Vec<NewRecord> = (0..count)
            .map(|i| {
                let event = DeviceEvent {
                    event_id: format!("t/0/{i}/state"),
                    device_id: "sim:probe".into(),
                    plugin_id: "sim".into(),
                    external_id: "probe".into(),
                    observed_at_ms: 1_760_000_000_000 + i as i64 * 1000,
                    body: EventBody::StateReported {
                        states: vec![StateEntry {
                            capability: "temperature".into(),
                            value: StateValue::Float(i as f64),
                        }],
                    },
                };
                NewRecord {
                    key: Some(b"sim:probe".to_vec()),
                    value: codec.encode_event(&event).expect("encode"),
                    timestamp_ms: event.observed_at_ms,
                }
            })
            .collect();
        for chunk in events.chunks(2000) {
            dyn_log.append(&topics.device_events(), chunk.to_vec()).await.expect("append");
        }
    }
    log.close().await.expect("close");
}

fn tessera(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args).env("RUST_LOG", "warn,sqlx=error").stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

async fn stop(mut child: Child) {
    if let Some(pid) = child.id() {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    let _ = child.kill().await;
}

/// Polls `/readyz` until `accept` says yes; returns (status, body).
async fn readyz_until(http: &reqwest::Client, base: &str, accept: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if accept(status, &body) {
                return (status, body);
            }
            assert!(Instant::now() < deadline, "readyz never got there; last {status} {body}");
        }
        assert!(Instant::now() < deadline, "readyz did not answer");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_not_ready_while_the_projector_lags_beyond_the_bound() {
    let dir = tempfile::Builder::new().prefix("tessera-readyz-").tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let log_url = format!("embedded:{}", dir.path().join("log").display());
    write_events(&dir.path().join("log"), 12_000).await;
    let pg = EmbeddedPostgres::start(&dir.path().join("postgres"), &PgOptions { unsafe_no_fsync: true })
        .await
        .expect("PostgreSQL");
    let url = pg.url().to_owned();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();

    let created = tessera(&["token", "create", "--name", "probe", "--scope", "read", "--database-url", &url])
        .output()
        .await
        .expect("token create");
    let token = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert!(token.starts_with("tsr_"), "{}", String::from_utf8_lossy(&created.stderr));

    // The API alone: 12 000 records not projected is beyond the 10 000 bound.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let api = tessera(&["run", "api", "--log-url", &log_url, "--database-url", &url, "--listen", &listen])
        .spawn()
        .expect("run api");
    let (status, body) = readyz_until(&http, &base, |_, b| b["change_listener"] == true).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["projector_lag"], 12_000, "{body}");
    assert_eq!(body["database"], true, "{body}");
    assert_eq!(body["log"], true, "{body}");
    let text = metrics_text(&http, &base, &token).await;
    assert!(
        text.contains("tessera_api_consumer_lag_records{role=\"projector\",topic=\"tessera.device-events\"} 12000"),
        "{text}"
    );
    stop(api).await;

    // The projector catches up (the embedded log admits one process at a time).
    let projector =
        tessera(&["run", "projector", "--log-url", &log_url, "--database-url", &url]).spawn().expect("run projector");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT next_offset FROM projection.consumer_offsets WHERE topic = 'tessera.device-events'")
                .fetch_optional(&pool)
                .await
                .unwrap_or(None);
        if row.is_some_and(|(o,)| o == 12_000) {
            break;
        }
        assert!(Instant::now() < deadline, "the projector did not catch up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(projector).await;

    let api = tessera(&["run", "api", "--log-url", &log_url, "--database-url", &url, "--listen", &listen])
        .spawn()
        .expect("run api");
    let (status, body) = readyz_until(&http, &base, |s, _| s == 200).await;
    assert_eq!(body["projector_lag"], 0, "{status} {body}");
    stop(api).await;
    pool.close().await;
    pg.stop().await;
}
