//! Benchmark of the embedded log beside the raw speed of the disk it runs on, measured in the
//! same run: sequential write + fsync of 4, 64 and 256 KiB blocks in a plain file, then append
//! throughput with fsync (batches of 1, 100 and 1000 records, and 16 concurrent single-record
//! appenders sharing fsyncs), read throughput, and tail latency (append start to a waiting
//! reader's `wait_for` wake-up).
//!
//! ```sh
//! cargo bench -p tessera-log --bench log -- [--seconds S] [--rounds N] [--dir DIR] [--json PATH]
//! ```
//!
//! Each case runs `S` seconds (default 2) in each of `N` rounds (default 3); a log case runs right
//! after the raw case it is compared with, and the table shows each case's median round, so a
//! burst of load from other work on the machine skews one round, not the comparison.
//!
//! Prints a Markdown table and writes the results as JSON (default `services/log/benches/results.json`,
//! the file `BENCHMARKS.md` quotes).
//! `--dir` picks the file system (default: the system temp directory).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera_log::{EmbeddedLog, EmbeddedOptions, Log, NewRecord};

/// Size of the benchmark's record values.
const VALUE_BYTES: usize = 256;

struct Args {
    seconds: f64,
    rounds: usize,
    dir: Option<PathBuf>,
    json: PathBuf,
}

fn args() -> Args {
    let mut parsed = Args {
        seconds: 2.0,
        rounds: 3,
        dir: None,
        json: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/results.json")),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => parsed.seconds = it.next().and_then(|s| s.parse().ok()).unwrap_or(parsed.seconds),
            "--rounds" => parsed.rounds = it.next().and_then(|s| s.parse().ok()).unwrap_or(parsed.rounds).max(1),
            "--dir" => parsed.dir = it.next().map(PathBuf::from),
            "--json" => parsed.json = it.next().map(PathBuf::from).unwrap_or(parsed.json),
            _ => {} // `cargo bench` adds `--bench`
        }
    }
    parsed
}

/// One measured case.
struct Row {
    name: String,
    ops_per_s: f64,
    mib_per_s: f64,
    extra: Value,
}

impl Row {
    fn json(&self) -> Value {
        json!({"name": self.name, "ops_per_s": self.ops_per_s, "mib_per_s": self.mib_per_s, "extra": self.extra})
    }
}

fn mib(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
}

/// Appends `block`-sized writes to a fresh file, fsyncing after each, for `seconds`.
fn raw_write_fsync(dir: &Path, block: usize, seconds: f64) -> Row {
    let path = dir.join(format!("raw-{block}.bin"));
    let mut file = OpenOptions::new().create(true).truncate(true).write(true).open(&path).expect("raw file");
    let data = vec![0xa5u8; block];
    let started = Instant::now();
    let mut ops = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        file.write_all(&data).expect("write");
        file.sync_all().expect("fsync");
        ops += 1;
    }
    let elapsed = started.elapsed();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Row {
        name: format!("raw write+fsync {} KiB blocks", block >> 10),
        ops_per_s: ops as f64 / elapsed.as_secs_f64(),
        mib_per_s: mib(ops * block as u64, elapsed),
        extra: json!({"fsyncs": ops}),
    }
}

fn batch(size: usize, seq: &mut u64) -> Vec<NewRecord> {
    (0..size)
        .map(|_| {
            *seq += 1;
            NewRecord {
                key: Some(format!("device-{}", *seq % 64).into_bytes()),
                value: vec![(*seq % 251) as u8; VALUE_BYTES],
                timestamp_ms: *seq as i64,
            }
        })
        .collect()
}

