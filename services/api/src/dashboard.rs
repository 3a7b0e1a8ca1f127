//! The device-agnostic dashboard at `/`: one self-contained page that renders every device only
//! from its UI schema and talks to the API through GraphQL with the caller's token.

use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::auth::{authenticate, bearer};

const INDEX: &str = include_str!("../dashboard/index.html");

const LOGIN: &str = "<!doctype html><meta charset=utf-8><title>Tessera</title>\
<body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>Tessera</h1>\
<p>This dashboard needs a token. Open the URL that <code>tessera serve</code> printed, \
or add <code>?token=&lt;token&gt;</code> (the admin token is in <code>&lt;data-dir&gt;/admin.token</code>).</p>";

/// The dashboard route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(index))
}

/// Cookie that lets a browser reload the page after the token has left the address bar. It is
/// honoured for this page only; the API itself accepts nothing but the bearer header.
const COOKIE: &str = "tessera_dashboard";

fn cookie_token(parts: &Parts) -> Option<String> {
    let header = parts.headers.get(header::COOKIE)?.to_str().ok()?;
    header.split(';').find_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_owned))
}

async fn index(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, _): (Parts, _) = request.into_parts();
    let Some(secret) = bearer(&parts).or_else(|| cookie_token(&parts)) else {
        return (StatusCode::UNAUTHORIZED, Html(LOGIN)).into_response();
    };
    if !matches!(authenticate(&state.pool, &secret).await, Ok(Some(_))) {
        return (StatusCode::UNAUTHORIZED, Html(LOGIN)).into_response();
    }
    let cookie = format!("{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict");
    // The token may travel in the URL, so keep the page out of caches and referrers.
    (
        [
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
            (header::SET_COOKIE, cookie),
        ],
        Html(INDEX),
    )
        .into_response()
}
