//! The on-disk format of segment files.
//!
//! ```text
//! segment := header batch*
//! header  := magic "TSLG" | version u16 | flags u16 (0) | base_offset u64 | crc u32      (20 bytes)
//! batch   := len u32 | crc u32 | base_offset u64 | count u32 | reserved u32 (0) | record{count}
//! record  := timestamp_ms i64 | key_len i32 (-1 = no key) | value_len u32 | key | value
//! ```
//!
//! All integers are little endian. `len` is the whole batch including its 24-byte header; the
//! batch `crc` is CRC-32 (IEEE, `crc32fast`) over the `len` field followed by every byte after
//! the `crc` field, so a damaged length is caught too. The header `crc` covers its first 16 bytes.
//!
//! The batch is the unit of durability: the writer fsyncs after every batch before it writes the
//! next one, so after a crash at most the final batch of the newest segment can be torn. That is
//! what lets recovery tell a torn write (nothing valid after the damage) from real corruption
//! (valid data after the damage).

use crate::{NewRecord, Record};

/// Segment file magic.
pub(crate) const SEGMENT_MAGIC: [u8; 4] = *b"TSLG";
/// Segment format version written by this code.
pub(crate) const SEGMENT_VERSION: u16 = 1;
/// Size of the segment header.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 20;
/// Size of a batch header.
pub(crate) const BATCH_HEADER_LEN: usize = 24;
/// Fixed part of each record inside a batch.
pub(crate) const RECORD_HEADER_LEN: usize = 16;
/// Hard upper bound on a batch; anything larger on disk is treated as damage. Independent of the
/// configured record limit so lowering that limit never makes existing data unreadable.
pub(crate) const MAX_BATCH_LEN: usize = 1 << 28;
/// The writer closes a batch once it reaches this size (a single larger record gets its own
/// batch). Keeps the cost of reading one record, which verifies its whole batch, bounded.
pub(crate) const TARGET_BATCH_LEN: usize = 1 << 20;

/// Encodes a segment header for a segment starting at `base_offset`.
pub(crate) fn encode_segment_header(base_offset: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut out = [0u8; SEGMENT_HEADER_LEN as usize];
    out[0..4].copy_from_slice(&SEGMENT_MAGIC);
    out[4..6].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    out[6..8].copy_from_slice(&0u16.to_le_bytes());
    out[8..16].copy_from_slice(&base_offset.to_le_bytes());
    let crc = crc32fast::hash(&out[0..16]);
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a segment header against the base offset its file name promises.
pub(crate) fn check_segment_header(buf: &[u8], expected_base: u64) -> Result<(), String> {
    if buf.len() < SEGMENT_HEADER_LEN as usize {
        return Err(format!("segment header is {} bytes, expected {SEGMENT_HEADER_LEN}", buf.len()));
    }
    if buf[0..4] != SEGMENT_MAGIC {
        return Err(format!("bad segment magic {:02x?}", &buf[0..4]));
    }
    let stored_crc = u32_at(buf, 16);
    let crc = crc32fast::hash(&buf[0..16]);
    if stored_crc != crc {
        return Err(format!("segment header checksum mismatch (stored {stored_crc:08x}, computed {crc:08x})"));
    }
    let version = u16::from_le_bytes([buf[4], buf[5]]);
    if version != SEGMENT_VERSION {
        return Err(format!("unsupported segment format version {version}"));
    }
    let base = u64_at(buf, 8);
    if base != expected_base {
        return Err(format!("segment header says base offset {base}, file name says {expected_base}"));
    }
    Ok(())
}

/// The fixed header of a batch, parsed but not yet verified.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchHeader {
    /// Whole batch length in bytes.
    pub len: usize,
    /// Offset of the first record.
    pub base_offset: u64,
    /// Number of records.
    pub count: u32,
    reserved: u32,
}

impl BatchHeader {
    /// Parses the first [`BATCH_HEADER_LEN`] bytes of `buf` (which must be that long).
    pub(crate) fn parse(buf: &[u8]) -> BatchHeader {
        BatchHeader {
            len: u32_at(buf, 0) as usize,
            base_offset: u64_at(buf, 8),
            count: u32_at(buf, 16),
            reserved: u32_at(buf, 20),
        }
    }

    /// Cheap structural checks that do not need the batch body.
    pub(crate) fn plausible(&self) -> Result<(), String> {
        if self.len < BATCH_HEADER_LEN + RECORD_HEADER_LEN || self.len > MAX_BATCH_LEN {
            return Err(format!("implausible batch length {}", self.len));
        }
        let max_count = (self.len - BATCH_HEADER_LEN) / RECORD_HEADER_LEN;
        if self.count == 0 || self.count as usize > max_count {
            return Err(format!("implausible record count {} for a {}-byte batch", self.count, self.len));
        }
        if self.reserved != 0 {
            return Err(format!("reserved batch field is {:08x}, not 0", self.reserved));
        }
        Ok(())
    }

    /// Offset after the last record of the batch.
    pub(crate) fn end_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }
}

/// Size a record takes inside a batch.
pub(crate) fn encoded_record_len(record: &NewRecord) -> usize {
    RECORD_HEADER_LEN + record.key.as_ref().map_or(0, Vec::len) + record.value.len()
}

