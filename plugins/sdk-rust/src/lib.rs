//! The Tessera plugin SDK for Rust.
//!
//! A plugin implements [`Plugin`] (every method but [`Plugin::initialize`] has a default) and calls
//! [`run`] from `main`. The SDK speaks the plugin protocol (`schemas/protocol.md`): JSON-RPC 2.0,
//! one object per line on stdio. Requests are served concurrently, so a slow `invoke` never delays
//! a heartbeat; observations are sent through an [`Emitter`], a cheap handle that tasks and threads
//! may clone and keep.
//!
//! ```no_run
//! use tessera_plugin_sdk::{Emitter, Init, Observation, Plugin, PluginError, run};
//!
//! struct Thermometer;
//!
//! impl Plugin for Thermometer {
//!     async fn initialize(&self, _init: Init) -> Result<(), PluginError> {
//!         Ok(())
//!     }
//!
//!     async fn start(&self, emitter: Emitter) -> Result<(), PluginError> {
//!         tokio::spawn(async move {
//!             loop {
//!                 let payload = serde_json::json!({"id": "t-1", "celsius": 21.5});
//!                 if emitter.emit(Observation::new("t-1", "acme.Reading", payload)).is_err() {
//!                     return; // the host is gone
//!                 }
//!                 tokio::time::sleep(std::time::Duration::from_secs(1)).await;
//!             }
//!         });
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     run(Thermometer)
//! }
//! ```

mod emitter;
mod error;
mod serve;
mod types;

pub use emitter::{Closed, Emitter};
pub use error::{PluginError, SdkError};
pub use serve::{run, serve, serve_io};
pub use types::{Init, Invoke, Observation};

/// The protocol version this SDK speaks.
pub const PROTOCOL_VERSION: u32 = 1;

use std::future::Future;

/// A plugin. The host calls `initialize`, `discover`, `start`, then `invoke` any number of times,
/// then `shutdown`; heartbeats are answered by the SDK.
pub trait Plugin: Send + Sync + 'static {
    /// Receives the configuration, secrets and state directory. Refuse bad configuration with
    /// [`PluginError::InvalidConfig`].
    fn initialize(&self, init: Init) -> impl Future<Output = Result<(), PluginError>> + Send;

    /// The devices found, one observation each (carrying their metadata fields).
    fn discover(&self) -> impl Future<Output = Result<Vec<Observation>, PluginError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Starts streaming: spawn tasks that keep `emitter` and send observations through it.
    fn start(&self, emitter: Emitter) -> impl Future<Output = Result<(), PluginError>> + Send {
        let _ = emitter;
        async { Ok(()) }
    }

    /// Runs a normalized action (only checks it when `request.dry_run`); returns an optional
    /// detail shown to the caller.
    fn invoke(&self, request: Invoke) -> impl Future<Output = Result<Option<String>, PluginError>> + Send {
        async move { Err(PluginError::UnsupportedAction(request.action)) }
    }

    /// Stops streaming before the process exits.
    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
