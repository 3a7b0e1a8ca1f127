//! Contract validation of a plugin package: every check runs and every violation is reported,
//! never just the first.

use apache_avro::Schema;
use apache_avro::schema::{RecordSchema, UnionSchema};

use crate::actions::ActionsSpec;
use crate::catalog::{CapabilityKind, ValueType};
use crate::manifest::{Manifest, SUPPORTED_API_VERSIONS};
use crate::mapping::MappingSpec;
use crate::{Catalog, Violation, units};

/// The text of a package's files, as read from disk by the caller.
#[derive(Debug, Clone, Default)]
pub struct PackageFiles {
    /// `plugin.toml`, if present.
    pub manifest: Option<String>,
    /// `contract/*.avsc` as (path relative to the package, text), sorted by path.
    pub contracts: Vec<(String, String)>,
    /// `mapping.toml`, if present.
    pub mapping: Option<String>,
    /// `actions.toml`, if present.
    pub actions: Option<String>,
    /// `ui.toml`, if present.
    pub ui: Option<String>,
}

/// A package that passed contract validation.
#[derive(Debug, Clone)]
pub struct Package {
    /// The manifest.
    pub manifest: Manifest,
    /// Contract schema texts in dependency order, as given.
    pub contract_texts: Vec<String>,
    /// The package path of each contract file (`contract/<name>.avsc`), in the same order.
    pub contract_paths: Vec<String>,
    /// Parsed contract schemas, in the same order.
    pub contract: Vec<Schema>,
    /// The mapping.
    pub mapping: MappingSpec,
    /// Supported actions.
    pub actions: ActionsSpec,
}

impl Package {
    /// Full names of the record types of the contract.
    pub fn record_names(&self) -> Vec<String> {
        self.contract.iter().filter_map(record_of).map(|r| r.name.fullname(None)).collect()
    }
}

