//! A pre-decoding check of an Avro binary datum against its writer schema.
//!
//! [`check_datum`] walks the datum exactly as the decoder would, without building any value: it
//! verifies every length and block count against the bytes actually left, bounds the nesting
//! depth (recursive schemas included) and the number of values the datum would decode into, and
//! refuses trailing bytes. Only a datum that passes reaches `apache_avro::from_avro_datum`, whose
//! allocations are then bounded by the datum's size. The walk itself allocates nothing that
//! depends on the input and recurses at most `max_depth` deep.

use std::borrow::Borrow;
use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, ResolvedSchema};

use crate::CodecError;
use crate::limits::DecodeLimits;

/// Checks that `datum` is a well-formed Avro binary encoding of `schema` within `limits`.
pub fn check_datum(schema: &Schema, datum: &[u8], limits: &DecodeLimits) -> Result<(), CodecError> {
    let names: HashMap<Name, &Schema> = if needs_names(schema, 0) {
        let resolved = ResolvedSchema::try_from(schema).map_err(|e| CodecError::InvalidSchema(e.to_string()))?;
        resolved.get_names().iter().map(|(k, v)| (k.clone(), *v)).collect()
    } else {
        HashMap::new()
    };
    walk_datum(schema, &names, datum, limits)
}

/// [`check_datum`] with the named types of `schema` already resolved (as
/// [`named_types`] returns them), so that a hot path does not resolve them for every datum.
pub fn check_datum_named(
    schema: &Schema,
    names: &HashMap<Name, Schema>,
    datum: &[u8],
    limits: &DecodeLimits,
) -> Result<(), CodecError> {
    walk_datum(schema, names, datum, limits)
}

/// The named types `schema` defines, by full name, for [`check_datum_named`]; empty when the
/// schema refers to none.
pub fn named_types(schema: &Schema) -> Result<HashMap<Name, Schema>, CodecError> {
    if !needs_names(schema, 0) {
        return Ok(HashMap::new());
    }
    let resolved = ResolvedSchema::try_from(schema).map_err(|e| CodecError::InvalidSchema(e.to_string()))?;
    Ok(resolved.get_names().iter().map(|(k, v)| (k.clone(), (*v).clone())).collect())
}

fn walk_datum<S: Borrow<Schema>>(
    schema: &Schema,
    names: &HashMap<Name, S>,
    datum: &[u8],
    limits: &DecodeLimits,
) -> Result<(), CodecError> {
    let mut walk = Walk { bytes: datum, pos: 0, values: 0, limits, names };
    walk.value(schema, 0)?;
    if walk.pos != datum.len() {
        return Err(walk.fail(format!("{} trailing bytes after the datum", datum.len() - walk.pos)));
    }
    Ok(())
}

/// Whether the schema uses named references (only then are names worth resolving).
fn needs_names(schema: &Schema, depth: usize) -> bool {
    if depth > 256 {
        return true;
    }
    match schema {
        Schema::Ref { .. } => true,
        Schema::Array(a) => needs_names(&a.items, depth + 1),
        Schema::Map(m) => needs_names(&m.types, depth + 1),
        Schema::Union(u) => u.variants().iter().any(|v| needs_names(v, depth + 1)),
        Schema::Record(r) => r.fields.iter().any(|f| needs_names(&f.schema, depth + 1)),
        _ => false,
    }
}

struct Walk<'a, S> {
    bytes: &'a [u8],
    pos: usize,
    values: u64,
    limits: &'a DecodeLimits,
    names: &'a HashMap<Name, S>,
}

impl<'a, S: Borrow<Schema>> Walk<'a, S> {
    fn fail(&self, detail: String) -> CodecError {
        CodecError::Limit { offset: self.pos, detail }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: u64, what: &str) -> Result<(), CodecError> {
        if n > self.remaining() as u64 {
            return Err(self.fail(format!("{what} of {n} bytes, but only {} bytes are left", self.remaining())));
        }
        self.pos += n as usize;
        Ok(())
    }

