//! The results of a run: machine-readable JSON, and the short Markdown table of `BENCHMARKS.md`.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::machine::Machine;
use crate::phase::fanout::FanoutResult;
use crate::phase::ingest::IngestResult;
use crate::phase::latency::LatencyResult;
use crate::phase::replay::{IngestBaselines, ReplayResult};
use crate::stats::Summary;

/// Where the table goes in the Markdown file.
const BEGIN: &str = "<!-- bench:results:begin (written by tessera-bench; edit outside these markers) -->";
const END: &str = "<!-- bench:results:end -->";

/// Load averages at one point of the run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadMark {
    /// Which point.
    pub at: String,
    /// 1, 5 and 15 minute load averages.
    pub load_average: [f64; 3],
}

/// Sustained ingest and its baselines.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    /// Through the pipeline.
    pub pipeline: IngestResult,
    /// The log and PostgreSQL on their own (absent if that part failed).
    pub baselines: Option<IngestBaselines>,
}

/// Peak memory of `serve`.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// `VmHWM` of `serve` at the end of the sustained ingest window, KiB.
    pub peak_rss_kib: u64,
    /// The ingest rate it was measured at, observations per second.
    pub at_rate_per_s: f64,
    /// Baseline: resident memory of an idle `serve` (one device updated every few seconds), KiB.
    pub baseline_idle_rss_kib: Option<u64>,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The command that produced it.
    pub command: String,
    /// When the run started and finished (RFC 3339).
    pub started_at: String,
    /// See `started_at`.
    pub finished_at: String,
    /// The machine.
    pub machine: Machine,
    /// Load averages over the run (other work on the machine skews the figures).
    pub load: Vec<LoadMark>,
    /// How durable the system under test was.
    pub durability: String,
    /// Measurement window of each phase, seconds.
    pub duration_s: u64,
    /// Warm-up before each window, seconds.
    pub warmup_s: u64,
    /// Sustained ingest.
    pub ingest: Option<IngestReport>,
    /// Full rebuild.
    pub replay: Option<ReplayResult>,
    /// Latency, one entry per offered rate tried.
    pub latency: Vec<LatencyResult>,
    /// Fan-out.
    pub fanout: Option<FanoutResult>,
    /// Peak memory.
    pub memory: Option<MemoryReport>,
    /// Phases that failed, and why.
    pub errors: Vec<String>,
}

impl Report {
    /// Writes the JSON file, creating its directory.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")?;
        Ok(())
    }

    /// Replaces the table between the markers of `path` (appending a section if they are absent),
    /// leaving the rest of the file alone.
    pub fn write_markdown(&self, path: &Path) -> anyhow::Result<()> {
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let block = format!("{BEGIN}\n{}{END}", self.markdown());
        let new = match (old.find(BEGIN), old.find(END)) {
            (Some(b), Some(e)) if b < e => format!("{}{block}{}", &old[..b], &old[e + END.len()..]),
            _ => format!("{old}\n## Results\n\n{block}\n"),
        };
        std::fs::write(path, new)?;
        Ok(())
    }

    /// The results table with the command, machine and load.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "Produced by `{}` on {} ({}).\n", self.command, self.finished_at, self.durability);
        let _ =
            writeln!(out, "Machine: {} CPUs ({}), {} MiB memory, Linux {}.", m.nproc, m.cpu, m.memory_mib, m.kernel);
        let loads: Vec<String> = self
            .load
            .iter()
            .map(|l| format!("{} {:.2} {:.2} {:.2}", l.at, l.load_average[0], l.load_average[1], l.load_average[2]))
            .collect();
        let _ = writeln!(out, "Load averages (1/5/15 min) during the run: {}.\n", loads.join("; "));
        let _ = writeln!(out, "| Figure | Tessera | Baseline, same run |");
        let _ = writeln!(out, "|---|---|---|");
        for row in self.rows() {
            let _ = writeln!(out, "| {} | {} | {} |", row[0], row[1], row[2]);
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\nFailed: {}", self.errors.join("; "));
        }
        out
    }

    fn rows(&self) -> Vec<[String; 3]> {
        let mut rows = Vec::new();
        if let Some(i) = &self.ingest {
            let p = &i.pipeline;
            let offered = if p.offered_per_s == 0 {
                "unthrottled".to_owned()
            } else {
                format!("{}/s offered", n(p.offered_per_s.into()))
            };
            let baseline = match &i.baselines {
                Some(b) => format!(
                    "PostgreSQL UNNEST upsert of the same rows: {} rows/s · log append of the same records (fsync): {} records/s ({:.1} MiB/s)",
                    n(b.postgres_upsert.rows_per_s),
                    n(b.log_append.records_per_s),
                    b.log_append.mib_per_s
                ),
                None => "failed".into(),
            };
            rows.push([
                format!("Ingest, {:.0} s sustained ({offered}, {} devices)", p.window_s, p.devices),
                format!(
                    "**{} obs/s** committed (10 s stretches {}–{}); host accepted {}/s; backlog {} → {}",
                    n(p.pipeline_per_s),
                    n(p.slowest_10s_per_s),
                    n(p.fastest_10s_per_s),
                    n(p.host_accepted_per_s),
                    n(p.backlog_start),
                    n(p.backlog_end)
                ),
                baseline,
            ]);
        }
        for l in &self.latency {
            let verdict = if l.sustained {
                String::new()
            } else {
                format!(
                    " — **not sustained** (committed {}/s, backlog {} → {})",
                    n(l.committed_per_s),
                    n(l.backlog_start),
                    n(l.backlog_end)
                )
            };
            rows.push([
                format!("Latency emit → subscription at {} obs/s", n(l.offered_per_s.into())),
                format!("{}{verdict}", percentiles(&l.latency)),
                format!("PostgreSQL NOTIFY → LISTEN: {}", percentiles(&l.baseline_notify)),
            ]);
        }
        if let Some(r) = &self.replay {
            rows.push([
                format!("Replay: full projector rebuild of {} events", n(r.events as f64)),
                format!("**{} events/s** ({:.1} s)", n(r.events_per_s), r.seconds),
                format!(
                    "reading the log alone: {} records/s ({:.1} MiB/s)",
                    n(r.baseline_log_read.records_per_s),
                    r.baseline_log_read.mib_per_s
                ),
            ]);
        }
        if let Some(f) = &self.fanout {
            let limit = f
                .limited_by
                .as_ref()
                .map(|why| format!(" (stopped at {}: {why})", n(f.subscribed as f64)))
                .unwrap_or_default();
            rows.push([
                format!("Fan-out: {} concurrent subscriptions, one API process", n(f.subscribed as f64)),
                format!(
                    "**{:.1} KiB/subscription**; delivery of {} updates to all: {}{limit}",
                    f.kib_per_subscription,
                    f.updates.len(),
                    percentiles(&f.delivery)
                ),
                format!("the same updates to one subscriber: {}", percentiles(&f.baseline_single)),
            ]);
        }
        if let Some(m) = &self.memory {
            rows.push([
                format!("Memory: peak RSS of `tessera serve` at {} obs/s", n(m.at_rate_per_s)),
                format!("**{:.0} MiB**", m.peak_rss_kib as f64 / 1024.0),
                m.baseline_idle_rss_kib
                    .map_or("not measured".into(), |k| format!("idle serve: {:.0} MiB", k as f64 / 1024.0)),
            ]);
        }
        rows
    }
}

