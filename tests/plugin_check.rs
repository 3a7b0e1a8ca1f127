//! Contract validation, checked by a corpus of broken packages (`tests/plugins/broken/<rule>/`):
//! each is rejected by `tessera plugin check --format json` with its rule's code and path. And
//! the backward-compatibility rule, both in `plugin check --previous` and when the plugin-host
//! starts a package whose contract cannot read what the previous version wrote.

mod harness;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::{Stack, StackOptions, repo_root};
use serde_json::Value;

/// Each broken package, the violation it must produce, and whether it is the only one.
const CORPUS: &[(&str, &str, &str)] = &[
    ("manifest_missing", "manifest.missing", "plugin.toml"),
    ("manifest_malformed", "file.malformed", "plugin.toml"),
    ("manifest_invalid_id", "manifest.invalid_id", "plugin.toml:id"),
    ("manifest_missing_name", "manifest.missing_name", "plugin.toml:name"),
    ("manifest_invalid_version", "manifest.invalid_version", "plugin.toml:version"),
    ("manifest_unsupported_api_version", "manifest.unsupported_api_version", "plugin.toml:api_version"),
    ("manifest_missing_entrypoint", "manifest.missing_entrypoint", "plugin.toml:entrypoint"),
    ("manifest_entrypoint_not_found", "manifest.entrypoint_not_found", "plugin.toml:entrypoint[1]"),
    ("manifest_entrypoint_outside_package", "manifest.entrypoint_outside_package", "plugin.toml:entrypoint[1]"),
    ("manifest_config_required_with_default", "manifest.config_required_with_default", "plugin.toml:config.port"),
    ("manifest_invalid_limit", "manifest.invalid_limit", "plugin.toml:limits.memory_mb"),
    ("contract_missing", "contract.missing", "contract/"),
    ("contract_malformed", "contract.malformed", "contract/state.avsc"),
    ("contract_invalid_schema", "contract.invalid_schema", "contract/state.avsc"),
    ("contract_no_record", "contract.no_record", "contract/"),
    ("mapping_missing", "mapping.missing", "mapping.toml"),
    ("mapping_unsupported_version", "mapping.unsupported_version", "mapping.toml:version"),
    ("mapping_unknown_record", "mapping.unknown_record", "mapping.toml:rule[0].record"),
    ("mapping_unknown_field", "mapping.unknown_field", "mapping.toml:rule[0].state[1].field"),
    ("mapping_unknown_capability", "mapping.unknown_capability", "mapping.toml:rule[0].state[1].capability"),
    ("mapping_incompatible_type", "mapping.incompatible_type", "mapping.toml:rule[0].state[2].field"),
    ("mapping_incompatible_unit", "mapping.incompatible_unit", "mapping.toml:rule[0].state[2].unit"),
    ("actions_unsupported_version", "actions.unsupported_version", "actions.toml:version"),
    ("actions_unknown_action", "actions.unknown_action", "actions.toml:device_class[0].actions[0]"),
    (
        "actions_unknown_param",
        "actions.unknown_param",
        "actions.toml:device_class[0].constraints.set_brightness.intensity",
    ),
    (
        "actions_constraint_out_of_range",
        "actions.constraint_out_of_range",
        "actions.toml:device_class[0].constraints.set_brightness.level",
    ),
    ("ui_unavailable_capability", "ui.unavailable_capability", "ui.toml:device_class[0].card[0].widget[1].capability"),
    ("ui_unsupported_action", "ui.unsupported_action", "ui.toml:device_class[0].card[0].widget[1].action"),
];

/// Runs `tessera plugin check --format json` and returns (exit success, report).
fn check(dir: &Path, previous: Option<&Path>) -> (bool, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(["plugin", "check", "--format", "json"]).arg(dir);
    if let Some(previous) = previous {
        cmd.arg("--previous").arg(previous);
    }
    let out = cmd.output().expect("run tessera plugin check");
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", dir.display(), String::from_utf8_lossy(&out.stdout)));
    (out.status.success(), report)
}

