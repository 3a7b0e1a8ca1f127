//! The lifecycle of one plugin: validation, then a loop of start → initialize → discover → run,
//! restarting with exponential backoff on failure and quarantining after repeated failure. Every
//! transition is written to `governance`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use tessera_codec::messages::Codec;
use tessera_codec::raw::envelope_schema_text;
use tessera_codec::registry::schema_id;
use tessera_codec::{ActionCommand, RejectionError};
use tessera_log::Log;
use tessera_model::Violation;
use tessera_model::package::Package;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::emitter::Emitter;
use crate::lifecycle::{PluginState, Transition, publish};
use crate::policy::{Failures, Policy, Verdict};
use crate::protocol::{CallError, Connection, Incoming, PROTOCOL_VERSION};
use crate::quota::TokenBucket;
use crate::sandbox::{self, SandboxSpec};
use crate::{HostConfig, HostError, stderr};

/// Interval at which counters are published and a degraded plugin may recover.
const STATS_INTERVAL: Duration = Duration::from_secs(2);
/// Longest failure reason kept, stderr included.
const MAX_REASON: usize = 600;

/// A command routed to the plugin that owns its device.
pub type CommandRequest = ActionCommand;

/// Supervises one validated plugin.
pub struct Supervisor {
    package: Package,
    dir: std::path::PathBuf,
    config: HostConfig,
    policy: Policy,
    log: Arc<dyn Log>,
    codec: Arc<Codec>,
    emitter: Emitter,
    restarts: u32,
    last_state: Option<PluginState>,
    /// Why the plugin last failed; kept as the detail of later transitions that have none of
    /// their own, so that `lastError` still explains a plugin that was restarted.
    last_error: Option<String>,
}

enum RunEnd {
    Shutdown,
    Failed(String),
}

/// Writes `rejected` with every violation to governance.
async fn reject(
    log: &Arc<dyn Log>,
    codec: &Codec,
    config: &HostConfig,
    (id, version): (&str, &str),
    detail: &str,
    violations: Vec<Violation>,
) {
    for v in &violations {
        tracing::error!(plugin = %id, violation = %v, "plugin package rejected");
    }
    let t = Transition {
        plugin_id: id,
        version,
        state: PluginState::Rejected,
        detail: Some(detail.to_owned()),
        restarts: 0,
        violations,
        counts: (0, 0),
    };
    publish(log, codec, &config.topics, t).await;
}

impl Supervisor {
    /// Validates the package in `dir`, checks its contract against the previous version and
    /// registers it. Returns `None` (after writing `rejected` to governance) when the package
    /// breaks its contract.
    /// `running` holds the ids of the plugins this host already runs: a second package with the
    /// same id is rejected.
    pub async fn prepare(
        dir: &Path,
        config: &HostConfig,
        (log, codec): (Arc<dyn Log>, Arc<Codec>),
        running: &std::collections::BTreeSet<String>,
    ) -> Result<Option<Self>, HostError> {
        let fallback_id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let package = match crate::package::load(dir)? {
            Ok(package) => package,
            Err(violations) => {
                let detail = "contract validation failed";
                reject(&log, &codec, config, (&fallback_id, ""), detail, violations).await;
                return Ok(None);
            }
        };
        let id = package.manifest.id.clone();
        let version = package.manifest.version.clone();
        let raw_topic = config.topics.raw(&id);
        log.create_topic(&raw_topic, config.topics.partitions_for(&raw_topic)).await?;
        let envelope_text = envelope_schema_text(&id, &package.contract_texts);
        let subject = format!("{raw_topic}-value");
        let envelope_schema = apache_avro::Schema::parse_str(&envelope_text)
            .map_err(|e| HostError::Codec(tessera_codec::CodecError::InvalidSchema(e.to_string())))?;
        let incompatible =
            crate::compat::check_against_registry(&codec, &subject, schema_id(&envelope_schema), &package).await?;
        if !incompatible.is_empty() {
            let detail = "contract is not backward compatible with the previous version";
            reject(&log, &codec, config, (&id, &version), detail, incompatible).await;
            return Ok(None);
        }
        if running.contains(&id) {
            let duplicate = Violation::new(
                "manifest.duplicate_id",
                "plugin.toml:id",
                format!("another package ({id}) already runs on this host under this id"),
            )
            .hint("run one version of a plugin at a time");
            let detail = "duplicate plugin id";
            reject(&log, &codec, config, (&id, &version), detail, vec![duplicate]).await;
            return Ok(None);
        }
        let envelope = codec.registry().register_parsed(&subject, &envelope_text, envelope_schema).await?;
        let limits = &package.manifest.limits;
        let topics = (raw_topic, config.topics.dlq());
        let emitter = Emitter::start(&id, topics, envelope, codec.clone(), log.clone(), limits.dlq_per_second);
        let policy = Policy::resolve(config, &package.manifest.restart);
        let t = Transition {
            plugin_id: &id,
            version: &version,
            state: PluginState::Validated,
            detail: None,
            restarts: 0,
            violations: Vec::new(),
            counts: (0, 0),
        };
        publish(&log, &codec, &config.topics, t).await;
        Ok(Some(Self {
            package,
            dir: dir.to_path_buf(),
            config: config.clone(),
            policy,
            log,
            codec,
            emitter,
            restarts: 0,
            last_state: None,
            last_error: None,
        }))
    }

