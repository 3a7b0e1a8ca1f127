//! The protocol loop: reads requests line by line, serves each on its own task and writes the
//! answers and notifications through one writer.

use std::process::ExitCode;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::{Emitter, PROTOCOL_VERSION, Plugin, PluginError, SdkError};

#[derive(Deserialize)]
struct Request {
    id: Option<Json>,
    method: Option<String>,
    #[serde(default)]
    params: Json,
}

/// Runs `plugin` on stdio in a small runtime until the host asks it to shut down or closes stdin.
pub fn run<P: Plugin>(plugin: P) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tessera-plugin-sdk: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(plugin)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-plugin-sdk: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serves the protocol on stdio.
pub async fn serve<P: Plugin>(plugin: P) -> Result<(), SdkError> {
    serve_io(plugin, tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves the protocol on any reader and writer (tests use in-memory pipes).
pub async fn serve_io<P, R, W>(plugin: P, input: R, mut output: W) -> Result<(), SdkError>
where
    P: Plugin,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let plugin = Arc::new(plugin);
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(mut line) = rx.recv().await {
            line.push('\n');
            output.write_all(line.as_bytes()).await?;
            // Flush only when nothing else is queued: one syscall per burst, not per line.
            if rx.is_empty() {
                output.flush().await?;
            }
        }
        output.flush().await
    });
    let emitter = Emitter::new(tx.clone());
    let mut lines = BufReader::new(input).lines();
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                let error = json!({"code": -32700, "message": format!("parse error: {e}")});
                let _ = tx.send(json!({"jsonrpc": "2.0", "id": null, "error": error}).to_string());
                continue;
            }
        };
        let method = request.method.unwrap_or_default();
        if method == "shutdown" {
            plugin.shutdown().await;
            let _ = tx.send(json!({"jsonrpc": "2.0", "id": request.id, "result": {}}).to_string());
            break;
        }
        let (plugin, emitter, tx) = (plugin.clone(), emitter.clone(), tx.clone());
        tasks.spawn(async move {
            let answer = match dispatch(plugin.as_ref(), &method, request.params, emitter).await {
                Ok(result) => json!({"jsonrpc": "2.0", "id": request.id, "result": result}),
                Err(e) => {
                    json!({"jsonrpc": "2.0", "id": request.id, "error": {"code": e.code(), "message": e.to_string()}})
                }
            };
            // A notification (no id) gets no answer.
            if !answer["id"].is_null() {
                let _ = tx.send(answer.to_string());
            }
        });
        // Reap finished request tasks so that a long-lived plugin does not accumulate them.
        while tasks.try_join_next().is_some() {}
    }
    tasks.abort_all();
    drop(emitter);
    drop(tx);
    // Emitter clones kept by the plugin's tasks keep the writer open; give the answers a moment.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), writer).await;
    Ok(())
}

fn params<T: serde::de::DeserializeOwned>(params: Json) -> Result<T, PluginError> {
    serde_json::from_value(params).map_err(|e| PluginError::Internal(format!("invalid params: {e}")))
}

