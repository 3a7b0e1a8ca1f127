//! Invoking a normalized action: validate against the device's action surface and the catalog,
//! write the command to `commands` and its `queued` status to `device-events`, audit the decision.

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use tessera_codec::ActionCommand;
use tessera_codec::registry::now_ms;
use tessera_log::NewRecord;
use tessera_model::catalog::ValueType;
use tessera_model::{ActionOutcome, Catalog, DeviceEvent, EventBody};

use crate::auth::{Principal, Scope};
use crate::{ApiError, AppState, db};

/// How long a command may wait for delivery before it expires.
const COMMAND_TTL_MS: i64 = 30_000;

/// A request to run an action.
#[derive(Debug, Clone, Deserialize)]
pub struct InvokeRequest {
    /// Target device.
    pub device_id: String,
    /// Normalized action.
    pub action: String,
    /// Parameters object.
    pub params: Json,
    /// Validate and dry-run only.
    pub dry_run: bool,
    /// Caller's idempotency key.
    pub idempotency_key: Option<String>,
}

/// The accepted invocation.
#[derive(Debug, Clone, Serialize, async_graphql::SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct Invocation {
    /// Invocation id; follow it with `actionStatus`.
    pub action_id: String,
    /// Status right after acceptance (`queued`).
    pub status: String,
}

fn check_params(action: &str, params: &Json) -> Result<(), String> {
    let Some((_, def)) = Catalog::builtin().action(action) else {
        return Err(format!("`{action}` is not a catalog action"));
    };
    let empty = serde_json::Map::new();
    let given = match params {
        Json::Null => &empty,
        Json::Object(map) => map,
        _ => return Err("params must be an object".into()),
    };
    if let Some(unknown) = given.keys().find(|k| !def.params.iter().any(|p| &p.name == *k)) {
        return Err(format!("`{action}` has no parameter `{unknown}`"));
    }
    for p in &def.params {
        let value = given.get(&p.name).ok_or_else(|| format!("parameter `{}` is required", p.name))?;
        match p.value_type {
            ValueType::Float | ValueType::Int => {
                let n = value.as_f64().ok_or_else(|| format!("parameter `{}` must be a number", p.name))?;
                if p.value_type == ValueType::Int && n.fract() != 0.0 {
                    return Err(format!("parameter `{}` must be an integer", p.name));
                }
                if p.min.is_some_and(|min| n < min) || p.max.is_some_and(|max| n > max) {
                    let bound = |b: Option<f64>| b.map_or_else(|| "unbounded".to_owned(), |v| v.to_string());
                    return Err(format!(
                        "parameter `{}` = {n} is outside [{}, {}]",
                        p.name,
                        bound(p.min),
                        bound(p.max)
                    ));
                }
            }
            ValueType::Bool => {
                value.as_bool().ok_or_else(|| format!("parameter `{}` must be a boolean", p.name))?;
            }
            ValueType::Enum => {
                let s = value.as_str().ok_or_else(|| format!("parameter `{}` must be a string", p.name))?;
                if !p.values.iter().any(|v| v == s) {
                    return Err(format!("parameter `{}` must be one of {:?}", p.name, p.values));
                }
            }
            ValueType::String | ValueType::Color => {}
        }
    }
    Ok(())
}

async fn audit(state: &AppState, principal: &Principal, req: &InvokeRequest, outcome: &str, detail: Json) {
    let result =
        sqlx::query("INSERT INTO audit_log (token_name, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(&principal.name)
            .bind(format!("invoke:{}", req.action))
            .bind(&req.device_id)
            .bind(outcome)
            .bind(detail)
            .execute(&state.pool)
            .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "cannot write audit entry");
    }
}

/// Validates and enqueues an action.
pub async fn invoke(state: &AppState, principal: &Principal, req: InvokeRequest) -> Result<Invocation, ApiError> {
    if let Err(e) = principal.require(Scope::Control) {
        audit(state, principal, &req, "denied", json!({"reason": "scope"})).await;
        return Err(e);
    }
    let device = match db::get_device(&state.pool, &req.device_id).await? {
        Some(d) => d,
        None => {
            audit(state, principal, &req, "denied", json!({"reason": "unknown device"})).await;
            return Err(ApiError::NotFound(format!("device `{}`", req.device_id)));
        }
    };
    if !device.actions.contains(&req.action) {
        audit(state, principal, &req, "denied", json!({"reason": "unsupported action"})).await;
        return Err(ApiError::BadRequest(format!(
            "device `{}` does not support `{}`; it supports {:?}",
            device.id, req.action, device.actions
        )));
    }
    if let Err(why) = check_params(&req.action, &req.params) {
        audit(state, principal, &req, "denied", json!({"reason": why})).await;
        return Err(ApiError::BadRequest(why));
    }
    let mut id = [0u8; 12];
    getrandom::fill(&mut id).map_err(|e| ApiError::BadRequest(format!("no randomness: {e}")))?;
    let action_id = format!("act_{}", hex::encode(id));
    let now = now_ms();
    let command = ActionCommand {
        action_id: action_id.clone(),
        device_id: device.id.clone(),
        plugin_id: device.plugin_id.clone(),
        external_id: device.external_id.clone(),
        action: req.action.clone(),
        params_json: if req.params.is_null() { "{}".into() } else { req.params.to_string() },
        dry_run: req.dry_run,
        requested_by: principal.name.clone(),
        requested_at_ms: now,
        expires_at_ms: now + COMMAND_TTL_MS,
        idempotency_key: req.idempotency_key.clone(),
    };
    let queued = DeviceEvent {
        event_id: format!("action/{action_id}/queued"),
        device_id: device.id.clone(),
        plugin_id: device.plugin_id.clone(),
        external_id: device.external_id.clone(),
        observed_at_ms: now,
        body: EventBody::Action {
            action_id: action_id.clone(),
            action: req.action.clone(),
            outcome: ActionOutcome::Queued,
            detail: Some(command.params_json.clone()),
        },
    };
    let key = Some(device.id.clone().into_bytes());
    state
        .log
        .append(
            &state.topics.device_events(),
            vec![NewRecord { key: key.clone(), value: state.codec.encode_event(&queued)?, timestamp_ms: now }],
        )
        .await?;
    state
        .log
        .append(
            &state.topics.commands(),
            vec![NewRecord { key, value: state.codec.encode_command(&command)?, timestamp_ms: now }],
        )
        .await?;
    audit(
        state,
        principal,
        &req,
        "allowed",
        json!({"action_id": action_id, "params": req.params, "dry_run": req.dry_run}),
    )
    .await;
    metrics::counter!("tessera_api_actions_total", "action" => req.action.clone()).increment(1);
    Ok(Invocation { action_id, status: ActionOutcome::Queued.as_str().into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_against_the_catalog() {
        assert!(check_params("set_brightness", &json!({"level": 50})).is_ok());
        assert!(check_params("set_brightness", &json!({"level": 150})).unwrap_err().contains("outside"));
        assert!(check_params("set_brightness", &json!({})).unwrap_err().contains("required"));
        assert!(check_params("set_brightness", &json!({"level": 5, "x": 1})).unwrap_err().contains("no parameter"));
        assert!(check_params("toggle", &Json::Null).is_ok());
        assert!(check_params("set_thermostat_mode", &json!({"mode": "warp"})).is_err());
    }
}
