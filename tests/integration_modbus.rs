//! The `modbus` plugin against a real Modbus TCP server: pymodbus (PyPI), started here with a
//! register layout holding an Eastron SDM630 (input registers, float32), a Carlo Gavazzi EM24
//! (holding registers, INT32 low word first) and a custom boiler controller (a relay coil, a
//! setpoint register, a signed temperature). The meters' values come back through GraphQL in
//! catalog units, actions land in the server's coil and register (read back with pymodbus's own
//! client), and a server restart with new values shows availability and reconnection.

mod harness;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use harness::{Stack, StackOptions, assert_plugin_unit_tests_pass, free_port, repo_root};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const SDM: &str = "modbus:sdm630";
const EM24: &str = "modbus:em24";
const BOILER: &str = "modbus:boiler";
const GHOST: &str = "modbus:ghost";

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/modbus")
}

/// The pymodbus server, run with the `python3` of the test's PATH (the one pip installed into).
struct Server {
    port: u16,
    child: Option<Child>,
}

impl Server {
    async fn start(port: u16, layout: &str) -> Server {
        let child = Command::new("python3")
            .arg(fixtures().join("server.py"))
            .args(["--port", &port.to_string(), "--layout"])
            .arg(fixtures().join(layout))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with pymodbus (scripts/install.d/21-pymodbus.sh installs it)");
        let mut server = Server { port, child: Some(child) };
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return server;
            }
            if let Some(Ok(Some(status))) = server.child.as_mut().map(Child::try_wait) {
                panic!("the pymodbus server exited with {status}; is pymodbus installed?");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the pymodbus server did not listen within 30 s");
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Reads a coil or holding registers back with pymodbus's client: `true`, `[225]`.
    async fn read(&self, unit: u8, table: &str, address: u16) -> Value {
        let output = Command::new("python3")
            .arg(fixtures().join("client.py"))
            .args(["--port", &self.port.to_string(), "--unit", &unit.to_string(), table, &address.to_string()])
            .output()
            .await
            .expect("python3 client.py");
        assert!(output.status.success(), "client.py failed: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("JSON from client.py")
    }
}

fn number(node: Option<&Value>, capability: &str) -> Option<f64> {
    node?["capabilities"].as_array()?.iter().find(|c| c["name"] == capability)?["value"].as_f64()
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-6 * b.abs().max(1.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn energy_meters_and_a_relay_over_modbus_tcp() {
    let port = free_port();
    let mut server = Server::start(port, "layout.json").await;
    let config = json!({"modbus": {
        "poll_interval_ms": 500, "timeout_ms": 1000, "offline_after_failures": 1, "max_backoff_ms": 1000,
        "devices": [
            {"id": "sdm630", "name": "Main meter", "host": "127.0.0.1", "port": port, "unit_id": 1,
             "profile": "eastron_sdm630"},
            {"id": "em24", "name": "Heat pump meter", "host": "127.0.0.1", "port": port, "unit_id": 2,
             "profile": "carlo_gavazzi_em24"},
            {"id": "boiler", "name": "Boiler", "host": "127.0.0.1", "port": port, "unit_id": 3,
             "device_class": "thermostat", "registers": [
                {"name": "relay", "table": "coil", "address": 0, "capability": "switch", "writable": true},
                {"name": "setpoint", "table": "holding", "address": 10, "type": "i16", "scale": 0.1, "unit": "Cel",
                 "capability": "thermostat_setpoint", "writable": true},
                {"name": "outdoor", "table": "input", "address": 0, "type": "i16", "scale": 0.1, "unit": "Cel",
                 "capability": "temperature"},
                {"name": "runtime", "table": "holding", "address": 20, "type": "u32", "word_order": "little",
                 "unit": "s"}]},
            // No unit 9 behind this "gateway": pymodbus answers exception 11 (target failed to respond).
            {"id": "ghost", "host": "127.0.0.1", "port": port, "unit_id": 9, "profile": "eastron_sdm630"},
        ],
    }});
    let mut stack = Stack::start(StackOptions {
        plugins: vec![repo_root().join("plugins/modbus")],
        plugin_config: Some(config.to_string()),
        ..Default::default()
    })
    .await;

    let found = stack
        .until_devices("three Modbus devices with values", |d| {
            close(number(d.get(SDM), "energy"), 1234.5)
                && close(number(d.get(EM24), "energy"), 56789.0)
                && number(d.get(BOILER), "thermostat_setpoint").is_some()
        })
        .await;
    let ghost = stack
        .until_devices("the absent unit reported offline", |d| d.get(GHOST).is_some_and(|n| n["online"] == false))
        .await;
    assert_eq!(ghost[SDM]["online"], true, "availability is per device");
    let sdm = found.get(SDM);
    assert_eq!(sdm.unwrap()["manufacturer"], "Eastron");
    assert_eq!(sdm.unwrap()["deviceClass"], "power_meter");
    assert!(close(number(sdm, "power"), 800.0));
    assert!(close(number(sdm, "voltage"), 230.37), "float32 read as 230.37: {sdm:?}");
    assert!(close(number(sdm, "current"), 4.0));
    assert!(close(number(sdm, "power_factor"), 0.95));
    assert!(close(number(sdm, "frequency"), 50.02));
    let em24 = found.get(EM24);
    assert_eq!(em24.unwrap()["model"], "EM24");
    assert!(close(number(em24, "power"), 12345.6), "INT32 low word first, scaled by 0.1: {em24:?}");
    assert!(close(number(em24, "voltage"), 231.4));
    assert!(close(number(em24, "power_factor"), 0.987));
    assert!(close(number(em24, "frequency"), 49.9));
    let boiler = found.get(BOILER);
    assert!(close(number(boiler, "temperature"), -5.5), "a signed register: {boiler:?}");
    assert!(close(number(boiler, "thermostat_setpoint"), 21.5));
    let actions = boiler.unwrap()["actions"].as_array().unwrap().clone();
    for action in ["set_setpoint", "toggle", "turn_off", "turn_on"] {
        assert!(actions.contains(&json!(action)), "boiler actions: {actions:?}");
    }

    // Writes land in the server's coil and holding register, and their effect comes back.
    assert_eq!(server.read(3, "coil", 0).await, json!(false));
    stack.invoke_and_succeed(BOILER, "turn_on", json!(null)).await;
    assert_eq!(server.read(3, "coil", 0).await, json!(true));
    stack.invoke_and_succeed(BOILER, "set_setpoint", json!({"temperature": 22.5})).await;
    assert_eq!(server.read(3, "holding", 10).await, json!([225]));
    stack
        .until_devices("the relay on and the new setpoint", |d| {
            let b = d.get(BOILER);
            close(number(b, "thermostat_setpoint"), 22.5)
                && b.and_then(|b| b["capabilities"].as_array().cloned())
                    .is_some_and(|c| c.iter().any(|c| c["name"] == "switch" && c["value"] == true))
        })
        .await;

    // The server goes away: every device is reported offline; it comes back with new readings.
    server.stop().await;
    stack
        .until_devices("every Modbus device offline", |d| {
            [SDM, EM24, BOILER].iter().all(|id| d.get(*id).is_some_and(|n| n["online"] == false))
        })
        .await;
    let mut server = Server::start(port, "layout_after_restart.json").await;
    stack
        .until_devices("the devices back online with the readings after the restart", |d| {
            [SDM, EM24, BOILER].iter().all(|id| d.get(*id).is_some_and(|n| n["online"] == true))
                && close(number(d.get(SDM), "power"), 900.0)
                && close(number(d.get(SDM), "energy"), 1235.0)
                && close(number(d.get(EM24), "power"), 15000.0)
        })
        .await;

    stack.assert_nothing_rejected("modbus").await;
    assert!(stack.stop().await, "tessera serve did not exit cleanly");
    server.stop().await;
}

/// The plugin's own unit tests (data types, block planning, configuration errors).
#[test]
fn modbus_plugin_unit_tests_pass() {
    assert_plugin_unit_tests_pass("modbus");
}
