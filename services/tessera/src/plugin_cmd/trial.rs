//! `tessera plugin test DIR`: the real plugin, in its real sandbox, supervised by the real
//! plugin-host and mapped by the real mapper, all on an embedded log in a throwaway directory, so
//! that nothing touches a running installation. It walks the whole lifecycle (initialize,
//! discover, observe for a while, map), dry-runs every action each discovered device supports,
//! and reports the devices and UI the plugin would publish and every violation seen on the way.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value as Json, json};
use tessera_codec::messages::Codec;
use tessera_codec::registry::now_ms;
use tessera_codec::{ActionCommand, Topics};
use tessera_log::{Log, NewRecord};
use tessera_model::catalog::{ActionParam, ValueType};
use tessera_model::package::Package;
use tessera_model::surface::PluginSurfaces;
use tessera_model::ui::UiSchema;
use tessera_model::{ActionOutcome, Catalog, DeviceMetadata, EventBody, Violation, device_id};
use tokio_util::sync::CancellationToken;

/// What to test and how long to watch.
#[derive(Debug, Clone)]
pub struct Options {
    /// Package directory.
    pub dir: PathBuf,
    /// How long to collect observations once the plugin runs.
    pub observe_for: Duration,
    /// Configuration merged over the manifest defaults.
    pub config: Option<Json>,
}

/// One problem seen while testing.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Where it was seen: `check`, `lifecycle`, a `dlq` stage (`contract`, `protocol`, `quota`,
    /// `mapping`, `decode`, ...) or `action`.
    pub stage: String,
    /// Machine-readable code.
    pub code: String,
    /// Path into the package, the observation or the device.
    pub path: String,
    /// What went wrong (the first occurrence).
    pub message: String,
    /// How often it was seen.
    pub count: u64,
}

/// Merges repeated findings (a plugin may emit the same bad record thousands of times).
fn dedup(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for f in findings {
        match out.iter_mut().find(|o| o.stage == f.stage && o.code == f.code && o.path == f.path) {
            Some(existing) => existing.count += f.count,
            None => out.push(f),
        }
    }
    out
}

/// A device the plugin would publish.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceReport {
    /// Unified device id.
    pub id: String,
    /// Metadata as mapped.
    pub metadata: DeviceMetadata,
    /// Availability.
    pub online: Option<bool>,
    /// Latest value of each capability.
    pub states: BTreeMap<String, Json>,
    /// The UI schema frontends would render.
    pub ui: UiSchema,
}

/// The dry run of one action.
#[derive(Debug, Clone, Serialize)]
pub struct ActionReport {
    /// Target device.
    pub device_id: String,
    /// Action.
    pub action: String,
    /// Parameters sent.
    pub params: Json,
    /// Final outcome (`succeeded`, `failed`, `timed_out`, `expired`, or `no_answer`).
    pub outcome: String,
    /// The plugin's detail or error.
    pub detail: Option<String>,
}

/// Everything `plugin test` saw.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Plugin id, when the manifest is readable.
    pub plugin_id: Option<String>,
    /// Lifecycle states in order, repeated states collapsed.
    pub lifecycle: Vec<String>,
    /// Observations the host accepted.
    pub observations: usize,
    /// Devices it would publish.
    pub devices: Vec<DeviceReport>,
    /// Dry-run actions.
    pub actions: Vec<ActionReport>,
    /// Every violation seen.
    pub violations: Vec<Finding>,
}

impl Report {
    fn rejected(violations: Vec<Violation>) -> Self {
        let violations = violations
            .into_iter()
            .map(|v| Finding { stage: "check".into(), code: v.code, path: v.path, message: v.message, count: 1 })
            .collect();
        Self {
            plugin_id: None,
            lifecycle: Vec::new(),
            observations: 0,
            devices: Vec::new(),
            actions: Vec::new(),
            violations,
        }
    }
}

/// States after which the plugin is not coming back on its own.
const FAILED: &[&str] = &["backing_off", "quarantined", "rejected", "stopped"];

async fn read_topic(log: &Arc<dyn Log>, topic: &str) -> Vec<tessera_log::Record> {
    tessera_log::read_all(log.as_ref(), topic, 0).await.unwrap_or_default()
}

async fn lifecycle(log: &Arc<dyn Log>, codec: &Codec, topics: &Topics) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for record in read_topic(log, &topics.governance()).await {
        if let Ok(l) = codec.decode_lifecycle(&record.value).await {
            out.push((l.state, l.detail));
        }
    }
    out
}

