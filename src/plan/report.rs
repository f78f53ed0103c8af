//! The plan as people and machines read it: the steps in order, under
//! each one what it would create, change or delete (field by field, the
//! live or planned object against the server's dry-run answer), what it
//! would wait for, and a summary.

use super::{Action, Entry, PlannedStep};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;

/// Metadata that changes on every write; not what a script means.
const NOISE: &[&str] = &[
    "metadata.managedFields",
    "metadata.resourceVersion",
    "metadata.generation",
    "metadata.creationTimestamp",
    "metadata.uid",
    "status",
    "metadata.annotations.ferry.dev/cluster-ip-spec",
];

fn render(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(119).collect::<String>())
    } else {
        text
    }
}

/// Lines `~ path: old → new`, `+ path: value`, `- path: value`.
pub fn diff(before: &Value, after: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    walk("", before, after, &mut lines);
    lines
}

fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<String>) {
    if NOISE.contains(&path) || before == after {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, bv) in b {
                match a.get(k) {
                    Some(av) => walk(&join(k), bv, av, out),
                    None if !NOISE.contains(&join(k).as_str()) => {
                        out.push(format!("- {}: {}", join(k), render(bv)))
                    }
                    None => {}
                }
            }
            for (k, av) in a {
                if !b.contains_key(k) && !NOISE.contains(&join(k).as_str()) {
                    match av {
                        // A new map reads field by field, like a changed one.
                        Value::Object(m) if !m.is_empty() => {
                            walk(&join(k), &Value::Object(Default::default()), av, out)
                        }
                        _ => out.push(format!("+ {}: {}", join(k), render(av))),
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                walk(&format!("{path}[{i}]"), bv, av, out);
            }
        }
        _ => out.push(format!("~ {path}: {} → {}", render(before), render(after))),
    }
}

/// Counts over the whole plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub steps: usize,
    pub created: usize,
    pub changed: usize,
    pub deleted: usize,
    /// Record sets created, changed or deleted.
    pub records: usize,
    pub gates: usize,
    /// Steps whose change runs under a guard.
    pub guarded: usize,
    pub waits: usize,
}

/// Everything a plan saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub steps: Vec<PlannedStep>,
    pub summary: Summary,
}

impl Report {
    pub fn new(steps: Vec<PlannedStep>) -> Report {
        let mut summary = Summary {
            steps: steps
                .iter()
                .filter(|s| s.state != "gate" && s.state != "script")
                .count(),
            ..Summary::default()
        };
        for step in &steps {
            if step
                .entries
                .iter()
                .any(|e| matches!(e, Entry::Guard { .. }))
            {
                summary.guarded += 1;
            }
        }
        for entry in steps.iter().flat_map(|s| &s.entries) {
            match entry {
                Entry::Object { action, .. } => match action {
                    Action::Create => summary.created += 1,
                    Action::Change => summary.changed += 1,
                    Action::Delete => summary.deleted += 1,
                },
                Entry::Record { .. } => summary.records += 1,
                Entry::Gate { .. } => summary.gates += 1,
                Entry::Wait { .. } => summary.waits += 1,
                Entry::Guard { .. } | Entry::Note { .. } => {}
            }
        }
        Report { steps, summary }
    }

    /// The step that stopped the plan, with its error.
    pub fn failure(&self) -> Option<&PlannedStep> {
        self.steps.iter().find(|s| s.error.is_some())
    }

