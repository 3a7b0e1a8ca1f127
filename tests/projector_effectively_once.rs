//! The projector's effectively-once guarantee, proven by force.
//!
//! A long, realistic `device-events` run (devices appearing, state reports, availability flips,
//! removals, firmware updates, action lifecycles, and runs of events re-emitted by a mapper that
//! crashed before committing) is written to an embedded log. Then:
//!
//! - `tessera run projector` runs as its own OS process and is SIGKILLed at many random points,
//!   restarted each time, until it has caught up;
//! - two projectors run against the same partition at the same time.
//!
//! Each time the projection must equal, table by table and row by row, a fresh `rebuild` into
//! another database; every committed batch must cover a range of offsets no other batch covered
//! (triggers record every committed offset move and every attempted row write, so a batch applied
//! twice would show even where idempotent writes hide it); and the tables must hold exactly what an
//! independent fold of the generated events expects.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tessera_codec::messages::Codec;
use tessera_codec::{PluginLifecycle, SchemaRegistry, Topics};
use tessera_embedded_postgres::{EmbeddedPostgres, PgOptions};
use tessera_log::{EmbeddedLog, EmbeddedOptions, Log, NewRecord};
use tessera_model::{ActionOutcome, DeviceEvent, DeviceMetadata, EventBody, StateEntry, StateValue};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// A small deterministic generator (splitmix64): the run is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn float(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((lo + unit * (hi - lo)) * 100.0).round() / 100.0
    }
}

/// A kind of simulated device: its class, capabilities and actions.
struct Profile {
    class: &'static str,
    capabilities: &'static [&'static str],
    actions: &'static [&'static str],
}

const PROFILES: &[Profile] = &[
    Profile { class: "climate_sensor", capabilities: &["battery", "humidity", "temperature"], actions: &[] },
    Profile {
        class: "light",
        capabilities: &["brightness", "switch"],
        actions: &["set_brightness", "toggle", "turn_off", "turn_on"],
    },
    Profile { class: "power_meter", capabilities: &["energy", "power", "voltage"], actions: &[] },
    Profile { class: "contact_sensor", capabilities: &["battery", "contact"], actions: &[] },
];

const PLUGINS: &[&str] = &["zigbee", "modbus", "cloud"];

struct SimDevice {
    plugin: &'static str,
    external: String,
    profile: &'static Profile,
    firmware: u32,
    clock_ms: i64,
    energy: f64,
}

impl SimDevice {
    fn id(&self) -> String {
        format!("{}:{}", self.plugin, self.external)
    }

    fn event(&self, event_id: String, body: EventBody) -> DeviceEvent {
        DeviceEvent {
            event_id,
            device_id: self.id(),
            plugin_id: self.plugin.to_owned(),
            external_id: self.external.clone(),
            observed_at_ms: self.clock_ms,
            body,
        }
    }