/// Sequential appends of `size`-record batches to a 1-partition topic, each acknowledged after
/// fsync, for `seconds`.
async fn append_batches(log: &EmbeddedLog, topic: &str, size: usize, seconds: f64) -> Row {
    log.create_topic(topic, 1).await.expect("create topic");
    let mut seq = 0;
    let started = Instant::now();
    let (mut records, mut appends) = (0u64, 0u64);
    while started.elapsed().as_secs_f64() < seconds {
        log.append(topic, batch(size, &mut seq)).await.expect("append");
        records += size as u64;
        appends += 1;
    }
    let elapsed = started.elapsed();
    Row {
        name: format!("append, batches of {size}"),
        ops_per_s: records as f64 / elapsed.as_secs_f64(),
        mib_per_s: mib(records * VALUE_BYTES as u64, elapsed),
        extra: json!({"appends_per_s": appends as f64 / elapsed.as_secs_f64(), "records": records}),
    }
}

/// `writers` tasks each appending single records to one partition: group commit shares fsyncs.
async fn append_concurrent(log: Arc<EmbeddedLog>, topic: &str, writers: usize, seconds: f64) -> Row {
    log.create_topic(topic, 1).await.expect("create topic");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (log, topic) = (log.clone(), topic.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut seq = w as u64 * 1_000_000_000;
            let mut n = 0u64;
            while started.elapsed().as_secs_f64() < seconds {
                log.append(&topic, batch(1, &mut seq)).await.expect("append");
                n += 1;
            }
            n
        }));
    }
    let mut records = 0;
    for task in tasks {
        records += task.await.expect("writer");
    }
    let elapsed = started.elapsed();
    Row {
        name: format!("append, {writers} concurrent writers, batches of 1"),
        ops_per_s: records as f64 / elapsed.as_secs_f64(),
        mib_per_s: mib(records * VALUE_BYTES as u64, elapsed),
        extra: json!({"records": records}),
    }
}