    /// The plan for a terminal or a file.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            if step.state == "script" {
                for entry in &step.entries {
                    entry_text(&mut out, entry, "  ");
                }
                continue;
            }
            let indent = "  ".repeat(step.depth.saturating_sub(1));
            let mark = match (step.state, &step.error) {
                (_, Some(_)) => "✘",
                ("gate", _) => "⏸",
                ("replayed", _) => "=",
                ("undo", _) => "↩",
                _ if step
                    .entries
                    .iter()
                    .any(|e| matches!(e, Entry::Object { .. } | Entry::Record { .. })) =>
                {
                    "~"
                }
                _ => "·",
            };
            let what = match step.state {
                "gate" => format!("gate {}", step.name),
                "replayed" => format!("{} (done: replayed from the journal)", step.name),
                "undo" => format!("undo {}", step.name),
                _ => step.name.clone(),
            };
            let _ = writeln!(out, "{indent}{mark} {what}");
            let inner = format!("{indent}    ");
            for entry in &step.entries {
                entry_text(&mut out, entry, &inner);
            }
            if let Some(error) = &step.error {
                for line in error.lines() {
                    let _ = writeln!(out, "{inner}{line}");
                }
            }
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "\nPlan: {} to create, {} to change, {} to delete; {} DNS record set(s); {} gate(s); {} guarded flip(s); {} wait(s) not awaited; {} step(s).",
            s.created, s.changed, s.deleted, s.records, s.gates, s.guarded, s.waits, s.steps
        );
        out
    }
}

/// Fields of a new object the server allocates.
const ALLOCATED: &[&str] = &["+ spec.clusterIP", "+ spec.clusterIPs"];

fn entry_text(out: &mut String, entry: &Entry, indent: &str) {
    let verb = |a: &Action| match a {
        Action::Create => "+ create",
        Action::Change => "~ change",
        Action::Delete => "- delete",
    };
    match entry {
        Entry::Object {
            action,
            cluster,
            object,
            diff,
        } => {
            let _ = writeln!(
                out,
                "{indent}{} {object} on cluster `{cluster}`",
                verb(action)
            );
            if *action != Action::Create {
                for line in diff {
                    let _ = writeln!(out, "{indent}    {line}");
                }
            } else {
                // A new object's every field is noise; what it is matters.
                for line in diff
                    .iter()
                    .filter(|l| l.starts_with("+ spec") || l.starts_with("+ metadata.labels"))
                {
                    // What the server allocates on the real write, not the dry run's pick.
                    let line = match line.split_once(": ") {
                        Some((field, _)) if ALLOCATED.contains(&field) => {
                            format!("{field}: (known after the run)")
                        }
                        _ => line.clone(),
                    };
                    let _ = writeln!(out, "{indent}    {line}");
                }
            }
        }
        Entry::Record {
            action,
            zone,
            record,
            diff,
        } => {
            let _ = writeln!(
                out,
                "{indent}{} record {record} in zone `{zone}`",
                verb(action)
            );
            for line in diff {
                let _ = writeln!(out, "{indent}    {line}");
            }
        }
        Entry::Wait { what, now } => {
            let now = now
                .as_deref()
                .map(|n| format!(" (now: {n})"))
                .unwrap_or_default();
            let _ = writeln!(out, "{indent}… would wait for {what}{now}");
        }
        Entry::Guard {
            target,
            rate,
            max_failures,
        } => {
            let _ = writeln!(
                out,
                "{indent}⛨ guarded: {target} at {rate}/s, at most {max_failures} failure(s)"
            );
        }
        Entry::Gate { name, message } => {
            let _ = writeln!(
                out,
                "{indent}⏸ stops for approval at gate `{name}`: {message}"
            );
        }
        Entry::Note { text } => {
            let _ = writeln!(out, "{indent}! {text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_conversion_reads_as_what_changes() {
        let before = json!({"metadata": {"name": "app1", "resourceVersion": "1"},
            "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.5", "selector": {"app": "app1"}, "ports": [{"port": 80}]}});
        let after = json!({"metadata": {"name": "app1", "resourceVersion": "2"},
            "spec": {"type": "ExternalName", "externalName": "old.zone", "ports": [{"port": 80}]}});
        let mut lines = diff(&before, &after);
        lines.sort();
        assert_eq!(
            lines,
            vec![
                "+ spec.externalName: \"old.zone\"",
                "- spec.clusterIP: \"10.0.0.5\"",
                "- spec.selector: {\"app\":\"app1\"}",
                "~ spec.type: \"ClusterIP\" → \"ExternalName\"",
            ]
        );
        assert!(diff(&before, &before).is_empty());
    }
}
