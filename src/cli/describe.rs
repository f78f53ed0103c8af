//! `ferry describe RUN [STEP]`: everything the journal holds about a run or
//! one of its records, untruncated and pretty-printed, for when `status`
//! and `log` (one line per field) are not enough: a step's whole value, its
//! error with the caret, every attempt's timings and guard statistics.

use super::args::Format;
use super::inspect::{Snapshot, render_run, render_status};
use super::output::{self, emit, line};
use crate::error::{Error, Result, exit};
use crate::events::format_duration;
use crate::journal::{Step, Store, UndoStatus, format_ms};
use serde_json::json;
use std::fmt::Write;

pub fn describe(store: &dyn Store, id: &str, step: Option<&str>, format: Format) -> Result<i32> {
    let snap = Snapshot::load(store, id)?;
    let records: Vec<&Step> = match step {
        None => snap.steps.iter().collect(),
        Some(name) => {
            let found: Vec<&Step> = snap.steps.iter().filter(|s| s.name == name).collect();
            if found.is_empty() {
                return Err(Error::UnknownStep {
                    run: snap.run.id.clone(),
                    step: name.to_owned(),
                    near: near(name, &snap.steps),
                });
            }
            found
        }
    };
    let value = match step {
        None => {
            json!({ "run": snap.run, "state": snap.state(), "records": records, "gates": snap.gates })
        }
        Some(_) => json!({ "run": snap.run.id, "records": records }),
    };
    if output::document(format, &value)? {
        return Ok(exit::SUCCEEDED);
    }
    let mut text = match step {
        None => {
            let mut text = render_status(&snap);
            let _ = writeln!(text, "  hash:     {}", snap.run.script_hash);
            for lib in &snap.run.libs {
                let _ = writeln!(text, "  lib:      {}", line(&lib.display().to_string()));
            }
            if !snap.run.environment.source.is_empty() {
                let _ = writeln!(text, "  profile:  {}", line(&snap.run.environment.source));
            }
            for label in snap.run.sources.keys() {
                let _ = writeln!(text, "  source:   {}", line(label));
            }
            text
        }
        Some(_) => render_run(&snap.run, &snap.state()),
    };
    for record in records {
        text.push('\n');
        text.push_str(&render(record));
    }
    emit(&text)?;
    Ok(exit::SUCCEEDED)
}

/// Names of records close to `name`, for "did you mean".
fn near(name: &str, steps: &[Step]) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = steps
        .iter()
        .map(|s| (strsim::jaro_winkler(name, &s.name), s.name.as_str()))
        .filter(|(score, _)| *score > 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut names: Vec<String> = scored.into_iter().map(|(_, n)| line(n)).collect();
    names.dedup();
    names.truncate(3);
    names
}

/// One record in full.
fn render(step: &Step) -> String {
    let mut text = format!("{} `{}`\n", step.kind, line(&step.name));
    let field = |text: &mut String, key: &str, value: &str| {
        let _ = writeln!(text, "{}", format!("  {key:<10}{value}").trim_end());
    };
    field(&mut text, "status:", step.status.as_str());
    field(&mut text, "position:", &line(&step.position));
    if let Some(parent) = &step.parent {
        field(&mut text, "parent:", &line(parent));
    }
    field(&mut text, "attempts:", &step.attempts.to_string());
    if let Some(at) = step.started_at {
        field(&mut text, "started:", &format_ms(at));
    }
    if let Some(at) = step.ended_at {
        let took = step
            .started_at
            .map(|s| format!(" (took {})", format_duration((at - s).max(0) as u64)))
            .unwrap_or_default();
        field(&mut text, "ended:", &format!("{}{took}", format_ms(at)));
    }
    if step.undo != UndoStatus::None {
        field(&mut text, "undo:", step.undo.as_str());
    }
    if let Some(error) = &step.undo_error {
        field(&mut text, "undo error:", "");
        text.push_str(&indent(error));
    }
    if let Some(error) = &step.error {
        field(&mut text, "error:", "");
        text.push_str(&indent(error));
    }
    if let Some(value) = &step.value {
        field(&mut text, "value:", "");
        text.push_str(&indent(&pretty(value)));
    }
    if let Some(data) = step.data.as_ref().and_then(|d| d.as_object()) {
        for (key, value) in data {
            if key.starts_with("guard") {
                let _ = writeln!(text, "  {}:", line(key));
                if let Some(target) = value["target"].as_str() {
                    let _ = writeln!(text, "    target:  {}", line(target));
                }
                if let Some(summary) = value["summary"].as_str() {
                    let _ = writeln!(text, "    result:  {}", line(summary));
                }
                // A guarded step's value is usually these statistics: shown once.
                if step.value.as_ref() != Some(value) {
                    text.push_str(&indent(&pretty(value)));
                }
            } else {
                let _ = writeln!(text, "  {}:", line(key));
                text.push_str(&indent(&pretty(value)));
            }
        }
    } else if let Some(data) = &step.data {
        field(&mut text, "data:", "");
        text.push_str(&indent(&pretty(data)));
    }
    text
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// Lines indented under a field, each made safe to show.
fn indent(text: &str) -> String {
    let mut out = String::new();
    for l in text.lines() {
        let _ = writeln!(out, "    {}", line(l));
    }
    out
}
