//! What the mapper remembers of each device, to emit `Upserted` and `Availability` only on change.

use std::collections::{BTreeSet, HashMap};

use tessera_model::actions::ActionsSpec;
use tessera_model::mapping::MappedObservation;
use tessera_model::{Catalog, DeviceMetadata};

/// Largest number of devices remembered per worker; beyond it the cache starts over, which only
/// costs redundant (idempotent) `Upserted` events.
const MAX_DEVICES: usize = 100_000;

#[derive(Debug, Default)]
struct Known {
    metadata: DeviceMetadata,
    online: Option<bool>,
}

/// The per-worker device cache.
#[derive(Debug, Default)]
pub struct DeviceCache {
    devices: HashMap<String, Known>,
}

/// What changed for a device after one observation.
#[derive(Debug, Default)]
pub struct Changes {
    /// New metadata, when it changed.
    pub upserted: Option<DeviceMetadata>,
    /// New availability, when it changed.
    pub online: Option<bool>,
}

impl DeviceCache {
    /// Folds an observation into the device's known metadata and reports what changed.
    pub fn observe(&mut self, catalog: &Catalog, actions: &ActionsSpec, obs: &MappedObservation) -> Changes {
        if self.devices.len() >= MAX_DEVICES && !self.devices.contains_key(&obs.external_id) {
            self.devices.clear();
        }
        if let Some(known) = self.devices.get_mut(&obs.external_id)
            && unchanged(&known.metadata, obs)
        {
            // The common case, an observation of a known device that changes none of its
            // metadata: only availability can change.
            let mut changes = Changes::default();
            if let Some(online) = obs.online
                && known.online != Some(online)
            {
                known.online = Some(online);
                changes.online = Some(online);
            }
            return changes;
        }
        let known = self.devices.entry(obs.external_id.clone()).or_default();
        let mut next = known.metadata.clone();
        let fresh = next.name.is_empty() && next.device_class.is_empty();
        if let Some(name) = &obs.name {
            next.name.clone_from(name);
        }
        if next.name.is_empty() {
            next.name.clone_from(&obs.external_id);
        }
        if let Some(class) = &obs.device_class {
            next.device_class.clone_from(class);
        }
        if next.device_class.is_empty() {
            next.device_class = "generic".into();
        }
        for (slot, value) in [
            (&mut next.manufacturer, &obs.manufacturer),
            (&mut next.model, &obs.model),
            (&mut next.firmware, &obs.firmware),
        ] {
            if value.is_some() {
                slot.clone_from(value);
            }
        }
        let mut capabilities: BTreeSet<String> = next.capabilities.iter().cloned().collect();
        capabilities.extend(obs.states.iter().map(|s| s.capability.clone()));
        next.capabilities = capabilities.into_iter().collect();
        next.actions = supported_actions(catalog, actions, &next);
        let mut changes = Changes::default();
        if fresh || next != known.metadata {
            changes.upserted = Some(next.clone());
            known.metadata = next;
        }
        let online = obs.online.or(if fresh { Some(true) } else { None });
        if let Some(online) = online
            && known.online != Some(online)
        {
            known.online = Some(online);
            changes.online = Some(online);
        }
        changes
    }
}

/// Whether folding `obs` into the metadata of a device seen before leaves it as it is: the slow
/// path of [`DeviceCache::observe`] would then compute the same metadata (the same fields, the
/// same capabilities, hence the same actions) and report no change of it. Capabilities are kept
/// sorted.
fn unchanged(known: &DeviceMetadata, obs: &MappedObservation) -> bool {
    let same = |slot: &str, value: &Option<String>| value.as_deref().is_none_or(|v| v == slot);
    let same_opt = |slot: &Option<String>, value: &Option<String>| value.is_none() || value == slot;
    !known.name.is_empty()
        && !known.device_class.is_empty()
        && same(&known.name, &obs.name)
        && same(&known.device_class, &obs.device_class)
        && same_opt(&known.manufacturer, &obs.manufacturer)
        && same_opt(&known.model, &obs.model)
        && same_opt(&known.firmware, &obs.firmware)
        && obs.states.iter().all(|s| known.capabilities.binary_search(&s.capability).is_ok())
}

/// Actions the plugin supports for the device's class that act on a capability the device has.
fn supported_actions(catalog: &Catalog, actions: &ActionsSpec, device: &DeviceMetadata) -> Vec<String> {
    let Some(class) = actions.for_class(&device.device_class) else { return Vec::new() };
    let mut out: Vec<String> = class
        .actions
        .iter()
        .filter(|a| catalog.action(a).is_some_and(|(cap, _)| device.capabilities.contains(&cap.name)))
        .cloned()
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_model::{StateEntry, StateValue};

    fn obs(states: &[&str]) -> MappedObservation {
        MappedObservation {
            external_id: "lamp".into(),
            name: Some("Lamp".into()),
            device_class: Some("light".into()),
            states: states
                .iter()
                .map(|c| StateEntry { capability: (*c).into(), value: StateValue::Bool(true) })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn upserts_only_on_change() {
        let actions: ActionsSpec = toml::from_str(
            "version = 1\n[[device_class]]\nclass = \"light\"\nactions = [\"toggle\", \"set_brightness\"]\n",
        )
        .unwrap();
        let mut cache = DeviceCache::default();
        let first = cache.observe(Catalog::builtin(), &actions, &obs(&["switch"]));
        let meta = first.upserted.unwrap();
        assert_eq!(meta.actions, vec!["toggle".to_string()]);
        assert_eq!(first.online, Some(true));
        let second = cache.observe(Catalog::builtin(), &actions, &obs(&["switch"]));
        assert!(second.upserted.is_none() && second.online.is_none());
        let third = cache.observe(Catalog::builtin(), &actions, &obs(&["brightness"]));
        assert_eq!(third.upserted.unwrap().actions, vec!["set_brightness".to_string(), "toggle".to_string()]);
    }
}
