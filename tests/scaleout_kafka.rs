//! Scale-out on Kafka: every role runs as its own `tessera run <role>` process against a `tansu`
//! broker and an external PostgreSQL: one plugin host (a fast simulator), two mappers sharing the
//! raw partitions and two projectors sharing the device-event and governance partitions, each pair
//! through a Kafka consumer group, and one API. While observations flow, one mapper and one
//! projector are SIGKILLed together. The survivors take over every partition of their role once
//! the dead members' sessions expire, and in the end every raw record became device events
//! (re-deliveries carry the same event id and bytes) and the projection holds exactly one
//! state_history row per (event id, capability) of the log, none missing.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{eventually, free_port, repo_root};
use tessera_codec::messages::Codec;
use tessera_codec::{SchemaRegistry, Topics};
use tessera_embedded_postgres::{EmbeddedPostgres, PgOptions};
use tessera_log::Log;
use tessera_model::EventBody;
use tokio::process::{Child, Command};

const PARTITIONS: u32 = 4;
/// What the projectors divide: the device-event partitions and the one governance partition.
const PROJECTED_PARTITIONS: u32 = PARTITIONS + 1;
const METRICS_TOKEN: &str = "scaleout-metrics";
const WAIT: Duration = Duration::from_secs(90);

/// A role process; SIGKILLed on drop if still running.
struct Role {
    name: String,
    child: Child,
    port: u16,
}

fn spawn(dir: &Path, name: &str, args: &[&str]) -> Role {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("role log file");
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(repo_root())
        .arg("run")
        .args(args)
        .args(["--listen", &listen])
        .env("TESSERA_METRICS_TOKEN", METRICS_TOKEN)
        .env("RUST_LOG", "info,librdkafka=warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log file"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start tessera run");
    Role { name: name.to_owned(), child, port }
}

/// Waits until `role` answers `/healthz`; fails if it exits first.
async fn wait_healthy(http: &reqwest::Client, role: &mut Role) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(Some(status)) = role.child.try_wait() {
            panic!("{} exited early with {status}", role.name);
        }
        let url = format!("http://127.0.0.1:{}/healthz", role.port);
        if http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(Instant::now() < deadline, "{} did not become healthy", role.name);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How many partitions a mapper or projector works on: its `tessera_<role>_partitions_assigned_count`
/// gauge (`None` until it is exported).
async fn owned(http: &reqwest::Client, role: &Role) -> Option<u32> {
    let gauge = format!("tessera_{}_partitions_assigned_count", role.name.split('-').next()?);
    let text = http
        .get(format!("http://127.0.0.1:{}/metrics", role.port))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let line = text.lines().find(|l| l.starts_with(&gauge))?;
    line.split_whitespace().last()?.parse::<f64>().ok().map(|v| v as u32)
}

/// A `tansu` broker with in-memory storage on a free loopback port.
async fn start_tansu(dir: &Path) -> (Child, u16) {
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join("tansu.log")).expect("tansu log file");
    let child = Command::new("tansu")
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
        .args(["--storage-engine", "memory://tansu/"])
        .env("RUST_LOG", "warn,tansu_broker::coordinator=info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log file"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("`tansu` on PATH (scripts/install.d/10-tansu.sh installs it)");
    eventually("tansu listens", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
    })
    .await;
    (child, port)
}

/// The simulator package, copied with fast defaults: 12 devices observed every 50 ms.
fn fast_simulator(dir: &Path) -> std::path::PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    // The simulator finds the Python SDK beside itself.
    for package in ["simulator", "sdk-python"] {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(repo_root().join("plugins").join(package))
            .arg(&plugins)
            .status()
            .expect("cp");
        assert!(status.success());
    }
    let target = plugins.join("simulator");
    let manifest = target.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("plugin.toml");
    let fast = text.replacen("default = 1000", "default = 50", 1).replacen(
        "[config.devices]\ntype = \"int\"\ndefault = 1\n",
        "[config.devices]\ntype = \"int\"\ndefault = 4\n",
        1,
    );
    assert_ne!(fast, text, "the simulator's config defaults changed; update this test");
    std::fs::write(&manifest, fast).expect("write plugin.toml");
    target
}

/// A device event's copies in the log (their encoded bytes), its body and its device.
type Copies = (Vec<Vec<u8>>, EventBody, String);

/// Every device event in the log by event id.
async fn events(log: &dyn Log, codec: &Codec, topics: &Topics) -> BTreeMap<String, Copies> {
    let mut out: BTreeMap<String, Copies> = BTreeMap::new();
    for record in tessera_log::read_all(log, &topics.device_events(), 0).await.expect("read device events") {
        let event = codec.decode_event(&record.value).await.expect("decode event");
        let entry = out
            .entry(event.event_id.clone())
            .or_insert_with(|| (Vec::new(), event.body.clone(), event.device_id.clone()));
        entry.0.push(record.value.clone());
    }
    out
}

