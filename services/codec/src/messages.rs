//! The messages of `dlq`, `governance` and `commands`, and [`Codec`], which frames every topic's
//! records with their registered schema ids.

use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::types::Value;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tessera_model::{DeviceEvent, Violation};

use crate::device_event::Fields;
use crate::registry::RegisteredSchema;
use crate::{CodecError, DecodeLimits, SchemaRegistry, Topics, avro_json, device_event, guard, limits, raw, wire};

const REJECTION: &str = include_str!("../../../schemas/topics/rejection.avsc");
const LIFECYCLE: &str = include_str!("../../../schemas/topics/plugin-lifecycle.avsc");
const COMMAND: &str = include_str!("../../../schemas/topics/action-command.avsc");

/// One structured error of a rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionError {
    /// Field path in the original record.
    pub field: String,
    /// The rule or check that failed.
    pub rule: String,
    /// What was expected.
    pub expected: String,
    /// What was found.
    pub found: String,
}

/// A record that was refused, with its coordinates and why (topic `dlq`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Plugin whose output was refused.
    pub plugin_id: String,
    /// Where it was refused: `decode`, `mapping`, `quota`, `protocol`.
    pub stage: String,
    /// Topic of the original record (or the plugin's raw topic when it never reached the log).
    pub source_topic: String,
    /// Partition of the original record.
    pub source_partition: i32,
    /// Offset of the original record, -1 when it never reached the log.
    pub source_offset: i64,
    /// When it was refused.
    pub rejected_at_ms: i64,
    /// Every error found.
    pub errors: Vec<RejectionError>,
    /// The original bytes, when small enough to keep.
    pub original: Option<Vec<u8>>,
}

/// A plugin lifecycle transition (topic `governance`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginLifecycle {
    /// The plugin.
    pub plugin_id: String,
    /// Its package version.
    pub version: String,
    /// The state entered.
    pub state: String,
    /// Why, in words.
    pub detail: Option<String>,
    /// Restarts so far.
    pub restarts: i32,
    /// Contract violations (for `rejected`).
    pub violations: Vec<Violation>,
    /// Observations accepted in this run of the host.
    pub accepted: i64,
    /// Observations rejected in this run of the host.
    pub rejected: i64,
    /// When.
    pub at_ms: i64,
}

/// A request to run an action (topic `commands`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCommand {
    /// Invocation id.
    pub action_id: String,
    /// Target device.
    pub device_id: String,
    /// Plugin owning the device.
    pub plugin_id: String,
    /// Device id within the plugin.
    pub external_id: String,
    /// Normalized action.
    pub action: String,
    /// Parameters as a JSON object.
    pub params_json: String,
    /// Check everything but do not touch the device.
    pub dry_run: bool,
    /// Token name of the caller.
    pub requested_by: String,
    /// When it was requested.
    pub requested_at_ms: i64,
    /// After this it must not run.
    pub expires_at_ms: i64,
    /// Caller's idempotency key.
    pub idempotency_key: Option<String>,
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn opt(v: &Option<String>) -> Value {
    match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(x) => Value::Union(1, Box::new(Value::String(x.clone()))),
    }
}

fn int(f: &Fields<'_>, name: &str) -> Result<i32, CodecError> {
    i32::try_from(f.long(name)?)
        .map_err(|_| CodecError::Shape { field: name.into(), expected: "a 32-bit integer".into() })
}

fn records<'a>(f: &Fields<'a>, name: &str) -> Result<&'a [Value], CodecError> {
    match f.get(name)? {
        Value::Array(items) => Ok(items),
        _ => Err(CodecError::Shape { field: name.into(), expected: "an array".into() }),
    }
}

impl Rejection {
    fn to_value(&self) -> Value {
        let errors = self
            .errors
            .iter()
            .map(|e| {
                Value::Record(vec![
                    ("field".into(), s(&e.field)),
                    ("rule".into(), s(&e.rule)),
                    ("expected".into(), s(&e.expected)),
                    ("found".into(), s(&e.found)),
                ])
            })
            .collect();
        let original = match &self.original {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(b) => Value::Union(1, Box::new(Value::Bytes(b.clone()))),
        };
        Value::Record(vec![
            ("plugin_id".into(), s(&self.plugin_id)),
            ("stage".into(), s(&self.stage)),
            ("source_topic".into(), s(&self.source_topic)),
            ("source_partition".into(), Value::Int(self.source_partition)),
            ("source_offset".into(), Value::Long(self.source_offset)),
            ("rejected_at_ms".into(), Value::Long(self.rejected_at_ms)),
            ("errors".into(), Value::Array(errors)),
            ("original".into(), original),
        ])
    }

