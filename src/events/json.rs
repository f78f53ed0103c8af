//! `--json`: one JSON object per line on stdout, for CI systems and tools.

use super::{Event, EventSink};
use std::io::Write;

pub struct JsonSink;

impl EventSink for JsonSink {
    fn emit(&self, run: &str, event: &Event) {
        // Countdown ticks are for eyes; a consumer gets start and end.
        if matches!(event, Event::WaitProgress { .. }) {
            return;
        }
        #[derive(serde::Serialize)]
        struct Line<'a> {
            run: &'a str,
            ts: String,
            #[serde(flatten)]
            event: &'a Event,
        }
        let line = Line {
            run,
            ts: crate::journal::format_ms(crate::journal::now_ms()),
            event,
        };
        if let Ok(text) = serde_json::to_string(&line) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
        }
    }
}
