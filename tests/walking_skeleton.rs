//! The walking skeleton, end to end: the simulator's devices travel plugin-host → raw.simulator →
//! mapper → device-events → projector → PostgreSQL → GraphQL, live values change, a subscription
//! delivers updates, an action reaches the plugin, and Ctrl-C leaves nothing running.

mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use harness::{Stack, StackOptions};
use serde_json::{Value, json};

const DEVICES: &str = "{ devices(first: 50) { edges { node { id name deviceClass online actions capabilities { name value observedAt } } } } }";

fn values(data: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for edge in data["devices"]["edges"].as_array().into_iter().flatten() {
        let node = &edge["node"];
        for cap in node["capabilities"].as_array().into_iter().flatten() {
            out.insert(
                format!("{}/{}", node["id"].as_str().unwrap_or(""), cap["name"].as_str().unwrap_or("")),
                cap["value"].clone(),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_devices_flow_from_plugin_to_graphql_and_back() {
    let mut stack = Stack::start(StackOptions { demo: true, ..Default::default() }).await;

    // The three simulated devices appear with live values.
    let first = stack
        .eventually("three simulated devices with values", Duration::from_secs(60), || async {
            let data = stack.graphql(DEVICES, json!({})).await;
            let edges = data["devices"]["edges"].as_array().cloned().unwrap_or_default();
            let ready = edges.len() == 3
                && edges.iter().all(|e| !e["node"]["capabilities"].as_array().is_none_or(|c| c.is_empty()));
            ready.then_some(data)
        })
        .await;
    let classes: Vec<&str> = first["devices"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["deviceClass"].as_str().unwrap())
        .collect();
    assert_eq!(classes, vec!["climate_sensor", "light", "power_meter"]);
    assert!(values(&first).contains_key("simulator:climate-1/temperature"));
    assert!(values(&first).contains_key("simulator:meter-1/energy"));

    // Values change between two queries.
    let before = values(&first);
    stack
        .eventually("a value to change", Duration::from_secs(15), || async {
            let now = values(&stack.graphql(DEVICES, json!({})).await);
            (now != before).then_some(())
        })
        .await;

    // A deviceChanged subscription receives updates.
    let mut subscription = stack
        .subscribe(&stack.token, "subscription { deviceChanged { id name capabilities { name value } } }", json!({}))
        .await;
    let update = subscription.next_data(Duration::from_secs(15)).await;
    assert!(update["deviceChanged"]["id"].as_str().is_some_and(|id| id.starts_with("simulator:")), "update: {update}");

    // An action reaches the plugin and its effect comes back through the model.
    let light = stack.graphql("{ device(id: \"simulator:light-1\") { capabilities { name value } } }", json!({})).await;
    let was_on =
        light["device"]["capabilities"].as_array().unwrap().iter().find(|c| c["name"] == "switch").unwrap()["value"]
            .as_bool()
            .unwrap();
    let invoked = stack
        .graphql(
            "mutation($d: String!) { invokeAction(deviceId: $d, action: \"toggle\") { actionId status } }",
            json!({"d": "simulator:light-1"}),
        )
        .await;
    assert_eq!(invoked["invokeAction"]["status"], "queued");
    let action_id = invoked["invokeAction"]["actionId"].as_str().unwrap().to_owned();
    stack
        .eventually("the toggle to take effect", Duration::from_secs(15), || async {
            let light =
                stack.graphql("{ device(id: \"simulator:light-1\") { capabilities { name value } } }", json!({})).await;
            let on = light["device"]["capabilities"].as_array()?.iter().find(|c| c["name"] == "switch")?["value"]
                .as_bool()?;
            (on != was_on).then_some(())
        })
        .await;
    stack
        .eventually("the action to succeed", Duration::from_secs(15), || async {
            let status = stack
                .graphql("query($id: String!) { actionStatus(id: $id) { status } }", json!({"id": action_id}))
                .await;
            (status["actionStatus"]["status"] == "succeeded").then_some(())
        })
        .await;

    // Nothing answers without a token but the health endpoints.
    let (status, _) = stack.graphql_with(None, DEVICES, json!({})).await;
    assert_eq!(status, 401);
    let rest = stack.http().get(format!("{}/v1/devices", stack.base)).send().await.unwrap();
    assert_eq!(rest.status().as_u16(), 401);
    let health = stack.http().get(format!("{}/healthz", stack.base)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);

    // Ctrl-C stops everything: no PostgreSQL and no plugin process is left behind.
    assert!(stack.stop().await, "tessera serve did not exit cleanly on SIGINT");
    let leftovers = stack.leftover_processes();
    assert!(leftovers.is_empty(), "processes left behind: {leftovers:?}");
}
