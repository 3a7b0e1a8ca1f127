//! Limits, against an attack corpus: abusive GraphQL documents (deep nesting, alias bombs, huge
//! documents, directive floods, fragment cycles, complexity bombs, introspection abuse, huge page
//! sizes, batches) are each rejected with a clear error, and the server's resolver-call counter
//! (`tessera_api_graphql_resolver_calls_total`) shows that none of them reached a resolver. Also:
//! operations per WebSocket connection are bounded, and REST and GraphQL bodies are size-limited.

mod harness;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use harness::{Stack, StackOptions};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Root resolver calls so far, from `/metrics` (absent means none yet).
async fn resolver_calls(stack: &Stack) -> u64 {
    let text = stack
        .http()
        .get(format!("{}/metrics", stack.base))
        .bearer_auth(&stack.token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix("tessera_api_graphql_resolver_calls_total "))
        .map_or(0, |v| v.trim().parse::<f64>().expect("a number") as u64)
}

/// The introspection query GraphiQL and most GraphQL tools send.
const STANDARD_INTROSPECTION: &str = "query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}";

/// One abusive request: a name, the JSON body, and what the rejection must say.
struct Attack {
    name: &'static str,
    body: Value,
    says: &'static str,
}

fn corpus() -> Vec<Attack> {
    let q = |query: String| json!({ "query": query });
    let aliases: String = (0..100).map(|i| format!("a{i}: plugins {{ id }} ")).collect();
    let spreads = "...F ".repeat(1500);
    let deep_introspection = format!(
        "{{ __type(name: \"Query\") {{ fields {{ type {} name{} }} }} }}",
        "{ ofType ".repeat(20),
        " }".repeat(20)
    );
    vec![
        Attack {
            name: "bracket nesting",
            body: q(format!("{}{}", "{ a ".repeat(5000), "}".repeat(5000))),
            says: "nests",
        },
        Attack { name: "deep introspection", body: q(deep_introspection), says: "nested too deep" },
        Attack { name: "alias bomb", body: q(format!("{{ {aliases} }}")), says: "aliases" },
        Attack {
            name: "huge document",
            body: q(format!("{{ plugins {{ id }} }} # {}", "x".repeat(40 * 1024))),
            says: "bytes",
        },
        Attack {
            name: "directives on one field",
            body: q(format!("{{ plugins {} {{ id }} }}", "@include(if: true) ".repeat(6))),
            says: "cannot be greater than",
        },
        Attack {
            name: "directive flood",
            body: q(format!("{{ {} }}", "plugins @skip(if: false) { id @include(if: true) } ".repeat(20))),
            says: "directives",
        },
        Attack {
            name: "fragment cycle",
            body: q("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }".into()),
            says: "recursion depth",
        },
        Attack {
            name: "complexity bomb",
            body: q(format!(
                "{{ __schema {{ types {{ {spreads} }} }} }} fragment F on __Type {{ name fields {{ name args {{ name }} }} }}"
            )),
            says: "too complex",
        },
        Attack {
            name: "huge page literal",
            body: q("{ devices(first: 1000000) { edges { cursor } } }".into()),
            says: "page sizes",
        },
        Attack {
            name: "huge page variable",
            body: json!({"query": "query($n: Int) { devices(first: $n) { edges { cursor } } }", "variables": {"n": 100000}}),
            says: "page sizes",
        },
        Attack {
            name: "huge page default",
            body: json!({"query": "query($n: Int = 99999) { devices(first: $n) { edges { cursor } } }"}),
            says: "page sizes",
        },
        Attack { name: "zero page", body: q("{ devices(first: 0) { edges { cursor } } }".into()), says: "page sizes" },
        Attack {
            name: "batch",
            body: json!([{"query": "{ plugins { id } }"}, {"query": "{ plugins { id } }"}]),
            says: "expected",
        },
        Attack {
            name: "variables not an object",
            body: json!({"query": "{ plugins { id } }", "variables": [1]}),
            says: "object",
        },
        Attack { name: "unknown field", body: q("{ plugins { id secret } }".into()), says: "Unknown field" },
    ]
}

