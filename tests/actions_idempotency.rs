//! Idempotency keys end to end, against the demo simulator's light: a repeated key returns the
//! original invocation and never actuates twice (also when the repeats race each other), a key
//! reused for another request is refused, keys are per caller, and a key is forgotten after a day.

mod harness;

use std::time::Duration;

use harness::{Stack, StackOptions};
use serde_json::{Value, json};

const LIGHT: &str = "simulator:light-1";
const INVOKE: &str = "mutation($d: String!, $a: String!, $p: JSON, $k: String) {
  invokeAction(deviceId: $d, action: $a, params: $p, idempotencyKey: $k) { actionId status replayed } }";

async fn invoke(stack: &Stack, token: &str, action: &str, params: Value, key: &str) -> Value {
    let vars = json!({"d": LIGHT, "a": action, "p": params, "k": key});
    let (status, body) = stack.graphql_with(Some(token), INVOKE, vars).await;
    assert_eq!(status, 200, "invokeAction HTTP status, body {body}");
    body
}

async fn switch_state(stack: &Stack) -> Option<bool> {
    let data = stack
        .graphql("query($d: String!) { device(id: $d) { capabilities { name value } } }", json!({"d": LIGHT}))
        .await;
    data["device"]["capabilities"].as_array()?.iter().find(|c| c["name"] == "switch")?["value"].as_bool()
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

async fn light_actions(stack: &Stack) -> Vec<Value> {
    let data = stack
        .graphql(
            "query($d: String!) { deviceActions(deviceId: $d, first: 50) { id action status } }",
            json!({"d": LIGHT}),
        )
        .await;
    data["deviceActions"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_never_actuates_twice() {
    let mut stack = Stack::start(StackOptions { demo: true, ..Default::default() }).await;
    let admin = stack.token.clone();
    let initial = stack.eventually("the light's switch state", Duration::from_secs(60), || switch_state(&stack)).await;

    // The first use of a key actuates.
    let first = invoke(&stack, &admin, "toggle", json!({}), "toggle-once").await;
    let first = &first["data"]["invokeAction"];
    assert_eq!(first["replayed"], false, "{first}");
    let action_id = first["actionId"].as_str().expect("action id").to_owned();
    assert_eq!(final_status(&stack, &action_id).await["status"], "succeeded");
    stack
        .eventually("the toggle to take effect", Duration::from_secs(30), || async {
            (switch_state(&stack).await? != initial).then_some(())
        })
        .await;

    // Replaying it returns the original invocation, with its current status, and enqueues nothing.
    let replay = invoke(&stack, &admin, "toggle", json!({}), "toggle-once").await;
    let replay = &replay["data"]["invokeAction"];
    assert_eq!(replay["actionId"], action_id.as_str(), "{replay}");
    assert_eq!(replay["replayed"], true);
    assert_eq!(replay["status"], "succeeded");

    // A new key toggles back. Had the replay actuated, the light would now be toggled three times.
    let back = invoke(&stack, &admin, "toggle", json!({}), "toggle-back").await;
    let back_id = back["data"]["invokeAction"]["actionId"].as_str().expect("action id").to_owned();
    assert_eq!(final_status(&stack, &back_id).await["status"], "succeeded");
    stack
        .eventually("the light back in its initial state", Duration::from_secs(30), || async {
            (switch_state(&stack).await? == initial).then_some(())
        })
        .await;
    let toggles: Vec<Value> = light_actions(&stack).await.into_iter().filter(|a| a["action"] == "toggle").collect();
    assert_eq!(toggles.len(), 2, "exactly two toggle invocations: {toggles:?}");

    // Racing requests with one key: one invocation, every caller gets its id.
    let racers: Vec<_> =
        (0..6).map(|_| invoke(&stack, &admin, "set_brightness", json!({"level": 42}), "race")).collect();
    let answers = futures::future::join_all(racers).await;
    let ids: Vec<&str> = answers.iter().map(|a| a["data"]["invokeAction"]["actionId"].as_str().expect("id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one invocation for one key: {ids:?}");
    let fresh = answers.iter().filter(|a| a["data"]["invokeAction"]["replayed"] == false).count();
    assert_eq!(fresh, 1, "exactly one request enqueued: {answers:?}");
    assert_eq!(final_status(&stack, ids[0]).await["status"], "succeeded");
    let dims = light_actions(&stack).await.into_iter().filter(|a| a["action"] == "set_brightness").count();
    assert_eq!(dims, 1, "the racing requests enqueued one command");

    // The same key for a different request is refused, and names the original invocation.
    let reuse = invoke(&stack, &admin, "set_brightness", json!({"level": 43}), "race").await;
    let message = reuse["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("different request") && message.contains(ids[0]), "{reuse}");

    // Keys are per caller: another token's identical key is a new invocation.
    let ops = stack.create_token("ops", "control");
    let other = invoke(&stack, &ops, "set_brightness", json!({"level": 42}), "race").await;
    let other = &other["data"]["invokeAction"];
    assert_eq!(other["replayed"], false, "{other}");
    assert_ne!(other["actionId"], ids[0]);
    assert_eq!(final_status(&stack, other["actionId"].as_str().expect("id")).await["status"], "succeeded");

    // The audit trail holds the replays as such.
    let audit = stack.graphql("{ auditLog(first: 100) { tokenName outcome actionId } }", json!({})).await;
    let entries = audit["auditLog"].as_array().cloned().unwrap_or_default();
    let replays = entries.iter().filter(|e| e["outcome"] == "replayed").count();
    assert_eq!(replays, 1 + 5, "one replay of the toggle and five of the race: {entries:?}");

    // A key is remembered for a day: once older, the sweeper forgets it and it is free again.
    let url = std::fs::read_to_string(stack.data_dir().join("database.url")).expect("database.url");
    let pool = sqlx::PgPool::connect(url.trim()).await.expect("connect");
    sqlx::query("UPDATE action_idempotency SET created_at = now() - interval '25 hours' WHERE action_id = $1")
        .bind(ids[0])
        .execute(&pool)
        .await
        .expect("age the key");
    let forgotten =
        tessera_api::idempotency::purge_expired(&pool, tessera_api::idempotency::KEY_RETENTION).await.expect("purge");
    assert_eq!(forgotten, 1, "only the aged key is forgotten");
    let renewed = invoke(&stack, &admin, "set_brightness", json!({"level": 43}), "race").await;
    let renewed = &renewed["data"]["invokeAction"];
    assert_eq!(renewed["replayed"], false, "{renewed}");
    assert_ne!(renewed["actionId"], ids[0]);
    pool.close().await;

    assert!(stack.stop().await, "tessera serve did not exit cleanly");
}
