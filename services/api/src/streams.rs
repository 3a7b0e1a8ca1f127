//! Replayable event streams: `/v1/streams/{topic}?from=OFFSET` answers NDJSON, every record of the
//! topic from `from` on every partition, then new records as they arrive.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use tessera_log::{DEFAULT_POLL_WAIT, Record};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Scope};
use crate::extract::{Path, Query};
use crate::{ApiError, AppState};

/// Records read per partition per step.
const BATCH: usize = 256;

/// The stream routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// Where a replay starts.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamQuery {
    /// First offset, on every partition (default 0).
    #[serde(default)]
    from: u64,
}

/// A topic's records from `from` as NDJSON, one JSON object per line
/// (`{topic, partition, offset, key, timestampMs, schemaId, value}`), then new ones as they arrive.
/// The response does not end: it tails the topic until the client disconnects.
#[utoipa::path(
    get,
    path = "/v1/streams/{topic}",
    tag = "streams",
    params(("topic" = String, Path, description = "Topic, with or without the prefix (`device-events`)"), StreamQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "NDJSON records, then new ones as they arrive", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "Malformed offset", body = crate::error::ErrorBody),
        (status = 404, description = "No such topic", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
    )
)]
async fn stream(
    State(state): State<AppState>,
    principal: Principal,
    Path(topic): Path<String>,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Read)?;
    let topic = state.topics.resolve(&topic);
    let records = replay(state, topic, q.from).await?;
    let body = records.map(|item| {
        let mut line = match item {
            Ok(v) => v.to_string(),
            Err(e) => json!({"error": e.to_string()}).to_string(),
        };
        line.push('\n');
        Ok::<_, Infallible>(line)
    });
    Ok(([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(body)).into_response())
}

/// A record as JSON: its coordinates and its value decoded with the schema its id names.
pub async fn record_json(state: &AppState, record: &Record) -> Json {
    let key = record.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned());
    let (schema_id, value, error) = match state.codec.decode_json(&record.value).await {
        Ok((id, value)) => (Some(id), value, None),
        Err(e) => (None, Json::Null, Some(e.to_string())),
    };
    let mut out = json!({
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": key,
        "timestampMs": record.timestamp_ms,
        "schemaId": schema_id,
        "value": value,
    });
    if let Some(error) = error {
        out["error"] = Json::String(error);
    }
    out
}

struct Cursor {
    state: AppState,
    topic: String,
    next: Vec<u64>,
    buffer: std::collections::VecDeque<Record>,
}

/// Replays `topic` from `from` on every partition, then tails it.
pub async fn replay(
    state: AppState,
    topic: String,
    from: u64,
) -> Result<impl Stream<Item = Result<Json, ApiError>> + Send + 'static, ApiError> {
    let partitions = match state.log.partition_count(&topic).await {
        Ok(n) => n,
        Err(tessera_log::LogError::UnknownTopic(_)) => return Err(ApiError::NotFound(format!("topic `{topic}`"))),
        Err(e) => return Err(e.into()),
    };
    let cursor = Cursor { state, topic, next: vec![from; partitions as usize], buffer: Default::default() };
    Ok(futures::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(record) = c.buffer.pop_front() {
                let json = record_json(&c.state, &record).await;
                return Some((Ok(json), c));
            }
            let mut any = false;
            for partition in 0..c.next.len() {
                let from = c.next[partition];
                match c.state.log.read(&c.topic, partition as u32, from, BATCH).await {
                    Ok(batch) => {
                        if let Some(last) = batch.last() {
                            c.next[partition] = last.offset + 1;
                            any = true;
                        }
                        c.buffer.extend(batch);
                    }
                    Err(tessera_log::LogError::OffsetOutOfRange { .. }) => {}
                    Err(e) => return Some((Err(ApiError::from(e)), c)),
                }
            }
            if !any {
                // Tail: wake as soon as any partition has a record past its cursor.
                let waits = c.next.iter().enumerate().map(|(partition, next)| {
                    Box::pin(c.state.log.wait_for(&c.topic, partition as u32, *next, DEFAULT_POLL_WAIT))
                });
                let waits: Vec<_> = waits.collect();
                if waits.is_empty() {
                    tokio::time::sleep(DEFAULT_POLL_WAIT).await;
                } else {
                    let _ = futures::future::select_all(waits).await;
                }
            }
        }
    }))
}
