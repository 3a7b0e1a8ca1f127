//! `mapping.toml`: the declarative mapping from a plugin's raw records to unified capability states.
//!
//! A mapping is a list of rules, one per Avro record type of the plugin's contract. A rule says
//! which field holds the device's external id, how to derive device metadata, and how each field
//! becomes a capability value (field path, scale and offset, unit conversion, enum/boolean maps).
//! Per-device-class rules (`[[rule.class]]`) add states for the class a record turns out to be,
//! and CEL expressions ([`crate::expr`], compiled once when the mapping is parsed) cover what the
//! declarative forms cannot say: derived values (`expr`) and conditions (`when`).
//! Missing or null fields are skipped, not errors: devices report partial state all the time.
//! The language is documented in `schemas/mapping.md`.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::catalog::{Capability, ValueType};
use crate::expr::{Expression, Scope};
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
    /// Capability states every record of this type may carry.
    #[serde(default, rename = "state")]
    pub states: Vec<StateRule>,
    /// Per-device-class rules; the first that matches sets the class and adds its states.
    #[serde(default, rename = "class")]
    pub classes: Vec<ClassRule>,
}

/// The states of one device class, and how to recognize it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassRule {
    /// The device class (`light`, `climate_sensor`, ...) a matching record gets.
    pub class: String,
    /// Condition over the record; without one, the class matches when the rule's `device_class`
    /// source yields this class.
    pub when: Option<Expression>,
    /// States mapped for devices of this class, after the rule's common states.
    #[serde(default, rename = "state")]
    pub states: Vec<StateRule>,
}

/// Where a metadata value comes from: a literal, a field (optionally mapped), or an expression.
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
    /// Derives the value; sees the record's fields, and `value` (the field's value) when `field`
    /// is given. A null result means "unknown".
    pub expr: Option<Expression>,
}

/// How one field becomes one capability value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRule {
    /// Catalog capability (or one of its aliases).
    pub capability: String,
    /// Field path into the record (`a.b.c`); when missing or null the state is skipped.
    pub field: String,
    /// Unit the field is in; converted to the catalog unit when different.
    pub unit: Option<String>,
    /// Field path holding the unit (as Home Assistant discovery and Tasmota send it); overrides
    /// `unit` when the record has it.
    pub unit_field: Option<String>,
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
    /// Replaces the field's value before scaling, units and maps apply; sees the record's fields
    /// and `value`. A null result skips the state.
    pub expr: Option<Expression>,
    /// Maps the state only when this condition holds.
    pub when: Option<Expression>,
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
    /// Capability values, in catalog units, under the capabilities' catalog names.
    pub states: Vec<StateEntry>,
}

/// One record being mapped: its payload, and the expression scope built on first use.
struct Input<'a> {
    payload: &'a Json,
    scope: OnceCell<Scope>,
}

impl Input<'_> {
    fn scope(&self) -> &Scope {
        self.scope.get_or_init(|| Scope::new(self.payload))
    }
}

fn mapping_error(field: &str, rule: String, expected: impl Into<String>, found: impl Into<String>) -> ModelError {
    ModelError::Mapping { field: field.to_owned(), rule, expected: expected.into(), found: found.into() }
}

impl MappingSpec {
    /// The rule for a record type.
    pub fn rule_for(&self, record: &str) -> Option<(usize, &Rule)> {
        self.rules.iter().enumerate().find(|(_, r)| r.record == record)
    }

    /// Catalog names of every capability the mapping can produce (aliases resolved).
    pub fn capabilities(&self, catalog: &Catalog) -> BTreeSet<String> {
        let all = self.rules.iter().flat_map(|r| r.states.iter().chain(r.classes.iter().flat_map(|c| &c.states)));
        all.map(|s| catalog.get(&s.capability).map_or_else(|| s.capability.clone(), |c| c.name.clone())).collect()
    }

