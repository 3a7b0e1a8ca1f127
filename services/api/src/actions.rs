//! Invoking a normalized action: check the caller's scope, the device's action surface, the
//! parameters (catalog, then the plugin's `actions.toml` constraints) and the idempotency key;
//! write the `queued` status to `device-events` and the command to `commands`; audit every
//! decision, allowed or denied.
//!
//! Guarantees: an idempotency key of a caller maps to one invocation and never enqueues a second
//! command (the key is claimed in the PostgreSQL transaction that enqueues, under a primary key);
//! a command carries an expiry (`ttl`) after which the plugin-host refuses to deliver it; an
//! allowed decision's audit entry is committed with its idempotency claim, so an invocation that
//! was enqueued and acknowledged always has its audit entry.

pub mod audit;
pub mod history;
pub mod idempotency;
mod params;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use tessera_codec::ActionCommand;
use tessera_codec::registry::now_ms;
use tessera_log::NewRecord;
use tessera_model::{ActionOutcome, DeviceEvent, EventBody};
use tracing::Instrument;

use self::audit::{Decision, Outcome};
use self::idempotency::Claim;
use crate::auth::{Principal, Scope};
use crate::db::{self, DeviceView};
use crate::{ApiError, AppState};

/// How long a command may wait for delivery before it expires, unless the caller says otherwise.
pub const DEFAULT_TTL_MS: i64 = 30_000;
/// Longest time-to-live a caller may ask for.
pub const MAX_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// A request to run an action.
#[derive(Debug, Clone, Deserialize)]
pub struct InvokeRequest {
    /// Target device.
    pub device_id: String,
    /// Normalized action.
    pub action: String,
    /// Parameters object.
    pub params: Json,
    /// Run every check and the plugin's dry-run path, without touching the device.
    pub dry_run: bool,
    /// Caller's idempotency key: a repeated key returns the original invocation.
    pub idempotency_key: Option<String>,
    /// Time-to-live of the command in milliseconds (default [`DEFAULT_TTL_MS`]).
    pub ttl_ms: Option<i64>,
}

/// The accepted invocation.
#[derive(Debug, Clone, Serialize, async_graphql::SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct Invocation {
    /// Invocation id; follow it with `actionStatus`.
    pub action_id: String,
    /// Status now: `queued` for a new invocation, the original's latest status for a replay.
    pub status: String,
    /// Whether this answers a repeated idempotency key (nothing new was enqueued).
    pub replayed: bool,
}

/// A refusal: the audit entry's reason and the error returned to the caller.
struct Refusal {
    reason: String,
    error: ApiError,
}

fn refuse(reason: impl Into<String>, error: impl FnOnce(String) -> ApiError) -> Refusal {
    let reason = reason.into();
    Refusal { error: error(reason.clone()), reason }
}

