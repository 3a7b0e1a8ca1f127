//! Shared state of the API handlers.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use sqlx::PgPool;
use tessera_codec::Topics;
use tessera_codec::messages::Codec;
use tessera_log::Log;
use tokio::sync::broadcast;

use crate::changes::Change;

/// Everything a handler needs, passed explicitly.
#[derive(Clone)]
pub struct AppState {
    /// The database holding the projection, tokens and audit trail.
    pub pool: PgPool,
    /// The log, for replay and commands.
    pub log: Arc<dyn Log>,
    /// Encoder/decoder and schema registry.
    pub codec: Arc<Codec>,
    /// Topic names.
    pub topics: Topics,
    /// Changes announced by the projector.
    pub changes: broadcast::Sender<Change>,
    /// Whether the change listener is connected (part of readiness).
    pub listening: Arc<AtomicBool>,
    /// Prometheus exposition of the process's metrics.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The plugins' supported actions, parameter constraints and UI overrides (empty: catalog
    /// ranges and generated UIs only). Set by whoever knows the plugin packages.
    pub plugins: Arc<tessera_model::surface::PluginSurfaces>,
}

impl AppState {
    /// State over the given resources.
    pub fn new(
        pool: PgPool,
        log: Arc<dyn Log>,
        codec: Arc<Codec>,
        topics: Topics,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Self {
        let (changes, _) = broadcast::channel(4096);
        Self {
            pool,
            log,
            codec,
            topics,
            changes,
            listening: Arc::new(AtomicBool::new(false)),
            metrics,
            plugins: Arc::default(),
        }
    }
}
