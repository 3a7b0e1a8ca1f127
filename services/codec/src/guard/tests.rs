//! Regression tests for the known attack shapes against the Avro decoder: each must be refused by
//! the guard quickly, without allocating from the attacker's numbers, and a well-formed datum must
//! pass and decode as before.

use std::time::{Duration, Instant};

use apache_avro::Schema;
use apache_avro::types::Value;

use super::*;

fn zigzag(n: i64) -> Vec<u8> {
    let mut v = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
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

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn refused(schema: &str, datum: &[u8]) -> String {
    crate::limits::init();
    let schema = Schema::parse_str(schema).unwrap();
    let started = Instant::now();
    let err = check_datum(&schema, datum, &DecodeLimits::default()).expect_err("hostile datum must be refused");
    assert!(started.elapsed() < Duration::from_secs(2), "refusing took {:?}", started.elapsed());
    assert!(matches!(err, CodecError::Limit { .. }), "{err}");
    err.to_string()
}

#[test]
fn huge_array_block_count_from_a_few_bytes() {
    let err = refused(r#"{"type":"array","items":"long"}"#, &zigzag(1 << 40));
    assert!(err.contains("exceeds"), "{err}");
    // A count within the value budget still needs a byte per long.
    let err = refused(r#"{"type":"array","items":"long"}"#, &cat(&[zigzag(100_000), vec![2; 10]]));
    assert!(err.contains("ends inside a number"), "{err}");
}

#[test]
fn huge_map_block_count_from_a_few_bytes() {
    refused(r#"{"type":"map","values":"null"}"#, &zigzag(i64::MAX));
    refused(r#"{"type":"map","values":"string"}"#, &cat(&[zigzag(1 << 30), zigzag(1), b"k".to_vec()]));
}

#[test]
fn arrays_of_nulls_take_no_bytes_but_count_against_the_budget() {
    // 2^60 nulls encode as 9 bytes; the library would loop (and reserve) for each of them.
    let err = refused(r#"{"type":"array","items":"null"}"#, &cat(&[zigzag(1 << 60), zigzag(0)]));
    assert!(err.contains("values"), "{err}");
    // Nested: many small blocks of many nulls each, also bounded.
    let mut datum = zigzag(1 << 20);
    for _ in 0..4 {
        datum.extend(zigzag(1 << 19));
        datum.extend(zigzag(0));
    }
    refused(r#"{"type":"array","items":{"type":"array","items":"null"}}"#, &datum);
}

#[test]
fn deep_nesting_through_a_recursive_type_is_bounded() {
    let schema = r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#;
    // Branch 1 (`Node`) a million times: two bytes per level would otherwise overflow the stack.
    let mut datum = vec![2u8; 1_000_000];
    datum.push(0);
    let err = refused(schema, &datum);
    assert!(err.contains("nesting deeper"), "{err}");
    let nested_arrays = r#"{"type":"array","items":{"type":"array","items":{"type":"array","items":"null"}}}"#;
    assert!(
        check_datum(&Schema::parse_str(nested_arrays).unwrap(), &[2, 2, 2, 0, 0, 0], &DecodeLimits::default()).is_ok()
    );
    let shallow = DecodeLimits { max_depth: 2, ..DecodeLimits::default() };
    assert!(check_datum(&Schema::parse_str(nested_arrays).unwrap(), &[2, 2, 2, 0, 0, 0], &shallow).is_err());
}

#[test]
fn huge_and_negative_lengths() {
    refused(r#""string""#, &zigzag(1 << 50));
    refused(r#""bytes""#, &cat(&[zigzag(1_000_000), b"abc".to_vec()]));
    let err = refused(r#""string""#, &zigzag(-5));
    assert!(err.contains("negative"), "{err}");
    // A negative block count is followed by the block's byte size, which must not be negative.
    refused(r#"{"type":"array","items":"long"}"#, &cat(&[zigzag(-2), zigzag(-7), vec![2, 4], zigzag(0)]));
    refused(r#"{"type":"array","items":"long"}"#, &cat(&[zigzag(-2), zigzag(1 << 40), vec![2, 4], zigzag(0)]));
    refused(r#"{"type":"enum","name":"E","symbols":["a"]}"#, &zigzag(-1));
    refused(r#"["null","long"]"#, &zigzag(7));
    refused(r#"{"type":"fixed","name":"F","size":1000000000000}"#, b"abc");
}

#[test]
fn truncated_overlong_and_trailing_input() {
    refused(r#""long""#, &[0xff; 11]);
    refused(r#""double""#, &[0, 0, 0]);
    refused(r#""boolean""#, &[7]);
    refused(r#""long""#, &[2, 0]);
}

#[test]
fn well_formed_datums_pass_and_decode_unchanged() {
    let text = r#"{"type":"record","name":"R","namespace":"t","fields":[
        {"name":"id","type":"string"},
        {"name":"n","type":["null","long"]},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"m","type":{"type":"map","values":"double"}},
        {"name":"e","type":{"type":"enum","name":"E","symbols":["a","b"]}},
        {"name":"f","type":{"type":"fixed","name":"F","size":2}},
        {"name":"child","type":["null","R"]}]}"#;
    let schema = Schema::parse_str(text).unwrap();
    let leaf = Value::Record(vec![
        ("id".into(), Value::String("leaf".into())),
        ("n".into(), Value::Union(0, Box::new(Value::Null))),
        ("tags".into(), Value::Array(vec![])),
        ("m".into(), Value::Map(Default::default())),
        ("e".into(), Value::Enum(0, "a".into())),
        ("f".into(), Value::Fixed(2, vec![1, 2])),
        ("child".into(), Value::Union(0, Box::new(Value::Null))),
    ]);
    let root = Value::Record(vec![
        ("id".into(), Value::String("root".into())),
        ("n".into(), Value::Union(1, Box::new(Value::Long(-42)))),
        ("tags".into(), Value::Array(vec![Value::String("x".into()), Value::String("y".into())])),
        ("m".into(), Value::Map([("k".to_string(), Value::Double(1.5))].into_iter().collect())),
        ("e".into(), Value::Enum(1, "b".into())),
        ("f".into(), Value::Fixed(2, vec![3, 4])),
        ("child".into(), Value::Union(1, Box::new(leaf))),
    ]);
    let bytes = apache_avro::to_avro_datum(&schema, root.clone()).unwrap();
    check_datum(&schema, &bytes, &DecodeLimits::default()).unwrap();
    assert_eq!(apache_avro::from_avro_datum(&schema, &mut &bytes[..], None).unwrap(), root);
    // Blocks with a negative count (and a byte size) are legal Avro and pass too.
    let array = Schema::parse_str(r#"{"type":"array","items":"long"}"#).unwrap();
    let blocked = cat(&[zigzag(-2), zigzag(2), zigzag(1), zigzag(2), zigzag(0)]);
    check_datum(&array, &blocked, &DecodeLimits::default()).unwrap();
    assert_eq!(
        apache_avro::from_avro_datum(&array, &mut &blocked[..], None).unwrap(),
        Value::Array(vec![Value::Long(1), Value::Long(2)])
    );
}
