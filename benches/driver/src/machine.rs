//! What the benchmark learns from the operating system: the machine it runs on, its load, the
//! memory of a process, and the open-file limit that bounds how many connections it can hold.

use serde::Serialize;

/// The machine a run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs (`nproc`).
    pub nproc: usize,
    /// Total memory in MiB.
    pub memory_mib: u64,
    /// CPU model name.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// Reads the machine's description from `/proc`.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim()))
            .unwrap_or("unknown")
            .to_owned();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            nproc: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            memory_mib: status_kib(&meminfo, "MemTotal").unwrap_or(0) / 1024,
            cpu,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        }
    }
}

/// The 1, 5 and 15 minute load averages, as `uptime` prints them.
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut out = [0.0; 3];
    for (slot, field) in out.iter_mut().zip(text.split_whitespace()) {
        *slot = field.parse().unwrap_or(0.0);
    }
    out
}

/// A `Key:   123 kB` line of a `/proc` status-like file, in KiB.
pub fn status_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        if name != key {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Resident (`VmRSS`) and peak resident (`VmHWM`) memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Rss {
    /// Current resident set.
    pub rss_kib: u64,
    /// Peak resident set since the process started.
    pub hwm_kib: u64,
}

/// Reads a process's memory from `/proc/<pid>/status`; `None` once it has exited.
pub fn rss(pid: u32) -> Option<Rss> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Rss { rss_kib: status_kib(&text, "VmRSS")?, hwm_kib: status_kib(&text, "VmHWM")? })
}

/// Raises the soft open-file limit to the hard limit and returns it. Child processes (the
/// `tessera serve` under test) inherit it, so the server can hold as many sockets as we open.
pub fn raise_open_files() -> std::io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads the struct we own; raising the soft limit up to the hard one is allowed.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_fields() {
        let text = "Name:\ttessera\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_kib(text, "VmRSS"), Some(102_400));
        assert_eq!(status_kib(text, "VmHWM"), Some(204_800));
        assert_eq!(status_kib(text, "VmSwap"), None);
    }

    #[test]
    fn reads_our_own_memory_and_raises_the_file_limit() {
        let own = rss(std::process::id()).unwrap();
        assert!(own.rss_kib > 0 && own.hwm_kib >= own.rss_kib);
        assert!(raise_open_files().unwrap() >= 1024);
        let machine = Machine::detect();
        assert!(machine.nproc >= 1 && machine.memory_mib > 0);
    }
}
