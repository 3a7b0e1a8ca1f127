//! The contract every [`Log`] backend must meet, as an executable test suite.
//!
//! Enabled by the `contract-tests` feature (and in this crate's own tests). A backend's tests
//! call [`run_contract_suite`] with a freshly opened log; every check creates its own uniquely
//! named topics, so the suite can also run against a shared Kafka cluster. Checks panic with a
//! description of the violated rule, like any test assertion.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{Log, LogError, NewRecord, partition_for_key, read_all};

/// Runs every check of the contract against `log`.
pub async fn run_contract_suite(log: Arc<dyn Log>) {
    let prefix = unique_prefix();
    check_topics(&*log, &prefix).await;
    check_append_and_read(&*log, &prefix).await;
    check_read_bounds(&*log, &prefix).await;
    check_wait_for(log.clone(), &prefix).await;
    check_commits(&*log, &prefix).await;
    check_concurrent_appends(log, &prefix).await;
}

/// A topic-name prefix unique to this run, so repeated runs never collide.
pub fn unique_prefix() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("contract-{}-{nanos}", std::process::id())
}

fn record(key: Option<&str>, value: String, timestamp_ms: i64) -> NewRecord {
    NewRecord { key: key.map(|k| k.as_bytes().to_vec()), value: value.into_bytes(), timestamp_ms }
}

/// Topic creation, listing, partition counts and name validation.
pub async fn check_topics(log: &dyn Log, prefix: &str) {
    let topic = format!("{prefix}.topics");
    for bad in ["", "a/b", "a b", "..", &"x".repeat(201)] {
        assert!(
            matches!(log.create_topic(bad, 1).await, Err(LogError::InvalidTopicName { .. })),
            "create_topic({bad:?}) must fail with InvalidTopicName"
        );
    }
    assert!(
        matches!(log.create_topic(&format!("{prefix}.zero"), 0).await, Err(LogError::InvalidPartitionCount(0))),
        "a topic with 0 partitions must be refused"
    );
    log.create_topic(&topic, 3).await.expect("create_topic");
    log.create_topic(&topic, 3).await.expect("create_topic must be idempotent");
    assert!(log.topics().await.expect("topics").contains(&topic), "topics() must list a created topic");
    assert_eq!(log.partition_count(&topic).await.expect("partition_count"), 3);
    let missing = format!("{prefix}.missing");
    assert!(
        matches!(log.partition_count(&missing).await, Err(LogError::UnknownTopic(_))),
        "partition_count of an unknown topic must fail with UnknownTopic"
    );
    assert!(
        matches!(log.end_offset(&missing, 0).await, Err(LogError::UnknownTopic(_))),
        "end_offset of an unknown topic must fail with UnknownTopic"
    );
}

/// Appends route by key (Kafka's partitioner), get contiguous per-partition offsets in call
/// order, and read back exactly as written.
pub async fn check_append_and_read(log: &dyn Log, prefix: &str) {
    let topic = format!("{prefix}.append");
    log.create_topic(&topic, 4).await.expect("create_topic");
    assert!(
        log.append(&topic, Vec::new()).await.expect("empty append").is_empty(),
        "appending nothing returns no positions"
    );
    let mut records: Vec<NewRecord> =
        (0..60).map(|i| record(Some(&format!("device-{}", i % 10)), format!("v{i}"), 1_000 + i)).collect();
    records.push(record(None, "no key".to_owned(), 5));
    records.push(record(Some(""), String::new(), -1));
    let positions = log.append(&topic, records.clone()).await.expect("append");
    assert_eq!(positions.len(), records.len(), "one position per record");

    let mut expected: HashMap<u32, Vec<&NewRecord>> = HashMap::new();
    for (rec, pos) in records.iter().zip(&positions) {
        assert_eq!(
            pos.partition,
            partition_for_key(rec.key.as_deref(), 4),
            "records must be routed with partition_for_key"
        );
        let list = expected.entry(pos.partition).or_default();
        assert_eq!(pos.offset, list.len() as u64, "offsets of a partition start at 0 and follow the order of the call");
        list.push(rec);
    }
    for partition in 0..4 {
        let want = expected.remove(&partition).unwrap_or_default();
        let end = log.end_offset(&topic, partition).await.expect("end_offset");
        assert_eq!(end, want.len() as u64, "end_offset counts the records of partition {partition}");
        let got = log.read(&topic, partition, 0, 1000).await.expect("read");
        assert_eq!(got.len(), want.len(), "read returns every record of partition {partition}");
        for (i, (got, want)) in got.iter().zip(want).enumerate() {
            assert_eq!(got.topic, topic);
            assert_eq!(got.partition, partition);
            assert_eq!(got.offset, i as u64);
            assert_eq!(got.key, want.key, "key of {partition}/{i}");
            assert_eq!(got.value, want.value, "value of {partition}/{i}");
            assert_eq!(got.timestamp_ms, want.timestamp_ms, "timestamp of {partition}/{i}");
        }
    }
    let all = read_all(log, &topic, 0).await.expect("read_all");
    assert_eq!(all.len(), records.len(), "read_all returns every record");
}

