//! The migration board in text: for runs of the stdlib recipe
//! (`ferry/migrate`), which phase each app reached, read from the step
//! names the recipe journals (`app1: EndpointSlice -> old ingress`,
//! `app1: prove new.<zone>`, ...), with the guard result of each flip. A
//! phase whose step was rolled back (its undo done) does not count.

use crate::journal::{Step, StepKind, StepStatus, UndoStatus};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const PHASES: [&str; 4] = ["bridged", "prepared", "cut over", "finalized"];

/// The phase a recipe step completes, if it is one of those steps.
fn phase_of(rest: &str) -> Option<usize> {
    match rest {
        "EndpointSlice -> old ingress" => Some(0),
        r if r.starts_with("ExternalName -> old.") => Some(0),
        r if r.starts_with("prove new.") => Some(1),
        "EndpointSlice -> new ingress" => Some(2),
        r if r.starts_with("ExternalName -> new.") => Some(2),
        "retire in old" | "delete from old" => Some(3),
        _ => None,
    }
}

/// Per app: for each phase reached, its guard (or `true` without one).
pub fn apps(steps: &[Step]) -> BTreeMap<String, [Option<Value>; 4]> {
    let mut apps: BTreeMap<String, [Option<Value>; 4]> = BTreeMap::new();
    for step in steps.iter().filter(|s| s.kind == StepKind::Step) {
        let Some((app, rest)) = step.name.split_once(": ") else {
            continue;
        };
        let Some(phase) = phase_of(rest) else {
            continue;
        };
        // Undone when this step, or an earlier one of the app (the route a
        // proof went through), was rolled back.
        let prefix = format!("{app}: ");
        let undone = steps.iter().any(|s| {
            s.seq <= step.seq && s.undo == UndoStatus::Done && s.name.starts_with(&prefix)
        });
        let entry = apps.entry(app.to_owned()).or_default();
        if step.status == StepStatus::Completed && !undone {
            let guard = step.data.as_ref().and_then(|d| d.get("guard")).cloned();
            entry[phase] = Some(guard.unwrap_or(Value::Bool(true)));
        }
    }
    apps.retain(|_, phases| phases.iter().any(Option::is_some));
    apps
}

/// `apps` as JSON: `{ app: { bridged: {failures, requests} | true | null, ... } }`.
pub fn to_json(steps: &[Step]) -> Value {
    let map: serde_json::Map<String, Value> = apps(steps)
        .into_iter()
        .map(|(app, phases)| {
            let row: serde_json::Map<String, Value> = PHASES
                .iter()
                .zip(phases)
                .map(|(name, reached)| {
                    let cell = match reached {
                        Some(Value::Bool(_)) => json!(true),
                        Some(g) => json!({ "requests": g["requests"], "failures": g["failures"], "last_path": g["last_path"] }),
                        None => Value::Null,
                    };
                    ((*name).to_owned(), cell)
                })
                .collect();
            (app, row.into())
        })
        .collect();
    map.into()
}

/// The table under `ferry status`, or nothing for runs of other scripts.
pub fn render(steps: &[Step]) -> String {
    let apps = apps(steps);
    if apps.is_empty() {
        return String::new();
    }
    let width = apps
        .keys()
        .map(|a| a.chars().count())
        .max()
        .unwrap_or(3)
        .max(3);
    let mut text = format!("  apps:     {:width$}", "app");
    for phase in PHASES {
        let _ = write!(text, "  {phase:<14}");
    }
    text = text.trim_end().to_owned();
    text.push('\n');
    for (app, phases) in apps {
        let mut row = format!("            {:width$}", super::output::line(&app));
        for reached in phases {
            let cell = match reached {
                None => "-".to_owned(),
                Some(Value::Bool(_)) => "✔".to_owned(),
                Some(g) => format!(
                    "✔ {}/{} failed",
                    g["failures"].as_u64().unwrap_or(0),
                    g["requests"].as_u64().unwrap_or(0)
                ),
            };
            let _ = write!(row, "  {cell:<14}");
        }
        text.push_str(row.trim_end());
        text.push('\n');
    }
    text
}
