//! GraphQL over HTTP (`POST /graphql`) and WebSocket (`GET /graphql`, graphql-transport-ws).

pub mod limits;
mod mutation;
mod query;
mod subscription;
pub mod ws;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Context, Guard, Schema, Variables};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Principal, Scope};

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

/// The schema type.
pub type TesseraSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Largest accepted `POST /graphql` body: the document plus its variables.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Builds the schema with its limits.
pub fn build_schema(state: AppState) -> TesseraSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(state)
        .extension(limits::Limits)
        .limit_depth(limits::MAX_DEPTH)
        .limit_complexity(limits::MAX_COMPLEXITY)
        .limit_recursive_depth(32)
        .limit_directives(limits::MAX_FIELD_DIRECTIVES)
        .finish()
}

/// The schema's SDL, for tools and tests that enumerate its fields.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot).finish().sdl()
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

/// A GraphQL request over HTTP.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphQLBody {
    /// The document.
    pub query: String,
    /// Variables, an object.
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Value>,
    /// Which operation of the document to run.
    pub operation_name: Option<String>,
}

/// `POST /graphql` (documented in OpenAPI) beside `GET /graphql` (the WebSocket upgrade).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(http))
        .route("/graphql", get(websocket))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]})),
    )
        .into_response()
}

/// Runs a GraphQL query or mutation.
#[utoipa::path(
    post,
    path = "/graphql",
    tag = "graphql",
    request_body = GraphQLBody,
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The GraphQL response: `data` and/or `errors` (limits and guards report here)",
            content_type = "application/graphql-response+json", body = serde_json::Value),
        (status = 400, description = "Not a GraphQL request", body = serde_json::Value),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than 64 KiB"),
    )
)]
async fn http(principal: Principal, axum::Extension(schema): axum::Extension<TesseraSchema>, body: Bytes) -> Response {
    let body: GraphQLBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return bad_request(format!(
                "expected {{\"query\": \"...\", \"variables\": {{...}}, \"operationName\": \"...\"}}: {e}"
            ));
        }
    };
    let variables = match body.variables {
        None | Some(Value::Null) => Variables::default(),
        Some(v @ Value::Object(_)) => Variables::from_json(v),
        Some(_) => return bad_request("`variables` must be an object".into()),
    };
    let mut request = async_graphql::Request::new(body.query).variables(variables).data(principal);
    if let Some(name) = body.operation_name {
        request = request.operation_name(name);
    }
    GraphQLResponse::from(schema.execute(request).await).into_response()
}

async fn websocket(
    State(state): State<AppState>,
    axum::Extension(schema): axum::Extension<TesseraSchema>,
    headers: axum::http::HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    // The same choice GraphQLProtocol made: the legacy protocol only when the new one is not offered.
    let offered = headers.get(axum::http::header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()).unwrap_or("");
    let legacy = offered.contains("graphql-ws") && !offered.contains("graphql-transport-ws");
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(MAX_BODY_BYTES)
        .max_frame_size(MAX_BODY_BYTES)
        // Subscription traffic is small; the 128 KiB defaults made each idle connection cost
        // ~150 KiB (see BENCHMARKS.md fan-out). Larger messages still grow the buffer as needed.
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        // Bound what a client that stops reading can make us hold.
        .max_write_buffer_size(MAX_BODY_BYTES * 4)
        .on_upgrade(move |socket| ws::serve(socket, schema, protocol, legacy, state))
        .into_response()
}
