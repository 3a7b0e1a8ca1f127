//! Routes `commands` to the supervisor of the plugin that owns each command's device.

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_codec::Topics;
use tessera_codec::messages::Codec;
use tessera_log::{DEFAULT_POLL_WAIT, Log};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::supervisor::CommandRequest;

/// Consumer group of the plugin-host on `commands`.
const GROUP: &str = "plugin-host";

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
                Ok(cmd) => match routes.get(&cmd.plugin_id) {
                    Some(tx) => {
                        if tx.try_send(cmd).is_err() {
                            tracing::warn!(
                                offset = record.offset,
                                "plugin command queue full or closed; command dropped"
                            );
                        }
                    }
                    None => tracing::warn!(plugin = %cmd.plugin_id, "command for a plugin this host does not run"),
                },
                Err(e) => tracing::error!(offset = record.offset, error = %e, "undecodable command skipped"),
            }
        }
        if let Err(e) = log.commit(GROUP, &topic, 0, next).await {
            tracing::error!(error = %e, "cannot commit commands offset");
        }
    }
}
