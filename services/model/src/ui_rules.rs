//! The invariants of a widget of the UI schema, shared by `ui.toml` validation and by rendering:
//! a widget binds to what exists (catalog capability, supported action, one of its parameters),
//! its type suits what it binds to, and its range lies inside the capability's or the action's.
//!
//! The same checks run on the widgets a plugin writes in `ui.toml` (where each problem becomes a
//! `Violation` with a `ui.toml:` path) and on every widget served for a device (where a widget that
//! breaks them is dropped), so a frontend never receives a widget it cannot render or act through.

use std::collections::BTreeMap;

use crate::Catalog;
use crate::actions::ParamRange;
use crate::catalog::{ActionParam, Capability, ValueType};
use crate::ui::{Widget, WidgetType};

/// Longest label accepted, in characters.
pub const MAX_LABEL_CHARS: usize = 64;

/// What widgets may bind to: a device's (or a device class's) capabilities, supported actions and
/// the plugin's narrower parameter ranges. `None` means "not known": that check is skipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bindable<'a> {
    /// Capabilities available (a device's, or those a plugin's mapping produces).
    pub capabilities: Option<&'a [String]>,
    /// Supported normalized actions.
    pub actions: Option<&'a [String]>,
    /// The plugin's constraints: action → parameter → range (from `actions.toml`).
    pub constraints: Option<&'a BTreeMap<String, BTreeMap<String, ParamRange>>>,
}

/// One broken invariant of a widget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Stable code, `ui.*`.
    pub code: &'static str,
    /// The widget field at fault (`capability`, `action`, `param`, `min`, ...).
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn problem(code: &'static str, field: &'static str, message: impl Into<String>) -> Problem {
    Problem { code, field, message: message.into() }
}

/// Whether the widget type only shows a capability (as opposed to invoking an action).
pub fn is_display(t: WidgetType) -> bool {
    matches!(t, WidgetType::Value | WidgetType::Gauge | WidgetType::Sparkline | WidgetType::Status)
}

fn numeric(t: ValueType) -> bool {
    matches!(t, ValueType::Float | ValueType::Int)
}

/// The range a parameter accepts: the catalog's, narrowed by the plugin's constraint.
pub fn param_range(param: &ActionParam, constraint: Option<&ParamRange>) -> (Option<f64>, Option<f64>) {
    let narrow = |a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64| match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    };
    (
        narrow(param.min, constraint.and_then(|c| c.min), f64::max),
        narrow(param.max, constraint.and_then(|c| c.max), f64::min),
    )
}

fn outside(lo: Option<f64>, hi: Option<f64>, min: Option<f64>, max: Option<f64>) -> Option<(&'static str, f64)> {
    if let (Some(v), Some(lo)) = (min, lo)
        && v < lo
    {
        return Some(("min", v));
    }
    if let (Some(v), Some(hi)) = (max, hi)
        && v > hi
    {
        return Some(("max", v));
    }
    // A bound on one side may still fall outside the range from the other side.
    if let (Some(v), Some(hi)) = (min, hi)
        && v > hi
    {
        return Some(("min", v));
    }
    if let (Some(v), Some(lo)) = (max, lo)
        && v < lo
    {
        return Some(("max", v));
    }
    None
}

fn show(b: Option<f64>) -> String {
    b.map_or_else(|| "unbounded".to_owned(), |v| v.to_string())
}

/// Checks every invariant of one widget against the catalog and what it may bind to.
pub fn check_widget(catalog: &Catalog, w: &Widget, bindable: &Bindable<'_>) -> Vec<Problem> {
    let mut out = Vec::new();
    if w.label.trim().is_empty() || w.label.chars().count() > MAX_LABEL_CHARS {
        out.push(problem("ui.invalid_label", "label", format!("a label needs 1 to {MAX_LABEL_CHARS} characters")));
    }
    if let (Some(min), Some(max)) = (w.min, w.max)
        && min > max
    {
        out.push(problem("ui.range_inverted", "min", format!("min {min} is above max {max}")));
    }
    let cap = check_capability(catalog, w, bindable, &mut out);
    if is_display(w.widget) {
        check_display(w, cap, &mut out);
    } else {
        check_control(catalog, w, cap, bindable, &mut out);
    }
    out
}

fn check_capability<'c>(
    catalog: &'c Catalog,
    w: &Widget,
    bindable: &Bindable<'_>,
    out: &mut Vec<Problem>,
) -> Option<&'c Capability> {
    let name = w.capability.as_deref()?;
    let Some(cap) = catalog.get(name) else {
        out.push(problem("ui.unknown_capability", "capability", format!("`{name}` is not a catalog capability")));
        return None;
    };
    if bindable.capabilities.is_some_and(|caps| !caps.iter().any(|c| c == name)) {
        out.push(problem(
            "ui.unavailable_capability",
            "capability",
            format!("`{name}` is not among the capabilities the plugin's mapping produces"),
        ));
    }
    if let Some(unit) = &w.unit
        && cap.unit.as_ref() != Some(unit)
    {
        out.push(problem(
            "ui.unit_mismatch",
            "unit",
            format!("values of `{name}` are in {:?}, not `{unit}`", cap.unit.as_deref().unwrap_or("no unit")),
        ));
    }
    Some(cap)
}