/// Encodes `records` as one batch whose first record gets `base_offset`.
pub(crate) fn encode_batch(base_offset: u64, records: &[&NewRecord]) -> Vec<u8> {
    let len = BATCH_HEADER_LEN + records.iter().map(|r| encoded_record_len(r)).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // crc, filled in below
    out.extend_from_slice(&base_offset.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for record in records {
        out.extend_from_slice(&record.timestamp_ms.to_le_bytes());
        match &record.key {
            Some(key) => out.extend_from_slice(&(key.len() as i32).to_le_bytes()),
            None => out.extend_from_slice(&(-1i32).to_le_bytes()),
        }
        out.extend_from_slice(&(record.value.len() as u32).to_le_bytes());
        if let Some(key) = &record.key {
            out.extend_from_slice(key);
        }
        out.extend_from_slice(&record.value);
    }
    let crc = batch_crc(&out);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

fn batch_crc(batch: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&batch[0..4]);
    hasher.update(&batch[8..]);
    hasher.finalize()
}

/// Verifies a complete batch (checksum and record structure) without allocating records.
pub(crate) fn verify_batch(batch: &[u8]) -> Result<BatchHeader, String> {
    walk_batch(batch, |_, _, _, _| {})
}

/// Verifies a complete batch and appends its records with offset `>= from` to `out`, at most
/// `max` in total in `out`.
pub(crate) fn decode_batch(
    batch: &[u8],
    topic: &str,
    partition: u32,
    from: u64,
    max: usize,
    out: &mut Vec<Record>,
) -> Result<(), String> {
    walk_batch(batch, |offset, timestamp_ms, key, value| {
        if offset >= from && out.len() < max {
            out.push(Record {
                topic: topic.to_owned(),
                partition,
                offset,
                timestamp_ms,
                key: key.map(<[u8]>::to_vec),
                value: value.to_vec(),
            });
        }
    })
    .map(|_| ())
}

/// Checks the checksum, then walks every record, calling `visit(offset, timestamp, key, value)`.
/// Nothing is visited unless the checksum matches.
fn walk_batch(batch: &[u8], mut visit: impl FnMut(u64, i64, Option<&[u8]>, &[u8])) -> Result<BatchHeader, String> {
    if batch.len() < BATCH_HEADER_LEN {
        return Err("batch shorter than its header".to_owned());
    }
    let header = BatchHeader::parse(batch);
    header.plausible()?;
    if header.len != batch.len() {
        return Err(format!("batch length field {} does not match {} bytes read", header.len, batch.len()));
    }
    let stored = u32_at(batch, 4);
    let computed = batch_crc(batch);
    if stored != computed {
        return Err(format!("batch checksum mismatch (stored {stored:08x}, computed {computed:08x})"));
    }
    let mut pos = BATCH_HEADER_LEN;
    for i in 0..u64::from(header.count) {
        if batch.len() - pos < RECORD_HEADER_LEN {
            return Err(format!("record {i} of the batch is cut short"));
        }
        let timestamp_ms = u64_at(batch, pos) as i64;
        let key_len = u32_at(batch, pos + 8) as i32;
        let value_len = u32_at(batch, pos + 12) as usize;
        pos += RECORD_HEADER_LEN;
        let key_bytes = match key_len {
            -1 => 0,
            n if n >= 0 => n as usize,
            n => return Err(format!("record {i} has invalid key length {n}")),
        };
        if batch.len() - pos < key_bytes || batch.len() - pos - key_bytes < value_len {
            return Err(format!("record {i} runs past the end of its batch"));
        }
        let key = (key_len >= 0).then(|| &batch[pos..pos + key_bytes]);
        pos += key_bytes;
        let value = &batch[pos..pos + value_len];
        pos += value_len;
        visit(header.base_offset + i, timestamp_ms, key, value);
    }
    if pos != batch.len() {
        return Err(format!("{} unexpected bytes after the last record of the batch", batch.len() - pos));
    }
    Ok(header)
}

fn u32_at(buf: &[u8], pos: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&buf[pos..pos + 4]);
    u32::from_le_bytes(bytes)
}

fn u64_at(buf: &[u8], pos: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[pos..pos + 8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: Option<&str>, value: &str, ts: i64) -> NewRecord {
        NewRecord { key: key.map(|k| k.as_bytes().to_vec()), value: value.as_bytes().to_vec(), timestamp_ms: ts }
    }

    #[test]
    fn batch_round_trip() {
        let records = [rec(Some("k"), "v1", 1), rec(None, "", -5), rec(Some(""), "v3", 3)];
        let refs: Vec<&NewRecord> = records.iter().collect();
        let batch = encode_batch(40, &refs);
        let header = verify_batch(&batch).unwrap();
        assert_eq!((header.base_offset, header.count), (40, 3));
        let mut out = Vec::new();
        decode_batch(&batch, "t", 2, 41, 10, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].offset, 41);
        assert_eq!(out[0].key, None);
        assert_eq!(out[0].timestamp_ms, -5);
        assert_eq!(out[1].key, Some(Vec::new()));
        assert_eq!(out[1].value, b"v3");
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let records = [rec(Some("key"), "value", 7)];
        let refs: Vec<&NewRecord> = records.iter().collect();
        let batch = encode_batch(0, &refs);
        for bit in 0..batch.len() * 8 {
            let mut damaged = batch.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            // A flipped length makes the slice the wrong size, which is caught as well.
            assert!(verify_batch(&damaged).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn segment_header_checks() {
        let header = encode_segment_header(123);
        check_segment_header(&header, 123).unwrap();
        assert!(check_segment_header(&header, 124).is_err());
        let mut damaged = header;
        damaged[9] ^= 0x10;
        assert!(check_segment_header(&damaged, 123).is_err());
    }
}
