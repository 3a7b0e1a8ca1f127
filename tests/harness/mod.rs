//! The shared end-to-end harness: boots the real `tessera serve` (embedded log, an embedded
//! PostgreSQL started from the machine's binaries, real plugin processes) in a throwaway data
//! directory on a free loopback port, and talks to it over HTTP and graphql-transport-ws.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The repository root (plugins are found relative to it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// Polls `probe` every 250 ms until it returns `Some`, failing after `limit` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until something listens on `127.0.0.1:port` (at most 10 s); `what` names it in the panic.
pub async fn wait_listening(port: u16, what: &str) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on port {port} within 10 s");
}

/// Runs a Python plugin's own unit tests (`plugins/<plugin>/tests`) with the interpreter the
/// plugin-host starts plugins with, and fails with their output unless they pass.
pub fn assert_plugin_unit_tests_pass(plugin: &str) {
    let output = std::process::Command::new("/usr/bin/python3")
        .args(["-m", "unittest", "discover", "-s", "tests", "-t", "tests"])
        .current_dir(repo_root().join("plugins").join(plugin))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.contains("OK"), "plugin unit tests failed:\n{stderr}");
}

/// Every device with its metadata, availability, actions and capability values.
const DEVICE_NODES: &str = "{ devices(first: 100) { edges { node { id name deviceClass manufacturer model firmware \
                            online actions capabilities { name value } } } } }";

/// A running `tessera serve`.
pub struct Stack {
    child: Option<Child>,
    /// Throwaway data directory.
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The admin token.
    pub token: String,
    http: reqwest::Client,
}

/// Options of a stack.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Run the demo simulator.
    pub demo: bool,
    /// Extra plugin packages.
    pub plugins: Vec<PathBuf>,
    /// Plugin configuration JSON.
    pub plugin_config: Option<String>,
}

impl Stack {
    /// Boots the stack and waits until it is ready.
    pub async fn start(options: StackOptions) -> Stack {
        let dir = tempfile::Builder::new().prefix("tessera-e2e-").tempdir().expect("temp dir");
        // The embedded PostgreSQL runs as the `postgres` user when we are root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.current_dir(repo_root())
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--listen", &format!("127.0.0.1:{port}"), "--unsafe-fast-database"])
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if options.demo {
            cmd.arg("--demo");
        }
        let plugins: Vec<String> = options.plugins.iter().map(|p| p.display().to_string()).collect();
        cmd.args([
            "--plugins",
            &if plugins.is_empty() { dir.path().join("plugins").display().to_string() } else { plugins.join(",") },
        ]);
        if let Some(config) = &options.plugin_config {
            cmd.args(["--plugin-config", config]);
        }
        let child = cmd.spawn().expect("spawn tessera serve");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client");
        let mut stack = Stack { child: Some(child), dir, base, token: String::new(), http };
        stack.wait_ready().await;
        stack
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let token_file = self.dir.path().join("admin.token");
        loop {
            assert!(Instant::now() < deadline, "tessera serve did not become ready within 120 s");
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("tessera serve exited early with {status}");
            }
            if let Ok(token) = std::fs::read_to_string(&token_file) {
                self.token = token.trim().to_owned();
                if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await
                    && r.status().is_success()
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Runs a GraphQL document with `token` and returns the whole response body.
    pub async fn graphql_with(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut request =
            self.http.post(format!("{}/graphql", self.base)).json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("graphql request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Runs a GraphQL document as admin; panics on errors and returns `data`.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.graphql_with(Some(&self.token), query, variables).await;
        assert_eq!(status, 200, "GraphQL HTTP status, body {body}");
        assert!(body.get("errors").is_none(), "GraphQL errors: {body}");
        body["data"].clone()
    }

    /// Polls `probe` until it returns `Some`, at most `limit`.
    pub async fn eventually<T, F, Fut>(&self, what: &str, limit: Duration, probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        eventually(what, limit, probe).await
    }

    /// Opens a graphql-transport-ws subscription authenticated with `token`.
    pub async fn subscribe(&self, token: &str, query: &str, variables: Value) -> Subscription {
        let url = format!("{}/graphql", self.base.replace("http://", "ws://"));
        let mut request = url.into_client_request().expect("ws request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket connect");
        let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
        socket.send(Message::text(init.to_string())).await.expect("send init");
        let ack = next_json(&mut socket, Duration::from_secs(10)).await;
        assert_eq!(ack["type"], "connection_ack", "expected connection_ack, got {ack}");
        let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}});
        socket.send(Message::text(subscribe.to_string())).await.expect("send subscribe");
        Subscription { socket }
    }

    /// Stops the stack with SIGINT (as Ctrl-C would) and returns whether it exited cleanly in time.
    pub async fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return true };
        if let Some(pid) = child.id() {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
        }
        match tokio::time::timeout(Duration::from_secs(40), child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => {
                let _ = child.kill().await;
                false
            }
        }
    }

    /// Processes still running that belong to this stack (PostgreSQL, plugins): any process whose
    /// command line or environment mentions the data directory.
    pub fn leftover_processes(&self) -> Vec<String> {
        let needle = self.dir.path().display().to_string();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if pid.parse::<u32>().is_err() || pid == std::process::id().to_string() {
                continue;
            }
            let read = |f: &str| {
                std::fs::read(entry.path().join(f))
                    .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                    .unwrap_or_default()
            };
            let (cmdline, environ) = (read("cmdline"), read("environ"));
            if cmdline.contains(&needle) || environ.contains(&needle) {
                found.push(format!("{pid}: {cmdline}"));
            }
        }
        found
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(child) = &self.child
            && let Some(pid) = child.id()
        {
            // A failed test: stop the stack so it does not outlive the test.
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
            std::thread::sleep(Duration::from_secs(3));
        }
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(socket: &mut Socket, limit: Duration) -> Value {
    loop {
        let message = tokio::time::timeout(limit, socket.next())
            .await
            .expect("websocket message in time")
            .expect("websocket open")
            .expect("websocket message");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("json message"),
            Message::Close(frame) => return json!({"type": "closed", "frame": frame.map(|f| f.to_string())}),
            _ => continue,
        }
    }
}

