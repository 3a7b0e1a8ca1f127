//! The plugin-host role.
//!
//! Consumes: plugin packages from the plugin directories, and `commands`.
//! Produces: `raw.<plugin_id>` (observations accepted from each plugin), `governance` (lifecycle
//! transitions), `dlq` (output a plugin emitted that broke its contract) and the action-status
//! events of `device-events`.
//! Guarantees: a package runs only after contract validation; each plugin runs as its own sandboxed
//! process that never holds log or database credentials; a plugin that crashes, hangs or floods is
//! contained (restarted with backoff, quarantined after repeated failure) without affecting the
//! host or any other plugin; an observation is acknowledged to nobody until it is durable in the log.

mod actions;
mod cgroup;
mod commands;
mod compat;
mod emitter;
mod error;
mod lifecycle;
pub mod package;
mod policy;
mod protocol;
mod quota;
mod sandbox;
mod stderr;
mod supervisor;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tessera_codec::Topics;
use tessera_codec::messages::Codec;
use tessera_log::Log;
use tokio_util::sync::CancellationToken;

pub use error::HostError;
pub use lifecycle::{PluginState, PluginStatus};

/// Configuration of the plugin-host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Package directories to run (each holds a `plugin.toml`).
    pub packages: Vec<PathBuf>,
    /// Root of the per-plugin state directories.
    pub state_dir: PathBuf,
    /// Topic names.
    pub topics: Topics,
    /// Operator configuration per plugin id, merged over the manifest defaults.
    pub plugin_config: BTreeMap<String, serde_json::Value>,
    /// Secrets per plugin id; only those a manifest declares are handed over.
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// Consecutive failures within [`HostConfig::failure_window`] that quarantine a plugin.
    pub quarantine_after: usize,
    /// Window over which failures are counted.
    pub failure_window: std::time::Duration,
    /// First restart delay; doubles per failure up to [`HostConfig::max_backoff`].
    pub initial_backoff: std::time::Duration,
    /// Longest restart delay.
    pub max_backoff: std::time::Duration,
}

impl HostConfig {
    /// A configuration with production defaults for the given packages.
    pub fn new(packages: Vec<PathBuf>, state_dir: PathBuf, topics: Topics) -> Self {
        Self {
            packages,
            state_dir,
            topics,
            plugin_config: BTreeMap::new(),
            secrets: BTreeMap::new(),
            quarantine_after: 5,
            failure_window: std::time::Duration::from_secs(300),
            initial_backoff: std::time::Duration::from_millis(500),
            max_backoff: std::time::Duration::from_secs(60),
        }
    }
}

/// Runs the plugin-host until `shutdown` is cancelled, then stops every plugin.
pub async fn run(
    config: HostConfig,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    shutdown: CancellationToken,
) -> Result<(), HostError> {
    for topic in
        [config.topics.governance(), config.topics.dlq(), config.topics.commands(), config.topics.device_events()]
    {
        log.create_topic(&topic, config.topics.partitions_for(&topic)).await?;
    }
    let mut routes = BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut running = std::collections::BTreeSet::new();
    for dir in &config.packages {
        let plugin = supervisor::Supervisor::prepare(dir, &config, (log.clone(), codec.clone()), &running).await?;
        let Some(plugin) = plugin else { continue };
        running.insert(plugin.id().to_owned());
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        routes.insert(plugin.id().to_owned(), tx);
        tasks.spawn(plugin.run(rx, shutdown.clone()));
    }
    tasks.spawn(commands::route(config.topics.clone(), log.clone(), codec.clone(), routes, shutdown.clone()));
    while let Some(result) = tasks.join_next().await {
        if let Err(e) = result {
            tracing::error!(error = %e, "plugin-host task panicked");
        }
    }
    Ok(())
}
