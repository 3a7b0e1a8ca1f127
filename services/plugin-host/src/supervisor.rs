//! The lifecycle of one plugin: validation, then a loop of start → initialize → discover → run,
//! restarting with exponential backoff on failure and quarantining after repeated failure. Every
//! transition is written to `governance`.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use tessera_codec::messages::Codec;
use tessera_codec::raw::envelope_schema_text;
use tessera_codec::registry::now_ms;
use tessera_codec::{ActionCommand, PluginLifecycle, RejectionError, Topics};
use tessera_log::{Log, NewRecord};
use tessera_model::package::Package;
use tessera_model::Violation;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::emitter::Emitter;
use crate::protocol::{CallError, Connection, Incoming, PROTOCOL_VERSION};
use crate::quota::TokenBucket;
use crate::sandbox::{self, SandboxSpec};
use crate::{HostConfig, HostError};

/// Protocol violations tolerated in one run before the plugin is considered broken.
const MAX_VIOLATIONS_PER_RUN: u32 = 100;

/// The lifecycle states of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginState {
    /// The package passed contract validation.
    Validated,
    /// The package failed contract validation and will not run.
    Rejected,
    /// The process is starting and being initialized.
    Initializing,
    /// Discovery is running.
    Discovering,
    /// Streaming observations.
    Running,
    /// Running, but dropping output (quota) or breaking the protocol.
    Degraded,
    /// Failed; waiting before the next restart.
    BackingOff,
    /// Failed too often; not restarted.
    Quarantined,
    /// Stopped by the host.
    Stopped,
}

impl PluginState {
    /// The name used on `governance` and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginState::Validated => "validated",
            PluginState::Rejected => "rejected",
            PluginState::Initializing => "initializing",
            PluginState::Discovering => "discovering",
            PluginState::Running => "running",
            PluginState::Degraded => "degraded",
            PluginState::BackingOff => "backing_off",
            PluginState::Quarantined => "quarantined",
            PluginState::Stopped => "stopped",
        }
    }
}

/// A snapshot of a plugin's condition.
#[derive(Debug, Clone)]
pub struct PluginStatus {
    /// Current state.
    pub state: PluginState,
    /// Why it is in that state, when it failed.
    pub detail: Option<String>,
    /// Restarts so far.
    pub restarts: u32,
}

/// A command routed to the plugin that owns its device.
pub type CommandRequest = ActionCommand;

/// Supervises one validated plugin.
pub struct Supervisor {
    package: Package,
    dir: std::path::PathBuf,
    config: HostConfig,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    emitter: Emitter,
    restarts: u32,
    last_state: Option<PluginState>,
}

enum RunEnd {
    Shutdown,
    Failed(String),
}

impl Supervisor {
    /// Validates the package in `dir` and registers its contract. Returns `None` (after writing
    /// `rejected` to governance) when the package breaks its contract.
    pub async fn prepare(
        dir: &Path,
        config: &HostConfig,
        log: Arc<dyn Log>,
        codec: Arc<Codec>,
    ) -> Result<Option<Self>, HostError> {
        let fallback_id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let package = match crate::package::load(dir)? {
            Ok(package) => package,
            Err(violations) => {
                for v in &violations {
                    tracing::error!(plugin = %fallback_id, violation = %v, "plugin package rejected");
                }
                publish(
                    &log,
                    &codec,
                    &config.topics,
                    &fallback_id,
                    "",
                    PluginState::Rejected,
                    Some("contract validation failed".into()),
                    0,
                    violations,
                    (0, 0),
                )
                .await;
                return Ok(None);
            }
        };
        let id = package.manifest.id.clone();
        let raw_topic = config.topics.raw(&id);
        log.create_topic(&raw_topic, 1).await?;
        let envelope_text = envelope_schema_text(&id, &package.contract_texts);
        let envelope = codec.registry().register(&format!("{raw_topic}-value"), &envelope_text).await?;
        let emitter = Emitter::start(&id, raw_topic, config.topics.dlq(), envelope, codec.clone(), log.clone());
        publish(
            &log,
            &codec,
            &config.topics,
            &id,
            &package.manifest.version,
            PluginState::Validated,
            None,
            0,
            Vec::new(),
            (0, 0),
        )
        .await;
        Ok(Some(Self {
            package,
            dir: dir.to_path_buf(),
            config: config.clone(),
            log,
            codec,
            emitter,
            restarts: 0,
            last_state: None,
        }))
    }