/// An open subscription.
pub struct Subscription {
    socket: Socket,
}

impl Subscription {
    /// The next `next` payload's data; panics on `error` or when nothing arrives within `limit`.
    pub async fn next_data(&mut self, limit: Duration) -> Value {
        loop {
            let message = next_json(&mut self.socket, limit).await;
            match message["type"].as_str() {
                Some("next") => return message["payload"]["data"].clone(),
                Some("ping") => {
                    let _ = self.socket.send(Message::text(json!({"type": "pong"}).to_string())).await;
                }
                _ => panic!("unexpected subscription message: {message}"),
            }
        }
    }

    /// The next raw protocol message.
    pub async fn next_message(&mut self, limit: Duration) -> Value {
        next_json(&mut self.socket, limit).await
    }
}

impl Stack {
    /// Reads `/v1/streams/{topic}?from=0` (NDJSON replay, then tail) until `done` holds for the
    /// records read so far, at most `limit`; returns the records. Panics on timeout.
    pub async fn stream_until(
        &self,
        topic: &str,
        limit: Duration,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        let mut response = self
            .http
            .get(format!("{}/v1/streams/{topic}?from=0", self.base))
            .bearer_auth(&self.token)
            .timeout(limit)
            .send()
            .await
            .expect("stream request");
        assert!(response.status().is_success(), "stream {topic}: HTTP {}", response.status());
        let (mut records, mut pending) = (Vec::new(), Vec::new());
        loop {
            if done(&records) {
                return records;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = match tokio::time::timeout(left, response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => panic!("stream {topic} ended"),
                Ok(Err(e)) if Instant::now() < deadline => panic!("stream {topic} failed: {e}"),
                _ => panic!("timed out after {limit:?} reading {topic}: {} records read", records.len()),
            };
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                records.push(serde_json::from_slice(&line).expect("NDJSON line"));
            }
        }
    }
}

impl Stack {
    /// Creates an API token with `tessera token create` against this stack and returns its secret.
    pub fn create_token(&self, name: &str, scope: &str) -> String {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["token", "create", "--name", name, "--scope", scope, "--data-dir"])
            .arg(self.data_dir())
            .output()
            .expect("run tessera token create");
        assert!(output.status.success(), "token create failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

// ---- shared by the integration tests ------------------------------------------------------

impl Stack {
    /// Every device (see `DEVICE_NODES`), by id.
    pub async fn devices_by_id(&self) -> BTreeMap<String, Value> {
        let data = self.graphql(DEVICE_NODES, json!({})).await;
        data["devices"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| (e["node"]["id"].as_str().unwrap_or_default().to_owned(), e["node"].clone()))
            .collect()
    }

    /// Polls [`Stack::devices_by_id`] until `check` holds (at most 60 s) and returns what it saw.
    pub async fn until_devices(
        &self,
        what: &str,
        check: impl Fn(&BTreeMap<String, Value>) -> bool,
    ) -> BTreeMap<String, Value> {
        self.eventually(what, Duration::from_secs(60), || async {
            let now = self.devices_by_id().await;
            check(&now).then_some(now)
        })
        .await
    }

    /// Invokes an action as admin and waits until it has succeeded (panics if it fails).
    pub async fn invoke_and_succeed(&self, device: &str, action: &str, params: Value) {
        let data = self
            .graphql(
                "mutation($d: String!, $a: String!, $p: JSON) { invokeAction(deviceId: $d, action: $a, params: $p) { actionId } }",
                json!({"d": device, "a": action, "p": params}),
            )
            .await;
        let id = data["invokeAction"]["actionId"].as_str().unwrap().to_owned();
        self.eventually("the action to succeed", Duration::from_secs(30), || async {
            let data = self
                .graphql("query($id: String!) { actionStatus(id: $id) { status detail } }", json!({"id": id}))
                .await;
            assert_ne!(data["actionStatus"]["status"], "failed", "{action} failed: {data}");
            (data["actionStatus"]["status"] == "succeeded").then_some(())
        })
        .await;
    }

    /// Nothing the plugin emitted was rejected, neither by the host (contract) nor by the mapper.
    pub async fn assert_nothing_rejected(&self, plugin: &str) {
        let url = format!("{}/metrics", self.base);
        let text = self.http().get(url).bearer_auth(&self.token).send().await.unwrap().text().await.unwrap();
        let rejected: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("tessera_mapper_rejected_total") || l.starts_with("tessera_host_rejected_total"))
            .filter(|l| l.contains(plugin))
            .filter(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0))
            .collect();
        assert!(rejected.is_empty(), "rejected observations: {rejected:?}");
        let observed = text.lines().any(|l| {
            l.starts_with("tessera_host_observations_total")
                && l.contains(&format!("plugin=\"{plugin}\""))
                && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0)
        });
        assert!(observed, "no observations of {plugin} counted in /metrics:\n{text}");
    }
}
