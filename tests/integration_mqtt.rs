//! The `mqtt` plugin against a real Mosquitto broker (Debian's `mosquitto`, started here on a free
//! loopback port with password authentication and persistence): Zigbee2MQTT devices discovered from
//! the retained `bridge/devices`, Tasmota and ESPHome devices from Home Assistant discovery, their
//! values and availability read back through GraphQL, actions arriving on the bridges' set/command
//! topics in their own formats (watched with `mosquitto_sub`), and a broker restart after which new
//! data still arrives.

mod harness;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use harness::{Stack, StackOptions, assert_plugin_unit_tests_pass, free_port, repo_root, wait_listening};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const USER: &str = "tessera";
const PASSWORD: &str = "e2e-broker-password";

const CLIMATE: &str = "mqtt:z2m-0x00158d0001a2b3c4";
const LAMP: &str = "mqtt:z2m-0x000b57fffe111111";
const DOOR: &str = "mqtt:z2m-0x00158d000223344a";
const HALL: &str = "mqtt:z2m-0x00158d0003f0a1b2";
const HALL_LEFT: &str = "mqtt:z2m-0x00158d0003f0a1b2-left";
const PLUG: &str = "mqtt:ha-E8DB84";
const DESK: &str = "mqtt:ha-a4cf12aabbcc";

/// A throwaway Mosquitto with its own config, password file and persistence directory.
struct Broker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

fn program(name: &str, fallback: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()));
    on_path.unwrap_or_else(|| PathBuf::from(fallback))
}

impl Broker {
    async fn start() -> Broker {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("tessera-mosquitto-").tempdir().unwrap();
        // Started as root, Mosquitto drops to its own user: let it read and persist here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let passwords = dir.path().join("passwords");
        let status = Command::new(program("mosquitto_passwd", "/usr/bin/mosquitto_passwd"))
            .args(["-b", "-c"])
            .arg(&passwords)
            .args([USER, PASSWORD])
            .status()
            .await
            .expect("mosquitto_passwd (scripts/install.d/20-mosquitto.sh installs it)");
        assert!(status.success());
        std::fs::set_permissions(&passwords, std::fs::Permissions::from_mode(0o644)).unwrap();
        let port = free_port();
        let config = format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence true\n\
             persistence_location {}/\n",
            passwords.display(),
            dir.path().display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), config).unwrap();
        let mut broker = Broker { dir, port, child: None };
        broker.spawn().await;
        broker
    }

    async fn spawn(&mut self) {
        let child = Command::new(program("mosquitto", "/usr/sbin/mosquitto"))
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto (scripts/install.d/20-mosquitto.sh installs it)");
        self.child = Some(child);
        wait_listening(self.port, "mosquitto").await;
    }

    /// Stops the broker as an operator would (SIGTERM: it saves its retained messages).
    async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = child.id() {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    fn client_args(&self) -> Vec<String> {
        ["-h", "127.0.0.1", "-p", &self.port.to_string(), "-u", USER, "-P", PASSWORD, "-q", "1"]
            .map(str::to_owned)
            .to_vec()
    }

    async fn publish(&self, topic: &str, payload: &str, retain: bool) {
        let mut cmd = Command::new(program("mosquitto_pub", "/usr/bin/mosquitto_pub"));
        cmd.args(self.client_args()).args(["-t", topic, "-m", payload]);
        if retain {
            cmd.arg("-r");
        }
        let status = cmd.status().await.expect("mosquitto_pub");
        assert!(status.success(), "mosquitto_pub to {topic} failed");
    }

    /// Subscribes with `mosquitto_sub -v` and returns once the subscription is live.
    async fn watch(&self, filters: &[&str]) -> Watcher {
        let mut cmd = Command::new(program("mosquitto_sub", "/usr/bin/mosquitto_sub"));
        cmd.args(self.client_args()).arg("-v").args(["-t", "e2e/probe"]);
        for f in filters {
            cmd.args(["-t", f]);
        }
        let mut child = cmd.stdout(Stdio::piped()).kill_on_drop(true).spawn().expect("mosquitto_sub");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut watcher = Watcher { _child: child, lines: rx, seen: Vec::new() };
        for _ in 0..60 {
            self.publish("e2e/probe", "ready", false).await;
            if watcher.wait_for("e2e/probe ready", Duration::from_millis(500)).await {
                return watcher;
            }
        }
        panic!("mosquitto_sub did not subscribe within 30 s");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
    }
}

/// The lines `mosquitto_sub -v` printed: `<topic> <payload>`.
struct Watcher {
    _child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Watcher {
    async fn wait_for(&mut self, line: &str, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.seen.iter().any(|l| l == line) {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(l)) => self.seen.push(l),
                _ => return false,
            }
        }
    }

    async fn expect(&mut self, line: &str) {
        assert!(
            self.wait_for(line, Duration::from_secs(30)).await,
            "expected `{line}` on the broker; saw {:?}",
            self.seen
        );
    }
}

