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
    /// The request could not be read (body too large, wrong content type, malformed path, query
    /// or body); carries the status the extractor chose.
    #[error("{1}")]
    Unreadable(StatusCode, String),
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

/// The body of every REST error: `{"error": {"code", "message"}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A REST error.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable code: `unauthorized`, `forbidden`, `not_found`, `bad_request`, `unavailable`, `internal`.
    pub code: String,
    /// What went wrong, in words.
    pub message: String,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unreadable(StatusCode::PAYLOAD_TOO_LARGE, _) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::Unreadable(StatusCode::UNSUPPORTED_MEDIA_TYPE, _) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unreadable(..) => (StatusCode::BAD_REQUEST, "bad_request"),
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
