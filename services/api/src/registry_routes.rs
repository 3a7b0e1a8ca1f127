//! The schema-registry read API (Confluent-compatible subset), so that standard Avro tooling can
//! resolve the schema ids framed into every record.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Scope};
use crate::extract::Path;
use crate::{ApiError, AppState};

/// The registry routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(schema_by_id))
        .routes(routes!(subjects))
        .routes(routes!(versions))
        .routes(routes!(version))
}

/// The Avro schema with this id (the id framed into every record).
#[utoipa::path(
    get,
    path = "/schema-registry/schemas/ids/{id}",
    tag = "schema-registry",
    params(("id" = u32, Path, description = "Schema id")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "`{\"schema\": \"<Avro JSON>\"}`", body = serde_json::Value),
        (status = 400, description = "Not an id", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown id", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
    )
)]
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

/// Every subject (`<topic>-value`).
#[utoipa::path(
    get,
    path = "/schema-registry/subjects",
    tag = "schema-registry",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "Subject names", body = Vec<String>),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
    )
)]
async fn subjects(State(state): State<AppState>, principal: Principal) -> Result<Json<Vec<String>>, ApiError> {
    principal.require(Scope::Read)?;
    Ok(Json(state.codec.registry().subjects().await?))
}

/// The versions of a subject.
#[utoipa::path(
    get,
    path = "/schema-registry/subjects/{subject}/versions",
    tag = "schema-registry",
    params(("subject" = String, Path, description = "Subject")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "Version numbers", body = Vec<u32>),
        (status = 404, description = "Unknown subject", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
    )
)]
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

/// One version of a subject (a number or `latest`).
#[utoipa::path(
    get,
    path = "/schema-registry/subjects/{subject}/versions/{version}",
    tag = "schema-registry",
    params(("subject" = String, Path, description = "Subject"), ("version" = String, Path, pattern = "^([0-9]+|latest)$", description = "A version number or `latest`")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "`{subject, version, id, schema}`", body = serde_json::Value),
        (status = 400, description = "Not a version", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown subject or version", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
    )
)]
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
