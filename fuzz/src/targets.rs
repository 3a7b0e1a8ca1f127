//! What is fuzzed: contract parsing (a whole plugin package through validation, then the raw
//! envelope the host would register) and datum decoding (the guard, the Avro decoder, the raw
//! envelope and the plugin's mapping, as the mapper runs them). Seeds come from the payload
//! fixtures, the simulator plugin, and the known attack shapes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use apache_avro::Schema;
use tessera_codec::DecodeLimits;
use tessera_codec::guard::check_datum;
use tessera_codec::raw::{self, RawObservation, envelope_schema_text};
use tessera_model::Catalog;
use tessera_model::mapping::MappingSpec;
use tessera_model::package::{PackageFiles, validate};

/// A package to mutate.
#[derive(Debug, Clone)]
pub struct PackageSeed {
    /// Its files.
    pub files: PackageFiles,
}

/// A schema with a valid datum to mutate, and the mapping to run on what decodes.
#[derive(Clone)]
pub struct DatumSeed {
    /// Writer schema.
    pub schema: Arc<Schema>,
    /// The mapping, for raw envelopes.
    pub mapping: Option<Arc<MappingSpec>>,
    /// A well-formed datum.
    pub datum: Vec<u8>,
}

/// Where the repository's packages are.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_package(dir: &Path) -> Option<PackageFiles> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let mut contracts: Vec<(String, String)> = std::fs::read_dir(dir.join("contract"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "avsc"))
        .filter_map(|e| {
            Some((
                format!("contract/{}", e.file_name().to_string_lossy()),
                read(&format!("contract/{}", e.file_name().to_string_lossy()))?,
            ))
        })
        .collect();
    contracts.sort();
    Some(PackageFiles {
        manifest: read("plugin.toml"),
        contracts,
        mapping: read("mapping.toml"),
        actions: read("actions.toml"),
        ui: read("ui.toml"),
    })
}

fn package_dirs() -> Vec<PathBuf> {
    let fixtures = repo().join("tests/fixtures/payloads");
    let mut dirs: Vec<PathBuf> = ["zigbee2mqtt", "ha-discovery", "modbus"].iter().map(|n| fixtures.join(n)).collect();
    dirs.push(repo().join("plugins/simulator"));
    dirs
}

/// Seed packages: the payload fixtures and the simulator.
pub fn package_seeds() -> Vec<PackageSeed> {
    package_dirs().iter().filter_map(|d| read_package(d)).map(|files| PackageSeed { files }).collect()
}

/// The known attack shapes (recursive types, nested arrays of nulls, maps, logical types), each
/// with a small valid datum.
const HOSTILE: &[(&str, &[u8])] = &[
    (r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#, &[2, 2, 2, 0]),
    (r#"{"type":"array","items":{"type":"array","items":"null"}}"#, &[2, 2, 0, 0]),
    (r#"{"type":"map","values":{"type":"map","values":"string"}}"#, &[2, 2, b'k', 2, 2, b'j', 2, b'v', 0, 0]),
    (
        r#"{"type":"record","name":"L","fields":[
            {"name":"f","type":{"type":"fixed","name":"F","size":4}},
            {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
            {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
            {"name":"u","type":{"type":"string","logicalType":"uuid"}},
            {"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}},
            {"name":"x","type":["null","double","string"]}]}"#,
        &[
            1, 2, 3, 4, 2, 2, 0x30, 0x39, 72, b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'-', b'0', b'0', b'0',
            b'0', b'-', b'0', b'0', b'0', b'0', b'-', b'0', b'0', b'0', b'0', b'-', b'0', b'0', b'0', b'0', b'0', b'0',
            b'0', b'0', b'0', b'0', b'0', b'0', 4, 0,
        ],
    ),
];

/// Seed datums: the fixture messages in their envelopes, and the attack shapes.
pub fn datum_seeds() -> Vec<DatumSeed> {
    let mut out = Vec::new();
    for dir in package_dirs() {
        let Some(files) = read_package(&dir) else { continue };
        let Ok(package) = validate(&files, Catalog::builtin()) else { continue };
        let id = &package.manifest.id;
        let Ok(schema) = Schema::parse_str(&envelope_schema_text(id, &package.contract_texts)) else { continue };
        let mapping = Arc::new(package.mapping.clone());
        let messages = std::fs::read_dir(dir.join("messages")).into_iter().flatten().filter_map(|e| e.ok());
        for entry in messages {
            let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            let obs = RawObservation {
                plugin_id: id.clone(),
                observed_at_ms: 1,
                received_at_ms: 2,
                record: json["record"].as_str().unwrap_or_default().to_owned(),
                payload: json["payload"].clone(),
            };
            let Ok(value) = raw::to_value(&schema, &obs) else { continue };
            let Ok(datum) = apache_avro::to_avro_datum(&schema, value) else { continue };
            out.push(DatumSeed { schema: Arc::new(schema.clone()), mapping: Some(mapping.clone()), datum });
        }
    }
    for (text, datum) in HOSTILE {
        if let Ok(schema) = Schema::parse_str(text) {
            out.push(DatumSeed { schema: Arc::new(schema), mapping: None, datum: datum.to_vec() });
        }
    }
    out
}

/// Validates a package and, when it passes, builds and fingerprints its raw envelope. Returns
/// whether the package was accepted.
pub fn package(files: &PackageFiles) -> bool {
    let Ok(package) = validate(files, Catalog::builtin()) else { return false };
    let text = envelope_schema_text(&package.manifest.id, &package.contract_texts);
    if let Ok(schema) = Schema::parse_str(&text) {
        let _ = tessera_codec::registry::schema_id(&schema);
        let _ = schema.canonical_form();
    }
    true
}

/// Decodes a datum as the codec does (guard, then the library), then as the mapper does (raw
/// envelope, mapping). Returns whether it decoded.
pub fn datum(seed: &DatumSeed, bytes: &[u8], limits: &DecodeLimits) -> bool {
    if check_datum(&seed.schema, bytes, limits).is_err() {
        return false;
    }
    let Ok(value) = apache_avro::from_avro_datum(&seed.schema, &mut &bytes[..], None) else { return false };
    let json = tessera_codec::avro_json::to_json(&value);
    let _ = serde_json::to_vec(&json);
    if let Some(mapping) = &seed.mapping
        && let Ok(obs) = raw::from_value(&seed.schema, &value)
    {
        let _ = mapping.apply(Catalog::builtin(), &obs.record, &obs.payload);
    }
    true
}
