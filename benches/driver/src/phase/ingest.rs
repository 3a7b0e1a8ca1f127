//! Sustained ingest: the load generator writes as fast as the host reads it (or at a set rate),
//! and the rate is what the projector commits to PostgreSQL, read from its stored offsets over a
//! window after a warm-up. Peak memory of `serve` is read at the end of the window.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;
use serde_json::json;

use super::{Env, backlog, committed_events, connect};
use crate::server::{ServeSpec, Server};
use crate::stats::{Reading, rate};

/// Readings the load generator writes per write when unthrottled.
const BATCH: u32 = 100;

/// What the ingest phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct IngestResult {
    /// Offered rate (observations/s); 0 means as fast as the host reads.
    pub offered_per_s: u32,
    /// Devices the readings were spread over.
    pub devices: u32,
    /// Warm-up before the window, seconds.
    pub warmup_s: f64,
    /// Measurement window, seconds.
    pub window_s: f64,
    /// Events the projector committed in the window (one per reading once every device exists).
    pub events_committed: u64,
    /// Raw observations per second through the whole pipeline: committed events per second.
    pub pipeline_per_s: f64,
    /// Slowest and fastest 10-second stretch of the window, observations per second.
    pub slowest_10s_per_s: f64,
    /// See `slowest_10s_per_s`.
    pub fastest_10s_per_s: f64,
    /// The rate of each 10-second stretch, in order.
    pub per_10s: Vec<f64>,
    /// Observations the plugin-host accepted and appended per second (the offered load).
    pub host_accepted_per_s: f64,
    /// Raw records the mapper consumed per second.
    pub mapper_per_s: f64,
    /// Records waiting in the mapper and projector at the window's start and end.
    pub backlog_start: f64,
    /// See `backlog_start`.
    pub backlog_end: f64,
    /// Peak resident memory (`VmHWM`) of `tessera serve` at the end of the window, KiB.
    pub serve_peak_rss_kib: u64,
    /// Resident memory at the end of the window, KiB.
    pub serve_rss_kib: u64,
    /// Resident memory just after `serve` answered `/healthz`, KiB (before load builds up).
    pub serve_startup_rss_kib: u64,
}

struct Counters {
    at: Instant,
    events: u64,
    host: f64,
    mapper: f64,
    backlog: f64,
}

async fn read(server: &Server, pool: &sqlx::PgPool) -> anyhow::Result<Counters> {
    let text = server.metrics_text().await?;
    Ok(Counters {
        at: Instant::now(),
        events: committed_events(pool).await?,
        host: crate::prom::sum(&text, "tessera_host_observations_total", None),
        mapper: crate::prom::sum(&text, "tessera_mapper_records_total", None),
        backlog: backlog(server).await?,
    })
}

/// Runs the phase in `data_dir` and leaves its data there for the replay phase.
pub async fn run(
    env: Env<'_>,
    data_dir: &Path,
    offered: u32,
    devices: u32,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<IngestResult> {
    let loadgen = json!({"rate": offered, "devices": devices, "batch": BATCH});
    let server = Server::start(ServeSpec { tessera: env.tessera, repo: env.repo, data_dir, loadgen }).await?;
    let startup = server.memory()?;
    let pool = connect(&server.database_url()?).await?;

    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_events(&pool).await? == 0 {
        if Instant::now() > deadline {
            bail!("no event reached PostgreSQL within 120 s of starting");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tracing::info!(?warmup, "ingest: events are flowing; warming up");
    tokio::time::sleep(warmup).await;

    let origin = Instant::now();
    let start = read(&server, &pool).await?;
    tracing::info!(?window, "ingest: measuring");
    let mut marks = vec![Reading { at_s: 0.0, value: start.events as f64 }];
    while origin.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(10).min(window.saturating_sub(origin.elapsed()))).await;
        let events = committed_events(&pool).await?;
        marks.push(Reading { at_s: origin.elapsed().as_secs_f64(), value: events as f64 });
        tracing::info!(events, elapsed_s = origin.elapsed().as_secs(), "ingest: committed");
    }
    let end = read(&server, &pool).await?;
    let memory = server.memory()?;
    pool.close().await;
    server.stop().await?;

    let seconds = end.at.duration_since(start.at).as_secs_f64();
    let pipeline_per_s = (end.events - start.events) as f64 / seconds;
    // The last stretch may be short; a few seconds say little about steadiness.
    let stretches: Vec<f64> =
        marks.windows(2).filter(|w| w[1].at_s - w[0].at_s >= 5.0).map(|w| rate(w[0], w[1])).collect();
    let slowest = stretches.iter().copied().reduce(f64::min).unwrap_or(pipeline_per_s);
    let fastest = stretches.iter().copied().reduce(f64::max).unwrap_or(pipeline_per_s);
    Ok(IngestResult {
        offered_per_s: offered,
        devices,
        warmup_s: warmup.as_secs_f64(),
        window_s: seconds,
        events_committed: end.events - start.events,
        pipeline_per_s,
        slowest_10s_per_s: slowest,
        fastest_10s_per_s: fastest,
        per_10s: stretches,
        host_accepted_per_s: (end.host - start.host) / seconds,
        mapper_per_s: (end.mapper - start.mapper) / seconds,
        backlog_start: start.backlog,
        backlog_end: end.backlog,
        serve_peak_rss_kib: memory.hwm_kib,
        serve_rss_kib: memory.rss_kib,
        serve_startup_rss_kib: startup.rss_kib,
    })
}
