//! The `RawObservation` envelope on `raw.<plugin_id>`.
//!
//! Each plugin gets its own envelope schema: plugin id, observation and receipt times, and the
//! payload as a union of the record types of the plugin's contract. Standard Avro tooling reading
//! a raw topic therefore sees the whole record, payload included, from the registry alone.

use std::borrow::Borrow;
use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;
use serde_json::Value as Json;

use crate::CodecError;
use crate::avro_json::{from_json_named, to_json};
use crate::device_event::Fields;

/// The envelope schema text for a plugin whose contract consists of `contract_texts`.
pub fn envelope_schema_text(plugin_id: &str, contract_texts: &[String]) -> String {
    let namespace: String = plugin_id.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!(
        r#"{{"type":"record","name":"RawObservation","namespace":"tessera.raw.{namespace}",
"doc":"A raw observation of plugin {plugin_id}, as emitted by the plugin and accepted by the host.",
"fields":[
 {{"name":"plugin_id","type":"string"}},
 {{"name":"observed_at_ms","type":"long"}},
 {{"name":"received_at_ms","type":"long"}},
 {{"name":"payload","type":[{}]}}
]}}"#,
        contract_texts.join(",")
    )
}

/// Full names of the payload record types of an envelope, by union index.
pub fn payload_types(envelope: &Schema) -> Vec<String> {
    let Schema::Record(r) = envelope else { return Vec::new() };
    let Some(field) = r.fields.iter().find(|f| f.name == "payload") else { return Vec::new() };
    let Schema::Union(u) = &field.schema else { return Vec::new() };
    u.variants()
        .iter()
        .map(|v| match v {
            Schema::Record(r) => r.name.fullname(None),
            Schema::Ref { name } => name.fullname(None),
            _ => String::new(),
        })
        .collect()
}

/// A decoded raw observation.
#[derive(Debug, Clone, PartialEq)]
pub struct RawObservation {
    /// Emitting plugin.
    pub plugin_id: String,
    /// When the plugin observed it.
    pub observed_at_ms: i64,
    /// When the host accepted it.
    pub received_at_ms: i64,
    /// Full name of the payload's record type.
    pub record: String,
    /// The payload as JSON.
    pub payload: Json,
}

/// Encodes an observation's envelope value; fails with the payload path of any contract mismatch.
pub fn to_value(envelope: &Schema, obs: &RawObservation) -> Result<Value, CodecError> {
    let resolved = ResolvedSchema::try_from(envelope).map_err(|e| CodecError::InvalidSchema(e.to_string()))?;
    let names: HashMap<Name, &Schema> = resolved.get_names().iter().map(|(k, v)| (k.clone(), *v)).collect();
    to_value_with(envelope, &payload_types(envelope), &names, obs)
}

/// [`to_value`] with the envelope's [`payload_types`] and named types (by full name) computed
/// beforehand, so that a hot path does not compute them for every observation.
pub fn to_value_with<S: Borrow<Schema>>(
    envelope: &Schema,
    types: &[String],
    names: &HashMap<Name, S>,
    obs: &RawObservation,
) -> Result<Value, CodecError> {
    let index = types.iter().position(|t| *t == obs.record).ok_or_else(|| CodecError::Shape {
        field: "record".into(),
        expected: format!("one of the contract's record types {types:?}"),
    })?;
    let Schema::Record(r) = envelope else {
        return Err(CodecError::InvalidSchema("envelope is not a record".into()));
    };
    let Some(Schema::Union(u)) = r.fields.iter().find(|f| f.name == "payload").map(|f| &f.schema) else {
        return Err(CodecError::InvalidSchema("envelope has no payload union".into()));
    };
    let Some(variant) = u.variants().get(index) else {
        return Err(CodecError::InvalidSchema("envelope payload union does not match its types".into()));
    };
    let payload = from_json_named(&obs.payload, variant, names)?;
    Ok(Value::Record(vec![
        ("plugin_id".into(), Value::String(obs.plugin_id.clone())),
        ("observed_at_ms".into(), Value::Long(obs.observed_at_ms)),
        ("received_at_ms".into(), Value::Long(obs.received_at_ms)),
        ("payload".into(), Value::Union(index as u32, Box::new(payload))),
    ]))
}

/// Decodes an envelope value read with `envelope` as writer schema.
pub fn from_value(envelope: &Schema, value: &Value) -> Result<RawObservation, CodecError> {
    from_value_with(&payload_types(envelope), value)
}

/// [`from_value`] with the envelope's [`payload_types`] computed beforehand.
pub fn from_value_with(types: &[String], value: &Value) -> Result<RawObservation, CodecError> {
    let f = Fields::of(value, "RawObservation")?;
    let Value::Record(fields) = value else {
        return Err(CodecError::Shape { field: "RawObservation".into(), expected: "a record".into() });
    };
    let (index, payload) = match fields.iter().find(|(k, _)| k == "payload") {
        Some((_, Value::Union(i, inner))) => (*i as usize, inner.as_ref()),
        _ => return Err(CodecError::Shape { field: "RawObservation.payload".into(), expected: "a union".into() }),
    };
    let record = types.get(index).cloned().unwrap_or_default();
    Ok(RawObservation {
        plugin_id: f.string("plugin_id")?,
        observed_at_ms: f.long("observed_at_ms")?,
        received_at_ms: f.long("received_at_ms")?,
        record,
        payload: to_json(payload),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_round_trips_and_names_the_record() {
        let contract = vec![
            r#"{"type":"record","name":"A","namespace":"p","fields":[{"name":"x","type":"int"}]}"#.to_string(),
            r#"{"type":"record","name":"B","namespace":"p","fields":[{"name":"x","type":"int"},{"name":"a","type":"p.A"}]}"#.to_string(),
        ];
        let schema = Schema::parse_str(&envelope_schema_text("my-plugin", &contract)).unwrap();
        assert_eq!(payload_types(&schema), vec!["p.A".to_string(), "p.B".to_string()]);
        let obs = RawObservation {
            plugin_id: "my-plugin".into(),
            observed_at_ms: 1,
            received_at_ms: 2,
            record: "p.B".into(),
            payload: json!({"x": 1, "a": {"x": 2}}),
        };
        let bytes = apache_avro::to_avro_datum(&schema, to_value(&schema, &obs).unwrap()).unwrap();
        let back = apache_avro::from_avro_datum(&schema, &mut &bytes[..], None).unwrap();
        assert_eq!(from_value(&schema, &back).unwrap(), obs);
    }

    #[test]
    fn contract_mismatches_name_the_field() {
        let contract =
            vec![r#"{"type":"record","name":"A","namespace":"p","fields":[{"name":"x","type":"int"}]}"#.to_string()];
        let schema = Schema::parse_str(&envelope_schema_text("p", &contract)).unwrap();
        let obs = RawObservation {
            plugin_id: "p".into(),
            observed_at_ms: 1,
            received_at_ms: 2,
            record: "p.A".into(),
            payload: json!({"x": "one"}),
        };
        let err = to_value(&schema, &obs).unwrap_err();
        assert!(matches!(err, CodecError::Shape { ref field, .. } if field == "$.x"), "{err}");
    }
}
