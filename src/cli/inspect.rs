//! `ferry status`, `ferry runs`, `ferry log`: read-only views of the journal.
//!
//! A run's recorded status says what its driver last wrote; whether that
//! driver still lives is the lock's to say, so every view reads both
//! ([`Snapshot`]) and a `running` run whose lock is free is shown as the
//! driver having died, with what to do next.

use super::args::Format;
use super::output::{self, emit, line};
use crate::error::{Error, Result, exit};
use crate::events::format_duration;
use crate::journal::{
    Gate, LockState, Run, RunStatus, Step, StepKind, StepStatus, Store, UndoStatus, format_ms,
};
use serde_json::json;
use std::fmt::Write;

/// A run as one read of the journal sees it: its record, its records, its
/// gates and the state of its lock.
pub struct Snapshot {
    pub run: Run,
    pub steps: Vec<Step>,
    pub gates: Vec<Gate>,
    pub lock: LockState,
    /// Where the journal lives, as the store says it.
    pub location: String,
    /// What the run holds (apps it moves).
    pub claims: Vec<crate::journal::Claim>,
}

impl Snapshot {
    pub fn load(store: &dyn Store, id: &str) -> Result<Snapshot> {
        let run = store.run(id)?.ok_or_else(|| unknown(store, id))?;
        Ok(Snapshot {
            steps: store.steps(&run.id)?,
            gates: store.gates(&run.id)?,
            lock: store.lock_state(&run.id)?,
            location: store.location(),
            claims: store
                .claims()?
                .into_iter()
                .filter(|c| c.run == run.id)
                .collect(),
            run,
        })
    }

    /// A `running` run nobody drives: its process died without recording
    /// anything (`kill -9`, a crash, a lost machine).
    pub fn driver_died(&self) -> bool {
        self.run.status == RunStatus::Running && !self.lock.held
    }

    /// The state as people read it: the recorded status, corrected by the lock.
    pub fn state(&self) -> String {
        state_label(&self.run, &self.lock)
    }

    /// The record a driver works on now (a running step or timer, a gate
    /// waited at), else the one that ended last.
    pub fn current_step(&self) -> Option<&Step> {
        self.steps
            .iter()
            .rev()
            .find(|s| matches!(s.status, StepStatus::Running | StepStatus::Waiting))
            .or_else(|| {
                self.steps
                    .iter()
                    .filter(|s| s.ended_at.is_some())
                    .max_by_key(|s| (s.ended_at, s.seq))
            })
    }

    /// The gate the run waits at, if any.
    pub fn waiting_gate(&self) -> Option<&Gate> {
        if crate::runner::finished(self.run.status) {
            return None;
        }
        self.gates.iter().find(|g| {
            g.approved_at.is_none()
                && self
                    .steps
                    .iter()
                    .any(|s| s.kind == StepKind::Gate && s.name == g.name)
        })
    }

    /// What changes whenever the journal or the lock does: `--watch` and
    /// `log -f` print again when it moves.
    pub fn fingerprint(&self) -> String {
        let mut text = format!(
            "{}|{}|{}|{}",
            self.run.status,
            self.run.updated_at,
            self.lock.held,
            self.gates.len()
        );
        for s in &self.steps {
            let _ = write!(text, "|{}", record_fingerprint(s));
        }
        for g in &self.gates {
            let _ = write!(text, "|{}:{:?}", g.name, g.approved_at);
        }
        text
    }

    /// Whether the run can still move: a live driver, or a state from which
    /// `resume`/`rollback` continue.
    pub fn finished(&self) -> bool {
        !self.lock.held
            && matches!(
                self.run.status,
                RunStatus::Succeeded | RunStatus::RolledBack | RunStatus::Aborted
            )
    }

