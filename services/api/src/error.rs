//! Errors of the API, and their HTTP form: `{"error": {"code", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What can go wrong serving a request or running the API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or unknown token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The token lacks a scope.
    #[error("this needs the `{0}` scope")]
    Forbidden(&'static str),
    /// Nothing there.
    #[error("{0} not found")]
    NotFound(String),
    /// The request is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// PostgreSQL failed.
    #[error("database unavailable")]
    Database(#[from] sqlx::Error),
    /// The log failed.
    #[error("log unavailable: {0}")]
    Log(#[from] tessera_log::LogError),
    /// Decoding failed.
    #[error("codec: {0}")]
    Codec(#[from] tessera_codec::CodecError),
    /// The listener could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(std::net::SocketAddr, std::io::Error),
    /// The server failed.
    #[error("server: {0}")]
    Serve(std::io::Error),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Database(_) | ApiError::Log(_) | ApiError::Codec(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ApiError::Bind(..) | ApiError::Serve(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response =
            (status, axum::Json(json!({"error": {"code": code, "message": self.to_string()}}))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}
