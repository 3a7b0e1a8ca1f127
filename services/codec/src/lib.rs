//! Tessera's wire format: Avro records in the Confluent framing on every topic, the schema
//! registry that names their ids, and the typed messages each topic carries.
//!
//! A framed record is `0x00`, a big-endian 4-byte schema id, then the Avro binary datum. Schema ids
//! are derived from the Rabin fingerprint of the schema's canonical form, so every process derives
//! the same id for the same schema; the registry keeps them on a log topic so that any role, and the
//! API's schema-registry endpoints, can resolve an id it did not register itself.

pub mod avro_json;
pub mod device_event;
pub mod error;
pub mod guard;
pub mod limits;
pub mod messages;
pub mod raw;
pub mod registry;
pub mod topics;
pub mod wire;

pub use error::CodecError;
pub use limits::DecodeLimits;
pub use messages::{ActionCommand, PluginLifecycle, Rejection, RejectionError};
pub use registry::SchemaRegistry;
pub use topics::Topics;
