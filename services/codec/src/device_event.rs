//! Avro encoding of [`DeviceEvent`] (schema `schemas/topics/device-event.avsc`).

use apache_avro::types::Value;
use tessera_model::{ActionOutcome, DeviceEvent, DeviceMetadata, EventBody, StateEntry, StateValue};

use crate::CodecError;

/// The schema text of `device-events`.
pub const SCHEMA: &str = include_str!("../../../schemas/topics/device-event.avsc");

const OUTCOMES: [ActionOutcome; 6] = [
    ActionOutcome::Queued,
    ActionOutcome::Sent,
    ActionOutcome::Succeeded,
    ActionOutcome::Failed,
    ActionOutcome::TimedOut,
    ActionOutcome::Expired,
];

fn opt_string(v: &Option<String>) -> Value {
    match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(s) => Value::Union(1, Box::new(Value::String(s.clone()))),
    }
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

/// Builds the Avro value of an event.
pub fn to_value(event: &DeviceEvent) -> Value {
    let body = match &event.body {
        EventBody::Upserted(m) => Value::Union(
            0,
            Box::new(Value::Record(vec![
                ("name".into(), Value::String(m.name.clone())),
                ("device_class".into(), Value::String(m.device_class.clone())),
                ("manufacturer".into(), opt_string(&m.manufacturer)),
                ("model".into(), opt_string(&m.model)),
                ("firmware".into(), opt_string(&m.firmware)),
                ("capabilities".into(), strings(&m.capabilities)),
                ("actions".into(), strings(&m.actions)),
            ])),
        ),
        EventBody::StateReported { states } => {
            let items = states
                .iter()
                .map(|s| {
                    let value = match &s.value {
                        StateValue::Bool(b) => Value::Union(0, Box::new(Value::Boolean(*b))),
                        StateValue::Int(i) => Value::Union(1, Box::new(Value::Long(*i))),
                        StateValue::Float(f) => Value::Union(2, Box::new(Value::Double(*f))),
                        StateValue::Text(t) => Value::Union(3, Box::new(Value::String(t.clone()))),
                    };
                    Value::Record(vec![
                        ("capability".into(), Value::String(s.capability.clone())),
                        ("value".into(), value),
                    ])
                })
                .collect();
            Value::Union(1, Box::new(Value::Record(vec![("states".into(), Value::Array(items))])))
        }
        EventBody::Availability { online } => {
            Value::Union(2, Box::new(Value::Record(vec![("online".into(), Value::Boolean(*online))])))
        }
        EventBody::Removed => Value::Union(3, Box::new(Value::Record(vec![]))),
        EventBody::Action { action_id, action, outcome, detail } => {
            let index = OUTCOMES.iter().position(|o| o == outcome).unwrap_or(0) as u32;
            Value::Union(
                4,
                Box::new(Value::Record(vec![
                    ("action_id".into(), Value::String(action_id.clone())),
                    ("action".into(), Value::String(action.clone())),
                    ("outcome".into(), Value::Enum(index, outcome.as_str().to_owned())),
                    ("detail".into(), opt_string(detail)),
                ])),
            )
        }
    };
    Value::Record(vec![
        ("event_id".into(), Value::String(event.event_id.clone())),
        ("device_id".into(), Value::String(event.device_id.clone())),
        ("plugin_id".into(), Value::String(event.plugin_id.clone())),
        ("external_id".into(), Value::String(event.external_id.clone())),
        ("observed_at_ms".into(), Value::Long(event.observed_at_ms)),
        ("body".into(), body),
    ])
}

/// Field access on decoded records, with errors naming the field.
pub(crate) struct Fields<'a> {
    fields: &'a [(String, Value)],
    path: &'a str,
}

impl<'a> Fields<'a> {
    pub(crate) fn of(value: &'a Value, path: &'a str) -> Result<Self, CodecError> {
        match value {
            Value::Record(fields) => Ok(Self { fields, path }),
            Value::Union(_, inner) => Self::of(inner, path),
            _ => Err(CodecError::Shape { field: path.to_owned(), expected: "a record".into() }),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Result<&'a Value, CodecError> {
        let found = self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        match found {
            Some(Value::Union(_, inner)) => Ok(inner),
            Some(v) => Ok(v),
            None => Err(self.err(name, "a value")),
        }
    }

    fn err(&self, name: &str, expected: &str) -> CodecError {
        CodecError::Shape { field: format!("{}.{name}", self.path), expected: expected.to_owned() }
    }

    pub(crate) fn string(&self, name: &str) -> Result<String, CodecError> {
        match self.get(name)? {
            Value::String(s) | Value::Enum(_, s) => Ok(s.clone()),
            _ => Err(self.err(name, "a string")),
        }
    }

    pub(crate) fn opt_string(&self, name: &str) -> Result<Option<String>, CodecError> {
        match self.get(name) {
            Ok(Value::Null) | Err(_) => Ok(None),
            Ok(Value::String(s)) => Ok(Some(s.clone())),
            Ok(_) => Err(self.err(name, "a string or null")),
        }
    }

    pub(crate) fn long(&self, name: &str) -> Result<i64, CodecError> {
        match self.get(name)? {
            Value::Long(l) | Value::TimestampMillis(l) => Ok(*l),
            Value::Int(i) => Ok(i64::from(*i)),
            _ => Err(self.err(name, "a long")),
        }
    }

    pub(crate) fn boolean(&self, name: &str) -> Result<bool, CodecError> {
        match self.get(name)? {
            Value::Boolean(b) => Ok(*b),
            _ => Err(self.err(name, "a boolean")),
        }
    }

    pub(crate) fn strings(&self, name: &str) -> Result<Vec<String>, CodecError> {
        match self.get(name)? {
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.err(name, "an array of strings")),
                })
                .collect(),
            _ => Err(self.err(name, "an array of strings")),
        }
    }
}

