//! Fan-out: many concurrent `stateChanged` subscriptions to one device on one API process. The
//! load generator updates that device every few seconds; each update's delivery to every
//! subscriber is timed from its emission. Memory per subscription is the growth of the `serve`
//! process's resident set divided by the subscriptions held. Beside it, the same updates
//! delivered to a single subscriber.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Env;
use crate::server::{ServeSpec, Server};
use crate::stats::{Summary, now_micros};
use crate::ws::{STATE_CHANGED, StateSample, Subscription};

/// The one device every subscriber watches.
const DEVICE: &str = "loadgen:lg-0";
/// Connections being opened at once: enough to be quick, few enough not to overflow the
/// listener's accept backlog.
const CONNECTING: usize = 64;

/// One update's delivery to every subscriber.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateDelivery {
    /// Offset of the event (identifies the update).
    pub offset: i64,
    /// Subscribers that received it.
    pub delivered: usize,
    /// Emission to delivery over those subscribers.
    pub latency: Summary,
}

/// What the fan-out phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutResult {
    /// Subscriptions attempted.
    pub target: usize,
    /// Subscriptions established.
    pub subscribed: usize,
    /// Why the others failed (the first error), if any did.
    pub limited_by: Option<String>,
    /// Open-file limit of the benchmark and of the server it started.
    pub open_files_limit: u64,
    /// Seconds it took to establish them.
    pub connect_s: f64,
    /// Resident memory of `serve` before the subscriptions, KiB (the idle server).
    pub serve_rss_idle_kib: u64,
    /// Resident memory with every subscription established, KiB.
    pub serve_rss_subscribed_kib: u64,
    /// Resident memory after the measured updates were delivered, KiB.
    pub serve_rss_after_kib: u64,
    /// (after − idle) / subscribed, KiB.
    pub kib_per_subscription: f64,
    /// Each measured update.
    pub updates: Vec<UpdateDelivery>,
    /// Emission to delivery over every subscriber and every measured update.
    pub delivery: Summary,
    /// Baseline: the same kind of update delivered to one subscriber.
    pub baseline_single: Summary,
}

/// Runs the phase in a fresh `data_dir`.
pub async fn run(
    env: Env<'_>,
    data_dir: &Path,
    subscribers: usize,
    updates: usize,
    interval: Duration,
    open_files_limit: u64,
) -> anyhow::Result<FanoutResult> {
    let loadgen = json!({"rate": 1.0 / interval.as_secs_f64().max(0.001), "devices": 1, "batch": 1});
    let server = Server::start(ServeSpec { tessera: env.tessera, repo: env.repo, data_dir, loadgen }).await?;
    server.wait_ready(Duration::from_secs(180)).await?;
    // Let start-up allocations settle before taking the idle figure.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = server.memory()?.rss_kib;
    let per_update = interval * 3 + Duration::from_secs(30);

    tracing::info!(updates, "fan-out: baseline with one subscriber");
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, StateSample)>();
    let mut one = JoinSet::new();
    let subscription =
        Subscription::open(&server.graphql_ws(), server.token(), STATE_CHANGED, json!({"d": DEVICE})).await?;
    one.spawn(forward(0, subscription, tx));
    let baseline = collect(&mut rx, 1, updates, now_micros(), per_update).await;
    one.abort_all();
    let baseline_single = Summary::of_micros(baseline.values().flatten().copied().collect());

    tracing::info!(subscribers, "fan-out: subscribing");
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, StateSample)>();
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    let ws = server.graphql_ws();
    let token = server.token().to_owned();
    let mut opened = futures::stream::iter(0..subscribers)
        .map(|_| {
            let (ws, token) = (ws.clone(), token.clone());
            async move { Subscription::open(&ws, &token, STATE_CHANGED, json!({"d": DEVICE})).await }
        })
        .buffer_unordered(CONNECTING);
    let mut limited_by = None;
    while let Some(result) = opened.next().await {
        match result {
            Ok(subscription) => {
                tasks.spawn(forward(tasks.len(), subscription, tx.clone()));
            }
            Err(e) => {
                limited_by.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    drop(opened);
    drop(tx);
    let subscribed = tasks.len();
    let connect_s = started.elapsed().as_secs_f64();
    tracing::info!(subscribed, connect_s, failed = subscribers - subscribed, "fan-out: subscribed");
    // The server registers a subscription after the client's `subscribe` message: give it time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let subscribed_rss = server.memory()?.rss_kib;
    let measured = collect(&mut rx, subscribed, updates, now_micros(), per_update).await;
    let after = server.memory()?.rss_kib;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    server.stop().await?;

    let all: Vec<i64> = measured.values().flatten().copied().collect();
    Ok(FanoutResult {
        target: subscribers,
        subscribed,
        limited_by,
        open_files_limit,
        connect_s,
        serve_rss_idle_kib: idle,
        serve_rss_subscribed_kib: subscribed_rss,
        serve_rss_after_kib: after,
        kib_per_subscription: after.saturating_sub(idle) as f64 / subscribed.max(1) as f64,
        updates: measured
            .into_iter()
            .map(|(offset, samples)| UpdateDelivery {
                offset,
                delivered: samples.len(),
                latency: Summary::of_micros(samples),
            })
            .collect(),
        delivery: Summary::of_micros(all),
        baseline_single,
    })
}

/// Passes subscriber `id`'s deliveries on until its subscription ends.
async fn forward(id: usize, mut subscription: Subscription, tx: mpsc::UnboundedSender<(usize, StateSample)>) {
    while let Ok(Some(delivery)) = subscription.next().await {
        if let Some(sample) = StateSample::parse(&delivery)
            && tx.send((id, sample)).is_err()
        {
            return;
        }
    }
}

/// Collects the latencies of the first `updates` updates emitted after `after_us`, until each was
/// delivered to `expected` subscribers or `limit` passed since it was first seen. Each
/// subscriber's update is counted once.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<(usize, StateSample)>,
    expected: usize,
    updates: usize,
    after_us: i64,
    limit: Duration,
) -> BTreeMap<i64, Vec<i64>> {
    let mut out: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut seen = HashSet::new();
    let deadline = Instant::now() + limit * (updates as u32 + 1);
    loop {
        let complete = out.len() >= updates && out.values().all(|s| s.len() >= expected);
        if complete || Instant::now() > deadline {
            return out;
        }
        let (id, sample) = match tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            Ok(Some(received)) => received,
            Ok(None) => return out,
            Err(_) => continue,
        };
        // Updates emitted before we started listening may have reached only some subscribers.
        if sample.observed_us < after_us
            || (!out.contains_key(&sample.offset) && out.len() >= updates)
            || !seen.insert((id, sample.offset))
        {
            continue;
        }
        out.entry(sample.offset).or_default().push(sample.latency_us());
    }
}