fn record_of(schema: &Schema) -> Option<&RecordSchema> {
    match schema {
        Schema::Record(r) => Some(r),
        _ => None,
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str, out: &mut Vec<Violation>) -> Option<T> {
    match toml::from_str::<T>(text) {
        Ok(v) => Some(v),
        Err(e) => {
            let at = e.span().map(|s| format!(" (byte {})", s.start)).unwrap_or_default();
            out.push(
                Violation::new("file.malformed", file, format!("{}{at}", e.message()))
                    .hint(format!("see schemas/package/{file}.md for the format")),
            );
            None
        }
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Validates a package against the catalog. Returns the package, or every violation found.
pub fn validate(files: &PackageFiles, catalog: &Catalog) -> Result<Package, Vec<Violation>> {
    let mut out = Vec::new();
    let manifest = match &files.manifest {
        None => {
            out.push(Violation::new("manifest.missing", "plugin.toml", "the package has no plugin.toml"));
            None
        }
        Some(text) => parse_toml::<Manifest>("plugin.toml", text, &mut out),
    };
    if let Some(m) = &manifest {
        check_manifest(m, &mut out);
    }
    let (contract_texts, contract) = check_contracts(&files.contracts, &mut out);
    let mapping = match &files.mapping {
        None => {
            out.push(Violation::new("mapping.missing", "mapping.toml", "the package has no mapping.toml"));
            None
        }
        Some(text) => parse_toml::<MappingSpec>("mapping.toml", text, &mut out),
    };
    if let (Some(mapping), Some(contract)) = (&mapping, &contract) {
        check_mapping(mapping, contract, catalog, &mut out);
    }
    let actions = match &files.actions {
        None => Some(ActionsSpec { version: 1, device_classes: Vec::new() }),
        Some(text) => parse_toml::<ActionsSpec>("actions.toml", text, &mut out),
    };
    if let Some(actions) = &actions {
        check_actions(actions, catalog, &mut out);
    }
    crate::ui_toml::check(files.ui.as_deref(), mapping.as_ref(), actions.as_ref(), catalog, &mut out);
    match (manifest, contract, mapping, actions) {
        (Some(manifest), Some(contract), Some(mapping), Some(actions)) if out.is_empty() => {
            let contract_paths = files.contracts.iter().map(|(path, _)| path.clone()).collect();
            Ok(Package { manifest, contract_texts, contract_paths, contract, mapping, actions })
        }
        _ => Err(out),
    }
}

fn check_manifest(m: &Manifest, out: &mut Vec<Violation>) {
    if !valid_id(&m.id) {
        out.push(
            Violation::new("manifest.invalid_id", "plugin.toml:id", format!("`{}` is not a valid plugin id", m.id))
                .hint("use 1-64 lowercase letters, digits, `-` or `_`, starting with a letter"),
        );
    }
    if m.name.trim().is_empty() {
        out.push(Violation::new("manifest.missing_name", "plugin.toml:name", "name is empty"));
    }
    let semver =
        m.version.split('.').filter(|p| p.parse::<u64>().is_ok()).count() == 3 && m.version.split('.').count() == 3;
    if !semver {
        out.push(Violation::new(
            "manifest.invalid_version",
            "plugin.toml:version",
            format!("`{}` is not MAJOR.MINOR.PATCH", m.version),
        ));
    }
    if !SUPPORTED_API_VERSIONS.contains(&m.api_version) {
        out.push(
            Violation::new(
                "manifest.unsupported_api_version",
                "plugin.toml:api_version",
                format!("protocol version {} is not supported", m.api_version),
            )
            .hint(format!("supported versions: {SUPPORTED_API_VERSIONS:?}")),
        );
    }
    if m.entrypoint.is_empty() || m.entrypoint[0].trim().is_empty() {
        out.push(
            Violation::new("manifest.missing_entrypoint", "plugin.toml:entrypoint", "entrypoint is empty")
                .hint("give the command as a list, e.g. entrypoint = [\"python3\", \"src/main.py\"]"),
        );
    }
    check_limits(m, out);
    for (name, field) in &m.config {
        if field.required && field.default.is_some() {
            out.push(Violation::new(
                "manifest.config_required_with_default",
                format!("plugin.toml:config.{name}"),
                "a required field cannot have a default",
            ));
        }
    }
}

/// Limits outside these bounds cannot work: the plugin would not even start, or never be checked.
fn check_limits(m: &Manifest, out: &mut Vec<Violation>) {
    let l = &m.limits;
    let bounds: [(&str, u64, u64); 10] = [
        ("memory_mb", l.memory_mb, 16),
        ("cpu_seconds", l.cpu_seconds, 1),
        ("max_processes", l.max_processes, 1),
        ("open_files", l.open_files, 16),
        ("observations_per_second", u64::from(l.observations_per_second), 1),
        ("max_message_bytes", l.max_message_bytes as u64, 1024),
        ("call_timeout_ms", l.call_timeout_ms, 100),
        ("heartbeat_interval_ms", l.heartbeat_interval_ms, 100),
        ("max_violations", u64::from(l.max_violations), 1),
        ("dlq_per_second", u64::from(l.dlq_per_second), 1),
    ];
    for (name, value, min) in bounds {
        if value < min {
            out.push(
                Violation::new(
                    "manifest.invalid_limit",
                    format!("plugin.toml:limits.{name}"),
                    format!("{name} = {value} is below the smallest workable value {min}"),
                )
                .hint(format!("use at least {min}, or leave it out for the default")),
            );
        }
    }
    let r = &m.restart;
    if let (Some(first), Some(max)) = (r.initial_backoff_ms, r.max_backoff_ms)
        && first > max
    {
        out.push(Violation::new(
            "manifest.invalid_limit",
            "plugin.toml:restart.initial_backoff_ms",
            format!("initial backoff {first} ms is longer than the maximum {max} ms"),
        ));
    }
    if r.quarantine_after == Some(0) {
        out.push(Violation::new(
            "manifest.invalid_limit",
            "plugin.toml:restart.quarantine_after",
            "quarantine_after must be at least 1",
        ));
    }
}

fn check_contracts(contracts: &[(String, String)], out: &mut Vec<Violation>) -> (Vec<String>, Option<Vec<Schema>>) {
    if contracts.is_empty() {
        out.push(
            Violation::new("contract.missing", "contract/", "the package has no Avro contract")
                .hint("add contract/<record>.avsc describing the observations the plugin emits"),
        );
        return (Vec::new(), None);
    }
    let mut ok = true;
    for (path, text) in contracts {
        // Each file must at least be JSON; cross-file references are resolved below.
        if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
            out.push(Violation::new("contract.malformed", path.clone(), format!("not valid JSON: {e}")));
            ok = false;
        }
    }
    if !ok {
        return (Vec::new(), None);
    }
    let texts: Vec<String> = contracts.iter().map(|(_, t)| t.clone()).collect();
    match crate::contract_parse::parse_list(&texts) {
        Ok(schemas) => {
            if !schemas.iter().any(|s| record_of(s).is_some()) {
                out.push(Violation::new("contract.no_record", "contract/", "no contract file defines a record"));
            }
            (texts, Some(schemas))
        }
        Err(e) => {
            // Blame the files that fail on their own for a reason other than a reference to a
            // type defined elsewhere; otherwise the contract as a whole.
            let mut blamed = false;
            for (path, text) in contracts {
                if let Err(own) = crate::contract_parse::parse_str(text)
                    && !matches!(own.details(), apache_avro::error::Details::ParsePrimitive(_))
                {
                    out.push(Violation::new(
                        "contract.invalid_schema",
                        path.clone(),
                        format!("Avro schema does not parse: {own}"),
                    ));
                    blamed = true;
                }
            }
            if !blamed {
                out.push(Violation::new(
                    "contract.invalid_schema",
                    "contract/",
                    format!("Avro schema does not parse: {e}"),
                ));
            }
            (texts, None)
        }
    }
}

/// Checks that the contract `current` is backward compatible with `previous`: every record type of
/// the previous contract still exists under the same full name and the new version can read data
/// written with the old one (Avro schema resolution, as Confluent's `BACKWARD` mode), so that the
/// raw topic stays replayable from offset 0. `paths` names the file of each schema of `current`.
pub fn check_compatibility(previous: &[Schema], current: &[Schema], paths: &[String]) -> Vec<Violation> {
    let mut out = Vec::new();
    for old in previous.iter().filter_map(record_of) {
        let name = old.name.fullname(None);
        let found = current.iter().zip(paths).find(|(s, _)| record_of(s).is_some_and(|r| r.name == old.name));
        let Some((new, path)) = found else {
            out.push(
                Violation::new(
                    "contract.incompatible",
                    "contract/",
                    format!("record `{name}` of the previous contract version was removed"),
                )
                .hint("keep every record type of the previous version; deprecate instead of removing"),
            );
            continue;
        };
        let old_schema = Schema::Record(old.clone());
        if let Err(e) = apache_avro::schema_compatibility::SchemaCompatibility::can_read(&old_schema, new) {
            out.push(
                Violation::new(
                    "contract.incompatible",
                    path.clone(),
                    format!("record `{name}` cannot read data written with the previous version: {e}"),
                )
                .hint("only add fields with defaults, widen types (int→long→double) or add enum symbols"),
            );
        }
    }
    out
}

/// The type found at a dotted path inside a record, unions reduced to their non-null branch.
fn field_schema<'a>(contract: &'a [Schema], record: &'a RecordSchema, path: &str) -> Option<&'a Schema> {
    let mut current: &Schema = contract.iter().find(|s| record_of(s).is_some_and(|r| std::ptr::eq(r, record)))?;
    for segment in path.split('.') {
        current = resolve(contract, current)?;
        let Schema::Record(r) = current else { return None };
        let index = *r.lookup.get(segment)?;
        current = &r.fields[index].schema;
    }
    resolve(contract, current)
}

fn resolve<'a>(contract: &'a [Schema], schema: &'a Schema) -> Option<&'a Schema> {
    match schema {
        Schema::Union(UnionSchema { .. }) => {
            let Schema::Union(u) = schema else { return None };
            let non_null: Vec<&Schema> = u.variants().iter().filter(|v| !matches!(v, Schema::Null)).collect();
            if non_null.len() == 1 { resolve(contract, non_null[0]) } else { Some(schema) }
        }
        Schema::Ref { name } => contract.iter().find(|s| record_of(s).is_some_and(|r| r.name == *name)),
        other => Some(other),
    }
}

fn compatible(schema: &Schema, value_type: ValueType) -> bool {
    use Schema as S;
    match value_type {
        ValueType::Float | ValueType::Int => matches!(schema, S::Int | S::Long | S::Float | S::Double | S::String),
        ValueType::Bool => matches!(schema, S::Boolean | S::String | S::Int | S::Long | S::Enum(_)),
        ValueType::Enum | ValueType::String => matches!(schema, S::String | S::Enum(_) | S::Int | S::Long),
        ValueType::Color => matches!(schema, S::Record(_) | S::String | S::Map(_)),
    }
}

fn check_field<'a>(
    contract: &'a [Schema],
    record: &'a RecordSchema,
    record_name: &str,
    path: &str,
    field: &str,
    out: &mut Vec<Violation>,
) -> Option<&'a Schema> {
    let found = field_schema(contract, record, field);
    if found.is_none() {
        out.push(Violation::new(
            "mapping.unknown_field",
            path.to_owned(),
            format!("record `{record_name}` has no field `{field}`"),
        ));
    }
    found
}

