//! `ferry state copy`: moves a team's history from one backend to another
//! (a folder that started locally to PostgreSQL or a cluster), run by run.
//!
//! Records are written in journal order, so the copy's `seq` order is the
//! original's; gates, claims and who-did-what travel with their run. A run
//! the target has already is left alone (a copy can be repeated after new
//! runs appeared), and a run a live process drives is refused: its journal
//! is still being written.

use super::Store;
use crate::error::{Error, Result};

/// What a copy did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Copied {
    /// Runs copied, with how many records each.
    pub runs: Vec<(String, usize)>,
    /// Runs the target had already, left as they were.
    pub skipped: Vec<String>,
    pub claims: usize,
}

pub fn copy(from: &dyn Store, to: &dyn Store) -> Result<Copied> {
    let mut copied = Copied::default();
    let existing: std::collections::BTreeSet<String> =
        to.runs()?.into_iter().map(|r| r.id).collect();
    let claims = from.claims()?;
    // Oldest first, so the target lists them in the same order.
    let mut runs = from.runs()?;
    runs.reverse();
    for run in runs {
        if existing.contains(&run.id) {
            copied.skipped.push(run.id);
            continue;
        }
        let lock = from.lock_state(&run.id)?;
        if lock.held {
            return Err(Error::Held {
                action: "copy",
                run: run.id.clone(),
                holder: lock
                    .holder
                    .map(|h| h.description)
                    .unwrap_or_else(|| "another process".into()),
                hint: "copy once it has stopped (it pauses at a gate, fails or ends)".into(),
            });
        }
        let records = copy_run(from, to, &run, |_| {})?;
        for claim in claims.iter().filter(|c| c.run == run.id) {
            to.claim(&claim.key, &claim.run, claim.claimed_at)?;
            copied.claims += 1;
        }
        to.update_run(&run)?;
        copied.runs.push((run.id, records));
    }
    Ok(copied)
}

/// Copies `run`'s record, steps and gates (each gate through `gate` first)
/// from `from` to `to`; returns how many step records it wrote. The caller
/// writes the run's record again once it has added what it adds (claims),
/// so the copy reads as the original did.
pub fn copy_run(
    from: &dyn Store,
    to: &dyn Store,
    run: &super::Run,
    mut gate: impl FnMut(&mut super::Gate),
) -> Result<usize> {
    let steps = from.steps(&run.id)?;
    let gates = from.gates(&run.id)?;
    to.create_run(run)?;
    // Only the last record is written durably: it puts every earlier
    // one on disk with it (one fsync per run, not per record).
    for (i, step) in steps.iter().enumerate() {
        to.put_step(&run.id, step, i + 1 == steps.len())?;
    }
    for mut g in gates {
        gate(&mut g);
        to.put_gate(&run.id, &g)?;
    }
    Ok(steps.len())
}
