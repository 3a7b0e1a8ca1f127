//! `tessera replay --topic T --from OFFSET`: prints a topic's records as JSON lines.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use tessera_codec::Topics;

use crate::cli::ReplayArgs;
use crate::roles::open_codec;

/// Prints every record of the topic from `--from`, decoded with its registered schema.
pub async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let topics = Topics::new(&args.topic_prefix);
    let log = tessera_log::open(&format!("embedded:{}", args.data_dir.join("log").display())).await.context(
        "cannot open the embedded log (while `tessera serve` runs, use GET /v1/streams/{topic}?from=OFFSET)",
    )?;
    let codec = open_codec(log.clone(), &topics).await?;
    let topic = topics.resolve(&args.topic);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for record in tessera_log::read_all(log.as_ref(), &topic, args.from).await? {
        let decoded = codec.decode_json(&record.value).await;
        let (schema_id, value, error) = match decoded {
            Ok((id, v)) => (Some(id), v, None),
            Err(e) => (None, serde_json::Value::Null, Some(e.to_string())),
        };
        let line = json!({
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
            "timestampMs": record.timestamp_ms,
            "schemaId": schema_id,
            "value": value,
            "error": error,
        });
        if writeln!(out, "{line}").is_err() {
            break; // stdout closed (e.g. piped into head)
        }
    }
    Ok(ExitCode::SUCCESS)
}
