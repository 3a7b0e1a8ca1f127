//! The REST API is described by the OpenAPI document it serves at `/v1/openapi.json`, generated
//! from the handlers, and holds up to schemathesis: a bounded property-based run against the live
//! stack (with the demo devices, as admin) finds no server error and no response that departs
//! from the document (status code, content type, body schema).
//!
//! schemathesis comes from PyPI through `scripts/install.d/40-schemathesis.sh`; the test finds it
//! at `$TESSERA_SCHEMATHESIS`, in that script's virtual environment, or on PATH.

mod harness;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use harness::{Stack, StackOptions};
use serde_json::Value;

fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("TESSERA_SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from("/opt/tessera-tools/schemathesis/bin/schemathesis");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("schemathesis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_api_and_schemathesis_finds_no_server_error() {
    let mut stack = Stack::start(StackOptions { demo: true, ..Default::default() }).await;

    // The document needs a token like everything else, and describes every REST route.
    let url = format!("{}/v1/openapi.json", stack.base);
    assert_eq!(stack.http().get(&url).send().await.unwrap().status().as_u16(), 401);
    let response = stack.http().get(&url).bearer_auth(&stack.token).send().await.expect("openapi");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("body");
    let document: Value = serde_json::from_str(&text).expect("JSON");
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", document["openapi"]);
    for path in [
        "/v1/devices",
        "/v1/devices/{id}",
        "/v1/devices/{id}/history",
        "/v1/devices/{id}/actions/{action}",
        "/v1/actions/{id}",
        "/v1/plugins",
        "/v1/capabilities",
        "/v1/streams/{topic}",
        "/v1/openapi.json",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is not documented");
    }
    assert_eq!(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    // Wait for the demo devices, so that schemathesis meets real data too.
    stack
        .eventually("demo devices", Duration::from_secs(60), || async {
            let data = stack.graphql("{ devices(first: 5) { edges { cursor } } }", serde_json::json!({})).await;
            data["devices"]["edges"].as_array().is_some_and(|e| !e.is_empty()).then_some(())
        })
        .await;

    let file = stack.data_dir().join("openapi.json");
    std::fs::write(&file, &text).expect("write the document");
    let report = stack.data_dir().join("schemathesis");
    let run = tokio::process::Command::new(schemathesis())
        .current_dir(stack.data_dir())
        .arg("run")
        .arg(&file)
        .args(["--url", &stack.base])
        .args(["--header", &format!("Authorization: Bearer {}", stack.token)])
        // No server error, and every response as documented: status, content type and body schema.
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "40", "--seed", "20261125", "--request-timeout", "20"])
        .args(["--workers", "1", "--no-shrink"])
        // A stream tails its topic forever by design; schemathesis would only time out on it.
        .args(["--exclude-path-regex", "^/v1/streams/"])
        .arg("--report-dir")
        .arg(&report)
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finished within 5 minutes")
        .unwrap_or_else(|e| {
            panic!("cannot run {} (see scripts/install.d/40-schemathesis.sh): {e}", schemathesis().display())
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let tail: Vec<&str> = stdout.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{}\n{}",
        tail.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("passed"), "schemathesis ran no test:\n{stdout}");

    assert!(stack.stop().await, "tessera serve did not exit cleanly");
}
