//! Errors of plugins and of the SDK.

/// An error a plugin answers a request with; each maps to a protocol error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The device is not known to the plugin (1001).
    #[error("unknown device `{0}`")]
    UnknownDevice(String),
    /// The device does not support the action (1002).
    #[error("action `{0}` is not supported")]
    UnsupportedAction(String),
    /// The device cannot be reached (1003).
    #[error("device unreachable: {0}")]
    Unreachable(String),
    /// The configuration is unusable (1004).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Anything else (-32603).
    #[error("{0}")]
    Internal(String),
}

impl PluginError {
    /// The protocol error code.
    pub fn code(&self) -> i64 {
        match self {
            PluginError::UnknownDevice(_) => 1001,
            PluginError::UnsupportedAction(_) => 1002,
            PluginError::Unreachable(_) => 1003,
            PluginError::InvalidConfig(_) => 1004,
            PluginError::Internal(_) => -32603,
        }
    }
}

/// Why serving the protocol stopped.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// Reading stdin or writing stdout failed.
    #[error("plugin stdio failed: {0}")]
    Io(#[from] std::io::Error),
}