    /// The plugin id.
    pub fn id(&self) -> &str {
        &self.package.manifest.id
    }

    async fn transition(&mut self, state: PluginState, detail: Option<String>) {
        let stats = &self.emitter.stats;
        let counts = (stats.accepted.load(Ordering::Relaxed), stats.rejected.load(Ordering::Relaxed));
        if self.last_state != Some(state) {
            tracing::info!(state = state.as_str(), detail = detail.as_deref().unwrap_or(""), "plugin state");
            self.last_state = Some(state);
        }
        let m = &self.package.manifest;
        let t = Transition {
            plugin_id: &m.id,
            version: &m.version,
            state,
            detail: detail.or_else(|| self.last_error.clone()),
            restarts: self.restarts,
            violations: Vec::new(),
            counts,
        };
        publish(&self.log, &self.codec, &self.config.topics, t).await;
    }

    /// Runs the plugin until shutdown or quarantine.
    pub async fn run(mut self, mut commands: mpsc::Receiver<CommandRequest>, shutdown: CancellationToken) {
        let span = tracing::info_span!("plugin", id = %self.id());
        async move {
            let mut failures = Failures::new(self.policy);
            loop {
                let started = Instant::now();
                let reason = match self.run_once(&mut commands, &shutdown).await {
                    RunEnd::Shutdown => {
                        self.transition(PluginState::Stopped, None).await;
                        return;
                    }
                    RunEnd::Failed(reason) => reason,
                };
                tracing::warn!(reason = %reason, "plugin failed");
                self.last_error = Some(reason.clone());
                metrics::counter!("tessera_host_plugin_failures_total", "plugin" => self.id().to_owned()).increment(1);
                match failures.record(started, Instant::now()) {
                    Verdict::Quarantine(count) => {
                        let detail = format!("quarantined after {count} failures; last: {reason}");
                        self.transition(PluginState::Quarantined, Some(detail.clone())).await;
                        shutdown.cancelled().await;
                        self.transition(PluginState::Stopped, Some(detail)).await;
                        return;
                    }
                    Verdict::Restart(delay) => {
                        self.transition(PluginState::BackingOff, Some(reason.clone())).await;
                        tokio::select! {
                            _ = shutdown.cancelled() => {
                                self.transition(PluginState::Stopped, Some(reason)).await;
                                return;
                            }
                            _ = tokio::time::sleep(delay) => {}
                        }
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
            network_allowed: !self.package.manifest.network.allow.is_empty(),
        };
        let cgroup = crate::cgroup::PluginCgroup::create(self.id(), &limits);
        if let Some(cgroup) = &cgroup {
            tracing::debug!(enforced = ?cgroup.enforced, "plugin cgroup");
        }
        let mut child = match sandbox::spawn(&spec, cgroup.as_ref()) {
            Ok(child) => child,
            Err(e) => return RunEnd::Failed(format!("cannot start entrypoint {:?}: {e}", spec.entrypoint)),
        };
        if let Some(pid) = child.id() {
            let isolation = sandbox::network_isolation(&spec, pid);
            let isolated = isolation == sandbox::NetworkIsolation::Isolated;
            metrics::gauge!("tessera_plugin_host_network_isolated", "plugin" => self.id().to_owned())
                .set(f64::from(u8::from(isolated)));
            if isolation == sandbox::NetworkIsolation::NotEnforced {
                tracing::warn!(plugin = %self.id(), "the plugin declares no network use but shares the host's network (isolation needs a root host)");
            } else {
                tracing::debug!(plugin = %self.id(), ?isolation, "plugin network");
            }
        }
        let (Some(stdin), Some(stdout), Some(err_pipe)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            sandbox::kill_group(&child);
            return RunEnd::Failed("plugin stdio unavailable".into());
        };
        let (tail, stderr_task) = stderr::forward(err_pipe, self.id().to_owned());
        let (in_tx, mut incoming) = mpsc::channel(1024);
        let timeout = Duration::from_millis(limits.call_timeout_ms);
        let conn = Connection::new(stdin, stdout, limits.max_message_bytes, timeout, in_tx);
        let end = self.drive(&conn, &mut incoming, commands, shutdown, &mut child, &state_dir).await;
        if matches!(end, RunEnd::Shutdown) {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.call("shutdown", json!({}))).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
        }
        sandbox::kill_group(&child);
        // The cgroup also reaches what left the process group (a daemonized grandchild).
        if let Some(cgroup) = &cgroup {
            cgroup.kill();
        }
        let _ = child.wait().await;
        drop(cgroup);
        match end {
            RunEnd::Shutdown => RunEnd::Shutdown,
            RunEnd::Failed(reason) => {
                // The process group is dead, so stderr reaches its end promptly: wait for its last
                // lines, which usually say why the plugin died.
                let _ = tokio::time::timeout(Duration::from_millis(500), stderr_task).await;
                let reason = match tail.summary(MAX_REASON) {
                    Some(printed) => format!("{reason}; stderr: {printed}"),
                    None => reason,
                };
                RunEnd::Failed(truncate(&reason, MAX_REASON))
            }
        }
    }

    /// Initializes and discovers; `Err` carries the failure.
    async fn start_plugin(
        &mut self,
        conn: &Connection,
        shutdown: &CancellationToken,
        child: &mut tokio::process::Child,
        state_dir: &Path,
    ) -> Result<(), RunEnd> {
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
                    Ok(params) => {
                        self.emitter.observe(params).await;
                    }
                    Err(e) => {
                        self.emitter.reject("protocol", vec![violation("discover.observations", &e.to_string())]).await
                    }
                }
            }
            conn.call("start", json!({})).await
        };
        let started = tokio::select! {
            r = startup => r,
            _ = shutdown.cancelled() => return Err(RunEnd::Shutdown),
            status = child.wait() => {
                return Err(RunEnd::Failed(format!("exited during startup: {}", describe_exit(status))));
            }
        };
        match started {
            Ok(_) => Ok(()),
            Err(CallError::Closed) => Err(exit_or(child, "plugin closed its output during startup").await),
            Err(e) => Err(RunEnd::Failed(format!("startup failed: {e}"))),
        }
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
        if let Err(end) = self.start_plugin(conn, shutdown, child, state_dir).await {
            return end;
        }
        self.transition(PluginState::Running, None).await;
        let limits = self.package.manifest.limits.clone();
        let mut quota = TokenBucket::new(limits.observations_per_second);
        let mut heartbeat = tokio::time::interval(Duration::from_millis(limits.heartbeat_interval_ms.max(100)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        // The heartbeat runs beside everything else: waiting for a ping's answer must not stop the
        // host from reading the plugin's output.
        let mut ping = None;
        let mut stats = tokio::time::interval(STATS_INTERVAL);
        stats.tick().await;
        let mut violations = 0u32;
        let mut dropped = 0u64;
        let mut degraded = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return RunEnd::Shutdown,
                status = child.wait() => return RunEnd::Failed(format!("exited: {}", describe_exit(status))),
                _ = heartbeat.tick(), if ping.is_none() => ping = Some(Box::pin(conn.call("ping", json!({})))),
                answer = pending_or(&mut ping) => {
                    ping = None;
                    match answer {
                        Ok(_) => {}
                        Err(CallError::Timeout(_)) => {
                            return RunEnd::Failed(format!("heartbeat not answered within {} ms", limits.call_timeout_ms));
                        }
                        Err(CallError::Closed) => return exit_or(child, "plugin closed its output").await,
                        Err(other) => return RunEnd::Failed(format!("heartbeat failed: {other}")),
                    }
                }
                _ = stats.tick() => {
                    let unread = conn.take_overflow();
                    if unread > 0 {
                        self.emitter.reject_unread(unread).await;
                        dropped += unread;
                    }
                    self.emitter.flush_summary().await;
                    if dropped == 0 && degraded {
                        degraded = false;
                        self.transition(PluginState::Running, None).await;
                    } else if dropped > 0 && !degraded {
                        degraded = true;
                        let why = format!("{dropped} messages over the plugin's limits dropped");
                        self.transition(PluginState::Degraded, Some(why)).await;
                    } else {
                        let state = if degraded { PluginState::Degraded } else { PluginState::Running };
                        self.transition(state, None).await;
                    }
                    dropped = 0;
                }
                Some(cmd) = commands.recv() => crate::actions::invoke(conn, cmd, &self.log, &self.codec, &self.config.topics).await,
                message = incoming.recv() => match message {
                    None => return exit_or(child, "plugin closed its output").await,
                    Some(Incoming::Observe(obs)) => {
                        if quota.try_take() {
                            // Output that breaks the contract counts against the plugin like garbage.
                            if !self.emitter.observe(obs).await {
                                violations += 1;
                                if violations > limits.max_violations {
                                    let max = limits.max_violations;
                                    return RunEnd::Failed(format!("more than {max} contract or protocol violations; last: an observation that breaks the contract"));
                                }
                            }
                        } else {
                            dropped += 1;
                            let why = format!("over the quota of {} observations per second", limits.observations_per_second);
                            self.emitter.reject("quota", vec![violation("observe", &why)]).await;
                            if !degraded {
                                degraded = true;
                                self.transition(PluginState::Degraded, Some(format!("observations {why} dropped"))).await;
                            }
                        }
                    }
                    Some(Incoming::Log { level, message }) => log_line(&level, &message),
                    Some(Incoming::Violation(why)) => {
                        violations += 1;
                        self.emitter.reject("protocol", vec![violation("stdout", &why)]).await;
                        if violations > limits.max_violations {
                            let max = limits.max_violations;
                            return RunEnd::Failed(format!("more than {max} contract or protocol violations; last: {why}"));
                        }
                    }
                },
            }
        }
    }
}

