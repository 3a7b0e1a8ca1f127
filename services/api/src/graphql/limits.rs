//! Limits on GraphQL documents, enforced before any resolver runs.
//!
//! - Before parsing: the document's size and its bracket nesting (a parser fed a deeply nested
//!   document would spend stack on it, so nesting is bounded on the raw text first).
//! - After parsing, before validation and execution: aliases, directives and page sizes
//!   (`first` arguments, literal or from variables).
//! - During validation (async-graphql's own rules, configured in [`super::build_schema`]): depth,
//!   complexity, directives per field, fragment cycles, unknown fields and argument types.
//!
//! The same extension counts root resolver calls (`tessera_api_graphql_resolver_calls_total`), so
//! a test can show that a rejected document reached no resolver.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextResolve, NextValidation,
    ResolveInfo,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    ErrorExtensionValues, Name, Request, ServerError, ServerResult, ValidationResult, Value, Variables,
};

use crate::db::MAX_PAGE;

/// Largest accepted GraphQL document, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024;
/// Deepest nesting of `{`, `(` and `[` in a document's text.
pub const MAX_NESTING: usize = 48;
/// Most aliases in one document.
pub const MAX_ALIASES: usize = 30;
/// Most directives in one document.
pub const MAX_DIRECTIVES: usize = 30;
/// Most directives on one field (async-graphql's rule).
pub const MAX_FIELD_DIRECTIVES: usize = 4;
/// Deepest selection (async-graphql's rule; the standard introspection query needs 13).
pub const MAX_DEPTH: usize = 14;
/// Highest complexity (async-graphql's rule: one per field, times nothing else).
pub const MAX_COMPLEXITY: usize = 2_000;
/// Arguments that size a page, bounded to `1..=MAX_PAGE` wherever they appear.
const PAGE_ARGUMENTS: &[&str] = &["first", "last"];

/// A rejection with a stable code in `extensions.code`.
fn reject(code: &str, message: String) -> ServerError {
    metrics::counter!("tessera_api_graphql_rejected_total", "reason" => code.to_owned()).increment(1);
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

/// The deepest bracket nesting of a GraphQL document, skipping strings and comments.
pub fn nesting(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'(' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// What a walk over a document's selections found.
#[derive(Default)]
struct Counts {
    aliases: usize,
    directives: usize,
}

fn walk(
    set: &SelectionSet,
    variables: &Variables,
    defaults: &HashMap<Name, Value>,
    counts: &mut Counts,
) -> ServerResult<()> {
    for selection in &set.items {
        counts.directives += selection.node.directives().len();
        match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                counts.aliases += usize::from(field.alias.is_some());
                for (name, value) in &field.arguments {
                    if PAGE_ARGUMENTS.contains(&name.node.as_str()) {
                        // A variable without a value (or default) leaves the field's own default.
                        let resolved = value.node.clone().into_const_with(|var| {
                            variables.get(&var).or_else(|| defaults.get(&var)).cloned().ok_or(())
                        });
                        check_page(field.name.node.as_str(), name.node.as_str(), resolved.ok())?;
                    }
                }
                walk(&field.selection_set.node, variables, defaults, counts)?;
            }
            Selection::InlineFragment(fragment) => {
                walk(&fragment.node.selection_set.node, variables, defaults, counts)?
            }
            Selection::FragmentSpread(_) => {}
        }
    }
    Ok(())
}

