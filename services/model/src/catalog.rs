//! The capability catalog (`schemas/capabilities.toml`): every capability a plugin may map to.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::ModelError;

const CATALOG_TOML: &str = include_str!("../../../schemas/capabilities.toml");

/// What a capability is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapabilityKind {
    /// A measured quantity.
    Sensor,
    /// A two-state observation.
    BinarySensor,
    /// A state changed by actions.
    Actuator,
    /// Descriptive, slowly changing data.
    Attribute,
}

/// The type of a capability's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    /// Floating-point number.
    Float,
    /// Integer.
    Int,
    /// Boolean.
    Bool,
    /// Free text.
    String,
    /// One of a fixed set of strings.
    Enum,
    /// A color, `{r,g,b}`.
    Color,
}

/// A parameter of a normalized action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionParam {
    /// Parameter name.
    pub name: String,
    /// Parameter type.
    #[serde(rename = "type")]
    pub value_type: ValueType,
    /// Lowest allowed value (numbers).
    pub min: Option<f64>,
    /// Highest allowed value (numbers).
    pub max: Option<f64>,
    /// Allowed values (enums).
    #[serde(default)]
    pub values: Vec<String>,
}

/// A normalized action acting on a capability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionDef {
    /// Action name, unique across the catalog.
    pub name: String,
    /// Its parameters.
    #[serde(default)]
    pub params: Vec<ActionParam>,
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capability {
    /// Name, e.g. `temperature`.
    pub name: String,
    /// Kind.
    pub kind: CapabilityKind,
    /// Value type.
    pub value_type: ValueType,
    /// UCUM unit of the values, when they have one.
    pub unit: Option<String>,
    /// Lowest valid value.
    pub min: Option<f64>,
    /// Highest valid value.
    pub max: Option<f64>,
    /// Allowed values of an enum.
    #[serde(default)]
    pub values: Vec<String>,
    /// What it means.
    #[serde(default)]
    pub description: String,
    /// Normalized actions that act on it.
    #[serde(default)]
    pub actions: Vec<ActionDef>,
}

#[derive(Deserialize)]
struct CatalogFile {
    version: u32,
    capability: Vec<Capability>,
}

/// The capability catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Catalog format version.
    pub version: u32,
    capabilities: BTreeMap<String, Capability>,
    action_owner: BTreeMap<String, String>,
}

impl Catalog {
    /// Parses a catalog from TOML, checking that names and action names are unique.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| ModelError::Catalog(e.to_string()))?;
        let mut capabilities = BTreeMap::new();
        let mut action_owner = BTreeMap::new();
        for cap in file.capability {
            for action in &cap.actions {
                if action_owner.insert(action.name.clone(), cap.name.clone()).is_some() {
                    return Err(ModelError::Catalog(format!("action `{}` defined twice", action.name)));
                }
            }
            let name = cap.name.clone();
            if capabilities.insert(name.clone(), cap).is_some() {
                return Err(ModelError::Catalog(format!("capability `{name}` defined twice")));
            }
        }
        Ok(Self { version: file.version, capabilities, action_owner })
    }

    /// The catalog shipped with Tessera.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| match Catalog::parse(CATALOG_TOML) {
            Ok(catalog) => catalog,
            // The file is compiled in and covered by a unit test: failing here is a build defect.
            Err(e) => panic!("built-in capability catalog: {e}"),
        })
    }

    /// Looks up a capability by name.
    pub fn get(&self, name: &str) -> Option<&Capability> {
        self.capabilities.get(name)
    }

    /// All capabilities, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.capabilities.values()
    }

    /// The capability a normalized action acts on, and the action's definition.
    pub fn action(&self, action: &str) -> Option<(&Capability, &ActionDef)> {
        let cap = self.capabilities.get(self.action_owner.get(action)?)?;
        let def = cap.actions.iter().find(|a| a.name == action)?;
        Some((cap, def))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses_and_covers_the_common_capabilities() {
        let catalog = Catalog::parse(CATALOG_TOML).unwrap();
        for name in [
            "temperature",
            "humidity",
            "pressure",
            "illuminance",
            "co2",
            "voc",
            "pm25",
            "noise",
            "battery",
            "voltage",
            "current",
            "power",
            "energy",
            "power_factor",
            "frequency",
            "water_flow",
            "water_volume",
            "gas_flow",
            "gas_volume",
            "signal_strength",
            "contact",
            "occupancy",
            "water_leak",
            "smoke",
            "vibration",
            "tamper",
            "switch",
            "brightness",
            "color_temperature",
            "color",
            "cover_position",
            "cover_tilt",
            "lock",
            "thermostat_setpoint",
            "thermostat_mode",
            "fan_speed",
            "valve",
        ] {
            assert!(catalog.get(name).is_some(), "missing {name}");
        }
    }

    #[test]
    fn actions_resolve_to_their_capability() {
        let catalog = Catalog::builtin();
        let (cap, def) = catalog.action("set_brightness").unwrap();
        assert_eq!(cap.name, "brightness");
        assert_eq!(def.params[0].max, Some(100.0));
        assert!(catalog.action("launch_rocket").is_none());
    }

    #[test]
    fn duplicate_capabilities_are_refused() {
        let text = "version = 1\n[[capability]]\nname='a'\nkind='sensor'\nvalue_type='float'\n\
                    [[capability]]\nname='a'\nkind='sensor'\nvalue_type='float'\n";
        assert!(Catalog::parse(text).is_err());
    }
}
