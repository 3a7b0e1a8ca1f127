//! The handle through which a plugin sends notifications.

use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

use crate::Observation;

/// The host is gone (stdout closed): stop producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the host connection is closed")]
pub struct Closed;

/// Sends `observe` and `log` notifications to the host. Clone it freely; it is usable from any
/// task or thread. Lines are queued to one writer, so notifications never interleave.
#[derive(Debug, Clone)]
pub struct Emitter {
    tx: mpsc::UnboundedSender<String>,
}

impl Emitter {
    pub(crate) fn new(tx: mpsc::UnboundedSender<String>) -> Self {
        Self { tx }
    }

    fn send(&self, message: Json) -> Result<(), Closed> {
        self.tx.send(message.to_string()).map_err(|_| Closed)
    }

    /// Sends an observation.
    pub fn emit(&self, observation: Observation) -> Result<(), Closed> {
        let params = serde_json::to_value(observation).map_err(|_| Closed)?;
        self.send(json!({"jsonrpc": "2.0", "method": "observe", "params": params}))
    }

    /// Sends a log line (`error`, `warn`, `info` or `debug`).
    pub fn log(&self, level: &str, message: impl std::fmt::Display) -> Result<(), Closed> {
        let params = json!({"level": level, "message": message.to_string()});
        self.send(json!({"jsonrpc": "2.0", "method": "log", "params": params}))
    }
}
