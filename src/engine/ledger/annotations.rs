//! What primitives attach to the attempt of the step they run in (guard
//! statistics), and what a new attempt keeps of the previous one's data.

use super::Ledger;
use crate::engine::frames;
use crate::journal::{Step, StepKind, StepStatus};
use serde_json::Value;

/// Annotations: data primitives attach to the attempt they run in.
impl Ledger {
    /// Attaches `key: value` to the innermost running step's attempt,
    /// written when it ends. Returns false outside a step.
    pub fn annotate(&self, key: &str, value: Value) -> bool {
        let Some(step) = frames::current() else {
            return false;
        };
        let mut state = self.state();
        let notes = state.annotations.entry(step).or_default();
        notes.retain(|(k, _)| k != key);
        notes.push((key.to_owned(), value));
        true
    }

    /// Attaches a guard's statistics to the innermost step's attempt: `guard`
    /// for its first guard, `guard#2`, `guard#3`... for the next ones.
    pub fn annotate_guard(&self, stats: Value) -> bool {
        let Some(step) = frames::current() else {
            return false;
        };
        let mut state = self.state();
        let notes = state.annotations.entry(step).or_default();
        let n = notes.iter().filter(|(k, _)| k.starts_with("guard")).count() + 1;
        let key = if n == 1 {
            "guard".to_owned()
        } else {
            format!("guard#{n}")
        };
        notes.push((key, stats));
        true
    }

    /// Merges the attempt's annotations into its record's data.
    pub(super) fn take_annotations(&self, step: &mut Step) {
        let Some(notes) = self.state().annotations.remove(&step.name) else {
            return;
        };
        let mut data = match step.data.take() {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        data.extend(notes);
        step.data = Some(Value::Object(data));
    }
}

/// What a new attempt keeps of the previous attempt's data. A step's new
/// attempt observes afresh: the previous attempt (its number, how it ended,
/// its guard statistics) joins `previous_attempts`, and the new attempt's
/// own guard keys start empty. Other kinds keep their data (a timer's deadline).
pub(super) fn carry_over(previous: &Step) -> Option<Value> {
    if previous.kind != StepKind::Step {
        return previous.data.clone();
    }
    let mut map = match &previous.data {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let mut history = match map.remove("previous_attempts") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let mut entry = serde_json::Map::new();
    entry.insert("attempt".into(), previous.attempts.into());
    // A record still running was stopped by the process ending (kill -9).
    let ended = match previous.status {
        StepStatus::Running => "stopped",
        status => status.as_str(),
    };
    entry.insert("status".into(), ended.into());
    let guards: Vec<String> = map
        .keys()
        .filter(|k| k.starts_with("guard"))
        .cloned()
        .collect();
    for key in guards {
        if let Some(stats) = map.remove(&key) {
            entry.insert(key, stats);
        }
    }
    history.push(Value::Object(entry));
    map.insert("previous_attempts".into(), Value::Array(history));
    Some(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{StepKind, StepStatus};

    #[test]
    fn a_new_attempt_keeps_the_history_of_the_previous_ones() {
        let mut first = Step::new("flip", "a.rhai:1:1", StepKind::Step);
        first.attempts = 1;
        first.status = StepStatus::Interrupted;
        first.data = Some(serde_json::json!({ "guard": { "requests": 6 } }));
        let carried = carry_over(&first).unwrap_or_default();
        assert_eq!(
            carried,
            serde_json::json!({ "previous_attempts": [
                { "attempt": 1, "status": "interrupted", "guard": { "requests": 6 } }
            ] })
        );
        let mut second = first.clone();
        second.attempts = 2;
        second.status = StepStatus::Running;
        let mut data = carried.as_object().cloned().unwrap_or_default();
        data.insert("guard".into(), serde_json::json!({ "requests": 300 }));
        second.data = Some(Value::Object(data));
        let carried = carry_over(&second).unwrap_or_default();
        assert_eq!(carried["previous_attempts"][1]["status"], "stopped");
        assert_eq!(carried["previous_attempts"][1]["guard"]["requests"], 300);
        assert!(carried.get("guard").is_none());
    }
}
