//! Unit tests of the embedded backend against real files in a temporary directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::frame::{BATCH_HEADER_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::*;

fn rec(key: &str, value: &str) -> NewRecord {
    NewRecord { key: Some(key.as_bytes().to_vec()), value: value.as_bytes().to_vec(), timestamp_ms: 1_700_000_000_000 }
}

fn small_segments() -> EmbeddedOptions {
    EmbeddedOptions { segment_bytes: 512, ..EmbeddedOptions::default() }
}

async fn open(dir: &Path) -> EmbeddedLog {
    EmbeddedLog::open(dir, EmbeddedOptions::default()).await.unwrap()
}

fn segment_files(dir: &Path, topic: &str, partition: u32) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(topic).join(partition.to_string()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn flip_bit(path: &Path, pos: u64, bit: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[pos as usize] ^= 1 << bit;
    std::fs::write(path, bytes).unwrap();
}

async fn values(log: &EmbeddedLog, topic: &str, partition: u32) -> Vec<String> {
    log.read(topic, partition, 0, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.value).unwrap())
        .collect()
}

/// Appends one record per call (one batch each) to partition 0 of a single-partition topic.
async fn append_each(log: &EmbeddedLog, topic: &str, values: &[&str]) {
    for v in values {
        log.append(topic, vec![rec("k", v)]).await.unwrap();
    }
}

#[tokio::test]
async fn round_trip_across_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path()).await;
    log.create_topic("events", 4).await.unwrap();
    let records: Vec<NewRecord> = (0..100).map(|i| rec(&format!("dev-{}", i % 10), &format!("v{i}"))).collect();
    let positions = log.append("events", records.clone()).await.unwrap();
    assert_eq!(positions.len(), 100);

    let mut per_partition: HashMap<u32, Vec<u64>> = HashMap::new();
    for (record, position) in records.iter().zip(&positions) {
        assert_eq!(position.partition, partition_for_key(record.key.as_deref(), 4));
        per_partition.entry(position.partition).or_default().push(position.offset);
    }
    for (partition, offsets) in &per_partition {
        assert_eq!(*offsets, (0..offsets.len() as u64).collect::<Vec<_>>());
        assert_eq!(log.end_offset("events", *partition).await.unwrap(), offsets.len() as u64);
    }
    for (record, position) in records.iter().zip(&positions) {
        let got = log.read("events", position.partition, position.offset, 1).await.unwrap();
        assert_eq!(got.len(), 1);
        let got = &got[0];
        assert_eq!((got.topic.as_str(), got.partition, got.offset), ("events", position.partition, position.offset));
        assert_eq!((&got.key, &got.value, got.timestamp_ms), (&record.key, &record.value, record.timestamp_ms));
    }
    let all = crate::read_all(&log, "events", 0).await.unwrap();
    assert_eq!(all.len(), 100);
}

#[tokio::test]
async fn key_routing_is_stable_across_calls_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Vec::new();
    {
        let log = open(dir.path()).await;
        log.create_topic("t", 8).await.unwrap();
        for i in 0..20 {
            first.push(log.append("t", vec![rec(&format!("key-{i}"), "a")]).await.unwrap()[0].partition);
        }
        log.close().await.unwrap();
    }
    let log = open(dir.path()).await;
    for (i, partition) in first.iter().enumerate() {
        let again = log.append("t", vec![rec(&format!("key-{i}"), "b")]).await.unwrap()[0].partition;
        assert_eq!(again, *partition);
        assert_eq!(again, partition_for_key(Some(format!("key-{i}").as_bytes()), 8));
    }
    let keyless = NewRecord { key: None, value: b"x".to_vec(), timestamp_ms: 0 };
    assert_eq!(log.append("t", vec![keyless]).await.unwrap()[0].partition, 0);
}

