//! Crash test: runs `tessera-log-crash-writer` (which prints every record only after `append`
//! acknowledged it), SIGKILLs it at random moments, restarts it, and after every kill checks
//! that the log opens cleanly, every acknowledged record is present exactly once at the position
//! it was acknowledged with, each writer's records are in order without gaps, and every record
//! read back is intact.
//!
//! `TESSERA_CRASH_KILLS` sets the number of kills (default 200); the loop also stops after
//! about 45 seconds so the test stays within a minute on a slow machine.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tessera_log::{EmbeddedLog, EmbeddedOptions, Log};

const TOPIC: &str = "crash";
const PARTITIONS: u32 = 2;

/// Same payload as the writer binary builds; the test recomputes it to check every byte.
fn payload(run: u64, task: u32, seq: u64) -> Vec<u8> {
    let mut value = format!("{run}:{task}:{seq}:").into_bytes();
    let len = if seq % 211 == 13 { 64 * 1024 } else { (seq * 7919 % 1000) as usize };
    value.extend((0..len).map(|i| b'a' + ((seq as usize + i) % 26) as u8));
    value
}

/// Small xorshift64 generator: enough randomness for kill timing without a `rand` dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Identifies one record a writer task produced.
type Id = (u64, u32, u64); // (run, task, seq)

fn parse_id(text: &str) -> Id {
    let mut parts = text.split(':');
    let mut next = || parts.next().unwrap_or_else(|| panic!("bad id {text:?}"));
    let run = next().parse().unwrap();
    let task = next().parse().unwrap();
    let seq = next().parse().unwrap();
    (run, task, seq)
}

/// What the verifier has established about the log so far.
#[derive(Default)]
struct Verified {
    /// Where each record is: id → (partition, offset).
    location: HashMap<Id, (u32, u64)>,
    /// Next sequence number expected in the log for each (run, task).
    next_seq: HashMap<(u64, u32), u64>,
    /// Offsets checked per partition.
    checked_end: [u64; PARTITIONS as usize],
    duplicates: u64,
}

/// Sum of the sizes of the newest segment of every partition (to notice truncations).
fn tail_bytes(dir: &Path) -> u64 {
    (0..PARTITIONS)
        .filter_map(|p| {
            let dir = dir.join(TOPIC).join(p.to_string());
            let mut files: Vec<_> = std::fs::read_dir(dir).ok()?.filter_map(Result::ok).collect();
            files.sort_by_key(|e| e.file_name());
            files.iter().rev().find(|e| e.file_name().to_string_lossy().ends_with(".log"))?.metadata().ok()
        })
        .map(|m| m.len())
        .sum()
}

/// Opens the log (running recovery) and checks every record written since the last check.
async fn verify_new_records(dir: &Path, state: &mut Verified) {
    let log = match EmbeddedLog::open(dir, EmbeddedOptions::default()).await {
        Ok(log) => log,
        Err(e) => panic!("log failed to open after a crash: {e}"),
    };
    if log.topics().await.unwrap().is_empty() {
        // Killed before the topic was created.
        log.close().await.unwrap();
        return;
    }
    for partition in 0..PARTITIONS {
        let end = log.end_offset(TOPIC, partition).await.unwrap();
        let checked = state.checked_end[partition as usize];
        assert!(end >= checked, "partition {partition} shrank from {checked} to {end}: durable records lost");
        if checked > 0 {
            // The last record verified earlier must still be the same one.
            let again = log.read(TOPIC, partition, checked - 1, 1).await.unwrap();
            let id = parse_id(std::str::from_utf8(&again[0].value).unwrap());
            assert_eq!(state.location.get(&id), Some(&(partition, checked - 1)));
        }
        let mut next = checked;
        while next < end {
            let batch = log.read(TOPIC, partition, next, 512).await.unwrap();
            assert!(!batch.is_empty(), "read returned nothing below the end offset");
            for record in batch {
                assert_eq!(record.offset, next, "offsets must be contiguous");
                next += 1;
                let text = std::str::from_utf8(&record.value[..record.value.len().min(64)]).unwrap_or("");
                let id = parse_id(text);
                assert_eq!(record.value, payload(id.0, id.1, id.2), "record {id:?} came back damaged");
                assert_eq!(record.timestamp_ms, id.2 as i64);
                if state.location.insert(id, (partition, record.offset)).is_some() {
                    state.duplicates += 1;
                }
                let expected = state.next_seq.entry((id.0, id.1)).or_insert(0);
                assert_eq!(
                    id.2,
                    *expected,
                    "writer {:?}: sequence {} found where {} was expected (gap or reorder)",
                    (id.0, id.1),
                    id.2,
                    *expected
                );
                *expected += 1;
            }
        }
        state.checked_end[partition as usize] = end;
    }
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_sigkill() {
    let kills: u64 = std::env::var("TESSERA_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let budget = Duration::from_secs(45);
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    println!("crash test seed {seed}");
    let mut rng = XorShift(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut state = Verified::default();
    let mut acknowledged: Vec<(Id, u32, u64)> = Vec::new();
    let (mut done, mut truncating_recoveries, mut partial_lines, mut lost) = (0u64, 0u64, 0u64, 0u64);

    while done < kills && started.elapsed() < budget {
        let run = done;
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera-log-crash-writer"))
            .arg(dir.path())
            .arg(run.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            stdout.read_to_end(&mut bytes).unwrap();
            bytes
        });
        // Kill anywhere from "still starting up" to "well into appending".
        let delay = Duration::from_micros(rng.below(120_000));
        std::thread::sleep(delay);
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "writer exited on its own: {status}");
        let output = reader.join().unwrap();
        let text = String::from_utf8(output).unwrap();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        if complete.len() + 1 < text.len() {
            partial_lines += 1; // killed mid-print: that line is not counted as acknowledged
        }
        for line in complete.lines() {
            let mut fields = line.split(' ');
            let partition: u32 = fields.next().unwrap().parse().unwrap();
            let offset: u64 = fields.next().unwrap().parse().unwrap();
            let id = parse_id(fields.next().unwrap());
            assert_eq!(id.0, run);
            acknowledged.push((id, partition, offset));
        }
        done += 1;

        let before = tail_bytes(dir.path());
        verify_new_records(dir.path(), &mut state).await;
        if tail_bytes(dir.path()) < before {
            truncating_recoveries += 1;
        }
        for (id, partition, offset) in &acknowledged[acknowledged.len() - complete.lines().count()..] {
            match state.location.get(id) {
                Some(found) => assert_eq!(found, &(*partition, *offset), "record {id:?} moved"),
                None => {
                    eprintln!("acknowledged record {id:?} at {partition}/{offset} was lost (run {run})");
                    lost += 1;
                }
            }
        }
    }

    let unacknowledged_durable = state.location.len() as i64 - (acknowledged.len() as i64 - lost as i64);
    println!(
        "crash test: {done} kills in {:.1?}; {} acknowledged records, {lost} lost, {} duplicated, {} durable but \
         unacknowledged, {} records in the log, {truncating_recoveries} recoveries truncated a torn tail, \
         {partial_lines} runs killed mid-print",
        started.elapsed(),
        acknowledged.len(),
        state.duplicates,
        unacknowledged_durable,
        state.location.len(),
    );
    assert_eq!(lost, 0, "acknowledged records were lost");
    assert_eq!(state.duplicates, 0, "records were duplicated");
    assert!(done >= kills.min(20), "only {done} kills fit in the time budget");
    assert!(!acknowledged.is_empty(), "the writer never got an append acknowledged");
}
