//! `mapping.toml`: the declarative mapping from a plugin's raw records to unified capability states.
//!
//! A mapping is a list of rules, one per Avro record type of the plugin's contract. A rule says
//! which field holds the device's external id, how to derive device metadata, and how each field
//! becomes a capability value (field path, scale and offset, unit conversion, enum/boolean maps).
//! Missing or null fields are skipped, not errors: devices report partial state all the time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::catalog::{Capability, ValueType};
use crate::{Catalog, ModelError, StateEntry, StateValue, units};

/// A parsed `mapping.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// Format version.
    pub version: u32,
    /// One rule per record type.
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
}

/// How one record type of the contract maps into the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Full name of the Avro record this rule applies to.
    pub record: String,
    /// Field path holding the device's external id.
    pub external_id: String,
    /// Device name.
    pub name: Option<Source>,
    /// Device class.
    pub device_class: Option<Source>,
    /// Manufacturer.
    pub manufacturer: Option<Source>,
    /// Model.
    pub model: Option<Source>,
    /// Firmware version.
    pub firmware: Option<Source>,
    /// Availability: a boolean (or boolean-mapped) source.
    pub online: Option<Source>,
    /// Capability states.
    #[serde(default, rename = "state")]
    pub states: Vec<StateRule>,
}

/// Where a metadata value comes from: a field (optionally mapped) or a literal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Field path into the record.
    pub field: Option<String>,
    /// Literal value.
    pub value: Option<String>,
    /// Maps field values (as text) to output values.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
}

/// How one field becomes one capability value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRule {
    /// Catalog capability.
    pub capability: String,
    /// Field path into the record (`a.b.c`).
    pub field: String,
    /// Unit the field is in; converted to the catalog unit when different.
    pub unit: Option<String>,
    /// Multiplier applied before the offset (e.g. 0.1 for deci-units).
    pub scale: Option<f64>,
    /// Added after scaling.
    pub offset: Option<f64>,
    /// Field values meaning `true` (for boolean capabilities), e.g. `["ON"]`.
    #[serde(default)]
    pub true_values: Vec<String>,
    /// Field values meaning `false`, e.g. `["OFF"]`.
    #[serde(default)]
    pub false_values: Vec<String>,
    /// Maps field values (as text) to enum members.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
}

/// What one raw record says about one device.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MappedObservation {
    /// The device's id within its plugin.
    pub external_id: String,
    /// Name, when the rule derives one.
    pub name: Option<String>,
    /// Device class, when the rule derives one.
    pub device_class: Option<String>,
    /// Manufacturer, when known.
    pub manufacturer: Option<String>,
    /// Model, when known.
    pub model: Option<String>,
    /// Firmware, when known.
    pub firmware: Option<String>,
    /// Availability, when the record says.
    pub online: Option<bool>,
    /// Capability values, in catalog units.
    pub states: Vec<StateEntry>,
}

impl MappingSpec {
    /// The rule for a record type.
    pub fn rule_for(&self, record: &str) -> Option<(usize, &Rule)> {
        self.rules.iter().enumerate().find(|(_, r)| r.record == record)
    }

    /// Maps one decoded record (as JSON) of type `record` into a [`MappedObservation`].
    pub fn apply(&self, catalog: &Catalog, record: &str, payload: &Json) -> Result<MappedObservation, ModelError> {
        let (index, rule) = self.rule_for(record).ok_or_else(|| ModelError::Mapping {
            field: String::new(),
            rule: "rule".into(),
            expected: "a mapping rule for this record type".into(),
            found: record.to_owned(),
        })?;
        let rule_path = format!("rule[{index}]");
        let text = |name: &str, src: &Option<Source>| -> Result<Option<String>, ModelError> {
            src.as_ref().map(|s| s.resolve(payload, &format!("{rule_path}.{name}"))).transpose().map(Option::flatten)
        };
        let external_id = match lookup(payload, &rule.external_id) {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            Some(Json::Number(n)) => n.to_string(),
            other => {
                return Err(ModelError::Mapping {
                    field: rule.external_id.clone(),
                    rule: format!("{rule_path}.external_id"),
                    expected: "a non-empty string".into(),
                    found: describe(other),
                });
            }
        };
        let online = match &rule.online {
            None => None,
            Some(src) => match src.resolve(payload, &format!("{rule_path}.online"))? {
                None => None,
                Some(v) => Some(parse_bool(&v, &[], &[]).ok_or_else(|| ModelError::Mapping {
                    field: src.field.clone().unwrap_or_default(),
                    rule: format!("{rule_path}.online"),
                    expected: "a boolean".into(),
                    found: v,
                })?),
            },
        };
        let mut states = Vec::with_capacity(rule.states.len());
        for (i, state_rule) in rule.states.iter().enumerate() {
            let path = format!("{rule_path}.state[{i}]");
            if let Some(entry) = state_rule.apply(catalog, payload, &path)? {
                states.push(entry);
            }
        }
        Ok(MappedObservation {
            external_id,
            name: text("name", &rule.name)?,
            device_class: text("device_class", &rule.device_class)?,
            manufacturer: text("manufacturer", &rule.manufacturer)?,
            model: text("model", &rule.model)?,
            firmware: text("firmware", &rule.firmware)?,
            online,
            states,
        })
    }
}

