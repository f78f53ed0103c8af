//! `ferry status`, `ferry runs`, `ferry log`: read-only views of the journal.

use crate::error::{Error, Result, exit};
use crate::events::{format_duration, summarize_value};
use crate::journal::{Run, Step, StepKind, StepStatus, Store, UndoStatus, format_ms};

pub fn runs(store: &dyn Store, json: bool) -> Result<i32> {
    let runs = store.runs()?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&runs).unwrap_or_default()
        );
        return Ok(exit::SUCCEEDED);
    }
    if runs.is_empty() {
        println!("no runs in {}", store.location().display());
        return Ok(exit::SUCCEEDED);
    }
    let width = runs.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    println!("{:width$}  {:11}  {:20}  SCRIPT", "ID", "STATUS", "UPDATED");
    for run in &runs {
        println!(
            "{:width$}  {:11}  {:20}  {}",
            run.id,
            run.status.as_str(),
            format_ms(run.updated_at),
            run.script.display()
        );
    }
    Ok(exit::SUCCEEDED)
}

pub fn status(store: &dyn Store, id: Option<&str>, json: bool) -> Result<i32> {
    let run = match id {
        Some(id) => store.run(id)?.ok_or_else(|| unknown(store, id))?,
        None => match store.runs()?.into_iter().next() {
            Some(run) => run,
            None => {
                println!("no runs in {}", store.location().display());
                return Ok(exit::SUCCEEDED);
            }
        },
    };
    let steps = store.steps(&run.id)?;
    let gates = store.gates(&run.id)?;
    if json {
        let value = serde_json::json!({ "run": run, "steps": steps, "gates": gates });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(exit::SUCCEEDED);
    }
    print_run(&run);
    let count = |status: StepStatus| {
        steps
            .iter()
            .filter(|s| s.kind == StepKind::Step && s.status == status)
            .count()
    };
    println!(
        "  steps:    {} completed, {} failed, {} interrupted, {} running",
        count(StepStatus::Completed),
        count(StepStatus::Failed),
        count(StepStatus::Interrupted),
        count(StepStatus::Running)
    );
    for gate in &gates {
        match (&gate.approved_at, &gate.approved_by) {
            (Some(at), by) => println!(
                "  gate:     {} approved by {} at {}",
                gate.name,
                by.as_deref().unwrap_or("?"),
                format_ms(*at)
            ),
            (None, _) => println!("  gate:     {} WAITING: {}", gate.name, gate.message),
        }
    }
    if let Some(step) = steps.iter().rev().find(|s| s.status == StepStatus::Failed) {
        println!(
            "  failed:   {}: {}",
            step.name,
            step.error.as_deref().unwrap_or("")
        );
    }
    if let Some(step) = steps.iter().find(|s| s.undo == UndoStatus::Failed) {
        println!(
            "  undo failed: {}: {}",
            step.name,
            step.undo_error.as_deref().unwrap_or("")
        );
    }
    if run.status.in_rollback() {
        let undone = steps.iter().filter(|s| s.undo == UndoStatus::Done).count();
        let left = steps
            .iter()
            .filter(|s| {
                matches!(
                    s.undo,
                    UndoStatus::Pending | UndoStatus::Running | UndoStatus::Failed
                )
            })
            .count();
        println!("  undos:    {undone} done, {left} to go");
    }
    if let Some(error) = &run.error {
        println!("  error:    {error}");
    }
    if let Some(next) = next_command(&run, &gates) {
        println!("  next:     {next}");
    }
    Ok(exit::SUCCEEDED)
}

pub fn log(store: &dyn Store, id: &str, json: bool) -> Result<i32> {
    let run = store.run(id)?.ok_or_else(|| unknown(store, id))?;
    let steps = store.steps(&run.id)?;
    if json {
        for step in &steps {
            println!("{}", serde_json::to_string(step).unwrap_or_default());
        }
        return Ok(exit::SUCCEEDED);
    }
    print_run(&run);
    for step in &steps {
        print_step(step);
    }
    Ok(exit::SUCCEEDED)
}

fn unknown(store: &dyn Store, id: &str) -> Error {
    Error::UnknownRun {
        id: id.to_owned(),
        state: store.location().to_owned(),
    }
}

fn print_run(run: &Run) {
    println!("run {}", run.id);
    println!("  script:   {}", run.script.display());
    if !run.params.is_empty() {
        let params: Vec<String> = run.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  params:   {}", params.join(" "));
    }
    let dry = if run.dry_run {
        " (dry run: nothing was changed)"
    } else {
        ""
    };
    println!("  status:   {}{dry}", run.status);
    println!(
        "  started:  {}   updated: {}",
        format_ms(run.created_at),
        format_ms(run.updated_at)
    );
    for (name, identity) in &run.identities {
        println!("  target:   {name} = {identity}");
    }
}

fn print_step(step: &Step) {
    let took = match (step.started_at, step.ended_at) {
        (Some(s), Some(e)) => format_duration((e - s).max(0) as u64),
        _ => "-".into(),
    };
    let when = step.started_at.map(format_ms).unwrap_or_default();
    println!(
        "#{:<4} {when}  {:5}  {:11}  {}  ({took}, attempt {})",
        step.seq,
        step.kind.as_str(),
        step.status.as_str(),
        step.name,
        step.attempts
    );
    if let Some(value) = step.value.as_ref().and_then(summarize_value) {
        println!("        value: {value}");
    }
    if let Some(data) = step.data.as_ref().and_then(summarize_value) {
        println!("        data:  {data}");
    }
    // Guard statistics in full: they are what the step proved.
    for (key, stats) in step.data.iter().filter_map(|d| d.as_object()).flatten() {
        if key.starts_with("guard")
            && let Some(summary) = stats["summary"].as_str()
        {
            println!(
                "        {key}: {} {summary}",
                stats["target"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(error) = &step.error {
        println!("        error: {error}");
    }
    if step.undo != UndoStatus::None {
        println!(
            "        undo:  {}{}",
            step.undo,
            step.undo_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
}

fn next_command(run: &Run, gates: &[crate::journal::Gate]) -> Option<String> {
    use crate::journal::RunStatus::*;
    match run.status {
        Paused => match gates.iter().find(|g| g.approved_at.is_none()) {
            Some(gate) => Some(format!(
                "ferry approve {0} {1} && ferry resume {0}",
                run.id, gate.name
            )),
            None => Some(format!("ferry resume {}", run.id)),
        },
        Failed | Interrupted | Running => Some(format!(
            "ferry resume {}   (or undo it: ferry rollback {})",
            run.id, run.id
        )),
        RollingBack => Some(format!(
            "ferry rollback {}   (its rollback has begun; resume refuses)",
            run.id
        )),
        RollbackFailed => Some(format!(
            "fix what the failed undo needs, then: ferry rollback {}",
            run.id
        )),
        Succeeded | RolledBack | Aborted => None,
    }
}
