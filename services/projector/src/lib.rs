//! The projector role.
//!
//! Consumes: `device-events` and `governance`.
//! Produces: the PostgreSQL projection (devices, current state, state history, actions, plugins)
//! in a dedicated schema, and a `NOTIFY tessera_changes` per changed device for live subscribers.
//! Guarantees: effectively-once effects. Each batch runs in one transaction that locks the
//! partition's stored offset, skips anything below it, applies idempotent, offset-ordered writes
//! and stores the new offset; so a crash at any point, a replay, or a second projector on the same
//! partition never loses or doubles an effect. Rows derive only from events, so a rebuild from
//! offset 0 (`rebuild`) yields identical tables.
//! Several projector instances divide the partitions through a group
//! ([`tessera_log::membership`], see [`run_member`]); the offset row lock stays the fence, so even
//! two instances that both believe they own a partition (a member presumed dead that is not)
//! cannot apply an effect twice.

mod apply;
mod error;
mod rebuild;
mod worker;

use std::collections::BTreeSet;
use std::sync::Arc;

use sqlx::PgPool;
use tessera_codec::Topics;
use tessera_codec::messages::Codec;
use tessera_log::Log;
use tessera_log::membership::{LocalGroup, Membership, PartitionPool, TopicPartition};
use tokio_util::sync::CancellationToken;

pub use apply::{insert_history_sql, upsert_state_sql};
pub use error::ProjectorError;
pub use rebuild::{RebuildReport, rebuild};

/// The schema holding the live projection.
pub const LIVE_SCHEMA: &str = "projection";

/// The NOTIFY channel announcing changed devices.
pub const CHANGES_CHANNEL: &str = "tessera_changes";

/// Plugin states in which nothing reaches the plugin's devices: while its plugin is in one of
/// them, a device counts as offline whatever it last reported (the API derives `online` so, and
/// the projector notifies the plugin's devices when their plugin enters or leaves these states).
pub const UNREACHABLE_PLUGIN_STATES: &[&str] = &["quarantined", "stopped", "rejected"];

const SCHEMA_SQL: &str = include_str!("../../../migrations/projection/schema.sql");

/// Configuration of the projector.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Topic names.
    pub topics: Topics,
    /// Schema to project into.
    pub schema: String,
    /// Whether to NOTIFY listeners of changes (off during rebuilds).
    pub notify: bool,
}

impl ProjectorConfig {
    /// The live projection with notifications.
    pub fn live(topics: Topics) -> Self {
        Self { topics, schema: LIVE_SCHEMA.to_owned(), notify: true }
    }
}

/// Creates the projection schema and tables if they do not exist.
pub async fn ensure_schema(pool: &PgPool, schema: &str) -> Result<(), ProjectorError> {
    let mut tx = pool.begin().await?;
    // Serialize concurrent projectors creating the same schema.
    sqlx::query("SELECT pg_advisory_xact_lock(7305726)").execute(&mut *tx).await?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).execute(&mut *tx).await?;
    let ddl = SCHEMA_SQL.replace("{schema}", schema);
    // A plain string runs over the simple-query protocol, which allows several statements.
    sqlx::Executor::execute(&mut *tx, ddl.as_str()).await?;
    tx.commit().await?;
    Ok(())
}

/// Runs the projector as the only member of its group (it projects every partition) until
/// `shutdown` is cancelled.
pub async fn run(
    config: ProjectorConfig,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    pool: PgPool,
    shutdown: CancellationToken,
) -> Result<(), ProjectorError> {
    run_member(config, log, codec, pool, &LocalGroup::new(), shutdown).await
}

/// Runs the projector as one member of a group joined through `membership`, projecting the
/// partitions of `device-events` and `governance` the group assigns it, until `shutdown`. A worker
/// that fails (the database went away) is started again after a short rest; a revoked partition is
/// released once its worker's transaction ended.
pub async fn run_member(
    config: ProjectorConfig,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    pool: PgPool,
    membership: &dyn Membership,
    shutdown: CancellationToken,
) -> Result<(), ProjectorError> {
    ensure_schema(&pool, &config.schema).await?;
    let events = config.topics.device_events();
    let governance = config.topics.governance();
    let mut wanted = BTreeSet::new();
    for topic in [&events, &governance] {
        log.create_topic(topic, config.topics.partitions_for(topic)).await?;
        for partition in 0..log.partition_count(topic).await? {
            wanted.insert((topic.clone(), partition));
        }
    }
    let member = membership.join(wanted);
    let start = |(topic, partition): &TopicPartition, stop: CancellationToken| {
        let kind = if *topic == events { worker::Kind::DeviceEvents } else { worker::Kind::Governance };
        let w = worker::Worker {
            topic: topic.clone(),
            partition: *partition,
            kind,
            config: config.clone(),
            log: log.clone(),
            codec: codec.clone(),
            pool: pool.clone(),
        };
        Some(tokio::spawn(async move { w.run_until(stop, None).await }))
    };
    PartitionPool::new("projector", start).run(member.as_ref(), shutdown).await;
    Ok(())
}
