//! Errors of the mapper.

/// What can stop the mapper.
#[derive(Debug, thiserror::Error)]
pub enum MapperError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] tessera_log::LogError),
    /// Encoding failed.
    #[error(transparent)]
    Codec(#[from] tessera_codec::CodecError),
    /// A package could not be read.
    #[error("cannot read plugin package: {0}")]
    Package(String),
}
