//! Group membership through a Kafka consumer group: the broker's group coordinator decides which
//! instance owns which partition, and moves partitions to the survivors when an instance leaves
//! or stops heartbeating (a crash is noticed after the session timeout).
//!
//! Each member runs one librdkafka consumer, subscribed to the member's topics in a *membership*
//! group of its own (not the group whose offsets the workers commit: commits of those are made
//! outside the group protocol, which a broker rejects for a group with live members). The
//! consumer never reads records: it pauses what it is assigned and polls only to heartbeat and to
//! run the rebalance callbacks. Those publish assignments on the member's `assignment` channel,
//! and on revocation block the rebalance until the workers released (committed) the revoked
//! partitions, so a live previous owner has always committed before the next owner starts.
//!
//! **A rebalance that kept the previous plan.** Every completed rebalance starts a new group
//! generation. Some coordinators (tansu 0.6) drop a member whose session expired and tell the
//! others to rejoin, but then answer the rejoin with the *old* generation and the old plan, so
//! the dead member's partitions stay assigned to nobody. A member that is assigned partitions
//! under the generation it already had therefore does not take that plan: it leaves the group and
//! joins again as a new member, which makes the coordinator form a new generation from the live
//! members. On a coordinator that follows the protocol this never happens.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::topic_partition_list::TopicPartitionList;
use tokio::sync::watch;

use crate::membership::{GroupMember, Membership, TopicPartition};

/// How long a revocation waits for the workers to release before it lets the rebalance go on
/// anyway (the next owner then may process a batch again, which the roles make idempotent).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(20);

/// How often the membership consumer polls (heartbeats are sent by librdkafka's own thread; the
/// poll only has to run the rebalance callbacks promptly).
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How long a member leaving the group waits for its revocation to complete.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Failure to set up a Kafka membership.
#[derive(Debug, thiserror::Error)]
pub enum KafkaMembershipError {
    /// librdkafka rejected the configuration or could not create the consumer.
    #[error("cannot create the membership consumer of group {group}: {source}")]
    Create {
        /// The membership group.
        group: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
}

/// Joins a Kafka consumer group; see the module documentation.
#[derive(Clone)]
pub struct KafkaMembership {
    group: String,
    config: ClientConfig,
}

impl KafkaMembership {
    /// A membership in `group` on the cluster at `bootstrap_servers`, with extra librdkafka
    /// properties `client_config` (for example `security.protocol`). The consumer is created once
    /// here to check the configuration.
    pub fn new(
        bootstrap_servers: &str,
        group: &str,
        client_config: &[(String, String)],
    ) -> Result<KafkaMembership, KafkaMembershipError> {
        let mut config = ClientConfig::new();
        for (key, value) in client_config {
            config.set(key, value);
        }
        config
            .set("bootstrap.servers", bootstrap_servers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "latest")
            // Eager rebalancing: every member gives everything back and waits for the new plan,
            // which the blocking revoke callback turns into "committed before moved".
            .set("partition.assignment.strategy", "roundrobin")
            // A crashed member's partitions move after this long without heartbeats.
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .set("max.poll.interval.ms", "300000");
        let membership = KafkaMembership { group: group.to_owned(), config };
        // Fail early on a bad configuration rather than in `join`, which cannot return errors.
        drop(membership.consumer(Arc::new(Shared::new(group)))?);
        Ok(membership)
    }

