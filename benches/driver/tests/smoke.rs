//! A smoke run of the driver with tiny windows: the real `tessera serve` with the load generator,
//! then the offline rebuild and baselines on its data. It checks that every figure was measured
//! and is consistent with the others, not how fast anything is.

use std::process::Command;

use serde_json::Value;

#[test]
fn a_tiny_run_measures_ingest_replay_and_their_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("results.json");
    let status = Command::new(env!("CARGO_BIN_EXE_tessera-bench"))
        .args(["--phases", "ingest", "--duration", "2", "--warmup", "1", "--baseline-rows", "5000"])
        .arg("--output")
        .arg(&output)
        .args(["--markdown", "-"])
        .arg("--work-dir")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "tessera-bench failed: {status}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    assert_eq!(report["errors"], Value::Array(vec![]), "{report:#}");
    let pipeline = &report["ingest"]["pipeline"];
    let committed = pipeline["events_committed"].as_u64().unwrap();
    assert!(committed > 0, "{pipeline:#}");
    assert!(pipeline["pipeline_per_s"].as_f64().unwrap() > 0.0);
    assert!(pipeline["host_accepted_per_s"].as_f64().unwrap() > 0.0);

    let baselines = &report["ingest"]["baselines"];
    assert!(baselines["log_append"]["records"].as_u64().unwrap() > 0, "{baselines:#}");
    let rows = baselines["postgres_upsert"]["rows"].as_u64().unwrap();
    assert!(rows > 0 && rows <= 5000, "{baselines:#}");

    // The rebuild projects every event the log holds, at least those committed in the window,
    // and the log-only read saw the same device-events.
    let replay = &report["replay"];
    let events = replay["events"].as_u64().unwrap();
    let read = replay["baseline_log_read"]["records"].as_u64().unwrap();
    assert!(read >= committed && events >= read, "{replay:#}");

    let memory = &report["memory"];
    assert!(memory["peak_rss_kib"].as_u64().unwrap() >= pipeline["serve_startup_rss_kib"].as_u64().unwrap());
    assert!(report["load"].as_array().unwrap().len() >= 2);
}
