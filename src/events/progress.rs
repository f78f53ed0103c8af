//! Live progress on a terminal: a spinner line per running step with its
//! elapsed time, a countdown bar for waits, then a ✔/✖ line with the
//! duration. Finished lines are printed above the live bars, so a long run
//! does not keep thousands of bars alive.

use super::show::{Shown, show};
use super::{Event, EventSink, format_duration, indent};
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

    fn end(&self, key: &str) {
        if let Some(bar) = self.bars().remove(key) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
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
        match show(run, event, self.verbose) {
            Some(Shown::Start {
                key,
                depth,
                label,
                countdown,
                ..
            }) => {
                let bar = match countdown {
                    Some((total, remaining)) => self::countdown(depth, &label, total, remaining),
                    None => spinner(depth, label),
                };
                self.start(key, bar);
            }
            Some(Shown::Progress {
                key,
                message,
                remaining_ms,
            }) => {
                if let Some(bar) = self.bars().get(&key) {
                    if let Some(message) = message {
                        bar.set_message(message);
                    }
                    if let Some(remaining) = remaining_ms {
                        bar.set_position(bar.length().unwrap_or(0).saturating_sub(remaining));
                        bar.set_prefix(format_duration(remaining));
                    }
                }
            }
            Some(Shown::Lines {
                key: Some(key),
                lines,
            }) => {
                self.end(&key);
                lines.into_iter().for_each(|l| self.println(l));
            }
            Some(Shown::Lines { key: None, lines }) => {
                lines.into_iter().for_each(|l| self.println(l))
            }
            None => {}
        }
    }

    fn finish(&self) {
        for (_, bar) in self.bars().drain() {
            bar.finish_and_clear();
        }
    }
}
