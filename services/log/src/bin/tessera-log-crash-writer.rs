//! Helper for the crash test (`tests/crash.rs`): appends records to an embedded log in a loop
//! from several concurrent tasks and prints `<partition> <offset> <payload id>` for every record
//! only after `append` acknowledged it. The test SIGKILLs it at random moments and checks that
//! every printed record survived.
//!
//! Usage: `tessera-log-crash-writer <dir> <run id>`

use std::io::Write;
use std::sync::{Arc, Mutex};

use tessera_log::{EmbeddedLog, EmbeddedOptions, Log, NewRecord};

/// Topic the crash test writes to.
const TOPIC: &str = "crash";
/// Concurrent appenders, so group commit is exercised.
const TASKS: u32 = 4;

/// Deterministic payload of record `seq` of `task` in run `run`: an id, then filler whose length
/// and content depend on the id, so the test can check the bytes it gets back.
fn payload(run: u64, task: u32, seq: u64) -> Vec<u8> {
    let mut value = format!("{run}:{task}:{seq}:").into_bytes();
    let len = if seq % 211 == 13 { 64 * 1024 } else { (seq * 7919 % 1000) as usize };
    value.extend((0..len).map(|i| b'a' + ((seq as usize + i) % 26) as u8));
    value
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Appends this task's records forever (until killed), printing each acknowledged one.
async fn append_forever(
    log: Arc<EmbeddedLog>,
    stdout: Arc<Mutex<std::io::Stdout>>,
    run: u64,
    task: u32,
) -> Result<(), Error> {
    let key = format!("task-{task}").into_bytes();
    let mut seq = 0u64;
    loop {
        // 1 to 4 records per call, all with the same key (same partition, in order).
        let n = 1 + (seq % 4);
        let records: Vec<NewRecord> = (seq..seq + n)
            .map(|s| NewRecord { key: Some(key.clone()), value: payload(run, task, s), timestamp_ms: s as i64 })
            .collect();
        let positions = log.append(TOPIC, records).await?;
        // Printed only now that the records are durable: each line is a promise to the test.
        let mut out = stdout.lock().map_err(|_| "stdout lock poisoned")?;
        for (i, p) in positions.iter().enumerate() {
            writeln!(out, "{} {} {run}:{task}:{}", p.partition, p.offset, seq + i as u64)?;
        }
        out.flush()?;
        seq += n;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(run)) = (args.next(), args.next()) else {
        return Err("usage: tessera-log-crash-writer <dir> <run id>".into());
    };
    let run: u64 = run.parse()?;
    let opts = EmbeddedOptions { segment_bytes: 256 * 1024, ..EmbeddedOptions::default() };
    let log = Arc::new(EmbeddedLog::open(&dir, opts).await?);
    log.create_topic(TOPIC, 2).await?;
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let tasks: Vec<_> =
        (0..TASKS).map(|task| tokio::spawn(append_forever(log.clone(), stdout.clone(), run, task))).collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}