/// A closed connection usually means the process is dying: report how it ended (exit code,
/// signal) rather than the symptom, unless it is still alive after a second.
async fn exit_or(child: &mut tokio::process::Child, symptom: &str) -> RunEnd {
    match tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
        Ok(status) => RunEnd::Failed(format!("exited: {}", describe_exit(status))),
        Err(_) => RunEnd::Failed(symptom.to_owned()),
    }
}

/// Awaits the future in `slot`, or never when there is none.
async fn pending_or<F: std::future::Future + Unpin>(slot: &mut Option<F>) -> F::Output {
    match slot {
        Some(future) => future.await,
        None => std::future::pending().await,
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

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max { text.to_owned() } else { format!("{}…", &text[..text.floor_char_boundary(max)]) }
}

/// Names the signals a contained plugin typically dies of.
fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGABRT => "SIGABRT (aborted)",
        libc::SIGKILL => "SIGKILL (killed, e.g. by the host or the kernel's memory limit)",
        libc::SIGSEGV => "SIGSEGV (invalid memory access)",
        libc::SIGXCPU => "SIGXCPU (CPU time limit reached)",
        libc::SIGXFSZ => "SIGXFSZ (file size limit reached)",
        libc::SIGTERM => "SIGTERM",
        _ => "",
    }
}

/// Describes how a plugin process ended.
pub fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal} {}", signal_name(signal)).trim_end().to_owned(),
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