async fn dispatch<P: Plugin>(plugin: &P, method: &str, p: Json, emitter: Emitter) -> Result<Json, PluginError> {
    match method {
        "initialize" => {
            plugin.initialize(params(p)?).await?;
            Ok(json!({"protocol_version": PROTOCOL_VERSION, "version": env!("CARGO_PKG_VERSION")}))
        }
        "discover" => {
            let found = plugin.discover().await?;
            Ok(json!({"observations": found}))
        }
        "start" => plugin.start(emitter).await.map(|()| json!({})),
        "invoke" => {
            let detail = plugin.invoke(params(p)?).await?;
            Ok(detail.map_or_else(|| json!({}), |d| json!({"detail": d})))
        }
        "ping" => Ok(json!({})),
        other => Err(PluginError::Internal(format!("method not found: {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Init, Invoke, Observation};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    struct Lamp;

    impl Plugin for Lamp {
        async fn initialize(&self, init: Init) -> Result<(), PluginError> {
            match init.config.get("fail") {
                Some(_) => Err(PluginError::InvalidConfig("fail is set".into())),
                None => Ok(()),
            }
        }

        async fn discover(&self) -> Result<Vec<Observation>, PluginError> {
            Ok(vec![Observation::new("l-1", "acme.Lamp", json!({"id": "l-1"}))])
        }

        async fn start(&self, emitter: Emitter) -> Result<(), PluginError> {
            tokio::spawn(async move {
                for i in 0..3 {
                    let _ = emitter.emit(Observation::new("l-1", "acme.Lamp", json!({"id": "l-1", "n": i})));
                }
            });
            Ok(())
        }

        async fn invoke(&self, request: Invoke) -> Result<Option<String>, PluginError> {
            if request.action == "slow" {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Ok(Some(format!("{} dry_run={}", request.action, request.dry_run)))
        }
    }

    #[tokio::test]
    async fn serves_requests_concurrently_and_streams_observations() {
        let (host_end, plugin_end) = tokio::io::duplex(64 * 1024);
        let (plugin_in, plugin_out) = tokio::io::split(plugin_end);
        let server = tokio::spawn(serve_io(Lamp, plugin_in, plugin_out));
        let (host_in, mut host_out) = tokio::io::split(host_end);
        let requests = [
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocol_version": 1, "plugin_id": "lamp", "config": {}, "secrets": {}, "state_dir": "/tmp"}}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "discover", "params": {}}),
            json!({"jsonrpc": "2.0", "id": 3, "method": "start", "params": {}}),
            json!({"jsonrpc": "2.0", "id": 4, "method": "invoke", "params": {"action_id": "a", "external_id": "l-1", "action": "slow", "params": {}, "dry_run": true}}),
            json!({"jsonrpc": "2.0", "id": 5, "method": "ping", "params": {}}),
            json!({"jsonrpc": "2.0", "id": 6, "method": "bogus", "params": {}}),
        ];
        for r in &requests {
            host_out.write_all(format!("{r}\n").as_bytes()).await.unwrap();
        }
        let mut lines = BufReader::new(host_in).lines();
        let mut answers = std::collections::BTreeMap::new();
        let mut order = Vec::new();
        let mut observed = 0;
        while answers.len() < 6 || observed < 3 {
            let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await.unwrap().unwrap().unwrap();
            let message: Json = serde_json::from_str(&line).unwrap();
            if message["method"] == "observe" {
                observed += 1;
                assert_eq!(message["params"]["record"], "acme.Lamp");
            } else {
                let id = message["id"].as_u64().unwrap();
                order.push(id);
                answers.insert(id, message);
            }
        }
        assert_eq!(answers[&1]["result"]["protocol_version"], 1);
        assert_eq!(answers[&2]["result"]["observations"][0]["external_id"], "l-1");
        assert_eq!(answers[&4]["result"]["detail"], "slow dry_run=true");
        assert_eq!(answers[&6]["error"]["code"], -32603);
        // The slow invoke did not hold up the heartbeat behind it.
        let pos = |id| order.iter().position(|x| *x == id).unwrap();
        assert!(pos(5) < pos(4), "ping answered before the slow invoke: {order:?}");
        host_out.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"shutdown\",\"params\":{}}\n").await.unwrap();
        let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await.unwrap().unwrap().unwrap();
        assert_eq!(serde_json::from_str::<Json>(&line).unwrap()["id"], 7);
        tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap().unwrap();
    }

    #[tokio::test]
    async fn plugin_errors_carry_their_protocol_codes() {
        let (host_end, plugin_end) = tokio::io::duplex(4096);
        let (plugin_in, plugin_out) = tokio::io::split(plugin_end);
        tokio::spawn(serve_io(Lamp, plugin_in, plugin_out));
        let (host_in, mut host_out) = tokio::io::split(host_end);
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocol_version": 1, "plugin_id": "lamp", "config": {"fail": true}, "secrets": {}, "state_dir": "/tmp"}});
        host_out.write_all(format!("{init}\nnot json\n").as_bytes()).await.unwrap();
        let mut lines = BufReader::new(host_in).lines();
        let mut codes = Vec::new();
        for _ in 0..2 {
            let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await.unwrap().unwrap().unwrap();
            codes.push(serde_json::from_str::<Json>(&line).unwrap()["error"]["code"].as_i64().unwrap());
        }
        codes.sort();
        assert_eq!(codes, vec![-32700, 1004]);
    }
}