/// Every raw record's coordinates, `topic/partition/offset`.
async fn raw_coordinates(log: &dyn Log, topic: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in 0..PARTITIONS {
        for o in 0..log.end_offset(topic, p).await.expect("end offset") {
            out.insert(format!("{topic}/{p}/{o}"));
        }
    }
    out
}

fn coordinates_of(event_id: &str) -> String {
    event_id.rsplit_once('/').map_or(event_id, |(c, _)| c).to_owned()
}

async fn state_rows(pool: &sqlx::PgPool) -> BTreeMap<(String, String), i64> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT event_id, capability, count(*) FROM projection.state_history GROUP BY event_id, capability",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    rows.into_iter().map(|(e, c, n)| ((e, c), n)).collect()
}

fn sigterm(role: &Role) {
    if let Some(pid) = role.child.id() {
        // SAFETY: signalling a child process we started and still own.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_take_over_without_losing_or_doubling() {
    let started = Instant::now();
    // SCALEOUT_KEEP=1 keeps the directory (each role's log is `<role>.log` there) for diagnosis.
    let dir = tempfile::Builder::new()
        .prefix("tessera-scaleout-")
        .disable_cleanup(std::env::var_os("SCALEOUT_KEEP").is_some())
        .tempdir()
        .expect("temp dir");
    eprintln!("role logs in {}", dir.path().display());
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (mut tansu, tansu_port) = start_tansu(dir.path()).await;
    let log_url = format!("kafka://127.0.0.1:{tansu_port}?producer.batch.num.messages=1");
    let pg = EmbeddedPostgres::start(&dir.path().join("postgres"), &PgOptions { unsafe_no_fsync: true })
        .await
        .expect("PostgreSQL");
    let db = pg.url().to_owned();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();

    let topics = Topics::new("tessera.");
    let log = tessera_log::open(&log_url).await.expect("open the Kafka log");
    let raw = topics.raw("simulator");

    let plugin = fast_simulator(dir.path());
    let plugin = plugin.to_str().expect("utf-8 path").to_owned();
    let state_dir = dir.path().join("state");
    let state_dir = state_dir.to_str().expect("utf-8 path");
    // Every role creates the data topics it needs with `--partitions`.
    let partitions = PARTITIONS.to_string();
    let kafka = ["--log-url", log_url.as_str(), "--partitions", partitions.as_str()];
    let mapper_args = [&kafka[..], &["mapper", "--plugins", &plugin, "--group-membership", "kafka"]].concat();
    let projector_args = [&kafka[..], &["projector", "--database-url", &db, "--group-membership", "kafka"]].concat();

    // The API first (it migrates the database), then the projectors one after the other.
    let mut api =
        spawn(dir.path(), "api", &[&kafka[..], &["api", "--database-url", &db, "--plugins", &plugin]].concat());
    wait_healthy(&http, &mut api).await;
    let mut projectors = Vec::new();
    for i in 0..2 {
        let mut p = spawn(dir.path(), &format!("projector-{i}"), &projector_args);
        wait_healthy(&http, &mut p).await;
        projectors.push(p);
    }
    let mut mappers = Vec::new();
    for i in 0..2 {
        let mut m = spawn(dir.path(), &format!("mapper-{i}"), &mapper_args);
        wait_healthy(&http, &mut m).await;
        mappers.push(m);
    }
    let mut host = spawn(
        dir.path(),
        "plugin-host",
        &[&kafka[..], &["plugin-host", "--plugins", &plugin, "--state-dir", state_dir]].concat(),
    );
    wait_healthy(&http, &mut host).await;

    // Each pair divides its role's partitions.
    let split = eventually("both mappers and both projectors own partitions, each pair all of them", WAIT, || async {
        let (a, b) = (owned(&http, &mappers[0]).await?, owned(&http, &mappers[1]).await?);
        let (c, d) = (owned(&http, &projectors[0]).await?, owned(&http, &projectors[1]).await?);
        let divided = a > 0 && b > 0 && a + b == PARTITIONS && c > 0 && d > 0 && c + d == PROJECTED_PARTITIONS;
        divided.then_some([a, b, c, d])
    })
    .await;
    eprintln!(
        "partitions before the kill: mappers {} + {}, projectors {} + {}",
        split[0], split[1], split[2], split[3]
    );

    let pool = sqlx::PgPool::connect(&db).await.expect("connect");
    let before = eventually("observations reach the projection", WAIT, || async {
        let n = state_rows(&pool).await.len();
        (n >= 200).then_some(n)
    })
    .await;

    // Crash one instance of each: no clean leave, no final commit. The group coordinator notices
    // after the session timeout (6 s) and the survivors take over.
    let killed = Instant::now();
    for role in [&mut mappers[1], &mut projectors[0]] {
        role.child.start_kill().expect("SIGKILL");
        role.child.wait().await.expect("reap");
    }
    eprintln!("SIGKILLed mapper-1 and projector-0 with {before} state rows projected");

    // The survivors take over every partition of their role, and projection goes on.
    eventually("the survivors own every partition", WAIT, || async {
        let (mapper, projector) = (owned(&http, &mappers[0]).await?, owned(&http, &projectors[1]).await?);
        (mapper == PARTITIONS && projector == PROJECTED_PARTITIONS).then_some(())
    })
    .await;
    eprintln!("partitions moved to the survivors {:.1?} after the kill", killed.elapsed());
    eventually("projection continues after the kill", WAIT, || async {
        (state_rows(&pool).await.len() >= before + 400).then_some(())
    })
    .await;

    // Stop the load, then wait until everything produced is mapped and projected.
    sigterm(&host);
    tokio::time::timeout(Duration::from_secs(30), host.child.wait()).await.expect("plugin host stops").expect("wait");
    let registry = Arc::new(SchemaRegistry::open(log.clone(), &topics).await.expect("schema registry"));
    let codec = Codec::open(registry, &topics).await.expect("codec");
    let coordinates = raw_coordinates(log.as_ref(), &raw).await;
    assert!(coordinates.len() >= 300, "too little load: {} raw records", coordinates.len());
    let all_events = eventually("every raw record is mapped", WAIT, || async {
        let all = events(log.as_ref(), &codec, &topics).await;
        let mapped: BTreeSet<String> = all.keys().map(|id| coordinates_of(id)).collect();
        coordinates.is_subset(&mapped).then_some(all)
    })
    .await;
    let mut redelivered = 0;
    for (id, (copies, _, _)) in &all_events {
        assert!(copies.iter().all(|c| c == &copies[0]), "event {id} was produced with different contents");
        redelivered += copies.len() - 1;
    }
    let expected: BTreeSet<(String, String)> = all_events
        .iter()
        .flat_map(|(id, (_, body, _))| match body {
            EventBody::StateReported { states } => states.iter().map(|s| (id.clone(), s.capability.clone())).collect(),
            _ => Vec::new(),
        })
        .collect();
    let rows = eventually("the projection holds every reported state", WAIT, || async {
        let rows = state_rows(&pool).await;
        expected.iter().all(|k| rows.contains_key(k)).then_some(rows)
    })
    .await;
    let doubled: Vec<_> = rows.iter().filter(|(_, n)| **n != 1).collect();
    assert!(doubled.is_empty(), "state rows stored more than once: {doubled:?}");
    let unexpected: Vec<_> = rows.keys().filter(|k| !expected.contains(*k)).collect();
    assert!(unexpected.is_empty(), "state rows without an event in the log: {unexpected:?}");
    // The one API serves what the surviving projector wrote: every simulated device, online.
    let token = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["token", "create", "--name", "scaleout", "--scope", "read", "--database-url", &db])
        .output()
        .expect("tessera token create");
    assert!(token.status.success(), "token create: {}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    let devices: BTreeSet<String> = all_events
        .values()
        .filter(|(_, body, _)| matches!(body, EventBody::Upserted(_)))
        .map(|(_, _, device)| device.clone())
        .collect();
    let served: serde_json::Value = http
        .post(format!("http://127.0.0.1:{}/graphql", api.port))
        .bearer_auth(&token)
        .json(&serde_json::json!({"query": "{ devices(first: 100) { edges { node { id online } } } }"}))
        .send()
        .await
        .expect("GraphQL request")
        .json()
        .await
        .expect("GraphQL JSON");
    let served: BTreeSet<String> = served["data"]["devices"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|edge| edge["node"]["id"].as_str().map(str::to_owned))
        .collect();
    assert!(!devices.is_empty() && served == devices, "the API serves {served:?}, the log upserted {devices:?}");

    eprintln!(
        "{} raw records, {} event ids ({redelivered} re-deliveries of the same id), {} state rows, in {:.1?}",
        coordinates.len(),
        all_events.len(),
        rows.len(),
        started.elapsed()
    );

    pool.close().await;
    for role in mappers.iter().chain(&projectors).chain([&api]) {
        sigterm(role);
    }
    for mut role in mappers.into_iter().chain(projectors).chain([api]) {
        let _ = tokio::time::timeout(Duration::from_secs(20), role.child.wait()).await;
    }
    pg.stop().await;
    let _ = tansu.start_kill();
    let _ = tansu.wait().await;
}
