//! Topic names, all under a configurable prefix (default `tessera.`).

/// The topic names of one installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
    partitions: u32,
}

impl Default for Topics {
    fn default() -> Self {
        Self::new("tessera.")
    }
}

impl Topics {
    /// Topics under `prefix` (e.g. `tessera.`).
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned(), partitions: 1 }
    }

    /// The same topics, with the data topics (`raw.*`, `device-events`) created with `partitions`
    /// partitions (at least 1): the unit by which mapper and projector instances divide the work.
    /// Topics that already exist keep their partitions.
    pub fn with_partitions(mut self, partitions: u32) -> Self {
        self.partitions = partitions.max(1);
        self
    }

    /// How many partitions `topic` (a full name) is created with: the configured count for the data
    /// topics, 1 for the others (commands, governance, dlq, schemas), whose readers are single.
    pub fn partitions_for(&self, topic: &str) -> u32 {
        let short = topic.strip_prefix(&self.prefix).unwrap_or(topic);
        if short.starts_with("raw.") || short == "device-events" { self.partitions } else { 1 }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_topics_take_the_configured_partitions() {
        let topics = Topics::new("t.").with_partitions(6);
        assert_eq!(topics.partitions_for(&topics.raw("simulator")), 6);
        assert_eq!(topics.partitions_for(&topics.device_events()), 6);
        for single in [topics.commands(), topics.governance(), topics.dlq(), topics.schemas()] {
            assert_eq!(topics.partitions_for(&single), 1, "{single}");
        }
        assert_eq!(Topics::new("t.").with_partitions(0).partitions_for("t.device-events"), 1);
    }
}
