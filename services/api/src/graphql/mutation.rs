//! Mutation root: invokeAction.

use async_graphql::{Context, Object, Result};
use serde_json::Value as Json;

use crate::AppState;
use crate::actions::{Invocation, InvokeRequest, invoke};
use crate::auth::Principal;

/// Changes to the world.
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Invokes a normalized action on a device. Needs the `control` scope; every decision, allowed
    /// or denied (including for lack of scope), is written to the audit trail. `dryRun` runs every
    /// check and the plugin's dry-run path without touching the device; a repeated
    /// `idempotencyKey` returns the original invocation; `ttlMs` (default 30 s) bounds how late
    /// the command may be delivered.
    #[allow(clippy::too_many_arguments)] // one per argument of the GraphQL field
    async fn invoke_action(
        &self,
        ctx: &Context<'_>,
        device_id: String,
        action: String,
        params: Option<Json>,
        #[graphql(default = false)] dry_run: bool,
        idempotency_key: Option<String>,
        ttl_ms: Option<i64>,
    ) -> Result<Invocation> {
        let state = ctx.data_unchecked::<AppState>();
        let principal = ctx.data::<Principal>()?;
        let params = params.unwrap_or(Json::Null);
        let request = InvokeRequest { device_id, action, params, dry_run, idempotency_key, ttl_ms };
        Ok(invoke(state, principal, request).await?)
    }
}
