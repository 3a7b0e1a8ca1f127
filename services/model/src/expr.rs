//! Expressions in `mapping.toml`, for what the declarative forms cannot say.
//!
//! Expressions are [CEL](https://cel.dev) (the Common Expression Language: side-effect free, not
//! Turing complete, always terminating), run by the `cel` crate. An [`Expression`] is compiled
//! when `mapping.toml` is parsed, so a package whose expressions do not compile is rejected at
//! load time with the byte position of the bad expression, and every record reuses the compiled
//! program. A [`Scope`] binds one record's fields as variables.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use cel::objects::Key;
use cel::{Context, Env, Program, Value};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

/// Longest expression source accepted; mappings are configuration, not programs.
pub const MAX_SOURCE_LEN: usize = 4096;

/// A compiled CEL expression. Compares, prints and serializes as its source text.
#[derive(Clone)]
pub struct Expression {
    source: Arc<str>,
    program: Arc<Program>,
}

/// Why an expression does not compile or evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib()))
}

impl Expression {
    /// Compiles `source`.
    pub fn compile(source: &str) -> Result<Self, ExprError> {
        if source.len() > MAX_SOURCE_LEN {
            return Err(ExprError(format!("expression is longer than {MAX_SOURCE_LEN} bytes")));
        }
        if source.trim().is_empty() {
            return Err(ExprError("expression is empty".into()));
        }
        let program = env().compile(source).map_err(|e| ExprError(e.to_string()))?;
        Ok(Self { source: source.into(), program: Arc::new(program) })
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Variables the expression reads (including comprehension variables such as `x` in
    /// `list.map(x, x * 2)`), sorted.
    pub fn variables(&self) -> Vec<String> {
        let mut out: Vec<String> = self.program.references().variables().into_iter().map(|v| v.to_string()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// Evaluates the expression in `scope`, returning the result as JSON.
    pub fn eval(&self, scope: &Scope) -> Result<Json, ExprError> {
        let result = self.program.execute(&scope.context).map_err(|e| ExprError(e.to_string()))?;
        to_json(&result)
    }

    /// Evaluates the expression in `scope` with `value` bound to the variable `value`.
    pub fn eval_with_value(&self, scope: &Scope, value: &Json) -> Result<Json, ExprError> {
        let mut inner = scope.context.new_inner_scope();
        inner.add_variable_from_value("value", from_json(value));
        let result = self.program.execute(&inner).map_err(|e| ExprError(e.to_string()))?;
        to_json(&result)
    }

    /// Evaluates a condition: `true` or `false`, anything else is an error.
    pub fn test(&self, scope: &Scope) -> Result<bool, ExprError> {
        match self.eval(scope)? {
            Json::Bool(b) => Ok(b),
            other => Err(ExprError(format!("a condition must be true or false, it gave {other}"))),
        }
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expression({:?})", self.source)
    }
}

impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Expression {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Expression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Expression::compile(&source)
            .map_err(|e| serde::de::Error::custom(format!("expression `{source}` does not compile: {e}")))
    }
}

/// The variables one record offers its expressions: each top-level field by name, and the whole
/// record as `record`.
pub struct Scope {
    context: Context<'static, 'static>,
}

impl Scope {
    /// A scope over a decoded record.
    pub fn new(record: &Json) -> Self {
        let mut context = Context::with_env(env().clone());
        if let Json::Object(fields) = record {
            for (name, value) in fields {
                context.add_variable_from_value(name.as_str(), from_json(value));
            }
        }
        context.add_variable_from_value("record", from_json(record));
        Self { context }
    }
}

fn from_json(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(items) => Value::List(Arc::new(items.iter().map(from_json).collect())),
        Json::Object(map) => {
            let entries: HashMap<Key, Value> =
                map.iter().map(|(k, v)| (Key::String(Arc::new(k.clone())), from_json(v))).collect();
            Value::Map(cel::objects::Map { map: Arc::new(entries) })
        }
    }
}

fn to_json(value: &Value) -> Result<Json, ExprError> {
    Ok(match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| ExprError(format!("the result {f} is not a finite number")))?,
        Value::String(s) => Json::String(s.to_string()),
        Value::List(items) => Json::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Map(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map.map.iter() {
                let key = match k {
                    Key::String(s) => s.to_string(),
                    Key::Int(i) => i.to_string(),
                    Key::Uint(u) => u.to_string(),
                    Key::Bool(b) => b.to_string(),
                };
                out.insert(key, to_json(v)?);
            }
            Json::Object(out)
        }
        other => return Err(ExprError(format!("unsupported result type {:?}", other.type_of()))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_mired_to_kelvin() {
        let e = Expression::compile("double(payload.color_temp) > 0.0 ? 1000000.0 / double(payload.color_temp) : null")
            .unwrap();
        let scope = Scope::new(&json!({"payload": {"color_temp": 250}}));
        assert_eq!(e.eval(&scope).unwrap(), json!(4000.0));
        let zero = Scope::new(&json!({"payload": {"color_temp": 0}}));
        assert_eq!(e.eval(&zero).unwrap(), Json::Null);
    }

    #[test]
    fn binds_value_record_and_fields() {
        let e = Expression::compile("value * 2 + size(record.tags) + size(tags)").unwrap();
        let scope = Scope::new(&json!({"tags": ["a", "b"]}));
        assert_eq!(e.eval_with_value(&scope, &json!(20)).unwrap(), json!(44));
        let cond = Expression::compile("has(payload.brightness) && payload.brightness > 0").unwrap();
        assert!(cond.test(&Scope::new(&json!({"payload": {"brightness": 3}}))).unwrap());
        assert!(!cond.test(&Scope::new(&json!({"payload": {}}))).unwrap());
        assert_eq!(cond.variables(), vec!["payload".to_string()]);
    }

    #[test]
    fn refuses_bad_sources_and_reports_evaluation_errors() {
        assert!(Expression::compile("1 +").is_err());
        assert!(Expression::compile("").is_err());
        assert!(Expression::compile(&"x".repeat(MAX_SOURCE_LEN + 1)).is_err());
        // Deep nesting is refused by the parser's recursion limit rather than overflowing the stack.
        assert!(Expression::compile(&format!("{}1{}", "(".repeat(2000), ")".repeat(2000))).is_err());
        let e = Expression::compile("payload.missing + 1").unwrap();
        assert!(e.eval(&Scope::new(&json!({"payload": {}}))).is_err());
        let cond = Expression::compile("1").unwrap();
        assert!(cond.test(&Scope::new(&json!({}))).is_err());
    }

    #[test]
    fn deserializes_by_compiling() {
        #[derive(Deserialize)]
        struct T {
            e: Expression,
        }
        let t: T = toml::from_str("e = \"1 + 2\"").unwrap();
        assert_eq!(t.e.eval(&Scope::new(&json!({}))).unwrap(), json!(3));
        let err = toml::from_str::<T>("e = \"1 +\"").err().unwrap();
        assert!(err.to_string().contains("does not compile"), "{err}");
    }
}
