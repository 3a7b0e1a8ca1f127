//! `DeviceEvent`: what the mapper writes to `device-events` and the projector materializes.

use serde::{Deserialize, Serialize};

use crate::{DeviceMetadata, StateValue};

/// One change to one device. Event ids are derived from the source coordinates of the raw record
/// that caused the event, so reprocessing the same record yields the same ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceEvent {
    /// Deterministic id: `<source topic>/<partition>/<offset>/<kind>`.
    pub event_id: String,
    /// Device the event is about.
    pub device_id: String,
    /// Plugin owning the device.
    pub plugin_id: String,
    /// Device id within the plugin.
    pub external_id: String,
    /// When the underlying observation was made, ms since the Unix epoch.
    pub observed_at_ms: i64,
    /// What happened.
    pub body: EventBody,
}

/// The kinds of device events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// The device appeared, or its metadata or capability set changed.
    Upserted(DeviceMetadata),
    /// New values for some capabilities.
    StateReported {
        /// The values, one per capability.
        states: Vec<StateEntry>,
    },
    /// The device became reachable or unreachable.
    Availability {
        /// Whether it is reachable now.
        online: bool,
    },
    /// The device is gone.
    Removed,
    /// An action on the device changed status.
    Action {
        /// Action invocation id.
        action_id: String,
        /// Normalized action name.
        action: String,
        /// New status.
        outcome: ActionOutcome,
        /// Detail: parameters when queued, error text when failed.
        detail: Option<String>,
    },
}

/// One capability value in a state report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateEntry {
    /// Catalog capability name.
    pub capability: String,
    /// The value, in the catalog unit of the capability.
    pub value: StateValue,
}

/// Status of an action invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// Accepted and written to `commands`.
    Queued,
    /// Delivered to the plugin.
    Sent,
    /// The plugin reported success.
    Succeeded,
    /// The plugin reported failure.
    Failed,
    /// The plugin did not answer in time.
    TimedOut,
    /// The command's time-to-live passed before it could be delivered.
    Expired,
}

impl ActionOutcome {
    /// The stable lowercase name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionOutcome::Queued => "queued",
            ActionOutcome::Sent => "sent",
            ActionOutcome::Succeeded => "succeeded",
            ActionOutcome::Failed => "failed",
            ActionOutcome::TimedOut => "timed_out",
            ActionOutcome::Expired => "expired",
        }
    }

    /// Parses the name produced by [`ActionOutcome::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => ActionOutcome::Queued,
            "sent" => ActionOutcome::Sent,
            "succeeded" => ActionOutcome::Succeeded,
            "failed" => ActionOutcome::Failed,
            "timed_out" => ActionOutcome::TimedOut,
            "expired" => ActionOutcome::Expired,
            _ => return None,
        })
    }
}
