//! Live progress on a terminal: a spinner line per running step with its
//! elapsed time, a countdown bar for waits, then a ✔/✖ line with the
//! duration. Finished lines are printed above the live bars, so a long run
//! does not keep thousands of bars alive.

use super::{Event, EventSink, format_duration, indent, summarize_value};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub struct ProgressSink {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    verbose: bool,
}

impl ProgressSink {
    pub fn new(verbose: bool) -> Self {
        ProgressSink {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
            verbose,
        }
    }

    fn println(&self, text: String) {
        let _ = self.multi.println(text);
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        self.bars.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(&self, key: String, bar: ProgressBar) {
        let bar = self.multi.add(bar);
        bar.enable_steady_tick(Duration::from_millis(100));
        if let Some(old) = self.bars().insert(key, bar) {
            old.finish_and_clear();
        }
    }

    fn end(&self, key: &str, line: Option<String>) {
        if let Some(bar) = self.bars().remove(key) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        if let Some(line) = line {
            self.println(line);
        }
    }
}

fn spinner(depth: usize, message: String) -> ProgressBar {
    let style = ProgressStyle::with_template(&format!(
        "{}{{spinner:.cyan}} {{msg}} {{elapsed:.dim}}",
        indent(depth)
    ))
    .unwrap_or_else(|_| ProgressStyle::default_spinner());
    ProgressBar::new_spinner()
        .with_style(style)
        .with_message(message)
}

fn countdown(depth: usize, label: &str, total_ms: u64, remaining_ms: u64) -> ProgressBar {
    let style = ProgressStyle::with_template(&format!(
        "{}⏳ {{msg}} [{{bar:30.cyan/blue}}] {{prefix}} left",
        indent(depth)
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(total_ms.max(1))
        .with_style(style)
        .with_message(label.to_owned());
    bar.set_position(total_ms.saturating_sub(remaining_ms));
    bar.set_prefix(format_duration(remaining_ms));
    bar
}

impl EventSink for ProgressSink {
    fn emit(&self, run: &str, event: &Event) {
        match event {
            Event::RunStarted { script, mode } => self.println(format!("{mode} {run} ({script})")),
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
                self.start(
                    format!("step:{step}"),
                    spinner(*depth, format!("{step}{again}")),
                );
            }
            Event::StepReplayed { step, depth } if self.verbose => {
                self.println(format!("{}↷ {step} (done before)", indent(*depth)))
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
                let line = format!(
                    "{}✔ {step} ({}){value}",
                    indent(*depth),
                    format_duration(*ms)
                );
                self.end(&format!("step:{step}"), Some(line));
            }
            Event::StepFailed {
                step,
                depth,
                ms,
                error,
            } => {
                let first = error.lines().next().unwrap_or_default();
                let line = format!(
                    "{}✖ {step} ({}): {first}",
                    indent(*depth),
                    format_duration(*ms)
                );
                self.end(&format!("step:{step}"), Some(line));
            }
            Event::StepInterrupted { step, depth } => self.end(
                &format!("step:{step}"),
                Some(format!("{}■ {step} interrupted", indent(*depth))),
            ),
            Event::Output {
                depth, text, debug, ..
            } if !debug || self.verbose => {
                for line in text.lines() {
                    self.println(format!("{}{line}", indent(*depth + 1)));
                }
            }
            Event::WaitStarted {
                step,
                depth,
                label,
                total_ms,
                remaining_ms,
            } => {
                let key = format!("wait:{}:{label}", step.as_deref().unwrap_or(""));
                self.start(key, countdown(*depth + 1, label, *total_ms, *remaining_ms));
            }
            Event::WaitProgress {
                step,
                label,
                remaining_ms,
            } => {
                let key = format!("wait:{}:{label}", step.as_deref().unwrap_or(""));
                if let Some(bar) = self.bars().get(&key) {
                    bar.set_position(bar.length().unwrap_or(0).saturating_sub(*remaining_ms));
                    bar.set_prefix(format_duration(*remaining_ms));
                }
            }
            Event::WaitEnded { step, label } => self.end(
                &format!("wait:{}:{label}", step.as_deref().unwrap_or("")),
                None,
            ),
            Event::GuardStarted {
                step,
                depth,
                target,
                rate,
            } => self.start(
                format!("guard:{}:{target}", step.as_deref().unwrap_or("")),
                spinner(
                    *depth + 1,
                    format!("guard {target} at {rate}/s: 0 requests, 0 failures"),
                ),
            ),
            Event::GuardProgress {
                step,
                target,
                requests,
                failures,
            } => {
                let key = format!("guard:{}:{target}", step.as_deref().unwrap_or(""));
                if let Some(bar) = self.bars().get(&key) {
                    bar.set_message(format!(
                        "guard {target}: {requests} requests, {failures} failures"
                    ));
                }
            }
            Event::GuardFinished {
                step,
                depth,
                target,
                ok,
                summary,
                ..
            } => self.end(
                &format!("guard:{}:{target}", step.as_deref().unwrap_or("")),
                Some(format!(
                    "{}{} guard {target}: {summary}",
                    indent(*depth + 1),
                    if *ok { "✔" } else { "✖" }
                )),
            ),
            Event::GateWaiting { gate, message } => {
                self.println(format!("⏸ gate {gate}: {message}"))
            }
            Event::UndoStarted { step } => {
                self.start(format!("undo:{step}"), spinner(0, format!("undo {step}")))
            }
            Event::UndoCompleted { step, ms } => self.end(
                &format!("undo:{step}"),
                Some(format!("✔ undo {step} ({})", format_duration(*ms))),
            ),
            Event::UndoFailed { step, error } => self.end(
                &format!("undo:{step}"),
                Some(format!("✖ undo {step}: {error}")),
            ),
            Event::RunFinished {
                status,
                ms,
                steps_run,
                steps_replayed,
            } => self.println(format!(
                "run {run} {status} in {} ({steps_run} steps run, {steps_replayed} replayed)",
                format_duration(*ms)
            )),
            _ => {}
        }
    }

    fn finish(&self) {
        for (_, bar) in self.bars().drain() {
            bar.finish_and_clear();
        }
    }
}