/// Reads an event back from its Avro value.
pub fn from_value(value: &Value) -> Result<DeviceEvent, CodecError> {
    let f = Fields::of(value, "DeviceEvent")?;
    let body_value = match f.fields.iter().find(|(k, _)| k == "body") {
        Some((_, Value::Union(index, inner))) => (*index, inner.as_ref()),
        _ => return Err(f.err("body", "a union")),
    };
    let b = Fields::of(body_value.1, "DeviceEvent.body")?;
    let body = match body_value.0 {
        0 => EventBody::Upserted(DeviceMetadata {
            name: b.string("name")?,
            device_class: b.string("device_class")?,
            manufacturer: b.opt_string("manufacturer")?,
            model: b.opt_string("model")?,
            firmware: b.opt_string("firmware")?,
            capabilities: b.strings("capabilities")?,
            actions: b.strings("actions")?,
        }),
        1 => {
            let Value::Array(items) = b.get("states")? else {
                return Err(b.err("states", "an array"));
            };
            let mut states = Vec::with_capacity(items.len());
            for item in items {
                let s = Fields::of(item, "DeviceEvent.body.states[]")?;
                let value = match s.get("value")? {
                    Value::Boolean(v) => StateValue::Bool(*v),
                    Value::Long(v) => StateValue::Int(*v),
                    Value::Double(v) => StateValue::Float(*v),
                    Value::String(v) => StateValue::Text(v.clone()),
                    _ => return Err(s.err("value", "boolean, long, double or string")),
                };
                states.push(StateEntry { capability: s.string("capability")?, value });
            }
            EventBody::StateReported { states }
        }
        2 => EventBody::Availability { online: b.boolean("online")? },
        3 => EventBody::Removed,
        4 => {
            let outcome_name = b.string("outcome")?;
            EventBody::Action {
                action_id: b.string("action_id")?,
                action: b.string("action")?,
                outcome: ActionOutcome::parse(&outcome_name).ok_or_else(|| b.err("outcome", "an action outcome"))?,
                detail: b.opt_string("detail")?,
            }
        }
        _ => return Err(f.err("body", "a known event kind")),
    };
    Ok(DeviceEvent {
        event_id: f.string("event_id")?,
        device_id: f.string("device_id")?,
        plugin_id: f.string("plugin_id")?,
        external_id: f.string("external_id")?,
        observed_at_ms: f.long("observed_at_ms")?,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::Schema;

    fn round_trip(body: EventBody) {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let event = DeviceEvent {
            event_id: "t/0/1/0".into(),
            device_id: "sim:light-1".into(),
            plugin_id: "sim".into(),
            external_id: "light-1".into(),
            observed_at_ms: 1_700_000_000_000,
            body,
        };
        let bytes = apache_avro::to_avro_datum(&schema, to_value(&event)).unwrap();
        let back = apache_avro::from_avro_datum(&schema, &mut &bytes[..], None).unwrap();
        assert_eq!(from_value(&back).unwrap(), event);
    }

    #[test]
    fn every_event_kind_round_trips() {
        round_trip(EventBody::Upserted(DeviceMetadata {
            name: "Lamp".into(),
            device_class: "light".into(),
            manufacturer: Some("Acme".into()),
            model: None,
            firmware: Some("1.2".into()),
            capabilities: vec!["switch".into()],
            actions: vec!["toggle".into()],
        }));
        round_trip(EventBody::StateReported {
            states: vec![
                StateEntry { capability: "switch".into(), value: StateValue::Bool(true) },
                StateEntry { capability: "brightness".into(), value: StateValue::Float(42.5) },
                StateEntry { capability: "lock".into(), value: StateValue::Text("locked".into()) },
                StateEntry { capability: "count".into(), value: StateValue::Int(7) },
            ],
        });
        round_trip(EventBody::Availability { online: false });
        round_trip(EventBody::Removed);
        round_trip(EventBody::Action {
            action_id: "a1".into(),
            action: "toggle".into(),
            outcome: ActionOutcome::TimedOut,
            detail: None,
        });
    }
}
