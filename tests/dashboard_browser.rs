//! The dashboard in a real browser: boots `tessera serve --demo`, then runs
//! `tests/browser/dashboard.test.mjs` (headless Chromium driven by playwright-core) against the
//! dashboard URL with the admin token. The script checks that the devices appear from their UI
//! schemas, that a value updates live without a reload, and toggles the light through its toggle
//! widget; this test then checks through GraphQL that the light's state changed in the API.
//! Screenshots are saved under `target/test-artifacts/dashboard/`.
//!
//! Needs Debian's `/usr/bin/chromium` and `tests/browser/node_modules` (both installed by
//! `scripts/install.d/30-chromium.sh`).

mod harness;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use harness::{Stack, StackOptions, repo_root};
use serde_json::{Value, json};

const LIGHT: &str = "simulator:light-1";

async fn switch_state(stack: &Stack) -> Option<bool> {
    let data = stack
        .graphql("query($d: String!) { device(id: $d) { capabilities { name value } } }", json!({"d": LIGHT}))
        .await;
    data["device"]["capabilities"].as_array()?.iter().find(|c| c["name"] == "switch")?["value"].as_bool()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_devices_and_toggles_the_light() {
    let root = repo_root();
    let browser = root.join("tests/browser");
    assert!(Path::new("/usr/bin/chromium").is_file(), "no /usr/bin/chromium: run scripts/install.d/30-chromium.sh");
    assert!(
        browser.join("node_modules/playwright-core/package.json").is_file(),
        "no tests/browser/node_modules: run scripts/install.d/30-chromium.sh (npm ci in tests/browser)"
    );
    let artifacts = root.join("target/test-artifacts/dashboard");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("artifacts directory");

    let mut stack = Stack::start(StackOptions { demo: true, ..Default::default() }).await;
    let before = stack.eventually("the light's state", Duration::from_secs(60), || switch_state(&stack)).await;

    let url = format!("{}/?token={}", stack.base, stack.token);
    let mut script = tokio::process::Command::new("node");
    script
        .current_dir(&browser)
        .arg("dashboard.test.mjs")
        .arg(&url)
        .env("TESSERA_ARTIFACTS", &artifacts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(240), script.output())
        .await
        .expect("the browser test finished within 240 s")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(output.status.success(), "the browser test failed ({}):\n{stdout}", output.status);

    // The script's last line reports what it saw; the API must agree.
    let report: Value = stdout.lines().rev().find_map(|l| serde_json::from_str(l).ok()).expect("a JSON report line");
    assert_eq!(report["devices"].as_u64(), Some(3), "{report}");
    assert_eq!(report["light"]["before"], before, "{report}");
    let shown_after = report["light"]["after"].as_bool().expect("the light's state after the click");
    assert_ne!(shown_after, before, "{report}");
    stack
        .eventually("the API to show the toggled light", Duration::from_secs(30), || async {
            (switch_state(&stack).await? == shown_after).then_some(())
        })
        .await;
    let actions = stack
        .graphql("query($d: String!) { deviceActions(deviceId: $d) { action status } }", json!({"d": LIGHT}))
        .await;
    assert_eq!(actions["deviceActions"][0], json!({"action": "toggle", "status": "succeeded"}), "{actions}");

    for shot in ["devices.png", "after-toggle.png", "detail.png"] {
        let size = std::fs::metadata(artifacts.join(shot)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "screenshot {shot} missing or empty");
    }
    assert!(stack.stop().await, "tessera serve did not exit cleanly");
}