/// Reads honour `from` and `max_records`, return nothing at the end, and reject bad positions.
pub async fn check_read_bounds(log: &dyn Log, prefix: &str) {
    let topic = format!("{prefix}.bounds");
    log.create_topic(&topic, 2).await.expect("create_topic");
    let records: Vec<NewRecord> = (0..10).map(|i| record(Some("same-key"), format!("r{i}"), i)).collect();
    let partition = log.append(&topic, records).await.expect("append")[0].partition;
    let middle = log.read(&topic, partition, 4, 3).await.expect("read");
    let offsets: Vec<u64> = middle.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [4, 5, 6], "read starts at `from` and stops at `max_records`");
    assert_eq!(middle[0].value, b"r4");
    assert!(
        log.read(&topic, partition, 10, 5).await.expect("read at end").is_empty(),
        "reading at the end offset returns an empty batch"
    );
    assert!(
        matches!(log.read(&topic, partition, 11, 5).await, Err(LogError::OffsetOutOfRange { offset: 11, .. })),
        "reading beyond the end offset fails with OffsetOutOfRange"
    );
    assert!(
        matches!(log.read(&topic, 2, 0, 5).await, Err(LogError::UnknownPartition { partition: 2, .. })),
        "reading a partition that does not exist fails with UnknownPartition"
    );
    assert!(
        matches!(log.read(&format!("{prefix}.nope"), 0, 0, 5).await, Err(LogError::UnknownTopic(_))),
        "reading an unknown topic fails with UnknownTopic"
    );
}