    pub fn to_json(&self) -> serde_json::Value {
        let current = self.current_step().map(|s| s.name.clone());
        json!({
            "run": self.run,
            "state": self.state(),
            "driver": {
                "alive": self.lock.held,
                "died": self.driver_died(),
                "holder": self.lock.holder,
            },
            "current_step": current,
            "waiting_gate": self.waiting_gate().map(|g| &g.name),
            // Who may approve the gate waited at (`null`: anyone).
            "approvers": self
                .waiting_gate()
                .and_then(|g| crate::journal::gate_approvers(&self.steps, &g.name)),
            "counts": counts(&self.steps),
            "apps": super::phases::to_json(&self.steps),
            "next": next_command(self),
            "steps": self.steps,
            "gates": self.gates,
            "journal": self.location,
            "claims": self.claims,
        })
    }
}

pub fn record_fingerprint(s: &Step) -> String {
    format!(
        "{}:{}:{}:{}:{:?}:{:?}:{}",
        s.kind, s.name, s.status, s.attempts, s.started_at, s.ended_at, s.undo
    )
}

/// `running`, `running (driver died)`, `paused`, ... and, while a live
/// process holds a run whose status does not say so (a rollback before its
/// first undo), that it is held.
pub fn state_label(run: &Run, lock: &LockState) -> String {
    match (run.status, lock.held) {
        (RunStatus::Running, false) => "running (driver died)".into(),
        (RunStatus::Running, true) => "running".into(),
        (status, true) => format!("{status} (held by a live process)"),
        (status, false) => status.to_string(),
    }
}

pub fn unknown(store: &dyn Store, id: &str) -> Error {
    Error::UnknownRun {
        id: id.to_owned(),
        state: store.location(),
    }
}

/// Which runs `ferry runs` lists.
#[derive(Debug, Default)]
pub struct RunFilter {
    pub statuses: Vec<RunStatus>,
    pub script: Option<String>,
    /// Started at or after (ms since the epoch).
    pub since: Option<i64>,
}

impl RunFilter {
    fn keeps(&self, run: &Run) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&run.status))
            && self
                .script
                .as_ref()
                .is_none_or(|s| run.script.to_string_lossy().contains(s.as_str()))
            && self.since.is_none_or(|since| run.created_at >= since)
    }
}

pub fn runs(store: &dyn Store, filter: &RunFilter, format: Format) -> Result<i32> {
    let runs: Vec<Run> = store
        .runs()?
        .into_iter()
        .filter(|r| filter.keeps(r))
        .collect();
    let mut rows = Vec::new();
    for run in &runs {
        let lock = store.lock_state(&run.id)?;
        rows.push((run, state_label(run, &lock), lock));
    }
    let value = serde_json::Value::Array(
        rows.iter()
            .map(|(run, state, lock)| {
                let mut value = json!(run);
                value["state"] = json!(state);
                value["driver"] = json!({ "alive": lock.held, "holder": lock.holder });
                value
            })
            .collect(),
    );
    if output::document(format, &value)? {
        return Ok(exit::SUCCEEDED);
    }
    if rows.is_empty() {
        let what = if store.runs()?.is_empty() {
            "no runs"
        } else {
            "no runs match"
        };
        emit(&format!("{what} in {}\n", store.location()))?;
        return Ok(exit::SUCCEEDED);
    }
    let id_width = rows.iter().map(|r| r.0.id.len()).max().unwrap_or(2).max(2);
    let state_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(6).max(6);
    let by_width = rows
        .iter()
        .map(|r| line(r.0.started_by().unwrap_or("-")).chars().count())
        .max()
        .unwrap_or(2)
        .max(2);
    let mut text = format!(
        "{:id_width$}  {:state_width$}  {:20}  {:20}  {:by_width$}  SCRIPT\n",
        "ID", "STATUS", "STARTED", "UPDATED", "BY"
    );
    for (run, state, _) in &rows {
        let _ = writeln!(
            text,
            "{:id_width$}  {:state_width$}  {:20}  {:20}  {:by_width$}  {}",
            run.id,
            state,
            format_ms(run.created_at),
            format_ms(run.updated_at),
            line(run.started_by().unwrap_or("-")),
            line(&run.script.display().to_string())
        );
    }
    emit(&text)?;
    Ok(exit::SUCCEEDED)
}

