//! The UI schema served for one device: the cards generated from its capabilities, or the
//! plugin's own cards from `ui.toml`, patched by `ui.toml` (hide, relabel, retitle, reorder),
//! with slider ranges narrowed to the plugin's `actions.toml` constraints. A widget that binds to
//! something this device lacks, or breaks an invariant, is left out: frontends only ever get
//! widgets they can render and act through.

use crate::actions::{ActionsSpec, ParamRange};
use crate::ui::{Card, UiSchema, Widget, generate};
use crate::ui_rules::{Bindable, check_widget};
use crate::ui_toml::{ClassUi, Selector, UiSpec};
use crate::{Catalog, DeviceMetadata};

/// Renders the UI schema of `device` given its plugin's `ui.toml` and `actions.toml`, if known.
pub fn render(
    catalog: &Catalog,
    device: &DeviceMetadata,
    ui: Option<&UiSpec>,
    actions: Option<&ActionsSpec>,
) -> UiSchema {
    let constraints = actions.and_then(|a| a.for_class(&device.device_class)).map(|c| &c.constraints);
    let bindable = Bindable { capabilities: Some(&device.capabilities), actions: Some(&device.actions), constraints };
    let class = ui.and_then(|u| u.for_class(&device.device_class));
    let mut cards = match class {
        Some(class) if !class.cards.is_empty() => class
            .cards
            .iter()
            .map(|c| Card {
                title: c.title.clone(),
                widgets: c.widgets.iter().map(|w| w.resolve(catalog, &bindable)).collect(),
            })
            .collect(),
        _ => generate(catalog, device).cards,
    };
    for w in cards.iter_mut().flat_map(|c| c.widgets.iter_mut()) {
        narrow(w, &bindable);
    }
    if let Some(class) = class {
        patch(&mut cards, class);
    }
    for card in &mut cards {
        card.widgets.retain(|w| check_widget(catalog, w, &bindable).is_empty());
    }
    cards.retain(|c| !c.widgets.is_empty());
    UiSchema { cards }
}

/// Narrows a control's range to the plugin's constraint on its parameter.
fn narrow(w: &mut Widget, bindable: &Bindable<'_>) {
    let (Some(action), Some(param)) = (&w.action, &w.param) else { return };
    let Some(&ParamRange { min, max }) = bindable.constraints.and_then(|c| c.get(action)).and_then(|p| p.get(param))
    else {
        return;
    };
    let pick = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    };
    w.min = pick(w.min, min, f64::max);
    w.max = pick(w.max, max, f64::min);
}

/// The most specific selector among `selectors` that picks `w` (`name:type` beats `name`).
fn best<'a, T>(selectors: impl Iterator<Item = (&'a String, T)>, w: &Widget) -> Option<T> {
    let mut found: Option<(bool, T)> = None;
    for (text, value) in selectors {
        let Some(s) = Selector::parse(text) else { continue };
        if s.matches(w) && found.as_ref().is_none_or(|(specific, _)| !specific && s.widget.is_some()) {
            found = Some((s.widget.is_some(), value));
        }
    }
    found.map(|(_, v)| v)
}

fn patch(cards: &mut [Card], class: &ClassUi) {
    let hidden: Vec<Selector> = class.hide.iter().filter_map(|s| Selector::parse(s)).collect();
    for card in cards.iter_mut() {
        card.widgets.retain(|w| !hidden.iter().any(|s| s.matches(w)));
        for w in &mut card.widgets {
            if let Some(label) = best(class.labels.iter(), w) {
                w.label.clone_from(label);
            }
        }
        if let Some(title) = class.titles.get(&card.title) {
            card.title.clone_from(title);
        }
    }
    let rank = |c: &Card| class.order.iter().position(|t| *t == c.title).unwrap_or(usize::MAX);
    cards.sort_by_key(rank); // stable: unlisted cards keep their order after the listed ones
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::WidgetType;

    fn lamp() -> DeviceMetadata {
        DeviceMetadata {
            name: "Lamp".into(),
            device_class: "light".into(),
            capabilities: vec!["brightness".into(), "power".into(), "switch".into()],
            actions: vec!["set_brightness".into(), "toggle".into(), "turn_off".into(), "turn_on".into()],
            ..Default::default()
        }
    }

    fn actions() -> ActionsSpec {
        toml::from_str(
            "version = 1\n[[device_class]]\nclass = \"light\"\nactions = [\"toggle\", \"set_brightness\"]\n\
             [device_class.constraints.set_brightness.level]\nmin = 5.0\nmax = 80.0\n",
        )
        .unwrap()
    }

    fn widgets(ui: &UiSchema) -> Vec<(String, WidgetType, String)> {
        ui.cards.iter().flat_map(|c| c.widgets.iter().map(|w| (c.title.clone(), w.widget, w.label.clone()))).collect()
    }

    #[test]
    fn without_overrides_the_generated_schema_is_served_with_the_plugin_ranges() {
        let ui = render(Catalog::builtin(), &lamp(), None, Some(&actions()));
        assert_eq!(ui.cards.iter().map(|c| c.title.as_str()).collect::<Vec<_>>(), vec!["Controls", "Readings"]);
        let slider = ui.cards[0].widgets.iter().find(|w| w.widget == WidgetType::Slider).unwrap();
        assert_eq!((slider.min, slider.max), (Some(5.0), Some(80.0)));
        let catalog_only = render(Catalog::builtin(), &lamp(), None, None);
        let slider = catalog_only.cards[0].widgets.iter().find(|w| w.widget == WidgetType::Slider).unwrap();
        assert_eq!(slider.max, Some(100.0));
    }

    #[test]
    fn patches_hide_relabel_retitle_and_reorder() {
        let spec = UiSpec::parse(
            "version = 1\n[[device_class]]\nclass = \"light\"\nhide = [\"power:sparkline\", \"turn_on\"]\n\
             labels = { switch = \"Power\", \"brightness:slider\" = \"Dim\", brightness = \"unused\" }\n\
             titles = { Readings = \"Energy\" }\norder = [\"Energy\"]\n",
        )
        .unwrap();
        let ui = render(Catalog::builtin(), &lamp(), Some(&spec), Some(&actions()));
        assert_eq!(
            widgets(&ui),
            vec![
                ("Energy".into(), WidgetType::Value, "Power".into()),
                ("Controls".into(), WidgetType::Toggle, "Power".into()),
                ("Controls".into(), WidgetType::Slider, "Dim".into()),
            ]
        );
    }

    #[test]
    fn plugin_cards_replace_the_generated_ones_and_drop_what_the_device_lacks() {
        let spec = UiSpec::parse(
            "version = 1\n[[device_class]]\nclass = \"*\"\n[[device_class.card]]\ntitle = \"Lamp\"\n\
             [[device_class.card.widget]]\ntype = \"toggle\"\ncapability = \"switch\"\naction = \"toggle\"\n\
             [[device_class.card.widget]]\ntype = \"slider\"\ncapability = \"color_temperature\"\naction = \"set_color_temperature\"\n\
             [[device_class.card.widget]]\ntype = \"slider\"\ncapability = \"brightness\"\naction = \"set_brightness\"\n",
        )
        .unwrap();
        let ui = render(Catalog::builtin(), &lamp(), Some(&spec), Some(&actions()));
        assert_eq!(ui.cards.len(), 1);
        let w = &ui.cards[0].widgets;
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!((w[1].param.as_deref(), w[1].min, w[1].max), (Some("level"), Some(5.0), Some(80.0)));
        assert_eq!(w[0].label, "Switch");
    }
}
