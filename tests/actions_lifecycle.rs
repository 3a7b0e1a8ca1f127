//! Every status an action can reach, end to end, against a test lamp plugin whose actions behave
//! as the test asks (hold until released, fail, hang past the call timeout): queued → sent →
//! succeeded | failed | timed_out, and queued → expired for a command whose time-to-live passes
//! while it waits behind a held one — which then never runs, not even once the queue drains.
//! Each status is a `device-events` event, visible through `actionStatus` and `deviceActions`.
//! Also: parameters outside the plugin's own `actions.toml` range are refused, and the device's
//! `ui` is the plugin's `ui.toml` applied to the generated schema.

mod harness;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use harness::{Stack, StackOptions, repo_root};
use serde_json::{Value, json};

const LAMP: &str = "testlamp:lamp-1";

const MANIFEST: &str = r#"id = "testlamp"
name = "Test lamp"
version = "0.1.0"
api_version = 1
description = "A lamp whose actions hold, fail or hang on request (end-to-end tests of actions)."
entrypoint = ["python3", "src/main.py"]

[limits]
call_timeout_ms = 8000
heartbeat_interval_ms = 1000
"#;

const CONTRACT: &str = r#"{"type": "record", "name": "LampState", "namespace": "tessera.testlamp", "fields": [
  {"name": "id", "type": "string"},
  {"name": "on", "type": "boolean"},
  {"name": "level", "type": "double"}
]}"#;

const MAPPING: &str = r#"version = 1
[[rule]]
record = "tessera.testlamp.LampState"
external_id = "id"
name = { value = "Test lamp" }
device_class = { value = "light" }
[[rule.state]]
capability = "switch"
field = "on"
[[rule.state]]
capability = "brightness"
field = "level"
"#;

const ACTIONS: &str = r#"version = 1
[[device_class]]
class = "light"
actions = ["turn_on", "turn_off", "toggle", "set_brightness"]
[device_class.constraints.set_brightness.level]
min = 10.0
max = 90.0
"#;

const UI: &str = r#"version = 1
[[device_class]]
class = "light"
[[device_class.card]]
title = "Lamp"
[[device_class.card.widget]]
type = "toggle"
capability = "switch"
action = "toggle"
label = "Power"
[[device_class.card.widget]]
type = "slider"
capability = "brightness"
action = "set_brightness"
min = 20.0
"#;

/// Levels with a behaviour: 77 holds until the test writes `release` into the plugin's state
/// directory, 13 fails, 66 sleeps past the call timeout (and then changes nothing). Every call is
/// journaled first.
const MAIN: &str = r#"import json, os, sys, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tessera_plugin import Plugin, PluginError, DEVICE_UNREACHABLE, run

RECORD = "tessera.testlamp.LampState"

class Lamp(Plugin):
    def initialize(self, config, secrets, state_dir):
        self.on, self.level, self.lock = False, 50.0, threading.Lock()
        self.dir = state_dir

    def payload(self):
        with self.lock:
            return {"id": "lamp-1", "on": self.on, "level": self.level}

    def discover(self):
        return [self.observation("lamp-1", RECORD, self.payload())]

    def start(self):
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stopping.wait(0.5):
            self.emit("lamp-1", RECORD, self.payload())

    def invoke(self, external_id, action, params, dry_run):
        with open(os.path.join(self.dir, "journal"), "a") as f:
            f.write(json.dumps({"action": action, "params": params, "dry_run": dry_run}) + "\n")
        level = params.get("level")
        if level == 77:
            deadline = time.time() + 25
            while not os.path.exists(os.path.join(self.dir, "release")) and time.time() < deadline:
                time.sleep(0.05)
        if level == 13:
            raise PluginError(DEVICE_UNREACHABLE, "lamp unreachable")
        if level == 66:
            time.sleep(20)
            return "too late"
        with self.lock:
            if action == "toggle":
                self.on = not self.on
            elif action in ("turn_on", "turn_off"):
                self.on = action == "turn_on"
            elif action == "set_brightness":
                self.level = float(level)
        self.emit("lamp-1", RECORD, self.payload())
        return f"level={level}" if level is not None else f"on={self.on}"

if __name__ == "__main__":
    run(Lamp())
"#;