#[tokio::test]
async fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path(), small_segments()).await.unwrap();
        log.create_topic("a", 2).await.unwrap();
        log.create_topic("b", 1).await.unwrap();
        for i in 0..50 {
            log.append("a", vec![rec(&format!("k{i}"), &format!("a{i}"))]).await.unwrap();
        }
        append_each(&log, "b", &["x", "y"]).await;
        log.close().await.unwrap();
    }
    let log = EmbeddedLog::open(dir.path(), small_segments()).await.unwrap();
    assert_eq!(log.topics().await.unwrap(), vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(log.partition_count("a").await.unwrap(), 2);
    let ends = log.end_offset("a", 0).await.unwrap() + log.end_offset("a", 1).await.unwrap();
    assert_eq!(ends, 50);
    let mut all: Vec<String> =
        crate::read_all(&log, "a", 0).await.unwrap().into_iter().map(|r| String::from_utf8(r.value).unwrap()).collect();
    all.sort_by_key(|v| v[1..].parse::<u32>().unwrap());
    assert_eq!(all, (0..50).map(|i| format!("a{i}")).collect::<Vec<_>>());
    assert_eq!(values(&log, "b", 0).await, ["x", "y"]);
    // Appends continue where the log left off.
    assert_eq!(log.append("b", vec![rec("k", "z")]).await.unwrap()[0].offset, 2);
}

#[tokio::test]
async fn torn_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path()).await;
        log.create_topic("t", 1).await.unwrap();
        append_each(&log, "t", &["one", "two", "three"]).await;
        log.close().await.unwrap();
    }
    let segment = &segment_files(dir.path(), "t", 0)[0];
    let len = std::fs::metadata(segment).unwrap().len();
    // Cut the last batch short, as a crash in the middle of write() would.
    std::fs::OpenOptions::new().write(true).open(segment).unwrap().set_len(len - 3).unwrap();
    {
        let log = open(dir.path()).await;
        assert_eq!(values(&log, "t", 0).await, ["one", "two"]);
        assert_eq!(log.end_offset("t", 0).await.unwrap(), 2);
        assert_eq!(log.append("t", vec![rec("k", "three again")]).await.unwrap()[0].offset, 2);
        log.close().await.unwrap();
    }
    // Zeros after the last batch (a file extended but never written) are a torn tail as well.
    let mut bytes = std::fs::read(segment).unwrap();
    bytes.extend_from_slice(&[0u8; 100]);
    std::fs::write(segment, &bytes).unwrap();
    let log = open(dir.path()).await;
    assert_eq!(values(&log, "t", 0).await, ["one", "two", "three again"]);
}

#[tokio::test]
async fn bit_flip_in_last_batch_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path()).await;
        log.create_topic("t", 1).await.unwrap();
        append_each(&log, "t", &["one", "two", "three"]).await;
        log.close().await.unwrap();
    }
    let segment = &segment_files(dir.path(), "t", 0)[0];
    let len = std::fs::metadata(segment).unwrap().len();
    flip_bit(segment, len - 2, 3);
    let log = open(dir.path()).await;
    assert_eq!(values(&log, "t", 0).await, ["one", "two"]);
}

#[tokio::test]
async fn mid_file_corruption_is_refused_with_position() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path()).await;
        log.create_topic("t", 1).await.unwrap();
        append_each(&log, "t", &["one", "two", "three"]).await;
        log.close().await.unwrap();
    }
    let segment = segment_files(dir.path(), "t", 0)[0].clone();
    // The second batch starts after the header and the first batch ("one", key "k").
    let second = SEGMENT_HEADER_LEN + (BATCH_HEADER_LEN + RECORD_HEADER_LEN + 1 + 3) as u64;
    flip_bit(&segment, second + 30, 0);
    match EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).await {
        Err(LogError::Corrupt { path, position, detail }) => {
            assert_eq!(path, segment);
            assert_eq!(position, second);
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Damage to a length field is refused as well, not mistaken for a torn tail.
    flip_bit(&segment, second + 30, 0);
    flip_bit(&segment, second + 1, 2);
    assert!(matches!(
        EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).await,
        Err(LogError::Corrupt { position, .. }) if position == second
    ));
}