async fn publish_fixtures(broker: &Broker) {
    let path = repo_root().join("tests/fixtures/mqtt/retained.json");
    let fixtures: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for f in fixtures {
        let payload = match &f["payload"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        broker.publish(f["topic"].as_str().unwrap(), &payload, true).await;
    }
}

fn value(node: &Value, capability: &str) -> Option<Value> {
    node["capabilities"].as_array()?.iter().find(|c| c["name"] == capability).map(|c| c["value"].clone())
}

fn number(node: &Value, capability: &str) -> Option<f64> {
    value(node, capability)?.as_f64()
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-3)
}

async fn invoke(stack: &Stack, device: &str, action: &str, params: Value) -> String {
    let data = stack
        .graphql(
            "mutation($d: String!, $a: String!, $p: JSON) { invokeAction(deviceId: $d, action: $a, params: $p) { actionId } }",
            json!({"d": device, "a": action, "p": params}),
        )
        .await;
    data["invokeAction"]["actionId"].as_str().unwrap().to_owned()
}

async fn succeeded(stack: &Stack, action_id: &str) {
    stack
        .eventually("the action to succeed", Duration::from_secs(30), || async {
            let data = stack
                .graphql("query($id: String!) { actionStatus(id: $id) { status detail } }", json!({"id": action_id}))
                .await;
            let status = &data["actionStatus"]["status"];
            assert_ne!(status, "failed", "action failed: {data}");
            (status == "succeeded").then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zigbee2mqtt_and_home_assistant_devices_through_mosquitto() {
    let mut broker = Broker::start().await;
    publish_fixtures(&broker).await;
    let config = json!({"mqtt": {
        "broker_url": broker.url(), "username": USER, "password": PASSWORD,
        "client_id": "tessera-e2e", "max_backoff_ms": 1000, "keepalive_s": 10,
    }});
    let mut stack = Stack::start(StackOptions {
        plugins: vec![repo_root().join("plugins/mqtt")],
        plugin_config: Some(config.to_string()),
        ..Default::default()
    })
    .await;

    // Discovery: every bridge's devices with their values, converted into catalog units.
    let found = stack
        .until_devices("the bridged devices with their values", |d| {
            [CLIMATE, LAMP, DOOR, HALL_LEFT, PLUG, DESK]
                .iter()
                .all(|id| d.get(*id).is_some_and(|n| n["online"] == true))
                && d.get(CLIMATE).is_some_and(|n| number(n, "link_quality").is_some())
                && d.get(LAMP).is_some_and(|n| number(n, "color_temperature").is_some())
                && d.get(PLUG).is_some_and(|n| number(n, "energy").is_some() && value(n, "switch").is_some())
                && d.get(DESK).is_some_and(|n| value(n, "occupancy").is_some() && number(n, "temperature").is_some())
                && d.get(HALL_LEFT).is_some_and(|n| value(n, "switch").is_some())
        })
        .await;
    let climate = &found[CLIMATE];
    assert_eq!(climate["deviceClass"], "climate_sensor");
    assert_eq!((climate["manufacturer"].as_str(), climate["model"].as_str()), (Some("Aqara"), Some("WSDCGQ11LM")));
    assert!(close(number(climate, "temperature"), 21.5));
    assert!(close(number(climate, "humidity"), 48.2));
    assert!(close(number(climate, "pressure"), 1012.0));
    assert!(close(number(climate, "voltage"), 2.995), "millivolts become volts: {climate}");
    let lamp = &found[LAMP];
    assert_eq!(lamp["deviceClass"], "light");
    assert_eq!(value(lamp, "switch"), Some(json!(true)));
    assert!(close(number(lamp, "brightness"), 127.0 / 254.0 * 100.0), "0-254 becomes a percentage: {lamp}");
    assert!(close(number(lamp, "color_temperature"), 1_000_000.0 / 370.0), "mired becomes kelvin: {lamp}");
    for action in ["set_brightness", "set_color_temperature", "toggle", "turn_off", "turn_on"] {
        assert!(lamp["actions"].as_array().unwrap().contains(&json!(action)), "lamp actions: {lamp}");
    }
    assert_eq!(found[DOOR]["deviceClass"], "contact_sensor");
    assert_eq!(value(&found[DOOR], "contact"), Some(json!(true)));
    assert_eq!(value(&found[HALL_LEFT], "switch"), Some(json!(true)));
    assert!(close(number(&found[HALL], "power"), 12.5));
    let plug = &found[PLUG];
    assert_eq!((plug["name"].as_str(), plug["deviceClass"].as_str()), (Some("Kitchen plug"), Some("switch")));
    assert_eq!(plug["firmware"], "13.2.0");
    assert!(close(number(plug, "power"), 63.0));
    assert!(close(number(plug, "energy"), 12.5), "the total counter, not today's: {plug}");
    assert!(close(number(plug, "voltage"), 231.0));
    let desk = &found[DESK];
    assert_eq!(desk["deviceClass"], "light");
    assert!(close(number(desk, "temperature"), 22.0), "°F becomes °C: {desk}");
    assert!(close(number(desk, "brightness"), 128.0 / 255.0 * 100.0), "{desk}");
    assert_eq!(value(desk, "occupancy"), Some(json!(true)));
    let ids: Vec<&String> = found.keys().collect();
    assert!(!ids.iter().any(|id| id.contains("zigbee2mqtt_")), "Zigbee2MQTT's own HA announcements doubled: {ids:?}");
    assert!(!ids.iter().any(|id| id.contains("0x00124b0000000001")), "the coordinator is no device: {ids:?}");

    // Live state messages are mapped.
    broker.publish("zigbee2mqtt/living/climate", r#"{"temperature":22.25,"humidity":47}"#, false).await;
    stack.until_devices("a live Zigbee2MQTT reading", |d| close(number(&d[CLIMATE], "temperature"), 22.25)).await;

    // Actions reach the bridges in their own formats.
    let mut watcher = broker.watch(&["zigbee2mqtt/+/set", "cmnd/#", "esp-desk/light/+/command"]).await;
    let a = invoke(&stack, LAMP, "set_brightness", json!({"level": 50})).await;
    watcher.expect(r#"zigbee2mqtt/desk lamp/set {"brightness":127}"#).await;
    succeeded(&stack, &a).await;
    let a = invoke(&stack, LAMP, "set_color_temperature", json!({"kelvin": 2000})).await;
    watcher.expect(r#"zigbee2mqtt/desk lamp/set {"color_temp":454}"#).await; // clamped to the bulb's range
    succeeded(&stack, &a).await;
    let a = invoke(&stack, HALL_LEFT, "toggle", json!(null)).await;
    watcher.expect(r#"zigbee2mqtt/hall switch/set {"state_left":"TOGGLE"}"#).await;
    succeeded(&stack, &a).await;
    let a = invoke(&stack, PLUG, "turn_off", json!(null)).await;
    watcher.expect("cmnd/tasmota_E8DB84/POWER OFF").await;
    succeeded(&stack, &a).await;
    let a = invoke(&stack, DESK, "set_brightness", json!({"level": 40})).await;
    watcher.expect(r#"esp-desk/light/desk_light/command {"state":"ON","brightness":102}"#).await;
    succeeded(&stack, &a).await;

    // Per-device availability, in both Zigbee2MQTT formats and Tasmota's LWT.
    broker.publish("zigbee2mqtt/desk lamp/availability", "offline", true).await;
    broker.publish("tele/tasmota_E8DB84/LWT", "Offline", true).await;
    stack
        .until_devices("the lamp and the plug offline", |d| {
            d[LAMP]["online"] == false && d[PLUG]["online"] == false && d[CLIMATE]["online"] == true
        })
        .await;
    broker.publish("zigbee2mqtt/desk lamp/availability", r#"{"state":"online"}"#, true).await;
    broker.publish("tele/tasmota_E8DB84/LWT", "Online", true).await;
    stack
        .until_devices("the lamp and the plug back online", |d| d[LAMP]["online"] == true && d[PLUG]["online"] == true)
        .await;

    // The broker goes away: every device is unreachable; it comes back: the plugin reconnects,
    // re-reads the retained state and later data arrives.
    broker.stop().await;
    stack
        .until_devices("every device offline while the broker is down", |d| {
            d.values()
                .filter(|n| n["id"].as_str().is_some_and(|id| id.starts_with("mqtt:")))
                .all(|n| n["online"] == false)
        })
        .await;
    broker.spawn().await;
    stack
        .until_devices("the devices online again after the broker restarted", |d| {
            [CLIMATE, LAMP, PLUG, DESK].iter().all(|id| d[*id]["online"] == true)
        })
        .await;
    broker.publish("zigbee2mqtt/living/climate", r#"{"temperature":23.75}"#, false).await;
    broker.publish("tele/tasmota_E8DB84/SENSOR", r#"{"ENERGY":{"Total":12.75,"Power":80}}"#, false).await;
    stack
        .until_devices("data published after the restart", |d| {
            close(number(&d[CLIMATE], "temperature"), 23.75)
                && close(number(&d[PLUG], "power"), 80.0)
                && close(number(&d[PLUG], "energy"), 12.75)
        })
        .await;

    stack.assert_nothing_rejected("mqtt").await;
    assert!(stack.stop().await, "tessera serve did not exit cleanly");
    broker.stop().await;
}

/// The plugin's own unit tests (wire format, exposes, discovery, templates), run with the same
/// interpreter the plugin-host starts it with.
#[test]
fn mqtt_plugin_unit_tests_pass() {
    assert_plugin_unit_tests_pass("mqtt");
}
