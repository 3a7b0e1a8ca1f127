//! An example Tessera plugin written with the Rust SDK: one virtual smart plug that reports
//! whether it is on and the power it draws, and obeys `turn_on`, `turn_off` and `toggle`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tessera_plugin_sdk::{Emitter, Init, Invoke, Observation, Plugin, PluginError, run};

const RECORD: &str = "tessera.rust_example.PlugReading";
const PLUG: &str = "plug-1";

/// The plug's state, shared with the streaming task.
#[derive(Default)]
struct Plug {
    on: AtomicBool,
    seq: AtomicU64,
    interval_ms: AtomicU64,
}

impl Plug {
    fn reading(&self) -> Observation {
        let on = self.on.load(Ordering::Relaxed);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        // A kettle-sized load with a little ripple, so that values change.
        let power_w = if on { 1800.0 + (seq % 7) as f64 } else { 0.4 };
        let payload = json!({"plug_id": PLUG, "name": "Kitchen plug", "on": on, "power_w": power_w, "seq": seq});
        Observation::new(PLUG, RECORD, payload)
    }
}

struct SmartPlug {
    plug: Arc<Plug>,
    emitter: std::sync::OnceLock<Emitter>,
}

impl Plugin for SmartPlug {
    async fn initialize(&self, init: Init) -> Result<(), PluginError> {
        let interval = init.config.get("interval_ms").and_then(serde_json::Value::as_u64).unwrap_or(1000);
        if interval < 10 {
            return Err(PluginError::InvalidConfig("interval_ms must be at least 10".into()));
        }
        self.plug.interval_ms.store(interval, Ordering::Relaxed);
        Ok(())
    }

    async fn discover(&self) -> Result<Vec<Observation>, PluginError> {
        Ok(vec![self.plug.reading()])
    }

    async fn start(&self, emitter: Emitter) -> Result<(), PluginError> {
        let _ = self.emitter.set(emitter.clone());
        let plug = self.plug.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(plug.interval_ms.load(Ordering::Relaxed))).await;
                if emitter.emit(plug.reading()).is_err() {
                    return;
                }
            }
        });
        Ok(())
    }

    async fn invoke(&self, request: Invoke) -> Result<Option<String>, PluginError> {
        if request.external_id != PLUG {
            return Err(PluginError::UnknownDevice(request.external_id));
        }
        let now = self.plug.on.load(Ordering::Relaxed);
        let next = match request.action.as_str() {
            "turn_on" => true,
            "turn_off" => false,
            "toggle" => !now,
            _ => return Err(PluginError::UnsupportedAction(request.action)),
        };
        if request.dry_run {
            return Ok(Some(format!("would switch {}", if next { "on" } else { "off" })));
        }
        self.plug.on.store(next, Ordering::Relaxed);
        // Report the new state at once rather than at the next tick.
        if let Some(emitter) = self.emitter.get() {
            let _ = emitter.emit(self.plug.reading());
        }
        Ok(Some(format!("switched {}", if next { "on" } else { "off" })))
    }
}

fn main() -> std::process::ExitCode {
    run(SmartPlug { plug: Arc::new(Plug::default()), emitter: std::sync::OnceLock::new() })
}
