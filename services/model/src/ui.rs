//! The UI schema: cards of widgets, each bound to a capability or an action. Frontends render
//! devices only from this, so they never carry device-specific code.

use serde::{Deserialize, Serialize};

use crate::catalog::{CapabilityKind, ValueType};
use crate::{Catalog, DeviceMetadata};

/// Widget types of the DSL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WidgetType {
    /// A value with its unit.
    Value,
    /// A value on a bounded scale.
    Gauge,
    /// An on/off control.
    Toggle,
    /// A numeric control over a range.
    Slider,
    /// A choice among enum members.
    Select,
    /// A button that invokes a parameterless action.
    Button,
    /// A small chart of recent history.
    Sparkline,
    /// A binary status light.
    Status,
}

/// One widget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Widget {
    /// Widget type.
    #[serde(rename = "type")]
    pub widget: WidgetType,
    /// Label shown to the user.
    pub label: String,
    /// Capability whose value the widget shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    /// Action the widget invokes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Parameter of the action the widget sets (sliders, selects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// Unit shown beside values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Lower bound (gauges, sliders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Upper bound (gauges, sliders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Choices (selects).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A titled group of widgets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// Card title.
    pub title: String,
    /// Widgets in display order.
    pub widgets: Vec<Widget>,
}

/// The UI schema of one device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UiSchema {
    /// Cards in display order.
    pub cards: Vec<Card>,
}

/// A widget of type `widget` labelled `label`, bound to nothing yet.
pub(crate) fn widget(widget: WidgetType, label: &str) -> Widget {
    Widget {
        widget,
        label: label.to_owned(),
        capability: None,
        action: None,
        param: None,
        unit: None,
        min: None,
        max: None,
        options: Vec::new(),
    }
}

/// The default label of a capability or action name: `battery_low` → `Battery low`.
pub(crate) fn label(name: &str) -> String {
    let mut out = name.replace('_', " ");
    if let Some(first) = out.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    out
}

