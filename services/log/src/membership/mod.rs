//! Group membership: which instance of a role (mapper, projector) works on which partition.
//!
//! Each partition is worked on by exactly one member of the group at a time. When the group
//! changes, a partition moves only after its previous owner has *released* it: the owner stops its
//! worker, which finishes its batch and commits its offset, and only then may another member start
//! from that offset. Nothing is processed twice by two live owners, and nothing is skipped; a
//! member that dies without releasing leaves at most one uncommitted batch, which the next owner
//! processes again (the roles make that idempotent: deterministic event ids, offset-fenced
//! projection).
//!
//! [`LocalGroup`] coordinates members in one process (what the embedded log, which has a single
//! writer process, can offer). [`StaticMembership`] splits partitions among processes by a fixed
//! instance number. `KafkaMembership` (feature `kafka`) turns a Kafka consumer group's
//! assignments into the member's `assignment` channel and holds each revocation until the
//! partition is released. [`PartitionPool`] runs a member's workers.

mod pool;

pub use pool::{PartitionPool, WorkerTask};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// A partition of a topic: `(topic, partition)`.
pub type TopicPartition = (String, u32);

/// One instance's membership in its group.
pub trait GroupMember: Send + Sync {
    /// The partitions this member owns now; it changes when the group rebalances.
    fn assignment(&self) -> watch::Receiver<BTreeSet<TopicPartition>>;
    /// Reports that this member stopped mapping `partition` and committed its offset, so that the
    /// group may hand it to another member.
    fn release(&self, partition: &TopicPartition);
}

/// A way to join a group.
pub trait Membership: Send + Sync {
    /// Joins with interest in `partitions`; the member leaves the group when dropped.
    fn join(&self, partitions: BTreeSet<TopicPartition>) -> Box<dyn GroupMember>;
}

#[derive(Default)]
struct GroupState {
    next_id: u64,
    members: BTreeMap<u64, MemberState>,
    /// Who is (or may still be) mapping each partition: granted and not yet released.
    held: BTreeMap<TopicPartition, u64>,
}

struct MemberState {
    wanted: BTreeSet<TopicPartition>,
    assignment: watch::Sender<BTreeSet<TopicPartition>>,
}

/// An in-process group: members are assigned partitions round-robin (by member id) among those
/// that want them, and a partition changes hands only once released.
#[derive(Clone, Default)]
pub struct LocalGroup {
    state: Arc<Mutex<GroupState>>,
}

impl LocalGroup {
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Each member's current assignment, by member id (for tests and diagnostics).
    pub fn assignments(&self) -> BTreeMap<u64, BTreeSet<TopicPartition>> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.members.iter().map(|(id, m)| (*id, m.assignment.borrow().clone())).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl GroupState {
    /// Recomputes the target assignment and grants what is free.
    fn rebalance(&mut self) {
        let mut target: BTreeMap<u64, BTreeSet<TopicPartition>> =
            self.members.keys().map(|id| (*id, BTreeSet::new())).collect();
        let all: BTreeSet<&TopicPartition> = self.members.values().flat_map(|m| &m.wanted).collect();
        for (i, partition) in all.into_iter().enumerate() {
            let candidates: Vec<u64> =
                self.members.iter().filter(|(_, m)| m.wanted.contains(partition)).map(|(id, _)| *id).collect();
            let owner = candidates[i % candidates.len()];
            target.entry(owner).or_default().insert(partition.clone());
        }
        for (id, wanted) in target {
            let granted: BTreeSet<TopicPartition> =
                wanted.into_iter().filter(|p| self.held.get(p).is_none_or(|holder| *holder == id)).collect();
            for partition in &granted {
                self.held.insert(partition.clone(), id);
            }
            if let Some(member) = self.members.get(&id) {
                member.assignment.send_if_modified(|current| {
                    let changed = *current != granted;
                    *current = granted;
                    changed
                });
            }
        }
    }
}

impl Membership for LocalGroup {
    fn join(&self, partitions: BTreeSet<TopicPartition>) -> Box<dyn GroupMember> {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let (assignment, _) = watch::channel(BTreeSet::new());
        state.members.insert(id, MemberState { wanted: partitions, assignment });
        state.rebalance();
        Box::new(LocalMember { group: self.clone(), id })
    }
}

struct LocalMember {
    group: LocalGroup,
    id: u64,
}

impl GroupMember for LocalMember {
    fn assignment(&self) -> watch::Receiver<BTreeSet<TopicPartition>> {
        let state = self.group.lock();
        match state.members.get(&self.id) {
            Some(member) => member.assignment.subscribe(),
            None => watch::channel(BTreeSet::new()).1,
        }
    }

    fn release(&self, partition: &TopicPartition) {
        let mut state = self.group.lock();
        if state.held.get(partition) == Some(&self.id) {
            state.held.remove(partition);
            state.rebalance();
        }
    }
}

impl Drop for LocalMember {
    fn drop(&mut self) {
        let mut state = self.group.lock();
        state.members.remove(&self.id);
        state.held.retain(|_, holder| *holder != self.id);
        state.rebalance();
    }
}

/// A fixed split among `count` processes: instance `index` owns every `count`-th partition (in
/// topic and partition order). Needs no coordination, but every instance must be running for every
/// partition to be mapped, and changing `count` needs all instances restarted together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticMembership {
    /// This instance, `0..count`.
    pub index: u32,
    /// Number of instances.
    pub count: u32,
}

impl Membership for StaticMembership {
    fn join(&self, partitions: BTreeSet<TopicPartition>) -> Box<dyn GroupMember> {
        let count = self.count.max(1) as usize;
        let mine = partitions.into_iter().enumerate().filter(|(i, _)| i % count == self.index as usize);
        let (tx, _) = watch::channel(mine.map(|(_, p)| p).collect());
        Box::new(StaticMember { assignment: tx })
    }
}

struct StaticMember {
    assignment: watch::Sender<BTreeSet<TopicPartition>>,
}

impl GroupMember for StaticMember {
    fn assignment(&self) -> watch::Receiver<BTreeSet<TopicPartition>> {
        self.assignment.subscribe()
    }

    fn release(&self, _partition: &TopicPartition) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(n: u32) -> BTreeSet<TopicPartition> {
        (0..n).map(|p| ("raw.x".to_string(), p)).collect()
    }

    #[test]
    fn partitions_move_only_after_release() {
        let group = LocalGroup::new();
        let a = group.join(parts(4));
        assert_eq!(a.assignment().borrow().len(), 4);
        let b = group.join(parts(4));
        // `a` still holds everything until it releases what the new target gives `b`.
        assert_eq!(b.assignment().borrow().len(), 0);
        let a_now = a.assignment().borrow().clone();
        assert_eq!(a_now.len(), 2);
        for p in parts(4).difference(&a_now) {
            a.release(p);
        }
        let b_now = b.assignment().borrow().clone();
        assert_eq!(b_now.len(), 2);
        assert!(a_now.is_disjoint(&b_now));
        // When `a` leaves, `b` gets everything.
        drop(a);
        assert_eq!(*b.assignment().borrow(), parts(4));
    }

    #[test]
    fn static_membership_splits_without_overlap() {
        let all = parts(5);
        let owned: Vec<BTreeSet<TopicPartition>> = (0..2)
            .map(|index| StaticMembership { index, count: 2 }.join(all.clone()).assignment().borrow().clone())
            .collect();
        assert!(owned[0].is_disjoint(&owned[1]));
        assert_eq!(owned[0].len() + owned[1].len(), 5);
    }
}
