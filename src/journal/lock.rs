//! Run locks. The SQLite store uses an OS file lock per run: the kernel drops
//! it when the holder exits for any reason (even `kill -9`), so a dead holder
//! never blocks a resume, and nothing needs a heartbeat.

use crate::error::{Error, Result};
use std::fs::{OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Held while a process drives a run; dropping it releases the lock.
pub struct RunLock {
    _guard: Box<dyn Send>,
}

impl RunLock {
    pub(crate) fn new(guard: impl Send + 'static) -> Self {
        RunLock {
            _guard: Box::new(guard),
        }
    }

    /// Takes an exclusive lock on `path`, writing who holds it into the file
    /// so a refused process can name the holder.
    pub(crate) fn file(path: &Path, run: &str) -> Result<Self> {
        let journal_err = |source: std::io::Error| Error::Journal {
            state: path.display().to_string(),
            source: super::JournalError::Io {
                action: "take the run's lock",
                source,
            },
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(journal_err)?;
        // `lock_state` probes a lock with a shared lock held for an instant;
        // retrying briefly keeps that probe from passing for a live holder.
        let mut result = file.try_lock();
        for _ in 0..20 {
            if !matches!(result, Err(TryLockError::WouldBlock)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            result = file.try_lock();
        }
        match result {
            Ok(()) => {
                file.set_len(0).map_err(journal_err)?;
                file.rewind().map_err(journal_err)?;
                file.write_all(holder_description().as_bytes())
                    .map_err(journal_err)?;
                Ok(RunLock::new(file))
            }
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                Err(Error::Locked {
                    run: run.to_owned(),
                    holder: if holder.is_empty() {
                        "another process".into()
                    } else {
                        holder.to_owned()
                    },
                })
            }
            Err(TryLockError::Error(e)) => Err(journal_err(e)),
        }
    }
}

/// Who holds (or last held) a run's lock, and whether that process still does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockState {
    /// A live process holds the lock now.
    pub held: bool,
    /// The last holder, as it described itself when it took the lock.
    pub holder: Option<Holder>,
}

/// A lock holder: the process, its host and when it took the lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    pub pid: Option<u32>,
    pub host: Option<String>,
    pub user: Option<String>,
    pub since: Option<String>,
    /// The description as written (`pid 123 on host by alice since 2026-11-21T06:00:00Z`).
    pub description: String,
}

impl Holder {
    /// Reads a [`holder_description`]; fields it cannot find stay `None`.
    pub fn parse(description: &str) -> Holder {
        let words: Vec<&str> = description.split_whitespace().collect();
        let after = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1))
                .map(|w| (*w).to_owned())
        };
        Holder {
            pid: after("pid").and_then(|p| p.parse().ok()),
            host: after("on"),
            user: after("by"),
            since: after("since"),
            description: description.to_owned(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

/// The state of the file lock at `path` without taking it: from the
/// kernel's lock table where there is one, else by a shared lock held for an
/// instant (it succeeds only if no process holds the exclusive one). Opens
/// the file read-only, so it works on a state directory this user cannot write.
pub(crate) fn file_state(path: &Path) -> Result<LockState> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LockState {
                held: false,
                holder: None,
            });
        }
        Err(source) => {
            return Err(Error::Journal {
                state: path.display().to_string(),
                source: super::JournalError::Io {
                    action: "read the run's lock",
                    source,
                },
            });
        }
    };
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let holder = (!text.trim().is_empty()).then(|| Holder::parse(text.trim()));
    if let Some(held) = held_per_proc_locks(&file, holder.as_ref().and_then(|h| h.pid)) {
        return Ok(LockState { held, holder });
    }
    let held = match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(source)) => {
            return Err(Error::Journal {
                state: path.display().to_string(),
                source: super::JournalError::Io {
                    action: "read the run's lock",
                    source,
                },
            });
        }
    };
    Ok(LockState { held, holder })
}

/// Whether the kernel's lock table (Linux `/proc/locks`) lists an exclusive
/// flock on this file, by the holder's pid when known; `None` where there
/// is no such table. Unlike a probe, reading it never contends with a
/// driver taking the lock at that instant.
fn held_per_proc_locks(file: &std::fs::File, pid: Option<u32>) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    let inode = file.metadata().ok()?.ino();
    // `1: FLOCK  ADVISORY  WRITE 4944 fe:00:10010643 0 EOF`; waiters read `1: -> FLOCK ...`.
    Some(table.lines().any(|entry| {
        let fields: Vec<&str> = entry.split_whitespace().collect();
        fields.len() >= 6
            && fields[1] == "FLOCK"
            && fields[3] == "WRITE"
            && fields[5].rsplit(':').next().and_then(|i| i.parse().ok()) == Some(inode)
            && pid.is_none_or(|pid| fields[4].parse() == Ok(pid))
    }))
}

/// `pid 123 on host by alice since 2026-11-21T06:00:00Z`
pub fn holder_description() -> String {
    format!(
        "pid {} on {} by {} since {}",
        std::process::id(),
        hostname(),
        user(),
        super::format_ms(super::now_ms())
    )
}

/// The login name of this process's user: `USER` / `LOGNAME`, else the
/// password database's name for the effective uid (cron jobs and
/// containers often set neither), else the uid itself.
pub fn user() -> String {
    let usable = |u: &String| !u.is_empty() && !u.contains(char::is_whitespace);
    if let Some(user) = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(usable)
    {
        return user;
    }
    // SAFETY: geteuid cannot fail; getpwuid returns null or a pointer to a
    // static entry whose pw_name is a NUL-terminated string, copied at once.
    let uid = unsafe { libc::geteuid() };
    let name = unsafe {
        let entry = libc::getpwuid(uid);
        (!entry.is_null() && !(*entry).pw_name.is_null()).then(|| {
            std::ffi::CStr::from_ptr((*entry).pw_name)
                .to_string_lossy()
                .into_owned()
        })
    };
    name.filter(usable).unwrap_or_else(|| format!("uid{uid}"))
}

/// `user@host`, for who approved a gate or aborted a run.
pub fn user_at_host() -> String {
    format!("{}@{}", user(), hostname())
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