/// Writes the test lamp package into `dir`, with the Python SDK beside its entrypoint.
fn write_package(dir: &Path) {
    let files = [
        ("plugin.toml", MANIFEST),
        ("contract/lamp.avsc", CONTRACT),
        ("mapping.toml", MAPPING),
        ("actions.toml", ACTIONS),
        ("ui.toml", UI),
        ("src/main.py", MAIN),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("package dir");
        std::fs::write(&path, text).expect("package file");
    }
    std::fs::copy(repo_root().join("plugins/sdk-python/tessera_plugin.py"), dir.join("src/tessera_plugin.py"))
        .expect("copy the SDK");
    for sub in ["", "contract", "src"] {
        std::fs::set_permissions(dir.join(sub), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

const INVOKE: &str = "mutation($d: String!, $a: String!, $p: JSON, $ttl: Int) {
  invokeAction(deviceId: $d, action: $a, params: $p, ttlMs: $ttl) { actionId status } }";

async fn invoke(stack: &Stack, action: &str, params: Value, ttl_ms: Option<i64>) -> String {
    let data = stack.graphql(INVOKE, json!({"d": LAMP, "a": action, "p": params, "ttl": ttl_ms})).await;
    assert_eq!(data["invokeAction"]["status"], "queued");
    data["invokeAction"]["actionId"].as_str().expect("action id").to_owned()
}

async fn refused(stack: &Stack, action: &str, params: Value) -> String {
    let (_, body) = stack.graphql_with(Some(&stack.token), INVOKE, json!({"d": LAMP, "a": action, "p": params})).await;
    assert!(body["data"].is_null() || body["data"]["invokeAction"].is_null(), "expected a refusal: {body}");
    body["errors"][0]["message"].as_str().unwrap_or_default().to_owned()
}

async fn status_reaches(stack: &Stack, id: &str, wanted: &str) -> Value {
    stack
        .eventually(&format!("{id} to be {wanted}"), Duration::from_secs(40), || async {
            let data = stack
                .graphql("query($id: String!) { actionStatus(id: $id) { status detail } }", json!({"id": id}))
                .await;
            let status = &data["actionStatus"];
            let now = status["status"].as_str()?;
            let final_ = matches!(now, "succeeded" | "failed" | "timed_out" | "expired");
            assert!(!final_ || now == wanted, "{id} ended {now}, expected {wanted}: {status}");
            (now == wanted).then(|| status.clone())
        })
        .await
}

async fn lamp_state(stack: &Stack) -> Option<(bool, f64)> {
    let data = stack
        .graphql("query($d: String!) { device(id: $d) { capabilities { name value } } }", json!({"d": LAMP}))
        .await;
    let caps = data["device"]["capabilities"].as_array()?;
    let get = |name: &str| caps.iter().find(|c| c["name"] == name).map(|c| c["value"].clone());
    Some((get("switch")?.as_bool()?, get("brightness")?.as_f64()?))
}

fn journal(stack: &Stack) -> Vec<Value> {
    let path = stack.data_dir().join("plugin-state/testlamp/journal");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("journal line")).collect()
}

/// The outcomes recorded on `device-events` for each action id, in log order.
fn outcomes(records: &[Value]) -> BTreeMap<String, Vec<String>> {
    fn find<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
        match v {
            Value::Object(map) => map.get(key).or_else(|| map.values().find_map(|x| find(x, key))),
            Value::Array(items) => items.iter().find_map(|x| find(x, key)),
            _ => None,
        }
    }
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in records {
        let value = &record["value"];
        if let (Some(id), Some(outcome)) = (find(value, "action_id"), find(value, "outcome")) {
            let outcome = find(outcome, "string").unwrap_or(outcome);
            let (Some(id), Some(outcome)) = (id.as_str(), outcome.as_str()) else { continue };
            out.entry(id.to_owned()).or_default().push(outcome.to_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_reach_every_status_and_expired_ones_never_run() {
    let package = tempfile::Builder::new().prefix("tessera-testlamp-").tempdir().expect("temp dir");
    std::fs::set_permissions(package.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    write_package(package.path());
    let mut stack =
        Stack::start(StackOptions { plugins: vec![package.path().to_path_buf()], ..Default::default() }).await;
    let (on, _) = stack.eventually("the test lamp's state", Duration::from_secs(60), || lamp_state(&stack)).await;

    // The plugin's ui.toml replaces the generated cards; its actions.toml narrows the slider.
    let ui =
        stack.graphql("query($d: String!) { device(id: $d) { ui } }", json!({"d": LAMP})).await["device"]["ui"].clone();
    assert_eq!(ui["cards"].as_array().map(Vec::len), Some(1), "{ui}");
    assert_eq!(ui["cards"][0]["title"], "Lamp");
    let widgets = &ui["cards"][0]["widgets"];
    assert_eq!((widgets[0]["type"].as_str(), widgets[0]["label"].as_str()), (Some("toggle"), Some("Power")), "{ui}");
    assert_eq!(widgets[1]["type"], "slider");
    assert_eq!(
        (widgets[1]["param"].as_str(), widgets[1]["min"].as_f64(), widgets[1]["max"].as_f64()),
        (Some("level"), Some(20.0), Some(90.0))
    );

    // Parameters are refused outside the plugin's range even when the catalog's range allows them.
    let message = refused(&stack, "set_brightness", json!({"level": 95})).await;
    assert!(message.contains("[10, 90]"), "{message}");
    assert!(refused(&stack, "set_brightness", json!({"level": 150})).await.contains("[0, 100]"));

    // succeeded: queued → sent → succeeded, with the plugin's detail.
    let ok = invoke(&stack, "set_brightness", json!({"level": 30}), None).await;
    assert_eq!(status_reaches(&stack, &ok, "succeeded").await["detail"], "level=30");

    // failed: the plugin's error is the detail.
    let failed = invoke(&stack, "set_brightness", json!({"level": 13}), None).await;
    let detail = status_reaches(&stack, &failed, "failed").await["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("lamp unreachable"), "{detail}");

    // timed_out: the plugin sleeps past the 8 s call timeout.
    let hung = invoke(&stack, "set_brightness", json!({"level": 66}), None).await;
    status_reaches(&stack, &hung, "timed_out").await;

    // expired: a toggle with a 1 s time-to-live waits behind a held action and expires in the queue.
    let held = invoke(&stack, "set_brightness", json!({"level": 77}), None).await;
    status_reaches(&stack, &held, "sent").await;
    let late = invoke(&stack, "toggle", json!({}), Some(1000)).await;
    let expired = status_reaches(&stack, &late, "expired").await;
    assert!(expired["detail"].as_str().is_some_and(|d| d.contains("time-to-live")), "{expired}");
    std::fs::write(stack.data_dir().join("plugin-state/testlamp/release"), b"go").expect("release the held action");
    status_reaches(&stack, &held, "succeeded").await;
    // Once the queue drains, later commands run — the expired one never does.
    let after = invoke(&stack, "set_brightness", json!({"level": 40}), None).await;
    status_reaches(&stack, &after, "succeeded").await;
    let calls = journal(&stack);
    assert!(calls.iter().all(|c| c["action"] != "toggle"), "the expired toggle reached the plugin: {calls:?}");
    let levels: Vec<f64> = calls.iter().filter_map(|c| c["params"]["level"].as_f64()).collect();
    assert_eq!(levels, vec![30.0, 13.0, 66.0, 77.0, 40.0], "journal: {calls:?}");
    stack
        .eventually("the lamp at level 40", Duration::from_secs(20), || async {
            let (now_on, level) = lamp_state(&stack).await?;
            assert_eq!(now_on, on, "the switch changed although its toggle expired");
            (level == 40.0).then_some(())
        })
        .await;

    // Each status is an event of device-events, in order.
    let ids =
        [(&ok, "succeeded"), (&failed, "failed"), (&hung, "timed_out"), (&held, "succeeded"), (&after, "succeeded")];
    let records = stack
        .stream_until("device-events", Duration::from_secs(30), |records| {
            let seen = outcomes(records);
            seen.get(&late).is_some_and(|o| o.len() == 2)
                && ids.iter().all(|(id, _)| seen.get(id.as_str()).is_some_and(|o| o.len() == 3))
        })
        .await;
    let seen = outcomes(&records);
    for (id, last) in ids {
        assert_eq!(seen[id.as_str()], vec!["queued", "sent", last], "events of {id}");
    }
    assert_eq!(seen[&late], vec!["queued", "expired"], "events of the expired toggle");

    // The device's history of actions lists every invocation, newest first.
    let history = stack
        .graphql(
            "query($d: String!) { deviceActions(deviceId: $d, first: 10) { id action status } }",
            json!({"d": LAMP}),
        )
        .await;
    let listed: Vec<(String, String)> = history["deviceActions"]
        .as_array()
        .expect("deviceActions")
        .iter()
        .map(|a| (a["id"].as_str().unwrap_or("").to_owned(), a["status"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(listed.len(), 6, "{listed:?}");
    assert_eq!(listed[0], (after.clone(), "succeeded".to_owned()));
    assert!(listed.contains(&(late.clone(), "expired".to_owned())), "{listed:?}");
    assert!(listed.contains(&(hung.clone(), "timed_out".to_owned())), "{listed:?}");
    assert!(listed.contains(&(failed.clone(), "failed".to_owned())), "{listed:?}");

    assert!(stack.stop().await, "tessera serve did not exit cleanly");
}
