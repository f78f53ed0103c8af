//! Ending and removing runs: `ferry abort`, `ferry delete`, `ferry prune`.
//!
//! Each takes the run's lock first, like a resume would, so it can never act
//! on a run a live process drives; `abort --force` stops such a process on
//! this host (SIGTERM, which it handles like Ctrl-C) and waits for its lock.

use crate::error::{Error, Result};
use crate::journal::{Holder, Run, RunLock, RunStatus, Store, now_ms};
use std::time::{Duration, Instant};

/// How long `abort --force` waits for a stopped driver to let go.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// Whether a run has ended for good: nothing resumes it.
pub fn finished(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Succeeded | RunStatus::RolledBack | RunStatus::Aborted
    )
}

/// `ferry abort`: records the run as aborted (its journal stays, so `log`,
/// `describe` and `rollback` still work); returns the status it had.
pub fn abort(store: &dyn Store, id: &str, force: bool) -> Result<RunStatus> {
    let mut run = existing(store, id)?;
    if finished(run.status) {
        return Err(Error::NotResumable {
            run: run.id,
            status: run.status.to_string(),
            hint: "it has ended; nothing to abort".into(),
        });
    }
    let _lock = match store.lock(id) {
        Ok(lock) => lock,
        Err(Error::Locked { holder, .. }) if force => stop_driver(store, id, &holder)?,
        Err(Error::Locked { holder, .. }) => {
            return Err(Error::Held {
                action: "abort",
                run: id.to_owned(),
                holder,
                hint: format!(
                    "stop it first (Ctrl-C where it runs), or pass --force to stop it with \
                     SIGTERM and abort (this host only): ferry abort {id} --force"
                ),
            });
        }
        Err(e) => return Err(e),
    };
    // Read again under the lock: the driver may have written its end.
    run = existing(store, id)?;
    let was = run.status;
    if finished(was) {
        return Err(Error::NotResumable {
            run: run.id,
            status: was.to_string(),
            hint: "it ended while it was being stopped; nothing to abort".into(),
        });
    }
    run.status = RunStatus::Aborted;
    run.error = Some(format!(
        "aborted by {} at {} (was {was})",
        crate::journal::operator(store),
        crate::journal::format_ms(now_ms())
    ));
    run.record(
        store,
        crate::journal::ActionKind::Abort,
        Some(format!("was {was}")),
    );
    store.release_claims(&run.id)?;
    run.updated_at = now_ms();
    store.update_run(&run)?;
    Ok(was)
}

/// Sends SIGTERM to the live driver on this host and waits for its lock.
fn stop_driver(store: &dyn Store, id: &str, description: &str) -> Result<RunLock> {
    let holder = Holder::parse(description);
    let here = crate::journal::lock::hostname();
    let refuse = |hint: String| Error::Held {
        action: "abort",
        run: id.to_owned(),
        holder: description.to_owned(),
        hint,
    };
    let pid = match (holder.pid, holder.host.as_deref()) {
        (Some(pid), Some(host)) if host == here && pid != std::process::id() => pid,
        (_, Some(host)) if host != here => {
            return Err(refuse(format!(
                "it runs on {host}, not here; stop it there, then: ferry abort {id}"
            )));
        }
        _ => {
            return Err(refuse(format!(
                "its process is unknown; stop it, then: ferry abort {id}"
            )));
        }
    };
    // SAFETY: kill(2) with a pid read from the lock file and SIGTERM.
    if unsafe { libc::kill(pid as i32, libc::SIGTERM) } != 0 {
        return Err(refuse(format!(
            "cannot signal pid {pid} ({}); stop it, then: ferry abort {id}",
            std::io::Error::last_os_error()
        )));
    }
    let deadline = Instant::now() + STOP_WAIT;
    loop {
        match store.lock(id) {
            Ok(lock) => return Ok(lock),
            Err(Error::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(Error::Locked { .. }) => {
                return Err(refuse(format!(
                    "it was sent SIGTERM but still holds the run after {}s; stop it, then: ferry abort {id}",
                    STOP_WAIT.as_secs()
                )));
            }
            Err(e) => return Err(e),
        }
    }
}

/// `ferry delete`: removes a run with its journal (and the lab of a `--lab`
/// run, which lives under the state directory for that run alone).
pub fn delete(store: &dyn Store, id: &str, force: bool) -> Result<Run> {
    let run = existing(store, id)?;
    let _lock = match store.lock(id) {
        Ok(lock) => lock,
        Err(Error::Locked { holder, .. }) => {
            return Err(Error::Held {
                action: "delete",
                run: id.to_owned(),
                holder,
                hint: format!("abort it first: ferry abort {id}"),
            });
        }
        Err(e) => return Err(e),
    };
    if !finished(run.status) && !force {
        return Err(Error::NotResumable {
            run: run.id,
            status: run.status.to_string(),
            hint: format!(
                "it can still be resumed or rolled back; abort it first (ferry abort {id}) \
                 or delete it anyway with --force"
            ),
        });
    }
    remove(store, &run)?;
    Ok(run)
}

/// `ferry prune`: deletes runs last updated before `older_than` ago, only
/// finished ones unless `any_status`, never one a live process holds.
pub fn prune(
    store: &dyn Store,
    older_than: Duration,
    any_status: bool,
    dry_run: bool,
) -> Result<Vec<Run>> {
    let cutoff = now_ms().saturating_sub(older_than.as_millis().min(i64::MAX as u128) as i64);
    let mut pruned = Vec::new();
    for run in store.runs()? {
        if run.updated_at >= cutoff || !(any_status || finished(run.status)) {
            continue;
        }
        if dry_run {
            if !store.lock_state(&run.id)?.held {
                pruned.push(run);
            }
            continue;
        }
        let Ok(_lock) = store.lock(&run.id) else {
            continue;
        };
        remove(store, &run)?;
        pruned.push(run);
    }
    Ok(pruned)
}

/// Removes a run and what belongs to it alone.
pub(super) fn remove(store: &dyn Store, run: &Run) -> Result<()> {
    store.delete_run(&run.id)?;
    // A lab started for this run alone lives in `<work dir>/labs/<run id>`.
    if let Some(lab) = &run.environment.lab
        && lab.file_name() == Some(std::ffi::OsStr::new(&run.id))
        && lab.parent().and_then(|p| p.file_name()) == Some(std::ffi::OsStr::new("labs"))
    {
        let _ = std::fs::remove_dir_all(lab);
    }
    Ok(())
}

fn existing(store: &dyn Store, id: &str) -> Result<Run> {
    store.run(id)?.ok_or_else(|| Error::UnknownRun {
        id: id.to_owned(),
        state: store.location(),
    })
}