/// The newest run's id, for `ferry status` without RUN.
pub fn newest(store: &dyn Store) -> Result<Option<String>> {
    Ok(store.runs()?.into_iter().next().map(|r| r.id))
}

pub fn status(store: &dyn Store, id: &str, format: Format) -> Result<i32> {
    let snapshot = Snapshot::load(store, id)?;
    if !output::document(format, &snapshot.to_json())? {
        emit(&render_status(&snapshot))?;
    }
    Ok(exit::SUCCEEDED)
}

/// Counts of step records by status (every execution's, not one summary's).
fn counts(steps: &[Step]) -> serde_json::Value {
    let mut counts = serde_json::Map::new();
    for kind in [StepKind::Step, StepKind::Gate, StepKind::Sleep] {
        let mut by_status = serde_json::Map::new();
        for status in [
            StepStatus::Completed,
            StepStatus::Failed,
            StepStatus::Interrupted,
            StepStatus::Running,
            StepStatus::Waiting,
        ] {
            let n = steps
                .iter()
                .filter(|s| s.kind == kind && s.status == status)
                .count();
            if n > 0 {
                by_status.insert(status.to_string(), n.into());
            }
        }
        counts.insert(kind.to_string(), by_status.into());
    }
    counts.into()
}

pub fn render_status(snap: &Snapshot) -> String {
    let run = &snap.run;
    let mut text = render_run(run, &snap.state());
    let _ = writeln!(text, "  journal:  {}", line(&snap.location));
    if !snap.claims.is_empty() {
        let keys: Vec<String> = snap.claims.iter().map(|c| line(&c.key)).collect();
        let _ = writeln!(text, "  holds:    {}", keys.join(", "));
    }
    let holder = snap
        .lock
        .holder
        .as_ref()
        .map(|h| h.to_string())
        .unwrap_or_else(|| "an unknown process".into());
    if snap.lock.held {
        let _ = writeln!(text, "  driver:   {holder} (alive)");
    } else if snap.driver_died() {
        let _ = writeln!(
            text,
            "  driver:   died: {holder} held the run and is gone without recording how it ended"
        );
    }
    let steps: Vec<&Step> = snap
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Step)
        .collect();
    let count = |status: StepStatus| steps.iter().filter(|s| s.status == status).count();
    let mut parts = vec![format!("{} completed", count(StepStatus::Completed))];
    for (status, word) in [
        (StepStatus::Failed, "failed"),
        (StepStatus::Interrupted, "interrupted"),
        (StepStatus::Running, "running"),
    ] {
        let n = count(status);
        // A step recorded running whose driver died was interrupted.
        let word = if status == StepStatus::Running && !snap.lock.held {
            "interrupted (driver died)"
        } else {
            word
        };
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    let _ = writeln!(
        text,
        "  steps:    {} recorded over every execution: {}",
        steps.len(),
        parts.join(", ")
    );
    text.push_str(&super::phases::render(&snap.steps));
    if let Some(step) = snap.current_step() {
        let label = if matches!(step.status, StepStatus::Running | StepStatus::Waiting) {
            "current"
        } else {
            "last"
        };
        let _ = writeln!(
            text,
            "  {label}:{} {}",
            pad(label),
            describe_brief(step, snap)
        );
    }
    for gate in &snap.gates {
        match (&gate.approved_at, &gate.approved_by) {
            (Some(at), by) => {
                let _ = writeln!(
                    text,
                    "  gate:     {} approved by {} at {}",
                    line(&gate.name),
                    line(by.as_deref().unwrap_or("?")),
                    format_ms(*at)
                );
            }
            (None, _) if crate::runner::finished(run.status) => {
                let _ = writeln!(
                    text,
                    "  gate:     {} never approved (the run is {})",
                    line(&gate.name),
                    run.status
                );
            }
            (None, _) => {
                let _ = writeln!(
                    text,
                    "  gate:     {} WAITING since {}: {}",
                    line(&gate.name),
                    format_ms(gate.requested_at),
                    line(&gate.message)
                );
                let who = match crate::journal::gate_approvers(&snap.steps, &gate.name) {
                    Some(names) => names.iter().map(|n| line(n)).collect::<Vec<_>>().join(", "),
                    None => "anyone with access to this journal".into(),
                };
                let _ = writeln!(text, "            may approve: {who}");
            }
        }
    }
    if let Some(step) = snap
        .steps
        .iter()
        .rev()
        .find(|s| s.status == StepStatus::Failed)
    {
        let _ = writeln!(
            text,
            "  failed:   {}: {}",
            line(&step.name),
            output::block(step.error.as_deref().unwrap_or(""), "            ")
        );
    }
    if let Some(step) = snap.steps.iter().find(|s| s.undo == UndoStatus::Failed) {
        let _ = writeln!(
            text,
            "  undo failed: {}: {}",
            line(&step.name),
            output::block(step.undo_error.as_deref().unwrap_or(""), "            ")
        );
    }
    if run.status.in_rollback() {
        let undone = snap
            .steps
            .iter()
            .filter(|s| s.undo == UndoStatus::Done)
            .count();
        let left = snap
            .steps
            .iter()
            .filter(|s| {
                matches!(
                    s.undo,
                    UndoStatus::Pending | UndoStatus::Running | UndoStatus::Failed
                )
            })
            .count();
        let _ = writeln!(text, "  undos:    {undone} done, {left} to go");
    }
    if let Some(error) = &run.error {
        let _ = writeln!(text, "  error:    {}", output::block(error, "            "));
    }
    if let Some(next) = next_command(snap) {
        let _ = writeln!(text, "  next:     {next}");
    }
    text
}

