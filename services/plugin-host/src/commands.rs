//! Routes `commands` to the supervisor of the plugin that owns each command's device, and expires
//! the routed commands that wait for their plugin past their time-to-live.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tessera_codec::messages::Codec;
use tessera_codec::registry::now_ms;
use tessera_codec::{ActionCommand, Topics};
use tessera_log::{DEFAULT_POLL_WAIT, Log};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::actions;
use crate::supervisor::CommandRequest;

/// Consumer group of the plugin-host on `commands`.
const GROUP: &str = "plugin-host";

/// How often waiting commands are checked for expiry.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// How many recent action ids are remembered to drop a command written twice to the log.
const SEEN_CAPACITY: usize = 10_000;

/// Action ids routed recently, bounded.
#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// Remembers `id`; false if it was already routed.
    fn first_time(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > SEEN_CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

/// Where the router sends commands, and what it needs to report on the ones it cannot send.
struct Router {
    routes: BTreeMap<String, mpsc::Sender<CommandRequest>>,
    seen: Seen,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    topics: Topics,
}

impl Router {
    async fn route(&mut self, cmd: ActionCommand, offset: u64) {
        if !self.seen.first_time(&cmd.action_id) {
            tracing::warn!(offset, action_id = %cmd.action_id, "command seen before; not delivered twice");
            return;
        }
        let Some(tx) = self.routes.get(&cmd.plugin_id) else {
            tracing::warn!(plugin = %cmd.plugin_id, "command for a plugin this host does not run");
            let why = format!("plugin `{}` does not run on this plugin-host", cmd.plugin_id);
            return actions::unroutable(&cmd, &why, &self.log, &self.codec, &self.topics).await;
        };
        // Tracked before it is queued, so that the supervisor can never claim an untracked command.
        actions::track(&cmd);
        if let Err(e) = tx.try_send(cmd) {
            let (why, cmd) = match e {
                mpsc::error::TrySendError::Full(cmd) => ("the plugin's command queue is full", cmd),
                mpsc::error::TrySendError::Closed(cmd) => ("the plugin has stopped", cmd),
            };
            tracing::warn!(offset, reason = why, "command not delivered");
            // Claimed by nobody now; take it back from the sweeper before reporting the failure.
            if actions::untrack(&cmd.action_id) {
                actions::unroutable(&cmd, why, &self.log, &self.codec, &self.topics).await;
            }
        }
    }
}

/// Reads `commands` from the group's committed offset and hands each command to its plugin.
/// Offsets are committed after routing: a command is delivered at most once, never twice.
pub async fn route(
    topics: Topics,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    routes: BTreeMap<String, mpsc::Sender<CommandRequest>>,
    shutdown: CancellationToken,
) {
    let topic = topics.commands();
    let mut next = match log.committed(GROUP, &topic, 0).await {
        Ok(Some(offset)) => offset,
        Ok(None) => log.end_offset(&topic, 0).await.unwrap_or(0),
        Err(e) => {
            tracing::error!(error = %e, "cannot read committed offset of commands; not routing commands");
            return;
        }
    };
    tokio::spawn(sweep(log.clone(), codec.clone(), topics.clone(), shutdown.clone()));
    let mut router = Router { routes, seen: Seen::default(), log: log.clone(), codec: codec.clone(), topics };
    while !shutdown.is_cancelled() {
        let batch = match log.read(&topic, 0, next, 256).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error = %e, "cannot read commands");
                tokio::time::sleep(DEFAULT_POLL_WAIT).await;
                continue;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = log.wait_for(&topic, 0, next, DEFAULT_POLL_WAIT) => {}
            }
            continue;
        }
        for record in &batch {
            next = record.offset + 1;
            match codec.decode_command(&record.value).await {
                Ok(cmd) => router.route(cmd, record.offset).await,
                Err(e) => tracing::error!(offset = record.offset, error = %e, "undecodable command skipped"),
            }
        }
        if let Err(e) = log.commit(GROUP, &topic, 0, next).await {
            tracing::error!(error = %e, "cannot commit commands offset");
        }
    }
}

/// Marks routed commands whose time-to-live passed before their plugin took them `expired`, until
/// shutdown. Runs apart from the supervisors, so a plugin that is backing off, quarantined or busy
/// with a slow action cannot keep its queued commands from reaching a final status.
async fn sweep(log: Arc<dyn Log>, codec: Arc<Codec>, topics: Topics, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for cmd in actions::expire_due(now_ms()) {
            tracing::info!(action_id = %cmd.action_id, plugin = %cmd.plugin_id, "command expired while waiting for its plugin");
            actions::expired_waiting(&cmd, &log, &codec, &topics).await;
        }
        metrics::gauge!("tessera_host_commands_waiting").set(actions::waiting() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_id_is_routed_once_and_memory_stays_bounded() {
        let mut seen = Seen::default();
        assert!(seen.first_time("act_1"));
        assert!(!seen.first_time("act_1"));
        for i in 0..SEEN_CAPACITY {
            seen.first_time(&format!("act_fill_{i}"));
        }
        assert_eq!(seen.ids.len(), SEEN_CAPACITY);
        assert!(seen.first_time("act_1"), "the oldest ids are forgotten first");
    }
}
