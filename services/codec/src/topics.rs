//! Topic names, all under a configurable prefix (default `tessera.`).

/// The topic names of one installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self::new("tessera.")
    }
}

impl Topics {
    /// Topics under `prefix` (e.g. `tessera.`).
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `raw.<plugin_id>`: a plugin's raw observations.
    pub fn raw(&self, plugin_id: &str) -> String {
        format!("{}raw.{plugin_id}", self.prefix)
    }

    /// `device-events`: the unified model's changes.
    pub fn device_events(&self) -> String {
        format!("{}device-events", self.prefix)
    }

    /// `commands`: action commands for plugins.
    pub fn commands(&self) -> String {
        format!("{}commands", self.prefix)
    }

    /// `dlq`: rejected records.
    pub fn dlq(&self) -> String {
        format!("{}dlq", self.prefix)
    }

    /// `governance`: plugin lifecycle.
    pub fn governance(&self) -> String {
        format!("{}governance", self.prefix)
    }

    /// `schemas`: the schema registry's storage.
    pub fn schemas(&self) -> String {
        format!("{}schemas", self.prefix)
    }

    /// Resolves a short name (`device-events`, `raw.simulator`) or a full name to a full name.
    pub fn resolve(&self, name: &str) -> String {
        if name.starts_with(&self.prefix) { name.to_owned() } else { format!("{}{name}", self.prefix) }
    }
}
