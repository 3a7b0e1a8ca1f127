//! The lifecycle states of a plugin and their record on `governance`.

use std::sync::Arc;

use tessera_codec::PluginLifecycle;
use tessera_codec::Topics;
use tessera_codec::messages::Codec;
use tessera_codec::registry::now_ms;
use tessera_log::{Log, NewRecord};
use tessera_model::Violation;

/// The lifecycle states of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginState {
    /// The package passed contract validation.
    Validated,
    /// The package failed contract validation and will not run.
    Rejected,
    /// The process is starting and being initialized.
    Initializing,
    /// Discovery is running.
    Discovering,
    /// Streaming observations.
    Running,
    /// Running, but dropping output (quota) or breaking the protocol.
    Degraded,
    /// Failed; waiting before the next restart.
    BackingOff,
    /// Failed too often; not restarted.
    Quarantined,
    /// Stopped by the host.
    Stopped,
}

impl PluginState {
    /// The name used on `governance` and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginState::Validated => "validated",
            PluginState::Rejected => "rejected",
            PluginState::Initializing => "initializing",
            PluginState::Discovering => "discovering",
            PluginState::Running => "running",
            PluginState::Degraded => "degraded",
            PluginState::BackingOff => "backing_off",
            PluginState::Quarantined => "quarantined",
            PluginState::Stopped => "stopped",
        }
    }
}

/// A snapshot of a plugin's condition.
#[derive(Debug, Clone)]
pub struct PluginStatus {
    /// Current state.
    pub state: PluginState,
    /// Why it is in that state, when it failed.
    pub detail: Option<String>,
    /// Restarts so far.
    pub restarts: u32,
}

/// One lifecycle record to write.
pub struct Transition<'a> {
    /// Plugin id.
    pub plugin_id: &'a str,
    /// Package version (empty when the manifest is unreadable).
    pub version: &'a str,
    /// New state.
    pub state: PluginState,
    /// Why, when it failed.
    pub detail: Option<String>,
    /// Restarts so far.
    pub restarts: u32,
    /// Contract violations (rejections).
    pub violations: Vec<Violation>,
    /// Observations accepted and rejected so far.
    pub counts: (i64, i64),
}

/// Writes a lifecycle transition to `governance`; failures are logged, never fatal, so that a
/// struggling log cannot take a plugin down with it.
pub async fn publish(log: &Arc<dyn Log>, codec: &Codec, topics: &Topics, t: Transition<'_>) {
    let record = PluginLifecycle {
        plugin_id: t.plugin_id.to_owned(),
        version: t.version.to_owned(),
        state: t.state.as_str().to_owned(),
        detail: t.detail,
        restarts: i32::try_from(t.restarts).unwrap_or(i32::MAX),
        violations: t.violations,
        accepted: t.counts.0,
        rejected: t.counts.1,
        at_ms: now_ms(),
    };
    match codec.encode_lifecycle(&record) {
        Ok(value) => {
            let new = NewRecord { key: Some(t.plugin_id.as_bytes().to_vec()), value, timestamp_ms: now_ms() };
            if let Err(e) = log.append(&topics.governance(), vec![new]).await {
                tracing::error!(error = %e, "cannot write governance record");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot encode governance record"),
    }
}
