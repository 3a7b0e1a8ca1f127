//! Subscription root: deviceChanged, stateChanged, events, actionStatus.
//!
//! Device and state subscriptions follow the projector's change notifications, so what they
//! deliver is already queryable. A subscriber that falls behind the bounded broadcast buffer
//! skips to the newest changes rather than growing memory.

use async_graphql::{Context, Result, SimpleObject, Subscription};
use futures::Stream;
use futures::stream::StreamExt;
use serde_json::{Value as Json, json};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::ScopeGuard;
use crate::AppState;
use crate::auth::Scope;
use crate::changes::Change;
use crate::db::{self, ActionStatus, CapabilityState, DeviceFilter, DeviceView};

/// Live updates.
pub struct SubscriptionRoot;

/// A capability value of one device.
#[derive(Debug, Clone, SimpleObject)]
pub struct StateUpdate {
    /// The device.
    pub device_id: String,
    /// The new state.
    pub state: CapabilityState,
}

/// Yields the changes of the broadcast, skipping (and counting) what a slow subscriber missed.
fn changes(state: &AppState) -> impl Stream<Item = Change> + Send + 'static + use<> {
    BroadcastStream::new(state.changes.subscribe()).filter_map(|item| {
        futures::future::ready(match item {
            Ok(change) => Some(change),
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                metrics::counter!("tessera_api_subscriber_lagged_total").increment(n);
                None
            }
        })
    })
}

fn matches(device: &DeviceView, filter: &DeviceFilter) -> bool {
    filter.plugin_id.as_ref().is_none_or(|p| *p == device.plugin_id)
        && filter.device_class.as_ref().is_none_or(|c| *c == device.device_class)
        && filter.capability.as_ref().is_none_or(|c| device.capability_names.contains(c))
        && filter.online.is_none_or(|o| o == device.online)
}

#[Subscription]
impl SubscriptionRoot {
    /// A device, each time it changes (metadata, availability or state), optionally filtered.
    #[graphql(guard = "ScopeGuard(Scope::Read)")]
    async fn device_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<DeviceFilter>,
    ) -> impl Stream<Item = DeviceView> + use<> {
        let state = ctx.data_unchecked::<AppState>().clone();
        let filter = filter.unwrap_or_default();
        changes(&state).filter_map(move |change| {
            let (state, filter) = (state.clone(), filter.clone());
            async move {
                let device = change.device_view(&state).await?;
                matches(&device, &filter).then_some(device)
            }
        })
    }

    /// New values of one device's capabilities (all, or only `capability`).
    #[graphql(guard = "ScopeGuard(Scope::Read)")]
    async fn state_changed(
        &self,
        ctx: &Context<'_>,
        device_id: String,
        capability: Option<String>,
    ) -> impl Stream<Item = StateUpdate> + use<> {
        let state = ctx.data_unchecked::<AppState>().clone();
        changes(&state)
            .filter_map(move |change| {
                let (state, device_id, capability) = (state.clone(), device_id.clone(), capability.clone());
                async move {
                    if change.device.as_deref() != Some(device_id.as_str()) {
                        return None;
                    }
                    let wanted: Vec<String> = change
                        .capabilities
                        .iter()
                        .filter(|c| capability.as_ref().is_none_or(|w| w == *c))
                        .cloned()
                        .collect();
                    if wanted.is_empty() {
                        return None;
                    }
                    let device = change.device_view(&state).await?;
                    let updates: Vec<StateUpdate> = device
                        .capabilities
                        .into_iter()
                        .filter(|s| wanted.contains(&s.name))
                        .map(|s| StateUpdate { device_id: device_id.clone(), state: s })
                        .collect();
                    Some(futures::stream::iter(updates))
                }
            })
            .flatten()
    }

    /// Every record of `device-events` (or another topic) from offset `from`, then new ones as
    /// they arrive. Each item is `{topic, partition, offset, key, timestampMs, schemaId, value}`.
    #[graphql(guard = "ScopeGuard(Scope::Read)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 0)] from: i64,
        topic: Option<String>,
    ) -> Result<impl Stream<Item = Json> + use<>> {
        let state = ctx.data_unchecked::<AppState>().clone();
        let topic = state.topics.resolve(topic.as_deref().unwrap_or("device-events"));
        let stream = crate::streams::replay(state, topic, from.max(0) as u64).await?;
        Ok(stream.map(|item| item.unwrap_or_else(|e| json!({"error": e.to_string()}))))
    }

    /// The status of an action invocation: now, then each change until it is final.
    #[graphql(guard = "ScopeGuard(Scope::Read)")]
    async fn action_status(&self, ctx: &Context<'_>, id: String) -> impl Stream<Item = ActionStatus> + use<> {
        let state = ctx.data_unchecked::<AppState>().clone();
        let initial = {
            let (state, id) = (state.clone(), id.clone());
            futures::stream::once(async move { db::action_status(&state.pool, &id).await.ok().flatten() })
        };
        let updates = changes(&state).filter_map(move |change| {
            let (state, id) = (state.clone(), id.clone());
            async move {
                if !change.kinds.iter().any(|k| k == "action") {
                    return None;
                }
                Some(db::action_status(&state.pool, &id).await.ok().flatten())
            }
        });
        // Deduplicate, and end the stream after the first final status.
        initial
            .chain(updates)
            .filter_map(futures::future::ready)
            .scan((None::<String>, false), |(last, done), status| {
                if *done {
                    return futures::future::ready(None);
                }
                let fresh = last.as_deref() != Some(status.status.as_str());
                *last = Some(status.status.clone());
                *done = matches!(status.status.as_str(), "succeeded" | "failed" | "timed_out" | "expired");
                futures::future::ready(Some(fresh.then_some(status)))
            })
            .filter_map(futures::future::ready)
    }
}
