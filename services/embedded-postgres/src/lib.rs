//! A PostgreSQL server that Tessera initializes, starts and stops itself, from the machine's
//! PostgreSQL binaries (found on `PATH` or under `/usr/lib/postgresql/*/bin`).
//!
//! The cluster lives in a directory of ours, listens only on 127.0.0.1 on a free port, has no Unix
//! socket, and authenticates with a generated password (scram-sha-256) kept in a 0600 file beside
//! it. PostgreSQL refuses to run as root, so when we are root the cluster runs as the `postgres`
//! system user. The server runs in its own process group (a terminal's Ctrl-C reaches only us, and
//! we stop it in order) and receives SIGINT (fast shutdown) if we die without stopping it.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// What can go wrong running the embedded PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// No PostgreSQL binaries were found.
    #[error(
        "PostgreSQL binary `{0}` not found on PATH or under /usr/lib/postgresql/*/bin; install PostgreSQL or pass --database-url"
    )]
    BinaryNotFound(String),
    /// We are root and the `postgres` user does not exist.
    #[error("running as root needs the `postgres` system user to run PostgreSQL as, and it does not exist")]
    NoPostgresUser,
    /// The directory is not reachable by the `postgres` user.
    #[error(
        "{0} is not reachable by the `postgres` user (a parent directory lacks o+x); choose another data directory"
    )]
    Unreachable(PathBuf),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `initdb` failed.
    #[error("initdb failed: {0}")]
    Initdb(String),
    /// The server did not become ready.
    #[error("PostgreSQL did not start: {0}")]
    Start(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PgError + '_ {
    move |source| PgError::Io { path: path.to_path_buf(), source }
}

/// Options of the embedded cluster.
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Turn off fsync: only for throwaway clusters in tests.
    pub unsafe_no_fsync: bool,
}

/// A running embedded PostgreSQL.
pub struct EmbeddedPostgres {
    child: Option<Child>,
    url: String,
    data_dir: PathBuf,
}

/// Finds a PostgreSQL binary on PATH, else in the newest `/usr/lib/postgresql/<v>/bin`.
pub fn find_binary(name: &str) -> Result<PathBuf, PgError> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin").join(name))))
        .filter(|(_, p)| p.is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).ok_or_else(|| PgError::BinaryNotFound(name.to_owned()))
}

/// The (uid, gid) to run PostgreSQL as: `postgres` when we are root, else ourselves.
fn run_as() -> Result<Option<(u32, u32)>, PgError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new("postgres").map_err(|_| PgError::NoPostgresUser)?;
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy out at once.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(PgError::NoPostgresUser);
    }
    // SAFETY: entry is non-null and points to a valid passwd struct.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some((uid, gid)))
}

fn command(program: &Path, ids: Option<(u32, u32)>, pdeathsig: bool) -> Command {
    let mut cmd = Command::new(program);
    cmd.process_group(0).stdin(Stdio::null()).env("LC_ALL", "C.UTF-8");
    // SAFETY: only async-signal-safe syscalls on plain integers between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = ids
                && (libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            if pdeathsig && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

fn chown_tree(path: &Path, ids: Option<(u32, u32)>) -> Result<(), PgError> {
    let Some((uid, gid)) = ids else { return Ok(()) };
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io(path))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io(path))? {
            chown_tree(&entry.map_err(io(path))?.path(), ids)?;
        }
    }
    Ok(())
}

fn free_port() -> Result<u16, PgError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io(Path::new("127.0.0.1:0")))?;
    Ok(listener.local_addr().map_err(io(Path::new("127.0.0.1:0")))?.port())
}