fn pad(label: &str) -> String {
    " ".repeat(9usize.saturating_sub(label.len() + 1))
}

/// `app1: deploy (step, running since T, attempt 2)`
fn describe_brief(step: &Step, snap: &Snapshot) -> String {
    let status = match step.status {
        StepStatus::Running if !snap.lock.held => "interrupted (driver died)".to_owned(),
        StepStatus::Running => format!(
            "running since {}",
            step.started_at.map(format_ms).unwrap_or_default()
        ),
        StepStatus::Waiting if crate::runner::finished(snap.run.status) => {
            format!(
                "was waiting for approval when the run was {}",
                snap.run.status
            )
        }
        StepStatus::Waiting => "waiting for approval".into(),
        other => format!(
            "{other} at {}",
            step.ended_at.map(format_ms).unwrap_or_default()
        ),
    };
    format!(
        "{} ({}, {status}, attempt {})",
        line(&step.name),
        step.kind,
        step.attempts
    )
}

/// The run's header lines: id, script, params, status, times, targets.
pub fn render_run(run: &Run, state: &str) -> String {
    let mut text = format!("run {}\n", run.id);
    let _ = writeln!(
        text,
        "  script:   {}",
        line(&run.script.display().to_string())
    );
    if !run.params.is_empty() {
        let params: Vec<String> = run
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", line(v)))
            .collect();
        let _ = writeln!(text, "  params:   {}", params.join(" "));
    }
    let dry = if run.dry_run {
        " (dry run: nothing was changed)"
    } else {
        ""
    };
    let _ = writeln!(text, "  status:   {state}{dry}");
    let by = run
        .started_by()
        .map(|by| format!(" by {}", line(by)))
        .unwrap_or_default();
    let _ = writeln!(
        text,
        "  started:  {}{by}   updated: {}",
        format_ms(run.created_at),
        format_ms(run.updated_at)
    );
    for action in run.actions.iter().skip(1) {
        let detail = action
            .detail
            .as_deref()
            .map(|d| format!(" ({})", line(d)))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "  {:9} {} by {}{detail}",
            format!("{}:", action.action),
            format_ms(action.at),
            line(&action.by)
        );
    }
    for (name, identity) in &run.identities {
        let _ = writeln!(text, "  target:   {} = {identity}", line(name));
    }
    text
}

