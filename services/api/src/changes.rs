//! Fans the projector's `NOTIFY tessera_changes` out to subscriptions through a bounded
//! broadcast channel: a subscriber that falls behind skips ahead instead of growing memory. The
//! changed device is read from the projection once per change, by the first subscriber that needs
//! it, and shared by all the others ([`Change::device_view`]): ten thousand subscriptions cost one
//! query per change, not ten thousand.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::db::{self, DeviceView};

/// One change announced by the projector.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Change {
    /// Changed device, for device changes.
    pub device: Option<String>,
    /// Capabilities whose state changed.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// What changed: `metadata`, `availability`, `state`, `action`, `removed`.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Offset of the last event of the change.
    #[serde(default)]
    pub offset: u64,
    /// Changed plugin, for plugin changes.
    pub plugin: Option<String>,
    /// The changed device as read after this change, shared by every copy of the change.
    #[serde(skip)]
    snapshot: Arc<tokio::sync::OnceCell<Option<DeviceView>>>,
}

impl Change {
    /// The changed device as it is after this change (`None` for a change of no device, or a
    /// device that is gone). Read once per change; every subscriber receiving the change gets a
    /// copy of the same reading.
    pub async fn device_view(&self, state: &AppState) -> Option<DeviceView> {
        let id = self.device.as_deref()?;
        let read = || async {
            match db::get_device(&state.pool, &state.plugins, id).await {
                Ok(device) => device,
                Err(e) => {
                    tracing::warn!(device = id, error = %e, "cannot read a changed device for its subscribers");
                    None
                }
            }
        };
        self.snapshot.get_or_init(read).await.clone()
    }
}

/// Listens for changes until shutdown, reconnecting with backoff.
pub fn spawn_listener(state: AppState, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            match listen(&state, &shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    state.listening.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "change listener lost; reconnecting");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    });
}

async fn listen(state: &AppState, shutdown: &CancellationToken) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(&state.pool).await?;
    listener.listen(tessera_projector::CHANGES_CHANNEL).await?;
    state.listening.store(true, Ordering::Relaxed);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            notification = listener.recv() => {
                let notification = notification?;
                match serde_json::from_str::<Change>(notification.payload()) {
                    Ok(change) => {
                        metrics::counter!("tessera_api_changes_total").increment(1);
                        let _ = state.changes.send(change);
                    }
                    Err(e) => tracing::warn!(error = %e, "unreadable change notification"),
                }
            }
        }
    }
}
