//! `actions.toml`: which normalized actions a plugin supports, per device class.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A parsed `actions.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionsSpec {
    /// Format version.
    pub version: u32,
    /// Supported actions, per device class.
    #[serde(default, rename = "device_class")]
    pub device_classes: Vec<ClassActions>,
}

/// The actions supported for one device class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassActions {
    /// Device class.
    pub class: String,
    /// Normalized action names from the catalog.
    pub actions: Vec<String>,
    /// Narrower parameter ranges than the catalog's: action → parameter → range.
    #[serde(default)]
    pub constraints: BTreeMap<String, BTreeMap<String, ParamRange>>,
}

/// A numeric range narrowing a catalog parameter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamRange {
    /// Lowest allowed value.
    pub min: Option<f64>,
    /// Highest allowed value.
    pub max: Option<f64>,
}

impl ActionsSpec {
    /// Actions supported for `class`.
    pub fn for_class(&self, class: &str) -> Option<&ClassActions> {
        self.device_classes.iter().find(|c| c.class == class)
    }
}
