//! Contract checks of the mapping features beyond plain state rules: per-class rules, unit fields
//! and expressions. `package::validate` runs them beside its own checks of the common states, so
//! a package is judged as a whole before anything runs.

use apache_avro::Schema;
use apache_avro::schema::RecordSchema;

use crate::catalog::ValueType;
use crate::mapping::{MappingSpec, Rule, Source, StateRule};
use crate::{Catalog, Violation, units};

/// Every violation of the class rules, unit fields and expressions of `mapping` against the
/// contract and the catalog. (Expressions that do not compile never get here: parsing
/// `mapping.toml` already refused them, with their position.)
pub fn validate(mapping: &MappingSpec, contract: &[Schema], catalog: &Catalog) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, rule) in mapping.rules.iter().enumerate() {
        let at = format!("mapping.toml:rule[{i}]");
        let Some(record) = find_record(contract, &rule.record) else { continue };
        check_sources(rule, &at, &mut out);
        for (j, state) in rule.states.iter().enumerate() {
            check_unit_field(contract, record, state, &format!("{at}.state[{j}]"), &mut out);
        }
        let mut classes = std::collections::BTreeSet::new();
        for (c, class) in rule.classes.iter().enumerate() {
            let cat = format!("{at}.class[{c}]");
            if class.class.trim().is_empty() {
                out.push(Violation::new("mapping.invalid_class", format!("{cat}.class"), "the class name is empty"));
            }
            if !classes.insert(class.class.as_str()) {
                out.push(
                    Violation::new(
                        "mapping.duplicate_class",
                        format!("{cat}.class"),
                        format!("class `{}` has a rule already; only the first would ever apply", class.class),
                    )
                    .hint("merge the two [[rule.class]] blocks"),
                );
            }
            if class.when.is_none() && rule.device_class.is_none() {
                out.push(
                    Violation::new(
                        "mapping.unreachable_class",
                        format!("{cat}.when"),
                        format!("class `{}` has no `when` and the rule derives no device_class", class.class),
                    )
                    .hint("add `when = \"<CEL condition>\"`, or a `device_class` source to the rule"),
                );
            }
            for (j, state) in class.states.iter().enumerate() {
                let sat = format!("{cat}.state[{j}]");
                check_class_state(contract, record, &rule.record, state, &sat, catalog, &mut out);
                check_unit_field(contract, record, state, &sat, &mut out);
            }
        }
    }
    out
}

fn check_sources(rule: &Rule, at: &str, out: &mut Vec<Violation>) {
    let sources = [
        ("name", &rule.name),
        ("device_class", &rule.device_class),
        ("manufacturer", &rule.manufacturer),
        ("model", &rule.model),
        ("firmware", &rule.firmware),
        ("online", &rule.online),
    ];
    for (name, source) in sources {
        let Some(Source { field, value, expr, .. }) = source else { continue };
        if value.is_some() && (field.is_some() || expr.is_some()) {
            out.push(
                Violation::new(
                    "mapping.ambiguous_source",
                    format!("{at}.{name}"),
                    "a literal `value` ignores the `field` and `expr` beside it",
                )
                .hint("keep either the literal or the field/expression"),
            );
        }
        if value.is_none() && field.is_none() && expr.is_none() {
            out.push(Violation::new(
                "mapping.empty_source",
                format!("{at}.{name}"),
                "the source has neither `field`, `value` nor `expr`",
            ));
        }
    }
}

/// A class state gets the same checks `package` gives the rule's common states.
fn check_class_state(
    contract: &[Schema],
    record: &RecordSchema,
    record_name: &str,
    state: &StateRule,
    at: &str,
    catalog: &Catalog,
    out: &mut Vec<Violation>,
) {
    let schema = field_schema(contract, record, &state.field);
    if schema.is_none() {
        out.push(Violation::new(
            "mapping.unknown_field",
            format!("{at}.field"),
            format!("record `{record_name}` has no field `{}`", state.field),
        ));
    }
    let Some(cap) = catalog.get(&state.capability) else {
        out.push(
            Violation::new(
                "mapping.unknown_capability",
                format!("{at}.capability"),
                format!("`{}` is not a catalog capability", state.capability),
            )
            .hint("see schemas/capabilities.toml for the catalog"),
        );
        return;
    };
    // An expression may turn any field into the capability's type; only plain fields are typed here.
    if let Some(schema) = schema
        && state.expr.is_none()
        && !compatible(schema, cap.value_type)
    {
        out.push(Violation::new(
            "mapping.incompatible_type",
            format!("{at}.field"),
            format!("field `{}` is {:?} but capability `{}` needs {:?}", state.field, schema, cap.name, cap.value_type),
        ));
    }
    if let Some(unit) = &state.unit
        && !cap.unit.as_deref().is_some_and(|target| units::compatible(unit, target))
    {
        out.push(Violation::new(
            "mapping.incompatible_unit",
            format!("{at}.unit"),
            format!("`{unit}` cannot be converted to `{}`'s unit {:?}", cap.name, cap.unit),
        ));
    }
}