fn check_mapping(mapping: &MappingSpec, contract: &[Schema], catalog: &Catalog, out: &mut Vec<Violation>) {
    if mapping.version != 1 {
        out.push(Violation::new("mapping.unsupported_version", "mapping.toml:version", "only version 1 is supported"));
    }
    // Class rules, unit fields and expression-derived sources (see `mapping_check`).
    out.extend(crate::mapping_check::validate(mapping, contract, catalog));
    for (i, rule) in mapping.rules.iter().enumerate() {
        let at = format!("mapping.toml:rule[{i}]");
        let Some(record) = contract.iter().filter_map(record_of).find(|r| r.name.fullname(None) == rule.record) else {
            out.push(
                Violation::new(
                    "mapping.unknown_record",
                    format!("{at}.record"),
                    format!("no contract record named `{}`", rule.record),
                )
                .hint("use the full name (namespace.name) of a record in contract/*.avsc"),
            );
            continue;
        };
        check_field(contract, record, &rule.record, &format!("{at}.external_id"), &rule.external_id, out);
        let sources = [
            ("name", &rule.name),
            ("device_class", &rule.device_class),
            ("manufacturer", &rule.manufacturer),
            ("model", &rule.model),
            ("firmware", &rule.firmware),
            ("online", &rule.online),
        ];
        for (name, source) in sources {
            if let Some(field) = source.as_ref().and_then(|s| s.field.as_deref()) {
                check_field(contract, record, &rule.record, &format!("{at}.{name}.field"), field, out);
            }
        }
        for (j, state) in rule.states.iter().enumerate() {
            let spath = format!("{at}.state[{j}]");
            let schema =
                check_field(contract, record, &rule.record, &format!("{spath}.field"), &state.field, out).cloned();
            let Some(cap) = catalog.get(&state.capability) else {
                out.push(
                    Violation::new(
                        "mapping.unknown_capability",
                        format!("{spath}.capability"),
                        format!("`{}` is not a catalog capability", state.capability),
                    )
                    .hint("see schemas/capabilities.toml for the catalog"),
                );
                continue;
            };
            if let Some(schema) = schema
                && !compatible(&schema, cap.value_type)
            {
                out.push(Violation::new(
                    "mapping.incompatible_type",
                    format!("{spath}.field"),
                    format!(
                        "field `{}` is {:?} but capability `{}` needs {:?}",
                        state.field, schema, cap.name, cap.value_type
                    ),
                ));
            }
            if let Some(unit) = &state.unit {
                let ok = cap.unit.as_deref().is_some_and(|target| units::compatible(unit, target));
                if !ok {
                    out.push(Violation::new(
                        "mapping.incompatible_unit",
                        format!("{spath}.unit"),
                        format!("`{unit}` cannot be converted to `{}`'s unit {:?}", cap.name, cap.unit),
                    ));
                }
            }
        }
    }
}

