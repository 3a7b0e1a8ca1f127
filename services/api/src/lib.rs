//! The API role.
//!
//! Consumes: the PostgreSQL projection, `NOTIFY tessera_changes` from the projector, and the log
//! (for replay streams and the schema registry).
//! Produces: `commands` (action invocations) and the `queued` action events on `device-events`.
//! Serves, on one listener: `/graphql` (queries, mutations, subscriptions over
//! graphql-transport-ws), `/v1/...` REST, `/v1/streams/{topic}` NDJSON replay, `/schema-registry/...`,
//! the dashboard at `/`, `/healthz`, `/readyz` and `/metrics`.
//! Guarantees: nothing but `/healthz` and `/readyz` answers without a bearer token of the right
//! scope; every request is bounded in size, depth and page size.

mod actions;

/// Idempotency keys of action invocations: how long they are remembered and their sweeper.
pub use actions::idempotency;
pub mod auth;
mod changes;
mod dashboard;
mod db;
mod error;
mod extract;
mod graphql;
mod health;
mod openapi;
mod registry_routes;
mod rest;
mod state;
mod streams;

use std::net::SocketAddr;

use axum::Router;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use graphql::sdl as graphql_sdl;
pub use graphql::ws::MAX_SUBSCRIPTIONS as MAX_WS_OPERATIONS;
pub use openapi::UNDOCUMENTED_ROUTES;
pub use state::AppState;

/// Largest request body accepted by REST (GraphQL has its own, smaller limit).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Every documented route, with the OpenAPI document generated from them.
fn documented() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    openapi::router()
        .merge(health::routes())
        .merge(graphql::routes())
        .merge(rest::routes())
        .merge(streams::routes())
        .merge(registry_routes::routes())
        .split_for_parts()
}

/// The OpenAPI document of the HTTP API (served at `/v1/openapi.json`).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    documented().1
}

/// Builds the router of every endpoint.
pub fn router(state: AppState) -> Router {
    let schema = graphql::build_schema(state.clone());
    let (routes, document) = documented();
    let document: openapi::Document =
        std::sync::Arc::new(document.to_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));
    routes
        .merge(dashboard::routes())
        .layer(axum::Extension(document))
        .layer(axum::Extension(schema))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves the API on `addr` until `shutdown` is cancelled.
pub async fn run(addr: SocketAddr, state: AppState, shutdown: CancellationToken) -> Result<(), ApiError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| ApiError::Bind(addr, e))?;
    serve(listener, state, shutdown).await
}

/// Serves the API on an already bound listener until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<(), ApiError> {
    changes::spawn_listener(state.clone(), shutdown.clone());
    actions::idempotency::spawn_sweeper(state.pool.clone(), shutdown.clone());
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(ApiError::Serve)
}
