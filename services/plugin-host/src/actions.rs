//! Executing action commands on a running plugin: expiry, delivery with the call timeout, and the
//! status events (`sent`, then `succeeded`, `failed`, `timed_out` or `expired`) on `device-events`.
//!
//! Every routed command ends in exactly one final status. A command is delivered only if it is
//! claimed before its time-to-live passes; the expiry sweeper (see [`crate::commands`]) marks the
//! commands nobody claimed in time `expired` — also those waiting behind a plugin that is backing
//! off or quarantined — and a command it expired can no longer be claimed, so it never runs late.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde_json::{Value as Json, json};
use tessera_codec::messages::Codec;
use tessera_codec::registry::now_ms;
use tessera_codec::{ActionCommand, Topics};
use tessera_log::{Log, NewRecord};
use tessera_model::{ActionOutcome, DeviceEvent, EventBody};
use tracing::Instrument;

use crate::protocol::{CallError, Connection};

/// How long the ids of expired commands are remembered, so a late claim is refused.
const EXPIRED_MEMORY_MS: i64 = 10 * 60 * 1000;

#[derive(Debug, Clone)]
enum Slot {
    /// Routed to its plugin, not yet claimed.
    Waiting(Box<ActionCommand>),
    /// Marked `expired` at this time (ms); delivery is refused.
    Expired(i64),
}

/// Commands routed but not yet delivered, by action id.
///
/// Process-wide because the supervisors deliver through [`invoke`] without a handle of their own;
/// action ids are random, so hosts sharing a process cannot collide.
static IN_FLIGHT: Mutex<Option<HashMap<String, Slot>>> = Mutex::new(None);

fn in_flight() -> MutexGuard<'static, Option<HashMap<String, Slot>>> {
    // The map holds plain data that no panic can leave half-updated.
    IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records that `cmd` was handed to its plugin's queue.
pub fn track(cmd: &ActionCommand) {
    in_flight().get_or_insert_with(HashMap::new).insert(cmd.action_id.clone(), Slot::Waiting(Box::new(cmd.clone())));
}

/// Takes back a tracked command that could not be queued: true if it was still waiting (the
/// caller reports it), false if the sweeper expired it meanwhile (and reported it).
pub fn untrack(action_id: &str) -> bool {
    matches!(in_flight().as_mut().and_then(|m| m.remove(action_id)), Some(Slot::Waiting(_)))
}

/// Claims a command for delivery: false when the sweeper already marked it expired.
fn claim(action_id: &str) -> bool {
    !matches!(in_flight().as_mut().and_then(|m| m.remove(action_id)), Some(Slot::Expired(_)))
}

/// Marks the waiting commands whose time-to-live passed by `now` as expired and returns them.
pub fn expire_due(now: i64) -> Vec<ActionCommand> {
    let mut guard = in_flight();
    let Some(map) = guard.as_mut() else { return Vec::new() };
    map.retain(|_, slot| !matches!(slot, Slot::Expired(at) if now - *at > EXPIRED_MEMORY_MS));
    let mut due = Vec::new();
    for slot in map.values_mut() {
        if let Slot::Waiting(cmd) = slot
            && now > cmd.expires_at_ms
        {
            let Slot::Waiting(cmd) = std::mem::replace(slot, Slot::Expired(now)) else { continue };
            due.push(*cmd);
        }
    }
    due
}

/// How many commands wait for delivery.
pub fn waiting() -> usize {
    in_flight().as_ref().map_or(0, |m| m.values().filter(|s| matches!(s, Slot::Waiting(_))).count())
}

/// Delivers one command to the plugin behind `conn` and records each status change.
pub async fn invoke(conn: &Connection, cmd: ActionCommand, log: &Arc<dyn Log>, codec: &Codec, topics: &Topics) {
    let span = tracing::info_span!(
        "action",
        action_id = %cmd.action_id,
        action = %cmd.action,
        device = %cmd.device_id,
        dry_run = cmd.dry_run
    );
    deliver(conn, cmd, log, codec, topics).instrument(span).await
}

