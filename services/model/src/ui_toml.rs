//! `ui.toml`: a plugin's overrides of the UI schema generated from its devices' capabilities
//! (format in `schemas/widgets.md`), and their validation.
//!
//! Per device class (or `*` for every class of the plugin) a plugin may replace the generated
//! cards with its own (`[[device_class.card]]`) and patch the result: hide widgets, relabel them,
//! retitle and reorder cards. Widgets are addressed by a selector: the name of what they bind to
//! (a capability or an action), optionally narrowed by widget type (`temperature:sparkline`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::actions::ActionsSpec;
use crate::mapping::MappingSpec;
use crate::ui::{Widget, WidgetType, label, widget};
use crate::ui_rules::{Bindable, check_widget, param_range};
use crate::{Catalog, Violation};

/// The file name, as it appears in violation paths.
const FILE: &str = "ui.toml";

/// A parsed `ui.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiSpec {
    /// Format version (1).
    pub version: u32,
    /// Overrides per device class.
    #[serde(default, rename = "device_class")]
    pub classes: Vec<ClassUi>,
}

/// The overrides of one device class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassUi {
    /// Device class, or `*` for every class without an entry of its own.
    pub class: String,
    /// Cards replacing the generated ones; when empty, the generated cards are kept.
    #[serde(default, rename = "card")]
    pub cards: Vec<CardSpec>,
    /// Selectors of widgets to remove.
    #[serde(default)]
    pub hide: Vec<String>,
    /// New labels: selector → label.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// New card titles: title → title.
    #[serde(default)]
    pub titles: BTreeMap<String, String>,
    /// Card titles (after retitling) in display order; unlisted cards follow in their order.
    #[serde(default)]
    pub order: Vec<String>,
}

/// A card written by the plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardSpec {
    /// Title.
    pub title: String,
    /// Widgets in display order.
    #[serde(rename = "widget")]
    pub widgets: Vec<WidgetSpec>,
}

/// A widget written by the plugin; what it leaves out is derived from the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetSpec {
    /// Widget type.
    #[serde(rename = "type")]
    pub widget: WidgetType,
    /// Label; default: derived from the capability or action name.
    pub label: Option<String>,
    /// Capability shown (display widgets) or reflected (controls).
    pub capability: Option<String>,
    /// Action invoked (toggle, slider, select, button).
    pub action: Option<String>,
    /// Parameter set by a slider or select; default: the action's only parameter.
    pub param: Option<String>,
    /// Unit; default: the capability's.
    pub unit: Option<String>,
    /// Lower bound; default: the capability's (gauge) or the parameter's (slider).
    pub min: Option<f64>,
    /// Upper bound; default: the capability's (gauge) or the parameter's (slider).
    pub max: Option<f64>,
    /// Choices of a select; default: every value of the parameter.
    #[serde(default)]
    pub options: Vec<String>,
}

impl UiSpec {
    /// Parses the text of a `ui.toml`.
    pub fn parse(text: &str) -> Result<Self, Violation> {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| format!(" (byte {})", s.start)).unwrap_or_default();
            Violation::new("ui.malformed", FILE, format!("{}{at}", e.message().trim()))
                .hint("see schemas/widgets.md for the format")
        })
    }

    /// The overrides for `class`: its own entry, else the `*` entry.
    pub fn for_class(&self, class: &str) -> Option<&ClassUi> {
        self.classes.iter().find(|c| c.class == class).or_else(|| self.classes.iter().find(|c| c.class == "*"))
    }
}

impl WidgetSpec {
    /// The widget with everything left out derived from the catalog and the plugin's constraints.
    pub fn resolve(&self, catalog: &Catalog, bindable: &Bindable<'_>) -> Widget {
        let cap = self.capability.as_deref().and_then(|c| catalog.get(c));
        let def = self.action.as_deref().and_then(|a| catalog.action(a)).map(|(_, def)| def);
        let name = self.capability.as_deref().or(self.action.as_deref()).unwrap_or("");
        let mut w = widget(self.widget, &self.label.clone().unwrap_or_else(|| label(name)));
        w.capability.clone_from(&self.capability);
        w.action.clone_from(&self.action);
        w.unit = self.unit.clone().or_else(|| cap.and_then(|c| c.unit.clone()));
        (w.min, w.max) = (self.min, self.max);
        w.options.clone_from(&self.options);
        let setter = matches!(self.widget, WidgetType::Slider | WidgetType::Select);
        if let (true, Some(def), Some(action)) = (setter, def, &self.action)
            && let [param] = def.params.as_slice()
        {
            let name = self.param.clone().unwrap_or_else(|| param.name.clone());
            if name == param.name {
                let constraint = bindable.constraints.and_then(|c| c.get(action)).and_then(|p| p.get(&name));
                let (lo, hi) = param_range(param, constraint);
                w.min = w.min.or(lo);
                w.max = w.max.or(hi);
                if w.options.is_empty() {
                    w.options.clone_from(&param.values);
                }
            }
            w.param = Some(name);
        } else {
            w.param.clone_from(&self.param);
        }
        if self.widget == WidgetType::Gauge
            && let Some(cap) = cap
        {
            w.min = w.min.or(cap.min);
            w.max = w.max.or(cap.max);
        }
        w
    }
}

