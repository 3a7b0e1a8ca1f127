//! GraphQL over HTTP (`POST /graphql`) and WebSocket (`GET /graphql`, graphql-transport-ws).

mod mutation;
mod query;
mod subscription;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Context, Data, Guard, Schema};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::{Principal, Scope, authenticate};
use crate::{ApiError, AppState};

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

/// The schema type.
pub type TesseraSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Largest accepted GraphQL document, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024;

/// Builds the schema with its limits.
pub fn build_schema(state: AppState) -> TesseraSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(state)
        .limit_depth(12)
        .limit_complexity(2000)
        .limit_recursive_depth(32)
        .limit_directives(8)
        .finish()
}

/// Requires the caller's token to hold a scope.
pub struct ScopeGuard(pub Scope);

impl Guard for ScopeGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let principal = ctx
            .data_opt::<Principal>()
            .ok_or_else(|| async_graphql::Error::new("unauthorized: a bearer token is required"))?;
        if principal.allows(self.0) {
            Ok(())
        } else {
            Err(async_graphql::Error::new(format!("forbidden: this needs the `{}` scope", self.0.as_str())))
        }
    }
}

/// The routes of `/graphql`.
pub fn routes(schema: TesseraSchema) -> Router<AppState> {
    Router::new().route("/graphql", get(websocket).post(http)).layer(axum::Extension(schema))
}

async fn http(
    principal: Principal,
    axum::Extension(schema): axum::Extension<TesseraSchema>,
    request: GraphQLRequest,
) -> Result<GraphQLResponse, ApiError> {
    let request = request.into_inner();
    if request.query.len() > MAX_DOCUMENT_BYTES {
        return Err(ApiError::BadRequest(format!("GraphQL document larger than {MAX_DOCUMENT_BYTES} bytes")));
    }
    Ok(schema.execute(request.data(principal)).await.into())
}

async fn websocket(
    State(state): State<AppState>,
    axum::Extension(schema): axum::Extension<TesseraSchema>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(MAX_DOCUMENT_BYTES * 2)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let secret = payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                        .and_then(|v| v.as_str())
                        .map(|v| v.trim_start_matches("Bearer ").to_owned())
                        .or_else(|| payload.get("token").and_then(|v| v.as_str()).map(str::to_owned))
                        .ok_or_else(|| {
                            async_graphql::Error::new(
                                "unauthorized: send {\"Authorization\": \"Bearer <token>\"} in connection_init",
                            )
                        })?;
                    let principal = authenticate(&state.pool, &secret)
                        .await
                        .map_err(|e| async_graphql::Error::new(e.to_string()))?
                        .ok_or_else(|| async_graphql::Error::new("unauthorized: unknown or revoked token"))?;
                    let mut data = Data::default();
                    data.insert(principal);
                    Ok(data)
                })
                .serve()
        })
        .into_response()
}
