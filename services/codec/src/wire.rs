//! The Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary datum.

use crate::CodecError;

/// The magic byte of the Confluent framing.
pub const MAGIC: u8 = 0;

/// Frames an Avro datum with its schema id.
pub fn frame(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + datum.len());
    out.push(MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

/// Splits a framed record into its schema id and datum.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), CodecError> {
    match bytes {
        [MAGIC, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [other, ..] if *other != MAGIC => Err(CodecError::Framing(format!("magic byte is {other}, expected 0"))),
        _ => Err(CodecError::Framing(format!("record of {} bytes is shorter than the 5-byte header", bytes.len()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let framed = frame(0x0102_0304, b"abc");
        assert_eq!(&framed[..5], &[0, 1, 2, 3, 4]);
        assert_eq!(unframe(&framed).unwrap(), (0x0102_0304, &b"abc"[..]));
    }

    #[test]
    fn rejects_bad_frames() {
        assert!(unframe(&[1, 0, 0, 0, 0]).is_err());
        assert!(unframe(&[0, 0]).is_err());
        assert!(unframe(&[]).is_err());
    }
}
