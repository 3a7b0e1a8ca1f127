//! The messages a plugin sees and sends.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// What `initialize` hands over.
#[derive(Debug, Clone, Deserialize)]
pub struct Init {
    /// Protocol version the host offers.
    pub protocol_version: u32,
    /// The plugin's id.
    pub plugin_id: String,
    /// Configuration: manifest defaults merged with the operator's values.
    #[serde(default)]
    pub config: Json,
    /// The secrets the manifest declares that the operator provided.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// The plugin's private state directory.
    pub state_dir: PathBuf,
}

/// An `invoke` request.
#[derive(Debug, Clone, Deserialize)]
pub struct Invoke {
    /// Invocation id.
    pub action_id: String,
    /// Device id within the plugin.
    pub external_id: String,
    /// Normalized action name.
    pub action: String,
    /// Parameters, already checked against the catalog and the plugin's constraints.
    #[serde(default)]
    pub params: Json,
    /// Check everything, but do not touch the device.
    #[serde(default)]
    pub dry_run: bool,
}

/// One observation: a record of the plugin's Avro contract, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// Device id within the plugin.
    pub external_id: String,
    /// Full name of a record type of the contract.
    pub record: String,
    /// The record.
    pub payload: Json,
    /// When it was observed (ms since the Unix epoch); the host's clock when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_at_ms: Option<i64>,
}

impl Observation {
    /// An observation of `external_id`, observed now.
    pub fn new(external_id: impl Into<String>, record: impl Into<String>, payload: Json) -> Self {
        Self { external_id: external_id.into(), record: record.into(), payload, observed_at_ms: None }
    }

    /// Sets when it was observed.
    pub fn at(mut self, observed_at_ms: i64) -> Self {
        self.observed_at_ms = Some(observed_at_ms);
        self
    }
}
