//! The backward-compatibility rule: a new contract version must read everything the previous one
//! wrote. "The previous one" is the latest envelope registered for the plugin's raw subject, i.e.
//! the contract the raw topic was last written with.

use apache_avro::Schema;
use tessera_codec::messages::Codec;
use tessera_model::Violation;
use tessera_model::package::{Package, check_compatibility};

use crate::HostError;

/// The record types of an envelope's payload union.
pub fn payload_records(envelope: &Schema) -> Vec<Schema> {
    let Schema::Record(r) = envelope else { return Vec::new() };
    match r.fields.iter().find(|f| f.name == "payload").map(|f| &f.schema) {
        Some(Schema::Union(u)) => u.variants().to_vec(),
        _ => Vec::new(),
    }
}

/// Checks `package` against the contract last registered under `subject`; `new_id` is the id of
/// the envelope about to be registered (equal ids mean an unchanged contract).
pub async fn check_against_registry(
    codec: &Codec,
    subject: &str,
    new_id: u32,
    package: &Package,
) -> Result<Vec<Violation>, HostError> {
    let versions = codec.registry().versions(subject).await?;
    let Some(last) = versions.last() else { return Ok(Vec::new()) };
    if last.id == new_id {
        return Ok(Vec::new());
    }
    let previous = codec.registry().get(last.id).await?;
    Ok(check_compatibility(&payload_records(&previous.schema), &package.contract, &package.contract_paths))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_codec::raw::envelope_schema_text;

    #[test]
    fn the_payload_records_of_an_envelope_are_its_contract() {
        let contract =
            vec![r#"{"type":"record","name":"A","namespace":"p","fields":[{"name":"x","type":"int"}]}"#.to_string()];
        let envelope = Schema::parse_str(&envelope_schema_text("p", &contract)).unwrap();
        let records = payload_records(&envelope);
        assert_eq!(records.len(), 1);
        let widened = Schema::parse_list([
            r#"{"type":"record","name":"A","namespace":"p","fields":[{"name":"x","type":"long"}]}"#,
        ])
        .unwrap();
        assert!(check_compatibility(&records, &widened, &["contract/a.avsc".into()]).is_empty());
    }
}
