//! cgroups v2 for plugin processes, where the host may create them.
//!
//! Each run of a plugin gets its own cgroup, a child of the host's own cgroup on the unified
//! hierarchy. The plugin process joins it before `exec`, so everything it ever spawns stays in
//! it — even a grandchild that daemonizes out of the plugin's process group — and
//! `cgroup.kill` ends them all. When the host's cgroup also delegates the memory and pids
//! controllers, `memory.max` (no swap) and `pids.max` add kernel limits per plugin on top of the
//! rlimits. Where the hierarchy is missing or read-only, plugins run without a cgroup and only the
//! rlimits and the process group apply (see `schemas/package/plugin.toml.md`).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tessera_model::manifest::Limits;

/// The directory under which plugin cgroups are created, if any (detected once).
fn parent() -> Option<&'static Path> {
    static PARENT: OnceLock<Option<PathBuf>> = OnceLock::new();
    PARENT
        .get_or_init(|| {
            let found = detect();
            match &found {
                Some(dir) => tracing::info!(cgroup = %dir.display(), controllers = %controllers(dir).join(" "), "plugins run in cgroups v2"),
                None => tracing::info!("cgroups v2 not writable here; plugins are limited by rlimits only"),
            }
            found
        })
        .as_deref()
}

/// The unified hierarchy's mount point, from `/proc/self/mountinfo`.
fn unified_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (fields, rest) = line.split_once(" - ")?;
        if rest.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        fields.split_whitespace().nth(4).map(PathBuf::from)
    })
}

fn detect() -> Option<PathBuf> {
    let mount = unified_mount()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?.trim().trim_start_matches('/');
    let base = mount.join(path);
    let probe = base.join(format!("tessera-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).ok()?;
    let usable = probe.join("cgroup.procs").exists() && probe.join("cgroup.kill").exists();
    let _ = std::fs::remove_dir(&probe);
    if !usable {
        return None;
    }
    sweep_stale(&base);
    // Ask for the controllers the host's cgroup may hand down; refused (a non-root cgroup that
    // holds processes, or nothing delegated) just means fewer limits.
    let available = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
    for controller in ["memory", "pids"] {
        if available.split_whitespace().any(|c| c == controller) {
            let _ = std::fs::write(base.join("cgroup.subtree_control"), format!("+{controller}"));
        }
    }
    Some(base)
}

/// Removes the (empty) cgroups a host that was killed outright left behind; its plugins died with
/// it (parent-death signal), so only the directories remain.
fn sweep_stale(base: &Path) {
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("tessera-").and_then(|rest| rest.split('-').next()) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

fn controllers(dir: &Path) -> Vec<String> {
    let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    enabled.split_whitespace().map(str::to_owned).collect()
}

/// The cgroup of one plugin run; removed (after killing what is left in it) on drop.
#[derive(Debug)]
pub struct PluginCgroup {
    dir: PathBuf,
    procs: CString,
    /// What the kernel enforces through it, for the log.
    pub enforced: Vec<&'static str>,
}

impl PluginCgroup {
    /// Creates a cgroup for a run of `plugin` with `limits`; `None` where cgroups are unavailable.
    pub fn create(plugin: &str, limits: &Limits) -> Option<Self> {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let parent = parent()?;
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("tessera-{}-{plugin}-{run}", std::process::id()));
        if let Err(e) = std::fs::create_dir(&dir) {
            tracing::warn!(cgroup = %dir.display(), error = %e, "cannot create the plugin's cgroup");
            return None;
        }
        let procs = CString::new(dir.join("cgroup.procs").into_os_string().into_encoded_bytes()).ok()?;
        let mut enforced = vec!["tracking"];
        let mut set = |file: &str, value: String, what: &'static str| {
            if dir.join(file).exists() && std::fs::write(dir.join(file), value).is_ok() {
                enforced.push(what);
            }
        };
        set("memory.max", limits.memory_mb.saturating_mul(1024 * 1024).to_string(), "memory.max");
        set("memory.swap.max", "0".into(), "memory.swap.max");
        set("pids.max", limits.max_processes.to_string(), "pids.max");
        Some(Self { dir, procs, enforced })
    }

    /// The path of `cgroup.procs`, for the child to join before `exec`.
    pub fn procs_path(&self) -> &CString {
        &self.procs
    }

    /// Kills every process in the cgroup.
    pub fn kill(&self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
    }

    /// Whether no process is left in it.
    fn is_empty(&self) -> bool {
        std::fs::read_to_string(self.dir.join("cgroup.procs")).map(|p| p.trim().is_empty()).unwrap_or(true)
    }
}

impl Drop for PluginCgroup {
    fn drop(&mut self) {
        self.kill();
        // Killed processes leave the cgroup once reaped; a cgroup is removable only when empty.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::warn!(cgroup = %self.dir.display(), error = %e, "cannot remove the plugin's cgroup");
        }
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is `procs`. Runs in the forked
/// child before `exec`: only async-signal-safe calls (open, write, close).
pub fn join_in_child(procs: &CString) -> std::io::Result<()> {
    // SAFETY: `procs` is a valid NUL-terminated path; writing "0" moves the writer itself.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        libc::close(fd);
        if written != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unified_mount_is_found_when_there_is_one() {
        let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(" - cgroup2 ");
        assert_eq!(unified_mount().is_some(), mounted);
    }
}
