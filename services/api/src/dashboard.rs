//! The device-agnostic dashboard at `/`: one self-contained page that renders every device only
//! from its UI schema and talks to the API through GraphQL with the caller's token.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::auth::{authenticate, bearer};
use crate::AppState;

const INDEX: &str = include_str!("../dashboard/index.html");

const LOGIN: &str = "<!doctype html><meta charset=utf-8><title>Tessera</title>\
<body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>Tessera</h1>\
<p>This dashboard needs a token. Open the URL that <code>tessera serve</code> printed, \
or add <code>?token=&lt;token&gt;</code> (the admin token is in <code>&lt;data-dir&gt;/admin.token</code>).</p>";

/// The dashboard route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(index))
}

async fn index(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, _): (Parts, _) = request.into_parts();
    let authorized = match bearer(&parts) {
        Some(secret) => matches!(authenticate(&state.pool, &secret).await, Ok(Some(_))),
        None => false,
    };
    if !authorized {
        return (StatusCode::UNAUTHORIZED, Html(LOGIN)).into_response();
    }
    // The token travels in the URL, so keep the page out of caches and referrers.
    ([(header::CACHE_CONTROL, "no-store"), (header::REFERRER_POLICY, "no-referrer")], Html(INDEX)).into_response()
}
