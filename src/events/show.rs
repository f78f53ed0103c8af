//! What each event shows to a person, shared by the terminal and plain
//! sinks: they differ only in whether a start is a live bar or a line.
//! Names, messages and printed text come from scripts and servers: they are
//! escaped here, once for both sinks, so an ANSI escape or a newline in a
//! step name cannot act on the terminal or break a line.

use super::text::escape as esc;
use super::{Event, format_duration, indent, summarize_value};

pub enum Shown {
    /// Something began: a live bar `key` showing `label` on a terminal (a
    /// countdown when `countdown` is `(total_ms, remaining_ms)`), `line` in a pipe.
    Start {
        key: String,
        depth: usize,
        label: String,
        line: String,
        countdown: Option<(u64, u64)>,
    },
    /// A live bar moved on (terminal only).
    Progress {
        key: String,
        message: Option<String>,
        remaining_ms: Option<u64>,
    },
    /// Finished lines, closing the bar `key` if one is open.
    Lines {
        key: Option<String>,
        lines: Vec<String>,
    },
}

fn step_key(step: &str) -> String {
    format!("step:{step}")
}

fn sub_key(kind: &str, step: &Option<String>, what: &str) -> String {
    format!("{kind}:{}:{what}", step.as_deref().unwrap_or(""))
}

fn lines(key: Option<String>, lines: Vec<String>) -> Option<Shown> {
    Some(Shown::Lines { key, lines })
}

/// How `event` of run `run` shows; `None` when it does not (at this verbosity).
pub fn show(run: &str, event: &Event, verbose: bool) -> Option<Shown> {
    match event {
        Event::RunStarted { script, mode } => {
            lines(None, vec![format!("{mode} {run} ({})", esc(script))])
        }
        Event::StepStarted {
            step,
            depth,
            attempt,
        } => {
            let again = if *attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            };
            let label = format!("{}{again}", esc(step));
            Some(Shown::Start {
                key: step_key(step),
                depth: *depth,
                line: format!("{}▶ {label}", indent(*depth)),
                label,
                countdown: None,
            })
        }
        Event::StepReplayed { step, depth } if verbose => lines(
            None,
            vec![format!("{}↷ {} (done before)", indent(*depth), esc(step))],
        ),
        Event::StepCompleted {
            step,
            depth,
            ms,
            value,
        } => {
            let value = summarize_value(value)
                .map(|v| format!(" → {v}"))
                .unwrap_or_default();
            lines(
                Some(step_key(step)),
                vec![format!(
                    "{}✔ {} ({}){value}",
                    indent(*depth),
                    esc(step),
                    format_duration(*ms)
                )],
            )
        }
        Event::StepFailed {
            step,
            depth,
            ms,
            error,
        } => {
            let first = error.lines().next().unwrap_or_default();
            lines(
                Some(step_key(step)),
                vec![format!(
                    "{}✖ {} ({}): {}",
                    indent(*depth),
                    esc(step),
                    format_duration(*ms),
                    esc(first)
                )],
            )
        }
        Event::StepInterrupted { step, depth } => lines(
            Some(step_key(step)),
            vec![format!("{}■ {} interrupted", indent(*depth), esc(step))],
        ),
        Event::Output {
            depth, text, debug, ..
        } if !debug || verbose => lines(
            None,
            text.lines()
                .map(|line| format!("{}{}", indent(*depth + 1), esc(line)))
                .collect(),
        ),
        Event::WaitStarted {
            step,
            depth,
            label,
            total_ms,
            remaining_ms,
        } => Some(Shown::Start {
            key: sub_key("wait", step, label),
            depth: depth + 1,
            label: esc(label),
            line: format!(
                "{}⏳ {}: {} left",
                indent(*depth + 1),
                esc(label),
                format_duration(*remaining_ms)
            ),
            countdown: Some((*total_ms, *remaining_ms)),
        }),
        Event::WaitProgress {
            step,
            label,
            remaining_ms,
        } => Some(Shown::Progress {
            key: sub_key("wait", step, label),
            message: None,
            remaining_ms: Some(*remaining_ms),
        }),
        Event::WaitEnded { step, label } => lines(Some(sub_key("wait", step, label)), vec![]),
        Event::GuardStarted {
            step,
            depth,
            target,
            rate,
        } => Some(Shown::Start {
            key: sub_key("guard", step, target),
            depth: depth + 1,
            label: format!("guard {} at {rate}/s: 0 requests, 0 failures", esc(target)),
            line: format!("{}🛡 guard {} at {rate}/s", indent(*depth + 1), esc(target)),
            countdown: None,
        }),
        Event::GuardProgress {
            step,
            target,
            requests,
            failures,
        } => Some(Shown::Progress {
            key: sub_key("guard", step, target),
            message: Some(format!(
                "guard {}: {requests} requests, {failures} failures",
                esc(target)
            )),
            remaining_ms: None,
        }),
        Event::GuardFinished {
            step,
            depth,
            target,
            ok,
            summary,
            ..
        } => lines(
            Some(sub_key("guard", step, target)),
            vec![format!(
                "{}{} guard {}: {}",
                indent(*depth + 1),
                if *ok { "✔" } else { "✖" },
                esc(target),
                esc(summary)
            )],
        ),
        Event::GateWaiting { gate, message } => lines(
            None,
            vec![format!("⏸ gate {}: {}", esc(gate), esc(message))],
        ),
        Event::UndoStarted { step } => Some(Shown::Start {
            key: format!("undo:{step}"),
            depth: 0,
            label: format!("undo {}", esc(step)),
            line: format!("↶ undo {}", esc(step)),
            countdown: None,
        }),
        Event::UndoCompleted { step, ms } => lines(
            Some(format!("undo:{step}")),
            vec![format!("✔ undo {} ({})", esc(step), format_duration(*ms))],
        ),
        Event::UndoFailed { step, error } => lines(
            Some(format!("undo:{step}")),
            vec![format!("✖ undo {}: {}", esc(step), esc(error))],
        ),
        Event::RunFinished {
            status,
            ms,
            steps_run,
            steps_replayed,
        } => lines(
            None,
            vec![format!(
                "run {run} {status} in {} ({steps_run} steps run, {steps_replayed} replayed)",
                format_duration(*ms)
            )],
        ),
        _ => None,
    }
}