    /// Maps one decoded record (as JSON) of type `record` into a [`MappedObservation`].
    pub fn apply(&self, catalog: &Catalog, record: &str, payload: &Json) -> Result<MappedObservation, ModelError> {
        let (index, rule) = self.rule_for(record).ok_or_else(|| {
            mapping_error("", "rule".into(), "a mapping rule for this record type", record.to_owned())
        })?;
        let input = Input { payload, scope: OnceCell::new() };
        let rule_path = format!("rule[{index}]");
        let text = |name: &str, src: &Option<Source>| -> Result<Option<String>, ModelError> {
            src.as_ref().map(|s| s.resolve(&input, &format!("{rule_path}.{name}"))).transpose().map(Option::flatten)
        };
        let external_id = match lookup(payload, &rule.external_id) {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            Some(Json::Number(n)) => n.to_string(),
            other => {
                return Err(mapping_error(
                    &rule.external_id,
                    format!("{rule_path}.external_id"),
                    "a non-empty string",
                    describe(other),
                ));
            }
        };
        let online = match text("online", &rule.online)? {
            None => None,
            Some(v) => Some(parse_bool(&v, &[], &[]).ok_or_else(|| {
                let field = rule.online.as_ref().and_then(|s| s.field.clone()).unwrap_or_default();
                mapping_error(&field, format!("{rule_path}.online"), "a boolean", v.clone())
            })?),
        };
        let mut device_class = text("device_class", &rule.device_class)?;
        let mut class_rule = None;
        for (c, class) in rule.classes.iter().enumerate() {
            let matched = match &class.when {
                Some(when) => when.test(input.scope()).map_err(|e| {
                    mapping_error("", format!("{rule_path}.class[{c}].when"), "a condition that evaluates", e.0)
                })?,
                None => device_class.as_deref() == Some(class.class.as_str()),
            };
            if matched {
                device_class = Some(class.class.clone());
                class_rule = Some((c, class));
                break;
            }
        }
        let common = rule.states.iter().enumerate().map(|(i, s)| (format!("{rule_path}.state[{i}]"), s));
        let by_class = class_rule.into_iter().flat_map(|(c, class)| {
            let rule_path = &rule_path;
            class.states.iter().enumerate().map(move |(i, s)| (format!("{rule_path}.class[{c}].state[{i}]"), s))
        });
        let mut states = Vec::with_capacity(rule.states.len());
        for (path, state_rule) in common.chain(by_class) {
            if let Some(entry) = state_rule.apply(catalog, &input, &path)? {
                states.push(entry);
            }
        }
        Ok(MappedObservation {
            external_id,
            name: text("name", &rule.name)?,
            device_class,
            manufacturer: text("manufacturer", &rule.manufacturer)?,
            model: text("model", &rule.model)?,
            firmware: text("firmware", &rule.firmware)?,
            online,
            states,
        })
    }
}

impl Source {
    fn resolve(&self, input: &Input<'_>, rule: &str) -> Result<Option<String>, ModelError> {
        if let Some(v) = &self.value {
            return Ok(Some(v.clone()));
        }
        let field = self.field.as_deref().unwrap_or("");
        let raw: Cow<'_, Json> = match (&self.field, &self.expr) {
            (None, None) => return Ok(None),
            (Some(path), expr) => {
                match (lookup(input.payload, path), expr) {
                    (None | Some(Json::Null), _) => return Ok(None),
                    (Some(v), None) => Cow::Borrowed(v),
                    (Some(v), Some(e)) => Cow::Owned(e.eval_with_value(input.scope(), v).map_err(|e| {
                        mapping_error(field, format!("{rule}.expr"), "an expression that evaluates", e.0)
                    })?),
                }
            }
            (None, Some(e)) => Cow::Owned(
                e.eval(input.scope())
                    .map_err(|e| mapping_error(field, format!("{rule}.expr"), "an expression that evaluates", e.0))?,
            ),
        };
        let raw = match raw.as_ref() {
            Json::Null => return Ok(None),
            Json::String(s) => s.clone(),
            v @ (Json::Number(_) | Json::Bool(_)) => v.to_string(),
            other => {
                return Err(mapping_error(
                    field,
                    rule.to_owned(),
                    "a string, number or boolean",
                    describe(Some(other)),
                ));
            }
        };
        if self.map.is_empty() {
            return Ok(Some(raw));
        }
        match self.map.get(&raw) {
            Some(mapped) => Ok(Some(mapped.clone())),
            None => Err(mapping_error(
                field,
                format!("{rule}.map"),
                format!("one of {:?}", self.map.keys().collect::<Vec<_>>()),
                raw,
            )),
        }
    }
}

