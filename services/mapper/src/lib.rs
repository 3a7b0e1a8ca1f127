//! The mapper role.
//!
//! Consumes: `raw.<plugin_id>` for every plugin package it is given.
//! Produces: `device-events` (device upserted, state reported, availability) and `dlq`.
//! Guarantees: every raw observation is decoded against the writer schema its id names, mapped
//! with the plugin's declarative mapping into the unified model, and either becomes device events
//! or a `dlq` rejection naming the field and rule, before its offset is committed. Event ids derive
//! from the source coordinates, so reprocessing after a crash yields the same events.

mod device_cache;
mod error;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use tessera_codec::Topics;
use tessera_codec::messages::Codec;
use tessera_log::Log;
use tokio_util::sync::CancellationToken;

pub use error::MapperError;

/// Configuration of the mapper.
#[derive(Debug, Clone)]
pub struct MapperConfig {
    /// Plugin packages whose raw topics to map.
    pub packages: Vec<PathBuf>,
    /// Topic names.
    pub topics: Topics,
    /// Consumer group.
    pub group: String,
}

/// Runs the mapper until `shutdown` is cancelled.
pub async fn run(
    config: MapperConfig,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    shutdown: CancellationToken,
) -> Result<(), MapperError> {
    log.create_topic(&config.topics.device_events(), 1).await?;
    log.create_topic(&config.topics.dlq(), 1).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for dir in &config.packages {
        let files = tessera_plugin_host::package::read_files(dir).map_err(|e| MapperError::Package(e.to_string()))?;
        let Ok(package) = tessera_model::package::validate(&files, tessera_model::Catalog::builtin()) else {
            tracing::warn!(package = %dir.display(), "skipping a package that fails contract validation");
            continue;
        };
        let raw_topic = config.topics.raw(&package.manifest.id);
        log.create_topic(&raw_topic, 1).await?;
        let partitions = log.partition_count(&raw_topic).await?;
        let package = Arc::new(package);
        for partition in 0..partitions {
            let worker =
                worker::Worker::new(package.clone(), raw_topic.clone(), partition, &config, log.clone(), codec.clone());
            tasks.spawn(worker.run(shutdown.clone()));
        }
    }
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "mapper worker stopped"),
            Err(e) => tracing::error!(error = %e, "mapper worker panicked"),
        }
    }
    Ok(())
}