async fn deliver(conn: &Connection, cmd: ActionCommand, log: &Arc<dyn Log>, codec: &Codec, topics: &Topics) {
    if !claim(&cmd.action_id) {
        tracing::info!("command already expired; not delivered");
        return;
    }
    let late_by = now_ms() - cmd.expires_at_ms;
    if late_by > 0 {
        let detail = format!("time-to-live passed {late_by} ms before delivery");
        return finish(&cmd, ActionOutcome::Expired, Some(detail), log, codec, topics).await;
    }
    let params: Json = match serde_json::from_str(&cmd.params_json) {
        Ok(params @ Json::Object(_)) => params,
        _ => {
            let detail = Some("the command's parameters are not a JSON object".to_owned());
            return finish(&cmd, ActionOutcome::Failed, detail, log, codec, topics).await;
        }
    };
    action_event(&cmd, ActionOutcome::Sent, None, log, codec, topics).await;
    let request = json!({
        "action_id": cmd.action_id,
        "external_id": cmd.external_id,
        "action": cmd.action,
        "params": params,
        "dry_run": cmd.dry_run,
    });
    let started = Instant::now();
    let (outcome, detail) = match conn.call("invoke", request).await {
        Ok(answer) => (ActionOutcome::Succeeded, answer.get("detail").and_then(Json::as_str).map(str::to_owned)),
        Err(CallError::Timeout(_)) => (ActionOutcome::TimedOut, Some("plugin did not answer in time".into())),
        Err(e) => (ActionOutcome::Failed, Some(e.to_string())),
    };
    metrics::histogram!("tessera_host_action_call_seconds", "plugin" => cmd.plugin_id.clone())
        .record(started.elapsed().as_secs_f64());
    finish(&cmd, outcome, detail, log, codec, topics).await;
}

/// Records a final status.
async fn finish(
    cmd: &ActionCommand,
    outcome: ActionOutcome,
    detail: Option<String>,
    log: &Arc<dyn Log>,
    codec: &Codec,
    topics: &Topics,
) {
    tracing::info!(outcome = outcome.as_str(), detail = detail.as_deref().unwrap_or(""), "action finished");
    metrics::counter!("tessera_host_actions_total", "plugin" => cmd.plugin_id.clone(), "outcome" => outcome.as_str())
        .increment(1);
    action_event(cmd, outcome, detail, log, codec, topics).await;
}

/// Records that the sweeper expired a command that waited too long for its plugin.
pub async fn expired_waiting(cmd: &ActionCommand, log: &Arc<dyn Log>, codec: &Codec, topics: &Topics) {
    let detail = "time-to-live passed while waiting for the plugin (not delivered)".to_owned();
    finish(cmd, ActionOutcome::Expired, Some(detail), log, codec, topics).await;
}

/// Records a command that cannot be routed (no such plugin here, or its queue is full).
pub async fn unroutable(cmd: &ActionCommand, why: &str, log: &Arc<dyn Log>, codec: &Codec, topics: &Topics) {
    finish(cmd, ActionOutcome::Failed, Some(why.to_owned()), log, codec, topics).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(id: &str, expires_at_ms: i64) -> ActionCommand {
        ActionCommand {
            action_id: id.into(),
            device_id: "p:d".into(),
            plugin_id: "p".into(),
            external_id: "d".into(),
            action: "toggle".into(),
            params_json: "{}".into(),
            dry_run: false,
            requested_by: "test".into(),
            requested_at_ms: 0,
            expires_at_ms,
            idempotency_key: None,
        }
    }

    // One test: the table is process-wide and the clock values here are synthetic.
    #[test]
    fn a_command_is_either_claimed_or_expired_never_both() {
        let ids = |due: Vec<ActionCommand>| due.into_iter().map(|c| c.action_id).collect::<Vec<_>>();
        track(&cmd("act_claimed_in_time", 1_000));
        track(&cmd("act_waits_too_long", 1_000));
        assert!(claim("act_claimed_in_time"), "claimed before its expiry");
        assert_eq!(ids(expire_due(500)), Vec::<String>::new(), "nothing is due before its expiry");
        assert_eq!(ids(expire_due(2_000)), vec!["act_waits_too_long".to_owned()]);
        assert!(!claim("act_waits_too_long"), "an expired command can no longer be claimed");
        assert!(ids(expire_due(3_000)).is_empty(), "expired once only");
        assert!(claim("act_never_tracked"), "untracked commands are delivered (and checked for expiry)");
        // The tombstone of an expired command is forgotten after a while.
        track(&cmd("act_forgotten", 4_000));
        assert_eq!(ids(expire_due(5_000)), vec!["act_forgotten".to_owned()]);
        expire_due(5_000 + EXPIRED_MEMORY_MS + 1);
        assert!(claim("act_forgotten"), "the tombstone is gone");
        assert_eq!(waiting(), 0);
    }
}
