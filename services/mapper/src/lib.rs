//! The mapper role.
//!
//! Consumes: `raw.<plugin_id>` for every plugin package it is given.
//! Produces: `device-events` (device upserted, state reported, availability) and `dlq`.
//! Guarantees: every raw observation is decoded against the writer schema its id names (within
//! the codec's hard limits), mapped with the plugin's declarative mapping (its expressions
//! compiled once, when the package loads) into the unified model, and either becomes device
//! events or a `dlq` rejection naming the field and rule, before its offset is committed. Event
//! ids derive from the source coordinates, so reprocessing after a crash yields the same events.
//! Several mapper instances share the raw partitions through a group
//! ([`tessera_log::membership`]): a partition changes owner only after its previous owner
//! committed and released it.

mod device_cache;
mod error;
mod worker;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use tessera_codec::Topics;
use tessera_codec::messages::Codec;
use tessera_log::Log;
use tokio_util::sync::CancellationToken;

pub use error::MapperError;
use tessera_log::membership::{LocalGroup, Membership, PartitionPool, TopicPartition};
use tessera_model::package::Package;

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

/// Runs the mapper as the only member of its group (it maps every partition) until `shutdown`.
pub async fn run(
    config: MapperConfig,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    shutdown: CancellationToken,
) -> Result<(), MapperError> {
    run_member(config, log, codec, &LocalGroup::new(), shutdown).await
}

/// Runs the mapper as one member of a group joined through `membership`, mapping the partitions
/// the group assigns it, until `shutdown`; on shutdown it commits and releases them.
pub async fn run_member(
    config: MapperConfig,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    membership: &dyn Membership,
    shutdown: CancellationToken,
) -> Result<(), MapperError> {
    for topic in [config.topics.device_events(), config.topics.dlq()] {
        log.create_topic(&topic, config.topics.partitions_for(&topic)).await?;
    }
    let mut packages: HashMap<String, Arc<Package>> = HashMap::new();
    let mut wanted = BTreeSet::new();
    for dir in &config.packages {
        let files = tessera_plugin_host::package::read_files(dir).map_err(|e| MapperError::Package(e.to_string()))?;
        // Validation parses `mapping.toml`, which compiles its expressions: once per package load.
        let package = match tessera_model::package::validate(&files, tessera_model::Catalog::builtin()) {
            Ok(package) => package,
            Err(violations) => {
                tracing::warn!(package = %dir.display(), violations = violations.len(), "skipping a package that fails contract validation");
                continue;
            }
        };
        let raw_topic = config.topics.raw(&package.manifest.id);
        log.create_topic(&raw_topic, config.topics.partitions_for(&raw_topic)).await?;
        for partition in 0..log.partition_count(&raw_topic).await? {
            wanted.insert((raw_topic.clone(), partition));
        }
        packages.insert(raw_topic, Arc::new(package));
    }
    let member = membership.join(wanted);
    let start = |partition: &TopicPartition, stop: CancellationToken| {
        let Some(package) = packages.get(&partition.0) else {
            tracing::warn!(topic = %partition.0, "assigned a topic of no loaded package; releasing it");
            return None;
        };
        let worker =
            worker::Worker::new(package.clone(), partition.0.clone(), partition.1, &config, log.clone(), codec.clone());
        Some(tokio::spawn(worker.run(stop)))
    };
    PartitionPool::new("mapper", start).run(member.as_ref(), shutdown).await;
    Ok(())
}