    /// The plugin id.
    pub fn id(&self) -> &str {
        &self.package.manifest.id
    }

    async fn transition(&mut self, state: PluginState, detail: Option<String>) {
        let stats =
            (self.emitter.stats.accepted.load(Ordering::Relaxed), self.emitter.stats.rejected.load(Ordering::Relaxed));
        if self.last_state != Some(state) {
            tracing::info!(state = state.as_str(), detail = detail.as_deref().unwrap_or(""), "plugin state");
            self.last_state = Some(state);
        }
        let m = &self.package.manifest;
        publish(
            &self.log,
            &self.codec,
            &self.config.topics,
            &m.id,
            &m.version,
            state,
            detail,
            self.restarts,
            Vec::new(),
            stats,
        )
        .await;
    }

    /// Runs the plugin until shutdown or quarantine.
    pub async fn run(mut self, mut commands: mpsc::Receiver<CommandRequest>, shutdown: CancellationToken) {
        let span = tracing::info_span!("plugin", id = %self.id());
        async move {
            let mut failures: VecDeque<Instant> = VecDeque::new();
            let mut backoff = self.config.initial_backoff;
            loop {
                let started = Instant::now();
                match self.run_once(&mut commands, &shutdown).await {
                    RunEnd::Shutdown => {
                        self.transition(PluginState::Stopped, None).await;
                        return;
                    }
                    RunEnd::Failed(reason) => {
                        tracing::warn!(reason = %reason, "plugin failed");
                        metrics::counter!("tessera_host_plugin_failures_total", "plugin" => self.id().to_owned())
                            .increment(1);
                        let now = Instant::now();
                        // A long healthy run resets the backoff.
                        if now.duration_since(started) > self.config.failure_window {
                            backoff = self.config.initial_backoff;
                        }
                        failures.push_back(now);
                        while failures.front().is_some_and(|t| now.duration_since(*t) > self.config.failure_window) {
                            failures.pop_front();
                        }
                        if failures.len() >= self.config.quarantine_after {
                            self.transition(
                                PluginState::Quarantined,
                                Some(format!("{} failures; last: {reason}", failures.len())),
                            )
                            .await;
                            shutdown.cancelled().await;
                            self.transition(PluginState::Stopped, Some("quarantined".into())).await;
                            return;
                        }
                        self.transition(PluginState::BackingOff, Some(reason)).await;
                        tokio::select! {
                            _ = shutdown.cancelled() => {
                                self.transition(PluginState::Stopped, None).await;
                                return;
                            }
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(self.config.max_backoff);
                        self.restarts += 1;
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    fn plugin_config(&self) -> Json {
        let mut out = serde_json::Map::new();
        for (name, field) in &self.package.manifest.config {
            if let Some(default) = &field.default
                && let Ok(value) = serde_json::to_value(default)
            {
                out.insert(name.clone(), value);
            }
        }
        if let Some(Json::Object(overrides)) = self.config.plugin_config.get(self.id()) {
            for (k, v) in overrides {
                out.insert(k.clone(), v.clone());
            }
        }
        Json::Object(out)
    }

    fn secrets(&self) -> Json {
        let given = self.config.secrets.get(self.id());
        let mut out = serde_json::Map::new();
        for name in &self.package.manifest.secrets {
            if let Some(value) = given.and_then(|g| g.get(name)) {
                out.insert(name.clone(), Json::String(value.clone()));
            }
        }
        Json::Object(out)
    }

    async fn run_once(
        &mut self,
        commands: &mut mpsc::Receiver<CommandRequest>,
        shutdown: &CancellationToken,
    ) -> RunEnd {
        self.transition(PluginState::Initializing, None).await;
        let limits = self.package.manifest.limits.clone();
        let state_dir = self.config.state_dir.join(self.id());
        if let Err(e) = sandbox::prepare_state_dir(&state_dir) {
            return RunEnd::Failed(format!("cannot prepare state directory {}: {e}", state_dir.display()));
        }
        let spec = SandboxSpec {
            entrypoint: self.package.manifest.entrypoint.clone(),
            package_dir: self.dir.clone(),
            state_dir: state_dir.clone(),
            limits: limits.clone(),
        };
        let mut child = match sandbox::spawn(&spec) {
            Ok(child) => child,
            Err(e) => return RunEnd::Failed(format!("cannot start entrypoint {:?}: {e}", spec.entrypoint)),
        };
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            sandbox::kill_group(&child);
            return RunEnd::Failed("plugin stdio unavailable".into());
        };
        tokio::spawn(forward_stderr(stderr, self.id().to_owned()));
        let (in_tx, mut incoming) = mpsc::channel(1024);
        let conn = Connection::new(
            stdin,
            stdout,
            limits.max_message_bytes,
            Duration::from_millis(limits.call_timeout_ms),
            in_tx,
        );
        let end = self.drive(&conn, &mut incoming, commands, shutdown, &mut child, &state_dir).await;
        if matches!(end, RunEnd::Shutdown) {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.call("shutdown", json!({}))).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
        }
        sandbox::kill_group(&child);
        let _ = child.wait().await;
        end
    }

    async fn drive(
        &mut self,
        conn: &Connection,
        incoming: &mut mpsc::Receiver<Incoming>,
        commands: &mut mpsc::Receiver<CommandRequest>,
        shutdown: &CancellationToken,
        child: &mut tokio::process::Child,
        state_dir: &Path,
    ) -> RunEnd {
        let init = json!({
            "protocol_version": PROTOCOL_VERSION,
            "plugin_id": self.id(),
            "config": self.plugin_config(),
            "secrets": self.secrets(),
            "state_dir": state_dir,
        });
        let startup = async {
            let answer = conn.call("initialize", init).await?;
            let version = answer.get("protocol_version").and_then(Json::as_u64);
            if version != Some(u64::from(PROTOCOL_VERSION)) {
                return Err(CallError::Rpc {
                    code: -32600,
                    message: format!("plugin answered protocol_version {version:?}, expected {PROTOCOL_VERSION}"),
                });
            }
            self.transition(PluginState::Discovering, None).await;
            let found = conn.call("discover", json!({})).await?;
            let observations = found.get("observations").and_then(Json::as_array).cloned().unwrap_or_default();
            tracing::info!(devices = observations.len(), "discovery finished");
            for obs in observations {
                match serde_json::from_value(obs) {
                    Ok(params) => self.emitter.observe(params).await,
                    Err(e) => {
                        self.emitter.reject("protocol", vec![violation("discover.observations", &e.to_string())]).await
                    }
                }
            }
            conn.call("start", json!({})).await
        };
        let started = tokio::select! {
            r = startup => r,
            _ = shutdown.cancelled() => return RunEnd::Shutdown,
            status = child.wait() => return RunEnd::Failed(format!("exited during startup: {}", describe_exit(status))),
        };
        if let Err(e) = started {
            return RunEnd::Failed(format!("startup failed: {e}"));
        }
        self.transition(PluginState::Running, None).await;
        let limits = &self.package.manifest.limits;
        let mut quota = TokenBucket::new(limits.observations_per_second);
        let mut heartbeat = tokio::time::interval(Duration::from_millis(limits.heartbeat_interval_ms.max(100)));
        heartbeat.tick().await;
        let mut stats = tokio::time::interval(Duration::from_secs(5));
        let mut violations = 0u32;
        let mut dropped = 0u64;
        let mut degraded = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return RunEnd::Shutdown,
                status = child.wait() => return RunEnd::Failed(format!("exited: {}", describe_exit(status))),
                _ = heartbeat.tick() => {
                    if let Err(e) = conn.call("ping", json!({})).await {
                        return RunEnd::Failed(format!("heartbeat failed: {e}"));
                    }
                }
                _ = stats.tick() => {
                    if dropped > 0 && !degraded {
                        degraded = true;
                        self.transition(PluginState::Degraded, Some(format!("{dropped} observations over quota dropped"))).await;
                    } else if dropped == 0 && degraded {
                        degraded = false;
                        self.transition(PluginState::Running, None).await;
                    } else {
                        let state = if degraded { PluginState::Degraded } else { PluginState::Running };
                        self.transition(state, None).await;
                    }
                    dropped = 0;
                }
                Some(cmd) = commands.recv() => crate::actions::invoke(conn, cmd, &self.log, &self.codec, &self.config.topics).await,
                message = incoming.recv() => match message {
                    None => return RunEnd::Failed("plugin closed its output".into()),
                    Some(Incoming::Observe(obs)) => {
                        if quota.try_take() {
                            self.emitter.observe(obs).await;
                        } else {
                            dropped += 1;
                            self.emitter.reject("quota", vec![violation("observe", "observation over the plugin's rate quota")]).await;
                        }
                    }
                    Some(Incoming::Log { level, message }) => log_line(&level, &message),
                    Some(Incoming::Violation(why)) => {
                        violations += 1;
                        self.emitter.reject("protocol", vec![violation("stdout", &why)]).await;
                        if violations > MAX_VIOLATIONS_PER_RUN {
                            return RunEnd::Failed(format!("more than {MAX_VIOLATIONS_PER_RUN} protocol violations; last: {why}"));
                        }
                    }
                },
            }
        }
    }
}

fn violation(field: &str, why: &str) -> RejectionError {
    RejectionError {
        field: field.to_owned(),
        rule: "protocol".into(),
        expected: "a message following the plugin protocol".into(),
        found: why.to_owned(),
    }
}

fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => s.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

fn log_line(level: &str, message: &str) {
    match level {
        "error" => tracing::error!(target: "plugin", "{message}"),
        "warn" => tracing::warn!(target: "plugin", "{message}"),
        "debug" => tracing::debug!(target: "plugin", "{message}"),
        _ => tracing::info!(target: "plugin", "{message}"),
    }
}

async fn forward_stderr(stderr: tokio::process::ChildStderr, plugin: String) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut budget = TokenBucket::new(20);
    while let Ok(Some(line)) = lines.next_line().await {
        if budget.try_take() {
            let line = if line.len() > 2048 { &line[..line.floor_char_boundary(2048)] } else { &line };
            tracing::info!(target: "plugin", %plugin, "stderr: {line}");
        }
    }
}

/// Writes a lifecycle transition to `governance`; failures are logged, never fatal.
#[allow(clippy::too_many_arguments)]
async fn publish(
    log: &Arc<dyn Log>,
    codec: &Codec,
    topics: &Topics,
    plugin_id: &str,
    version: &str,
    state: PluginState,
    detail: Option<String>,
    restarts: u32,
    violations: Vec<Violation>,
    (accepted, rejected): (i64, i64),
) {
    let record = PluginLifecycle {
        plugin_id: plugin_id.to_owned(),
        version: version.to_owned(),
        state: state.as_str().to_owned(),
        detail,
        restarts: restarts as i32,
        violations,
        accepted,
        rejected,
        at_ms: now_ms(),
    };
    match codec.encode_lifecycle(&record) {
        Ok(value) => {
            let new = NewRecord { key: Some(plugin_id.as_bytes().to_vec()), value, timestamp_ms: now_ms() };
            if let Err(e) = log.append(&topics.governance(), vec![new]).await {
                tracing::error!(error = %e, "cannot write governance record");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot encode governance record"),
    }
}
