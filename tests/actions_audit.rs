//! The audit trail in a mixed run against the demo simulator: callers with `read`, `control` and
//! `admin` tokens invoke actions that are allowed, denied for every kind of reason, replayed and
//! dry-run; afterwards the admin-only `auditLog` holds exactly one entry per invocation with who,
//! what, when and the outcome. The dry run goes through the plugin's dry-run path and leaves the
//! light as it was.

mod harness;

use std::time::Duration;

use chrono::{DateTime, Utc};
use harness::{Stack, StackOptions};
use serde_json::{Value, json};

const LIGHT: &str = "simulator:light-1";
const INVOKE: &str = "mutation($d: String!, $a: String!, $p: JSON, $k: String, $dry: Boolean) {
  invokeAction(deviceId: $d, action: $a, params: $p, idempotencyKey: $k, dryRun: $dry) { actionId status replayed } }";
const AUDIT: &str = "{ auditLog(first: 200) { id at tokenName action target outcome actionId detail } }";

/// One invocation of the mixed run and what the audit trail must say about it.
struct Expect {
    who: &'static str,
    action: &'static str,
    device: &'static str,
    outcome: &'static str,
    action_id: Option<String>,
}

struct Run<'a> {
    stack: &'a Stack,
    tokens: Vec<(&'static str, String)>,
    expected: Vec<Expect>,
}

impl Run<'_> {
    #[allow(clippy::too_many_arguments)]
    async fn invoke(
        &mut self,
        who: &'static str,
        device: &'static str,
        action: &'static str,
        params: Value,
        key: Option<&str>,
        dry_run: bool,
        outcome: &'static str,
    ) -> Value {
        let token = self.tokens.iter().find(|(name, _)| *name == who).map(|(_, t)| t.clone()).expect("token");
        let vars = json!({"d": device, "a": action, "p": params, "k": key, "dry": dry_run});
        let (_, body) = self.stack.graphql_with(Some(&token), INVOKE, vars).await;
        let invocation = body["data"]["invokeAction"].clone();
        match outcome {
            "denied" => assert!(
                invocation.is_null() && body["errors"].is_array(),
                "{who} {action}: expected a denial, got {body}"
            ),
            _ => assert!(invocation["actionId"].is_string(), "{who} {action}: expected an invocation, got {body}"),
        }
        let action_id = invocation["actionId"].as_str().map(str::to_owned);
        self.expected.push(Expect { who, action, device, outcome, action_id });
        body
    }
}

async fn light(stack: &Stack) -> Option<(bool, f64)> {
    let data = stack
        .graphql("query($d: String!) { device(id: $d) { capabilities { name value } } }", json!({"d": LIGHT}))
        .await;
    let caps = data["device"]["capabilities"].as_array()?;
    let get = |name: &str| caps.iter().find(|c| c["name"] == name).map(|c| c["value"].clone());
    Some((get("switch")?.as_bool()?, get("brightness")?.as_f64()?))
}