/// A widget selector: `name` or `name:type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Capability or action name.
    pub name: String,
    /// Only widgets of this type.
    pub widget: Option<WidgetType>,
}

impl Selector {
    /// Parses `name` or `name:type`.
    pub fn parse(text: &str) -> Option<Self> {
        let (name, kind) = match text.split_once(':') {
            Some((name, kind)) => (name, Some(kind)),
            None => (text, None),
        };
        let widget = match kind {
            Some(k) => Some(serde_json::from_value::<WidgetType>(serde_json::Value::String(k.to_owned())).ok()?),
            None => None,
        };
        (!name.is_empty()).then(|| Self { name: name.to_owned(), widget })
    }

    /// Whether `w` is selected.
    pub fn matches(&self, w: &Widget) -> bool {
        let bound = w.capability.as_deref() == Some(&self.name) || w.action.as_deref() == Some(&self.name);
        bound && self.widget.is_none_or(|t| t == w.widget)
    }
}

/// Titles of the cards that default generation produces.
pub const GENERATED_TITLES: [&str; 3] = ["Controls", "Readings", "Info"];

/// What a plugin's other files say widgets may bind to.
struct PluginFacts<'a> {
    /// Capabilities the mapping produces; `None` when the mapping did not parse.
    capabilities: Option<Vec<String>>,
    /// Device classes the plugin's devices can have; `None` when a class comes from an unmapped field.
    classes: Option<BTreeSet<String>>,
    actions: Option<&'a ActionsSpec>,
}

fn facts<'a>(mapping: Option<&MappingSpec>, actions: Option<&'a ActionsSpec>) -> PluginFacts<'a> {
    let capabilities = mapping.map(|m| {
        let set: BTreeSet<String> = m.rules.iter().flat_map(|r| &r.states).map(|s| s.capability.clone()).collect();
        set.into_iter().collect()
    });
    let mut classes: Option<BTreeSet<String>> = mapping.map(|_| BTreeSet::new());
    for rule in mapping.map(|m| m.rules.as_slice()).unwrap_or_default() {
        match &rule.device_class {
            Some(src) if src.value.is_some() => classes.iter_mut().for_each(|c| c.extend(src.value.clone())),
            Some(src) if src.field.is_some() && !src.map.is_empty() => {
                classes.iter_mut().for_each(|c| c.extend(src.map.values().cloned()))
            }
            // The class is copied from a field (or defaulted): any class is possible.
            _ => classes = None,
        }
    }
    if let (Some(set), Some(actions)) = (&mut classes, actions) {
        set.extend(actions.device_classes.iter().map(|c| c.class.clone()));
    }
    PluginFacts { capabilities, classes, actions }
}

/// Validates the `ui.toml` of a package (if any) against the catalog, the package's mapping and
/// its `actions.toml`, appending every violation found to `out`.
pub fn check(
    text: Option<&str>,
    mapping: Option<&MappingSpec>,
    actions: Option<&ActionsSpec>,
    catalog: &Catalog,
    out: &mut Vec<Violation>,
) {
    let Some(text) = text else { return };
    let spec = match UiSpec::parse(text) {
        Ok(spec) => spec,
        Err(v) => return out.push(v),
    };
    if spec.version != 1 {
        out.push(Violation::new("ui.unsupported_version", format!("{FILE}:version"), "only version 1 is supported"));
    }
    let facts = facts(mapping, actions);
    let mut seen = BTreeSet::new();
    for (i, class) in spec.classes.iter().enumerate() {
        let at = format!("{FILE}:device_class[{i}]");
        if !seen.insert(class.class.as_str()) {
            out.push(Violation::new(
                "ui.duplicate_class",
                format!("{at}.class"),
                format!("`{}` has two entries", class.class),
            ));
        }
        let known = facts.classes.as_ref().is_none_or(|set| set.contains(&class.class));
        if class.class != "*" && !known {
            out.push(
                Violation::new(
                    "ui.unknown_class",
                    format!("{at}.class"),
                    format!("no device of this plugin has class `{}`", class.class),
                )
                .hint("use a class from mapping.toml or actions.toml, or `*` for every class"),
            );
        }
        check_class(class, &at, &facts, catalog, out);
    }
}

