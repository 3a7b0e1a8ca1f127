//! Capability values as they travel through the model.

use serde::{Deserialize, Serialize};

/// The value of one capability at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StateValue {
    /// A binary state (switch on, contact closed, ...).
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A measured quantity in the capability's unit.
    Float(f64),
    /// Text or an enum member.
    Text(String),
}

impl StateValue {
    /// The value as JSON, the form the API serves.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            StateValue::Bool(b) => serde_json::Value::Bool(*b),
            StateValue::Int(i) => serde_json::Value::from(*i),
            StateValue::Float(f) => {
                serde_json::Number::from_f64(*f).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
            }
            StateValue::Text(s) => serde_json::Value::String(s.clone()),
        }
    }

    /// The value as a number, if it is one (booleans count as 0/1 for charts).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            StateValue::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            StateValue::Int(i) => Some(*i as f64),
            StateValue::Float(f) => Some(*f),
            StateValue::Text(_) => None,
        }
    }
}
