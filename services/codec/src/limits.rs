//! Hard limits on decoding, a defence against hostile records.
//!
//! Anyone who can write to a topic can hand the decoder any bytes, and any schema id the registry
//! knows. The Avro library trusts the lengths and block counts inside a datum: a few bytes can ask
//! it to reserve gigabytes (an array block count of 2^40) or to loop for ages (a block of 2^60
//! nulls, which take no bytes each). Tessera therefore bounds a record's size before decoding,
//! checks each datum with [`crate::guard`] (depth, lengths against the bytes actually present,
//! a budget of decoded values) before the library sees it, and caps the library's own allocations
//! with `apache_avro::util::max_allocation_bytes` as a last line.

/// Cap on any single allocation the Avro library makes while decoding (bytes, strings, block
/// reservations); above every legitimate value because records are capped far lower.
pub const MAX_ALLOCATION_BYTES: usize = 16 << 20;

/// Limits applied to every datum before it is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest framed record accepted, in bytes.
    pub max_record_bytes: usize,
    /// Deepest nesting of records, arrays, maps, unions and references.
    pub max_depth: usize,
    /// Most values (of any type, nested ones included) one datum may decode into; bounds the work
    /// and memory of values that take no bytes on the wire (nulls, empty records).
    pub max_values: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self { max_record_bytes: 4 << 20, max_depth: 64, max_values: 1 << 20 }
    }
}

/// Sets the Avro library's allocation cap. Call once at startup, before anything is decoded: the
/// library fixes the cap on first use, so a decode that ran earlier would have fixed its default
/// (512 MiB). Returns the cap in force.
pub fn init() -> usize {
    let cap = apache_avro::util::max_allocation_bytes(MAX_ALLOCATION_BYTES);
    if cap != MAX_ALLOCATION_BYTES {
        tracing::warn!(cap, wanted = MAX_ALLOCATION_BYTES, "the Avro allocation cap was fixed before codec init");
    }
    cap
}
