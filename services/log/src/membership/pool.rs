//! The workers of one group member: one task per assigned partition, started and stopped as the
//! group's assignment changes. The role (mapper, projector) says how a partition's worker starts;
//! the pool keeps the group's rule that a partition is released only once its worker has ended.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{GroupMember, TopicPartition};

/// How long a failed worker's partition rests before it is started again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// A running partition worker: a task that ends (having committed) soon after `stop` is cancelled.
pub type WorkerTask<E> = JoinHandle<Result<(), E>>;

struct Running<E> {
    stop: CancellationToken,
    task: WorkerTask<E>,
}

/// Runs one worker per partition a [`GroupMember`] is assigned.
///
/// `start` is called for each newly assigned partition with the worker's stop token; it returns
/// the worker's task, or `None` if this member cannot work on that partition (it is then released
/// at once). A worker that ends on its own (an error) is started again after a short rest.
pub struct PartitionPool<E, F> {
    role: &'static str,
    start: F,
    running: HashMap<TopicPartition, Running<E>>,
}

impl<E, F> PartitionPool<E, F>
where
    E: Display + Send + 'static,
    F: FnMut(&TopicPartition, CancellationToken) -> Option<WorkerTask<E>>,
{
    /// A pool whose metrics and logs name `role` (`tessera_<role>_partitions_assigned_count`,
    /// `tessera_<role>_worker_restarts_total`).
    pub fn new(role: &'static str, start: F) -> Self {
        Self { role, start, running: HashMap::new() }
    }

    /// Follows `member`'s assignment until `shutdown`, then stops every worker and releases.
    pub async fn run(mut self, member: &dyn GroupMember, shutdown: CancellationToken) {
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
            let stop = shutdown.child_token();
            match (self.start)(partition, stop.clone()) {
                Some(task) => {
                    self.running.insert(partition.clone(), Running { stop, task });
                }
                None => member.release(partition),
            }
        }
        self.report();
    }

    async fn stop(&mut self, partition: &TopicPartition, member: &dyn GroupMember) {
        let Some(running) = self.running.remove(partition) else { return };
        running.stop.cancel();
        let (role, topic, number) = (self.role, &partition.0, partition.1);
        match running.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(role, topic = %topic, partition = number, error = %e, "partition worker failed")
            }
            Err(e) => {
                tracing::error!(role, topic = %topic, partition = number, error = %e, "partition worker panicked")
            }
        }
        member.release(partition);
        self.report();
    }

    /// Forgets workers that ended on their own (an error), so the next `apply` restarts them.
    async fn reap_failed(&mut self, member: &dyn GroupMember) {
        let finished: Vec<TopicPartition> =
            self.running.iter().filter(|(_, r)| r.task.is_finished()).map(|(p, _)| p.clone()).collect();
        for partition in finished {
            self.stop(&partition, member).await;
            metrics::counter!(format!("tessera_{}_worker_restarts_total", self.role)).increment(1);
        }
    }

    fn report(&self) {
        metrics::gauge!(format!("tessera_{}_partitions_assigned_count", self.role)).set(self.running.len() as f64);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::membership::{LocalGroup, Membership};

    fn parts(n: u32) -> BTreeSet<TopicPartition> {
        (0..n).map(|p| ("t".to_owned(), p)).collect()
    }

    #[tokio::test]
    async fn failed_workers_restart_and_revoked_ones_are_released() {
        let group = LocalGroup::new();
        let starts = Arc::new(AtomicUsize::new(0));
        let member = group.join(parts(2));
        let shutdown = CancellationToken::new();
        let counted = starts.clone();
        let pool = PartitionPool::new("test", move |partition: &TopicPartition, stop: CancellationToken| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let fail_once = partition.1 == 0 && n < 2;
            Some(tokio::spawn(async move {
                if fail_once {
                    return Err("boom");
                }
                stop.cancelled().await;
                Ok(())
            }))
        });
        let run = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { pool.run(member.as_ref(), shutdown).await }
        });
        // Two first starts, then partition 0's worker (which failed) once more.
        tokio::time::timeout(Duration::from_secs(10), async {
            while starts.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the failed worker was restarted");
        // A second member gets half only once the pool released it.
        let other = group.join(parts(2));
        tokio::time::timeout(Duration::from_secs(10), async {
            while other.assignment().borrow().len() != 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("a revoked partition was released to the other member");
        shutdown.cancel();
        run.await.expect("pool ends on shutdown");
    }
}