fn supported_actions(class: &str, actions: Option<&ActionsSpec>) -> Option<Vec<String>> {
    let actions = actions?;
    if class == "*" {
        let all: BTreeSet<&String> = actions.device_classes.iter().flat_map(|c| &c.actions).collect();
        return Some(all.into_iter().cloned().collect());
    }
    Some(actions.for_class(class).map(|c| c.actions.clone()).unwrap_or_default())
}

fn check_class(class: &ClassUi, at: &str, facts: &PluginFacts<'_>, catalog: &Catalog, out: &mut Vec<Violation>) {
    let actions = supported_actions(&class.class, facts.actions);
    // For `*` every class's constraints could apply; the widest check is the catalog's own range.
    let constraints = (class.class != "*")
        .then(|| facts.actions.and_then(|a| a.for_class(&class.class)).map(|c| &c.constraints))
        .flatten();
    let bindable = Bindable { capabilities: facts.capabilities.as_deref(), actions: actions.as_deref(), constraints };
    let mut titles: Vec<String> = if class.cards.is_empty() {
        GENERATED_TITLES.iter().map(|t| (*t).to_owned()).collect()
    } else {
        class.cards.iter().map(|c| c.title.clone()).collect()
    };
    for (j, card) in class.cards.iter().enumerate() {
        let card_at = format!("{at}.card[{j}]");
        if card.title.trim().is_empty() {
            out.push(Violation::new("ui.invalid_title", format!("{card_at}.title"), "a card needs a title"));
        }
        if card.widgets.is_empty() {
            out.push(Violation::new("ui.empty_card", format!("{card_at}.widget"), "a card needs at least one widget"));
        }
        for (k, spec) in card.widgets.iter().enumerate() {
            let widget = spec.resolve(catalog, &bindable);
            for p in check_widget(catalog, &widget, &bindable) {
                out.push(Violation::new(p.code, format!("{card_at}.widget[{k}].{}", p.field), p.message));
            }
        }
    }
    let selectors = class.hide.iter().enumerate().map(|(n, s)| (format!("{at}.hide[{n}]"), s));
    let labelled = class.labels.keys().map(|s| (format!("{at}.labels.{s}"), s));
    for (path, text) in selectors.chain(labelled) {
        check_selector(text, &path, catalog, out);
    }
    for (path, label) in class.labels.iter().map(|(s, l)| (format!("{at}.labels.{s}"), l)) {
        if label.trim().is_empty() || label.chars().count() > crate::ui_rules::MAX_LABEL_CHARS {
            out.push(Violation::new("ui.invalid_label", path, "a label needs 1 to 64 characters"));
        }
    }
    for (from, to) in &class.titles {
        let path = format!("{at}.titles.{from}");
        if !titles.contains(from) {
            out.push(Violation::new("ui.unknown_card", path, format!("no card is titled `{from}`")));
        } else if to.trim().is_empty() {
            out.push(Violation::new("ui.invalid_title", path, "a card needs a title"));
        }
    }
    titles = titles.into_iter().map(|t| class.titles.get(&t).cloned().unwrap_or(t)).collect();
    for (n, title) in class.order.iter().enumerate() {
        if !titles.contains(title) {
            out.push(
                Violation::new("ui.unknown_card", format!("{at}.order[{n}]"), format!("no card is titled `{title}`"))
                    .hint(format!("cards: {titles:?}")),
            );
        }
    }
}

