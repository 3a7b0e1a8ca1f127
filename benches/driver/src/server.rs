//! One `tessera serve` under test: the real binary, in a throwaway data directory, on a free
//! loopback port, with the durable defaults (fsync on in the log and in PostgreSQL).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::machine::{self, Rss};
use crate::prom;

/// How long `serve` may take to start (initdb on a loaded machine is slow).
const START_LIMIT: Duration = Duration::from_secs(180);
/// How long `serve` may take to stop after SIGINT (it drains its roles, then stops PostgreSQL).
const STOP_LIMIT: Duration = Duration::from_secs(90);

/// What to run.
pub struct ServeSpec<'a> {
    /// The `tessera` binary.
    pub tessera: &'a Path,
    /// Repository root (working directory; `benches/loadgen` lives there).
    pub repo: &'a Path,
    /// Data directory (created if missing, reused if it exists).
    pub data_dir: &'a Path,
    /// Configuration of the `loadgen` plugin.
    pub loadgen: Value,
}

/// A running `tessera serve`.
pub struct Server {
    child: Option<Child>,
    pid: u32,
    data_dir: PathBuf,
    base: String,
    token: String,
    http: reqwest::Client,
}

/// A free loopback port.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Server {
    /// Starts `serve` with the load generator and waits until it answers `/healthz` and has written
    /// its admin token and database URL. Readiness (`/readyz`) is left to the caller: under
    /// unthrottled load the projector lag keeps the API from reporting ready.
    pub async fn start(spec: ServeSpec<'_>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(spec.data_dir)?;
        // The embedded PostgreSQL runs as the `postgres` user when we are root.
        std::fs::set_permissions(spec.data_dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let port = free_port()?;
        let log_path = spec.data_dir.join("serve.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let mut cmd = Command::new(spec.tessera);
        cmd.current_dir(spec.repo)
            .arg("serve")
            .arg("--data-dir")
            .arg(spec.data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--plugins")
            .arg(spec.repo.join("benches/loadgen"))
            .args(["--plugin-config", &serde_json::json!({ "loadgen": spec.loadgen }).to_string()])
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("cannot run {}", spec.tessera.display()))?;
        let pid = child.id().context("tessera serve exited at once")?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let mut server = Server {
            child: Some(child),
            pid,
            data_dir: spec.data_dir.to_path_buf(),
            base: format!("http://127.0.0.1:{port}"),
            token: String::new(),
            http,
        };
        server.wait_started().await.with_context(|| format!("see {}", log_path.display()))?;
        Ok(server)
    }

    async fn wait_started(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_LIMIT;
        let token_file = self.data_dir.join("admin.token");
        loop {
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                bail!("tessera serve exited early with {status}");
            }
            if let Ok(token) = std::fs::read_to_string(&token_file)
                && self.data_dir.join("database.url").is_file()
                && let Ok(r) = self.http.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                self.token = token.trim().to_owned();
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("tessera serve did not start within {START_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `/readyz` answers 200 (database, change listener, projector caught up).
    pub async fn wait_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("tessera serve did not become ready within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The admin token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `ws://127.0.0.1:<port>/graphql`.
    pub fn graphql_ws(&self) -> String {
        format!("{}/graphql", self.base.replace("http://", "ws://"))
    }

    /// The URL of the embedded PostgreSQL, written by `serve` while it runs.
    pub fn database_url(&self) -> anyhow::Result<String> {
        let file = self.data_dir.join("database.url");
        Ok(std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?.trim().to_owned())
    }

    /// The current and peak resident memory of the `serve` process.
    pub fn memory(&self) -> anyhow::Result<Rss> {
        machine::rss(self.pid).context("tessera serve is gone")
    }

    /// Reads `/metrics` and sums the series of `name` (optionally only those with a label value).
    pub async fn metric(&self, name: &str, label: Option<(&str, &str)>) -> anyhow::Result<f64> {
        let text = self.metrics_text().await?;
        Ok(prom::sum(&text, name, label))
    }

    /// The whole `/metrics` exposition.
    pub async fn metrics_text(&self) -> anyhow::Result<String> {
        let response = self.http.get(format!("{}/metrics", self.base)).bearer_auth(&self.token).send().await?;
        if !response.status().is_success() {
            bail!("/metrics answered {}", response.status());
        }
        Ok(response.text().await?)
    }

    /// Stops `serve` as Ctrl-C would, and waits for it (and its PostgreSQL) to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.pid as i32, libc::SIGINT) };
        match tokio::time::timeout(STOP_LIMIT, child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    tracing::warn!(%status, "tessera serve exited unsuccessfully");
                }
                Ok(())
            }
            Err(_) => {
                let _ = child.kill().await;
                bail!("tessera serve did not stop within {STOP_LIMIT:?}; killed it")
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // Not stopped explicitly (an error path): ask for a clean stop so that the embedded
            // PostgreSQL goes too, and give it a moment before kill_on_drop applies.
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(self.pid as i32, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