fn detail(req: &InvokeRequest, extra: Json) -> Json {
    let mut out = json!({
        "params": req.params,
        "dry_run": req.dry_run,
        "idempotency_key": req.idempotency_key,
        "ttl_ms": req.ttl_ms.unwrap_or(DEFAULT_TTL_MS),
    });
    if let (Some(out), Json::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    out
}

/// Validates, audits and enqueues an action.
pub async fn invoke(state: &AppState, principal: &Principal, req: InvokeRequest) -> Result<Invocation, ApiError> {
    let span = tracing::info_span!(
        "invoke_action",
        device = %req.device_id,
        action = %req.action,
        caller = %principal.name,
        dry_run = req.dry_run
    );
    async move {
        let decided = match check(state, principal, &req).await {
            Ok((device, params)) => enqueue(state, principal, &req, &device, params).await,
            Err(refusal) => Err(refusal),
        };
        match decided {
            Ok(invocation) => Ok(invocation),
            Err(Refusal { reason, error }) => {
                tracing::info!(%reason, "action denied");
                let outcome = if matches!(error, ApiError::Database(_) | ApiError::Log(_) | ApiError::Codec(_)) {
                    Outcome::Failed
                } else {
                    Outcome::Denied
                };
                let decision = Decision {
                    caller: &principal.name,
                    action: &req.action,
                    device_id: &req.device_id,
                    outcome,
                    action_id: None,
                    detail: detail(&req, json!({"reason": reason})),
                };
                if let Err(e) = audit::record(&state.pool, &decision).await {
                    tracing::error!(error = %e, "cannot write audit entry");
                }
                Err(error)
            }
        }
    }
    .instrument(span)
    .await
}

/// Every check short of the idempotency key: scope, time-to-live, device, action, parameters.
async fn check(
    state: &AppState,
    principal: &Principal,
    req: &InvokeRequest,
) -> Result<(DeviceView, Map<String, Json>), Refusal> {
    if let Err(error) = principal.require(Scope::Control) {
        return Err(Refusal { reason: "the token lacks the `control` scope".into(), error });
    }
    if let Some(ttl) = req.ttl_ms
        && !(1..=MAX_TTL_MS).contains(&ttl)
    {
        return Err(refuse(format!("ttlMs must be between 1 and {MAX_TTL_MS}"), ApiError::BadRequest));
    }
    if let Some(why) = req.idempotency_key.as_deref().and_then(idempotency::invalid) {
        return Err(refuse(why, ApiError::BadRequest));
    }
    let device = match db::get_device(&state.pool, &state.plugins, &req.device_id).await {
        Ok(Some(device)) => device,
        Ok(None) => {
            return Err(refuse("unknown device", |_| ApiError::NotFound(format!("device `{}`", req.device_id))));
        }
        Err(error) => return Err(Refusal { reason: "database unavailable".into(), error }),
    };
    if !device.actions.contains(&req.action) {
        return Err(refuse(
            format!("device `{}` does not support `{}`; it supports {:?}", device.id, req.action, device.actions),
            ApiError::BadRequest,
        ));
    }
    let narrower = |param: &str| state.plugins.constraint(&device.plugin_id, &device.device_class, &req.action, param);
    match params::check(&req.action, &req.params, narrower) {
        Ok(params) => Ok((device, params)),
        Err(why) => Err(refuse(why, ApiError::BadRequest)),
    }
}

fn new_action_id() -> Result<String, Refusal> {
    let mut id = [0u8; 12];
    getrandom::fill(&mut id).map_err(|e| refuse(format!("no randomness: {e}"), ApiError::BadRequest))?;
    Ok(format!("act_{}", hex::encode(id)))
}

/// Claims the idempotency key, records the decision and writes the `queued` event and the command,
/// all inside one transaction that is committed only once both records are in the log.
async fn enqueue(
    state: &AppState,
    principal: &Principal,
    req: &InvokeRequest,
    device: &DeviceView,
    params: Map<String, Json>,
) -> Result<Invocation, Refusal> {
    let db_down = |error: sqlx::Error| Refusal { reason: "database unavailable".into(), error: error.into() };
    let action_id = new_action_id()?;
    let mut tx = state.pool.begin().await.map_err(db_down)?;
    if let Some(key) = &req.idempotency_key {
        let fingerprint = idempotency::fingerprint(&device.id, &req.action, &params, req.dry_run);
        let request = idempotency::Request {
            caller: &principal.name,
            key,
            action_id: &action_id,
            fingerprint: &fingerprint,
            device_id: &device.id,
            action: &req.action,
        };
        match idempotency::claim(&mut tx, &request).await.map_err(db_down)? {
            Claim::Fresh => {}
            Claim::Replay(original) => {
                let decision = Decision {
                    caller: &principal.name,
                    action: &req.action,
                    device_id: &device.id,
                    outcome: Outcome::Replayed,
                    action_id: Some(&original),
                    detail: detail(req, json!({"reason": "repeated idempotency key"})),
                };
                audit::record(&mut *tx, &decision).await.map_err(db_down)?;
                tx.commit().await.map_err(db_down)?;
                tracing::info!(action_id = %original, "idempotent replay; nothing enqueued");
                let status = db::action_status(&state.pool, &original).await.ok().flatten().map(|s| s.status);
                let status = status.unwrap_or_else(|| ActionOutcome::Queued.as_str().to_owned());
                return Ok(Invocation { action_id: original, status, replayed: true });
            }
            Claim::Conflict(original) => {
                return Err(refuse(
                    format!("idempotency key already used for a different request (invocation {original})"),
                    ApiError::BadRequest,
                ));
            }
        }
    }
    let decision = Decision {
        caller: &principal.name,
        action: &req.action,
        device_id: &device.id,
        outcome: Outcome::Allowed,
        action_id: Some(&action_id),
        detail: detail(req, Json::Null),
    };
    audit::record(&mut *tx, &decision).await.map_err(db_down)?;
    let command = command(principal, req, device, &action_id, &params);
    publish(state, &command).await.map_err(|error| Refusal { reason: format!("cannot enqueue: {error}"), error })?;
    tx.commit().await.map_err(db_down)?;
    metrics::counter!("tessera_api_actions_total", "action" => req.action.clone()).increment(1);
    tracing::info!(%action_id, expires_at_ms = command.expires_at_ms, "action queued");
    Ok(Invocation { action_id, status: ActionOutcome::Queued.as_str().into(), replayed: false })
}

fn command(
    principal: &Principal,
    req: &InvokeRequest,
    device: &DeviceView,
    action_id: &str,
    params: &Map<String, Json>,
) -> ActionCommand {
    let now = now_ms();
    ActionCommand {
        action_id: action_id.to_owned(),
        device_id: device.id.clone(),
        plugin_id: device.plugin_id.clone(),
        external_id: device.external_id.clone(),
        action: req.action.clone(),
        params_json: Json::Object(params.clone()).to_string(),
        dry_run: req.dry_run,
        requested_by: principal.name.clone(),
        requested_at_ms: now,
        expires_at_ms: now.saturating_add(req.ttl_ms.unwrap_or(DEFAULT_TTL_MS)),
        idempotency_key: req.idempotency_key.clone(),
    }
}

fn status_event(cmd: &ActionCommand, outcome: ActionOutcome, detail: Option<String>) -> DeviceEvent {
    DeviceEvent {
        event_id: format!("action/{}/{}", cmd.action_id, outcome.as_str()),
        device_id: cmd.device_id.clone(),
        plugin_id: cmd.plugin_id.clone(),
        external_id: cmd.external_id.clone(),
        observed_at_ms: cmd.requested_at_ms,
        body: EventBody::Action { action_id: cmd.action_id.clone(), action: cmd.action.clone(), outcome, detail },
    }
}

/// Writes `queued` to `device-events`, then the command to `commands` (in that order, so that the
/// plugin-host's `sent` can never precede `queued`). A command that cannot be written after its
/// `queued` event is marked `failed`, so it does not stay queued forever.
async fn publish(state: &AppState, cmd: &ActionCommand) -> Result<(), ApiError> {
    let key = Some(cmd.device_id.clone().into_bytes());
    let queued = status_event(cmd, ActionOutcome::Queued, Some(cmd.params_json.clone()));
    let record = |value| NewRecord { key: key.clone(), value, timestamp_ms: cmd.requested_at_ms };
    state.log.append(&state.topics.device_events(), vec![record(state.codec.encode_event(&queued)?)]).await?;
    let written = match state.codec.encode_command(cmd) {
        Ok(value) => state.log.append(&state.topics.commands(), vec![record(value)]).await.map_err(ApiError::from),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = &written {
        let failed = status_event(cmd, ActionOutcome::Failed, Some(format!("could not be enqueued: {e}")));
        if let Ok(value) = state.codec.encode_event(&failed) {
            let _ = state.log.append(&state.topics.device_events(), vec![record(value)]).await;
        }
    }
    written.map(|_| ())
}