#[tokio::test]
async fn segment_header_corruption_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path()).await;
        log.create_topic("t", 1).await.unwrap();
        append_each(&log, "t", &["one"]).await;
        log.close().await.unwrap();
    }
    let segment = segment_files(dir.path(), "t", 0)[0].clone();
    flip_bit(&segment, 9, 1);
    match EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).await {
        Err(LogError::Corrupt { path, position, .. }) => {
            assert_eq!(path, segment);
            assert_eq!(position, 0);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn segments_roll_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path(), small_segments()).await.unwrap();
        log.create_topic("t", 1).await.unwrap();
        for i in 0..100 {
            log.append("t", vec![rec("k", &format!("value-{i:03}"))]).await.unwrap();
        }
        let files = segment_files(dir.path(), "t", 0);
        assert!(files.len() > 5, "only {} segments", files.len());
        for file in &files {
            assert!(std::fs::metadata(file).unwrap().len() <= 512);
        }
        let expected: Vec<String> = (0..100).map(|i| format!("value-{i:03}")).collect();
        assert_eq!(values(&log, "t", 0).await, expected);
        // Start in the middle of a segment and read across several.
        let got = log.read("t", 0, 37, 40).await.unwrap();
        assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), (37..77).collect::<Vec<_>>());
        log.close().await.unwrap();
    }
    // After reopening, sealed segments are indexed lazily and read the same.
    let log = EmbeddedLog::open(dir.path(), small_segments()).await.unwrap();
    let got = log.read("t", 0, 55, 1000).await.unwrap();
    assert_eq!(got.len(), 45);
    assert_eq!(got[0].value, b"value-055");
    assert_eq!(log.append("t", vec![rec("k", "more")]).await.unwrap()[0].offset, 100);
}

