//! Errors of the codec crate.

/// What can go wrong encoding, decoding or resolving schemas.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not in the Confluent wire format.
    #[error("not a Confluent-framed record: {0}")]
    Framing(String),
    /// A schema id is not known to the registry.
    #[error("unknown schema id {0}")]
    UnknownSchema(u32),
    /// A schema does not parse.
    #[error("invalid Avro schema: {0}")]
    InvalidSchema(String),
    /// A datum does not match its schema.
    #[error("Avro datum does not match schema `{schema}`: {detail}")]
    Datum {
        /// Name of the schema.
        schema: String,
        /// What the Avro library said.
        detail: String,
    },
    /// A decoded record lacks a field or holds an unexpected type.
    #[error("field `{field}`: expected {expected}")]
    Shape {
        /// Field path.
        field: String,
        /// What was expected there.
        expected: String,
    },
    /// A record breaks a decoding limit (size, nesting, a length or count beyond the bytes
    /// present, too many values): it is hostile or corrupt, and was not decoded.
    #[error("record refused at byte {offset}: {detail}")]
    Limit {
        /// Byte offset into the datum (0 for the record as a whole).
        offset: usize,
        /// Which limit, and what the record asked for.
        detail: String,
    },
    /// Two different schemas have the same id (a fingerprint collision).
    #[error("schema id {0} collides with a different schema")]
    Collision(u32),
    /// The log holding the registry failed.
    #[error(transparent)]
    Log(#[from] tessera_log::LogError),
}
