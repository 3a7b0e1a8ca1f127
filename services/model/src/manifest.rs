//! `plugin.toml`: the manifest of a plugin package.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The plugin protocol versions this build of Tessera speaks.
pub const SUPPORTED_API_VERSIONS: &[u32] = &[1];

/// A parsed `plugin.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Plugin id: lowercase letters, digits and `-`/`_`; names its `raw.<id>` topic.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Semantic version of the package.
    pub version: String,
    /// Plugin protocol version the entrypoint speaks.
    pub api_version: u32,
    /// What the plugin is for.
    #[serde(default)]
    pub description: String,
    /// Device families it integrates (`zigbee`, `modbus`, `virtual`, ...).
    #[serde(default)]
    pub device_families: Vec<String>,
    /// Command that starts the plugin, relative to the package directory; argv form.
    pub entrypoint: Vec<String>,
    /// Configuration the plugin accepts, by name.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigField>,
    /// Names of the secrets the plugin needs; handed over the protocol, never via env or argv.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Resource limits of the plugin process.
    #[serde(default)]
    pub limits: Limits,
    /// Network permissions.
    #[serde(default)]
    pub network: Network,
    /// How the host restarts the plugin after a failure; unset fields take the host's defaults.
    #[serde(default)]
    pub restart: RestartPolicy,
}

/// Type of a configuration field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigType {
    /// Text.
    String,
    /// Integer.
    Int,
    /// Number.
    Float,
    /// Boolean.
    Bool,
    /// Any JSON-compatible table or list.
    Object,
}

/// One configuration field of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigField {
    /// Its type.
    #[serde(rename = "type")]
    pub field_type: ConfigType,
    /// Value used when the operator gives none.
    pub default: Option<toml::Value>,
    /// Whether the operator must give a value.
    #[serde(default)]
    pub required: bool,
    /// What it configures.
    #[serde(default)]
    pub description: String,
}

/// Resource limits of a plugin process, with conservative defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Address-space limit in MiB.
    pub memory_mb: u64,
    /// CPU time limit in seconds (RLIMIT_CPU); the plugin is restarted when it hits it.
    pub cpu_seconds: u64,
    /// Maximum number of processes/threads.
    pub max_processes: u64,
    /// Maximum open files.
    pub open_files: u64,
    /// Sustained observations per second before excess ones are dropped and counted.
    pub observations_per_second: u32,
    /// Largest accepted protocol message in bytes.
    pub max_message_bytes: usize,
    /// Timeout of each request to the plugin, in milliseconds.
    pub call_timeout_ms: u64,
    /// Interval between heartbeats, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// Protocol violations (garbage lines, invalid payloads) tolerated in one run before the
    /// plugin is considered broken and restarted.
    pub max_violations: u32,
    /// Largest number of rejections per second written individually to `dlq`; beyond it they are
    /// only counted and summarized, so that a flooding plugin cannot flood `dlq` instead.
    pub dlq_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 512,
            cpu_seconds: 86_400,
            max_processes: 64,
            open_files: 256,
            observations_per_second: 1_000,
            max_message_bytes: 256 * 1024,
            call_timeout_ms: 10_000,
            heartbeat_interval_ms: 5_000,
            max_violations: 100,
            dlq_per_second: 100,
        }
    }
}

/// Network permissions of a plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// `host:port` patterns the plugin may connect to. Empty: the plugin uses no network, and a
    /// root host runs it without any (its own empty network namespace). Not empty: the plugin
    /// shares the host's network; the patterns are not enforced per destination.
    pub allow: Vec<String>,
}

/// Restart policy of a plugin. Every field is optional: the host's configuration applies to what
/// the manifest leaves out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestartPolicy {
    /// First restart delay in milliseconds; doubles per consecutive failure.
    pub initial_backoff_ms: Option<u64>,
    /// Longest restart delay in milliseconds.
    pub max_backoff_ms: Option<u64>,
    /// Failures within the failure window that quarantine the plugin.
    pub quarantine_after: Option<u32>,
    /// Window over which failures are counted, in seconds.
    pub failure_window_s: Option<u64>,
}
