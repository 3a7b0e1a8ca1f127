//! Small file-system helpers: positional I/O, directory fsync, atomic file replacement and the
//! directory lock. The embedded log targets Unix (Linux in production), where positional reads
//! let readers share a file handle with the appender without any seek cursor.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::LogError;

/// Reads exactly `buf.len()` bytes at `pos`.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
    file.read_exact_at(buf, pos)
}

/// Writes all of `buf` at `pos`.
pub(crate) fn write_all_at(file: &File, buf: &[u8], pos: u64) -> std::io::Result<()> {
    file.write_all_at(buf, pos)
}

/// Fsyncs a directory so that entries created, renamed or removed in it survive a power loss.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), LogError> {
    let handle = File::open(dir).map_err(|e| LogError::io(dir, e))?;
    handle.sync_all().map_err(|e| LogError::io(dir, e))
}

/// Replaces `path` with `bytes` atomically: write a temporary file, fsync it, rename it over the
/// target and fsync the directory. A crash leaves either the old or the new content, never a mix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    {
        let mut file = File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
        file.write_all(bytes).map_err(|e| LogError::io(&tmp, e))?;
        file.sync_all().map_err(|e| LogError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| LogError::io(path, e))?;
    match path.parent() {
        Some(parent) => fsync_dir(parent),
        None => Ok(()),
    }
}

/// Creates `dir` (and missing parents) and fsyncs the parent of every directory it created, so a
/// new directory does not vanish after a power loss.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), LogError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        create_dir_durable(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(LogError::io(dir, e)),
    }
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => fsync_dir(parent),
        _ => Ok(()),
    }
}

/// An exclusive lock on the log directory, held for as long as any writer task runs, so that two
/// processes (or two handles in one process) never append to the same files.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// How long [`DirLock::acquire`] keeps retrying: a handle that was just dropped in this
    /// process releases the lock only once its writer tasks have wound down.
    const RETRY_FOR: Duration = Duration::from_secs(2);

    /// Takes the lock on `<dir>/.lock`, waiting a little for a previous holder to go away.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, LogError> {
        let path = dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| LogError::io(&path, e))?;
        let deadline = Instant::now() + Self::RETRY_FOR;
        loop {
            if try_flock(&file).map_err(|e| LogError::io(&path, e))? {
                return Ok(DirLock { _file: file });
            }
            if Instant::now() >= deadline {
                return Err(LogError::Locked { path });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: advisory, released by the kernel when the process dies, which is
/// exactly what a crashed writer needs.
fn try_flock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` only reads the descriptor number, which `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.kind() == std::io::ErrorKind::WouldBlock { Ok(false) } else { Err(err) }
}