    fn consumer(&self, shared: Arc<Shared>) -> Result<BaseConsumer<MemberContext>, KafkaMembershipError> {
        self.config
            .create_with_context(MemberContext { shared })
            .map_err(|source| KafkaMembershipError::Create { group: self.group.clone(), source })
    }
}

impl Membership for KafkaMembership {
    fn join(&self, partitions: BTreeSet<TopicPartition>) -> Box<dyn GroupMember> {
        let shared = Arc::new(Shared::new(&self.group));
        let stop = Arc::new(AtomicBool::new(false));
        let topics: Vec<String> =
            partitions.iter().map(|(topic, _)| topic.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let session = Session { membership: self.clone(), shared: shared.clone(), topics };
        let thread = std::thread::Builder::new()
            .name(format!("membership-{}", self.group))
            .spawn({
                let stop = stop.clone();
                move || session.run(&stop)
            })
            .map_err(|e| tracing::error!(group = %self.group, error = %e, "cannot start the membership thread"))
            .ok();
        Box::new(KafkaMember { shared, stop, thread })
    }
}

/// The membership thread's state: the consumer it currently joined with, and how to make another.
struct Session {
    membership: KafkaMembership,
    shared: Arc<Shared>,
    topics: Vec<String>,
}

impl Session {
    /// Joins, polls until `stop`, then leaves; joins again as a new member whenever the group
    /// handed out a stale plan (see the module documentation).
    fn run(self, stop: &AtomicBool) {
        let span = tracing::info_span!("tessera_membership", group = %self.membership.group);
        let _entered = span.enter();
        let mut consumer = None;
        while !stop.load(Ordering::Acquire) {
            let Some(current) = consumer.as_ref() else {
                consumer = self.subscribe();
                if consumer.is_none() {
                    std::thread::sleep(Duration::from_secs(1));
                }
                continue;
            };
            // Records are never wanted (assigned partitions are paused); anything that slips
            // through before the pause is dropped.
            if let Some(Err(e)) = current.poll(POLL_INTERVAL) {
                tracing::debug!(error = %e, "membership consumer poll");
            }
            if self.shared.rejoin.swap(false, Ordering::AcqRel) {
                metrics::counter!("tessera_membership_rejoins_total").increment(1);
                if let Some(stale) = consumer.take() {
                    leave(stale);
                }
            }
        }
        if let Some(current) = consumer {
            leave(current);
        }
    }

    /// A new consumer (a new member of the group) subscribed to the topics; `None` after logging
    /// why not.
    fn subscribe(&self) -> Option<BaseConsumer<MemberContext>> {
        self.shared.reset_generation();
        let consumer = self
            .membership
            .consumer(self.shared.clone())
            .map_err(|e| tracing::warn!(error = %e, "cannot create the membership consumer; retrying"))
            .ok()?;
        let names: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        match consumer.subscribe(&names) {
            Ok(()) => Some(consumer),
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe the membership consumer; retrying");
                None
            }
        }
    }
}

/// Leaves the group: the revoke callback runs (it waits for the workers' releases), then the
/// consumer is closed.
fn leave(consumer: BaseConsumer<MemberContext>) {
    consumer.unsubscribe();
    let deadline = Instant::now() + LEAVE_TIMEOUT;
    while Instant::now() < deadline && !consumer.assignment().map(|a| a.count() == 0).unwrap_or(true) {
        let _ = consumer.poll(Duration::from_millis(50));
    }
    drop(consumer);
}

/// The group generation `consumer` joined, if it is in one.
fn generation(consumer: &BaseConsumer<MemberContext>) -> Option<i32> {
    let rk = consumer.client().native_ptr();
    // SAFETY: `rk` is the live handle `consumer` owns (borrowed for this call). The metadata
    // librdkafka returns is a copy owned by the caller: it is read once and destroyed here.
    unsafe {
        let metadata = rdkafka::bindings::rd_kafka_consumer_group_metadata(rk);
        if metadata.is_null() {
            return None;
        }
        let generation = rdkafka::bindings::rd_kafka_consumer_group_metadata_generation_id(metadata);
        rdkafka::bindings::rd_kafka_consumer_group_metadata_destroy(metadata);
        (generation >= 0).then_some(generation)
    }
}

/// State shared between the rebalance callbacks (membership thread) and the worker pool.
struct Shared {
    group: String,
    assignment: watch::Sender<BTreeSet<TopicPartition>>,
    /// Assigned to this member and not yet released by its workers.
    held: Mutex<BTreeSet<TopicPartition>>,
    released: Condvar,
    /// The generation of the last plan this member took (reset when it joins as a new member).
    generation: Mutex<Option<i32>>,
    /// Set when the member must leave and join again as a new member.
    rejoin: AtomicBool,
}

impl Shared {
    fn new(group: &str) -> Shared {
        Shared {
            group: group.to_owned(),
            assignment: watch::channel(BTreeSet::new()).0,
            held: Mutex::new(BTreeSet::new()),
            released: Condvar::new(),
            generation: Mutex::new(None),
            rejoin: AtomicBool::new(false),
        }
    }