/// Reads the whole topic written by an append case, 1024 records per call.
async fn read_all(log: &EmbeddedLog, topic: &str) -> Row {
    let end = log.end_offset(topic, 0).await.expect("end offset");
    let started = Instant::now();
    let (mut next, mut bytes) = (0u64, 0u64);
    while next < end {
        let records = log.read(topic, 0, next, 1024).await.expect("read");
        let Some(last) = records.last() else { break };
        next = last.offset + 1;
        bytes += records.iter().map(|r| r.value.len() as u64).sum::<u64>();
    }
    let elapsed = started.elapsed();
    Row {
        name: "read, 1024 records per call (page cache warm)".to_owned(),
        ops_per_s: next as f64 / elapsed.as_secs_f64(),
        mib_per_s: mib(bytes, elapsed),
        extra: json!({"records": next}),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// One writer appends single records at a steady pace; a reader blocked in `wait_for` wakes up.
/// Latency: from just before `append` to the wake-up (includes the fsync, since records become
/// visible only once durable).
async fn tail_latency(log: Arc<EmbeddedLog>, samples: usize) -> Row {
    let topic = "tail";
    log.create_topic(topic, 1).await.expect("create topic");
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let reader = {
        let log = log.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(samples);
            let mut next = 0;
            while latencies.len() < samples {
                let ready = log.wait_for(topic, 0, next, Duration::from_secs(10)).await.expect("wait_for");
                let woke = Instant::now();
                assert!(ready, "no record within 10 s");
                let records = log.read(topic, 0, next, 1024).await.expect("read");
                for _ in &records {
                    let sent = sent_rx.recv().await.expect("send time");
                    latencies.push(woke.saturating_duration_since(sent));
                }
                next += records.len() as u64;
            }
            latencies
        })
    };
    let mut seq = 0;
    let mut acks = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        sent_tx.send(started).expect("reader alive");
        log.append(topic, batch(1, &mut seq)).await.expect("append");
        acks.push(started.elapsed());
        // Let the reader go back to waiting, so every sample measures a wake-up.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut latencies = reader.await.expect("reader");
    latencies.sort();
    acks.sort();
    Row {
        name: "tail latency, append → wait_for wake-up".to_owned(),
        ops_per_s: 0.0,
        mib_per_s: 0.0,
        extra: json!({
            "samples": samples,
            "p50_ms": percentile(&latencies, 0.5),
            "p99_ms": percentile(&latencies, 0.99),
            "append_ack_p50_ms": percentile(&acks, 0.5),
            "append_ack_p99_ms": percentile(&acks, 0.99),
        }),
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from("| case | records (or fsyncs) / s | payload MiB/s | notes |\n|---|---:|---:|---|\n");
    for row in rows {
        let notes = match row.extra.as_object() {
            Some(map) => map
                .iter()
                .map(|(k, v)| match v.as_f64() {
                    Some(f) if !v.is_u64() => format!("{k} {f:.2}"),
                    _ => format!("{k} {v}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
            None => String::new(),
        };
        let fmt = |v: f64| if v == 0.0 { "–".to_owned() } else { format!("{v:.0}") };
        let mib = if row.mib_per_s == 0.0 { "–".to_owned() } else { format!("{:.1}", row.mib_per_s) };
        out.push_str(&format!("| {} | {} | {} | {} |\n", row.name, fmt(row.ops_per_s), mib, notes));
    }
    out
}

/// One round: each log case right after the raw case it compares with, so both see the same
/// disk and the same background load.
async fn round(dir: &Path, log: &Arc<EmbeddedLog>, round: usize, seconds: f64) -> Vec<Row> {
    let mut rows = Vec::new();
    for (block, batch) in [(4 << 10, 1), (64 << 10, 100), (256 << 10, 1000)] {
        rows.push(raw_write_fsync(dir, block, seconds));
        rows.push(append_batches(log, &format!("batch-{batch}-r{round}"), batch, seconds).await);
    }
    rows.push(append_concurrent(log.clone(), &format!("concurrent-r{round}"), 16, seconds).await);
    rows.push(read_all(log, &format!("batch-1000-r{round}")).await);
    rows
}

/// The median round of each case, with the spread over rounds in its notes.
fn aggregate(rounds: &[Vec<Row>]) -> Vec<Row> {
    let cases = rounds.first().map_or(0, Vec::len);
    (0..cases)
        .map(|case| {
            let mut runs: Vec<&Row> = rounds.iter().map(|r| &r[case]).collect();
            runs.sort_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s));
            let median = runs[runs.len() / 2];
            let mut extra = median.extra.clone();
            if let Some(map) = extra.as_object_mut() {
                map.insert("min_per_s".into(), json!(runs[0].ops_per_s.round() as u64));
                map.insert("max_per_s".into(), json!(runs[runs.len() - 1].ops_per_s.round() as u64));
            }
            Row { name: median.name.clone(), ops_per_s: median.ops_per_s, mib_per_s: median.mib_per_s, extra }
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new().prefix("tessera-log-bench-").tempdir_in(&base).expect("bench dir");
    let log = Arc::new(EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).await.expect("open log"));
    let mut rounds = Vec::new();
    for r in 0..args.rounds {
        rounds.push(round(dir.path(), &log, r, args.seconds).await);
    }
    let mut rows = aggregate(&rounds);
    rows.push(tail_latency(log.clone(), 1000).await);
    log.close().await.expect("close");

    let markdown = table(&rows);
    println!("{markdown}");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let report = json!({
        "benchmark": "tessera-log embedded",
        "command": "cargo bench -p tessera-log --bench log",
        "value_bytes": VALUE_BYTES,
        "seconds_per_case": args.seconds,
        "rounds": args.rounds,
        "dir": base.display().to_string(),
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "loadavg_at_end": load.trim(),
        "results": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "rounds_detail": rounds.iter().map(|r| r.iter().map(Row::json).collect::<Vec<_>>()).collect::<Vec<_>>(),
    });
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent).expect("json dir");
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&report).expect("json")).expect("write json");
    println!("results written to {}", args.json.display());
}