impl StateRule {
    fn apply(&self, catalog: &Catalog, input: &Input<'_>, rule: &str) -> Result<Option<StateEntry>, ModelError> {
        let fail = |expected: String, found: String, which: &str| {
            mapping_error(&self.field, format!("{rule}{which}"), expected, found)
        };
        let capability = catalog
            .get(&self.capability)
            .ok_or_else(|| fail("a catalog capability".into(), self.capability.clone(), ".capability"))?;
        if let Some(when) = &self.when {
            let holds =
                when.test(input.scope()).map_err(|e| fail("a condition that evaluates".into(), e.0, ".when"))?;
            if !holds {
                return Ok(None);
            }
        }
        let raw = match lookup(input.payload, &self.field) {
            None | Some(Json::Null) => return Ok(None),
            Some(v) => v,
        };
        let raw: Cow<'_, Json> = match &self.expr {
            None => Cow::Borrowed(raw),
            Some(expr) => match expr.eval_with_value(input.scope(), raw) {
                Ok(Json::Null) => return Ok(None),
                Ok(v) => Cow::Owned(v),
                Err(e) => return Err(fail("an expression that evaluates".into(), e.0, ".expr")),
            },
        };
        let raw = raw.as_ref();
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
                let converted = self.convert_unit(capability, input.payload, scaled, rule)?;
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
        Ok(Some(StateEntry { capability: capability.name.clone(), value }))
    }

    /// The unit the value is in: the record's `unit_field` when present, else the static `unit`.
    fn source_unit<'a>(&'a self, payload: &'a Json, rule: &str) -> Result<Option<&'a str>, ModelError> {
        let Some(path) = &self.unit_field else { return Ok(self.unit.as_deref()) };
        match lookup(payload, path) {
            None | Some(Json::Null) => Ok(self.unit.as_deref()),
            Some(Json::String(s)) => Ok(Some(s.as_str())),
            other => Err(mapping_error(path, format!("{rule}.unit_field"), "a unit (a string)", describe(other))),
        }
    }

    fn convert_unit(&self, capability: &Capability, payload: &Json, value: f64, rule: &str) -> Result<f64, ModelError> {
        let from = self.source_unit(payload, rule)?;
        let converted = match (from, &capability.unit) {
            (Some(from), Some(to)) => units::convert(value, from, to),
            (None, _) => Some(value),
            (Some(_), None) => None,
        };
        converted.ok_or_else(|| {
            let (field, which) = match &self.unit_field {
                Some(path) if from != self.unit.as_deref() => (path.as_str(), ".unit_field"),
                _ => (self.field.as_str(), ".unit"),
            };
            mapping_error(
                field,
                format!("{rule}{which}"),
                format!("a unit convertible to {}", capability.unit.as_deref().unwrap_or("none")),
                from.unwrap_or_default().to_owned(),
            )
        })
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

    const CLASSES: &str = r#"
        version = 1
        [[rule]]
        record = "z2m.State"
        external_id = "friendly_name"
        device_class = { field = "definition.type", map = { Router = "light", EndDevice = "sensor" } }
        name = { expr = "friendly_name + ' (' + definition.model + ')'" }
        manufacturer = { field = "definition.vendor", expr = "value == 'IKEA of Sweden' ? 'IKEA' : value" }
        [[rule.state]]
        capability = "link_quality"
        field = "payload.linkquality"
        [[rule.class]]
        class = "light"
        when = "has(payload.brightness)"
        [[rule.class.state]]
        capability = "color_temperature"
        field = "payload.color_temp"
        expr = "double(payload.color_temp) > 0.0 ? 1000000.0 / double(payload.color_temp) : null"
        [[rule.class.state]]
        capability = "brightness"
        field = "payload.brightness"
        expr = "double(value) * 100.0 / 254.0"
        [[rule.class]]
        class = "sensor"
        [[rule.class.state]]
        capability = "motion"
        field = "payload.occupancy"
        [[rule.class.state]]
        capability = "temperature"
        field = "payload.temperature"
        unit_field = "payload.temperature_unit"
        when = "payload.temperature > -100.0"
    "#;

    fn value(out: &MappedObservation, capability: &str) -> StateValue {
        out.states.iter().find(|s| s.capability == capability).map(|s| s.value.clone()).unwrap()
    }

    #[test]
    fn class_rules_pick_the_class_and_its_states() {
        let m = spec(CLASSES);
        let light = json!({"friendly_name": "desk", "definition": {"type": "Router", "model": "LED1545G12", "vendor": "IKEA of Sweden"},
            "payload": {"linkquality": 90, "brightness": 254, "color_temp": 250}});
        let out = m.apply(Catalog::builtin(), "z2m.State", &light).unwrap();
        assert_eq!(out.device_class.as_deref(), Some("light"));
        assert_eq!(out.name.as_deref(), Some("desk (LED1545G12)"));
        assert_eq!(out.manufacturer.as_deref(), Some("IKEA"));
        assert_eq!(value(&out, "color_temperature"), StateValue::Float(4000.0));
        assert_eq!(value(&out, "brightness"), StateValue::Float(100.0));
        assert_eq!(out.states.len(), 3);

        // No brightness: the `when` of `light` fails, the derived class `sensor` matches by name.
        let sensor = json!({"friendly_name": "hall", "definition": {"type": "EndDevice", "model": "SML001", "vendor": "Philips"},
            "payload": {"occupancy": true, "temperature": 68.0, "temperature_unit": "°F"}});
        let out = m.apply(Catalog::builtin(), "z2m.State", &sensor).unwrap();
        assert_eq!(out.device_class.as_deref(), Some("sensor"));
        // `motion` is an alias: the event carries the catalog name.
        assert_eq!(value(&out, "occupancy"), StateValue::Bool(true));
        let StateValue::Float(t) = value(&out, "temperature") else { panic!() };
        assert!((t - 20.0).abs() < 1e-9);
        assert_eq!(
            m.capabilities(Catalog::builtin()).into_iter().collect::<Vec<_>>(),
            ["brightness", "color_temperature", "link_quality", "occupancy", "temperature"]
        );
    }

    #[test]
    fn expression_and_unit_errors_name_the_rule() {
        let m = spec(CLASSES);
        let bad_unit = json!({"friendly_name": "hall", "definition": {"type": "EndDevice", "model": "x", "vendor": "y"},
            "payload": {"temperature": 20.0, "temperature_unit": "V"}});
        let ModelError::Mapping { field, rule, found, .. } =
            m.apply(Catalog::builtin(), "z2m.State", &bad_unit).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(
            (field.as_str(), rule.as_str(), found.as_str()),
            ("payload.temperature_unit", "rule[0].class[1].state[1].unit_field", "V")
        );
        let bad_expr = json!({"friendly_name": "desk", "definition": {"type": "Router", "model": "x", "vendor": "y"},
            "payload": {"brightness": "bright"}});
        let ModelError::Mapping { field, rule, .. } = m.apply(Catalog::builtin(), "z2m.State", &bad_expr).unwrap_err()
        else {
            panic!()
        };
        assert_eq!((field.as_str(), rule.as_str()), ("payload.brightness", "rule[0].class[0].state[1].expr"));
    }

    #[test]
    fn expressions_that_do_not_compile_reject_the_mapping() {
        let err =
            toml::from_str::<MappingSpec>(&CLASSES.replace("has(payload.brightness)", "has(payload.")).unwrap_err();
        assert!(err.to_string().contains("does not compile"), "{err}");
    }
}
