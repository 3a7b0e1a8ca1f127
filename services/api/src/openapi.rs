//! The OpenAPI document, generated from the handlers: every HTTP route is registered through
//! utoipa-axum's `routes!`, which takes each route's path and method from the same
//! `#[utoipa::path]` attribute that documents it, so the router and `/v1/openapi.json` cannot
//! diverge. Each operation declares the scope it needs as a `bearer` security requirement
//! (`security(("bearer" = ["read"]))`), or none for the health probes; the auth test reads those
//! declarations and checks each against the running server.
//!
//! Two routes live outside the document: `GET /graphql` (the WebSocket upgrade, authenticated in
//! `connection_init`, see [`crate::graphql::ws`]) and the dashboard page `/`, whose handler lives
//! in `dashboard.rs` and which is documented here by a description-only entry.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Scope};
use crate::{ApiError, AppState};

/// Routes outside the OpenAPI document, as (method, path).
pub const UNDOCUMENTED_ROUTES: &[(&str, &str)] = &[("GET", "/graphql")];

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `tessera token create`. The requirement's list names the least scope \
                         needed: read < control < admin.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera API",
        description = "REST reads of the unified device model, action invocation, replayable streams, the \
                       schema registry, health and metrics. GraphQL is served at /graphql."
    ),
    modifiers(&BearerScheme),
    paths(dashboard),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

/// The dashboard page (served by `dashboard.rs`; described here).
#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    security(("bearer" = ["read"])),
    params(("token" = Option<String>, Query, description = "A token, for browsers that cannot send a header")),
    responses(
        (status = 200, description = "The dashboard", content_type = "text/html", body = String),
        (status = 401, description = "No valid token: a page explaining how to get one", content_type = "text/html", body = String),
    )
)]
#[allow(dead_code)]
fn dashboard() {}

/// A router that documents what it routes, starting from the document's header.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(document))
}

/// The generated document as JSON text, shared with its handler.
pub type Document = Arc<String>;

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The OpenAPI document", body = serde_json::Value),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
    )
)]
async fn document(principal: Principal, Extension(doc): Extension<Document>) -> Result<Response, ApiError> {
    principal.require(Scope::Read)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], doc.as_str().to_owned()).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_declares_its_scope_and_only_the_probes_are_public() {
        let document = serde_json::to_value(crate::openapi_document()).unwrap();
        let paths = document["paths"].as_object().unwrap();
        assert!(paths.len() >= 17, "{:?}", paths.keys());
        for (path, item) in paths {
            for (method, operation) in item.as_object().unwrap() {
                let security =
                    operation["security"].as_array().unwrap_or_else(|| panic!("{method} {path}: no security"));
                let scopes: Vec<&str> = security
                    .iter()
                    .filter_map(|r| r["bearer"].as_array())
                    .flatten()
                    .filter_map(|s| s.as_str())
                    .collect();
                if ["/healthz", "/readyz"].contains(&path.as_str()) {
                    assert!(scopes.is_empty(), "{path} must be public");
                } else {
                    assert_eq!(scopes.len(), 1, "{method} {path}: {scopes:?}");
                    assert!(["read", "control", "admin"].contains(&scopes[0]), "{method} {path}: {scopes:?}");
                }
            }
        }
    }
}
