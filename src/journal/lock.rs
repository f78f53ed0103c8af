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
            path: path.to_owned(),
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
        match file.try_lock() {
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

/// `pid 123 on host since 2026-11-21T06:00:00Z`
pub fn holder_description() -> String {
    format!(
        "pid {} on {} since {}",
        std::process::id(),
        hostname(),
        super::format_ms(super::now_ms())
    )
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