    /// A zig-zag varint of at most 10 bytes.
    fn long(&mut self) -> Result<i64, CodecError> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err(self.fail("the datum ends inside a number".into()));
            };
            self.pos += 1;
            raw |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(self.fail("a number longer than 10 bytes".into()))
    }

    fn length(&mut self, what: &str) -> Result<u64, CodecError> {
        let len = self.long()?;
        u64::try_from(len).map_err(|_| self.fail(format!("negative {what} length {len}")))
    }

    fn count_values(&mut self, n: u64) -> Result<(), CodecError> {
        self.values = self.values.saturating_add(n);
        if self.values > self.limits.max_values {
            return Err(self.fail(format!("more than {} values in one datum", self.limits.max_values)));
        }
        Ok(())
    }

    fn value(&mut self, schema: &Schema, depth: usize) -> Result<(), CodecError> {
        if depth > self.limits.max_depth {
            return Err(self.fail(format!("nesting deeper than {} levels", self.limits.max_depth)));
        }
        self.count_values(1)?;
        match schema {
            Schema::Null => Ok(()),
            Schema::Boolean => match self.bytes.get(self.pos) {
                Some(0 | 1) => self.take(1, "a boolean"),
                Some(other) => Err(self.fail(format!("boolean byte {other}"))),
                None => Err(self.fail("the datum ends inside a boolean".into())),
            },
            Schema::Int
            | Schema::Long
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => self.long().map(drop),
            Schema::Float => self.take(4, "a float"),
            Schema::Double => self.take(8, "a double"),
            Schema::Duration => self.take(12, "a duration"),
            Schema::Bytes | Schema::String | Schema::Uuid | Schema::BigDecimal => {
                let len = self.length("string or bytes")?;
                self.take(len, "a string or bytes")
            }
            Schema::Fixed(f) => self.take(f.size as u64, "a fixed"),
            Schema::Decimal(d) => self.value(&d.inner, depth + 1),
            Schema::Enum(e) => {
                let index = self.long()?;
                if usize::try_from(index).map_or(true, |i| i >= e.symbols.len()) {
                    return Err(self.fail(format!("enum index {index} of {} symbols", e.symbols.len())));
                }
                Ok(())
            }
            Schema::Union(u) => {
                let index = self.long()?;
                let variant = usize::try_from(index).ok().and_then(|i| u.variants().get(i));
                let Some(variant) = variant else {
                    return Err(self.fail(format!("union branch {index} of {}", u.variants().len())));
                };
                self.value(variant, depth + 1)
            }
            Schema::Record(r) => r.fields.iter().try_for_each(|f| self.value(&f.schema, depth + 1)),
            Schema::Array(a) => self.blocks(|w| w.value(&a.items, depth + 1)),
            Schema::Map(m) => self.blocks(|w| {
                let len = w.length("map key")?;
                w.take(len, "a map key")?;
                w.value(&m.types, depth + 1)
            }),
            Schema::Ref { name } => {
                let names: &'a HashMap<Name, S> = self.names;
                let Some(target) = names.get(name).map(Borrow::borrow) else {
                    return Err(self.fail(format!("reference to unknown type {}", name.fullname(None))));
                };
                self.value(target, depth + 1)
            }
        }
    }

    /// The blocks of an array or map: a count (negative: followed by the block's byte size), the
    /// items, until a zero count.
    fn blocks(&mut self, mut item: impl FnMut(&mut Self) -> Result<(), CodecError>) -> Result<(), CodecError> {
        loop {
            let raw = self.long()?;
            let count = match raw {
                0 => return Ok(()),
                n if n < 0 => {
                    let size = self.length("block")?;
                    if size > self.remaining() as u64 {
                        return Err(
                            self.fail(format!("a block of {size} bytes, but only {} are left", self.remaining()))
                        );
                    }
                    n.unsigned_abs()
                }
                n => n as u64,
            };
            // Checked before looping, so a count of 2^62 fails at once instead of after the budget.
            if self.values.saturating_add(count) > self.limits.max_values {
                return Err(self.fail(format!("a block of {count} items exceeds {} values", self.limits.max_values)));
            }
            for _ in 0..count {
                item(self)?;
            }
        }
    }
}

#[cfg(test)]
mod tests;