/// `wait_for` reports available data at once, times out without it, and wakes up promptly when
/// another task appends.
pub async fn check_wait_for(log: Arc<dyn Log>, prefix: &str) {
    let topic = format!("{prefix}.wait");
    log.create_topic(&topic, 1).await.expect("create_topic");
    let started = Instant::now();
    assert!(
        !log.wait_for(&topic, 0, 0, Duration::from_millis(100)).await.expect("wait_for"),
        "wait_for on an empty partition times out with false"
    );
    assert!(started.elapsed() >= Duration::from_millis(90), "wait_for must wait for its timeout when there is no data");
    let waiter = {
        let log = log.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let ready = log.wait_for(&topic, 0, 0, Duration::from_secs(20)).await;
            (ready, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    log.append(&topic, vec![record(Some("k"), "wake".to_owned(), 0)]).await.expect("append");
    let (ready, waited) = waiter.await.expect("waiter task");
    assert!(ready.expect("wait_for"), "wait_for must report the appended data");
    assert!(waited < Duration::from_secs(5), "wait_for must wake up promptly on append (took {waited:?})");
    let records = log.read(&topic, 0, 0, 10).await.expect("read");
    assert_eq!(records.len(), 1, "data is readable once wait_for returned true");
    assert!(
        log.wait_for(&topic, 0, 0, Duration::ZERO).await.expect("wait_for"),
        "wait_for returns true at once when data is already there"
    );
    assert!(
        matches!(log.wait_for(&format!("{prefix}.nope"), 0, 0, Duration::ZERO).await, Err(LogError::UnknownTopic(_))),
        "wait_for on an unknown topic fails with UnknownTopic"
    );
}

/// Committed offsets are stored per group, topic and partition, and the last commit wins.
pub async fn check_commits(log: &dyn Log, prefix: &str) {
    let topic = format!("{prefix}.commits");
    log.create_topic(&topic, 2).await.expect("create_topic");
    let group = format!("{prefix}-group");
    let other = format!("{prefix}-other");
    assert_eq!(log.committed(&group, &topic, 0).await.expect("committed"), None);
    log.commit(&group, &topic, 0, 3).await.expect("commit");
    log.commit(&group, &topic, 0, 8).await.expect("commit");
    log.commit(&group, &topic, 1, 1).await.expect("commit");
    assert_eq!(log.committed(&group, &topic, 0).await.expect("committed"), Some(8));
    assert_eq!(log.committed(&group, &topic, 1).await.expect("committed"), Some(1));
    assert_eq!(log.committed(&other, &topic, 0).await.expect("committed"), None, "groups are independent");
    assert!(
        matches!(log.commit(&group, &format!("{prefix}.nope"), 0, 1).await, Err(LogError::UnknownTopic(_))),
        "committing for an unknown topic fails with UnknownTopic"
    );
    assert!(
        matches!(log.commit(&group, &topic, 5, 1).await, Err(LogError::UnknownPartition { partition: 5, .. })),
        "committing for an unknown partition fails with UnknownPartition"
    );
}

/// Concurrent appenders are each acknowledged exactly once, and each appender's records keep
/// their order within the partition.
pub async fn check_concurrent_appends(log: Arc<dyn Log>, prefix: &str) {
    let topic = format!("{prefix}.concurrent");
    log.create_topic(&topic, 2).await.expect("create_topic");
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let log = log.clone();
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("writer-{writer}");
            let mut acked = Vec::new();
            for i in 0..20 {
                let batch = vec![
                    record(Some(&key), format!("{writer}:{}", 2 * i), 0),
                    record(Some(&key), format!("{writer}:{}", 2 * i + 1), 0),
                ];
                acked.extend(log.append(&topic, batch).await.expect("append"));
            }
            (writer, acked)
        }));
    }
    let mut acknowledged = HashMap::new();
    for task in tasks {
        let (writer, acked) = task.await.expect("appender task");
        for (seq, position) in acked.into_iter().enumerate() {
            let previous = acknowledged.insert((position.partition, position.offset), (writer, seq));
            assert!(previous.is_none(), "position {position:?} acknowledged twice");
        }
    }
    let mut last_seq: HashMap<u32, usize> = HashMap::new();
    let mut total = 0;
    for partition in 0..2 {
        for record in log.read(&topic, partition, 0, 10_000).await.expect("read") {
            total += 1;
            let (writer, seq) = acknowledged[&(partition, record.offset)];
            assert_eq!(record.value, format!("{writer}:{seq}").into_bytes(), "record at its acknowledged position");
            if let Some(previous) = last_seq.insert(writer, seq) {
                assert!(previous < seq, "writer {writer}'s records out of order");
            }
        }
    }
    assert_eq!(total, 8 * 40, "every acknowledged record is stored exactly once");
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_backend_meets_the_contract() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = crate::open(&format!("embedded:{}", dir.path().display())).await.expect("open");
        super::run_contract_suite(log).await;
    }

    #[tokio::test]
    async fn unknown_url_is_refused() {
        assert!(matches!(crate::open("nosuch://nowhere").await, Err(crate::LogError::UnsupportedUrl(_))));
    }
}