    fn from_value(value: &Value) -> Result<Self, CodecError> {
        let f = Fields::of(value, "Rejection")?;
        let errors = records(&f, "errors")?
            .iter()
            .map(|v| {
                let e = Fields::of(v, "Rejection.errors[]")?;
                Ok(RejectionError {
                    field: e.string("field")?,
                    rule: e.string("rule")?,
                    expected: e.string("expected")?,
                    found: e.string("found")?,
                })
            })
            .collect::<Result<_, CodecError>>()?;
        let original = match f.get("original") {
            Ok(Value::Bytes(b)) => Some(b.clone()),
            _ => None,
        };
        Ok(Self {
            plugin_id: f.string("plugin_id")?,
            stage: f.string("stage")?,
            source_topic: f.string("source_topic")?,
            source_partition: int(&f, "source_partition")?,
            source_offset: f.long("source_offset")?,
            rejected_at_ms: f.long("rejected_at_ms")?,
            errors,
            original,
        })
    }
}

impl PluginLifecycle {
    fn to_value(&self) -> Value {
        let violations = self
            .violations
            .iter()
            .map(|v| {
                Value::Record(vec![
                    ("code".into(), s(&v.code)),
                    ("path".into(), s(&v.path)),
                    ("message".into(), s(&v.message)),
                    ("hint".into(), opt(&v.hint)),
                ])
            })
            .collect();
        Value::Record(vec![
            ("plugin_id".into(), s(&self.plugin_id)),
            ("version".into(), s(&self.version)),
            ("state".into(), s(&self.state)),
            ("detail".into(), opt(&self.detail)),
            ("restarts".into(), Value::Int(self.restarts)),
            ("violations".into(), Value::Array(violations)),
            ("accepted".into(), Value::Long(self.accepted)),
            ("rejected".into(), Value::Long(self.rejected)),
            ("at_ms".into(), Value::Long(self.at_ms)),
        ])
    }

    fn from_value(value: &Value) -> Result<Self, CodecError> {
        let f = Fields::of(value, "PluginLifecycle")?;
        let violations = records(&f, "violations")?
            .iter()
            .map(|v| {
                let e = Fields::of(v, "PluginLifecycle.violations[]")?;
                Ok(Violation {
                    code: e.string("code")?,
                    path: e.string("path")?,
                    message: e.string("message")?,
                    hint: e.opt_string("hint")?,
                })
            })
            .collect::<Result<_, CodecError>>()?;
        Ok(Self {
            plugin_id: f.string("plugin_id")?,
            version: f.string("version")?,
            state: f.string("state")?,
            detail: f.opt_string("detail")?,
            restarts: int(&f, "restarts")?,
            violations,
            accepted: f.long("accepted").unwrap_or(0),
            rejected: f.long("rejected").unwrap_or(0),
            at_ms: f.long("at_ms")?,
        })
    }
}

impl ActionCommand {
    fn to_value(&self) -> Value {
        Value::Record(vec![
            ("action_id".into(), s(&self.action_id)),
            ("device_id".into(), s(&self.device_id)),
            ("plugin_id".into(), s(&self.plugin_id)),
            ("external_id".into(), s(&self.external_id)),
            ("action".into(), s(&self.action)),
            ("params_json".into(), s(&self.params_json)),
            ("dry_run".into(), Value::Boolean(self.dry_run)),
            ("requested_by".into(), s(&self.requested_by)),
            ("requested_at_ms".into(), Value::Long(self.requested_at_ms)),
            ("expires_at_ms".into(), Value::Long(self.expires_at_ms)),
            ("idempotency_key".into(), opt(&self.idempotency_key)),
        ])
    }

    fn from_value(value: &Value) -> Result<Self, CodecError> {
        let f = Fields::of(value, "ActionCommand")?;
        Ok(Self {
            action_id: f.string("action_id")?,
            device_id: f.string("device_id")?,
            plugin_id: f.string("plugin_id")?,
            external_id: f.string("external_id")?,
            action: f.string("action")?,
            params_json: f.string("params_json")?,
            dry_run: f.boolean("dry_run")?,
            requested_by: f.string("requested_by")?,
            requested_at_ms: f.long("requested_at_ms")?,
            expires_at_ms: f.long("expires_at_ms")?,
            idempotency_key: f.opt_string("idempotency_key")?,
        })
    }
}

/// Encodes and decodes the records of every topic, framed with registered schema ids.
pub struct Codec {
    registry: Arc<SchemaRegistry>,
    device_event: Arc<RegisteredSchema>,
    rejection: Arc<RegisteredSchema>,
    lifecycle: Arc<RegisteredSchema>,
    command: Arc<RegisteredSchema>,
    limits: DecodeLimits,
}

fn encode(schema: &RegisteredSchema, value: Value) -> Result<Vec<u8>, CodecError> {
    let datum_error = |e: apache_avro::Error| {
        let detail = match e.details() {
            // The library's own message carries the whole value and schema: keep only the reason.
            apache_avro::error::Details::ValidationWithReason { reason, .. } => {
                format!("Value does not match schema: {reason}")
            }
            _ => e.to_string(),
        };
        CodecError::Datum { schema: schema_name(&schema.schema), detail }
    };
    match schema.prepared() {
        Some(prepared) => prepared.encode_framed(&value).map_err(datum_error),
        None => {
            let datum = apache_avro::to_avro_datum(&schema.schema, value).map_err(datum_error)?;
            Ok(wire::frame(schema.id, &datum))
        }
    }
}

fn schema_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => r.name.fullname(None),
        other => format!("{other:?}"),
    }
}