fn violations(report: &Value) -> Vec<(String, String)> {
    report["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| (v["code"].as_str().unwrap().to_owned(), v["path"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn each_broken_package_is_rejected_with_its_rule_code_and_path() {
    let broken = repo_root().join("tests/plugins/broken");
    let (ok, report) = check(&broken.join("valid"), None);
    assert!(ok && report["accepted"] == true, "the baseline passes: {report}");
    for (dir, code, path) in CORPUS {
        let (ok, report) = check(&broken.join(dir), None);
        assert!(!ok, "{dir}: exit status must be non-zero");
        assert_eq!(report["accepted"], false, "{dir}: {report}");
        let found = violations(&report);
        assert!(
            found.contains(&((*code).to_owned(), (*path).to_owned())),
            "{dir}: expected {code} at {path}, got {found:?}"
        );
        let others: Vec<_> =
            found.iter().filter(|(c, _)| c != code && !c.starts_with("mapping.unknown_record")).collect();
        assert!(others.is_empty(), "{dir}: only the broken rule is reported, got {found:?}");
        let hintless = report["violations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(hintless, "{dir}: every violation has a message");
    }
    // Every package of the corpus is listed above, so that none silently stops being checked.
    let mut listed: Vec<&str> = CORPUS.iter().map(|(d, _, _)| *d).collect();
    listed.push("valid");
    for entry in std::fs::read_dir(&broken).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(listed.contains(&name.as_str()), "tests/plugins/broken/{name} is not in CORPUS");
    }
}

#[test]
fn every_violation_of_a_package_is_reported_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("lamp");
    let broken = repo_root().join("tests/plugins/broken");
    copy_dir(&broken.join("valid"), &pkg);
    // Three independent breaks in three files.
    for (file, from, to) in [
        ("plugin.toml", "api_version = 1", "api_version = 9"),
        ("mapping.toml", "field = \"level\"", "field = \"nope\""),
        ("actions.toml", "max = 100.0", "max = 300.0"),
    ] {
        let text = std::fs::read_to_string(pkg.join(file)).unwrap();
        std::fs::write(pkg.join(file), text.replacen(from, to, 1)).unwrap();
    }
    let (ok, report) = check(&pkg, None);
    assert!(!ok);
    let codes: Vec<String> = violations(&report).into_iter().map(|(c, _)| c).collect();
    for code in ["manifest.unsupported_api_version", "mapping.unknown_field", "actions.constraint_out_of_range"] {
        assert!(codes.iter().any(|c| c == code), "{code} missing from {codes:?}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_new_contract_version_must_read_what_the_previous_one_wrote() {
    let evolution = repo_root().join("tests/plugins/evolution");
    let v1 = evolution.join("v1");
    let (ok, report) = check(&evolution.join("v2-compatible"), Some(&v1));
    assert!(ok, "adding a field with a default is compatible: {report}");
    let (ok, report) = check(&evolution.join("v2-breaking"), Some(&v1));
    assert!(!ok);
    assert_eq!(violations(&report), vec![("contract.incompatible".to_owned(), "contract/reading.avsc".to_owned())]);
    let (ok, _) = check(&evolution.join("v2-breaking"), None);
    assert!(ok, "without a previous version the package is valid on its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_refuses_to_start_a_contract_incompatible_with_the_registered_one() {
    let evolution = repo_root().join("tests/plugins/evolution");
    // v1 registers its contract first; v2-breaking, same plugin id, must then be refused.
    let plugins = vec![evolution.join("v1"), evolution.join("v2-breaking")];
    let mut stack = Stack::start(StackOptions { plugins, ..Default::default() }).await;
    let governance = stack
        .stream_until("governance", Duration::from_secs(60), |records| {
            let rejected = records.iter().any(|r| r["key"] == "evolving" && r["value"]["state"] == "rejected");
            let running = records.iter().any(|r| r["key"] == "evolving" && r["value"]["state"] == "running");
            rejected && running
        })
        .await;
    let rejected = governance.iter().find(|r| r["key"] == "evolving" && r["value"]["state"] == "rejected").unwrap();
    assert_eq!(rejected["value"]["version"], "0.2.0", "{rejected}");
    let found = violations(&rejected["value"]);
    assert_eq!(found, vec![("contract.incompatible".to_owned(), "contract/reading.avsc".to_owned())]);
    let running = governance.iter().find(|r| r["key"] == "evolving" && r["value"]["state"] == "running").unwrap();
    assert_eq!(running["value"]["version"], "0.1.0", "the compatible version keeps running: {running}");
    assert!(stack.stop().await, "tessera serve did not exit cleanly");
}
