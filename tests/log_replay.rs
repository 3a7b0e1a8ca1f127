//! Replay from offset 0 equals what was appended: a running stack streams `device-events` over
//! `/v1/streams/{topic}?from=0` (replay, then tail), the stack stops, and `tessera replay --topic
//! device-events --from 0` prints the embedded log's records. Both must match, record for record,
//! what the log itself holds, read directly from its directory and decoded with the schema each
//! record's Confluent header names.

mod harness;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use harness::{Stack, StackOptions};
use serde_json::Value;
use tessera_codec::messages::Codec;
use tessera_codec::{SchemaRegistry, Topics};

/// Records the running stream must deliver before the stack stops.
const STREAMED: usize = 25;

/// Reads NDJSON lines from `/v1/streams/{topic}?from={from}` until `count` records arrived.
async fn stream(stack: &Stack, topic: &str, from: u64, count: usize, limit: Duration) -> Vec<Value> {
    let url = format!("{}/v1/streams/{topic}?from={from}", stack.base);
    // The harness client's 30 s request timeout would cut the endless stream; use our own.
    let client = reqwest::Client::new();
    let mut response = client.get(url).bearer_auth(&stack.token).send().await.expect("stream request");
    assert_eq!(response.status().as_u16(), 200, "stream status");
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(content_type, "application/x-ndjson");
    let deadline = Instant::now() + limit;
    let (mut buffer, mut lines) = (Vec::new(), Vec::new());
    while lines.len() < count {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(remaining, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} records streamed within {limit:?}", lines.len()))
            .expect("stream chunk")
            .expect("the stream must stay open while tailing");
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            lines.push(serde_json::from_slice::<Value>(&line).expect("NDJSON line"));
        }
    }
    lines
}

/// What the embedded log holds, decoded like replay decodes it: one JSON object per record.
async fn log_contents(data_dir: &Path, topic: &str) -> Vec<Value> {
    let topics = Topics::new("tessera.");
    let log = tessera_log::open(&format!("embedded:{}", data_dir.join("log").display())).await.expect("open the log");
    let registry = std::sync::Arc::new(SchemaRegistry::open(log.clone(), &topics).await.expect("registry"));
    let codec = Codec::open(registry, &topics).await.expect("codec");
    let records = tessera_log::read_all(log.as_ref(), &topics.resolve(topic), 0).await.expect("read the log");
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        assert_eq!(record.value.first(), Some(&0u8), "Confluent magic byte on {}/{}", record.partition, record.offset);
        let schema_id = u32::from_be_bytes(record.value[1..5].try_into().expect("schema id"));
        let (decoded_id, value) = codec.decode_json(&record.value).await.expect("every record decodes");
        assert_eq!(decoded_id, schema_id);
        out.push(serde_json::json!({
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
            "timestampMs": record.timestamp_ms,
            "schemaId": schema_id,
            "value": value,
        }));
    }
    out
}

/// The fields both outputs share (replay adds `"error": null`; the stream omits it when there is none).
fn comparable(line: &Value) -> Value {
    let mut line = line.clone();
    if let Some(map) = line.as_object_mut()
        && map.get("error").is_some_and(Value::is_null)
    {
        map.remove("error");
    }
    line
}

fn coordinates(line: &Value) -> (u64, u64) {
    (line["partition"].as_u64().expect("partition"), line["offset"].as_u64().expect("offset"))
}

fn replay_cli(data_dir: &Path, topic: &str, from: u64) -> Vec<Value> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["replay", "--topic", topic, "--from", &from.to_string(), "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tessera replay");
    assert!(output.status.success(), "tessera replay failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_from_zero_equals_what_was_appended() {
    let mut stack = Stack::start(StackOptions { demo: true, ..Default::default() }).await;

    // Running stack: the stream replays from 0 and keeps tailing as the simulator appends.
    let streamed = stream(&stack, "device-events", 0, STREAMED, Duration::from_secs(90)).await;
    assert!(stack.stop().await, "tessera serve did not exit cleanly on SIGINT");

    let truth = log_contents(stack.data_dir(), "device-events").await;
    assert!(truth.len() >= STREAMED, "the log holds {} device events, the stream delivered {STREAMED}", truth.len());
    // The outputs are JSON text; serde_json's default float parser may land one ULP off the
    // printed value, so the stored side goes through the same print-and-parse before comparing.
    let truth: Vec<Value> = truth.iter().map(|v| serde_json::from_str(&v.to_string()).expect("reparse")).collect();
    let by_position: BTreeMap<(u64, u64), &Value> = truth.iter().map(|v| (coordinates(v), v)).collect();

    // The stream delivered each partition's records from offset 0, without gap or repeat, each
    // equal to the stored record.
    let mut next_per_partition: BTreeMap<u64, u64> = BTreeMap::new();
    for line in &streamed {
        let (partition, offset) = coordinates(line);
        let expected = next_per_partition.entry(partition).or_insert(0);
        assert_eq!(offset, *expected, "stream position in partition {partition}");
        *expected += 1;
        let stored = by_position.get(&(partition, offset)).expect("streamed record is in the log");
        assert_eq!(comparable(line), **stored, "streamed record {partition}/{offset}");
    }

    // Stopped stack: `tessera replay --from 0` prints exactly the log's records, in order.
    let replayed = replay_cli(stack.data_dir(), "device-events", 0);
    assert_eq!(replayed.len(), truth.len(), "replay prints every record once");
    for (line, stored) in replayed.iter().zip(&truth) {
        assert_eq!(comparable(line), *stored, "replayed record {:?}", coordinates(stored));
    }

    // From the middle: exactly the records at or after that offset.
    let from = (truth.len() / 2) as u64;
    let tail = replay_cli(stack.data_dir(), "device-events", from);
    let expected: Vec<&Value> = truth.iter().filter(|v| coordinates(v).1 >= from).collect();
    assert_eq!(tail.len(), expected.len(), "replay --from {from}");
    for (line, stored) in tail.iter().zip(expected) {
        assert_eq!(comparable(line), *stored);
    }
}