/// `p50 · p99 · p99.9 ms (n samples)`, leaving out percentiles too few samples cannot resolve.
fn percentiles(s: &Summary) -> String {
    match s.samples {
        0 => "no samples".into(),
        1..100 => format!("p50 {:.1} · max {:.1} ms ({} samples)", s.p50_ms, s.max_ms, s.samples),
        100..1000 => {
            format!("p50 {:.1} · p99 {:.1} · max {:.1} ms ({} samples)", s.p50_ms, s.p99_ms, s.max_ms, s.samples)
        }
        _ => format!("p50 {:.1} · p99 {:.1} · p99.9 {:.1} ms ({} samples)", s.p50_ms, s.p99_ms, s.p999_ms, s.samples),
    }
}

/// A count with thousands separators.
fn n(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Report {
        Report {
            command: "tessera-bench".into(),
            started_at: "t0".into(),
            finished_at: "t1".into(),
            machine: Machine { nproc: 2, memory_mib: 1024, cpu: "cpu".into(), kernel: "6".into() },
            load: vec![LoadMark { at: "start".into(), load_average: [1.0, 2.0, 3.0] }],
            durability: "durable".into(),
            duration_s: 60,
            warmup_s: 10,
            ingest: None,
            replay: None,
            latency: Vec::new(),
            fanout: None,
            memory: Some(MemoryReport { peak_rss_kib: 204_800, at_rate_per_s: 12_345.6, baseline_idle_rss_kib: None }),
            errors: vec!["fanout: boom".into()],
        }
    }

    #[test]
    fn leaves_out_percentiles_the_samples_cannot_resolve() {
        let few = Summary { samples: 2, p50_ms: 5.0, p99_ms: 6.0, p999_ms: 6.0, max_ms: 6.0 };
        assert_eq!(percentiles(&few), "p50 5.0 · max 6.0 ms (2 samples)");
        let some = Summary { samples: 500, ..few.clone() };
        assert_eq!(percentiles(&some), "p50 5.0 · p99 6.0 · max 6.0 ms (500 samples)");
        let many = Summary { samples: 3000, ..few };
        assert_eq!(percentiles(&many), "p50 5.0 · p99 6.0 · p99.9 6.0 ms (3000 samples)");
        assert_eq!(percentiles(&Summary::default()), "no samples");
    }

    #[test]
    fn formats_counts() {
        assert_eq!(n(0.0), "0");
        assert_eq!(n(999.4), "999");
        assert_eq!(n(1000.0), "1,000");
        assert_eq!(n(1_234_567.0), "1,234,567");
    }

    #[test]
    fn rewrites_only_the_marked_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("BENCHMARKS.md");
        std::fs::write(&path, format!("# B\n\nintro\n\n{BEGIN}\nold table\n{END}\n\n## Event log\n\ntheirs\n"))
            .unwrap();
        empty().write_markdown(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# B\n\nintro\n\n"));
        assert!(text.ends_with(&format!("{END}\n\n## Event log\n\ntheirs\n")));
        assert!(!text.contains("old table"));
        assert!(text.contains("| Memory: peak RSS of `tessera serve` at 12,346 obs/s | **200 MiB** | not measured |"));
        assert!(text.contains("Failed: fanout: boom"));

        let fresh = dir.path().join("NEW.md");
        empty().write_markdown(&fresh).unwrap();
        assert!(std::fs::read_to_string(&fresh).unwrap().contains(BEGIN));
    }
}