fn messages(body: &Value) -> String {
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abusive_documents_are_rejected_before_any_resolver_runs() {
    let mut stack = Stack::start(StackOptions::default()).await;

    // A legitimate query resolves (so the counter exists), and so does the standard
    // introspection query that GraphQL tools send: the limits leave room for them.
    stack.graphql("{ plugins { id } }", json!({})).await;
    let introspection = STANDARD_INTROSPECTION;
    let data = stack.graphql(introspection, json!({})).await;
    assert!(data["__schema"]["types"].as_array().is_some_and(|t| t.len() > 10));
    let before = resolver_calls(&stack).await;
    assert!(before >= 2, "the counter did not count the legitimate queries: {before}");

    for attack in corpus() {
        let response = stack
            .http()
            .post(format!("{}/graphql", stack.base))
            .bearer_auth(&stack.token)
            .json(&attack.body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", attack.name));
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status == 200 || status == 400, "{}: status {status}, body {body}", attack.name);
        assert!(body["data"].is_null(), "{}: some data came back: {body}", attack.name);
        let said = messages(&body);
        assert!(
            said.contains(attack.says),
            "{}: expected an error saying `{}`, got `{said}`",
            attack.name,
            attack.says
        );
    }

    let after = resolver_calls(&stack).await;
    assert_eq!(after, before, "the attack corpus reached {} resolvers", after - before);
    stack.graphql("{ plugins { id } }", json!({})).await;
    assert_eq!(resolver_calls(&stack).await, before + 1, "the counter stopped counting");

    // Bodies beyond the limits are refused before they are read whole.
    let big = json!({"query": "{ plugins { id } }", "variables": {"pad": "x".repeat(100 * 1024)}});
    let response =
        stack.http().post(format!("{}/graphql", stack.base)).bearer_auth(&stack.token).json(&big).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 413, "a 100 KiB GraphQL body");
    let big = json!({"params": {"pad": "x".repeat(300 * 1024)}});
    let response = stack
        .http()
        .post(format!("{}/v1/devices/any/actions/toggle", stack.base))
        .bearer_auth(&stack.token)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413, "a 300 KiB REST body");
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(body["error"]["code"], "too_large", "{body}");
    // REST page sizes too.
    let response = stack
        .http()
        .get(format!("{}/v1/devices?first=100000", stack.base))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);

    assert!(stack.stop().await, "tessera serve did not exit cleanly");
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("a message");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("json");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_connection_runs_a_bounded_number_of_operations() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let url = format!("{}/graphql", stack.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("ws request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("connect");
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", stack.token)}});
    socket.send(Message::text(init.to_string())).await.expect("init");
    assert_eq!(next_text(&mut socket).await["type"], "connection_ack");

    let limit = tessera_api::MAX_WS_OPERATIONS;
    for i in 0..=limit {
        let subscribe = json!({"id": format!("s{i}"), "type": "subscribe", "payload": {"query": "subscription { deviceChanged { id } }"}});
        socket.send(Message::text(subscribe.to_string())).await.expect("subscribe");
    }
    let refusal = next_text(&mut socket).await;
    assert_eq!(refusal["type"], "error", "{refusal}");
    assert_eq!(refusal["id"], format!("s{limit}"), "{refusal}");
    assert!(refusal.to_string().contains("at most"), "{refusal}");

    // Completing one frees a place.
    socket.send(Message::text(json!({"id": "s0", "type": "complete"}).to_string())).await.expect("complete");
    let subscribe = json!({"id": "again", "type": "subscribe", "payload": {"query": "{ plugins { id } }"}});
    socket.send(Message::text(subscribe.to_string())).await.expect("subscribe");
    let mut got = Vec::new();
    while !got.iter().any(|m: &Value| m["id"] == "again" && m["type"] == "complete") {
        let message = next_text(&mut socket).await;
        assert_ne!(message["type"], "error", "refused after a place was freed: {message}");
        got.push(message);
    }
    assert!(got.iter().any(|m| m["id"] == "again" && m["type"] == "next"), "{got:?}");

    assert!(stack.stop().await, "tessera serve did not exit cleanly");
}
