//! `tessera plugin new` scaffolds a package that passes `check` and `test` as generated, and
//! `tessera plugin test` runs a real plugin against a throwaway log: it reports the devices, UI
//! and dry-run actions of a good plugin, every violation of a bad one, and leaves nothing behind.

mod harness;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use harness::repo_root;
use serde_json::Value;

/// Runs `tessera` with `args` in `cwd`, temporary files under `tmp`.
fn tessera(cwd: &Path, tmp: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .current_dir(cwd)
        .env("TMPDIR", tmp)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tessera")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A world-readable temporary directory (plugins may run as an unprivileged user).
fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("tessera-scaffold-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn a_scaffolded_plugin_passes_check_and_test_as_generated() {
    let work = open_tempdir();
    let tmp = open_tempdir();
    let out = tessera(work.path(), tmp.path(), &["plugin", "new", "porch-light"]);
    assert!(out.status.success(), "plugin new: {}", String::from_utf8_lossy(&out.stderr));
    let pkg = work.path().join("porch-light");
    assert!(pkg.join("src/tessera_plugin.py").is_file(), "the SDK is copied into the package");

    let out = tessera(work.path(), tmp.path(), &["plugin", "check", "--format", "json", "porch-light"]);
    assert!(out.status.success(), "plugin check: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["accepted"], true);

    let before: Vec<_> = std::fs::read_dir(work.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    let out =
        tessera(work.path(), tmp.path(), &["plugin", "test", "--format", "json", "--seconds", "3", "porch-light"]);
    let report = json(&out);
    assert!(out.status.success(), "plugin test must pass: {report:#}");
    assert_eq!(report["violations"], Value::Array(Vec::new()));
    let lifecycle: Vec<&str> = report["lifecycle"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(lifecycle, ["validated", "initializing", "discovering", "running", "stopped"]);
    assert!(report["observations"].as_u64().unwrap() >= 2, "discovery and streaming: {report}");
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{report}");
    let lamp = &devices[0];
    assert_eq!(lamp["id"], "porch-light:lamp-1");
    assert_eq!(lamp["metadata"]["device_class"], "light");
    assert_eq!(lamp["states"]["switch"], false);
    let widgets: Vec<&str> =
        lamp["ui"]["cards"][0]["widgets"].as_array().unwrap().iter().map(|w| w["type"].as_str().unwrap()).collect();
    assert!(widgets.contains(&"toggle") && widgets.contains(&"slider"), "UI schema: {}", lamp["ui"]);
    let actions = report["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 4, "every supported action is dry-run: {report}");
    assert!(actions.iter().all(|a| a["outcome"] == "succeeded" && a["detail"].as_str().unwrap().starts_with("would")));

    // No effect outside its own throwaway directory, which is gone afterwards.
    let after: Vec<_> = std::fs::read_dir(work.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before, after, "plugin test wrote into the working directory");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "plugin test left temporary files");
}

#[test]
fn plugin_test_reports_every_violation_of_a_misbehaving_plugin_and_fails() {
    let work = open_tempdir();
    let tmp = open_tempdir();
    let garbage = repo_root().join("tests/plugins/garbage");
    let out = tessera(
        work.path(),
        tmp.path(),
        &["plugin", "test", "--format", "json", "--seconds", "2", garbage.to_str().unwrap()],
    );
    assert!(!out.status.success(), "violations make the exit status non-zero");
    let report = json(&out);
    let stages: Vec<&str> =
        report["violations"].as_array().unwrap().iter().map(|v| v["stage"].as_str().unwrap()).collect();
    for stage in ["protocol", "contract", "lifecycle"] {
        assert!(stages.contains(&stage), "a `{stage}` violation is reported: {report:#}");
    }
    let broken = repo_root().join("tests/plugins/broken/mapping_unknown_field");
    let out = tessera(work.path(), tmp.path(), &["plugin", "test", "--format", "json", broken.to_str().unwrap()]);
    assert!(!out.status.success());
    assert_eq!(json(&out)["violations"][0]["code"], "mapping.unknown_field");
}