/// Waits until the plugin runs (`Ok`) or fails (`Err` with why), at most until `deadline`.
async fn wait_running(log: &Arc<dyn Log>, codec: &Codec, topics: &Topics, deadline: Instant) -> Result<(), String> {
    loop {
        let states = lifecycle(log, codec, topics).await;
        if let Some((state, detail)) = states.iter().rev().find(|(s, _)| s == "running" || FAILED.contains(&s.as_str()))
        {
            return if state == "running" { Ok(()) } else { Err(detail.clone().unwrap_or_else(|| state.clone())) };
        }
        if Instant::now() > deadline {
            return Err("the plugin did not reach `running` in time".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A valid value for a parameter, inside the plugin's constraint when it has one.
fn sample(param: &ActionParam, range: Option<tessera_model::actions::ParamRange>) -> Json {
    match param.value_type {
        ValueType::Float | ValueType::Int => {
            let min = range.and_then(|r| r.min).or(param.min);
            let max = range.and_then(|r| r.max).or(param.max);
            let value = match (min, max) {
                (Some(a), Some(b)) => (a + b) / 2.0,
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => 0.0,
            };
            if param.value_type == ValueType::Int { json!(value.round() as i64) } else { json!(value) }
        }
        ValueType::Bool => json!(true),
        ValueType::Enum => param.values.first().map_or(Json::Null, |v| json!(v)),
        ValueType::String => json!("tessera plugin test"),
        ValueType::Color => json!({"r": 255, "g": 255, "b": 255}),
    }
}

/// What the device events say about one device.
#[derive(Default)]
struct Folded {
    metadata: DeviceMetadata,
    online: Option<bool>,
    states: BTreeMap<String, Json>,
}

struct Devices {
    by_id: BTreeMap<String, Folded>,
    outcomes: BTreeMap<String, (ActionOutcome, Option<String>)>,
}

async fn fold_events(log: &Arc<dyn Log>, codec: &Codec, topics: &Topics) -> Devices {
    let mut out = Devices { by_id: BTreeMap::new(), outcomes: BTreeMap::new() };
    for record in read_topic(log, &topics.device_events()).await {
        let Ok(event) = codec.decode_event(&record.value).await else { continue };
        if let EventBody::Action { action_id, outcome, detail, .. } = event.body {
            out.outcomes.insert(action_id, (outcome, detail));
            continue;
        }
        let entry = out.by_id.entry(event.device_id).or_default();
        match event.body {
            EventBody::Upserted(metadata) => entry.metadata = metadata,
            EventBody::Availability { online } => entry.online = Some(online),
            EventBody::StateReported { states } => {
                for s in states {
                    entry.states.insert(s.capability, serde_json::to_value(&s.value).unwrap_or(Json::Null));
                }
            }
            _ => {}
        }
    }
    out
}

fn terminal(outcome: ActionOutcome) -> bool {
    !matches!(outcome, ActionOutcome::Queued | ActionOutcome::Sent)
}

/// Sends a dry run of every action each device supports; returns (device, action, id, params).
async fn dry_run_actions(
    package: &Package,
    devices: &Devices,
    log: &Arc<dyn Log>,
    codec: &Codec,
    topics: &Topics,
) -> anyhow::Result<Vec<(String, String, String, Json)>> {
    let catalog = Catalog::builtin();
    let id = &package.manifest.id;
    let mut sent = Vec::new();
    for (device, Folded { metadata, .. }) in &devices.by_id {
        let external_id = device.strip_prefix(&format!("{id}:")).unwrap_or(device).to_owned();
        for action in &metadata.actions {
            let Some((_, def)) = catalog.action(action) else { continue };
            let mut params = serde_json::Map::new();
            for p in &def.params {
                let range = package
                    .actions
                    .for_class(&metadata.device_class)
                    .and_then(|c| c.constraints.get(action))
                    .and_then(|c| c.get(&p.name))
                    .copied();
                params.insert(p.name.clone(), sample(p, range));
            }
            let action_id = format!("plugin-test-{}", sent.len() + 1);
            let now = now_ms();
            let command = ActionCommand {
                action_id: action_id.clone(),
                device_id: device_id(id, &external_id),
                plugin_id: id.clone(),
                external_id: external_id.clone(),
                action: action.clone(),
                params_json: Json::Object(params.clone()).to_string(),
                dry_run: true,
                requested_by: "plugin-test".into(),
                requested_at_ms: now,
                expires_at_ms: now + 120_000,
                idempotency_key: None,
            };
            let record = NewRecord {
                key: Some(device.clone().into_bytes()),
                value: codec.encode_command(&command)?,
                timestamp_ms: now,
            };
            log.append(&topics.commands(), vec![record]).await?;
            sent.push((device.clone(), action.clone(), action_id, Json::Object(params)));
        }
    }
    Ok(sent)
}

/// Runs the test; `Err` only when the test itself could not run.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    let dir = options.dir.canonicalize().with_context(|| format!("cannot open {}", options.dir.display()))?;
    let package = match tessera_plugin_host::package::load(&dir)? {
        Ok(package) => package,
        Err(violations) => return Ok(Report::rejected(violations)),
    };
    let id = package.manifest.id.clone();
    let tmp = tempfile::Builder::new().prefix("tessera-plugin-test-").tempdir()?;
    // The plugin may run as an unprivileged user, which must reach its state directory.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
    let topics = Topics::new("tessera.");
    let log = tessera_log::open(&format!("embedded:{}", tmp.path().join("log").display())).await?;
    let codec = crate::roles::open_codec(log.clone(), &topics).await?;
    // Commands written once the plugin runs must be routed: start the router at offset 0.
    log.create_topic(&topics.commands(), 1).await?;
    log.commit("plugin-host", &topics.commands(), 0, 0).await?;

    let shutdown = CancellationToken::new();
    let mut host = tessera_plugin_host::HostConfig::new(vec![dir.clone()], tmp.path().join("state"), topics.clone());
    if let Some(config) = options.config {
        host.plugin_config.insert(id.clone(), config);
    }
    let host_task = tokio::spawn(tessera_plugin_host::run(host, log.clone(), codec.clone(), shutdown.clone()));
    let mapper = tessera_mapper::MapperConfig {
        packages: vec![dir.clone()],
        topics: topics.clone(),
        group: "plugin-test".into(),
    };
    let mapper_task = tokio::spawn(tessera_mapper::run(mapper, log.clone(), codec.clone(), shutdown.clone()));

    let limits = &package.manifest.limits;
    let call_timeout = Duration::from_millis(limits.call_timeout_ms);
    let mut findings = Vec::new();
    let mut sent = Vec::new();
    let started =
        wait_running(&log, &codec, &topics, Instant::now() + call_timeout * 3 + Duration::from_secs(10)).await;
    match started {
        Err(why) => findings.push(Finding {
            stage: "lifecycle".into(),
            code: "lifecycle.not_running".into(),
            path: String::new(),
            message: why,
            count: 1,
        }),
        Ok(()) => {
            tokio::time::sleep(options.observe_for).await;
            let devices = fold_events(&log, &codec, &topics).await;
            sent = dry_run_actions(&package, &devices, &log, &codec, &topics).await?;
            let deadline = Instant::now() + call_timeout + Duration::from_secs(10);
            while Instant::now() < deadline {
                let outcomes = fold_events(&log, &codec, &topics).await.outcomes;
                if sent.iter().all(|(_, _, a, _)| outcomes.get(a).is_some_and(|(o, _)| terminal(*o))) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        let _ = host_task.await;
        let _ = mapper_task.await;
    })
    .await;

    // What the log now holds is the whole story.
    let states = lifecycle(&log, &codec, &topics).await;
    for (state, detail) in &states {
        if matches!(state.as_str(), "backing_off" | "quarantined" | "rejected") {
            findings.push(Finding {
                stage: "lifecycle".into(),
                code: format!("lifecycle.{state}"),
                path: String::new(),
                message: detail.clone().unwrap_or_default(),
                count: 1,
            });
        }
    }
    let mut names: Vec<String> = Vec::new();
    for (state, _) in &states {
        if names.last() != Some(state) {
            names.push(state.clone());
        }
    }
    for record in read_topic(&log, &topics.dlq()).await {
        let Ok(r) = codec.decode_rejection(&record.value).await else { continue };
        for e in r.errors {
            findings.push(Finding {
                stage: r.stage.clone(),
                code: format!("dlq.{}", r.stage),
                path: e.field,
                message: format!("expected {}, found {}", e.expected, e.found),
                count: 1,
            });
        }
    }
    let observations = read_topic(&log, &topics.raw(&id)).await.len();
    let devices = fold_events(&log, &codec, &topics).await;
    let mut actions = Vec::new();
    for (device, action, action_id, params) in sent {
        let (outcome, detail) = match devices.outcomes.get(&action_id) {
            Some((o, d)) if terminal(*o) => (o.as_str().to_owned(), d.clone()),
            _ => ("no_answer".to_owned(), None),
        };
        if outcome != "succeeded" {
            findings.push(Finding {
                stage: "action".into(),
                code: format!("action.{outcome}"),
                path: format!("{device}/{action}"),
                message: detail.clone().unwrap_or_else(|| "a supported action failed its dry run".into()),
                count: 1,
            });
        }
        actions.push(ActionReport { device_id: device, action, params, outcome, detail });
    }
    let surfaces = PluginSurfaces::from_packages([tessera_plugin_host::package::read_files(&dir)?], Catalog::builtin());
    let devices = devices
        .by_id
        .into_iter()
        .map(|(device, f)| {
            let ui = surfaces.ui(Catalog::builtin(), &id, &f.metadata);
            DeviceReport { id: device, metadata: f.metadata, online: f.online, states: f.states, ui }
        })
        .collect();
    Ok(Report { plugin_id: Some(id), lifecycle: names, observations, devices, actions, violations: dedup(findings) })
}
