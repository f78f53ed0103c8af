//! Plain lines for logs and pipes (stdout is not a terminal).

use super::{Event, EventSink, format_duration, indent, summarize_value};
use std::io::Write;

pub struct PlainSink {
    pub verbose: bool,
}

impl PlainSink {
    fn line(&self, text: String) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }
}

impl EventSink for PlainSink {
    fn emit(&self, run: &str, event: &Event) {
        match event {
            Event::RunStarted { script, mode } => self.line(format!("{mode} {run} ({script})")),
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
                self.line(format!("{}▶ {step}{again}", indent(*depth)));
            }
            Event::StepReplayed { step, depth } if self.verbose => {
                self.line(format!("{}↷ {step} (done before)", indent(*depth)))
            }
            Event::StepCompleted {
                step,
                depth,
                ms,
                value,
            } => {
                let value = summarize_value(value)
                    .map(|v| format!(" → {v}"))
                    .unwrap_or_default();
                self.line(format!(
                    "{}✔ {step} ({}){value}",
                    indent(*depth),
                    format_duration(*ms)
                ));
            }
            Event::StepFailed {
                step,
                depth,
                ms,
                error,
            } => {
                let first = error.lines().next().unwrap_or_default();
                self.line(format!(
                    "{}✖ {step} ({}): {first}",
                    indent(*depth),
                    format_duration(*ms)
                ));
            }
            Event::StepInterrupted { step, depth } => {
                self.line(format!("{}■ {step} interrupted", indent(*depth)))
            }
            Event::Output {
                depth, text, debug, ..
            } if !debug || self.verbose => {
                for line in text.lines() {
                    self.line(format!("{}{line}", indent(*depth + 1)));
                }
            }
            Event::WaitStarted {
                depth,
                label,
                remaining_ms,
                ..
            } => self.line(format!(
                "{}⏳ {label}: {} left",
                indent(*depth + 1),
                format_duration(*remaining_ms)
            )),
            Event::GuardStarted {
                depth,
                target,
                rate,
                ..
            } => self.line(format!(
                "{}🛡 guard {target} at {rate}/s",
                indent(*depth + 1)
            )),
            Event::GuardFinished {
                depth,
                target,
                ok,
                summary,
                ..
            } => self.line(format!(
                "{}{} guard {target}: {summary}",
                indent(*depth + 1),
                if *ok { "✔" } else { "✖" }
            )),
            Event::GateWaiting { gate, message } => self.line(format!("⏸ gate {gate}: {message}")),
            Event::UndoStarted { step } => self.line(format!("↶ undo {step}")),
            Event::UndoCompleted { step, ms } => {
                self.line(format!("✔ undo {step} ({})", format_duration(*ms)))
            }
            Event::UndoFailed { step, error } => self.line(format!("✖ undo {step}: {error}")),
            Event::RunFinished {
                status,
                ms,
                steps_run,
                steps_replayed,
            } => self.line(format!(
                "run {run} {status} in {} ({steps_run} steps run, {steps_replayed} replayed)",
                format_duration(*ms)
            )),
            _ => {}
        }
    }
}