fn check_display(w: &Widget, cap: Option<&Capability>, out: &mut Vec<Problem>) {
    let kind = w.widget;
    if w.capability.is_none() {
        out.push(problem("ui.missing_capability", "capability", format!("a `{kind:?}` widget shows a capability")));
    }
    if w.action.is_some() || w.param.is_some() {
        out.push(problem("ui.display_with_action", "action", "a display widget cannot invoke an action"));
    }
    let Some(cap) = cap else { return };
    let fits = match kind {
        WidgetType::Gauge | WidgetType::Sparkline => numeric(cap.value_type),
        WidgetType::Status => cap.value_type == ValueType::Bool,
        _ => true,
    };
    if !fits {
        out.push(problem(
            "ui.type_mismatch",
            "type",
            format!("a `{kind:?}` widget cannot show `{}` ({:?} values)", cap.name, cap.value_type),
        ));
    }
    if kind == WidgetType::Gauge && (w.min.or(cap.min).is_none() || w.max.or(cap.max).is_none()) {
        out.push(problem("ui.unbounded_gauge", "max", format!("a gauge of `{}` needs min and max", cap.name)));
    }
    if let Some((field, v)) = outside(cap.min, cap.max, w.min, w.max) {
        out.push(problem(
            "ui.range_outside_capability",
            field,
            format!("{field} {v} is outside `{}`'s range [{}, {}]", cap.name, show(cap.min), show(cap.max)),
        ));
    }
}

fn check_control(
    catalog: &Catalog,
    w: &Widget,
    cap: Option<&Capability>,
    bindable: &Bindable<'_>,
    out: &mut Vec<Problem>,
) {
    let kind = w.widget;
    let Some(action) = w.action.as_deref() else {
        out.push(problem("ui.missing_action", "action", format!("a `{kind:?}` widget must be bound to an action")));
        return;
    };
    let Some((owner, def)) = catalog.action(action) else {
        out.push(problem("ui.unknown_action", "action", format!("`{action}` is not a catalog action")));
        return;
    };
    if bindable.actions.is_some_and(|actions| !actions.iter().any(|a| a == action)) {
        out.push(problem(
            "ui.unsupported_action",
            "action",
            format!("`{action}` is not among the actions the plugin supports (actions.toml)"),
        ));
    }
    if let Some(cap) = cap
        && cap.name != owner.name
    {
        out.push(problem(
            "ui.action_capability_mismatch",
            "action",
            format!("`{action}` acts on `{}`, not on `{}`", owner.name, cap.name),
        ));
    }
    match kind {
        WidgetType::Toggle | WidgetType::Button => {
            if !def.params.is_empty() {
                out.push(problem(
                    "ui.action_needs_params",
                    "action",
                    format!("`{action}` takes parameters; a `{kind:?}` widget sends none (use a slider or select)"),
                ));
            }
            if kind == WidgetType::Toggle && owner.value_type != ValueType::Bool {
                out.push(problem("ui.type_mismatch", "type", format!("`{}` is not on/off", owner.name)));
            }
            if w.param.is_some() {
                out.push(problem("ui.unknown_param", "param", format!("`{action}` takes no parameter")));
            }
        }
        _ => check_setter(w, action, &def.params, bindable, out),
    }
}

/// Sliders and selects set the single parameter of their action.
fn check_setter(w: &Widget, action: &str, params: &[ActionParam], bindable: &Bindable<'_>, out: &mut Vec<Problem>) {
    let kind = w.widget;
    let [param] = params else {
        out.push(problem(
            "ui.action_needs_params",
            "action",
            format!("a `{kind:?}` widget sets one parameter; `{action}` takes {}", params.len()),
        ));
        return;
    };
    if w.param.as_deref().is_some_and(|p| p != param.name) {
        out.push(problem("ui.unknown_param", "param", format!("`{action}` has no parameter `{}`", show_opt(&w.param))));
        return;
    }
    let fits = match kind {
        WidgetType::Slider => numeric(param.value_type),
        _ => param.value_type == ValueType::Enum,
    };
    if !fits {
        out.push(problem(
            "ui.type_mismatch",
            "type",
            format!("a `{kind:?}` widget cannot set `{}` ({:?})", param.name, param.value_type),
        ));
        return;
    }
    let constraint = bindable.constraints.and_then(|c| c.get(action)).and_then(|p| p.get(&param.name));
    let (lo, hi) = param_range(param, constraint);
    if kind == WidgetType::Slider && (w.min.or(lo).is_none() || w.max.or(hi).is_none()) {
        out.push(problem("ui.unbounded_slider", "max", format!("a slider for `{action}` needs min and max")));
    }
    if let Some((field, v)) = outside(lo, hi, w.min, w.max) {
        out.push(problem(
            "ui.range_outside_action",
            field,
            format!("{field} {v} is outside the range [{}, {}] that `{action}` accepts", show(lo), show(hi)),
        ));
    }
    if let Some(bad) = w.options.iter().find(|o| !param.values.contains(o)) {
        out.push(problem(
            "ui.unknown_option",
            "options",
            format!("`{bad}` is not a value of `{}`; allowed: {:?}", param.name, param.values),
        ));
    }
}

