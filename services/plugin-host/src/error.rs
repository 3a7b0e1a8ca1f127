//! Errors of the plugin-host.

/// What can stop the plugin-host or one plugin.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] tessera_log::LogError),
    /// Encoding or schema registration failed.
    #[error(transparent)]
    Codec(#[from] tessera_codec::CodecError),
    /// A package directory could not be read.
    #[error("cannot read plugin package {path}: {source}")]
    Package {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The plugin process could not be started.
    #[error("cannot start plugin `{plugin}`: {source}")]
    Spawn {
        /// Plugin id.
        plugin: String,
        /// The cause.
        source: std::io::Error,
    },
}
