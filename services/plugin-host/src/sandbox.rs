//! Starting a plugin as an isolated OS process.
//!
//! The process gets a cleared environment, its package directory as working directory, its own
//! state directory as `HOME`, its own process group (so the host can kill everything it spawned),
//! resource limits through `setrlimit`, and a parent-death signal so that it cannot outlive the host.
//! When the host runs as root, plugins run as the unprivileged `nobody` user, and a plugin whose
//! manifest declares no network use (`[network] allow` empty) runs in a network namespace of its
//! own, which has no interface but a loopback that is down: it cannot reach any address, the
//! host's loopback included. Where cgroups v2 are writable, the process also joins its own cgroup
//! before `exec` (see `cgroup.rs`).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tessera_model::manifest::Limits;
use tokio::process::{Child, Command};

/// Minimal search path handed to plugins.
pub const PLUGIN_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// What to start and under which limits.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// `entrypoint` from the manifest.
    pub entrypoint: Vec<String>,
    /// Package directory (working directory).
    pub package_dir: PathBuf,
    /// The plugin's private state directory.
    pub state_dir: PathBuf,
    /// Resource limits.
    pub limits: Limits,
    /// Whether the plugin may use the network (its manifest declares `[network] allow`).
    pub network_allowed: bool,
}

/// Whether a started plugin was cut off from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkIsolation {
    /// The plugin declared network use and shares the host's network.
    Declared,
    /// The plugin runs in an empty network namespace of its own.
    Isolated,
    /// The plugin declared no network use but could not be isolated (the host is not root, or
    /// lacks `CAP_SYS_ADMIN`): it shares the host's network.
    NotEnforced,
}

/// Where `program` is on [`PLUGIN_PATH`].
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    PLUGIN_PATH.split(':').map(|dir| Path::new(dir).join(program)).find(|candidate| candidate.is_file())
}

fn resolve_program(program: &str, package_dir: &Path) -> PathBuf {
    if program.contains('/') {
        return package_dir.join(program);
    }
    find_on_path(program).unwrap_or_else(|| PathBuf::from(program))
}

/// The uid/gid plugins run as when the host is root.
fn unprivileged_ids() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    Some((65534, 65534))
}

/// Whether every ancestor of `dir` lets other users through (o+x), so an unprivileged plugin
/// user can reach it.
fn reachable_by_others(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors().skip(1).all(|a| std::fs::metadata(a).map(|m| m.permissions().mode() & 0o001 != 0).unwrap_or(false))
        && std::fs::metadata(dir).map(|m| m.permissions().mode() & 0o005 == 0o005).unwrap_or(false)
}

/// The ids to run a plugin as: unprivileged when the host is root and the package and state
/// directories are reachable by other users; otherwise the host's own (with a warning).
fn plugin_ids(spec: &SandboxSpec) -> Option<(u32, u32)> {
    let ids = unprivileged_ids()?;
    if reachable_by_others(&spec.package_dir) && reachable_by_others(&spec.state_dir) {
        return Some(ids);
    }
    tracing::warn!(
        package = %spec.package_dir.display(),
        "plugin package or state directory is not reachable by other users; running the plugin as the host user"
    );
    None
}

/// Prepares the state directory so that the plugin's user can write it.
pub fn prepare_state_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    if let Some((uid, gid)) = unprivileged_ids() {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Starts the plugin process with stdio piped, inside `cgroup` when given.
pub fn spawn(spec: &SandboxSpec, cgroup: Option<&crate::cgroup::PluginCgroup>) -> std::io::Result<Child> {
    let (program, args) = spec
        .entrypoint
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty entrypoint"))?;
    let mut command = Command::new(resolve_program(program, &spec.package_dir));
    command
        .args(args)
        .current_dir(&spec.package_dir)
        .env_clear()
        .env("PATH", PLUGIN_PATH)
        .env("HOME", &spec.state_dir)
        .env("LANG", "C.UTF-8")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let limits = spec.limits.clone();
    let ids = plugin_ids(spec);
    // A new network namespace needs CAP_SYS_ADMIN: only a root host tries.
    let isolate_network = !spec.network_allowed && unprivileged_ids().is_some();
    let procs = cgroup.map(|c| c.procs_path().clone());
    // SAFETY: the closure runs in the forked child before exec and only calls async-signal-safe
    // functions (open, write, close, unshare, setrlimit, setgid, setuid, prctl) on values computed
    // before the fork.
    unsafe {
        command.pre_exec(move || {
            // Join first, while still privileged: the plugin cannot leave its cgroup afterwards.
            if let Some(procs) = &procs {
                crate::cgroup::join_in_child(procs)?;
            }
            // Also while privileged. A failure (no CAP_SYS_ADMIN in a container) leaves the host's
            // network, which `network_isolation` reports after the start.
            if isolate_network {
                libc::unshare(libc::CLONE_NEWNET);
            }
            apply_limits(&limits, ids)
        });
    }
    command.spawn()
}

/// Whether the started plugin `pid` (spawned from `spec`) is cut off from the network: its network
/// namespace differs from the host's. `spawn` returns once the child has exec'd, so the namespace
/// is final.
pub fn network_isolation(spec: &SandboxSpec, pid: u32) -> NetworkIsolation {
    if spec.network_allowed {
        return NetworkIsolation::Declared;
    }
    let own = std::fs::read_link("/proc/self/ns/net");
    let plugin = std::fs::read_link(format!("/proc/{pid}/ns/net"));
    match (own, plugin) {
        (Ok(own), Ok(plugin)) if own != plugin => NetworkIsolation::Isolated,
        _ => NetworkIsolation::NotEnforced,
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    set_limits(resource, value, value)
}

fn set_limits(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> std::io::Result<()> {
    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: `limit` is a valid rlimit for the duration of the call.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn apply_limits(limits: &Limits, ids: Option<(u32, u32)>) -> std::io::Result<()> {
    set_limit(libc::RLIMIT_AS, limits.memory_mb.saturating_mul(1024 * 1024))?;
    // SIGXCPU at the soft limit says why the plugin died; SIGKILL a second later if it ignores it.
    set_limits(libc::RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds.saturating_add(1))?;
    set_limit(libc::RLIMIT_NOFILE, limits.open_files)?;
    set_limit(libc::RLIMIT_CORE, 0)?;
    set_limit(libc::RLIMIT_FSIZE, 256 * 1024 * 1024)?;
    if let Some((uid, gid)) = ids {
        // SAFETY: plain syscalls on integers; failure is reported through errno.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        // RLIMIT_NPROC counts per user; it only binds once we are no longer root.
        set_limit(libc::RLIMIT_NPROC, limits.max_processes)?;
    }
    // Set last: a credential change clears the parent-death signal.
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Kills the plugin's whole process group.
pub fn kill_group(child: &Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill on a process group id we created; errors (already gone) are irrelevant.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    }
}