#[tokio::test]
async fn damage_in_a_sealed_segment_fails_the_read() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path(), small_segments()).await.unwrap();
        log.create_topic("t", 1).await.unwrap();
        for i in 0..40 {
            log.append("t", vec![rec("k", &format!("value-{i:03}"))]).await.unwrap();
        }
        log.close().await.unwrap();
    }
    let first = segment_files(dir.path(), "t", 0)[0].clone();
    flip_bit(&first, SEGMENT_HEADER_LEN + 40, 4);
    let log = EmbeddedLog::open(dir.path(), small_segments()).await.unwrap();
    match log.read("t", 0, 0, 10).await {
        Err(LogError::Corrupt { path, position, .. }) => {
            assert_eq!(path, first);
            assert_eq!(position, SEGMENT_HEADER_LEN);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn retention_by_size_deletes_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions { segment_bytes: 512, retention_bytes: Some(2048), ..EmbeddedOptions::default() };
    let log = EmbeddedLog::open(dir.path(), opts).await.unwrap();
    log.create_topic("t", 1).await.unwrap();
    for i in 0..200 {
        log.append("t", vec![rec("k", &format!("value-{i:03}"))]).await.unwrap();
    }
    let total: u64 = segment_files(dir.path(), "t", 0).iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    assert!(total <= 2048 + 512, "{total} bytes retained");
    let start = log.start_offset("t", 0).await.unwrap();
    assert!(start > 0);
    // Reading below the retained range starts at the first retained record.
    let got = log.read("t", 0, 0, 5).await.unwrap();
    assert_eq!(got[0].offset, start);
    assert_eq!(log.end_offset("t", 0).await.unwrap(), 200);
}

#[tokio::test]
async fn committed_offsets_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path()).await;
        log.create_topic("t", 2).await.unwrap();
        assert_eq!(log.committed("g", "t", 1).await.unwrap(), None);
        log.commit("g", "t", 1, 5).await.unwrap();
        log.commit("g", "t", 1, 7).await.unwrap();
        log.commit("other", "t", 0, 3).await.unwrap();
        assert_eq!(log.committed("g", "t", 1).await.unwrap(), Some(7));
        assert!(matches!(log.commit("g", "nope", 0, 1).await, Err(LogError::UnknownTopic(_))));
        assert!(matches!(log.commit("g", "t", 2, 1).await, Err(LogError::UnknownPartition { .. })));
        assert!(matches!(log.commit("../x", "t", 0, 1).await, Err(LogError::InvalidGroupName { .. })));
        log.close().await.unwrap();
    }
    let log = open(dir.path()).await;
    assert_eq!(log.committed("g", "t", 1).await.unwrap(), Some(7));
    assert_eq!(log.committed("g", "t", 0).await.unwrap(), None);
    assert_eq!(log.committed("other", "t", 0).await.unwrap(), Some(3));
    assert!(dir.path().join("__groups/g/t/1.json").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_wakes_up_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()).await);
    log.create_topic("t", 1).await.unwrap();
    // Nothing there yet: times out and says so.
    assert!(!log.wait_for("t", 0, 0, Duration::from_millis(50)).await.unwrap());
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let ready = log.wait_for("t", 0, 0, Duration::from_secs(30)).await.unwrap();
            (ready, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    log.append("t", vec![rec("k", "hello")]).await.unwrap();
    let (ready, waited) = waiter.await.unwrap();
    assert!(ready);
    assert!(waited < Duration::from_secs(5), "woke after {waited:?}");
    // Data is readable the moment the waiter wakes.
    assert_eq!(log.read("t", 0, 0, 10).await.unwrap().len(), 1);
    assert!(log.wait_for("t", 0, 0, Duration::ZERO).await.unwrap());
    assert!(!log.wait_for("t", 0, 1, Duration::from_millis(10)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_are_acknowledged_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()).await);
    log.create_topic("t", 3).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("writer-{task}");
            let mut acks = Vec::new();
            for i in 0..50 {
                let batch = vec![rec(&key, &format!("{task}:{i}:a")), rec(&key, &format!("{task}:{i}:b"))];
                for position in log.append("t", batch).await.unwrap() {
                    acks.push(position);
                }
            }
            (key, acks)
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for task in tasks {
        let (key, acks) = task.await.unwrap();
        assert_eq!(acks.len(), 100);
        let partition = partition_for_key(Some(key.as_bytes()), 3);
        for pair in acks.windows(2) {
            assert!(pair[0].offset < pair[1].offset, "out of order for {key}");
        }
        for position in acks {
            assert_eq!(position.partition, partition);
            assert!(seen.insert((position.partition, position.offset)), "duplicate ack");
        }
    }
    assert_eq!(seen.len(), 1600);
    let mut total = 0;
    for partition in 0..3 {
        let records = log.read("t", partition, 0, usize::MAX).await.unwrap();
        total += records.len();
        // Each writer's records appear in the order they were acknowledged.
        let mut last: HashMap<String, (u32, u8)> = HashMap::new();
        for record in records {
            let value = String::from_utf8(record.value).unwrap();
            let mut parts = value.split(':');
            let task = parts.next().unwrap().to_owned();
            let i: u32 = parts.next().unwrap().parse().unwrap();
            let half = parts.next().unwrap().as_bytes()[0];
            if let Some(prev) = last.get(&task) {
                assert!(*prev < (i, half), "{task}: {prev:?} then {:?}", (i, half));
            }
            last.insert(task, (i, half));
        }
    }
    assert_eq!(total, 1600);
}

#[tokio::test]
async fn limits_and_names_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions { max_record_bytes: 100, ..EmbeddedOptions::default() };
    let log = EmbeddedLog::open(dir.path(), opts).await.unwrap();
    log.create_topic("t", 1).await.unwrap();
    let big = NewRecord { key: Some(vec![0; 50]), value: vec![0; 51], timestamp_ms: 0 };
    assert!(matches!(
        log.append("t", vec![rec("k", "fine"), big]).await,
        Err(LogError::RecordTooLarge { size: 101, limit: 100 })
    ));
    // Nothing of a rejected call is written.
    assert_eq!(log.end_offset("t", 0).await.unwrap(), 0);
    assert!(matches!(log.create_topic("../evil", 1).await, Err(LogError::InvalidTopicName { .. })));
    assert!(matches!(log.create_topic("__groups", 1).await, Err(LogError::InvalidTopicName { .. })));
    assert!(matches!(log.create_topic("ok", 0).await, Err(LogError::InvalidPartitionCount(0))));
    assert!(matches!(log.append("missing", vec![]).await, Err(LogError::UnknownTopic(_))));
    assert!(matches!(log.read("t", 0, 1, 10).await, Err(LogError::OffsetOutOfRange { offset: 1, end: 0, .. })));
    assert!(log.read("t", 0, 0, 10).await.unwrap().is_empty());
    assert!(log.append("t", vec![]).await.unwrap().is_empty());
}