/// Generates the default UI schema of a device from its capabilities and supported actions.
pub fn generate(catalog: &Catalog, device: &DeviceMetadata) -> UiSchema {
    let mut controls = Vec::new();
    let mut readings = Vec::new();
    let mut info = Vec::new();
    let supports = |a: &str| device.actions.iter().any(|x| x == a);
    for name in &device.capabilities {
        let Some(cap) = catalog.get(name) else { continue };
        let text = label(name);
        match cap.kind {
            CapabilityKind::Actuator => {
                let setter = cap.actions.iter().find(|a| a.params.len() == 1 && supports(&a.name));
                // `toggle` belongs to one capability (`switch`); another on/off actuator gets its own actions.
                let toggles = cap.actions.iter().any(|a| a.name == "toggle") && supports("toggle");
                let mut w = if cap.value_type == ValueType::Bool && toggles {
                    let mut w = widget(WidgetType::Toggle, &text);
                    w.action = Some("toggle".into());
                    w
                } else if let Some(setter) = setter {
                    let param = &setter.params[0];
                    let kind =
                        if param.value_type == ValueType::Enum { WidgetType::Select } else { WidgetType::Slider };
                    let mut w = widget(kind, &text);
                    w.action = Some(setter.name.clone());
                    w.param = Some(param.name.clone());
                    w.min = param.min;
                    w.max = param.max;
                    w.options = param.values.clone();
                    w
                } else {
                    widget(WidgetType::Value, &text)
                };
                w.capability = Some(name.clone());
                w.unit = cap.unit.clone();
                controls.push(w);
                for action in cap.actions.iter().filter(|a| a.params.is_empty() && supports(&a.name)) {
                    if cap.value_type == ValueType::Bool && toggles {
                        continue;
                    }
                    let mut b = widget(WidgetType::Button, &label(&action.name));
                    b.action = Some(action.name.clone());
                    controls.push(b);
                }
            }
            CapabilityKind::Sensor => {
                let bounded = cap.unit.as_deref() == Some("%");
                let mut w = widget(if bounded { WidgetType::Gauge } else { WidgetType::Value }, &text);
                w.capability = Some(name.clone());
                w.unit = cap.unit.clone();
                if bounded {
                    w.min = cap.min;
                    w.max = cap.max;
                }
                readings.push(w);
                let mut s = widget(WidgetType::Sparkline, &format!("{text} history"));
                s.capability = Some(name.clone());
                s.unit = cap.unit.clone();
                readings.push(s);
            }
            CapabilityKind::BinarySensor => {
                let mut w = widget(WidgetType::Status, &text);
                w.capability = Some(name.clone());
                readings.push(w);
            }
            CapabilityKind::Attribute => {
                let mut w = widget(WidgetType::Value, &text);
                w.capability = Some(name.clone());
                w.unit = cap.unit.clone();
                info.push(w);
            }
        }
    }
    // On/off comes first: it is what a person reaches for (stable: the rest keep capability order).
    controls.sort_by_key(|w| w.widget != WidgetType::Toggle);
    let cards = [("Controls", controls), ("Readings", readings), ("Info", info)]
        .into_iter()
        .filter(|(_, w)| !w.is_empty())
        .map(|(title, widgets)| Card { title: title.to_owned(), widgets })
        .collect();
    UiSchema { cards }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dimmable_light_gets_a_toggle_and_a_slider() {
        let device = DeviceMetadata {
            name: "Lamp".into(),
            device_class: "light".into(),
            capabilities: vec!["brightness".into(), "switch".into()],
            actions: vec!["set_brightness".into(), "toggle".into(), "turn_off".into(), "turn_on".into()],
            ..Default::default()
        };
        let ui = generate(Catalog::builtin(), &device);
        let controls = &ui.cards[0].widgets;
        assert_eq!(controls[0].widget, WidgetType::Toggle, "on/off first");
        assert_eq!(controls[0].capability.as_deref(), Some("switch"));
        let slider = controls.iter().find(|w| w.widget == WidgetType::Slider).unwrap();
        assert_eq!(slider.action.as_deref(), Some("set_brightness"));
        assert_eq!(slider.max, Some(100.0));
    }

    #[test]
    fn every_generated_widget_keeps_the_invariants() {
        use crate::ui_rules::{Bindable, check_widget};
        let catalog = Catalog::builtin();
        for cap in catalog.iter() {
            let actions: Vec<String> = cap.actions.iter().map(|a| a.name.clone()).collect();
            let device = DeviceMetadata {
                capabilities: vec![cap.name.clone(), "switch".into()],
                actions: actions.iter().cloned().chain(["toggle".to_owned()]).collect(),
                ..Default::default()
            };
            let bindable = Bindable {
                capabilities: Some(&device.capabilities),
                actions: Some(&device.actions),
                constraints: None,
            };
            let ui = generate(catalog, &device);
            for w in ui.cards.iter().flat_map(|c| &c.widgets) {
                let problems = check_widget(catalog, w, &bindable);
                assert!(problems.is_empty(), "{}: {w:?} breaks {problems:?}", cap.name);
            }
        }
    }

    #[test]
    fn a_valve_is_not_toggled_by_the_switch_action() {
        let device = DeviceMetadata {
            capabilities: vec!["switch".into(), "valve".into()],
            actions: vec!["close_valve".into(), "open_valve".into(), "toggle".into()],
            ..Default::default()
        };
        let ui = generate(Catalog::builtin(), &device);
        let toggles: Vec<_> = ui.cards[0].widgets.iter().filter(|w| w.widget == WidgetType::Toggle).collect();
        assert_eq!(toggles.len(), 1);
        assert_eq!(toggles[0].capability.as_deref(), Some("switch"));
        assert!(ui.cards[0].widgets.iter().any(|w| w.action.as_deref() == Some("open_valve")));
    }

    #[test]
    fn the_published_json_schema_matches_the_types() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../schemas/ui-schema.json")).expect("ui-schema.json parses");
        let published_widget = &schema["$defs"]["widget"];
        let types: Vec<String> = published_widget["properties"]["type"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| serde_json::from_value::<WidgetType>(v.clone()).map(|_| v.as_str().unwrap().to_owned()).unwrap())
            .collect();
        assert_eq!(types.len(), 8, "every widget type is published: {types:?}");
        let mut full = widget(WidgetType::Select, "Mode");
        (full.capability, full.action, full.param, full.unit) =
            (Some("c".into()), Some("a".into()), Some("p".into()), Some("u".into()));
        (full.min, full.max, full.options) = (Some(0.0), Some(1.0), vec!["x".into()]);
        let fields: Vec<String> = serde_json::to_value(&full).unwrap().as_object().unwrap().keys().cloned().collect();
        let published: Vec<String> = published_widget["properties"].as_object().unwrap().keys().cloned().collect();
        let (mut fields, mut published) = (fields, published);
        fields.sort();
        published.sort();
        assert_eq!(fields, published, "the JSON Schema lists exactly the fields a widget serializes");
    }

    #[test]
    fn sensors_get_values_and_sparklines() {
        let device = DeviceMetadata { capabilities: vec!["temperature".into()], ..Default::default() };
        let ui = generate(Catalog::builtin(), &device);
        assert_eq!(ui.cards.len(), 1);
        assert_eq!(ui.cards[0].widgets[0].widget, WidgetType::Value);
        assert_eq!(ui.cards[0].widgets[1].widget, WidgetType::Sparkline);
    }
}