async fn final_status(stack: &Stack, id: &str) -> Value {
    stack
        .eventually(&format!("a final status of {id}"), Duration::from_secs(30), || async {
            let data = stack
                .graphql("query($id: String!) { actionStatus(id: $id) { status detail } }", json!({"id": id}))
                .await;
            let status = data["actionStatus"]["status"].as_str()?;
            matches!(status, "succeeded" | "failed" | "timed_out" | "expired").then(|| data["actionStatus"].clone())
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_allowed_and_denied_invocation_is_audited() {
    let mut stack = Stack::start(StackOptions { demo: true, ..Default::default() }).await;
    let before = stack.eventually("the light's state", Duration::from_secs(60), || light(&stack)).await;
    let started: DateTime<Utc> = Utc::now() - chrono::Duration::seconds(5);
    let tokens = vec![
        ("admin", stack.token.clone()),
        ("ops", stack.create_token("ops", "control")),
        ("viewer", stack.create_token("viewer", "read")),
    ];
    let mut run = Run { stack: &stack, tokens, expected: Vec::new() };

    // A dry run checks everything, reaches the plugin's dry-run path and leaves the light alone.
    let dry = run.invoke("ops", LIGHT, "set_brightness", json!({"level": 5}), None, true, "allowed").await;
    let dry_id = dry["data"]["invokeAction"]["actionId"].as_str().expect("id").to_owned();
    let status = final_status(&stack, &dry_id).await;
    assert_eq!(status["status"], "succeeded");
    assert!(
        status["detail"].as_str().is_some_and(|d| d.starts_with("would set")),
        "the plugin's dry-run detail: {status}"
    );
    // A dry run that breaks a rule is refused like a real one.
    run.invoke("ops", LIGHT, "set_brightness", json!({"level": 500}), None, true, "denied").await;
    // The light reports every second: a reading taken after the dry run still shows the old state.
    let dry_done = Utc::now();
    let after_dry = stack
        .eventually("a reading of the light after the dry run", Duration::from_secs(20), || async {
            let query = "query($d: String!) { device(id: $d) { capabilities { name value observedAt } } }";
            let data = stack.graphql(query, json!({"d": LIGHT})).await;
            let caps = data["device"]["capabilities"].as_array()?.clone();
            let observed = |name: &str| -> Option<DateTime<Utc>> {
                caps.iter().find(|c| c["name"] == name)?["observedAt"].as_str()?.parse().ok()
            };
            let fresh = observed("switch")? > dry_done && observed("brightness")? > dry_done;
            let value = |name: &str| caps.iter().find(|c| c["name"] == name).map(|c| c["value"].clone());
            fresh.then(|| (value("switch"), value("brightness")))
        })
        .await;
    assert_eq!(after_dry, (Some(json!(before.0)), Some(json!(before.1))), "a dry run changed the light");

    // The mixed run.
    run.invoke("ops", LIGHT, "toggle", json!({}), Some("ops-toggle"), false, "allowed").await;
    run.invoke("ops", LIGHT, "toggle", json!({}), Some("ops-toggle"), false, "replayed").await;
    run.invoke("admin", LIGHT, "set_brightness", json!({"level": 70}), None, false, "allowed").await;
    run.invoke("viewer", LIGHT, "toggle", json!({}), None, false, "denied").await;
    run.invoke("ops", "simulator:nowhere", "toggle", json!({}), None, false, "denied").await;
    run.invoke("ops", "simulator:climate-1", "turn_on", json!({}), None, false, "denied").await;
    run.invoke("ops", LIGHT, "set_brightness", json!({"level": 150}), None, false, "denied").await;
    run.invoke("ops", LIGHT, "set_brightness", json!({"brightness": 10}), None, false, "denied").await;
    run.invoke("ops", LIGHT, "set_brightness", json!({"level": 20}), Some("ops-toggle"), false, "denied").await;
    run.invoke("admin", LIGHT, "turn_on", json!({}), None, false, "allowed").await;
    let expected = std::mem::take(&mut run.expected);
    for e in expected.iter().filter(|e| e.outcome == "allowed") {
        let id = e.action_id.as_deref().expect("allowed invocations have an id");
        assert_eq!(final_status(&stack, id).await["status"], "succeeded", "{} {}", e.who, e.action);
    }

    // Only admins read the audit trail.
    for who in ["ops", "viewer"] {
        let token = run.tokens.iter().find(|(n, _)| *n == who).map(|(_, t)| t.clone()).expect("token");
        let (_, body) = stack.graphql_with(Some(&token), AUDIT, json!({})).await;
        assert!(body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("admin")), "{who}: {body}");
    }
    let audit = stack.graphql(AUDIT, json!({})).await;
    let mut entries: Vec<Value> = audit["auditLog"].as_array().cloned().expect("auditLog");
    entries.reverse(); // oldest first, as invoked
    assert_eq!(entries.len(), expected.len(), "one entry per invocation: {entries:#?}");
    for (entry, e) in entries.iter().zip(&expected) {
        let what = format!("{} {} on {}: {entry}", e.who, e.action, e.device);
        assert_eq!(entry["tokenName"], e.who, "{what}");
        assert_eq!(entry["action"], format!("invoke:{}", e.action), "{what}");
        assert_eq!(entry["target"], e.device, "{what}");
        assert_eq!(entry["outcome"], e.outcome, "{what}");
        let at: DateTime<Utc> = entry["at"].as_str().and_then(|t| t.parse().ok()).expect("timestamp");
        assert!(at >= started && at <= Utc::now(), "{what}");
        match e.outcome {
            "denied" => {
                assert!(entry["detail"]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{what}");
                assert!(entry["actionId"].is_null(), "{what}");
            }
            _ => assert_eq!(entry["actionId"].as_str(), e.action_id.as_deref(), "{what}"),
        }
    }
    let reason = |i: usize| entries[i]["detail"]["reason"].as_str().unwrap_or("").to_owned();
    assert!(reason(5).contains("control"), "scope: {}", reason(5));
    assert!(reason(8).contains("outside"), "range: {}", reason(8));
    assert!(reason(10).contains("different request"), "key reuse: {}", reason(10));
    assert_eq!(entries[0]["detail"]["dry_run"], true);

    assert!(stack.stop().await, "tessera serve did not exit cleanly");
}
