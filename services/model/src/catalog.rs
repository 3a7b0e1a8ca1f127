//! The capability catalog (`schemas/capabilities.toml`): every capability a plugin may map to.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::{ModelError, units};

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
    /// Other names a mapping may use for it (`motion` for `occupancy`); events carry `name`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Where the capability comes from in the ecosystems it is modelled on.
    #[serde(default)]
    pub lineage: Lineage,
}

/// The counterparts of a capability in Matter, Home Assistant and Google Home, for integrators
/// who translate between them (see `schemas/capabilities.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// Matter cluster (and attribute), e.g. `TemperatureMeasurement.MeasuredValue`.
    pub matter: Option<String>,
    /// Home Assistant entity domain and device class, e.g. `sensor.temperature`.
    pub home_assistant: Option<String>,
    /// Google Home trait (and state), e.g. `TemperatureControl.temperatureAmbientCelsius`.
    pub google: Option<String>,
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
    alias_of: BTreeMap<String, String>,
}

impl Catalog {
    /// Parses a catalog from TOML, checking that names and action names are unique.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| ModelError::Catalog(e.to_string()))?;
        let mut capabilities = BTreeMap::new();
        let mut action_owner = BTreeMap::new();
        let mut alias_of = BTreeMap::new();
        for cap in file.capability {
            for action in &cap.actions {
                if action_owner.insert(action.name.clone(), cap.name.clone()).is_some() {
                    return Err(ModelError::Catalog(format!("action `{}` defined twice", action.name)));
                }
            }
            for alias in &cap.aliases {
                if alias_of.insert(alias.clone(), cap.name.clone()).is_some() {
                    return Err(ModelError::Catalog(format!("alias `{alias}` defined twice")));
                }
            }
            if let Some(unit) = cap.unit.as_deref().filter(|u| !units::known(u)) {
                return Err(ModelError::Catalog(format!("capability `{}` has unknown unit `{unit}`", cap.name)));
            }
            let name = cap.name.clone();
            if capabilities.insert(name.clone(), cap).is_some() {
                return Err(ModelError::Catalog(format!("capability `{name}` defined twice")));
            }
        }
        if let Some(clash) = alias_of.keys().find(|a| capabilities.contains_key(*a)) {
            return Err(ModelError::Catalog(format!("alias `{clash}` is also a capability name")));
        }
        Ok(Self { version: file.version, capabilities, action_owner, alias_of })
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

    /// Looks up a capability by name or alias.
    pub fn get(&self, name: &str) -> Option<&Capability> {
        self.capabilities.get(name).or_else(|| self.capabilities.get(self.alias_of.get(name)?))
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
            "valve_position",
            "motion",
            "pm10",
            "carbon_monoxide",
            "gas_leak",
            "firmware_version",
            "hardware_version",
            "serial_number",
            "mac_address",
            "power_source",
        ] {
            assert!(catalog.get(name).is_some(), "missing {name}");
        }
    }

    #[test]
    fn every_entry_is_complete() {
        for cap in Catalog::builtin().iter() {
            assert!(!cap.description.is_empty(), "{} has no description", cap.name);
            match cap.value_type {
                ValueType::Float | ValueType::Int => {
                    assert!(cap.unit.is_some(), "{} has no unit", cap.name);
                    assert!(cap.min.is_some() && cap.max.is_some(), "{} has no range", cap.name);
                }
                ValueType::Enum => assert!(!cap.values.is_empty(), "{} has no values", cap.name),
                _ => {}
            }
            if cap.kind == CapabilityKind::Actuator {
                assert!(!cap.actions.is_empty(), "actuator {} has no actions", cap.name);
            }
            let l = &cap.lineage;
            assert!(
                l.matter.is_some() || l.home_assistant.is_some() || l.google.is_some(),
                "{} has no lineage",
                cap.name
            );
        }
    }

    #[test]
    fn aliases_resolve_to_the_capability() {
        let catalog = Catalog::builtin();
        assert_eq!(catalog.get("motion").unwrap().name, "occupancy");
        assert_eq!(catalog.get("moisture").unwrap().name, "water_leak");
        let clash = "version = 1\n[[capability]]\nname='a'\nkind='sensor'\nvalue_type='bool'\naliases=['b']\n\
                     [[capability]]\nname='b'\nkind='sensor'\nvalue_type='bool'\n";
        assert!(Catalog::parse(clash).is_err());
        let bad_unit = "version = 1\n[[capability]]\nname='a'\nkind='sensor'\nvalue_type='float'\nunit='furlong'\n";
        assert!(Catalog::parse(bad_unit).is_err());
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
