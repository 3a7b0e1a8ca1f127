//! The `http` plugin against stand-in Shelly Gen2 devices (`tests/fixtures/http/shelly_server.py`,
//! serving the documented `/rpc/Shelly.GetStatus` and `/rpc/Switch.Set` shapes and recording every
//! request): a Plus 1PM relay with power metering and a Plus dimmer are discovered, read back
//! through GraphQL, switched through the RPC API, reported offline while unreachable and read
//! again once they answer.

mod harness;

use std::process::Stdio;

use harness::{Stack, StackOptions, assert_plugin_unit_tests_pass, free_port, repo_root, wait_listening};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const PLUG: &str = "http:kitchen";
const DIMMER: &str = "http:hallway";
const NOWHERE: &str = "http:garage";

/// One stand-in Shelly device.
struct Shelly {
    port: u16,
    profile: &'static str,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Shelly {
    async fn start(profile: &'static str) -> Shelly {
        let mut shelly = Shelly { port: free_port(), profile, child: None, http: reqwest::Client::new() };
        shelly.spawn().await;
        shelly
    }

    async fn spawn(&mut self) {
        let child = Command::new("python3")
            .arg(repo_root().join("tests/fixtures/http/shelly_server.py"))
            .args(["--port", &self.port.to_string(), "--profile", self.profile])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3");
        self.child = Some(child);
        wait_listening(self.port, "the Shelly stand-in").await;
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The RPC requests the device received, as `Method?key=value&...` (keys sorted).
    async fn requests(&self) -> Vec<String> {
        let list: Vec<Value> =
            self.http.get(format!("{}/_test/requests", self.url())).send().await.unwrap().json().await.unwrap();
        list.iter()
            .map(|r| {
                let params = r["params"].as_object().map(|p| {
                    let mut pairs: Vec<String> =
                        p.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap())).collect();
                    pairs.sort();
                    pairs.join("&")
                });
                match params {
                    Some(p) if !p.is_empty() => format!("{}?{p}", r["method"].as_str().unwrap()),
                    _ => r["method"].as_str().unwrap().to_owned(),
                }
            })
            .collect()
    }

    async fn set_status(&self, patch: Value) {
        let r = self.http.post(format!("{}/_test/status", self.url())).json(&patch).send().await.unwrap();
        assert!(r.status().is_success());
    }
}

fn value(node: Option<&Value>, capability: &str) -> Option<Value> {
    node?["capabilities"].as_array()?.iter().find(|c| c["name"] == capability).map(|c| c["value"].clone())
}

fn close(a: Option<Value>, b: f64) -> bool {
    a.and_then(|a| a.as_f64()).is_some_and(|a| (a - b).abs() < 1e-6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shelly_gen2_devices_over_their_rpc_api() {
    let mut plug = Shelly::start("plus1pm").await;
    let dimmer = Shelly::start("dimmer").await;
    let config = json!({"http": {
        "poll_interval_ms": 500, "timeout_ms": 1000, "offline_after_failures": 1, "max_backoff_ms": 1000,
        "devices": [
            {"id": "kitchen", "name": "Kitchen plug", "url": plug.url()},
            {"id": "hallway", "url": dimmer.url()},
            // Nothing listens here: the device is known, and offline.
            {"id": "garage", "url": format!("http://127.0.0.1:{}", free_port())},
        ],
    }});
    let mut stack = Stack::start(StackOptions {
        plugins: vec![repo_root().join("plugins/http")],
        plugin_config: Some(config.to_string()),
        ..Default::default()
    })
    .await;

    let found = stack
        .until_devices("the Shelly devices with their status", |d| {
            value(d.get(PLUG), "energy").is_some()
                && value(d.get(DIMMER), "brightness").is_some()
                && d.contains_key(NOWHERE)
        })
        .await;
    let kitchen = found.get(PLUG);
    let k = kitchen.unwrap();
    assert_eq!((k["name"].as_str(), k["deviceClass"].as_str()), (Some("Kitchen plug"), Some("switch")));
    assert_eq!((k["manufacturer"].as_str(), k["model"].as_str()), (Some("Shelly"), Some("SNSW-001P16EU")));
    assert_eq!(k["firmware"], "1.0.8");
    assert_eq!(k["online"], true);
    assert_eq!(value(kitchen, "switch"), Some(json!(false)));
    assert!(close(value(kitchen, "voltage"), 231.4));
    assert!(close(value(kitchen, "energy"), 12.345678), "aenergy.total is watt-hours: {k}");
    assert!(close(value(kitchen, "temperature"), 41.3));
    assert!(close(value(kitchen, "signal_strength"), -58.0));
    assert_eq!(value(kitchen, "ip_address"), Some(json!("192.168.1.20")));
    let hallway = found.get(DIMMER);
    let h = hallway.unwrap();
    assert_eq!((h["name"].as_str(), h["deviceClass"].as_str()), (Some("Hallway dimmer"), Some("light")));
    assert!(close(value(hallway, "brightness"), 40.0));
    assert!(h["actions"].as_array().unwrap().contains(&json!("set_brightness")), "dimmer actions: {h}");
    assert_eq!(found[NOWHERE]["online"], false);

    // Actions arrive as the RPC calls the devices document.
    stack.invoke_and_succeed(PLUG, "turn_on", json!(null)).await;
    assert!(plug.requests().await.contains(&"Switch.Set?id=0&on=true".to_owned()), "{:?}", plug.requests().await);
    stack
        .until_devices("the plug on and drawing power", |d| {
            value(d.get(PLUG), "switch") == Some(json!(true)) && close(value(d.get(PLUG), "power"), 63.2)
        })
        .await;
    stack.invoke_and_succeed(PLUG, "toggle", json!(null)).await;
    assert!(plug.requests().await.contains(&"Switch.Toggle?id=0".to_owned()));
    stack.invoke_and_succeed(DIMMER, "set_brightness", json!({"level": 75})).await;
    assert!(dimmer.requests().await.contains(&"Light.Set?brightness=75&id=0&on=true".to_owned()));
    stack.until_devices("the dimmer at 75 %", |d| close(value(d.get(DIMMER), "brightness"), 75.0)).await;

    // New readings are polled.
    plug.set_status(json!({"switch:0": {"aenergy": {"total": 12400.0}}})).await;
    stack.until_devices("the new energy total", |d| close(value(d.get(PLUG), "energy"), 12.4)).await;

    // Unreachable: offline; answering again: online with its current status.
    plug.stop().await;
    stack.until_devices("the plug offline", |d| d.get(PLUG).is_some_and(|n| n["online"] == false)).await;
    assert_eq!(stack.devices_by_id().await[DIMMER]["online"], true, "availability is per device");
    plug.spawn().await;
    plug.set_status(json!({"switch:0": {"voltage": 229.9, "aenergy": {"total": 13000.0}}})).await;
    stack
        .until_devices("the plug back online with its new status", |d| {
            d.get(PLUG).is_some_and(|n| n["online"] == true)
                && close(value(d.get(PLUG), "voltage"), 229.9)
                && close(value(d.get(PLUG), "energy"), 13.0)
        })
        .await;

    stack.assert_nothing_rejected("http").await;
    assert!(stack.stop().await, "tessera serve did not exit cleanly");
    plug.stop().await;
}

/// The plugin's own unit tests (component ids, configuration errors).
#[test]
fn http_plugin_unit_tests_pass() {
    assert_plugin_unit_tests_pass("http");
}