    fn reset_generation(&self) {
        *self.generation.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Takes a plan of `generation`; `false` (and a rejoin is requested) if this member already
    /// took a plan of that generation, which means the coordinator did not really rebalance.
    fn take_plan(&self, generation: Option<i32>) -> bool {
        let mut last = self.generation.lock().unwrap_or_else(PoisonError::into_inner);
        if generation.is_some() && *last == generation {
            tracing::warn!(group = %self.group, generation = ?generation, "the group coordinator completed a rebalance without a new generation (it kept the previous plan); joining again as a new member");
            self.rejoin.store(true, Ordering::Release);
            return false;
        }
        *last = generation;
        true
    }

    fn assigned(&self, partitions: BTreeSet<TopicPartition>) {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).extend(partitions.iter().cloned());
        self.assignment.send_modify(|current| current.extend(partitions));
        self.report();
    }

    /// Takes `partitions` away from the workers and waits until they released them.
    fn revoked(&self, partitions: &BTreeSet<TopicPartition>) {
        self.assignment.send_modify(|current| current.retain(|p| !partitions.contains(p)));
        self.report();
        let deadline = Instant::now() + RELEASE_TIMEOUT;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        while held.iter().any(|p| partitions.contains(p)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let pending: Vec<String> =
                    held.iter().filter(|p| partitions.contains(*p)).map(|(t, p)| format!("{t}/{p}")).collect();
                tracing::warn!(group = %self.group, pending = ?pending, "workers did not release revoked partitions in time");
                held.retain(|p| !partitions.contains(p));
                break;
            }
            held = self.released.wait_timeout(held, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    fn release(&self, partition: &TopicPartition) {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).remove(partition);
        self.released.notify_all();
    }

    /// Logs this member's assignment (tests and operators watch partitions move).
    fn report(&self) {
        let current = self.assignment.borrow().clone();
        let list: Vec<String> = current.iter().map(|(t, p)| format!("{t}/{p}")).collect();
        tracing::info!(group = %self.group, count = current.len(), partitions = %list.join(","), "group assignment changed");
    }
}

fn partitions_of(list: &TopicPartitionList) -> BTreeSet<TopicPartition> {
    list.elements()
        .iter()
        .filter_map(|e| u32::try_from(e.partition()).ok().map(|p| (e.topic().to_owned(), p)))
        .collect()
}

/// The membership consumer's context: turns rebalances into assignment changes.
struct MemberContext {
    shared: Arc<Shared>,
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => self.shared.revoked(&partitions_of(list)),
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => tracing::warn!(group = %self.shared.group, error = %e, "rebalance error"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            // The workers read through the log; this consumer only holds the assignment.
            if let Err(e) = consumer.pause(list) {
                tracing::debug!(group = %self.shared.group, error = %e, "cannot pause the membership consumer");
            }
            if self.shared.take_plan(generation(consumer)) {
                self.shared.assigned(partitions_of(list));
            }
        }
    }
}

/// A member of a Kafka group; leaves the group when dropped.
struct KafkaMember {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GroupMember for KafkaMember {
    fn assignment(&self) -> watch::Receiver<BTreeSet<TopicPartition>> {
        self.shared.assignment.subscribe()
    }

    fn release(&self, partition: &TopicPartition) {
        self.shared.release(partition);
    }
}

impl Drop for KafkaMember {
    fn drop(&mut self) {
        // The owner drops its member after stopping its workers: nothing is still being worked on.
        self.shared.held.lock().unwrap_or_else(PoisonError::into_inner).clear();
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests;
