//! Bearer tokens with scopes. Tokens are random secrets shown once; only their SHA-256 is stored.
//! Scopes are ordered: `admin` includes `control`, which includes `read`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::{ApiError, AppState};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read devices, state, history, plugins, streams and schemas.
    Read,
    /// Also invoke actions.
    Control,
    /// Also manage tokens and run administrative operations.
    Admin,
}

impl Scope {
    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Control => "control",
            Scope::Admin => "admin",
        }
    }

    /// Parses a scope name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Scope::Read),
            "control" => Some(Scope::Control),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token name, recorded in the audit trail.
    pub name: String,
    /// Highest scope granted.
    pub scope: Scope,
}

impl Principal {
    /// Whether the caller holds `scope` (directly or through a higher one).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scope >= scope
    }

    /// `Ok` when the caller holds `scope`, else a `Forbidden` error.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.allows(scope) { Ok(()) } else { Err(ApiError::Forbidden(scope.as_str())) }
    }
}

/// Hex SHA-256 of a token secret.
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex(bytes: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| ApiError::BadRequest(format!("no randomness available: {e}")))?;
    Ok(hex::encode(buf))
}

/// A created token: its id and the secret, which is shown only now.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    /// Token id (for revocation).
    pub id: String,
    /// The bearer secret.
    pub secret: String,
}

/// Creates a token named `name` with `scope`.
pub async fn create_token(pool: &PgPool, name: &str, scope: Scope) -> Result<CreatedToken, ApiError> {
    let id = format!("tok_{}", random_hex(8)?);
    let secret = format!("tsr_{}", random_hex(32)?);
    sqlx::query("INSERT INTO api_tokens (id, name, token_hash, scopes) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(name)
        .bind(hash_token(&secret))
        .bind(vec![scope.as_str().to_owned()])
        .execute(pool)
        .await?;
    Ok(CreatedToken { id, secret })
}

/// Revokes a token by id or name; returns how many were revoked.
pub async fn revoke_token(pool: &PgPool, id_or_name: &str) -> Result<u64, ApiError> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE (id = $1 OR name = $1) AND revoked_at IS NULL")
            .bind(id_or_name)
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}

/// Resolves a secret to its principal, if the token exists and is not revoked.
pub async fn authenticate(pool: &PgPool, secret: &str) -> Result<Option<Principal>, ApiError> {
    if secret.len() > 256 {
        return Ok(None);
    }
    let row: Option<(String, Vec<String>)> =
        sqlx::query_as("SELECT name, scopes FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(hash_token(secret))
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|(name, scopes)| {
        let scope = scopes.iter().filter_map(|s| Scope::parse(s)).max()?;
        Some(Principal { name, scope })
    }))
}

/// The bearer secret of a request: the `Authorization` header, else a `token` query parameter
/// (for browsers opening the dashboard or an event stream).
pub fn bearer(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return value.strip_prefix("Bearer ").map(|s| s.trim().to_owned());
    }
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| pair.strip_prefix("token=").map(str::to_owned))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let secret = bearer(parts).ok_or(ApiError::Unauthorized)?;
        authenticate(&state.pool, &secret).await?.ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_ordered() {
        let control = Principal { name: "ops".into(), scope: Scope::Control };
        assert!(control.allows(Scope::Read));
        assert!(control.allows(Scope::Control));
        assert!(!control.allows(Scope::Admin));
    }

    #[test]
    fn hashes_are_stable_hex() {
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
