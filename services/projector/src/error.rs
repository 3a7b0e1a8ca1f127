//! Errors of the projector.

/// What can stop the projector.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] tessera_log::LogError),
    /// A record could not be decoded.
    #[error(transparent)]
    Codec(#[from] tessera_codec::CodecError),
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}
