//! Command-line arguments of `tessera-bench`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Runs the real Tessera pipeline (`tessera serve` with the `loadgen` plugin) and reports each
/// figure beside a baseline measured in the same run on the same machine.
#[derive(Debug, Clone, Parser)]
#[command(name = "tessera-bench", version, about)]
pub struct Args {
    /// Length of each measurement window, in seconds (ingest, each latency rate).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Warm-up before each measurement window, in seconds (devices get created, caches fill).
    #[arg(long, default_value_t = 10)]
    pub warmup: u64,
    /// Phases to run, in this order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ingest,latency,fanout")]
    pub phases: Vec<Phase>,
    /// Offered rates of the latency phases, in observations per second.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub latency_rates: Vec<u32>,
    /// GraphQL subscriptions that sample latency, each on its own device.
    #[arg(long, default_value_t = 50)]
    pub probes: usize,
    /// Offered rate of the ingest phase; 0 lets the load generator write as fast as the host reads.
    #[arg(long, default_value_t = 0)]
    pub ingest_rate: u32,
    /// Devices the ingest load is spread over.
    #[arg(long, default_value_t = 1000)]
    pub ingest_devices: u32,
    /// Concurrent subscriptions of the fan-out phase.
    #[arg(long, default_value_t = 10_000)]
    pub subscribers: usize,
    /// Updates whose delivery to every subscriber the fan-out phase measures (and as many to a
    /// single subscriber for the baseline).
    #[arg(long, default_value_t = 2)]
    pub fanout_updates: usize,
    /// Seconds between two updates of the fan-out device; longer than one update takes to reach
    /// every subscriber, or a slow subscriber's lookup returns the next update instead.
    #[arg(long, default_value_t = 20)]
    pub fanout_interval: u64,
    /// Most rows (and log records) the baselines write; bounds their memory and time.
    #[arg(long, default_value_t = 500_000)]
    pub baseline_rows: u64,
    /// The `tessera` binary; by default `cargo build --release -p tessera` builds it first.
    #[arg(long)]
    pub tessera: Option<PathBuf>,
    /// Where the throwaway data directories go (must be on the disk being measured).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Machine-readable results.
    #[arg(long, default_value = "benches/results/latest.json")]
    pub output: PathBuf,
    /// Markdown file whose results table is rewritten (between its `bench:results` markers);
    /// `-` leaves it alone.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub markdown: PathBuf,
}

/// A part of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Phase {
    /// Sustained ingest, peak memory, then (offline) replay and the ingest and replay baselines.
    Ingest,
    /// Emission-to-subscription latency at each of `--latency-rates`.
    Latency,
    /// Many concurrent subscriptions on one API process.
    Fanout,
}