impl Source {
    fn resolve(&self, payload: &Json, rule: &str) -> Result<Option<String>, ModelError> {
        if let Some(v) = &self.value {
            return Ok(Some(v.clone()));
        }
        let Some(field) = &self.field else { return Ok(None) };
        let raw = match lookup(payload, field) {
            None | Some(Json::Null) => return Ok(None),
            Some(Json::String(s)) => s.clone(),
            Some(v @ (Json::Number(_) | Json::Bool(_))) => v.to_string(),
            other => {
                return Err(ModelError::Mapping {
                    field: field.clone(),
                    rule: rule.to_owned(),
                    expected: "a string, number or boolean".into(),
                    found: describe(other),
                });
            }
        };
        if self.map.is_empty() {
            return Ok(Some(raw));
        }
        match self.map.get(&raw) {
            Some(mapped) => Ok(Some(mapped.clone())),
            None => Err(ModelError::Mapping {
                field: field.clone(),
                rule: format!("{rule}.map"),
                expected: format!("one of {:?}", self.map.keys().collect::<Vec<_>>()),
                found: raw,
            }),
        }
    }
}

impl StateRule {
    fn apply(&self, catalog: &Catalog, payload: &Json, rule: &str) -> Result<Option<StateEntry>, ModelError> {
        let fail = |expected: String, found: String, which: &str| ModelError::Mapping {
            field: self.field.clone(),
            rule: format!("{rule}{which}"),
            expected,
            found,
        };
        let capability = catalog
            .get(&self.capability)
            .ok_or_else(|| fail("a catalog capability".into(), self.capability.clone(), ".capability"))?;
        let raw = match lookup(payload, &self.field) {
            None | Some(Json::Null) => return Ok(None),
            Some(v) => v,
        };
        let value = match capability.value_type {
            ValueType::Float | ValueType::Int => {
                let number = match raw {
                    Json::Number(n) => n.as_f64(),
                    Json::String(s) => s.trim().parse::<f64>().ok(),
                    Json::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
                    _ => None,
                }
                .ok_or_else(|| fail("a number".into(), describe(Some(raw)), ""))?;
                let scaled = number * self.scale.unwrap_or(1.0) + self.offset.unwrap_or(0.0);
                let converted = self.convert_unit(capability, scaled).ok_or_else(|| {
                    fail(
                        format!("a unit convertible to {}", capability.unit.as_deref().unwrap_or("none")),
                        self.unit.clone().unwrap_or_default(),
                        ".unit",
                    )
                })?;
                check_range(capability, converted).map_err(|e| fail(e, converted.to_string(), ".range"))?;
                if capability.value_type == ValueType::Int {
                    StateValue::Int(converted.round() as i64)
                } else {
                    StateValue::Float(converted)
                }
            }
            ValueType::Bool => {
                let text = match raw {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                StateValue::Bool(parse_bool(&text, &self.true_values, &self.false_values).ok_or_else(|| {
                    fail("a boolean (or a value listed in true_values/false_values)".into(), text.clone(), "")
                })?)
            }
            ValueType::Enum => {
                let text = match raw {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let member = self.map.get(&text).cloned().unwrap_or(text);
                if !capability.values.contains(&member) {
                    return Err(fail(format!("one of {:?}", capability.values), member, ".map"));
                }
                StateValue::Text(member)
            }
            ValueType::String => match raw {
                Json::String(s) => StateValue::Text(s.clone()),
                other => StateValue::Text(other.to_string()),
            },
            ValueType::Color => StateValue::Text(raw.to_string()),
        };
        Ok(Some(StateEntry { capability: self.capability.clone(), value }))
    }

    fn convert_unit(&self, capability: &Capability, value: f64) -> Option<f64> {
        match (&self.unit, &capability.unit) {
            (Some(from), Some(to)) => units::convert(value, from, to),
            (None, _) => Some(value),
            (Some(_), None) => None,
        }
    }
}

fn check_range(capability: &Capability, value: f64) -> Result<(), String> {
    if !value.is_finite() {
        return Err("a finite number".into());
    }
    let below = capability.min.is_some_and(|min| value < min);
    let above = capability.max.is_some_and(|max| value > max);
    if below || above {
        return Err(format!(
            "a value within [{}, {}] {}",
            capability.min.map_or("-inf".into(), |v| v.to_string()),
            capability.max.map_or("inf".into(), |v| v.to_string()),
            capability.unit.as_deref().unwrap_or("")
        ));
    }
    Ok(())
}

fn parse_bool(text: &str, true_values: &[String], false_values: &[String]) -> Option<bool> {
    if true_values.iter().any(|v| v == text) {
        return Some(true);
    }
    if false_values.iter().any(|v| v == text) {
        return Some(false);
    }
    match text.to_ascii_lowercase().as_str() {
        "true" | "on" | "1" | "yes" | "online" | "open" => Some(true),
        "false" | "off" | "0" | "no" | "offline" | "closed" => Some(false),
        _ => None,
    }
}

/// Follows a dotted path (`a.b.0.c`) through a JSON value.
pub fn lookup<'a>(value: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(value, |v, segment| match v {
        Json::Object(map) => map.get(segment),
        Json::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn describe(value: Option<&Json>) -> String {
    match value {
        None => "nothing (field missing)".into(),
        Some(Json::Null) => "null".into(),
        Some(v) => {
            let text = v.to_string();
            if text.len() > 80 { format!("{}…", &text[..text.floor_char_boundary(80)]) } else { text }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(text: &str) -> MappingSpec {
        toml::from_str(text).unwrap()
    }

    const Z2M: &str = r#"
        version = 1
        [[rule]]
        record = "z2m.State"
        external_id = "friendly_name"
        name = { field = "friendly_name" }
        device_class = { value = "light" }
        [[rule.state]]
        capability = "switch"
        field = "payload.state"
        true_values = ["ON"]
        false_values = ["OFF"]
        [[rule.state]]
        capability = "brightness"
        field = "payload.brightness"
        scale = 0.39215686274509803
        [[rule.state]]
        capability = "temperature"
        field = "payload.temperature_f"
        unit = "[degF]"
        [[rule.state]]
        capability = "energy"
        field = "payload.energy_wh"
        unit = "W.h"
    "#;

    #[test]
    fn maps_a_zigbee2mqtt_light_state() {
        let payload = json!({"friendly_name": "kitchen", "payload": {"state": "ON", "brightness": 255, "temperature_f": 212.0, "energy_wh": 1500}});
        let out = spec(Z2M).apply(Catalog::builtin(), "z2m.State", &payload).unwrap();
        assert_eq!(out.external_id, "kitchen");
        assert_eq!(out.device_class.as_deref(), Some("light"));
        assert_eq!(out.states[0].value, StateValue::Bool(true));
        let StateValue::Float(b) = out.states[1].value else { panic!() };
        assert!((b - 100.0).abs() < 1e-9);
        let StateValue::Float(t) = out.states[2].value else { panic!() };
        assert!((t - 100.0).abs() < 1e-9);
        assert_eq!(out.states[3].value, StateValue::Float(1.5));
    }

    #[test]
    fn missing_fields_are_skipped() {
        let payload = json!({"friendly_name": "kitchen", "payload": {"state": "OFF"}});
        let out = spec(Z2M).apply(Catalog::builtin(), "z2m.State", &payload).unwrap();
        assert_eq!(out.states.len(), 1);
    }

    #[test]
    fn errors_name_the_field_and_rule() {
        let payload = json!({"friendly_name": "kitchen", "payload": {"state": "MAYBE"}});
        let err = spec(Z2M).apply(Catalog::builtin(), "z2m.State", &payload).unwrap_err();
        let ModelError::Mapping { field, rule, found, .. } = err else { panic!() };
        assert_eq!(field, "payload.state");
        assert_eq!(rule, "rule[0].state[0]");
        assert_eq!(found, "MAYBE");
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let payload = json!({"friendly_name": "kitchen", "payload": {"brightness": 1000}});
        let err = spec(Z2M).apply(Catalog::builtin(), "z2m.State", &payload).unwrap_err();
        let ModelError::Mapping { rule, .. } = err else { panic!() };
        assert_eq!(rule, "rule[0].state[1].range");
    }

    #[test]
    fn lookup_follows_objects_and_arrays() {
        let v = json!({"a": {"b": [10, {"c": true}]}});
        assert_eq!(lookup(&v, "a.b.1.c"), Some(&json!(true)));
        assert_eq!(lookup(&v, "a.x"), None);
    }
}