fn check_actions(actions: &ActionsSpec, catalog: &Catalog, out: &mut Vec<Violation>) {
    if actions.version != 1 {
        out.push(Violation::new("actions.unsupported_version", "actions.toml:version", "only version 1 is supported"));
    }
    for (i, class) in actions.device_classes.iter().enumerate() {
        let at = format!("actions.toml:device_class[{i}]");
        for (j, name) in class.actions.iter().enumerate() {
            if catalog.action(name).is_none() {
                out.push(
                    Violation::new(
                        "actions.unknown_action",
                        format!("{at}.actions[{j}]"),
                        format!("`{name}` is not a catalog action"),
                    )
                    .hint("actions must be normalized actions of a catalog capability"),
                );
            }
        }
        for (action, params) in &class.constraints {
            let Some((cap, def)) = catalog.action(action) else {
                out.push(Violation::new(
                    "actions.unknown_action",
                    format!("{at}.constraints.{action}"),
                    format!("`{action}` is not a catalog action"),
                ));
                continue;
            };
            if cap.kind != CapabilityKind::Actuator {
                continue;
            }
            for (param, range) in params {
                let path = format!("{at}.constraints.{action}.{param}");
                let Some(p) = def.params.iter().find(|p| &p.name == param) else {
                    out.push(Violation::new(
                        "actions.unknown_param",
                        path,
                        format!("`{action}` has no parameter `{param}`"),
                    ));
                    continue;
                };
                let below = matches!((range.min, p.min), (Some(a), Some(b)) if a < b);
                let above = matches!((range.max, p.max), (Some(a), Some(b)) if a > b);
                let inverted = matches!((range.min, range.max), (Some(a), Some(b)) if a > b);
                if below || above || inverted {
                    out.push(Violation::new(
                        "actions.constraint_out_of_range",
                        path,
                        format!(
                            "[{:?}, {:?}] is not inside the catalog range [{:?}, {:?}]",
                            range.min, range.max, p.min, p.max
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> PackageFiles {
        PackageFiles {
            manifest: Some(
                "id = \"demo\"\nname = \"Demo\"\nversion = \"0.1.0\"\napi_version = 1\nentrypoint = [\"python3\", \"main.py\"]\n".into(),
            ),
            contracts: vec![(
                "contract/obs.avsc".into(),
                r#"{"type":"record","name":"Obs","namespace":"demo","fields":[
                    {"name":"id","type":"string"},{"name":"temp","type":["null","double"]},
                    {"name":"on","type":["null","boolean"]}]}"#
                    .into(),
            )],
            mapping: Some(
                "version = 1\n[[rule]]\nrecord = \"demo.Obs\"\nexternal_id = \"id\"\n\
                 [[rule.state]]\ncapability = \"temperature\"\nfield = \"temp\"\n"
                    .into(),
            ),
            actions: Some("version = 1\n[[device_class]]\nclass = \"light\"\nactions = [\"turn_on\"]\n".into()),
            ui: None,
        }
    }

    #[test]
    fn a_good_package_passes() {
        let pkg = validate(&files(), Catalog::builtin()).unwrap();
        assert_eq!(pkg.record_names(), vec!["demo.Obs".to_string()]);
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let mut f = files();
        f.manifest =
            Some(f.manifest.unwrap().replace("api_version = 1", "api_version = 9").replace("\"demo\"", "\"Demo!\""));
        f.mapping = Some(
            "version = 1\n[[rule]]\nrecord = \"demo.Obs\"\nexternal_id = \"nope\"\n\
             [[rule.state]]\ncapability = \"warp_factor\"\nfield = \"temp\"\n\
             [[rule.state]]\ncapability = \"switch\"\nfield = \"temp\"\n\
             [[rule.state]]\ncapability = \"temperature\"\nfield = \"temp\"\nunit = \"V\"\n"
                .into(),
        );
        f.actions = Some(
            "version = 1\n[[device_class]]\nclass = \"light\"\nactions = [\"fly\"]\n\
             [device_class.constraints.set_brightness.level]\nmin = -5.0\n"
                .into(),
        );
        let errors = validate(&f, Catalog::builtin()).unwrap_err();
        let codes: Vec<&str> = errors.iter().map(|v| v.code.as_str()).collect();
        for code in [
            "manifest.invalid_id",
            "manifest.unsupported_api_version",
            "mapping.unknown_field",
            "mapping.unknown_capability",
            "mapping.incompatible_type",
            "mapping.incompatible_unit",
            "actions.unknown_action",
            "actions.constraint_out_of_range",
        ] {
            assert!(codes.contains(&code), "missing {code} in {codes:?}");
        }
        let unknown = errors.iter().find(|v| v.code == "mapping.unknown_field").unwrap();
        assert_eq!(unknown.path, "mapping.toml:rule[0].external_id");
    }

    #[test]
    fn unparsable_contracts_are_reported() {
        let mut f = files();
        f.contracts = vec![("contract/bad.avsc".into(), "{\"type\": \"record\"".into())];
        let errors = validate(&f, Catalog::builtin()).unwrap_err();
        assert_eq!(errors[0].code, "contract.malformed");
        assert_eq!(errors[0].path, "contract/bad.avsc");
    }

    #[test]
    fn compatible_evolution_passes_and_breaking_changes_are_named() {
        let old = Schema::parse_list([
            r#"{"type":"record","name":"Obs","namespace":"demo","fields":[{"name":"id","type":"string"}]}"#,
        ])
        .unwrap();
        let added = Schema::parse_list([r#"{"type":"record","name":"Obs","namespace":"demo","fields":[
            {"name":"id","type":"string"},{"name":"temp","type":["null","double"],"default":null}]}"#])
        .unwrap();
        let paths = vec!["contract/obs.avsc".to_string()];
        assert!(check_compatibility(&old, &added, &paths).is_empty());
        let required = Schema::parse_list([r#"{"type":"record","name":"Obs","namespace":"demo","fields":[
            {"name":"id","type":"string"},{"name":"temp","type":"double"}]}"#])
        .unwrap();
        let errors = check_compatibility(&old, &required, &paths);
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].code.as_str(), errors[0].path.as_str()), ("contract.incompatible", "contract/obs.avsc"));
        let renamed = Schema::parse_list([
            r#"{"type":"record","name":"Other","namespace":"demo","fields":[{"name":"id","type":"string"}]}"#,
        ])
        .unwrap();
        let errors = check_compatibility(&old, &renamed, &paths);
        assert_eq!((errors[0].code.as_str(), errors[0].path.as_str()), ("contract.incompatible", "contract/"));
    }

    #[test]
    fn limits_that_cannot_work_are_rejected() {
        let mut f = files();
        f.manifest = Some(format!(
            "{}[limits]\nmemory_mb = 1\n[restart]\ninitial_backoff_ms = 5000\nmax_backoff_ms = 10\n",
            f.manifest.unwrap()
        ));
        let errors = validate(&f, Catalog::builtin()).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, vec!["plugin.toml:limits.memory_mb", "plugin.toml:restart.initial_backoff_ms"]);
    }
}
