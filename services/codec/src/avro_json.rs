//! Conversion between Avro values and JSON.
//!
//! Plugins speak JSON on their protocol; the host encodes each payload against the plugin's Avro
//! contract with [`from_json`], which reports the exact field path of any mismatch. Consumers turn
//! decoded datums back into JSON with [`to_json`] for mapping and replay.

use std::borrow::Borrow;
use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;
use serde_json::Value as Json;

use crate::CodecError;

/// Deepest nesting accepted when converting, a guard against hostile payloads.
pub const MAX_DEPTH: usize = 32;

/// Converts a decoded Avro value to JSON; union branches collapse to their value.
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(i) | Value::Date(i) | Value::TimeMillis(i) => Json::from(*i),
        Value::Long(l)
        | Value::TimeMicros(l)
        | Value::TimestampMillis(l)
        | Value::TimestampMicros(l)
        | Value::TimestampNanos(l)
        | Value::LocalTimestampMillis(l)
        | Value::LocalTimestampMicros(l)
        | Value::LocalTimestampNanos(l) => Json::from(*l),
        Value::Float(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number),
        Value::Double(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Bytes(b) | Value::Fixed(_, b) => Json::String(b.iter().map(|x| format!("{x:02x}")).collect()),
        Value::String(s) | Value::Enum(_, s) => Json::String(s.clone()),
        Value::Union(_, inner) => to_json(inner),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Value::Record(fields) => Json::Object(fields.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Value::Uuid(u) => Json::String(u.to_string()),
        other => Json::String(format!("{other:?}")),
    }
}

/// Converts JSON to an Avro value of `schema`, naming the path of the first mismatch.
pub fn from_json(json: &Json, schema: &Schema) -> Result<Value, CodecError> {
    from_json_within(json, schema, schema)
}

/// Converts JSON to an Avro value of `target`, a schema nested in `root` whose named types
/// `target` may reference.
pub fn from_json_within(json: &Json, target: &Schema, root: &Schema) -> Result<Value, CodecError> {
    let resolved = ResolvedSchema::try_from(root).map_err(|e| CodecError::InvalidSchema(e.to_string()))?;
    let names: HashMap<Name, &Schema> = resolved.get_names().iter().map(|(k, v)| (k.clone(), *v)).collect();
    convert(json, target, &names, &Path::Root, 0)
}

/// [`from_json_within`] with the root's named types already resolved (by full name), so that a
/// hot path does not resolve them for every value.
pub fn from_json_named<S: Borrow<Schema>>(
    json: &Json,
    target: &Schema,
    names: &HashMap<Name, S>,
) -> Result<Value, CodecError> {
    convert(json, target, names, &Path::Root, 0)
}

/// Where in the JSON value a conversion is, rendered (`$.a[2].b`) only when it fails.
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn mismatch(path: &Path<'_>, expected: impl Into<String>) -> CodecError {
    CodecError::Shape { field: path.to_string(), expected: expected.into() }
}

