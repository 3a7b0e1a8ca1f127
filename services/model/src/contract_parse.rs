//! Parsing a plugin's contract schemas without trusting the Avro library not to panic.
//!
//! `apache_avro::Schema::parse_list` (0.21) panics ("One of the input schemas was unexpectedly
//! not parsed") when a top-level schema names itself but declares its type as a nested named
//! schema, e.g. `{"name": "A", "type": {"type": "fixed", "name": "F", "size": 4}}`; the fuzz
//! harness found it. Contracts come from plugin packages, which may be hostile: a malformed one
//! must be rejected, never take the validator (or the host) down. `Schema::parse_str` has a
//! similar defect (an `unwrap` on an invalid nested name); both are wrapped here.

use std::panic::{AssertUnwindSafe, catch_unwind};

use apache_avro::Schema;

/// Parses schema texts that may reference each other, as `Schema::parse_list`, turning a panic
/// of the library into an error.
pub fn parse_list(texts: &[String]) -> Result<Vec<Schema>, String> {
    match catch_unwind(AssertUnwindSafe(|| Schema::parse_list(texts.iter().map(String::as_str)))) {
        Ok(Ok(schemas)) => Ok(schemas),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(format!("the Avro library cannot parse this contract ({})", panic_text(panic))),
    }
}

/// Parses one schema text, as `Schema::parse_str`, turning a panic of the library (0.21 unwraps
/// an invalid name in some positions) into an error.
pub fn parse_str(text: &str) -> Result<Schema, apache_avro::Error> {
    catch_unwind(AssertUnwindSafe(|| Schema::parse_str(text))).unwrap_or_else(|panic| {
        let detail = format!("the Avro library cannot parse this schema ({})", panic_text(panic));
        let json = <serde_json::Error as serde::de::Error>::custom(detail);
        Err(apache_avro::Error::new(apache_avro::error::Details::ParseSchemaJson(json)))
    })
}

fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_schema_typed_as_another_named_schema_is_an_error_not_a_panic() {
        let text = r#"{"name":"A","namespace":"p","type":{"type":"fixed","name":"F","size":4}}"#.to_string();
        assert!(parse_list(&[text]).is_err());
        let good = r#"{"type":"record","name":"A","namespace":"p","fields":[{"name":"x","type":"int"}]}"#.to_string();
        assert_eq!(parse_list(&[good]).unwrap().len(), 1);
    }

    #[test]
    fn an_invalid_name_in_a_field_type_is_an_error_not_a_panic() {
        // Found by the fuzz harness: apache-avro 0.21 unwraps the name of a nested named type.
        let text = r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"enum","name":"Kin\u007f","symbols":["A"]}}]}"#;
        assert!(parse_str(text).is_err());
        assert!(parse_list(&[text.to_string()]).is_err());
    }
}
