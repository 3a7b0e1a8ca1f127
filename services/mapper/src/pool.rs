//! The workers of one mapper instance: one per assigned partition, started and stopped as the
//! group's assignment changes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tessera_codec::messages::Codec;
use tessera_log::Log;
use tessera_model::package::Package;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::group::{GroupMember, TopicPartition};
use crate::worker::Worker;
use crate::{MapperConfig, MapperError};

/// Validated packages by raw topic.
pub(crate) type Packages = HashMap<String, Arc<Package>>;

/// How long a failed worker's partition rests before it is started again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

struct Running {
    stop: CancellationToken,
    task: JoinHandle<Result<(), MapperError>>,
}

pub(crate) struct Pool {
    config: MapperConfig,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    packages: Packages,
    running: HashMap<TopicPartition, Running>,
}

impl Pool {
    pub(crate) fn new(config: MapperConfig, log: Arc<dyn Log>, codec: Arc<Codec>, packages: Packages) -> Self {
        Self { config, log, codec, packages, running: HashMap::new() }
    }

    /// Follows `member`'s assignment until `shutdown`, then stops every worker and releases.
    pub(crate) async fn run(
        mut self,
        member: &dyn GroupMember,
        shutdown: CancellationToken,
    ) -> Result<(), MapperError> {
        let mut assignment = member.assignment();
        let mut tick = tokio::time::interval(RESTART_DELAY);
        loop {
            let target = assignment.borrow_and_update().clone();
            self.reap_failed(member).await;
            self.apply(&target, member, &shutdown).await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = assignment.changed() => if changed.is_err() { break },
                _ = tick.tick() => {}
            }
        }
        let all: Vec<TopicPartition> = self.running.keys().cloned().collect();
        for partition in all {
            self.stop(&partition, member).await;
        }
        Ok(())
    }

    /// Stops the workers of revoked partitions (each commits before it returns), releases them,
    /// and starts workers for newly assigned ones.
    async fn apply(
        &mut self,
        target: &BTreeSet<TopicPartition>,
        member: &dyn GroupMember,
        shutdown: &CancellationToken,
    ) {
        let revoked: Vec<TopicPartition> = self.running.keys().filter(|p| !target.contains(*p)).cloned().collect();
        for partition in revoked {
            self.stop(&partition, member).await;
        }
        for partition in target {
            if self.running.contains_key(partition) {
                continue;
            }
            let Some(package) = self.packages.get(&partition.0) else {
                tracing::warn!(topic = %partition.0, "assigned a topic of no loaded package; releasing it");
                member.release(partition);
                continue;
            };
            let stop = shutdown.child_token();
            let worker = Worker::new(
                package.clone(),
                partition.0.clone(),
                partition.1,
                &self.config,
                self.log.clone(),
                self.codec.clone(),
            );
            let task = tokio::spawn(worker.run(stop.clone()));
            self.running.insert(partition.clone(), Running { stop, task });
            metrics::gauge!("tessera_mapper_partitions_assigned_count").set(self.running.len() as f64);
        }
    }

    async fn stop(&mut self, partition: &TopicPartition, member: &dyn GroupMember) {
        let Some(running) = self.running.remove(partition) else { return };
        running.stop.cancel();
        match running.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(topic = %partition.0, partition = partition.1, error = %e, "mapper worker failed")
            }
            Err(e) => {
                tracing::error!(topic = %partition.0, partition = partition.1, error = %e, "mapper worker panicked")
            }
        }
        member.release(partition);
        metrics::gauge!("tessera_mapper_partitions_assigned_count").set(self.running.len() as f64);
    }

    /// Forgets workers that ended on their own (a log error), so the next `apply` restarts them.
    async fn reap_failed(&mut self, member: &dyn GroupMember) {
        let finished: Vec<TopicPartition> =
            self.running.iter().filter(|(_, r)| r.task.is_finished()).map(|(p, _)| p.clone()).collect();
        for partition in finished {
            self.stop(&partition, member).await;
            metrics::counter!("tessera_mapper_worker_restarts_total").increment(1);
        }
    }
}