#[tokio::test]
async fn second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path()).await;
    assert!(matches!(EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).await, Err(LogError::Locked { .. })));
    log.close().await.unwrap();
    drop(log);
    open(dir.path()).await;
}

#[tokio::test]
async fn closed_log_refuses_calls() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path()).await;
    log.create_topic("t", 1).await.unwrap();
    log.close().await.unwrap();
    assert!(matches!(log.append("t", vec![rec("k", "v")]).await, Err(LogError::Closed)));
    assert!(matches!(log.topics().await, Err(LogError::Closed)));
}

#[tokio::test]
async fn interval_fsync_policy_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions {
        fsync: FsyncPolicy::Interval(Duration::from_millis(10)),
        segment_bytes: 512,
        ..EmbeddedOptions::default()
    };
    {
        let log = EmbeddedLog::open(dir.path(), opts.clone()).await.unwrap();
        log.create_topic("t", 1).await.unwrap();
        for i in 0..30 {
            log.append("t", vec![rec("k", &format!("v{i}"))]).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        log.close().await.unwrap();
    }
    let log = EmbeddedLog::open(dir.path(), opts).await.unwrap();
    assert_eq!(log.end_offset("t", 0).await.unwrap(), 30);
}

#[tokio::test]
async fn interrupted_topic_creation_is_finished_later() {
    let dir = tempfile::tempdir().unwrap();
    // A topic directory without topic.json, as a crash during create_topic leaves it.
    std::fs::create_dir_all(dir.path().join("half/0")).unwrap();
    let log = open(dir.path()).await;
    assert!(log.topics().await.unwrap().is_empty());
    log.create_topic("half", 1).await.unwrap();
    log.append("half", vec![rec("k", "v")]).await.unwrap();
    assert_eq!(values(&log, "half", 0).await, ["v"]);
}

#[tokio::test]
async fn invalid_options_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions { segment_bytes: 10, ..EmbeddedOptions::default() };
    assert!(matches!(EmbeddedLog::open(dir.path(), opts).await, Err(LogError::InvalidConfig(_))));
    let opts = EmbeddedOptions { fsync: FsyncPolicy::Interval(Duration::ZERO), ..EmbeddedOptions::default() };
    assert!(matches!(EmbeddedLog::open(dir.path(), opts).await, Err(LogError::InvalidConfig(_))));
}

#[tokio::test]
async fn retention_by_age_runs_periodically() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions {
        segment_bytes: 512,
        retention_age: Some(Duration::from_millis(50)),
        retention_check_interval: Duration::from_millis(20),
        ..EmbeddedOptions::default()
    };
    let log = EmbeddedLog::open(dir.path(), opts).await.unwrap();
    log.create_topic("t", 1).await.unwrap();
    for i in 0..40 {
        log.append("t", vec![rec("k", &format!("value-{i:03}"))]).await.unwrap();
    }
    // The 512-byte segments rolled several times. On a loaded machine the appends can outlast the
    // retention age, so the oldest segments may already be gone: check the newest one's base offset.
    let newest = segment_files(dir.path(), "t", 0).pop().unwrap();
    let base: u64 = newest.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    assert!(base > 3, "segments rolled (newest starts at {base})");
    // No further appends: the periodic check deletes the sealed segments.
    let deadline = Instant::now() + Duration::from_secs(10);
    while segment_files(dir.path(), "t", 0).len() > 1 {
        assert!(Instant::now() < deadline, "old segments were never deleted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = log.start_offset("t", 0).await.unwrap();
    assert!(start > 0 && start < 40);
    let got = log.read("t", 0, 0, 100).await.unwrap();
    assert_eq!(got.first().map(|r| r.offset), Some(start));
    assert_eq!(got.last().map(|r| r.offset), Some(39));
}
