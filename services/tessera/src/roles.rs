//! Composing the roles: every role in one process (`serve`), or one role alone (`run <role>`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use tessera_codec::messages::Codec;
use tessera_codec::{SchemaRegistry, Topics};
use tessera_log::Log;
use tessera_log::membership::StaticMembership;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::{DataArgs, ProjectorCommand, Role, RunArgs};
use crate::{database, role_http, serve, telemetry};

/// What the roles share in one process.
pub struct Components {
    /// Topic names.
    pub topics: Topics,
    /// The log.
    pub log: Arc<dyn Log>,
    /// The database.
    pub pool: PgPool,
    /// Metrics exposition.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Plugin packages to run and map.
    pub packages: Vec<PathBuf>,
    /// Operator configuration per plugin.
    pub plugin_config: std::collections::BTreeMap<String, serde_json::Value>,
    /// Secrets per plugin.
    pub secrets: Secrets,
    /// Root of the plugins' state directories.
    pub state_dir: PathBuf,
}

/// Secrets per plugin id, by name.
pub type Secrets = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>;

/// Reads a secrets file (`{"<plugin id>": {"<name>": "<value>"}}`); none when no file is given.
pub fn read_secrets(path: Option<&std::path::Path>) -> anyhow::Result<Secrets> {
    let Some(path) = path else { return Ok(Secrets::new()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read secrets file {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON object of objects of strings", path.display()))
}

/// Parses `--plugin-config` (`{"<plugin id>": {"<key>": <value>}}`); empty when not given.
pub fn parse_plugin_config(
    text: Option<&str>,
) -> anyhow::Result<std::collections::BTreeMap<String, serde_json::Value>> {
    let Some(text) = text else { return Ok(Default::default()) };
    serde_json::from_str(text).context("--plugin-config is not a JSON object of objects")
}

/// Opens the schema registry and the codec over `log`.
pub async fn open_codec(log: Arc<dyn Log>, topics: &Topics) -> anyhow::Result<Arc<Codec>> {
    let registry = Arc::new(SchemaRegistry::open(log, topics).await.context("cannot open the schema registry")?);
    Ok(Arc::new(Codec::open(registry, topics).await.context("cannot register the topic schemas")?))
}

/// Runs a role future; when it fails, logs why and stops the whole process.
fn supervise<E: std::fmt::Display>(
    tasks: &mut JoinSet<()>,
    name: &'static str,
    shutdown: CancellationToken,
    role: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
) {
    tasks.spawn(async move {
        if let Err(e) = role.await {
            tracing::error!(role = name, error = %e, "role failed");
            shutdown.cancel();
        }
    });
}

/// Starts every role.
pub async fn spawn_all(
    c: Components,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinSet<()>> {
    let codec = open_codec(c.log.clone(), &c.topics).await?;
    tessera_projector::ensure_schema(&c.pool, tessera_projector::LIVE_SCHEMA)
        .await
        .context("cannot create the projection schema")?;
    let mut tasks = JoinSet::new();

    let mut host = tessera_plugin_host::HostConfig::new(c.packages.clone(), c.state_dir.clone(), c.topics.clone());
    host.plugin_config = c.plugin_config.clone();
    host.secrets = c.secrets.clone();
    supervise(
        &mut tasks,
        "plugin-host",
        shutdown.clone(),
        tessera_plugin_host::run(host, c.log.clone(), codec.clone(), shutdown.clone()),
    );

    let mapper =
        tessera_mapper::MapperConfig { packages: c.packages.clone(), topics: c.topics.clone(), group: "mapper".into() };
    supervise(
        &mut tasks,
        "mapper",
        shutdown.clone(),
        tessera_mapper::run(mapper, c.log.clone(), codec.clone(), shutdown.clone()),
    );

    let projector = tessera_projector::ProjectorConfig::live(c.topics.clone());
    supervise(
        &mut tasks,
        "projector",
        shutdown.clone(),
        tessera_projector::run(projector, c.log.clone(), codec.clone(), c.pool.clone(), shutdown.clone()),
    );

    let mut state = tessera_api::AppState::new(c.pool.clone(), c.log.clone(), codec, c.topics.clone(), c.metrics);
    state.plugins = plugin_surfaces(&c.packages);
    supervise(&mut tasks, "api", shutdown.clone(), tessera_api::serve(listener, state, shutdown.clone()));
    Ok(tasks)
}

/// What the API needs of the plugin packages: their action constraints and UI overrides.
fn plugin_surfaces(packages: &[PathBuf]) -> Arc<tessera_model::surface::PluginSurfaces> {
    let files = packages.iter().filter_map(|dir| tessera_plugin_host::package::read_files(dir).ok());
    Arc::new(tessera_model::surface::PluginSurfaces::from_packages(files, tessera_model::Catalog::builtin()))
}

/// Waits for the roles to stop, at most `limit`.
pub async fn join_all(mut tasks: JoinSet<()>, limit: Duration) {
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(limit, all).await.is_err() {
        tracing::warn!("roles did not stop within {limit:?}; aborting them");
    }
}

/// `tessera run <role>`.
pub async fn run_role(args: RunArgs) -> anyhow::Result<ExitCode> {
    let metrics = telemetry::init_metrics();
    let topics = Topics::new(&args.topic_prefix).with_partitions(args.partitions);
    let log = tessera_log::open(&args.log_url).await.with_context(|| format!("cannot open log {}", args.log_url))?;
    let codec = open_codec(log.clone(), &topics).await?;
    let packages = serve::expand_packages(&args.plugins);
    let shutdown = CancellationToken::new();
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        serve::shutdown_signal().await;
        stopper.cancel();
    });
    let database = || async {
        let url = args.database_url.as_deref().context("this role needs --database-url")?;
        let pool = database::connect(url).await?;
        database::migrate(&pool).await?;
        anyhow::Ok(pool)
    };
    let health = |topic: String, pool: Option<PgPool>| role_http::RoleHealth {
        log: log.clone(),
        topic,
        pool,
        metrics: metrics.clone(),
        metrics_token: std::env::var("TESSERA_METRICS_TOKEN").ok().filter(|t| !t.is_empty()),
    };
    let serve_health = |h: role_http::RoleHealth| {
        let (addr, shutdown) = (args.listen, shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = role_http::serve(addr, h, shutdown).await {
                tracing::error!(error = %e, %addr, "health listener failed");
            }
        });
    };
    match args.role {
        Role::PluginHost => {
            serve_health(health(topics.commands(), None));
            let mut config = tessera_plugin_host::HostConfig::new(packages, args.state_dir.clone(), topics);
            config.secrets = read_secrets(args.plugin_secrets.as_deref())?;
            config.plugin_config = parse_plugin_config(args.plugin_config.as_deref())?;
            tessera_plugin_host::run(config, log, codec, shutdown).await?;
        }
        Role::Mapper => {
            serve_health(health(topics.device_events(), None));
            let config = tessera_mapper::MapperConfig { packages, topics, group: "mapper".into() };
            match args.instance {
                _ if args.group_membership == Some(crate::cli::GroupMembership::Kafka) => {
                    let membership = kafka_membership(&args.log_url, &format!("{}mapper.members", args.topic_prefix))?;
                    tessera_mapper::run_member(config, log, codec, &membership, shutdown).await?;
                }
                Some((index, count)) => {
                    let membership = StaticMembership { index, count };
                    tessera_mapper::run_member(config, log, codec, &membership, shutdown).await?;
                }
                None => tessera_mapper::run(config, log, codec, shutdown).await?,
            }
        }
        Role::Projector => {
            let pool = database().await?;
            serve_health(health(topics.device_events(), Some(pool.clone())));
            let config = tessera_projector::ProjectorConfig::live(topics);
            match args.instance {
                _ if args.group_membership == Some(crate::cli::GroupMembership::Kafka) => {
                    let group = format!("{}projector.members", args.topic_prefix);
                    let membership = kafka_membership(&args.log_url, &group)?;
                    tessera_projector::run_member(config, log, codec, pool, &membership, shutdown).await?;
                }
                Some((index, count)) => {
                    let membership = StaticMembership { index, count };
                    tessera_projector::run_member(config, log, codec, pool, &membership, shutdown).await?;
                }
                None => tessera_projector::run(config, log, codec, pool, shutdown).await?,
            }
        }
        Role::Api => {
            let pool = database().await?;
            tessera_projector::ensure_schema(&pool, tessera_projector::LIVE_SCHEMA).await?;
            let mut state = tessera_api::AppState::new(pool, log, codec, topics, metrics);
            state.plugins = plugin_surfaces(&packages);
            tessera_api::run(args.listen, state, shutdown).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A Kafka consumer-group membership named `group` on the cluster of `log_url`, with the URL's
/// librdkafka properties meant for consumers.
#[cfg(feature = "kafka")]
fn kafka_membership(log_url: &str, group: &str) -> anyhow::Result<tessera_log::KafkaMembership> {
    let opts =
        tessera_log::KafkaOptions::from_url(log_url).context("--group-membership kafka needs a kafka:// log URL")?;
    let config: Vec<(String, String)> = opts
        .client_config
        .iter()
        .filter(|(key, _)| !key.starts_with("producer."))
        .map(|(key, value)| (key.strip_prefix("consumer.").unwrap_or(key).to_owned(), value.clone()))
        .collect();
    Ok(tessera_log::KafkaMembership::new(&opts.bootstrap_servers, group, &config)?)
}

/// Without the Kafka backend there is no Kafka membership.
#[cfg(not(feature = "kafka"))]
fn kafka_membership(_log_url: &str, _group: &str) -> anyhow::Result<StaticMembership> {
    anyhow::bail!("--group-membership kafka needs tessera built with the `kafka` feature")
}

/// Resolves the database URL of a data directory: the flag, else the URL a running `serve` wrote.
pub fn database_url(data: &DataArgs) -> anyhow::Result<String> {
    if let Some(url) = &data.database_url {
        return Ok(url.clone());
    }
    let file = data.data_dir.join("database.url");
    std::fs::read_to_string(&file).map(|s| s.trim().to_owned()).with_context(|| {
        format!("no --database-url given and {} does not exist (is `tessera serve` running?)", file.display())
    })
}

/// `tessera projector ...`.
pub async fn projector_command(cmd: ProjectorCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ProjectorCommand::Rebuild(data) => {
            let topics = Topics::new(&data.topic_prefix);
            let log = tessera_log::open(&format!("embedded:{}", data.data_dir.join("log").display())).await.context(
                "cannot open the embedded log (stop `tessera serve` first: the embedded log has one writer)",
            )?;
            let pool = database::connect(&database_url(&data)?).await?;
            let codec = open_codec(log.clone(), &topics).await?;
            let report = tessera_projector::rebuild(topics, log, codec, pool).await?;
            println!("rebuilt the projection from {} records in {:.1?}", report.records, report.elapsed);
            Ok(ExitCode::SUCCESS)
        }
    }
}
