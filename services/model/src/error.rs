//! Errors of the model crate.

use serde::{Deserialize, Serialize};

/// One contract violation: where in a plugin package, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Stable machine-readable code, e.g. `mapping.unknown_field`.
    pub code: String,
    /// Path into the package: file, then a dotted path inside it (`mapping.toml:rules[0].capabilities[2].field`).
    pub path: String,
    /// What is wrong, in the integration author's terms.
    pub message: String,
    /// How to fix it, when there is an obvious fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Violation {
    /// Builds a violation without a hint.
    pub fn new(code: &str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), path: path.into(), message: message.into(), hint: None }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}: {}", self.code, self.path, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Errors raised while using the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A plugin package broke its contract; every violation found is listed.
    #[error("plugin package rejected with {} violation(s)", .0.len())]
    Rejected(Vec<Violation>),
    /// The built-in capability catalog does not parse (a build defect).
    #[error("capability catalog is invalid: {0}")]
    Catalog(String),
    /// A raw observation could not be mapped.
    #[error("mapping failed at `{field}` (rule {rule}): expected {expected}, found {found}")]
    Mapping {
        /// Field path into the raw record.
        field: String,
        /// Mapping rule that failed.
        rule: String,
        /// What the rule expected.
        expected: String,
        /// What the record held.
        found: String,
    },
}
