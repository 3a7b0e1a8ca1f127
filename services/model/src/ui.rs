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

fn widget(widget: WidgetType, label: &str) -> Widget {
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

fn label(name: &str) -> String {
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
                let mut w = if cap.value_type == ValueType::Bool && supports("toggle") {
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
                    if cap.value_type == ValueType::Bool && supports("toggle") {
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
        assert!(controls.iter().any(|w| w.widget == WidgetType::Toggle && w.capability.as_deref() == Some("switch")));
        let slider = controls.iter().find(|w| w.widget == WidgetType::Slider).unwrap();
        assert_eq!(slider.action.as_deref(), Some("set_brightness"));
        assert_eq!(slider.max, Some(100.0));
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
