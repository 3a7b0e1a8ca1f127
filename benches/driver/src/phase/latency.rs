//! Latency from a plugin's emit to the GraphQL subscription delivering it, at a fixed offered
//! rate. The load generator stamps each reading with the wall-clock time it was written
//! (`observed_at_ms`); probe subscriptions (`stateChanged`, one device each) note when each
//! update arrives. Every device emits once per second (devices = rate), far longer than the
//! latency, so a delivered value is the one whose notification triggered it. Beside it, PostgreSQL's
//! own LISTEN/NOTIFY delay on the same database under the same load.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{Env, backlog, committed_events, connect};
use crate::baseline::notify::NotifyProbe;
use crate::server::{ServeSpec, Server};
use crate::stats::{Summary, now_micros};
use crate::ws::{STATE_CHANGED, StateSample, Subscription};

/// What one latency run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyResult {
    /// Offered rate, observations per second.
    pub offered_per_s: u32,
    /// Devices (each emits once per second).
    pub devices: u32,
    /// Probe subscriptions.
    pub probes: usize,
    /// Measurement window, seconds.
    pub window_s: f64,
    /// Observations the plugin-host accepted per second during the window.
    pub host_accepted_per_s: f64,
    /// Events the projector committed per second during the window.
    pub committed_per_s: f64,
    /// Records waiting in the mapper and projector at the window's start and end.
    pub backlog_start: f64,
    /// See `backlog_start`.
    pub backlog_end: f64,
    /// Whether the pipeline kept up: it accepted and committed at least 95 % of the offered rate
    /// and its backlog grew by less than two seconds' worth.
    pub sustained: bool,
    /// Emission to delivery, over every probe delivery in the window.
    pub latency: Summary,
    /// Baseline: PostgreSQL's NOTIFY to LISTEN delay on the same database meanwhile.
    pub baseline_notify: Summary,
}

/// Runs at `rate` observations/s in `data_dir` (a fresh directory or one a previous run left).
pub async fn run(
    env: Env<'_>,
    data_dir: &Path,
    rate: u32,
    probes: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<LatencyResult> {
    let devices = rate.max(probes as u32).max(1);
    // Writes of a millisecond's worth of readings keep the emission smooth.
    let loadgen = json!({"rate": rate, "devices": devices, "batch": (rate / 1000).max(1)});
    let server = Server::start(ServeSpec { tessera: env.tessera, repo: env.repo, data_dir, loadgen }).await?;
    server.wait_ready(Duration::from_secs(180)).await?;
    let pool = connect(&server.database_url()?).await?;

    let (tx, mut rx) = mpsc::unbounded_channel::<StateSample>();
    let mut tasks = JoinSet::new();
    for k in 0..probes {
        let device = format!("loadgen:lg-{}", k as u64 * u64::from(devices) / probes as u64);
        let mut subscription =
            Subscription::open(&server.graphql_ws(), server.token(), STATE_CHANGED, json!({"d": device}))
                .await
                .with_context(|| format!("probe subscription on {device}"))?;
        let tx = tx.clone();
        tasks.spawn(async move {
            while let Ok(Some(delivery)) = subscription.next().await {
                if let Some(sample) = StateSample::parse(&delivery)
                    && tx.send(sample).is_err()
                {
                    return;
                }
            }
        });
    }
    drop(tx);
    tracing::info!(rate, probes, ?warmup, "latency: probes subscribed; warming up");
    tokio::time::sleep(warmup).await;

    let notify = NotifyProbe::start(&pool).await?;
    let (started, started_us) = (Instant::now(), now_micros());
    let (host0, events0, backlog0) = (
        server.metric("tessera_host_observations_total", None).await?,
        committed_events(&pool).await?,
        backlog(&server).await?,
    );
    tracing::info!(?window, "latency: measuring");
    tokio::time::sleep(window).await;
    let (host1, events1, backlog1) = (
        server.metric("tessera_host_observations_total", None).await?,
        committed_events(&pool).await?,
        backlog(&server).await?,
    );
    let (seconds, ended_us) = (started.elapsed().as_secs_f64(), now_micros());
    let baseline_notify = notify.finish().await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}

    let mut seen = HashSet::new();
    let mut samples = Vec::new();
    while let Ok(sample) = rx.try_recv() {
        // Count each update once (a repeated notification re-delivers the same value).
        if (started_us..ended_us).contains(&sample.received_us) && seen.insert((sample.device.clone(), sample.offset)) {
            samples.push(sample.latency_us());
        }
    }
    pool.close().await;
    server.stop().await?;

    let host_accepted_per_s = (host1 - host0) / seconds;
    let committed_per_s = (events1 - events0) as f64 / seconds;
    let offered = f64::from(rate);
    let sustained = host_accepted_per_s >= 0.95 * offered
        && committed_per_s >= 0.95 * offered
        && backlog1 - backlog0 < 2.0 * offered;
    Ok(LatencyResult {
        offered_per_s: rate,
        devices,
        probes,
        window_s: seconds,
        host_accepted_per_s,
        committed_per_s,
        backlog_start: backlog0,
        backlog_end: backlog1,
        sustained,
        latency: Summary::of_micros(samples),
        baseline_notify,
    })
}
