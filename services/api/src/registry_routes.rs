//! The schema-registry read API (Confluent-compatible subset), so that standard Avro tooling can
//! resolve the schema ids framed into every record.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::{Value, json};

use crate::auth::{Principal, Scope};
use crate::{ApiError, AppState};

/// The registry routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/schema-registry/schemas/ids/{id}", get(schema_by_id))
        .route("/schema-registry/subjects", get(subjects))
        .route("/schema-registry/subjects/{subject}/versions", get(versions))
        .route("/schema-registry/subjects/{subject}/versions/{version}", get(version))
}

async fn schema_by_id(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<u32>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Scope::Read)?;
    match state.codec.registry().get(id).await {
        Ok(schema) => Ok(Json(json!({"schema": schema.text}))),
        Err(tessera_codec::CodecError::UnknownSchema(_)) => Err(ApiError::NotFound(format!("schema {id}"))),
        Err(e) => Err(e.into()),
    }
}

async fn subjects(State(state): State<AppState>, principal: Principal) -> Result<Json<Vec<String>>, ApiError> {
    principal.require(Scope::Read)?;
    Ok(Json(state.codec.registry().subjects().await?))
}

async fn versions(
    State(state): State<AppState>,
    principal: Principal,
    Path(subject): Path<String>,
) -> Result<Json<Vec<u32>>, ApiError> {
    principal.require(Scope::Read)?;
    let versions = state.codec.registry().versions(&subject).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!("subject `{subject}`")));
    }
    Ok(Json(versions.iter().map(|v| v.version).collect()))
}

async fn version(
    State(state): State<AppState>,
    principal: Principal,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Scope::Read)?;
    let versions = state.codec.registry().versions(&subject).await?;
    let chosen = if version == "latest" {
        versions.last()
    } else {
        let n: u32 = version
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("version `{version}` is not a number or `latest`")))?;
        versions.iter().find(|v| v.version == n)
    };
    let chosen = chosen.ok_or_else(|| ApiError::NotFound(format!("subject `{subject}` version {version}")))?;
    let schema = state.codec.registry().get(chosen.id).await?;
    Ok(Json(json!({"subject": chosen.subject, "version": chosen.version, "id": chosen.id, "schema": schema.text})))
}
