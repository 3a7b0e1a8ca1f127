//! `tessera plugin new NAME`: a Python plugin package that passes `check` and `test` as generated:
//! one virtual dimmable lamp, its contract, mapping and actions, and the single-file SDK copied in
//! so that the package is self-contained.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The Python SDK, embedded at build time.
const SDK: &str = include_str!("../../../../plugins/sdk-python/tessera_plugin.py");

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn manifest(id: &str) -> String {
    format!(
        r#"# Manifest of the `{id}` plugin (format: schemas/package/plugin.toml.md).
id = "{id}"
name = "{id}"
version = "0.1.0"
api_version = 1
description = "A virtual dimmable lamp: replace it with your devices."
device_families = ["virtual"]
entrypoint = ["python3", "src/main.py"]
secrets = []

[config.interval_ms]
type = "int"
default = 1000
description = "Time between two readings, in milliseconds."

[limits]
memory_mb = 256
observations_per_second = 100
call_timeout_ms = 5000
heartbeat_interval_ms = 2000
"#
    )
}

fn contract(namespace: &str) -> String {
    format!(
        r#"{{
  "type": "record",
  "name": "Reading",
  "namespace": "{namespace}",
  "doc": "One reading of one lamp. Add fields with defaults only: the contract must stay backward compatible.",
  "fields": [
    {{"name": "device_id", "type": "string"}},
    {{"name": "name", "type": "string"}},
    {{"name": "on", "type": "boolean"}},
    {{"name": "brightness", "type": ["null", "double"], "default": null, "doc": "percent"}}
  ]
}}
"#
    )
}

fn mapping(namespace: &str) -> String {
    format!(
        r#"# Raw fields → unified capabilities (format: schemas/package/mapping.toml.md).
version = 1

[[rule]]
record = "{namespace}.Reading"
external_id = "device_id"
name = {{ field = "name" }}
device_class = {{ value = "light" }}

[[rule.state]]
capability = "switch"
field = "on"

[[rule.state]]
capability = "brightness"
field = "brightness"
"#
    )
}

const ACTIONS: &str = r#"# Normalized actions supported per device class (format: schemas/package/actions.toml.md).
version = 1

[[device_class]]
class = "light"
actions = ["turn_on", "turn_off", "toggle", "set_brightness"]
"#;

fn main_py(id: &str, namespace: &str) -> String {
    format!(
        r#""""The `{id}` plugin: one virtual dimmable lamp. Replace it with your devices."""

import threading

from tessera_plugin import Plugin, PluginError, UNKNOWN_DEVICE, UNSUPPORTED_ACTION, run

RECORD = "{namespace}.Reading"


class Lamp(Plugin):
    def initialize(self, config, secrets, state_dir):
        self.interval = max(0.05, int(config.get("interval_ms", 1000)) / 1000.0)
        self.lock = threading.Lock()
        self.lamps = {{"lamp-1": {{"name": "Lamp 1", "on": False, "brightness": 50.0}}}}

    def reading(self, device_id):
        lamp = self.lamps[device_id]
        return {{"device_id": device_id, "name": lamp["name"], "on": lamp["on"], "brightness": lamp["brightness"]}}

    def discover(self):
        with self.lock:
            return [self.observation(d, RECORD, self.reading(d)) for d in self.lamps]

    def start(self):
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self.stopping.wait(self.interval):
            with self.lock:
                readings = [self.reading(d) for d in self.lamps]
            for r in readings:
                self.emit(r["device_id"], RECORD, r)

    def invoke(self, external_id, action, params, dry_run):
        with self.lock:
            lamp = self.lamps.get(external_id)
            if lamp is None:
                raise PluginError(UNKNOWN_DEVICE, f"no device {{external_id}}")
            on, brightness = lamp["on"], lamp["brightness"]
            if action == "turn_on":
                on = True
            elif action == "turn_off":
                on = False
            elif action == "toggle":
                on = not on
            elif action == "set_brightness":
                brightness = float(params["level"])
            else:
                raise PluginError(UNSUPPORTED_ACTION, f"unsupported action {{action}}")
            if dry_run:
                return f"would set on={{on}} brightness={{brightness}}"
            lamp["on"], lamp["brightness"] = on, brightness
            reading = self.reading(external_id)
        self.emit(external_id, RECORD, reading)
        return f"on={{on}} brightness={{brightness}}"


if __name__ == "__main__":
    run(Lamp())
"#
    )
}

fn readme(id: &str) -> String {
    format!(
        r#"# {id}

A Tessera plugin package, scaffolded by `tessera plugin new`.

```sh
tessera plugin check .      # static contract validation
tessera plugin test .       # run it in the sandbox against a throwaway log
tessera serve --plugins .   # run it for real
```

- `plugin.toml`: manifest (schemas/package/plugin.toml.md)
- `contract/reading.avsc`: the Avro contract of what the plugin emits
- `mapping.toml`: raw fields → unified capabilities
- `actions.toml`: supported normalized actions
- `src/main.py`: the plugin; `src/tessera_plugin.py` is the single-file SDK (protocol: schemas/protocol.md)
"#
    )
}

/// Writes a new package for plugin `id` into `dir` (default `./<id>`); returns the directory.
pub fn scaffold(id: &str, dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if !valid_id(id) {
        bail!(
            "`{id}` is not a valid plugin id: use 1-64 lowercase letters, digits, `-` or `_`, starting with a letter"
        );
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(id));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty", dir.display());
    }
    let namespace = format!("plugins.{}", id.replace('-', "_"));
    let files: [(&str, String); 7] = [
        ("plugin.toml", manifest(id)),
        ("contract/reading.avsc", contract(&namespace)),
        ("mapping.toml", mapping(&namespace)),
        ("actions.toml", ACTIONS.to_owned()),
        ("src/main.py", main_py(id, &namespace)),
        ("src/tessera_plugin.py", SDK.to_owned()),
        ("README.md", readme(id)),
    ];
    for (path, text) in files {
        write(&dir.join(path), &text)?;
    }
    Ok(dir)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaffolded_package_passes_contract_validation() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = scaffold("my-lamp", Some(tmp.path().join("my-lamp"))).unwrap();
        let result = tessera_plugin_host::package::load(&dir).unwrap();
        assert!(result.is_ok(), "{result:?}");
        assert!(scaffold("my-lamp", Some(dir)).is_err(), "refuses to overwrite");
        assert!(scaffold("My Lamp", Some(tmp.path().join("x"))).is_err(), "refuses invalid ids");
    }
}
