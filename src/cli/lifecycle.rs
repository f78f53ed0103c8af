//! `ferry abort`, `ferry delete`, `ferry prune`: what they did, in words.
//! The rules (what may be aborted or deleted, the lock) live in
//! `runner::lifecycle`.

use super::output::emit;
use crate::error::{Result, exit};
use crate::journal::{Store, format_ms};
use std::fmt::Write;

pub fn abort(store: &dyn Store, id: &str, force: bool, quiet: bool) -> Result<i32> {
    let was = crate::runner::abort(store, id, force)?;
    if !quiet {
        emit(&format!(
            "run {id} aborted (was {was}); its journal stays: ferry log {id}; \
             undo what it changed with ferry rollback {id}, or remove it with ferry delete {id}\n"
        ))?;
    }
    Ok(exit::SUCCEEDED)
}

pub fn delete(store: &dyn Store, id: &str, force: bool, quiet: bool) -> Result<i32> {
    let run = crate::runner::delete(store, id, force)?;
    if !quiet {
        emit(&format!("deleted run {id} ({})\n", run.status))?;
    }
    Ok(exit::SUCCEEDED)
}

pub fn prune(
    store: &dyn Store,
    older_than: std::time::Duration,
    any_status: bool,
    dry_run: bool,
    quiet: bool,
) -> Result<i32> {
    let pruned = crate::runner::prune(store, older_than, any_status, dry_run)?;
    if !quiet {
        let verb = if dry_run { "would delete" } else { "deleted" };
        let mut text = String::new();
        for run in &pruned {
            let _ = writeln!(
                text,
                "{verb} run {} ({}, updated {})",
                run.id,
                run.status,
                format_ms(run.updated_at)
            );
        }
        let _ = writeln!(
            text,
            "{verb} {} run{} not updated within {}",
            pruned.len(),
            if pruned.len() == 1 { "" } else { "s" },
            humantime::format_duration(older_than)
        );
        emit(&text)?;
    }
    Ok(exit::SUCCEEDED)
}
