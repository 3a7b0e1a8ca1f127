//! `tessera-bench`: drives the real pipeline (`tessera serve` with the `benches/loadgen` plugin,
//! the durable embedded log, the embedded PostgreSQL with fsync on) and reports each figure beside
//! a baseline measured in the same run on the same machine: ingest beside PostgreSQL's and the
//! log's own write rates, latency beside PostgreSQL's NOTIFY delay, replay beside reading the log,
//! fan-out beside a single subscriber, peak memory beside an idle server. Results go to
//! `benches/results/latest.json` and the table in `BENCHMARKS.md`.

mod baseline;
mod cli;
mod machine;
mod phase;
mod prom;
mod report;
mod server;
mod stats;
mod ws;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use crate::cli::{Args, Phase};
use crate::phase::Env;
use crate::phase::latency::LatencyResult;
use crate::report::{IngestReport, LoadMark, MemoryReport, Report};

/// Steps down from an unsustainable latency rate at most this many times.
const RATE_RETRIES: usize = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match run(Args::parse()).await {
        Ok(report) => {
            println!("{}", report.markdown());
            if report.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root this driver was built from.
fn repo_root() -> anyhow::Result<PathBuf> {
    Ok(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize()?)
}

/// Builds `tessera` with the profile this driver was built with, and returns the binary beside us.
fn build_tessera(repo: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(repo).args(["build", "-p", "tessera", "--bin", "tessera"]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let status = cmd.status().context("cannot run cargo to build tessera")?;
    if !status.success() {
        bail!("building tessera failed ({status})");
    }
    let exe = std::env::current_exe()?;
    let tessera = exe.parent().context("no directory beside the driver")?.join("tessera");
    if !tessera.is_file() {
        bail!("{} was not built; pass --tessera", tessera.display());
    }
    Ok(tessera)
}

fn mark(report: &mut Report, at: &str) {
    report.load.push(LoadMark { at: at.to_owned(), load_average: machine::load_average() });
}

fn absolute(repo: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { repo.join(path) }
}

async fn run(args: Args) -> anyhow::Result<Report> {
    let repo = repo_root()?;
    let open_files = machine::raise_open_files().context("cannot raise the open-file limit")?;
    let tessera = match &args.tessera {
        Some(path) => path.canonicalize().with_context(|| format!("{}", path.display()))?,
        None => build_tessera(&repo)?,
    };
    let work = tempfile::Builder::new()
        .prefix("tessera-bench-")
        .tempdir_in(args.work_dir.clone().unwrap_or_else(std::env::temp_dir))?;
    // The embedded PostgreSQL runs as the `postgres` user when we are root: it must get through.
    std::fs::set_permissions(work.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let env = Env { tessera: &tessera, repo: &repo };
    let profile = if cfg!(debug_assertions) { "" } else { " --release" };
    let arguments = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let command = format!("cargo run{profile} -p tessera-bench -- {arguments}");
    let mut report = Report {
        command: command.trim_end().to_owned(),
        started_at: chrono::Utc::now().to_rfc3339(),
        finished_at: String::new(),
        machine: machine::Machine::detect(),
        load: Vec::new(),
        durability: "durable defaults: log fsync on every append, PostgreSQL fsync and synchronous_commit on".into(),
        duration_s: args.duration,
        warmup_s: args.warmup,
        ingest: None,
        replay: None,
        latency: Vec::new(),
        fanout: None,
        memory: None,
        errors: Vec::new(),
    };
    mark(&mut report, "start");
    let (warmup, window) = (Duration::from_secs(args.warmup), Duration::from_secs(args.duration));
    for phase in &args.phases {
        match phase {
            Phase::Ingest => ingest(&args, env, work.path(), warmup, window, &mut report).await,
            Phase::Latency => latency(&args, env, work.path(), warmup, window, &mut report).await,
            Phase::Fanout => {
                let interval = Duration::from_secs(args.fanout_interval);
                let dir = work.path().join("fanout");
                match phase::fanout::run(env, &dir, args.subscribers, args.fanout_updates, interval, open_files).await {
                    Ok(f) => {
                        if let Some(m) = &mut report.memory {
                            m.baseline_idle_rss_kib = Some(f.serve_rss_idle_kib);
                        }
                        report.fanout = Some(f);
                    }
                    Err(e) => report.errors.push(format!("fan-out: {e:#}")),
                }
                mark(&mut report, "after fan-out");
            }
        }
    }
    report.finished_at = chrono::Utc::now().to_rfc3339();
    report.write_json(&absolute(&repo, &args.output))?;
    if args.markdown != Path::new("-") {
        report.write_markdown(&absolute(&repo, &args.markdown))?;
    }
    Ok(report)
}

async fn ingest(args: &Args, env: Env<'_>, work: &Path, warmup: Duration, window: Duration, report: &mut Report) {
    let dir = work.join("ingest");
    match phase::ingest::run(env, &dir, args.ingest_rate, args.ingest_devices, warmup, window).await {
        Ok(pipeline) => {
            report.memory = Some(MemoryReport {
                peak_rss_kib: pipeline.serve_peak_rss_kib,
                at_rate_per_s: pipeline.pipeline_per_s,
                baseline_idle_rss_kib: report.fanout.as_ref().map(|f| f.serve_rss_idle_kib),
            });
            report.ingest = Some(IngestReport { pipeline, baselines: None });
        }
        Err(e) => {
            report.errors.push(format!("ingest: {e:#}"));
            return;
        }
    }
    mark(report, "after ingest");
    match phase::replay::run(&dir, args.baseline_rows).await {
        Ok((replay, baselines)) => {
            report.replay = Some(replay);
            if let Some(i) = &mut report.ingest {
                i.baselines = Some(baselines);
            }
        }
        Err(e) => report.errors.push(format!("replay and ingest baselines: {e:#}")),
    }
    // The ingest data can be gigabytes; nothing needs it any more.
    let _ = std::fs::remove_dir_all(&dir);
    mark(report, "after replay");
}

async fn latency(args: &Args, env: Env<'_>, work: &Path, warmup: Duration, window: Duration, report: &mut Report) {
    for &rate in &args.latency_rates {
        let mut rate = rate;
        for attempt in 0..=RATE_RETRIES {
            // A fresh directory each time: an unsustained run leaves a backlog the next would inherit.
            let dir = work.join(format!("latency-{rate}"));
            let result = phase::latency::run(env, &dir, rate, args.probes, warmup, window).await;
            let _ = std::fs::remove_dir_all(&dir);
            mark(report, &format!("after latency at {rate}/s"));
            match result {
                Ok(r) => {
                    let next = step_down(&r);
                    report.latency.push(r);
                    match next {
                        Some(lower) if attempt < RATE_RETRIES => {
                            tracing::warn!(rate, lower, "latency: rate not sustained; trying a lower one");
                            rate = lower;
                        }
                        _ => break,
                    }
                }
                Err(e) => {
                    report.errors.push(format!("latency at {rate}/s: {e:#}"));
                    break;
                }
            }
        }
    }
}

/// The rate to try after an unsustained run: 80 % of what the pipeline committed, in steps of 500.
fn step_down(result: &LatencyResult) -> Option<u32> {
    if result.sustained {
        return None;
    }
    let capacity = result.committed_per_s.min(result.host_accepted_per_s).min(f64::from(result.offered_per_s));
    let lower = ((capacity * 0.8 / 500.0).floor() * 500.0) as u32;
    (lower >= 500 && lower < result.offered_per_s).then_some(lower)
}