    fn metadata(&self) -> DeviceMetadata {
        DeviceMetadata {
            name: format!("{} {}", self.profile.class, self.external),
            device_class: self.profile.class.to_owned(),
            manufacturer: Some(format!("{}-works", self.plugin)),
            model: Some(format!("M{}", self.external.len())),
            firmware: Some(format!("1.{}", self.firmware)),
            capabilities: self.profile.capabilities.iter().map(|c| (*c).to_owned()).collect(),
            actions: self.profile.actions.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    fn value(&mut self, capability: &str, rng: &mut Rng) -> StateValue {
        match capability {
            "switch" | "contact" => StateValue::Bool(rng.chance(50)),
            "brightness" => StateValue::Float(rng.below(101) as f64),
            "battery" => StateValue::Float(rng.below(101) as f64),
            "temperature" => StateValue::Float(rng.float(-10.0, 35.0)),
            "humidity" => StateValue::Float(rng.float(10.0, 95.0)),
            "voltage" => StateValue::Float(rng.float(225.0, 240.0)),
            "power" => StateValue::Float(rng.float(0.0, 3500.0)),
            "energy" => {
                self.energy += rng.float(0.0, 0.5);
                StateValue::Float((self.energy * 100.0).round() / 100.0)
            }
            _ => StateValue::Text("?".into()),
        }
    }
}

/// What an independent fold of the generated events says the projection must hold.
#[derive(Default)]
struct Expected {
    /// Every state entry written (a re-emitted event counts again: it is a record of its own).
    state_entries: u64,
    /// Distinct history keys (device, capability, observed_at, event id).
    history: HashSet<(String, String, i64, String)>,
    /// Latest value per (device, capability), by offset.
    latest: HashMap<(String, String), Json>,
    /// Upserted events.
    upserts: u64,
    /// Online flag per device.
    online: HashMap<String, bool>,
    /// Removed flag per device.
    removed: HashMap<String, bool>,
    /// Action events.
    action_events: u64,
    /// Last status per action.
    actions: HashMap<String, String>,
    /// Last state per plugin.
    plugins: HashMap<String, String>,
    /// Records of `device-events`.
    events: u64,
    /// Records of `governance`.
    lifecycles: u64,
}

impl Expected {
    fn apply(&mut self, event: &DeviceEvent) {
        self.events += 1;
        let device = event.device_id.clone();
        match &event.body {
            EventBody::Upserted(_) => {
                self.upserts += 1;
                self.online.entry(device.clone()).or_insert(true);
                self.removed.insert(device, false);
            }
            EventBody::StateReported { states } => {
                for s in states {
                    self.state_entries += 1;
                    let key = (device.clone(), s.capability.clone());
                    self.history.insert((key.0.clone(), key.1.clone(), event.observed_at_ms, event.event_id.clone()));
                    self.latest.insert(key, s.value.to_json());
                }
            }
            EventBody::Availability { online } => {
                self.online.insert(device, *online);
            }
            EventBody::Removed => {
                self.removed.insert(device, true);
            }
            EventBody::Action { action_id, outcome, .. } => {
                self.action_events += 1;
                self.actions.insert(action_id.clone(), outcome.as_str().to_owned());
            }
        }
    }
}

/// Generates about `target` device events and a few plugin lifecycle records.
fn generate(seed: u64, target: usize) -> (Vec<DeviceEvent>, Vec<PluginLifecycle>, Expected) {
    let mut rng = Rng(seed);
    let mut expected = Expected::default();
    let mut devices: Vec<SimDevice> = (0..150)
        .map(|i| SimDevice {
            plugin: PLUGINS[i % PLUGINS.len()],
            external: format!("dev-{i:03}"),
            profile: &PROFILES[i % PROFILES.len()],
            firmware: 0,
            clock_ms: 1_760_000_000_000 + i as i64 * 7,
            energy: 0.0,
        })
        .collect();
    let mut events: Vec<DeviceEvent> = Vec::with_capacity(target + 64);
    let mut source_offset = 0u64;
    let mut next_id = |kind: &str| {
        source_offset += 1;
        format!("tessera.raw.sim/0/{source_offset}/{kind}")
    };
    for d in &devices {
        events.push(d.event(next_id("upserted"), EventBody::Upserted(d.metadata())));
    }
    let mut pending_actions: Vec<(usize, String, String, ActionOutcome)> = Vec::new();
    let mut action_seq = 0u64;
    while events.len() < target {
        let i = rng.below(devices.len() as u64) as usize;
        let d = &mut devices[i];
        // Mostly forward in time, sometimes a late observation.
        d.clock_ms += if rng.chance(3) { -(rng.below(5_000) as i64) } else { 500 + rng.below(30_000) as i64 };
        let roll = rng.below(100);
        if roll < 72 {
            let count = 1 + rng.below(d.profile.capabilities.len() as u64) as usize;
            let start = rng.below(d.profile.capabilities.len() as u64) as usize;
            let states: Vec<StateEntry> = (0..count)
                .map(|k| {
                    let capability = d.profile.capabilities[(start + k) % d.profile.capabilities.len()];
                    StateEntry { capability: capability.to_owned(), value: d.value(capability, &mut rng) }
                })
                .collect();
            let event = d.event(next_id("state"), EventBody::StateReported { states });
            events.push(event);
        } else if roll < 80 {
            let online = rng.chance(70);
            events.push(d.event(next_id("availability"), EventBody::Availability { online }));
        } else if roll < 82 {
            d.firmware += 1;
            let metadata = d.metadata();
            events.push(d.event(next_id("upserted"), EventBody::Upserted(metadata)));
        } else if roll < 83 {
            events.push(d.event(next_id("removed"), EventBody::Removed));
            if rng.chance(60) {
                let metadata = d.metadata();
                events.push(d.event(next_id("upserted"), EventBody::Upserted(metadata)));
            }
        } else if roll < 91 && !d.profile.actions.is_empty() {
            action_seq += 1;
            let action_id = format!("act_{action_seq:06}");
            let action = d.profile.actions[rng.below(d.profile.actions.len() as u64) as usize].to_owned();
            let body = EventBody::Action {
                action_id: action_id.clone(),
                action: action.clone(),
                outcome: ActionOutcome::Queued,
                detail: Some("{}".into()),
            };
            events.push(d.event(format!("action/{action_id}/queued"), body));
            pending_actions.push((i, action_id, action, ActionOutcome::Queued));
        } else if roll < 97 && !pending_actions.is_empty() {
            // Advance an open action: queued → sent → succeeded | failed | timed_out.
            let k = rng.below(pending_actions.len() as u64) as usize;
            let (device, action_id, action, outcome) = pending_actions[k].clone();
            let next = match outcome {
                ActionOutcome::Queued => ActionOutcome::Sent,
                _ => match rng.below(10) {
                    0 => ActionOutcome::Failed,
                    1 => ActionOutcome::TimedOut,
                    _ => ActionOutcome::Succeeded,
                },
            };
            let detail = matches!(next, ActionOutcome::Failed).then(|| "device refused".to_owned());
            let body =
                EventBody::Action { action_id: action_id.clone(), action: action.clone(), outcome: next, detail };
            let event = devices[device].event(format!("action/{action_id}/{}", next.as_str()), body);
            events.push(event);
            if next == ActionOutcome::Sent {
                pending_actions[k].3 = next;
            } else {
                pending_actions.swap_remove(k);
            }
        } else if events.len() > 64 {
            // A mapper that crashed before committing its input re-emits what it had written.
            let run = 5 + rng.below(30) as usize;
            let from = events.len() - run;
            let again: Vec<DeviceEvent> = events[from..].to_vec();
            events.extend(again);
        }
    }
    for event in &events {
        expected.apply(event);
    }
    let mut lifecycles = Vec::new();
    for (n, state) in ["validated", "started", "crashed", "started", "crashed", "started"].iter().enumerate() {
        for (p, plugin) in PLUGINS.iter().enumerate() {
            if *state == "crashed" && p == 0 {
                continue;
            }
            lifecycles.push(PluginLifecycle {
                plugin_id: (*plugin).to_owned(),
                version: "1.0.0".into(),
                state: (*state).to_owned(),
                detail: (*state == "crashed").then(|| "exit status 1".to_owned()),
                restarts: n as i32 / 2,
                violations: Vec::new(),
                accepted: (n * 1000 + p) as i64,
                rejected: n as i64,
                at_ms: 1_760_000_000_000 + (n * 10 + p) as i64,
            });
            expected.plugins.insert((*plugin).to_owned(), (*state).to_owned());
            expected.lifecycles += 1;
        }
    }
    (events, lifecycles, expected)
}

/// A temporary directory the embedded PostgreSQL (run as `postgres` when we are root) can enter.
fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Writes the generated records into a fresh embedded log under `dir`, then closes it.
async fn write_log(dir: &Path, events: &[DeviceEvent], lifecycles: &[PluginLifecycle]) {
    let topics = Topics::default();
    let log = Arc::new(EmbeddedLog::open(dir, EmbeddedOptions::default()).await.expect("open log"));
    {
        let dyn_log: Arc<dyn Log> = log.clone();
        let registry = Arc::new(SchemaRegistry::open(dyn_log.clone(), &topics).await.expect("registry"));
        let codec = Codec::open(registry, &topics).await.expect("codec");
        dyn_log.create_topic(&topics.device_events(), 1).await.expect("topic");
        dyn_log.create_topic(&topics.governance(), 1).await.expect("topic");
        for chunk in events.chunks(2000) {
            let records = chunk
                .iter()
                .map(|e| NewRecord {
                    key: Some(e.device_id.clone().into_bytes()),
                    value: codec.encode_event(e).expect("encode event"),
                    timestamp_ms: e.observed_at_ms,
                })
                .collect();
            dyn_log.append(&topics.device_events(), records).await.expect("append events");
        }
        let records = lifecycles
            .iter()
            .map(|l| NewRecord {
                key: Some(l.plugin_id.clone().into_bytes()),
                value: codec.encode_lifecycle(l).expect("encode lifecycle"),
                timestamp_ms: l.at_ms,
            })
            .collect();
        dyn_log.append(&topics.governance(), records).await.expect("append lifecycles");
    }
    log.close().await.expect("close log");
}

/// A throwaway PostgreSQL with one database per name.
struct Databases {
    pg: Option<EmbeddedPostgres>,
    base: String,
}

impl Databases {
    async fn start(dir: &Path, names: &[&str]) -> Databases {
        let pg = EmbeddedPostgres::start(&dir.join("postgres"), &PgOptions { unsafe_no_fsync: true })
            .await
            .expect("start PostgreSQL");
        let base = pg.url().trim_end_matches("/postgres").to_owned();
        let admin = PgPool::connect(pg.url()).await.expect("connect");
        for name in names {
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("create database");
        }
        admin.close().await;
        Databases { pg: Some(pg), base }
    }

    fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    async fn pool(&self, name: &str, application: &str) -> PgPool {
        let options = PgConnectOptions::from_str(&self.url(name)).expect("url").application_name(application);
        PgPoolOptions::new().max_connections(4).connect_with(options).await.expect("connect")
    }

    async fn stop(mut self) {
        if let Some(pg) = self.pg.take() {
            pg.stop().await;
        }
    }
}

/// Creates the live projection schema and the triggers that record, in the same transaction as the
/// projector's own writes, every committed offset move and every attempted row write.
async fn instrument(pool: &PgPool) {
    tessera_projector::ensure_schema(pool, tessera_projector::LIVE_SCHEMA).await.expect("projection schema");
    let ddl = "
        CREATE TABLE public.offset_moves (
            topic text NOT NULL, writer text NOT NULL, old_next bigint NOT NULL, new_next bigint NOT NULL
        );
        CREATE TABLE public.write_attempts (tbl text NOT NULL);
        CREATE FUNCTION public.record_move() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO public.offset_moves VALUES (NEW.topic, current_setting('application_name'), OLD.next_offset, NEW.next_offset);
            RETURN NEW;
        END $$;
        CREATE FUNCTION public.record_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO public.write_attempts VALUES (TG_TABLE_NAME);
            RETURN NEW;
        END $$;
        CREATE TRIGGER record_move AFTER UPDATE ON projection.consumer_offsets
            FOR EACH ROW EXECUTE FUNCTION public.record_move();
        CREATE TRIGGER record_attempt BEFORE INSERT ON projection.state_history
            FOR EACH ROW EXECUTE FUNCTION public.record_attempt();
        CREATE TRIGGER record_attempt BEFORE INSERT ON projection.devices
            FOR EACH ROW EXECUTE FUNCTION public.record_attempt();
        CREATE TRIGGER record_attempt BEFORE INSERT ON projection.actions
            FOR EACH ROW EXECUTE FUNCTION public.record_attempt();
        CREATE TRIGGER record_attempt BEFORE INSERT ON projection.plugins
            FOR EACH ROW EXECUTE FUNCTION public.record_attempt();
    ";
    sqlx::Executor::execute(pool, ddl).await.expect("instrumentation");
}

/// The stored offset of a topic's partition 0 (0 when none is stored yet).
async fn stored(pool: &PgPool, topic: &str) -> u64 {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT next_offset FROM projection.consumer_offsets WHERE topic = $1 AND partition = 0")
            .bind(topic)
            .fetch_optional(pool)
            .await
            .expect("read stored offset");
    row.map_or(0, |(o,)| o as u64)
}

/// Every row of every table of the `projection` schema, as canonical JSON text, in order.
/// The table list comes from the catalog, so a table added later is compared too.
async fn dump(pool: &PgPool) -> BTreeMap<String, Vec<String>> {
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'projection' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("list tables");
    assert!(tables.len() >= 6, "projection tables: {tables:?}");
    let mut out = BTreeMap::new();
    for (table,) in tables {
        let rows: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT to_jsonb(t)::text FROM projection.{table} t ORDER BY 1"))
                .fetch_all(pool)
                .await
                .expect("dump table");
        out.insert(table, rows.into_iter().map(|(r,)| r).collect());
    }
    out
}

/// Asserts two dumps are identical, naming the first difference.
fn assert_same(live: &BTreeMap<String, Vec<String>>, rebuilt: &BTreeMap<String, Vec<String>>) {
    assert_eq!(live.keys().collect::<Vec<_>>(), rebuilt.keys().collect::<Vec<_>>(), "table sets differ");
    for (table, rows) in live {
        let other = &rebuilt[table];
        if let Some(i) = rows.iter().zip(other).position(|(a, b)| a != b) {
            panic!("table {table} differs at row {i}:\n  live:    {}\n  rebuilt: {}", rows[i], other[i]);
        }
        assert_eq!(rows.len(), other.len(), "table {table}: live has {} rows, rebuilt {}", rows.len(), other.len());
    }
}

/// Checks the projection against the independent fold of the events.
async fn assert_expected(pool: &PgPool, expected: &Expected) {
    let history: Vec<(String, String, i64, String)> = sqlx::query_as(
        "SELECT device_id, capability, (extract(epoch FROM observed_at) * 1000)::bigint, event_id FROM projection.state_history",
    )
    .fetch_all(pool)
    .await
    .expect("history");
    assert_eq!(history.len(), expected.history.len(), "state_history rows");
    let history: HashSet<_> = history.into_iter().collect();
    assert!(history == expected.history, "state_history holds other rows than the events imply");

    let latest: Vec<(String, String, Json)> =
        sqlx::query_as("SELECT device_id, capability, value FROM projection.device_state")
            .fetch_all(pool)
            .await
            .expect("state");
    assert_eq!(latest.len(), expected.latest.len(), "device_state rows");
    for (device, capability, value) in latest {
        let want = &expected.latest[&(device.clone(), capability.clone())];
        assert_eq!(&value, want, "latest {device}/{capability}");
    }

    let devices: Vec<(String, bool, bool)> =
        sqlx::query_as("SELECT id, online, removed FROM projection.devices").fetch_all(pool).await.expect("devices");
    assert_eq!(devices.len(), expected.removed.len(), "devices rows");
    for (id, online, removed) in devices {
        assert_eq!(online, expected.online[&id], "online of {id}");
        assert_eq!(removed, expected.removed[&id], "removed of {id}");
    }

    let actions: Vec<(String, String)> =
        sqlx::query_as("SELECT action_id, status FROM projection.actions").fetch_all(pool).await.expect("actions");
    assert_eq!(actions.len(), expected.actions.len(), "actions rows");
    for (id, status) in actions {
        assert_eq!(status, expected.actions[&id], "status of {id}");
    }

    let plugins: Vec<(String, String)> =
        sqlx::query_as("SELECT id, state FROM projection.plugins").fetch_all(pool).await.expect("plugins");
    assert_eq!(plugins.into_iter().collect::<HashMap<_, _>>(), expected.plugins, "plugins");
}

/// Asserts the committed batches tile `[0, end)` of each topic with no overlap and no gap, and that
/// every row write was attempted exactly once per record: nothing was applied twice.
async fn assert_applied_once(pool: &PgPool, expected: &Expected) -> HashSet<String> {
    let topics = Topics::default();
    let mut writers = HashSet::new();
    for (topic, end) in [(topics.device_events(), expected.events), (topics.governance(), expected.lifecycles)] {
        let moves: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT writer, old_next, new_next FROM public.offset_moves WHERE topic = $1 ORDER BY old_next, new_next",
        )
        .bind(&topic)
        .fetch_all(pool)
        .await
        .expect("offset moves");
        let mut at = 0i64;
        for (writer, old, new) in &moves {
            assert_eq!(*old, at, "{topic}: a committed batch started at {old}, expected {at} (moves: {moves:?})");
            assert!(new > old, "{topic}: a committed batch did not advance ({old} -> {new})");
            at = *new;
            writers.insert(writer.clone());
        }
        assert_eq!(at as u64, end, "{topic}: committed batches end at {at}, the partition at {end}");
    }
    let attempts: Vec<(String, i64)> = sqlx::query_as("SELECT tbl, count(*) FROM public.write_attempts GROUP BY tbl")
        .fetch_all(pool)
        .await
        .expect("attempts");
    let attempts: HashMap<String, i64> = attempts.into_iter().collect();
    let count = |t: &str| attempts.get(t).copied().unwrap_or(0) as u64;
    assert_eq!(count("state_history"), expected.state_entries, "state_history writes attempted");
    assert_eq!(count("devices"), expected.upserts, "device upserts attempted");
    assert_eq!(count("actions"), expected.action_events, "action writes attempted");
    assert_eq!(count("plugins"), expected.lifecycles, "plugin writes attempted");
    writers
}

fn spawn_projector(log_dir: &Path, database_url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["run", "projector", "--log-url"])
        .arg(format!("embedded:{}", log_dir.display()))
        .args(["--database-url", database_url])
        .env("RUST_LOG", "warn,sqlx=error")
        .env("PGAPPNAME", "projector-process")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tessera run projector")
}