pub fn log(store: &dyn Store, id: &str, format: Format, json_lines: bool) -> Result<i32> {
    let snap = Snapshot::load(store, id)?;
    if json_lines {
        let mut text = String::new();
        for step in &snap.steps {
            text.push_str(&serde_json::to_string(step).unwrap_or_default());
            text.push('\n');
        }
        emit(&text)?;
        return Ok(exit::SUCCEEDED);
    }
    let value = json!({ "run": snap.run, "records": snap.steps });
    if output::document(format, &value)? {
        return Ok(exit::SUCCEEDED);
    }
    let mut text = render_run(&snap.run, &snap.state());
    for (i, step) in snap.steps.iter().enumerate() {
        text.push_str(&render_record(i + 1, step));
    }
    emit(&text)?;
    Ok(exit::SUCCEEDED)
}

/// One journal record for `ferry log`: numbered by its place in the run
/// (the store's sequence numbers are global and jump), values in full.
pub fn render_record(number: usize, step: &Step) -> String {
    let took = match (step.started_at, step.ended_at) {
        (Some(s), Some(e)) => format_duration((e - s).max(0) as u64),
        _ => "-".into(),
    };
    let when = step.started_at.map(format_ms).unwrap_or_default();
    let mut text = format!(
        "#{number:<4} {when}  {:5}  {:11}  {}  ({took}, attempt {})\n",
        step.kind.as_str(),
        step.status.as_str(),
        line(&step.name),
        step.attempts
    );
    if let Some(value) = step.value.as_ref().filter(|v| !v.is_null()) {
        let _ = writeln!(text, "        value: {value}");
    }
    if let Some(data) = step.data.as_ref().filter(|v| !v.is_null()) {
        let _ = writeln!(text, "        data:  {data}");
    }
    // Guard statistics as sentences too: they are what the step proved.
    for (key, stats) in step.data.iter().filter_map(|d| d.as_object()).flatten() {
        if key.starts_with("guard")
            && let Some(summary) = stats["summary"].as_str()
        {
            let _ = writeln!(
                text,
                "        {key}: {} {}",
                line(stats["target"].as_str().unwrap_or("")),
                line(summary)
            );
        }
    }
    if let Some(error) = &step.error {
        let _ = writeln!(
            text,
            "        error: {}",
            output::block(error, "               ")
        );
    }
    if step.undo != UndoStatus::None {
        let _ = writeln!(
            text,
            "        undo:  {}{}",
            step.undo,
            step.undo_error
                .as_deref()
                .map(|e| format!(": {}", output::block(e, "               ")))
                .unwrap_or_default()
        );
    }
    text
}

/// What to type next, given the run's state and its driver.
pub fn next_command(snap: &Snapshot) -> Option<String> {
    use crate::journal::RunStatus::*;
    let run = &snap.run;
    let id = &run.id;
    if snap.lock.held {
        return Some(format!(
            "wait for its driver (ferry status {id} --watch), or stop it: ferry abort {id} --force"
        ));
    }
    match run.status {
        Paused => match snap.waiting_gate() {
            Some(gate) => Some(format!(
                "ferry approve {id} {0} && ferry resume {id}",
                line(&gate.name)
            )),
            None => Some(format!("ferry resume {id}")),
        },
        Running => Some(format!(
            "ferry resume {id}   (its driver died: the interrupted step runs again; \
             or undo it: ferry rollback {id}; or give up: ferry abort {id})"
        )),
        Failed | Interrupted => Some(format!(
            "ferry resume {id}   (or undo it: ferry rollback {id}; or give up: ferry abort {id})"
        )),
        RollingBack => Some(format!(
            "ferry rollback {id}   (its rollback has begun; resume refuses)"
        )),
        RollbackFailed => Some(format!(
            "fix what the failed undo needs, then: ferry rollback {id}"
        )),
        Aborted => Some(format!(
            "nothing runs it again; undo what it changed with ferry rollback {id}, or remove it: ferry delete {id}"
        )),
        Succeeded | RolledBack => None,
    }
}
