//! Mutation root: invokeAction.

use async_graphql::{Context, Object, Result};
use serde_json::Value as Json;

use super::ScopeGuard;
use crate::AppState;
use crate::actions::{Invocation, InvokeRequest, invoke};
use crate::auth::{Principal, Scope};

/// Changes to the world.
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Invokes a normalized action on a device. Needs the `control` scope.
    #[graphql(guard = "ScopeGuard(Scope::Control)")]
    async fn invoke_action(
        &self,
        ctx: &Context<'_>,
        device_id: String,
        action: String,
        params: Option<Json>,
        #[graphql(default = false)] dry_run: bool,
        idempotency_key: Option<String>,
    ) -> Result<Invocation> {
        let state = ctx.data_unchecked::<AppState>();
        let principal = ctx.data::<Principal>()?;
        let request =
            InvokeRequest { device_id, action, params: params.unwrap_or(Json::Null), dry_run, idempotency_key };
        Ok(invoke(state, principal, request).await?)
    }
}
