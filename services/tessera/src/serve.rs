//! `tessera serve`: every role in one process, on the embedded log and (unless a database URL is
//! given) an embedded PostgreSQL under the data directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use tessera_api::auth::{Scope, authenticate, create_token};
use tessera_codec::Topics;
use tessera_embedded_postgres::{EmbeddedPostgres, PgOptions};
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::roles::{self, Components};
use crate::{database, telemetry};

/// Where the demo simulator package is: beside the working directory, else beside the sources
/// this binary was built from.
fn demo_package() -> Option<PathBuf> {
    let candidates =
        [PathBuf::from("plugins/simulator"), Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/simulator")];
    candidates.into_iter().find(|p| p.join("plugin.toml").is_file())
}

/// Expands the `--plugins` arguments: a package directory stays, a directory of packages becomes
/// its package subdirectories.
pub fn expand_packages(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        // Absolute paths: plugins run with their package as working directory.
        let path = &path.canonicalize().unwrap_or_else(|_| path.clone());
        if path.join("plugin.toml").is_file() {
            out.push(path.clone());
        } else if let Ok(entries) = std::fs::read_dir(path) {
            let mut found: Vec<PathBuf> =
                entries.flatten().map(|e| e.path()).filter(|p| p.join("plugin.toml").is_file()).collect();
            found.sort();
            out.extend(found);
        }
    }
    out
}

/// Makes sure `<data-dir>/admin.token` holds a valid admin token and returns it.
async fn admin_token(pool: &PgPool, data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("admin.token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if matches!(authenticate(pool, &existing).await, Ok(Some(p)) if p.allows(Scope::Admin)) {
            return Ok(existing);
        }
    }
    let token = create_token(pool, "admin", Scope::Admin).await.context("cannot create the admin token")?;
    std::fs::write(&path, format!("{}\n", token.secret)).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(token.secret)
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs `serve` until a shutdown signal.
pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let data_dir = &args.data.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;
    let metrics = telemetry::init_metrics();
    let topics = Topics::new(&args.data.topic_prefix);

    // Plugins run as another user; the log is for the host only.
    let log_dir = data_dir.join("log");
    std::fs::create_dir_all(&log_dir)?;
    std::fs::set_permissions(&log_dir, std::fs::Permissions::from_mode(0o700))?;
    let log = tessera_log::open(&format!("embedded:{}", log_dir.display()))
        .await
        .context("cannot open the embedded log (is another `tessera serve` using this data directory?)")?;
    let (postgres, url) = match &args.data.database_url {
        Some(url) => (None, url.clone()),
        None => {
            let options = PgOptions { unsafe_no_fsync: args.unsafe_fast_database };
            let pg = EmbeddedPostgres::start(&data_dir.join("postgres"), &options)
                .await
                .context("cannot start the embedded PostgreSQL")?;
            let url = pg.url().to_owned();
            let url_file = data_dir.join("database.url");
            std::fs::write(&url_file, &url)?;
            std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600))?;
            (Some(pg), url)
        }
    };
    let result = run_all(&args, &data_dir, topics, log.clone(), &url, metrics).await;
    if let Some(pg) = postgres {
        pg.stop().await;
        let _ = std::fs::remove_file(data_dir.join("database.url"));
    }
    result
}

async fn run_all(
    args: &ServeArgs,
    data_dir: &Path,
    topics: Topics,
    log: Arc<dyn tessera_log::Log>,
    url: &str,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<ExitCode> {
    let pool = database::connect(url).await?;
    database::migrate(&pool).await?;
    let token = admin_token(&pool, data_dir).await?;

    let mut plugin_paths = if args.plugins.is_empty() { vec![data_dir.join("plugins")] } else { args.plugins.clone() };
    if args.demo {
        plugin_paths.push(demo_package().context("--demo: the simulator package (plugins/simulator) was not found")?);
    }
    let packages = expand_packages(&plugin_paths);
    let plugin_config = roles::parse_plugin_config(args.plugin_config.as_deref())?;

    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let components = Components {
        topics,
        log,
        pool,
        metrics,
        packages: packages.clone(),
        plugin_config,
        secrets: roles::read_secrets(args.plugin_secrets.as_deref())?,
        state_dir: data_dir.join("plugin-state"),
    };
    let tasks = roles::spawn_all(components, listener, shutdown.clone()).await?;

    println!("Tessera is running.");
    println!("  dashboard:   http://{address}/?token={token}");
    println!("  GraphQL:     http://{address}/graphql  (Authorization: Bearer <token>)");
    println!("  admin token: {}", data_dir.join("admin.token").display());
    println!(
        "  plugins:     {}",
        if packages.is_empty() {
            "none (use --demo or --plugins DIR)".to_owned()
        } else {
            packages.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        }
    );
    println!("Press Ctrl-C to stop.");

    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down"),
        _ = shutdown.cancelled() => tracing::error!("a role stopped; shutting down"),
    }
    shutdown.cancel();
    roles::join_all(tasks, Duration::from_secs(20)).await;
    Ok(ExitCode::SUCCESS)
}