fn check_selector(text: &str, path: &str, catalog: &Catalog, out: &mut Vec<Violation>) {
    match Selector::parse(text) {
        Some(s) if catalog.get(&s.name).is_some() || catalog.action(&s.name).is_some() => {}
        Some(s) => out.push(Violation::new(
            "ui.unknown_selector",
            path.to_owned(),
            format!("`{}` is neither a catalog capability nor a catalog action", s.name),
        )),
        None => out.push(
            Violation::new("ui.unknown_selector", path.to_owned(), format!("`{text}` is not a widget selector"))
                .hint("write `<capability or action>` or `<capability or action>:<widget type>`"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPING: &str = "version = 1\n[[rule]]\nrecord = \"demo.Obs\"\nexternal_id = \"id\"\n\
        device_class = { field = \"kind\", map = { lamp = \"light\", sensor = \"climate_sensor\" } }\n\
        [[rule.state]]\ncapability = \"switch\"\nfield = \"on\"\n\
        [[rule.state]]\ncapability = \"brightness\"\nfield = \"level\"\n\
        [[rule.state]]\ncapability = \"temperature\"\nfield = \"temp\"\n";
    const ACTIONS: &str = "version = 1\n[[device_class]]\nclass = \"light\"\n\
        actions = [\"toggle\", \"set_brightness\"]\n\
        [device_class.constraints.set_brightness.level]\nmin = 5.0\nmax = 95.0\n";

    fn run(ui: &str) -> Vec<Violation> {
        let mapping: MappingSpec = toml::from_str(MAPPING).unwrap();
        let actions: ActionsSpec = toml::from_str(ACTIONS).unwrap();
        let mut out = Vec::new();
        check(Some(ui), Some(&mapping), Some(&actions), Catalog::builtin(), &mut out);
        out
    }

    #[test]
    fn a_good_override_passes() {
        let ui = r#"
            version = 1
            [[device_class]]
            class = "light"
            [[device_class.card]]
            title = "Lamp"
            [[device_class.card.widget]]
            type = "toggle"
            capability = "switch"
            action = "toggle"
            label = "Power"
            [[device_class.card.widget]]
            type = "slider"
            capability = "brightness"
            action = "set_brightness"
            min = 10.0

            [[device_class]]
            class = "climate_sensor"
            hide = ["temperature:sparkline"]
            labels = { temperature = "Room temperature" }
            titles = { Readings = "Climate" }
            order = ["Climate"]
        "#;
        assert_eq!(run(ui), vec![]);
    }

    #[test]
    fn every_broken_invariant_is_reported_with_its_path() {
        let ui = r#"
            version = 1
            [[device_class]]
            class = "light"
            hide = ["warp_core"]
            order = ["Nowhere"]
            [[device_class.card]]
            title = "Lamp"
            [[device_class.card.widget]]
            type = "slider"
            capability = "brightness"
            action = "set_brightness"
            max = 99.0
            [[device_class.card.widget]]
            type = "button"
            action = "turn_on"
            [[device_class.card.widget]]
            type = "gauge"
            capability = "humidity"

            [[device_class]]
            class = "toaster"
        "#;
        let found: Vec<(String, String)> = run(ui).into_iter().map(|v| (v.code, v.path)).collect();
        let expect = [
            ("ui.range_outside_action", "ui.toml:device_class[0].card[0].widget[0].max"),
            ("ui.unsupported_action", "ui.toml:device_class[0].card[0].widget[1].action"),
            ("ui.unavailable_capability", "ui.toml:device_class[0].card[0].widget[2].capability"),
            ("ui.unknown_selector", "ui.toml:device_class[0].hide[0]"),
            ("ui.unknown_card", "ui.toml:device_class[0].order[0]"),
            ("ui.unknown_class", "ui.toml:device_class[1].class"),
        ];
        for (code, path) in expect {
            assert!(found.contains(&(code.to_owned(), path.to_owned())), "missing {code} at {path} in {found:?}");
        }
        assert_eq!(found.len(), expect.len(), "{found:?}");
    }

    #[test]
    fn malformed_files_and_unknown_widget_types_are_reported() {
        let found = run("version = 1\n[[device_class]]\nclass = \"light\"\n[[device_class.card]]\ntitle = \"x\"\n\
                         [[device_class.card.widget]]\ntype = \"hologram\"\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, "ui.malformed");
        assert_eq!(found[0].path, "ui.toml");
        assert!(found[0].message.contains("hologram"), "{}", found[0].message);
    }

    #[test]
    fn selectors_parse_names_and_types() {
        let s = Selector::parse("temperature:sparkline").unwrap();
        assert_eq!(s.widget, Some(WidgetType::Sparkline));
        assert!(Selector::parse("temperature:hologram").is_none());
        assert_eq!(Selector::parse("toggle").unwrap().widget, None);
        assert!(Selector::parse(":gauge").is_none());
    }
}
