//! Query root: devices, device, history, plugins, actionStatus.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Object, Result};
use chrono::{DateTime, Utc};

use super::ScopeGuard;
use crate::AppState;
use crate::auth::Scope;
use crate::db::{self, ActionStatus, DeviceFilter, DeviceView, HistoryPoint, PluginView};

/// Read access to the unified model.
pub struct QueryRoot;

fn state<'a>(ctx: &Context<'a>) -> &'a AppState {
    ctx.data_unchecked::<AppState>()
}

#[Object]
impl QueryRoot {
    /// Devices, as a Relay connection ordered by id.
    #[graphql(guard = "ScopeGuard(Scope::Read)")]
    async fn devices(
        &self,
        ctx: &Context<'_>,
        filter: Option<DeviceFilter>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, DeviceView, EmptyFields, EmptyFields>> {
        let filter = filter.unwrap_or_default();
        let (devices, has_next) =
            db::list_devices(&state(ctx).pool, &state(ctx).plugins, &filter, i64::from(first), after.as_deref())
                .await?;
        let mut connection = Connection::new(after.is_some(), has_next);
        connection.edges.extend(devices.into_iter().map(|d| Edge::new(d.id.clone(), d)));
        Ok(connection)
    }

    /// One device by id.
    #[graphql(guard = "ScopeGuard(Scope::Read)")]
    async fn device(&self, ctx: &Context<'_>, id: String) -> Result<Option<DeviceView>> {
        Ok(db::get_device(&state(ctx).pool, &state(ctx).plugins, &id).await?)
    }

    /// A capability's history between `from` and `to`, downsampled to `bucket` seconds if given.
    #[graphql(guard = "ScopeGuard(Scope::Read)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        device_id: String,
        capability: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: Option<i64>,
    ) -> Result<Vec<HistoryPoint>> {
        Ok(db::history(&state(ctx).pool, &device_id, &capability, from, to, bucket).await?)
    }

    /// Every plugin and its lifecycle state.
    #[graphql(guard = "ScopeGuard(Scope::Read)")]
    async fn plugins(&self, ctx: &Context<'_>) -> Result<Vec<PluginView>> {
        Ok(db::plugins(&state(ctx).pool).await?)
    }

    /// The status of an action invocation.
    #[graphql(guard = "ScopeGuard(Scope::Read)")]
    async fn action_status(&self, ctx: &Context<'_>, id: String) -> Result<Option<ActionStatus>> {
        Ok(db::action_status(&state(ctx).pool, &id).await?)
    }

    /// A device's most recent action invocations and their status, newest first.
    #[graphql(guard = "ScopeGuard(Scope::Read)")]
    async fn device_actions(
        &self,
        ctx: &Context<'_>,
        device_id: String,
        #[graphql(default = 20)] first: i32,
    ) -> Result<Vec<ActionStatus>> {
        Ok(crate::actions::history::device_actions(&state(ctx).pool, &device_id, i64::from(first)).await?)
    }

    /// The audit trail of action decisions (who, what, when, outcome), newest first; `before`
    /// pages to entries older than that id. Needs the `admin` scope.
    #[graphql(guard = "ScopeGuard(Scope::Admin)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        before: Option<i64>,
    ) -> Result<Vec<crate::actions::audit::AuditEntry>> {
        Ok(crate::actions::audit::recent(&state(ctx).pool, i64::from(first), before).await?)
    }
}
