//! Mutators: byte-level (for Avro datums) and structure-aware (for Avro schemas, as JSON).

use serde_json::{Value as Json, json};

use crate::rng::Rng;

/// Integers at the edges decoders get wrong: zero, signs, 7-bit varint steps, 32/64-bit limits,
/// and the counts that make a few bytes ask for gigabytes.
pub const INTERESTING: &[i64] = &[
    0,
    1,
    -1,
    2,
    63,
    64,
    -64,
    -65,
    127,
    128,
    255,
    256,
    65_535,
    i32::MAX as i64,
    i32::MIN as i64,
    1 << 31,
    1 << 32,
    1 << 40,
    1 << 60,
    i64::MAX,
    i64::MIN,
];

/// The Avro zig-zag varint of `n`.
pub fn zigzag(n: i64) -> Vec<u8> {
    let mut v = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::with_capacity(10);
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Applies one to four random byte-level mutations to `input`; `others` feed splicing.
pub fn bytes(rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(9) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = *rng.pick(&[0u8, 1, 2, 0x7f, 0x80, 0xfe, 0xff]);
            }
            2 => {
                let varint = zigzag(*rng.pick(INTERESTING));
                let end = (at + rng.below(3)).min(out.len());
                out.splice(at..end, varint);
            }
            3 => {
                let n = 1 + rng.below(8);
                let noise: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                out.splice(at..at, noise);
            }
            4 if !out.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(out.len());
                out.drain(at.min(end)..end);
            }
            5 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(16)).min(out.len());
                let chunk = out[start..end].to_vec();
                for _ in 0..1 + rng.below(4) {
                    out.splice(at..at, chunk.iter().copied());
                }
            }
            6 if !others.is_empty() => {
                let other = rng.pick(others);
                let from = rng.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            7 => out.truncate(at),
            _ => out.extend(zigzag(*rng.pick(INTERESTING))),
        }
    }
    out
}

const TYPES: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string", "record", "enum", "array", "map", "fixed",
];

/// A random schema-like JSON fragment.
fn fragment(rng: &mut Rng, depth: usize) -> Json {
    if depth > 4 || rng.one_in(3) {
        return json!(rng.pick(TYPES));
    }
    match rng.below(8) {
        0 => json!({"type": "array", "items": fragment(rng, depth + 1)}),
        1 => json!({"type": "map", "values": fragment(rng, depth + 1)}),
        2 => json!([fragment(rng, depth + 1), fragment(rng, depth + 1)]),
        3 => json!({"type": "fixed", "name": format!("F{}", rng.below(4)), "size": rng.pick(INTERESTING)}),
        4 => {
            json!({"type": "enum", "name": format!("E{}", rng.below(4)), "symbols": ["A", "B", rng.pick(&["A", "", "1x"])]})
        }
        5 => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": rng.pick(INTERESTING), "scale": rng.pick(INTERESTING)})
        }
        6 => {
            json!({"type": rng.pick(&["string", "long", "int", "fixed"]), "logicalType": rng.pick(&["uuid", "timestamp-millis", "date", "duration", "big-decimal"])})
        }
        _ => json!({"type": "record", "name": format!("R{}", rng.below(4)), "fields": [
            {"name": "a", "type": fragment(rng, depth + 1)},
            {"name": rng.pick(&["b", "a", "next"]), "type": fragment(rng, depth + 1), "default": null}]}),
    }
}

/// Visits a random node of `value` (pre-order index `target`) and replaces it via `f`.
fn replace_nth(value: &mut Json, target: &mut usize, f: &mut dyn FnMut(&mut Json)) -> bool {
    if *target == 0 {
        f(value);
        return true;
    }
    *target -= 1;
    match value {
        Json::Array(items) => items.iter_mut().any(|v| replace_nth(v, target, f)),
        Json::Object(map) => map.values_mut().any(|v| replace_nth(v, target, f)),
        _ => false,
    }
}

fn count(value: &Json) -> usize {
    1 + match value {
        Json::Array(items) => items.iter().map(count).sum(),
        Json::Object(map) => map.values().map(count).sum(),
        _ => 0,
    }
}

/// Mutates a schema text: mostly structurally (swap a node for a random fragment, a recursive
/// reference, an extreme number, deep nesting), sometimes as raw bytes.
pub fn schema_text(rng: &mut Rng, text: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Json>(text) else {
        return String::from_utf8_lossy(&bytes(rng, text.as_bytes(), &[])).into_owned();
    };
    if rng.one_in(6) {
        return String::from_utf8_lossy(&bytes(rng, text.as_bytes(), &[])).into_owned();
    }
    for _ in 0..1 + rng.below(3) {
        let mut target = rng.below(count(&value));
        let choice = rng.below(6);
        let depth = 1 + rng.below(300);
        let mut seed = Rng::new(rng.next_u64());
        replace_nth(&mut value, &mut target, &mut |node| {
            *node = match choice {
                0 | 1 => fragment(&mut seed, 0),
                2 => {
                    json!(seed.pick(&["R0", "Observation", "tessera.simulator.Observation", "DeviceState", "Payload"]))
                }
                3 => json!(seed.pick(INTERESTING)),
                4 => {
                    let mut nested = node.clone();
                    for _ in 0..depth {
                        nested = json!({"type": "array", "items": nested});
                    }
                    nested
                }
                _ => Json::Null,
            };
        });
    }
    value.to_string()
}
