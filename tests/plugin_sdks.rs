//! Plugins written with either SDK run the same way: the Rust example (`plugins/rust-example`,
//! built with the Rust SDK) beside the Python simulator (`plugins/simulator`, the single-file
//! Python SDK) in one `tessera serve`; both publish devices, and an action reaches each.
//!
//! A Rust plugin package ships its compiled binary in `bin/` (see `plugins/rust-example/build.sh`);
//! this test builds it with the cargo that runs the test and installs it into a copy of the
//! package, so that the tree stays free of build output.

mod harness;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::{Stack, StackOptions, repo_root};
use serde_json::{Value, json};

/// Builds the example and returns the path of its binary.
fn build_rust_example() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "tessera-rust-example", "--message-format=json-render-diagnostics"])
        .current_dir(repo_root())
        .output()
        .expect("run cargo build");
    assert!(out.status.success(), "cargo build failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "tessera-rust-example")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the example's executable")
}

/// A copy of the example package with the binary where its entrypoint expects it.
fn install_package(binary: &Path, into: &Path) -> PathBuf {
    let source = repo_root().join("plugins/rust-example");
    let pkg = into.join("rust-example");
    std::fs::create_dir_all(pkg.join("contract")).unwrap();
    std::fs::create_dir_all(pkg.join("bin")).unwrap();
    for file in ["plugin.toml", "mapping.toml", "actions.toml", "contract/reading.avsc"] {
        std::fs::copy(source.join(file), pkg.join(file)).unwrap();
    }
    let target = pkg.join("bin/tessera-rust-example");
    std::fs::copy(binary, &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    pkg
}

async fn switch_of(stack: &Stack, device: &str) -> Option<bool> {
    let data = stack
        .graphql("query($id: String!) { device(id: $id) { capabilities { name value } } }", json!({"id": device}))
        .await;
    data["device"]["capabilities"].as_array()?.iter().find(|c| c["name"] == "switch")?["value"].as_bool()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_sdk_plugin_runs_beside_a_python_sdk_plugin() {
    let binary = build_rust_example();
    let tmp = tempfile::Builder::new().prefix("tessera-sdks-").tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pkg = install_package(&binary, tmp.path());
    let config = json!({"rust-example": {"interval_ms": 200}, "simulator": {"interval_ms": 200}}).to_string();
    let options = StackOptions { demo: true, plugins: vec![pkg], plugin_config: Some(config) };
    let mut stack = Stack::start(options).await;

    // Both plugins run and publish devices with live values.
    stack
        .eventually("both plugins running with devices", Duration::from_secs(60), || async {
            let data = stack
                .graphql(
                    "{ plugins { id state } devices(first: 50) { edges { node { id capabilities { name value } } } } }",
                    json!({}),
                )
                .await;
            let running = |id: &str| {
                data["plugins"].as_array().is_some_and(|ps| ps.iter().any(|p| p["id"] == id && p["state"] == "running"))
            };
            let ids: Vec<&str> =
                data["devices"]["edges"].as_array()?.iter().filter_map(|e| e["node"]["id"].as_str()).collect();
            let plug_has_power = data["devices"]["edges"].as_array()?.iter().any(|e| {
                e["node"]["id"] == "rust-example:plug-1"
                    && e["node"]["capabilities"].as_array().is_some_and(|c| c.iter().any(|c| c["name"] == "power"))
            });
            (running("rust-example") && running("simulator") && plug_has_power && ids.contains(&"simulator:light-1"))
                .then_some(())
        })
        .await;

    // An action reaches each plugin and its effect comes back through the model.
    for device in ["rust-example:plug-1", "simulator:light-1"] {
        let before = stack
            .eventually("a switch value", Duration::from_secs(30), || async { switch_of(&stack, device).await })
            .await;
        let invoked = stack
            .graphql(
                "mutation($d: String!) { invokeAction(deviceId: $d, action: \"toggle\") { actionId status } }",
                json!({"d": device}),
            )
            .await;
        assert_eq!(invoked["invokeAction"]["status"], "queued", "{invoked}");
        stack
            .eventually("the toggle to take effect", Duration::from_secs(30), || async {
                (switch_of(&stack, device).await? != before).then_some(())
            })
            .await;
    }

    assert!(stack.stop().await, "tessera serve did not exit cleanly on SIGINT");
    let leftovers = stack.leftover_processes();
    assert!(leftovers.is_empty(), "processes left behind: {leftovers:?}");
}