fn show_opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::widget;

    fn codes(w: &Widget, b: &Bindable<'_>) -> Vec<&'static str> {
        check_widget(Catalog::builtin(), w, b).into_iter().map(|p| p.code).collect()
    }

    fn slider(min: Option<f64>, max: Option<f64>) -> Widget {
        let mut w = widget(WidgetType::Slider, "Brightness");
        w.capability = Some("brightness".into());
        w.action = Some("set_brightness".into());
        w.param = Some("level".into());
        (w.min, w.max) = (min, max);
        w
    }

    #[test]
    fn a_slider_inside_the_range_passes() {
        assert!(codes(&slider(Some(10.0), Some(90.0)), &Bindable::default()).is_empty());
    }

    #[test]
    fn ranges_must_lie_inside_the_catalog_and_the_plugin_constraints() {
        assert_eq!(codes(&slider(Some(-5.0), Some(100.0)), &Bindable::default()), vec!["ui.range_outside_action"]);
        let constraints: BTreeMap<String, BTreeMap<String, ParamRange>> = BTreeMap::from([(
            "set_brightness".to_owned(),
            BTreeMap::from([("level".to_owned(), ParamRange { min: Some(10.0), max: Some(80.0) })]),
        )]);
        let b = Bindable { constraints: Some(&constraints), ..Default::default() };
        assert_eq!(codes(&slider(Some(10.0), Some(90.0)), &b), vec!["ui.range_outside_action"]);
        assert!(codes(&slider(Some(20.0), Some(80.0)), &b).is_empty());
        assert_eq!(
            param_range(&Catalog::builtin().action("set_brightness").unwrap().1.params[0], None),
            (Some(0.0), Some(100.0))
        );
        let mut gauge = widget(WidgetType::Gauge, "Humidity");
        gauge.capability = Some("humidity".into());
        gauge.max = Some(120.0);
        assert_eq!(codes(&gauge, &Bindable::default()), vec!["ui.range_outside_capability"]);
        assert_eq!(codes(&slider(Some(60.0), Some(40.0)), &Bindable::default()), vec!["ui.range_inverted"]);
    }

    #[test]
    fn actuator_widgets_bind_to_supported_actions_of_their_capability() {
        let actions = vec!["toggle".to_owned()];
        let b = Bindable { actions: Some(&actions), ..Default::default() };
        assert_eq!(codes(&slider(None, None), &b), vec!["ui.unsupported_action"]);
        let mut unbound = widget(WidgetType::Toggle, "Power");
        unbound.capability = Some("switch".into());
        assert_eq!(codes(&unbound, &b), vec!["ui.missing_action"]);
        unbound.action = Some("set_brightness".into());
        let found = codes(&unbound, &Bindable::default());
        assert!(found.contains(&"ui.action_capability_mismatch") && found.contains(&"ui.action_needs_params"));
        let mut button = widget(WidgetType::Button, "Warp");
        button.action = Some("engage_warp".into());
        assert_eq!(codes(&button, &b), vec!["ui.unknown_action"]);
    }

    #[test]
    fn display_widgets_show_existing_capabilities_of_a_suitable_type() {
        let caps = vec!["temperature".to_owned()];
        let b = Bindable { capabilities: Some(&caps), ..Default::default() };
        let mut status = widget(WidgetType::Status, "Temp");
        status.capability = Some("temperature".into());
        assert_eq!(codes(&status, &b), vec!["ui.type_mismatch"]);
        let mut value = widget(WidgetType::Value, "Humidity");
        value.capability = Some("humidity".into());
        assert_eq!(codes(&value, &b), vec!["ui.unavailable_capability"]);
        value.capability = Some("warp_factor".into());
        assert_eq!(codes(&value, &b), vec!["ui.unknown_capability"]);
        let mut empty = widget(WidgetType::Sparkline, " ");
        empty.unit = Some("K".into());
        let found = codes(&empty, &b);
        assert!(found.contains(&"ui.invalid_label") && found.contains(&"ui.missing_capability"), "{found:?}");
    }

    #[test]
    fn selects_offer_only_values_of_their_parameter() {
        let mut select = widget(WidgetType::Select, "Mode");
        select.capability = Some("thermostat_mode".into());
        select.action = Some("set_thermostat_mode".into());
        select.options = vec!["heat".into(), "warp".into()];
        assert_eq!(codes(&select, &Bindable::default()), vec!["ui.unknown_option"]);
    }
}
