//! What frontends and the action surface need of each plugin package beyond its devices: the
//! actions it supports per device class with their parameter constraints (`actions.toml`) and its
//! UI overrides (`ui.toml`). Built from packages that pass contract validation; a plugin that is
//! not known here gets the catalog's ranges and the generated UI.

use std::collections::BTreeMap;

use crate::actions::{ActionsSpec, ParamRange};
use crate::package::{PackageFiles, validate};
use crate::ui::UiSchema;
use crate::ui_render::render;
use crate::ui_toml::UiSpec;
use crate::{Catalog, DeviceMetadata};

/// One plugin's published surface.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginSurface {
    /// Supported actions and their constraints.
    pub actions: ActionsSpec,
    /// UI overrides, when the package has a `ui.toml`.
    pub ui: Option<UiSpec>,
}

/// The surfaces of every plugin, by plugin id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginSurfaces {
    by_plugin: BTreeMap<String, PluginSurface>,
}

impl PluginSurfaces {
    /// The surfaces of the packages among `packages` that pass validation (others are skipped:
    /// the plugin-host refuses to run them, so they have no devices).
    pub fn from_packages(packages: impl IntoIterator<Item = PackageFiles>, catalog: &Catalog) -> Self {
        let mut out = Self::default();
        for files in packages {
            if let Ok(package) = validate(&files, catalog) {
                let ui = files.ui.as_deref().and_then(|text| UiSpec::parse(text).ok());
                out.insert(package.manifest.id, PluginSurface { actions: package.actions, ui });
            }
        }
        out
    }

    /// Adds or replaces a plugin's surface.
    pub fn insert(&mut self, plugin_id: impl Into<String>, surface: PluginSurface) {
        self.by_plugin.insert(plugin_id.into(), surface);
    }

    /// A plugin's surface.
    pub fn get(&self, plugin_id: &str) -> Option<&PluginSurface> {
        self.by_plugin.get(plugin_id)
    }

    /// How many plugins are known.
    pub fn len(&self) -> usize {
        self.by_plugin.len()
    }

    /// Whether no plugin is known.
    pub fn is_empty(&self) -> bool {
        self.by_plugin.is_empty()
    }

    /// The UI schema of a device of `plugin_id`.
    pub fn ui(&self, catalog: &Catalog, plugin_id: &str, device: &DeviceMetadata) -> UiSchema {
        let surface = self.get(plugin_id);
        render(catalog, device, surface.and_then(|s| s.ui.as_ref()), surface.map(|s| &s.actions))
    }

    /// The plugin's constraint on a parameter of an action for a device class, if it has one.
    pub fn constraint(&self, plugin_id: &str, class: &str, action: &str, param: &str) -> Option<ParamRange> {
        self.get(plugin_id)?.actions.for_class(class)?.constraints.get(action)?.get(param).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(ui: Option<&str>) -> PackageFiles {
        PackageFiles {
            manifest: Some(
                "id = \"demo\"\nname = \"Demo\"\nversion = \"0.1.0\"\napi_version = 1\nentrypoint = [\"python3\", \"main.py\"]\n".into(),
            ),
            contracts: vec![(
                "contract/obs.avsc".into(),
                r#"{"type":"record","name":"Obs","namespace":"demo","fields":[
                    {"name":"id","type":"string"},{"name":"level","type":["null","double"]}]}"#
                    .into(),
            )],
            mapping: Some(
                "version = 1\n[[rule]]\nrecord = \"demo.Obs\"\nexternal_id = \"id\"\ndevice_class = { value = \"light\" }\n\
                 [[rule.state]]\ncapability = \"brightness\"\nfield = \"level\"\n"
                    .into(),
            ),
            actions: Some(
                "version = 1\n[[device_class]]\nclass = \"light\"\nactions = [\"set_brightness\"]\n\
                 [device_class.constraints.set_brightness.level]\nmax = 70.0\n"
                    .into(),
            ),
            ui: ui.map(str::to_owned),
        }
    }

    #[test]
    fn surfaces_come_from_valid_packages_only() {
        let good = files(Some("version = 1\n[[device_class]]\nclass = \"light\"\nlabels = { brightness = \"Dim\" }\n"));
        let bad = files(Some("version = 1\n[[device_class]]\nclass = \"light\"\nhide = [\"warp\"]\n"));
        let surfaces = PluginSurfaces::from_packages([bad], Catalog::builtin());
        assert!(surfaces.is_empty(), "a package whose ui.toml breaks the rules is refused");
        let surfaces = PluginSurfaces::from_packages([good], Catalog::builtin());
        assert_eq!(surfaces.len(), 1);
        assert_eq!(surfaces.constraint("demo", "light", "set_brightness", "level").and_then(|r| r.max), Some(70.0));
        let device = DeviceMetadata {
            device_class: "light".into(),
            capabilities: vec!["brightness".into()],
            actions: vec!["set_brightness".into()],
            ..Default::default()
        };
        let ui = surfaces.ui(Catalog::builtin(), "demo", &device);
        assert_eq!(ui.cards[0].widgets[0].label, "Dim");
        assert_eq!(ui.cards[0].widgets[0].max, Some(70.0));
        let unknown = surfaces.ui(Catalog::builtin(), "other", &device);
        assert_eq!(unknown.cards[0].widgets[0].max, Some(100.0));
    }
}