fn check_page(field: &str, argument: &str, value: Option<Value>) -> ServerResult<()> {
    let Some(Value::Number(n)) = value else { return Ok(()) };
    match n.as_i64() {
        Some(size) if (1..=MAX_PAGE).contains(&size) => Ok(()),
        _ => Err(reject(
            "PAGE_SIZE_LIMIT",
            format!("`{argument}` of `{field}` is {n}; page sizes must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// Checks a parsed document's aliases, directives and page sizes.
pub fn check_document(document: &ExecutableDocument, variables: &Variables) -> ServerResult<()> {
    let mut defaults = HashMap::new();
    let mut counts = Counts::default();
    for (_, operation) in document.operations.iter() {
        counts.directives += operation.node.directives.len();
        for definition in &operation.node.variable_definitions {
            counts.directives += definition.node.directives.len();
            if let Some(value) = definition.node.default_value() {
                defaults.insert(definition.node.name.node.clone(), value.clone());
            }
        }
    }
    for (_, operation) in document.operations.iter() {
        walk(&operation.node.selection_set.node, variables, &defaults, &mut counts)?;
    }
    for fragment in document.fragments.values() {
        counts.directives += fragment.node.directives.len();
        walk(&fragment.node.selection_set.node, variables, &defaults, &mut counts)?;
    }
    if counts.aliases > MAX_ALIASES {
        return Err(reject(
            "ALIAS_LIMIT",
            format!("the document uses {} aliases; at most {MAX_ALIASES} are allowed", counts.aliases),
        ));
    }
    if counts.directives > MAX_DIRECTIVES {
        return Err(reject(
            "DIRECTIVE_LIMIT",
            format!("the document uses {} directives; at most {MAX_DIRECTIVES} are allowed", counts.directives),
        ));
    }
    Ok(())
}

/// Checks a document's text before it is parsed.
pub fn check_text(query: &str) -> ServerResult<()> {
    if query.len() > MAX_DOCUMENT_BYTES {
        return Err(reject(
            "DOCUMENT_SIZE_LIMIT",
            format!("the document is {} bytes; at most {MAX_DOCUMENT_BYTES} are allowed", query.len()),
        ));
    }
    let depth = nesting(query);
    if depth > MAX_NESTING {
        return Err(reject(
            "NESTING_LIMIT",
            format!("the document nests {depth} levels of brackets; at most {MAX_NESTING} are allowed"),
        ));
    }
    Ok(())
}

/// The extension enforcing these limits on every request (HTTP and WebSocket).
pub struct Limits;

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension)
    }
}

struct LimitsExtension;

#[async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        check_text(&request.query)?;
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        check_document(&document, variables)?;
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        // async-graphql's depth and complexity errors do not say the limit: restate them.
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| match error.message.as_str() {
                    "Query is nested too deep." => {
                        reject("DEPTH_LIMIT", format!("the query is nested too deep: at most {MAX_DEPTH} levels"))
                    }
                    "Query is too complex." => reject(
                        "COMPLEXITY_LIMIT",
                        format!("the query is too complex: at most {MAX_COMPLEXITY} fields, fragments expanded"),
                    ),
                    _ => error,
                })
                .collect()
        })
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_none() {
            metrics::counter!("tessera_api_graphql_resolver_calls_total").increment(1);
        }
        next.run(ctx, info).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(q).unwrap()
    }

    #[test]
    fn nesting_skips_strings_and_comments() {
        assert_eq!(nesting("{ a { b(x: [1, 2]) } }"), 4);
        assert_eq!(nesting("{ a(s: \"{{{{{{\") # {{{{\n }"), 2);
        assert_eq!(nesting("{ a(s: \"\"\" {{{{ \\\"\"\" \"\"\") }"), 2);
        assert_eq!(nesting(&"{a".repeat(100)), 100);
    }

    #[test]
    fn aliases_and_directives_are_counted_across_fragments() {
        let aliases: String = (0..31).map(|i| format!("a{i}: plugins {{ id }} ")).collect();
        assert!(check_document(&parse(&format!("{{ {aliases} }}")), &Variables::default()).is_err());
        let few: String = (0..10).map(|i| format!("a{i}: plugins {{ id }} ")).collect();
        let doc = format!("query {{ ...F ...G }} fragment F on Query {{ {few} }} fragment G on Query {{ {few} }}");
        assert!(check_document(&parse(&doc), &Variables::default()).is_ok());
        let doc = format!(
            "query {{ ...F ...G ...H }} fragment F on Query {{ {few} }} fragment G on Query {{ {few} }} fragment H on Query {{ {few} b: plugins {{ id }} }}"
        );
        let error = check_document(&parse(&doc), &Variables::default()).unwrap_err();
        assert!(error.message.contains("31 aliases"), "{}", error.message);
        let directives = "plugins @skip(if: false) { id @include(if: true) } ".repeat(16);
        assert!(check_document(&parse(&format!("{{ {directives} }}")), &Variables::default()).is_err());
    }

    #[test]
    fn page_sizes_are_checked_from_literals_variables_and_defaults() {
        let vars = |v: serde_json::Value| Variables::from_json(v);
        let ok = parse("query($n: Int) { devices(first: $n) { edges { cursor } } }");
        assert!(check_document(&ok, &vars(serde_json::json!({"n": 500}))).is_ok());
        assert!(check_document(&ok, &vars(serde_json::json!({"n": 501}))).is_err());
        assert!(check_document(&ok, &vars(serde_json::json!({"n": 0}))).is_err());
        let defaulted = parse("query($n: Int = 100000) { devices(first: $n) { edges { cursor } } }");
        assert!(check_document(&defaulted, &Variables::default()).is_err());
        let literal = parse("{ devices(first: 9999999999) { edges { cursor } } }");
        let error = check_document(&literal, &Variables::default()).unwrap_err();
        assert!(error.message.contains("between 1 and"), "{}", error.message);
    }

    #[test]
    fn huge_and_deep_texts_are_rejected_before_parsing() {
        assert!(check_text(&"{a".repeat(MAX_NESTING + 1)).is_err());
        assert!(check_text(&format!("{{ plugins {{ id }} }} #{}", "x".repeat(MAX_DOCUMENT_BYTES))).is_err());
        assert!(check_text("{ plugins { id } }").is_ok());
    }
}