fn generate_password() -> Result<String, PgError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| PgError::Start(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Stops a server left running by a previous process that died without stopping it.
async fn stop_stale(data_dir: &Path) {
    let pid_file = data_dir.join("postmaster.pid");
    let Ok(text) = std::fs::read_to_string(&pid_file) else { return };
    let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) else { return };
    // SAFETY: signal 0 only checks that the process exists.
    if pid <= 0 || unsafe { libc::kill(pid, 0) } != 0 {
        return;
    }
    tracing::warn!(pid, "stopping a PostgreSQL left running by an earlier run");
    // SAFETY: SIGINT asks the postmaster for a fast shutdown.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(30);
    // SAFETY: as above.
    while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl EmbeddedPostgres {
    /// Initializes (on first use) and starts the cluster under `dir`.
    pub async fn start(dir: &Path, options: &PgOptions) -> Result<Self, PgError> {
        let ids = run_as()?;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let dir = dir.canonicalize().map_err(io(dir))?;
        if ids.is_some() {
            let reachable = dir
                .ancestors()
                .skip(1)
                .all(|a| std::fs::metadata(a).map(|m| m.permissions().mode() & 0o001 != 0).unwrap_or(false));
            if !reachable {
                return Err(PgError::Unreachable(dir));
            }
        }
        let data_dir = dir.join("data");
        let password_file = dir.join("password");
        if !data_dir.join("PG_VERSION").exists() {
            Self::initdb(&dir, &data_dir, &password_file, ids).await?;
        }
        let password = std::fs::read_to_string(&password_file).map_err(io(&password_file))?.trim().to_owned();
        stop_stale(&data_dir).await;
        let postgres = find_binary("postgres")?;
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let log_path = dir.join("postgres.log");
            let log_file = std::fs::File::create(&log_path).map_err(io(&log_path))?;
            let mut cmd = command(&postgres, ids, true);
            cmd.arg("-D").arg(&data_dir).args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k", ""]);
            cmd.args(["-c", "max_connections=200", "-c", "shared_buffers=128MB"]);
            if options.unsafe_no_fsync {
                cmd.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
            }
            let stderr = log_file.try_clone().map_err(io(&log_path))?;
            cmd.stdout(log_file).stderr(stderr);
            let mut child = cmd.spawn().map_err(io(&postgres))?;
            match wait_ready(&mut child, port).await {
                Ok(()) => {
                    let url = format!("postgres://tessera:{password}@127.0.0.1:{port}/postgres");
                    tracing::info!(port, data = %data_dir.display(), "embedded PostgreSQL started");
                    return Ok(Self { child: Some(child), url, data_dir });
                }
                Err(e) => {
                    let _ = child.kill().await;
                    let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
                    last_error = format!("{e}; log: {}", tail.lines().rev().take(5).collect::<Vec<_>>().join(" | "));
                }
            }
        }
        Err(PgError::Start(last_error))
    }

    async fn initdb(dir: &Path, data_dir: &Path, password_file: &Path, ids: Option<(u32, u32)>) -> Result<(), PgError> {
        let initdb = find_binary("initdb")?;
        let password = generate_password()?;
        std::fs::write(password_file, &password).map_err(io(password_file))?;
        std::fs::set_permissions(password_file, std::fs::Permissions::from_mode(0o600)).map_err(io(password_file))?;
        // initdb reads the password from a file the cluster user can read; removed right after.
        let pw_for_initdb = dir.join(".initdb-password");
        std::fs::write(&pw_for_initdb, &password).map_err(io(&pw_for_initdb))?;
        std::fs::set_permissions(&pw_for_initdb, std::fs::Permissions::from_mode(0o600)).map_err(io(&pw_for_initdb))?;
        if data_dir.exists() {
            std::fs::remove_dir_all(data_dir).map_err(io(data_dir))?;
        }
        std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)).map_err(io(data_dir))?;
        chown_tree(data_dir, ids)?;
        chown_tree(&pw_for_initdb, ids)?;
        let mut cmd = command(&initdb, ids, false);
        cmd.arg("-D").arg(data_dir).args(["-U", "tessera", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"]);
        cmd.arg(format!("--pwfile={}", pw_for_initdb.display()));
        let output = cmd.output().await.map_err(io(&initdb));
        let _ = std::fs::remove_file(&pw_for_initdb);
        let output = output?;
        if !output.status.success() {
            return Err(PgError::Initdb(String::from_utf8_lossy(&output.stderr).into_owned()));
        }
        Ok(())
    }

    /// The connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server (fast shutdown) and waits for it to exit.
    pub async fn stop(mut self) {
        self.stop_inner().await;
    }

    async fn stop_inner(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = child.id() {
            // SAFETY: SIGINT to our own child asks for a fast shutdown.
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
        }
        match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
            Ok(_) => tracing::info!("embedded PostgreSQL stopped"),
            Err(_) => {
                tracing::warn!("PostgreSQL did not stop within 30 s; sending SIGQUIT");
                if let Some(pid) = child.id() {
                    // SAFETY: SIGQUIT is PostgreSQL's immediate shutdown.
                    unsafe { libc::kill(pid as i32, libc::SIGQUIT) };
                }
                let _ = child.wait().await;
            }
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Some(child) = &self.child
            && let Some(pid) = child.id()
        {
            // Not stopped explicitly (a panic or an early return): ask for a fast shutdown.
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
        }
    }
}

async fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("postgres exited with {status}"));
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("not accepting connections after 60 s".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_machines_binaries() {
        // The machine this runs on has PostgreSQL installed (the project's test prerequisite).
        assert!(find_binary("postgres").is_ok());
        assert!(matches!(find_binary("no-such-binary-xyz"), Err(PgError::BinaryNotFound(_))));
    }
}
