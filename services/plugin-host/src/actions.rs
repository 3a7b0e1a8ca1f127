//! Executing action commands on a running plugin: expiry, delivery with the call timeout, and the
//! status events (`sent`, then `succeeded`, `failed`, `timed_out` or `expired`) on `device-events`.

use std::sync::Arc;

use serde_json::{Value as Json, json};
use tessera_codec::messages::Codec;
use tessera_codec::registry::now_ms;
use tessera_codec::{ActionCommand, Topics};
use tessera_log::{Log, NewRecord};
use tessera_model::{ActionOutcome, DeviceEvent, EventBody};

use crate::protocol::{CallError, Connection};

/// Delivers one command to the plugin behind `conn` and records each status change.
pub async fn invoke(conn: &Connection, cmd: ActionCommand, log: &Arc<dyn Log>, codec: &Codec, topics: &Topics) {
    if now_ms() > cmd.expires_at_ms {
        action_event(&cmd, ActionOutcome::Expired, Some("time-to-live passed before delivery".into()), log, codec, topics).await;
        return;
    }
    action_event(&cmd, ActionOutcome::Sent, None, log, codec, topics).await;
    let params: Json = serde_json::from_str(&cmd.params_json).unwrap_or(Json::Object(Default::default()));
    let request = json!({
        "action_id": cmd.action_id,
        "external_id": cmd.external_id,
        "action": cmd.action,
        "params": params,
        "dry_run": cmd.dry_run,
    });
    let (outcome, detail) = match conn.call("invoke", request).await {
        Ok(answer) => (ActionOutcome::Succeeded, answer.get("detail").and_then(Json::as_str).map(str::to_owned)),
        Err(CallError::Timeout(_)) => (ActionOutcome::TimedOut, Some("plugin did not answer in time".into())),
        Err(e) => (ActionOutcome::Failed, Some(e.to_string())),
    };
    action_event(&cmd, outcome, detail, log, codec, topics).await;
}

/// Writes an action status event to `device-events`; its id is derived from the action id and
/// outcome, so a repeated write is deduplicated downstream.
pub async fn action_event(
    cmd: &ActionCommand,
    outcome: ActionOutcome,
    detail: Option<String>,
    log: &Arc<dyn Log>,
    codec: &Codec,
    topics: &Topics,
) {
    let event = DeviceEvent {
        event_id: format!("action/{}/{}", cmd.action_id, outcome.as_str()),
        device_id: cmd.device_id.clone(),
        plugin_id: cmd.plugin_id.clone(),
        external_id: cmd.external_id.clone(),
        observed_at_ms: now_ms(),
        body: EventBody::Action { action_id: cmd.action_id.clone(), action: cmd.action.clone(), outcome, detail },
    };
    match codec.encode_event(&event) {
        Ok(value) => {
            let record = NewRecord { key: Some(cmd.device_id.clone().into_bytes()), value, timestamp_ms: now_ms() };
            if let Err(e) = log.append(&topics.device_events(), vec![record]).await {
                tracing::error!(error = %e, "cannot write action status");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot encode action status"),
    }
}