impl Codec {
    /// Registers the built-in topic schemas (idempotently) and returns a codec using them.
    pub async fn open(registry: Arc<SchemaRegistry>, topics: &Topics) -> Result<Self, CodecError> {
        limits::init();
        let subject = |topic: String| format!("{topic}-value");
        let device_event = registry.register(&subject(topics.device_events()), device_event::SCHEMA).await?;
        let rejection = registry.register(&subject(topics.dlq()), REJECTION).await?;
        let lifecycle = registry.register(&subject(topics.governance()), LIFECYCLE).await?;
        let command = registry.register(&subject(topics.commands()), COMMAND).await?;
        Ok(Self { registry, device_event, rejection, lifecycle, command, limits: DecodeLimits::default() })
    }

    /// The same codec with other decoding limits.
    pub fn with_limits(mut self, limits: DecodeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The decoding limits in force.
    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// The registry behind this codec.
    pub fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.registry
    }

    /// Decodes a framed record into its writer schema and Avro value.
    /// Refuses records beyond the codec's [`DecodeLimits`] before the Avro library sees them.
    pub async fn decode_value(&self, bytes: &[u8]) -> Result<(Arc<RegisteredSchema>, Value), CodecError> {
        if bytes.len() > self.limits.max_record_bytes {
            return Err(CodecError::Limit {
                offset: 0,
                detail: format!(
                    "record of {} bytes exceeds the limit of {}",
                    bytes.len(),
                    self.limits.max_record_bytes
                ),
            });
        }
        let (id, mut datum) = wire::unframe(bytes)?;
        let schema = self.registry.get(id).await?;
        let datum_error =
            |e: apache_avro::Error| CodecError::Datum { schema: schema_name(&schema.schema), detail: e.to_string() };
        let value = match schema.prepared() {
            Some(prepared) => {
                guard::check_datum_named(&schema.schema, &prepared.names, datum, &self.limits)?;
                prepared.decode_framed(bytes).map_err(datum_error)?
            }
            None => {
                guard::check_datum(&schema.schema, datum, &self.limits)?;
                apache_avro::from_avro_datum(&schema.schema, &mut datum, None).map_err(datum_error)?
            }
        };
        Ok((schema, value))
    }

    /// Decodes any framed record to JSON (for replay): `(schema id, value)`.
    pub async fn decode_json(&self, bytes: &[u8]) -> Result<(u32, Json), CodecError> {
        let (schema, value) = self.decode_value(bytes).await?;
        Ok((schema.id, avro_json::to_json(&value)))
    }

    /// Encodes a device event.
    pub fn encode_event(&self, event: &DeviceEvent) -> Result<Vec<u8>, CodecError> {
        encode(&self.device_event, device_event::to_value(event))
    }

    /// Decodes a device event.
    pub async fn decode_event(&self, bytes: &[u8]) -> Result<DeviceEvent, CodecError> {
        device_event::from_value(&self.decode_value(bytes).await?.1)
    }

    /// Encodes a rejection.
    pub fn encode_rejection(&self, r: &Rejection) -> Result<Vec<u8>, CodecError> {
        encode(&self.rejection, r.to_value())
    }

    /// Decodes a rejection.
    pub async fn decode_rejection(&self, bytes: &[u8]) -> Result<Rejection, CodecError> {
        Rejection::from_value(&self.decode_value(bytes).await?.1)
    }

    /// Encodes a lifecycle transition.
    pub fn encode_lifecycle(&self, l: &PluginLifecycle) -> Result<Vec<u8>, CodecError> {
        encode(&self.lifecycle, l.to_value())
    }

    /// Decodes a lifecycle transition.
    pub async fn decode_lifecycle(&self, bytes: &[u8]) -> Result<PluginLifecycle, CodecError> {
        PluginLifecycle::from_value(&self.decode_value(bytes).await?.1)
    }

    /// Encodes an action command.
    pub fn encode_command(&self, c: &ActionCommand) -> Result<Vec<u8>, CodecError> {
        encode(&self.command, c.to_value())
    }

    /// Decodes an action command.
    pub async fn decode_command(&self, bytes: &[u8]) -> Result<ActionCommand, CodecError> {
        ActionCommand::from_value(&self.decode_value(bytes).await?.1)
    }

    /// Encodes a raw observation with a registered envelope schema.
    pub fn encode_raw(&self, envelope: &RegisteredSchema, obs: &raw::RawObservation) -> Result<Vec<u8>, CodecError> {
        let value = match envelope.prepared() {
            Some(p) => raw::to_value_with(&envelope.schema, &p.payload_types, &p.names, obs)?,
            None => raw::to_value(&envelope.schema, obs)?,
        };
        encode(envelope, value)
    }

    /// Decodes a raw observation, using the writer schema its id names.
    pub async fn decode_raw(&self, bytes: &[u8]) -> Result<raw::RawObservation, CodecError> {
        let (schema, value) = self.decode_value(bytes).await?;
        match schema.prepared() {
            Some(p) => raw::from_value_with(&p.payload_types, &value),
            None => raw::from_value(&schema.schema, &value),
        }
    }
}