fn convert<S: Borrow<Schema>>(
    json: &Json,
    schema: &Schema,
    names: &HashMap<Name, S>,
    path: &Path<'_>,
    depth: usize,
) -> Result<Value, CodecError> {
    if depth > MAX_DEPTH {
        return Err(mismatch(path, format!("nesting of at most {MAX_DEPTH} levels")));
    }
    let int = |json: &Json| json.as_i64().ok_or_else(|| mismatch(path, "an integer"));
    Ok(match schema {
        Schema::Null if json.is_null() => Value::Null,
        Schema::Null => return Err(mismatch(path, "null")),
        Schema::Boolean => Value::Boolean(json.as_bool().ok_or_else(|| mismatch(path, "a boolean"))?),
        Schema::Int => Value::Int(i32::try_from(int(json)?).map_err(|_| mismatch(path, "a 32-bit integer"))?),
        Schema::Long => Value::Long(int(json)?),
        Schema::TimestampMillis => Value::TimestampMillis(int(json)?),
        Schema::TimestampMicros => Value::TimestampMicros(int(json)?),
        Schema::Float => Value::Float(json.as_f64().ok_or_else(|| mismatch(path, "a number"))? as f32),
        Schema::Double => Value::Double(json.as_f64().ok_or_else(|| mismatch(path, "a number"))?),
        Schema::String => Value::String(json.as_str().ok_or_else(|| mismatch(path, "a string"))?.to_owned()),
        Schema::Bytes => {
            Value::Bytes(json.as_str().ok_or_else(|| mismatch(path, "a string of bytes"))?.as_bytes().to_vec())
        }
        Schema::Enum(e) => {
            let symbol = json.as_str().ok_or_else(|| mismatch(path, "an enum symbol"))?;
            let index = e
                .symbols
                .iter()
                .position(|s| s == symbol)
                .ok_or_else(|| mismatch(path, format!("one of {:?}", e.symbols)))?;
            Value::Enum(index as u32, symbol.to_owned())
        }
        Schema::Array(a) => {
            let items = json.as_array().ok_or_else(|| mismatch(path, "an array"))?;
            let converted = items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(item, &a.items, names, &Path::Index(path, i), depth + 1))
                .collect::<Result<_, _>>()?;
            Value::Array(converted)
        }
        Schema::Map(m) => {
            let object = json.as_object().ok_or_else(|| mismatch(path, "an object"))?;
            let mut out = HashMap::with_capacity(object.len());
            for (k, v) in object {
                out.insert(k.clone(), convert(v, &m.types, names, &Path::Field(path, k), depth + 1)?);
            }
            Value::Map(out)
        }
        Schema::Union(u) => {
            let mut last = None;
            for (i, variant) in u.variants().iter().enumerate() {
                match convert(json, variant, names, path, depth + 1) {
                    Ok(v) => return Ok(Value::Union(i as u32, Box::new(v))),
                    Err(e) => last = Some(e),
                }
            }
            return Err(last.unwrap_or_else(|| mismatch(path, "a value of the union")));
        }
        Schema::Record(r) => {
            let object =
                json.as_object().ok_or_else(|| mismatch(path, format!("an object (record {})", r.name.name)))?;
            if let Some(extra) = object.keys().find(|k| !r.lookup.contains_key(*k)) {
                return Err(mismatch(&Path::Field(path, extra), format!("no such field in record {}", r.name.name)));
            }
            let mut fields = Vec::with_capacity(r.fields.len());
            for field in &r.fields {
                let field_path = Path::Field(path, &field.name);
                let value = match object.get(&field.name) {
                    Some(v) => convert(v, &field.schema, names, &field_path, depth + 1)?,
                    None => match &field.default {
                        Some(default) => convert(default, &field.schema, names, &field_path, depth + 1)?,
                        None if matches!(&field.schema, Schema::Union(u) if u.variants().first() == Some(&Schema::Null)) => {
                            Value::Union(0, Box::new(Value::Null))
                        }
                        None => return Err(mismatch(&field_path, "a value (the field is required)")),
                    },
                };
                fields.push((field.name.clone(), value));
            }
            Value::Record(fields)
        }
        Schema::Ref { name } => {
            let target = names.get(name).ok_or_else(|| mismatch(path, format!("a known type {}", name.name)))?;
            convert(json, target.borrow(), names, path, depth + 1)?
        }
        other => return Err(mismatch(path, format!("a supported type, not {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"{"type":"record","name":"Obs","namespace":"t","fields":[
        {"name":"id","type":"string"},
        {"name":"temp","type":["null","double"],"default":null},
        {"name":"tags","type":{"type":"array","items":"string"},"default":[]},
        {"name":"mode","type":{"type":"enum","name":"Mode","symbols":["a","b"]}}]}"#;

    #[test]
    fn round_trips_through_avro_binary() {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let value = from_json(&json!({"id": "x", "temp": 21.5, "mode": "b"}), &schema).unwrap();
        let bytes = apache_avro::to_avro_datum(&schema, value).unwrap();
        let back = apache_avro::from_avro_datum(&schema, &mut &bytes[..], None).unwrap();
        assert_eq!(to_json(&back), json!({"id": "x", "temp": 21.5, "tags": [], "mode": "b"}));
    }

    #[test]
    fn names_the_path_of_a_mismatch() {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let err = from_json(&json!({"id": "x", "temp": "hot", "mode": "a"}), &schema).unwrap_err();
        assert!(matches!(err, CodecError::Shape { ref field, .. } if field == "$.temp"), "{err}");
        let err = from_json(&json!({"id": "x", "mode": "c"}), &schema).unwrap_err();
        assert!(matches!(err, CodecError::Shape { ref field, .. } if field == "$.mode"), "{err}");
        let err = from_json(&json!({"id": "x", "mode": "a", "bogus": 1}), &schema).unwrap_err();
        assert!(matches!(err, CodecError::Shape { ref field, .. } if field == "$.bogus"), "{err}");
    }
}
