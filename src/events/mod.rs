//! What a run reports while it works. The runner and primitives emit
//! [`Event`]s; a sink renders them: live progress bars on a terminal
//! ([`progress`]), plain lines otherwise ([`plain`]), or JSON lines (`--json`).

mod json;
mod plain;
mod progress;
mod show;
pub mod text;

pub use json::JsonSink;
pub use plain::PlainSink;
pub use progress::ProgressSink;

use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        script: String,
        mode: String,
    },
    StepStarted {
        step: String,
        depth: usize,
        attempt: u32,
    },
    StepReplayed {
        step: String,
        depth: usize,
    },
    StepCompleted {
        step: String,
        depth: usize,
        ms: u64,
        value: serde_json::Value,
    },
    StepFailed {
        step: String,
        depth: usize,
        ms: u64,
        error: String,
    },
    StepInterrupted {
        step: String,
        depth: usize,
    },
    /// `print` / `debug` from the script.
    Output {
        step: Option<String>,
        depth: usize,
        text: String,
        debug: bool,
    },
    WaitStarted {
        step: Option<String>,
        depth: usize,
        label: String,
        total_ms: u64,
        remaining_ms: u64,
    },
    WaitProgress {
        step: Option<String>,
        label: String,
        remaining_ms: u64,
    },
    WaitEnded {
        step: Option<String>,
        label: String,
    },
    /// `guard(...)` started probing `target` at `rate` requests per second.
    GuardStarted {
        step: Option<String>,
        depth: usize,
        target: String,
        rate: f64,
    },
    /// Live counts of a running guard (about every 250ms).
    GuardProgress {
        step: Option<String>,
        target: String,
        requests: u64,
        failures: u64,
    },
    /// A guard stopped: its statistics (as journaled) and whether its limits held.
    GuardFinished {
        step: Option<String>,
        depth: usize,
        target: String,
        ok: bool,
        summary: String,
        stats: serde_json::Value,
    },
    GateWaiting {
        gate: String,
        message: String,
    },
    UndoStarted {
        step: String,
    },
    UndoCompleted {
        step: String,
        ms: u64,
    },
    UndoFailed {
        step: String,
        error: String,
    },
    RunFinished {
        status: String,
        ms: u64,
        steps_run: u64,
        steps_replayed: u64,
    },
}

/// Renders events. Sinks are shared by every branch of a `parallel`.
pub trait EventSink: Send + Sync {
    fn emit(&self, run: &str, event: &Event);
    /// Prints a final message (summary or error) in the sink's style.
    fn finish(&self) {}
}

/// Discards everything (`--quiet`, `check`, `docs`).
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _: &str, _: &Event) {}
}

/// A run's handle on the sink: stamps every event with the run id.
#[derive(Clone)]
pub struct Events {
    run: Arc<str>,
    sink: Arc<dyn EventSink>,
}

impl Events {
    pub fn new(run: &str, sink: Arc<dyn EventSink>) -> Self {
        Events {
            run: run.into(),
            sink,
        }
    }

    pub fn emit(&self, event: Event) {
        self.sink.emit(&self.run, &event);
    }
}

/// `1.2s`, `340ms`, `2m05s`.
pub fn format_duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
    }
}

/// One-line, bounded rendering of a step value for humans.
pub fn summarize_value(value: &serde_json::Value) -> Option<String> {
    if value.is_null() {
        return None;
    }
    let text = value.to_string();
    Some(if text.chars().count() > 80 {
        format!("{}…", text.chars().take(79).collect::<String>())
    } else {
        text
    })
}

fn indent(depth: usize) -> String {
    "  ".repeat(depth)
}