fn seed() -> u64 {
    std::env::var("TESSERA_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x07E5_5E8A)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_at_random_points_projects_exactly_what_a_rebuild_does() {
    let seed = seed();
    eprintln!("seed {seed} (set TESSERA_TEST_SEED to replay)");
    let (events, lifecycles, expected) = generate(seed, 60_000);
    let dir = temp_dir("tessera-projector-kill-");
    let log_dir: PathBuf = dir.path().join("log");
    write_log(&log_dir, &events, &lifecycles).await;
    let dbs = Databases::start(dir.path(), &["live", "rebuilt"]).await;
    let live = dbs.pool("live", "observer").await;
    instrument(&live).await;

    let topic = Topics::default().device_events();
    let end = expected.events;
    let mut rng = Rng(seed ^ 0x5EED);
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut kill_points: Vec<u64> = Vec::new();
    let mut kills = 0;
    const MAX_KILLS: usize = 60;
    loop {
        assert!(Instant::now() < deadline, "the projector did not catch up in time (kills at {kill_points:?})");
        let mut child = spawn_projector(&log_dir, &dbs.url("live"));
        if kills < MAX_KILLS && stored(&live, &topic).await < end {
            tokio::time::sleep(Duration::from_millis(50 + rng.below(650))).await;
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the projector exited by itself with {status}");
            }
            child.start_kill().expect("SIGKILL");
            let _ = child.wait().await;
            kills += 1;
            let at = stored(&live, &topic).await;
            if at > 0 && at < end {
                kill_points.push(at);
            }
            continue;
        }
        // Left alone, it catches up; then it is stopped for good.
        while stored(&live, &topic).await < end
            || stored(&live, &Topics::default().governance()).await < expected.lifecycles
        {
            assert!(Instant::now() < deadline, "the projector did not catch up in time");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the projector exited by itself with {status}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        child.start_kill().expect("SIGKILL");
        let _ = child.wait().await;
        break;
    }
    eprintln!("{kills} kills, {} with the run part-way, stored offsets then: {kill_points:?}", kill_points.len());
    let distinct: HashSet<u64> = kill_points.iter().copied().collect();
    assert!(distinct.len() >= 5, "too few kills landed part-way through the run: {kill_points:?}");

    // Nothing doubled, nothing lost.
    let writers = assert_applied_once(&live, &expected).await;
    assert_eq!(writers, HashSet::from(["projector-process".to_owned()]));
    assert_expected(&live, &expected).await;

    // A fresh rebuild from offset 0 into another database yields the same tables.
    let status = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["projector", "rebuild", "--data-dir"])
        .arg(dir.path())
        .args(["--database-url", &dbs.url("rebuilt")])
        .env("RUST_LOG", "warn,sqlx=error")
        .stdout(Stdio::null())
        .status()
        .await
        .expect("run tessera projector rebuild");
    assert!(status.success(), "rebuild failed: {status}");
    let rebuilt = dbs.pool("rebuilt", "observer").await;
    assert_same(&dump(&live).await, &dump(&rebuilt).await);
    assert_expected(&rebuilt, &expected).await;

    live.close().await;
    rebuilt.close().await;
    dbs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projectors_on_one_partition_never_apply_a_record_twice() {
    let seed = seed() ^ 0xF3AC;
    let (events, lifecycles, expected) = generate(seed, 60_000);
    let dir = temp_dir("tessera-projector-fence-");
    let log_dir = dir.path().join("log");
    write_log(&log_dir, &events, &lifecycles).await;
    let dbs = Databases::start(dir.path(), &["live", "rebuilt"]).await;
    let observer = dbs.pool("live", "observer").await;
    instrument(&observer).await;

    // The embedded log admits one process, so both projectors share this process's handle; each
    // has its own database connections, which is where the fence is.
    let topics = Topics::default();
    let log: Arc<dyn Log> = tessera_log::open(&format!("embedded:{}", log_dir.display())).await.expect("open log");
    let registry = Arc::new(SchemaRegistry::open(log.clone(), &topics).await.expect("registry"));
    let codec = Arc::new(Codec::open(registry, &topics).await.expect("codec"));
    let shutdown = CancellationToken::new();
    let mut projectors = Vec::new();
    for name in ["projector-a", "projector-b"] {
        let pool = dbs.pool("live", name).await;
        let config = tessera_projector::ProjectorConfig::live(topics.clone());
        projectors.push(tokio::spawn(tessera_projector::run(
            config,
            log.clone(),
            codec.clone(),
            pool,
            shutdown.clone(),
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    while stored(&observer, &topics.device_events()).await < expected.events
        || stored(&observer, &topics.governance()).await < expected.lifecycles
    {
        assert!(Instant::now() < deadline, "the projectors did not catch up in time");
        assert!(projectors.iter().all(|p| !p.is_finished()), "a projector stopped early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    for p in projectors {
        p.await.expect("projector task").expect("projector result");
    }

    let writers = assert_applied_once(&observer, &expected).await;
    assert_eq!(
        writers,
        HashSet::from(["projector-a".to_owned(), "projector-b".to_owned()]),
        "both projectors should have committed batches (else the race was not exercised)"
    );
    assert_expected(&observer, &expected).await;

    let rebuilt = dbs.pool("rebuilt", "rebuild").await;
    let report = tessera_projector::rebuild(topics, log, codec, rebuilt.clone()).await.expect("rebuild");
    assert_eq!(report.records, expected.events + expected.lifecycles);
    assert_same(&dump(&observer).await, &dump(&rebuilt).await);
    observer.close().await;
    rebuilt.close().await;
    dbs.stop().await;
}