fn check_unit_field(contract: &[Schema], record: &RecordSchema, state: &StateRule, at: &str, out: &mut Vec<Violation>) {
    let Some(path) = &state.unit_field else { return };
    match field_schema(contract, record, path) {
        None => out.push(Violation::new(
            "mapping.unknown_field",
            format!("{at}.unit_field"),
            format!("the record has no field `{path}`"),
        )),
        Some(Schema::String | Schema::Enum(_)) => {}
        Some(other) => out.push(Violation::new(
            "mapping.incompatible_type",
            format!("{at}.unit_field"),
            format!("unit field `{path}` is {other:?}, not a string"),
        )),
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

fn find_record<'a>(contract: &'a [Schema], name: &str) -> Option<&'a RecordSchema> {
    contract.iter().find_map(|s| match s {
        Schema::Record(r) if r.name.fullname(None) == name => Some(r),
        _ => None,
    })
}

/// The type at a dotted path inside a record; nullable unions reduce to their other branch,
/// named references to their definition, and map values answer any key.
fn field_schema<'a>(contract: &'a [Schema], record: &'a RecordSchema, path: &str) -> Option<&'a Schema> {
    let mut segments = path.split('.');
    let first = segments.next()?;
    let mut schema = &record.fields[*record.lookup.get(first)?].schema;
    for segment in segments {
        schema = match resolve(contract, schema)? {
            Schema::Record(r) => &r.fields[*r.lookup.get(segment)?].schema,
            Schema::Map(m) => &m.types,
            Schema::Array(a) if segment.parse::<usize>().is_ok() => &a.items,
            _ => return None,
        };
    }
    resolve(contract, schema)
}

fn resolve<'a>(contract: &'a [Schema], schema: &'a Schema) -> Option<&'a Schema> {
    match schema {
        Schema::Union(u) => {
            let non_null: Vec<&Schema> = u.variants().iter().filter(|v| !matches!(v, Schema::Null)).collect();
            if non_null.len() == 1 { resolve(contract, non_null[0]) } else { Some(schema) }
        }
        Schema::Ref { name } => contract.iter().find(|s| matches!(s, Schema::Record(r) if r.name == *name)),
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT: &str = r#"{"type":"record","name":"State","namespace":"z2m","fields":[
        {"name":"id","type":"string"},
        {"name":"kind","type":"string"},
        {"name":"payload","type":{"type":"record","name":"Payload","fields":[
            {"name":"brightness","type":["null","int"],"default":null},
            {"name":"unit","type":["null","string"],"default":null},
            {"name":"color","type":["null",{"type":"map","values":"int"}],"default":null}]}}]}"#;

    fn check(mapping: &str) -> Vec<String> {
        let contract = vec![Schema::parse_str(CONTRACT).unwrap()];
        let spec: MappingSpec = toml::from_str(mapping).unwrap();
        validate(&spec, &contract, Catalog::builtin()).into_iter().map(|v| format!("{} {}", v.code, v.path)).collect()
    }

    #[test]
    fn a_good_class_mapping_passes() {
        let ok = check(
            r#"version = 1
            [[rule]]
            record = "z2m.State"
            external_id = "id"
            device_class = { field = "kind" }
            [[rule.class]]
            class = "light"
            [[rule.class.state]]
            capability = "brightness"
            field = "payload.brightness"
            unit_field = "payload.unit"
            [[rule.class.state]]
            capability = "color"
            field = "payload.color"
            "#,
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn class_rules_are_checked_like_common_states() {
        let errors = check(
            r#"version = 1
            [[rule]]
            record = "z2m.State"
            external_id = "id"
            name = { value = "x", field = "id" }
            [[rule.class]]
            class = "light"
            [[rule.class.state]]
            capability = "warp_factor"
            field = "payload.nope"
            [[rule.class.state]]
            capability = "switch"
            field = "payload.color"
            unit_field = "payload.brightness"
            [[rule.class]]
            class = "light"
            when = "true"
            "#,
        );
        for expected in [
            "mapping.ambiguous_source mapping.toml:rule[0].name",
            "mapping.unreachable_class mapping.toml:rule[0].class[0].when",
            "mapping.unknown_field mapping.toml:rule[0].class[0].state[0].field",
            "mapping.unknown_capability mapping.toml:rule[0].class[0].state[0].capability",
            "mapping.incompatible_type mapping.toml:rule[0].class[0].state[1].field",
            "mapping.incompatible_type mapping.toml:rule[0].class[0].state[1].unit_field",
            "mapping.duplicate_class mapping.toml:rule[0].class[1].class",
        ] {
            assert!(errors.iter().any(|e| e == expected), "missing {expected} in {errors:?}");
        }
    }
}
